/*
 * keys: the API-key registry.
 *
 * In memory: every key in a hash table keyed by the SHA-256 of its secret (the secret itself is never kept), guarded
 * by a read-write lock that requests take for reading; and every key ever made in `all`, so that a gw_key_t stays
 * valid until gw_close() even after it is deleted (a request holding one needs no lock).
 *
 * On disk: the LMDB environment `data` (DESIGN.md: the durable one; the item store will share it) holds two
 * databases:
 *   gw.keys   id -> {"name", "sha256" (hex), "plan" (its name), "enabled", "created"} (JSON), API-made keys only
 *   gw.usage  id -> {int64 period start (s), uint64 count}: quota counts of every key
 * One writer thread does every write in durable transactions (no MDB_NOSYNC: a commit is on disk when it returns).
 * Admin changes are queued to it and acknowledged after their commit. Quota counts are flushed by the same thread
 * once a second (those that changed), so a crash loses at most about a second of counts, and no request waits for
 * a disk write.
 */
#include <errno.h>
#include <jansson.h>
#include <lmdb.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/sha256.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "gateway/gateway.h"

#define NBUCKETS 4096 /* hash chains of the table (keys are few: thousands, not millions) */
#define MAP_SIZE (1ull << 30)

typedef enum { JOB_CREATE, JOB_ENABLE, JOB_REMOVE } job_kind_t;

typedef struct job {
    struct job *next;
    job_kind_t kind;
    gw_key_t *key; /* CREATE: the new key, not yet in the table */
    char id[GW_KEY_ID_MAX + 1];
    int enabled;
    gw_done_cb done;
    void *data;
} job_t;

struct gw {
    const conf_t *conf;
    MDB_env *env;
    MDB_dbi keys_dbi, usage_dbi;
    pthread_rwlock_t lock; /* table, all, nall */
    gw_key_t *table[NBUCKETS];
    gw_key_t **all;
    size_t nall, capall;
    pthread_mutex_t mu; /* jobs, stopping, the DRBG */
    pthread_cond_t wake;
    job_t *jobs, **jobs_tail;
    int stopping;
    int writer_started;
    pthread_t writer;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    uint64_t memo_keys[2]; /* the SipHash key of the memo (gw_key_find_memo) */
};

const char *gw_strerror(int err)
{
    switch (err) {
    case 0:
        return "ok";
    case ENOENT:
        return "no such key";
    case EPERM:
        return "the key is defined in the conf file";
    case ENOMEM:
        return "out of memory";
    case ESHUTDOWN:
        return "shutting down";
    default:
        return "the data store failed to write";
    }
}

int gw_key_name_is_valid(const char *s, size_t len)
{
    if (len == 0 || len > GW_KEY_ID_MAX)
        return 0;
    for (size_t i = 0; i != len; ++i) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static size_t bucket_of(const uint8_t *sha)
{
    return ((size_t)sha[0] | (size_t)sha[1] << 8) % NBUCKETS;
}

static int ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    unsigned char d = 0;
    for (size_t i = 0; i != n; ++i)
        d |= a[i] ^ b[i];
    return d == 0;
}

static gw_key_t *key_new(const conf_t *conf, int plan)
{
    size_t nb = 1 + (plan >= 0 ? conf->plans[plan].noverrides : 0);
    gw_key_t *k = calloc(1, sizeof(*k));

    if (k == NULL || (k->buckets = calloc(nb, sizeof(*k->buckets))) == NULL) {
        free(k);
        return NULL;
    }
    k->plan = plan;
    atomic_init(&k->enabled, 1);
    return k;
}

static void key_free(gw_key_t *k)
{
    free(k->buckets);
    free(k);
}

