/*
 * Unit tests of store/schema.c: schema validation rules (store_options_t.rules) checked on every item write, through
 * store_call on a real LMDB environment in a fresh mkdtemp() directory per test. Requests are written with single
 * quotes (q() makes them JSON).
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

static const char *const roles[] = {"admin", "user"};
static const char *const levels[] = {"1", "2.5", "1E+1"};
static const store_attr_rule_t user_rules[] = {
    {.name = "email", .type = "S", .required = 1, .min_length = -1, .max_length = -1, .pattern = "^[^@ ]+@[^@ ]+$"},
    {.name = "age", .type = "N", .min = "0", .max = "150", .min_length = -1, .max_length = -1},
    {.name = "role", .type = "S", .enums = roles, .nenums = 2, .min_length = -1, .max_length = -1},
    {.name = "level", .type = "N", .enums = levels, .nenums = 3, .min_length = -1, .max_length = -1},
    {.name = "nick", .type = "S", .min_length = 2, .max_length = 4},
    {.name = "tags", .min_length = -1, .max_length = 2},
};
static const store_table_rules_t rules[] = {{"users", user_rules, sizeof(user_rules) / sizeof(user_rules[0])}};

static int setup_rules(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    char err[256];
    strcpy(f->dir, "/tmp/itemstore-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    store_options_t o = {.dir = f->dir, .map_size = 64 << 20, .rules = rules, .nrules = 1};
    if (store_open(&f->s, &o, err, sizeof(err)) != 0) {
        fprintf(stderr, "store_open: %s\n", err);
        return -1;
    }
    *state = f;
    expect(f->s, "CreateTable",
           "{'TableName':'users','KeySchema':[{'AttributeName':'id','KeyType':'HASH'}],"
           "'AttributeDefinitions':[{'AttributeName':'id','AttributeType':'S'}],'BillingMode':'PAY_PER_REQUEST'}",
           200, NULL);
    expect(f->s, "CreateTable",
           "{'TableName':'other','KeySchema':[{'AttributeName':'id','KeyType':'HASH'}],"
           "'AttributeDefinitions':[{'AttributeName':'id','AttributeType':'S'}],'BillingMode':'PAY_PER_REQUEST'}",
           200, NULL);
    return 0;
}

#define PUT(item) "{'TableName':'users','Item':{'id':{'S':'u1'}," item "}}"
#define GOOD "'email':{'S':'a@b'}"
#define BROKEN(attr) "Schema validation failed for attribute \\\"" attr "\\\": "

static void test_valid_items(void **state)
{
    store_t *s = S(state);
    expect(s, "PutItem", PUT(GOOD), 200, NULL);
    expect(s, "PutItem",
           PUT(GOOD ",'age':{'N':'150'},'role':{'S':'user'},'level':{'N':'10'},'nick':{'S':'\\u00e9\\u00e9\\u00e9\\u00e9'}"), 200,
           NULL);
    expect(s, "PutItem", PUT(GOOD ",'age':{'N':'0'},'level':{'N':'2.50'},'tags':{'SS':['a','b']}"), 200, NULL);
    /* other tables have no rules */
    expect(s, "PutItem", "{'TableName':'other','Item':{'id':{'S':'x'},'age':{'N':'-5'}}}", 200, NULL);
}

static void test_broken_items(void **state)
{
    store_t *s = S(state);
    expect(s, "PutItem", PUT("'age':{'N':'3'}"), 400, BROKEN("email") "is required");
    expect(s, "PutItem", PUT("'email':{'N':'3'}"), 400, BROKEN("email") "must be of type S, not N");
    expect(s, "PutItem", PUT("'email':{'S':'nope'}"), 400, BROKEN("email") "must match the pattern ^[^@ ]+@[^@ ]+$");
    expect(s, "PutItem", PUT(GOOD ",'age':{'N':'-1'}"), 400, BROKEN("age") "must be at least 0");
    expect(s, "PutItem", PUT(GOOD ",'age':{'N':'150.0001'}"), 400, BROKEN("age") "must be at most 150");
    expect(s, "PutItem", PUT(GOOD ",'role':{'S':'root'}"), 400, BROKEN("role") "must be one of admin, user");
    expect(s, "PutItem", PUT(GOOD ",'level':{'N':'3'}"), 400, BROKEN("level") "must be one of 1, 2.5, 1E+1");
    expect(s, "PutItem", PUT(GOOD ",'nick':{'S':'a'}"), 400, BROKEN("nick") "must have a length of at least 2");
    /* characters, not bytes: five two-byte characters */
    expect(s, "PutItem", PUT(GOOD ",'nick':{'S':'\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9'}"), 400,
           BROKEN("nick") "must have a length of at most 4");
    expect(s, "PutItem", PUT(GOOD ",'tags':{'L':[{'S':'a'},{'S':'b'},{'S':'c'}]}"), 400,
           BROKEN("tags") "must have a length of at most 2");
    expect_exact(s, "GetItem", "{'TableName':'users','Key':{'id':{'S':'u1'}}}", 200, "{}"); /* nothing was written */
}

