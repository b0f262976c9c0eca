/*
 * admin: the admin API, on its own listener (conf `admin:`, loopback by default). Every request needs the header
 * "Authorization: Bearer <admin.token>" (else 401). Answers are JSON.
 *
 *   POST /cache/purge?url=U | prefix=P | tag=T | host=H | all=1   [&soft=1]
 *        url     "https://example.com/a?b=1" or "example.com/a?b=1": every stored variant of that URL
 *        prefix  "example.com/static/": every stored URL that begins with it
 *        tag     a surrogate key (Surrogate-Key / Cache-Tag of the origin's responses)
 *        host    every object of that host; all: everything
 *        soft=1  mark stale instead of deleting (stale-if-error can still use them)
 *        -> 200 {"purged": N, "soft": false} once the store has committed the purge
 *   GET  /cache/stats -> 200 {"objects": ..., "bytes_used": ..., ...}
 *
 * Values are percent-decoded (%XX; '+' stays '+'). A purge also drops the answers of fills that just finished and
 * that requests could still join (fill.c keeps them joinable until the store has them).
 *
 * API keys: /keys and below (admin_keys.c).
 *
 * Lifetimes: a purge or key change in flight is a px_admin_op_t (internal.h) shared by the request and the message
 * the writer thread sends back to the request's thread.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "cache/cache.h"
#include "proxy/internal.h"

typedef struct px_admin_handler {
    h2o_handler_t super;
    px_server_t *srv;
} px_admin_handler_t;

static void op_unref(px_admin_op_t *op)
{
    if (--op->refs == 0)
        free(op);
}

void px_admin_send_json(h2o_req_t *req, int status, const char *reason, h2o_iovec_t body)
{
    static h2o_generator_t generator = {NULL, NULL};
    px_req_t *st = px_req_get(req);

    st->from_origin = 1; /* our own JSON, not an error to rewrite */
    req->res.status = status;
    req->res.reason = reason;
    req->res.content_length = body.len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    h2o_start_response(req, &generator);
    h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
}

/* On the request's thread: the work is done. */
void px_admin_on_messages(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    (void)receiver;
    while (!h2o_linklist_is_empty(messages)) {
        px_admin_op_t *op = H2O_STRUCT_FROM_MEMBER(px_admin_op_t, super.link, messages->next);
        h2o_linklist_unlink(&op->super.link);
        if (op->is_lua)
            px_lrun_purged(op);
        else if (op->req != NULL)
            op->answer(op, op->req);
        op_unref(op);
    }
}

static void on_req_gone(void *data)
{
    px_admin_op_t *op = *(px_admin_op_t **)data;
    op->req = NULL;
    op_unref(op);
}

px_admin_op_t *px_admin_op_new(h2o_req_t *req, void (*answer)(px_admin_op_t *op, h2o_req_t *req))
{
    px_admin_op_t *op = h2o_mem_alloc(sizeof(*op));

    memset(op, 0, sizeof(*op));
    op->th = px_thread_of(req);
    op->req = req;
    op->answer = answer;
    op->refs = 2;
    *(px_admin_op_t **)h2o_mem_alloc_shared(&req->pool, sizeof(px_admin_op_t *), on_req_gone) = op;
    return op;
}

void px_admin_op_done(px_admin_op_t *op)
{
    h2o_multithread_send_message(&op->th->admin_receiver, &op->super);
}

void px_admin_op_abandon(px_admin_op_t *op)
{
    op->refs = 1; /* no message will come: the request's reference is the last */
}

static void answer_purge(px_admin_op_t *op, h2o_req_t *req)
{
    if (op->err != 0) {
        px_send_error(req, 500, "Internal Server Error", cache_store_strerror(op->err));
    } else {
        char *buf = h2o_mem_alloc_pool(&req->pool, 64);
        int n = snprintf(buf, 64, "{\"purged\":%zu,\"soft\":%s}\n", op->count, op->soft ? "true" : "false");
        px_admin_send_json(req, 200, "OK", h2o_iovec_init(buf, (size_t)n));
    }
}

/* On the store's writer thread. */
static void on_purge_done(int err, size_t count, void *data)
{
    px_admin_op_t *op = data;
    op->err = err;
    op->count = count;
    px_admin_op_done(op);
}

char *px_store_url_of(char *url)
{
    char *p;
    if (strncmp(url, "https://", 8) == 0)
        url += 8;
    else if (strncmp(url, "http://", 7) == 0)
        url += 7;
    for (p = url; *p != '\0' && *p != '/'; ++p)
        if (*p >= 'A' && *p <= 'Z')
            *p += 'a' - 'A';
    return url;
}

static int token_ok(px_server_t *srv, h2o_req_t *req)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    const char *want = srv->conf->admin.token;
    size_t wlen = strlen(want);
    unsigned char diff = 0;

    if (i == -1)
        return 0;
    h2o_iovec_t v = req->headers.entries[i].value;
    if (v.len != 7 + wlen || strncasecmp(v.base, "Bearer ", 7) != 0)
        return 0;
    for (size_t k = 0; k != wlen; ++k) /* constant time over the token's length */
        diff |= (unsigned char)(v.base[7 + k] ^ want[k]);
    return diff == 0;
}

