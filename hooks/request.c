/*
 * hooks/request.c: the req and res objects that hooks get.
 *
 *   on_request(req), on_response(req, res)
 *
 * req (read: every field; write: in on_request only):
 *   method, scheme, host, path, query (the text after '?', or nil), args (the decoded query: name -> value, the last
 *   one of a repeated name), headers (lower-case name -> value; a repeated name's values joined with ", ", "; " for
 *   cookie), params (the route's path parameters), route (its path as written), body (or nil), client_ip,
 *   request_id, claims (the verified JWT payload, decoded; or nil), api_key_id (or nil);
 *   writable: path (starts with '/'; no '?', '#', space or control characters), query (a string, or nil to drop it),
 *   headers (a table; the request goes on with exactly what it holds then), cache_key (a string added to the cache
 *   key), origin (the path, as written in the conf, of the route whose origin answers instead).
 * res (on_response):
 *   status, headers (lower-case name -> value, or an array of values for a repeated name such as set-cookie), body
 *   (when the proxy has the whole body, else nil), ttl, max_ttl (nil), cacheable (true);
 *   writable: status (100..599), headers (a table, as read), body (a string: replaces the body), ttl (seconds of
 *   freshness for the cache), max_ttl (a cap on it), cacheable (false: the cache does not store the response).
 *
 * Both are light userdata whose values are handles: making one allocates nothing, so a run that only reads leaves no
 * garbage. A handle names its run struct (by id in vm->runs) and that struct's generation, which moves on when the run
 * is over: using a req kept in a module table by a later request raises an error instead of reading another request
 * (run structs live as long as the VM), and so does using one of a run that still waits from another run. Bit 63 is set in every
 * handle and in no address of this process, so no other light userdata (edge.json.null) passes for one; scripts cannot make light
 * userdata. Lua gives all light userdata one metatable: its metamethods (closures over the VM, its anchors table and the
 * names table) refuse
 * whatever is not a live handle.
 *
 * Each object has a private table of values, made on first use and kept in its run's slot of the anchors table
 * (HOOKS_ANCHOR(slot, 1) for req, 2 for res): a scalar field is made from the C request on each read, a table field
 * (headers, args, params, claims) the first time it is read and kept there; a write checks the value and keeps it
 * there. Bits (run->set) record what was written (or, for headers, handed out: the script may change that table), so
 * that at the end only those are read back, and a run that changed nothing needs no reading back at all.
 */
#include <string.h>
#include "hooks/internal.h"

_Static_assert(sizeof(void *) == 8, "req and res handles need 64-bit light userdata");

#define H_TAG ((uint64_t)1 << 63)
#define H_ID_SHIFT 1                         /* bit 0: res (1) or req (0) */
#define H_GEN_SHIFT 21                       /* above the id's 20 bits (HOOKS_MAX_RUNS) */
#define H_GEN_MASK (((uint64_t)1 << 42) - 1) /* the generation's low 42 bits (2^42 runs of one struct before it wraps) */

/* Bits of run->set: the fields a script wrote (headers: handed out too), the only ones read back at the end. */
enum {
    F_PATH = 1,
    F_QUERY = 2,
    F_HEADERS = 4,
    F_CACHE_KEY = 8,
    F_ORIGIN = 16,
    F_STATUS = 32,
    F_BODY = 64,
    F_TTL = 128,
    F_MAX_TTL = 256,
    F_CACHEABLE = 512,
};

/* The fields of req and res, found by name once per access (field_of): what reading one makes, which bit a write sets. */
typedef enum field_id {
    RQ_METHOD,
    RQ_SCHEME,
    RQ_HOST,
    RQ_PATH,
    RQ_QUERY,
    RQ_ARGS,
    RQ_HEADERS,
    RQ_PARAMS,
    RQ_ROUTE,
    RQ_BODY,
    RQ_CLIENT_IP,
    RQ_REQUEST_ID,
    RQ_CLAIMS,
    RQ_API_KEY_ID,
    RQ_CACHE_KEY,
    RQ_ORIGIN,
    RS_STATUS,
    RS_HEADERS,
    RS_BODY,
    RS_TTL,
    RS_MAX_TTL,
    RS_CACHEABLE,
    FIELD_NONE,
} field_id_t;

