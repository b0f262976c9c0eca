/*
 * hook: the Lua request hook of a route (hooks: { request: FILE }), run after the gateway and before the cache and the
 * origin, and the response hook (hooks: { response: FILE }) on answers that come from an origin.
 *
 * on_request(req) may change the path, the query and the header fields the request goes on with, add to its cache
 * key (req.cache_key), send it to the origin of another route of the same host (req.origin = that route's path as
 * written; an `internal` route serves only this way), or answer it (edge.respond). A changed path that leaves the
 * route's prefix is sent to the origin whole (after the origin URL's base path). A failure answers 500, or, with
 * on_error: continue, the request goes on as if the hook had not run; either way the error and its Lua traceback go to
 * the error log with the request id.
 *
 * on_response(req, res) runs on a function's answer (res.body is there) and on the head of a URL origin's answer
 * (res.body is nil; assigning it replaces the origin's body). What it sets (status, headers, body) is what the client
 * gets. A failure answers 500 (or with on_error: continue, the answer goes on unchanged). On a caching route it runs in
 * the cache fill instead (cfill.c: once per origin answer, before the cache judges it; res.ttl, res.max_ttl and
 * res.cacheable steer the cache).
 *
 * A run allocates from the request's pool; one that waits gets a px_lrun_t driver, freed with the request (a run still
 * waiting is cancelled then).
 */
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include "proxy/internal.h"

typedef struct px_hook_req {
    h2o_req_t *req;
    px_req_t *st;
    px_origin_t *origin;
    px_rq_t view;
    hooks_outcome_t out;
} px_hook_req_t;

static void on_pool_gone(void *p)
{
    px_lrun_t **lr = p;
    px_lrun_free(*lr);
    *lr = NULL;
}

px_lrun_t **px_hook_lrun_slot(h2o_req_t *req)
{
    px_lrun_t **slot = h2o_mem_alloc_shared(&req->pool, sizeof(*slot), on_pool_gone);
    *slot = NULL;
    return slot;
}

hooks_kv_t *px_hook_headers_kv(h2o_req_t *req)
{
    hooks_kv_t *kv = h2o_mem_alloc_pool(&req->pool, sizeof(*kv) * (req->headers.size + 1));

    for (size_t i = 0; i != req->headers.size; ++i) {
        const h2o_header_t *h = req->headers.entries + i;
        kv[i] = (hooks_kv_t){h->name->base, h->name->len, h->value.base, h->value.len};
    }
    return kv;
}

hooks_kv_t *px_hook_params_kv(h2o_req_t *req, const px_match_t *m)
{
    hooks_kv_t *kv = h2o_mem_alloc_pool(&req->pool, sizeof(*kv) * (m->nparams + 1));

    for (size_t i = 0; i != m->nparams; ++i)
        kv[i] = (hooks_kv_t){m->params[i].name, strlen(m->params[i].name), m->params[i].value, m->params[i].value_len};
    return kv;
}

/* hooks_request_t.complete: what a hook reads only when it asks for it. */
static void complete_view(hooks_request_t *rq)
{
    px_rq_t *v = H2O_STRUCT_FROM_MEMBER(px_rq_t, rq, rq);
    h2o_req_t *req = v->req;
    px_req_t *st = v->st;
    char ip[NI_MAXHOST];
    size_t iplen = px_client_ip(req, ip);

    rq->headers = px_hook_headers_kv(req);
    rq->nheaders = req->headers.size;
    rq->params = px_hook_params_kv(req, st->match);
    rq->nparams = st->match->nparams;
    rq->body = req->entity.base;
    rq->body_len = req->entity.base != NULL ? req->entity.len : 0;
    rq->client_ip = h2o_strdup(&req->pool, ip, iplen).base;
    if (st->gate != NULL) {
        if (st->gate->claims.len != 0) {
            rq->claims_json = st->gate->claims.base;
            rq->claims_len = st->gate->claims.len;
        }
        if (st->gate->key != NULL)
            rq->api_key_id = st->gate->key->id;
    }
}

void px_hook_request_view(h2o_req_t *req, px_req_t *st, px_rq_t *v)
{
    hooks_request_t *rq = &v->rq;
    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;

    /* field by field: GCC makes a compound literal of this size a `rep stos`, slow to start for ~200 bytes */
    v->req = req;
    v->st = st;
    rq->method = req->method.base;
    rq->method_len = req->method.len;
    rq->scheme = req->scheme == &H2O_URL_SCHEME_HTTPS ? "https" : "http";
    rq->host = req->authority.base;
    rq->host_len = req->authority.len;
    rq->path = req->path.base;
    rq->path_len = plen;
    rq->query = req->query_at != SIZE_MAX ? req->path.base + req->query_at + 1 : NULL;
    rq->query_len = req->query_at != SIZE_MAX ? req->path.len - req->query_at - 1 : 0;
    rq->route = st->match->route->path;
    rq->request_id = h2o_strdup(&req->pool, st->request_id.base, st->request_id.len).base;
    /* what complete_view fills in, when a hook reads it */
    rq->headers = NULL;
    rq->nheaders = 0;
    rq->params = NULL;
    rq->nparams = 0;
    rq->body = NULL;
    rq->body_len = 0;
    rq->client_ip = NULL;
    rq->claims_json = NULL;
    rq->claims_len = 0;
    rq->api_key_id = NULL;
    rq->complete = complete_view;
}

