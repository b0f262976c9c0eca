/*
 * Unit tests of store/transact.c: TransactWriteItems and TransactGetItems through store_call, over a real LMDB environment in a
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

#define CANCELED "TransactionCanceledException"

/* A TransactWriteItems request of n ConditionCheck-free puts (keys k0..) in `table`, raw JSON text (freed by the
 * caller). */
static char *put_many(const char *table, int n)
{
    json_t *list = json_array();
    for (int i = 0; i != n; ++i) {
        char k[32];
        snprintf(k, sizeof(k), "k%d", i);
        json_array_append_new(
            list, json_pack("{s:{s:s, s:{s:{s:s}, s:{s:s}}}}", "Put", "TableName", table, "Item", "pk", "S", k, "v", "N", "7"));
    }
    json_t *req = json_pack("{s:o}", "TransactItems", list);
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    return text;
}

/* A TransactGetItems request of n keys k0.. in `table`. */
static char *get_many(const char *table, int n)
{
    json_t *list = json_array();
    for (int i = 0; i != n; ++i) {
        char k[32];
        snprintf(k, sizeof(k), "k%d", i);
        json_array_append_new(list, json_pack("{s:{s:s, s:{s:{s:s}}}}", "Get", "TableName", table, "Key", "pk", "S", k));
    }
    json_t *req = json_pack("{s:o}", "TransactItems", list);
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    return text;
}

/* ---- TransactWriteItems ---- */

static void test_write_put_two_tables(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect_exact(s, "TransactWriteItems",
                 "{'TransactItems':[{'Put':{'TableName':'users','Item':{'pk':{'S':'u9'},'name':{'S':'Zed'}}}},{'Put':{'TableName':"
                 "'events','Item':{'id':{'N':'3'},'at':{'S':'c'},'what':{'S':'x'}}}}],'ClientRequestToken':'tok-1'}",
                 200, "{}");
    expect_exact(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'u9'}}}", 200,
                 "{'Item':{'pk':{'S':'u9'},'name':{'S':'Zed'}}}");
    expect(s, "GetItem", "{'TableName':'events','Key':{'id':{'N':'3'},'at':{'S':'c'}}}", 200, "'what':{'S':'x'}");
}

static void test_write_update(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect_exact(
        s, "TransactWriteItems",
        "{'TransactItems':[{'Update':{'TableName':'users','Key':{'pk':{'S':'u1'}},'UpdateExpression':'SET age = age + :one, "
        "#n = :n','ConditionExpression':'age = :old','ExpressionAttributeNames':{'#n':'nick'},'ExpressionAttributeValues':{"
        "':one':{'N':'1'},':n':{'S':'A'},':old':{'N':'31'}}}},{'Update':{'TableName':'users','Key':{'pk':{'S':'new'}},"
        "'UpdateExpression':'SET c = :z','ExpressionAttributeValues':{':z':{'N':'0'}}}}]}",
        200, "{}");
    expect_exact(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'u1'}}}", 200,
                 "{'Item':{'pk':{'S':'u1'},'name':{'S':'Ann'},'age':{'N':'32'},'nick':{'S':'A'}}}");
    expect_exact(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'new'}}}", 200, "{'Item':{'pk':{'S':'new'},'c':{'N':'0'}}}");
}

static void test_write_delete(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect_exact(
        s, "TransactWriteItems",
        "{'TransactItems':[{'Delete':{'TableName':'users','Key':{'pk':{'S':'u1'}},'ConditionExpression':'attribute_exists(pk)'}},"
        "{'Delete':{'TableName':'users','Key':{'pk':{'S':'missing'}}}},{'Delete':{'TableName':'events','Key':{'id':{'N':'1'},"
        "'at':{'S':'a'}}}}]}",
        200, "{}");
    expect_exact(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'u1'}}}", 200, "{}");
    expect_exact(s, "GetItem", "{'TableName':'events','Key':{'id':{'N':'1'},'at':{'S':'a'}}}", 200, "{}");
    expect(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'u2'}}}", 200, "'Bob'");
}

