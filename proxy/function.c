/*
 * function: routes whose origin is a Lua function (origin: { function: FILE }). The request becomes an API Gateway
 * proxy-integration event, the thread's Lua VM (hooks/) runs handler(event, context), and its answer is the response.
 *
 * Boot: every Lua file of the conf (functions, and the routes' request and response hooks) is a script of the VMs
 * (px_functions_init numbers them and checks that each compiles and defines what its routes call, so a bad file stops
 * the start with the conf's file:line and the script's). Each worker thread makes its own VM on its loop
 * (px_functions_init_thread), from texts read once (px_lua_texts_t). SIGHUP reads and compiles the files again on the
 * main thread; if all of them load, the new texts replace the old (under lua_mu), a generation counter moves on, and
 * each worker makes a new VM from them before its next run (px_functions_refresh); runs still waiting (edge.fetch)
 * keep the old VM, which is freed after the last of them. If a file does not load, the error is logged and the old
 * scripts keep running. Modules loaded with require() are read from disk whenever a VM is made.
 *
 * A function may wait (edge.fetch, edge.purge): a request's run allocates from the request's pool and gets a driver
 * (lua.c) only when it waits; a cache fill's run has its own driver and memory, since the fill outlives its first
 * request.
 *
 * Failures: an error or a limit breach in the function answers 502 {"message": "The function failed", ...}; the
 * error with its Lua traceback goes to the error log with the request id. The worker and its VM carry on.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include "hooks/hooks.h"
#include "proxy/internal.h"

static void on_log(void *data, const char *request_id, const char *line, size_t len)
{
    (void)data;
    fprintf(stderr, "edgeproxy: lua%s%s%s: %.*s\n", request_id != NULL ? " [" : "", request_id != NULL ? request_id : "",
            request_id != NULL ? "]" : "", (int)len, line);
}

/* The function files' texts, read once per generation (boot, each SIGHUP): every VM of a generation compiles the same
 * texts, even if a file changes on disk while the threads make their VMs. */
typedef struct px_lua_texts {
    size_t n;
    char **texts;
    size_t *lens;
} px_lua_texts_t;

static void texts_free(px_lua_texts_t *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i != t->n; ++i)
        free(t->texts[i]);
    free(t->texts);
    free(t->lens);
    free(t);
}

static px_lua_texts_t *texts_read(const char **files, size_t n, char *err, size_t errlen)
{
    px_lua_texts_t *t = h2o_mem_alloc(sizeof(*t));

    t->n = 0;
    t->texts = h2o_mem_alloc(sizeof(*t->texts) * (n + 1));
    t->lens = h2o_mem_alloc(sizeof(*t->lens) * (n + 1));
    for (; t->n != n; ++t->n) {
        FILE *fp = fopen(files[t->n], "rb");
        char *buf = NULL;
        size_t len = 0, cap = 0, got;
        if (fp == NULL) {
            snprintf(err, errlen, "%s: %s", files[t->n], strerror(errno));
            texts_free(t);
            return NULL;
        }
        do {
            if (len == cap)
                buf = h2o_mem_realloc(buf, cap = cap ? cap * 2 : 4096);
            len += got = fread(buf + len, 1, cap - len, fp);
        } while (got != 0);
        fclose(fp);
        t->texts[t->n] = buf;
        t->lens[t->n] = len;
    }
    return t;
}

/* The conf's stage variables as name/value pairs (malloc'ed; edge.vars and the event's stageVariables). */
static hooks_kv_t *vars_of(const conf_t *conf)
{
    hooks_kv_t *vars = h2o_mem_alloc(sizeof(*vars) * (conf->lua.nvariables + 1));

    for (size_t i = 0; i != conf->lua.nvariables; ++i)
        vars[i] = (hooks_kv_t){conf->lua.variables[i].name, strlen(conf->lua.variables[i].name), conf->lua.variables[i].value,
                               strlen(conf->lua.variables[i].value)};
    return vars;
}

