/*
 * cache/store_writer.c: the store's writer thread (see cache/store.c for the threads and cache/store_internal.h for an
 * op's life): it takes batches of ops from the queue, applies each batch in one write transaction (objects and their
 * url, tag and expiry indexes), evicts sampled objects over the high water mark, recovers from MDB_MAP_FULL, runs the
 * expiry passes and purges, frees the ops and syncs the environment when idle or every CACHE_STORE_SYNC_MAX_MS (cache.h,
 * Durability). Everything here runs on the writer.
 */
#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cache/store_internal.h"

#define BATCH_MAX_OPS 1024
#define ERROR_LOG_INTERVAL_MS 10000
#define GATHER_NS 1000000 /* how long a woken writer waits for more ops before it takes a batch (1 ms) */

/* Counters of one transaction, added to the store's once it commits. */
typedef struct tally {
    uint64_t puts, evictions, expired, purged;
} tally_t;

/* ---- records and ops -------------------------------------------------------------------------------------- */

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
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

/* An index key: the string, cut to LMDB's maximum key size. */
static MDB_val index_key(cache_store_t *s, const char *str, size_t len)
{
    return (MDB_val){len < s->maxkey ? len : s->maxkey, (void *)str};
}

static void op_free(op_t *op)
{
    if (op->body_owned)
        free(op->body);
    free(op);
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
    if (cs_rec_parse(s->scratch, v.mv_size, r) != 0)
        r->h = (rec_hdr_t){0}, r->url = r->host = r->tags = r->body = NULL; /* damaged: delete what can be deleted */
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
    if ((rc = index_rec(s, txn, id, &r, 0)) != 0 ||
        ((r.h.flags & REC_F_INLINE) == 0 && (rc = del_ignoring_missing(txn, s->dbi[DB_BODIES], &k, NULL)) != 0))
        return rc;
    return mdb_del(txn, s->dbi[DB_OBJECTS], &k, NULL);
}

static int obj_put(cache_store_t *s, MDB_txn *txn, op_t *op)
{
    int inl = op->body_len != 0 && op->rec_len + op->body_len <= s->inline_max;
    MDB_val k = {CACHE_STORE_ID_LEN, op->id}, v = {op->rec_len + (inl ? op->body_len : 0), NULL};
    rec_t r;
    int rc;

    /* a new id (the usual case) costs one B-tree descent; an existing one is deleted with its index entries first */
    if ((rc = mdb_put(txn, s->dbi[DB_OBJECTS], &k, &v, MDB_RESERVE | MDB_NOOVERWRITE)) == MDB_KEYEXIST) {
        if ((rc = obj_delete(s, txn, op->id)) != 0)
            return rc;
        v.mv_size = op->rec_len + (inl ? op->body_len : 0);
        rc = mdb_put(txn, s->dbi[DB_OBJECTS], &k, &v, MDB_RESERVE);
    }
    if (rc != 0)
        return rc;
    memcpy(v.mv_data, op->rec, op->rec_len);
    if (inl) {
        rec_hdr_t h;
        memcpy(&h, op->rec, sizeof(h));
        h.flags |= REC_F_INLINE;
        memcpy(v.mv_data, &h, sizeof(h));
        memcpy((char *)v.mv_data + op->rec_len, op->body, op->body_len);
    } else if (op->body_len != 0) {
        v = (MDB_val){op->body_len, NULL};
        if ((rc = mdb_put(txn, s->dbi[DB_BODIES], &k, &v, MDB_RESERVE)) != 0)
            return rc;
        memcpy(v.mv_data, op->body, op->body_len);
    }
    cs_rec_parse(op->rec, op->rec_len, &r); /* built by cache_store_put: cannot fail */
    return index_rec(s, txn, op->id, &r, 1);
}

