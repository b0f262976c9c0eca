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
 * Every response of a caching route carries Cache-Status (RFC 9211). What happens on the fill's side (judging the
 * origin's answer, revalidation, stale-if-error, storing) is cfill.c's.
 *
 * Lifetimes: request state in the request's pool; a fill's px_cfill_t is malloc'ed with the fill and freed by its
 * dispose op; objects read from the store are copied into the request's pool.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include "proxy/internal.h"

int64_t px_now_s(void)
{
    return (int64_t)time(NULL);
}

int64_t px_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
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

const px_fill_hdr_t *px_find_hdr(const px_fill_hdr_t *h, size_t n, const char *name, size_t len)
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
int px_drop_response_field(h2o_iovec_t name)
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
        if (px_drop_response_field(h[i].name) || h2o_memis(h[i].name.base, h[i].name.len, H2O_STRLIT("age")))
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
    const px_fill_hdr_t *lm = px_find_hdr(h, n, H2O_STRLIT("last-modified"));
    return lm != NULL ? cache_date_parse(lm->value.base, lm->value.len) : -1;
}

/* 1 when the client's conditionals make this a 304. */
static int client_not_modified(h2o_req_t *req, const px_fill_hdr_t *h, size_t n)
{
    size_t nreq;
    cache_hdr_t *rh;
    const px_fill_hdr_t *etag = px_find_hdr(h, n, H2O_STRLIT("etag"));

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
        c = (cache_status_t){.fwd = CACHE_FWD_NONE, .has_ttl = 1, .ttl = cache_meta_ttl(&cf->plan.meta, px_now_s())};
    } else if (cf->serve_stale) {
        c.has_ttl = 1;
        c.ttl = cf->storable ? cf->plan.meta.freshness_lifetime : cache_meta_ttl(&cf->stale.meta, px_now_s());
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
        add_age(req, cache_meta_age(&cf->plan.meta, px_now_s()));
    else if (cf->serve_stale && !cf->storable)
        add_age(req, cache_meta_age(&cf->stale.meta, px_now_s()));
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
        else if (cf->err != NULL && strcmp(cf->err, "the response hook failed") == 0) /* fill.c px_fill_hooked */
            px_send_error(req, 500, "Internal Server Error", "The response hook failed");
        else
            px_send_error(
                req, 502, "Bad Gateway",
                h2o_concat(&req->pool, h2o_iovec_init(H2O_STRLIT("Origin error: ")), h2o_iovec_init(cf->err, strlen(cf->err) + 1))
                    .base);
        return;
    }
    char vkey[PX_VARY_MAX];
    size_t nreq, vl = 0;
    cache_hdr_t *rh = request_hdrs(req, &nreq);
    if (state != PX_FILL_RELEASED)
        vl = cache_vary_key(cf->vary_names, cf->vary_names_len, rh, nreq, vkey, sizeof(vkey));
    if (state == PX_FILL_RELEASED || vl > sizeof(vkey)) {
        /* not shareable (or a variant key too long to store): this request goes to the origin on its own */
        if (state == PX_FILL_RELEASED)
            c.detail = cf->detail[0] != '\0' ? cf->detail : NULL;
        else
            c.fwd = CACHE_FWD_VARY_MISS;
        c.collapsed = 0;
        set_cache_status(req, cs->st, &c);
        px_upstream_forward(req, cs->st, cs->origin);
        return;
    }
    /* another variant: the fill of this request's own variant (made or joined) */
    uint8_t vid[CACHE_ID_SIZE];
    int created;
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
        if (!cf->storable || cache_reuse(&cf->plan.meta, &rcc, px_now_s(), &info) == CACHE_REUSE_REVALIDATE) {
            px_fill_leave_table(fill);
            px_fill_unref(fill);
            fill = px_fill_join(th, fill_key, created);
            fwd = CACHE_FWD_REQUEST;
        }
    }
    cs = h2o_mem_alloc_pool(&req->pool, sizeof(*cs));
    *cs = (px_csub_t){st, origin, *created, key, klen};
    if (*created) {
        px_sub_attach(req, fill, 1, &csub_ops, cs);
        atomic_fetch_add(&fill->refs, 1); /* start_fill needs the fill past the attach, which may end the request */
        px_cfill_start(fill, req, st, origin, key, klen, pid, stale, stale_id, fwd);
        px_fill_unref(fill);
    } else {
        px_sub_attach(req, fill, 0, &csub_ops, cs);
    }
}

/* ---- the entry ---- */