static void test_write_condition_check_passes(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect_exact(
        s, "TransactWriteItems",
        "{'TransactItems':[{'ConditionCheck':{'TableName':'users','Key':{'pk':{'S':'u2'}},'ConditionExpression':'age > :a',"
        "'ExpressionAttributeValues':{':a':{'N':'40'}}}},{'Put':{'TableName':'users','Item':{'pk':{'S':'u5'}}}}]}",
        200, "{}");
    expect(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'u5'}}}", 200, "{'Item':{'pk':{'S':'u5'}}}");
    /* a ConditionCheck writes nothing */
    expect_exact(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'u2'}}}", 200,
                 "{'Item':{'pk':{'S':'u2'},'name':{'S':'Bob'},'age':{'N':'42'}}}");
}

static void test_write_all_or_nothing(void **state)
{
    store_t *s = S(state);
    fill(s);
    /* the ConditionCheck in the middle fails: neither the put before it nor the delete after it happens */
    expect_exact(
        s, "TransactWriteItems",
        "{'TransactItems':[{'Put':{'TableName':'users','Item':{'pk':{'S':'u7'}}}},{'ConditionCheck':{'TableName':'users','Key':{"
        "'pk':{'S':'u3'}},'ConditionExpression':'attribute_exists(age)'}},{'Delete':{'TableName':'events','Key':{'id':{'N':'2'},"
        "'at':{'S':'a'}}}}]}",
        400,
        "{'__type':'com.amazonaws.dynamodb.v20120810#TransactionCanceledException','message':'Transaction cancelled, please refer "
        "cancellation reasons for specific reasons [None, ConditionalCheckFailed, None]','CancellationReasons':[{'Code':'None'},{"
        "'Code':'ConditionalCheckFailed','Message':'The conditional request failed'},{'Code':'None'}]}");
    expect_exact(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'u7'}}}", 200, "{}");
    expect(s, "GetItem", "{'TableName':'events','Key':{'id':{'N':'2'},'at':{'S':'a'}}}", 200, "'login'");
}

static void test_write_condition_on_put_fails(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect(s, "TransactWriteItems",
           "{'TransactItems':[{'Put':{'TableName':'users','Item':{'pk':{'S':'u1'},'name':{'S':'X'}},'ConditionExpression':"
           "'attribute_not_exists(pk)'}},{'Update':{'TableName':'users','Key':{'pk':{'S':'u2'}},'UpdateExpression':'SET age = :z',"
           "'ExpressionAttributeValues':{':z':{'N':'0'}}}}]}",
           400, "[ConditionalCheckFailed, None]");
    expect(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'u1'}}}", 200, "'Ann'");
    expect(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'u2'}}}", 200, "'age':{'N':'42'}");
}

static void test_write_two_conditions_fail(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect(s, "TransactWriteItems",
           "{'TransactItems':[{'Delete':{'TableName':'users','Key':{'pk':{'S':'u1'}},'ConditionExpression':'age = :x'}},{'Update':{"
           "'TableName':'users','Key':{'pk':{'S':'u2'}},'UpdateExpression':'SET age = :x','ConditionExpression':'age = :x'}}],"
           "'ExpressionAttributeValues':{}}",
           400, "An expression attribute value used in expression is not defined; attribute value: :x");
    /* the values are each action's own */
    expect(s, "TransactWriteItems",
           "{'TransactItems':[{'Delete':{'TableName':'users','Key':{'pk':{'S':'u1'}},'ConditionExpression':'age = :x',"
           "'ExpressionAttributeValues':{':x':{'N':'1'}}}},{'Update':{'TableName':'users','Key':{'pk':{'S':'u2'}},"
           "'UpdateExpression':'SET age = :x','ConditionExpression':'age = :x','ExpressionAttributeValues':{':x':{'N':'1'}}}}]}",
           400, "[ConditionalCheckFailed, ConditionalCheckFailed]");
    expect(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'u1'}}}", 200, "'Ann'");
}

