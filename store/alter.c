/*
 * store/alter.c: the operations that change a table after it is made: UpdateTable (global secondary indexes created,
 * updated, deleted; BillingMode, ProvisionedThroughput, StreamSpecification and TableClass recorded: there are no
 * streams nor storage classes here, but clients such as Dynamoose read back what they set), UpdateTimeToLive /
 * DescribeTimeToLive, and tags (TagResource, UntagResource, ListTagsOfResource; at most 50 per table, kept in the
 * description's private member ST_DESC_TAGS).
 *
 * Both writes run on the writer like any other, in one nested transaction: a new index is created AND filled from the
 * table's items (st_backfill) before the answer, so it is ACTIVE at once (DynamoDB reports CREATING, then ACTIVE; a
 * client that waits for ACTIVE finds it so on its first DescribeTable). The writer is busy for the time of the fill,
 * which grows with the table. Likewise enabling TTL fills the table's TTL database, and expired items vanish at once.
 *
 * As DynamoDB: one index created or deleted per UpdateTable (LimitExceededException), at most 20 global indexes, the
 * new index's key attributes in AttributeDefinitions; AttributeDefinitions keep only the attributes some key uses.
 * UpdateTimeToLive that enables TTL already enabled (or disables it already disabled) is a ValidationException.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/internal.h"

typedef struct alter_job {
    st_job_t base;
    char name[256];
    json_t *req;                   /* owned */
    json_t *create, *update, *del; /* the GSI updates (in req): at most one of create / del, at most one update */
    const char *index;             /* the IndexName of create or del */
    const char *uindex;            /* the IndexName of update */
    int enable;                    /* UpdateTimeToLive: TimeToLiveSpecification.Enabled, as st_get_bool read it */
} alter_job_t;

static void alter_job_free(st_job_t *j)
{
    alter_job_t *t = (alter_job_t *)j;
    json_decref(t->req);
    free(j->ans.body);
    free(t);
}

static alter_job_t *alter_job_new(json_t *req, const char *name, store_done_cb done, void *data)
{
    alter_job_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->req = json_incref(req);
    t->base.free = alter_job_free;
    t->base.done = done;
    t->base.data = data;
    return t;
}

/* Writes the table's description. 0 or an LMDB error. */
static int desc_put(store_t *s, MDB_txn *txn, const char *name, json_t *desc)
{
    char kb[260];
    char *text = json_dumps(desc, JSON_COMPACT);
    if (text == NULL)
        return ENOMEM;
    MDB_val k = st_meta_key(kb, 't', name), v = {strlen(text), text};
    int rc = mdb_put(txn, s->meta, &k, &v, 0);
    free(text);
    return rc;
}

static int key_uses(const json_t *ks, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(ks, i, e) if (strcmp(json_string_value(json_object_get(e, "AttributeName")), name) == 0) return 1;
    return 0;
}

/* AttributeDefinitions: the table's, with those of the request added (a conflicting type: -1 answered), keeping only
 * the attributes some key of desc uses. */
static int merge_defs(json_t *desc, json_t *extra, st_answer_t *a)
{
    json_t *defs = json_object_get(desc, "AttributeDefinitions"), *out = json_array(), *e;
    size_t i;

    json_array_foreach(extra, i, e)
    {
        const char *n = json_string_value(json_object_get(e, "AttributeName"));
        const char *t = json_string_value(json_object_get(e, "AttributeType"));
        store_type_t have = st_attr_type(defs, n);
        if (have != STORE_T_NONE && have != store_type_of_name(t, strlen(t))) {
            st_invalid(a, "One or more parameter values were invalid: Cannot change the type of attribute %s from %s to %s", n,
                       store_type_name(have), t);
            json_decref(out);
            return -1;
        }
        if (have == STORE_T_NONE)
            json_array_append(defs, e);
    }
    json_array_foreach(defs, i, e)
    {
        const char *n = json_string_value(json_object_get(e, "AttributeName"));
        int used = key_uses(json_object_get(desc, "KeySchema"), n);
        for (int g = 0; g != 2 && !used; ++g) {
            size_t k;
            json_t *ix;
            json_array_foreach(json_object_get(desc, g ? "GlobalSecondaryIndexes" : "LocalSecondaryIndexes"), k, ix) used =
                used || key_uses(json_object_get(ix, "KeySchema"), n);
        }
        if (used)
            json_array_append(out, e);
    }
    json_object_set_new(desc, "AttributeDefinitions", out);
    return 0;
}

