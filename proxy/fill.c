/*
 * fill: coalesced origin fetches for the cache. One fill per cache key at a time, on the thread that took the miss;
 * any number of requests, on any thread, stream its answer as it arrives (LIBH2O_NOTES 6.2).
 *
 *   px_fill_join()   finds the running fill of a key or makes one (the caller then starts it with px_fill_start)
 *   px_fill_start()  sends the request with fetch.c; the answer's head and body are published into the fill
 *   px_sub_attach()  makes a request a subscriber: it sends what the fill has, and more as it comes
 *
 * Publication: the owner thread writes the head, then stores `state` with release semantics; it appends body bytes
 * to fixed chunks that are never moved, then stores `body_len` with release semantics. Readers on any thread load
 * state / body_len with acquire semantics and read only what those cover, without a lock. The table mutex guards
 * the table and each fill's per-thread subscription marks; a thread with subscribers gets one message per burst of
 * progress (a `pending` flag per thread and fill), and walks its own subscribers of that fill.
 *
 * Lifetimes: a fill is malloc'ed and reference counted: one reference for the table (dropped when it leaves it), one
 * for the running fetch, one per subscriber and one per message in flight. The last release frees it. A subscriber
 * lives in its request's pool and detaches when the pool goes. A client that leaves does not stop the fill.
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "proxy/internal.h"

#define PX_FILL_CHUNK (64 * 1024)      /* the most a chunk holds */
#define PX_FILL_FIRST_CHUNK (8 * 1024) /* the first chunk of a body of unknown length */
#define PX_FILL_BUCKETS 4096
#define PX_SUB_MAX_IOVECS 16
#define PX_FILL_LINGER_MS 100  /* a finished fill checks this often whether the store has its object */
#define PX_FILL_LINGER_MAX 300 /* and gives up after so many checks (30 s) */

/* A chunk holds `cap` bytes: the rest of the body when its length is known and small, else up to PX_FILL_CHUNK (a 1 KiB
 * answer takes 1 KiB, not 64). cap is written before the chunk is published. */
struct px_fill_chunk {
    struct px_fill_chunk *_Atomic next;
    size_t cap;
    char bytes[];
};

/* A fill's side on one thread: the wake-up message, and the thread's subscribers of the fill (that thread's only). */
typedef struct px_fill_msg {
    h2o_multithread_message_t super;
    px_fill_t *fill;
    atomic_int pending;
    h2o_linklist_t subs;
} px_fill_msg_t;

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static px_fill_t *table[PX_FILL_BUCKETS];

static size_t bucket_of(const uint8_t *key)
{
    size_t h;
    memcpy(&h, key, sizeof(h)); /* keys are SHA-256 values: any bytes are uniform */
    return h % PX_FILL_BUCKETS;
}

static void fill_release(px_fill_t *fill)
{
    if (atomic_fetch_sub_explicit(&fill->refs, 1, memory_order_acq_rel) != 1)
        return;
    struct px_fill_chunk *c = fill->first, *next;
    for (; c != NULL; c = next) {
        next = atomic_load_explicit(&c->next, memory_order_relaxed);
        free(c);
    }
    if (fill->ops != NULL && fill->ops->dispose != NULL)
        fill->ops->dispose(fill);
    free(fill->head_storage);
    free(fill->reqbuf.base);
    free(fill->msgs);
    free(fill);
}

/* Removes the fill from the table (once). */
static void unlink_from_table(px_fill_t *fill)
{
    int was_linked = 0;

    pthread_mutex_lock(&table_lock);
    for (px_fill_t **p = &table[bucket_of(fill->key)]; *p != NULL; p = &(*p)->next) {
        if (*p == fill) {
            *p = fill->next;
            was_linked = 1;
            break;
        }
    }
    pthread_mutex_unlock(&table_lock);
    if (was_linked)
        fill_release(fill);
}