enum {
    FF_TABLE = 1,    /* made once and kept in the object's value table (a script changing it sees its changes) */
    FF_COMPLETE = 2, /* one of what hooks_request_t.complete fills in */
};

typedef struct field {
    const char *name;
    field_id_t id;
    unsigned bit;   /* F_*: what a write sets; 0: not writable */
    unsigned flags; /* FF_* */
} field_t;

#define FIELD(n, i, b, f)                                                                                                          \
    {                                                                                                                              \
        n, i, b, f                                                                                                                 \
    }
static const field_t req_fields[] = {
    FIELD("method", RQ_METHOD, 0, 0),
    FIELD("path", RQ_PATH, F_PATH, 0),
    FIELD("headers", RQ_HEADERS, F_HEADERS, FF_TABLE | FF_COMPLETE),
    FIELD("query", RQ_QUERY, F_QUERY, 0),
    FIELD("host", RQ_HOST, 0, 0),
    FIELD("scheme", RQ_SCHEME, 0, 0),
    FIELD("args", RQ_ARGS, 0, FF_TABLE),
    FIELD("params", RQ_PARAMS, 0, FF_TABLE | FF_COMPLETE),
    FIELD("route", RQ_ROUTE, 0, 0),
    FIELD("body", RQ_BODY, 0, FF_COMPLETE),
    FIELD("client_ip", RQ_CLIENT_IP, 0, FF_COMPLETE),
    FIELD("request_id", RQ_REQUEST_ID, 0, 0),
    FIELD("claims", RQ_CLAIMS, 0, FF_TABLE | FF_COMPLETE),
    FIELD("api_key_id", RQ_API_KEY_ID, 0, FF_COMPLETE),
    FIELD("cache_key", RQ_CACHE_KEY, F_CACHE_KEY, 0),
    FIELD("origin", RQ_ORIGIN, F_ORIGIN, 0),
    {NULL, FIELD_NONE, 0, 0},
};
static const field_t res_fields[] = {
    FIELD("status", RS_STATUS, F_STATUS, 0),
    FIELD("headers", RS_HEADERS, F_HEADERS, FF_TABLE),
    FIELD("body", RS_BODY, F_BODY, 0),
    FIELD("ttl", RS_TTL, F_TTL, 0),
    FIELD("max_ttl", RS_MAX_TTL, F_MAX_TTL, 0),
    FIELD("cacheable", RS_CACHEABLE, F_CACHEABLE, 0),
    {NULL, FIELD_NONE, 0, 0},
};
#undef FIELD

#define NREQ (sizeof(req_fields) / sizeof(req_fields[0]) - 1)
#define NRES (sizeof(res_fields) / sizeof(res_fields[0]) - 1)

/* Methods pushed from the names table (vm->names after the fields) rather than made (interned) on each read. */
static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
#define NMETHODS (sizeof(methods) / sizeof(methods[0]))
_Static_assert(NREQ + NRES <= sizeof(((hooks_vm_t *)0)->names) / sizeof(const char *), "vm->names is too small");

/* The field named by the value at idx (names: vm->names for these fields): the table's last entry (FIELD_NONE) for any
 * other key, or a key that is not a string. Lua interns short strings and the names stay alive (hooks_request_open), so
 * a key equal to a name is that very string: pointers are compared, not bytes. */
static const field_t *field_of(lua_State *L, int idx, const field_t *fields, const char *const *names)
{
    const field_t *f = fields;
    const char *k = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, NULL) : NULL;

    for (; f->name != NULL; ++f, ++names)
        if (*names == k)
            break;
    return f;
}

static void *handle(const hooks_run_t *run, int res)
{
    return (void *)(uintptr_t)(H_TAG | (run->gen & H_GEN_MASK) << H_GEN_SHIFT | (uint64_t)run->id << H_ID_SHIFT | (uint64_t)res);
}

/* An object, as a metamethod finds it from its handle. */
typedef struct obj {
    hooks_run_t *run;
    int res; /* 0: req, 1: res */
    int writable;
    unsigned *set; /* run->set[res]: F_* */
} obj_t;

