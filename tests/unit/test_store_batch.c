/*
 * Unit tests of store/batch.c: BatchGetItem and BatchWriteItem through store_call, over a real LMDB environment in a
 * fresh mkdtemp() directory (each test its own). Requests and expected answers are written with single quotes, which
 * q() turns into double quotes (no test value holds a quote); an expected answer holding "at '" is an error message,
 * kept as it is.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <jansson.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "store/store.h"
#define STORE_FIXTURE_QUOTED
#include "tests/unit/store_fixture.h"

/* A BatchGetItem request for table `table` (pk S) of keys k0..k(n-1) (prefix `prefix`), as raw JSON text (freed by the
 * caller); with table2 non-NULL, n2 more keys there. */
static char *get_keys(const char *table, int n, const char *table2, int n2)
{
    json_t *ri = json_object(), *keys = json_array();
    for (int i = 0; i != n; ++i) {
        char k[32];
        snprintf(k, sizeof(k), "k%d", i);
        json_array_append_new(keys, json_pack("{s:{s:s}}", "pk", "S", k));
    }
    json_object_set_new(ri, table, json_pack("{s:o}", "Keys", keys));
    if (table2 != NULL) {
        keys = json_array();
        for (int i = 0; i != n2; ++i) {
            char k[32];
            snprintf(k, sizeof(k), "k%d", i);
            json_array_append_new(keys, json_pack("{s:{s:s}}", "pk", "S", k));
        }
        json_object_set_new(ri, table2, json_pack("{s:o}", "Keys", keys));
    }
    json_t *req = json_pack("{s:o}", "RequestItems", ri);
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    return text;
}

/* A BatchWriteItem request of n puts (keys k<first>..) in `table` and n2 in table2 (NULL: none), raw JSON text. */
static char *put_many(const char *table, int first, int n, const char *table2, int n2)
{
    json_t *ri = json_object();
    const char *tables[2] = {table, table2};
    int counts[2] = {n, n2};
    for (int t = 0; t != 2; ++t) {
        if (tables[t] == NULL)
            continue;
        json_t *list = json_array();
        for (int i = 0; i != counts[t]; ++i) {
            char k[32];
            snprintf(k, sizeof(k), "k%d", first + i);
            json_array_append_new(list, json_pack("{s:{s:{s:{s:s}, s:{s:s}}}}", "PutRequest", "Item", "pk", "S", k, "v", "N", "7"));
        }
        json_object_set_new(ri, tables[t], list);
    }
    json_t *req = json_pack("{s:o}", "RequestItems", ri);
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    return text;
}

/* ---- BatchGetItem ---- */

static void test_get_two_tables(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect_exact(
        s, "BatchGetItem",
        "{'RequestItems':{'users':{'Keys':[{'pk':{'S':'u1'}}]},'events':{'Keys':[{'id':{'N':'1'},'at':{'S':'b'}}]}}}", 200,
        "{'Responses':{'users':[{'pk':{'S':'u1'},'name':{'S':'Ann'},'age':{'N':'31'}}],'events':[{'id':{'N':'1'},'at':{'S':"
        "'b'},'what':{'S':'logout'}}]},'UnprocessedKeys':{}}");
    expect(s, "BatchGetItem",
           "{'RequestItems':{'users':{'Keys':[{'pk':{'S':'u1'}},{'pk':{'S':'u2'}},{'pk':{'S':'u3'}}]}},'ReturnConsumedCapacity':"
           "'TOTAL'}",
           200, "'name':{'S':'Cy'}");
}

static void test_get_missing_absent(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect_exact(s, "BatchGetItem",
                 "{'RequestItems':{'users':{'Keys':[{'pk':{'S':'nobody'}},{'pk':{'S':'u3'}}]},'events':{'Keys':[{'id':{'N':'9'},"
                 "'at':{'S':'a'}}]}}}",
                 200, "{'Responses':{'users':[{'pk':{'S':'u3'},'name':{'S':'Cy'}}],'events':[]},'UnprocessedKeys':{}}");
}

