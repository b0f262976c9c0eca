/*
 * store/eval.c: evaluating parsed DynamoDB expressions on items. See eval.h for the semantics and the sources.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/decimal.h"
#include "store/value.h"
#include "store/eval.h"

#define E_NOATTR "The provided expression refers to an attribute that does not exist in the item"
#define E_OPTYPE "An operand in the update expression has an incorrect data type"
#define E_PATH "The document path provided in the update expression is invalid for update"
#define E_NOMEM "out of memory"

typedef struct ctx {
    const store_expr_t *expr;
    const json_t *item;
    json_t *const *values;
    char *err;
    size_t errlen;
} ctx_t;

/* ---- errors ---- */

static int vfail(ctx_t *c, int code, const char *prefix, const char *fmt, va_list ap)
{
    if (c->errlen > 0) {
        int n = snprintf(c->err, c->errlen, "%s", prefix);
        if (n >= 0 && (size_t)n < c->errlen)
            vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    }
    return code;
}

/* A runtime error of an update: DynamoDB's bare message. */
static int fail(ctx_t *c, const char *fmt, ...)
{
    va_list ap;
    int r;
    va_start(ap, fmt);
    r = vfail(c, STORE_EVAL_EINVALID, "", fmt, ap);
    va_end(ap);
    return r;
}

/* A problem of the request's values: "Invalid <kind>: ...". */
static int fail_expr(ctx_t *c, const char *fmt, ...)
{
    char prefix[64];
    va_list ap;
    int r;
    snprintf(prefix, sizeof(prefix), "Invalid %s: ", store_expr_kind_name(c->expr->kind));
    va_start(ap, fmt);
    r = vfail(c, STORE_EVAL_EINVALID, prefix, fmt, ap);
    va_end(ap);
    return r;
}

static int nomem(ctx_t *c)
{
    if (c->errlen > 0)
        snprintf(c->err, c->errlen, "%s", E_NOMEM);
    return STORE_EVAL_ENOMEM;
}

/* ---- values ---- */

static const json_t *value_of(const ctx_t *c, const store_expr_node_t *n)
{
    return c->values[n->value];
}

/* The payload of an AttributeValue of type t ({"S": "x"} -> "x"), or NULL. */
static const json_t *payload(const json_t *av, store_type_t t)
{
    const char *name = store_type_name(t);
    return name != NULL ? json_object_get(av, name) : NULL;
}

static int is_set(store_type_t t)
{
    return t == STORE_T_SS || t == STORE_T_NS || t == STORE_T_BS;
}

/* The scalar type of a set's members. */
static store_type_t member_type(store_type_t set)
{
    return set == STORE_T_SS ? STORE_T_S : set == STORE_T_NS ? STORE_T_N : STORE_T_B;
}

/* The type names of "operator: ADD, operand type: STRING" (DynamoDB's long names in that message). */
static const char *long_type_name(store_type_t t)
{
    switch (t) {
    case STORE_T_S:
        return "STRING";
    case STORE_T_N:
        return "NUMBER";
    case STORE_T_B:
        return "BINARY";
    case STORE_T_BOOL:
        return "BOOLEAN";
    case STORE_T_NULL:
        return "NULL";
    case STORE_T_L:
        return "LIST";
    case STORE_T_M:
        return "MAP";
    default:
        return store_type_name(t) != NULL ? store_type_name(t) : "";
    }
}

static const char *short_type_name(store_type_t t)
{
    const char *s = store_type_name(t);
    return s != NULL ? s : "";
}

/* base64 (RFC 4648, padded or not; other characters are skipped: values were checked before they got here). */
static int b64_digit(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+' || ch == '-')
        return 62;
    if (ch == '/' || ch == '_')
        return 63;
    return -1;
}

/* Decodes s into a new buffer (free it); NULL when out of memory. */
static unsigned char *b64_decode(const char *s, size_t len, size_t *outlen)
{
    unsigned char *out = malloc(len / 4 * 3 + 3), *p = out;
    uint32_t acc = 0;
    int bits = 0;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        int d = b64_digit((unsigned char)s[i]);
        if (d < 0)
            continue;
        acc = (acc << 6) | (uint32_t)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *p++ = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    *outlen = (size_t)(p - out);
    return out;
}

static size_t b64_decoded_len(const char *s, size_t len)
{
    size_t digits = 0;
    for (size_t i = 0; i < len; i++)
        digits += b64_digit((unsigned char)s[i]) >= 0;
    return digits * 6 / 8;
}

/* DynamoDB's size of a string: UTF-16 code units (characters of 4 UTF-8 bytes count 2). */
static size_t utf16_len(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        n += (ch & 0xC0) != 0x80;
        n += ch >= 0xF0;
    }
    return n;
}

static int num_of(const json_t *av, store_num_t *out)
{
    const json_t *s = payload(av, STORE_T_N);
    if (!json_is_string(s))
        return -1;
    return store_num_parse(json_string_value(s), json_string_length(s), out) == STORE_NUM_OK ? 0 : -1;
}

static json_t *num_av(const store_num_t *n)
{
    char buf[STORE_NUM_TEXT_MAX];
    size_t len = store_num_format(n, buf);
    return json_pack("{s:s%}", "N", buf, len);
}

/* Bytes of a string payload (S, or B decoded): s/len point into the value or into *heap (free it). */
static int bytes_of(const json_t *str, store_type_t t, const unsigned char **s, size_t *len, unsigned char **heap)
{
    *heap = NULL;
    if (t == STORE_T_B) {
        if ((*heap = b64_decode(json_string_value(str), json_string_length(str), len)) == NULL)
            return -1;
        *s = *heap;
    } else {
        *s = (const unsigned char *)json_string_value(str);
        *len = json_string_length(str);
    }
    return 0;
}

