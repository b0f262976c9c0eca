/*
 * hooks/event.c: what a function gets and what it gives back, in the shape of API Gateway's Lambda proxy integration
 * (payload version 1.0).
 *
 * The event (see hooks_event_t in hooks.h): httpMethod, path, resource, headers and multiValueHeaders (names
 * lower-cased; the single-value table holds the last value of a repeated name), queryStringParameters and
 * multiValueQueryStringParameters, pathParameters, stageVariables, body, isBase64Encoded, and requestContext =
 * {requestId, stage, httpMethod, path, resourcePath, identity = {sourceIp}, authorizer = {claims, apiKeyId}}. Maps
 * with no entries are nil, as in API Gateway; authorizer is nil when there are neither claims nor an API key id. A
 * body that is not valid UTF-8 is given base64-encoded with isBase64Encoded = true; no body is nil. The claims (the
 * verified JWT payload) are decoded by the same JSON decoder as edge.json.decode, so JSON null is edge.json.null.
 * Every table is new for each invocation: nothing a handler does to its event is seen by the next.
 *
 * Lazy fields: multiValueHeaders, multiValueQueryStringParameters and requestContext are made on first read, by the
 * event's metatable (__index; __pairs and edge.json.encode make them all first), from the run's hooks_event_t, which
 * lives only until the run first waits (its caller may build it on its stack): the run knows its event (run->ev_obj,
 * while its slot's entry 1 keeps the event alive, run.c), and at the first wait hooks_event_settle() makes what is still
 * missing and lets the event go. Any other event (kept from another request, or another run's) answers nil for them.
 * A handler that assigns one before reading it keeps its own value; assigning nil before reading it is not remembered.
 * rawget, next and edge.store see a lazy field only once it is made.
 *
 * The context: functionName (the script's base name without .lua), awsRequestId, and getRemainingTimeInMillis()
 * (the CPU budget left, in whole milliseconds; it reads the invocation of the coroutine that calls it).
 *
 * The answer {statusCode, headers, multiValueHeaders, body, isBase64Encoded} is read on the main thread with raw
 * accesses only (lua_rawget, lua_next, lua_rawgeti): a metatable on the answer cannot run code outside the budget.
 * Checks, each an error for the invocation:
 *   - the answer is a table; statusCode is nil (200) or an integer in 100..599;
 *   - header names are RFC 9110 tokens (lower-cased on copy); values are strings or numbers without control
 *     characters other than HTAB (no CR, LF or NUL: no response splitting, no header injection);
 *   - multiValueHeaders maps names to arrays of such values; their headers come after those of headers;
 *   - body is nil or a string; isBase64Encoded is nil or a boolean; when true the body must be base64 (as
 *     edge.base64.decode takes it) and is given decoded.
 * Every string is copied with the caller's allocator (NUL-terminated, for convenience), so nothing in the response
 * points into the Lua state.
 */
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include "hooks/internal.h"

/* ---- the event ---- */