static void test_get_projection(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect_exact(
        s, "BatchGetItem",
        "{'RequestItems':{'users':{'Keys':[{'pk':{'S':'u2'}}],'ProjectionExpression':'#n, age','ExpressionAttributeNames':{"
        "'#n':'name'}},'events':{'Keys':[{'id':{'N':'2'},'at':{'S':'a'}}],'ProjectionExpression':'what'}}}",
        200,
        "{'Responses':{'users':[{'name':{'S':'Bob'},'age':{'N':'42'}}],'events':[{'what':{'S':'login'}}]},'UnprocessedKeys':{"
        "}}");
    /* a projection of nothing the item has: an empty item */
    expect_exact(s, "BatchGetItem", "{'RequestItems':{'users':{'Keys':[{'pk':{'S':'u3'}}],'ProjectionExpression':'nothing'}}}", 200,
                 "{'Responses':{'users':[{}]},'UnprocessedKeys':{}}");
}

static void test_get_projection_errors(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect(s, "BatchGetItem",
           "{'RequestItems':{'users':{'Keys':[{'pk':{'S':'u2'}}],'ProjectionExpression':'age','ExpressionAttributeNames':{'#n':"
           "'name'}}}}",
           400, "Value provided in ExpressionAttributeNames unused in expressions: keys: {#n}");
    expect(s, "BatchGetItem", "{'RequestItems':{'users':{'Keys':[{'pk':{'S':'u2'}}],'ProjectionExpression':'a,,b'}}}", 400,
           "Invalid ProjectionExpression");
    expect(s, "BatchGetItem", "{'RequestItems':{'users':{'Keys':[{'pk':{'S':'u2'}}],'ExpressionAttributeNames':{'#n':'name'}}}}",
           400, "ExpressionAttributeNames can only be specified when using expressions");
    expect(s, "BatchGetItem", "{'RequestItems':{'users':{'Keys':[{'pk':{'S':'u2'}}],'AttributesToGet':['name']}}}", 200,
           "{'Responses':{'users':[{'name':{'S':'Bob'}}]},'UnprocessedKeys':{}}");
}

static void test_get_unknown_table(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect_exact(
        s, "BatchGetItem", "{'RequestItems':{'users':{'Keys':[{'pk':{'S':'u1'}}]},'nothere':{'Keys':[{'pk':{'S':'u1'}}]}}}", 400,
        "{'__type':'com.amazonaws.dynamodb.v20120810#ResourceNotFoundException','message':'Requested resource not found'}");
}

static void test_get_key_mismatch(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect(s, "BatchGetItem", "{'RequestItems':{'users':{'Keys':[{'id':{'S':'u1'}}]}}}", 400,
           "The provided key element does not match the schema");
    expect(s, "BatchGetItem", "{'RequestItems':{'users':{'Keys':[{'pk':{'N':'1'}}]}}}", 400,
           "The provided key element does not match the schema");
    expect(s, "BatchGetItem", "{'RequestItems':{'users':{'Keys':[{'pk':{'S':'u1'},'x':{'S':'y'}}]}}}", 400,
           "The provided key element does not match the schema");
    expect(s, "BatchGetItem", "{'RequestItems':{'events':{'Keys':[{'id':{'N':'1'}}]}}}", 400,
           "The provided key element does not match the schema");
    expect(s, "BatchGetItem", "{'RequestItems':{'users':{'Keys':[{'pk':{'S':''}}]}}}", 400,
           "The AttributeValue for a key attribute cannot contain an empty string value. Key: pk");
    expect(s, "BatchGetItem", "{'RequestItems':{'users':{'Keys':[{'pk':{'S':5}}]}}}", 400, "SerializationException");
    expect(s, "BatchGetItem", "{'RequestItems':{'events':{'Keys':[{'id':{'N':'x'},'at':{'S':'a'}}]}}}", 400, "ValidationException");
}

static void test_get_100_keys(void **state)
{
    store_t *s = S(state);
    make_table(s, "many", "pk", "S", NULL, NULL);
    make_table(s, "more", "pk", "S", NULL, NULL);
    char *w = put_many("many", 0, 25, NULL, 0);
    expect_raw(s, "BatchWriteItem", w, 200, "{'UnprocessedItems':{}}");
    free(w);
    char *r = get_keys("many", 100, NULL, 0);
    char *body;
    assert_int_equal(call_raw(s, "BatchGetItem", r, &body), 200);
    json_t *o = json_loads(body, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(json_object_get(o, "Responses"), "many")), 25);
    json_decref(o);
    free(body);
    free(r);
    r = get_keys("many", 60, "more", 40);
    expect_raw(s, "BatchGetItem", r, 200, "'more':[]");
    free(r);
}

