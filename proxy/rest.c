/*
 * rest: the item store's tables as plain JSON resources, for HTTP clients that do not speak DynamoDB
 * (origin: { store: rest, tables: [...] }; without `tables`, every table). Under the route's path prefix P:
 *
 *   GET    P/{table}/{key}[/{sortkey}]  200 the item as plain JSON, with its ETag; 404 when there is none. HEAD too.
 *                                       If-None-Match (ETags, weak comparison, or *) -> 304 with the ETag;
 *                                       If-Match (strong comparison, or *) that fails -> 412.
 *   PUT    P/{table}/{key}[/{sortkey}]  a JSON object: the whole item, replacing any. 201 created or 200 replaced,
 *                                       with the new ETag and no body. If-None-Match: * creates only; If-Match:
 *                                       "etag" replaces that version only (* any version); else 412.
 *   PATCH  P/{table}/{key}[/{sortkey}]  a JSON object of top-level attributes to set, null removing one (an UpdateItem
 *                                       with SET and REMOVE; a shallow merge). 200 the new item with its ETag; 404
 *                                       when there is no item (PATCH does not create); If-Match -> 412.
 *   DELETE P/{table}/{key}[/{sortkey}]  204; 404 when there is no item; If-Match -> 412.
 *   GET    P/{table}?key=K&prefix=X&limit=N&cursor=C
 *                                       200 {"items": [...], "cursor": "..." | null}. With key: a Query of partition
 *                                       K in sort-key order, prefix a begins_with on the sort key. Without key: a Scan
 *                                       in the store's key order, prefix a filter on the partition key: as with
 *                                       DynamoDB's Limit, limit counts the items read, so a page may hold fewer (even
 *                                       none) and still have a cursor. limit 1..1000, default 100. cursor: the
 *                                       previous page's, opaque (base64url of LastEvaluatedKey); null at the end.
 *
 * Keys: each path segment is percent-decoded (%2F is a '/' inside a key) and typed by the table's key schema
 * (DescribeTable): S as it is, N a JSON number (its text as written), B base64url. A PUT or PATCH body may leave the
 * key attributes out (the URL's are used) or give them with the URL's value (the same text for N), nothing else.
 * Values: the store's attribute values become plain JSON as lib-dynamodb's DocumentClient unmarshalls them: S string,
 * N number (its exact text), BOOL, NULL null, L array, M object, B a base64 string, and the sets SS / NS / BS arrays
 * of strings / numbers / base64 strings (they write back as lists). Bodies go the other way with their numbers'
 * exact text (up to DynamoDB's 38 digits; no double in between): string S, number N, true/false BOOL, null NULL,
 * array L, object M.
 * ETags: "<16 hex digits>", the store's version of the item (a 64-bit hash of its stored text): it changes whenever
 * the item does. If-None-Match on a write is * on PUT only. If-Match on a write takes ETags or *: the store checks
 * one, atomically with the write; with several, the item's current ETag is read first and, when listed, is the one.
 * Errors: {"message", "request_id"}: 400 bad JSON, bad key, bad query, or what the store refuses (its message); 404
 * no such table (or one not in `tables`) or item; 405 other methods, with Allow; 412 a failed If-Match /
 * If-None-Match (409 for another failed condition, which no request makes today); 413 a body over the route's max_body_size
 * (handler.c); 500 a store failure.
 *
 * Each request asks DescribeTable first (a read: at once, on this thread; the answer is remembered by the worker
 * thread for a second, SCHEMA_TTL_MS, so that a busy table is described once a second, not once a request: a table
 * made again with another key schema within that second gets the store's refusal of a mistyped key, never a wrong
 * write), then runs its operation through
 * px_store_call (dynamo.c): writes are answered after their commit, back on this thread. Everything is in the
 * request's pool.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "proxy/internal.h"

#define REST_MAX_TAGS 16 /* ETags in one If-Match / If-None-Match */
#define REST_DEFAULT_LIMIT 100
#define REST_MAX_LIMIT 1000

typedef enum { R_GET, R_PUT, R_PATCH, R_DELETE, R_LIST } rest_op_t;

/* The ETags of If-Match or If-None-Match. */
typedef struct rest_tags {
    int present, any;
    size_t n;
    struct {
        h2o_iovec_t v; /* without quotes */
        int weak;
    } t[REST_MAX_TAGS];
} rest_tags_t;

/* A key attribute of the table. */
typedef struct rest_key {
    h2o_iovec_t tok;  /* its name as a JSON string (with the quotes), as the store wrote it */
    h2o_iovec_t name; /* decoded */
    char type;        /* 'S', 'N' or 'B' */
} rest_key_t;

typedef struct rest {
    h2o_req_t *req;
    rest_op_t op;
    h2o_iovec_t table; /* decoded */
    size_t nsegs;
    h2o_iovec_t segs[2]; /* the key's path segments, decoded */
    h2o_iovec_t body;    /* PUT, PATCH: the JSON object */
    size_t nkeys;
    rest_key_t keys[2];
    h2o_iovec_t vals[2]; /* the key's attribute values ({"S": ...}) */
    h2o_iovec_t key;     /* {name: value, ...} */
    rest_tags_t if_match, if_none_match;
    h2o_iovec_t pick; /* of several If-Match ETags, the item's current one */
    int described;    /* the table's description came from the thread's memory (schema_slots) */
} rest_t;