static void test_write_return_values_on_failure(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect_exact(
        s, "TransactWriteItems",
        "{'TransactItems':[{'ConditionCheck':{'TableName':'users','Key':{'pk':{'S':'u3'}},'ConditionExpression':'attribute_exists("
        "age)',"
        "'ReturnValuesOnConditionCheckFailure':'ALL_OLD'}},{'Delete':{'TableName':'users','Key':{'pk':{'S':'nobody'}},"
        "'ConditionExpression':'attribute_exists(pk)','ReturnValuesOnConditionCheckFailure':'ALL_OLD'}},{'Put':{'TableName':'users'"
        ","
        "'Item':{'pk':{'S':'u2'}},'ConditionExpression':'attribute_not_exists(pk)','ReturnValuesOnConditionCheckFailure':'NONE'}}]"
        "}",
        400,
        "{'__type':'com.amazonaws.dynamodb.v20120810#TransactionCanceledException','message':'Transaction cancelled, please refer "
        "cancellation reasons for specific reasons [ConditionalCheckFailed, ConditionalCheckFailed, ConditionalCheckFailed]',"
        "'CancellationReasons':[{'Code':'ConditionalCheckFailed','Message':'The conditional request "
        "failed','Item':{'pk':{'S':'u3'},"
        "'name':{'S':'Cy'}}},{'Code':'ConditionalCheckFailed','Message':'The conditional request failed'},{'Code':"
        "'ConditionalCheckFailed','Message':'The conditional request failed'}]}");
    expect(s, "TransactWriteItems",
           "{'TransactItems':[{'Put':{'TableName':'users','Item':{'pk':{'S':'u2'}},'ReturnValuesOnConditionCheckFailure':'ALL_NEW'}"
           "}]}",
           400, "Member must satisfy enum value set: [ALL_OLD, NONE]");
}

static void test_write_duplicates(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect(s, "TransactWriteItems",
           "{'TransactItems':[{'Put':{'TableName':'users','Item':{'pk':{'S':'u1'}}}},{'ConditionCheck':{'TableName':'users','Key':{"
           "'pk':{'S':'u1'}},'ConditionExpression':'attribute_exists(pk)'}}]}",
           400, "Transaction request cannot include multiple operations on one item");
    expect(
        s, "TransactWriteItems",
        "{'TransactItems':[{'Delete':{'TableName':'users','Key':{'pk':{'S':'u9'}}}},{'Put':{'TableName':'users','Item':{'pk':{'S':"
        "'u8'}}}},{'Update':{'TableName':'users','Key':{'pk':{'S':'u9'}},'UpdateExpression':'SET a = "
        ":a','ExpressionAttributeValues'"
        ":{':a':{'N':'1'}}}}]}",
        400, "Transaction request cannot include multiple operations on one item");
    expect_exact(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'u8'}}}", 200, "{}");
    /* the same key in two tables is two items */
    make_table(s, "users2", "pk", "S", NULL, NULL);
    expect_exact(
        s, "TransactWriteItems",
        "{'TransactItems':[{'Put':{'TableName':'users','Item':{'pk':{'S':'u8'}}}},{'Put':{'TableName':'users2','Item':{'pk':"
        "{'S':'u8'}}}}]}",
        200, "{}");
}

static void test_write_100_and_101(void **state)
{
    store_t *s = S(state);
    make_table(s, "tbl", "pk", "S", NULL, NULL);
    char *r = put_many("tbl", 101);
    expect_raw(s, "TransactWriteItems", r, 400, "Member must have length less than or equal to 100");
    free(r);
    long long c, b;
    counters(s, "tbl", &c, &b);
    assert_int_equal(c, 0);
    r = put_many("tbl", 100);
    expect_raw(s, "TransactWriteItems", r, 200, "{}");
    free(r);
    counters(s, "tbl", &c, &b);
    assert_int_equal(c, 100);
    expect(s, "TransactWriteItems", "{'TransactItems':[]}", 400, "Member must have length greater than or equal to 1");
    expect(s, "TransactWriteItems", "{}", 400,
           "Value null at 'transactItems' failed to satisfy constraint: Member must not be null");
}

