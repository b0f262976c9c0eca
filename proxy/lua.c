/*
 * lua: runs of Lua code (hooks/) driven on a worker thread's loop: what a run waits for is done here without
 * blocking the loop, and the run is resumed with the outcome.
 *
 *   edge.fetch  an HTTP/1.1 exchange with any http:// or https:// URL through libh2o's http1client: the host name is
 *               resolved by h2o's resolver thread (never on the loop), https verifies the chain against lua.fetch.ca
 *               (or the system's store) and the host name (TLS 1.2 at most: libh2o 2.2.5 skips the name check when
 *               TLS 1.3 is negotiated, LIBH2O_NOTES.md 5.3). One deadline covers the whole exchange (the call's
 *               timeout, else lua.fetch.timeout); an answer body over lua.fetch.max_body_size fails the fetch. Each
 *               fetch has its own connection (Connection: close).
 *   edge.purge  a purge of the cache store, answered once its writer has committed it (as the admin API's).
 *   edge.store  an operation of the item store (px_store_send, dynamo.c): a read is answered at once and the run goes
 *               on before drive() returns (a loop, not a recursion, however many reads a script makes); a write is
 *               answered by a message once the store's writer has committed it. A run cancelled meanwhile abandons
 *               the call: the write is committed all the same, its answer is dropped and the run is never resumed.
 *               Without a store (it is opened when the conf has Lua files or a store route), every call gives
 *               nil, {code = "ResourceNotFoundException"}.
 *
 * Lifetimes: a px_lrun_t is malloc'ed with its own pool, which holds the run's outcome and what the run reads (its
 * request view, copied by the caller when the run can outlive a request). Its owner (a request, through a dispose
 * callback of its pool, or a fill) frees it with px_lrun_free, which cancels a run still waiting and its fetch.
 */
#include <stdio.h>
#include <string.h>
#include <openssl/ssl.h>
#include "proxy/internal.h"

#define LRUN_MAX_TIMEOUTS 8

struct px_lua_timeouts {
    size_t n;
    struct {
        uint64_t ms;
        h2o_timeout_t t;
    } e[LRUN_MAX_TIMEOUTS];
};

static void *lrun_alloc(size_t size, void *pool)
{
    return h2o_mem_alloc_pool((h2o_mem_pool_t *)pool, size);
}

px_lrun_t *px_lrun_new(px_thread_t *th)
{
    px_lrun_t *lr = h2o_mem_alloc(sizeof(*lr));

    memset(lr, 0, sizeof(*lr));
    lr->th = th;
    h2o_mem_init_pool(&lr->pool);
    return lr;
}

hooks_alloc_cb px_lrun_allocator(void)
{
    return lrun_alloc;
}

static void fetch_stop(px_lrun_t *lr)
{
    if (lr->client != NULL) {
        h2o_http1client_cancel(lr->client);
        lr->client = NULL;
    }
    if (h2o_timeout_is_linked(&lr->deadline))
        h2o_timeout_unlink(&lr->deadline);
}

void px_lrun_free(px_lrun_t *lr)
{
    if (lr == NULL)
        return;
    fetch_stop(lr);
    if (lr->body != NULL)
        h2o_buffer_dispose(&lr->body);
    if (lr->purge != NULL)
        lr->purge->lrun = NULL; /* its message finds no run */
    if (lr->store != NULL)
        px_store_abandon(lr->store); /* the write goes on; its answer is dropped */
    if (lr->run != NULL)
        hooks_run_cancel(lr->run);
    h2o_mem_clear_pool(&lr->pool);
    free(lr);
}

static void drive(px_lrun_t *lr, hooks_status_t st, hooks_run_t *run);

/* ---- edge.fetch ---- */

static h2o_timeout_t *timeout_of(px_thread_t *th, uint64_t ms)
{
    struct px_lua_timeouts *t = th->lua_timeouts;

    for (size_t i = 0; i != t->n; ++i)
        if (t->e[i].ms == ms)
            return &t->e[i].t;
    if (t->n == LRUN_MAX_TIMEOUTS)
        return &t->e[0].t; /* the default's */
    t->e[t->n].ms = ms;
    h2o_timeout_init(th->ctx.loop, &t->e[t->n].t, ms);
    return &t->e[t->n++].t;
}

