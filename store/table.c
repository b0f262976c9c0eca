/*
 * store/table.c: the table operations (CreateTable, DeleteTable, DescribeTable, ListTables), table schemas and the
 * per-table counters (ItemCount, TableSizeBytes), on the meta database (layout: store/internal.h).
 *
 * Descriptions are stored in DynamoDB's TableDescription shape, minus what changes with every write (ItemCount and
 * TableSizeBytes, kept exactly in a 16-byte "c/NAME" record that each item write updates in its own nested
 * transaction, so a job that fails leaves the counts as they were). Secondary indexes (LocalSecondaryIndexes,
 * GlobalSecondaryIndexes) are validated and kept in the description; CreateTable opens their databases, which every
 * item write keeps in step (store/write.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "store/internal.h"

#define ARN_PREFIX "arn:aws:dynamodb:local:000000000000:table/"

MDB_val st_meta_key(char *buf, char kind, const char *name)
{
    size_t n = strlen(name);
    buf[0] = kind;
    buf[1] = '/';
    memcpy(buf + 2, name, n); /* names are at most 255 bytes (checked before any lookup) */
    return (MDB_val){n + 2, buf};
}

/* ---- schemas and counters ---- */

void st_schema_free(st_schema_t *sc)
{
    json_decref(sc->desc);
    free(sc->idx);
    memset(sc, 0, sizeof(*sc));
}

store_type_t st_attr_type(const json_t *defs, const char *name)
{
    size_t i;
    json_t *d;
    json_array_foreach(defs, i, d)
    {
        const char *n = json_string_value(json_object_get(d, "AttributeName"));
        const char *t = json_string_value(json_object_get(d, "AttributeType"));
        if (n != NULL && t != NULL && strcmp(n, name) == 0)
            return store_type_of_name(t, strlen(t));
    }
    return STORE_T_NONE;
}

/* The secondary indexes of a description into out->idx. 0, or -1 (a damaged record, or out of memory). */
static int indexes_of(json_t *desc, json_t *defs, st_schema_t *out)
{
    json_t *lsi = json_object_get(desc, "LocalSecondaryIndexes"), *gsi = json_object_get(desc, "GlobalSecondaryIndexes");
    size_t n = json_array_size(lsi) + json_array_size(gsi), i;
    json_t *ix;

    if (n == 0)
        return 0;
    if ((out->idx = calloc(n, sizeof(*out->idx))) == NULL)
        return -1;
    for (int g = 0; g != 2; ++g) {
        json_array_foreach(g ? gsi : lsi, i, ix)
        {
            st_index_t *x = &out->idx[out->nidx++];
            json_t *ks = json_object_get(ix, "KeySchema"), *proj = json_object_get(ix, "Projection");
            const char *pt = json_string_value(json_object_get(proj, "ProjectionType"));
            x->name = json_string_value(json_object_get(ix, "IndexName"));
            x->global = g;
            x->pk = json_string_value(json_object_get(json_array_get(ks, 0), "AttributeName"));
            x->sk = json_string_value(json_object_get(json_array_get(ks, 1), "AttributeName"));
            if (x->name == NULL || x->pk == NULL || pt == NULL)
                return -1;
            x->pk_type = st_attr_type(defs, x->pk);
            x->sk_type = x->sk != NULL ? st_attr_type(defs, x->sk) : STORE_T_NONE;
            if (x->pk_type == STORE_T_NONE || (x->sk != NULL && x->sk_type == STORE_T_NONE))
                return -1;
            x->proj = !strcmp(pt, "ALL") ? ST_PROJ_ALL : !strcmp(pt, "INCLUDE") ? ST_PROJ_INCLUDE : ST_PROJ_KEYS_ONLY;
            x->include = json_object_get(proj, "NonKeyAttributes");
        }
    }
    return 0;
}

/* The schema of a description (checked when the table was made; -1 only for a damaged record). */
static int schema_of(json_t *desc, st_schema_t *out)
{
    json_t *ks = json_object_get(desc, "KeySchema"), *defs = json_object_get(desc, "AttributeDefinitions");
    memset(out, 0, sizeof(*out));
    out->desc = desc;
    if (json_array_size(ks) < 1 || json_array_size(ks) > 2)
        return -1;
    out->pk = json_string_value(json_object_get(json_array_get(ks, 0), "AttributeName"));
    if (json_array_size(ks) == 2)
        out->sk = json_string_value(json_object_get(json_array_get(ks, 1), "AttributeName"));
    if (out->pk == NULL || (json_array_size(ks) == 2 && out->sk == NULL))
        return -1;
    out->pk_type = st_attr_type(defs, out->pk);
    out->sk_type = out->sk != NULL ? st_attr_type(defs, out->sk) : STORE_T_NONE;
    if (out->pk_type == STORE_T_NONE || (out->sk != NULL && out->sk_type == STORE_T_NONE))
        return -1;
    json_t *ttl = json_object_get(desc, ST_DESC_TTL);
    if (json_is_true(json_object_get(ttl, "Enabled")))
        out->ttl = json_string_value(json_object_get(ttl, "AttributeName"));
    return indexes_of(desc, defs, out);
}

