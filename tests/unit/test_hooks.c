/*
 * Unit tests of hooks/: the VM, the sandbox, invocations, the event, context and answer, and the edge table (edge.store
 * with canned answers of the store). The Lua
 * scripts are written by the tests into a mkdtemp() directory that the group teardown removes. Strings the hooks hand
 * back are allocated from a test pool freed after each test, so ASan and LSan see any string kept in the Lua state or
 * leaked. Most sandbox tests fail one call on purpose and check that the next call on the same VM still succeeds and
 * sees an unchanged sandbox (the "/ok" handler checks a list of invariants).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <signal.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "hooks/hooks.h"

#define MIB (1024u * 1024u)
#define TEST_MEMORY (16 * MIB)
#define TEST_CPU_MS 50         /* the limit the CPU tests breach */
#define FUNCTIONAL_CPU_MS 5000 /* for tests that do real work: no flakes on a slow machine */
#define MAX_ERR_LEN 16384      /* a message with its traceback: HOOKS_ERR_MAX (4096) + the traceback */

/* ---- the fixture: a directory, a pool, a log ---- */

typedef struct block {
    struct block *next;
    max_align_t data[];
} block_t;

typedef struct log_line {
    char rid[64]; /* "(null)" when the request id was NULL */
    char text[8192];
    size_t len;
} log_line_t;

static struct fixture {
    char dir[64];
    int nfiles;
    block_t *pool;
    log_line_t log[64];
    int nlog;
} fx;

static void *pool_alloc(size_t size, void *data)
{
    block_t **head = data, *b = malloc(sizeof(*b) + size);

    if (b == NULL)
        return NULL;
    b->next = *head;
    *head = b;
    return b->data;
}

static void pool_free(void)
{
    while (fx.pool != NULL) {
        block_t *next = fx.pool->next;
        free(fx.pool);
        fx.pool = next;
    }
}

