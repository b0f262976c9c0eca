/*
 * hooks/edge.c: the `edge` table every script sees (read-only, like every library table of the sandbox):
 *   edge.log(...)                 tostring of each argument, joined by spaces, to the options' log callback with the
 *                                 request id of the invocation (NULL at load time); also the sandbox's print
 *   edge.json.encode(v)           -> JSON text (json.c)
 *   edge.json.decode(s)           -> Lua value (json.c)
 *   edge.json.null                the value of JSON null (a light userdata), both ways (json.c)
 *   edge.base64.encode(s)/decode(s)  RFC 4648 base64, the standard alphabet; encode pads; decode takes padded or
 *                                 unpadded text (padding, when there is some, must be complete) and nothing else:
 *                                 no whitespace, no other alphabet, and a partial group is an error, never dropped
 *   edge.sha256(s)                -> lowercase hex
 *   edge.hmac_sha256(key, s)      -> lowercase hex
 *   edge.time()                   -> seconds since the epoch, with fractions (CLOCK_REALTIME)
 *   edge.vars                     the conf's stage variables (lua.variables), read-only
 *   edge.null                     edge.json.null, also DynamoDB's NULL for edge.store
 *   edge.store                    store.c: the item store (it suspends the run)
 *   edge.fetch, edge.purge, edge.respond   run.c: they suspend the run
 *
 * A C function does not trigger the count hook: a JSON or base64 call over a large string runs to its end (linear in
 * the input, which the memory limit bounds).
 *
 * Log lines are one line: CR, LF and other control characters are escaped (\n, \r, \xHH), and a line is cut at
 * HOOKS_LOG_MAX bytes ("..." marks the cut).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <mbedtls/base64.h>
#include <mbedtls/md.h>
#include <mbedtls/sha256.h>
#include "hooks/internal.h"

/* ---- edge.log ---- */

static int needs_cleaning(const char *s, size_t len)
{
    return len > HOOKS_LOG_MAX || hooks_has_ctl(s, len);
}

/* Pushes s as one line: control characters escaped, cut at HOOKS_LOG_MAX bytes. */
static void push_clean_line(lua_State *L, const char *s, size_t len)
{
    luaL_Buffer b;
    size_t i;

    luaL_buffinit(L, &b);
    for (i = 0; i != len && luaL_bufflen(&b) < HOOKS_LOG_MAX; ++i) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') {
            luaL_addstring(&b, "\\n");
        } else if (c == '\r') {
            luaL_addstring(&b, "\\r");
        } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
            char x[8];
            snprintf(x, sizeof(x), "\\x%02x", c);
            luaL_addstring(&b, x);
        } else {
            luaL_addchar(&b, (char)c);
        }
    }
    if (i != len)
        luaL_addstring(&b, "...");
    luaL_pushresult(&b);
}

int hooks_edge_log(lua_State *L)
{
    hooks_vm_t *vm = hooks_vm_of(L);
    hooks_call_t *call = hooks_current_call(L);
    int n = lua_gettop(L);
    luaL_Buffer b;
    const char *line;
    size_t len;

    if (vm->log == NULL)
        return 0;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; ++i) {
        if (i > 1)
            luaL_addchar(&b, ' ');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    line = lua_tolstring(L, -1, &len);
    if (needs_cleaning(line, len)) {
        push_clean_line(L, line, len);
        line = lua_tolstring(L, -1, &len);
    }
    vm->log(vm->log_data, call != NULL ? call->request_id : NULL, line, len);
    return 0;
}

/* ---- base64, hashes, time ---- */

void hooks_push_base64(lua_State *L, const char *s, size_t len)
{
    size_t olen = 0;
    luaL_Buffer b;
    char *out;

    mbedtls_base64_encode(NULL, 0, &olen, (const unsigned char *)s, len); /* olen: the size needed, with a NUL */
    out = luaL_buffinitsize(L, &b, olen);
    if (mbedtls_base64_encode((unsigned char *)out, olen, &olen, (const unsigned char *)s, len) != 0)
        luaL_error(L, "base64: cannot encode");
    luaL_pushresultsize(&b, olen);
}

static int edge_base64_encode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);

    hooks_push_base64(L, s, len);
    return 1;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

size_t hooks_base64_max(size_t len)
{
    return len / 4 * 3 + 3;
}

long hooks_base64_decode(const char *in, size_t len, unsigned char *out)
{
    size_t pad = 0, n, o = 0;
    uint32_t acc = 0; /* only its low 14 bits matter: the wrap is harmless */
    unsigned bits = 0;

    while (pad != 2 && pad != len && in[len - pad - 1] == '=')
        ++pad;
    n = len - pad;
    if (n % 4 == 1 || (pad != 0 && len % 4 != 0))
        return -1;
    for (size_t i = 0; i != n; ++i) {
        int v = b64_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return (long)o;
}

static int edge_base64_decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    luaL_Buffer b;
    unsigned char *out = (unsigned char *)luaL_buffinitsize(L, &b, hooks_base64_max(len));
    long n = hooks_base64_decode(s, len, out);

    if (n < 0)
        return luaL_error(L, "edge.base64.decode: not base64");
    luaL_pushresultsize(&b, (size_t)n);
    return 1;
}

static void push_hex(lua_State *L, const unsigned char *d, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char out[128];

    for (size_t i = 0; i != n; ++i) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    lua_pushlstring(L, out, 2 * n);
}

static int edge_sha256(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    unsigned char h[32];

    if (mbedtls_sha256_ret((const unsigned char *)s, len, h, 0) != 0)
        return luaL_error(L, "edge.sha256: failed");
    push_hex(L, h, sizeof(h));
    return 1;
}

static int edge_hmac_sha256(lua_State *L)
{
    size_t klen, len;
    const char *key = luaL_checklstring(L, 1, &klen);
    const char *s = luaL_checklstring(L, 2, &len);
    unsigned char h[32];

    if (mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), (const unsigned char *)key, klen, (const unsigned char *)s,
                        len, h) != 0)
        return luaL_error(L, "edge.hmac_sha256: failed");
    push_hex(L, h, sizeof(h));
    return 1;
}

static int edge_time(lua_State *L)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

void hooks_edge_open(lua_State *L, hooks_vm_t *vm)
{
    static const luaL_Reg edge_fns[] = {
        {"log", hooks_edge_log},     {"sha256", edge_sha256},     {"hmac_sha256", edge_hmac_sha256}, {"time", edge_time},
        {"fetch", hooks_edge_fetch}, {"purge", hooks_edge_purge}, {"respond", hooks_edge_respond},   {NULL, NULL},
    };
    static const luaL_Reg base64_fns[] = {{"encode", edge_base64_encode}, {"decode", edge_base64_decode}, {NULL, NULL}};

    luaL_newlib(L, edge_fns);
    hooks_json_open(L);
    lua_setfield(L, -2, "json");
    hooks_push_null(L);
    lua_setfield(L, -2, "null");
    hooks_store_open(L);
    lua_setfield(L, -2, "store");
    luaL_newlib(L, base64_fns);
    hooks_readonly(L, "edge.base64");
    lua_setfield(L, -2, "base64");
    lua_createtable(L, 0, vm->nvars > 64 ? 64 : (int)vm->nvars);
    for (size_t i = 0; i != vm->nvars; ++i) {
        lua_pushlstring(L, vm->vars[i].name, vm->vars[i].name_len);
        lua_pushlstring(L, vm->vars[i].value, vm->vars[i].value_len);
        lua_rawset(L, -3);
    }
    hooks_readonly(L, "edge.vars");
    lua_setfield(L, -2, "vars");
    hooks_readonly(L, "edge");
}