/* The object a metamethod was called on, at 1: raises unless it is a live req or res of the run L runs for. */
static obj_t check_obj(lua_State *L, hooks_vm_t *vm)
{
    uint64_t h = (uint64_t)(uintptr_t)lua_touserdata(L, 1);
    uint64_t id = h >> H_ID_SHIFT & (HOOKS_MAX_RUNS - 1);
    obj_t o;

    if (!(h & H_TAG) || id >= vm->nmade)
        luaL_error(L, "attempt to index a userdata value");
    o.run = vm->runs[id];
    o.res = (int)(h & 1);
    if ((o.run->gen & H_GEN_MASK) != (h >> H_GEN_SHIFT & H_GEN_MASK))
        luaL_error(L, "%s is no longer valid: its request is over", o.res ? "res" : "req");
    hooks_call_t *call = hooks_current_call(L); /* a run's coroutines, its script's own included, run for its call */
    if (call == NULL || call->run != o.run)     /* one kept in a module table while its run waits */
        luaL_error(L, "%s belongs to another request", o.res ? "res" : "req");
    o.writable = o.res || o.run->kind == HOOKS_RUN_REQUEST;
    o.set = &o.run->set[o.res];
    return o;
}

static int hex(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Pushes s[0..len) percent-decoded ('+' is a space). */
static void push_decoded(lua_State *L, const char *s, size_t len)
{
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, len), *o = p;

    for (size_t i = 0; i != len; ++i) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < len && (hi = hex(s[i + 1])) >= 0 && (lo = hex(s[i + 2])) >= 0) {
            *o++ = (char)(hi * 16 + lo);
            i += 2;
        } else {
            *o++ = s[i] == '+' ? ' ' : s[i];
        }
    }
    luaL_pushresultsize(&b, (size_t)(o - p));
}

static void push_args(lua_State *L, const char *q, size_t len)
{
    const char *p = q, *end = q + len;

    lua_newtable(L);
    while (q != NULL && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p)), *pe = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p)), *ke = eq != NULL ? eq : pe;
        if (ke != p) {
            push_decoded(L, p, (size_t)(ke - p));
            if (eq != NULL)
                push_decoded(L, eq + 1, (size_t)(pe - eq - 1));
            else
                lua_pushliteral(L, "");
            lua_rawset(L, -3);
        }
        p = pe + 1;
    }
}

/* name -> value; a repeated name: joined (sep not NULL) or an array of its values (sep NULL). */
static void push_headers(lua_State *L, const hooks_kv_t *kv, size_t n, int join)
{
    luaL_checkstack(L, 8, NULL);
    lua_createtable(L, 0, n > 64 ? 64 : (int)n);
    for (size_t i = 0; i != n; ++i) {
        int t;
        hooks_push_lower(L, kv[i].name, kv[i].name_len);
        lua_pushvalue(L, -1);
        t = lua_rawget(L, -3);
        if (t == LUA_TNIL) {
            lua_pop(L, 1);
            lua_pushlstring(L, kv[i].value, kv[i].value_len);
        } else if (join) {
            lua_pushstring(L, strcmp(lua_tostring(L, -2), "cookie") == 0 ? "; " : ", ");
            lua_pushlstring(L, kv[i].value, kv[i].value_len);
            lua_concat(L, 3);
        } else if (t == LUA_TSTRING) {
            lua_createtable(L, 2, 0);
            lua_insert(L, -2);
            lua_rawseti(L, -2, 1);
            lua_pushlstring(L, kv[i].value, kv[i].value_len);
            lua_rawseti(L, -2, 2);
        } else {
            lua_pushlstring(L, kv[i].value, kv[i].value_len);
            lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
        }
        lua_rawset(L, -3);
    }
}

static void push_params(lua_State *L, const hooks_kv_t *kv, size_t n)
{
    lua_createtable(L, 0, n > 16 ? 16 : (int)n);
    for (size_t i = 0; i != n; ++i) {
        lua_pushlstring(L, kv[i].name, kv[i].name_len);
        lua_pushlstring(L, kv[i].value, kv[i].value_len);
        lua_rawset(L, -3);
    }
}

