/*
 * hooks/run.c: runs, the invocations of functions and hooks, each in its own coroutine, which may wait.
 *
 * A run has a slot: entries of the VM's anchors table (HOOKS_ANCHOR(slot, i)) that hold its coroutine (0) and what
 * must stay alive while it lasts (1, 2: the values tables of its req and res, request.c; a function's event during its
 * first step). Slots are kept and reused with their coroutine: a run that ended with its coroutine back to an empty,
 * normal state hands it to the next run (making a coroutine is most of the cost of a short run); a coroutine that died
 * by an error is dropped (its stack may hold much) and the slot gets a new one when it is taken again.
 *
 * A run is prepared (a slot, the script's function and its arguments pushed on the coroutine) inside lua_pcall on the
 * VM's main thread (prepare_p), or, for a hook when an idle slot has a clean coroutine and the function is known, by
 * prepare_fast, which cannot fail. Then step() resumes the coroutine from C (lua_resume protects itself). What it
 * stopped for is read inside lua_pcall (after_p), except when a hook ended having changed nothing: then it is simply
 * over, and such a run (req and res are light userdata handles, request.c) allocates nothing at all.
 *
 * The coroutine suspends itself only through edge.fetch, edge.purge, edge.store.* and edge.respond, which yield a
 * marker (a light userdata only this file knows) and what they ask for:
 *   fetch / purge / store  (marker, wait userdata, strings table): the run is HOOKS_WAITING. The userdata holds the
 *                  hooks_wait_t; its strings live in the strings table (the script's own tables could change while the
 *                  run waits). Resuming pops them and pushes the outcome: edge.fetch returns res or nil, message;
 *                  edge.store.* what store.c makes of the store's answer.
 *   respond        (marker, answer table): the answer is read as a function's is, the coroutine is closed (its
 *                  to-be-closed variables run) and the run is done.
 * Any other yield (a coroutine.yield at the run's top level) fails the run. At its first wait a function's event is
 * made whole and let go (event.c). Objects end with their run: a req or res names its run struct's generation.
 *
 * CPU: the budget counts the time the coroutine runs. When it suspends, the time spent so far is kept; when it is
 * resumed, the call's start is moved so that the clock goes on from there.
 *
 * Everything done on the main thread (reading results, building the fetch result, making error messages) runs inside
 * lua_pcall with raw accesses to script values, as in vm.c. Values are built on the main thread and moved to the
 * coroutine (lua_xmove), never built on a suspended coroutine, where an error would have nowhere to go.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hooks/internal.h"

static char fetch_marker, purge_marker, store_marker, respond_marker;

/* ---- the functions that suspend a run ---- */

static hooks_run_t *waiting_run(lua_State *L, const char *what)
{
    hooks_call_t *call = hooks_current_call(L);

    if (call == NULL || call->run == NULL)
        luaL_error(L, "%s: not available here (only in a request's function or hook, not at load time)", what);
    if (call->co != L)
        luaL_error(L, "%s: cannot wait inside a coroutine made by the script", what);
    if (call->expired)
        luaL_error(L, "the function ran longer than %I ms", (lua_Integer)call->vm->cpu_ms);
    return call->run;
}

/* Appends v (at the top, popped) to the anchor table at a and returns its bytes. */
static const char *anchor(lua_State *L, int a, size_t *len)
{
    const char *s = lua_tolstring(L, -1, len);
    lua_rawseti(L, a, (lua_Integer)lua_rawlen(L, a) + 1);
    return s;
}

/*
 * edge.fetch(url [, {method = "GET", headers = {name = value}, body = s, timeout = ms}]) -> res | nil, message
 * res = {status = 200, headers = {name = value}, body = s}; a failed exchange (no answer, timeout, refused) gives nil
 * and the reason. Bad arguments are errors.
 */
