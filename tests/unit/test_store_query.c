/*
 * Unit tests of store/query.c: Query and Scan through store_call, over a real LMDB environment in a fresh mkdtemp()
 * directory (each test its own). Writes are answered on the writer thread: call() waits for the answer with a
 * semaphore; bulk loads queue puts asynchronously and wait with store_flush.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <jansson.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "store/store.h"
#include "tests/unit/store_fixture.h"

/* Runs a read that must succeed; returns its parsed answer. */
static json_t *read_ok_(store_t *s, const char *op, const char *req, int line)
{
    char *body;
    int st = call(s, op, req, &body);
    if (st != 200) {
        fprintf(stderr, "line %d: %s %s\n  got %d %s\n", line, op, req, st, body);
        free(body);
        fail();
    }
    json_t *o = json_loads(body, 0, NULL);
    free(body);
    assert_non_null(o);
    return o;
}
#define read_ok(s, op, req) read_ok_((s), (op), (req), __LINE__)

/* The values of attribute `attr` (its S or N text) of the answer's Items, joined with commas. */
static const char *values(json_t *o, const char *attr, char *buf, size_t cap)
{
    size_t off = 0;
    size_t i;
    json_t *it;
    buf[0] = '\0';
    json_array_foreach(json_object_get(o, "Items"), i, it)
    {
        json_t *av = json_object_get(it, attr), *t = av ? json_object_get(av, "S") : NULL;
        if (av != NULL && t == NULL)
            t = json_object_get(av, "N");
        off += (size_t)snprintf(buf + off, cap - off, "%s%s", i ? "," : "", t ? json_string_value(t) : "-");
    }
    return buf;
}