/* ---- answers ---- */

static const char *reason_of(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 412:
        return "Precondition Failed";
    default:
        return "Internal Server Error";
    }
}

/* Ends the request with our JSON error; the message is formatted into the pool. */
__attribute__((format(printf, 3, 4))) static void fail(h2o_req_t *req, int status, const char *fmt, ...)
{
    char *msg = h2o_mem_alloc_pool(&req->pool, 1024);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, 1024, fmt, ap);
    va_end(ap);
    px_send_error(req, status, reason_of(status), msg);
}

/* Sends a JSON body (len 0: none) with the item's ETag (hex, or len 0). 204 and 304 have no length. */
static void send_json(h2o_req_t *req, int status, const char *reason, h2o_iovec_t body, h2o_iovec_t etag)
{
    static h2o_generator_t generator = {NULL, NULL};
    int is_head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));

    req->res.status = status;
    req->res.reason = reason;
    req->res.content_length = status == 204 || status == 304 ? SIZE_MAX : body.len;
    if (body.len != 0)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    if (etag.len != 0) {
        h2o_iovec_t q = h2o_concat(&req->pool, h2o_iovec_init(H2O_STRLIT("\"")), etag, h2o_iovec_init(H2O_STRLIT("\"")));
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL, q.base, q.len);
    }
    h2o_start_response(req, &generator);
    h2o_send(req, &body, is_head || body.len == 0 ? 0 : 1, H2O_SEND_STATE_FINAL);
}

/* ---- the request: path, keys, preconditions ---- */

/* Splits the raw path (not the normalized one, where %2F is already a '/') below the route's prefix into table and
 * key segments. 0, or -1 answered. */
static int parse_path(rest_t *r, px_req_t *st)
{
    h2o_req_t *req = r->req;
    const char *p = req->path.base, *end = p + (req->query_at != SIZE_MAX ? req->query_at : req->path.len), *q;
    size_t skip = 0, n = 0;
    h2o_iovec_t segs[3];

    if (st->match->prefix_len != 0) /* 0: a request hook's path left the prefix */
        for (const char *s = st->match->route->path; *s != '\0'; ++s)
            skip += s[0] == '/' && s[1] != '/' && s[1] != '\0';
    if (end > p && end[-1] == '/')
        --end; /* P/table/ is P/table */
    for (p = p + 1; p <= end; p = q + 1) {
        q = memchr(p, '/', end - p);
        q = q != NULL ? q : end;
        if (skip != 0) {
            --skip;
            continue;
        }
        if ((q - p == 1 && p[0] == '.') || (q - p == 2 && p[0] == '.' && p[1] == '.') || (q == p && p != end)) {
            fail(req, 400, "Bad Request: an empty, . or .. path segment");
            return -1;
        }
        if (q == p)
            continue;
        if (n == 3) {
            fail(req, 404, "Not Found: the path is /{table}/{key}[/{sortkey}]");
            return -1;
        }
        segs[n++] = px_pct_decode(&req->pool, p, (size_t)(q - p), 0);
    }
    if (n == 0) {
        fail(req, 404, "Not Found: the path names no table: /{table}[/{key}[/{sortkey}]]");
        return -1;
    }
    r->table = segs[0];
    r->nsegs = n - 1;
    for (size_t i = 1; i != n; ++i)
        r->segs[i - 1] = segs[i];
    return 0;
}

/* Reads every field `name` (If-Match, If-None-Match): "*", "etag" or W/"etag", comma-separated. 0, or -1 answered. */
static int parse_tags(h2o_req_t *req, const h2o_token_t *name, rest_tags_t *out)
{
    ssize_t i = -1;

    *out = (rest_tags_t){0};
    while ((i = h2o_find_header(&req->headers, name, i)) != -1) {
        const char *p = req->headers.entries[i].value.base, *end = p + req->headers.entries[i].value.len, *q;
        out->present = 1;
        for (;;) {
            int weak;
            while (p != end && (*p == ' ' || *p == '\t' || *p == ','))
                ++p;
            if (p == end)
                break;
            if (*p == '*') {
                out->any = 1;
                ++p;
                continue;
            }
            if ((weak = end - p >= 2 && p[0] == 'W' && p[1] == '/'))
                p += 2;
            if (p == end || *p != '"' || (q = memchr(p + 1, '"', end - p - 1)) == NULL || out->n == REST_MAX_TAGS) {
                fail(req, 400, "Bad Request: %s takes * or up to %d entity tags (\"etag\" or W/\"etag\")", name->buf.base,
                     REST_MAX_TAGS);
                return -1;
            }
            out->t[out->n].v = h2o_iovec_init(p + 1, q - p - 1);
            out->t[out->n++].weak = weak;
            p = q + 1;
        }
    }
    return 0;
}