static void capture_log(void *data, const char *rid, const char *line, size_t len)
{
    log_line_t *l;

    assert_ptr_equal(data, &fx);
    if (fx.nlog == (int)(sizeof(fx.log) / sizeof(fx.log[0])))
        return;
    l = &fx.log[fx.nlog++];
    snprintf(l->rid, sizeof(l->rid), "%s", rid != NULL ? rid : "(null)");
    assert_true(len < sizeof(l->text));
    memcpy(l->text, line, len);
    l->text[len] = '\0';
    l->len = len;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void on_alarm(int sig)
{
    static const char msg[] = "test_hooks: still running after 300 s: a script escaped its CPU limit\n";
    (void)sig;
    if (write(2, msg, sizeof(msg) - 1) < 0)
        _exit(2);
    _exit(1);
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGALRM, on_alarm); /* an escape from the CPU limit is a hang: make it a failure */
    alarm(300);
    snprintf(fx.dir, sizeof(fx.dir), "/tmp/test_hooks.XXXXXX");
    return mkdtemp(fx.dir) != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return nftw(fx.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int test_setup(void **state)
{
    (void)state;
    fx.nlog = 0;
    return 0;
}

static int test_teardown(void **state)
{
    (void)state;
    pool_free();
    return 0;
}

/* Writes text to DIR/rel (making the directories on the way) and returns the path (malloc'ed). */
static char *write_file(const char *rel, const char *text, size_t len)
{
    char *path, *slash;
    FILE *f;

    assert_true(asprintf(&path, "%s/%s", fx.dir, rel) > 0);
    for (slash = strchr(path + strlen(fx.dir) + 1, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        mkdir(path, 0700);
        *slash = '/';
    }
    assert_non_null(f = fopen(path, "wb"));
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return path;
}

static char *write_text(const char *rel, const char *text)
{
    return write_file(rel, text, strlen(text));
}

static char *write_script(const char *src)
{
    char rel[64];
    snprintf(rel, sizeof(rel), "script_%d.lua", fx.nfiles++);
    return write_file(rel, src, strlen(src));
}

static hooks_options_t options(const char **files, size_t nfiles)
{
    hooks_options_t o = {.dir = fx.dir,
                         .cpu_ms = TEST_CPU_MS,
                         .memory = TEST_MEMORY,
                         .files = files,
                         .nfiles = nfiles,
                         .log = capture_log,
                         .log_data = &fx};
    return o;
}

/* A VM with one script (id 0) made of src; fails the test when it does not load. */
static hooks_vm_t *vm_with_limits(const char *src, uint64_t cpu_ms, size_t memory)
{
    char *path = write_script(src), err[1024] = "";
    const char *files[] = {path};
    hooks_options_t o = options(files, 1);
    hooks_vm_t *vm;

    o.cpu_ms = cpu_ms;
    o.memory = memory;
    if ((vm = hooks_vm_new(&o, err, sizeof(err))) == NULL)
        fail_msg("hooks_vm_new: %s", err);
    free(path);
    return vm;
}

static hooks_vm_t *vm_with(const char *src)
{
    char *path = write_script(src), err[1024] = "";
    const char *files[] = {path};
    hooks_options_t o = options(files, 1);
    hooks_vm_t *vm = hooks_vm_new(&o, err, sizeof(err));

    if (vm == NULL)
        fail_msg("hooks_vm_new: %s", err);
    free(path);
    return vm;
}

/* hooks_vm_new with one script made of src, expected to fail: returns the message (static). */
static const char *vm_error(const char *src, char **path_out, uint64_t cpu_ms)
{
    static char err[4096];
    char *path = write_script(src);
    const char *files[] = {path};
    hooks_options_t o = options(files, 1);
    hooks_vm_t *vm;

    o.cpu_ms = cpu_ms;
    err[0] = '\0';
    vm = hooks_vm_new(&o, err, sizeof(err));
    if (vm != NULL) {
        hooks_vm_free(vm);
        fail_msg("hooks_vm_new succeeded for a bad script");
    }
    if (path_out != NULL)
        *path_out = path;
    else
        free(path);
    return err;
}

static hooks_event_t event_for(const char *path)
{
    hooks_event_t ev = {.method = "GET",
                        .method_len = 3,
                        .path = path,
                        .path_len = strlen(path),
                        .resource = "/{proxy+}",
                        .source_ip = "192.0.2.1",
                        .request_id = "req-1",
                        .stage = "test"};
    return ev;
}

static int call(hooks_vm_t *vm, const hooks_event_t *ev, hooks_response_t *res, char **err)
{
    return hooks_call_function(vm, 0, ev, pool_alloc, &fx.pool, res, err);
}

/* Calls path and fails the test unless the call succeeds. */
static hooks_response_t call_ok(hooks_vm_t *vm, const char *path)
{
    hooks_event_t ev = event_for(path);
    hooks_response_t res;
    char *err = NULL;

    if (call(vm, &ev, &res, &err) != 0)
        fail_msg("%s failed: %s", path, err != NULL ? err : "(no message)");
    assert_null(err);
    return res;
}

/* Calls path and fails the test unless the call fails with a message containing one of the '|'-separated parts of
 * want; returns the message. */
static const char *call_fails(hooks_vm_t *vm, const char *path, const char *want)
{
    hooks_event_t ev = event_for(path);
    hooks_response_t res;
    char *err = NULL, alts[256], *save = NULL;

    if (call(vm, &ev, &res, &err) == 0)
        fail_msg("%s succeeded (status %d, body %.*s), want an error with \"%s\"", path, res.status, (int)res.body_len,
                 res.body != NULL ? res.body : "", want);
    assert_non_null(err);
    assert_int_equal(res.status, 0);
    assert_null(res.body);
    assert_int_equal(res.nheaders, 0);
    snprintf(alts, sizeof(alts), "%s", want);
    for (char *w = strtok_r(alts, "|", &save); w != NULL; w = strtok_r(NULL, "|", &save))
        if (strstr(err, w) != NULL)
            return err;
    fail_msg("%s: message \"%s\" has none of \"%s\"", path, err, want);
    return NULL;
}

static void assert_contains(const char *s, const char *want)
{
    if (s == NULL || strstr(s, want) == NULL)
        fail_msg("\"%s\" does not contain \"%s\"", s != NULL ? s : "(null)", want);
}

static void assert_body(const hooks_response_t *res, const char *want)
{
    assert_non_null(res->body);
    assert_int_equal(res->body_len, strlen(want));
    assert_memory_equal(res->body, want, res->body_len);
}

static const hooks_kv_t *find_header(const hooks_response_t *res, const char *name, size_t nth)
{
    for (size_t i = 0; i != res->nheaders; ++i)
        if (res->headers[i].name_len == strlen(name) && memcmp(res->headers[i].name, name, strlen(name)) == 0 && nth-- == 0)
            return &res->headers[i];
    return NULL;
}

static void assert_header(const hooks_response_t *res, const char *name, size_t nth, const char *value)
{
    const hooks_kv_t *h = find_header(res, name, nth);

    if (h == NULL)
        fail_msg("no header %s #%zu", name, nth);
    assert_int_equal(h->value_len, strlen(value));
    assert_memory_equal(h->value, value, h->value_len);
}

/* ---- handlers and answers ---- */

static void test_hello(void **state)
{
    hooks_vm_t *vm = vm_with("function handler(event, context)\n"
                             "  return {statusCode = 201,\n"
                             "          headers = {['Content-Type'] = 'text/plain', ['X-Count'] = 42},\n"
                             "          body = 'hello ' .. event.path}\n"
                             "end\n");
    hooks_response_t res = call_ok(vm, "/world");

    (void)state;
    assert_int_equal(res.status, 201);
    assert_body(&res, "hello /world");
    assert_int_equal(res.body[res.body_len], '\0');
    assert_int_equal(res.nheaders, 2);
    assert_header(&res, "content-type", 0, "text/plain");
    assert_header(&res, "x-count", 0, "42");
    hooks_vm_free(vm);
}

static void test_defaults(void **state)
{
    hooks_vm_t *vm = vm_with("function handler(event)\n"
                             "  if event.path == '/empty' then return {} end\n"
                             "  return {body = ''}\n"
                             "end\n");
    hooks_response_t res = call_ok(vm, "/empty");

    (void)state;
    assert_int_equal(res.status, 200);
    assert_null(res.body);
    assert_int_equal(res.body_len, 0);
    assert_int_equal(res.nheaders, 0);
    assert_null(res.headers);
    res = call_ok(vm, "/x");
    assert_int_equal(res.status, 200);
    assert_body(&res, "");
    hooks_vm_free(vm);
}

static void test_base64_body(void **state)
{
    hooks_vm_t *vm = vm_with("function handler(event)\n"
                             "  if event.path == '/bad' then return {body = 'not base64!', isBase64Encoded = true} end\n"
                             "  if event.path == '/plain' then return {body = 'aGk=', isBase64Encoded = false} end\n"
                             "  return {body = edge.base64.encode('hello\\0\\1\\255'), isBase64Encoded = true}\n"
                             "end\n");
    hooks_response_t res = call_ok(vm, "/bin");

    (void)state;
    assert_int_equal(res.body_len, 8);
    assert_memory_equal(res.body, "hello\0\1\377", 8);
    call_fails(vm, "/bad", "not base64");
    res = call_ok(vm, "/plain");
    assert_body(&res, "aGk=");
    hooks_vm_free(vm);
}

static void test_multi_value_headers(void **state)
{
    hooks_vm_t *vm = vm_with("function handler(event)\n"
                             "  return {headers = {['X-One'] = '1'},\n"
                             "          multiValueHeaders = {['Set-Cookie'] = {'a=1', 'b=2', 3}}}\n"
                             "end\n");
    hooks_response_t res = call_ok(vm, "/");

    (void)state;
    assert_int_equal(res.nheaders, 4);
    assert_string_equal(res.headers[0].name, "x-one"); /* headers first */
    assert_header(&res, "set-cookie", 0, "a=1");
    assert_header(&res, "set-cookie", 1, "b=2");
    assert_header(&res, "set-cookie", 2, "3");
    assert_null(find_header(&res, "set-cookie", 3));
    hooks_vm_free(vm);
}

static void test_bad_answers(void **state)
{
    static const struct {
        const char *path, *want;
    } cases[] = {
        {"/nil", "returned a nil, not a table"},
        {"/string", "returned a string"},
        {"/status-low", "statusCode is not an integer in 100..599"},
        {"/status-high", "statusCode is not an integer in 100..599"},
        {"/status-float", "statusCode is not an integer"},
        {"/status-string", "statusCode is a string"},
        {"/header-name", "not a token"},
        {"/header-empty", "empty header name"},
        {"/header-crlf", "control character"},
        {"/header-nul", "control character"},
        {"/header-bool", "has a boolean value"},
        {"/header-key", "header name is a number"},
        {"/headers-string", "headers is a string"},
        {"/multi-string", "not to an array"},
        {"/multi-crlf", "control character"},
        {"/body-table", "body is a table"},
        {"/b64-string", "isBase64Encoded is a string"},
    };
    hooks_vm_t *vm = vm_with("local answers = {\n"
                             "  ['/nil'] = nil, ['/string'] = 'hello',\n"
                             "  ['/status-low'] = {statusCode = 99}, ['/status-high'] = {statusCode = 600},\n"
                             "  ['/status-float'] = {statusCode = 200.5}, ['/status-string'] = {statusCode = '200'},\n"
                             "  ['/header-name'] = {headers = {['bad name'] = 'x'}},\n"
                             "  ['/header-empty'] = {headers = {[''] = 'x'}},\n"
                             "  ['/header-crlf'] = {headers = {x = 'a\\r\\nSet-Cookie: evil=1'}},\n"
                             "  ['/header-nul'] = {headers = {x = 'a\\0b'}},\n"
                             "  ['/header-bool'] = {headers = {x = true}},\n"
                             "  ['/header-key'] = {headers = {'x'}},\n"
                             "  ['/headers-string'] = {headers = 'x: y'},\n"
                             "  ['/multi-string'] = {multiValueHeaders = {x = 'y'}},\n"
                             "  ['/multi-crlf'] = {multiValueHeaders = {x = {'ok', 'a\\nb'}}},\n"
                             "  ['/body-table'] = {body = {}},\n"
                             "  ['/b64-string'] = {body = 'aGk=', isBase64Encoded = 'yes'},\n"
                             "}\n"
                             "function handler(event)\n"
                             "  if event.path == '/ok' then return {statusCode = 204.0} end\n"
                             "  return answers[event.path]\n"
                             "end\n");

    (void)state;
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        const char *err = call_fails(vm, cases[i].path, cases[i].want);
        assert_contains(err, "bad answer");
        assert_contains(err, "script_");
        assert_int_equal(call_ok(vm, "/ok").status, 204);
    }
    hooks_vm_free(vm);
}

/* A metatable on the answer is never used: reading it runs no script code. */
static void test_answer_metatable_ignored(void **state)
{
    hooks_vm_t *vm = vm_with("function handler(event)\n"
                             "  local spin = function() while true do end end\n"
                             "  return setmetatable({body = 'x'}, {__index = spin, __pairs = spin, __len = spin})\n"
                             "end\n");
    hooks_response_t res = call_ok(vm, "/");

    (void)state;
    assert_int_equal(res.status, 200);
    assert_body(&res, "x");
    hooks_vm_free(vm);
}

/* ---- the event and the context ---- */

static json_t *json_body(const hooks_response_t *res)
{
    json_error_t jerr;
    json_t *j = json_loadb(res->body, res->body_len, 0, &jerr);

    if (j == NULL)
        fail_msg("not JSON (%s): %.*s", jerr.text, (int)res->body_len, res->body);
    return j;
}

static const char *jstr(const json_t *root, const char *path)
{
    const json_t *j = root;
    char buf[256], *save = NULL;

    snprintf(buf, sizeof(buf), "%s", path);
    for (char *k = strtok_r(buf, ".", &save); k != NULL; k = strtok_r(NULL, ".", &save))
        if ((j = json_object_get(j, k)) == NULL)
            fail_msg("no %s in the event", path);
    if (!json_is_string(j))
        fail_msg("%s is not a string", path);
    return json_string_value(j);
}

static void assert_jarray(const json_t *a, const char *v0, const char *v1)
{
    assert_true(json_is_array(a));
    assert_int_equal(json_array_size(a), 2);
    assert_string_equal(json_string_value(json_array_get(a, 0)), v0);
    assert_string_equal(json_string_value(json_array_get(a, 1)), v1);
}

static void test_event_fields(void **state)
{
    static const hooks_kv_t headers[] = {
        {"Host", 4, "example.com", 11}, {"X-Multi", 7, "a", 1}, {"x-multi", 7, "b", 1}, {"accept", 6, "*/*", 3}};
    static const hooks_kv_t query[] = {{"q", 1, "1", 1}, {"page", 4, "3", 1}, {"q", 1, "2 two", 5}};
    static const hooks_kv_t params[] = {{"name", 4, "world", 5}};
    static const hooks_kv_t vars[] = {{"env", 3, "test", 4}, {"region", 6, "eu", 2}};
    static const char claims[] = "{\"sub\":\"alice\",\"roles\":[\"a\",\"b\"],\"n\":null,\"exp\":1700000000}";
    hooks_vm_t *vm = vm_with_limits("function handler(event, context)\n"
                                    "  return {body = edge.json.encode(event)}\n"
                                    "end\n",
                                    FUNCTIONAL_CPU_MS, TEST_MEMORY);
    hooks_event_t ev = {.method = "POSTED",
                        .method_len = 4,
                        .path = "/hello/world?ignored",
                        .path_len = 12,
                        .resource = "/hello/{name}",
                        .query = query,
                        .nquery = 3,
                        .headers = headers,
                        .nheaders = 4,
                        .path_params = params,
                        .npath_params = 1,
                        .stage_vars = vars,
                        .nstage_vars = 2,
                        .body = "{\"x\": \"\xc3\xa9\"}",
                        .body_len = 11,
                        .source_ip = "203.0.113.7",
                        .request_id = "req-123",
                        .stage = "prod",
                        .claims_json = claims,
                        .claims_len = sizeof(claims) - 1,
                        .api_key_id = "key-1"};
    hooks_response_t res;
    char *err = NULL;
    json_t *j, *c;

    (void)state;
    if (call(vm, &ev, &res, &err) != 0)
        fail_msg("%s", err);
    j = json_body(&res);
    assert_string_equal(jstr(j, "httpMethod"), "POST");
    assert_string_equal(jstr(j, "path"), "/hello/world");
    assert_string_equal(jstr(j, "resource"), "/hello/{name}");
    assert_string_equal(jstr(j, "headers.host"), "example.com");
    assert_string_equal(jstr(j, "headers.x-multi"), "b"); /* the last value */
    assert_string_equal(jstr(j, "headers.accept"), "*/*");
    assert_int_equal(json_object_size(json_object_get(j, "headers")), 3);
    assert_jarray(json_object_get(json_object_get(j, "multiValueHeaders"), "x-multi"), "a", "b");
    assert_int_equal(json_array_size(json_object_get(json_object_get(j, "multiValueHeaders"), "host")), 1);
    assert_string_equal(jstr(j, "queryStringParameters.q"), "2 two");
    assert_string_equal(jstr(j, "queryStringParameters.page"), "3");
    assert_jarray(json_object_get(json_object_get(j, "multiValueQueryStringParameters"), "q"), "1", "2 two");
    assert_string_equal(jstr(j, "pathParameters.name"), "world");
    assert_string_equal(jstr(j, "stageVariables.env"), "test");
    assert_string_equal(jstr(j, "stageVariables.region"), "eu");
    assert_string_equal(jstr(j, "body"), "{\"x\": \"\xc3\xa9\"}");
    assert_true(json_is_false(json_object_get(j, "isBase64Encoded")));
    assert_string_equal(jstr(j, "requestContext.requestId"), "req-123");
    assert_string_equal(jstr(j, "requestContext.stage"), "prod");
    assert_string_equal(jstr(j, "requestContext.httpMethod"), "POST");
    assert_string_equal(jstr(j, "requestContext.path"), "/hello/world");
    assert_string_equal(jstr(j, "requestContext.resourcePath"), "/hello/{name}");
    assert_string_equal(jstr(j, "requestContext.identity.sourceIp"), "203.0.113.7");
    assert_string_equal(jstr(j, "requestContext.authorizer.apiKeyId"), "key-1");
    assert_string_equal(jstr(j, "requestContext.authorizer.claims.sub"), "alice");
    c = json_object_get(json_object_get(json_object_get(j, "requestContext"), "authorizer"), "claims");
    assert_jarray(json_object_get(c, "roles"), "a", "b");
    assert_true(json_is_null(json_object_get(c, "n")));
    assert_int_equal(json_integer_value(json_object_get(c, "exp")), 1700000000);
    json_decref(j);
    hooks_vm_free(vm);
}

static void test_event_minimal(void **state)
{
    hooks_vm_t *vm = vm_with("function handler(event, context)\n"
                             "  assert(event.headers == nil and event.multiValueHeaders == nil)\n"
                             "  assert(event.queryStringParameters == nil and event.pathParameters == nil)\n"
                             "  assert(event.stageVariables == nil and event.requestContext.authorizer == nil)\n"
                             "  return {body = edge.json.encode(event)}\n"
                             "end\n");
    hooks_event_t ev = event_for("/bin");
    hooks_response_t res;
    char *err = NULL;
    json_t *j;

    (void)state;
    ev.body = "\xff\x00\x01";
    ev.body_len = 3;
    if (call(vm, &ev, &res, &err) != 0)
        fail_msg("%s", err);
    j = json_body(&res);
    assert_string_equal(jstr(j, "body"), "/wAB");
    assert_true(json_is_true(json_object_get(j, "isBase64Encoded")));
    assert_null(json_object_get(j, "headers"));
    assert_null(json_object_get(json_object_get(j, "requestContext"), "authorizer"));
    json_decref(j);

    ev.body = NULL, ev.body_len = 0; /* no body: nil */
    if (call(vm, &ev, &res, &err) != 0)
        fail_msg("%s", err);
    j = json_body(&res);
    assert_null(json_object_get(j, "body"));
    assert_true(json_is_false(json_object_get(j, "isBase64Encoded")));
    json_decref(j);

    ev.claims_json = "[1]", ev.claims_len = 3; /* the proxy only hands over objects; anything else fails */
    assert_int_equal(call(vm, &ev, &res, &err), -1);
    assert_contains(err, "not a JSON object");
    hooks_vm_free(vm);
}

static void test_context(void **state)
{
    char *path =
        write_text("ctx_fn.lua", "function handler(event, context)\n"
                                 "  return {body = edge.json.encode({name = context.functionName, id = context.awsRequestId,\n"
                                 "                                   left = context.getRemainingTimeInMillis(),\n"
                                 "                                   left2 = context:getRemainingTimeInMillis()})}\n"
                                 "end\n");
    const char *files[] = {path};
    hooks_options_t o = options(files, 1);
    char err[256];
    hooks_vm_t *vm = hooks_vm_new(&o, err, sizeof(err));
    hooks_response_t res;
    json_t *j;
    json_int_t left;

    (void)state;
    assert_non_null(vm);
    res = call_ok(vm, "/");
    j = json_body(&res);
    assert_string_equal(jstr(j, "name"), "ctx_fn");
    assert_string_equal(jstr(j, "id"), "req-1");
    left = json_integer_value(json_object_get(j, "left"));
    assert_true(left >= 0 && left <= TEST_CPU_MS);
    assert_true(json_integer_value(json_object_get(j, "left2")) <= left);
    json_decref(j);
    hooks_vm_free(vm);
    free(path);
}

/* ---- loading, errors and tracebacks ---- */

static void test_syntax_error(void **state)
{
    char *path, want[512];
    const char *err = vm_error("local a = 1\nlocal b = 2\nlocal c = = 3\n", &path, TEST_CPU_MS);

    (void)state;
    snprintf(want, sizeof(want), "%s:3:", path);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("message \"%s\" does not start with \"%s\"", err, want);
    free(path);
}

static void test_load_errors(void **state)
{
    static const char binary[] = "\x1bLuaT\x00\x19\x93\r\n\x1a\n\x04\x08\x08xV\x00\x00";
    char *path = write_file("binary.lua", binary, sizeof(binary) - 1), err[512];
    const char *files[] = {path};
    hooks_options_t o = options(files, 1);
    const char *missing[] = {"/nonexistent/dir/x.lua"};

    (void)state;
    assert_null(hooks_vm_new(&o, err, sizeof(err)));
    assert_contains(err, "binary chunk");
    assert_contains(err, path);
    free(path);

    o = options(missing, 1);
    assert_null(hooks_vm_new(&o, err, sizeof(err)));
    assert_contains(err, "cannot open /nonexistent/dir/x.lua");

    /* a runtime error at the top level, a CPU breach and a memory breach while loading, a yield */
    assert_contains(vm_error("local x = nil\nx.y = 1\n", NULL, TEST_CPU_MS), ":2: attempt to index a nil value");
    assert_contains(vm_error("while true do end\n", NULL, TEST_CPU_MS), "the function ran longer than 50 ms");
    assert_contains(vm_error("local t = {} for i = 1, 1e9 do t[i] = {} end\n", NULL, FUNCTIONAL_CPU_MS), "not enough memory");
    assert_contains(vm_error("error({})\n", NULL, TEST_CPU_MS), "(error object is a table value)");
    assert_contains(vm_error("coroutine.yield()\n", NULL, TEST_CPU_MS), "yielding is not supported here");
}

/* Texts read by the caller are compiled under the files' names, as the files would be (a BOM and a '#' first line
 * skipped, line numbers kept); nothing is read from disk. */
static void test_sources(void **state)
{
    static const char *const texts[] = {"\xEF\xBB\xBF#!/usr/bin/lua\nfunction handler(e, c) return {body = c.functionName} end\n",
                                        "#!/usr/bin/lua\nlocal x = 1\nlocal y = = 2\n", "\x1bLua"};
    static const size_t lens[] = {
        sizeof("\xEF\xBB\xBF#!/usr/bin/lua\nfunction handler(e, c) return {body = c.functionName} end\n") - 1,
        sizeof("#!/usr/bin/lua\nlocal x = 1\nlocal y = = 2\n") - 1, 4};
    const char *files[] = {"/nonexistent/virtual.lua"};
    hooks_options_t o = options(files, 1);
    char err[512];
    hooks_vm_t *vm;

    (void)state;
    o.sources = texts;
    o.source_lens = lens;
    assert_non_null(vm = hooks_vm_new(&o, err, sizeof(err)));
    assert_body((hooks_response_t[]){call_ok(vm, "/")}, "virtual");
    hooks_vm_free(vm);

    o.sources = texts + 1;
    o.source_lens = lens + 1;
    assert_null(hooks_vm_new(&o, err, sizeof(err)));
    assert_contains(err, "/nonexistent/virtual.lua:3: unexpected symbol near '='");
    o.sources = texts + 2;
    o.source_lens = lens + 2;
    assert_null(hooks_vm_new(&o, err, sizeof(err)));
    assert_contains(err, "/nonexistent/virtual.lua: attempt to load a binary chunk (mode is 't')");
}

static void test_missing_handler(void **state)
{
    hooks_vm_t *vm = vm_with("handler = 42\n");

    (void)state;
    call_fails(vm, "/", "has no function handler");
    hooks_vm_free(vm);
    vm = vm_with("local x = 1\n");
    call_fails(vm, "/", "has no function handler");
    hooks_vm_free(vm);
}

static void test_runtime_error_traceback(void **state)
{
    char *path = write_script("local function inner(n)\n"
                              "  error('boom ' .. n)\n"
                              "end\n"
                              "local function outer(n) inner(n) return 1 end\n"
                              "function handler(event)\n"
                              "  outer(7)\n"
                              "end\n"),
         err[256], want[512];
    const char *files[] = {path};
    hooks_options_t o = options(files, 1);
    hooks_vm_t *vm = hooks_vm_new(&o, err, sizeof(err));
    const char *msg;

    (void)state;
    assert_non_null(vm);
    msg = call_fails(vm, "/", "boom 7");
    snprintf(want, sizeof(want), "%s:2: boom 7", path);
    assert_contains(msg, want);
    assert_contains(msg, "stack traceback:");
    snprintf(want, sizeof(want), "%s:4: in ", path); /* outer's line */
    assert_contains(msg, want);
    snprintf(want, sizeof(want), "%s:6: in function <%s:5>", path, path); /* handler, called from C */
    assert_contains(msg, want);
    hooks_vm_free(vm);
    free(path);
}

static void test_no_script(void **state)
{
    hooks_options_t o = options(NULL, 0);
    char err[256];
    hooks_vm_t *vm = hooks_vm_new(&o, err, sizeof(err));
    hooks_event_t ev = event_for("/");
    hooks_response_t res;
    char *msg;

    (void)state;
    assert_non_null(vm);
    assert_int_equal(hooks_call_function(vm, 0, &ev, pool_alloc, &fx.pool, &res, &msg), -1);
    assert_string_equal(msg, "no script 0 (the VM has 0)");
    hooks_vm_free(vm);
}

static void test_several_scripts(void **state)
{
    char *a = write_text("alpha.lua", "name = 'a'\nfunction handler(e, c) return {body = name .. c.functionName} end\n");
    char *b = write_text("beta.lua", "function handler(e, c) return {body = tostring(name) .. c.functionName} end\n");
    const char *files[] = {a, b};
    hooks_options_t o = options(files, 2);
    char err[256];
    hooks_vm_t *vm = hooks_vm_new(&o, err, sizeof(err));
    hooks_event_t ev = event_for("/");
    hooks_response_t res;
    char *msg;

    (void)state;
    assert_non_null(vm);
    assert_int_equal(hooks_call_function(vm, 0, &ev, pool_alloc, &fx.pool, &res, &msg), 0);
    assert_body(&res, "aalpha");
    assert_int_equal(hooks_call_function(vm, 1, &ev, pool_alloc, &fx.pool, &res, &msg), 0);
    assert_body(&res, "nilbeta"); /* each script has its own globals */
    assert_int_equal(hooks_call_function(vm, 2, &ev, pool_alloc, &fx.pool, &res, &msg), -1);
    hooks_vm_free(vm);
    free(a);
    free(b);
}

static void test_defaults_options(void **state)
{
    char *path = write_script("function handler(e, c) return {body = tostring(c.getRemainingTimeInMillis())} end\n");
    const char *files[] = {path};
    hooks_options_t o = {.files = files, .nfiles = 1};
    char err[256];
    hooks_vm_t *vm = hooks_vm_new(&o, err, sizeof(err));
    hooks_response_t res;
    long left;

    (void)state;
    assert_non_null(vm);
    res = call_ok(vm, "/");
    left = strtol(res.body, NULL, 10);
    assert_true(left > 0 && left <= (long)HOOKS_DEFAULT_CPU_MS);
    assert_true(hooks_vm_memory(vm) > 0 && hooks_vm_memory(vm) < HOOKS_DEFAULT_MEMORY);
    hooks_vm_free(vm);
    free(path);
}

/* ---- globals ---- */

static void test_globals(void **state)
{
    hooks_vm_t *vm = vm_with("greeting = 'hi'\n"
                             "local seen = {n = 0}\n"
                             "function handler(event)\n"
                             "  if event.path == '/assign' then counter = 1 end\n"
                             "  if event.path == '/assign-1' then _ENV[1] = 1 end\n"
                             "  if event.path == '/redefine' then handler = nil end\n"
                             "  seen.n = seen.n + 1\n"
                             "  return {body = greeting .. ' ' .. seen.n .. ' ' .. tostring(rawget(_G, 'counter'))}\n"
                             "end\n");
    hooks_response_t res;

    (void)state;
    res = call_ok(vm, "/");
    assert_body(&res, "hi 1 nil");
    call_fails(vm, "/assign", "assignment to global 'counter': globals are read-only after load (use local)");
    call_fails(vm, "/assign-1", "assignment to a global (a number key)");
    call_fails(vm, "/redefine", "assignment to global 'handler'");
    res = call_ok(vm, "/");
    assert_body(&res, "hi 2 nil"); /* module-level tables are the script's own state; globals did not change */
    hooks_vm_free(vm);
}

/* ---- the sandbox: escape and abuse attempts ---- */

static const char sandbox_src[] =
    "local attempts, kept = {}, {}\n"
    "attempts['/os.execute'] = function() return os.execute('id') end\n"
    "attempts['/os.exit'] = function() os.exit(1) end\n"
    "attempts['/os.getenv'] = function() return os.getenv('HOME') end\n"
    "attempts['/os.remove'] = function() return os.remove('/tmp/x') end\n"
    "attempts['/io.open'] = function() return io.open('/etc/passwd') end\n"
    "attempts['/io.popen'] = function() return io.popen('id') end\n"
    "attempts['/dofile'] = function() return dofile('/etc/passwd') end\n"
    "attempts['/loadfile'] = function() return loadfile('/etc/passwd') end\n"
    "attempts['/load-binary'] = function()\n"
    "  local f, e = load('\\27LuaT\\0\\25\\147\\13\\10\\26\\10\\4\\8\\8\\120\\86\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0')\n"
    "  if f then return {body = 'escaped'} end\n"
    "  error(e)\n"
    "end\n"
    "attempts['/load-binary-mode-b'] = function()\n"
    "  local f, e = load('\\27Lua', 'x', 'b', {})\n"
    "  if f then return {body = 'escaped'} end\n"
    "  error(e)\n"
    "end\n"
    "attempts['/load-reader-binary'] = function()\n"
    "  local parts = {'\\27', 'Lua'}\n"
    "  local f, e = load(function() return table.remove(parts, 1) end)\n"
    "  if f then return {body = 'escaped'} end\n"
    "  error(e)\n"
    "end\n"
    "attempts['/string.dump'] = function() return string.dump(print) end\n"
    "attempts['/string-method-dump'] = function() return ('x'):dump() end\n"
    "attempts['/debug.sethook'] = function() debug.sethook() end\n"
    "attempts['/debug.getregistry'] = function() return debug.getregistry() end\n"
    "attempts['/package.loadlib'] = function() return package.loadlib('libc.so.6', 'system') end\n"
    "attempts['/package.path'] = function() package.path = '/tmp/?.lua' end\n"
    "attempts['/require-absolute'] = function() return require('/etc/passwd') end\n"
    "attempts['/require-dotdot'] = function() return require('../etc/passwd') end\n"
    "attempts['/require-dots'] = function() return require('a..b') end\n"
    "attempts['/require-leading-dot'] = function() return require('.hidden') end\n"
    "attempts['/require-missing'] = function() return require('no.such.module') end\n"
    "attempts['/string-metatable'] = function()\n"
    "  getmetatable('').__index = {rep = function() return 'pwned' end}\n"
    "end\n"
    "attempts['/setmetatable-string'] = function() setmetatable('', {__index = {}}) end\n"
    "attempts['/rawset'] = function() rawset(string, 'rep', function() return 'pwned' end) end\n"
    "attempts['/string.rep'] = function() string.rep = function() return 'pwned' end end\n"
    "attempts['/string.new'] = function() string.evil = true end\n"
    "attempts['/table.insert-lib'] = function() table.insert(string, 'x') end\n"
    "attempts['/math.pi'] = function() math.pi = 3 end\n"
    "attempts['/edge.json'] = function() edge.json.encode = nil end\n"
    "attempts['/edge.log'] = function() edge.log = nil end\n"
    "attempts['/global'] = function() leaked = 'yes' end\n"
    "attempts['/_G'] = function() _G.leaked = 'yes' end\n"
    "attempts['/getmetatable-G'] = function() getmetatable(_G).__index.print = nil end\n"
    "attempts['/setmetatable-G'] = function() setmetatable(_G, nil) end\n"
    "attempts['/setmetatable-lib'] = function() setmetatable(string, {}) end\n"
    "attempts['/load-global'] = function() load('leaked = 1')() end\n"
    "attempts['/load-lib'] = function() load('string.rep = nil')() end\n"
    "attempts['/gc'] = function() setmetatable({}, {__gc = function() while true do end end}) end\n"
    "attempts['/collectgarbage'] = function() collectgarbage() end\n"
    "attempts['/collectgarbage-stop'] = function() collectgarbage('stop') end\n"
    "attempts['/randomseed'] = function() math.randomseed(42) end\n"
    "attempts['/loop'] = function() while true do end end\n"
    "attempts['/pcall-loop'] = function() while true do pcall(function() while true do end end) end end\n"
    "attempts['/xpcall-loop'] = function()\n"
    "  while true do xpcall(function() while true do end end, function() while true do end end) end\n"
    "end\n"
    "attempts['/wrap-loop'] = function() coroutine.wrap(function() while true do end end)() end\n"
    "attempts['/resume-loop'] = function()\n"
    "  local ok, e = coroutine.resume(coroutine.create(function() while true do end end))\n"
    "  error(e, 0)\n"
    "end\n"
    "attempts['/yield-pcall-loop'] = function()\n"
    "  local co = coroutine.wrap(function() pcall(function() coroutine.yield() while true do end end) end)\n"
    "  co() co()\n"
    "  return {body = 'survived'}\n"
    "end\n"
    "attempts['/close-loop'] = function()\n"
    "  local co = coroutine.create(function()\n"
    "    local x <close> = setmetatable({}, {__close = function() while true do end end})\n"
    "    coroutine.yield()\n"
    "  end)\n"
    "  coroutine.resume(co)\n"
    "  coroutine.close(co)\n"
    "end\n"
    "attempts['/wrap-close-loop'] = function()\n"
    "  coroutine.wrap(function()\n"
    "    local x <close> = setmetatable({}, {__close = function() while true do end end})\n"
    "    while true do end\n"
    "  end)()\n"
    "end\n"
    "attempts['/rep-empty'] = function()\n"
    "  assert(string.rep('', 2^53) == '' and (''):rep(2^53, '') == '' and string.rep('', 3, ',') == ',,')\n"
    "  while true do end\n"
    "end\n"
    "attempts['/move-range'] = function() table.move({}, 1, 2^40, 2) end\n"
    "attempts['/insert-len'] = function()\n"
    "  table.insert(setmetatable({}, {__len = function() return 2^50 end}), 1, 'x')\n"
    "end\n"
    "attempts['/remove-len'] = function() table.remove(setmetatable({}, {__len = function() return 2^50 end}), 1) end\n"
    "attempts['/remove-negative'] = function()\n"
    "  table.remove(setmetatable({}, {__len = function() return -1 end}), -2^62)\n"
    "end\n"
    "attempts['/tostring-loop'] = function()\n"
    "  return {body = tostring(setmetatable({}, {__tostring = function() while true do end end}))}\n"
    "end\n"
    "attempts['/log-loop'] = function() edge.log(setmetatable({}, {__tostring = function() while true do end end})) end\n"
    "attempts['/load-reader-loop'] = function() load(function() while true do end end) end\n"
    "attempts['/sort-loop'] = function() table.sort({3, 2, 1}, function() while true do end end) end\n"
    "attempts['/gsub-loop'] = function() string.gsub('aaa', 'a', function() while true do end end) end\n"
    "attempts['/rep-bomb'] = function() return {body = string.rep('x', 2^30)} end\n"
    "attempts['/rep-too-large'] = function() return {body = string.rep('x', 2^31)} end\n"
    "attempts['/concat-bomb'] = function() local s = 'x' while true do s = s .. s end end\n"
    "attempts['/table-bomb'] = function() local t = {} while true do t[#t + 1] = {} end end\n"
    "attempts['/coroutine-bomb'] = function() local t = {} for i = 1, 1e8 do t[i] = coroutine.create(print) end end\n"
    "attempts['/coroutine-nest'] = function() local function bomb() coroutine.wrap(bomb)() end bomb() end\n"
    "attempts['/error-tostring-loop'] = function()\n"
    "  error(setmetatable({}, {__tostring = function() while true do end end}))\n"
    "end\n"
    "attempts['/error-tostring-error'] = function()\n"
    "  error(setmetatable({}, {__tostring = function() error('inner') end, __name = 'evil'}))\n"
    "end\n"
    "attempts['/error-nil'] = function() error() end\n"
    "attempts['/error-huge'] = function() error(string.rep('x', 4 * 1024 * 1024)) end\n"
    "attempts['/error-number'] = function() error(42) end\n"
    "attempts['/yield'] = function() coroutine.yield(1) end\n"
    "attempts['/caught-breach'] = function()\n"
    "  pcall(function() while true do end end)\n"
    "  return {body = 'caught'}\n"
    "end\n"
    "function handler(event, context)\n"
    "  local attempt = attempts[event.path]\n"
    "  if attempt then return attempt(event, context) end\n"
    "  assert(string.rep('ab', 2) == 'abab', 'string.rep changed')\n"
    "  assert(('x'):rep(2) == 'xx', 'string methods changed')\n"
    "  assert(string.evil == nil and math.pi > 3.14, 'a library table changed')\n"
    "  assert(getmetatable('') == false, 'the string metatable is visible')\n"
    "  assert(getmetatable(_G) == false and getmetatable(string) == false, 'a metatable is visible')\n"
    "  assert(rawget(_G, 'leaked') == nil and leaked == nil, 'a global leaked')\n"
    "  assert(string.dump == nil and ('').dump == nil, 'string.dump is back')\n"
    "  assert(io == nil and debug == nil and package == nil and os.execute == nil and dofile == nil)\n"
    "  assert(loadfile == nil and rawset == nil and math.randomseed == nil)\n"
    "  assert(type(print) == 'function' and type(edge.log) == 'function')\n"
    "  assert(edge.json.encode({1}) == '[1]', 'edge.json changed')\n"
    "  assert(collectgarbage('count') > 0)\n"
    "  assert(load('return 1 + 1')() == 2 and load('return string.rep(\"a\", 2)')() == 'aa')\n"
    "  assert(coroutine.wrap(function(a) local b = coroutine.yield(a + 1) return b * 2 end)(1) == 2)\n"
    "  local t = {1, 2, 3} table.insert(t, 1, 0) table.insert(t, 4) assert(table.remove(t, 1) == 0 and #t == 4)\n"
    "  assert(table.concat(table.move(t, 1, 4, 2, {}), ',', 2, 5) == '1,2,3,4', 'table.move')\n"
    "  assert(('ab'):rep(3, '-') == 'ab-ab-ab' and string.rep('x', 0) == '', 'string.rep')\n"
    "  return {statusCode = 200, body = 'ok'}\n"
    "end\n";

/* One attempt fails with want and a traceback, and the next call on the same VM succeeds with an intact sandbox. */
static void sandbox_case(hooks_vm_t *vm, const char *path, const char *want)
{
    const char *err = call_fails(vm, path, want);
    hooks_response_t res;

    if (strstr(err, "stack traceback:") == NULL)
        fail_msg("%s: no traceback in \"%s\"", path, err);
    assert_true(strlen(err) < MAX_ERR_LEN);
    assert_true(hooks_vm_memory(vm) <= TEST_MEMORY / 2);
    res = call_ok(vm, "/ok");
    assert_body(&res, "ok");
}

static void test_sandbox(void **state)
{
    static const struct {
        const char *path, *want;
    } cases[] = {
        {"/os.execute", "field 'execute'"},
        {"/os.exit", "field 'exit'"},
        {"/os.getenv", "field 'getenv'"},
        {"/os.remove", "field 'remove'"},
        {"/io.open", "global 'io'"},
        {"/io.popen", "global 'io'"},
        {"/dofile", "global 'dofile'"},
        {"/loadfile", "global 'loadfile'"},
        {"/load-binary", "attempt to load a binary chunk (mode is 't')"},
        {"/load-binary-mode-b", "attempt to load a binary chunk (mode is 't')"},
        {"/load-reader-binary", "attempt to load a binary chunk (mode is 't')"},
        {"/string.dump", "field 'dump'"},
        {"/string-method-dump", "method 'dump'"},
        {"/debug.sethook", "global 'debug'"},
        {"/debug.getregistry", "global 'debug'"},
        {"/package.loadlib", "global 'package'"},
        {"/package.path", "global 'package'"},
        {"/require-absolute", "bad module name"},
        {"/require-dotdot", "bad module name"},
        {"/require-dots", "bad module name"},
        {"/require-leading-dot", "bad module name"},
        {"/require-missing", "require('no.such.module'): cannot open"},
        {"/string-metatable", "attempt to index a boolean value"},
        {"/setmetatable-string", "bad argument #1 to 'setmetatable' (table expected, got string)"},
        {"/rawset", "global 'rawset'"},
        {"/string.rep", "table 'string' is read-only"},
        {"/string.new", "table 'string' is read-only"},
        {"/table.insert-lib", "table 'string' is read-only"},
        {"/math.pi", "table 'math' is read-only"},
        {"/edge.json", "table 'edge.json' is read-only"},
        {"/edge.log", "table 'edge' is read-only"},
        {"/global", "assignment to global 'leaked'"},
        {"/_G", "assignment to global 'leaked'"},
        {"/getmetatable-G", "attempt to index a boolean value"},
        {"/setmetatable-G", "cannot change a protected metatable"},
        {"/setmetatable-lib", "cannot change a protected metatable"},
        {"/load-global", "table '_ENV' is read-only"},
        {"/load-lib", "table 'string' is read-only"},
        {"/gc", "__gc metamethods are not allowed"},
        {"/collectgarbage", "only \"count\" is allowed"},
        {"/collectgarbage-stop", "only \"count\" is allowed"},
        {"/randomseed", "field 'randomseed'"},
        {"/loop", "the function ran longer than 50 ms"},
        {"/pcall-loop", "the function ran longer than 50 ms"},
        {"/xpcall-loop", "the function ran longer than 50 ms|error in error handling"},
        {"/wrap-loop", "the function ran longer than 50 ms"},
        {"/resume-loop", "the function ran longer than 50 ms"},
        {"/yield-pcall-loop", "the function ran longer than 50 ms"},
        {"/close-loop", "the function ran longer than 50 ms"},
        {"/wrap-close-loop", "the function ran longer than 50 ms"},
        {"/rep-empty", "the function ran longer than 50 ms"},
        {"/move-range", "table.move: more positions than the sandbox allows"},
        {"/insert-len", "table.insert: a length of 1125899906842624 is out of the sandbox's range"},
        {"/remove-len", "table.remove: a length of 1125899906842624 is out of the sandbox's range"},
        {"/remove-negative", "table.remove: a length of -1 is out of the sandbox's range"},
        {"/tostring-loop", "the function ran longer than 50 ms"},
        {"/log-loop", "the function ran longer than 50 ms"},
        {"/load-reader-loop", "the function ran longer than 50 ms"},
        {"/sort-loop", "the function ran longer than 50 ms"},
        {"/gsub-loop", "the function ran longer than 50 ms"},
        {"/coroutine-nest", "stack overflow"},
        {"/error-tostring-loop", "(error object is a table value)"},
        {"/error-tostring-error", "(error object is a table value)"},
        {"/error-nil", "(error object is a nil value)"},
        {"/error-number", "42"},
        {"/yield", "yielding is not supported here"},
        {"/caught-breach", "the function ran longer than 50 ms"},
    };
    /* memory bombs run on a VM with a large CPU budget, so that memory is what stops them */
    static const struct {
        const char *path, *want;
    } bombs[] = {
        {"/rep-bomb", "not enough memory"},       {"/rep-too-large", "resulting string too large"},
        {"/concat-bomb", "not enough memory"},    {"/table-bomb", "not enough memory"},
        {"/coroutine-bomb", "not enough memory"}, {"/error-huge", "xxxxxxxx [...] xxxxxxxx"},
    };
    hooks_vm_t *vms[2] = {vm_with(sandbox_src), vm_with_limits(sandbox_src, 10000, TEST_MEMORY)};
    size_t baseline[2];

    (void)state;
    for (int v = 0; v != 2; ++v) {
        call_ok(vms[v], "/ok");
        baseline[v] = hooks_vm_memory(vms[v]);
    }
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i)
        sandbox_case(vms[0], cases[i].path, cases[i].want);
    for (size_t i = 0; i != sizeof(bombs) / sizeof(bombs[0]); ++i)
        sandbox_case(vms[1], bombs[i].path, bombs[i].want);
    /* After the bombs (each followed by a full collection), the memory is back near where it was; after the CPU
     * breaches, there is garbage, which the incremental collector takes its time with. */
    if (hooks_vm_memory(vms[1]) >= baseline[1] + MIB)
        fail_msg("the VM holds %zu bytes, %zu at the start", hooks_vm_memory(vms[1]), baseline[1]);
    assert_true(hooks_vm_memory(vms[0]) < baseline[0] + 4 * MIB);
    hooks_vm_free(vms[0]);
    hooks_vm_free(vms[1]);
}

/* Deep recursion: Lua's stack limit (LUAI_MAXSTACK), under the default memory limit and a budget that lets it get
 * there; the same in a coroutine, and a stack overflow through pcall. */
static void test_deep_recursion(void **state)
{
    char *path = write_script("local function f(n) return 1 + f(n + 1) end\n"
                              "function handler(event)\n"
                              "  if event.path == '/co' then return coroutine.wrap(f)(1) end\n"
                              "  if event.path == '/pcall' then local ok, e = pcall(f, 1) error(e, 0) end\n"
                              "  if event.path == '/ok' then return {body = 'ok'} end\n"
                              "  return f(1)\n"
                              "end\n"),
         err[256];
    const char *files[] = {path};
    hooks_options_t o = options(files, 1);
    hooks_vm_t *vm;

    (void)state;
    o.cpu_ms = 10000;
    o.memory = 0;
    assert_non_null(vm = hooks_vm_new(&o, err, sizeof(err)));
    call_fails(vm, "/", "stack overflow");
    assert_body((hooks_response_t[]){call_ok(vm, "/ok")}, "ok");
    call_fails(vm, "/co", "stack overflow");
    assert_body((hooks_response_t[]){call_ok(vm, "/ok")}, "ok");
    call_fails(vm, "/pcall", "stack overflow");
    assert_body((hooks_response_t[]){call_ok(vm, "/ok")}, "ok");
    hooks_vm_free(vm);
    free(path);
}

/* A table growth bomb: a memory error, and the memory back under the limit (and near the baseline) after. */
static void test_memory_bomb_recovers(void **state)
{
    hooks_vm_t *vm = vm_with_limits("function handler(event)\n"
                                    "  if event.path == '/bomb' then\n"
                                    "    local t, i = {}, 0\n"
                                    "    while true do i = i + 1 t[i] = i end\n"
                                    "  end\n"
                                    "  local t = {} for i = 1, 1000 do t[i] = i end\n"
                                    "  return {body = tostring(#t)}\n"
                                    "end\n",
                                    10000, TEST_MEMORY);
    size_t baseline;

    (void)state;
    call_ok(vm, "/");
    baseline = hooks_vm_memory(vm);
    for (int i = 0; i != 3; ++i) {
        call_fails(vm, "/bomb", "not enough memory");
        assert_true(hooks_vm_memory(vm) < TEST_MEMORY);
        assert_true(hooks_vm_memory(vm) < baseline + 256 * 1024);
        assert_body((hooks_response_t[]){call_ok(vm, "/")}, "1000");
    }
    hooks_vm_free(vm);
}

/* A coroutine kept across requests runs under the invocation that resumes it, never under the one that made it. */
static hooks_response_t deep_call(hooks_vm_t *vm, const char *path, int depth)
{
    volatile char pad[2048];

    pad[0] = (char)depth;
    if (depth > 0)
        return deep_call(vm, path, depth - 1);
    (void)pad[0];
    return call_ok(vm, path);
}

static void test_kept_coroutine(void **state)
{
    hooks_vm_t *vm = vm_with("local kept = {}\n"
                             "function handler(event)\n"
                             "  if event.path == '/make' then\n"
                             "    kept.co = coroutine.create(function()\n"
                             "      while true do edge.log('in', coroutine.yield()) end\n"
                             "    end)\n"
                             "    coroutine.resume(kept.co)\n"
                             "    kept.spin = coroutine.wrap(function() coroutine.yield() while true do end end)\n"
                             "    kept.spin()\n"
                             "    return {body = 'made'}\n"
                             "  elseif event.path == '/doomed' then\n"
                             "    kept.doomed = coroutine.create(function()\n"
                             "      local x <close> = setmetatable({}, {__close = function() while true do end end})\n"
                             "      while true do end\n"
                             "    end)\n"
                             "    coroutine.resume(kept.doomed)\n"
                             "  elseif event.path == '/close-doomed' then\n"
                             "    local ok, e = coroutine.close(kept.doomed)\n"
                             "    return {body = tostring(ok) .. ' ' .. coroutine.status(kept.doomed)}\n"
                             "  elseif event.path == '/log' then\n"
                             "    assert(coroutine.resume(kept.co, event.requestContext.requestId))\n"
                             "    return {body = 'logged'}\n"
                             "  end\n"
                             "  kept.spin()\n"
                             "end\n");
    hooks_event_t ev = event_for("/log");
    hooks_response_t res;
    char *err;

    (void)state;
    res = deep_call(vm, "/make", 8);
    assert_body(&res, "made");
    ev.request_id = "req-2";
    assert_int_equal(call(vm, &ev, &res, &err), 0);
    assert_int_equal(fx.nlog, 1);
    assert_string_equal(fx.log[0].rid, "req-2");
    assert_string_equal(fx.log[0].text, "in req-2");
    call_fails(vm, "/spin", "the function ran longer than 50 ms");
    /* A coroutine killed by the CPU limit, closed by a later request: its __close must not run (unhooked). */
    call_fails(vm, "/doomed", "the function ran longer than 50 ms");
    res = call_ok(vm, "/close-doomed");
    assert_body(&res, "false dead");
    hooks_vm_free(vm);
}

/* ---- the edge table ---- */

static void test_json(void **state)
{
    hooks_vm_t *vm = vm_with_limits(
        "local J = edge.json\n"
        "local function eq(a, b, what)\n"
        "  if a ~= b then error(what .. ': got ' .. tostring(a) .. ', want ' .. tostring(b), 2) end\n"
        "end\n"
        "local function fails(f, pat, what)\n"
        "  local ok, e = pcall(f)\n"
        "  if ok then error(what .. ': did not fail', 2) end\n"
        "  if not string.find(e, pat, 1, true) then error(what .. ': wrong message: ' .. e, 2) end\n"
        "end\n"
        "function handler()\n"
        "  eq(J.encode({1, 2, 3}), '[1,2,3]', 'array')\n"
        "  eq(J.encode({}), '{}', 'empty')\n"
        "  eq(J.encode({a = 1}), '{\"a\":1}', 'object')\n"
        "  eq(J.encode({[2] = 'b'}), '{\"2\":\"b\"}', 'integer key')\n"
        "  eq(J.encode('a\"b\\\\c\\n\\1/\\127'), '\"a\\\\\"b\\\\\\\\c\\\\n\\\\u0001/\\127\"', 'escapes')\n"
        "  eq(J.encode(0.5), '0.5', 'float') eq(J.encode(1.0), '1.0', 'whole float') eq(J.encode(-0.1), '-0.1', 'neg')\n"
        "  eq(J.encode(0.1 + 0.2), '0.30000000000000004', 'shortest round trip')\n"
        "  eq(J.encode(1e300), '1e+300', 'exp')\n"
        "  eq(J.encode(math.maxinteger), '9223372036854775807', 'maxinteger')\n"
        "  eq(J.encode(math.mininteger), '-9223372036854775808', 'mininteger')\n"
        "  eq(J.encode(true), 'true', 'true') eq(J.encode(J.null), 'null', 'null') eq(J.encode(nil), 'null', 'nil')\n"
        "  eq(J.encode({J.null, false}), '[null,false]', 'null in array')\n"
        "  eq(J.encode('h\\195\\169llo'), '\"h\\195\\169llo\"', 'utf8')\n"
        "  fails(function() J.encode(0/0) end, 'NaN', 'nan')\n"
        "  fails(function() J.encode(-math.huge) end, 'NaN and infinities', 'inf')\n"
        "  local t = {} t.self = t fails(function() J.encode(t) end, 'contains itself', 'cycle')\n"
        "  local a = {} a[1] = {a} fails(function() J.encode(a) end, 'contains itself', 'cycle through an array')\n"
        "  local deep, cur = {}, nil cur = deep for i = 1, 64 do cur[1] = {} cur = cur[1] end\n"
        "  fails(function() J.encode(deep) end, 'nested deeper than 64', 'depth')\n"
        "  local ok64 = {} cur = ok64 for i = 1, 63 do cur[1] = {} cur = cur[1] end\n"
        "  eq(#J.encode(ok64), 128, '64 levels')\n"
        "  fails(function() J.encode({f = print}) end, 'a function value has no JSON form', 'function')\n"
        "  fails(function() J.encode({[true] = 1}) end, 'a boolean key', 'boolean key')\n"
        "  fails(function() J.encode({[1.5] = 1}) end, 'a float key', 'float key')\n"
        "  fails(function() J.encode('\\255') end, 'not valid UTF-8', 'bad utf8')\n"
        "  fails(function() J.encode(coroutine.create(print)) end, 'a thread value', 'thread')\n"
        "  fails(function() J.encode() end, 'bad argument #1', 'no argument')\n"
        "  local v = J.decode('{\"a\":[1,2.5,{\"b\":null}],\"c\":\"\\\\u00e9\\\\ud83d\\\\ude00\\\\n\",\"d\":true,'\n"
        "                     .. '\"e\":-0,\"big\":12345678901234567890,\"f\":false,\"g\":-1.5e-3}')\n"
        "  eq(v.a[1], 1, 'int') eq(math.type(v.a[1]), 'integer', 'int type') eq(v.a[2], 2.5, 'float')\n"
        "  eq(v.a[3].b, J.null, 'null') eq(v.c, '\\195\\169\\240\\159\\152\\128\\n', 'escapes')\n"
        "  eq(v.d, true, 'true') eq(v.f, false, 'false') eq(v.e, 0, '-0') eq(v.g, -0.0015, 'exp')\n"
        "  eq(math.type(v.big), 'float', 'big') eq(#v.a, 3, 'array length')\n"
        "  eq(J.decode('-9223372036854775808'), math.mininteger, 'min int')\n"
        "  eq(math.type(J.decode('9223372036854775808')), 'float', 'past max int')\n"
        "  eq(J.decode(' \"x\" '), 'x', 'top-level string') eq(J.decode('{\"k\":1,\"k\":2}').k, 2, 'last wins')\n"
        "  eq(next(J.decode('{}')), nil, 'empty object') eq(#J.decode('[]'), 0, 'empty array')\n"
        "  fails(function() J.decode('[1,]') end, 'edge.json.decode: unexpected character at byte 3', 'trailing comma')\n"
        "  fails(function() J.decode('{\"a\"}') end, \"expected ':'\", 'missing colon')\n"
        "  fails(function() J.decode('{a:1}') end, 'expected a string key', 'bare key')\n"
        "  fails(function() J.decode('[1] x') end, 'unexpected text after the value', 'trailing')\n"
        "  fails(function() J.decode('') end, 'unexpected end', 'empty')\n"
        "  fails(function() J.decode('[1') end, 'unexpected end', 'unterminated array')\n"
        "  fails(function() J.decode('\"abc') end, 'unterminated string', 'unterminated string')\n"
        "  fails(function() J.decode('\"\\\\ud800\"') end, 'unpaired surrogate', 'lone high')\n"
        "  fails(function() J.decode('\"\\\\udc00\"') end, 'unpaired surrogate', 'lone low')\n"
        "  fails(function() J.decode('\"\\\\x\"') end, 'bad escape', 'bad escape')\n"
        "  fails(function() J.decode('\"\\255\"') end, 'not valid UTF-8', 'bad utf8')\n"
        "  fails(function() J.decode('\"\\237\\160\\128\"') end, 'not valid UTF-8', 'encoded surrogate')\n"
        "  fails(function() J.decode('\"a\\nb\"') end, 'control character', 'raw newline')\n"
        "  fails(function() J.decode('1e999') end, 'number out of range', 'huge')\n"
        "  fails(function() J.decode('01') end, 'unexpected text', 'leading zero')\n"
        "  fails(function() J.decode('1.') end, 'bad number', 'bare dot')\n"
        "  fails(function() J.decode('-') end, 'bad number', 'bare minus')\n"
        "  fails(function() J.decode('NaN') end, 'unexpected character', 'NaN')\n"
        "  fails(function() J.decode('nul') end, 'unexpected character', 'short literal')\n"
        "  fails(function() J.decode(string.rep('[', 65) .. string.rep(']', 65)) end, 'nested too deep', 'deep')\n"
        "  eq(type(J.decode(string.rep('[', 64) .. string.rep(']', 64))), 'table', '64 levels')\n"
        "  local src = {name = 'x', list = {1, 2, 3}, nested = {ok = true, n = J.null}, f = 0.25, s = '\\0\\31'}\n"
        "  local back = J.decode(J.encode(src))\n"
        "  eq(back.name, 'x', 'rt name') eq(back.list[3], 3, 'rt list') eq(back.nested.n, J.null, 'rt null')\n"
        "  eq(back.nested.ok, true, 'rt bool') eq(back.f, 0.25, 'rt float') eq(back.s, '\\0\\31', 'rt controls')\n"
        "  return {body = J.encode({s = 'caf\\195\\169 \\226\\130\\172 \\240\\159\\152\\128 \"q\" \\\\ \\t'})}\n"
        "end\n",
        FUNCTIONAL_CPU_MS, TEST_MEMORY);
    hooks_response_t res = call_ok(vm, "/");
    json_t *j;

    (void)state;
    j = json_body(&res); /* jansson reads what the encoder wrote */
    assert_string_equal(jstr(j, "s"), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \"q\" \\ \t");
    json_decref(j);
    hooks_vm_free(vm);
}

static void test_hashes_and_base64(void **state)
{
    hooks_vm_t *vm = vm_with_limits(
        "local function eq(a, b, what)\n"
        "  if a ~= b then error(what .. ': got ' .. tostring(a) .. ', want ' .. tostring(b), 2) end\n"
        "end\n"
        "function handler()\n"
        "  eq(edge.sha256('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', 'sha256 abc')\n"
        "  eq(edge.sha256(''), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'sha256 empty')\n"
        "  eq(edge.hmac_sha256('Jefe', 'what do ya want for nothing?'),\n"
        "     '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843', 'RFC 4231 case 2')\n"
        "  eq(edge.hmac_sha256(string.rep('\\170', 131),\n"
        "                      'Test Using Larger Than Block-Size Key - Hash Key First'),\n"
        "     '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54', 'RFC 4231 case 6')\n"
        "  local B = edge.base64\n"
        "  eq(B.encode(''), '', 'empty') eq(B.encode('f'), 'Zg==', 'f') eq(B.encode('fo'), 'Zm8=', 'fo')\n"
        "  eq(B.encode('foobar'), 'Zm9vYmFy', 'foobar') eq(B.decode('Zm9vYmFy'), 'foobar', 'decode')\n"
        "  eq(B.decode(''), '', 'decode empty') eq(B.decode('Zg=='), 'f', 'decode f')\n"
        "  eq(B.decode(B.encode('\\0\\1\\255\\254')), '\\0\\1\\255\\254', 'binary round trip')\n"
        "  eq(B.decode('Zg'), 'f', 'unpadded') eq(B.decode('Zm9vYg'), 'foob', 'unpadded 2')\n"
        "  eq(B.decode('Zm8'), 'fo', 'unpadded 3') eq(B.decode('+/+/'), '\\251\\255\\191', 'alphabet')\n"
        "  for _, bad in ipairs({'Zm9v!', 'Zg=a', 'Zg=', 'Z', 'Zm9vY', ' Zm9v', 'Zm9v\\nYmFy', 'Zm9v-_', 'Zg===',\n"
        "                        '=Zg', 'Z=g='}) do\n"
        "    local ok, e = pcall(B.decode, bad)\n"
        "    if ok then error('decoded ' .. bad) end\n"
        "    assert(e:find('edge.base64.decode: not base64', 1, true), e)\n"
        "  end\n"
        "  local t = edge.time()\n"
        "  eq(math.type(t), 'float', 'time type')\n"
        "  return {body = string.format('%.3f', t)}\n"
        "end\n",
        FUNCTIONAL_CPU_MS, TEST_MEMORY);
    hooks_response_t res = call_ok(vm, "/");
    double t = strtod(res.body, NULL);

    (void)state;
    assert_true(t > (double)time(NULL) - 5 && t < (double)time(NULL) + 5);
    hooks_vm_free(vm);
}

static void test_log(void **state)
{
    hooks_vm_t *vm = vm_with("edge.log('loading', 1, nil, true)\n"
                             "function handler(event)\n"
                             "  edge.log('line\\r\\nforged: yes', '\\0\\t', setmetatable({}, {__tostring = function()\n"
                             "    return 'custom' end}))\n"
                             "  print('from print', 2.5)\n"
                             "  edge.log(string.rep('y', 10000))\n"
                             "  return {}\n"
                             "end\n");

    (void)state;
    assert_int_equal(fx.nlog, 1);
    assert_string_equal(fx.log[0].rid, "(null)"); /* load time: no request */
    assert_string_equal(fx.log[0].text, "loading 1 nil true");
    call_ok(vm, "/");
    assert_int_equal(fx.nlog, 4);
    assert_string_equal(fx.log[1].rid, "req-1");
    assert_string_equal(fx.log[1].text, "line\\r\\nforged: yes \\x00\t custom");
    assert_string_equal(fx.log[2].text, "from print 2.5");
    assert_int_equal(fx.log[3].len, 4096 + 3);
    assert_memory_equal(fx.log[3].text + 4096, "...", 3);
    hooks_vm_free(vm);
}

static void test_require(void **state)
{
    static const char util[] = "edge.log('util loaded', ...)\n"
                               "local M = {}\n"
                               "prefix = 'hi '\n"
                               "function M.greet(n) return prefix .. n end\n"
                               "function M.set() prefix = 'x' end\n"
                               "return M\n";
    static const char self[] = "return require('lib.selfish')\n";
    char *u = write_text("lib/util.lua", util), *s = write_text("lib/selfish.lua", self);
    char *bad = write_text("lib/broken.lua", "error('broken module')\n");
    hooks_vm_t *vm = vm_with("local util = require('lib.util')\n"
                             "function handler(event)\n"
                             "  if event.path == '/set' then util.set() end\n"
                             "  if event.path == '/self' then require('lib.selfish') end\n"
                             "  if event.path == '/broken' then require('lib.broken') end\n"
                             "  assert(require('lib.util') == util, 'not cached')\n"
                             "  assert(prefix == nil, 'module globals are its own')\n"
                             "  return {body = util.greet(event.path)}\n"
                             "end\n");
    hooks_response_t res;

    (void)state;
    res = call_ok(vm, "/a");
    assert_body(&res, "hi /a");
    res = call_ok(vm, "/b");
    assert_body(&res, "hi /b");
    assert_int_equal(fx.nlog, 1); /* loaded once */
    assert_string_equal(fx.log[0].text, "util loaded lib.util");
    call_fails(vm, "/set", "assignment to global 'prefix'");
    call_fails(vm, "/self", "requires itself");
    call_fails(vm, "/broken", "broken module");
    call_fails(vm, "/broken", "broken module"); /* not cached as loaded */
    res = call_ok(vm, "/c");
    assert_body(&res, "hi /c");
    hooks_vm_free(vm);
    free(u);
    free(s);
    free(bad);
}

static void test_require_without_dir(void **state)
{
    char *path = write_script("function handler() return require('lib.util') end\n"), err[256];
    const char *files[] = {path};
    hooks_options_t o = options(files, 1);
    hooks_vm_t *vm;

    (void)state;
    o.dir = NULL;
    assert_non_null(vm = hooks_vm_new(&o, err, sizeof(err)));
    call_fails(vm, "/", "require('lib.util'): no scripts directory is configured");
    hooks_vm_free(vm);
    free(path);
}

/* ---- runs: on_request, on_response, edge.fetch, edge.purge, edge.respond ---- */

static hooks_request_t request_for(const char *path, const char *query)
{
    hooks_request_t rq = {.method = "GET",
                          .method_len = 3,
                          .scheme = "https",
                          .host = "example.com",
                          .host_len = 11,
                          .path = path,
                          .path_len = strlen(path),
                          .query = query,
                          .query_len = query != NULL ? strlen(query) : 0,
                          .route = "/{proxy+}",
                          .client_ip = "192.0.2.1",
                          .request_id = "req-1"};
    return rq;
}

static hooks_status_t start_request(hooks_vm_t *vm, const hooks_request_t *rq, hooks_outcome_t *out, hooks_run_t **run)
{
    *run = (hooks_run_t *)&fx; /* must be set to NULL unless the run waits */
    return hooks_start_request(vm, 0, rq, pool_alloc, &fx.pool, out, run);
}

static hooks_status_t start_response(hooks_vm_t *vm, const hooks_request_t *rq, const hooks_response_t *res, hooks_outcome_t *out,
                                     hooks_run_t **run)
{
    *run = (hooks_run_t *)&fx;
    return hooks_start_response(vm, 0, rq, res, pool_alloc, &fx.pool, out, run);
}

/* Fails the test unless st is HOOKS_DONE (the run over, no error). */
static void assert_done(hooks_status_t st, const hooks_outcome_t *out, const char *what)
{
    if (st != HOOKS_DONE)
        fail_msg("%s: status %d, want HOOKS_DONE: %s", what, (int)st, out->error != NULL ? out->error : "(no message)");
    assert_null(out->error);
}

/* Fails the test unless st is HOOKS_FAILED with a message that has want; returns the message. */
static const char *assert_failed(hooks_status_t st, const hooks_outcome_t *out, const char *what, const char *want)
{
    if (st != HOOKS_FAILED)
        fail_msg("%s: status %d, want HOOKS_FAILED with \"%s\"", what, (int)st, want);
    if (out->error == NULL)
        fail_msg("%s: failed without a message", what);
    if (strstr(out->error, want) == NULL)
        fail_msg("%s: message \"%s\" does not have \"%s\"", what, out->error, want);
    assert_int_equal(out->responded, 0);
    assert_null(out->response.body);
    assert_int_equal(out->response.nheaders, 0);
    return out->error;
}

/* on_request for path (no query), run to its end without waiting. */
static hooks_outcome_t request_ok(hooks_vm_t *vm, const hooks_request_t *rq)
{
    hooks_outcome_t out;
    hooks_run_t *run;
    hooks_status_t st = start_request(vm, rq, &out, &run);

    assert_done(st, &out, rq->path);
    assert_null(run);
    return out;
}

static const char *request_fails(hooks_vm_t *vm, const hooks_request_t *rq, const char *want)
{
    static hooks_outcome_t out; /* its strings are in the pool: the message lives until the test's teardown */
    hooks_run_t *run;
    hooks_status_t st = start_request(vm, rq, &out, &run);
    const char *err = assert_failed(st, &out, rq->path, want);

    assert_null(run);
    return err;
}

/* Starts on_request for rq and fails the test unless it waits; returns the run. */
static hooks_run_t *request_waits(hooks_vm_t *vm, const hooks_request_t *rq, hooks_outcome_t *out)
{
    hooks_run_t *run;
    hooks_status_t st = start_request(vm, rq, out, &run);

    if (st != HOOKS_WAITING)
        fail_msg("%.*s: status %d, want HOOKS_WAITING: %s", (int)rq->path_len, rq->path, (int)st,
                 out->error != NULL ? out->error : "(no message)");
    assert_non_null(run);
    assert_non_null(hooks_run_wait(run));
    return run;
}

static hooks_status_t resume_fetch(hooks_run_t *run, int status, const hooks_kv_t *headers, size_t nheaders, const char *body,
                                   const char *error)
{
    hooks_fetch_result_t r = {.status = status,
                              .error = error,
                              .headers = headers,
                              .nheaders = nheaders,
                              .body = body,
                              .body_len = body != NULL ? strlen(body) : 0};
    return hooks_resume_fetch(run, &r);
}

static void assert_bytes(const char *s, size_t len, const char *want)
{
    if (s == NULL)
        fail_msg("NULL, want \"%s\"", want);
    if (len != strlen(want) || memcmp(s, want, len) != 0)
        fail_msg("\"%.*s\", want \"%s\"", (int)len, s, want);
}

static const hooks_kv_t *find_kv(const hooks_kv_t *kv, size_t n, const char *name, size_t nth)
{
    for (size_t i = 0; i != n; ++i)
        if (kv[i].name_len == strlen(name) && memcmp(kv[i].name, name, kv[i].name_len) == 0 && nth-- == 0)
            return &kv[i];
    return NULL;
}

static void assert_kv(const hooks_kv_t *kv, size_t n, const char *name, size_t nth, const char *value)
{
    const hooks_kv_t *h = find_kv(kv, n, name, nth);

    if (h == NULL)
        fail_msg("no %s #%zu", name, nth);
    assert_bytes(h->value, h->value_len, value);
}

static void assert_no_request_change(const hooks_outcome_t *out)
{
    assert_null(out->request.path);
    assert_null(out->request.query);
    assert_int_equal(out->request.headers_changed, 0);
    assert_null(out->request.headers);
    assert_null(out->request.cache_key);
    assert_null(out->request.origin);
    assert_int_equal(out->responded, 0);
}

static void test_request_fields(void **state)
{
    static const hooks_kv_t headers[] = {{"Host", 4, "api.example.com", 15},
                                         {"X-Multi", 7, "a", 1},
                                         {"x-multi", 7, "b", 1},
                                         {"Cookie", 6, "a=1", 3},
                                         {"cookie", 6, "b=2", 3},
                                         {"Accept", 6, "*/*", 3}};
    static const hooks_kv_t params[] = {{"id", 2, "42", 2}, {"kind", 4, "box", 3}};
    static const char claims[] = "{\"sub\":\"alice\",\"roles\":[\"a\",\"b\"],\"n\":null}";
    hooks_vm_t *vm = vm_with_limits("local J = edge.json\n"
                                    "function on_request(req)\n"
                                    "  local h = req.headers\n"
                                    "  assert(req.headers == h, 'req.headers is not kept')\n"
                                    "  assert(req.nope == nil, 'an unknown field is not nil')\n"
                                    "  local a = req.args\n"
                                    "  local body = J.encode({method = req.method, path = req.path, query = req.query,\n"
                                    "    x = a.x, y = a.y, z = a.z, flag = a.flag, bad = a.bad, rep = a.rep,\n"
                                    "    multi = h['x-multi'], cookie = h.cookie, host_header = h.host, accept = h.accept,\n"
                                    "    upper = h['X-Multi'] == nil, params = req.params, route = req.route,\n"
                                    "    client_ip = req.client_ip, request_id = req.request_id, claims = req.claims,\n"
                                    "    api_key_id = req.api_key_id, host = req.host, scheme = req.scheme,\n"
                                    "    body_ok = req.body == 'payload\\0x'})\n"
                                    "  edge.respond(200, {['x-a'] = '1', ['set-cookie'] = {'a=1', 'b=2'}}, body)\n"
                                    "  error('edge.respond returned')\n"
                                    "end\n",
                                    FUNCTIONAL_CPU_MS, TEST_MEMORY);
    hooks_request_t rq = request_for("/items/42", "x=first&x=a%20b&y=c+d&z=%41%4a%2&flag&bad=%zz&rep=1&rep=2");
    hooks_outcome_t out;
    json_t *j, *c;

    (void)state;
    rq.method = "PUT";
    rq.host = "api.example.com:8443";
    rq.host_len = 20;
    rq.headers = headers;
    rq.nheaders = sizeof(headers) / sizeof(headers[0]);
    rq.params = params;
    rq.nparams = 2;
    rq.route = "/items/{id}";
    rq.body = "payload\0x";
    rq.body_len = 9;
    rq.client_ip = "203.0.113.9";
    rq.request_id = "req-77";
    rq.claims_json = claims;
    rq.claims_len = sizeof(claims) - 1;
    rq.api_key_id = "key-7";
    out = request_ok(vm, &rq);
    assert_int_equal(out.responded, 1);
    assert_int_equal(out.response.status, 200);
    assert_int_equal(out.response.nheaders, 3);
    assert_header(&out.response, "x-a", 0, "1");
    assert_header(&out.response, "set-cookie", 0, "a=1");
    assert_header(&out.response, "set-cookie", 1, "b=2");
    assert_null(find_header(&out.response, "set-cookie", 2));
    assert_null(out.request.path); /* edge.respond: nothing of the request is read back */
    assert_int_equal(out.request.headers_changed, 0);
    j = json_body(&out.response);
    assert_string_equal(jstr(j, "method"), "PUT");
    assert_string_equal(jstr(j, "path"), "/items/42");
    assert_string_equal(jstr(j, "query"), "x=first&x=a%20b&y=c+d&z=%41%4a%2&flag&bad=%zz&rep=1&rep=2");
    assert_string_equal(jstr(j, "x"), "a b"); /* decoded, the last of a repeated name */
    assert_string_equal(jstr(j, "y"), "c d");
    assert_string_equal(jstr(j, "z"), "AJ%2"); /* a cut escape is kept as it is */
    assert_string_equal(jstr(j, "flag"), "");
    assert_string_equal(jstr(j, "bad"), "%zz");
    assert_string_equal(jstr(j, "rep"), "2");
    assert_string_equal(jstr(j, "multi"), "a, b");
    assert_string_equal(jstr(j, "cookie"), "a=1; b=2");
    assert_string_equal(jstr(j, "host_header"), "api.example.com");
    assert_string_equal(jstr(j, "accept"), "*/*");
    assert_true(json_is_true(json_object_get(j, "upper"))); /* names are lower-case */
    assert_string_equal(jstr(j, "params.id"), "42");
    assert_string_equal(jstr(j, "params.kind"), "box");
    assert_string_equal(jstr(j, "route"), "/items/{id}");
    assert_string_equal(jstr(j, "client_ip"), "203.0.113.9");
    assert_string_equal(jstr(j, "request_id"), "req-77");
    assert_string_equal(jstr(j, "claims.sub"), "alice");
    c = json_object_get(j, "claims");
    assert_jarray(json_object_get(c, "roles"), "a", "b");
    assert_true(json_is_null(json_object_get(c, "n")));
    assert_string_equal(jstr(j, "api_key_id"), "key-7");
    assert_string_equal(jstr(j, "host"), "api.example.com:8443");
    assert_string_equal(jstr(j, "scheme"), "https");
    assert_true(json_is_true(json_object_get(j, "body_ok")));
    json_decref(j);
    hooks_vm_free(vm);
}

/* What a minimal request gives: nil for the optional fields, empty tables for the maps. */
static void test_request_fields_minimal(void **state)
{
    hooks_vm_t *vm = vm_with("function on_request(req)\n"
                             "  assert(req.query == nil, 'query') assert(next(req.args) == nil, 'args')\n"
                             "  assert(next(req.headers) == nil, 'headers') assert(next(req.params) == nil, 'params')\n"
                             "  assert(req.body == nil, 'body') assert(req.claims == nil, 'claims')\n"
                             "  assert(req.api_key_id == nil, 'api_key_id') assert(req.scheme == 'http', 'scheme')\n"
                             "  assert(req.cache_key == nil and req.origin == nil, 'cache_key, origin')\n"
                             "  edge.respond(204)\n"
                             "end\n");
    hooks_request_t rq = request_for("/", NULL);
    hooks_outcome_t out;

    (void)state;
    rq.scheme = "http";
    out = request_ok(vm, &rq);
    assert_int_equal(out.responded, 1);
    assert_int_equal(out.response.status, 204);
    assert_null(out.response.body);
    assert_int_equal(out.response.nheaders, 0);
    hooks_vm_free(vm);
}

static const char changes_src[] =
    "function on_request(req)\n"
    "  local p = req.path\n"
    "  if p == '/rewrite' then\n"
    "    req.path = '/new/path'\n"
    "    assert(req.path == '/new/path', 'req.path does not read back')\n"
    "    req.query = 'a=1&b=%20'\n"
    "    assert(req.query == 'a=1&b=%20', 'req.query does not read back')\n"
    "    local h = req.headers\n"
    "    h['x-added'] = 'yes'\n"
    "    h['x-remove'] = nil\n"
    "    h['X-Upper'] = 42\n"
    "    req.cache_key = 'ck:' .. req.args.lang\n"
    "    req.origin = '/other/{x}'\n"
    "  elseif p == '/drop-query' then\n"
    "    req.query = nil\n"
    "  elseif p == '/replace-headers' then\n"
    "    req.headers = {only = 'one', ['X-Two'] = 2}\n"
    "    assert(req.headers.only == 'one', 'req.headers does not read back')\n"
    "  elseif p == '/clear-headers' then\n"
    "    req.headers = {}\n"
    "  elseif p == '/read-only' then\n"
    "    local _ = {req.path, req.query, req.args, req.method, req.host, req.params, req.route, req.claims}\n"
    "    req.path = '/read-only'\n"
    "    req.query = req.query\n"
    "  elseif p == '/unset' then\n"
    "    req.cache_key = 'x' req.cache_key = nil\n"
    "    req.origin = '/o' req.origin = nil\n"
    "  end\n"
    "end\n";

static void test_request_changes(void **state)
{
    static const hooks_kv_t headers[] = {{"X-Remove", 8, "x", 1}, {"Accept", 6, "*/*", 3}, {"x-keep", 6, "k", 1}};
    hooks_vm_t *vm = vm_with(changes_src);
    hooks_request_t rq = request_for("/rewrite", "lang=fr");
    hooks_outcome_t out;

    (void)state;
    rq.headers = headers;
    rq.nheaders = 3;
    out = request_ok(vm, &rq);
    assert_int_equal(out.responded, 0);
    assert_bytes(out.request.path, out.request.path_len, "/new/path");
    assert_int_equal(out.request.path[out.request.path_len], '\0');
    assert_bytes(out.request.query, out.request.query_len, "a=1&b=%20");
    assert_int_equal(out.request.headers_changed, 1);
    assert_int_equal(out.request.nheaders, 4);
    assert_kv(out.request.headers, out.request.nheaders, "accept", 0, "*/*");
    assert_kv(out.request.headers, out.request.nheaders, "x-keep", 0, "k");
    assert_kv(out.request.headers, out.request.nheaders, "x-added", 0, "yes");
    assert_kv(out.request.headers, out.request.nheaders, "x-upper", 0, "42"); /* lower-cased, the number a string */
    assert_null(find_kv(out.request.headers, out.request.nheaders, "x-remove", 0));
    assert_bytes(out.request.cache_key, out.request.cache_key_len, "ck:fr");
    assert_string_equal(out.request.origin, "/other/{x}");

    rq = request_for("/drop-query", "a=1");
    out = request_ok(vm, &rq);
    assert_non_null(out.request.query);
    assert_int_equal(out.request.query_len, 0);
    assert_string_equal(out.request.query, "");
    assert_null(out.request.path);
    assert_int_equal(out.request.headers_changed, 0);

    rq = request_for("/drop-query", NULL); /* nothing to drop: no change */
    assert_no_request_change((hooks_outcome_t[]){request_ok(vm, &rq)});

    rq = request_for("/replace-headers", NULL);
    rq.headers = headers;
    rq.nheaders = 3;
    out = request_ok(vm, &rq);
    assert_int_equal(out.request.headers_changed, 1);
    assert_int_equal(out.request.nheaders, 2);
    assert_kv(out.request.headers, 2, "only", 0, "one");
    assert_kv(out.request.headers, 2, "x-two", 0, "2");

    rq = request_for("/clear-headers", NULL);
    rq.headers = headers;
    rq.nheaders = 3;
    out = request_ok(vm, &rq);
    assert_int_equal(out.request.headers_changed, 1); /* the request goes on without a header */
    assert_int_equal(out.request.nheaders, 0);

    rq = request_for("/read-only", "q=1");
    rq.headers = headers;
    rq.nheaders = 3;
    assert_no_request_change((hooks_outcome_t[]){request_ok(vm, &rq)});
    rq = request_for("/unset", NULL);
    assert_no_request_change((hooks_outcome_t[]){request_ok(vm, &rq)});
    rq = request_for("/untouched", "q=1");
    assert_no_request_change((hooks_outcome_t[]){request_ok(vm, &rq)});
    hooks_vm_free(vm);
}

/* req.query = nil, then read: nil (the value written), and the query is still reported dropped. */
static void test_request_query_nil_reads_back(void **state)
{
    hooks_vm_t *vm = vm_with("function on_request(req)\n"
                             "  req.query = nil\n"
                             "  req.cache_key = tostring(req.query)\n"
                             "end\n");
    hooks_request_t rq = request_for("/", "a=1");
    hooks_outcome_t out;
    hooks_run_t *run;
    hooks_status_t st;

    (void)state;
    st = start_request(vm, &rq, &out, &run);
    hooks_vm_free(vm); /* before any failure: the outcome is in the pool */
    assert_done(st, &out, "req.query = nil then read");
    assert_string_equal(out.request.cache_key, "nil"); /* what the hook read back */
    if (out.request.query == NULL)
        fail_msg("req.query = nil, then a read of req.query: the query is not dropped");
    assert_string_equal(out.request.query, "");
}

static void test_request_bad_writes(void **state)
{
    static const struct {
        const char *path, *want;
    } cases[] = {
        {"/path-no-slash", "req.path must start with '/'"},
        {"/path-space", "req.path must start with '/' and have no '?', '#', space or control character"},
        {"/path-query", "req.path must start with '/'"},
        {"/path-crlf", "req.path must start with '/'"},
        {"/path-number", "req.path must be a string"},
        {"/path-nil", "req.path must be a string"},
        {"/query-hash", "req.query must have no '#', space or control character"},
        {"/method", "req.method cannot be set"},
        {"/host", "req.host cannot be set"},
        {"/args", "req.args cannot be set"},
        {"/headers-bad-name", "req.headers: header name 'bad name' is not a token"},
        {"/headers-crlf", "control character"},
        {"/headers-crlf-in-place", "control character"},
        {"/headers-nul", "control character"},
        {"/headers-bool", "header 'x' has a boolean value"},
        {"/headers-array", "header 'x' has a table value"},
        {"/headers-string", "req.headers must be a table"},
        {"/cache-key-table", "req.cache_key must be a string"},
        {"/origin-number", "req.origin must be a string"},
        {"/respond-99", "a status code in 100..599"},
        {"/respond-string", "a status code in 100..599"},
        {"/respond-600", "a status code in 100..599"},
        {"/respond-float", "a status code in 100..599"},
        {"/respond-body-table", "bad argument #3"},
        {"/respond-headers-string", "bad argument #2"},
        {"/respond-bad-header", "not a token"},
        {"/respond-crlf", "control character"},
        {"/yield", "yielding is not supported here"},
        {"/yield-3", "yielding is not supported here"},
    };
    hooks_vm_t *vm = vm_with("local writes = {\n"
                             "  ['/path-no-slash'] = function(req) req.path = 'nope' end,\n"
                             "  ['/path-space'] = function(req) req.path = '/a b' end,\n"
                             "  ['/path-query'] = function(req) req.path = '/a?b' end,\n"
                             "  ['/path-crlf'] = function(req) req.path = '/a\\r\\nX: y' end,\n"
                             "  ['/path-number'] = function(req) req.path = 5 end,\n"
                             "  ['/path-nil'] = function(req) req.path = nil end,\n"
                             "  ['/query-hash'] = function(req) req.query = 'a#b' end,\n"
                             "  ['/method'] = function(req) req.method = 'POST' end,\n"
                             "  ['/host'] = function(req) req.host = 'evil.example' end,\n"
                             "  ['/args'] = function(req) req.args = {} end,\n"
                             "  ['/headers-bad-name'] = function(req) req.headers = {['bad name'] = 'x'} end,\n"
                             "  ['/headers-crlf'] = function(req) req.headers = {x = 'a\\r\\nSet-Cookie: evil=1'} end,\n"
                             "  ['/headers-crlf-in-place'] = function(req) req.headers.x = 'a\\nb' end,\n"
                             "  ['/headers-nul'] = function(req) req.headers = {x = 'a\\0b'} end,\n"
                             "  ['/headers-bool'] = function(req) req.headers = {x = true} end,\n"
                             "  ['/headers-array'] = function(req) req.headers = {x = {'1', '2'}} end,\n"
                             "  ['/headers-string'] = function(req) req.headers = 'x: y' end,\n"
                             "  ['/cache-key-table'] = function(req) req.cache_key = {} end,\n"
                             "  ['/origin-number'] = function(req) req.origin = 1 end,\n"
                             "  ['/respond-99'] = function(req) edge.respond(99) end,\n"
                             "  ['/respond-600'] = function(req) edge.respond(600) end,\n"
                             "  ['/respond-string'] = function(req) edge.respond('201') end,\n"
                             "  ['/respond-float'] = function(req) edge.respond(200.5) end,\n"
                             "  ['/respond-body-table'] = function(req) edge.respond(200, nil, {}) end,\n"
                             "  ['/respond-headers-string'] = function(req) edge.respond(200, 'x: y') end,\n"
                             "  ['/respond-bad-header'] = function(req) edge.respond(200, {['a b'] = 'x'}) end,\n"
                             "  ['/respond-crlf'] = function(req) edge.respond(200, {x = {'ok', 'a\\r\\nb'}}) end,\n"
                             "  ['/yield'] = function(req) coroutine.yield() end,\n"
                             "  ['/yield-3'] = function(req) coroutine.yield(1, 2, 3) end,\n"
                             "}\n"
                             "function on_request(req)\n"
                             "  local w = writes[req.path]\n"
                             "  if w then w(req) edge.log('no error', req.path) end\n"
                             "end\n");

    (void)state;
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        hooks_request_t rq = request_for(cases[i].path, "a=1");
        const char *err = request_fails(vm, &rq, cases[i].want);
        hooks_outcome_t out;

        if (strstr(err, "stack traceback:") == NULL && strstr(err, "bad answer") == NULL &&
            strstr(err, "control character") == NULL)
            fail_msg("%s: no traceback in \"%s\"", cases[i].path, err);
        assert_int_equal(hooks_vm_waiting(vm), 0);
        rq = request_for("/ok", NULL); /* the VM goes on */
        out = request_ok(vm, &rq);
        assert_no_request_change(&out);
    }
    hooks_vm_free(vm);
}

