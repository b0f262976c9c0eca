/*
 * store/batch.c: BatchGetItem (a read, on the caller's thread, in one read-only transaction) and BatchWriteItem (one
 * writer job: the whole batch runs in one nested transaction, so it commits, or fails, as a whole).
 *
 * Checks, in DynamoDB's order: the members' JSON types (SerializationException) anywhere in the request first, then
 * the constraints on RequestItems ("N validation errors detected"), then each request's values and expressions, the
 * totals (100 keys, 25 writes: "Too many items requested for the ... call"), and, in the transaction, where the
 * schemas cannot change: each table's existence (ResourceNotFoundException), each key against its table's schema
 * (GetItem's and PutItem's words), and duplicates (two keys, or two writes, on one item of a table: "Provided list
 * of item keys contains duplicates"). Nothing is written unless every request of the batch passed every check.
 *
 * AttributesToGet arrives rewritten into a ProjectionExpression (store/legacy.c). Not implemented: UnprocessedKeys /
 * UnprocessedItems are always empty (nothing is throttled); ReturnItemCollectionMetrics is accepted and
 * ignored (ConsumedCapacity: capacity.c); ConsistentRead is accepted either way (every read sees the last commit).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/eval.h"
#include "store/internal.h"

#define BATCH_GET_MAX 100
#define BATCH_WRITE_MAX 25
#define KEY_MAX 512 /* as item.c: LMDB's key limit is 511 bytes */

static const char *const capacity_names[] = {"INDEXES", "TOTAL", "NONE", NULL};
static const char *const metrics_names[] = {"SIZE", "NONE", NULL};

/* An item or key member's shape (a SerializationException), as item.c checks Item and Key. */
static int check_shape(const json_t *obj, st_answer_t *a)
{
    char err[STORE_EXPR_ERR_MAX];
    if (obj != NULL && store_item_check_shape(obj, err, sizeof(err)) != 0) {
        st_answer_error(a, 400, T_SERIALIZATION, "%s", err);
        return -1;
    }
    return 0;
}

/* Checks and normalizes an item or a key's values (a ValidationException, or a SerializationException). */
static int check_values(json_t *obj, st_answer_t *a)
{
    char err[STORE_EXPR_ERR_MAX];
    int rc = store_item_check(obj, err, sizeof(err));
    if (rc != 0) {
        st_answer_error(a, 400, rc == STORE_VALUE_ESERIALIZE ? T_SERIALIZATION : T_VALIDATION, "%s", err);
        return -1;
    }
    return 0;
}

/* Table names of RequestItems: "Map keys must satisfy constraint" once for each name DynamoDB's pattern rejects. */
static void check_table_names(st_verrs_t *v, json_t *ri)
{
    const char *name;
    json_t *val;
    char e[256];

    json_object_foreach(ri, name, val)
    {
        st_verrs_t one = {0};
        st_check_table_name(&one, name, "requestItems");
        if (one.n != 0) {
            st_echo(ri, e, sizeof(e));
            st_verr(v, e, "requestItems",
                    "Map keys must satisfy constraint: [Member must have length less than or equal to 255, Member must have "
                    "length greater than or equal to 3, Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+]");
        }
    }
}

/* An encoded key (an entry of a batch). */
typedef struct bkey {
    size_t table; /* index of its table in RequestItems' order */
    size_t len;
    uint8_t buf[KEY_MAX];
} bkey_t;

/* 1 when keys[i] repeats an earlier key of its table. */
static int duplicate(const bkey_t *keys, size_t i)
{
    for (size_t j = 0; j != i; ++j)
        if (keys[j].table == keys[i].table && keys[j].len == keys[i].len && memcmp(keys[j].buf, keys[i].buf, keys[i].len) == 0)
            return 1;
    return 0;
}

/* ---- BatchGetItem ---- */

typedef struct get_table {
    const char *name;
    json_t *spec; /* KeysAndAttributes (borrowed) */
    json_t *keys;
    st_exprs_t x;
    st_schema_t sc;
    MDB_dbi dbi;
} get_table_t;

