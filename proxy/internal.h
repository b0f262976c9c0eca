/*
 * Declarations shared by the files of proxy/. Never included outside proxy/ (and its unit tests).
 *
 * Lifetimes:
 *   boot        px_server_t, px_router_t, px_origin_t, SSL contexts: created before the threads start, read-only after.
 *   per thread  px_thread_t: its h2o context and loop, per-route upstream client contexts, the request-id DRBG.
 *   per request px_req_t and everything hanging off it come from req->pool and die with the request.
 */
#ifndef EDGEPROXY_PROXY_INTERNAL_H
#define EDGEPROXY_PROXY_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <openssl/ssl.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include "h2o.h"
#include "cache/cache.h"
#include "conf/conf.h"
#include "gateway/gateway.h"
#include "hooks/hooks.h"
#include "store/store.h"
#include "proxy/phr.h"
#include "proxy/proxy.h"

/* ---- router.c: host and path matching, independent of h2o ---- */

#define PX_MAX_PARAMS 16

typedef struct px_param {
    const char *name;  /* borrowed from the conf */
    const char *value; /* points into the matched path */
    size_t value_len;
} px_param_t;

typedef struct px_match {
    const conf_route_t *route;
    size_t route_id;   /* dense index over all routes of all hosts: 0..px_router_nroutes()-1 */
    size_t prefix_len; /* prefix routes: the length of the matched prefix (for rewriting to the origin's base path) */
    size_t nparams;
    px_param_t params[PX_MAX_PARAMS];
} px_match_t;

typedef struct px_router px_router_t;

/* Builds the router over conf's hosts. The router borrows conf, which must outlive it. Returns 0 or -1 (no memory). */
int px_router_create(px_router_t **out, const conf_t *conf);
void px_router_free(px_router_t *r);
size_t px_router_nroutes(const px_router_t *r);
const conf_route_t *px_router_route(const px_router_t *r, size_t route_id);

/*
 * The host entry for a Host/:authority value (port and case ignored): exact name, else the longest matching
 * "*.suffix" wildcard, else "*"; NULL when none matches.
 */
const conf_host_t *px_router_host(const px_router_t *r, const char *authority, size_t len);

/*
 * Matches `path` (normalised, without the query) within the host chosen for `authority`. The route matching the
 * longest part of the path wins; at equal length, the one with more literal characters; then the one written first.
 * Returns 0 and fills *m, or -1 when no route matches.
 */
int px_router_match(const px_router_t *r, const char *authority, size_t alen, const char *path, size_t plen, px_match_t *m);

/* ---- server.c ---- */

typedef struct px_thread px_thread_t;

/* What each route's origin needs at run time, built at boot and indexed by route id. */
typedef struct px_origin {
    const conf_route_t *route;
    /* CONF_ORIGIN_FUNCTION: the script id of its file in every thread's VM */
    size_t script;
    /* the route's hooks: script ids of its request and response files (SIZE_MAX: none); next to route, in the line
     * every request of the route reads (at the end of the struct, a hook's start waited for a cache miss) */
    size_t req_script, res_script;
    /* CONF_ORIGIN_URL */
    struct sockaddr_storage addr; /* resolved once at start, as nginx resolves proxy_pass hosts without a resolver */
    socklen_t addrlen;
    SSL_CTX *ssl_ctx;      /* https: verifies the chain and, through X509_VERIFY_PARAM, the host name; owned */
    h2o_iovec_t authority; /* "host:port" sent as Host unless preserve_host; owned */
    /* CONF_ORIGIN_STATIC: h2o's file handler on a private pathconf whose path is the route's prefix */
    h2o_pathconf_t pathconf;
    h2o_handler_t *file_handler;
} px_origin_t;

/* A route's gateway state at run time (gateway.c), built at boot and indexed by route id. */
typedef struct px_route_gate {
    gw_rate_t throttle_rate; /* conf throttle */
    gw_bucket_t throttle;
    gw_rate_t ip_rate;                  /* conf ip_throttle */
    h2o_iovec_t throttle_item, ip_item; /* their RateLimit-Policy items, made at boot (malloc'ed) */
    struct px_ip_table *ips;
    pthread_rwlock_t jwks_lock; /* held for reading while a token is verified; SIGHUP swaps jwks under it */
    gw_jwks_t *jwks;
    gw_jwt_rules_t jwt_rules;
} px_route_gate_t;

typedef struct px_listener {
    int fd;
    int admin;        /* the admin API's listener */
    SSL_CTX *ssl_ctx; /* NULL for plain HTTP; owned */
    char url[80];     /* "https://127.0.0.1:8443", with the bound port */
} px_listener_t;

struct px_server {
    const conf_t *conf;
    px_router_t *router;
    h2o_globalconf_t globalconf;
    h2o_hostconf_t *hostconf;          /* the one host h2o knows: we route hosts ourselves */
    h2o_pathconf_t *pathconf;          /* the one "/" pathconf every request enters; routing happens in our handler */
    h2o_globalconf_t admin_globalconf; /* the admin listener's own host and handler (admin.c); unused without one */
    int has_admin;
    h2o_filter_t *respond_filter;
    h2o_logger_t *access_logger; /* NULL when the access log is off */
    size_t nroutes;
    px_origin_t *origins;
    size_t nlisteners;
    px_listener_t *listeners;
    size_t nthreads;
    px_thread_t *threads;
    int access_log_fd;
    struct cache_store *cache_store; /* NULL when no route caches */
    gw_t *gw;                        /* the API-key registry; NULL when no route takes keys, no key is set, no admin */
    px_route_gate_t *gates;          /* per route id */
    gw_rate_t *plan_rates;           /* per plan p: plan_rates[plan_rate_at[p]] its rate, [+1 + i] its override i */
    size_t *plan_rate_at;
    h2o_iovec_t *plan_rate_items; /* RateLimit-Policy items of plan_rates, made at boot (malloc'ed) */
    size_t nplan_rates;
    const char **lua_files; /* function.c: the function files, indexed by script id (borrowed from the conf) */
    size_t nlua_files;
    atomic_uint lua_generation;     /* function.c: moved on by a SIGHUP whose scripts all load */
    struct px_lua_texts *lua_texts; /* function.c: the files' texts of the current generation, under lua_mu */
    hooks_kv_t *lua_vars;           /* function.c: the stage variables (lua.variables), made at boot (malloc'ed) */
    pthread_mutex_t lua_mu;
    SSL_CTX *lua_fetch_ssl_ctx; /* lua.c: edge.fetch's https client context; owned */
    struct store *store;        /* the item store; NULL when no route uses it */
    h2o_iovec_t *quota_items;   /* per plan: its quota's item; base NULL for none and for monthly ones (w varies) */
    atomic_int stopping;
    pthread_barrier_t started; /* the worker threads and px_server_run: every receiver registered before any accept */
};

