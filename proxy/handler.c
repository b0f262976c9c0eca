/*
 * handler: the one h2o handler every request enters. It runs the request's stages in order and hands the request to
 * its origin:
 *
 *   request id → validate (400) → route (404) → CORS preflight → method (405) → body size (413) →
 *   gateway: API key (403), JWT (401), throttles and quota (429) → request hook (Lua) → cache →
 *   origin (upstream | static | function | store: dynamo.c, rest.c) → response hook (Lua, hook.c)
 */
#include <stdio.h>
#include <string.h>
#include "proxy/internal.h"

typedef struct px_handler {
    h2o_handler_t super;
    px_server_t *srv;
} px_handler_t;

/* Dispose callback of the in-flight counter that lives in the request's pool. */
static void on_request_done(void *p)
{
    px_thread_t *th = *(px_thread_t **)p;
    --th->inflight;
}

/* A request we will not route: returns the reason, or NULL when it is well-formed. */
static const char *malformed(px_server_t *srv, h2o_req_t *req)
{
    h2o_iovec_t a = req->input.authority;
    size_t i, end = req->query_at != SIZE_MAX ? req->query_at : req->path.len;

    /* h2o moves Host to input.authority and, when there is none, puts its hostconf's own name there (a pointer into the
     * hostconf, never into the request): RFC 9112 3.2 requires Host in HTTP/1.1 */
    if (req->version == 0x101 &&
        (a.base == NULL || a.base == srv->hostconf->authority.hostport.base || a.base == srv->hostconf->authority.host.base))
        return "Bad Request: missing Host header";
    if (req->path.len == 0 || req->path.base[0] != '/')
        return "Bad Request: the request target must be an absolute path";
    for (i = 0; i != req->path.len; ++i) {
        unsigned char c = (unsigned char)req->path.base[i];
        if (c <= 0x20 || c == 0x7f)
            return "Bad Request: invalid character in the request target";
        if (c == '%' && i < end &&
            !(i + 2 < req->path.len && px_hex_digit(req->path.base[i + 1]) >= 0 && px_hex_digit(req->path.base[i + 2]) >= 0))
            return "Bad Request: invalid percent-encoding in the path";
    }
    return NULL;
}

const char *px_methods_list(h2o_mem_pool_t *pool, unsigned methods)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{CONF_M_GET, "GET"},     {CONF_M_HEAD, "HEAD"},     {CONF_M_POST, "POST"},      {CONF_M_PUT, "PUT"},
                 {CONF_M_PATCH, "PATCH"}, {CONF_M_DELETE, "DELETE"}, {CONF_M_OPTIONS, "OPTIONS"}};
    char *buf = h2o_mem_alloc_pool(pool, 64);
    size_t o = 0;

    for (size_t i = 0; i != sizeof(names) / sizeof(names[0]); ++i) {
        if ((methods & names[i].bit) == 0)
            continue;
        o += (size_t)sprintf(buf + o, "%s%s", o != 0 ? ", " : "", names[i].name);
    }
    buf[o] = '\0';
    return buf;
}

static int on_req(h2o_handler_t *_self, h2o_req_t *req)
{
    px_handler_t *self = (void *)_self;
    px_thread_t *th = px_thread_of(req);
    px_req_t *st = px_req_get(req);
    px_match_t *m;
    const char *bad;
    size_t plen;

    *(px_thread_t **)h2o_mem_alloc_shared(&req->pool, sizeof(px_thread_t *), on_request_done) = th;
    ++th->inflight;

    if ((bad = malformed(self->srv, req)) != NULL) {
        req->http1_is_persistent = 0;
        px_send_error(req, 400, "Bad Request", bad);
        return 0;
    }

    m = h2o_mem_alloc_pool(&req->pool, sizeof(*m));
    plen = req->path_normalized.len;
    if (px_router_match(self->srv->router, req->authority.base, req->authority.len, req->path_normalized.base, plen, m) != 0) {
        px_send_error(req, 404, "Not Found", "No route for this request");
        return 0;
    }
    if (m->route->internal) { /* reached only through a request hook's req.origin */
        px_send_error(req, 404, "Not Found", "No route for this request");
        return 0;
    }
    st->match = m;
    if (px_gateway_preflight(req, st))
        return 0;

    if (m->route->methods != 0 && (m->route->methods & conf_method_bit(req->method.base, req->method.len)) == 0) {
        const char *allow = px_methods_list(&req->pool, m->route->methods);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow, strlen(allow));
        px_send_error(req, 405, "Method Not Allowed", "Method not allowed on this route");
        return 0;
    }
    if (req->entity.base != NULL && req->entity.len > m->route->max_body_size) {
        req->http1_is_persistent = 0;
        px_send_error(req, 413, "Request Entity Too Large", "Request body too large");
        return 0;
    }
    if (px_gateway_admit(self->srv, req, st))
        return 0;

    px_dispatch(req, st, self->srv->origins + m->route_id);
    return 0;
}

void px_dispatch(h2o_req_t *req, px_req_t *st, px_origin_t *origin)
{
    const conf_route_t *route = st->match->route;

    if (route->hooks.request_file != NULL && !st->hook_ran) {
        px_hook_request(req, st, origin); /* comes back here */
        return;
    }
    switch (origin->route->origin.kind) {
    case CONF_ORIGIN_URL:
        if (route->cache.enabled)
            px_cache_handle(req, st, origin);
        else
            px_upstream_forward(req, st, origin);
        return;
    case CONF_ORIGIN_STATIC:
        /* h2o's file handler maps the path below its pathconf's path: give it the route's */
        req->pathconf = &origin->pathconf;
        if (origin->file_handler->on_req(origin->file_handler, req) != 0)
            px_send_error(req, 404, "Not Found", "Not Found");
        return;
    case CONF_ORIGIN_FUNCTION:
        if (route->cache.enabled)
            px_cache_handle(req, st, origin); /* misses run the function through a fill (px_function_fill) */
        else
            px_function_handle(req, st, origin);
        return;
    case CONF_ORIGIN_STORE:
        if (origin->route->origin.store_kind == CONF_STORE_REST)
            px_rest_handle(req, st, origin);
        else
            px_dynamo_handle(req, st, origin);
        return;
    default:
        px_send_error(req, 502, "Bad Gateway", "The route has no origin");
        return;
    }
}

void px_handler_register(px_server_t *srv, h2o_pathconf_t *pathconf)
{
    px_handler_t *h = (void *)h2o_create_handler(pathconf, sizeof(*h));
    h->super.on_req = on_req;
    h->srv = srv;
}
