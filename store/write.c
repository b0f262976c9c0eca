/*
 * store/write.c: the one way an item is written (st_item_write), and what follows an item: its secondary index
 * entries, its TTL entry, the table's counters, its ETag; and the TTL reaper.
 *
 * Every operation that writes (PutItem, UpdateItem, DeleteItem, BatchWriteItem, TransactWriteItems, the REST origin
 * and Lua through them, the reaper) calls st_item_write in its job's nested transaction, so an item and everything
 * derived from it change together or not at all.
 *
 * Secondary indexes (layout: store/internal.h): an index database maps the index key of each item that has every index
 * key attribute to the item's table key (MDB_DUPSORT: several items may share an index key). A write removes the old
 * item's entry and adds the new one's when the index key changed. An index key attribute of another type than the
 * index's AttributeDefinitions say is refused (ValidationException, before anything is written), as DynamoDB does.
 *
 * TTL: when enabled on a table, a database maps each item's expiry (its TTL attribute, a number of epoch seconds;
 * 8 bytes big-endian) to its table key. An item whose expiry has passed is expired: every operation treats it as absent
 * at once (reads do not return it, conditions do not see it, a write replaces it). As DynamoDB, an expiry more than
 * five years in the past does not expire an item (it is taken for a mistake: milliseconds, say). The reaper
 * (st_ttl_reap, run by the writer about once a second) deletes expired items for good, with their index entries.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/internal.h"

#define FIVE_YEARS (5 * 365 * 86400LL)

uint64_t st_hash64(const void *text, size_t len)
{
    const uint8_t *p = text;
    uint64_t h = 1469598103934665603ull; /* FNV-1a's steps, our own basis (internal.h) */
    for (size_t i = 0; i != len; ++i)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* The expiry of an item (epoch seconds), or -1 when it has none (no TTL attribute, not a number, negative). */
static int64_t expiry_of(const st_schema_t *sc, const json_t *item)
{
    const char *n = json_string_value(json_object_get(json_object_get(item, sc->ttl), "N"));
    if (n == NULL)
        return -1;
    double v = strtod(n, NULL);
    if (!(v >= 0) || v >= 9.2e18)
        return -1;
    return (int64_t)v; /* v >= 0: truncation is floor */
}

int st_expired(const st_schema_t *sc, const json_t *item, int64_t now)
{
    if (sc->ttl == NULL || item == NULL)
        return 0;
    int64_t e = expiry_of(sc, item);
    return e >= 0 && e <= now && e > now - FIVE_YEARS;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; --i, v >>= 8)
        p[i] = (uint8_t)v;
}

static int empty_key_value(const json_t *av)
{
    const char *s = json_string_value(json_object_get(av, "S"));
    const char *b = json_string_value(json_object_get(av, "B"));
    return (s != NULL && s[0] == '\0') || (b != NULL && b[0] == '\0');
}

/* an index key refused (a may be NULL: then only -1) */
#define REFUSE(...)                                                                                                                \
    do {                                                                                                                           \
        if (a != NULL)                                                                                                             \
            st_invalid(a, __VA_ARGS__);                                                                                            \
        return -1;                                                                                                                 \
    } while (0)

int st_index_key(const st_index_t *ix, const json_t *item, uint8_t *buf, size_t cap, st_answer_t *a)
{
    const char *names[2] = {ix->pk, ix->sk};
    store_type_t types[2] = {ix->pk_type, ix->sk_type};
    json_t *vals[2] = {NULL, NULL};
    char err[512];
    int n = ix->sk != NULL ? 2 : 1, missing = 0;

    /* each index key attribute the item has is checked, even when the other is missing (the item then is not in the
     * index): as DynamoDB, an attribute of an index's key has its type wherever it appears */
    for (int i = 0; i != n; ++i) {
        if ((vals[i] = json_object_get(item, names[i])) == NULL) {
            missing = 1;
            continue;
        }
        store_type_t t = store_value_type(vals[i]);
        if (t != types[i]) {
            REFUSE(
                "One or more parameter values were invalid: Type mismatch for Index Key %s Expected: %s Actual: %s IndexName: %s",
                names[i], store_type_name(types[i]), t != STORE_T_NONE ? store_type_name(t) : "null", ix->name);
        }
        if (empty_key_value(vals[i])) {
            REFUSE("One or more parameter values are not valid. A value specified for a secondary index key is not supported. The "
                   "AttributeValue for a key attribute cannot contain an empty %s value. IndexName: %s, IndexKey: %s",
                   t == STORE_T_S ? "string" : "binary", ix->name, names[i]);
        }
        if (store_key_check_size(vals[i], i, err, sizeof(err)) != 0)
            REFUSE("%s", err);
    }
    if (missing)
        return 0; /* sparse: not in the index */
    size_t len = store_key_encode_pair(vals[0], vals[1], buf, cap);
    if (len == 0 || len > cap || len > 511)
        REFUSE("One or more parameter values were invalid: this item store's index keys are limited to 511 encoded bytes "
               "(IndexName: %s)",
               ix->name);
    return (int)len;
}

