/*
 * store/store.c: the item store's environment, its writer thread (group commit), store_call's dispatch, and the
 * request helpers every operation shares (answers and DynamoDB's error JSON, member getters with the deserializer's
 * SerializationException wording, "N validation errors detected" lists, expression placeholders).
 *
 * Threads. Reads run on the caller's thread in read-only transactions (MDB_NOTLS: a transaction is not tied to its
 * thread's slot, so any thread may read at any time). Writes are queued to one writer thread, which takes up to
 * ST_BATCH_MAX queued jobs, runs them in one write transaction, each in its own nested transaction (a failed condition
 * or a failed put aborts that job alone), commits once (the environment is opened without MDB_NOSYNC and
 * MDB_NOMETASYNC: the commit is on disk when it returns), then publishes new table handles and answers each job.
 * Many concurrent writers so share one fsync: group commit.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "store/eval.h"
#include "store/internal.h"
#include "store/legacy.h"

#define MAP_SIZE_DEFAULT (1ull << 30)

/* ---- answers ---- */

void st_answer_error(st_answer_t *a, int status, const char *type, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    free(a->body);
    json_t *o = json_pack("{s:s, s:s}", "__type", type, "message", msg);
    a->body = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (a->body == NULL)
        a->body = strdup("{\"__type\":\"" T_INTERNAL "\",\"message\":\"out of memory\"}");
    a->len = a->body != NULL ? strlen(a->body) : 0;
    a->status = status;
}

void st_answer_json(st_answer_t *a, json_t *o)
{
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text == NULL) {
        st_answer_error(a, 500, T_INTERNAL, "out of memory");
        return;
    }
    free(a->body);
    a->body = text;
    a->len = strlen(text);
    a->status = 200;
}

void st_answer_text(st_answer_t *a, const char *text, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        st_answer_error(a, 500, T_INTERNAL, "out of memory");
        return;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    free(a->body);
    a->body = copy;
    a->len = len;
    a->status = 200;
}

/* ---- validation lists ---- */

void st_verr(st_verrs_t *v, const char *value, const char *at, const char *constraint)
{
    if (v->n >= 10) /* DynamoDB stops at 10 */
        return;
    int w = snprintf(v->buf + v->len, sizeof(v->buf) - v->len, "%sValue %s%s%s at '%s' failed to satisfy constraint: %s",
                     v->n ? "; " : "", value ? "'" : "", value ? value : "null", value ? "'" : "", at, constraint);
    if (w > 0)
        v->len = v->len + (size_t)w < sizeof(v->buf) ? v->len + (size_t)w : sizeof(v->buf) - 1;
    v->n++;
}

int st_verr_answer(st_verrs_t *v, st_answer_t *a)
{
    if (v->n == 0)
        return 0;
    st_invalid(a, "%d validation error%s detected: %s", v->n, v->n > 1 ? "s" : "", v->buf);
    return -1;
}

/* The deserializer's words for a JSON value found where `want` ("String", "Boolean", "Long") was expected. */
static void wrong_scalar(st_answer_t *a, const json_t *v, const char *want)
{
    if (json_is_array(v))
        st_answer_error(a, 400, T_SERIALIZATION, "Start of list found where not expected");
    else if (json_is_object(v))
        st_answer_error(a, 400, T_SERIALIZATION, "Start of structure or map found where not expected.");
    else if (json_is_boolean(v))
        st_answer_error(a, 400, T_SERIALIZATION, "class java.lang.Boolean can not be converted to an %s", want);
    else if (json_is_number(v))
        st_answer_error(a, 400, T_SERIALIZATION,
                        "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an %s", want);
    else
        st_answer_error(a, 400, T_SERIALIZATION, "class java.lang.String can not be converted to an %s", want);
}

int st_get_string(const json_t *req, const char *name, const char **out, st_answer_t *a)
{
    json_t *v = json_object_get(req, name);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        wrong_scalar(a, v, "String");
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

int st_get_object(const json_t *req, const char *name, json_t **out, st_answer_t *a)
{
    json_t *v = json_object_get(req, name);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_array(v)) {
        st_answer_error(a, 400, T_SERIALIZATION, "Start of list found where not expected");
        return -1;
    }
    if (!json_is_object(v)) {
        st_answer_error(a, 400, T_SERIALIZATION, "Expected map or null");
        return -1;
    }
    *out = v;
    return 0;
}

void st_echo(const json_t *v, char *buf, size_t cap)
{
    char *text = v != NULL ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    snprintf(buf, cap, "%s", text != NULL ? text : "");
    if (text != NULL && strlen(text) >= cap && cap > 4)
        memcpy(buf + cap - 4, "...", 4);
    free(text);
}

int st_get_list(const json_t *req, const char *name, json_t **out, st_answer_t *a)
{
    json_t *v = json_object_get(req, name);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_array(v)) {
        st_answer_error(a, 400, T_SERIALIZATION,
                        json_is_object(v) ? "Start of structure or map found where not expected." : "Expected list or null");
        return -1;
    }
    *out = v;
    return 0;
}

