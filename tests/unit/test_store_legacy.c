/*
 * Unit tests of store/legacy.c: DynamoDB's legacy parameters (Expected, ConditionalOperator, AttributeUpdates,
 * AttributesToGet, KeyConditions, QueryFilter, ScanFilter) through store_call, over a real LMDB environment in a fresh
 * mkdtemp() directory (each test its own). Requests and expected answers are written with single quotes, which q()
 * turns into double quotes (no test value holds a quote); an expected answer holding "at '" is kept as it is.
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

#define CCF "ConditionalCheckFailedException"
#define ONE "1 validation error detected: "
#define INVALID "One or more parameter values were invalid: "

/* users/e: one attribute of each kind the operators look at. */
static void put_e(store_t *s)
{
    expect(s, "PutItem",
           "{'TableName':'users','Item':{'pk':{'S':'e'},'n':{'N':'5'},'s':{'S':'hello'},'b':{'B':'aGk='},"
           "'ss':{'SS':['a','b']},'l':{'L':[{'N':'1'},{'S':'x'}]},'z':{'N':'0'}}}",
           200, "{}");
}

/* An UpdateItem of users/e setting z under `expected` (an Expected map, single-quoted): true when it was applied, false
 * when its condition failed (any other answer fails the test). */
static int applies_(store_t *s, const char *expected, int line)
{
    char req[2048], *body;
    snprintf(req, sizeof(req), "{'TableName':'users','Key':{'pk':{'S':'e'}},'AttributeUpdates':{'z':{'Value':{'N':'1'}}},%s}",
             expected);
    char *r = q(req);
    int st = call_raw(s, "UpdateItem", r, &body);
    int ok = st == 200 || (st == 400 && strstr(body, CCF) != NULL);
    if (!ok)
        fprintf(stderr, "line %d: %s\n  got %d %s\n", line, r, st, body);
    free(r);
    free(body);
    assert_true(ok);
    return st == 200;
}
#define applies(s, expected) applies_((s), (expected), __LINE__)

/* Expected {attr: {ComparisonOperator: op, AttributeValueList: [avl]}} (avl single-quoted JSON values). */
static int cmp_(store_t *s, const char *attr, const char *op, const char *avl, int line)
{
    char e[1024];
    snprintf(e, sizeof(e), "'Expected':{'%s':{'ComparisonOperator':'%s','AttributeValueList':[%s]}}", attr, op, avl);
    return applies_(s, e, line);
}
#define cmp(s, attr, op, avl) cmp_((s), (attr), (op), (avl), __LINE__)

/* ---- Expected ---- */

static void test_expected_value_and_exists(void **state)
{
    store_t *s = S(state);
    fill(s);
    put_e(s);
    assert_true(applies(s, "'Expected':{'n':{'Value':{'N':'5.0'}}}"));
    assert_false(applies(s, "'Expected':{'n':{'Value':{'N':'6'}}}"));
    assert_false(applies(s, "'Expected':{'n':{'Value':{'S':'5'}}}"));
    assert_false(applies(s, "'Expected':{'q':{'Value':{'N':'5'}}}"));
    assert_true(applies(s, "'Expected':{'n':{'Exists':true,'Value':{'N':'5'}}}"));
    assert_true(applies(s, "'Expected':{'q':{'Exists':false}}"));
    assert_false(applies(s, "'Expected':{'n':{'Exists':false}}"));
    assert_true(applies(s, "'Expected':{}")); /* empty: no condition */
    /* PutItem and DeleteItem take it too */
    expect(s, "PutItem", "{'TableName':'users','Item':{'pk':{'S':'u1'},'v':{'N':'2'}},'Expected':{'name':{'Value':{'S':'Bob'}}}}",
           400, CCF);
    expect(s, "PutItem", "{'TableName':'users','Item':{'pk':{'S':'u1'},'v':{'N':'2'}},'Expected':{'name':{'Value':{'S':'Ann'}}}}",
           200, "{}");
    expect(s, "PutItem", "{'TableName':'users','Item':{'pk':{'S':'new'}},'Expected':{'pk':{'Exists':false}}}", 200, "{}");
    expect(s, "PutItem", "{'TableName':'users','Item':{'pk':{'S':'new'}},'Expected':{'pk':{'Exists':false}}}", 400, CCF);
    expect(s, "DeleteItem", "{'TableName':'users','Key':{'pk':{'S':'u2'}},'Expected':{'age':{'Value':{'N':'41'}}}}", 400, CCF);
    expect(s, "DeleteItem",
           "{'TableName':'users','Key':{'pk':{'S':'u2'}},'Expected':{'age':{'Value':{'N':'42'}}},'ReturnValues':'ALL_OLD'}", 200,
           "'name':{'S':'Bob'}");
    expect_exact(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'u2'}}}", 200, "{}");
}

