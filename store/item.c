/*
 * store/item.c: the item operations PutItem, DeleteItem, UpdateItem (writes: checked on the caller's thread, run on
 * the writer in their own nested transaction) and GetItem (a read: on the caller's thread).
 *
 * What depends only on the request (members' types, values, expressions and their placeholders, ReturnValues) is
 * checked before queueing, so a bad request never waits for the writer; what depends on the table (its existence,
 * its key schema) is checked in the transaction, where the schema cannot change under the operation. Conditions are
 * evaluated inside the write transaction against the item as it is there, so a condition and its write are atomic.
 *
 * ItemCount and TableSizeBytes (store_item_size, as DynamoDB counts an item) are adjusted in the job's nested
 * transaction: a job that fails its condition changes neither the item nor the counts.
 *
 * The legacy parameters (Expected, ConditionalOperator, AttributeUpdates, AttributesToGet) arrive rewritten into
 * expressions (store/legacy.c). ReturnItemCollectionMetrics is accepted and ignored (ConsumedCapacity: capacity.c). Every write
 * goes through st_item_write (store/write.c): indexes, TTL and counters follow the item.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/eval.h"
#include "store/internal.h"

typedef enum { RV_NONE, RV_ALL_OLD, RV_UPDATED_OLD, RV_ALL_NEW, RV_UPDATED_NEW } rv_t;
typedef enum { K_PUT, K_DELETE, K_UPDATE, K_GET } kind_t;

typedef struct item_job {
    st_job_t base;
    kind_t kind;
    json_t *req; /* owned */
    const char *table;
    json_t *item; /* PutItem: the checked item (in req) */
    json_t *key;  /* the others: the checked Key (in req) */
    st_exprs_t x;
    rv_t rv;
    int rv_fail_all_old;
    /* not DynamoDB's: the REST origin's versions (store.h) */
    int want_etag;        /* EdgeETag: true */
    const char *if_match; /* EdgeIfMatch: the ETag the item must have */
    int if_none_match;    /* EdgeIfNoneMatch: "*": the item must not exist */
} item_job_t;

static void item_job_free(st_job_t *j)
{
    item_job_t *ij = (item_job_t *)j;
    st_exprs_free(&ij->x);
    json_decref(ij->req);
    free(j->ans.body);
    free(ij);
}

/* ---- checks on the caller's thread ---- */

static const char *const rv_names[] = {"NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW", NULL};

/* The members of the REST origin (EdgeETag, EdgeIfMatch, EdgeIfNoneMatch; store.h). 0, or -1 answered. */
static int check_edge_members(item_job_t *ij, st_answer_t *a)
{
    const char *inm = NULL;
    if (st_get_bool(ij->req, "EdgeETag", &ij->want_etag, a) != 0 ||
        (ij->kind != K_GET &&
         (st_get_string(ij->req, "EdgeIfMatch", &ij->if_match, a) != 0 || st_get_string(ij->req, "EdgeIfNoneMatch", &inm, a) != 0)))
        return -1;
    if (inm != NULL && strcmp(inm, "*") != 0) {
        st_invalid(a, "EdgeIfNoneMatch must be \"*\"");
        return -1;
    }
    ij->if_none_match = inm != NULL;
    return 0;
}