int st_schema_load(store_t *s, MDB_txn *txn, const char *name, st_schema_t *out)
{
    char kb[260];
    MDB_val k = st_meta_key(kb, 't', name), v;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = mdb_get(txn, s->meta, &k, &v)) != 0)
        return rc;
    json_t *desc = st_desc_parse(s, &v);
    if (desc == NULL)
        return MDB_CORRUPTED;
    if (schema_of(desc, out) != 0) {
        st_schema_free(out); /* and desc */
        return MDB_CORRUPTED;
    }
    return 0;
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i)
        v = v << 8 | p[i];
    return v;
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i != 8; ++i, v >>= 8)
        p[i] = (uint8_t)v;
}

int st_counters_get(store_t *s, MDB_txn *txn, const char *name, uint64_t *count, uint64_t *bytes)
{
    char kb[260];
    MDB_val k = st_meta_key(kb, 'c', name), v;
    int rc = mdb_get(txn, s->meta, &k, &v);

    *count = *bytes = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc == 0 && v.mv_size == 16) {
        *count = get_le64(v.mv_data);
        *bytes = get_le64((uint8_t *)v.mv_data + 8);
    }
    return rc;
}

int st_counters_add(store_t *s, MDB_txn *txn, const char *name, int64_t dcount, int64_t dbytes)
{
    char kb[260];
    uint8_t rec[16];
    uint64_t count, bytes;
    int rc;

    if (dcount == 0 && dbytes == 0)
        return 0;
    if ((rc = st_counters_get(s, txn, name, &count, &bytes)) != 0)
        return rc;
    /* never below zero, whatever a damaged record said */
    count = dcount < 0 && (uint64_t)-dcount > count ? 0 : count + (uint64_t)dcount;
    bytes = dbytes < 0 && (uint64_t)-dbytes > bytes ? 0 : bytes + (uint64_t)dbytes;
    put_le64(rec, count);
    put_le64(rec + 8, bytes);
    MDB_val k = st_meta_key(kb, 'c', name), v = {16, rec};
    return mdb_put(txn, s->meta, &k, &v, 0);
}

/* The indexes' ItemCount in the description o (a shallow copy: their arrays are copied before they change), from their
 * databases' entries (an index holds an entry per item that has its key attributes). IndexSizeBytes stays 0. */
static void index_counts(store_t *s, MDB_txn *txn, const char *name, json_t *o)
{
    static const char *const kinds[2] = {"LocalSecondaryIndexes", "GlobalSecondaryIndexes"};
    char dbname[520];
    for (int g = 0; g != 2; ++g) {
        json_t *l = json_object_get(o, kinds[g]), *ix;
        size_t i;
        if (!json_is_array(l) || (l = json_deep_copy(l)) == NULL || json_object_set_new(o, kinds[g], l) != 0)
            continue;
        json_array_foreach(l, i, ix)
        {
            const char *iname = json_string_value(json_object_get(ix, "IndexName"));
            MDB_dbi dbi;
            MDB_stat st;
            if (iname != NULL && st_table_dbi(s, st_index_db_name(dbname, name, iname), &dbi) == 0 && mdb_stat(txn, dbi, &st) == 0)
                json_object_set_new(ix, "ItemCount", json_integer((json_int_t)st.ms_entries));
        }
    }
}

/* The description as DescribeTable shows it: the stored one without its private members, with the counters (a new
 * object). */
json_t *st_describe(store_t *s, MDB_txn *txn, const char *name, json_t *desc, const char *status)
{
    uint64_t count = 0, bytes = 0;
    json_t *o = json_copy(desc);
    st_counters_get(s, txn, name, &count, &bytes);
    if (o != NULL) {
        json_object_del(o, ST_DESC_TTL);
        json_object_del(o, ST_DESC_TAGS);
        json_object_set_new(o, "TableStatus", json_string(status));
        json_object_set_new(o, "ItemCount", json_integer((json_int_t)count));
        json_object_set_new(o, "TableSizeBytes", json_integer((json_int_t)bytes));
        index_counts(s, txn, name, o);
    }
    return o;
}

/* Opens a database and publishes its handle (at open time, before any reader). */
static int open_published(store_t *s, MDB_txn *txn, const char *name, const char *dbname, unsigned flags)
{
    MDB_dbi dbi;
    int rc = mdb_dbi_open(txn, dbname, flags, &dbi);
    return rc != 0 ? rc : st_map_put(s, name, dbi);
}