/* The fields the proxy fills in on demand (hooks_request_t.complete). */
static const hooks_request_t *completed(hooks_run_t *run)
{
    hooks_request_t *rq = (hooks_request_t *)run->rq; /* the caller's, writable: see hooks.h */

    if (rq->complete != NULL) {
        void (*complete)(hooks_request_t *) = rq->complete;
        rq->complete = NULL;
        complete(rq);
    }
    return rq;
}

/* Pushes field f of req (not kept yet); 0 for a field that is not read (cache_key, origin: nil until written). */
static int make_req_field(lua_State *L, const obj_t *o, const field_t *f)
{
    const hooks_request_t *rq = f->flags & FF_COMPLETE ? completed(o->run) : o->run->rq;

    switch (f->id) {
    case RQ_METHOD:
        for (size_t i = 0; i != NMETHODS; ++i)
            if (strlen(methods[i]) == rq->method_len && memcmp(methods[i], rq->method, rq->method_len) == 0) {
                lua_rawgeti(L, lua_upvalueindex(3), (lua_Integer)(NREQ + NRES + i + 1));
                return 1;
            }
        lua_pushlstring(L, rq->method, rq->method_len);
        break;
    case RQ_PATH:
        lua_pushlstring(L, rq->path, rq->path_len);
        break;
    case RQ_QUERY:
        rq->query != NULL ? (void)lua_pushlstring(L, rq->query, rq->query_len) : lua_pushnil(L);
        break;
    case RQ_HEADERS:
        push_headers(L, rq->headers, rq->nheaders, 1);
        if (o->writable)
            *o->set |= F_HEADERS; /* handed out: the script may change it (read back in on_request only) */
        break;
    case RQ_ARGS:
        push_args(L, rq->query, rq->query != NULL ? rq->query_len : 0);
        break;
    case RQ_HOST:
        lua_pushlstring(L, rq->host, rq->host_len);
        break;
    case RQ_SCHEME:
        lua_pushstring(L, rq->scheme);
        break;
    case RQ_PARAMS:
        push_params(L, rq->params, rq->nparams);
        break;
    case RQ_ROUTE:
        lua_pushstring(L, rq->route);
        break;
    case RQ_BODY:
        rq->body != NULL ? (void)lua_pushlstring(L, rq->body, rq->body_len) : lua_pushnil(L);
        break;
    case RQ_CLIENT_IP:
        lua_pushstring(L, rq->client_ip);
        break;
    case RQ_REQUEST_ID:
        lua_pushstring(L, rq->request_id);
        break;
    case RQ_CLAIMS:
        rq->claims_json != NULL ? hooks_json_decode(L, rq->claims_json, rq->claims_len, "claims") : lua_pushnil(L);
        break;
    case RQ_API_KEY_ID:
        lua_pushstring(L, rq->api_key_id); /* nil when NULL */
        break;
    default:
        return 0;
    }
    return 1;
}

static int make_res_field(lua_State *L, const obj_t *o, const field_t *f)
{
    const hooks_response_t *res = o->run->res_in;

    switch (f->id) {
    case RS_STATUS:
        lua_pushinteger(L, res->status);
        break;
    case RS_HEADERS:
        push_headers(L, res->headers, res->nheaders, 0);
        *o->set |= F_HEADERS;
        break;
    case RS_BODY:
        res->body != NULL ? (void)lua_pushlstring(L, res->body, res->body_len) : lua_pushnil(L);
        break;
    case RS_CACHEABLE:
        lua_pushboolean(L, 1);
        break;
    default:
        return 0;
    }
    return 1;
}

/* Pushes the object's values table (made on first use when make is set; else nil or false may be pushed); returns
 * the type pushed. Upvalue 2 of the metamethods: the anchors table. */
static int values(lua_State *L, const obj_t *o, int make)
{
    lua_Integer e = HOOKS_ANCHOR(o->run->slot, 1 + o->res);

    if (lua_rawgeti(L, lua_upvalueindex(2), e) == LUA_TTABLE || !make)
        return lua_type(L, -1);
    lua_pop(L, 1);
    lua_createtable(L, 0, 4);
    lua_pushvalue(L, -1);
    lua_rawseti(L, lua_upvalueindex(2), e);
    o->run->held |= 1u << (1 + o->res);
    return LUA_TTABLE;
}

