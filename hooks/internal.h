/*
 * hooks/internal.h: what the files of hooks/ share (vm.c: the VM, scripts and invocations; sandbox.c: the sandbox;
 * edge.c: the `edge` table; json.c: JSON and UTF-8; store.c: edge.store; event.c: the event, context and answer).
 * Never included outside hooks/.
 *
 * Every lua_State of a VM (the main thread and every coroutine) finds its VM through the allocator's userdata
 * (lua_getallocf), and the invocation it runs for through its extra space (LUA_EXTRASPACE: one pointer to a
 * hooks_call_t, NULL on the main thread). A coroutine is re-pointed at the current invocation each time it is
 * resumed, so a coroutine kept across requests never runs with a stale pointer.
 */
#ifndef EDGEPROXY_HOOKS_INTERNAL_H
#define EDGEPROXY_HOOKS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <lua.h>
#include <lauxlib.h>
#include "hooks/hooks.h"

#define HOOKS_COUNT_STEP 1000              /* instructions between two looks at the clock */
#define HOOKS_JSON_MAX_DEPTH 64            /* nesting of JSON arrays and objects, both ways */
#define HOOKS_ERR_MAX 4096                 /* bytes of an error message kept before the traceback */
#define HOOKS_LOG_MAX 4096                 /* bytes of an edge.log line */
#define HOOKS_ERROR_RESERVE (256u * 1024u) /* allowed above the limit while a memory error's message is made */

struct hooks_run;

/* One invocation (or one script's top level at load time): its clock and its request. */
typedef struct hooks_call {
    hooks_vm_t *vm;
    struct hooks_run *run;  /* the run, for edge.fetch and the req/res objects; NULL at load time */
    lua_State *co;          /* the run's own coroutine: the only one that may wait */
    const char *request_id; /* NULL at load time */
    uint64_t start_ns;      /* by vm->clock; moved on by the time spent waiting, so that waiting is not counted */
    uint64_t budget_ns;
    int expired;       /* the budget is spent: the count hook fires on every instruction and raises */
    int out_of_memory; /* the run failed for memory: collect in full afterwards */
} hooks_call_t;

typedef struct hooks_script {
    char *path;
    char *name; /* the base name without .lua: context.functionName */
} hooks_script_t;

#define HOOKS_SMALL_STEP 16u /* vm.c: the allocator's classes of small blocks */
#define HOOKS_SMALL_MAX 256u /* the largest small block */

struct hooks_vm {
    /* first, together: what every run reads (between two requests the rest of the server evicts the VM's lines) */
    lua_State *L;
    struct hooks_run *free_runs; /* run.c: runs over, kept for the next ones (linked by their next_free) */
    struct hooks_idle *idle;     /* slots free for a run, with their coroutine when it is clean (malloc'ed) */
    size_t nidle;
    int *fn_ref;             /* run.c: [script * 3 + kind]: a registry ref to the function; 0 unknown, -1 none */
    struct hooks_run **runs; /* run.c: every run struct made, by its id (malloc'ed; request.c finds runs here) */
    size_t nmade;
    size_t nruns; /* runs alive (waiting ones, outside a hooks_start_* / hooks_resume_* call) */
    uint64_t cpu_ms;
    clockid_t clock; /* what hooks_now_ns reads (vm.c: coarse when the budget is long enough) */
    int doomed;      /* hooks_vm_free was called while runs waited: the last one frees the VM */
    size_t nscripts;
    hooks_script_t *scripts;
    size_t used, limit;    /* bytes Lua holds (as it asked for them), and the most it may */
    const char *names[24]; /* request.c: its field names, interned strings kept alive by its metamethods */
    /* the rest */
    void *small[HOOKS_SMALL_MAX / HOOKS_SMALL_STEP + 1]; /* by class: freed small blocks, linked through their first bytes */
    size_t kept;                                         /* bytes in small[] */
    size_t reserve;                                      /* HOOKS_ERROR_RESERVE while a failure's message is made, else 0 */
    char *dir;                                           /* NULL: require is refused */
    int envs_ref;     /* registry: {[id + 1] = the globals of script id (the V of hooks_lock_env())} */
    int loaded_ref;   /* registry: require()'s cache, module name -> value */
    int anchors_ref;  /* registry: by slot, the entries HOOKS_ANCHOR(slot, 0..2) (run.c) */
    int event_mt_ref; /* registry: the metatable of a function's event (event.c) */
    size_t runs_cap;
    int owned_ref; /* registry: {[co] = true} for the runs' own coroutines (weak keys): scripts may not resume them */
    size_t nanchors;
    size_t idle_cap;
    int base_ref; /* registry: the sandbox base table B (globals every script reads through __index) */
    void (*log)(void *data, const char *request_id, const char *line, size_t len);
    void *log_data;
    const hooks_kv_t *vars; /* the options' stage variables, during hooks_vm_new only (edge.vars copies them) */
    size_t nvars;
};