static long long ival(json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

/* A table "t" (pk S, sk N) with pk "a": sk -1, 2, 10, 5, 0.5 (v = "a<sk>"); pk "b": sk 1, 2; pk "c": sk 7. */
static void load_small(store_t *s)
{
    int acked = 0;
    make_table(s, "tbl", "pk", "S", "sk", "N");
    const char *a[] = {"-1", "2", "10", "5", "0.5"};
    for (int i = 0; i != 5; ++i)
        put_async(s, &acked, "tbl", "{\"pk\":{\"S\":\"a\"},\"sk\":{\"N\":\"%s\"},\"v\":{\"S\":\"a%s\"},\"n\":{\"N\":\"%d\"}}", a[i],
                  a[i], i);
    put_async(s, &acked, "tbl", "{\"pk\":{\"S\":\"b\"},\"sk\":{\"N\":\"1\"},\"v\":{\"S\":\"b1\"}}");
    put_async(s, &acked, "tbl", "{\"pk\":{\"S\":\"b\"},\"sk\":{\"N\":\"2\"},\"v\":{\"S\":\"b2\"}}");
    put_async(s, &acked, "tbl", "{\"pk\":{\"S\":\"c\"},\"sk\":{\"N\":\"7\"},\"v\":{\"S\":\"c7\"}}");
    store_flush(s);
    assert_int_equal(acked, 8);
}

#define QA "{\"TableName\":\"tbl\",\"KeyConditionExpression\":\"pk = :p\",\"ExpressionAttributeValues\":{\":p\":{\"S\":\"a\"}}"

static void q_values(store_t *s, const char *req, const char *attr, const char *want, int line)
{
    char buf[8192];
    json_t *o = read_ok_(s, "Query", req, line);
    if (strcmp(values(o, attr, buf, sizeof(buf)), want) != 0) {
        fprintf(stderr, "line %d: Query %s\n  got %s\n  want %s\n", line, req, buf, want);
        json_decref(o);
        fail();
    }
    json_decref(o);
}
#define QV(s, req, want) q_values((s), (req), "sk", (want), __LINE__)

/* ---- Query: key conditions and order ---- */

static void test_query_partition(void **state)
{
    store_t *s = S(state);
    load_small(s);
    json_t *o = read_ok(s, "Query", QA "}");
    assert_int_equal(ival(o, "Count"), 5);
    assert_int_equal(ival(o, "ScannedCount"), 5);
    assert_null(json_object_get(o, "LastEvaluatedKey"));
    json_decref(o);
    QV(s, QA "}", "-1,0.5,2,5,10");
}

static void test_query_numeric_order(void **state)
{
    store_t *s = S(state);
    load_small(s);
    /* -1, 2, 10 sort as numbers, not as text */
    QV(s, QA ",\"ScanIndexForward\":true}", "-1,0.5,2,5,10");
}

static void test_query_descending(void **state)
{
    store_t *s = S(state);
    load_small(s);
    QV(s, QA ",\"ScanIndexForward\":false}", "10,5,2,0.5,-1");
    /* descending with a range */
    QV(s,
       "{\"TableName\":\"tbl\",\"KeyConditionExpression\":\"pk = :p AND sk < :x\",\"ExpressionAttributeValues\":{\":p\":{\"S\":"
       "\"a\"},\":x\":{\"N\":\"5\"}},\"ScanIndexForward\":false}",
       "2,0.5,-1");
}

static void test_query_other_partitions(void **state)
{
    store_t *s = S(state);
    load_small(s);
    QV(s, "{\"TableName\":\"tbl\",\"KeyConditionExpression\":\"pk = :p\",\"ExpressionAttributeValues\":{\":p\":{\"S\":\"b\"}}}",
       "1,2");
    QV(s, "{\"TableName\":\"tbl\",\"KeyConditionExpression\":\"pk = :p\",\"ExpressionAttributeValues\":{\":p\":{\"S\":\"c\"}}}",
       "7");
    json_t *o = read_ok(
        s, "Query",
        "{\"TableName\":\"tbl\",\"KeyConditionExpression\":\"pk = :p\",\"ExpressionAttributeValues\":{\":p\":{\"S\":\"zz\"}}}");
    assert_int_equal(ival(o, "Count"), 0);
    assert_int_equal(json_array_size(json_object_get(o, "Items")), 0);
    json_decref(o);
}

#define QR(cond, vals)                                                                                                             \
    "{\"TableName\":\"tbl\",\"KeyConditionExpression\":\"" cond "\",\"ExpressionAttributeValues\":{\":p\":{\"S\":\"a\"}," vals "}" \
    "}"

static void test_query_sort_comparisons(void **state)
{
    store_t *s = S(state);
    load_small(s);
    QV(s, QR("pk = :p AND sk = :x", "\":x\":{\"N\":\"2\"}"), "2");
    QV(s, QR("pk = :p AND sk = :x", "\":x\":{\"N\":\"3\"}"), "");
    QV(s, QR("pk = :p AND sk < :x", "\":x\":{\"N\":\"2\"}"), "-1,0.5");
    QV(s, QR("pk = :p AND sk <= :x", "\":x\":{\"N\":\"2\"}"), "-1,0.5,2");
    QV(s, QR("pk = :p AND sk > :x", "\":x\":{\"N\":\"2\"}"), "5,10");
    QV(s, QR("pk = :p AND sk >= :x", "\":x\":{\"N\":\"2\"}"), "2,5,10");
    QV(s, QR("pk = :p AND :x < sk", "\":x\":{\"N\":\"2\"}"), "5,10");
    QV(s, QR("pk = :p AND sk > :x", "\":x\":{\"N\":\"10\"}"), "");
    QV(s, QR("pk = :p AND sk < :x", "\":x\":{\"N\":\"-5\"}"), "");
}

static void test_query_between(void **state)
{
    store_t *s = S(state);
    load_small(s);
    QV(s, QR("pk = :p AND sk BETWEEN :x AND :y", "\":x\":{\"N\":\"0.5\"},\":y\":{\"N\":\"5\"}"), "0.5,2,5");
    QV(s, QR("pk = :p AND sk BETWEEN :x AND :y", "\":x\":{\"N\":\"3\"},\":y\":{\"N\":\"4\"}"), "");
    expect(s, "Query", QR("pk = :p AND sk BETWEEN :x AND :y", "\":x\":{\"N\":\"5\"},\":y\":{\"N\":\"1\"}"), 400,
           "The BETWEEN operator requires upper bound to be greater than or equal to lower bound");
}

static void test_query_begins_with(void **state)
{
    store_t *s = S(state);
    int acked = 0;
    make_table(s, "wds", "pk", "S", "sk", "S");
    const char *words[] = {"app", "apple", "apply", "apricot", "b", "ap", "a", "aq"};
    for (int i = 0; i != 8; ++i)
        put_async(s, &acked, "wds", "{\"pk\":{\"S\":\"x\"},\"sk\":{\"S\":\"%s\"}}", words[i]);
    put_async(s, &acked, "wds", "{\"pk\":{\"S\":\"y\"},\"sk\":{\"S\":\"apple\"}}");
    store_flush(s);
    QV(s,
       "{\"TableName\":\"wds\",\"KeyConditionExpression\":\"pk = :p AND begins_with(sk, :b)\",\"ExpressionAttributeValues\":"
       "{\":p\":{\"S\":\"x\"},\":b\":{\"S\":\"app\"}}}",
       "app,apple,apply");
    QV(s,
       "{\"TableName\":\"wds\",\"KeyConditionExpression\":\"pk = :p AND begins_with(sk, :b)\",\"ExpressionAttributeValues\":"
       "{\":p\":{\"S\":\"x\"},\":b\":{\"S\":\"ap\"}},\"ScanIndexForward\":false}",
       "apricot,apply,apple,app,ap");
    QV(s,
       "{\"TableName\":\"wds\",\"KeyConditionExpression\":\"pk = :p AND begins_with(sk, :b)\",\"ExpressionAttributeValues\":"
       "{\":p\":{\"S\":\"x\"},\":b\":{\"S\":\"zz\"}}}",
       "");
    /* the sort key as strings: bytewise */
    QV(s, "{\"TableName\":\"wds\",\"KeyConditionExpression\":\"pk = :p\",\"ExpressionAttributeValues\":{\":p\":{\"S\":\"x\"}}}",
       "a,ap,app,apple,apply,apricot,aq,b");
}

static void test_query_begins_with_binary(void **state)
{
    store_t *s = S(state);
    int acked = 0;
    make_table(s, "bins", "pk", "S", "sk", "B");
    /* AAE= is 00 01, AAI= is 00 02, AQ== is 01, /w== is ff, //8= is ff ff */
    const char *b[] = {"AAE=", "AAI=", "AQ==", "/w==", "//8="};
    for (int i = 0; i != 5; ++i)
        put_async(s, &acked, "bins", "{\"pk\":{\"S\":\"x\"},\"sk\":{\"B\":\"%s\"},\"i\":{\"N\":\"%d\"}}", b[i], i);
    store_flush(s);
    char buf[256];
    json_t *o = read_ok(s, "Query",
                        "{\"TableName\":\"bins\",\"KeyConditionExpression\":\"pk = :p AND begins_with(sk, :b)\","
                        "\"ExpressionAttributeValues\":{\":p\":{\"S\":\"x\"},\":b\":{\"B\":\"AA==\"}}}");
    assert_string_equal(values(o, "i", buf, sizeof(buf)), "0,1");
    json_decref(o);
    o = read_ok(s, "Query",
                "{\"TableName\":\"bins\",\"KeyConditionExpression\":\"pk = :p AND begins_with(sk, :b)\","
                "\"ExpressionAttributeValues\":{\":p\":{\"S\":\"x\"},\":b\":{\"B\":\"/w==\"}}}");
    assert_string_equal(values(o, "i", buf, sizeof(buf)), "3,4");
    json_decref(o);
}

static void test_query_hash_only_table(void **state)
{
    store_t *s = S(state);
    int acked = 0;
    make_table(s, "hsh", "id", "N", NULL, NULL);
    for (int i = 0; i != 10; ++i)
        put_async(s, &acked, "hsh", "{\"id\":{\"N\":\"%d\"},\"v\":{\"N\":\"%d\"}}", i, i * 10);
    store_flush(s);
    char buf[256];
    json_t *o = read_ok(
        s, "Query",
        "{\"TableName\":\"hsh\",\"KeyConditionExpression\":\"id = :p\",\"ExpressionAttributeValues\":{\":p\":{\"N\":\"7\"}}}");
    assert_string_equal(values(o, "v", buf, sizeof(buf)), "70");
    assert_int_equal(ival(o, "Count"), 1);
    json_decref(o);
    expect(s, "Query",
           "{\"TableName\":\"hsh\",\"KeyConditionExpression\":\"id = :p AND sk > :x\",\"ExpressionAttributeValues\":{\":p\":{\"N\":"
           "\"7\"},\":x\":{\"N\":\"1\"}}}",
           400, "ValidationException");
}

static void test_query_binary_and_numeric_pk(void **state)
{
    store_t *s = S(state);
    int acked = 0;
    make_table(s, "npk", "pk", "N", "sk", "S");
    put_async(s, &acked, "npk", "{\"pk\":{\"N\":\"1.50\"},\"sk\":{\"S\":\"x\"}}");
    put_async(s, &acked, "npk", "{\"pk\":{\"N\":\"15\"},\"sk\":{\"S\":\"y\"}}");
    store_flush(s);
    /* 1.5 and 1.50 are one number */
    QV(s, "{\"TableName\":\"npk\",\"KeyConditionExpression\":\"pk = :p\",\"ExpressionAttributeValues\":{\":p\":{\"N\":\"1.5\"}}}",
       "x");
}

/* ---- Query: filters, projections, Select ---- */

static void test_query_filter(void **state)
{
    store_t *s = S(state);
    load_small(s);
    json_t *o = read_ok(s, "Query",
                        "{\"TableName\":\"tbl\",\"KeyConditionExpression\":\"pk = :p\",\"FilterExpression\":\"n >= :m\","
                        "\"ExpressionAttributeValues\":{\":p\":{\"S\":\"a\"},\":m\":{\"N\":\"3\"}}}");
    char buf[256];
    assert_string_equal(values(o, "sk", buf, sizeof(buf)), "0.5,5"); /* n: 4, 3 */
    assert_int_equal(ival(o, "Count"), 2);
    assert_int_equal(ival(o, "ScannedCount"), 5);
    json_decref(o);
}

static void test_query_filter_on_key_rejected(void **state)
{
    store_t *s = S(state);
    load_small(s);
    expect(s, "Query",
           "{\"TableName\":\"tbl\",\"KeyConditionExpression\":\"pk = :p\",\"FilterExpression\":\"sk > :m\","
           "\"ExpressionAttributeValues\":{\":p\":{\"S\":\"a\"},\":m\":{\"N\":\"3\"}}}",
           400, "Filter Expression can only contain non-primary key attributes: Primary key attribute: sk");
}

static void test_query_projection(void **state)
{
    store_t *s = S(state);
    load_small(s);
    json_t *o = read_ok(s, "Query", QA ",\"ProjectionExpression\":\"#v\",\"ExpressionAttributeNames\":{\"#v\":\"v\"}}");
    json_t *it = json_array_get(json_object_get(o, "Items"), 0);
    assert_int_equal(json_object_size(it), 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(it, "v"), "S")), "a-1");
    json_decref(o);
    o = read_ok(s, "Query", QA ",\"ProjectionExpression\":\"v\",\"Select\":\"SPECIFIC_ATTRIBUTES\"}");
    assert_int_equal(json_object_size(json_array_get(json_object_get(o, "Items"), 0)), 1);
    json_decref(o);
}