static void test_expected_operators(void **state)
{
    store_t *s = S(state);
    fill(s);
    put_e(s);
    /* EQ, NE: any type; a value of another type is not equal; NE is true on a missing attribute */
    assert_true(cmp(s, "n", "EQ", "{'N':'5'}"));
    assert_false(cmp(s, "n", "EQ", "{'N':'6'}"));
    assert_false(cmp(s, "n", "EQ", "{'S':'5'}"));
    assert_true(cmp(s, "ss", "EQ", "{'SS':['b','a']}"));
    assert_true(cmp(s, "l", "EQ", "{'L':[{'N':'1'},{'S':'x'}]}"));
    assert_true(cmp(s, "n", "NE", "{'N':'6'}"));
    assert_false(cmp(s, "n", "NE", "{'N':'5'}"));
    assert_true(cmp(s, "n", "NE", "{'S':'5'}"));
    assert_true(cmp(s, "q", "NE", "{'N':'5'}"));
    /* LE LT GE GT: S, N, B; other types compare false */
    assert_true(cmp(s, "n", "LE", "{'N':'5'}"));
    assert_false(cmp(s, "n", "LE", "{'N':'4'}"));
    assert_true(cmp(s, "n", "LT", "{'N':'5.5'}"));
    assert_false(cmp(s, "n", "LT", "{'N':'5'}"));
    assert_true(cmp(s, "s", "GE", "{'S':'hello'}"));
    assert_false(cmp(s, "s", "GE", "{'S':'world'}"));
    assert_true(cmp(s, "b", "GT", "{'B':'aA=='}"));
    assert_false(cmp(s, "b", "GT", "{'B':'aGk='}"));
    assert_false(cmp(s, "n", "GT", "{'S':'1'}"));
    assert_false(cmp(s, "q", "LT", "{'N':'9'}"));
    /* NOT_NULL / NULL: existence */
    assert_true(cmp(s, "n", "NOT_NULL", ""));
    assert_false(cmp(s, "q", "NOT_NULL", ""));
    assert_true(cmp(s, "q", "NULL", ""));
    assert_false(cmp(s, "n", "NULL", ""));
    /* CONTAINS: substring, set member, list element */
    assert_true(cmp(s, "s", "CONTAINS", "{'S':'ell'}"));
    assert_false(cmp(s, "s", "CONTAINS", "{'S':'dog'}"));
    assert_true(cmp(s, "ss", "CONTAINS", "{'S':'a'}"));
    assert_true(cmp(s, "l", "CONTAINS", "{'N':'1'}"));
    assert_true(cmp(s, "b", "CONTAINS", "{'B':'aQ=='}"));
    assert_false(cmp(s, "q", "CONTAINS", "{'S':'a'}"));
    /* NOT_CONTAINS: false on a missing attribute */
    assert_true(cmp(s, "s", "NOT_CONTAINS", "{'S':'dog'}"));
    assert_false(cmp(s, "s", "NOT_CONTAINS", "{'S':'ell'}"));
    assert_false(cmp(s, "ss", "NOT_CONTAINS", "{'S':'b'}"));
    assert_true(cmp(s, "l", "NOT_CONTAINS", "{'N':'2'}"));
    assert_true(cmp(s, "s", "NOT_CONTAINS", "{'N':'1'}"));
    assert_false(cmp(s, "q", "NOT_CONTAINS", "{'S':'a'}"));
    /* BEGINS_WITH: S, B */
    assert_true(cmp(s, "s", "BEGINS_WITH", "{'S':'he'}"));
    assert_false(cmp(s, "s", "BEGINS_WITH", "{'S':'lo'}"));
    assert_true(cmp(s, "b", "BEGINS_WITH", "{'B':'aA=='}"));
    assert_false(cmp(s, "n", "BEGINS_WITH", "{'S':'5'}"));
    /* IN: the attribute equals one of the values (a set attribute is not "in" its members) */
    assert_true(cmp(s, "n", "IN", "{'N':'4'},{'N':'5'},{'N':'6'}"));
    assert_false(cmp(s, "n", "IN", "{'N':'1'},{'N':'2'}"));
    assert_false(cmp(s, "ss", "IN", "{'S':'a'}"));
    assert_false(cmp(s, "q", "IN", "{'N':'5'}"));
    /* BETWEEN: inclusive */
    assert_true(cmp(s, "n", "BETWEEN", "{'N':'1'},{'N':'5'}"));
    assert_true(cmp(s, "n", "BETWEEN", "{'N':'5'},{'N':'9'}"));
    assert_false(cmp(s, "n", "BETWEEN", "{'N':'6'},{'N':'9'}"));
    assert_false(cmp(s, "q", "BETWEEN", "{'N':'0'},{'N':'100'}"));
    assert_true(cmp(s, "s", "BETWEEN", "{'S':'a'},{'S':'z'}"));
    /* Value with a ComparisonOperator is its one value */
    assert_true(applies(s, "'Expected':{'n':{'ComparisonOperator':'GT','Value':{'N':'4'}}}"));
    assert_false(applies(s, "'Expected':{'n':{'ComparisonOperator':'GT','Value':{'N':'5'}}}"));
}