int st_tables_open_all(store_t *s, MDB_txn *txn, char *bad, size_t badlen)
{
    MDB_cursor *c;
    MDB_val k = {2, "t/"}, v;
    char name[260], dbname[520];
    int rc;

    if ((rc = mdb_cursor_open(txn, s->meta, &c)) != 0)
        return rc;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size < 3 || k.mv_size > 257 || memcmp(k.mv_data, "t/", 2) != 0)
            break;
        st_schema_t sc;
        memcpy(name, (char *)k.mv_data + 2, k.mv_size - 2);
        name[k.mv_size - 2] = '\0';
        snprintf(dbname, sizeof(dbname), "t.%s", name);
        if ((rc = open_published(s, txn, name, dbname, 0)) != 0 || (rc = st_schema_load(s, txn, name, &sc)) != 0)
            break;
        for (size_t i = 0; i != sc.nidx && rc == 0; ++i)
            rc = open_published(s, txn, st_index_db_name(dbname, name, sc.idx[i].name), dbname, MDB_DUPSORT);
        if (rc == 0 && sc.ttl != NULL) {
            rc = open_published(s, txn, st_ttl_db_name(dbname, name), dbname, MDB_DUPSORT);
            s->ttl_active = 1;
        }
        st_schema_free(&sc);
        if (rc != 0)
            break;
    }
    if (rc != 0 && rc != MDB_NOTFOUND)
        snprintf(bad, badlen, "%s", name);
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* ---- request checks shared by the table operations ---- */

/* TableName as DescribeTable and DeleteTable check it (dynalite's `tableName: true` members). 0, or -1 answered. */
int st_check_table_name_req(json_t *req, const char **name, st_answer_t *a)
{
    st_verrs_t v = {0};
    if (st_get_string(req, "TableName", name, a) != 0)
        return -1;
    if (*name == NULL) {
        st_invalid(a, "The parameter 'TableName' is required but was not present in the request");
        return -1;
    }
    if (strlen(*name) < 3 || strlen(*name) > 255) {
        st_invalid(a, "TableName must be at least 3 characters long and at most 255 characters long");
        return -1;
    }
    st_check_table_name(&v, *name, "tableName");
    return st_verr_answer(&v, a);
}

/* ---- CreateTable ---- */

typedef struct table_job {
    st_job_t base;
    char name[256];
    json_t *desc;
} table_job_t;

static void table_job_free(st_job_t *j)
{
    table_job_t *t = (table_job_t *)j;
    json_decref(t->desc);
    free(j->ans.body);
    free(t);
}

/* Opens (creating) the databases of the table described by t->desc: its own and its indexes'. */
static void create_prepare(store_t *s, MDB_txn *parent, st_job_t *j)
{
    table_job_t *t = (table_job_t *)j;
    char kb[260], dbname[520];
    MDB_val k = st_meta_key(kb, 't', t->name), v;
    int rc = mdb_get(parent, s->meta, &k, &v);
    st_schema_t sc;
    MDB_dbi dbi;

    if (rc == 0) {
        st_answer_error(&j->ans, 400, T_IN_USE, "Table already exists: %s", t->name);
        return;
    }
    if (rc != MDB_NOTFOUND) {
        st_internal(&j->ans, rc);
        return;
    }
    snprintf(dbname, sizeof(dbname), "t.%s", t->name);
    if (st_job_open_db(s, parent, j, t->name, dbname, 0, &dbi) != 0)
        return;
    if (schema_of(json_incref(t->desc), &sc) != 0) {
        st_schema_free(&sc);
        st_answer_error(&j->ans, 500, T_INTERNAL, "out of memory");
        return;
    }
    for (size_t i = 0; i != sc.nidx; ++i)
        if (st_job_open_db(s, parent, j, st_index_db_name(dbname, t->name, sc.idx[i].name), dbname, MDB_DUPSORT, &dbi) != 0)
            break;
    st_schema_free(&sc);
}

static int create_run(store_t *s, MDB_txn *txn, st_job_t *j)
{
    table_job_t *t = (table_job_t *)j;
    char kb[260];
    uint8_t zero[16] = {0};
    char *text = json_dumps(t->desc, JSON_COMPACT);
    int rc;

    if (text == NULL) {
        st_answer_error(&j->ans, 500, T_INTERNAL, "out of memory");
        return 0;
    }
    MDB_val k = st_meta_key(kb, 't', t->name), v = {strlen(text), text};
    /* the databases of a deleted table of that name were emptied; dropping again costs nothing and makes sure */
    for (size_t i = 0; i != j->nopened; ++i) {
        if ((rc = mdb_drop(txn, j->opened[i].dbi, 0)) != 0) {
            free(text);
            st_internal(&j->ans, rc);
            return 0;
        }
    }
    if ((rc = mdb_put(txn, s->meta, &k, &v, 0)) != 0) {
        free(text);
        st_internal(&j->ans, rc);
        return 0;
    }
    free(text);
    k = st_meta_key(kb, 'c', t->name);
    v = (MDB_val){16, zero};
    if ((rc = mdb_put(txn, s->meta, &k, &v, 0)) != 0) {
        st_internal(&j->ans, rc);
        return 0;
    }
    /* as DescribeTable shows it: without the private members (tags), with the counters */
    st_answer_json(&j->ans, json_pack("{s:o}", "TableDescription", st_describe(s, txn, t->name, t->desc, "ACTIVE")));
    return 1;
}

