/*
 * store/legacy.c (internal to store/): the rewrite of DynamoDB's legacy request parameters into expressions (see
 * legacy.h), called by store_call on the parsed request before the operation runs.
 *
 * Ownership: the request is the caller's and is changed in place. Values of the legacy members move into the generated
 * ExpressionAttributeValues by reference (json_object_set), so they outlive the members deleted afterwards. Nothing is
 * kept between calls; no global state.
 *
 * The checks, in DynamoDB's order (as DynamoDB Local's InputConverter and dynalite's validations, both written against
 * DynamoDB, and AWS-verified test suites show it):
 *   1. the JSON types of the legacy members (SerializationException: the deserializer's words, as store.c's getters);
 *   2. the enums and lengths ("N validation errors detected": ConditionalOperator, each ComparisonOperator, each
 *      AttributeUpdates Action, AttributesToGet's length);
 *   3. mixing legacy and expression parameters ("Can not use both expression and non-expression parameters in the same
 *      request: Non-expression parameters: {..} Expression parameters: {..}"; KeyConditions counts only next to a
 *      KeyConditionExpression), then ConditionalOperator without a map of at least two conditions;
 *   4. ExpressionAttributeNames / Values without any expression (st_exprs_parse's own words, asked before rewriting);
 *   5. each entry: its structure, its values (store_value_check), the number and types of its values, BETWEEN's bounds,
 *      duplicates in AttributesToGet, KeyConditions' count and operators, Select with AttributesToGet.
 * DynamoDB wraps the errors of step 5 in "1 validation error detected: " for PutItem, UpdateItem, DeleteItem and
 * Query (not for Scan, GetItem, BatchGetItem); the messages of steps 3 and 4 come bare.
 *
 * Semantics, as DynamoDB has them: NOT_NULL / NULL test existence (attribute_exists / attribute_not_exists); NE is
 * true on a missing attribute (as <> is); NOT_CONTAINS is false on a missing attribute (unlike NOT contains(), hence
 * attribute_exists(a) AND NOT contains(a, v)); IN compares the attribute with each value. AttributeUpdates: PUT (the
 * default) is SET; ADD is ADD for numbers and sets and appends a list (SET a = list_append(if_not_exists(a, []), v));
 * DELETE without a value is REMOVE, with a set is DELETE.
 *
 * Known limits: the generated expressions go through the expression checks, so a legacy request beyond DynamoDB's
 * expression limits (4 KB, 300 operators, 100 IN values) is refused with the expression's words ("Invalid
 * ConditionExpression: ..."); a QueryFilter on a key attribute gets query.c's "Filter Expression can only contain
 * non-primary key attributes" words.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/legacy.h"

/* ---- the operations and their members ---- */

enum { L_UPDATES, L_TO_GET, L_EXPECTED, L_QUERY_FILTER, L_SCAN_FILTER, L_COND_OP, L_KEY_CONDITIONS, L_N };
enum { X_UPDATE, X_PROJECTION, X_CONDITION, X_FILTER, X_KEY_CONDITION, X_N };
#define BIT(i) (1u << (i))

/* In DynamoDB's order in the mixing message. */
static const char *const legacy_members[L_N] = {"AttributeUpdates", "AttributesToGet",     "Expected",     "QueryFilter",
                                                "ScanFilter",       "ConditionalOperator", "KeyConditions"};
static const char *const expr_members[X_N] = {"UpdateExpression", "ProjectionExpression", "ConditionExpression", "FilterExpression",
                                              "KeyConditionExpression"};

typedef struct op_spec {
    const char *op;
    unsigned legacy, exprs; /* masks (L_*, X_*) of the members the operation takes */
    unsigned allowed;       /* its expressions, as st_exprs_parse's mask */
    int envelope;           /* entry errors come as "1 validation error detected: ..." */
    int batch;              /* BatchGetItem: the members are in each RequestItems table's KeysAndAttributes */
} op_spec_t;