/* Whether an item's ETag (hex; len 0: no item) matches: strong comparison, or weak (If-None-Match). */
static int tags_match(const rest_tags_t *t, h2o_iovec_t etag, int weak_ok)
{
    if (etag.len == 0)
        return 0;
    if (t->any)
        return 1;
    for (size_t i = 0; i != t->n; ++i)
        if ((weak_ok || !t->t[i].weak) && h2o_memis(t->t[i].v.base, t->t[i].v.len, etag.base, etag.len))
            return 1;
    return 0;
}

/* The table's key attributes from its DescribeTable answer. 0, or -1 when it is not what the store writes. */
static int read_schema(rest_t *r, h2o_iovec_t ans)
{
    h2o_iovec_t t = px_js_get(ans, "Table"), defs = px_js_get(t, "AttributeDefinitions"), e, d;
    px_js_it_t ks = px_js_iter(px_js_get(t, "KeySchema"));

    for (r->nkeys = 0; r->nkeys != 2 && px_js_next(&ks, NULL, &e); ++r->nkeys) {
        rest_key_t *k = &r->keys[r->nkeys];
        px_js_it_t di = px_js_iter(defs);
        k->tok = px_js_get(e, "AttributeName");
        k->name = px_js_unquote(&r->req->pool, k->tok);
        k->type = 0;
        while (px_js_next(&di, NULL, &d)) {
            h2o_iovec_t n = px_js_get(d, "AttributeName"), at = px_js_get(d, "AttributeType");
            if (h2o_memis(n.base, n.len, k->tok.base, k->tok.len) && at.len == 3)
                k->type = at.base[1];
        }
        if (k->tok.len == 0 || (k->type != 'S' && k->type != 'N' && k->type != 'B'))
            return -1;
    }
    return r->nkeys != 0 ? 0 : -1;
}

/* text as an attribute value of key attribute k's type ({"S": ...}) into b. 0, or -1 answered (400). */
static int typed_value(rest_t *r, const rest_key_t *k, h2o_iovec_t text, px_rb_t *b)
{
    const char *end = text.base + text.len;
    h2o_iovec_t bin;

    switch (k->type) {
    case 'N':
        if (text.len == 0 || px_js_num(text.base, end) != end) {
            fail(r->req, 400, "Bad Request: %.*s is a number, not \"%.*s\"", (int)k->name.len, k->name.base,
                 (int)(text.len > 100 ? 100 : text.len), text.base);
            return -1;
        }
        PX_RB_LIT(b, "{\"N\":\"");
        px_rb_iov(b, text);
        PX_RB_LIT(b, "\"}");
        return 0;
    case 'B':
        while (text.len != 0 && text.base[text.len - 1] == '=')
            --text.len;
        bin = h2o_decode_base64url(&r->req->pool, text.base, text.len);
        if (bin.base == NULL) {
            fail(r->req, 400, "Bad Request: %.*s is binary: base64url, not \"%.*s\"", (int)k->name.len, k->name.base,
                 (int)(text.len > 100 ? 100 : text.len), text.base);
            return -1;
        }
        PX_RB_LIT(b, "{\"B\":\"");
        b->len += h2o_base64_encode(px_rb_room(b, h2o_base64_encode_capacity(bin.len)), bin.base, bin.len, 0);
        PX_RB_LIT(b, "\"}");
        return 0;
    default:
        PX_RB_LIT(b, "{\"S\":");
        px_rb_str(b, text.base, text.len);
        PX_RB_LIT(b, "}");
        return 0;
    }
}

/* The key's attribute values from the path, and the Key member. 0, or -1 answered. */
static int key_values(rest_t *r)
{
    px_rb_t key = px_rb_new(r->req, 128);
    const rest_key_t *k = r->keys;

    if (r->nsegs != r->nkeys) {
        if (r->nkeys == 2)
            fail(r->req, 400, "Bad Request: the key of table %s is %.*s and %.*s: the path is /%s/{%.*s}/{%.*s}", r->table.base,
                 (int)k[0].name.len, k[0].name.base, (int)k[1].name.len, k[1].name.base, r->table.base, (int)k[0].name.len,
                 k[0].name.base, (int)k[1].name.len, k[1].name.base);
        else
            fail(r->req, 400, "Bad Request: the key of table %s is %.*s: the path is /%s/{%.*s}", r->table.base, (int)k[0].name.len,
                 k[0].name.base, r->table.base, (int)k[0].name.len, k[0].name.base);
        return -1;
    }
    PX_RB_LIT(&key, "{");
    for (size_t i = 0; i != r->nkeys; ++i) {
        px_rb_t v = px_rb_new(r->req, r->segs[i].len * 2 + 16);
        if (typed_value(r, &k[i], r->segs[i], &v) != 0)
            return -1;
        r->vals[i] = px_rb_done(&v);
        if (i != 0)
            PX_RB_LIT(&key, ",");
        px_rb_iov(&key, k[i].tok);
        PX_RB_LIT(&key, ":");
        px_rb_iov(&key, r->vals[i]);
    }
    PX_RB_LIT(&key, "}");
    r->key = px_rb_done(&key);
    return 0;
}

/* Which key attribute a body member names (-1: none). */
static int key_index(rest_t *r, h2o_iovec_t name)
{
    h2o_iovec_t n = px_js_unquote(&r->req->pool, name);
    for (size_t i = 0; i != r->nkeys; ++i)
        if (h2o_memis(n.base, n.len, r->keys[i].name.base, r->keys[i].name.len))
            return (int)i;
    return -1;
}

