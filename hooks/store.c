/*
 * hooks/store.c: edge.store, the item store from Lua (hooks.h has the API: the functions, their options and results,
 * the value mapping and the errors).
 *
 * A call builds the DynamoDB JSON request of its operation from plain Lua values and waits for the store's answer
 * (run.c: hooks_wait_store; the proxy runs the request); hooks_store_push_result turns the answer into what the call
 * returns.
 *
 *   Lua -> JSON  the request grows in a hooks_jbuf_t (a userdata on the stack: an error leaves garbage, never a leak).
 *                Values are marshalled as lib-dynamodb's DocumentClient does; tables are read raw, so marshalling never
 *                runs script code; a table met again inside itself, or nesting deeper than HOOKS_JSON_MAX_DEPTH, is
 *                an error (the store allows 32 levels of L and M).
 *   JSON -> Lua  the answer is decoded by json.c (under the VM's memory limit), then each attribute value ({"S": "x"})
 *                is replaced in place by its Lua value ("x"), so an item costs one decoding and no second copy.
 *
 * Sets, binary values and lists are tables with a protected metatable (getmetatable gives "edge.store.set",
 * "edge.store.binary" or "edge.store.list"): a set's or a list's elements are its sequence, a binary value's bytes are
 * its field `value`. Lists read back carry theirs, so that an empty one (which a plain table cannot tell from an empty
 * map) is written back as a list.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <mbedtls/base64.h>
#include "hooks/internal.h"

/* An answer's JSON: 32 levels of L and M, two JSON levels each, inside the envelope of the answer. */
#define STORE_ANSWER_MAX_DEPTH 80

static char set_key, binary_key, list_key; /* registry keys of the metatables of sets, binary values and lists */

/* ---- options ---- */

enum {
    OP_GET = 1 << 0,
    OP_PUT = 1 << 1,
    OP_UPDATE = 1 << 2,
    OP_DELETE = 1 << 3,
    OP_QUERY = 1 << 4,
    OP_SCAN = 1 << 5,
    TX_PUT = 1 << 6, /* the actions of edge.store.transact */
    TX_UPDATE = 1 << 7,
    TX_DELETE = 1 << 8,
    TX_CHECK = 1 << 9,
};
#define OPS_WRITE (OP_PUT | OP_UPDATE | OP_DELETE)
#define OPS_PAGE (OP_QUERY | OP_SCAN)
#define OPS_TX (TX_PUT | TX_UPDATE | TX_DELETE | TX_CHECK)

typedef enum { K_STRING, K_BOOL, K_INT, K_NAMES, K_MAP } opt_kind_t;

/* The options and the DynamoDB fields they become. The first three are the fields of a transaction's action. */
static const struct option {
    const char *name;
    const char *field;
    opt_kind_t kind;
    unsigned ops;
} options[] = {
    {"table", "TableName", K_STRING, OPS_TX},
    {"item", "Item", K_MAP, TX_PUT},
    {"key", "Key", K_MAP, TX_UPDATE | TX_DELETE | TX_CHECK},
    {"condition", "ConditionExpression", K_STRING, OPS_WRITE | OPS_TX},
    {"update", "UpdateExpression", K_STRING, OP_UPDATE | TX_UPDATE},
    {"key_condition", "KeyConditionExpression", K_STRING, OP_QUERY},
    {"filter", "FilterExpression", K_STRING, OPS_PAGE},
    {"projection", "ProjectionExpression", K_STRING, OP_GET | OPS_PAGE},
    {"names", "ExpressionAttributeNames", K_NAMES, OP_GET | OPS_WRITE | OPS_PAGE | OPS_TX},
    {"values", "ExpressionAttributeValues", K_MAP, OPS_WRITE | OPS_PAGE | OPS_TX},
    {"return_values", "ReturnValues", K_STRING, OPS_WRITE},
    {"return_values_on_condition_check_failure", "ReturnValuesOnConditionCheckFailure", K_STRING, OPS_WRITE | OPS_TX},
    {"index", "IndexName", K_STRING, OPS_PAGE},
    {"limit", "Limit", K_INT, OPS_PAGE},
    {"forward", "ScanIndexForward", K_BOOL, OP_QUERY},
    {"start_key", "ExclusiveStartKey", K_MAP, OPS_PAGE},
    {"consistent", "ConsistentRead", K_BOOL, OP_GET | OPS_PAGE},
    {"select", "Select", K_STRING, OPS_PAGE},
    {"segment", "Segment", K_INT, OP_SCAN},
    {"total_segments", "TotalSegments", K_INT, OP_SCAN},
};
#define OPT_TABLE (1u << 0)
#define OPT_ITEM (1u << 1)
#define OPT_KEY (1u << 2)