#define K(kind) (1u << STORE_EXPR_##kind)
static const op_spec_t specs[] = {
    {"PutItem", BIT(L_EXPECTED) | BIT(L_COND_OP), BIT(X_CONDITION), K(CONDITION), 1, 0},
    {"DeleteItem", BIT(L_EXPECTED) | BIT(L_COND_OP), BIT(X_CONDITION), K(CONDITION), 1, 0},
    {"UpdateItem", BIT(L_UPDATES) | BIT(L_EXPECTED) | BIT(L_COND_OP), BIT(X_UPDATE) | BIT(X_CONDITION), K(UPDATE) | K(CONDITION), 1,
     0},
    {"GetItem", BIT(L_TO_GET), BIT(X_PROJECTION), K(PROJECTION), 0, 0},
    {"Query", BIT(L_TO_GET) | BIT(L_QUERY_FILTER) | BIT(L_COND_OP) | BIT(L_KEY_CONDITIONS),
     BIT(X_PROJECTION) | BIT(X_FILTER) | BIT(X_KEY_CONDITION), K(FILTER) | K(PROJECTION) | K(KEY_CONDITION), 1, 0},
    {"Scan", BIT(L_TO_GET) | BIT(L_SCAN_FILTER) | BIT(L_COND_OP), BIT(X_PROJECTION) | BIT(X_FILTER), K(FILTER) | K(PROJECTION), 0,
     0},
    {"BatchGetItem", BIT(L_TO_GET), BIT(X_PROJECTION), K(PROJECTION), 0, 1},
};

/* ---- comparison operators ---- */

typedef enum {
    C_EQ,
    C_NE,
    C_LE,
    C_LT,
    C_GE,
    C_GT,
    C_NOT_NULL,
    C_NULL,
    C_CONTAINS,
    C_NOT_CONTAINS,
    C_BEGINS_WITH,
    C_IN,
    C_BETWEEN
} cmp_t;

#define T(t) (1u << STORE_T_##t)
#define T_ANY (~0u)
#define T_SNB (T(S) | T(N) | T(B))

static const struct cmp_op {
    const char *name;
    const char *sym; /* the expression's comparator, for the comparisons */
    size_t min, max; /* values */
    unsigned types;  /* the values' allowed types */
    int indexable;   /* allowed in KeyConditions */
} cmp_ops[] = {
    [C_EQ] = {"EQ", "=", 1, 1, T_ANY, 1},
    [C_NE] = {"NE", "<>", 1, 1, T_ANY, 0},
    [C_LE] = {"LE", "<=", 1, 1, T_SNB, 1},
    [C_LT] = {"LT", "<", 1, 1, T_SNB, 1},
    [C_GE] = {"GE", ">=", 1, 1, T_SNB, 1},
    [C_GT] = {"GT", ">", 1, 1, T_SNB, 1},
    [C_NOT_NULL] = {"NOT_NULL", NULL, 0, 0, T_ANY, 0},
    [C_NULL] = {"NULL", NULL, 0, 0, T_ANY, 0},
    [C_CONTAINS] = {"CONTAINS", NULL, 1, 1, T_SNB | T(BOOL) | T(NULL), 0},
    [C_NOT_CONTAINS] = {"NOT_CONTAINS", NULL, 1, 1, T_SNB | T(BOOL) | T(NULL), 0},
    [C_BEGINS_WITH] = {"BEGINS_WITH", NULL, 1, 1, T(S) | T(B), 1},
    [C_IN] = {"IN", NULL, 1, (size_t)-1, T_SNB, 0},
    [C_BETWEEN] = {"BETWEEN", NULL, 2, 2, T_SNB, 1},
};
enum { NCMP = sizeof(cmp_ops) / sizeof(cmp_ops[0]) };

/* DynamoDB's order in its enum message. */
static const char *const cmp_enum[] = {"IN",       "NULL", "BETWEEN", "LT",          "NOT_CONTAINS", "EQ",       "GT",
                                       "NOT_NULL", "NE",   "LE",      "BEGINS_WITH", "GE",           "CONTAINS", NULL};
static const char *const cond_op_enum[] = {"OR", "AND", NULL};
static const char *const action_enum[] = {"ADD", "PUT", "DELETE", NULL};

static int cmp_of(const char *name)
{
    for (int i = 0; i != NCMP; ++i)
        if (name != NULL && strcmp(cmp_ops[i].name, name) == 0)
            return i;
    return -1;
}

/* ---- a growing string ---- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int failed;
} sbuf_t;

__attribute__((format(printf, 2, 3))) static void sb_add(sbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || b->failed)
        return;
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = (b->len + (size_t)n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = 1;
            return;
        }
        b->p = p, b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* ---- the rewrite of one request ---- */

typedef struct rw {
    const op_spec_t *spec;
    json_t *req;    /* the request (BatchGetItem: one table's KeysAndAttributes) */
    const char *at; /* the prefix of validation paths: "" or "requestItems.T.member." */
    st_answer_t *a;
    json_t *names, *values; /* the placeholders written (new objects) */
    unsigned nname, nvalue;
    int oom;
    sbuf_t x[X_N]; /* the expressions written */
} rw_t;