int hooks_edge_fetch(lua_State *L)
{
    hooks_run_t *run;
    hooks_wait_t *w;
    hooks_kv_t *kv = NULL;
    size_t n = 0, len;
    int a;

    luaL_checkstring(L, 1);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    run = waiting_run(L, "edge.fetch");
    lua_settop(L, 2);
    {
        const char *url = lua_tolstring(L, 1, &len);
        if (!((len > 7 && strncmp(url, "http://", 7) == 0) || (len > 8 && strncmp(url, "https://", 8) == 0)) ||
            hooks_has_ctl(url, len) || memchr(url, ' ', len) != NULL)
            luaL_argerror(L, 1, "not an http:// or https:// URL");
    }
    lua_pushlightuserdata(L, &fetch_marker); /* 3 */
    w = lua_newuserdatauv(L, sizeof(*w), 0); /* 4 */
    lua_createtable(L, 8, 0);                /* 5: the anchor */
    a = 5;
    memset(w, 0, sizeof(*w));
    w->kind = HOOKS_WAIT_FETCH;
    lua_pushvalue(L, 1);
    w->fetch.url = anchor(L, a, &w->fetch.url_len);
    w->fetch.method = "GET";
    w->fetch.method_len = 3;
    if (!lua_isnoneornil(L, 2)) {
        if (lua_getfield(L, 2, "method") != LUA_TNIL) {
            const char *m = lua_tolstring(L, -1, &len);
            luaL_Buffer b;
            char *p;
            if (lua_type(L, -1) != LUA_TSTRING || len == 0 || len > 32)
                luaL_error(L, "edge.fetch: method must be a non-empty string of at most 32 characters");
            p = luaL_buffinitsize(L, &b, len);
            for (size_t i = 0; i != len; ++i) {
                if (!hooks_is_tchar((unsigned char)m[i]))
                    luaL_error(L, "edge.fetch: method is not a token");
                p[i] = m[i] >= 'a' && m[i] <= 'z' ? (char)(m[i] - 'a' + 'A') : m[i];
            }
            luaL_pushresultsize(&b, len);
            w->fetch.method = anchor(L, a, &w->fetch.method_len);
        }
        lua_pop(L, 1);
        if (lua_getfield(L, 2, "body") != LUA_TNIL) {
            if (lua_type(L, -1) != LUA_TSTRING)
                luaL_error(L, "edge.fetch: body must be a string");
            w->fetch.body = anchor(L, a, &w->fetch.body_len);
        } else {
            lua_pop(L, 1);
        }
        if (lua_getfield(L, 2, "timeout") != LUA_TNIL) {
            int isnum;
            lua_Number ms = lua_tonumberx(L, -1, &isnum);
            if (!isnum || !(ms >= 1 && ms <= 3600000))
                luaL_error(L, "edge.fetch: timeout must be a number of milliseconds in 1..3600000");
            w->fetch.timeout_ms = (uint64_t)ms;
        }
        lua_pop(L, 1);
        if (lua_getfield(L, 2, "headers") != LUA_TNIL) {
            int h = lua_gettop(L);
            if (lua_type(L, h) != LUA_TTABLE)
                luaL_error(L, "edge.fetch: headers must be a table");
            lua_pushnil(L);
            while (lua_next(L, h) != 0) {
                ++n;
                lua_pop(L, 1);
            }
            kv = lua_newuserdatauv(L, sizeof(*kv) * (n + 1), 0);
            lua_rawseti(L, a, (lua_Integer)lua_rawlen(L, a) + 1);
            n = 0;
            lua_pushnil(L);
            while (lua_next(L, h) != 0) {
                size_t nl, vl;
                const char *name, *value;
                if (lua_type(L, -2) != LUA_TSTRING)
                    luaL_error(L, "edge.fetch: a header name is a %s, not a string", luaL_typename(L, -2));
                if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
                    luaL_error(L, "edge.fetch: header '%s' has a %s value", lua_tostring(L, -2), luaL_typename(L, -1));
                name = lua_tolstring(L, -2, &nl);
                for (size_t i = 0; i != nl; ++i)
                    if (!hooks_is_tchar((unsigned char)name[i]))
                        luaL_error(L, "edge.fetch: a header name is not a token");
                if (nl == 0)
                    luaL_error(L, "edge.fetch: an empty header name");
                lua_pushvalue(L, -1);
                value = luaL_tolstring(L, -1, &vl);
                if (hooks_has_ctl(value, vl))
                    luaL_error(L, "edge.fetch: the value of header '%s' has a control character", name);
                kv[n].value = anchor(L, a, &kv[n].value_len);
                lua_pop(L, 2); /* the copy and the value */
                lua_pushvalue(L, -1);
                kv[n].name = anchor(L, a, &kv[n].name_len);
                ++n;
            }
        }
        lua_pop(L, 1);
    }
    w->fetch.headers = kv;
    w->fetch.nheaders = n;
    (void)run;
    lua_settop(L, 5);
    return lua_yield(L, 3);
}

