/*
 * upstream: HTTP(S) origins, fetched with h2o_http1client over a keep-alive socket pool.
 *
 * We do not use h2o's proxy handler: its errors are plain text, its timeout is per I/O phase only, and the cache will
 * need a fetch that it controls. Each forwarded request is a px_upstream_t in the request's pool:
 *
 *   forward ──connect (pool)──► on_connect: hand over the request bytes
 *           ──────────────────► on_head: copy status and headers, start the response      (deadline: 504 before this)
 *           ──────────────────► on_body*: stream what arrived; swap buffers while the client sends the previous batch
 *
 * Timeouts: the route's timeout is a total deadline from the start of the fetch to the response head (504 when it
 * passes), and the idle timeout of every later read of the body (the response is then cut short).
 */
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include "proxy/internal.h"

typedef struct px_upstream {
    h2o_generator_t super;
    h2o_req_t *req;
    px_req_t *st;
    px_origin_t *origin;
    h2o_http1client_t *client; /* NULL once the fetch ended (completed, failed or cancelled) */
    h2o_iovec_t reqbuf;        /* request line, headers and body, in req->pool */
    h2o_timeout_entry_t deadline;
    h2o_buffer_t *sending;    /* bytes handed to h2o_send, until proceed */
    h2o_buffer_t *rest;       /* what the client had not been sent when the fetch ended */
    unsigned in_flight : 1;   /* h2o_send called, proceed not yet */
    unsigned started : 1;     /* response head passed to the client */
    unsigned body_failed : 1; /* the origin's body ended early */
} px_upstream_t;

int px_upstream_init(px_server_t *srv, px_origin_t *origin, char *err, size_t errlen)
{
    const conf_origin_t *o = &origin->route->origin;
    int default_port = o->https ? 443 : 80;
    char buf[300];
    int n;
    (void)srv;

    if (o->https && px_tls_origin_ctx(o, &origin->ssl_ctx, err, errlen) != 0)
        return -1;
    if (o->port == default_port)
        n = snprintf(buf, sizeof(buf), strchr(o->host, ':') != NULL ? "[%s]" : "%s", o->host);
    else
        n = snprintf(buf, sizeof(buf), strchr(o->host, ':') != NULL ? "[%s]:%u" : "%s:%u", o->host, (unsigned)o->port);
    origin->authority = h2o_strdup(NULL, buf, (size_t)n);
    h2o_socketpool_init_by_hostport(&origin->pool, h2o_iovec_init(o->host, strlen(o->host)), o->port, o->https, SIZE_MAX);
    return 0;
}

void px_upstream_dispose(px_origin_t *origin)
{
    h2o_socketpool_dispose(&origin->pool);
    if (origin->ssl_ctx != NULL)
        SSL_CTX_free(origin->ssl_ctx);
    free(origin->authority.base);
}

void px_upstream_init_thread(px_thread_t *th)
{
    px_server_t *srv = th->srv;
    th->clients = h2o_mem_alloc(sizeof(*th->clients) * (srv->nroutes + 1));
    for (size_t i = 0; i != srv->nroutes; ++i) {
        px_route_client_t *rc = th->clients + i;
        h2o_timeout_init(th->ctx.loop, &rc->timeout, srv->origins[i].route->timeout_ms);
        rc->client_ctx =
            (h2o_http1client_ctx_t){th->ctx.loop, &th->ctx.receivers.hostinfo_getaddr, &rc->timeout, NULL, srv->origins[i].ssl_ctx};
    }
    /* idle pooled connections are expired by a timer on one loop (LIBH2O_NOTES 6.2) */
    if (th->idx == 0)
        for (size_t i = 0; i != srv->nroutes; ++i)
            if (srv->origins[i].route->origin.kind == CONF_ORIGIN_URL)
                h2o_socketpool_set_timeout(&srv->origins[i].pool, th->ctx.loop, 2000);
}

void px_upstream_dispose_thread(px_thread_t *th)
{
    for (size_t i = 0; i != th->srv->nroutes; ++i)
        h2o_timeout_dispose(th->ctx.loop, &th->clients[i].timeout);
    free(th->clients);
}

/* Is `name` one of the comma-separated tokens of a Connection header value? */
static int listed_in(h2o_iovec_t list, const char *name, size_t len)
{
    const char *p = list.base, *end = list.base + list.len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            ++p;
        const char *tok = p;
        while (p < end && *p != ',' && *p != ' ' && *p != '\t')
            ++p;
        if ((size_t)(p - tok) == len && strncasecmp(tok, name, len) == 0)
            return 1;
    }
    return 0;
}

static int is_removed(const conf_header_cmds_t *cmds, const char *name, size_t len)
{
    for (size_t i = 0; i != cmds->nremove; ++i)
        if (strlen(cmds->remove[i]) == len && memcmp(cmds->remove[i], name, len) == 0)
            return 1;
    return 0;
}