/* ---- Lua -> DynamoDB JSON ---- */

typedef struct enc {
    hooks_jbuf_t b;
    lua_State *L;
    const char *what; /* "edge.store.put": the prefix of errors */
    int first;        /* no field written yet in the object being written */
    const void *seen[HOOKS_JSON_MAX_DEPTH];
} enc_t;

static void enc_av(enc_t *e, int idx, int depth);

/* 1 if the value at idx has the metatable registered under key. */
static int has_mt(lua_State *L, int idx, const void *key)
{
    int yes;

    if (!lua_getmetatable(L, idx))
        return 0;
    lua_rawgetp(L, LUA_REGISTRYINDEX, key);
    yes = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return yes;
}

static void enc_lit(enc_t *e, const char *s)
{
    hooks_jb_add(&e->b, s, strlen(s));
}

static void enc_field(enc_t *e, const char *name)
{
    if (!e->first)
        hooks_jb_addc(&e->b, ',');
    e->first = 0;
    hooks_jb_addc(&e->b, '"');
    enc_lit(e, name);
    hooks_jb_add(&e->b, "\":", 2);
}

/* A table entered at depth: not too deep, and not one of those it is inside. */
static void enter(enc_t *e, int idx, int depth)
{
    const void *self = lua_topointer(e->L, idx);

    if (depth >= HOOKS_JSON_MAX_DEPTH)
        luaL_error(e->L, "%s: values nested deeper than %d", e->what, HOOKS_JSON_MAX_DEPTH);
    for (int i = 0; i != depth; ++i)
        if (e->seen[i] == self)
            luaL_error(e->L, "%s: a table contains itself", e->what);
    e->seen[depth] = self;
    luaL_checkstack(e->L, 6, e->what);
}

static void enc_utf8(enc_t *e, int idx)
{
    size_t len;
    const char *s = lua_tolstring(e->L, idx, &len);

    if (!hooks_utf8_valid(s, len))
        luaL_error(e->L, "%s: a string is not valid UTF-8 (bytes go in edge.store.binary)", e->what);
    hooks_jb_string(&e->b, s, len);
}

/* A number as DynamoDB's N text, quoted: integers exactly, floats as the shortest text that reads back the same. */
static void enc_number(enc_t *e, int idx)
{
    char buf[64];
    int n;

    if (lua_isinteger(e->L, idx)) {
        n = snprintf(buf, sizeof(buf), LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(e->L, idx));
    } else {
        double v = (double)lua_tonumber(e->L, idx);
        if (!isfinite(v))
            luaL_error(e->L, "%s: NaN and infinities cannot be stored", e->what);
        n = hooks_format_double(buf, sizeof(buf), v);
    }
    hooks_jb_addc(&e->b, '"');
    hooks_jb_add(&e->b, buf, (size_t)n);
    hooks_jb_addc(&e->b, '"');
}

/* The bytes of the binary value at idx, as a quoted base64 string. */
static void enc_base64(enc_t *e, int idx)
{
    lua_State *L = e->L;
    size_t len, olen = 0;
    const char *s;
    char *p;

    lua_pushliteral(L, "value");
    if (lua_rawget(L, idx) != LUA_TSTRING)
        luaL_error(L, "%s: a binary value's value must be a string", e->what);
    s = lua_tolstring(L, -1, &len);
    mbedtls_base64_encode(NULL, 0, &olen, (const unsigned char *)s, len); /* olen: the size needed, with a NUL */
    p = hooks_jb_room(&e->b, olen + 2);
    p[0] = '"';
    if (mbedtls_base64_encode((unsigned char *)p + 1, olen, &olen, (const unsigned char *)s, len) != 0)
        luaL_error(L, "%s: cannot encode a binary value", e->what);
    p[olen + 1] = '"';
    e->b.len += olen + 2;
    lua_pop(L, 1);
}

/* The kind of a set's element: 'S', 'N', 'B', or 0 when it cannot be one. */
static char element_kind(lua_State *L, int idx)
{
    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        return 'S';
    case LUA_TNUMBER:
        return 'N';
    case LUA_TTABLE:
        return has_mt(L, idx, &binary_key) ? 'B' : 0;
    default:
        return 0;
    }
}

