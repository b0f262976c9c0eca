/*
 * cache/store_internal.h: declarations shared by cache/store.c and cache/store_writer.c only (never included elsewhere):
 * the record format, the op and the store's structure, and the small helpers both use.
 */
#ifndef EDGEPROXY_CACHE_STORE_INTERNAL_H
#define EDGEPROXY_CACHE_STORE_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include "cache/cache.h"

#define STORE_BAD_FORMAT 1000000 /* our own "incompatible": not an errno, not an MDB code */
#define READ_TXN_POOL 64         /* reset read transactions kept per store */

/* The record's fixed header (host byte order: the file is not portable, like LMDB's own). Followed by meta, url NUL,
 * host NUL, tags (ntags NUL-terminated strings, tags_len bytes), and with REC_F_INLINE the body (body_len bytes).
 * LMDB values are only 2-byte aligned: memcpy it. */
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

/* flags: the caller's CACHE_STORE_F_* bits, and ours: */
#define REC_F_INLINE 0x80000000u /* the body follows the tags in the record (small objects: one B-tree write, not two) */
#define REC_F_OURS REC_F_INLINE

typedef struct rec {
    rec_hdr_t h;
    const char *meta, *url, *host, *tags;
    const char *body; /* REC_F_INLINE: in the record; else NULL */
} rec_t;

/*
 * An op's life: malloc'ed by the caller's thread with everything it needs copied in (a put carries its finished
 * record), counted in qbytes/qops from the moment it is reserved, taken by the writer in a batch (uncounted then),
 * applied in a transaction (maybe twice: see run_batch in cache/store_writer.c), reported (purge callbacks, flush
 * waiters) and freed by the writer.
 */
typedef enum op_kind { OP_PUT, OP_META, OP_DELETE, OP_PURGE, OP_FLUSH } op_kind_t;

typedef struct op {
    struct op *next;
    uint64_t seq; /* its place in the queue: 1, 2, ... */
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

struct cache_store {
    char *dir;
    cache_store_options_t opts;
    MDB_env *env;
    MDB_dbi dbi[DB_NUM];
    size_t psize, maxkey;
    size_t inline_max; /* the largest record (body included) that fits in a leaf page: bodies of those go inline */
    uint64_t map_size, high_water, low_water, batch_max;
    /* touch table: last hit per slot, indexed by the id's first 8 bytes */
    _Atomic int64_t *touch;
    size_t touch_mask;
    /* read transactions, reset and kept for the next get (no malloc, no lock of LMDB's reader table per get) */
    pthread_mutex_t read_mu;
    MDB_txn *read_txns[READ_TXN_POOL];
    size_t nread_txns;
    /* queue */
    pthread_mutex_t mu;
    pthread_cond_t wake;    /* the writer waits on it */
    pthread_cond_t flushed; /* flushers wait on it */
    op_t *head, **tailp;
    size_t qbytes, qops;
    _Atomic uint64_t enqueued; /* the seq of the last op queued (written under mu) */
    _Atomic uint64_t applied;  /* the writer's: every op up to this seq is applied (or dropped) */
    int writer_waits;          /* the writer waits on `wake` (under mu): the first op queued then signals it, once */
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
    int evict_more; /* a pass stopped at CACHE_STORE_EVICT_BATCH above its target: another pass at once, to low water */
    int64_t last_commit_mono, last_sync_mono, last_error_log_mono;
    int dirty; /* committed since the last mdb_env_sync */
    /* durability mode (see "Durability" in cache/cache.h) */
    int nosync;       /* MDB_NOSYNC with the unsynced marker; 0: MDB_NOMETASYNC (no boot id to be had) */
    int writemap;     /* MDB_WRITEMAP: the map's space is reserved on disk */
    int marked;       /* the marker is on disk */
    char boot_id[64]; /* the running kernel's boot id */
    int dir_fd;       /* the directory, flock'ed while the store is open (one process per directory) */
    /* stats */
    _Atomic uint64_t st_objects, st_bytes_used, st_puts, st_dropped, st_too_big, st_evictions, st_expired, st_purged, st_map_full,
        st_commits;
};

/* Helpers both files use. */

static inline int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t store_now(cache_store_t *s)
{
    return s->opts.clock_ms(s->opts.clock_data);
}

static inline uint64_t load_u64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static inline void add(_Atomic uint64_t *counter, uint64_t n)
{
    atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

static inline const char *store_mdb_strerror(int rc)
{
    return rc == STORE_BAD_FORMAT ? "format marker is not " CACHE_STORE_FORMAT : mdb_strerror(rc);
}

/* Defined in cache/store.c. */

/* Parses the record `data` (len bytes) into *r, pointing into data. -1 if it is damaged. */
int cs_rec_parse(const void *data, size_t len, rec_t *r);
/* Under MDB_NOSYNC: writes the unsynced marker (the boot id) and makes it durable; the writer calls it before the first
 * commit after a sync. 0 or an errno. */
int cs_mark_unsynced(cache_store_t *s);
/* Syncs the environment to disk, then removes the marker. */
void cs_sync(cache_store_t *s);

/* Defined in cache/store_writer.c. */

/* The data in use in txn, in bytes (pages of every database, LMDB's own included). */
uint64_t cs_used_bytes(cache_store_t *s, MDB_txn *txn);

/* The writer thread, started by cache_store_open with the store as arg. */
void *cs_writer_main(void *arg);

#endif