/* KeySchema / AttributeDefinitions: arrays of objects with string members (SerializationException otherwise). */
static int check_struct_list(json_t *req, const char *member, const char *f1, const char *f2, json_t **out, st_answer_t *a)
{
    json_t *l = json_object_get(req, member), *e;
    size_t i;
    *out = NULL;
    if (l == NULL || json_is_null(l))
        return 0;
    if (!json_is_array(l)) {
        st_answer_error(a, 400, T_SERIALIZATION,
                        json_is_object(l) ? "Start of structure or map found where not expected." : "Expected list or null");
        return -1;
    }
    json_array_foreach(l, i, e)
    {
        const char *dummy;
        if (json_is_array(e) || (!json_is_object(e) && !json_is_null(e))) {
            st_answer_error(a, 400, T_SERIALIZATION, json_is_array(e) ? "Start of list found where not expected" : "Expected null");
            return -1;
        }
        if (st_get_string(e, f1, &dummy, a) != 0 || st_get_string(e, f2, &dummy, a) != 0)
            return -1;
    }
    *out = l;
    return 0;
}

static const char *str_member(const json_t *o, const char *name)
{
    return json_string_value(json_object_get(o, name));
}

/* The custom checks of CreateTable (after the per-member constraints), dynalite's order. 0, or -1 answered. */
int st_check_indexes(json_t *req, json_t *defs, json_t *ks, const char *billing, st_answer_t *a)
{
    static const char *const kinds[2] = {"LocalSecondaryIndexes", "GlobalSecondaryIndexes"};
    char names[64][256];
    size_t nnames = 0;

    for (int g = 0; g != 2; ++g) {
        json_t *l = json_object_get(req, kinds[g]), *ix;
        size_t i;
        if (l == NULL || json_is_null(l))
            continue;
        if (!json_is_array(l)) {
            st_answer_error(a, 400, T_SERIALIZATION, "Expected list or null");
            return -1;
        }
        if (json_array_size(l) == 0) {
            st_invalid(a, "One or more parameter values were invalid: List of %s is empty", kinds[g]);
            return -1;
        }
        if (g == 0 && json_array_size(ks) != 2) {
            st_invalid(a, "One or more parameter values were invalid: Table KeySchema does not have a range key, which is required "
                          "when specifying a LocalSecondaryIndex");
            return -1;
        }
        json_array_foreach(l, i, ix)
        {
            const char *name = str_member(ix, "IndexName");
            json_t *iks = json_object_get(ix, "KeySchema"), *proj = json_object_get(ix, "Projection");
            if (name == NULL || strlen(name) < 3 || strlen(name) > 255 || !json_is_array(iks) || json_array_size(iks) < 1 ||
                json_array_size(iks) > 2 || !json_is_object(proj)) {
                st_invalid(a,
                           "One or more parameter values were invalid: %s[%zu] needs IndexName (3..255 characters), a KeySchema "
                           "of 1 or 2 elements and a Projection",
                           kinds[g], i);
                return -1;
            }
            /* DynamoDB's pattern of index names (Query's IndexName is checked against it: another name could not be
             * queried) */
            if (strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != strlen(name)) {
                st_verrs_t v = {0};
                char at[64];
                snprintf(at, sizeof(at), "%s.%zu.member.indexName", g ? "globalSecondaryIndexes" : "localSecondaryIndexes", i + 1);
                st_verr(&v, name, at, "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+");
                return st_verr_answer(&v, a);
            }
            const char *h = str_member(json_array_get(iks, 0), "AttributeName"),
                       *r = json_array_size(iks) == 2 ? str_member(json_array_get(iks, 1), "AttributeName") : NULL;
            if (h == NULL || st_attr_type(defs, h) == STORE_T_NONE ||
                (json_array_size(iks) == 2 && (r == NULL || st_attr_type(defs, r) == STORE_T_NONE))) {
                st_invalid(a,
                           "One or more parameter values were invalid: Some index key attributes are not defined in "
                           "AttributeDefinitions. Keys: [%s%s%s]",
                           h ? h : "null", r ? ", " : "", r ? r : "");
                return -1;
            }
            if (r != NULL && strcmp(h, r) == 0) {
                st_invalid(a, "Both the Hash Key and the Range Key element in the KeySchema have the same name");
                return -1;
            }
            const char *t0 = str_member(json_array_get(iks, 0), "KeyType"), *t1 = str_member(json_array_get(iks, 1), "KeyType");
            if (t0 == NULL || strcmp(t0, "HASH") != 0) {
                st_invalid(a, "Invalid KeySchema: The first KeySchemaElement is not a HASH key type");
                return -1;
            }
            if (r != NULL && (t1 == NULL || strcmp(t1, "RANGE") != 0)) {
                st_invalid(a, "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type");
                return -1;
            }
            if (g == 0) {
                const char *th = str_member(json_array_get(ks, 0), "AttributeName");
                if (r == NULL) {
                    st_invalid(a,
                               "One or more parameter values were invalid: Index KeySchema does not have a range key for index: %s",
                               name);
                    return -1;
                }
                if (strcmp(h, th) != 0) {
                    st_invalid(
                        a,
                        "One or more parameter values were invalid: Index KeySchema does not have the same leading hash key as "
                        "table KeySchema for index: %s. index hash key: %s, table hash key: %s",
                        name, h, th);
                    return -1;
                }
            }
            const char *pt = str_member(proj, "ProjectionType");
            if (pt == NULL) {
                st_invalid(a, "One or more parameter values were invalid: Unknown ProjectionType: null");
                return -1;
            }
            if (json_object_get(proj, "NonKeyAttributes") != NULL && strcmp(pt, "INCLUDE") != 0) {
                st_invalid(a, "One or more parameter values were invalid: ProjectionType is %s, but NonKeyAttributes is specified",
                           pt);
                return -1;
            }
            if (g == 1 && billing != NULL && strcmp(billing, "PAY_PER_REQUEST") == 0 &&
                json_object_get(ix, "ProvisionedThroughput")) {
                st_invalid(a,
                           "One or more parameter values were invalid: ProvisionedThroughput should not be specified for index: %s "
                           "when BillingMode is PAY_PER_REQUEST",
                           name);
                return -1;
            }
            for (size_t n = 0; n != nnames; ++n) {
                if (strcmp(names[n], name) == 0) {
                    st_invalid(a, "One or more parameter values were invalid: Duplicate index name: %s", name);
                    return -1;
                }
            }
            if (nnames < 64)
                snprintf(names[nnames++], sizeof(names[0]), "%s", name);
        }
        if (g == 0 && json_array_size(l) > 5) {
            st_invalid(a,
                       "One or more parameter values were invalid: Number of LocalSecondaryIndexes exceeds per-table limit of 5");
            return -1;
        }
        if (g == 1 && json_array_size(l) > 20) {
            st_invalid(a,
                       "One or more parameter values were invalid: GlobalSecondaryIndex count exceeds the per-table limit of 20");
            return -1;
        }
    }
    return 0;
}