px_fill_t *px_fill_join(px_thread_t *th, const uint8_t key[32], int *created)
{
    size_t b = bucket_of(key);
    px_fill_t *fill;

    pthread_mutex_lock(&table_lock);
    for (fill = table[b]; fill != NULL; fill = fill->next) {
        if (memcmp(fill->key, key, 32) == 0 && !fill->closed) {
            atomic_fetch_add_explicit(&fill->refs, 1, memory_order_relaxed);
            pthread_mutex_unlock(&table_lock);
            *created = 0;
            return fill;
        }
    }
    fill = h2o_mem_alloc(sizeof(*fill));
    memset(fill, 0, sizeof(*fill));
    memcpy(fill->key, key, 32);
    fill->owner = th;
    fill->nthreads = th->srv->nthreads;
    fill->msgs = h2o_mem_alloc(sizeof(*fill->msgs) * fill->nthreads + fill->nthreads);
    memset(fill->msgs, 0, sizeof(*fill->msgs) * fill->nthreads + fill->nthreads);
    fill->subscribed = (uint8_t *)(fill->msgs + fill->nthreads); /* one byte per thread, after the messages */
    for (size_t i = 0; i != fill->nthreads; ++i)
        h2o_linklist_init_anchor(&fill->msgs[i].subs);
    atomic_init(&fill->refs, 2); /* the table's and the caller's */
    atomic_init(&fill->state, PX_FILL_PENDING);
    atomic_init(&fill->body_len, 0);
    fill->next = table[b];
    table[b] = fill;
    pthread_mutex_unlock(&table_lock);
    *created = 1;
    return fill;
}

void px_fill_leave_table(px_fill_t *fill)
{
    pthread_mutex_lock(&table_lock);
    fill->closed = 1;
    pthread_mutex_unlock(&table_lock);
    unlink_from_table(fill);
}

void px_fill_unref(px_fill_t *fill)
{
    fill_release(fill);
}

/* ---- notification ---- */

static void notify_thread_subs(px_thread_t *th, px_fill_t *fill);

/* Wakes every thread with subscribers of the fill (the owner's own directly). */
static void notify(px_fill_t *fill)
{
    px_thread_t *owner = fill->owner;
    uint8_t subscribed[256];
    size_t i;

    pthread_mutex_lock(&table_lock);
    memcpy(subscribed, fill->subscribed, fill->nthreads);
    pthread_mutex_unlock(&table_lock);
    for (i = 0; i != fill->nthreads; ++i) {
        if (!subscribed[i])
            continue;
        if (owner->srv->threads + i == owner) {
            notify_thread_subs(owner, fill);
            continue;
        }
        px_fill_msg_t *m = fill->msgs + i;
        int expected = 0;
        if (atomic_compare_exchange_strong(&m->pending, &expected, 1)) {
            m->fill = fill;
            atomic_fetch_add_explicit(&fill->refs, 1, memory_order_relaxed); /* the message's */
            h2o_multithread_send_message(&owner->srv->threads[i].fill_receiver, &m->super);
        }
    }
}

static void on_messages(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    px_thread_t *th = H2O_STRUCT_FROM_MEMBER(px_thread_t, fill_receiver, receiver);

    while (!h2o_linklist_is_empty(messages)) {
        px_fill_msg_t *m = H2O_STRUCT_FROM_MEMBER(px_fill_msg_t, super.link, messages->next);
        px_fill_t *fill = m->fill;
        h2o_linklist_unlink(&m->super.link);
        atomic_store(&m->pending, 0); /* before reading: progress after this point sends a new message */
        notify_thread_subs(th, fill);
        fill_release(fill);
    }
}

/* ---- the owner side: publishing the answer ---- */

void px_fill_set_state(px_fill_t *fill, int state)
{
    atomic_store_explicit(&fill->state, state, memory_order_release);
    notify(fill);
}

/* The size of the next chunk, for a body that has `have` bytes. */
static size_t chunk_cap(const px_fill_t *fill, size_t have)
{
    if (fill->content_length != SIZE_MAX && fill->content_length > have)
        return fill->content_length - have < PX_FILL_CHUNK ? fill->content_length - have : PX_FILL_CHUNK;
    return have == 0 ? PX_FILL_FIRST_CHUNK : PX_FILL_CHUNK;
}