/* __index: a value written or kept, else the field made now. A field the script set to nil stays nil. Scalar fields
 * (strings, numbers, booleans: cheap) are made fresh on each read; table fields are kept once made (FF_TABLE). */
static int obj_index(lua_State *L)
{
    hooks_vm_t *vm = lua_touserdata(L, lua_upvalueindex(1));
    obj_t o = check_obj(L, vm);
    const field_t *f;

    lua_settop(L, 2);
    if ((f = o.res ? field_of(L, 2, res_fields, vm->names + NREQ) : field_of(L, 2, req_fields, vm->names))->id == FIELD_NONE)
        return 0;
    if ((o.run->held & (1u << (1 + o.res))) && values(L, &o, 0) == LUA_TTABLE) { /* 3 (none made yet: not looked up) */
        lua_pushvalue(L, 2);
        if (lua_rawget(L, 3) != LUA_TNIL)
            return 1;
        if (*o.set & f->bit & ~(unsigned)F_HEADERS) /* written, as nil (headers are never nil) */
            return 1;
    }
    lua_settop(L, 2);
    if (!(o.res ? make_res_field(L, &o, f) : make_req_field(L, &o, f)))
        return 0;
    if (!(f->flags & FF_TABLE))
        return 1;
    values(L, &o, 1);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -3);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    return 1;
}

/* A header value (a string or number at idx) has no control character but HTAB: no CR, LF or NUL. */
static void check_value(lua_State *L, int idx, const char *what, const char *name)
{
    size_t len;
    const char *v;

    if (lua_type(L, idx) != LUA_TSTRING)
        return;
    v = lua_tolstring(L, idx, &len);
    if (hooks_has_ctl(v, len))
        luaL_error(L, "%s: the value of header '%s' has a control character (CR, LF, NUL...)", what, name);
}

/* Checks the headers table at idx (names tokens; values strings or numbers without CR, LF, NUL; arrays of them when
 * arrays is set); raises naming `what`. */
static void check_headers(lua_State *L, int idx, const char *what, int arrays)
{
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        size_t nl;
        const char *name;
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "%s: a header name is a %s, not a string", what, luaL_typename(L, -2));
        name = lua_tolstring(L, -2, &nl);
        if (nl == 0)
            luaL_error(L, "%s: an empty header name", what);
        for (size_t i = 0; i != nl; ++i)
            if (!hooks_is_tchar((unsigned char)name[i]))
                luaL_error(L, "%s: header name '%s' is not a token", what, name);
        if (arrays && lua_type(L, -1) == LUA_TTABLE) {
            lua_Unsigned n = lua_rawlen(L, -1);
            for (lua_Unsigned i = 1; i <= n; ++i) {
                int t = lua_rawgeti(L, -1, (lua_Integer)i);
                if (t != LUA_TSTRING && t != LUA_TNUMBER)
                    luaL_error(L, "%s: header '%s' has a %s value", what, name, luaL_typename(L, -1));
                check_value(L, -1, what, name);
                lua_pop(L, 1);
            }
        } else if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER) {
            luaL_error(L, "%s: header '%s' has a %s value, not a string", what, name, luaL_typename(L, -1));
        } else {
            check_value(L, -1, what, name);
        }
        lua_pop(L, 1);
    }
}

/* A path or query string the request may go on with: no control characters, spaces or '#' (and no '?' in a path). */
static int clean_target(const char *s, size_t len, int is_path)
{
    if (is_path && (len == 0 || s[0] != '/'))
        return 0;
    for (size_t i = 0; i != len; ++i) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f || c == '#' || (is_path && c == '?'))
            return 0;
    }
    return 1;
}

static void keep(lua_State *L, const obj_t *o, unsigned bit)
{
    values(L, o, 1);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_rawset(L, -3);
    *o->set |= bit;
}

