/*
 * cached: the cache on a route, between the handler and the origin (RFC 9111, with cache/ for policy and storage).
 *
 *   GET/HEAD ──key──► store: object (or vary record ──► variant)
 *        fresh / stale-while-revalidate / client's max-stale ──► answer from the store (304, 206/416, HEAD), Age
 *        stale (revalidate) ──► a fill with the stored validators: 304 refreshes the stored headers, 5xx or no origin
 *                               may answer stale (stale-if-error)
 *        nothing ──► a fill: one origin fetch per key whatever the number of waiting requests (fill.c)
 *   other methods ──► forwarded; an unsafe one that succeeds invalidates the URL, Location and Content-Location
 *
 * Every response of a caching route carries Cache-Status (RFC 9211). The stored object's meta blob is ours:
 *
 *   px_cobj_hdr_t, then for an object: the reason phrase, then nheaders x (u32 name_len, u32 value_len, name, value);
 *                  for a vary record: the canonical list of Vary'd field names
 *
 * Lifetimes: request state in the request's pool; a fill's px_cfill_t is malloc'ed with the fill and freed by its
 * dispose op; objects read from the store are copied into the request's pool.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include "cache/cache.h"
#include "proxy/internal.h"

#define PX_COBJ_MAGIC 0x31435045u /* "EPC1" */
#define PX_COBJ_OBJECT 1u
#define PX_COBJ_VARY 2u
#define PX_KEY_MAX 8192
#define PX_VARY_MAX 4096

typedef struct px_cobj_hdr {
    uint32_t magic;
    uint32_t kind;
    cache_meta_t meta;
    uint32_t reason_len;
    uint32_t nheaders;
    uint32_t vary_len; /* vary record: the names */
    uint32_t reserved;
} px_cobj_hdr_t;

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
    char *key, *url, *host;
    size_t key_len;
    cache_hdr_t *req_hdrs; /* the first request's fields, for storability and Vary */
    size_t nreq_hdrs;
    char *req_storage;
    char method[8];
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
    uint8_t stored_id[CACHE_ID_SIZE]; /* where the object was put */
} px_cfill_t;

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* ---- the blob ---- */

static void put_u32(char **p, uint32_t v)
{
    memcpy(*p, &v, 4);
    *p += 4;
}

/* Decodes a meta blob; headers go into pool. Returns -1 when it is not one of ours or is damaged. */
static int cobj_decode(const void *blob, size_t len, void *(*alloc)(size_t, void *), void *alloc_data, px_cobj_t *out)
{
    px_cobj_hdr_t h;
    const char *p = blob, *end = p + len;

    if (len < sizeof(h))
        return -1;
    memcpy(&h, p, sizeof(h));
    p += sizeof(h);
    if (h.magic != PX_COBJ_MAGIC || (h.kind != PX_COBJ_OBJECT && h.kind != PX_COBJ_VARY))
        return -1;
    memset(out, 0, sizeof(*out));
    out->kind = h.kind;
    if (h.kind == PX_COBJ_VARY) {
        if ((size_t)(end - p) < h.vary_len)
            return -1;
        out->vary = h2o_iovec_init(p, h.vary_len);
        return 0;
    }
    if (h.meta.version != CACHE_META_VERSION || (size_t)(end - p) < h.reason_len || h.nheaders > 1000)
        return -1;
    out->meta = h.meta;
    out->reason = h2o_iovec_init(p, h.reason_len);
    p += h.reason_len;
    out->nheaders = h.nheaders;
    if ((out->headers = alloc(sizeof(*out->headers) * (h.nheaders + 1), alloc_data)) == NULL)
        return -1;
    for (size_t i = 0; i != h.nheaders; ++i) {
        uint32_t nl, vl;
        if (end - p < 8)
            return -1;
        memcpy(&nl, p, 4);
        memcpy(&vl, p + 4, 4);
        p += 8;
        if ((size_t)(end - p) < (size_t)nl + vl)
            return -1;
        out->headers[i].name = h2o_iovec_init(p, nl);
        out->headers[i].value = h2o_iovec_init(p + nl, vl);
        p += nl + vl;
    }
    return 0;
}

/* Encodes an object's blob (malloc'ed). */
static char *cobj_encode(const cache_meta_t *meta, h2o_iovec_t reason, const px_fill_hdr_t *headers, size_t nheaders, size_t *len)
{
    px_cobj_hdr_t h = {PX_COBJ_MAGIC, PX_COBJ_OBJECT, *meta, (uint32_t)reason.len, (uint32_t)nheaders, 0, 0};
    size_t n = sizeof(h) + reason.len;
    char *blob, *p;

    for (size_t i = 0; i != nheaders; ++i)
        n += 8 + headers[i].name.len + headers[i].value.len;
    p = blob = h2o_mem_alloc(n);
    memcpy(p, &h, sizeof(h));
    p += sizeof(h);
    memcpy(p, reason.base, reason.len);
    p += reason.len;
    for (size_t i = 0; i != nheaders; ++i) {
        put_u32(&p, (uint32_t)headers[i].name.len);
        put_u32(&p, (uint32_t)headers[i].value.len);
        memcpy(p, headers[i].name.base, headers[i].name.len);
        p += headers[i].name.len;
        memcpy(p, headers[i].value.base, headers[i].value.len);
        p += headers[i].value.len;
    }
    *len = n;
    return blob;
}

static char *vary_record_encode(const char *names, size_t names_len, size_t *len)
{
    px_cobj_hdr_t h;
    char *blob;

    memset(&h, 0, sizeof(h));
    h.magic = PX_COBJ_MAGIC;
    h.kind = PX_COBJ_VARY;
    h.vary_len = (uint32_t)names_len;
    blob = h2o_mem_alloc(sizeof(h) + names_len);
    memcpy(blob, &h, sizeof(h));
    memcpy(blob + sizeof(h), names, names_len);
    *len = sizeof(h) + names_len;
    return blob;
}

/* ---- request helpers ---- */

static cache_hdr_t *request_hdrs(h2o_req_t *req, size_t *n)
{
    cache_hdr_t *h = h2o_mem_alloc_pool(&req->pool, sizeof(*h) * (req->headers.size + 1));
    for (size_t i = 0; i != req->headers.size; ++i) {
        const h2o_header_t *e = req->headers.entries + i;
        h[i] = (cache_hdr_t){e->name->base, e->name->len, e->value.base, e->value.len};
    }
    *n = req->headers.size;
    return h;
}