/* A member that is present: not absent, not JSON null. */
static json_t *member(const json_t *obj, const char *name)
{
    json_t *v = json_object_get(obj, name);
    return v != NULL && !json_is_null(v) ? v : NULL;
}

__attribute__((format(printf, 3, 4))) static int fail_entry(rw_t *r, int param, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    st_invalid(r->a, "%s%s%s", r->spec->envelope ? "1 validation error detected: " : "",
               param ? "One or more parameter values were invalid: " : "", msg);
    return -1;
}
#define invalid_param(r, ...) fail_entry((r), 1, __VA_ARGS__)
#define invalid_entry(r, ...) fail_entry((r), 0, __VA_ARGS__)

/* A placeholder ("#l3", ":l3") that the request's own map does not hold, standing for v; written to ph (24 bytes). */
static const char *placeholder(rw_t *r, char sigil, json_t *v, char *ph)
{
    json_t *own = json_object_get(r->req, sigil == '#' ? "ExpressionAttributeNames" : "ExpressionAttributeValues");
    unsigned *n = sigil == '#' ? &r->nname : &r->nvalue;
    do
        snprintf(ph, 24, "%cl%u", sigil, (*n)++);
    while (json_object_get(own, ph) != NULL);
    if (v == NULL || json_object_set_new(sigil == '#' ? r->names : r->values, ph, v) != 0)
        r->oom = 1;
    return ph;
}

static const char *name_ph(rw_t *r, const char *name, char *ph)
{
    return placeholder(r, '#', json_string(name), ph);
}

static const char *value_ph(rw_t *r, json_t *v, char *ph)
{
    return placeholder(r, ':', json_incref(v), ph);
}

/* ---- 1. shapes ---- */

static int value_shape(const json_t *v, st_answer_t *a)
{
    char err[STORE_EXPR_ERR_MAX];
    if (v != NULL && !json_is_null(v) && store_value_check_shape(v, err, sizeof(err)) != 0) {
        st_answer_error(a, 400, T_SERIALIZATION, "%s", err);
        return -1;
    }
    return 0;
}

static int values_shape(const json_t *obj, const char *name, st_answer_t *a)
{
    json_t *list, *v;
    size_t i;
    if (st_get_list(obj, name, &list, a) != 0)
        return -1;
    json_array_foreach(list, i, v)
    {
        if (value_shape(v, a) != 0)
            return -1;
    }
    return 0;
}

/* A map of conditions (Expected, QueryFilter, ScanFilter, KeyConditions) or of AttributeUpdates. */
static int map_shape(const json_t *req, int which, st_answer_t *a)
{
    json_t *map, *e, *entry;
    const char *key, *s;
    int b;

    if (st_get_object(req, legacy_members[which], &map, a) != 0)
        return -1;
    json_object_foreach(map, key, e)
    {
        if (st_get_object(map, key, &entry, a) != 0)
            return -1;
        if (which == L_UPDATES) {
            if (st_get_string(entry, "Action", &s, a) != 0 || value_shape(json_object_get(entry, "Value"), a) != 0)
                return -1;
            continue;
        }
        if (st_get_string(entry, "ComparisonOperator", &s, a) != 0 || values_shape(entry, "AttributeValueList", a) != 0)
            return -1;
        if (which == L_EXPECTED &&
            (st_get_bool(entry, "Exists", &b, a) != 0 || value_shape(json_object_get(entry, "Value"), a) != 0))
            return -1;
    }
    return 0;
}

static int shapes(const rw_t *r)
{
    const char *s;
    json_t *list, *v;
    size_t i;

    for (int m = 0; m != L_N; ++m) {
        if (!(r->spec->legacy & BIT(m)))
            continue;
        if (m == L_COND_OP) {
            if (st_get_string(r->req, legacy_members[m], &s, r->a) != 0)
                return -1;
        } else if (m == L_TO_GET) {
            if (st_get_list(r->req, legacy_members[m], &list, r->a) != 0)
                return -1;
            json_array_foreach(list, i, v)
            {
                json_t *one = json_pack("{s:O}", "v", v); /* the getter's words for a list member */
                int rc = one != NULL ? st_get_string(one, "v", &s, r->a) : 0;
                json_decref(one);
                if (rc != 0)
                    return -1;
            }
        } else if (map_shape(r->req, m, r->a) != 0) {
            return -1;
        }
    }
    for (int m = 0; m != X_N; ++m)
        if ((r->spec->exprs & BIT(m)) && st_get_string(r->req, expr_members[m], &s, r->a) != 0)
            return -1;
    return 0;
}