static int req_newindex(lua_State *L, const obj_t *o, hooks_vm_t *vm)
{
    const char *k = luaL_checkstring(L, 2);
    const field_t *f = field_of(L, 2, req_fields, vm->names);
    size_t len;

    lua_settop(L, 3);
    if (!o->writable)
        return luaL_error(L, "req is read-only in on_response");
    switch (f->id) {
    case RQ_PATH:
    case RQ_QUERY: {
        int is_path = f->id == RQ_PATH;
        if (!(lua_type(L, 3) == LUA_TSTRING || (!is_path && lua_isnil(L, 3))))
            return luaL_error(L, "req.%s must be a string", k);
        if (lua_type(L, 3) == LUA_TSTRING) {
            const char *s = lua_tolstring(L, 3, &len);
            if (!clean_target(s, len, is_path))
                return luaL_error(L, is_path ? "req.path must start with '/' and have no '?', '#', space or control character"
                                             : "req.query must have no '#', space or control character");
        }
        break;
    }
    case RQ_HEADERS:
        if (lua_type(L, 3) != LUA_TTABLE)
            return luaL_error(L, "req.headers must be a table");
        check_headers(L, 3, "req.headers", 0);
        break;
    case RQ_CACHE_KEY:
    case RQ_ORIGIN:
        if (lua_type(L, 3) != LUA_TSTRING && !lua_isnil(L, 3))
            return luaL_error(L, "req.%s must be a string", k);
        break;
    default:
        return luaL_error(L, "req.%s cannot be set", k);
    }
    keep(L, o, f->bit);
    return 0;
}

static int res_newindex(lua_State *L, const obj_t *o, hooks_vm_t *vm)
{
    const char *k = luaL_checkstring(L, 2);
    const field_t *f = field_of(L, 2, res_fields, vm->names + NREQ);
    lua_Integer v;
    int isint;

    lua_settop(L, 3);
    switch (f->id) {
    case RS_STATUS:
        v = lua_tointegerx(L, 3, &isint);
        if (lua_type(L, 3) != LUA_TNUMBER || !isint || v < 100 || v > 599)
            return luaL_error(L, "res.status must be an integer in 100..599");
        break;
    case RS_HEADERS:
        if (lua_type(L, 3) != LUA_TTABLE)
            return luaL_error(L, "res.headers must be a table");
        check_headers(L, 3, "res.headers", 1);
        break;
    case RS_BODY:
        if (lua_type(L, 3) != LUA_TSTRING)
            return luaL_error(L, "res.body must be a string");
        break;
    case RS_TTL:
    case RS_MAX_TTL:
        v = lua_tointegerx(L, 3, &isint);
        if (!lua_isnil(L, 3) && (lua_type(L, 3) != LUA_TNUMBER || !isint || v < 0 || v > 100LL * 365 * 86400))
            return luaL_error(L, "res.%s must be a whole number of seconds (0..100 years), or nil", k);
        break;
    case RS_CACHEABLE:
        if (lua_type(L, 3) != LUA_TBOOLEAN)
            return luaL_error(L, "res.cacheable must be true or false");
        break;
    default:
        return luaL_error(L, "res.%s cannot be set", k);
    }
    keep(L, o, f->bit);
    return 0;
}

/* __newindex */
static int obj_newindex(lua_State *L)
{
    hooks_vm_t *vm = lua_touserdata(L, lua_upvalueindex(1));
    obj_t o = check_obj(L, vm);

    return o.res ? res_newindex(L, &o, vm) : req_newindex(L, &o, vm);
}