static void test_query_select_count(void **state)
{
    store_t *s = S(state);
    load_small(s);
    json_t *o = read_ok(s, "Query", QA ",\"Select\":\"COUNT\"}");
    assert_null(json_object_get(o, "Items"));
    assert_int_equal(ival(o, "Count"), 5);
    assert_int_equal(ival(o, "ScannedCount"), 5);
    json_decref(o);
    o = read_ok(s, "Query", QA ",\"Select\":\"ALL_ATTRIBUTES\"}");
    assert_int_equal(json_array_size(json_object_get(o, "Items")), 5);
    assert_int_equal(json_object_size(json_array_get(json_object_get(o, "Items"), 0)), 4);
    json_decref(o);
}

static void test_query_select_errors(void **state)
{
    store_t *s = S(state);
    load_small(s);
    expect(s, "Query", QA ",\"Select\":\"ALL_ATTRIBUTES\",\"ProjectionExpression\":\"v\"}", 400,
           "Cannot specify the ProjectionExpression when choosing to get ALL_ATTRIBUTES");
    expect(s, "Query", QA ",\"Select\":\"COUNT\",\"ProjectionExpression\":\"v\"}", 400,
           "Cannot specify the ProjectionExpression when choosing to get only the Count");
    expect(s, "Query", QA ",\"Select\":\"SPECIFIC_ATTRIBUTES\"}", 400,
           "Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES");
    expect(s, "Query", QA ",\"Select\":\"ALL_PROJECTED_ATTRIBUTES\"}", 400,
           "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName");
    expect(s, "Query", QA ",\"Select\":\"SOME\"}", 400,
           "Value 'SOME' at 'select' failed to satisfy constraint: Member must satisfy enum value set: [ALL_ATTRIBUTES, "
           "ALL_PROJECTED_ATTRIBUTES, SPECIFIC_ATTRIBUTES, COUNT]");
}

static void test_query_consistent_read(void **state)
{
    store_t *s = S(state);
    load_small(s);
    json_t *o = read_ok(s, "Query", QA ",\"ConsistentRead\":true,\"ReturnConsumedCapacity\":\"NONE\"}");
    assert_int_equal(ival(o, "Count"), 5);
    json_decref(o);
    expect(s, "Query", QA ",\"ConsistentRead\":\"maybe\"}", 400, "SerializationException");
}

/* ---- Query: Limit and pages ---- */

