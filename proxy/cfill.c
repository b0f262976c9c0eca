/*
 * cfill: what the cache does with a fill (fill.c) — the cache's half of a miss or a revalidation, on the thread that
 * runs the fill: it judges the origin's head (cache_storable), answers with the stale object after a 304 or an error
 * (stale-if-error), keeps the headers and body a subscriber streams, and puts the object into the store at the end.
 *
 * The stored object's meta blob is ours (px_cobj_decode reads it):
 *   px_cobj_hdr_t, then for an object: the reason phrase, then nheaders x (u32 name_len, u32 value_len, name, value);
 *                  for a vary record: the canonical list of Vary'd field names
 *
 * Lifetimes: px_cfill_t is malloc'ed by px_cfill_start with the fill, its key, host and request id in the same block,
 * and freed by the fill's dispose op, with the stale object's copy and the other strings it holds.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <netdb.h>
#include <string.h>
#include "proxy/internal.h"

typedef struct px_cobj_hdr {
    uint32_t magic;
    uint32_t kind;
    cache_meta_t meta;
    uint32_t reason_len;
    uint32_t nheaders;
    uint32_t vary_len; /* vary record: the names */
    uint32_t reserved;
} px_cobj_hdr_t;

/* ---- the blob ---- */

static void put_u32(char **p, uint32_t v)
{
    memcpy(*p, &v, 4);
    *p += 4;
}

/* Decodes a meta blob; headers go into pool. Returns -1 when it is not one of ours or is damaged. */
int px_cobj_decode(const void *blob, size_t len, void *(*alloc)(size_t, void *), void *alloc_data, px_cobj_t *out)
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

/* ---- fills ---- */

/* Judges an answer (status, headers) to the fill's request, for the route (cache_storable into cf->plan). */
static int judge(px_cfill_t *cf, int status, const cache_hdr_t *hdrs, size_t n)
{
    const conf_route_cache_t *rc = &cf->route->cache;
    cache_exchange_t x = {"GET", 3, cf->req_hdrs, cf->nreq_hdrs, status, hdrs, n, cf->request_time, px_now_s()};
    cache_route_policy_t pol = {rc->default_ttl_s, rc->override, rc->stale_while_revalidate_s, rc->stale_if_error_s};

    if (cf->hook_uncacheable) { /* the response hook said res.cacheable = false */
        cf->plan.reason = "lua";
        return 0;
    }
    if (cf->hook_ttl_s >= 0) { /* res.ttl: its freshness, whatever the origin's directives (as override does) */
        pol.default_ttl = cf->hook_ttl_s;
        pol.override = 1;
    }
    if (!cache_storable(&x, &pol, &cf->plan))
        return 0;
    if (cf->hook_max_ttl_s >= 0 && cf->plan.meta.freshness_lifetime > cf->hook_max_ttl_s) /* res.max_ttl */
        cf->plan.meta.freshness_lifetime = cf->hook_max_ttl_s;
    return 1;
}

/* When the store may reclaim the object: after its lifetime and its stale windows (plus a minute), in ms. */
static int64_t expires_ms(const cache_meta_t *m)
{
    return (px_now_s() + m->freshness_lifetime + m->swr + m->sie + 60) * 1000;
}