/* A key attribute in a body must have the URL's value (the same text for N). 0, or -1 answered. */
static int check_key_member(rest_t *r, int i, h2o_iovec_t v)
{
    h2o_iovec_t seg = r->segs[i], text = r->keys[i].type == 'N' ? v : px_js_unquote(&r->req->pool, v);

    if ((r->keys[i].type == 'N' || v.base[0] == '"') && h2o_memis(text.base, text.len, seg.base, seg.len))
        return 0;
    fail(r->req, 400, "Bad Request: %.*s is the item's key: it comes from the URL, and the body gives another value",
         (int)r->keys[i].name.len, r->keys[i].name.base);
    return -1;
}

/* Whether the store's error __type (a JSON string token) is DynamoDB's `name`. */
static int type_is(h2o_iovec_t type, const char *name)
{
    size_t n = strlen(name);
    return type.len >= n + 3 && type.base[type.len - n - 2] == '#' && memcmp(type.base + type.len - n - 1, name, n) == 0;
}

/* Answers a store error: 404 for a missing table, `ccf` for a failed condition, 400 with the store's message, 500. */
static void store_error(rest_t *r, int ccf, int status, const char *body, size_t len)
{
    h2o_iovec_t ans = h2o_iovec_init(body, len), type = px_js_get(ans, "__type");
    h2o_iovec_t msg = px_js_unquote(&r->req->pool, px_js_get(ans, "message"));

    if (status >= 500)
        fail(r->req, 500, "Internal Server Error: %.*s", (int)msg.len, msg.base);
    else if (type_is(type, "ResourceNotFoundException"))
        fail(r->req, 404, "Not Found: no table %s", r->table.base);
    else if (type_is(type, "ConditionalCheckFailedException"))
        fail(r->req, ccf,
             ccf == 412   ? "Precondition Failed: the item's version does not match If-Match / If-None-Match"
             : ccf == 404 ? "Not Found: no such item"
                          : "Conflict: the conditional request failed");
    else
        fail(r->req, 400, "Bad Request: %.*s", (int)msg.len, msg.base);
}

/* A store request's text so far: {"TableName": ...[, "Key": ...] */
static px_rb_t op_start(rest_t *r, int with_key, size_t extra)
{
    px_rb_t b = px_rb_new(r->req, 128 + r->table.len * 6 + r->key.len + extra);
    PX_RB_LIT(&b, "{\"TableName\":");
    px_rb_str(&b, r->table.base, r->table.len);
    if (with_key) {
        PX_RB_LIT(&b, ",\"Key\":");
        px_rb_iov(&b, r->key);
    }
    return b;
}

static int is_etag(h2o_iovec_t v)
{
    if (v.len != 16)
        return 0;
    for (size_t i = 0; i != 16; ++i)
        if (!((v.base[i] >= '0' && v.base[i] <= '9') || (v.base[i] >= 'a' && v.base[i] <= 'f')))
            return 0;
    return 1;
}

/* The ETags of If-Match that a write can match (strong, and of our form): how many (more than one only when they
 * differ), the first in *hex. */
static size_t match_candidates(const rest_t *r, h2o_iovec_t *hex)
{
    size_t n = 0;

    *hex = h2o_iovec_init(NULL, 0);
    for (size_t i = 0; i != r->if_match.n; ++i) {
        h2o_iovec_t t = r->if_match.t[i].v;
        if (r->if_match.t[i].weak || !is_etag(t))
            continue; /* a weak tag never matches strongly, nor one that is none of ours */
        if (hex->len == 0)
            *hex = t;
        n += !h2o_memis(t.base, t.len, hex->base, hex->len);
    }
    return n + (hex->len != 0);
}

/* A write's If-Match / If-None-Match as the store's members: 1 when the item must exist (If-Match: *), 0, or -1
 * answered (400; 412 when no version can match). */
static int write_conditions(rest_t *r, px_rb_t *b)
{
    h2o_iovec_t hex = r->pick;

    if (r->if_none_match.present) {
        if (r->op != R_PUT || !r->if_none_match.any || r->if_none_match.n != 0) {
            fail(r->req, 400, "Bad Request: If-None-Match on a write is * on PUT only (create, never replace)");
            return -1;
        }
        PX_RB_LIT(b, ",\"EdgeIfNoneMatch\":\"*\"");
    }
    if (!r->if_match.present)
        return 0;
    if (r->if_match.any)
        return 1;
    if (hex.len == 0)
        match_candidates(r, &hex);
    if (hex.len == 0) {
        fail(r->req, 412, "Precondition Failed: If-Match names no version the item can have");
        return -1;
    }
    PX_RB_LIT(b, ",\"EdgeIfMatch\":\"");
    px_rb_iov(b, hex);
    PX_RB_LIT(b, "\"");
    return 0;
}

/* The item must exist: ,"ConditionExpression":"attribute_exists(#k)", with the names {"#k": the partition key} or
 * without (the caller writes them). */
