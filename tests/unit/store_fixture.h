/*
 * The fixture of the item store's unit tests (test_store*.c): a store over a real LMDB environment in a fresh
 * mkdtemp() directory per test, and a synchronous call: writes are answered on the store's writer thread, so
 * store_call_wait() waits for the answer with a semaphore. Included by each test file (one binary each).
 */
#ifndef EDGEPROXY_TEST_STORE_FIXTURE_H
#define EDGEPROXY_TEST_STORE_FIXTURE_H

#include <ftw.h>
#include <jansson.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/store.h"

typedef struct fixture {
    char dir[64];
    store_t *s;
} fixture_t;

typedef struct result {
    sem_t sem;
    int status;
    char *body;
} result_t;

static inline void fixture_on_done(void *data, int status, char *body, size_t len)
{
    result_t *r = data;
    assert_int_equal(strlen(body), len);
    r->status = status;
    r->body = body;
    sem_post(&r->sem);
}

/* Runs one operation (req as it is) and waits for its answer; returns the status, *body the answer (freed by the
 * caller; NULL: freed here). */
static inline int store_call_wait(store_t *s, const char *op, const char *req, char **body)
{
    result_t r = {.status = -1};
    sem_init(&r.sem, 0, 0);
    store_call(s, op, req, strlen(req), fixture_on_done, &r);
    sem_wait(&r.sem);
    sem_destroy(&r.sem);
    if (body != NULL)
        *body = r.body;
    else
        free(r.body);
    return r.status;
}