static void test_update_checked_after(void **state)
{
    store_t *s = S(state);
    expect(s, "PutItem", PUT(GOOD ",'age':{'N':'149'}"), 200, NULL);
    /* the item the update makes is checked, not the update */
    expect(s, "UpdateItem",
           "{'TableName':'users','Key':{'id':{'S':'u1'}},'UpdateExpression':'ADD age "
           ":one','ExpressionAttributeValues':{':one':{'N':'1'}}}",
           200, NULL);
    expect(s, "UpdateItem",
           "{'TableName':'users','Key':{'id':{'S':'u1'}},'UpdateExpression':'ADD age "
           ":one','ExpressionAttributeValues':{':one':{'N':'1'}}}",
           400, BROKEN("age") "must be at most 150");
    expect(s, "UpdateItem", "{'TableName':'users','Key':{'id':{'S':'u1'}},'UpdateExpression':'REMOVE email'}", 400,
           BROKEN("email") "is required");
    /* an update of a missing item makes an item without email */
    expect(s, "UpdateItem",
           "{'TableName':'users','Key':{'id':{'S':'u2'}},'UpdateExpression':'SET age = "
           ":a','ExpressionAttributeValues':{':a':{'N':'1'}}}",
           400, BROKEN("email") "is required");
    expect(s, "GetItem", "{'TableName':'users','Key':{'id':{'S':'u1'}}}", 200, "'age':{'N':'150'}");
    /* deletes are never refused */
    expect(s, "DeleteItem", "{'TableName':'users','Key':{'id':{'S':'u1'}}}", 200, NULL);
}

static void test_batch_and_transactions(void **state)
{
    store_t *s = S(state);
    expect(s, "BatchWriteItem",
           "{'RequestItems':{'users':[{'PutRequest':{'Item':{'id':{'S':'a'}," GOOD "}}},"
           "{'PutRequest':{'Item':{'id':{'S':'b'},'email':{'S':'bad'}}}}]}}",
           400, BROKEN("email"));
    expect_exact(s, "GetItem", "{'TableName':'users','Key':{'id':{'S':'a'}}}", 200, "{}"); /* all or nothing */
    expect(s, "TransactWriteItems",
           "{'TransactItems':[{'Put':{'TableName':'users','Item':{'id':{'S':'a'}," GOOD "}}},"
           "{'Put':{'TableName':'users','Item':{'id':{'S':'b'}," GOOD ",'age':{'N':'200'}}}}]}",
           400, BROKEN("age"));
    expect_exact(s, "GetItem", "{'TableName':'users','Key':{'id':{'S':'a'}}}", 200, "{}");
}

static void test_rules_check(void **state)
{
    (void)state;
    char err[256];
    static const char *const bad_num[] = {"x1"};
    store_attr_rule_t r = {.name = "a", .type = "Q", .min_length = -1, .max_length = -1};
    store_table_rules_t t = {"tbl", &r, 1};
    assert_int_equal(store_rules_check(&t, 1, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "store.tables.tbl.attributes.a: unknown type Q"));
    r = (store_attr_rule_t){.name = "a", .type = "N", .max = "1E+200", .min_length = -1, .max_length = -1};
    assert_int_equal(store_rules_check(&t, 1, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "max: "));
    r = (store_attr_rule_t){.name = "a", .type = "S", .pattern = "([a-", .min_length = -1, .max_length = -1};
    assert_int_equal(store_rules_check(&t, 1, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "pattern: "));
    r = (store_attr_rule_t){.name = "a", .type = "N", .enums = bad_num, .nenums = 1, .min_length = -1, .max_length = -1};
    assert_int_equal(store_rules_check(&t, 1, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "enum value x1"));
    r = (store_attr_rule_t){.name = "a", .type = "S", .min = "1", .min_length = -1, .max_length = -1};
    assert_int_equal(store_rules_check(&t, 1, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "min and max need type: N"));
    assert_int_equal(store_rules_check(rules, 1, err, sizeof(err)), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_rules, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_valid_items),
        T(test_broken_items),
        T(test_update_checked_after),
        T(test_batch_and_transactions),
        cmocka_unit_test(test_rules_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