/* A thread's side of one URL origin: its timeouts and its idle keep-alive connections (upstream.c). */
typedef struct px_route_client {
    h2o_loop_t *loop;
    h2o_timeout_t timeout;   /* the route's timeout: the deadline to the response head, then the idle limit of body reads */
    h2o_timeout_t keepalive; /* how long an idle connection is kept */
    h2o_linklist_t idle;     /* idle connections, most recently used first */
    size_t nidle;
} px_route_client_t;

struct px_thread {
    h2o_context_t ctx; /* first: px_thread_of() relies on it */
    px_server_t *srv;
    size_t idx;
    pthread_t tid;
    h2o_multithread_receiver_t wake;           /* the signal thread pokes this to start the shutdown */
    h2o_multithread_receiver_t fill_receiver;  /* fill.c: progress of fills this thread's requests stream */
    h2o_timeout_t fill_linger_timeout;         /* fill.c: when a finished fill checks whether the store has its object */
    h2o_multithread_receiver_t admin_receiver; /* admin.c: purges committed by the store's writer */
    h2o_multithread_receiver_t store_receiver; /* dynamo.c: item store writes committed by its writer */
    h2o_socket_t **listen_socks;
    h2o_accept_ctx_t *accept_ctxs;
    px_route_client_t *clients; /* per route id */
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    unsigned char rid_bytes[1024];        /* respond.c: DRBG output for request ids, drawn 1 KiB at a time (the DRBG's most) */
    size_t rid_used;                      /* bytes of rid_bytes already given out */
    h2o_linklist_t lingering;             /* linger.c: connections being drained after an early 413 */
    h2o_timeout_t linger_timeout;         /* linger.c: idle timeout of those */
    int linger_closed;                    /* linger.c: set at shutdown, no new lingering */
    size_t nconns;                        /* open client connections */
    size_t inflight;                      /* requests between our handler and the end of their response */
    gw_key_memo_t key_memo;               /* gateway.c: the API keys this thread's callers presented */
    hooks_vm_t *vm;                       /* function.c: this thread's Lua VM; NULL without functions */
    unsigned vm_generation;               /* function.c: the lua_generation its VM was made at */
    struct px_lua_timeouts *lua_timeouts; /* lua.c: edge.fetch's deadlines, one list per duration */
};

static inline px_thread_t *px_thread_of(h2o_req_t *req)
{
    return H2O_STRUCT_FROM_MEMBER(px_thread_t, ctx, req->conn->ctx);
}

/* Adds the respond filter and the access logger to a pathconf (the main one and each static origin's). */
void px_server_setup_pathconf(px_server_t *srv, h2o_pathconf_t *pathconf);

/* ---- respond.c: per-request state, request ids, JSON errors, the response filter ---- */

typedef struct px_req {
    h2o_req_prefilter_t super;
    const px_match_t *match; /* NULL until routed */
    h2o_iovec_t request_id;
    const char *error_message;     /* set by px_send_error: the JSON error's message */
    double upstream_ms;            /* to the origin's response head (or failure); negative when no origin was asked */
    unsigned from_origin : 1;      /* the response (status, headers, body) is the origin's own: never rewritten to JSON */
    unsigned cache_invalidate : 1; /* cached.c: an unsafe method on a caching route; a success invalidates the URL */
    h2o_iovec_t cache_status;      /* cached.c: the Cache-Status value, added by the respond filter */
    struct px_gate *gate;          /* gateway.c: what the gateway stage learnt (key, claims, limits, CORS); NULL if none */
    h2o_iovec_t cache_key_extra;   /* hook.c: req.cache_key of the request hook, added to the cache key */
    unsigned hook_ran : 1;         /* hook.c: the request hook has run (px_dispatch goes to the origin) */
} px_req_t;

/* The request's state, created on first use (also for requests h2o answers before our handler runs). */
px_req_t *px_req_get(h2o_req_t *req);
/* The request's state if px_req_get() was ever called for it, else NULL. */
px_req_t *px_req_find(h2o_req_t *req);

/*
 * Ends the request with an error: status and a JSON body {"message", "request_id"} (written by the respond filter).
 * Headers already in req->res.headers (such as Allow) are kept. `message` must outlive the request (a literal or pool
 * memory).
 */
void px_send_error(h2o_req_t *req, int status, const char *reason, const char *message);

/* The value of a hexadecimal digit, or -1. */
static inline int px_hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}
/* s[0..len) percent-decoded into the pool, NUL-terminated (a '%' not followed by two hex digits stays as it is; with
 * plus_space, '+' is a space, as in forms). */
h2o_iovec_t px_pct_decode(h2o_mem_pool_t *pool, const char *s, size_t len, int plus_space);
/* The client's address as text in buf (NI_MAXHOST bytes), NUL-terminated; its length, 0 when unknown. */
size_t px_client_ip(h2o_req_t *req, char *buf);
/* An IPv4 address (4 bytes, network order) as dotted text into buf (16 bytes), without sprintf; its length. */
size_t px_format_ipv4(const uint8_t a[4], char *buf);
/* The percent-decoded value of query parameter `name` (NUL-terminated, in the pool; '+' stays '+'), or NULL. */
char *px_query_param(h2o_req_t *req, const char *name);

