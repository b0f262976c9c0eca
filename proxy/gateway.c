/*
 * gateway: the API-gateway stage of a request, between the route and the origin (DESIGN.md "One request"):
 *
 *   CORS (preflight answered here) → API key (403) → JWT (401) → route throttle → client-address throttle →
 *   the key's plan: rate, then quota (429)
 *
 * The math (token buckets, quota periods), JWT verification and the key registry are gateway/'s; this file reads
 * the request, keeps what it learnt in the request's px_gate_t (pool memory) and answers refusals:
 *   403 {"message": "Forbidden"}                         no key, an unknown key, a disabled key
 *   401 + WWW-Authenticate: Bearer ..., error="..."      no token, or a token that fails (RFC 6750 3)
 *   429 + Retry-After                                    a rate (Too Many Requests) or the quota (Limit Exceeded)
 * Every response of a limited route carries RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers):
 *   RateLimit-Policy: "key";q=100;w=1, "quota";q=10000;w=86400
 *   RateLimit: "key";r=49;t=1, "quota";r=9999;t=41000
 * A rate's policy is its configured rate (q requests per w seconds); r is the whole tokens left in its bucket and t
 * the seconds until the bucket is full again (or, refused, until the next token). A quota's w is its period's length,
 * r what is left and t the seconds to the period's end.
 *
 * Client-address buckets live in a sharded table per route (16 shards, a mutex each), at most 4096 addresses per
 * shard: a full shard first drops the addresses whose bucket is full again (idle), then its oldest entry.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "proxy/internal.h"

#define IP_SHARDS 16
#define IP_CHAINS 256
#define IP_SHARD_CAP 4096

typedef struct ip_entry {
    uint8_t addr[16];
    gw_bucket_t bucket;
    struct ip_entry *next;
} ip_entry_t;

typedef struct ip_shard {
    pthread_mutex_t mu;
    ip_entry_t *chains[IP_CHAINS];
    size_t n;
} ip_shard_t;

struct px_ip_table {
    ip_shard_t shards[IP_SHARDS];
};

/* ---- RateLimit fields ---- */

static char *put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* Decimal digits, two at a time (on every response of a limited route). */
static char *put_u64(char *p, uint64_t v)
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                "8081828384858687888990919293949596979899";
    char tmp[20], *t = tmp + sizeof(tmp);
    while (v >= 100) {
        t -= 2;
        memcpy(t, pairs + 2 * (v % 100), 2);
        v /= 100;
    }
    if (v >= 10) {
        t -= 2;
        memcpy(t, pairs + 2 * v, 2);
    } else {
        *--t = (char)('0' + v);
    }
    memcpy(p, t, (size_t)(tmp + sizeof(tmp) - t));
    return p + (tmp + sizeof(tmp) - t);
}

/* A RateLimit-Policy item, "name";q=Q;w=W, into buf (64 bytes are enough); returns its length. */
static size_t format_item(char *buf, const char *name, uint64_t q, uint64_t w)
{
    char *p = put_u64(put_str(put_u64(put_str(put_str(put_str(buf, "\""), name), "\";q="), q), ";w="), w != 0 ? w : 1);
    return (size_t)(p - buf);
}

static h2o_iovec_t make_item(const char *name, uint64_t q, uint64_t w)
{
    char buf[64];
    size_t n = format_item(buf, name, q, w);
    h2o_iovec_t v = h2o_iovec_init(h2o_mem_alloc(n), n);
    memcpy(v.base, buf, n);
    return v;
}

static h2o_iovec_t rate_item(const char *name, const gw_rate_t *r)
{
    return make_item(name, r->count, (r->per_ms + 999) / 1000);
}

/* ---- boot ---- */

static int test_clock(char *err, size_t errlen)
{
    const char *v = getenv("EDGEPROXY_TEST_CLOCK");
    struct tm tm = {0};
    const char *end;

    if (v == NULL || v[0] == '\0')
        return 0;
    /* tests only: the gateway's clock starts at this UTC time (quota periods cross midnight on demand) */
    if ((end = strptime(v, "%Y-%m-%dT%H:%M:%SZ", &tm)) == NULL || *end != '\0') {
        snprintf(err, errlen, "EDGEPROXY_TEST_CLOCK: expected YYYY-MM-DDTHH:MM:SSZ, not \"%s\"", v);
        return -1;
    }
    gw_set_clock_offset(0);
    gw_set_clock_offset((int64_t)timegm(&tm) * 1000000000 - (int64_t)gw_now_ns());
    fprintf(stderr, "edgeproxy: the gateway's clock starts at %s (EDGEPROXY_TEST_CLOCK)\n", v);
    return 0;
}