static void options_of(const conf_t *conf, const char **files, const px_lua_texts_t *texts, const hooks_kv_t *vars,
                       hooks_options_t *o)
{
    *o = (hooks_options_t){.dir = conf->lua.dir,
                           .vars = vars,
                           .nvars = conf->lua.nvariables,
                           .cpu_ms = conf->lua.cpu_limit_ms,
                           .memory = (size_t)conf->lua.memory_limit,
                           .files = files,
                           .nfiles = texts->n,
                           .sources = (const char *const *)texts->texts,
                           .source_lens = texts->lens,
                           .log = on_log};
}

/* The index of file in files[0..*n), added when new. */
static size_t file_index(const char **files, size_t *n, const char *file)
{
    size_t f;
    for (f = 0; f != *n && strcmp(files[f], file) != 0; ++f)
        ;
    if (f == *n)
        files[(*n)++] = file;
    return f;
}

/* The message of a file that does not load, naming the route that uses it. */
static void route_error(const conf_t *conf, const char *why, char *err, size_t errlen)
{
    for (size_t h = 0; h != conf->nhosts; ++h) {
        for (size_t i = 0; i != conf->hosts[h].nroutes; ++i) {
            const conf_route_t *r = conf->hosts[h].routes + i;
            if (r->origin.kind == CONF_ORIGIN_FUNCTION && strstr(why, r->origin.function_file) != NULL) {
                snprintf(err, errlen, "%s:%u: route %s: origin.function: %s", conf->file, r->origin.function_line, r->path, why);
                return;
            }
            if (r->hooks.request_file != NULL && strstr(why, r->hooks.request_file) != NULL) {
                snprintf(err, errlen, "%s:%u: route %s: hooks.request: %s", conf->file, r->hooks.request_line, r->path, why);
                return;
            }
            if (r->hooks.response_file != NULL && strstr(why, r->hooks.response_file) != NULL) {
                snprintf(err, errlen, "%s:%u: route %s: hooks.response: %s", conf->file, r->hooks.response_line, r->path, why);
                return;
            }
        }
    }
    snprintf(err, errlen, "%s: lua: %s", conf->file, why);
}

/* The index of a file already in files[0..n). */
static size_t index_of(const char **files, size_t n, const char *file)
{
    size_t f;
    for (f = 0; f != n && strcmp(files[f], file) != 0; ++f)
        ;
    return f;
}

/* Each route's Lua file defines what the route calls: handler, on_request, on_response. */
static int check_defines(const conf_t *conf, hooks_vm_t *vm, const char **files, size_t nfiles, char *err, size_t errlen)
{
    for (size_t h = 0; h != conf->nhosts; ++h) {
        for (size_t i = 0; i != conf->hosts[h].nroutes; ++i) {
            const conf_route_t *r = conf->hosts[h].routes + i;
            struct {
                const char *file, *fn, *key;
                unsigned line;
            } need[] = {{r->origin.kind == CONF_ORIGIN_FUNCTION ? r->origin.function_file : NULL, "handler", "origin.function",
                         r->origin.function_line},
                        {r->hooks.request_file, "on_request", "hooks.request", r->hooks.request_line},
                        {r->hooks.response_file, "on_response", "hooks.response", r->hooks.response_line}};
            for (size_t k = 0; k != 3; ++k) {
                if (need[k].file == NULL || hooks_vm_defines(vm, index_of(files, nfiles, need[k].file), need[k].fn))
                    continue;
                snprintf(err, errlen, "%s:%u: route %s: %s: %s defines no function %s", conf->file, need[k].line, r->path,
                         need[k].key, need[k].file, need[k].fn);
                return -1;
            }
        }
    }
    return 0;
}

/* Reads the files and makes a VM over them, to see that every one compiles and runs its top level, and defines what
 * its routes call. */