/* The spec (request.c): "a write checks the value". A header value with CR or LF is refused when it is assigned, so
 * that the hook can catch the error where it made it, not when the run is over. */
static void test_request_header_write_checked(void **state)
{
    hooks_vm_t *vm = vm_with("function on_request(req)\n"
                             "  local ok, e = pcall(function() req.headers = {x = 'a\\r\\nSet-Cookie: evil=1'} end)\n"
                             "  if ok then req.headers = {} error('req.headers = {x = \"a\\\\r\\\\n...\"} was accepted') end\n"
                             "  assert(e:find('control character', 1, true), e)\n"
                             "end\n");
    hooks_request_t rq = request_for("/", NULL);
    hooks_outcome_t out;
    hooks_run_t *run;
    hooks_status_t st;

    (void)state;
    st = start_request(vm, &rq, &out, &run);
    hooks_vm_free(vm);
    assert_done(st, &out, "req.headers with CR LF, under pcall");
}

static const char fetch_src[] =
    "local U = 'http://api.example/'\n"
    "local calls = {\n"
    "  ['/ftp'] = function() edge.fetch('ftp://x') end,\n"
    "  ['/no-host'] = function() edge.fetch('http://') end,\n"
    "  ['/url-space'] = function() edge.fetch('http://a b/') end,\n"
    "  ['/url-crlf'] = function() edge.fetch('http://a/\\r\\nX: y') end,\n"
    "  ['/url-table'] = function() edge.fetch({}) end,\n"
    "  ['/opts-string'] = function() edge.fetch(U, 'GET') end,\n"
    "  ['/header-name'] = function() edge.fetch(U, {headers = {['a b'] = 'x'}}) end,\n"
    "  ['/header-crlf'] = function() edge.fetch(U, {headers = {x = 'a\\r\\nb'}}) end,\n"
    "  ['/header-bool'] = function() edge.fetch(U, {headers = {x = true}}) end,\n"
    "  ['/headers-string'] = function() edge.fetch(U, {headers = 'x: y'}) end,\n"
    "  ['/method-space'] = function() edge.fetch(U, {method = 'GE T'}) end,\n"
    "  ['/method-empty'] = function() edge.fetch(U, {method = ''}) end,\n"
    "  ['/body-table'] = function() edge.fetch(U, {body = {}}) end,\n"
    "  ['/timeout-zero'] = function() edge.fetch(U, {timeout = 0}) end,\n"
    "  ['/timeout-string'] = function() edge.fetch(U, {timeout = 'soon'}) end,\n"
    "  ['/wrap'] = function() return coroutine.wrap(function() return edge.fetch(U) end)() end,\n"
    "  ['/resume'] = function()\n"
    "    local ok, e = coroutine.resume(coroutine.create(function() return edge.fetch(U) end))\n"
    "    error(e, 0)\n"
    "  end,\n"
    "  ['/sort'] = function() table.sort({1, 2, 3}, function(a, b) edge.fetch(U) return a < b end) end,\n"
    "}\n"
    "function on_request(req)\n"
    "  local p = req.path\n"
    "  if calls[p] then calls[p]() error('no error from ' .. p) end\n"
    "  if p == '/fetch' then\n"
    "    local res, err = edge.fetch('https://api.example.com/v1?q=1',\n"
    "      {method = 'post', headers = {['X-Token'] = 'abc', ['x-n'] = 7}, body = 'payload', timeout = 2500})\n"
    "    if not res then edge.respond(502, {['x-error'] = err}, 'failed: ' .. tostring(res) .. ' ' .. err) end\n"
    "    edge.respond(res.status, {['x-up'] = res.headers['x-up'], ['content-type'] = res.headers['content-type']},\n"
    "                 res.status .. ' ' .. math.type(res.status) .. ' ' .. res.body)\n"
    "  elseif p == '/two' then\n"
    "    local a = assert(edge.fetch(U .. 'a'))\n"
    "    local b, e = edge.fetch(U .. 'b', {method = 'HEAD'})\n"
    "    edge.respond(200, nil, a.body .. '+' .. tostring(b) .. '+' .. tostring(e))\n"
    "  elseif p == '/pcall' then\n"
    "    local ok, res = pcall(edge.fetch, U)\n"
    "    req.cache_key = tostring(ok) .. ' ' .. res.body\n"
    "  elseif p == '/empty' then\n"
    "    local res = edge.fetch(U)\n"
    "    edge.respond(200, nil, '[' .. res.body .. '] ' .. tostring(next(res.headers)))\n"
    "  end\n"
    "end\n";

