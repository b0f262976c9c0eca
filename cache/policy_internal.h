/*
 * Helpers shared by cache/policy.c, cache/policy_http.c and cache/key.c only (never included elsewhere, except their
 * unit tests). The functions declared here are defined in cache/policy.c.
 */
#ifndef EDGEPROXY_CACHE_POLICY_INTERNAL_H
#define EDGEPROXY_CACHE_POLICY_INTERNAL_H

#include <stdint.h>
#include <string.h>
#include "cache/cache.h"

#define CACHE_MAX_TIME 253402300799LL /* 9999-12-31T23:59:59Z: the last time an HTTP date can write */

/*
 * An output buffer that never overflows: writes what fits and counts everything, so the caller learns the length it
 * needed (the "returns the full length" contract of cache.h).
 */
typedef struct cache_w {
    char *buf;
    size_t cap;
    size_t len;
} cache_w_t;

static inline void cache_w_put(cache_w_t *w, const char *s, size_t n)
{
    if (n == 0) /* s may be NULL then, and memcpy(NULL, ..., 0) is undefined */
        return;
    if (w->len < w->cap) {
        size_t room = w->cap - w->len;
        memcpy(w->buf + w->len, s, n < room ? n : room);
    }
    w->len += n;
}

static inline void cache_w_putc(cache_w_t *w, char c)
{
    cache_w_put(w, &c, 1);
}

static inline char cache_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static inline int cache_is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static inline int cache_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* RFC 9110 5.6.2 tchar */
static inline int cache_is_tchar(char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || cache_is_digit(c))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Case-insensitive equality of two byte strings. */
int cache_ieq(const char *a, size_t alen, const char *b, size_t blen);

/* 1 when h's name is `name` (lower-case literal), case-insensitively. */
int cache_hdr_is(const cache_hdr_t *h, const char *name);

/* Removes leading and trailing spaces and tabs. */
void cache_trim(const char **s, size_t *len);

/* v limited to [lo, hi]. */
int64_t cache_clamp(int64_t v, int64_t lo, int64_t hi);

/* Skips to the next ',' that is not inside a quoted string (or the end). */
const char *cache_skip_to_comma(const char *p, const char *end);

/* Skips spaces and tabs. */
const char *cache_skip_ows(const char *p, const char *end);

/* Number of members (empty ones skipped) of all the Vary lines of a response. */
size_t cache_vary_count(const cache_hdr_t *resp, size_t nresp);

#endif
