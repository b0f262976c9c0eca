/*
 * store/transact.c: TransactWriteItems (one writer job: every action's condition is evaluated and every write applied
 * in the job's one nested transaction, so the transaction commits, or fails, as a whole) and TransactGetItems (a read,
 * on the caller's thread, in one read-only transaction).
 *
 * Checks, in DynamoDB's order: the members' JSON types (SerializationException), TransactItems' length (1..100) and
 * each action's members ("N validation errors detected"), each action's values and expressions; then, in the
 * transaction, where the schemas cannot change: each table's existence (ResourceNotFoundException), each key against
 * its table's schema (PutItem's and GetItem's words), and two actions on one item ("Transaction request cannot include
 * multiple operations on one item"). Then every condition is evaluated against the items as they are before the
 * transaction (no two actions touch one item, so the order of the writes does not matter): when any fails, nothing is
 * written and the answer is a TransactionCanceledException with one CancellationReason per action, in order
 * ("ConditionalCheckFailed", with the item when ReturnValuesOnConditionCheckFailure is ALL_OLD; "ValidationError" for
 * an update that cannot be applied or makes the item too large; "None" for the others).
 *
 * Not implemented: ClientRequestToken is checked (1..36 characters) and otherwise ignored: a retried request is run
 * again, not recognized as a duplicate (DynamoDB's idempotency window is not kept); ReturnItemCollectionMetrics is accepted
 * and ignored (ConsumedCapacity: capacity.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/eval.h"
#include "store/internal.h"

#define TRANSACT_MAX 100
#define KEY_MAX 512 /* as item.c: LMDB's key limit is 511 bytes */
#define T_CANCELED "com.amazonaws.dynamodb.v20120810#TransactionCanceledException"

static const char *const capacity_names[] = {"INDEXES", "TOTAL", "NONE", NULL};
static const char *const metrics_names[] = {"SIZE", "NONE", NULL};
static const char *const onfail_names[] = {"ALL_OLD", "NONE", NULL};

typedef enum { A_CHECK, A_PUT, A_DELETE, A_UPDATE, A_GET } akind_t;
/* The members of TransactItems' entries, by kind, and their names in validation messages. */
static const char *const member_names[] = {"ConditionCheck", "Put", "Delete", "Update", "Get"};
static const char *const member_at[] = {"conditionCheck", "put", "delete", "update", "get"};

typedef struct action {
    akind_t kind;
    json_t *spec; /* the action's object (borrowed from the request) */
    const char *table;
    json_t *item; /* Put: the item */
    json_t *key;  /* the others: the Key */
    st_exprs_t x;
    int rvf_all_old;
    /* in the transaction */
    st_schema_t sc;
    MDB_dbi dbi;
    size_t len;
    uint8_t buf[KEY_MAX];
} action_t;

typedef struct tx_job {
    st_job_t base;
    json_t *req; /* owned */
    size_t n;
    action_t *acts;
} tx_job_t;

static void actions_free(action_t *acts, size_t n)
{
    if (acts == NULL)
        return;
    for (size_t i = 0; i != n; ++i) {
        st_exprs_free(&acts[i].x);
        st_schema_free(&acts[i].sc);
    }
    free(acts);
}

static void tx_job_free(st_job_t *j)
{
    tx_job_t *tj = (tx_job_t *)j;
    actions_free(tj->acts, tj->n);
    json_decref(tj->req);
    free(j->ans.body);
    free(tj);
}

/*
 * Request-only checks of TransactItems (get: TransactGetItems' Get entries; else the write actions). 0 with *out (n
 * actions) set, or -1 answered.
 */
