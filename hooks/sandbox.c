/*
 * hooks/sandbox.c: the sandbox of a VM (one per VM; the real library tables never reach a script): the base functions
 * and libraries scripts see, the global tables of scripts and modules, and require.
 *
 *   - base without dofile, loadfile, rawset, warn; collectgarbage("count") only; print is edge.log; load() forces mode
 *     "t" (no bytecode: bytecode can break the VM's invariants) and its environment defaults to a read-only view of
 *     the sandbox, never to the VM's real global table; setmetatable refuses metatables with __gc (a finalizer runs at
 *     an arbitrary moment, possibly on the main thread or in lua_close, where no hook and no budget apply);
 *   - string (without dump), table, math (without randomseed: the generator is shared by all requests), utf8,
 *     coroutine (the wrapped one), os with time, clock and date only; no io, debug, package;
 *   - scripts see read-only views of these tables (empty tables whose __index is the real one, __newindex raises,
 *     __metatable is false), so no request can change what another sees; the string metatable's __metatable is
 *     false, so getmetatable("") cannot reach it either;
 *   - every script and module has its own global table G (reads fall through to the sandbox base B; _G is G itself;
 *     its metatable is protected). The top level runs once, at load time, under the same limits as an invocation;
 *     then G is locked (hooks_lock_env()): assigning any global, new or existing, raises "assignment to global 'x':
 *     globals are read-only after load (use local)". Tables held by globals or upvalues stay writable: a module-level
 *     table is state the script chose to keep across requests;
 *   - require(name): name is [A-Za-z0-9_] words joined by single dots (no '/', no '..', never absolute), read as text
 *     from DIR/a/b.lua into its own G, cached per VM; refused when the options gave no directory.
 *
 * What the count hook (vm.c) cannot see. An error raised inside a hook leaves Lua's hooks disabled until a protected
 * call catches it, and two things would run script code in that window, unhooked: xpcall's message handler (Lua calls
 * it where the error is raised) and the __close metamethods of a coroutine that died of the error. So the sandbox's
 * xpcall skips the script's handler once the budget is spent, and a coroutine dead by an error is never closed (its
 * pending __close metamethods never run). Nor does the hook see time spent inside one C function. Most library loops
 * are bounded by the size of their input, so by the memory limit (a huge table.concat, a JSON decode); the few that
 * are not are wrapped (see max_positions()). Still unbounded: Lua patterns (string.find, match, gmatch, gsub)
 * backtrack, and a pattern like "(.-)=(.-)&" over a large subject, or "a*a*a*a*b", can take hours inside lstrlib,
 * where nothing can stop it.
 */
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "hooks/internal.h"

/* ---- read-only views and the global tables of scripts ---- */

static int readonly_newindex(lua_State *L)
{
    return luaL_error(L, "%s is read-only", lua_tostring(L, lua_upvalueindex(1)));
}

void hooks_readonly(lua_State *L, const char *name)
{
    lua_createtable(L, 0, 0);
    lua_createtable(L, 0, 3);
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "__index");
    lua_pushfstring(L, "table '%s'", name);
    lua_pushcclosure(L, readonly_newindex, 1);
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_remove(L, -2);
}

static int global_guard(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TSTRING)
        return luaL_error(L, "assignment to global '%s': globals are read-only after load (use local)", lua_tostring(L, 2));
    return luaL_error(L, "assignment to a global (a %s key): globals are read-only after load (use local)", luaL_typename(L, 2));
}

/* Pushes a new global table for a script or module: reads fall through to the sandbox base, _G is the table. */
void hooks_new_env(lua_State *L, hooks_vm_t *vm)
{
    lua_createtable(L, 0, 4);
    lua_createtable(L, 0, 3);
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->base_ref);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "_G");
}

/*
 * Locks the global table at idx once its top level has run. A __newindex metamethod only sees assignments to absent
 * keys, so the entries move to a new table V that the global table reads through (G.__index = V, V.__index = B): G
 * stays empty and every assignment, to a new name or to an existing one, raises. Pushes V, which scripts never see.
 */
void hooks_lock_env(lua_State *L, hooks_vm_t *vm, int idx)
{
    int v;

    idx = lua_absindex(L, idx);
    luaL_checkstack(L, 6, NULL);
    lua_createtable(L, 0, 8);
    v = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) { /* V[k] = G[k]; G[k] = nil (clearing a field during a traversal is allowed) */
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, v);
        lua_pushvalue(L, -1);
        lua_pushnil(L);
        lua_rawset(L, idx);
    }
    lua_createtable(L, 0, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->base_ref);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, v);
    lua_getmetatable(L, idx);
    lua_pushvalue(L, v);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, global_guard);
    lua_setfield(L, -2, "__newindex");
    lua_pop(L, 1);
}

