/*
 * A libFuzzer target for the item store's JSON request decoder: arbitrary bytes as the body of DynamoDB operations
 * through store_call (store/store.h) on a real store, and as the JSON of the value checks (store/value.h).
 *
 * Input: one selector byte, then the body. The selector's value modulo 16 picks what is run (the letters are the
 * seed corpus's, corpus/fuzz_request/):
 *
 *   P PutItem         Q Query            B BatchGetItem      S Scan              D DescribeTable
 *   U UpdateItem      V value checks     G GetItem           X DeleteItem        Y TransactGetItems
 *   Z TransactWriteItems                 K BatchWriteItem    L ListTables        M CreateTable
 *   N DeleteTable     O a named operation: the body starts with the operation's name ("OUpdateTable{...}"), letters
 *                       up to the first other byte (any operation the store knows, or an unknown one)
 *
 * The store is opened once (LLVMFuzzerInitialize) in a new directory under $TMPDIR, else /dev/shm (tmpfs: a commit's
 * fsync costs nothing there), else /tmp, and filled with three tables: "users" (pk S, a global index on name),
 * "events" (id N, at S, a local index on what) and "bins" (k B), a few items each. Reads answer on this thread;
 * writes are checked on this thread and, when valid, committed by the store's writer thread: the target waits for the
 * answer, then for store_flush, so that the writer has freed the request before the input ends (libFuzzer's leak
 * detection counts the mallocs and frees of each input). The store is rebuilt from that seed state every 512 writes
 * that reached the writer, so the state a crash depends on stays close to the seed state that a crash file is replayed
 * on.
 *
 * Every answer is checked (and freed): a NUL-terminated JSON object of the length given, status 200, 400 or 500, an
 * error with its "__type" and "message", and never a 500 for a read (a read has no reason to fail but a bug).
 * FUZZ_VERBOSE=1 in the environment prints every answer: running the target on the seed files shows what they do.
 *
 * The value checks ('V'): the body as JSON; an object goes through store_item_check_shape, store_item_check and
 * store_item_size, an array's elements (and any other value) through store_value_check_shape and store_value_check;
 * then what the store relies on is asserted on every checked value: its type, its equality to a copy of itself, that a
 * second check changes nothing, key checks, and for key values (S, N, B) that the key encoding decodes to the value
 * and orders as store_value_compare does, alone and in (partition, sort) pairs.
 */
#include <ftw.h>
#include <pthread.h>
#include <semaphore.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include "store/store.h"
#include "store/value.h"

#define CHECK(cond, what)                                                                                                          \
    do {                                                                                                                           \
        if (!(cond)) {                                                                                                             \
            fprintf(stderr, "fuzz_request: %s:%d: %s\n", __FILE__, __LINE__, (what));                                              \
            abort();                                                                                                               \
        }                                                                                                                          \
    } while (0)

#define RESET_AFTER 512 /* writes that reached the writer */

static store_t *S;
static char dir[4096];
static unsigned queued; /* writes answered by the writer since the store was (re)built */
static int verbose;     /* FUZZ_VERBOSE=1: print every answer (to see what the seeds do) */

/* ---- one call ---- */

typedef struct call {
    sem_t sem;
    pthread_t caller;
    int on_caller; /* answered on the calling thread (a read, or a write refused before it was queued) */
    int status;
    char *body;
    size_t len;
} call_t;

static void on_done(void *data, int status, char *body, size_t len)
{
    call_t *c = data;
    c->status = status;
    c->body = body;
    c->len = len;
    c->on_caller = pthread_equal(pthread_self(), c->caller);
    sem_post(&c->sem);
}

/* Runs op on body[0..len) and waits for the answer (and, after a write, for the writer to be done with it). Returns
 * the call with its answer's body, the caller's to free. */
static call_t call(const char *op, const char *body, size_t len)
{
    call_t c = {.status = -1};

    sem_init(&c.sem, 0, 0);
    c.caller = pthread_self();
    store_call(S, op, body, len, on_done, &c);
    sem_wait(&c.sem);
    sem_destroy(&c.sem);
    if (!c.on_caller) {
        /* the writer answers, then frees the job: let it finish before the input ends */
        store_flush(S);
        queued++;
    }
    return c;
}

static int is_read(const char *op)
{
    static const char *const reads[] = {"GetItem",          "Query",         "Scan",       "BatchGetItem",
                                        "TransactGetItems", "DescribeTable", "ListTables", "DescribeTimeToLive"};
    for (size_t i = 0; i != sizeof(reads) / sizeof(reads[0]); ++i)
        if (strcmp(op, reads[i]) == 0)
            return 1;
    return 0;
}