static void test_query_limit(void **state)
{
    store_t *s = S(state);
    load_small(s);
    json_t *o = read_ok(s, "Query", QA ",\"Limit\":2}");
    char buf[256];
    assert_string_equal(values(o, "sk", buf, sizeof(buf)), "-1,0.5");
    json_t *lek = json_object_get(o, "LastEvaluatedKey");
    assert_non_null(lek);
    assert_int_equal(json_object_size(lek), 2);
    assert_string_equal(json_string_value(json_object_get(json_object_get(lek, "pk"), "S")), "a");
    assert_string_equal(json_string_value(json_object_get(json_object_get(lek, "sk"), "N")), "0.5");
    json_decref(o);
    /* resume */
    QV(s, QA ",\"Limit\":2,\"ExclusiveStartKey\":{\"pk\":{\"S\":\"a\"},\"sk\":{\"N\":\"0.5\"}}}", "2,5");
    QV(s, QA ",\"ExclusiveStartKey\":{\"pk\":{\"S\":\"a\"},\"sk\":{\"N\":\"5\"}}}", "10");
    /* descending resume */
    QV(s, QA ",\"ScanIndexForward\":false,\"ExclusiveStartKey\":{\"pk\":{\"S\":\"a\"},\"sk\":{\"N\":\"5\"}}}", "2,0.5,-1");
}

static void test_query_limit_counts_before_filter(void **state)
{
    store_t *s = S(state);
    load_small(s);
    /* n of a's items in sk order: -1:0, 0.5:4, 2:1, 5:3, 10:2 */
    json_t *o = read_ok(s, "Query",
                        "{\"TableName\":\"tbl\",\"KeyConditionExpression\":\"pk = :p\",\"FilterExpression\":\"n = :m\","
                        "\"ExpressionAttributeValues\":{\":p\":{\"S\":\"a\"},\":m\":{\"N\":\"3\"}},\"Limit\":2}");
    assert_int_equal(ival(o, "Count"), 0);
    assert_int_equal(ival(o, "ScannedCount"), 2);
    assert_non_null(json_object_get(o, "LastEvaluatedKey"));
    json_decref(o);
}

static void test_query_limit_errors(void **state)
{
    store_t *s = S(state);
    load_small(s);
    expect(s, "Query", QA ",\"Limit\":0}", 400,
           "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater "
           "than or equal to 1");
    expect(s, "Query", QA ",\"Limit\":-3}", 400, "Member must have value greater than or equal to 1");
    expect(s, "Query", QA ",\"Limit\":\"x\"}", 400, "SerializationException");
}

static void test_query_pagination_1000(void **state)
{
    store_t *s = S(state);
    int acked = 0;
    make_table(s, "big", "pk", "S", "sk", "N");
    for (int i = 0; i != 1000; ++i)
        put_async(s, &acked, "big", "{\"pk\":{\"S\":\"p\"},\"sk\":{\"N\":\"%d\"},\"i\":{\"N\":\"%d\"}}", (i * 7919) % 1000 - 500,
                  i);
    put_async(s, &acked, "big", "{\"pk\":{\"S\":\"q\"},\"sk\":{\"N\":\"1\"}}");
    store_flush(s);
    assert_int_equal(acked, 1001);
    for (int dir = 0; dir != 2; ++dir) {
        unsigned char seen[1000] = {0};
        int total = 0, pages = 0;
        char req[1024], *lek = NULL;
        long long prev = dir ? 100000 : -100000;
        for (;;) {
            snprintf(req, sizeof(req),
                     "{\"TableName\":\"big\",\"KeyConditionExpression\":\"pk = :p\",\"ExpressionAttributeValues\":{\":p\":{\"S\":"
                     "\"p\"}},\"Limit\":37,\"ScanIndexForward\":%s%s%s}",
                     dir ? "false" : "true", lek ? ",\"ExclusiveStartKey\":" : "", lek ? lek : "");
            free(lek);
            lek = NULL;
            json_t *o = read_ok(s, "Query", req);
            size_t i;
            json_t *it;
            json_array_foreach(json_object_get(o, "Items"), i, it)
            {
                long long sk = atoll(json_string_value(json_object_get(json_object_get(it, "sk"), "N")));
                int idx = (int)atoll(json_string_value(json_object_get(json_object_get(it, "i"), "N")));
                assert_true(dir ? sk < prev : sk > prev);
                prev = sk;
                assert_int_equal(seen[idx], 0);
                seen[idx] = 1;
                total++;
            }
            pages++;
            json_t *l = json_object_get(o, "LastEvaluatedKey");
            if (l != NULL)
                lek = json_dumps(l, JSON_COMPACT);
            json_decref(o);
            if (lek == NULL)
                break;
        }
        assert_int_equal(total, 1000);
        assert_int_equal(pages, 28); /* 27 full pages and 1 of 1 */
    }
}

static void test_query_page_1mb(void **state)
{
    store_t *s = S(state);
    int acked = 0;
    make_table(s, "large", "pk", "S", "sk", "N");
    /* 30 items of about 100 KB: a page holds what passes 1 MB, 11 items */
    char *pad = malloc(100 * 1024 + 1);
    memset(pad, 'x', 100 * 1024);
    pad[100 * 1024] = '\0';
    for (int i = 0; i != 30; ++i) {
        size_t n = 100 * 1024 + 256;
        char *item = malloc(n);
        snprintf(item, n, "{\"pk\":{\"S\":\"p\"},\"sk\":{\"N\":\"%d\"},\"pad\":{\"S\":\"%s\"}}", i, pad);
        char *req = malloc(n + 64);
        snprintf(req, n + 64, "{\"TableName\":\"large\",\"Item\":%s}", item);
        store_call(s, "PutItem", req, strlen(req), fixture_put_done, &acked);
        free(req);
        free(item);
    }
    free(pad);
    store_flush(s);
    assert_int_equal(acked, 30);
    int total = 0, pages = 0;
    char req[512], *lek = NULL;
    for (;;) {
        snprintf(req, sizeof(req),
                 "{\"TableName\":\"large\",\"KeyConditionExpression\":\"pk = :p\",\"ExpressionAttributeValues\":{\":p\":{\"S\":"
                 "\"p\"}},\"ProjectionExpression\":\"sk\"%s%s}",
                 lek ? ",\"ExclusiveStartKey\":" : "", lek ? lek : "");
        free(lek);
        lek = NULL;
        json_t *o = read_ok(s, "Query", req);
        int n = (int)json_array_size(json_object_get(o, "Items"));
        if (pages < 2)
            assert_int_equal(n, 11); /* 10 items are 1000 KB + a little, the 11th passes 1 MB */
        assert_int_equal(ival(o, "ScannedCount"), n);
        total += n;
        pages++;
        json_t *l = json_object_get(o, "LastEvaluatedKey");
        if (l != NULL)
            lek = json_dumps(l, JSON_COMPACT);
        json_decref(o);
        if (lek == NULL)
            break;
    }
    assert_int_equal(total, 30);
    assert_int_equal(pages, 3);
}