/* Appends body bytes and publishes them; wakes the subscribers unless `quiet` (the caller finishes the fill next). */
static void append(px_fill_t *fill, const char *bytes, size_t len, int quiet)
{
    size_t have = atomic_load_explicit(&fill->body_len, memory_order_relaxed);

    while (len != 0) {
        size_t off = have - fill->last_start, n;
        if (fill->last == NULL || off == fill->last->cap) { /* the last chunk is full (or there is none) */
            size_t cap = chunk_cap(fill, have);
            struct px_fill_chunk *c = h2o_mem_alloc(offsetof(struct px_fill_chunk, bytes) + cap);
            atomic_init(&c->next, NULL);
            c->cap = cap;
            if (fill->last == NULL)
                fill->first = c;
            else
                atomic_store_explicit(&fill->last->next, c, memory_order_release);
            fill->last = c;
            fill->last_start = have;
            off = 0;
        }
        n = fill->last->cap - off < len ? fill->last->cap - off : len;
        memcpy(fill->last->bytes + off, bytes, n);
        bytes += n;
        len -= n;
        have += n;
    }
    atomic_store_explicit(&fill->body_len, have, memory_order_release);
    if (!quiet)
        notify(fill);
}

void px_fill_append(px_fill_t *fill, const char *bytes, size_t len)
{
    append(fill, bytes, len, 0);
}

/* ---- subscribers ---- */

static void sub_try_send(px_sub_t *sub);

static void notify_thread_subs(px_thread_t *th, px_fill_t *fill)
{
    /* sub_try_send may end a request, which unlinks it: walk by taking the next one first */
    h2o_linklist_t *anchor = &fill->msgs[th->idx].subs, *node = anchor->next, *next;
    for (; node != anchor; node = next) {
        next = node->next;
        sub_try_send(H2O_STRUCT_FROM_MEMBER(px_sub_t, link, node));
    }
}

static void sub_detach(px_sub_t *sub)
{
    if (h2o_linklist_is_linked(&sub->link))
        h2o_linklist_unlink(&sub->link);
    if (sub->fill != NULL) {
        px_fill_t *fill = sub->fill;
        sub->fill = NULL;
        fill_release(fill);
    }
}

static void sub_on_proceed(h2o_generator_t *generator, h2o_req_t *req)
{
    px_sub_t *sub = (void *)generator;
    (void)req;
    sub->in_flight = 0;
    sub_try_send(sub);
}

static void sub_on_stop(h2o_generator_t *generator, h2o_req_t *req)
{
    (void)req;
    sub_detach((px_sub_t *)generator);
}

static void sub_on_dispose(void *p)
{
    sub_detach(p);
}

