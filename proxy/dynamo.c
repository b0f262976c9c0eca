/*
 * dynamo: routes whose origin is the item store's DynamoDB JSON protocol (origin: { store: dynamodb }), so that the
 * AWS SDKs (endpoint: this route's URL) and Dynamoose work against edgeproxy unchanged.
 *
 *   POST <route path>   X-Amz-Target: DynamoDB_20120810.<Operation>   Content-Type: application/x-amz-json-1.0
 *   -> the store's answer (store/store.h), with x-amzn-RequestId (the request id) and x-amz-crc32 (the CRC-32 of the
 *      body, as DynamoDB sends and the SDKs check), content-type application/x-amz-json-1.0.
 *
 * SigV4 signatures are accepted without checking, as DynamoDB Local does, unless the conf lists store.access_keys
 * (then sigv4.c verifies them).
 *
 * The bridge from the store to a loop, shared by this route, the REST origin (rest.c) and Lua's edge.store (lua.c):
 * reads are answered inside store_call, on the caller's thread; writes by the store's writer thread after their
 * commit, and the answer comes back to the caller's thread by a message. px_store_send is the bridge for any owner
 * (px_store_pending_t: malloc'ed, freed by the message; its owner may abandon it, and the answer then goes nowhere,
 * while the write is still committed); px_store_call is it for a request (abandoned when the request is gone).
 */
#include <string.h>
#include "proxy/internal.h"

/* Each thread has its own: its address tells which thread runs (pthread_t of a worker may not be written yet). */
static _Thread_local char thread_marker;

struct px_store_pending {
    h2o_multithread_message_t super;
    px_thread_t *th;
    const char *marker; /* &thread_marker of the caller's thread */
    store_done_cb cb;   /* NULL once abandoned */
    void *data;
    int answered; /* at once, inside store_call */
    int status;
    char *body; /* malloc'ed by the store */
    size_t len;
};

/* px_store_call's: in the request's pool. */
typedef struct px_store_req {
    h2o_req_t *req;
    px_store_pending_t *pending; /* NULL once answered */
    px_store_cb cb;
    void *data;
} px_store_req_t;

/* CRC-32 slicing by 8: table k gives the CRC of a byte followed by k zero bytes */
static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i != 256; ++i) {
        uint32_t v = i;
        for (int k = 0; k != 8; ++k)
            v = v & 1 ? 0xedb88320u ^ (v >> 1) : v >> 1;
        crc_table[0][i] = v;
    }
    for (uint32_t i = 0; i != 256; ++i)
        for (int k = 1; k != 8; ++k)
            crc_table[k][i] = (crc_table[k - 1][i] >> 8) ^ crc_table[0][crc_table[k - 1][i] & 0xff];
}

/* The CRC-32 (IEEE, as zlib's) that x-amz-crc32 carries. */
static uint32_t crc32_of(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint32_t c = 0xffffffffu;

    pthread_once(&crc_once, crc_init);
    for (; len >= 8; p += 8, len -= 8) {
        uint32_t one = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        uint32_t two = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        c = crc_table[7][one & 0xff] ^ crc_table[6][(one >> 8) & 0xff] ^ crc_table[5][(one >> 16) & 0xff] ^
            crc_table[4][one >> 24] ^ crc_table[3][two & 0xff] ^ crc_table[2][(two >> 8) & 0xff] ^
            crc_table[1][(two >> 16) & 0xff] ^ crc_table[0][two >> 24];
    }
    for (; len != 0; ++p, --len)
        c = crc_table[0][(c ^ *p) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static void free_body(void *p)
{
    free(*(char **)p);
}

/* Sends the answer (body lives as long as the request). */
static void send_answer(h2o_req_t *req, int status, const char *body, size_t len)
{
    static h2o_generator_t generator = {NULL, NULL};
    px_req_t *st = px_req_get(req);
    char *crc = h2o_mem_alloc_pool(&req->pool, 16);
    h2o_iovec_t b = h2o_iovec_init(body, len);

    st->from_origin = 1; /* DynamoDB's own error JSON, not ours */
    req->res.status = status;
    req->res.reason = status == 200 ? "OK" : status == 400 ? "Bad Request" : "Internal Server Error";
    req->res.content_length = len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/x-amz-json-1.0"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-amzn-requestid"), 0, NULL, st->request_id.base,
                          st->request_id.len);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-amz-crc32"), 0, NULL, crc,
                          (size_t)sprintf(crc, "%u", crc32_of(body, len)));
    h2o_start_response(req, &generator);
    h2o_send(req, &b, 1, H2O_SEND_STATE_FINAL);
}

/* ---- the bridge ---- */

/* The store's answer: at once (a read, a refused request: on the caller's thread) or from the writer thread. */
static void on_done(void *data, int status, char *body, size_t len)
{
    px_store_pending_t *p = data;

    p->status = status;
    p->body = body;
    p->len = len;
    if (&thread_marker == p->marker)
        p->answered = 1; /* px_store_send hands it over */
    else
        h2o_multithread_send_message(&p->th->store_receiver, &p->super);
}