static void test_write_unknown_table(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect(s, "TransactWriteItems",
           "{'TransactItems':[{'Put':{'TableName':'users','Item':{'pk':{'S':'u8'}}}},{'Put':{'TableName':'nope','Item':{'pk':{'S':"
           "'u8'}}}}]}",
           400, "ResourceNotFoundException");
    expect_exact(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'u8'}}}", 200, "{}");
}

static void test_write_key_errors(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect(s, "TransactWriteItems", "{'TransactItems':[{'Put':{'TableName':'users','Item':{'name':{'S':'x'}}}}]}", 400,
           "Missing the key pk in the item");
    expect(s, "TransactWriteItems", "{'TransactItems':[{'Delete':{'TableName':'users','Key':{'pk':{'N':'1'}}}}]}", 400,
           "The provided key element does not match the schema");
    expect(s, "TransactWriteItems",
           "{'TransactItems':[{'ConditionCheck':{'TableName':'events','Key':{'id':{'N':'1'}},'ConditionExpression':'attribute_"
           "exists(id)'"
           "}}]}",
           400, "The provided key element does not match the schema");
    expect(s, "TransactWriteItems",
           "{'TransactItems':[{'Update':{'TableName':'users','Key':{'pk':{'S':'u1'}},'UpdateExpression':'SET pk = :v',"
           "'ExpressionAttributeValues':{':v':{'S':'x'}}}}]}",
           400, "Cannot update attribute pk. This attribute is part of the key");
}

static void test_write_request_errors(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect(s, "TransactWriteItems", "{'TransactItems':{}}", 400, "SerializationException");
    expect(s, "TransactWriteItems", "{'TransactItems':[[]]}", 400, "SerializationException");
    expect(s, "TransactWriteItems", "{'TransactItems':[{'Put':'x'}]}", 400, "SerializationException");
    expect(s, "TransactWriteItems", "{'TransactItems':[{}]}", 400,
           "TransactItems can only contain one of Check, Put, Update or Delete");
    expect(s, "TransactWriteItems",
           "{'TransactItems':[{'Put':{'TableName':'users','Item':{'pk':{'S':'a'}}},'Delete':{'TableName':'users','Key':{'pk':{'S':"
           "'b'}}}}]}",
           400, "TransactItems can only contain one of Check, Put, Update or Delete");
    expect(s, "TransactWriteItems", "{'TransactItems':[{'Put':{'TableName':'x','Item':{'pk':{'S':'a'}}}}]}", 400,
           "at 'transactItems.1.member.put.tableName' failed to satisfy constraint: Member must have length greater than or equal "
           "to 3");
    expect(s, "TransactWriteItems", "{'TransactItems':[{'Put':{'TableName':'users'}}]}", 400,
           "Value null at 'transactItems.1.member.put.item' failed to satisfy constraint: Member must not be null");
    expect(s, "TransactWriteItems", "{'TransactItems':[{'Update':{'TableName':'users','Key':{'pk':{'S':'a'}}}}]}", 400,
           "Value null at 'transactItems.1.member.update.updateExpression' failed to satisfy constraint");
    expect(s, "TransactWriteItems", "{'TransactItems':[{'ConditionCheck':{'TableName':'users','Key':{'pk':{'S':'a'}}}}]}", 400,
           "Value null at 'transactItems.1.member.conditionCheck.conditionExpression' failed to satisfy constraint");
    expect(s, "TransactWriteItems",
           "{'TransactItems':[{'Put':{'TableName':'users','Item':{'pk':{'S':'a'}},'ConditionExpression':'a = :nope'}}]}", 400,
           "ValidationException");
    expect(s, "TransactWriteItems",
           "{'TransactItems':[{'Put':{'TableName':'users','Item':{'pk':{'S':'a'}}}}],'ClientRequestToken':"
           "'0123456789012345678901234567890123456789'}",
           400, "clientRequestToken");
    expect(s, "TransactWriteItems",
           "{'TransactItems':[{'Put':{'TableName':'users','Item':{'pk':{'S':'a'}}}}],'ReturnConsumedCapacity':'ALL'}", 400,
           "returnConsumedCapacity");
    expect(s, "TransactWriteItems", "nope", 400, "SerializationException");
    expect_exact(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'a'}}}", 200, "{}");
}

