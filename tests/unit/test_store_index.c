/*
 * Unit tests of the item store's secondary indexes, UpdateTable, TTL and versions (store/write.c, store/alter.c, the
 * IndexName paths of store/query.c, the Edge* members of store/item.c), through store_call over a real LMDB
 * environment in a fresh mkdtemp() directory (each test its own). Requests and expected answers are written with
 * single quotes, which q() turns into double quotes (no test value holds a quote).
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
#include <time.h>
#include <unistd.h>
#include "store/store.h"
#define STORE_FIXTURE_QUOTED
#include "tests/unit/store_fixture.h"

#define VALIDATION "ValidationException"

/* ---- helpers ---- */

/* Runs an operation (req in single quotes) that must answer 200; returns the parsed answer. */
static json_t *read_ok_(store_t *s, const char *op, const char *req, int line)
{
    char *r = q(req), *body;
    int st = call_raw(s, op, r, &body);
    if (st != 200) {
        fprintf(stderr, "line %d: %s %.400s\n  got %d %s\n", line, op, r, st, body);
        free(body);
        free(r);
        fail();
    }
    json_t *o = json_loads(body, 0, NULL);
    free(body);
    free(r);
    assert_non_null(o);
    return o;
}
#define read_ok(s, op, req) read_ok_((s), (op), (req), __LINE__)

/* The text of an attribute value (S or N), or "-". */
static const char *text_of(const json_t *av)
{
    json_t *t = json_object_get(av, "S");
    if (t == NULL)
        t = json_object_get(av, "N");
    return t != NULL ? json_string_value(t) : "-";
}