/* The members every item operation checks, in DynamoDB's order. 0, or -1 answered. */
static int check_request(item_job_t *ij, st_answer_t *a)
{
    static const char *const capacity[] = {"INDEXES", "TOTAL", "NONE", NULL}, *const metrics[] = {"SIZE", "NONE", NULL},
                             *const onfail[] = {"ALL_OLD", "NONE", NULL};
    json_t *req = ij->req, *obj;
    const char *rcc, *ricm, *rv = NULL, *rvf = NULL;
    char err[STORE_EXPR_ERR_MAX];
    st_verrs_t v = {0};
    int consistent;

    if (st_get_string(req, "TableName", &ij->table, a) != 0 || st_get_string(req, "ReturnConsumedCapacity", &rcc, a) != 0 ||
        (ij->kind != K_GET &&
         (st_get_string(req, "ReturnItemCollectionMetrics", &ricm, a) != 0 || st_get_string(req, "ReturnValues", &rv, a) != 0 ||
          st_get_string(req, "ReturnValuesOnConditionCheckFailure", &rvf, a) != 0)) ||
        (ij->kind == K_GET && st_get_bool(req, "ConsistentRead", &consistent, a) != 0) ||
        st_get_object(req, ij->kind == K_PUT ? "Item" : "Key", &obj, a) != 0)
        return -1;
    if (obj != NULL && store_item_check_shape(obj, err, sizeof(err)) != 0) {
        st_answer_error(a, 400, T_SERIALIZATION, "%s", err);
        return -1;
    }
    st_check_enum(&v, rcc, "returnConsumedCapacity", capacity);
    st_check_table_name(&v, ij->table, "tableName");
    if (obj == NULL)
        st_verr(&v, NULL, ij->kind == K_PUT ? "item" : "key", "Member must not be null");
    if (ij->kind != K_GET) {
        st_check_enum(&v, rv, "returnValues", rv_names);
        st_check_enum(&v, ricm, "returnItemCollectionMetrics", metrics);
        st_check_enum(&v, rvf, "returnValuesOnConditionCheckFailure", onfail);
    }
    if (st_verr_answer(&v, a) != 0)
        return -1;
    int rc = store_item_check(obj, err, sizeof(err));
    if (rc != 0) {
        /* a Key's size is not an item's: only the values' own errors count there */
        st_answer_error(a, 400, rc == STORE_VALUE_ESERIALIZE ? T_SERIALIZATION : T_VALIDATION, "%s", err);
        return -1;
    }
    *(ij->kind == K_PUT ? &ij->item : &ij->key) = obj;
    unsigned allowed = ij->kind == K_GET      ? 1u << STORE_EXPR_PROJECTION
                       : ij->kind == K_UPDATE ? 1u << STORE_EXPR_UPDATE | 1u << STORE_EXPR_CONDITION
                                              : 1u << STORE_EXPR_CONDITION;
    if (st_exprs_parse(&ij->x, req, allowed, a) != 0)
        return -1;
    for (int i = 0; rv != NULL && rv_names[i]; ++i)
        if (strcmp(rv, rv_names[i]) == 0)
            ij->rv = (rv_t)i;
    if ((ij->kind == K_PUT || ij->kind == K_DELETE) && ij->rv != RV_NONE && ij->rv != RV_ALL_OLD) {
        st_invalid(a, "ReturnValues can only be ALL_OLD or NONE");
        return -1;
    }
    ij->rv_fail_all_old = rvf != NULL && strcmp(rvf, "ALL_OLD") == 0;
    return check_edge_members(ij, a);
}

/* ---- in the transaction ---- */

/* The table's schema and database. 0, or -1 answered. */
int st_open_table(store_t *s, MDB_txn *txn, const char *table, st_schema_t *sc, MDB_dbi *dbi, st_answer_t *a)
{
    char name[520];
    int rc = st_schema_load(s, txn, table, sc);
    if (rc == MDB_NOTFOUND || (rc == 0 && st_table_dbi(s, table, &sc->dbi) != 0)) {
        st_schema_free(sc);
        st_answer_error(a, 400, T_NOT_FOUND, "Requested resource not found");
        return -1;
    }
    if (rc != 0) {
        st_internal(a, rc);
        return -1;
    }
    *dbi = sc->dbi;
    /* An index's or the TTL's handle is published after the commit that made it (the writer sees it at once): a
     * reader in between does not see the index (or the TTL) yet, as if it came after. */
    size_t n = 0;
    for (size_t i = 0; i != sc->nidx; ++i)
        if (st_table_dbi(s, st_index_db_name(name, table, sc->idx[i].name), &sc->idx[i].dbi) == 0)
            sc->idx[n++] = sc->idx[i];
    sc->nidx = n;
    if (sc->ttl != NULL && st_table_dbi(s, st_ttl_db_name(name, table), &sc->ttl_dbi) != 0)
        sc->ttl = NULL;
    return 0;
}

/* The LMDB key of an item (PutItem: from the item; the others: from Key, which must hold exactly the key). 0, or -1
 * answered. */