static cache_key_opts_t key_opts(const conf_route_cache_t *rc)
{
    static const cache_query_mode_t modes[] = {[CONF_QUERY_ALL] = CACHE_QUERY_ALL,
                                               [CONF_QUERY_NONE] = CACHE_QUERY_NONE,
                                               [CONF_QUERY_ONLY] = CACHE_QUERY_ONLY,
                                               [CONF_QUERY_EXCEPT] = CACHE_QUERY_EXCEPT};
    return (cache_key_opts_t){modes[rc->query], (const char *const *)rc->query_params, rc->nquery_params,
                              rc->sort_query,   (const char *const *)rc->key_headers,  rc->nkey_headers};
}

/*
 * The cache key (in the pool) of a GET or HEAD of authority + path on the route, and its primary id; NULL when the key
 * would be over PX_KEY_MAX.
 */
static char *build_key(h2o_req_t *req, const conf_route_t *route, h2o_iovec_t authority, h2o_iovec_t path, const cache_hdr_t *rh,
                       size_t nreq, size_t *klen, uint8_t pid[CACHE_ID_SIZE])
{
    cache_key_opts_t ko = key_opts(&route->cache);
    cache_key_req_t kr = {.method = "GET", /* HEAD is answered from the GET */
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

    if ((*klen = cache_key_build(&kr, &ko, key, PX_KEY_MAX)) > PX_KEY_MAX)
        return NULL;
    px_req_t *st = px_req_find(req);
    if (st != NULL && st->cache_key_extra.len != 0) { /* req.cache_key of the request hook */
        if (*klen + 5 + st->cache_key_extra.len > PX_KEY_MAX)
            return NULL;
        memcpy(key + *klen, "\nlua:", 5);
        memcpy(key + *klen + 5, st->cache_key_extra.base, st->cache_key_extra.len);
        *klen += 5 + st->cache_key_extra.len;
    }
    cache_key_digest(key, *klen, NULL, 0, pid);
    return key;
}

char *px_cache_url(h2o_iovec_t authority, h2o_iovec_t path)
{
    char *url = h2o_mem_alloc(authority.len + path.len + 1);
    memcpy(url, authority.base, authority.len);
    h2o_strtolower(url, authority.len);
    memcpy(url + authority.len, path.base, path.len);
    url[authority.len + path.len] = '\0';
    return url;
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
    if ((key = build_key(req, route, req->authority, req->path, rh, nreq, &klen, pid)) == NULL) {
        c.fwd = CACHE_FWD_BYPASS;
        c.detail = "key-too-long";
        set_cache_status(req, st, &c);
        px_upstream_forward(req, st, origin);
        return;
    }

    if (cache_store_get(store, pid, pool_alloc, &req->pool, &item) == 0 &&
        px_cobj_decode(item.meta, item.meta_len, pool_alloc, &req->pool, &obj) == 0) {
        if (obj.kind == PX_COBJ_VARY) {
            char *vkey = h2o_mem_alloc_pool(&req->pool, PX_VARY_MAX);
            size_t vl = cache_vary_key(obj.vary.base, obj.vary.len, rh, nreq, vkey, PX_VARY_MAX);
            fwd = CACHE_FWD_VARY_MISS;
            if (vl <= PX_VARY_MAX) {
                cache_key_digest(key, klen, vkey, vl, vid);
                oid = vid;
                if (cache_store_get(store, vid, pool_alloc, &req->pool, &item) == 0 &&
                    px_cobj_decode(item.meta, item.meta_len, pool_alloc, &req->pool, &obj) == 0 && obj.kind == PX_COBJ_OBJECT)
                    found = 1;
            }
        } else {
            found = 1;
        }
    }
    if (found) {
        int64_t now = px_now_s();
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
            cache_store_touch(store, oid, px_now_ms());
            serve_object(req, st, &obj, item.body, item.body_len, info.age, &c);
            if (r == CACHE_REUSE_STALE_WHILE_REVALIDATE) { /* one background refresh per key */
                px_fill_t *fill = px_fill_join(th, pid, &created);
                if (created)
                    px_cfill_start(fill, req, st, origin, key, klen, pid, &item, oid, CACHE_FWD_STALE);
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
    /* a fill still answering for the URL (as a GET of it would find it) goes too */
    size_t nreq, klen;
    cache_hdr_t *rh = request_hdrs(req, &nreq);
    uint8_t pid[CACHE_ID_SIZE];
    if (build_key(req, px_req_get(req)->match->route, authority, path, rh, nreq, &klen, pid) != NULL)
        px_fill_forget(pid);
    url = px_cache_url(authority, path);
    cache_store_purge(th->srv->cache_store, CACHE_STORE_PURGE_URL, url, 0, NULL, NULL); /* copies url */
    free(url);
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
