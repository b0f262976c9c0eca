/*
 * hooks/json.c: JSON for scripts (edge.json.encode, edge.json.decode, edge.json.null), the decoder event.c uses for
 * the claims, and the UTF-8 check that JSON and the event's body share.
 *
 * JSON is done here rather than with jansson so that every byte of it is allocated by the VM's allocator, under the
 * memory limit: jansson's tree (tens of bytes per value, so about 20 times the text for "[0,0,0,...]") would be
 * allocated outside it. Both directions are strict and bounded:
 *   - encode: a table whose keys are exactly 1..n is an array; any other non-empty table is an object, whose keys must
 *     be strings or integers (written as their decimal string); the empty table is {}, an empty edge.store.list
 *     (store.c) is []; integers are written as integers, floats with enough digits to read back the same double
 *     (and ".0" when they would look like integers); NaN and infinities are errors; strings must be valid UTF-8
 *     (the output is always valid JSON); nesting deeper than HOOKS_JSON_MAX_DEPTH and a table that contains itself
 *     are errors; metamethods are not used (raw access), so encoding never runs script code;
 *   - decode: RFC 8259 only (no comments, no trailing commas, no NaN), any value at the top; strings must be valid
 *     UTF-8 and \u escapes must pair their surrogates; integers that fit in 64 bits are Lua integers, other numbers
 *     floats (out of range: an error); null is edge.json.null in arrays and in objects alike, so positions and keys
 *     are kept; a repeated object key keeps its last value; nesting deeper than HOOKS_JSON_MAX_DEPTH is an error.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hooks/internal.h"

static char json_null_marker;
#define JSON_NULL ((void *)&json_null_marker)

/* ---- UTF-8 ---- */

int hooks_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i != len) {
        unsigned c = s[i], lo = 0x80, hi = 0xbf;
        size_t n;

        if (c < 0x80) {
            ++i;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
        } else if (c == 0xe0) {
            n = 2, lo = 0xa0;
        } else if (c == 0xed) {
            n = 2, hi = 0x9f; /* no surrogates */
        } else if (c >= 0xe1 && c <= 0xef) {
            n = 2;
        } else if (c == 0xf0) {
            n = 3, lo = 0x90;
        } else if (c >= 0xf1 && c <= 0xf3) {
            n = 3;
        } else if (c == 0xf4) {
            n = 3, hi = 0x8f; /* nothing above U+10FFFF */
        } else {
            return 0;
        }
        if (len - i - 1 < n || s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k <= n; ++k)
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
        i += n + 1;
    }
    return 1;
}

/* ---- edge.json.encode ---- */

/* The output grows in a userdata kept at a fixed stack slot: an error anywhere leaves only garbage, never a leak. */
void hooks_jb_init(hooks_jbuf_t *b, lua_State *L, const char *what)
{
    b->L = L;
    b->what = what;
    b->cap = 256;
    b->len = 0;
    b->p = lua_newuserdatauv(L, b->cap, 0);
    b->slot = lua_gettop(L);
}

char *hooks_jb_room(hooks_jbuf_t *b, size_t n)
{
    if (b->cap - b->len < n) {
        size_t cap = b->cap;
        char *p;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2)
                luaL_error(b->L, "%s: the text is too long", b->what);
            cap *= 2;
        }
        p = lua_newuserdatauv(b->L, cap, 0);
        memcpy(p, b->p, b->len);
        lua_replace(b->L, b->slot);
        b->p = p;
        b->cap = cap;
    }
    return b->p + b->len;
}

void hooks_jb_add(hooks_jbuf_t *b, const char *s, size_t n)
{
    if (n != 0) {
        memcpy(hooks_jb_room(b, n), s, n);
        b->len += n;
    }
}

void hooks_jb_addc(hooks_jbuf_t *b, char c)
{
    *hooks_jb_room(b, 1) = c;
    b->len++;
}

void hooks_jb_string(hooks_jbuf_t *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t start = 0;

    if (!hooks_utf8_valid(s, len))
        luaL_error(b->L, "%s: a string is not valid UTF-8", b->what);
    hooks_jb_addc(b, '"');
    for (size_t i = 0; i != len; ++i) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        size_t n = 2;

        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        hooks_jb_add(b, s + start, i - start);
        start = i + 1;
        esc[0] = '\\';
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        hooks_jb_add(b, esc, n);
    }
    hooks_jb_add(b, s + start, len - start);
    hooks_jb_addc(b, '"');
}