/* The position of GSI `name` in desc, or -1. */
static long gsi_find(json_t *desc, const char *name)
{
    size_t i;
    json_t *ix;
    json_array_foreach(json_object_get(desc, "GlobalSecondaryIndexes"), i, ix)
    {
        if (strcmp(json_string_value(json_object_get(ix, "IndexName")), name) == 0)
            return (long)i;
    }
    return -1;
}

/* ---- UpdateTable ---- */

/* Whether table `name` exists, so that a prepare does not open a database (a handle kept until the process ends) for a
 * request that will fail on a missing table. */
static int table_exists(store_t *s, MDB_txn *txn, const char *name)
{
    char kb[260];
    MDB_val k = st_meta_key(kb, 't', name), v;
    return mdb_get(txn, s->meta, &k, &v) == 0;
}

static void update_prepare(store_t *s, MDB_txn *parent, st_job_t *j)
{
    alter_job_t *t = (alter_job_t *)j;
    char dbname[520];
    MDB_dbi dbi;
    if (t->create != NULL && table_exists(s, parent, t->name))
        st_job_open_db(s, parent, j, st_index_db_name(dbname, t->name, t->index), dbname, MDB_DUPSORT, &dbi);
}

static const char *billing_of(json_t *desc)
{
    const char *b = json_string_value(json_object_get(json_object_get(desc, "BillingModeSummary"), "BillingMode"));
    return b != NULL ? b : "PROVISIONED";
}