static void test_expected_conditional_operator(void **state)
{
    store_t *s = S(state);
    fill(s);
    put_e(s);
    /* AND (the default): all of them */
    assert_true(applies(s,
                        "'Expected':{'n':{'Value':{'N':'5'}},'s':{'ComparisonOperator':'EQ','AttributeValueList':[{'S':'hello'}]},"
                        "'q':{'Exists':false}}"));
    assert_true(applies(s, "'Expected':{'n':{'Value':{'N':'5'}},'q':{'Exists':false}},'ConditionalOperator':'AND'"));
    assert_false(applies(s, "'Expected':{'n':{'Value':{'N':'5'}},'s':{'Value':{'S':'x'}}},'ConditionalOperator':'AND'"));
    /* OR: one of them */
    assert_true(applies(s, "'Expected':{'n':{'Value':{'N':'9'}},'s':{'Value':{'S':'hello'}}},'ConditionalOperator':'OR'"));
    assert_false(applies(s, "'Expected':{'n':{'Value':{'N':'9'}},'s':{'Value':{'S':'x'}}},'ConditionalOperator':'OR'"));
    /* NOT_CONTAINS (two conditions in one) inside OR and AND */
    assert_true(applies(s, "'Expected':{'q':{'ComparisonOperator':'NOT_CONTAINS','AttributeValueList':[{'S':'a'}]},"
                           "'n':{'Value':{'N':'5'}}},'ConditionalOperator':'OR'"));
    assert_false(applies(s, "'Expected':{'q':{'ComparisonOperator':'NOT_CONTAINS','AttributeValueList':[{'S':'a'}]},"
                            "'n':{'Value':{'N':'9'}}},'ConditionalOperator':'OR'"));
    assert_true(applies(s, "'Expected':{'s':{'ComparisonOperator':'NOT_CONTAINS','AttributeValueList':[{'S':'z'}]},"
                           "'n':{'ComparisonOperator':'NE','AttributeValueList':[{'N':'4'}]}}"));
    /* ConditionalOperator needs two conditions */
    expect_exact(s, "PutItem", "{'TableName':'users','Item':{'pk':{'S':'x'}},'ConditionalOperator':'AND'}", 400,
                 "{'__type':'com.amazon.coral.validate#ValidationException','message':'ConditionalOperator cannot be used "
                 "without Filter or Expected'}");
    expect(s, "UpdateItem",
           "{'TableName':'users','Key':{'pk':{'S':'x'}},'AttributeUpdates':{'a':{'Value':{'S':'v'}}},'Expected':{},"
           "'ConditionalOperator':'OR'}",
           400, "ConditionalOperator cannot be used without Filter or Expected");
    expect(s, "DeleteItem",
           "{'TableName':'users','Key':{'pk':{'S':'x'}},'Expected':{'a':{'Value':{'S':'v'}}},'ConditionalOperator':'OR'}", 400,
           "ConditionalOperator can only be used when Filter or Expected has two or more elements");
    expect(s, "PutItem",
           "{'TableName':'users','Item':{'pk':{'S':'x'}},'Expected':{'a':{'Exists':false},'b':{'Exists':false}},"
           "'ConditionalOperator':'XOR'}",
           400,
           "1 validation error detected: Value 'XOR' at 'conditionalOperator' failed to satisfy constraint: Member must satisfy "
           "enum value set: [OR, AND]");
}

/* The message of a ValidationException of UpdateItem users/e under `expected`. */
#define expect_upd_error(s, expected, message)                                                                                     \
    expect((s), "UpdateItem",                                                                                                      \
           "{'TableName':'users','Key':{'pk':{'S':'e'}},'AttributeUpdates':{'z':{'Value':{'N':'1'}}}," expected "}", 400,          \
           "'message':'" message "'")

static void test_expected_errors(void **state)
{
    store_t *s = S(state);
    fill(s);
    put_e(s);
    /* the structure of an entry, in DynamoDB's order of checks */
    expect_upd_error(s, "'Expected':{'a':{'Exists':true}}",
                     ONE INVALID "Value must be provided when Exists is true for Attribute: a");
    expect_upd_error(s, "'Expected':{'a':{}}", ONE INVALID "Value must be provided when Exists is null for Attribute: a");
    expect_upd_error(s, "'Expected':{'a':{'Exists':false,'Value':{'S':'x'}}}",
                     ONE INVALID "Value cannot be used when Exists is false for Attribute: a");
    expect_upd_error(s, "'Expected':{'a':{'Exists':true,'ComparisonOperator':'EQ','AttributeValueList':[{'S':'x'}]}}",
                     ONE INVALID "Exists and ComparisonOperator cannot be used together for Attribute: a");
    expect_upd_error(s, "'Expected':{'a':{'Value':{'S':'x'},'ComparisonOperator':'EQ','AttributeValueList':[{'S':'x'}]}}",
                     ONE INVALID "Value and AttributeValueList cannot be used together for Attribute: a");
    expect_upd_error(s, "'Expected':{'a':{'AttributeValueList':[{'S':'x'}]}}",
                     ONE INVALID "AttributeValueList can only be used with a ComparisonOperator for Attribute: a");
    expect_upd_error(s, "'Expected':{'a':{'ComparisonOperator':'EQ'}}",
                     ONE INVALID "Value or AttributeValueList must be used with ComparisonOperator: EQ for Attribute: a");
    /* the number of values, for every operator */
    static const struct {
        const char *op, *avl;
    } counts[] = {
        {"EQ", ""},
        {"NE", "{'N':'1'},{'N':'2'}"},
        {"LE", ""},
        {"LT", "{'N':'1'},{'N':'2'}"},
        {"GE", ""},
        {"GT", "{'N':'1'},{'N':'2'}"},
        {"NOT_NULL", "{'N':'1'}"},
        {"NULL", "{'N':'1'}"},
        {"CONTAINS", ""},
        {"NOT_CONTAINS", "{'N':'1'},{'N':'2'}"},
        {"BEGINS_WITH", "{'S':'a'},{'S':'b'}"},
        {"IN", ""},
        {"BETWEEN", "{'N':'1'}"},
        {"BETWEEN", "{'N':'1'},{'N':'2'},{'N':'3'}"},
    };
    for (size_t i = 0; i != sizeof(counts) / sizeof(counts[0]); ++i) {
        char req[1024], want[256];
        snprintf(
            req, sizeof(req),
            "{'TableName':'users','Key':{'pk':{'S':'e'}},'Expected':{'n':{'ComparisonOperator':'%s','AttributeValueList':[%s]}}}",
            counts[i].op, counts[i].avl);
        snprintf(want, sizeof(want), "'message':'" ONE INVALID "Invalid number of argument(s) for the %s ComparisonOperator'",
                 counts[i].op);
        expect(s, "UpdateItem", req, 400, want);
    }
    /* the values' types */
    expect_upd_error(s, "'Expected':{'n':{'ComparisonOperator':'LT','AttributeValueList':[{'SS':['a']}]}}",
                     ONE INVALID "ComparisonOperator LT is not valid for SS AttributeValue type");
    expect_upd_error(s, "'Expected':{'n':{'ComparisonOperator':'BEGINS_WITH','AttributeValueList':[{'N':'3'}]}}",
                     ONE INVALID "ComparisonOperator BEGINS_WITH is not valid for N AttributeValue type");
    expect_upd_error(s, "'Expected':{'n':{'ComparisonOperator':'CONTAINS','AttributeValueList':[{'L':[]}]}}",
                     ONE INVALID "ComparisonOperator CONTAINS is not valid for L AttributeValue type");
    expect_upd_error(s, "'Expected':{'n':{'ComparisonOperator':'IN','AttributeValueList':[{'N':'3'},{'S':'dog'}]}}",
                     ONE INVALID "AttributeValues inside AttributeValueList must be of same type");
    expect_upd_error(s, "'Expected':{'n':{'ComparisonOperator':'BETWEEN','AttributeValueList':[{'N':'4'},{'S':'dog'}]}}",
                     ONE INVALID "AttributeValues inside AttributeValueList must be of same type");
    expect_upd_error(s, "'Expected':{'n':{'ComparisonOperator':'BETWEEN','AttributeValueList':[{'N':'4'},{'N':'3'}]}}",
                     ONE "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound");
    /* the values themselves, and the operator's name */
    expect_upd_error(s, "'Expected':{'n':{'Value':{'SS':[]}}}", INVALID "An string set  may not be empty");
    expect_upd_error(s, "'Expected':{'n':{'ComparisonOperator':'EQ','AttributeValueList':[{'N':'x'}]}}",
                     "The parameter cannot be converted to a numeric value: x");
    expect(s, "UpdateItem", "{'TableName':'users','Key':{'pk':{'S':'e'}},'Expected':{'n':{'ComparisonOperator':'SAME'}}}", 400,
           "1 validation error detected: Value 'SAME' at 'expected.n.member.comparisonOperator' failed to satisfy constraint: "
           "Member must satisfy enum value set: [IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, "
           "GE, CONTAINS]");
    /* nothing changed */
    expect(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'e'}}}", 200, "'z':{'N':'0'}");
}