/* ---- 2. enums and lengths ---- */

/* "expected" from "Expected" */
static void lower_first(char *out, size_t cap, const char *s)
{
    snprintf(out, cap, "%c%s", s[0] + ('a' - 'A'), s + 1);
}

static void map_enums(const rw_t *r, st_verrs_t *v, int which)
{
    json_t *map = member(r->req, legacy_members[which]), *e;
    const char *key, *field = which == L_UPDATES ? "Action" : "ComparisonOperator";
    char at[512], lower[32];

    lower_first(lower, sizeof(lower), legacy_members[which]);
    json_object_foreach(map, key, e)
    {
        const char *value = json_string_value(json_object_get(e, field));
        snprintf(at, sizeof(at), "%s%s.%s.member.%s", r->at, lower, key, which == L_UPDATES ? "action" : "comparisonOperator");
        if (value == NULL && which != L_UPDATES && which != L_EXPECTED)
            st_verr(v, NULL, at, "Member must not be null");
        else
            st_check_enum(v, value, at, which == L_UPDATES ? action_enum : cmp_enum);
    }
}

/* AttributesToGet's echo: "[a, b]", cut short. */
static void list_echo(const json_t *list, char *buf, size_t cap)
{
    size_t o = (size_t)snprintf(buf, cap, "[");
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) if (o < cap) o +=
        (size_t)snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", json_string_value(v));
    if (o < cap)
        snprintf(buf + o, cap - o, "]");
}

static int enums(const rw_t *r)
{
    st_verrs_t v = {0};
    json_t *list = (r->spec->legacy & BIT(L_TO_GET)) ? member(r->req, "AttributesToGet") : NULL;
    char at[512], echo[256];

    if (r->spec->legacy & BIT(L_COND_OP))
        st_check_enum(&v, json_string_value(json_object_get(r->req, "ConditionalOperator")), "conditionalOperator", cond_op_enum);
    for (int m = 0; m != L_N; ++m)
        if ((r->spec->legacy & BIT(m)) && m != L_COND_OP && m != L_TO_GET)
            map_enums(r, &v, m);
    json_t *name;
    size_t i;
    json_array_foreach(list, i, name)
    {
        snprintf(at, sizeof(at), "%sattributesToGet.%zu.member", r->at, i + 1);
        if (json_is_null(name))
            st_verr(&v, NULL, at, "Member must not be null");
    }
    if (list != NULL && (json_array_size(list) < 1 || json_array_size(list) > 255)) {
        snprintf(at, sizeof(at), "%sattributesToGet", r->at);
        list_echo(list, echo, sizeof(echo));
        st_verr(&v, echo, at,
                json_array_size(list) < 1 ? "Member must have length greater than or equal to 1"
                                          : "Member must have length less than or equal to 255");
    }
    return st_verr_answer(&v, r->a);
}

/* ---- 3. mixing; ConditionalOperator ---- */

static void list_add(char *buf, size_t cap, const char *name)
{
    size_t o = strlen(buf);
    snprintf(buf + o, cap - o, "%s%s", o ? ", " : "", name);
}

static int mixing(const rw_t *r)
{
    char legacy[256] = "", exprs[256] = "";

    for (int m = 0; m != X_N; ++m)
        if ((r->spec->exprs & BIT(m)) && member(r->req, expr_members[m]) != NULL)
            list_add(exprs, sizeof(exprs), expr_members[m]);
    for (int m = 0; m != L_N; ++m)
        if ((r->spec->legacy & BIT(m)) && member(r->req, legacy_members[m]) != NULL &&
            (m != L_KEY_CONDITIONS || member(r->req, "KeyConditionExpression") != NULL))
            list_add(legacy, sizeof(legacy), legacy_members[m]);
    if (legacy[0] == '\0' || exprs[0] == '\0')
        return 0;
    st_invalid(r->a,
               "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {%s} "
               "Expression parameters: {%s}",
               legacy, exprs);
    return -1;
}

static int conditional_operator(const rw_t *r)
{
    static const int maps[] = {L_EXPECTED, L_QUERY_FILTER, L_SCAN_FILTER};
    size_t n = 0;

    if (member(r->req, "ConditionalOperator") == NULL)
        return 0;
    for (size_t i = 0; i != sizeof(maps) / sizeof(maps[0]); ++i)
        if (r->spec->legacy & BIT(maps[i]))
            n += json_object_size(member(r->req, legacy_members[maps[i]]));
    if (n >= 2)
        return 0;
    st_invalid(r->a, n == 0 ? "ConditionalOperator cannot be used without Filter or Expected"
                            : "ConditionalOperator can only be used when Filter or Expected has two or more elements");
    return -1;
}

