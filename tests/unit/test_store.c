/*
 * Unit tests of store/store.c, table.c and item.c: the item store's operations through store_call, over a real LMDB
 * environment in a fresh mkdtemp() directory (each test its own). Writes are answered on the writer thread: call()
 * waits for the answer with a semaphore. The concurrency tests drive store_call from several threads at once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <jansson.h>
#include <lmdb.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "store/store.h"
#include "tests/unit/store_fixture.h"

/* ---- tables ---- */

static void test_create_describe(void **state)
{
    store_t *s = S(state);
    char *body;
    make_table_as(s, "users", "pk", "S", NULL, NULL, 1);
    assert_int_equal(call(s, "DescribeTable", "{\"TableName\":\"users\"}", &body), 200);
    json_t *o = json_loads(body, 0, NULL), *t = json_object_get(o, "Table");
    assert_string_equal(json_string_value(json_object_get(t, "TableName")), "users");
    assert_string_equal(json_string_value(json_object_get(t, "TableArn")), "arn:aws:dynamodb:local:000000000000:table/users");
    assert_string_equal(json_string_value(json_object_get(t, "TableStatus")), "ACTIVE");
    assert_true(json_is_integer(json_object_get(t, "CreationDateTime")));
    assert_int_equal(json_integer_value(json_object_get(t, "ItemCount")), 0);
    assert_int_equal(json_integer_value(json_object_get(t, "TableSizeBytes")), 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(t, "ProvisionedThroughput"), "ReadCapacityUnits")), 5);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(t, "KeySchema"), 0), "KeyType")), "HASH");
    json_decref(o);
    free(body);
}

static void test_create_pay_per_request(void **state)
{
    make_table(S(state), "ppr", "pk", "S", "sk", "N");
    expect(S(state), "DescribeTable", "{\"TableName\":\"ppr\"}", 200,
           "\"BillingModeSummary\":{\"BillingMode\":\"PAY_PER_REQUEST\"");
}

static void test_create_exists(void **state)
{
    make_table_as(S(state), "dup", "pk", "S", NULL, NULL, 1);
    expect_exact(
        S(state), "CreateTable",
        "{\"TableName\":\"dup\",\"KeySchema\":[{\"AttributeName\":\"pk\",\"KeyType\":\"HASH\"}],\"AttributeDefinitions\":"
        "[{\"AttributeName\":\"pk\",\"AttributeType\":\"S\"}],\"BillingMode\":\"PAY_PER_REQUEST\"}",
        400, "{\"__type\":\"com.amazonaws.dynamodb.v20120810#ResourceInUseException\",\"message\":\"Table already exists: dup\"}");
}

static void test_create_bad_names(void **state)
{
    store_t *s = S(state);
    expect_exact(
        s, "CreateTable", "{}", 400,
        "{\"__type\":\"com.amazon.coral.validate#ValidationException\",\"message\":\"The parameter 'TableName' is required but "
        "was not present in the request\"}");
    expect(s, "CreateTable", "{\"TableName\":\"ab\"}", 400,
           "TableName must be at least 3 characters long and at most 255 characters long");
    expect(s, "CreateTable",
           "{\"TableName\":\"a b\",\"KeySchema\":[{\"AttributeName\":\"pk\",\"KeyType\":\"HASH\"}],\"AttributeDefinitions\":"
           "[{\"AttributeName\":\"pk\",\"AttributeType\":\"S\"}],\"BillingMode\":\"PAY_PER_REQUEST\"}",
           400,
           "\"1 validation error detected: Value 'a b' at 'tableName' failed to satisfy constraint: Member must satisfy regular "
           "expression "
           "pattern: [a-zA-Z0-9_.-]+\"");
    expect(s, "CreateTable", "{\"TableName\":5}", 400,
           "SerializationException\",\"message\":\"class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be "
           "converted to "
           "an String\"");
}

static void test_create_bad_schema(void **state)
{
    store_t *s = S(state);
    expect(s, "CreateTable",
           "{\"TableName\":\"bad\",\"KeySchema\":[{\"AttributeName\":\"pk\",\"KeyType\":\"RANGE\"}],\"AttributeDefinitions\":"
           "[{\"AttributeName\":\"pk\",\"AttributeType\":\"S\"}],\"BillingMode\":\"PAY_PER_REQUEST\"}",
           400, "Invalid KeySchema: The first KeySchemaElement is not a HASH key type");
    expect(s, "CreateTable",
           "{\"TableName\":\"bad\",\"KeySchema\":[{\"AttributeName\":\"pk\",\"KeyType\":\"HASH\"}],\"AttributeDefinitions\":"
           "[{\"AttributeName\":\"pk\",\"AttributeType\":\"S\"},{\"AttributeName\":\"x\",\"AttributeType\":\"S\"}],"
           "\"BillingMode\":\"PAY_PER_REQUEST\"}",
           400, "Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions");
    expect(s, "CreateTable",
           "{\"TableName\":\"bad\",\"KeySchema\":[{\"AttributeName\":\"pk\",\"KeyType\":\"HASH\"}],\"AttributeDefinitions\":"
           "[{\"AttributeName\":\"x\",\"AttributeType\":\"S\"}],\"BillingMode\":\"PAY_PER_REQUEST\"}",
           400, "Some index key attributes are not defined in AttributeDefinitions. Keys: [pk], AttributeDefinitions: [x]");
    expect(s, "CreateTable",
           "{\"TableName\":\"bad\",\"KeySchema\":[{\"AttributeName\":\"pk\",\"KeyType\":\"HASH\"}],\"AttributeDefinitions\":"
           "[{\"AttributeName\":\"pk\",\"AttributeType\":\"BOOL\"}],\"BillingMode\":\"PAY_PER_REQUEST\"}",
           400,
           "Value 'BOOL' at 'attributeDefinitions.1.member.attributeType' failed to satisfy constraint: Member must satisfy enum "
           "value "
           "set: [B, N, S]");
    expect(s, "CreateTable",
           "{\"TableName\":\"bad\",\"KeySchema\":[{\"AttributeName\":\"pk\",\"KeyType\":\"HASH\"}],\"AttributeDefinitions\":"
           "[{\"AttributeName\":\"pk\",\"AttributeType\":\"S\"}]}",
           400, "ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED");
    expect(
        s, "CreateTable",
        "{\"TableName\":\"bad\",\"KeySchema\":[{\"AttributeName\":\"pk\",\"KeyType\":\"HASH\"},{\"AttributeName\":\"pk\","
        "\"KeyType\":\"RANGE\"}],\"AttributeDefinitions\":[{\"AttributeName\":\"pk\",\"AttributeType\":\"S\"},{\"AttributeName\":"
        "\"pk\",\"AttributeType\":\"S\"}],\"BillingMode\":\"PAY_PER_REQUEST\"}",
        400, "Both the Hash Key and the Range Key element in the KeySchema have the same name");
    expect(s, "ListTables", "{}", 200, "{\"TableNames\":[]}");
}