int st_get_bool(const json_t *req, const char *name, int *out, st_answer_t *a)
{
    json_t *v = json_object_get(req, name);
    *out = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return 0;
    }
    if (json_is_string(v)) { /* the deserializer converts these, as for BOOL values */
        const char *s = json_string_value(v);
        if (!strcasecmp(s, "true") || !strcmp(s, "1") || !strcasecmp(s, "yes")) {
            *out = 1;
            return 0;
        }
        if (!strcasecmp(s, "false") || !strcmp(s, "0") || !strcasecmp(s, "no"))
            return 0;
        st_answer_error(a, 400, T_SERIALIZATION, "'%s' can not be converted to an Boolean", s);
        return -1;
    }
    if (json_is_number(v))
        st_answer_error(a, 400, T_SERIALIZATION,
                        "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an Boolean");
    else
        wrong_scalar(a, v, "Boolean");
    return -1;
}

int st_get_long(const json_t *req, const char *name, json_t **out, st_answer_t *a)
{
    json_t *v = json_object_get(req, name);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_number(v)) {
        wrong_scalar(a, v, "Long");
        return -1;
    }
    *out = v;
    return 0;
}

static int name_chars_ok(const char *s)
{
    for (; *s; ++s)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' ||
              *s == '-'))
            return 0;
    return 1;
}

void st_check_table_name(st_verrs_t *v, const char *name, const char *at)
{
    if (name == NULL) {
        st_verr(v, NULL, at, "Member must not be null");
        return;
    }
    if (!name_chars_ok(name) || name[0] == '\0')
        st_verr(v, name, at, "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+");
    if (strlen(name) < 3)
        st_verr(v, name, at, "Member must have length greater than or equal to 3");
    if (strlen(name) > 255)
        st_verr(v, name, at, "Member must have length less than or equal to 255");
}

void st_check_enum(st_verrs_t *v, const char *value, const char *at, const char *const *allowed)
{
    char set[256];
    size_t o = 0;

    if (value == NULL)
        return;
    for (const char *const *p = allowed; *p; ++p)
        if (strcmp(*p, value) == 0)
            return;
    o += (size_t)snprintf(set, sizeof(set), "Member must satisfy enum value set: [");
    for (const char *const *p = allowed; *p && o < sizeof(set); ++p)
        o += (size_t)snprintf(set + o, sizeof(set) - o, "%s%s", p == allowed ? "" : ", ", *p);
    if (o < sizeof(set))
        snprintf(set + o, sizeof(set) - o, "]");
    st_verr(v, value, at, set);
}

/* ---- expressions ---- */

struct st_arena_chunk {
    st_arena_chunk_t *next;
    size_t used, cap;
    max_align_t data[];
};

static void *arena_alloc(size_t size, void *ud)
{
    st_exprs_t *x = ud;
    st_arena_chunk_t *c = x->arena;
    size = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (c == NULL || c->cap - c->used < size) {
        size_t cap = size > 16384 ? size : 16384;
        if ((c = malloc(sizeof(*c) + cap)) == NULL)
            return NULL;
        c->next = x->arena;
        c->used = 0;
        c->cap = cap;
        x->arena = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += size;
    return p;
}

static int lookup_name(void *ud, const char *ph, size_t len, const char **out, size_t *outlen)
{
    st_exprs_t *x = ud;
    for (size_t i = 0; i != x->nnames; ++i) {
        if (strlen(x->name_keys[i]) == len && memcmp(x->name_keys[i], ph, len) == 0) {
            json_t *v = json_object_get(x->names, x->name_keys[i]);
            *out = json_string_value(v);
            *outlen = json_string_length(v);
            x->name_used[i] = 1;
            return 0;
        }
    }
    return 1;
}

static int lookup_value(void *ud, const char *ph, size_t len, size_t *index)
{
    st_exprs_t *x = ud;
    for (size_t i = 0; i != x->nvalues; ++i) {
        if (strlen(x->val_keys[i]) == len && memcmp(x->val_keys[i], ph, len) == 0) {
            *index = i;
            x->val_used[i] = 1;
            return 0;
        }
    }
    return 1;
}

static store_expr_vtype_t value_type(void *ud, size_t index)
{
    static const store_expr_vtype_t map[] = {
        [STORE_T_S] = STORE_EXPR_VT_S,       [STORE_T_N] = STORE_EXPR_VT_N,       [STORE_T_B] = STORE_EXPR_VT_B,
        [STORE_T_BOOL] = STORE_EXPR_VT_BOOL, [STORE_T_NULL] = STORE_EXPR_VT_NULL, [STORE_T_L] = STORE_EXPR_VT_L,
        [STORE_T_M] = STORE_EXPR_VT_M,       [STORE_T_SS] = STORE_EXPR_VT_SS,     [STORE_T_NS] = STORE_EXPR_VT_NS,
        [STORE_T_BS] = STORE_EXPR_VT_BS,
    };
    st_exprs_t *x = ud;
    return map[store_value_type(x->vals[index])];
}

static int value_s(void *ud, size_t index, const char **s, size_t *len)
{
    st_exprs_t *x = ud;
    json_t *v = json_object_get(x->vals[index], "S");
    if (store_value_type(x->vals[index]) != STORE_T_S || !json_is_string(v))
        return 1;
    *s = json_string_value(v);
    *len = json_string_length(v);
    return 0;
}

static int placeholder_ok(const char *k, char first)
{
    if (k[0] != first || k[1] == '\0')
        return 0;
    for (++k; *k; ++k)
        if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || (*k >= '0' && *k <= '9') || *k == '_'))
            return 0;
    return 1;
}

