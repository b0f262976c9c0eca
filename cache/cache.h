/*
 * cache: edgeproxy's HTTP cache (RFC 9111), in two halves with no h2o types, so both are unit-testable alone:
 *
 *   policy (policy.c, policy_http.c, key.c)  pure functions: Cache-Control and friends, freshness and age, what
 *                                             may be stored and reused, validators, Vary normalisation, cache keys.
 *   store  (store.c, store_writer.c)          the persistent object store on LMDB: lookups from any thread, writes
 *                                             batched by one writer thread, eviction, expiry, purge.
 *
 * proxy/ wires them to requests (lookup, coalesced fills from the origin, revalidation, Cache-Status).
 *
 * Times are int64_t: seconds since the epoch for HTTP semantics (HTTP dates have 1 s resolution), milliseconds where
 * the name says _ms.
 */
#ifndef EDGEPROXY_CACHE_H
#define EDGEPROXY_CACHE_H

#include <stddef.h>
#include <stdint.h>

/* ==== policy ============================================================================================ */
/* (cache/policy.c: directives, storability, freshness, reuse; policy_http.c: dates, validators, Cache-Status;
 * key.c: Vary and keys) */

/*
 * Pure functions, no allocation, no clock: every time is passed in. Nothing here keeps state between calls, so any
 * thread may call anything. Inputs are untrusted bytes with explicit lengths (never NUL-terminated unless said so);
 * nothing reads past a length. Pointers in outputs that point "into the input" live as long as the caller's input.
 *
 * The module's place in a request, as proxy/ uses it:
 *   lookup  cache_key_build() + cache_key_digest(key, NULL) finds the primary record; when that record carries a Vary
 *           name list, cache_vary_key() + cache_key_digest(key, vary) finds the variant. cache_request_cc() parses the
 *           client's directives, cache_reuse() says FRESH / STALE_WHILE_REVALIDATE / STALE_ALLOWED / REVALIDATE,
 *           cache_not_modified() says 304 or 200, cache_status_format() writes Cache-Status.
 *   fill    cache_storable() on the origin's exchange says whether to store and returns the cache_meta_t to store
 *           with the object, plus the response header names to drop from the stored copy.
 *   refresh after a 304 from the origin, the caller merges the 304's headers into the stored ones (RFC 9111 4.3.4)
 *           and calls cache_storable() again on the merged set, with the stored status and the new request/response
 *           times, for the new metadata.
 *   error   cache_stale_if_error() says whether a stale object may stand in for a 5xx or an unreachable origin.
 */

/* One header field line. Names are lower-case (h2o gives them so); a name may appear on several lines. */
typedef struct cache_hdr {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} cache_hdr_t;

/* A borrowed byte string (a field name inside a directive's value, a static name). */
typedef struct cache_str {
    const char *base;
    size_t len;
} cache_str_t;

/* RFC 9111 1.2.2: delta-seconds larger than this are read as this. Every duration below is at most this. */
#define CACHE_DELTA_MAX 2147483648LL

/* ---- HTTP dates (RFC 9110 5.6.7) ---- */

#define CACHE_DATE_SIZE 30 /* "Sun, 06 Nov 1994 08:49:37 GMT" and its NUL */

/*
 * Parses an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), an RFC 850 date ("Sunday, 06-Nov-94 08:49:37 GMT") or an
 * asctime date ("Sun Nov  6 08:49:37 1994"), with surrounding whitespace. Returns seconds since the epoch, or -1 when
 * the value is not one of these. Names are matched case-insensitively and the weekday is not checked against the date
 * (as nginx does); RFC 850's two-digit years 70..99 are 19xx and 00..69 are 20xx; dates before 1970 read as 0.
 */
int64_t cache_date_parse(const char *s, size_t len);

/* Writes t as an IMF-fixdate and a NUL into buf. t is clamped to 1970..9999. */
void cache_date_format(int64_t t, char buf[CACHE_DATE_SIZE]);

/* ---- Cache-Control and the targeted fields (RFC 9111 5.2, RFC 5861, RFC 8246, RFC 9213) ---- */

#define CACHE_CC_MAX_FIELDS 16 /* field names kept from no-cache="..." / private="..." */

/* Directive bits of cache_cc_t.flags (present and valid) and .invalid (seen malformed, negative or conflicting). */
enum {
    CACHE_CC_MAX_AGE = 1u << 0,
    CACHE_CC_S_MAXAGE = 1u << 1,
    CACHE_CC_NO_STORE = 1u << 2,
    CACHE_CC_NO_CACHE = 1u << 3,        /* unqualified no-cache */
    CACHE_CC_NO_CACHE_FIELDS = 1u << 4, /* only the qualified form no-cache="a, b": names in cc.no_cache */
    CACHE_CC_PRIVATE = 1u << 5,         /* unqualified private */
    CACHE_CC_PRIVATE_FIELDS = 1u << 6,  /* only the qualified form private="a, b": names in cc.private_ */
    CACHE_CC_PUBLIC = 1u << 7,
    CACHE_CC_MUST_REVALIDATE = 1u << 8,
    CACHE_CC_PROXY_REVALIDATE = 1u << 9,
    CACHE_CC_MUST_UNDERSTAND = 1u << 10,
    CACHE_CC_NO_TRANSFORM = 1u << 11,
    CACHE_CC_IMMUTABLE = 1u << 12,
    CACHE_CC_SWR = 1u << 13, /* stale-while-revalidate */
    CACHE_CC_SIE = 1u << 14, /* stale-if-error (response and request) */
    CACHE_CC_MAX_STALE = 1u << 15,
    CACHE_CC_MIN_FRESH = 1u << 16,
    CACHE_CC_ONLY_IF_CACHED = 1u << 17,
};