static void test_shapes(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect(s, "PutItem", "{'TableName':'users','Item':{'pk':{'S':'x'}},'Expected':[]}", 400,
           "SerializationException','message':'Start of list found where not expected'");
    expect(s, "PutItem",
           "{'TableName':'users','Item':{'pk':{'S':'x'}},'Expected':{'a':{'ComparisonOperator':'EQ','AttributeValueList':{}}}}",
           400, "SerializationException','message':'Start of structure or map found where not expected.'");
    expect(s, "PutItem", "{'TableName':'users','Item':{'pk':{'S':'x'}},'Expected':{'a':{'Exists':'maybe'}}}", 400,
           "SerializationException");
    expect(s, "PutItem", "{'TableName':'users','Item':{'pk':{'S':'x'}},'Expected':{'a':{'Value':{'S':5}}}}", 400,
           "SerializationException");
    expect(s, "PutItem", "{'TableName':'users','Item':{'pk':{'S':'x'}},'ConditionalOperator':5}", 400, "SerializationException");
    expect(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'x'}},'AttributesToGet':'name'}", 400,
           "SerializationException','message':'Expected list or null'");
    expect(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'x'}},'AttributesToGet':['name',5]}", 400,
           "SerializationException");
    expect(s, "UpdateItem", "{'TableName':'users','Key':{'pk':{'S':'x'}},'AttributeUpdates':{'a':{'Action':true}}}", 400,
           "SerializationException");
    expect(s, "Scan", "{'TableName':'users','ScanFilter':{'a':{'ComparisonOperator':'EQ','AttributeValueList':[{'S':5}]}}}", 400,
           "SerializationException");
    /* attribute names are not empty */
    expect(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'u1'}},'AttributesToGet':['name','']}", 400,
           "'message':'Empty attribute name'");
    expect(s, "UpdateItem", "{'TableName':'users','Key':{'pk':{'S':'u1'}},'AttributeUpdates':{'':{'Value':{'S':'x'}}}}", 400,
           "'message':'Empty attribute name'");
    expect(s, "DeleteItem", "{'TableName':'users','Key':{'pk':{'S':'u1'}},'Expected':{'':{'Exists':false}}}", 400,
           "'message':'Empty attribute name'");
    expect(s, "Scan", "{'TableName':'users','ScanFilter':{'':{'ComparisonOperator':'NULL'}}}", 400,
           "'message':'Empty attribute name'");
    expect(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'u1'}}}", 200, "'name':{'S':'Ann'}");
    /* a bad TableName is answered first, as DynamoDB does */
    expect(s, "PutItem", "{'TableName':'ab','Item':{'pk':{'S':'x'}},'Expected':{'a':{}},'ConditionExpression':'a = b'}", 400,
           "at 'tableName' failed to satisfy constraint: Member must have length greater than or equal to 3");
}

/* ---- mixing ---- */