/* Sends what the fill has that the client was not sent yet; starts the response first when the head is there. */
static void sub_try_send(px_sub_t *sub)
{
    px_fill_t *fill = sub->fill;
    int state;
    size_t avail;
    h2o_iovec_t vecs[PX_SUB_MAX_IOVECS];
    size_t n = 0;

    if (fill == NULL || sub->in_flight)
        return;
    state = atomic_load_explicit(&fill->state, memory_order_acquire);
    if (state == PX_FILL_PENDING)
        return;
    if (!sub->started) {
        int released = fill->released && !sub->first;
        if (released || (state == PX_FILL_FAILED && !fill->has_head) || sub->ops->on_head(sub, fill) != 0) {
            /* not for us: the user takes the request over (a fetch of its own, or an error) */
            h2o_linklist_unlink(&sub->link);
            sub->fill = NULL;
            sub->ops->on_release(sub, fill, released ? PX_FILL_RELEASED : state);
            fill_release(fill);
            return;
        }
        sub->started = 1;
        sub->super.proceed = sub_on_proceed;
        sub->super.stop = sub_on_stop;
        h2o_start_response(sub->req, &sub->super);
        if (sub->no_body) {
            sub_detach(sub);
            h2o_send(sub->req, NULL, 0, H2O_SEND_STATE_FINAL);
            return;
        }
    }
    avail = atomic_load_explicit(&fill->body_len, memory_order_acquire);
    if (avail > sub->end)
        avail = sub->end;
    while (sub->sent < avail && n != PX_SUB_MAX_IOVECS) {
        size_t off, len;
        if (sub->chunk == NULL) {
            sub->chunk = fill->first;
            sub->chunk_start = 0;
        }
        while (sub->sent >= sub->chunk_start + sub->chunk->cap) {
            sub->chunk_start += sub->chunk->cap;
            sub->chunk = atomic_load_explicit(&sub->chunk->next, memory_order_acquire);
        }
        off = sub->sent - sub->chunk_start;
        len = sub->chunk->cap - off;
        if (len > avail - sub->sent)
            len = avail - sub->sent;
        vecs[n++] = h2o_iovec_init(sub->chunk->bytes + off, len);
        sub->sent += len;
    }
    if (((state == PX_FILL_DONE || state == PX_FILL_FAILED) && sub->sent >= avail) || sub->sent >= sub->end) {
        int failed = state == PX_FILL_FAILED && sub->sent < sub->end;
        sub->in_flight = 1; /* nothing more: the generator is done */
        px_fill_t *f = sub->fill;
        h2o_linklist_unlink(&sub->link);
        sub->fill = NULL;
        /* the iovecs point into the fill's chunks, which h2o may write after we return: the request's pool keeps the
         * fill (this reference) until the request is over */
        px_fill_hold(sub->req, f);
        h2o_send(sub->req, vecs, n, failed ? H2O_SEND_STATE_ERROR : H2O_SEND_STATE_FINAL);
        return;
    }
    if (n == 0)
        return;
    sub->in_flight = 1;
    h2o_send(sub->req, vecs, n, H2O_SEND_STATE_IN_PROGRESS);
}

static void on_hold_dispose(void *p)
{
    fill_release(*(px_fill_t **)p);
}

void px_fill_hold(h2o_req_t *req, px_fill_t *fill)
{
    *(px_fill_t **)h2o_mem_alloc_shared(&req->pool, sizeof(px_fill_t *), on_hold_dispose) = fill;
}

px_sub_t *px_sub_attach(h2o_req_t *req, px_fill_t *fill, int first, const px_sub_ops_t *ops, void *data)
{
    px_thread_t *th = px_thread_of(req);
    px_sub_t *sub = h2o_mem_alloc_shared(&req->pool, sizeof(*sub), sub_on_dispose);

    memset(sub, 0, sizeof(*sub));
    sub->req = req;
    sub->fill = fill; /* takes the caller's reference */
    sub->ops = ops;
    sub->data = data;
    sub->first = first;
    sub->end = SIZE_MAX;
    h2o_linklist_insert(&fill->msgs[th->idx].subs, &sub->link);
    pthread_mutex_lock(&table_lock);
    fill->subscribed[th->idx] = 1;
    pthread_mutex_unlock(&table_lock);
    sub_try_send(sub); /* the fill may be further already */
    return sub;
}

void px_fill_copy_body(px_fill_t *fill, size_t off, char *dst, size_t len)
{
    struct px_fill_chunk *c = fill->first;
    size_t start = 0;

    while (len != 0) {
        while (off >= start + c->cap) {
            start += c->cap;
            c = atomic_load_explicit(&c->next, memory_order_acquire);
        }
        size_t o = off - start, n = c->cap - o < len ? c->cap - o : len;
        memcpy(dst, c->bytes + o, n);
        dst += n;
        off += n;
        len -= n;
    }
}

/* ---- the fetch behind a fill ---- */

/* The head as the fill publishes it (after the response hook, when there is one). */
static void head_ready(px_fill_t *fill, const px_fetch_head_t *head)
{
    int state = fill->ops->on_head(fill, head);

    fill->has_head = 1;
    if (state == PX_FILL_RELEASED) {
        fill->released = 1;
        state = PX_FILL_STREAMING;
    }
    px_fill_set_state(fill, state);
}

