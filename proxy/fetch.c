/*
 * fetch: one HTTP/1.1 exchange with a URL origin, over the thread's keep-alive connections, tied to no client.
 *
 * Users: upstream.c (forwarding a client's request and streaming the answer back) and, later, the cache's fills, which
 * go on while their clients come and go. A fetch is embedded in its user's object:
 *
 *   px_fetch_start ──idle connection, or connect (+ TLS handshake)──► write the request (head and body, one buffer)
 *                  ──► read the head (phr_parse_response; interim 1xx skipped)  ──► cb->on_head   (deadline: before this)
 *                  ──► read the body (content-length, chunked or close-delimited) ──► cb->on_body*
 *                  ──► cb->on_end; the connection goes back to the idle list when both sides allow keep-alive
 *
 * Why not h2o's proxy handler or h2o_http1client: the proxy handler's errors are plain text and its timeout is per I/O
 * phase only; h2o_socketpool hands a pooled socket from loop to loop, which costs five system calls per request
 * (epoll_ctl twice, fcntl twice, a MSG_PEEK recv) and made us slower than nginx. Here an idle connection stays
 * registered in its thread's loop, watched for the origin closing it, and a request on it costs one write and the
 * reads of the answer.
 *
 * Timeouts: the route's timeout is a total deadline from px_fetch_start to the response head, then the idle limit of
 * every read of the body (paused fetches have no timer: a slow client is not the origin's fault).
 * Retry: when a reused connection fails before any byte of the answer (the origin closed it as we sent), the request
 * goes once more on a new connection if it is idempotent or was not fully written.
 *
 * Ownership: px_conn_t is malloc'ed per origin connection and freed when it closes; it belongs to the fetch using it,
 * or to its thread's idle list.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include "proxy/internal.h"

#define PX_FETCH_MAX_IDLE 1024      /* idle connections kept per route and thread */
#define PX_FETCH_KEEPALIVE_MS 30000 /* an idle connection is closed after this */
#define PX_FETCH_MAX_HEAD 65536     /* a longer response head is an error */

struct px_conn {
    h2o_socket_t *sock; /* sock->data points back here */
    px_route_client_t *rc;
    px_fetch_t *fetch;   /* the fetch using it; NULL while idle */
    h2o_linklist_t link; /* in rc->idle while idle */
    h2o_timeout_entry_t idle_timeout;
};

