/*
 * hooks/vm.c: the Lua VM of a worker thread: the counting allocator, the sandbox, the loading of scripts and modules,
 * and the invocations, each in its own coroutine under a CPU budget.
 *
 * Memory: lua_newstate() gets an allocator that counts the bytes it holds and refuses (returns NULL) any growth past
 * the VM's limit; shrinking never fails, as Lua requires. Lua then runs an emergency collection and, if that is not
 * enough, raises "not enough memory" inside the code that asked, so only that invocation fails. While the message of
 * a failed run is made (a traceback needs a little memory), HOOKS_ERROR_RESERVE more bytes are allowed. After a
 * memory failure (or any failure that leaves the VM over half its limit) the VM collects in full, so the next
 * invocation starts with the memory back.
 *
 * CPU: every coroutine that runs script code has a count hook (every HOOKS_COUNT_STEP instructions) that compares the
 * time the invocation has run (CLOCK_MONOTONIC) with its budget. Past the budget the hook raises "the function ran
 * longer than N ms" and from then on fires on every instruction: a script that catches the error (pcall, xpcall,
 * coroutine.resume) raises it again at its next instruction, so the error always reaches the top; an invocation that
 * caught it and still finished fails all the same. The invocation (hooks_call_t) is found through the coroutine's
 * extra space. Coroutines made by scripts go through this file's coroutine.create/wrap/resume/close, which give the
 * coroutine the hook and point it at the current invocation every time it runs (a coroutine kept in a module table
 * from an earlier request must not carry that request's state, which lived on that call's C stack).
 * An error raised inside a hook leaves Lua's hooks disabled until a protected call catches it, and two things would
 * run script code in that window, unhooked: xpcall's message handler (Lua calls it where the error is raised) and the
 * __close metamethods of a coroutine that died of the error. So the sandbox's xpcall skips the script's handler once
 * the budget is spent, and a coroutine dead by an error is never closed (its pending __close metamethods never run).
 * What the hook cannot see: time spent inside one C function. Most library loops are bounded by the size of their
 * input, so by the memory limit (a huge table.concat, a JSON decode); the few that are not are wrapped (see
 * max_positions()). Still unbounded: Lua patterns (string.find, match, gmatch, gsub) backtrack, and a pattern like
 * "(.-)=(.-)&" over a large subject, or "a*a*a*a*b", can take hours inside lstrlib, where nothing can stop it.
 *
 * Sandbox (one per VM; the real library tables never reach a script):
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
 *     then G is locked (lock_env()): assigning any global, new or existing, raises "assignment to global 'x': globals
 *     are read-only after load (use local)". Tables held by globals or upvalues stay writable: a module-level table
 *     is state the script chose to keep across requests;
 *   - require(name): name is [A-Za-z0-9_] words joined by single dots (no '/', no '..', never absolute), read as text
 *     from DIR/a/b.lua into its own G, cached per VM; refused when the options gave no directory.
 *
 * Errors: any failure (error, limit, bad answer) fails the invocation with a message and the coroutine's traceback.
 * Error objects are never converted with tostring (a __tostring metamethod could loop or fail): strings and numbers
 * are used as they are (a long one keeps its first and last HOOKS_ERR_MAX / 2 bytes), anything else becomes
 * "(error object is a T value)". All the work on the main thread runs inside lua_pcall and reads script values with
 * raw accesses only, so no script code runs there, where there is no hook.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "hooks/internal.h"

/* ---- the allocator ---- */

static void *vm_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    hooks_vm_t *vm = ud;
    size_t old = ptr != NULL ? osize : 0, cap = vm->limit + vm->reserve;
    void *p;

    if (nsize == 0) {
        free(ptr);
        vm->used -= old;
        return NULL;
    }
    if (nsize > old && (vm->used > cap || nsize - old > cap - vm->used))
        return NULL;
    if ((p = realloc(ptr, nsize)) == NULL)
        return NULL;
    vm->used = vm->used - old + nsize;
    return p;
}