json_t *st_index_desc(const json_t *ix, const char *table, int global)
{
    char iarn[sizeof(ARN_PREFIX) + 520];
    json_t *o = json_pack("{s:O, s:O, s:O}", "IndexName", json_object_get(ix, "IndexName"), "KeySchema",
                          json_object_get(ix, "KeySchema"), "Projection", json_object_get(ix, "Projection"));
    if (o == NULL)
        return NULL;
    snprintf(iarn, sizeof(iarn), ARN_PREFIX "%s/index/%s", table, str_member(ix, "IndexName"));
    if (global) {
        json_object_set_new(o, "IndexStatus", json_string("ACTIVE"));
        json_t *ipt = json_object_get(ix, "ProvisionedThroughput");
        json_object_set_new(o, "ProvisionedThroughput",
                            json_pack("{s:i, s:I, s:I}", "NumberOfDecreasesToday", 0, "ReadCapacityUnits",
                                      json_integer_value(json_object_get(ipt, "ReadCapacityUnits")), "WriteCapacityUnits",
                                      json_integer_value(json_object_get(ipt, "WriteCapacityUnits"))));
    }
    json_object_set_new(o, "IndexSizeBytes", json_integer(0));
    json_object_set_new(o, "ItemCount", json_integer(0));
    json_object_set_new(o, "IndexArn", json_string(iarn));
    return o;
}

/* Builds the stored description of a checked CreateTable request. */
static json_t *build_desc(json_t *req, const char *name, const char *billing, json_t *pt, json_int_t now)
{
    char arn[sizeof(ARN_PREFIX) + 256];
    snprintf(arn, sizeof(arn), ARN_PREFIX "%s", name);
    json_t *d = json_pack("{s:O, s:s, s:O, s:I}", "AttributeDefinitions", json_object_get(req, "AttributeDefinitions"), "TableName",
                          name, "KeySchema", json_object_get(req, "KeySchema"), "CreationDateTime", now);
    if (d == NULL)
        return NULL;
    int ppr = billing != NULL && strcmp(billing, "PAY_PER_REQUEST") == 0;
    json_object_set_new(d, "ProvisionedThroughput",
                        json_pack("{s:i, s:I, s:I}", "NumberOfDecreasesToday", 0, "ReadCapacityUnits",
                                  ppr ? 0 : json_integer_value(json_object_get(pt, "ReadCapacityUnits")), "WriteCapacityUnits",
                                  ppr ? 0 : json_integer_value(json_object_get(pt, "WriteCapacityUnits"))));
    if (ppr)
        json_object_set_new(d, "BillingModeSummary",
                            json_pack("{s:s, s:I}", "BillingMode", "PAY_PER_REQUEST", "LastUpdateToPayPerRequestDateTime", now));
    json_object_set_new(d, "TableArn", json_string(arn));
    for (int g = 0; g != 2; ++g) {
        json_t *l = json_object_get(req, g ? "GlobalSecondaryIndexes" : "LocalSecondaryIndexes"), *ix, *out;
        size_t i;
        if (!json_is_array(l))
            continue;
        out = json_array();
        json_array_foreach(l, i, ix) json_array_append_new(out, st_index_desc(ix, name, g));
        json_object_set_new(d, g ? "GlobalSecondaryIndexes" : "LocalSecondaryIndexes", out);
    }
    st_apply_settings(d, req, name);
    json_t *tags = json_object_get(req, "Tags"), *tag;
    size_t i;
    if (json_array_size(tags) != 0) {
        json_t *m = json_object();
        json_array_foreach(tags, i, tag)
        {
            const char *k = json_string_value(json_object_get(tag, "Key")), *v = json_string_value(json_object_get(tag, "Value"));
            if (k != NULL)
                json_object_set_new(m, k, json_string(v != NULL ? v : ""));
        }
        json_object_set_new(d, ST_DESC_TAGS, m);
    }
    return d;
}

