/*
 * respond: what every response gets on its way out, and the errors edgeproxy sends itself.
 *
 * The per-request state (px_req_t) is a prefilter in the request's pool: h2o keeps prefilters across reprocessing,
 * frees them with the request, and lets us find the state again from the filter and the logger.
 *
 * The respond filter sits on every pathconf. For each response it adds x-request-id and Via, applies the route's
 * response header commands, and turns every error that is not the origin's own (404 no route, 413 from h2o's body
 * reader, 404 from the static file handler, our 502/504, ...) into the JSON body {"message", "request_id"}.
 */
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include "proxy/internal.h"

static void on_setup_prefilter(h2o_req_prefilter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    h2o_setup_next_prefilter(self, req, slot);
}

px_req_t *px_req_find(h2o_req_t *req)
{
    for (h2o_req_prefilter_t *p = req->prefilters; p != NULL; p = p->next)
        if (p->on_setup_ostream == on_setup_prefilter)
            return (px_req_t *)p;
    return NULL;
}

int px_request_id_is_valid(const char *s, size_t len)
{
    if (len == 0 || len > 128)
        return 0;
    for (size_t i = 0; i != len; ++i) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int px_thread_init_random(px_thread_t *th)
{
    static const char pers[] = "edgeproxy request id";
    mbedtls_entropy_init(&th->entropy);
    mbedtls_ctr_drbg_init(&th->drbg);
    th->rid_used = sizeof(th->rid_bytes); /* drawn on first use */
    return mbedtls_ctr_drbg_seed(&th->drbg, mbedtls_entropy_func, &th->entropy, (const unsigned char *)pers, sizeof(pers) - 1);
}

#define RID_RAW 16 /* random bytes of a request id (32 hex digits) */
_Static_assert(sizeof(((px_thread_t *)0)->rid_bytes) % RID_RAW == 0 &&
                   sizeof(((px_thread_t *)0)->rid_bytes) <= MBEDTLS_CTR_DRBG_MAX_REQUEST,
               "rid_bytes: whole ids, one DRBG call");

static h2o_iovec_t generate_request_id(h2o_req_t *req)
{
    static const char hex[] = "0123456789abcdef";
    px_thread_t *th = px_thread_of(req);
    char *s = h2o_mem_alloc_pool(&req->pool, RID_RAW * 2 + 1);
    const unsigned char *raw;

    /* one DRBG call per 64 ids: each call costs an AES key schedule and an update of the DRBG's state */
    if (th->rid_used == sizeof(th->rid_bytes)) {
        if (mbedtls_ctr_drbg_random(&th->drbg, th->rid_bytes, sizeof(th->rid_bytes)) != 0)
            h2o_fatal("mbedtls_ctr_drbg_random failed");
        th->rid_used = 0;
    }
    raw = th->rid_bytes + th->rid_used;
    th->rid_used += RID_RAW;
    for (size_t i = 0; i != RID_RAW; ++i) {
        s[i * 2] = hex[raw[i] >> 4];
        s[i * 2 + 1] = hex[raw[i] & 15];
    }
    s[RID_RAW * 2] = '\0';
    return h2o_iovec_init(s, RID_RAW * 2);
}

px_req_t *px_req_get(h2o_req_t *req)
{
    px_req_t *st = px_req_find(req);
    ssize_t i;

    if (st != NULL)
        return st;
    st = (px_req_t *)h2o_add_prefilter(req, sizeof(*st));
    memset((char *)st + sizeof(st->super), 0, sizeof(*st) - sizeof(st->super));
    st->super.on_setup_ostream = on_setup_prefilter;
    st->upstream_ms = -1;
    /* keep a well-formed id from the client, else make one; either way the origin sees the same id */
    i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), -1);
    if (i != -1 && px_request_id_is_valid(req->headers.entries[i].value.base, req->headers.entries[i].value.len)) {
        st->request_id = req->headers.entries[i].value;
    } else {
        st->request_id = generate_request_id(req);
        h2o_set_header_by_str(&req->pool, &req->headers, H2O_STRLIT("x-request-id"), 0, st->request_id.base, st->request_id.len, 1);
    }
    return st;
}