/* "keys: {#a, #b}" of the unused ones, or 0 when all were used. */
static int unused_list(const char **keys, const unsigned char *used, size_t n, char *buf, size_t cap)
{
    size_t o = 0;
    int any = 0;
    for (size_t i = 0; i != n; ++i) {
        if (used[i])
            continue;
        o += (size_t)snprintf(buf + o, o < cap ? cap - o : 0, "%s%s", any ? ", " : "", keys[i]);
        any = 1;
    }
    return any;
}

int st_exprs_parse(st_exprs_t *x, json_t *req, unsigned allowed, st_answer_t *a)
{
    static const struct {
        store_expr_kind_t kind;
        const char *member;
    } order[] = {{STORE_EXPR_UPDATE, "UpdateExpression"},
                 {STORE_EXPR_CONDITION, "ConditionExpression"},
                 {STORE_EXPR_KEY_CONDITION, "KeyConditionExpression"},
                 {STORE_EXPR_FILTER, "FilterExpression"},
                 {STORE_EXPR_PROJECTION, "ProjectionExpression"}};
    enum { NKINDS = sizeof(order) / sizeof(order[0]) };
    const char *src[NKINDS] = {NULL};
    char err[STORE_EXPR_ERR_MAX];
    const char *key;
    json_t *v;
    size_t i;

    memset(x, 0, sizeof(*x));
    for (i = 0; i != NKINDS; ++i)
        if ((allowed & (1u << order[i].kind)) && st_get_string(req, order[i].member, &src[i], a) != 0)
            return -1;
    if (st_get_object(req, "ExpressionAttributeNames", &x->names, a) != 0 ||
        st_get_object(req, "ExpressionAttributeValues", &x->values, a) != 0)
        return -1;
    /* shapes first: a SerializationException anywhere wins over any ValidationException */
    json_object_foreach(x->names, key, v)
    {
        if (!json_is_string(v)) {
            wrong_scalar(a, v, "String");
            return -1;
        }
    }
    json_object_foreach(x->values, key, v)
    {
        if (store_value_check_shape(v, err, sizeof(err)) != 0) {
            st_answer_error(a, 400, T_SERIALIZATION, "%s", err);
            return -1;
        }
    }
    int any = src[0] || src[1] || src[2] || src[3] || src[4], anyval = src[0] || src[1] || src[2] || src[3];
    if (x->names != NULL && !any) {
        st_invalid(a, "ExpressionAttributeNames can only be specified when using expressions");
        return -1;
    }
    if (x->values != NULL && !anyval) {
        if (allowed & (1u << STORE_EXPR_UPDATE))
            st_invalid(a, "ExpressionAttributeValues can only be specified when using expressions: UpdateExpression and "
                          "ConditionExpression are null");
        else if (allowed & (1u << STORE_EXPR_KEY_CONDITION))
            st_invalid(a, "ExpressionAttributeValues can only be specified when using expressions: KeyConditionExpression and "
                          "FilterExpression are null");
        else if (allowed & (1u << STORE_EXPR_FILTER))
            st_invalid(a, "ExpressionAttributeValues can only be specified when using expressions: FilterExpression is null");
        else if (allowed & (1u << STORE_EXPR_CONDITION))
            st_invalid(a, "ExpressionAttributeValues can only be specified when using expressions: ConditionExpression is null");
        else
            st_invalid(a, "ExpressionAttributeValues can only be specified when using expressions");
        return -1;
    }
    if (x->names != NULL) {
        if (json_object_size(x->names) == 0) {
            st_invalid(a, "ExpressionAttributeNames must not be empty");
            return -1;
        }
        x->nnames = json_object_size(x->names);
        x->name_keys = calloc(x->nnames, sizeof(*x->name_keys));
        x->name_used = calloc(x->nnames, 1);
        if (x->name_keys == NULL || x->name_used == NULL)
            goto nomem;
        i = 0;
        json_object_foreach(x->names, key, v)
        {
            if (!placeholder_ok(key, '#')) {
                st_invalid(a, "ExpressionAttributeNames contains invalid key: Syntax error; key: \"%s\"", key);
                return -1;
            }
            x->name_keys[i++] = key;
        }
    }
    if (x->values != NULL) {
        if (json_object_size(x->values) == 0) {
            st_invalid(a, "ExpressionAttributeValues must not be empty");
            return -1;
        }
        x->nvalues = json_object_size(x->values);
        x->val_keys = calloc(x->nvalues, sizeof(*x->val_keys));
        x->vals = calloc(x->nvalues, sizeof(*x->vals));
        x->val_used = calloc(x->nvalues, 1);
        if (x->val_keys == NULL || x->vals == NULL || x->val_used == NULL)
            goto nomem;
        i = 0;
        json_object_foreach(x->values, key, v)
        {
            if (!placeholder_ok(key, ':')) {
                st_invalid(a, "ExpressionAttributeValues contains invalid key: Syntax error; key: \"%s\"", key);
                return -1;
            }
            x->val_keys[i] = key;
            x->vals[i++] = v;
        }
        for (i = 0; i != x->nvalues; ++i) {
            if (store_value_check(x->vals[i], err, sizeof(err)) != 0) {
                st_invalid(a, "ExpressionAttributeValues contains invalid value: %s for key %s", err, x->val_keys[i]);
                return -1;
            }
        }
    }
    store_expr_env_t env = {arena_alloc, lookup_name, lookup_value, value_type, value_s, x};
    for (i = 0; i != NKINDS; ++i) {
        if (src[i] == NULL)
            continue;
        store_expr_t *e;
        int *has;
        switch (order[i].kind) {
        case STORE_EXPR_UPDATE:
            e = &x->update, has = &x->has_update;
            break;
        case STORE_EXPR_CONDITION:
            e = &x->cond, has = &x->has_cond;
            break;
        case STORE_EXPR_KEY_CONDITION:
            e = &x->keycond, has = &x->has_keycond;
            break;
        case STORE_EXPR_FILTER:
            e = &x->filter, has = &x->has_filter;
            break;
        default:
            e = &x->proj, has = &x->has_proj;
        }
        int rc = store_expr_parse(order[i].kind, src[i], strlen(src[i]), &env, e, err, sizeof(err));
        if (rc == STORE_EXPR_ENOMEM)
            goto nomem;
        if (rc != 0) {
            st_invalid(a, "%s", err);
            return -1;
        }
        *has = 1;
    }
    char list[1024];
    if (unused_list(x->name_keys, x->name_used, x->nnames, list, sizeof(list))) {
        st_invalid(a, "Value provided in ExpressionAttributeNames unused in expressions: keys: {%s}", list);
        return -1;
    }
    if (unused_list(x->val_keys, x->val_used, x->nvalues, list, sizeof(list))) {
        st_invalid(a, "Value provided in ExpressionAttributeValues unused in expressions: keys: {%s}", list);
        return -1;
    }
    /* the values' checks that do not depend on any item (BETWEEN bounds, attribute_type names...) */
    if ((x->has_update && store_eval_check(&x->update, x->vals, err, sizeof(err)) != 0) ||
        (x->has_cond && store_eval_check(&x->cond, x->vals, err, sizeof(err)) != 0) ||
        (x->has_keycond && store_eval_check(&x->keycond, x->vals, err, sizeof(err)) != 0) ||
        (x->has_filter && store_eval_check(&x->filter, x->vals, err, sizeof(err)) != 0)) {
        st_invalid(a, "%s", err);
        return -1;
    }
    return 0;
nomem:
    st_answer_error(a, 500, T_INTERNAL, "out of memory");
    return -1;
}