/* Adds a key to the table and to `all` (under the write lock). Returns -1 on ENOMEM. */
static int key_insert(gw_t *gw, gw_key_t *k)
{
    int rc = 0;

    pthread_rwlock_wrlock(&gw->lock);
    if (gw->nall == gw->capall) {
        size_t cap = gw->capall ? gw->capall * 2 : 64;
        gw_key_t **a = realloc(gw->all, cap * sizeof(*a));
        if (a == NULL) {
            rc = -1;
            goto out;
        }
        gw->all = a;
        gw->capall = cap;
    }
    gw->all[gw->nall++] = k;
    size_t b = bucket_of(k->sha256);
    k->next = gw->table[b];
    gw->table[b] = k;
out:
    pthread_rwlock_unlock(&gw->lock);
    return rc;
}

static void key_unlink(gw_t *gw, gw_key_t *k)
{
    pthread_rwlock_wrlock(&gw->lock);
    for (gw_key_t **p = &gw->table[bucket_of(k->sha256)]; *p != NULL; p = &(*p)->next) {
        if (*p == k) {
            *p = k->next;
            break;
        }
    }
    atomic_store(&k->deleted, 1);
    pthread_rwlock_unlock(&gw->lock);
}

gw_key_t *gw_key_find(gw_t *gw, const char *secret, size_t len)
{
    uint8_t sha[32];
    gw_key_t *k, *found = NULL;

    if (mbedtls_sha256_ret((const unsigned char *)secret, len, sha, 0) != 0)
        return NULL;
    pthread_rwlock_rdlock(&gw->lock);
    for (k = gw->table[bucket_of(sha)]; k != NULL; k = k->next) {
        if (ct_equal(k->sha256, sha, sizeof(sha)))
            found = k;
    }
    pthread_rwlock_unlock(&gw->lock);
    return found;
}

/* SipHash-2-4 (Aumasson and Bernstein), 64-bit output. */
#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                                                   \
    do {                                                                                                                           \
        v0 += v1;                                                                                                                  \
        v1 = ROTL(v1, 13);                                                                                                         \
        v1 ^= v0;                                                                                                                  \
        v0 = ROTL(v0, 32);                                                                                                         \
        v2 += v3;                                                                                                                  \
        v3 = ROTL(v3, 16);                                                                                                         \
        v3 ^= v2;                                                                                                                  \
        v0 += v3;                                                                                                                  \
        v3 = ROTL(v3, 21);                                                                                                         \
        v3 ^= v0;                                                                                                                  \
        v2 += v1;                                                                                                                  \
        v1 = ROTL(v1, 17);                                                                                                         \
        v1 ^= v2;                                                                                                                  \
        v2 = ROTL(v2, 32);                                                                                                         \
    } while (0)