static void test_fetch(void **state)
{
    static const hooks_kv_t rheaders[] = {{"content-type", 12, "text/plain", 10}, {"x-up", 4, "1", 1}, {"x-up", 4, "2", 1}};
    hooks_vm_t *vm = vm_with(fetch_src);
    hooks_request_t rq = request_for("/fetch", NULL);
    hooks_outcome_t out;
    hooks_run_t *run;
    const hooks_wait_t *w;
    hooks_status_t st;

    (void)state;
    run = request_waits(vm, &rq, &out);
    assert_int_equal(hooks_vm_waiting(vm), 1);
    w = hooks_run_wait(run);
    assert_int_equal(w->kind, HOOKS_WAIT_FETCH);
    assert_bytes(w->fetch.url, w->fetch.url_len, "https://api.example.com/v1?q=1");
    assert_bytes(w->fetch.method, w->fetch.method_len, "POST");
    assert_int_equal(w->fetch.nheaders, 2);
    assert_kv(w->fetch.headers, 2, "X-Token", 0, "abc");
    assert_kv(w->fetch.headers, 2, "x-n", 0, "7");
    assert_bytes(w->fetch.body, w->fetch.body_len, "payload");
    assert_int_equal(w->fetch.timeout_ms, 2500);
    st = resume_fetch(run, 201, rheaders, 3, "created", NULL);
    assert_done(st, &out, "/fetch resumed");
    assert_int_equal(hooks_vm_waiting(vm), 0);
    assert_int_equal(out.responded, 1);
    assert_int_equal(out.response.status, 201);
    assert_body(&out.response, "201 integer created");
    assert_header(&out.response, "x-up", 0, "1, 2"); /* a repeated name: joined */
    assert_header(&out.response, "content-type", 0, "text/plain");

    run = request_waits(vm, &rq, &out); /* a failed exchange: nil, the reason */
    st = resume_fetch(run, 0, NULL, 0, NULL, "timeout");
    assert_done(st, &out, "/fetch failed");
    assert_int_equal(out.response.status, 502);
    assert_body(&out.response, "failed: nil timeout");
    assert_header(&out.response, "x-error", 0, "timeout");
    run = request_waits(vm, &rq, &out); /* no reason given */
    assert_done(resume_fetch(run, 0, NULL, 0, NULL, NULL), &out, "/fetch failed without a reason");
    assert_int_equal(out.response.status, 502);
    assert_true(out.response.body_len > strlen("failed: nil "));

    rq = request_for("/two", NULL); /* two waits in one run */
    run = request_waits(vm, &rq, &out);
    w = hooks_run_wait(run);
    assert_bytes(w->fetch.url, w->fetch.url_len, "http://api.example/a");
    assert_bytes(w->fetch.method, w->fetch.method_len, "GET");
    assert_int_equal(w->fetch.nheaders, 0);
    assert_null(w->fetch.body);
    assert_int_equal(w->fetch.timeout_ms, 0);
    st = resume_fetch(run, 200, NULL, 0, "A", NULL);
    assert_int_equal(st, HOOKS_WAITING);
    assert_int_equal(hooks_vm_waiting(vm), 1);
    w = hooks_run_wait(run);
    assert_int_equal(w->kind, HOOKS_WAIT_FETCH);
    assert_bytes(w->fetch.url, w->fetch.url_len, "http://api.example/b");
    assert_bytes(w->fetch.method, w->fetch.method_len, "HEAD");
    st = resume_fetch(run, 0, NULL, 0, NULL, "connection refused");
    assert_done(st, &out, "/two");
    assert_body(&out.response, "A+nil+connection refused");

    rq = request_for("/pcall", NULL); /* a wait under pcall */
    run = request_waits(vm, &rq, &out);
    assert_done(resume_fetch(run, 200, NULL, 0, "B", NULL), &out, "/pcall");
    assert_int_equal(out.responded, 0);
    assert_bytes(out.request.cache_key, out.request.cache_key_len, "true B");

    rq = request_for("/empty", NULL); /* a NULL body is "" */
    run = request_waits(vm, &rq, &out);
    assert_done(resume_fetch(run, 204, NULL, 0, NULL, NULL), &out, "/empty");
    assert_body(&out.response, "[] nil");
    assert_int_equal(hooks_vm_waiting(vm), 0);
    hooks_vm_free(vm);
}