void st_exprs_free(st_exprs_t *x)
{
    while (x->arena != NULL) {
        st_arena_chunk_t *c = x->arena;
        x->arena = c->next;
        free(c);
    }
    free(x->name_keys);
    free(x->name_used);
    free(x->val_keys);
    free(x->vals);
    free(x->val_used);
    memset(x, 0, sizeof(*x));
}

/* ---- the handle map ---- */

static size_t hash_name(const char *s)
{
    return (size_t)st_hash64(s, strlen(s));
}

/* Under map_lock (write). The map is open addressing, at most half full; entries are never removed. */
int st_map_put(store_t *s, const char *name, MDB_dbi dbi)
{
    int rc = 0;
    pthread_rwlock_wrlock(&s->map_lock);
    size_t mask = s->map_cap - 1, i = hash_name(name) & mask;
    for (; s->map[i].name != NULL; i = (i + 1) & mask)
        if (strcmp(s->map[i].name, name) == 0)
            goto out; /* a name recreated finds its old handle: mdb_dbi_open returned the same one */
    if ((s->map[i].name = strdup(name)) == NULL)
        rc = ENOMEM;
    s->map[i].dbi = dbi;
    s->map_n++;
out:
    pthread_rwlock_unlock(&s->map_lock);
    return rc;
}