void hooks_request_open(lua_State *L, hooks_vm_t *vm)
{
    static const struct {
        const char *name;
        lua_CFunction fn;
    } mms[] = {{"__index", obj_index}, {"__newindex", obj_newindex}};

    lua_createtable(L, (int)(NREQ + NRES + NMETHODS), 0); /* the names: field names, then methods */
    for (size_t i = 0; i != NREQ + NRES + NMETHODS; ++i) {
        lua_pushstring(L, i < NREQ ? req_fields[i].name : i < NREQ + NRES ? res_fields[i - NREQ].name : methods[i - NREQ - NRES]);
        if (i < NREQ + NRES)
            vm->names[i] = lua_tostring(L, -1);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_pushlightuserdata(L, NULL);
    lua_createtable(L, 0, 3);
    for (size_t i = 0; i != sizeof(mms) / sizeof(mms[0]); ++i) {
        lua_pushlightuserdata(L, vm);
        lua_rawgeti(L, LUA_REGISTRYINDEX, vm->anchors_ref);
        lua_pushvalue(L, -5); /* the names */
        lua_pushcclosure(L, mms[i].fn, 3);
        lua_setfield(L, -2, mms[i].name);
    }
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_pop(L, 2);
}

void hooks_push_req(lua_State *L, const hooks_run_t *run)
{
    lua_pushlightuserdata(L, handle(run, 0));
}

void hooks_push_res(lua_State *L, const hooks_run_t *run)
{
    lua_pushlightuserdata(L, handle(run, 1));
}

/* ---- reading back (raw accesses only; on the main thread) ---- */

static char *copy(lua_State *L, hooks_run_t *run, const char *s, size_t len, int lower)
{
    char *p = hooks_copy_out(s, len, run->alloc, run->alloc_data);

    if (p == NULL)
        luaL_error(L, "out of memory copying what a hook changed");
    for (size_t i = 0; lower && i != len; ++i)
        p[i] = p[i] >= 'A' && p[i] <= 'Z' ? (char)(p[i] - 'A' + 'a') : p[i];
    return p;
}

/* Pushes the values table of run's req (which 0) or res (1), or what its entry holds when there is none. */
static void push_values(lua_State *L, const hooks_run_t *run, int which)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, run->vm->anchors_ref);
    lua_rawgeti(L, -1, HOOKS_ANCHOR(run->slot, 1 + which));
    lua_remove(L, -2);
}

/* Pushes the kept value of field k (raw) from the values table at vt. */
static int kept(lua_State *L, int vt, const char *k)
{
    if (lua_type(L, vt) != LUA_TTABLE) {
        lua_pushnil(L);
        return LUA_TNIL;
    }
    lua_pushstring(L, k);
    return lua_rawget(L, vt);
}

static void kv_set(lua_State *L, hooks_run_t *run, hooks_kv_t *kv, int name_idx, int value_idx)
{
    size_t nl, vl;
    const char *name, *value;

    name = lua_tolstring(L, name_idx, &nl);
    lua_pushvalue(L, value_idx);
    value = lua_tolstring(L, -1, &vl); /* numbers become strings on the copy */
    if (hooks_has_ctl(value, vl))
        luaL_error(L, "the value of header '%s' has a control character (CR, LF, NUL...)", name);
    kv->name = copy(L, run, name, nl, 1);
    kv->name_len = nl;
    kv->value = copy(L, run, value, vl, 0);
    kv->value_len = vl;
    lua_pop(L, 1);
}

/* Reads the headers table at the top (popped) into a list; arrays of values give one field each. */
static hooks_kv_t *read_headers(lua_State *L, hooks_run_t *run, const char *what, int arrays, size_t *n)
{
    int t = lua_gettop(L);
    size_t cap = 0;
    hooks_kv_t *kv;

    check_headers(L, t, what, arrays); /* the script may have put anything there since it was handed out */
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        cap += lua_type(L, -1) == LUA_TTABLE ? (size_t)lua_rawlen(L, -1) : 1;
        lua_pop(L, 1);
    }
    if ((kv = run->alloc(sizeof(*kv) * (cap + 1), run->alloc_data)) == NULL)
        luaL_error(L, "out of memory copying what a hook changed");
    *n = 0;
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        if (lua_type(L, -1) == LUA_TTABLE) {
            lua_Unsigned len = lua_rawlen(L, -1);
            for (lua_Unsigned i = 1; i <= len && *n != cap; ++i) {
                lua_rawgeti(L, -1, (lua_Integer)i);
                kv_set(L, run, kv + (*n)++, t + 1, lua_gettop(L));
                lua_pop(L, 1);
            }
        } else if (*n != cap) {
            kv_set(L, run, kv + (*n)++, t + 1, t + 2);
        }
        lua_pop(L, 1);
    }
    lua_settop(L, t - 1);
    return kv;
}