/* The values of attribute `attr` of the answer's Items, joined with commas (into buf). */
static const char *values(const json_t *o, const char *attr, char *buf, size_t cap)
{
    size_t off = 0, i;
    json_t *it;
    buf[0] = '\0';
    json_array_foreach(json_object_get(o, "Items"), i, it)
    {
        if (off < cap)
            off += (size_t)snprintf(buf + off, cap - off, "%s%s", i ? "," : "", text_of(json_object_get(it, attr)));
    }
    return buf;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The attribute names of an item, sorted, joined with commas (into buf). */
static const char *names_of(const json_t *item, char *buf, size_t cap)
{
    const char *names[64], *k;
    size_t n = 0, off = 0;
    json_t *v;
    json_object_foreach((json_t *)item, k, v)
    {
        if (n < 64)
            names[n++] = k;
    }
    qsort(names, n, sizeof(names[0]), cmp_str);
    buf[0] = '\0';
    for (size_t i = 0; i != n && off < cap; ++i)
        off += (size_t)snprintf(buf + off, cap - off, "%s%s", i ? "," : "", names[i]);
    return buf;
}

/* Runs op (req quoted) and checks the values of attr in its Items. */
static void check_values_(store_t *s, const char *op, const char *req, const char *attr, const char *want, int line)
{
    char buf[16384];
    json_t *o = read_ok_(s, op, req, line);
    if (strcmp(values(o, attr, buf, sizeof(buf)), want) != 0) {
        fprintf(stderr, "line %d: %s %.400s\n  got %s\n  want %s\n", line, op, req, buf, want);
        json_decref(o);
        fail();
    }
    json_decref(o);
}
#define QV(s, req, attr, want) check_values_((s), "Query", (req), (attr), (want), __LINE__)
#define SV(s, req, attr, want) check_values_((s), "Scan", (req), (attr), (want), __LINE__)

/* Runs op (req quoted) and checks the attribute names of its first item (Items[0], or Item). */
static void check_names_(store_t *s, const char *op, const char *req, const char *want, int line)
{
    char buf[1024];
    json_t *o = read_ok_(s, op, req, line), *it = json_object_get(o, "Item");
    if (it == NULL)
        it = json_array_get(json_object_get(o, "Items"), 0);
    if (it == NULL || strcmp(names_of(it, buf, sizeof(buf)), want) != 0) {
        fprintf(stderr, "line %d: %s %.400s\n  got %s\n  want %s\n", line, op, req, it ? buf : "(no item)", want);
        json_decref(o);
        fail();
    }
    json_decref(o);
}
#define NAMES(s, op, req, want) check_names_((s), (op), (req), (want), __LINE__)

/* A printf-style request in single quotes, expected to answer status with `want` in its body. */
static void expectf_(store_t *s, int line, const char *op, int status, const char *want, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void expectf_(store_t *s, int line, const char *op, int status, const char *want, const char *fmt, ...)
{
    char req[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(req, sizeof(req), fmt, ap);
    va_end(ap);
    expect_(s, op, req, 1, 1, status, want, 0, line);
}
#define expectf(s, op, status, want, ...) expectf_((s), __LINE__, (op), (status), (want), __VA_ARGS__)

/* Splits a comma list into a malloc'ed array of malloc'ed strings (n set). */
static char **split(const char *list, size_t *n)
{
    char *copy = strdup(list), *save = NULL, **out = calloc(strlen(list) + 2, sizeof(*out));
    *n = 0;
    for (char *t = strtok_r(copy, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save))
        out[(*n)++] = strdup(t);
    free(copy);
    return out;
}

static void split_free(char **l, size_t n)
{
    for (size_t i = 0; i != n; ++i)
        free(l[i]);
    free(l);
}

/* The comma list reversed (into buf). */
static const char *reversed(const char *list, char *buf, size_t cap)
{
    size_t n, off = 0;
    char **l = split(list, &n);
    buf[0] = '\0';
    for (size_t i = n; i-- > 0 && off < cap;)
        off += (size_t)snprintf(buf + off, cap - off, "%s%s", i != n - 1 ? "," : "", l[i]);
    split_free(l, n);
    return buf;
}

/* How many entries a comma list has; fails when one repeats. */
static size_t count_unique(const char *list)
{
    size_t n;
    char **l = split(list, &n);
    qsort(l, n, sizeof(*l), cmp_str);
    for (size_t i = 1; i < n; ++i) {
        if (strcmp(l[i - 1], l[i]) == 0) {
            fprintf(stderr, "%s repeats in %s\n", l[i], list);
            split_free(l, n);
            fail();
        }
    }
    split_free(l, n);
    return n;
}

/*
 * Pages through op (req quoted, without Limit or ExclusiveStartKey) with Limit `limit`, each page starting at the last
 * one's LastEvaluatedKey; returns the values of attr across the pages, joined with commas (malloc'ed). Each page has at
 * most `limit` items; each LastEvaluatedKey holds exactly lek_n attributes.
 */
static char *page_all_(store_t *s, const char *op, const char *req, long limit, const char *attr, size_t lek_n, int *pages,
                       int line)
{
    char *r = q(req);
    json_t *base = json_loads(r, 0, NULL), *esk = NULL;
    size_t cap = 1 << 16, off = 0;
    char *out = calloc(1, cap);
    free(r);
    assert_non_null(base);
    *pages = 0;
    for (;;) {
        json_t *one = json_deep_copy(base), *it;
        size_t i;
        char *body;
        json_object_set_new(one, "Limit", json_integer(limit));
        if (esk != NULL)
            json_object_set(one, "ExclusiveStartKey", esk);
        char *text = json_dumps(one, JSON_COMPACT);
        json_decref(one);
        int st = call_raw(s, op, text, &body);
        if (st != 200) {
            fprintf(stderr, "line %d: %s %s\n  got %d %s\n", line, op, text, st, body);
            fail();
        }
        free(text);
        json_t *o = json_loads(body, 0, NULL);
        free(body);
        assert_non_null(o);
        (*pages)++;
        assert_true(json_array_size(json_object_get(o, "Items")) <= (size_t)limit);
        json_array_foreach(json_object_get(o, "Items"), i, it)
        {
            off += (size_t)snprintf(out + off, cap - off, "%s%s", off ? "," : "", text_of(json_object_get(it, attr)));
            assert_true(off < cap);
        }
        json_decref(esk);
        esk = json_incref(json_object_get(o, "LastEvaluatedKey"));
        json_decref(o);
        if (esk == NULL)
            break;
        if (lek_n != 0 && json_object_size(esk) != lek_n) {
            char *t = json_dumps(esk, JSON_COMPACT);
            fprintf(stderr, "line %d: LastEvaluatedKey %s: want %zu attributes\n", line, t, lek_n);
            free(t);
            fail();
        }
        assert_true(*pages < 2000);
    }
    json_decref(base);
    return out;
}
#define page_all(s, op, req, limit, attr, lek_n, pages) page_all_((s), (op), (req), (limit), (attr), (lek_n), (pages), __LINE__)

/* The table "docs" (pk S, sk S) with two global indexes and two local ones:
 *   byStat: stat (S), KEYS_ONLY;      byWho: who (S), pts (N), INCLUDE [title];
 *   byLvl (local): lvl (N), KEYS_ONLY; byDt (local): dt (S), ALL. */
#define DOCS_DEFS                                                                                                                  \
    "'AttributeDefinitions':[{'AttributeName':'pk','AttributeType':'S'},{'AttributeName':'sk','AttributeType':'S'},"               \
    "{'AttributeName':'stat','AttributeType':'S'},{'AttributeName':'who','AttributeType':'S'},{'AttributeName':'pts',"             \
    "'AttributeType':'N'},{'AttributeName':'lvl','AttributeType':'N'},{'AttributeName':'dt','AttributeType':'S'}]"
#define DOCS_KEYS "'KeySchema':[{'AttributeName':'pk','KeyType':'HASH'},{'AttributeName':'sk','KeyType':'RANGE'}]"
#define DOCS_GSI                                                                                                                   \
    "'GlobalSecondaryIndexes':[{'IndexName':'byStat','KeySchema':[{'AttributeName':'stat','KeyType':'HASH'}],'Projection':{"       \
    "'ProjectionType':'KEYS_ONLY'}},{'IndexName':'byWho','KeySchema':[{'AttributeName':'who','KeyType':'HASH'},{'AttributeName':"  \
    "'pts','KeyType':'RANGE'}],'Projection':{'ProjectionType':'INCLUDE','NonKeyAttributes':['title']}}]"
#define DOCS_LSI                                                                                                                   \
    "'LocalSecondaryIndexes':[{'IndexName':'byLvl','KeySchema':[{'AttributeName':'pk','KeyType':'HASH'},{'AttributeName':'lvl',"   \
    "'KeyType':'RANGE'}],'Projection':{'ProjectionType':'KEYS_ONLY'}},{'IndexName':'byDt','KeySchema':[{'AttributeName':'pk',"     \
    "'KeyType':'HASH'},{'AttributeName':'dt','KeyType':'RANGE'}],'Projection':{'ProjectionType':'ALL'}}]"

static void make_docs(store_t *s)
{
    expect(s, "CreateTable",
           "{'TableName':'docs'," DOCS_KEYS "," DOCS_DEFS ",'BillingMode':'PAY_PER_REQUEST'," DOCS_GSI "," DOCS_LSI "}", 200,
           "'TableStatus':'ACTIVE'");
}

#define Q_STAT(v)                                                                                                                  \
    "{'TableName':'docs','IndexName':'byStat','KeyConditionExpression':'stat = :v',"                                               \
    "'ExpressionAttributeValues':{':v':{'S':'" v "'}}}"
#define Q_WHO(v)                                                                                                                   \
    "{'TableName':'docs','IndexName':'byWho','KeyConditionExpression':'who = :v',"                                                 \
    "'ExpressionAttributeValues':{':v':{'S':'" v "'}}}"
#define Q_LVL(p)                                                                                                                   \
    "{'TableName':'docs','IndexName':'byLvl','KeyConditionExpression':'pk = :p','ExpressionAttributeValues':{':p':{'S':'" p "'}}}"
#define Q_DT(p)                                                                                                                    \
    "{'TableName':'docs','IndexName':'byDt','KeyConditionExpression':'pk = :p',"                                                   \
    "'ExpressionAttributeValues':{':p':{'S':'" p "'}}}"
#define GET_DOC(p, sk) "{'TableName':'docs','Key':{'pk':{'S':'" p "'},'sk':{'S':'" sk "'}}}"

/* ---- CreateTable with indexes ---- */

static void test_create_with_indexes(void **state)
{
    store_t *s = S(state);
    make_docs(s);
    json_t *o = read_ok(s, "DescribeTable", "{'TableName':'docs'}"), *t = json_object_get(o, "Table");
    json_t *g = json_object_get(t, "GlobalSecondaryIndexes"), *l = json_object_get(t, "LocalSecondaryIndexes");
    assert_int_equal(json_array_size(g), 2);
    assert_int_equal(json_array_size(l), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(g, 0), "IndexName")), "byStat");
    assert_string_equal(json_string_value(json_object_get(json_array_get(g, 0), "IndexStatus")), "ACTIVE");
    assert_string_equal(json_string_value(json_object_get(json_array_get(l, 1), "IndexName")), "byDt");
    assert_int_equal(json_array_size(json_object_get(t, "AttributeDefinitions")), 7);
    json_decref(o);
    /* index names follow DynamoDB's pattern (Query's IndexName is checked against it) */
    expect(s, "CreateTable",
           "{'TableName':'bad'," DOCS_KEYS "," DOCS_DEFS ",'BillingMode':'PAY_PER_REQUEST','GlobalSecondaryIndexes':[{'IndexName':"
           "'by/stat','KeySchema':[{'AttributeName':'stat','KeyType':'HASH'}],'Projection':{'ProjectionType':'ALL'}}]}",
           400, "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+");
    expect(s, "UpdateTable",
           "{'TableName':'docs','GlobalSecondaryIndexUpdates':[{'Create':{'IndexName':'by stat','KeySchema':[{'AttributeName':"
           "'stat','KeyType':'HASH'}],'Projection':{'ProjectionType':'ALL'}}}]}",
           400, "Member must satisfy regular expression pattern");
    /* an empty table's indexes answer nothing */
    QV(s, Q_STAT("open"), "pk", "");
    QV(s, Q_LVL("a"), "pk", "");
}

/* ---- the writes keep the indexes right ---- */

static void test_put_update_delete(void **state)
{
    store_t *s = S(state);
    make_docs(s);
    expect(s, "PutItem",
           "{'TableName':'docs','Item':{'pk':{'S':'a'},'sk':{'S':'1'},'stat':{'S':'open'},'who':{'S':'ann'},'pts':{'N':'5'},"
           "'lvl':{'N':'2'},'dt':{'S':'2024-01-01'},'title':{'S':'T1'},'note':{'S':'n1'}}}",
           200, "{}");
    expect(s, "PutItem", "{'TableName':'docs','Item':{'pk':{'S':'a'},'sk':{'S':'2'},'who':{'S':'ann'},'pts':{'N':'3'}}}", 200,
           "{}");
    QV(s, Q_STAT("open"), "sk", "1");
    QV(s, Q_WHO("ann"), "sk", "2,1"); /* by pts: 3, 5 */
    QV(s, Q_LVL("a"), "sk", "1");     /* sparse: a/2 has no lvl */
    QV(s, Q_DT("a"), "sk", "1");

    /* the index key moves: gone from the old value, found under the new one */
    expect(s, "UpdateItem",
           "{'TableName':'docs','Key':{'pk':{'S':'a'},'sk':{'S':'1'}},'UpdateExpression':'SET stat = :c, pts = :p',"
           "'ExpressionAttributeValues':{':c':{'S':'closed'},':p':{'N':'1'}}}",
           200, "{}");
    QV(s, Q_STAT("open"), "sk", "");
    QV(s, Q_STAT("closed"), "sk", "1");
    QV(s, Q_WHO("ann"), "sk", "1,2");
    /* a PutItem replacing the item moves it too */
    expect(s, "PutItem",
           "{'TableName':'docs','Item':{'pk':{'S':'a'},'sk':{'S':'2'},'stat':{'S':'open'},'who':{'S':'bob'},'pts':{'N':'3'}}}", 200,
           "{}");
    QV(s, Q_STAT("open"), "sk", "2");
    QV(s, Q_WHO("ann"), "sk", "1");
    QV(s, Q_WHO("bob"), "sk", "2");

    /* an index attribute removed: the item leaves that (sparse) index, and only that one */
    expect(s, "UpdateItem", "{'TableName':'docs','Key':{'pk':{'S':'a'},'sk':{'S':'1'}},'UpdateExpression':'REMOVE stat, lvl'}", 200,
           "{}");
    QV(s, Q_STAT("closed"), "sk", "");
    QV(s, Q_LVL("a"), "sk", "");
    QV(s, Q_WHO("ann"), "sk", "1");
    QV(s, Q_DT("a"), "sk", "1");
    /* only one of a hash+range index's attributes: not in it */
    expect(s, "UpdateItem", "{'TableName':'docs','Key':{'pk':{'S':'a'},'sk':{'S':'1'}},'UpdateExpression':'REMOVE pts'}", 200,
           "{}");
    QV(s, Q_WHO("ann"), "sk", "");
    /* an UpdateItem that makes a new item puts it in the indexes */
    expect(s, "UpdateItem",
           "{'TableName':'docs','Key':{'pk':{'S':'b'},'sk':{'S':'1'}},'UpdateExpression':'SET stat = :o, lvl = :l',"
           "'ExpressionAttributeValues':{':o':{'S':'open'},':l':{'N':'7'}}}",
           200, "{}");
    QV(s, Q_STAT("open"), "pk", "a,b");
    QV(s, Q_LVL("b"), "lvl", "7");

    /* a deleted item is gone from every index */
    expect(s, "DeleteItem", "{'TableName':'docs','Key':{'pk':{'S':'a'},'sk':{'S':'2'}}}", 200, "{}");
    QV(s, Q_STAT("open"), "pk", "b");
    QV(s, Q_WHO("bob"), "sk", "");
    expect(s, "DeleteItem", "{'TableName':'docs','Key':{'pk':{'S':'a'},'sk':{'S':'1'}}}", 200, "{}");
    QV(s, Q_DT("a"), "sk", "");
    SV(s, "{'TableName':'docs','IndexName':'byDt'}", "pk", "");
    SV(s, "{'TableName':'docs','IndexName':'byStat'}", "pk", "b");
}

static void test_batch_and_transact_writes(void **state)
{
    store_t *s = S(state);
    make_docs(s);
    expect(s, "BatchWriteItem",
           "{'RequestItems':{'docs':[{'PutRequest':{'Item':{'pk':{'S':'a'},'sk':{'S':'1'},'stat':{'S':'open'}}}},"
           "{'PutRequest':{'Item':{'pk':{'S':'a'},'sk':{'S':'2'},'stat':{'S':'open'},'who':{'S':'ann'},'pts':{'N':'1'}}}},"
           "{'PutRequest':{'Item':{'pk':{'S':'b'},'sk':{'S':'1'},'stat':{'S':'done'}}}}]}}",
           200, "'UnprocessedItems':{}");
    QV(s, Q_STAT("open"), "sk", "1,2");
    QV(s, Q_WHO("ann"), "sk", "2");
    expect(s, "BatchWriteItem",
           "{'RequestItems':{'docs':[{'DeleteRequest':{'Key':{'pk':{'S':'a'},'sk':{'S':'1'}}}},"
           "{'PutRequest':{'Item':{'pk':{'S':'a'},'sk':{'S':'2'},'stat':{'S':'done'}}}}]}}",
           200, "'UnprocessedItems':{}");
    QV(s, Q_STAT("open"), "sk", "");
    QV(s, Q_STAT("done"), "pk", "a,b");
    QV(s, Q_WHO("ann"), "sk", "");

    expect(
        s, "TransactWriteItems",
        "{'TransactItems':[{'Put':{'TableName':'docs','Item':{'pk':{'S':'c'},'sk':{'S':'1'},'stat':{'S':'open'},'lvl':{'N':'1'}}}},"
        "{'Update':{'TableName':'docs','Key':{'pk':{'S':'a'},'sk':{'S':'2'}},'UpdateExpression':'SET stat = :o',"
        "'ExpressionAttributeValues':{':o':{'S':'open'}}}},{'Delete':{'TableName':'docs','Key':{'pk':{'S':'b'},'sk':{'S':'1'}}}}]}",
        200, "{}");
    QV(s, Q_STAT("open"), "pk", "a,c");
    QV(s, Q_STAT("done"), "pk", "");
    QV(s, Q_LVL("c"), "lvl", "1");
    /* a cancelled transaction changes no index */
    expect(
        s, "TransactWriteItems",
        "{'TransactItems':[{'Put':{'TableName':'docs','Item':{'pk':{'S':'d'},'sk':{'S':'1'},'stat':{'S':'open'}}}},"
        "{'Delete':{'TableName':'docs','Key':{'pk':{'S':'c'},'sk':{'S':'1'}},'ConditionExpression':'attribute_not_exists(pk)'}}]}",
        400, "TransactionCanceledException");
    QV(s, Q_STAT("open"), "pk", "a,c");
}

/* ---- index keys of the wrong type, empty ones ---- */

static void test_wrong_type(void **state)
{
    store_t *s = S(state);
    long long count, bytes, count2, bytes2;
    make_docs(s);
    expect(s, "PutItem",
           "{'TableName':'docs','Item':{'pk':{'S':'a'},'sk':{'S':'1'},'stat':{'S':'open'},'who':{'S':'ann'},'pts':{'N':'1'}}}", 200,
           "{}");
    counters(s, "docs", &count, &bytes);
    expect(s, "PutItem", "{'TableName':'docs','Item':{'pk':{'S':'a'},'sk':{'S':'2'},'stat':{'N':'1'}}}", 400,
           "One or more parameter values were invalid: Type mismatch for Index Key stat Expected: S Actual: N IndexName: byStat");
    expect(s, "PutItem", "{'TableName':'docs','Item':{'pk':{'S':'a'},'sk':{'S':'2'},'who':{'S':'x'},'pts':{'S':'1'}}}", 400,
           "Type mismatch for Index Key pts Expected: N Actual: S IndexName: byWho");
    expect(s, "PutItem", "{'TableName':'docs','Item':{'pk':{'S':'a'},'sk':{'S':'2'},'lvl':{'BOOL':true}}}", 400,
           "Type mismatch for Index Key lvl Expected: N Actual: BOOL IndexName: byLvl");
    /* the type of an index key attribute holds even where the index's other key attribute is missing */
    expect(s, "PutItem", "{'TableName':'docs','Item':{'pk':{'S':'a'},'sk':{'S':'2'},'pts':{'S':'1'}}}", 400,
           "Type mismatch for Index Key pts Expected: N Actual: S IndexName: byWho");
    expect(s, "PutItem", "{'TableName':'docs','Item':{'pk':{'S':'a'},'sk':{'S':'2'},'who':{'NULL':true}}}", 400,
           "Type mismatch for Index Key who Expected: S Actual: NULL IndexName: byWho");
    expect_exact(s, "GetItem", GET_DOC("a", "2"), 200, "{}");
    /* an update that would give the item a wrong index key changes nothing */
    expect(s, "UpdateItem",
           "{'TableName':'docs','Key':{'pk':{'S':'a'},'sk':{'S':'1'}},'UpdateExpression':'SET stat = :n, note = :n',"
           "'ExpressionAttributeValues':{':n':{'N':'5'}}}",
           400, "Type mismatch for Index Key stat");
    NAMES(s, "GetItem", GET_DOC("a", "1"), "pk,pts,sk,stat,who");
    QV(s, Q_STAT("open"), "sk", "1");
    /* in a batch: the whole batch is refused, the valid puts too */
    expect(s, "BatchWriteItem",
           "{'RequestItems':{'docs':[{'PutRequest':{'Item':{'pk':{'S':'b'},'sk':{'S':'1'},'stat':{'S':'open'}}}},"
           "{'PutRequest':{'Item':{'pk':{'S':'b'},'sk':{'S':'2'},'stat':{'N':'3'}}}}]}}",
           400, "Type mismatch for Index Key stat");
    expect_exact(s, "GetItem", GET_DOC("b", "1"), 200, "{}");
    QV(s, Q_STAT("open"), "sk", "1");
    /* in a transaction: nothing is written */
    expect(s, "TransactWriteItems",
           "{'TransactItems':[{'Put':{'TableName':'docs','Item':{'pk':{'S':'c'},'sk':{'S':'1'},'stat':{'S':'open'}}}},"
           "{'Update':{'TableName':'docs','Key':{'pk':{'S':'a'},'sk':{'S':'1'}},'UpdateExpression':'SET who = :n',"
           "'ExpressionAttributeValues':{':n':{'N':'1'}}}}]}",
           400, "Type mismatch for Index Key who");
    expect_exact(s, "GetItem", GET_DOC("c", "1"), 200, "{}");
    QV(s, Q_STAT("open"), "pk", "a");
    QV(s, Q_WHO("ann"), "sk", "1");
    counters(s, "docs", &count2, &bytes2);
    assert_int_equal(count, count2);
    assert_int_equal(bytes, bytes2);
    /* the attributes of no index are free */
    expect(s, "PutItem", "{'TableName':'docs','Item':{'pk':{'S':'a'},'sk':{'S':'3'},'note':{'N':'1'},'title':{'BOOL':false}}}", 200,
           "{}");
}

static void test_empty_index_key(void **state)
{
    store_t *s = S(state);
    make_docs(s);
    expect(s, "PutItem", "{'TableName':'docs','Item':{'pk':{'S':'a'},'sk':{'S':'1'},'stat':{'S':''}}}", 400,
           "A value specified for a secondary index key is not supported. The AttributeValue for a key attribute cannot contain "
           "an empty string value. IndexName: byStat, IndexKey: stat");
    expect(s, "PutItem", "{'TableName':'docs','Item':{'pk':{'S':'a'},'sk':{'S':'1'},'dt':{'S':''}}}", 400,
           "IndexName: byDt, IndexKey: dt");
    expect(s, "UpdateItem",
           "{'TableName':'docs','Key':{'pk':{'S':'a'},'sk':{'S':'1'}},'UpdateExpression':'SET who = :e, pts = :one',"
           "'ExpressionAttributeValues':{':e':{'S':''},':one':{'N':'1'}}}",
           400, "cannot contain an empty string value. IndexName: byWho, IndexKey: who");
    expect(s, "PutItem", "{'TableName':'docs','Item':{'pk':{'S':'a'},'sk':{'S':'1'},'who':{'S':''}}}", 400,
           "IndexName: byWho, IndexKey: who");
    expect_exact(s, "GetItem", GET_DOC("a", "1"), 200, "{}");
    /* an empty string in an attribute that is no index key is fine */
    expect(s, "PutItem", "{'TableName':'docs','Item':{'pk':{'S':'a'},'sk':{'S':'1'},'note':{'S':''},'stat':{'S':'x'}}}", 200, "{}");
    QV(s, Q_STAT("x"), "sk", "1");
}

static void test_binary_and_long_index_keys(void **state)
{
    store_t *s = S(state);
    char big[700], req[1200];
    expect(s, "CreateTable",
           "{'TableName':'bin','KeySchema':[{'AttributeName':'pk','KeyType':'HASH'}],'AttributeDefinitions':[{'AttributeName':'pk',"
           "'AttributeType':'S'},{'AttributeName':'b','AttributeType':'B'},{'AttributeName':'n','AttributeType':'N'}],"
           "'BillingMode':'PAY_PER_REQUEST','GlobalSecondaryIndexes':[{'IndexName':'byB','KeySchema':[{'AttributeName':'b',"
           "'KeyType':'HASH'},{'AttributeName':'n','KeyType':'RANGE'}],'Projection':{'ProjectionType':'KEYS_ONLY'}}]}",
           200, "ACTIVE");
    /* n: numbers in their order (negative, fractions), b: binary (AQI= is 01 02) */
    const char *ns[] = {"-10", "2.5", "-0.5", "100", "0"};
    for (int i = 0; i != 5; ++i)
        expectf(s, "PutItem", 200, "{}", "{'TableName':'bin','Item':{'pk':{'S':'k%d'},'b':{'B':'AQI='},'n':{'N':'%s'}}}", i, ns[i]);
    expect(s, "PutItem", "{'TableName':'bin','Item':{'pk':{'S':'x'},'b':{'B':'AQ=='},'n':{'N':'1'}}}", 200, "{}");
    QV(s, "{'TableName':'bin','IndexName':'byB','KeyConditionExpression':'b = :b','ExpressionAttributeValues':{':b':{'B':'AQI='}}}",
       "n", "-10,-0.5,0,2.5,100");
    QV(s,
       "{'TableName':'bin','IndexName':'byB','KeyConditionExpression':'b = :b AND n BETWEEN :l AND :h','ScanIndexForward':false,"
       "'ExpressionAttributeValues':{':b':{'B':'AQI='},':l':{'N':'-1'},':h':{'N':'2.5'}}}",
       "n", "2.5,0,-0.5");
    SV(s, "{'TableName':'bin','IndexName':'byB'}", "pk", "x,k0,k2,k4,k1,k3");
    expect(s, "PutItem", "{'TableName':'bin','Item':{'pk':{'S':'y'},'b':{'S':'AQI='}}}", 400,
           "Type mismatch for Index Key b Expected: B Actual: S IndexName: byB");
    /* an index key longer than LMDB's keys (a known limit of this store) is refused, nothing written */
    memset(big, 'z', 600);
    big[600] = '\0';
    expect(s, "CreateTable",
           "{'TableName':'lng','KeySchema':[{'AttributeName':'pk','KeyType':'HASH'}],'AttributeDefinitions':[{'AttributeName':'pk',"
           "'AttributeType':'S'},{'AttributeName':'g','AttributeType':'S'}],'BillingMode':'PAY_PER_REQUEST',"
           "'GlobalSecondaryIndexes':[{'IndexName':'byG','KeySchema':[{'AttributeName':'g','KeyType':'HASH'}],'Projection':{"
           "'ProjectionType':'ALL'}}]}",
           200, "ACTIVE");
    snprintf(req, sizeof(req), "{'TableName':'lng','Item':{'pk':{'S':'a'},'g':{'S':'%s'}}}", big);
    expect(s, "PutItem", req, 400, "IndexName: byG");
    expect_exact(s, "GetItem", "{'TableName':'lng','Key':{'pk':{'S':'a'}}}", 200, "{}");
    /* a hash key beyond DynamoDB's 2048 bytes: DynamoDB's words */
    char *huge = malloc(2100 + 200);
    memset(huge, 'z', 2100);
    huge[2100] = '\0';
    char *r2 = malloc(2400);
    snprintf(r2, 2400, "{'TableName':'lng','Item':{'pk':{'S':'a'},'g':{'S':'%s'}}}", huge);
    expect(s, "PutItem", r2, 400, "2048");
    free(r2);
    free(huge);
}

/* ---- Query on an index ---- */

/* docs: items a/1..a/6 of who "ann" with pts 1, 2, 2, 2, 3, 4, plus b/1 of who "bob"; lvl = 10 - i. */
static void load_who(store_t *s)
{
    int acked = 0;
    const char *pts[] = {"1", "2", "2", "2", "3", "4"};
    make_docs(s);
    for (int i = 0; i != 6; ++i)
        put_async(
            s, &acked, "docs",
            "{\"pk\":{\"S\":\"a\"},\"sk\":{\"S\":\"%d\"},\"who\":{\"S\":\"ann\"},\"pts\":{\"N\":\"%s\"},\"lvl\":{\"N\":\"%d\"},"
            "\"title\":{\"S\":\"t%d\"},\"note\":{\"S\":\"n%d\"}}",
            i + 1, pts[i], 10 - i, i + 1, i + 1);
    put_async(s, &acked, "docs", "{\"pk\":{\"S\":\"b\"},\"sk\":{\"S\":\"1\"},\"who\":{\"S\":\"bob\"},\"pts\":{\"N\":\"2\"}}");
    store_flush(s);
    assert_int_equal(acked, 7);
}

#define Q_WHO_SK(cond, extra)                                                                                                      \
    "{'TableName':'docs','IndexName':'byWho','KeyConditionExpression':'who = :w AND " cond "','ExpressionAttributeValues':{':w':{" \
    "'S':'ann'},':x':{'N':'2'},':y':{'N':'3'}}" extra "}"

static void test_query_sort_conditions(void **state)
{
    store_t *s = S(state);
    load_who(s);
    QV(s, Q_WHO("ann"), "sk", "1,2,3,4,5,6");
    QV(s, Q_WHO("bob"), "pk", "b");
    expectf(s, "Query", 200, "'Count':6", "%s", Q_WHO("ann"));
    /* :y is unused without the BETWEEN: only the ones that use both */
    QV(s, Q_WHO_SK("pts BETWEEN :x AND :y", ""), "sk", "2,3,4,5");
    QV(s, Q_WHO_SK("pts BETWEEN :x AND :y", ",'ScanIndexForward':false"), "sk", "5,4,3,2");
    QV(s,
       "{'TableName':'docs','IndexName':'byWho','KeyConditionExpression':'who = :w AND pts = :x',"
       "'ExpressionAttributeValues':{':w':{'S':'ann'},':x':{'N':'2'}}}",
       "sk", "2,3,4");
    QV(s,
       "{'TableName':'docs','IndexName':'byWho','KeyConditionExpression':'who = :w AND pts = :x','ScanIndexForward':false,"
       "'ExpressionAttributeValues':{':w':{'S':'ann'},':x':{'N':'2'}}}",
       "sk", "4,3,2");
    QV(s,
       "{'TableName':'docs','IndexName':'byWho','KeyConditionExpression':'who = :w AND pts <= :x','ScanIndexForward':false,"
       "'ExpressionAttributeValues':{':w':{'S':'ann'},':x':{'N':'2'}}}",
       "sk", "4,3,2,1");
    QV(s,
       "{'TableName':'docs','IndexName':'byWho','KeyConditionExpression':'who = :w AND pts < :x','ScanIndexForward':false,"
       "'ExpressionAttributeValues':{':w':{'S':'ann'},':x':{'N':'2'}}}",
       "sk", "1");
    QV(s,
       "{'TableName':'docs','IndexName':'byWho','KeyConditionExpression':'who = :w AND pts > :x',"
       "'ExpressionAttributeValues':{':w':{'S':'ann'},':x':{'N':'2'}}}",
       "sk", "5,6");
    QV(s,
       "{'TableName':'docs','IndexName':'byWho','KeyConditionExpression':'who = :w AND pts >= :x','ScanIndexForward':false,"
       "'ExpressionAttributeValues':{':w':{'S':'ann'},':x':{'N':'2'}}}",
       "sk", "6,5,4,3,2");
    QV(s,
       "{'TableName':'docs','IndexName':'byWho','KeyConditionExpression':'who = :w','ScanIndexForward':false,"
       "'ExpressionAttributeValues':{':w':{'S':'ann'}}}",
       "sk", "6,5,4,3,2,1");
    /* a local index: by lvl within the partition */
    QV(s, Q_LVL("a"), "sk", "6,5,4,3,2,1");
    QV(s,
       "{'TableName':'docs','IndexName':'byLvl','KeyConditionExpression':'pk = :p AND lvl > :l','ScanIndexForward':false,"
       "'ExpressionAttributeValues':{':p':{'S':'a'},':l':{'N':'7'}}}",
       "lvl", "10,9,8");
    /* a filter on a non-key attribute; on the index's key it is refused */
    QV(s,
       "{'TableName':'docs','IndexName':'byWho','KeyConditionExpression':'who = :w','FilterExpression':'title <> :t',"
       "'ExpressionAttributeValues':{':w':{'S':'ann'},':t':{'S':'t3'}}}",
       "sk", "1,2,4,5,6");
    expect(s, "Query",
           "{'TableName':'docs','IndexName':'byWho','KeyConditionExpression':'who = :w','FilterExpression':'pts > :t',"
           "'ExpressionAttributeValues':{':w':{'S':'ann'},':t':{'N':'1'}}}",
           400, "Filter Expression can only contain non-primary key attributes: Primary key attribute: pts");
    /* the key condition names the index's keys, not the table's */
    expect(
        s, "Query",
        "{'TableName':'docs','IndexName':'byWho','KeyConditionExpression':'pk = :w','ExpressionAttributeValues':{':w':{'S':'a'}}}",
        400, VALIDATION);
    expect(
        s, "Query",
        "{'TableName':'docs','IndexName':'byWho','KeyConditionExpression':'who = :w','ExpressionAttributeValues':{':w':{'N':'1'}}}",
        400, "Condition parameter type does not match schema type");
}

static void test_query_paging_many_equal_keys(void **state)
{
    store_t *s = S(state);
    int acked = 0, pages;
    char buf[16384], rev[16384];
    expect(s, "CreateTable",
           "{'TableName':'many','KeySchema':[{'AttributeName':'pk','KeyType':'HASH'},{'AttributeName':'sk','KeyType':'RANGE'}],"
           "'AttributeDefinitions':[{'AttributeName':'pk','AttributeType':'S'},{'AttributeName':'sk','AttributeType':'N'},"
           "{'AttributeName':'g','AttributeType':'S'},{'AttributeName':'h','AttributeType':'N'}],'BillingMode':'PAY_PER_REQUEST',"
           "'GlobalSecondaryIndexes':[{'IndexName':'byG','KeySchema':[{'AttributeName':'g','KeyType':'HASH'}],'Projection':{"
           "'ProjectionType':'KEYS_ONLY'}},{'IndexName':'byGH','KeySchema':[{'AttributeName':'g','KeyType':'HASH'},{"
           "'AttributeName':'h','KeyType':'RANGE'}],'Projection':{'ProjectionType':'ALL'}}]}",
           200, "ACTIVE");
    /* 60 items: g "same" but every sixth "other"; h = i % 3 */
    for (int i = 0; i != 60; ++i)
        put_async(s, &acked, "many",
                  "{\"pk\":{\"S\":\"p%d\"},\"sk\":{\"N\":\"%d\"},\"g\":{\"S\":\"%s\"},\"h\":{\"N\":\"%d\"},\"v\":{\"S\":\"%d\"}}",
                  i % 4, i, i % 6 == 0 ? "other" : "same", i % 3, i);
    store_flush(s);
    assert_int_equal(acked, 60);

    static const char *const queries[][3] = {
        /* request, the expected count, LastEvaluatedKey's size */
        {"{'TableName':'many','IndexName':'byG','KeyConditionExpression':'g = :g','ExpressionAttributeValues':{':g':{'S':'same'}}",
         "50", "3"},
        {"{'TableName':'many','IndexName':'byGH','KeyConditionExpression':'g = :g AND h = :h','ExpressionAttributeValues':{':g':{"
         "'S':'same'},':h':{'N':'1'}}",
         "20", "4"},
        {"{'TableName':'many','IndexName':'byGH','KeyConditionExpression':'g = :g AND h <= :h','ExpressionAttributeValues':{':g':{"
         "'S':'same'},':h':{'N':'1'}}",
         "30", "4"},
        {"{'TableName':'many','IndexName':'byGH','KeyConditionExpression':'g = :g AND h BETWEEN :h AND :i',"
         "'ExpressionAttributeValues':{':g':{'S':'same'},':h':{'N':'1'},':i':{'N':'2'}}",
         "40", "4"},
    };
    static const long limits[] = {1, 2, 7, 19, 20, 49, 50, 51, 100};
    for (size_t qi = 0; qi != sizeof(queries) / sizeof(queries[0]); ++qi) {
        char fwd[1024], bwd[1024], full[16384];
        snprintf(fwd, sizeof(fwd), "%s}", queries[qi][0]);
        snprintf(bwd, sizeof(bwd), "%s,'ScanIndexForward':false}", queries[qi][0]);
        json_t *o = read_ok(s, "Query", fwd);
        values(o, "sk", full, sizeof(full));
        json_decref(o);
        assert_int_equal(count_unique(full), atoi(queries[qi][1]));
        /* backward: the same items, the other way round */
        o = read_ok(s, "Query", bwd);
        values(o, "sk", buf, sizeof(buf));
        json_decref(o);
        if (strcmp(buf, reversed(full, rev, sizeof(rev))) != 0) {
            fprintf(stderr, "query %zu backward:\n  got  %s\n  want %s\n", qi, buf, rev);
            fail();
        }
        for (size_t li = 0; li != sizeof(limits) / sizeof(limits[0]); ++li) {
            char *got = page_all(s, "Query", fwd, limits[li], "sk", (size_t)atoi(queries[qi][2]), &pages);
            char want[16384];
            /* the items' sk and v are equal */
            if (strcmp(got, full) != 0) {
                fprintf(stderr, "query %zu forward, Limit %ld (%d pages):\n  got  %s\n  want %s\n", qi, limits[li], pages, got,
                        full);
                fail();
            }
            assert_true(pages >= atoi(queries[qi][1]) / limits[li]);
            free(got);
            got = page_all(s, "Query", bwd, limits[li], "sk", (size_t)atoi(queries[qi][2]), &pages);
            if (strcmp(got, reversed(full, want, sizeof(want))) != 0) {
                fprintf(stderr, "query %zu backward, Limit %ld (%d pages):\n  got  %s\n  want %s\n", qi, limits[li], pages, got,
                        want);
                fail();
            }
            free(got);
        }
    }
    /* the item a page ended on is deleted before the next page: the walk goes on from its place */
    {
        json_t *p1 = read_ok(s, "Query",
                             "{'TableName':'many','IndexName':'byG','KeyConditionExpression':'g = :g','Limit':10,"
                             "'ExpressionAttributeValues':{':g':{'S':'same'}}}");
        json_t *lek = json_object_get(p1, "LastEvaluatedKey"),
               *del = json_pack("{s:s, s:{s:O, s:O}}", "TableName", "many", "Key", "pk", json_object_get(lek, "pk"), "sk",
                                json_object_get(lek, "sk"));
        char *text = json_dumps(del, JSON_COMPACT), first[4096], rest[4096];
        assert_int_equal(call_raw(s, "DeleteItem", text, NULL), 200);
        free(text);
        json_t *q2 =
            json_pack("{s:s, s:s, s:s, s:{s:{s:s}}, s:O}", "TableName", "many", "IndexName", "byG", "KeyConditionExpression",
                      "g = :g", "ExpressionAttributeValues", ":g", "S", "same", "ExclusiveStartKey", lek);
        text = json_dumps(q2, JSON_COMPACT);
        char *body;
        assert_int_equal(call_raw(s, "Query", text, &body), 200);
        json_t *p2 = json_loads(body, 0, NULL);
        values(p1, "sk", first, sizeof(first));
        values(p2, "sk", rest, sizeof(rest));
        assert_int_equal(json_array_size(json_object_get(p2, "Items")), 40);
        char joined[8192];
        snprintf(joined, sizeof(joined), "%s,%s", first, rest);
        assert_int_equal(count_unique(joined), 50);
        free(text);
        free(body);
        json_decref(p1);
        json_decref(p2);
        json_decref(q2);
        json_decref(del);
    }
    /* the LastEvaluatedKey of an index names the table's key and the index's */
    json_t *o = read_ok(s, "Query",
                        "{'TableName':'many','IndexName':'byGH','KeyConditionExpression':'g = :g','Limit':1,"
                        "'ExpressionAttributeValues':{':g':{'S':'other'}}}");
    json_t *lek = json_object_get(o, "LastEvaluatedKey");
    assert_non_null(json_object_get(lek, "pk"));
    assert_non_null(json_object_get(lek, "sk"));
    assert_string_equal(text_of(json_object_get(lek, "g")), "other");
    assert_non_null(json_object_get(lek, "h"));
    json_decref(o);
    /* a start key without the index's attributes, or outside the condition, is refused */
    expect(
        s, "Query",
        "{'TableName':'many','IndexName':'byG','KeyConditionExpression':'g = :g','ExpressionAttributeValues':{':g':{'S':'same'}},"
        "'ExclusiveStartKey':{'pk':{'S':'p1'},'sk':{'N':'1'}}}",
        400, "The provided starting key is invalid");
    expect(
        s, "Query",
        "{'TableName':'many','IndexName':'byG','KeyConditionExpression':'g = :g','ExpressionAttributeValues':{':g':{'S':'same'}},"
        "'ExclusiveStartKey':{'pk':{'S':'p0'},'sk':{'N':'0'},'g':{'S':'other'}}}",
        400, "The provided starting key is outside query boundaries");
    /* Scan of an index: paging, and segments that cover it */
    char *all = page_all(s, "Scan", "{'TableName':'many','IndexName':'byG'}", 7, "sk", 3, &pages);
    assert_int_equal(count_unique(all), 59);
    free(all);
    char seen[16384] = "";
    size_t off = 0;
    for (int seg = 0; seg != 3; ++seg) {
        char req[256];
        snprintf(req, sizeof(req), "{'TableName':'many','IndexName':'byGH','Segment':%d,'TotalSegments':3}", seg);
        char *part = page_all(s, "Scan", req, 9, "sk", 4, &pages);
        if (part[0] != '\0')
            off += (size_t)snprintf(seen + off, sizeof(seen) - off, "%s%s", off ? "," : "", part);
        free(part);
    }
    assert_int_equal(count_unique(seen), 59);
}

static void test_projections(void **state)
{
    store_t *s = S(state);
    load_who(s);
    expect(s, "PutItem",
           "{'TableName':'docs','Item':{'pk':{'S':'c'},'sk':{'S':'1'},'stat':{'S':'open'},'dt':{'S':'d1'},'lvl':{'N':'1'},"
           "'title':{'S':'t'},'note':{'S':'n'}}}",
           200, "{}");
    /* KEYS_ONLY: the table's keys and the index's */
    NAMES(s, "Query", Q_STAT("open"), "pk,sk,stat");
    NAMES(s, "Scan", "{'TableName':'docs','IndexName':'byStat'}", "pk,sk,stat");
    /* INCLUDE: and the NonKeyAttributes */
    NAMES(s, "Query", Q_WHO("ann"), "pk,pts,sk,title,who");
    /* ALL */
    NAMES(s, "Query", Q_DT("c"), "dt,lvl,note,pk,sk,stat,title");
    /* a local index reads the table's item for ALL_ATTRIBUTES, a global one cannot */
    NAMES(s, "Query", Q_LVL("c"), "lvl,pk,sk");
    NAMES(s, "Query",
          "{'TableName':'docs','IndexName':'byLvl','KeyConditionExpression':'pk = :p','Select':'ALL_ATTRIBUTES',"
          "'ExpressionAttributeValues':{':p':{'S':'c'}}}",
          "dt,lvl,note,pk,sk,stat,title");
    NAMES(s, "Query",
          "{'TableName':'docs','IndexName':'byLvl','KeyConditionExpression':'pk = :p','Select':'ALL_PROJECTED_ATTRIBUTES',"
          "'ExpressionAttributeValues':{':p':{'S':'c'}}}",
          "lvl,pk,sk");
    NAMES(s, "Query",
          "{'TableName':'docs','IndexName':'byLvl','KeyConditionExpression':'pk = :p','ProjectionExpression':'note, lvl',"
          "'ExpressionAttributeValues':{':p':{'S':'c'}}}",
          "lvl,note");
    /* a filter on a local index sees the table's item; on a global one, what the index holds */
    NAMES(s, "Query",
          "{'TableName':'docs','IndexName':'byLvl','KeyConditionExpression':'pk = :p','FilterExpression':'note = :n',"
          "'ExpressionAttributeValues':{':p':{'S':'c'},':n':{'S':'n'}}}",
          "lvl,pk,sk");
    expect(s, "Query",
           "{'TableName':'docs','IndexName':'byStat','KeyConditionExpression':'stat = :v','FilterExpression':'note = :n',"
           "'ExpressionAttributeValues':{':v':{'S':'open'},':n':{'S':'n'}}}",
           200, "'Count':0,'ScannedCount':1");
    expect(s, "Query",
           "{'TableName':'docs','IndexName':'byStat','KeyConditionExpression':'stat = :v','Select':'ALL_ATTRIBUTES',"
           "'ExpressionAttributeValues':{':v':{'S':'open'}}}",
           400,
           "Select type ALL_ATTRIBUTES is not supported for global secondary index byStat because its projection type is not ALL");
    expect(s, "Scan", "{'TableName':'docs','IndexName':'byWho','Select':'ALL_ATTRIBUTES'}", 400,
           "is not supported for global secondary index byWho");
    NAMES(s, "Scan", "{'TableName':'docs','IndexName':'byDt','Select':'ALL_ATTRIBUTES'}", "dt,lvl,note,pk,sk,stat,title");
    /* a projection on a global index sees only what the index holds */
    NAMES(s, "Query",
          "{'TableName':'docs','IndexName':'byWho','KeyConditionExpression':'who = :v','ProjectionExpression':'title, note, sk',"
          "'ExpressionAttributeValues':{':v':{'S':'ann'}}}",
          "sk,title");
    expect(s, "Query",
           "{'TableName':'docs','IndexName':'byWho','KeyConditionExpression':'who = :v','Select':'COUNT',"
           "'ExpressionAttributeValues':{':v':{'S':'ann'}}}",
           200, "'Count':6");
    expect(s, "Query",
           "{'TableName':'docs','KeyConditionExpression':'pk = :v','Select':'ALL_PROJECTED_ATTRIBUTES',"
           "'ExpressionAttributeValues':{':v':{'S':'a'}}}",
           400, "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName");
}

static void test_consistent_read_and_unknown_index(void **state)
{
    store_t *s = S(state);
    load_who(s);
    expect(s, "Query",
           "{'TableName':'docs','IndexName':'byWho','ConsistentRead':true,'KeyConditionExpression':'who = :v',"
           "'ExpressionAttributeValues':{':v':{'S':'ann'}}}",
           400, "Consistent reads are not supported on global secondary indexes");
    expect(s, "Scan", "{'TableName':'docs','IndexName':'byStat','ConsistentRead':true}", 400,
           "Consistent reads are not supported on global secondary indexes");
    expect(s, "Query",
           "{'TableName':'docs','IndexName':'byLvl','ConsistentRead':true,'KeyConditionExpression':'pk = :v',"
           "'ExpressionAttributeValues':{':v':{'S':'a'}}}",
           200, "'Count':6");
    expect(
        s, "Query",
        "{'TableName':'docs','IndexName':'nope','KeyConditionExpression':'pk = :v','ExpressionAttributeValues':{':v':{'S':'a'}}}",
        400, "The table does not have the specified index: nope");
    expect(s, "Scan", "{'TableName':'docs','IndexName':'nope'}", 400, "The table does not have the specified index: nope");
    expect(s, "Scan", "{'TableName':'docs','IndexName':'x'}", 400, VALIDATION);
    expect(s, "Scan", "{'TableName':'nope','IndexName':'byStat'}", 400, "ResourceNotFoundException");
}

/* ---- UpdateTable ---- */

#define CREATE_COLOR(proj)                                                                                                         \
    "{'TableName':'docs','AttributeDefinitions':[{'AttributeName':'color','AttributeType':'S'}],'GlobalSecondaryIndexUpdates':[{"  \
    "'Create':{'IndexName':'byColor','KeySchema':[{'AttributeName':'color','KeyType':'HASH'}],'Projection':{'ProjectionType':"     \
    "'" proj "'}}}]}"
#define Q_COLOR(v)                                                                                                                 \
    "{'TableName':'docs','IndexName':'byColor','KeyConditionExpression':'color = :v','ExpressionAttributeValues':{':v':{'S':'" v   \
    "'}}}"

static int describe_has(store_t *s, const char *table, const char *key, const char *name)
{
    char req[256], *body;
    snprintf(req, sizeof(req), "{\"TableName\":\"%s\"}", table);
    assert_int_equal(call_raw(s, "DescribeTable", req, &body), 200);
    json_t *o = json_loads(body, 0, NULL), *t = json_object_get(o, "Table"), *e;
    size_t i;
    int found = 0;
    free(body);
    json_array_foreach(json_object_get(t, key), i, e)
    {
        const char *n =
            json_string_value(json_object_get(e, strcmp(key, "AttributeDefinitions") == 0 ? "AttributeName" : "IndexName"));
        found = found || (n != NULL && strcmp(n, name) == 0);
    }
    json_decref(o);
    return found;
}

static void test_update_table_create_backfills(void **state)
{
    store_t *s = S(state);
    int acked = 0;
    make_docs(s);
    for (int i = 0; i != 10; ++i)
        put_async(s, &acked, "docs", "{\"pk\":{\"S\":\"a\"},\"sk\":{\"S\":\"%d\"},\"color\":{\"%s\":\"%s\"}}", i,
                  i % 3 == 0 ? "N" : "S",
                  i % 3 == 0 ? "7"
                  : i % 2    ? "red"
                             : "blue");
    put_async(s, &acked, "docs", "{\"pk\":{\"S\":\"b\"},\"sk\":{\"S\":\"0\"},\"color\":{\"S\":\"\"}}");
    put_async(s, &acked, "docs", "{\"pk\":{\"S\":\"b\"},\"sk\":{\"S\":\"1\"}}");
    store_flush(s);
    assert_int_equal(acked, 12);
    assert_false(describe_has(s, "docs", "AttributeDefinitions", "color"));
    json_t *o = read_ok(s, "UpdateTable", CREATE_COLOR("ALL")), *d = json_object_get(o, "TableDescription");
    assert_int_equal(json_array_size(json_object_get(d, "GlobalSecondaryIndexes")), 3);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(d, "GlobalSecondaryIndexes"), 2), "IndexStatus")),
        "ACTIVE");
    json_decref(o);
    assert_true(describe_has(s, "docs", "GlobalSecondaryIndexes", "byColor"));
    assert_true(describe_has(s, "docs", "AttributeDefinitions", "color"));
    /* filled from the items: numbers (of the wrong type) and an empty string left out */
    QV(s, Q_COLOR("red"), "sk", "1,5,7");
    QV(s, Q_COLOR("blue"), "sk", "2,4,8");
    SV(s, "{'TableName':'docs','IndexName':'byColor'}", "sk", "2,4,8,1,5,7");
    /* maintained from now on, and its type enforced */
    expect(s, "PutItem", "{'TableName':'docs','Item':{'pk':{'S':'c'},'sk':{'S':'1'},'color':{'N':'1'}}}", 400,
           "Type mismatch for Index Key color Expected: S Actual: N IndexName: byColor");
    expect(s, "PutItem", "{'TableName':'docs','Item':{'pk':{'S':'a'},'sk':{'S':'0'},'color':{'S':'red'}}}", 200, "{}");
    expect(s, "DeleteItem", "{'TableName':'docs','Key':{'pk':{'S':'a'},'sk':{'S':'5'}}}", 200, "{}");
    QV(s, Q_COLOR("red"), "sk", "0,1,7");
    /* an old item of the wrong type may be rewritten only with a right one: updating another attribute is refused */
    expect(s, "UpdateItem",
           "{'TableName':'docs','Key':{'pk':{'S':'a'},'sk':{'S':'3'}},'UpdateExpression':'SET x = :x',"
           "'ExpressionAttributeValues':{':x':{'S':'1'}}}",
           400, "Type mismatch for Index Key color");
    expect(s, "UpdateItem",
           "{'TableName':'docs','Key':{'pk':{'S':'a'},'sk':{'S':'3'}},'UpdateExpression':'SET color = :x',"
           "'ExpressionAttributeValues':{':x':{'S':'blue'}}}",
           200, "{}");
    QV(s, Q_COLOR("blue"), "sk", "2,3,4,8");
    /* a KEYS_ONLY one made later holds the keys only */
    expect(s, "UpdateTable",
           "{'TableName':'docs','GlobalSecondaryIndexUpdates':[{'Create':{'IndexName':'bySk','KeySchema':[{'AttributeName':'sk',"
           "'KeyType':'HASH'}],'Projection':{'ProjectionType':'KEYS_ONLY'}}}]}",
           200, "bySk");
    NAMES(s, "Query",
          "{'TableName':'docs','IndexName':'bySk','KeyConditionExpression':'sk = :v','ExpressionAttributeValues':{':v':{'S':'3'}}}",
          "pk,sk");
}