/* The respond filter: x-request-id and Via on every response, route response headers, errors as JSON. */
h2o_filter_t *px_respond_register(h2o_pathconf_t *pathconf);

/* Request ids: kept from the client when 1..128 chars of [A-Za-z0-9._-], else 32 hex chars from the thread's DRBG. */
int px_request_id_is_valid(const char *s, size_t len);
int px_thread_init_random(px_thread_t *th);

/*
 * The hard cap on request bodies given to h2o (globalconf.max_request_entity_size) for the largest route limit: twice
 * it, at most CONF_MAX_MAX_BODY_SIZE (but never below the limit itself). See px_server_create.
 */
static inline uint64_t px_body_hard_cap(uint64_t largest_route_limit)
{
    uint64_t cap = largest_route_limit * 2;
    if (cap > CONF_MAX_MAX_BODY_SIZE)
        cap = CONF_MAX_MAX_BODY_SIZE;
    return cap > largest_route_limit ? cap : largest_route_limit;
}

/* ---- linger.c: lingering close of HTTP/1 connections closed with unread input ---- */

/* Arms a lingering close for the request's HTTP/1 connection (no-op for HTTP/2): call before the response starts. */
void px_linger_arm(h2o_req_t *req);
void px_linger_init_thread(px_thread_t *th);
/* Closes every connection still draining; after it, px_linger_arm() does nothing. */
void px_linger_dispose_thread(px_thread_t *th);

/* ---- gateway.c: CORS, API keys, JWT, throttles and quotas on a route (gateway/ does the math and the keys) ---- */

#define PX_MAX_LIMITS 4

/* One limit that applied to the request, for the RateLimit-Policy / RateLimit headers. */
typedef struct px_limit_report {
    const char *policy; /* "route", "ip", "key", "quota" */
    h2o_iovec_t item;   /* its RateLimit-Policy item: "key";q=100;w=1 (made at boot, or in the pool) */
    uint64_t remaining; /* r= */
    uint64_t reset_s;   /* t= */
} px_limit_report_t;

typedef struct px_gate {
    gw_key_t *key;           /* the caller's key (lives until the registry closes), or NULL */
    h2o_iovec_t claims;      /* the verified JWT's payload (JSON, in the pool), or len 0 */
    h2o_iovec_t cors_origin; /* an allowed Origin to answer to, or len 0 */
    size_t nlimits;
    px_limit_report_t limits[PX_MAX_LIMITS];
} px_gate_t;

/* Builds the routes' gateway state and opens the key registry when it is needed. */
int px_gateway_init(px_server_t *srv, char *err, size_t errlen);
void px_gateway_dispose(px_server_t *srv);
/* For `edgeproxy -t`: every route's JWKS file loads. */
int px_gateway_check(const conf_t *conf, char *err, size_t errlen);
/* SIGHUP: reloads every route's JWKS file; a file that fails to load keeps the old keys (logged). */
void px_gateway_reload(px_server_t *srv);
/* A CORS preflight on a CORS route: answers it (204, or 403 for an origin not allowed) and returns 1; else 0. */
int px_gateway_preflight(h2o_req_t *req, px_req_t *st);
/* API key, JWT, throttles and quota of the route. Returns 0 to go on, or 1 when it answered (401, 403, 429). */
int px_gateway_admit(px_server_t *srv, h2o_req_t *req, px_req_t *st);
/* The respond filter's part: RateLimit and CORS response headers. */
void px_gateway_response_headers(h2o_req_t *req, px_req_t *st);

/* ---- function.c: Lua functions as origins (hooks/ runs them) ---- */

struct px_fill;

/* Numbers the function files (script ids) and checks that each compiles; the message names the conf's line. */
int px_functions_init(px_server_t *srv, char *err, size_t errlen);
void px_functions_dispose(px_server_t *srv);
/* SIGHUP: compiles the files again; when all load, every thread remakes its VM before its next call. */
void px_functions_reload(px_server_t *srv);
/* The same check for `edgeproxy -t`, from the conf alone. */
int px_functions_check(const conf_t *conf, char *err, size_t errlen);
/* On the thread's loop: its VM. */
void px_functions_init_thread(px_thread_t *th);
void px_functions_dispose_thread(px_thread_t *th);
/* Answers a request on a function route: handler(event, context), or 502 when it fails. */
void px_function_handle(h2o_req_t *req, px_req_t *st, px_origin_t *origin);
/* A cache fill on a function route: the function's answer (for req) feeds the fill (px_fill_feed). */
void px_function_fill(struct px_fill *fill, h2o_req_t *req, px_req_t *st, px_origin_t *origin);

/* Remakes the thread's VM when a SIGHUP loaded new texts (runs still waiting keep the old VM until they end). */
void px_functions_refresh(px_thread_t *th);

/* ---- hook.c: the request and response hooks of a route ---- */

typedef struct px_lrun px_lrun_t; /* lua.c */

/* Runs on_request, then goes on with px_dispatch (or answers: edge.respond, or 500 when the hook fails). */
void px_hook_request(h2o_req_t *req, px_req_t *st, px_origin_t *origin);
/* The request as hooks see it: rq, whose costlier fields (headers, parameters, client address...) are filled in when a
 * hook first reads one (hooks_request_t.complete); in the pool, pointing into the request. */
typedef struct px_rq {
    hooks_request_t rq;
    h2o_req_t *req;
    px_req_t *st;
} px_rq_t;
void px_hook_request_view(h2o_req_t *req, px_req_t *st, px_rq_t *v);
/* The request's header fields and the route's path parameters as name/value pairs (in the pool, pointing into the
 * request). */