/*
 * A set member in a canonical form, for equality and hashing: SS the string, NS the normalized number text, BS the
 * decoded bytes. *key points into m, numbuf or *heap (free it). -1 when out of memory.
 */
static int member_key(store_type_t set, const json_t *m, char numbuf[STORE_NUM_TEXT_MAX], const char **key, size_t *len,
                      unsigned char **heap)
{
    store_num_t n;

    *heap = NULL;
    switch (set) {
    case STORE_T_NS:
        if (store_num_parse(json_string_value(m), json_string_length(m), &n) != STORE_NUM_OK) {
            *key = json_string_value(m);
            *len = json_string_length(m);
        } else {
            *len = store_num_format(&n, numbuf);
            *key = numbuf;
        }
        return 0;
    case STORE_T_BS:
        if ((*heap = b64_decode(json_string_value(m), json_string_length(m), len)) == NULL)
            return -1;
        *key = (const char *)*heap;
        return 0;
    default:
        *key = json_string_value(m);
        *len = json_string_length(m);
        return 0;
    }
}

/* 1 when the set members a and b (payload strings of a set of type t) are equal, 0 when not, -1 out of memory. */
static int member_equal(store_type_t set, const json_t *a, const json_t *b)
{
    char na[STORE_NUM_TEXT_MAX], nb[STORE_NUM_TEXT_MAX];
    const char *ka, *kb;
    size_t la, lb;
    unsigned char *ha, *hb;
    int r;

    if (!json_is_string(a) || !json_is_string(b))
        return 0;
    if (member_key(set, a, na, &ka, &la, &ha) != 0)
        return -1;
    if (member_key(set, b, nb, &kb, &lb, &hb) != 0) {
        free(ha);
        return -1;
    }
    r = la == lb && memcmp(ka, kb, la) == 0;
    free(ha);
    free(hb);
    return r;
}

/* ---- paths ---- */

/* One step down from an AttributeValue: a member of an M or an element of an L; NULL when there is none. */
static json_t *step(const json_t *av, const store_expr_elem_t *e)
{
    if (e->name != NULL) {
        const json_t *m = json_object_get(av, "M");
        return json_is_object(m) ? json_object_getn(m, e->name, e->len) : NULL;
    } else {
        const json_t *l = json_object_get(av, "L");
        return json_is_array(l) ? json_array_get(l, e->index) : NULL;
    }
}

/* The value at the first n elements of path in item, or NULL. */
static json_t *resolve_n(const json_t *item, const store_expr_path_t *path, size_t n)
{
    json_t *v;

    if (item == NULL || n == 0 || path->elems[0].name == NULL)
        return NULL;
    v = json_object_getn(item, path->elems[0].name, path->elems[0].len);
    for (size_t i = 1; v != NULL && i < n; i++)
        v = step(v, &path->elems[i]);
    return v;
}

static json_t *resolve(const json_t *item, const store_expr_path_t *path)
{
    return resolve_n(item, path, path->n);
}

/* ---- static checks of the request's values ---- */

static const char *op_name(store_expr_op_t op)
{
    switch (op) {
    case STORE_EXPR_LT:
        return "<";
    case STORE_EXPR_LE:
        return "<=";
    case STORE_EXPR_GT:
        return ">";
    case STORE_EXPR_GE:
        return ">=";
    case STORE_EXPR_BETWEEN:
        return "BETWEEN";
    case STORE_EXPR_BEGINS_WITH:
        return "begins_with";
    case STORE_EXPR_SIZE:
        return "size";
    case STORE_EXPR_ATTRIBUTE_TYPE:
        return "attribute_type";
    case STORE_EXPR_PLUS:
        return "+";
    case STORE_EXPR_MINUS:
        return "-";
    case STORE_EXPR_LIST_APPEND:
        return "list_append";
    default:
        return "";
    }
}

static int type_error(ctx_t *c, store_expr_op_t op, store_type_t t)
{
    return fail_expr(c, "Incorrect operand type for operator or function; operator or function: %s, operand type: %s", op_name(op),
                     short_type_name(t));
}

/* "AttributeValue: {N:5}" for BETWEEN's messages (bounds are S, N or B: their payload is a string). */
static int between_error(ctx_t *c, const char *what, const json_t *lo, const json_t *hi)
{
    store_type_t tl = store_value_type(lo), th = store_value_type(hi);
    const json_t *pl = payload(lo, tl), *ph = payload(hi, th);
    return fail_expr(c,
                     "The BETWEEN operator requires %s; lower bound operand: AttributeValue: {%s:%.*s}, upper bound operand: "
                     "AttributeValue: {%s:%.*s}",
                     what, short_type_name(tl), (int)json_string_length(pl), json_string_value(pl), short_type_name(th),
                     (int)json_string_length(ph), json_string_value(ph));
}