void hooks_push_lower(lua_State *L, const char *s, size_t len)
{
    luaL_Buffer b;
    char *p;
    size_t i;

    for (i = 0; i != len && !(s[i] >= 'A' && s[i] <= 'Z'); ++i)
        ;
    if (i == len) {
        lua_pushlstring(L, s, len);
        return;
    }
    p = luaL_buffinitsize(L, &b, len);
    for (i = 0; i != len; ++i)
        p[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
    luaL_pushresultsize(&b, len);
}

/* t[field] = s, when s is not NULL. */
static void set_string(lua_State *L, int t, const char *field, const char *s)
{
    if (s != NULL) {
        lua_pushstring(L, s);
        lua_setfield(L, t, field);
    }
}

static int size_hint(size_t n)
{
    return n > INT_MAX ? INT_MAX : (int)n;
}

static void push_name(lua_State *L, const hooks_kv_t *kv, int lower)
{
    if (lower)
        hooks_push_lower(L, kv->name, kv->name_len);
    else
        lua_pushlstring(L, kv->name, kv->name_len);
}

/* ev[field] = {name = last value}; not set when n is 0. */
static void set_map(lua_State *L, int ev, const char *field, const hooks_kv_t *kv, size_t n, int lower)
{
    int s;

    if (n == 0)
        return;
    luaL_checkstack(L, 4, NULL);
    lua_createtable(L, 0, size_hint(n));
    s = lua_gettop(L);
    for (size_t i = 0; i != n; ++i) {
        push_name(L, kv + i, lower);
        lua_pushlstring(L, kv[i].value, kv[i].value_len);
        lua_rawset(L, s);
    }
    lua_setfield(L, ev, field);
}

/* Pushes {name = {values in order}}, or nil when n is 0. */
static void push_multi_map(lua_State *L, const hooks_kv_t *kv, size_t n, int lower)
{
    int m;

    if (n == 0) {
        lua_pushnil(L);
        return;
    }
    luaL_checkstack(L, 6, NULL);
    lua_createtable(L, 0, size_hint(n));
    m = lua_gettop(L);
    for (size_t i = 0; i != n; ++i) {
        push_name(L, kv + i, lower);
        lua_pushvalue(L, -1);
        if (lua_rawget(L, m) != LUA_TTABLE) {
            lua_pop(L, 1);
            lua_createtable(L, 1, 0);
            lua_pushvalue(L, -2);
            lua_pushvalue(L, -2);
            lua_rawset(L, m);
        }
        lua_pushlstring(L, kv[i].value, kv[i].value_len);
        lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
        lua_pop(L, 2);
    }
}

static void push_request_context(lua_State *L, const hooks_event_t *ev)
{
    int rc;

    lua_createtable(L, 0, 8);
    rc = lua_gettop(L);
    set_string(L, rc, "requestId", ev->request_id);
    set_string(L, rc, "stage", ev->stage);
    lua_pushlstring(L, ev->method, ev->method_len);
    lua_setfield(L, rc, "httpMethod");
    lua_pushlstring(L, ev->path, ev->path_len);
    lua_setfield(L, rc, "path");
    set_string(L, rc, "resourcePath", ev->resource);
    lua_createtable(L, 0, 1);
    set_string(L, lua_gettop(L), "sourceIp", ev->source_ip);
    lua_setfield(L, rc, "identity");
    if (ev->claims_json != NULL || ev->api_key_id != NULL) {
        lua_createtable(L, 0, 2);
        if (ev->claims_json != NULL) {
            size_t i = 0;
            while (i != ev->claims_len && strchr(" \t\r\n", ev->claims_json[i]) != NULL)
                ++i;
            if (i == ev->claims_len || ev->claims_json[i] != '{')
                luaL_error(L, "claims_json: not a JSON object");
            hooks_json_decode(L, ev->claims_json, ev->claims_len, "claims_json");
            lua_setfield(L, -2, "claims");
        }
        set_string(L, lua_gettop(L), "apiKeyId", ev->api_key_id);
        lua_setfield(L, rc, "authorizer");
    }
}

void hooks_push_event(lua_State *L, const hooks_event_t *ev)
{
    int e, b64 = 0;

    luaL_checkstack(L, 8, NULL);
    lua_createtable(L, 0, 14);
    e = lua_gettop(L);
    lua_pushlstring(L, ev->method, ev->method_len);
    lua_setfield(L, e, "httpMethod");
    lua_pushlstring(L, ev->path, ev->path_len);
    lua_setfield(L, e, "path");
    set_string(L, e, "resource", ev->resource);
    set_map(L, e, "headers", ev->headers, ev->nheaders, 1);
    set_map(L, e, "queryStringParameters", ev->query, ev->nquery, 0);
    set_map(L, e, "pathParameters", ev->path_params, ev->npath_params, 0);
    set_map(L, e, "stageVariables", ev->stage_vars, ev->nstage_vars, 0);
    if (ev->body != NULL) {
        if (hooks_utf8_valid(ev->body, ev->body_len)) {
            lua_pushlstring(L, ev->body, ev->body_len);
        } else {
            hooks_push_base64(L, ev->body, ev->body_len);
            b64 = 1;
        }
        lua_setfield(L, e, "body");
    }
    lua_pushboolean(L, b64);
    lua_setfield(L, e, "isBase64Encoded");
    /* multiValueHeaders, multiValueQueryStringParameters and requestContext are made when first read */
    lua_rawgeti(L, LUA_REGISTRYINDEX, hooks_vm_of(L)->event_mt_ref);
    lua_setmetatable(L, e);
}

/* ---- the lazy fields ---- */

static const char *const lazy_fields[] = {"multiValueHeaders", "multiValueQueryStringParameters", "requestContext"};
#define NLAZY (sizeof(lazy_fields) / sizeof(lazy_fields[0]))

/* The request of the event at idx: that of the function run L runs for, when idx is that run's event (run->ev_obj:
 * the event is alive while the pointer is set, kept by the run's slot, see run.c, so no other table can have its
 * address); NULL for an event kept from an earlier request, whose request is gone. */
static const hooks_event_t *event_request(lua_State *L, int idx)
{
    hooks_call_t *call = hooks_current_call(L);
    hooks_run_t *run;

    if (call == NULL || (run = call->run) == NULL || run->kind != HOOKS_RUN_FUNCTION || run->ev_obj == NULL)
        return NULL;
    return lua_topointer(L, idx) == run->ev_obj ? run->ev : NULL;
}

/* Pushes lazy field i of ev, or nil when its map is empty. */
static void push_field(lua_State *L, const hooks_event_t *ev, size_t i)
{
    if (i == 0)
        push_multi_map(L, ev->headers, ev->nheaders, 1);
    else if (i == 1)
        push_multi_map(L, ev->query, ev->nquery, 0);
    else
        push_request_context(L, ev);
}

/* Pushes lazy field i of the event at idx, made and stored (nil when the map is empty or the request is gone). */
static void push_lazy(lua_State *L, int idx, size_t i)
{
    const hooks_event_t *ev = event_request(L, idx);

    if (ev == NULL) {
        lua_pushnil(L);
        return;
    }
    push_field(L, ev, i);
    if (!lua_isnil(L, -1)) {
        lua_pushvalue(L, -1);
        lua_setfield(L, idx, lazy_fields[i]); /* the metatable has no __newindex: a plain set */
    }
}

static int event_index(lua_State *L)
{
    size_t len;
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &len) : NULL;

    for (size_t i = 0; k != NULL && i != NLAZY; ++i)
        if (len == strlen(lazy_fields[i]) && memcmp(k, lazy_fields[i], len) == 0) {
            push_lazy(L, 1, i);
            return 1;
        }
    return 0;
}

