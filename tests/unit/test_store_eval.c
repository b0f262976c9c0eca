/*
 * Unit tests of store/eval.c: conditions, projections and updates evaluated on items, with DynamoDB's semantics.
 *
 * Each test reads like a DynamoDB request: ExpressionAttributeValues / ExpressionAttributeNames (V(), NAMES()), an
 * expression parsed by store_expr_parse(), an item, and the answer DynamoDB gives. JSON is written with single quotes
 * (J() turns them into double quotes). The expected behaviours come from what DynamoDB answers: ScyllaDB's Alternator
 * tests (run against DynamoDB; test_condition_expression.py, test_update_expression.py, test_returnvalues.py,
 * test_projection_expression.py), dynalite's validation tests, and AWS's documentation; cases are marked "DynamoDB:"
 * where they pin a behaviour those sources record. Every allocation of the parser comes from a test arena freed after
 * each test; ASan/UBSan/LSan must stay quiet.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "store/eval.h"
#include "store/value.h"

#define C STORE_EXPR_CONDITION
#define F STORE_EXPR_FILTER
#define K STORE_EXPR_KEY_CONDITION

#define E_NOATTR "The provided expression refers to an attribute that does not exist in the item"
#define E_OPTYPE "An operand in the update expression has an incorrect data type"
#define E_PATH "The document path provided in the update expression is invalid for update"
#define E_OVERFLOW "Number overflow. Attempting to store a number with magnitude larger than supported range"
#define E_UNDERFLOW "Number underflow. Attempting to store a number with magnitude smaller than supported range"

/* ---- the parser's arena ---- */

typedef struct block {
    struct block *next;
    max_align_t data[];
} block_t;

static block_t *blocks;

static void *test_alloc(size_t size, void *ud)
{
    block_t *b;
    (void)ud;
    if ((b = malloc(sizeof(*b) + size)) == NULL)
        return NULL;
    b->next = blocks;
    blocks = b;
    return b->data;
}

static void arena_free(void)
{
    while (blocks != NULL) {
        block_t *b = blocks;
        blocks = b->next;
        free(b);
    }
}

/* ---- JSON with single quotes ---- */

static json_t *J(const char *text)
{
    char *s = strdup(text);
    json_error_t e;
    json_t *v;

    assert_non_null(s);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    v = json_loads(s, JSON_DECODE_ANY, &e);
    if (v == NULL)
        fail_msg("bad test JSON: %s: %s", text, e.text);
    free(s);
    return v;
}