/* Loads a route's JWKS file; the message names the conf file, the route's line and the key. */
static int load_jwks(const conf_t *conf, const conf_route_t *r, gw_jwks_t **out, char *err, size_t errlen)
{
    char why[512];
    if (gw_jwks_load(r->jwt.jwks, out, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "%s:%u: route %s: auth.jwt.jwks: %s", conf->file, r->line, r->path, why);
        return -1;
    }
    return 0;
}

int px_gateway_check(const conf_t *conf, char *err, size_t errlen)
{
    for (size_t h = 0; h != conf->nhosts; ++h) {
        for (size_t i = 0; i != conf->hosts[h].nroutes; ++i) {
            const conf_route_t *r = conf->hosts[h].routes + i;
            gw_jwks_t *jwks;
            if (!r->jwt.enabled)
                continue;
            if (load_jwks(conf, r, &jwks, err, errlen) != 0)
                return -1;
            gw_jwks_free(jwks);
        }
    }
    return 0;
}

static int needs_registry(const conf_t *conf, px_server_t *srv)
{
    if (conf->nkeys != 0 || conf->nplans != 0 || conf->admin.enabled)
        return 1;
    for (size_t i = 0; i != srv->nroutes; ++i)
        if (px_router_route(srv->router, i)->api_key)
            return 1;
    return 0;
}