/* The store whose writer this thread is (set by writer_main; a reaping writer may ask before store_open has written
 * s->writer_started and s->writer). */
static _Thread_local store_t *on_writer;

int st_table_dbi(store_t *s, const char *name, MDB_dbi *dbi)
{
    int rc = MDB_NOTFOUND;
    pthread_rwlock_rdlock(&s->map_lock);
    size_t mask = s->map_cap - 1;
    for (size_t i = hash_name(name) & mask; s->map[i].name != NULL; i = (i + 1) & mask) {
        if (strcmp(s->map[i].name, name) == 0) {
            *dbi = s->map[i].dbi;
            rc = 0;
            break;
        }
    }
    pthread_rwlock_unlock(&s->map_lock);
    if (rc != 0 && on_writer == s) {
        /* the writer also sees the handles its running batch opened */
        for (st_job_t *j = s->batch; j != NULL; j = j->next) {
            for (size_t i = 0; i != j->nopened && (j->ans.status == 0 || j->ans.status == 200); ++i) {
                if (strcmp(j->opened[i].name, name) == 0) {
                    *dbi = j->opened[i].dbi;
                    return 0;
                }
            }
        }
    }
    return rc;
}

/* ---- the parsed descriptions each thread keeps ---- */

#define DESC_CACHE 8 /* parsed table descriptions kept per reading thread, and by the writer */

/* The descriptions a thread parsed last, by their stored text: an operation on a table whose description is the same
 * text shares the parsed one (json_incref) instead of parsing it again (most of a GetItem's cost otherwise, and once
 * per action of a transaction on the writer). Only their thread touches them; nobody changes a shared description
 * (alter.c copies before it changes one). */
typedef struct desc_cache {
    struct desc_slot {
        char *text;
        size_t len;
        json_t *desc;
    } slot[DESC_CACHE];
    unsigned next;
} desc_cache_t;

static void descs_clear(desc_cache_t *dc)
{
    for (int i = 0; i != DESC_CACHE; ++i) {
        free(dc->slot[i].text);
        json_decref(dc->slot[i].desc);
    }
    memset(dc, 0, sizeof(*dc));
}

/* the writer's (one writer per thread; cleared when writer_main ends) */
static _Thread_local desc_cache_t writer_descs;

typedef struct st_reader {
    store_t *s;
    MDB_txn *txn;
    struct st_reader *next;
    desc_cache_t descs;
} st_reader_t;

static void reader_free(st_reader_t *r)
{
    mdb_txn_abort(r->txn);
    descs_clear(&r->descs);
    free(r);
}

json_t *st_desc_parse(store_t *s, const MDB_val *v)
{
    st_reader_t *r = pthread_getspecific(s->reader_key);
    desc_cache_t *dc = r != NULL ? &r->descs : on_writer == s ? &writer_descs : NULL;
    json_t *desc;
    char *text;

    if (dc == NULL) /* a thread that has not read yet */
        return json_loadb(v->mv_data, v->mv_size, 0, NULL);
    for (int i = 0; i != DESC_CACHE; ++i)
        if (dc->slot[i].len == v->mv_size && memcmp(dc->slot[i].text, v->mv_data, v->mv_size) == 0)
            return json_incref(dc->slot[i].desc);
    if ((desc = json_loadb(v->mv_data, v->mv_size, 0, NULL)) == NULL || (text = malloc(v->mv_size)) == NULL)
        return desc;
    struct desc_slot *c = &dc->slot[dc->next++ % DESC_CACHE];
    free(c->text);
    json_decref(c->desc);
    memcpy(text, v->mv_data, v->mv_size);
    *c = (struct desc_slot){text, v->mv_size, json_incref(desc)};
    return desc;
}

int st_job_open_db(store_t *s, MDB_txn *parent, st_job_t *j, const char *name, const char *dbname, unsigned flags, MDB_dbi *dbi)
{
    int rc;
    (void)s;
    if (j->nopened == ST_OPENED_MAX) {
        st_answer_error(&j->ans, 500, T_INTERNAL, "too many databases in one job");
        return -1;
    }
    if ((rc = mdb_dbi_open(parent, dbname, MDB_CREATE | flags, dbi)) == MDB_DBS_FULL) {
        st_answer_error(&j->ans, 400, T_LIMIT,
                        "Subscriber limit exceeded: this item store holds at most %d tables, indexes and TTL settings in all",
                        ST_MAX_TABLES);
        return -1;
    }
    if (rc != 0) {
        st_internal(&j->ans, rc);
        return -1;
    }
    if ((j->opened[j->nopened].name = strdup(name)) == NULL) {
        st_answer_error(&j->ans, 500, T_INTERNAL, "out of memory");
        return -1;
    }
    j->opened[j->nopened++].dbi = *dbi;
    return 0;
}