int st_item_key(store_t *s, const st_schema_t *sc, const json_t *obj, int from_item, uint8_t *buf, size_t cap, MDB_val *out,
                st_answer_t *a)
{
    const char *names[2] = {sc->pk, sc->sk};
    store_type_t types[2] = {sc->pk_type, sc->sk_type};
    json_t *vals[2] = {NULL, NULL};
    char err[512];
    int n = sc->sk != NULL ? 2 : 1;

    if (!from_item && json_object_size(obj) != (size_t)n)
        goto mismatch;
    for (int i = 0; i != n; ++i) {
        vals[i] = json_object_get(obj, names[i]);
        if (vals[i] == NULL) {
            if (!from_item)
                goto mismatch;
            st_invalid(a, "One or more parameter values were invalid: Missing the key %s in the item", names[i]);
            return -1;
        }
        if (!from_item && store_value_type(vals[i]) != types[i])
            goto mismatch;
        if (store_key_check(vals[i], types[i], names[i], err, sizeof(err)) != 0 ||
            store_key_check_size(vals[i], i, err, sizeof(err)) != 0) {
            st_invalid(a, "%s", err);
            return -1;
        }
    }
    size_t len = store_key_encode_pair(vals[0], vals[1], buf, cap);
    if (len == 0 || len > cap || (int)len > mdb_env_get_maxkeysize(s->env)) {
        /* LMDB's key limit (511 bytes) is below DynamoDB's (2048 + 1024): a known gap */
        st_invalid(a, "One or more parameter values were invalid: this item store's keys are limited to %d encoded bytes",
                   mdb_env_get_maxkeysize(s->env));
        return -1;
    }
    *out = (MDB_val){len, buf};
    return 0;
mismatch:
    st_invalid(a, "The provided key element does not match the schema");
    return -1;
}

int st_load_item(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, json_t **out, uint64_t *etag, st_answer_t *a)
{
    MDB_val v;
    int rc = mdb_get(txn, dbi, k, &v);
    *out = NULL;
    if (etag != NULL)
        *etag = rc == 0 ? st_etag(v.mv_data, v.mv_size) : 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc == 0 && (*out = json_loadb(v.mv_data, v.mv_size, 0, NULL)) == NULL)
        rc = MDB_CORRUPTED;
    if (rc != 0) {
        st_internal(a, rc);
        return -1;
    }
    return 0;
}

/* The ConditionExpression (and the REST origin's version checks) on the current item (NULL: none, or expired; etag:
 * its ETag): 1 to go on, 0 answered (failed, or a bad value). */
static int check_condition(item_job_t *ij, const json_t *old, uint64_t etag)
{
    char err[STORE_EXPR_ERR_MAX], hex[17];
    if ((ij->if_none_match && old != NULL) ||
        (ij->if_match != NULL &&
         (old == NULL || (snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)etag), strcmp(hex, ij->if_match) != 0)))) {
        st_answer_error(&ij->base.ans, 400, T_CONDITION, "The conditional request failed");
        return 0;
    }
    if (!ij->x.has_cond)
        return 1;
    int r = store_eval_condition(&ij->x.cond, old, ij->x.vals, err, sizeof(err));
    if (r == 1)
        return 1;
    if (r == 0) {
        st_answer_error(&ij->base.ans, 400, T_CONDITION, "The conditional request failed");
        if (ij->rv_fail_all_old && old != NULL) {
            /* DynamoDB adds the item to the error's body */
            json_t *o =
                json_pack("{s:s, s:s, s:O}", "__type", T_CONDITION, "message", "The conditional request failed", "Item", old);
            st_answer_json(&ij->base.ans, o);
            ij->base.ans.status = 400;
        }
    } else if (r == STORE_EVAL_EINVALID) {
        st_invalid(&ij->base.ans, "%s", err);
    } else {
        st_answer_error(&ij->base.ans, 500, T_INTERNAL, "out of memory");
    }
    return 0;
}

