/*
 * cache/policy.c: the RFC 9111 rules of the cache (see the policy section of cache/cache.h): Cache-Control and the
 * targeted fields, storability, freshness and age, reuse. HTTP dates, validators and conditionals, and Cache-Status
 * are in cache/policy_http.c; Vary and keys are in cache/key.c.
 */
#include <stdint.h>
#include <string.h>
#include "cache/cache.h"
#include "cache/policy_internal.h"

#define HEURISTIC_CAP 86400 /* the heuristic lifetime is at most a day */

_Static_assert(sizeof(cache_meta_t) == 64, "cache_meta_t is stored as is: its layout is part of the format");

/* ---- small helpers ---- */

int cache_ieq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return 0;
    for (size_t i = 0; i != alen; ++i)
        if (cache_lower(a[i]) != cache_lower(b[i]))
            return 0;
    return 1;
}

int cache_hdr_is(const cache_hdr_t *h, const char *name)
{
    return cache_ieq(h->name, h->name_len, name, strlen(name));
}

void cache_trim(const char **s, size_t *len)
{
    while (*len != 0 && cache_is_ows((*s)[0]))
        ++*s, --*len;
    while (*len != 0 && cache_is_ows((*s)[*len - 1]))
        --*len;
}

/* Skips to the next ',' that is not inside a quoted string (or the end). */
const char *cache_skip_to_comma(const char *p, const char *end)
{
    int quoted = 0;
    for (; p != end; ++p) {
        if (quoted && *p == '\\') {
            if (++p == end)
                break;
        } else if (*p == '"') {
            quoted = !quoted;
        } else if (*p == ',' && !quoted) {
            break;
        }
    }
    return p;
}

const char *cache_skip_ows(const char *p, const char *end)
{
    while (p != end && cache_is_ows(*p))
        ++p;
    return p;
}

int64_t cache_clamp(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Saturating arithmetic: stored metadata and `now` come from outside, and nothing here may overflow. */
static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

static int64_t sat_sub(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r))
        return b < 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* The first line of field `name`, or NULL. */
static const cache_hdr_t *find_hdr(const cache_hdr_t *h, size_t n, const char *name)
{
    for (size_t i = 0; i != n; ++i)
        if (cache_hdr_is(h + i, name))
            return h + i;
    return NULL;
}