/* The checks of one node's own :value operands (not of its children's). */
static int check_node(ctx_t *c, const store_expr_node_t *n)
{
    switch (n->op) {
    case STORE_EXPR_LT:
    case STORE_EXPR_LE:
    case STORE_EXPR_GT:
    case STORE_EXPR_GE:
    case STORE_EXPR_BETWEEN:
        for (uint32_t i = 0; i < n->nargs; i++) {
            if (n->args[i]->op == STORE_EXPR_VALUE) {
                store_type_t t = store_value_type(value_of(c, n->args[i]));
                if (t != STORE_T_S && t != STORE_T_N && t != STORE_T_B)
                    return type_error(c, n->op, t);
            }
        }
        if (n->op == STORE_EXPR_BETWEEN && n->nargs == 3 && n->args[1]->op == STORE_EXPR_VALUE &&
            n->args[2]->op == STORE_EXPR_VALUE) {
            const json_t *lo = value_of(c, n->args[1]), *hi = value_of(c, n->args[2]);
            int cmp;
            if (store_value_type(lo) != store_value_type(hi))
                return between_error(c, "same data type for lower and upper bounds", lo, hi);
            if (store_value_compare(lo, hi, &cmp) == 0 && cmp > 0)
                return between_error(c, "upper bound to be greater than or equal to lower bound", lo, hi);
        }
        return 0;
    case STORE_EXPR_BEGINS_WITH:
        for (uint32_t i = 0; i < n->nargs; i++) {
            if (n->args[i]->op == STORE_EXPR_VALUE) {
                store_type_t t = store_value_type(value_of(c, n->args[i]));
                if (t != STORE_T_S && t != STORE_T_B)
                    return type_error(c, n->op, t);
            }
        }
        return 0;
    case STORE_EXPR_SIZE:
        if (n->nargs == 1 && n->args[0]->op == STORE_EXPR_VALUE) {
            store_type_t t = store_value_type(value_of(c, n->args[0]));
            if (t == STORE_T_N || t == STORE_T_BOOL || t == STORE_T_NULL)
                return type_error(c, n->op, t);
        }
        return 0;
    case STORE_EXPR_ATTRIBUTE_TYPE: {
        const json_t *v, *s;
        store_type_t t;
        if (n->nargs != 2)
            return 0;
        if (n->args[1]->op != STORE_EXPR_VALUE)
            return fail_expr(c,
                             "Incorrect operand type for operator or function; operator or function: attribute_type, operand type: "
                             "{NS,SS,L,BS,N,M,B,BOOL,NULL,S}");
        v = value_of(c, n->args[1]);
        if ((t = store_value_type(v)) != STORE_T_S)
            return type_error(c, n->op, t);
        s = payload(v, STORE_T_S);
        if (store_type_of_name(json_string_value(s), json_string_length(s)) == STORE_T_NONE)
            return fail_expr(c, "Invalid attribute type name found; type: %.*s, valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}",
                             (int)json_string_length(s), json_string_value(s));
        return 0;
    }
    case STORE_EXPR_PLUS:
    case STORE_EXPR_MINUS:
    case STORE_EXPR_LIST_APPEND: {
        store_type_t want = n->op == STORE_EXPR_LIST_APPEND ? STORE_T_L : STORE_T_N;
        for (uint32_t i = 0; i < n->nargs; i++) {
            if (n->args[i]->op == STORE_EXPR_VALUE) {
                store_type_t t = store_value_type(value_of(c, n->args[i]));
                if (t != want)
                    return type_error(c, n->op, t);
            }
        }
        return 0;
    }
    default:
        return 0;
    }
}

static int check_tree(ctx_t *c, const store_expr_node_t *n)
{
    int r;
    if (n == NULL)
        return 0;
    for (uint32_t i = 0; i < n->nargs; i++)
        if ((r = check_tree(c, n->args[i])) != 0)
            return r;
    return check_node(c, n);
}

/* ADD takes a number or a set, DELETE a set. */
static int check_action(ctx_t *c, const store_expr_action_t *a)
{
    store_type_t t;
    if (a->kind != STORE_EXPR_ADD && a->kind != STORE_EXPR_DELETE)
        return 0;
    t = store_value_type(value_of(c, a->value));
    if (is_set(t) || (a->kind == STORE_EXPR_ADD && t == STORE_T_N))
        return 0;
    return fail_expr(c, "Incorrect operand type for operator or function; operator: %s, operand type: %s",
                     a->kind == STORE_EXPR_ADD ? "ADD" : "DELETE", long_type_name(t));
}

/* The whole expression's checks, in the order written (children before their operator, as the parser reports). */
static int check_expr(ctx_t *c)
{
    const store_expr_t *e = c->expr;
    int r;

    switch (e->kind) {
    case STORE_EXPR_CONDITION:
    case STORE_EXPR_FILTER:
    case STORE_EXPR_KEY_CONDITION:
        return check_tree(c, e->cond);
    case STORE_EXPR_UPDATE:
        for (size_t i = 0; i < e->nactions; i++) {
            const store_expr_action_t *a = &e->actions[i];
            if (a->kind == STORE_EXPR_SET && (r = check_tree(c, a->value)) != 0)
                return r;
            if ((r = check_action(c, a)) != 0)
                return r;
        }
        return 0;
    default:
        return 0;
    }
}

int store_eval_check(const store_expr_t *expr, json_t *const *values, char *err, size_t errlen)
{
    ctx_t c = {expr, NULL, values, err, errlen};
    return check_expr(&c);
}

/* ---- conditions ---- */

/* An operand's value: av NULL when it has none; owned is av when it was computed (size()) and must be dropped. */
typedef struct opnd {
    const json_t *av;
    json_t *owned;
} opnd_t;

static void opnd_drop(opnd_t *o)
{
    json_decref(o->owned);
    o->owned = NULL;
    o->av = NULL;
}

/* size() of a value, or -1 when it has none (N, BOOL, NULL). */
static long long size_of(const json_t *av)
{
    store_type_t t = store_value_type(av);
    const json_t *p = payload(av, t);

    switch (t) {
    case STORE_T_S:
        return (long long)utf16_len(json_string_value(p), json_string_length(p));
    case STORE_T_B:
        return (long long)b64_decoded_len(json_string_value(p), json_string_length(p));
    case STORE_T_SS:
    case STORE_T_NS:
    case STORE_T_BS:
    case STORE_T_L:
        return (long long)json_array_size(p);
    case STORE_T_M:
        return (long long)json_object_size(p);
    default:
        return -1;
    }
}