/* {"Attributes": o} when o is an object with members, else {}; with "ETag" when asked and there is an item. Takes o. */
static void answer_attributes(item_job_t *ij, json_t *o, uint64_t etag)
{
    st_answer_t *a = &ij->base.ans;
    json_t *ans = o != NULL && json_object_size(o) != 0 ? json_pack("{s:O}", "Attributes", o) : json_object();
    char hex[17];
    json_decref(o);
    if (ij->want_etag && etag != 0) {
        snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)etag);
        json_object_set_new(ans, "ETag", json_string(hex));
    }
    st_answer_json(a, ans);
}

static int write_run(store_t *s, MDB_txn *txn, st_job_t *j)
{
    item_job_t *ij = (item_job_t *)j;
    st_schema_t sc;
    MDB_dbi dbi;
    uint8_t kbuf[512];
    MDB_val k;
    json_t *stored = NULL, *item = NULL, *uo = NULL, *un = NULL;
    const json_t *old;
    uint64_t etag = 0;
    char err[STORE_EXPR_ERR_MAX];
    int ok = 0, rc;

    if (st_open_table(s, txn, ij->table, &sc, &dbi, &j->ans) != 0)
        return 0;
    if (st_item_key(s, &sc, ij->kind == K_PUT ? ij->item : ij->key, ij->kind == K_PUT, kbuf, sizeof(kbuf), &k, &j->ans) != 0)
        goto out;
    if (ij->kind == K_UPDATE && ij->x.has_update) {
        /* key attributes cannot be updated: checked before any item is read, as DynamoDB does */
        for (size_t i = 0; i != ij->x.update.nactions; ++i) {
            const store_expr_elem_t *e = &ij->x.update.actions[i].path.elems[0];
            const char *keys[2] = {sc.pk, sc.sk};
            for (int n = 0; n != 2; ++n) {
                if (keys[n] != NULL && strlen(keys[n]) == e->len && memcmp(keys[n], e->name, e->len) == 0) {
                    st_invalid(&j->ans,
                               "One or more parameter values were invalid: Cannot update attribute %s. This attribute is part of "
                               "the key",
                               keys[n]);
                    goto out;
                }
            }
        }
    }
    if (st_load_item(txn, dbi, &k, &stored, ij->if_match != NULL ? &etag : NULL, &j->ans) != 0)
        goto out;
    old = st_visible(&sc, stored); /* an expired item is absent */
    if (!check_condition(ij, old, etag))
        goto out;
    if (ij->kind == K_DELETE) {
        if (old != NULL && st_item_write(s, txn, &sc, &k, stored, NULL, NULL, &j->ans) != 0)
            goto out;
        answer_attributes(ij, ij->rv == RV_ALL_OLD && old != NULL ? json_deep_copy(old) : NULL, 0);
        ok = 1;
        goto out;
    }
    if (ij->kind == K_PUT) {
        item = json_incref(ij->item);
    } else {
        /* UpdateItem: the item as it is, or its key alone (copies: the update changes it in place) */
        item = old != NULL ? json_deep_copy(old) : json_deep_copy(ij->key);
        if (ij->x.has_update) {
            uo = ij->rv == RV_UPDATED_OLD ? json_object() : NULL;
            un = ij->rv == RV_UPDATED_NEW ? json_object() : NULL;
            rc = store_eval_update(&ij->x.update, item, old != NULL, ij->x.vals, uo, un, err, sizeof(err));
            if (rc != 0) {
                if (rc == STORE_EVAL_EINVALID)
                    st_invalid(&j->ans, "%s", err);
                else
                    st_answer_error(&j->ans, 500, T_INTERNAL, "out of memory");
                goto out;
            }
        }
        if (store_item_size(item) > STORE_ITEM_MAX) {
            st_invalid(&j->ans, "Item size to update has exceeded the maximum allowed size");
            goto out;
        }
    }
    if (st_item_write(s, txn, &sc, &k, stored, item, &etag, &j->ans) != 0)
        goto out;
    switch (ij->rv) {
    case RV_ALL_OLD:
        answer_attributes(ij, old != NULL ? json_deep_copy(old) : NULL, etag);
        break;
    case RV_ALL_NEW:
        answer_attributes(ij, json_incref(item), etag);
        break;
    case RV_UPDATED_OLD:
        answer_attributes(ij, json_incref(uo), etag);
        break;
    case RV_UPDATED_NEW:
        answer_attributes(ij, json_incref(un), etag);
        break;
    default:
        answer_attributes(ij, NULL, etag);
    }
    ok = 1;
out:
    json_decref(stored);
    json_decref(item);
    json_decref(uo);
    json_decref(un);
    st_schema_free(&sc);
    return ok;
}

