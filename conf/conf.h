/*
 * conf: the edgeproxy configuration, parsed once from one YAML file into typed structs.
 *
 * Ownership: conf_load() returns a conf_t that the caller owns and releases with conf_free(). Every pointer inside it
 * (strings, arrays, nested structs) is owned by that conf_t and lives exactly as long as it does. Nothing in the conf
 * changes after conf_load() returns: worker threads read it concurrently without locks.
 *
 * Paths: every relative path in the file (data_dir, certificates, static directories, access log, CA files, JWKS
 * files, Lua files) is resolved against the directory of the conf file, so the conf works from any working directory.
 * The structs hold the resolved paths.
 *
 * Errors: conf_load() fails on the first problem and writes one line naming the file, the line and the key, e.g.
 *   conf/edge.yaml:12: hosts."*".routes[0].timeout: must be between 50ms and 29s
 * Unknown keys, wrong types (a list where a mapping is expected, "abc" for a number), values out of range and bad
 * units are all errors; edgeproxy never starts on a conf that fails to load.
 *
 * The module depends on libyaml only (no h2o types), so it is unit-testable alone.
 */
#ifndef EDGEPROXY_CONF_H
#define EDGEPROXY_CONF_H

#include <stddef.h>
#include <stdint.h>

#define CONF_DEFAULT_TIMEOUT_MS 29000u
#define CONF_MIN_TIMEOUT_MS 50u
#define CONF_MAX_TIMEOUT_MS 29000u
#define CONF_DEFAULT_MAX_BODY_SIZE (10u * 1024 * 1024)
#define CONF_MAX_MAX_BODY_SIZE (1024ull * 1024 * 1024) /* 1 GiB: request bodies are buffered in memory */
#define CONF_DEFAULT_SHUTDOWN_TIMEOUT_MS 10000u
#define CONF_DEFAULT_IDLE_TIMEOUT_MS 10000u
#define CONF_DEFAULT_CACHE_MAX_SIZE (1024ull * 1024 * 1024)
#define CONF_DEFAULT_STORE_MAX_SIZE (1024ull * 1024 * 1024)
#define CONF_MIN_CACHE_MAX_SIZE (16ull * 1024 * 1024)
#define CONF_MAX_CACHE_MAX_SIZE (1024ull * 1024 * 1024 * 1024)
#define CONF_DEFAULT_CACHE_MAX_OBJECT_SIZE (64ull * 1024 * 1024)
#define CONF_MAX_CACHE_TTL_S (10ull * 365 * 86400)
#define CONF_DEFAULT_JWT_LEEWAY_S 30u
#define CONF_MAX_JWT_LEEWAY_S 300u
#define CONF_MAX_QUOTA ((1ull << 40) - 1) /* quota counters keep 40 bits */
#define CONF_DEFAULT_LUA_CPU_MS 50u
#define CONF_MAX_LUA_CPU_MS 29000u
#define CONF_DEFAULT_LUA_MEMORY (64ull * 1024 * 1024)
#define CONF_MIN_LUA_MEMORY (1ull * 1024 * 1024)
#define CONF_MAX_LUA_MEMORY (4ull * 1024 * 1024 * 1024)
#define CONF_DEFAULT_FETCH_TIMEOUT_MS 10000u
#define CONF_MIN_FETCH_TIMEOUT_MS 1u
#define CONF_MAX_FETCH_TIMEOUT_MS 300000u
#define CONF_DEFAULT_FETCH_MAX_BODY_SIZE (8ull * 1024 * 1024)
#define CONF_MIN_FETCH_MAX_BODY_SIZE 1024ull
#define CONF_MAX_FETCH_MAX_BODY_SIZE (1024ull * 1024 * 1024) /* 1 GiB: a subrequest's answer is buffered in memory */

/* HTTP methods a route may be limited to (bit mask). GET implies HEAD, as in nginx's limit_except. */
enum {
    CONF_M_GET = 1 << 0,
    CONF_M_HEAD = 1 << 1,
    CONF_M_POST = 1 << 2,
    CONF_M_PUT = 1 << 3,
    CONF_M_PATCH = 1 << 4,
    CONF_M_DELETE = 1 << 5,
    CONF_M_OPTIONS = 1 << 6,
};