static int on_panic(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "hooks: unprotected Lua error: %s\n", msg != NULL ? msg : "(not a string)");
    return 0; /* Lua aborts */
}

/* ---- the invocation a state runs for, and the CPU budget ---- */

uint64_t hooks_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

hooks_vm_t *hooks_vm_of(lua_State *L)
{
    void *ud;
    lua_getallocf(L, &ud);
    return ud;
}

hooks_call_t *hooks_current_call(lua_State *L)
{
    hooks_call_t *call;
    memcpy(&call, lua_getextraspace(L), sizeof(call));
    return call;
}

static void count_hook(lua_State *L, lua_Debug *ar)
{
    hooks_call_t *call = hooks_current_call(L);

    (void)ar;
    if (call == NULL)
        return;
    if (!call->expired) {
        if (hooks_now_ns() - call->start_ns <= call->budget_ns)
            return;
        call->expired = 1;
    }
    lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
    luaL_where(L, 0); /* in a hook, level 0 is the Lua function that was running */
    lua_pushfstring(L, "the function ran longer than %I ms", (lua_Integer)call->vm->cpu_ms);
    lua_concat(L, 2);
    lua_error(L);
}

/*
 * Points co at call and gives it the count hook. The hook is set only when it is not already the right one: setting
 * it restarts the count, and a script resuming the same coroutine in a loop must not keep its count from running out.
 */
static void adopt(lua_State *co, hooks_call_t *call)
{
    int count = call != NULL && call->expired ? 1 : HOOKS_COUNT_STEP;

    memcpy(lua_getextraspace(co), &call, sizeof(call));
    if (lua_gethook(co) != count_hook || lua_gethookcount(co) != count)
        lua_sethook(co, count_hook, LUA_MASKCOUNT, count);
}

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
static void new_env(lua_State *L, hooks_vm_t *vm)
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
static void lock_env(lua_State *L, hooks_vm_t *vm, int idx)
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

/* ---- the sandbox's coroutine library: lcorolib's functions, with adopt() before each run ---- */

static lua_State *check_co(lua_State *L, int arg)
{
    lua_State *co = lua_tothread(L, arg);
    luaL_argexpected(L, co != NULL, arg, "coroutine");
    return co;
}

static int sb_cocreate(lua_State *L)
{
    lua_State *co;

    luaL_checktype(L, 1, LUA_TFUNCTION);
    co = lua_newthread(L);
    adopt(co, hooks_current_call(L));
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
    adopt(co, hooks_current_call(L));
    lua_xmove(L, co, narg);
    status = lua_resume(co, L, narg, &nres);
    if (hooks_current_call(L) != NULL && hooks_current_call(L)->expired)
        adopt(L, hooks_current_call(L)); /* the caller's next instruction raises the breach again */
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
    adopt(co, hooks_current_call(L));
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    if (hooks_current_call(L) != NULL && hooks_current_call(L)->expired)
        adopt(L, hooks_current_call(L)); /* a breach in a __close: the caller's next instruction raises it again */
    return lua_gettop(L);
}

/* ---- running code in a coroutine ---- */

/*
 * Raises, on L, the error of co's failed run (status from lua_resume) with co's traceback, after closing co's
 * to-be-closed variables.
 */
static int run_failed(lua_State *L, lua_State *co, int status, hooks_call_t *call)
{
    hooks_vm_t *vm = hooks_vm_of(L);
    size_t len;

    if (status == LUA_ERRMEM) {
        call->out_of_memory = 1;
        vm->reserve = HOOKS_ERROR_RESERVE;
    }
    if (status == LUA_YIELD) {
        lua_pushliteral(L, "yielding is not supported here");
    } else {
        lua_xmove(co, L, 1);
        switch (lua_type(L, -1)) {
        case LUA_TSTRING:
        case LUA_TNUMBER:
            lua_tolstring(L, -1, &len);
            if (len > HOOKS_ERR_MAX) { /* keep both ends: the position is at the start, the cause often at the end */
                const char *msg = lua_tostring(L, -1);
                lua_pushlstring(L, msg, HOOKS_ERR_MAX / 2);
                lua_pushliteral(L, " [...] ");
                lua_pushlstring(L, msg + len - HOOKS_ERR_MAX / 2, HOOKS_ERR_MAX / 2);
                lua_concat(L, 3);
            }
            break;
        default:
            lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, -1));
        }
    }
    luaL_traceback(L, co, lua_tostring(L, -1), 0);
    vm->reserve = 0;
    if (status == LUA_YIELD) /* closes its tbc variables (under its hook): it can never be resumed */
        lua_resetthread(co);
    return lua_error(L);
}