static void test_fetch_bad_calls(void **state)
{
    static const struct {
        const char *path, *want;
    } cases[] = {
        {"/ftp", "not an http:// or https:// URL"},
        {"/no-host", "not an http:// or https:// URL"},
        {"/url-space", "not an http:// or https:// URL"},
        {"/url-crlf", "not an http:// or https:// URL"},
        {"/url-table", "bad argument #1"},
        {"/opts-string", "bad argument #2"},
        {"/header-name", "edge.fetch: a header name is not a token"},
        {"/header-crlf", "edge.fetch: the value of header 'x' has a control character"},
        {"/header-bool", "edge.fetch: header 'x' has a boolean value"},
        {"/headers-string", "edge.fetch: headers must be a table"},
        {"/method-space", "edge.fetch: method is not a token"},
        {"/method-empty", "edge.fetch: method must be a non-empty string"},
        {"/body-table", "edge.fetch: body must be a string"},
        {"/timeout-zero", "edge.fetch: timeout must be a number of milliseconds"},
        {"/timeout-string", "edge.fetch: timeout must be a number of milliseconds"},
        {"/wrap", "coroutine"},
        {"/resume", "edge.fetch: cannot wait inside a coroutine made by the script"},
        {"/sort", "yield across a C-call boundary"},
    };
    hooks_vm_t *vm = vm_with(fetch_src);

    (void)state;
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        hooks_request_t rq = request_for(cases[i].path, NULL);
        hooks_outcome_t out;
        hooks_run_t *run;

        request_fails(vm, &rq, cases[i].want);
        assert_int_equal(hooks_vm_waiting(vm), 0);
        rq = request_for("/fetch", NULL);
        run = request_waits(vm, &rq, &out);
        assert_done(resume_fetch(run, 200, NULL, 0, "ok", NULL), &out, "/fetch after a bad call");
        assert_body(&out.response, "200 integer ok");
    }
    hooks_vm_free(vm);
}

/* Waiting is for a request's run: not at load time, not in hooks_call_function. */
static void test_fetch_where(void **state)
{
    hooks_vm_t *vm;
    hooks_event_t ev = event_for("/");
    hooks_outcome_t out;
    hooks_run_t *run;
    hooks_status_t st;

    (void)state;
    assert_contains(vm_error("edge.fetch('http://x.example/')\n", NULL, TEST_CPU_MS), "edge.fetch: not available here");
    assert_contains(vm_error("edge.purge{all = true}\n", NULL, TEST_CPU_MS), "edge.purge: not available here");
    assert_contains(vm_error("edge.respond(200)\n", NULL, TEST_CPU_MS), "edge.respond: not available here");
    vm = vm_with("local ok, e = pcall(edge.fetch, 'http://x.example/')\n"
                 "assert(not ok and e:find('not available here', 1, true), e)\n"
                 "function handler(event)\n"
                 "  local r, e = edge.fetch('http://x.example' .. event.path)\n"
                 "  return {statusCode = r and r.status or 599, body = r and r.body or e}\n"
                 "end\n");
    call_fails(vm, "/", "yielding is not supported here");
    assert_int_equal(hooks_vm_waiting(vm), 0);
    /* a function as a run: it waits, and its answer is the outcome's response */
    run = (hooks_run_t *)&fx;
    st = hooks_start_function(vm, 0, &ev, pool_alloc, &fx.pool, &out, &run);
    assert_int_equal(st, HOOKS_WAITING);
    assert_non_null(run);
    assert_bytes(hooks_run_wait(run)->fetch.url, hooks_run_wait(run)->fetch.url_len, "http://x.example/");
    assert_done(resume_fetch(run, 203, NULL, 0, "from fetch", NULL), &out, "function");
    assert_int_equal(out.responded, 1);
    assert_int_equal(out.response.status, 203);
    assert_body(&out.response, "from fetch");
    hooks_vm_free(vm);
}

/* The time a run waits is not CPU time: the budget counts only what runs. */
static void test_wait_not_counted(void **state)
{
    hooks_vm_t *vm = vm_with_limits("function on_request(req)\n"
                                    "  assert(edge.fetch('http://x.example/'))\n"
                                    "  local n = 0 for i = 1, 20000 do n = n + i end\n"
                                    "  if req.path == '/spin' then while true do end end\n"
                                    "  edge.respond(200, nil, tostring(n))\n"
                                    "end\n",
                                    50, TEST_MEMORY);
    hooks_request_t rq = request_for("/", NULL);
    hooks_outcome_t out;
    hooks_run_t *run;

    (void)state;
    run = request_waits(vm, &rq, &out);
    usleep(120 * 1000);
    assert_done(resume_fetch(run, 200, NULL, 0, "", NULL), &out, "resumed after 120 ms");
    assert_body(&out.response, "200010000");
    /* the budget still holds after a wait */
    rq = request_for("/spin", NULL);
    run = request_waits(vm, &rq, &out);
    usleep(20 * 1000);
    assert_failed(resume_fetch(run, 200, NULL, 0, "", NULL), &out, "/spin", "the function ran longer than 50 ms");
    assert_int_equal(hooks_vm_waiting(vm), 0);
    hooks_vm_free(vm);
}

/* Many short waits in one run: each stretch of running counts once. (A run that uses 40 x ~0.1 ms of CPU is well
 * under its 50 ms budget, whatever the number of waits.) */
static void test_many_waits_cpu(void **state)
{
    hooks_vm_t *vm = vm_with_limits("function on_request(req)\n"
                                    "  for i = 1, 40 do\n"
                                    "    assert(edge.fetch('http://x.example/' .. i))\n"
                                    "    local n = 0 for j = 1, 3000 do n = n + j end\n"
                                    "  end\n"
                                    "  edge.respond(200, nil, 'done')\n"
                                    "end\n",
                                    50, TEST_MEMORY);
    hooks_request_t rq = request_for("/", NULL);
    hooks_outcome_t out;
    hooks_run_t *run;
    hooks_status_t st;
    int waits = 0;

    (void)state;
    run = request_waits(vm, &rq, &out);
    do {
        ++waits;
        st = resume_fetch(run, 200, NULL, 0, "", NULL);
    } while (st == HOOKS_WAITING);
    hooks_vm_free(vm);
    if (st != HOOKS_DONE)
        fail_msg("failed after %d waits: %s", waits, out.error != NULL ? out.error : "(no message)");
    assert_int_equal(waits, 40);
    assert_body(&out.response, "done");
}

/* Several runs of one VM waiting at once, resumed in another order: each gets its own result and outcome. */
/* A script that keeps its run's coroutine (coroutine.running()) cannot resume or close it from another run: that would
 * run the first run's code behind the back of its wait. The first run then finishes normally. */
static void test_own_coroutine_guarded(void **state)
{
    hooks_vm_t *vm = vm_with(
        "local kept = {}\n"
        "function on_request(req)\n"
        "  if req.path == '/keep' then\n"
        "    kept.co = coroutine.running()\n"
        "    local r = assert(edge.fetch('http://x.example/'))\n"
        "    return edge.respond(200, nil, 'kept ' .. r.body)\n"
        "  end\n"
        "  local ok1, e1 = pcall(coroutine.resume, kept.co, 'evil')\n"
        "  local ok2, e2 = pcall(coroutine.close, kept.co)\n"
        "  return edge.respond(200, nil, tostring(ok1) .. ' ' .. tostring(e1) .. ' | ' .. tostring(ok2) .. ' ' .. tostring(e2))\n"
        "end\n");
    hooks_request_t keep = request_for("/keep", NULL), evil = request_for("/evil", NULL);
    hooks_outcome_t ok, oe;
    hooks_run_t *run, *none;

    (void)state;
    run = request_waits(vm, &keep, &ok);
    assert_done(start_request(vm, &evil, &oe, &none), &oe, "/evil");
    assert_true(oe.responded);
    assert_non_null(strstr(oe.response.body, "false"));
    assert_non_null(strstr(oe.response.body, "cannot be resumed or closed by a script"));
    assert_null(strstr(oe.response.body, "true"));
    assert_done(resume_fetch(run, 200, NULL, 0, "fine", NULL), &ok, "/keep");
    assert_string_equal(ok.response.body, "kept fine");
    /* once its run is over, the kept coroutine is nobody's: resuming it is a plain error, not a crash */
    hooks_request_t again = request_for("/evil", NULL);
    assert_done(start_request(vm, &again, &oe, &none), &oe, "/evil again");
    assert_true(oe.responded);
    hooks_vm_free(vm);
}

static void test_concurrent_runs(void **state)
{
    hooks_vm_t *vm = vm_with("function on_request(req)\n"
                             "  local mine = req.path\n"
                             "  local r = assert(edge.fetch('http://x.example' .. mine, {headers = {['x-who'] = mine}}))\n"
                             "  local junk = {} for i = 1, 2000 do junk[i] = mine .. i end\n"
                             "  assert(req.path == mine, 'req.path changed while waiting')\n"
                             "  if req.path == '/b' then req.path = '/b2' return end\n"
                             "  edge.respond(200, {['x-path'] = req.path}, mine .. '=' .. r.body)\n"
                             "end\n");
    static const char *const paths[3] = {"/a", "/b", "/c"};
    hooks_request_t rq[3];
    hooks_outcome_t out[3];
    hooks_run_t *runs[3];
    static const int order[3] = {2, 0, 1};

    (void)state;
    for (int i = 0; i != 3; ++i) {
        rq[i] = request_for(paths[i], NULL);
        runs[i] = request_waits(vm, &rq[i], &out[i]);
        assert_int_equal(hooks_vm_waiting(vm), (size_t)i + 1);
    }
    for (int k = 0; k != 3; ++k) {
        int i = order[k];
        char url[64], body[16];
        const hooks_wait_t *w = hooks_run_wait(runs[i]);

        snprintf(url, sizeof(url), "http://x.example%s", paths[i]);
        assert_bytes(w->fetch.url, w->fetch.url_len, url); /* still valid after other runs allocated and collected */
        assert_kv(w->fetch.headers, w->fetch.nheaders, "x-who", 0, paths[i]);
        snprintf(body, sizeof(body), "result-%d", i);
        assert_done(resume_fetch(runs[i], 200, NULL, 0, body, NULL), &out[i], paths[i]);
        assert_int_equal(hooks_vm_waiting(vm), 2 - (size_t)k);
    }
    for (int i = 0; i != 3; ++i) {
        char want[32];
        if (i == 1) {
            assert_int_equal(out[i].responded, 0);
            assert_bytes(out[i].request.path, out[i].request.path_len, "/b2");
            continue;
        }
        snprintf(want, sizeof(want), "%s=result-%d", paths[i], i);
        assert_int_equal(out[i].responded, 1);
        assert_body(&out[i].response, want);
        assert_header(&out[i].response, "x-path", 0, paths[i]);
        assert_null(out[i].request.path);
    }
    hooks_vm_free(vm);
}