static void fetch_done(px_lrun_t *lr, int status, const char *err)
{
    h2o_buffer_t *body = lr->body; /* the run copies it; a next fetch gets its own */
    hooks_fetch_result_t r = {
        status, err, lr->res_headers, lr->nres_headers, body != NULL ? body->bytes : NULL, body != NULL ? body->size : 0};
    hooks_run_t *run = lr->run;

    lr->body = NULL;
    fetch_stop(lr);
    lr->run = NULL;
    drive(lr, hooks_resume_fetch(run, &r), run);
    if (body != NULL)
        h2o_buffer_dispose(&body);
}

static void on_deadline(h2o_timeout_entry_t *entry)
{
    px_lrun_t *lr = H2O_STRUCT_FROM_MEMBER(px_lrun_t, deadline, entry);
    fetch_done(lr, 0, "timeout");
}

static int on_body(h2o_http1client_t *client, const char *err)
{
    px_lrun_t *lr = client->data;
    h2o_buffer_t *in = client->sock->input;

    if (lr->body->size + in->size > lr->th->srv->conf->lua.fetch.max_body_size) {
        lr->client = NULL; /* a non-zero return closes it */
        fetch_done(lr, 0, "the answer's body is larger than lua.fetch.max_body_size");
        return -1;
    }
    if (in->size != 0) { /* appended to a buffer that grows by doubling: each byte is copied once */
        h2o_iovec_t dst = h2o_buffer_reserve(&lr->body, in->size);
        memcpy(dst.base, in->bytes, in->size);
        lr->body->size += in->size;
        h2o_buffer_consume(&client->sock->input, in->size);
    }
    if (err == NULL)
        return 0;
    lr->client = NULL; /* freed when we return */
    if (err == h2o_http1client_error_is_eos)
        fetch_done(lr, lr->status, NULL);
    else
        fetch_done(lr, 0, err);
    return 0;
}

static h2o_http1client_body_cb on_head(h2o_http1client_t *client, const char *err, int minor_version, int status, h2o_iovec_t msg,
                                       h2o_header_t *headers, size_t num_headers, int rlen)
{
    px_lrun_t *lr = client->data;

    (void)minor_version, (void)msg, (void)rlen;
    if (err != NULL && err != h2o_http1client_error_is_eos) {
        lr->client = NULL;
        fetch_done(lr, 0, err);
        return NULL;
    }
    lr->status = status;
    lr->res_headers = h2o_mem_alloc_pool(&lr->pool, sizeof(*lr->res_headers) * (num_headers + 1));
    lr->nres_headers = 0;
    for (size_t i = 0; i != num_headers; ++i) {
        hooks_kv_t *kv = lr->res_headers + lr->nres_headers++;
        h2o_iovec_t n = h2o_strdup(&lr->pool, headers[i].name->base, headers[i].name->len);
        h2o_iovec_t v = h2o_strdup(&lr->pool, headers[i].value.base, headers[i].value.len);
        *kv = (hooks_kv_t){n.base, n.len, v.base, v.len};
    }
    if (err == h2o_http1client_error_is_eos) {
        lr->client = NULL;
        fetch_done(lr, status, NULL);
        return NULL;
    }
    return on_body;
}

static h2o_http1client_head_cb on_connect(h2o_http1client_t *client, const char *err, h2o_iovec_t **reqbufs, size_t *reqbufcnt,
                                          int *method_is_head)
{
    px_lrun_t *lr = client->data;

    if (err != NULL) {
        lr->client = NULL;
        fetch_done(lr, 0, err);
        return NULL;
    }
    *reqbufs = &lr->reqbuf;
    *reqbufcnt = 1;
    *method_is_head = lr->is_head;
    return on_head;
}