static void test_mixing(void **state)
{
    store_t *s = S(state);
    fill(s);
#define MIX "Can not use both expression and non-expression parameters in the same request: "
    expect_exact(s, "GetItem",
                 "{'TableName':'users','Key':{'pk':{'S':'u1'}},'AttributesToGet':['name'],'ProjectionExpression':'age'}", 400,
                 "{'__type':'com.amazon.coral.validate#ValidationException','message':'" MIX
                 "Non-expression parameters: {AttributesToGet} Expression parameters: {ProjectionExpression}'}");
    expect(s, "PutItem",
           "{'TableName':'users','Item':{'pk':{'S':'x'}},'Expected':{'pk':{'Exists':false}},'ConditionalOperator':'AND',"
           "'ConditionExpression':'attribute_not_exists(pk)'}",
           400, MIX "Non-expression parameters: {Expected, ConditionalOperator} Expression parameters: {ConditionExpression}");
    expect(s, "DeleteItem",
           "{'TableName':'users','Key':{'pk':{'S':'x'}},'ConditionalOperator':'AND','ConditionExpression':'attribute_exists(pk)'}",
           400, MIX "Non-expression parameters: {ConditionalOperator} Expression parameters: {ConditionExpression}");
    expect(s, "UpdateItem",
           "{'TableName':'users','Key':{'pk':{'S':'x'}},'AttributeUpdates':{'a':{'Value':{'S':'v'}}},'Expected':{'a':{'Exists':"
           "false}},"
           "'ConditionalOperator':'AND','UpdateExpression':'SET a = :v','ConditionExpression':'attribute_exists(pk)',"
           "'ExpressionAttributeValues':{':v':{'S':'x'}}}",
           400,
           MIX "Non-expression parameters: {AttributeUpdates, Expected, ConditionalOperator} Expression parameters: "
               "{UpdateExpression, ConditionExpression}");
    expect(
        s, "Scan",
        "{'TableName':'users','AttributesToGet':['a'],'ScanFilter':{'a':{'ComparisonOperator':'NULL'}},'ConditionalOperator':'AND',"
        "'FilterExpression':'a = :v','ProjectionExpression':'b','ExpressionAttributeValues':{':v':{'S':'x'}}}",
        400,
        MIX "Non-expression parameters: {AttributesToGet, ScanFilter, ConditionalOperator} Expression parameters: "
            "{ProjectionExpression, FilterExpression}");
    expect(
        s, "Query",
        "{'TableName':'events','KeyConditions':{'id':{'ComparisonOperator':'EQ','AttributeValueList':[{'N':'1'}]}},"
        "'QueryFilter':{'what':{'ComparisonOperator':'NULL'}},'ConditionalOperator':'AND','KeyConditionExpression':'id = :i',"
        "'FilterExpression':'what = :w','ProjectionExpression':'at','ExpressionAttributeValues':{':i':{'N':'1'},':w':{'S':'x'}}}",
        400,
        MIX "Non-expression parameters: {QueryFilter, ConditionalOperator, KeyConditions} Expression parameters: "
            "{ProjectionExpression, FilterExpression, KeyConditionExpression}");
    expect(s, "BatchGetItem",
           "{'RequestItems':{'users':{'Keys':[{'pk':{'S':'u1'}}],'AttributesToGet':['name'],'ProjectionExpression':'age'}}}", 400,
           MIX "Non-expression parameters: {AttributesToGet} Expression parameters: {ProjectionExpression}");
    /* the mixing error comes before ConditionalOperator's and the placeholders' */
    expect(
        s, "Scan",
        "{'TableName':'users','ConditionalOperator':'AND','FilterExpression':'a = :v','ExpressionAttributeValues':{':v':{'S':'x'},"
        "':unused':{'S':'y'}}}",
        400, MIX "Non-expression parameters: {ConditionalOperator} Expression parameters: {FilterExpression}");
    /* KeyConditions goes with FilterExpression and ProjectionExpression; its placeholders merge with the request's own */
    expect(s, "Query",
           "{'TableName':'events','KeyConditions':{'id':{'ComparisonOperator':'EQ','AttributeValueList':[{'N':'1'}]}},"
           "'FilterExpression':'#l0 = "
           ":l0','ExpressionAttributeNames':{'#l0':'what'},'ExpressionAttributeValues':{':l0':{'S':'logout'}}}",
           200, "'Count':1,'ScannedCount':2");
    expect_exact(s, "Query",
                 "{'TableName':'events','KeyConditions':{'id':{'ComparisonOperator':'EQ','AttributeValueList':[{'N':'2'}]}},"
                 "'ProjectionExpression':'what'}",
                 200, "{'Count':1,'ScannedCount':1,'Items':[{'what':{'S':'login'}}]}");
    /* placeholders without expressions: the operation's words */
    expect(s, "PutItem",
           "{'TableName':'users','Item':{'pk':{'S':'x'}},'Expected':{'a':{'Exists':false}},'ExpressionAttributeNames':{'#a':'a'}}",
           400, "ExpressionAttributeNames can only be specified when using expressions");
    expect(s, "Scan",
           "{'TableName':'users','ScanFilter':{'a':{'ComparisonOperator':'NULL'}},'ExpressionAttributeValues':{':a':{'S':'a'}}}",
           400, "ExpressionAttributeValues can only be specified when using expressions");
    expect(s, "GetItem",
           "{'TableName':'users','Key':{'pk':{'S':'u1'}},'AttributesToGet':['name'],'ExpressionAttributeNames':{'#a':'a'}}", 400,
           "ExpressionAttributeNames can only be specified when using expressions");
}

/* ---- AttributeUpdates ---- */