/* ---- 4. placeholders without expressions ---- */

/* With no expression member, the request's own ExpressionAttributeNames / Values are an error: st_exprs_parse says which,
 * in the operation's words. (With expressions, only Query's KeyConditions can be there: the placeholders merge.) */
static int placeholders_alone(const rw_t *r)
{
    st_exprs_t x;
    for (int m = 0; m != X_N; ++m)
        if ((r->spec->exprs & BIT(m)) && member(r->req, expr_members[m]) != NULL)
            return 0;
    int rc = st_exprs_parse(&x, r->req, r->spec->allowed, r->a);
    st_exprs_free(&x);
    return rc;
}

/* ---- 5. entries ---- */

/* An attribute name of a legacy member: not empty (as an item's, store_item_check). 0, or -1 answered. */
static int check_name(rw_t *r, const char *name)
{
    if (name[0] != '\0')
        return 0;
    st_invalid(r->a, "Empty attribute name");
    return -1;
}

/* Checks and normalizes a value (store_value_check); 0, or -1 answered. */
static int check_value(rw_t *r, json_t *v)
{
    char err[STORE_EXPR_ERR_MAX];
    int rc = store_value_check(v, err, sizeof(err));
    if (rc == 0)
        return 0;
    st_answer_error(r->a, 400, rc == STORE_VALUE_ESERIALIZE ? T_SERIALIZATION : T_VALIDATION, "%s", err);
    return -1;
}

/* A condition's values: an AttributeValueList, or an Expected entry's Value alone. */
typedef struct args {
    json_t *list, *one;
    size_t n;
} args_t;

static args_t args_of(json_t *list, json_t *one)
{
    return (args_t){list, one, one != NULL ? 1 : json_array_size(list)};
}

static json_t *arg(const args_t *g, size_t i)
{
    return g->one != NULL ? g->one : json_array_get(g->list, i);
}

/* The values of a comparison: checked, then their number and types for the operator, then BETWEEN's order. */
static int check_args(rw_t *r, cmp_t c, const args_t *g)
{
    const struct cmp_op *op = &cmp_ops[(unsigned)c < NCMP ? c : C_EQ];
    store_type_t first = STORE_T_NONE;
    int cmp;

    if ((unsigned)c >= NCMP) /* the enum check answered it before: defensive */
        return invalid_entry(r, "Comparison type does not exist in DynamoDB");
    for (size_t i = 0; i != g->n; ++i)
        if (check_value(r, arg(g, i)) != 0)
            return -1;
    if (g->n < op->min || g->n > op->max)
        return invalid_param(r, "Invalid number of argument(s) for the %s ComparisonOperator", op->name);
    for (size_t i = 0; i != g->n; ++i) {
        store_type_t t = store_value_type(arg(g, i));
        if (!(op->types & (1u << t)))
            return invalid_param(r, "ComparisonOperator %s is not valid for %s AttributeValue type", op->name, store_type_name(t));
        if (i == 0)
            first = t;
        else if (t != first)
            return invalid_param(r, "AttributeValues inside AttributeValueList must be of same type");
    }
    if (c == C_BETWEEN && store_value_compare(arg(g, 0), arg(g, 1), &cmp) == 0 && cmp > 0)
        return invalid_entry(r, "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound");
    return 0;
}

/* The expression of "attr <op> args" into b. */
static void write_cmp(rw_t *r, sbuf_t *b, const char *attr, cmp_t c, const args_t *g)
{
    char n[24], v[24], w[24];

    name_ph(r, attr, n);
    if (g->n > 0)
        value_ph(r, arg(g, 0), v);
    switch (c) {
    case C_NOT_NULL:
        sb_add(b, "attribute_exists(%s)", n);
        break;
    case C_NULL:
        sb_add(b, "attribute_not_exists(%s)", n);
        break;
    case C_CONTAINS:
        sb_add(b, "contains(%s, %s)", n, v);
        break;
    case C_NOT_CONTAINS: /* false on a missing attribute, as DynamoDB has it */
        sb_add(b, "attribute_exists(%s) AND NOT contains(%s, %s)", n, n, v);
        break;
    case C_BEGINS_WITH:
        sb_add(b, "begins_with(%s, %s)", n, v);
        break;
    case C_BETWEEN:
        value_ph(r, arg(g, 1), w);
        sb_add(b, "%s BETWEEN %s AND %s", n, v, w);
        break;
    case C_IN:
        sb_add(b, "%s IN (%s", n, v);
        for (size_t i = 1; i != g->n; ++i)
            sb_add(b, ", %s", value_ph(r, arg(g, i), w));
        sb_add(b, ")");
        break;
    default:
        sb_add(b, "%s %s %s", n, cmp_ops[c].sym, v);
    }
}

