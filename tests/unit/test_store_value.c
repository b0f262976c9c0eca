/*
 * Unit tests of store/value.c: DynamoDB attribute values and items. The expected messages are DynamoDB's, as recorded
 * against DynamoDB by dynalite's test suite (test/helpers.js for the SerializationExceptions, test/putItem.js for the
 * ValidationExceptions and the item-size boundaries), DynamoDB Local (attribute names, number sizes) and the AWS
 * developer guide (item sizes; empty strings and binaries allowed outside keys, also inside sets, since 2020).
 *
 * The table tests pin each message and each normalization; the size tests pin DynamoDB's count, byte for byte, and
 * the 400 KB boundary with multi-byte UTF-8 (exactly at the limit passes, one byte over fails); the randomized tests
 * (a fixed seed, so a failure is reproducible) check that memcmp of key encodings orders (partition, sort) pairs as
 * store_value_compare does, that distinct pairs never encode alike, and that the encodings decode back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/decimal.h"
#include "store/value.h"

#define SER STORE_VALUE_ESERIALIZE
#define INV STORE_VALUE_EINVALID
#define INVALID "One or more parameter values were invalid: "
#define EMPTY_AV "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
#define MULTI_AV "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"
#define NEST "Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit"
#define TOO_BIG "Item size has exceeded the maximum allowed size"
#define NAN_MSG "The parameter cannot be converted to a numeric value"
#define START_MAP "Start of structure or map found where not expected"
#define MAP_LIST "Unrecognized collection type java.util.Map<java.lang.String, com.amazonaws.dynamodb.v20120810.AttributeValue>"
#define AV_LIST "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.AttributeValue"

/* ---- helpers ---- */

static json_t *J(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (j == NULL)
        fail_msg("bad test JSON %s: %s", text, e.text);
    return j;
}

static char *dump(const json_t *j)
{
    return json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
}

typedef struct value_case {
    const char *in;
    int rc;
    const char *out; /* the message when rc != 0, else the normalized value (NULL: unchanged) */
} value_case_t;

static void run_value_cases(const value_case_t *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_t *av = J(cases[i].in);
        char err[512] = "";
        int rc = store_value_check(av, err, sizeof(err));
        if (rc != cases[i].rc)
            fail_msg("store_value_check(%s) = %d (%s), want %d", cases[i].in, rc, err, cases[i].rc);
        if (rc != 0) {
            if (strcmp(err, cases[i].out) != 0)
                fail_msg("store_value_check(%s): \"%s\", want \"%s\"", cases[i].in, err, cases[i].out);
        } else {
            char *got = dump(av);
            json_t *want_j = J(cases[i].out != NULL ? cases[i].out : cases[i].in);
            char *want = dump(want_j);
            if (strcmp(got, want) != 0)
                fail_msg("store_value_check(%s) normalized to %s, want %s", cases[i].in, got, want);
            free(got);
            free(want);
            json_decref(want_j);
        }
        json_decref(av);
    }
}

#define RUN(cases) run_value_cases(cases, sizeof(cases) / sizeof(cases[0]))

static int item_rc(json_t *item, char *err, size_t errlen)
{
    err[0] = '\0';
    return store_item_check(item, err, errlen);
}

/* A JSON string of n bytes built from the UTF-8 character u repeated (n must be a multiple of its length). */
static json_t *str_of(const char *u, size_t n)
{
    size_t ul = strlen(u);
    assert_int_equal(n % ul, 0);
    char *b = malloc(n + 1);
    assert_non_null(b);
    for (size_t i = 0; i < n; i += ul)
        memcpy(b + i, u, ul);
    b[n] = '\0';
    json_t *s = json_stringn(b, n);
    assert_non_null(s);
    free(b);
    return s;
}

static json_t *av_of(const char *type, json_t *member)
{
    json_t *av = json_object();
    json_object_set_new(av, type, member);
    return av;
}

/* {M: {n: ...}} wrapped `depth` times around leaf (taken). */
static json_t *deep(const char *container, int depth, json_t *leaf)
{
    json_t *v = leaf;
    for (int i = 0; i < depth; i++) {
        if (strcmp(container, "M") == 0) {
            json_t *m = json_object();
            json_object_set_new(m, "n", v);
            v = av_of("M", m);
        } else {
            json_t *l = json_array();
            json_array_append_new(l, v);
            v = av_of("L", l);
        }
    }
    return v;
}

/* ---- SerializationException: the JSON shapes DynamoDB's deserializer rejects ---- */

static void test_ser_string_members(void **state)
{
    (void)state;
    static const value_case_t cases[] = {
        {"{\"S\": 5}", SER, "NUMBER_VALUE cannot be converted to String"},
        {"{\"S\": -2147483648}", SER, "NUMBER_VALUE cannot be converted to String"},
        {"{\"S\": 2147483648}", SER, "NUMBER_VALUE cannot be converted to String"},
        {"{\"S\": 34.56}", SER, "DECIMAL_VALUE cannot be converted to String"},
        {"{\"S\": true}", SER, "TRUE_VALUE cannot be converted to String"},
        {"{\"S\": false}", SER, "FALSE_VALUE cannot be converted to String"},
        {"{\"S\": []}", SER, "Unrecognized collection type class java.lang.String"},
        {"{\"S\": {}}", SER, START_MAP},
        {"{\"N\": 5}", SER, "NUMBER_VALUE cannot be converted to String"},
        {"{\"N\": 1e3}", SER, "DECIMAL_VALUE cannot be converted to String"},
        {"{\"N\": [\"1\"]}", SER, "Unrecognized collection type class java.lang.String"},
        {"{\"N\": {\"a\": 1}}", SER, START_MAP},
    };
    RUN(cases);
}

static void test_ser_blob(void **state)
{
    (void)state;
    static const value_case_t cases[] = {
        {"{\"B\": true}", SER, "only base-64-encoded strings are convertible to bytes"},
        {"{\"B\": 23}", SER, "only base-64-encoded strings are convertible to bytes"},
        {"{\"B\": 34.56}", SER, "only base-64-encoded strings are convertible to bytes"},
        {"{\"B\": []}", SER, "Unrecognized collection type class java.nio.ByteBuffer"},
        {"{\"B\": {}}", SER, START_MAP},
        {"{\"B\": \"23456\"}", SER, "Base64 encoded length is expected a multiple of 4 bytes but found: 5"},
        {"{\"B\": \"a\"}", SER, "Base64 encoded length is expected a multiple of 4 bytes but found: 1"},
        {"{\"B\": \"=+/=\"}", SER, "Invalid last non-pad Base64 character dectected"},
        {"{\"B\": \"+/+=\"}", SER, "Invalid last non-pad Base64 character dectected"},
        {"{\"B\": \"Yh==\"}", SER, "Invalid last non-pad Base64 character dectected"},
        {"{\"B\": \"a===\"}", SER, "Invalid last non-pad Base64 character dectected"},
        {"{\"B\": \"ab!d\"}", SER, "Invalid Base64 character: '!'"},
        {"{\"B\": \"a=bc\"}", SER, "Invalid Base64 character: '='"},
        {"{\"B\": \"\\u00e9abc\"}", SER, "Base64 encoded length is expected a multiple of 4 bytes but found: 5"},
        {"{\"B\": \"\\u00e9ab\"}", SER, "Invalid Base64 character: '\xc3\xa9'"},
        {"{\"B\": \"Yg==\"}", 0, NULL},
        {"{\"B\": \"YWI=\"}", 0, NULL},
        {"{\"B\": \"+/+/\"}", 0, NULL},
        {"{\"B\": \"\"}", 0, NULL}, /* allowed outside keys since 2020 */
        {"{\"BS\": [\"Yg==\", true]}", SER, "only base-64-encoded strings are convertible to bytes"},
        {"{\"BS\": [\"Yg==\", \"Yg=\"]}", SER, "Base64 encoded length is expected a multiple of 4 bytes but found: 3"},
        {"{\"BS\": [[]]}", SER, "Unrecognized collection type class java.nio.ByteBuffer"},
    };
    RUN(cases);
}

static void test_ser_boolean(void **state)
{
    (void)state;
    static const value_case_t cases[] = {
        {"{\"BOOL\": \"23\"}", SER, "Unexpected token received from parser"},
        {"{\"BOOL\": \"\"}", SER, "Unexpected token received from parser"},
        {"{\"BOOL\": 23}", SER, "NUMBER_VALUE cannot be converted to Boolean"},
        {"{\"BOOL\": -2147483648}", SER, "NUMBER_VALUE cannot be converted to Boolean"},
        {"{\"BOOL\": 34.56}", SER, "DECIMAL_VALUE cannot be converted to Boolean"},
        {"{\"BOOL\": []}", SER, "Unrecognized collection type class java.lang.Boolean"},
        {"{\"BOOL\": {}}", SER, START_MAP},
        {"{\"NULL\": \"maybe\"}", SER, "Unexpected token received from parser"},
        {"{\"NULL\": 1}", SER, "NUMBER_VALUE cannot be converted to Boolean"},
        {"{\"NULL\": [true]}", SER, "Unrecognized collection type class java.lang.Boolean"},
    };
    RUN(cases);
}

