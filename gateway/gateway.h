/*
 * gateway: what makes edgeproxy an API gateway, without h2o types (unit-testable alone).
 *
 *   limit.c  token buckets (GCRA: one atomic word per bucket, exact across threads) and quota periods (UTC).
 *   jwt.c    JWKS files (RFC 7517) and JWT verification (RFC 7519/7515: HS256, RS256, ES256 with mbedTLS).
 *   keys.c   the API-key registry: keys from the conf and from the admin API, their plans' buckets and quota counters,
 *            persisted in the LMDB environment `data` by one writer thread (durable commits, batched).
 *
 * Threads: every gw_* function may be called from any thread unless it says otherwise. Nothing here blocks on disk
 * except gw_open() and gw_close(): the writer thread does the LMDB writes and fsyncs.
 *
 * Clock: limits take `now` as an argument (nanoseconds or seconds since the epoch, UTC), so tests inject it.
 * gw_now_ns() is the clock the server uses: CLOCK_REALTIME plus an offset that only tests set (gw_set_clock_offset).
 */
#ifndef EDGEPROXY_GATEWAY_H
#define EDGEPROXY_GATEWAY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "conf/conf.h"

/* ---- clock ---- */

/* Nanoseconds since the epoch (UTC) as the gateway sees them. */
uint64_t gw_now_ns(void);
/* Shifts gw_now_ns() by offset_ns (tests: the server reads EDGEPROXY_TEST_CLOCK at start). Call before any thread. */
void gw_set_clock_offset(int64_t offset_ns);

/* ---- limit.c: token buckets and quota periods ---- */

/*
 * A rate in GCRA form: one request costs `interval_ns` of a budget that may run up to `tolerance_ns` ahead of now.
 * With burst b and a refill of r per second, interval = 1/r and tolerance = (b - 1) / r: b requests may arrive at once,
 * then one every 1/r. Over any window of length t starting from a full bucket at most b + floor(t * r) are admitted.
 */
typedef struct gw_rate {
    uint64_t interval_ns;
    uint64_t tolerance_ns;
    uint64_t burst;
    uint64_t count, per_ms; /* as configured, for the RateLimit-Policy header */
} gw_rate_t;

/* A bucket: the theoretical arrival time of the next request (ns). Zero-initialised means full. */
typedef struct gw_bucket {
    _Atomic uint64_t tat;
} gw_bucket_t;

/* What a bucket said about one request. */
typedef struct gw_take {
    int allowed;
    uint64_t remaining;      /* whole tokens left after this request (allowed) or now (refused) */
    uint64_t retry_after_ns; /* refused: when one token is back */
    uint64_t reset_ns;       /* until the bucket is full again */
} gw_take_t;

void gw_rate_init(gw_rate_t *r, const conf_rate_t *c);
/* Takes one token at now_ns; lock-free (compare-and-swap), exact when several threads take from one bucket. */
void gw_bucket_take(gw_bucket_t *b, const gw_rate_t *r, uint64_t now_ns, gw_take_t *out);

/* [*start, *end) in seconds since the epoch: the UTC period (day, week from Monday, month) that holds t. */
void gw_period_bounds(conf_period_t period, int64_t t, int64_t *start, int64_t *end);

/*
 * A quota counter: the period's start (in days since the epoch, 24 bits) and the count (40 bits) in one atomic word, so
 * a new period resets the count in the same compare-and-swap that counts the first request of it.
 */
typedef struct gw_quota {
    _Atomic uint64_t word;
} gw_quota_t;

typedef struct gw_quota_take {
    int allowed;
    uint64_t used;      /* after this request */
    uint64_t remaining; /* limit - used */
    int64_t reset_s;    /* seconds until the period ends */
} gw_quota_take_t;