static const px_fill_hdr_t *find_hdr(const px_fill_hdr_t *h, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i != n; ++i)
        if (h2o_memis(h[i].name.base, h[i].name.len, name, len))
            return h + i;
    return NULL;
}

static void *pool_alloc(size_t size, void *pool)
{
    return h2o_mem_alloc_pool((h2o_mem_pool_t *)pool, size);
}

static void set_cache_status(h2o_req_t *req, px_req_t *st, const cache_status_t *cs)
{
    char buf[256];
    size_t n = cache_status_format(cs, buf, sizeof(buf));
    if (n > sizeof(buf))
        n = sizeof(buf);
    st->cache_status = h2o_strdup(&req->pool, buf, n);
}

/* Response header fields that are never stored nor sent on: hop-by-hop, targeted at us, surrogate keys. */
static int drop_response_field(h2o_iovec_t name)
{
    const h2o_token_t *token = h2o_lookup_token(name.base, name.len);
    if (token != NULL && (token->proxy_should_drop_for_res || token == H2O_TOKEN_CONTENT_LENGTH || token == H2O_TOKEN_SERVER))
        return 1;
    return cache_hdr_is_targeted(name.base, name.len) || h2o_memis(name.base, name.len, H2O_STRLIT("surrogate-key")) ||
           h2o_memis(name.base, name.len, H2O_STRLIT("cache-tag"));
}

/* Adds stored headers to the response (the strings must outlive the response). */
static void add_headers(h2o_req_t *req, const px_fill_hdr_t *h, size_t n, int not_modified)
{
    for (size_t i = 0; i != n; ++i) {
        if (drop_response_field(h[i].name) || h2o_memis(h[i].name.base, h[i].name.len, H2O_STRLIT("age")))
            continue;
        if (not_modified && (h2o_memis(h[i].name.base, h[i].name.len, H2O_STRLIT("content-type")) ||
                             h2o_memis(h[i].name.base, h[i].name.len, H2O_STRLIT("content-encoding"))))
            continue;
        h2o_add_header_by_str(&req->pool, &req->res.headers, h[i].name.base, h[i].name.len, 1, NULL, h[i].value.base,
                              h[i].value.len);
    }
}

static void add_age(h2o_req_t *req, int64_t age)
{
    char *buf = h2o_mem_alloc_pool(&req->pool, 24);
    int n = snprintf(buf, 24, "%lld", (long long)(age < 0 ? 0 : age));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_AGE, NULL, buf, (size_t)n);
}

static int64_t stored_last_modified(const px_fill_hdr_t *h, size_t n)
{
    const px_fill_hdr_t *lm = find_hdr(h, n, H2O_STRLIT("last-modified"));
    return lm != NULL ? cache_date_parse(lm->value.base, lm->value.len) : -1;
}

/* 1 when the client's conditionals make this a 304. */
static int client_not_modified(h2o_req_t *req, const px_fill_hdr_t *h, size_t n)
{
    size_t nreq;
    cache_hdr_t *rh;
    const px_fill_hdr_t *etag = find_hdr(h, n, H2O_STRLIT("etag"));

    if (h2o_find_header(&req->headers, H2O_TOKEN_IF_NONE_MATCH, -1) == -1 &&
        h2o_find_header(&req->headers, H2O_TOKEN_IF_MODIFIED_SINCE, -1) == -1)
        return 0;
    rh = request_hdrs(req, &nreq);
    return cache_not_modified(rh, nreq, etag != NULL ? etag->value.base : NULL, etag != NULL ? etag->value.len : 0,
                              stored_last_modified(h, n));
}

/* ---- answering from the store ---- */

/* Parses "bytes=a-b" (one range) against len. Returns 1 with [*from, *to], 0 for no usable range, -1 unsatisfiable. */
static int parse_range(h2o_iovec_t v, size_t len, size_t *from, size_t *to)
{
    const char *p = v.base, *end = v.base + v.len, *dash;
    uint64_t a = 0, b = 0;
    int has_a = 0, has_b = 0;

    if (v.len < 7 || strncasecmp(p, "bytes=", 6) != 0)
        return 0;
    p += 6;
    if (memchr(p, ',', end - p) != NULL || (dash = memchr(p, '-', end - p)) == NULL)
        return 0; /* several ranges: the whole representation is a valid answer */
    for (; p < dash; ++p, has_a = 1) {
        if (*p < '0' || *p > '9' || a > UINT64_MAX / 10 - 10)
            return 0;
        a = a * 10 + (uint64_t)(*p - '0');
    }
    for (p = dash + 1; p < end; ++p, has_b = 1) {
        if (*p < '0' || *p > '9' || b > UINT64_MAX / 10 - 10)
            return 0;
        b = b * 10 + (uint64_t)(*p - '0');
    }
    if (!has_a && !has_b)
        return 0;
    if (!has_a) { /* the last b bytes */
        if (b == 0 || len == 0)
            return -1;
        *from = b >= len ? 0 : len - (size_t)b;
        *to = len - 1;
        return 1;
    }
    if (has_b && b < a)
        return 0;
    if (a >= len)
        return -1;
    *from = (size_t)a;
    *to = !has_b || b >= len ? len - 1 : (size_t)b;
    return 1;
}

/*
 * Applies the request's single Range (without If-Range) to a 200 of len bytes: sets 206 or 416, Content-Range and the
 * content length. Returns 1 with [*from, *to] for a 206, -1 for a 416, 0 when the whole representation goes.
 */
static int apply_range(h2o_req_t *req, size_t len, size_t *from, size_t *to)
{
    ssize_t ri;
    char *cr;
    int r;

    if (req->res.status != 200 || (ri = h2o_find_header(&req->headers, H2O_TOKEN_RANGE, -1)) == -1 ||
        h2o_find_header(&req->headers, H2O_TOKEN_IF_RANGE, -1) != -1)
        return 0;
    if ((r = parse_range(req->headers.entries[ri].value, len, from, to)) == 0)
        return 0;
    cr = h2o_mem_alloc_pool(&req->pool, 64);
    if (r < 0) {
        req->res.status = 416;
        req->res.reason = "Range Not Satisfiable";
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_RANGE, NULL, cr,
                       (size_t)snprintf(cr, 64, "bytes */%zu", len));
        req->res.content_length = 0;
    } else {
        req->res.status = 206;
        req->res.reason = "Partial Content";
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_RANGE, NULL, cr,
                       (size_t)snprintf(cr, 64, "bytes %zu-%zu/%zu", *from, *to, len));
        req->res.content_length = *to - *from + 1;
    }
    return r;
}