static void enc_set(enc_t *e, int idx)
{
    lua_State *L = e->L;
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    char kind = 0;

    if (n == 0)
        luaL_error(L, "%s: a set cannot be empty", e->what);
    for (lua_Integer i = 1; i <= n; ++i) {
        char k;
        lua_rawgeti(L, idx, i);
        if ((k = element_kind(L, -1)) == 0)
            luaL_error(L, "%s: a set holds strings, numbers or edge.store.binary values, not a %s", e->what, luaL_typename(L, -1));
        if (i == 1) {
            char head[] = "{\"?S\":[";
            head[2] = kind = k;
            enc_lit(e, head);
        } else if (k != kind) {
            luaL_error(L, "%s: a set mixes kinds of elements", e->what);
        } else {
            hooks_jb_addc(&e->b, ',');
        }
        if (k == 'S')
            enc_utf8(e, lua_gettop(L));
        else if (k == 'N')
            enc_number(e, lua_gettop(L));
        else
            enc_base64(e, lua_gettop(L));
        lua_pop(L, 1);
    }
    enc_lit(e, "]}");
}

/* n when the table at idx is a non-empty sequence (its keys exactly 1..n), else 0. */
static lua_Integer sequence_length(lua_State *L, int idx)
{
    lua_Integer count = 0, max = 0;

    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        ++count;
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
            lua_pop(L, 1);
            return 0;
        }
        if (lua_tointeger(L, -1) > max)
            max = lua_tointeger(L, -1);
    }
    return max == count ? count : 0;
}

/* What an edge.store.list may hold: n for a sequence of n (keys exactly 1..n), 0 for an empty table, -1 for any other. */
static lua_Integer list_length(lua_State *L, int idx)
{
    lua_Integer n = sequence_length(L, idx);

    if (n != 0)
        return n;
    lua_pushnil(L);
    if (lua_next(L, idx) == 0)
        return 0;
    lua_pop(L, 2);
    return -1;
}

/* The table at idx as a map of attribute values: {"name": AV, ...} (items, keys, M, ExpressionAttributeValues). */
static void enc_map(enc_t *e, int idx, int depth)
{
    lua_State *L = e->L;
    int first = 1;

    enter(e, idx, depth);
    hooks_jb_addc(&e->b, '{');
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        if (!first)
            hooks_jb_addc(&e->b, ',');
        first = 0;
        if (lua_type(L, -2) == LUA_TSTRING) {
            enc_utf8(e, lua_gettop(L) - 1);
        } else if (lua_isinteger(L, -2)) {
            char buf[32];
            int n = snprintf(buf, sizeof(buf), "\"" LUA_INTEGER_FMT "\"", (LUAI_UACINT)lua_tointeger(L, -2));
            hooks_jb_add(&e->b, buf, (size_t)n);
        } else {
            luaL_error(L, "%s: a %s key cannot name an attribute", e->what,
                       lua_type(L, -2) == LUA_TNUMBER ? "float" : luaL_typename(L, -2));
        }
        hooks_jb_addc(&e->b, ':');
        enc_av(e, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
    }
    hooks_jb_addc(&e->b, '}');
}

static void enc_table(enc_t *e, int idx, int depth)
{
    lua_State *L = e->L;
    lua_Integer n;

    if (has_mt(L, idx, &binary_key)) {
        enc_lit(e, "{\"B\":");
        enc_base64(e, idx);
        hooks_jb_addc(&e->b, '}');
        return;
    }
    if (has_mt(L, idx, &set_key)) {
        enc_set(e, idx);
        return;
    }
    if (has_mt(L, idx, &list_key)) { /* an edge.store.list: L, even empty */
        if ((n = list_length(L, idx)) < 0)
            luaL_error(L, "%s: an edge.store.list must be a sequence (keys 1..n)", e->what);
        goto list;
    }
    if ((n = sequence_length(L, idx)) == 0) { /* {} is an empty M */
        enc_lit(e, "{\"M\":");
        enc_map(e, idx, depth);
        hooks_jb_addc(&e->b, '}');
        return;
    }
list:
    enter(e, idx, depth);
    enc_lit(e, "{\"L\":[");
    for (lua_Integer i = 1; i <= n; ++i) {
        if (i > 1)
            hooks_jb_addc(&e->b, ',');
        lua_rawgeti(L, idx, i);
        enc_av(e, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
    }
    enc_lit(e, "]}");
}

/* The value at idx (absolute) as an attribute value. */
static void enc_av(enc_t *e, int idx, int depth)
{
    lua_State *L = e->L;

    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        enc_lit(e, "{\"S\":");
        enc_utf8(e, idx);
        hooks_jb_addc(&e->b, '}');
        break;
    case LUA_TNUMBER:
        enc_lit(e, "{\"N\":");
        enc_number(e, idx);
        hooks_jb_addc(&e->b, '}');
        break;
    case LUA_TBOOLEAN:
        enc_lit(e, lua_toboolean(L, idx) ? "{\"BOOL\":true}" : "{\"BOOL\":false}");
        break;
    case LUA_TTABLE:
        enc_table(e, idx, depth);
        break;
    case LUA_TLIGHTUSERDATA:
        if (hooks_is_null(L, idx)) {
            enc_lit(e, "{\"NULL\":true}");
            break;
        }
        /* fall through */
    default:
        luaL_error(L, "%s: a %s value cannot be stored", e->what, luaL_typename(L, idx));
    }
}