void px_dynamo_on_messages(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    (void)receiver;
    while (!h2o_linklist_is_empty(messages)) {
        px_store_pending_t *p = H2O_STRUCT_FROM_MEMBER(px_store_pending_t, super.link, messages->next);
        h2o_linklist_unlink(&p->super.link);
        if (p->cb != NULL)
            p->cb(p->data, p->status, p->body, p->len);
        else
            free(p->body);
        free(p);
    }
}

px_store_pending_t *px_store_send(px_thread_t *th, const char *op, const char *body, size_t len, store_done_cb cb, void *data,
                                  px_store_answer_t *now)
{
    static const char closed[] = "{\"__type\":\"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException\","
                                 "\"message\":\"The item store is not open\"}";
    px_store_pending_t *p;

    if (th->srv->store == NULL) {
        *now = (px_store_answer_t){400, h2o_strdup(NULL, closed, sizeof(closed) - 1).base, sizeof(closed) - 1};
        return NULL;
    }
    p = h2o_mem_alloc(sizeof(*p));
    *p = (px_store_pending_t){.th = th, .marker = &thread_marker, .cb = cb, .data = data};
    store_call(th->srv->store, op, body, len, on_done, p);
    if (!p->answered)
        return p; /* the writer has it: the message frees p */
    *now = (px_store_answer_t){p->status, p->body, p->len};
    free(p);
    return NULL;
}

void px_store_abandon(px_store_pending_t *p)
{
    p->cb = NULL;
}

/* ---- for a request ---- */

/* The answer goes to the request's callback; body (malloc'ed) becomes the request's: freed with its pool. */
static void on_req_answer(void *data, int status, char *body, size_t len)
{
    px_store_req_t *r = data;

    r->pending = NULL;
    *(char **)h2o_mem_alloc_shared(&r->req->pool, sizeof(char *), free_body) = body;
    r->cb(r->req, r->data, status, body, len);
}

static void on_req_gone(void *p)
{
    px_store_req_t *r = p;

    if (r->pending != NULL)
        px_store_abandon(r->pending);
}

void px_store_call(h2o_req_t *req, const char *op, const char *body, size_t len, px_store_cb cb, void *data)
{
    px_store_req_t *r = h2o_mem_alloc_shared(&req->pool, sizeof(*r), on_req_gone);
    px_store_answer_t now;

    *r = (px_store_req_t){.req = req, .cb = cb, .data = data};
    if ((r->pending = px_store_send(px_thread_of(req), op, body, len, on_req_answer, r, &now)) == NULL)
        on_req_answer(r, now.status, now.body, now.len);
}

/* ---- the DynamoDB route ---- */

/* DynamoDB's error shape, for what is refused before the store sees it. */
static void send_error(h2o_req_t *req, int status, const char *type, const char *message)
{
    char buf[512]; /* type and message are short static strings without quotes */
    int n = snprintf(buf, sizeof(buf), "{\"__type\":\"%s\",\"message\":\"%s\"}", type, message);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1;
    send_answer(req, status, h2o_strdup(&req->pool, buf, len).base, len);
}

static void on_answer(h2o_req_t *req, void *data, int status, const char *body, size_t len)
{
    (void)data;
    send_answer(req, status, body, len);
}

void px_dynamo_handle(h2o_req_t *req, px_req_t *st, px_origin_t *origin)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-amz-target"), -1);
    static const char prefix[] = "DynamoDB_20120810.";
    h2o_iovec_t target;
    char *op;

    (void)origin;
    (void)st;
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("POST"));
        px_send_error(req, 405, "Method Not Allowed", "The DynamoDB API takes POST requests");
        return;
    }
    const conf_t *conf = px_thread_of(req)->srv->conf;
    const char *type, *why;
    if (conf->store.naccess_keys != 0 &&
        (why = px_sigv4_verify(req, conf->store.access_keys, conf->store.naccess_keys, &type)) != NULL) {
        send_error(req, 400, type, why);
        return;
    }
    if (i == -1) {
        send_error(req, 400, "com.amazon.coral.service#UnknownOperationException", "");
        return;
    }
    target = req->headers.entries[i].value;
    if (target.len <= sizeof(prefix) - 1 || memcmp(target.base, prefix, sizeof(prefix) - 1) != 0) {
        send_error(req, 400, "com.amazon.coral.service#UnknownOperationException", "");
        return;
    }
    op = h2o_strdup(&req->pool, target.base + sizeof(prefix) - 1, target.len - (sizeof(prefix) - 1)).base;
    px_store_call(req, op, req->entity.base != NULL ? req->entity.base : "", req->entity.base != NULL ? req->entity.len : 0,
                  on_answer, NULL);
}