static int update_run(store_t *s, MDB_txn *txn, st_job_t *j)
{
    alter_job_t *t = (alter_job_t *)j;
    st_schema_t sc, nsc = {0};
    MDB_dbi dbi;
    json_t *desc = NULL, *pt = json_object_get(t->req, "ProvisionedThroughput");
    const char *billing = json_string_value(json_object_get(t->req, "BillingMode"));
    int ok = 0, rc = 0;

    if (st_open_table(s, txn, t->name, &sc, &dbi, &j->ans) != 0)
        return 0;
    if ((desc = json_deep_copy(sc.desc)) == NULL)
        goto oom;
    if (billing != NULL) {
        if (strcmp(billing, "PAY_PER_REQUEST") == 0)
            json_object_set_new(
                desc, "BillingModeSummary",
                json_pack("{s:s, s:I}", "BillingMode", billing, "LastUpdateToPayPerRequestDateTime", (json_int_t)time(NULL)));
        else
            json_object_del(desc, "BillingModeSummary");
    }
    st_apply_settings(desc, t->req, t->name);
    if (pt != NULL) {
        json_t *cur = json_object_get(desc, "ProvisionedThroughput");
        json_object_set(cur, "ReadCapacityUnits", json_object_get(pt, "ReadCapacityUnits"));
        json_object_set(cur, "WriteCapacityUnits", json_object_get(pt, "WriteCapacityUnits"));
    }
    if (t->create != NULL) {
        for (size_t i = 0; i != sc.nidx; ++i) {
            if (strcmp(sc.idx[i].name, t->index) == 0) {
                st_invalid(&j->ans, "One or more parameter values were invalid: Index with name: %s already exists", t->index);
                goto out;
            }
        }
        json_t *gsis = json_object_get(desc, "GlobalSecondaryIndexes");
        if (json_array_size(gsis) >= 20) {
            st_answer_error(&j->ans, 400, T_LIMIT, "Subscriber limit exceeded: a table has at most 20 global secondary indexes");
            goto out;
        }
        json_t *check = json_pack("{s:[O]}", "GlobalSecondaryIndexes", t->create),
               *defs = json_deep_copy(json_object_get(desc, "AttributeDefinitions"));
        json_t *extra = json_object_get(t->req, "AttributeDefinitions");
        size_t i;
        json_t *e;
        json_array_foreach(extra, i, e) if (st_attr_type(defs, json_string_value(json_object_get(e, "AttributeName"))) ==
                                            STORE_T_NONE) json_array_append(defs, e);
        rc = check == NULL || defs == NULL
                 ? -2
                 : st_check_indexes(check, defs, json_object_get(desc, "KeySchema"), billing_of(desc), &j->ans);
        json_decref(check);
        json_decref(defs);
        if (rc == -2)
            goto oom;
        if (rc != 0)
            goto out;
        if (gsis == NULL)
            json_object_set_new(desc, "GlobalSecondaryIndexes", gsis = json_array());
        json_array_append_new(gsis, st_index_desc(t->create, t->name, 1));
    }
    /* a Delete and an Update name their own indexes (one call may have both: each is looked up by its own name) */
    for (int u = 0; u != 2; ++u) {
        const char *name = u ? t->uindex : t->index;
        if ((u ? t->update : t->del) == NULL)
            continue;
        long at = gsi_find(desc, name);
        if (at < 0) {
            st_answer_error(&j->ans, 400, T_NOT_FOUND, "Requested resource not found: Index: %s not found", name);
            goto out;
        }
        json_t *gsis = json_object_get(desc, "GlobalSecondaryIndexes");
        if (!u) {
            for (size_t i = 0; i != sc.nidx; ++i)
                if (strcmp(sc.idx[i].name, name) == 0 && (rc = mdb_drop(txn, sc.idx[i].dbi, 0)) != 0)
                    goto lmdb;
            json_array_remove(gsis, (size_t)at);
            if (json_array_size(gsis) == 0)
                json_object_del(desc, "GlobalSecondaryIndexes");
        } else {
            json_t *upt = json_object_get(t->update, "ProvisionedThroughput"), *cur;
            cur = json_object_get(json_array_get(gsis, (size_t)at), "ProvisionedThroughput");
            json_object_set(cur, "ReadCapacityUnits", json_object_get(upt, "ReadCapacityUnits"));
            json_object_set(cur, "WriteCapacityUnits", json_object_get(upt, "WriteCapacityUnits"));
        }
    }
    if (merge_defs(desc, json_object_get(t->req, "AttributeDefinitions"), &j->ans) != 0)
        goto out;
    if ((rc = desc_put(s, txn, t->name, desc)) != 0)
        goto lmdb;
    if (t->create != NULL) {
        /* the new index, through the schema as readers will see it, filled from the items */
        if (st_open_table(s, txn, t->name, &nsc, &dbi, &j->ans) != 0)
            goto out;
        for (size_t i = 0; i != nsc.nidx; ++i)
            if (strcmp(nsc.idx[i].name, t->index) == 0 && (rc = st_backfill(txn, &nsc, &nsc.idx[i])) != 0)
                goto lmdb;
    }
    st_answer_json(&j->ans, json_pack("{s:o}", "TableDescription", st_describe(s, txn, t->name, desc, "ACTIVE")));
    ok = 1;
    goto out;
lmdb:
    st_internal(&j->ans, rc);
    goto out;
oom:
    st_answer_error(&j->ans, 500, T_INTERNAL, "out of memory");
out:
    json_decref(desc);
    st_schema_free(&sc);
    st_schema_free(&nsc);
    return ok;
}

/* A list of objects (NULL when absent): 0, or -1 answered (SerializationException). */
static int get_object_list(json_t *req, const char *name, json_t **out, st_answer_t *a)
{
    json_t *e;
    size_t i;
    if (st_get_list(req, name, out, a) != 0)
        return -1;
    json_array_foreach(*out, i, e) if (!json_is_object(e))
    {
        st_answer_error(a, 400, T_SERIALIZATION, json_is_array(e) ? "Start of list found where not expected" : "Expected null");
        return -1;
    }
    return 0;
}