/* One Expected entry, checked as DynamoDB checks it, its condition written to b. 0, or -1 answered. */
static int expected_entry(rw_t *r, sbuf_t *b, const char *attr, json_t *e)
{
    json_t *value = member(e, "Value"), *list = member(e, "AttributeValueList"), *ex = member(e, "Exists");
    const char *co = json_string_value(member(e, "ComparisonOperator"));
    int exists = 1;

    if (ex != NULL && st_get_bool(e, "Exists", &exists, r->a) != 0)
        return -1;
    if (ex != NULL && co != NULL)
        return invalid_param(r, "Exists and ComparisonOperator cannot be used together for Attribute: %s", attr);
    if (value != NULL && list != NULL)
        return invalid_param(r, "Value and AttributeValueList cannot be used together for Attribute: %s", attr);
    if (co == NULL && list != NULL)
        return invalid_param(r, "AttributeValueList can only be used with a ComparisonOperator for Attribute: %s", attr);
    if (!exists && value != NULL)
        return invalid_param(r, "Value cannot be used when Exists is false for Attribute: %s", attr);
    if (value == NULL && list == NULL) {
        if (co != NULL && strcmp(co, "NULL") != 0 && strcmp(co, "NOT_NULL") != 0)
            return invalid_param(r, "Value or AttributeValueList must be used with ComparisonOperator: %s for Attribute: %s", co,
                                 attr);
        if (co == NULL && exists)
            return invalid_param(r, "Value must be provided when Exists is %s for Attribute: %s", ex == NULL ? "null" : "true",
                                 attr);
    }
    args_t g = args_of(list, value);
    if (co != NULL) {
        if (check_args(r, (cmp_t)cmp_of(co), &g) != 0)
            return -1;
        write_cmp(r, b, attr, (cmp_t)cmp_of(co), &g);
    } else if (!exists) {
        write_cmp(r, b, attr, C_NULL, &g);
    } else {
        if (check_value(r, value) != 0)
            return -1;
        write_cmp(r, b, attr, C_EQ, &g);
    }
    return 0;
}

/* A map of conditions (Expected, QueryFilter, ScanFilter, KeyConditions) into the expression x, joined by
 * ConditionalOperator (KeyConditions: always AND). 0, or -1 answered. */
static int conditions(rw_t *r, int which, int x)
{
    json_t *map = member(r->req, legacy_members[which]), *e;
    const char *key, *cop = json_string_value(member(r->req, "ConditionalOperator"));
    int any_or = which != L_KEY_CONDITIONS && cop != NULL && strcmp(cop, "OR") == 0, multi = json_object_size(map) > 1;
    sbuf_t *b = &r->x[x];

    if (which == L_KEY_CONDITIONS && (json_object_size(map) < 1 || json_object_size(map) > 2)) {
        /* DynamoDB checks each condition's values first */
        json_object_foreach(map, key, e)
        {
            args_t g = args_of(member(e, "AttributeValueList"), NULL);
            if (check_args(r, (cmp_t)cmp_of(json_string_value(member(e, "ComparisonOperator"))), &g) != 0)
                return -1;
        }
        return invalid_entry(r, "Conditions can be of length 1 or 2 only");
    }
    json_object_foreach(map, key, e)
    {
        if (check_name(r, key) != 0)
            return -1;
        sb_add(b, "%s%s", b->len ? (any_or ? " OR " : " AND ") : "", any_or && multi ? "(" : "");
        if (which == L_EXPECTED) {
            if (expected_entry(r, b, key, e) != 0)
                return -1;
        } else {
            cmp_t c = (cmp_t)cmp_of(json_string_value(member(e, "ComparisonOperator")));
            args_t g = args_of(member(e, "AttributeValueList"), NULL);
            if (check_args(r, c, &g) != 0)
                return -1;
            if (which == L_KEY_CONDITIONS && !cmp_ops[c].indexable)
                return invalid_entry(r, "Attempted conditional constraint is not an indexable operation");
            write_cmp(r, b, key, c, &g);
        }
        sb_add(b, "%s", any_or && multi ? ")" : "");
    }
    return 0;
}