/* One header name/value pair. The name is lower-cased by the loader. */
typedef struct conf_header {
    char *name;
    char *value;
} conf_header_t;

/*
 * Header rewrites of one direction (request to the origin, or response to the client).
 *   headers: { request: { add: { x-a: "1" }, remove: [x-b] }, response: { ... } }
 * remove runs first, then add appends (so add after remove of the same name replaces it).
 */
typedef struct conf_header_cmds {
    size_t nadd;
    conf_header_t *add;
    size_t nremove;
    char **remove; /* lower-cased names */
} conf_header_cmds_t;

typedef enum conf_origin_kind {
    CONF_ORIGIN_NONE = 0,
    CONF_ORIGIN_URL,      /* origin: { url: https://host:port/base, ca: file, preserve_host: false } */
    CONF_ORIGIN_STATIC,   /* origin: { static: dir, index: [index.html] } */
    CONF_ORIGIN_FUNCTION, /* origin: { function: file.lua }: the Lua function handler(event, context) answers */
    CONF_ORIGIN_STORE,    /* origin: { store: dynamodb }: the item store answers the DynamoDB JSON protocol;
                             origin: { store: rest, tables: [a, b] }: its tables as plain JSON resources (proxy/rest.c) */
} conf_origin_kind_t;

typedef struct conf_origin {
    conf_origin_kind_t kind;
    /* CONF_ORIGIN_URL */
    char *url;     /* as written */
    char *url_key; /* where: the key path (hosts."*".routes[0].origin.url) and line, for errors found after loading */
    unsigned url_line;
    int https;         /* 1 for https:// */
    char *host;        /* host name or IP literal (no brackets) */
    uint16_t port;     /* explicit or the scheme's default */
    char *base_path;   /* path part of the URL without a trailing '/'; "" when the URL has none or only "/" */
    char *ca_file;     /* PEM bundle to verify the origin's certificate; NULL: the system's default store. The chain and
                          the host name are always verified. */
    int preserve_host; /* send the client's Host instead of the origin's (default 0) */
    /* CONF_ORIGIN_STATIC */
    char *static_dir; /* resolved directory */
    size_t nindex;
    char **index; /* index file names, default ["index.html"] */
    /* CONF_ORIGIN_FUNCTION */
    char *function_file; /* resolved path of the Lua file */
    unsigned function_line;
    /*
     * CONF_ORIGIN_STORE
     *   store: dynamodb         the DynamoDB JSON protocol (POST with X-Amz-Target) on the route
     *   store: rest             GET/PUT/PATCH/DELETE <route path>/{table}/{key}[/{sortkey}] with plain JSON items, and
     *                           GET <route path>/{table} to list; the route's path must be a prefix (no {name})
     *   tables: [users, posts]  rest only: the tables it serves (3..255 of A-Z a-z 0-9 _ . -); absent: every table
     */
    enum { CONF_STORE_DYNAMODB = 1, CONF_STORE_REST } store_kind;
    size_t ntables;
    char **tables; /* NULL (ntables 0): every table */
} conf_origin_t;

/* One segment of a path pattern such as /users/{id}/files/{rest+}. */
typedef enum conf_seg_kind {
    CONF_SEG_LITERAL, /* text is the literal segment, without slashes */
    CONF_SEG_PARAM,   /* {name}: exactly one non-empty segment; text is the name */
    CONF_SEG_GREEDY,  /* {name+}: one or more segments to the end of the path; only allowed last; text is the name */
} conf_seg_kind_t;

typedef struct conf_seg {
    conf_seg_kind_t kind;
    char *text;
} conf_seg_t;

/* How a route builds its cache keys from the query string. */
typedef enum conf_query_mode {
    CONF_QUERY_ALL = 0, /* every parameter, as received (or sorted) */
    CONF_QUERY_NONE,    /* the query is left out of the key */
    CONF_QUERY_ONLY,    /* only the listed parameters */
    CONF_QUERY_EXCEPT,  /* every parameter but the listed ones (utm_source, ...) */
} conf_query_mode_t;