/* Request-only checks. 0 with *tables (ntables) set, or -1 answered. */
static int get_check(json_t *req, get_table_t **out, size_t *nout, st_answer_t *a)
{
    json_t *ri, *spec, *obj, *keys, *k;
    const char *rcc, *name;
    st_verrs_t v = {0};
    size_t i, total = 0;
    char at[512], e[256];

    *out = NULL;
    *nout = 0;
    if (st_get_string(req, "ReturnConsumedCapacity", &rcc, a) != 0 || st_get_object(req, "RequestItems", &ri, a) != 0)
        return -1;
    /* shapes first */
    json_object_foreach(ri, name, spec)
    {
        if (st_get_object(ri, name, &obj, a) != 0 || st_get_list(obj, "Keys", &keys, a) != 0)
            return -1;
        json_array_foreach(keys, i, k)
        {
            if (json_is_null(k))
                continue;
            if (check_shape(k, a) != 0)
                return -1;
        }
    }
    st_check_enum(&v, rcc, "returnConsumedCapacity", capacity_names);
    if (ri == NULL)
        st_verr(&v, NULL, "requestItems", "Member must not be null");
    else if (json_object_size(ri) == 0)
        st_verr(&v, "{}", "requestItems", "Member must have length greater than or equal to 1");
    check_table_names(&v, ri);
    json_object_foreach(ri, name, spec)
    {
        keys = json_object_get(spec, "Keys");
        snprintf(at, sizeof(at), "requestItems.%s.member.keys", name);
        if (keys == NULL || json_is_null(keys)) {
            st_verr(&v, NULL, at, "Member must not be null");
            continue;
        }
        if (json_array_size(keys) < 1 || json_array_size(keys) > BATCH_GET_MAX) {
            st_echo(keys, e, sizeof(e));
            st_verr(&v, e, at,
                    json_array_size(keys) < 1 ? "Member must have length greater than or equal to 1"
                                              : "Member must have length less than or equal to 100");
        }
        total += json_array_size(keys);
    }
    if (st_verr_answer(&v, a) != 0)
        return -1;
    size_t n = json_object_size(ri);
    get_table_t *t = calloc(n, sizeof(*t));
    if (t == NULL) {
        st_answer_error(a, 500, T_INTERNAL, "out of memory");
        return -1;
    }
    *out = t;
    i = 0;
    json_object_foreach(ri, name, spec)
    {
        get_table_t *g = &t[i++];
        int consistent;
        *nout = i;
        g->name = name;
        g->spec = spec;
        g->keys = json_object_get(spec, "Keys");
        if (st_get_bool(spec, "ConsistentRead", &consistent, a) != 0)
            return -1;
        if (st_exprs_parse(&g->x, spec, 1u << STORE_EXPR_PROJECTION, a) != 0)
            return -1;
        size_t j;
        json_array_foreach(g->keys, j, k)
        {
            if (k == NULL || json_is_null(k)) {
                st_invalid(a,
                           "1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null",
                           "requestItems.member.keys.member");
                return -1;
            }
            if (check_values(k, a) != 0)
                return -1;
        }
    }
    if (total > BATCH_GET_MAX) {
        st_invalid(a, "Too many items requested for the BatchGetItem call");
        return -1;
    }
    return 0;
}

static void get_tables_free(get_table_t *t, size_t n)
{
    for (size_t i = 0; i != n; ++i) {
        st_exprs_free(&t[i].x);
        st_schema_free(&t[i].sc);
    }
    free(t);
}

void st_batch_get_item(store_t *s, json_t *req, st_answer_t *a)
{
    get_table_t *t = NULL;
    size_t nt = 0, nk = 0, i, j;
    bkey_t *keys = NULL;
    MDB_txn *txn = NULL;
    json_t *responses = NULL, *k;
    int rc;

    if (get_check(req, &t, &nt, a) != 0)
        goto out;
    for (i = 0; i != nt; ++i)
        nk += json_array_size(t[i].keys);
    if ((keys = calloc(nk, sizeof(*keys))) == NULL || (responses = json_object()) == NULL) {
        st_answer_error(a, 500, T_INTERNAL, "out of memory");
        goto out;
    }
    if ((rc = st_read_begin(s, &txn)) != 0) {
        st_internal(a, rc);
        goto out;
    }
    /* every table first, then every key: nothing is answered but an error when one fails */
    for (i = 0; i != nt; ++i)
        if (st_open_table(s, txn, t[i].name, &t[i].sc, &t[i].dbi, a) != 0)
            goto out;
    nk = 0;
    for (i = 0; i != nt; ++i) {
        json_array_foreach(t[i].keys, j, k)
        {
            MDB_val kv;
            if (st_item_key(s, &t[i].sc, k, 0, keys[nk].buf, sizeof(keys[nk].buf), &kv, a) != 0)
                goto out;
            keys[nk].table = i;
            keys[nk].len = kv.mv_size;
            if (duplicate(keys, nk)) {
                st_invalid(a, "Provided list of item keys contains duplicates");
                goto out;
            }
            nk++;
        }
    }
    for (i = 0; i != nt; ++i) {
        json_t *list = json_array();
        if (list == NULL || json_object_set_new(responses, t[i].name, list) != 0) {
            st_answer_error(a, 500, T_INTERNAL, "out of memory");
            goto out;
        }
    }
    for (size_t n = 0; n != nk; ++n) {
        get_table_t *g = &t[keys[n].table];
        MDB_val kv = {keys[n].len, keys[n].buf}, v;
        if ((rc = mdb_get(txn, g->dbi, &kv, &v)) == MDB_NOTFOUND)
            continue;
        if (rc != 0) {
            st_internal(a, rc);
            goto out;
        }
        json_t *item = json_loadb(v.mv_data, v.mv_size, 0, NULL), *o;
        if (item == NULL) {
            st_internal(a, MDB_CORRUPTED);
            goto out;
        }
        if (st_visible(&g->sc, item) == NULL) {
            json_decref(item); /* expired */
            continue;
        }
        o = g->x.has_proj ? store_eval_project(&g->x.proj, item) : json_incref(item);
        json_decref(item); /* a projection holds its own references */
        if (o == NULL || json_array_append_new(json_object_get(responses, g->name), o) != 0) {
            st_answer_error(a, 500, T_INTERNAL, "out of memory");
            goto out;
        }
    }
    st_answer_json(a, json_pack("{s:o, s:{}}", "Responses", responses, "UnprocessedKeys"));
    responses = NULL;
out:
    if (txn != NULL)
        st_read_end(txn);
    json_decref(responses);
    free(keys);
    get_tables_free(t, nt);
}