static void test_write_item_too_large(void **state)
{
    store_t *s = S(state);
    make_table(s, "tbl", "pk", "S", NULL, NULL);
    size_t n = 410 * 1024;
    char *big = malloc(n + 256), *req = malloc(n + 512);
    memset(big, 'x', n);
    big[n] = '\0';
    snprintf(req, n + 512,
             "{\"TransactItems\":[{\"Put\":{\"TableName\":\"tbl\",\"Item\":{\"pk\":{\"S\":\"a\"},\"v\":{\"S\":\"%s\"}}}}]}", big);
    expect_raw(s, "TransactWriteItems", req, 400, "ValidationException");
    /* an update that grows an item past the limit: a ValidationError reason */
    snprintf(
        req, n + 512,
        "{\"TransactItems\":[{\"Put\":{\"TableName\":\"tbl\",\"Item\":{\"pk\":{\"S\":\"z\"}}}},{\"Update\":{\"TableName\":\"tbl\","
        "\"Key\":{\"pk\":{\"S\":\"b\"}},\"UpdateExpression\":\"SET v = :v, w = :v\",\"ExpressionAttributeValues\":{\":v\":{\"S\":"
        "\"%.*s\"}}}}]}",
        (int)(300 * 1024), big);
    expect_raw(s, "TransactWriteItems", req, 400, "[None, ValidationError]");
    expect_exact(s, "GetItem", "{'TableName':'tbl','Key':{'pk':{'S':'z'}}}", 200, "{}");
    free(big);
    free(req);
}

static void test_write_update_type_error(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect(s, "TransactWriteItems",
           "{'TransactItems':[{'Update':{'TableName':'users','Key':{'pk':{'S':'u1'}},'UpdateExpression':'SET age = #n + :one',"
           "'ExpressionAttributeValues':{':one':{'N':'1'}},'ExpressionAttributeNames':{'#n':'name'}}}]}",
           400, "[ValidationError]");
    expect(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'u1'}}}", 200, "'Ann'");
}