static const char close_src[] = "local kept = {}\n"
                                "function on_request(req)\n"
                                "  if req.path == '/use' then return edge.respond(200, nil, kept.req.path) end\n"
                                "  kept.req = req\n"
                                "  local x <close> = setmetatable({}, {__close = function(_, e)\n"
                                "    edge.log('closed', req.path, e)\n"
                                "    if req.path == '/spin-close' then while true do end end\n"
                                "    if req.path == '/fetch-close' then edge.fetch('http://x.example/close') end\n"
                                "  end})\n"
                                "  edge.fetch('http://x.example/')\n"
                                "  edge.log('resumed', req.path)\n"
                                "  if req.path == '/respond' then edge.respond(200, nil, 'answered') end\n"
                                "  if req.path == '/error' then error('failed after the wait') end\n"
                                "end\n";

/* hooks_run_cancel: the run's to-be-closed variables run (under its CPU budget), its req is over, and the VM goes
 * on. */
static void test_cancel(void **state)
{
    hooks_vm_t *vm = vm_with(close_src);
    hooks_request_t rq = request_for("/cancel", NULL), use = request_for("/use", NULL);
    hooks_outcome_t out;
    hooks_run_t *run;

    (void)state;
    run = request_waits(vm, &rq, &out);
    /* while it waits, its req is valid in its own run only: another request cannot read it */
    request_fails(vm, &use, "req belongs to another request");
    hooks_run_cancel(run);
    assert_int_equal(hooks_vm_waiting(vm), 0);
    assert_int_equal(fx.nlog, 1);
    assert_string_equal(fx.log[0].rid, "req-1");
    assert_string_equal(fx.log[0].text, "closed /cancel nil");
    request_fails(vm, &use, "req is no longer valid: its request is over");

    /* a __close that loops is stopped by the budget; one that waits cannot */
    rq = request_for("/spin-close", NULL);
    run = request_waits(vm, &rq, &out);
    hooks_run_cancel(run);
    assert_int_equal(hooks_vm_waiting(vm), 0);
    rq = request_for("/fetch-close", NULL);
    run = request_waits(vm, &rq, &out);
    hooks_run_cancel(run);
    assert_int_equal(hooks_vm_waiting(vm), 0);

    /* the end of a run closes them */
    fx.nlog = 0;
    rq = request_for("/done", NULL);
    run = request_waits(vm, &rq, &out);
    assert_done(resume_fetch(run, 200, NULL, 0, "", NULL), &out, "/done");
    assert_int_equal(fx.nlog, 2);
    assert_string_equal(fx.log[0].text, "resumed /done");
    assert_string_equal(fx.log[1].text, "closed /done nil");

    rq = request_for("/ok", NULL);
    run = request_waits(vm, &rq, &out);
    assert_done(resume_fetch(run, 200, NULL, 0, "", NULL), &out, "/ok after cancels");
    hooks_vm_free(vm);
}

/* edge.respond ends the hook: its to-be-closed variables run, and they can still read req (the run is not over). */
static void test_respond_closes(void **state)
{
    hooks_vm_t *vm = vm_with(close_src);
    hooks_request_t rq = request_for("/respond", NULL), use = request_for("/use", NULL);
    hooks_outcome_t out;
    hooks_run_t *run;

    (void)state;
    run = request_waits(vm, &rq, &out);
    assert_done(resume_fetch(run, 200, NULL, 0, "", NULL), &out, "/respond");
    assert_body(&out.response, "answered");
    request_fails(vm, &use, "req is no longer valid");
    assert_int_equal(hooks_vm_waiting(vm), 0);
    hooks_vm_free(vm);
    if (fx.nlog != 2)
        fail_msg("%d log lines (want \"resumed /respond\", \"closed /respond nil\"): __close did not run or failed", fx.nlog);
    assert_string_equal(fx.log[0].text, "resumed /respond");
    assert_string_equal(fx.log[1].text, "closed /respond nil");
}

/* A run that fails after a wait: its message has the script's traceback, its req is detached. */
static void test_fail_after_wait(void **state)
{
    hooks_vm_t *vm = vm_with(close_src);
    hooks_request_t rq = request_for("/error", NULL), use = request_for("/use", NULL);
    hooks_outcome_t out;
    hooks_run_t *run;
    const char *err;

    (void)state;
    run = request_waits(vm, &rq, &out);
    err = assert_failed(resume_fetch(run, 200, NULL, 0, "", NULL), &out, "/error", "failed after the wait");
    assert_contains(err, "script_");
    assert_contains(err, "stack traceback:");
    assert_int_equal(hooks_vm_waiting(vm), 0);
    request_fails(vm, &use, "req is no longer valid");
    hooks_vm_free(vm);
}

/* A run that ends with an error closes its to-be-closed variables, as a Lua block left by an error does (the
 * comment on hooks_run_failed() in vm.c says so). */
/* A failed run's to-be-closed variables are not run: when the failure is the CPU budget, Lua left the coroutine with
 * hooks disabled, and a __close would run without a limit (vm.c, sandbox.c's coroutine.close). */
static void test_error_skips_close(void **state)
{
    hooks_vm_t *vm = vm_with(close_src);
    hooks_request_t rq = request_for("/error", NULL);
    hooks_outcome_t out;
    hooks_run_t *run;

    (void)state;
    run = request_waits(vm, &rq, &out);
    assert_failed(resume_fetch(run, 200, NULL, 0, "", NULL), &out, "/error", "failed after the wait");
    hooks_vm_free(vm);
    assert_int_equal(fx.nlog, 1);
    assert_string_equal(fx.log[0].text, "resumed /error");
}

/* hooks_vm_free while runs wait: the VM lives on until the last of them is over (resumed to its end, failed or
 * cancelled); ASan sees a use after free, LSan a VM never freed. */
static void test_free_while_waiting(void **state)
{
    hooks_vm_t *vm = vm_with(close_src);
    hooks_request_t a = request_for("/a", NULL), b = request_for("/respond", NULL), c = request_for("/error", NULL);
    hooks_outcome_t oa, ob, oc;
    hooks_run_t *ra, *rb, *rc;

    (void)state;
    ra = request_waits(vm, &a, &oa);
    rb = request_waits(vm, &b, &ob);
    hooks_vm_free(vm);
    assert_int_equal(hooks_vm_waiting(vm), 2);
    assert_bytes(hooks_run_wait(rb)->fetch.url, hooks_run_wait(rb)->fetch.url_len, "http://x.example/");
    assert_done(resume_fetch(rb, 200, NULL, 0, "", NULL), &ob, "/respond on a freed VM");
    assert_body(&ob.response, "answered");
    assert_int_equal(hooks_vm_waiting(vm), 1);
    assert_done(resume_fetch(ra, 200, NULL, 0, "", NULL), &oa, "/a on a freed VM"); /* the last: frees the VM */
    assert_int_equal(oa.responded, 0);

    vm = vm_with(close_src); /* the last run fails */
    rc = request_waits(vm, &c, &oc);
    hooks_vm_free(vm);
    assert_failed(resume_fetch(rc, 200, NULL, 0, "", NULL), &oc, "/error on a freed VM", "failed after the wait");

    vm = vm_with(close_src); /* the last run is cancelled */
    ra = request_waits(vm, &a, &oa);
    hooks_vm_free(vm);
    fx.nlog = 0;
    hooks_run_cancel(ra);
    assert_int_equal(fx.nlog, 1);
    assert_string_equal(fx.log[0].text, "closed /a nil");
}

/* A req or res kept in a module's table and used by a later run raises an error. */
static void test_kept_objects(void **state)
{
    hooks_vm_t *vm = vm_with("local kept = {}\n"
                             "function on_request(req)\n"
                             "  local p = req.path\n"
                             "  if p == '/keep' then kept.req = req\n"
                             "  elseif p == '/keep-respond' then kept.req = req edge.respond(204)\n"
                             "  elseif p == '/keep-fail' then kept.req = req error('fails')\n"
                             "  elseif p == '/read' then edge.respond(200, nil, kept.req.path)\n"
                             "  elseif p == '/write' then kept.req.path = '/x'\n"
                             "  elseif p == '/res' then local s = kept.res.status\n"
                             "  end\n"
                             "end\n"
                             "function on_response(req, res)\n"
                             "  kept.req, kept.res = req, res\n"
                             "end\n");
    hooks_request_t rq;
    hooks_response_t res = {.status = 200};
    hooks_outcome_t out;
    hooks_run_t *run;
    static const char *const keepers[] = {"/keep", "/keep-respond"};

    (void)state;
    for (size_t i = 0; i != 2; ++i) {
        rq = request_for(keepers[i], NULL);
        request_ok(vm, &rq);
        rq = request_for("/read", NULL);
        request_fails(vm, &rq, "req is no longer valid: its request is over");
        rq = request_for("/write", NULL);
        request_fails(vm, &rq, "req is no longer valid: its request is over");
    }
    rq = request_for("/keep-fail", NULL);
    request_fails(vm, &rq, "fails");
    rq = request_for("/read", NULL);
    request_fails(vm, &rq, "req is no longer valid");
    rq = request_for("/resp", NULL);
    assert_done(start_response(vm, &rq, &res, &out, &run), &out, "on_response");
    rq = request_for("/res", NULL);
    request_fails(vm, &rq, "res is no longer valid: its request is over");
    rq = request_for("/read", NULL);
    request_fails(vm, &rq, "req is no longer valid");
    hooks_vm_free(vm);
}

/* req and res are light userdata handles: a hook that changes nothing allocates nothing, however many times it runs;
 * other light userdata (edge.json.null) share their metatable but are refused by it with Lua's own message. */
static void test_objects_are_handles(void **state)
{
    hooks_vm_t *vm = vm_with("local J = edge.json\n"
                             "local function fails(f, want)\n"
                             "  local ok, e = pcall(f)\n"
                             "  assert(not ok and string.find(e, want, 1, true), tostring(e))\n"
                             "end\n"
                             "function on_request(req)\n"
                             "  if req.method == 'DELETE' then return edge.respond(405) end\n"
                             "  if req.path == '/method' then return edge.respond(200, nil, req['me' .. 'thod']) end\n"
                             "  if req.path ~= '/checks' then return end\n"
                             "  local k = 'pa'\n"
                             "  assert(req[k .. 'th'] == '/checks' and req[string.rep('p', 50)] == nil and req[1] == nil)\n"
                             "  assert(type(req) == 'userdata' and req == req and getmetatable(req) == false)\n"
                             "  local t = {[req] = 1}\n"
                             "  assert(t[req] == 1 and tostring(req):find('^userdata: '))\n"
                             "  fails(function() return J.null.path end, 'attempt to index a userdata value')\n"
                             "  fails(function() J.null.path = '/x' end, 'attempt to index a userdata value')\n"
                             "  fails(function() return J.encode({req}) end, 'userdata')\n"
                             "  assert(getmetatable(J.null) == false and J.null ~= req)\n"
                             "  edge.respond(200, nil, 'checked')\n"
                             "end\n"
                             "function on_response(req, res)\n"
                             "  if res.status == 500 or req.method == 'DELETE' then error('no') end\n"
                             "end\n");
    hooks_request_t rq = request_for("/same", NULL);
    hooks_response_t res = {.status = 200};
    hooks_outcome_t out;
    hooks_run_t *run;
    size_t used;

    (void)state;
    for (int i = 0; i != 3; ++i) { /* the first runs make the coroutine, find the functions, intern "GET" and "/same", and
                                      pay what the collector was owed (it steps only when something is allocated) */
        request_ok(vm, &rq);
        assert_done(start_response(vm, &rq, &res, &out, &run), &out, "on_response");
    }
    used = hooks_vm_memory(vm);
    for (int i = 0; i != 1000; ++i) {
        out = request_ok(vm, &rq);
        assert_no_request_change(&out);
        assert_done(start_response(vm, &rq, &res, &out, &run), &out, "on_response");
    }
    assert_int_equal(hooks_vm_memory(vm), used);
    rq = request_for("/checks", NULL);
    out = request_ok(vm, &rq);
    assert_true(out.responded);
    assert_body(&out.response, "checked");
    static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND", "GETX", "GE"};
    for (size_t i = 0; i != sizeof(methods) / sizeof(methods[0]); ++i) { /* the usual ones come from a table */
        rq = request_for("/method", NULL);
        rq.method = methods[i];
        rq.method_len = strlen(methods[i]);
        out = request_ok(vm, &rq);
        assert_true(out.responded);
        if (strcmp(methods[i], "DELETE") == 0)
            assert_int_equal(out.response.status, 405); /* it reads req.method first */
        else
            assert_body(&out.response, methods[i]);
    }
    hooks_vm_free(vm);
}

/* What a run wrote to its req and res lives while the run needs it even when the script drops them (their values tables
 * are kept by the run's slot); garbage made around the wait makes the collector run. */
static void test_objects_outlive_the_script(void **state)
{
    hooks_vm_t *vm = vm_with("local U = 'http://api.example/'\n"
                             "local function churn() local t = {} for i = 1, 5000 do t[i] = {i} end end\n"
                             "function on_request(req)\n"
                             "  req.cache_key = req.path\n"
                             "  local wait = req.path == '/wait'\n"
                             "  req = nil\n"
                             "  churn()\n"
                             "  if wait then edge.fetch(U) churn() end\n"
                             "end\n"
                             "function on_response(req, res)\n"
                             "  res.status = 201\n"
                             "  local wait = req.path == '/wait'\n"
                             "  req, res = nil, nil\n"
                             "  churn()\n"
                             "  if wait then edge.fetch(U) churn() end\n"
                             "end\n");
    hooks_request_t rq = request_for("/now", NULL);
    hooks_response_t res = {.status = 200};
    hooks_outcome_t out = request_ok(vm, &rq);
    hooks_run_t *run;

    (void)state;
    assert_bytes(out.request.cache_key, out.request.cache_key_len, "/now");
    rq = request_for("/wait", NULL);
    run = request_waits(vm, &rq, &out);
    assert_done(resume_fetch(run, 200, NULL, 0, "x", NULL), &out, "/wait");
    assert_bytes(out.request.cache_key, out.request.cache_key_len, "/wait");
    for (int i = 0; i != 2; ++i) {
        rq = request_for(i == 0 ? "/now" : "/wait", NULL);
        hooks_status_t st = start_response(vm, &rq, &res, &out, &run);
        if (i == 1) {
            assert_int_equal(st, HOOKS_WAITING);
            st = resume_fetch(run, 200, NULL, 0, "x", NULL);
        }
        assert_done(st, &out, "on_response");
        assert_int_equal(out.changes.status, 201);
    }
    hooks_vm_free(vm);
}

static const char response_src[] =
    "local J = edge.json\n"
    "function on_response(req, res)\n"
    "  local p = req.path\n"
    "  if p == '/read' then\n"
    "    local h = res.headers\n"
    "    res.body = J.encode({status = res.status, ct = h['content-type'], cookies = h['set-cookie'],\n"
    "      body = res.body, path = req.path, method = req.method, cacheable = res.cacheable, ttl = res.ttl,\n"
    "      max_ttl = res.max_ttl, xmulti = h['x-multi']})\n"
    "  elseif p == '/no-body' then\n"
    "    if res.body ~= nil then error('res.body is ' .. tostring(res.body)) end\n"
    "    res.status = 203\n"
    "  elseif p == '/write' then\n"
    "    res.status = 404\n"
    "    res.headers = {['Set-Cookie'] = {'x=1', 'y=2'}, ['x-new'] = 'v', ['x-num'] = 5}\n"
    "    res.body = 'replaced'\n"
    "    res.ttl = 60\n"
    "    res.max_ttl = 3600\n"
    "    res.cacheable = false\n"
    "    assert(res.status == 404 and res.ttl == 60 and res.cacheable == false, 'the writes do not read back')\n"
    "  elseif p == '/edit-headers' then\n"
    "    local h = res.headers\n"
    "    h['set-cookie'][3] = 'c=3'\n"
    "    h['content-type'] = nil\n"
    "  elseif p == '/same-status' then res.status = 200\n"
    "  elseif p == '/ttl-nil' then res.ttl = 5 res.ttl = nil res.cacheable = true\n"
    "  elseif p == '/fetch' then\n"
    "    local r = assert(edge.fetch('http://x.example/extra'))\n"
    "    res.body = res.body .. r.body\n"
    "  elseif p == '/req-write' then req.path = '/x'\n"
    "  elseif p == '/req-headers' then req.headers = {}\n"
    "  elseif p == '/respond' then edge.respond(200)\n"
    "  elseif p == '/bad-status' then res.status = 600\n"
    "  elseif p == '/string-status' then res.status = '404'\n"
    "  elseif p == '/bad-ttl' then res.ttl = -1\n"
    "  elseif p == '/float-ttl' then res.max_ttl = 1.5\n"
    "  elseif p == '/bad-body' then res.body = 1\n"
    "  elseif p == '/bad-cacheable' then res.cacheable = 'no'\n"
    "  elseif p == '/bad-field' then res.reason = 'x'\n"
    "  elseif p == '/bad-header' then res.headers = {x = {'ok', 'a\\nb'}}\n"
    "  elseif p == '/bad-header-name' then res.headers = {['a:b'] = 'x'}\n"
    "  end\n"
    "end\n";

static hooks_outcome_t response_ok(hooks_vm_t *vm, const char *path, const hooks_response_t *res)
{
    hooks_request_t rq = request_for(path, NULL);
    hooks_outcome_t out;
    hooks_run_t *run;

    assert_done(start_response(vm, &rq, res, &out, &run), &out, path);
    assert_null(run);
    assert_int_equal(out.responded, 0);
    assert_int_equal(out.request.headers_changed, 0);
    assert_null(out.request.path);
    return out;
}

static void test_response(void **state)
{
    static const hooks_kv_t headers[] = {{"Content-Type", 12, "text/html", 9},
                                         {"Set-Cookie", 10, "a=1", 3},
                                         {"set-cookie", 10, "b=2", 3},
                                         {"X-Multi", 7, "m1", 2},
                                         {"x-multi", 7, "m2", 2}};
    hooks_vm_t *vm = vm_with(response_src);
    hooks_response_t res = {.status = 200, .headers = (hooks_kv_t *)headers, .nheaders = 5, .body = "<p>hi</p>", .body_len = 9};
    hooks_response_t nobody = {.status = 200, .headers = (hooks_kv_t *)headers, .nheaders = 5};
    hooks_outcome_t out;
    hooks_request_t rq;
    hooks_run_t *run;
    json_t *j;

    (void)state;
    out = response_ok(vm, "/read", &res);
    assert_int_equal(out.changes.body_changed, 1);
    j = json_body(&(hooks_response_t){.body = out.changes.body, .body_len = out.changes.body_len});
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 200);
    assert_string_equal(jstr(j, "ct"), "text/html");
    assert_jarray(json_object_get(j, "cookies"), "a=1", "b=2");
    assert_jarray(json_object_get(j, "xmulti"), "m1", "m2"); /* arrays, not joined */
    assert_string_equal(jstr(j, "body"), "<p>hi</p>");
    assert_string_equal(jstr(j, "path"), "/read");
    assert_string_equal(jstr(j, "method"), "GET");
    assert_true(json_is_true(json_object_get(j, "cacheable")));
    assert_null(json_object_get(j, "ttl"));
    assert_null(json_object_get(j, "max_ttl"));
    json_decref(j);
    assert_int_equal(out.changes.status, 0);
    assert_int_equal(out.changes.ttl_s, -1);
    assert_int_equal(out.changes.max_ttl_s, -1);
    assert_int_equal(out.changes.uncacheable, 0);
    /* the headers were handed out: they come back as they are, repeated names as several fields */
    assert_int_equal(out.changes.headers_changed, 1);
    assert_int_equal(out.changes.nheaders, 5);
    assert_kv(out.changes.headers, 5, "content-type", 0, "text/html");
    assert_kv(out.changes.headers, 5, "set-cookie", 0, "a=1");
    assert_kv(out.changes.headers, 5, "set-cookie", 1, "b=2");

    out = response_ok(vm, "/no-body", &nobody);
    assert_int_equal(out.changes.status, 203);
    assert_int_equal(out.changes.body_changed, 0);
    assert_null(out.changes.body);
    assert_int_equal(out.changes.headers_changed, 0);

    out = response_ok(vm, "/write", &res);
    assert_int_equal(out.changes.status, 404);
    assert_int_equal(out.changes.headers_changed, 1);
    assert_int_equal(out.changes.nheaders, 4);
    assert_kv(out.changes.headers, 4, "set-cookie", 0, "x=1");
    assert_kv(out.changes.headers, 4, "set-cookie", 1, "y=2");
    assert_kv(out.changes.headers, 4, "x-new", 0, "v");
    assert_kv(out.changes.headers, 4, "x-num", 0, "5");
    assert_int_equal(out.changes.body_changed, 1);
    assert_bytes(out.changes.body, out.changes.body_len, "replaced");
    assert_int_equal(out.changes.ttl_s, 60);
    assert_int_equal(out.changes.max_ttl_s, 3600);
    assert_int_equal(out.changes.uncacheable, 1);

    out = response_ok(vm, "/edit-headers", &res);
    assert_int_equal(out.changes.headers_changed, 1);
    assert_int_equal(out.changes.nheaders, 5);
    assert_kv(out.changes.headers, 5, "set-cookie", 2, "c=3");
    assert_null(find_kv(out.changes.headers, 5, "content-type", 0));

    out = response_ok(vm, "/same-status", &res);
    assert_int_equal(out.changes.status, 0);
    out = response_ok(vm, "/ttl-nil", &res);
    assert_int_equal(out.changes.ttl_s, -1);
    assert_int_equal(out.changes.uncacheable, 0);
    out = response_ok(vm, "/untouched", &res);
    assert_int_equal(out.changes.status, 0);
    assert_int_equal(out.changes.headers_changed, 0);
    assert_null(out.changes.headers);
    assert_int_equal(out.changes.body_changed, 0);
    assert_int_equal(out.changes.ttl_s, -1);
    assert_int_equal(out.changes.max_ttl_s, -1);
    assert_int_equal(out.changes.uncacheable, 0);

    rq = request_for("/fetch", NULL); /* on_response may wait too */
    assert_int_equal(start_response(vm, &rq, &res, &out, &run), HOOKS_WAITING);
    assert_bytes(hooks_run_wait(run)->fetch.url, hooks_run_wait(run)->fetch.url_len, "http://x.example/extra");
    assert_done(resume_fetch(run, 200, NULL, 0, "<p>more</p>", NULL), &out, "on_response /fetch");
    assert_int_equal(out.responded, 0);
    assert_bytes(out.changes.body, out.changes.body_len, "<p>hi</p><p>more</p>");
    hooks_vm_free(vm);
}