/* ---- Query: ExclusiveStartKey errors ---- */

static void test_query_esk_errors(void **state)
{
    store_t *s = S(state);
    load_small(s);
    expect(s, "Query", QA ",\"ExclusiveStartKey\":{\"pk\":{\"S\":\"a\"}}}", 400,
           "The provided starting key is invalid: The provided key element does not match the schema");
    expect(s, "Query", QA ",\"ExclusiveStartKey\":{\"pk\":{\"S\":\"a\"},\"sk\":{\"S\":\"1\"}}}", 400,
           "The provided starting key is invalid: The provided key element does not match the schema");
    expect(s, "Query", QA ",\"ExclusiveStartKey\":{\"pk\":{\"S\":\"a\"},\"sk\":{\"N\":\"1\"},\"x\":{\"N\":\"1\"}}}", 400,
           "The provided starting key is invalid: The provided key element does not match the schema");
    expect(s, "Query", QA ",\"ExclusiveStartKey\":{\"pk\":{\"S\":\"b\"},\"sk\":{\"N\":\"1\"}}}", 400,
           "The provided starting key is outside query boundaries based on provided conditions");
    expect(s, "Query", QR("pk = :p AND sk > :x", "\":x\":{\"N\":\"2\"}"), 200, "\"Count\":2");
    expect(s, "Query",
           "{\"TableName\":\"tbl\",\"KeyConditionExpression\":\"pk = :p AND sk > :x\",\"ExpressionAttributeValues\":{\":p\":{\"S\":"
           "\"a\"},\":x\":{\"N\":\"2\"}},\"ExclusiveStartKey\":{\"pk\":{\"S\":\"a\"},\"sk\":{\"N\":\"1\"}}}",
           400, "The provided starting key is outside query boundaries based on provided conditions");
    expect(s, "Query", QA ",\"ExclusiveStartKey\":{\"pk\":{\"S\":\"a\"},\"sk\":{\"N\":\"x1\"}}}", 400,
           "The provided starting key is invalid: ");
    expect(s, "Query", QA ",\"ExclusiveStartKey\":[1]}", 400, "SerializationException");
    /* a start key that is not an item's works as a position */
    QV(s, QA ",\"ExclusiveStartKey\":{\"pk\":{\"S\":\"a\"},\"sk\":{\"N\":\"3\"}}}", "5,10");
}

/* ---- Query: key condition errors ---- */

static void test_query_key_condition_errors(void **state)
{
    store_t *s = S(state);
    load_small(s);
    expect(s, "Query", "{\"TableName\":\"tbl\"}", 400,
           "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.");
    expect(s, "Query",
           "{\"TableName\":\"tbl\",\"KeyConditionExpression\":\"v = :p\",\"ExpressionAttributeValues\":{\":p\":{\"S\":\"a\"}}}",
           400, "Query condition missed key schema element");
    expect(s, "Query", QR("pk = :p OR sk = :x", "\":x\":{\"N\":\"2\"}"), 400,
           "Invalid operator used in KeyConditionExpression: OR");
    expect(s, "Query",
           "{\"TableName\":\"tbl\",\"KeyConditionExpression\":\"pk = :p\",\"ExpressionAttributeValues\":{\":p\":{\"N\":\"1\"}}}",
           400, "One or more parameter values were invalid: Condition parameter type does not match schema type");
    expect(s, "Query", QR("pk = :p AND sk = :x", "\":x\":{\"S\":\"2\"}"), 400,
           "One or more parameter values were invalid: Condition parameter type does not match schema type");
    expect(s, "Query", QR("pk = :p AND begins_with(sk, :x)", "\":x\":{\"S\":\"2\"}"), 400, "ValidationException");
    expect(s, "Query",
           "{\"TableName\":\"tbl\",\"KeyConditionExpression\":\"pk = :p\",\"ExpressionAttributeValues\":{\":p\":{\"S\":\"\"}}}",
           400, "ValidationException");
    expect(
        s, "Query",
        "{\"TableName\":\"tbl\",\"KeyConditionExpression\":\"pk = :p AND\",\"ExpressionAttributeValues\":{\":p\":{\"S\":\"a\"}}}",
        400, "Invalid KeyConditionExpression: Syntax error");
}

static void test_query_placeholder_errors(void **state)
{
    store_t *s = S(state);
    load_small(s);
    expect(s, "Query", QA ",\"ExpressionAttributeNames\":{\"#x\":\"v\"}}", 400,
           "Value provided in ExpressionAttributeNames unused in expressions: keys: {#x}");
    expect(s, "Query", QR("pk = :p", "\":x\":{\"N\":\"2\"}"), 400,
           "Value provided in ExpressionAttributeValues unused in expressions: keys: {:x}");
    expect(s, "Query",
           "{\"TableName\":\"tbl\",\"KeyConditionExpression\":\"pk = :q\",\"ExpressionAttributeValues\":{\":p\":{\"S\":\"a\"}}}",
           400, "An expression attribute value used in expression is not defined");
    /* names and values shared by the key condition, the filter and the projection */
    json_t *o = read_ok(s, "Query",
                        "{\"TableName\":\"tbl\",\"KeyConditionExpression\":\"#k = :p\",\"FilterExpression\":\"#v <> :p\","
                        "\"ProjectionExpression\":\"#v\",\"ExpressionAttributeNames\":{\"#k\":\"pk\",\"#v\":\"v\"},"
                        "\"ExpressionAttributeValues\":{\":p\":{\"S\":\"a\"}}}");
    assert_int_equal(ival(o, "Count"), 5);
    json_decref(o);
}