static void fill_on_head(px_fetch_t *f, const px_fetch_head_t *head)
{
    px_fill_t *fill = f->data;

    if (fill->ops->hook_head != NULL) {
        /* the response hook runs: the body and the end wait in `held` until px_fill_hooked() (which may come at once) */
        fill->hook_pending = 1;
        h2o_buffer_init(&fill->held, &h2o_socket_buffer_prototype);
        if (fill->ops->hook_head(fill, head))
            return;
        fill->hook_pending = 0;
        h2o_buffer_dispose(&fill->held);
        fill->held = NULL;
    }
    head_ready(fill, head);
}

static void body_now(px_fill_t *fill, const char *bytes, size_t len);
static void end_now(px_fill_t *fill, const char *err, int timeout);

static void fill_on_body(px_fetch_t *f, const char *bytes, size_t len)
{
    px_fill_t *fill = f->data;
    if (fill->origin_dropped)
        return; /* the response hook replaced the answer (a function's feed goes on after it) */
    if (fill->hook_pending) {
        h2o_iovec_t dst = h2o_buffer_reserve(&fill->held, len);
        memcpy(dst.base, bytes, len);
        fill->held->size += len;
        return;
    }
    body_now(fill, bytes, len);
}

static void body_now(px_fill_t *fill, const char *bytes, size_t len)
{
    if (fill->ops->on_body != NULL && fill->ops->on_body(fill, len))
        return;
    /* the last bytes: the end follows at once, and one wake-up then sends them with the end (one write, not two) */
    append(fill, bytes, len, fill->fetch.body_done);
}

static void on_linger_end(h2o_timeout_entry_t *entry)
{
    px_fill_t *fill = H2O_STRUCT_FROM_MEMBER(px_fill_t, linger_timer, entry);
    if (fill->ops->keep_lingering != NULL && fill->lingered++ < PX_FILL_LINGER_MAX && !fill->closed &&
        fill->ops->keep_lingering(fill)) {
        h2o_timeout_link(fill->owner->ctx.loop, &fill->owner->fill_linger_timeout, &fill->linger_timer);
        return;
    }
    px_fill_leave_table(fill);
    fill_release(fill); /* the fetch's */
}

static void fill_on_end(px_fetch_t *f, const char *err, int timeout)
{
    px_fill_t *fill = f->data;

    if (fill->origin_dropped)
        return;
    if (fill->hook_pending) {
        fill->held_end = 1;
        fill->held_err = err; /* static strings */
        fill->held_timeout = timeout;
        return;
    }
    end_now(fill, err, timeout);
}

static void end_now(px_fill_t *fill, const char *err, int timeout)
{
    int state = fill->ops->on_end(fill, err, timeout);

    px_fill_set_state(fill, state);
    if (state == PX_FILL_DONE && fill->linger) {
        /* stay joinable until the store has committed the object: the fetch's reference goes then */
        fill->linger_timer.cb = on_linger_end;
        h2o_timeout_link(fill->owner->ctx.loop, &fill->owner->fill_linger_timeout, &fill->linger_timer);
        return;
    }
    px_fill_leave_table(fill);
    fill_release(fill); /* the fetch's */
}

static const px_fetch_callbacks_t fill_fetch_callbacks = {fill_on_head, fill_on_body, fill_on_end};

void px_fill_feed(px_fill_t *fill, const px_fetch_head_t *head, const char *body, size_t len, const char *err)
{
    atomic_fetch_add_explicit(&fill->refs, 1, memory_order_relaxed); /* the "fetch's", as px_fill_start takes it */
    fill->fetch.data = fill;
    if (head != NULL) {
        fill_on_head(&fill->fetch, head);
        fill->fetch.body_done = 1; /* the body is all there: published with the end */
        if (len != 0)
            fill_on_body(&fill->fetch, body, len);
    }
    fill_on_end(&fill->fetch, head != NULL ? NULL : err, 0);
}

/* The end of a fill whose fetch was cancelled by px_fill_hooked, one loop turn later: px_fill_hooked may run inside the
 * fetch's on_head, and the fetch (inside the fill) must outlive that callback. */