size_t px_format_ipv4(const uint8_t a[4], char *buf)
{
    char *p = buf;

    for (int i = 0; i != 4; ++i) {
        if (a[i] >= 100)
            *p++ = (char)('0' + a[i] / 100);
        if (a[i] >= 10)
            *p++ = (char)('0' + a[i] / 10 % 10);
        *p++ = (char)('0' + a[i] % 10);
        *p++ = i != 3 ? '.' : '\0';
    }
    return (size_t)(p - buf - 1);
}

size_t px_client_ip(h2o_req_t *req, char *buf)
{
    struct sockaddr_storage ss;
    socklen_t sslen = req->conn->callbacks->get_peername(req->conn, (void *)&ss);
    size_t len;

    if (sslen >= sizeof(struct sockaddr_in) && ss.ss_family == AF_INET)
        return px_format_ipv4((const uint8_t *)&((struct sockaddr_in *)&ss)->sin_addr, buf);
    len = sslen != 0 ? h2o_socket_getnumerichost((void *)&ss, sslen, buf) : SIZE_MAX;

    if (len == SIZE_MAX)
        len = 0;
    buf[len] = '\0';
    return len;
}

h2o_iovec_t px_pct_decode(h2o_mem_pool_t *pool, const char *s, size_t len, int plus_space)
{
    char *out = h2o_mem_alloc_pool(pool, len + 1), *o = out;

    for (size_t i = 0; i != len; ++i) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < len && (hi = px_hex_digit(s[i + 1])) >= 0 && (lo = px_hex_digit(s[i + 2])) >= 0) {
            *o++ = (char)(hi * 16 + lo);
            i += 2;
        } else {
            *o++ = plus_space && s[i] == '+' ? ' ' : s[i];
        }
    }
    *o = '\0';
    return h2o_iovec_init(out, (size_t)(o - out));
}

char *px_query_param(h2o_req_t *req, const char *name)
{
    size_t nlen = strlen(name);
    const char *p, *end;

    if (req->query_at == SIZE_MAX)
        return NULL;
    p = req->path.base + req->query_at + 1;
    end = req->path.base + req->path.len;
    while (p < end) {
        const char *amp = memchr(p, '&', end - p), *pe = amp != NULL ? amp : end, *eq = memchr(p, '=', pe - p);
        const char *ke = eq != NULL ? eq : pe;
        if ((size_t)(ke - p) == nlen && memcmp(p, name, nlen) == 0) {
            const char *v = eq != NULL ? eq + 1 : pe;
            return px_pct_decode(&req->pool, v, (size_t)(pe - v), 0).base;
        }
        p = pe + 1;
    }
    return NULL;
}

void px_send_error(h2o_req_t *req, int status, const char *reason, const char *message)
{
    static h2o_generator_t generator = {NULL, NULL};
    px_req_t *st = px_req_get(req);

    st->error_message = message;
    st->from_origin = 0;
    req->res.status = status;
    req->res.reason = reason;
    req->res.content_length = SIZE_MAX; /* the filter sets it */
    h2o_start_response(req, &generator);
    h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
}

static const char *default_message(int status, const char *reason)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Request body too large";
    case 416:
        return "Range Not Satisfiable";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return reason != NULL && reason[0] != '\0' ? reason : "Error";
    }
}

/* Appends s as a JSON string (with quotes) to buf; buf must have room for 2 + 6 * len bytes. */
static size_t json_string(char *buf, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    buf[o++] = '"';
    for (size_t i = 0; i != len; ++i) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c < 0x20) {
            memcpy(buf + o, "\\u00", 4);
            buf[o + 4] = hex[c >> 4];
            buf[o + 5] = hex[c & 15];
            o += 6;
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o++] = '"';
    return o;
}

/* The ostream that replaces an error's body with the JSON one. */
typedef struct json_error_ostream {
    h2o_ostream_t super;
    h2o_iovec_t body;
    int is_head;
} json_error_ostream_t;