/* names: {["#n"] = "name"}. */
static void enc_names(enc_t *e, int idx)
{
    lua_State *L = e->L;
    int first = 1;

    hooks_jb_addc(&e->b, '{');
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "%s: names maps placeholders (\"#n\") to attribute names, both strings", e->what);
        if (!first)
            hooks_jb_addc(&e->b, ',');
        first = 0;
        enc_utf8(e, lua_gettop(L) - 1);
        hooks_jb_addc(&e->b, ':');
        enc_utf8(e, lua_gettop(L));
        lua_pop(L, 1);
    }
    hooks_jb_addc(&e->b, '}');
}

/* A plain table (an item, a key, a map of values) at idx, or an error naming `name`. */
static void check_plain_table(enc_t *e, int idx, const char *name)
{
    if (lua_type(e->L, idx) != LUA_TTABLE || has_mt(e->L, idx, &set_key) || has_mt(e->L, idx, &binary_key) ||
        has_mt(e->L, idx, &list_key))
        luaL_error(e->L, "%s: %s must be a table of attributes", e->what, name);
}

static void enc_option(enc_t *e, const struct option *o, int idx)
{
    lua_State *L = e->L;
    lua_Integer n;
    int isint;
    char buf[32];

    switch (o->kind) {
    case K_STRING:
        if (lua_type(L, idx) != LUA_TSTRING)
            luaL_error(L, "%s: %s must be a string", e->what, o->name);
        enc_utf8(e, idx);
        break;
    case K_BOOL:
        if (lua_type(L, idx) != LUA_TBOOLEAN)
            luaL_error(L, "%s: %s must be true or false", e->what, o->name);
        enc_lit(e, lua_toboolean(L, idx) ? "true" : "false");
        break;
    case K_INT:
        n = lua_tointegerx(L, idx, &isint);
        if (lua_type(L, idx) != LUA_TNUMBER || !isint)
            luaL_error(L, "%s: %s must be an integer", e->what, o->name);
        snprintf(buf, sizeof(buf), LUA_INTEGER_FMT, (LUAI_UACINT)n);
        enc_lit(e, buf);
        break;
    case K_NAMES:
        if (lua_type(L, idx) != LUA_TTABLE)
            luaL_error(L, "%s: names must be a table", e->what);
        enc_names(e, idx);
        break;
    case K_MAP:
        check_plain_table(e, idx, o->name);
        enc_map(e, idx, 0);
        break;
    }
}

/* Writes the options of the table at idx (absolute) as fields of the object being written; each must apply to op.
 * Returns the bits (1 << its index in options[]) of those given. */
static unsigned enc_options(enc_t *e, int idx, unsigned op)
{
    lua_State *L = e->L;
    unsigned given = 0;

    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        size_t i = 0;
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "%s: options are named by strings, not by a %s", e->what, luaL_typename(L, -2));
        while (i != sizeof(options) / sizeof(options[0]) && strcmp(options[i].name, lua_tostring(L, -2)) != 0)
            ++i;
        if (i == sizeof(options) / sizeof(options[0]))
            luaL_error(L, "%s: unknown option '%s'", e->what, lua_tostring(L, -2));
        if ((options[i].ops & op) == 0)
            luaL_error(L, "%s: option '%s' does not apply here", e->what, options[i].name);
        enc_field(e, options[i].field);
        enc_option(e, &options[i], lua_gettop(L));
        given |= 1u << i;
        lua_pop(L, 1);
    }
    return given;
}

/* Starts a request (its JSON object) for the function `what`, whose arguments are the stack's first nargs values. */
static void enc_begin(enc_t *e, lua_State *L, const char *what, int nargs)
{
    lua_settop(L, nargs);
    e->L = L;
    e->what = what;
    e->first = 1;
    hooks_jb_init(&e->b, L, what);
    hooks_jb_addc(&e->b, '{');
}

static void enc_table_name(enc_t *e, int arg)
{
    if (lua_type(e->L, arg) != LUA_TSTRING)
        luaL_typeerror(e->L, arg, "string (a table name)");
    enc_field(e, "TableName");
    enc_utf8(e, arg);
}