/* edge.purge{url = U | prefix = P | tag = T | host = H | all = true [, soft = true]} -> purged count | nil, message */
int hooks_edge_purge(lua_State *L)
{
    static const struct {
        const char *name;
        hooks_purge_kind_t kind;
    } kinds[] = {{"url", HOOKS_PURGE_URL},
                 {"prefix", HOOKS_PURGE_PREFIX},
                 {"tag", HOOKS_PURGE_TAG},
                 {"host", HOOKS_PURGE_HOST},
                 {"all", HOOKS_PURGE_ALL}};
    hooks_wait_t *w;
    int found = 0;

    luaL_checktype(L, 1, LUA_TTABLE);
    waiting_run(L, "edge.purge");
    lua_settop(L, 1);
    lua_pushlightuserdata(L, &purge_marker); /* 2 */
    w = lua_newuserdatauv(L, sizeof(*w), 0); /* 3 */
    lua_createtable(L, 1, 0);                /* 4: the anchor */
    memset(w, 0, sizeof(*w));
    w->kind = HOOKS_WAIT_PURGE;
    for (size_t i = 0; i != sizeof(kinds) / sizeof(kinds[0]); ++i) {
        int t = lua_getfield(L, 1, kinds[i].name);
        if (t == LUA_TNIL) {
            lua_pop(L, 1);
            continue;
        }
        if (found++)
            luaL_error(L, "edge.purge: give one of url, prefix, tag, host, all");
        w->purge.kind = kinds[i].kind;
        if (kinds[i].kind == HOOKS_PURGE_ALL) {
            if (t != LUA_TBOOLEAN || !lua_toboolean(L, -1))
                luaL_error(L, "edge.purge: all must be true");
            lua_pop(L, 1);
            w->purge.value = "";
        } else {
            size_t len;
            if (t != LUA_TSTRING || lua_rawlen(L, -1) == 0)
                luaL_error(L, "edge.purge: %s must be a non-empty string", kinds[i].name);
            w->purge.value = anchor(L, 4, &len);
            if (strlen(w->purge.value) != len)
                luaL_error(L, "edge.purge: %s has a NUL byte", kinds[i].name);
            w->purge.value_len = len;
        }
    }
    if (!found)
        luaL_error(L, "edge.purge: give one of url, prefix, tag, host, all");
    lua_getfield(L, 1, "soft");
    w->purge.soft = lua_toboolean(L, -1);
    lua_settop(L, 4);
    return lua_yield(L, 3);
}

int hooks_wait_store(lua_State *L, const char *what, const char *op)
{
    hooks_wait_t *w;
    int body = lua_gettop(L), a;

    waiting_run(L, what);
    lua_pushlightuserdata(L, &store_marker);
    w = lua_newuserdatauv(L, sizeof(*w), 0);
    lua_createtable(L, 1, 0); /* the anchor */
    a = lua_gettop(L);
    memset(w, 0, sizeof(*w));
    w->kind = HOOKS_WAIT_STORE;
    w->store.op = op;
    lua_pushvalue(L, body);
    w->store.body = anchor(L, a, &w->store.body_len);
    return lua_yield(L, 3);
}

/* edge.respond(status [, headers [, body]]): in on_request, answers the request at once; the hook ends here. headers
 * maps names to a string or an array of strings. */
int hooks_edge_respond(lua_State *L)
{
    hooks_run_t *run;
    lua_Integer status;
    int isint;

    status = lua_tointegerx(L, 1, &isint);
    if (lua_type(L, 1) != LUA_TNUMBER || !isint || status < 100 || status > 599)
        luaL_argerror(L, 1, "a status code in 100..599");
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    if (!lua_isnoneornil(L, 3))
        luaL_checktype(L, 3, LUA_TSTRING);
    run = waiting_run(L, "edge.respond");
    if (run->kind != HOOKS_RUN_REQUEST)
        luaL_error(L, "edge.respond: only in on_request");
    lua_settop(L, 3);
    lua_pushlightuserdata(L, &respond_marker); /* 4 */
    lua_createtable(L, 0, 4);                  /* 5: the answer, as a function gives it */
    lua_pushinteger(L, status);
    lua_setfield(L, 5, "statusCode");
    if (!lua_isnil(L, 3)) {
        lua_pushvalue(L, 3);
        lua_setfield(L, 5, "body");
    }
    if (!lua_isnil(L, 2)) {
        lua_newtable(L); /* 6: headers */
        lua_newtable(L); /* 7: multiValueHeaders */
        lua_pushnil(L);
        while (lua_next(L, 2) != 0) {
            if (lua_type(L, -1) == LUA_TTABLE) {
                lua_Integer len = luaL_len(L, -1);
                lua_createtable(L, (int)(len > 64 ? 64 : len), 0);
                for (lua_Integer i = 1; i <= len; ++i) {
                    lua_geti(L, -2, i);
                    lua_rawseti(L, -2, i);
                }
                lua_pushvalue(L, -3);
                lua_insert(L, -2);
                lua_rawset(L, 7);
                lua_pop(L, 1);
            } else {
                lua_pushvalue(L, -2);
                lua_insert(L, -2);
                lua_rawset(L, 6);
            }
        }
        lua_setfield(L, 5, "multiValueHeaders");
        lua_setfield(L, 5, "headers");
    }
    return lua_yield(L, 2);
}

/* ---- the steps of a run ---- */

/* Gives the run's slot back: what entries 1 and 2 held goes, and the slot is idle with its coroutine when that is back
 * to an empty, normal state (one that died by an error is dropped: its stack may hold much; the next run of the slot
 * makes a new one). No allocation here (only nils, which Lua never inserts), so no protection is needed; the idle
 * array grew when the slot was made. */