void px_hook_add_headers(h2o_req_t *req, const hooks_kv_t *kv, size_t n)
{
    for (size_t i = 0; i != n; ++i) {
        const hooks_kv_t *h = kv + i;
        if (h2o_memis(h->name, h->name_len, H2O_STRLIT("content-length")) ||
            px_drop_response_field(h2o_iovec_init(h->name, h->name_len)))
            continue;
        h2o_add_header_by_str(&req->pool, &req->res.headers, h->name, h->name_len, 1, NULL, h->value, h->value_len);
    }
}

void px_hook_send_answer(h2o_req_t *req, px_req_t *st, const hooks_response_t *res)
{
    static h2o_generator_t generator = {NULL, NULL};

    st->from_origin = 1; /* the script's answer, errors included, is sent as it is */
    req->res.status = res->status;
    req->res.reason = "OK";
    px_hook_add_headers(req, res->headers, res->nheaders);
    req->res.content_length = res->body_len;
    h2o_start_response(req, &generator);
    h2o_iovec_t body = h2o_iovec_init(res->body, res->body_len);
    int is_head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")); /* the length, not the bytes */
    h2o_send(req, &body, res->body_len != 0 && !is_head ? 1 : 0, H2O_SEND_STATE_FINAL);
}

void px_hook_log_failure(px_req_t *st, const char *what, const char *file, const char *err)
{
    fprintf(stderr, "edgeproxy: [%.*s] %s %s failed: %s\n", (int)st->request_id.len, st->request_id.base, what, file,
            err != NULL ? err : "(no message)");
}

/* The origin of the route of this request's host whose path is `path` as written, or NULL. */
static px_origin_t *origin_named(px_server_t *srv, h2o_req_t *req, const char *path)
{
    const conf_host_t *host = px_router_host(srv->router, req->authority.base, req->authority.len);

    if (host == NULL)
        return NULL;
    for (size_t i = 0; i != srv->nroutes; ++i) {
        const conf_route_t *r = srv->origins[i].route;
        if (strcmp(r->path, path) == 0 && r >= host->routes && r < host->routes + host->nroutes)
            return srv->origins + i;
    }
    return NULL;
}

/* Applies what on_request changed; returns the origin to go on with, or NULL when it answered (500). */
static px_origin_t *apply(px_hook_req_t *h, const hooks_request_changes_t *c)
{
    h2o_req_t *req = h->req;
    px_req_t *st = h->st;
    px_origin_t *origin = h->origin;

    if (c->origin != NULL && (origin = origin_named(px_thread_of(req)->srv, req, c->origin)) == NULL) {
        px_hook_log_failure(st, "request hook", st->match->route->hooks.request_file, "req.origin names no route of this host");
        px_send_error(req, 500, "Internal Server Error", "The request hook failed");
        return NULL;
    }
    if (origin->route->origin.kind == CONF_ORIGIN_STATIC && origin != h->origin) {
        px_hook_log_failure(st, "request hook", st->match->route->hooks.request_file, "req.origin names a static route");
        px_send_error(req, 500, "Internal Server Error", "The request hook failed");
        return NULL;
    }
    if (c->path != NULL || c->query != NULL) {
        size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
        h2o_iovec_t path = c->path != NULL ? h2o_iovec_init(c->path, c->path_len) : h2o_iovec_init(req->path.base, plen);
        h2o_iovec_t query = c->query != NULL ? h2o_iovec_init(c->query, c->query_len)
                            : req->query_at != SIZE_MAX
                                ? h2o_iovec_init(req->path.base + req->query_at + 1, req->path.len - req->query_at - 1)
                                : h2o_iovec_init(NULL, 0);
        int has_query = c->query != NULL ? c->query_len != 0 : req->query_at != SIZE_MAX;
        h2o_iovec_t full = has_query ? h2o_concat(&req->pool, path, h2o_iovec_init(H2O_STRLIT("?")), query)
                                     : h2o_strdup(&req->pool, path.base, path.len);
        size_t query_at, *norm_indexes = NULL;
        req->path = full;
        req->path_normalized = h2o_url_normalize_path(&req->pool, full.base, full.len, &query_at, &norm_indexes);
        req->query_at = query_at;
        req->norm_indexes = norm_indexes;
        const conf_route_t *route = st->match->route;
        if (!route->is_pattern && st->match->prefix_len != 0 &&
            !(req->path_normalized.len >= st->match->prefix_len &&
              memcmp(req->path_normalized.base, route->path, st->match->prefix_len) == 0)) {
            px_match_t *m = h2o_mem_alloc_pool(&req->pool, sizeof(*m));
            *m = *st->match;
            m->prefix_len = 0; /* the path left the route's prefix: the origin gets it whole */
            st->match = m;
        }
    }
    if (c->headers_changed) {
        memset(&req->headers, 0, sizeof(req->headers));
        for (size_t i = 0; i != c->nheaders; ++i)
            h2o_add_header_by_str(&req->pool, &req->headers, c->headers[i].name, c->headers[i].name_len, 1, NULL,
                                  c->headers[i].value, c->headers[i].value_len);
    }
    if (c->cache_key != NULL)
        st->cache_key_extra = h2o_iovec_init(c->cache_key, c->cache_key_len);
    return origin;
}