static void test_get_101_keys(void **state)
{
    store_t *s = S(state);
    make_table(s, "many", "pk", "S", NULL, NULL);
    make_table(s, "more", "pk", "S", NULL, NULL);
    char *r = get_keys("many", 60, "more", 41);
    expect_raw(s, "BatchGetItem", r, 400, "Too many items requested for the BatchGetItem call");
    free(r);
    r = get_keys("many", 101, NULL, 0);
    expect_raw(
        s, "BatchGetItem", r, 400,
        "at 'requestItems.many.member.keys' failed to satisfy constraint: Member must have length less than or equal to 100");
    free(r);
}

static void test_get_duplicates(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect(s, "BatchGetItem", "{'RequestItems':{'users':{'Keys':[{'pk':{'S':'u1'}},{'pk':{'S':'u2'}},{'pk':{'S':'u1'}}]}}}", 400,
           "Provided list of item keys contains duplicates");
    /* numbers are compared as numbers */
    expect(s, "BatchGetItem",
           "{'RequestItems':{'events':{'Keys':[{'id':{'N':'1'},'at':{'S':'a'}},{'at':{'S':'a'},'id':{'N':'1.0'}}]}}}", 400,
           "Provided list of item keys contains duplicates");
    /* same partition, another sort key: two items */
    expect(s, "BatchGetItem",
           "{'RequestItems':{'events':{'Keys':[{'id':{'N':'1'},'at':{'S':'a'}},{'id':{'N':'1'},'at':{'S':'b'}}]}}}", 200,
           "'what':{'S':'logout'}");
}

static void test_get_same_key_two_tables(void **state)
{
    store_t *s = S(state);
    fill(s);
    make_table(s, "users2", "pk", "S", NULL, NULL);
    expect(s, "PutItem", "{'TableName':'users2','Item':{'pk':{'S':'u1'},'other':{'BOOL':true}}}", 200, "{}");
    expect_exact(s, "BatchGetItem", "{'RequestItems':{'users':{'Keys':[{'pk':{'S':'u1'}}]},'users2':{'Keys':[{'pk':{'S':'u1'}}]}}}",
                 200,
                 "{'Responses':{'users':[{'pk':{'S':'u1'},'name':{'S':'Ann'},'age':{'N':'31'}}],'users2':[{'pk':{'S':'u1'},'other':"
                 "{'BOOL':true}}]},'UnprocessedKeys':{}}");
}

static void test_get_request_errors(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect(s, "BatchGetItem", "{}", 400,
           "1 validation error detected: Value null at 'requestItems' failed to satisfy constraint: Member must not be null");
    expect(s, "BatchGetItem", "{'RequestItems':{}}", 400,
           "at 'requestItems' failed to satisfy constraint: Member must have length greater than or equal to 1");
    expect(s, "BatchGetItem", "{'RequestItems':[]}", 400, "SerializationException");
    expect(s, "BatchGetItem", "{'RequestItems':{'users':{'Keys':{}}}}", 400, "SerializationException");
    expect(s, "BatchGetItem", "{'RequestItems':{'users':{}}}", 400,
           "Value null at 'requestItems.users.member.keys' failed to satisfy constraint: Member must not be null");
    expect(s, "BatchGetItem", "{'RequestItems':{'users':{'Keys':[]}}}", 400,
           "at 'requestItems.users.member.keys' failed to satisfy constraint: Member must have length greater than or equal to 1");
    expect(s, "BatchGetItem", "{'RequestItems':{'a!':{'Keys':[{'pk':{'S':'u1'}}]}}}", 400,
           "Map keys must satisfy constraint: [Member must have length less than or equal to 255");
    expect(s, "BatchGetItem", "{'RequestItems':{'users':{'Keys':[{'pk':{'S':'u1'}}]}},'ReturnConsumedCapacity':'ALL'}", 400,
           "Member must satisfy enum value set: [INDEXES, TOTAL, NONE]");
}

static void test_get_consistent_read(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect(s, "BatchGetItem", "{'RequestItems':{'users':{'Keys':[{'pk':{'S':'u1'}}],'ConsistentRead':true}}}", 200, "'Ann'");
    expect(s, "BatchGetItem", "{'RequestItems':{'users':{'Keys':[{'pk':{'S':'u1'}}],'ConsistentRead':false}}}", 200, "'Ann'");
    expect(s, "BatchGetItem", "{'RequestItems':{'users':{'Keys':[{'pk':{'S':'u1'}}],'ConsistentRead':5}}}", 400,
           "SerializationException");
}