static void test_write_counters(void **state)
{
    store_t *s = S(state);
    long long c1, b1, c2, b2;
    make_table(s, "viatx", "pk", "S", NULL, NULL);
    make_table(s, "viasingle", "pk", "S", NULL, NULL);
    expect(
        s, "TransactWriteItems",
        "{'TransactItems':[{'Put':{'TableName':'viatx','Item':{'pk':{'S':'a'},'v':{'N':'1'}}}},{'Put':{'TableName':'viatx','Item':"
        "{'pk':{'S':'b'},'s':{'SS':['x','yy']}}}},{'Update':{'TableName':'viatx','Key':{'pk':{'S':'c'}},'UpdateExpression':'SET "
        "n = :n','ExpressionAttributeValues':{':n':{'N':'-1.5'}}}}]}",
        200, "{}");
    expect(s, "PutItem", "{'TableName':'viasingle','Item':{'pk':{'S':'a'},'v':{'N':'1'}}}", 200, "{}");
    expect(s, "PutItem", "{'TableName':'viasingle','Item':{'pk':{'S':'b'},'s':{'SS':['x','yy']}}}", 200, "{}");
    expect(s, "UpdateItem",
           "{'TableName':'viasingle','Key':{'pk':{'S':'c'}},'UpdateExpression':'SET n = :n','ExpressionAttributeValues':{':n':{'N':"
           "'-1.5'}}}",
           200, "{}");
    counters(s, "viatx", &c1, &b1);
    counters(s, "viasingle", &c2, &b2);
    assert_int_equal(c1, 3);
    assert_int_equal(c1, c2);
    assert_int_equal(b1, b2);
    /* a cancelled transaction changes no counter */
    expect(
        s, "TransactWriteItems",
        "{'TransactItems':[{'Delete':{'TableName':'viatx','Key':{'pk':{'S':'a'}}}},{'Put':{'TableName':'viatx','Item':{'pk':{'S':"
        "'d'}}}},{'ConditionCheck':{'TableName':'viatx','Key':{'pk':{'S':'zz'}},'ConditionExpression':'attribute_exists(pk)'}}]}",
        400, CANCELED);
    counters(s, "viatx", &c2, &b2);
    assert_int_equal(c2, c1);
    assert_int_equal(b2, b1);
    /* delete, overwrite larger, delete a missing item */
    expect(
        s, "TransactWriteItems",
        "{'TransactItems':[{'Delete':{'TableName':'viatx','Key':{'pk':{'S':'a'}}}},{'Put':{'TableName':'viatx','Item':{'pk':{'S':"
        "'b'},'w':{'S':'more text'}}}},{'Delete':{'TableName':'viatx','Key':{'pk':{'S':'zz'}}}}]}",
        200, "{}");
    expect(s, "DeleteItem", "{'TableName':'viasingle','Key':{'pk':{'S':'a'}}}", 200, "{}");
    expect(s, "PutItem", "{'TableName':'viasingle','Item':{'pk':{'S':'b'},'w':{'S':'more text'}}}", 200, "{}");
    counters(s, "viatx", &c1, &b1);
    counters(s, "viasingle", &c2, &b2);
    assert_int_equal(c1, 2);
    assert_int_equal(c1, c2);
    assert_int_equal(b1, b2);
    expect(
        s, "TransactWriteItems",
        "{'TransactItems':[{'Delete':{'TableName':'viatx','Key':{'pk':{'S':'b'}}}},{'Delete':{'TableName':'viatx','Key':{'pk':{'S':"
        "'c'}}}}]}",
        200, "{}");
    counters(s, "viatx", &c1, &b1);
    assert_int_equal(c1, 0);
    assert_int_equal(b1, 0);
}

static void test_write_after_table_deleted(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect(s, "DeleteTable", "{'TableName':'users'}", 200, "DELETING");
    expect(s, "TransactWriteItems", "{'TransactItems':[{'Put':{'TableName':'users','Item':{'pk':{'S':'u1'}}}}]}", 400,
           "ResourceNotFoundException");
}

/* ---- TransactGetItems ---- */

static void test_get_in_order(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect_exact(
        s, "TransactGetItems",
        "{'TransactItems':[{'Get':{'TableName':'events','Key':{'id':{'N':'1'},'at':{'S':'b'}}}},{'Get':{'TableName':'users',"
        "'Key':{'pk':{'S':'nobody'}}}},{'Get':{'TableName':'users','Key':{'pk':{'S':'u3'}}}}]}",
        200,
        "{'Responses':[{'Item':{'id':{'N':'1'},'at':{'S':'b'},'what':{'S':'logout'}}},{},{'Item':{'pk':{'S':'u3'},'name':{'S':"
        "'Cy'}}}]}");
}

static void test_get_projection(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect_exact(s, "TransactGetItems",
                 "{'TransactItems':[{'Get':{'TableName':'users','Key':{'pk':{'S':'u1'}},'ProjectionExpression':'#n, age',"
                 "'ExpressionAttributeNames':{'#n':'name'}}},{'Get':{'TableName':'users','Key':{'pk':{'S':'u2'}},"
                 "'ProjectionExpression':'pk'}}],'ReturnConsumedCapacity':'NONE'}",
                 200, "{'Responses':[{'Item':{'name':{'S':'Ann'},'age':{'N':'31'}}},{'Item':{'pk':{'S':'u2'}}}]}");
    expect(s, "TransactGetItems",
           "{'TransactItems':[{'Get':{'TableName':'users','Key':{'pk':{'S':'u1'}},'ProjectionExpression':'#nope'}}]}", 400,
           "ValidationException");
}