static void test_query_legacy_and_index(void **state)
{
    store_t *s = S(state);
    load_small(s);
    expect(
        s, "Query",
        "{\"TableName\":\"tbl\",\"KeyConditions\":{\"pk\":{\"ComparisonOperator\":\"EQ\",\"AttributeValueList\":[{\"S\":\"a\"}]}}}",
        200, "\"Count\":5");
    expect(s, "Query", QA ",\"QueryFilter\":{}}", 400,
           "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: "
           "{QueryFilter} Expression parameters: {KeyConditionExpression}");
    expect(s, "Query", QA ",\"AttributesToGet\":[\"v\"]}", 400, "Non-expression parameters: {AttributesToGet}");
    expect(s, "Query", QA ",\"IndexName\":\"byV\"}", 400, "The table does not have the specified index: byV");
    expect(s, "Query", QA ",\"IndexName\":\"x\"}", 400, "Value 'x' at 'indexName' failed to satisfy constraint");
}

static void test_query_table_errors(void **state)
{
    store_t *s = S(state);
    expect(s, "Query",
           "{\"TableName\":\"nope\",\"KeyConditionExpression\":\"pk = :p\",\"ExpressionAttributeValues\":{\":p\":{\"S\":\"a\"}}}",
           400, "ResourceNotFoundException");
    expect(s, "Query", "{\"KeyConditionExpression\":\"pk = :p\",\"ExpressionAttributeValues\":{\":p\":{\"S\":\"a\"}}}", 400,
           "Value null at 'tableName' failed to satisfy constraint: Member must not be null");
    expect(s, "Query",
           "{\"TableName\":\"a\",\"KeyConditionExpression\":\"pk = :p\",\"ExpressionAttributeValues\":{\":p\":{\"S\":\"a\"}}}", 400,
           "Member must have length greater than or equal to 3");
    expect(s, "Query", "{\"TableName\":5}", 400, "SerializationException");
}

static void test_query_filter_value_errors(void **state)
{
    store_t *s = S(state);
    load_small(s);
    expect(s, "Query",
           "{\"TableName\":\"tbl\",\"KeyConditionExpression\":\"pk = :p\",\"FilterExpression\":\"n BETWEEN :b AND :a\","
           "\"ExpressionAttributeValues\":{\":p\":{\"S\":\"a\"},\":a\":{\"N\":\"1\"},\":b\":{\"N\":\"5\"}}}",
           400, "Invalid FilterExpression: The BETWEEN operator requires upper bound");
    expect(s, "Query",
           "{\"TableName\":\"tbl\",\"KeyConditionExpression\":\"pk = :p\",\"FilterExpression\":\"n = \","
           "\"ExpressionAttributeValues\":{\":p\":{\"S\":\"a\"}}}",
           400, "Invalid FilterExpression: Syntax error");
}

/* ---- Scan ---- */

static void test_scan_all(void **state)
{
    store_t *s = S(state);
    load_small(s);
    json_t *o = read_ok(s, "Scan", "{\"TableName\":\"tbl\"}");
    assert_int_equal(ival(o, "Count"), 8);
    assert_int_equal(ival(o, "ScannedCount"), 8);
    assert_null(json_object_get(o, "LastEvaluatedKey"));
    char buf[256];
    /* in key order: partitions in order, each by sort key */
    assert_string_equal(values(o, "v", buf, sizeof(buf)), "a-1,a0.5,a2,a5,a10,b1,b2,c7");
    json_decref(o);
}

static void test_scan_empty_and_missing(void **state)
{
    store_t *s = S(state);
    make_table(s, "empty", "pk", "S", NULL, NULL);
    json_t *o = read_ok(s, "Scan", "{\"TableName\":\"empty\"}");
    assert_int_equal(ival(o, "Count"), 0);
    assert_int_equal(json_array_size(json_object_get(o, "Items")), 0);
    json_decref(o);
    expect(s, "Scan", "{\"TableName\":\"nope\"}", 400, "Requested resource not found");
}

static void test_scan_filter_projection(void **state)
{
    store_t *s = S(state);
    load_small(s);
    json_t *o =
        read_ok(s, "Scan",
                "{\"TableName\":\"tbl\",\"FilterExpression\":\"begins_with(v, :b) OR sk = :s\",\"ProjectionExpression\":\"v\","
                "\"ExpressionAttributeValues\":{\":b\":{\"S\":\"b\"},\":s\":{\"N\":\"7\"}}}");
    char buf[256];
    assert_string_equal(values(o, "v", buf, sizeof(buf)), "b1,b2,c7");
    assert_int_equal(ival(o, "Count"), 3);
    assert_int_equal(ival(o, "ScannedCount"), 8);
    assert_int_equal(json_object_size(json_array_get(json_object_get(o, "Items"), 0)), 1);
    json_decref(o);
}

static void test_scan_select(void **state)
{
    store_t *s = S(state);
    load_small(s);
    json_t *o = read_ok(s, "Scan", "{\"TableName\":\"tbl\",\"Select\":\"COUNT\"}");
    assert_null(json_object_get(o, "Items"));
    assert_int_equal(ival(o, "Count"), 8);
    json_decref(o);
    expect(s, "Scan", "{\"TableName\":\"tbl\",\"Select\":\"ALL_ATTRIBUTES\",\"ProjectionExpression\":\"v\"}", 400,
           "Cannot specify the ProjectionExpression when choosing to get ALL_ATTRIBUTES");
    expect(s, "Scan", "{\"TableName\":\"tbl\",\"Select\":\"ALL_PROJECTED_ATTRIBUTES\"}", 400,
           "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName");
    expect(s, "Scan", "{\"TableName\":\"tbl\",\"Select\":\"SPECIFIC_ATTRIBUTES\"}", 400,
           "Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES");
}

