/*
 * rest_json: what the REST origin (rest.c) needs of JSON: text built in a request's pool (px_rb_t), an exact scanner of
 * JSON text (numbers keep their text: no double in between), and the conversions between plain JSON and DynamoDB's
 * attribute values (as lib-dynamodb's DocumentClient marshalls them). Everything lives in the request's pool.
 */
#include <jansson.h>
#include <string.h>
#include "proxy/internal.h"

/* ---- text built in the request's pool ---- */

px_rb_t px_rb_new(h2o_req_t *req, size_t cap)
{
    return (px_rb_t){&req->pool, h2o_mem_alloc_pool(&req->pool, cap), 0, cap};
}

/* Room for n more bytes at the end (the text moves to a larger chunk of the pool when it must grow). */
char *px_rb_room(px_rb_t *b, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = (b->len + n) * 2;
        char *p = h2o_mem_alloc_pool(b->pool, cap);
        memcpy(p, b->p, b->len);
        b->p = p;
        b->cap = cap;
    }
    return b->p + b->len;
}

void px_rb_add(px_rb_t *b, const char *s, size_t n)
{
    memcpy(px_rb_room(b, n), s, n);
    b->len += n;
}

void px_rb_iov(px_rb_t *b, h2o_iovec_t v)
{
    px_rb_add(b, v.base, v.len);
}

/* A JSON string token without its quotes (the store's numbers: "1.5" -> 1.5); any other token as it is. */
static void rb_unquoted(px_rb_t *b, h2o_iovec_t v)
{
    if (v.len >= 2 && v.base[0] == '"')
        px_rb_add(b, v.base + 1, v.len - 2);
    else
        px_rb_iov(b, v);
}

h2o_iovec_t px_rb_done(px_rb_t *b)
{
    return h2o_iovec_init(b->p, b->len);
}

/* s as a JSON string (bytes >= 0x80 as they are: the store checks UTF-8). */
void px_rb_str(px_rb_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    PX_RB_LIT(b, "\"");
    for (size_t i = 0; i != n; ++i) {
        unsigned char c = (unsigned char)s[i];
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        if (c == '"' || c == '\\') {
            esc[1] = (char)c;
            px_rb_add(b, esc, 2);
        } else if (c < 0x20) {
            px_rb_add(b, esc, 6);
        } else {
            px_rb_add(b, (const char *)&c, 1);
        }
    }
    PX_RB_LIT(b, "\"");
}

/* ---- JSON text, scanned exactly (numbers keep their text) ---- */

