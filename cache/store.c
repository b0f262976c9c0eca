/*
 * cache/store.c: the cache's object store on LMDB (the manual is the store section of cache/cache.h): opening and
 * closing (the environment, its databases, a corrupt file moved aside), the reads and the queueing side of the writes.
 * The writer thread is in cache/store_writer.c; what both share is in cache/store_internal.h.
 *
 * Threads: workers call put/update_meta/delete/purge (which build an op_t and append it to the queue under s->mu),
 * get* (their own read transactions) and touch (one relaxed atomic). The writer thread (cs_writer_main) is the only one
 * that opens write transactions; everything in cache/store_writer.c runs on it, and the scratch buffers in the store
 * are its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include "cache/store_internal.h"

#define MiB (1024ull * 1024)

static const struct {
    const char *name;
    unsigned flags;
} db_defs[DB_NUM] = {
    {"meta", 0},  {"objects", 0}, {"bodies", 0}, {"urls", MDB_DUPSORT | MDB_DUPFIXED}, {"tags", MDB_DUPSORT | MDB_DUPFIXED},
    {"expiry", 0}};

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

static int64_t realtime_ms(void *unused)
{
    struct timespec ts;
    (void)unused;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- records ---------------------------------------------------------------------------------------------- */

int cs_rec_parse(const void *data, size_t len, rec_t *r)
{
    const char *p = data;
    size_t need;

    if (len < sizeof(r->h))
        return -1;
    memcpy(&r->h, p, sizeof(r->h));
    need = sizeof(r->h) + (size_t)r->h.meta_len + r->h.url_len + 1 + r->h.host_len + 1 + r->h.tags_len;
    if ((r->h.flags & REC_F_INLINE) != 0) {
        if (r->h.body_len > len) /* damaged: no wrap-around below */
            return -1;
        need += r->h.body_len;
    }
    if (need != len)
        return -1;
    r->meta = p + sizeof(r->h);
    r->url = r->meta + r->h.meta_len;
    r->host = r->url + r->h.url_len + 1;
    r->tags = r->host + r->h.host_len + 1;
    r->body = (r->h.flags & REC_F_INLINE) != 0 ? r->tags + r->h.tags_len : NULL;
    if (r->url[r->h.url_len] != '\0' || r->host[r->h.host_len] != '\0' || (r->h.tags_len != 0 && r->tags[r->h.tags_len - 1]))
        return -1;
    for (size_t i = 0, n = 0;; ++i) { /* the tags are ntags NUL-terminated strings, as the writer walks them */
        if (i == r->h.tags_len)
            return n == r->h.ntags ? 0 : -1;
        n += r->tags[i] == '\0';
    }
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
                                .flags = r->h.flags & ~REC_F_OURS};
}

/* ---- reads (any thread) ----------------------------------------------------------------------------------- */

/* Finds `id` in txn: *r points into the map; with body, *body too (NULL when empty). */
static int read_object(cache_store_t *s, MDB_txn *txn, const uint8_t *id, rec_t *r, const void **body)
{
    MDB_val k = {CACHE_STORE_ID_LEN, (void *)id}, v;
    int rc;

    if ((rc = mdb_get(txn, s->dbi[DB_OBJECTS], &k, &v)) != 0)
        return rc == MDB_NOTFOUND ? CACHE_STORE_ENOTFOUND : CACHE_STORE_EIO;
    if (cs_rec_parse(v.mv_data, v.mv_size, r) != 0)
        return CACHE_STORE_EIO;
    if (body == NULL)
        return 0;
    *body = r->body;
    if (r->h.body_len == 0 || r->body != NULL)
        return 0;
    if (mdb_get(txn, s->dbi[DB_BODIES], &k, &v) != 0 || v.mv_size != r->h.body_len)
        return CACHE_STORE_EIO;
    *body = v.mv_data;
    return 0;
}

/* A read transaction: a kept one renewed, or a new one. NULL on failure. */
static MDB_txn *read_begin(cache_store_t *s)
{
    MDB_txn *txn = NULL;

    pthread_mutex_lock(&s->read_mu);
    if (s->nread_txns != 0)
        txn = s->read_txns[--s->nread_txns];
    pthread_mutex_unlock(&s->read_mu);
    if (txn != NULL) {
        if (mdb_txn_renew(txn) == 0)
            return txn;
        mdb_txn_abort(txn);
    }
    return mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) == 0 ? txn : NULL;
}