static void test_create_with_gsi(void **state)
{
    store_t *s = S(state);
    expect(
        s, "CreateTable",
        "{\"TableName\":\"withgsi\",\"KeySchema\":[{\"AttributeName\":\"pk\",\"KeyType\":\"HASH\"}],\"AttributeDefinitions\":"
        "[{\"AttributeName\":\"pk\",\"AttributeType\":\"S\"},{\"AttributeName\":\"g\",\"AttributeType\":\"N\"}],"
        "\"BillingMode\":\"PAY_PER_REQUEST\",\"GlobalSecondaryIndexes\":[{\"IndexName\":\"byg\",\"KeySchema\":[{\"AttributeName\":"
        "\"g\",\"KeyType\":\"HASH\"}],\"Projection\":{\"ProjectionType\":\"ALL\"}}]}",
        200, "\"IndexName\":\"byg\"");
    expect(s, "DescribeTable", "{\"TableName\":\"withgsi\"}", 200, "table/withgsi/index/byg");
}

static void test_describe_missing(void **state)
{
    expect_exact(S(state), "DescribeTable", "{\"TableName\":\"nope\"}", 400,
                 "{\"__type\":\"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException\",\"message\":\"Requested resource not "
                 "found: Table: nope not found\"}");
}

static void test_delete_table(void **state)
{
    store_t *s = S(state);
    make_table_as(s, "gone", "pk", "S", NULL, NULL, 1);
    expect(s, "PutItem", "{\"TableName\":\"gone\",\"Item\":{\"pk\":{\"S\":\"a\"}}}", 200, "{}");
    expect(s, "DeleteTable", "{\"TableName\":\"gone\"}", 200, "\"TableStatus\":\"DELETING\"");
    expect(s, "DescribeTable", "{\"TableName\":\"gone\"}", 400, "ResourceNotFoundException");
    expect(s, "GetItem", "{\"TableName\":\"gone\",\"Key\":{\"pk\":{\"S\":\"a\"}}}", 400, "Requested resource not found");
    expect(s, "DeleteTable", "{\"TableName\":\"gone\"}", 400, "Requested resource not found: Table: gone not found");
    /* recreated: empty, even with another key type */
    make_table_as(s, "gone", "pk", "N", NULL, NULL, 1);
    expect(s, "DescribeTable", "{\"TableName\":\"gone\"}", 200, "\"ItemCount\":0");
    expect_exact(s, "GetItem", "{\"TableName\":\"gone\",\"Key\":{\"pk\":{\"N\":\"1\"}}}", 200, "{}");
}

static void test_list_tables_paged(void **state)
{
    store_t *s = S(state);
    const char *names[] = {"tab-c", "tab-a", "tab-e", "tab-b", "tab-d"};
    for (int i = 0; i != 5; ++i)
        make_table_as(s, names[i], "pk", "S", NULL, NULL, 1);
    expect_exact(s, "ListTables", "{}", 200, "{\"TableNames\":[\"tab-a\",\"tab-b\",\"tab-c\",\"tab-d\",\"tab-e\"]}");
    expect_exact(s, "ListTables", "{\"Limit\":2}", 200,
                 "{\"TableNames\":[\"tab-a\",\"tab-b\"],\"LastEvaluatedTableName\":\"tab-b\"}");
    expect_exact(s, "ListTables", "{\"Limit\":2,\"ExclusiveStartTableName\":\"tab-b\"}", 200,
                 "{\"TableNames\":[\"tab-c\",\"tab-d\"],\"LastEvaluatedTableName\":\"tab-d\"}");
    expect_exact(s, "ListTables", "{\"Limit\":2,\"ExclusiveStartTableName\":\"tab-d\"}", 200, "{\"TableNames\":[\"tab-e\"]}");
    expect_exact(s, "ListTables", "{\"ExclusiveStartTableName\":\"tab-bb\"}", 200,
                 "{\"TableNames\":[\"tab-c\",\"tab-d\",\"tab-e\"]}");
}

static void test_list_tables_invalid(void **state)
{
    expect(S(state), "ListTables", "{\"Limit\":0}", 400,
           "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or "
           "equal "
           "to 1");
    expect(S(state), "ListTables", "{\"Limit\":101,\"ExclusiveStartTableName\":\"x\"}", 400, "2 validation errors detected: ");
}

/* ---- items ---- */

static void test_put_get_s(void **state)
{
    store_t *s = S(state);
    make_table_as(s, "items", "pk", "S", NULL, NULL, 1);
    expect_exact(
        s, "PutItem",
        "{\"TableName\":\"items\",\"Item\":{\"pk\":{\"S\":\"k1\"},\"n\":{\"N\":\"1.50\"},\"l\":{\"L\":[{\"BOOL\":true},{\"NULL\":"
        "true}]},\"m\":{\"M\":{\"x\":{\"SS\":[\"a\",\"b\"]}}}}}",
        200, "{}");
    expect_exact(
        s, "GetItem", "{\"TableName\":\"items\",\"Key\":{\"pk\":{\"S\":\"k1\"}},\"ConsistentRead\":true}", 200,
        "{\"Item\":{\"pk\":{\"S\":\"k1\"},\"n\":{\"N\":\"1.5\"},\"l\":{\"L\":[{\"BOOL\":true},{\"NULL\":true}]},\"m\":{\"M\":{"
        "\"x\":{\"SS\":[\"a\",\"b\"]}}}}}");
}

static void test_put_get_n(void **state)
{
    store_t *s = S(state);
    make_table_as(s, "nums", "id", "N", NULL, NULL, 1);
    expect(s, "PutItem", "{\"TableName\":\"nums\",\"Item\":{\"id\":{\"N\":\"10\"},\"v\":{\"S\":\"ten\"}}}", 200, "{}");
    /* the key is numeric: 1E1 is 10 */
    expect_exact(s, "GetItem", "{\"TableName\":\"nums\",\"Key\":{\"id\":{\"N\":\"1E1\"}}}", 200,
                 "{\"Item\":{\"id\":{\"N\":\"10\"},\"v\":{\"S\":\"ten\"}}}");
    expect_exact(s, "GetItem", "{\"TableName\":\"nums\",\"Key\":{\"id\":{\"N\":\"11\"}}}", 200, "{}");
}

static void test_put_get_b(void **state)
{
    store_t *s = S(state);
    make_table_as(s, "bins", "id", "B", NULL, NULL, 1);
    expect(s, "PutItem", "{\"TableName\":\"bins\",\"Item\":{\"id\":{\"B\":\"AAEC\"},\"v\":{\"N\":\"-0.0\"}}}", 200, "{}");
    expect_exact(s, "GetItem", "{\"TableName\":\"bins\",\"Key\":{\"id\":{\"B\":\"AAEC\"}}}", 200,
                 "{\"Item\":{\"id\":{\"B\":\"AAEC\"},\"v\":{\"N\":\"0\"}}}");
    expect_exact(s, "GetItem", "{\"TableName\":\"bins\",\"Key\":{\"id\":{\"B\":\"AAED\"}}}", 200, "{}");
}