static void test_get_errors(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect(s, "TransactGetItems", "{'TransactItems':[{'Get':{'TableName':'nope','Key':{'pk':{'S':'u1'}}}}]}", 400,
           "ResourceNotFoundException");
    expect(s, "TransactGetItems",
           "{'TransactItems':[{'Get':{'TableName':'users','Key':{'pk':{'S':'u1'}}}},{'Get':{'TableName':'users','Key':{'pk':{'S':"
           "'u1'}}}}]}",
           400, "Transaction request cannot include multiple operations on one item");
    expect(s, "TransactGetItems", "{'TransactItems':[{'Get':{'TableName':'users','Key':{'id':{'S':'u1'}}}}]}", 400,
           "The provided key element does not match the schema");
    expect(s, "TransactGetItems", "{'TransactItems':[{'Put':{'TableName':'users','Item':{'pk':{'S':'u1'}}}}]}", 400,
           "TransactItems can only contain one of Get");
    expect(s, "TransactGetItems", "{'TransactItems':[{'Get':{'Key':{'pk':{'S':'u1'}}}}]}", 400,
           "Value null at 'transactItems.1.member.get.tableName'");
    expect(s, "TransactGetItems", "{'TransactItems':[]}", 400, "Member must have length greater than or equal to 1");
    expect(s, "TransactGetItems", "[]", 400, "SerializationException");
}

static void test_get_100_and_101(void **state)
{
    store_t *s = S(state);
    make_table(s, "tbl", "pk", "S", NULL, NULL);
    char *r = put_many("tbl", 100);
    expect_raw(s, "TransactWriteItems", r, 200, "{}");
    free(r);
    r = get_many("tbl", 100);
    char *body;
    assert_int_equal(call_raw(s, "TransactGetItems", r, &body), 200);
    json_t *o = json_loads(body, 0, NULL);
    json_t *list = json_object_get(o, "Responses");
    assert_int_equal(json_array_size(list), 100);
    for (size_t i = 0; i != 100; ++i) {
        char k[32];
        snprintf(k, sizeof(k), "k%zu", i);
        json_t *pk = json_object_get(json_object_get(json_object_get(json_array_get(list, i), "Item"), "pk"), "S");
        assert_string_equal(json_string_value(pk), k);
    }
    json_decref(o);
    free(body);
    free(r);
    r = get_many("tbl", 101);
    expect_raw(s, "TransactGetItems", r, 400, "Member must have length less than or equal to 100");
    free(r);
}

static void test_write_then_get(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect(s, "TransactWriteItems",
           "{'TransactItems':[{'Update':{'TableName':'users','Key':{'pk':{'S':'u1'}},'UpdateExpression':'ADD visits :one',"
           "'ExpressionAttributeValues':{':one':{'N':'1'}}}},{'Delete':{'TableName':'users','Key':{'pk':{'S':'u2'}}}}]}",
           200, "{}");
    expect_exact(s, "TransactGetItems",
                 "{'TransactItems':[{'Get':{'TableName':'users','Key':{'pk':{'S':'u1'}},'ProjectionExpression':'visits'}},{'Get':{"
                 "'TableName':'users','Key':{'pk':{'S':'u2'}}}}]}",
                 200, "{'Responses':[{'Item':{'visits':{'N':'1'}}},{}]}");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_write_put_two_tables),
        T(test_write_update),
        T(test_write_delete),
        T(test_write_condition_check_passes),
        T(test_write_all_or_nothing),
        T(test_write_condition_on_put_fails),
        T(test_write_two_conditions_fail),
        T(test_write_return_values_on_failure),
        T(test_write_duplicates),
        T(test_write_100_and_101),
        T(test_write_unknown_table),
        T(test_write_key_errors),
        T(test_write_request_errors),
        T(test_write_item_too_large),
        T(test_write_update_type_error),
        T(test_write_counters),
        T(test_write_after_table_deleted),
        T(test_get_in_order),
        T(test_get_projection),
        T(test_get_errors),
        T(test_get_100_and_101),
        T(test_write_then_get),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