static void test_update_table_errors(void **state)
{
    store_t *s = S(state);
    make_docs(s);
    expect(s, "UpdateTable",
           "{'TableName':'docs','AttributeDefinitions':[{'AttributeName':'c','AttributeType':'S'},{'AttributeName':'d',"
           "'AttributeType':'S'}],'GlobalSecondaryIndexUpdates':[{'Create':{'IndexName':'byC','KeySchema':[{'AttributeName':'c',"
           "'KeyType':'HASH'}],'Projection':{'ProjectionType':'ALL'}}},{'Create':{'IndexName':'byD','KeySchema':[{"
           "'AttributeName':'d','KeyType':'HASH'}],'Projection':{'ProjectionType':'ALL'}}}]}",
           400, "LimitExceededException");
    expect(s, "UpdateTable",
           "{'TableName':'docs','AttributeDefinitions':[{'AttributeName':'c','AttributeType':'S'}],'GlobalSecondaryIndexUpdates':[{"
           "'Create':{'IndexName':'byC','KeySchema':[{'AttributeName':'c','KeyType':'HASH'}],'Projection':{'ProjectionType':"
           "'ALL'}}},{'Delete':{'IndexName':'byStat'}}]}",
           400, "Only 1 online index can be created or deleted simultaneously per table");
    assert_false(describe_has(s, "docs", "GlobalSecondaryIndexes", "byC"));
    assert_true(describe_has(s, "docs", "GlobalSecondaryIndexes", "byStat"));
    /* an index name taken (by a global or a local index) */
    expect(s, "UpdateTable",
           "{'TableName':'docs','GlobalSecondaryIndexUpdates':[{'Create':{'IndexName':'byStat','KeySchema':[{'AttributeName':'who',"
           "'KeyType':'HASH'}],'Projection':{'ProjectionType':'ALL'}}}]}",
           400, "Index with name: byStat already exists");
    expect(s, "UpdateTable",
           "{'TableName':'docs','GlobalSecondaryIndexUpdates':[{'Create':{'IndexName':'byLvl','KeySchema':[{'AttributeName':'who',"
           "'KeyType':'HASH'}],'Projection':{'ProjectionType':'ALL'}}}]}",
           400, "Index with name: byLvl already exists");
    /* key attributes not defined; a type changed */
    expect(s, "UpdateTable",
           "{'TableName':'docs','GlobalSecondaryIndexUpdates':[{'Create':{'IndexName':'byC','KeySchema':[{'AttributeName':'c',"
           "'KeyType':'HASH'}],'Projection':{'ProjectionType':'ALL'}}}]}",
           400, "Some index key attributes are not defined in AttributeDefinitions");
    expect(
        s, "UpdateTable",
        "{'TableName':'docs','AttributeDefinitions':[{'AttributeName':'who','AttributeType':'N'}],'GlobalSecondaryIndexUpdates':[{"
        "'Create':{'IndexName':'byC','KeySchema':[{'AttributeName':'who','KeyType':'HASH'}],'Projection':{'ProjectionType':"
        "'ALL'}}}]}",
        400, "Cannot change the type of attribute who from S to N");
    expect(s, "UpdateTable", "{'TableName':'docs','GlobalSecondaryIndexUpdates':[{'Delete':{'IndexName':'nope'}}]}", 400,
           "ResourceNotFoundException");
    expect(s, "UpdateTable", "{'TableName':'docs','GlobalSecondaryIndexUpdates':[{'Delete':{'IndexName':'byLvl'}}]}", 400,
           "ResourceNotFoundException");
    expect(s, "UpdateTable", "{'TableName':'nope','GlobalSecondaryIndexUpdates':[{'Delete':{'IndexName':'byStat'}}]}", 400,
           "ResourceNotFoundException");
    expect(s, "UpdateTable", "{'TableName':'docs'}", 400, VALIDATION);
    /* nothing was made by the refused calls: the names are free */
    expect(s, "UpdateTable",
           "{'TableName':'docs','AttributeDefinitions':[{'AttributeName':'c','AttributeType':'S'}],'GlobalSecondaryIndexUpdates':[{"
           "'Create':{'IndexName':'byC','KeySchema':[{'AttributeName':'c','KeyType':'HASH'}],'Projection':{'ProjectionType':"
           "'ALL'}}}]}",
           200, "byC");
    /* an Update alone records the throughput */
    expect(s, "UpdateTable",
           "{'TableName':'docs','GlobalSecondaryIndexUpdates':[{'Update':{'IndexName':'byWho','ProvisionedThroughput':{"
           "'ReadCapacityUnits':3,'WriteCapacityUnits':4}}}]}",
           200, "'ReadCapacityUnits':3,'WriteCapacityUnits':4");
    /* an Update of an index created in the same call: refused */
    expect(s, "UpdateTable",
           "{'TableName':'docs','AttributeDefinitions':[{'AttributeName':'d','AttributeType':'S'}],'GlobalSecondaryIndexUpdates':[{"
           "'Create':{'IndexName':'byD','KeySchema':[{'AttributeName':'d','KeyType':'HASH'}],'Projection':{'ProjectionType':"
           "'ALL'}}},{'Update':{'IndexName':'byWho','ProvisionedThroughput':{'ReadCapacityUnits':1,'WriteCapacityUnits':1}}}]}",
           400, VALIDATION);
    /* an Update beside a Delete: each applies to the index it names (the Update's name is not the Delete's) */
    expect(s, "UpdateTable",
           "{'TableName':'docs','GlobalSecondaryIndexUpdates':[{'Delete':{'IndexName':'byStat'}},{'Update':{'IndexName':'byWho',"
           "'ProvisionedThroughput':{'ReadCapacityUnits':5,'WriteCapacityUnits':6}}}]}",
           200, "'ReadCapacityUnits':5,'WriteCapacityUnits':6");
    assert_true(describe_has(s, "docs", "GlobalSecondaryIndexes", "byWho"));
    assert_false(describe_has(s, "docs", "GlobalSecondaryIndexes", "byStat"));
    expect(s, "Scan", "{'TableName':'docs','IndexName':'byWho'}", 200, "'Count':0");
    expect(s, "Scan", "{'TableName':'docs','IndexName':'byStat'}", 400, "does not have the specified index");
    /* the Update of a missing index fails the call: the Delete beside it does not happen */
    expect(s, "UpdateTable",
           "{'TableName':'docs','GlobalSecondaryIndexUpdates':[{'Delete':{'IndexName':'byC'}},{'Update':{'IndexName':'byStat',"
           "'ProvisionedThroughput':{'ReadCapacityUnits':5,'WriteCapacityUnits':6}}}]}",
           400, "Index: byStat not found");
    assert_true(describe_has(s, "docs", "GlobalSecondaryIndexes", "byC"));
}