static void enc_item_arg(enc_t *e, int arg, const char *field)
{
    if (lua_type(e->L, arg) != LUA_TTABLE || has_mt(e->L, arg, &set_key) || has_mt(e->L, arg, &binary_key) ||
        has_mt(e->L, arg, &list_key))
        luaL_typeerror(e->L, arg, "table (of attributes)");
    enc_field(e, field);
    enc_map(e, arg, 0);
}

static void enc_opts_arg(enc_t *e, int arg, unsigned op, int required)
{
    if (!required && lua_isnil(e->L, arg))
        return;
    luaL_checktype(e->L, arg, LUA_TTABLE);
    enc_options(e, arg, op);
}

/* Ends the request and waits for the store's answer to it. */
static int enc_finish(enc_t *e, const char *op)
{
    hooks_jb_addc(&e->b, '}');
    lua_pushlstring(e->L, e->b.p, e->b.len);
    return hooks_wait_store(e->L, e->what, op);
}

/* ---- the functions ---- */

/* The single-item operations, Query and Scan: f(table, item or key, opts) or f(table, opts). */
static const struct call {
    const char *name, *what, *op;
    const char *item; /* DynamoDB's field for argument 2 ("Key", "Item"); NULL: argument 2 is the options */
    unsigned mask;
    int opts_required;
} calls[] = {
    {"get", "edge.store.get", "GetItem", "Key", OP_GET, 0},
    {"put", "edge.store.put", "PutItem", "Item", OP_PUT, 0},
    {"update", "edge.store.update", "UpdateItem", "Key", OP_UPDATE, 1},
    {"delete", "edge.store.delete", "DeleteItem", "Key", OP_DELETE, 0},
    {"query", "edge.store.query", "Query", NULL, OP_QUERY, 1},
    {"scan", "edge.store.scan", "Scan", NULL, OP_SCAN, 0},
};

/* The function of calls[i] (its upvalue). */
static int store_op(lua_State *L)
{
    const struct call *c = lua_touserdata(L, lua_upvalueindex(1));
    int opts = c->item != NULL ? 3 : 2;
    enc_t e;

    enc_begin(&e, L, c->what, opts);
    enc_table_name(&e, 1);
    if (c->item != NULL)
        enc_item_arg(&e, 2, c->item);
    enc_opts_arg(&e, opts, c->mask, c->opts_required);
    return enc_finish(&e, c->op);
}

/* One action of a transaction, the table at idx: {put = {...}} or {update = ...}, {delete = ...}, {check = ...}. */
static void enc_action(enc_t *e, int idx, lua_Integer nth)
{
    static const struct {
        const char *name, *field;
        unsigned op;
    } kinds[] = {{"put", "Put", TX_PUT},
                 {"update", "Update", TX_UPDATE},
                 {"delete", "Delete", TX_DELETE},
                 {"check", "ConditionCheck", TX_CHECK}};
    lua_State *L = e->L;
    size_t k = 0;
    unsigned need;

    if (lua_type(L, idx) != LUA_TTABLE || lua_rawlen(L, idx) != 0)
        luaL_error(L, "%s: action %I must be {put = ...}, {update = ...}, {delete = ...} or {check = ...}", e->what, nth);
    lua_pushnil(L);
    if (lua_next(L, idx) == 0 || lua_type(L, -2) != LUA_TSTRING)
        luaL_error(L, "%s: action %I must be {put = ...}, {update = ...}, {delete = ...} or {check = ...}", e->what, nth);
    while (k != sizeof(kinds) / sizeof(kinds[0]) && strcmp(kinds[k].name, lua_tostring(L, -2)) != 0)
        ++k;
    if (k == sizeof(kinds) / sizeof(kinds[0]) || lua_type(L, -1) != LUA_TTABLE)
        luaL_error(L, "%s: action %I must be {put = {...}}, {update = {...}}, {delete = {...}} or {check = {...}}", e->what, nth);
    lua_pushvalue(L, -2);
    if (lua_next(L, idx) != 0)
        luaL_error(L, "%s: action %I has more than one of put, update, delete, check", e->what, nth);
    hooks_jb_addc(&e->b, '{');
    e->first = 1;
    enc_field(e, kinds[k].field);
    hooks_jb_addc(&e->b, '{');
    e->first = 1;
    need = OPT_TABLE | (kinds[k].op == TX_PUT ? OPT_ITEM : OPT_KEY);
    if ((enc_options(e, lua_gettop(L), kinds[k].op) & need) != need)
        luaL_error(L, "%s: action %I (%s) needs table and %s", e->what, nth, kinds[k].name, kinds[k].op == TX_PUT ? "item" : "key");
    hooks_jb_add(&e->b, "}}", 2);
    lua_pop(L, 2);
}