/* ---- the sandbox's versions of base functions ---- */

/* load(chunk [, chunkname [, mode [, env]]]): text only, and env defaults to a read-only view of the sandbox. */
static int sb_load(lua_State *L)
{
    int has_env = lua_gettop(L) >= 4;

    lua_settop(L, 4);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_pushliteral(L, "t");
    lua_pushvalue(L, has_env ? 4 : lua_upvalueindex(2));
    lua_call(L, 4, LUA_MULTRET);
    return lua_gettop(L) - 4;
}

/* lbaselib's setmetatable, refusing finalizers (Lua marks an object for finalization only here). */
static int sb_setmetatable(lua_State *L)
{
    int t = lua_type(L, 2);

    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
    if (t == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "setmetatable: __gc metamethods are not allowed in the sandbox");
        lua_pop(L, 1);
    }
    if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
        return luaL_error(L, "cannot change a protected metatable");
    lua_settop(L, 2);
    lua_setmetatable(L, 1);
    return 1;
}

/* A full collection is C work the hook cannot interrupt: only "count" is left. */
static int sb_collectgarbage(lua_State *L)
{
    const char *opt = luaL_optstring(L, 1, "collect");

    if (strcmp(opt, "count") != 0)
        return luaL_error(L, "collectgarbage: only \"count\" is allowed in the sandbox");
    lua_pushnumber(L, (lua_Number)hooks_vm_of(L)->used / 1024);
    return 1;
}

/*
 * xpcall(f, msgh, ...): lbaselib's, with msgh behind msgh_guard. An error raised by the count hook is raised inside
 * the hook, where Lua disables hooks, and Lua calls the message handler right there: a handler that loops would run
 * unhooked, forever. Once the budget is spent msgh_guard passes the error on without calling the script's handler.
 */
static int msgh_guard(lua_State *L)
{
    hooks_call_t *call = hooks_current_call(L);

    if (call != NULL && call->expired)
        return 1;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static int finish_xpcall(lua_State *L, int status, lua_KContext extra)
{
    if (status != LUA_OK && status != LUA_YIELD) {
        lua_pushboolean(L, 0);
        lua_pushvalue(L, -2);
        return 2;
    }
    return lua_gettop(L) - (int)extra;
}

static int sb_xpcall(lua_State *L)
{
    int n = lua_gettop(L);

    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, msgh_guard, 1);
    lua_replace(L, 2);
    lua_pushboolean(L, 1);
    lua_pushvalue(L, 1);
    lua_rotate(L, 3, 2);
    return finish_xpcall(L, lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, finish_xpcall), 2);
}

/*
 * C loops that no memory bounds: the count hook never sees a C function's loop, and most of lstrlib's and ltablib's
 * loops are bounded by the size of a string or table, so by the memory limit. These are not, and would run for hours:
 * string.rep("", 2^53) copies nothing 2^53 times; table.move walks any range of positions, nils included; and
 * table.insert and table.remove walk up to #t, which a __len metamethod can make anything. The sandbox refuses what
 * no table of this VM could need: more positions than the memory limit has room for elements.
 */
static lua_Integer max_positions(lua_State *L)
{
    return (lua_Integer)(hooks_vm_of(L)->limit / 16); /* sizeof(TValue) */
}

/* Calls upvalue 1 (the library's function) with the arguments. */
static int call_original(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static int sb_rep(lua_State *L)
{
    size_t len, seplen;

    luaL_checklstring(L, 1, &len);
    luaL_checkinteger(L, 2);
    luaL_optlstring(L, 3, "", &seplen);
    if (len == 0 && seplen == 0) {
        lua_pushliteral(L, "");
        return 1;
    }
    return call_original(L);
}

static int sb_move(lua_State *L)
{
    lua_Integer f = luaL_checkinteger(L, 2), e = luaL_checkinteger(L, 3);

    if (e >= f && (lua_Unsigned)e - (lua_Unsigned)f >= (lua_Unsigned)max_positions(L))
        return luaL_error(L, "table.move: more positions than the sandbox allows");
    return call_original(L);
}

/* table.insert and table.remove (upvalue 2: the name), when #t comes from a __len metamethod. */
static int sb_check_len(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TTABLE && luaL_getmetafield(L, 1, "__len") != LUA_TNIL) {
        lua_Integer n;
        lua_pop(L, 1);
        n = luaL_len(L, 1);
        if (n < 0 || n >= max_positions(L))
            return luaL_error(L, "table.%s: a length of %I is out of the sandbox's range", lua_tostring(L, lua_upvalueindex(2)), n);
    }
    return call_original(L);
}