int hooks_format_double(char *buf, size_t size, double v)
{
    int n = 0;

    for (int prec = 15; prec <= 17; ++prec) { /* the shortest of %.15g..%.17g that reads back as v */
        n = snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return n;
}

static void enc_number(hooks_jbuf_t *b, int idx)
{
    char buf[64];
    int n;

    if (lua_isinteger(b->L, idx)) {
        n = snprintf(buf, sizeof(buf), LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(b->L, idx));
    } else {
        double v = (double)lua_tonumber(b->L, idx);
        if (!isfinite(v))
            luaL_error(b->L, "edge.json.encode: NaN and infinities have no JSON form");
        n = hooks_format_double(buf, sizeof(buf) - 2, v);
        if (strspn(buf, "-0123456789") == (size_t)n) { /* keep it a float when read back */
            memcpy(buf + n, ".0", 3);
            n += 2;
        }
    }
    hooks_jb_add(b, buf, (size_t)n);
}

static void enc_value(hooks_jbuf_t *b, int idx, int depth, const void **seen);

static void enc_table(hooks_jbuf_t *b, int idx, int depth, const void **seen)
{
    lua_State *L = b->L;
    const void *self = lua_topointer(L, idx);
    lua_Integer count = 0, max = 0;
    int array = 1, first = 1;

    if (depth == HOOKS_JSON_MAX_DEPTH)
        luaL_error(L, "edge.json.encode: tables nested deeper than %d", HOOKS_JSON_MAX_DEPTH);
    for (int i = 0; i != depth; ++i)
        if (seen[i] == self)
            luaL_error(L, "edge.json.encode: a table contains itself");
    seen[depth] = self;
    luaL_checkstack(L, 4, "edge.json.encode");
    hooks_event_materialize(L, idx); /* a function's event: its fields made on first read are made now */

    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        ++count;
        if (array && lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
            if (lua_tointeger(L, -1) > max)
                max = lua_tointeger(L, -1);
        } else {
            array = 0;
        }
    }
    if (count == 0) {
        hooks_jb_add(b, hooks_store_is_list(L, idx) ? "[]" : "{}", 2);
        return;
    }
    if (!(array && max == count) && hooks_store_is_list(L, idx))
        luaL_error(L, "edge.json.encode: an edge.store.list must be a sequence (keys 1..n)");
    if (array && max == count) {
        hooks_jb_addc(b, '[');
        for (lua_Integer i = 1; i <= max; ++i) {
            if (i > 1)
                hooks_jb_addc(b, ',');
            lua_rawgeti(L, idx, i);
            enc_value(b, lua_gettop(L), depth + 1, seen);
            lua_pop(L, 1);
        }
        hooks_jb_addc(b, ']');
        return;
    }
    hooks_jb_addc(b, '{');
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        if (!first)
            hooks_jb_addc(b, ',');
        first = 0;
        if (lua_type(L, -2) == LUA_TSTRING) {
            size_t klen;
            const char *k = lua_tolstring(L, -2, &klen);
            hooks_jb_string(b, k, klen);
        } else if (lua_isinteger(L, -2)) {
            char buf[32];
            int n = snprintf(buf, sizeof(buf), "\"" LUA_INTEGER_FMT "\"", (LUAI_UACINT)lua_tointeger(L, -2));
            hooks_jb_add(b, buf, (size_t)n);
        } else {
            luaL_error(L, "edge.json.encode: a %s key has no JSON form",
                       lua_type(L, -2) == LUA_TNUMBER ? "float" : luaL_typename(L, -2));
        }
        hooks_jb_addc(b, ':');
        enc_value(b, lua_gettop(L), depth + 1, seen);
        lua_pop(L, 1);
    }
    hooks_jb_addc(b, '}');
}

static void enc_value(hooks_jbuf_t *b, int idx, int depth, const void **seen)
{
    lua_State *L = b->L;

    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        hooks_jb_add(b, "null", 4);
        break;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx))
            hooks_jb_add(b, "true", 4);
        else
            hooks_jb_add(b, "false", 5);
        break;
    case LUA_TNUMBER:
        enc_number(b, idx);
        break;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        hooks_jb_string(b, s, len);
        break;
    }
    case LUA_TTABLE:
        enc_table(b, idx, depth, seen);
        break;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == JSON_NULL) {
            hooks_jb_add(b, "null", 4);
            break;
        }
        /* fall through */
    default:
        luaL_error(L, "edge.json.encode: a %s value has no JSON form", luaL_typename(L, idx));
    }
}

static int edge_json_encode(lua_State *L)
{
    const void *seen[HOOKS_JSON_MAX_DEPTH];
    hooks_jbuf_t b;

    luaL_checkany(L, 1);
    lua_settop(L, 1);
    hooks_jb_init(&b, L, "edge.json.encode");
    enc_value(&b, 1, 0, seen);
    lua_pushlstring(L, b.p, b.len);
    return 1;
}

