/*
 * upstream: forwarding a client's request to a URL origin, and streaming the answer back.
 *
 * The request for the origin is built from the client's (path rewriting, header commands, X-Forwarded-*, Via, hop-by-hop
 * fields dropped); fetch.c carries it. The answer's head becomes the response's; its body goes to the client as it
 * arrives, with back-pressure: while PX_UPSTREAM_HIGH_WATER bytes wait for a slow client, the origin is not read.
 * Errors before the head become our JSON 502/504; after it, the response is cut short (H2O_SEND_STATE_ERROR).
 *
 * Each forwarded request is a px_upstream_t in the request's pool; its fetch is cancelled if the pool goes first.
 */
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include "proxy/internal.h"

#define PX_UPSTREAM_HIGH_WATER (1 << 22) /* stop reading the origin while this much waits for the client */

typedef struct px_upstream {
    h2o_generator_t super;
    px_fetch_t fetch;
    h2o_req_t *req;
    px_req_t *st;
    h2o_buffer_t *body;        /* body bytes not yet handed to h2o_send */
    h2o_buffer_t *sending;     /* bytes handed to h2o_send, until proceed */
    unsigned active : 1;       /* the fetch has not ended */
    unsigned eos : 1;          /* the whole body arrived */
    unsigned failed : 1;       /* the body ended early */
    unsigned in_flight : 1;    /* h2o_send called, proceed not yet */
    unsigned hook_pending : 1; /* the response hook runs: nothing is sent yet */
    unsigned replaced : 1;     /* the response hook replaced the body: the origin's is dropped */
} px_upstream_t;

static int is_removed(const conf_header_cmds_t *cmds, const char *name, size_t len)
{
    for (size_t i = 0; i != cmds->nremove; ++i)
        if (strlen(cmds->remove[i]) == len && memcmp(cmds->remove[i], name, len) == 0)
            return 1;
    return 0;
}

/* The request path for the origin: the client's, or with the route's prefix replaced by the origin URL's base path. */
static h2o_iovec_t upstream_path(h2o_req_t *req, px_req_t *st, px_origin_t *origin)
{
    const conf_route_t *route = st->match->route;
    const char *base = origin->route->origin.base_path;
    size_t baselen = strlen(base);
    h2o_iovec_t rest, query = {NULL, 0};

    if (baselen == 0)
        return req->path;
    if (route->is_pattern) {
        rest = h2o_iovec_init(req->path_normalized.base, req->path_normalized.len);
    } else {
        size_t skip = st->match->prefix_len;
        if (skip != 0 && route->path[skip - 1] == '/')
            --skip; /* keep the slash: "/p/" + "x" -> "/base" + "/x" */
        rest = h2o_iovec_init(req->path_normalized.base + skip, req->path_normalized.len - skip);
    }
    rest = h2o_uri_escape(&req->pool, rest.base, rest.len, "/@:");
    if (req->query_at != SIZE_MAX)
        query = h2o_iovec_init(req->path.base + req->query_at, req->path.len - req->query_at);
    return h2o_concat(&req->pool, h2o_iovec_init(base, baselen), rest, query);
}

/* Conditional and range fields, which a cache fill leaves out: it wants the whole representation. */
static int is_conditional(const h2o_token_t *token)
{
    return token == H2O_TOKEN_IF_NONE_MATCH || token == H2O_TOKEN_IF_MODIFIED_SINCE || token == H2O_TOKEN_IF_MATCH ||
           token == H2O_TOKEN_IF_UNMODIFIED_SINCE || token == H2O_TOKEN_IF_RANGE || token == H2O_TOKEN_RANGE;
}