static const char *js_ws(const char *p, const char *end)
{
    while (p != end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        ++p;
    return p;
}

/* p at '"': past the closing quote, or NULL. Escapes are checked; UTF-8 is the store's to check. */
static const char *js_str(const char *p, const char *end)
{
    for (++p; p < end; ++p) {
        if (*p == '"')
            return p + 1;
        if ((unsigned char)*p < 0x20)
            return NULL;
        if (*p != '\\')
            continue;
        if (++p == end)
            return NULL;
        if (*p == 'u') {
            if (end - p < 5)
                return NULL;
            for (int i = 1; i <= 4; ++i)
                if (px_hex_digit(p[i]) < 0)
                    return NULL;
            p += 4;
        } else if (*p == '\0' || strchr("\"\\/bfnrt", *p) == NULL) {
            return NULL;
        }
    }
    return NULL;
}

static const char *js_digits(const char *p, const char *end)
{
    while (p != end && *p >= '0' && *p <= '9')
        ++p;
    return p;
}

/* A JSON number at p: past it, or NULL. */
const char *px_js_num(const char *p, const char *end)
{
    const char *d;

    if (p != end && *p == '-')
        ++p;
    if (p == end || *p < '0' || *p > '9')
        return NULL;
    p = *p == '0' ? p + 1 : js_digits(p, end);
    if (p != end && *p == '.') {
        d = p + 1;
        if ((p = js_digits(d, end)) == d)
            return NULL;
    }
    if (p != end && (*p == 'e' || *p == 'E')) {
        d = ++p;
        if (p != end && (*p == '+' || *p == '-'))
            d = ++p;
        if ((p = js_digits(d, end)) == d)
            return NULL;
    }
    return p;
}

static const char *js_lit(const char *p, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    return (size_t)(end - p) >= n && memcmp(p, lit, n) == 0 ? p + n : NULL;
}

/* One JSON value from p (after white space): past it, or NULL when it is not one (or nests deeper than depth). */
static const char *js_val(const char *p, const char *end, int depth)
{
    char close;

    if ((p = js_ws(p, end)) == end)
        return NULL;
    switch (*p) {
    case '"':
        return js_str(p, end);
    case 't':
        return js_lit(p, end, "true");
    case 'f':
        return js_lit(p, end, "false");
    case 'n':
        return js_lit(p, end, "null");
    case '{':
    case '[':
        break;
    default:
        return px_js_num(p, end);
    }
    close = *p == '{' ? '}' : ']';
    if (depth == 0)
        return NULL;
    if ((p = js_ws(p + 1, end)) != end && *p == close)
        return p + 1;
    for (;;) {
        if (close == '}') {
            if ((p = js_ws(p, end)) == end || *p != '"' || (p = js_str(p, end)) == NULL || (p = js_ws(p, end)) == end ||
                *p++ != ':')
                return NULL;
        }
        if ((p = js_val(p, end, depth - 1)) == NULL || (p = js_ws(p, end)) == end)
            return NULL;
        if (*p == close)
            return p + 1;
        if (*p++ != ',')
            return NULL;
    }
}

/* Whether v is exactly one JSON value (white space around it allowed) starting with `first` ('{' for an object). */
int px_js_is_whole(h2o_iovec_t v, char first)
{
    const char *end = v.base + v.len, *p = js_ws(v.base, end), *q = js_val(p, end, PX_REST_MAX_DEPTH);
    return q != NULL && js_ws(q, end) == end && *p == first;
}

/* Walks an object's members (name set) or an array's elements (name NULL); it starts at the '{' or '['. */
px_js_it_t px_js_iter(h2o_iovec_t v)
{
    return (px_js_it_t){v.base, v.base + v.len};
}

/* The next member or element: 1, or 0 at the end (or on anything that is not JSON). */
int px_js_next(px_js_it_t *it, h2o_iovec_t *name, h2o_iovec_t *val)
{
    const char *p = js_ws(it->p, it->end), *end = it->end, *q;

    if (p == end || *p == '}' || *p == ']')
        return 0;
    if (*p == '{' || *p == '[' || *p == ',')
        p = js_ws(p + 1, end);
    if (p == end || *p == '}' || *p == ']')
        return 0;
    if (name != NULL) {
        if (*p != '"' || (q = js_str(p, end)) == NULL)
            return 0;
        *name = h2o_iovec_init(p, q - p);
        if ((p = js_ws(q, end)) == end || *p++ != ':')
            return 0;
        p = js_ws(p, end);
    }
    if ((q = js_val(p, end, PX_REST_SKIP_DEPTH)) == NULL)
        return 0;
    *val = h2o_iovec_init(p, q - p);
    it->p = q;
    return 1;
}

/* The value of member `name` (plain ASCII) of an object; len 0 when absent. */
h2o_iovec_t px_js_get(h2o_iovec_t obj, const char *name)
{
    px_js_it_t it = px_js_iter(obj);
    h2o_iovec_t n, v;
    size_t len = strlen(name);

    if (obj.len != 0 && obj.base[0] == '{')
        while (px_js_next(&it, &n, &v))
            if (n.len == len + 2 && memcmp(n.base + 1, name, len) == 0)
                return v;
    return h2o_iovec_init(NULL, 0);
}

/* A JSON string token's text (decoded by jansson when it has escapes; in the pool). */
h2o_iovec_t px_js_unquote(h2o_mem_pool_t *pool, h2o_iovec_t tok)
{
    h2o_iovec_t out = h2o_iovec_init("", 0);
    json_t *j;

    if (tok.len < 2 || tok.base[0] != '"')
        return out;
    if (memchr(tok.base, '\\', tok.len) == NULL)
        return h2o_iovec_init(tok.base + 1, tok.len - 2);
    if ((j = json_loadb(tok.base, tok.len, JSON_DECODE_ANY, NULL)) != NULL && json_is_string(j))
        out = h2o_strdup(pool, json_string_value(j), json_string_length(j));
    json_decref(j);
    return out;
}

/* ---- plain JSON <-> DynamoDB attribute values ---- */

static void to_ddb_map(px_rb_t *b, h2o_iovec_t obj);

/* A plain JSON value as an attribute value, with its text as it is (numbers exact). */
void px_to_ddb(px_rb_t *b, h2o_iovec_t v)
{
    px_js_it_t it = px_js_iter(v);
    h2o_iovec_t e;

    switch (v.base[0]) {
    case '"':
        PX_RB_LIT(b, "{\"S\":");
        px_rb_iov(b, v);
        break;
    case 't':
    case 'f':
        PX_RB_LIT(b, "{\"BOOL\":");
        px_rb_iov(b, v);
        break;
    case 'n':
        PX_RB_LIT(b, "{\"NULL\":true");
        break;
    case '[':
        PX_RB_LIT(b, "{\"L\":[");
        for (int first = 1; px_js_next(&it, NULL, &e); first = 0) {
            if (!first)
                PX_RB_LIT(b, ",");
            px_to_ddb(b, e);
        }
        PX_RB_LIT(b, "]");
        break;
    case '{':
        PX_RB_LIT(b, "{\"M\":");
        to_ddb_map(b, v);
        break;
    default:
        PX_RB_LIT(b, "{\"N\":\"");
        px_rb_iov(b, v);
        PX_RB_LIT(b, "\"");
    }
    PX_RB_LIT(b, "}");
}

static void to_ddb_map(px_rb_t *b, h2o_iovec_t obj)
{
    px_js_it_t it = px_js_iter(obj);
    h2o_iovec_t n, v;

    PX_RB_LIT(b, "{");
    for (int first = 1; px_js_next(&it, &n, &v); first = 0) {
        if (!first)
            PX_RB_LIT(b, ",");
        px_rb_iov(b, n);
        PX_RB_LIT(b, ":");
        px_to_ddb(b, v);
    }
    PX_RB_LIT(b, "}");
}

static void to_plain(px_rb_t *b, h2o_iovec_t av);

/* An attribute value ({"S": "x"}) as plain JSON: as lib-dynamodb unmarshalls it, numbers with their text. */
static void to_plain(px_rb_t *b, h2o_iovec_t av)
{
    px_js_it_t it = px_js_iter(av), in;
    h2o_iovec_t t, v, e;
    int first = 1;

    if (!px_js_next(&it, &t, &v)) {
        PX_RB_LIT(b, "null");
        return;
    }
    in = px_js_iter(v);
    if (PX_TOK_IS(t, "\"N\"")) {
        rb_unquoted(b, v);
    } else if (PX_TOK_IS(t, "\"NULL\"")) {
        PX_RB_LIT(b, "null");
    } else if (PX_TOK_IS(t, "\"M\"")) {
        px_to_plain_map(b, v);
    } else if (PX_TOK_IS(t, "\"L\"") || PX_TOK_IS(t, "\"NS\"")) {
        PX_RB_LIT(b, "[");
        for (; px_js_next(&in, NULL, &e); first = 0) {
            if (!first)
                PX_RB_LIT(b, ",");
            if (PX_TOK_IS(t, "\"NS\""))
                rb_unquoted(b, e);
            else
                to_plain(b, e);
        }
        PX_RB_LIT(b, "]");
    } else {
        px_rb_iov(b, v); /* S, B, BOOL, SS, BS: the same JSON */
    }
}

void px_to_plain_map(px_rb_t *b, h2o_iovec_t obj)
{
    px_js_it_t it = px_js_iter(obj);
    h2o_iovec_t n, v;

    PX_RB_LIT(b, "{");
    for (int first = 1; px_js_next(&it, &n, &v); first = 0) {
        if (!first)
            PX_RB_LIT(b, ",");
        px_rb_iov(b, n);
        PX_RB_LIT(b, ":");
        to_plain(b, v);
    }
    PX_RB_LIT(b, "}");
}