static void test_scan_limit_pages(void **state)
{
    store_t *s = S(state);
    load_small(s);
    json_t *o = read_ok(s, "Scan", "{\"TableName\":\"tbl\",\"Limit\":3}");
    char buf[256];
    assert_string_equal(values(o, "v", buf, sizeof(buf)), "a-1,a0.5,a2");
    json_t *l = json_object_get(o, "LastEvaluatedKey");
    char *lek = json_dumps(l, JSON_COMPACT), req[512];
    json_decref(o);
    snprintf(req, sizeof(req), "{\"TableName\":\"tbl\",\"Limit\":4,\"ExclusiveStartKey\":%s}", lek);
    free(lek);
    o = read_ok(s, "Scan", req);
    assert_string_equal(values(o, "v", buf, sizeof(buf)), "a5,a10,b1,b2");
    json_decref(o);
    o = read_ok(s, "Scan", "{\"TableName\":\"tbl\",\"ExclusiveStartKey\":{\"pk\":{\"S\":\"b\"},\"sk\":{\"N\":\"2\"}}}");
    assert_string_equal(values(o, "v", buf, sizeof(buf)), "c7");
    assert_null(json_object_get(o, "LastEvaluatedKey"));
    json_decref(o);
    expect(s, "Scan", "{\"TableName\":\"tbl\",\"ExclusiveStartKey\":{\"pk\":{\"S\":\"b\"}}}", 400,
           "The provided starting key is invalid: The provided key element does not match the schema");
    expect(s, "Scan", "{\"TableName\":\"tbl\",\"Limit\":0}", 400, "at 'limit' failed to satisfy constraint");
}

static void test_scan_pagination_1000(void **state)
{
    store_t *s = S(state);
    int acked = 0;
    make_table(s, "big", "id", "N", NULL, NULL);
    for (int i = 0; i != 1000; ++i)
        put_async(s, &acked, "big", "{\"id\":{\"N\":\"%d\"}}", i);
    store_flush(s);
    unsigned char seen[1000] = {0};
    int total = 0;
    char req[512], *lek = NULL;
    for (;;) {
        snprintf(req, sizeof(req), "{\"TableName\":\"big\",\"Limit\":100%s%s}", lek ? ",\"ExclusiveStartKey\":" : "",
                 lek ? lek : "");
        free(lek);
        lek = NULL;
        json_t *o = read_ok(s, "Scan", req);
        size_t i;
        json_t *it;
        json_array_foreach(json_object_get(o, "Items"), i, it)
        {
            int id = atoi(json_string_value(json_object_get(json_object_get(it, "id"), "N")));
            assert_int_equal(seen[id], 0);
            seen[id] = 1;
            total++;
        }
        json_t *l = json_object_get(o, "LastEvaluatedKey");
        if (l != NULL)
            lek = json_dumps(l, JSON_COMPACT);
        json_decref(o);
        if (lek == NULL)
            break;
    }
    assert_int_equal(total, 1000);
}

static void test_scan_segments(void **state)
{
    store_t *s = S(state);
    int acked = 0;
    make_table(s, "seg", "pk", "S", "sk", "N");
    for (int i = 0; i != 500; ++i)
        put_async(s, &acked, "seg", "{\"pk\":{\"S\":\"p%d\"},\"sk\":{\"N\":\"%d\"},\"i\":{\"N\":\"%d\"}}", i % 97, i, i);
    store_flush(s);
    for (int total = 1; total <= 7; total += 3) {
        unsigned char seen[500] = {0};
        int count = 0, nonempty = 0;
        for (int seg = 0; seg != total; ++seg) {
            char req[512], *lek = NULL;
            int in_seg = 0;
            for (;;) {
                snprintf(req, sizeof(req), "{\"TableName\":\"seg\",\"Segment\":%d,\"TotalSegments\":%d,\"Limit\":13%s%s}", seg,
                         total, lek ? ",\"ExclusiveStartKey\":" : "", lek ? lek : "");
                free(lek);
                lek = NULL;
                json_t *o = read_ok(s, "Scan", req);
                size_t i;
                json_t *it;
                json_array_foreach(json_object_get(o, "Items"), i, it)
                {
                    int idx = atoi(json_string_value(json_object_get(json_object_get(it, "i"), "N")));
                    assert_int_equal(seen[idx], 0);
                    seen[idx] = 1;
                    count++;
                    in_seg++;
                }
                json_t *l = json_object_get(o, "LastEvaluatedKey");
                if (l != NULL)
                    lek = json_dumps(l, JSON_COMPACT);
                json_decref(o);
                if (lek == NULL)
                    break;
            }
            nonempty += in_seg > 0;
        }
        assert_int_equal(count, 500);
        assert_int_equal(nonempty, total); /* 97 partitions spread over every segment */
    }
}

static void test_scan_segment_errors(void **state)
{
    store_t *s = S(state);
    load_small(s);
    expect(s, "Scan", "{\"TableName\":\"tbl\",\"Segment\":0}", 400,
           "The TotalSegments parameter is required but was not present in the request when Segment parameter is present");
    expect(s, "Scan", "{\"TableName\":\"tbl\",\"TotalSegments\":2}", 400,
           "The Segment parameter is required but was not present in the request when parameter TotalSegments is present");
    expect(s, "Scan", "{\"TableName\":\"tbl\",\"Segment\":1,\"TotalSegments\":1}", 400,
           "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: 1 is not less than "
           "TotalSegments: 1");
    expect(s, "Scan", "{\"TableName\":\"tbl\",\"Segment\":-1,\"TotalSegments\":2}", 400,
           "Value '-1' at 'segment' failed to satisfy constraint: Member must have value greater than or equal to 0");
    expect(s, "Scan", "{\"TableName\":\"tbl\",\"Segment\":0,\"TotalSegments\":1000001}", 400,
           "Value '1000001' at 'totalSegments' failed to satisfy constraint: Member must have value less than or equal to 1000000");
    expect(s, "Scan", "{\"TableName\":\"tbl\",\"Segment\":0,\"TotalSegments\":0}", 400,
           "Member must have value greater than or equal to 1");
}

