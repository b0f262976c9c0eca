/*
 * store/query.c: Query and Scan (reads: on the caller's thread, in a read-only transaction).
 *
 * Both walk an LMDB cursor over a key range of the table's database. The key encoding (store_key_encode_pair) keeps
 * a partition's items contiguous and ordered by sort key, so a Query's key condition is a range of keys: the
 * partition's prefix P, narrowed by the sort key condition (= < <= > >= BETWEEN to bounds P + enc(v), begins_with to
 * the prefix P + enc(v)); a Scan is the whole database. ExclusiveStartKey narrows the range further (an exclusive
 * bound in the direction of the walk).
 *
 * As DynamoDB: Limit counts the items read (before the FilterExpression), the page stops once the items read pass
 * 1 MB (store_item_size), and LastEvaluatedKey (the key attributes of the last item read) is returned whenever the
 * page stopped for either reason. Count is the items returned, ScannedCount the items read.
 *
 * Scan segments: an item belongs to segment hash(partition key's encoding) % TotalSegments, so segments are disjoint,
 * cover the table, and keep a partition in one segment. Each segment walks the whole key space and skips the other
 * segments' items (simple; a known cost: a segment reads every key).
 *
 * IndexName: the walk goes over the index's database (index key -> the table keys of the items that have it, in order;
 * store/internal.h) and reads each item from the table; the order is the index key's, then the table key's, which is
 * how ExclusiveStartKey (the table's key and the index's) finds its place among items sharing an index key.
 *
 * The legacy parameters (KeyConditions, QueryFilter, ScanFilter, ConditionalOperator, AttributesToGet) arrive rewritten
 * into expressions (store/legacy.c). ConsistentRead (but on a global index) is accepted
 * (every read sees the last commit).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/eval.h"
#include "store/internal.h"

#define PAGE_MAX (1024 * 1024) /* bytes of items read per page */
#define KEY_CAP 4096

typedef enum { SEL_DEFAULT, SEL_ALL, SEL_COUNT, SEL_SPECIFIC, SEL_PROJECTED } sel_t;

typedef struct rd {
    int is_query;
    json_t *req;
    const char *table;
    st_exprs_t x;
    sel_t select;
    long long limit; /* 0: none */
    int forward;
    long long segment, total; /* total 0: no segments */
    json_t *esk;              /* ExclusiveStartKey, checked (in req) */
    const char *index;        /* IndexName (in req), or NULL */
    int consistent;
    int capacity; /* ConsumedCapacity asked: the answer says the size of what was read (ST_READ_BYTES) */
} rd_t;

/* The key a walk is ordered by: the table's, or an index's. */
typedef struct keys {
    const char *pk, *sk;
    store_type_t pk_type, sk_type;
} keys_t;

typedef struct bound {
    int set, incl;
    size_t len;
    uint8_t buf[KEY_CAP];
} bound_t;

/* ---- checks on the caller's thread ---- */

