/*
 * Unit tests of store/expr.c: the DynamoDB expression parser. Every construct is parsed and its AST compared, as
 * rendered by store_expr_format(), with the expected s-expression; every error class is checked with its exact message
 * (those that real DynamoDB is known to answer are marked "DynamoDB:"); then key conditions, allocation failures, and a
 * deterministic random-garbage loop (ASan/UBSan/LSan must stay quiet). Every allocation comes from a test arena freed
 * after each test (and after each parse of the random loop).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/expr.h"

#define C STORE_EXPR_CONDITION
#define F STORE_EXPR_FILTER
#define K STORE_EXPR_KEY_CONDITION
#define P STORE_EXPR_PROJECTION
#define U STORE_EXPR_UPDATE

#define CE "Invalid ConditionExpression: "
#define FE "Invalid FilterExpression: "
#define KE "Invalid KeyConditionExpression: "
#define PE "Invalid ProjectionExpression: "
#define UE "Invalid UpdateExpression: "

/* ---- the arena ---- */

typedef struct block {
    struct block *next;
    max_align_t data[];
} block_t;

static block_t *blocks;
static long fail_after = -1; /* allocations that succeed before one fails; -1: never fail */
static size_t nallocs;

static void *test_alloc(size_t size, void *ud)
{
    block_t *b;
    (void)ud;
    if (fail_after == 0)
        return NULL;
    if (fail_after > 0)
        fail_after--;
    if ((b = malloc(sizeof(*b) + size)) == NULL)
        return NULL;
    b->next = blocks;
    blocks = b;
    nallocs++;
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

/* ---- placeholders ---- */

static const struct {
    const char *ph, *name;
} names[] = {
    {"#a", "a"}, {"#b", "b"}, {"#c", "c"}, {"#d", "[3]"}, {"#n", "x.y"}, {"#status", "status"}, {"#k", "pk"}, {"#s", "sk"},
};
#define NNAMES (sizeof(names) / sizeof(names[0]))
static int name_used[NNAMES];

#define NPLAIN 200 /* :v0 ... :v199, index = the number, type unknown */
static const struct {
    const char *ph;
    store_expr_vtype_t type;
    const char *s;
} specials[] = {
    {":s", STORE_EXPR_VT_S, "abc"},      {":n", STORE_EXPR_VT_N, NULL},       {":b", STORE_EXPR_VT_B, NULL},
    {":bool", STORE_EXPR_VT_BOOL, NULL}, {":null", STORE_EXPR_VT_NULL, NULL}, {":ss", STORE_EXPR_VT_SS, NULL},
    {":ns", STORE_EXPR_VT_NS, NULL},     {":bs", STORE_EXPR_VT_BS, NULL},     {":l", STORE_EXPR_VT_L, NULL},
    {":m", STORE_EXPR_VT_M, NULL},       {":t", STORE_EXPR_VT_S, "N"},        {":tx", STORE_EXPR_VT_S, "X"},
};
#define NSPECIALS (sizeof(specials) / sizeof(specials[0]))
static int value_used[NPLAIN + NSPECIALS];
static int use_types = 1;

static int lookup_name(void *ud, const char *ph, size_t len, const char **out, size_t *outlen)
{
    (void)ud;
    for (size_t i = 0; i < NNAMES; i++) {
        if (strlen(names[i].ph) == len && memcmp(names[i].ph, ph, len) == 0) {
            name_used[i]++;
            *out = names[i].name;
            *outlen = strlen(names[i].name);
            return 0;
        }
    }
    return -1;
}

static int lookup_value(void *ud, const char *ph, size_t len, size_t *index)
{
    (void)ud;
    if (len >= 3 && len <= 5 && ph[1] == 'v') {
        size_t v = 0, i;
        for (i = 2; i < len && ph[i] >= '0' && ph[i] <= '9'; i++)
            v = v * 10 + (size_t)(ph[i] - '0');
        if (i == len && v < NPLAIN && (len == 3 || ph[2] != '0')) {
            value_used[v]++;
            *index = v;
            return 0;
        }
    }
    for (size_t i = 0; i < NSPECIALS; i++) {
        if (strlen(specials[i].ph) == len && memcmp(specials[i].ph, ph, len) == 0) {
            value_used[NPLAIN + i]++;
            *index = NPLAIN + i;
            return 0;
        }
    }
    return -1;
}

static store_expr_vtype_t value_type(void *ud, size_t index)
{
    (void)ud;
    return index >= NPLAIN && index < NPLAIN + NSPECIALS ? specials[index - NPLAIN].type : STORE_EXPR_VT_UNKNOWN;
}

static int value_s(void *ud, size_t index, const char **s, size_t *len)
{
    (void)ud;
    if (index < NPLAIN || index >= NPLAIN + NSPECIALS || specials[index - NPLAIN].s == NULL)
        return -1;
    *s = specials[index - NPLAIN].s;
    *len = strlen(*s);
    return 0;
}

/* ---- running the parser ---- */

static char err[STORE_EXPR_ERR_MAX];
static char ast[16384];
static store_expr_t expr;

static store_expr_env_t make_env(void)
{
    store_expr_env_t env = {test_alloc, lookup_name, lookup_value, use_types ? value_type : NULL, value_s, NULL};
    return env;
}

static int run_len(store_expr_kind_t kind, const char *src, size_t len)
{
    store_expr_env_t env = make_env();
    int rc = store_expr_parse(kind, src, len, &env, &expr, err, sizeof(err));
    ast[0] = '\0';
    if (rc == 0)
        store_expr_format(&expr, ast, sizeof(ast));
    return rc;
}

static int run(store_expr_kind_t kind, const char *src)
{
    return run_len(kind, src, strlen(src));
}

#define OK(kind, src, want)                                                                                                        \
    do {                                                                                                                           \
        int rc_ = run(kind, src);                                                                                                  \
        if (rc_ != 0)                                                                                                              \
            fail_msg("%s: rc %d: %s", src, rc_, err);                                                                              \
        assert_string_equal(ast, want);                                                                                            \
    } while (0)

#define ERR(kind, src, want)                                                                                                       \
    do {                                                                                                                           \
        int rc_ = run(kind, src);                                                                                                  \
        if (rc_ != STORE_EXPR_EINVALID)                                                                                            \
            fail_msg("%s: rc %d, AST %s", src, rc_, ast);                                                                          \
        assert_string_equal(err, want);                                                                                            \
    } while (0)

static int setup(void **state)
{
    (void)state;
    fail_after = -1;
    use_types = 1;
    memset(name_used, 0, sizeof(name_used));
    memset(value_used, 0, sizeof(value_used));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    arena_free();
    return 0;
}

/* A string of n copies of s (in a static buffer). */
static const char *repeat(const char *s, size_t n, char *buf, size_t size)
{
    size_t len = strlen(s), at = 0;
    for (size_t i = 0; i < n && at + len < size; i++, at += len)
        memcpy(buf + at, s, len);
    buf[at] = '\0';
    return buf;
}

/* ---- conditions: ASTs ---- */

static void test_cond_comparators(void **state)
{
    (void)state;
    OK(C, "a = :v0", "(= a :v0)");
    OK(C, "a <> :v0", "(<> a :v0)");
    OK(C, "a < :v0", "(< a :v0)");
    OK(C, "a <= :v0", "(<= a :v0)");
    OK(C, "a > :v0", "(> a :v0)");
    OK(C, "a >= :v0", "(>= a :v0)");
    OK(C, "a=:v0", "(= a :v0)");
    OK(C, "a<>:v0", "(<> a :v0)");
}

static void test_cond_operands_either_side(void **state)
{
    (void)state;
    OK(C, ":v1 < a", "(< :v1 a)");
    OK(C, "a = b", "(= a b)");
    OK(C, ":v0 = :v1", "(= :v0 :v1)");
    OK(C, "size(a) > :v3", "(> (size a) :v3)");
    OK(C, ":v3 <= size(a.b)", "(<= :v3 (size a.b))");
    OK(C, "size(a) = size(b)", "(= (size a) (size b))");
}

static void test_cond_between(void **state)
{
    (void)state;
    OK(C, "a BETWEEN :v0 AND :v1", "(BETWEEN a :v0 :v1)");
    OK(C, "size(a) between :v0 and :v1", "(BETWEEN (size a) :v0 :v1)");
    OK(C, "a BETWEEN :v0 AND :v1 AND b = :v2", "(AND (BETWEEN a :v0 :v1) (= b :v2))");
}

static void test_cond_in(void **state)
{
    (void)state;
    OK(C, "a IN (:v0)", "(IN a :v0)");
    OK(C, "a IN (:v0, :v1, b, size(c))", "(IN a :v0 :v1 b (size c))");
    OK(C, "a in(:v0,:v1)", "(IN a :v0 :v1)");
}

static void test_cond_in_100_operands(void **state)
{
    char src[2048];
    size_t at = (size_t)snprintf(src, sizeof(src), "a IN (");
    (void)state;
    for (int i = 0; i < 100; i++)
        at += (size_t)snprintf(src + at, sizeof(src) - at, "%s:v%d", i ? "," : "", i);
    snprintf(src + at, sizeof(src) - at, ")");
    assert_int_equal(run(C, src), 0);
    assert_int_equal(expr.cond->op, STORE_EXPR_IN);
    assert_int_equal(expr.cond->nargs, 101);
    assert_int_equal(expr.cond->args[100]->value, 99);
    /* DynamoDB: "The IN operator is provided with too many operands; number of operands: 101" */
    snprintf(src + at, sizeof(src) - at, ",:s)");
    ERR(C, src, CE "The IN operator is provided with too many operands; number of operands: 101");
}

static void test_cond_and_or_precedence(void **state)
{
    (void)state;
    OK(C, "a = :v0 OR b = :v1 AND c = :v2", "(OR (= a :v0) (AND (= b :v1) (= c :v2)))");
    OK(C, "a = :v0 AND b = :v1 OR c = :v2", "(OR (AND (= a :v0) (= b :v1)) (= c :v2))");
    OK(C, "a = :v0 AND b = :v1 AND c = :v2", "(AND (AND (= a :v0) (= b :v1)) (= c :v2))");
    OK(C, "a = :v0 OR b = :v1 OR c = :v2", "(OR (OR (= a :v0) (= b :v1)) (= c :v2))");
    OK(C, "a = :v0 OR b = :v1 AND c = :v2 OR d = :v3", "(OR (OR (= a :v0) (AND (= b :v1) (= c :v2))) (= d :v3))");
}

static void test_cond_not_precedence(void **state)
{
    (void)state;
    OK(C, "NOT a = :v0", "(NOT (= a :v0))");
    OK(C, "NOT a = :v0 AND b = :v1", "(AND (NOT (= a :v0)) (= b :v1))");
    OK(C, "a = :v0 OR NOT b = :v1", "(OR (= a :v0) (NOT (= b :v1)))");
    OK(C, "NOT NOT attribute_exists(a)", "(NOT (NOT (attribute_exists a)))");
    OK(C, "NOT (a = :v0 OR b = :v1)", "(NOT (OR (= a :v0) (= b :v1)))");
    OK(C, "NOT a BETWEEN :v0 AND :v1", "(NOT (BETWEEN a :v0 :v1))");
    OK(C, "NOT a IN (:v0)", "(NOT (IN a :v0))");
}

static void test_cond_parentheses(void **state)
{
    (void)state;
    OK(C, "(a = :v0 OR b = :v1) AND c = :v2", "(AND (OR (= a :v0) (= b :v1)) (= c :v2))");
    OK(C, "a = :v0 AND (b = :v1 OR (c = :v2 AND NOT d = :v3))", "(AND (= a :v0) (OR (= b :v1) (AND (= c :v2) (NOT (= d :v3)))))");
    OK(C, "(a = :v0)", "(= a :v0)");
    OK(C, "((a = :v0) AND b = :v1)", "(AND (= a :v0) (= b :v1))");
    OK(C, "(a) = :v0", "(= a :v0)");
    OK(C, "a = (:v0)", "(= a :v0)");
    OK(C, "(size(a)) > (:v0)", "(> (size a) :v0)");
    OK(C, "a IN ((:v0), :v1)", "(IN a :v0 :v1)");
    OK(C, "a BETWEEN (:v0) AND (:v1)", "(BETWEEN a :v0 :v1)");
    OK(C, "NOT (a) = :v0", "(NOT (= a :v0))");
    OK(C, "(attribute_exists(a))", "(attribute_exists a)");
}

static void test_cond_keywords_case_insensitive(void **state)
{
    (void)state;
    OK(C, "a between :v0 aNd :v1 or NoT b iN (:v2)", "(OR (BETWEEN a :v0 :v1) (NOT (IN b :v2)))");
    OK(F, "a = :v0 and b = :v1 OR c = :v2", "(OR (AND (= a :v0) (= b :v1)) (= c :v2))");
    OK(C, "not a = :v0", "(NOT (= a :v0))");
}

static void test_cond_functions(void **state)
{
    (void)state;
    OK(C, "attribute_exists(a)", "(attribute_exists a)");
    OK(C, "attribute_not_exists(a.b[2])", "(attribute_not_exists a.b[2])");
    OK(C, "attribute_type(a, :v0)", "(attribute_type a :v0)");
    OK(C, "begins_with(a, :v0)", "(begins_with a :v0)");
    OK(C, "begins_with(:v0, a)", "(begins_with :v0 a)");
    OK(C, "contains(a, :v0)", "(contains a :v0)");
    OK(C, "contains(a, b)", "(contains a b)");
    OK(C, "contains ( a , :v0 )", "(contains a :v0)");
    OK(C, "begins_with(a, :v0) AND attribute_not_exists(b)", "(AND (begins_with a :v0) (attribute_not_exists b))");
}

static void test_cond_paths(void **state)
{
    (void)state;
    OK(C, "a.b.c = :v0", "(= a.b.c :v0)");
    OK(C, "a[0] = :v0", "(= a[0] :v0)");
    OK(C, "a.b[1].c[2][3] = :v0", "(= a.b[1].c[2][3] :v0)");
    OK(C, "a . b [ 1 ] = :v0", "(= a.b[1] :v0)");
    OK(C, "a_1.B_2 = :v0", "(= a_1.B_2 :v0)");
    OK(C, "a[2147483647] = :v0", "(= a[2147483647] :v0)");
    assert_int_equal(run(C, "a.b[1].c = :v0"), 0);
    const store_expr_path_t *path = &expr.cond->args[0]->path;
    assert_int_equal(path->n, 4);
    assert_int_equal(path->elems[0].len, 1);
    assert_memory_equal(path->elems[0].name, "a", 1);
    assert_null(path->elems[2].name);
    assert_int_equal(path->elems[2].index, 1);
    assert_memory_equal(path->elems[3].name, "c", 1);
}

static void test_cond_whitespace(void **state)
{
    (void)state;
    OK(C, "  a\t=\n:v0\r\n  AND\tb <> :v1  ", "(AND (= a :v0) (<> b :v1))");
}

static void test_filter_kind(void **state)
{
    (void)state;
    OK(F, "a = :v0", "(= a :v0)");
    ERR(F, "a x b", FE "Syntax error; token: \"x\", near: \"a x b\"");
    ERR(K, "a x b", KE "Syntax error; token: \"x\", near: \"a x b\"");
}

/* ---- placeholders ---- */

static void test_placeholder_names(void **state)
{
    (void)state;
    OK(C, "#a = :v0", "(= a :v0)");
    OK(C, "#a.#b[1] = :v0", "(= a.b[1] :v0)");
    OK(C, "#status = :v0", "(= status :v0)");
    /* a #name is one path element, dots and brackets included */
    OK(C, "#n.#d = :v0", "(= \"x.y\".\"[3]\" :v0)");
    assert_int_equal(expr.cond->args[0]->path.n, 2);
    assert_int_equal(expr.cond->args[0]->path.elems[0].len, 3);
    assert_memory_equal(expr.cond->args[0]->path.elems[0].name, "x.y", 3);
    assert_ptr_equal(expr.cond->args[0]->path.elems[0].name, names[4].name); /* borrowed, not copied */
}

static void test_placeholder_values(void **state)
{
    (void)state;
    assert_int_equal(run(C, "a = :s AND b = :v7"), 0);
    assert_int_equal(expr.cond->args[0]->args[1]->op, STORE_EXPR_VALUE);
    assert_int_equal(expr.cond->args[0]->args[1]->value, NPLAIN + 0);
    assert_int_equal(expr.cond->args[1]->args[1]->value, 7);
}

static void test_placeholder_uses_reported(void **state)
{
    (void)state;
    OK(C, "#a = :v0 AND #b = :v1 AND #a = :v1", "(AND (AND (= a :v0) (= b :v1)) (= a :v1))");
    assert_true(name_used[0] > 0);
    assert_true(name_used[1] > 0);
    assert_int_equal(name_used[2], 0);
    assert_true(value_used[0] > 0);
    assert_true(value_used[1] > 0);
    assert_int_equal(value_used[2], 0);
    OK(P, "#c", "c");
    assert_true(name_used[2] > 0);
}

static void test_placeholder_undefined(void **state)
{
    (void)state;
    ERR(C, "#zz = :v0", CE "An expression attribute name used in the document path is not defined; attribute name: #zz");
    ERR(C, "a = :zz", CE "An expression attribute value used in expression is not defined; attribute value: :zz");
    ERR(U, "SET a = :zz", UE "An expression attribute value used in expression is not defined; attribute value: :zz");
    ERR(U, "REMOVE a.#zz", UE "An expression attribute name used in the document path is not defined; attribute name: #zz");
    ERR(P, "a, #zz", PE "An expression attribute name used in the document path is not defined; attribute name: #zz");
}

static void test_placeholder_no_lookups(void **state)
{
    store_expr_env_t env = {test_alloc, NULL, NULL, NULL, NULL, NULL};
    (void)state;
    assert_int_equal(store_expr_parse(C, "#a = :v", 7, &env, &expr, err, sizeof(err)), STORE_EXPR_EINVALID);
    assert_string_equal(err, CE "An expression attribute name used in the document path is not defined; attribute name: #a");
    assert_int_equal(store_expr_parse(C, "a = :v", 6, &env, &expr, err, sizeof(err)), STORE_EXPR_EINVALID);
    assert_string_equal(err, CE "An expression attribute value used in expression is not defined; attribute value: :v");
    assert_int_equal(store_expr_parse(P, "a.b", 3, &env, &expr, err, sizeof(err)), 0);
}

/* ---- updates: ASTs ---- */

static void test_update_set(void **state)
{
    (void)state;
    OK(U, "SET a = :v0", "(SET a :v0)");
    OK(U, "SET a = b", "(SET a b)");
    OK(U, "SET a.b[2] = :v0, c = d.e", "(SET a.b[2] :v0) (SET c d.e)");
    OK(U, "SET #a = #b", "(SET a b)");
}

static void test_update_arithmetic(void **state)
{
    (void)state;
    OK(U, "SET a = a + :v0", "(SET a (+ a :v0))");
    OK(U, "SET a = :v0 - a, b = b+:v1", "(SET a (- :v0 a)) (SET b (+ b :v1))");
    OK(U, "SET a = if_not_exists(a, :v0) + :v1", "(SET a (+ (if_not_exists a :v0) :v1))");
    OK(U, "SET a = (b + :v0)", "(SET a (+ b :v0))");
    OK(U, "SET a = (b) + :v0", "(SET a (+ b :v0))");
    OK(U, "SET a = (b) + (:v0)", "(SET a (+ b :v0))");
    OK(U, "SET a = ((b))", "(SET a b)");
    OK(U, "SET a = (:v0)", "(SET a :v0)");
}

static void test_update_functions(void **state)
{
    (void)state;
    OK(U, "SET a = if_not_exists(a, :v0)", "(SET a (if_not_exists a :v0))");
    OK(U, "SET l = list_append(l, :v0)", "(SET l (list_append l :v0))");
    OK(U, "SET l = list_append(:v0, if_not_exists(l, :v1))", "(SET l (list_append :v0 (if_not_exists l :v1)))");
    OK(U, "SET a = if_not_exists(b.c, list_append(:v0, :v1))", "(SET a (if_not_exists b.c (list_append :v0 :v1)))");
    OK(U, "SET e = list_append(d, if_not_exists(f, (:v0)))", "(SET e (list_append d (if_not_exists f :v0)))");
}

static void test_update_remove_add_delete(void **state)
{
    (void)state;
    OK(U, "REMOVE a", "(REMOVE a)");
    OK(U, "REMOVE a, b[1], c.d", "(REMOVE a) (REMOVE b[1]) (REMOVE c.d)");
    OK(U, "ADD n :v0, s :v1", "(ADD n :v0) (ADD s :v1)");
    OK(U, "DELETE s :v0", "(DELETE s :v0)");
    OK(U, "ADD n :n DELETE s :ss", "(ADD n :v201) (DELETE s :v205)");
    OK(U, "ADD a :ss, b :ns, c :bs", "(ADD a :v205) (ADD b :v206) (ADD c :v207)");
}

static void test_update_clause_order_and_case(void **state)
{
    (void)state;
    OK(U, "DELETE d :v0 ADD c :v1 REMOVE b SET a = :v2", "(DELETE d :v0) (ADD c :v1) (REMOVE b) (SET a :v2)");
    OK(U, "set a = :v0 remove b", "(SET a :v0) (REMOVE b)");
    OK(U, "Set a = :v0 ReMoVe b aDD c :v1 DeLeTe d :v2", "(SET a :v0) (REMOVE b) (ADD c :v1) (DELETE d :v2)");
    assert_int_equal(expr.nactions, 4);
    assert_int_equal(expr.actions[1].kind, STORE_EXPR_REMOVE);
    assert_null(expr.actions[1].value);
    assert_int_equal(expr.actions[2].value->op, STORE_EXPR_VALUE);
}

/* ---- projections ---- */

static void test_projection(void **state)
{
    (void)state;
    OK(P, "a", "a");
    OK(P, "a, b.c, d[0]", "a, b.c, d[0]");
    OK(P, " a ,b , c[1][2] ", "a, b, c[1][2]");
    OK(P, "#a, #n, #d[0]", "a, \"x.y\", \"[3]\"[0]");
    OK(P, "a.b, a.c, x[1].b, x[2]", "a.b, a.c, x[1].b, x[2]");
    assert_int_equal(expr.npaths, 4);
}

/* ---- syntax errors ---- */

static void test_syntax_error_tokens(void **state)
{
    (void)state;
    ERR(C, "a x b", CE "Syntax error; token: \"x\", near: \"a x b\"");
    ERR(C, "a = 1", CE "Syntax error; token: \"1\", near: \"= 1\"");
    ERR(C, "a = b = c", CE "Syntax error; token: \"=\", near: \"b = c\"");
    ERR(C, "a = and", CE "Syntax error; token: \"and\", near: \"= and\"");
    ERR(C, "a.1 = :v0", CE "Syntax error; token: \"1\", near: \".1 =\"");
    ERR(C, "a[x] = :v0", CE "Syntax error; token: \"x\", near: \"[x]\"");
    ERR(C, "a[-1] = :v0", CE "Syntax error; token: \"-\", near: \"[-1\"");
    ERR(C, "a[2147483648] = :v0", CE "Syntax error; token: \"2147483648\", near: \"[2147483648]\"");
    ERR(C, "a + b = :v0", CE "Syntax error; token: \"+\", near: \"a + b\"");
    ERR(C, "(a = :v0) = :v1", CE "Syntax error; token: \"=\", near: \") = :v1\"");
}

static void test_syntax_error_eof(void **state)
{
    (void)state;
    ERR(C, "a", CE "Syntax error; token: \"<EOF>\", near: \"a\"");
    ERR(C, "a = :v0 AND", CE "Syntax error; token: \"<EOF>\", near: \"AND\"");
    ERR(C, "a = ", CE "Syntax error; token: \"<EOF>\", near: \"= \"");
    ERR(C, "(a = :v0", CE "Syntax error; token: \"<EOF>\", near: \":v0\"");
    ERR(C, "a IN (:v0", CE "Syntax error; token: \"<EOF>\", near: \":v0\"");
    ERR(C, "a BETWEEN :v0", CE "Syntax error; token: \"<EOF>\", near: \":v0\"");
    ERR(P, "a,", PE "Syntax error; token: \"<EOF>\", near: \",\"");
    ERR(U, "SET", UE "Syntax error; token: \"<EOF>\", near: \"SET\"");
}

static void test_syntax_error_bare_operands(void **state)
{
    (void)state;
    ERR(C, "a AND b = :v0", CE "Syntax error; token: \"AND\", near: \"a AND b\"");
    ERR(C, "b = :v0 AND a", CE "Syntax error; token: \"<EOF>\", near: \"a\"");
    ERR(C, "NOT a", CE "Syntax error; token: \"<EOF>\", near: \"a\"");
    ERR(C, ":v0", CE "Syntax error; token: \"<EOF>\", near: \":v0\"");
    ERR(C, "(a)", CE "Syntax error; token: \"<EOF>\", near: \")\"");
    ERR(C, "(b = :v0 AND a)", CE "Syntax error; token: \")\", near: \"a)\"");
    ERR(C, "(NOT a) = :v0", CE "Syntax error; token: \")\", near: \"a) =\"");
    ERR(C, "(a) AND b = :v0", CE "Syntax error; token: \"AND\", near: \") AND b\"");
    ERR(C, "a)", CE "Syntax error; token: \")\", near: \"a)\"");
}

static void test_syntax_error_functions(void **state)
{
    (void)state;
    /* DynamoDB: attribute_type() is 'Syntax error; token: ")", near: "()"' */
    ERR(C, "attribute_type()", CE "Syntax error; token: \")\", near: \"()\"");
    ERR(C, "begins_with(a :v0)", CE "Syntax error; token: \":v0\", near: \"a :v0)\"");
    ERR(C, "a IN ()", CE "Syntax error; token: \")\", near: \"()\"");
    ERR(C, "a IN :v0", CE "Syntax error; token: \":v0\", near: \"IN :v0\"");
    ERR(C, "a BETWEEN :v0 OR :v1", CE "Syntax error; token: \"OR\", near: \":v0 OR :v1\"");
}

static void test_syntax_error_characters(void **state)
{
    (void)state;
    /* DynamoDB: an identifier cannot start with an underscore */
    ERR(C, "attribute_not_exists(_c)", CE "Syntax error; token: \"_\", near: \"(_c\"");
    ERR(C, "a = :v0 !", CE "Syntax error; token: \"!\", near: \":v0 !\"");
    ERR(C, "a = \xc3\xa9t\xc3\xa9", CE "Syntax error; token: \"\xc3\xa9\", near: \"= \xc3\xa9t\"");
    ERR(C, "a = #", CE "Syntax error; token: \"#\", near: \"= #\"");
    ERR(C, "a = :", CE "Syntax error; token: \":\", near: \"= :\"");
    ERR(C, "a = \"x\"", CE "Syntax error; token: \"\"\", near: \"= \"x\"");
    ERR(P, "!!!", PE "Syntax error; token: \"!\", near: \"!!\"");
    ERR(P, "my-attr", PE "Syntax error; token: \"-\", near: \"my-attr\"");
    ERR(P, "a b", PE "Syntax error; token: \"b\", near: \"a b\"");
    assert_int_equal(run_len(C, "a = \0", 5), STORE_EXPR_EINVALID);
    assert_int_equal(memcmp(err, CE "Syntax error; token: \"", strlen(CE "Syntax error; token: \"")), 0);
}

static void test_syntax_error_update(void **state)
{
    (void)state;
    /* DynamoDB: both messages below */
    ERR(U, "INVALID SYNTAX HERE", UE "Syntax error; token: \"INVALID\", near: \"INVALID SYNTAX\"");
    ERR(U, "SET a = a + 1", UE "Syntax error; token: \"1\", near: \"+ 1\"");
    ERR(U, "SET a", UE "Syntax error; token: \"<EOF>\", near: \"a\"");
    ERR(U, "SET a = :v0,", UE "Syntax error; token: \"<EOF>\", near: \",\"");
    ERR(U, "SET a = b + c + d", UE "Syntax error; token: \"+\", near: \"c + d\"");
    ERR(U, "SET a = b * c", UE "Syntax error; token: \"*\", near: \"b * c\"");
    ERR(U, "REMOVE a = b", UE "Syntax error; token: \"=\", near: \"a = b\"");
    ERR(U, "ADD a b", UE "Syntax error; token: \"b\", near: \"a b\"");
    ERR(U, "ADD a = :v0", UE "Syntax error; token: \"=\", near: \"a = :v0\"");
    ERR(U, "DELETE a if_not_exists(b)", UE "Syntax error; token: \"if_not_exists\", near: \"a if_not_exists(\"");
    ERR(U, "SET :v0 = b", UE "Syntax error; token: \":v0\", near: \"SET :v0 =\"");
    ERR(U, "REMOVE :v0", UE "Syntax error; token: \":v0\", near: \"REMOVE :v0\"");
    ERR(U, "SET (a = b)", UE "Syntax error; token: \"(\", near: \"SET (a\"");
    ERR(U, "SET a = (((b)))", UE "Syntax error; token: \"(\", near: \"((b\"");
    ERR(U, "SET a = ((b)) + c", UE "Syntax error; token: \"(\", near: \"((b\"");
    ERR(U, "SET a = (b.c).d + e", UE "Syntax error; token: \".\", near: \").d\"");
    ERR(U, "SET a = :v0 REMOVE", UE "Syntax error; token: \"<EOF>\", near: \"REMOVE\"");
    ERR(U, "REMOVE a, set", UE "Syntax error; token: \"set\", near: \", set\"");
    ERR(U, "SET a = :v0 b", UE "Syntax error; token: \"b\", near: \":v0 b\"");
    ERR(U, "SET a = and", UE "Attribute name is a reserved keyword; reserved keyword: and");
}

static void test_syntax_error_wins(void **state)
{
    (void)state;
    ERR(C, "status = :zz AND foo(#zz) AND a x", CE "Syntax error; token: \"x\", near: \"a x\"");
    ERR(U, "SET status = :zz SET a = foo(b) c", UE "Syntax error; token: \"c\", near: \") c\"");
}

/* ---- limits ---- */

static void test_limit_empty(void **state)
{
    (void)state;
    /* DynamoDB */
    ERR(C, "", CE "The expression can not be empty;");
    ERR(U, "", UE "The expression can not be empty;");
    ERR(K, "", KE "The expression can not be empty;");
    ERR(P, " \t\r\n", PE "The expression can not be empty;");
    ERR(F, "   ", FE "The expression can not be empty;");
}

static void test_limit_size(void **state)
{
    static char src[8192];
    (void)state;
    /* DynamoDB: 4096 bytes accepted, 4097 refused, counted on the raw text */
    memset(src, 'a', 4096);
    src[4096] = '\0';
    memcpy(src, "attribute_exists(", 17);
    src[4095] = ')';
    assert_int_equal(run(C, src), 0);
    src[4095] = 'a';
    src[4096] = ')';
    src[4097] = '\0';
    ERR(C, src, CE "Expression size has exceeded the maximum allowed size; expression size: 4097");
    ERR(U, src, UE "Expression size has exceeded the maximum allowed size; expression size: 4097");
    /* even before a syntax error or emptiness */
    memset(src, ' ', 5000);
    src[5000] = '\0';
    ERR(P, src, PE "Expression size has exceeded the maximum allowed size; expression size: 5000");
    memset(src, '(', 8000);
    src[8000] = '\0';
    ERR(C, src, CE "Expression size has exceeded the maximum allowed size; expression size: 8000");
}

static void test_limit_operators(void **state)
{
    static char src[16384], a[4096], b[4096];
    (void)state;
    /* DynamoDB: "a<b or (a<b or (...))" with 149 nestings (299 operators) works; more is refused at 301 */
    snprintf(src, sizeof(src), "a<b %s%s", repeat("or (a<b ", 149, a, sizeof(a)), repeat(")", 149, b, sizeof(b)));
    assert_int_equal(run(C, src), 0);
    snprintf(src, sizeof(src), "a<b %s%s", repeat("or (a<b ", 150, a, sizeof(a)), repeat(")", 150, b, sizeof(b)));
    ERR(C, src, CE "The expression contains too many operators; operator count: 301");
    snprintf(src, sizeof(src), "a<b %s%s", repeat("or (a<b ", 454, a, sizeof(a)), repeat(")", 454, b, sizeof(b)));
    ERR(C, src, CE "The expression contains too many operators; operator count: 301");
    /* DynamoDB: 1000 NOTs */
    snprintf(src, sizeof(src), "%sa<b", repeat("not ", 1000, a, sizeof(a)));
    ERR(C, src, CE "The expression contains too many operators; operator count: 301");
    snprintf(src, sizeof(src), "%sa<b", repeat("not ", 299, a, sizeof(a)));
    assert_int_equal(run(C, src), 0);
}

static void test_limit_update_operators(void **state)
{
    static char src[8192];
    size_t at = 0;
    (void)state;
    /* +, - and the functions count; "=" does not */
    at += (size_t)snprintf(src + at, sizeof(src) - at, "SET z=if_not_exists(b,:v0)");
    for (int i = 0; i < 299; i++)
        at += (size_t)snprintf(src + at, sizeof(src) - at, ",a%d=b+:v1", i);
    assert_true(at <= STORE_EXPR_MAX_SIZE);
    assert_int_equal(run(U, src), 0);
    at += (size_t)snprintf(src + at, sizeof(src) - at, ",y=y-:v0");
    ERR(U, src, UE "The expression contains too many operators; operator count: 301");
    at = (size_t)snprintf(src, sizeof(src), "SET ");
    for (int i = 0; i < 400; i++)
        at += (size_t)snprintf(src + at, sizeof(src) - at, "%sa%d=:v1", i ? "," : "", i);
    assert_int_equal(run(U, src), 0);
}

static void test_limit_deep_nesting(void **state)
{
    static char src[16384], a[4096], b[4096];
    (void)state;
    /* DynamoDB: 2046 pairs of parentheses around a<b: redundant parentheses (and no stack overflow here) */
    snprintf(src, sizeof(src), "%sa<b%s", repeat("(", 2046, a, sizeof(a)), repeat(")", 2046, b, sizeof(b)));
    ERR(C, src, CE "The expression has redundant parentheses;");
    /* 4096 open parentheses: a syntax error */
    repeat("(", 4096, src, sizeof(src));
    ERR(C, src, CE "Syntax error; token: \"<EOF>\", near: \"(\"");
    /* DynamoDB: a < f(f(f(...(b)))) with 1355 calls: "Invalid function name; function: f" */
    snprintf(src, sizeof(src), "a < %sb%s", repeat("f(", 1355, a, sizeof(a)), repeat(")", 1355, b, sizeof(b)));
    ERR(C, src, CE "Invalid function name; function: f");
    /* a < size(size(...size(b))) with 680 calls: size of a number */
    snprintf(src, sizeof(src), "a < %sb%s", repeat("size(", 680, a, sizeof(a)), repeat(")", 680, b, sizeof(b)));
    ERR(C, src, CE "Incorrect operand type for operator or function; operator or function: size, operand type: N");
    snprintf(src, sizeof(src), "SET a = %sb%s", repeat("if_not_exists(", 150, a, sizeof(a)), repeat(", :v0)", 150, b, sizeof(b)));
    ERR(U, src, UE "Operator or function requires a document path; operator or function: if_not_exists");
    snprintf(src, sizeof(src), "a = %s:v0%s", repeat("(", 2040, a, sizeof(a)), repeat(")", 2040, b, sizeof(b)));
    ERR(C, src, CE "The expression has redundant parentheses;");
}

/* ---- semantic errors ---- */

static void test_reserved_words(void **state)
{
    (void)state;
    ERR(C, "status = :v0", CE "Attribute name is a reserved keyword; reserved keyword: status");
    ERR(C, "a.Status = :v0", CE "Attribute name is a reserved keyword; reserved keyword: Status");
    ERR(C, "a = b[1].COUNT", CE "Attribute name is a reserved keyword; reserved keyword: COUNT");
    ERR(C, "size = :v0", CE "Attribute name is a reserved keyword; reserved keyword: size");
    ERR(U, "REMOVE Absolute", UE "Attribute name is a reserved keyword; reserved keyword: Absolute");
    ERR(P, "a, name", PE "Attribute name is a reserved keyword; reserved keyword: name");
    ERR(P, "AND", PE "Attribute name is a reserved keyword; reserved keyword: AND");
    OK(C, "#status = :v0", "(= status :v0)");
    OK(C, "size(a) > :v0", "(> (size a) :v0)");
    OK(C, "statuses = :v0 AND stat = :v1", "(AND (= statuses :v0) (= stat :v1))");
}

static void test_reserved_word_table(void **state)
{
    (void)state;
    assert_true(store_expr_is_reserved("ABORT", 5));
    assert_true(store_expr_is_reserved("abort", 5));
    assert_true(store_expr_is_reserved("ZONE", 4));
    assert_true(store_expr_is_reserved("zOnE", 4));
    assert_true(store_expr_is_reserved("LOCALTIMESTAMP", 14));
    assert_true(store_expr_is_reserved("status", 6));
    assert_true(store_expr_is_reserved("FLATTERN", 8));
    assert_true(store_expr_is_reserved("INNTER", 6));
    assert_true(store_expr_is_reserved("TTL", 3));
    assert_true(store_expr_is_reserved("data", 4));
    assert_true(store_expr_is_reserved("timestamp", 9));
    assert_false(store_expr_is_reserved("", 0));
    assert_false(store_expr_is_reserved("ABORTS", 6));
    assert_false(store_expr_is_reserved("ABOR", 4));
    assert_false(store_expr_is_reserved("AAA", 3));
    assert_false(store_expr_is_reserved("ZZZ", 3));
    assert_false(store_expr_is_reserved("LOCALTIMESTAMPS", 15));
    assert_false(store_expr_is_reserved("if_not_exists", 13));
    assert_false(store_expr_is_reserved("a1", 2));
    assert_false(store_expr_is_reserved("statusX", 6 + 1));
    assert_true(store_expr_is_reserved("statusX", 6));
}

static void test_unknown_function(void **state)
{
    (void)state;
    ERR(C, "foo(a)", CE "Invalid function name; function: foo");
    /* function names are case-sensitive */
    ERR(C, "Size(a) > :v0", CE "Invalid function name; function: Size");
    ERR(C, "ATTRIBUTE_EXISTS(a)", CE "Invalid function name; function: ATTRIBUTE_EXISTS");
    ERR(C, "if_not_exists(a, :v0) = :v1", CE "Invalid function name; function: if_not_exists");
    ERR(U, "SET a = size(b)", UE "Invalid function name; function: size");
    ERR(U, "SET a = attribute_exists(b)", UE "Invalid function name; function: attribute_exists");
    ERR(U, "SET a = if_not_exist(a, :v0)", UE "Invalid function name; function: if_not_exist");
}

static void test_misused_function(void **state)
{
    (void)state;
    ERR(C, "attribute_exists(a) = :v0",
        CE "The function is not allowed to be used this way in an expression; function: attribute_exists");
    ERR(C, "a = begins_with(b, :v0)", CE "The function is not allowed to be used this way in an expression; function: begins_with");
    ERR(C, "a IN (:v0, contains(b, :v1))",
        CE "The function is not allowed to be used this way in an expression; function: contains");
    ERR(C, "begins_with(a, attribute_type(b, :v0))",
        CE "The function is not allowed to be used this way in an expression; function: attribute_type");
    /* size() where a condition must be */
    ERR(C, "size(a)", CE "The function is not allowed to be used this way in an expression; function: size");
    ERR(C, "a = :v0 AND size(a)", CE "The function is not allowed to be used this way in an expression; function: size");
    ERR(C, "NOT size(a)", CE "The function is not allowed to be used this way in an expression; function: size");
    ERR(C, "(size(a))", CE "The function is not allowed to be used this way in an expression; function: size");
}

static void test_operand_count(void **state)
{
    (void)state;
    ERR(C, "contains(a)",
        CE "Incorrect number of operands for operator or function; operator or function: contains, number of operands: 1");
    ERR(C, "begins_with(a, :v0, :v1)",
        CE "Incorrect number of operands for operator or function; operator or function: begins_with, number of operands: 3");
    ERR(C, "size(a, b) > :v0",
        CE "Incorrect number of operands for operator or function; operator or function: size, number of operands: 2");
    ERR(C, "attribute_exists(a, b)",
        CE "Incorrect number of operands for operator or function; operator or function: attribute_exists, number of operands: 2");
    ERR(U, "SET a = if_not_exists(c)",
        UE "Incorrect number of operands for operator or function; operator or function: if_not_exists, number of operands: 1");
    ERR(U, "SET a = list_append(c)",
        UE "Incorrect number of operands for operator or function; operator or function: list_append, number of operands: 1");
}

static void test_distinct_operands(void **state)
{
    (void)state;
    ERR(C, "a = a",
        CE "The first operand must be distinct from the remaining operands for this operator or function; operator: =, first "
           "operand: [a]");
    ERR(C, "a.b[1] <> a.b[1]",
        CE "The first operand must be distinct from the remaining operands for this operator or function; operator: <>, first "
           "operand: [a, b, [1]]");
    ERR(C, "#a >= a",
        CE "The first operand must be distinct from the remaining operands for this operator or function; operator: >=, first "
           "operand: [a]");
    /* DynamoDB: contains(#a, #a) with #a = data */
    ERR(C, "contains(#a, #a)",
        CE "The first operand must be distinct from the remaining operands for this operator or function; operator: contains, "
           "first operand: [a]");
    ERR(C, "a IN (:v0, b, a)",
        CE "The first operand must be distinct from the remaining operands for this operator or function; operator: IN, first "
           "operand: [a]");
    ERR(C, "a BETWEEN :v0 AND a",
        CE "The first operand must be distinct from the remaining operands for this operator or function; operator: BETWEEN, first "
           "operand: [a]");
    OK(C, "a = a.b", "(= a a.b)");
    OK(C, "a[0] = a[1]", "(= a[0] a[1])");
    OK(C, "#n = x", "(= \"x.y\" x)");
}

static void test_document_path_required(void **state)
{
    (void)state;
    ERR(C, "attribute_exists(:v0)", CE "Operator or function requires a document path; operator or function: attribute_exists");
    ERR(C, "attribute_not_exists(size(a))",
        CE "Operator or function requires a document path; operator or function: attribute_not_exists");
    ERR(C, "attribute_type(:v0, :s)", CE "Operator or function requires a document path; operator or function: attribute_type");
    ERR(U, "SET a = if_not_exists(:v0, c)",
        UE "Operator or function requires a document path; operator or function: if_not_exists");
    ERR(U, "SET a = if_not_exists(if_not_exists(a, b), c)",
        UE "Operator or function requires a document path; operator or function: if_not_exists");
}

static void test_condition_operand_types(void **state)
{
    (void)state;
    ERR(C, "begins_with(a, :n)",
        CE "Incorrect operand type for operator or function; operator or function: begins_with, operand type: N");
    ERR(C, "begins_with(:bool, a)",
        CE "Incorrect operand type for operator or function; operator or function: begins_with, operand type: BOOL");
    ERR(C, "begins_with(a, size(b))",
        CE "Incorrect operand type for operator or function; operator or function: begins_with, operand type: N");
    OK(C, "begins_with(a, :s) AND begins_with(b, :b)", "(AND (begins_with a :v200) (begins_with b :v202))");
    ERR(C, "attribute_type(a, :n)",
        CE "Incorrect operand type for operator or function; operator or function: attribute_type, operand type: N");
    ERR(C, "attribute_type(a, b)",
        CE "Incorrect operand type for operator or function; operator or function: attribute_type, operand type: "
           "{NS,SS,L,BS,N,M,B,BOOL,NULL,S}");
    ERR(C, "attribute_type(a, :tx)", CE "Invalid attribute type name found; type: X, valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}");
    OK(C, "attribute_type(a, :t)", "(attribute_type a :v210)");
    ERR(C, "size(:n) > :v0", CE "Incorrect operand type for operator or function; operator or function: size, operand type: N");
    ERR(C, "size(:null) > :v0",
        CE "Incorrect operand type for operator or function; operator or function: size, operand type: NULL");
    OK(C, "size(:s) > :v0", "(> (size :v200) :v0)");
    /* DynamoDB (key conditions): ordering comparators and BETWEEN take S, N, B */
    ERR(C, "a < :bool", CE "Incorrect operand type for operator or function; operator or function: <, operand type: BOOL");
    ERR(C, ":l >= a", CE "Incorrect operand type for operator or function; operator or function: >=, operand type: L");
    ERR(C, "a BETWEEN :m AND :v0",
        CE "Incorrect operand type for operator or function; operator or function: BETWEEN, operand type: M");
    OK(C, "a = :bool AND b <> :null AND c = :l", "(AND (AND (= a :v203) (<> b :v204)) (= c :v208))");
    OK(C, "a < :s AND b > :n AND c <= :b", "(AND (AND (< a :v200) (> b :v201)) (<= c :v202))");
}

static void test_operand_types_need_value_type(void **state)
{
    (void)state;
    use_types = 0;
    OK(C, "begins_with(a, :n) AND a < :bool", "(AND (begins_with a :v201) (< a :v203))");
    OK(U, "ADD a :s SET b = b + :s", "(ADD a :v200) (SET b (+ b :v200))");
    /* no value type: a path's "type" is still known to be any */
    ERR(C, "attribute_type(a, b)",
        CE "Incorrect operand type for operator or function; operator or function: attribute_type, operand type: "
           "{NS,SS,L,BS,N,M,B,BOOL,NULL,S}");
}

static void test_update_operand_types(void **state)
{
    (void)state;
    ERR(U, "SET a = a + :s", UE "Incorrect operand type for operator or function; operator or function: +, operand type: S");
    ERR(U, "SET a = :b - a", UE "Incorrect operand type for operator or function; operator or function: -, operand type: B");
    ERR(U, "SET a = a - :ns", UE "Incorrect operand type for operator or function; operator or function: -, operand type: NS");
    ERR(U, "SET a = list_append(:s, a)",
        UE "Incorrect operand type for operator or function; operator or function: list_append, operand type: S");
    ERR(U, "SET a = list_append(a, :m)",
        UE "Incorrect operand type for operator or function; operator or function: list_append, operand type: M");
    OK(U, "SET a = a + :n, b = list_append(:l, b)", "(SET a (+ a :v201)) (SET b (list_append :v208 b))");
    /* DynamoDB's ADD and DELETE wording */
    ERR(U, "ADD a :s", UE "Incorrect operand type for operator or function; operator: ADD, operand type: STRING");
    ERR(U, "ADD a :b", UE "Incorrect operand type for operator or function; operator: ADD, operand type: BINARY");
    ERR(U, "ADD a :bool", UE "Incorrect operand type for operator or function; operator: ADD, operand type: BOOLEAN");
    ERR(U, "ADD a :null", UE "Incorrect operand type for operator or function; operator: ADD, operand type: NULL");
    ERR(U, "ADD a :l", UE "Incorrect operand type for operator or function; operator: ADD, operand type: LIST");
    ERR(U, "ADD a :m", UE "Incorrect operand type for operator or function; operator: ADD, operand type: MAP");
    ERR(U, "DELETE a :n", UE "Incorrect operand type for operator or function; operator: DELETE, operand type: NUMBER");
    ERR(U, "DELETE a :s", UE "Incorrect operand type for operator or function; operator: DELETE, operand type: STRING");
    OK(U, "ADD a :n DELETE b :bs", "(ADD a :v201) (DELETE b :v207)");
}

static void test_redundant_parentheses(void **state)
{
    (void)state;
    /* DynamoDB */
    ERR(C, "((attribute_not_exists(pk)))", CE "The expression has redundant parentheses;");
    ERR(C, "((a = :v0)) AND b = :v1", CE "The expression has redundant parentheses;");
    ERR(C, "a = ((:v0))", CE "The expression has redundant parentheses;");
    ERR(C, "((a)) = :v0", CE "The expression has redundant parentheses;");
    ERR(C, "begins_with(((a)), :v0)", CE "The expression has redundant parentheses;");
    OK(C, "((a = :v0) AND (b = :v1))", "(AND (= a :v0) (= b :v1))");
    OK(C, "(NOT (a = :v0))", "(NOT (= a :v0))");
}

static void test_section_twice(void **state)
{
    (void)state;
    ERR(U, "SET a = :v0 SET b = :v1", UE "The \"SET\" section can only be used once in an update expression;");
    ERR(U, "remove a set b = :v0 remove c", UE "The \"REMOVE\" section can only be used once in an update expression;");
    ERR(U, "add a :v0 set b = c add d :v1", UE "The \"ADD\" section can only be used once in an update expression;");
    ERR(U, "delete a :v0 set b = c delete d :v1", UE "The \"DELETE\" section can only be used once in an update expression;");
}

static void test_overlapping_paths(void **state)
{
    (void)state;
    ERR(U, "SET a = :v0 REMOVE a.b",
        UE
        "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]");
    ERR(U, "REMOVE a, #a",
        UE "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a]");
    /* DynamoDB (these four from dynalite's tests against it) */
    ERR(U, "set c.b.#c = a, c = a, #b = a",
        UE "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [c, b, c], path two: "
           "[c]");
    ERR(U, "set a = b remove a, #c, #b",
        UE "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a]");
    ERR(U, "set #c[3].#d = a, #c[3] = a",
        UE "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [c, [3], [3]], path "
           "two: [c, [3]]");
    ERR(U, "remove c, #c.a, #b",
        UE
        "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [c], path two: [c, a]");
    /* overlap outranks conflict (d[1] and d.b conflict first) */
    ERR(U, "set d[1] = a, d.b = a, c[1].a = a, #c = if_not_exists(a)",
        UE "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [c, [1], a], path "
           "two: [c]");
    ERR(P, "a, b, a.b",
        PE
        "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]");
    OK(U, "SET a.b = :v0, a.c = :v1, y[1] = :v2 REMOVE x[1], x[2]",
       "(SET a.b :v0) (SET a.c :v1) (SET y[1] :v2) (REMOVE x[1]) (REMOVE x[2])");
}

static void test_conflicting_paths(void **state)
{
    (void)state;
    ERR(U, "SET a.b = :v0, a[1] = :v1",
        UE "Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, b], path two: "
           "[a, [1]]");
    /* DynamoDB: #d = "[3]" is a name, not an index */
    ERR(U, "set #c[3].#d = a, #c.#d[3] = if_not_exists(a)",
        UE "Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [c, [3], [3]], path "
           "two: [c, [3], [3]]");
    ERR(U, "remove a.#c set a[1] = #d",
        UE "Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, c], path two: "
           "[a, [1]]");
    ERR(P, "a.b, a[0]",
        PE "Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, b], path two: "
           "[a, [0]]");
}

/* ---- which error wins ---- */

static void test_order_condition(void **state)
{
    (void)state;
    /* redundant parentheses, unknown function, misused function, reserved word, then the first of the rest */
    ERR(C, "((foo(a) = :v0))", CE "The expression has redundant parentheses;");
    ERR(C, "attribute_exists(a) = foo(b) AND status = :v0", CE "Invalid function name; function: foo");
    ERR(C, "status = :v0 AND attribute_exists(a) = :v1",
        CE "The function is not allowed to be used this way in an expression; function: attribute_exists");
    ERR(C, "#zz = :zz AND status = :v1", CE "Attribute name is a reserved keyword; reserved keyword: status");
    /* DynamoDB: the first problem in the order written */
    ERR(C, "begins_with(a, :n) AND b = :zz",
        CE "Incorrect operand type for operator or function; operator or function: begins_with, operand type: N");
    ERR(C, "b = :zz AND begins_with(a, :n)",
        CE "An expression attribute value used in expression is not defined; attribute value: :zz");
    ERR(C, "a = a AND #zz = :v0",
        CE "The first operand must be distinct from the remaining operands for this operator or function; operator: =, first "
           "operand: [a]");
    ERR(C, "contains(a) AND #zz = :v0",
        CE "Incorrect number of operands for operator or function; operator or function: contains, number of operands: 1");
}

static void test_order_update(void **state)
{
    (void)state;
    /* DynamoDB (dynalite's tests): a reserved word first, then an unknown function */
    ERR(U, " set #zz = :zz set abOrt = :v0 ", UE "Attribute name is a reserved keyword; reserved keyword: abOrt");
    ERR(U, "set #zz = if_not_exist(:c) set c = d", UE "Invalid function name; function: if_not_exist");
    ERR(U, "SET #zz = :zz SET a = :v0", UE "The \"SET\" section can only be used once in an update expression;");
    ERR(U, "SET a = :zz, #zz = :v0",
        UE "An expression attribute name used in the document path is not defined; attribute name: #zz");
    ERR(U, "SET a = :v0, a = :zz", UE "An expression attribute value used in expression is not defined; attribute value: :zz");
    ERR(U, "SET a[1] = :v0, a.b = :v1, c = :v2 REMOVE c.d",
        UE
        "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [c], path two: [c, d]");
    ERR(U, "SET a = a + :s, a.b = :v0",
        UE
        "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]");
    /* DynamoDB: the ADD operand before list_append's and if_not_exists's problems */
    ERR(U, "set b = list_append(:s, a), c = if_not_exists(a) add a.b :s",
        UE "Incorrect operand type for operator or function; operator: ADD, operand type: STRING");
    ERR(U, "set b = list_append(:s, a), c = if_not_exists(a)",
        UE "Incorrect operand type for operator or function; operator or function: list_append, operand type: S");
}

static void test_order_projection(void **state)
{
    (void)state;
    ERR(P, "#zz, a, a.b, status", PE "Attribute name is a reserved keyword; reserved keyword: status");
    ERR(P, "a, a.b, #zz", PE "An expression attribute name used in the document path is not defined; attribute name: #zz");
    ERR(P, "a.b, a[1], a",
        PE
        "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a, b], path two: [a]");
}

/* ---- key conditions ---- */

static store_expr_keycond_t kc;

static int key(const char *src, const char *sk)
{
    int rc = run(K, src);
    if (rc != 0)
        return rc;
    return store_expr_key_condition(&expr, "pk", 2, sk, sk != NULL ? strlen(sk) : 0, &kc, err, sizeof(err));
}

#define KEY_OK(src, sk) assert_int_equal(key(src, sk), 0)
#define KEY_ERR(src, sk, want)                                                                                                     \
    do {                                                                                                                           \
        assert_int_equal(key(src, sk), STORE_EXPR_EINVALID);                                                                       \
        assert_string_equal(err, want);                                                                                            \
    } while (0)

static void test_key_partition_only(void **state)
{
    (void)state;
    KEY_OK("pk = :v5", "sk");
    assert_int_equal(kc.pk_value, 5);
    assert_int_equal(kc.sk_op, 0);
    KEY_OK("#k = :v6", NULL);
    assert_int_equal(kc.pk_value, 6);
    KEY_OK(":v7 = pk", NULL);
    assert_int_equal(kc.pk_value, 7);
}

static void test_key_sort_conditions(void **state)
{
    static const struct {
        const char *src;
        store_expr_op_t op;
    } cases[] = {
        {"pk = :v0 AND sk = :v1", STORE_EXPR_EQ},  {"pk = :v0 AND sk < :v1", STORE_EXPR_LT},
        {"pk = :v0 AND sk <= :v1", STORE_EXPR_LE}, {"pk = :v0 AND sk > :v1", STORE_EXPR_GT},
        {"pk = :v0 AND sk >= :v1", STORE_EXPR_GE}, {"pk = :v0 AND begins_with(sk, :v1)", STORE_EXPR_BEGINS_WITH},
        {"sk > :v1 AND pk = :v0", STORE_EXPR_GT},  {"(pk = :v0) AND (#s <= :v1)", STORE_EXPR_LE},
        {":v1 < sk AND pk = :v0", STORE_EXPR_GT},  {"pk = :v0 AND :v1 >= sk", STORE_EXPR_LE},
        {"pk = :v0 AND :v1 = sk", STORE_EXPR_EQ},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (key(cases[i].src, "sk") != 0)
            fail_msg("%s: %s", cases[i].src, err);
        assert_int_equal(kc.pk_value, 0);
        assert_int_equal(kc.sk_op, cases[i].op);
        assert_int_equal(kc.sk_values[0], 1);
    }
    KEY_OK("pk = :v0 AND sk BETWEEN :v1 AND :v2", "sk");
    assert_int_equal(kc.sk_op, STORE_EXPR_BETWEEN);
    assert_int_equal(kc.sk_values[0], 1);
    assert_int_equal(kc.sk_values[1], 2);
}

static void test_key_invalid_operators(void **state)
{
    (void)state;
    KEY_ERR("pk = :v0 OR sk = :v1", "sk", "Invalid operator used in KeyConditionExpression: OR");
    KEY_ERR("pk = :v0 AND NOT sk = :v1", "sk", "Invalid operator used in KeyConditionExpression: NOT");
    /* DynamoDB */
    KEY_ERR("pk = :v0 AND sk IN (:v1, :v2)", "sk", "Invalid operator used in KeyConditionExpression: IN");
    KEY_ERR("pk <> :v0", "sk", "Invalid operator used in KeyConditionExpression: <>");
    KEY_ERR("attribute_exists(pk)", "sk", "Invalid operator used in KeyConditionExpression: attribute_exists");
    KEY_ERR("attribute_not_exists(pk)", "sk", "Invalid operator used in KeyConditionExpression: attribute_not_exists");
    KEY_ERR("attribute_type(pk, :t)", "sk", "Invalid operator used in KeyConditionExpression: attribute_type");
    KEY_ERR("pk = :v0 AND contains(sk, :v1)", "sk", "Invalid operator used in KeyConditionExpression: contains");
    KEY_ERR("a > :v0 and size(b) > :v0 or a > :v1", "sk", "Invalid operator used in KeyConditionExpression: OR");
}

static void test_key_invalid_conditions(void **state)
{
    (void)state;
    KEY_ERR("size(sk) > :v0 AND pk = :v1", "sk", "KeyConditionExpressions cannot contain nested operations");
    KEY_ERR("pk = :v0 AND sk BETWEEN size(a) AND :v1", "sk", "KeyConditionExpressions cannot contain nested operations");
    KEY_ERR(":v0 BETWEEN sk AND :v1", "sk",
            "Invalid condition in KeyConditionExpression: BETWEEN operator must have the key attribute as its first operand");
    KEY_ERR("begins_with(:v0, sk) AND pk = :v1", "sk",
            "Invalid condition in KeyConditionExpression: begins_with operator must have the key attribute as its first operand");
    KEY_ERR("pk = sk", "sk", "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition");
    KEY_ERR("begins_with(pk, sk)", "sk",
            "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition");
    KEY_ERR("pk.x = :v0", "sk", "KeyConditionExpressions cannot have conditions on nested attributes");
    KEY_ERR("pk[0] = :v0", "sk", "KeyConditionExpressions cannot have conditions on nested attributes");
    KEY_ERR(":v0 = :v1 AND pk = :v2", "sk", "Invalid condition in KeyConditionExpression: No key attribute specified");
}

static void test_key_schema(void **state)
{
    (void)state;
    /* DynamoDB: both messages */
    KEY_ERR("pk = :v0 AND sk > :v1 AND sk < :v2", "sk", KE "KeyConditionExpressions must only contain one condition per key");
    KEY_ERR("pk = :v0 AND sk > :v1 AND extra = :v2", "sk",
            "The number of query conditions (3) exceeds the number of key attributes defined in the schema (2)");
    KEY_ERR("pk = :v0 AND sk = :v1", NULL,
            "The number of query conditions (2) exceeds the number of key attributes defined in the schema (1)");
    KEY_ERR("pk = :v0 AND pk = :v1", "sk", KE "KeyConditionExpressions must only contain one condition per key");
    KEY_ERR("sk = :v0", "sk", "Query condition missed key schema element: pk");
    KEY_ERR("oth = :v0 AND sk = :v1", "sk", "Query condition missed key schema element: pk");
    KEY_ERR("pk = :v0 AND wrong = :v1", "sk", "Query condition missed key schema element: sk");
    KEY_ERR("x = :v0", NULL, "Query condition missed key schema element: pk");
    KEY_ERR("pk > :v0", "sk", "Query key condition not supported");
    KEY_ERR("begins_with(pk, :v0)", "sk", "Query key condition not supported");
    KEY_ERR("pk BETWEEN :v0 AND :v1 AND sk = :v2", "sk", "Query key condition not supported");
}

static void test_key_parse_errors(void **state)
{
    (void)state;
    /* DynamoDB: the operand types, named in the KeyConditionExpression */
    KEY_ERR("pk = :v0 AND begins_with(sk, :n)", "sk",
            KE "Incorrect operand type for operator or function; operator or function: begins_with, operand type: N");
    KEY_ERR("pk = :v0 AND sk < :bool", "sk",
            KE "Incorrect operand type for operator or function; operator or function: <, operand type: BOOL");
    KEY_ERR("pk = :v0 AND :bool >= sk", "sk",
            KE "Incorrect operand type for operator or function; operator or function: >=, operand type: BOOL");
    KEY_ERR("pk = :v0 AND sk BETWEEN :bool AND :bool", "sk",
            KE "Incorrect operand type for operator or function; operator or function: BETWEEN, operand type: BOOL");
    KEY_ERR("pk = :missing AND begins_with(sk, :n)", "sk",
            KE "An expression attribute value used in expression is not defined; attribute value: :missing");
    KEY_ERR("begins_with(sk, :n) AND pk = :missing", "sk",
            KE "Incorrect operand type for operator or function; operator or function: begins_with, operand type: N");
    KEY_ERR("a > 4", "sk", KE "Syntax error; token: \"4\", near: \"> 4\"");
}

/* ---- more constructs and corners ---- */

static void test_cond_function_arguments(void **state)
{
    (void)state;
    OK(C, "contains(a, size(b))", "(contains a (size b))");
    OK(C, "begins_with((a), (:v0))", "(begins_with a :v0)");
    OK(C, "contains(a.b[0], #n)", "(contains a.b[0] \"x.y\")");
    OK(C, "size(a[1].b) <> size(:v0)", "(<> (size a[1].b) (size :v0))");
}

static void test_function_names_as_paths(void **state)
{
    (void)state;
    OK(C, "contains = :v0", "(= contains :v0)");
    OK(C, "begins_with.attribute_exists = :v0", "(= begins_with.attribute_exists :v0)");
    OK(U, "SET if_not_exists = list_append", "(SET if_not_exists list_append)");
    OK(P, "attribute_type, list_append", "attribute_type, list_append");
    ERR(P, "size", PE "Attribute name is a reserved keyword; reserved keyword: size");
}

static void test_cond_between_and_chain(void **state)
{
    (void)state;
    OK(C, "a BETWEEN :v0 AND :v1 AND b BETWEEN :v2 AND :v3", "(AND (BETWEEN a :v0 :v1) (BETWEEN b :v2 :v3))");
    ERR(C, "a BETWEEN :v0 AND :v1 AND :v2", CE "Syntax error; token: \"<EOF>\", near: \":v2\"");
    ERR(C, "a BETWEEN :v0", CE "Syntax error; token: \"<EOF>\", near: \":v0\"");
}

static void test_update_names(void **state)
{
    (void)state;
    OK(U, "SET #n = :v0", "(SET \"x.y\" :v0)");
    assert_int_equal(expr.actions[0].path.n, 1);
    assert_int_equal(expr.actions[0].path.elems[0].len, 3);
    OK(U, "REMOVE #n.#d[0]", "(REMOVE \"x.y\".\"[3]\"[0])");
    OK(U, "SET a = #n.b + :v0", "(SET a (+ \"x.y\".b :v0))");
}

static void test_update_value_paths_may_overlap(void **state)
{
    (void)state;
    /* only the targets are checked, not the paths read */
    OK(U, "SET a = a.b + a[1]", "(SET a (+ a.b a[1]))");
    OK(U, "SET a = b, c = b, d = list_append(b, b)", "(SET a b) (SET c b) (SET d (list_append b b))");
}

static void test_projection_syntax_errors(void **state)
{
    (void)state;
    ERR(P, "a.", PE "Syntax error; token: \"<EOF>\", near: \".\"");
    ERR(P, "a[", PE "Syntax error; token: \"<EOF>\", near: \"[\"");
    ERR(P, "a[1", PE "Syntax error; token: \"<EOF>\", near: \"1\"");
    ERR(P, "(a)", PE "Syntax error; token: \"(\", near: \"(a\"");
    ERR(P, "a,,b", PE "Syntax error; token: \",\", near: \",,b\"");
    ERR(P, ":v0", PE "Syntax error; token: \":v0\", near: \":v0\"");
    ERR(P, "a = b", PE "Syntax error; token: \"=\", near: \"a = b\"");
}

static void test_placeholder_spelling(void **state)
{
    (void)state;
    ERR(C, "#a_1 = :v0", CE "An expression attribute name used in the document path is not defined; attribute name: #a_1");
    ERR(C, "a = :v_1", CE "An expression attribute value used in expression is not defined; attribute value: :v_1");
    ERR(C, "#1 = :01", CE "An expression attribute name used in the document path is not defined; attribute name: #1");
    ERR(C, "a = :01", CE "An expression attribute value used in expression is not defined; attribute value: :01");
    ERR(C, "a = : v0", CE "Syntax error; token: \":\", near: \"= : v0\"");
    ERR(C, "# a = :v0", CE "Syntax error; token: \"#\", near: \"# a\"");
}

static void test_syntax_error_multibyte(void **state)
{
    (void)state;
    ERR(C, "a = \xf0\x9f\x98\x80", CE "Syntax error; token: \"\xf0\x9f\x98\x80\", near: \"= \xf0\x9f\x98\x80\"");
    ERR(P, "\xe2\x82\xac", PE "Syntax error; token: \"\xe2\x82\xac\", near: \"\xe2\x82\xac\"");
    /* a truncated sequence is one token */
    assert_int_equal(run_len(P, "\xf0\x9f", 2), STORE_EXPR_EINVALID);
    assert_string_equal(err, PE "Syntax error; token: \"\xf0\x9f\", near: \"\xf0\x9f\"");
}

static void test_in_counts_as_one_operator(void **state)
{
    static char src[4096];
    size_t at = 0;
    (void)state;
    /* 150 INs joined by 149 ORs: 299 operators, whatever their operand count */
    for (int i = 0; i < 150; i++)
        at += (size_t)snprintf(src + at, sizeof(src) - at, "%sa IN (:v1,:v2)", i ? " OR " : "");
    assert_true(at <= STORE_EXPR_MAX_SIZE);
    assert_int_equal(run(C, src), 0);
    at += (size_t)snprintf(src + at, sizeof(src) - at, " OR b = :v0");
    ERR(C, src, CE "The expression contains too many operators; operator count: 301");
}

static void test_error_clears_output(void **state)
{
    (void)state;
    assert_int_equal(run(C, "a = :v0"), 0);
    assert_non_null(expr.cond);
    assert_int_equal(run(C, "a = :zz"), STORE_EXPR_EINVALID);
    assert_null(expr.cond);
    assert_int_equal(run(U, "SET a = :v0"), 0);
    assert_int_equal(run(U, "SET a = :v0, a = :v1"), STORE_EXPR_EINVALID);
    assert_null(expr.actions);
    assert_int_equal(expr.nactions, 0);
    assert_int_equal(run(P, "a, a"), STORE_EXPR_EINVALID);
    assert_null(expr.paths);
}

static void test_key_with_placeholders(void **state)
{
    (void)state;
    KEY_OK("#k = :v3 AND #s BETWEEN :v4 AND :v5", "sk");
    assert_int_equal(kc.pk_value, 3);
    assert_int_equal(kc.sk_op, STORE_EXPR_BETWEEN);
    assert_int_equal(kc.sk_values[0], 4);
    assert_int_equal(kc.sk_values[1], 5);
    KEY_OK("begins_with(#s, :s) AND #k = :v1", "sk");
    assert_int_equal(kc.sk_op, STORE_EXPR_BEGINS_WITH);
    assert_int_equal(kc.sk_values[0], NPLAIN + 0);
    assert_int_equal(kc.pk_value, 1);
    KEY_ERR("#a = :v0", "sk", "Query condition missed key schema element: pk");
}

static void test_key_nested_ands(void **state)
{
    (void)state;
    KEY_OK("(pk = :v0) AND (sk >= :v1)", "sk");
    assert_int_equal(kc.sk_op, STORE_EXPR_GE);
    KEY_ERR("(pk = :v0 AND sk > :v1) AND (sk > :v1 AND x = :v2)", "sk",
            KE "KeyConditionExpressions must only contain one condition per key");
    KEY_ERR("pk = :v0 AND NOT sk = :v1 OR x = :v2", "sk", "Invalid operator used in KeyConditionExpression: OR");
}

static void test_reserved_in_every_position(void **state)
{
    (void)state;
    ERR(C, "a IN (:v0, b.data)", CE "Attribute name is a reserved keyword; reserved keyword: data");
    ERR(C, "attribute_exists(a.b.c.Timestamp)", CE "Attribute name is a reserved keyword; reserved keyword: Timestamp");
    ERR(U, "SET a = if_not_exists(year, :v0)", UE "Attribute name is a reserved keyword; reserved keyword: year");
    ERR(U, "ADD counter :n", UE "Attribute name is a reserved keyword; reserved keyword: counter");
    ERR(U, "DELETE tags.value :ss", UE "Attribute name is a reserved keyword; reserved keyword: value");
    ERR(K, "pk = :v0 AND date > :v1", KE "Attribute name is a reserved keyword; reserved keyword: date");
}

static void test_misc_valid(void **state)
{
    (void)state;
    OK(C, "attribute_not_exists(pk) AND attribute_not_exists(sk)", "(AND (attribute_not_exists pk) (attribute_not_exists sk))");
    OK(C, "#a IN (:v0) OR (NOT contains(#b, :v1) AND size(#c) >= :v2)",
       "(OR (IN a :v0) (AND (NOT (contains b :v1)) (>= (size c) :v2)))");
    OK(U, "SET counter_1 = counter_1 + :n, updated_at = :s REMOVE tmp",
       "(SET counter_1 (+ counter_1 :v201)) (SET updated_at :v200) (REMOVE tmp)");
    OK(P, "id, title, authors[0], info.rating", "id, title, authors[0], info.rating");
}

/* ---- the API around ---- */

static void test_kind_names(void **state)
{
    (void)state;
    assert_string_equal(store_expr_kind_name(C), "ConditionExpression");
    assert_string_equal(store_expr_kind_name(F), "FilterExpression");
    assert_string_equal(store_expr_kind_name(K), "KeyConditionExpression");
    assert_string_equal(store_expr_kind_name(P), "ProjectionExpression");
    assert_string_equal(store_expr_kind_name(U), "UpdateExpression");
}

static void test_format_truncates(void **state)
{
    char small[8];
    (void)state;
    assert_int_equal(run(C, "a = :v0 AND b = :v1"), 0);
    assert_int_equal(store_expr_format(&expr, small, sizeof(small)), strlen("(AND (= a :v0) (= b :v1))"));
    assert_string_equal(small, "(AND (=");
    assert_int_equal(store_expr_format(&expr, NULL, 0), strlen(ast));
}

static void test_error_truncates(void **state)
{
    store_expr_env_t env = make_env();
    char small[16];
    (void)state;
    memset(small, 'x', sizeof(small));
    assert_int_equal(store_expr_parse(C, "a x", 3, &env, &expr, small, sizeof(small)), STORE_EXPR_EINVALID);
    assert_string_equal(small, "Invalid Conditi");
    assert_int_equal(store_expr_parse(U, "SET status = :v0", 16, &env, &expr, small, 4), STORE_EXPR_EINVALID);
    assert_string_equal(small, "Inv");
    assert_int_equal(store_expr_parse(U, "SET status = :v0", 16, &env, &expr, NULL, 0), STORE_EXPR_EINVALID);
    assert_null(expr.actions);
    assert_int_equal(store_expr_parse(U, "SET a = :v0", 11, &env, &expr, NULL, 0), 0);
}

static void test_source_not_nul_terminated(void **state)
{
    (void)state;
    assert_int_equal(run_len(C, "a = :v0 AND garbage", 7), 0);
    assert_string_equal(ast, "(= a :v0)");
    assert_int_equal(run_len(P, "abc", 2), 0);
    assert_string_equal(ast, "ab");
    assert_int_equal(run_len(C, "a = :v12", 7), 0);
    assert_string_equal(ast, "(= a :v1)");
}

static void test_out_of_memory(void **state)
{
    static const struct {
        store_expr_kind_t kind;
        const char *src;
    } cases[] = {
        {C, "a = :v0 AND (b.c[1] IN (:v1, :v2, :v3, :v4, :v5) OR NOT begins_with(#n, :s)) AND size(d) BETWEEN :v6 AND :v7"},
        {C, "status = :zz AND a = a AND foo(b)"},
        {U, "SET a = list_append(if_not_exists(a, :v0), :v1), b = b + :v2 REMOVE c[1], d ADD e :v3 DELETE f :v4"},
        {U, "SET a = :v0 REMOVE a.b, a[1] SET c = :zz"},
        {P, "a, b.c, #n[1], d"},
        {P, "a, a.b"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t total;
        int want;
        fail_after = -1;
        nallocs = 0;
        want = run(cases[i].kind, cases[i].src);
        total = nallocs;
        assert_true(total > 0);
        arena_free();
        for (size_t k = 0; k < total; k++) {
            fail_after = (long)k;
            assert_int_equal(run(cases[i].kind, cases[i].src), STORE_EXPR_ENOMEM);
            assert_string_equal(err, "out of memory");
            assert_null(expr.cond);
            arena_free();
        }
        fail_after = -1;
        assert_int_equal(run(cases[i].kind, cases[i].src), want);
    }
}

/* ---- robustness ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

/* Every node of a returned AST is well formed. */
static void check_node(const store_expr_node_t *n, int depth)
{
    assert_true(depth < 5000);
    assert_true(n->op >= STORE_EXPR_PATH && n->op <= STORE_EXPR_CONTAINS);
    if (n->op == STORE_EXPR_PATH) {
        assert_true(n->path.n >= 1);
        assert_non_null(n->path.elems[0].name);
        return;
    }
    if (n->op == STORE_EXPR_VALUE) {
        assert_true(n->value < NPLAIN + NSPECIALS);
        assert_int_equal(n->nargs, 0);
        return;
    }
    assert_true(n->nargs >= 1);
    for (uint32_t i = 0; i < n->nargs; i++)
        check_node(n->args[i], depth + 1);
}

static void check_result(store_expr_kind_t kind, int rc)
{
    char small[7];
    if (rc != 0) {
        char prefix[64];
        assert_int_equal(rc, STORE_EXPR_EINVALID);
        snprintf(prefix, sizeof(prefix), "Invalid %s: ", store_expr_kind_name(kind));
        assert_int_equal(strncmp(err, prefix, strlen(prefix)), 0);
        assert_true(strlen(err) > strlen(prefix));
        return;
    }
    assert_int_equal(expr.kind, kind);
    assert_true(store_expr_format(&expr, small, sizeof(small)) == strlen(ast));
    if (kind == P) {
        assert_true(expr.npaths >= 1);
    } else if (kind == U) {
        assert_true(expr.nactions >= 1);
        for (size_t i = 0; i < expr.nactions; i++)
            if (expr.actions[i].value != NULL)
                check_node(expr.actions[i].value, 0);
    } else {
        store_expr_keycond_t out;
        char kerr[256];
        int krc;
        assert_non_null(expr.cond);
        check_node(expr.cond, 0);
        krc = store_expr_key_condition(&expr, "a", 1, rnd() % 2 ? "b" : NULL, 1, &out, kerr, sizeof(kerr));
        assert_true(krc == 0 || (krc == STORE_EXPR_EINVALID && kerr[0] != '\0'));
    }
}

static void test_random_garbage(void **state)
{
    static const char *const pieces[] = {
        "a",
        "b",
        "c.d",
        "#a",
        "#n",
        "#zz",
        ":v0",
        ":v1",
        ":s",
        ":n",
        ":zz",
        "(",
        ")",
        "(",
        ")",
        "[",
        "]",
        "[1]",
        "1",
        ".",
        ",",
        "=",
        "<>",
        "<",
        "<=",
        ">",
        ">=",
        " AND ",
        " OR ",
        "NOT ",
        " BETWEEN ",
        " IN ",
        "size",
        "size(",
        "begins_with(",
        "contains",
        "attribute_exists(",
        "attribute_type",
        "if_not_exists(",
        "list_append(",
        "SET ",
        " REMOVE ",
        " ADD ",
        " DELETE ",
        "+",
        "-",
        " ",
        "status",
        "\xc3\xa9",
        "!",
        "\"",
        "_",
        "#",
        ":",
        "\t",
        "\xff",
        "foo(",
        "and",
        "set",
        "\n",
    };
    static char src[8192];
    unsigned parsed = 0;
    (void)state;
    for (int iter = 0; iter < 6000; iter++) {
        size_t len = 0;
        if (iter % 4 == 3) {
            /* raw bytes */
            size_t n = rnd() % 64;
            for (size_t i = 0; i < n; i++)
                src[len++] = (char)(rnd() % 256);
        } else {
            size_t n = 1 + rnd() % 40;
            for (size_t i = 0; i < n; i++) {
                const char *piece = pieces[rnd() % (sizeof(pieces) / sizeof(pieces[0]))];
                size_t pl = strlen(piece);
                memcpy(src + len, piece, pl);
                len += pl;
            }
        }
        src[len] = '\0';
        for (int kind = C; kind <= U; kind++) {
            use_types = (int)(rnd() % 2);
            int rc = run_len((store_expr_kind_t)kind, src, len);
            check_result((store_expr_kind_t)kind, rc);
            parsed += rc == 0;
            arena_free();
        }
    }
    assert_true(parsed > 0);
}

static void test_random_mutations(void **state)
{
    static const struct {
        store_expr_kind_t kind;
        const char *src;
    } seeds[] = {
        {C, "a = :v0 AND (b.c[1] IN (:v1, :v2) OR NOT begins_with(#n, :s)) AND size(d) BETWEEN :v6 AND :v7"},
        {C, "attribute_exists(a) OR attribute_type(b, :t) AND contains(c, :v1) AND (x) <> (:v2)"},
        {K, "pk = :v0 AND sk BETWEEN :v1 AND :v2"},
        {U, "SET a = list_append(if_not_exists(a, :v0), :v1), b = (b + :v2) REMOVE c[1], d ADD e :n DELETE f :ss"},
        {P, "a, b.c, #n[1], d[2][3].e"},
    };
    static const char alphabet[] = "ab#:v0s()[],.=<>+- ANDORNOTINBETWEENSETREMOVEADDDELETE_\x80";
    static char src[512];
    unsigned parsed = 0;
    (void)state;
    for (int iter = 0; iter < 6000; iter++) {
        size_t s = rnd() % (sizeof(seeds) / sizeof(seeds[0])), len = strlen(seeds[s].src);
        memcpy(src, seeds[s].src, len + 1);
        for (unsigned m = 1 + rnd() % 3; m > 0 && len > 0 && len < sizeof(src) - 2; m--) {
            size_t at = rnd() % len;
            switch (rnd() % 3) {
            case 0: /* delete */
                memmove(src + at, src + at + 1, len - at);
                len--;
                break;
            case 1: /* insert */
                memmove(src + at + 1, src + at, len - at + 1);
                src[at] = alphabet[rnd() % (sizeof(alphabet) - 1)];
                len++;
                break;
            default: /* replace */
                src[at] = alphabet[rnd() % (sizeof(alphabet) - 1)];
                break;
            }
        }
        for (int kind = C; kind <= U; kind++) {
            store_expr_kind_t k = rnd() % 2 ? seeds[s].kind : (store_expr_kind_t)kind;
            int rc = run_len(k, src, len);
            check_result(k, rc);
            parsed += rc == 0;
            arena_free();
        }
    }
    assert_true(parsed > 100);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_cond_comparators),
        T(test_cond_operands_either_side),
        T(test_cond_between),
        T(test_cond_in),
        T(test_cond_in_100_operands),
        T(test_cond_and_or_precedence),
        T(test_cond_not_precedence),
        T(test_cond_parentheses),
        T(test_cond_keywords_case_insensitive),
        T(test_cond_functions),
        T(test_cond_paths),
        T(test_cond_whitespace),
        T(test_filter_kind),
        T(test_placeholder_names),
        T(test_placeholder_values),
        T(test_placeholder_uses_reported),
        T(test_placeholder_undefined),
        T(test_placeholder_no_lookups),
        T(test_update_set),
        T(test_update_arithmetic),
        T(test_update_functions),
        T(test_update_remove_add_delete),
        T(test_update_clause_order_and_case),
        T(test_projection),
        T(test_syntax_error_tokens),
        T(test_syntax_error_eof),
        T(test_syntax_error_bare_operands),
        T(test_syntax_error_functions),
        T(test_syntax_error_characters),
        T(test_syntax_error_update),
        T(test_syntax_error_wins),
        T(test_limit_empty),
        T(test_limit_size),
        T(test_limit_operators),
        T(test_limit_update_operators),
        T(test_limit_deep_nesting),
        T(test_reserved_words),
        T(test_reserved_word_table),
        T(test_unknown_function),
        T(test_misused_function),
        T(test_operand_count),
        T(test_distinct_operands),
        T(test_document_path_required),
        T(test_condition_operand_types),
        T(test_operand_types_need_value_type),
        T(test_update_operand_types),
        T(test_redundant_parentheses),
        T(test_section_twice),
        T(test_overlapping_paths),
        T(test_conflicting_paths),
        T(test_order_condition),
        T(test_order_update),
        T(test_order_projection),
        T(test_key_partition_only),
        T(test_key_sort_conditions),
        T(test_key_invalid_operators),
        T(test_key_invalid_conditions),
        T(test_key_schema),
        T(test_key_parse_errors),
        T(test_cond_function_arguments),
        T(test_function_names_as_paths),
        T(test_cond_between_and_chain),
        T(test_update_names),
        T(test_update_value_paths_may_overlap),
        T(test_projection_syntax_errors),
        T(test_placeholder_spelling),
        T(test_syntax_error_multibyte),
        T(test_in_counts_as_one_operator),
        T(test_error_clears_output),
        T(test_key_with_placeholders),
        T(test_key_nested_ands),
        T(test_reserved_in_every_position),
        T(test_misc_valid),
        T(test_kind_names),
        T(test_format_truncates),
        T(test_error_truncates),
        T(test_source_not_nul_terminated),
        T(test_out_of_memory),
        T(test_random_garbage),
        T(test_random_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