static void test_response_bad(void **state)
{
    static const struct {
        const char *path, *want;
    } cases[] = {
        {"/req-write", "req is read-only in on_response"},
        {"/req-headers", "req is read-only in on_response"},
        {"/respond", "edge.respond: only in on_request"},
        {"/bad-status", "res.status must be an integer in 100..599"},
        {"/string-status", "res.status must be an integer in 100..599"},
        {"/bad-ttl", "res.ttl must be a whole number of seconds"},
        {"/float-ttl", "res.max_ttl must be a whole number of seconds"},
        {"/bad-body", "res.body must be a string"},
        {"/bad-cacheable", "res.cacheable must be true or false"},
        {"/bad-field", "res.reason cannot be set"},
        {"/bad-header", "control character"},
        {"/bad-header-name", "res.headers: header name 'a:b' is not a token"},
    };
    hooks_vm_t *vm = vm_with(response_src);
    hooks_response_t res = {.status = 200, .body = "x", .body_len = 1};

    (void)state;
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        hooks_request_t rq = request_for(cases[i].path, NULL);
        hooks_outcome_t out;
        hooks_run_t *run;

        assert_failed(start_response(vm, &rq, &res, &out, &run), &out, cases[i].path, cases[i].want);
        assert_null(run);
        assert_int_equal(out.changes.status, 0);
        assert_int_equal(out.changes.body_changed, 0);
        response_ok(vm, "/untouched", &res);
    }
    hooks_vm_free(vm);
}

static void test_purge(void **state)
{
    hooks_vm_t *vm = vm_with("local sel = {\n"
                             "  ['/url'] = {url = 'https://example.com/a?b', soft = true},\n"
                             "  ['/prefix'] = {prefix = '/img/'},\n"
                             "  ['/tag'] = {tag = 'product-7', soft = false},\n"
                             "  ['/host'] = {host = 'example.com'},\n"
                             "  ['/all'] = {all = true},\n"
                             "  ['/empty'] = {},\n"
                             "  ['/two'] = {url = 'a', tag = 'b'},\n"
                             "  ['/all-false'] = {all = false},\n"
                             "  ['/url-empty'] = {url = ''},\n"
                             "  ['/url-number'] = {url = 5},\n"
                             "  ['/url-nul'] = {url = 'a\\0b'},\n"
                             "}\n"
                             "function on_request(req)\n"
                             "  if req.path == '/string' then edge.purge('https://example.com/') end\n"
                             "  if req.path == '/wrap' then coroutine.wrap(edge.purge)({all = true}) end\n"
                             "  local n, e = edge.purge(sel[req.path])\n"
                             "  edge.respond(200, nil, tostring(n) .. ' ' .. tostring(e) .. ' ' .. math.type(n or 0.5))\n"
                             "end\n");
    static const struct {
        const char *path;
        hooks_purge_kind_t kind;
        const char *value;
        int soft;
    } ok[] = {
        {"/url", HOOKS_PURGE_URL, "https://example.com/a?b", 1},
        {"/prefix", HOOKS_PURGE_PREFIX, "/img/", 0},
        {"/tag", HOOKS_PURGE_TAG, "product-7", 0},
        {"/host", HOOKS_PURGE_HOST, "example.com", 0},
        {"/all", HOOKS_PURGE_ALL, "", 0},
    };
    static const struct {
        const char *path, *want;
    } bad[] = {
        {"/empty", "edge.purge: give one of url, prefix, tag, host, all"},
        {"/two", "edge.purge: give one of url, prefix, tag, host, all"},
        {"/all-false", "edge.purge: all must be true"},
        {"/url-empty", "edge.purge: url must be a non-empty string"},
        {"/url-number", "edge.purge: url must be a non-empty string"},
        {"/url-nul", "edge.purge: url has a NUL byte"},
        {"/string", "bad argument #1"},
        {"/wrap", "edge.purge: cannot wait inside a coroutine made by the script"},
    };
    hooks_outcome_t out;
    hooks_run_t *run;

    (void)state;
    for (size_t i = 0; i != sizeof(ok) / sizeof(ok[0]); ++i) {
        hooks_request_t rq = request_for(ok[i].path, NULL);
        const hooks_wait_t *w;

        run = request_waits(vm, &rq, &out);
        w = hooks_run_wait(run);
        assert_int_equal(w->kind, HOOKS_WAIT_PURGE);
        assert_int_equal(w->purge.kind, ok[i].kind);
        assert_bytes(w->purge.value, w->purge.value_len, ok[i].value);
        assert_int_equal(w->purge.value[w->purge.value_len], '\0');
        assert_int_equal(w->purge.soft, ok[i].soft);
        assert_done(hooks_resume_purge(run, 3, NULL), &out, ok[i].path);
        assert_body(&out.response, "3 nil integer");
    }
    {
        hooks_request_t rq = request_for("/url", NULL);
        run = request_waits(vm, &rq, &out);
        assert_done(hooks_resume_purge(run, -1, "boom"), &out, "/url failed");
        assert_body(&out.response, "nil boom float");
        run = request_waits(vm, &rq, &out);
        assert_done(hooks_resume_purge(run, 0, NULL), &out, "/url none");
        assert_body(&out.response, "0 nil integer");
    }
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        hooks_request_t rq = request_for(bad[i].path, NULL);
        request_fails(vm, &rq, bad[i].want);
        assert_int_equal(hooks_vm_waiting(vm), 0);
    }
    hooks_vm_free(vm);
}

/* ---- edge.store: marshalling both ways, the wait/resume cycle with canned answers, errors, bad arguments ---- */

/* desc(v): a canonical text of a value, with the Lua type of every number and the kind of every set and binary. */
#define STORE_DESC_LUA                                                                                                             \
    "local function desc(v)\n"                                                                                                     \
    "  if v == edge.null then return 'null' end\n"                                                                                 \
    "  local t = type(v)\n"                                                                                                        \
    "  if t == 'number' then\n"                                                                                                    \
    "    return math.type(v) == 'integer' and ('int:' .. v) or ('float:' .. string.format('%.17g', v))\n"                          \
    "  end\n"                                                                                                                      \
    "  if t == 'string' then return 's:' .. v end\n"                                                                               \
    "  if t == 'boolean' then return tostring(v) end\n"                                                                            \
    "  if t ~= 'table' then return t end\n"                                                                                        \
    "  local mt, parts = getmetatable(v), {}\n"                                                                                    \
    "  if mt == 'edge.store.binary' then return 'bin:' .. edge.base64.encode(v.value) end\n"                                       \
    "  if mt == 'edge.store.set' then\n"                                                                                           \
    "    for i, e in ipairs(v) do parts[i] = desc(e) end\n"                                                                        \
    "    return 'set{' .. table.concat(parts, ',') .. '}'\n"                                                                       \
    "  end\n"                                                                                                                      \
    "  local keys = {}\n"                                                                                                          \
    "  for k in pairs(v) do keys[#keys + 1] = k end\n"                                                                             \
    "  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)\n"                                                    \
    "  for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. '=' .. desc(v[k]) end\n"                                     \
    "  return '{' .. table.concat(parts, ',') .. '}'\n"                                                                            \
    "end\n"

static hooks_status_t resume_store(hooks_run_t *run, int status, const char *body)
{
    return hooks_resume_store(run, status, body, strlen(body));
}

/* Fails the test unless the run waits for the store operation op with a request equal (as JSON) to want. */
static void assert_store_wait(hooks_run_t *run, const char *op, const char *want)
{
    const hooks_wait_t *w = hooks_run_wait(run);
    json_error_t e;
    json_t *got, *exp;

    assert_int_equal(w->kind, HOOKS_WAIT_STORE);
    assert_string_equal(w->store.op, op);
    assert_int_equal(w->store.body[w->store.body_len], '\0');
    if ((got = json_loadb(w->store.body, w->store.body_len, 0, &e)) == NULL)
        fail_msg("%s: the request is not JSON (%s): %.*s", op, e.text, (int)w->store.body_len, w->store.body);
    if ((exp = json_loads(want, 0, &e)) == NULL)
        fail_msg("the test's JSON does not parse (%s): %s", e.text, want);
    if (!json_equal(got, exp))
        fail_msg("%s: request\n  %.*s\nwant\n  %s", op, (int)w->store.body_len, w->store.body, want);
    json_decref(got);
    json_decref(exp);
}

/* Resumes the run with a 200 answer and fails the test unless it waits again. */
static void resume_waits(hooks_run_t *run, const char *answer, const hooks_outcome_t *out)
{
    hooks_status_t st = resume_store(run, 200, answer);

    if (st != HOOKS_WAITING)
        fail_msg("status %d after the answer %s, want HOOKS_WAITING: %s", (int)st, answer,
                 out->error != NULL ? out->error : "(no message)");
}

/* Lua -> DynamoDB JSON: every type, nested, sets, binary, edge.null, integers and floats, and every option of put. */
static void test_store_marshal(void **state)
{
    hooks_vm_t *vm = vm_with("function on_request(req)\n"
                             "  local S = edge.store\n"
                             "  local r = S.put('t', {\n"
                             "    s = 'h\\195\\169', i = 42, neg = -7, big = math.maxinteger, small = math.mininteger, f = 1.5,\n"
                             "    tenth = 0.1, whole = 3.0, third = 1 / 3, e = 1e300, t = true, fl = false, n = edge.null,\n"
                             "    b = S.binary('\\0\\1\\2'), ss = S.set{'a', 'b'}, ns = S.set{1, 2.5}, bs = S.set{S.binary('x')},\n"
                             "    l = {1, 'two', {3}}, m = {x = {y = 'z'}}, empty = {}, ik = {[10] = 'ten'}, esc = 'a\"\\\\\\n'},\n"
                             "    {condition = 'attribute_not_exists(#k)', names = {['#k'] = 'pk'}, values = {[':v'] = 1},\n"
                             "     return_values = 'ALL_OLD', return_values_on_condition_check_failure = 'ALL_OLD'})\n"
                             "  edge.respond(200, nil, tostring(r))\n"
                             "end\n");
    hooks_request_t rq = request_for("/", NULL);
    hooks_outcome_t out;
    hooks_run_t *run;

    (void)state;
    run = request_waits(vm, &rq, &out);
    assert_store_wait(
        run, "PutItem",
        "{\"TableName\":\"t\",\"Item\":{\"s\":{\"S\":\"h\\u00e9\"},\"i\":{\"N\":\"42\"},\"neg\":{\"N\":\"-7\"},"
        "\"big\":{\"N\":\"9223372036854775807\"},\"small\":{\"N\":\"-9223372036854775808\"},\"f\":{\"N\":\"1.5\"},"
        "\"tenth\":{\"N\":\"0.1\"},\"whole\":{\"N\":\"3\"},\"third\":{\"N\":\"0.3333333333333333\"},\"e\":{\"N\":\"1e+300\"},"
        "\"t\":{\"BOOL\":true},\"fl\":{\"BOOL\":false},\"n\":{\"NULL\":true},\"b\":{\"B\":\"AAEC\"},\"ss\":{\"SS\":[\"a\",\"b\"]},"
        "\"ns\":{\"NS\":[\"1\",\"2.5\"]},\"bs\":{\"BS\":[\"eA==\"]},"
        "\"l\":{\"L\":[{\"N\":\"1\"},{\"S\":\"two\"},{\"L\":[{\"N\":\"3\"}]}]},\"m\":{\"M\":{\"x\":{\"M\":{\"y\":{\"S\":\"z\"}}}}},"
        "\"empty\":{\"M\":{}},\"ik\":{\"M\":{\"10\":{\"S\":\"ten\"}}},\"esc\":{\"S\":\"a\\\"\\\\\\n\"}},"
        "\"ConditionExpression\":\"attribute_not_exists(#k)\",\"ExpressionAttributeNames\":{\"#k\":\"pk\"},"
        "\"ExpressionAttributeValues\":{\":v\":{\"N\":\"1\"}},\"ReturnValues\":\"ALL_OLD\","
        "\"ReturnValuesOnConditionCheckFailure\":\"ALL_OLD\"}");
    assert_done(resume_store(run, 200, "{}"), &out, "put");
    assert_body(&out.response, "true");
    assert_int_equal(hooks_vm_waiting(vm), 0);
    hooks_vm_free(vm);
}

/* DynamoDB JSON -> Lua: every type, N as an integer when whole and in range, else a float; and back again unchanged. */
static void test_store_unmarshal(void **state)
{
    hooks_vm_t *vm = vm_with(STORE_DESC_LUA "function on_request(req)\n"
                                            "  local item = edge.store.get('t', {pk = 'a'})\n"
                                            "  local d = desc(item)\n"
                                            "  item.huge, item.tiny, item.l = nil, nil, nil\n"
                                            "  assert(edge.store.put('t2', item))\n"
                                            "  edge.respond(200, nil, d)\n"
                                            "end\n");
    hooks_request_t rq = request_for("/", NULL);
    hooks_outcome_t out;
    hooks_run_t *run;
    static const char same[] =
        "\"s\":{\"S\":\"x\"},\"i\":{\"N\":\"42\"},\"neg\":{\"N\":\"-1.5\"},\"big\":{\"N\":\"9223372036854775807\"},"
        "\"zero\":{\"N\":\"0\"},\"t\":{\"BOOL\":true},\"f\":{\"BOOL\":false},\"n\":{\"NULL\":true},"
        "\"b\":{\"B\":\"AAEC\"},\"ss\":{\"SS\":[\"a\",\"b\"]},\"ns\":{\"NS\":[\"1\",\"2.5\"]},"
        "\"bs\":{\"BS\":[\"eA==\"]},\"m\":{\"M\":{\"x\":{\"M\":{\"y\":{\"L\":[{\"S\":\"z\"},{\"N\":\"7\"}]}}}}}";
    char answer[2048], put[2048];

    (void)state;
    snprintf(answer, sizeof(answer),
             "{\"Item\":{%s,\"huge\":{\"N\":\"9223372036854775808\"},\"tiny\":{\"N\":\"0.000001\"},"
             "\"l\":{\"L\":[{\"N\":\"1\"},{\"L\":[]},{\"M\":{}}]}}}",
             same);
    snprintf(put, sizeof(put), "{\"TableName\":\"t2\",\"Item\":{%s}}", same);
    run = request_waits(vm, &rq, &out);
    assert_store_wait(run, "GetItem", "{\"TableName\":\"t\",\"Key\":{\"pk\":{\"S\":\"a\"}}}");
    resume_waits(run, answer, &out);
    assert_store_wait(run, "PutItem", put);
    assert_done(resume_store(run, 200, "{}"), &out, "get, then put");
    assert_body(&out.response, "{b=bin:AAEC,big=int:9223372036854775807,bs=set{bin:eA==},f=false,"
                               "huge=float:9.2233720368547758e+18,i=int:42,l={1=int:1,2={},3={}},m={x={y={1=s:z,2=int:7}}},"
                               "n=null,neg=float:-1.5,ns=set{int:1,float:2.5},s=s:x,ss=set{s:a,s:b},t=true,"
                               "tiny=float:9.9999999999999995e-07,zero=int:0}");
    hooks_vm_free(vm);
}

/* An item nested as deep as the store allows (32 levels of M) comes back whole. */
static void test_store_deep_answer(void **state)
{
    hooks_vm_t *vm = vm_with("function on_request(req)\n"
                             "  local v, depth = edge.store.get('t', {pk = 'a'}).a, 0\n"
                             "  while type(v) == 'table' do v, depth = v.a, depth + 1 end\n"
                             "  edge.respond(200, nil, depth .. ' ' .. v)\n"
                             "end\n");
    hooks_request_t rq = request_for("/", NULL);
    hooks_outcome_t out;
    hooks_run_t *run;
    char answer[4096], *p = answer;

    (void)state;
    p += sprintf(p, "{\"Item\":{\"a\":");
    for (int i = 0; i != 31; ++i)
        p += sprintf(p, "{\"M\":{\"a\":");
    p += sprintf(p, "{\"S\":\"deep\"}");
    for (int i = 0; i != 31; ++i)
        p += sprintf(p, "}}");
    sprintf(p, "}}");
    run = request_waits(vm, &rq, &out);
    assert_done(resume_store(run, 200, answer), &out, "deep");
    assert_body(&out.response, "31 deep");
    hooks_vm_free(vm);
}

/* Every function's request and result, with canned answers, in one run that waits seven times. */
static void test_store_ops(void **state)
{
    hooks_vm_t *vm =
        vm_with(STORE_DESC_LUA
                "function on_request(req)\n"
                "  local S, out = edge.store, {}\n"
                "  local function add(...) out[#out + 1] = table.concat({...}, ' ') end\n"
                "  local item = S.get('t', {pk = 'a', sk = 1}, {projection = '#n', names = {['#n'] = 'n'}, consistent = true})\n"
                "  add('get', tostring(item), select('#', S.get('t', {pk = 'b'})))\n"
                "  add('update', desc(S.update('t', {pk = 'a'}, {update = 'ADD n :one', values = {[':one'] = 1},\n"
                "    return_values = 'UPDATED_NEW'})))\n"
                "  add('delete', desc(S.delete('t', {pk = 'a'}, {condition = 'n > :z', values = {[':z'] = 0}})))\n"
                "  local page = S.query('t', {key_condition = 'pk = :p', filter = 'x <> :x', values = {[':p'] = 'a', [':x'] = 3},\n"
                "    index = 'byx', limit = 2, forward = false, start_key = {pk = 'a', sk = 0}, select = 'ALL_ATTRIBUTES'})\n"
                "  add('query', #page.items, desc(page.items[2]), page.count, page.scanned_count, desc(page.last_key))\n"
                "  page = S.scan('t', {segment = 0, total_segments = 2, filter = 'attribute_exists(x)'})\n"
                "  add('scan', #page.items, page.count, tostring(page.last_key))\n"
                "  add('transact', tostring(S.transact({\n"
                "    {put = {table = 't', item = {pk = 'c'}, condition = 'attribute_not_exists(pk)'}},\n"
                "    {update = {table = 't', key = {pk = 'a'}, update = 'SET n = :n', values = {[':n'] = 2}}},\n"
                "    {delete = {table = 'u', key = {pk = 'b'}}},\n"
                "    {check = {table = 'u', key = {pk = 'd'}, condition = 'attribute_exists(#p)', names = {['#p'] = 'pk'},\n"
                "              return_values_on_condition_check_failure = 'ALL_OLD'}}})))\n"
                "  edge.respond(200, nil, table.concat(out, '\\n'))\n"
                "end\n");
    hooks_request_t rq = request_for("/", NULL);
    hooks_outcome_t out;
    hooks_run_t *run;

    (void)state;
    run = request_waits(vm, &rq, &out);
    assert_store_wait(run, "GetItem",
                      "{\"TableName\":\"t\",\"Key\":{\"pk\":{\"S\":\"a\"},\"sk\":{\"N\":\"1\"}},\"ProjectionExpression\":\"#n\","
                      "\"ExpressionAttributeNames\":{\"#n\":\"n\"},\"ConsistentRead\":true}");
    resume_waits(run, "{}", &out);
    assert_store_wait(run, "GetItem", "{\"TableName\":\"t\",\"Key\":{\"pk\":{\"S\":\"b\"}}}");
    resume_waits(run, "{}", &out);
    assert_store_wait(run, "UpdateItem",
                      "{\"TableName\":\"t\",\"Key\":{\"pk\":{\"S\":\"a\"}},\"UpdateExpression\":\"ADD n :one\","
                      "\"ExpressionAttributeValues\":{\":one\":{\"N\":\"1\"}},\"ReturnValues\":\"UPDATED_NEW\"}");
    resume_waits(run, "{\"Attributes\":{\"n\":{\"N\":\"5\"}}}", &out);
    assert_store_wait(run, "DeleteItem",
                      "{\"TableName\":\"t\",\"Key\":{\"pk\":{\"S\":\"a\"}},\"ConditionExpression\":\"n > :z\","
                      "\"ExpressionAttributeValues\":{\":z\":{\"N\":\"0\"}}}");
    resume_waits(run, "{}", &out);
    assert_store_wait(run, "Query",
                      "{\"TableName\":\"t\",\"KeyConditionExpression\":\"pk = :p\",\"FilterExpression\":\"x <> :x\","
                      "\"ExpressionAttributeValues\":{\":p\":{\"S\":\"a\"},\":x\":{\"N\":\"3\"}},\"IndexName\":\"byx\",\"Limit\":2,"
                      "\"ScanIndexForward\":false,\"ExclusiveStartKey\":{\"pk\":{\"S\":\"a\"},\"sk\":{\"N\":\"0\"}},"
                      "\"Select\":\"ALL_ATTRIBUTES\"}");
    resume_waits(
        run,
        "{\"Items\":[{\"pk\":{\"S\":\"a\"},\"sk\":{\"N\":\"1\"}},{\"pk\":{\"S\":\"a\"},\"sk\":{\"N\":\"2\"},"
        "\"x\":{\"SS\":[\"q\"]}}],\"Count\":2,\"ScannedCount\":3,\"LastEvaluatedKey\":{\"pk\":{\"S\":\"a\"},\"sk\":{\"N\":\"2\"}}}",
        &out);
    assert_store_wait(run, "Scan",
                      "{\"TableName\":\"t\",\"Segment\":0,\"TotalSegments\":2,\"FilterExpression\":\"attribute_exists(x)\"}");
    resume_waits(run, "{\"Items\":[],\"Count\":0,\"ScannedCount\":0}", &out);
    assert_store_wait(
        run, "TransactWriteItems",
        "{\"TransactItems\":["
        "{\"Put\":{\"TableName\":\"t\",\"Item\":{\"pk\":{\"S\":\"c\"}},\"ConditionExpression\":\"attribute_not_exists(pk)\"}},"
        "{\"Update\":{\"TableName\":\"t\",\"Key\":{\"pk\":{\"S\":\"a\"}},\"UpdateExpression\":\"SET n = :n\","
        "\"ExpressionAttributeValues\":{\":n\":{\"N\":\"2\"}}}},"
        "{\"Delete\":{\"TableName\":\"u\",\"Key\":{\"pk\":{\"S\":\"b\"}}}},"
        "{\"ConditionCheck\":{\"TableName\":\"u\",\"Key\":{\"pk\":{\"S\":\"d\"}},\"ConditionExpression\":\"attribute_exists(#p)\","
        "\"ExpressionAttributeNames\":{\"#p\":\"pk\"},\"ReturnValuesOnConditionCheckFailure\":\"ALL_OLD\"}}]}");
    assert_done(resume_store(run, 200, "{}"), &out, "transact");
    assert_body(&out.response, "get nil 1\n"
                               "update {n=int:5}\n"
                               "delete true\n"
                               "query 2 {pk=s:a,sk=int:2,x=set{s:q}} 2 3 {pk=s:a,sk=int:2}\n"
                               "scan 0 0 nil\n"
                               "transact true");
    assert_int_equal(hooks_vm_waiting(vm), 0);
    hooks_vm_free(vm);
}