hooks_kv_t *px_hook_headers_kv(h2o_req_t *req);
hooks_kv_t *px_hook_params_kv(h2o_req_t *req, const px_match_t *m);
/* A slot in the request's pool whose px_lrun_t (if any) is freed with the request. */
px_lrun_t **px_hook_lrun_slot(h2o_req_t *req);
/* Adds a script's response fields to req->res.headers, leaving out those edgeproxy sets itself (content-length, server,
 * hop-by-hop, surrogate). */
void px_hook_add_headers(h2o_req_t *req, const hooks_kv_t *kv, size_t n);
/* Sends a script's answer (a function's, edge.respond's) as the response. */
void px_hook_send_answer(h2o_req_t *req, px_req_t *st, const hooks_response_t *res);
void px_hook_log_failure(px_req_t *st, const char *what, const char *file, const char *err);
/* The end of a response hook: c is what it changed (NULL when it failed); fail: it failed and the route does not
 * continue (the callback answers 500). */
typedef void (*px_hook_res_cb)(h2o_req_t *req, void *data, const hooks_response_changes_t *c, int fail);
/* Runs on_response over req->res (status and headers set; body given, or NULL when the proxy does not have it). */
void px_hook_response(h2o_req_t *req, px_req_t *st, const char *body, size_t body_len, px_hook_res_cb cb, void *data);
/* Sets req->res's status and headers as the response hook left them. */
void px_hook_apply_response(h2o_req_t *req, const hooks_response_changes_t *c);

/* ---- handler.c ---- */

/* "GET, HEAD, POST" for a CONF_M_* mask (in the pool): Allow and Access-Control-Allow-Methods. */
const char *px_methods_list(h2o_mem_pool_t *pool, unsigned methods);
/* Sends the request to origin (the route's, or the one a request hook picked): the cache when the route caches, else
 * the origin itself. The request hook runs first when the route has one and it has not run yet. */
void px_dispatch(h2o_req_t *req, px_req_t *st, px_origin_t *origin);
/* Registers edgeproxy's request handler on the main pathconf. */
void px_handler_register(px_server_t *srv, h2o_pathconf_t *pathconf);

/* ---- fetch.c: one HTTP/1.1 exchange with a URL origin, over the thread's keep-alive connections ---- */

#define PX_FETCH_MAX_HEADERS 128 /* an answer with more header fields is an error */

typedef struct px_fetch px_fetch_t;
typedef struct px_conn px_conn_t;

/* The answer's head, as parsed: the pointers go into the socket buffer and are valid during on_head only. */
typedef struct px_fetch_head {
    int minor_version;
    int status;
    h2o_iovec_t reason;
    struct phr_header *headers; /* every field as received, hop-by-hop ones included */
    size_t nheaders;
    size_t content_length; /* SIZE_MAX when unknown (chunked or close-delimited) */
} px_fetch_head_t;

typedef struct px_fetch_callbacks {
    /* The final head arrived (interim 1xx are skipped). The user may px_fetch_cancel() here. */
    void (*on_head)(px_fetch_t *f, const px_fetch_head_t *head);
    /* Decoded body bytes, valid during the call only. The user may px_fetch_pause() or px_fetch_cancel() here. */
    void (*on_body)(px_fetch_t *f, const char *bytes, size_t len);
    /* The end, exactly once unless cancelled: err is NULL when the answer is complete; timeout is set when the deadline
     * passed before the head. The fetch holds nothing any more: the user may free it here. */
    void (*on_end)(px_fetch_t *f, const char *err, int timeout);
} px_fetch_callbacks_t;

typedef enum { PX_BODY_NONE, PX_BODY_LENGTH, PX_BODY_CHUNKED, PX_BODY_CLOSE } px_framing_t;

/* Embedded in its user's object, which must outlive it until on_end or px_fetch_cancel. Fields are private. */
struct px_fetch {
    const px_fetch_callbacks_t *cb;
    void *data; /* the user's */
    px_origin_t *origin;
    px_route_client_t *rc;
    px_conn_t *conn;           /* NULL before connecting and once the exchange is over */
    h2o_iovec_t reqbuf;        /* request line, headers and body; owned by the user, valid until on_end or cancel */
    h2o_timeout_entry_t timer; /* in rc->timeout: the head deadline, then the idle limit of body reads */
    struct timeval started;
    double head_ms; /* from px_fetch_start to the head (or the failure); negative before */
    px_framing_t framing;
    uint64_t remaining; /* PX_BODY_LENGTH: bytes still to come */
    struct phr_chunked_decoder chunked;
    unsigned is_head : 1, idempotent : 1, reused : 1, retried : 1, written : 1, keepalive : 1, got_head : 1, body_done : 1,
        body_failed : 1, paused : 1, cancelled : 1;
};

/*
 * Sends reqbuf (a whole HTTP/1.1 request: head and body) to the origin of route_id and reports the answer through cb.
 * is_head: the answer has no body whatever its head says. idempotent: the request may be sent again on a new
 * connection when a reused one was dropped before any answer byte.
 */
void px_fetch_start(px_fetch_t *f, px_thread_t *th, size_t route_id, h2o_iovec_t reqbuf, int is_head, int idempotent,
                    const px_fetch_callbacks_t *cb, void *data);
/* Stops the exchange and closes its connection; no callback follows. */
void px_fetch_cancel(px_fetch_t *f);
/* Back-pressure: stop reading the answer (and its idle timer) until px_fetch_resume. */
void px_fetch_pause(px_fetch_t *f);
void px_fetch_resume(px_fetch_t *f);
/* Is `name` one of the comma-separated tokens of `list` (case-insensitive)? */
int px_header_has_token(h2o_iovec_t list, const char *name, size_t len);

/* Per origin, at start: TLS context, Host value, the resolved address. */
int px_upstream_init(px_server_t *srv, px_origin_t *origin, char *err, size_t errlen);
void px_upstream_dispose(px_origin_t *origin);
/* Per thread: each route's timeouts and idle connections. */
void px_upstream_init_thread(px_thread_t *th);
void px_upstream_dispose_thread(px_thread_t *th);