static int check_items(json_t *req, int get, action_t **out, size_t *nout, st_answer_t *a)
{
    json_t *list, *entry, *spec, *obj;
    const char *rcc, *ricm = NULL, *token = NULL, *s;
    st_verrs_t v = {0};
    char at[128], e[256], err[STORE_EXPR_ERR_MAX];
    size_t i;
    int k;

    *out = NULL;
    *nout = 0;
    if (st_get_string(req, "ReturnConsumedCapacity", &rcc, a) != 0 ||
        (!get && (st_get_string(req, "ReturnItemCollectionMetrics", &ricm, a) != 0 ||
                  st_get_string(req, "ClientRequestToken", &token, a) != 0)) ||
        st_get_list(req, "TransactItems", &list, a) != 0)
        return -1;
    /* shapes first */
    json_array_foreach(list, i, entry)
    {
        if (json_is_null(entry))
            continue;
        if (!json_is_object(entry)) {
            st_answer_error(a, 400, T_SERIALIZATION,
                            json_is_array(entry) ? "Start of list found where not expected" : "Unexpected value type in payload");
            return -1;
        }
        for (k = get ? A_GET : A_CHECK; k <= (get ? A_GET : A_UPDATE); ++k) {
            if (st_get_object(entry, member_names[k], &spec, a) != 0)
                return -1;
            if (spec == NULL)
                continue;
            if (st_get_string(spec, "TableName", &s, a) != 0 || st_get_object(spec, k == A_PUT ? "Item" : "Key", &obj, a) != 0 ||
                (k != A_GET && st_get_string(spec, "ReturnValuesOnConditionCheckFailure", &s, a) != 0))
                return -1;
            if (obj != NULL && store_item_check_shape(obj, err, sizeof(err)) != 0) {
                st_answer_error(a, 400, T_SERIALIZATION, "%s", err);
                return -1;
            }
        }
    }
    st_check_enum(&v, rcc, "returnConsumedCapacity", capacity_names);
    if (!get) {
        st_check_enum(&v, ricm, "returnItemCollectionMetrics", metrics_names);
        if (token != NULL && (strlen(token) < 1 || strlen(token) > 36)) {
            st_verr(&v, token, "clientRequestToken",
                    strlen(token) < 1 ? "Member must have length greater than or equal to 1"
                                      : "Member must have length less than or equal to 36");
        }
    }
    if (list == NULL)
        st_verr(&v, NULL, "transactItems", "Member must not be null");
    else if (json_array_size(list) < 1 || json_array_size(list) > TRANSACT_MAX) {
        st_echo(list, e, sizeof(e));
        st_verr(&v, e, "transactItems",
                json_array_size(list) < 1 ? "Member must have length greater than or equal to 1"
                                          : "Member must have length less than or equal to 100");
    }
    json_array_foreach(list, i, entry)
    {
        if (json_is_null(entry)) {
            snprintf(at, sizeof(at), "transactItems.%zu.member", i + 1);
            st_verr(&v, NULL, at, "Member must not be null");
            continue;
        }
        for (k = get ? A_GET : A_CHECK; k <= (get ? A_GET : A_UPDATE); ++k) {
            spec = json_object_get(entry, member_names[k]);
            if (spec == NULL || json_is_null(spec))
                continue;
            snprintf(at, sizeof(at), "transactItems.%zu.member.%s.tableName", i + 1, member_at[k]);
            st_check_table_name(&v, json_string_value(json_object_get(spec, "TableName")), at);
            obj = json_object_get(spec, k == A_PUT ? "Item" : "Key");
            if (obj == NULL || json_is_null(obj)) {
                snprintf(at, sizeof(at), "transactItems.%zu.member.%s.%s", i + 1, member_at[k], k == A_PUT ? "item" : "key");
                st_verr(&v, NULL, at, "Member must not be null");
            }
            if (k == A_UPDATE || k == A_CHECK) {
                const char *m = k == A_UPDATE ? "UpdateExpression" : "ConditionExpression";
                obj = json_object_get(spec, m);
                if (obj == NULL || json_is_null(obj)) {
                    snprintf(at, sizeof(at), "transactItems.%zu.member.%s.%s", i + 1, member_at[k],
                             k == A_UPDATE ? "updateExpression" : "conditionExpression");
                    st_verr(&v, NULL, at, "Member must not be null");
                }
            }
            if (k != A_GET) {
                snprintf(at, sizeof(at), "transactItems.%zu.member.%s.returnValuesOnConditionCheckFailure", i + 1, member_at[k]);
                st_check_enum(&v, json_string_value(json_object_get(spec, "ReturnValuesOnConditionCheckFailure")), at,
                              onfail_names);
            }
        }
    }
    if (st_verr_answer(&v, a) != 0)
        return -1;
    size_t n = json_array_size(list);
    action_t *acts = calloc(n, sizeof(*acts));
    if (acts == NULL) {
        st_answer_error(a, 500, T_INTERNAL, "out of memory");
        return -1;
    }
    *out = acts;
    json_array_foreach(list, i, entry)
    {
        action_t *act = &acts[i];
        int found = 0;
        *nout = i + 1;
        for (k = get ? A_GET : A_CHECK; k <= (get ? A_GET : A_UPDATE); ++k) {
            spec = json_object_get(entry, member_names[k]);
            if (spec == NULL || json_is_null(spec))
                continue;
            found++;
            act->kind = (akind_t)k;
            act->spec = spec;
        }
        if (found != 1) {
            st_invalid(a, get ? "TransactItems can only contain one of Get"
                              : "TransactItems can only contain one of Check, Put, Update or Delete");
            return -1;
        }
        spec = act->spec;
        act->table = json_string_value(json_object_get(spec, "TableName"));
        obj = json_object_get(spec, act->kind == A_PUT ? "Item" : "Key");
        int rc = store_item_check(obj, err, sizeof(err));
        if (rc != 0) {
            st_answer_error(a, 400, rc == STORE_VALUE_ESERIALIZE ? T_SERIALIZATION : T_VALIDATION, "%s", err);
            return -1;
        }
        *(act->kind == A_PUT ? &act->item : &act->key) = obj;
        unsigned allowed = act->kind == A_GET      ? 1u << STORE_EXPR_PROJECTION
                           : act->kind == A_UPDATE ? 1u << STORE_EXPR_UPDATE | 1u << STORE_EXPR_CONDITION
                                                   : 1u << STORE_EXPR_CONDITION;
        if (st_exprs_parse(&act->x, spec, allowed, a) != 0)
            return -1;
        s = json_string_value(json_object_get(spec, "ReturnValuesOnConditionCheckFailure"));
        act->rvf_all_old = s != NULL && strcmp(s, "ALL_OLD") == 0;
    }
    return 0;
}