static int eval_operand(ctx_t *c, const store_expr_node_t *n, opnd_t *out)
{
    out->av = NULL;
    out->owned = NULL;
    switch (n->op) {
    case STORE_EXPR_PATH:
        out->av = resolve(c->item, &n->path);
        return 0;
    case STORE_EXPR_VALUE:
        out->av = value_of(c, n);
        return 0;
    case STORE_EXPR_SIZE: {
        opnd_t arg;
        long long size;
        int r;
        if (n->nargs != 1)
            return 0;
        if ((r = check_node(c, n)) != 0 || (r = eval_operand(c, n->args[0], &arg)) != 0)
            return r;
        size = arg.av != NULL ? size_of(arg.av) : -1;
        opnd_drop(&arg);
        if (size >= 0) {
            char buf[32];
            snprintf(buf, sizeof(buf), "%lld", size);
            if ((out->owned = json_pack("{s:s}", "N", buf)) == NULL)
                return nomem(c);
            out->av = out->owned;
        }
        return 0;
    }
    default:
        /* not an operand of conditions (the parser does not let one here): no value */
        return 0;
    }
}

/* begins_with(a, b): both S or both B. */
static int begins_with(ctx_t *c, const json_t *a, const json_t *b)
{
    store_type_t t = store_value_type(a);
    const unsigned char *sa, *sb;
    size_t la, lb;
    unsigned char *ha, *hb;
    int r;

    if ((t != STORE_T_S && t != STORE_T_B) || store_value_type(b) != t)
        return 0;
    if (bytes_of(payload(a, t), t, &sa, &la, &ha) != 0)
        return nomem(c);
    if (bytes_of(payload(b, t), t, &sb, &lb, &hb) != 0) {
        free(ha);
        return nomem(c);
    }
    r = lb <= la && memcmp(sa, sb, lb) == 0;
    free(ha);
    free(hb);
    return r;
}

static int contains_bytes(const unsigned char *hay, size_t hl, const unsigned char *needle, size_t nl)
{
    if (nl == 0)
        return 1;
    for (size_t i = 0; i + nl <= hl; i++)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, nl) == 0)
            return 1;
    return 0;
}

/* contains(a, b): substring of an S, subsequence of a B, member of a set, element of a list. */
static int contains(ctx_t *c, const json_t *a, const json_t *b)
{
    store_type_t ta = store_value_type(a), tb = store_value_type(b);
    const json_t *pa = payload(a, ta), *pb = payload(b, tb);
    size_t i;

    if ((ta == STORE_T_S || ta == STORE_T_B) && tb == ta) {
        const unsigned char *sa, *sb;
        size_t la, lb;
        unsigned char *ha, *hb;
        int r;
        if (bytes_of(pa, ta, &sa, &la, &ha) != 0)
            return nomem(c);
        if (bytes_of(pb, tb, &sb, &lb, &hb) != 0) {
            free(ha);
            return nomem(c);
        }
        r = contains_bytes(sa, la, sb, lb);
        free(ha);
        free(hb);
        return r;
    }
    if (is_set(ta) && tb == member_type(ta)) {
        for (i = 0; i < json_array_size(pa); i++) {
            int r = member_equal(ta, json_array_get(pa, i), pb);
            if (r != 0)
                return r < 0 ? nomem(c) : 1;
        }
        return 0;
    }
    if (ta == STORE_T_L) {
        for (i = 0; i < json_array_size(pa); i++)
            if (store_value_equal(json_array_get(pa, i), b))
                return 1;
    }
    return 0;
}

static int compare_op(store_expr_op_t op, const json_t *a, const json_t *b)
{
    int cmp;
    if (a == NULL || b == NULL || store_value_compare(a, b, &cmp) != 0)
        return 0;
    switch (op) {
    case STORE_EXPR_LT:
        return cmp < 0;
    case STORE_EXPR_LE:
        return cmp <= 0;
    case STORE_EXPR_GT:
        return cmp > 0;
    default:
        return cmp >= 0;
    }
}