static void exists_condition(rest_t *r, px_rb_t *b, int with_names)
{
    PX_RB_LIT(b, ",\"ConditionExpression\":\"attribute_exists(#k)\"");
    if (with_names) {
        PX_RB_LIT(b, ",\"ExpressionAttributeNames\":{\"#k\":");
        px_rb_iov(b, r->keys[0].tok);
        PX_RB_LIT(b, "}");
    }
}

/* ---- the operations ---- */

static void on_get(h2o_req_t *req, void *data, int status, const char *body, size_t len)
{
    rest_t *r = data;
    h2o_iovec_t ans = h2o_iovec_init(body, len), item = px_js_get(ans, "Item"),
                etag = px_js_unquote(&req->pool, px_js_get(ans, "ETag"));
    px_rb_t b;

    if (status != 200) {
        store_error(r, 409, status, body, len);
    } else if (r->if_match.present && !tags_match(&r->if_match, etag, 0)) {
        fail(req, 412, "Precondition Failed: the item's version does not match If-Match");
    } else if (item.len == 0) {
        fail(req, 404, "Not Found: no such item");
    } else if (r->if_none_match.present && tags_match(&r->if_none_match, etag, 1)) {
        send_json(req, 304, "Not Modified", h2o_iovec_init(NULL, 0), etag);
    } else {
        b = px_rb_new(req, item.len + 16);
        px_to_plain_map(&b, item);
        send_json(req, 200, "OK", px_rb_done(&b), etag);
    }
}

/* GetItem with the item's ETag, answered to cb. */
static void get_item(rest_t *r, px_store_cb cb)
{
    px_rb_t b = op_start(r, 1, 0);
    PX_RB_LIT(&b, ",\"EdgeETag\":true}");
    px_store_call(r->req, "GetItem", b.p, b.len, cb, r);
}

static void on_put(h2o_req_t *req, void *data, int status, const char *body, size_t len)
{
    h2o_iovec_t ans = h2o_iovec_init(body, len), etag = px_js_unquote(&req->pool, px_js_get(ans, "ETag"));

    if (status != 200)
        store_error(data, 412, status, body, len);
    else if (px_js_get(ans, "Attributes").len == 0)
        send_json(req, 201, "Created", h2o_iovec_init(NULL, 0), etag);
    else
        send_json(req, 200, "OK", h2o_iovec_init(NULL, 0), etag);
}

/* The PUT body as the item: the key attributes from the URL, then the body's others. 0, or -1 answered. */
static int put_item(rest_t *r, px_rb_t *b)
{
    px_js_it_t it = px_js_iter(r->body);
    h2o_iovec_t n, v;
    int k;

    PX_RB_LIT(b, "{");
    for (size_t i = 0; i != r->nkeys; ++i) {
        if (i != 0)
            PX_RB_LIT(b, ",");
        px_rb_iov(b, r->keys[i].tok);
        PX_RB_LIT(b, ":");
        px_rb_iov(b, r->vals[i]);
    }
    while (px_js_next(&it, &n, &v)) {
        if ((k = key_index(r, n)) >= 0) {
            if (check_key_member(r, k, v) != 0)
                return -1;
            continue;
        }
        PX_RB_LIT(b, ",");
        px_rb_iov(b, n);
        PX_RB_LIT(b, ":");
        px_to_ddb(b, v);
    }
    PX_RB_LIT(b, "}");
    return 0;
}

static void do_put(rest_t *r)
{
    px_rb_t b = op_start(r, 0, r->body.len * 2);
    int exists;

    PX_RB_LIT(&b, ",\"ReturnValues\":\"ALL_OLD\",\"EdgeETag\":true,\"Item\":");
    if (put_item(r, &b) != 0 || (exists = write_conditions(r, &b)) < 0)
        return;
    if (exists)
        exists_condition(r, &b, 1);
    PX_RB_LIT(&b, "}");
    px_store_call(r->req, "PutItem", b.p, b.len, on_put, r);
}

static void on_patch(h2o_req_t *req, void *data, int status, const char *body, size_t len)
{
    rest_t *r = data;
    h2o_iovec_t ans = h2o_iovec_init(body, len), etag = px_js_unquote(&req->pool, px_js_get(ans, "ETag"));
    px_rb_t b;

    if (status != 200) {
        store_error(r, r->if_match.present ? 412 : 404, status, body, len);
        return;
    }
    b = px_rb_new(req, len + 16);
    px_to_plain_map(&b, px_js_get(ans, "Attributes"));
    send_json(req, 200, "OK", px_rb_done(&b), etag);
}