/* Tables, keys and duplicates of every action, in txn. 0, or -1 answered. */
static int resolve(store_t *s, MDB_txn *txn, action_t *acts, size_t n, st_answer_t *a)
{
    for (size_t i = 0; i != n; ++i) {
        action_t *act = &acts[i];
        MDB_val kv;
        if (st_open_table(s, txn, act->table, &act->sc, &act->dbi, a) != 0)
            return -1;
        if (st_item_key(s, &act->sc, act->kind == A_PUT ? act->item : act->key, act->kind == A_PUT, act->buf, sizeof(act->buf), &kv,
                        a) != 0)
            return -1;
        act->len = kv.mv_size;
    }
    for (size_t i = 0; i != n; ++i) {
        for (size_t j = 0; j != i; ++j) {
            if (acts[j].len == acts[i].len && strcmp(acts[j].table, acts[i].table) == 0 &&
                memcmp(acts[j].buf, acts[i].buf, acts[i].len) == 0) {
                st_invalid(a, "Transaction request cannot include multiple operations on one item");
                return -1;
            }
        }
    }
    return 0;
}

/* ---- TransactWriteItems ---- */

/* An update's key attributes: 0, or -1 answered (as UpdateItem, before any item is read). */
static int check_update_keys(const action_t *act, st_answer_t *a)
{
    if (act->kind != A_UPDATE || !act->x.has_update)
        return 0;
    for (size_t i = 0; i != act->x.update.nactions; ++i) {
        const store_expr_elem_t *e = &act->x.update.actions[i].path.elems[0];
        const char *keys[2] = {act->sc.pk, act->sc.sk};
        for (int n = 0; n != 2; ++n) {
            if (keys[n] != NULL && strlen(keys[n]) == e->len && memcmp(keys[n], e->name, e->len) == 0) {
                st_invalid(
                    a, "One or more parameter values were invalid: Cannot update attribute %s. This attribute is part of the key",
                    keys[n]);
                return -1;
            }
        }
    }
    return 0;
}

