/*
 * hooks/vm.c: the Lua VM of a worker thread: the counting allocator, the CPU budget, the loading of scripts, and the
 * invocations, each in its own coroutine under a CPU budget. The sandbox the scripts run in is built by sandbox.c.
 *
 * Memory: lua_newstate() gets an allocator that counts the bytes it holds and refuses (returns NULL) any growth past
 * the VM's limit; shrinking never fails, as Lua requires. Lua then runs an emergency collection and, if that is not
 * enough, raises "not enough memory" inside the code that asked, so only that invocation fails. While the message of
 * a failed run is made (a traceback needs a little memory), HOOKS_ERROR_RESERVE more bytes are allowed. After a
 * memory failure (or any failure that leaves the VM over half its limit) the VM collects in full, so the next
 * invocation starts with the memory back.
 *
 * CPU: every coroutine that runs script code has a count hook (every HOOKS_COUNT_STEP instructions) that compares the
 * time the invocation has run with its budget. The clock is CLOCK_MONOTONIC_COARSE (read in a few ns, where
 * CLOCK_MONOTONIC costs ~25 ns, once per invocation at least) when the budget is at least 10 of its ticks (typically
 * 4 ms: an error under a tenth of the budget), else CLOCK_MONOTONIC. Past the budget the hook raises "the function ran
 * longer than N ms" and from then on fires on every instruction: a script that catches the error (pcall, xpcall,
 * coroutine.resume) raises it again at its next instruction, so the error always reaches the top; an invocation that
 * caught it and still finished fails all the same. The invocation (hooks_call_t) is found through the coroutine's
 * extra space. Coroutines made by scripts go through the sandbox's coroutine.create/wrap/resume/close, which
 * hooks_adopt() the coroutine every time it runs: it gets the hook and is pointed at the current invocation (a
 * coroutine kept in a module table from an earlier request must not carry that request's state, which lived on that
 * call's C stack). What the hook cannot see (script code run while hooks are disabled, time inside one C function),
 * and what the sandbox does about it, is told at the top of sandbox.c.
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
#include "hooks/internal.h"

/* ---- the allocator ---- */

/*
 * Small blocks (up to HOOKS_SMALL_MAX bytes) come in classes HOOKS_SMALL_STEP bytes apart, each malloc'ed at its class's
 * full size, and freed ones are kept per class for the next allocation of the class, up to 1/64 of the VM's
 * memory limit in all (vm->kept bytes; not counted in vm->used, so they never make a script fail).
 * A run allocates a few small objects (its req, strings) and the collector frees them by the thousand in a sweep:
 * glibc's per-thread cache holds 7 blocks of a size, so most of them went through its slower paths. Under
 * AddressSanitizer nothing is kept (a use after free must reach free() to be seen).
 */
#if defined(__SANITIZE_ADDRESS__)
#define HOOKS_NO_SMALL_BLOCKS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HOOKS_NO_SMALL_BLOCKS 1
#endif
#endif
static size_t small_class(size_t n)
{
    return n <= HOOKS_SMALL_STEP + 8 ? 1 : (n + 7) / HOOKS_SMALL_STEP;
}

/* What is really allocated for n bytes: a small one's class size, 16c + 8 (glibc's chunks hold a multiple of 16 plus 8
 * bytes, so a class is a chunk size: 24, 40, 56...). */
static size_t block_size(size_t n)
{
    return n <= HOOKS_SMALL_MAX ? small_class(n) * HOOKS_SMALL_STEP + 8 : n;
}

static void block_free(hooks_vm_t *vm, void *p, size_t n)
{
#ifndef HOOKS_NO_SMALL_BLOCKS
    if (n <= HOOKS_SMALL_MAX && vm->kept < vm->limit / 64) {
        size_t c = small_class(n);
        memcpy(p, &vm->small[c], sizeof(void *));
        vm->small[c] = p;
        vm->kept += block_size(n);
        return;
    }
#else
    (void)vm;
    (void)n;
#endif
    free(p);
}

static void *block_alloc(hooks_vm_t *vm, size_t n)
{
    if (n <= HOOKS_SMALL_MAX) {
        size_t c = small_class(n);
        void *p = vm->small[c];
        if (p != NULL) {
            memcpy(&vm->small[c], p, sizeof(void *));
            vm->kept -= block_size(n);
            return p;
        }
    }
    return malloc(block_size(n));
}

static void *vm_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    hooks_vm_t *vm = ud;
    size_t old = ptr != NULL ? osize : 0, cap = vm->limit + vm->reserve;
    void *p;

    if (nsize == 0) {
        if (ptr != NULL)
            block_free(vm, ptr, old);
        vm->used -= old;
        return NULL;
    }
    if (nsize > old && (vm->used > cap || nsize - old > cap - vm->used))
        return NULL;
    if (ptr == NULL) {
        p = block_alloc(vm, nsize);
    } else if ((nsize <= old && old <= HOOKS_SMALL_MAX) || block_size(old) == block_size(nsize)) {
        p = ptr; /* a small block shrinks in place: it stays at least its new class's size */
    } else if (old <= HOOKS_SMALL_MAX && nsize <= HOOKS_SMALL_MAX) {
        if ((p = block_alloc(vm, nsize)) != NULL) { /* grows into a larger class */
            memcpy(p, ptr, old);
            block_free(vm, ptr, old);
        }
    } else if ((p = realloc(ptr, block_size(nsize))) == NULL && nsize <= old) {
        p = ptr; /* a shrink must not fail (Lua relies on it) */
    }
    if (p == NULL)
        return NULL; /* ptr is untouched, as Lua wants */
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

