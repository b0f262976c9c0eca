/*
 * cache/policy_http.c: the HTTP-level pieces of the cache's rules (see the policy section of cache/cache.h): HTTP
 * dates, validators and conditional requests, and the Cache-Status field. Cache-Control, storability, freshness and
 * reuse are in cache/policy.c; Vary and keys are in cache/key.c.
 */
#include <stdint.h>
#include <string.h>
#include "cache/cache.h"
#include "cache/policy_internal.h"

/* ---- HTTP dates ---- */

static const char wkday_names[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char month_names[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

typedef struct cursor {
    const char *p, *end;
} cursor_t;

/* Reads min..max digits. */
static int cur_num(cursor_t *c, int min, int max, int *out)
{
    int n = 0, v = 0;
    while (n < max && c->p != c->end && cache_is_digit(*c->p)) {
        v = v * 10 + (*c->p++ - '0');
        ++n;
    }
    *out = v;
    return n >= min ? n : -1;
}

static int cur_char(cursor_t *c, char ch)
{
    if (c->p == c->end || *c->p != ch)
        return -1;
    ++c->p;
    return 0;
}

/* One or more spaces. */
static int cur_spaces(cursor_t *c)
{
    if (cur_char(c, ' ') != 0)
        return -1;
    while (c->p != c->end && *c->p == ' ')
        ++c->p;
    return 0;
}

/* A run of letters whose first three are one of names[] (case-insensitive); returns the index or -1. */
static int cur_name(cursor_t *c, const char (*names)[4], int nnames)
{
    const char *s = c->p;
    while (c->p != c->end && ((*c->p >= 'a' && *c->p <= 'z') || (*c->p >= 'A' && *c->p <= 'Z')))
        ++c->p;
    if (c->p - s < 3)
        return -1;
    for (int i = 0; i != nnames; ++i)
        if (cache_ieq(s, 3, names[i], 3))
            return i;
    return -1;
}

static int cur_month(cursor_t *c, int *mon)
{
    const char *s = c->p;
    *mon = cur_name(c, month_names, 12);
    return *mon >= 0 && c->p - s == 3 ? 0 : -1;
}

/* "hh:mm:ss" */
static int cur_time(cursor_t *c, int *secs)
{
    int h, m, s;
    if (cur_num(c, 2, 2, &h) < 0 || cur_char(c, ':') != 0 || cur_num(c, 2, 2, &m) < 0 || cur_char(c, ':') != 0 ||
        cur_num(c, 2, 2, &s) < 0 || h > 23 || m > 59 || s > 60)
        return -1;
    *secs = h * 3600 + m * 60 + s;
    return 0;
}

static int cur_gmt(cursor_t *c)
{
    if (cur_spaces(c) != 0 || c->end - c->p != 3 || !cache_ieq(c->p, 3, "GMT", 3))
        return -1;
    c->p += 3;
    return 0;
}

int64_t cache_date_parse(const char *s, size_t len)
{
    cursor_t c;
    int mon, day, year, secs, n;
    static const unsigned char mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    cache_trim(&s, &len);
    c.p = s;
    c.end = s + len;
    if (cur_name(&c, wkday_names, 7) < 0)
        return -1;
    if (cur_char(&c, ',') == 0) {
        if (cur_spaces(&c) != 0 || cur_num(&c, 1, 2, &day) < 0)
            return -1;
        if (c.p != c.end && *c.p == '-') { /* RFC 850: 06-Nov-94 */
            ++c.p;
            if (cur_month(&c, &mon) != 0 || cur_char(&c, '-') != 0 || (n = cur_num(&c, 2, 4, &year)) < 0 || n == 3)
                return -1;
            if (n == 2)
                year += year < 70 ? 2000 : 1900;
        } else if (cur_spaces(&c) != 0 || cur_month(&c, &mon) != 0 || cur_spaces(&c) != 0 ||
                   cur_num(&c, 4, 4, &year) < 0) { /* IMF-fixdate: 06 Nov 1994 */
            return -1;
        }
        if (cur_spaces(&c) != 0 || cur_time(&c, &secs) != 0 || cur_gmt(&c) != 0)
            return -1;
    } else { /* asctime: Nov  6 08:49:37 1994 */
        if (cur_spaces(&c) != 0 || cur_month(&c, &mon) != 0 || cur_spaces(&c) != 0 || cur_num(&c, 1, 2, &day) < 0 ||
            cur_spaces(&c) != 0 || cur_time(&c, &secs) != 0 || cur_spaces(&c) != 0 || cur_num(&c, 4, 4, &year) < 0 || c.p != c.end)
            return -1;
    }
    if (day < 1 || day > mdays[mon] + (mon == 1 && is_leap(year)))
        return -1;
    int64_t t = days_from_civil(year, (unsigned)mon + 1, (unsigned)day) * 86400 + secs;
    return t < 0 ? 0 : t;
}

static char *put2(char *p, unsigned v)
{
    *p++ = (char)('0' + v / 10 % 10);
    *p++ = (char)('0' + v % 10);
    return p;
}

void cache_date_format(int64_t t, char buf[CACHE_DATE_SIZE])
{
    int64_t y, days;
    unsigned m, d, secs;
    char *p = buf;

    t = cache_clamp(t, 0, CACHE_MAX_TIME);
    days = t / 86400;
    secs = (unsigned)(t % 86400);
    civil_from_days(days, &y, &m, &d);
    memcpy(p, wkday_names[(days + 4) % 7], 3); /* 1970-01-01 was a Thursday */
    p += 3;
    *p++ = ',';
    *p++ = ' ';
    p = put2(p, d);
    *p++ = ' ';
    memcpy(p, month_names[m - 1], 3);
    p += 3;
    *p++ = ' ';
    p = put2(p, (unsigned)(y / 100));
    p = put2(p, (unsigned)(y % 100));
    *p++ = ' ';
    p = put2(p, secs / 3600);
    *p++ = ':';
    p = put2(p, secs / 60 % 60);
    *p++ = ':';
    p = put2(p, secs % 60);
    memcpy(p, " GMT", 5);
}

/* ---- validators ---- */

int cache_etag_parse(const char *s, size_t len, cache_etag_t *out)
{
    cache_trim(&s, &len);
    out->weak = 0;
    if (len >= 2 && s[0] == 'W' && s[1] == '/') {
        out->weak = 1;
        s += 2;
        len -= 2;
    }
    if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
        s += 1;
        len -= 2;
    } else if (out->weak || len == 0) {
        return -1;
    } else { /* unquoted: lenient, but not something that looks like a list or a broken tag */
        for (size_t i = 0; i != len; ++i)
            if (s[i] == ',' || cache_is_ows(s[i]))
                return -1;
    }
    for (size_t i = 0; i != len; ++i)
        if (s[i] == '"' || (unsigned char)s[i] < 0x21 || s[i] == 0x7f)
            return -1;
    out->opaque = s;
    out->len = len;
    return 0;
}

/* Scans one member of an If-None-Match list at p (after separators); sets *tag, returns the position after it. */
static const char *scan_etag_member(const char *p, const char *end, cache_etag_t *tag, int *ok)
{
    const char *start = p;

    if (end - p >= 2 && p[0] == 'W' && p[1] == '/')
        p += 2;
    if (p != end && *p == '"') {
        const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
        if (q == NULL) {
            *ok = 0;
            return end;
        }
        p = q + 1;
    } else {
        while (p != end && *p != ',' && !cache_is_ows(*p))
            ++p;
    }
    *ok = cache_etag_parse(start, (size_t)(p - start), tag) == 0;
    return p;
}

int cache_if_none_match(const char *inm, size_t len, const char *etag, size_t etag_len)
{
    const char *p = inm, *end = inm + len;
    cache_etag_t stored;
    int have = etag != NULL && cache_etag_parse(etag, etag_len, &stored) == 0;

    while (p != end) {
        cache_etag_t tag;
        int ok;
        while (p != end && (cache_is_ows(*p) || *p == ','))
            ++p;
        if (p == end)
            break;
        if (*p == '*') {
            const char *q = cache_skip_ows(p + 1, end);
            if (q == end || *q == ',')
                return 1;
        }
        p = scan_etag_member(p, end, &tag, &ok);
        if (ok && have && tag.len == stored.len && memcmp(tag.opaque, stored.opaque, tag.len) == 0)
            return 1;
        p = cache_skip_to_comma(p, end);
    }
    return 0;
}

int cache_not_modified(const cache_hdr_t *req, size_t nreq, const char *etag, size_t etag_len, int64_t last_modified)
{
    int has_inm = 0, match = 0;
    size_t nims = 0;
    const cache_hdr_t *ims = NULL;

    for (size_t i = 0; i != nreq; ++i) {
        if (cache_hdr_is(req + i, "if-none-match")) {
            has_inm = 1;
            match |= cache_if_none_match(req[i].value, req[i].value_len, etag, etag_len);
        } else if (cache_hdr_is(req + i, "if-modified-since")) {
            ims = req + i;
            ++nims;
        }
    }
    if (has_inm)
        return match;
    /* RFC 9110 13.1.3: ignored when invalid or with more than one member */
    if (nims != 1 || last_modified < 0)
        return 0;
    int64_t t = cache_date_parse(ims->value, ims->value_len);
    return t >= 0 && last_modified <= t;
}

/* ---- Cache-Status ---- */

static const char *fwd_name(cache_fwd_t fwd)
{
    static const char *const names[] = {NULL, "uri-miss", "vary-miss", "stale", "request", "bypass"};
    return (unsigned)fwd < sizeof(names) / sizeof(names[0]) ? names[fwd] : NULL;
}

static void put_int(cache_w_t *w, int64_t v)
{
    char tmp[24], *p = tmp + sizeof(tmp);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    cache_w_put(w, p, (size_t)(tmp + sizeof(tmp) - p));
}

/* RFC 8941 sf-token: ( ALPHA / "*" ) *( tchar / ":" / "/" ) */
static int is_sf_token(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '*'))
        return 0;
    for (++s; *s != '\0'; ++s)
        if (!cache_is_tchar(*s) && *s != ':' && *s != '/')
            return 0;
    return 1;
}