/* A cancellation reason (a new object). */
static json_t *reason(const char *code, const char *message, const json_t *item)
{
    json_t *r = json_pack("{s:s}", "Code", code);
    if (r != NULL && message != NULL)
        json_object_set_new(r, "Message", json_string(message));
    if (r != NULL && item != NULL)
        json_object_set_new(r, "Item", json_deep_copy(item));
    return r;
}

static int transact_write_run(store_t *s, MDB_txn *txn, st_job_t *j)
{
    tx_job_t *tj = (tx_job_t *)j;
    json_t *reasons = json_array(), *stored = NULL, *item = NULL;
    const json_t *old;
    char err[STORE_EXPR_ERR_MAX], codes[1200];
    size_t i, clen = 0;
    int failed = 0, ok = 0, rc;

    if (reasons == NULL) {
        st_answer_error(&j->ans, 500, T_INTERNAL, "out of memory");
        return 0;
    }
    if (resolve(s, txn, tj->acts, tj->n, &j->ans) != 0)
        goto out;
    for (i = 0; i != tj->n; ++i)
        if (check_update_keys(&tj->acts[i], &j->ans) != 0)
            goto out;
    /* every condition, against the items as they were: each action's own item is untouched by the others */
    for (i = 0; i != tj->n; ++i) {
        action_t *act = &tj->acts[i];
        MDB_val kv = {act->len, act->buf};
        json_t *r = NULL;
        if (st_load_item(txn, act->dbi, &kv, &stored, NULL, &j->ans) != 0)
            goto out;
        old = st_visible(&act->sc, stored); /* an expired item is absent */
        if (act->x.has_cond) {
            rc = store_eval_condition(&act->x.cond, old, act->x.vals, err, sizeof(err));
            if (rc == STORE_EVAL_EINVALID) {
                st_invalid(&j->ans, "%s", err);
                goto out;
            }
            if (rc != 0 && rc != 1) {
                st_answer_error(&j->ans, 500, T_INTERNAL, "out of memory");
                goto out;
            }
            if (rc == 0)
                r = reason("ConditionalCheckFailed", "The conditional request failed", act->rvf_all_old ? old : NULL);
        }
        if (r == NULL && act->kind == A_UPDATE) {
            item = old != NULL ? json_deep_copy(old) : json_deep_copy(act->key);
            if (item == NULL) {
                st_answer_error(&j->ans, 500, T_INTERNAL, "out of memory");
                goto out;
            }
            if (act->x.has_update &&
                (rc = store_eval_update(&act->x.update, item, old != NULL, act->x.vals, NULL, NULL, err, sizeof(err))) != 0) {
                if (rc != STORE_EVAL_EINVALID) {
                    st_answer_error(&j->ans, 500, T_INTERNAL, "out of memory");
                    goto out;
                }
                r = reason("ValidationError", err, NULL);
            } else if (store_item_size(item) > STORE_ITEM_MAX) {
                r = reason("ValidationError", "Item size to update has exceeded the maximum allowed size", NULL);
            }
        } else if (r == NULL && act->kind == A_PUT) {
            item = json_incref(act->item);
        }
        if (r == NULL)
            r = reason("None", NULL, NULL);
        else
            failed = 1;
        if (r == NULL || json_array_append_new(reasons, r) != 0) {
            st_answer_error(&j->ans, 500, T_INTERNAL, "out of memory");
            goto out;
        }
        /* the write (undone with the nested transaction when an action fails) */
        if (!failed && act->kind != A_CHECK) {
            if ((act->kind != A_DELETE || old != NULL) &&
                st_item_write(s, txn, &act->sc, &kv, stored, act->kind == A_DELETE ? NULL : item, NULL, &j->ans) != 0)
                goto out;
        }
        json_decref(stored);
        json_decref(item);
        stored = item = NULL;
    }
    if (failed) {
        json_t *r;
        clen = 0;
        codes[0] = '\0';
        json_array_foreach(reasons, i, r)
        {
            int w = snprintf(codes + clen, sizeof(codes) - clen, "%s%s", i != 0 ? ", " : "",
                             json_string_value(json_object_get(r, "Code")));
            if (w > 0 && (size_t)w < sizeof(codes) - clen)
                clen += (size_t)w;
        }
        char msg[1400];
        snprintf(msg, sizeof(msg), "Transaction cancelled, please refer cancellation reasons for specific reasons [%s]", codes);
        st_answer_json(&j->ans, json_pack("{s:s, s:s, s:O}", "__type", T_CANCELED, "message", msg, "CancellationReasons", reasons));
        j->ans.status = 400;
        goto out;
    }
    st_answer_text(&j->ans, "{}", 2);
    ok = 1;
out:
    json_decref(stored);
    json_decref(item);
    json_decref(reasons);
    return ok;
}