static void test_update_table_delete(void **state)
{
    store_t *s = S(state);
    make_docs(s);
    expect(s, "PutItem",
           "{'TableName':'docs','Item':{'pk':{'S':'a'},'sk':{'S':'1'},'stat':{'S':'open'},'who':{'S':'w'},'pts':{'N':'1'}}}", 200,
           "{}");
    expect(s, "PutItem", "{'TableName':'docs','Item':{'pk':{'S':'a'},'sk':{'S':'2'},'stat':{'S':'open'}}}", 200, "{}");
    json_t *o = read_ok(s, "UpdateTable", "{'TableName':'docs','GlobalSecondaryIndexUpdates':[{'Delete':{'IndexName':'byStat'}}]}");
    json_decref(o);
    expect(s, "Query", Q_STAT("open"), 400, "The table does not have the specified index: byStat");
    assert_false(describe_has(s, "docs", "GlobalSecondaryIndexes", "byStat"));
    assert_true(describe_has(s, "docs", "GlobalSecondaryIndexes", "byWho"));
    /* its attribute left AttributeDefinitions: any type goes now */
    assert_false(describe_has(s, "docs", "AttributeDefinitions", "stat"));
    assert_true(describe_has(s, "docs", "AttributeDefinitions", "who"));
    expect(s, "PutItem", "{'TableName':'docs','Item':{'pk':{'S':'a'},'sk':{'S':'3'},'stat':{'N':'1'}}}", 200, "{}");
    expect(s, "PutItem", "{'TableName':'docs','Item':{'pk':{'S':'a'},'sk':{'S':'4'},'stat':{'S':'open'}}}", 200, "{}");
    /* made again (keys of another type this time): filled from the items as they are now, no stale entry */
    expect(
        s, "UpdateTable",
        "{'TableName':'docs','AttributeDefinitions':[{'AttributeName':'stat','AttributeType':'N'}],'GlobalSecondaryIndexUpdates':[{"
        "'Create':{'IndexName':'byStat','KeySchema':[{'AttributeName':'stat','KeyType':'HASH'}],'Projection':{'ProjectionType':"
        "'KEYS_ONLY'}}}]}",
        200, "byStat");
    SV(s, "{'TableName':'docs','IndexName':'byStat'}", "sk", "3");
    expect(s, "Query", Q_STAT("open"), 400, "Condition parameter type does not match schema type");
    /* the last global index deleted: none listed */
    expect(s, "UpdateTable", "{'TableName':'docs','GlobalSecondaryIndexUpdates':[{'Delete':{'IndexName':'byStat'}}]}", 200, "{");
    expect(s, "UpdateTable", "{'TableName':'docs','GlobalSecondaryIndexUpdates':[{'Delete':{'IndexName':'byWho'}}]}", 200, "{");
    o = read_ok(s, "DescribeTable", "{'TableName':'docs'}");
    assert_null(json_object_get(json_object_get(o, "Table"), "GlobalSecondaryIndexes"));
    assert_int_equal(json_array_size(json_object_get(json_object_get(o, "Table"), "LocalSecondaryIndexes")), 2);
    assert_int_equal(json_array_size(json_object_get(json_object_get(o, "Table"), "AttributeDefinitions")), 4);
    json_decref(o);
    expect(s, "PutItem", "{'TableName':'docs','Item':{'pk':{'S':'a'},'sk':{'S':'5'},'who':{'N':'1'},'pts':{'S':'x'}}}", 200, "{}");
}