void st_update_table(store_t *s, json_t *req, store_done_cb done, void *data)
{
    static const char *const attr_types[] = {"B", "N", "S", NULL}, *const billings[] = {"PROVISIONED", "PAY_PER_REQUEST", NULL};
    st_answer_t a = {0};
    st_verrs_t v = {0};
    const char *name, *billing;
    json_t *defs, *updates, *pt, *e, *create = NULL, *update = NULL, *del = NULL;
    char at[96];
    size_t i, changes = 0;

    if (st_check_table_name_req(req, &name, &a) != 0 || get_object_list(req, "AttributeDefinitions", &defs, &a) != 0 ||
        get_object_list(req, "GlobalSecondaryIndexUpdates", &updates, &a) != 0 ||
        st_get_string(req, "BillingMode", &billing, &a) != 0 || st_get_object(req, "ProvisionedThroughput", &pt, &a) != 0)
        goto answer;
    json_array_foreach(defs, i, e)
    {
        snprintf(at, sizeof(at), "attributeDefinitions.%zu.member.attributeName", i + 1);
        if (!json_is_string(json_object_get(e, "AttributeName")))
            st_verr(&v, NULL, at, "Member must not be null");
        snprintf(at, sizeof(at), "attributeDefinitions.%zu.member.attributeType", i + 1);
        if (!json_is_string(json_object_get(e, "AttributeType")))
            st_verr(&v, NULL, at, "Member must not be null");
        st_check_enum(&v, json_string_value(json_object_get(e, "AttributeType")), at, attr_types);
    }
    st_check_enum(&v, billing, "billingMode", billings);
    if (pt != NULL &&
        (!json_is_integer(json_object_get(pt, "ReadCapacityUnits")) || !json_is_integer(json_object_get(pt, "WriteCapacityUnits"))))
        st_verr(&v, NULL, "provisionedThroughput", "Member must have ReadCapacityUnits and WriteCapacityUnits");
    if (st_verr_answer(&v, &a) != 0)
        goto answer;
    json_array_foreach(updates, i, e)
    {
        json_t *c = json_object_get(e, "Create"), *u = json_object_get(e, "Update"), *d = json_object_get(e, "Delete");
        if ((c != NULL) + (u != NULL) + (d != NULL) != 1 || !json_is_string(json_object_get(c ? c : u ? u : d, "IndexName"))) {
            st_invalid(&a, "One or more parameter values were invalid: each GlobalSecondaryIndexUpdates entry needs one of Create, "
                           "Update or Delete, with an IndexName");
            goto answer;
        }
        if ((c != NULL || d != NULL) && (create != NULL || del != NULL)) {
            st_answer_error(&a, 400, T_LIMIT,
                            "Subscriber limit exceeded: Only 1 online index can be created or deleted simultaneously per table");
            goto answer;
        }
        if (u != NULL && (update != NULL || !json_is_object(json_object_get(u, "ProvisionedThroughput")))) {
            st_invalid(&a, "One or more parameter values were invalid: an index Update needs ProvisionedThroughput (one per call)");
            goto answer;
        }
        *(c ? &create : u ? &update : &del) = c ? c : u ? u : d;
    }
    changes = json_array_size(updates) + (billing != NULL) + (pt != NULL) + (json_object_get(req, "StreamSpecification") != NULL) +
              (json_object_get(req, "TableClass") != NULL) + (json_object_get(req, "SSESpecification") != NULL);
    if (changes == 0) {
        st_invalid(&a, "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, GlobalSecondaryIndexUpdates or "
                       "SSESpecification or ReplicaUpdates is required");
        goto answer;
    }
    if (create != NULL && update != NULL) {
        st_invalid(&a, "One or more parameter values were invalid: an index cannot be created and updated in one call");
        goto answer;
    }
    alter_job_t *t = alter_job_new(req, name, done, data);
    if (t == NULL) {
        st_answer_error(&a, 500, T_INTERNAL, "out of memory");
        goto answer;
    }
    t->create = create, t->update = update, t->del = del;
    /* the index created or deleted, and the one updated: apart (an Update beside a Delete must not take its name) */
    t->index = create != NULL || del != NULL ? json_string_value(json_object_get(create ? create : del, "IndexName")) : NULL;
    t->uindex = update != NULL ? json_string_value(json_object_get(update, "IndexName")) : NULL;
    t->base.prepare = update_prepare;
    t->base.run = update_run;
    st_enqueue(s, &t->base);
    return;
answer:
    done(data, a.status, a.body, a.len);
}

/* ---- Time to live ---- */