/* ---- BatchWriteItem ---- */

typedef struct write_req {
    size_t table;
    json_t *item; /* PutRequest's Item (in the job's request), or NULL */
    json_t *key;  /* DeleteRequest's Key, or NULL */
} write_req_t;

typedef struct batch_job {
    st_job_t base;
    json_t *req; /* owned */
    size_t ntables, nreqs;
    const char **tables; /* names (in req) */
    write_req_t *reqs;
} batch_job_t;

static void batch_job_free(st_job_t *j)
{
    batch_job_t *bj = (batch_job_t *)j;
    json_decref(bj->req);
    free(bj->tables);
    free(bj->reqs);
    free(j->ans.body);
    free(bj);
}

/* Request-only checks, filling bj's tables and requests. 0, or -1 answered. */
static int write_check(batch_job_t *bj, st_answer_t *a)
{
    static const char *const one_type =
        "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes";
    json_t *req = bj->req, *ri, *list, *l, *wr, *put, *del, *obj;
    const char *rcc, *ricm, *name;
    st_verrs_t v = {0};
    size_t i, total = 0;
    char at[512], e[256];

    if (st_get_string(req, "ReturnConsumedCapacity", &rcc, a) != 0 ||
        st_get_string(req, "ReturnItemCollectionMetrics", &ricm, a) != 0 || st_get_object(req, "RequestItems", &ri, a) != 0)
        return -1;
    /* shapes first */
    json_object_foreach(ri, name, list)
    {
        if (st_get_list(ri, name, &l, a) != 0)
            return -1;
        json_array_foreach(l, i, wr)
        {
            if (json_is_null(wr))
                continue;
            if (!json_is_object(wr)) {
                st_answer_error(a, 400, T_SERIALIZATION,
                                json_is_array(wr) ? "Start of list found where not expected" : "Unexpected value type in payload");
                return -1;
            }
            if (st_get_object(wr, "PutRequest", &put, a) != 0 || st_get_object(wr, "DeleteRequest", &del, a) != 0 ||
                (put != NULL && (st_get_object(put, "Item", &obj, a) != 0 || check_shape(obj, a) != 0)) ||
                (del != NULL && (st_get_object(del, "Key", &obj, a) != 0 || check_shape(obj, a) != 0)))
                return -1;
        }
    }
    st_check_enum(&v, rcc, "returnConsumedCapacity", capacity_names);
    st_check_enum(&v, ricm, "returnItemCollectionMetrics", metrics_names);
    if (ri == NULL)
        st_verr(&v, NULL, "requestItems", "Member must not be null");
    else if (json_object_size(ri) == 0)
        st_verr(&v, "{}", "requestItems", "Member must have length greater than or equal to 1");
    check_table_names(&v, ri);
    json_object_foreach(ri, name, list)
    {
        size_t n = json_array_size(list);
        if (n < 1 || n > BATCH_WRITE_MAX) {
            st_echo(ri, e, sizeof(e));
            st_verr(&v, e, "requestItems",
                    "Map value must satisfy constraint: [Member must have length less than or equal to 25, Member must have "
                    "length greater than or equal to 1]");
        }
        json_array_foreach(list, i, wr)
        {
            put = json_object_get(wr, "PutRequest");
            del = json_object_get(wr, "DeleteRequest");
            if (json_is_object(put) && ((obj = json_object_get(put, "Item")) == NULL || json_is_null(obj))) {
                snprintf(at, sizeof(at), "requestItems.%s.member.putRequest.item", name);
                st_verr(&v, NULL, at, "Member must not be null");
            }
            if (json_is_object(del) && ((obj = json_object_get(del, "Key")) == NULL || json_is_null(obj))) {
                snprintf(at, sizeof(at), "requestItems.%s.member.deleteRequest.key", name);
                st_verr(&v, NULL, at, "Member must not be null");
            }
        }
        total += n;
    }
    if (st_verr_answer(&v, a) != 0)
        return -1;
    bj->ntables = json_object_size(ri);
    if ((bj->tables = calloc(bj->ntables, sizeof(*bj->tables))) == NULL || (bj->reqs = calloc(total, sizeof(*bj->reqs))) == NULL) {
        st_answer_error(a, 500, T_INTERNAL, "out of memory");
        return -1;
    }
    size_t t = 0;
    json_object_foreach(ri, name, list)
    {
        bj->tables[t] = name;
        json_array_foreach(list, i, wr)
        {
            put = json_object_get(wr, "PutRequest");
            del = json_object_get(wr, "DeleteRequest");
            put = json_is_null(put) ? NULL : put;
            del = json_is_null(del) ? NULL : del;
            if ((put == NULL) == (del == NULL)) {
                st_invalid(a, "%s", one_type);
                return -1;
            }
            write_req_t *r = &bj->reqs[bj->nreqs++];
            r->table = t;
            if (put != NULL)
                r->item = json_object_get(put, "Item");
            else
                r->key = json_object_get(del, "Key");
            if (check_values(put != NULL ? r->item : r->key, a) != 0)
                return -1;
        }
        t++;
    }
    if (total > BATCH_WRITE_MAX) {
        st_invalid(a, "Too many items requested for the BatchWriteItem call");
        return -1;
    }
    return 0;
}