static int eval_cond(ctx_t *c, const store_expr_node_t *n)
{
    opnd_t a, b, x;
    int r;

    switch (n->op) {
    case STORE_EXPR_AND:
        if ((r = eval_cond(c, n->args[0])) != 1)
            return r;
        return eval_cond(c, n->args[1]);
    case STORE_EXPR_OR:
        if ((r = eval_cond(c, n->args[0])) != 0)
            return r;
        return eval_cond(c, n->args[1]);
    case STORE_EXPR_NOT:
        if ((r = eval_cond(c, n->args[0])) < 0)
            return r;
        return !r;
    case STORE_EXPR_EQ:
    case STORE_EXPR_NE:
    case STORE_EXPR_LT:
    case STORE_EXPR_LE:
    case STORE_EXPR_GT:
    case STORE_EXPR_GE:
    case STORE_EXPR_BEGINS_WITH:
    case STORE_EXPR_CONTAINS:
        if (n->nargs != 2)
            return fail_expr(c, "Incorrect number of operands for operator or function");
        if ((r = check_node(c, n)) != 0 || (r = eval_operand(c, n->args[0], &a)) != 0)
            return r;
        if ((r = eval_operand(c, n->args[1], &b)) != 0) {
            opnd_drop(&a);
            return r;
        }
        switch (n->op) {
        case STORE_EXPR_EQ:
            r = a.av != NULL && b.av != NULL && store_value_equal(a.av, b.av);
            break;
        case STORE_EXPR_NE:
            r = !(a.av != NULL && b.av != NULL && store_value_equal(a.av, b.av));
            break;
        case STORE_EXPR_BEGINS_WITH:
            r = a.av != NULL && b.av != NULL ? begins_with(c, a.av, b.av) : 0;
            break;
        case STORE_EXPR_CONTAINS:
            r = a.av != NULL && b.av != NULL ? contains(c, a.av, b.av) : 0;
            break;
        default:
            r = compare_op(n->op, a.av, b.av);
            break;
        }
        opnd_drop(&a);
        opnd_drop(&b);
        return r;
    case STORE_EXPR_BETWEEN:
        if (n->nargs != 3)
            return fail_expr(c, "Incorrect number of operands for operator or function");
        if ((r = check_node(c, n)) != 0 || (r = eval_operand(c, n->args[0], &x)) != 0)
            return r;
        if ((r = eval_operand(c, n->args[1], &a)) != 0) {
            opnd_drop(&x);
            return r;
        }
        if ((r = eval_operand(c, n->args[2], &b)) != 0) {
            opnd_drop(&x);
            opnd_drop(&a);
            return r;
        }
        r = compare_op(STORE_EXPR_GE, x.av, a.av) && compare_op(STORE_EXPR_LE, x.av, b.av);
        opnd_drop(&x);
        opnd_drop(&a);
        opnd_drop(&b);
        return r;
    case STORE_EXPR_IN:
        if (n->nargs < 2)
            return fail_expr(c, "Incorrect number of operands for operator or function");
        if ((r = eval_operand(c, n->args[0], &x)) != 0)
            return r;
        r = 0;
        for (uint32_t i = 1; x.av != NULL && i < n->nargs && r == 0; i++) {
            if ((r = eval_operand(c, n->args[i], &a)) != 0)
                break;
            r = a.av != NULL && store_value_equal(x.av, a.av);
            opnd_drop(&a);
        }
        opnd_drop(&x);
        return r;
    case STORE_EXPR_ATTRIBUTE_EXISTS:
    case STORE_EXPR_ATTRIBUTE_NOT_EXISTS:
        if (n->nargs != 1)
            return fail_expr(c, "Incorrect number of operands for operator or function");
        if ((r = eval_operand(c, n->args[0], &x)) != 0)
            return r;
        r = (x.av != NULL) == (n->op == STORE_EXPR_ATTRIBUTE_EXISTS);
        opnd_drop(&x);
        return r;
    case STORE_EXPR_ATTRIBUTE_TYPE: {
        const json_t *s;
        if (n->nargs != 2)
            return fail_expr(c, "Incorrect number of operands for operator or function");
        if ((r = check_node(c, n)) != 0 || (r = eval_operand(c, n->args[0], &x)) != 0)
            return r;
        s = payload(value_of(c, n->args[1]), STORE_T_S);
        r = x.av != NULL && store_value_type(x.av) == store_type_of_name(json_string_value(s), json_string_length(s));
        opnd_drop(&x);
        return r;
    }
    default:
        /* an operand where a condition must be: the parser rejects that */
        return fail_expr(c, "The expression is not a condition");
    }
}

int store_eval_condition(const store_expr_t *cond, const json_t *item, json_t *const *values, char *err, size_t errlen)
{
    ctx_t c = {cond, item, values, err, errlen};
    if (cond->cond == NULL)
        return 1;
    return eval_cond(&c, cond->cond);
}

/* ---- projections ---- */

/* A tree of the projected paths: inner nodes are maps or lists being rebuilt, leaves the projected values. */
typedef struct pnode pnode_t;
struct pnode {
    const store_expr_elem_t *elem; /* how the parent reaches this node (NULL for the root) */
    json_t *leaf;                  /* a projected value (a reference owned by the tree), or NULL */
    pnode_t *first, *last, *next;
};

static void pnode_free_children(pnode_t *n)
{
    pnode_t *c = n->first;
    while (c != NULL) {
        pnode_t *next = c->next;
        pnode_free_children(c);
        json_decref(c->leaf);
        free(c);
        c = next;
    }
    n->first = n->last = NULL;
}

static int same_elem(const store_expr_elem_t *a, const store_expr_elem_t *b)
{
    if ((a->name == NULL) != (b->name == NULL))
        return 0;
    if (a->name == NULL)
        return a->index == b->index;
    return a->len == b->len && memcmp(a->name, b->name, a->len) == 0;
}

static pnode_t *pnode_child(pnode_t *n, const store_expr_elem_t *e)
{
    pnode_t *c;
    for (c = n->first; c != NULL; c = c->next)
        if (same_elem(c->elem, e))
            return c;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return NULL;
    c->elem = e;
    if (n->last != NULL)
        n->last->next = c;
    else
        n->first = c;
    n->last = c;
    return c;
}

/* Adds the value at path in item (if any) to the tree. 0, or -1 when out of memory. */
static int proj_add(pnode_t *root, const json_t *item, const store_expr_path_t *path)
{
    json_t *v = resolve(item, path);
    pnode_t *n = root;

    if (v == NULL)
        return 0;
    for (size_t i = 0; i < path->n; i++) {
        if (n->leaf != NULL)
            return 0; /* an ancestor is projected whole already */
        if ((n = pnode_child(n, &path->elems[i])) == NULL)
            return -1;
    }
    if (n->leaf == NULL) {
        pnode_free_children(n); /* the whole value covers what was projected below it */
        n->leaf = json_incref(v);
    }
    return 0;
}