static void test_put_get_sort_key(void **state)
{
    store_t *s = S(state);
    make_table(s, "sorted", "pk", "S", "sk", "N");
    expect(s, "PutItem", "{\"TableName\":\"sorted\",\"Item\":{\"pk\":{\"S\":\"a\"},\"sk\":{\"N\":\"1\"},\"v\":{\"S\":\"one\"}}}",
           200, "{}");
    expect(s, "PutItem", "{\"TableName\":\"sorted\",\"Item\":{\"pk\":{\"S\":\"a\"},\"sk\":{\"N\":\"2\"},\"v\":{\"S\":\"two\"}}}",
           200, "{}");
    expect(s, "GetItem", "{\"TableName\":\"sorted\",\"Key\":{\"pk\":{\"S\":\"a\"},\"sk\":{\"N\":\"2\"}}}", 200,
           "\"v\":{\"S\":\"two\"}");
    expect(s, "GetItem", "{\"TableName\":\"sorted\",\"Key\":{\"pk\":{\"S\":\"a\"},\"sk\":{\"N\":\"1\"}}}", 200,
           "\"v\":{\"S\":\"one\"}");
    expect(s, "GetItem", "{\"TableName\":\"sorted\",\"Key\":{\"pk\":{\"S\":\"a\"}}}", 400,
           "The provided key element does not match the schema");
    expect(s, "PutItem", "{\"TableName\":\"sorted\",\"Item\":{\"pk\":{\"S\":\"a\"}}}", 400,
           "One or more parameter values were invalid: Missing the key sk in the item");
    expect(s, "DescribeTable", "{\"TableName\":\"sorted\"}", 200, "\"ItemCount\":2");
}

static void test_get_projection(void **state)
{
    store_t *s = S(state);
    make_table_as(s, "proj", "pk", "S", NULL, NULL, 1);
    expect(s, "PutItem",
           "{\"TableName\":\"proj\",\"Item\":{\"pk\":{\"S\":\"a\"},\"x\":{\"N\":\"1\"},\"y\":{\"M\":{\"z\":{\"S\":\"zz\"},\"w\":{"
           "\"S\":"
           "\"ww\"}}}}}",
           200, "{}");
    expect_exact(
        s, "GetItem",
        "{\"TableName\":\"proj\",\"Key\":{\"pk\":{\"S\":\"a\"}},\"ProjectionExpression\":\"#x, y.z\",\"ExpressionAttributeNames\""
        ":{\"#x\":\"x\"}}",
        200, "{\"Item\":{\"x\":{\"N\":\"1\"},\"y\":{\"M\":{\"z\":{\"S\":\"zz\"}}}}}");
    expect(s, "GetItem",
           "{\"TableName\":\"proj\",\"Key\":{\"pk\":{\"S\":\"a\"}},\"ProjectionExpression\":\"x\",\"ExpressionAttributeNames\":{\"#"
           "x\":"
           "\"x\"}}",
           400, "Value provided in ExpressionAttributeNames unused in expressions: keys: {#x}");
}

static void test_get_errors(void **state)
{
    store_t *s = S(state);
    make_table_as(s, "errs", "pk", "S", NULL, NULL, 1);
    expect(s, "GetItem", "{\"TableName\":\"errs\",\"Key\":{\"id\":{\"S\":\"a\"}}}", 400,
           "The provided key element does not match the schema");
    expect(s, "GetItem", "{\"TableName\":\"errs\",\"Key\":{\"pk\":{\"N\":\"1\"}}}", 400,
           "The provided key element does not match the schema");
    expect(s, "GetItem", "{\"TableName\":\"errs\"}", 400,
           "1 validation error detected: Value null at 'key' failed to satisfy constraint: Member must not be null");
    expect(s, "GetItem", "{\"TableName\":\"errs\",\"Key\":{\"pk\":{\"S\":\"\"}}}", 400,
           "The AttributeValue for a key attribute cannot contain an empty string value. Key: pk");
    expect_exact(
        s, "GetItem", "{\"TableName\":\"nothere\",\"Key\":{\"pk\":{\"S\":\"a\"}}}", 400,
        "{\"__type\":\"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException\",\"message\":\"Requested resource not found\"}");
    expect(s, "GetItem", "{\"TableName\":\"errs\",\"Key\":{\"pk\":{\"S\":\"a\"}},\"ConsistentRead\":5}", 400,
           "SerializationException");
}

static void test_put_errors(void **state)
{
    store_t *s = S(state);
    make_table_as(s, "perr", "pk", "S", NULL, NULL, 1);
    expect(s, "PutItem", "{\"TableName\":\"perr\",\"Item\":{\"pk\":{\"N\":\"1\"}}}", 400,
           "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N");
    expect(s, "PutItem", "{\"TableName\":\"perr\",\"Item\":{\"x\":{\"N\":\"1\"}}}", 400,
           "One or more parameter values were invalid: Missing the key pk in the item");
    expect(s, "PutItem", "{\"TableName\":\"nothere\",\"Item\":{\"pk\":{\"S\":\"1\"}}}", 400, "Requested resource not found");
    expect(s, "PutItem", "{\"TableName\":\"perr\",\"Item\":{\"pk\":{\"S\":\"a\"}},\"ReturnValues\":\"ALL_NEW\"}", 400,
           "ReturnValues can only be ALL_OLD or NONE");
    expect(s, "PutItem", "{\"TableName\":\"perr\",\"Item\":{\"pk\":{\"S\":\"a\"}},\"ReturnValues\":\"SOME\"}", 400,
           "Member must satisfy enum value set: [NONE, ALL_OLD, UPDATED_OLD, ALL_NEW, UPDATED_NEW]");
    expect(s, "PutItem", "{\"TableName\":\"perr\",\"Item\":{\"pk\":{\"S\":5}}}", 400, "SerializationException");
    expect(s, "PutItem", "{\"TableName\":\"perr\",\"Item\":{\"pk\":{\"S\":\"a\"},\"n\":{\"N\":\"abc\"}}}", 400,
           "The parameter cannot be converted to a numeric value: abc");
    expect(s, "PutItem", "{\"TableName\":\"perr\",\"Item\":{\"pk\":{\"S\":\"a\"}},\"ExpressionAttributeNames\":{\"#a\":\"a\"}}",
           400, "ExpressionAttributeNames can only be specified when using expressions");
    expect(s, "PutItem",
           "{\"TableName\":\"perr\",\"Item\":{\"pk\":{\"S\":\"a\"}},\"ExpressionAttributeValues\":{\":a\":{\"S\":\"a\"}}}", 400,
           "ExpressionAttributeValues can only be specified when using expressions: ConditionExpression is null");
    expect(
        s, "PutItem",
        "{\"TableName\":\"perr\",\"Item\":{\"pk\":{\"S\":\"a\"}},\"ConditionExpression\":\"a = :a\",\"ExpressionAttributeValues\":"
        "{\":a\":{\"S\":\"a\"},\":b\":{\"S\":\"b\"}}}",
        400, "Value provided in ExpressionAttributeValues unused in expressions: keys: {:b}");
    expect(s, "PutItem", "{\"TableName\":\"perr\",\"Item\":{\"pk\":{\"S\":\"a\"}},\"ConditionExpression\":\"a = \"}", 400,
           "Invalid ConditionExpression: Syntax error");
    expect(s, "DescribeTable", "{\"TableName\":\"perr\"}", 200, "\"ItemCount\":0");
}

