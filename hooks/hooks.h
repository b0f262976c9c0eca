/*
 * hooks: sandboxed Lua 5.4 for edgeproxy: functions (Lambda-style handlers, used as origins), request hooks
 * (on_request) and response hooks (on_response). No h2o types: the proxy hands over plain structs and gets plain
 * structs back.
 *
 * Model (DESIGN.md "Hooks and functions"):
 *   - one hooks_vm_t per worker thread, made and used on that thread only (no locking inside);
 *   - every script is compiled once per VM, when the VM is made; its top-level code runs then, in its own global
 *     table, which is read-only afterwards (assigning a global in a handler is an error: nothing leaks from one
 *     request to the next through globals);
 *   - every invocation (a "run") runs in its own coroutine, with a CPU budget (an instruction-count hook that checks
 *     the time the invocation has run; default 50 ms; time spent waiting for edge.fetch does not count) and under
 *     the VM's memory limit (a counting allocator; default 64 MiB); a breach fails that invocation only: the VM stays
 *     usable and the next invocation runs normally;
 *   - a run may wait: edge.fetch (an HTTP subrequest), edge.purge (a cache purge) and edge.store.* (an operation of the
 *     item store) suspend its coroutine and hand the work to the proxy (hooks_run_wait); the proxy does it without
 *     blocking its loop and resumes the run with the outcome (hooks_resume_fetch / hooks_resume_purge /
 *     hooks_resume_store), on the same thread. Any number of runs of a VM may be waiting at once;
 *   - the sandbox: base functions without dofile, loadfile, rawset and warn, with collectgarbage("count") only, print
 *     writing to the log, setmetatable refusing __gc, and load() for text chunks only (in the sandbox); string
 *     (without dump), table, math (without randomseed), utf8, coroutine; os.time, os.clock, os.date; no io, no debug,
 *     no package; require() of Lua files under the scripts directory only; the string metatable is locked, and the
 *     library tables are read-only.
 *   - the `edge` table: edge.log(...), edge.json.encode/decode (JSON null is edge.json.null), edge.base64.encode/decode,
 *     edge.sha256(s) (hex), edge.hmac_sha256(key, s) (hex), edge.time() (seconds since the epoch, with fractions),
 *     edge.vars (the conf's stage variables), edge.null (edge.json.null: DynamoDB's NULL too), edge.fetch(url, opts),
 *     edge.purge(selector), edge.store (below), and, in on_request only, edge.respond(status, headers, body).
 *     edge.fetch, edge.purge and edge.store.* wait, so they can only be called from the run's own coroutine (not from a
 *     coroutine the script made, nor from a module's top level).
 *
 * Ownership: hooks_vm_new() copies what it needs from its options. Strings handed to the proxy in results are copied
 * with the caller's allocator (hooks_alloc_cb, typically the request's pool) before the call that reports them
 * returns, so nothing the proxy keeps points into the Lua state. A waiting run's hooks_wait_t is the exception: its
 * strings (a fetch's URL and headers, a store call's request text) live in the Lua state until the run is resumed or
 * cancelled. What the proxy resumes a run with (hooks_resume_fetch / _purge / _store) stays the caller's: it is read
 * (copied into the Lua state) before the call returns, and the caller frees it afterwards.
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
    /* edge.vars: the conf's stage variables (copied) */
    const struct hooks_kv *vars;
    size_t nvars;
    /* edge.log(...) writes here: one line, with the request id of the invocation when there is one; may be NULL */
    void (*log)(void *data, const char *request_id, const char *line, size_t len);
    void *log_data;
} hooks_options_t;

/*
 * Makes a VM and compiles and runs every file's top level. Returns NULL with a message naming the file and line
 * ("hooks/hello.lua:3: unexpected symbol near 'x'") when a file does not load. Script i of the options is script id i.
 */
hooks_vm_t *hooks_vm_new(const hooks_options_t *opts, char *err, size_t errlen);
/* Frees the VM, or marks it to be freed when its last waiting run is over or cancelled (a reload does not cut them
 * short). */
void hooks_vm_free(hooks_vm_t *vm);
/* 1 if script `script` defines the global function `name` (handler, on_request, on_response). */
int hooks_vm_defines(hooks_vm_t *vm, size_t script, const char *name);
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
 * The CPU budget counts from the start of the script (building the event is not part of it). A function that waits (edge.fetch,
 * edge.purge) fails here with "yielding is not supported here": this is hooks_start_function for callers that cannot
 * wait (tests, `edgeproxy -t`).
 */