/*
 * A route's cache (only for url origins):
 *   cache:
 *     default_ttl: 60s              # freshness when the origin gives none (no explicit max-age/Expires); default none
 *     override: false               # true: ignore the origin's freshness directives and use default_ttl
 *     stale_while_revalidate: 30s   # when the response has none; default 0
 *     stale_if_error: 1h            # when the response has none; default 0
 *     key:
 *       query: all                  # all | none | {only: [a, b]} | {except: [utm_source]}
 *       sort_query: false           # sort the parameters by name so their order does not matter
 *       headers: [accept-language]  # request header values that go into the key
 */
typedef struct conf_route_cache {
    int enabled;
    int64_t default_ttl_s; /* -1: none */
    int override;
    int64_t stale_while_revalidate_s; /* 0: none */
    int64_t stale_if_error_s;         /* 0: none */
    conf_query_mode_t query;
    size_t nquery_params;
    char **query_params; /* for ONLY and EXCEPT, as written */
    int sort_query;
    size_t nkey_headers;
    char **key_headers; /* lower-cased */
} conf_route_cache_t;

/*
 * A request rate as a token bucket: `rate: 100/s` (also N/m, N/h, N/d, or N/DURATION such as 5/30s) and `burst: 50`
 * (the bucket's size: how many requests may arrive at once; default: the rate's count, at least 1).
 * A request is admitted when the bucket holds a token; it refills at count tokens per per_ms milliseconds.
 */
typedef struct conf_rate {
    int enabled;
    uint64_t count;  /* 1..1e9 */
    uint64_t per_ms; /* 1ms..1d */
    uint64_t burst;  /* 1..1e9 */
} conf_rate_t;

typedef enum conf_period {
    CONF_PERIOD_DAY = 0, /* UTC days */
    CONF_PERIOD_WEEK,    /* UTC weeks starting on Monday 00:00 */
    CONF_PERIOD_MONTH,   /* UTC calendar months */
} conf_period_t;

/* `quota: 10000/day` (or /week, /month): requests admitted per period; limit 0: no quota. */
typedef struct conf_quota {
    uint64_t limit; /* 0..CONF_MAX_QUOTA */
    conf_period_t period;
} conf_quota_t;

/*
 * CORS on a route:
 *   cors:
 *     origins: ["https://app.example.com"]   # or "*" (required)
 *     methods: [GET, POST]                    # default: GET, HEAD, POST
 *     headers: [content-type, x-api-key]      # request headers allowed; default none beyond the CORS-safelisted ones;
 *                                             # "*" allows whatever the preflight asks
 *     expose_headers: [x-request-id]          # default none
 *     credentials: false
 *     max_age: 10m                            # Access-Control-Max-Age, whole seconds, at most 24h; default not sent
 */
typedef struct conf_cors {
    int enabled;
    int any_origin; /* origins: "*" */
    size_t norigins;
    char **origins; /* "scheme://host[:port]", lower-cased, without a trailing '/' or the scheme's default port */
    unsigned methods;
    int any_header;
    size_t nheaders;
    char **headers; /* lower-cased */
    size_t nexpose;
    char **expose; /* as written */
    int credentials;
    int64_t max_age_s; /* 0..86400 (24h); -1: not sent */
} conf_cors_t;

/* JWT algorithms (bit mask). */
enum {
    CONF_JWT_HS256 = 1 << 0,
    CONF_JWT_RS256 = 1 << 1,
    CONF_JWT_ES256 = 1 << 2,
};

/*
 * JWT bearer auth on a route:
 *   auth:
 *     jwt:
 *       jwks: certs/jwks.json        # required; the keys (RFC 7517), reloaded on SIGHUP
 *       issuer: https://issuer.example  # optional: iss must equal it
 *       audience: [api]              # optional (a string or a list): aud must contain one of them
 *       leeway: 30s                  # clock skew allowed on exp and nbf (whole seconds); default 30s, at most 5m
 *       algorithms: [RS256, ES256]   # default all of HS256, RS256, ES256
 */