static void test_ser_lists(void **state)
{
    (void)state;
    static const value_case_t cases[] = {
        {"{\"SS\": \"x\"}", SER, "Unexpected field type"},
        {"{\"SS\": true}", SER, "Unexpected field type"},
        {"{\"NS\": 23}", SER, "Unexpected field type"},
        {"{\"BS\": 34.56}", SER, "Unexpected field type"},
        {"{\"L\": \"23\"}", SER, "Unexpected field type"},
        {"{\"L\": false}", SER, "Unexpected field type"},
        {"{\"SS\": {}}", SER, START_MAP},
        {"{\"L\": {}}", SER, START_MAP},
        {"{\"SS\": [\"a\", 5]}", SER, "NUMBER_VALUE cannot be converted to String"},
        {"{\"NS\": [\"1\", {}]}", SER, START_MAP},
        {"{\"NS\": [[]]}", SER, "Unrecognized collection type class java.lang.String"},
        {"{\"L\": [\"23\"]}", SER, "Unexpected value type in payload"},
        {"{\"L\": [true]}", SER, "Unexpected value type in payload"},
        {"{\"L\": [23]}", SER, "Unexpected value type in payload"},
        {"{\"L\": [34.56]}", SER, "Unexpected value type in payload"},
        {"{\"L\": [[]]}", SER, AV_LIST},
        {"{\"L\": [{\"S\": \"a\"}, {\"BS\": [\"Yg==\", 1]}]}", SER, "only base-64-encoded strings are convertible to bytes"},
    };
    RUN(cases);
}

static void test_ser_maps(void **state)
{
    (void)state;
    static const value_case_t cases[] = {
        {"{\"M\": \"23\"}", SER, "Unexpected field type"},
        {"{\"M\": true}", SER, "Unexpected field type"},
        {"{\"M\": 2147483648}", SER, "Unexpected field type"},
        {"{\"M\": 34.56}", SER, "Unexpected field type"},
        {"{\"M\": []}", SER, MAP_LIST},
        {"{\"M\": {\"a\": \"23\"}}", SER, "Unexpected value type in payload"},
        {"{\"M\": {\"a\": 23}}", SER, "Unexpected value type in payload"},
        {"{\"M\": {\"a\": []}}", SER, AV_LIST},
        {"{\"M\": {\"a\": {\"BS\": [\"Yg==\", true]}}}", SER, "only base-64-encoded strings are convertible to bytes"},
        {"{\"L\": [{\"M\": {\"a\": {\"S\": 1}}}]}", SER, "NUMBER_VALUE cannot be converted to String"},
    };
    RUN(cases);
}

static void test_ser_attribute_value_itself(void **state)
{
    (void)state;
    static const value_case_t cases[] = {
        {"\"x\"", SER, "Unexpected value type in payload"},
        {"true", SER, "Unexpected value type in payload"},
        {"23", SER, "Unexpected value type in payload"},
        {"34.56", SER, "Unexpected value type in payload"},
        {"[]", SER, AV_LIST},
    };
    RUN(cases);
}

/* DynamoDB deserializes the whole request first: a wrong shape anywhere wins over any ValidationException. */
static void test_ser_before_validation(void **state)
{
    (void)state;
    static const value_case_t cases[] = {
        {"{\"L\": [{\"NULL\": false}, {\"S\": 5}]}", SER, "NUMBER_VALUE cannot be converted to String"},
        {"{\"SS\": [], \"N\": true}", SER, "TRUE_VALUE cannot be converted to String"},
        {"{\"M\": {\"a\": {}, \"b\": {\"B\": \"x\"}}}", SER,
         "Base64 encoded length is expected a multiple of 4 bytes but found: 1"},
    };
    RUN(cases);
}

/* Unknown members are ignored by the deserializer, whatever their value. */
static void test_ser_unknown_members_ignored(void **state)
{
    (void)state;
    static const value_case_t cases[] = {
        {"{\"S\": \"a\", \"x\": 5}", 0, "{\"S\": \"a\"}"},
        {"{\"S\": \"a\", \"s\": {\"S\": 5}}", 0, "{\"S\": \"a\"}"},
        {"{\"S\": \"a\", \"N\": null}", 0, "{\"S\": \"a\"}"},
        {"{\"N\": null, \"BOOL\": \"YES\"}", 0, "{\"BOOL\": true}"},
    };
    RUN(cases);
}

static void test_shape_only_changes_nothing(void **state)
{
    (void)state;
    char err[256];
    json_t *av = J("{\"N\": \"01.50\", \"x\": 1, \"BOOL\": \"no\", \"NS\": [\"1\", \"1\"]}");
    char *before = dump(av);
    assert_int_equal(store_value_check_shape(av, err, sizeof(err)), 0);
    char *after = dump(av);
    assert_string_equal(before, after);
    free(after);
    json_decref(av);
    av = J("{\"L\": [{\"S\": 1}]}");
    assert_int_equal(store_value_check_shape(av, err, sizeof(err)), SER);
    assert_string_equal(err, "NUMBER_VALUE cannot be converted to String");
    json_decref(av);

    json_t *item = J("{\"a\": {\"N\": \"1.0\"}, \"b\": {}}");
    free(before);
    before = dump(item);
    assert_int_equal(store_item_check_shape(item, err, sizeof(err)), 0);
    after = dump(item);
    assert_string_equal(before, after);
    free(before);
    free(after);
    json_decref(item);
    item = J("[1]");
    assert_int_equal(store_item_check_shape(item, err, sizeof(err)), SER);
    assert_string_equal(err, MAP_LIST);
    json_decref(item);
}

/* ---- ValidationException: the values ---- */

static void test_empty_attribute_value(void **state)
{
    (void)state;
    static const value_case_t cases[] = {
        {"{}", INV, EMPTY_AV},
        {"{\"a\": \"\"}", INV, EMPTY_AV},
        {"{\"S\": null}", INV, EMPTY_AV},
        {"{\"s\": \"lowercase is not a type\"}", INV, EMPTY_AV},
        {"{\"M\": {\"a\": {}}}", INV, EMPTY_AV},
        {"{\"L\": [{}]}", INV, EMPTY_AV},
        {"{\"L\": [{\"a\": {}}]}", INV, EMPTY_AV},
        {"{\"L\": [null]}", INV, EMPTY_AV},
        {"null", INV, EMPTY_AV},
    };
    RUN(cases);
    char err[128];
    assert_int_equal(store_value_check(NULL, err, sizeof(err)), INV);
    assert_string_equal(err, EMPTY_AV);
}

static void test_multiple_types(void **state)
{
    (void)state;
    static const value_case_t cases[] = {
        {"{\"S\": \"a\", \"N\": \"1\"}", INV, MULTI_AV},
        {"{\"BOOL\": true, \"NULL\": true}", INV, MULTI_AV},
        {"{\"L\": [], \"M\": {}}", INV, MULTI_AV},
        /* each member is validated before the count (dynalite's test/putItem.js, against DynamoDB) */
        {"{\"S\": \"\", \"N\": \"\"}", INV, NAN_MSG},
        {"{\"S\": \"a\", \"N\": \"\"}", INV, NAN_MSG},
        {"{\"S\": \"a\", \"N\": \"b\"}", INV, NAN_MSG ": b"},
        {"{\"S\": \"a\", \"SS\": []}", INV, INVALID "An string set  may not be empty"},
    };
    RUN(cases);
}

static void test_empty_strings_and_binaries_allowed(void **state)
{
    (void)state;
    /* DynamoDB since May 2020 (dynalite's validation still rejects these; its functionality test puts them) */
    static const value_case_t cases[] = {
        {"{\"S\": \"\"}", 0, NULL},
        {"{\"B\": \"\"}", 0, NULL},
        {"{\"SS\": [\"\"]}", 0, NULL},
        {"{\"BS\": [\"\"]}", 0, NULL},
        {"{\"SS\": [\"\", \"a\"]}", 0, NULL},
        {"{\"M\": {\"a\": {\"S\": \"\"}}}", 0, NULL},
        {"{\"L\": [{\"B\": \"\"}]}", 0, NULL},
    };
    RUN(cases);
}

static void test_empty_sets(void **state)
{
    (void)state;
    static const value_case_t cases[] = {
        {"{\"SS\": []}", INV, INVALID "An string set  may not be empty"},
        {"{\"NS\": []}", INV, INVALID "An number set  may not be empty"},
        {"{\"BS\": []}", INV, INVALID "Binary sets should not be empty"},
        {"{\"M\": {\"x\": {\"SS\": []}}}", INV, INVALID "An string set  may not be empty"},
        {"{\"L\": [{\"NS\": []}]}", INV, INVALID "An number set  may not be empty"},
    };
    RUN(cases);
}

static void test_set_duplicates(void **state)
{
    (void)state;
    static const value_case_t cases[] = {
        {"{\"SS\": [\"a\", \"a\"]}", INV, INVALID "Input collection [a, a] contains duplicates."},
        {"{\"SS\": [\"a\", \"b\", \"a\"]}", INV, INVALID "Input collection [a, b, a] contains duplicates."},
        {"{\"SS\": [\"\", \"\"]}", INV, INVALID "Input collection [, ] contains duplicates."},
        {"{\"BS\": [\"Yg==\", \"Yg==\"]}", INV, INVALID "Input collection [Yg==, Yg==]of type BS contains duplicates."},
        {"{\"BS\": [\"\", \"\"]}", INV, INVALID "Input collection [, ]of type BS contains duplicates."},
        {"{\"NS\": [\"1\", \"1\"]}", INV, "Input collection contains duplicates"},
        {"{\"NS\": [\"1\", \"1.0\"]}", INV, "Input collection contains duplicates"},
        {"{\"NS\": [\"-0\", \"0.000\"]}", INV, "Input collection contains duplicates"},
        {"{\"NS\": [\"100\", \"2\", \"1e2\"]}", INV, "Input collection contains duplicates"},
        {"{\"SS\": [\"a\", \"A\", \"\\u00e9\", \"e\"]}", 0, NULL},
        {"{\"BS\": [\"AA==\", \"AAA=\", \"AAAA\"]}", 0, NULL},
        {"{\"NS\": [\"1\", \"10\", \"0.1\", \"-1\"]}", 0, NULL},
    };
    RUN(cases);
}

static void test_set_null_members(void **state)
{
    (void)state;
    static const value_case_t cases[] = {
        {"{\"SS\": [\"a\", null]}", INV, INVALID "An string set may not have a null string as a member"},
        {"{\"BS\": [\"Yg==\", null]}", INV, INVALID "Binary sets may not contain null or empty values"},
        {"{\"NS\": [\"1\", null]}", INV, NAN_MSG},
        {"{\"NS\": [\"1\", \"\"]}", INV, NAN_MSG},
    };
    RUN(cases);
}