/* Ends a read transaction: reset (its snapshot released, its reader slot kept) and kept, or aborted. */
static void read_end(cache_store_t *s, MDB_txn *txn)
{
    mdb_txn_reset(txn);
    pthread_mutex_lock(&s->read_mu);
    if (s->nread_txns != READ_TXN_POOL) {
        s->read_txns[s->nread_txns++] = txn;
        txn = NULL;
    }
    pthread_mutex_unlock(&s->read_mu);
    if (txn != NULL)
        mdb_txn_abort(txn);
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

    if ((txn = read_begin(s)) == NULL)
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
    read_end(s, txn);
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
    cache_store_t *s;
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
    h->s = s;
    if ((h->txn = read_begin(s)) == NULL) {
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
    read_end(ref->s, ref->txn);
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

uint64_t cache_store_mark(cache_store_t *s)
{
    return atomic_load_explicit(&s->enqueued, memory_order_acquire);
}

int cache_store_applied(cache_store_t *s, uint64_t mark)
{
    return atomic_load_explicit(&s->applied, memory_order_acquire) >= mark;
}

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
    op->seq = atomic_load_explicit(&s->enqueued, memory_order_relaxed) + 1;
    atomic_store_explicit(&s->enqueued, op->seq, memory_order_release);
    *s->tailp = op;
    s->tailp = &op->next;
    if (s->writer_waits) { /* a busy writer takes it with its next batch: no system call per op */
        s->writer_waits = 0;
        pthread_cond_signal(&s->wake);
    }
    pthread_mutex_unlock(&s->mu);
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
        (obj->flags & REC_F_OURS) != 0 || (obj->meta_len != 0 && obj->meta == NULL) ||
        (obj->body_len != 0 && obj->body == NULL && (take || obj->copy_body == NULL)))
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
        if (obj->body_len != 0 && obj->body != NULL)
            memcpy(op->body, obj->body, obj->body_len);
        else if (obj->body_len != 0)
            obj->copy_body(obj->copy_data, op->body, obj->body_len);
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

/*
 * Under MDB_WRITEMAP the file is as large as the map (LMDB makes it so) and written through the map: a write into a hole
 * the file system cannot fill (a full disk) would be a SIGBUS, not an error. So the whole file is allocated up front,
 * as Varnish does with its file storage: with fallocate(2) itself (glibc's posix_fallocate would write every block of
 * a file system without it), when the disk has the room and RESERVE_HEADROOM to spare (the unsynced marker, logs).
 * When it has not, or the allocation fails, or the map is not written through (allocate 0), what the file holds past
 * LMDB's last page (taken by a failed allocation, or by an older edgeproxy whose allocation kept what it got) is given
 * back. All under the write lock, so that no transaction has pages past the last one (one process per directory:
 * cache.h). 0, or an errno with *need and *avail (bytes) for the log of ENOSPC.
 */
#define RESERVE_HEADROOM (64 * MiB)
static int reserve_map(cache_store_t *s, int allocate, uint64_t *need, uint64_t *avail)
{
    mdb_filehandle_t fd;
    MDB_envinfo info;
    MDB_stat st;
    MDB_txn *txn;
    struct stat fst;
    struct statvfs vfs;
    off_t size, used;
    int rc;

    *need = *avail = 0;
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
        return rc == ENOMEM ? ENOMEM : EIO;
    if (mdb_env_get_fd(s->env, &fd) != 0 || mdb_env_info(s->env, &info) != 0 || mdb_env_stat(s->env, &st) != 0) {
        mdb_txn_abort(txn);
        return EBADF;
    }
    size = (off_t)info.me_mapsize;
    used = (off_t)(info.me_last_pgno + 1) * (off_t)st.ms_psize;
    if (fstat(fd, &fst) == 0 && fstatvfs(fd, &vfs) == 0) {
        uint64_t have = (uint64_t)fst.st_blocks * 512;
        *need = (uint64_t)size > have ? (uint64_t)size - have : 0;
        *avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    }
    if (!allocate)
        rc = -1;
    else if (*need != 0 && *need + RESERVE_HEADROOM > *avail)
        rc = ENOSPC;
    else
        rc = fallocate(fd, 0, 0, size) == 0 ? 0 : errno;
    if (rc != 0 && rc != EOPNOTSUPP && used < size)
        (void)fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, used, size - used);
    mdb_txn_abort(txn);
    return allocate ? rc : 0;
}

/* What a map has above max_size (see cache.h): LMDB's copies on write, and runs of free pages for large bodies. */
static uint64_t map_slack(const cache_store_options_t *o)
{
    return o->max_size / 2 + 2 * o->max_object_size + 8 * MiB;
}

/*
 * A store filled under a larger max_size (the conf's was lowered) may have pages past the map this max_size gives. LMDB
 * raises a map to the file's last page and no further, and in a map without free pages even eviction, which copies
 * pages on write, fails: nothing could ever be stored again. The map is raised to the last page plus the slack a map
 * has above max_size (env_open then tells, and the writer evicts down to max_size in steps, when the data is over
 * it). The file does not shrink (LMDB never gives space back), but its pages are reused. 0 or an MDB code.
 */