/*
 * Parsed directives of one field (all its lines). Values are meaningful only when their bit is in flags.
 *
 * Parsing is lenient where that cannot make a response more cacheable than the origin meant: names are
 * case-insensitive, whitespace and empty list elements are skipped, values may be tokens or quoted strings
 * (max-age="60"), unknown directives are ignored (but counted in ndirectives).
 * Delta-seconds (max-age, s-maxage, stale-*, max-stale, min-fresh) must be 1*DIGIT; larger than CACHE_DELTA_MAX reads as
 * CACHE_DELTA_MAX. A malformed, negative or empty value, trailing garbage, or the same directive twice with different
 * values makes the directive invalid (its bit goes to .invalid, and stays there for later lines):
 *   max-age, s-maxage   stay in flags with the value 0: the response is stale at once (RFC 9111 4.2.1 allows this)
 *   the others          are ignored
 * Restrictive directives (no-store, no-cache, private, must-revalidate, proxy-revalidate) are honoured even when they
 * carry an unexpected value or trailing garbage; the permissive public and immutable are ignored then.
 * Field lists: both the quoted form and the token form (private=set-cookie) are read; lists of several lines or
 * directives are merged. An empty list, or one longer than CACHE_CC_MAX_FIELDS names, reads as the unqualified
 * directive (which is stricter). The unqualified form, once seen, wins over any list.
 * Bare max-stale (any staleness) reads as max_stale = CACHE_DELTA_MAX.
 */
typedef struct cache_cc {
    uint32_t flags;
    uint32_t invalid;
    uint32_t ndirectives; /* applicable directives seen, known or not (tells an empty targeted field) */
    uint32_t nknown;      /* of which this cache knows the name */
    int64_t max_age, s_maxage, stale_while_revalidate, stale_if_error, max_stale, min_fresh;
    uint32_t nno_cache, nprivate;
    cache_str_t no_cache[CACHE_CC_MAX_FIELDS]; /* point into the parsed value; not lower-cased */
    cache_str_t private_[CACHE_CC_MAX_FIELDS];
} cache_cc_t;

/* Which syntax cache_cc_parse() reads: they differ only in what may follow a directive after ';'. */
typedef enum cache_cc_syntax {
    CACHE_CC_SYNTAX_CACHE_CONTROL, /* Cache-Control: a ';' after a directive makes it malformed */
    CACHE_CC_SYNTAX_CDN,           /* CDN-Cache-Control (RFC 9213, a structured dictionary): ";param" is ignored */
    CACHE_CC_SYNTAX_SURROGATE,     /* Surrogate-Control: "max-age=60;edgeproxy" targets a device; see below */
} cache_cc_syntax_t;

/* The device name that Surrogate-Control directives may target ("no-store;edgeproxy"). */
#define CACHE_SURROGATE_TARGET "edgeproxy"

/* Zeroes cc (no directives). */
void cache_cc_init(cache_cc_t *cc);

/*
 * Adds the directives of one field line to cc (call once per line, in order, after cache_cc_init()). With
 * CACHE_CC_SYNTAX_SURROGATE, directives targeted at another device are skipped and not counted.
 */
void cache_cc_parse(cache_cc_t *cc, cache_cc_syntax_t syntax, const char *value, size_t len);

/*
 * The client's directives: every Cache-Control line of the request; when the request has none, "Pragma: no-cache"
 * reads as no-cache (RFC 9111 5.4).
 */
void cache_request_cc(cache_cc_t *cc, const cache_hdr_t *hdrs, size_t nhdrs);

typedef enum cache_cc_source {
    CACHE_CC_SRC_NONE,          /* no directives at all */
    CACHE_CC_SRC_CACHE_CONTROL, /* Cache-Control */
    CACHE_CC_SRC_CDN,           /* CDN-Cache-Control */
    CACHE_CC_SRC_SURROGATE,     /* Surrogate-Control */
} cache_cc_source_t;

/*
 * The directives this cache obeys for a response (RFC 9213): Surrogate-Control when it has at least one caching
 * directive (a name this parser knows: ESI's content="..." does not count) that applies to us (untargeted or
 * ";edgeproxy"), else CDN-Cache-Control when it has at least one directive, else Cache-Control. When a targeted field
 * is chosen, Cache-Control and Expires do not count for this cache's storability or freshness; they still go to the
 * client unchanged. Returns the source used. cc's field lists point into hdrs.
 */
cache_cc_source_t cache_response_cc(cache_cc_t *cc, const cache_hdr_t *hdrs, size_t nhdrs);

/*
 * 1 for the response header names that speak to this cache only and must be removed before the response goes to the
 * client (or into the stored copy): cdn-cache-control and surrogate-control. name is lower-case.
 */
int cache_hdr_is_targeted(const char *name, size_t len);

/* ---- storability and the stored metadata (RFC 9111 3 and 4.2) ---- */

/* A route's caching policy (from the conf). */
typedef struct cache_route_policy {
    int64_t default_ttl; /* seconds, -1 none: the lifetime of a response without explicit freshness (see below) */
    /*
     * 1: ignore the origin's max-age, s-maxage, Expires, no-cache, private, must-revalidate and proxy-revalidate and the
     * Set-Cookie rule, and use default_ttl (nginx's proxy_ignore_headers Cache-Control Expires Set-Cookie). A response
     * with Set-Cookie is then stored without its Set-Cookie (one client's cookie never goes to another), and the names
     * of a private="..." list are still stripped. no-store, Vary: *, the status, method and Authorization rules still
     * hold; stale-while-revalidate / stale-if-error from the response still come before the route's defaults.
     */
    int override;
    int64_t default_swr; /* stale-while-revalidate seconds when the response has none; -1 or 0: none */
    int64_t default_sie; /* stale-if-error seconds when the response has none; -1 or 0: none */
} cache_route_policy_t;