static px_lua_texts_t *load_texts(const conf_t *conf, const char **files, size_t nfiles, char *err, size_t errlen)
{
    hooks_options_t opts;
    hooks_vm_t *vm;
    px_lua_texts_t *texts;
    char why[1024];
    hooks_kv_t *vars;

    if ((texts = texts_read(files, nfiles, why, sizeof(why))) == NULL) {
        route_error(conf, why, err, errlen);
        return NULL;
    }
    if (nfiles == 0)
        return texts;
    vars = vars_of(conf);
    options_of(conf, files, texts, vars, &opts);
    if ((vm = hooks_vm_new(&opts, why, sizeof(why))) == NULL) {
        route_error(conf, why, err, errlen);
        texts_free(texts);
        free(vars);
        return NULL;
    }
    free(vars);
    if (check_defines(conf, vm, files, nfiles, err, errlen) != 0) {
        hooks_vm_free(vm);
        texts_free(texts);
        return NULL;
    }
    hooks_vm_free(vm);
    return texts;
}

int px_functions_check(const conf_t *conf, char *err, size_t errlen)
{
    size_t nroutes = 0, n = 0;
    for (size_t h = 0; h != conf->nhosts; ++h)
        nroutes += conf->hosts[h].nroutes;
    const char **files = h2o_mem_alloc(sizeof(*files) * (3 * nroutes + 1));
    for (size_t h = 0; h != conf->nhosts; ++h) {
        for (size_t i = 0; i != conf->hosts[h].nroutes; ++i) {
            const conf_route_t *r = conf->hosts[h].routes + i;
            if (r->origin.kind == CONF_ORIGIN_FUNCTION)
                file_index(files, &n, r->origin.function_file);
            if (r->hooks.request_file != NULL)
                file_index(files, &n, r->hooks.request_file);
            if (r->hooks.response_file != NULL)
                file_index(files, &n, r->hooks.response_file);
        }
    }
    px_lua_texts_t *texts = load_texts(conf, files, n, err, errlen);
    texts_free(texts);
    free(files);
    return texts != NULL ? 0 : -1;
}

int px_functions_init(px_server_t *srv, char *err, size_t errlen)
{
    srv->lua_files = h2o_mem_alloc(sizeof(*srv->lua_files) * (3 * srv->nroutes + 1));
    srv->lua_vars = vars_of(srv->conf);
    srv->nlua_files = 0;
    pthread_mutex_init(&srv->lua_mu, NULL);
    for (size_t i = 0; i != srv->nroutes; ++i) {
        const conf_route_t *r = srv->origins[i].route;
        if (r->origin.kind == CONF_ORIGIN_FUNCTION)
            srv->origins[i].script = file_index(srv->lua_files, &srv->nlua_files, r->origin.function_file);
        srv->origins[i].req_script =
            r->hooks.request_file != NULL ? file_index(srv->lua_files, &srv->nlua_files, r->hooks.request_file) : SIZE_MAX;
        srv->origins[i].res_script =
            r->hooks.response_file != NULL ? file_index(srv->lua_files, &srv->nlua_files, r->hooks.response_file) : SIZE_MAX;
    }
    /* every script compiles and its top level runs, or the server does not start */
    srv->lua_texts = load_texts(srv->conf, srv->lua_files, srv->nlua_files, err, errlen);
    return srv->lua_texts != NULL ? 0 : -1;
}

void px_functions_reload(px_server_t *srv)
{
    px_lua_texts_t *fresh, *old;
    char err[1024];

    if (srv->nlua_files == 0)
        return;
    if ((fresh = load_texts(srv->conf, srv->lua_files, srv->nlua_files, err, sizeof(err))) == NULL) {
        fprintf(stderr, "edgeproxy: SIGHUP: %s; the Lua files keep their previous scripts\n", err);
        return;
    }
    pthread_mutex_lock(&srv->lua_mu);
    old = srv->lua_texts;
    srv->lua_texts = fresh;
    atomic_fetch_add(&srv->lua_generation, 1);
    pthread_mutex_unlock(&srv->lua_mu);
    texts_free(old);
    fprintf(stderr, "edgeproxy: SIGHUP: %zu Lua files reloaded\n", srv->nlua_files);
}

