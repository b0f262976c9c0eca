/*
 * hooks: sandboxed Lua 5.4 for edgeproxy. Functions (Lambda-style handlers, used as origins) and, later, request and
 * response hooks. No h2o types: the proxy hands over plain structs and gets plain structs back.
 *
 * Model (DESIGN.md "Hooks and functions"):
 *   - one hooks_vm_t per worker thread, made and used on that thread only (no locking inside);
 *   - every script is compiled once per VM, when the VM is made; its top-level code runs then, in its own global
 *     table, which is read-only afterwards (assigning a global in a handler is an error: nothing leaks from one
 *     request to the next through globals);
 *   - every invocation runs in its own coroutine, with a CPU budget (an instruction-count hook that checks the time
 *     the invocation has run; default 50 ms) and under the VM's memory limit (a counting allocator; default 64 MiB);
 *     a breach fails that invocation only: the VM stays usable and the next invocation runs normally;
 *   - the sandbox: base functions without dofile, loadfile, rawset and warn, with collectgarbage("count") only, print
 *     writing to the log, setmetatable refusing __gc, and load() for text chunks only (in the sandbox); string
 *     (without dump), table, math (without randomseed), utf8, coroutine; os.time, os.clock, os.date; no io, no debug,
 *     no package; require() of Lua files under the scripts directory only; the string metatable is locked, and the
 *     library tables are read-only.
 *   - the `edge` table: edge.log(...), edge.json.encode/decode (JSON null is edge.json.null), edge.base64.encode/decode,
 *     edge.sha256(s) (hex), edge.hmac_sha256(key, s) (hex), edge.time() (seconds since the epoch, with fractions).
 *
 * Ownership: hooks_vm_new() copies what it needs from its options. Strings handed to the proxy in results are copied
 * with the caller's allocator (hooks_alloc_cb, typically the request's pool) before the call returns, so nothing the
 * proxy holds points into the Lua state.
 */
#ifndef EDGEPROXY_HOOKS_H
#define EDGEPROXY_HOOKS_H

#include <stddef.h>
#include <stdint.h>

#define HOOKS_DEFAULT_CPU_MS 50u
#define HOOKS_DEFAULT_MEMORY (64u * 1024 * 1024)

typedef struct hooks_vm hooks_vm_t;

typedef struct hooks_options {
    const char *dir;    /* the scripts directory: require("a.b") loads DIR/a/b.lua; NULL: require is refused */
    uint64_t cpu_ms;    /* per invocation; 0: HOOKS_DEFAULT_CPU_MS */
    size_t memory;      /* per VM, bytes; 0: HOOKS_DEFAULT_MEMORY */
    const char **files; /* the script files to compile (resolved paths) */
    size_t nfiles;
    /* optional: the files' texts, read by the caller (sources[i] of source_lens[i] bytes, compiled under the name
     * files[i]); NULL: each file is read from disk. The caller keeps them until hooks_vm_new returns. */
    const char *const *sources;
    const size_t *source_lens;
    /* edge.log(...) writes here: one line, with the request id of the invocation when there is one; may be NULL */
    void (*log)(void *data, const char *request_id, const char *line, size_t len);
    void *log_data;
} hooks_options_t;

/*
 * Makes a VM and compiles and runs every file's top level. Returns NULL with a message naming the file and line
 * ("hooks/hello.lua:3: unexpected symbol near 'x'") when a file does not load. Script i of the options is script id i.
 */
hooks_vm_t *hooks_vm_new(const hooks_options_t *opts, char *err, size_t errlen);
void hooks_vm_free(hooks_vm_t *vm);
/* Bytes the VM's allocator holds now (for tests and metrics). */
size_t hooks_vm_memory(const hooks_vm_t *vm);

/* A name/value pair; the strings need not be NUL-terminated. */
typedef struct hooks_kv {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} hooks_kv_t;

/*
 * The request, as a function sees it: the API Gateway / Lambda proxy-integration event (version 1.0):
 *   httpMethod, path, resource, headers, multiValueHeaders, queryStringParameters, multiValueQueryStringParameters,
 *   pathParameters, stageVariables, body, isBase64Encoded,
 *   requestContext = { requestId, stage, httpMethod, path, resourcePath, identity = { sourceIp },
 *                      authorizer = { claims = {...}, apiKeyId = ... } }
 * Header names are lower-case; where a name or parameter repeats, the single-value tables hold the last value. Maps
 * with no entries are nil, as in API Gateway. A body that is not valid UTF-8 is given base64-encoded, with
 * isBase64Encoded = true.
 */
typedef struct hooks_event {
    const char *method;
    size_t method_len;
    const char *path; /* without the query */
    size_t path_len;
    const char *resource; /* the route's path as written, e.g. /hello/{name} */
    const hooks_kv_t *query;
    size_t nquery; /* decoded */
    const hooks_kv_t *headers;
    size_t nheaders;
    const hooks_kv_t *path_params;
    size_t npath_params;
    const hooks_kv_t *stage_vars;
    size_t nstage_vars;
    const char *body;
    size_t body_len;
    const char *source_ip;
    const char *request_id;
    const char *stage;
    const char *claims_json; /* the verified JWT payload (a JSON object), or NULL */
    size_t claims_len;
    const char *api_key_id; /* or NULL */
} hooks_event_t;

/* A function's answer. Header names are lower-cased; multiValueHeaders come after headers. */
typedef struct hooks_response {
    int status;
    hooks_kv_t *headers;
    size_t nheaders;
    char *body;
    size_t body_len; /* decoded when the function said isBase64Encoded */
} hooks_response_t;

typedef void *(*hooks_alloc_cb)(size_t size, void *data);

/*
 * Calls handler(event, context) of script `script` in a new coroutine and runs it to the end. context holds
 * functionName (the file's base name), awsRequestId (the request id) and getRemainingTimeInMillis().
 *   0: *res is the answer ({statusCode, headers, multiValueHeaders, body, isBase64Encoded}: statusCode 100..599,
 *      default 200; body a string or nil; a non-table answer is an error); strings copied with alloc.
 *   -1: the function failed: an error, a limit (CPU: "the function ran longer than 50 ms"; memory: "not enough
 *      memory"), no handler, or a bad answer. *err is the message with the Lua traceback (copied with alloc; NULL if
 *      alloc failed); *res is zeroed (strings already copied belong to the caller's allocator).
 * The CPU budget counts from the start of the call (building the event is part of it).
 */
int hooks_call_function(hooks_vm_t *vm, size_t script, const hooks_event_t *ev, hooks_alloc_cb alloc, void *alloc_data,
                        hooks_response_t *res, char **err);

#endif