/* Sends a stored object (body in the pool) with Age and Cache-Status. */
static void serve_object(h2o_req_t *req, px_req_t *st, const px_cobj_t *obj, const void *body, size_t body_len, int64_t age,
                         const cache_status_t *cs)
{
    static h2o_generator_t generator = {NULL, NULL};
    int is_head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    h2o_iovec_t vec = h2o_iovec_init(body, body_len);

    set_cache_status(req, st, cs);
    st->from_origin = 1; /* the origin's own answer (an error status included) */
    req->res.status = obj->meta.status;
    req->res.reason = obj->reason.len != 0 ? h2o_strdup(&req->pool, obj->reason.base, obj->reason.len).base : "OK";
    if (obj->meta.status == 200 && client_not_modified(req, obj->headers, obj->nheaders)) {
        req->res.status = 304;
        req->res.reason = "Not Modified";
        add_headers(req, obj->headers, obj->nheaders, 1);
        add_age(req, age);
        h2o_start_response(req, &generator);
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    add_headers(req, obj->headers, obj->nheaders, 0);
    add_age(req, age);
    req->res.content_length = body_len;
    {
        size_t from, to;
        int r = apply_range(req, body_len, &from, &to);
        if (r < 0)
            vec.len = 0;
        else if (r > 0)
            vec = h2o_iovec_init((const char *)body + from, to - from + 1);
    }
    h2o_start_response(req, &generator);
    h2o_send(req, &vec, is_head || vec.len == 0 ? 0 : 1, H2O_SEND_STATE_FINAL);
}

/* ---- fills ---- */

static void cfill_dispose(px_fill_t *fill)
{
    px_cfill_t *cf = fill->user;
    if (cf == NULL)
        return;
    free(cf->key);
    free(cf->url);
    free(cf->host);
    free(cf->req_storage);
    free(cf->vary_names);
    free(cf->vary_key);
    free(cf->stale_blob);
    free(cf->stale.headers);
    free(cf->reason);
    free(cf->tag_storage);
    free(cf);
}

/* Copies headers into the fill's head storage. */
static void set_fill_head(px_fill_t *fill, int status, const px_fill_hdr_t *h, size_t n, size_t content_length)
{
    size_t total = 0, i, k = 0;
    char *p;

    for (i = 0; i != n; ++i)
        total += h[i].name.len + h[i].value.len;
    fill->headers = h2o_mem_alloc(sizeof(*fill->headers) * (n + 1) + total + 1);
    p = (char *)(fill->headers + n + 1);
    fill->head_storage = (char *)fill->headers;
    for (i = 0; i != n; ++i) {
        if (drop_response_field(h[i].name))
            continue;
        memcpy(p, h[i].name.base, h[i].name.len);
        fill->headers[k].name = h2o_iovec_init(p, h[i].name.len);
        p += h[i].name.len;
        memcpy(p, h[i].value.base, h[i].value.len);
        fill->headers[k].value = h2o_iovec_init(p, h[i].value.len);
        p += h[i].value.len;
        ++k;
    }
    fill->nheaders = k;
    fill->status = status;
    fill->content_length = content_length;
}

/* The stale object answers: its reason phrase (not NUL-terminated in the blob). */
static void set_stale_reason(px_cfill_t *cf)
{
    if (cf->reason == NULL && cf->stale.reason.len != 0)
        cf->reason = h2o_strdup(NULL, cf->stale.reason.base, cf->stale.reason.len).base;
}

/* The origin's head as cache_hdr_t (names lower-cased in place: phr gives them as sent) and as px_fill_hdr_t. */
static size_t convert_head(const px_fetch_head_t *head, cache_hdr_t *ch, px_fill_hdr_t *fh, char *lower)
{
    for (size_t i = 0; i != head->nheaders; ++i) {
        const struct phr_header *h = head->headers + i;
        memcpy(lower, h->name, h->name_len);
        h2o_strtolower(lower, h->name_len);
        ch[i] = (cache_hdr_t){lower, h->name_len, h->value, h->value_len};
        fh[i] = (px_fill_hdr_t){h2o_iovec_init(lower, h->name_len), h2o_iovec_init(h->value, h->value_len)};
        lower += h->name_len;
    }
    return head->nheaders;
}

/* RFC 9111 4.3.4: the stored fields, updated with those of the 304. */
static px_fill_hdr_t *merge_304(const px_cobj_t *stored, const px_fill_hdr_t *h304, size_t n304, size_t *n)
{
    px_fill_hdr_t *out = h2o_mem_alloc(sizeof(*out) * (stored->nheaders + n304 + 1));
    size_t k = 0;

    for (size_t i = 0; i != stored->nheaders; ++i) {
        int replaced = 0;
        for (size_t j = 0; j != n304 && !replaced; ++j)
            replaced = h2o_memis(stored->headers[i].name.base, stored->headers[i].name.len, h304[j].name.base, h304[j].name.len);
        if (!replaced)
            out[k++] = stored->headers[i];
    }
    for (size_t j = 0; j != n304; ++j)
        if (!h2o_memis(h304[j].name.base, h304[j].name.len, H2O_STRLIT("content-length")))
            out[k++] = h304[j];
    *n = k;
    return out;
}

/* The object's surrogate keys: Surrogate-Key (space-separated) and Cache-Tag (comma-separated). */
static void collect_tags(px_cfill_t *cf, const px_fill_hdr_t *h, size_t n)
{
    size_t total = 0;
    char *p;

    for (size_t i = 0; i != n; ++i)
        if (h2o_memis(h[i].name.base, h[i].name.len, H2O_STRLIT("surrogate-key")) ||
            h2o_memis(h[i].name.base, h[i].name.len, H2O_STRLIT("cache-tag")))
            total += h[i].value.len + 1;
    if (total == 0)
        return;
    p = cf->tag_storage = h2o_mem_alloc(total + 1);
    for (size_t i = 0; i != n; ++i) {
        int space = h2o_memis(h[i].name.base, h[i].name.len, H2O_STRLIT("surrogate-key"));
        if (!space && !h2o_memis(h[i].name.base, h[i].name.len, H2O_STRLIT("cache-tag")))
            continue;
        const char *v = h[i].value.base, *end = v + h[i].value.len;
        while (v < end && cf->ntags != sizeof(cf->tags) / sizeof(cf->tags[0])) {
            while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
                ++v;
            const char *t = v;
            while (v < end && *v != (space ? ' ' : ',') && *v != '\t' && !(space && *v == ','))
                ++v;
            const char *te = v;
            while (te > t && te[-1] == ' ')
                --te;
            if (te == t)
                continue;
            memcpy(p, t, te - t);
            p[te - t] = '\0';
            cf->tags[cf->ntags++] = p;
            p += te - t + 1;
        }
    }
}

static int cfill_on_head(px_fill_t *fill, const px_fetch_head_t *head)
{
    px_cfill_t *cf = fill->user;
    size_t n = head->nheaders, nh;
    cache_hdr_t *ch = h2o_mem_alloc(sizeof(*ch) * (n + 1));
    px_fill_hdr_t *fh = h2o_mem_alloc(sizeof(*fh) * (n + 1)), *use = fh;
    size_t namelen = 0;
    for (size_t i = 0; i != n; ++i)
        namelen += head->headers[i].name_len;
    char *lower = h2o_mem_alloc(namelen + 1);
    int status = head->status, state = PX_FILL_STREAMING;
    h2o_iovec_t reason = head->reason;
    size_t content_length = head->content_length;

    nh = convert_head(head, ch, fh, lower);
    cf->origin_status = head->status;
    cf->request_time = cf->request_time != 0 ? cf->request_time : now_s();

    if (cf->has_stale && status == 304) {
        /* the stored object is still good: refresh its headers and answer with it */
        size_t nm;
        px_fill_hdr_t *merged = merge_304(&cf->stale, fh, nh, &nm);
        cache_hdr_t *mh = h2o_mem_alloc(sizeof(*mh) * (nm + 1));
        for (size_t i = 0; i != nm; ++i)
            mh[i] = (cache_hdr_t){merged[i].name.base, merged[i].name.len, merged[i].value.base, merged[i].value.len};
        cache_exchange_t x = {cf->method, strlen(cf->method), cf->req_hdrs, cf->nreq_hdrs, cf->stale.meta.status, mh,
                              nm,         cf->request_time,   now_s()};
        cache_route_policy_t pol = {cf->route->cache.default_ttl_s, cf->route->cache.override,
                                    cf->route->cache.stale_while_revalidate_s, cf->route->cache.stale_if_error_s};
        if (cache_storable(&x, &pol, &cf->plan)) {
            size_t bloblen;
            char *blob = cobj_encode(&cf->plan.meta, cf->stale.reason, merged, nm, &bloblen);
            int64_t life = cf->plan.meta.freshness_lifetime + cf->plan.meta.swr + cf->plan.meta.sie;
            cache_store_update_meta(cf->srv->cache_store, cf->stale_id, blob, bloblen, now_ms(), (now_s() + life + 60) * 1000);
            free(blob);
            cf->storable = 1;
        }
        set_stale_reason(cf);
        set_fill_head(fill, cf->stale.meta.status, merged, nm, cf->stale_body_len);
        free(merged);
        free(mh);
        cf->serve_stale = 1;
        cf->fwd = CACHE_FWD_STALE;
        snprintf(cf->detail, sizeof(cf->detail), "revalidated");
        goto Done;
    }
    if (cf->has_stale && status >= 500 && cache_stale_if_error(&cf->stale.meta, NULL, now_s())) {
        set_stale_reason(cf);
        set_fill_head(fill, cf->stale.meta.status, cf->stale.headers, cf->stale.nheaders, cf->stale_body_len);
        cf->serve_stale = 1;
        cf->ignore_body = 1;
        cf->fwd = CACHE_FWD_STALE;
        snprintf(cf->detail, sizeof(cf->detail), "stale-if-error");
        goto Done;
    }

    {
        cache_exchange_t x = {cf->method, strlen(cf->method), cf->req_hdrs, cf->nreq_hdrs, status, ch,
                              nh,         cf->request_time,   now_s()};
        cache_route_policy_t pol = {cf->route->cache.default_ttl_s, cf->route->cache.override,
                                    cf->route->cache.stale_while_revalidate_s, cf->route->cache.stale_if_error_s};
        cf->storable = cache_storable(&x, &pol, &cf->plan);
        if (!cf->storable) {
            snprintf(cf->detail, sizeof(cf->detail), "%s", cf->plan.reason);
            state = PX_FILL_RELEASED;
        } else if (content_length != SIZE_MAX && content_length > cf->srv->conf->cache.max_object_size) {
            cf->too_big = 1;
            snprintf(cf->detail, sizeof(cf->detail), "too-big");
        }
        if (cf->storable) {
            char names[PX_VARY_MAX], vkey[PX_VARY_MAX];
            size_t nl = cache_vary_names(ch, nh, names, sizeof(names)), kl;
            if (nl > sizeof(names)) {
                cf->storable = 0;
                snprintf(cf->detail, sizeof(cf->detail), "vary-too-long");
                state = PX_FILL_RELEASED;
            } else if (nl != 0) {
                kl = cache_vary_key(names, nl, cf->req_hdrs, cf->nreq_hdrs, vkey, sizeof(vkey));
                if (kl > sizeof(vkey)) {
                    cf->storable = 0;
                    state = PX_FILL_RELEASED;
                } else {
                    cf->vary_names = h2o_strdup(NULL, names, nl).base;
                    cf->vary_names_len = nl;
                    cf->vary_key = h2o_strdup(NULL, vkey, kl).base;
                    cf->vary_key_len = kl;
                }
            }
        }
        /* the stored copy leaves out private="..." fields (and Set-Cookie under override) */
        if (cf->storable && cf->plan.nstrip != 0) {
            size_t k = 0;
            use = h2o_mem_alloc(sizeof(*use) * (nh + 1));
            for (size_t i = 0; i != nh; ++i) {
                int strip = 0;
                for (size_t j = 0; j != cf->plan.nstrip && !strip; ++j)
                    strip = h2o_lcstris(fh[i].name.base, fh[i].name.len, cf->plan.strip[j].base, cf->plan.strip[j].len);
                if (!strip)
                    use[k++] = fh[i];
            }
            nh = k;
        }
        cf->reason = h2o_strdup(NULL, reason.base, reason.len).base;
        collect_tags(cf, fh, head->nheaders);
        set_fill_head(fill, status, use, nh, content_length);
    }
Done:
    if (use != fh)
        free(use);
    free(fh);
    free(ch);
    free(lower);
    return state;
}

static int cfill_on_body(px_fill_t *fill, size_t len)
{
    px_cfill_t *cf = fill->user;
    if (cf->ignore_body)
        return 1; /* a 5xx's body, while the stale object answers */
    cf->body_len += len;
    if (cf->body_len > cf->srv->conf->cache.max_object_size)
        atomic_store(&cf->too_big, 1); /* (detail= is written before the head is published only: not here) */
    return 0;
}

static void store_object(px_fill_t *fill, px_cfill_t *cf)
{
    size_t bloblen, body_len = atomic_load(&fill->body_len);
    char *blob = cobj_encode(&cf->plan.meta, h2o_iovec_init(cf->reason, cf->reason != NULL ? strlen(cf->reason) : 0), fill->headers,
                             fill->nheaders, &bloblen);
    char *body = h2o_mem_alloc(body_len + 1);
    uint8_t vid[CACHE_ID_SIZE];
    const uint8_t *id = cf->pid;
    int64_t life = cf->plan.meta.freshness_lifetime + cf->plan.meta.swr + cf->plan.meta.sie;
    cache_store_object_t obj;

    px_fill_copy_body(fill, 0, body, body_len);
    if (cf->vary_names != NULL) {
        size_t vlen;
        char *vrec = vary_record_encode(cf->vary_names, cf->vary_names_len, &vlen);
        cache_store_object_t vo = {vrec, vlen, NULL, 0, cf->url, cf->host, NULL, 0, now_ms(), (now_s() + life + 60) * 1000, 0};
        cache_store_put(cf->srv->cache_store, cf->pid, &vo, 0);
        free(vrec);
        cache_key_digest(cf->key, cf->key_len, cf->vary_key, cf->vary_key_len, vid);
        id = vid;
    }
    memcpy(cf->stored_id, id, CACHE_ID_SIZE);
    obj = (cache_store_object_t){
        blob, bloblen, body, body_len, cf->url, cf->host, cf->tags, cf->ntags, now_ms(), (now_s() + life + 60) * 1000, 0};
    cache_store_put(cf->srv->cache_store, id, &obj, CACHE_STORE_PUT_TAKE_BODY);
    free(blob);
}

static int cfill_on_end(px_fill_t *fill, const char *err, int timeout)
{
    px_cfill_t *cf = fill->user;

    if (cf->serve_stale) {
        /* the answer is the stored object: its body (the 304 had none; a 5xx's was ignored) */
        if (atomic_load(&fill->body_len) == 0 && cf->stale_body_len != 0)
            px_fill_append(fill, cf->stale_body, cf->stale_body_len);
        return PX_FILL_DONE;
    }
    if (err != NULL) {
        cf->err = err;
        cf->err_timeout = timeout;
        if (!fill->has_head && cf->has_stale && cache_stale_if_error(&cf->stale.meta, NULL, now_s())) {
            set_stale_reason(cf);
            set_fill_head(fill, cf->stale.meta.status, cf->stale.headers, cf->stale.nheaders, cf->stale_body_len);
            fill->has_head = 1;
            cf->serve_stale = 1;
            cf->fwd = CACHE_FWD_STALE;
            snprintf(cf->detail, sizeof(cf->detail), "stale-if-error");
            px_fill_publish_head(fill, PX_FILL_STREAMING);
            px_fill_append(fill, cf->stale_body, cf->stale_body_len);
            return PX_FILL_DONE;
        }
        return PX_FILL_FAILED;
    }
    if (cf->storable && !cf->too_big && !fill->released) {
        store_object(fill, cf);
        fill->linger = cf->plan.meta.freshness_lifetime > 1 && (cf->plan.meta.flags & CACHE_META_NO_CACHE) == 0;
    }
    return PX_FILL_DONE;
}

static void *malloc_into(size_t size, void *slot)
{
    return *(void **)slot = malloc(size);
}

/* Until the store has the object, the complete fill answers for it. */
static int cfill_keep_lingering(px_fill_t *fill)
{
    px_cfill_t *cf = fill->user;
    cache_store_item_t item;
    void *block = NULL;
    int found = cache_store_get_meta(cf->srv->cache_store, cf->stored_id, malloc_into, &block, &item) == 0;
    free(block);
    return !found;
}

static const px_fill_ops_t cfill_ops = {cfill_on_head, cfill_on_body, cfill_on_end, cfill_keep_lingering, cfill_dispose};

/* ---- requests streaming a fill ---- */

typedef struct px_csub {
    px_req_t *st;
    px_origin_t *origin;
    int creator;
    const char *key; /* the cache key (request pool) */
    size_t key_len;
} px_csub_t;

static int csub_on_head(px_sub_t *sub, px_fill_t *fill)
{
    px_csub_t *cs = sub->data;
    px_cfill_t *cf = fill->user;
    h2o_req_t *req = sub->req;
    cache_status_t c = {0};
    /* a fill already complete and stored answers like the store: a hit */
    int late = !cs->creator && atomic_load(&fill->state) == PX_FILL_DONE && cf->storable && !cf->too_big && !cf->serve_stale;

    if (!cs->creator && cf->vary_key != NULL) { /* the answer varies: is it this request's variant? */
        char vkey[PX_VARY_MAX];
        size_t nreq, vl;
        cache_hdr_t *rh = request_hdrs(req, &nreq);
        vl = cache_vary_key(cf->vary_names, cf->vary_names_len, rh, nreq, vkey, sizeof(vkey));
        if (vl != cf->vary_key_len || memcmp(vkey, cf->vary_key, vl) != 0)
            return -1;
    }
    c.fwd = cf->fwd;
    c.fwd_status = cf->origin_status;
    c.stored = cf->storable && !cf->too_big;
    c.collapsed = !cs->creator;
    c.detail = cf->detail[0] != '\0' ? cf->detail : NULL;
    if (late) {
        c = (cache_status_t){.fwd = CACHE_FWD_NONE, .has_ttl = 1, .ttl = cache_meta_ttl(&cf->plan.meta, now_s())};
    } else if (cf->serve_stale) {
        c.has_ttl = 1;
        c.ttl = cf->storable ? cf->plan.meta.freshness_lifetime : cache_meta_ttl(&cf->stale.meta, now_s());
    }
    set_cache_status(req, cs->st, &c);
    cs->st->from_origin = 1;
    req->res.status = fill->status;
    req->res.reason = cf->reason != NULL ? cf->reason : "OK";
    if (fill->status == 200 && client_not_modified(req, fill->headers, fill->nheaders)) {
        req->res.status = 304;
        req->res.reason = "Not Modified";
        add_headers(req, fill->headers, fill->nheaders, 1);
        sub->no_body = 1;
        return 0;
    }
    add_headers(req, fill->headers, fill->nheaders, 0);
    if (late)
        add_age(req, cache_meta_age(&cf->plan.meta, now_s()));
    else if (cf->serve_stale && !cf->storable)
        add_age(req, cache_meta_age(&cf->stale.meta, now_s()));
    req->res.content_length = fill->content_length;
    /* a range of a complete object, or of one whose length the origin announced (the bytes come as they arrive) */
    if (late || fill->content_length != SIZE_MAX) {
        size_t from, to;
        int r = apply_range(req, late ? atomic_load(&fill->body_len) : fill->content_length, &from, &to);
        if (r < 0) {
            sub->no_body = 1;
        } else if (r > 0) {
            sub->sent = from;
            sub->end = to + 1;
        }
    }
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")))
        sub->no_body = 1;
    return 0;
}

static void join_fill(h2o_req_t *req, px_req_t *st, px_origin_t *origin, const char *key, size_t klen, const uint8_t *pid,
                      const uint8_t *fill_key, const cache_store_item_t *stale, const uint8_t *stale_id, int fwd, int *created);
static void start_fill(px_fill_t *fill, h2o_req_t *req, px_req_t *st, px_origin_t *origin, const char *key, size_t klen,
                       const uint8_t *pid, const cache_store_item_t *stale_item, const uint8_t *stale_id, int fwd);

static void csub_on_release(px_sub_t *sub, px_fill_t *fill, int state)
{
    px_csub_t *cs = sub->data;
    px_cfill_t *cf = fill->user;
    h2o_req_t *req = sub->req;
    cache_status_t c = {0};

    c.fwd = cf->fwd;
    c.collapsed = !cs->creator;
    if (state == PX_FILL_FAILED) {
        c.detail = "origin-error";
        set_cache_status(req, cs->st, &c);
        cs->st->upstream_ms = fill->fetch.head_ms;
        if (cf->err_timeout)
            px_send_error(req, 504, "Gateway Timeout", "Origin timed out");
        else
            px_send_error(
                req, 502, "Bad Gateway",
                h2o_concat(&req->pool, h2o_iovec_init(H2O_STRLIT("Origin error: ")), h2o_iovec_init(cf->err, strlen(cf->err) + 1))
                    .base);
        return;
    }
    if (state == PX_FILL_RELEASED) { /* not shareable: this request goes to the origin on its own */
        c.detail = cf->detail[0] != '\0' ? cf->detail : NULL;
        c.collapsed = 0;
        set_cache_status(req, cs->st, &c);
        px_upstream_forward(req, cs->st, cs->origin);
        return;
    }
    /* another variant: the fill of this request's own variant (made or joined) */
    char vkey[PX_VARY_MAX];
    size_t nreq, vl;
    cache_hdr_t *rh = request_hdrs(req, &nreq);
    uint8_t vid[CACHE_ID_SIZE];
    int created;
    vl = cache_vary_key(cf->vary_names, cf->vary_names_len, rh, nreq, vkey, sizeof(vkey));
    if (vl > sizeof(vkey)) {
        c.fwd = CACHE_FWD_VARY_MISS;
        c.collapsed = 0;
        set_cache_status(req, cs->st, &c);
        px_upstream_forward(req, cs->st, cs->origin);
        return;
    }
    cache_key_digest(cs->key, cs->key_len, vkey, vl, vid);
    join_fill(req, cs->st, cs->origin, cs->key, cs->key_len, cf->pid, vid, NULL, NULL, CACHE_FWD_VARY_MISS, &created);
}

static const px_sub_ops_t csub_ops = {csub_on_head, csub_on_release};

/*
 * Makes the request stream the fill of fill_key (pid, or a variant's id), joining a running one or starting it. A
 * complete fill that the client's directives would not take from the store either (no-cache, max-age=0...) is set
 * aside for a new one.
 */
static void join_fill(h2o_req_t *req, px_req_t *st, px_origin_t *origin, const char *key, size_t klen, const uint8_t *pid,
                      const uint8_t *fill_key, const cache_store_item_t *stale, const uint8_t *stale_id, int fwd, int *created)
{
    px_thread_t *th = px_thread_of(req);
    px_fill_t *fill = px_fill_join(th, fill_key, created);
    px_csub_t *cs;

    if (!*created && atomic_load(&fill->state) == PX_FILL_DONE && fill->user != NULL) {
        px_cfill_t *cf = fill->user;
        cache_cc_t rcc;
        cache_reuse_info_t info;
        size_t nreq;
        cache_hdr_t *rh = request_hdrs(req, &nreq);
        cache_request_cc(&rcc, rh, nreq);
        if (!cf->storable || cache_reuse(&cf->plan.meta, &rcc, now_s(), &info) == CACHE_REUSE_REVALIDATE) {
            px_fill_leave_table(fill);
            px_fill_unref(fill);
            fill = px_fill_join(th, fill_key, created);
            fwd = CACHE_FWD_REQUEST;
        }
    }
    cs = h2o_mem_alloc_pool(&req->pool, sizeof(*cs));
    *cs = (px_csub_t){st, origin, *created, key, klen};
    gettimeofday(&st->upstream_start, NULL);
    if (*created) {
        px_sub_attach(req, fill, 1, &csub_ops, cs);
        atomic_fetch_add(&fill->refs, 1); /* start_fill needs the fill past the attach, which may end the request */
        start_fill(fill, req, st, origin, key, klen, pid, stale, stale_id, fwd);
        px_fill_unref(fill);
    } else {
        px_sub_attach(req, fill, 0, &csub_ops, cs);
    }
}

/* ---- the entry ---- */

static void *malloc_alloc(size_t size, void *unused)
{
    (void)unused;
    return malloc(size);
}

/* The URL as the store indexes it (for purges): lower-cased authority, then the path with its query. */
static char *store_url(h2o_req_t *req, size_t *hostlen)
{
    char *url = h2o_mem_alloc(req->authority.len + req->path.len + 1);
    memcpy(url, req->authority.base, req->authority.len);
    h2o_strtolower(url, req->authority.len);
    memcpy(url + req->authority.len, req->path.base, req->path.len);
    url[req->authority.len + req->path.len] = '\0';
    *hostlen = req->authority.len;
    return url;
}

/* Sets up a new fill's cache state and starts its fetch; stale_item (with its id) is the stored object to revalidate. */
static void start_fill(px_fill_t *fill, h2o_req_t *req, px_req_t *st, px_origin_t *origin, const char *key, size_t klen,
                       const uint8_t *pid, const cache_store_item_t *stale_item, const uint8_t *stale_id, int fwd)
{
    px_thread_t *th = px_thread_of(req);
    px_cfill_t *cf = h2o_mem_alloc(sizeof(*cf));
    size_t hostlen, total = 0, i;
    char *p, extra[1024];
    int extralen = 0;

    memset(cf, 0, sizeof(*cf));
    cf->srv = th->srv;
    cf->route = st->match->route;
    memcpy(cf->pid, pid, CACHE_ID_SIZE);
    cf->key = h2o_strdup(NULL, key, klen).base;
    cf->key_len = klen;
    cf->url = store_url(req, &hostlen);
    cf->host = h2o_strdup(NULL, cf->url, hostlen).base;
    strcpy(cf->method, "GET");
    cf->request_time = now_s();
    cf->fwd = fwd;
    /* the client's fields, for storability (Authorization, no-store) and the variant */
    for (i = 0; i != req->headers.size; ++i)
        total += req->headers.entries[i].name->len + req->headers.entries[i].value.len;
    cf->req_hdrs = h2o_mem_alloc(sizeof(*cf->req_hdrs) * (req->headers.size + 1) + total + 1);
    cf->req_storage = (char *)cf->req_hdrs;
    p = (char *)(cf->req_hdrs + req->headers.size + 1);
    for (i = 0; i != req->headers.size; ++i) {
        const h2o_header_t *e = req->headers.entries + i;
        memcpy(p, e->name->base, e->name->len);
        memcpy(p + e->name->len, e->value.base, e->value.len);
        cf->req_hdrs[i] = (cache_hdr_t){p, e->name->len, p + e->name->len, e->value.len};
        p += e->name->len + e->value.len;
    }
    cf->nreq_hdrs = req->headers.size;
    if (stale_item != NULL) {
        size_t n = stale_item->meta_len + stale_item->body_len;
        cf->stale_blob = h2o_mem_alloc(n + 1);
        memcpy(cf->stale_blob, stale_item->meta, stale_item->meta_len);
        if (stale_item->body_len != 0)
            memcpy(cf->stale_blob + stale_item->meta_len, stale_item->body, stale_item->body_len);
        if (cobj_decode(cf->stale_blob, stale_item->meta_len, malloc_alloc, NULL, &cf->stale) == 0) {
            const px_fill_hdr_t *etag = find_hdr(cf->stale.headers, cf->stale.nheaders, H2O_STRLIT("etag"));
            const px_fill_hdr_t *lm = find_hdr(cf->stale.headers, cf->stale.nheaders, H2O_STRLIT("last-modified"));
            cf->has_stale = 1;
            memcpy(cf->stale_id, stale_id, CACHE_ID_SIZE);
            cf->stale_body = cf->stale_blob + stale_item->meta_len;
            cf->stale_body_len = stale_item->body_len;
            if (etag != NULL && etag->value.len < 400)
                extralen += snprintf(extra + extralen, sizeof(extra) - extralen, "if-none-match: %.*s\r\n", (int)etag->value.len,
                                     etag->value.base);
            if (lm != NULL && lm->value.len < 100)
                extralen += snprintf(extra + extralen, sizeof(extra) - extralen, "if-modified-since: %.*s\r\n", (int)lm->value.len,
                                     lm->value.base);
        }
    }
    fill->ops = &cfill_ops;
    fill->user = cf;
    px_fill_start(fill, th, st->match->route_id,
                  px_origin_request(req, st, origin, 1, h2o_iovec_init(h2o_strdup(&req->pool, extra, extralen).base, extralen)), 1);
}

static cache_key_opts_t key_opts(const conf_route_cache_t *rc)
{
    static const cache_query_mode_t modes[] = {[CONF_QUERY_ALL] = CACHE_QUERY_ALL,
                                               [CONF_QUERY_NONE] = CACHE_QUERY_NONE,
                                               [CONF_QUERY_ONLY] = CACHE_QUERY_ONLY,
                                               [CONF_QUERY_EXCEPT] = CACHE_QUERY_EXCEPT};
    return (cache_key_opts_t){modes[rc->query], (const char *const *)rc->query_params, rc->nquery_params,
                              rc->sort_query,   (const char *const *)rc->key_headers,  rc->nkey_headers};
}

static int is_unsafe(h2o_iovec_t m)
{
    return h2o_memis(m.base, m.len, H2O_STRLIT("POST")) || h2o_memis(m.base, m.len, H2O_STRLIT("PUT")) ||
           h2o_memis(m.base, m.len, H2O_STRLIT("DELETE")) || h2o_memis(m.base, m.len, H2O_STRLIT("PATCH"));
}

void px_cache_handle(h2o_req_t *req, px_req_t *st, px_origin_t *origin)
{
    px_thread_t *th = px_thread_of(req);
    cache_store_t *store = th->srv->cache_store;
    const conf_route_t *route = st->match->route;
    cache_status_t c = {0};
    int is_head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    size_t nreq, klen;
    cache_hdr_t *rh;
    cache_cc_t rcc;
    cache_key_opts_t ko = key_opts(&route->cache);
    cache_key_req_t kr;
    char *key;
    uint8_t pid[CACHE_ID_SIZE], vid[CACHE_ID_SIZE];
    const uint8_t *oid = pid;
    cache_store_item_t item;
    px_cobj_t obj;
    int found = 0, fwd = CACHE_FWD_URI_MISS, created;

    if (!is_head && !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"))) {
        c.fwd = CACHE_FWD_BYPASS;
        c.detail = "method";
        set_cache_status(req, st, &c);
        st->cache_invalidate = is_unsafe(req->method);
        px_upstream_forward(req, st, origin);
        return;
    }
    rh = request_hdrs(req, &nreq);
    cache_request_cc(&rcc, rh, nreq);
    if ((rcc.flags & CACHE_CC_NO_STORE) != 0) {
        c.fwd = CACHE_FWD_REQUEST;
        c.detail = "no-store";
        set_cache_status(req, st, &c);
        px_upstream_forward(req, st, origin);
        return;
    }
    kr = (cache_key_req_t){req->method.base,
                           req->scheme->name.base,
                           req->authority.base,
                           req->path.base,
                           req->method.len,
                           req->scheme->name.len,
                           req->authority.len,
                           req->path.len,
                           rh,
                           nreq};
    key = h2o_mem_alloc_pool(&req->pool, PX_KEY_MAX);
    if ((klen = cache_key_build(&kr, &ko, key, PX_KEY_MAX)) > PX_KEY_MAX) {
        c.fwd = CACHE_FWD_BYPASS;
        c.detail = "key-too-long";
        set_cache_status(req, st, &c);
        px_upstream_forward(req, st, origin);
        return;
    }
    cache_key_digest(key, klen, NULL, 0, pid);

    if (cache_store_get(store, pid, pool_alloc, &req->pool, &item) == 0 &&
        cobj_decode(item.meta, item.meta_len, pool_alloc, &req->pool, &obj) == 0) {
        if (obj.kind == PX_COBJ_VARY) {
            char *vkey = h2o_mem_alloc_pool(&req->pool, PX_VARY_MAX);
            size_t vl = cache_vary_key(obj.vary.base, obj.vary.len, rh, nreq, vkey, PX_VARY_MAX);
            fwd = CACHE_FWD_VARY_MISS;
            if (vl <= PX_VARY_MAX) {
                cache_key_digest(key, klen, vkey, vl, vid);
                oid = vid;
                if (cache_store_get(store, vid, pool_alloc, &req->pool, &item) == 0 &&
                    cobj_decode(item.meta, item.meta_len, pool_alloc, &req->pool, &obj) == 0 && obj.kind == PX_COBJ_OBJECT)
                    found = 1;
            }
        } else {
            found = 1;
        }
    }
    if (found) {
        int64_t now = now_s();
        cache_reuse_info_t info;
        cache_reuse_t r = cache_reuse(&obj.meta, &rcc, now, &info);
        if ((item.flags & CACHE_STORE_F_STALE) != 0) { /* soft-purged: only stale-if-error may still use it */
            r = CACHE_REUSE_REVALIDATE;
            info.by_request = 0;
        }
        if (r != CACHE_REUSE_REVALIDATE) {
            c.fwd = CACHE_FWD_NONE;
            c.has_ttl = 1;
            c.ttl = info.ttl;
            if (r == CACHE_REUSE_STALE_WHILE_REVALIDATE)
                c.detail = "stale-while-revalidate";
            else if (r == CACHE_REUSE_STALE_ALLOWED)
                c.detail = "max-stale";
            cache_store_touch(store, oid, now_ms());
            serve_object(req, st, &obj, item.body, item.body_len, info.age, &c);
            if (r == CACHE_REUSE_STALE_WHILE_REVALIDATE) { /* one background refresh per key */
                px_fill_t *fill = px_fill_join(th, pid, &created);
                if (created)
                    start_fill(fill, req, st, origin, key, klen, pid, &item, oid, CACHE_FWD_STALE);
                px_fill_unref(fill);
            }
            return;
        }
        fwd = info.by_request ? CACHE_FWD_REQUEST : CACHE_FWD_STALE;
    }
    if ((rcc.flags & CACHE_CC_ONLY_IF_CACHED) != 0) {
        c.fwd = fwd;
        c.detail = "only-if-cached";
        set_cache_status(req, st, &c);
        px_send_error(req, 504, "Gateway Timeout", "Not in the cache (only-if-cached)");
        return;
    }

    join_fill(req, st, origin, key, klen, pid, fwd == CACHE_FWD_VARY_MISS && oid == vid ? vid : pid, found ? &item : NULL, oid, fwd,
              &created);
}

/* Takes out of the fill table the answer a GET of authority + path (on this request's route) would join. */
static void forget_fill_of(h2o_req_t *req, h2o_iovec_t authority, h2o_iovec_t path)
{
    px_req_t *st = px_req_get(req);
    cache_key_opts_t ko = key_opts(&st->match->route->cache);
    size_t nreq, klen;
    cache_hdr_t *rh = request_hdrs(req, &nreq);
    cache_key_req_t kr = {.method = "GET",
                          .scheme = req->scheme->name.base,
                          .authority = authority.base,
                          .path = path.base,
                          .method_len = 3,
                          .scheme_len = req->scheme->name.len,
                          .authority_len = authority.len,
                          .path_len = path.len,
                          .hdrs = rh,
                          .nhdrs = nreq};
    char *key = h2o_mem_alloc_pool(&req->pool, PX_KEY_MAX);
    uint8_t pid[CACHE_ID_SIZE];

    if ((klen = cache_key_build(&kr, &ko, key, PX_KEY_MAX)) <= PX_KEY_MAX) {
        cache_key_digest(key, klen, NULL, 0, pid);
        px_fill_forget(pid);
    }
}

/* Invalidates a URL of the request's host: a path, or an absolute URL on the same host (RFC 9111 4.4). */
static void purge_url_of(h2o_req_t *req, h2o_iovec_t target)
{
    px_thread_t *th = px_thread_of(req);
    h2o_iovec_t authority = req->authority, path = target;
    char *url;

    if (target.len == 0)
        return;
    if (target.base[0] != '/') {
        h2o_url_t parsed;
        if (h2o_url_parse(target.base, target.len, &parsed) != 0 ||
            !h2o_lcstris(parsed.authority.base, parsed.authority.len, req->authority.base, req->authority.len))
            return;
        path = parsed.path;
    }
    forget_fill_of(req, authority, path);
    url = h2o_mem_alloc_pool(&req->pool, authority.len + path.len + 1);
    memcpy(url, authority.base, authority.len);
    h2o_strtolower(url, authority.len);
    memcpy(url + authority.len, path.base, path.len);
    url[authority.len + path.len] = '\0';
    cache_store_purge(th->srv->cache_store, CACHE_STORE_PURGE_URL, url, 0, NULL, NULL);
}

void px_cache_invalidate(h2o_req_t *req, const px_fetch_head_t *head)
{
    purge_url_of(req, req->path);
    for (size_t i = 0; i != head->nheaders; ++i) {
        const struct phr_header *h = head->headers + i;
        if (h2o_lcstris(h->name, h->name_len, H2O_STRLIT("location")) ||
            h2o_lcstris(h->name, h->name_len, H2O_STRLIT("content-location")))
            purge_url_of(req, h2o_iovec_init(h->value, h->value_len));
    }
}