static void test_scan_page_1mb(void **state)
{
    store_t *s = S(state);
    int acked = 0;
    make_table(s, "large", "id", "N", NULL, NULL);
    char *pad = malloc(300 * 1024 + 1);
    memset(pad, 'y', 300 * 1024);
    pad[300 * 1024] = '\0';
    size_t n = 300 * 1024 + 256;
    char *req = malloc(n);
    for (int i = 0; i != 10; ++i) {
        snprintf(req, n, "{\"TableName\":\"large\",\"Item\":{\"id\":{\"N\":\"%d\"},\"pad\":{\"S\":\"%s\"}}}", i, pad);
        store_call(s, "PutItem", req, strlen(req), fixture_put_done, &acked);
    }
    free(pad);
    free(req);
    store_flush(s);
    json_t *o = read_ok(s, "Scan", "{\"TableName\":\"large\",\"Select\":\"COUNT\"}");
    assert_int_equal(ival(o, "Count"), 4); /* 3 items are 900 KB, the 4th passes 1 MB */
    assert_non_null(json_object_get(o, "LastEvaluatedKey"));
    json_decref(o);
}

static void test_scan_errors(void **state)
{
    store_t *s = S(state);
    load_small(s);
    expect(s, "Scan", "{\"TableName\":\"tbl\",\"ScanFilter\":{}}", 200, "\"Count\":8");
    expect(s, "Scan", "{\"TableName\":\"tbl\",\"ExpressionAttributeValues\":{\":a\":{\"S\":\"x\"}}}", 400,
           "ExpressionAttributeValues can only be specified when using expressions: FilterExpression is null");
    expect(s, "Scan", "{\"TableName\":\"tbl\",\"ExpressionAttributeNames\":{\"#a\":\"x\"}}", 400,
           "ExpressionAttributeNames can only be specified when using expressions");
    expect(s, "Scan",
           "{\"TableName\":\"tbl\",\"FilterExpression\":\"#a = :a\",\"ExpressionAttributeValues\":{\":a\":{\"S\":\"x\"}}}", 400,
           "An expression attribute name used in the document path is not defined");
    expect(s, "Scan", "{\"TableName\":\"tbl\",\"IndexName\":\"idx\"}", 400, "The table does not have the specified index: idx");
    expect(s, "Scan", "{\"TableName\":\"tbl\",\"KeyConditionExpression\":\"pk = :a\"}", 200, "\"Count\":8");
    expect(s, "Scan", "{\"TableName\":\"tbl\",\"ReturnConsumedCapacity\":\"LOTS\"}", 400, "returnConsumedCapacity");
    expect(s, "Scan", "{\"TableName\":\"tbl\",\"Segment\":\"x\",\"TotalSegments\":1}", 400, "SerializationException");
}

static void test_scan_filter_on_keys_allowed(void **state)
{
    store_t *s = S(state);
    load_small(s);
    json_t *o = read_ok(s, "Scan",
                        "{\"TableName\":\"tbl\",\"FilterExpression\":\"pk = :a AND sk > :z\","
                        "\"ExpressionAttributeValues\":{\":a\":{\"S\":\"a\"},\":z\":{\"N\":\"0\"}}}");
    assert_int_equal(ival(o, "Count"), 4);
    json_decref(o);
}

static void test_query_sees_writes(void **state)
{
    store_t *s = S(state);
    load_small(s);
    expect(s, "DeleteItem", "{\"TableName\":\"tbl\",\"Key\":{\"pk\":{\"S\":\"a\"},\"sk\":{\"N\":\"2\"}}}", 200, "{}");
    expect(s, "PutItem", "{\"TableName\":\"tbl\",\"Item\":{\"pk\":{\"S\":\"a\"},\"sk\":{\"N\":\"3\"}}}", 200, "{}");
    QV(s, QA "}", "-1,0.5,3,5,10");
}

static void test_query_limit_exact_then_empty(void **state)
{
    store_t *s = S(state);
    load_small(s);
    /* as DynamoDB: a page that stops at Limit has LastEvaluatedKey even when nothing follows */
    json_t *o = read_ok(s, "Query", QA ",\"Limit\":5}");
    assert_int_equal(ival(o, "Count"), 5);
    assert_non_null(json_object_get(o, "LastEvaluatedKey"));
    json_decref(o);
    o = read_ok(s, "Query", QA ",\"Limit\":5,\"ExclusiveStartKey\":{\"pk\":{\"S\":\"a\"},\"sk\":{\"N\":\"10\"}}}");
    assert_int_equal(ival(o, "Count"), 0);
    assert_null(json_object_get(o, "LastEvaluatedKey"));
    json_decref(o);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_query_partition),
        T(test_query_numeric_order),
        T(test_query_descending),
        T(test_query_other_partitions),
        T(test_query_sort_comparisons),
        T(test_query_between),
        T(test_query_begins_with),
        T(test_query_begins_with_binary),
        T(test_query_hash_only_table),
        T(test_query_binary_and_numeric_pk),
        T(test_query_filter),
        T(test_query_filter_on_key_rejected),
        T(test_query_projection),
        T(test_query_select_count),
        T(test_query_select_errors),
        T(test_query_consistent_read),
        T(test_query_limit),
        T(test_query_limit_counts_before_filter),
        T(test_query_limit_errors),
        T(test_query_pagination_1000),
        T(test_query_page_1mb),
        T(test_query_esk_errors),
        T(test_query_key_condition_errors),
        T(test_query_placeholder_errors),
        T(test_query_legacy_and_index),
        T(test_query_table_errors),
        T(test_query_filter_value_errors),
        T(test_query_sees_writes),
        T(test_query_limit_exact_then_empty),
        T(test_scan_all),
        T(test_scan_empty_and_missing),
        T(test_scan_filter_projection),
        T(test_scan_select),
        T(test_scan_limit_pages),
        T(test_scan_pagination_1000),
        T(test_scan_segments),
        T(test_scan_segment_errors),
        T(test_scan_page_1mb),
        T(test_scan_errors),
        T(test_scan_filter_on_keys_allowed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