int px_gateway_init(px_server_t *srv, char *err, size_t errlen)
{
    const conf_t *conf = srv->conf;
    size_t n = 0;

    if (test_clock(err, errlen) != 0)
        return -1;
    srv->gates = calloc(srv->nroutes + 1, sizeof(*srv->gates));
    srv->plan_rate_at = calloc(conf->nplans + 1, sizeof(*srv->plan_rate_at));
    for (size_t p = 0; p != conf->nplans; ++p)
        n += 1 + conf->plans[p].noverrides;
    srv->plan_rates = calloc(n + 1, sizeof(*srv->plan_rates));
    srv->plan_rate_items = calloc(n + 1, sizeof(*srv->plan_rate_items));
    srv->quota_items = calloc(conf->nplans + 1, sizeof(*srv->quota_items));
    if (srv->gates == NULL || srv->plan_rate_at == NULL || srv->plan_rates == NULL || srv->plan_rate_items == NULL ||
        srv->quota_items == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    n = 0;
    for (size_t p = 0; p != conf->nplans; ++p) {
        const conf_quota_t *q = &conf->plans[p].quota;
        srv->plan_rate_at[p] = n;
        gw_rate_init(srv->plan_rates + n, &conf->plans[p].rate);
        srv->plan_rate_items[n] = rate_item("key", srv->plan_rates + n);
        ++n;
        for (size_t o = 0; o != conf->plans[p].noverrides; ++o, ++n) {
            gw_rate_init(srv->plan_rates + n, &conf->plans[p].overrides[o].rate);
            srv->plan_rate_items[n] = rate_item("key", srv->plan_rates + n);
        }
        if (q->limit != 0 && q->period != CONF_PERIOD_MONTH)
            srv->quota_items[p] = make_item("quota", q->limit, q->period == CONF_PERIOD_DAY ? 86400 : 7 * 86400);
    }
    srv->nplan_rates = n;
    for (size_t i = 0; i != srv->nroutes; ++i) {
        const conf_route_t *r = px_router_route(srv->router, i);
        px_route_gate_t *g = srv->gates + i;
        pthread_rwlock_init(&g->jwks_lock, NULL);
        if (r->throttle.enabled) {
            gw_rate_init(&g->throttle_rate, &r->throttle);
            g->throttle_item = rate_item("route", &g->throttle_rate);
        }
        if (r->ip_throttle.enabled) {
            gw_rate_init(&g->ip_rate, &r->ip_throttle);
            g->ip_item = rate_item("ip", &g->ip_rate);
            if ((g->ips = calloc(1, sizeof(*g->ips))) == NULL) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            for (size_t s = 0; s != IP_SHARDS; ++s)
                pthread_mutex_init(&g->ips->shards[s].mu, NULL);
        }
        if (r->jwt.enabled) {
            if (load_jwks(conf, r, &g->jwks, err, errlen) != 0)
                return -1;
            g->jwt_rules = (gw_jwt_rules_t){.algorithms = r->jwt.algorithms,
                                            .issuer = r->jwt.issuer,
                                            .audiences = r->jwt.audiences,
                                            .naudiences = r->jwt.naudiences,
                                            .leeway_s = (int64_t)r->jwt.leeway_s};
        }
    }
    if (needs_registry(conf, srv)) {
        char path[4096], why[512];
        snprintf(path, sizeof(path), "%s/data", conf->data_dir);
        if (gw_open(&srv->gw, conf, path, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "%s", why);
            return -1;
        }
    }
    return 0;
}

void px_gateway_dispose(px_server_t *srv)
{
    if (srv->gates != NULL) {
        for (size_t i = 0; i != srv->nroutes; ++i) {
            px_route_gate_t *g = srv->gates + i;
            gw_jwks_free(g->jwks);
            pthread_rwlock_destroy(&g->jwks_lock);
            free(g->throttle_item.base);
            free(g->ip_item.base);
            if (g->ips != NULL) {
                for (size_t s = 0; s != IP_SHARDS; ++s) {
                    for (size_t c = 0; c != IP_CHAINS; ++c) {
                        ip_entry_t *e = g->ips->shards[s].chains[c], *next;
                        for (; e != NULL; e = next) {
                            next = e->next;
                            free(e);
                        }
                    }
                    pthread_mutex_destroy(&g->ips->shards[s].mu);
                }
                free(g->ips);
            }
        }
        free(srv->gates);
        srv->gates = NULL;
    }
    for (size_t i = 0; srv->plan_rate_items != NULL && i != srv->nplan_rates; ++i)
        free(srv->plan_rate_items[i].base);
    for (size_t p = 0; srv->quota_items != NULL && p != srv->conf->nplans; ++p)
        free(srv->quota_items[p].base);
    free(srv->plan_rate_items);
    free(srv->quota_items);
    srv->plan_rate_items = srv->quota_items = NULL;
    free(srv->plan_rates);
    free(srv->plan_rate_at);
    srv->plan_rates = NULL;
    srv->plan_rate_at = NULL;
    gw_close(srv->gw); /* writes the last quota counts */
    srv->gw = NULL;
}

void px_gateway_reload(px_server_t *srv)
{
    for (size_t i = 0; i != srv->nroutes; ++i) {
        const conf_route_t *r = px_router_route(srv->router, i);
        px_route_gate_t *g = srv->gates + i;
        gw_jwks_t *fresh, *old;
        char why[512];
        if (!r->jwt.enabled)
            continue;
        if (gw_jwks_load(r->jwt.jwks, &fresh, why, sizeof(why)) != 0) {
            fprintf(stderr, "edgeproxy: SIGHUP: route %s: %s; the route keeps its previous keys\n", r->path, why);
            continue;
        }
        pthread_rwlock_wrlock(&g->jwks_lock);
        old = g->jwks;
        g->jwks = fresh;
        pthread_rwlock_unlock(&g->jwks_lock);
        gw_jwks_free(old);
        fprintf(stderr, "edgeproxy: SIGHUP: route %s: %zu JWKS keys loaded from %s\n", r->path, gw_jwks_count(fresh), r->jwt.jwks);
    }
}

/* ---- per request ---- */

static px_gate_t *gate_of(h2o_req_t *req, px_req_t *st)
{
    if (st->gate == NULL) {
        st->gate = h2o_mem_alloc_pool(&req->pool, sizeof(*st->gate));
        memset(st->gate, 0, sizeof(*st->gate));
    }
    return st->gate;
}

static h2o_iovec_t header_value(h2o_req_t *req, const char *name, size_t len)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, len, -1);
    return i == -1 ? h2o_iovec_init(NULL, 0) : req->headers.entries[i].value;
}