typedef struct conf_jwt {
    int enabled;
    char *jwks;   /* resolved path */
    char *issuer; /* NULL: not checked */
    size_t naudiences;
    char **audiences; /* none: not checked */
    uint64_t leeway_s;
    unsigned algorithms; /* CONF_JWT_* mask, never 0 */
} conf_jwt_t;

/*
 * Lua hooks of a route (any origin kind; on_response runs on url and function origins only):
 *   hooks:
 *     request: FILE      # a Lua file defining on_request(req); runs before the origin is called
 *     response: FILE     # a Lua file defining on_response(req, res)
 *     on_error: fail     # fail (default): an error in a hook answers 500; continue: the request goes on as if that
 *                        # hook had not run
 * At least one of request and response is required; both may name the same file. The files resolve like
 * origin.function's (against the conf's directory); like it, they are not opened by the loader.
 */
typedef struct conf_route_hooks {
    char *request_file; /* resolved; NULL: no request hook */
    unsigned request_line;
    char *response_file; /* resolved; NULL: no response hook (only url and function origins have one) */
    unsigned response_line;
    int on_error_continue; /* on_error: continue */
} conf_route_hooks_t;

typedef struct conf_route {
    char *path; /* as written; always starts with '/' */
    /*
     * A path without '{' is a prefix: it matches the path itself and anything below it at a '/' boundary
     * ("/api" matches /api, /api/, /api/x but not /apix; "/api/" matches /api/ and /api/x).
     * A path with '{' is a pattern, split into segments at '/'. A pattern matches the whole request path.
     */
    int is_pattern;
    size_t nsegs; /* pattern only */
    conf_seg_t *segs;
    unsigned methods; /* CONF_M_* mask; 0 means every method */
    conf_origin_t origin;
    uint64_t timeout_ms;    /* CONF_MIN_TIMEOUT_MS..CONF_MAX_TIMEOUT_MS; default CONF_DEFAULT_TIMEOUT_MS */
    uint64_t max_body_size; /* bytes; default: limits.max_body_size (413 above it; see px_body_hard_cap) */
    conf_header_cmds_t request_headers;
    conf_header_cmds_t response_headers;
    conf_route_cache_t cache;
    /*
     * auth: none (default) | api_key | jwt: {...} | { api_key: true, jwt: {...} }
     * With api_key, a request needs a known, enabled key (403 otherwise) and the key's plan limits it.
     */
    int api_key;
    conf_jwt_t jwt;
    conf_rate_t throttle;    /* `throttle:` every caller of the route together */
    conf_rate_t ip_throttle; /* `ip_throttle:` each client address on its own */
    conf_cors_t cors;
    conf_route_hooks_t hooks; /* `hooks:`; both files NULL: none */
    /*
     * `internal: true` (default false): an internal route is never matched by a client's request (404, like nginx's
     * `internal`); a request hook can send a request to its origin (req.origin = its path as written).
     */
    int internal;
    unsigned line; /* line of the route in the file, for messages */
} conf_route_t;

/*
 * A usage plan:
 *   plans:
 *     basic:
 *       rate: 100/s
 *       burst: 50
 *       quota: 10000/day
 *       overrides:                      # API Gateway's method throttling: replaces the plan's rate on those requests
 *         - { path: /api/search, methods: [GET], rate: 10/s, burst: 5 }
 * An override's path is a route's path exactly as written in hosts (a route of any host with that path). Two overrides
 * of a plan may not share a path and a method.
 */
typedef struct conf_plan_override {
    char *path;
    unsigned methods; /* CONF_M_*; 0: every method */
    conf_rate_t rate;
    unsigned line;
} conf_plan_override_t;

typedef struct conf_plan {
    char *name;
    conf_rate_t rate;   /* enabled 0: no rate limit */
    conf_quota_t quota; /* limit 0: no quota */
    size_t noverrides;
    conf_plan_override_t *overrides;
    unsigned line;
} conf_plan_t;