/* AttributeUpdates into an UpdateExpression: SET, ADD, REMOVE, DELETE clauses. 0, or -1 answered. */
static int attribute_updates(rw_t *r)
{
    static const char *const clause[] = {"SET", "ADD", "REMOVE", "DELETE"};
    json_t *map = member(r->req, "AttributeUpdates"), *e;
    sbuf_t parts[4] = {{0}};
    const char *key;
    char n[24], v[24], w[24];
    int rc = -1;

    json_object_foreach(map, key, e)
    {
        if (json_is_null(e))
            continue; /* DynamoDB skips an update that is null */
        if (check_name(r, key) != 0)
            goto out;
        json_t *value = member(e, "Value");
        const char *action = json_string_value(member(e, "Action"));
        int act = action == NULL || !strcmp(action, "PUT") ? 0 : !strcmp(action, "ADD") ? 1 : 2;
        store_type_t t = STORE_T_NONE;
        if (value != NULL && check_value(r, value) != 0)
            goto out;
        if (value != NULL)
            t = store_value_type(value);
        if (value == NULL && act != 2) {
            invalid_param(r, "Only DELETE action is allowed when no attribute value is specified");
            goto out;
        }
        if (act == 2 && value != NULL && t != STORE_T_SS && t != STORE_T_NS && t != STORE_T_BS) {
            invalid_param(r, "DELETE action with value is not supported for the type %s", store_type_name(t));
            goto out;
        }
        if (act == 1 && t != STORE_T_N && t != STORE_T_SS && t != STORE_T_NS && t != STORE_T_BS && t != STORE_T_L) {
            invalid_param(r, "ADD action is not supported for the type %s", store_type_name(t));
            goto out;
        }
        name_ph(r, key, n);
        if (value != NULL)
            value_ph(r, value, v);
        if (act == 0) {
            sb_add(&parts[0], "%s%s = %s", parts[0].len ? ", " : "", n, v);
        } else if (act == 1 && t == STORE_T_L) { /* ADD appends to a list (made when missing) */
            placeholder(r, ':', json_pack("{s:[]}", "L"), w);
            sb_add(&parts[0], "%s%s = list_append(if_not_exists(%s, %s), %s)", parts[0].len ? ", " : "", n, n, w, v);
        } else if (act == 1) {
            sb_add(&parts[1], "%s%s %s", parts[1].len ? ", " : "", n, v);
        } else if (value == NULL) {
            sb_add(&parts[2], "%s%s", parts[2].len ? ", " : "", n);
        } else {
            sb_add(&parts[3], "%s%s %s", parts[3].len ? ", " : "", n, v);
        }
    }
    for (int i = 0; i != 4; ++i) {
        if (parts[i].len)
            sb_add(&r->x[X_UPDATE], "%s%s %s", r->x[X_UPDATE].len ? " " : "", clause[i], parts[i].p);
        r->oom |= parts[i].failed;
    }
    rc = 0;
out:
    for (int i = 0; i != 4; ++i)
        free(parts[i].p);
    return rc;
}

/* AttributesToGet into a ProjectionExpression. 0, or -1 answered. */
static int attributes_to_get(rw_t *r)
{
    json_t *list = member(r->req, "AttributesToGet"), *v;
    size_t i;
    char n[24];

    json_array_foreach(list, i, v)
    {
        if (check_name(r, json_string_value(v)) != 0)
            return -1;
        for (size_t j = 0; j != i; ++j)
            if (strcmp(json_string_value(json_array_get(list, j)), json_string_value(v)) == 0)
                return invalid_param(r, "Duplicate value in attribute name: %s", json_string_value(v));
    }
    json_array_foreach(list, i, v) sb_add(&r->x[X_PROJECTION], "%s%s", i ? ", " : "", name_ph(r, json_string_value(v), n));
    return 0;
}

/* Query and Scan: Select other than SPECIFIC_ATTRIBUTES takes no AttributesToGet. */
static int select_check(rw_t *r)
{
    const char *sel = json_string_value(json_object_get(r->req, "Select"));
    if (r->spec->batch || !strcmp(r->spec->op, "GetItem") || member(r->req, "AttributesToGet") == NULL || sel == NULL)
        return 0;
    if (!strcmp(sel, "ALL_ATTRIBUTES") || !strcmp(sel, "ALL_PROJECTED_ATTRIBUTES") || !strcmp(sel, "COUNT"))
        return invalid_entry(r, "Cannot specify the AttributesToGet when choosing to get %s",
                             !strcmp(sel, "COUNT") ? "only the Count" : sel);
    return 0;
}

