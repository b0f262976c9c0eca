/*
 * A libFuzzer target for the item store's expression parser (store/expr.h) and evaluator (store/eval.h).
 *
 * Input: one selector byte, then the expression's bytes as they are (any bytes, NUL included, not NUL-terminated).
 * The selector v, counted from '0': v % 5 is the kind ('0' condition, '1' filter, '2' key condition, '3' projection,
 * '4' update), (v / 5) & 1 leaves the value types out of the parser's environment (no static type checks), and
 * (v / 10) & 1 makes the parser's allocator fail after as many allocations as the byte after the selector says (the
 * expression then starts one byte later). So '0'..'4': typed; '5'..'9': untyped; ':'..'>': typed, with an allocation
 * failure; '?'..'C': untyped, with an allocation failure.
 *
 * The placeholders: #a #b #c #pk #sk #l #m #dot (an attribute named "x.y"), #br ("[3]"), #e (an empty name) and a
 * few :values of every type are defined; anything else (#u, :u, ...) is not. What parses is evaluated against a small
 * item of every type: conditions (store_eval_check, then on the item and on no item; key conditions also against two
 * key schemas), projections, and updates (on a copy of the item, and on a new item), whose result goes through
 * store_item_check as the store's callers do. Beside the sanitizers' findings, the target aborts when a documented
 * property does not hold: store_expr_format's length, an update that fails leaving its item unchanged.
 *
 * Every parser allocation comes from an arena freed after each input; all JSON is released (libFuzzer's leak
 * detection sees any leak in parse or eval). FUZZ_VERBOSE=1 in the environment prints what each input parses to (or
 * the parser's error): running the target on the seed files shows what they are.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "store/eval.h"
#include "store/expr.h"
#include "store/value.h"

#define CHECK(cond, what)                                                                                                          \
    do {                                                                                                                           \
        if (!(cond)) {                                                                                                             \
            fprintf(stderr, "fuzz_expr: %s:%d: %s\n", __FILE__, __LINE__, (what));                                                 \
            abort();                                                                                                               \
        }                                                                                                                          \
    } while (0)

/* ---- the arena: every parser allocation, freed after each input ---- */

typedef struct block {
    struct block *next;
    max_align_t data[];
} block_t;

typedef struct arena {
    block_t *blocks;
    long fail_after; /* allocations that succeed before one fails; -1: none fails */
} arena_t;

static void *arena_alloc(size_t size, void *ud)
{
    arena_t *a = ud;
    block_t *b;

    if (a->fail_after == 0)
        return NULL;
    if (a->fail_after > 0)
        a->fail_after--;
    if ((b = malloc(sizeof(*b) + size)) == NULL)
        return NULL;
    b->next = a->blocks;
    a->blocks = b;
    return b->data;
}

static void arena_free(arena_t *a)
{
    while (a->blocks != NULL) {
        block_t *b = a->blocks;
        a->blocks = b->next;
        free(b);
    }
}

/* ---- placeholders ---- */

static const struct {
    const char *ph, *name;
} names[] = {
    {"#a", "a"},    {"#b", "b"}, {"#c", "c"},   {"#pk", "pk"}, {"#sk", "sk"}, {"#l", "l"}, {"#m", "m"},           {"#dot", "x.y"},
    {"#br", "[3]"}, {"#e", ""},  {"#ss", "ss"}, {"#ns", "ns"}, {"#t", "t"},   {"#z", "z"}, {"#status", "status"},
};
#define NNAMES (sizeof(names) / sizeof(names[0]))