/* ---- upstream.c: forwarding a client's request to a URL origin ---- */

/*
 * The request for the origin, in req->pool: the client's, with the path rewritten, hop-by-hop fields dropped, the
 * route's header commands applied and X-Forwarded-For/-Proto and Via added. for_fill: a cache fill's GET instead
 * (no body, no conditional or Range fields of the client's). extra: more header lines ("name: value\r\n"...).
 */
h2o_iovec_t px_origin_request(h2o_req_t *req, px_req_t *st, px_origin_t *origin, int for_fill, h2o_iovec_t extra);
/* Forwards the request to the route's origin and streams the answer back. Always answers (502/504 on failure). */
void px_upstream_forward(h2o_req_t *req, px_req_t *st, px_origin_t *origin);

/* ---- fill.c: coalesced origin fetches that requests on any thread stream (the cache's misses) ---- */

typedef struct px_fill px_fill_t;
typedef struct px_sub px_sub_t;

typedef enum px_fill_state {
    PX_FILL_PENDING,   /* no head yet */
    PX_FILL_STREAMING, /* the head is published, the body grows */
    PX_FILL_DONE,      /* the whole answer is there */
    PX_FILL_FAILED,    /* the fetch failed: before the head (has_head 0) or in the body (truncated) */
    PX_FILL_RELEASED,  /* returned by ops->on_head: the answer is not for sharing (fill->released): only the first
                          subscriber streams it, the others must do without the fill */
} px_fill_state_t;

/* A response header of a fill: names lower-case; all the strings live in the fill's head_storage. */
typedef struct px_fill_hdr {
    h2o_iovec_t name;
    h2o_iovec_t value;
} px_fill_hdr_t;

/* What the cache does at the fill's turning points (on the owner thread). */
typedef struct px_fill_ops {
    /* The origin's head: fill in fill->status, headers, ... and return PX_FILL_STREAMING (share) or PX_FILL_RELEASED. */
    int (*on_head)(px_fill_t *fill, const px_fetch_head_t *head);
    /* Body bytes, before they are published (size accounting). Returns 1 to drop them (the answer is another). */
    int (*on_body)(px_fill_t *fill, size_t len);
    /* The end (err NULL: complete). Returns the final state: PX_FILL_DONE or PX_FILL_FAILED, or another state after
     * replacing the answer (a stale object published instead of an error). */
    int (*on_end)(px_fill_t *fill, const char *err, int timeout);
    /* A complete fill's PX_FILL_LINGER_MS of being joinable are over: 1 to keep it joinable that long again (the store
     * has not committed its object yet). NULL: never. */
    int (*keep_lingering)(px_fill_t *fill);
    /* The fill is freed: release fill->user. */
    void (*dispose)(px_fill_t *fill);
    /* Optional, before on_head: 1 when it takes the head to a response hook (it calls px_fill_hooked() later; the body
     * and the end are held until then), 0 to go on at once. */
    int (*hook_head)(px_fill_t *fill, const px_fetch_head_t *head);
} px_fill_ops_t;

struct px_fill {
    uint8_t key[32];
    px_fill_t *next; /* in the table's bucket */
    int closed;      /* out of the table (under its lock) */
    atomic_int refs;
    px_thread_t *owner;
    size_t nthreads;
    struct px_fill_msg *msgs; /* one per thread */
    uint8_t *subscribed;      /* one per thread, under the table lock */
    atomic_int state;         /* px_fill_state_t, stored with release semantics */
    /* the head: written by the owner before state leaves PX_FILL_PENDING, read-only after */
    int has_head;
    int released; /* the answer is for the first subscriber only */
    int status;
    size_t nheaders;
    px_fill_hdr_t *headers;
    size_t content_length; /* SIZE_MAX: unknown */
    char *head_storage;    /* malloc'ed; everything the head points to */
    /* the body: chunks never move; body_len is stored with release semantics */
    struct px_fill_chunk *first, *last;
    size_t last_start; /* the body offset of last's first byte (the owner's) */
    atomic_size_t body_len;
    /* the owner's */
    px_fetch_t fetch;
    h2o_iovec_t reqbuf; /* malloc'ed */
    const px_fill_ops_t *ops;
    void *user;         /* the cache's state for this fill */
    int hook_pending;   /* ops->hook_head took the head: body and end are held */
    h2o_buffer_t *held; /* the body that came meanwhile */
    int held_end, held_timeout;
    const char *held_err;
    int origin_dropped;               /* the hook's answer replaced the origin's (or the hook failed): what else comes is dropped */
    int linger;                       /* set by ops->on_end: a complete fill stays joinable while the store has not its object */
    int lingered;                     /* PX_FILL_LINGER_MS periods it stayed joinable */
    h2o_timeout_entry_t linger_timer; /* in the owner's fill_linger_timeout */
};

/* A request streaming a fill; lives in the request's pool. */
typedef struct px_sub_ops {
    /* The fill's head is there: set req->res (status, headers, content_length); 0 to stream the fill, -1 to leave it. */
    int (*on_head)(px_sub_t *sub, px_fill_t *fill);
    /* The fill is no use to this request (released, failed before its head, or on_head said no): answer it another way.
     * The fill stays valid during the call. */
    void (*on_release)(px_sub_t *sub, px_fill_t *fill, int state);
} px_sub_ops_t;

struct px_sub {
    h2o_generator_t super;
    h2o_req_t *req;
    px_fill_t *fill; /* holds a reference; NULL once detached */
    const px_sub_ops_t *ops;
    void *data;
    h2o_linklist_t link; /* in the fill's list of this thread's subscribers */
    struct px_fill_chunk *chunk;
    size_t chunk_start; /* the body offset of chunk's first byte */
    size_t sent;        /* body offset reached (on_head may start it further, for a range) */
    size_t end;         /* body offset to stop at (SIZE_MAX: the end) */
    unsigned started : 1, in_flight : 1, no_body : 1, first : 1;
};