static int entries(rw_t *r)
{
    unsigned l = r->spec->legacy;
    if (((l & BIT(L_UPDATES)) && attribute_updates(r) != 0) ||
        ((l & BIT(L_EXPECTED)) && conditions(r, L_EXPECTED, X_CONDITION) != 0) ||
        ((l & BIT(L_QUERY_FILTER)) && conditions(r, L_QUERY_FILTER, X_FILTER) != 0) ||
        ((l & BIT(L_TO_GET)) && attributes_to_get(r) != 0) ||
        ((l & BIT(L_SCAN_FILTER)) && conditions(r, L_SCAN_FILTER, X_FILTER) != 0) ||
        ((l & BIT(L_KEY_CONDITIONS)) && member(r->req, "KeyConditions") != NULL &&
         conditions(r, L_KEY_CONDITIONS, X_KEY_CONDITION) != 0))
        return -1;
    return select_check(r);
}

/* ---- the rewritten request ---- */

/* Adds the generated placeholders to the request's map `name` (made when absent). */
static int merge(json_t *req, const char *name, json_t *add)
{
    json_t *own = member(req, name);
    if (json_object_size(add) == 0)
        return 0;
    if (own != NULL)
        return json_object_update(own, add);
    return json_object_set(req, name, add);
}

static int commit(rw_t *r)
{
    for (int m = 0; m != X_N; ++m) {
        r->oom |= r->x[m].failed;
        if (r->x[m].len && !r->oom && json_object_set_new(r->req, expr_members[m], json_string(r->x[m].p)) != 0)
            r->oom = 1;
    }
    if (r->oom || merge(r->req, "ExpressionAttributeNames", r->names) != 0 ||
        merge(r->req, "ExpressionAttributeValues", r->values) != 0) {
        st_answer_error(r->a, 500, T_INTERNAL, "out of memory");
        return -1;
    }
    for (int m = 0; m != L_N; ++m)
        json_object_del(r->req, legacy_members[m]);
    return 0;
}

static int rewrite(const op_spec_t *spec, json_t *req, const char *at, st_answer_t *a)
{
    rw_t r = {.spec = spec, .req = req, .at = at, .a = a};
    int rc = -1, any = 0;

    for (int m = 0; m != L_N; ++m)
        any |= (spec->legacy & BIT(m)) && member(req, legacy_members[m]) != NULL;
    if (!any) {                        /* nearly every request: nothing to make */
        for (int m = 0; m != L_N; ++m) /* ignored by DynamoDB: not members of this operation */
            json_object_del(req, legacy_members[m]);
        return 0;
    }
    r.names = json_object();
    r.values = json_object();
    if (r.names == NULL || r.values == NULL) {
        st_answer_error(a, 500, T_INTERNAL, "out of memory");
    } else if (shapes(&r) == 0 && enums(&r) == 0 && mixing(&r) == 0 && conditional_operator(&r) == 0 &&
               placeholders_alone(&r) == 0 && entries(&r) == 0) {
        rc = commit(&r);
    }
    for (int m = 0; m != X_N; ++m)
        free(r.x[m].p);
    json_decref(r.names);
    json_decref(r.values);
    return rc;
}

/* BatchGetItem: each table's KeysAndAttributes (batch.c answers a RequestItems of the wrong shape). */
static int rewrite_batch(const op_spec_t *spec, json_t *req, st_answer_t *a)
{
    json_t *ri = json_object_get(req, "RequestItems"), *spec_t;
    const char *table;
    char at[512];

    json_object_foreach(ri, table, spec_t)
    {
        if (!json_is_object(spec_t))
            continue;
        snprintf(at, sizeof(at), "requestItems.%s.member.", table);
        if (rewrite(spec, spec_t, at, a) != 0)
            return -1;
    }
    return 0;
}

int st_legacy_rewrite(const char *op, json_t *req, st_answer_t *a)
{
    const op_spec_t *spec = NULL;
    st_verrs_t v = {0};

    for (size_t i = 0; i != sizeof(specs) / sizeof(specs[0]); ++i)
        if (op != NULL && strcmp(specs[i].op, op) == 0)
            spec = &specs[i];
    if (spec == NULL)
        return 0;
    if (spec->batch)
        return rewrite_batch(spec, req, a);
    /* DynamoDB rejects a bad TableName first: the operation answers it (before its own look at legacy members) */
    json_t *table = member(req, "TableName");
    if (table != NULL && !json_is_string(table))
        return 0;
    st_check_table_name(&v, json_string_value(table), "tableName");
    if (v.n != 0)
        return 0;
    return rewrite(spec, req, "", a);
}