/* One exchange with the origin: what cache_storable() judges. */
typedef struct cache_exchange {
    const char *method; /* of the client's request */
    size_t method_len;
    const cache_hdr_t *req; /* the client's request headers */
    size_t nreq;
    int status;
    const cache_hdr_t *resp; /* the origin's response headers */
    size_t nresp;
    int64_t request_time;  /* when the request went to the origin (seconds) */
    int64_t response_time; /* when the response head came back (seconds) */
} cache_exchange_t;

#define CACHE_META_VERSION 1

/* cache_meta_t.flags */
enum {
    CACHE_META_MUST_REVALIDATE = 1u << 0,  /* must-revalidate: never served stale */
    CACHE_META_PROXY_REVALIDATE = 1u << 1, /* proxy-revalidate: same, for a shared cache */
    CACHE_META_HAS_S_MAXAGE = 1u << 2,     /* s-maxage: implies proxy-revalidate (RFC 9111 5.2.2.10) */
    CACHE_META_NO_CACHE = 1u << 3,         /* no-cache (qualified or not): revalidated on every use */
    CACHE_META_IMMUTABLE = 1u << 4,        /* immutable: while fresh, the client's no-cache / max-age are not obeyed */
    CACHE_META_HAS_ETAG = 1u << 5,
    CACHE_META_HAS_LAST_MODIFIED = 1u << 6,
    CACHE_META_HEURISTIC = 1u << 7,   /* the lifetime is heuristic (10% of Date - Last-Modified) */
    CACHE_META_DEFAULT_TTL = 1u << 8, /* the lifetime is the route's default_ttl */
};

/*
 * What the store keeps with each object: a fixed-size POD of explicit-width fields (64 bytes, host byte order, no
 * pointers), copied as is into LMDB. A reader checks version == CACHE_META_VERSION and treats anything else as a miss.
 */
typedef struct cache_meta {
    uint8_t version;
    uint8_t reserved;
    uint16_t status;
    uint32_t flags;                /* CACHE_META_* */
    int64_t response_time;         /* seconds since the epoch */
    int64_t corrected_initial_age; /* seconds (RFC 9111 4.2.3) */
    int64_t freshness_lifetime;    /* seconds, 0..CACHE_DELTA_MAX */
    int64_t swr;                   /* stale-while-revalidate window in seconds, 0 none */
    int64_t sie;                   /* stale-if-error window in seconds, 0 none */
    int64_t date;                  /* the response's Date (response_time when absent or invalid) */
    int64_t last_modified;         /* Last-Modified, -1 when absent or invalid */
} cache_meta_t;

/* What cache_storable() found. */
typedef struct cache_store_plan {
    const char *reason; /* NULL when storable; otherwise a static token for Cache-Status detail= (see below) */
    cache_meta_t meta;  /* filled when storable */
    cache_cc_source_t cc_source;
    /*
     * Response header names to drop from the stored copy (private="a, b" names, and set-cookie under override). They
     * point into the exchange's headers or at static strings, and are not lower-cased. Targeted fields
     * (cache_hdr_is_targeted) are not listed: drop them always.
     */
    size_t nstrip;
    cache_str_t strip[CACHE_CC_MAX_FIELDS + 1];
} cache_store_plan_t;

/*
 * Decides whether a shared cache may store the response (RFC 9111 3) and computes its metadata. Returns 1 when
 * storable, 0 when not, with out->reason one of:
 *   "method"          not a GET (a HEAD is answered from the stored GET by the caller)
 *   "status"          not a final status in 200..599, or 206, or 304
 *   "must-understand" must-understand with a status whose caching rules this cache does not know
 *   "no-store"        no-store in the response's effective directives (must-understand with a known status lifts it)
 *   "req-no-store"    no-store in the request
 *   "private"         unqualified private
 *   "authorization"   request with Authorization, and the response has none of must-revalidate, public, s-maxage
 *   "vary-star"       Vary: * (never matches a later request)
 *   "vary-too-long"   Vary lists more than CACHE_VARY_MAX_NAMES members
 *   "set-cookie"      the response sets a cookie (nginx and Varnish's builtin VCL also refuse); override lifts it
 *   "no-freshness"    no explicit freshness, no default_ttl, not heuristically cacheable
 *
 * Freshness lifetime, first that applies:
 *   override            default_ttl, else the heuristic below
 *   s-maxage, max-age   (invalid: 0)
 *   Expires - Date      (invalid Expires, "0" included: 0; no valid Date: response_time stands for it)
 *   default_ttl         for the heuristically cacheable statuses only
 *                       (200 203 204 300 301 308 404 405 410 414 501), so a 500 never lives default_ttl
 *   heuristic           those statuses with Last-Modified: 10% of Date - Last-Modified, at most 1 day (nginx has no
 *                       heuristic, Varnish uses its default_ttl of 2 minutes; a day bounds how long an edit can hide)
 * and `public` alone makes any status storable with the heuristic lifetime (0 without Last-Modified).
 * swr and sie come from the response, else from the route's defaults.
 * With no-cache (either form: the qualified form is treated as unqualified, as RFC 9111 5.2.2.4 notes most caches do)
 * the response is stored but revalidated on every use.
 */
int cache_storable(const cache_exchange_t *x, const cache_route_policy_t *route, cache_store_plan_t *out);

/* current_age (RFC 9111 4.2.3) of a stored response at now; never negative. */
int64_t cache_meta_age(const cache_meta_t *m, int64_t now);

/* freshness_lifetime - current_age: the Cache-Status ttl=; negative once stale. */
int64_t cache_meta_ttl(const cache_meta_t *m, int64_t now);

/* ---- reuse (RFC 9111 4.2, RFC 5861) ---- */