static void add_header(h2o_req_t *req, const char *name, const char *value, size_t vlen)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 0, NULL, value, vlen);
}

static void add_header_str(h2o_req_t *req, const char *name, const char *value)
{
    add_header(req, name, value, strlen(value));
}

static const char *list_value(h2o_mem_pool_t *pool, char *const *items, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i != n; ++i)
        len += strlen(items[i]) + 2;
    char *buf = h2o_mem_alloc_pool(pool, len), *o = buf;
    for (size_t i = 0; i != n; ++i)
        o += sprintf(o, "%s%s", i != 0 ? ", " : "", items[i]);
    *o = '\0';
    return buf;
}

static int origin_allowed(const conf_cors_t *c, h2o_iovec_t origin)
{
    if (c->any_origin)
        return 1;
    for (size_t i = 0; i != c->norigins; ++i)
        if (h2o_lcstris(origin.base, origin.len, c->origins[i], strlen(c->origins[i])))
            return 1;
    return 0;
}

/* Is every name of the comma-separated list allowed? */
static int headers_allowed(const conf_cors_t *c, h2o_iovec_t list)
{
    const char *p = list.base, *end = list.base + list.len;

    if (c->any_header)
        return 1;
    while (p < end) {
        const char *comma = memchr(p, ',', end - p), *e = comma != NULL ? comma : end, *s = p;
        while (s < e && (*s == ' ' || *s == '\t'))
            ++s;
        const char *t = e;
        while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
            --t;
        if (t > s) {
            int ok = 0;
            for (size_t i = 0; i != c->nheaders && !ok; ++i)
                ok = h2o_lcstris(s, (size_t)(t - s), c->headers[i], strlen(c->headers[i]));
            if (!ok)
                return 0;
        }
        p = e + 1;
    }
    return 1;
}

int px_gateway_preflight(h2o_req_t *req, px_req_t *st)
{
    static h2o_generator_t generator = {NULL, NULL};
    const conf_cors_t *c = &st->match->route->cors;
    h2o_iovec_t origin, want_method, want_headers;
    char buf[32];

    if (!c->enabled || (origin = header_value(req, H2O_STRLIT("origin"))).base == NULL)
        return 0;
    want_method = header_value(req, H2O_STRLIT("access-control-request-method"));
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("OPTIONS")) || want_method.base == NULL) {
        /* an actual request: CORS headers on its response when the origin may read it */
        if (origin_allowed(c, origin))
            gate_of(req, st)->cors_origin = origin;
        return 0;
    }
    want_headers = header_value(req, H2O_STRLIT("access-control-request-headers"));
    if (!origin_allowed(c, origin) || (c->methods & conf_method_bit(want_method.base, want_method.len)) == 0 ||
        (want_headers.base != NULL && !headers_allowed(c, want_headers))) {
        px_send_error(req, 403, "Forbidden", "CORS preflight refused: the origin, method or headers are not allowed");
        return 1;
    }
    gate_of(req, st)->cors_origin = origin;
    add_header_str(req, "access-control-allow-methods", px_methods_list(&req->pool, c->methods));
    if (want_headers.base != NULL && want_headers.len != 0) {
        if (c->any_header)
            add_header(req, "access-control-allow-headers", want_headers.base, want_headers.len);
        else
            add_header_str(req, "access-control-allow-headers", list_value(&req->pool, c->headers, c->nheaders));
    }
    if (c->max_age_s >= 0) {
        int n = snprintf(buf, sizeof(buf), "%lld", (long long)c->max_age_s);
        add_header(req, "access-control-max-age", h2o_strdup(&req->pool, buf, (size_t)n).base, (size_t)n);
    }
    add_header(req, "vary", H2O_STRLIT("Access-Control-Request-Method, Access-Control-Request-Headers"));
    st->from_origin = 1;
    req->res.status = 204;
    req->res.reason = "No Content";
    req->res.content_length = 0;
    h2o_start_response(req, &generator);
    h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    return 1;
}