static int cmp_index(const void *a, const void *b)
{
    uint32_t x = (*(pnode_t *const *)a)->elem->index, y = (*(pnode_t *const *)b)->elem->index;
    return x < y ? -1 : x > y;
}

static json_t *pnode_emit(pnode_t *n);

/* A map's members (names only) into obj. 0, or -1 when out of memory. */
static int emit_members(pnode_t *n, json_t *obj)
{
    for (pnode_t *c = n->first; c != NULL; c = c->next) {
        json_t *v;
        if (c->elem->name == NULL)
            continue;
        if ((v = pnode_emit(c)) == NULL || json_object_setn_new(obj, c->elem->name, c->elem->len, v) != 0)
            return -1;
    }
    return 0;
}

/* The AttributeValue of a node (a new reference), or NULL when out of memory. */
static json_t *pnode_emit(pnode_t *n)
{
    json_t *inner, *av;

    if (n->leaf != NULL)
        return json_incref(n->leaf);
    if (n->first != NULL && n->first->elem->name == NULL) {
        size_t count = 0, i = 0;
        pnode_t **v;
        for (pnode_t *c = n->first; c != NULL; c = c->next)
            count += c->elem->name == NULL;
        if ((v = malloc(count * sizeof(*v))) == NULL || (inner = json_array()) == NULL) {
            free(v);
            return NULL;
        }
        for (pnode_t *c = n->first; c != NULL; c = c->next)
            if (c->elem->name == NULL)
                v[i++] = c;
        qsort(v, count, sizeof(*v), cmp_index);
        for (i = 0; i < count; i++) {
            json_t *e = pnode_emit(v[i]);
            if (e == NULL || json_array_append_new(inner, e) != 0) {
                free(v);
                json_decref(inner);
                return NULL;
            }
        }
        free(v);
    } else {
        if ((inner = json_object()) == NULL)
            return NULL;
        if (emit_members(n, inner) != 0) {
            json_decref(inner);
            return NULL;
        }
    }
    if ((av = json_object()) == NULL) {
        json_decref(inner);
        return NULL;
    }
    if (json_object_set_new(av, n->first != NULL && n->first->elem->name == NULL ? "L" : "M", inner) != 0) {
        json_decref(av); /* inner was dropped by the failed set */
        return NULL;
    }
    return av;
}

