/*
 * cache/key.c: what identifies a stored response (see the policy section of cache/cache.h): the cache key of a
 * request, the Vary'd secondary key of a variant, and the SHA-256 ids the store is addressed by.
 *
 * Nothing allocates: output goes through cache_w_t into the caller's buffer, and sorting (Vary names, query
 * parameters) is done by repeated selection over bounded inputs or in a small array on the stack.
 */
/* SHA256_Init/Update/Final: deprecated in OpenSSL 3.0 (in favour of EVP, which allocates and is slower on short
 * inputs) but kept by every 3.x; the 1.1.1 API level keeps them available without warnings. */
#define OPENSSL_API_COMPAT 0x10100000L
#include <openssl/sha.h>
#include <string.h>
#include "cache/cache.h"
#include "cache/policy_internal.h"

/* ---- normalised field values ---- */

/*
 * Appends one field value trimmed, without the whitespace around its commas, lower-cased if asked. Other whitespace
 * stays as sent: inside a quoted string it is significant.
 */
static void put_normalised(cache_w_t *w, const char *v, size_t len, int lower)
{
    cache_trim(&v, &len);
    for (size_t i = 0; i != len;) {
        if (cache_is_ows(v[i])) {
            size_t j = i;
            while (j != len && cache_is_ows(v[j])) /* trimmed: never runs to len */
                ++j;
            if (v[j] != ',' && v[i - 1] != ',')
                cache_w_put(w, v + i, j - i);
            i = j;
        } else {
            cache_w_putc(w, lower ? cache_lower(v[i]) : v[i]);
            ++i;
        }
    }
}

/* Appends ":value" with all lines of field `name` joined by ',', or nothing when the request lacks the field. */
static void put_field(cache_w_t *w, const cache_hdr_t *h, size_t n, const char *name, size_t name_len)
{
    int lower = cache_ieq(name, name_len, "accept-encoding", 15), found = 0;

    for (size_t i = 0; i != n; ++i) {
        if (!cache_ieq(h[i].name, h[i].name_len, name, name_len))
            continue;
        cache_w_putc(w, found++ ? ',' : ':');
        put_normalised(w, h[i].value, h[i].value_len, lower);
    }
}

/* ---- Vary ---- */

/*
 * Iterates the members of every line of `field` in h (empty members skipped, at most CACHE_VARY_MAX_NAMES so that the
 * quadratic sort below stays small). Returns 0 at the end.
 */
typedef struct vary_iter {
    const cache_hdr_t *h;
    size_t n, line, pos, count;
} vary_iter_t;

static int vary_next(vary_iter_t *it, cache_str_t *member)
{
    for (; it->line != it->n; ++it->line, it->pos = 0) {
        const cache_hdr_t *l = it->h + it->line;
        if (!cache_hdr_is(l, "vary"))
            continue;
        while (it->pos < l->value_len) {
            const char *s = l->value + it->pos, *comma = memchr(s, ',', l->value_len - it->pos);
            size_t len = comma != NULL ? (size_t)(comma - s) : l->value_len - it->pos;
            it->pos += len + 1;
            cache_trim(&s, &len);
            if (len == 0)
                continue;
            if (it->count++ == CACHE_VARY_MAX_NAMES)
                return 0;
            member->base = s;
            member->len = len;
            return 1;
        }
    }
    return 0;
}

/* Case-insensitive order of two names. */
static int name_cmp(const cache_str_t *a, const cache_str_t *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    for (size_t i = 0; i != n; ++i) {
        char x = cache_lower(a->base[i]), y = cache_lower(b->base[i]);
        if (x != y)
            return (unsigned char)x < (unsigned char)y ? -1 : 1;
    }
    return a->len < b->len ? -1 : a->len > b->len;
}

/* The smallest member greater than *last (or the smallest at all when last is NULL). Returns 0 when none. */
static int vary_after(const cache_hdr_t *h, size_t n, const cache_str_t *last, cache_str_t *best)
{
    vary_iter_t it = {h, n, 0, 0, 0};
    cache_str_t m;
    int found = 0;

    while (vary_next(&it, &m)) {
        if (last != NULL && name_cmp(&m, last) <= 0)
            continue;
        if (!found || name_cmp(&m, best) < 0) {
            *best = m;
            found = 1;
        }
    }
    return found;
}