/* ---- edge.json.decode ---- */

typedef struct jdec {
    lua_State *L;
    const char *s, *p, *end;
    const char *what;
    int max_depth;
} jdec_t;

static void dec_error(jdec_t *d, const char *msg)
{
    luaL_error(d->L, "%s: %s at byte %I", d->what, msg, (lua_Integer)(d->p - d->s));
}

static void dec_ws(jdec_t *d)
{
    while (d->p != d->end && (*d->p == ' ' || *d->p == '\t' || *d->p == '\n' || *d->p == '\r'))
        ++d->p;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static void dec_literal(jdec_t *d, const char *lit)
{
    size_t n = strlen(lit);

    if ((size_t)(d->end - d->p) < n || memcmp(d->p, lit, n) != 0)
        dec_error(d, "unexpected character");
    d->p += n;
}

static unsigned dec_hex4(jdec_t *d)
{
    unsigned v = 0;

    if (d->end - d->p < 4)
        dec_error(d, "short \\u escape");
    for (int i = 0; i != 4; ++i) {
        char c = *d->p++;
        v <<= 4;
        if (is_digit(c))
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            dec_error(d, "bad \\u escape");
    }
    return v;
}

static void add_utf8(luaL_Buffer *b, unsigned cp)
{
    char u[4];
    size_t n;

    if (cp < 0x80) {
        u[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 0x3f)), u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | cp >> 18), u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3f)), u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    luaL_addlstring(b, u, n);
}