int hooks_call_function(hooks_vm_t *vm, size_t script, const hooks_event_t *ev, hooks_alloc_cb alloc, void *alloc_data,
                        hooks_response_t *res, char **err);

/* ---- runs: invocations that may wait ---- */

typedef struct hooks_run hooks_run_t;

typedef enum hooks_status {
    HOOKS_FAILED = -1, /* the run failed: outcome->error; the run is over (its struct goes back to the VM) */
    HOOKS_DONE = 0,    /* the run finished: outcome filled in; the run is over (its struct goes back to the VM) */
    HOOKS_WAITING = 1, /* the run waits for hooks_run_wait(): do it, then hooks_resume_fetch() / _purge() / _store() */
} hooks_status_t;

/* The request, as a hook sees it (req in on_request(req) and on_response(req, res)). Strings need not be
 * NUL-terminated unless said; all of them must stay valid until the run is over (or cancelled). */
typedef struct hooks_request {
    const char *method;
    size_t method_len;
    const char *scheme; /* "http" or "https", NUL-terminated */
    const char *host;   /* the authority as sent */
    size_t host_len;
    const char *path; /* without the query */
    size_t path_len;
    const char *query; /* what follows '?', or NULL when there is no '?' */
    size_t query_len;
    const hooks_kv_t *headers;
    size_t nheaders;
    const hooks_kv_t *params; /* the route's path parameters */
    size_t nparams;
    const char *route; /* the route's path as written, NUL-terminated */
    const char *body;  /* the request body, or NULL */
    size_t body_len;
    const char *client_ip;   /* NUL-terminated */
    const char *request_id;  /* NUL-terminated */
    const char *claims_json; /* the verified JWT payload (a JSON object), or NULL */
    size_t claims_len;
    const char *api_key_id; /* NUL-terminated, or NULL */
    /* Optional: when set, headers, params, body, client_ip, claims_json and api_key_id are filled in by this call, made
     * once, the first time a run reads one of them (a hook that reads none costs nothing for them). */
    void (*complete)(struct hooks_request *rq);
} hooks_request_t;

/* What on_request changed (each field NULL / 0 when unchanged). */
typedef struct hooks_request_changes {
    char *path; /* starts with '/', without CR, LF, NUL, space or '?' */
    size_t path_len;
    char *query; /* without the '?'; "" when the hook removed the query */
    size_t query_len;
    int headers_changed; /* then headers is the whole new list (names lower-case, values without CR/LF/NUL) */
    hooks_kv_t *headers;
    size_t nheaders;
    char *cache_key; /* req.cache_key: more bytes for the cache key */
    size_t cache_key_len;
    char *origin; /* req.origin: the path (as written) of the route whose origin answers instead */
} hooks_request_changes_t;

/* What on_response changed. */
typedef struct hooks_response_changes {
    int status;          /* 0: unchanged */
    int headers_changed; /* then headers is the whole new list */
    hooks_kv_t *headers;
    size_t nheaders;
    int body_changed; /* then body is the new body */
    char *body;
    size_t body_len;
    int64_t ttl_s;     /* res.ttl: the cache freshness to use, seconds; -1: unchanged */
    int64_t max_ttl_s; /* res.max_ttl: a cap on the freshness; -1: none */
    int uncacheable;   /* res.cacheable = false */
} hooks_response_changes_t;

/* The result of a run, in memory from the run's allocator. */
typedef struct hooks_outcome {
    char *error;               /* HOOKS_FAILED: the message with the Lua traceback (NULL if the allocator failed) */
    int responded;             /* a function answered, or on_request called edge.respond */
    hooks_response_t response; /* when responded */
    hooks_request_changes_t request;
    hooks_response_changes_t changes;
} hooks_outcome_t;

/* ---- what a waiting run waits for: strings point into the Lua state, valid until the run is resumed or cancelled */

typedef enum hooks_wait_kind {
    HOOKS_WAIT_FETCH = 1, /* edge.fetch(url, {method, headers, body, timeout}) */
    HOOKS_WAIT_PURGE,     /* edge.purge{url = U | prefix = P | tag = T | host = H | all = true, soft = bool} */
    HOOKS_WAIT_STORE,     /* edge.store.get / put / update / delete / query / scan / transact */
} hooks_wait_kind_t;