static void cfill_dispose(px_fill_t *fill)
{
    px_cfill_t *cf = fill->user;
    if (cf == NULL)
        return;
    free(cf->url);
    free(cf->req_storage);
    free(cf->vary_names);
    free(cf->vary_key);
    free(cf->stale_blob);
    free(cf->stale.headers);
    free(cf->reason);
    free(cf->tag_storage);
    px_lrun_free(cf->hook_lr);
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
        if (px_drop_response_field(h[i].name))
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
    size_t n = head->nheaders, nh, namelen = 0;
    /* the usual head fits on the stack; a larger one goes to the heap */
    cache_hdr_t ch_stack[32], *ch = n < 32 ? ch_stack : h2o_mem_alloc(sizeof(*ch) * (n + 1));
    px_fill_hdr_t fh_stack[32], *fh = n < 32 ? fh_stack : h2o_mem_alloc(sizeof(*fh) * (n + 1)), *use = fh;
    char lower_stack[1024], *lower;
    for (size_t i = 0; i != n; ++i)
        namelen += head->headers[i].name_len;
    lower = namelen < sizeof(lower_stack) ? lower_stack : h2o_mem_alloc(namelen + 1);
    int status = head->status, state = PX_FILL_STREAMING;
    h2o_iovec_t reason = head->reason;
    size_t content_length = head->content_length;

    nh = convert_head(head, ch, fh, lower);
    cf->origin_status = head->status;

    if (cf->has_stale && status == 304) {
        /* the stored object is still good: refresh its headers and answer with it */
        size_t nm;
        px_fill_hdr_t *merged = merge_304(&cf->stale, fh, nh, &nm);
        cache_hdr_t *mh = h2o_mem_alloc(sizeof(*mh) * (nm + 1));
        for (size_t i = 0; i != nm; ++i)
            mh[i] = (cache_hdr_t){merged[i].name.base, merged[i].name.len, merged[i].value.base, merged[i].value.len};
        if (judge(cf, cf->stale.meta.status, mh, nm)) {
            size_t bloblen;
            char *blob = cobj_encode(&cf->plan.meta, cf->stale.reason, merged, nm, &bloblen);
            cache_store_update_meta(cf->srv->cache_store, cf->stale_id, blob, bloblen, px_now_ms(), expires_ms(&cf->plan.meta));
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
    if (cf->has_stale && status >= 500 && cache_stale_if_error(&cf->stale.meta, NULL, px_now_s())) {
        set_stale_reason(cf);
        set_fill_head(fill, cf->stale.meta.status, cf->stale.headers, cf->stale.nheaders, cf->stale_body_len);
        cf->serve_stale = 1;
        cf->ignore_body = 1;
        cf->fwd = CACHE_FWD_STALE;
        snprintf(cf->detail, sizeof(cf->detail), "stale-if-error");
        goto Done;
    }

    {
        cf->storable = judge(cf, status, ch, nh);
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
    if (fh != fh_stack)
        free(fh);
    if (ch != ch_stack)
        free(ch);
    if (lower != lower_stack)
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

static void copy_fill_body(void *fill, char *dst, size_t len)
{
    px_fill_copy_body(fill, 0, dst, len);
}

static void store_object(px_fill_t *fill, px_cfill_t *cf)
{
    size_t bloblen, body_len = atomic_load(&fill->body_len);
    char *blob = cobj_encode(&cf->plan.meta, h2o_iovec_init(cf->reason, cf->reason != NULL ? strlen(cf->reason) : 0), fill->headers,
                             fill->nheaders, &bloblen);
    uint8_t vid[CACHE_ID_SIZE];
    const uint8_t *id = cf->pid;
    cache_store_object_t obj;

    if (cf->vary_names != NULL) {
        size_t vlen;
        char *vrec = vary_record_encode(cf->vary_names, cf->vary_names_len, &vlen);
        cache_store_object_t vo = {.meta = vrec,
                                   .meta_len = vlen,
                                   .url = cf->url,
                                   .host = cf->host,
                                   .stored_ms = px_now_ms(),
                                   .expires_ms = expires_ms(&cf->plan.meta)};
        cache_store_put(cf->srv->cache_store, cf->pid, &vo, 0);
        free(vrec);
        cache_key_digest(cf->key, cf->key_len, cf->vary_key, cf->vary_key_len, vid);
        id = vid;
    }
    /* the body goes from the fill's chunks straight into the store's copy */
    obj = (cache_store_object_t){.meta = blob,
                                 .meta_len = bloblen,
                                 .body_len = body_len,
                                 .copy_body = copy_fill_body,
                                 .copy_data = fill,
                                 .url = cf->url,
                                 .host = cf->host,
                                 .tags = cf->tags,
                                 .ntags = cf->ntags,
                                 .stored_ms = px_now_ms(),
                                 .expires_ms = expires_ms(&cf->plan.meta)};
    cache_store_put(cf->srv->cache_store, id, &obj, 0);
    cf->store_mark = cache_store_mark(cf->srv->cache_store);
    free(blob);
}

static int cfill_on_end(px_fill_t *fill, const char *err, int timeout)
{
    px_cfill_t *cf = fill->user;

    if (cf->serve_stale) {
        /* the answer is the stored object: its body (the 304 had none; a 5xx's was ignored). A stale-if-error answer
         * is for the requests that waited: later ones must try the origin again, not join this fill */
        if (cf->ignore_body)
            px_fill_leave_table(fill);
        if (atomic_load(&fill->body_len) == 0 && cf->stale_body_len != 0)
            px_fill_append(fill, cf->stale_body, cf->stale_body_len);
        return PX_FILL_DONE;
    }
    if (err != NULL) {
        cf->err = err;
        cf->err_timeout = timeout;
        if (!fill->has_head && cf->has_stale && cache_stale_if_error(&cf->stale.meta, NULL, px_now_s())) {
            px_fill_leave_table(fill); /* as above: for the waiting requests only */
            set_stale_reason(cf);
            set_fill_head(fill, cf->stale.meta.status, cf->stale.headers, cf->stale.nheaders, cf->stale_body_len);
            fill->has_head = 1;
            cf->serve_stale = 1;
            cf->fwd = CACHE_FWD_STALE;
            snprintf(cf->detail, sizeof(cf->detail), "stale-if-error");
            px_fill_set_state(fill, PX_FILL_STREAMING);
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

/* Until the store has the object, the complete fill answers for it. */
static int cfill_keep_lingering(px_fill_t *fill)
{
    px_cfill_t *cf = fill->user;
    return !cache_store_applied(cf->srv->cache_store, cf->store_mark);
}

/* ---- the route's response hook, on the origin's head, before the cache judges it ---- */

typedef struct px_cfill_hook {
    px_fill_t *fill;
    px_cfill_t *cf;
    px_fetch_head_t head; /* the origin's head, copied into the run's pool */
    hooks_request_t rq;
    hooks_response_t res;
    hooks_kv_t *req_kv;
} px_cfill_hook_t;

static void on_hooked(void *data, hooks_status_t status)
{
    px_cfill_hook_t *h = data;
    px_cfill_t *cf = h->cf;
    px_lrun_t *lr = cf->hook_lr;
    const hooks_response_changes_t *c = &lr->out.changes;
    px_fetch_head_t head = h->head;
    const char *body = NULL;

    if (status != HOOKS_DONE) {
        fprintf(stderr, "edgeproxy: [%s] response hook %s failed: %s\n", cf->request_id, cf->route->hooks.response_file,
                lr->out.error != NULL ? lr->out.error : "(no message)");
        if (!cf->route->hooks.on_error_continue) {
            cf->hook_lr = NULL; /* freed below: the fill may be gone after px_fill_hooked */
            px_fill_hooked(h->fill, NULL, NULL, 0);
            px_lrun_free(lr);
            return;
        }
        c = NULL;
    }
    if (c != NULL) {
        if (c->status != 0)
            head.status = c->status;
        if (c->headers_changed) {
            struct phr_header *ph = h2o_mem_alloc_pool(&lr->pool, sizeof(*ph) * (c->nheaders + 1));
            head.nheaders = 0;
            for (size_t i = 0; i != c->nheaders; ++i)
                if (!h2o_memis(c->headers[i].name, c->headers[i].name_len, H2O_STRLIT("content-length")))
                    ph[head.nheaders++] = (struct phr_header){c->headers[i].name, c->headers[i].name_len, c->headers[i].value,
                                                              c->headers[i].value_len};
            head.headers = ph;
        }
        if (c->body_changed) {
            body = c->body != NULL ? c->body : "";
            head.content_length = c->body_len;
        }
        cf->hook_ttl_s = c->ttl_s;
        cf->hook_max_ttl_s = c->max_ttl_s;
        cf->hook_uncacheable = c->uncacheable;
    }
    cf->hook_lr = NULL; /* freed below (the head and body are copied by then): the fill may be gone after px_fill_hooked */
    px_fill_hooked(h->fill, &head, body, c != NULL ? c->body_len : 0);
    px_lrun_free(lr);
}

static int cfill_hook_head(px_fill_t *fill, const px_fetch_head_t *head)
{
    px_cfill_t *cf = fill->user;
    px_thread_t *th = fill->owner;
    px_cfill_hook_t *h;
    h2o_mem_pool_t *pool;
    size_t hostlen = strlen(cf->host), urllen = strlen(cf->url);
    const char *q;
    hooks_run_t *run;
    hooks_status_t status;

    if (cf->route->hooks.response_file == NULL || (cf->has_stale && head->status == 304))
        return 0; /* a 304 refreshes the stored object, which the hook saw when it was stored */
    cf->hook_lr = px_lrun_new(th);
    pool = &cf->hook_lr->pool;
    h = h2o_mem_alloc_pool(pool, sizeof(*h));
    *h = (px_cfill_hook_t){.fill = fill, .cf = cf, .head = *head};
    /* the head points into the socket buffer: copy it */
    h->head.reason = h2o_strdup(pool, head->reason.base, head->reason.len);
    struct phr_header *ph = h2o_mem_alloc_pool(pool, sizeof(*ph) * (head->nheaders + 1));
    hooks_kv_t *kv = h2o_mem_alloc_pool(pool, sizeof(*kv) * (head->nheaders + 1));
    for (size_t i = 0; i != head->nheaders; ++i) {
        h2o_iovec_t n = h2o_strdup(pool, head->headers[i].name, head->headers[i].name_len);
        h2o_iovec_t v = h2o_strdup(pool, head->headers[i].value, head->headers[i].value_len);
        h2o_strtolower(n.base, n.len);
        ph[i] = (struct phr_header){n.base, n.len, v.base, v.len};
        kv[i] = (hooks_kv_t){n.base, n.len, v.base, v.len};
    }
    h->head.headers = ph;
    h->res = (hooks_response_t){head->status, kv, head->nheaders, NULL, 0};
    h->req_kv = h2o_mem_alloc_pool(pool, sizeof(*h->req_kv) * (cf->nreq_hdrs + 1));
    for (size_t i = 0; i != cf->nreq_hdrs; ++i)
        h->req_kv[i] =
            (hooks_kv_t){cf->req_hdrs[i].name, cf->req_hdrs[i].name_len, cf->req_hdrs[i].value, cf->req_hdrs[i].value_len};
    q = memchr(cf->url + hostlen, '?', urllen - hostlen);
    h->rq = (hooks_request_t){.method = "GET",
                              .method_len = 3,
                              .scheme = cf->https ? "https" : "http",
                              .host = cf->host,
                              .host_len = hostlen,
                              .path = cf->url + hostlen,
                              .path_len = q != NULL ? (size_t)(q - (cf->url + hostlen)) : urllen - hostlen,
                              .query = q != NULL ? q + 1 : NULL,
                              .query_len = q != NULL ? (size_t)(cf->url + urllen - q - 1) : 0,
                              .headers = h->req_kv,
                              .nheaders = cf->nreq_hdrs,
                              .route = cf->route->path,
                              .client_ip = cf->client_ip,
                              .request_id = cf->request_id};
    px_functions_refresh(th);
    status = hooks_start_response(th->vm, th->srv->origins[cf->route_id].res_script, &h->rq, &h->res, px_lrun_allocator(), pool,
                                  &cf->hook_lr->out, &run);
    px_lrun_go(cf->hook_lr, status, run, on_hooked, h);
    return 1;
}

static const px_fill_ops_t cfill_ops = {cfill_on_head,        cfill_on_body, cfill_on_end,
                                        cfill_keep_lingering, cfill_dispose, cfill_hook_head};

static void *malloc_alloc(size_t size, void *unused)
{
    (void)unused;
    return malloc(size);
}

/* Sets up a new fill's cache state and starts its fetch; stale_item (with its id) is the stored object to revalidate. */
void px_cfill_start(px_fill_t *fill, h2o_req_t *req, px_req_t *st, px_origin_t *origin, const char *key, size_t klen,
                    const uint8_t *pid, const cache_store_item_t *stale_item, const uint8_t *stale_id, int fwd)
{
    px_thread_t *th = px_thread_of(req);
    /* the cache key, the host and the request id live after the struct: one block */
    px_cfill_t *cf = h2o_mem_alloc(sizeof(*cf) + klen + 1 + req->authority.len + 1 + st->request_id.len + 1);
    size_t total = 0, i;
    char *p, extra[1024];
    int extralen = 0;

    memset(cf, 0, sizeof(*cf));
    cf->srv = th->srv;
    cf->route = st->match->route;
    memcpy(cf->pid, pid, CACHE_ID_SIZE);
    cf->key = (char *)(cf + 1);
    memcpy(cf->key, key, klen);
    cf->key[klen] = '\0';
    cf->key_len = klen;
    cf->url = px_cache_url(req->authority, req->path);
    cf->host = cf->key + klen + 1;
    memcpy(cf->host, cf->url, req->authority.len); /* the url begins with the lower-cased authority */
    cf->host[req->authority.len] = '\0';
    cf->request_time = px_now_s();
    cf->fwd = fwd;
    cf->route_id = st->match->route_id;
    cf->https = req->scheme == &H2O_URL_SCHEME_HTTPS;
    cf->request_id = cf->host + req->authority.len + 1;
    memcpy(cf->request_id, st->request_id.base, st->request_id.len);
    cf->request_id[st->request_id.len] = '\0';
    cf->hook_ttl_s = cf->hook_max_ttl_s = -1;
    if (cf->route->hooks.response_file != NULL) {
        char ip[NI_MAXHOST];
        size_t l = px_client_ip(req, ip);
        if (l < sizeof(cf->client_ip))
            memcpy(cf->client_ip, ip, l + 1);
    }
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
        if (px_cobj_decode(cf->stale_blob, stale_item->meta_len, malloc_alloc, NULL, &cf->stale) == 0) {
            const px_fill_hdr_t *etag = px_find_hdr(cf->stale.headers, cf->stale.nheaders, H2O_STRLIT("etag"));
            const px_fill_hdr_t *lm = px_find_hdr(cf->stale.headers, cf->stale.nheaders, H2O_STRLIT("last-modified"));
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
    if (origin->route->origin.kind == CONF_ORIGIN_FUNCTION) { /* answered at once (the validators are for HTTP origins) */
        px_function_fill(fill, req, st, origin);
        return;
    }
    px_fill_start(fill, th, (size_t)(origin - th->srv->origins),
                  px_origin_request(req, st, origin, 1, h2o_iovec_init(h2o_strdup(&req->pool, extra, extralen).base, extralen)), 1);
}