void hooks_event_materialize(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    if (!lua_getmetatable(L, idx))
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, hooks_vm_of(L)->event_mt_ref);
    int is_event = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    for (size_t i = 0; is_event && i != NLAZY; ++i) {
        lua_getfield(L, idx, lazy_fields[i]); /* through __index: makes it */
        lua_pop(L, 1);
    }
}

void hooks_event_settle(lua_State *L, hooks_run_t *run, int idx)
{
    idx = lua_absindex(L, idx);
    luaL_checkstack(L, 4, NULL);
    for (size_t i = 0; i != NLAZY; ++i) {
        lua_pushstring(L, lazy_fields[i]);
        if (lua_rawget(L, idx) == LUA_TNIL) {
            push_field(L, run->ev, i);
            lua_setfield(L, idx, lazy_fields[i]); /* nil for an empty map: nothing set */
        }
        lua_pop(L, 1);
    }
    run->ev_obj = NULL; /* event_request() answers nil from now on */
    run->ev = NULL;
}

static int event_next(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE); /* the iterator may be called with anything */
    lua_settop(L, 2);
    if (lua_next(L, 1) != 0)
        return 2;
    lua_pushnil(L);
    return 1;
}

/* pairs(event): the lazy fields are made first, so that they are listed */
static int event_pairs(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    hooks_event_materialize(L, 1);
    lua_pushcfunction(L, event_next);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

void hooks_event_open(lua_State *L, hooks_vm_t *vm)
{
    lua_createtable(L, 0, 3);
    lua_pushcfunction(L, event_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, event_pairs);
    lua_setfield(L, -2, "__pairs");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable"); /* getmetatable(event) is false, setmetatable(event, ...) fails */
    vm->event_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* ---- the context ---- */

static int remaining_ms(lua_State *L)
{
    hooks_call_t *call = hooks_current_call(L);
    uint64_t used;

    if (call == NULL) {
        lua_pushinteger(L, 0);
        return 1;
    }
    used = hooks_now_ns(call->vm) - call->start_ns;
    lua_pushinteger(L, used >= call->budget_ns ? 0 : (lua_Integer)((call->budget_ns - used) / 1000000u));
    return 1;
}

void hooks_push_context(lua_State *L, const char *name, const char *request_id)
{
    int c;

    lua_createtable(L, 0, 3);
    c = lua_gettop(L);
    set_string(L, c, "functionName", name);
    set_string(L, c, "awsRequestId", request_id);
    lua_pushcfunction(L, remaining_ms);
    lua_setfield(L, c, "getRemainingTimeInMillis");
}

/* ---- the answer ---- */

typedef struct answer {
    lua_State *L;
    int idx;
    const char *file;
    hooks_alloc_cb alloc;
    void *alloc_data;
    hooks_response_t *res;
    size_t cap; /* of res->headers */
} answer_t;

static void answer_error(const answer_t *a, const char *fmt, ...)
{
    va_list ap;

    lua_pushfstring(a->L, "%s: bad answer: ", a->file);
    va_start(ap, fmt);
    lua_pushvfstring(a->L, fmt, ap);
    va_end(ap);
    lua_concat(a->L, 2);
    lua_error(a->L);
}

static char *copy_out(const answer_t *a, const char *s, size_t len, int lower)
{
    char *p = a->alloc(len + 1, a->alloc_data);

    if (p == NULL)
        luaL_error(a->L, "%s: out of memory copying the answer", a->file);
    for (size_t i = 0; i != len; ++i)
        p[i] = lower && s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
    p[len] = '\0';
    return p;
}

/* The type of field `name` of the answer, pushed with lua_rawget. */
static int get_field(const answer_t *a, const char *name)
{
    lua_pushstring(a->L, name);
    return lua_rawget(a->L, a->idx);
}

int hooks_is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

int hooks_has_ctl(const char *s, size_t len)
{
    for (size_t i = 0; i != len; ++i)
        if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
            return 1;
    return 0;
}

/* Checks the header whose name is at name_idx and value at the top of the stack (a copy: numbers become strings in
 * place), and copies it into the response. */
static void add_header(answer_t *a, int name_idx)
{
    lua_State *L = a->L;
    const char *name, *value;
    size_t nlen, vlen;
    hooks_kv_t *kv;

    if (lua_type(L, name_idx) != LUA_TSTRING)
        answer_error(a, "a header name is a %s, not a string", luaL_typename(L, name_idx));
    name = lua_tolstring(L, name_idx, &nlen);
    if (nlen == 0)
        answer_error(a, "an empty header name");
    for (size_t i = 0; i != nlen; ++i)
        if (!hooks_is_tchar((unsigned char)name[i]))
            answer_error(a, "a header name is not a token (RFC 9110 5.1)");
    if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
        answer_error(a, "header '%s' has a %s value, not a string", name, luaL_typename(L, -1));
    value = lua_tolstring(L, -1, &vlen);
    if (hooks_has_ctl(value, vlen))
        answer_error(a, "the value of header '%s' has a control character (CR, LF, NUL...)", name);
    if (a->res->nheaders == a->cap) /* cannot happen: counted first */
        answer_error(a, "headers changed while read");
    kv = &a->res->headers[a->res->nheaders];
    kv->name = copy_out(a, name, nlen, 1);
    kv->name_len = nlen;
    kv->value = copy_out(a, value, vlen, 0);
    kv->value_len = vlen;
    a->res->nheaders++;
}

/* The number of headers in headers (at h, or 0 if h is 0) and multiValueHeaders (at m, or 0). */
static size_t count_headers(const answer_t *a, int h, int m)
{
    lua_State *L = a->L;
    size_t n = 0;

    if (h != 0) {
        lua_pushnil(L);
        while (lua_next(L, h) != 0) {
            lua_pop(L, 1);
            ++n;
        }
    }
    if (m != 0) {
        lua_pushnil(L);
        while (lua_next(L, m) != 0) {
            if (lua_type(L, -1) != LUA_TTABLE)
                answer_error(a, "multiValueHeaders maps a name to a %s, not to an array of strings", luaL_typename(L, -1));
            n += (size_t)lua_rawlen(L, -1);
            lua_pop(L, 1);
        }
    }
    return n;
}

static int optional_table(const answer_t *a, const char *name)
{
    int t = get_field(a, name);

    if (t == LUA_TNIL) {
        lua_pop(a->L, 1);
        return 0;
    }
    if (t != LUA_TTABLE)
        answer_error(a, "%s is a %s, not a table", name, luaL_typename(a->L, -1));
    return lua_gettop(a->L);
}

static void read_headers(answer_t *a)
{
    lua_State *L = a->L;
    int h = optional_table(a, "headers"), m = optional_table(a, "multiValueHeaders");
    size_t n = count_headers(a, h, m);

    if (n == 0)
        return;
    if (n > SIZE_MAX / sizeof(hooks_kv_t) || (a->res->headers = a->alloc(n * sizeof(hooks_kv_t), a->alloc_data)) == NULL)
        luaL_error(L, "%s: out of memory copying the answer", a->file);
    a->cap = n;
    if (h != 0) {
        lua_pushnil(L);
        while (lua_next(L, h) != 0) {
            add_header(a, lua_gettop(L) - 1);
            lua_pop(L, 1);
        }
    }
    if (m != 0) {
        lua_pushnil(L);
        while (lua_next(L, m) != 0) {
            int name = lua_gettop(L) - 1, values = lua_gettop(L);
            lua_Unsigned len = lua_rawlen(L, values);
            for (lua_Unsigned i = 1; i <= len; ++i) {
                lua_rawgeti(L, values, (lua_Integer)i);
                add_header(a, name);
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
        }
    }
}

static void read_body(answer_t *a)
{
    lua_State *L = a->L;
    const char *body;
    size_t len;
    int t = get_field(a, "body"), b64 = 0;
    unsigned char *out;
    long n;

    if (t == LUA_TNIL)
        return;
    if (t != LUA_TSTRING)
        answer_error(a, "body is a %s, not a string", luaL_typename(L, -1));
    body = lua_tolstring(L, -1, &len);
    t = get_field(a, "isBase64Encoded");
    if (t == LUA_TBOOLEAN)
        b64 = lua_toboolean(L, -1);
    else if (t != LUA_TNIL)
        answer_error(a, "isBase64Encoded is a %s, not a boolean", luaL_typename(L, -1));
    if (!b64) {
        a->res->body = copy_out(a, body, len, 0);
        a->res->body_len = len;
        return;
    }
    if ((out = a->alloc(hooks_base64_max(len) + 1, a->alloc_data)) == NULL)
        luaL_error(L, "%s: out of memory copying the answer", a->file);
    if ((n = hooks_base64_decode(body, len, out)) < 0)
        answer_error(a, "isBase64Encoded is true but the body is not base64");
    out[n] = '\0';
    a->res->body = (char *)out;
    a->res->body_len = (size_t)n;
}

void hooks_read_answer(lua_State *L, int idx, const char *file, hooks_alloc_cb alloc, void *alloc_data, hooks_response_t *res)
{
    answer_t a = {L, lua_absindex(L, idx), file, alloc, alloc_data, res, 0};
    int t;

    luaL_checkstack(L, 10, NULL);
    if (lua_type(L, a.idx) != LUA_TTABLE)
        answer_error(&a, "the handler returned a %s, not a table", luaL_typename(L, a.idx));
    t = get_field(&a, "statusCode");
    if (t == LUA_TNIL) {
        res->status = 200;
    } else if (t == LUA_TNUMBER) {
        int isint;
        lua_Integer status = lua_tointegerx(L, -1, &isint);
        if (!isint || status < 100 || status > 599)
            answer_error(&a, "statusCode is not an integer in 100..599");
        res->status = (int)status;
    } else {
        answer_error(&a, "statusCode is a %s, not a number", luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    read_headers(&a);
    read_body(&a);
}