json_t *store_eval_project(const store_expr_t *projection, const json_t *item)
{
    pnode_t root = {0};
    json_t *out = json_object();
    int ok = out != NULL;

    for (size_t i = 0; ok && i < projection->npaths; i++)
        ok = proj_add(&root, item, &projection->paths[i]) == 0;
    if (ok)
        ok = emit_members(&root, out) == 0;
    pnode_free_children(&root);
    if (!ok) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* The projection of an update's target paths on item, added to out. 0, or -1 when out of memory. */
static int project_targets(const store_expr_t *update, const json_t *item, json_t *out)
{
    pnode_t root = {0};
    int ok = 1;

    for (size_t i = 0; ok && i < update->nactions; i++)
        ok = proj_add(&root, item, &update->actions[i].path) == 0;
    if (ok)
        ok = emit_members(&root, out) == 0;
    pnode_free_children(&root);
    return ok ? 0 : -1;
}

/* ---- updates ---- */

static int num_error(ctx_t *c, store_num_err_t e)
{
    /* DynamoDB answers a result of more than 38 digits with the overflow message (see decimal.h) */
    return fail(c, "%s", store_num_strerror(e == STORE_NUM_EPRECISION ? STORE_NUM_EOVERFLOW : e));
}

/* The value of a SET operand, read from the item as it was (a new value, owned by the caller), or an error. */
static int set_value(ctx_t *c, const store_expr_node_t *n, json_t **out)
{
    json_t *a = NULL, *b = NULL;
    int r;

    *out = NULL;
    switch (n->op) {
    case STORE_EXPR_PATH: {
        const json_t *v = resolve(c->item, &n->path);
        if (v == NULL)
            return fail(c, E_NOATTR);
        return (*out = json_deep_copy(v)) != NULL ? 0 : nomem(c);
    }
    case STORE_EXPR_VALUE:
        return (*out = json_deep_copy(value_of(c, n))) != NULL ? 0 : nomem(c);
    case STORE_EXPR_IF_NOT_EXISTS: {
        const json_t *v;
        if (n->nargs != 2)
            return fail_expr(c, "Incorrect number of operands for operator or function");
        if (n->args[0]->op == STORE_EXPR_PATH && (v = resolve(c->item, &n->args[0]->path)) != NULL)
            return (*out = json_deep_copy(v)) != NULL ? 0 : nomem(c);
        return set_value(c, n->args[1], out);
    }
    case STORE_EXPR_LIST_APPEND:
    case STORE_EXPR_PLUS:
    case STORE_EXPR_MINUS: {
        store_type_t want = n->op == STORE_EXPR_LIST_APPEND ? STORE_T_L : STORE_T_N;
        if (n->nargs != 2)
            return fail_expr(c, "Incorrect number of operands for operator or function");
        if ((r = check_node(c, n)) != 0 || (r = set_value(c, n->args[0], &a)) != 0)
            return r;
        if (store_value_type(a) != want) {
            json_decref(a);
            return fail(c, E_OPTYPE);
        }
        if ((r = set_value(c, n->args[1], &b)) != 0) {
            json_decref(a);
            return r;
        }
        if (store_value_type(b) != want) {
            json_decref(a);
            json_decref(b);
            return fail(c, E_OPTYPE);
        }
        if (want == STORE_T_L) {
            r = json_array_extend(json_object_get(a, "L"), json_object_get(b, "L")) == 0 ? 0 : nomem(c);
        } else {
            store_num_t x, y, z;
            store_num_err_t e;
            if (num_of(a, &x) != 0 || num_of(b, &y) != 0) {
                r = fail(c, E_OPTYPE);
            } else {
                e = n->op == STORE_EXPR_PLUS ? store_num_add(&x, &y, &z) : store_num_sub(&x, &y, &z);
                if (e != STORE_NUM_OK) {
                    r = num_error(c, e);
                } else {
                    json_decref(a);
                    a = num_av(&z);
                    r = a != NULL ? 0 : nomem(c);
                }
            }
        }
        json_decref(b);
        if (r != 0) {
            json_decref(a);
            return r;
        }
        *out = a;
        return 0;
    }
    default:
        return fail_expr(c, "The function is not allowed in an update expression");
    }
}

/* A set of canonical members (member_key), on a jansson object used as a hash set. */
static int hash_add(json_t *hs, store_type_t set, const json_t *m, int *added)
{
    char numbuf[STORE_NUM_TEXT_MAX];
    const char *key;
    size_t len;
    unsigned char *heap;
    int r = 0;

    if (member_key(set, m, numbuf, &key, &len, &heap) != 0)
        return -1;
    *added = json_object_getn(hs, key, len) == NULL;
    if (*added)
        r = json_object_setn_new_nocheck(hs, key, len, json_true());
    free(heap);
    return r;
}

static int hash_has(json_t *hs, store_type_t set, const json_t *m, int *has)
{
    char numbuf[STORE_NUM_TEXT_MAX];
    const char *key;
    size_t len;
    unsigned char *heap;

    if (member_key(set, m, numbuf, &key, &len, &heap) != 0)
        return -1;
    *has = json_object_getn(hs, key, len) != NULL;
    free(heap);
    return 0;
}

/*
 * ADD a set to a set (union: the old members in their order, then the new ones) or DELETE a set from one (difference;
 * *out NULL when nothing is left). Both sets of type t. 0, or -1 when out of memory.
 */
static int set_op(store_type_t t, const json_t *old, const json_t *val, int add, json_t **out)
{
    const json_t *po = payload(old, t), *pv = payload(val, t);
    json_t *hs = json_object(), *arr = json_array();
    size_t i;
    int flag;

    *out = NULL;
    if (hs == NULL || arr == NULL)
        goto fail;
    for (i = 0; i < json_array_size(add ? po : pv); i++)
        if (hash_add(hs, t, json_array_get(add ? po : pv, i), &flag) != 0)
            goto fail;
    for (i = 0; i < json_array_size(po); i++) {
        json_t *m = json_array_get(po, i);
        if (!add) {
            if (hash_has(hs, t, m, &flag) != 0)
                goto fail;
            if (flag)
                continue;
        }
        if (json_array_append_new(arr, json_deep_copy(m)) != 0)
            goto fail;
    }
    if (add) {
        for (i = 0; i < json_array_size(pv); i++) {
            json_t *m = json_array_get(pv, i);
            if (hash_add(hs, t, m, &flag) != 0)
                goto fail;
            if (flag && json_array_append_new(arr, json_deep_copy(m)) != 0)
                goto fail;
        }
    }
    json_decref(hs);
    hs = NULL;
    if (json_array_size(arr) == 0) {
        json_decref(arr);
        return 0;
    }
    if ((*out = json_object()) == NULL)
        goto fail;
    if (json_object_set_new(*out, store_type_name(t), arr) != 0) {
        arr = NULL; /* stolen, dropped */
        goto fail;
    }
    return 0;
fail:
    json_decref(hs);
    json_decref(arr);
    json_decref(*out);
    *out = NULL;
    return -1;
}

/* What one action does, found before anything changes. */
typedef enum plan_op {
    P_NOP,
    P_PUT,    /* container[key or index] = value */
    P_DEL,    /* remove container[key or index] */
    P_APPEND, /* index beyond the list's end: append value (after the others, in index order) */
} plan_op_t;

typedef struct plan {
    plan_op_t op;
    json_t *container;           /* the item, an M's object or an L's array */
    const store_expr_elem_t *at; /* the path's last element: the key or the index in container */
    json_t *value;               /* P_PUT, P_APPEND: the new value (owned) */
} plan_t;

static int cmp_append(const void *a, const void *b)
{
    const plan_t *x = *(const plan_t *const *)a, *y = *(const plan_t *const *)b;
    uintptr_t cx = (uintptr_t)x->container, cy = (uintptr_t)y->container;
    if (cx != cy)
        return cx < cy ? -1 : 1;
    return x->at->index < y->at->index ? -1 : x->at->index > y->at->index;
}

/* The container of an action's target and the target's current value (NULL when absent). -1: invalid path. */
static int locate(json_t *item, const store_expr_path_t *path, json_t **container, json_t **current)
{
    const store_expr_elem_t *last = &path->elems[path->n - 1];
    json_t *parent;

    if (path->n == 1) {
        *container = item;
    } else {
        if ((parent = resolve_n(item, path, path->n - 1)) == NULL)
            return -1;
        *container = json_object_get(parent, last->name != NULL ? "M" : "L");
        if (last->name != NULL ? !json_is_object(*container) : !json_is_array(*container))
            return -1;
    }
    if (last->name != NULL)
        *current = json_object_getn(*container, last->name, last->len);
    else
        *current = json_array_get(*container, last->index);
    return 0;
}

/* The plan of an ADD or DELETE on current (NULL: absent) with the value val. */
static int plan_add_delete(ctx_t *c, const store_expr_action_t *a, const json_t *current, plan_t *p)
{
    const json_t *val = value_of(c, a->value);
    store_type_t tv = store_value_type(val), tc;

    if (current == NULL) {
        if (a->kind == STORE_EXPR_DELETE) {
            p->op = P_NOP;
            return 0;
        }
        return (p->value = json_deep_copy(val)) != NULL ? 0 : nomem(c);
    }
    if ((tc = store_value_type(current)) != tv)
        return fail(c, E_OPTYPE);
    if (tv == STORE_T_N) {
        store_num_t x, y, z;
        store_num_err_t e;
        if (num_of(current, &x) != 0 || num_of(val, &y) != 0)
            return fail(c, E_OPTYPE);
        if ((e = store_num_add(&x, &y, &z)) != STORE_NUM_OK)
            return num_error(c, e);
        return (p->value = num_av(&z)) != NULL ? 0 : nomem(c);
    }
    if (set_op(tv, current, val, a->kind == STORE_EXPR_ADD, &p->value) != 0)
        return nomem(c);
    if (p->value == NULL)
        p->op = P_DEL; /* DELETE emptied the set: the attribute goes */
    return 0;
}

static void squash(json_t *list, const json_t *tomb)
{
    size_t i = json_array_size(list);
    while (i-- > 0)
        if (json_array_get(list, i) == tomb)
            json_array_remove(list, i);
}

int store_eval_update(const store_expr_t *update, json_t *item, int existed, json_t *const *values, json_t *updated_old,
                      json_t *updated_new, char *err, size_t errlen)
{
    ctx_t c = {update, item, values, err, errlen};
    size_t n = update->nactions, nappend = 0, i;
    plan_t *plans = NULL, **appends = NULL;
    json_t *tomb = NULL;
    int r;

    if ((r = check_expr(&c)) != 0)
        return r;
    if (n == 0)
        return 0;
    if ((plans = calloc(n, sizeof(*plans))) == NULL || (appends = calloc(n, sizeof(*appends))) == NULL) {
        r = nomem(&c);
        goto done;
    }

    /* 1. SET operands, all read from the item as it is */
    for (i = 0; i < n; i++) {
        const store_expr_action_t *a = &update->actions[i];
        plans[i].op = P_PUT;
        if (a->kind == STORE_EXPR_SET && (r = set_value(&c, a->value, &plans[i].value)) != 0)
            goto done;
    }

    /* 2. targets, and what each action does to them (ADD and DELETE computed here): errors before any change */
    for (i = 0; i < n; i++) {
        const store_expr_action_t *a = &update->actions[i];
        plan_t *p = &plans[i];
        json_t *current = NULL;

        p->at = &a->path.elems[a->path.n - 1];
        if (locate(item, &a->path, &p->container, &current) != 0) {
            if (a->kind == STORE_EXPR_REMOVE && !existed) {
                p->op = P_NOP; /* DynamoDB ignores REMOVE a.b on an item that does not exist */
                continue;
            }
            r = fail(&c, E_PATH);
            goto done;
        }
        switch (a->kind) {
        case STORE_EXPR_REMOVE:
            p->op = current != NULL ? P_DEL : P_NOP;
            break;
        case STORE_EXPR_ADD:
        case STORE_EXPR_DELETE:
            if ((r = plan_add_delete(&c, a, current, p)) != 0)
                goto done;
            break;
        default:
            break;
        }
        if (p->op == P_PUT && p->at->name == NULL && current == NULL)
            p->op = P_APPEND;
    }

    /* 3. UPDATED_OLD, then the changes: list elements removed become tombstones until the end, so that every index
     * names an element of the list as it was; appends come last, in index order */
    if (updated_old != NULL && project_targets(update, item, updated_old) != 0) {
        r = nomem(&c);
        goto done;
    }
    if ((tomb = json_object()) == NULL) {
        r = nomem(&c);
        goto done;
    }
    for (i = 0; i < n; i++) {
        plan_t *p = &plans[i];
        int fail_set = 0;
        switch (p->op) {
        case P_PUT:
            if (p->at->name != NULL)
                fail_set = json_object_setn_new(p->container, p->at->name, p->at->len, p->value);
            else
                fail_set = json_array_set_new(p->container, p->at->index, p->value);
            p->value = NULL;
            break;
        case P_DEL:
            if (p->at->name != NULL)
                json_object_deln(p->container, p->at->name, p->at->len);
            else
                fail_set = json_array_set(p->container, p->at->index, tomb);
            break;
        case P_APPEND:
            appends[nappend++] = p;
            break;
        default:
            break;
        }
        if (fail_set != 0) {
            r = nomem(&c);
            goto done;
        }
    }
    qsort(appends, nappend, sizeof(*appends), cmp_append);
    for (i = 0; i < nappend; i++) {
        if (json_array_append_new(appends[i]->container, appends[i]->value) != 0) {
            appends[i]->value = NULL;
            r = nomem(&c);
            goto done;
        }
        appends[i]->value = NULL;
    }
    for (i = 0; i < n; i++)
        if (plans[i].op == P_DEL && plans[i].at->name == NULL)
            squash(plans[i].container, tomb);
    if (updated_new != NULL && project_targets(update, item, updated_new) != 0) {
        r = nomem(&c);
        goto done;
    }
    r = 0;

done:
    if (plans != NULL)
        for (i = 0; i < n; i++)
            json_decref(plans[i].value);
    free(plans);
    free(appends);
    json_decref(tomb);
    return r;
}