/*
 * The fill running for `key`, or a new one in the table (*created = 1: the caller fills in ops and user and calls
 * px_fill_start). Either way the caller holds a reference, which px_sub_attach takes over or px_fill_unref drops.
 */
px_fill_t *px_fill_join(px_thread_t *th, const uint8_t key[32], int *created);
/* Starts the fill's fetch on th (the thread that created it). reqbuf becomes the fill's (malloc'ed). */
void px_fill_start(px_fill_t *fill, px_thread_t *th, size_t route_id, h2o_iovec_t reqbuf, int idempotent);
/* The response hook is over: head is the head to publish (NULL: the hook failed, the fill fails), body (when not NULL)
 * replaces the origin's. Then the held body and end go on, or the fetch resumes. */
void px_fill_hooked(px_fill_t *fill, const px_fetch_head_t *head, const char *body, size_t body_len);
/* Answers the fill at once, as its fetch would (a function origin): head and the whole body, or err without a head. */
void px_fill_feed(px_fill_t *fill, const px_fetch_head_t *head, const char *body, size_t len, const char *err);
/* Takes the fill out of the table: later joins make a new one. */
void px_fill_leave_table(px_fill_t *fill);
void px_fill_unref(px_fill_t *fill);
/* Takes the running or lingering fill of `key` out of the table, if any (an invalidation). */
void px_fill_forget(const uint8_t key[32]);
/* Takes every complete fill out of the table (a purge: requests must go to the store again). Any thread. */
void px_fill_forget_complete(void);
/* Keeps a reference on the fill until the request is over. */
void px_fill_hold(h2o_req_t *req, px_fill_t *fill);
/* Publishing, on the owner thread. */
void px_fill_append(px_fill_t *fill, const char *bytes, size_t len);
/* Publishes a new state (the head is there, the end) and wakes the subscribers. */
void px_fill_set_state(px_fill_t *fill, int state);
/* Copies body bytes [off, off + len) of a fill (len must be available). */
void px_fill_copy_body(px_fill_t *fill, size_t off, char *dst, size_t len);
/* Makes the request a subscriber of the fill (taking the caller's reference); it may answer at once. first: the
 * request that made the fill, which streams its answer even when it is not for sharing. */
px_sub_t *px_sub_attach(h2o_req_t *req, px_fill_t *fill, int first, const px_sub_ops_t *ops, void *data);
/* A thread's side of the fills: the receiver of its fill messages, the timeout of its lingering fills. */
void px_fill_init_thread(px_thread_t *th);

/* ---- cached.c and cfill.c: the cache on a route (cache/ does the policy and the storage) ---- */

#define PX_COBJ_MAGIC 0x31435045u /* "EPC1" */
#define PX_COBJ_OBJECT 1u
#define PX_COBJ_VARY 2u
#define PX_KEY_MAX 8192
#define PX_VARY_MAX 4096

/* A decoded object: pointers into the blob. */
typedef struct px_cobj {
    cache_meta_t meta;
    h2o_iovec_t reason;
    size_t nheaders;
    px_fill_hdr_t *headers; /* in the pool */
    h2o_iovec_t vary;       /* vary record */
    uint32_t kind;
} px_cobj_t;

/* A fill's cache state (malloc'ed with the fill). */
typedef struct px_cfill {
    px_server_t *srv;
    const conf_route_t *route;
    uint8_t pid[CACHE_ID_SIZE]; /* the primary id */
    char *key, *url, *host;     /* key and host in the cfill's own block (after it), url malloc'ed */
    size_t key_len;
    cache_hdr_t *req_hdrs; /* the first request's fields, for storability and Vary */
    size_t nreq_hdrs;
    char *req_storage;
    int64_t request_time;
    /* decided at the head */
    int storable;
    atomic_int too_big; /* set by the owner during the body, read by subscribers on any thread */
    cache_store_plan_t plan;
    char *vary_names, *vary_key; /* when the answer has Vary: the names and the first request's variant key */
    size_t vary_names_len, vary_key_len;
    char detail[48];
    char *reason;      /* the origin's reason phrase (malloc'ed) */
    char *tag_storage; /* surrogate keys, NUL-terminated, back to back (malloc'ed) */
    const char *tags[64];
    size_t ntags;
    int fwd; /* cache_fwd_t for the Cache-Status of those streaming the fill */
    int origin_status;
    size_t body_len;
    /* revalidation: the stale object, to answer from on a 304 or an error (stale-if-error) */
    int has_stale;
    uint8_t stale_id[CACHE_ID_SIZE];
    px_cobj_t stale;
    char *stale_blob; /* malloc'ed copy of the stored record: meta blob + body */
    const char *stale_body;
    size_t stale_body_len;
    int serve_stale; /* the answer is the stale object (304 refreshed it, or stale-if-error) */
    int ignore_body; /* the origin's body is not the answer (stale-if-error on a 5xx) */
    int err_timeout;
    const char *err;
    uint64_t store_mark; /* cache_store_mark() after the put: the fill lingers until the store has applied it */
    /* the route's response hook (cfill.c): the first request as it saw it, and what the hook decided */
    char *request_id; /* in the cfill's own block */
    char client_ip[64];
    size_t route_id;
    int https;
    struct px_lrun *hook_lr;            /* the hook's run while it runs; its pool holds the head and the request view */
    int64_t hook_ttl_s, hook_max_ttl_s; /* res.ttl, res.max_ttl; -1: none */
    int hook_uncacheable;               /* res.cacheable = false */
} px_cfill_t;