static int room_to_evict(cache_store_t *s)
{
    MDB_envinfo info;
    MDB_stat st;
    uint64_t want;
    int rc;

    if ((rc = mdb_env_info(s->env, &info)) != 0 || (rc = mdb_env_stat(s->env, &st)) != 0)
        return rc;
    want = (((uint64_t)info.me_last_pgno + 1) * st.ms_psize + map_slack(&s->opts) + MiB - 1) / MiB * MiB;
    if (want <= info.me_mapsize)
        return 0;
    if ((rc = mdb_env_set_mapsize(s->env, (size_t)want)) != 0)
        return rc;
    s->map_size = want;
    return 0;
}

/* Opens the environment and its databases, checks the format marker (writing it into a new one) and reads the first
 * and last entry of every database, so that damage shows now rather than on a worker. */
static int env_open(cache_store_t *s)
{
    MDB_txn *txn = NULL;
    MDB_val k = {6, "format"}, v;
    MDB_stat st;
    unsigned flags = MDB_NOTLS | (s->nosync ? MDB_NOSYNC | (s->writemap ? MDB_WRITEMAP : 0) : MDB_NOMETASYNC);
    int rc, dead;

    if ((rc = mdb_env_create(&s->env)) != 0)
        return rc;
    if ((rc = mdb_env_set_maxdbs(s->env, DB_NUM)) != 0 || (rc = mdb_env_set_mapsize(s->env, s->map_size)) != 0 ||
        (rc = mdb_env_set_maxreaders(s->env, s->opts.max_readers)) != 0 || (rc = mdb_env_open(s->env, s->dir, flags, 0600)) != 0)
        goto fail;
    if ((rc = room_to_evict(s)) != 0)
        goto fail;
    uint64_t need, avail;
    if ((rc = reserve_map(s, s->writemap, &need, &avail)) != 0 && s->writemap) { /* (else only space given back) */
        if (rc == ENOSPC)
            fprintf(stderr,
                    "edgeproxy: cache store %s: cannot reserve its file's space on disk (%s; it needs %llu MiB more, the disk "
                    "has %llu MiB free): writing it with write()\n",
                    s->dir, strerror(rc), (unsigned long long)(need / MiB), (unsigned long long)(avail / MiB));
        else
            fprintf(stderr, "edgeproxy: cache store %s: cannot reserve its file's space on disk (%s): writing it with write()\n",
                    s->dir, strerror(rc));
        mdb_env_close(s->env);
        s->env = NULL;
        s->writemap = 0;
        return env_open(s);
    }
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
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
    /* LMDB's largest leaf node ((psize - page header) / 2, even, less an index slot), less its header and our key */
    s->inline_max = (((s->psize - 16) / 2) & ~(size_t)1) - 2 - 8 - CACHE_STORE_ID_LEN;
    s->maxkey = (size_t)mdb_env_get_maxkeysize(s->env);
    if ((rc = mdb_stat(txn, s->dbi[DB_OBJECTS], &st)) != 0)
        goto fail;
    atomic_store(&s->st_objects, st.ms_entries);
    atomic_store(&s->st_bytes_used, cs_used_bytes(s, txn));
    if (cs_used_bytes(s, txn) > s->high_water) { /* max_size was lowered: the writer starts evicting at once */
        fprintf(stderr, "edgeproxy: cache store %s: holds %llu MiB, over 90%% of max_size (%llu MiB): evicting down to 80%%\n",
                s->dir, (unsigned long long)(cs_used_bytes(s, txn) / MiB), (unsigned long long)(s->opts.max_size / MiB));
        s->evict_more = 1;
    }
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc == 0 && (rc = mdb_env_sync(s->env, 1)) == 0) /* what opening wrote is on disk before the writer starts */
        return 0;
fail:
    if (txn != NULL)
        mdb_txn_abort(txn);
    mdb_env_close(s->env);
    s->env = NULL;
    return rc;
}

/* ---- durability: the unsynced marker ------------------------------------------------------------------- */

#define UNSYNCED_MARKER "unsynced"

static void marker_path(const cache_store_t *s, char *buf, size_t len)
{
    snprintf(buf, len, "%s/" UNSYNCED_MARKER, s->dir);
}

/* Reads a file's first line (at most len - 1 bytes, without the newline). 0 or -1. */
static int read_line(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return -1;
    n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    return 0;
}

/* Whether the map may be written through (MDB_WRITEMAP) on the file system of dir. Not on tmpfs and ramfs (no disk to
 * reserve space on: allocating the map would take its size in memory), nor where space allocated up front may not cover
 * later overwrites, so that a full disk could still be a SIGBUS: copy-on-write and log-structured file systems (btrfs,
 * ZFS, bcachefs, NILFS2), overlayfs (its upper layer may be one of those), or one statfs cannot name. */