static void ttl_prepare(store_t *s, MDB_txn *parent, st_job_t *j)
{
    alter_job_t *t = (alter_job_t *)j;
    char dbname[520];
    MDB_dbi dbi;
    if (t->enable && table_exists(s, parent, t->name))
        st_job_open_db(s, parent, j, st_ttl_db_name(dbname, t->name), dbname, MDB_DUPSORT, &dbi);
}

static int ttl_run(store_t *s, MDB_txn *txn, st_job_t *j)
{
    alter_job_t *t = (alter_job_t *)j;
    json_t *spec = json_object_get(t->req, "TimeToLiveSpecification"), *desc = NULL;
    int enable = t->enable, ok = 0, rc;
    st_schema_t sc, nsc = {0};
    MDB_dbi dbi;
    char dbname[520];

    if (st_open_table(s, txn, t->name, &sc, &dbi, &j->ans) != 0)
        return 0;
    if ((sc.ttl != NULL) == enable) {
        st_invalid(&j->ans, "TimeToLive is already %s", enable ? "enabled" : "disabled");
        goto out;
    }
    const char *attr = json_string_value(json_object_get(spec, "AttributeName"));
    if (!enable && attr != NULL && strcmp(attr, sc.ttl) != 0) { /* DynamoDB disables only the attribute it has */
        st_invalid(&j->ans, "TimeToLive is active on a different AttributeName: current AttributeName is %s", sc.ttl);
        goto out;
    }
    if ((desc = json_deep_copy(sc.desc)) == NULL) {
        st_answer_error(&j->ans, 500, T_INTERNAL, "out of memory");
        goto out;
    }
    if (enable)
        json_object_set_new(desc, ST_DESC_TTL,
                            json_pack("{s:O, s:b}", "AttributeName", json_object_get(spec, "AttributeName"), "Enabled", 1));
    else
        json_object_del(desc, ST_DESC_TTL);
    if ((rc = desc_put(s, txn, t->name, desc)) != 0)
        goto lmdb;
    if (enable) {
        if (st_open_table(s, txn, t->name, &nsc, &dbi, &j->ans) != 0)
            goto out;
        if ((rc = st_backfill(txn, &nsc, NULL)) != 0)
            goto lmdb;
        s->ttl_active = 1; /* the writer's own flag (this runs on the writer) */
    } else if (st_table_dbi(s, st_ttl_db_name(dbname, t->name), &dbi) == 0 && (rc = mdb_drop(txn, dbi, 0)) != 0) {
        goto lmdb;
    }
    st_answer_json(&j->ans, json_pack("{s:{s:O, s:b}}", "TimeToLiveSpecification", "AttributeName",
                                      json_object_get(spec, "AttributeName"), "Enabled", enable));
    ok = 1;
    goto out;
lmdb:
    st_internal(&j->ans, rc);
out:
    json_decref(desc);
    st_schema_free(&sc);
    st_schema_free(&nsc);
    return ok;
}

void st_update_time_to_live(store_t *s, json_t *req, store_done_cb done, void *data)
{
    st_answer_t a = {0};
    st_verrs_t v = {0};
    const char *name, *attr = NULL;
    json_t *spec;
    int enabled = 0;

    if (st_check_table_name_req(req, &name, &a) != 0 || st_get_object(req, "TimeToLiveSpecification", &spec, &a) != 0 ||
        (spec != NULL && (st_get_string(spec, "AttributeName", &attr, &a) != 0 || st_get_bool(spec, "Enabled", &enabled, &a) != 0)))
        goto answer;
    if (spec == NULL)
        st_verr(&v, NULL, "timeToLiveSpecification", "Member must not be null");
    else {
        if (attr == NULL)
            st_verr(&v, NULL, "timeToLiveSpecification.attributeName", "Member must not be null");
        else if (strlen(attr) < 1 || strlen(attr) > 255)
            st_verr(&v, attr, "timeToLiveSpecification.attributeName", "Member must have length between 1 and 255");
        if (json_object_get(spec, "Enabled") == NULL || json_is_null(json_object_get(spec, "Enabled")))
            st_verr(&v, NULL, "timeToLiveSpecification.enabled", "Member must not be null");
    }
    if (st_verr_answer(&v, &a) != 0)
        goto answer;
    alter_job_t *t = alter_job_new(req, name, done, data);
    if (t == NULL) {
        st_answer_error(&a, 500, T_INTERNAL, "out of memory");
        goto answer;
    }
    t->base.prepare = ttl_prepare;
    t->base.run = ttl_run;
    t->enable = enabled;
    st_enqueue(s, &t->base);
    return;
answer:
    done(data, a.status, a.body, a.len);
}