static void test_attribute_updates(void **state)
{
    store_t *s = S(state);
    fill(s);
    /* PUT (the default), ADD to a number, a set and a list, DELETE an attribute and set members, on one item */
    expect(s, "PutItem",
           "{'TableName':'users','Item':{'pk':{'S':'k'},'n':{'N':'1'},'ss':{'SS':['a','b','c']},'l':{'L':[{'N':'1'}]},'gone':{'S':'"
           "x'}}}",
           200, "{}");
    expect_exact(s, "UpdateItem",
                 "{'TableName':'users','Key':{'pk':{'S':'k'}},'ReturnValues':'ALL_NEW','AttributeUpdates':{"
                 "'p':{'Value':{'S':'put'}},'q':{'Action':'PUT','Value':{'BOOL':true}},'n':{'Action':'ADD','Value':{'N':'2.5'}},"
                 "'ss':{'Action':'ADD','Value':{'SS':['d']}},'l':{'Action':'ADD','Value':{'L':[{'S':'x'}]}},"
                 "'gone':{'Action':'DELETE'},'absent':{'Action':'DELETE'}}}",
                 200,
                 "{'Attributes':{'pk':{'S':'k'},'n':{'N':'3.5'},'ss':{'SS':['a','b','c','d']},'l':{'L':[{'N':'1'},{'S':'x'}]},"
                 "'p':{'S':'put'},'q':{'BOOL':true}}}");
    expect_exact(s, "UpdateItem",
                 "{'TableName':'users','Key':{'pk':{'S':'k'}},'ReturnValues':'UPDATED_NEW','AttributeUpdates':{"
                 "'ss':{'Action':'DELETE','Value':{'SS':['a','c','zz']}},'m':{'Action':'ADD','Value':{'N':'-1'}},"
                 "'nl':{'Action':'ADD','Value':{'L':[{'N':'7'}]}},'ns':{'Action':'ADD','Value':{'NS':['1','2']}}}}",
                 200, "{'Attributes':{'nl':{'L':[{'N':'7'}]},'m':{'N':'-1'},'ns':{'NS':['1','2']},'ss':{'SS':['b','d']}}}");
    /* a set emptied by DELETE goes */
    expect(s, "UpdateItem",
           "{'TableName':'users','Key':{'pk':{'S':'k'}},'AttributeUpdates':{'ss':{'Action':'DELETE','Value':{'SS':['b','d']}}}}",
           200, "{}");
    expect(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'k'}},'AttributesToGet':['ss','n']}", 200,
           "{'Item':{'n':{'N':'3.5'}}}");
    /* ADD on a missing item makes it; an empty AttributeUpdates makes the key alone */
    expect(s, "UpdateItem",
           "{'TableName':'users','Key':{'pk':{'S':'counter'}},'AttributeUpdates':{'hits':{'Action':'ADD','Value':{'N':'1'}}}}", 200,
           "{}");
    expect(s, "UpdateItem",
           "{'TableName':'users','Key':{'pk':{'S':'counter'}},'AttributeUpdates':{'hits':{'Action':'ADD','Value':{'N':'1'}}}}", 200,
           "{}");
    expect_exact(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'counter'}}}", 200,
                 "{'Item':{'pk':{'S':'counter'},'hits':{'N':'2'}}}");
    expect(s, "UpdateItem", "{'TableName':'users','Key':{'pk':{'S':'bare'}},'AttributeUpdates':{}}", 200, "{}");
    expect_exact(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'bare'}}}", 200, "{'Item':{'pk':{'S':'bare'}}}");
    /* with Expected, atomically */
    expect(s, "UpdateItem",
           "{'TableName':'users','Key':{'pk':{'S':'counter'}},'AttributeUpdates':{'hits':{'Action':'ADD','Value':{'N':'1'}}},"
           "'Expected':{'hits':{'ComparisonOperator':'LT','AttributeValueList':[{'N':'2'}]}}}",
           400, CCF);
    /* names are attribute names, never paths */
    expect(
        s, "UpdateItem",
        "{'TableName':'users','Key':{'pk':{'S':'k'}},'AttributeUpdates':{'a.b':{'Value':{'S':'dot'}},'c[0]':{'Value':{'N':'1'}}}}",
        200, "{}");
    expect(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'k'}},'AttributesToGet':['a.b','c[0]']}", 200,
           "{'Item':{'a.b':{'S':'dot'},'c[0]':{'N':'1'}}}");
    /* errors */
    expect(s, "UpdateItem", "{'TableName':'users','Key':{'pk':{'S':'k'}},'AttributeUpdates':{'a':{'Action':'ADD'}}}", 400,
           ONE INVALID "Only DELETE action is allowed when no attribute value is specified");
    expect(s, "UpdateItem", "{'TableName':'users','Key':{'pk':{'S':'k'}},'AttributeUpdates':{'a':{}}}", 400,
           ONE INVALID "Only DELETE action is allowed when no attribute value is specified");
    expect(s, "UpdateItem",
           "{'TableName':'users','Key':{'pk':{'S':'k'}},'AttributeUpdates':{'a':{'Action':'DELETE','Value':{'S':'x'}}}}", 400,
           ONE INVALID "DELETE action with value is not supported for the type S");
    expect(s, "UpdateItem",
           "{'TableName':'users','Key':{'pk':{'S':'k'}},'AttributeUpdates':{'a':{'Action':'ADD','Value':{'B':'aGk='}}}}", 400,
           ONE INVALID "ADD action is not supported for the type B");
    expect(
        s, "UpdateItem", "{'TableName':'users','Key':{'pk':{'S':'k'}},'AttributeUpdates':{'a':{'Action':'SET','Value':{'S':'x'}}}}",
        400,
        "1 validation error detected: Value 'SET' at 'attributeUpdates.a.member.action' failed to satisfy constraint: Member must "
        "satisfy enum value set: [ADD, PUT, DELETE]");
    expect(s, "UpdateItem", "{'TableName':'users','Key':{'pk':{'S':'k'}},'AttributeUpdates':{'pk':{'Value':{'S':'x'}}}}", 400,
           INVALID "Cannot update attribute pk. This attribute is part of the key");
    expect(s, "UpdateItem",
           "{'TableName':'users','Key':{'pk':{'S':'k'}},'AttributeUpdates':{'n':{'Action':'ADD','Value':{'SS':['x']}}}}", 400,
           "An operand in the update expression has an incorrect data type");
}