static void assert_json(json_t *got, const char *want, const char *what)
{
    json_t *w = J(want);
    if (!json_equal(got, w)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        char *x = json_dumps(w, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        print_error("%s\n  got:  %s\n  want: %s\n", what, g, x);
        free(g);
        free(x);
        json_decref(w);
        fail();
    }
    json_decref(w);
}

/* ---- the request: ExpressionAttributeNames and ExpressionAttributeValues ---- */

#define MAXV 128
static json_t *names_obj;       /* "#n" -> "name" */
static json_t *values_obj;      /* ":v" -> AttributeValue */
static json_t *values[MAXV];    /* by index (borrowed from values_obj) */
static const char *vkeys[MAXV]; /* the placeholder of each index */
static size_t nvalues;
static int typed; /* give the parser value_type (its own static type checks) */

static void NAMES(const char *json)
{
    json_decref(names_obj);
    names_obj = J(json);
}

static void V(const char *json)
{
    const char *k;
    json_t *v;

    json_decref(values_obj);
    values_obj = J(json);
    nvalues = 0;
    json_object_foreach(values_obj, k, v)
    {
        assert_true(nvalues < MAXV);
        vkeys[nvalues] = k;
        values[nvalues++] = v;
    }
}

static int lookup_name(void *ud, const char *ph, size_t len, const char **out, size_t *outlen)
{
    json_t *v = names_obj != NULL ? json_object_getn(names_obj, ph, len) : NULL;
    (void)ud;
    if (v == NULL)
        return -1;
    *out = json_string_value(v);
    *outlen = json_string_length(v);
    return 0;
}

static int lookup_value(void *ud, const char *ph, size_t len, size_t *index)
{
    (void)ud;
    for (size_t i = 0; i < nvalues; i++) {
        if (strlen(vkeys[i]) == len && memcmp(vkeys[i], ph, len) == 0) {
            *index = i;
            return 0;
        }
    }
    return -1;
}

static store_expr_vtype_t lookup_type(void *ud, size_t index)
{
    static const char *const t[] = {"", "S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS", "L", "M"};
    const char *k = json_object_iter_key(json_object_iter(values[index]));
    (void)ud;
    for (size_t i = 1; i < sizeof(t) / sizeof(t[0]); i++)
        if (strcmp(t[i], k) == 0)
            return (store_expr_vtype_t)i;
    return STORE_EXPR_VT_UNKNOWN;
}

static int lookup_s(void *ud, size_t index, const char **s, size_t *len)
{
    json_t *v = json_object_get(values[index], "S");
    (void)ud;
    if (!json_is_string(v))
        return -1;
    *s = json_string_value(v);
    *len = json_string_length(v);
    return 0;
}

static store_expr_t parse(store_expr_kind_t kind, const char *src)
{
    store_expr_env_t env = {test_alloc, lookup_name, lookup_value, NULL, NULL, NULL};
    store_expr_t e;
    char err[STORE_EXPR_ERR_MAX];

    if (typed) {
        env.value_type = lookup_type;
        env.value_s = lookup_s;
    }
    if (store_expr_parse(kind, src, strlen(src), &env, &e, err, sizeof(err)) != 0)
        fail_msg("parse of \"%s\" failed: %s", src, err);
    return e;
}

/* ---- assertions ---- */

static char err[STORE_EXPR_ERR_MAX];

/* A condition of kind on item (NULL: no item) answers want (1 true, 0 false). */
static void cond_is(store_expr_kind_t kind, const char *src, const char *item, int want, int line)
{
    store_expr_t e = parse(kind, src);
    json_t *it = item != NULL ? J(item) : NULL;
    int r;

    err[0] = 0;
    if ((r = store_eval_check(&e, values, err, sizeof(err))) != 0)
        fail_msg("line %d: %s: check failed: %s", line, src, err);
    r = store_eval_condition(&e, it, values, err, sizeof(err));
    json_decref(it);
    if (r != want)
        fail_msg("line %d: %s: got %d (%s), want %d", line, src, r, err, want);
}

#define TRUE(src, item) cond_is(C, src, item, 1, __LINE__)
#define FALSE(src, item) cond_is(C, src, item, 0, __LINE__)

/* Both store_eval_check and store_eval_condition reject the condition with msg. */
static void cond_err(store_expr_kind_t kind, const char *src, const char *item, const char *msg, int line)
{
    store_expr_t e = parse(kind, src);
    json_t *it = item != NULL ? J(item) : NULL;
    int r;

    err[0] = 0;
    r = store_eval_check(&e, values, err, sizeof(err));
    if (r != STORE_EVAL_EINVALID || strcmp(err, msg) != 0)
        fail_msg("line %d: %s: check gave %d \"%s\", want \"%s\"", line, src, r, err, msg);
    err[0] = 0;
    r = store_eval_condition(&e, it, values, err, sizeof(err));
    json_decref(it);
    if (r != STORE_EVAL_EINVALID || strcmp(err, msg) != 0)
        fail_msg("line %d: %s: condition gave %d \"%s\", want \"%s\"", line, src, r, err, msg);
}

#define COND_ERR(src, item, msg) cond_err(C, src, item, msg, __LINE__)

static void project_is(const char *src, const char *item, const char *want, int line)
{
    store_expr_t e = parse(STORE_EXPR_PROJECTION, src);
    json_t *it = item != NULL ? J(item) : NULL, *out = store_eval_project(&e, it);
    char what[256];

    assert_non_null(out);
    snprintf(what, sizeof(what), "line %d: projection %s", line, src);
    assert_json(out, want, what);
    json_decref(out);
    json_decref(it);
}

#define PROJECT(src, item, want) project_is(src, item, want, __LINE__)

/* An update of item (existed as given) gives want; old and new, when not NULL, are UPDATED_OLD and UPDATED_NEW. */
static void update_is(const char *src, const char *item, int existed, const char *want, const char *old, const char *new_, int line)
{
    store_expr_t e = parse(STORE_EXPR_UPDATE, src);
    json_t *it = J(item), *uo = json_object(), *un = json_object();
    char what[512];
    int r;

    err[0] = 0;
    r = store_eval_update(&e, it, existed, values, uo, un, err, sizeof(err));
    if (r != 0)
        fail_msg("line %d: %s: update failed %d: %s", line, src, r, err);
    snprintf(what, sizeof(what), "line %d: %s: item", line, src);
    assert_json(it, want, what);
    if (old != NULL) {
        snprintf(what, sizeof(what), "line %d: %s: UPDATED_OLD", line, src);
        assert_json(uo, old, what);
    }
    if (new_ != NULL) {
        snprintf(what, sizeof(what), "line %d: %s: UPDATED_NEW", line, src);
        assert_json(un, new_, what);
    }
    json_decref(it);
    json_decref(uo);
    json_decref(un);
}

#define UPDATE(src, item, want) update_is(src, item, 1, want, NULL, NULL, __LINE__)
#define UPDATE_RV(src, item, want, old, new_) update_is(src, item, 1, want, old, new_, __LINE__)

/* An update fails with msg, and leaves the item, UPDATED_OLD and UPDATED_NEW as they were. */
static void update_err(const char *src, const char *item, int existed, const char *msg, int line)
{
    store_expr_t e = parse(STORE_EXPR_UPDATE, src);
    json_t *it = J(item), *before = J(item), *uo = json_object(), *un = json_object();
    int r;

    err[0] = 0;
    r = store_eval_update(&e, it, existed, values, uo, un, err, sizeof(err));
    if (r != STORE_EVAL_EINVALID || strcmp(err, msg) != 0)
        fail_msg("line %d: %s: gave %d \"%s\", want \"%s\"", line, src, r, err, msg);
    if (!json_equal(it, before) || json_object_size(uo) != 0 || json_object_size(un) != 0)
        fail_msg("line %d: %s: a failed update changed something", line, src);
    json_decref(it);
    json_decref(before);
    json_decref(uo);
    json_decref(un);
}

#define UPDATE_ERR(src, item, msg) update_err(src, item, 1, msg, __LINE__)

/* ---- fixtures ---- */

static int setup(void **state)
{
    (void)state;
    typed = 0;
    V("{}");
    NAMES("{}");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    arena_free();
    json_decref(values_obj);
    json_decref(names_obj);
    values_obj = names_obj = NULL;
    nvalues = 0;
    return 0;
}

/* An item with one attribute of every type. */
#define ALL                                                                                                                        \
    "{'s': {'S': 'hello'}, 'n': {'N': '7'}, 'b': {'B': 'aGk='}, 't': {'BOOL': true}, 'z': {'NULL': true},"                         \
    " 'l': {'L': [{'S': 'x'}, {'N': '1'}]}, 'm': {'M': {'k': {'S': 'v'}}}, 'ss': {'SS': ['a', 'b']},"                              \
    " 'ns': {'NS': ['1', '2']}, 'bs': {'BS': ['AQ==', 'Ag==']}}"

/* ======== conditions: = and <> ======== */

/* DynamoDB: equality holds for every type, with a path or a :value on either side. */
static void test_eq_every_type(void **state)
{
    (void)state;
    V("{':s': {'S': 'hello'}, ':n': {'N': '7'}, ':b': {'B': 'aGk='}, ':t': {'BOOL': true}, ':z': {'NULL': true},"
      " ':l': {'L': [{'S': 'x'}, {'N': '1'}]}, ':m': {'M': {'k': {'S': 'v'}}}, ':ss': {'SS': ['a', 'b']},"
      " ':ns': {'NS': ['1', '2']}, ':bs': {'BS': ['AQ==', 'Ag==']}}");
    TRUE("s = :s", ALL);
    TRUE("n = :n", ALL);
    TRUE("b = :b", ALL);
    TRUE("t = :t", ALL);
    TRUE("z = :z", ALL);
    TRUE("l = :l", ALL);
    TRUE("m = :m", ALL);
    TRUE("ss = :ss", ALL);
    TRUE(":ns = ns", ALL);
    TRUE("bs = :bs", ALL);
}

/* DynamoDB: a set equals another in any order (Alternator issue #5021). */
static void test_eq_sets_any_order(void **state)
{
    (void)state;
    V("{':ss': {'SS': ['mouse', 'cat', 'dog']}, ':ns': {'NS': ['3', '1', '2']}, ':bs': {'BS': ['Ag==', 'AQ==']}}");
    TRUE("a = :ss", "{'a': {'SS': ['dog', 'cat', 'mouse']}}");
    TRUE("a = :ns", "{'a': {'NS': ['1', '2', '3']}}");
    TRUE("a = :bs", "{'a': {'BS': ['AQ==', 'Ag==']}}");
    FALSE("a = :ss", "{'a': {'SS': ['dog', 'cat']}}");
}

/* DynamoDB: values of different types are never equal (a failed condition, not an error). */
static void test_eq_different_types(void **state)
{
    (void)state;
    V("{':s1': {'S': '1'}, ':n1': {'N': '1'}, ':l': {'L': [{'N': '1'}]}, ':ns': {'NS': ['1']}}");
    FALSE("a = :s1", "{'a': {'N': '1'}}");
    FALSE("a = :n1", "{'a': {'S': '1'}}");
    FALSE("a = :l", "{'a': {'NS': ['1']}}");
    FALSE("a = :ns", "{'a': {'L': [{'N': '1'}]}}");
    FALSE("a = :n1", "{'a': {'B': 'MQ=='}}");
}

static void test_eq_numbers_and_nesting(void **state)
{
    (void)state;
    V("{':n': {'N': '-1.5'}, ':m': {'M': {'x': {'L': [{'N': '1'}, {'SS': ['q', 'p']}]}}}}");
    TRUE("a = :n", "{'a': {'N': '-1.5'}}");
    FALSE("a = :n", "{'a': {'N': '-1.25'}}");
    TRUE("a = :m", "{'a': {'M': {'x': {'L': [{'N': '1'}, {'SS': ['p', 'q']}]}}}}");
    FALSE("a = :m", "{'a': {'M': {'x': {'L': [{'SS': ['p', 'q']}, {'N': '1'}]}}}}");
    TRUE("a = b", "{'a': {'S': 'x'}, 'b': {'S': 'x'}}");
}

/* DynamoDB: a missing attribute is equal to nothing, not even another missing one (Alternator issue #8511). */
static void test_eq_missing(void **state)
{
    (void)state;
    V("{':v': {'N': '2'}}");
    FALSE("q = :v", "{'a': {'N': '2'}}");
    FALSE("q = z", "{'a': {'N': '2'}}");
    FALSE("q = z", NULL);
    FALSE(":v = q", NULL);
}

/* DynamoDB: <> is true for different values, different types, and when either side is missing (even both). */
static void test_ne(void **state)
{
    (void)state;
    V("{':three': {'N': '3'}, ':one': {'N': '1'}, ':s1': {'S': '1'}}");
    TRUE("a <> :three", "{'a': {'N': '1'}}");
    FALSE("a <> :one", "{'a': {'N': '1'}}");
    TRUE("a <> b", "{'a': {'N': '1'}, 'b': {'N': '2'}}");
    FALSE("a <> b", "{'a': {'N': '1'}, 'b': {'N': '1'}}");
    TRUE("a <> :s1", "{'a': {'N': '1'}}");
    TRUE("z <> :one", "{'a': {'N': '1'}}");
    TRUE("q <> z", "{'a': {'N': '1'}}");
    TRUE("q <> z", NULL);
}

/* ======== conditions: ordering ======== */

/* DynamoDB: < <= > >= work on S, N and B, with the item's attribute on either side. */
static void test_lt(void **state)
{
    (void)state;
    V("{':2': {'N': '2'}, ':1': {'N': '1'}, ':0': {'N': '0'}, ':dog': {'S': 'dog'}, ':cat': {'S': 'cat'},"
      " ':aardvark': {'S': 'aardvark'}, ':bdog': {'B': 'ZG9n'}, ':bcat': {'B': 'Y2F0'}}");
    const char *item = "{'a': {'N': '1'}, 'b': {'S': 'cat'}, 'c': {'B': 'Y2F0'}}";
    TRUE("a < :2", item);
    TRUE("b < :dog", item);
    TRUE("c < :bdog", item);
    TRUE(":0 < a", item);
    FALSE("a < :1", item);
    FALSE("a < :0", item);
    FALSE("b < :cat", item);
    FALSE("b < :aardvark", item);
    FALSE("c < :bcat", item);
}

static void test_le_gt_ge(void **state)
{
    (void)state;
    V("{':1': {'N': '1'}, ':2': {'N': '2'}, ':0': {'N': '0'}, ':cat': {'S': 'cat'}, ':dog': {'S': 'dog'}}");
    const char *item = "{'a': {'N': '1'}, 'b': {'S': 'cat'}}";
    TRUE("a <= :1", item);
    TRUE("a <= :2", item);
    FALSE("a <= :0", item);
    TRUE("b <= :cat", item);
    TRUE("a > :0", item);
    FALSE("a > :1", item);
    FALSE("b > :dog", item);
    TRUE("a >= :1", item);
    TRUE("a >= :0", item);
    FALSE("a >= :2", item);
    TRUE("b >= :cat", item);
    FALSE("b >= :dog", item);
}

/* Numbers compare numerically (not as text), strings bytewise in UTF-8, binaries bytewise once decoded. */
static void test_order_by_type(void **state)
{
    (void)state;
    V("{':9': {'N': '9'}, ':m125': {'N': '-1.25'}, ':tiny': {'N': '0.000000000000000000001'}, ':z': {'S': 'z'},"
      " ':Z': {'S': 'Z'}, ':ff': {'B': '/w=='}}");
    TRUE("a > :9", "{'a': {'N': '10'}}");
    TRUE("a < :m125", "{'a': {'N': '-1.5'}}");
    TRUE("a > :tiny", "{'a': {'N': '0.0000000000000000000011'}}");
    TRUE("a > :z", "{'a': {'S': '\xc3\xa9'}}"); /* é (0xC3 0xA9) sorts after z (0x7A) */
    TRUE("a < :z", "{'a': {'S': 'Z'}}");
    FALSE("a < :Z", "{'a': {'S': 'a'}}");
    /* 0x01 < 0xFF, though the base64 text "AQ==" sorts after "/w==" */
    TRUE("a < :ff", "{'a': {'B': 'AQ=='}}");
}

/* DynamoDB: comparing different types, or a missing attribute, is a failed condition, not an error. */
static void test_order_mismatch_is_false(void **state)
{
    (void)state;
    V("{':s17': {'S': '17'}, ':1': {'N': '1'}}");
    const char *item = "{'a': {'N': '1'}, 'x': {'L': [{'N': '1'}, {'N': '2'}]}, 't': {'BOOL': true}}";
    FALSE("a < :s17", item);
    FALSE("a >= :s17", item);
    FALSE("q < :s17", item);
    FALSE(":s17 < q", item);
    FALSE("x < :1", item);
    FALSE(":1 < x", item);
    FALSE("t > :1", item);
    FALSE("x <= x[0]", item);
}

/* DynamoDB: any order comparison with a missing operand is false, even when both are missing. */
static void test_order_two_missing(void **state)
{
    (void)state;
    FALSE("q < z", "{'a': {'N': '1'}}");
    FALSE("q <= z", "{'a': {'N': '1'}}");
    FALSE("q > z", NULL);
    FALSE("q >= z", NULL);
    FALSE("q BETWEEN z AND x", NULL);
}

/* DynamoDB: a :value of a type the operator does not order is a ValidationException, whatever the item holds. */
static void test_order_bad_value_type(void **state)
{
    (void)state;
    V("{':l': {'L': [{'N': '1'}, {'N': '2'}]}, ':t': {'BOOL': true}, ':ss': {'SS': ['a']}, ':n': {'N': '1'}}");
    COND_ERR("a < :l", "{'a': {'N': '1'}}",
             "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: <, operand "
             "type: L");
    COND_ERR(":l <= a", NULL,
             "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: <=, operand "
             "type: L");
    COND_ERR("a > :t", NULL,
             "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: >, operand "
             "type: BOOL");
    COND_ERR("a >= :ss", NULL,
             "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: >=, operand "
             "type: SS");
    COND_ERR("a BETWEEN :l AND :n", NULL,
             "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: BETWEEN, "
             "operand type: L");
}

/* The parser, given the values' types, makes the same check with the same message. */
static void test_order_bad_value_type_parser_agrees(void **state)
{
    store_expr_env_t env = {test_alloc, lookup_name, lookup_value, lookup_type, lookup_s, NULL};
    store_expr_t e;
    char perr[STORE_EXPR_ERR_MAX];
    (void)state;
    V("{':l': {'L': [{'N': '1'}]}}");
    assert_int_equal(store_expr_parse(C, "a < :l", 6, &env, &e, perr, sizeof(perr)), STORE_EXPR_EINVALID);
    COND_ERR("a < :l", NULL, perr);
}

/* ======== conditions: BETWEEN ======== */

/* DynamoDB: BETWEEN is inclusive at both ends, on S, N and B; its operands may all be item attributes. */
static void test_between(void **state)
{
    (void)state;
    V("{':0': {'N': '0'}, ':1': {'N': '1'}, ':2': {'N': '2'}, ':7': {'N': '7'}, ':aa': {'S': 'aardvark'}, ':dog': {'S': 'dog'},"
      " ':cat': {'S': 'cat'}, ':zebra': {'S': 'zebra'}, ':baa': {'B': 'YWFyZHZhcms='}, ':bdog': {'B': 'ZG9n'},"
      " ':bcat': {'B': 'Y2F0'}}");
    const char *item = "{'a': {'N': '1'}, 'b': {'S': 'cat'}, 'c': {'B': 'Y2F0'}, 'x': {'N': '0'}, 'y': {'N': '2'}}";
    TRUE("a BETWEEN :0 AND :2", item);
    TRUE("a BETWEEN :1 AND :1", item);
    TRUE("b BETWEEN :aa AND :dog", item);
    TRUE("b BETWEEN :cat AND :cat", item);
    TRUE("c BETWEEN :baa AND :bdog", item);
    TRUE("c BETWEEN :bcat AND :bcat", item);
    TRUE("a BETWEEN x AND y", item);
    TRUE("a between x and y", item);
    FALSE("a BETWEEN :2 AND :7", item);
    FALSE("b BETWEEN :dog AND :zebra", item);
    FALSE("q BETWEEN :0 AND :2", item);
}

/* DynamoDB: with a bound from the item, a type mismatch or reversed bounds are just false. */
static void test_between_item_bounds(void **state)
{
    (void)state;
    V("{':1': {'N': '1'}, ':3': {'N': '3'}, ':dog': {'S': 'dog'}, ':s0': {'S': '0'}, ':s2': {'S': '2'}}");
    const char *item = "{'a': {'N': '1'}, 'two': {'N': '2'}, 'x': {'L': [{'N': '1'}]}, 'y': {'L': [{'N': '2'}]}}";
    FALSE("a BETWEEN two AND :1", item);
    FALSE("a BETWEEN :3 AND two", item);
    FALSE("a BETWEEN two AND :dog", item);
    FALSE("a BETWEEN x AND y", item);
    FALSE("a BETWEEN :s0 AND :s2", item);
}

/* DynamoDB (dynalite's tests record the wording): two :value bounds must be of one type and in order. */
static void test_between_value_bounds(void **state)
{
    (void)state;
    V("{':a': {'S': 'a'}, ':b': {'S': 'b'}, ':n1': {'N': '1'}, ':n5': {'N': '5'}, ':n4': {'N': '4'}}");
    COND_ERR("a between :b and :a", NULL,
             "Invalid ConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; "
             "lower bound operand: AttributeValue: {S:b}, upper bound operand: AttributeValue: {S:a}");
    COND_ERR("a between :n1 and :a", "{'a': {'N': '1'}}",
             "Invalid ConditionExpression: The BETWEEN operator requires same data type for lower and upper bounds; "
             "lower bound operand: AttributeValue: {N:1}, upper bound operand: AttributeValue: {S:a}");
    COND_ERR("a BETWEEN :n5 AND :n4", "{'a': {'N': '4'}}",
             "Invalid ConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; "
             "lower bound operand: AttributeValue: {N:5}, upper bound operand: AttributeValue: {N:4}");
    TRUE("a BETWEEN :n4 AND :n4", "{'a': {'N': '4'}}");
}

/* The message names the expression's kind. */
static void test_between_filter_and_key_condition(void **state)
{
    (void)state;
    V("{':n5': {'N': '5'}, ':n4': {'N': '4'}, ':p': {'S': 'x'}}");
    cond_err(F, "a BETWEEN :n5 AND :n4", NULL,
             "Invalid FilterExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; "
             "lower bound operand: AttributeValue: {N:5}, upper bound operand: AttributeValue: {N:4}",
             __LINE__);
    cond_err(K, "pk = :p AND sk BETWEEN :n5 AND :n4", "{'pk': {'S': 'x'}}",
             "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower "
             "bound; lower bound operand: AttributeValue: {N:5}, upper bound operand: AttributeValue: {N:4}",
             __LINE__);
}

/* ======== conditions: IN ======== */

/* DynamoDB: IN tests equality with each operand, any types (a mix is not an error). */
static void test_in(void **state)
{
    (void)state;
    V("{':x': {'S': 'dog'}, ':y': {'N': '174'}, ':z': {'N': '1'}, ':ss': {'SS': ['b', 'a']}, ':m': {'M': {}}}");
    TRUE("a IN (:x, :y)", "{'a': {'N': '174'}}");
    TRUE("a IN (:x)", "{'a': {'S': 'dog'}}");
    FALSE("a IN (:x, :z)", "{'a': {'N': '174'}}");
    TRUE("a IN (b)", "{'a': {'SS': ['a', 'b']}, 'b': {'SS': ['b', 'a']}}");
    TRUE("a IN (:x, :ss)", "{'a': {'SS': ['a', 'b']}}");
    TRUE("a IN (:m)", "{'a': {'M': {}}}");
    FALSE("q IN (:x, :y)", "{'a': {'N': '174'}}");
    FALSE("a IN (q, z)", "{'a': {'N': '174'}}");
    TRUE(":y IN (q, a)", "{'a': {'N': '174'}}");
}

/* DynamoDB: IN with 99 operands after it (100 in all) works. */
static void test_in_many(void **state)
{
    char vals[8192], expr[4096];
    size_t vn = 0, en = 0;
    (void)state;
    vn += (size_t)snprintf(vals + vn, sizeof(vals) - vn, "{");
    en += (size_t)snprintf(expr + en, sizeof(expr) - en, "a IN (");
    for (int i = 0; i < 99; i++) {
        vn += (size_t)snprintf(vals + vn, sizeof(vals) - vn, "%s':val%d': {'N': '%d'}", i ? ", " : "", i, i);
        en += (size_t)snprintf(expr + en, sizeof(expr) - en, "%s:val%d", i ? "," : "", i);
    }
    snprintf(vals + vn, sizeof(vals) - vn, "}");
    snprintf(expr + en, sizeof(expr) - en, ")");
    V(vals);
    TRUE(expr, "{'a': {'N': '74'}}");
    FALSE(expr, "{'a': {'N': '174'}}");
}

/* ======== conditions: functions ======== */

static void test_attribute_exists(void **state)
{
    (void)state;
    const char *item = "{'a': {'N': '1'}, 'b': {'M': {'x': {'N': '1'}, 'y': {'L': [{'N': '-1'}]}}}}";
    TRUE("attribute_exists (a)", item);
    FALSE("attribute_exists (z)", item);
    TRUE("attribute_exists(b.x)", item);
    TRUE("attribute_exists(b.y[0])", item);
    FALSE("attribute_exists(b.y[1])", item);
    FALSE("attribute_exists(a.x)", item);
    FALSE("attribute_exists(a)", NULL);
}

static void test_attribute_not_exists(void **state)
{
    (void)state;
    const char *item = "{'a': {'N': '1'}, 'b': {'M': {'x': {'NULL': true}}}}";
    TRUE("attribute_not_exists (z)", item);
    FALSE("attribute_not_exists (a)", item);
    FALSE("attribute_not_exists (b.x)", item); /* a NULL value exists */
    TRUE("attribute_not_exists (b.q)", item);
    TRUE("attribute_not_exists (b[0])", item);
    TRUE("attribute_not_exists(pk)", NULL); /* the usual "put if absent" */
}

/* DynamoDB: attribute_type(path, :t) for each of the ten types. */
static void test_attribute_type(void **state)
{
    static const char *const types[] = {"S", "N", "B", "BOOL", "NULL", "L", "M", "SS", "NS", "BS"};
    static const char *const attrs[] = {"s", "n", "b", "t", "z", "l", "m", "ss", "ns", "bs"};
    char expr[64], vals[64];
    (void)state;
    for (size_t i = 0; i < 10; i++) {
        snprintf(vals, sizeof(vals), "{':type': {'S': '%s'}}", types[i]);
        V(vals);
        snprintf(expr, sizeof(expr), "attribute_type (%s, :type)", attrs[i]);
        TRUE(expr, ALL);
        snprintf(expr, sizeof(expr), "attribute_type (%s, :type)", attrs[(i + 1) % 10]);
        FALSE(expr, ALL);
        FALSE("attribute_type (nope, :type)", ALL);
    }
    V("{':type': {'S': 'N'}}");
    TRUE("attribute_type (m.k, :type)", "{'m': {'M': {'k': {'N': '3'}}}}");
}

/* DynamoDB: an unknown type name is an error (not a failed condition), also when the attribute is missing. */
static void test_attribute_type_bad_name(void **state)
{
    (void)state;
    V("{':type': {'S': 'DOG'}, ':n': {'N': '1'}}");
    COND_ERR("attribute_type (a, :type)", NULL,
             "Invalid ConditionExpression: Invalid attribute type name found; type: DOG, valid types: "
             "{B,NULL,SS,BOOL,L,BS,N,NS,S,M}");
    COND_ERR("attribute_type (a, :n)", "{'a': {'N': '1'}}",
             "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: "
             "attribute_type, operand type: N");
}

/* DynamoDB: begins_with on S and B; either operand may be an attribute, in either order. */
static void test_begins_with(void **state)
{
    (void)state;
    V("{':hell': {'S': 'hell'}, ':hi': {'B': 'aGk='}, ':dog': {'S': 'dog'}, ':str': {'S': 'hellohi'}, ':e': {'S': ''}}");
    const char *item = "{'a': {'S': 'hello'}, 'b': {'B': 'aGkgdGhlcmU='}, 'c': {'S': 'he'}}";
    TRUE("begins_with(a, :hell)", item);
    TRUE("begins_with(b, :hi)", item);
    FALSE("begins_with(a, :dog)", item);
    TRUE("begins_with(:str, a)", item);
    TRUE("begins_with(a, c)", item);
    FALSE("begins_with(c, a)", item);
    TRUE("begins_with(a, :e)", item);
    FALSE("begins_with(b, :hell)", item); /* B and S */
    FALSE("begins_with(q, :hell)", item);
}

/* DynamoDB: begins_with on an attribute of another type is false; a :value of another type is an error. */
static void test_begins_with_types(void **state)
{
    (void)state;
    V("{':2': {'N': '2'}, ':dog': {'S': 'dog'}, ':ss': {'SS': ['d']}}");
    const char *item = "{'a': {'S': 'hello'}, 'n': {'N': '22'}, 'ss': {'SS': ['dog']}}";
    FALSE("begins_with(n, :dog)", item);
    FALSE("begins_with(ss, :dog)", item);
    FALSE("begins_with(c, :dog)", item);
    FALSE("begins_with(c, a)", item);
    COND_ERR("begins_with(a, :2)", item,
             "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, "
             "operand type: N");
    COND_ERR("begins_with(c, :ss)", item,
             "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, "
             "operand type: SS");
}

/* DynamoDB: contains() is a substring of S, a subsequence of B, a member of a set, an element of a list. */
static void test_contains(void **state)
{
    (void)state;
    V("{':ell': {'S': 'ell'}, ':4': {'N': '4'}, ':here': {'B': 'aGVyZQ=='}, ':dog': {'B': 'ZG9n'}, ':s12': {'NS': ['1', '2']},"
      " ':l34': {'L': [{'N': '3'}, {'N': '4'}]}, ':hi': {'S': 'hi'}, ':a': {'S': 'a'}, ':x': {'B': 'Ag=='}}");
    const char *item =
        "{'a': {'S': 'hello'}, 'b': {'NS': ['2', '4', '7']}, 'c': {'L': [{'N': '2'}, {'N': '4'}, {'N': '7'}]},"
        " 'd': {'B': 'aGkgdGhlcmU='}, 'e': {'L': [{'S': 'hi'}, {'NS': ['2', '1']}, {'L': [{'N': '3'}, {'N': '4'}]}]},"
        " 'ss': {'SS': ['a', 'b']}, 'bs': {'BS': ['AQ==', 'Ag==']}}";
    TRUE("contains(a, :ell)", item);
    TRUE("contains(b, :4)", item);
    TRUE("contains(c, :4)", item);
    TRUE("contains(d, :here)", item);
    FALSE("contains(d, :dog)", item);
    FALSE("contains(d, :s12)", item);
    TRUE("contains(e, :s12)", item); /* a list element equal to a set, in another order */
    TRUE("contains(e, :l34)", item);
    TRUE("contains(e, :hi)", item);
    TRUE("contains(ss, :a)", item);
    TRUE("contains(bs, :x)", item);
    FALSE("contains(a, :4)", item);
    FALSE("contains(b, :a)", item);
    FALSE("contains(q, :a)", item);
    TRUE("contains(:hi, :hi)", item);
}

static void test_contains_edge_cases(void **state)
{
    (void)state;
    V("{':n': {'N': '1'}, ':e': {'S': ''}, ':s': {'S': '1'}, ':big': {'N': '1000'}}");
    TRUE("contains(ns, :n)", "{'ns': {'NS': ['3', '1']}}");
    FALSE("contains(ns, :s)", "{'ns': {'NS': ['3', '1']}}");
    FALSE("contains(ss, :n)", "{'ss': {'SS': ['3', '1']}}");
    TRUE("contains(a, :e)", "{'a': {'S': 'x'}}");
    TRUE("contains(ns, :big)", "{'ns': {'NS': ['1000', '5']}}");
    FALSE("contains(l, :s)", "{'l': {'L': [{'N': '1'}]}}");
    FALSE("contains(m, :s)", "{'m': {'M': {'1': {'S': '1'}}}}");
    TRUE("contains(a, b)", "{'a': {'S': 'haystack'}, 'b': {'S': 'st'}}");
}

/* DynamoDB: size() of S, B, sets, lists and maps; N, BOOL and NULL have none (a failed condition). */
static void test_size(void **state)
{
    (void)state;
    V("{':5': {'N': '5'}, ':3': {'N': '3'}, ':8': {'N': '8'}, ':2': {'N': '2'}, ':1': {'N': '1'}, ':dog': {'S': 'dog'}}");
    const char *item = "{'a': {'S': 'hello'}, 'b': {'NS': ['2', '4', '7']}, 'c': {'L': [{'N': '2'}, {'S': 'dog'}, {'N': '7'}]},"
                       " 'd': {'B': 'aGkgdGhlcmU='}, 'e': {'M': {'x': {'N': '2'}, 'y': {'M': {'m': {'N': '3'}}}}},"
                       " 'f': {'N': '5'}, 'g': {'BOOL': true}, 'h': {'NULL': true}}";
    TRUE("size(a)=:5", item);
    TRUE("size(b)=:3", item);
    TRUE("size(c)=:3", item);
    TRUE("size(d)=:8", item);
    TRUE("size(e)=:2", item);
    FALSE("size(f)=:1", item);
    FALSE("size(g)=:1", item);
    FALSE("size(h)=:1", item);
    FALSE("size(a)=:dog", item);
    TRUE("size(a)=f", item);
    FALSE("size(q)=:1", item);
    TRUE("size(e.y)=:1", item);
}

static void test_size_comparators(void **state)
{
    (void)state;
    V("{':4': {'N': '4'}, ':7': {'N': '7'}, ':2': {'N': '2'}, ':0': {'N': '0'}, ':5': {'N': '5'}}");
    const char *item = "{'a': {'S': 'hello'}, 'f': {'N': '5'}, 'e': {'L': []}, 'bs': {'BS': ['AQ==']}, 'ss': {'SS': ['x', 'y']}}";
    TRUE("size(a)<>:4", item);
    TRUE("size(a)<:7", item);
    TRUE("size(a)<=:7", item);
    TRUE("size(a)>:2", item);
    TRUE("size(a)>=:2", item);
    TRUE("size(a) BETWEEN :4 AND :5", item);
    TRUE("size(a) IN (:4, :5)", item);
    TRUE("size(e) = :0", item);
    TRUE("size(bs) < size(ss)", item);
    TRUE("size(f) <> :5", item); /* no size: not equal */
    FALSE("size(f) > :0", item);
}

/* DynamoDB counts a string's size in UTF-16 code units: "é𝄞" is 3 (verified against DynamoDB by ExtendDB #67). */
static void test_size_utf16(void **state)
{
    (void)state;
    V("{':3': {'N': '3'}, ':6': {'N': '6'}, ':2': {'N': '2'}, ':4': {'N': '4'}}");
    TRUE("size(a) = :3", "{'a': {'S': '\xc3\xa9\xf0\x9d\x84\x9e'}}");
    FALSE("size(a) = :6", "{'a': {'S': '\xc3\xa9\xf0\x9d\x84\x9e'}}");
    TRUE("size(a) = :2", "{'a': {'S': '\xe6\x97\xa5\xe6\x9c\xac'}}"); /* 日本 */
    TRUE("size(a) = :4", "{'a': {'S': '\xf0\x9f\x98\x80\xf0\x9f\x98\x80'}}");
    TRUE("size(b) = :2", "{'b': {'B': 'AAE='}}"); /* binaries: bytes */
}

/* size() of a :value works; of a :value that has no size it is an error. */
static void test_size_of_value(void **state)
{
    (void)state;
    V("{':s': {'S': 'abc'}, ':3': {'N': '3'}, ':n': {'N': '1'}, ':t': {'BOOL': false}}");
    TRUE("size(:s) = :3", NULL);
    COND_ERR("size(:n) = :3", NULL,
             "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: size, operand "
             "type: N");
    COND_ERR("size(:t) = :3", NULL,
             "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: size, operand "
             "type: BOOL");
}

/* ======== conditions: paths and logic ======== */

/* DynamoDB: nested paths read map members and list elements; a path that reaches nothing is a failed condition. */
static void test_nested_paths(void **state)
{
    (void)state;
    V("{':two': {'N': '2'}}");
    const char *item = "{'b': {'M': {'x': {'N': '1'}, 'y': {'L': [{'N': '-1'}, {'N': '2'}, {'N': '0'}]}}},"
                       " 'c': {'L': [{'M': {'d': {'L': [{'S': 'q'}, {'M': {'e': {'N': '2'}}}]}}}]}}";
    TRUE("b.x < b.y[1]", item);
    FALSE("b.x < b.y[0]", item);
    FALSE("b.z < b.y[100]", item);
    TRUE("c[0].d[1].e = :two", item);
    FALSE("c[0].d[2].e = :two", item);
    FALSE("c.d = :two", item);   /* a name into a list */
    FALSE("b[0] = :two", item);  /* an index into a map */
    FALSE("b.x.y = :two", item); /* into a number */
}

/* DynamoDB: #names resolve to any attribute name, dots included ("a.b" is a top-level name, not a path). */
static void test_names(void **state)
{
    (void)state;
    NAMES("{'#name1': 'and', '#name2': 'or', '#dot': 'a.b'}");
    V("{':two': {'N': '2'}}");
    TRUE("#name1.#name2 = :two", "{'and': {'M': {'or': {'N': '2'}}}}");
    TRUE("#dot = :two", "{'a.b': {'N': '2'}}");
    FALSE("#dot = :two", "{'a': {'M': {'b': {'N': '2'}}}}");
    TRUE("attribute_exists(#name1)", "{'and': {'N': '1'}}");
}

static void test_and_or_not(void **state)
{
    (void)state;
    const char *item = "{'a': {'N': '1'}, 'b': {'N': '2'}, 'c': {'N': '3'}}";
    TRUE("a < b AND b < c", item);
    TRUE("a < b aNd b < c", item);
    FALSE("a < b AND c < b", item);
    TRUE("a < b OR b < c", item);
    TRUE("b < a OR b < c", item);
    FALSE("b < a OR c < b", item);
    TRUE("NOT b < a", item);
    FALSE("NOT a < b", item);
    TRUE("NOT NOT NOT NOT a < b", item);
    TRUE("(a < b OR b < a) AND (b < c AND (a < b OR b < c))", item);
}

/* DynamoDB: AND binds tighter than OR, NOT tighter than AND, BETWEEN's AND is its own. */
static void test_precedence(void **state)
{
    (void)state;
    const char *item = "{'a': {'N': '1'}, 'b': {'N': '2'}, 'c': {'N': '3'}}";
    TRUE("a < b OR c < b AND b < c", item);
    FALSE("NOT a < b AND c < b", item);
    TRUE("b BETWEEN a AND c AND a < b", item);
    FALSE("(a < b OR c < b) AND c < b", item);
}

/* Short-circuit evaluation may skip a bad BETWEEN: store_eval_check finds it whatever the item. */
static void test_check_before_items(void **state)
{
    store_expr_t e;
    json_t *item = J("{'a': {'N': '1'}}");
    (void)state;
    V("{':n5': {'N': '5'}, ':n4': {'N': '4'}}");
    e = parse(C, "attribute_exists(a) OR b BETWEEN :n5 AND :n4");
    assert_int_equal(store_eval_condition(&e, item, values, err, sizeof(err)), 1);
    assert_int_equal(store_eval_condition(&e, NULL, values, err, sizeof(err)), STORE_EVAL_EINVALID);
    assert_int_equal(store_eval_check(&e, values, err, sizeof(err)), STORE_EVAL_EINVALID);
    assert_string_equal(err, "Invalid ConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal "
                             "to lower bound; lower bound operand: AttributeValue: {N:5}, upper bound operand: AttributeValue: "
                             "{N:4}");
    json_decref(item);
}

/* store_eval_check reports the first problem in the order written. */
static void test_check_order(void **state)
{
    store_expr_t e;
    (void)state;
    V("{':l': {'L': []}, ':t': {'S': 'X'}, ':n': {'N': '1'}}");
    e = parse(C, "attribute_type(a, :t) AND b < :l");
    assert_int_equal(store_eval_check(&e, values, err, sizeof(err)), STORE_EVAL_EINVALID);
    assert_string_equal(err, "Invalid ConditionExpression: Invalid attribute type name found; type: X, valid types: "
                             "{B,NULL,SS,BOOL,L,BS,N,NS,S,M}");
    e = parse(C, "b < :l AND attribute_type(a, :t)");
    assert_int_equal(store_eval_check(&e, values, err, sizeof(err)), STORE_EVAL_EINVALID);
    assert_string_equal(err, "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or "
                             "function: <, operand type: L");
    e = parse(C, "a = :l AND contains(a, :n)");
    assert_int_equal(store_eval_check(&e, values, err, sizeof(err)), 0);
}

/* A KeyConditionExpression evaluates like a condition. */
static void test_key_condition(void **state)
{
    (void)state;
    V("{':p': {'S': 'user#1'}, ':lo': {'N': '10'}, ':hi': {'N': '20'}, ':pre': {'S': 'ord'}}");
    cond_is(K, "pk = :p AND sk BETWEEN :lo AND :hi", "{'pk': {'S': 'user#1'}, 'sk': {'N': '15'}}", 1, __LINE__);
    cond_is(K, "pk = :p AND sk BETWEEN :lo AND :hi", "{'pk': {'S': 'user#1'}, 'sk': {'N': '25'}}", 0, __LINE__);
    cond_is(K, "pk = :p AND begins_with(sk, :pre)", "{'pk': {'S': 'user#1'}, 'sk': {'S': 'order#9'}}", 1, __LINE__);
    cond_is(F, "pk <> :p", "{'pk': {'S': 'user#2'}}", 1, __LINE__);
}

/* With the parser's own type checks on, evaluation gives the same answers. */
static void test_typed_parse(void **state)
{
    (void)state;
    typed = 1;
    V("{':s': {'S': 'he'}, ':t': {'S': 'S'}, ':n': {'N': '1'}}");
    TRUE("begins_with(a, :s) AND attribute_type(a, :t) AND size(a) > :n", "{'a': {'S': 'hello'}}");
    FALSE("begins_with(a, :s)", "{'a': {'S': 'oh'}}");
}

/* ======== projections ======== */

static void test_project_top_level(void **state)
{
    (void)state;
    const char *item = "{'p': {'S': 'x'}, 'a': {'N': '1'}, 'b': {'L': [{'N': '2'}]}, 'c': {'M': {'d': {'N': '3'}}}}";
    PROJECT("a", item, "{'a': {'N': '1'}}");
    PROJECT("a, b, c", item, "{'a': {'N': '1'}, 'b': {'L': [{'N': '2'}]}, 'c': {'M': {'d': {'N': '3'}}}}");
    PROJECT("q", item, "{}");
    PROJECT("a, q", item, "{'a': {'N': '1'}}");
    PROJECT("a", NULL, "{}");
}

/* DynamoDB: a nested member comes back inside its maps, holding only what was projected. */
static void test_project_nested_maps(void **state)
{
    (void)state;
    const char *item = "{'a': {'M': {'b': {'N': '1'}, 'c': {'M': {'d': {'N': '2'}, 'e': {'N': '3'}}}, 'f': {'N': '4'}}}}";
    PROJECT("a.b", item, "{'a': {'M': {'b': {'N': '1'}}}}");
    PROJECT("a.b, a.c.e", item, "{'a': {'M': {'b': {'N': '1'}, 'c': {'M': {'e': {'N': '3'}}}}}}");
    PROJECT("a.q", item, "{}");
    PROJECT("a.b, a.q, a.c.q", item, "{'a': {'M': {'b': {'N': '1'}}}}");
    PROJECT("a.b.c", item, "{}");
}

/* DynamoDB: list elements are picked, in index order, into a list of just them. */
static void test_project_list_elements(void **state)
{
    (void)state;
    const char *item = "{'a': {'L': [{'S': 'zero'}, {'S': 'one'}, {'S': 'two'}, {'S': 'three'}]}}";
    PROJECT("a[1], a[3]", item, "{'a': {'L': [{'S': 'one'}, {'S': 'three'}]}}");
    PROJECT("a[3], a[1]", item, "{'a': {'L': [{'S': 'one'}, {'S': 'three'}]}}");
    PROJECT("a[2]", item, "{'a': {'L': [{'S': 'two'}]}}");
    PROJECT("a[1], a[7]", item, "{'a': {'L': [{'S': 'one'}]}}");
    PROJECT("a[7]", item, "{}");
    PROJECT("a.b", item, "{}");
}

static void test_project_mixed(void **state)
{
    (void)state;
    const char *item = "{'a': {'L': [{'M': {'b': {'N': '1'}, 'c': {'N': '2'}}}, {'L': [{'N': '3'}, {'N': '4'}]},"
                       " {'M': {'b': {'N': '5'}}}]}, 'x': {'S': 'y'}}";
    PROJECT("a[0].b, a[0].c", item, "{'a': {'L': [{'M': {'b': {'N': '1'}, 'c': {'N': '2'}}}]}}");
    PROJECT("a[2].b, a[0].c", item, "{'a': {'L': [{'M': {'c': {'N': '2'}}}, {'M': {'b': {'N': '5'}}}]}}");
    PROJECT("a[1][1], a[1][0], x", item, "{'a': {'L': [{'L': [{'N': '3'}, {'N': '4'}]}]}, 'x': {'S': 'y'}}");
    PROJECT("a[1][1]", item, "{'a': {'L': [{'L': [{'N': '4'}]}]}}");
    PROJECT("a[0].b, a[9].b", item, "{'a': {'L': [{'M': {'b': {'N': '1'}}}]}}");
}

static void test_project_names(void **state)
{
    (void)state;
    NAMES("{'#dot': 'a.b', '#r': 'name', '#i': '[1]'}");
    PROJECT("#dot, #r.#i", "{'a.b': {'N': '1'}, 'a': {'M': {'b': {'N': '2'}}}, 'name': {'M': {'[1]': {'N': '3'}}}}",
            "{'a.b': {'N': '1'}, 'name': {'M': {'[1]': {'N': '3'}}}}");
}

/* The projection shares the item's values (new references) and leaves the item alone. */
static void test_project_shares_values(void **state)
{
    store_expr_t e;
    json_t *item = J("{'a': {'M': {'b': {'L': [{'N': '1'}]}}}, 'c': {'N': '2'}}"), *out;
    (void)state;
    e = parse(STORE_EXPR_PROJECTION, "a.b, c");
    out = store_eval_project(&e, item);
    assert_non_null(out);
    assert_ptr_equal(json_object_get(json_object_get(json_object_get(out, "a"), "M"), "b"),
                     json_object_get(json_object_get(json_object_get(item, "a"), "M"), "b"));
    assert_ptr_equal(json_object_get(out, "c"), json_object_get(item, "c"));
    json_decref(out);
    assert_json(item, "{'a': {'M': {'b': {'L': [{'N': '1'}]}}}, 'c': {'N': '2'}}", "item unchanged");
    json_decref(item);
}

/* ======== updates: SET ======== */

static void test_set_basic(void **state)
{
    (void)state;
    V("{':val1': {'N': '4'}, ':hey': {'S': 'hey'}}");
    UPDATE("SET b = :val1", "{'p': {'S': 'k'}}", "{'p': {'S': 'k'}, 'b': {'N': '4'}}");
    UPDATE("SET x = :val1, y = :val1", "{}", "{'x': {'N': '4'}, 'y': {'N': '4'}}");
    UPDATE("SET a = :hey", "{'a': {'S': 'hi'}, 'b': {'S': 'hello'}}", "{'a': {'S': 'hey'}, 'b': {'S': 'hello'}}");
    UPDATE("set a = :hey", "{'a': {'N': '1'}}", "{'a': {'S': 'hey'}}");
}

/* DynamoDB: SET copies an attribute; copying a missing one is an error, also on a missing item. */
static void test_set_copy(void **state)
{
    (void)state;
    NAMES("{'#one': 'c', '#two': 'a'}");
    UPDATE("SET b = a", "{'a': {'S': 'hello'}}", "{'a': {'S': 'hello'}, 'b': {'S': 'hello'}}");
    UPDATE("SET a = a", "{'a': {'S': 'hello'}}", "{'a': {'S': 'hello'}}");
    UPDATE("SET #one = #two", "{'a': {'S': 'hello'}}", "{'a': {'S': 'hello'}, 'c': {'S': 'hello'}}");
    UPDATE("SET z = a.c.x", "{'a': {'M': {'b': {'N': '3'}, 'c': {'M': {'x': {'N': '7'}}}}}}",
           "{'a': {'M': {'b': {'N': '3'}, 'c': {'M': {'x': {'N': '7'}}}}}, 'z': {'N': '7'}}");
    UPDATE_ERR("SET c = z", "{'a': {'S': 'hello'}}", E_NOATTR);
    UPDATE_ERR("SET z = z", "{'a': {'S': 'hello'}}", E_NOATTR);
    update_err("SET c = z", "{'p': {'S': 'k'}}", 0, E_NOATTR, __LINE__);
}

/* DynamoDB: every operand is read from the item as it was before the update. */
static void test_set_reads_old_values(void **state)
{
    (void)state;
    V("{':val1': {'N': '4'}, ':v': {'S': 'new'}}");
    UPDATE_ERR("SET x = :val1, y = x", "{'a': {'S': 'hello'}}", E_NOATTR);
    UPDATE("SET a = :v, b = a", "{'a': {'S': 'old'}}", "{'a': {'S': 'new'}, 'b': {'S': 'old'}}");
    UPDATE("REMOVE a SET b = a", "{'a': {'S': 'hello'}}", "{'b': {'S': 'hello'}}");
    UPDATE("SET c = b REMOVE b", "{'b': {'S': 'hello'}}", "{'c': {'S': 'hello'}}");
    UPDATE("SET a = b, b = a", "{'a': {'N': '1'}, 'b': {'N': '2'}}", "{'a': {'N': '2'}, 'b': {'N': '1'}}");
}

/* DynamoDB: + and - on numbers, exactly (decimal arithmetic, no floating point). */
static void test_set_arithmetic(void **state)
{
    (void)state;
    V("{':val1': {'N': '4'}, ':val2': {'N': '3'}, ':seven': {'N': '7'}, ':p1': {'N': '0.1'}, ':p2': {'N': '0.2'},"
      " ':m': {'N': '-10'}}");
    UPDATE("SET b = :val1 + :val2", "{}", "{'b': {'N': '7'}}");
    UPDATE("SET b = :val1 - :val2", "{}", "{'b': {'N': '1'}}");
    UPDATE("SET a = a + :val2", "{'a': {'N': '2'}}", "{'a': {'N': '5'}}");
    UPDATE("SET a = :val1 + a", "{'a': {'N': '5'}}", "{'a': {'N': '9'}}");
    UPDATE("SET nn = :seven - n", "{'n': {'N': '2'}}", "{'n': {'N': '2'}, 'nn': {'N': '5'}}");
    UPDATE("SET a = b + a", "{'a': {'N': '9'}, 'b': {'N': '10'}}", "{'a': {'N': '19'}, 'b': {'N': '10'}}");
    UPDATE("SET c = :p1 + :p2", "{}", "{'c': {'N': '0.3'}}");
    UPDATE("SET c = c + :m", "{'c': {'N': '3'}}", "{'c': {'N': '-7'}}");
    UPDATE("SET c = c - c", "{'c': {'N': '3.25'}}", "{'c': {'N': '0'}}");
}

/* DynamoDB: + and - on a missing attribute, or on one of another type, fail at run time. */
static void test_set_arithmetic_errors(void **state)
{
    (void)state;
    V("{':1': {'N': '1'}}");
    UPDATE_ERR("SET a = a + :1", "{'b': {'N': '1'}}", E_NOATTR);
    UPDATE_ERR("SET a = :1 - b", "{'a': {'N': '1'}}", E_NOATTR);
    UPDATE_ERR("SET a = a + :1", "{'a': {'S': '1'}}", E_OPTYPE);
    UPDATE_ERR("SET a = :1 - a", "{'a': {'L': []}}", E_OPTYPE);
    UPDATE_ERR("SET a = a + a", "{'a': {'NS': ['1']}}", E_OPTYPE);
}

/* DynamoDB: a :value that is not a number is a ValidationException naming the operator. */
static void test_set_arithmetic_bad_value(void **state)
{
    (void)state;
    V("{':dog': {'S': 'dog'}, ':3': {'N': '3'}, ':l': {'L': [{'S': 'a'}]}}");
    UPDATE_ERR("SET b = :dog + :3", "{}",
               "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: +, operand "
               "type: S");
    UPDATE_ERR("SET b = a - :l", "{'a': {'N': '1'}}",
               "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: -, operand "
               "type: L");
}

/* Results beyond DynamoDB's numbers: the overflow message, also for a result needing more than 38 digits. */
static void test_set_arithmetic_limits(void **state)
{
    (void)state;
    V("{':big': {'N': '9.9999999999999999999999999999999999999E+125'}, ':e50': {'N': '1E+50'}, ':1': {'N': '1'},"
      " ':tiny': {'N': '1E-130'}, ':tiny2': {'N': '1.1E-130'}}");
    UPDATE_ERR("SET a = :big + :big", "{}", E_OVERFLOW);
    UPDATE_ERR("SET a = :e50 - :1", "{}", E_OVERFLOW);
    UPDATE_ERR("SET a = :tiny2 - :tiny", "{}", E_UNDERFLOW);
    UPDATE("SET a = :e50 + :e50", "{}", "{'a': {'N': '200000000000000000000000000000000000000000000000000'}}");
}

/* DynamoDB: if_not_exists(path, v) is path's value when it exists, else v. */
static void test_if_not_exists(void **state)
{
    (void)state;
    V("{':val1': {'N': '2'}, ':val2': {'N': '3'}, ':e': {'L': []}, ':l': {'L': [{'S': 'x'}]}}");
    UPDATE("SET a = if_not_exists(a, :val1)", "{}", "{'a': {'N': '2'}}");
    UPDATE("SET a = if_not_exists(a, :val1)", "{'a': {'N': '7'}}", "{'a': {'N': '7'}}");
    UPDATE("SET b = if_not_exists(c, :val1)", "{'a': {'N': '7'}}", "{'a': {'N': '7'}, 'b': {'N': '2'}}");
    UPDATE("SET b = if_not_exists(a, :val1)", "{'a': {'N': '7'}}", "{'a': {'N': '7'}, 'b': {'N': '7'}}");
    UPDATE("SET b = if_not_exists(b, :val1)+:val2", "{}", "{'b': {'N': '5'}}");
    UPDATE("SET b = if_not_exists(b, :val1)+:val2", "{'b': {'N': '5'}}", "{'b': {'N': '8'}}");
    UPDATE("SET l = list_append(if_not_exists(l, :e), :l)", "{}", "{'l': {'L': [{'S': 'x'}]}}");
    UPDATE("SET m.c = if_not_exists(m.c, :val1)", "{'m': {'M': {}}}", "{'m': {'M': {'c': {'N': '2'}}}}");
}

/* DynamoDB: list_append concatenates two lists, either order, paths or values. */
static void test_list_append(void **state)
{
    (void)state;
    V("{':val1': {'L': [{'N': '4'}, {'S': 'hello'}]}, ':val2': {'L': [{'S': 'hi'}, {'N': '7'}]}, ':dog': {'L': [{'S': 'dog'}]}}");
    UPDATE("SET a = list_append(:val1, :val2)", "{}", "{'a': {'L': [{'N': '4'}, {'S': 'hello'}, {'S': 'hi'}, {'N': '7'}]}}");
    UPDATE("SET a = list_append(a, :dog)", "{'a': {'L': [{'S': 'hi'}]}}", "{'a': {'L': [{'S': 'hi'}, {'S': 'dog'}]}}");
    UPDATE("SET a = list_append(:dog, a)", "{'a': {'L': [{'S': 'hi'}]}}", "{'a': {'L': [{'S': 'dog'}, {'S': 'hi'}]}}");
    UPDATE("SET c = list_append(a, b)", "{'a': {'L': [{'N': '1'}]}, 'b': {'L': []}}",
           "{'a': {'L': [{'N': '1'}]}, 'b': {'L': []}, 'c': {'L': [{'N': '1'}]}}");
    UPDATE("SET a = list_append(a, a)", "{'a': {'L': [{'N': '1'}]}}", "{'a': {'L': [{'N': '1'}, {'N': '1'}]}}");
}

/* DynamoDB: list_append on a missing attribute or a non-list fails; a non-list :value is a ValidationException. */
static void test_list_append_errors(void **state)
{
    (void)state;
    V("{':val1': {'L': [{'S': 'hi'}]}, ':hi': {'S': 'hi'}}");
    UPDATE_ERR("SET a = list_append(b, :val1)", "{'a': {'N': '2'}}", E_NOATTR);
    UPDATE_ERR("SET a = list_append(:val1, b)", "{}", E_NOATTR);
    UPDATE_ERR("SET a = list_append(b, :val1)", "{'b': {'N': '7'}}", E_OPTYPE);
    UPDATE_ERR("SET a = list_append(:val1, b)", "{'b': {'SS': ['x']}}", E_OPTYPE);
    UPDATE_ERR("SET a = list_append(b, :val1)", "{'b': {'M': {}}}", E_OPTYPE);
    UPDATE_ERR("SET a = list_append(:val1, :hi)", "{}",
               "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: list_append, "
               "operand type: S");
}

/* DynamoDB: SET a.b adds or replaces a member of an existing map, with any type. */
static void test_set_nested_map(void **state)
{
    (void)state;
    V("{':val1': {'N': '7'}, ':val3': {'N': '3'}, ':dog': {'S': 'dog'}}");
    UPDATE("SET a.c = :val1", "{'a': {'M': {'b': {'N': '3'}, 'c': {'N': '4'}}}, 'd': {'N': '5'}}",
           "{'a': {'M': {'b': {'N': '3'}, 'c': {'N': '7'}}}, 'd': {'N': '5'}}");
    UPDATE("SET a.d = :val3", "{'a': {'M': {'b': {'N': '3'}}}}", "{'a': {'M': {'b': {'N': '3'}, 'd': {'N': '3'}}}}");
    UPDATE("SET a.c = :val1", "{'a': {'M': {'c': {'M': {'one': {'N': '1'}}}}}}", "{'a': {'M': {'c': {'N': '7'}}}}");
    UPDATE("SET a.b = :val1, a.c.d = :dog, b.x = :val3 REMOVE a.x, b.y",
           "{'a': {'M': {'x': {'N': '3'}, 'y': {'N': '4'}, 'c': {'M': {'y': {'N': '3'}}}}}, 'b': {'M': {'x': {'N': '1'}, 'y': "
           "{'N': '2'}}}}",
           "{'a': {'M': {'y': {'N': '4'}, 'b': {'N': '7'}, 'c': {'M': {'y': {'N': '3'}, 'd': {'S': 'dog'}}}}}, 'b': {'M': {'x': "
           "{'N': '3'}}}}");
}

/* DynamoDB: a nested target needs its parent to exist with the right kind. */
static void test_set_bad_path(void **state)
{
    (void)state;
    V("{':val1': {'N': '7'}}");
    const char *item = "{'a': {'S': 'hello'}, 'b': {'L': [{'S': 'hi'}]}, 'm': {'M': {}}}";
    UPDATE_ERR("SET a.c = :val1", item, E_PATH);
    UPDATE_ERR("SET b.c = :val1", item, E_PATH);
    UPDATE_ERR("SET c.c = :val1", item, E_PATH);
    UPDATE_ERR("SET a[0] = :val1", item, E_PATH);
    UPDATE_ERR("SET c[0] = :val1", item, E_PATH);
    UPDATE_ERR("SET m[0] = :val1", item, E_PATH);
    UPDATE_ERR("SET m.x.y = :val1", item, E_PATH);
    UPDATE_ERR("SET b[3].x = :val1", item, E_PATH);
    update_err("SET c.c = :val1", "{'p': {'S': 'k'}}", 0, E_PATH, __LINE__);
    update_err("SET b[0] = :val1", "{'p': {'S': 'k'}}", 0, E_PATH, __LINE__);
}

/* DynamoDB: SET a[i] replaces an element; beyond the end it appends, several in index order. */
static void test_set_list_elements(void **state)
{
    (void)state;
    V("{':hello': {'S': 'hello'}, ':val1': {'S': 'a1'}, ':val2': {'S': 'a2'}, ':val3': {'S': 'a3'}, ':val4': {'S': 'a4'},"
      " ':9': {'N': '9'}}");
    NAMES("{'#name': 'x'}");
    UPDATE("SET a[1] = :hello", "{'a': {'L': [{'S': 'one'}, {'S': 'two'}, {'S': 'three'}]}}",
           "{'a': {'L': [{'S': 'one'}, {'S': 'hello'}, {'S': 'three'}]}}");
    UPDATE("SET a[7] = :hello", "{'a': {'L': [{'S': 'one'}, {'S': 'two'}, {'S': 'three'}]}}",
           "{'a': {'L': [{'S': 'one'}, {'S': 'two'}, {'S': 'three'}, {'S': 'hello'}]}}");
    UPDATE("SET a[84] = :val1, a[37] = :val2, a[17] = :val3, a[50] = :val4", "{'a': {'L': [{'S': 'one'}]}}",
           "{'a': {'L': [{'S': 'one'}, {'S': 'a3'}, {'S': 'a2'}, {'S': 'a4'}, {'S': 'a1'}]}}");
    UPDATE("SET a[0] = :val1", "{'a': {'L': []}}", "{'a': {'L': [{'S': 'a1'}]}}");
    UPDATE("SET a.c[1].#name.y[1] = :9",
           "{'a': {'M': {'b': {'N': '3'}, 'c': {'L': [{'S': 'hi'}, {'M': {'x': {'M': {'y': {'L': [{'N': '3'}, {'N': '5'}, {'N': "
           "'7'}]}}}}}]}}}}",
           "{'a': {'M': {'b': {'N': '3'}, 'c': {'L': [{'S': 'hi'}, {'M': {'x': {'M': {'y': {'L': [{'N': '3'}, {'N': '9'}, {'N': "
           "'7'}]}}}}}]}}}}");
    UPDATE(
        "SET a.z = a.c[1].#name.y[1]",
        "{'a': {'M': {'c': {'L': [{'S': 'hi'}, {'M': {'x': {'M': {'y': {'L': [{'N': '3'}, {'N': '9'}]}}}}}]}}}}",
        "{'a': {'M': {'z': {'N': '9'}, 'c': {'L': [{'S': 'hi'}, {'M': {'x': {'M': {'y': {'L': [{'N': '3'}, {'N': '9'}]}}}}}]}}}}");
}

/* DynamoDB: empty lists, maps, strings and binaries may be set. */
static void test_set_empty_values(void **state)
{
    (void)state;
    V("{':v1': {'L': []}, ':v2': {'M': {}}, ':v3': {'S': ''}, ':v4': {'B': ''}}");
    UPDATE("SET d = :v1, e = :v2, f = :v3, g = :v4", "{}", "{'d': {'L': []}, 'e': {'M': {}}, 'f': {'S': ''}, 'g': {'B': ''}}");
}

/* ======== updates: REMOVE ======== */

static void test_remove_top_level(void **state)
{
    (void)state;
    UPDATE("REMOVE a", "{'p': {'S': 'k'}, 'a': {'S': 'hello'}, 'b': {'S': 'hi'}}", "{'p': {'S': 'k'}, 'b': {'S': 'hi'}}");
    UPDATE("REMOVE c", "{'a': {'N': '1'}}", "{'a': {'N': '1'}}");
    UPDATE("REMOVE a, b", "{'a': {'N': '1'}, 'b': {'N': '2'}, 'c': {'N': '3'}}", "{'c': {'N': '3'}}");
}

/* DynamoDB: REMOVE of a missing member or element is a no-op; a map or list emptied stays (empty). */
static void test_remove_nested(void **state)
{
    (void)state;
    const char *item = "{'a': {'M': {'x': {'N': '3'}}}, 'b': {'L': [{'S': 'hi'}]}}";
    UPDATE("REMOVE a.y", item, item);
    UPDATE("REMOVE b[7]", item, item);
    UPDATE("REMOVE a.x", "{'a': {'M': {'x': {'N': '1'}}}}", "{'a': {'M': {}}}");
    UPDATE("REMOVE b[0]", "{'b': {'L': [{'N': '1'}]}}", "{'b': {'L': []}}");
    UPDATE(
        "REMOVE a.c[1].x.y[1], a.c[1].q",
        "{'a': {'M': {'b': {'N': '3'}, 'c': {'L': [{'S': 'hi'}, {'M': {'x': {'M': {'y': {'L': [{'N': '3'}, {'N': '5'}, {'N': "
        "'7'}]}}}, 'q': {'N': '2'}}}]}}}}",
        "{'a': {'M': {'b': {'N': '3'}, 'c': {'L': [{'S': 'hi'}, {'M': {'x': {'M': {'y': {'L': [{'N': '3'}, {'N': '7'}]}}}}}]}}}}");
}

/* DynamoDB: indexes name the elements as they were before the update, whatever the order of the actions. */
static void test_remove_list_indexes(void **state)
{
    (void)state;
    V("{':val': {'N': '17'}}");
    const char *item = "{'a': {'L': [{'N': '2'}, {'N': '3'}, {'N': '4'}, {'N': '5'}, {'N': '6'}, {'N': '7'}]}}";
    UPDATE("REMOVE a[1] SET a[3] = :val", item, "{'a': {'L': [{'N': '2'}, {'N': '4'}, {'N': '17'}, {'N': '6'}, {'N': '7'}]}}");
    UPDATE("SET a[3] = :val REMOVE a[1]", item, "{'a': {'L': [{'N': '2'}, {'N': '4'}, {'N': '17'}, {'N': '6'}, {'N': '7'}]}}");
    UPDATE("REMOVE a[1], a[3]", item, "{'a': {'L': [{'N': '2'}, {'N': '4'}, {'N': '6'}, {'N': '7'}]}}");
    UPDATE("REMOVE a[5], a[0], a[2]", item, "{'a': {'L': [{'N': '3'}, {'N': '5'}, {'N': '6'}]}}");
    UPDATE("REMOVE a[0], a[1], a[2], a[3], a[4], a[5], a[6]", item, "{'a': {'L': []}}");
    UPDATE("REMOVE a[0] SET a[9] = :val", item,
           "{'a': {'L': [{'N': '3'}, {'N': '4'}, {'N': '5'}, {'N': '6'}, {'N': '7'}, {'N': '17'}]}}");
}

/* DynamoDB: REMOVE a.c when a is missing or not a map is an error, except on an item that does not exist. */
static void test_remove_bad_path(void **state)
{
    (void)state;
    const char *item = "{'p': {'S': 'k'}, 'a': {'S': 'hello'}, 'b': {'L': [{'S': 'hi'}]}}";
    UPDATE_ERR("REMOVE a.c", item, E_PATH);
    UPDATE_ERR("REMOVE b.c", item, E_PATH);
    UPDATE_ERR("REMOVE c.c", item, E_PATH);
    UPDATE_ERR("REMOVE a[0]", item, E_PATH);
    UPDATE_ERR("REMOVE c[0]", item, E_PATH);
    update_is("REMOVE x.y", "{'p': {'S': 'k'}}", 0, "{'p': {'S': 'k'}}", "{}", "{}", __LINE__);
    update_is("REMOVE x[0], z", "{'p': {'S': 'k'}}", 0, "{'p': {'S': 'k'}}", "{}", "{}", __LINE__);
}

/* ======== updates: ADD ======== */

/* DynamoDB: ADD adds to a number, or creates it as if added to 0. */
static void test_add_number(void **state)
{
    (void)state;
    V("{':val1': {'N': '4'}, ':m': {'N': '-0.5'}, ':7': {'N': '7'}}");
    UPDATE("ADD a :val1", "{'a': {'N': '3'}, 'b': {'S': 'hi'}}", "{'a': {'N': '7'}, 'b': {'S': 'hi'}}");
    UPDATE("ADD b :7", "{'a': {'S': 'hello'}}", "{'a': {'S': 'hello'}, 'b': {'N': '7'}}");
    UPDATE("ADD a :m", "{'a': {'N': '3'}}", "{'a': {'N': '2.5'}}");
    UPDATE("ADD a :m, b :val1", "{'a': {'N': '0.5'}}", "{'a': {'N': '0'}, 'b': {'N': '4'}}");
    update_is("ADD b :7", "{'p': {'S': 'k'}}", 0, "{'p': {'S': 'k'}, 'b': {'N': '7'}}", "{}", "{'b': {'N': '7'}}", __LINE__);
}

/* DynamoDB: ADD unions sets (without duplicates), or creates the set. */
static void test_add_set(void **state)
{
    (void)state;
    V("{':pig': {'SS': ['pig']}, ':more': {'SS': ['coati', 'beaver', 'badger']}, ':ns': {'NS': ['2', '10']},"
      " ':bs': {'BS': ['AQ==', 'Aw==']}, ':dog': {'SS': ['dog']}}");
    UPDATE("ADD a :pig", "{'a': {'SS': ['dog', 'cat', 'mouse']}}", "{'a': {'SS': ['dog', 'cat', 'mouse', 'pig']}}");
    UPDATE("ADD a :more", "{'a': {'SS': ['beaver', 'lynx', 'coati']}}", "{'a': {'SS': ['beaver', 'lynx', 'coati', 'badger']}}");
    UPDATE("ADD a :ns", "{'a': {'NS': ['1', '2']}}", "{'a': {'NS': ['1', '2', '10']}}");
    UPDATE("ADD a :bs", "{'a': {'BS': ['AQ==', 'Ag==']}}", "{'a': {'BS': ['AQ==', 'Ag==', 'Aw==']}}");
    UPDATE("ADD b :dog", "{'a': {'S': 'hello'}}", "{'a': {'S': 'hello'}, 'b': {'SS': ['dog']}}");
}

/* DynamoDB: ADD to an attribute of another type fails; a list, string or map :value is a ValidationException. */
static void test_add_errors(void **state)
{
    (void)state;
    V("{':1': {'N': '1'}, ':ss': {'SS': ['x']}, ':ns': {'NS': ['3', '4']}, ':l': {'L': [{'N': '3'}]}, ':hello': {'S': 'hello'},"
      " ':m': {'M': {}}, ':t': {'BOOL': true}}");
    UPDATE_ERR("ADD b :1", "{'b': {'S': 'hi'}}", E_OPTYPE);
    UPDATE_ERR("ADD b :1", "{'b': {'NS': ['1']}}", E_OPTYPE);
    UPDATE_ERR("ADD b :ss", "{'b': {'NS': ['1']}}", E_OPTYPE);
    UPDATE_ERR("ADD b :ns", "{'b': {'L': [{'N': '1'}]}}", E_OPTYPE);
    UPDATE_ERR("ADD b :ss", "{'b': {'S': 'x'}}", E_OPTYPE);
    UPDATE_ERR("ADD a :hello", "{}",
               "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: STRING");
    UPDATE_ERR("ADD a :l", "{'a': {'L': []}}",
               "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: LIST");
    UPDATE_ERR("ADD a :m", "{}",
               "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: MAP");
    UPDATE_ERR("ADD a :t", "{}",
               "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: BOOLEAN");
}

/* ADD on nested targets, numbers at the limits. */
static void test_add_nested_and_limits(void **state)
{
    (void)state;
    V("{':1': {'N': '1'}, ':p1': {'N': '0.1'}, ':big': {'N': '9.9999999999999999999999999999999999999E+125'},"
      " ':s': {'SS': ['x']}}");
    UPDATE("ADD m.hits :1", "{'m': {'M': {'hits': {'N': '41'}}}}", "{'m': {'M': {'hits': {'N': '42'}}}}");
    UPDATE("ADD m.hits :1", "{'m': {'M': {}}}", "{'m': {'M': {'hits': {'N': '1'}}}}");
    UPDATE("ADD l[0] :1, l[5] :1", "{'l': {'L': [{'N': '1'}]}}", "{'l': {'L': [{'N': '2'}, {'N': '1'}]}}");
    UPDATE("ADD m.tags :s", "{'m': {'M': {}}}", "{'m': {'M': {'tags': {'SS': ['x']}}}}");
    UPDATE_ERR("ADD q.hits :1", "{'m': {'M': {}}}", E_PATH);
    UPDATE_ERR("ADD a :big", "{'a': {'N': '9.9999999999999999999999999999999999999E+125'}}", E_OVERFLOW);
    UPDATE_ERR("ADD a :p1", "{'a': {'N': '12345678901234567890123456789012345678'}}", E_OVERFLOW); /* 39 digits */
    UPDATE("ADD a :1", "{'a': {'N': '99999999999999999999999999999999999999'}}",
           "{'a': {'N': '100000000000000000000000000000000000000'}}");
}

/* ======== updates: DELETE ======== */

/* DynamoDB: DELETE takes elements out of a set; absent elements are ignored; an emptied set goes. */
static void test_delete_set(void **state)
{
    (void)state;
    V("{':cm': {'SS': ['cat', 'mouse']}, ':pig': {'SS': ['pig']}, ':dog': {'SS': ['dog']}}");
    UPDATE("DELETE a :cm", "{'a': {'SS': ['dog', 'cat', 'mouse']}, 'b': {'S': 'hi'}}", "{'a': {'SS': ['dog']}, 'b': {'S': 'hi'}}");
    UPDATE("DELETE a :pig", "{'a': {'SS': ['dog']}}", "{'a': {'SS': ['dog']}}");
    UPDATE("DELETE a :dog", "{'a': {'SS': ['dog']}, 'b': {'S': 'hi'}}", "{'b': {'S': 'hi'}}");
    UPDATE("DELETE a :dog", "{'b': {'S': 'hi'}}", "{'b': {'S': 'hi'}}");
}

static void test_delete_number_and_binary_sets(void **state)
{
    (void)state;
    V("{':ns': {'NS': ['4', '5']}, ':bs': {'BS': ['Ag==']}, ':all': {'NS': ['2', '4', '6', '7']}}");
    UPDATE("DELETE a :ns", "{'a': {'NS': ['2', '4', '6', '7']}}", "{'a': {'NS': ['2', '6', '7']}}");
    UPDATE("DELETE a :bs", "{'a': {'BS': ['AQ==', 'Ag==']}}", "{'a': {'BS': ['AQ==']}}");
    UPDATE("DELETE a :all", "{'a': {'NS': ['7', '6', '4', '2']}}", "{}");
    UPDATE("DELETE m.s :ns", "{'m': {'M': {'s': {'NS': ['4', '9']}}}}", "{'m': {'M': {'s': {'NS': ['9']}}}}");
    UPDATE("DELETE m.s :ns", "{'m': {'M': {'s': {'NS': ['4']}}}}", "{'m': {'M': {}}}");
    UPDATE("DELETE l[0] :ns", "{'l': {'L': [{'NS': ['5']}, {'N': '1'}]}}", "{'l': {'L': [{'N': '1'}]}}");
}

/* DynamoDB: DELETE from another type fails; a :value that is not a set is a ValidationException. */
static void test_delete_errors(void **state)
{
    (void)state;
    V("{':ss': {'SS': ['x']}, ':hello': {'S': 'hello'}, ':n': {'N': '1'}}");
    UPDATE_ERR("DELETE a :ss", "{'a': {'NS': ['1']}}", E_OPTYPE);
    UPDATE_ERR("DELETE a :ss", "{'a': {'S': 'x'}}", E_OPTYPE);
    UPDATE_ERR("DELETE a :ss", "{'a': {'L': [{'S': 'x'}]}}", E_OPTYPE);
    UPDATE_ERR("DELETE a :hello", "{'a': {'SS': ['hello']}}",
               "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: DELETE, operand type: STRING");
    UPDATE_ERR("DELETE a :n", "{}",
               "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: DELETE, operand type: NUMBER");
    UPDATE_ERR("DELETE q.s :ss", "{'a': {'NS': ['1']}}", E_PATH);
}

/* ======== updates: all together, atomicity, values ======== */

static void test_all_clauses(void **state)
{
    (void)state;
    V("{':v': {'S': 'x'}, ':n': {'N': '2'}, ':s': {'SS': ['b']}}");
    UPDATE("SET a = :v REMOVE r ADD n :n, s :s DELETE d :s",
           "{'r': {'N': '1'}, 'n': {'N': '1'}, 's': {'SS': ['a']}, 'd': {'SS': ['a', 'b']}}",
           "{'a': {'S': 'x'}, 'n': {'N': '3'}, 's': {'SS': ['a', 'b']}, 'd': {'SS': ['a']}}");
    UPDATE("DELETE d :s ADD n :n REMOVE r SET a = :v", "{'r': {'N': '1'}, 'd': {'SS': ['b']}}",
           "{'n': {'N': '2'}, 'a': {'S': 'x'}}");
}

/* A failing action anywhere leaves the item exactly as it was. */
static void test_update_atomic(void **state)
{
    (void)state;
    V("{':v': {'S': 'x'}, ':n': {'N': '1'}, ':ss': {'SS': ['q']}}");
    const char *item = "{'a': {'S': 'old'}, 'b': {'S': 'not a number'}, 'l': {'L': [{'N': '1'}, {'N': '2'}]}, 's': {'SS': ['q']}}";
    UPDATE_ERR("SET a = :v, c = nope", item, E_NOATTR);
    UPDATE_ERR("SET a = :v REMOVE l[0] ADD b :n", item, E_OPTYPE);
    UPDATE_ERR("REMOVE l[0], a DELETE s :ss SET x.y = :v", item, E_PATH);
    UPDATE_ERR("ADD n :n SET l[5] = :v, z = l[7]", item, E_NOATTR);
}

/* The item never shares a json_t with the request's values or with another attribute. */
static void test_update_copies_values(void **state)
{
    store_expr_t e;
    json_t *item = J("{'a': {'M': {'x': {'N': '1'}}}}");
    (void)state;
    V("{':m': {'M': {'k': {'S': 'v'}}}}");
    e = parse(STORE_EXPR_UPDATE, "SET b = :m, c = a");
    assert_int_equal(store_eval_update(&e, item, 1, values, NULL, NULL, err, sizeof(err)), 0);
    assert_ptr_not_equal(json_object_get(item, "b"), values[0]);
    assert_ptr_not_equal(json_object_get(item, "c"), json_object_get(item, "a"));
    json_object_set_new(json_object_get(json_object_get(item, "c"), "M"), "y", json_pack("{s:s}", "N", "2"));
    assert_json(item,
                "{'a': {'M': {'x': {'N': '1'}}}, 'b': {'M': {'k': {'S': 'v'}}}, 'c': {'M': {'x': {'N': '1'}, 'y': {'N': '2'}}}}",
                "c is a copy");
    assert_json(values[0], "{'M': {'k': {'S': 'v'}}}", "values untouched");
    json_decref(item);
}

/* An item that did not exist: the update builds it from what the caller put in (its key). */
static void test_update_new_item(void **state)
{
    (void)state;
    V("{':v': {'N': '1'}, ':s': {'SS': ['x']}}");
    update_is("SET a = :v ADD n :v, s :s DELETE d :s REMOVE r", "{'pk': {'S': 'k'}}", 0,
              "{'pk': {'S': 'k'}, 'a': {'N': '1'}, 'n': {'N': '1'}, 's': {'SS': ['x']}}", "{}",
              "{'a': {'N': '1'}, 'n': {'N': '1'}, 's': {'SS': ['x']}}", __LINE__);
    update_is("SET a = :v", "{}", 0, "{'a': {'N': '1'}}", "{}", "{'a': {'N': '1'}}", __LINE__);
}

/* ======== updates: UPDATED_OLD and UPDATED_NEW ======== */

/* DynamoDB: top-level attributes touched, before and after; removed ones are not in UPDATED_NEW. */
static void test_returnvalues_top_level(void **state)
{
    (void)state;
    V("{':val': {'S': 'cat'}, ':val2': {'S': 'hello'}, ':1': {'N': '1'}}");
    UPDATE_RV("SET b = :val, c = :val2", "{'p': {'S': 'k'}, 'a': {'S': 'hi'}, 'b': {'S': 'dog'}}",
              "{'p': {'S': 'k'}, 'a': {'S': 'hi'}, 'b': {'S': 'cat'}, 'c': {'S': 'hello'}}", "{'b': {'S': 'dog'}}",
              "{'b': {'S': 'cat'}, 'c': {'S': 'hello'}}");
    UPDATE_RV("SET b = :val", "{'b': {'S': 'cat'}}", "{'b': {'S': 'cat'}}", "{'b': {'S': 'cat'}}", "{'b': {'S': 'cat'}}");
    UPDATE_RV("REMOVE b", "{'b': {'S': 'cat'}}", "{}", "{'b': {'S': 'cat'}}", "{}");
    UPDATE_RV("SET a = a + :1", "{'a': {'N': '1'}}", "{'a': {'N': '2'}}", "{'a': {'N': '1'}}", "{'a': {'N': '2'}}");
    UPDATE_RV("ADD n :1 REMOVE q", "{}", "{'n': {'N': '1'}}", "{}", "{'n': {'N': '1'}}");
}

/* DynamoDB: for nested targets, only the updated part, inside its maps and lists (Alternator's test, step by step). */
static void test_returnvalues_nested(void **state)
{
    (void)state;
    V("{':yo': {'S': 'yo'}, ':7': {'N': '7'}, ':8': {'N': '8'}, ':dog': {'S': 'dog'}}");
    UPDATE_RV("SET a.b = :yo",
              "{'a': {'M': {'b': {'S': 'hi'}, 'c': {'L': [{'N': '1'}, {'N': '2'}, {'N': '3'}]}}}, 'd': {'S': 'cat'}}",
              "{'a': {'M': {'b': {'S': 'yo'}, 'c': {'L': [{'N': '1'}, {'N': '2'}, {'N': '3'}]}}}, 'd': {'S': 'cat'}}",
              "{'a': {'M': {'b': {'S': 'hi'}}}}", "{'a': {'M': {'b': {'S': 'yo'}}}}");
    UPDATE_RV("SET a.c[1] = :7", "{'a': {'M': {'c': {'L': [{'N': '1'}, {'N': '2'}, {'N': '3'}]}}}}",
              "{'a': {'M': {'c': {'L': [{'N': '1'}, {'N': '7'}, {'N': '3'}]}}}}", "{'a': {'M': {'c': {'L': [{'N': '2'}]}}}}",
              "{'a': {'M': {'c': {'L': [{'N': '7'}]}}}}");
    UPDATE_RV("SET a.c[1] = :8, a.b = :dog", "{'a': {'M': {'b': {'S': 'yo'}, 'c': {'L': [{'N': '1'}, {'N': '7'}, {'N': '3'}]}}}}",
              "{'a': {'M': {'b': {'S': 'dog'}, 'c': {'L': [{'N': '1'}, {'N': '8'}, {'N': '3'}]}}}}",
              "{'a': {'M': {'b': {'S': 'yo'}, 'c': {'L': [{'N': '7'}]}}}}",
              "{'a': {'M': {'b': {'S': 'dog'}, 'c': {'L': [{'N': '8'}]}}}}");
    /* a.c[3] did not exist: not in UPDATED_OLD */
    UPDATE_RV("REMOVE a.c[1], a.c[3]", "{'a': {'M': {'c': {'L': [{'N': '1'}, {'N': '3'}, {'N': '3'}]}}}}",
              "{'a': {'M': {'c': {'L': [{'N': '1'}, {'N': '3'}]}}}}", "{'a': {'M': {'c': {'L': [{'N': '3'}]}}}}", NULL);
    UPDATE_RV("SET a.x1 = :8", "{'a': {'M': {}}}", "{'a': {'M': {'x1': {'N': '8'}}}}", "{}", "{'a': {'M': {'x1': {'N': '8'}}}}");
}

/* DynamoDB's two quirks: an element appended by SET a.c[100] is in neither; REMOVE a.c[1] returns what moved there. */
static void test_returnvalues_list_quirks(void **state)
{
    (void)state;
    V("{':70': {'N': '70'}}");
    UPDATE_RV("SET a.c[100] = :70", "{'a': {'M': {'c': {'L': [{'N': '1'}, {'N': '3'}]}}}}",
              "{'a': {'M': {'c': {'L': [{'N': '1'}, {'N': '3'}, {'N': '70'}]}}}}", "{}", "{}");
    UPDATE_RV("REMOVE a.c[1]", "{'a': {'M': {'c': {'L': [{'N': '1'}, {'N': '3'}, {'N': '70'}]}}}}",
              "{'a': {'M': {'c': {'L': [{'N': '1'}, {'N': '70'}]}}}}", "{'a': {'M': {'c': {'L': [{'N': '3'}]}}}}",
              "{'a': {'M': {'c': {'L': [{'N': '70'}]}}}}");
}

/* UPDATED_OLD / UPDATED_NEW members are added to what the caller's objects already hold; NULL skips them. */
static void test_returnvalues_into_caller_objects(void **state)
{
    store_expr_t e;
    json_t *item = J("{'a': {'N': '1'}}"), *old = J("{'keep': {'N': '0'}}");
    (void)state;
    V("{':v': {'N': '5'}}");
    e = parse(STORE_EXPR_UPDATE, "SET a = :v");
    assert_int_equal(store_eval_update(&e, item, 1, values, old, NULL, err, sizeof(err)), 0);
    assert_json(old, "{'keep': {'N': '0'}, 'a': {'N': '1'}}", "UPDATED_OLD added");
    assert_json(item, "{'a': {'N': '5'}}", "item");
    json_decref(item);
    json_decref(old);
}

/* ======== robustness ======== */

/* A failing allocator at every point: never a crash or a leak, the answer is the right one or ENOMEM. */
static long fail_countdown = -1;

static void *failing_malloc(size_t n)
{
    if (fail_countdown == 0)
        return NULL;
    if (fail_countdown > 0)
        fail_countdown--;
    return malloc(n);
}

static void test_out_of_memory(void **state)
{
    store_expr_t u, p, c;
    int done_u = 0, done_p = 0, done_c = 0;
    (void)state;
    V("{':v': {'L': [{'S': 'x'}]}, ':n': {'N': '1'}, ':s': {'SS': ['a', 'b']}, ':k': {'S': 'he'}}");
    u = parse(STORE_EXPR_UPDATE, "SET a = list_append(a, :v), b.c = :n, l[9] = :n REMOVE l[0] ADD n :n, s :s DELETE t :s");
    p = parse(STORE_EXPR_PROJECTION, "a, b.c, l[1], l[0]");
    c = parse(C, "size(a) > :n AND begins_with(k, :k) AND contains(s, :k)");
    for (long n = 0; n < 400 && !(done_u && done_p && done_c); n++) {
        json_t *item = J(
                   "{'a': {'L': []}, 'b': {'M': {}}, 'l': {'L': [{'N': '1'}, {'N': '2'}]}, 's': {'SS': ['c']}, 't': {'SS': ['a']},"
                   " 'k': {'S': 'hello'}}"),
               *uo = json_object(), *un = json_object(), *out;
        int r;
        json_set_alloc_funcs(failing_malloc, free);
        fail_countdown = n;
        r = store_eval_update(&u, item, 1, values, uo, un, err, sizeof(err));
        fail_countdown = -1;
        assert_true(r == 0 || r == STORE_EVAL_ENOMEM);
        done_u |= r == 0;
        fail_countdown = n;
        out = store_eval_project(&p, item);
        fail_countdown = -1;
        done_p |= out != NULL;
        json_decref(out);
        fail_countdown = n;
        r = store_eval_condition(&c, item, values, err, sizeof(err));
        fail_countdown = -1;
        assert_true(r == 0 || r == 1 || r == STORE_EVAL_ENOMEM);
        done_c |= r >= 0;
        json_set_alloc_funcs(malloc, free);
        json_decref(item);
        json_decref(uo);
        json_decref(un);
    }
    assert_true(done_u && done_p && done_c);
}

/* Deep nesting (32 levels of M and L) is read and written. */
static void test_deep_paths(void **state)
{
    char item[4096], path[512];
    size_t in = 0, pn = 0;
    (void)state;
    V("{':v': {'N': '1'}, ':w': {'N': '2'}}");
    in += (size_t)snprintf(item + in, sizeof(item) - in, "{'a': ");
    pn += (size_t)snprintf(path + pn, sizeof(path) - pn, "a");
    for (int i = 0; i < 16; i++) {
        in += (size_t)snprintf(item + in, sizeof(item) - in, "{'M': {'b': {'L': [");
        pn += (size_t)snprintf(path + pn, sizeof(path) - pn, ".b[0]");
    }
    in += (size_t)snprintf(item + in, sizeof(item) - in, "{'N': '1'}");
    for (int i = 0; i < 16; i++)
        in += (size_t)snprintf(item + in, sizeof(item) - in, "]}}}");
    snprintf(item + in, sizeof(item) - in, "}");
    {
        char expr[600];
        store_expr_t e;
        json_t *it = J(item);
        snprintf(expr, sizeof(expr), "%s = :v", path);
        TRUE(expr, item);
        snprintf(expr, sizeof(expr), "SET %s = :w", path);
        e = parse(STORE_EXPR_UPDATE, expr);
        assert_int_equal(store_eval_update(&e, it, 1, values, NULL, NULL, err, sizeof(err)), 0);
        snprintf(expr, sizeof(expr), "%s = :w", path);
        e = parse(C, expr);
        assert_int_equal(store_eval_condition(&e, it, values, err, sizeof(err)), 1);
        json_decref(it);
    }
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_eq_every_type),
        T(test_eq_sets_any_order),
        T(test_eq_different_types),
        T(test_eq_numbers_and_nesting),
        T(test_eq_missing),
        T(test_ne),
        T(test_lt),
        T(test_le_gt_ge),
        T(test_order_by_type),
        T(test_order_mismatch_is_false),
        T(test_order_two_missing),
        T(test_order_bad_value_type),
        T(test_order_bad_value_type_parser_agrees),
        T(test_between),
        T(test_between_item_bounds),
        T(test_between_value_bounds),
        T(test_between_filter_and_key_condition),
        T(test_in),
        T(test_in_many),
        T(test_attribute_exists),
        T(test_attribute_not_exists),
        T(test_attribute_type),
        T(test_attribute_type_bad_name),
        T(test_begins_with),
        T(test_begins_with_types),
        T(test_contains),
        T(test_contains_edge_cases),
        T(test_size),
        T(test_size_comparators),
        T(test_size_utf16),
        T(test_size_of_value),
        T(test_nested_paths),
        T(test_names),
        T(test_and_or_not),
        T(test_precedence),
        T(test_check_before_items),
        T(test_check_order),
        T(test_key_condition),
        T(test_typed_parse),
        T(test_project_top_level),
        T(test_project_nested_maps),
        T(test_project_list_elements),
        T(test_project_mixed),
        T(test_project_names),
        T(test_project_shares_values),
        T(test_set_basic),
        T(test_set_copy),
        T(test_set_reads_old_values),
        T(test_set_arithmetic),
        T(test_set_arithmetic_errors),
        T(test_set_arithmetic_bad_value),
        T(test_set_arithmetic_limits),
        T(test_if_not_exists),
        T(test_list_append),
        T(test_list_append_errors),
        T(test_set_nested_map),
        T(test_set_bad_path),
        T(test_set_list_elements),
        T(test_set_empty_values),
        T(test_remove_top_level),
        T(test_remove_nested),
        T(test_remove_list_indexes),
        T(test_remove_bad_path),
        T(test_add_number),
        T(test_add_set),
        T(test_add_errors),
        T(test_add_nested_and_limits),
        T(test_delete_set),
        T(test_delete_number_and_binary_sets),
        T(test_delete_errors),
        T(test_all_clauses),
        T(test_update_atomic),
        T(test_update_copies_values),
        T(test_update_new_item),
        T(test_returnvalues_top_level),
        T(test_returnvalues_nested),
        T(test_returnvalues_list_quirks),
        T(test_returnvalues_into_caller_objects),
        T(test_out_of_memory),
        T(test_deep_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