size_t cache_vary_count(const cache_hdr_t *resp, size_t nresp)
{
    vary_iter_t it = {resp, nresp, 0, 0, 0};
    cache_str_t m;

    while (vary_next(&it, &m))
        ;
    return it.count; /* counts one past the limit when there are more */
}

int cache_vary_star(const cache_hdr_t *resp, size_t nresp)
{
    vary_iter_t it = {resp, nresp, 0, 0, 0};
    cache_str_t m;

    while (vary_next(&it, &m))
        if (m.len == 1 && m.base[0] == '*')
            return 1;
    return 0;
}

/* Calls put for each canonical name: sorted, unique, in the order of name_cmp. */
static size_t vary_walk(const cache_hdr_t *h, size_t n, cache_w_t *w, const cache_hdr_t *req, size_t nreq)
{
    cache_str_t name, prev;
    int first = 1;

    while (vary_after(h, n, first ? NULL : &prev, &name)) {
        if (req == NULL && !first)
            cache_w_putc(w, ',');
        for (size_t i = 0; i != name.len; ++i)
            cache_w_putc(w, cache_lower(name.base[i]));
        if (req != NULL) {
            put_field(w, req, nreq, name.base, name.len);
            cache_w_putc(w, '\n');
        }
        prev = name;
        first = 0;
    }
    return w->len;
}

size_t cache_vary_names(const cache_hdr_t *resp, size_t nresp, char *buf, size_t cap)
{
    cache_w_t w = {buf, cap, 0};
    return vary_walk(resp, nresp, &w, NULL, 0);
}

size_t cache_vary_key(const char *names, size_t names_len, const cache_hdr_t *req, size_t nreq, char *buf, size_t cap)
{
    static const cache_hdr_t empty[1];
    cache_hdr_t vary = {"vary", 4, names, names_len};
    cache_w_t w = {buf, cap, 0};

    /* with req NULL vary_walk writes names only, so never pass NULL for "no request headers" */
    return vary_walk(&vary, 1, &w, req != NULL ? req : empty, req != NULL ? nreq : 0);
}

/* ---- cache keys ---- */

/* Appends the host lower-cased, without a trailing dot or the scheme's default port. */
static void put_host(cache_w_t *w, const char *a, size_t len, const char *scheme, size_t scheme_len)
{
    size_t host_len = len, i;
    const char *port = NULL;
    size_t port_len = 0;

    /* the port: digits after the last ':' (and after a ']' for an IPv6 literal) */
    for (i = len; i != 0 && cache_is_digit(a[i - 1]); --i)
        ;
    if (i != 0 && a[i - 1] == ':' && (a[0] != '[' || (i >= 2 && a[i - 2] == ']'))) {
        host_len = i - 1;
        port = a + i;
        port_len = len - i;
    }
    if (host_len != 0 && a[host_len - 1] == '.')
        --host_len;
    for (i = 0; i != host_len; ++i)
        cache_w_putc(w, cache_lower(a[i]));
    if (port != NULL) {
        while (port_len > 1 && port[0] == '0') /* "0443" is 443 */
            ++port, --port_len;
        int dflt =
            cache_ieq(scheme, scheme_len, "https", 5) ? cache_ieq(port, port_len, "443", 3) : cache_ieq(port, port_len, "80", 2);
        if (port_len != 0 && !dflt) {
            cache_w_putc(w, ':');
            cache_w_put(w, port, port_len);
        }
    }
}

typedef struct param {
    const char *s; /* "name=value" */
    size_t len, name_len;
} param_t;

static int param_listed(const param_t *p, const cache_key_opts_t *o)
{
    for (size_t i = 0; i != o->nparams; ++i)
        if (strlen(o->params[i]) == p->name_len && memcmp(o->params[i], p->s, p->name_len) == 0)
            return 1;
    return 0;
}

/* The next parameter that the mode keeps; returns 0 at the end of the query. */
static int next_param(const char **q, const char *end, const cache_key_opts_t *o, param_t *p)
{
    while (*q != end) {
        const char *amp = memchr(*q, '&', (size_t)(end - *q));
        p->s = *q;
        p->len = (size_t)((amp != NULL ? amp : end) - *q);
        *q = amp != NULL ? amp + 1 : end;
        if (p->len == 0)
            continue;
        const char *eq = memchr(p->s, '=', p->len);
        p->name_len = eq != NULL ? (size_t)(eq - p->s) : p->len;
        if (o->query == CACHE_QUERY_ONLY && !param_listed(p, o))
            continue;
        if (o->query == CACHE_QUERY_EXCEPT && param_listed(p, o))
            continue;
        return 1;
    }
    return 0;
}