/* Answers a request on a caching route: from the store, from a fill, or forwarded (with Cache-Status). */
void px_cache_handle(h2o_req_t *req, px_req_t *st, px_origin_t *origin);
/* An unsafe request succeeded (its head is there): invalidates its URL and the Location / Content-Location ones. */
void px_cache_invalidate(h2o_req_t *req, const px_fetch_head_t *head);
/* The URL as the store indexes it (purges): the lower-cased authority, then the path with its query (malloc'ed). */
char *px_cache_url(h2o_iovec_t authority, h2o_iovec_t path);
/* Seconds and milliseconds since the epoch (HTTP's times and the store's). */
int64_t px_now_s(void);
int64_t px_now_ms(void);
/* The first header named `name` (lower-case) of a stored or fill header list, or NULL. */
const px_fill_hdr_t *px_find_hdr(const px_fill_hdr_t *h, size_t n, const char *name, size_t len);
/* Response fields never stored nor sent on: hop-by-hop, targeted at the cache, surrogate keys. */
int px_drop_response_field(h2o_iovec_t name);
/* Decodes a stored meta blob (headers array from alloc). Returns -1 when it is not one of ours or is damaged. */
int px_cobj_decode(const void *blob, size_t len, void *(*alloc)(size_t, void *), void *alloc_data, px_cobj_t *out);
/*
 * Sets up a new fill's cache state (cfill.c) and starts its fetch. pid is the primary id (for the vary record);
 * stale_item (with its id) is the stored object being revalidated, or NULL; fwd the Cache-Status fwd= of its answer.
 */
void px_cfill_start(px_fill_t *fill, h2o_req_t *req, px_req_t *st, px_origin_t *origin, const char *key, size_t klen,
                    const uint8_t *pid, const cache_store_item_t *stale_item, const uint8_t *stale_id, int fwd);

/* ---- admin.c: the admin API ---- */

/*
 * An admin request whose work is done on a writer thread (a purge, a key change). Shared by the request (through its
 * pool) and the message the writer sends back to the request's thread; both run on that thread, the last frees it.
 */
typedef struct px_admin_op {
    h2o_multithread_message_t super;
    px_thread_t *th;
    h2o_req_t *req;                                         /* NULL once the request is gone */
    void (*answer)(struct px_admin_op *op, h2o_req_t *req); /* on th's loop, when the work is done and req is there */
    int refs;
    int err;
    size_t count; /* purge: objects purged */
    int soft;
    gw_key_t *key;        /* keys: the key made or changed */
    int is_lua;           /* an edge.purge: lrun is told (no request) */
    struct px_lrun *lrun; /* NULL once the run is gone */
    char secret[GW_KEY_SECRET_LEN + 1];
    int kind;
} px_admin_op_t;

px_admin_op_t *px_admin_op_new(h2o_req_t *req, void (*answer)(px_admin_op_t *op, h2o_req_t *req));
/* From the writer thread: wakes the request's thread, which calls op->answer. */
void px_admin_op_done(px_admin_op_t *op);
/* The work could not be queued: no message will come. */
void px_admin_op_abandon(px_admin_op_t *op);
void px_admin_send_json(h2o_req_t *req, int status, const char *reason, h2o_iovec_t body);
/* admin_keys.c: /keys and below. path is the request's path without the query. */
int px_admin_keys(px_server_t *srv, h2o_req_t *req, h2o_iovec_t path);

/* "https://Example.com/a?b" or "Example.com/a?b" -> "example.com/a?b" (in place; returns a pointer into url). */
char *px_store_url_of(char *url);

/* Registers the admin handler (token check, /cache/purge, /cache/stats, /keys) on the admin listener's pathconf. */
void px_admin_register(px_server_t *srv, h2o_pathconf_t *pathconf);
/* The receiver callback of a thread's admin messages (purges done). */
void px_admin_on_messages(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);

/* ---- dynamo.c: the item store's DynamoDB JSON protocol on a route ---- */

/* Answers a request on an `origin: { store: dynamodb }` route. */
void px_dynamo_handle(h2o_req_t *req, px_req_t *st, px_origin_t *origin);
/* sigv4.c: verifies the request's AWS SigV4 signature against keys: NULL when it is good, else DynamoDB's message (and
 * *type its __type, e.g. com.amazon.coral.service#InvalidSignatureException). Strings are static or in the pool. */
const char *px_sigv4_verify(h2o_req_t *req, const conf_access_key_t *keys, size_t nkeys, const char **type);
/* The same at the time `now` (the unit tests' clock). */
const char *px_sigv4_verify_at(h2o_req_t *req, const conf_access_key_t *keys, size_t nkeys, time_t now, const char **type);
/* A store answer on the request's thread: body (NUL-terminated) lives as long as the request (its pool frees it). */
typedef void (*px_store_cb)(h2o_req_t *req, void *data, int status, const char *body, size_t len);
/* store_call for a request, answered on its thread: cb runs at once for a read, after the commit for a write (by a
 * message to the thread); never once the request is gone. */
void px_store_call(h2o_req_t *req, const char *op, const char *body, size_t len, px_store_cb cb, void *data);
/* The same bridge for any owner on a worker thread (lua.c: a Lua run, which may outlive its request). */
typedef struct px_store_pending px_store_pending_t;
typedef struct px_store_answer {
    int status;
    char *body; /* malloc'ed: the receiver's */
    size_t len;
} px_store_answer_t;
/* Runs op on the server's store (no store: a 400 ResourceNotFoundException). When the answer is there at once (a read,
 * a refused request), returns NULL with it in *now, and cb is never called. Otherwise returns the call in flight:
 * cb(data, status, body, len) runs on th's loop once the write is committed (body malloc'ed, cb's), unless
 * px_store_abandon(call) was called before; either way the message frees the call. */
px_store_pending_t *px_store_send(px_thread_t *th, const char *op, const char *body, size_t len, store_done_cb cb, void *data,
                                  px_store_answer_t *now);
/* The owner is gone: cb will not be called (the write still completes). */
void px_store_abandon(px_store_pending_t *p);
/* The receiver callback of a thread's store messages (writes committed). */
void px_dynamo_on_messages(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);

/* ---- rest.c: the item store's tables as plain JSON resources on a route ---- */