static void test_item_too_large(void **state)
{
    store_t *s = S(state);
    size_t n = 400 * 1024 + 10;
    char *req = malloc(n + 200), *p;
    make_table_as(s, "large", "pk", "S", NULL, NULL, 1);
    p = req + sprintf(req, "{\"TableName\":\"large\",\"Item\":{\"pk\":{\"S\":\"a\"},\"v\":{\"S\":\"");
    memset(p, 'x', n);
    strcpy(p + n, "\"}}}");
    expect(s, "PutItem", req, 400, "Item size has exceeded the maximum allowed size");
    /* just under: 400 KB minus the names and the key */
    p = req + sprintf(req, "{\"TableName\":\"large\",\"Item\":{\"pk\":{\"S\":\"a\"},\"v\":{\"S\":\"");
    memset(p, 'x', 400 * 1024 - 4);
    strcpy(p + 400 * 1024 - 4, "\"}}}");
    expect(s, "PutItem", req, 200, "{}");
    expect(
        s, "UpdateItem",
        "{\"TableName\":\"large\",\"Key\":{\"pk\":{\"S\":\"a\"}},\"UpdateExpression\":\"SET w = :w\",\"ExpressionAttributeValues\":"
        "{\":w\":{\"S\":\"more\"}}}",
        400, "Item size to update has exceeded the maximum allowed size");
    free(req);
}

static void test_put_condition_not_exists(void **state)
{
    store_t *s = S(state);
    const char *req = "{\"TableName\":\"cond\",\"Item\":{\"pk\":{\"S\":\"a\"},\"v\":{\"N\":\"1\"}},\"ConditionExpression\":"
                      "\"attribute_not_exists(pk)\"}";
    make_table_as(s, "cond", "pk", "S", NULL, NULL, 1);
    expect_exact(s, "PutItem", req, 200, "{}");
    expect_exact(s, "PutItem", req, 400,
                 "{\"__type\":\"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException\",\"message\":\"The conditional "
                 "request failed\"}");
}

static void test_put_condition_values(void **state)
{
    store_t *s = S(state);
    make_table_as(s, "condv", "pk", "S", NULL, NULL, 1);
    expect(s, "PutItem", "{\"TableName\":\"condv\",\"Item\":{\"pk\":{\"S\":\"a\"},\"v\":{\"N\":\"5\"}}}", 200, "{}");
    expect(s, "PutItem",
           "{\"TableName\":\"condv\",\"Item\":{\"pk\":{\"S\":\"a\"},\"v\":{\"N\":\"6\"}},\"ConditionExpression\":\"#v = :five\","
           "\"ExpressionAttributeNames\":{\"#v\":\"v\"},\"ExpressionAttributeValues\":{\":five\":{\"N\":\"5.0\"}}}",
           200, "{}");
    expect(s, "PutItem",
           "{\"TableName\":\"condv\",\"Item\":{\"pk\":{\"S\":\"a\"},\"v\":{\"N\":\"7\"}},\"ConditionExpression\":\"v = :five\","
           "\"ExpressionAttributeValues\":{\":five\":{\"N\":\"5\"}},\"ReturnValuesOnConditionCheckFailure\":\"ALL_OLD\"}",
           400,
           "{\"__type\":\"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException\",\"message\":\"The conditional request "
           "failed\",\"Item\":{\"pk\":{\"S\":\"a\"},\"v\":{\"N\":\"6\"}}}");
    expect(s, "GetItem", "{\"TableName\":\"condv\",\"Key\":{\"pk\":{\"S\":\"a\"}}}", 200, "\"v\":{\"N\":\"6\"}");
}

static void test_put_return_all_old(void **state)
{
    store_t *s = S(state);
    make_table_as(s, "rvput", "pk", "S", NULL, NULL, 1);
    expect_exact(s, "PutItem",
                 "{\"TableName\":\"rvput\",\"Item\":{\"pk\":{\"S\":\"a\"},\"v\":{\"S\":\"1\"}},\"ReturnValues\":\"ALL_OLD\"}", 200,
                 "{}");
    expect_exact(s, "PutItem",
                 "{\"TableName\":\"rvput\",\"Item\":{\"pk\":{\"S\":\"a\"},\"v\":{\"S\":\"2\"}},\"ReturnValues\":\"ALL_OLD\"}", 200,
                 "{\"Attributes\":{\"pk\":{\"S\":\"a\"},\"v\":{\"S\":\"1\"}}}");
    expect_exact(s, "PutItem",
                 "{\"TableName\":\"rvput\",\"Item\":{\"pk\":{\"S\":\"a\"},\"v\":{\"S\":\"3\"}},\"ReturnValues\":\"NONE\"}", 200,
                 "{}");
}

static void test_delete_item(void **state)
{
    store_t *s = S(state);
    make_table(s, "del", "pk", "S", "sk", "S");
    expect(s, "PutItem", "{\"TableName\":\"del\",\"Item\":{\"pk\":{\"S\":\"a\"},\"sk\":{\"S\":\"b\"},\"v\":{\"N\":\"1\"}}}", 200,
           "{}");
    expect(s, "DeleteItem",
           "{\"TableName\":\"del\",\"Key\":{\"pk\":{\"S\":\"a\"},\"sk\":{\"S\":\"b\"}},\"ConditionExpression\":\"v > :v\","
           "\"ExpressionAttributeValues\":{\":v\":{\"N\":\"1\"}}}",
           400, "ConditionalCheckFailedException");
    expect_exact(s, "DeleteItem",
                 "{\"TableName\":\"del\",\"Key\":{\"pk\":{\"S\":\"a\"},\"sk\":{\"S\":\"b\"}},\"ReturnValues\":\"ALL_OLD\"}", 200,
                 "{\"Attributes\":{\"pk\":{\"S\":\"a\"},\"sk\":{\"S\":\"b\"},\"v\":{\"N\":\"1\"}}}");
    expect_exact(s, "GetItem", "{\"TableName\":\"del\",\"Key\":{\"pk\":{\"S\":\"a\"},\"sk\":{\"S\":\"b\"}}}", 200, "{}");
    /* deleting a missing item is fine, and returns nothing */
    expect_exact(s, "DeleteItem",
                 "{\"TableName\":\"del\",\"Key\":{\"pk\":{\"S\":\"a\"},\"sk\":{\"S\":\"b\"}},\"ReturnValues\":\"ALL_OLD\"}", 200,
                 "{}");
    expect(s, "DeleteItem", "{\"TableName\":\"del\",\"Key\":{\"pk\":{\"S\":\"a\"}}}", 400,
           "The provided key element does not match the schema");
    expect(s, "DeleteItem",
           "{\"TableName\":\"del\",\"Key\":{\"pk\":{\"S\":\"a\"},\"sk\":{\"S\":\"b\"}},\"ReturnValues\":\"ALL_NEW\"}", 400,
           "ReturnValues can only be ALL_OLD or NONE");
}