static void report(px_gate_t *g, const char *policy, h2o_iovec_t item, uint64_t r, uint64_t t)
{
    if (g->nlimits != PX_MAX_LIMITS)
        g->limits[g->nlimits++] = (px_limit_report_t){policy, item, r, t};
}

static uint64_t ceil_s(uint64_t ns)
{
    return (ns + 999999999) / 1000000000;
}

static void report_rate(px_gate_t *g, const char *policy, h2o_iovec_t item, const gw_take_t *t)
{
    report(g, policy, item, t->remaining, ceil_s(t->allowed ? t->reset_ns : t->retry_after_ns));
}

static int too_many(h2o_req_t *req, uint64_t retry_after_s, const char *message)
{
    char buf[24];
    int n = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)(retry_after_s != 0 ? retry_after_s : 1));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, h2o_strdup(&req->pool, buf, (size_t)n).base,
                   (size_t)n);
    px_send_error(req, 429, "Too Many Requests", message);
    return 1;
}

static void client_addr(h2o_req_t *req, uint8_t out[16])
{
    struct sockaddr_storage ss;
    socklen_t len = req->conn->callbacks->get_peername(req->conn, (void *)&ss);

    memset(out, 0, 16);
    if (len != 0 && ss.ss_family == AF_INET) {
        out[10] = out[11] = 0xff; /* ::ffff:a.b.c.d */
        memcpy(out + 12, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    } else if (len != 0 && ss.ss_family == AF_INET6) {
        memcpy(out, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
    }
}

static void ip_take(struct px_ip_table *t, const gw_rate_t *rate, const uint8_t addr[16], uint64_t now, gw_take_t *out)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i != 16; ++i)
        h = (h ^ addr[i]) * 1099511628211ull;
    ip_shard_t *s = t->shards + h % IP_SHARDS;
    ip_entry_t **chain = s->chains + (h / IP_SHARDS) % IP_CHAINS, *e;

    pthread_mutex_lock(&s->mu);
    for (e = *chain; e != NULL && memcmp(e->addr, addr, 16) != 0; e = e->next)
        ;
    if (e == NULL) {
        if (s->n >= IP_SHARD_CAP) {
            /* drop the addresses whose bucket is full again: they are the same as new ones */
            for (size_t c = 0; c != IP_CHAINS; ++c) {
                for (ip_entry_t **pp = s->chains + c; *pp != NULL;) {
                    if (atomic_load(&(*pp)->bucket.tat) <= now) {
                        ip_entry_t *dead = *pp;
                        *pp = dead->next;
                        free(dead);
                        --s->n;
                    } else {
                        pp = &(*pp)->next;
                    }
                }
            }
            if (s->n >= IP_SHARD_CAP && *chain != NULL) { /* still full: forget one address of this chain */
                ip_entry_t *dead = *chain;
                *chain = dead->next;
                free(dead);
                --s->n;
            }
        }
        if ((e = calloc(1, sizeof(*e))) == NULL) {
            pthread_mutex_unlock(&s->mu);
            *out = (gw_take_t){.allowed = 1}; /* no memory: let it through rather than fail the request */
            return;
        }
        memcpy(e->addr, addr, 16);
        e->next = *chain;
        *chain = e;
        ++s->n;
    }
    gw_bucket_take(&e->bucket, rate, now, out);
    pthread_mutex_unlock(&s->mu);
}

/* The key from the configured header, else the query parameter (noted, so the access log hides it). */
static h2o_iovec_t presented_key(px_server_t *srv, h2o_req_t *req)
{
    const conf_t *conf = srv->conf;
    h2o_iovec_t v = header_value(req, conf->api_keys.header, strlen(conf->api_keys.header));
    char *q;

    if (v.base != NULL || conf->api_keys.query == NULL)
        return v;
    if ((q = px_query_param(req, conf->api_keys.query)) == NULL)
        return h2o_iovec_init(NULL, 0);
    return h2o_iovec_init(q, strlen(q));
}