static const struct {
    const char *ph, *json;
} value_defs[] = {
    {":s", "{\"S\": \"abc\"}"},
    {":s2", "{\"S\": \"b\"}"},
    {":e", "{\"S\": \"\"}"},
    {":n", "{\"N\": \"1\"}"},
    {":n2", "{\"N\": \"-2.5\"}"},
    {":big", "{\"N\": \"9.9999999999999999999999999999999999999E+125\"}"},
    {":tiny", "{\"N\": \"1E-130\"}"},
    {":b", "{\"B\": \"YWJj\"}"},
    {":b0", "{\"B\": \"\"}"},
    {":bool", "{\"BOOL\": true}"},
    {":null", "{\"NULL\": true}"},
    {":ss", "{\"SS\": [\"a\", \"b\"]}"},
    {":ns", "{\"NS\": [\"1\", \"2\"]}"},
    {":bs", "{\"BS\": [\"YQ==\"]}"},
    {":l", "{\"L\": [{\"N\": \"1\"}, {\"S\": \"x\"}]}"},
    {":m", "{\"M\": {\"a\": {\"N\": \"1\"}, \"b\": {\"M\": {\"c\": {\"S\": \"x\"}}}}}"},
    {":t", "{\"S\": \"N\"}"},
    {":tx", "{\"S\": \"X\"}"},
};
#define NVALUES (sizeof(value_defs) / sizeof(value_defs[0]))

static const char item_json[] =
    "{\"pk\": {\"S\": \"k1\"}, \"sk\": {\"N\": \"5\"}, \"a\": {\"N\": \"1\"}, \"b\": {\"S\": \"abc\"}, \"c\": {\"B\": \"YWJj\"},"
    " \"l\": {\"L\": [{\"N\": \"1\"}, {\"S\": \"x\"}, {\"L\": [{\"N\": \"2\"}]}, {\"M\": {\"a\": {\"N\": \"3\"}}}]},"
    " \"m\": {\"M\": {\"a\": {\"N\": \"1\"}, \"b\": {\"M\": {\"c\": {\"S\": \"x\"}}}, \"l\": {\"L\": []}}},"
    " \"ss\": {\"SS\": [\"a\", \"b\"]}, \"ns\": {\"NS\": [\"1\", \"2\"]}, \"bs\": {\"BS\": [\"YQ==\"]},"
    " \"t\": {\"BOOL\": true}, \"z\": {\"NULL\": true}, \"x.y\": {\"S\": \"dotted\"}, \"[3]\": {\"N\": \"3\"}}";

static json_t *values[NVALUES]; /* checked and normalized, by index */
static json_t *item;            /* checked and normalized */
static json_t *key_item;        /* the key alone: what an update of a new item starts from */
static int verbose;             /* FUZZ_VERBOSE=1: print what each input parses to (to see what the seeds do) */

static int lookup_name(void *ud, const char *ph, size_t len, const char **out, size_t *outlen)
{
    (void)ud;
    for (size_t i = 0; i != NNAMES; ++i) {
        if (strlen(names[i].ph) == len && memcmp(names[i].ph, ph, len) == 0) {
            *out = names[i].name;
            *outlen = strlen(names[i].name);
            return 0;
        }
    }
    return 1;
}

static int lookup_value(void *ud, const char *ph, size_t len, size_t *index)
{
    (void)ud;
    for (size_t i = 0; i != NVALUES; ++i) {
        if (strlen(value_defs[i].ph) == len && memcmp(value_defs[i].ph, ph, len) == 0) {
            *index = i;
            return 0;
        }
    }
    return 1;
}

static store_expr_vtype_t value_type(void *ud, size_t index)
{
    static const store_expr_vtype_t map[] = {
        [STORE_T_NONE] = STORE_EXPR_VT_UNKNOWN, [STORE_T_S] = STORE_EXPR_VT_S,       [STORE_T_N] = STORE_EXPR_VT_N,
        [STORE_T_B] = STORE_EXPR_VT_B,          [STORE_T_BOOL] = STORE_EXPR_VT_BOOL, [STORE_T_NULL] = STORE_EXPR_VT_NULL,
        [STORE_T_L] = STORE_EXPR_VT_L,          [STORE_T_M] = STORE_EXPR_VT_M,       [STORE_T_SS] = STORE_EXPR_VT_SS,
        [STORE_T_NS] = STORE_EXPR_VT_NS,        [STORE_T_BS] = STORE_EXPR_VT_BS,
    };
    (void)ud;
    CHECK(index < NVALUES, "value_type: an index the lookup never gave");
    return map[store_value_type(values[index])];
}