/* The store's errors come back as nil, err (never raised): code, message, status, item, reasons. */
static void test_store_errors(void **state)
{
    hooks_vm_t *vm =
        vm_with(STORE_DESC_LUA "function on_request(req)\n"
                               "  local r, e = edge.store.put('t', {pk = 'a'}, {condition = 'attribute_not_exists(pk)'})\n"
                               "  edge.respond(200, nil, tostring(r) .. ' ' .. desc(e))\n"
                               "end\n");
    static const struct {
        int status;
        const char *answer, *want;
    } cases[] = {
        {400,
         "{\"__type\":\"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException\",\"message\":\"The conditional "
         "request failed\",\"Item\":{\"pk\":{\"S\":\"a\"},\"n\":{\"N\":\"1\"}}}",
         "nil {code=s:ConditionalCheckFailedException,item={n=int:1,pk=s:a},message=s:The conditional request failed,"
         "status=int:400}"},
        {400,
         "{\"__type\":\"com.amazonaws.dynamodb.v20120810#TransactionCanceledException\",\"Message\":\"Transaction cancelled\","
         "\"CancellationReasons\":[{\"Code\":\"None\"},{\"Code\":\"ConditionalCheckFailed\",\"Message\":\"The conditional "
         "request failed\",\"Item\":{\"pk\":{\"S\":\"b\"}}}]}",
         "nil {code=s:TransactionCanceledException,message=s:Transaction cancelled,reasons={1={code=s:None},"
         "2={code=s:ConditionalCheckFailed,item={pk=s:b},message=s:The conditional request failed}},status=int:400}"},
        {400, "{\"__type\":\"com.amazon.coral.validate#ValidationException\",\"message\":\"bad\"}",
         "nil {code=s:ValidationException,message=s:bad,status=int:400}"},
        {500, "{}", "nil {code=s:InternalServerError,status=int:500}"},
    };

    (void)state;
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        hooks_request_t rq = request_for("/", NULL);
        hooks_outcome_t out;
        hooks_run_t *run = request_waits(vm, &rq, &out);

        assert_done(resume_store(run, cases[i].status, cases[i].answer), &out, cases[i].want);
        assert_body(&out.response, cases[i].want);
    }
    hooks_vm_free(vm);
}

static const char store_bad_src[] =
    "local S = edge.store\n"
    "local cyc = {} cyc.self = cyc\n"
    "local mixed = S.set{'a'} mixed[2] = 1\n"
    "local calls = {\n"
    "  ['/name'] = function() S.get(nil, {}) end,\n"
    "  ['/name-number'] = function() S.get(5, {}) end,\n"
    "  ['/key'] = function() S.get('t', 'k') end,\n"
    "  ['/key-set'] = function() S.get('t', S.set{'a'}) end,\n"
    "  ['/opts'] = function() S.get('t', {}, 'x') end,\n"
    "  ['/function'] = function() S.put('t', {f = print}) end,\n"
    "  ['/nan'] = function() S.put('t', {x = 0 / 0}) end,\n"
    "  ['/inf'] = function() S.put('t', {x = math.huge}) end,\n"
    "  ['/utf8'] = function() S.put('t', {x = '\\255'}) end,\n"
    "  ['/cycle'] = function() S.put('t', {c = cyc}) end,\n"
    "  ['/float-key'] = function() S.put('t', {[1.5] = 'x'}) end,\n"
    "  ['/bool-key'] = function() S.put('t', {m = {[true] = 'x'}}) end,\n"
    "  ['/unknown'] = function() S.put('t', {}, {conditoin = 'x'}) end,\n"
    "  ['/misplaced'] = function() S.get('t', {}, {condition = 'x'}) end,\n"
    "  ['/option-type'] = function() S.put('t', {}, {condition = 5}) end,\n"
    "  ['/limit'] = function() S.query('t', {key_condition = 'x', limit = 1.5}) end,\n"
    "  ['/forward'] = function() S.query('t', {key_condition = 'x', forward = 'no'}) end,\n"
    "  ['/names'] = function() S.query('t', {key_condition = 'x', names = {['#a'] = 1}}) end,\n"
    "  ['/values'] = function() S.query('t', {key_condition = 'x', values = 'v'}) end,\n"
    "  ['/query-opts'] = function() S.query('t') end,\n"
    "  ['/update-opts'] = function() S.update('t', {pk = 1}) end,\n"
    "  ['/set-empty'] = function() S.set{} end,\n"
    "  ['/set-mixed'] = function() S.set{1, 'a'} end,\n"
    "  ['/set-bool'] = function() S.set{true} end,\n"
    "  ['/set-mutated'] = function() S.put('t', {s = mixed}) end,\n"
    "  ['/binary'] = function() S.binary(5) end,\n"
    "  ['/tx-empty-action'] = function() S.transact({{}}) end,\n"
    "  ['/tx-kind'] = function() S.transact({{upsert = {}}}) end,\n"
    "  ['/tx-needs'] = function() S.transact({{put = {table = 't'}}}) end,\n"
    "  ['/tx-two'] = function() S.transact({{put = {table = 't', item = {}}, delete = {table = 't', key = {}}}}) end,\n"
    "  ['/tx-option'] = function() S.transact({{put = {table = 't', item = {}, update = 'x'}}}) end,\n"
    "  ['/wrap'] = function() coroutine.wrap(function() S.get('t', {}) end)() end,\n"
    "}\n"
    "function on_request(req)\n"
    "  local f = calls[req.path]\n"
    "  if f then f() end\n"
    "  edge.respond(200, nil, 'fine')\n"
    "end\n";

/* A bad argument raises a Lua error (the run fails, it never waits); the VM goes on. */
static void test_store_bad_args(void **state)
{
    static const struct {
        const char *path, *want;
    } cases[] = {
        {"/name", "bad argument #1"},
        {"/name-number", "bad argument #1"},
        {"/key", "bad argument #2"},
        {"/key-set", "bad argument #2"},
        {"/opts", "bad argument #3"},
        {"/function", "edge.store.put: a function value cannot be stored"},
        {"/nan", "edge.store.put: NaN and infinities cannot be stored"},
        {"/inf", "edge.store.put: NaN and infinities cannot be stored"},
        {"/utf8", "edge.store.put: a string is not valid UTF-8 (bytes go in edge.store.binary)"},
        {"/cycle", "edge.store.put: a table contains itself"},
        {"/float-key", "edge.store.put: a float key cannot name an attribute"},
        {"/bool-key", "edge.store.put: a boolean key cannot name an attribute"},
        {"/unknown", "edge.store.put: unknown option 'conditoin'"},
        {"/misplaced", "edge.store.get: option 'condition' does not apply here"},
        {"/option-type", "edge.store.put: condition must be a string"},
        {"/limit", "edge.store.query: limit must be an integer"},
        {"/forward", "edge.store.query: forward must be true or false"},
        {"/names", "edge.store.query: names maps placeholders"},
        {"/values", "edge.store.query: values must be a table of attributes"},
        {"/query-opts", "bad argument #2"},
        {"/update-opts", "bad argument #3"},
        {"/set-empty", "bad argument #1"},
        {"/set-mixed", "all strings, all numbers or all binary values"},
        {"/set-bool", "elements must be strings, numbers or edge.store.binary values"},
        {"/set-mutated", "edge.store.put: a set mixes kinds of elements"},
        {"/binary", "bad argument #1"},
        {"/tx-empty-action", "edge.store.transact: action 1 must be"},
        {"/tx-kind", "edge.store.transact: action 1 must be"},
        {"/tx-needs", "edge.store.transact: action 1 (put) needs table and item"},
        {"/tx-two", "edge.store.transact: action 1 has more than one of put, update, delete, check"},
        {"/tx-option", "edge.store.transact: option 'update' does not apply here"},
        {"/wrap", "edge.store.get: cannot wait inside a coroutine made by the script"},
    };
    hooks_vm_t *vm = vm_with(store_bad_src);

    (void)state;
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        hooks_request_t rq = request_for(cases[i].path, NULL);
        request_fails(vm, &rq, cases[i].want);
        assert_int_equal(hooks_vm_waiting(vm), 0);
    }
    {
        hooks_request_t rq = request_for("/fine", NULL);
        hooks_outcome_t out = request_ok(vm, &rq);
        assert_body(&out.response, "fine");
    }
    hooks_vm_free(vm);
    assert_contains(vm_error("edge.store.get('t', {pk = 1})\n", NULL, TEST_CPU_MS), "edge.store.get: not available here");
}

/* Sets and binary values: protected metatables, equality of binary values, a set of sets is refused. */
static void test_store_values(void **state)
{
    hooks_vm_t *vm = vm_with("function on_request(req)\n"
                             "  local S = edge.store\n"
                             "  local b = S.binary('\\0x')\n"
                             "  assert(b == S.binary('\\0x') and b ~= S.binary('y') and b.value == '\\0x')\n"
                             "  assert(getmetatable(b) == 'edge.store.binary' and getmetatable(S.set{1}) == 'edge.store.set')\n"
                             "  assert(not pcall(setmetatable, b, nil), 'the metatable is protected')\n"
                             "  assert(not pcall(S.set, {S.set{1}}), 'a set of sets')\n"
                             "  assert(edge.null == edge.json.null)\n"
                             "  local s = S.set{3, 1, 2}\n"
                             "  edge.respond(200, nil, #s .. ' ' .. s[1] .. s[2] .. s[3])\n"
                             "end\n");
    hooks_request_t rq = request_for("/", NULL);
    hooks_outcome_t out = request_ok(vm, &rq);

    (void)state;
    assert_body(&out.response, "3 312");
    hooks_vm_free(vm);
}

/* Lists: edge.store.list marks a table as L (an empty one too, which a plain {} cannot say: that is an empty M); lists
 * read back carry the mark, so an empty one is written back as a list. */
static void test_store_lists(void **state)
{
    hooks_vm_t *vm =
        vm_with("local S = edge.store\n"
                "function on_request(req)\n"
                "  assert(not pcall(S.list, {a = 1}) and not pcall(S.list, {1, nil, 3}), 'not a sequence')\n"
                "  assert(not pcall(S.list, S.set{1}) and not pcall(S.list, 7), 'a set, a number')\n"
                "  local l = S.list{1, 'x'}\n"
                "  assert(getmetatable(l) == 'edge.store.list' and getmetatable(S.list()) == 'edge.store.list')\n"
                "  assert(not pcall(S.list, l), 'marked twice')\n"
                "  assert(edge.json.encode({S.list(), {}, l}) == '[[],{},[1,\"x\"]]')\n"
                "  local holey = S.list{1, 2, 3} holey[2] = nil\n"
                "  local extra = S.list{1} extra.x = 1\n"
                "  assert(not pcall(edge.json.encode, holey) and not pcall(edge.json.encode, {extra}), 'not sequences')\n"
                "  if req.path == '/bad' then\n"
                "    local b = S.list{} b.x = 1\n"
                "    return S.put('t', {pk = 'k', b = b})\n"
                "  end\n"
                "  assert(not pcall(S.put, 't', S.list{}), 'an item that is a list')\n"
                "  S.put('t', {pk = 'k', e = S.list(), l = l, m = {}, s = {1, 2}})\n"
                "  local item = S.get('t', {pk = 'k'})\n"
                "  assert(getmetatable(item.e) == 'edge.store.list' and #item.e == 0)\n"
                "  assert(getmetatable(item.l) == 'edge.store.list' and item.l[2] == 'x')\n"
                "  assert(getmetatable(item.m) == nil)\n"
                "  item.l[3] = true\n"
                "  S.put('t', item)\n"
                "end\n");
    hooks_request_t rq = request_for("/", NULL);
    hooks_outcome_t out;
    hooks_run_t *run;

    (void)state;
    run = request_waits(vm, &rq, &out);
    assert_store_wait(run, "PutItem",
                      "{\"TableName\":\"t\",\"Item\":{\"pk\":{\"S\":\"k\"},\"e\":{\"L\":[]},\"l\":{\"L\":[{\"N\":\"1\"},"
                      "{\"S\":\"x\"}]},\"m\":{\"M\":{}},\"s\":{\"L\":[{\"N\":\"1\"},{\"N\":\"2\"}]}}}");
    assert_int_equal(resume_store(run, 200, "{}"), HOOKS_WAITING);
    assert_store_wait(run, "GetItem", "{\"TableName\":\"t\",\"Key\":{\"pk\":{\"S\":\"k\"}}}");
    assert_int_equal(resume_store(run, 200,
                                  "{\"Item\":{\"pk\":{\"S\":\"k\"},\"e\":{\"L\":[]},\"l\":{\"L\":[{\"N\":\"1\"},{\"S\":\"x\"}]},"
                                  "\"m\":{\"M\":{}}}}"),
                     HOOKS_WAITING);
    assert_store_wait(run, "PutItem",
                      "{\"TableName\":\"t\",\"Item\":{\"pk\":{\"S\":\"k\"},\"e\":{\"L\":[]},\"l\":{\"L\":[{\"N\":\"1\"},"
                      "{\"S\":\"x\"},{\"BOOL\":true}]},\"m\":{\"M\":{}}}}");
    assert_done(resume_store(run, 200, "{}"), &out, "lists");
    rq = request_for("/bad", NULL);
    assert_int_equal(start_request(vm, &rq, &out, &run), HOOKS_FAILED);
    assert_contains(out.error, "an edge.store.list must be a sequence");
    hooks_vm_free(vm);
}

/* A run cancelled while its store call is in flight: its request text is released, nothing leaks (ASan), it never
 * resumes; a function waits for the store too. */
static void test_store_cancel(void **state)
{
    hooks_vm_t *vm = vm_with("function on_request(req)\n"
                             "  local ok, e = edge.store.put('t', {pk = req.path})\n"
                             "  edge.log('resumed', req.path)\n"
                             "  edge.respond(200, nil, tostring(ok))\n"
                             "end\n"
                             "function handler(event)\n"
                             "  local item, e = edge.store.get('t', {pk = event.path})\n"
                             "  return {body = item and item.v or e.code}\n"
                             "end\n");
    hooks_request_t rq = request_for("/cancelled", NULL);
    hooks_event_t ev = event_for("/fn");
    hooks_outcome_t out;
    hooks_run_t *run;

    (void)state;
    run = request_waits(vm, &rq, &out);
    assert_store_wait(run, "PutItem", "{\"TableName\":\"t\",\"Item\":{\"pk\":{\"S\":\"/cancelled\"}}}");
    hooks_run_cancel(run);
    assert_int_equal(hooks_vm_waiting(vm), 0);
    assert_int_equal(fx.nlog, 0);

    assert_int_equal(hooks_start_function(vm, 0, &ev, pool_alloc, &fx.pool, &out, &run), HOOKS_WAITING);
    assert_store_wait(run, "GetItem", "{\"TableName\":\"t\",\"Key\":{\"pk\":{\"S\":\"/fn\"}}}");
    assert_done(resume_store(run, 400,
                             "{\"__type\":\"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException\","
                             "\"message\":\"The item store is not open\"}"),
                &out, "function");
    assert_body(&out.response, "ResourceNotFoundException");

    rq = request_for("/next", NULL);
    run = request_waits(vm, &rq, &out);
    assert_done(resume_store(run, 200, "{}"), &out, "/next");
    assert_body(&out.response, "true");
    assert_int_equal(fx.nlog, 1);
    assert_string_equal(fx.log[0].text, "resumed /next");
    hooks_vm_free(vm);
}

static void test_vars(void **state)
{
    char names[] = "envXregionX", values[] = "test!eu!";
    hooks_kv_t vars[] = {{names, 3, values, 4}, {names + 4, 6, values + 5, 2}};
    char *path = write_script("assert(edge.vars.env == 'test', 'edge.vars at load time')\n"
                              "function on_request(req)\n"
                              "  if req.path == '/write' then edge.vars.env = 'prod' end\n"
                              "  if req.path == '/new' then edge.vars.other = 'x' end\n"
                              "  edge.respond(200, nil, edge.vars.env .. ',' .. edge.vars.region .. ',' ..\n"
                              "    tostring(edge.vars.none) .. ',' .. tostring(getmetatable(edge.vars)))\n"
                              "end\n"),
         err[256];
    const char *files[] = {path};
    hooks_options_t o = options(files, 1);
    hooks_request_t rq = request_for("/", NULL);
    hooks_outcome_t out;
    hooks_vm_t *vm;

    (void)state;
    o.vars = vars;
    o.nvars = 2;
    if ((vm = hooks_vm_new(&o, err, sizeof(err))) == NULL)
        fail_msg("hooks_vm_new: %s", err);
    memset(names, 'Z', sizeof(names) - 1); /* copied: the VM does not keep the caller's strings */
    memset(values, 'Z', sizeof(values) - 1);
    out = request_ok(vm, &rq);
    assert_body(&out.response, "test,eu,nil,false");
    rq = request_for("/write", NULL);
    request_fails(vm, &rq, "table 'edge.vars' is read-only");
    rq = request_for("/new", NULL);
    request_fails(vm, &rq, "table 'edge.vars' is read-only");
    rq = request_for("/", NULL);
    out = request_ok(vm, &rq);
    assert_body(&out.response, "test,eu,nil,false");
    hooks_vm_free(vm);
    free(path);
}

static void test_missing_hook(void **state)
{
    char *path = write_script("function handler() return {} end\n");
    const char *files[] = {path};
    hooks_options_t o = options(files, 1);
    char err[256], want[512];
    hooks_vm_t *vm = hooks_vm_new(&o, err, sizeof(err));
    hooks_request_t rq = request_for("/", NULL);
    hooks_response_t res = {.status = 200};
    hooks_outcome_t out;
    hooks_run_t *run;

    (void)state;
    assert_non_null(vm);
    snprintf(want, sizeof(want), "%s has no function on_request", path);
    request_fails(vm, &rq, want);
    snprintf(want, sizeof(want), "%s has no function on_response", path);
    assert_failed(start_response(vm, &rq, &res, &out, &run), &out, "on_response", want);
    assert_null(run);
    assert_int_equal(hooks_vm_waiting(vm), 0);
    hooks_vm_free(vm);
    free(path);

    vm = vm_with("on_request = 42\nfunction on_response() end\n");
    request_fails(vm, &rq, "has no function on_request");
    assert_int_equal(hooks_start_request(vm, 1, &rq, pool_alloc, &fx.pool, &out, &run), HOOKS_FAILED);
    assert_string_equal(out.error, "no script 1 (the VM has 1)");
    assert_null(run);
    hooks_vm_free(vm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hello, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_defaults, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_base64_body, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_multi_value_headers, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_bad_answers, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_answer_metatable_ignored, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_event_fields, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_event_minimal, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_context, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_syntax_error, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_load_errors, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_sources, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_missing_handler, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_runtime_error_traceback, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_no_script, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_several_scripts, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_defaults_options, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_globals, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_sandbox, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_deep_recursion, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_memory_bomb_recovers, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_kept_coroutine, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_json, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_hashes_and_base64, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_log, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_require, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_require_without_dir, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_request_fields, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_request_fields_minimal, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_request_changes, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_request_query_nil_reads_back, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_request_bad_writes, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_request_header_write_checked, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_fetch, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_fetch_bad_calls, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_fetch_where, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_wait_not_counted, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_many_waits_cpu, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_runs, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_own_coroutine_guarded, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_cancel, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_respond_closes, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_fail_after_wait, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_error_skips_close, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_free_while_waiting, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_kept_objects, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_objects_are_handles, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_objects_outlive_the_script, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_response, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_response_bad, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_purge, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_store_marshal, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_store_unmarshal, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_store_deep_answer, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_store_ops, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_store_errors, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_store_bad_args, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_store_values, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_store_lists, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_store_cancel, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_vars, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_missing_hook, test_setup, test_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