static int check_jwt(px_server_t *srv, h2o_req_t *req, px_req_t *st, px_gate_t *g, uint64_t now_ns)
{
    px_route_gate_t *rg = srv->gates + st->match->route_id;
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    h2o_iovec_t v = i != -1 ? req->headers.entries[i].value : h2o_iovec_init(NULL, 0);
    char *claims = NULL;
    gw_jwt_error_t e;

    if (v.len < 8 || strncasecmp(v.base, "Bearer ", 7) != 0) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, H2O_STRLIT("Bearer realm=\"edgeproxy\""));
        px_send_error(req, 401, "Unauthorized", "Unauthorized: a bearer token is required");
        return 1;
    }
    pthread_rwlock_rdlock(&rg->jwks_lock);
    e = gw_jwt_verify(rg->jwks, &rg->jwt_rules, v.base + 7, v.len - 7, (int64_t)(now_ns / 1000000000), &claims);
    pthread_rwlock_unlock(&rg->jwks_lock);
    if (e != GW_JWT_OK) {
        const char *why = gw_jwt_strerror(e);
        char *hdr = h2o_mem_alloc_pool(&req->pool, strlen(why) + 96), *msg = h2o_mem_alloc_pool(&req->pool, strlen(why) + 32);
        int n = sprintf(hdr, "Bearer realm=\"edgeproxy\", error=\"invalid_token\", error_description=\"%s\"", why);
        sprintf(msg, "Unauthorized: %s", why);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, hdr, (size_t)n);
        px_send_error(req, 401, "Unauthorized", msg);
        return 1;
    }
    g->claims = h2o_strdup(&req->pool, claims, SIZE_MAX);
    free(claims);
    return 0;
}

/* The bucket and rate of a key's plan for this request: an override for the route and method, else the plan's. */
static int plan_bucket(px_server_t *srv, h2o_req_t *req, const conf_route_t *route, gw_key_t *key, gw_bucket_t **b,
                       size_t *rate_index)
{
    const conf_plan_t *plan = srv->conf->plans + key->plan;
    unsigned mbit = conf_method_bit(req->method.base, req->method.len);

    for (size_t i = 0; i != plan->noverrides; ++i) {
        const conf_plan_override_t *o = plan->overrides + i;
        if (strcmp(o->path, route->path) == 0 && (o->methods == 0 || (o->methods & mbit) != 0)) {
            *b = key->buckets + 1 + i;
            *rate_index = srv->plan_rate_at[key->plan] + 1 + i;
            return 1;
        }
    }
    if (!plan->rate.enabled)
        return 0;
    *b = key->buckets;
    *rate_index = srv->plan_rate_at[key->plan];
    return 1;
}

static int check_plan(px_server_t *srv, h2o_req_t *req, const conf_route_t *route, px_gate_t *g, uint64_t now_ns)
{
    gw_key_t *key = g->key;
    int64_t now_s = (int64_t)(now_ns / 1000000000);
    gw_quota_take_t qt;

    if (key->plan >= 0) {
        const conf_plan_t *plan = srv->conf->plans + key->plan;
        gw_bucket_t *b;
        size_t ri;
        gw_take_t t;
        if (plan_bucket(srv, req, route, key, &b, &ri)) {
            gw_bucket_take(b, srv->plan_rates + ri, now_ns, &t);
            report_rate(g, "key", srv->plan_rate_items[ri], &t);
            if (!t.allowed)
                return too_many(req, ceil_s(t.retry_after_ns), "Too Many Requests");
        }
        if (plan->quota.limit != 0) {
            h2o_iovec_t item = srv->quota_items[key->plan];
            gw_quota_take(&key->quota, plan->quota.limit, plan->quota.period, now_s, &qt);
            if (item.base == NULL) { /* a month: its length varies */
                int64_t start, end;
                gw_period_bounds(plan->quota.period, now_s, &start, &end);
                item.base = h2o_mem_alloc_pool(&req->pool, 64);
                item.len = format_item(item.base, "quota", plan->quota.limit, (uint64_t)(end - start));
            }
            report(g, "quota", item, qt.remaining, (uint64_t)qt.reset_s);
            if (!qt.allowed)
                return too_many(req, (uint64_t)qt.reset_s,
                                plan->quota.period == CONF_PERIOD_DAY ? "Limit Exceeded: the key's quota for today is used up"
                                : plan->quota.period == CONF_PERIOD_WEEK
                                    ? "Limit Exceeded: the key's quota for this week is used up"
                                    : "Limit Exceeded: the key's quota for this month is used up");
        }
    }
    gw_quota_take(&key->today, CONF_MAX_QUOTA, CONF_PERIOD_DAY, now_s, &qt);
    return 0;
}