/* ---- AttributesToGet ---- */

static void test_attributes_to_get(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect_exact(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'u1'}},'AttributesToGet':['name','missing']}", 200,
                 "{'Item':{'name':{'S':'Ann'}}}");
    expect_exact(s, "Scan", "{'TableName':'users','AttributesToGet':['age'],'Select':'SPECIFIC_ATTRIBUTES'}", 200,
                 "{'Count':3,'ScannedCount':3,'Items':[{'age':{'N':'31'}},{'age':{'N':'42'}},{}]}");
    expect_exact(s, "BatchGetItem",
                 "{'RequestItems':{'users':{'Keys':[{'pk':{'S':'u2'}}],'AttributesToGet':['name']},"
                 "'events':{'Keys':[{'id':{'N':'1'},'at':{'S':'a'}}]}}}",
                 200,
                 "{'Responses':{'users':[{'name':{'S':'Bob'}}],'events':[{'id':{'N':'1'},'at':{'S':'a'},'what':{'S':'login'}}]},"
                 "'UnprocessedKeys':{}}");
    /* errors */
    expect(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'u1'}},'AttributesToGet':['name','age','name']}", 400,
           "'message':'" INVALID "Duplicate value in attribute name: name'");
    expect(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'u1'}},'AttributesToGet':[]}", 400,
           "1 validation error detected: Value '[]' at 'attributesToGet' failed to satisfy constraint: Member must have length "
           "greater than or equal to 1");
    expect(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'u1'}},'AttributesToGet':['a',null]}", 400,
           "Value null at 'attributesToGet.2.member' failed to satisfy constraint: Member must not be null");
    expect(s, "BatchGetItem", "{'RequestItems':{'users':{'Keys':[{'pk':{'S':'u2'}}],'AttributesToGet':[]}}}", 400,
           "Value '[]' at 'requestItems.users.member.attributesToGet' failed to satisfy constraint");
    expect(s, "Query",
           "{'TableName':'events','KeyConditions':{'id':{'ComparisonOperator':'EQ','AttributeValueList':[{'N':'1'}]}},"
           "'AttributesToGet':['what'],'Select':'ALL_ATTRIBUTES'}",
           400, "'message':'" ONE "Cannot specify the AttributesToGet when choosing to get ALL_ATTRIBUTES'");
    expect(s, "Scan", "{'TableName':'users','AttributesToGet':['age'],'Select':'COUNT'}", 400,
           "'message':'Cannot specify the AttributesToGet when choosing to get only the Count'");
    /* members of other operations are ignored, as DynamoDB ignores unknown members */
    expect(s, "PutItem", "{'TableName':'users','Item':{'pk':{'S':'x'}},'AttributesToGet':['a'],'KeyConditions':{}}", 200, "{}");
    expect(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'x'}},'Expected':{'a':{'Value':{'S':'b'}}}}", 200,
           "{'Item':{'pk':{'S':'x'}}}");
}

/* ---- KeyConditions and filters ---- */

static void test_key_conditions(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect(s, "PutItem", "{'TableName':'events','Item':{'id':{'N':'1'},'at':{'S':'ab'},'what':{'S':'x'}}}", 200, "{}");
#define KC(id) "'id':{'ComparisonOperator':'EQ','AttributeValueList':[{'N':'" id "'}]}"
    expect(s, "Query", "{'TableName':'events','KeyConditions':{" KC("1") "}}", 200, "'Count':3,'ScannedCount':3");
    expect(s, "Query",
           "{'TableName':'events','KeyConditions':{" KC(
               "1") ",'at':{'ComparisonOperator':'BEGINS_WITH','AttributeValueList':[{'S':'a'}]}}}",
           200, "'Count':2,'ScannedCount':2");
    expect(
        s, "Query",
        "{'TableName':'events','KeyConditions':{" KC("1") ",'at':{'ComparisonOperator':'GT','AttributeValueList':[{'S':'ab'}]}}}",
        200, "'Items':[{'id':{'N':'1'},'at':{'S':'b'},'what':{'S':'logout'}}]");
    expect(s, "Query",
           "{'TableName':'events','KeyConditions':{'at':{'ComparisonOperator':'BETWEEN','AttributeValueList':[{'S':'a'},{'S':'ab'}]"
           "}," KC("1") "},'ScanIndexForward':false,'AttributesToGet':['at']}",
           200, "'Items':[{'at':{'S':'ab'}},{'at':{'S':'a'}}]");
    expect(s, "Query",
           "{'TableName':'events','KeyConditions':{" KC("1") ",'at':{'ComparisonOperator':'LE','AttributeValueList':[{'S':'a'}]}}}",
           200, "'Count':1");
    /* with QueryFilter and ConditionalOperator */
    expect(s, "Query",
           "{'TableName':'events','KeyConditions':{" KC(
               "1") "},'QueryFilter':{'what':{'ComparisonOperator':'EQ','AttributeValueList':"
                    "[{'S':'login'}]},'what ':{'ComparisonOperator':'NULL'}},'ConditionalOperator':'OR'}",
           200, "'Count':3,'ScannedCount':3");
    expect(s, "Query",
           "{'TableName':'events','KeyConditions':{" KC("1") "},'QueryFilter':{'what':{'ComparisonOperator':'BEGINS_WITH',"
                                                             "'AttributeValueList':[{'S':'log'}]}}}",
           200, "'Count':2,'ScannedCount':3");
    /* errors */
    expect(s, "Query", "{'TableName':'events','KeyConditions':{'id':{'ComparisonOperator':'NE','AttributeValueList':[{'N':'1'}]}}}",
           400, "'message':'" ONE "Attempted conditional constraint is not an indexable operation'");
    expect(s, "Query",
           "{'TableName':'events','KeyConditions':{" KC("1") ",'at':{'ComparisonOperator':'EQ','AttributeValueList':[{'S':'a'}]},"
                                                             "'x':{'ComparisonOperator':'EQ','AttributeValueList':[{'S':'a'}]}}}",
           400, "'message':'" ONE "Conditions can be of length 1 or 2 only'");
    expect(s, "Query", "{'TableName':'events','KeyConditions':{}}", 400, "Conditions can be of length 1 or 2 only");
    expect(s, "Query", "{'TableName':'events','KeyConditions':{'at':{'ComparisonOperator':'EQ','AttributeValueList':[{'S':'a'}]}}}",
           400, "Query condition missed key schema element: id");
    expect(s, "Query", "{'TableName':'events','KeyConditions':{'id':{'ComparisonOperator':'EQ','AttributeValueList':[]}}}", 400,
           ONE INVALID "Invalid number of argument(s) for the EQ ComparisonOperator");
    expect(s, "Query", "{'TableName':'events','KeyConditions':{'id':{'AttributeValueList':[{'N':'1'}]}}}", 400,
           "Value null at 'keyConditions.id.member.comparisonOperator' failed to satisfy constraint: Member must not be null");
    expect(s, "Query", "{'TableName':'events','QueryFilter':{'what':{'ComparisonOperator':'NULL'}}}", 400,
           "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.");
    expect(s, "Query", "{'TableName':'events','KeyConditions':{" KC("1") "},'ConditionalOperator':'AND'}", 400,
           "ConditionalOperator cannot be used without Filter or Expected");
}