/* The PATCH body as SET and REMOVE clauses, with their names and values. 0, or -1 answered. */
static int patch_update(rest_t *r, px_rb_t *set, px_rb_t *rem, px_rb_t *names, px_rb_t *vals)
{
    px_js_it_t it = px_js_iter(r->body);
    h2o_iovec_t n, v;
    char ref[24];
    int k, rl;

    for (size_t i = 0; px_js_next(&it, &n, &v); ++i) {
        if ((k = key_index(r, n)) >= 0) {
            if (check_key_member(r, k, v) != 0)
                return -1;
            continue;
        }
        rl = snprintf(ref, sizeof(ref), "%zu", i);
        PX_RB_LIT(names, ",\"#a");
        px_rb_add(names, ref, rl);
        PX_RB_LIT(names, "\":");
        px_rb_iov(names, n);
        if (v.base[0] == 'n') {
            px_rb_iov(rem, rem->len != 0 ? h2o_iovec_init(H2O_STRLIT(", #a")) : h2o_iovec_init(H2O_STRLIT("REMOVE #a")));
            px_rb_add(rem, ref, rl);
            continue;
        }
        px_rb_iov(set, set->len != 0 ? h2o_iovec_init(H2O_STRLIT(", #a")) : h2o_iovec_init(H2O_STRLIT("SET #a")));
        px_rb_add(set, ref, rl);
        PX_RB_LIT(set, " = :v");
        px_rb_add(set, ref, rl);
        px_rb_iov(vals, vals->len != 0 ? h2o_iovec_init(H2O_STRLIT(",\":v")) : h2o_iovec_init(H2O_STRLIT("{\":v")));
        px_rb_add(vals, ref, rl);
        PX_RB_LIT(vals, "\":");
        px_to_ddb(vals, v);
    }
    return 0;
}

static void do_patch(rest_t *r)
{
    px_rb_t b = op_start(r, 1, r->body.len * 2), set = px_rb_new(r->req, 128), rem = px_rb_new(r->req, 64),
            names = px_rb_new(r->req, 128), vals = px_rb_new(r->req, r->body.len * 2 + 16);

    PX_RB_LIT(&b, ",\"ReturnValues\":\"ALL_NEW\",\"EdgeETag\":true");
    if (write_conditions(r, &b) < 0 || patch_update(r, &set, &rem, &names, &vals) != 0)
        return;
    exists_condition(r, &b, 0); /* PATCH does not create */
    if (set.len + rem.len != 0) {
        PX_RB_LIT(&b, ",\"UpdateExpression\":\"");
        px_rb_iov(&b, px_rb_done(&set));
        if (set.len != 0 && rem.len != 0)
            PX_RB_LIT(&b, " ");
        px_rb_iov(&b, px_rb_done(&rem));
        PX_RB_LIT(&b, "\"");
    }
    PX_RB_LIT(&b, ",\"ExpressionAttributeNames\":{\"#k\":");
    px_rb_iov(&b, r->keys[0].tok);
    px_rb_iov(&b, px_rb_done(&names));
    PX_RB_LIT(&b, "}");
    if (vals.len != 0) {
        PX_RB_LIT(&b, ",\"ExpressionAttributeValues\":");
        px_rb_iov(&b, px_rb_done(&vals));
        PX_RB_LIT(&b, "}");
    }
    PX_RB_LIT(&b, "}");
    px_store_call(r->req, "UpdateItem", b.p, b.len, on_patch, r);
}

static void on_delete(h2o_req_t *req, void *data, int status, const char *body, size_t len)
{
    if (status != 200)
        store_error(data, 412, status, body, len);
    else if (px_js_get(h2o_iovec_init(body, len), "Attributes").len == 0)
        fail(req, 404, "Not Found: no such item");
    else
        send_json(req, 204, "No Content", h2o_iovec_init(NULL, 0), h2o_iovec_init(NULL, 0));
}

static void do_delete(rest_t *r)
{
    px_rb_t b = op_start(r, 1, 0);
    int exists;

    PX_RB_LIT(&b, ",\"ReturnValues\":\"ALL_OLD\"");
    if ((exists = write_conditions(r, &b)) < 0)
        return;
    if (exists)
        exists_condition(r, &b, 1);
    PX_RB_LIT(&b, "}");
    px_store_call(r->req, "DeleteItem", b.p, b.len, on_delete, r);
}

static void on_list(h2o_req_t *req, void *data, int status, const char *body, size_t len)
{
    h2o_iovec_t ans = h2o_iovec_init(body, len), lek = px_js_get(ans, "LastEvaluatedKey"), e;
    px_js_it_t it = px_js_iter(px_js_get(ans, "Items"));
    px_rb_t b;

    if (status != 200) {
        store_error(data, 409, status, body, len);
        return;
    }
    b = px_rb_new(req, len + 64);
    PX_RB_LIT(&b, "{\"items\":[");
    for (int first = 1; px_js_next(&it, NULL, &e); first = 0) {
        if (!first)
            PX_RB_LIT(&b, ",");
        px_to_plain_map(&b, e);
    }
    PX_RB_LIT(&b, "],\"cursor\":");
    if (lek.len != 0) {
        PX_RB_LIT(&b, "\"");
        b.len += h2o_base64_encode(px_rb_room(&b, h2o_base64_encode_capacity(lek.len)), lek.base, lek.len, 1);
        PX_RB_LIT(&b, "\"");
    } else {
        PX_RB_LIT(&b, "null");
    }
    PX_RB_LIT(&b, "}");
    send_json(req, 200, "OK", px_rb_done(&b), h2o_iovec_init(NULL, 0));
}

