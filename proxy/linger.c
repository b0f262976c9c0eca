/*
 * linger: a lingering close, as nginx does, for HTTP/1 connections h2o closes while the client may still be sending.
 *
 * When a body is over the hard cap, h2o answers 413 before reading it and closes the connection. Closing a socket that
 * still has unread input makes the kernel send RST, which can destroy the 413 before the client reads it (curl then
 * reports "Connection reset by peer" instead of the status). So for such a response we keep a duplicate of the
 * connection's descriptor. When h2o is done with the request, the duplicate keeps the connection open: we half-close
 * it (FIN after the response, once h2o has closed its side) and read and discard what the client still sends, until it
 * closes, until PX_LINGER_IDLE_MS pass without data, or PX_LINGER_TOTAL_MS in all. Then we close it.
 *
 * Ownership: a px_linger_t is malloc'ed by px_linger_arm() and freed by finish(); while it drains, it is linked in its
 * thread's `lingering` list, which px_linger_dispose_thread() empties at shutdown. Everything runs on the thread's loop.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include "proxy/internal.h"

#define PX_LINGER_IDLE_MS 2000
#define PX_LINGER_TOTAL_MS 10000

typedef struct px_linger {
    h2o_linklist_t link;         /* in th->lingering, once draining */
    h2o_timeout_entry_t timeout; /* idle timeout */
    px_thread_t *th;
    int fd;             /* our duplicate; owned by sock once it exists */
    h2o_socket_t *sock; /* NULL until the request is released */
    uint64_t until;     /* give up at this loop time */
    int half_closed;
} px_linger_t;

static void finish(px_linger_t *l)
{
    if (h2o_timeout_is_linked(&l->timeout))
        h2o_timeout_unlink(&l->timeout);
    if (h2o_linklist_is_linked(&l->link))
        h2o_linklist_unlink(&l->link);
    if (l->sock != NULL)
        h2o_socket_close(l->sock); /* closes l->fd */
    else
        close(l->fd);
    free(l);
}

/* First the zero timeout (h2o has closed its side by then), then the idle timeout. */
static void on_timeout(h2o_timeout_entry_t *entry)
{
    px_linger_t *l = H2O_STRUCT_FROM_MEMBER(px_linger_t, timeout, entry);

    if (!l->half_closed) {
        shutdown(l->fd, SHUT_WR); /* FIN after the response h2o wrote */
        l->half_closed = 1;
        h2o_timeout_link(l->th->ctx.loop, &l->th->linger_timeout, &l->timeout);
        return;
    }
    finish(l);
}

static void on_read(h2o_socket_t *sock, const char *err)
{
    px_linger_t *l = sock->data;

    if (err != NULL) {
        finish(l);
        return;
    }
    h2o_buffer_consume(&sock->input, sock->input->size);
    if (h2o_now(l->th->ctx.loop) >= l->until) {
        finish(l);
        return;
    }
    if (l->half_closed) { /* restart the idle timeout */
        h2o_timeout_unlink(&l->timeout);
        h2o_timeout_link(l->th->ctx.loop, &l->th->linger_timeout, &l->timeout);
    }
}

/* The request's pool is going away: h2o has sent the response and is closing its side. Start draining. */
static void on_request_released(void *p)
{
    px_linger_t *l = *(px_linger_t **)p;
    px_thread_t *th = l->th;

    if (th->linger_closed) { /* the thread is shutting down */
        close(l->fd);
        free(l);
        return;
    }
    l->until = h2o_now(th->ctx.loop) + PX_LINGER_TOTAL_MS;
    l->sock = h2o_evloop_socket_create(th->ctx.loop, l->fd, H2O_SOCKET_FLAG_DONT_READ);
    l->sock->data = l;
    h2o_linklist_insert(&th->lingering, &l->link);
    h2o_timeout_link(th->ctx.loop, &th->ctx.zero_timeout, &l->timeout);
    h2o_socket_read_start(l->sock, on_read);
}

void px_linger_arm(h2o_req_t *req)
{
    px_thread_t *th = px_thread_of(req);
    h2o_socket_t *sock;
    px_linger_t *l;
    int fd;

    if (req->version >= 0x200 || req->conn->callbacks->get_socket == NULL || th->linger_closed)
        return;
    if ((sock = req->conn->callbacks->get_socket(req->conn)) == NULL)
        return;
    if ((fd = fcntl(h2o_socket_get_fd(sock), F_DUPFD_CLOEXEC, 0)) == -1)
        return; /* out of descriptors: h2o's plain close it is */
    l = h2o_mem_alloc(sizeof(*l));
    *l = (px_linger_t){.th = th, .fd = fd};
    l->timeout.cb = on_timeout;
    *(px_linger_t **)h2o_mem_alloc_shared(&req->pool, sizeof(px_linger_t *), on_request_released) = l;
}

void px_linger_init_thread(px_thread_t *th)
{
    h2o_linklist_init_anchor(&th->lingering);
    h2o_timeout_init(th->ctx.loop, &th->linger_timeout, PX_LINGER_IDLE_MS);
}

void px_linger_dispose_thread(px_thread_t *th)
{
    th->linger_closed = 1;
    while (!h2o_linklist_is_empty(&th->lingering))
        finish(H2O_STRUCT_FROM_MEMBER(px_linger_t, link, th->lingering.next));
}