h2o_iovec_t px_origin_request(h2o_req_t *req, px_req_t *st, px_origin_t *origin, int for_fill, h2o_iovec_t extra)
{
    const conf_route_t *route = st->match->route;
    const conf_header_cmds_t *cmds = &route->request_headers;
    h2o_iovec_t path = upstream_path(req, st, origin), connection = {NULL, 0}, xff = {NULL, 0}, via = {NULL, 0};
    h2o_iovec_t host = origin->route->origin.preserve_host ? req->authority : origin->authority;
    char peer[NI_MAXHOST];
    size_t peerlen, cap, o = 0, i;
    char *buf;

    peerlen = px_client_ip(req, peer);

    cap = req->method.len + path.len + host.len + peerlen + req->entity.len + extra.len + 512;
    for (i = 0; i != req->headers.size; ++i) {
        cap += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
        if (req->headers.entries[i].name == &H2O_TOKEN_CONNECTION->buf)
            connection = req->headers.entries[i].value;
    }
    for (i = 0; i != cmds->nadd; ++i)
        cap += strlen(cmds->add[i].name) + strlen(cmds->add[i].value) + 4;
    buf = h2o_mem_alloc_pool(&req->pool, cap);

#define APPEND(s, l)                                                                                                               \
    do {                                                                                                                           \
        memcpy(buf + o, (s), (l));                                                                                                 \
        o += (l);                                                                                                                  \
    } while (0)
#define APPEND_LIT(lit) APPEND(lit, sizeof(lit) - 1)

    if (for_fill)
        APPEND_LIT("GET"); /* a HEAD is answered from the stored GET */
    else
        APPEND(req->method.base, req->method.len);
    APPEND_LIT(" ");
    APPEND(path.base, path.len);
    APPEND_LIT(" HTTP/1.1\r\nhost: ");
    APPEND(host.base, host.len);
    APPEND_LIT("\r\nconnection: keep-alive\r\n");
    if (req->entity.base != NULL && !for_fill)
        o += (size_t)sprintf(buf + o, "content-length: %zu\r\n", req->entity.len);
    if (extra.len != 0)
        APPEND(extra.base, extra.len);
    for (i = 0; i != req->headers.size; ++i) {
        const h2o_header_t *h = req->headers.entries + i;
        if (h2o_iovec_is_token(h->name)) {
            const h2o_token_t *token = (void *)h->name;
            if (token->proxy_should_drop_for_req || token == H2O_TOKEN_CONTENT_LENGTH || token == H2O_TOKEN_EXPECT ||
                token == H2O_TOKEN_HOST || (for_fill && is_conditional(token)))
                continue;
            if (token == H2O_TOKEN_X_FORWARDED_FOR) {
                xff = xff.len == 0 ? h->value : h2o_concat(&req->pool, xff, h2o_iovec_init(H2O_STRLIT(", ")), h->value);
                continue;
            }
            if (token == H2O_TOKEN_VIA) {
                via = via.len == 0 ? h->value : h2o_concat(&req->pool, via, h2o_iovec_init(H2O_STRLIT(", ")), h->value);
                continue;
            }
        }
        if (h2o_lcstris(h->name->base, h->name->len, H2O_STRLIT("x-forwarded-proto")) ||
            h2o_lcstris(h->name->base, h->name->len, H2O_STRLIT("proxy-connection")) ||
            (connection.len != 0 && px_header_has_token(connection, h->name->base, h->name->len)) ||
            is_removed(cmds, h->name->base, h->name->len))
            continue;
        APPEND(h->name->base, h->name->len);
        APPEND_LIT(": ");
        APPEND(h->value.base, h->value.len);
        APPEND_LIT("\r\n");
    }
    for (i = 0; i != cmds->nadd; ++i) {
        APPEND(cmds->add[i].name, strlen(cmds->add[i].name));
        APPEND_LIT(": ");
        APPEND(cmds->add[i].value, strlen(cmds->add[i].value));
        APPEND_LIT("\r\n");
    }
    APPEND_LIT("x-forwarded-proto: ");
    APPEND(req->scheme->name.base, req->scheme->name.len);
    APPEND_LIT("\r\nx-forwarded-for: ");
    if (xff.len != 0) {
        APPEND(xff.base, xff.len);
        APPEND_LIT(", ");
    }
    APPEND(peer, peerlen);
    APPEND_LIT("\r\nvia: ");
    if (via.len != 0) {
        APPEND(via.base, via.len);
        APPEND_LIT(", ");
    }
    if (req->version >= 0x200)
        APPEND_LIT("2 edgeproxy\r\n\r\n");
    else
        APPEND_LIT("1.1 edgeproxy\r\n\r\n");
    if (req->entity.base != NULL && !for_fill)
        APPEND(req->entity.base, req->entity.len);
#undef APPEND
#undef APPEND_LIT
    return h2o_iovec_init(buf, o);
}

