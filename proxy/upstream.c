/*
 * upstream: HTTP(S) origins, fetched by our own HTTP/1.1 client over per-thread keep-alive connections.
 *
 * Why not h2o's proxy handler or h2o_http1client: the proxy handler's errors are plain text and its timeout is per I/O
 * phase only; h2o_socketpool hands a pooled socket from loop to loop, which costs five system calls per request
 * (epoll_ctl twice, fcntl twice, a MSG_PEEK recv) and made us slower than nginx. Here an idle connection stays
 * registered in its thread's loop, watched for the origin closing it, and a request on it costs one write and the
 * reads of the answer. The cache will need a fetch it controls, too.
 *
 * Each forwarded request is a px_upstream_t in the request's pool:
 *
 *   forward ──idle connection, or connect (+ TLS handshake)──► write the request (head and body, one buffer)
 *           ──► read the head (phr_parse_response): status and headers copied, response started   (504 before this)
 *           ──► read the body (content-length, chunked or close-delimited), streamed to the client
 *           ──► at its end the connection goes back to the idle list if both sides allow keep-alive
 *
 * Timeouts: the route's timeout is a total deadline from the start of the fetch to the response head (504 when it
 * passes), and the idle timeout of every later read of the body (the response is then cut short).
 * Retry: when a reused connection fails before any byte of the answer (the origin closed it as we sent), the request
 * goes once more on a new connection if it is idempotent or was not fully written.
 * Back-pressure: while PX_UPSTREAM_HIGH_WATER bytes wait for a slow client, the origin is not read.
 *
 * Ownership: px_conn_t is malloc'ed per origin connection and freed when it closes; it belongs to the fetch using it,
 * or to its thread's idle list. The px_upstream_t lives in the request's pool and gives its connection back, or closes
 * it, before the pool goes.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include "proxy/internal.h"
#include "proxy/phr.h"

#define PX_UPSTREAM_MAX_IDLE 1024        /* idle connections kept per route and thread */
#define PX_UPSTREAM_KEEPALIVE_MS 30000   /* an idle connection is closed after this */
#define PX_UPSTREAM_MAX_HEAD 65536       /* a longer response head is a 502 */
#define PX_UPSTREAM_MAX_HEADERS 128      /* more header fields is a 502 */
#define PX_UPSTREAM_HIGH_WATER (1 << 22) /* stop reading the origin while this much waits for the client */

typedef struct px_upstream px_upstream_t;

typedef struct px_conn {
    h2o_socket_t *sock; /* sock->data points back here */
    px_route_client_t *rc;
    px_upstream_t *fetch; /* the fetch using it; NULL while idle */
    h2o_linklist_t link;  /* in rc->idle while idle */
    h2o_timeout_entry_t idle_timeout;
} px_conn_t;

typedef enum { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_CLOSE } px_framing_t;

struct px_upstream {
    h2o_generator_t super;
    h2o_req_t *req;
    px_req_t *st;
    px_origin_t *origin;
    px_route_client_t *rc;
    px_conn_t *conn;           /* NULL before connecting and once the fetch is over */
    h2o_iovec_t reqbuf;        /* request line, headers and body, in req->pool */
    h2o_timeout_entry_t timer; /* in rc->timeout: the head deadline, then the idle limit of body reads */
    h2o_buffer_t *body;        /* decoded body bytes not yet handed to h2o_send */
    h2o_buffer_t *sending;     /* bytes handed to h2o_send, until proceed */
    px_framing_t framing;
    uint64_t remaining; /* BODY_LENGTH: bytes still to come */
    struct phr_chunked_decoder chunked;
    unsigned is_head : 1;     /* a HEAD request: the answer has no body */
    unsigned reused : 1;      /* the connection came from the idle list */
    unsigned retried : 1;     /* the one retry was used */
    unsigned written : 1;     /* the whole request is in the kernel's buffer */
    unsigned keepalive : 1;   /* the answer allows reusing the connection */
    unsigned started : 1;     /* response head passed to the client */
    unsigned eos : 1;         /* the whole body arrived */
    unsigned body_failed : 1; /* the origin's body ended early or was malformed */
    unsigned in_flight : 1;   /* h2o_send called, proceed not yet */
    unsigned paused : 1;      /* not reading the origin: too much waits for the client */
};