/* ---- BatchWriteItem ---- */

static void test_write_two_tables(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect_exact(
        s, "BatchWriteItem",
        "{'RequestItems':{'users':[{'PutRequest':{'Item':{'pk':{'S':'u9'},'name':{'S':'Zed'}}}},{'PutRequest':{'Item':{'pk':"
        "{'S':'u8'}}}}],'events':[{'PutRequest':{'Item':{'id':{'N':'3'},'at':{'S':'z'},'what':{'S':'boot'}}}}]}}",
        200, "{'UnprocessedItems':{}}");
    expect_exact(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'u9'}}}", 200,
                 "{'Item':{'pk':{'S':'u9'},'name':{'S':'Zed'}}}");
    expect_exact(s, "GetItem", "{'TableName':'events','Key':{'id':{'N':'3'},'at':{'S':'z'}}}", 200,
                 "{'Item':{'id':{'N':'3'},'at':{'S':'z'},'what':{'S':'boot'}}}");
}

static void test_write_deletes(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect_exact(
        s, "BatchWriteItem",
        "{'RequestItems':{'users':[{'DeleteRequest':{'Key':{'pk':{'S':'u1'}}}},{'DeleteRequest':{'Key':{'pk':{'S':'nobody'}}}}"
        "],'events':[{'DeleteRequest':{'Key':{'id':{'N':'1'},'at':{'S':'a'}}}}]}}",
        200, "{'UnprocessedItems':{}}");
    expect_exact(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'u1'}}}", 200, "{}");
    expect_exact(s, "GetItem", "{'TableName':'events','Key':{'id':{'N':'1'},'at':{'S':'a'}}}", 200, "{}");
    expect(s, "GetItem", "{'TableName':'events','Key':{'id':{'N':'1'},'at':{'S':'b'}}}", 200, "logout");
}

static void test_write_mixed_and_overwrite(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect(
        s, "BatchWriteItem",
        "{'RequestItems':{'users':[{'PutRequest':{'Item':{'pk':{'S':'u2'},'name':{'S':'Robert'}}}},{'DeleteRequest':{'Key':{'pk':{"
        "'S':'u3'}}}}]},'ReturnConsumedCapacity':'TOTAL','ReturnItemCollectionMetrics':'SIZE'}",
        200, "{'UnprocessedItems':{},'ConsumedCapacity':[{'TableName':'users','CapacityUnits':2.0,'WriteCapacityUnits':2.0}]}");
    /* a put replaces the whole item */
    expect_exact(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'u2'}}}", 200,
                 "{'Item':{'pk':{'S':'u2'},'name':{'S':'Robert'}}}");
    expect_exact(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'u3'}}}", 200, "{}");
}

static void test_write_25_and_26(void **state)
{
    store_t *s = S(state);
    make_table(s, "many", "pk", "S", NULL, NULL);
    make_table(s, "more", "pk", "S", NULL, NULL);
    char *w = put_many("many", 0, 15, "more", 10);
    expect_raw(s, "BatchWriteItem", w, 200, "{'UnprocessedItems':{}}");
    free(w);
    long long c, b;
    counters(s, "many", &c, &b);
    assert_int_equal(c, 15);
    counters(s, "more", &c, &b);
    assert_int_equal(c, 10);
    w = put_many("many", 100, 16, "more", 10);
    expect_raw(s, "BatchWriteItem", w, 400, "Too many items requested for the BatchWriteItem call");
    free(w);
    w = put_many("many", 100, 26, NULL, 0);
    expect_raw(s, "BatchWriteItem", w, 400,
               "at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less "
               "than or equal to 25, Member must have length greater than or equal to 1]");
    free(w);
    w = put_many("many", 100, 25, NULL, 0);
    expect_raw(s, "BatchWriteItem", w, 200, "{'UnprocessedItems':{}}");
    free(w);
    counters(s, "many", &c, &b);
    assert_int_equal(c, 40);
    counters(s, "more", &c, &b);
    assert_int_equal(c, 10);
}