static int check_request(rd_t *r, st_answer_t *a)
{
    static const char *const capacity[] = {"INDEXES", "TOTAL", "NONE", NULL};
    static const char *const selects[] = {"ALL_ATTRIBUTES", "ALL_PROJECTED_ATTRIBUTES", "SPECIFIC_ATTRIBUTES", "COUNT", NULL};
    json_t *req = r->req, *limit, *seg = NULL, *tot = NULL;
    const char *rcc, *select;
    char err[STORE_EXPR_ERR_MAX], num[64];
    st_verrs_t v = {0};
    int fwd = 1;

    if (st_get_string(req, "TableName", &r->table, a) != 0 || st_get_string(req, "IndexName", &r->index, a) != 0 ||
        st_get_string(req, "Select", &select, a) != 0 || st_get_string(req, "ReturnConsumedCapacity", &rcc, a) != 0 ||
        st_get_bool(req, "ConsistentRead", &r->consistent, a) != 0 || st_get_long(req, "Limit", &limit, a) != 0 ||
        st_get_object(req, "ExclusiveStartKey", &r->esk, a) != 0 ||
        (r->is_query && st_get_bool(req, "ScanIndexForward", &fwd, a) != 0) ||
        (!r->is_query && (st_get_long(req, "Segment", &seg, a) != 0 || st_get_long(req, "TotalSegments", &tot, a) != 0)))
        return -1;
    if (json_object_get(req, "ScanIndexForward") == NULL || json_is_null(json_object_get(req, "ScanIndexForward")))
        fwd = 1; /* absent: ascending */
    r->forward = fwd;
    if (r->esk != NULL && store_item_check_shape(r->esk, err, sizeof(err)) != 0) {
        st_answer_error(a, 400, T_SERIALIZATION, "%s", err);
        return -1;
    }
    if (r->index != NULL)
        st_check_table_name(&v, r->index, "indexName");
    st_check_enum(&v, select, "select", selects);
    st_check_table_name(&v, r->table, "tableName");
    st_check_enum(&v, rcc, "returnConsumedCapacity", capacity);
    if (limit != NULL) {
        r->limit = json_is_integer(limit) ? (long long)json_integer_value(limit) : (long long)json_number_value(limit);
        snprintf(num, sizeof(num), "%lld", r->limit);
        if (r->limit < 1)
            st_verr(&v, num, "limit", "Member must have value greater than or equal to 1");
    }
    if (seg != NULL) {
        r->segment = json_is_integer(seg) ? (long long)json_integer_value(seg) : (long long)json_number_value(seg);
        snprintf(num, sizeof(num), "%lld", r->segment);
        if (r->segment < 0)
            st_verr(&v, num, "segment", "Member must have value greater than or equal to 0");
        if (r->segment > 999999)
            st_verr(&v, num, "segment", "Member must have value less than or equal to 999999");
    }
    if (tot != NULL) {
        r->total = json_is_integer(tot) ? (long long)json_integer_value(tot) : (long long)json_number_value(tot);
        snprintf(num, sizeof(num), "%lld", r->total);
        if (r->total < 1)
            st_verr(&v, num, "totalSegments", "Member must have value greater than or equal to 1");
        if (r->total > 1000000)
            st_verr(&v, num, "totalSegments", "Member must have value less than or equal to 1000000");
    }
    if (st_verr_answer(&v, a) != 0)
        return -1;
    if (r->esk != NULL) {
        int rc = store_item_check(r->esk, err, sizeof(err));
        if (rc != 0) {
            st_invalid(a, "The provided starting key is invalid: %s", err);
            return -1;
        }
    }
    if (!r->is_query) {
        if (seg != NULL && tot == NULL) {
            st_invalid(a, "The TotalSegments parameter is required but was not present in the request when Segment parameter "
                          "is present");
            return -1;
        }
        if (tot != NULL && seg == NULL) {
            st_invalid(a, "The Segment parameter is required but was not present in the request when parameter TotalSegments "
                          "is present");
            return -1;
        }
        if (tot != NULL && r->segment >= r->total) {
            st_invalid(a,
                       "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: %lld is "
                       "not less than TotalSegments: %lld",
                       r->segment, r->total);
            return -1;
        }
    }
    const char *proj = json_string_value(json_object_get(req, "ProjectionExpression"));
    if (select != NULL) {
        r->select = !strcmp(select, "ALL_ATTRIBUTES")             ? SEL_ALL
                    : !strcmp(select, "COUNT")                    ? SEL_COUNT
                    : !strcmp(select, "SPECIFIC_ATTRIBUTES")      ? SEL_SPECIFIC
                    : !strcmp(select, "ALL_PROJECTED_ATTRIBUTES") ? SEL_PROJECTED
                                                                  : SEL_DEFAULT;
        if (proj != NULL && r->select != SEL_SPECIFIC) {
            st_invalid(a, "Cannot specify the ProjectionExpression when choosing to get %s",
                       r->select == SEL_COUNT ? "only the Count" : select);
            return -1;
        }
        if (proj == NULL && r->select == SEL_SPECIFIC) {
            st_invalid(a, "Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES");
            return -1;
        }
        if (r->select == SEL_PROJECTED && r->index == NULL) {
            st_invalid(a, "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName");
            return -1;
        }
    }
    if (r->is_query && json_string_value(json_object_get(req, "KeyConditionExpression")) == NULL &&
        (json_object_get(req, "KeyConditionExpression") == NULL || json_is_null(json_object_get(req, "KeyConditionExpression")))) {
        st_invalid(a, "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.");
        return -1;
    }
    unsigned allowed = 1u << STORE_EXPR_FILTER | 1u << STORE_EXPR_PROJECTION;
    if (r->is_query)
        allowed |= 1u << STORE_EXPR_KEY_CONDITION;
    return st_exprs_parse(&r->x, req, allowed, a);
}

/* ---- in the transaction ---- */

/* A FilterExpression of a Query may not name a key attribute. 0, or -1 answered. */
static int filter_keys(const store_expr_node_t *n, const keys_t *sc, st_answer_t *a)
{
    if (n->op == STORE_EXPR_PATH) {
        const store_expr_elem_t *e = &n->path.elems[0];
        const char *keys[2] = {sc->pk, sc->sk};
        for (int i = 0; i != 2; ++i) {
            if (keys[i] != NULL && strlen(keys[i]) == e->len && memcmp(keys[i], e->name, e->len) == 0) {
                st_invalid(a, "Filter Expression can only contain non-primary key attributes: Primary key attribute: %s", keys[i]);
                return -1;
            }
        }
        return 0;
    }
    for (uint32_t i = 0; i != n->nargs; ++i)
        if (filter_keys(n->args[i], sc, a) != 0)
            return -1;
    return 0;
}