uint64_t hooks_now_ns(const hooks_vm_t *vm)
{
    struct timespec ts;
    clock_gettime(vm->clock, &ts);
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
        if (hooks_now_ns(call->vm) - call->start_ns <= call->budget_ns)
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
void hooks_adopt(lua_State *co, hooks_call_t *call)
{
    int count = call != NULL && call->expired ? 1 : HOOKS_COUNT_STEP;

    memcpy(lua_getextraspace(co), &call, sizeof(call));
    if (lua_gethook(co) != count_hook || lua_gethookcount(co) != count)
        lua_sethook(co, count_hook, LUA_MASKCOUNT, count);
}

/* ---- running code in a coroutine ---- */

/*
 * Raises, on L, the error of co's failed run (status from lua_resume) with co's traceback, after closing co's
 * to-be-closed variables.
 */
int hooks_run_failed(lua_State *L, lua_State *co, int status, hooks_call_t *call)
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
 * raised on L (hooks_run_failed()).
 */
static void run(lua_State *L, hooks_call_t *call, int nargs)
{
    lua_State *co = lua_newthread(L);
    int status, nres;

    lua_insert(L, -(nargs + 2));
    hooks_adopt(co, call);
    lua_xmove(L, co, nargs + 1);
    status = lua_resume(co, L, nargs, &nres);
    if (status != LUA_OK)
        hooks_run_failed(L, co, status, call);
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
    hooks_new_env(L, job->vm); /* 3: G */
    lua_pushvalue(L, 3);
    lua_setupvalue(L, 2, 1);
    lua_pushvalue(L, 2);
    run(L, job->call, 0);
    hooks_lock_env(L, job->vm, 3); /* V: the script's globals, where invocations look for handler */
    lua_rawgeti(L, LUA_REGISTRYINDEX, job->vm->envs_ref);
    lua_insert(L, -2);
    lua_rawseti(L, -2, (lua_Integer)job->id + 1);
    return 0;
}

/* ---- the API ---- */

void hooks_call_init(hooks_call_t *call, hooks_vm_t *vm, const char *request_id)
{
    memset(call, 0, sizeof(*call));
    call->vm = vm;
    call->request_id = request_id;
    call->budget_ns = vm->cpu_ms > UINT64_MAX / 1000000u ? UINT64_MAX : vm->cpu_ms * 1000000u;
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
    vm->clock = CLOCK_MONOTONIC;
#ifdef CLOCK_MONOTONIC_COARSE
    struct timespec tick;
    if (clock_getres(CLOCK_MONOTONIC_COARSE, &tick) == 0 && tick.tv_sec == 0 &&
        ((uint64_t)tick.tv_nsec * 10 + 999999u) / 1000000u <= vm->cpu_ms)
        vm->clock = CLOCK_MONOTONIC_COARSE;
#endif
    vm->log = opts->log;
    vm->log_data = opts->log_data;
    vm->vars = opts->vars;
    vm->nvars = opts->nvars;
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

    lua_pushcfunction(L, hooks_setup_p);
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

        hooks_call_init(&call, vm, NULL);
        call.start_ns = hooks_now_ns(vm);
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
    vm->vars = NULL;
    vm->nvars = 0;
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
    if (vm->nruns != 0) { /* runs wait: the last one to end frees the VM */
        vm->doomed = 1;
        return;
    }
    if (vm->L != NULL)
        lua_close(vm->L);
    for (size_t c = 0; c != sizeof(vm->small) / sizeof(vm->small[0]); ++c)
        while (vm->small[c] != NULL) {
            void *p = vm->small[c];
            memcpy(&vm->small[c], p, sizeof(void *));
            free(p);
        }
    free(vm->idle);
    for (size_t i = 0; i != vm->nmade; ++i) /* no run is alive: every one is on vm->free_runs */
        free(vm->runs[i]);
    free(vm->runs);
    free(vm->fn_ref);
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

char *hooks_copy_out(const char *s, size_t len, hooks_alloc_cb alloc, void *alloc_data)
{
    char *p = alloc(len + 1, alloc_data);

    if (p != NULL) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

int hooks_vm_defines(hooks_vm_t *vm, size_t script, const char *name)
{
    lua_State *L = vm->L;
    int top = lua_gettop(L), t;

    if (script >= vm->nscripts || !lua_checkstack(L, 4))
        return 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->envs_ref);
    lua_rawgeti(L, -1, (lua_Integer)script + 1);
    t = lua_type(L, -1) == LUA_TTABLE ? (lua_pushstring(L, name), lua_rawget(L, -2)) : LUA_TNIL;
    lua_settop(L, top);
    return t == LUA_TFUNCTION;
}
