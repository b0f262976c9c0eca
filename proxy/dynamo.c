/*
 * dynamo: routes whose origin is the item store's DynamoDB JSON protocol (origin: { store: dynamodb }), so that the
 * AWS SDKs (endpoint: this route's URL) and Dynamoose work against edgeproxy unchanged.
 *
 *   POST <route path>   X-Amz-Target: DynamoDB_20120810.<Operation>   Content-Type: application/x-amz-json-1.0
 *   -> the store's answer (store/store.h), with x-amzn-RequestId (the request id) and x-amz-crc32 (the CRC-32 of the
 *      body, as DynamoDB sends and the SDKs check), content-type application/x-amz-json-1.0.
 *
 * SigV4 signatures are accepted without checking, as DynamoDB Local does.
 *
 * Reads are answered inside store_call, on this thread. Writes are answered by the store's writer thread after their
 * commit: the answer comes back to the request's thread by a message (px_dyn_t, shared by the request and the
 * message; both live on that thread; the last of the two frees it). A request that is gone by then is not answered.
 */
#include <string.h>
#include "proxy/internal.h"

/* Each thread has its own: its address tells which thread runs (pthread_t of a worker may not be written yet). */
static _Thread_local char thread_marker;

typedef struct px_dyn {
    h2o_multithread_message_t super;
    px_thread_t *th;
    const char *marker; /* &thread_marker of the request's thread */
    h2o_req_t *req;     /* NULL once the request is gone */
    int refs;           /* the request's, and the answer's */
    int status;
    char *body; /* malloc'ed by the store */
    size_t len;
} px_dyn_t;

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i != 256; ++i) {
        uint32_t v = i;
        for (int k = 0; k != 8; ++k)
            v = v & 1 ? 0xedb88320u ^ (v >> 1) : v >> 1;
        crc_table[i] = v;
    }
}

/* The CRC-32 (IEEE, as zlib's) that x-amz-crc32 carries. */
static uint32_t crc32_of(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint32_t c = 0xffffffffu;

    pthread_once(&crc_once, crc_init);
    for (size_t i = 0; i != len; ++i)
        c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static void dyn_unref(px_dyn_t *d)
{
    if (--d->refs != 0)
        return;
    free(d->body);
    free(d);
}

static void free_body(void *p)
{
    free(*(char **)p);
}

/* Sends the answer; body (malloc'ed) becomes the request's: freed with its pool, after the response has gone. */
static void send_answer(h2o_req_t *req, int status, char *body, size_t len)
{
    static h2o_generator_t generator = {NULL, NULL};
    px_req_t *st = px_req_get(req);
    char *crc = h2o_mem_alloc_pool(&req->pool, 16);
    h2o_iovec_t b = h2o_iovec_init(body, len);

    *(char **)h2o_mem_alloc_shared(&req->pool, sizeof(char *), free_body) = body;
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

/* The store's answer: at once (a read, on this thread) or from the writer thread. */
static void on_done(void *data, int status, char *body, size_t len)
{
    px_dyn_t *d = data;

    if (&thread_marker == d->marker) {
        if (d->req != NULL)
            send_answer(d->req, status, body, len);
        else
            free(body);
        dyn_unref(d);
        return;
    }
    d->status = status;
    d->body = body;
    d->len = len;
    h2o_multithread_send_message(&d->th->store_receiver, &d->super);
}

void px_dynamo_on_messages(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    (void)receiver;
    while (!h2o_linklist_is_empty(messages)) {
        px_dyn_t *d = H2O_STRUCT_FROM_MEMBER(px_dyn_t, super.link, messages->next);
        h2o_linklist_unlink(&d->super.link);
        if (d->req != NULL) {
            send_answer(d->req, d->status, d->body, d->len);
            d->body = NULL; /* the request's now */
        }
        dyn_unref(d);
    }
}

static void on_req_gone(void *p)
{
    px_dyn_t *d = *(px_dyn_t **)p;
    d->req = NULL;
    dyn_unref(d);
}

/* DynamoDB's error shape, for what is refused before the store sees it. */
static void send_error(h2o_req_t *req, int status, const char *type, const char *message)
{
    char buf[512];
    int n = snprintf(buf, sizeof(buf), "{\"__type\":\"%s\",\"message\":\"%s\"}", type, message);
    send_answer(req, status, h2o_strdup(NULL, buf, (size_t)n).base, (size_t)n);
}

void px_dynamo_handle(h2o_req_t *req, px_req_t *st, px_origin_t *origin)
{
    px_thread_t *th = px_thread_of(req);
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-amz-target"), -1);
    static const char prefix[] = "DynamoDB_20120810.";
    px_dyn_t *d;
    h2o_iovec_t target;
    char *op;

    (void)origin;
    (void)st;
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("POST"));
        px_send_error(req, 405, "Method Not Allowed", "The DynamoDB API takes POST requests");
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
    d = h2o_mem_alloc(sizeof(*d));
    *d = (px_dyn_t){.th = th, .marker = &thread_marker, .req = req, .refs = 2};
    *(px_dyn_t **)h2o_mem_alloc_shared(&req->pool, sizeof(px_dyn_t *), on_req_gone) = d;
    store_call(th->srv->store, op, req->entity.base != NULL ? req->entity.base : "", req->entity.base != NULL ? req->entity.len : 0,
               on_done, d);
}