/* ExclusiveStartKey: exactly the table's key attributes, of its types. Its encoding into b. 0, or -1 answered. */
static int esk_encode(store_t *s, const keys_t *sc, json_t *esk, size_t nattrs, bound_t *b, st_answer_t *a)
{
    const char *names[2] = {sc->pk, sc->sk};
    store_type_t types[2] = {sc->pk_type, sc->sk_type};
    json_t *vals[2] = {NULL, NULL};
    char err[512];
    int n = sc->sk != NULL ? 2 : 1;

    if (json_object_size(esk) != nattrs)
        goto mismatch;
    for (int i = 0; i != n; ++i) {
        vals[i] = json_object_get(esk, names[i]);
        if (vals[i] == NULL || store_value_type(vals[i]) != types[i])
            goto mismatch;
        if (store_key_check(vals[i], types[i], names[i], err, sizeof(err)) != 0) {
            st_invalid(a, "The provided starting key is invalid: %s", err);
            return -1;
        }
    }
    b->len = store_key_encode_pair(vals[0], vals[1], b->buf, sizeof(b->buf));
    if (b->len == 0 || b->len > sizeof(b->buf) || (int)b->len > mdb_env_get_maxkeysize(s->env))
        goto mismatch;
    b->set = 1;
    b->incl = 0;
    return 0;
mismatch:
    st_invalid(a, "The provided starting key is invalid: The provided key element does not match the schema");
    return -1;
}

/* memcmp, then the shorter first: LMDB's default order of keys */
static int keycmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* whether k is past b, b being a lower bound (lo) or an upper one */
static int below_lo(const bound_t *lo, const MDB_val *k)
{
    if (!lo->set)
        return 0;
    int c = keycmp(k->mv_data, k->mv_size, lo->buf, lo->len);
    return c < 0 || (c == 0 && !lo->incl);
}

static int above_hi(const bound_t *hi, const MDB_val *k)
{
    if (!hi->set)
        return 0;
    int c = keycmp(k->mv_data, k->mv_size, hi->buf, hi->len);
    return c > 0 || (c == 0 && !hi->incl);
}

/* The smallest key above every key starting with b's bytes (b made exclusive). 0, or -1 when there is none. */
static int prefix_successor(bound_t *b)
{
    while (b->len > 0 && b->buf[b->len - 1] == 0xFF)
        b->len--;
    if (b->len == 0)
        return -1;
    b->buf[b->len - 1]++;
    b->set = 1;
    b->incl = 0;
    return 0;
}

/* The encoding of a key value appended to prefix p into b. 0, or -1 when it does not fit. */
static int bound_with(bound_t *b, const uint8_t *p, size_t plen, const json_t *av, int incl)
{
    memcpy(b->buf, p, plen);
    size_t n = store_key_encode(av, b->buf + plen, sizeof(b->buf) - plen);
    if (n == 0 && store_value_type(av) != STORE_T_S && store_value_type(av) != STORE_T_B)
        return -1;
    if (n > sizeof(b->buf) - plen)
        return -1;
    b->len = plen + n;
    b->set = 1;
    b->incl = incl;
    return 0;
}