/* A slot free for the next run, and its coroutine (NULL: make one), kept alive by the anchors table. */
typedef struct hooks_idle {
    size_t slot;
    lua_State *co;
} hooks_idle_t;

typedef enum hooks_run_kind { HOOKS_RUN_FUNCTION, HOOKS_RUN_REQUEST, HOOKS_RUN_RESPONSE } hooks_run_kind_t;

/* The entries of a slot in the VM's anchors table (run.c): 0 its coroutine; 1 the values table of the run's req (a
 * function's event during its first step), 2 that of its res (request.c). Entries hold nil or false when unused. */
#define HOOKS_ANCHOR(slot, i) ((lua_Integer)(slot)*3 - 2 + (i))
#define HOOKS_MAX_RUNS (1u << 20) /* run structs a VM makes at most (request.c: an id in a req or res handle) */

/* A run (hooks.h): one invocation that may wait. malloc'ed; when it is over or cancelled it goes to the VM's free list
 * (vm->free_runs) for a later run, and is freed with the VM only: req and res objects name it by id (request.c). */
typedef struct hooks_run {
    struct hooks_run *next_free; /* on vm->free_runs */
    hooks_vm_t *vm;
    hooks_run_kind_t kind;
    size_t script;
    const hooks_event_t *ev;        /* HOOKS_RUN_FUNCTION; NULL from its first wait on (see hooks_event_settle) */
    const hooks_request_t *rq;      /* HOOKS_RUN_REQUEST, HOOKS_RUN_RESPONSE */
    const hooks_response_t *res_in; /* HOOKS_RUN_RESPONSE */
    hooks_alloc_cb alloc;
    void *alloc_data;
    hooks_outcome_t *out;
    hooks_call_t call;
    lua_State *co;
    size_t slot;        /* its entries in the VM's anchors table (HOOKS_ANCHOR); 0: none */
    unsigned held;      /* bit i: entry i (1, 2) of its slot may hold something (cleared when the slot is given back) */
    const void *ev_obj; /* a function's event table, during the run's first step (event.c); NULL after */
    uint32_t id;        /* its index in vm->runs */
    uint64_t gen;       /* runs this struct has ended: a req or res object of another generation is over */
    unsigned set[2];    /* request.c: what the script wrote to (or took a table of) req [0] and res [1] */
    int status;         /* what the last lua_resume of co gave */
    int nwait;          /* values co yielded and still holds (or, before it runs, the values to resume it with) */
    enum { RUN_RUNNING, RUN_WAITING, RUN_RESPONDED, RUN_DONE } next; /* where after_p() (run.c) left it */
    uint64_t spent_ns;                                               /* CPU time of the run before its current wait */
    hooks_wait_t wait;                                               /* last: only a run that waits touches it */
} hooks_run_t;