/* Rewrites the record of `id` with a new header and meta (the strings are kept). */
static int rewrite_rec(cache_store_t *s, MDB_txn *txn, const uint8_t *id, const rec_t *old, const rec_hdr_t *h, const void *meta)
{
    MDB_val k = {CACHE_STORE_ID_LEN, (void *)id}, v;
    /* the strings, and an inline body after them (h keeps old's REC_F_INLINE) */
    size_t strs_len = old->h.url_len + 1 + old->h.host_len + 1 + old->h.tags_len + (old->body != NULL ? old->h.body_len : 0);
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

uint64_t cs_used_bytes(cache_store_t *s, MDB_txn *txn)
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

/* Evicts sampled objects until the data in use is at most `target` bytes, or `max` of them are gone (then s->evict_more
 * is set: the writer goes on in the next transaction; apply() clears it). */
static int evict(cache_store_t *s, MDB_txn *txn, uint64_t target, size_t max, int64_t now, tally_t *t)
{
    MDB_cursor *c;
    size_t n = 0;
    int rc = 0;

    if ((rc = mdb_cursor_open(txn, s->dbi[DB_OBJECTS], &c)) != 0)
        return rc;
    while (cs_used_bytes(s, txn) > target) {
        if (n++ == max) { /* a transaction's copies on write need room: the rest in the next ones */
            s->evict_more = 1;
            break;
        }
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

static void log_write_error(cache_store_t *s, int rc, size_t nops)
{
    int64_t now = mono_ms();

    if (s->last_error_log_mono != 0 && now - s->last_error_log_mono < ERROR_LOG_INTERVAL_MS)
        return;
    s->last_error_log_mono = now;
    fprintf(stderr, "edgeproxy: cache store %s: write transaction failed: %s (%zu operations dropped)\n", s->dir,
            store_mdb_strerror(rc), nops);
}

/* Commits a write transaction. Under MDB_NOSYNC the unsynced marker must be on disk before any page of the commit may
 * be: if it cannot be written, the commit is synced instead. */
static int commit(cache_store_t *s, MDB_txn *txn)
{
    int sync_now = 0, rc;

    if (s->nosync && !s->marked && (rc = cs_mark_unsynced(s)) != 0) {
        if (mono_ms() - s->last_error_log_mono >= ERROR_LOG_INTERVAL_MS) {
            fprintf(stderr, "edgeproxy: cache store %s: cannot write its unsynced marker (%s): syncing each commit\n", s->dir,
                    strerror(rc));
            s->last_error_log_mono = mono_ms();
        }
        sync_now = 1;
        mdb_env_set_flags(s->env, MDB_NOSYNC, 0); /* this commit synced by LMDB itself: data pages before the meta page */
    }
    rc = mdb_txn_commit(txn);
    if (sync_now)
        mdb_env_set_flags(s->env, MDB_NOSYNC, 1);
    if (rc != 0)
        return rc;
    s->dirty = !sync_now;
    s->last_commit_mono = mono_ms();
    return 0;
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

    int more = s->evict_more; /* a backlog being evicted: down to low water, as if over high water */

    *t = (tally_t){0};
    s->evict_more = 0;
    for (op_t *op = batch; op != NULL && with_puts; op = op->next)
        if (op->kind == OP_PUT)
            incoming += op->rec_len + op->body_len + 2 * s->psize;
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
        return rc;
    if (incoming != 0 && cs_used_bytes(s, txn) + incoming > s->high_water &&
        (rc = evict(s, txn, s->low_water > incoming ? s->low_water - incoming : 0, CACHE_STORE_EVICT_BATCH, now, t)) != 0)
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
    if (cs_used_bytes(s, txn) > (more ? s->low_water : s->high_water) &&
        (rc = evict(s, txn, s->low_water, CACHE_STORE_EVICT_BATCH, now, t)) != 0)
        goto fail;
    if (do_expire && (rc = expire(s, txn, now, t)) != 0)
        goto fail;
    if (batch == NULL && t->expired == 0 && t->evictions == 0) { /* an expiry pass that found nothing: no commit */
        mdb_txn_abort(txn);
        return 0;
    }
    uint64_t used = cs_used_bytes(s, txn);
    if ((rc = mdb_stat(txn, s->dbi[DB_OBJECTS], &st)) != 0)
        goto fail;
    if ((rc = commit(s, txn)) != 0)
        return rc;
    atomic_store_explicit(&s->st_objects, st.ms_entries, memory_order_relaxed);
    atomic_store_explicit(&s->st_bytes_used, used, memory_order_relaxed);
    add(&s->st_commits, 1);
    return 0;
fail:
    mdb_txn_abort(txn);
    return rc;
}

/* After MDB_MAP_FULL: evict down to half of max_size in transactions of their own, so that their pages are free for the
 * retry: CACHE_STORE_EVICT_BATCH objects at most each, fewer (halved down to 16) while a transaction still finds the
 * map full. */
static void evict_hard(cache_store_t *s, int64_t now)
{
    size_t max = CACHE_STORE_EVICT_BATCH;

    for (;;) {
        tally_t t = {0};
        MDB_txn *txn;
        int rc;
        s->evict_more = 0;
        if (mdb_txn_begin(s->env, NULL, 0, &txn) != 0)
            return;
        if ((rc = evict(s, txn, s->opts.max_size / 2, max, now, &t)) == 0)
            rc = commit(s, txn);
        else
            mdb_txn_abort(txn);
        if (rc == MDB_MAP_FULL && max > 16) { /* the same pass, smaller */
            max /= 2;
            continue;
        }
        if (rc != 0) {
            s->evict_more = 0;
            return;
        }
        add(&s->st_evictions, t.evictions);
        if (!s->evict_more)
            return;
    }
}

static void run_batch(cache_store_t *s, op_t *batch)
{
    int64_t now = store_now(s);
    int do_expire = s->expire_more || now >= s->next_expire_ms, drop_puts = 0, rc;
    size_t nops = 0, nputs = 0;
    tally_t t;

    for (op_t *op = batch; op != NULL; op = op->next, nops++)
        nputs += op->kind == OP_PUT || op->kind == OP_META;
    if (batch == NULL && !do_expire && !s->evict_more)
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
        s->expire_more = s->evict_more = 0; /* no busy loop on a failing environment */
        t = (tally_t){0};
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

void *cs_writer_main(void *arg)
{
    cache_store_t *s = arg;

    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->head == NULL && !s->closing && !s->expire_more && !s->evict_more) {
            int64_t wait_ms = s->opts.expiry_interval_ms, at;
            struct timespec ts;
            if (s->dirty && wait_ms > CACHE_STORE_SYNC_INTERVAL_MS)
                wait_ms = CACHE_STORE_SYNC_INTERVAL_MS;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            at = (int64_t)ts.tv_nsec + wait_ms * 1000000;
            ts.tv_sec += at / 1000000000;
            ts.tv_nsec = at % 1000000000;
            s->writer_waits = 1;
            pthread_cond_timedwait(&s->wake, &s->mu, &ts);
            s->writer_waits = 0;
            if (s->head != NULL && !s->closing) {
                /* woken by the first op: let a batch gather (group commit), as the workers no longer signal */
                pthread_mutex_unlock(&s->mu);
                nanosleep(&(struct timespec){0, GATHER_NS}, NULL);
                pthread_mutex_lock(&s->mu);
            }
        }
        op_t *batch = take_batch(s), *done = NULL;
        pthread_mutex_unlock(&s->mu);

        run_batch(s, batch);
        if (s->dirty && ((batch == NULL && mono_ms() - s->last_commit_mono >= CACHE_STORE_SYNC_INTERVAL_MS) ||
                         mono_ms() - s->last_sync_mono >= CACHE_STORE_SYNC_MAX_MS))
            cs_sync(s); /* idle for a while, or busy for long: make the file whole on disk (and drop the marker) */

        pthread_mutex_lock(&s->mu);
        for (op_t *op = batch, *next; op != NULL; op = next) {
            next = op->next;
            if (next == NULL) /* the batch is the queue's head: its last op has the highest seq */
                atomic_store_explicit(&s->applied, op->seq, memory_order_release);
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