/* ---- origins, at start ---- */

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
    if (rc->nidle >= PX_FETCH_MAX_IDLE || conn->sock->input->size != 0) {
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
        rc->loop = th->ctx.loop;
        h2o_timeout_init(th->ctx.loop, &rc->timeout, srv->origins[i].route->timeout_ms);
        h2o_timeout_init(th->ctx.loop, &rc->keepalive, PX_FETCH_KEEPALIVE_MS);
        h2o_linklist_init_anchor(&rc->idle);
        rc->nidle = 0;
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

/* ---- the exchange ---- */

static void unlink_timer(px_fetch_t *f)
{
    if (h2o_timeout_is_linked(&f->timer))
        h2o_timeout_unlink(&f->timer);
}

static void link_timer(px_fetch_t *f)
{
    unlink_timer(f);
    h2o_timeout_link(f->rc->loop, &f->rc->timeout, &f->timer);
}

/* Ends the use of the connection: back to the idle list when the exchange ended cleanly, else closed. */
static void drop_conn(px_fetch_t *f, int reusable)
{
    px_conn_t *conn = f->conn;

    if (conn == NULL)
        return;
    f->conn = NULL;
    conn->fetch = NULL;
    if (reusable)
        conn_release(conn);
    else
        conn_close(conn);
}

static void record_head_time(px_fetch_t *f)
{
    struct timeval now;
    gettimeofday(&now, NULL);
    f->head_ms = (double)(now.tv_sec - f->started.tv_sec) * 1000.0 + (double)(now.tv_usec - f->started.tv_usec) / 1000.0;
    if (f->head_ms < 0)
        f->head_ms = 0;
}

/* The end, with or without error: no connection, no timer, then the user's callback (which may free f). */
static void finish(px_fetch_t *f, const char *err, int timeout)
{
    unlink_timer(f);
    drop_conn(f, err == NULL && f->keepalive && f->written); /* an early answer may leave our write pending */
    if (!f->got_head && f->head_ms < 0)
        record_head_time(f);
    f->cb->on_end(f, err, timeout);
}

void px_fetch_cancel(px_fetch_t *f)
{
    f->cancelled = 1;
    unlink_timer(f);
    drop_conn(f, 0); /* mid-exchange: the connection cannot be reused */
}

/* Hands the decoded bytes to the user; returns 0 to go on, -1 when the user cancelled the fetch meanwhile. */
static int deliver(px_fetch_t *f, const char *bytes, size_t len)
{
    if (len != 0)
        f->cb->on_body(f, bytes, len);
    return f->cancelled ? -1 : 0;
}

/* Decodes what arrived of the body and delivers it. Returns -1 if the fetch ended or was cancelled meanwhile. */
static int consume_body(px_fetch_t *f, h2o_buffer_t **in)
{
    switch (f->framing) {
    case PX_BODY_NONE:
        f->body_done = 1;
        return 0;
    case PX_BODY_LENGTH: {
        size_t n = (*in)->size < f->remaining ? (*in)->size : (size_t)f->remaining;
        f->remaining -= n;
        if ((*in)->size > n)
            f->keepalive = 0; /* more than announced: do not trust this connection again */
        if (f->remaining == 0)
            f->body_done = 1;
        int r = deliver(f, (*in)->bytes, n);
        if (r == 0)
            h2o_buffer_consume(in, (*in)->size);
        return r;
    }
    case PX_BODY_CHUNKED: {
        size_t n = (*in)->size;
        ssize_t r;
        if (n == 0)
            return 0;
        r = phr_decode_chunked(&f->chunked, (*in)->bytes, &n);
        if (r == -1) {
            f->body_failed = 1;
            h2o_buffer_consume(in, (*in)->size);
            return 0;
        }
        if (r >= 0) {
            f->body_done = 1;
            if (r > 0)
                f->keepalive = 0;
        }
        int ret = deliver(f, (*in)->bytes, n); /* decoded in place */
        if (ret == 0)
            h2o_buffer_consume(in, (*in)->size);
        return ret;
    }
    case PX_BODY_CLOSE: {
        int r = deliver(f, (*in)->bytes, (*in)->size);
        if (r == 0)
            h2o_buffer_consume(in, (*in)->size);
        return r;
    }
    }
    return 0;
}

static void on_read_body(h2o_socket_t *sock, const char *err)
{
    px_conn_t *conn = sock->data;
    px_fetch_t *f = conn->fetch;

    if (consume_body(f, &sock->input) != 0)
        return; /* cancelled by the user */
    if (f->body_failed) {
        finish(f, "malformed chunked body", 0);
        return;
    }
    if (f->body_done) {
        finish(f, NULL, 0);
        return;
    }
    if (err != NULL) {
        f->keepalive = 0;
        if (f->framing == PX_BODY_CLOSE)
            finish(f, NULL, 0); /* the end of a close-delimited body */
        else
            finish(f, err, 0);
        return;
    }
    if (!f->paused)
        link_timer(f);
}

void px_fetch_pause(px_fetch_t *f)
{
    if (f->paused || f->conn == NULL)
        return;
    f->paused = 1;
    h2o_socket_read_stop(f->conn->sock);
    unlink_timer(f);
}

void px_fetch_resume(px_fetch_t *f)
{
    if (!f->paused || f->conn == NULL)
        return;
    f->paused = 0;
    h2o_socket_read_start(f->conn->sock, on_read_body);
    link_timer(f);
}

int px_header_has_token(h2o_iovec_t list, const char *name, size_t len)
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

/* Reads the framing and persistence of the answer from its head. */
static void set_framing(px_fetch_t *f, px_fetch_head_t *head)
{
    int chunked = 0, close = head->minor_version == 0, keep_alive_10 = 0;
    size_t content_length = SIZE_MAX;

    for (size_t i = 0; i != head->nheaders; ++i) {
        const struct phr_header *h = head->headers + i;
        h2o_iovec_t value = h2o_iovec_init(h->value, h->value_len);
        if (h2o_lcstris(h->name, h->name_len, H2O_STRLIT("transfer-encoding"))) {
            chunked = px_header_has_token(value, H2O_STRLIT("chunked"));
        } else if (h2o_lcstris(h->name, h->name_len, H2O_STRLIT("connection"))) {
            close |= px_header_has_token(value, H2O_STRLIT("close"));
            keep_alive_10 |= px_header_has_token(value, H2O_STRLIT("keep-alive"));
        } else if (h2o_lcstris(h->name, h->name_len, H2O_STRLIT("content-length"))) {
            content_length = h2o_strtosize(h->value, h->value_len);
        }
    }
    if (head->minor_version == 0 && keep_alive_10)
        close = 0;

    head->content_length = SIZE_MAX;
    if (f->is_head || head->status == 204 || head->status == 304) {
        f->framing = PX_BODY_NONE;
        if (content_length != SIZE_MAX && !chunked)
            head->content_length = content_length; /* HEAD: the length a GET would have */
    } else if (chunked) {
        f->framing = PX_BODY_CHUNKED;
        f->chunked = (struct phr_chunked_decoder){0};
        f->chunked.consume_trailer = 1;
    } else if (content_length != SIZE_MAX) {
        f->framing = content_length == 0 ? PX_BODY_NONE : PX_BODY_LENGTH;
        f->remaining = content_length;
        head->content_length = content_length;
    } else {
        f->framing = PX_BODY_CLOSE;
        close = 1;
    }
    f->keepalive = !close;
}

static void retry_or_fail(px_fetch_t *f, const char *err);

static void on_read_head(h2o_socket_t *sock, const char *err)
{
    px_conn_t *conn = sock->data;
    px_fetch_t *f = conn->fetch;
    struct phr_header headers[PX_FETCH_MAX_HEADERS];
    px_fetch_head_t head;
    const char *msg;
    size_t msglen;
    int r;

    for (;;) {
        head.nheaders = PX_FETCH_MAX_HEADERS;
        r = phr_parse_response(sock->input->bytes, sock->input->size, &head.minor_version, &head.status, &msg, &msglen, headers,
                               &head.nheaders, 0);
        if (r == -2) {
            if (err != NULL) {
                retry_or_fail(f, sock->input->size == 0 ? err : "connection closed in the response head");
                return;
            }
            if (sock->input->size > PX_FETCH_MAX_HEAD)
                finish(f, "response head too large", 0);
            return; /* wait for more */
        }
        if (r == -1) {
            finish(f, "failed to parse the response head", 0);
            return;
        }
        if (head.status >= 100 && head.status < 200) {
            if (head.status == 101) {
                finish(f, "protocol upgrade is not supported", 0);
                return;
            }
            h2o_buffer_consume(&sock->input, (size_t)r); /* an interim response: skip it */
            continue;
        }
        break;
    }

    unlink_timer(f);
    record_head_time(f);
    f->got_head = 1;
    head.reason = h2o_iovec_init(msg, msglen);
    head.headers = headers;
    set_framing(f, &head);
    f->cb->on_head(f, &head);
    if (f->cancelled)
        return;
    h2o_buffer_consume(&sock->input, (size_t)r); /* after on_head: the head pointed into the buffer */
    h2o_socket_read_start(sock, on_read_body);
    on_read_body(sock, err);
}

static void on_write(h2o_socket_t *sock, const char *err)
{
    px_conn_t *conn = sock->data;
    px_fetch_t *f = conn->fetch;

    if (f == NULL)
        return;
    if (err != NULL) {
        if (!f->got_head)
            retry_or_fail(f, err);
        return; /* the read side reports the rest */
    }
    f->written = 1;
}

static void send_request(px_fetch_t *f)
{
    h2o_socket_t *sock = f->conn->sock;
    h2o_socket_write(sock, &f->reqbuf, 1, on_write);
    h2o_socket_read_start(sock, on_read_head);
}

static void on_handshake(h2o_socket_t *sock, const char *err)
{
    px_conn_t *conn = sock->data;

    if (err != NULL) {
        finish(conn->fetch, err, 0);
        return;
    }
    send_request(conn->fetch);
}

static void on_connect(h2o_socket_t *sock, const char *err)
{
    px_conn_t *conn = sock->data;
    px_fetch_t *f = conn->fetch;

    if (err != NULL) {
        finish(f, err, 0);
        return;
    }
    if (f->origin->ssl_ctx != NULL) {
        h2o_socket_ssl_handshake(sock, f->origin->ssl_ctx, f->origin->route->origin.host, on_handshake);
        return;
    }
    send_request(f);
}

static void open_conn(px_fetch_t *f)
{
    h2o_socket_t *sock;
    px_conn_t *conn;

    f->reused = 0;
    f->written = 0;
    if ((sock = h2o_socket_connect(f->rc->loop, (void *)&f->origin->addr, f->origin->addrlen, on_connect)) == NULL) {
        finish(f, strerror(errno), 0);
        return;
    }
    conn = h2o_mem_alloc(sizeof(*conn));
    *conn = (px_conn_t){.sock = sock, .rc = f->rc, .fetch = f};
    conn->idle_timeout.cb = on_idle_timeout;
    sock->data = conn;
    f->conn = conn;
}

/* The connection failed before any byte of the answer: a reused one may just have been closed by the origin. */
static void retry_or_fail(px_fetch_t *f, const char *err)
{
    if (f->reused && !f->retried && f->conn->sock->input->size == 0 && (f->idempotent || !f->written)) {
        f->retried = 1;
        drop_conn(f, 0);
        open_conn(f);
        return;
    }
    finish(f, err, 0);
}

static void on_deadline(h2o_timeout_entry_t *entry)
{
    px_fetch_t *f = H2O_STRUCT_FROM_MEMBER(px_fetch_t, timer, entry);

    f->keepalive = 0;
    finish(f, f->got_head ? "body read timeout" : "timeout before the response head", !f->got_head);
}

void px_fetch_start(px_fetch_t *f, px_thread_t *th, size_t route_id, h2o_iovec_t reqbuf, int is_head, int idempotent,
                    const px_fetch_callbacks_t *cb, void *data)
{
    memset(f, 0, sizeof(*f));
    f->cb = cb;
    f->data = data;
    f->origin = th->srv->origins + route_id;
    f->rc = th->clients + route_id;
    f->reqbuf = reqbuf;
    f->is_head = is_head;
    f->idempotent = idempotent;
    f->head_ms = -1;
    f->timer.cb = on_deadline;
    gettimeofday(&f->started, NULL);
    link_timer(f);

    if ((f->conn = conn_take_idle(f->rc)) != NULL) {
        f->conn->fetch = f;
        f->reused = 1;
        send_request(f);
        return;
    }
    open_conn(f);
}