/* ?key= and ?prefix= as the Query's key condition, or the Scan's filter, into b. 0, or -1 answered. */
static int list_condition(rest_t *r, px_rb_t *b, const char *key, const char *prefix)
{
    px_rb_t kv = px_rb_new(r->req, 64), pv = px_rb_new(r->req, 64);
    int sk = key != NULL; /* with a key, the prefix is on the sort key */

    if (prefix != NULL && *prefix == '\0')
        prefix = NULL;
    if (prefix != NULL && sk && r->nkeys != 2) {
        fail(r->req, 400, "Bad Request: table %s has no sort key: prefix goes with key= only on tables with one", r->table.base);
        return -1;
    }
    if ((key != NULL && typed_value(r, &r->keys[0], h2o_iovec_init(key, strlen(key)), &kv) != 0) ||
        (prefix != NULL && typed_value(r, &r->keys[sk], h2o_iovec_init(prefix, strlen(prefix)), &pv) != 0))
        return -1;
    if (key == NULL && prefix == NULL)
        return 0;
    if (key != NULL && prefix != NULL)
        PX_RB_LIT(b, ",\"KeyConditionExpression\":\"#k = :k AND begins_with(#s, :p)\"");
    else if (key != NULL)
        PX_RB_LIT(b, ",\"KeyConditionExpression\":\"#k = :k\"");
    else
        PX_RB_LIT(b, ",\"FilterExpression\":\"begins_with(#k, :p)\"");
    PX_RB_LIT(b, ",\"ExpressionAttributeNames\":{\"#k\":");
    px_rb_iov(b, r->keys[0].tok);
    if (key != NULL && prefix != NULL) {
        PX_RB_LIT(b, ",\"#s\":");
        px_rb_iov(b, r->keys[1].tok);
    }
    PX_RB_LIT(b, "},\"ExpressionAttributeValues\":{");
    if (key != NULL) {
        PX_RB_LIT(b, "\":k\":");
        px_rb_iov(b, px_rb_done(&kv));
    }
    if (prefix != NULL) {
        px_rb_iov(b, key != NULL ? h2o_iovec_init(H2O_STRLIT(",\":p\":")) : h2o_iovec_init(H2O_STRLIT("\":p\":")));
        px_rb_iov(b, px_rb_done(&pv));
    }
    PX_RB_LIT(b, "}");
    return 0;
}

static void do_list(rest_t *r)
{
    h2o_req_t *req = r->req;
    char *key = px_query_param(req, "key"), *limit = px_query_param(req, "limit"), *cursor = px_query_param(req, "cursor");
    size_t lim = REST_DEFAULT_LIMIT;
    h2o_iovec_t start = h2o_iovec_init(NULL, 0);
    px_rb_t b = op_start(r, 0, 256);
    char num[24];

    if (limit != NULL && ((lim = h2o_strtosize(limit, strlen(limit))) == SIZE_MAX || lim < 1 || lim > REST_MAX_LIMIT)) {
        fail(req, 400, "Bad Request: limit is a number from 1 to %d", REST_MAX_LIMIT);
        return;
    }
    if (cursor != NULL &&
        ((start = h2o_decode_base64url(&req->pool, cursor, strlen(cursor))).base == NULL || !px_js_is_whole(start, '{'))) {
        fail(req, 400, "Bad Request: the cursor is not one this API gave");
        return;
    }
    if (list_condition(r, &b, key, px_query_param(req, "prefix")) != 0)
        return;
    px_rb_add(&b, num, (size_t)snprintf(num, sizeof(num), ",\"Limit\":%zu", lim));
    if (start.len != 0) {
        PX_RB_LIT(&b, ",\"ExclusiveStartKey\":");
        px_rb_iov(&b, start);
    }
    PX_RB_LIT(&b, "}");
    px_store_call(req, key != NULL ? "Query" : "Scan", b.p, b.len, on_list, r);
}

/* ---- the request's way ---- */

static void do_op(rest_t *r);

/* If-Match with several ETags on a write: the store checks one, so the item's current ETag is read first and, if it
 * is listed, is the one the write must still find (a change in between fails the write: never a wrong success). */
static void on_pick(h2o_req_t *req, void *data, int status, const char *body, size_t len)
{
    rest_t *r = data;
    h2o_iovec_t etag = px_js_unquote(&req->pool, px_js_get(h2o_iovec_init(body, len), "ETag"));

    if (status != 200) {
        store_error(r, 409, status, body, len);
    } else if (!tags_match(&r->if_match, etag, 0)) {
        fail(req, 412, "Precondition Failed: the item's version does not match If-Match");
    } else {
        r->pick = etag;
        do_op(r);
    }
}

/* ---- the tables' descriptions, remembered per worker thread ---- */

#define SCHEMA_SLOTS 8
#define SCHEMA_TEXT_MAX 2048 /* longer descriptions (many indexes) are not remembered */
#define SCHEMA_TTL_MS 1000

static _Thread_local struct schema_slot {
    char table[256];
    uint64_t at_ms;
    size_t len;
    char text[SCHEMA_TEXT_MAX]; /* the DescribeTable answer */
} schema_slots[SCHEMA_SLOTS];
static _Thread_local unsigned schema_next;

static struct schema_slot *schema_find(rest_t *r)
{
    for (size_t i = 0; i != SCHEMA_SLOTS; ++i)
        if (schema_slots[i].len != 0 &&
            h2o_memis(schema_slots[i].table, strlen(schema_slots[i].table), r->table.base, r->table.len))
            return &schema_slots[i];
    return NULL;
}