static void test_write_duplicates(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect(s, "BatchWriteItem",
           "{'RequestItems':{'users':[{'PutRequest':{'Item':{'pk':{'S':'n1'}}}},{'PutRequest':{'Item':{'pk':{'S':'n1'},'x':{'N':'1'"
           "}}}}]}}",
           400, "Provided list of item keys contains duplicates");
    expect(s, "BatchWriteItem",
           "{'RequestItems':{'users':[{'PutRequest':{'Item':{'pk':{'S':'u1'}}}},{'DeleteRequest':{'Key':{'pk':{'S':'u1'}}}}]}}",
           400, "Provided list of item keys contains duplicates");
    expect(s, "BatchWriteItem",
           "{'RequestItems':{'events':[{'DeleteRequest':{'Key':{'id':{'N':'1'},'at':{'S':'a'}}}},{'DeleteRequest':{'Key':{'id':{'N'"
           ":'1.00'},'at':{'S':'a'}}}}]}}",
           400, "Provided list of item keys contains duplicates");
    /* nothing of a rejected batch was written */
    expect_exact(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'n1'}}}", 200, "{}");
    expect(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'u1'}}}", 200, "Ann");
    expect(s, "GetItem", "{'TableName':'events','Key':{'id':{'N':'1'},'at':{'S':'a'}}}", 200, "login");
    /* one partition, two sort keys; one key in two tables: no duplicates */
    make_table(s, "users2", "pk", "S", NULL, NULL);
    expect(
        s, "BatchWriteItem",
        "{'RequestItems':{'events':[{'PutRequest':{'Item':{'id':{'N':'5'},'at':{'S':'a'}}}},{'PutRequest':{'Item':{'id':{'N':'5'},"
        "'at':{'S':'b'}}}}],'users':[{'PutRequest':{'Item':{'pk':{'S':'same'}}}}],'users2':[{'PutRequest':{'Item':{'pk':{'S':"
        "'same'}}}}]}}",
        200, "{'UnprocessedItems':{}}");
    expect(s, "GetItem", "{'TableName':'users2','Key':{'pk':{'S':'same'}}}", 200, "'Item'");
}

static void test_write_unknown_table(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect_exact(
        s, "BatchWriteItem",
        "{'RequestItems':{'users':[{'PutRequest':{'Item':{'pk':{'S':'n1'}}}}],'nothere':[{'PutRequest':{'Item':{'pk':{'S':"
        "'n1'}}}}]}}",
        400, "{'__type':'com.amazonaws.dynamodb.v20120810#ResourceNotFoundException','message':'Requested resource not found'}");
    expect_exact(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'n1'}}}", 200, "{}");
    long long c, b;
    counters(s, "users", &c, &b);
    assert_int_equal(c, 3);
}

static void test_write_key_errors(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect(
        s, "BatchWriteItem",
        "{'RequestItems':{'users':[{'PutRequest':{'Item':{'pk':{'S':'n1'}}}}],'events':[{'PutRequest':{'Item':{'id':{'N':'7'}}}}]"
        "}}",
        400, "One or more parameter values were invalid: Missing the key at in the item");
    expect(s, "BatchWriteItem", "{'RequestItems':{'users':[{'PutRequest':{'Item':{'pk':{'N':'1'}}}}]}}", 400,
           "Type mismatch for key pk expected: S actual: N");
    expect(s, "BatchWriteItem", "{'RequestItems':{'users':[{'DeleteRequest':{'Key':{'pk':{'S':'u1'},'name':{'S':'Ann'}}}}]}}", 400,
           "The provided key element does not match the schema");
    expect(s, "BatchWriteItem", "{'RequestItems':{'users':[{'DeleteRequest':{'Key':{'pk':{'N':'1'}}}}]}}", 400,
           "The provided key element does not match the schema");
    expect(s, "BatchWriteItem", "{'RequestItems':{'users':[{'PutRequest':{'Item':{'pk':{'S':''}}}}]}}", 400,
           "The AttributeValue for a key attribute cannot contain an empty string value. Key: pk");
    /* the first request was fine: still nothing written, nor deleted */
    expect(s, "BatchWriteItem",
           "{'RequestItems':{'users':[{'PutRequest':{'Item':{'pk':{'S':'n2'}}}},{'DeleteRequest':{'Key':{'pk':{'S':'u1'}}}},{"
           "'DeleteRequest':{'Key':{'id':{'S':'u1'}}}}]}}",
           400, "The provided key element does not match the schema");
    expect_exact(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'n1'}}}", 200, "{}");
    expect_exact(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'n2'}}}", 200, "{}");
    expect(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'u1'}}}", 200, "Ann");
    long long c, b;
    counters(s, "users", &c, &b);
    assert_int_equal(c, 3);
}