/*
 * An API key defined in the conf (keys can also be made through the admin API):
 *   keys:
 *     - { name: demo, plan: basic, sha256: 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8 }
 * Only the SHA-256 of the key is written (printf %s KEY | sha256sum).
 */
typedef struct conf_key {
    char *name; /* unique among the conf's keys: [A-Za-z0-9._-]{1,64}; the key's id in logs and the admin API */
    uint8_t sha256[32];
    int plan;    /* index into conf->plans, or -1: no plan (no limits) */
    int enabled; /* `enabled: false` keeps the key but refuses it; default 1 */
    unsigned line;
} conf_key_t;

typedef struct conf_host {
    char *name; /* "example.com" (lower-cased), "*.example.com" (wildcard suffix) or "*" (the default host) */
    size_t nroutes;
    conf_route_t *routes; /* in file order */
} conf_host_t;

typedef struct conf_tls_cert {
    char *cert; /* PEM certificate chain file */
    char *key;  /* PEM private key file */
} conf_tls_cert_t;

typedef struct conf_listener {
    char *address; /* IP literal to bind; default "0.0.0.0" */
    uint16_t port; /* 1..65535; 0 is allowed and means an ephemeral port (tests) */
    int tls;       /* listener speaks TLS 1.2/1.3 with ALPN h2, http/1.1 */
    /*
     * Certificates chosen by SNI (names are read from each certificate's subjectAltName / CN); the first is the
     * default. ncerts == 0 with tls set means: use a self-signed certificate generated under data_dir on first run.
     */
    size_t ncerts;
    conf_tls_cert_t *certs;
} conf_listener_t;

/*
 * store: { tables: { NAME: { attributes: { ATTR: RULE } } } }: the item store's schema validation (store/store.h).
 * RULE: { type: S|N|B|BOOL|NULL|L|M|SS|NS|BS, required: bool, min: NUM, max: NUM, min_length: INT, max_length: INT,
 *         enum: [values], pattern: REGEX }, each optional; min/max need type N, enum type S or N, pattern type S.
 */
typedef struct conf_store_attr {
    char *name;
    char *type; /* NULL: any */
    int required;
    char *min, *max;             /* decimal text; NULL: none */
    long min_length, max_length; /* -1: none */
    char **enums;
    size_t nenums;
    char *pattern; /* POSIX extended, checked with regcomp; NULL: none */
} conf_store_attr_t;

/* store: { access_keys: [ { id, secret } ] }: when set, the DynamoDB API verifies SigV4 signatures against them */
typedef struct conf_access_key {
    char *id, *secret;
} conf_access_key_t;

typedef struct conf_store_table {
    char *name;
    unsigned line;
    conf_store_attr_t *attrs;
    size_t nattrs;
} conf_store_table_t;