/* ---- vm.c ---- */
/* The VM's clock for CPU budgets (vm->clock), in ns. */
uint64_t hooks_now_ns(const hooks_vm_t *vm);
hooks_vm_t *hooks_vm_of(lua_State *L);
/* The invocation L runs for (NULL on the main thread). */
hooks_call_t *hooks_current_call(lua_State *L);
/* Points co at call (NULL: none) and gives it the count hook, unless it already has the right one. */
void hooks_adopt(lua_State *co, hooks_call_t *call);
/* A call with its budget (the caller starts its clock: call->start_ns = hooks_now_ns(vm), when the script starts). */
void hooks_call_init(hooks_call_t *call, hooks_vm_t *vm, const char *request_id);
/* Raises, on L, the error of co's failed run (status from lua_resume) with co's traceback. */
int hooks_run_failed(lua_State *L, lua_State *co, int status, hooks_call_t *call);
/* Copies s[0..len) with alloc, NUL-terminated; NULL when alloc fails. */
char *hooks_copy_out(const char *s, size_t len, hooks_alloc_cb alloc, void *alloc_data);

/* ---- run.c ---- */
/* edge.fetch, edge.purge and edge.respond (they suspend the run's coroutine). */
int hooks_edge_fetch(lua_State *L);
int hooks_edge_purge(lua_State *L);
int hooks_edge_respond(lua_State *L);
/* Suspends the run (edge.store.*, named `what` in errors) for the store operation op (a static string) whose request
 * text is the string at the top of the stack. */
int hooks_wait_store(lua_State *L, const char *what, const char *op);

/* ---- request.c: the req and res objects of hooks ---- */
/* Protected: gives light userdata the metatable of req and res (once vm->anchors_ref exists). */
void hooks_request_open(lua_State *L, hooks_vm_t *vm);
/* Pushes the req of run, over run->rq (writable in on_request only), or its res, over run->res_in. Never allocates. */
void hooks_push_req(lua_State *L, const hooks_run_t *run);
void hooks_push_res(lua_State *L, const hooks_run_t *run);
/* The run is over: reads what its req or res was changed to into run->out (run->set says what to read). Raw accesses
 * only; on the main thread, protected. An object is over with its run (run_free moves the run struct to its next
 * generation): using it afterwards raises an error. */
void hooks_read_req(lua_State *L, hooks_run_t *run);
void hooks_read_res(lua_State *L, hooks_run_t *run);

/* ---- sandbox.c ---- */
/* Replaces the table at the top of the stack with a read-only view of it (reads go through, writes raise an error
 * naming `name`, getmetatable gives false). */
void hooks_readonly(lua_State *L, const char *name);
/* Pushes a new global table G for a script or module: reads fall through to the sandbox base, _G is G. */
void hooks_new_env(lua_State *L, hooks_vm_t *vm);
/* Locks the global table at idx once its top level has run (every assignment raises); pushes its entries' table V. */
void hooks_lock_env(lua_State *L, hooks_vm_t *vm, int idx);
/* Protected (the VM as light userdata at 1): opens the libraries, builds the sandbox base B and the registry tables. */
int hooks_setup_p(lua_State *L);

/* ---- edge.c ---- */
/* Pushes the (read-only) `edge` table. */
void hooks_edge_open(lua_State *L, hooks_vm_t *vm);
/* edge.log(...), also the sandbox's print. */
int hooks_edge_log(lua_State *L);
/* Pushes the base64 (RFC 4648, with padding) of s[0..len). */
void hooks_push_base64(lua_State *L, const char *s, size_t len);
/* Decodes base64 (the standard alphabet, padded or not) into out, which has room for hooks_base64_max(len) bytes:
 * the length decoded, or -1 when in[0..len) is not base64. */
long hooks_base64_decode(const char *in, size_t len, unsigned char *out);
size_t hooks_base64_max(size_t len);

/* ---- json.c ---- */
/* Pushes the (read-only) `edge.json` table. */
void hooks_json_open(lua_State *L);
/* Pushes the null value (edge.json.null, edge.null); hooks_is_null tells whether the value at idx is it. */
void hooks_push_null(lua_State *L);
int hooks_is_null(lua_State *L, int idx);
/* JSON text growing in a userdata kept at a fixed stack slot (pushed by hooks_jb_init, where it stays until the caller
 * pops it): an error anywhere leaves only garbage, never a leak. `what` prefixes its error messages. */