static void test_delete_create_table_no_stale(void **state)
{
    store_t *s = S(state);
    make_docs(s);
    expect(s, "PutItem",
           "{'TableName':'docs','Item':{'pk':{'S':'a'},'sk':{'S':'1'},'stat':{'S':'open'},'who':{'S':'w'},'pts':{'N':'1'},'lvl':{'"
           "N':'1'}}}",
           200, "{}");
    expect(s, "DeleteTable", "{'TableName':'docs'}", 200, "DELETING");
    /* the same name, other indexes: byStat keyed by another attribute, byWho gone, a new one */
    expect(
        s, "CreateTable",
        "{'TableName':'docs','KeySchema':[{'AttributeName':'pk','KeyType':'HASH'},{'AttributeName':'sk','KeyType':'RANGE'}],"
        "'AttributeDefinitions':[{'AttributeName':'pk','AttributeType':'S'},{'AttributeName':'sk','AttributeType':'S'},"
        "{'AttributeName':'who','AttributeType':'S'},{'AttributeName':'lvl','AttributeType':'S'}],'BillingMode':'PAY_PER_REQUEST',"
        "'GlobalSecondaryIndexes':[{'IndexName':'byStat','KeySchema':[{'AttributeName':'who','KeyType':'HASH'}],'Projection':{"
        "'ProjectionType':'ALL'}},{'IndexName':'byNew','KeySchema':[{'AttributeName':'sk','KeyType':'HASH'}],'Projection':{"
        "'ProjectionType':'ALL'}}],'LocalSecondaryIndexes':[{'IndexName':'byLvl','KeySchema':[{'AttributeName':'pk','KeyType':"
        "'HASH'},{'AttributeName':'lvl','KeyType':'RANGE'}],'Projection':{'ProjectionType':'ALL'}}]}",
        200, "ACTIVE");
    SV(s, "{'TableName':'docs','IndexName':'byStat'}", "pk", "");
    SV(s, "{'TableName':'docs','IndexName':'byNew'}", "pk", "");
    SV(s, "{'TableName':'docs','IndexName':'byLvl'}", "pk", "");
    expect(s, "Scan", "{'TableName':'docs','IndexName':'byWho'}", 400, "The table does not have the specified index: byWho");
    expect(s, "Scan", "{'TableName':'docs','IndexName':'byDt'}", 400, "The table does not have the specified index: byDt");
    /* the new types hold */
    expect(s, "PutItem", "{'TableName':'docs','Item':{'pk':{'S':'a'},'sk':{'S':'1'},'lvl':{'N':'1'}}}", 400,
           "Expected: S Actual: N");
    expect(s, "PutItem", "{'TableName':'docs','Item':{'pk':{'S':'a'},'sk':{'S':'1'},'who':{'S':'w'},'lvl':{'S':'x'}}}", 200, "{}");
    QV(s,
       "{'TableName':'docs','IndexName':'byStat','KeyConditionExpression':'who = :w','ExpressionAttributeValues':{':w':{'S':'w'}}}",
       "lvl", "x");
    SV(s, "{'TableName':'docs','IndexName':'byNew'}", "pk", "a");
    SV(s, "{'TableName':'docs','IndexName':'byLvl'}", "lvl", "x");
    /* and without indexes */
    expect(s, "DeleteTable", "{'TableName':'docs'}", 200, "DELETING");
    make_table(s, "docs", "pk", "S", "sk", "S");
    expect(s, "Scan", "{'TableName':'docs','IndexName':'byStat'}", 400, "The table does not have the specified index: byStat");
    expect(s, "PutItem", "{'TableName':'docs','Item':{'pk':{'S':'a'},'sk':{'S':'1'},'who':{'N':'1'},'lvl':{'N':'2'}}}", 200, "{}");
}