/* Numbers: store/decimal.h's messages and normalized text (dynalite's cases, run against DynamoDB). */
static void test_numbers(void **state)
{
    (void)state;
    static const value_case_t cases[] = {
        {"{\"N\": \"\"}", INV, NAN_MSG},
        {"{\"N\": \"b\"}", INV, NAN_MSG ": b"},
        {"{\"N\": \" 1\"}", INV, NAN_MSG ":  1"},
        {"{\"N\": \"Infinity\"}", INV, NAN_MSG ": Infinity"},
        {"{\"NS\": [\"1\", \"b\", \"a\"]}", INV, NAN_MSG ": b"},
        {"{\"N\": \"123456789012345678901234567890123456789\"}", INV,
         "Attempting to store more than 38 significant digits in a Number"},
        {"{\"N\": \"-1.23456789012345678901234567890123456789\"}", INV,
         "Attempting to store more than 38 significant digits in a Number"},
        {"{\"N\": \"1e126\"}", INV, "Number overflow. Attempting to store a number with magnitude larger than supported range"},
        {"{\"N\": \"-1e126\"}", INV, "Number overflow. Attempting to store a number with magnitude larger than supported range"},
        {"{\"N\": \"1e-131\"}", INV, "Number underflow. Attempting to store a number with magnitude smaller than supported range"},
        {"{\"N\": \"-1e-131\"}", INV, "Number underflow. Attempting to store a number with magnitude smaller than supported range"},
        {"{\"NS\": [\"1\", \"1e126\"]}", INV,
         "Number overflow. Attempting to store a number with magnitude larger than supported range"},
    };
    RUN(cases);
}

static void test_number_normalization(void **state)
{
    (void)state;
    static const value_case_t cases[] = {
        {"{\"N\": \"0000012345678901234567890123456789012345678\"}", 0, "{\"N\": \"12345678901234567890123456789012345678\"}"},
        {"{\"N\": \"-00001.23456789012345678901234567890123456780000\"}", 0,
         "{\"N\": \"-1.2345678901234567890123456789012345678\"}"},
        {"{\"N\": \"1e3\"}", 0, "{\"N\": \"1000\"}"},
        {"{\"N\": \"1.50\"}", 0, "{\"N\": \"1.5\"}"},
        {"{\"N\": \"-0.0\"}", 0, "{\"N\": \"0\"}"},
        {"{\"N\": \"+.5\"}", 0, "{\"N\": \"0.5\"}"},
        {"{\"NS\": [\"1e2\", \"0.50\", \"-007\"]}", 0, "{\"NS\": [\"100\", \"0.5\", \"-7\"]}"},
        {"{\"M\": {\"a\": {\"N\": \"2E1\"}, \"b\": {\"L\": [{\"N\": \"3.00\"}]}}}", 0,
         "{\"M\": {\"a\": {\"N\": \"20\"}, \"b\": {\"L\": [{\"N\": \"3\"}]}}}"},
    };
    RUN(cases);
    /* the smallest magnitude: "0." then 129 zeros then "1" */
    json_t *av = J("{\"N\": \"-0001.000e-130\"}");
    assert_int_equal(store_value_check(av, NULL, 0), 0);
    const char *t = json_string_value(json_object_get(av, "N"));
    assert_int_equal(strlen(t), 1 + 2 + 129 + 1);
    assert_int_equal(strspn(t + 3, "0"), 129);
    assert_memory_equal(t, "-0.0", 4);
    assert_string_equal(t + 3 + 129, "1");
    json_decref(av);
}

static void test_booleans_and_null(void **state)
{
    (void)state;
    static const value_case_t cases[] = {
        {"{\"BOOL\": true}", 0, NULL},
        {"{\"BOOL\": false}", 0, NULL},
        {"{\"BOOL\": \"TRUE\"}", 0, "{\"BOOL\": true}"},
        {"{\"BOOL\": \"yes\"}", 0, "{\"BOOL\": true}"},
        {"{\"BOOL\": \"1\"}", 0, "{\"BOOL\": true}"},
        {"{\"BOOL\": \"False\"}", 0, "{\"BOOL\": false}"},
        {"{\"BOOL\": \"0\"}", 0, "{\"BOOL\": false}"},
        {"{\"BOOL\": \"NO\"}", 0, "{\"BOOL\": false}"},
        {"{\"NULL\": true}", 0, NULL},
        {"{\"NULL\": \"true\"}", 0, "{\"NULL\": true}"},
        {"{\"NULL\": false}", INV, INVALID "Null attribute value types must have the value of true"},
        {"{\"NULL\": \"no\"}", INV, INVALID "Null attribute value types must have the value of true"},
        {"{\"L\": [{\"NULL\": \"0\"}]}", INV, INVALID "Null attribute value types must have the value of true"},
    };
    RUN(cases);
}

/* 32 levels: an attribute is level 1; a leaf at level 32 is accepted, at level 33 rejected. state: "M" or "L". */
static void test_nesting_depth(void **state)
{
    const char *kind = *state;
    const char *empty = strcmp(kind, "M") == 0 ? "{\"M\": {}}" : "{\"L\": []}";
    char err[256];
    json_t *ok = deep(kind, 31, J("{\"S\": \"leaf\"}"));
    assert_int_equal(store_value_check(ok, err, sizeof(err)), 0);
    json_decref(ok);
    json_t *bad = deep(kind, 32, J("{\"S\": \"leaf\"}"));
    assert_int_equal(store_value_check(bad, err, sizeof(err)), INV);
    assert_string_equal(err, NEST);
    json_decref(bad);
    /* an empty container at level 32 has nothing at level 33 */
    json_t *e = deep(kind, 31, J(empty));
    assert_int_equal(store_value_check(e, err, sizeof(err)), 0);
    json_decref(e);
    e = deep(kind, 32, J(empty));
    assert_int_equal(store_value_check(e, err, sizeof(err)), INV);
    assert_string_equal(err, NEST);
    json_decref(e);
}

/* Mixed L and M count alike, and an item's attribute is level 1. */
static void test_nesting_mixed_in_item(void **state)
{
    (void)state;
    char err[256];
    json_t *mixed = deep("L", 15, deep("M", 16, J("{\"N\": \"1\"}")));
    assert_int_equal(store_value_check(mixed, err, sizeof(err)), 0);
    json_t *item = json_object();
    json_object_set_new(item, "a", json_incref(mixed));
    assert_int_equal(item_rc(item, err, sizeof(err)), 0);
    json_object_set_new(item, "a", deep("M", 1, mixed));
    assert_int_equal(item_rc(item, err, sizeof(err)), INV);
    assert_string_equal(err, NEST);
    json_decref(item);
}

/* Far deeper than any limit: a ValidationException, and no trouble with the stack. */
static void test_nesting_far_too_deep(void **state)
{
    (void)state;
    char err[256];
    json_t *abyss = deep("L", 5000, J("{\"S\": \"x\"}"));
    assert_int_equal(store_value_check(abyss, err, sizeof(err)), INV);
    assert_string_equal(err, NEST);
    assert_int_equal(store_value_check_shape(abyss, err, sizeof(err)), 0);
    json_decref(abyss);
    abyss = deep("M", 3000, J("{\"S\": 5}")); /* a shape error below the shape pass's reach */
    assert_int_equal(store_value_check(abyss, err, sizeof(err)), INV);
    assert_string_equal(err, NEST);
    json_decref(abyss);
}

/* ---- items ---- */

static void test_item_name_empty(void **state)
{
    (void)state;
    char err[256];
    json_t *item = J("{\"a\": {\"S\": \"x\"}, \"\": {\"S\": \"y\"}}");
    assert_int_equal(item_rc(item, err, sizeof(err)), INV);
    assert_string_equal(err, "Empty attribute name");
    json_decref(item);
}

/* 65535 bytes is the longest name (ScyllaDB's tests against DynamoDB); 65536 is refused. */
static void test_item_name_length(void **state)
{
    (void)state;
    char err[256];
    for (size_t len = 65534; len <= 65536; len++) {
        json_t *name = str_of("a", len);
        json_t *item = json_object();
        json_object_setn_new(item, json_string_value(name), len, J("{\"BOOL\": true}"));
        int rc = item_rc(item, err, sizeof(err));
        if (len <= 65535) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, INV);
            assert_string_equal(err, "Attribute name is too large, must be less than 65536 bytes");
        }
        json_decref(item);
        json_decref(name);
    }
}

/* A name counts UTF-8 bytes: 21845 three-byte characters are 65535 bytes, one more is too many. */
static void test_item_name_utf8_length(void **state)
{
    (void)state;
    char err[256];
    for (size_t len = 65535; len <= 65538; len += 3) {
        json_t *name = str_of("\xe2\x82\xac", len);
        json_t *item = json_object();
        json_object_set_new(item, json_string_value(name), J("{\"NULL\": true}"));
        assert_int_equal(item_rc(item, err, sizeof(err)), len <= 65535 ? 0 : INV);
        json_decref(item);
        json_decref(name);
    }
}

/* Names inside M are not attribute names: any string, "" included. */
static void test_item_map_names(void **state)
{
    (void)state;
    char err[256];
    json_t *item = J("{\"a\": {\"M\": {\"\": {\"S\": \"x\"}}}}");
    assert_int_equal(item_rc(item, err, sizeof(err)), 0);
    assert_int_equal(store_item_size(item), 1 + 3 + 1 + 0 + 1);
    json_decref(item);
}