static void queue_write(store_t *s, json_t *req, kind_t kind, store_done_cb done, void *data)
{
    st_answer_t a = {0};
    item_job_t *ij = calloc(1, sizeof(*ij));

    if (ij == NULL) {
        st_answer_error(&a, 500, T_INTERNAL, "out of memory");
        done(data, a.status, a.body, a.len);
        return;
    }
    ij->kind = kind;
    ij->req = json_incref(req);
    ij->base.run = write_run;
    ij->base.free = item_job_free;
    ij->base.done = done;
    ij->base.data = data;
    if (check_request(ij, &a) != 0) {
        done(data, a.status, a.body, a.len);
        item_job_free(&ij->base);
        return;
    }
    st_enqueue(s, &ij->base);
}

void st_put_item(store_t *s, json_t *req, store_done_cb done, void *data)
{
    queue_write(s, req, K_PUT, done, data);
}

void st_delete_item(store_t *s, json_t *req, store_done_cb done, void *data)
{
    queue_write(s, req, K_DELETE, done, data);
}

void st_update_item(store_t *s, json_t *req, store_done_cb done, void *data)
{
    queue_write(s, req, K_UPDATE, done, data);
}

/* ---- GetItem ---- */

void st_get_item(store_t *s, json_t *req, st_answer_t *a)
{
    item_job_t ij = {.kind = K_GET, .req = req};
    st_schema_t sc = {0};
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    MDB_val k, v;
    uint8_t kbuf[512];
    int rc;

    if (check_request(&ij, a) != 0)
        goto out;
    /* ConsistentRead is accepted either way: every read sees the last commit */
    if ((rc = st_read_begin(s, &txn)) != 0) {
        st_internal(a, rc);
        goto out;
    }
    if (st_open_table(s, txn, ij.table, &sc, &dbi, a) != 0 || st_item_key(s, &sc, ij.key, 0, kbuf, sizeof(kbuf), &k, a) != 0)
        goto out;
    if ((rc = mdb_get(txn, dbi, &k, &v)) == MDB_NOTFOUND) {
        st_answer_text(a, "{}", 2);
        goto out;
    }
    if (rc != 0) {
        st_internal(a, rc);
        goto out;
    }
    if (!ij.x.has_proj && sc.ttl == NULL && !ij.want_etag) {
        /* the stored text is the answer's: no parse, no serialization */
        char *body = malloc(v.mv_size + 10);
        if (body == NULL) {
            st_answer_error(a, 500, T_INTERNAL, "out of memory");
            goto out;
        }
        memcpy(body, "{\"Item\":", 8);
        memcpy(body + 8, v.mv_data, v.mv_size);
        body[8 + v.mv_size] = '}';
        body[9 + v.mv_size] = '\0';
        free(a->body);
        *a = (st_answer_t){200, body, v.mv_size + 9};
        goto out;
    }
    json_t *item = json_loadb(v.mv_data, v.mv_size, 0, NULL);
    if (item != NULL && st_visible(&sc, item) == NULL) {
        st_answer_text(a, "{}", 2); /* expired */
        json_decref(item);
        goto out;
    }
    json_t *p = item == NULL ? NULL : ij.x.has_proj ? store_eval_project(&ij.x.proj, item) : json_incref(item);
    json_t *o = p != NULL ? json_pack("{s:o}", "Item", p) : NULL;
    if (o != NULL && ij.want_etag) {
        char hex[17];
        snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)st_etag(v.mv_data, v.mv_size));
        json_object_set_new(o, "ETag", json_string(hex));
    }
    if (o == NULL)
        st_internal(a, item == NULL ? MDB_CORRUPTED : ENOMEM);
    else
        st_answer_json(a, o); /* serialized before item is dropped: p shares its values */
    json_decref(item);
out:
    if (txn != NULL)
        st_read_end(txn);
    st_schema_free(&sc);
    st_exprs_free(&ij.x);
}