typedef enum cache_reuse {
    CACHE_REUSE_FRESH,                  /* serve it */
    CACHE_REUSE_STALE_WHILE_REVALIDATE, /* serve it now and refresh it in the background */
    CACHE_REUSE_STALE_ALLOWED,          /* stale, but the client's max-stale accepts it: serve it */
    CACHE_REUSE_REVALIDATE,             /* go to the origin with its validators, wait for the answer */
} cache_reuse_t;

typedef struct cache_reuse_info {
    int64_t age;    /* current_age: the Age header to send */
    int64_t ttl;    /* cache_meta_ttl(): Cache-Status ttl= */
    int by_request; /* REVALIDATE because of the client's directives (Cache-Status fwd=request), not staleness */
} cache_reuse_info_t;

/*
 * How a stored response may be used at now for a request with directives req (from cache_request_cc(); NULL ignores
 * the client's directives, as nginx and Varnish do by default, so clients cannot force origin fetches).
 *   fresh       lifetime > age, and age <= the request's max-age, and lifetime - age >= its min-fresh
 *   REVALIDATE  response no-cache; request no-cache, max-age or min-fresh not met (except while an immutable
 *               response is fresh); stale and must-revalidate, proxy-revalidate or s-maxage; stale beyond the windows
 *   SWR         stale by no more than the response's (or route's) stale-while-revalidate
 *   ALLOWED     stale by no more than the request's max-stale
 * only-if-cached is the caller's: answer 504 instead of going to the origin.
 */
cache_reuse_t cache_reuse(const cache_meta_t *m, const cache_cc_t *req, int64_t now, cache_reuse_info_t *info);

/*
 * 1 when a stored response may be served at now because the origin failed (5xx or unreachable): fresh, or stale by no
 * more than the response's (or route's) stale-if-error or the request's stale-if-error, and not forbidden by
 * must-revalidate, proxy-revalidate or s-maxage (RFC 9111 4.2.4). Never with no-cache: that response may not be used
 * without the origin's say, fresh or not. req may be NULL.
 */
int cache_stale_if_error(const cache_meta_t *m, const cache_cc_t *req, int64_t now);

/* ---- validators and conditional requests (RFC 9110 8.8, 13) ---- */

typedef struct cache_etag {
    int weak;           /* W/ prefix */
    const char *opaque; /* between the quotes (points into the input) */
    size_t len;
} cache_etag_t;

/*
 * Parses one entity-tag (surrounding whitespace allowed). A value without quotes (some origins send them) is taken
 * whole as the opaque part. Returns 0, or -1 when empty or malformed.
 */
int cache_etag_parse(const char *s, size_t len, cache_etag_t *out);

/*
 * 1 when If-None-Match's value (a list of entity-tags, or "*") matches the stored ETag by weak comparison (RFC 9110
 * 8.8.3.2: W/ ignored on both sides). Malformed members are skipped. etag may be NULL (no stored ETag): only "*"
 * matches then.
 */
int cache_if_none_match(const char *inm, size_t len, const char *etag, size_t etag_len);

/*
 * Whether to answer a GET or HEAD from the stored response with 304 (RFC 9110 13.2.2): If-None-Match when present
 * (all its lines), else If-Modified-Since against the stored Last-Modified (last_modified -1: unknown, never 304; an
 * invalid If-Modified-Since is ignored). etag is the stored ETag field value or NULL. Returns 1 for 304, 0 for the full
 * response. If-Match, If-Unmodified-Since and If-Range are not evaluated: the caller sends such requests to the origin.
 */
int cache_not_modified(const cache_hdr_t *req, size_t nreq, const char *etag, size_t etag_len, int64_t last_modified);

/* ---- Vary (RFC 9111 4.1) ---- */

/* Vary members read at most (the rest are ignored); cache_storable() refuses responses with more. */
#define CACHE_VARY_MAX_NAMES 32

/* 1 when any Vary line of the response lists "*". */
int cache_vary_star(const cache_hdr_t *resp, size_t nresp);

/*
 * Writes the canonical list of the field names in the response's Vary lines: lower-case, sorted, without duplicates,
 * joined by ',' ("accept-encoding,accept-language"); "" without Vary. This is what the primary record stores. Writes
 * at most cap bytes plus nothing else (no NUL); returns the full length, so a return > cap means truncated.
 */
size_t cache_vary_names(const cache_hdr_t *resp, size_t nresp, char *buf, size_t cap);

/*
 * Writes the variant's secondary key: for each name of `names` (any Vary list; canonicalised as above) one line
 * "name:value\n", or "name\n" when the request lacks the field (absent differs from empty). The value is the request's
 * lines of that field joined by ',', trimmed, without whitespace around commas; accept-encoding's value is lower-cased.
 * Equivalent requests give the same bytes. Same buffer contract as cache_vary_names().
 */
size_t cache_vary_key(const char *names, size_t names_len, const cache_hdr_t *req, size_t nreq, char *buf, size_t cap);

/* ---- cache keys (cache/key.c) ---- */

typedef enum cache_query_mode {
    CACHE_QUERY_ALL,    /* the whole query */
    CACHE_QUERY_NONE,   /* no query */
    CACHE_QUERY_ONLY,   /* only the listed parameters */
    CACHE_QUERY_EXCEPT, /* all but the listed parameters */
} cache_query_mode_t;

#define CACHE_KEY_MAX_SORTED_PARAMS 128 /* a query with more parameters keeps its order even with sort_query */

/* A route's key options (from the conf; borrowed). Zeroed means: the whole query, as sent. */
typedef struct cache_key_opts {
    cache_query_mode_t query;
    const char *const *params; /* names for ONLY / EXCEPT, NUL-terminated, compared as sent (no percent-decoding) */
    size_t nparams;
    int sort_query;             /* sort parameters by name (stable: equal names keep their order) */
    const char *const *headers; /* lower-case request header names whose values go into the key */
    size_t nheaders;
} cache_key_opts_t;