static int writemap_fs(const char *dir)
{
    struct statfs fs;

    if (statfs(dir, &fs) != 0)
        return 0;
    switch ((unsigned long)fs.f_type) {
    case TMPFS_MAGIC:
    case RAMFS_MAGIC:
    case BTRFS_SUPER_MAGIC:
    case OVERLAYFS_SUPER_MAGIC:
    case NILFS_SUPER_MAGIC:
    case 0x2fc12fc1ul: /* ZFS */
    case 0xca451a4eul: /* bcachefs */
        return 0;
    default:
        return 1;
    }
}

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

    if (fd < 0)
        return errno;
    if (fsync(fd) != 0)
        rc = errno;
    close(fd);
    return rc;
}

int cs_mark_unsynced(cache_store_t *s)
{
    char path[4200];
    size_t len = strlen(s->boot_id);
    int fd, rc = 0;

    marker_path(s, path, sizeof(path));
    if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
        return errno;
    if (write(fd, s->boot_id, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd) != 0)
        rc = errno != 0 ? errno : EIO;
    close(fd);
    if (rc == 0)
        rc = sync_dir(s->dir);
    if (rc == 0)
        s->marked = 1;
    return rc;
}

void cs_sync(cache_store_t *s)
{
    char path[4200];

    if (mdb_env_sync(s->env, 1) != 0)
        return; /* the marker stays: the file may not be complete on disk */
    s->dirty = 0;
    s->last_sync_mono = mono_ms();
    if (s->marked) {
        marker_path(s, path, sizeof(path));
        if (unlink(path) == 0 || errno == ENOENT)
            sync_dir(s->dir);
        s->marked = 0;
    }
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
    if (s->dir_fd >= 0)
        close(s->dir_fd); /* and its lock */
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->read_mu);
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
    s->dir_fd = -1;
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
    s->map_size = (s->opts.max_size + map_slack(&s->opts) + MiB - 1) / MiB * MiB;
    s->high_water = s->opts.max_size / 10 * 9;
    s->low_water = s->opts.max_size / 10 * 8;
    s->batch_max = s->opts.max_size / 8;
    while (nslots < (1 << 22) && nslots < s->opts.max_size / 4096)
        nslots <<= 1;
    s->touch_mask = nslots - 1;
    s->tailp = &s->head;
    s->rng = (uint64_t)mono_ms() * 0x9E3779B97F4A7C15ull ^ (uintptr_t)s ^ 1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->read_mu, NULL);
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
    /* one process per directory (the marker, the space given back past LMDB's last page, the expiry passes count on
     * it): a second edgeproxy on the same directory is refused, not let in to share it. The lock goes with the process. */
    if ((s->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || flock(s->dir_fd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno;
        if (rc == EWOULDBLOCK)
            snprintf(errbuf, errlen, "cache store %s: in use by another process (one edgeproxy per cache directory)", dir);
        else
            snprintf(errbuf, errlen, "cache store %s: cannot lock the directory: %s", dir, strerror(rc));
        store_free(s);
        return CACHE_STORE_EIO;
    }
    s->nosync = read_line("/proc/sys/kernel/random/boot_id", s->boot_id, sizeof(s->boot_id)) == 0 && s->boot_id[0] != '\0';
    s->writemap = s->nosync && writemap_fs(dir);
    if (s->nosync) {
        char path[4200], was[sizeof(s->boot_id)];
        marker_path(s, path, sizeof(path));
        int present = read_line(path, was, sizeof(was)) == 0 || errno != ENOENT;
        if (present) {
            if (read_line(path, was, sizeof(was)) != 0 || strcmp(was, s->boot_id) != 0) { /* unreadable: assume the worst */
                /* the system stopped while commits were not all on disk: the file may be torn */
                fprintf(stderr,
                        "edgeproxy: cache store %s: the system went down while writes were not all on disk: moved data.mdb "
                        "to data.mdb.corrupt, starting empty\n",
                        dir);
                move_aside(s);
                unlink(path);
            } else {
                s->marked = 1; /* only the process stopped: the kernel has every commit; env_open syncs them */
            }
        }
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
    s->last_commit_mono = mono_ms();
    cs_sync(s); /* env_open synced the file: a marker left by a killed process goes now */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the writer takes no signals */
    rc = pthread_create(&s->writer, NULL, cs_writer_main, s);
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
    cs_sync(s);
    while (s->nread_txns != 0) /* no get runs any more: the caller's threads are done with the store */
        mdb_txn_abort(s->read_txns[--s->nread_txns]);
    mdb_env_close(s->env);
    store_free(s);
}