typedef struct hooks_fetch {
    const char *url; /* as given: the proxy checks it (http:// or https://) */
    size_t url_len;
    const char *method; /* a token, upper-cased; default GET */
    size_t method_len;
    const hooks_kv_t *headers; /* names are tokens, values have no CR, LF or NUL */
    size_t nheaders;
    const char *body; /* NULL: none */
    size_t body_len;
    uint64_t timeout_ms; /* 0: the proxy's default */
} hooks_fetch_t;

typedef enum hooks_purge_kind {
    HOOKS_PURGE_URL,
    HOOKS_PURGE_PREFIX,
    HOOKS_PURGE_TAG,
    HOOKS_PURGE_HOST,
    HOOKS_PURGE_ALL
} hooks_purge_kind_t;

typedef struct hooks_purge {
    hooks_purge_kind_t kind;
    const char *value; /* NUL-terminated; "" for HOOKS_PURGE_ALL */
    size_t value_len;
    int soft;
} hooks_purge_t;

/*
 * edge.store: the item store (store/store.h), with the semantics of its DynamoDB API. Scripts give and get plain Lua
 * values; the run hands the proxy one DynamoDB JSON request, the proxy runs it (store_call) and gives the answer back
 * with hooks_resume_store. Reads wait too (the store answers them at once: the proxy resumes the run before it goes
 * back to its loop), so that every store call takes one path.
 *
 *   edge.store.get(table, key [, opts])        GetItem            -> item | nil (no such item)
 *   edge.store.put(table, item [, opts])       PutItem            -> attributes (return_values) | true
 *   edge.store.update(table, key, opts)        UpdateItem         -> attributes (return_values) | true
 *   edge.store.delete(table, key [, opts])     DeleteItem         -> attributes (return_values) | true
 *   edge.store.query(table, opts)              Query              -> {items = {...}, count, scanned_count, last_key}
 *   edge.store.scan(table [, opts])            Scan               -> {items = {...}, count, scanned_count, last_key}
 *   edge.store.transact(actions)               TransactWriteItems -> true
 *     actions: a sequence of {put = {table, item, ...}}, {update = {table, key, update, ...}},
 *     {delete = {table, key, ...}}, {check = {table, key, condition, ...}} (each with condition, names, values,
 *     return_values_on_condition_check_failure)
 *   edge.store.set(list)      a string, number or binary set (SS, NS, BS): the elements of list, all of one kind
 *   edge.store.binary(s)      a binary value (B): its bytes are b.value
 *
 * opts (each where DynamoDB's operation has it; an unknown or misplaced option is an error): condition
 * (ConditionExpression), update (UpdateExpression), filter (FilterExpression), key_condition (KeyConditionExpression),
 * projection (ProjectionExpression), names (ExpressionAttributeNames: "#n" -> "name"), values
 * (ExpressionAttributeValues: ":v" -> a Lua value, marshalled), return_values (ReturnValues),
 * return_values_on_condition_check_failure, index (IndexName), limit (Limit), forward (ScanIndexForward), start_key
 * (ExclusiveStartKey), consistent (ConsistentRead), select (Select), segment and total_segments (Scan).
 *
 * Values, as lib-dynamodb's DocumentClient marshals them:
 *   string -> S (UTF-8 only: bytes go in edge.store.binary)   number -> N   boolean -> BOOL   edge.null -> NULL
 *   edge.store.binary(s) -> B   edge.store.set{...} -> SS / NS / BS   a table whose keys are exactly 1..n -> L
 *   edge.store.list(t) -> L (marks t itself, a sequence or empty, with no metatable yet: the way to write an empty
 *   list; a marked table that is no longer a sequence raises an error when written)
 *   any other table -> M (string keys; integer keys are written as their decimal text; {} is an empty M)
 * and back: S -> string, BOOL -> boolean, NULL -> edge.null, B -> edge.store.binary, SS / NS / BS -> edge.store.set,
 * L -> a sequence marked as an edge.store.list (an empty list read and written back stays a list), M -> table, N -> a
 * Lua integer when the number is whole and fits in 64 bits, else a float (the nearest double: a number of more than 15
 * significant digits may come back rounded). Integers are sent exactly, floats as the shortest text that reads back as
 * the same double (so 3.0 is stored as 3 and read back as the integer 3). Sets, binary values and lists are tables with
 * a protected metatable (setmetatable on them fails): getmetatable(v) is "edge.store.set", "edge.store.binary" or
 * "edge.store.list"; binary values compare by their bytes (==).
 * A value with no DynamoDB form (a function, NaN, an infinity, a table that contains itself, a set mixing kinds or
 * empty) raises an error, as does a bad argument. Like edge.fetch, edge.store.* work in a run's own coroutine only
 * (not at load time, not in a coroutine the script made); time spent waiting does not count toward the CPU budget.
 *
 * Failures the store reports are returned, not raised: nil, err with err = {code = "ConditionalCheckFailedException"
 * (the part of DynamoDB's __type after '#'), message = ..., status = 400, item = the old item (when asked for with
 * return_values_on_condition_check_failure), reasons = {{code, message, item}, ...} (TransactionCanceledException)}.
 */