static void on_request_done(void *data, hooks_status_t status)
{
    px_hook_req_t *h = data;
    h2o_req_t *req = h->req;
    px_req_t *st = h->st;
    const conf_route_t *route = st->match->route;
    px_origin_t *origin;

    st->hook_ran = 1;
    if (status != HOOKS_DONE) {
        px_hook_log_failure(st, "request hook", route->hooks.request_file, h->out.error);
        if (route->hooks.on_error_continue)
            px_dispatch(req, st, h->origin);
        else
            px_send_error(req, 500, "Internal Server Error", "The request hook failed");
        return;
    }
    if (h->out.responded) {
        px_hook_send_answer(req, st, &h->out.response);
        return;
    }
    if ((origin = apply(h, &h->out.request)) != NULL)
        px_dispatch(req, st, origin);
}

void px_hook_request(h2o_req_t *req, px_req_t *st, px_origin_t *origin)
{
    px_thread_t *th = px_thread_of(req);
    px_hook_req_t *h = h2o_mem_alloc_pool(&req->pool, sizeof(*h));
    hooks_run_t *run;
    hooks_status_t status;

    px_functions_refresh(th);
    h->req = req;
    h->st = st;
    h->origin = origin;
    px_hook_request_view(req, st, &h->view);
    /* origin is the route's own (px_dispatch runs the hook before anything may pick another) */
    status = hooks_start_request(th->vm, origin->req_script, &h->view.rq, px_lrun_allocator(), &req->pool, &h->out, &run);
    px_lrun_for_request(req, status, run, on_request_done, h);
}

/* ---- the response hook ---- */

typedef struct px_hook_res {
    h2o_req_t *req;
    px_req_t *st;
    px_hook_res_cb cb;
    void *data;
    px_rq_t view;
    hooks_response_t res;
    hooks_outcome_t out;
} px_hook_res_t;

static void on_response_done(void *data, hooks_status_t status)
{
    px_hook_res_t *h = data;
    const conf_route_t *route = h->st->match->route;

    if (status != HOOKS_DONE) {
        px_hook_log_failure(h->st, "response hook", route->hooks.response_file, h->out.error);
        h->cb(h->req, h->data, NULL, !route->hooks.on_error_continue);
        return;
    }
    h->cb(h->req, h->data, &h->out.changes, 0);
}

void px_hook_response(h2o_req_t *req, px_req_t *st, const char *body, size_t body_len, px_hook_res_cb cb, void *data)
{
    px_thread_t *th = px_thread_of(req);
    px_hook_res_t *h = h2o_mem_alloc_pool(&req->pool, sizeof(*h));
    hooks_kv_t *kv = h2o_mem_alloc_pool(&req->pool, sizeof(*kv) * (req->res.headers.size + 1));
    hooks_run_t *run;
    hooks_status_t status;

    px_functions_refresh(th);
    h->req = req; /* field by field: view, res and out are set below (a compound literal would zero them first) */
    h->st = st;
    h->cb = cb;
    h->data = data;
    px_hook_request_view(req, st, &h->view);
    for (size_t i = 0; i != req->res.headers.size; ++i) {
        const h2o_header_t *e = req->res.headers.entries + i;
        kv[i] = (hooks_kv_t){e->name->base, e->name->len, e->value.base, e->value.len};
    }
    h->res = (hooks_response_t){req->res.status, kv, req->res.headers.size, (char *)body, body_len};
    status = hooks_start_response(th->vm, th->srv->origins[st->match->route_id].res_script, &h->view.rq, &h->res,
                                  px_lrun_allocator(), &req->pool, &h->out, &run);
    px_lrun_for_request(req, status, run, on_response_done, h);
}

void px_hook_apply_response(h2o_req_t *req, const hooks_response_changes_t *c)
{
    if (c->status != 0)
        req->res.status = c->status;
    if (c->headers_changed) {
        memset(&req->res.headers, 0, sizeof(req->res.headers));
        px_hook_add_headers(req, c->headers, c->nheaders);
    }
}