/* The request parts of a key. */
typedef struct cache_key_req {
    const char *method, *scheme, *authority, *path; /* path is the target with its query: "/a/b?x=1" */
    size_t method_len, scheme_len, authority_len, path_len;
    const cache_hdr_t *hdrs;
    size_t nhdrs;
} cache_key_req_t;

/*
 * Writes the key "GET https://example.com/a/b?x=1" followed by "\nname:value" (or "\nname" when absent) for each of
 * opts->headers, values normalised as in cache_vary_key(). The method class is "GET" for GET and HEAD, else the method.
 * The host is lower-cased, without a trailing dot and without the scheme's default port (80, 443). Empty query
 * parameters ("a=1&&b=2") are dropped, and so is a '?' with nothing left after it. Same buffer contract as
 * cache_vary_names(). opts may be NULL.
 */
size_t cache_key_build(const cache_key_req_t *req, const cache_key_opts_t *opts, char *buf, size_t cap);

#define CACHE_ID_SIZE 32

/*
 * The 32-byte object id: SHA-256(key) for the primary record (vary NULL), SHA-256(key || 0x00 || vary) for a variant
 * (vary from cache_vary_key()).
 */
void cache_key_digest(const char *key, size_t key_len, const char *vary, size_t vary_len, uint8_t id[CACHE_ID_SIZE]);

/* ---- Cache-Status (RFC 9211) ---- */

#define CACHE_STATUS_NAME "edgeproxy"

typedef enum cache_fwd {
    CACHE_FWD_NONE,      /* a hit */
    CACHE_FWD_URI_MISS,  /* nothing stored for the key */
    CACHE_FWD_VARY_MISS, /* stored, but not for these Vary'd headers */
    CACHE_FWD_STALE,     /* stored but stale: revalidated or refetched */
    CACHE_FWD_REQUEST,   /* the client's directives sent it to the origin */
    CACHE_FWD_BYPASS,    /* not cacheable here (method, route) */
} cache_fwd_t;

typedef struct cache_status {
    cache_fwd_t fwd;
    int fwd_status;     /* the origin's status, 0: not sent */
    int has_ttl;        /* write ttl= */
    int64_t ttl;        /* cache_meta_ttl(); negative for a stale hit */
    int stored;         /* the response was stored */
    int collapsed;      /* this request waited for another one's fetch */
    const char *detail; /* NUL-terminated, NULL: none; written as a token when it is one, else as a quoted string */
} cache_status_t;

/*
 * Writes the Cache-Status value: "edgeproxy; hit; ttl=42" or "edgeproxy; fwd=uri-miss; fwd-status=200; stored;
 * detail=no-store". Same buffer contract as cache_vary_names().
 */
size_t cache_status_format(const cache_status_t *s, char *buf, size_t cap);