static uint64_t siphash(const uint64_t k[2], const unsigned char *in, size_t len)
{
    uint64_t v0 = 0x736f6d6570736575ull ^ k[0], v1 = 0x646f72616e646f6dull ^ k[1], v2 = 0x6c7967656e657261ull ^ k[0],
             v3 = 0x7465646279746573ull ^ k[1], m, b = (uint64_t)len << 56;
    size_t i, full = len & ~(size_t)7;

    for (i = 0; i != full; i += 8) {
        memcpy(&m, in + i, 8); /* little-endian machines: the reference's U8TO64_LE */
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    for (size_t j = 0; j != (len & 7); ++j)
        b |= (uint64_t)in[full + j] << (8 * j);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

gw_key_t *gw_key_find_memo(gw_t *gw, gw_key_memo_t *memo, const char *secret, size_t len)
{
    uint64_t h = siphash(gw->memo_keys, (const unsigned char *)secret, len);
    __typeof__(memo->slots[0]) *slot = memo->slots + (h % GW_MEMO_SLOTS);
    gw_key_t *k;

    if (slot->key != NULL && slot->h == h && !atomic_load_explicit(&slot->key->deleted, memory_order_acquire))
        return slot->key;
    if ((k = gw_key_find(gw, secret, len)) != NULL) {
        slot->h = h;
        slot->key = k;
    }
    return k;
}

gw_key_t *gw_key_by_id(gw_t *gw, const char *id, size_t len)
{
    gw_key_t *found = NULL;

    pthread_rwlock_rdlock(&gw->lock);
    for (size_t i = 0; i != gw->nall; ++i) {
        gw_key_t *k = gw->all[i];
        if (!atomic_load(&k->deleted) && strlen(k->id) == len && memcmp(k->id, id, len) == 0) {
            found = k;
            break;
        }
    }
    pthread_rwlock_unlock(&gw->lock);
    return found;
}

gw_key_t **gw_keys_list(gw_t *gw, size_t *n)
{
    gw_key_t **out;

    pthread_rwlock_rdlock(&gw->lock);
    out = malloc((gw->nall ? gw->nall : 1) * sizeof(*out));
    *n = 0;
    if (out != NULL) {
        for (size_t i = 0; i != gw->nall; ++i)
            if (!atomic_load(&gw->all[i]->deleted))
                out[(*n)++] = gw->all[i];
    }
    pthread_rwlock_unlock(&gw->lock);
    return out;
}

/* ---- records ---- */

static int plan_index(const conf_t *conf, const char *name)
{
    for (size_t i = 0; i != conf->nplans; ++i)
        if (strcmp(conf->plans[i].name, name) == 0)
            return (int)i;
    return -1;
}

static void hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i != n; ++i) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
    if (strlen(s) != 2 * n)
        return -1;
    for (size_t i = 0; i != 2 * n; ++i) {
        char c = s[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return -1;
        out[i / 2] = (uint8_t)(i % 2 == 0 ? v << 4 : out[i / 2] | v);
    }
    return 0;
}

static char *record_of(const gw_t *gw, const gw_key_t *k, int enabled)
{
    char sha[65];
    hex(k->sha256, 32, sha);
    json_t *o =
        json_pack("{s:s, s:s, s:b, s:I}", "name", k->name, "sha256", sha, "enabled", enabled, "created", (json_int_t)k->created_s);
    if (o != NULL && k->plan >= 0 && json_object_set_new(o, "plan", json_string(gw->conf->plans[k->plan].name)) != 0) {
        json_decref(o);
        o = NULL;
    }
    char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

/* Reads one stored key; NULL when the record is damaged (logged). */
static gw_key_t *key_of_record(gw_t *gw, const MDB_val *k, const MDB_val *v)
{
    json_error_t jerr;
    json_t *o = json_loadb(v->mv_data, v->mv_size, 0, &jerr);
    const char *name = NULL, *sha = NULL, *plan = NULL;
    int enabled = 1;
    json_int_t created = 0;
    gw_key_t *key = NULL;

    if (o == NULL ||
        json_unpack(o, "{s:s, s:s, s?s, s:b, s:I}", "name", &name, "sha256", &sha, "plan", &plan, "enabled", &enabled, "created",
                    &created) != 0 ||
        k->mv_size == 0 || k->mv_size > GW_KEY_ID_MAX || strlen(name) > GW_KEY_ID_MAX)
        goto bad;
    int pi = plan != NULL ? plan_index(gw->conf, plan) : -1;
    if ((key = key_new(gw->conf, pi)) == NULL)
        goto out;
    memcpy(key->id, k->mv_data, k->mv_size);
    strcpy(key->name, name);
    if (unhex(sha, key->sha256, 32) != 0)
        goto bad;
    key->created_s = created;
    atomic_store(&key->enabled, enabled);
    if (plan != NULL && pi < 0) {
        /* its plan left the conf: refuse it rather than let it run without limits */
        fprintf(stderr, "edgeproxy: key %s: plan \"%s\" is not in the conf any more; the key is refused until it is\n", key->id,
                plan);
        atomic_store(&key->enabled, 0);
    }
    goto out;
bad:
    fprintf(stderr, "edgeproxy: data store: a damaged key record (%.*s) is ignored\n", (int)k->mv_size, (char *)k->mv_data);
    if (key != NULL)
        key_free(key);
    key = NULL;
out:
    json_decref(o);
    return key;
}

typedef struct usage_rec {
    uint64_t quota, today; /* the counters' words (gw_quota_unpack) */
} usage_rec_t;

static int load(gw_t *gw, char *err, size_t errlen)
{
    MDB_txn *txn;
    MDB_cursor *c;
    MDB_val k, v;
    int rc;

    if ((rc = mdb_txn_begin(gw->env, NULL, MDB_RDONLY, &txn)) != 0)
        goto fail;
    if ((rc = mdb_cursor_open(txn, gw->keys_dbi, &c)) != 0)
        goto fail_txn;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        gw_key_t *key = key_of_record(gw, &k, &v);
        if (key == NULL)
            continue;
        int clash = 0;
        for (size_t i = 0; i != gw->conf->nkeys; ++i)
            clash |= strcmp(gw->conf->keys[i].name, key->id) == 0;
        if (clash || key_insert(gw, key) != 0)
            key_free(key);
    }
    mdb_cursor_close(c);
    if (rc != MDB_NOTFOUND)
        goto fail_txn;
    for (size_t i = 0; i != gw->nall; ++i) {
        gw_key_t *key = gw->all[i];
        k = (MDB_val){strlen(key->id), key->id};
        if (mdb_get(txn, gw->usage_dbi, &k, &v) == 0 && v.mv_size == sizeof(usage_rec_t)) {
            usage_rec_t u;
            memcpy(&u, v.mv_data, sizeof(u));
            atomic_store(&key->quota.word, u.quota);
            atomic_store(&key->today.word, u.today);
            atomic_store(&key->flushed, u.quota);
            atomic_store(&key->flushed_today, u.today);
        }
    }
    mdb_txn_abort(txn);
    return 0;
fail_txn:
    mdb_txn_abort(txn);
fail:
    snprintf(err, errlen, "data store: %s", mdb_strerror(rc));
    return -1;
}

/* ---- the writer ---- */

static int put_record(gw_t *gw, MDB_txn *txn, const gw_key_t *k, int enabled)
{
    char *rec = record_of(gw, k, enabled);
    int rc;

    if (rec == NULL)
        return ENOMEM;
    rc = mdb_put(txn, gw->keys_dbi, &(MDB_val){strlen(k->id), (void *)k->id}, &(MDB_val){strlen(rec), rec}, 0);
    free(rec);
    return rc;
}

/* Runs one job's writes; returns 0 or an error for its `done` (the job is then left out of the commit's effects). */
static int job_write(gw_t *gw, MDB_txn *txn, job_t *j, gw_key_t **target)
{
    gw_key_t *k;
    int rc;

    *target = NULL;
    if (j->kind == JOB_CREATE) {
        *target = j->key;
        return put_record(gw, txn, j->key, 1);
    }
    if ((k = gw_key_by_id(gw, j->id, strlen(j->id))) == NULL)
        return ENOENT;
    if (k->from_conf)
        return EPERM;
    *target = k;
    if (j->kind == JOB_ENABLE)
        return put_record(gw, txn, k, j->enabled); /* published after the commit */
    MDB_val key = {strlen(k->id), k->id};
    if ((rc = mdb_del(txn, gw->keys_dbi, &key, NULL)) != 0)
        return rc;
    rc = mdb_del(txn, gw->usage_dbi, &key, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Writes the quota counts that changed since the last flush; returns the number written or -1. */
static int flush_usage(gw_t *gw, MDB_txn *txn, usage_rec_t *words, gw_key_t **keys, size_t *n)
{
    size_t cap = *n;
    *n = 0;
    pthread_rwlock_rdlock(&gw->lock);
    for (size_t i = 0; i != gw->nall && *n != cap; ++i) {
        gw_key_t *k = gw->all[i];
        usage_rec_t u = {atomic_load(&k->quota.word), atomic_load(&k->today.word)};
        if (atomic_load(&k->deleted) || (u.quota == atomic_load(&k->flushed) && u.today == atomic_load(&k->flushed_today)))
            continue;
        keys[*n] = k;
        words[(*n)++] = u;
    }
    pthread_rwlock_unlock(&gw->lock);
    for (size_t i = 0; i != *n; ++i) {
        if (mdb_put(txn, gw->usage_dbi, &(MDB_val){strlen(keys[i]->id), keys[i]->id}, &(MDB_val){sizeof(words[i]), &words[i]}, 0) !=
            0)
            return -1;
    }
    return 0;
}

#define FLUSH_MAX 1024 /* quota counts written per second at most (the rest wait for the next second) */

static void writer_round(gw_t *gw, job_t *jobs)
{
    static __thread usage_rec_t words[FLUSH_MAX];
    static __thread gw_key_t *keys[FLUSH_MAX];
    size_t nflushed = FLUSH_MAX;
    MDB_txn *txn = NULL;
    int rc, errs[64];
    gw_key_t *targets[64];
    job_t *j;

    if ((rc = mdb_txn_begin(gw->env, NULL, 0, &txn)) == 0) {
        size_t i = 0;
        for (j = jobs; j != NULL; j = j->next, ++i) {
            int e = job_write(gw, txn, j, &targets[i]);
            errs[i] = e;
            if (e != 0 && e != ENOENT && e != EPERM) {
                rc = e; /* a failed put leaves the transaction unusable */
                break;
            }
        }
        if (rc == 0 && flush_usage(gw, txn, words, keys, &nflushed) != 0)
            rc = EIO;
        rc = rc == 0 ? mdb_txn_commit(txn) : (mdb_txn_abort(txn), rc);
    }
    if (rc != 0)
        fprintf(stderr, "edgeproxy: data store: a write failed: %s\n", mdb_strerror(rc));
    else
        for (size_t i = 0; i != nflushed; ++i) {
            atomic_store(&keys[i]->flushed, words[i].quota);
            atomic_store(&keys[i]->flushed_today, words[i].today);
        }

    size_t i = 0;
    while ((j = jobs) != NULL) {
        jobs = j->next;
        int e = rc != 0 ? EIO : errs[i];
        gw_key_t *k = rc != 0 ? NULL : targets[i];
        if (e == 0 && k != NULL) {
            switch (j->kind) {
            case JOB_CREATE:
                if (key_insert(gw, k) != 0)
                    e = ENOMEM;
                break;
            case JOB_ENABLE:
                atomic_store(&k->enabled, j->enabled);
                break;
            case JOB_REMOVE:
                key_unlink(gw, k);
                break;
            }
        }
        if (e != 0 && j->kind == JOB_CREATE) {
            key_free(j->key);
            k = NULL;
        }
        j->done(j->data, e, e == 0 ? k : NULL);
        free(j);
        ++i;
    }
}

static void *writer_main(void *p)
{
    gw_t *gw = p;
    struct timespec next;

    pthread_setname_np(pthread_self(), "edge-data-wr");
    clock_gettime(CLOCK_MONOTONIC, &next);
    pthread_mutex_lock(&gw->mu);
    for (;;) {
        job_t *batch = NULL, **tail = &batch;
        size_t n = 0;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int flush_due = now.tv_sec > next.tv_sec || (now.tv_sec == next.tv_sec && now.tv_nsec >= next.tv_nsec);
        if (gw->jobs == NULL && !flush_due && !gw->stopping) {
            pthread_cond_timedwait(&gw->wake, &gw->mu, &next);
            continue;
        }
        /* at most 64 jobs per transaction (the rest in the next one, right after) */
        while (gw->jobs != NULL && n != 64) {
            job_t *j = gw->jobs;
            gw->jobs = j->next;
            j->next = NULL;
            *tail = j;
            tail = &j->next;
            ++n;
        }
        if (gw->jobs == NULL)
            gw->jobs_tail = &gw->jobs;
        int stopping = gw->stopping && gw->jobs == NULL;
        pthread_mutex_unlock(&gw->mu);
        writer_round(gw, batch);
        if (flush_due) {
            clock_gettime(CLOCK_MONOTONIC, &next);
            next.tv_sec += 1;
        }
        pthread_mutex_lock(&gw->mu);
        if (stopping)
            break;
    }
    pthread_mutex_unlock(&gw->mu);
    return NULL;
}

static int enqueue(gw_t *gw, job_t *j)
{
    pthread_mutex_lock(&gw->mu);
    if (gw->stopping) {
        pthread_mutex_unlock(&gw->mu);
        return -1;
    }
    j->next = NULL;
    *gw->jobs_tail = j;
    gw->jobs_tail = &j->next;
    pthread_cond_signal(&gw->wake);
    pthread_mutex_unlock(&gw->mu);
    return 0;
}

static int random_bytes(gw_t *gw, unsigned char *out, size_t n)
{
    pthread_mutex_lock(&gw->mu);
    int rc = mbedtls_ctr_drbg_random(&gw->drbg, out, n);
    pthread_mutex_unlock(&gw->mu);
    return rc;
}

int gw_key_create(gw_t *gw, const char *name, int plan, char *secret_out, gw_done_cb done, void *data)
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char rnd[GW_KEY_SECRET_LEN + 8];
    job_t *j = calloc(1, sizeof(*j));
    gw_key_t *k = key_new(gw->conf, plan);

    if (j == NULL || k == NULL || random_bytes(gw, rnd, sizeof(rnd)) != 0)
        goto fail;
    /* 62 letters: 248 of the 256 byte values map evenly; the few others are re-drawn from the tail */
    size_t o = 0, extra = GW_KEY_SECRET_LEN;
    for (size_t i = 0; i != GW_KEY_SECRET_LEN; ++i) {
        unsigned char b = rnd[i];
        while (b >= 248 && extra != sizeof(rnd))
            b = rnd[extra++];
        secret_out[o++] = alnum[b % 62];
    }
    secret_out[o] = '\0';
    mbedtls_sha256_ret((unsigned char *)secret_out, o, k->sha256, 0);
    k->id[0] = 'k';
    hex(rnd + GW_KEY_SECRET_LEN, 8, k->id + 1);
    snprintf(k->name, sizeof(k->name), "%s", name != NULL ? name : k->id);
    k->created_s = (int64_t)(gw_now_ns() / 1000000000);
    j->kind = JOB_CREATE;
    j->key = k;
    j->done = done;
    j->data = data;
    if (enqueue(gw, j) != 0)
        goto fail;
    return 0;
fail:
    free(j);
    if (k != NULL)
        key_free(k);
    return -1;
}

static int id_job(gw_t *gw, job_kind_t kind, const char *id, int enabled, gw_done_cb done, void *data)
{
    job_t *j;

    if (strlen(id) > GW_KEY_ID_MAX || (j = calloc(1, sizeof(*j))) == NULL)
        return -1;
    j->kind = kind;
    strcpy(j->id, id);
    j->enabled = enabled;
    j->done = done;
    j->data = data;
    if (enqueue(gw, j) != 0) {
        free(j);
        return -1;
    }
    return 0;
}

int gw_key_set_enabled(gw_t *gw, const char *id, int enabled, gw_done_cb done, void *data)
{
    return id_job(gw, JOB_ENABLE, id, enabled != 0, done, data);
}

int gw_key_remove(gw_t *gw, const char *id, gw_done_cb done, void *data)
{
    return id_job(gw, JOB_REMOVE, id, 0, done, data);
}

/* ---- open and close ---- */

static int add_conf_keys(gw_t *gw)
{
    for (size_t i = 0; i != gw->conf->nkeys; ++i) {
        const conf_key_t *ck = gw->conf->keys + i;
        gw_key_t *k = key_new(gw->conf, ck->plan);
        if (k == NULL)
            return -1;
        snprintf(k->id, sizeof(k->id), "%s", ck->name);
        snprintf(k->name, sizeof(k->name), "%s", ck->name);
        memcpy(k->sha256, ck->sha256, 32);
        k->from_conf = 1;
        atomic_store(&k->enabled, ck->enabled);
        if (key_insert(gw, k) != 0) {
            key_free(k);
            return -1;
        }
    }
    return 0;
}

static int open_env(gw_t *gw, const char *path, char *err, size_t errlen)
{
    MDB_txn *txn;
    int rc;

    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "data store %s: %s", path, strerror(errno));
        return -1;
    }
    if ((rc = mdb_env_create(&gw->env)) != 0)
        goto fail;
    if ((rc = mdb_env_set_maxdbs(gw->env, 16)) != 0 || (rc = mdb_env_set_mapsize(gw->env, MAP_SIZE)) != 0 ||
        (rc = mdb_env_open(gw->env, path, MDB_NOTLS, 0600)) != 0)
        goto fail_env;
    if ((rc = mdb_txn_begin(gw->env, NULL, 0, &txn)) != 0)
        goto fail_env;
    if ((rc = mdb_dbi_open(txn, "gw.keys", MDB_CREATE, &gw->keys_dbi)) != 0 ||
        (rc = mdb_dbi_open(txn, "gw.usage", MDB_CREATE, &gw->usage_dbi)) != 0 || (rc = mdb_txn_commit(txn)) != 0) {
        if (rc != 0)
            mdb_txn_abort(txn);
        goto fail_env;
    }
    return 0;
fail_env:
    mdb_env_close(gw->env);
    gw->env = NULL;
fail:
    snprintf(err, errlen, "data store %s: %s", path, mdb_strerror(rc));
    return -1;
}