typedef struct hooks_store {
    const char *op;   /* the DynamoDB operation ("GetItem", "PutItem", ...): a static string */
    const char *body; /* its JSON request, NUL-terminated */
    size_t body_len;
} hooks_store_t;

typedef struct hooks_wait {
    hooks_wait_kind_t kind;
    hooks_fetch_t fetch;
    hooks_purge_t purge;
    hooks_store_t store;
} hooks_wait_t;

/* How a subrequest went: status 0 when it failed (error says why: "timeout", "connection refused", ...). */
typedef struct hooks_fetch_result {
    int status;
    const char *error;
    const hooks_kv_t *headers; /* names lower-case */
    size_t nheaders;
    const char *body;
    size_t body_len;
} hooks_fetch_result_t;

/*
 * Starting a run. Each takes the VM, the script id, what the run reads (kept by the caller until the run is over; a
 * function's hooks_event_t and what it points to only until the call returns: whatever of the event the script has not
 * read yet is made before the run first waits), the allocator for what it reports, and the outcome to fill in (the caller's, kept
 * until the run is over). They return the status; when HOOKS_WAITING, *run is the waiting run, else *run is NULL (the run is over
 * already).
 *
 *   hooks_start_function: handler(event, context) of a function; outcome->response is its answer (responded = 1).
 *   hooks_start_request:  on_request(req): outcome->request holds what it changed, or responded is set with the
 *                         answer of edge.respond(status, headers, body).
 *   hooks_start_response: on_response(req, res): outcome->changes. res gives the status, headers and, when
 *                         res->body is not NULL, the body (res.body is nil otherwise; assigning it replaces the body).
 * A script without the function it must define fails the run.
 */
hooks_status_t hooks_start_function(hooks_vm_t *vm, size_t script, const hooks_event_t *ev, hooks_alloc_cb alloc, void *alloc_data,
                                    hooks_outcome_t *out, hooks_run_t **run);
hooks_status_t hooks_start_request(hooks_vm_t *vm, size_t script, const hooks_request_t *rq, hooks_alloc_cb alloc, void *alloc_data,
                                   hooks_outcome_t *out, hooks_run_t **run);
hooks_status_t hooks_start_response(hooks_vm_t *vm, size_t script, const hooks_request_t *rq, const hooks_response_t *res,
                                    hooks_alloc_cb alloc, void *alloc_data, hooks_outcome_t *out, hooks_run_t **run);

/* What a waiting run waits for. */
const hooks_wait_t *hooks_run_wait(const hooks_run_t *run);
/* Resumes a waiting run with the outcome of its wait (copied into the Lua state); returns as hooks_start_* does
 * (on HOOKS_DONE / HOOKS_FAILED the run is freed and must not be used again). */
hooks_status_t hooks_resume_fetch(hooks_run_t *run, const hooks_fetch_result_t *r);
/* purged: objects purged, or -1 with error when the purge failed. */
hooks_status_t hooks_resume_purge(hooks_run_t *run, long purged, const char *error);
/* The store's answer to the run's HOOKS_WAIT_STORE: status as store_call gives it (200: the operation's output, else
 * DynamoDB's error JSON {"__type", "message", ...}) and the JSON text body[0..len), which is read before the call
 * returns (the caller keeps and frees it). A proxy without a store answers 400 with a ResourceNotFoundException. */
hooks_status_t hooks_resume_store(hooks_run_t *run, int status, const char *body, size_t len);
/* Ends a waiting run without resuming it (its request is gone): its to-be-closed variables run, then it is freed. */
void hooks_run_cancel(hooks_run_t *run);
/* Runs of the VM that are waiting. */
size_t hooks_vm_waiting(const hooks_vm_t *vm);

#endif