const char *st_index_db_name(char *buf, const char *table, const char *index)
{
    snprintf(buf, 520, "i.%s/%s", table, index); /* '/' is in no table name: no clash with a table's "NAME" */
    return buf;
}

const char *st_ttl_db_name(char *buf, const char *table)
{
    snprintf(buf, 520, "x.%s/", table);
    return buf;
}

/* ---- the writer ---- */

static void run_batch(store_t *s, st_job_t *batch)
{
    MDB_txn *txn = NULL;
    st_job_t *j;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);

    s->batch = batch;
    for (j = batch; j != NULL && rc == 0; j = j->next) {
        if (j->run == NULL)
            continue;
        if (j->prepare != NULL)
            j->prepare(s, txn, j);
        if (j->ans.status != 0)
            continue;
        MDB_txn *child;
        int crc = mdb_txn_begin(s->env, txn, 0, &child);
        if (crc != 0) {
            st_internal(&j->ans, crc);
            continue;
        }
        if (j->run(s, child, j)) {
            if ((crc = mdb_txn_commit(child)) != 0)
                st_internal(&j->ans, crc);
        } else {
            mdb_txn_abort(child);
        }
    }
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    s->batch = NULL;
    for (j = batch; j != NULL; j = j->next) {
        if (j->run == NULL)
            continue;
        if (rc != 0) /* nothing of the batch is on disk: no job may say otherwise, not even a failed condition */
            st_internal(&j->ans, rc);
        for (size_t i = 0; i != j->nopened; ++i) {
            if (rc == 0 && j->ans.status == 200 && st_map_put(s, j->opened[i].name, j->opened[i].dbi) != 0)
                st_answer_error(&j->ans, 500, T_INTERNAL, "out of memory");
            free(j->opened[i].name);
        }
        j->nopened = 0;
    }
    if (rc != 0)
        fprintf(stderr, "edgeproxy: item store: a write transaction failed: %s\n", mdb_strerror(rc));
    while ((j = batch) != NULL) {
        batch = j->next;
        char *body = j->ans.body;
        j->ans.body = NULL;
        j->done(j->data, j->ans.status, body, j->ans.len);
        j->free(j);
    }
}

/* ---- the TTL reaper: a job of its own, about once a second, when a table has TTL ---- */

#define REAP_MAX 1000 /* items per reaping job */

static int reap_run(store_t *s, MDB_txn *txn, st_job_t *j)
{
    int n = st_ttl_reap(s, txn, REAP_MAX);
    j->ans.status = n < 0 ? 500 : 200;
    j->ans.len = n < 0 ? 0 : (size_t)n; /* how many, for the writer */
    return n > 0;
}

static void reap_done(void *data, int status, char *body, size_t len)
{
    *(long *)data = status == 200 ? (long)len : -1;
    free(body);
}

static void reap_free(st_job_t *j)
{
    (void)j;
}

/* Runs one reaping job; returns the items reaped (REAP_MAX: there may be more). */
static long reap(store_t *s)
{
    long n = 0;
    st_job_t j = {.run = reap_run, .free = reap_free, .done = reap_done, .data = &n};
    run_batch(s, &j);
    return n;
}

static void *writer_main(void *p)
{
    store_t *s = p;
    struct timespec next_reap = {0};

    pthread_setname_np(pthread_self(), "edge-store-wr");
    on_writer = s;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->ttl_active) {
            struct timespec now;
            clock_gettime(CLOCK_REALTIME, &now);
            if (now.tv_sec > next_reap.tv_sec || (now.tv_sec == next_reap.tv_sec && now.tv_nsec >= next_reap.tv_nsec)) {
                pthread_mutex_unlock(&s->mu);
                long n = reap(s);
                pthread_mutex_lock(&s->mu);
                next_reap = now;
                next_reap.tv_sec += n >= REAP_MAX ? 0 : 1; /* more to reap: again soon (after the queued jobs) */
            }
        }
        if (s->jobs == NULL) {
            if (s->stopping)
                break;
            if (s->ttl_active)
                pthread_cond_timedwait(&s->wake, &s->mu, &next_reap);
            else
                pthread_cond_wait(&s->wake, &s->mu);
            continue;
        }
        st_job_t *batch = s->jobs, *last = batch;
        for (size_t n = 1; n != ST_BATCH_MAX && last->next != NULL; ++n)
            last = last->next;
        s->jobs = last->next;
        last->next = NULL;
        if (s->jobs == NULL)
            s->jobs_tail = &s->jobs;
        pthread_mutex_unlock(&s->mu);
        run_batch(s, batch);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    descs_clear(&writer_descs);
    return NULL;
}