/* Counts one request of a quota of `limit` per period at now_s; refuses it when the period's count is at the limit. */
void gw_quota_take(gw_quota_t *q, uint64_t limit, conf_period_t period, int64_t now_s, gw_quota_take_t *out);
/* The count of the period holding now_s (0 when the counter holds an older period). */
uint64_t gw_quota_used(const gw_quota_t *q, conf_period_t period, int64_t now_s);
/* Sets the counter to `used` in the period that starts at period_start_s (restoring it at start). */
void gw_quota_set(gw_quota_t *q, int64_t period_start_s, uint64_t used);
/* Unpacks a counter's word: the period's start (s) and the count. */
void gw_quota_unpack(uint64_t word, int64_t *period_start_s, uint64_t *used);

/* ---- jwt.c: JWKS and JWT ---- */

typedef struct gw_jwks gw_jwks_t;

/*
 * Loads a JWKS file: {"keys": [...]} with keys of kty "RSA" (n, e), "EC" (crv "P-256", x, y) and "oct" (k); "kid",
 * "alg" and "use" are optional (a key with "use" other than "sig" is skipped). Returns 0, or -1 with a message naming
 * the file and what is wrong (unreadable, not JSON, a key that does not parse, no usable key).
 */
int gw_jwks_load(const char *path, gw_jwks_t **out, char *err, size_t errlen);
void gw_jwks_free(gw_jwks_t *jwks);
size_t gw_jwks_count(const gw_jwks_t *jwks);

typedef struct gw_jwt_rules {
    unsigned algorithms; /* CONF_JWT_* */
    const char *issuer;  /* NULL: not checked */
    char *const *audiences;
    size_t naudiences; /* 0: not checked */
    int64_t leeway_s;
} gw_jwt_rules_t;

typedef enum gw_jwt_error {
    GW_JWT_OK = 0,
    GW_JWT_MALFORMED,     /* not three base64url parts, bad JSON, a claim of the wrong type */
    GW_JWT_BAD_ALG,       /* alg none, an algorithm not allowed, or one the key is not for (HS/RS confusion) */
    GW_JWT_NO_KEY,        /* no key with the token's kid (or, without kid, none of the alg's type) */
    GW_JWT_BAD_SIGNATURE, /* the signature does not verify */
    GW_JWT_EXPIRED,       /* now >= exp + leeway (RFC 7519 4.1.4: "on or after") */
    GW_JWT_NOT_YET_VALID, /* now < nbf - leeway */
    GW_JWT_BAD_ISSUER,
    GW_JWT_BAD_AUDIENCE,
} gw_jwt_error_t;

/* A short text for WWW-Authenticate's error_description ("the token has expired", ...); static. */
const char *gw_jwt_strerror(gw_jwt_error_t e);

/*
 * Verifies a compact JWS (header.payload.signature) at now_s: the algorithm is one of rules->algorithms and matches
 * the key's type (and the key's "alg" when it has one); the signature verifies with the key named by kid (or, without
 * kid, with any key of the right type); exp and nbf (numbers, when present) hold with the leeway; iss and aud match
 * the rules. On GW_JWT_OK, *claims is the decoded payload (malloc'ed JSON text, NUL-terminated, the caller frees it)
 * when claims is not NULL. Never reads beyond token[0..len).
 */
gw_jwt_error_t gw_jwt_verify(const gw_jwks_t *jwks, const gw_jwt_rules_t *rules, const char *token, size_t len, int64_t now_s,
                             char **claims);

/* base64url without padding (RFC 4648 5); padding '=' is accepted on input. Returns the decoded length or -1. */
long gw_b64url_decode(const char *in, size_t len, unsigned char *out, size_t outcap);

/* ---- keys.c: the key registry ---- */

#define GW_KEY_ID_MAX 64
#define GW_KEY_SECRET_LEN 40 /* characters of a key made by gw_key_create: [A-Za-z0-9] */

typedef struct gw gw_t;

/*
 * A key. Lives until gw_close(), even after it is deleted (`deleted` is then set and lookups no longer find it), so a
 * request may keep the pointer for its whole life without a lock.
 */
