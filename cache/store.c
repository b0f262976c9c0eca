/*
 * cache/store.c: the cache's object store on LMDB (the manual is the store section of cache/cache.h).
 *
 * Threads: workers call put/update_meta/delete/purge (which build an op_t and append it to the queue under s->mu),
 * get* (their own read transactions) and touch (one relaxed atomic). The writer thread (writer_main) is the only one
 * that opens write transactions; everything below "writer" runs on it, and the scratch buffers in the store are its
 * own.
 *
 * An op's life: malloc'ed by the caller's thread with everything it needs copied in (a put carries its finished
 * record), counted in qbytes/qops from the moment it is reserved, taken by the writer in a batch (uncounted then),
 * applied in a transaction (maybe twice: see run_batch), reported (purge callbacks, flush waiters) and freed by the
 * writer.
 */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cache/cache.h"

#define MiB (1024ull * 1024)
#define BATCH_MAX_OPS 1024
#define ERROR_LOG_INTERVAL_MS 10000

/* The record's fixed header (host byte order: the file is not portable, like LMDB's own). Followed by meta, url NUL,
 * host NUL, tags (ntags NUL-terminated strings, tags_len bytes). LMDB values are only 2-byte aligned: memcpy it. */
typedef struct rec_hdr {
    uint32_t flags;
    uint32_t meta_len;
    uint32_t url_len; /* without the NUL, like host_len */
    uint32_t host_len;
    uint32_t tags_len;
    uint32_t ntags;
    int64_t stored_ms;
    int64_t expires_ms;
    uint64_t body_len;
} rec_hdr_t;

typedef struct rec {
    rec_hdr_t h;
    const char *meta, *url, *host, *tags;
} rec_t;

typedef enum op_kind { OP_PUT, OP_META, OP_DELETE, OP_PURGE, OP_FLUSH } op_kind_t;

typedef struct op {
    struct op *next;
    op_kind_t kind;
    size_t bytes; /* what it counts in qbytes */
    uint8_t id[CACHE_STORE_ID_LEN];
    /* OP_PUT: rec (rec_len bytes) and body; OP_META: meta in rec (rec_len bytes) and the times */
    char *rec;
    size_t rec_len;
    char *body;
    size_t body_len;
    int body_owned; /* body is a separate malloc'ed block (PUT_TAKE_BODY) */
    int64_t stored_ms, expires_ms;
    /* OP_PURGE */
    cache_store_purge_kind_t purge_kind;
    int soft;
    char *arg;
    cache_store_done_cb done_cb;
    void *cb_data;
    size_t count;
    /* OP_FLUSH */
    int flushed;
} op_t;

enum { DB_META, DB_OBJECTS, DB_BODIES, DB_URLS, DB_TAGS, DB_EXPIRY, DB_NUM };
static const struct {
    const char *name;
    unsigned flags;
} db_defs[DB_NUM] = {
    {"meta", 0},  {"objects", 0}, {"bodies", 0}, {"urls", MDB_DUPSORT | MDB_DUPFIXED}, {"tags", MDB_DUPSORT | MDB_DUPFIXED},
    {"expiry", 0}};

/* Counters of one transaction, added to the store's once it commits. */
typedef struct tally {
    uint64_t puts, evictions, expired, purged;
} tally_t;

struct cache_store {
    char *dir;
    cache_store_options_t opts;
    MDB_env *env;
    MDB_dbi dbi[DB_NUM];
    size_t psize, maxkey;
    uint64_t map_size, high_water, low_water, batch_max;
    /* touch table: last hit per slot, indexed by the id's first 8 bytes */
    _Atomic int64_t *touch;
    size_t touch_mask;
    /* queue */
    pthread_mutex_t mu;
    pthread_cond_t wake;    /* the writer waits on it */
    pthread_cond_t flushed; /* flushers wait on it */
    op_t *head, **tailp;
    size_t qbytes, qops;
    int closing;
    pthread_t writer;
    /* writer's own */
    char *scratch; /* a record being rewritten or deleted */
    size_t scratch_cap;
    uint8_t *ids;
    size_t nids, ids_cap;
    uint64_t rng;
    int64_t next_expire_ms; /* clock_ms */
    int expire_more;
    int64_t last_sync_mono, last_error_log_mono;
    int dirty;
    /* stats */
    _Atomic uint64_t st_objects, st_bytes_used, st_puts, st_dropped, st_too_big, st_evictions, st_expired, st_purged, st_map_full,
        st_commits;
};