/* ==== store ============================================================================================= */
/*
 * cache_store: the persistent object store of the HTTP cache, on LMDB (cache/store.c). It knows nothing of HTTP: an
 * object is an opaque `meta` blob (the caller's header block), a body, the URL and host it was fetched for, surrogate
 * keys (tags), two times and a flag, addressed by a 32-byte id the caller computes (a SHA-256 of its cache key).
 *
 * Threads. The store is shared by every worker thread; all functions are thread-safe unless noted. Reads
 * (cache_store_get*, cache_store_touch, cache_store_stats) run on the calling thread with an LMDB read transaction
 * (MDB_RDONLY, the environment has MDB_NOTLS; ended transactions are reset and kept in a small pool under a short
 * mutex for the next get, so a get neither allocates one nor locks LMDB's reader table) and never wait for the writer:
 * LMDB readers take no lock. Writes
 * (put, update_meta, delete, purge) only copy their arguments into a queue under a short mutex and return; ONE writer
 * thread per store takes what is queued, applies it in one write transaction (group commit), commits, and loops. So a
 * write is visible to gets only once it is committed (cache_store_flush() waits for that; tests and shutdown only).
 * Nothing a worker calls does I/O on the write path, waits on LMDB's write lock or fsyncs; a get may fault in pages of
 * the map (that is reading the cache).
 *
 * Durability: a cache may lose objects, but must never serve from a torn file. The environment is opened with
 * MDB_NOSYNC: a commit writes its pages into the kernel's page cache and does not wait for the disk (the kernel writes
 * them back; nginx's cache files get the same). LMDB keeps the file consistent through a crash of the process, since
 * the kernel has every commit, but not through a crash of the system (power loss, kernel panic): pages may reach the
 * disk in any order. So the writer records that commits may not be on disk: before the first commit after a sync it
 * writes DIR/unsynced holding the kernel's boot id (/proc/sys/kernel/random/boot_id) and fsyncs it and DIR; after
 * CACHE_STORE_SYNC_INTERVAL_MS without commits, after CACHE_STORE_SYNC_MAX_MS of commits, and at close it syncs the
 * environment (mdb_env_sync) and removes the marker; if the marker cannot be written, that commit is synced by LMDB
 * instead (without MDB_NOSYNC). At open, a marker with another boot id means the system went down with writes in flight: the file
 * is moved aside as below and the cache starts empty; a marker with the running boot id means only the process stopped, and
 * everything it committed is kept. Without a boot id (no /proc) the environment is opened with MDB_NOMETASYNC instead
 * (each commit fdatasync()s its data pages; a system crash may lose the last commits, never tear the file). A put
 * still queued when the process stops is lost. Commits write through the map (MDB_WRITEMAP: no write() per page, no
 * copy of each dirty page), for which the file is allocated on disk up front at the map's size (below), as Varnish's
 * file storage does: a write into a hole of a full disk would be a SIGBUS. On tmpfs or ramfs (no disk), on overlayfs and
 * copy-on-write or log-structured file systems (btrfs, ZFS, bcachefs, NILFS2: space allocated up front may not cover
 * overwrites), or if the disk has not the room with 64 MiB to spare (logged), the store writes with write() instead,
 * into a sparse file; then whatever the file holds past LMDB's last page (a failed allocation's, an older edgeproxy's)
 * is given back to the disk. If the
 * environment cannot be opened because it is corrupt or incompatible (MDB_INVALID, MDB_CORRUPTED, MDB_VERSION_MISMATCH,
 * MDB_INCOMPATIBLE, MDB_PAGE_NOTFOUND or MDB_CORRUPTED when first reading every database, or a `format` marker in the `meta`
 * database other than CACHE_STORE_FORMAT), cache_store_open() writes one line to stderr naming the directory and the error, renames
 * data.mdb to data.mdb.corrupt (replacing an older one), deletes lock.mdb, and starts empty.
 *
 * LMDB layout, in DIR/data.mdb (one environment, six named databases, keys compared as bytes):
 *   meta     "format" -> CACHE_STORE_FORMAT
 *   objects  id (32 bytes) -> record: a fixed header (flags, stored_ms, expires_ms, body_len, lengths), then the
 *            meta blob, url NUL, host NUL, and the tags as NUL-terminated strings back to back,
 *            and, when the whole record with the body fits in a leaf page (about 2 KB with 4 KiB pages), the body
 *   bodies   id -> body bytes of the other objects (absent when the body is empty or inline). Split from the record so
 *            that update_meta and soft purge rewrite a few KB, not the body; LMDB stores large values on their own
 *            overflow pages, and a read of the record does not touch the body's pages. A small object inline is one
 *            B-tree write instead of two (and an update_meta rewrites its 2 KB at most).
 *   urls     url key -> id, MDB_DUPSORT|MDB_DUPFIXED (several ids per URL: Vary variants, HEAD and GET). The url
 *            key is the URL, cut to LMDB's maximum key size (511 bytes); purges confirm against the full URL in the
 *            record. A host purge is a prefix scan of this index from the host, confirmed by the record's host,
 *            which is why a URL must begin with its host.
 *   tags     tag (cut like urls) -> id, MDB_DUPSORT|MDB_DUPFIXED.
 *   expiry   expires_ms (8 bytes big-endian) + id -> empty: objects in the order they expire (only those with
 *            expires_ms > 0).
 *
 * Size and eviction. `max_size` bounds the data in use: the pages of all databases (LMDB's mdb_stat, pages in use
 * times the page size; reported as bytes_used). When a batch would take it above 90% of max_size, the writer first
 * evicts, in the same transaction, until the data plus the batch's estimated size is under 80% (and again after the
 * batch if the estimate was short). Eviction samples like Redis: CACHE_STORE_EVICT_SAMPLES
 * positions at random in the id space (ids are uniform SHA-256 values, so MDB_SET_RANGE on a random key is a fair
 * sample), and evicts the candidate whose last use is oldest: an object already past expires_ms first, then the
 * smallest of max(stored_ms, last touch). cache_store_touch() records a hit in an in-memory table of relaxed atomics
 * indexed by a hash of the id (no LMDB write; approximate: two ids may share a slot; lost at restart).
 * The map (the file's size: allocated whole at open under MDB_WRITEMAP, see Durability) is max_size + max_size/2 + 2 *
 * max_object_size + 8 MiB: LMDB copies on write, a page freed by a commit is reusable only once no reader still sees it, and a
 * large body needs a run of contiguous free pages, so the map's pages in use grow past the data. Writes are taken from the queue in
 * batches of at most max_size/8 bytes (at least one operation) so one transaction cannot outgrow the headroom. If a batch still
 * hits MDB_MAP_FULL (for instance while a long-lived cache_store_ref_t pins old pages), the writer aborts it, evicts down to 50% in
 * transactions of their own, retries the batch once, and then applies it without its puts (dropped, counted). A request never fails
 * because the cache is full. An eviction pass stops after CACHE_STORE_EVICT_BATCH objects (a transaction's copies on write need
 * room; a transaction has at most two passes, before and after its puts); when more must go, the writer goes on at once in the
 * next transactions, down to the low water mark. After MDB_MAP_FULL the passes get smaller (halved, down to 16 objects) while the
 * map is still full. A store filled under a larger max_size gets, at open, a map large enough for its pages plus the same slack,
 * and, when its data is over the high water mark (logged), evicts down to the low water mark that way.
 *
 * Expiry: every expiry_interval_ms the writer deletes objects whose expires_ms <= now (the clock of the options),
 * walking the expiry index from its start, at most CACHE_STORE_EXPIRE_BATCH per pass (the next pass comes at once
 * when more remain). Gets do not look at the clock: an object past expires_ms may be returned until it is reclaimed,
 * and the caller decides (cache_store_item_t has expires_ms).
 *
 * Queue bound: a put or update_meta is dropped (counted in puts_dropped, returns CACHE_STORE_EDROPPED) when the
 * queue already holds queue_max_bytes (default 64 MiB) or queue_max_ops (default 4096) operations. Deletes, purges
 * and flushes are small and always queued.
 */

#define CACHE_STORE_ID_LEN 32
#define CACHE_STORE_FORMAT "edgeproxy-cache-store/2"
#define CACHE_STORE_EVICT_SAMPLES 16
#define CACHE_STORE_EXPIRE_BATCH 1000
#define CACHE_STORE_EVICT_BATCH 1000 /* evictions per transaction */
#define CACHE_STORE_SYNC_INTERVAL_MS 1000
#define CACHE_STORE_SYNC_MAX_MS 30000 /* a store that never rests is synced this often all the same */