void px_functions_dispose(px_server_t *srv)
{
    if (srv->lua_files != NULL) {
        texts_free(srv->lua_texts);
        pthread_mutex_destroy(&srv->lua_mu);
    }
    free(srv->lua_files);
    free(srv->lua_vars);
    srv->lua_files = NULL;
    srv->lua_vars = NULL;
    srv->lua_texts = NULL;
}

/* A VM of the current generation's texts (NULL, with the message, when it cannot be made). */
static hooks_vm_t *make_vm(px_thread_t *th, char *why, size_t whylen)
{
    hooks_options_t opts;
    hooks_vm_t *vm;

    pthread_mutex_lock(&th->srv->lua_mu);
    th->vm_generation = atomic_load(&th->srv->lua_generation);
    options_of(th->srv->conf, th->srv->lua_files, th->srv->lua_texts, th->srv->lua_vars, &opts);
    vm = hooks_vm_new(&opts, why, whylen);
    pthread_mutex_unlock(&th->srv->lua_mu);
    return vm;
}

void px_functions_init_thread(px_thread_t *th)
{
    char why[1024];

    if (th->srv->nlua_files == 0)
        return;
    if ((th->vm = make_vm(th, why, sizeof(why))) == NULL) { /* loaded at boot: only memory can fail here */
        fprintf(stderr, "edgeproxy: cannot make the Lua VM of a worker thread: %s\n", why);
        h2o_fatal("no Lua VM");
    }
}

void px_functions_dispose_thread(px_thread_t *th)
{
    hooks_vm_free(th->vm);
    th->vm = NULL;
}

/* The query string's parameters, decoded. */
static hooks_kv_t *query_of(h2o_req_t *req, size_t *n)
{
    const char *p, *end;
    size_t cap = 1;
    hooks_kv_t *kv;

    *n = 0;
    if (req->query_at == SIZE_MAX)
        return NULL;
    p = req->path.base + req->query_at + 1;
    end = req->path.base + req->path.len;
    for (const char *q = p; q < end; ++q)
        cap += *q == '&';
    kv = h2o_mem_alloc_pool(&req->pool, sizeof(*kv) * cap);
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p)), *pe = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p)), *ke = eq != NULL ? eq : pe;
        if (pe != p) {
            hooks_kv_t *e = kv + (*n)++;
            h2o_iovec_t name = px_pct_decode(&req->pool, p, (size_t)(ke - p), 1),
                        value = eq != NULL ? px_pct_decode(&req->pool, eq + 1, (size_t)(pe - eq - 1), 1) : h2o_iovec_init("", 0);
            e->name = name.base, e->name_len = name.len;
            e->value = value.base, e->value_len = value.len;
        }
        p = pe + 1;
    }
    return kv;
}

static void build_event(h2o_req_t *req, px_req_t *st, px_server_t *srv, hooks_event_t *ev)
{
    const px_match_t *m = st->match;
    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    char ipbuf[NI_MAXHOST];
    size_t iplen = px_client_ip(req, ipbuf);
    const char *ip = h2o_strdup(&req->pool, ipbuf, iplen).base;
    *ev = (hooks_event_t){.method = req->method.base,
                          .method_len = req->method.len,
                          .path = req->path.base,
                          .path_len = plen,
                          .resource = m->route->path,
                          .headers = px_hook_headers_kv(req),
                          .nheaders = req->headers.size,
                          .path_params = px_hook_params_kv(req, m),
                          .npath_params = m->nparams,
                          .stage_vars = srv->lua_vars,
                          .nstage_vars = srv->conf->lua.nvariables,
                          .body = req->entity.base,
                          .body_len = req->entity.base != NULL ? req->entity.len : 0,
                          .source_ip = ip,
                          .request_id = h2o_strdup(&req->pool, st->request_id.base, st->request_id.len).base,
                          .stage = srv->conf->lua.stage};
    ev->query = query_of(req, &ev->nquery);
    if (st->gate != NULL) {
        if (st->gate->claims.len != 0) {
            ev->claims_json = st->gate->claims.base;
            ev->claims_len = st->gate->claims.len;
        }
        if (st->gate->key != NULL)
            ev->api_key_id = st->gate->key->id;
    }
}