/* Header fields a script may not set on a subrequest: the framing and the connection are ours. */
static int reserved_field(const hooks_kv_t *kv)
{
    static const char *const names[] = {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te"};
    for (size_t i = 0; i != sizeof(names) / sizeof(names[0]); ++i)
        if (h2o_lcstris(kv->name, kv->name_len, names[i], strlen(names[i])))
            return 1;
    return 0;
}

/* An edge.fetch body grows in memory only: h2o_socket_buffer_prototype would move a large one (lua.fetch.max_body_size
 * allows 1 GiB) to a temporary file (mmap) on the loop. */
static h2o_buffer_prototype_t fetch_body_prototype = {.allocator = {.max = 0}, ._initial_buf = {.capacity = 16}, .mmap_settings = NULL};

static void start_fetch(px_lrun_t *lr, const hooks_fetch_t *f)
{
    px_thread_t *th = lr->th;
    h2o_url_t url;
    const conf_t *conf = th->srv->conf;
    int https;
    size_t cap;
    char *p;

    h2o_buffer_init(&lr->body, &fetch_body_prototype);
    lr->res_headers = NULL;
    lr->nres_headers = 0;
    if (h2o_url_parse(f->url, f->url_len, &url) != 0 || url.host.len == 0) {
        fetch_done(lr, 0, "invalid URL");
        return;
    }
    https = url.scheme == &H2O_URL_SCHEME_HTTPS;
    if (https && th->srv->lua_fetch_ssl_ctx == NULL) {
        fetch_done(lr, 0, "https is not available (the TLS context could not be made)");
        return;
    }
    cap = f->method_len + url.path.len + url.authority.len + f->body_len + 128;
    for (size_t i = 0; i != f->nheaders; ++i)
        cap += f->headers[i].name_len + f->headers[i].value_len + 4;
    p = h2o_mem_alloc_pool(&lr->pool, cap);
    lr->reqbuf.base = p;
    p += sprintf(p, "%.*s %.*s HTTP/1.1\r\nhost: %.*s\r\n", (int)f->method_len, f->method, (int)url.path.len, url.path.base,
                 (int)url.authority.len, url.authority.base);
    for (size_t i = 0; i != f->nheaders; ++i) {
        if (reserved_field(&f->headers[i]))
            continue;
        p += sprintf(p, "%.*s: %.*s\r\n", (int)f->headers[i].name_len, f->headers[i].name, (int)f->headers[i].value_len,
                     f->headers[i].value);
    }
    if (f->body != NULL || h2o_memis(f->method, f->method_len, H2O_STRLIT("POST")) ||
        h2o_memis(f->method, f->method_len, H2O_STRLIT("PUT")) || h2o_memis(f->method, f->method_len, H2O_STRLIT("PATCH")))
        p += sprintf(p, "content-length: %zu\r\n", f->body_len);
    p += sprintf(p, "connection: close\r\n\r\n");
    if (f->body_len != 0) {
        memcpy(p, f->body, f->body_len);
        p += f->body_len;
    }
    lr->reqbuf.len = (size_t)(p - lr->reqbuf.base);
    lr->is_head = h2o_memis(f->method, f->method_len, H2O_STRLIT("HEAD"));

    uint64_t ms = f->timeout_ms != 0 ? f->timeout_ms : conf->lua.fetch.timeout_ms;
    h2o_timeout_t *t = timeout_of(th, ms);
    lr->client_ctx = (h2o_http1client_ctx_t){th->ctx.loop, &th->ctx.receivers.hostinfo_getaddr, t, NULL,
                                             https ? th->srv->lua_fetch_ssl_ctx : NULL};
    lr->deadline.cb = on_deadline;
    h2o_timeout_link(th->ctx.loop, t, &lr->deadline);
    h2o_http1client_connect(&lr->client, lr, &lr->client_ctx, url.host, h2o_url_get_port(&url), https, on_connect);
}

/* ---- edge.purge ---- */

static void on_purge_done(int err, size_t count, void *data)
{
    px_admin_op_t *op = data;
    op->err = err;
    op->count = count;
    px_admin_op_done(op);
}

void px_lrun_purged(px_admin_op_t *op)
{
    px_lrun_t *lr = op->lrun;
    hooks_run_t *run;

    if (lr == NULL)
        return;
    lr->purge = NULL;
    run = lr->run;
    lr->run = NULL;
    drive(lr, hooks_resume_purge(run, op->err != 0 ? -1 : (long)op->count, op->err != 0 ? cache_store_strerror(op->err) : NULL),
          run);
}

static void start_purge(px_lrun_t *lr, const hooks_purge_t *pg)
{
    static const cache_store_purge_kind_t kinds[] = {CACHE_STORE_PURGE_URL, CACHE_STORE_PURGE_PREFIX, CACHE_STORE_PURGE_TAG,
                                                     CACHE_STORE_PURGE_HOST, CACHE_STORE_PURGE_ALL};
    px_server_t *srv = lr->th->srv;
    px_admin_op_t *op;
    char *arg;
    hooks_run_t *run;

    if (srv->cache_store == NULL) {
        run = lr->run;
        lr->run = NULL;
        drive(lr, hooks_resume_purge(run, -1, "no route caches: there is nothing to purge"), run);
        return;
    }
    arg = h2o_strdup(&lr->pool, pg->value, pg->value_len).base;
    if (pg->kind == HOOKS_PURGE_URL || pg->kind == HOOKS_PURGE_PREFIX || pg->kind == HOOKS_PURGE_HOST)
        arg = px_store_url_of(arg);
    op = h2o_mem_alloc(sizeof(*op));
    memset(op, 0, sizeof(*op));
    op->th = lr->th;
    op->refs = 1; /* the message's */
    op->lrun = lr;
    op->is_lua = 1;
    op->soft = pg->soft;
    lr->purge = op;
    px_fill_forget_complete();
    if (cache_store_purge(srv->cache_store, kinds[pg->kind], arg, op->soft, on_purge_done, op) != 0) {
        free(op);
        lr->purge = NULL;
        run = lr->run;
        lr->run = NULL;
        drive(lr, hooks_resume_purge(run, -1, "the purge could not be queued"), run);
    }
}

/* ---- edge.store ---- */

/* A write committed (on the run's thread, by px_dynamo_on_messages): the run goes on. */
static void on_store_answer(void *data, int status, char *body, size_t len)
{
    px_lrun_t *lr = data;
    hooks_run_t *run = lr->run;
    hooks_status_t st;

    lr->store = NULL;
    lr->run = NULL;
    st = hooks_resume_store(run, status, body, len);
    free(body);
    drive(lr, st, run);
}

/* ---- driving a run ---- */

static void drive(px_lrun_t *lr, hooks_status_t st, hooks_run_t *run)
{
    while (st == HOOKS_WAITING) {
        const hooks_wait_t *w = hooks_run_wait(run);
        px_store_answer_t now;

        lr->run = run;
        if (w->kind == HOOKS_WAIT_FETCH) {
            start_fetch(lr, &w->fetch);
            return;
        }
        if (w->kind == HOOKS_WAIT_PURGE) {
            start_purge(lr, &w->purge);
            return;
        }
        lr->store = px_store_send(lr->th, w->store.op, w->store.body, w->store.body_len, on_store_answer, lr, &now);
        if (lr->store != NULL)
            return; /* a write: on_store_answer goes on */
        lr->run = NULL;
        st = hooks_resume_store(run, now.status, now.body, now.len);
        free(now.body);
    }
    lr->run = NULL;
    lr->cb(lr->data, st);
}

void px_lrun_go(px_lrun_t *lr, hooks_status_t st, hooks_run_t *run, px_lrun_cb cb, void *data)
{
    lr->cb = cb;
    lr->data = data;
    drive(lr, st, run);
}

void px_lrun_for_request(h2o_req_t *req, hooks_status_t st, hooks_run_t *run, px_lrun_cb cb, void *data)
{
    px_lrun_t *lr;

    if (st != HOOKS_WAITING) { /* the common case: no driver */
        cb(data, st);
        return;
    }
    lr = px_lrun_new(px_thread_of(req));
    *px_hook_lrun_slot(req) = lr; /* freed with the request, which cancels the run if it still waits */
    px_lrun_go(lr, st, run, cb, data);
}

/* ---- per server and per thread ---- */

int px_lua_init(px_server_t *srv, char *err, size_t errlen)
{
    const char *ca = srv->conf->lua.fetch.ca_file;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL) {
        snprintf(err, errlen, "lua.fetch: cannot create a TLS context");
        return -1;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if ((ca != NULL ? SSL_CTX_load_verify_locations(ctx, ca, NULL) : SSL_CTX_set_default_verify_paths(ctx)) != 1) {
        snprintf(err, errlen, "%s: lua.fetch.ca: cannot load %s", srv->conf->file, ca != NULL ? ca : "the system's CA store");
        SSL_CTX_free(ctx);
        return -1;
    }
    srv->lua_fetch_ssl_ctx = ctx;
    return 0;
}

void px_lua_dispose(px_server_t *srv)
{
    if (srv->lua_fetch_ssl_ctx != NULL)
        SSL_CTX_free(srv->lua_fetch_ssl_ctx);
    srv->lua_fetch_ssl_ctx = NULL;
}

void px_lua_init_thread(px_thread_t *th)
{
    th->lua_timeouts = h2o_mem_alloc(sizeof(*th->lua_timeouts));
    th->lua_timeouts->n = 0;
    timeout_of(th, th->srv->conf->lua.fetch.timeout_ms); /* e[0]: the default */
}

void px_lua_dispose_thread(px_thread_t *th)
{
    if (th->lua_timeouts == NULL)
        return;
    for (size_t i = 0; i != th->lua_timeouts->n; ++i) {
        h2o_timeout_t *t = &th->lua_timeouts->e[i].t;
        while (!h2o_linklist_is_empty(&t->_entries)) /* fetches of runs still waiting at the end (fills) */
            h2o_linklist_unlink(t->_entries.next);
        h2o_timeout_dispose(th->ctx.loop, t);
    }
    free(th->lua_timeouts);
    th->lua_timeouts = NULL;
}