static void test_write_request_errors(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect(s, "BatchWriteItem", "{}", 400,
           "1 validation error detected: Value null at 'requestItems' failed to satisfy constraint: Member must not be null");
    expect(s, "BatchWriteItem", "{'RequestItems':{}}", 400,
           "at 'requestItems' failed to satisfy constraint: Member must have length greater than or equal to 1");
    expect(s, "BatchWriteItem", "{'RequestItems':{'users':[]}}", 400,
           "Map value must satisfy constraint: [Member must have length less than or equal to 25, Member must have length greater "
           "than or equal to 1]");
    expect(s, "BatchWriteItem", "{'RequestItems':{'users':{}}}", 400, "SerializationException");
    expect(s, "BatchWriteItem", "{'RequestItems':[]}", 400, "SerializationException");
    expect(s, "BatchWriteItem", "{'RequestItems':{'users':[5]}}", 400, "SerializationException");
    expect(s, "BatchWriteItem", "{'RequestItems':{'users':[{}]}}", 400,
           "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes");
    expect(s, "BatchWriteItem",
           "{'RequestItems':{'users':[{'PutRequest':{'Item':{'pk':{'S':'x'}}},'DeleteRequest':{'Key':{'pk':{'S':'x'}}}}]}}", 400,
           "Supplied AttributeValue has more than one datatypes set");
    expect(s, "BatchWriteItem", "{'RequestItems':{'users':[{'PutRequest':{}}]}}", 400,
           "Value null at 'requestItems.users.member.putRequest.item' failed to satisfy constraint: Member must not be null");
    expect(s, "BatchWriteItem", "{'RequestItems':{'users':[{'DeleteRequest':{}}]}}", 400,
           "Value null at 'requestItems.users.member.deleteRequest.key' failed to satisfy constraint: Member must not be null");
    expect(s, "BatchWriteItem", "{'RequestItems':{'a!':[{'PutRequest':{'Item':{'pk':{'S':'x'}}}}]}}", 400,
           "Map keys must satisfy constraint");
    expect(s, "BatchWriteItem",
           "{'RequestItems':{'users':[{'PutRequest':{'Item':{'pk':{'S':'x'}}}}]},'ReturnItemCollectionMetrics':'ALL'}", 400,
           "Member must satisfy enum value set: [SIZE, NONE]");
    expect(s, "BatchWriteItem", "{'RequestItems':{'users':[{'PutRequest':{'Item':{'pk':{'S':'x'},'n':{'N':'abc'}}}}]}}", 400,
           "ValidationException");
    expect(s, "BatchWriteItem", "{'RequestItems':{'users':[{'PutRequest':{'Item':{'pk':{'S':5}}}}]}}", 400,
           "SerializationException");
    expect(s, "BatchWriteItem", "{'RequestItems':{'users':[{'PutRequest':{'Item':{'pk':{'S':'x'},'e':{'SS':[]}}}}]}}", 400,
           "may not be empty");
    expect(s, "BatchWriteItem",
           "{'RequestItems':{'users':[{'PutRequest':{'Item':{'pk':{'S':'x'}},'ConditionExpression':'attribute_not_exists(pk)'}}]}}",
           200, "{'UnprocessedItems':{}}"); /* unknown members are ignored, as DynamoDB's deserializer does */
}

static void test_write_item_too_large(void **state)
{
    store_t *s = S(state);
    fill(s);
    size_t n = 410 * 1024;
    char *big = malloc(n + 1);
    memset(big, 'x', n);
    big[n] = '\0';
    json_t *req = json_pack("{s:{s:[{s:{s:{s:{s:s}}}}, {s:{s:{s:{s:s}, s:{s:s}}}}]}}", "RequestItems", "users", "PutRequest",
                            "Item", "pk", "S", "small", "PutRequest", "Item", "pk", "S", "big", "blob", "S", big);
    char *text = json_dumps(req, JSON_COMPACT);
    expect_raw(s, "BatchWriteItem", text, 400, "Item size has exceeded the maximum allowed size");
    free(text);
    json_decref(req);
    free(big);
    expect_exact(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'small'}}}", 200, "{}");
}