static int value_s(void *ud, size_t index, const char **s, size_t *len)
{
    (void)ud;
    CHECK(index < NVALUES, "value_s: an index the lookup never gave");
    json_t *v = json_object_get(values[index], "S");
    if (!json_is_string(v))
        return 1;
    *s = json_string_value(v);
    *len = json_string_length(v);
    return 0;
}

static json_t *checked(const char *text, int is_item)
{
    char err[STORE_EXPR_ERR_MAX];
    json_t *v = json_loads(text, 0, NULL);

    if (v == NULL || (is_item ? store_item_check(v, err, sizeof(err)) : store_value_check(v, err, sizeof(err))) != 0) {
        fprintf(stderr, "fuzz_expr: a bad built-in value: %s\n", text);
        abort();
    }
    return v;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    verbose = getenv("FUZZ_VERBOSE") != NULL && strcmp(getenv("FUZZ_VERBOSE"), "1") == 0;
    for (size_t i = 0; i != NVALUES; ++i)
        values[i] = checked(value_defs[i].json, 0);
    item = checked(item_json, 1);
    key_item = checked("{\"pk\": {\"S\": \"k1\"}, \"sk\": {\"N\": \"5\"}}", 1);
    return 0;
}

/* ---- one input ---- */

static void serialize_and_drop(json_t *o)
{
    char *text = json_dumps(o, JSON_COMPACT);
    CHECK(text != NULL, "json_dumps failed on an evaluation's result");
    free(text);
    json_decref(o);
}

static void check_format(const store_expr_t *e)
{
    char small[16], *buf;
    size_t need = store_expr_format(e, NULL, 0);

    CHECK(store_expr_format(e, small, sizeof(small)) == need, "store_expr_format: another length with a small buffer");
    CHECK(strlen(small) == (need < sizeof(small) ? need : sizeof(small) - 1), "store_expr_format: not truncated as snprintf");
    CHECK((buf = malloc(need + 1)) != NULL, "out of memory");
    CHECK(store_expr_format(e, buf, need + 1) == need && strlen(buf) == need, "store_expr_format: wrong length");
    free(buf);
}

static void eval_condition(const store_expr_t *e)
{
    char err[STORE_EXPR_ERR_MAX];
    int rc;

    rc = store_eval_check(e, values, err, sizeof(err));
    CHECK(rc == 0 || rc == STORE_EVAL_EINVALID, "store_eval_check: an unexpected result");
    rc = store_eval_condition(e, item, values, err, sizeof(err));
    CHECK(rc == 0 || rc == 1 || rc == STORE_EVAL_EINVALID, "store_eval_condition: an unexpected result");
    rc = store_eval_condition(e, NULL, values, err, sizeof(err));
    CHECK(rc == 0 || rc == 1 || rc == STORE_EVAL_EINVALID, "store_eval_condition (no item): an unexpected result");
    if (e->kind == STORE_EXPR_KEY_CONDITION) {
        store_expr_keycond_t kc;
        if (store_expr_key_condition(e, "pk", 2, "sk", 2, &kc, err, sizeof(err)) == 0) {
            CHECK(kc.pk_value < NVALUES, "store_expr_key_condition: a bad value index");
            CHECK(kc.sk_op == 0 || (kc.sk_values[0] < NVALUES && (kc.sk_op != STORE_EXPR_BETWEEN || kc.sk_values[1] < NVALUES)),
                  "store_expr_key_condition: a bad sort key value index");
        }
        (void)store_expr_key_condition(e, "pk", 2, NULL, 0, &kc, err, sizeof(err));
        (void)store_expr_key_condition(e, "x.y", 3, "[3]", 3, &kc, err, sizeof(err));
    }
}