/* The Query's range from its key condition. 0, or -1 answered. */
static int query_range(store_t *s, rd_t *r, const keys_t *sc, bound_t *lo, bound_t *hi, st_answer_t *a)
{
    store_expr_keycond_t kc;
    char err[STORE_EXPR_ERR_MAX];
    uint8_t p[KEY_CAP];

    if (store_expr_key_condition(&r->x.keycond, sc->pk, strlen(sc->pk), sc->sk, sc->sk ? strlen(sc->sk) : 0, &kc, err,
                                 sizeof(err)) != 0) {
        st_invalid(a, "%s", err);
        return -1;
    }
    json_t *pkv = r->x.vals[kc.pk_value];
    if (store_value_type(pkv) != sc->pk_type)
        goto type_mismatch;
    if (store_key_check(pkv, sc->pk_type, sc->pk, err, sizeof(err)) != 0 || store_key_check_size(pkv, 0, err, sizeof(err)) != 0) {
        st_invalid(a, "%s", err);
        return -1;
    }
    int nvals = kc.sk_op == 0 ? 0 : kc.sk_op == STORE_EXPR_BETWEEN ? 2 : 1;
    for (int i = 0; i != nvals; ++i) {
        json_t *v = r->x.vals[kc.sk_values[i]];
        if (store_value_type(v) != sc->sk_type)
            goto type_mismatch;
        if (kc.sk_op != STORE_EXPR_BEGINS_WITH && store_key_check(v, sc->sk_type, sc->sk, err, sizeof(err)) != 0) {
            st_invalid(a, "%s", err);
            return -1;
        }
    }
    if (kc.sk_op == STORE_EXPR_BEGINS_WITH && sc->sk_type == STORE_T_N) {
        st_invalid(a, "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: "
                      "begins_with, operand type: N");
        return -1;
    }
    size_t plen = store_key_encode_pair(pkv, NULL, p, sizeof(p));
    if (plen == 0 || plen > sizeof(p)) {
        st_invalid(a, "One or more parameter values were invalid: the partition key is too large");
        return -1;
    }
    /* by default the whole partition: [P, successor(P)) */
    memcpy(lo->buf, p, plen);
    lo->len = plen, lo->set = 1, lo->incl = 1;
    memcpy(hi->buf, p, plen);
    hi->len = plen;
    prefix_successor(hi); /* P ends with 0x00 0x01: always one */
    if (sc->sk == NULL) {
        *hi = *lo; /* the one key P */
        return 0;
    }
    json_t *v0 = nvals > 0 ? r->x.vals[kc.sk_values[0]] : NULL, *v1 = nvals > 1 ? r->x.vals[kc.sk_values[1]] : NULL;
    int rc = 0;
    switch (kc.sk_op) {
    case STORE_EXPR_EQ:
        rc = bound_with(lo, p, plen, v0, 1) || bound_with(hi, p, plen, v0, 1);
        break;
    case STORE_EXPR_LT:
    case STORE_EXPR_LE:
        rc = bound_with(hi, p, plen, v0, kc.sk_op == STORE_EXPR_LE);
        break;
    case STORE_EXPR_GT:
    case STORE_EXPR_GE:
        rc = bound_with(lo, p, plen, v0, kc.sk_op == STORE_EXPR_GE);
        break;
    case STORE_EXPR_BETWEEN:
        rc = bound_with(lo, p, plen, v0, 1) || bound_with(hi, p, plen, v1, 1);
        break;
    case STORE_EXPR_BEGINS_WITH:
        rc = bound_with(lo, p, plen, v0, 1) || bound_with(hi, p, plen, v0, 1) || prefix_successor(hi);
        break;
    default:
        break;
    }
    if (rc != 0) {
        st_invalid(a, "One or more parameter values were invalid: the key condition's values are too large");
        return -1;
    }
    (void)s;
    return 0;
type_mismatch:
    st_invalid(a, "One or more parameter values were invalid: Condition parameter type does not match schema type");
    return -1;
}

/* The partition key part of an encoded pair: up to and including the 0x00 0x01 terminator. */
static size_t pk_part(const uint8_t *k, size_t len)
{
    for (size_t i = 0; i + 1 < len; ++i) {
        if (k[i] == 0x00) {
            if (k[i + 1] == 0x01)
                return i + 2;
            ++i; /* 0x00 0xFF: an escaped zero */
        }
    }
    return len;
}