typedef struct hooks_jbuf {
    lua_State *L;
    const char *what;
    int slot;
    char *p;
    size_t len, cap;
} hooks_jbuf_t;
void hooks_jb_init(hooks_jbuf_t *b, lua_State *L, const char *what);
/* Room for n more bytes at b->p + b->len (the caller moves b->len on). */
char *hooks_jb_room(hooks_jbuf_t *b, size_t n);
void hooks_jb_add(hooks_jbuf_t *b, const char *s, size_t n);
void hooks_jb_addc(hooks_jbuf_t *b, char c);
/* Adds s[0..len) as a JSON string; raises "<what>: a string is not valid UTF-8" when it is not. */
void hooks_jb_string(hooks_jbuf_t *b, const char *s, size_t len);
/* The shortest of v's %.15g..%.17g texts that reads back as v (v finite); its length. */
int hooks_format_double(char *buf, size_t size, double v);
/* 1 if s[0..len) is well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF). */
int hooks_utf8_valid(const char *s, size_t len);
/* Pushes the Lua value of the JSON text s[0..len); raises an error starting with `what` when it is not JSON. */
void hooks_json_decode(lua_State *L, const char *s, size_t len, const char *what);
/* The same, with arrays and objects nested at most max_depth deep (hooks_json_decode: HOOKS_JSON_MAX_DEPTH). */
void hooks_json_decode_depth(lua_State *L, const char *s, size_t len, const char *what, int max_depth);

/* ---- store.c: edge.store ---- */
/* Pushes the (read-only) `edge.store` table; registers the metatables of sets, binary values and lists. */
void hooks_store_open(lua_State *L);
/* Whether the value at idx is an edge.store.list (edge.json.encode writes an empty one as []). */
int hooks_store_is_list(lua_State *L, int idx);
/* Protected, on the VM's main thread: pushes what the edge.store call that waited for `op` returns, from the store's
 * answer (status, body[0..len)); returns how many values (1: the result; 2: nil and the error table). */
int hooks_store_push_result(lua_State *L, const char *op, int status, const char *body, size_t len);

/* ---- event.c ---- */
/* RFC 9110 token characters (header names, methods). */
int hooks_is_tchar(unsigned char c);
/* 1 if s[0..len) has a control character other than HTAB (CR, LF, NUL, DEL...): no header value may. */
int hooks_has_ctl(const char *s, size_t len);
/* Pushes s[0..len) lower-cased (ASCII). */
void hooks_push_lower(lua_State *L, const char *s, size_t len);
void hooks_push_event(lua_State *L, const hooks_event_t *ev);
/* Makes the event's metatable (at VM creation). */
void hooks_event_open(lua_State *L, hooks_vm_t *vm);
/* Makes the lazy fields of the event at idx, if it is one (edge.json.encode calls it on every table it encodes). */
void hooks_event_materialize(lua_State *L, int idx);
/* A function run waits for the first time: makes the lazy fields of its event (at idx) that are still missing, and lets
 * the event go (run->ev and run->ev_obj are NULL after: the hooks_event_t may be gone after the wait). On the main
 * thread, protected. */
void hooks_event_settle(lua_State *L, hooks_run_t *run, int idx);
/* Pushes the context table of an invocation of script `name`. */
void hooks_push_context(lua_State *L, const char *name, const char *request_id);
/* Reads the answer at idx into *res, copying every string with alloc; raises an error (prefixed with file) when the
 * answer is not a valid one. Uses raw accesses only: no metamethod of the script runs here, on the main thread. */
void hooks_read_answer(lua_State *L, int idx, const char *file, hooks_alloc_cb alloc, void *alloc_data, hooks_response_t *res);

#endif