/* Errors: 0, or one of these (cache_store_strerror() names them). LMDB's codes never leave the module. */
enum {
    CACHE_STORE_ENOTFOUND = -32100, /* no object with that id */
    CACHE_STORE_EDROPPED = -32101,  /* the write queue is full: the put was dropped (and counted) */
    CACHE_STORE_ETOOBIG = -32102,   /* the object is over max_object_size: refused (and counted) */
    CACHE_STORE_EINVAL = -32103,    /* bad arguments (empty url or host, url not starting with host, ...) */
    CACHE_STORE_ENOMEM = -32104,    /* malloc or the caller's allocator failed */
    CACHE_STORE_EIO = -32105,       /* LMDB failed (the message went to stderr, or to errbuf for open) */
};
const char *cache_store_strerror(int err);

/* Object flags. */
#define CACHE_STORE_F_STALE 0x1u /* soft-purged: the caller treats it as stale (may still use it for stale-if-error) */

typedef struct cache_store cache_store_t; /* opaque */

typedef struct cache_store_options {
    uint64_t max_size;           /* bytes of data in use to stay under; required (at least 1 MiB) */
    uint64_t max_object_size;    /* meta + body + strings above this are refused at put; 0: max_size / 8 */
    size_t queue_max_bytes;      /* 0: 64 MiB (raised to max_object_size if smaller) */
    size_t queue_max_ops;        /* 0: 4096 */
    unsigned max_readers;        /* concurrent read transactions (gets in progress + held refs); 0: 1024 */
    unsigned expiry_interval_ms; /* 0: 5000 */
    /* The clock of expiry and eviction, in the caller's milliseconds (those of stored_ms, expires_ms and touch);
     * NULL: CLOCK_REALTIME. Called on the writer thread only. For tests. */
    int64_t (*clock_ms)(void *clock_data);
    void *clock_data;
} cache_store_options_t;

/*
 * Creates `dir` (and its parents) if needed, opens or creates the environment there and starts the writer thread.
 * A corrupt or incompatible environment is moved aside (see above): that is not an error. On success returns 0 and
 * stores the store in *out; on failure returns a CACHE_STORE_E* code, stores NULL and writes one line (no newline)
 * naming the directory into errbuf. `dir` and `opts` are copied. Blocking (startup). One store per directory: the
 * directory is locked (flock) while its store is open, and a second open, in this process or another, fails with
 * CACHE_STORE_EIO ("in use by another process").
 */
int cache_store_open(const char *dir, const cache_store_options_t *opts, cache_store_t **out, char *errbuf, size_t errlen);

/*
 * Applies everything queued, stops and joins the writer, syncs and closes the environment, frees the store. No other
 * call may run on `store` concurrently or after. Held refs must be released before. Blocking (shutdown). NULL is ok.
 */
void cache_store_close(cache_store_t *store);

/* What the caller writes. Every pointer is borrowed for the duration of the call (cache_store_put copies it). */
typedef struct cache_store_object {
    const void *meta; /* the caller's header block, opaque to the store */
    size_t meta_len;
    const void *body; /* or NULL with copy_body */
    size_t body_len;
    /* When body is NULL (and body_len is not 0): writes the body_len bytes of the body at dst, during the call, so a
     * body held in pieces is copied once, into the store's own copy. */
    void (*copy_body)(void *copy_data, char *dst, size_t len);
    void *copy_data;
    const char *url;         /* host + path + query, NUL-terminated, non-empty; must begin with `host` */
    const char *host;        /* NUL-terminated, non-empty */
    const char *const *tags; /* surrogate keys, NUL-terminated; empty ones are dropped (repeats are kept, harmless) */
    size_t ntags;
    int64_t stored_ms;  /* when the response was stored; also the object's last use for eviction until touched */
    int64_t expires_ms; /* after this the object is useless even stale and may be reclaimed; 0: never */
    unsigned flags;     /* CACHE_STORE_F_* */
} cache_store_object_t;

/* What a get returns. Where the pointers point and how long they live depends on the call (see each). */
typedef struct cache_store_item {
    const void *meta;
    size_t meta_len;
    const void *body; /* NULL from cache_store_get_meta(); not NUL-terminated */
    uint64_t body_len;
    const char *url, *host;
    const char *tags; /* ntags NUL-terminated strings back to back */
    size_t ntags;
    int64_t stored_ms, expires_ms;
    unsigned flags;
} cache_store_item_t;

/* Put flags. */
#define CACHE_STORE_PUT_TAKE_BODY 0x1u /* obj->body was malloc()ed and the store free()s it, whatever the outcome */

/*
 * Queues a copy of `obj` under `id` (replacing any object with that id once applied) and returns at once: 0 queued,
 * CACHE_STORE_EDROPPED (queue full), CACHE_STORE_ETOOBIG, CACHE_STORE_EINVAL or CACHE_STORE_ENOMEM. A queued put
 * may still be dropped by the writer if the map is full (counted in puts_dropped). The caller may ignore the result:
 * a dropped put is a later miss. With CACHE_STORE_PUT_TAKE_BODY the body is not copied but owned by the store (a body
 * given by copy_body cannot be taken: CACHE_STORE_EINVAL).
 */
int cache_store_put(cache_store_t *store, const uint8_t id[CACHE_STORE_ID_LEN], const cache_store_object_t *obj,
                    unsigned put_flags);

/*
 * Queues a new meta blob and times for `id` (an origin 304 refreshed the headers): the body, url, host and tags are
 * kept and CACHE_STORE_F_STALE is cleared. Nothing happens if the id is gone by then. Copies `meta`. Same results
 * as cache_store_put (dropped when the queue is full).
 */
int cache_store_update_meta(cache_store_t *store, const uint8_t id[CACHE_STORE_ID_LEN], const void *meta, size_t meta_len,
                            int64_t stored_ms, int64_t expires_ms);