static inline int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    char err[256];
    strcpy(f->dir, "/tmp/itemstore-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    store_options_t o = {.dir = f->dir, .map_size = 64 << 20};
    if (store_open(&f->s, &o, err, sizeof(err)) != 0) {
        fprintf(stderr, "store_open: %s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static inline int fixture_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static inline int teardown(void **state)
{
    fixture_t *f = *state;
    store_close(f->s);
    nftw(f->dir, fixture_rm_one, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

#define S(state) (((fixture_t *)*(state))->s)

/* Counts the acknowledged PutItems of put_async (on the writer thread). */
static inline void fixture_put_done(void *data, int status, char *body, size_t len)
{
    (void)len;
    if (status != 200)
        fprintf(stderr, "put failed: %d %s\n", status, body);
    else
        __atomic_add_fetch((int *)data, 1, __ATOMIC_SEQ_CST);
    free(body);
}

/* Queues a PutItem of the item fmt formats into table, without waiting (store_flush waits); *acked counts the
 * acknowledged ones. Many of them go into one write batch. */
static inline void put_async(store_t *s, int *acked, const char *table, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static inline void put_async(store_t *s, int *acked, const char *table, const char *fmt, ...)
{
    char item[4096], req[4400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(item, sizeof(item), fmt, ap);
    va_end(ap);
    snprintf(req, sizeof(req), "{\"TableName\":\"%s\",\"Item\":%s}", table, item);
    store_call(s, "PutItem", req, strlen(req), fixture_put_done, acked);
}

/* Creates a table (its key: pk, and sk when not NULL; types S, N or B), billed per request or, when provisioned is set,
 * with 5 read and 5 write capacity units; fails the test unless it is ACTIVE. */
static inline void make_table_as(store_t *s, const char *name, const char *pk, const char *pktype, const char *sk,
                                 const char *sktype, int provisioned)
{
    char req[1024], range[256] = "", rangedef[256] = "", *body;
    if (sk != NULL) {
        snprintf(range, sizeof(range), ",{\"AttributeName\":\"%s\",\"KeyType\":\"RANGE\"}", sk);
        snprintf(rangedef, sizeof(rangedef), ",{\"AttributeName\":\"%s\",\"AttributeType\":\"%s\"}", sk, sktype);
    }
    snprintf(req, sizeof(req),
             "{\"TableName\":\"%s\",\"KeySchema\":[{\"AttributeName\":\"%s\",\"KeyType\":\"HASH\"}%s],"
             "\"AttributeDefinitions\":[{\"AttributeName\":\"%s\",\"AttributeType\":\"%s\"}%s],%s}",
             name, pk, range, pk, pktype, rangedef,
             provisioned ? "\"ProvisionedThroughput\":{\"ReadCapacityUnits\":5,\"WriteCapacityUnits\":5}"
                         : "\"BillingMode\":\"PAY_PER_REQUEST\"");
    int st = store_call_wait(s, "CreateTable", req, &body);
    if (st != 200 || strstr(body, "\"TableStatus\":\"ACTIVE\"") == NULL) {
        fprintf(stderr, "CreateTable %s\n  got %d %s\n", req, st, body);
        free(body);
        fail();
    }
    free(body);
}

static inline void make_table(store_t *s, const char *name, const char *pk, const char *pktype, const char *sk, const char *sktype)
{
    make_table_as(s, name, pk, pktype, sk, sktype, 0);
}

/* A copy of text with ' turned into " (the caller frees it). */
static inline char *q(const char *text)
{
    char *c = strdup(text);
    assert_non_null(c);
    for (char *p = c; *p; ++p)
        if (*p == '\'')
            *p = '"';
    return c;
}

/* Runs an operation and checks its status and that its answer holds `want` (or equals it, when exact). With quoted_req
 * (quoted_want), req (want) is written with single quotes for double ones (a want quoting a parse error, "at '...'",
 * is as it is). */
static inline void expect_(store_t *s, const char *op, const char *req, int quoted_req, int quoted_want, int status,
                           const char *want, int exact, int line)
{
    char *r = quoted_req ? q(req) : strdup(req), *body;
    char *w = want == NULL ? NULL : quoted_want && strstr(want, "at '") == NULL ? q(want) : strdup(want);
    int st = store_call_wait(s, op, r, &body);
    if (st != status || (w != NULL && (exact ? strcmp(body, w) != 0 : strstr(body, w) == NULL))) {
        fprintf(stderr, "line %d: %s %.400s\n  got %d %s\n  want %d %s\n", line, op, r, st, body, status, w ? w : "");
        free(body);
        free(r);
        free(w);
        fail();
    }
    free(body);
    free(r);
    free(w);
}

#ifndef STORE_FIXTURE_QUOTED
/* The helpers of the tests that write their requests as they are (test_store.c, test_store_query.c). */
#define call store_call_wait

#define expect(s, op, req, status, want) expect_((s), (op), (req), 0, 0, (status), (want), 0, __LINE__)
#define expect_exact(s, op, req, status, want) expect_((s), (op), (req), 0, 0, (status), (want), 1, __LINE__)
#endif

#ifdef STORE_FIXTURE_QUOTED
/* The helpers of the tests that write their requests with single quotes (test_store_batch.c, test_store_transact.c). */
#define call_raw store_call_wait

#define expect(s, op, req, status, want) expect_((s), (op), (req), 1, 1, (status), (want), 0, __LINE__)
#define expect_exact(s, op, req, status, want) expect_((s), (op), (req), 1, 1, (status), (want), 1, __LINE__)
#define expect_raw(s, op, req, status, want) expect_((s), (op), (req), 0, 1, (status), (want), 0, __LINE__)

/* Two tables: "users" (pk S) with u1, u2, u3; "events" (pk N, sk S) with (1, a), (1, b), (2, a). */
static inline void fill(store_t *s)
{
    make_table(s, "users", "pk", "S", NULL, NULL);
    make_table(s, "events", "id", "N", "at", "S");
    expect(s, "PutItem", "{'TableName':'users','Item':{'pk':{'S':'u1'},'name':{'S':'Ann'},'age':{'N':'31'}}}", 200, "{}");
    expect(s, "PutItem", "{'TableName':'users','Item':{'pk':{'S':'u2'},'name':{'S':'Bob'},'age':{'N':'42'}}}", 200, "{}");
    expect(s, "PutItem", "{'TableName':'users','Item':{'pk':{'S':'u3'},'name':{'S':'Cy'}}}", 200, "{}");
    expect(s, "PutItem", "{'TableName':'events','Item':{'id':{'N':'1'},'at':{'S':'a'},'what':{'S':'login'}}}", 200, "{}");
    expect(s, "PutItem", "{'TableName':'events','Item':{'id':{'N':'1'},'at':{'S':'b'},'what':{'S':'logout'}}}", 200, "{}");
    expect(s, "PutItem", "{'TableName':'events','Item':{'id':{'N':'2'},'at':{'S':'a'},'what':{'S':'login'}}}", 200, "{}");
}

/* A DescribeTable's counters. */
static inline void counters(store_t *s, const char *table, long long *count, long long *bytes)
{
    char req[256], *body;
    snprintf(req, sizeof(req), "{\"TableName\":\"%s\"}", table);
    assert_int_equal(call_raw(s, "DescribeTable", req, &body), 200);
    json_t *o = json_loads(body, 0, NULL);
    assert_non_null(o);
    json_t *t = json_object_get(o, "Table");
    *count = json_integer_value(json_object_get(t, "ItemCount"));
    *bytes = json_integer_value(json_object_get(t, "TableSizeBytes"));
    json_decref(o);
    free(body);
}
#endif

#endif