void px_functions_refresh(px_thread_t *th)
{
    if (th->vm_generation != atomic_load_explicit(&th->srv->lua_generation, memory_order_acquire)) {
        /* SIGHUP loaded new texts: this thread's VM is made again; runs still waiting keep the old one until they end */
        char msg[1024];
        hooks_vm_t *fresh;
        if ((fresh = make_vm(th, msg, sizeof(msg))) != NULL) {
            hooks_vm_free(th->vm);
            th->vm = fresh;
        } else {
            fprintf(stderr, "edgeproxy: reload on worker %zu: %s; it keeps its previous scripts\n", th->idx, msg);
        }
    }
}

/* A function's run for a request (or a fill): the event (built on start()'s stack, pointing into the request) is read
 * before the run first waits (hooks.h). */
typedef struct px_fn {
    h2o_req_t *req; /* NULL for a fill whose first request may be gone */
    px_req_t *st;
    px_origin_t *origin;
    px_fill_t *fill;      /* a cache fill, or NULL */
    px_lrun_t *lr;        /* a fill's driver (owned by the fill's run), or NULL */
    hooks_outcome_t *out; /* the fill's: &lr->out; a request's: &own_out (in the pool) */
    hooks_outcome_t own_out;
    const char *request_id;
    const char *file;
    struct timeval t0; /* when the run started; zero when not timed (no access log) */
} px_fn_t;

/* Starts the route's function; done is called with the outcome in fn->out. A fill's run is driven by fn->lr (its
 * memory is the fill's); a request's allocates from the request's pool and gets a driver only if it waits. */
static void start(px_fn_t *fn, h2o_req_t *req, px_req_t *st, px_lrun_cb done)
{
    px_thread_t *th = px_thread_of(req);
    hooks_event_t ev;
    hooks_run_t *run;
    hooks_status_t status;

    px_functions_refresh(th);
    build_event(req, st, th->srv, &ev);
    if (th->srv->access_log_fd != -1) /* the function's time is for the access log only */
        gettimeofday(&fn->t0, NULL);
    status = hooks_start_function(th->vm, fn->origin->script, &ev, px_lrun_allocator(), fn->lr != NULL ? &fn->lr->pool : &req->pool,
                                  fn->out, &run);
    if (fn->lr != NULL)
        px_lrun_go(fn->lr, status, run, done, fn);
    else
        px_lrun_for_request(req, status, run, done, fn);
}

static double ms_since(const struct timeval *t0)
{
    struct timeval t1;
    gettimeofday(&t1, NULL);
    return (double)(t1.tv_sec - t0->tv_sec) * 1000.0 + (double)(t1.tv_usec - t0->tv_usec) / 1000.0;
}

static void log_failure(px_fn_t *fn)
{
    fprintf(stderr, "edgeproxy: [%s] function %s failed: %s\n", fn->request_id, fn->file,
            fn->out->error != NULL ? fn->out->error : "(no message)");
}

/* The answer as an origin's response head (names lower-case; Content-Length is ours to set). */
static void head_of(h2o_mem_pool_t *pool, const hooks_response_t *res, px_fetch_head_t *head)
{
    struct phr_header *h = h2o_mem_alloc_pool(pool, sizeof(*h) * (res->nheaders + 1));
    size_t n = 0;

    for (size_t i = 0; i != res->nheaders; ++i) {
        const hooks_kv_t *kv = res->headers + i;
        if (h2o_memis(kv->name, kv->name_len, H2O_STRLIT("content-length")))
            continue;
        h[n++] = (struct phr_header){kv->name, kv->name_len, kv->value, kv->value_len};
    }
    *head = (px_fetch_head_t){.minor_version = 1,
                              .status = res->status,
                              .reason = h2o_iovec_init(H2O_STRLIT("OK")),
                              .headers = h,
                              .nheaders = n,
                              .content_length = res->body_len};
}