static void wrap_field(lua_State *L, int lib, const char *name, lua_CFunction f, int with_name)
{
    lua_getfield(L, lib, name);
    if (with_name)
        lua_pushstring(L, name);
    lua_pushcclosure(L, f, with_name ? 2 : 1);
    lua_setfield(L, lib, name);
}

/* ---- the sandbox's coroutine library: lcorolib's functions, with hooks_adopt() before each run ---- */

static lua_State *check_co(lua_State *L, int arg)
{
    lua_State *co = lua_tothread(L, arg);

    luaL_argexpected(L, co != NULL, arg, "coroutine");
    /* a run's own coroutine (coroutine.running() kept somewhere) belongs to its run: resuming or closing it from a
     * script would run (or end) that run's code behind the back of its wait */
    lua_rawgeti(L, LUA_REGISTRYINDEX, hooks_vm_of(L)->owned_ref);
    lua_pushvalue(L, arg);
    if (lua_rawget(L, -2) != LUA_TNIL)
        luaL_error(L, "a request's own coroutine cannot be resumed or closed by a script");
    lua_pop(L, 2);
    return co;
}

static int sb_cocreate(lua_State *L)
{
    lua_State *co;

    luaL_checktype(L, 1, LUA_TFUNCTION);
    co = lua_newthread(L);
    hooks_adopt(co, hooks_current_call(L));
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);
    return 1;
}

static int auxresume(lua_State *L, lua_State *co, int narg)
{
    int status, nres;

    if (!lua_checkstack(co, narg)) {
        lua_pushliteral(L, "too many arguments to resume");
        return -1;
    }
    hooks_adopt(co, hooks_current_call(L));
    lua_xmove(L, co, narg);
    status = lua_resume(co, L, narg, &nres);
    if (hooks_current_call(L) != NULL && hooks_current_call(L)->expired)
        hooks_adopt(L, hooks_current_call(L)); /* the caller's next instruction raises the breach again */
    if (status == LUA_OK || status == LUA_YIELD) {
        if (!lua_checkstack(L, nres + 1)) {
            lua_pop(co, nres);
            lua_pushliteral(L, "too many results to resume");
            return -1;
        }
        lua_xmove(co, L, nres);
        return nres;
    }
    lua_xmove(co, L, 1);
    return -1;
}

static int sb_coresume(lua_State *L)
{
    lua_State *co = check_co(L, 1);
    int r = auxresume(L, co, lua_gettop(L) - 1);

    if (r < 0) {
        lua_pushboolean(L, 0);
        lua_insert(L, -2);
        return 2;
    }
    lua_pushboolean(L, 1);
    lua_insert(L, -(r + 1));
    return r + 1;
}

static int auxwrap(lua_State *L)
{
    lua_State *co = lua_tothread(L, lua_upvalueindex(1));
    int r = auxresume(L, co, lua_gettop(L));

    if (r < 0) {
        /* Unlike lcorolib, the dead coroutine's tbc variables are not closed: see sb_coclose(). */
        if (lua_status(co) != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
            luaL_where(L, 1);
            lua_insert(L, -2);
            lua_concat(L, 2);
        }
        return lua_error(L);
    }
    return r;
}

static int sb_cowrap(lua_State *L)
{
    sb_cocreate(L);
    lua_pushcclosure(L, auxwrap, 1);
    return 1;
}

/*
 * coroutine.close(co). A suspended coroutine gets the hook and this invocation before its __close metamethods run. A
 * coroutine dead by an error is not closed (its pending __close metamethods never run): when the error came from the
 * count hook, Lua left the coroutine with hooks disabled, and lua_resetthread would run them unhooked. close answers
 * false and the error, as lcorolib does for such a coroutine.
 */