/* The request path for the origin: the client's, or with the route's prefix replaced by the origin URL's base path. */
static h2o_iovec_t upstream_path(h2o_req_t *req, px_req_t *st)
{
    const conf_route_t *route = st->match->route;
    const char *base = route->origin.base_path;
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

static h2o_iovec_t build_request(h2o_req_t *req, px_req_t *st, px_origin_t *origin)
{
    const conf_route_t *route = st->match->route;
    const conf_header_cmds_t *cmds = &route->request_headers;
    h2o_iovec_t path = upstream_path(req, st), connection = {NULL, 0}, xff = {NULL, 0}, via = {NULL, 0};
    h2o_iovec_t host = route->origin.preserve_host ? req->authority : origin->authority;
    char peer[NI_MAXHOST];
    size_t peerlen = SIZE_MAX, cap, o = 0, i;
    struct sockaddr_storage ss;
    socklen_t sslen;
    char *buf;

    if ((sslen = req->conn->callbacks->get_peername(req->conn, (void *)&ss)) != 0)
        peerlen = h2o_socket_getnumerichost((void *)&ss, sslen, peer);
    if (peerlen == SIZE_MAX)
        peerlen = 0;

    cap = req->method.len + path.len + host.len + peerlen + req->entity.len + 512;
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

    APPEND(req->method.base, req->method.len);
    APPEND_LIT(" ");
    APPEND(path.base, path.len);
    APPEND_LIT(" HTTP/1.1\r\nhost: ");
    APPEND(host.base, host.len);
    APPEND_LIT("\r\nconnection: keep-alive\r\n");
    if (req->entity.base != NULL)
        o += (size_t)sprintf(buf + o, "content-length: %zu\r\n", req->entity.len);
    for (i = 0; i != req->headers.size; ++i) {
        const h2o_header_t *h = req->headers.entries + i;
        if (h2o_iovec_is_token(h->name)) {
            const h2o_token_t *token = (void *)h->name;
            if (token->proxy_should_drop_for_req || token == H2O_TOKEN_CONTENT_LENGTH || token == H2O_TOKEN_EXPECT ||
                token == H2O_TOKEN_HOST)
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
            (connection.len != 0 && listed_in(connection, h->name->base, h->name->len)) ||
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
    if (req->entity.base != NULL)
        APPEND(req->entity.base, req->entity.len);
#undef APPEND
#undef APPEND_LIT
    return h2o_iovec_init(buf, o);
}

static void stop_fetch(px_upstream_t *self)
{
    if (h2o_timeout_is_linked(&self->deadline))
        h2o_timeout_unlink(&self->deadline);
    if (self->client != NULL) {
        h2o_http1client_cancel(self->client);
        self->client = NULL;
    }
}

static void record_upstream_time(px_upstream_t *self)
{
    struct timeval now;
    if (self->st->upstream_ms >= 0)
        return;
    gettimeofday(&now, NULL);
    self->st->upstream_ms = (double)(now.tv_sec - self->st->upstream_start.tv_sec) * 1000.0 +
                            (double)(now.tv_usec - self->st->upstream_start.tv_usec) / 1000.0;
    if (self->st->upstream_ms < 0)
        self->st->upstream_ms = 0;
}

/* Fails the request before its response started: 504 for a timeout, 502 for anything else. */
static void fail(px_upstream_t *self, const char *errstr)
{
    int timeout = strstr(errstr, "timeout") != NULL;
    record_upstream_time(self);
    h2o_req_log_error(self->req, "upstream", "%s: %s", self->origin->route->origin.url, errstr);
    if (timeout)
        px_send_error(self->req, 504, "Gateway Timeout", "Origin timed out");
    else
        px_send_error(
            self->req, 502, "Bad Gateway",
            h2o_concat(&self->req->pool, h2o_iovec_init(H2O_STRLIT("Origin error: ")), h2o_iovec_init(errstr, strlen(errstr) + 1))
                .base);
}

static void do_send(px_upstream_t *self)
{
    h2o_buffer_t **input = self->client != NULL ? &self->client->sock->input : &self->rest, *tmp;
    h2o_iovec_t vec;

    assert(!self->in_flight && self->sending->size == 0);
    tmp = self->sending;
    self->sending = *input;
    *input = tmp;
    vec = h2o_iovec_init(self->sending->bytes, self->sending->size);
    if (self->client == NULL) {
        h2o_send(self->req, &vec, vec.len != 0, self->body_failed ? H2O_SEND_STATE_ERROR : H2O_SEND_STATE_FINAL);
        return;
    }
    if (vec.len == 0)
        return; /* nothing new: wait for on_body (never send 0 buffers IN_PROGRESS) */
    self->in_flight = 1;
    h2o_send(self->req, &vec, 1, H2O_SEND_STATE_IN_PROGRESS);
}

static void do_proceed(h2o_generator_t *generator, h2o_req_t *req)
{
    px_upstream_t *self = (void *)generator;
    (void)req;
    h2o_buffer_consume(&self->sending, self->sending->size);
    self->in_flight = 0;
    do_send(self);
}

static void do_stop(h2o_generator_t *generator, h2o_req_t *req)
{
    (void)req;
    stop_fetch((px_upstream_t *)generator);
}

static int on_body(h2o_http1client_t *client, const char *errstr)
{
    px_upstream_t *self = client->data;

    if (errstr != NULL) {
        if (errstr != h2o_http1client_error_is_eos) {
            self->body_failed = 1;
            h2o_req_log_error(self->req, "upstream", "%s: %s", self->origin->route->origin.url, errstr);
        }
        /* the client object is freed when we return: take what it read */
        self->rest = client->sock->input;
        h2o_buffer_init(&client->sock->input, &h2o_socket_buffer_prototype);
        self->client = NULL;
    }
    if (!self->in_flight)
        do_send(self);
    return 0;
}

static h2o_http1client_body_cb on_head(h2o_http1client_t *client, const char *errstr, int minor_version, int status,
                                       h2o_iovec_t msg, h2o_header_t *headers, size_t num_headers, int rlen)
{
    px_upstream_t *self = client->data;
    h2o_req_t *req = self->req;
    (void)minor_version;
    (void)rlen;

    if (errstr != NULL && errstr != h2o_http1client_error_is_eos) {
        self->client = NULL;
        if (h2o_timeout_is_linked(&self->deadline))
            h2o_timeout_unlink(&self->deadline);
        fail(self, errstr);
        return NULL;
    }
    h2o_timeout_unlink(&self->deadline);
    record_upstream_time(self);

    /* copy now: the headers point into the socket buffer */
    req->res.status = status;
    req->res.reason = h2o_strdup(&req->pool, msg.base, msg.len).base;
    for (size_t i = 0; i != num_headers; ++i) {
        const h2o_header_t *h = headers + i;
        if (h2o_iovec_is_token(h->name)) {
            const h2o_token_t *token = (void *)h->name;
            if (token->proxy_should_drop_for_res || token == H2O_TOKEN_SERVER)
                continue;
            if (token == H2O_TOKEN_CONTENT_LENGTH) {
                if (req->res.content_length == SIZE_MAX)
                    req->res.content_length = h2o_strtosize(h->value.base, h->value.len);
                continue;
            }
            h2o_add_header(&req->pool, &req->res.headers, token, h->orig_name,
                           h2o_strdup(&req->pool, h->value.base, h->value.len).base, h->value.len);
        } else {
            h2o_iovec_t name = h2o_strdup(&req->pool, h->name->base, h->name->len);
            h2o_add_header_by_str(&req->pool, &req->res.headers, name.base, name.len, 0, NULL,
                                  h2o_strdup(&req->pool, h->value.base, h->value.len).base, h->value.len);
        }
    }
    self->st->from_origin = 1;
    self->started = 1;
    self->super.proceed = do_proceed;
    self->super.stop = do_stop;
    h2o_start_response(req, &self->super);

    if (errstr == h2o_http1client_error_is_eos) { /* no body: HEAD, 204, 304 */
        self->client = NULL;
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return NULL;
    }
    return on_body;
}

static h2o_http1client_head_cb on_connect(h2o_http1client_t *client, const char *errstr, h2o_iovec_t **reqbufs, size_t *reqbufcnt,
                                          int *method_is_head)
{
    px_upstream_t *self = client->data;

    if (errstr != NULL) {
        self->client = NULL;
        h2o_timeout_unlink(&self->deadline);
        fail(self, errstr);
        return NULL;
    }
    *reqbufs = &self->reqbuf;
    *reqbufcnt = 1;
    *method_is_head = h2o_memis(self->req->method.base, self->req->method.len, H2O_STRLIT("HEAD"));
    return on_head;
}

static void on_deadline(h2o_timeout_entry_t *entry)
{
    px_upstream_t *self = H2O_STRUCT_FROM_MEMBER(px_upstream_t, deadline, entry);
    stop_fetch(self);
    fail(self, "deadline timeout");
}

static void on_dispose(void *p)
{
    px_upstream_t *self = p;
    stop_fetch(self);
    h2o_buffer_dispose(&self->sending);
    h2o_buffer_dispose(&self->rest);
}

void px_upstream_forward(h2o_req_t *req, px_req_t *st, px_origin_t *origin)
{
    px_thread_t *th = px_thread_of(req);
    px_route_client_t *rc = th->clients + st->match->route_id;
    px_upstream_t *self = h2o_mem_alloc_shared(&req->pool, sizeof(*self), on_dispose);

    memset(self, 0, sizeof(*self));
    self->req = req;
    self->st = st;
    self->origin = origin;
    h2o_buffer_init(&self->sending, &h2o_socket_buffer_prototype);
    h2o_buffer_init(&self->rest, &h2o_socket_buffer_prototype);
    self->reqbuf = build_request(req, st, origin);
    self->deadline.cb = on_deadline;
    gettimeofday(&st->upstream_start, NULL);
    h2o_timeout_link(th->ctx.loop, &rc->timeout, &self->deadline);
    h2o_http1client_connect_with_pool(&self->client, self, &rc->client_ctx, &origin->pool, on_connect);
}