static void test_scan_filter(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect(s, "Scan", "{'TableName':'users','ScanFilter':{'age':{'ComparisonOperator':'GT','AttributeValueList':[{'N':'35'}]}}}",
           200, "'Count':1,'ScannedCount':3,'Items':[{'pk':{'S':'u2'}");
    expect(s, "Scan", "{'TableName':'users','ScanFilter':{'age':{'ComparisonOperator':'NULL'}}}", 200,
           "'Count':1,'ScannedCount':3,'Items':[{'pk':{'S':'u3'}");
    expect(s, "Scan",
           "{'TableName':'users','ScanFilter':{'age':{'ComparisonOperator':'NOT_NULL'},'name':{'ComparisonOperator':'BEGINS_WITH',"
           "'AttributeValueList':[{'S':'B'}]}}}",
           200, "'Count':1,");
    expect(s, "Scan",
           "{'TableName':'users','ScanFilter':{'age':{'ComparisonOperator':'LT','AttributeValueList':[{'N':'35'}]},'name':{"
           "'ComparisonOperator':'IN','AttributeValueList':[{'S':'Cy'},{'S':'Bob'}]}},'ConditionalOperator':'OR','Select':'COUNT'}",
           200, "{'Count':3,'ScannedCount':3}");
    expect(s, "Scan",
           "{'TableName':'users','ScanFilter':{'name':{'ComparisonOperator':'NOT_CONTAINS','AttributeValueList':[{'S':'o'}]},"
           "'nick':{'ComparisonOperator':'NOT_CONTAINS','AttributeValueList':[{'S':'o'}]}},'ConditionalOperator':'OR',"
           "'AttributesToGet':['name']}",
           200, "{'Count':2,'ScannedCount':3,'Items':[{'name':{'S':'Ann'}},{'name':{'S':'Cy'}}]}");
    /* errors: no envelope for Scan */
    expect(s, "Scan", "{'TableName':'users','ScanFilter':{'age':{'ComparisonOperator':'GT'}}}", 400,
           "'message':'" INVALID "Invalid number of argument(s) for the GT ComparisonOperator'");
    expect(s, "Scan", "{'TableName':'users','ScanFilter':{'age':{}}}", 400,
           "Value null at 'scanFilter.age.member.comparisonOperator' failed to satisfy constraint: Member must not be null");
    expect(s, "Scan",
           "{'TableName':'users','ScanFilter':{'age':{'ComparisonOperator':'GT','AttributeValueList':[{'N':'1'}]}},"
           "'ConditionalOperator':'OR'}",
           400, "ConditionalOperator can only be used when Filter or Expected has two or more elements");
    expect(s, "Scan", "{'TableName':'users','ConditionalOperator':'OR'}", 400,
           "ConditionalOperator cannot be used without Filter or Expected");
}

/* Requests without legacy members are left alone (an expression request still answers as before). */
static void test_untouched(void **state)
{
    store_t *s = S(state);
    fill(s);
    expect_exact(s, "GetItem", "{'TableName':'users','Key':{'pk':{'S':'u1'}},'ProjectionExpression':'age'}", 200,
                 "{'Item':{'age':{'N':'31'}}}");
    expect(s, "PutItem", "{'TableName':'users','Item':{'pk':{'S':'u1'}},'ConditionExpression':'attribute_not_exists(pk)'}", 400,
           CCF);
    expect(s, "Scan", "{'TableName':'users','ExpressionAttributeNames':{'#a':'age'}}", 400,
           "ExpressionAttributeNames can only be specified when using expressions");
    expect(s, "DescribeTable", "{'TableName':'users','Expected':{}}", 200, "'TableName':'users'");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_expected_value_and_exists),
        T(test_expected_operators),
        T(test_expected_conditional_operator),
        T(test_expected_errors),
        T(test_shapes),
        T(test_mixing),
        T(test_attribute_updates),
        T(test_attributes_to_get),
        T(test_key_conditions),
        T(test_scan_filter),
        T(test_untouched),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