static int sb_coclose(lua_State *L)
{
    lua_State *co = check_co(L, 1);

    if (lua_status(co) != LUA_OK && lua_status(co) != LUA_YIELD) {
        lua_pushboolean(L, 0);
        lua_pushvalue(co, -1);
        lua_xmove(co, L, 1);
        return 2;
    }
    hooks_adopt(co, hooks_current_call(L));
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    if (hooks_current_call(L) != NULL && hooks_current_call(L)->expired)
        hooks_adopt(L, hooks_current_call(L)); /* a breach in a __close: the caller's next instruction raises it again */
    return lua_gettop(L);
}

/* ---- require ---- */

static char loading_marker; /* require's cache holds its address while a module's top level runs */

/* [A-Za-z0-9_]+ words joined by single dots. */
static int module_name_ok(const char *s, size_t len)
{
    int word = 0;

    for (size_t i = 0; i != len; ++i) {
        char c = s[i];
        if (c == '.') {
            if (!word)
                return 0;
            word = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_') {
            word = 1;
        } else {
            return 0;
        }
    }
    return word;
}

/* Protected: runs a module's chunk (1) with its name (2), then locks its global table (3); returns its value. */
static int require_run_p(lua_State *L)
{
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_call(L, 1, 1); /* 4 */
    hooks_lock_env(L, hooks_vm_of(L), 3);
    lua_pop(L, 1);
    if (lua_isnil(L, 4))
        lua_pushboolean(L, 1);
    else
        lua_pushvalue(L, 4);
    return 1;
}

static int sb_require(lua_State *L)
{
    hooks_vm_t *vm = hooks_vm_of(L);
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    luaL_Buffer b;

    lua_settop(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->loaded_ref); /* 2 */
    lua_pushvalue(L, 1);
    if (lua_rawget(L, 2) != LUA_TNIL) {
        if (lua_touserdata(L, -1) == &loading_marker)
            return luaL_error(L, "require: module '%s' requires itself while it loads", name);
        return 1;
    }
    lua_pop(L, 1);
    if (!module_name_ok(name, len))
        return luaL_error(L, "require: bad module name (letters, digits and '_', in words joined by single dots)");
    if (vm->dir == NULL)
        return luaL_error(L, "require('%s'): no scripts directory is configured", name);

    luaL_buffinit(L, &b);
    luaL_addstring(&b, vm->dir);
    luaL_addchar(&b, '/');
    for (size_t i = 0; i != len; ++i)
        luaL_addchar(&b, name[i] == '.' ? '/' : name[i]);
    luaL_addstring(&b, ".lua");
    luaL_pushresult(&b);                                      /* 3: the path */
    if (luaL_loadfilex(L, lua_tostring(L, 3), "t") != LUA_OK) /* 4: the chunk or the message */
        return luaL_error(L, "require('%s'): %s", name, lua_tostring(L, 4));
    hooks_new_env(L, vm); /* 5 */
    lua_pushvalue(L, 5);
    lua_setupvalue(L, 4, 1);

    /* The marker is in the cache only while require_run_p runs: every way out of it clears or replaces the marker,
     * and neither allocates (the key is there). */
    lua_pushvalue(L, 1);
    lua_pushlightuserdata(L, &loading_marker);
    lua_rawset(L, 2);
    lua_pushcfunction(L, require_run_p);
    lua_pushvalue(L, 4);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 5);
    if (lua_pcall(L, 3, 1, 0) != LUA_OK) { /* 6: the value or the error */
        lua_pushvalue(L, 1);
        lua_pushnil(L);
        lua_rawset(L, 2);
        return lua_error(L);
    }
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 6);
    lua_rawset(L, 2);
    return 1;
}

/* ---- building the sandbox ---- */

static const char *const base_kept[] = {"assert", "error",  "getmetatable", "ipairs",   "next",     "pairs", "pcall",   "rawequal",
                                        "rawget", "rawlen", "select",       "tonumber", "tostring", "type",  "_VERSION"};

static void copy_fields(lua_State *L, int from, const char *const *names, size_t n)
{
    for (size_t i = 0; i != n; ++i) {
        lua_getfield(L, from, names[i]);
        lua_setfield(L, -2, names[i]);
    }
}