void st_enqueue(store_t *s, st_job_t *j)
{
    pthread_mutex_lock(&s->mu);
    if (s->stopping || !s->writer_started) {
        pthread_mutex_unlock(&s->mu);
        st_answer_error(&j->ans, 500, T_INTERNAL, "the item store is closing");
        char *body = j->ans.body;
        j->done(j->data, j->ans.status, body, j->ans.len);
        j->free(j);
        return;
    }
    j->next = NULL;
    *s->jobs_tail = j;
    s->jobs_tail = &j->next;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
}

typedef struct flush_wait {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int done;
} flush_wait_t;

static void flush_done(void *data, int status, char *body, size_t len)
{
    flush_wait_t *w = data;
    (void)status, (void)len;
    free(body);
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

static void job_free_plain(st_job_t *j)
{
    free(j->ans.body);
    free(j);
}

void store_flush(store_t *s)
{
    flush_wait_t w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    st_job_t *j = calloc(1, sizeof(*j));

    if (s == NULL || j == NULL) {
        free(j);
        return;
    }
    j->free = job_free_plain;
    j->done = flush_done;
    j->data = &w;
    st_enqueue(s, j); /* a marker: answered after the batch before it committed (or at once when closing) */
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cond, &w.mu);
    pthread_mutex_unlock(&w.mu);
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.mu);
}

/* ---- open, close, dispatch ---- */

/* ---- reads ---- */

static void reader_unlink(st_reader_t *r)
{
    st_reader_t **p;

    pthread_mutex_lock(&r->s->readers_mu);
    for (p = &r->s->readers; *p != r; p = &(*p)->next)
        ;
    *p = r->next;
    pthread_mutex_unlock(&r->s->readers_mu);
}

/* A thread that read from the store ends: its transaction goes (the server's workers end before store_close). */
static void reader_gone(void *p)
{
    st_reader_t *r = p;

    reader_unlink(r);
    reader_free(r);
}

int st_read_begin(store_t *s, MDB_txn **txn)
{
    st_reader_t *r = pthread_getspecific(s->reader_key);
    int rc;

    if (r != NULL) {
        if ((rc = mdb_txn_renew(r->txn)) != 0)
            return rc;
        *txn = r->txn;
        return 0;
    }
    if ((r = calloc(1, sizeof(*r))) == NULL)
        return ENOMEM;
    if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &r->txn)) != 0) {
        free(r);
        return rc;
    }
    r->s = s;
    if (pthread_setspecific(s->reader_key, r) != 0) {
        mdb_txn_abort(r->txn);
        free(r);
        return ENOMEM;
    }
    pthread_mutex_lock(&s->readers_mu);
    r->next = s->readers;
    s->readers = r;
    pthread_mutex_unlock(&s->readers_mu);
    *txn = r->txn;
    return 0;
}

void st_read_end(MDB_txn *txn)
{
    mdb_txn_reset(txn);
}

int store_open(store_t **out, const store_options_t *opts, char *err, size_t errlen)
{
    store_t *s = calloc(1, sizeof(*s));
    MDB_txn *txn;
    char bad[260] = ""; /* the table st_tables_open_all failed on */
    int rc;

    *out = NULL;
    if (s == NULL || (s->dir = strdup(opts->dir)) == NULL ||
        (s->map = calloc(s->map_cap = 2048, sizeof(*s->map))) == NULL) { /* >= 2 * ST_MAX_TABLES, a power of 2 */
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    pthread_rwlock_init(&s->map_lock, NULL);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->wake, NULL);
    pthread_mutex_init(&s->readers_mu, NULL);
    if (pthread_key_create(&s->reader_key, reader_gone) != 0) {
        snprintf(err, errlen, "out of thread-specific keys");
        goto fail;
    }
    s->reader_key_made = 1;
    s->jobs_tail = &s->jobs;
    if (st_rules_compile(opts->rules, opts->nrules, &s->rules, err, errlen) != 0)
        goto fail;
    s->nrules = opts->nrules;
    if (mkdir(s->dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "item store %s: %s", s->dir, strerror(errno));
        goto fail;
    }
    if ((rc = mdb_env_create(&s->env)) != 0)
        goto fail_lmdb;
    /* durable commits: neither MDB_NOSYNC nor MDB_NOMETASYNC (an acknowledged write is on disk) */
    if ((rc = mdb_env_set_maxdbs(s->env, ST_MAX_TABLES + 1)) != 0 ||
        (rc = mdb_env_set_mapsize(s->env, opts->map_size ? opts->map_size : MAP_SIZE_DEFAULT)) != 0 ||
        (rc = mdb_env_set_maxreaders(s->env, 1024)) != 0 || (rc = mdb_env_open(s->env, s->dir, MDB_NOTLS, 0600)) != 0)
        goto fail_lmdb;
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
        goto fail_lmdb;
    if ((rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->meta)) != 0)
        goto fail_lmdb_txn;
    if ((rc = st_tables_open_all(s, txn, bad, sizeof(bad))) != 0) {
        mdb_txn_abort(txn);
        snprintf(err, errlen, "item store %s: table %s: %s", s->dir, bad,
                 rc == MDB_CORRUPTED ? "a damaged table record (MDB_CORRUPTED)" : mdb_strerror(rc));
        goto fail;
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        goto fail_lmdb;
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
        snprintf(err, errlen, "cannot start the item store's writer thread");
        goto fail;
    }
    s->writer_started = 1;
    *out = s;
    return 0;