static void test_write_counters(void **state)
{
    store_t *s = S(state);
    long long c1, b1, c2, b2;
    make_table(s, "viabatch", "pk", "S", NULL, NULL);
    make_table(s, "viasingle", "pk", "S", NULL, NULL);
    const char *items[] = {"{'pk':{'S':'a'},'v':{'N':'1'}}",
                           "{'pk':{'S':'b'},'s':{'SS':['x','yy']},'m':{'M':{'q':{'L':[{'N':'-1.5'}]}}}}",
                           "{'pk':{'S':'c'},'b':{'B':'AAEC'}}"};
    char req[1024];
    snprintf(req, sizeof(req),
             "{'RequestItems':{'viabatch':[{'PutRequest':{'Item':%s}},{'PutRequest':{'Item':%s}},{'PutRequest':{'Item':%s}}]}}",
             items[0], items[1], items[2]);
    expect(s, "BatchWriteItem", req, 200, "{'UnprocessedItems':{}}");
    for (int i = 0; i != 3; ++i) {
        snprintf(req, sizeof(req), "{'TableName':'viasingle','Item':%s}", items[i]);
        expect(s, "PutItem", req, 200, "{}");
    }
    counters(s, "viabatch", &c1, &b1);
    counters(s, "viasingle", &c2, &b2);
    assert_int_equal(c1, 3);
    assert_int_equal(c1, c2);
    assert_int_equal(b1, b2);
    assert_true(b1 > 0);
    /* overwrite one (larger), delete one, delete a missing one */
    expect(s, "BatchWriteItem",
           "{'RequestItems':{'viabatch':[{'PutRequest':{'Item':{'pk':{'S':'a'},'v':{'N':'12345'},'w':{'S':'more text'}}}},{"
           "'DeleteRequest':{'Key':{'pk':{'S':'b'}}}},{'DeleteRequest':{'Key':{'pk':{'S':'zz'}}}}]}}",
           200, "{'UnprocessedItems':{}}");
    expect(s, "PutItem", "{'TableName':'viasingle','Item':{'pk':{'S':'a'},'v':{'N':'12345'},'w':{'S':'more text'}}}", 200, "{}");
    expect(s, "DeleteItem", "{'TableName':'viasingle','Key':{'pk':{'S':'b'}}}", 200, "{}");
    expect(s, "DeleteItem", "{'TableName':'viasingle','Key':{'pk':{'S':'zz'}}}", 200, "{}");
    counters(s, "viabatch", &c1, &b1);
    counters(s, "viasingle", &c2, &b2);
    assert_int_equal(c1, 2);
    assert_int_equal(c1, c2);
    assert_int_equal(b1, b2);
    /* delete everything: back to zero */
    expect(s, "BatchWriteItem",
           "{'RequestItems':{'viabatch':[{'DeleteRequest':{'Key':{'pk':{'S':'a'}}}},{'DeleteRequest':{'Key':{'pk':{'S':'c'}}}}]}}",
           200, "{'UnprocessedItems':{}}");
    counters(s, "viabatch", &c1, &b1);
    assert_int_equal(c1, 0);
    assert_int_equal(b1, 0);
}

static void test_write_counters_two_tables(void **state)
{
    store_t *s = S(state);
    fill(s);
    long long cu, bu, ce, be, c, b;
    counters(s, "users", &cu, &bu);
    counters(s, "events", &ce, &be);
    assert_int_equal(cu, 3);
    assert_int_equal(ce, 3);
    expect(
        s, "BatchWriteItem",
        "{'RequestItems':{'users':[{'PutRequest':{'Item':{'pk':{'S':'u4'},'name':{'S':'Di'}}}},{'DeleteRequest':{'Key':{'pk':{'S':"
        "'u3'}}}}],'events':[{'DeleteRequest':{'Key':{'id':{'N':'1'},'at':{'S':'a'}}}},{'DeleteRequest':{'Key':{'id':{'N':'2'},'at'"
        ":{'S':'a'}}}}]}}",
        200, "{'UnprocessedItems':{}}");
    counters(s, "users", &c, &b);
    assert_int_equal(c, 3);
    /* u3 {pk:u3, name:Cy} is 2+2 + 4+2 = 10 bytes; u4 {pk:u4, name:Di} as many */
    assert_int_equal(b, bu);
    counters(s, "events", &c, &b);
    assert_int_equal(c, 1);
    assert_true(b < be);
}