static void record_upstream_time(px_upstream_t *self)
{
    if (self->st->upstream_ms < 0)
        self->st->upstream_ms = self->fetch.head_ms;
}

static void do_send(px_upstream_t *self)
{
    h2o_buffer_t *tmp;
    h2o_iovec_t vec;

    if (self->in_flight || self->hook_pending)
        return;
    assert(self->sending->size == 0);
    tmp = self->sending;
    self->sending = self->body;
    self->body = tmp;
    vec = h2o_iovec_init(self->sending->bytes, self->sending->size);
    if (self->eos || self->failed) {
        h2o_send(self->req, &vec, vec.len != 0, self->failed ? H2O_SEND_STATE_ERROR : H2O_SEND_STATE_FINAL);
        return;
    }
    if (vec.len == 0)
        return; /* nothing new: wait for the origin (never send 0 buffers IN_PROGRESS) */
    self->in_flight = 1;
    h2o_send(self->req, &vec, 1, H2O_SEND_STATE_IN_PROGRESS);
}

static void do_proceed(h2o_generator_t *generator, h2o_req_t *req)
{
    px_upstream_t *self = (void *)generator;
    (void)req;

    h2o_buffer_consume(&self->sending, self->sending->size);
    self->in_flight = 0;
    if (self->active && self->body->size < PX_UPSTREAM_HIGH_WATER / 2)
        px_fetch_resume(&self->fetch);
    do_send(self);
}

static void stop(px_upstream_t *self)
{
    if (self->active) {
        self->active = 0;
        px_fetch_cancel(&self->fetch);
    }
}

static void do_stop(h2o_generator_t *generator, h2o_req_t *req)
{
    (void)req;
    stop((px_upstream_t *)generator);
}

/* The response hook is over: the response starts as it left it. */
static void on_hooked(h2o_req_t *req, void *data, const hooks_response_changes_t *c, int fail)
{
    px_upstream_t *self = data;

    self->hook_pending = 0;
    if (fail) {
        stop(self);
        memset(&req->res.headers, 0, sizeof(req->res.headers));
        self->st->from_origin = 0;
        px_send_error(req, 500, "Internal Server Error", "The response hook failed");
        return;
    }
    if (c != NULL) {
        px_hook_apply_response(req, c);
        if (c->body_changed) {
            static h2o_generator_t generator = {NULL, NULL};
            h2o_iovec_t body = h2o_iovec_init(c->body, c->body_len);
            stop(self);
            req->res.content_length = c->body_len;
            h2o_start_response(req, &generator);
            h2o_send(req, &body, c->body_len != 0 && !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")),
                     H2O_SEND_STATE_FINAL);
            return;
        }
    }
    h2o_start_response(req, &self->super);
    if (self->active)
        px_fetch_resume(&self->fetch);
    do_send(self);
}