const char *cache_store_strerror(int err)
{
    switch (err) {
    case 0:
        return "ok";
    case CACHE_STORE_ENOTFOUND:
        return "not found";
    case CACHE_STORE_EDROPPED:
        return "write queue full: dropped";
    case CACHE_STORE_ETOOBIG:
        return "object over max_object_size";
    case CACHE_STORE_EINVAL:
        return "invalid argument";
    case CACHE_STORE_ENOMEM:
        return "out of memory";
    case CACHE_STORE_EIO:
        return "LMDB error";
    default:
        return "unknown error";
    }
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t realtime_ms(void *unused)
{
    struct timespec ts;
    (void)unused;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t store_now(cache_store_t *s)
{
    return s->opts.clock_ms(s->opts.clock_data);
}

static uint64_t load_u64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static void add(_Atomic uint64_t *counter, uint64_t n)
{
    atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

/* ---- records ---------------------------------------------------------------------------------------------- */

static int rec_parse(const void *data, size_t len, rec_t *r)
{
    const char *p = data;
    size_t need;

    if (len < sizeof(r->h))
        return -1;
    memcpy(&r->h, p, sizeof(r->h));
    need = sizeof(r->h) + (size_t)r->h.meta_len + r->h.url_len + 1 + r->h.host_len + 1 + r->h.tags_len;
    if (need != len)
        return -1;
    r->meta = p + sizeof(r->h);
    r->url = r->meta + r->h.meta_len;
    r->host = r->url + r->h.url_len + 1;
    r->tags = r->host + r->h.host_len + 1;
    if (r->url[r->h.url_len] != '\0' || r->host[r->h.host_len] != '\0' || (r->h.tags_len != 0 && r->tags[r->h.tags_len - 1]))
        return -1;
    return 0;
}

/* Writes a record with meta `meta` and the strings of `strs` (url NUL host NUL tags, strs_len bytes) at dst. */
static size_t rec_write(char *dst, const rec_hdr_t *h, const void *meta, const char *strs, size_t strs_len)
{
    memcpy(dst, h, sizeof(*h));
    if (h->meta_len != 0)
        memcpy(dst + sizeof(*h), meta, h->meta_len);
    memcpy(dst + sizeof(*h) + h->meta_len, strs, strs_len);
    return sizeof(*h) + h->meta_len + strs_len;
}

static void item_from_rec(cache_store_item_t *out, const rec_t *r)
{
    *out = (cache_store_item_t){.meta = r->meta,
                                .meta_len = r->h.meta_len,
                                .body_len = r->h.body_len,
                                .url = r->url,
                                .host = r->host,
                                .tags = r->tags,
                                .ntags = r->h.ntags,
                                .stored_ms = r->h.stored_ms,
                                .expires_ms = r->h.expires_ms,
                                .flags = r->h.flags};
}

/* An index key: the string, cut to LMDB's maximum key size. */
static MDB_val index_key(cache_store_t *s, const char *str, size_t len)
{
    return (MDB_val){len < s->maxkey ? len : s->maxkey, (void *)str};
}

/* ---- reads (any thread) ----------------------------------------------------------------------------------- */

/* Finds `id` in txn: *r points into the map; with body, *body too (NULL when empty). */
static int read_object(cache_store_t *s, MDB_txn *txn, const uint8_t *id, rec_t *r, const void **body)
{
    MDB_val k = {CACHE_STORE_ID_LEN, (void *)id}, v;
    int rc;

    if ((rc = mdb_get(txn, s->dbi[DB_OBJECTS], &k, &v)) != 0)
        return rc == MDB_NOTFOUND ? CACHE_STORE_ENOTFOUND : CACHE_STORE_EIO;
    if (rec_parse(v.mv_data, v.mv_size, r) != 0)
        return CACHE_STORE_EIO;
    if (body == NULL)
        return 0;
    *body = NULL;
    if (r->h.body_len == 0)
        return 0;
    if (mdb_get(txn, s->dbi[DB_BODIES], &k, &v) != 0 || v.mv_size != r->h.body_len)
        return CACHE_STORE_EIO;
    *body = v.mv_data;
    return 0;
}

static int get_copy(cache_store_t *s, const uint8_t *id, int with_body, cache_store_alloc_cb alloc, void *alloc_data,
                    cache_store_item_t *out)
{
    MDB_txn *txn;
    rec_t r;
    const void *body = NULL;
    size_t strs_len, body_len, total;
    char *p;
    int rc;

    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
        return CACHE_STORE_EIO;
    if ((rc = read_object(s, txn, id, &r, with_body ? &body : NULL)) != 0)
        goto out;
    strs_len = r.h.url_len + 1 + r.h.host_len + 1 + r.h.tags_len;
    body_len = with_body ? (size_t)r.h.body_len : 0;
    total = r.h.meta_len + body_len + strs_len;
    if ((p = alloc(total, alloc_data)) == NULL) {
        rc = CACHE_STORE_ENOMEM;
        goto out;
    }
    memcpy(p, r.meta, r.h.meta_len);
    if (body_len != 0)
        memcpy(p + r.h.meta_len, body, body_len);
    memcpy(p + r.h.meta_len + body_len, r.url, strs_len);
    item_from_rec(out, &r);
    out->meta = p;
    out->body = with_body ? p + r.h.meta_len : NULL;
    out->url = p + r.h.meta_len + body_len;
    out->host = out->url + r.h.url_len + 1;
    out->tags = out->host + r.h.host_len + 1;
out:
    mdb_txn_abort(txn);
    return rc;
}

int cache_store_get(cache_store_t *s, const uint8_t id[CACHE_STORE_ID_LEN], cache_store_alloc_cb alloc, void *alloc_data,
                    cache_store_item_t *out)
{
    return get_copy(s, id, 1, alloc, alloc_data, out);
}

int cache_store_get_meta(cache_store_t *s, const uint8_t id[CACHE_STORE_ID_LEN], cache_store_alloc_cb alloc, void *alloc_data,
                         cache_store_item_t *out)
{
    return get_copy(s, id, 0, alloc, alloc_data, out);
}

struct cache_store_ref {
    MDB_txn *txn;
};

int cache_store_get_ref(cache_store_t *s, const uint8_t id[CACHE_STORE_ID_LEN], cache_store_ref_t **ref, cache_store_item_t *out)
{
    cache_store_ref_t *h;
    rec_t r;
    const void *body;
    int rc;

    *ref = NULL;
    if ((h = malloc(sizeof(*h))) == NULL)
        return CACHE_STORE_ENOMEM;
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &h->txn) != 0) {
        free(h);
        return CACHE_STORE_EIO;
    }
    if ((rc = read_object(s, h->txn, id, &r, &body)) != 0) {
        cache_store_release(h);
        return rc;
    }
    item_from_rec(out, &r);
    out->body = body;
    *ref = h;
    return 0;
}

void cache_store_release(cache_store_ref_t *ref)
{
    if (ref == NULL)
        return;
    mdb_txn_abort(ref->txn);
    free(ref);
}

void cache_store_touch(cache_store_t *s, const uint8_t id[CACHE_STORE_ID_LEN], int64_t now_ms)
{
    _Atomic int64_t *slot = &s->touch[load_u64(id) & s->touch_mask];

    /* read first: a hot object's slot is not written (and its cache line not stolen) on every hit */
    if (atomic_load_explicit(slot, memory_order_relaxed) < now_ms)
        atomic_store_explicit(slot, now_ms, memory_order_relaxed);
}

void cache_store_stats(cache_store_t *s, cache_store_stats_t *out)
{
#define LOAD(x) atomic_load_explicit(&s->x, memory_order_relaxed)
    *out = (cache_store_stats_t){.objects = LOAD(st_objects),
                                 .bytes_used = LOAD(st_bytes_used),
                                 .map_size = s->map_size,
                                 .puts = LOAD(st_puts),
                                 .puts_dropped = LOAD(st_dropped),
                                 .puts_too_big = LOAD(st_too_big),
                                 .evictions = LOAD(st_evictions),
                                 .expired = LOAD(st_expired),
                                 .purged = LOAD(st_purged),
                                 .map_full = LOAD(st_map_full),
                                 .commits = LOAD(st_commits)};
#undef LOAD
    pthread_mutex_lock(&s->mu);
    out->queue_bytes = s->qbytes;
    out->queue_ops = s->qops;
    pthread_mutex_unlock(&s->mu);
}

/* ---- the queue (any thread) ------------------------------------------------------------------------------- */

/* Reserves room for an op of `bytes`; bounded ops fail when the queue is full. */
static int reserve(cache_store_t *s, size_t bytes, int bounded)
{
    int ok = 1;

    pthread_mutex_lock(&s->mu);
    if (bounded && (s->qbytes + bytes > s->opts.queue_max_bytes || s->qops >= s->opts.queue_max_ops))
        ok = 0;
    else
        s->qbytes += bytes, s->qops++;
    pthread_mutex_unlock(&s->mu);
    if (!ok)
        add(&s->st_dropped, 1);
    return ok;
}

static void unreserve(cache_store_t *s, size_t bytes)
{
    pthread_mutex_lock(&s->mu);
    s->qbytes -= bytes, s->qops--;
    pthread_mutex_unlock(&s->mu);
}

static void enqueue(cache_store_t *s, op_t *op)
{
    op->next = NULL;
    pthread_mutex_lock(&s->mu);
    *s->tailp = op;
    s->tailp = &op->next;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
}

static void op_free(op_t *op)
{
    if (op->body_owned)
        free(op->body);
    free(op);
}

int cache_store_put(cache_store_t *s, const uint8_t id[CACHE_STORE_ID_LEN], const cache_store_object_t *obj, unsigned put_flags)
{
    int take = (put_flags & CACHE_STORE_PUT_TAKE_BODY) != 0;
    size_t url_len, host_len, tags_len = 0, ntags = 0, rec_len, bytes;
    rec_hdr_t h;
    op_t *op;
    char *p;
    int rc = CACHE_STORE_EINVAL;

    if (obj->url == NULL || obj->host == NULL || (url_len = strlen(obj->url)) == 0 || (host_len = strlen(obj->host)) == 0 ||
        host_len > url_len || memcmp(obj->url, obj->host, host_len) != 0 || obj->meta_len > UINT32_MAX ||
        (obj->meta_len != 0 && obj->meta == NULL) || (obj->body_len != 0 && obj->body == NULL))
        goto fail;
    for (size_t i = 0; i < obj->ntags; i++) {
        size_t l = strlen(obj->tags[i]);
        if (l != 0)
            tags_len += l + 1, ntags++;
    }
    if (url_len > UINT32_MAX || host_len > UINT32_MAX || tags_len > UINT32_MAX)
        goto fail;
    rec_len = sizeof(h) + obj->meta_len + url_len + 1 + host_len + 1 + tags_len;
    if (rec_len - sizeof(h) + obj->body_len > s->opts.max_object_size) {
        add(&s->st_too_big, 1);
        rc = CACHE_STORE_ETOOBIG;
        goto fail;
    }
    bytes = sizeof(*op) + rec_len + obj->body_len;
    if (!reserve(s, bytes, 1)) {
        rc = CACHE_STORE_EDROPPED;
        goto fail;
    }
    /* the copy is made outside the queue's mutex */
    if ((op = malloc(sizeof(*op) + rec_len + (take ? 0 : obj->body_len))) == NULL) {
        unreserve(s, bytes);
        rc = CACHE_STORE_ENOMEM;
        goto fail;
    }
    *op = (op_t){.kind = OP_PUT, .bytes = bytes, .rec = (char *)(op + 1), .rec_len = rec_len, .body_len = obj->body_len};
    memcpy(op->id, id, CACHE_STORE_ID_LEN);
    h = (rec_hdr_t){.flags = obj->flags,
                    .meta_len = (uint32_t)obj->meta_len,
                    .url_len = (uint32_t)url_len,
                    .host_len = (uint32_t)host_len,
                    .tags_len = (uint32_t)tags_len,
                    .ntags = (uint32_t)ntags,
                    .stored_ms = obj->stored_ms,
                    .expires_ms = obj->expires_ms,
                    .body_len = obj->body_len};
    memcpy(op->rec, &h, sizeof(h));
    p = op->rec + sizeof(h);
    if (obj->meta_len != 0)
        memcpy(p, obj->meta, obj->meta_len);
    p += obj->meta_len;
    memcpy(p, obj->url, url_len + 1);
    p += url_len + 1;
    memcpy(p, obj->host, host_len + 1);
    p += host_len + 1;
    for (size_t i = 0; i < obj->ntags; i++) {
        size_t l = strlen(obj->tags[i]);
        if (l != 0) {
            memcpy(p, obj->tags[i], l + 1);
            p += l + 1;
        }
    }
    if (take) {
        op->body = (char *)obj->body;
        op->body_owned = 1;
    } else {
        op->body = op->rec + rec_len;
        if (obj->body_len != 0)
            memcpy(op->body, obj->body, obj->body_len);
    }
    enqueue(s, op);
    return 0;
fail:
    if (take)
        free((void *)obj->body);
    return rc;
}

int cache_store_update_meta(cache_store_t *s, const uint8_t id[CACHE_STORE_ID_LEN], const void *meta, size_t meta_len,
                            int64_t stored_ms, int64_t expires_ms)
{
    size_t bytes = sizeof(op_t) + meta_len;
    op_t *op;

    if (meta_len > UINT32_MAX || (meta_len != 0 && meta == NULL))
        return CACHE_STORE_EINVAL;
    if (meta_len > s->opts.max_object_size) {
        add(&s->st_too_big, 1);
        return CACHE_STORE_ETOOBIG;
    }
    if (!reserve(s, bytes, 1))
        return CACHE_STORE_EDROPPED;
    if ((op = malloc(bytes)) == NULL) {
        unreserve(s, bytes);
        return CACHE_STORE_ENOMEM;
    }
    *op = (op_t){.kind = OP_META,
                 .bytes = bytes,
                 .rec = (char *)(op + 1),
                 .rec_len = meta_len,
                 .stored_ms = stored_ms,
                 .expires_ms = expires_ms};
    memcpy(op->id, id, CACHE_STORE_ID_LEN);
    if (meta_len != 0)
        memcpy(op->rec, meta, meta_len);
    enqueue(s, op);
    return 0;
}

/* An unbounded op of kind with `extra` bytes after it. */
static op_t *small_op(cache_store_t *s, op_kind_t kind, size_t extra)
{
    op_t *op;

    reserve(s, sizeof(*op) + extra, 0);
    if ((op = malloc(sizeof(*op) + extra)) == NULL) {
        unreserve(s, sizeof(*op) + extra);
        return NULL;
    }
    *op = (op_t){.kind = kind, .bytes = sizeof(*op) + extra};
    return op;
}

int cache_store_delete(cache_store_t *s, const uint8_t id[CACHE_STORE_ID_LEN])
{
    op_t *op;

    if ((op = small_op(s, OP_DELETE, 0)) == NULL)
        return CACHE_STORE_ENOMEM;
    memcpy(op->id, id, CACHE_STORE_ID_LEN);
    enqueue(s, op);
    return 0;
}

int cache_store_purge(cache_store_t *s, cache_store_purge_kind_t kind, const char *arg, int soft, cache_store_done_cb done_cb,
                      void *cb_data)
{
    size_t len = 0;
    op_t *op;

    if (kind != CACHE_STORE_PURGE_ALL) {
        if (kind > CACHE_STORE_PURGE_ALL || arg == NULL || (len = strlen(arg)) == 0)
            return CACHE_STORE_EINVAL;
    }
    if ((op = small_op(s, OP_PURGE, len + 1)) == NULL)
        return CACHE_STORE_ENOMEM;
    op->purge_kind = kind;
    op->soft = soft != 0;
    op->arg = (char *)(op + 1);
    memcpy(op->arg, len != 0 ? arg : "", len + 1);
    op->done_cb = done_cb;
    op->cb_data = cb_data;
    enqueue(s, op);
    return 0;
}

void cache_store_flush(cache_store_t *s)
{
    op_t *op;

    while ((op = small_op(s, OP_FLUSH, 0)) == NULL)
        usleep(1000);
    enqueue(s, op);
    pthread_mutex_lock(&s->mu);
    while (!op->flushed)
        pthread_cond_wait(&s->flushed, &s->mu);
    pthread_mutex_unlock(&s->mu);
    free(op); /* the writer leaves flush ops to their waiter */
}

/* ---- writer: objects in a write transaction --------------------------------------------------------------- */

static int grow(char **buf, size_t *cap, size_t need)
{
    char *n;

    if (need <= *cap)
        return 0;
    if ((n = realloc(*buf, need + need / 2)) == NULL)
        return ENOMEM;
    *buf = n;
    *cap = need + need / 2;
    return 0;
}

/* Copies the record of `id` into s->scratch (it must survive the writes that follow) and parses it. */
static int load_rec(cache_store_t *s, MDB_txn *txn, const uint8_t *id, rec_t *r)
{
    MDB_val k = {CACHE_STORE_ID_LEN, (void *)id}, v;
    int rc;

    if ((rc = mdb_get(txn, s->dbi[DB_OBJECTS], &k, &v)) != 0)
        return rc;
    if ((rc = grow(&s->scratch, &s->scratch_cap, v.mv_size)) != 0)
        return rc;
    memcpy(s->scratch, v.mv_data, v.mv_size);
    if (rec_parse(s->scratch, v.mv_size, r) != 0)
        r->h = (rec_hdr_t){0}, r->url = r->host = r->tags = NULL; /* damaged: delete what can be deleted */
    return 0;
}

static int del_ignoring_missing(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, MDB_val *v)
{
    int rc = mdb_del(txn, dbi, k, v);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static MDB_val expiry_key(uint8_t *buf, int64_t expires_ms, const uint8_t *id)
{
    put_be64(buf, (uint64_t)expires_ms);
    memcpy(buf + 8, id, CACHE_STORE_ID_LEN);
    return (MDB_val){8 + CACHE_STORE_ID_LEN, buf};
}

/* The index entries of a record: url, tags, expiry. */
static int index_rec(cache_store_t *s, MDB_txn *txn, const uint8_t *id, const rec_t *r, int add_them)
{
    MDB_val idv = {CACHE_STORE_ID_LEN, (void *)id}, k, empty = {0, ""};
    uint8_t ebuf[8 + CACHE_STORE_ID_LEN];
    const char *t = r->tags;
    int rc;

    if (r->url == NULL)
        return 0;
    k = index_key(s, r->url, r->h.url_len);
    if ((rc = add_them ? mdb_put(txn, s->dbi[DB_URLS], &k, &idv, 0) : del_ignoring_missing(txn, s->dbi[DB_URLS], &k, &idv)) != 0)
        return rc;
    for (uint32_t i = 0; i < r->h.ntags; i++, t += strlen(t) + 1) {
        k = index_key(s, t, strlen(t));
        if ((rc = add_them ? mdb_put(txn, s->dbi[DB_TAGS], &k, &idv, 0) : del_ignoring_missing(txn, s->dbi[DB_TAGS], &k, &idv)) !=
            0)
            return rc;
    }
    if (r->h.expires_ms > 0) {
        k = expiry_key(ebuf, r->h.expires_ms, id);
        if ((rc = add_them ? mdb_put(txn, s->dbi[DB_EXPIRY], &k, &empty, 0)
                           : del_ignoring_missing(txn, s->dbi[DB_EXPIRY], &k, NULL)) != 0)
            return rc;
    }
    return 0;
}

/* Deletes `id` and its index entries. MDB_NOTFOUND when there is none. */
static int obj_delete(cache_store_t *s, MDB_txn *txn, const uint8_t *id)
{
    MDB_val k = {CACHE_STORE_ID_LEN, (void *)id};
    rec_t r;
    int rc;

    if ((rc = load_rec(s, txn, id, &r)) != 0)
        return rc;
    if ((rc = index_rec(s, txn, id, &r, 0)) != 0 || (rc = del_ignoring_missing(txn, s->dbi[DB_BODIES], &k, NULL)) != 0)
        return rc;
    return mdb_del(txn, s->dbi[DB_OBJECTS], &k, NULL);
}

static int obj_put(cache_store_t *s, MDB_txn *txn, op_t *op)
{
    MDB_val k = {CACHE_STORE_ID_LEN, op->id}, v = {op->rec_len, NULL};
    rec_t r;
    int rc;

    if ((rc = obj_delete(s, txn, op->id)) != 0 && rc != MDB_NOTFOUND)
        return rc;
    if ((rc = mdb_put(txn, s->dbi[DB_OBJECTS], &k, &v, MDB_RESERVE)) != 0)
        return rc;
    memcpy(v.mv_data, op->rec, op->rec_len);
    if (op->body_len != 0) {
        v = (MDB_val){op->body_len, NULL};
        if ((rc = mdb_put(txn, s->dbi[DB_BODIES], &k, &v, MDB_RESERVE)) != 0)
            return rc;
        memcpy(v.mv_data, op->body, op->body_len);
    }
    rec_parse(op->rec, op->rec_len, &r); /* built by cache_store_put: cannot fail */
    return index_rec(s, txn, op->id, &r, 1);
}

/* Rewrites the record of `id` with a new header and meta (the strings are kept). */
static int rewrite_rec(cache_store_t *s, MDB_txn *txn, const uint8_t *id, const rec_t *old, const rec_hdr_t *h, const void *meta)
{
    MDB_val k = {CACHE_STORE_ID_LEN, (void *)id}, v;
    size_t strs_len = old->h.url_len + 1 + old->h.host_len + 1 + old->h.tags_len;
    int rc;

    v.mv_size = sizeof(*h) + h->meta_len + strs_len;
    if ((rc = mdb_put(txn, s->dbi[DB_OBJECTS], &k, &v, MDB_RESERVE)) != 0)
        return rc;
    rec_write(v.mv_data, h, meta, old->url, strs_len);
    return 0;
}

static int obj_update_meta(cache_store_t *s, MDB_txn *txn, op_t *op)
{
    uint8_t ebuf[8 + CACHE_STORE_ID_LEN];
    MDB_val k, empty = {0, ""};
    rec_t r;
    rec_hdr_t h;
    int rc;

    if ((rc = load_rec(s, txn, op->id, &r)) != 0)
        return rc == MDB_NOTFOUND ? 0 : rc;
    if (r.url == NULL)
        return obj_delete(s, txn, op->id);
    h = r.h;
    h.meta_len = (uint32_t)op->rec_len;
    h.flags &= ~CACHE_STORE_F_STALE;
    h.stored_ms = op->stored_ms;
    h.expires_ms = op->expires_ms;
    if (r.h.expires_ms != h.expires_ms) {
        if (r.h.expires_ms > 0 &&
            (rc = del_ignoring_missing(txn, s->dbi[DB_EXPIRY], (k = expiry_key(ebuf, r.h.expires_ms, op->id), &k), NULL)) != 0)
            return rc;
        if (h.expires_ms > 0 &&
            (rc = mdb_put(txn, s->dbi[DB_EXPIRY], (k = expiry_key(ebuf, h.expires_ms, op->id), &k), &empty, 0)) != 0)
            return rc;
    }
    return rewrite_rec(s, txn, op->id, &r, &h, op->rec);
}

/* ---- writer: purge, eviction, expiry ---------------------------------------------------------------------- */

static int ids_push(cache_store_t *s, const void *id)
{
    if (s->nids == s->ids_cap) {
        size_t cap = s->ids_cap ? s->ids_cap * 2 : 256;
        uint8_t *n = realloc(s->ids, cap * CACHE_STORE_ID_LEN);
        if (n == NULL)
            return ENOMEM;
        s->ids = n;
        s->ids_cap = cap;
    }
    memcpy(s->ids + s->nids++ * CACHE_STORE_ID_LEN, id, CACHE_STORE_ID_LEN);
    return 0;
}

/* Collects into s->ids the ids of index `dbi` under key `key` (exact) or every key starting with it (prefix). */
static int collect_index(cache_store_t *s, MDB_txn *txn, MDB_dbi dbi, MDB_val key, int prefix)
{
    MDB_cursor *c;
    MDB_val k = key, v;
    int rc;

    if ((rc = mdb_cursor_open(txn, dbi, &c)) != 0)
        return rc;
    for (rc = mdb_cursor_get(c, &k, &v, prefix ? MDB_SET_RANGE : MDB_SET_KEY); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size < key.mv_size || memcmp(k.mv_data, key.mv_data, key.mv_size) != 0 || (!prefix && k.mv_size != key.mv_size))
            break;
        if (v.mv_size == CACHE_STORE_ID_LEN && (rc = ids_push(s, v.mv_data)) != 0)
            break;
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Collects every id into s->ids. */
static int collect_all(cache_store_t *s, MDB_txn *txn)
{
    MDB_cursor *c;
    MDB_val k, v;
    int rc;

    if ((rc = mdb_cursor_open(txn, s->dbi[DB_OBJECTS], &c)) != 0)
        return rc;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
        if (k.mv_size == CACHE_STORE_ID_LEN && (rc = ids_push(s, k.mv_data)) != 0)
            break;
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int has_tag(const rec_t *r, const char *tag)
{
    const char *t = r->tags;
    for (uint32_t i = 0; i < r->h.ntags; i++, t += strlen(t) + 1)
        if (strcmp(t, tag) == 0)
            return 1;
    return 0;
}

static int purge_matches(const op_t *op, const rec_t *r)
{
    if (r->url == NULL)
        return op->purge_kind == CACHE_STORE_PURGE_ALL;
    switch (op->purge_kind) {
    case CACHE_STORE_PURGE_URL:
        return strcmp(r->url, op->arg) == 0;
    case CACHE_STORE_PURGE_PREFIX:
        return strncmp(r->url, op->arg, strlen(op->arg)) == 0;
    case CACHE_STORE_PURGE_TAG:
        return has_tag(r, op->arg);
    case CACHE_STORE_PURGE_HOST:
        return strcmp(r->host, op->arg) == 0;
    default:
        return 1;
    }
}

static int purge(cache_store_t *s, MDB_txn *txn, op_t *op)
{
    size_t len = strlen(op->arg);
    MDB_val key = index_key(s, op->arg, len);
    int rc = 0;

    op->count = 0;
    s->nids = 0;
    switch (op->purge_kind) {
    case CACHE_STORE_PURGE_URL:
        rc = collect_index(s, txn, s->dbi[DB_URLS], key, 0);
        break;
    case CACHE_STORE_PURGE_PREFIX:
    case CACHE_STORE_PURGE_HOST: /* URLs begin with their host */
        rc = collect_index(s, txn, s->dbi[DB_URLS], key, 1);
        break;
    case CACHE_STORE_PURGE_TAG:
        rc = collect_index(s, txn, s->dbi[DB_TAGS], key, 0);
        break;
    case CACHE_STORE_PURGE_ALL:
        if (!op->soft) {
            MDB_stat st;
            if ((rc = mdb_stat(txn, s->dbi[DB_OBJECTS], &st)) != 0)
                return rc;
            for (int i = DB_OBJECTS; i < DB_NUM; i++)
                if ((rc = mdb_drop(txn, s->dbi[i], 0)) != 0)
                    return rc;
            op->count = st.ms_entries;
            return 0;
        }
        rc = collect_all(s, txn);
        break;
    }
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < s->nids; i++) {
        const uint8_t *id = s->ids + i * CACHE_STORE_ID_LEN;
        rec_t r;
        if ((rc = load_rec(s, txn, id, &r)) != 0) {
            if (rc == MDB_NOTFOUND)
                continue;
            return rc;
        }
        if (!purge_matches(op, &r))
            continue;
        if (!op->soft) {
            rc = obj_delete(s, txn, id);
        } else if (r.url != NULL) {
            rec_hdr_t h = r.h;
            h.flags |= CACHE_STORE_F_STALE;
            rc = rewrite_rec(s, txn, id, &r, &h, r.meta);
        }
        if (rc != 0)
            return rc;
        op->count++;
    }
    return 0;
}

static uint64_t used_bytes(cache_store_t *s, MDB_txn *txn)
{
    uint64_t pages = 2; /* the meta pages */
    MDB_stat st;

    for (int i = -2; i < DB_NUM; i++) { /* -2: LMDB's free list (dbi 0), -1: its main DB (dbi 1) */
        if (mdb_stat(txn, i < 0 ? (MDB_dbi)(i + 2) : s->dbi[i], &st) == 0)
            pages += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
    }
    return pages * s->psize;
}

static uint64_t rng_next(cache_store_t *s)
{
    uint64_t x = s->rng; /* xorshift64* */
    x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
    s->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Evicts sampled objects until the data in use is at most `target` bytes. */
static int evict(cache_store_t *s, MDB_txn *txn, uint64_t target, int64_t now, tally_t *t)
{
    MDB_cursor *c;
    int rc = 0;

    if ((rc = mdb_cursor_open(txn, s->dbi[DB_OBJECTS], &c)) != 0)
        return rc;
    while (used_bytes(s, txn) > target) {
        uint8_t victim[CACHE_STORE_ID_LEN], probe[CACHE_STORE_ID_LEN];
        int64_t best = INT64_MAX;
        int found = 0;
        for (int i = 0; i < CACHE_STORE_EVICT_SAMPLES; i++) {
            MDB_val k = {sizeof(probe), probe}, v;
            rec_hdr_t h;
            int64_t last;
            for (size_t j = 0; j < sizeof(probe); j += 8) {
                uint64_t r = rng_next(s);
                memcpy(probe + j, &r, 8);
            }
            if ((rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE)) == MDB_NOTFOUND)
                rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); /* past the last id: wrap around */
            if (rc != 0)
                break;
            if (v.mv_size < sizeof(h) || k.mv_size != CACHE_STORE_ID_LEN) {
                last = INT64_MIN; /* damaged: evict it */
            } else {
                memcpy(&h, v.mv_data, sizeof(h));
                last = atomic_load_explicit(&s->touch[load_u64(k.mv_data) & s->touch_mask], memory_order_relaxed);
                if (last < h.stored_ms)
                    last = h.stored_ms;
                if (h.expires_ms > 0 && h.expires_ms <= now)
                    last = INT64_MIN; /* useless anyway */
            }
            if (!found || last < best) {
                memcpy(victim, k.mv_data, sizeof(victim));
                best = last;
                found = 1;
            }
        }
        if (rc == MDB_NOTFOUND) { /* nothing left to evict */
            rc = 0;
            break;
        }
        if (rc != 0 || (rc = obj_delete(s, txn, victim)) != 0)
            break;
        t->evictions++;
    }
    mdb_cursor_close(c);
    return rc;
}

/* Deletes up to CACHE_STORE_EXPIRE_BATCH objects whose expires_ms <= now; sets s->expire_more if some may remain. */
static int expire(cache_store_t *s, MDB_txn *txn, int64_t now, tally_t *t)
{
    MDB_cursor *c;
    MDB_val k, v;
    int rc;

    s->nids = 0;
    if ((rc = mdb_cursor_open(txn, s->dbi[DB_EXPIRY], &c)) != 0)
        return rc;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && s->nids < CACHE_STORE_EXPIRE_BATCH;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        const uint8_t *p = k.mv_data;
        uint64_t when = 0;
        if (k.mv_size != 8 + CACHE_STORE_ID_LEN)
            continue;
        for (int i = 0; i < 8; i++)
            when = when << 8 | p[i];
        if ((int64_t)when > now)
            break;
        if ((rc = ids_push(s, p + 8)) != 0)
            break;
    }
    mdb_cursor_close(c);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    s->expire_more = s->nids == CACHE_STORE_EXPIRE_BATCH;
    for (size_t i = 0; i < s->nids; i++) {
        if ((rc = obj_delete(s, txn, s->ids + i * CACHE_STORE_ID_LEN)) == 0)
            t->expired++;
        else if (rc != MDB_NOTFOUND)
            return rc;
    }
    return 0;
}

/* ---- writer: batches -------------------------------------------------------------------------------------- */

#define STORE_BAD_FORMAT 1000000 /* our own "incompatible": not an errno, not an MDB code */

static const char *store_mdb_strerror(int rc)
{
    return rc == STORE_BAD_FORMAT ? "format marker is not " CACHE_STORE_FORMAT : mdb_strerror(rc);
}

static void log_write_error(cache_store_t *s, int rc, size_t nops)
{
    int64_t now = mono_ms();

    if (s->last_error_log_mono != 0 && now - s->last_error_log_mono < ERROR_LOG_INTERVAL_MS)
        return;
    s->last_error_log_mono = now;
    fprintf(stderr, "edgeproxy: cache store %s: write transaction failed: %s (%zu operations dropped)\n", s->dir,
            store_mdb_strerror(rc), nops);
}

/*
 * Applies `batch` in one write transaction and commits it: eviction first if the puts would take the data over the high
 * water mark, the operations, eviction again if the estimate was short, then an expiry pass if do_expire. Without
 * with_puts, puts and meta updates are skipped. Returns 0 (committed; *t tells what it did) or an MDB/errno code
 * (nothing applied).
 */
static int apply(cache_store_t *s, op_t *batch, int64_t now, int do_expire, int with_puts, tally_t *t)
{
    uint64_t incoming = 0;
    MDB_txn *txn;
    MDB_stat st;
    int rc;

    *t = (tally_t){0};
    for (op_t *op = batch; op != NULL && with_puts; op = op->next)
        if (op->kind == OP_PUT)
            incoming += op->rec_len + op->body_len + 2 * s->psize;
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
        return rc;
    if (incoming != 0 && used_bytes(s, txn) + incoming > s->high_water &&
        (rc = evict(s, txn, s->low_water > incoming ? s->low_water - incoming : 0, now, t)) != 0)
        goto fail;
    for (op_t *op = batch; op != NULL; op = op->next) {
        switch (op->kind) {
        case OP_PUT:
            if (with_puts && (rc = obj_put(s, txn, op)) == 0)
                t->puts++;
            break;
        case OP_META:
            if (with_puts)
                rc = obj_update_meta(s, txn, op);
            break;
        case OP_DELETE:
            if ((rc = obj_delete(s, txn, op->id)) == MDB_NOTFOUND)
                rc = 0;
            break;
        case OP_PURGE:
            if ((rc = purge(s, txn, op)) == 0)
                t->purged += op->count;
            break;
        case OP_FLUSH:
            break;
        }
        if (rc != 0)
            goto fail;
    }
    if (used_bytes(s, txn) > s->high_water && (rc = evict(s, txn, s->low_water, now, t)) != 0)
        goto fail;
    if (do_expire && (rc = expire(s, txn, now, t)) != 0)
        goto fail;
    uint64_t used = used_bytes(s, txn);
    if ((rc = mdb_stat(txn, s->dbi[DB_OBJECTS], &st)) != 0)
        goto fail;
    if ((rc = mdb_txn_commit(txn)) != 0)
        return rc;
    atomic_store_explicit(&s->st_objects, st.ms_entries, memory_order_relaxed);
    atomic_store_explicit(&s->st_bytes_used, used, memory_order_relaxed);
    add(&s->st_commits, 1);
    return 0;
fail:
    mdb_txn_abort(txn);
    return rc;
}

/* After MDB_MAP_FULL: evict down to half of max_size in a transaction of its own, so its pages are free for the retry. */
static void evict_hard(cache_store_t *s, int64_t now)
{
    tally_t t = {0};
    MDB_txn *txn;

    if (mdb_txn_begin(s->env, NULL, 0, &txn) != 0)
        return;
    if (evict(s, txn, s->opts.max_size / 2, now, &t) != 0) {
        mdb_txn_abort(txn);
        return;
    }
    if (mdb_txn_commit(txn) != 0)
        return;
    add(&s->st_evictions, t.evictions);
}

static void run_batch(cache_store_t *s, op_t *batch)
{
    int64_t now = store_now(s);
    int do_expire = s->expire_more || now >= s->next_expire_ms, drop_puts = 0, rc;
    size_t nops = 0, nputs = 0;
    tally_t t;

    for (op_t *op = batch; op != NULL; op = op->next, nops++)
        nputs += op->kind == OP_PUT || op->kind == OP_META;
    if (batch == NULL && !do_expire)
        return;
    if (do_expire)
        s->next_expire_ms = now + s->opts.expiry_interval_ms;
    if ((rc = apply(s, batch, now, do_expire, 1, &t)) == MDB_MAP_FULL) {
        add(&s->st_map_full, 1);
        evict_hard(s, now);
        if ((rc = apply(s, batch, now, 0, 1, &t)) == MDB_MAP_FULL) {
            drop_puts = 1;
            rc = apply(s, batch, now, 0, 0, &t);
        }
    }
    if (rc != 0) {
        if (rc != MDB_MAP_FULL)
            log_write_error(s, rc, nops);
        s->expire_more = 0; /* no busy loop on a failing environment */
        t = (tally_t){0};
    } else {
        s->dirty = 1;
    }
    if (rc != 0 || drop_puts)
        add(&s->st_dropped, nputs);
    add(&s->st_puts, t.puts);
    add(&s->st_evictions, t.evictions);
    add(&s->st_expired, t.expired);
    add(&s->st_purged, t.purged);
    for (op_t *op = batch; op != NULL; op = op->next)
        if (op->kind == OP_PURGE && op->done_cb != NULL)
            op->done_cb(rc == 0 ? 0 : CACHE_STORE_EIO, rc == 0 ? op->count : 0, op->cb_data);
}

/* Takes the queue's head: at most BATCH_MAX_OPS operations and batch_max bytes, at least one. Called under s->mu. */
static op_t *take_batch(cache_store_t *s)
{
    op_t *first = s->head, **pp = &s->head;
    size_t bytes = 0, n = 0;

    while (*pp != NULL && n < BATCH_MAX_OPS && (n == 0 || bytes + (*pp)->bytes <= s->batch_max)) {
        bytes += (*pp)->bytes;
        n++;
        pp = &(*pp)->next;
    }
    s->head = *pp;
    *pp = NULL;
    if (s->head == NULL)
        s->tailp = &s->head;
    s->qbytes -= bytes;
    s->qops -= n;
    return n != 0 ? first : NULL;
}

static void *writer_main(void *arg)
{
    cache_store_t *s = arg;

    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->head == NULL && !s->closing && !s->expire_more) {
            int64_t wait_ms = s->opts.expiry_interval_ms, at;
            struct timespec ts;
            if (s->dirty && wait_ms > CACHE_STORE_SYNC_INTERVAL_MS)
                wait_ms = CACHE_STORE_SYNC_INTERVAL_MS;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            at = (int64_t)ts.tv_nsec + wait_ms * 1000000;
            ts.tv_sec += at / 1000000000;
            ts.tv_nsec = at % 1000000000;
            pthread_cond_timedwait(&s->wake, &s->mu, &ts);
        }
        op_t *batch = take_batch(s), *done = NULL;
        pthread_mutex_unlock(&s->mu);

        run_batch(s, batch);
        if (s->dirty && mono_ms() - s->last_sync_mono >= CACHE_STORE_SYNC_INTERVAL_MS) {
            mdb_env_sync(s->env, 1);
            s->dirty = 0;
            s->last_sync_mono = mono_ms();
        }

        pthread_mutex_lock(&s->mu);
        for (op_t *op = batch, *next; op != NULL; op = next) {
            next = op->next;
            if (op->kind == OP_FLUSH) {
                op->flushed = 1; /* its waiter frees it */
            } else {
                op->next = done;
                done = op;
            }
        }
        pthread_cond_broadcast(&s->flushed);
        if (done != NULL) {
            pthread_mutex_unlock(&s->mu);
            for (op_t *next; done != NULL; done = next) {
                next = done->next;
                op_free(done);
            }
            pthread_mutex_lock(&s->mu);
        }
        if (s->closing && s->head == NULL)
            break;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- open and close --------------------------------------------------------------------------------------- */

static int mkdir_p(const char *dir)
{
    char path[4096];
    size_t len = strlen(dir);

    if (len == 0 || len >= sizeof(path))
        return ENAMETOOLONG;
    memcpy(path, dir, len + 1);
    for (char *p = path + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return errno;
        *p = '/';
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return errno;
    return 0;
}

static int is_damage(int rc)
{
    return rc == MDB_INVALID || rc == MDB_CORRUPTED || rc == MDB_VERSION_MISMATCH || rc == MDB_INCOMPATIBLE ||
           rc == MDB_PAGE_NOTFOUND || rc == STORE_BAD_FORMAT;
}

/* Opens the environment and its databases, checks the format marker (writing it into a new one) and reads the first
 * and last entry of every database, so that damage shows now rather than on a worker. */
static int env_open(cache_store_t *s)
{
    MDB_txn *txn = NULL;
    MDB_val k = {6, "format"}, v;
    MDB_stat st;
    int rc, dead;

    if ((rc = mdb_env_create(&s->env)) != 0)
        return rc;
    if ((rc = mdb_env_set_maxdbs(s->env, DB_NUM)) != 0 || (rc = mdb_env_set_mapsize(s->env, s->map_size)) != 0 ||
        (rc = mdb_env_set_maxreaders(s->env, s->opts.max_readers)) != 0 ||
        (rc = mdb_env_open(s->env, s->dir, MDB_NOTLS | MDB_NOMETASYNC, 0600)) != 0 ||
        (rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
        goto fail;
    mdb_reader_check(s->env, &dead); /* reader slots left by a process that died */
    for (int i = 0; i < DB_NUM; i++)
        if ((rc = mdb_dbi_open(txn, db_defs[i].name, db_defs[i].flags | MDB_CREATE, &s->dbi[i])) != 0)
            goto fail;
    if ((rc = mdb_get(txn, s->dbi[DB_META], &k, &v)) == 0) {
        if (v.mv_size != strlen(CACHE_STORE_FORMAT) || memcmp(v.mv_data, CACHE_STORE_FORMAT, v.mv_size) != 0)
            rc = STORE_BAD_FORMAT;
    } else if (rc == MDB_NOTFOUND) {
        if ((rc = mdb_stat(txn, s->dbi[DB_OBJECTS], &st)) == 0 && st.ms_entries != 0)
            rc = STORE_BAD_FORMAT; /* data without a marker: not ours */
        if (rc == 0)
            rc = mdb_put(txn, s->dbi[DB_META], &k, &(MDB_val){strlen(CACHE_STORE_FORMAT), CACHE_STORE_FORMAT}, 0);
    }
    if (rc != 0)
        goto fail;
    for (int i = 0; i < DB_NUM; i++) {
        MDB_cursor *c;
        if ((rc = mdb_cursor_open(txn, s->dbi[i], &c)) != 0)
            goto fail;
        if ((rc = mdb_cursor_get(c, &k, &v, MDB_FIRST)) == 0)
            rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
        mdb_cursor_close(c);
        if (rc != 0 && rc != MDB_NOTFOUND)
            goto fail;
    }
    if ((rc = mdb_env_stat(s->env, &st)) != 0)
        goto fail;
    s->psize = st.ms_psize;
    s->maxkey = (size_t)mdb_env_get_maxkeysize(s->env);
    if ((rc = mdb_stat(txn, s->dbi[DB_OBJECTS], &st)) != 0)
        goto fail;
    atomic_store(&s->st_objects, st.ms_entries);
    atomic_store(&s->st_bytes_used, used_bytes(s, txn));
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc == 0)
        return 0;
fail:
    if (txn != NULL)
        mdb_txn_abort(txn);
    mdb_env_close(s->env);
    s->env = NULL;
    return rc;
}

/* Moves a damaged environment out of the way: data.mdb to data.mdb.corrupt (replacing an older one), lock.mdb away. */
static void move_aside(cache_store_t *s)
{
    char from[4200], to[4200];

    snprintf(from, sizeof(from), "%s/data.mdb", s->dir);
    snprintf(to, sizeof(to), "%s/data.mdb.corrupt", s->dir);
    if (rename(from, to) != 0)
        unlink(from);
    snprintf(from, sizeof(from), "%s/lock.mdb", s->dir);
    unlink(from);
}

static void store_free(cache_store_t *s)
{
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->flushed);
    free((void *)s->touch);
    free(s->scratch);
    free(s->ids);
    free(s->dir);
    free(s);
}

int cache_store_open(const char *dir, const cache_store_options_t *opts, cache_store_t **out, char *errbuf, size_t errlen)
{
    cache_store_t *s;
    pthread_condattr_t ca;
    sigset_t all, old;
    size_t nslots = 1 << 16;
    int rc;

    *out = NULL;
    if (opts->max_size < MiB) {
        snprintf(errbuf, errlen, "cache store %s: max_size must be at least 1 MiB", dir);
        return CACHE_STORE_EINVAL;
    }
    if ((s = calloc(1, sizeof(*s))) == NULL || (s->dir = strdup(dir)) == NULL) {
        free(s);
        snprintf(errbuf, errlen, "cache store %s: out of memory", dir);
        return CACHE_STORE_ENOMEM;
    }
    s->opts = *opts;
    if (s->opts.max_object_size == 0)
        s->opts.max_object_size = s->opts.max_size / 8;
    if (s->opts.queue_max_bytes == 0)
        s->opts.queue_max_bytes = 64 * MiB;
    if (s->opts.queue_max_bytes < s->opts.max_object_size + sizeof(op_t) + 4096)
        s->opts.queue_max_bytes = s->opts.max_object_size + sizeof(op_t) + 4096;
    if (s->opts.queue_max_ops == 0)
        s->opts.queue_max_ops = 4096;
    if (s->opts.max_readers == 0)
        s->opts.max_readers = 1024;
    if (s->opts.expiry_interval_ms == 0)
        s->opts.expiry_interval_ms = 5000;
    if (s->opts.clock_ms == NULL)
        s->opts.clock_ms = realtime_ms;
    s->map_size = (s->opts.max_size + s->opts.max_size / 2 + 2 * s->opts.max_object_size + 8 * MiB + MiB - 1) / MiB * MiB;
    s->high_water = s->opts.max_size / 10 * 9;
    s->low_water = s->opts.max_size / 10 * 8;
    s->batch_max = s->opts.max_size / 8;
    while (nslots < (1 << 22) && nslots < s->opts.max_size / 4096)
        nslots <<= 1;
    s->touch_mask = nslots - 1;
    s->tailp = &s->head;
    s->rng = (uint64_t)mono_ms() * 0x9E3779B97F4A7C15ull ^ (uintptr_t)s ^ 1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&s->flushed, NULL);
    if ((s->touch = calloc(nslots, sizeof(*s->touch))) == NULL) {
        snprintf(errbuf, errlen, "cache store %s: out of memory", dir);
        store_free(s);
        return CACHE_STORE_ENOMEM;
    }
    if ((rc = mkdir_p(dir)) != 0) {
        snprintf(errbuf, errlen, "cache store %s: cannot create the directory: %s", dir, strerror(rc));
        store_free(s);
        return CACHE_STORE_EIO;
    }
    if (is_damage(rc = env_open(s))) {
        fprintf(stderr, "edgeproxy: cache store %s: cannot open (%s): moved data.mdb to data.mdb.corrupt, starting empty\n", dir,
                store_mdb_strerror(rc));
        move_aside(s);
        rc = env_open(s);
    }
    if (rc != 0) {
        snprintf(errbuf, errlen, "cache store %s: %s", dir, store_mdb_strerror(rc));
        store_free(s);
        return CACHE_STORE_EIO;
    }
    s->next_expire_ms = store_now(s); /* a first pass at once: objects may have expired while we were down */
    s->last_sync_mono = mono_ms();
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the writer takes no signals */
    rc = pthread_create(&s->writer, NULL, writer_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(errbuf, errlen, "cache store %s: cannot start the writer thread: %s", dir, strerror(rc));
        mdb_env_close(s->env);
        store_free(s);
        return CACHE_STORE_EIO;
    }
    pthread_setname_np(s->writer, "edge-cache-wr");
    *out = s;
    return 0;
}

void cache_store_close(cache_store_t *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->closing = 1;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->writer, NULL);
    mdb_env_sync(s->env, 1);
    mdb_env_close(s->env);
    store_free(s);
}