void st_create_table(store_t *s, json_t *req, store_done_cb done, void *data)
{
    static const char *const attr_types[] = {"B", "N", "S", NULL}, *const key_types[] = {"HASH", "RANGE", NULL},
                             *const billings[] = {"PROVISIONED", "PAY_PER_REQUEST", NULL};
    st_answer_t a = {0};
    st_verrs_t v = {0};
    const char *name, *billing;
    json_t *defs, *ks, *pt, *e, *rcu = NULL, *wcu = NULL;
    char at[64], num[32];
    size_t i;

    if (st_get_string(req, "TableName", &name, &a) != 0)
        goto answer;
    if (name == NULL) {
        st_invalid(&a, "The parameter 'TableName' is required but was not present in the request");
        goto answer;
    }
    if (strlen(name) < 3 || strlen(name) > 255) {
        st_invalid(&a, "TableName must be at least 3 characters long and at most 255 characters long");
        goto answer;
    }
    if (check_struct_list(req, "AttributeDefinitions", "AttributeName", "AttributeType", &defs, &a) != 0 ||
        st_get_string(req, "BillingMode", &billing, &a) != 0 || st_get_object(req, "ProvisionedThroughput", &pt, &a) != 0 ||
        (pt != NULL &&
         (st_get_long(pt, "ReadCapacityUnits", &rcu, &a) != 0 || st_get_long(pt, "WriteCapacityUnits", &wcu, &a) != 0)) ||
        check_struct_list(req, "KeySchema", "AttributeName", "KeyType", &ks, &a) != 0)
        goto answer;
    /* the members' constraints, in dynalite's order of members */
    if (defs == NULL)
        st_verr(&v, NULL, "attributeDefinitions", "Member must not be null");
    json_array_foreach(defs, i, e)
    {
        snprintf(at, sizeof(at), "attributeDefinitions.%zu.member.attributeName", i + 1);
        if (str_member(e, "AttributeName") == NULL)
            st_verr(&v, NULL, at, "Member must not be null");
        snprintf(at, sizeof(at), "attributeDefinitions.%zu.member.attributeType", i + 1);
        if (str_member(e, "AttributeType") == NULL)
            st_verr(&v, NULL, at, "Member must not be null");
        st_check_enum(&v, str_member(e, "AttributeType"), at, attr_types);
    }
    st_check_table_name(&v, name, "tableName");
    st_check_enum(&v, billing, "billingMode", billings);
    if (pt != NULL) {
        const struct {
            json_t *val;
            const char *at;
        } cu[2] = {{wcu, "provisionedThroughput.writeCapacityUnits"}, {rcu, "provisionedThroughput.readCapacityUnits"}};
        for (int c = 0; c != 2; ++c) {
            if (cu[c].val == NULL)
                st_verr(&v, NULL, cu[c].at, "Member must not be null");
            else if (json_number_value(cu[c].val) < 1) {
                snprintf(num, sizeof(num), "%lld", (long long)json_number_value(cu[c].val));
                st_verr(&v, num, cu[c].at, "Member must have value greater than or equal to 1");
            }
        }
    }
    if (ks == NULL)
        st_verr(&v, NULL, "keySchema", "Member must not be null");
    else if (json_array_size(ks) < 1 || json_array_size(ks) > 2)
        st_verr(&v, "[...]", "keySchema",
                json_array_size(ks) < 1 ? "Member must have length greater than or equal to 1"
                                        : "Member must have length less than or equal to 2");
    json_array_foreach(ks, i, e)
    {
        snprintf(at, sizeof(at), "keySchema.%zu.member.attributeName", i + 1);
        if (str_member(e, "AttributeName") == NULL)
            st_verr(&v, NULL, at, "Member must not be null");
        snprintf(at, sizeof(at), "keySchema.%zu.member.keyType", i + 1);
        if (str_member(e, "KeyType") == NULL)
            st_verr(&v, NULL, at, "Member must not be null");
        st_check_enum(&v, str_member(e, "KeyType"), at, key_types);
    }
    if (st_verr_answer(&v, &a) != 0)
        goto answer;
    /* then the request as a whole */
    int ppr = billing != NULL && strcmp(billing, "PAY_PER_REQUEST") == 0;
    if (ppr && pt != NULL) {
        st_invalid(&a,
                   "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified "
                   "when BillingMode is PAY_PER_REQUEST");
        goto answer;
    }
    if (!ppr && pt == NULL) {
        st_invalid(
            &a, "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when "
                "BillingMode is PROVISIONED");
        goto answer;
    }
    if (!ppr && (json_number_value(rcu) > 1e12 || json_number_value(wcu) > 1e12)) {
        int r = json_number_value(rcu) > 1e12;
        st_invalid(&a, "Given value %.0f for %s is out of bounds", json_number_value(r ? rcu : wcu),
                   r ? "ReadCapacityUnits" : "WriteCapacityUnits");
        goto answer;
    }
    if (json_array_size(ks) > json_array_size(defs)) {
        st_invalid(&a, "Invalid KeySchema: Some index key attribute have no definition");
        goto answer;
    }
    const char *k0 = str_member(json_array_get(ks, 0), "AttributeName"), *k1 = str_member(json_array_get(ks, 1), "AttributeName");
    if (st_attr_type(defs, k0) == STORE_T_NONE || (k1 != NULL && st_attr_type(defs, k1) == STORE_T_NONE)) {
        char list[1024];
        size_t o = 0;
        json_array_foreach(defs, i, e) o += (size_t)snprintf(list + o, o < sizeof(list) ? sizeof(list) - o : 0, "%s%s",
                                                             i ? ", " : "", str_member(e, "AttributeName"));
        st_invalid(&a,
                   "One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. "
                   "Keys: [%s%s%s], AttributeDefinitions: [%s]",
                   k0, k1 ? ", " : "", k1 ? k1 : "", list);
        goto answer;
    }
    if (k1 != NULL && strcmp(k0, k1) == 0) {
        st_invalid(&a, "Both the Hash Key and the Range Key element in the KeySchema have the same name");
        goto answer;
    }
    if (strcmp(str_member(json_array_get(ks, 0), "KeyType"), "HASH") != 0) {
        st_invalid(&a, "Invalid KeySchema: The first KeySchemaElement is not a HASH key type");
        goto answer;
    }
    if (k1 != NULL && strcmp(str_member(json_array_get(ks, 1), "KeyType"), "RANGE") != 0) {
        st_invalid(&a, "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type");
        goto answer;
    }
    if (json_object_get(req, "LocalSecondaryIndexes") == NULL && json_object_get(req, "GlobalSecondaryIndexes") == NULL &&
        json_array_size(ks) != json_array_size(defs)) {
        st_invalid(&a,
                   "One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of "
                   "attributes defined in AttributeDefinitions");
        goto answer;
    }
    if (st_check_indexes(req, defs, ks, billing, &a) != 0)
        goto answer;

    table_job_t *t = calloc(1, sizeof(*t));
    if (t == NULL || (t->desc = build_desc(req, name, billing, pt, (json_int_t)time(NULL))) == NULL) {
        free(t);
        st_answer_error(&a, 500, T_INTERNAL, "out of memory");
        goto answer;
    }
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->base.prepare = create_prepare;
    t->base.run = create_run;
    t->base.free = table_job_free;
    t->base.done = done;
    t->base.data = data;
    st_enqueue(s, &t->base);
    return;
answer:
    done(data, a.status, a.body, a.len);
}