typedef struct conf {
    char *file;        /* the conf file path as given to conf_load */
    unsigned threads;  /* 1..256; default: number of online CPUs */
    char *data_dir;    /* resolved; default "var" beside the conf file */
    size_t nlisteners; /* at least 1 */
    conf_listener_t *listeners;
    struct {
        uint64_t max_body_size;   /* default route request body limit; default 10 MiB, max 1 GiB */
        uint64_t idle_timeout_ms; /* client connection idle timeout; 1s..1h, default 10s */
    } limits;
    uint64_t shutdown_timeout_ms; /* how long SIGTERM waits for in-flight requests; 0..10min, default 10s */
    struct {
        int enabled; /* default 1 */
        char *path;  /* resolved; default <data_dir>/access.log; "-" means standard output */
    } access_log;
    struct {
        char *path;               /* the LMDB environment's directory; resolved; default <data_dir>/cache */
        uint64_t max_size;        /* bytes the store may use; default 1 GiB, 16 MiB..1 TiB */
        uint64_t max_object_size; /* larger responses pass through uncached; default 64 MiB, at most max_size / 4 */
    } cache;
    struct {
        char *path;        /* the item store's LMDB environment; resolved; default <data_dir>/store */
        uint64_t max_size; /* its map size; default 1 GiB, 16 MiB..1 TiB */
        size_t ntables;
        conf_store_table_t *tables; /* schema validation rules per table (store/store.h's store_table_rules_t) */
        size_t naccess_keys;
        conf_access_key_t *access_keys; /* SigV4 keys of the DynamoDB API; none: signatures are not checked */
    } store;
    struct {
        int enabled;   /* an admin listener is configured */
        char *address; /* default 127.0.0.1 */
        uint16_t port; /* required */
        char *token;   /* bearer token for every admin request (required, at least 16 characters) */
    } admin;
    struct {
        char *header; /* lower-cased; default "x-api-key" */
        char *query;  /* a query parameter that may carry the key instead; NULL (default): none */
    } api_keys;
    size_t nplans;
    conf_plan_t *plans; /* in file order; names unique */
    size_t nkeys;
    conf_key_t *keys; /* in file order */
    /*
     * lua: Lua functions (origin: { function: FILE }) and hooks (a route's hooks:), one sandboxed VM per worker thread:
     *   lua:
     *     dir: hooks
     *     cpu_limit: 50ms
     *     memory_limit: 64MiB
     *     stage: prod
     *     variables: { name: value }
     *     fetch:                  # edge.fetch(): Lua's non-blocking HTTP(S) subrequests
     *       timeout: 10s          # default timeout of an edge.fetch call (the whole exchange); 1ms..5m
     *       max_body_size: 8MiB   # a subrequest's answer with a larger body fails that fetch; 1KiB..1GiB
     *       ca: FILE              # PEM bundle to verify https subrequests; default: the system's store
     */
    struct {
        char *dir;             /* require() loads modules from here only; resolved; default "hooks" beside the conf */
        uint64_t cpu_limit_ms; /* per invocation; 1ms..29s, default 50ms */
        uint64_t memory_limit; /* per VM; 1MiB..4GiB, default 64MiB */
        char *stage;           /* the event's requestContext.stage; default "prod" */
        size_t nvariables;
        conf_header_t *variables; /* the event's stageVariables (name/value pairs, names as written) */
        struct {
            uint64_t timeout_ms;    /* default timeout of an edge.fetch call; 1ms..5m, default 10s */
            uint64_t max_body_size; /* a larger answer body fails the fetch; 1KiB..1GiB, default 8MiB */
            char *ca_file;          /* resolved (like origin.ca); NULL: the system's default store */
        } fetch;
    } lua;
    size_t nhosts;      /* at least 1 */
    conf_host_t *hosts; /* in file order */
} conf_t;

/*
 * Loads and validates `path`. On success returns 0 and stores a new conf_t in *out. On failure returns -1, stores NULL
 * and writes a one-line message (no trailing newline) "FILE:LINE: KEY: what is wrong" into errbuf.
 */
int conf_load(const char *path, conf_t **out, char *errbuf, size_t errlen);

/* Same, from a YAML string; `name` is used as the file name in messages and relative paths resolve against `basedir`. */
int conf_load_string(const char *yaml, size_t len, const char *name, const char *basedir, conf_t **out, char *errbuf,
                     size_t errlen);

/* Releases a conf_t and everything it owns. NULL is allowed. */
void conf_free(conf_t *conf);

/*
 * Units. Durations: an integer followed by ms, s, m or h ("250ms", "30s", "5m", "1h"); no bare numbers.
 * Sizes: an integer, optionally followed by B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024)
 * ("10MiB", "512KB", "1024"). Both return 0 on success and -1 on a bad form or overflow.
 */
int conf_parse_duration(const char *s, uint64_t *ms);
int conf_parse_size(const char *s, uint64_t *bytes);

/*
 * Rates and quotas. "100/s", "10/m", "1000/h", "5000/d" or "5/30s" (count/duration) -> count and per_ms.
 * "10000/day", "/week", "/month" -> limit and period. Return 0, or -1 on a bad form or a value out of range.
 */
int conf_parse_rate(const char *s, uint64_t *count, uint64_t *per_ms);
int conf_parse_quota(const char *s, uint64_t *limit, conf_period_t *period);

/* Parses a method name ("GET") into its CONF_M_* bit; returns 0 when unknown. */
unsigned conf_method_bit(const char *name, size_t len);

#endif