static int store_transact(lua_State *L)
{
    enc_t e;
    lua_Integer n;

    enc_begin(&e, L, "edge.store.transact", 1);
    luaL_checktype(L, 1, LUA_TTABLE);
    enc_field(&e, "TransactItems");
    hooks_jb_addc(&e.b, '[');
    n = (lua_Integer)lua_rawlen(L, 1);
    for (lua_Integer i = 1; i <= n; ++i) {
        if (i > 1)
            hooks_jb_addc(&e.b, ',');
        lua_rawgeti(L, 1, i);
        enc_action(&e, lua_gettop(L), i);
        lua_pop(L, 1);
    }
    hooks_jb_addc(&e.b, ']');
    e.first = 0;
    return enc_finish(&e, "TransactWriteItems");
}

static void push_binary(lua_State *L, const char *s, size_t len)
{
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "value");
    lua_pushlstring(L, s, len);
    lua_rawset(L, -3);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &binary_key);
    lua_setmetatable(L, -2);
}

/* edge.store.binary(s): a binary value (B) of the bytes s. */
static int store_binary(lua_State *L)
{
    size_t len;
    const char *s;

    if (lua_type(L, 1) != LUA_TSTRING)
        luaL_typeerror(L, 1, "string");
    s = lua_tolstring(L, 1, &len);
    push_binary(L, s, len);
    return 1;
}

/* edge.store.set(list): a set of the elements of list, all strings (SS), numbers (NS) or binary values (BS). */
static int store_set(lua_State *L)
{
    lua_Integer n;
    char kind = 0;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    if ((n = sequence_length(L, 1)) == 0 || has_mt(L, 1, &binary_key))
        luaL_argerror(L, 1, "a non-empty sequence");
    lua_createtable(L, (int)(n > 1024 ? 1024 : n), 0);
    for (lua_Integer i = 1; i <= n; ++i) {
        char k;
        lua_rawgeti(L, 1, i);
        if ((k = element_kind(L, -1)) == 0)
            luaL_argerror(L, 1, "elements must be strings, numbers or edge.store.binary values");
        if (kind != 0 && k != kind)
            luaL_argerror(L, 1, "elements must be all strings, all numbers or all binary values");
        kind = k;
        lua_rawseti(L, 2, i);
    }
    lua_rawgetp(L, LUA_REGISTRYINDEX, &set_key);
    lua_setmetatable(L, 2);
    return 1;
}

int hooks_store_is_list(lua_State *L, int idx)
{
    return has_mt(L, idx, &list_key);
}

/* edge.store.list([t]): t (or a new table) marked as a list, so that it is written as L even when empty. */
static int store_list(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    if (lua_getmetatable(L, 1)) /* already marked (or a set, a binary value, a table with a metatable of its own) */
        luaL_argerror(L, 1, "a table without a metatable");
    if (list_length(L, 1) < 0)
        luaL_argerror(L, 1, "a sequence (keys 1..n), or an empty table");
    lua_settop(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &list_key);
    lua_setmetatable(L, 1);
    return 1;
}

static int binary_eq(lua_State *L)
{
    int eq;

    if (!has_mt(L, 1, &binary_key) || !has_mt(L, 2, &binary_key)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_pushliteral(L, "value");
    lua_rawget(L, 1);
    lua_pushliteral(L, "value");
    lua_rawget(L, 2);
    eq = lua_rawequal(L, -1, -2);
    lua_pushboolean(L, eq);
    return 1;
}

/* ---- DynamoDB JSON -> Lua ---- */

static void bad_answer(lua_State *L)
{
    luaL_error(L, "edge.store: the store's answer has a malformed attribute value");
}

/* The number of the string at idx (N's text): an integer when it has no point and fits, else a float. */
static void push_number(lua_State *L, int idx)
{
    if (lua_type(L, idx) != LUA_TSTRING || lua_stringtonumber(L, lua_tostring(L, idx)) == 0)
        bad_answer(L);
}

/* Pushes the binary value of the base64 text at idx. */
static void push_binary_b64(lua_State *L, int idx)
{
    size_t len;
    const char *s;
    luaL_Buffer b;
    unsigned char *out;
    long n;

    if (lua_type(L, idx) != LUA_TSTRING)
        bad_answer(L);
    s = lua_tolstring(L, idx, &len);
    out = (unsigned char *)luaL_buffinitsize(L, &b, hooks_base64_max(len));
    if ((n = hooks_base64_decode(s, len, out)) < 0)
        bad_answer(L);
    luaL_pushresultsize(&b, (size_t)n);
    push_binary(L, lua_tostring(L, -1), (size_t)n);
    lua_remove(L, -2);
}

static void dec_av(lua_State *L);

/* Replaces, in place, each value of the map at idx (an item, a key, an M) by its Lua value. */
static void dec_map(lua_State *L, int idx)
{
    if (lua_type(L, idx) != LUA_TTABLE)
        bad_answer(L);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        dec_av(L);
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, idx); /* an existing field: allowed during the traversal */
    }
}