static void test_item_shapes_and_order(void **state)
{
    (void)state;
    char err[256];
    static const struct {
        const char *in;
        int rc;
        const char *msg;
    } cases[] = {
        {"\"23\"", SER, "Unexpected field type"},
        {"true", SER, "Unexpected field type"},
        {"23", SER, "Unexpected field type"},
        {"[]", SER, MAP_LIST},
        {"{\"a\": \"23\"}", SER, "Unexpected value type in payload"},
        {"{\"a\": []}", SER, AV_LIST},
        /* the shape of a later attribute wins over the value of an earlier one */
        {"{\"a\": {}, \"b\": {\"S\": 1}}", SER, "NUMBER_VALUE cannot be converted to String"},
        /* then attribute by attribute, in order */
        {"{\"a\": {}, \"\": {\"S\": \"x\"}}", INV, EMPTY_AV},
        {"{\"\": {\"S\": \"x\"}, \"a\": {}}", INV, "Empty attribute name"},
        {"{\"a\": {\"NULL\": false}, \"b\": {\"SS\": []}}", INV, INVALID "Null attribute value types must have the value of true"},
        {"null", INV, "Value null at 'item' failed to satisfy constraint: Member must not be null"},
        {"{}", 0, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *item = J(cases[i].in);
        int rc = item_rc(item, err, sizeof(err));
        if (rc != cases[i].rc)
            fail_msg("store_item_check(%s) = %d (%s), want %d", cases[i].in, rc, err, cases[i].rc);
        if (rc != 0)
            assert_string_equal(err, cases[i].msg);
        json_decref(item);
    }
}

static void test_item_normalizes(void **state)
{
    (void)state;
    char err[256];
    json_t *item = J("{\"n\": {\"N\": \"010.10\"}, \"b\": {\"BOOL\": \"yes\", \"x\": 1},"
                     " \"m\": {\"M\": {\"s\": {\"NS\": [\"2e0\", \"-1.0\"]}}}}");
    assert_int_equal(item_rc(item, err, sizeof(err)), 0);
    char *got = dump(item);
    assert_string_equal(got, "{\"n\":{\"N\":\"10.1\"},\"b\":{\"BOOL\":true},\"m\":{\"M\":{\"s\":{\"NS\":[\"2\",\"-1\"]}}}}");
    free(got);
    json_decref(item);
}

/* ---- sizes ---- */

static void test_size_scalars(void **state)
{
    (void)state;
    static const struct {
        const char *av;
        size_t size;
    } cases[] = {
        {"{\"S\": \"\"}", 0},
        {"{\"S\": \"abc\"}", 3},
        {"{\"S\": \"h\\u00e9llo\"}", 6},
        {"{\"S\": \"\\u20ac\"}", 3},
        {"{\"S\": \"\\ud83d\\ude00\"}", 4},
        {"{\"B\": \"\"}", 0},
        {"{\"B\": \"Yg==\"}", 1},
        {"{\"B\": \"YWI=\"}", 2},
        {"{\"B\": \"AAAA\"}", 3},
        {"{\"BOOL\": false}", 1},
        {"{\"NULL\": true}", 1},
        {"{\"SS\": [\"a\", \"bb\", \"\"]}", 3},
        {"{\"BS\": [\"Yg==\", \"AAAA\"]}", 4},
        {"{\"NS\": [\"1\", \"-1\"]}", 5},
        {"{\"X\": \"not an AttributeValue\"}", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *av = J(cases[i].av);
        if (store_value_size(av) != cases[i].size)
            fail_msg("size(%s) = %zu, want %zu", cases[i].av, store_value_size(av), cases[i].size);
        json_decref(av);
    }
}

/* N: DynamoDB's encoding length (value.h); the e=125 cases are those dynalite's tests pinned against DynamoDB. */
static void test_size_numbers(void **state)
{
    (void)state;
    char ones38[128], big[256];
    memset(ones38, '1', 38);
    ones38[38] = '\0';
    static const struct {
        const char *n;
        size_t size;
    } cases[] = {
        {"0", 1},
        {"1", 2},
        {"9", 2},
        {"10", 2},
        {"99", 2},
        {"100", 2},
        {"101", 3},
        {"0.1", 2},
        {"0.01", 2},
        {"0.001", 2},
        {"12.3", 3},
        {"1.5", 3},
        {"123456", 4},
        {"-1", 3},
        {"-10", 3},
        {"-0.5", 3},
        {"-101", 4},
        {"1e125", 2},
        {"1.1e125", 2},
        {"1e-130", 2},
        {"-1e-130", 3},
        {"11111e121", 4},
        {"111111e120", 4},
        {"1111111e119", 5},
        {"12345678901234567890", 11},
        {"12345678901234567890123456789012345678", 20},
        {"1234567890123456789012345678901234567.8", 21},
        {"-12345678901234567890123456789012345678", 21},
        {"-1234567890123456789012345678901234567.8", 21},
        {"-1234567890123456789012345678901234567", 21},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(big, sizeof(big), "{\"N\": \"%s\"}", cases[i].n);
        json_t *av = J(big);
        if (store_value_size(av) != cases[i].size)
            fail_msg("size(%s) = %zu, want %zu", cases[i].n, store_value_size(av), cases[i].size);
        json_decref(av);
    }
    /* dynalite: 38 ones then 88 zeros is 20 bytes */
    snprintf(big, sizeof(big), "{\"N\": \"%se88\"}", ones38);
    json_t *av = J(big);
    assert_int_equal(store_value_size(av), 20);
    json_decref(av);
}

static void test_size_documents(void **state)
{
    (void)state;
    static const struct {
        const char *av;
        size_t size;
    } cases[] = {
        {"{\"L\": []}", 3},
        {"{\"M\": {}}", 3},
        {"{\"L\": [{\"S\": \"ab\"}, {\"N\": \"1\"}]}", 3 + (1 + 2) + (1 + 2)},
        {"{\"M\": {\"ab\": {\"S\": \"x\"}}}", 3 + 1 + 2 + 1},
        {"{\"M\": {\"\\u00e9\": {\"NULL\": true}, \"l\": {\"L\": [{\"L\": []}]}}}", 3 + (1 + 2 + 1) + (1 + 1 + (3 + 1 + 3))},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *av = J(cases[i].av);
        if (store_value_size(av) != cases[i].size)
            fail_msg("size(%s) = %zu, want %zu", cases[i].av, store_value_size(av), cases[i].size);
        json_decref(av);
    }
    json_t *item = J("{\"a\": {\"S\": \"x\"}, \"\\u00e9t\\u00e9\": {\"N\": \"1\"}, \"l\": {\"L\": [{\"BOOL\": true}]}}");
    assert_int_equal(store_item_size(item), (1 + 1) + (5 + 2) + (1 + 3 + 1 + 1));
    json_decref(item);
    assert_int_equal(store_item_size(NULL), 0);
}

/* Puts {name: {S: value}} plus extra attributes and expects the size check to pass or fail. */
static void expect_item_size(json_t *item, size_t size, int ok)
{
    char err[256];
    assert_int_equal(store_item_size(item), size);
    int rc = item_rc(item, err, sizeof(err));
    if (ok) {
        assert_int_equal(rc, 0);
    } else {
        assert_int_equal(rc, INV);
        assert_string_equal(err, TOO_BIG);
    }
}

/* 400 KB exactly passes, one byte more fails, with characters of *state bytes in a value and in a name. */
static void test_size_limit_chars(void **state)
{
    const char *ch = *state;
    size_t cl = strlen(ch);
    /* {"k": n characters, "p": ASCII padding}: 1 + n * cl + 1 + pad bytes */
    size_t n = (STORE_ITEM_MAX - 1 - 8) / cl;
    for (int over = 0; over <= 1; over++) {
        json_t *item = json_object();
        json_object_set_new(item, "k", av_of("S", str_of(ch, n * cl)));
        size_t pad = STORE_ITEM_MAX - (1 + n * cl) - 1 + (size_t)over;
        json_object_set_new(item, "p", av_of("S", str_of("a", pad)));
        expect_item_size(item, STORE_ITEM_MAX + (size_t)over, !over);
        json_decref(item);
    }
    /* a name of 4 such characters, its value in ASCII, and a BOOL: 4 * cl + v + (1 + 1) */
    for (int over = 0; over <= 1; over++) {
        json_t *item = json_object();
        json_t *name = str_of(ch, 4 * cl);
        size_t v = STORE_ITEM_MAX - 4 * cl - 2 + (size_t)over;
        json_object_set_new(item, json_string_value(name), av_of("S", str_of("z", v)));
        json_object_set_new(item, "x", J("{\"BOOL\": true}"));
        expect_item_size(item, STORE_ITEM_MAX + (size_t)over, !over);
        json_decref(name);
        json_decref(item);
    }
}

/* Nothing but multi-byte characters: 102399 four-byte ones and a three-byte one under the name "k" are 409600. */
static void test_size_limit_multibyte_only(void **state)
{
    (void)state;
    const size_t n4 = (STORE_ITEM_MAX - 1 - 3) / 4;
    assert_int_equal(1 + n4 * 4 + 3, STORE_ITEM_MAX);
    char *b = malloc(n4 * 4 + 5);
    assert_non_null(b);
    json_t *s4 = str_of("\xf0\x9f\x98\x80", n4 * 4);
    memcpy(b, json_string_value(s4), n4 * 4);
    json_decref(s4);
    memcpy(b + n4 * 4, "\xe2\x82\xac", 3);
    json_t *item = json_object();
    json_object_set_new(item, "k", av_of("S", json_stringn(b, n4 * 4 + 3)));
    expect_item_size(item, STORE_ITEM_MAX, 1);
    /* the last character four bytes instead of three: one byte over */
    memcpy(b + n4 * 4, "\xf0\x9f\x98\x80", 4);
    json_object_set_new(item, "k", av_of("S", json_stringn(b, n4 * 4 + 4)));
    expect_item_size(item, STORE_ITEM_MAX + 1, 0);
    /* a two-byte character instead: one byte under */
    memcpy(b + n4 * 4, "\xc3\xa9", 2);
    json_object_set_new(item, "k", av_of("S", json_stringn(b, n4 * 4 + 2)));
    expect_item_size(item, STORE_ITEM_MAX - 1, 1);
    free(b);
    json_decref(item);
}

/* dynalite's boundary cases (test/putItem.js, against DynamoDB): keyStr of 10 characters. */
static void test_size_limit_dynalite_cases(void **state)
{
    (void)state;
    const size_t key = 10, max = STORE_ITEM_MAX;
    struct {
        const char *name;
        size_t blen;
        const char *c, *d;
        int ok;
    } cases[] = {
        {"b", max - key - 1, NULL, NULL, 0},                            /* too big with small attribute */
        {"b", max - key - 2, NULL, NULL, 1},                            /* just small enough */
        {"bbbbbbbbbbbbbbbbbbbbbbbbbbb", max - key - 27, NULL, NULL, 0}, /* larger attribute name */
        {"bbbbbbbbbbbbbbbbbbbbbbbbbbb", max - key - 28, NULL, NULL, 1},
        {"b", max - key - 22, "11111111111111111111111111111111111111e88", NULL, 0}, /* 38 digits: 20 bytes */
        {"b", max - key - 4, "1e125", NULL, 0},
        {"b", max - key - 4, "11e124", NULL, 0},
        {"b", max - key - 6, "11111e121", NULL, 0},
        {"b", max - key - 6, "111111e120", NULL, 0},
        {"b", max - key - 7, "1111111e119", NULL, 0},
        {"b", max - key - 13, "1111111e119", "1111111e119", 0},
        {"b", max - key - 14, "1111111e119", "1111111e119", 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *item = json_object();
        json_object_set_new(item, "a", av_of("S", str_of("k", key)));
        json_object_set_new(item, cases[i].name, av_of("S", str_of("a", cases[i].blen)));
        if (cases[i].c != NULL)
            json_object_set_new(item, "c", av_of("N", json_string(cases[i].c)));
        if (cases[i].d != NULL)
            json_object_set_new(item, "d", av_of("N", json_string(cases[i].d)));
        char err[128];
        int rc = item_rc(item, err, sizeof(err));
        if (cases[i].ok ? rc != 0 : rc != INV)
            fail_msg("dynalite size case %zu: rc %d (%s), size %zu", i, rc, err, store_item_size(item));
        if (!cases[i].ok)
            assert_string_equal(err, TOO_BIG);
        json_decref(item);
    }
}

/* L and M overhead at the boundary: 3 bytes, plus 1 per element. */
static void test_size_limit_documents(void **state)
{
    (void)state;
    for (int over = 0; over <= 1; over++) {
        /* "l" (1) + L: 3 + (1 + x) + (1 + 0 or 1) */
        size_t x = STORE_ITEM_MAX - 1 - 3 - 1 - 1;
        json_t *l = json_array();
        json_array_append_new(l, av_of("S", str_of("\xc3\xa9", x)));
        json_array_append_new(l, av_of("S", json_string(over ? "b" : "")));
        json_t *item = json_object();
        json_object_set_new(item, "l", av_of("L", l));
        expect_item_size(item, STORE_ITEM_MAX + (size_t)over, !over);
        json_decref(item);
        /* "m" (1) + M: 3 + (1 + "\u20ac" 3 + x) */
        x = STORE_ITEM_MAX - 1 - 3 - 1 - 3 + (size_t)over;
        json_t *m = json_object();
        json_object_set_new(m, "\xe2\x82\xac", av_of("S", str_of("a", x)));
        item = json_object();
        json_object_set_new(item, "m", av_of("M", m));
        expect_item_size(item, STORE_ITEM_MAX + (size_t)over, !over);
        json_decref(item);
    }
}

/* ---- types ---- */

static void test_type_names(void **state)
{
    (void)state;
    static const char *const names[] = {"S", "N", "B", "BOOL", "NULL", "L", "M", "SS", "NS", "BS"};
    for (int t = STORE_T_S; t <= STORE_T_BS; t++) {
        assert_string_equal(store_type_name((store_type_t)t), names[t - 1]);
        assert_int_equal(store_type_of_name(names[t - 1], strlen(names[t - 1])), t);
    }
    assert_null(store_type_name(STORE_T_NONE));
    assert_null(store_type_name((store_type_t)99));
    assert_int_equal(store_type_of_name("SSS", 3), STORE_T_NONE);
    assert_int_equal(store_type_of_name("SSS", 2), STORE_T_SS);
    assert_int_equal(store_type_of_name("s", 1), STORE_T_NONE);
    assert_int_equal(store_type_of_name("", 0), STORE_T_NONE);
    assert_int_equal(store_type_of_name(NULL, 0), STORE_T_NONE);
}

static void test_value_type(void **state)
{
    (void)state;
    static const struct {
        const char *av;
        store_type_t t;
    } cases[] = {
        {"{\"S\": \"a\"}", STORE_T_S},
        {"{\"N\": \"1\"}", STORE_T_N},
        {"{\"B\": \"\"}", STORE_T_B},
        {"{\"BOOL\": false}", STORE_T_BOOL},
        {"{\"NULL\": true}", STORE_T_NULL},
        {"{\"L\": []}", STORE_T_L},
        {"{\"M\": {}}", STORE_T_M},
        {"{\"SS\": [\"a\"]}", STORE_T_SS},
        {"{\"NS\": [\"1\"]}", STORE_T_NS},
        {"{\"BS\": [\"\"]}", STORE_T_BS},
        {"{}", STORE_T_NONE},
        {"{\"S\": 5}", STORE_T_NONE},
        {"{\"S\": \"a\", \"N\": \"1\"}", STORE_T_NONE},
        {"\"S\"", STORE_T_NONE},
        {"[]", STORE_T_NONE},
        {"{\"X\": \"a\"}", STORE_T_NONE},
        {"{\"L\": {}}", STORE_T_NONE},
        {"{\"BOOL\": \"true\"}", STORE_T_NONE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *av = J(cases[i].av);
        if (store_value_type(av) != cases[i].t)
            fail_msg("type(%s) = %d, want %d", cases[i].av, store_value_type(av), cases[i].t);
        json_decref(av);
    }
    assert_int_equal(store_value_type(NULL), STORE_T_NONE);
}

/* ---- key checks ---- */

static void test_key_check(void **state)
{
    (void)state;
    char err[256];
    static const struct {
        const char *av;
        store_type_t want;
        const char *msg; /* NULL: fine */
    } cases[] = {
        {"{\"S\": \"a\"}", STORE_T_S, NULL},
        {"{\"N\": \"0\"}", STORE_T_N, NULL},
        {"{\"B\": \"AA==\"}", STORE_T_B, NULL},
        {"{\"S\": \"\"}", STORE_T_S,
         "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty "
         "string value. Key: pk"},
        {"{\"B\": \"\"}", STORE_T_B,
         "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty "
         "binary value. Key: pk"},
        {"{\"N\": \"1\"}", STORE_T_S, INVALID "Type mismatch for key pk expected: S actual: N"},
        {"{\"B\": \"abcd\"}", STORE_T_S, INVALID "Type mismatch for key pk expected: S actual: B"},
        {"{\"SS\": [\"a\"]}", STORE_T_S, INVALID "Type mismatch for key pk expected: S actual: SS"},
        {"{\"M\": {}}", STORE_T_N, INVALID "Type mismatch for key pk expected: N actual: M"},
        {"{\"NULL\": true}", STORE_T_B, INVALID "Type mismatch for key pk expected: B actual: NULL"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *av = J(cases[i].av);
        err[0] = '\0';
        int rc = store_key_check(av, cases[i].want, "pk", err, sizeof(err));
        if (cases[i].msg == NULL) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, INV);
            assert_string_equal(err, cases[i].msg);
        }
        json_decref(av);
    }
}

/* The key size limits, *state "hash" (2048 bytes) or "range" (1024). */
static void test_key_check_size(void **state)
{
    int range = strcmp(*state, "range") == 0;
    char err[256];
    const char *msg = range ? INVALID "Aggregated size of all range keys has exceeded the size limit of 1024 bytes"
                            : INVALID "Size of hashkey has exceeded the maximum size limit of2048 bytes";
    size_t lim = range ? STORE_RANGE_KEY_MAX : STORE_HASH_KEY_MAX;
    json_t *ok = av_of("S", str_of("a", lim)), *bad = av_of("S", str_of("a", lim + 1));
    assert_int_equal(store_key_check_size(ok, range, err, sizeof(err)), 0);
    assert_int_equal(store_key_check_size(bad, range, err, sizeof(err)), INV);
    assert_string_equal(err, msg);
    json_decref(ok);
    json_decref(bad);
    /* UTF-8 bytes: two-byte characters, lim / 2 fit, one more does not */
    ok = av_of("S", str_of("\xc3\xa9", lim));
    bad = av_of("S", str_of("\xc3\xa9", lim + 2));
    assert_int_equal(store_key_check_size(ok, range, err, sizeof(err)), 0);
    assert_int_equal(store_key_check_size(bad, range, err, sizeof(err)), INV);
    json_decref(ok);
    json_decref(bad);
    /* B counts decoded bytes (1024 bytes are 1368 base64 characters) */
    uint8_t raw[2049];
    memset(raw, 0xAB, sizeof(raw));
    ok = av_of("B", store_b64_string(raw, lim));
    bad = av_of("B", store_b64_string(raw, lim + 1));
    assert_int_equal(store_key_check_size(ok, range, err, sizeof(err)), 0);
    assert_int_equal(store_key_check_size(bad, range, err, sizeof(err)), INV);
    assert_string_equal(err, msg);
    json_decref(ok);
    json_decref(bad);
    /* an N always fits */
    json_t *n = J("{\"N\": \"-1234567890123456789012345678901234567.8\"}");
    assert_int_equal(store_key_check_size(n, range, err, sizeof(err)), 0);
    json_decref(n);
}

/* ---- equality ---- */

static void expect_equal(const char *a, const char *b, int eq)
{
    json_t *x = J(a), *y = J(b);
    if (store_value_equal(x, y) != eq || store_value_equal(y, x) != eq)
        fail_msg("equal(%s, %s) != %d", a, b, eq);
    json_decref(x);
    json_decref(y);
}

static void test_equal_scalars(void **state)
{
    (void)state;
    expect_equal("{\"S\": \"a\"}", "{\"S\": \"a\"}", 1);
    expect_equal("{\"S\": \"a\"}", "{\"S\": \"A\"}", 0);
    expect_equal("{\"S\": \"\"}", "{\"S\": \"\"}", 1);
    expect_equal("{\"S\": \"1\"}", "{\"N\": \"1\"}", 0);
    expect_equal("{\"N\": \"1\"}", "{\"N\": \"1.0\"}", 1);
    expect_equal("{\"N\": \"100\"}", "{\"N\": \"1e2\"}", 1);
    expect_equal("{\"N\": \"-0\"}", "{\"N\": \"0\"}", 1);
    expect_equal("{\"N\": \"1\"}", "{\"N\": \"1.000000000000000000000000000000000000001\"}", 0);
    expect_equal("{\"B\": \"Yg==\"}", "{\"B\": \"Yg==\"}", 1);
    expect_equal("{\"B\": \"Yg==\"}", "{\"B\": \"Yw==\"}", 0);
    expect_equal("{\"B\": \"\"}", "{\"B\": \"\"}", 1);
    expect_equal("{\"BOOL\": true}", "{\"BOOL\": true}", 1);
    expect_equal("{\"BOOL\": true}", "{\"BOOL\": false}", 0);
    expect_equal("{\"NULL\": true}", "{\"NULL\": true}", 1);
    expect_equal("{\"NULL\": true}", "{\"BOOL\": true}", 0);
    expect_equal("{\"S\": \"a\"}", "{\"X\": \"a\"}", 0);
    expect_equal("{}", "{}", 0);
}

static void test_equal_sets(void **state)
{
    (void)state;
    expect_equal("{\"SS\": [\"a\", \"b\"]}", "{\"SS\": [\"b\", \"a\"]}", 1);
    expect_equal("{\"SS\": [\"a\", \"b\"]}", "{\"SS\": [\"a\"]}", 0);
    expect_equal("{\"SS\": [\"a\", \"b\"]}", "{\"SS\": [\"a\", \"c\"]}", 0);
    expect_equal("{\"SS\": [\"\", \"x\"]}", "{\"SS\": [\"x\", \"\"]}", 1);
    expect_equal("{\"NS\": [\"1\", \"2\", \"-3.5\"]}", "{\"NS\": [\"-3.50\", \"2.0\", \"1\"]}", 1);
    expect_equal("{\"NS\": [\"1\", \"2\"]}", "{\"NS\": [\"1\", \"3\"]}", 0);
    expect_equal("{\"BS\": [\"AAAA\", \"Yg==\", \"\"]}", "{\"BS\": [\"\", \"Yg==\", \"AAAA\"]}", 1);
    expect_equal("{\"BS\": [\"AAAA\"]}", "{\"BS\": [\"AAA=\"]}", 0);
    expect_equal("{\"SS\": [\"1\"]}", "{\"NS\": [\"1\"]}", 0);
    expect_equal("{\"SS\": [\"a\"]}", "{\"L\": [{\"S\": \"a\"}]}", 0);
}

static void test_equal_documents(void **state)
{
    (void)state;
    expect_equal("{\"L\": []}", "{\"L\": []}", 1);
    expect_equal("{\"L\": [{\"N\": \"1\"}, {\"S\": \"x\"}]}", "{\"L\": [{\"N\": \"1.0\"}, {\"S\": \"x\"}]}", 1);
    expect_equal("{\"L\": [{\"N\": \"1\"}, {\"N\": \"2\"}]}", "{\"L\": [{\"N\": \"2\"}, {\"N\": \"1\"}]}", 0);
    expect_equal("{\"L\": [{\"N\": \"1\"}]}", "{\"L\": [{\"N\": \"1\"}, {\"N\": \"1\"}]}", 0);
    expect_equal("{\"M\": {}}", "{\"M\": {}}", 1);
    expect_equal("{\"M\": {\"a\": {\"N\": \"1\"}, \"b\": {\"SS\": [\"x\", \"y\"]}}}",
                 "{\"M\": {\"b\": {\"SS\": [\"y\", \"x\"]}, \"a\": {\"N\": \"1\"}}}", 1);
    expect_equal("{\"M\": {\"a\": {\"N\": \"1\"}}}", "{\"M\": {\"b\": {\"N\": \"1\"}}}", 0);
    expect_equal("{\"M\": {\"a\": {\"N\": \"1\"}}}", "{\"M\": {\"a\": {\"N\": \"1\"}, \"b\": {\"N\": \"1\"}}}", 0);
    expect_equal("{\"M\": {\"a\": {\"N\": \"1\"}}}", "{\"M\": {\"a\": {\"S\": \"1\"}}}", 0);
    expect_equal("{\"M\": {\"a\": {\"L\": [{\"M\": {\"b\": {\"B\": \"Yg==\"}}}]}}}",
                 "{\"M\": {\"a\": {\"L\": [{\"M\": {\"b\": {\"B\": \"Yg==\"}}}]}}}", 1);
    expect_equal("{\"L\": []}", "{\"M\": {}}", 0);
}

/* ---- order ---- */

static int compare(const char *a, const char *b)
{
    json_t *x = J(a), *y = J(b);
    int c = 99, r = store_value_compare(x, y, &c);
    json_decref(x);
    json_decref(y);
    return r == 0 ? c : 99;
}

/* S: bytewise UTF-8, which is code point order. */
static void test_compare_strings(void **state)
{
    (void)state;
    assert_int_equal(compare("{\"S\": \"a\"}", "{\"S\": \"b\"}"), -1);
    assert_int_equal(compare("{\"S\": \"b\"}", "{\"S\": \"a\"}"), 1);
    assert_int_equal(compare("{\"S\": \"a\"}", "{\"S\": \"ab\"}"), -1);
    assert_int_equal(compare("{\"S\": \"Z\"}", "{\"S\": \"a\"}"), -1);
    assert_int_equal(compare("{\"S\": \"\\u00e9\"}", "{\"S\": \"z\"}"), 1);
    assert_int_equal(compare("{\"S\": \"\\uffff\"}", "{\"S\": \"\\ud83d\\ude00\"}"), -1);
    assert_int_equal(compare("{\"S\": \"\"}", "{\"S\": \"\"}"), 0);
    assert_int_equal(compare("{\"S\": \"a\\u0000\"}", "{\"S\": \"a\"}"), 1);
}

/* N: numerically. */
static void test_compare_numbers(void **state)
{
    (void)state;
    assert_int_equal(compare("{\"N\": \"-10\"}", "{\"N\": \"-9\"}"), -1);
    assert_int_equal(compare("{\"N\": \"-9\"}", "{\"N\": \"0\"}"), -1);
    assert_int_equal(compare("{\"N\": \"0.5\"}", "{\"N\": \"0\"}"), 1);
    assert_int_equal(compare("{\"N\": \"1e2\"}", "{\"N\": \"99.99\"}"), 1);
    assert_int_equal(compare("{\"N\": \"10\"}", "{\"N\": \"9\"}"), 1);
    assert_int_equal(compare("{\"N\": \"1.50\"}", "{\"N\": \"1.5\"}"), 0);
    assert_int_equal(compare("{\"N\": \"-1e-130\"}", "{\"N\": \"0\"}"), -1);
}

/* B: the decoded bytes, not the base64 text ('/' sorts before 'A' as text; 0xFF after 0x00 as bytes). */
static void test_compare_binaries(void **state)
{
    (void)state;
    assert_int_equal(compare("{\"B\": \"AA==\"}", "{\"B\": \"AQ==\"}"), -1);
    assert_int_equal(compare("{\"B\": \"/w==\"}", "{\"B\": \"AA==\"}"), 1);
    assert_int_equal(compare("{\"B\": \"AA==\"}", "{\"B\": \"AAA=\"}"), -1);
    assert_int_equal(compare("{\"B\": \"\"}", "{\"B\": \"AA==\"}"), -1);
    assert_int_equal(compare("{\"B\": \"Yg==\"}", "{\"B\": \"Yg==\"}"), 0);
}

/* Not both of one key type: no order. */
static void test_compare_other_types(void **state)
{
    (void)state;
    assert_int_equal(compare("{\"S\": \"1\"}", "{\"N\": \"1\"}"), 99);
    assert_int_equal(compare("{\"B\": \"\"}", "{\"S\": \"\"}"), 99);
    assert_int_equal(compare("{\"BOOL\": true}", "{\"BOOL\": true}"), 99);
    assert_int_equal(compare("{\"SS\": [\"a\"]}", "{\"SS\": [\"a\"]}"), 99);
    assert_int_equal(compare("{\"L\": []}", "{\"L\": []}"), 99);
    assert_int_equal(compare("{}", "{}"), 99);
}

/* ---- key encoding ---- */

static void test_key_encode_single(void **state)
{
    (void)state;
    uint8_t buf[64];
    json_t *s = J("{\"S\": \"h\\u00e9\"}");
    assert_int_equal(store_key_encode(s, buf, sizeof(buf)), 3);
    assert_memory_equal(buf, "h\xc3\xa9", 3);
    assert_int_equal(store_key_encode(s, buf, 2), 3); /* too small: the length needed */
    json_decref(s);

    json_t *n = J("{\"N\": \"-1.5\"}");
    store_num_t num;
    uint8_t want[STORE_NUM_KEY_MAX];
    assert_int_equal(store_num_parse("-1.5", 4, &num), STORE_NUM_OK);
    size_t wl = store_num_key(&num, want);
    assert_int_equal(store_key_encode(n, buf, sizeof(buf)), wl);
    assert_memory_equal(buf, want, wl);
    json_decref(n);

    json_t *b = J("{\"B\": \"AP8B\"}");
    assert_int_equal(store_key_encode(b, buf, sizeof(buf)), 3);
    assert_memory_equal(buf, "\x00\xff\x01", 3);
    json_decref(b);

    static const char *const not_keys[] = {"{\"BOOL\": true}", "{\"SS\": [\"a\"]}", "{\"L\": []}", "{}", "\"x\""};
    for (size_t i = 0; i < sizeof(not_keys) / sizeof(not_keys[0]); i++) {
        json_t *v = J(not_keys[i]);
        assert_int_equal(store_key_encode(v, buf, sizeof(buf)), 0);
        assert_int_equal(store_key_encode_pair(v, NULL, buf, sizeof(buf)), 0);
        json_decref(v);
    }
}

static void test_key_encode_pair_layout(void **state)
{
    (void)state;
    uint8_t buf[64];
    json_t *pk = av_of("S", json_stringn("a\0b", 3)), *sk = J("{\"B\": \"AAE=\"}");
    size_t len = store_key_encode_pair(pk, sk, buf, sizeof(buf));
    assert_int_equal(len, 8);
    assert_memory_equal(buf,
                        "a\x00\xff"
                        "b\x00\x01\x00\x01",
                        8);
    assert_int_equal(store_key_encode_pair(pk, sk, buf, 7), 8);
    /* without a sort key: the escaped partition key and the terminator */
    assert_int_equal(store_key_encode_pair(pk, NULL, buf, sizeof(buf)), 6);
    assert_memory_equal(buf,
                        "a\x00\xff"
                        "b\x00\x01",
                        6);
    /* a sort key that is not a key type */
    json_t *bad = J("{\"BOOL\": true}");
    assert_int_equal(store_key_encode_pair(pk, bad, buf, sizeof(buf)), 0);
    json_decref(bad);
    json_decref(pk);
    json_decref(sk);
}

/* A partition key that is a prefix of another sorts first, whatever the sort keys. */
static void test_key_pair_prefix(void **state)
{
    (void)state;
    uint8_t a[64], b[64];
    json_t *p1 = J("{\"S\": \"a\"}"), *p2 = J("{\"S\": \"ab\"}"), *s1 = J("{\"S\": \"zzz\"}"), *s2 = J("{\"S\": \"\"}");
    size_t la = store_key_encode_pair(p1, s1, a, sizeof(a)), lb = store_key_encode_pair(p2, s2, b, sizeof(b));
    assert_true(memcmp(a, b, la < lb ? la : lb) < 0);
    /* a B partition key ending in 0x00 against one ending in 0x00 0x00 */
    json_t *b1 = J("{\"B\": \"YQA=\"}"), *b2 = J("{\"B\": \"YQAA\"}"), *n1 = J("{\"N\": \"99\"}");
    la = store_key_encode_pair(b1, n1, a, sizeof(a));
    lb = store_key_encode_pair(b2, n1, b, sizeof(b));
    assert_true(memcmp(a, b, la < lb ? la : lb) < 0);
    /* the hash-only encoding of pk is a prefix of every (pk, sk) encoding */
    la = store_key_encode_pair(p1, NULL, a, sizeof(a));
    lb = store_key_encode_pair(p1, s1, b, sizeof(b));
    assert_true(la < lb);
    assert_memory_equal(a, b, la);
    lb = store_key_encode_pair(p2, s1, b, sizeof(b));
    assert_true(memcmp(a, b, la) != 0);
    json_decref(p1);
    json_decref(p2);
    json_decref(s1);
    json_decref(s2);
    json_decref(b1);
    json_decref(b2);
    json_decref(n1);
}

static void test_key_decode(void **state)
{
    (void)state;
    uint8_t buf[64];
    json_t *pk, *sk;
    json_t *n = J("{\"N\": \"-12.5\"}"), *s = J("{\"S\": \"x\\u0000y\"}"), *b = J("{\"B\": \"AP8=\"}");
    size_t len = store_key_encode_pair(s, n, buf, sizeof(buf));
    assert_int_equal(store_key_decode_pair(buf, len, STORE_T_S, STORE_T_N, &pk, &sk), 0);
    assert_true(store_value_equal(pk, s));
    assert_true(store_value_equal(sk, n));
    json_decref(pk);
    json_decref(sk);
    len = store_key_encode_pair(b, NULL, buf, sizeof(buf));
    assert_int_equal(store_key_decode_pair(buf, len, STORE_T_B, STORE_T_NONE, &pk, &sk), 0);
    assert_true(store_value_equal(pk, b));
    assert_null(sk);
    json_decref(pk);
    /* not encodings */
    assert_int_equal(store_key_decode_pair((const uint8_t *)"abc", 3, STORE_T_S, STORE_T_NONE, &pk, &sk), -1);
    assert_null(pk);
    assert_int_equal(store_key_decode_pair((const uint8_t *)"a\x00\x02", 3, STORE_T_S, STORE_T_S, &pk, &sk), -1);
    assert_int_equal(store_key_decode_pair((const uint8_t *)"a\x00\x01z", 4, STORE_T_S, STORE_T_NONE, &pk, &sk), -1);
    assert_int_equal(store_key_decode_pair((const uint8_t *)"a\x00\x01\x07", 4, STORE_T_S, STORE_T_N, &pk, &sk), -1);
    assert_null(pk);
    assert_null(sk);
    assert_null(store_key_decode(STORE_T_S, (const uint8_t *)"\xff", 1)); /* not UTF-8 */
    assert_null(store_key_decode(STORE_T_N, (const uint8_t *)"\x09", 1));
    assert_null(store_key_decode(STORE_T_BOOL, (const uint8_t *)"", 0));
    json_t *e = store_key_decode(STORE_T_B, (const uint8_t *)"", 0);
    char *d = dump(e);
    assert_string_equal(d, "{\"B\":\"\"}");
    free(d);
    json_decref(e);
    json_decref(n);
    json_decref(s);
    json_decref(b);
}

/* ---- randomized: the key order ---- */

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

/* A random checked key value of type t, built to hit the encoding's edges (0x00, 0x01, 0xFF bytes, prefixes, numbers
 * of every sign, magnitude and digit count). */
static json_t *random_key(store_type_t t)
{
    char text[256];
    if (t == STORE_T_S) {
        static const char *const units[] = {"", "\x01", "a", "b", "\x7f", "\xc3\xbf", "\xef\xbf\xbf", "\xf0\x90\x80\x80"};
        size_t n = rnd(5), o = 0;
        for (size_t i = 0; i < n; i++) {
            size_t u = rnd(8);
            size_t ul = u == 0 ? 1 : strlen(units[u]); /* units[0] is the NUL character */
            memcpy(text + o, u == 0 ? "\0" : units[u], ul);
            o += ul;
        }
        return av_of("S", json_stringn(text, o));
    }
    if (t == STORE_T_B) {
        static const uint8_t bytes[] = {0x00, 0x01, 0x02, 0x7f, 0x80, 0xfe, 0xff};
        uint8_t raw[8];
        size_t n = rnd(6);
        for (size_t i = 0; i < n; i++)
            raw[i] = bytes[rnd(sizeof(bytes))];
        return av_of("B", store_b64_string(raw, n));
    }
    for (;;) {
        size_t digits = 1 + rnd(rnd(2) ? 4 : 38), o = 0;
        if (rnd(2))
            text[o++] = '-';
        for (size_t i = 0; i < digits; i++)
            text[o++] = (char)('0' + rnd(i == 0 ? 3 : 10));
        snprintf(text + o, sizeof(text) - o, "e%d", (int)rnd(rnd(3) ? 9 : 250) - (int)rnd(rnd(3) ? 9 : 130));
        json_t *av = av_of("N", json_string(text));
        if (store_value_check(av, NULL, 0) == 0)
            return av;
        json_decref(av);
    }
}

static int lmdb_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c != 0)
        return c < 0 ? -1 : 1;
    return al < bl ? -1 : al > bl;
}

typedef struct kp {
    json_t *pk, *sk;
    uint8_t enc[128];
    size_t len;
} kp_t;

static const store_type_t key_types[] = {STORE_T_S, STORE_T_N, STORE_T_B};

static int type_index(const char *name)
{
    for (int i = 0; i < 3; i++) {
        if (strcmp(store_type_name(key_types[i]), name) == 0)
            return i;
    }
    fail_msg("no key type %s", name);
    return -1;
}

/* Pairs with a partition key of type *state ("S", "N", "B") and no, S, N or B sort keys. */
static void test_random_key_order(void **state)
{
    enum { N = 200 };
    const store_type_t *types = key_types;
    static kp_t keys[N];
    size_t checked = 0, equal_pairs = 0;
    {
        int pt = type_index(*state);
        for (int st = -1; st < 3; st++) {
            for (size_t i = 0; i < N; i++) {
                /* reuse earlier partition keys often, so that sort keys decide */
                keys[i].pk = i > 0 && rnd(3) == 0 ? json_incref(keys[rnd((uint32_t)i)].pk) : random_key(types[pt]);
                keys[i].sk = st < 0 ? NULL : random_key(types[st]);
                keys[i].len = store_key_encode_pair(keys[i].pk, keys[i].sk, keys[i].enc, sizeof(keys[i].enc));
                assert_true(keys[i].len >= 2 && keys[i].len <= sizeof(keys[i].enc));
                json_t *pk, *sk;
                assert_int_equal(
                    store_key_decode_pair(keys[i].enc, keys[i].len, types[pt], st < 0 ? STORE_T_NONE : types[st], &pk, &sk), 0);
                assert_true(store_value_equal(pk, keys[i].pk));
                assert_true(st < 0 ? sk == NULL : store_value_equal(sk, keys[i].sk));
                json_decref(pk);
                json_decref(sk);
            }
            for (size_t i = 0; i < N; i++) {
                for (size_t j = i + 1; j < N; j++) {
                    int c;
                    assert_int_equal(store_value_compare(keys[i].pk, keys[j].pk, &c), 0);
                    if (c == 0 && st >= 0)
                        assert_int_equal(store_value_compare(keys[i].sk, keys[j].sk, &c), 0);
                    int e = lmdb_cmp(keys[i].enc, keys[i].len, keys[j].enc, keys[j].len);
                    if (c != e) {
                        char *a = dump(keys[i].pk), *b = dump(keys[j].pk);
                        fail_msg("pair order: %s vs %s: values %d, bytes %d", a, b, c, e);
                    }
                    equal_pairs += c == 0;
                    checked++;
                }
            }
            for (size_t i = 0; i < N; i++) {
                json_decref(keys[i].pk);
                json_decref(keys[i].sk);
            }
        }
    }
    assert_true(checked == 4 * (size_t)N * (N - 1) / 2);
    assert_true(equal_pairs > 0); /* the generator does produce equal pairs, which must encode alike */
}

/* Single-value encodings of type *state order like store_value_compare, and decode back. */
static void test_random_single_order(void **state)
{
    const store_type_t *types = key_types;
    {
        int t = type_index(*state);
        enum { N = 300 };
        json_t *v[N];
        uint8_t enc[N][64];
        size_t len[N];
        for (int i = 0; i < N; i++) {
            v[i] = random_key(types[t]);
            len[i] = store_key_encode(v[i], enc[i], sizeof(enc[i]));
            assert_true(len[i] <= sizeof(enc[i]));
            json_t *back = store_key_decode(types[t], enc[i], len[i]);
            assert_non_null(back);
            assert_true(store_value_equal(back, v[i]));
            json_decref(back);
        }
        for (int i = 0; i < N; i++) {
            for (int j = 0; j < N; j++) {
                int c;
                assert_int_equal(store_value_compare(v[i], v[j], &c), 0);
                assert_int_equal(c, lmdb_cmp(enc[i], len[i], enc[j], len[j]));
                assert_int_equal(c == 0, store_value_equal(v[i], v[j]));
            }
        }
        for (int i = 0; i < N; i++)
            json_decref(v[i]);
    }
}

/* ---- base64 ---- */

static void test_base64_round_trip(void **state)
{
    (void)state;
    uint8_t raw[64], back[64];
    char err[128];
    for (size_t n = 0; n < 40; n++) {
        for (size_t i = 0; i < n; i++)
            raw[i] = (uint8_t)rnd(256);
        json_t *s = store_b64_string(raw, n);
        assert_non_null(s);
        assert_int_equal(json_string_length(s), (n + 2) / 3 * 4);
        assert_int_equal(store_b64_decoded_size(json_string_value(s), json_string_length(s)), n);
        assert_int_equal(store_b64_decode(json_string_value(s), json_string_length(s), back), n);
        if (n > 0)
            assert_memory_equal(raw, back, n);
        json_t *av = av_of("B", s);
        assert_int_equal(store_value_check(av, err, sizeof(err)), 0); /* what we write, DynamoDB takes */
        assert_int_equal(store_value_size(av), n);
        json_decref(av);
    }
    json_t *s = store_b64_string((const uint8_t *)"foobar", 6);
    assert_string_equal(json_string_value(s), "Zm9vYmFy");
    json_decref(s);
    s = store_b64_string((const uint8_t *)"fo", 2);
    assert_string_equal(json_string_value(s), "Zm8=");
    json_decref(s);
}

/* ---- the error buffer ---- */

static void test_error_buffer(void **state)
{
    (void)state;
    char small[8];
    json_t *av = J("{\"SS\": []}");
    memset(small, 'x', sizeof(small));
    assert_int_equal(store_value_check(av, small, sizeof(small)), INV);
    assert_string_equal(small, "One or ");
    assert_int_equal(store_value_check(av, NULL, 0), INV);
    json_decref(av);
    /* a long duplicate list is cut, never overflowed */
    json_t *ss = json_array();
    for (int i = 0; i < 500; i++)
        json_array_append_new(ss, json_string("abcdefgh"));
    av = av_of("SS", ss);
    char err[100];
    memset(err, 'x', sizeof(err));
    assert_int_equal(store_value_check(av, err, sizeof(err)), INV);
    assert_int_equal(strlen(err), sizeof(err) - 1);
    assert_memory_equal(err, INVALID "Input collection [abcdefgh, abcdefgh", 60);
    assert_int_equal(store_value_check(av, NULL, 0), INV);
    assert_int_equal(store_value_check(av, err, 1), INV);
    assert_string_equal(err, "");
    json_decref(av);
}

/* A big checked item: every type, nested, and its size counted by hand. */
static void test_item_all_types(void **state)
{
    (void)state;
    char err[256];
    json_t *item = J("{\"a\": {\"S\": \"x1\"}, \"b\": {\"N\": \"-56.789\"}, \"c\": {\"B\": \"Yg==\"},"
                     " \"d\": {\"BOOL\": false}, \"e\": {\"NULL\": true}, \"f\": {\"SS\": [\"a\"]},"
                     " \"g\": {\"NS\": [\"-56.789\"]}, \"h\": {\"BS\": [\"Yg==\"]},"
                     " \"i\": {\"L\": [{\"S\": \"a\"}, {\"L\": []}, {\"M\": {}}]},"
                     " \"j\": {\"M\": {\"a\": {\"S\": \"a\"}, \"j\": {\"M\": {\"a\": {\"M\": {}}, \"b\": {\"L\": []}}}}}}");
    assert_int_equal(item_rc(item, err, sizeof(err)), 0);
    /* -56.789: 56789 with the first digit at 10^1 (odd): pairs 56 78 90 -> 3, +1 exponent, +1 negative = 5 */
    size_t want = (1 + 2) + (1 + 5) + (1 + 1) + (1 + 1) + (1 + 1) + (1 + 1) + (1 + 5) + (1 + 1) +
                  (1 + 3 + (1 + 1) + (1 + 3) + (1 + 3)) + (1 + 3 + (1 + 1 + 1) + (1 + 1 + (3 + (1 + 1 + 3) + (1 + 1 + 3))));
    assert_int_equal(store_item_size(item), want);
    json_t *copy = json_deep_copy(item);
    assert_int_equal(item_rc(copy, err, sizeof(err)), 0); /* checking a checked item changes nothing */
    assert_true(json_equal(copy, item));
    json_decref(copy);
    json_decref(item);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ser_string_members),
        cmocka_unit_test(test_ser_blob),
        cmocka_unit_test(test_ser_boolean),
        cmocka_unit_test(test_ser_lists),
        cmocka_unit_test(test_ser_maps),
        cmocka_unit_test(test_ser_attribute_value_itself),
        cmocka_unit_test(test_ser_before_validation),
        cmocka_unit_test(test_ser_unknown_members_ignored),
        cmocka_unit_test(test_shape_only_changes_nothing),
        cmocka_unit_test(test_empty_attribute_value),
        cmocka_unit_test(test_multiple_types),
        cmocka_unit_test(test_empty_strings_and_binaries_allowed),
        cmocka_unit_test(test_empty_sets),
        cmocka_unit_test(test_set_duplicates),
        cmocka_unit_test(test_set_null_members),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_number_normalization),
        cmocka_unit_test(test_booleans_and_null),
        cmocka_unit_test_prestate(test_nesting_depth, "M"),
        cmocka_unit_test_prestate(test_nesting_depth, "L"),
        cmocka_unit_test(test_nesting_mixed_in_item),
        cmocka_unit_test(test_nesting_far_too_deep),
        cmocka_unit_test(test_item_name_empty),
        cmocka_unit_test(test_item_name_length),
        cmocka_unit_test(test_item_name_utf8_length),
        cmocka_unit_test(test_item_map_names),
        cmocka_unit_test(test_item_shapes_and_order),
        cmocka_unit_test(test_item_normalizes),
        cmocka_unit_test(test_item_all_types),
        cmocka_unit_test(test_size_scalars),
        cmocka_unit_test(test_size_numbers),
        cmocka_unit_test(test_size_documents),
        cmocka_unit_test_prestate(test_size_limit_chars, "a"),
        cmocka_unit_test_prestate(test_size_limit_chars, "\xc3\xa9"),
        cmocka_unit_test_prestate(test_size_limit_chars, "\xe2\x82\xac"),
        cmocka_unit_test_prestate(test_size_limit_chars, "\xf0\x9f\x98\x80"),
        cmocka_unit_test(test_size_limit_multibyte_only),
        cmocka_unit_test(test_size_limit_dynalite_cases),
        cmocka_unit_test(test_size_limit_documents),
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_value_type),
        cmocka_unit_test(test_key_check),
        cmocka_unit_test_prestate(test_key_check_size, "hash"),
        cmocka_unit_test_prestate(test_key_check_size, "range"),
        cmocka_unit_test(test_equal_scalars),
        cmocka_unit_test(test_equal_sets),
        cmocka_unit_test(test_equal_documents),
        cmocka_unit_test(test_compare_strings),
        cmocka_unit_test(test_compare_numbers),
        cmocka_unit_test(test_compare_binaries),
        cmocka_unit_test(test_compare_other_types),
        cmocka_unit_test(test_key_encode_single),
        cmocka_unit_test(test_key_encode_pair_layout),
        cmocka_unit_test(test_key_pair_prefix),
        cmocka_unit_test(test_key_decode),
        cmocka_unit_test_prestate(test_random_key_order, "S"),
        cmocka_unit_test_prestate(test_random_key_order, "N"),
        cmocka_unit_test_prestate(test_random_key_order, "B"),
        cmocka_unit_test_prestate(test_random_single_order, "S"),
        cmocka_unit_test_prestate(test_random_single_order, "N"),
        cmocka_unit_test_prestate(test_random_single_order, "B"),
        cmocka_unit_test(test_base64_round_trip),
        cmocka_unit_test(test_error_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