int gw_open(gw_t **out, const conf_t *conf, const char *path, char *err, size_t errlen)
{
    gw_t *gw = calloc(1, sizeof(*gw));
    pthread_condattr_t ca;

    *out = NULL;
    err[0] = '\0';
    if (gw == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    gw->conf = conf;
    gw->jobs_tail = &gw->jobs;
    pthread_rwlock_init(&gw->lock, NULL);
    pthread_mutex_init(&gw->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&gw->wake, &ca);
    pthread_condattr_destroy(&ca);
    mbedtls_entropy_init(&gw->entropy);
    mbedtls_ctr_drbg_init(&gw->drbg);
    if (mbedtls_ctr_drbg_seed(&gw->drbg, mbedtls_entropy_func, &gw->entropy, (const unsigned char *)"edgeproxy-keys", 14) != 0) {
        snprintf(err, errlen, "no entropy for key generation");
        goto fail;
    }
    if (mbedtls_ctr_drbg_random(&gw->drbg, (unsigned char *)gw->memo_keys, sizeof(gw->memo_keys)) != 0) {
        snprintf(err, errlen, "no entropy for key generation");
        goto fail;
    }
    if (open_env(gw, path, err, errlen) != 0)
        goto fail;
    if (add_conf_keys(gw) != 0 || load(gw, err, errlen) != 0) {
        if (err[0] == '\0')
            snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (pthread_create(&gw->writer, NULL, writer_main, gw) != 0) {
        snprintf(err, errlen, "cannot start the data store's writer thread");
        goto fail;
    }
    gw->writer_started = 1;
    *out = gw;
    return 0;
fail:
    gw_close(gw);
    return -1;
}

void gw_close(gw_t *gw)
{
    if (gw == NULL)
        return;
    if (gw->writer_started) {
        pthread_mutex_lock(&gw->mu);
        gw->stopping = 1;
        pthread_cond_signal(&gw->wake);
        pthread_mutex_unlock(&gw->mu);
        pthread_join(gw->writer, NULL);
        /* the last counts */
        writer_round(gw, NULL);
    }
    for (size_t i = 0; i != gw->nall; ++i)
        key_free(gw->all[i]);
    free(gw->all);
    if (gw->env != NULL)
        mdb_env_close(gw->env);
    mbedtls_ctr_drbg_free(&gw->drbg);
    mbedtls_entropy_free(&gw->entropy);
    pthread_cond_destroy(&gw->wake);
    pthread_mutex_destroy(&gw->mu);
    pthread_rwlock_destroy(&gw->lock);
    free(gw);
}