static void slot_release(hooks_run_t *run)
{
    hooks_vm_t *vm = run->vm;
    lua_State *L = vm->L;
    int reusable;

    if (run->slot == 0)
        return;
    memset(lua_getextraspace(run->co), 0, sizeof(hooks_call_t *)); /* the call goes with the run */
    if ((reusable = lua_status(run->co) == LUA_OK))
        lua_settop(run->co, 0);
    if (run->held != 0 || !reusable) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, vm->anchors_ref);
        for (int i = reusable ? 1 : 0; i != 3; ++i) {
            if (i != 0 && !(run->held & (1u << i)))
                continue;
            lua_pushnil(L);
            lua_rawseti(L, -2, HOOKS_ANCHOR(run->slot, i));
        }
        lua_pop(L, 1);
    }
    vm->idle[vm->nidle++] = (hooks_idle_t){run->slot, reusable ? run->co : NULL};
    run->slot = 0;
    run->held = 0;
}

static void run_free(hooks_run_t *run)
{
    hooks_vm_t *vm = run->vm;

    slot_release(run);
    ++run->gen; /* its req and res objects are over (request.c) */
    run->ev = NULL;
    run->ev_obj = NULL;
    run->next_free = vm->free_runs; /* kept for the next run (hooks_vm_free frees them) */
    vm->free_runs = run;
    if (--vm->nruns == 0 && vm->doomed)
        hooks_vm_free(vm);
}

static const char *pcall_message(lua_State *L, size_t *len)
{
    if (lua_type(L, -1) == LUA_TSTRING)
        return lua_tolstring(L, -1, len);
    *len = strlen("unknown error");
    return "unknown error";
}

/* Runs f(arg) on the VM's main thread, protected (arg: the run, or what f needs of it); on failure, sets the run's
 * outcome error. Returns the lua_pcall status. */
static int protect(hooks_run_t *run, lua_CFunction f, void *arg)
{
    lua_State *L = run->vm->L;
    int top = lua_gettop(L), status;

    lua_pushcfunction(L, f);
    lua_pushlightuserdata(L, arg);
    if ((status = lua_pcall(L, 1, 0, 0)) != LUA_OK) {
        size_t len;
        const char *msg = pcall_message(L, &len);
        run->out->error = hooks_copy_out(msg, len, run->alloc, run->alloc_data);
        if (status == LUA_ERRMEM)
            run->call.out_of_memory = 1;
    }
    lua_settop(L, top);
    run->vm->reserve = 0;
    return status;
}

static const char *const function_names[] = {"handler", "on_request", "on_response"};

/* Pushes a new coroutine for runs, marked as a run's own (sandbox.c refuses to resume or close those). */
static lua_State *new_owned_thread(lua_State *L, hooks_vm_t *vm)
{
    lua_State *co = lua_newthread(L);

    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->owned_ref);
    lua_pushvalue(L, -2);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    return co;
}

/* Pushes the function a run of this kind calls in its script: looked up in the script's globals the first time (they
 * are read-only after load, so it cannot change), then kept (vm->fn_ref). Raises when the script has none. */
static void push_function(lua_State *L, const hooks_run_t *run)
{
    hooks_vm_t *vm = run->vm;
    size_t i = run->script * 3 + (size_t)run->kind;

    if (vm->fn_ref == NULL && (vm->fn_ref = calloc(vm->nscripts * 3, sizeof(*vm->fn_ref))) == NULL)
        luaL_error(L, "not enough memory");
    if (vm->fn_ref[i] == 0) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, vm->envs_ref);
        lua_rawgeti(L, -1, (lua_Integer)run->script + 1);
        lua_pushstring(L, function_names[run->kind]);
        if (lua_rawget(L, -2) == LUA_TFUNCTION) {
            vm->fn_ref[i] = luaL_ref(L, LUA_REGISTRYINDEX);
        } else {
            lua_pop(L, 1);
            vm->fn_ref[i] = -1;
        }
        lua_pop(L, 2);
    }
    if (vm->fn_ref[i] < 0)
        luaL_error(L, "%s has no function %s", vm->scripts[run->script].path, function_names[run->kind]);
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->fn_ref[i]);
}

/* Takes an idle slot (making its coroutine when it has none, or not a clean one) or makes a new slot; the anchors
 * table is at a. A slot or coroutine is taken only once anchored: a failure here (memory) leaves everything as it was. */
static void take_slot(lua_State *L, hooks_run_t *run, int a)
{
    hooks_vm_t *vm = run->vm;

    if (vm->nidle != 0) {
        hooks_idle_t *idle = &vm->idle[vm->nidle - 1];
        if (idle->co == NULL || lua_status(idle->co) != LUA_OK || lua_gettop(idle->co) != 0) { /* none, or not clean */
            lua_State *co = new_owned_thread(L, vm);
            lua_rawseti(L, a, HOOKS_ANCHOR(idle->slot, 0));
            idle->co = co;
        }
        run->slot = idle->slot;
        run->co = idle->co;
        --vm->nidle;
        return;
    }
    if (vm->nanchors == vm->idle_cap) { /* room for every slot to be idle at once */
        size_t cap = vm->idle_cap != 0 ? vm->idle_cap * 2 : 16;
        hooks_idle_t *idle = realloc(vm->idle, cap * sizeof(*idle));
        if (idle == NULL)
            luaL_error(L, "not enough memory");
        vm->idle = idle;
        vm->idle_cap = cap;
    }
    for (int i = 2; i >= 1; --i) { /* the entries exist from the start */
        lua_pushboolean(L, 0);
        lua_rawseti(L, a, HOOKS_ANCHOR(vm->nanchors + 1, i));
    }
    lua_State *co = new_owned_thread(L, vm);
    lua_rawseti(L, a, HOOKS_ANCHOR(vm->nanchors + 1, 0));
    run->co = co; /* only once it is anchored (a failure before: no slot, no coroutine) */
    run->slot = ++vm->nanchors;
}