/* Protected: opens the libraries and builds the sandbox base B and the registry tables. */
int hooks_setup_p(lua_State *L)
{
    static const char *const co_kept[] = {"status", "running", "isyieldable", "yield"};
    static const char *const os_kept[] = {"time", "clock", "date"};
    static const struct {
        const char *name;
        lua_CFunction open;
    } libs[] = {
        {LUA_GNAME, luaopen_base},          /* 2 */
        {LUA_STRLIBNAME, luaopen_string},   /* 3 */
        {LUA_TABLIBNAME, luaopen_table},    /* 4 */
        {LUA_MATHLIBNAME, luaopen_math},    /* 5 */
        {LUA_UTF8LIBNAME, luaopen_utf8},    /* 6 */
        {LUA_COLIBNAME, luaopen_coroutine}, /* 7 */
        {LUA_OSLIBNAME, luaopen_os},        /* 8 */
    };
    hooks_vm_t *vm = lua_touserdata(L, 1);

    lua_settop(L, 1);
    luaL_checkstack(L, 16, NULL);
    for (size_t i = 0; i != sizeof(libs) / sizeof(libs[0]); ++i)
        luaL_requiref(L, libs[i].name, libs[i].open, 0);

    /* Strings reach the real string table through their metatable: dump goes from it, and the metatable is hidden. */
    lua_pushnil(L);
    lua_setfield(L, 3, "dump");
    lua_pushnil(L);
    lua_setfield(L, 5, "randomseed");
    wrap_field(L, 3, "rep", sb_rep, 0);
    wrap_field(L, 4, "move", sb_move, 0);
    wrap_field(L, 4, "insert", sb_check_len, 1);
    wrap_field(L, 4, "remove", sb_check_len, 1);
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);

    lua_createtable(L, 0, 32); /* 9: B */
    copy_fields(L, 2, base_kept, sizeof(base_kept) / sizeof(base_kept[0]));
    lua_pushcfunction(L, sb_setmetatable);
    lua_setfield(L, 9, "setmetatable");
    lua_pushcfunction(L, sb_collectgarbage);
    lua_setfield(L, 9, "collectgarbage");
    lua_pushcfunction(L, sb_xpcall);
    lua_setfield(L, 9, "xpcall");
    lua_pushcfunction(L, hooks_edge_log);
    lua_setfield(L, 9, "print");
    lua_pushcfunction(L, sb_require);
    lua_setfield(L, 9, "require");
    lua_getfield(L, 2, "load");
    lua_pushvalue(L, 9);
    hooks_readonly(L, "_ENV");
    lua_pushcclosure(L, sb_load, 2);
    lua_setfield(L, 9, "load");

    lua_pushvalue(L, 3);
    hooks_readonly(L, LUA_STRLIBNAME);
    lua_setfield(L, 9, LUA_STRLIBNAME);
    lua_pushvalue(L, 4);
    hooks_readonly(L, LUA_TABLIBNAME);
    lua_setfield(L, 9, LUA_TABLIBNAME);
    lua_pushvalue(L, 5);
    hooks_readonly(L, LUA_MATHLIBNAME);
    lua_setfield(L, 9, LUA_MATHLIBNAME);
    lua_pushvalue(L, 6);
    hooks_readonly(L, LUA_UTF8LIBNAME);
    lua_setfield(L, 9, LUA_UTF8LIBNAME);

    lua_createtable(L, 0, 8);
    copy_fields(L, 7, co_kept, sizeof(co_kept) / sizeof(co_kept[0]));
    lua_pushcfunction(L, sb_cocreate);
    lua_setfield(L, -2, "create");
    lua_pushcfunction(L, sb_coresume);
    lua_setfield(L, -2, "resume");
    lua_pushcfunction(L, sb_cowrap);
    lua_setfield(L, -2, "wrap");
    lua_getfield(L, 7, "close");
    lua_pushcclosure(L, sb_coclose, 1);
    lua_setfield(L, -2, "close");
    hooks_readonly(L, LUA_COLIBNAME);
    lua_setfield(L, 9, LUA_COLIBNAME);

    lua_createtable(L, 0, 3);
    copy_fields(L, 8, os_kept, sizeof(os_kept) / sizeof(os_kept[0]));
    hooks_readonly(L, LUA_OSLIBNAME);
    lua_setfield(L, 9, LUA_OSLIBNAME);

    hooks_edge_open(L, vm);
    lua_setfield(L, 9, "edge");
    hooks_event_open(L, vm);

    /* Nothing in the state keeps the real os table (os.execute, os.exit, os.remove...). */
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_pushnil(L);
    lua_setfield(L, -2, LUA_OSLIBNAME);
    lua_pop(L, 1);

    lua_pushvalue(L, 9);
    vm->base_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newtable(L);
    vm->loaded_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newtable(L);
    vm->anchors_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newtable(L); /* the runs' own coroutines, as weak keys */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    vm->owned_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newtable(L);
    vm->envs_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    hooks_request_open(L, vm);
    return 0;
}