/* Replaces the entry (okey -> k) of a DUPSORT database by (nkey -> k); either may be absent (length 0). */
static int move_entry(MDB_txn *txn, MDB_dbi dbi, const uint8_t *okey, size_t olen, const uint8_t *nkey, size_t nlen, MDB_val *k)
{
    int rc;
    if (olen == nlen && (olen == 0 || memcmp(okey, nkey, olen) == 0))
        return 0;
    if (olen != 0) {
        MDB_val ok = {olen, (void *)okey}, d = *k;
        if ((rc = mdb_del(txn, dbi, &ok, &d)) != 0 && rc != MDB_NOTFOUND)
            return rc;
    }
    if (nlen != 0) {
        MDB_val nk = {nlen, (void *)nkey}, d = *k;
        if ((rc = mdb_put(txn, dbi, &nk, &d, 0)) != 0)
            return rc;
    }
    return 0;
}

/* The TTL entry key of an item: 8 bytes, or 0 when it has no expiry. */
static size_t ttl_key(const st_schema_t *sc, const json_t *item, uint8_t *buf)
{
    int64_t e = item != NULL ? expiry_of(sc, item) : -1;
    if (e < 0)
        return 0;
    put_be64(buf, (uint64_t)e);
    return 8;
}

int st_item_write(store_t *s, MDB_txn *txn, const st_schema_t *sc, MDB_val *k, const json_t *old, const json_t *item,
                  uint64_t *etag, st_answer_t *a)
{
    const char *table = json_string_value(json_object_get(sc->desc, "TableName"));
    uint8_t okey[512], nkey[512];
    int rc = 0, olen, nlen;

    /* first every check: nothing is written by a refused write */
    if (item != NULL && s->nrules != 0 && st_rules_check_item(s, table, item, a) != 0)
        return -1;
    for (size_t i = 0; i != sc->nidx && item != NULL; ++i)
        if (st_index_key(&sc->idx[i], item, nkey, sizeof(nkey), a) < 0)
            return -1;
    if (etag != NULL)
        *etag = 0;
    if (item != NULL) {
        char *text = json_dumps(item, JSON_COMPACT);
        if (text == NULL) {
            st_answer_error(a, 500, T_INTERNAL, "out of memory");
            return -1;
        }
        MDB_val v = {strlen(text), text};
        if (etag != NULL)
            *etag = st_etag(text, v.mv_size);
        rc = mdb_put(txn, sc->dbi, k, &v, 0);
        free(text);
    } else if (old != NULL) {
        rc = mdb_del(txn, sc->dbi, k, NULL);
    }
    if (rc == 0)
        rc = st_counters_add(s, txn, table, (item != NULL) - (old != NULL),
                             (int64_t)(item != NULL ? store_item_size(item) : 0) -
                                 (int64_t)(old != NULL ? store_item_size(old) : 0));
    for (size_t i = 0; i != sc->nidx && rc == 0; ++i) {
        olen = old != NULL ? st_index_key(&sc->idx[i], old, okey, sizeof(okey), NULL) : 0;
        nlen = item != NULL ? st_index_key(&sc->idx[i], item, nkey, sizeof(nkey), NULL) : 0;
        rc = move_entry(txn, sc->idx[i].dbi, okey, olen < 0 ? 0 : (size_t)olen, nkey, (size_t)nlen, k);
    }
    if (rc == 0 && sc->ttl != NULL)
        rc = move_entry(txn, sc->ttl_dbi, okey, ttl_key(sc, old, okey), nkey, ttl_key(sc, item, nkey), k);
    if (rc != 0) {
        st_internal(a, rc);
        return -1;
    }
    return 0;
}

/* ---- the reaper ---- */