/* ---- DeleteTable ---- */

/* Empties the databases of table sc (its own, its indexes', its TTL's), keeping them and their handles (see
 * store/internal.h). 0 or an LMDB error. */
int st_drop_table_dbs(store_t *s, MDB_txn *txn, const char *name, const st_schema_t *sc)
{
    char dbname[520];
    MDB_dbi dbi;
    int rc = 0;

    if (st_table_dbi(s, name, &dbi) == 0)
        rc = mdb_drop(txn, dbi, 0);
    for (size_t i = 0; i != sc->nidx && rc == 0; ++i)
        if (st_table_dbi(s, st_index_db_name(dbname, name, sc->idx[i].name), &dbi) == 0)
            rc = mdb_drop(txn, dbi, 0);
    if (rc == 0 && st_table_dbi(s, st_ttl_db_name(dbname, name), &dbi) == 0)
        rc = mdb_drop(txn, dbi, 0);
    return rc;
}

static int delete_run(store_t *s, MDB_txn *txn, st_job_t *j)
{
    table_job_t *t = (table_job_t *)j;
    st_schema_t sc;
    MDB_dbi dbi;
    char kb[260];
    int rc = st_schema_load(s, txn, t->name, &sc);

    if (rc == MDB_NOTFOUND || (rc == 0 && st_table_dbi(s, t->name, &dbi) != 0)) {
        st_schema_free(&sc);
        st_answer_error(&j->ans, 400, T_NOT_FOUND, "Requested resource not found: Table: %s not found", t->name);
        return 0;
    }
    if (rc != 0) {
        st_internal(&j->ans, rc);
        return 0;
    }
    json_t *d = st_describe(s, txn, t->name, sc.desc, "DELETING");
    MDB_val k = st_meta_key(kb, 't', t->name);
    if ((rc = st_drop_table_dbs(s, txn, t->name, &sc)) != 0 || (rc = mdb_del(txn, s->meta, &k, NULL)) != 0 ||
        ((k = st_meta_key(kb, 'c', t->name)), (rc = mdb_del(txn, s->meta, &k, NULL)) != 0 && rc != MDB_NOTFOUND)) {
        json_decref(d);
        st_schema_free(&sc);
        st_internal(&j->ans, rc);
        return 0;
    }
    st_schema_free(&sc);
    st_answer_json(&j->ans, json_pack("{s:o}", "TableDescription", d));
    return 1;
}