/* RFC 8941 sf-string: printable ASCII, with '"' and '\' escaped; other bytes are dropped. */
static void put_sf_string(cache_w_t *w, const char *s)
{
    cache_w_putc(w, '"');
    for (; *s != '\0'; ++s) {
        if (*s < 0x20 || *s > 0x7e)
            continue;
        if (*s == '"' || *s == '\\')
            cache_w_putc(w, '\\');
        cache_w_putc(w, *s);
    }
    cache_w_putc(w, '"');
}

size_t cache_status_format(const cache_status_t *s, char *buf, size_t cap)
{
    cache_w_t w = {buf, cap, 0};
    const char *fwd = fwd_name(s->fwd);

    cache_w_put(&w, CACHE_STATUS_NAME, sizeof(CACHE_STATUS_NAME) - 1);
    if (fwd == NULL) {
        cache_w_put(&w, "; hit", 5);
    } else {
        cache_w_put(&w, "; fwd=", 6);
        cache_w_put(&w, fwd, strlen(fwd));
    }
    if (fwd != NULL && s->fwd_status > 0) {
        cache_w_put(&w, "; fwd-status=", 13);
        put_int(&w, s->fwd_status);
    }
    if (s->has_ttl) {
        cache_w_put(&w, "; ttl=", 6);
        put_int(&w, s->ttl);
    }
    if (s->stored)
        cache_w_put(&w, "; stored", 8);
    if (s->collapsed)
        cache_w_put(&w, "; collapsed", 11);
    if (s->detail != NULL && s->detail[0] != '\0') {
        cache_w_put(&w, "; detail=", 9);
        if (is_sf_token(s->detail))
            cache_w_put(&w, s->detail, strlen(s->detail));
        else
            put_sf_string(&w, s->detail);
    }
    return w.len;
}