/* delta-seconds (RFC 9111 1.2.2): 1*DIGIT, clamped to CACHE_DELTA_MAX; -1 when not that. */
static int64_t parse_delta(const char *s, size_t len)
{
    int64_t v = 0;

    if (len == 0)
        return -1;
    for (size_t i = 0; i != len; ++i) {
        if (!cache_is_digit(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
        if (v > CACHE_DELTA_MAX)
            v = CACHE_DELTA_MAX;
    }
    return v;
}

/* ---- Cache-Control ---- */

/* One directive as scanned, before its meaning is applied. */
typedef struct cc_item {
    const char *name, *val;
    size_t name_len, val_len;
    int has_val, bad, escaped;
    int skip; /* Surrogate-Control directive targeted at another device */
} cc_item_t;

static const char *skip_token(const char *p, const char *end)
{
    while (p != end && cache_is_tchar(*p))
        ++p;
    return p;
}

/* token or quoted-string after '='. */
static const char *scan_value(const char *p, const char *end, cc_item_t *it)
{
    it->has_val = 1;
    if (p != end && *p == '"') {
        const char *q = ++p;
        for (; q != end && *q != '"'; ++q) {
            if (*q == '\\') {
                it->escaped = 1;
                if (++q == end)
                    break;
            }
        }
        it->val = p;
        it->val_len = (size_t)((q == end ? end : q) - p);
        if (q == end) { /* unterminated */
            it->bad = 1;
            return end;
        }
        return q + 1;
    }
    it->val = p;
    p = skip_token(p, end);
    it->val_len = (size_t)(p - it->val);
    if (it->val_len == 0)
        it->bad = 1;
    return p;
}

/* Scans one list member starting at a non-separator; returns where the member ends (a ',' or the end). */
static const char *scan_directive(const char *p, const char *end, cache_cc_syntax_t syntax, cc_item_t *it)
{
    int targeted = 0, for_us = 0;

    memset(it, 0, sizeof(*it));
    it->name = p;
    p = skip_token(p, end);
    it->name_len = (size_t)(p - it->name);
    p = cache_skip_ows(p, end);
    if (p != end && *p == '=')
        p = cache_skip_ows(scan_value(cache_skip_ows(p + 1, end), end, it), end);
    while (p != end && *p == ';' && syntax != CACHE_CC_SYNTAX_CACHE_CONTROL) {
        const char *t = p = cache_skip_ows(p + 1, end);
        p = skip_token(p, end);
        if (syntax == CACHE_CC_SYNTAX_SURROGATE) {
            targeted = 1;
            for_us |= cache_ieq(t, (size_t)(p - t), CACHE_SURROGATE_TARGET, sizeof(CACHE_SURROGATE_TARGET) - 1);
        } else if (p != end && *p == '=') { /* a structured-field parameter's value */
            cc_item_t ignored = {0};
            p = scan_value(p + 1, end, &ignored);
        }
        p = cache_skip_ows(p, end);
    }
    if (p != end && *p != ',') {
        it->bad = 1;
        p = cache_skip_to_comma(p, end);
    }
    it->skip = targeted && !for_us;
    return p;
}

enum { D_DELTA, D_OPT_DELTA, D_STRICT, D_LAX, D_FIELDS };

static const struct {
    const char *name;
    uint32_t bit;
    int kind;
} directives[] = {
    {"max-age", CACHE_CC_MAX_AGE, D_DELTA},
    {"s-maxage", CACHE_CC_S_MAXAGE, D_DELTA},
    {"stale-while-revalidate", CACHE_CC_SWR, D_DELTA},
    {"stale-if-error", CACHE_CC_SIE, D_DELTA},
    {"min-fresh", CACHE_CC_MIN_FRESH, D_DELTA},
    {"max-stale", CACHE_CC_MAX_STALE, D_OPT_DELTA},
    {"no-store", CACHE_CC_NO_STORE, D_STRICT},
    {"must-revalidate", CACHE_CC_MUST_REVALIDATE, D_STRICT},
    {"proxy-revalidate", CACHE_CC_PROXY_REVALIDATE, D_STRICT},
    {"no-cache", CACHE_CC_NO_CACHE, D_FIELDS},
    {"private", CACHE_CC_PRIVATE, D_FIELDS},
    {"public", CACHE_CC_PUBLIC, D_LAX},
    {"immutable", CACHE_CC_IMMUTABLE, D_LAX},
    {"must-understand", CACHE_CC_MUST_UNDERSTAND, D_LAX},
    {"no-transform", CACHE_CC_NO_TRANSFORM, D_LAX},
    {"only-if-cached", CACHE_CC_ONLY_IF_CACHED, D_LAX},
};

static int64_t *delta_slot(cache_cc_t *cc, uint32_t bit)
{
    switch (bit) {
    case CACHE_CC_MAX_AGE:
        return &cc->max_age;
    case CACHE_CC_S_MAXAGE:
        return &cc->s_maxage;
    case CACHE_CC_SWR:
        return &cc->stale_while_revalidate;
    case CACHE_CC_SIE:
        return &cc->stale_if_error;
    case CACHE_CC_MIN_FRESH:
        return &cc->min_fresh;
    default:
        return &cc->max_stale;
    }
}

/* v < 0: malformed. An invalid max-age / s-maxage stays as 0 (stale); any other invalid directive disappears. */
static void apply_delta(cache_cc_t *cc, uint32_t bit, int64_t v)
{
    int64_t *slot = delta_slot(cc, bit);

    if (cc->invalid & bit)
        return;
    if (v >= 0 && (!(cc->flags & bit) || *slot == v)) {
        cc->flags |= bit;
        *slot = v;
        return;
    }
    cc->invalid |= bit;
    *slot = 0;
    if (bit & (CACHE_CC_MAX_AGE | CACHE_CC_S_MAXAGE))
        cc->flags |= bit;
    else
        cc->flags &= ~bit;
}

/*
 * no-cache / private: bare, or a list of field names. Anything we cannot read exactly reads as the bare form, which
 * is stricter.
 */
static void apply_fields(cache_cc_t *cc, uint32_t bare, const cc_item_t *it)
{
    uint32_t fields_bit = bare == CACHE_CC_NO_CACHE ? CACHE_CC_NO_CACHE_FIELDS : CACHE_CC_PRIVATE_FIELDS;
    cache_str_t *list = bare == CACHE_CC_NO_CACHE ? cc->no_cache : cc->private_;
    uint32_t *n = bare == CACHE_CC_NO_CACHE ? &cc->nno_cache : &cc->nprivate;
    const char *p = it->val, *end = it->val + it->val_len;
    uint32_t added = *n;

    if (cc->flags & bare)
        return;
    if (!it->has_val || it->bad || it->escaped)
        goto Bare;
    while (p != end) {
        const char *name, *e;
        p = cache_skip_ows(p, end);
        name = p;
        e = skip_token(p, end);
        p = cache_skip_ows(e, end);
        if (p != end && *p != ',')
            goto Bare;
        if (p != end)
            ++p;
        if (e == name)
            continue;
        if (added == CACHE_CC_MAX_FIELDS)
            goto Bare;
        list[added].base = name;
        list[added].len = (size_t)(e - name);
        ++added;
    }
    if (added == 0)
        goto Bare;
    *n = added;
    cc->flags |= fields_bit;
    return;
Bare:
    cc->flags = (cc->flags | bare) & ~fields_bit;
    *n = 0;
}

static void apply_directive(cache_cc_t *cc, const cc_item_t *it)
{
    for (size_t i = 0; i != sizeof(directives) / sizeof(directives[0]); ++i) {
        if (!cache_ieq(it->name, it->name_len, directives[i].name, strlen(directives[i].name)))
            continue;
        uint32_t bit = directives[i].bit;
        ++cc->nknown;
        switch (directives[i].kind) {
        case D_DELTA:
            apply_delta(cc, bit, it->has_val && !it->bad ? parse_delta(it->val, it->val_len) : -1);
            break;
        case D_OPT_DELTA:
            apply_delta(cc, bit, it->bad ? -1 : it->has_val ? parse_delta(it->val, it->val_len) : CACHE_DELTA_MAX);
            break;
        case D_STRICT:
            cc->flags |= bit;
            break;
        case D_LAX:
            if (!it->has_val && !it->bad)
                cc->flags |= bit;
            break;
        case D_FIELDS:
            apply_fields(cc, bit, it);
            break;
        }
        return;
    }
}

void cache_cc_init(cache_cc_t *cc)
{
    memset(cc, 0, sizeof(*cc));
}

void cache_cc_parse(cache_cc_t *cc, cache_cc_syntax_t syntax, const char *value, size_t len)
{
    const char *p = value, *end = value + len;

    for (;;) {
        cc_item_t it;
        while (p != end && (cache_is_ows(*p) || *p == ','))
            ++p;
        if (p == end)
            break;
        p = scan_directive(p, end, syntax, &it);
        if (it.skip || it.name_len == 0)
            continue;
        ++cc->ndirectives;
        apply_directive(cc, &it);
    }
}

/* Parses every line of field `name`; returns how many there were. */
static size_t parse_lines(cache_cc_t *cc, cache_cc_syntax_t syntax, const cache_hdr_t *h, size_t n, const char *name)
{
    size_t lines = 0;
    for (size_t i = 0; i != n; ++i) {
        if (cache_hdr_is(h + i, name)) {
            cache_cc_parse(cc, syntax, h[i].value, h[i].value_len);
            ++lines;
        }
    }
    return lines;
}

void cache_request_cc(cache_cc_t *cc, const cache_hdr_t *hdrs, size_t nhdrs)
{
    cache_cc_t pragma;

    cache_cc_init(cc);
    if (parse_lines(cc, CACHE_CC_SYNTAX_CACHE_CONTROL, hdrs, nhdrs, "cache-control") != 0)
        return;
    cache_cc_init(&pragma);
    parse_lines(&pragma, CACHE_CC_SYNTAX_CACHE_CONTROL, hdrs, nhdrs, "pragma");
    if (pragma.flags & CACHE_CC_NO_CACHE)
        cc->flags |= CACHE_CC_NO_CACHE;
}

cache_cc_source_t cache_response_cc(cache_cc_t *cc, const cache_hdr_t *hdrs, size_t nhdrs)
{
    /*
     * Surrogate-Control also carries ESI's content="..." and the like, so only caching directives make it ours; a
     * CDN-Cache-Control with anything in it replaces Cache-Control (RFC 9213 2.1).
     */
    cache_cc_init(cc);
    parse_lines(cc, CACHE_CC_SYNTAX_SURROGATE, hdrs, nhdrs, "surrogate-control");
    if (cc->nknown != 0)
        return CACHE_CC_SRC_SURROGATE;
    cache_cc_init(cc);
    parse_lines(cc, CACHE_CC_SYNTAX_CDN, hdrs, nhdrs, "cdn-cache-control");
    if (cc->ndirectives != 0)
        return CACHE_CC_SRC_CDN;
    cache_cc_init(cc);
    parse_lines(cc, CACHE_CC_SYNTAX_CACHE_CONTROL, hdrs, nhdrs, "cache-control");
    return cc->ndirectives != 0 ? CACHE_CC_SRC_CACHE_CONTROL : CACHE_CC_SRC_NONE;
}

int cache_hdr_is_targeted(const char *name, size_t len)
{
    return cache_ieq(name, len, "cdn-cache-control", 17) || cache_ieq(name, len, "surrogate-control", 17);
}

/* ---- storability, freshness, age ---- */

/* RFC 9110 15.1: statuses that are heuristically cacheable. */
static int heuristic_status(int status)
{
    static const short list[] = {200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501};
    for (size_t i = 0; i != sizeof(list) / sizeof(list[0]); ++i)
        if (list[i] == status)
            return 1;
    return 0;
}

/* Statuses whose caching rules this cache knows, for must-understand (RFC 9111 5.2.2.3). */
static int understood_status(int status)
{
    return heuristic_status(status) || status == 302 || status == 303 || status == 307 || status == 451;
}

/* The first valid date among the lines of `name`, or -1. */
static int64_t hdr_date(const cache_hdr_t *h, size_t n, const char *name)
{
    for (size_t i = 0; i != n; ++i) {
        if (cache_hdr_is(h + i, name)) {
            int64_t t = cache_date_parse(h[i].value, h[i].value_len);
            if (t >= 0)
                return t;
        }
    }
    return -1;
}

static int refuse(cache_store_plan_t *out, const char *reason)
{
    out->reason = reason;
    return 0;
}

/* 10% of the time since the last modification, at most HEURISTIC_CAP (RFC 9111 4.2.2 suggests 10%). */
static int64_t heuristic_lifetime(int64_t date, int64_t last_modified)
{
    if (last_modified < 0 || last_modified >= date)
        return 0;
    return cache_clamp((date - last_modified) / 10, 0, HEURISTIC_CAP);
}

/* The freshness lifetime per the rules in cache.h, or -1 when the response has none at all. */
static int64_t freshness_lifetime(const cache_exchange_t *x, const cache_cc_t *cc, cache_cc_source_t src,
                                  const cache_route_policy_t *route, int64_t date, int64_t last_modified, uint32_t *flags)
{
    int heur = heuristic_status(x->status);

    if (!route->override) {
        if (cc->flags & CACHE_CC_S_MAXAGE)
            return cc->s_maxage;
        if (cc->flags & CACHE_CC_MAX_AGE)
            return cc->max_age;
        if (src == CACHE_CC_SRC_CACHE_CONTROL || src == CACHE_CC_SRC_NONE) {
            const cache_hdr_t *e = find_hdr(x->resp, x->nresp, "expires");
            if (e != NULL) {
                int64_t t = cache_date_parse(e->value, e->value_len);
                return t < 0 ? 0 : cache_clamp(t - date, 0, CACHE_DELTA_MAX);
            }
        }
    }
    if (route->default_ttl >= 0 && heur) {
        *flags |= CACHE_META_DEFAULT_TTL;
        return cache_clamp(route->default_ttl, 0, CACHE_DELTA_MAX);
    }
    if ((heur && last_modified >= 0) || (cc->flags & CACHE_CC_PUBLIC)) {
        *flags |= CACHE_META_HEURISTIC;
        return heuristic_lifetime(date, last_modified);
    }
    return -1;
}

/* RFC 9111 4.2.3: the age the response already had when it arrived. */
static int64_t corrected_initial_age(const cache_exchange_t *x, int64_t date, int64_t request_time, int64_t response_time)
{
    const cache_hdr_t *a = find_hdr(x->resp, x->nresp, "age");
    int64_t age_value = 0, apparent_age, response_delay;

    if (a != NULL) {
        const char *v = a->value;
        size_t len = a->value_len;
        cache_trim(&v, &len);
        age_value = parse_delta(v, len);
        if (age_value < 0) /* invalid Age: ignored */
            age_value = 0;
    }
    apparent_age = response_time > date ? response_time - date : 0;
    response_delay = response_time > request_time ? response_time - request_time : 0;
    int64_t corrected_age_value = age_value + response_delay;
    return cache_clamp(apparent_age > corrected_age_value ? apparent_age : corrected_age_value, 0, CACHE_DELTA_MAX);
}

static void add_strip(cache_store_plan_t *out, const char *name, size_t len)
{
    if (out->nstrip < sizeof(out->strip) / sizeof(out->strip[0])) {
        out->strip[out->nstrip].base = name;
        out->strip[out->nstrip].len = len;
        ++out->nstrip;
    }
}

static int64_t window(const cache_cc_t *cc, uint32_t bit, int64_t value, int64_t route_default)
{
    if (cc->flags & bit)
        return value;
    return route_default > 0 ? cache_clamp(route_default, 0, CACHE_DELTA_MAX) : 0;
}

int cache_storable(const cache_exchange_t *x, const cache_route_policy_t *route, cache_store_plan_t *out)
{
    static const cache_route_policy_t no_route = {.default_ttl = -1};
    cache_cc_t rq, cc;
    uint32_t flags = 0;
    int64_t request_time, response_time, date, last_modified, lifetime;
    int has_cookie = find_hdr(x->resp, x->nresp, "set-cookie") != NULL;

    memset(out, 0, sizeof(*out));
    if (route == NULL)
        route = &no_route;
    if (x->method_len != 3 || memcmp(x->method, "GET", 3) != 0) /* methods are case-sensitive */
        return refuse(out, "method");
    if (x->status < 200 || x->status > 599 || x->status == 206 || x->status == 304)
        return refuse(out, "status");
    cache_request_cc(&rq, x->req, x->nreq);
    if (rq.flags & CACHE_CC_NO_STORE)
        return refuse(out, "req-no-store");
    out->cc_source = cache_response_cc(&cc, x->resp, x->nresp);
    if (cc.flags & CACHE_CC_MUST_UNDERSTAND) {
        if (!understood_status(x->status))
            return refuse(out, "must-understand");
    } else if (cc.flags & CACHE_CC_NO_STORE) {
        return refuse(out, "no-store");
    }
    if ((cc.flags & CACHE_CC_PRIVATE) && !route->override)
        return refuse(out, "private");
    if (find_hdr(x->req, x->nreq, "authorization") != NULL &&
        !(cc.flags & (CACHE_CC_MUST_REVALIDATE | CACHE_CC_PUBLIC | CACHE_CC_S_MAXAGE)))
        return refuse(out, "authorization");
    if (cache_vary_star(x->resp, x->nresp))
        return refuse(out, "vary-star");
    if (cache_vary_count(x->resp, x->nresp) > CACHE_VARY_MAX_NAMES)
        return refuse(out, "vary-too-long");
    if (has_cookie && !route->override)
        return refuse(out, "set-cookie");

    request_time = cache_clamp(x->request_time, 0, CACHE_MAX_TIME);
    response_time = cache_clamp(x->response_time, request_time, CACHE_MAX_TIME);
    date = hdr_date(x->resp, x->nresp, "date");
    if (date < 0)
        date = response_time;
    last_modified = hdr_date(x->resp, x->nresp, "last-modified");
    lifetime = freshness_lifetime(x, &cc, out->cc_source, route, date, last_modified, &flags);
    if (lifetime < 0)
        return refuse(out, "no-freshness");

    if (!route->override) {
        if (cc.flags & CACHE_CC_MUST_REVALIDATE)
            flags |= CACHE_META_MUST_REVALIDATE;
        if (cc.flags & CACHE_CC_PROXY_REVALIDATE)
            flags |= CACHE_META_PROXY_REVALIDATE;
        if (cc.flags & CACHE_CC_S_MAXAGE)
            flags |= CACHE_META_HAS_S_MAXAGE;
        if (cc.flags & (CACHE_CC_NO_CACHE | CACHE_CC_NO_CACHE_FIELDS))
            flags |= CACHE_META_NO_CACHE;
    }
    if (cc.flags & CACHE_CC_IMMUTABLE)
        flags |= CACHE_META_IMMUTABLE;
    if (find_hdr(x->resp, x->nresp, "etag") != NULL)
        flags |= CACHE_META_HAS_ETAG;
    if (last_modified >= 0)
        flags |= CACHE_META_HAS_LAST_MODIFIED;

    out->meta.version = CACHE_META_VERSION;
    out->meta.status = (uint16_t)x->status;
    out->meta.flags = flags;
    out->meta.response_time = response_time;
    out->meta.corrected_initial_age = corrected_initial_age(x, date, request_time, response_time);
    out->meta.freshness_lifetime = cache_clamp(lifetime, 0, CACHE_DELTA_MAX);
    out->meta.swr = window(&cc, CACHE_CC_SWR, cc.stale_while_revalidate, route->default_swr);
    out->meta.sie = window(&cc, CACHE_CC_SIE, cc.stale_if_error, route->default_sie);
    out->meta.date = date;
    out->meta.last_modified = last_modified;

    if (cc.flags & CACHE_CC_PRIVATE_FIELDS)
        for (uint32_t i = 0; i != cc.nprivate; ++i)
            add_strip(out, cc.private_[i].base, cc.private_[i].len);
    if (has_cookie)
        add_strip(out, "set-cookie", 10);
    return 1;
}

int64_t cache_meta_age(const cache_meta_t *m, int64_t now)
{
    int64_t resident_time = sat_sub(now, m->response_time);
    int64_t age = sat_add(m->corrected_initial_age, resident_time > 0 ? resident_time : 0);
    return age > 0 ? age : 0;
}

int64_t cache_meta_ttl(const cache_meta_t *m, int64_t now)
{
    return sat_sub(m->freshness_lifetime, cache_meta_age(m, now));
}

/* ---- reuse ---- */

static cache_reuse_t decide(const cache_meta_t *m, const cache_cc_t *req, int64_t age, int64_t ttl)
{
    int fresh = ttl > 0;
    int exempt = fresh && (m->flags & CACHE_META_IMMUTABLE); /* RFC 8246: a fresh immutable response needs no check */
    int64_t staleness = sat_sub(0, ttl);

    if (m->flags & CACHE_META_NO_CACHE)
        return CACHE_REUSE_REVALIDATE;
    if (req != NULL) {
        if (!exempt && (req->flags & CACHE_CC_NO_CACHE))
            return CACHE_REUSE_REVALIDATE;
        if (!exempt && (req->flags & CACHE_CC_MAX_AGE) && age > req->max_age)
            return CACHE_REUSE_REVALIDATE;
        if ((req->flags & CACHE_CC_MIN_FRESH) && ttl < req->min_fresh)
            return CACHE_REUSE_REVALIDATE;
    }
    if (fresh)
        return CACHE_REUSE_FRESH;
    if (m->flags & (CACHE_META_MUST_REVALIDATE | CACHE_META_PROXY_REVALIDATE | CACHE_META_HAS_S_MAXAGE))
        return CACHE_REUSE_REVALIDATE;
    if (m->swr > 0 && staleness <= m->swr)
        return CACHE_REUSE_STALE_WHILE_REVALIDATE;
    if (req != NULL && (req->flags & CACHE_CC_MAX_STALE) && staleness <= req->max_stale)
        return CACHE_REUSE_STALE_ALLOWED;
    return CACHE_REUSE_REVALIDATE;
}

cache_reuse_t cache_reuse(const cache_meta_t *m, const cache_cc_t *req, int64_t now, cache_reuse_info_t *info)
{
    cache_reuse_info_t ignored;
    cache_reuse_t r;

    if (info == NULL)
        info = &ignored;
    info->age = cache_meta_age(m, now);
    info->ttl = sat_sub(m->freshness_lifetime, info->age);
    r = decide(m, req, info->age, info->ttl);
    /* The client's directives are to blame when, without them, the response would have been served. */
    info->by_request = r == CACHE_REUSE_REVALIDATE && req != NULL && decide(m, NULL, info->age, info->ttl) != r;
    return r;
}

int cache_stale_if_error(const cache_meta_t *m, const cache_cc_t *req, int64_t now)
{
    int64_t ttl = cache_meta_ttl(m, now), limit = m->sie;

    if (m->flags & CACHE_META_NO_CACHE)
        return 0;
    if (ttl > 0)
        return 1;
    if (m->flags & (CACHE_META_MUST_REVALIDATE | CACHE_META_PROXY_REVALIDATE | CACHE_META_HAS_S_MAXAGE))
        return 0;
    if (req != NULL && (req->flags & CACHE_CC_SIE) && req->stale_if_error > limit)
        limit = req->stale_if_error;
    return limit > 0 && sat_sub(0, ttl) <= limit;
}