/* The elements of the set (or list) at idx: each replaced by what f pushes for it. */
static void dec_elements(lua_State *L, int idx, void (*f)(lua_State *L, int idx))
{
    lua_Integer n;

    if (lua_type(L, idx) != LUA_TTABLE)
        bad_answer(L);
    n = (lua_Integer)lua_rawlen(L, idx);
    for (lua_Integer i = 1; i <= n; ++i) {
        lua_rawgeti(L, idx, i);
        f(L, lua_gettop(L));
        lua_rawseti(L, idx, i);
        lua_pop(L, 1);
    }
}

static void check_string(lua_State *L, int idx)
{
    if (lua_type(L, idx) != LUA_TSTRING)
        bad_answer(L);
    lua_pushvalue(L, idx);
}

static void dec_element(lua_State *L, int idx)
{
    lua_pushvalue(L, idx);
    dec_av(L);
}

static void make_set(lua_State *L, int idx)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &set_key);
    lua_setmetatable(L, idx);
}

/* Replaces the attribute value at the top of the stack ({"S": "x"}) by its Lua value ("x"). */
static void dec_av(lua_State *L)
{
    int t = lua_gettop(L);
    const char *type;

    luaL_checkstack(L, 8, "edge.store");
    lua_pushnil(L);
    if (lua_type(L, t) != LUA_TTABLE || lua_next(L, t) == 0 || lua_type(L, t + 1) != LUA_TSTRING)
        bad_answer(L);
    type = lua_tostring(L, t + 1); /* t + 2: its payload */
    if (strcmp(type, "S") == 0) {
        check_string(L, t + 2);
    } else if (strcmp(type, "N") == 0) {
        push_number(L, t + 2);
    } else if (strcmp(type, "BOOL") == 0) {
        if (lua_type(L, t + 2) != LUA_TBOOLEAN)
            bad_answer(L);
        lua_pushvalue(L, t + 2);
    } else if (strcmp(type, "NULL") == 0) {
        hooks_push_null(L);
    } else if (strcmp(type, "B") == 0) {
        push_binary_b64(L, t + 2);
    } else if (strcmp(type, "M") == 0) {
        dec_map(L, t + 2);
        lua_pushvalue(L, t + 2);
    } else if (strcmp(type, "L") == 0) {
        dec_elements(L, t + 2, dec_element);
        lua_rawgetp(L, LUA_REGISTRYINDEX, &list_key);
        lua_setmetatable(L, t + 2);
        lua_pushvalue(L, t + 2);
    } else if (strcmp(type, "SS") == 0 || strcmp(type, "NS") == 0 || strcmp(type, "BS") == 0) {
        dec_elements(L, t + 2, type[0] == 'S' ? check_string : type[0] == 'N' ? push_number : push_binary_b64);
        make_set(L, t + 2);
        lua_pushvalue(L, t + 2);
    } else {
        bad_answer(L);
    }
    lua_replace(L, t);
    lua_settop(L, t);
}

/* Pushes field `name` of the table at t, converted as a map when it is one; else nothing, and returns 0. */
static int push_map_field(lua_State *L, int t, const char *name)
{
    lua_pushstring(L, name);
    if (lua_rawget(L, t) != LUA_TTABLE) {
        lua_pop(L, 1);
        return 0;
    }
    dec_map(L, lua_gettop(L));
    return 1;
}

/* Copies field `from` of the table at t into field `to` of the table at the top. */
static void copy_field(lua_State *L, int t, const char *from, const char *to)
{
    lua_pushstring(L, from);
    lua_rawget(L, t);
    lua_setfield(L, -2, to);
}