/*
 * Runs the function below the nargs arguments at the top of L in a new coroutine, under call's limits. The function
 * and arguments are replaced by the coroutine (which anchors it) and the first result (nil if none). A failure is
 * raised on L (run_failed()).
 */
static void run(lua_State *L, hooks_call_t *call, int nargs)
{
    lua_State *co = lua_newthread(L);
    int status, nres;

    lua_insert(L, -(nargs + 2));
    adopt(co, call);
    lua_xmove(L, co, nargs + 1);
    status = lua_resume(co, L, nargs, &nres);
    if (status != LUA_OK)
        run_failed(L, co, status, call);
    if (call->expired) /* the script caught the breach and finished: it fails all the same */
        luaL_error(L, "the function ran longer than %I ms (the error was caught, but the budget is spent)",
                   (lua_Integer)call->vm->cpu_ms);
    if (nres == 0) {
        lua_pushnil(L);
    } else {
        lua_pop(co, nres - 1);
        lua_xmove(co, L, 1);
    }
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
    lock_env(L, hooks_vm_of(L), 3);
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
    new_env(L, vm); /* 5 */
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
static int setup_p(lua_State *L)
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

    hooks_edge_open(L);
    lua_setfield(L, 9, "edge");

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
    vm->envs_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

/* ---- scripts ---- */

typedef struct load_job {
    hooks_vm_t *vm;
    size_t id;
    hooks_call_t *call;
    const char *source; /* the text the caller read, or NULL: read the file */
    size_t source_len;
} load_job_t;

/* A text handed over by the caller is read as luaL_loadfilex reads a file: a UTF-8 BOM is skipped, and a first line
 * starting with '#' (#!/usr/bin/lua) becomes an empty line, so line numbers stay those of the file. */
typedef struct source_reader {
    const char *parts[2];
    size_t lens[2];
    int next;
} source_reader_t;

static const char *read_source(lua_State *L, void *data, size_t *size)
{
    source_reader_t *r = data;

    (void)L;
    while (r->next != 2 && r->lens[r->next] == 0)
        ++r->next;
    if (r->next == 2) {
        *size = 0;
        return NULL;
    }
    *size = r->lens[r->next];
    return r->parts[r->next++];
}

/* Pushes the chunk of s[0..len), named after path, or the message; returns lua_load's status. */
static int load_source(lua_State *L, const char *path, const char *s, size_t len)
{
    source_reader_t r = {{NULL, s}, {0, len}, 0};

    if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
        r.parts[1] += 3, r.lens[1] -= 3;
    if (r.lens[1] != 0 && r.parts[1][0] == '#') {
        const char *nl = memchr(r.parts[1], '\n', r.lens[1]);
        size_t skip = nl != NULL ? (size_t)(nl - r.parts[1]) + 1 : r.lens[1];
        r.parts[0] = "\n", r.lens[0] = 1;
        r.parts[1] += skip, r.lens[1] -= skip;
    }
    int status;

    lua_pushfstring(L, "@%s", path); /* on the stack while lua_load runs, which may collect */
    status = lua_load(L, read_source, &r, lua_tostring(L, -1), "t");
    lua_remove(L, -2);
    return status;
}

/* Protected: compiles script id (its file, or the text the caller read), runs its top level in its own global table,
 * then locks that table. */
static int load_script_p(lua_State *L)
{
    load_job_t *job = lua_touserdata(L, 1);
    const char *path = job->vm->scripts[job->id].path;

    lua_settop(L, 1);
    luaL_checkstack(L, 8, NULL);
    if ((job->source != NULL ? load_source(L, path, job->source, job->source_len) : luaL_loadfilex(L, path, "t")) != LUA_OK) {
        /* most messages start with "path:line:"; some ("attempt to load a binary chunk") name no file */
        if (lua_type(L, -1) != LUA_TSTRING || strstr(lua_tostring(L, -1), path) == NULL) {
            lua_pushfstring(L, "%s: %s", path, lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "cannot load");
        }
        return lua_error(L);
    }
    new_env(L, job->vm); /* 3: G */
    lua_pushvalue(L, 3);
    lua_setupvalue(L, 2, 1);
    lua_pushvalue(L, 2);
    run(L, job->call, 0);
    lock_env(L, job->vm, 3); /* V: the script's globals, where invocations look for handler */
    lua_rawgeti(L, LUA_REGISTRYINDEX, job->vm->envs_ref);
    lua_insert(L, -2);
    lua_rawseti(L, -2, (lua_Integer)job->id + 1);
    return 0;
}

/* ---- the API ---- */

static void call_init(hooks_call_t *call, hooks_vm_t *vm, const char *request_id)
{
    memset(call, 0, sizeof(*call));
    call->vm = vm;
    call->request_id = request_id;
    call->budget_ns = vm->cpu_ms > UINT64_MAX / 1000000u ? UINT64_MAX : vm->cpu_ms * 1000000u;
    call->start_ns = hooks_now_ns();
}

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (errlen != 0)
        snprintf(err, errlen, "%s", msg);
}