/* Copies the head into the response (it points into the socket buffer) and starts the response. */
static void on_head(px_fetch_t *f, const px_fetch_head_t *head)
{
    px_upstream_t *self = f->data;
    h2o_req_t *req = self->req;

    record_upstream_time(self);
    if (self->st->cache_invalidate && head->status < 400)
        px_cache_invalidate(req, head);
    req->res.status = head->status;
    req->res.reason = h2o_strdup(&req->pool, head->reason.base, head->reason.len).base;
    req->res.content_length = head->content_length;
    for (size_t i = 0; i != head->nheaders; ++i) {
        const struct phr_header *h = head->headers + i;
        h2o_iovec_t name = h2o_strdup(&req->pool, h->name, h->name_len), value;
        const h2o_token_t *token;
        h2o_strtolower(name.base, name.len);
        if ((token = h2o_lookup_token(name.base, name.len)) != NULL) {
            /* hop-by-hop fields, and the framing, which h2o redoes for the client */
            if (token->proxy_should_drop_for_res || token == H2O_TOKEN_SERVER || token == H2O_TOKEN_CONTENT_LENGTH)
                continue;
            value = h2o_strdup(&req->pool, h->value, h->value_len);
            h2o_add_header(&req->pool, &req->res.headers, token, h2o_strdup(&req->pool, h->name, h->name_len).base, value.base,
                           value.len);
        } else {
            value = h2o_strdup(&req->pool, h->value, h->value_len);
            h2o_add_header_by_str(&req->pool, &req->res.headers, name.base, name.len, 0,
                                  h2o_strdup(&req->pool, h->name, h->name_len).base, value.base, value.len);
        }
    }
    self->st->from_origin = 1;
    self->super.proceed = do_proceed;
    self->super.stop = do_stop;
    if (self->st->match->route->hooks.response_file != NULL) {
        self->hook_pending = 1;
        px_fetch_pause(f);
        px_hook_response(req, self->st, NULL, 0, on_hooked, self);
        return;
    }
    h2o_start_response(req, &self->super);
}

static void on_body(px_fetch_t *f, const char *bytes, size_t len)
{
    px_upstream_t *self = f->data;
    h2o_iovec_t dst = h2o_buffer_reserve(&self->body, len);

    memcpy(dst.base, bytes, len);
    self->body->size += len;
    if (self->body->size >= PX_UPSTREAM_HIGH_WATER)
        px_fetch_pause(f);
    do_send(self);
}

static void on_end(px_fetch_t *f, const char *err, int timeout)
{
    px_upstream_t *self = f->data;
    h2o_req_t *req = self->req;

    self->active = 0;
    record_upstream_time(self);
    if (err == NULL) {
        self->eos = 1;
        do_send(self);
        return;
    }
    h2o_req_log_error(req, "upstream", "%s: %s", f->origin->route->origin.url, err);
    if (f->got_head) { /* the response started: cut it short */
        self->failed = 1;
        do_send(self);
    } else if (timeout) {
        px_send_error(req, 504, "Gateway Timeout", "Origin timed out");
    } else {
        px_send_error(
            req, 502, "Bad Gateway",
            h2o_concat(&req->pool, h2o_iovec_init(H2O_STRLIT("Origin error: ")), h2o_iovec_init(err, strlen(err) + 1)).base);
    }
}

static const px_fetch_callbacks_t callbacks = {on_head, on_body, on_end};

static void on_dispose(void *p)
{
    px_upstream_t *self = p;
    stop(self);
    h2o_buffer_dispose(&self->sending);
    h2o_buffer_dispose(&self->body);
}

static int is_idempotent(h2o_iovec_t method)
{
    return h2o_memis(method.base, method.len, H2O_STRLIT("GET")) || h2o_memis(method.base, method.len, H2O_STRLIT("HEAD")) ||
           h2o_memis(method.base, method.len, H2O_STRLIT("OPTIONS")) || h2o_memis(method.base, method.len, H2O_STRLIT("PUT")) ||
           h2o_memis(method.base, method.len, H2O_STRLIT("DELETE"));
}

void px_upstream_forward(h2o_req_t *req, px_req_t *st, px_origin_t *origin)
{
    if (origin->route->origin.kind == CONF_ORIGIN_FUNCTION) { /* a caching function route's bypass and unsafe methods */
        px_function_handle(req, st, origin);
        return;
    }
    px_upstream_t *self = h2o_mem_alloc_shared(&req->pool, sizeof(*self), on_dispose);

    memset(self, 0, sizeof(*self));
    self->req = req;
    self->st = st;
    h2o_buffer_init(&self->sending, &h2o_socket_buffer_prototype);
    h2o_buffer_init(&self->body, &h2o_socket_buffer_prototype);
    self->active = 1;
    px_fetch_start(&self->fetch, px_thread_of(req), (size_t)(origin - px_thread_of(req)->srv->origins),
                   px_origin_request(req, st, origin, 0, h2o_iovec_init(NULL, 0)),
                   h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")), is_idempotent(req->method), &callbacks, self);
}