static uint64_t segment_hash(const uint8_t *p, size_t n)
{
    uint64_t h = st_hash64(p, n); /* then mixed: segments take h % TotalSegments */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

/* The seek key of a bound that may exceed LMDB's key size: truncated (a lower bound: still <= the bound) or truncated
 * and made a successor (an upper bound: then above it). */
static int seek_key(store_t *s, const bound_t *b, int upper, bound_t *tmp, MDB_val *out)
{
    size_t max = (size_t)mdb_env_get_maxkeysize(s->env);
    if (b->len <= max && b->len > 0) {
        *out = (MDB_val){b->len, (void *)b->buf};
        return 0;
    }
    if (b->len == 0)
        return -1;
    memcpy(tmp->buf, b->buf, max);
    tmp->len = max;
    if (upper && prefix_successor(tmp) != 0)
        return -1;
    *out = (MDB_val){tmp->len, tmp->buf};
    return 0;
}

/* The distinct attribute names of the table's key and ix's (an ExclusiveStartKey / LastEvaluatedKey of an index). */
static size_t key_attrs(const st_schema_t *sc, const st_index_t *ix, const char **out)
{
    const char *all[4] = {sc->pk, sc->sk, ix != NULL ? ix->pk : NULL, ix != NULL ? ix->sk : NULL};
    size_t n = 0;
    for (int i = 0; i != 4; ++i) {
        int dup = all[i] == NULL;
        for (size_t j = 0; j != n && !dup; ++j)
            dup = strcmp(out[j], all[i]) == 0;
        if (!dup)
            out[n++] = all[i];
    }
    return n;
}

/* An item as an index holds it: KEYS_ONLY and INCLUDE keep the table's and the index's keys (and INCLUDE's
 * NonKeyAttributes). A new reference. */
static json_t *index_project(const st_schema_t *sc, const st_index_t *ix, json_t *item)
{
    const char *names[4];
    size_t n = key_attrs(sc, ix, names), i;
    json_t *o, *a;
    if (ix == NULL || ix->proj == ST_PROJ_ALL)
        return json_incref(item);
    if ((o = json_object()) == NULL)
        return NULL;
    for (i = 0; i != n; ++i)
        if (json_object_get(item, names[i]) != NULL)
            json_object_set(o, names[i], json_object_get(item, names[i]));
    json_array_foreach(ix->proj == ST_PROJ_INCLUDE ? ix->include : NULL, i, a)
    {
        const char *name = json_string_value(a);
        if (name != NULL && json_object_get(item, name) != NULL)
            json_object_set(o, name, json_object_get(item, name));
    }
    return o;
}

/* The index named by the request: 0 and *out (NULL without IndexName), or -1 answered. */
static int find_index(const rd_t *r, const st_schema_t *sc, const st_index_t **out, st_answer_t *a)
{
    *out = NULL;
    if (r->index == NULL)
        return 0;
    for (size_t i = 0; i != sc->nidx; ++i)
        if (strcmp(sc->idx[i].name, r->index) == 0)
            *out = &sc->idx[i];
    if (*out == NULL) {
        st_invalid(a, "The table does not have the specified index: %s", r->index);
        return -1;
    }
    if ((*out)->global && r->consistent) {
        st_invalid(a, "Consistent reads are not supported on global secondary indexes");
        return -1;
    }
    if ((*out)->global && (*out)->proj != ST_PROJ_ALL && r->select == SEL_ALL) {
        st_invalid(a,
                   "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not supported for global secondary "
                   "index %s because its projection type is not ALL",
                   r->index);
        return -1;
    }
    return 0;
}

/* Whether (k, d) comes after (forward) or before the ExclusiveStartKey of an index walk (ek: index key, ed: table
 * key). */
static int past_esk(int forward, const MDB_val *k, const MDB_val *d, const bound_t *ek, const bound_t *ed)
{
    int c = keycmp(k->mv_data, k->mv_size, ek->buf, ek->len);
    if (c == 0)
        c = keycmp(d->mv_data, d->mv_size, ed->buf, ed->len);
    return forward ? c > 0 : c < 0;
}

/*
 * The page being collected: the items' JSON texts, comma-separated, become the answer's Items as they are. When
 * nothing has to be looked at in an item (no filter, no projection, no TTL, a table or an ALL index), the stored texts
 * go in untouched and unparsed (take_text); the 1 MB page limit (on DynamoDB's item sizes) is then tracked by the
 * texts' lengths, which are never below the sizes, and the sizes are computed (the texts parsed) only once the lengths
 * pass 1 MB.
 */
typedef struct page {
    char *buf; /* the Items' elements */
    size_t len, cap;
    json_t *lek;
    long long count, scanned;
    size_t bytes; /* DynamoDB's size of the items read, once exact */
    int exact;    /* bytes is exact; else the sizes are at most `upper`, the texts' length */
    size_t upper;
    struct {
        size_t off, len;
    } * pos; /* the texts in buf, while not exact */
    size_t npos, cappos;
} page_t;

/* Appends an item's text to the page. 0, or -1 (out of memory). */
static int page_append(page_t *pg, const char *text, size_t len)
{
    if (pg->len + len + 1 > pg->cap) {
        size_t cap = (pg->len + len + 1) * 2;
        char *b = realloc(pg->buf, cap);
        if (b == NULL)
            return -1;
        pg->buf = b, pg->cap = cap;
    }
    if (pg->len != 0)
        pg->buf[pg->len++] = ',';
    if (!pg->exact) {
        if (pg->npos == pg->cappos) {
            void *p = realloc(pg->pos, (pg->cappos = pg->cappos ? pg->cappos * 2 : 16) * sizeof(*pg->pos));
            if (p == NULL)
                return -1;
            pg->pos = p;
        }
        pg->pos[pg->npos].off = pg->len, pg->pos[pg->npos++].len = len;
    }
    memcpy(pg->buf + pg->len, text, len);
    pg->len += len;
    return 0;
}

/* LastEvaluatedKey: the key attributes (the table's and the index's) of item. 0, or -1 (out of memory). */
static int page_end(page_t *pg, const st_schema_t *sc, const st_index_t *ix, const json_t *item)
{
    const char *names[4];
    size_t n = key_attrs(sc, ix, names);
    if ((pg->lek = json_object()) == NULL)
        return -1;
    for (size_t i = 0; i != n; ++i)
        if (json_object_get(item, names[i]) != NULL && json_object_set(pg->lek, names[i], json_object_get(item, names[i])) != 0)
            return -1;
    return 0;
}

/* Takes one item read (a new reference, consumed) into the page: filter, projections. 1 to go on, 0 when the page is
 * full (lek set), -1 answered. */
static int take(rd_t *r, const st_schema_t *sc, const st_index_t *ix, page_t *pg, json_t *item, st_answer_t *a)
{
    char err[STORE_EXPR_ERR_MAX];
    /* what the index holds; a local index reads the rest from the table when asked for it, as DynamoDB does */
    json_t *seen =
        ix != NULL && !ix->global && (r->select == SEL_ALL || r->x.has_proj) ? json_incref(item) : index_project(sc, ix, item);
    int keep = 1, rc = 1;

    if (seen == NULL)
        goto oom;
    pg->scanned++;
    pg->bytes += store_item_size(seen);
    if (r->x.has_filter) {
        /* on a local index the filter sees the table's item (DynamoDB fetches what the index does not project) */
        keep = store_eval_condition(&r->x.filter, ix != NULL && !ix->global ? item : seen, r->x.vals, err, sizeof(err));
        if (keep < 0) {
            if (keep == STORE_EVAL_EINVALID)
                st_invalid(a, "%s", err);
            else
                st_answer_error(a, 500, T_INTERNAL, "out of memory");
            rc = -1;
            goto out;
        }
    }
    if (keep) {
        pg->count++;
        if (r->select != SEL_COUNT) {
            json_t *o = r->x.has_proj ? store_eval_project(&r->x.proj, seen) : json_incref(seen);
            char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
            int failed = text == NULL || page_append(pg, text, strlen(text)) != 0;
            free(text);
            json_decref(o);
            if (failed)
                goto oom;
        }
    }
    if ((r->limit > 0 && pg->scanned >= r->limit) || pg->bytes > PAGE_MAX) {
        /* the page ends here: LastEvaluatedKey is this item's key (and its index key) */
        if (page_end(pg, sc, ix, item) != 0)
            goto oom;
        rc = 0;
    }
out:
    json_decref(seen);
    json_decref(item);
    return rc;
oom:
    st_answer_error(a, 500, T_INTERNAL, "out of memory");
    rc = -1;
    goto out;
}

/* The fast path's take: the stored text goes into the page as it is. 1 to go on, 0 when the page is full (lek set), -1
 * answered. */
static int take_text(rd_t *r, const st_schema_t *sc, const st_index_t *ix, page_t *pg, const MDB_val *text, st_answer_t *a)
{
    json_t *item = NULL;
    int rc = 1;

    pg->scanned++;
    pg->count++;
    if (page_append(pg, text->mv_data, text->mv_size) != 0)
        goto oom;
    if (!pg->exact && (pg->upper += text->mv_size) > PAGE_MAX) {
        /* the texts pass 1 MB: the sizes may too; from now on they are counted exactly */
        pg->exact = 1;
        pg->bytes = 0;
        for (size_t i = 0; i != pg->npos; ++i) {
            json_t *it = json_loadb(pg->buf + pg->pos[i].off, pg->pos[i].len, 0, NULL);
            if (it == NULL)
                goto corrupt;
            pg->bytes += store_item_size(it);
            json_decref(it);
        }
    } else if (pg->exact) {
        if ((item = json_loadb(text->mv_data, text->mv_size, 0, NULL)) == NULL)
            goto corrupt;
        pg->bytes += store_item_size(item);
    }
    if ((r->limit > 0 && pg->scanned >= r->limit) || (pg->exact && pg->bytes > PAGE_MAX)) {
        if (item == NULL && (item = json_loadb(text->mv_data, text->mv_size, 0, NULL)) == NULL)
            goto corrupt;
        if (page_end(pg, sc, ix, item) != 0)
            goto oom;
        rc = 0;
    }
    json_decref(item);
    return rc;
oom:
    json_decref(item);
    st_answer_error(a, 500, T_INTERNAL, "out of memory");
    return -1;
corrupt:
    st_internal(a, MDB_CORRUPTED);
    return -1;
}

/* The answer: {"Count", "ScannedCount"[, "Items"][, "LastEvaluatedKey"]}, written from the page's texts. */
static void page_answer(rd_t *r, page_t *pg, st_answer_t *a)
{
    char *lek = pg->lek != NULL ? json_dumps(pg->lek, JSON_COMPACT) : NULL, head[96];
    int hlen = snprintf(head, sizeof(head), "{\"Count\":%lld,\"ScannedCount\":%lld", pg->count, pg->scanned);
    size_t len = (size_t)hlen + (r->select != SEL_COUNT ? pg->len + 11 : 0) + (lek != NULL ? strlen(lek) + 20 : 0) +
                 (r->capacity ? sizeof(ST_READ_BYTES) + 24 : 0) + 2;
    char *body = (pg->lek == NULL || lek != NULL) ? malloc(len) : NULL, *p = body;

    if (body == NULL) {
        free(lek);
        st_answer_error(a, 500, T_INTERNAL, "out of memory");
        return;
    }
    p += sprintf(p, "%s", head);
    if (r->select != SEL_COUNT) {
        p += sprintf(p, ",\"Items\":[");
        if (pg->len != 0)
            memcpy(p, pg->buf, pg->len), p += pg->len;
        *p++ = ']';
    }
    if (lek != NULL)
        p += sprintf(p, ",\"LastEvaluatedKey\":%s", lek);
    if (r->capacity)
        p += sprintf(p, ",\"" ST_READ_BYTES "\":%zu", pg->bytes);
    *p++ = '}';
    *p = '\0';
    free(lek);
    free(a->body);
    *a = (st_answer_t){200, body, (size_t)(p - body)};
}

static void run(store_t *s, rd_t *r, st_answer_t *a)
{
    st_schema_t sc = {0};
    const st_index_t *ix = NULL;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_dbi dbi;
    MDB_val k, v;
    bound_t *lo = NULL, *hi = NULL, *esk = NULL, *eskd = NULL, *tmp = NULL;
    page_t pg = {0};
    int rc;

    lo = calloc(1, sizeof(*lo)), hi = calloc(1, sizeof(*hi)), esk = calloc(1, sizeof(*esk)), eskd = calloc(1, sizeof(*eskd));
    tmp = calloc(1, sizeof(*tmp));
    pg.exact = 1; /* the slow path counts sizes exactly; the fast one starts from bounds */
    if (lo == NULL || hi == NULL || esk == NULL || eskd == NULL || tmp == NULL) {
        st_answer_error(a, 500, T_INTERNAL, "out of memory");
        goto out;
    }
    if ((rc = st_read_begin(s, &txn)) != 0) {
        st_internal(a, rc);
        goto out;
    }
    if (st_open_table(s, txn, r->table, &sc, &dbi, a) != 0 || find_index(r, &sc, &ix, a) != 0)
        goto out;
    keys_t tk = {sc.pk, sc.sk, sc.pk_type, sc.sk_type}, wk = tk; /* wk: the walk's order */
    if (ix != NULL)
        wk = (keys_t){ix->pk, ix->sk, ix->pk_type, ix->sk_type};
    if (r->is_query && query_range(s, r, &wk, lo, hi, a) != 0)
        goto out;
    if (r->is_query && r->x.has_filter && filter_keys(r->x.filter.cond, &wk, a) != 0)
        goto out;
    if (r->esk != NULL) {
        const char *names[4];
        size_t nattrs = key_attrs(&sc, ix, names);
        if (esk_encode(s, &wk, r->esk, nattrs, esk, a) != 0 || (ix != NULL && esk_encode(s, &tk, r->esk, nattrs, eskd, a) != 0))
            goto out;
        if (r->is_query) {
            MDB_val ek = {esk->len, esk->buf};
            if (pk_part(esk->buf, esk->len) != pk_part(lo->buf, lo->len) ||
                memcmp(esk->buf, lo->buf, pk_part(lo->buf, lo->len)) != 0 || below_lo(lo, &ek) || above_hi(hi, &ek)) {
                st_invalid(a, "The provided starting key is outside query boundaries based on provided conditions");
                goto out;
            }
        } else if (r->total > 0 &&
                   segment_hash(esk->buf, pk_part(esk->buf, esk->len)) % (uint64_t)r->total != (uint64_t)r->segment) {
            st_invalid(a, "The provided starting key is invalid: Exclusive start key does not belong to segment %lld", r->segment);
            goto out;
        }
        /* the walk resumes after it: a table's keys are unique (an exclusive bound); an index's are not (the bound
         * includes the index key, and past_esk skips the entries up to the start's table key) */
        esk->incl = ix != NULL;
        if (r->forward)
            *lo = *esk;
        else
            *hi = *esk;
    }
    if ((rc = mdb_cursor_open(txn, ix != NULL ? ix->dbi : dbi, &cur)) != 0) {
        st_internal(a, rc);
        goto out;
    }
    /* position. An index's database holds several entries (table keys, MDB_DUPSORT) under one index key: a walk that
     * resumes after a start key goes straight to its entry (MDB_GET_BOTH_RANGE: that table key, or the next one under
     * the same index key; past_esk skips the start itself), however many items share the index key. */
    MDB_val sk;
    rc = MDB_NOTFOUND;
    if (ix != NULL && r->esk != NULL) {
        k = (MDB_val){esk->len, esk->buf};
        v = (MDB_val){eskd->len, eskd->buf};
        rc = mdb_cursor_get(cur, &k, &v, MDB_GET_BOTH_RANGE);
    }
    if (rc != MDB_NOTFOUND) {
        /* positioned (or an error, answered below) */
    } else if (r->forward) {
        if (lo->set && seek_key(s, lo, 0, tmp, &sk) == 0) {
            k = sk;
            rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        } else {
            rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        }
    } else {
        if (hi->set && seek_key(s, hi, 1, tmp, &sk) == 0) {
            k = sk;
            rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
            if (rc == MDB_NOTFOUND)
                rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
            else if (rc == 0 && ix != NULL && !above_hi(hi, &k))
                /* SET_RANGE lands on the FIRST entry of an index key: a backward walk that includes that key starts at
                 * its last one, else it would miss every other item sharing it */
                rc = mdb_cursor_get(cur, &k, &v, MDB_LAST_DUP);
        } else {
            rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
        }
    }
    int64_t now = (int64_t)time(NULL);
    /* the stored texts can be the answer's as they are (page_t) */
    int fast = !r->x.has_filter && !r->x.has_proj && sc.ttl == NULL && r->select != SEL_COUNT && !r->capacity &&
               (ix == NULL || ix->proj == ST_PROJ_ALL || (!ix->global && r->select == SEL_ALL));
    pg.exact = !fast;
    /* a skip decided on the index key alone skips every entry of that key at once (MDB_NEXT_NODUP / MDB_PREV_NODUP) */
    MDB_cursor_op step = r->forward ? MDB_NEXT : MDB_PREV, next = step;
    MDB_cursor_op skip_key = ix == NULL ? step : r->forward ? MDB_NEXT_NODUP : MDB_PREV_NODUP;
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, next)) {
        next = step;
        if (r->forward ? above_hi(hi, &k) : below_lo(lo, &k))
            break; /* past the end */
        if ((r->forward ? below_lo(lo, &k) : above_hi(hi, &k)) ||
            (r->total > 0 && segment_hash(k.mv_data, pk_part(k.mv_data, k.mv_size)) % (uint64_t)r->total != (uint64_t)r->segment)) {
            next = skip_key; /* not yet at the start, or another segment's */
            continue;
        }
        if (ix != NULL && r->esk != NULL && !past_esk(r->forward, &k, &v, esk, eskd))
            continue;
        MDB_val text = v;
        if (ix != NULL && (rc = mdb_get(txn, dbi, &v, &text)) != 0) {
            if (rc == MDB_NOTFOUND)
                continue; /* cannot be: an index entry is written with its item */
            break;
        }
        if (fast) {
            int t = take_text(r, &sc, ix, &pg, &text, a);
            if (t < 0)
                goto out;
            if (t == 0)
                break;
            continue;
        }
        json_t *item = json_loadb(text.mv_data, text.mv_size, 0, NULL);
        if (item == NULL) {
            st_internal(a, MDB_CORRUPTED);
            goto out;
        }
        if (sc.ttl != NULL && st_expired(&sc, item, now)) {
            json_decref(item);
            continue;
        }
        int t = take(r, &sc, ix, &pg, item, a);
        if (t < 0)
            goto out;
        if (t == 0)
            break;
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        st_internal(a, rc);
        goto out;
    }
    page_answer(r, &pg, a);
out:
    free(pg.buf);
    free(pg.pos);
    json_decref(pg.lek);
    if (cur != NULL)
        mdb_cursor_close(cur);
    if (txn != NULL)
        st_read_end(txn);
    st_schema_free(&sc);
    free(lo);
    free(hi);
    free(esk);
    free(eskd);
    free(tmp);
}

static void read_op(store_t *s, json_t *req, st_answer_t *a, int is_query)
{
    rd_t r = {.is_query = is_query, .req = req, .forward = 1, .capacity = st_capacity_asked(req)};
    if (check_request(&r, a) == 0)
        run(s, &r, a);
    st_exprs_free(&r.x);
}

void st_query(store_t *s, json_t *req, st_answer_t *a)
{
    read_op(s, req, a, 1);
}

void st_scan(store_t *s, json_t *req, st_answer_t *a)
{
    read_op(s, req, a, 0);
}