int px_gateway_admit(px_server_t *srv, h2o_req_t *req, px_req_t *st)
{
    const conf_route_t *route = st->match->route;
    px_route_gate_t *rg;
    px_gate_t *g;
    uint64_t now;
    gw_take_t t;

    if (!route->api_key && !route->jwt.enabled && !route->throttle.enabled && !route->ip_throttle.enabled)
        return 0;
    rg = srv->gates + st->match->route_id;
    g = gate_of(req, st);
    now = gw_now_ns();
    if (route->api_key) {
        h2o_iovec_t secret = presented_key(srv, req);
        gw_key_t *key = secret.base != NULL && srv->gw != NULL
                            ? gw_key_find_memo(srv->gw, &px_thread_of(req)->key_memo, secret.base, secret.len)
                            : NULL;
        if (key == NULL || !atomic_load_explicit(&key->enabled, memory_order_relaxed)) {
            px_send_error(req, 403, "Forbidden", "Forbidden");
            return 1;
        }
        g->key = key;
    }
    if (route->jwt.enabled && check_jwt(srv, req, st, g, now) != 0)
        return 1;
    if (route->throttle.enabled) {
        gw_bucket_take(&rg->throttle, &rg->throttle_rate, now, &t);
        report_rate(g, "route", rg->throttle_item, &t);
        if (!t.allowed)
            return too_many(req, ceil_s(t.retry_after_ns), "Too Many Requests");
    }
    if (route->ip_throttle.enabled) {
        uint8_t addr[16];
        client_addr(req, addr);
        ip_take(rg->ips, &rg->ip_rate, addr, now, &t);
        report_rate(g, "ip", rg->ip_item, &t);
        if (!t.allowed)
            return too_many(req, ceil_s(t.retry_after_ns), "Too Many Requests");
    }
    if (g->key != NULL)
        return check_plan(srv, req, route, g, now);
    return 0;
}

void px_gateway_response_headers(h2o_req_t *req, px_req_t *st)
{
    px_gate_t *g = st->gate;
    const conf_cors_t *cors = &st->match->route->cors;

    /* the answer depends on Origin whenever the route does not answer every origin alike */
    if (cors->enabled && !(cors->any_origin && !cors->credentials))
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_VARY, NULL, H2O_STRLIT("Origin"));
    if (g == NULL)
        return;
    if (g->nlimits != 0) {
        /* on every response of a limited route: the policy items were made at boot; only r and t are formatted */
        char *pol = h2o_mem_alloc_pool(&req->pool, 80 * g->nlimits), *cur = h2o_mem_alloc_pool(&req->pool, 64 * g->nlimits);
        char *po = pol, *co = cur;
        for (size_t i = 0; i != g->nlimits; ++i) {
            const px_limit_report_t *l = g->limits + i;
            if (i != 0) {
                memcpy(po, ", ", 2);
                memcpy(co, ", ", 2);
                po += 2;
                co += 2;
            }
            memcpy(po, l->item.base, l->item.len);
            po += l->item.len;
            co =
                put_u64(put_str(put_u64(put_str(put_str(put_str(co, "\""), l->policy), "\";r="), l->remaining), ";t="), l->reset_s);
        }
        size_t plen = (size_t)(po - pol), clen = (size_t)(co - cur);
        add_header(req, "ratelimit-policy", pol, plen);
        add_header(req, "ratelimit", cur, clen);
    }
    if (g->cors_origin.len != 0) {
        const conf_cors_t *c = &st->match->route->cors;
        if (c->any_origin && !c->credentials)
            add_header(req, "access-control-allow-origin", H2O_STRLIT("*"));
        else
            add_header(req, "access-control-allow-origin", g->cors_origin.base, g->cors_origin.len);
        if (c->credentials)
            add_header(req, "access-control-allow-credentials", H2O_STRLIT("true"));
        if (c->nexpose != 0)
            add_header_str(req, "access-control-expose-headers", list_value(&req->pool, c->expose, c->nexpose));
    }
}