void st_describe_time_to_live(store_t *s, json_t *req, st_answer_t *a)
{
    const char *name;
    st_schema_t sc;
    MDB_txn *txn;
    MDB_dbi dbi;
    int rc;

    if (st_check_table_name_req(req, &name, a) != 0)
        return;
    if ((rc = st_read_begin(s, &txn)) != 0) {
        st_internal(a, rc);
        return;
    }
    if (st_open_table(s, txn, name, &sc, &dbi, a) == 0) {
        json_t *ttl = json_object_get(sc.desc, ST_DESC_TTL);
        json_t *d =
            json_is_true(json_object_get(ttl, "Enabled"))
                ? json_pack("{s:s, s:O}", "TimeToLiveStatus", "ENABLED", "AttributeName", json_object_get(ttl, "AttributeName"))
                : json_pack("{s:s}", "TimeToLiveStatus", "DISABLED");
        st_answer_json(a, json_pack("{s:o}", "TimeToLiveDescription", d));
        st_schema_free(&sc);
    }
    st_read_end(txn);
}

/* ---- settings recorded, and tags ---- */

void st_apply_settings(json_t *desc, const json_t *req, const char *table)
{
    json_t *ss = json_object_get(req, "StreamSpecification");
    const char *tc = json_string_value(json_object_get(req, "TableClass"));
    if (json_is_object(ss)) {
        json_object_del(desc, "LatestStreamArn");
        json_object_del(desc, "LatestStreamLabel");
        if (json_is_true(json_object_get(ss, "StreamEnabled"))) {
            char label[32], arn[600];
            time_t now = time(NULL);
            strftime(label, sizeof(label), "%Y-%m-%dT%H:%M:%S.000", gmtime(&now));
            snprintf(arn, sizeof(arn), "arn:aws:dynamodb:local:000000000000:table/%s/stream/%s", table, label);
            json_object_set_new(desc, "StreamSpecification", json_deep_copy(ss));
            json_object_set_new(desc, "LatestStreamLabel", json_string(label));
            json_object_set_new(desc, "LatestStreamArn", json_string(arn));
        } else {
            json_object_del(desc, "StreamSpecification");
        }
    }
    if (tc != NULL)
        json_object_set_new(desc, "TableClassSummary", json_pack("{s:s}", "TableClass", tc));
}

/* The table an ARN names ("arn:...:table/NAME"), into buf (256 bytes); NULL when it names none. */
static const char *arn_table(const char *arn, char *buf)
{
    const char *t = arn != NULL ? strstr(arn, ":table/") : NULL;
    if (t == NULL || strchr(t + 7, '/') != NULL || strlen(t + 7) < 3 || strlen(t + 7) > 255)
        return NULL;
    return strcpy(buf, t + 7);
}

typedef struct tag_job {
    alter_job_t base;
    int untag;
} tag_job_t;

static int tag_run(store_t *s, MDB_txn *txn, st_job_t *j)
{
    tag_job_t *t = (tag_job_t *)j;
    st_schema_t sc;
    MDB_dbi dbi;
    json_t *desc, *tags, *e;
    size_t i;
    int rc;

    if (st_open_table(s, txn, t->base.name, &sc, &dbi, &j->ans) != 0)
        return 0;
    desc = json_deep_copy(sc.desc);
    st_schema_free(&sc);
    if (desc == NULL || ((tags = json_object_get(desc, ST_DESC_TAGS)) == NULL &&
                         json_object_set_new(desc, ST_DESC_TAGS, tags = json_object()) != 0)) {
        json_decref(desc);
        st_answer_error(&j->ans, 500, T_INTERNAL, "out of memory");
        return 0;
    }
    json_array_foreach(json_object_get(t->base.req, t->untag ? "TagKeys" : "Tags"), i, e)
    {
        if (t->untag)
            json_object_del(tags, json_string_value(e));
        else
            json_object_set(tags, json_string_value(json_object_get(e, "Key")), json_object_get(e, "Value"));
    }
    if (json_object_size(tags) > 50) {
        json_decref(desc);
        st_answer_error(&j->ans, 400, T_LIMIT, "The number of tags exceeds the limit of 50 per resource");
        return 0;
    }
    rc = desc_put(s, txn, t->base.name, desc);
    json_decref(desc);
    if (rc != 0) {
        st_internal(&j->ans, rc);
        return 0;
    }
    st_answer_text(&j->ans, "{}", 2);
    return 1;
}