static void json_error_do_send(h2o_ostream_t *_self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt, h2o_send_state_t state)
{
    json_error_ostream_t *self = (void *)_self;
    (void)bufs;
    (void)bufcnt;

    if (h2o_send_state_is_in_progress(state)) {
        /* swallow the original body; nothing to pass on yet */
        h2o_ostream_send_next(&self->super, req, NULL, 0, state);
        return;
    }
    h2o_ostream_send_next(&self->super, req, &self->body, self->is_head ? 0 : 1, state);
}

static void setup_json_error(h2o_req_t *req, px_req_t *st, h2o_ostream_t **slot)
{
    const char *msg = st->error_message != NULL ? st->error_message : default_message(req->res.status, req->res.reason);
    size_t msglen = strlen(msg);
    char *buf = h2o_mem_alloc_pool(&req->pool, 64 + 6 * (msglen + st->request_id.len));
    size_t o = 0;
    json_error_ostream_t *os;
    ssize_t i;

    memcpy(buf + o, "{\"message\":", 11);
    o += 11;
    o += json_string(buf + o, msg, msglen);
    memcpy(buf + o, ",\"request_id\":", 14);
    o += 14;
    o += json_string(buf + o, st->request_id.base, st->request_id.len);
    buf[o++] = '}';
    buf[o++] = '\n';

    /* the error's own representation headers no longer apply */
    while ((i = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1)) != -1)
        h2o_delete_header(&req->res.headers, i);
    while ((i = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_ENCODING, -1)) != -1)
        h2o_delete_header(&req->res.headers, i);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    req->res.content_length = o;

    os = (void *)h2o_add_ostream(req, sizeof(*os), slot);
    os->super.do_send = json_error_do_send;
    os->body = h2o_iovec_init(buf, o);
    os->is_head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    slot = &os->super.next;
    h2o_setup_next_ostream(req, slot);
}

static void apply_header_cmds(h2o_req_t *req, const conf_header_cmds_t *cmds)
{
    size_t i;
    for (i = 0; i != cmds->nremove; ++i) {
        ssize_t at;
        while ((at = h2o_find_header_by_str(&req->res.headers, cmds->remove[i], strlen(cmds->remove[i]), -1)) != -1)
            h2o_delete_header(&req->res.headers, at);
    }
    for (i = 0; i != cmds->nadd; ++i)
        h2o_add_header_by_str(&req->pool, &req->res.headers, cmds->add[i].name, strlen(cmds->add[i].name), 1, NULL,
                              cmds->add[i].value, strlen(cmds->add[i].value));
}

static void strip_cache_fields(h2o_req_t *req)
{
    static const h2o_iovec_t names[] = {{H2O_STRLIT("cdn-cache-control")},
                                        {H2O_STRLIT("surrogate-control")},
                                        {H2O_STRLIT("surrogate-key")},
                                        {H2O_STRLIT("cache-tag")}};
    for (size_t i = 0; i != sizeof(names) / sizeof(names[0]); ++i) {
        ssize_t at;
        while ((at = h2o_find_header_by_str(&req->res.headers, names[i].base, names[i].len, -1)) != -1)
            h2o_delete_header(&req->res.headers, at);
    }
}

static void on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    px_req_t *st = px_req_get(req);
    (void)self;

    h2o_set_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, st->request_id.base, st->request_id.len, 1);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_VIA, NULL, H2O_STRLIT("1.1 edgeproxy"));
    if (st->cache_status.len != 0) {
        if (st->from_origin) /* what speaks to the cache only (CDN-Cache-Control, Surrogate-Control, surrogate keys) */
            strip_cache_fields(req);
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("cache-status"), 0, NULL, st->cache_status.base,
                              st->cache_status.len);
    }
    if (st->match != NULL) {
        px_gateway_response_headers(req, st);
        apply_header_cmds(req, &st->match->route->response_headers);
    }
    if (req->res.status == 413 && req->version < 0x200)
        px_linger_arm(req); /* h2o may close with the body still coming */
    if (req->res.status >= 400 && !st->from_origin) {
        setup_json_error(req, st, slot);
        return;
    }
    h2o_setup_next_ostream(req, slot);
}

h2o_filter_t *px_respond_register(h2o_pathconf_t *pathconf)
{
    h2o_filter_t *f = h2o_create_filter(pathconf, sizeof(*f));
    f->on_setup_ostream = on_setup_ostream;
    return f;
}