typedef struct gw_key {
    char id[GW_KEY_ID_MAX + 1]; /* conf keys: their name; API keys: "k" + 16 hex digits */
    char name[GW_KEY_ID_MAX + 1];
    uint8_t sha256[32];
    int plan;      /* index into conf->plans, or -1 */
    int from_conf; /* conf keys cannot be changed through the API */
    int64_t created_s;
    atomic_int enabled;
    atomic_int deleted;
    gw_bucket_t *buckets;     /* 1 + the plan's noverrides: [0] the plan's rate, [1 + i] override i */
    gw_quota_t quota;         /* the plan's quota period (counted only when the plan has a quota) */
    gw_quota_t today;         /* every admitted request of the UTC day (for the usage report) */
    _Atomic uint64_t flushed; /* the quota word last written to disk */
    _Atomic uint64_t flushed_today;
    struct gw_key *next; /* in the registry's hash chain */
} gw_key_t;

/*
 * Opens the registry over the LMDB environment in directory `path` (made when missing): keys made through the API and
 * quota counts are read back; the conf's keys are added (a stored key with the same id as a conf key is ignored).
 * Starts the writer thread, which writes changed quota counts once a second. conf must outlive the registry.
 * Returns 0, or -1 with a message.
 */
int gw_open(gw_t **out, const conf_t *conf, const char *path, char *err, size_t errlen);
/* Writes the last quota counts, stops the writer and frees everything (every gw_key_t too). */
void gw_close(gw_t *gw);

/* The enabled-or-not, undeleted key whose secret is secret[0..len), or NULL. Constant time in the secret's bytes. */
gw_key_t *gw_key_find(gw_t *gw, const char *secret, size_t len);
/*
 * A per-thread memo in front of gw_key_find(): the presented secrets' SipHash-2-4 (64 bits, keyed with a random key
 * made at gw_open) mapped to the keys they found, so that a returning caller costs one short keyed hash instead of a
 * SHA-256 and the registry's lock. Neither the secret nor its SHA-256 is kept in it. A forged secret would have to
 * hit a known key's 64-bit keyed hash without knowing the hash key: one chance in 2^64 per request. Owned by one
 * thread (no locking); zero-initialise it. A deleted key is never returned from it.
 */
#define GW_MEMO_SLOTS 256
typedef struct gw_key_memo {
    struct {
        uint64_t h;
        gw_key_t *key;
    } slots[GW_MEMO_SLOTS];
} gw_key_memo_t;

/* gw_key_find() through the thread's memo. */
gw_key_t *gw_key_find_memo(gw_t *gw, gw_key_memo_t *memo, const char *secret, size_t len);

/* The undeleted key with that id, or NULL. */
gw_key_t *gw_key_by_id(gw_t *gw, const char *id, size_t len);
/* Snapshot of the undeleted keys, in creation order (conf keys first): a malloc'ed array the caller frees. */
gw_key_t **gw_keys_list(gw_t *gw, size_t *n);

/*
 * Changes made through the admin API. Each is done by the writer thread in a durable transaction; `done` is then
 * called ON THE WRITER THREAD with err 0 (committed) or an errno-style code, and must not block.
 *   create: name may be NULL (the id is used); plan is an index or -1. secret_out (GW_KEY_SECRET_LEN + 1 bytes, owned
 *           by the caller until done) receives the new key's secret; done's key is the new key.
 *   set_enabled, remove: by id; err ENOENT when there is none, EPERM for a conf key.
 * Return 0 when queued, or -1 (ENOMEM, or the registry is closing).
 */
typedef void (*gw_done_cb)(void *data, int err, gw_key_t *key);
int gw_key_create(gw_t *gw, const char *name, int plan, char *secret_out, gw_done_cb done, void *data);
int gw_key_set_enabled(gw_t *gw, const char *id, int enabled, gw_done_cb done, void *data);
int gw_key_remove(gw_t *gw, const char *id, gw_done_cb done, void *data);

/* Validates a key's name or id: [A-Za-z0-9._-]{1,64}. */
int gw_key_name_is_valid(const char *s, size_t len);
/* A string for the codes passed to done. */
const char *gw_strerror(int err);

#endif