/*
 * A mark of everything queued so far, by any thread: cache_store_applied(store, mark) is 1 once the writer has applied
 * (committed, or dropped) every op queued up to the mark; a get sees a committed put from then on. Both are an atomic
 * load: a caller may poll (the cache keeps a finished fill joinable until its put is applied).
 */
uint64_t cache_store_mark(cache_store_t *store);
int cache_store_applied(cache_store_t *store, uint64_t mark);

/* Queues the deletion of `id`. 0 or CACHE_STORE_ENOMEM. */
int cache_store_delete(cache_store_t *store, const uint8_t id[CACHE_STORE_ID_LEN]);

typedef enum cache_store_purge_kind {
    CACHE_STORE_PURGE_URL,    /* arg: a URL (host + path + query): every id stored with exactly that URL */
    CACHE_STORE_PURGE_PREFIX, /* arg: a URL prefix (host + path prefix): every URL that begins with it, as bytes */
    CACHE_STORE_PURGE_TAG,    /* arg: a surrogate key */
    CACHE_STORE_PURGE_HOST,   /* arg: a host: every object stored with exactly that host */
    CACHE_STORE_PURGE_ALL,    /* arg: ignored (may be NULL) */
} cache_store_purge_kind_t;

/*
 * Called ON THE WRITER THREAD once the purge is committed (err 0, count = objects deleted or marked stale) or failed
 * (err a CACHE_STORE_E* code, count 0). It must not block for long (the writer waits for it) nor call
 * cache_store_flush() or cache_store_close(); queuing more work is fine. Bridge to an event loop with a message
 * (h2o_multithread_send_message).
 */
typedef void (*cache_store_done_cb)(int err, size_t count, void *cb_data);

/*
 * Queues a purge. Hard (soft == 0) deletes the objects; soft sets CACHE_STORE_F_STALE on them and keeps everything
 * else. `arg` is copied. done_cb may be NULL; cb_data is the caller's and must live until done_cb runs. Returns 0 or
 * CACHE_STORE_EINVAL / CACHE_STORE_ENOMEM (then done_cb is never called).
 */
int cache_store_purge(cache_store_t *store, cache_store_purge_kind_t kind, const char *arg, int soft, cache_store_done_cb done_cb,
                      void *cb_data);

/* Blocks until everything queued before the call is committed (or dropped). For tests and shutdown only. */
void cache_store_flush(cache_store_t *store);

/* A caller's allocator for the copying gets, e.g. over a request's pool. May return NULL (then CACHE_STORE_ENOMEM). */
typedef void *(*cache_store_alloc_cb)(size_t size, void *alloc_data);

/*
 * Copies the object `id` out: one alloc(size, alloc_data) call receives meta, body, url, host and tags, and every
 * pointer in *out points into that block, which the caller owns. Returns 0, CACHE_STORE_ENOTFOUND, CACHE_STORE_ENOMEM
 * or CACHE_STORE_EIO (also when all max_readers read slots are in use: treat as a miss).
 */
int cache_store_get(cache_store_t *store, const uint8_t id[CACHE_STORE_ID_LEN], cache_store_alloc_cb alloc, void *alloc_data,
                    cache_store_item_t *out);

/*
 * The cheap form, for revalidation decisions, HEAD and 304s: same as cache_store_get() without the body (out->body
 * is NULL, out->body_len is set). The body's pages are not read.
 */
int cache_store_get_meta(cache_store_t *store, const uint8_t id[CACHE_STORE_ID_LEN], cache_store_alloc_cb alloc, void *alloc_data,
                         cache_store_item_t *out);

/*
 * Zero copy: fills *out with pointers into LMDB's map and returns a ref that keeps its read transaction open; the
 * pointers live until cache_store_release(ref) and are read-only (the map is writable under MDB_WRITEMAP: a write
 * through them would damage the store, not fault). A held ref pins the pages of
 * its snapshot, so the writer cannot reuse freed pages and the map fills (MDB_MAP_FULL comes sooner): hold one only while the bytes
 * are being sent to a client that reads, never across an idle wait, and copy for slow clients. Any thread may release it (a ref
 * handed to another thread must be handed over with the usual synchronisation, as any pointer).
 * Returns 0 (and *ref), CACHE_STORE_ENOTFOUND, CACHE_STORE_ENOMEM or CACHE_STORE_EIO.
 */
typedef struct cache_store_ref cache_store_ref_t;
int cache_store_get_ref(cache_store_t *store, const uint8_t id[CACHE_STORE_ID_LEN], cache_store_ref_t **ref,
                        cache_store_item_t *out);
void cache_store_release(cache_store_ref_t *ref);

/* Records a hit on `id` at now_ms for eviction: one relaxed atomic store in memory, no I/O. */
void cache_store_touch(cache_store_t *store, const uint8_t id[CACHE_STORE_ID_LEN], int64_t now_ms);

typedef struct cache_store_stats {
    uint64_t objects;      /* objects stored, as of the last commit */
    uint64_t bytes_used;   /* pages in use times the page size, as of the last commit */
    uint64_t map_size;     /* the map's size: the file's size under MDB_WRITEMAP, else its upper bound */
    uint64_t puts;         /* puts committed */
    uint64_t puts_dropped; /* puts and meta updates dropped: queue full, or the map full */
    uint64_t puts_too_big; /* puts refused for max_object_size */
    uint64_t evictions;    /* objects evicted for space */
    uint64_t expired;      /* objects removed by expiry */
    uint64_t purged;       /* objects deleted or marked by purges */
    uint64_t map_full;     /* batches that hit MDB_MAP_FULL */
    uint64_t commits;      /* write transactions committed */
    uint64_t queue_bytes;  /* now queued */
    uint64_t queue_ops;
} cache_store_stats_t;

/* Fills *out; each counter is read atomically, the set is not a snapshot. */
void cache_store_stats(cache_store_t *store, cache_store_stats_t *out);

#endif