int px_upstream_init(px_server_t *srv, px_origin_t *origin, char *err, size_t errlen)
{
    const conf_origin_t *o = &origin->route->origin;
    int default_port = o->https ? 443 : 80, n, gai;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *res;
    char buf[300], port[8];

    if (o->https && px_tls_origin_ctx(o, &origin->ssl_ctx, err, errlen) != 0)
        return -1;
    if (o->port == default_port)
        n = snprintf(buf, sizeof(buf), strchr(o->host, ':') != NULL ? "[%s]" : "%s", o->host);
    else
        n = snprintf(buf, sizeof(buf), strchr(o->host, ':') != NULL ? "[%s]:%u" : "%s:%u", o->host, (unsigned)o->port);
    origin->authority = h2o_strdup(NULL, buf, (size_t)n);
    /* at start, before any loop runs: resolving never blocks a loop */
    snprintf(port, sizeof(port), "%u", (unsigned)o->port);
    if ((gai = getaddrinfo(o->host, port, &hints, &res)) != 0) {
        snprintf(err, errlen, "%s:%u: %s: cannot resolve %s: %s", srv->conf->file, o->url_line, o->url_key, o->host,
                 gai_strerror(gai));
        return -1;
    }
    memcpy(&origin->addr, res->ai_addr, res->ai_addrlen);
    origin->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

void px_upstream_dispose(px_origin_t *origin)
{
    if (origin->ssl_ctx != NULL)
        SSL_CTX_free(origin->ssl_ctx);
    free(origin->authority.base);
}

/* ---- connections ---- */

static void conn_close(px_conn_t *conn)
{
    if (h2o_timeout_is_linked(&conn->idle_timeout))
        h2o_timeout_unlink(&conn->idle_timeout);
    if (h2o_linklist_is_linked(&conn->link)) {
        h2o_linklist_unlink(&conn->link);
        --conn->rc->nidle;
    }
    h2o_socket_close(conn->sock);
    free(conn);
}

/* An idle connection that becomes readable was closed by the origin (or it sent what nobody asked for). */
static void on_idle_read(h2o_socket_t *sock, const char *err)
{
    (void)err;
    conn_close(sock->data);
}

static void on_idle_timeout(h2o_timeout_entry_t *entry)
{
    conn_close(H2O_STRUCT_FROM_MEMBER(px_conn_t, idle_timeout, entry));
}

static void conn_release(px_conn_t *conn)
{
    px_route_client_t *rc = conn->rc;

    conn->fetch = NULL;
    if (rc->nidle >= PX_UPSTREAM_MAX_IDLE || conn->sock->input->size != 0) {
        conn_close(conn);
        return;
    }
    h2o_socket_read_start(conn->sock, on_idle_read);
    h2o_linklist_insert(rc->idle.next, &conn->link);
    ++rc->nidle;
    h2o_timeout_link(rc->loop, &rc->keepalive, &conn->idle_timeout);
}

static px_conn_t *conn_take_idle(px_route_client_t *rc)
{
    px_conn_t *conn;

    if (h2o_linklist_is_empty(&rc->idle))
        return NULL;
    conn = H2O_STRUCT_FROM_MEMBER(px_conn_t, link, rc->idle.next);
    h2o_linklist_unlink(&conn->link);
    --rc->nidle;
    h2o_timeout_unlink(&conn->idle_timeout);
    return conn;
}

void px_upstream_init_thread(px_thread_t *th)
{
    px_server_t *srv = th->srv;
    th->clients = h2o_mem_alloc(sizeof(*th->clients) * (srv->nroutes + 1));
    for (size_t i = 0; i != srv->nroutes; ++i) {
        px_route_client_t *rc = th->clients + i;
        h2o_timeout_init(th->ctx.loop, &rc->timeout, srv->origins[i].route->timeout_ms);
        h2o_timeout_init(th->ctx.loop, &rc->keepalive, PX_UPSTREAM_KEEPALIVE_MS);
        h2o_linklist_init_anchor(&rc->idle);
        rc->nidle = 0;
        rc->loop = th->ctx.loop;
    }
}

void px_upstream_dispose_thread(px_thread_t *th)
{
    for (size_t i = 0; i != th->srv->nroutes; ++i) {
        px_route_client_t *rc = th->clients + i;
        px_conn_t *conn;
        while ((conn = conn_take_idle(rc)) != NULL)
            conn_close(conn);
        h2o_timeout_dispose(th->ctx.loop, &rc->timeout);
        h2o_timeout_dispose(th->ctx.loop, &rc->keepalive);
    }
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

static void unlink_timer(px_upstream_t *self)
{
    if (h2o_timeout_is_linked(&self->timer))
        h2o_timeout_unlink(&self->timer);
}

/* Ends the use of the connection: back to the idle list when the exchange ended cleanly, else closed. */
static void drop_conn(px_upstream_t *self, int reusable)
{
    px_conn_t *conn = self->conn;

    if (conn == NULL)
        return;
    self->conn = NULL;
    conn->fetch = NULL;
    if (reusable)
        conn_release(conn);
    else
        conn_close(conn);
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
static void fail(px_upstream_t *self, const char *errstr, int timeout)
{
    unlink_timer(self);
    drop_conn(self, 0);
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

/* ---- streaming the body to the client ---- */

static void do_send(px_upstream_t *self)
{
    h2o_buffer_t *tmp;
    h2o_iovec_t vec;
    int last = self->eos || self->body_failed;

    if (self->in_flight)
        return;
    assert(self->sending->size == 0);
    tmp = self->sending;
    self->sending = self->body;
    self->body = tmp;
    vec = h2o_iovec_init(self->sending->bytes, self->sending->size);
    if (last) {
        h2o_send(self->req, &vec, vec.len != 0, self->body_failed ? H2O_SEND_STATE_ERROR : H2O_SEND_STATE_FINAL);
        return;
    }
    if (vec.len == 0)
        return; /* nothing new: wait for the origin (never send 0 buffers IN_PROGRESS) */
    self->in_flight = 1;
    h2o_send(self->req, &vec, 1, H2O_SEND_STATE_IN_PROGRESS);
}

static void on_read_body(h2o_socket_t *sock, const char *err);

static void do_proceed(h2o_generator_t *generator, h2o_req_t *req)
{
    px_upstream_t *self = (void *)generator;
    (void)req;

    h2o_buffer_consume(&self->sending, self->sending->size);
    self->in_flight = 0;
    if (self->paused && self->conn != NULL && self->body->size < PX_UPSTREAM_HIGH_WATER / 2) {
        self->paused = 0;
        h2o_socket_read_start(self->conn->sock, on_read_body);
        h2o_timeout_link(self->req->conn->ctx->loop, &self->rc->timeout, &self->timer);
    }
    do_send(self);
}

static void stop_fetch(px_upstream_t *self)
{
    unlink_timer(self);
    drop_conn(self, 0); /* mid-answer: the connection cannot be reused */
}

static void do_stop(h2o_generator_t *generator, h2o_req_t *req)
{
    (void)req;
    stop_fetch((px_upstream_t *)generator);
}

/* Moves n bytes from the front of *in to the body (by swapping buffers when they are all of it). */
static void take_body(px_upstream_t *self, h2o_buffer_t **in, size_t n)
{
    if (n == 0)
        return;
    if (self->body->size == 0 && n == (*in)->size) {
        h2o_buffer_t *tmp = self->body;
        self->body = *in;
        *in = tmp;
        return;
    }
    h2o_iovec_t dst = h2o_buffer_reserve(&self->body, n);
    memcpy(dst.base, (*in)->bytes, n);
    self->body->size += n;
    h2o_buffer_consume(in, n);
}

/* Decodes what arrived of the body. Sets eos when it is complete, body_failed when it is malformed. */
static void consume_body(px_upstream_t *self, h2o_buffer_t **in)
{
    switch (self->framing) {
    case BODY_NONE:
        self->eos = 1;
        break;
    case BODY_LENGTH: {
        size_t n = (*in)->size < self->remaining ? (*in)->size : (size_t)self->remaining;
        self->remaining -= n;
        if ((*in)->size > n)
            self->keepalive = 0; /* more than announced: do not trust this connection again */
        take_body(self, in, n);
        if (self->remaining == 0)
            self->eos = 1;
        break;
    }
    case BODY_CHUNKED: {
        size_t n = (*in)->size;
        ssize_t r;
        if (n == 0)
            break;
        r = phr_decode_chunked(&self->chunked, (*in)->bytes, &n);
        if (r == -1) {
            self->body_failed = 1;
            h2o_buffer_consume(in, (*in)->size);
            break;
        }
        if (r >= 0) {
            self->eos = 1;
            if (r > 0)
                self->keepalive = 0;
        }
        (*in)->size = n; /* the decoded bytes, in place; anything after the end is dropped */
        take_body(self, in, n);
        h2o_buffer_consume(in, (*in)->size);
        break;
    }
    case BODY_CLOSE:
        take_body(self, in, (*in)->size);
        break;
    }
}

/* After a read of the body (or of the head with some body): hand it on, end the fetch or keep reading. */
static void after_body_read(px_upstream_t *self)
{
    if (self->eos || self->body_failed) {
        unlink_timer(self);
        drop_conn(self, self->eos && self->keepalive && !self->body_failed &&
                            self->written); /* an early answer may leave a write pending */
    } else if (self->body->size >= PX_UPSTREAM_HIGH_WATER) {
        self->paused = 1;
        h2o_socket_read_stop(self->conn->sock);
        unlink_timer(self); /* a slow client is not the origin's fault */
    } else {
        unlink_timer(self);
        h2o_timeout_link(self->req->conn->ctx->loop, &self->rc->timeout, &self->timer);
    }
    do_send(self);
}

static void on_read_body(h2o_socket_t *sock, const char *err)
{
    px_conn_t *conn = sock->data;
    px_upstream_t *self = conn->fetch;

    consume_body(self, &sock->input);
    if (err != NULL && !self->eos) {
        if (self->framing == BODY_CLOSE) {
            self->eos = 1; /* the end of a close-delimited body */
        } else {
            self->body_failed = 1;
            h2o_req_log_error(self->req, "upstream", "%s: body: %s", self->origin->route->origin.url, err);
        }
        self->keepalive = 0;
    }
    after_body_read(self);
}

/* ---- the response head ---- */

static int header_has_token(h2o_iovec_t value, const char *tok, size_t len)
{
    return listed_in(value, tok, len);
}

/* Copies the head into the response (it points into the socket buffer) and starts the response. */
static void start_response(px_upstream_t *self, int minor_version, int status, const char *msg, size_t msglen,
                           struct phr_header *headers, size_t nheaders)
{
    h2o_req_t *req = self->req;
    int chunked = 0, close = minor_version == 0, keep_alive_10 = 0;
    size_t content_length = SIZE_MAX;

    req->res.status = status;
    req->res.reason = h2o_strdup(&req->pool, msg, msglen).base;
    for (size_t i = 0; i != nheaders; ++i) {
        const struct phr_header *h = headers + i;
        h2o_iovec_t name = h2o_strdup(&req->pool, h->name, h->name_len), value;
        const h2o_token_t *token;
        h2o_strtolower(name.base, name.len);
        value = h2o_strdup(&req->pool, h->value, h->value_len);
        if ((token = h2o_lookup_token(name.base, name.len)) != NULL) {
            if (token == H2O_TOKEN_TRANSFER_ENCODING) {
                chunked = header_has_token(value, H2O_STRLIT("chunked"));
                continue;
            }
            if (token == H2O_TOKEN_CONNECTION) {
                close |= header_has_token(value, H2O_STRLIT("close"));
                keep_alive_10 |= header_has_token(value, H2O_STRLIT("keep-alive"));
                continue;
            }
            if (token == H2O_TOKEN_CONTENT_LENGTH) {
                content_length = h2o_strtosize(value.base, value.len);
                continue;
            }
            if (token->proxy_should_drop_for_res || token == H2O_TOKEN_SERVER)
                continue;
            h2o_add_header(&req->pool, &req->res.headers, token, h2o_strdup(&req->pool, h->name, h->name_len).base, value.base,
                           value.len);
        } else {
            h2o_add_header_by_str(&req->pool, &req->res.headers, name.base, name.len, 0,
                                  h2o_strdup(&req->pool, h->name, h->name_len).base, value.base, value.len);
        }
    }
    if (minor_version == 0 && keep_alive_10)
        close = 0;

    if (self->is_head || status == 204 || status == 304) {
        self->framing = BODY_NONE;
        if (content_length != SIZE_MAX && !chunked)
            req->res.content_length = content_length; /* HEAD: the length a GET would have */
    } else if (chunked) {
        self->framing = BODY_CHUNKED;
        self->chunked = (struct phr_chunked_decoder){0};
        self->chunked.consume_trailer = 1;
    } else if (content_length != SIZE_MAX) {
        self->framing = content_length == 0 ? BODY_NONE : BODY_LENGTH;
        self->remaining = content_length;
        req->res.content_length = content_length;
    } else {
        self->framing = BODY_CLOSE;
        close = 1;
    }
    self->keepalive = !close;

    self->st->from_origin = 1;
    self->started = 1;
    self->super.proceed = do_proceed;
    self->super.stop = do_stop;
    h2o_start_response(req, &self->super);
}

static void retry_or_fail(px_upstream_t *self, const char *err);

static void on_read_head(h2o_socket_t *sock, const char *err)
{
    px_conn_t *conn = sock->data;
    px_upstream_t *self = conn->fetch;
    struct phr_header headers[PX_UPSTREAM_MAX_HEADERS];
    size_t nheaders;
    int minor_version, status, r;
    const char *msg;
    size_t msglen;

    for (;;) {
        nheaders = PX_UPSTREAM_MAX_HEADERS;
        r = phr_parse_response(sock->input->bytes, sock->input->size, &minor_version, &status, &msg, &msglen, headers, &nheaders,
                               0);
        if (r == -2) {
            if (err != NULL) {
                retry_or_fail(self, sock->input->size == 0 ? err : "connection closed in the response head");
                return;
            }
            if (sock->input->size > PX_UPSTREAM_MAX_HEAD) {
                fail(self, "response head too large", 0);
                return;
            }
            return; /* wait for more */
        }
        if (r == -1) {
            fail(self, "failed to parse the response head", 0);
            return;
        }
        if (status >= 100 && status < 200) {
            if (status == 101) {
                fail(self, "protocol upgrade is not supported", 0);
                return;
            }
            h2o_buffer_consume(&sock->input, (size_t)r); /* an interim response: skip it */
            continue;
        }
        break;
    }

    unlink_timer(self);
    record_upstream_time(self);
    start_response(self, minor_version, status, msg, msglen, headers, nheaders);
    h2o_buffer_consume(&sock->input, (size_t)r); /* after copying: the head pointed into the buffer */
    h2o_socket_read_start(sock, on_read_body);
    on_read_body(sock, err);
}

/* ---- connecting and sending ---- */

static void on_write(h2o_socket_t *sock, const char *err)
{
    px_conn_t *conn = sock->data;
    px_upstream_t *self = conn->fetch;

    if (self == NULL)
        return;
    if (err != NULL) {
        if (!self->started)
            retry_or_fail(self, err);
        return; /* the read side reports the rest */
    }
    self->written = 1;
}

static void send_request(px_upstream_t *self)
{
    h2o_socket_t *sock = self->conn->sock;
    h2o_socket_write(sock, &self->reqbuf, 1, on_write);
    h2o_socket_read_start(sock, on_read_head);
}

static void on_handshake(h2o_socket_t *sock, const char *err)
{
    px_conn_t *conn = sock->data;
    px_upstream_t *self = conn->fetch;

    if (err != NULL) {
        fail(self, err, 0);
        return;
    }
    send_request(self);
}

static void on_connect(h2o_socket_t *sock, const char *err)
{
    px_conn_t *conn = sock->data;
    px_upstream_t *self = conn->fetch;

    if (err != NULL) {
        fail(self, err, 0);
        return;
    }
    if (self->origin->ssl_ctx != NULL) {
        h2o_socket_ssl_handshake(sock, self->origin->ssl_ctx, self->origin->route->origin.host, on_handshake);
        return;
    }
    send_request(self);
}

static void open_conn(px_upstream_t *self)
{
    h2o_socket_t *sock;
    px_conn_t *conn;

    self->reused = 0;
    self->written = 0;
    if ((sock = h2o_socket_connect(self->req->conn->ctx->loop, (void *)&self->origin->addr, self->origin->addrlen, on_connect)) ==
        NULL) {
        fail(self, strerror(errno), 0);
        return;
    }
    conn = h2o_mem_alloc(sizeof(*conn));
    *conn = (px_conn_t){.sock = sock, .rc = self->rc, .fetch = self};
    conn->idle_timeout.cb = on_idle_timeout;
    sock->data = conn;
    self->conn = conn;
}

static int is_idempotent(h2o_iovec_t method)
{
    return h2o_memis(method.base, method.len, H2O_STRLIT("GET")) || h2o_memis(method.base, method.len, H2O_STRLIT("HEAD")) ||
           h2o_memis(method.base, method.len, H2O_STRLIT("OPTIONS")) || h2o_memis(method.base, method.len, H2O_STRLIT("PUT")) ||
           h2o_memis(method.base, method.len, H2O_STRLIT("DELETE"));
}

/* The connection failed before any byte of the answer: a reused one may just have been closed by the origin. */
static void retry_or_fail(px_upstream_t *self, const char *err)
{
    if (self->reused && !self->retried && self->conn->sock->input->size == 0 &&
        (is_idempotent(self->req->method) || !self->written)) {
        self->retried = 1;
        drop_conn(self, 0);
        open_conn(self);
        return;
    }
    fail(self, err, 0);
}

static void on_deadline(h2o_timeout_entry_t *entry)
{
    px_upstream_t *self = H2O_STRUCT_FROM_MEMBER(px_upstream_t, timer, entry);

    if (!self->started) {
        fail(self, "timeout before the response head", 1);
        return;
    }
    /* the body stalled */
    h2o_req_log_error(self->req, "upstream", "%s: body: read timeout", self->origin->route->origin.url);
    self->body_failed = 1;
    drop_conn(self, 0);
    do_send(self);
}

static void on_dispose(void *p)
{
    px_upstream_t *self = p;
    stop_fetch(self);
    h2o_buffer_dispose(&self->sending);
    h2o_buffer_dispose(&self->body);
}

void px_upstream_forward(h2o_req_t *req, px_req_t *st, px_origin_t *origin)
{
    px_thread_t *th = px_thread_of(req);
    px_upstream_t *self = h2o_mem_alloc_shared(&req->pool, sizeof(*self), on_dispose);

    memset(self, 0, sizeof(*self));
    self->req = req;
    self->st = st;
    self->origin = origin;
    self->rc = th->clients + st->match->route_id;
    self->is_head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    h2o_buffer_init(&self->sending, &h2o_socket_buffer_prototype);
    h2o_buffer_init(&self->body, &h2o_socket_buffer_prototype);
    self->reqbuf = build_request(req, st, origin);
    self->timer.cb = on_deadline;
    gettimeofday(&st->upstream_start, NULL);
    h2o_timeout_link(th->ctx.loop, &self->rc->timeout, &self->timer);

    if ((self->conn = conn_take_idle(self->rc)) != NULL) {
        self->conn->fetch = self;
        self->reused = 1;
        send_request(self);
        return;
    }
    open_conn(self);
}