/* The run of plain characters from d->p: stops at '"', '\\', a control character or the end. */
static const char *plain_run(jdec_t *d)
{
    const char *q = d->p;

    while (q != d->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
        ++q;
    if (!hooks_utf8_valid(d->p, (size_t)(q - d->p)))
        dec_error(d, "a string is not valid UTF-8");
    return q;
}

static void dec_string(jdec_t *d)
{
    lua_State *L = d->L;
    const char *q;
    luaL_Buffer b;

    ++d->p;
    q = plain_run(d);
    if (q != d->end && *q == '"') { /* no escapes: one copy */
        lua_pushlstring(L, d->p, (size_t)(q - d->p));
        d->p = q + 1;
        return;
    }
    luaL_buffinit(L, &b);
    for (;;) {
        q = plain_run(d);
        luaL_addlstring(&b, d->p, (size_t)(q - d->p));
        d->p = q;
        if (d->p == d->end)
            dec_error(d, "unterminated string");
        if (*d->p == '"') {
            ++d->p;
            break;
        }
        if (*d->p != '\\')
            dec_error(d, "control character in a string");
        if (++d->p == d->end)
            dec_error(d, "unterminated string");
        switch (*d->p++) {
        case '"':
            luaL_addchar(&b, '"');
            break;
        case '\\':
            luaL_addchar(&b, '\\');
            break;
        case '/':
            luaL_addchar(&b, '/');
            break;
        case 'b':
            luaL_addchar(&b, '\b');
            break;
        case 'f':
            luaL_addchar(&b, '\f');
            break;
        case 'n':
            luaL_addchar(&b, '\n');
            break;
        case 'r':
            luaL_addchar(&b, '\r');
            break;
        case 't':
            luaL_addchar(&b, '\t');
            break;
        case 'u': {
            unsigned cp = dec_hex4(d);
            if (cp >= 0xd800 && cp <= 0xdbff) {
                unsigned lo;
                if (d->end - d->p < 2 || d->p[0] != '\\' || d->p[1] != 'u')
                    dec_error(d, "unpaired surrogate");
                d->p += 2;
                lo = dec_hex4(d);
                if (lo < 0xdc00 || lo > 0xdfff)
                    dec_error(d, "unpaired surrogate");
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                dec_error(d, "unpaired surrogate");
            }
            add_utf8(&b, cp);
            break;
        }
        default:
            --d->p;
            dec_error(d, "bad escape");
        }
    }
    luaL_pushresult(&b);
}

static void dec_number(jdec_t *d)
{
    const char *start = d->p;
    int is_float = 0;
    char buf[128];
    double v;

    if (*d->p == '-')
        ++d->p;
    if (d->p == d->end || !is_digit(*d->p))
        dec_error(d, "bad number");
    if (*d->p == '0')
        ++d->p;
    else
        while (d->p != d->end && is_digit(*d->p))
            ++d->p;
    if (d->p != d->end && *d->p == '.') {
        is_float = 1;
        if (++d->p == d->end || !is_digit(*d->p))
            dec_error(d, "bad number");
        while (d->p != d->end && is_digit(*d->p))
            ++d->p;
    }
    if (d->p != d->end && (*d->p == 'e' || *d->p == 'E')) {
        is_float = 1;
        if (++d->p != d->end && (*d->p == '+' || *d->p == '-'))
            ++d->p;
        if (d->p == d->end || !is_digit(*d->p))
            dec_error(d, "bad number");
        while (d->p != d->end && is_digit(*d->p))
            ++d->p;
    }
    if (!is_float) {
        int neg = *start == '-';
        uint64_t u = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        const char *q = start + neg;
        for (; q != d->p; ++q) {
            unsigned digit = (unsigned)(*q - '0');
            if (u > (limit - digit) / 10)
                break;
            u = u * 10 + digit;
        }
        if (q == d->p) { /* it fits: u <= 2^63 - 1, or 2^63 when negative */
            lua_pushinteger(d->L, !neg ? (lua_Integer)u : u == 0 ? 0 : -(lua_Integer)(u - 1) - 1);
            return;
        }
    }
    if ((size_t)(d->p - start) >= sizeof(buf))
        dec_error(d, "number too long");
    memcpy(buf, start, (size_t)(d->p - start));
    buf[d->p - start] = '\0';
    v = strtod(buf, NULL);
    if (!isfinite(v))
        dec_error(d, "number out of range");
    lua_pushnumber(d->L, (lua_Number)v);
}

static void dec_value(jdec_t *d, int depth);

static void dec_container(jdec_t *d, int depth, char close)
{
    lua_State *L = d->L;

    if (depth > d->max_depth)
        dec_error(d, "arrays and objects nested too deep");
    luaL_checkstack(L, 4, "edge.json.decode");
    lua_newtable(L);
    ++d->p;
    dec_ws(d);
    if (d->p != d->end && *d->p == close) {
        ++d->p;
        return;
    }
    for (lua_Integer i = 1;; ++i) {
        if (close == '}') {
            dec_ws(d);
            if (d->p == d->end || *d->p != '"')
                dec_error(d, "expected a string key");
            dec_string(d);
            dec_ws(d);
            if (d->p == d->end || *d->p != ':')
                dec_error(d, "expected ':'");
            ++d->p;
            dec_value(d, depth);
            lua_rawset(L, -3);
        } else {
            dec_value(d, depth);
            lua_rawseti(L, -2, i);
        }
        dec_ws(d);
        if (d->p == d->end)
            dec_error(d, "unexpected end");
        if (*d->p == close) {
            ++d->p;
            return;
        }
        if (*d->p != ',')
            dec_error(d, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
        ++d->p;
    }
}

static void dec_value(jdec_t *d, int depth)
{
    lua_State *L = d->L;

    dec_ws(d);
    if (d->p == d->end)
        dec_error(d, "unexpected end");
    switch (*d->p) {
    case '{':
        dec_container(d, depth + 1, '}');
        break;
    case '[':
        dec_container(d, depth + 1, ']');
        break;
    case '"':
        dec_string(d);
        break;
    case 't':
        dec_literal(d, "true");
        lua_pushboolean(L, 1);
        break;
    case 'f':
        dec_literal(d, "false");
        lua_pushboolean(L, 0);
        break;
    case 'n':
        dec_literal(d, "null");
        lua_pushlightuserdata(L, JSON_NULL);
        break;
    default:
        if (*d->p != '-' && !is_digit(*d->p))
            dec_error(d, "unexpected character");
        dec_number(d);
    }
}

void hooks_json_decode(lua_State *L, const char *s, size_t len, const char *what)
{
    hooks_json_decode_depth(L, s, len, what, HOOKS_JSON_MAX_DEPTH);
}

void hooks_json_decode_depth(lua_State *L, const char *s, size_t len, const char *what, int max_depth)
{
    jdec_t d = {L, s, s, s + len, what, max_depth};

    luaL_checkstack(L, 4, what);
    dec_value(&d, 0);
    dec_ws(&d);
    if (d.p != d.end)
        dec_error(&d, "unexpected text after the value");
}

static int edge_json_decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);

    hooks_json_decode(L, s, len, "edge.json.decode");
    return 1;
}

/* ---- null, shared with edge.null and edge.store ---- */

void hooks_push_null(lua_State *L)
{
    lua_pushlightuserdata(L, JSON_NULL);
}

int hooks_is_null(lua_State *L, int idx)
{
    return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == JSON_NULL;
}

/* ---- the edge.json table ---- */

void hooks_json_open(lua_State *L)
{
    static const luaL_Reg json_fns[] = {{"encode", edge_json_encode}, {"decode", edge_json_decode}, {NULL, NULL}};

    luaL_newlib(L, json_fns);
    lua_pushlightuserdata(L, JSON_NULL);
    lua_setfield(L, -2, "null");
    hooks_readonly(L, "edge.json");
}