static void reopen(void **state)
{
    fixture_t *f = *state;
    char err[256];
    store_close(f->s);
    f->s = NULL;
    store_options_t o = {.dir = f->dir, .map_size = 64 << 20};
    if (store_open(&f->s, &o, err, sizeof(err)) != 0) {
        fprintf(stderr, "store_open: %s\n", err);
        fail();
    }
}

static void test_reopen(void **state)
{
    load_who(S(state));
    expect(S(state), "PutItem", "{'TableName':'docs','Item':{'pk':{'S':'c'},'sk':{'S':'1'},'stat':{'S':'open'}}}", 200, "{}");
    expect(S(state), "UpdateTable", CREATE_COLOR("KEYS_ONLY"), 200, "byColor");
    expect(S(state), "PutItem", "{'TableName':'docs','Item':{'pk':{'S':'c'},'sk':{'S':'2'},'color':{'S':'red'}}}", 200, "{}");
    expect(S(state), "UpdateTimeToLive", "{'TableName':'docs','TimeToLiveSpecification':{'AttributeName':'exp','Enabled':true}}",
           200, "Enabled");
    reopen(state);
    store_t *s = S(state);
    QV(s, Q_WHO("ann"), "sk", "1,2,3,4,5,6");
    QV(s, Q_STAT("open"), "pk", "c");
    QV(s, Q_COLOR("red"), "sk", "2");
    QV(s, Q_LVL("a"), "sk", "6,5,4,3,2,1");
    /* written after the reopen: the indexes and the TTL are maintained */
    expectf(s, "PutItem", 200, "{}",
            "{'TableName':'docs','Item':{'pk':{'S':'c'},'sk':{'S':'3'},'color':{'S':'red'},'exp':{'N':'%lld'}}}",
            (long long)time(NULL) - 10);
    expect(s, "PutItem", "{'TableName':'docs','Item':{'pk':{'S':'c'},'sk':{'S':'4'},'color':{'S':'red'}}}", 200, "{}");
    QV(s, Q_COLOR("red"), "sk", "2,4");
    expect(s, "PutItem", "{'TableName':'docs','Item':{'pk':{'S':'c'},'sk':{'S':'5'},'color':{'N':'1'}}}", 400, "byColor");
    expect(s, "DescribeTimeToLive", "{'TableName':'docs'}", 200, "'TimeToLiveStatus':'ENABLED','AttributeName':'exp'");
    reopen(state);
    s = S(state);
    QV(s, Q_COLOR("red"), "sk", "2,4");
    expect(s, "DeleteTable", "{'TableName':'docs'}", 200, "DELETING");
    reopen(state);
    s = S(state);
    expect(s, "DescribeTable", "{'TableName':'docs'}", 400, "ResourceNotFoundException");
}