static int handle_purge(px_server_t *srv, h2o_req_t *req)
{
    static const struct {
        const char *name;
        cache_store_purge_kind_t kind;
    } selectors[] = {{"url", CACHE_STORE_PURGE_URL},
                     {"prefix", CACHE_STORE_PURGE_PREFIX},
                     {"tag", CACHE_STORE_PURGE_TAG},
                     {"host", CACHE_STORE_PURGE_HOST},
                     {"all", CACHE_STORE_PURGE_ALL}};
    char *arg = NULL, *soft;
    cache_store_purge_kind_t kind = CACHE_STORE_PURGE_ALL;
    size_t nsel = 0;
    px_admin_op_t *op;

    for (size_t i = 0; i != sizeof(selectors) / sizeof(selectors[0]); ++i) {
        char *v = px_query_param(req, selectors[i].name);
        if (v != NULL) {
            ++nsel;
            arg = v;
            kind = selectors[i].kind;
        }
    }
    if (nsel != 1) {
        px_send_error(req, 400, "Bad Request", "Give exactly one of url, prefix, tag, host or all");
        return 0;
    }
    if (kind != CACHE_STORE_PURGE_ALL && arg[0] == '\0') {
        px_send_error(req, 400, "Bad Request", "The purge selector is empty");
        return 0;
    }
    if (kind == CACHE_STORE_PURGE_URL || kind == CACHE_STORE_PURGE_PREFIX || kind == CACHE_STORE_PURGE_HOST)
        arg = px_store_url_of(arg);
    soft = px_query_param(req, "soft");

    op = px_admin_op_new(req, answer_purge);
    op->soft = soft != NULL && strcmp(soft, "0") != 0;
    px_fill_forget_complete();
    if (cache_store_purge(srv->cache_store, kind, arg, op->soft, on_purge_done, op) != 0) {
        px_admin_op_abandon(op);
        px_send_error(req, 500, "Internal Server Error", "The purge could not be queued");
    }
    return 0;
}

static int handle_stats(px_server_t *srv, h2o_req_t *req)
{
    cache_store_stats_t s;
    char *buf = h2o_mem_alloc_pool(&req->pool, 1024);
    int n;

    cache_store_stats(srv->cache_store, &s);
    n = snprintf(buf, 1024,
                 "{\"objects\":%llu,\"bytes_used\":%llu,\"max_size\":%llu,\"map_size\":%llu,\"puts\":%llu,\"puts_dropped\":%llu,"
                 "\"puts_too_big\":%llu,\"evictions\":%llu,\"expired\":%llu,\"purged\":%llu,\"commits\":%llu}\n",
                 (unsigned long long)s.objects, (unsigned long long)s.bytes_used, (unsigned long long)srv->conf->cache.max_size,
                 (unsigned long long)s.map_size, (unsigned long long)s.puts, (unsigned long long)s.puts_dropped,
                 (unsigned long long)s.puts_too_big, (unsigned long long)s.evictions, (unsigned long long)s.expired,
                 (unsigned long long)s.purged, (unsigned long long)s.commits);
    px_admin_send_json(req, 200, "OK", h2o_iovec_init(buf, (size_t)n));
    return 0;
}

static int on_req(h2o_handler_t *_self, h2o_req_t *req)
{
    px_admin_handler_t *self = (void *)_self;
    px_server_t *srv = self->srv;
    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    h2o_iovec_t path = h2o_iovec_init(req->path.base, plen);

    px_req_get(req);
    if (!token_ok(srv, req)) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, H2O_STRLIT("Bearer"));
        px_send_error(req, 401, "Unauthorized", "A valid admin token is required (Authorization: Bearer ...)");
        return 0;
    }
    if (h2o_memis(path.base, path.len, H2O_STRLIT("/cache/purge"))) {
        if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("POST"));
            px_send_error(req, 405, "Method Not Allowed", "Use POST");
            return 0;
        }
        if (srv->cache_store == NULL) {
            px_send_error(req, 404, "Not Found", "No route caches: there is nothing to purge");
            return 0;
        }
        return handle_purge(srv, req);
    }
    if (h2o_memis(path.base, path.len, H2O_STRLIT("/cache/stats"))) {
        if (srv->cache_store == NULL) {
            px_send_error(req, 404, "Not Found", "No route caches");
            return 0;
        }
        return handle_stats(srv, req);
    }
    if (path.len >= 5 && memcmp(path.base, "/keys", 5) == 0 && (path.len == 5 || path.base[5] == '/'))
        return px_admin_keys(srv, req, path);
    px_send_error(req, 404, "Not Found", "No such admin endpoint (POST /cache/purge, GET /cache/stats, /keys)");
    return 0;
}

void px_admin_register(px_server_t *srv, h2o_pathconf_t *pathconf)
{
    px_admin_handler_t *h = (void *)h2o_create_handler(pathconf, sizeof(*h));
    h->super.on_req = on_req;
    h->srv = srv;
}