/* Deletes up to max expired items of table `name`; returns how many, or -1 on an error. */
static long reap_table(store_t *s, MDB_txn *txn, const char *name, size_t max, int64_t now)
{
    st_answer_t a = {0};
    st_schema_t sc;
    MDB_dbi dbi;
    MDB_cursor *c = NULL;
    MDB_val k, v;
    uint8_t from[8];
    long done = 0;
    int rc;

    if (st_open_table(s, txn, name, &sc, &dbi, &a) != 0) {
        free(a.body);
        return 0; /* deleted meanwhile */
    }
    if (sc.ttl == NULL)
        goto out;
    /* collect first (the deletes change the database under a cursor), then delete; the array grows as needed (most
     * passes find nothing) */
    size_t n = 0, cap = 0;
    struct reap_key {
        size_t len;
        uint8_t buf[512];
    } *keys = NULL;
    if ((rc = mdb_cursor_open(txn, sc.ttl_dbi, &c)) != 0) {
        done = -1;
        goto out;
    }
    put_be64(from, (uint64_t)(now - FIVE_YEARS + 1 > 0 ? now - FIVE_YEARS + 1 : 0));
    k = (MDB_val){8, from};
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && n != max; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        uint64_t e = 0;
        for (int i = 0; i != 8 && k.mv_size == 8; ++i)
            e = e << 8 | ((uint8_t *)k.mv_data)[i];
        if (e > (uint64_t)now)
            break;
        if (n == cap) {
            struct reap_key *more = realloc(keys, (cap = cap != 0 ? cap * 2 : 16) * sizeof(*keys));
            if (more == NULL)
                break; /* reap what was collected */
            keys = more;
        }
        if (v.mv_size <= sizeof(keys[0].buf)) {
            memcpy(keys[n].buf, v.mv_data, v.mv_size);
            keys[n++].len = v.mv_size;
        }
    }
    mdb_cursor_close(c);
    for (size_t i = 0; i != n; ++i) {
        MDB_val tk = {keys[i].len, keys[i].buf};
        json_t *item;
        if (st_load_item(txn, sc.dbi, &tk, &item, NULL, &a) != 0) {
            done = -1;
            break;
        }
        if (item != NULL && st_expired(&sc, item, now)) {
            if (st_item_write(s, txn, &sc, &tk, item, NULL, NULL, &a) != 0) {
                json_decref(item);
                done = -1;
                break;
            }
            done++;
        }
        json_decref(item);
    }
    free(keys);
out:
    free(a.body);
    st_schema_free(&sc);
    return done;
}

int st_ttl_reap(store_t *s, MDB_txn *txn, size_t max)
{
    char **names = NULL;
    size_t n = 0, total = 0;
    int rc = 0;

    /* the tables with a TTL database: the handle map's "x.NAME/" entries (a table whose TTL is off has an empty one) */
    pthread_rwlock_rdlock(&s->map_lock);
    names = calloc(s->map_n + 1, sizeof(*names));
    for (size_t i = 0; names != NULL && i != s->map_cap; ++i) {
        const char *m = s->map[i].name;
        size_t len = m != NULL ? strlen(m) : 0;
        if (len > 3 && m[0] == 'x' && m[1] == '.' && m[len - 1] == '/' && (names[n] = strndup(m + 2, len - 3)) != NULL)
            n++;
    }
    pthread_rwlock_unlock(&s->map_lock);
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i != n; ++i) {
        long r = total < max ? reap_table(s, txn, names[i], max - total, now) : 0;
        if (r < 0)
            rc = -1;
        else
            total += (size_t)r;
        free(names[i]);
    }
    free(names);
    return rc < 0 ? -1 : (int)total;
}

/* ---- filling an index or the TTL database from the items (UpdateTable, UpdateTimeToLive) ---- */

int st_backfill(MDB_txn *txn, const st_schema_t *sc, const st_index_t *ix)
{
    MDB_cursor *c;
    MDB_val k, v;
    uint8_t key[512];
    MDB_dbi dbi = ix != NULL ? ix->dbi : sc->ttl_dbi;
    int rc;

    if ((rc = mdb_drop(txn, dbi, 0)) != 0 || (rc = mdb_cursor_open(txn, sc->dbi, &c)) != 0)
        return rc;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        json_t *item = json_loadb(v.mv_data, v.mv_size, 0, NULL);
        if (item == NULL) {
            rc = MDB_CORRUPTED;
            break;
        }
        /* items whose index key attributes have other types stay out of the index, as DynamoDB's backfill does */
        int len = ix != NULL ? st_index_key(ix, item, key, sizeof(key), NULL) : (int)ttl_key(sc, item, key);
        json_decref(item);
        if (len > 0) {
            MDB_val ik = {(size_t)len, key}, d = k;
            if ((rc = mdb_put(txn, dbi, &ik, &d, 0)) != 0)
                break;
        }
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}