/* nil and the error: {code, message, status, item, reasons}. */
static int push_error(lua_State *L, int t, int status)
{
    const char *type, *hash;

    lua_pushnil(L);
    lua_createtable(L, 0, 5);
    lua_pushliteral(L, "__type");
    type = lua_rawget(L, t) == LUA_TSTRING ? lua_tostring(L, -1) : "InternalServerError";
    hash = strrchr(type, '#');
    lua_pushstring(L, hash != NULL ? hash + 1 : type);
    lua_setfield(L, -3, "code");
    lua_pop(L, 1);
    lua_pushliteral(L, "message");
    if (lua_rawget(L, t) == LUA_TNIL) { /* both spellings occur */
        lua_pop(L, 1);
        lua_pushliteral(L, "Message");
        lua_rawget(L, t);
    }
    lua_setfield(L, -2, "message");
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    if (push_map_field(L, t, "Item"))
        lua_setfield(L, -2, "item");
    lua_pushliteral(L, "CancellationReasons");
    if (lua_rawget(L, t) == LUA_TTABLE) {
        int r = lua_gettop(L);
        lua_Integer n = (lua_Integer)lua_rawlen(L, r);
        lua_createtable(L, (int)(n > 100 ? 100 : n), 0);
        for (lua_Integer i = 1; i <= n; ++i) {
            lua_rawgeti(L, r, i);
            if (lua_type(L, -1) != LUA_TTABLE)
                bad_answer(L);
            lua_createtable(L, 0, 3);
            copy_field(L, lua_gettop(L) - 1, "Code", "code");
            copy_field(L, lua_gettop(L) - 1, "Message", "message");
            if (push_map_field(L, lua_gettop(L) - 1, "Item"))
                lua_setfield(L, -2, "item");
            lua_rawseti(L, r + 1, i);
            lua_pop(L, 1);
        }
        lua_setfield(L, -3, "reasons");
    }
    lua_pop(L, 1);
    return 2;
}

/* A Query's or Scan's page: {items, count, scanned_count, last_key}. */
static int push_page(lua_State *L, int t)
{
    lua_createtable(L, 0, 4);
    lua_pushliteral(L, "Items");
    if (lua_rawget(L, t) == LUA_TTABLE) {
        int items = lua_gettop(L);
        lua_Integer n = (lua_Integer)lua_rawlen(L, items);
        for (lua_Integer i = 1; i <= n; ++i) {
            lua_rawgeti(L, items, i);
            dec_map(L, lua_gettop(L));
            lua_pop(L, 1);
        }
    } else {
        lua_pop(L, 1);
        lua_newtable(L);
    }
    lua_setfield(L, -2, "items");
    copy_field(L, t, "Count", "count");
    copy_field(L, t, "ScannedCount", "scanned_count");
    if (push_map_field(L, t, "LastEvaluatedKey"))
        lua_setfield(L, -2, "last_key");
    return 1;
}

int hooks_store_push_result(lua_State *L, const char *op, int status, const char *body, size_t len)
{
    int t;

    luaL_checkstack(L, 16, "edge.store");
    hooks_json_decode_depth(L, body, len, "edge.store: the store's answer", STORE_ANSWER_MAX_DEPTH);
    if (lua_type(L, -1) != LUA_TTABLE)
        luaL_error(L, "edge.store: the store's answer is not a JSON object");
    t = lua_gettop(L);
    if (status != 200)
        return push_error(L, t, status);
    if (strcmp(op, "GetItem") == 0) {
        if (!push_map_field(L, t, "Item"))
            lua_pushnil(L);
        return 1;
    }
    if (strcmp(op, "Query") == 0 || strcmp(op, "Scan") == 0)
        return push_page(L, t);
    if (strcmp(op, "TransactWriteItems") == 0 || !push_map_field(L, t, "Attributes"))
        lua_pushboolean(L, 1);
    return 1;
}

/* ---- the edge.store table ---- */

void hooks_store_open(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"transact", store_transact}, {"set", store_set}, {"binary", store_binary}, {"list", store_list}, {NULL, NULL}};

    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "edge.store.set");
    lua_setfield(L, -2, "__metatable");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &set_key);
    lua_createtable(L, 0, 2);
    lua_pushliteral(L, "edge.store.binary");
    lua_setfield(L, -2, "__metatable");
    lua_pushcfunction(L, binary_eq);
    lua_setfield(L, -2, "__eq");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &binary_key);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "edge.store.list");
    lua_setfield(L, -2, "__metatable");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &list_key);
    luaL_newlib(L, fns);
    for (size_t i = 0; i != sizeof(calls) / sizeof(calls[0]); ++i) {
        lua_pushlightuserdata(L, (void *)&calls[i]);
        lua_pushcclosure(L, store_op, 1);
        lua_setfield(L, -2, calls[i].name);
    }
    hooks_readonly(L, "edge.store");
}