/* Protected: gives the run a slot and its coroutine, and pushes the function and its arguments on that coroutine
 * (run->nwait: how many arguments). A function's event is kept in entry 1 of the slot during the run's first step, so
 * that its lazy fields can be made (event.c). */
static int prepare_p(lua_State *L)
{
    hooks_run_t *run = lua_touserdata(L, 1);
    hooks_vm_t *vm = run->vm;
    int nargs;

    lua_settop(L, 1);
    luaL_checkstack(L, 10, NULL);
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->anchors_ref); /* 2 */
    take_slot(L, run, 2);
    push_function(L, run); /* 3 */
    switch (run->kind) {
    case HOOKS_RUN_FUNCTION:
        hooks_push_event(L, run->ev); /* 4 */
        lua_pushvalue(L, 4);
        lua_rawseti(L, 2, HOOKS_ANCHOR(run->slot, 1));
        run->held |= 1u << 1;
        run->ev_obj = lua_topointer(L, 4);
        hooks_push_context(L, vm->scripts[run->script].name, run->ev->request_id);
        nargs = 2;
        break;
    case HOOKS_RUN_REQUEST:
        hooks_push_req(L, run);
        nargs = 1;
        break;
    default:
        hooks_push_req(L, run);
        hooks_push_res(L, run);
        nargs = 2;
        break;
    }
    if (!lua_checkstack(run->co, nargs + 1))
        return luaL_error(L, "not enough memory");
    lua_xmove(L, run->co, nargs + 1);
    run->nwait = nargs;
    return 0;
}

/* What prepare_p does, for a hook when an idle slot has a clean coroutine and the function is known: nothing here can
 * raise an error (lua_checkstack reports a failure to grow the stack, which an idle coroutine's never needs), so it
 * needs no protection (most runs start this way). 0: not possible, nothing done. */
static int prepare_fast(hooks_run_t *run)
{
    hooks_vm_t *vm = run->vm;
    hooks_idle_t *idle;
    int ref, nargs = run->kind == HOOKS_RUN_RESPONSE ? 2 : 1;

    if (run->kind == HOOKS_RUN_FUNCTION || vm->nidle == 0 || vm->fn_ref == NULL ||
        (ref = vm->fn_ref[run->script * 3 + (size_t)run->kind]) <= 0)
        return 0;
    idle = &vm->idle[vm->nidle - 1];
    if (idle->co == NULL || lua_status(idle->co) != LUA_OK || lua_gettop(idle->co) != 0 || !lua_checkstack(idle->co, 3))
        return 0;
    run->slot = idle->slot;
    run->co = idle->co;
    --vm->nidle;
    lua_rawgeti(run->co, LUA_REGISTRYINDEX, ref);
    hooks_push_req(run->co, run);
    if (nargs == 2)
        hooks_push_res(run->co, run);
    run->nwait = nargs;
    return 1;
}

/* The coroutine ended (its results at its top, run->nwait of them): reads what the run gives. */
static void finish(lua_State *L, hooks_run_t *run)
{
    const hooks_script_t *s = &run->vm->scripts[run->script];
    int top = lua_gettop(L);

    luaL_checkstack(L, 10, NULL);
    if (run->call.expired) /* the script caught the breach and finished: it fails all the same */
        luaL_error(L, "the function ran longer than %I ms (the error was caught, but the budget is spent)",
                   (lua_Integer)run->vm->cpu_ms);
    if (run->kind == HOOKS_RUN_FUNCTION) {
        run->ev_obj = NULL;
        if (run->nwait == 0) {
            lua_pushnil(L);
        } else {
            lua_pop(run->co, run->nwait - 1); /* the first result is the answer */
            lua_xmove(run->co, L, 1);
        }
        hooks_read_answer(L, -1, s->path, run->alloc, run->alloc_data, &run->out->response);
        run->out->responded = 1;
    } else {
        hooks_read_req(L, run);
        if (run->kind == HOOKS_RUN_RESPONSE)
            hooks_read_res(L, run);
    }
    lua_settop(L, top);
}

/*
 * Protected: reads what the coroutine stopped for (run->status and the run->nwait values at its top, from step()): a
 * wait (run->next = RUN_WAITING), edge.respond's answer (RUN_RESPONDED; the coroutine stays suspended, settle() closes
 * it) or its end (RUN_DONE). A failure, the coroutine's (raised with its traceback by hooks_run_failed) or the
 * reading's, is raised. At its first wait a function's event is made whole and let go.
 */