static void schema_keep(rest_t *r, const char *body, size_t len)
{
    struct schema_slot *e = schema_find(r);
    if (len > SCHEMA_TEXT_MAX || r->table.len >= sizeof(e->table))
        return;
    if (e == NULL)
        e = &schema_slots[schema_next++ % SCHEMA_SLOTS];
    memcpy(e->table, r->table.base, r->table.len);
    e->table[r->table.len] = '\0';
    memcpy(e->text, body, len);
    e->len = len;
    e->at_ms = h2o_now(r->req->conn->ctx->loop);
}

static void on_describe(h2o_req_t *req, void *data, int status, const char *body, size_t len)
{
    rest_t *r = data;

    if (status == 200 && !r->described)
        schema_keep(r, body, len);
    if (status != 200) {
        store_error(r, 409, status, body, len);
        return;
    }
    if (read_schema(r, h2o_iovec_init(body, len)) != 0) {
        fail(req, 500, "Internal Server Error: an unexpected table description");
        return;
    }
    if (r->op == R_LIST) {
        do_list(r);
        return;
    }
    if (key_values(r) != 0)
        return;
    if (r->op != R_GET && r->if_match.present && !r->if_match.any && match_candidates(r, &r->pick) > 1) {
        r->pick = h2o_iovec_init(NULL, 0);
        get_item(r, on_pick);
        return;
    }
    do_op(r);
}

/* The operation, once the item's key is known. */
static void do_op(rest_t *r)
{
    switch (r->op) {
    case R_GET:
        get_item(r, on_get);
        break;
    case R_PUT:
        do_put(r);
        break;
    case R_PATCH:
        do_patch(r);
        break;
    default:
        do_delete(r);
    }
}

/* The operation of the method on the path's resource (a table, an item). 0, or -1 answered (405 with Allow). */
static int choose_op(rest_t *r)
{
    static const struct {
        const char *name;
        rest_op_t op;
    } methods[] = {{"GET", R_GET}, {"HEAD", R_GET}, {"PUT", R_PUT}, {"PATCH", R_PATCH}, {"DELETE", R_DELETE}};
    h2o_iovec_t m = r->req->method;
    size_t n = r->nsegs != 0 ? 5 : 2; /* a table takes GET and HEAD only */
    const char *allow = n == 5 ? "GET, HEAD, PUT, PATCH, DELETE" : "GET, HEAD";

    for (size_t i = 0; i != n; ++i) {
        if (h2o_memis(m.base, m.len, methods[i].name, strlen(methods[i].name))) {
            r->op = n == 5 ? methods[i].op : R_LIST;
            return 0;
        }
    }
    h2o_add_header(&r->req->pool, &r->req->res.headers, H2O_TOKEN_ALLOW, NULL, allow, strlen(allow));
    fail(r->req, 405, "Method Not Allowed: %s takes %s", r->nsegs != 0 ? "an item" : "a table", allow);
    return -1;
}

/* The table is one the route serves (`tables`), the preconditions and the body are well-formed. 0, or -1 answered. */
static int check_request(rest_t *r, const conf_origin_t *o)
{
    h2o_req_t *req = r->req;
    size_t i;

    for (i = 0; i != o->ntables && !h2o_memis(o->tables[i], strlen(o->tables[i]), r->table.base, r->table.len); ++i)
        ;
    if (o->ntables != 0 && i == o->ntables) {
        fail(req, 404, "Not Found: no table %s", r->table.base);
        return -1;
    }
    if (parse_tags(req, H2O_TOKEN_IF_MATCH, &r->if_match) != 0 || parse_tags(req, H2O_TOKEN_IF_NONE_MATCH, &r->if_none_match) != 0)
        return -1;
    if (r->op != R_PUT && r->op != R_PATCH)
        return 0;
    r->body = req->entity.base != NULL ? req->entity : h2o_iovec_init("", 0);
    if (!px_js_is_whole(r->body, '{')) {
        fail(req, 400, "Bad Request: the body must be a JSON object (valid JSON, nested at most %d deep)", PX_REST_MAX_DEPTH);
        return -1;
    }
    return 0;
}

void px_rest_handle(h2o_req_t *req, px_req_t *st, px_origin_t *origin)
{
    rest_t *r = h2o_mem_alloc_pool(&req->pool, sizeof(*r));
    px_rb_t b;

    *r = (rest_t){.req = req};
    if (parse_path(r, st) != 0 || choose_op(r) != 0 || check_request(r, &origin->route->origin) != 0)
        return;
    struct schema_slot *e = schema_find(r);
    if (e != NULL && h2o_now(req->conn->ctx->loop) - e->at_ms < SCHEMA_TTL_MS) {
        /* remembered: the answer again, copied into the pool (the key tokens point into it) */
        char *text = h2o_mem_alloc_pool(&req->pool, e->len);
        memcpy(text, e->text, e->len);
        r->described = 1;
        on_describe(req, r, 200, text, e->len);
        return;
    }
    b = op_start(r, 0, 0);
    PX_RB_LIT(&b, "}");
    px_store_call(req, "DescribeTable", b.p, b.len, on_describe, r);
}