static int param_cmp(const param_t *a, const param_t *b)
{
    size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
    int c = memcmp(a->s, b->s, n);
    return c != 0 ? c : (a->name_len > b->name_len) - (a->name_len < b->name_len);
}

static void put_query(cache_w_t *w, const char *q, size_t qlen, const cache_key_opts_t *o)
{
    param_t sorted[CACHE_KEY_MAX_SORTED_PARAMS], p;
    const char *end = q + qlen, *cur = q;
    size_t n = 0, i;

    if (o->query == CACHE_QUERY_NONE)
        return;
    if (o->sort_query) {
        while (n <= CACHE_KEY_MAX_SORTED_PARAMS && next_param(&cur, end, o, &p)) {
            if (n == CACHE_KEY_MAX_SORTED_PARAMS) {
                n = SIZE_MAX; /* too many: keep the order as sent */
                break;
            }
            /* insertion sort by name: stable, and at most CACHE_KEY_MAX_SORTED_PARAMS^2/2 comparisons */
            for (i = n; i != 0 && param_cmp(sorted + i - 1, &p) > 0; --i)
                sorted[i] = sorted[i - 1];
            sorted[i] = p;
            ++n;
        }
        if (n != SIZE_MAX) {
            for (i = 0; i != n; ++i) {
                cache_w_putc(w, i == 0 ? '?' : '&');
                cache_w_put(w, sorted[i].s, sorted[i].len);
            }
            return;
        }
    }
    for (cur = q, n = 0; next_param(&cur, end, o, &p); ++n) {
        cache_w_putc(w, n == 0 ? '?' : '&');
        cache_w_put(w, p.s, p.len);
    }
}

size_t cache_key_build(const cache_key_req_t *r, const cache_key_opts_t *opts, char *buf, size_t cap)
{
    static const cache_key_opts_t defaults = {CACHE_QUERY_ALL};
    cache_w_t w = {buf, cap, 0};
    const char *qmark = r->path_len != 0 ? memchr(r->path, '?', r->path_len) : NULL;
    size_t path_len = qmark != NULL ? (size_t)(qmark - r->path) : r->path_len;

    if (opts == NULL)
        opts = &defaults;
    if ((r->method_len == 3 && memcmp(r->method, "GET", 3) == 0) || (r->method_len == 4 && memcmp(r->method, "HEAD", 4) == 0))
        cache_w_put(&w, "GET", 3);
    else
        cache_w_put(&w, r->method, r->method_len);
    cache_w_putc(&w, ' ');
    for (size_t i = 0; i != r->scheme_len; ++i)
        cache_w_putc(&w, cache_lower(r->scheme[i]));
    cache_w_put(&w, "://", 3);
    put_host(&w, r->authority, r->authority_len, r->scheme, r->scheme_len);
    cache_w_put(&w, r->path, path_len);
    if (qmark != NULL)
        put_query(&w, qmark + 1, (size_t)(r->path + r->path_len - qmark - 1), opts);
    for (size_t i = 0; i != opts->nheaders; ++i) {
        size_t len = strlen(opts->headers[i]);
        cache_w_putc(&w, '\n');
        cache_w_put(&w, opts->headers[i], len);
        put_field(&w, r->hdrs, r->nhdrs, opts->headers[i], len);
    }
    return w.len;
}

void cache_key_digest(const char *key, size_t key_len, const char *vary, size_t vary_len, uint8_t id[CACHE_ID_SIZE])
{
    SHA256_CTX ctx;
    static const unsigned char zero = 0;

    /* OpenSSL's SHA-256 (SHA-NI where the CPU has it): ~4x mbedTLS's software one on a cache key, no allocation */
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, key, key_len);
    if (vary != NULL) {
        SHA256_Update(&ctx, &zero, 1);
        SHA256_Update(&ctx, vary, vary_len);
    }
    SHA256_Final(id, &ctx);
}