static void eval_projection(const store_expr_t *e)
{
    json_t *p = store_eval_project(e, item);
    CHECK(p != NULL, "store_eval_project: NULL");
    serialize_and_drop(p);
    CHECK((p = store_eval_project(e, NULL)) != NULL && json_object_size(p) == 0, "store_eval_project (no item): not empty");
    json_decref(p);
}

static void eval_update_on(const store_expr_t *e, const json_t *start, int existed)
{
    char err[STORE_EXPR_ERR_MAX];
    json_t *it = json_deep_copy(start), *old = json_object(), *new = json_object();
    int rc;

    CHECK(it != NULL && old != NULL && new != NULL, "out of memory");
    rc = store_eval_update(e, it, existed, values, old, new, err, sizeof(err));
    CHECK(rc == 0 || rc == STORE_EVAL_EINVALID, "store_eval_update: an unexpected result");
    if (rc == STORE_EVAL_EINVALID) {
        /* documented: an update that fails leaves the item (and the ReturnValues objects) as they were */
        CHECK(json_equal(it, start), "store_eval_update failed but changed the item");
        CHECK(json_object_size(old) == 0 && json_object_size(new) == 0, "store_eval_update failed but filled ReturnValues");
    } else {
        /* what the store does next with an updated item */
        (void)store_item_check(it, err, sizeof(err));
        (void)store_item_size(it);
    }
    serialize_and_drop(old);
    serialize_and_drop(new);
    serialize_and_drop(it);
}

static void eval_update(const store_expr_t *e)
{
    char err[STORE_EXPR_ERR_MAX];
    int rc = store_eval_check(e, values, err, sizeof(err));

    CHECK(rc == 0 || rc == STORE_EVAL_EINVALID, "store_eval_check: an unexpected result");
    eval_update_on(e, item, 1);
    eval_update_on(e, key_item, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const store_expr_kind_t kinds[] = {STORE_EXPR_CONDITION, STORE_EXPR_FILTER, STORE_EXPR_KEY_CONDITION,
                                              STORE_EXPR_PROJECTION, STORE_EXPR_UPDATE};
    arena_t arena = {NULL, -1};
    char err[STORE_EXPR_ERR_MAX];
    store_expr_t e;

    if (size < 1)
        return 0;
    unsigned v = (uint8_t)(data[0] - '0');
    store_expr_kind_t kind = kinds[v % 5];
    store_expr_env_t env = {arena_alloc, lookup_name, lookup_value, (v / 5) & 1 ? NULL : value_type, value_s, &arena};
    data++, size--;
    if ((v / 10) & 1) {
        if (size < 1)
            return 0;
        arena.fail_after = data[0];
        data++, size--;
    }

    int rc = store_expr_parse(kind, (const char *)data, size, &env, &e, err, sizeof(err));
    CHECK(rc == 0 || rc == STORE_EXPR_EINVALID || rc == STORE_EXPR_ENOMEM, "store_expr_parse: an unexpected result");
    CHECK(rc != STORE_EXPR_ENOMEM || arena.fail_after == 0, "store_expr_parse: ENOMEM without an allocation failing");
    if (rc == STORE_EXPR_EINVALID)
        CHECK(strncmp(err, "Invalid ", 8) == 0, "store_expr_parse: an error message without \"Invalid <kind>: \"");
    if (verbose && rc != 0)
        fprintf(stderr, "%s: %s\n", store_expr_kind_name(kind), rc == STORE_EXPR_ENOMEM ? "out of memory" : err);
    if (rc == 0) {
        CHECK(e.kind == kind, "store_expr_parse: another kind");
        check_format(&e);
        if (verbose) {
            char buf[4096];
            store_expr_format(&e, buf, sizeof(buf));
            fprintf(stderr, "%s: %s\n", store_expr_kind_name(kind), buf);
        }
        switch (kind) {
        case STORE_EXPR_PROJECTION:
            eval_projection(&e);
            break;
        case STORE_EXPR_UPDATE:
            eval_update(&e);
            break;
        default:
            eval_condition(&e);
        }
    }
    arena_free(&arena);
    return 0;
}