static void on_deferred_end(h2o_timeout_entry_t *entry)
{
    px_fill_t *fill = H2O_STRUCT_FROM_MEMBER(px_fill_t, linger_timer, entry);
    end_now(fill, fill->held_err, 0);
}

static void defer_end(px_fill_t *fill, const char *err)
{
    px_fetch_cancel(&fill->fetch);
    fill->held_err = err;
    fill->linger_timer.cb = on_deferred_end;
    h2o_timeout_link(fill->owner->ctx.loop, &fill->owner->ctx.zero_timeout, &fill->linger_timer);
}

void px_fill_hooked(px_fill_t *fill, const px_fetch_head_t *head, const char *body, size_t body_len)
{
    int ended = fill->held_end;
    h2o_buffer_t *held = fill->held;

    fill->hook_pending = 0;
    fill->held = NULL;
    if (head == NULL) { /* the hook failed: the fill fails before its head */
        h2o_buffer_dispose(&held);
        fill->origin_dropped = 1; /* a function's feed goes on after this: what it gives is dropped */
        if (ended)
            end_now(fill, "the response hook failed", 0);
        else
            defer_end(fill, "the response hook failed");
        return;
    }
    head_ready(fill, head);
    if (body != NULL) { /* the hook's body replaces the origin's */
        h2o_buffer_dispose(&held);
        fill->origin_dropped = 1;
        fill->fetch.body_done = ended;
        if (body_len != 0)
            body_now(fill, body, body_len);
        if (ended)
            end_now(fill, NULL, 0);
        else
            defer_end(fill, NULL);
        return;
    }
    if (held->size != 0)
        body_now(fill, held->bytes, held->size);
    h2o_buffer_dispose(&held);
    if (ended)
        end_now(fill, fill->held_err, fill->held_timeout);
    else
        px_fetch_resume(&fill->fetch);
}

void px_fill_start(px_fill_t *fill, px_thread_t *th, size_t route_id, h2o_iovec_t reqbuf, int idempotent)
{
    fill->reqbuf = h2o_strdup(NULL, reqbuf.base, reqbuf.len);
    atomic_fetch_add_explicit(&fill->refs, 1, memory_order_relaxed); /* the fetch's */
    px_fetch_start(&fill->fetch, th, route_id, fill->reqbuf, 0, idempotent, &fill_fetch_callbacks, fill);
}

void px_fill_forget(const uint8_t key[32])
{
    px_fill_t *fill;

    pthread_mutex_lock(&table_lock);
    for (fill = table[bucket_of(key)]; fill != NULL; fill = fill->next)
        if (memcmp(fill->key, key, 32) == 0 && !fill->closed)
            break;
    if (fill != NULL)
        atomic_fetch_add_explicit(&fill->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&table_lock);
    if (fill != NULL) {
        px_fill_leave_table(fill);
        fill_release(fill);
    }
}

void px_fill_forget_complete(void)
{
    px_fill_t *done = NULL;

    pthread_mutex_lock(&table_lock);
    for (size_t b = 0; b != PX_FILL_BUCKETS; ++b) {
        for (px_fill_t **p = &table[b]; *p != NULL;) {
            px_fill_t *fill = *p;
            if (atomic_load_explicit(&fill->state, memory_order_acquire) == PX_FILL_DONE) {
                *p = fill->next; /* the table's reference moves to the list */
                fill->closed = 1;
                fill->next = done;
                done = fill;
            } else {
                p = &fill->next;
            }
        }
    }
    pthread_mutex_unlock(&table_lock);
    while (done != NULL) {
        px_fill_t *next = done->next;
        fill_release(done);
        done = next;
    }
}

void px_fill_init_thread(px_thread_t *th)
{
    h2o_multithread_register_receiver(th->ctx.queue, &th->fill_receiver, on_messages);
    h2o_timeout_init(th->ctx.loop, &th->fill_linger_timeout, PX_FILL_LINGER_MS);
}