static const char *upd = "{\"TableName\":\"upd\",\"Key\":{\"pk\":{\"S\":\"a\"}},\"UpdateExpression\":\"SET b = :b ADD c :one\","
                         "\"ExpressionAttributeValues\":{\":b\":{\"S\":\"%s\"},\":one\":{\"N\":\"1\"}},\"ReturnValues\":\"%s\"}";

static void update_rv(store_t *s, const char *b, const char *rv, const char *want)
{
    char req[512];
    snprintf(req, sizeof(req), upd, b, rv);
    expect_exact(s, "UpdateItem", req, 200, want);
}

static void test_update_creates(void **state)
{
    store_t *s = S(state);
    make_table_as(s, "upd", "pk", "S", NULL, NULL, 1);
    update_rv(s, "x", "NONE", "{}");
    expect_exact(s, "GetItem", "{\"TableName\":\"upd\",\"Key\":{\"pk\":{\"S\":\"a\"}}}", 200,
                 "{\"Item\":{\"pk\":{\"S\":\"a\"},\"b\":{\"S\":\"x\"},\"c\":{\"N\":\"1\"}}}");
    expect(s, "DescribeTable", "{\"TableName\":\"upd\"}", 200, "\"ItemCount\":1");
}

static void test_update_all_new(void **state)
{
    make_table_as(S(state), "upd", "pk", "S", NULL, NULL, 1);
    update_rv(S(state), "x", "ALL_NEW", "{\"Attributes\":{\"pk\":{\"S\":\"a\"},\"b\":{\"S\":\"x\"},\"c\":{\"N\":\"1\"}}}");
    update_rv(S(state), "y", "ALL_NEW", "{\"Attributes\":{\"pk\":{\"S\":\"a\"},\"b\":{\"S\":\"y\"},\"c\":{\"N\":\"2\"}}}");
}

static void test_update_all_old(void **state)
{
    make_table_as(S(state), "upd", "pk", "S", NULL, NULL, 1);
    update_rv(S(state), "x", "ALL_OLD", "{}");
    update_rv(S(state), "y", "ALL_OLD", "{\"Attributes\":{\"pk\":{\"S\":\"a\"},\"b\":{\"S\":\"x\"},\"c\":{\"N\":\"1\"}}}");
}

static void test_update_updated_old(void **state)
{
    make_table_as(S(state), "upd", "pk", "S", NULL, NULL, 1);
    update_rv(S(state), "x", "UPDATED_OLD", "{}");
    update_rv(S(state), "y", "UPDATED_OLD", "{\"Attributes\":{\"b\":{\"S\":\"x\"},\"c\":{\"N\":\"1\"}}}");
}

static void test_update_updated_new(void **state)
{
    make_table_as(S(state), "upd", "pk", "S", NULL, NULL, 1);
    update_rv(S(state), "x", "UPDATED_NEW", "{\"Attributes\":{\"b\":{\"S\":\"x\"},\"c\":{\"N\":\"1\"}}}");
    update_rv(S(state), "y", "UPDATED_NEW", "{\"Attributes\":{\"b\":{\"S\":\"y\"},\"c\":{\"N\":\"2\"}}}");
}

static void test_update_remove_and_condition(void **state)
{
    store_t *s = S(state);
    make_table_as(s, "upd", "pk", "S", NULL, NULL, 1);
    update_rv(s, "x", "NONE", "{}");
    expect(
        s, "UpdateItem",
        "{\"TableName\":\"upd\",\"Key\":{\"pk\":{\"S\":\"a\"}},\"UpdateExpression\":\"REMOVE b\",\"ConditionExpression\":"
        "\"b = :no\",\"ExpressionAttributeValues\":{\":no\":{\"S\":\"no\"}},\"ReturnValuesOnConditionCheckFailure\":\"ALL_OLD\"}",
        400, "\"Item\":{\"pk\":{\"S\":\"a\"},\"b\":{\"S\":\"x\"},\"c\":{\"N\":\"1\"}}");
    expect_exact(s, "UpdateItem",
                 "{\"TableName\":\"upd\",\"Key\":{\"pk\":{\"S\":\"a\"}},\"UpdateExpression\":\"REMOVE b\",\"ConditionExpression\":"
                 "\"b = :x\",\"ExpressionAttributeValues\":{\":x\":{\"S\":\"x\"}},\"ReturnValues\":\"ALL_NEW\"}",
                 200, "{\"Attributes\":{\"pk\":{\"S\":\"a\"},\"c\":{\"N\":\"1\"}}}");
    /* condition on a missing item: attribute_exists fails, and nothing is created */
    expect(s, "UpdateItem",
           "{\"TableName\":\"upd\",\"Key\":{\"pk\":{\"S\":\"zz\"}},\"UpdateExpression\":\"SET q = :x\",\"ConditionExpression\":"
           "\"attribute_exists(pk)\",\"ExpressionAttributeValues\":{\":x\":{\"S\":\"x\"}}}",
           400, "The conditional request failed");
    expect_exact(s, "GetItem", "{\"TableName\":\"upd\",\"Key\":{\"pk\":{\"S\":\"zz\"}}}", 200, "{}");
}

static void test_update_key_attribute(void **state)
{
    store_t *s = S(state);
    make_table(s, "updk", "pk", "S", "sk", "S");
    expect(s, "UpdateItem",
           "{\"TableName\":\"updk\",\"Key\":{\"pk\":{\"S\":\"a\"},\"sk\":{\"S\":\"b\"}},\"UpdateExpression\":\"SET sk = :x\","
           "\"ExpressionAttributeValues\":{\":x\":{\"S\":\"x\"}}}",
           400, "One or more parameter values were invalid: Cannot update attribute sk. This attribute is part of the key");
    expect(s, "UpdateItem",
           "{\"TableName\":\"updk\",\"Key\":{\"pk\":{\"S\":\"a\"},\"sk\":{\"S\":\"b\"}},\"UpdateExpression\":\"REMOVE #p\","
           "\"ExpressionAttributeNames\":{\"#p\":\"pk\"}}",
           400, "Cannot update attribute pk. This attribute is part of the key");
    expect(s, "DescribeTable", "{\"TableName\":\"updk\"}", 200, "\"ItemCount\":0");
}