static int after_p(lua_State *L)
{
    hooks_run_t *run = lua_touserdata(L, 1);
    lua_State *co = run->co;
    int nres = run->nwait, status = run->status;

    luaL_checkstack(L, 10, NULL);
    if (status == LUA_YIELD && nres >= 1) {
        void *marker = lua_touserdata(co, -nres);
        if ((marker == &fetch_marker || marker == &purge_marker || marker == &store_marker) && nres == 3) {
            run->spent_ns = hooks_now_ns(run->vm) - run->call.start_ns; /* the wait is not counted */
            run->wait = *(hooks_wait_t *)lua_touserdata(co, -2);
            run->next = RUN_WAITING;
            if (run->ev_obj != NULL) { /* made whole before its request data may go */
                lua_rawgeti(L, LUA_REGISTRYINDEX, run->vm->anchors_ref);
                lua_rawgeti(L, -1, HOOKS_ANCHOR(run->slot, 1));
                hooks_event_settle(L, run, lua_gettop(L));
                lua_pushnil(L);
                lua_rawseti(L, -3, HOOKS_ANCHOR(run->slot, 1));
                run->held &= ~(1u << 1);
            }
            return 0;
        }
        if (marker == &respond_marker && nres == 2) {
            run->next = RUN_RESPONDED;
            lua_xmove(co, L, 1);
            hooks_read_answer(L, -1, "edge.respond", run->alloc, run->alloc_data, &run->out->response);
            run->out->responded = 1;
            return 0;
        }
    }
    if (status != LUA_OK) {
        if (status == LUA_ERRMEM)
            run->call.out_of_memory = 1;
        hooks_run_failed(L, co, status, &run->call); /* raises */
    }
    finish(L, run);
    run->next = RUN_DONE;
    return 0;
}

/* The run is over (done or failed): frees it, and gives the memory back after a failure that left much garbage. */
static hooks_status_t end(hooks_run_t *run, hooks_status_t st)
{
    hooks_vm_t *vm = run->vm;
    int collect = st == HOOKS_FAILED && (run->call.out_of_memory || vm->used > vm->limit / 2);
    int last = vm->doomed && vm->nruns == 1; /* run_free frees the VM */

    if (st == HOOKS_FAILED) {
        memset(&run->out->response, 0, sizeof(run->out->response));
        run->out->responded = 0;
    }
    run_free(run);
    if (collect && !last)
        lua_gc(vm->L, LUA_GCCOLLECT);
    return st;
}

/* After a protected step (status from lua_pcall): waiting, or over. */
static hooks_status_t settle(hooks_run_t *run, int status)
{
    if (status == LUA_OK && run->next == RUN_WAITING)
        return HOOKS_WAITING;
    if (run->co != NULL && lua_status(run->co) == LUA_YIELD) {
        /* answered by edge.respond (or failed while reading its answer or resuming it): it ends here, and its
         * to-be-closed variables run, under its hook, with req still valid */
        lua_settop(run->co, 0);
        if (run->next == RUN_WAITING) /* failed before it ran again: its clock goes on from where the wait began */
            run->call.start_ns = hooks_now_ns(run->vm) - run->spent_ns;
        hooks_adopt(run->co, &run->call);
        lua_resetthread(run->co);
    }
    return end(run, status == LUA_OK ? HOOKS_DONE : HOOKS_FAILED);
}

/* Runs the coroutine (resumed with the run->nwait values at its top, its clock started) to its next stop. lua_resume
 * is protected itself; what the stop means is read by after_p, except for a hook that ended having changed nothing,
 * which is simply over. */
static hooks_status_t step(hooks_run_t *run)
{
    int nres;

    run->next = RUN_RUNNING;
    hooks_adopt(run->co, &run->call);
    run->status = lua_resume(run->co, run->vm->L, run->nwait, &nres);
    run->nwait = nres;
    if (run->status == LUA_OK && run->kind != HOOKS_RUN_FUNCTION && (run->set[0] | run->set[1]) == 0 && !run->call.expired) {
        run->next = RUN_DONE;
        return end(run, HOOKS_DONE); /* slot_release drops the results */
    }
    return settle(run, protect(run, after_p, run));
}

/* Resets an outcome member by member: GCC makes one memset of the whole struct a `rep stos`, whose start-up costs
 * several times what these few vector stores do (a tenth of a short run, as run_new's memset of a run struct did). */
static void outcome_reset(hooks_outcome_t *out)
{
    out->error = NULL;
    out->responded = 0;
    memset(&out->response, 0, sizeof(out->response));
    memset(&out->request, 0, sizeof(out->request));
    memset(&out->changes, 0, sizeof(out->changes));
    out->changes.ttl_s = -1;
    out->changes.max_ttl_s = -1;
}