/* ---- TTL ---- */

static long long now_s(void)
{
    return (long long)time(NULL);
}

#define ENABLE_TTL(t) "{'TableName':'" t "','TimeToLiveSpecification':{'AttributeName':'exp','Enabled':true}}"
#define DISABLE_TTL(t) "{'TableName':'" t "','TimeToLiveSpecification':{'AttributeName':'exp','Enabled':false}}"

static void test_ttl_describe_update(void **state)
{
    store_t *s = S(state);
    make_table(s, "exps", "pk", "S", NULL, NULL);
    expect_exact(s, "DescribeTimeToLive", "{'TableName':'exps'}", 200, "{'TimeToLiveDescription':{'TimeToLiveStatus':'DISABLED'}}");
    expect_exact(s, "UpdateTimeToLive", ENABLE_TTL("exps"), 200,
                 "{'TimeToLiveSpecification':{'AttributeName':'exp','Enabled':true}}");
    expect_exact(s, "DescribeTimeToLive", "{'TableName':'exps'}", 200,
                 "{'TimeToLiveDescription':{'TimeToLiveStatus':'ENABLED','AttributeName':'exp'}}");
    expect(s, "UpdateTimeToLive", ENABLE_TTL("exps"), 400, "TimeToLive is already enabled");
    expect(s, "UpdateTimeToLive", "{'TableName':'exps','TimeToLiveSpecification':{'AttributeName':'other','Enabled':true}}", 400,
           "TimeToLive is already enabled");
    /* not in DescribeTable's answer */
    expect(s, "DescribeTable", "{'TableName':'exps'}", 200, "'TableStatus':'ACTIVE'");
    char *body;
    assert_int_equal(call_raw(s, "DescribeTable", "{\"TableName\":\"exps\"}", &body), 200);
    assert_null(strstr(body, "EdgeTimeToLive"));
    free(body);
    expect(s, "UpdateTimeToLive", "{'TableName':'exps','TimeToLiveSpecification':{'AttributeName':'other','Enabled':false}}", 400,
           "TimeToLive is active on a different AttributeName: current AttributeName is exp");
    expect_exact(s, "UpdateTimeToLive", DISABLE_TTL("exps"), 200,
                 "{'TimeToLiveSpecification':{'AttributeName':'exp','Enabled':false}}");
    expect(s, "UpdateTimeToLive", DISABLE_TTL("exps"), 400, "TimeToLive is already disabled");
    expect_exact(s, "DescribeTimeToLive", "{'TableName':'exps'}", 200, "{'TimeToLiveDescription':{'TimeToLiveStatus':'DISABLED'}}");
    /* errors */
    expect(s, "DescribeTimeToLive", "{'TableName':'nope'}", 400, "ResourceNotFoundException");
    expect(s, "UpdateTimeToLive", ENABLE_TTL("nope"), 400, "ResourceNotFoundException");
    expect(s, "UpdateTimeToLive", "{'TableName':'exps'}", 400, VALIDATION);
    expect(s, "UpdateTimeToLive", "{'TableName':'exps','TimeToLiveSpecification':{'Enabled':true}}", 400, VALIDATION);
    expect(s, "UpdateTimeToLive", "{'TableName':'exps','TimeToLiveSpecification':{'AttributeName':'exp'}}", 400, VALIDATION);
    expect(s, "UpdateTimeToLive", "{'TableName':'exps','TimeToLiveSpecification':{'AttributeName':'','Enabled':true}}", 400,
           VALIDATION);
    /* enabled again */
    expect(s, "UpdateTimeToLive", ENABLE_TTL("exps"), 200, "{");
    expect(s, "DescribeTimeToLive", "{'TableName':'exps'}", 200, "ENABLED");
}

static void test_ttl_expired_invisible(void **state)
{
    store_t *s = S(state);
    long long now = now_s();
    make_table(s, "exps", "pk", "S", "sk", "N");
    expect(s, "UpdateTimeToLive", ENABLE_TTL("exps"), 200, "{");
    expectf(s, "PutItem", 200, "{}",
            "{'TableName':'exps','Item':{'pk':{'S':'a'},'sk':{'N':'1'},'exp':{'N':'%lld'},'x':{'S':'old'}}}", now - 100);
    expectf(s, "PutItem", 200, "{}", "{'TableName':'exps','Item':{'pk':{'S':'a'},'sk':{'N':'2'},'exp':{'N':'%lld'}}}", now + 3600);
    /* more than five years past: taken for a mistake, not expired */
    expectf(s, "PutItem", 200, "{}", "{'TableName':'exps','Item':{'pk':{'S':'a'},'sk':{'N':'3'},'exp':{'N':'%lld'}}}",
            now - 6 * 365 * 86400LL);
    /* not a number, or a fraction: as DynamoDB, only numbers count */
    expectf(s, "PutItem", 200, "{}", "{'TableName':'exps','Item':{'pk':{'S':'a'},'sk':{'N':'4'},'exp':{'S':'%lld'}}}", now - 100);
    expectf(s, "PutItem", 200, "{}", "{'TableName':'exps','Item':{'pk':{'S':'a'},'sk':{'N':'5'},'exp':{'N':'%lld.5'}}}", now - 100);
    expect_exact(s, "GetItem", "{'TableName':'exps','Key':{'pk':{'S':'a'},'sk':{'N':'1'}}}", 200, "{}");
    expect_exact(s, "GetItem", "{'TableName':'exps','Key':{'pk':{'S':'a'},'sk':{'N':'5'}}}", 200, "{}");
    expect(s, "GetItem", "{'TableName':'exps','Key':{'pk':{'S':'a'},'sk':{'N':'2'}}}", 200, "'Item'");
    expect(s, "GetItem", "{'TableName':'exps','Key':{'pk':{'S':'a'},'sk':{'N':'3'}}}", 200, "'Item'");
    QV(s, "{'TableName':'exps','KeyConditionExpression':'pk = :p','ExpressionAttributeValues':{':p':{'S':'a'}}}", "sk", "2,3,4");
    SV(s, "{'TableName':'exps'}", "sk", "2,3,4");
    expect(s, "Scan", "{'TableName':'exps','Select':'COUNT'}", 200, "'Count':3,'ScannedCount':3");
    expect_exact(s, "BatchGetItem",
                 "{'RequestItems':{'exps':{'Keys':[{'pk':{'S':'a'},'sk':{'N':'1'}},{'pk':{'S':'a'},'sk':{'N':'3'}}],"
                 "'ProjectionExpression':'sk'}}}",
                 200, "{'Responses':{'exps':[{'sk':{'N':'3'}}]},'UnprocessedKeys':{}}");
    expect_exact(
        s, "TransactGetItems",
        "{'TransactItems':[{'Get':{'TableName':'exps','Key':{'pk':{'S':'a'},'sk':{'N':'1'}}}},{'Get':{'TableName':'exps','Key':"
        "{'pk':{'S':'a'},'sk':{'N':'2'}},'ProjectionExpression':'sk'}}]}",
        200, "{'Responses':[{},{'Item':{'sk':{'N':'2'}}}]}");
    /* conditions do not see it */
    expect(s, "DeleteItem",
           "{'TableName':'exps','Key':{'pk':{'S':'a'},'sk':{'N':'1'}},'ConditionExpression':'attribute_exists(pk)'}", 400,
           "ConditionalCheckFailedException");
    expect(s, "TransactWriteItems",
           "{'TransactItems':[{'ConditionCheck':{'TableName':'exps','Key':{'pk':{'S':'a'},'sk':{'N':'1'}},'ConditionExpression':"
           "'attribute_exists(pk)'}}]}",
           400, "TransactionCanceledException");
    /* an UpdateItem makes a new item (nothing of the expired one) */
    expect_exact(
        s, "UpdateItem",
        "{'TableName':'exps','Key':{'pk':{'S':'a'},'sk':{'N':'1'}},'UpdateExpression':'SET y = :y','ReturnValues':'ALL_NEW',"
        "'ConditionExpression':'attribute_not_exists(x)','ExpressionAttributeValues':{':y':{'S':'new'}}}",
        200, "{'Attributes':{'pk':{'S':'a'},'sk':{'N':'1'},'y':{'S':'new'}}}");
    /* a PutItem over an expired item, with attribute_not_exists: the item is absent */
    expectf(s, "PutItem", 200, "{}", "{'TableName':'exps','Item':{'pk':{'S':'a'},'sk':{'N':'5'},'exp':{'N':'%lld'}}}", now - 50);
    expect(s, "PutItem",
           "{'TableName':'exps','Item':{'pk':{'S':'a'},'sk':{'N':'5'},'z':{'S':'fresh'}},'ConditionExpression':'attribute_not_"
           "exists(pk)',"
           "'ReturnValues':'ALL_OLD'}",
           200, "{}");
    expect_exact(s, "GetItem", "{'TableName':'exps','Key':{'pk':{'S':'a'},'sk':{'N':'5'}},'ProjectionExpression':'z'}", 200,
                 "{'Item':{'z':{'S':'fresh'}}}");
    /* an item whose expiry is removed or moved ahead is visible again */
    expectf(s, "PutItem", 200, "{}", "{'TableName':'exps','Item':{'pk':{'S':'b'},'sk':{'N':'1'},'exp':{'N':'%lld'}}}", now + 3600);
    expectf(
        s, "UpdateItem", 200, "{}",
        "{'TableName':'exps','Key':{'pk':{'S':'b'},'sk':{'N':'1'}},'UpdateExpression':'SET exp = :e','ExpressionAttributeValues':"
        "{':e':{'N':'%lld'}}}",
        now - 10);
    expect_exact(s, "GetItem", "{'TableName':'exps','Key':{'pk':{'S':'b'},'sk':{'N':'1'}}}", 200, "{}");
    /* TTL disabled: expired items are items again (not reaped yet) */
    expect(s, "UpdateTimeToLive", DISABLE_TTL("exps"), 200, "{");
    expect(s, "GetItem", "{'TableName':'exps','Key':{'pk':{'S':'b'},'sk':{'N':'1'}}}", 200, "'Item'");
}