static void test_update_runtime_error(void **state)
{
    store_t *s = S(state);
    make_table_as(s, "upde", "pk", "S", NULL, NULL, 1);
    expect(s, "PutItem", "{\"TableName\":\"upde\",\"Item\":{\"pk\":{\"S\":\"a\"},\"s\":{\"S\":\"text\"}}}", 200, "{}");
    expect(
        s, "UpdateItem",
        "{\"TableName\":\"upde\",\"Key\":{\"pk\":{\"S\":\"a\"}},\"UpdateExpression\":\"ADD s :one\",\"ExpressionAttributeValues\":"
        "{\":one\":{\"N\":\"1\"}}}",
        400, "An operand in the update expression has an incorrect data type");
    expect(s, "UpdateItem", "{\"TableName\":\"upde\",\"Key\":{\"pk\":{\"S\":\"a\"}},\"UpdateExpression\":\"SET x = y\"}", 400,
           "The provided expression refers to an attribute that does not exist in the item");
    expect(
        s, "UpdateItem",
        "{\"TableName\":\"upde\",\"Key\":{\"pk\":{\"S\":\"a\"}},\"UpdateExpression\":\"SET x = :a\",\"ExpressionAttributeValues\":"
        "{\":b\":{\"N\":\"1\"}}}",
        400, "Invalid UpdateExpression: An expression attribute value used in expression is not defined; attribute value: :a");
    expect_exact(s, "GetItem", "{\"TableName\":\"upde\",\"Key\":{\"pk\":{\"S\":\"a\"}}}", 200,
                 "{\"Item\":{\"pk\":{\"S\":\"a\"},\"s\":{\"S\":\"text\"}}}");
}

static void test_item_count(void **state)
{
    store_t *s = S(state);
    char req[256], *body;
    make_table_as(s, "counted", "pk", "N", NULL, NULL, 1);
    for (int i = 0; i != 10; ++i) {
        snprintf(req, sizeof(req), "{\"TableName\":\"counted\",\"Item\":{\"pk\":{\"N\":\"%d\"},\"v\":{\"S\":\"abc\"}}}", i);
        expect(s, "PutItem", req, 200, "{}");
    }
    /* overwrite: the count stays */
    expect(s, "PutItem", "{\"TableName\":\"counted\",\"Item\":{\"pk\":{\"N\":\"3\"},\"v\":{\"S\":\"abcdef\"}}}", 200, "{}");
    for (int i = 0; i != 4; ++i) {
        snprintf(req, sizeof(req), "{\"TableName\":\"counted\",\"Key\":{\"pk\":{\"N\":\"%d\"}}}", i);
        expect(s, "DeleteItem", req, 200, "{}");
    }
    assert_int_equal(call(s, "DescribeTable", "{\"TableName\":\"counted\"}", &body), 200);
    json_t *o = json_loads(body, 0, NULL), *t = json_object_get(o, "Table");
    assert_int_equal(json_integer_value(json_object_get(t, "ItemCount")), 6);
    /* each item: "pk" 2 + N "4..9" 2 + "v" 1 + "abc" 3 = 8 bytes */
    assert_int_equal(json_integer_value(json_object_get(t, "TableSizeBytes")), 6 * 8);
    json_decref(o);
    free(body);
}

static void test_unknown_op_and_bad_body(void **state)
{
    store_t *s = S(state);
    expect(s, "Frobnicate", "{}", 400, "\"__type\":\"com.amazon.coral.service#UnknownOperationException\"");
    expect(s, "GetItem", "[1]", 400, "\"__type\":\"com.amazon.coral.service#SerializationException\"");
    expect(s, "PutItem", "not json", 400, "\"__type\":\"com.amazon.coral.service#SerializationException\"");
    expect(s, "PutItem", "{\"TableName\":\"abc\",\"Item\":[]}", 400, "Start of list found where not expected");
    expect(s, "PutItem", "{\"TableName\":\"abc\",\"Item\":{\"pk\":{\"S\":\"a\"}},\"Expected\":{}}", 400,
           "ResourceNotFoundException"); /* legacy members are taken (store/legacy.c) */
}

/* ---- concurrency, batches, durability ---- */

typedef struct worker {
    store_t *s;
    const char *req;
    int n, ok, failed_condition;
} worker_t;

static void *worker_main(void *p)
{
    worker_t *w = p;
    for (int i = 0; i != w->n; ++i) {
        char *body;
        int st = call(w->s, strstr(w->req, "UpdateExpression") ? "UpdateItem" : "PutItem", w->req, &body);
        if (st == 200)
            w->ok++;
        else if (st == 400 && strstr(body, "ConditionalCheckFailedException"))
            w->failed_condition++;
        free(body);
    }
    return NULL;
}

static void test_concurrent_add(void **state)
{
    store_t *s = S(state);
    pthread_t th[8];
    worker_t w[8];
    make_table_as(s, "counter", "pk", "S", NULL, NULL, 1);
    for (int i = 0; i != 8; ++i) {
        w[i] = (worker_t){s,
                          "{\"TableName\":\"counter\",\"Key\":{\"pk\":{\"S\":\"c\"}},\"UpdateExpression\":\"ADD n :one\","
                          "\"ExpressionAttributeValues\":{\":one\":{\"N\":\"1\"}}}",
                          25, 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i != 8; ++i) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].ok, 25);
    }
    expect_exact(s, "GetItem", "{\"TableName\":\"counter\",\"Key\":{\"pk\":{\"S\":\"c\"}}}", 200,
                 "{\"Item\":{\"pk\":{\"S\":\"c\"},\"n\":{\"N\":\"200\"}}}");
}