/* What every answer must be (store.h). */
static void check_answer(const char *op, const call_t *c)
{
    json_error_t e;
    json_t *o;

    if (verbose)
        fprintf(stderr, "%s: %d %.300s\n", op, c->status, c->body != NULL ? c->body : "(null)");
    CHECK(c->body != NULL, "an answer without a body");
    CHECK(strlen(c->body) == c->len, "an answer's length is not its body's");
    CHECK(c->status == 200 || c->status == 400 || c->status == 500, "an answer's status is not 200, 400 or 500");
    if (c->status == 500 && is_read(op)) {
        fprintf(stderr, "fuzz_request: %s answered 500: %s\n", op, c->body);
        CHECK(0, "a read answered 500 (an internal error)");
    }
    o = json_loadb(c->body, c->len, 0, &e);
    if (o == NULL || !json_is_object(o)) {
        fprintf(stderr, "fuzz_request: %s answered %d: %s\n", op, c->status, c->body);
        CHECK(0, "an answer that is not a JSON object");
    }
    if (c->status != 200) {
        json_t *t = json_object_get(o, "__type"), *m = json_object_get(o, "message");
        CHECK(json_is_string(t) && strchr(json_string_value(t), '#') != NULL, "an error answer without its __type");
        CHECK(json_is_string(m), "an error answer without its message");
    }
    json_decref(o);
}

/* ---- the store: open, fill, close ---- */

static void must(const char *op, const char *body)
{
    call_t c = call(op, body, strlen(body));
    if (c.status != 200) {
        fprintf(stderr, "fuzz_request: seeding the store: %s %s: %d %s\n", op, body, c.status, c.body ? c.body : "");
        abort();
    }
    free(c.body);
}