static void test_ttl_reaper(void **state)
{
    store_t *s = S(state);
    long long now = now_s(), count = 0, bytes = 0;
    int acked = 0;
    make_table(s, "exps", "pk", "S", NULL, NULL);
    expect(s, "UpdateTimeToLive", ENABLE_TTL("exps"), 200, "{");
    for (int i = 0; i != 30; ++i)
        put_async(s, &acked, "exps", "{\"pk\":{\"S\":\"k%d\"},\"exp\":{\"N\":\"%lld\"}}", i, i % 3 == 0 ? now + 3600 : now - i);
    put_async(s, &acked, "exps", "{\"pk\":{\"S\":\"old\"},\"exp\":{\"N\":\"%lld\"}}", now - 6 * 365 * 86400LL);
    put_async(s, &acked, "exps", "{\"pk\":{\"S\":\"none\"}}");
    store_flush(s);
    assert_int_equal(acked, 32);
    /* 20 expired: the reaper deletes them, about once a second */
    for (int i = 0; i != 60; ++i) {
        counters(s, "exps", &count, &bytes);
        if (count == 12)
            break;
        usleep(100 * 1000);
    }
    assert_int_equal(count, 12);
    expect(s, "Scan", "{'TableName':'exps','Select':'COUNT'}", 200, "'Count':12");
    /* what was reaped is gone for good: disabling TTL does not bring it back */
    expect(s, "UpdateTimeToLive", DISABLE_TTL("exps"), 200, "{");
    expect(s, "Scan", "{'TableName':'exps','Select':'COUNT'}", 200, "'Count':12");
    expect(s, "GetItem", "{'TableName':'exps','Key':{'pk':{'S':'old'}}}", 200, "'Item'");
}

static void test_ttl_enable_hides_existing(void **state)
{
    store_t *s = S(state);
    long long now = now_s();
    make_docs(s);
    expectf(s, "PutItem", 200, "{}",
            "{'TableName':'docs','Item':{'pk':{'S':'a'},'sk':{'S':'1'},'stat':{'S':'open'},'exp':{'N':'%lld'}}}", now - 100);
    expectf(s, "PutItem", 200, "{}",
            "{'TableName':'docs','Item':{'pk':{'S':'a'},'sk':{'S':'2'},'stat':{'S':'open'},'lvl':{'N':'1'},'exp':{'N':'%lld'}}}",
            now + 3600);
    expectf(s, "PutItem", 200, "{}",
            "{'TableName':'docs','Item':{'pk':{'S':'a'},'sk':{'S':'3'},'stat':{'S':'open'},'lvl':{'N':'2'},'who':{'S':'w'},'pts':{'"
            "N':'1'},"
            "'exp':{'N':'%lld'}}}",
            now - 5);
    QV(s, Q_STAT("open"), "sk", "1,2,3");
    expect(s, "UpdateTimeToLive", ENABLE_TTL("docs"), 200, "{");
    expect_exact(s, "GetItem", GET_DOC("a", "1"), 200, "{}");
    /* index queries and scans skip expired items */
    QV(s, Q_STAT("open"), "sk", "2");
    QV(s, Q_LVL("a"), "sk", "2");
    QV(s, Q_WHO("w"), "sk", "");
    SV(s, "{'TableName':'docs','IndexName':'byStat'}", "sk", "2");
    SV(s, "{'TableName':'docs'}", "sk", "2");
    /* and the reaper takes them out of the indexes as well */
    long long count = 0, bytes = 0;
    for (int i = 0; i != 60; ++i) {
        counters(s, "docs", &count, &bytes);
        if (count == 1)
            break;
        usleep(100 * 1000);
    }
    assert_int_equal(count, 1);
    expect(s, "UpdateTimeToLive", DISABLE_TTL("docs"), 200, "{");
    QV(s, Q_STAT("open"), "sk", "2");
    SV(s, "{'TableName':'docs','IndexName':'byWho'}", "sk", "");
}

/* ---- versions (EdgeETag, EdgeIfMatch, EdgeIfNoneMatch) ---- */

/* The ETag of an answer (into buf): 16 hex digits, checked. */
static const char *etag_of_(store_t *s, const char *op, const char *req, char *buf, int line)
{
    json_t *o = read_ok_(s, op, req, line);
    const char *e = json_string_value(json_object_get(o, "ETag"));
    if (e == NULL || strlen(e) != 16 || strspn(e, "0123456789abcdef") != 16) {
        fprintf(stderr, "line %d: %s %s: no ETag of 16 hex digits (%s)\n", line, op, req, e ? e : "none");
        json_decref(o);
        fail();
    }
    strcpy(buf, e);
    json_decref(o);
    return buf;
}
#define etag_of(s, op, req, buf) etag_of_((s), (op), (req), (buf), __LINE__)

static void test_etags(void **state)
{
    store_t *s = S(state);
    char e1[17], e2[17], e3[17], e4[17];
    make_table(s, "ver", "pk", "S", NULL, NULL);
    etag_of(s, "PutItem", "{'TableName':'ver','Item':{'pk':{'S':'a'},'v':{'N':'1'}},'EdgeETag':true}", e1);
    etag_of(s, "GetItem", "{'TableName':'ver','Key':{'pk':{'S':'a'}},'EdgeETag':true}", e2);
    assert_string_equal(e1, e2);
    etag_of(s, "GetItem", "{'TableName':'ver','Key':{'pk':{'S':'a'}},'EdgeETag':true,'ProjectionExpression':'v'}", e2);
    assert_string_equal(e1, e2);
    expect(s, "GetItem", "{'TableName':'ver','Key':{'pk':{'S':'a'}},'EdgeETag':true}", 200, "'Item':{");
    /* no ETag unless asked */
    char *body;
    assert_int_equal(call_raw(s, "GetItem", "{\"TableName\":\"ver\",\"Key\":{\"pk\":{\"S\":\"a\"}}}", &body), 200);
    assert_null(strstr(body, "ETag"));
    free(body);
    /* an update changes it; the same content again gives the same one */
    etag_of(
        s, "UpdateItem",
        "{'TableName':'ver','Key':{'pk':{'S':'a'}},'UpdateExpression':'SET v = :v','ExpressionAttributeValues':{':v':{'N':'2'}},"
        "'EdgeETag':true,'ReturnValues':'ALL_NEW'}",
        e2);
    assert_string_not_equal(e1, e2);
    etag_of(s, "GetItem", "{'TableName':'ver','Key':{'pk':{'S':'a'}},'EdgeETag':true}", e3);
    assert_string_equal(e2, e3);
    /* If-Match: the wrong (old) ETag fails, the right one passes */
    expectf(s, "PutItem", 400, "ConditionalCheckFailedException",
            "{'TableName':'ver','Item':{'pk':{'S':'a'},'v':{'N':'3'}},'EdgeIfMatch':'%s'}", e1);
    expectf(
        s, "UpdateItem", 400, "ConditionalCheckFailedException",
        "{'TableName':'ver','Key':{'pk':{'S':'a'}},'UpdateExpression':'SET v = :v','ExpressionAttributeValues':{':v':{'N':'3'}},"
        "'EdgeIfMatch':'%s'}",
        e1);
    expectf(s, "DeleteItem", 400, "ConditionalCheckFailedException",
            "{'TableName':'ver','Key':{'pk':{'S':'a'}},'EdgeIfMatch':'%s'}", e1);
    char req[512];
    snprintf(req, sizeof(req), "{'TableName':'ver','Item':{'pk':{'S':'a'},'v':{'N':'1'}},'EdgeIfMatch':'%s','EdgeETag':true}", e2);
    etag_of(s, "PutItem", req, e4);
    assert_string_equal(e4, e1); /* the first content again */
    expect(s, "GetItem", "{'TableName':'ver','Key':{'pk':{'S':'a'}}}", 200, "'v':{'N':'1'}");
    /* If-Match on a missing item fails */
    expectf(s, "PutItem", 400, "ConditionalCheckFailedException", "{'TableName':'ver','Item':{'pk':{'S':'zz'}},'EdgeIfMatch':'%s'}",
            e4);
    /* If-None-Match: *: only when there is no item */
    expect(s, "PutItem", "{'TableName':'ver','Item':{'pk':{'S':'a'},'v':{'N':'9'}},'EdgeIfNoneMatch':'*'}", 400,
           "ConditionalCheckFailedException");
    expect(s, "UpdateItem",
           "{'TableName':'ver','Key':{'pk':{'S':'a'}},'UpdateExpression':'SET v = :v','ExpressionAttributeValues':{':v':{'N':'9'}},"
           "'EdgeIfNoneMatch':'*'}",
           400, "ConditionalCheckFailedException");
    expect(s, "GetItem", "{'TableName':'ver','Key':{'pk':{'S':'a'}}}", 200, "'v':{'N':'1'}");
    etag_of(s, "PutItem", "{'TableName':'ver','Item':{'pk':{'S':'b'}},'EdgeIfNoneMatch':'*','EdgeETag':true}", e3);
    expect(s, "PutItem", "{'TableName':'ver','Item':{'pk':{'S':'c'}},'EdgeIfNoneMatch':'x'}", 400, VALIDATION);
    expect(s, "PutItem", "{'TableName':'ver','Item':{'pk':{'S':'c'}},'EdgeIfMatch':7}", 400, "SerializationException");
    /* a delete with the right ETag */
    expectf(s, "DeleteItem", 200, "{}", "{'TableName':'ver','Key':{'pk':{'S':'b'}},'EdgeIfMatch':'%s'}", e3);
    expect_exact(s, "GetItem", "{'TableName':'ver','Key':{'pk':{'S':'b'}},'EdgeETag':true}", 200, "{}");
    /* an expired item has no version: If-None-Match passes over it */
    expect(s, "UpdateTimeToLive", ENABLE_TTL("ver"), 200, "{");
    expectf(s, "PutItem", 200, "{}", "{'TableName':'ver','Item':{'pk':{'S':'x'},'exp':{'N':'%lld'}}}", now_s() - 10);
    expect(s, "PutItem", "{'TableName':'ver','Item':{'pk':{'S':'x'}},'EdgeIfNoneMatch':'*'}", 200, "{}");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_create_with_indexes),
        T(test_put_update_delete),
        T(test_batch_and_transact_writes),
        T(test_wrong_type),
        T(test_empty_index_key),
        T(test_binary_and_long_index_keys),
        T(test_query_sort_conditions),
        T(test_query_paging_many_equal_keys),
        T(test_projections),
        T(test_consistent_read_and_unknown_index),
        T(test_update_table_create_backfills),
        T(test_update_table_errors),
        T(test_update_table_delete),
        T(test_delete_create_table_no_stale),
        T(test_reopen),
        T(test_ttl_describe_update),
        T(test_ttl_expired_invisible),
        T(test_ttl_reaper),
        T(test_ttl_enable_hides_existing),
        T(test_etags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