void hooks_read_req(lua_State *L, hooks_run_t *run)
{
    hooks_request_changes_t *c = &run->out->request;
    const hooks_request_t *rq = run->rq;
    unsigned set = run->set[0];
    size_t len;
    const char *s;
    int idx;

    if (run->kind != HOOKS_RUN_REQUEST || set == 0) /* read-only in on_response */
        return;
    luaL_checkstack(L, 10, NULL);
    push_values(L, run, 0);
    idx = lua_gettop(L);
    if (set & F_PATH) {
        kept(L, idx, "path");
        s = lua_tolstring(L, -1, &len);
        if (!(len == rq->path_len && memcmp(s, rq->path, len) == 0)) {
            c->path = copy(L, run, s, len, 0);
            c->path_len = len;
        }
        lua_pop(L, 1);
    }
    if (set & F_QUERY) {
        if (kept(L, idx, "query") == LUA_TSTRING) {
            s = lua_tolstring(L, -1, &len);
            if (!(rq->query != NULL && len == rq->query_len && memcmp(s, rq->query, len) == 0)) {
                c->query = copy(L, run, s, len, 0);
                c->query_len = len;
            }
        } else if (rq->query != NULL) {
            c->query = copy(L, run, "", 0, 0);
        }
        lua_pop(L, 1);
    }
    if (set & F_HEADERS) {
        if (kept(L, idx, "headers") == LUA_TTABLE) {
            c->headers = read_headers(L, run, "req.headers", 0, &c->nheaders);
            c->headers_changed = 1;
        } else {
            lua_pop(L, 1);
        }
    }
    if (set & F_CACHE_KEY) {
        if (kept(L, idx, "cache_key") == LUA_TSTRING) {
            s = lua_tolstring(L, -1, &len);
            c->cache_key = copy(L, run, s, len, 0);
            c->cache_key_len = len;
        }
        lua_pop(L, 1);
    }
    if (set & F_ORIGIN) {
        if (kept(L, idx, "origin") == LUA_TSTRING) {
            s = lua_tolstring(L, -1, &len);
            c->origin = copy(L, run, s, len, 0);
        }
        lua_pop(L, 1);
    }
    lua_settop(L, idx - 1);
}

void hooks_read_res(lua_State *L, hooks_run_t *run)
{
    hooks_response_changes_t *c = &run->out->changes;
    unsigned set = run->set[1];
    size_t len;
    const char *s;
    int idx;

    if (set == 0)
        return;
    luaL_checkstack(L, 10, NULL);
    push_values(L, run, 1);
    idx = lua_gettop(L);
    if (set & F_STATUS) {
        kept(L, idx, "status");
        c->status = (int)lua_tointeger(L, -1);
        if (c->status == run->res_in->status)
            c->status = 0;
        lua_pop(L, 1);
    }
    if (set & F_HEADERS) {
        if (kept(L, idx, "headers") == LUA_TTABLE) { /* none when keeping it failed (memory) and the script went on */
            c->headers = read_headers(L, run, "res.headers", 1, &c->nheaders);
            c->headers_changed = 1;
        } else {
            lua_pop(L, 1);
        }
    }
    if (set & F_BODY) {
        kept(L, idx, "body");
        s = lua_tolstring(L, -1, &len);
        c->body = copy(L, run, s, len, 0);
        c->body_len = len;
        c->body_changed = 1;
        lua_pop(L, 1);
    }
    if (set & F_TTL) {
        c->ttl_s = kept(L, idx, "ttl") == LUA_TNUMBER ? (int64_t)lua_tointeger(L, -1) : -1;
        lua_pop(L, 1);
    }
    if (set & F_MAX_TTL) {
        c->max_ttl_s = kept(L, idx, "max_ttl") == LUA_TNUMBER ? (int64_t)lua_tointeger(L, -1) : -1;
        lua_pop(L, 1);
    }
    if (set & F_CACHEABLE) {
        kept(L, idx, "cacheable");
        c->uncacheable = !lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    lua_settop(L, idx - 1);
}