/* The message of a failed lua_pcall at the top of L. */
static const char *pcall_message(lua_State *L, size_t *len)
{
    if (lua_type(L, -1) == LUA_TSTRING)
        return lua_tolstring(L, -1, len);
    *len = strlen("unknown error");
    return "unknown error";
}

static char *base_name(const char *path)
{
    const char *b = strrchr(path, '/');
    size_t len;

    b = b != NULL ? b + 1 : path;
    len = strlen(b);
    if (len > 4 && strcmp(b + len - 4, ".lua") == 0)
        len -= 4;
    return strndup(b, len);
}

hooks_vm_t *hooks_vm_new(const hooks_options_t *opts, char *err, size_t errlen)
{
    hooks_vm_t *vm = calloc(1, sizeof(*vm));
    lua_State *L;

    if (vm == NULL) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    vm->limit = opts->memory != 0 ? opts->memory : HOOKS_DEFAULT_MEMORY;
    vm->cpu_ms = opts->cpu_ms != 0 ? opts->cpu_ms : HOOKS_DEFAULT_CPU_MS;
    vm->log = opts->log;
    vm->log_data = opts->log_data;
    if (opts->dir != NULL && (vm->dir = strdup(opts->dir)) == NULL)
        goto oom;
    if (opts->nfiles != 0) {
        if ((vm->scripts = calloc(opts->nfiles, sizeof(*vm->scripts))) == NULL)
            goto oom;
        vm->nscripts = opts->nfiles;
        for (size_t i = 0; i != opts->nfiles; ++i)
            if ((vm->scripts[i].path = strdup(opts->files[i])) == NULL || (vm->scripts[i].name = base_name(opts->files[i])) == NULL)
                goto oom;
    }
    if ((vm->L = L = lua_newstate(vm_alloc, vm)) == NULL) {
        set_err(err, errlen, "not enough memory for a Lua state");
        goto fail;
    }
    lua_atpanic(L, on_panic);
    memset(lua_getextraspace(L), 0, LUA_EXTRASPACE);

    lua_pushcfunction(L, setup_p);
    lua_pushlightuserdata(L, vm);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        size_t len;
        set_err(err, errlen, pcall_message(L, &len));
        goto fail;
    }
    for (size_t i = 0; i != vm->nscripts; ++i) {
        hooks_call_t call;
        load_job_t job = {vm, i, &call, opts->sources != NULL ? opts->sources[i] : NULL,
                          opts->sources != NULL ? opts->source_lens[i] : 0};

        call_init(&call, vm, NULL);
        lua_pushcfunction(L, load_script_p);
        lua_pushlightuserdata(L, &job);
        if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
            size_t len;
            set_err(err, errlen, pcall_message(L, &len));
            goto fail;
        }
        vm->reserve = 0;
    }
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT);
    return vm;