static void store_build(void)
{
    static const char *const seed[][2] = {
        {"CreateTable",
         "{\"TableName\":\"users\",\"KeySchema\":[{\"AttributeName\":\"pk\",\"KeyType\":\"HASH\"}],"
         "\"AttributeDefinitions\":[{\"AttributeName\":\"pk\",\"AttributeType\":\"S\"},{\"AttributeName\":\"name\","
         "\"AttributeType\":\"S\"}],\"GlobalSecondaryIndexes\":[{\"IndexName\":\"byName\",\"KeySchema\":[{\"AttributeName\":"
         "\"name\",\"KeyType\":\"HASH\"}],\"Projection\":{\"ProjectionType\":\"ALL\"}}],\"BillingMode\":\"PAY_PER_REQUEST\"}"},
        {"CreateTable",
         "{\"TableName\":\"events\",\"KeySchema\":[{\"AttributeName\":\"id\",\"KeyType\":\"HASH\"},{\"AttributeName\":\"at\","
         "\"KeyType\":\"RANGE\"}],\"AttributeDefinitions\":[{\"AttributeName\":\"id\",\"AttributeType\":\"N\"},"
         "{\"AttributeName\":\"at\",\"AttributeType\":\"S\"},{\"AttributeName\":\"what\",\"AttributeType\":\"S\"}],"
         "\"LocalSecondaryIndexes\":[{\"IndexName\":\"byWhat\",\"KeySchema\":[{\"AttributeName\":\"id\",\"KeyType\":\"HASH\"},"
         "{\"AttributeName\":\"what\",\"KeyType\":\"RANGE\"}],\"Projection\":{\"ProjectionType\":\"KEYS_ONLY\"}}],"
         "\"BillingMode\":\"PAY_PER_REQUEST\"}"},
        {"CreateTable", "{\"TableName\":\"bins\",\"KeySchema\":[{\"AttributeName\":\"k\",\"KeyType\":\"HASH\"}],"
                        "\"AttributeDefinitions\":[{\"AttributeName\":\"k\",\"AttributeType\":\"B\"}],"
                        "\"ProvisionedThroughput\":{\"ReadCapacityUnits\":5,\"WriteCapacityUnits\":5}}"},
        {"PutItem", "{\"TableName\":\"users\",\"Item\":{\"pk\":{\"S\":\"u1\"},\"name\":{\"S\":\"Ann\"},\"age\":{\"N\":\"31\"},"
                    "\"tags\":{\"SS\":[\"a\",\"b\"]},\"m\":{\"M\":{\"l\":{\"L\":[{\"N\":\"1\"},{\"S\":\"x\"}]}}}}}"},
        {"PutItem", "{\"TableName\":\"users\",\"Item\":{\"pk\":{\"S\":\"u2\"},\"name\":{\"S\":\"Bob\"},\"age\":{\"N\":\"42\"}}}"},
        {"PutItem", "{\"TableName\":\"users\",\"Item\":{\"pk\":{\"S\":\"u3\"},\"n\":{\"N\":\"0\"},\"b\":{\"B\":\"YWJj\"}}}"},
        {"PutItem", "{\"TableName\":\"events\",\"Item\":{\"id\":{\"N\":\"1\"},\"at\":{\"S\":\"a\"},\"what\":{\"S\":\"login\"}}}"},
        {"PutItem", "{\"TableName\":\"events\",\"Item\":{\"id\":{\"N\":\"1\"},\"at\":{\"S\":\"b\"},\"what\":{\"S\":\"logout\"}}}"},
        {"PutItem", "{\"TableName\":\"events\",\"Item\":{\"id\":{\"N\":\"2\"},\"at\":{\"S\":\"a\"},\"n\":{\"NS\":[\"1\",\"2\"]}}}"},
        {"PutItem", "{\"TableName\":\"bins\",\"Item\":{\"k\":{\"B\":\"AAE=\"},\"v\":{\"BOOL\":true}}}"},
        {"PutItem", "{\"TableName\":\"bins\",\"Item\":{\"k\":{\"B\":\"/w==\"},\"v\":{\"NULL\":true}}}"},
    };
    /* schema validation rules on two of the tables (the seeds follow them), so that writes go through them too */
    static const char *const levels[] = {"1", "2.5", "1E+2"};
    static const store_attr_rule_t user_rules[] = {
        {.name = "age", .type = "N", .min = "0", .max = "150", .min_length = -1, .max_length = -1},
        {.name = "tags", .min_length = -1, .max_length = 4},
    };
    static const store_attr_rule_t event_rules[] = {
        {.name = "what", .type = "S", .min_length = 1, .max_length = 16, .pattern = "^[a-z]+$"},
        {.name = "level", .type = "N", .enums = levels, .nenums = 3, .min_length = -1, .max_length = -1},
    };
    static const store_table_rules_t rules[] = {{"users", user_rules, 2}, {"events", event_rules, 2}};
    store_options_t o = {.dir = dir, .map_size = 32 << 20, .rules = rules, .nrules = 2};
    char err[256];

    if (store_open(&S, &o, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_request: store_open %s: %s\n", dir, err);
        abort();
    }
    for (size_t i = 0; i != sizeof(seed) / sizeof(seed[0]); ++i)
        must(seed[i][0], seed[i][1]);
    must("Scan", "{\"TableName\":\"users\"}"); /* this thread's read transaction is made now, not in an input */
    queued = 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void store_destroy(void)
{
    store_close(S);
    S = NULL;
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void at_exit(void)
{
    if (S != NULL)
        store_destroy();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR");

    (void)argc, (void)argv;
    verbose = getenv("FUZZ_VERBOSE") != NULL && strcmp(getenv("FUZZ_VERBOSE"), "1") == 0;
    if (tmp == NULL || *tmp == '\0')
        tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof(dir), "%s/edgeproxy-fuzz-XXXXXX", tmp);
    if (mkdtemp(dir) == NULL) {
        perror("fuzz_request: mkdtemp");
        abort();
    }
    store_build();
    atexit(at_exit);
    return 0;
}

/* ---- the value checks ---- */

#define MAX_KEYS 16

static int sign(int x)
{
    return (x > 0) - (x < 0);
}

/* LMDB's default order of two keys: memcmp over the shorter length, then the shorter first. */
static int key_order(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c != 0 ? sign(c) : (alen > blen) - (alen < blen);
}

static uint8_t *encode(const json_t *av, size_t *len)
{
    size_t n = store_key_encode(av, NULL, 0);
    uint8_t *buf;

    CHECK(n > 0, "store_key_encode: 0 bytes for a key value");
    CHECK((buf = malloc(n + 1)) != NULL, "out of memory");
    CHECK(store_key_encode(av, buf, n) == n, "store_key_encode: another length with a buffer");
    *len = n;
    return buf;
}

static uint8_t *encode_pair(const json_t *pk, const json_t *sk, size_t *len)
{
    size_t n = store_key_encode_pair(pk, sk, NULL, 0);
    uint8_t *buf;

    CHECK(n > 0, "store_key_encode_pair: 0 bytes");
    CHECK((buf = malloc(n)) != NULL, "out of memory");
    CHECK(store_key_encode_pair(pk, sk, buf, n) == n, "store_key_encode_pair: another length with a buffer");
    *len = n;
    return buf;
}

/* A key value (checked, S, N or B, not empty): its encoding decodes to it, alone and as a pair's halves. */
static void check_key_roundtrip(const json_t *av)
{
    store_type_t t = store_value_type(av);
    size_t n;
    uint8_t *buf = encode(av, &n);
    json_t *back = store_key_decode(t, buf, n), *pk, *sk;

    CHECK(back != NULL && store_value_equal(back, av), "store_key_decode(store_key_encode(v)) is not v");
    json_decref(back);
    free(buf);
    buf = encode_pair(av, NULL, &n);
    CHECK(store_key_decode_pair(buf, n, t, STORE_T_NONE, &pk, &sk) == 0 && pk != NULL && sk == NULL && store_value_equal(pk, av),
          "store_key_decode_pair(store_key_encode_pair(v, NULL)) is not v");
    json_decref(pk);
    free(buf);
}

/* Two key values of one type: their encodings order as store_value_compare orders them. */
static int check_key_order(const json_t *a, const json_t *b)
{
    size_t alen, blen;
    uint8_t *ea = encode(a, &alen), *eb = encode(b, &blen);
    int cmp = 2;

    CHECK(store_value_compare(a, b, &cmp) == 0 && cmp >= -1 && cmp <= 1, "store_value_compare failed on two key values");
    if (key_order(ea, alen, eb, blen) != cmp) {
        char *ta = json_dumps(a, JSON_COMPACT), *tb = json_dumps(b, JSON_COMPACT);
        fprintf(stderr, "fuzz_request: %s vs %s: compare %d, encodings %d\n", ta, tb, cmp, key_order(ea, alen, eb, blen));
        free(ta);
        free(tb);
        CHECK(0, "the key encodings do not order as store_value_compare");
    }
    CHECK(cmp != 0 || (alen == blen && memcmp(ea, eb, alen) == 0), "two equal key values encode differently");
    free(ea);
    free(eb);
    return cmp;
}

/* Two (partition, sort) pairs of matching types: they order by partition key, then by sort key; a pair decodes. */
static void check_pair_order(const json_t *pk1, const json_t *sk1, const json_t *pk2, const json_t *sk2)
{
    size_t l1, l2;
    uint8_t *e1 = encode_pair(pk1, sk1, &l1), *e2 = encode_pair(pk2, sk2, &l2);
    int want = check_key_order(pk1, pk2);
    json_t *pk, *sk;

    if (want == 0)
        want = check_key_order(sk1, sk2);
    CHECK(key_order(e1, l1, e2, l2) == want, "pair encodings do not order by partition key, then sort key");
    CHECK(store_key_decode_pair(e1, l1, store_value_type(pk1), store_value_type(sk1), &pk, &sk) == 0 && pk != NULL && sk != NULL &&
              store_value_equal(pk, pk1) && store_value_equal(sk, sk1),
          "store_key_decode_pair(store_key_encode_pair(pk, sk)) is not (pk, sk)");
    json_decref(pk);
    json_decref(sk);
    free(e1);
    free(e2);
}

/* A checked value: what the rest of the store relies on. Returns 1 when it is a usable key value. */
static int check_checked_value(json_t *av)
{
    char err[1024];
    store_type_t t = store_value_type(av);
    json_t *copy = json_deep_copy(av);

    CHECK(t != STORE_T_NONE, "a checked value has no type");
    CHECK(store_type_of_name(store_type_name(t), strlen(store_type_name(t))) == t, "store_type_name / store_type_of_name");
    CHECK(copy != NULL, "out of memory");
    CHECK(store_value_check(copy, err, sizeof(err)) == 0 && json_equal(copy, av), "a second check changed a checked value");
    CHECK(store_value_equal(av, copy) && store_value_equal(copy, av), "a checked value is not equal to its copy");
    (void)store_value_size(av);
    json_decref(copy);
    if (t != STORE_T_S && t != STORE_T_N && t != STORE_T_B)
        return 0;
    if (store_key_check(av, t, "k", err, sizeof(err)) != 0)
        return 0; /* empty: never a key */
    (void)store_key_check_size(av, 0, err, sizeof(err));
    (void)store_key_check_size(av, 1, err, sizeof(err));
    check_key_roundtrip(av);
    return 1;
}

static void check_values(const char *body, size_t len)
{
    char err[1024];
    json_t *j = json_loadb(body, len, JSON_DECODE_ANY, NULL), *keys[MAX_KEYS], *v;
    size_t nkeys = 0, i;
    const char *name;

    if (j == NULL)
        return;
    if (json_is_object(j)) {
        int shape = store_item_check_shape(j, err, sizeof(err));
        int rc = store_item_check(j, err, sizeof(err));
        CHECK(rc == 0 || rc == STORE_VALUE_EINVALID || rc == STORE_VALUE_ESERIALIZE, "store_item_check: an unexpected result");
        CHECK(shape == 0 || rc == STORE_VALUE_ESERIALIZE, "store_item_check_shape failed but store_item_check did not");
        if (rc == 0) {
            json_t *copy = json_deep_copy(j);
            CHECK(store_item_size(j) <= STORE_ITEM_MAX, "a checked item is over the size limit");
            CHECK(copy != NULL && store_item_check(copy, err, sizeof(err)) == 0 && json_equal(copy, j),
                  "a second check changed a checked item");
            json_decref(copy);
            json_object_foreach(j, name, v)
            {
                if (check_checked_value(v) && nkeys < MAX_KEYS)
                    keys[nkeys++] = v;
            }
        }
    } else {
        json_t *one = json_array();
        CHECK(one != NULL, "out of memory");
        if (json_is_array(j))
            json_array_extend(one, j);
        else
            json_array_append(one, j);
        json_array_foreach(one, i, v)
        {
            int shape = store_value_check_shape(v, err, sizeof(err));
            int rc = store_value_check(v, err, sizeof(err));
            CHECK(rc == 0 || rc == STORE_VALUE_EINVALID || rc == STORE_VALUE_ESERIALIZE, "store_value_check: an unexpected result");
            CHECK(shape == 0 || rc == STORE_VALUE_ESERIALIZE, "store_value_check_shape failed but store_value_check did not");
            if (rc == 0 && check_checked_value(v) && nkeys < MAX_KEYS)
                keys[nkeys++] = v;
        }
        json_decref(one);
    }
    /* ordering: every two key values of one type; pairs of pairs whose types match */
    for (i = 0; i != nkeys; ++i)
        for (size_t k = i + 1; k != nkeys; ++k)
            if (store_value_type(keys[i]) == store_value_type(keys[k]))
                (void)check_key_order(keys[i], keys[k]);
    for (i = 0; i + 3 < nkeys; ++i)
        if (store_value_type(keys[i]) == store_value_type(keys[i + 2]) &&
            store_value_type(keys[i + 1]) == store_value_type(keys[i + 3]))
            check_pair_order(keys[i], keys[i + 1], keys[i + 2], keys[i + 3]);
    json_decref(j);
}

/* ---- one input ---- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const ops[16] = {
        ['P' % 16] = "PutItem",
        ['Q' % 16] = "Query",
        ['B' % 16] = "BatchGetItem",
        ['S' % 16] = "Scan",
        ['D' % 16] = "DescribeTable",
        ['U' % 16] = "UpdateItem",
        ['V' % 16] = NULL,
        ['G' % 16] = "GetItem",
        ['X' % 16] = "DeleteItem",
        ['Y' % 16] = "TransactGetItems",
        ['Z' % 16] = "TransactWriteItems",
        ['K' % 16] = "BatchWriteItem",
        ['L' % 16] = "ListTables",
        ['M' % 16] = "CreateTable",
        ['N' % 16] = "DeleteTable",
        ['O' % 16] = NULL,
    };
    char named[65];
    const char *op, *body;
    size_t len;

    if (size < 1)
        return 0;
    body = (const char *)data + 1;
    len = size - 1;
    if (data[0] % 16 == 'V' % 16) {
        check_values(body, len);
        return 0;
    }
    if (data[0] % 16 == 'O' % 16) {
        size_t n = 0;
        while (n < len && n < sizeof(named) - 1 && ((body[n] >= 'A' && body[n] <= 'Z') || (body[n] >= 'a' && body[n] <= 'z')))
            n++;
        memcpy(named, body, n);
        named[n] = '\0';
        op = named;
        body += n, len -= n;
    } else {
        op = ops[data[0] % 16];
    }
    call_t c = call(op, body, len);
    check_answer(op, &c);
    free(c.body);
    if (queued >= RESET_AFTER) {
        store_destroy();
        store_build();
    }
    return 0;
}