/* TagResource / UntagResource: checks, then a job. */
static void tag_op(store_t *s, json_t *req, int untag, store_done_cb done, void *data)
{
    st_answer_t a = {0};
    const char *arn;
    char name[256];
    json_t *list = json_object_get(req, untag ? "TagKeys" : "Tags"), *e;
    size_t i;

    if (st_get_string(req, "ResourceArn", &arn, &a) != 0)
        goto answer;
    if (arn == NULL || arn_table(arn, name) == NULL) {
        st_invalid(&a, "Invalid TableArn: Invalid ResourceArn provided as input %s", arn != NULL ? arn : "null");
        goto answer;
    }
    if (!json_is_array(list) || json_array_size(list) == 0) {
        st_invalid(&a, "1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null",
                   untag ? "tagKeys" : "tags");
        goto answer;
    }
    json_array_foreach(list, i, e)
    {
        const char *k = json_string_value(untag ? e : json_object_get(e, "Key"));
        const char *v = untag ? "" : json_string_value(json_object_get(e, "Value"));
        if (k == NULL || strlen(k) < 1 || strlen(k) > 128 || v == NULL || strlen(v) > 256) {
            st_invalid(&a, "One or more parameter values were invalid: a tag needs a Key of 1..128 characters and a Value of at "
                           "most 256");
            goto answer;
        }
    }
    tag_job_t *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        st_answer_error(&a, 500, T_INTERNAL, "out of memory");
        goto answer;
    }
    snprintf(t->base.name, sizeof(t->base.name), "%s", name);
    t->base.req = json_incref(req);
    t->untag = untag;
    t->base.base.run = tag_run;
    t->base.base.free = alter_job_free;
    t->base.base.done = done;
    t->base.base.data = data;
    st_enqueue(s, &t->base.base);
    return;
answer:
    done(data, a.status, a.body, a.len);
}

void st_tag_resource(store_t *s, json_t *req, store_done_cb done, void *data)
{
    tag_op(s, req, 0, done, data);
}

void st_untag_resource(store_t *s, json_t *req, store_done_cb done, void *data)
{
    tag_op(s, req, 1, done, data);
}

void st_list_tags_of_resource(store_t *s, json_t *req, st_answer_t *a)
{
    const char *arn;
    char name[256];
    st_schema_t sc;
    MDB_txn *txn;
    MDB_dbi dbi;
    int rc;

    if (st_get_string(req, "ResourceArn", &arn, a) != 0)
        return;
    if (arn == NULL || arn_table(arn, name) == NULL) {
        st_invalid(a, "Invalid TableArn: Invalid ResourceArn provided as input %s", arn != NULL ? arn : "null");
        return;
    }
    if ((rc = st_read_begin(s, &txn)) != 0) {
        st_internal(a, rc);
        return;
    }
    if (st_open_table(s, txn, name, &sc, &dbi, a) == 0) {
        json_t *tags = json_array(), *v;
        const char *k;
        json_object_foreach(json_object_get(sc.desc, ST_DESC_TAGS), k, v)
            json_array_append_new(tags, json_pack("{s:s, s:O}", "Key", k, "Value", v));
        st_answer_json(a, json_pack("{s:o}", "Tags", tags));
        st_schema_free(&sc);
    } else if (a->status == 400) { /* missing: in DynamoDB's words for this operation (a 500 stays as it is) */
        free(a->body);
        *a = (st_answer_t){0};
        st_answer_error(a, 400, T_NOT_FOUND, "Requested resource not found: ResourcArn: %s not found", arn);
    }
    st_read_end(txn);
}