static void test_write_then_batch_get(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect(
        s, "BatchWriteItem",
        "{'RequestItems':{'users':[{'PutRequest':{'Item':{'pk':{'S':'u7'},'tags':{'SS':['b','a']}}}},{'DeleteRequest':{'Key':{'pk'"
        ":{'S':'u1'}}}}],'events':[{'PutRequest':{'Item':{'id':{'N':'7.50'},'at':{'S':'q'},'n':{'N':'00012'}}}}]}}",
        200, "{'UnprocessedItems':{}}");
    expect_exact(
        s, "BatchGetItem",
        "{'RequestItems':{'users':{'Keys':[{'pk':{'S':'u7'}},{'pk':{'S':'u1'}}]},'events':{'Keys':[{'id':{'N':'7.5'},'at':{"
        "'S':'q'}}]}}}",
        200,
        "{'Responses':{'users':[{'pk':{'S':'u7'},'tags':{'SS':['b','a']}}],'events':[{'id':{'N':'7.5'},'at':{'S':'q'},'n':{'N'"
        ":'12'}}]},'UnprocessedKeys':{}}");
}

static void test_write_delete_then_put_other_batches(void **state)
{
    store_t *s = S(state);
    fill(s);
    /* many batches queued at once: each commits as a whole, in order */
    for (int i = 0; i != 20; ++i) {
        char *w = put_many("users", i * 5, 5, NULL, 0);
        expect_raw(s, "BatchWriteItem", w, 200, "{'UnprocessedItems':{}}");
        free(w);
    }
    long long c, b;
    counters(s, "users", &c, &b);
    assert_int_equal(c, 103);
    char *r = get_keys("users", 100, NULL, 0);
    char *body;
    assert_int_equal(call_raw(s, "BatchGetItem", r, &body), 200);
    json_t *o = json_loads(body, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(json_object_get(o, "Responses"), "users")), 100);
    json_decref(o);
    free(body);
    free(r);
}

static void test_write_after_table_deleted(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect(s, "DeleteTable", "{'TableName':'events'}", 200, "DELETING");
    expect(s, "BatchWriteItem", "{'RequestItems':{'events':[{'PutRequest':{'Item':{'id':{'N':'1'},'at':{'S':'a'}}}}]}}", 400,
           "ResourceNotFoundException");
    expect(s, "BatchGetItem", "{'RequestItems':{'events':{'Keys':[{'id':{'N':'1'},'at':{'S':'a'}}]}}}", 400,
           "ResourceNotFoundException");
    /* recreated: empty, writable */
    make_table(s, "events", "id", "N", "at", "S");
    expect(s, "BatchWriteItem", "{'RequestItems':{'events':[{'PutRequest':{'Item':{'id':{'N':'1'},'at':{'S':'a'}}}}]}}", 200,
           "{'UnprocessedItems':{}}");
    expect_exact(s, "BatchGetItem", "{'RequestItems':{'events':{'Keys':[{'id':{'N':'1'},'at':{'S':'a'}}]}}}", 200,
                 "{'Responses':{'events':[{'id':{'N':'1'},'at':{'S':'a'}}]},'UnprocessedKeys':{}}");
}

static void test_body_not_object(void **state)
{
    store_t *s = S(state);
    expect(s, "BatchGetItem", "[]", 400, "SerializationException");
    expect(s, "BatchWriteItem", "nope", 400, "SerializationException");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_get_two_tables),
        T(test_get_missing_absent),
        T(test_get_projection),
        T(test_get_projection_errors),
        T(test_get_unknown_table),
        T(test_get_key_mismatch),
        T(test_get_100_keys),
        T(test_get_101_keys),
        T(test_get_duplicates),
        T(test_get_same_key_two_tables),
        T(test_get_request_errors),
        T(test_get_consistent_read),
        T(test_write_two_tables),
        T(test_write_deletes),
        T(test_write_mixed_and_overwrite),
        T(test_write_25_and_26),
        T(test_write_duplicates),
        T(test_write_unknown_table),
        T(test_write_key_errors),
        T(test_write_request_errors),
        T(test_write_item_too_large),
        T(test_write_counters),
        T(test_write_counters_two_tables),
        T(test_write_then_batch_get),
        T(test_write_delete_then_put_other_batches),
        T(test_write_after_table_deleted),
        T(test_body_not_object),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