void st_delete_table(store_t *s, json_t *req, store_done_cb done, void *data)
{
    st_answer_t a = {0};
    const char *name;
    table_job_t *t;

    if (st_check_table_name_req(req, &name, &a) != 0)
        goto answer;
    if ((t = calloc(1, sizeof(*t))) == NULL) {
        st_answer_error(&a, 500, T_INTERNAL, "out of memory");
        goto answer;
    }
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->base.run = delete_run;
    t->base.free = table_job_free;
    t->base.done = done;
    t->base.data = data;
    st_enqueue(s, &t->base);
    return;
answer:
    done(data, a.status, a.body, a.len);
}

/* ---- reads ---- */

void st_describe_table(store_t *s, json_t *req, st_answer_t *a)
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
    rc = st_schema_load(s, txn, name, &sc);
    if (rc == MDB_NOTFOUND || (rc == 0 && st_table_dbi(s, name, &dbi) != 0))
        st_answer_error(a, 400, T_NOT_FOUND, "Requested resource not found: Table: %s not found", name);
    else if (rc != 0)
        st_internal(a, rc);
    else
        st_answer_json(a, json_pack("{s:o}", "Table", st_describe(s, txn, name, sc.desc, "ACTIVE")));
    st_schema_free(&sc);
    st_read_end(txn);
}

void st_list_tables(store_t *s, json_t *req, st_answer_t *a)
{
    st_verrs_t v = {0};
    const char *start;
    json_t *limitv;
    char kb[260], num[32];
    MDB_txn *txn = NULL;
    MDB_cursor *c;
    MDB_val k, val;
    int rc;

    if (st_get_string(req, "ExclusiveStartTableName", &start, a) != 0 || st_get_long(req, "Limit", &limitv, a) != 0)
        return;
    if (start != NULL) {
        if (!start[0] || strspn(start, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != strlen(start))
            st_verr(&v, start, "exclusiveStartTableName", "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+");
        if (strlen(start) < 3)
            st_verr(&v, start, "exclusiveStartTableName", "Member must have length greater than or equal to 3");
        if (strlen(start) > 255)
            st_verr(&v, start, "exclusiveStartTableName", "Member must have length less than or equal to 255");
    }
    double limit = limitv != NULL ? json_number_value(limitv) : 100;
    snprintf(num, sizeof(num), "%lld", (long long)limit);
    if (limit < 1)
        st_verr(&v, num, "limit", "Member must have value greater than or equal to 1");
    if (limit > 100)
        st_verr(&v, num, "limit", "Member must have value less than or equal to 100");
    if (st_verr_answer(&v, a) != 0)
        return;
    if ((rc = st_read_begin(s, &txn)) != 0 || (rc = mdb_cursor_open(txn, s->meta, &c)) != 0) {
        if (rc != 0 && txn != NULL)
            st_read_end(txn);
        st_internal(a, rc);
        return;
    }
    json_t *names = json_array(), *out = json_object();
    k = start != NULL ? st_meta_key(kb, 't', start) : (MDB_val){2, "t/"};
    size_t n = 0;
    for (rc = mdb_cursor_get(c, &k, &val, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c, &k, &val, MDB_NEXT)) {
        if (k.mv_size < 3 || memcmp(k.mv_data, "t/", 2) != 0)
            break;
        if (start != NULL && k.mv_size == strlen(start) + 2 && memcmp((char *)k.mv_data + 2, start, k.mv_size - 2) == 0)
            continue; /* exclusive */
        if (n == (size_t)limit) {
            /* there is a next page: name the last of this one */
            json_object_set(out, "LastEvaluatedTableName", json_array_get(names, n - 1));
            break;
        }
        json_array_append_new(names, json_stringn((char *)k.mv_data + 2, k.mv_size - 2));
        ++n;
    }
    mdb_cursor_close(c);
    st_read_end(txn);
    json_object_set_new(out, "TableNames", names);
    /* TableNames first, as DynamoDB writes it */
    json_t *ordered = json_pack("{s:O}", "TableNames", names);
    if (json_object_get(out, "LastEvaluatedTableName") != NULL)
        json_object_set(ordered, "LastEvaluatedTableName", json_object_get(out, "LastEvaluatedTableName"));
    json_decref(out);
    st_answer_json(a, ordered);
}