fail_lmdb_txn:
    mdb_txn_abort(txn);
fail_lmdb:
    snprintf(err, errlen, "item store %s: %s", s->dir, mdb_strerror(rc));
fail:
    store_close(s);
    return -1;
}

void store_close(store_t *s)
{
    if (s == NULL)
        return;
    if (s->writer_started) {
        pthread_mutex_lock(&s->mu);
        s->stopping = 1; /* the writer drains the queue, then stops */
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->writer, NULL);
        s->writer_started = 0;
    }
    if (s->reader_key_made) { /* the readers' threads may live on (tests): their transactions go now */
        pthread_key_delete(s->reader_key);
        while (s->readers != NULL) {
            st_reader_t *r = s->readers;
            s->readers = r->next;
            reader_free(r);
        }
    }
    if (s->env != NULL)
        mdb_env_close(s->env);
    if (s->map != NULL) {
        for (size_t i = 0; i != s->map_cap; ++i)
            free(s->map[i].name);
        free(s->map);
        pthread_rwlock_destroy(&s->map_lock);
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->wake);
        pthread_mutex_destroy(&s->readers_mu);
    }
    st_rules_free(s->rules, s->nrules);
    free(s->dir);
    free(s);
}

typedef enum { OP_READ, OP_WRITE } op_kind_t;

static const struct op {
    const char *name;
    op_kind_t kind;
    void (*read)(store_t *s, json_t *req, st_answer_t *a);
    void (*write)(store_t *s, json_t *req, store_done_cb done, void *data);
} ops[] = {
    {"CreateTable", OP_WRITE, NULL, st_create_table},
    {"DeleteTable", OP_WRITE, NULL, st_delete_table},
    {"DescribeTable", OP_READ, st_describe_table, NULL},
    {"ListTables", OP_READ, st_list_tables, NULL},
    {"PutItem", OP_WRITE, NULL, st_put_item},
    {"GetItem", OP_READ, st_get_item, NULL},
    {"UpdateTable", OP_WRITE, NULL, st_update_table},
    {"UpdateTimeToLive", OP_WRITE, NULL, st_update_time_to_live},
    {"DescribeTimeToLive", OP_READ, st_describe_time_to_live, NULL},
    {"TagResource", OP_WRITE, NULL, st_tag_resource},
    {"UntagResource", OP_WRITE, NULL, st_untag_resource},
    {"ListTagsOfResource", OP_READ, st_list_tags_of_resource, NULL},
    {"DeleteItem", OP_WRITE, NULL, st_delete_item},
    {"UpdateItem", OP_WRITE, NULL, st_update_item},
    {"Query", OP_READ, st_query, NULL},
    {"Scan", OP_READ, st_scan, NULL},
    {"BatchGetItem", OP_READ, st_batch_get_item, NULL},
    {"BatchWriteItem", OP_WRITE, NULL, st_batch_write_item},
    {"TransactGetItems", OP_READ, st_transact_get_items, NULL},
    {"TransactWriteItems", OP_WRITE, NULL, st_transact_write_items},
};

void store_call(store_t *s, const char *op, const char *body, size_t len, store_done_cb done, void *data)
{
    const struct op *o = NULL;
    st_answer_t a = {0};
    json_error_t jerr;
    json_t *req;

    for (size_t i = 0; i != sizeof(ops) / sizeof(ops[0]); ++i)
        if (op != NULL && strcmp(ops[i].name, op) == 0)
            o = &ops[i];
    if (o == NULL) {
        st_answer_error(&a, 400, T_UNKNOWN_OP, "Unknown operation: %s", op != NULL ? op : "");
        goto answer;
    }
    if ((req = json_loadb(body, len, 0, &jerr)) == NULL || !json_is_object(req)) {
        st_answer_error(&a, 400, T_SERIALIZATION,
                        req == NULL          ? "Could not parse the request body as JSON"
                        : json_is_array(req) ? "Start of list found where not expected"
                                             : "Expected a JSON object as the request body");
        json_decref(req);
        goto answer;
    }
    if (st_legacy_rewrite(o->name, req, &a) != 0) { /* legacy parameters become expressions, or are answered */
        json_decref(req);
        goto answer;
    }
    st_capacity_wrap(o->name, req, &done, &data);
    if (o->kind == OP_WRITE) {
        o->write(s, req, done, data); /* answers, now (a rejected request) or from the writer */
        json_decref(req);
        return;
    }
    o->read(s, req, &a);
    json_decref(req);
answer:
    done(data, a.status, a.body, a.len);
}