static int batch_write_run(store_t *s, MDB_txn *txn, st_job_t *j)
{
    batch_job_t *bj = (batch_job_t *)j;
    st_schema_t *sc = calloc(bj->ntables, sizeof(*sc));
    MDB_dbi *dbi = calloc(bj->ntables, sizeof(*dbi));
    bkey_t *keys = calloc(bj->nreqs, sizeof(*keys));
    size_t i;
    int ok = 0, rc;

    if (sc == NULL || dbi == NULL || keys == NULL) {
        st_answer_error(&j->ans, 500, T_INTERNAL, "out of memory");
        goto out;
    }
    /* every check before any write */
    for (i = 0; i != bj->ntables; ++i)
        if (st_open_table(s, txn, bj->tables[i], &sc[i], &dbi[i], &j->ans) != 0)
            goto out;
    for (i = 0; i != bj->nreqs; ++i) {
        write_req_t *r = &bj->reqs[i];
        MDB_val kv;
        if (st_item_key(s, &sc[r->table], r->item != NULL ? r->item : r->key, r->item != NULL, keys[i].buf, sizeof(keys[i].buf),
                        &kv, &j->ans) != 0)
            goto out;
        keys[i].table = r->table;
        keys[i].len = kv.mv_size;
        if (duplicate(keys, i)) {
            st_invalid(&j->ans, "Provided list of item keys contains duplicates");
            goto out;
        }
    }
    for (i = 0; i != bj->nreqs; ++i) {
        write_req_t *r = &bj->reqs[i];
        MDB_val kv = {keys[i].len, keys[i].buf};
        json_t *old;
        if (st_load_item(txn, dbi[r->table], &kv, &old, NULL, &j->ans) != 0)
            goto out;
        rc = (r->item != NULL || old != NULL) ? st_item_write(s, txn, &sc[r->table], &kv, old, r->item, NULL, &j->ans) : 0;
        json_decref(old);
        if (rc != 0)
            goto out;
    }
    st_answer_text(&j->ans, "{\"UnprocessedItems\":{}}", 23);
    ok = 1;
out:
    if (sc != NULL)
        for (i = 0; i != bj->ntables; ++i)
            st_schema_free(&sc[i]);
    free(sc);
    free(dbi);
    free(keys);
    return ok;
}

void st_batch_write_item(store_t *s, json_t *req, store_done_cb done, void *data)
{
    st_answer_t a = {0};
    batch_job_t *bj = calloc(1, sizeof(*bj));

    if (bj == NULL) {
        st_answer_error(&a, 500, T_INTERNAL, "out of memory");
        done(data, a.status, a.body, a.len);
        return;
    }
    bj->req = json_incref(req);
    bj->base.run = batch_write_run;
    bj->base.free = batch_job_free;
    bj->base.done = done;
    bj->base.data = data;
    if (write_check(bj, &a) != 0) {
        done(data, a.status, a.body, a.len);
        batch_job_free(&bj->base);
        return;
    }
    st_enqueue(s, &bj->base);
}