static void on_fill_done(void *data, hooks_status_t status)
{
    px_fn_t *fn = data;
    px_lrun_t *lr = fn->lr;

    if (status != HOOKS_DONE) {
        log_failure(fn);
        px_fill_feed(fn->fill, NULL, NULL, 0, "the function failed");
    } else {
        px_fetch_head_t head;
        head_of(&lr->pool, &lr->out.response, &head);
        px_fill_feed(fn->fill, &head, lr->out.response.body, lr->out.response.body_len, NULL);
    }
    px_fill_unref(fn->fill);
    px_lrun_free(lr);
    free(fn);
}

void px_function_fill(px_fill_t *fill, h2o_req_t *req, px_req_t *st, px_origin_t *origin)
{
    /* the fill may outlive the request: what the run needs after its start is its own */
    px_fn_t *fn = h2o_mem_alloc(sizeof(*fn));
    px_thread_t *th = px_thread_of(req);

    *fn = (px_fn_t){.st = st, .origin = origin, .fill = fill, .lr = px_lrun_new(th), .file = origin->route->origin.function_file};
    fn->out = &fn->lr->out;
    fn->request_id = h2o_strdup(&fn->lr->pool, st->request_id.base, st->request_id.len).base;
    atomic_fetch_add_explicit(&fill->refs, 1, memory_order_relaxed);
    start(fn, req, st, on_fill_done);
}

static void send_answer(h2o_req_t *req, px_req_t *st, const hooks_response_t *res)
{
    if (st->cache_invalidate && res->status < 400) { /* an unsafe method on a caching route succeeded */
        px_fetch_head_t head;
        head_of(&req->pool, res, &head);
        px_cache_invalidate(req, &head);
    }
    px_hook_send_answer(req, st, res);
}

/* The response hook is over (a function route without cache). */
static void on_hooked(h2o_req_t *req, void *data, const hooks_response_changes_t *c, int fail)
{
    px_fn_t *fn = data;
    hooks_response_t res = fn->out->response;

    if (fail) {
        memset(&req->res.headers, 0, sizeof(req->res.headers)); /* none of the function's fields go with the error */
        px_send_error(req, 500, "Internal Server Error", "The response hook failed");
        return;
    }
    res.headers = NULL; /* already in req->res.headers (on_done) */
    res.nheaders = 0;
    if (c != NULL) {
        px_hook_apply_response(req, c);
        if (c->status != 0)
            res.status = c->status;
        if (c->body_changed) {
            res.body = c->body;
            res.body_len = c->body_len;
        }
    }
    send_answer(req, fn->st, &res);
}

static void on_done(void *data, hooks_status_t status)
{
    px_fn_t *fn = data;
    h2o_req_t *req = fn->req;
    px_req_t *st = fn->st;

    if (fn->t0.tv_sec != 0)
        st->upstream_ms = ms_since(&fn->t0);
    if (status != HOOKS_DONE) {
        log_failure(fn);
        px_send_error(req, 502, "Bad Gateway", "The function failed");
        return;
    }
    if (st->match->route->hooks.response_file != NULL) {
        const hooks_response_t *res = &fn->out->response;
        req->res.status = res->status;
        px_hook_add_headers(req, res->headers, res->nheaders);
        px_hook_response(req, st, res->body != NULL ? res->body : "", res->body_len, on_hooked, fn);
        return;
    }
    send_answer(req, st, &fn->out->response);
}

void px_function_handle(h2o_req_t *req, px_req_t *st, px_origin_t *origin)
{
    px_fn_t *fn = h2o_mem_alloc_pool(&req->pool, sizeof(*fn));

    *fn = (px_fn_t){.req = req, .st = st, .origin = origin, .file = origin->route->origin.function_file};
    fn->out = &fn->own_out;
    fn->request_id = h2o_strdup(&req->pool, st->request_id.base, st->request_id.len).base;
    start(fn, req, st, on_done);
}