/* Answers a request on an `origin: { store: rest }` route. */
void px_rest_handle(h2o_req_t *req, px_req_t *st, px_origin_t *origin);

/* rest_json.c: JSON for rest.c. Texts are built in a request's pool (px_rb_t: they move to a larger chunk when they
 * grow; px_rb_done gives the text, which lives as long as the pool). The scanner reads JSON text exactly (numbers keep
 * their text); iovecs it returns point into the text scanned. */
#define PX_REST_MAX_DEPTH 40   /* JSON nesting accepted in bodies: above DynamoDB's 32, so the store says what is wrong */
#define PX_REST_SKIP_DEPTH 256 /* JSON nesting walked in the store's answers (its form doubles the items' levels) */
#define PX_TOK_IS(t, lit) ((t).len == sizeof(lit) - 1 && memcmp((t).base, lit, sizeof(lit) - 1) == 0)
typedef struct px_rb {
    h2o_mem_pool_t *pool;
    char *p;
    size_t len, cap;
} px_rb_t;
px_rb_t px_rb_new(h2o_req_t *req, size_t cap);
char *px_rb_room(px_rb_t *b, size_t n); /* room for n more bytes at the end */
void px_rb_add(px_rb_t *b, const char *s, size_t n);
#define PX_RB_LIT(b, s) px_rb_add((b), (s), sizeof(s) - 1)
void px_rb_iov(px_rb_t *b, h2o_iovec_t v);
void px_rb_str(px_rb_t *b, const char *s, size_t n); /* s as a JSON string */
h2o_iovec_t px_rb_done(px_rb_t *b);
const char *px_js_num(const char *p, const char *end); /* a JSON number at p: past it, or NULL */
int px_js_is_whole(h2o_iovec_t v, char first);         /* v is one JSON value starting with `first` ('{': an object) */
typedef struct px_js_it {
    const char *p, *end;
} px_js_it_t;
/* Walks an object's members (name set) or an array's elements (name NULL), from its '{' or '['; px_js_next: 1, or 0 at
 * the end (or on what is not JSON). */
px_js_it_t px_js_iter(h2o_iovec_t v);
int px_js_next(px_js_it_t *it, h2o_iovec_t *name, h2o_iovec_t *val);
h2o_iovec_t px_js_get(h2o_iovec_t obj, const char *name);         /* member `name` (ASCII) of an object; len 0: absent */
h2o_iovec_t px_js_unquote(h2o_mem_pool_t *pool, h2o_iovec_t tok); /* a JSON string token's text, decoded */
void px_to_ddb(px_rb_t *b, h2o_iovec_t v);                        /* a plain JSON value as an attribute value (numbers exact) */
void px_to_plain_map(px_rb_t *b, h2o_iovec_t obj);                /* an item (a map of attribute values) as plain JSON */

/* ---- lua.c: Lua runs driven on a thread's loop (edge.fetch, edge.purge, edge.store) ---- */

typedef void (*px_lrun_cb)(void *data, hooks_status_t st);

struct px_lrun {
    px_thread_t *th;
    h2o_mem_pool_t pool; /* the run's memory: its outcome and what it reads, when copied here */
    hooks_outcome_t out;
    hooks_run_t *run; /* while it waits */
    px_lrun_cb cb;    /* when it is over (HOOKS_DONE or HOOKS_FAILED): the owner reads its outcome, then frees the driver */
    void *data;       /* the owner's */
    /* the fetch in flight */
    h2o_http1client_t *client;
    h2o_http1client_ctx_t client_ctx;
    h2o_timeout_entry_t deadline;
    h2o_iovec_t reqbuf;
    int is_head;
    int status;
    hooks_kv_t *res_headers;
    size_t nres_headers;
    h2o_buffer_t *body;        /* the fetch's answer body so far; NULL when no fetch runs */
    px_admin_op_t *purge;      /* the purge in flight */
    px_store_pending_t *store; /* the store write in flight (edge.store) */
};

/* A run started with the request's pool as its allocator and an outcome of the caller's (in the pool): over at once
 * (cb is called now; no driver is made), or waiting: a driver takes it, freed with the request. */
void px_lrun_for_request(h2o_req_t *req, hooks_status_t st, hooks_run_t *run, px_lrun_cb cb, void *data);
/* A new run driver (malloc'ed, with its pool). */
px_lrun_t *px_lrun_new(px_thread_t *th);
/* The allocator to give hooks_start_* with an h2o pool (&lr->pool, &req->pool). */
hooks_alloc_cb px_lrun_allocator(void);
/* Takes over a started run: does what it waits for, resumes it, until it is over; then calls cb (maybe at once). */
void px_lrun_go(px_lrun_t *lr, hooks_status_t st, hooks_run_t *run, px_lrun_cb cb, void *data);
/* Frees the driver; a run still waiting is cancelled, with its fetch or purge (a store write in flight is committed all
 * the same; its answer goes nowhere). NULL is allowed. */
void px_lrun_free(px_lrun_t *lr);
/* admin.c: an edge.purge committed. */
void px_lrun_purged(px_admin_op_t *op);
int px_lua_init(px_server_t *srv, char *err, size_t errlen);
void px_lua_dispose(px_server_t *srv);
void px_lua_init_thread(px_thread_t *th);
void px_lua_dispose_thread(px_thread_t *th);

/* ---- tls.c ---- */

/* The server-side context of a TLS listener: TLS 1.2/1.3, ALPN h2 + http/1.1, SNI over the listener's certificates. */
int px_tls_listener_ctx(const conf_t *conf, const conf_listener_t *l, SSL_CTX **out, char *err, size_t errlen);
/* The client-side context used to reach an https origin, verifying its chain and host name. */
int px_tls_origin_ctx(const conf_origin_t *o, SSL_CTX **out, char *err, size_t errlen);

/* ---- accesslog.c ---- */

h2o_logger_t *px_accesslog_register(px_server_t *srv, h2o_pathconf_t *pathconf);

#endif