oom:
    set_err(err, errlen, "out of memory");
fail:
    hooks_vm_free(vm);
    return NULL;
}

void hooks_vm_free(hooks_vm_t *vm)
{
    if (vm == NULL)
        return;
    if (vm->L != NULL)
        lua_close(vm->L);
    for (size_t i = 0; i != vm->nscripts; ++i) {
        free(vm->scripts[i].path);
        free(vm->scripts[i].name);
    }
    free(vm->scripts);
    free(vm->dir);
    free(vm);
}

size_t hooks_vm_memory(const hooks_vm_t *vm)
{
    return vm->used;
}

typedef struct invocation {
    hooks_vm_t *vm;
    size_t script;
    const hooks_event_t *ev;
    hooks_call_t *call;
    hooks_alloc_cb alloc;
    void *alloc_data;
    hooks_response_t *res;
} invocation_t;

/* Protected: handler(event, context) in a coroutine, then the answer read into *res. */
static int invoke_p(lua_State *L)
{
    invocation_t *inv = lua_touserdata(L, 1);
    const hooks_script_t *s = &inv->vm->scripts[inv->script];

    lua_settop(L, 1);
    luaL_checkstack(L, 8, NULL);
    lua_rawgeti(L, LUA_REGISTRYINDEX, inv->vm->envs_ref);
    lua_rawgeti(L, -1, (lua_Integer)inv->script + 1);
    lua_pushliteral(L, "handler");
    if (lua_rawget(L, -2) != LUA_TFUNCTION)
        return luaL_error(L, "%s has no function handler", s->path);
    hooks_push_event(L, inv->ev);
    hooks_push_context(L, s->name, inv->ev->request_id);
    run(L, inv->call, 2);
    hooks_read_answer(L, -1, s->path, inv->alloc, inv->alloc_data, inv->res);
    return 0;
}

static char *copy_out(const char *s, size_t len, hooks_alloc_cb alloc, void *alloc_data)
{
    char *p = alloc(len + 1, alloc_data);

    if (p != NULL) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

int hooks_call_function(hooks_vm_t *vm, size_t script, const hooks_event_t *ev, hooks_alloc_cb alloc, void *alloc_data,
                        hooks_response_t *res, char **err)
{
    lua_State *L = vm->L;
    hooks_call_t call;
    invocation_t inv = {vm, script, ev, &call, alloc, alloc_data, res};
    int top = lua_gettop(L), status;

    memset(res, 0, sizeof(*res));
    *err = NULL;
    if (script >= vm->nscripts) {
        char msg[96];
        int n = snprintf(msg, sizeof(msg), "no script %zu (the VM has %zu)", script, vm->nscripts);
        *err = copy_out(msg, (size_t)n, alloc, alloc_data);
        return -1;
    }
    call_init(&call, vm, ev->request_id);
    lua_pushcfunction(L, invoke_p);
    lua_pushlightuserdata(L, &inv);
    status = lua_pcall(L, 1, 0, 0);
    if (status != LUA_OK) {
        size_t len;
        const char *msg = pcall_message(L, &len);
        *err = copy_out(msg, len, alloc, alloc_data);
        memset(res, 0, sizeof(*res));
    }
    lua_settop(L, top);
    vm->reserve = 0;
    /* A failed invocation may leave much garbage (a bomb): give the memory back before the next one. */
    if (status != LUA_OK && (status == LUA_ERRMEM || call.out_of_memory || vm->used > vm->limit / 2))
        lua_gc(L, LUA_GCCOLLECT);
    return status == LUA_OK ? 0 : -1;
}