static hooks_status_t start(hooks_run_t *run, hooks_run_t **out_run)
{
    hooks_vm_t *vm = run->vm;
    hooks_status_t st;

    outcome_reset(run->out);
    ++vm->nruns;
    *out_run = NULL;
    hooks_call_init(&run->call, vm, run->kind == HOOKS_RUN_FUNCTION ? run->ev->request_id : run->rq->request_id);
    run->call.run = run;
    if (run->script >= vm->nscripts) {
        char msg[96];
        int n = snprintf(msg, sizeof(msg), "no script %zu (the VM has %zu)", run->script, vm->nscripts);
        run->out->error = hooks_copy_out(msg, (size_t)n, run->alloc, run->alloc_data);
        return end(run, HOOKS_FAILED);
    }
    if (!prepare_fast(run) && protect(run, prepare_p, run) != LUA_OK)
        return end(run, HOOKS_FAILED);
    run->call.co = run->co;
    run->call.start_ns = hooks_now_ns(vm); /* the budget counts the script's time, not the making of its arguments */
    if ((st = step(run)) == HOOKS_WAITING)
        *out_run = run;
    return st;
}

static hooks_run_t *run_new(hooks_vm_t *vm, hooks_run_kind_t kind, size_t script, hooks_alloc_cb alloc, void *alloc_data,
                            hooks_outcome_t *out)
{
    hooks_run_t *run = vm->free_runs;

    if (run != NULL) { /* what a run reads before it sets it; its id stays, and its gen counts on (objects of its
                          earlier runs stay over); call is set by start(), wait when the run waits */
        vm->free_runs = run->next_free;
        run->next_free = NULL;
        run->ev = NULL;
        run->rq = NULL;
        run->res_in = NULL;
        run->co = NULL;
        run->slot = 0;
        run->held = 0;
        run->ev_obj = NULL;
        run->set[0] = run->set[1] = 0;
        run->status = LUA_OK;
        run->nwait = 0;
        run->next = RUN_RUNNING;
        run->spent_ns = 0;
    } else {
        if (vm->nmade == vm->runs_cap) {
            size_t cap = vm->runs_cap != 0 ? vm->runs_cap * 2 : 16;
            hooks_run_t **runs;
            if (cap > HOOKS_MAX_RUNS || (runs = realloc(vm->runs, cap * sizeof(*runs))) == NULL)
                return NULL;
            vm->runs = runs;
            vm->runs_cap = cap;
        }
        if ((run = calloc(1, sizeof(*run))) == NULL)
            return NULL;
        run->id = (uint32_t)vm->nmade;
        vm->runs[vm->nmade++] = run;
    }
    run->vm = vm;
    run->kind = kind;
    run->script = script;
    run->alloc = alloc;
    run->alloc_data = alloc_data;
    run->out = out;
    return run;
}

static hooks_status_t no_memory(hooks_outcome_t *out, hooks_alloc_cb alloc, void *alloc_data, hooks_run_t **run)
{
    memset(out, 0, sizeof(*out));
    out->error = hooks_copy_out("out of memory", 13, alloc, alloc_data);
    *run = NULL;
    return HOOKS_FAILED;
}

hooks_status_t hooks_start_function(hooks_vm_t *vm, size_t script, const hooks_event_t *ev, hooks_alloc_cb alloc, void *alloc_data,
                                    hooks_outcome_t *out, hooks_run_t **run)
{
    hooks_run_t *r = run_new(vm, HOOKS_RUN_FUNCTION, script, alloc, alloc_data, out);

    if (r == NULL)
        return no_memory(out, alloc, alloc_data, run);
    r->ev = ev;
    return start(r, run);
}

hooks_status_t hooks_start_request(hooks_vm_t *vm, size_t script, const hooks_request_t *rq, hooks_alloc_cb alloc, void *alloc_data,
                                   hooks_outcome_t *out, hooks_run_t **run)
{
    hooks_run_t *r = run_new(vm, HOOKS_RUN_REQUEST, script, alloc, alloc_data, out);

    if (r == NULL)
        return no_memory(out, alloc, alloc_data, run);
    r->rq = rq;
    return start(r, run);
}

hooks_status_t hooks_start_response(hooks_vm_t *vm, size_t script, const hooks_request_t *rq, const hooks_response_t *res,
                                    hooks_alloc_cb alloc, void *alloc_data, hooks_outcome_t *out, hooks_run_t **run)
{
    hooks_run_t *r = run_new(vm, HOOKS_RUN_RESPONSE, script, alloc, alloc_data, out);

    if (r == NULL)
        return no_memory(out, alloc, alloc_data, run);
    r->rq = rq;
    r->res_in = res;
    return start(r, run);
}

const hooks_wait_t *hooks_run_wait(const hooks_run_t *run)
{
    return &run->wait;
}

size_t hooks_vm_waiting(const hooks_vm_t *vm)
{
    return vm->nruns;
}

/* What a resume pushes: set by the hooks_resume_* below, read by push_p. */
typedef struct resume_values {
    hooks_run_t *run;
    const hooks_fetch_result_t *fetch;
    long purged;
    const char *error;
    int nvalues;
    int store; /* a store answer: status, body[0..len) */
    int status;
    const char *body;
    size_t len;
} resume_values_t;