static void test_concurrent_conditional_puts(void **state)
{
    store_t *s = S(state);
    pthread_t th[50];
    worker_t w[50];
    char reqs[50][256];
    int ok = 0, failed = 0;
    make_table_as(s, "race", "pk", "S", NULL, NULL, 1);
    for (int i = 0; i != 50; ++i) {
        snprintf(reqs[i], sizeof(reqs[i]),
                 "{\"TableName\":\"race\",\"Item\":{\"pk\":{\"S\":\"x\"},\"who\":{\"N\":\"%d\"}},\"ConditionExpression\":"
                 "\"attribute_not_exists(pk)\"}",
                 i);
        w[i] = (worker_t){s, reqs[i], 1, 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i != 50; ++i) {
        pthread_join(th[i], NULL);
        ok += w[i].ok;
        failed += w[i].failed_condition;
    }
    assert_int_equal(ok, 1);
    assert_int_equal(failed, 49);
    expect(s, "DescribeTable", "{\"TableName\":\"race\"}", 200, "\"ItemCount\":1");
}

/* A callback that holds the writer thread (callbacks run there) until released, so that what is queued meanwhile
 * is taken as one batch. */
typedef struct gate {
    sem_t entered, release;
} gate_t;

static void gate_done(void *data, int status, char *body, size_t len)
{
    gate_t *g = data;
    (void)len;
    assert_int_equal(status, 200);
    free(body);
    sem_post(&g->entered);
    sem_wait(&g->release);
}

static void test_batch_isolation(void **state)
{
    store_t *s = S(state);
    gate_t g;
    result_t r[20];
    char req[256];
    make_table_as(s, "batch", "pk", "N", NULL, NULL, 1);
    expect(s, "PutItem", "{\"TableName\":\"batch\",\"Item\":{\"pk\":{\"N\":\"7\"},\"v\":{\"S\":\"old\"}}}", 200, "{}");
    sem_init(&g.entered, 0, 0);
    sem_init(&g.release, 0, 0);
    const char *first = "{\"TableName\":\"batch\",\"Item\":{\"pk\":{\"N\":\"100\"}}}";
    store_call(s, "PutItem", first, strlen(first), gate_done, &g);
    sem_wait(&g.entered); /* the writer is now held in gate_done */
    for (int i = 0; i != 20; ++i) {
        /* job 7 fails its condition (item 7 exists); the others create new items */
        snprintf(req, sizeof(req),
                 "{\"TableName\":\"batch\",\"Item\":{\"pk\":{\"N\":\"%d\"},\"v\":{\"S\":\"new\"}},\"ConditionExpression\":"
                 "\"attribute_not_exists(pk)\"}",
                 i);
        sem_init(&r[i].sem, 0, 0);
        store_call(s, "PutItem", req, strlen(req), fixture_on_done, &r[i]);
    }
    sem_post(&g.release);
    for (int i = 0; i != 20; ++i) {
        sem_wait(&r[i].sem);
        assert_int_equal(r[i].status, i == 7 ? 400 : 200);
        if (i == 7)
            assert_non_null(strstr(r[i].body, "ConditionalCheckFailedException"));
        free(r[i].body);
        sem_destroy(&r[i].sem);
    }
    expect(s, "GetItem", "{\"TableName\":\"batch\",\"Key\":{\"pk\":{\"N\":\"7\"}}}", 200, "\"v\":{\"S\":\"old\"}");
    expect(s, "GetItem", "{\"TableName\":\"batch\",\"Key\":{\"pk\":{\"N\":\"8\"}}}", 200, "\"v\":{\"S\":\"new\"}");
    expect(s, "DescribeTable", "{\"TableName\":\"batch\"}", 200, "\"ItemCount\":21");
    sem_destroy(&g.entered);
    sem_destroy(&g.release);
}

static void count_done(void *data, int status, char *body, size_t len)
{
    (void)len;
    if (status == 200)
        __atomic_add_fetch((int *)data, 1, __ATOMIC_SEQ_CST);
    free(body);
}

static void test_durability_reopen(void **state)
{
    fixture_t *f = *state;
    char err[256], req[256];
    int acked = 0;
    make_table(f->s, "durable", "pk", "S", "sk", "N");
    make_table_as(f->s, "second", "id", "B", NULL, NULL, 1);
    for (int i = 0; i != 100; ++i) {
        snprintf(req, sizeof(req), "{\"TableName\":\"durable\",\"Item\":{\"pk\":{\"S\":\"p\"},\"sk\":{\"N\":\"%d\"}}}", i);
        store_call(f->s, "PutItem", req, strlen(req), count_done, &acked);
    }
    store_flush(f->s);
    assert_int_equal(__atomic_load_n(&acked, __ATOMIC_SEQ_CST), 100);
    store_close(f->s);
    store_options_t o = {.dir = f->dir};
    assert_int_equal(store_open(&f->s, &o, err, sizeof(err)), 0);
    expect(f->s, "DescribeTable", "{\"TableName\":\"durable\"}", 200, "\"ItemCount\":100");
    expect(f->s, "GetItem", "{\"TableName\":\"durable\",\"Key\":{\"pk\":{\"S\":\"p\"},\"sk\":{\"N\":\"42\"}}}", 200,
           "\"N\":\"42\"");
    expect_exact(f->s, "ListTables", "{}", 200, "{\"TableNames\":[\"durable\",\"second\"]}");
    expect(f->s, "PutItem", "{\"TableName\":\"second\",\"Item\":{\"id\":{\"B\":\"AQ==\"}}}", 200, "{}");
}

/* A table record that does not parse: store_open fails, naming the table (the file is the operator's to look at). */
static void test_damaged_table_record(void **state)
{
    fixture_t *f = *state;
    char err[256] = "";
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta;
    make_table_as(f->s, "fine", "pk", "S", NULL, NULL, 1);
    make_table_as(f->s, "broken", "pk", "S", NULL, NULL, 1);
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
    assert_int_equal(mdb_env_set_mapsize(env, 64 << 20), 0);
    assert_int_equal(mdb_env_open(env, f->dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    assert_int_equal(mdb_put(txn, meta, &(MDB_val){8, "t/broken"}, &(MDB_val){9, "{not json"}, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    store_options_t o = {.dir = f->dir, .map_size = 64 << 20};
    assert_int_equal(store_open(&f->s, &o, err, sizeof(err)), -1);
    assert_null(f->s);
    assert_non_null(strstr(err, f->dir));
    assert_non_null(strstr(err, "table broken: a damaged table record"));
}

static void test_close_drains_queue(void **state)
{
    fixture_t *f = *state;
    char err[256], req[256];
    int acked = 0;
    make_table_as(f->s, "drain", "pk", "N", NULL, NULL, 1);
    for (int i = 0; i != 50; ++i) {
        snprintf(req, sizeof(req), "{\"TableName\":\"drain\",\"Item\":{\"pk\":{\"N\":\"%d\"}}}", i);
        store_call(f->s, "PutItem", req, strlen(req), count_done, &acked);
    }
    store_close(f->s); /* answers everything queued before it returns */
    assert_int_equal(acked, 50);
    store_options_t o = {.dir = f->dir};
    assert_int_equal(store_open(&f->s, &o, err, sizeof(err)), 0);
    expect(f->s, "DescribeTable", "{\"TableName\":\"drain\"}", 200, "\"ItemCount\":50");
}

static void test_update_without_expression(void **state)
{
    store_t *s = S(state);
    make_table(s, "bare", "pk", "B", "sk", "N");
    expect_exact(s, "UpdateItem",
                 "{\"TableName\":\"bare\",\"Key\":{\"pk\":{\"B\":\"AQID\"},\"sk\":{\"N\":\"-1.0\"}},\"ReturnValues\":\"ALL_NEW\"}",
                 200, "{\"Attributes\":{\"pk\":{\"B\":\"AQID\"},\"sk\":{\"N\":\"-1\"}}}");
    expect_exact(s, "GetItem", "{\"TableName\":\"bare\",\"Key\":{\"pk\":{\"B\":\"AQID\"},\"sk\":{\"N\":\"-1\"}}}", 200,
                 "{\"Item\":{\"pk\":{\"B\":\"AQID\"},\"sk\":{\"N\":\"-1\"}}}");
    expect(s, "GetItem", "{\"TableName\":\"bare\",\"Key\":{\"pk\":{\"B\":\"\"},\"sk\":{\"N\":\"1\"}}}", 400,
           "cannot contain an empty binary value. Key: pk");
}

static void test_condition_value_checks(void **state)
{
    store_t *s = S(state);
    make_table_as(s, "chk", "pk", "S", NULL, NULL, 1);
    /* rejected before any item is read, even on a missing item */
    expect(s, "PutItem",
           "{\"TableName\":\"chk\",\"Item\":{\"pk\":{\"S\":\"a\"}},\"ConditionExpression\":\"v BETWEEN :hi AND :lo\","
           "\"ExpressionAttributeValues\":{\":hi\":{\"N\":\"5\"},\":lo\":{\"N\":\"4\"}}}",
           400,
           "Invalid ConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound");
    expect(
        s, "PutItem",
        "{\"TableName\":\"chk\",\"Item\":{\"pk\":{\"S\":\"a\"}},\"ConditionExpression\":\"v = :v\",\"ExpressionAttributeValues\":"
        "{\":v\":{\"N\":\"x\"}}}",
        400,
        "ExpressionAttributeValues contains invalid value: The parameter cannot be converted to a numeric value: x for key :v");
    expect(s, "DescribeTable", "{\"TableName\":\"chk\"}", 200, "\"ItemCount\":0");
}

static void test_create_and_put_in_one_batch(void **state)
{
    store_t *s = S(state);
    gate_t g;
    result_t r[4];
    const char *ops[4] = {"CreateTable", "PutItem", "CreateTable", "PutItem"};
    const char *reqs[4] = {
        "{\"TableName\":\"fresh\",\"KeySchema\":[{\"AttributeName\":\"pk\",\"KeyType\":\"HASH\"}],\"AttributeDefinitions\":"
        "[{\"AttributeName\":\"pk\",\"AttributeType\":\"S\"}],\"BillingMode\":\"PAY_PER_REQUEST\"}",
        "{\"TableName\":\"fresh\",\"Item\":{\"pk\":{\"S\":\"a\"}}}",
        "{\"TableName\":\"fresh\",\"KeySchema\":[{\"AttributeName\":\"pk\",\"KeyType\":\"HASH\"}],\"AttributeDefinitions\":"
        "[{\"AttributeName\":\"pk\",\"AttributeType\":\"S\"}],\"BillingMode\":\"PAY_PER_REQUEST\"}",
        "{\"TableName\":\"fresh\",\"Item\":{\"pk\":{\"S\":\"b\"}}}",
    };
    const int want[4] = {200, 200, 400, 200};
    make_table_as(s, "holder", "pk", "S", NULL, NULL, 1);
    sem_init(&g.entered, 0, 0);
    sem_init(&g.release, 0, 0);
    const char *first = "{\"TableName\":\"holder\",\"Item\":{\"pk\":{\"S\":\"x\"}}}";
    store_call(s, "PutItem", first, strlen(first), gate_done, &g);
    sem_wait(&g.entered);
    for (int i = 0; i != 4; ++i) {
        sem_init(&r[i].sem, 0, 0);
        store_call(s, ops[i], reqs[i], strlen(reqs[i]), fixture_on_done, &r[i]);
    }
    sem_post(&g.release);
    for (int i = 0; i != 4; ++i) {
        sem_wait(&r[i].sem);
        if (r[i].status != want[i])
            fprintf(stderr, "job %d: %d %s\n", i, r[i].status, r[i].body);
        assert_int_equal(r[i].status, want[i]);
        free(r[i].body);
        sem_destroy(&r[i].sem);
    }
    expect(s, "DescribeTable", "{\"TableName\":\"fresh\"}", 200, "\"ItemCount\":2");
    expect(s, "GetItem", "{\"TableName\":\"fresh\",\"Key\":{\"pk\":{\"S\":\"b\"}}}", 200, "\"Item\"");
    sem_destroy(&g.entered);
    sem_destroy(&g.release);
}

static void test_flush_async_writes(void **state)
{
    store_t *s = S(state);
    char req[256];
    int acked = 0;
    make_table_as(s, "async", "pk", "N", NULL, NULL, 1);
    for (int i = 0; i != 300; ++i) {
        snprintf(req, sizeof(req), "{\"TableName\":\"async\",\"Item\":{\"pk\":{\"N\":\"%d\"}}}", i % 150);
        store_call(s, "PutItem", req, strlen(req), count_done, &acked);
    }
    store_flush(s);
    assert_int_equal(__atomic_load_n(&acked, __ATOMIC_SEQ_CST), 300);
    expect(s, "DescribeTable", "{\"TableName\":\"async\"}", 200, "\"ItemCount\":150");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_create_describe),
        T(test_create_pay_per_request),
        T(test_create_exists),
        T(test_create_bad_names),
        T(test_create_bad_schema),
        T(test_create_with_gsi),
        T(test_describe_missing),
        T(test_delete_table),
        T(test_list_tables_paged),
        T(test_list_tables_invalid),
        T(test_put_get_s),
        T(test_put_get_n),
        T(test_put_get_b),
        T(test_put_get_sort_key),
        T(test_get_projection),
        T(test_get_errors),
        T(test_put_errors),
        T(test_item_too_large),
        T(test_put_condition_not_exists),
        T(test_put_condition_values),
        T(test_put_return_all_old),
        T(test_delete_item),
        T(test_update_creates),
        T(test_update_all_new),
        T(test_update_all_old),
        T(test_update_updated_old),
        T(test_update_updated_new),
        T(test_update_remove_and_condition),
        T(test_update_key_attribute),
        T(test_update_runtime_error),
        T(test_item_count),
        T(test_unknown_op_and_bad_body),
        T(test_concurrent_add),
        T(test_concurrent_conditional_puts),
        T(test_batch_isolation),
        T(test_durability_reopen),
        T(test_damaged_table_record),
        T(test_close_drains_queue),
        T(test_update_without_expression),
        T(test_condition_value_checks),
        T(test_create_and_put_in_one_batch),
        T(test_flush_async_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