void st_transact_write_items(store_t *s, json_t *req, store_done_cb done, void *data)
{
    st_answer_t a = {0};
    tx_job_t *tj = calloc(1, sizeof(*tj));

    if (tj == NULL) {
        st_answer_error(&a, 500, T_INTERNAL, "out of memory");
        done(data, a.status, a.body, a.len);
        return;
    }
    tj->req = json_incref(req);
    tj->base.run = transact_write_run;
    tj->base.free = tx_job_free;
    tj->base.done = done;
    tj->base.data = data;
    if (check_items(tj->req, 0, &tj->acts, &tj->n, &a) != 0) {
        done(data, a.status, a.body, a.len);
        tx_job_free(&tj->base);
        return;
    }
    st_enqueue(s, &tj->base);
}

/* ---- TransactGetItems ---- */

void st_transact_get_items(store_t *s, json_t *req, st_answer_t *a)
{
    action_t *acts = NULL;
    size_t n = 0;
    MDB_txn *txn = NULL;
    json_t *responses = NULL;
    int rc;

    if (check_items(req, 1, &acts, &n, a) != 0)
        goto out;
    if ((responses = json_array()) == NULL) {
        st_answer_error(a, 500, T_INTERNAL, "out of memory");
        goto out;
    }
    if ((rc = st_read_begin(s, &txn)) != 0) {
        st_internal(a, rc);
        goto out;
    }
    if (resolve(s, txn, acts, n, a) != 0)
        goto out;
    for (size_t i = 0; i != n; ++i) {
        MDB_val kv = {acts[i].len, acts[i].buf};
        json_t *item, *o;
        if (st_load_item(txn, acts[i].dbi, &kv, &item, NULL, a) != 0)
            goto out;
        if (item != NULL && st_visible(&acts[i].sc, item) == NULL) {
            json_decref(item); /* expired */
            item = NULL;
        }
        if (item == NULL)
            o = json_object();
        else {
            json_t *p = acts[i].x.has_proj ? store_eval_project(&acts[i].x.proj, item) : json_incref(item);
            /* a projection shares the item's values: serialized only at the end, the item stays referenced by p */
            o = p != NULL ? json_pack("{s:o}", "Item", p) : NULL;
            json_decref(item);
        }
        if (o == NULL || json_array_append_new(responses, o) != 0) {
            st_answer_error(a, 500, T_INTERNAL, "out of memory");
            goto out;
        }
    }
    st_answer_json(a, json_pack("{s:o}", "Responses", responses));
    responses = NULL;
out:
    if (txn != NULL)
        st_read_end(txn);
    json_decref(responses);
    actions_free(acts, n);
}