/* Protected: builds the values edge.fetch / edge.purge / edge.store.* return, then moves them to the coroutine. */
static int push_p(lua_State *L)
{
    resume_values_t *rv = lua_touserdata(L, 1);
    hooks_run_t *run = rv->run;

    lua_settop(L, 1);
    luaL_checkstack(L, 10, NULL);
    if (rv->store) {
        rv->nvalues = hooks_store_push_result(L, run->wait.store.op, rv->status, rv->body, rv->len);
    } else if (rv->fetch != NULL && rv->fetch->status != 0) {
        const hooks_fetch_result_t *r = rv->fetch;
        lua_createtable(L, 0, 3);
        lua_pushinteger(L, r->status);
        lua_setfield(L, 2, "status");
        lua_createtable(L, 0, (int)(r->nheaders > 64 ? 64 : r->nheaders));
        for (size_t i = 0; i != r->nheaders; ++i) { /* a repeated name: its values joined with ", " */
            lua_pushlstring(L, r->headers[i].name, r->headers[i].name_len);
            lua_pushvalue(L, -1);
            if (lua_rawget(L, 3) == LUA_TSTRING) {
                lua_pushliteral(L, ", ");
                lua_pushlstring(L, r->headers[i].value, r->headers[i].value_len);
                lua_concat(L, 3);
            } else {
                lua_pop(L, 1);
                lua_pushlstring(L, r->headers[i].value, r->headers[i].value_len);
            }
            lua_rawset(L, 3);
        }
        lua_setfield(L, 2, "headers");
        lua_pushlstring(L, r->body != NULL ? r->body : "", r->body != NULL ? r->body_len : 0);
        lua_setfield(L, 2, "body");
        rv->nvalues = 1;
    } else if (rv->fetch == NULL && rv->purged >= 0) {
        lua_pushinteger(L, rv->purged);
        rv->nvalues = 1;
    } else {
        lua_pushnil(L);
        lua_pushstring(L, rv->error != NULL ? rv->error : "failed");
        rv->nvalues = 2;
    }
    lua_settop(run->co, lua_gettop(run->co) - run->nwait); /* the yielded values (and the anchor of the wait) */
    run->nwait = 0;
    if (!lua_checkstack(run->co, rv->nvalues))
        return luaL_error(L, "not enough memory");
    lua_xmove(L, run->co, rv->nvalues);
    run->nwait = rv->nvalues;
    return 0;
}

static hooks_status_t resume(resume_values_t *rv)
{
    hooks_run_t *run = rv->run;
    int status = protect(run, push_p, rv);

    if (status != LUA_OK)
        return settle(run, status);
    run->call.start_ns = hooks_now_ns(run->vm) - run->spent_ns; /* the wait was not counted */
    return step(run);
}

hooks_status_t hooks_resume_fetch(hooks_run_t *run, const hooks_fetch_result_t *r)
{
    resume_values_t rv = {.run = run, .fetch = r, .error = r->status == 0 ? (r->error != NULL ? r->error : "failed") : NULL};
    return resume(&rv);
}

hooks_status_t hooks_resume_purge(hooks_run_t *run, long purged, const char *error)
{
    resume_values_t rv = {.run = run, .purged = purged, .error = error};
    return resume(&rv);
}

hooks_status_t hooks_resume_store(hooks_run_t *run, int status, const char *body, size_t len)
{
    resume_values_t rv = {
        .run = run, .store = 1, .status = status, .body = body != NULL ? body : "", .len = body != NULL ? len : 0};
    return resume(&rv);
}

void hooks_run_cancel(hooks_run_t *run)
{
    lua_settop(run->co, 0);
    run->call.start_ns = hooks_now_ns(run->vm) - run->spent_ns;
    hooks_adopt(run->co, &run->call);
    lua_resetthread(run->co); /* its to-be-closed variables run, under its hook */
    run_free(run);
}

/* ---- the synchronous form ---- */

int hooks_call_function(hooks_vm_t *vm, size_t script, const hooks_event_t *ev, hooks_alloc_cb alloc, void *alloc_data,
                        hooks_response_t *res, char **err)
{
    hooks_outcome_t out;
    hooks_run_t *run;
    hooks_status_t st = hooks_start_function(vm, script, ev, alloc, alloc_data, &out, &run);

    if (st == HOOKS_WAITING) {
        hooks_run_cancel(run);
        static const char msg[] = "yielding is not supported here (edge.fetch, edge.purge and edge.store need a request)";
        out.error = hooks_copy_out(msg, sizeof(msg) - 1, alloc, alloc_data);
        st = HOOKS_FAILED;
    }
    *res = st == HOOKS_DONE ? out.response : (hooks_response_t){0};
    *err = st == HOOKS_DONE ? NULL : out.error;
    return st == HOOKS_DONE ? 0 : -1;
}
