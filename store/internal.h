/*
 * store/internal.h (internal to store/): what the store's files share: store.c (environment, writer, dispatch, request
 * members, expressions), table.c (table operations, schemas, counters), alter.c, item.c (item operations and the
 * helpers batch.c and transact.c reuse), write.c (every item write), query.c, legacy.c, schema.c, capacity.c.
 *
 * LMDB layout (one environment, MDB_NOTLS, synchronous commits):
 *   "meta"      "t/NAME" -> the table's description, JSON (TableDescription's fields that do not change: TableName,
 *                           KeySchema, AttributeDefinitions, CreationDateTime, ProvisionedThroughput or
 *                           BillingModeSummary, LocalSecondaryIndexes, GlobalSecondaryIndexes, TableArn...)
 *               "c/NAME" -> the table's counters, two little-endian uint64: ItemCount, TableSizeBytes (a separate
 *                           16-byte record so that a write does not re-serialize the description)
 *   "t.NAME"    one database per table: store_key_encode_pair(pk, sk) -> the item's checked, normalized JSON text.
 *   "i.NAME/IX" one per secondary index (MDB_DUPSORT): index key -> the table keys of the items that have it.
 *   "x.NAME/"   the table's TTL database (MDB_DUPSORT): expiry (8 bytes, big-endian seconds) -> table keys.
 * These databases are never closed nor deleted while the process runs: DeleteTable empties them (mdb_drop with
 * del 0) and CreateTable of the same name finds them again. Closing a handle while another thread may read through it is
 * unsafe in LMDB (its name is looked up lazily by readers), so handles live as long as the environment; a name
 * recreated gets its old handle back.
 *
 * Handles: only the writer thread opens databases (LMDB forbids concurrent mdb_dbi_open); it publishes name -> handle
 * in a map (under a rwlock) after the commit that made the table (or the index, or the TTL), before it answers. Readers look
 * handles up there: a table whose meta record is visible but whose handle is not yet published is one whose CreateTable is not yet
 * acknowledged, and is answered as missing.
 */
#ifndef EDGEPROXY_STORE_INTERNAL_H
#define EDGEPROXY_STORE_INTERNAL_H

#include <jansson.h>
#include <lmdb.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "store/expr.h"
#include "store/store.h"
#include "store/value.h"

#define ST_MAX_TABLES                                                                                                              \
    1000                 /* LMDB's maxdbs (tables, indexes, TTLs) is fixed at open; each read transaction allocates a              \
                            slot per db */
#define ST_BATCH_MAX 256 /* jobs per write transaction */
#define ST_OPENED_MAX 27 /* databases of one table: its own, 5 local and 20 global indexes, TTL */

#define T_VALIDATION "com.amazon.coral.validate#ValidationException"
#define T_SERIALIZATION "com.amazon.coral.service#SerializationException"
#define T_UNKNOWN_OP "com.amazon.coral.service#UnknownOperationException"
#define T_NOT_FOUND "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException"
#define T_IN_USE "com.amazonaws.dynamodb.v20120810#ResourceInUseException"
#define T_CONDITION "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"
#define T_LIMIT "com.amazonaws.dynamodb.v20120810#LimitExceededException"
#define T_INTERNAL "com.amazonaws.dynamodb.v20120810#InternalServerError"

/* ---- answers ---- */

typedef struct st_answer {
    int status; /* 0: not answered yet */
    char *body;
    size_t len;
} st_answer_t;

void st_answer_error(st_answer_t *a, int status, const char *type, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Takes o (a reference is dropped); answers 200 with its compact text. */
void st_answer_json(st_answer_t *a, json_t *o);
/* 200 with a copy of text. */
void st_answer_text(st_answer_t *a, const char *text, size_t len);
#define st_invalid(a, ...) st_answer_error((a), 400, T_VALIDATION, __VA_ARGS__)
#define st_internal(a, rc) st_answer_error((a), 500, T_INTERNAL, "data store: %s", mdb_strerror(rc))

/* ---- request checks (on the caller's thread) ---- */

/* DynamoDB's "N validation error(s) detected: Value 'x' at 'tableName' failed to satisfy constraint: ...; ..." */
typedef struct st_verrs {
    int n;
    size_t len;
    char buf[2048];
} st_verrs_t;
/* value: the offending value as text (NULL: null), at: the member ("tableName", "key"). */
void st_verr(st_verrs_t *v, const char *value, const char *at, const char *constraint);
/* When errors were collected: answers them (400) and returns -1; else 0. */
int st_verr_answer(st_verrs_t *v, st_answer_t *a);

/*
 * Members of the request: each returns 0 with *out set (NULL when absent or JSON null), or -1 having answered the
 * SerializationException DynamoDB's deserializer gives a member of the wrong JSON type (st_get_list: an array).
 */
int st_get_string(const json_t *req, const char *name, const char **out, st_answer_t *a);
int st_get_object(const json_t *req, const char *name, json_t **out, st_answer_t *a);
int st_get_list(const json_t *req, const char *name, json_t **out, st_answer_t *a);
/* A request member's compact JSON in a validation message, cut short with "..." to fit buf. */
void st_echo(const json_t *v, char *buf, size_t cap);
int st_get_bool(const json_t *req, const char *name, int *out, st_answer_t *a);
int st_get_long(const json_t *req, const char *name, json_t **out, st_answer_t *a);
/* A TableName member checked as DynamoDB checks it (not null, 3..255 chars, [a-zA-Z0-9_.-]+), at `at`. */
void st_check_table_name(st_verrs_t *v, const char *name, const char *at);
/* An enum member ("Member must satisfy enum value set: [A, B]"); allowed is NULL-terminated. */
void st_check_enum(st_verrs_t *v, const char *value, const char *at, const char *const *allowed);

/* ---- expressions: the placeholders of one request ---- */

typedef struct st_arena_chunk st_arena_chunk_t;
typedef struct st_exprs {
    st_arena_chunk_t *arena;
    json_t *names, *values; /* ExpressionAttributeNames / Values, borrowed from the request (NULL when absent) */
    size_t nvalues;
    json_t **vals; /* the values by index (borrowed) */
    const char **val_keys;
    unsigned char *val_used;
    const char **name_keys;
    size_t nnames;
    unsigned char *name_used;
    int has_cond, has_update, has_proj, has_keycond, has_filter;
    store_expr_t cond, update, proj, keycond, filter;
} st_exprs_t;

/*
 * Reads and checks ExpressionAttributeNames / Values and parses the expressions the request has among
 * UpdateExpression, ConditionExpression, KeyConditionExpression, FilterExpression and ProjectionExpression (the
 * operation says which it takes: `allowed`, a mask
 * of 1 << store_expr_kind_t), in DynamoDB's order of checks, then the unused-placeholder checks. 0, or -1 answered.
 */
int st_exprs_parse(st_exprs_t *x, json_t *req, unsigned allowed, st_answer_t *a);
void st_exprs_free(st_exprs_t *x);

/* ---- tables ---- */

/* A secondary index (GlobalSecondaryIndexes, LocalSecondaryIndexes) as st_schema_load reads it. Its database
 * "i.TABLE/INDEX" (MDB_DUPSORT) maps store_key_encode_pair(index key) -> the table keys (store_key_encode_pair) of the
 * items that have both index key attributes ("sparse": items without them are not in the index). Items are read from
 * the table through it, then projected (KEYS_ONLY, INCLUDE, ALL). */
typedef enum { ST_PROJ_ALL, ST_PROJ_KEYS_ONLY, ST_PROJ_INCLUDE } st_proj_t;
typedef struct st_index {
    const char *name; /* into the schema's desc */
    int global;
    const char *pk, *sk; /* sk NULL without a sort key */
    store_type_t pk_type, sk_type;
    st_proj_t proj;
    json_t *include; /* INCLUDE's NonKeyAttributes (borrowed from desc) */
    MDB_dbi dbi;     /* set by st_open_table */
} st_index_t;

typedef struct st_schema {
    json_t *desc;        /* the stored description (owned) */
    const char *pk, *sk; /* into desc; sk NULL without a sort key */
    store_type_t pk_type, sk_type;
    st_index_t *idx; /* malloc'ed (NULL when nidx is 0) */
    size_t nidx;
    /* TTL: the attribute when enabled (into desc), and the database "x.TABLE/" (MDB_DUPSORT) mapping the expiry
     * (8 bytes, big-endian epoch seconds) -> the table keys of the items that expire then; set by st_open_table */
    const char *ttl;
    MDB_dbi ttl_dbi;
    MDB_dbi dbi; /* the table's database; set by st_open_table */
} st_schema_t;

/* The private member of a stored description holding the TTL specification ({"AttributeName", "Enabled"}); not shown
 * by DescribeTable. */
#define ST_DESC_TTL "EdgeTimeToLive"
/* The private member holding the table's tags ({"Key": "Value"}), shown by ListTagsOfResource only. */
#define ST_DESC_TAGS "EdgeTags"
/* What CreateTable and UpdateTable record of the settings that change nothing here (streams, the table class, SSE):
 * st_apply_settings copies StreamSpecification (with LatestStreamArn / LatestStreamLabel when enabled) and TableClass
 * (as TableClassSummary) from req into desc. */
void st_apply_settings(json_t *desc, const json_t *req, const char *table);

/* table.c's helpers that alter.c (UpdateTable, TTL) shares: the type AttributeDefinitions give `name`
 * (STORE_T_NONE: none); DescribeTable's view of a description (a new object); TableName checked as DescribeTable does
 * (0, or -1 answered); CreateTable's checks of LocalSecondaryIndexes / GlobalSecondaryIndexes in req (0, or -1
 * answered); an index's description from its request (a new object). */
store_type_t st_attr_type(const json_t *defs, const char *name);
json_t *st_describe(store_t *s, MDB_txn *txn, const char *name, json_t *desc, const char *status);
int st_check_table_name_req(json_t *req, const char **name, st_answer_t *a);
int st_check_indexes(json_t *req, json_t *defs, json_t *ks, const char *billing, st_answer_t *a);
json_t *st_index_desc(const json_t *ix, const char *table, int global);

/* A description's stored text v parsed (a new reference), shared with the calling thread's last parses of the same
 * text (store.c's per-thread desc_cache_t, on readers and on the writer: callers copy before they change it). NULL
 * when it does not parse. */
json_t *st_desc_parse(store_t *s, const MDB_val *v);

/* Reads and parses table `name`'s schema in txn. 0, MDB_NOTFOUND, or an LMDB error (MDB_CORRUPTED for a damaged record). */
int st_schema_load(store_t *s, MDB_txn *txn, const char *name, st_schema_t *out);
void st_schema_free(st_schema_t *sc);
/* Meta keys: "t/NAME", "c/NAME" (buf of 258 bytes). */
MDB_val st_meta_key(char *buf, char kind, const char *name);
int st_counters_get(store_t *s, MDB_txn *txn, const char *name, uint64_t *count, uint64_t *bytes);
int st_counters_add(store_t *s, MDB_txn *txn, const char *name, int64_t dcount, int64_t dbytes);

/* ---- ConsumedCapacity (capacity.c) ---- */

/* When req asks for ReturnConsumedCapacity TOTAL or INDEXES: replaces *done / *data by a wrapper that adds
 * ConsumedCapacity to a 200 answer (it holds a reference to req) and returns 1; else 0, and nothing changes. */
int st_capacity_wrap(const char *op, json_t *req, store_done_cb *done, void **data);
/* Whether req asks for ConsumedCapacity (ReturnConsumedCapacity TOTAL or INDEXES). Query and Scan then add the DynamoDB
 * size of the items they read (before the filter) to their answer as ST_READ_BYTES, which the wrapper uses and
 * removes: a client never sees it. */
int st_capacity_asked(const json_t *req);
#define ST_READ_BYTES "EdgeReadBytes"

/* ---- schema validation (schema.c) ---- */

typedef struct st_rule st_rule_t;
typedef struct st_rules st_rules_t;
/* Compiles store.h's rules (copies everything): 0 and *out (NULL when n is 0), or -1 with err set. */
int st_rules_compile(const store_table_rules_t *in, size_t n, st_rules_t **out, char *err, size_t errlen);
void st_rules_free(st_rules_t *rules, size_t n);
/* Checks an item about to be written to `table`: 0, or -1 having answered the ValidationException. */
int st_rules_check_item(const store_t *s, const char *table, const json_t *item, st_answer_t *a);

/* ---- the store and its writer ---- */

typedef struct st_job st_job_t;
struct st_job {
    st_job_t *next;
    /* Runs before the job's nested transaction begins, on the batch's transaction (CreateTable opens its database
     * there: mdb_dbi_open is not for nested transactions). Optional; may answer (the job is then done). */
    void (*prepare)(store_t *s, MDB_txn *parent, st_job_t *j);
    /* Runs the job in its nested transaction; returns 1 to commit it, 0 to abort it. Must answer. NULL: a flush
     * marker (nothing to run). */
    int (*run)(store_t *s, MDB_txn *txn, st_job_t *j);
    void (*free)(st_job_t *j); /* frees the job */
    store_done_cb done;
    void *data;
    st_answer_t ans;
    /* handles opened by prepare (st_job_open_db), published after the commit: a table's, its indexes', its TTL's */
    struct st_opened {
        char *name; /* the handle map's name (malloc'ed; freed by the writer) */
        MDB_dbi dbi;
    } opened[ST_OPENED_MAX];
    size_t nopened;
};

/* In a job's prepare: opens (MDB_CREATE | flags) database `dbname` in the batch's transaction and records its handle
 * under `name` in the job, to be published after the commit (st_table_dbi finds it meanwhile, on the writer). 0, or
 * -1 having answered (LimitExceededException when LMDB's databases are all used). */
int st_job_open_db(store_t *s, MDB_txn *parent, st_job_t *j, const char *name, const char *dbname, unsigned flags, MDB_dbi *dbi);
/* The handle map's names (and LMDB database names) of an index's and of the TTL's database (buf: 520 bytes). */
const char *st_index_db_name(char *buf, const char *table, const char *index);
const char *st_ttl_db_name(char *buf, const char *table);

struct store {
    MDB_env *env;
    MDB_dbi meta;
    char *dir;
    pthread_rwlock_t map_lock; /* the handle map */
    struct st_slot {
        char *name;
        MDB_dbi dbi;
    } * map;
    size_t map_cap, map_n;
    pthread_mutex_t mu; /* the queue */
    pthread_cond_t wake;
    st_job_t *jobs, **jobs_tail;
    int stopping, writer_started;
    pthread_t writer;
    /* the batch being run (writer only): handles opened in it, not yet published */
    st_job_t *batch;
    /* a table has (or had) TTL enabled: the writer reaps expired items about once a second (writer only, and
     * store_open before the writer starts) */
    int ttl_active;
    st_rules_t *rules; /* schema validation, per table (immutable while the store is open) */
    size_t nrules;
    /* reads: one read-only transaction per calling thread, reset between reads and renewed (st_read_begin): beginning
     * one allocates the slots of every possible table (ST_MAX_TABLES), too much for each GetItem */
    pthread_key_t reader_key;
    int reader_key_made;
    pthread_mutex_t readers_mu;
    struct st_reader *readers; /* all of them, aborted by store_close */
};

/* The handle of table `name`'s database: published ones, and (on the writer) those opened by the running batch.
 * 0 and *dbi, or MDB_NOTFOUND. */
int st_table_dbi(store_t *s, const char *name, MDB_dbi *dbi);
/* A read-only transaction for the calling thread (its own, renewed): 0, or an LMDB error. st_read_end resets it (close
 * its cursors first). */
int st_read_begin(store_t *s, MDB_txn **txn);
void st_read_end(MDB_txn *txn);
/* Queues a write job (the writer answers it). Answers 500 itself when the store is closing. */
void st_enqueue(store_t *s, st_job_t *j);

/* Operations: each answers (reads directly; writes by queueing a job). req is the parsed request (a borrowed
 * reference; jobs take their own). */
void st_create_table(store_t *s, json_t *req, store_done_cb done, void *data);
void st_delete_table(store_t *s, json_t *req, store_done_cb done, void *data);
void st_describe_table(store_t *s, json_t *req, st_answer_t *a);
void st_list_tables(store_t *s, json_t *req, st_answer_t *a);
void st_update_table(store_t *s, json_t *req, store_done_cb done, void *data); /* alter.c */
void st_update_time_to_live(store_t *s, json_t *req, store_done_cb done, void *data);
void st_describe_time_to_live(store_t *s, json_t *req, st_answer_t *a);
void st_tag_resource(store_t *s, json_t *req, store_done_cb done, void *data);
void st_untag_resource(store_t *s, json_t *req, store_done_cb done, void *data);
void st_list_tags_of_resource(store_t *s, json_t *req, st_answer_t *a);
void st_put_item(store_t *s, json_t *req, store_done_cb done, void *data);
void st_delete_item(store_t *s, json_t *req, store_done_cb done, void *data);
void st_update_item(store_t *s, json_t *req, store_done_cb done, void *data);
void st_get_item(store_t *s, json_t *req, st_answer_t *a);
void st_batch_get_item(store_t *s, json_t *req, st_answer_t *a); /* batch.c */
void st_batch_write_item(store_t *s, json_t *req, store_done_cb done, void *data);
void st_transact_get_items(store_t *s, json_t *req, st_answer_t *a); /* transact.c */
void st_transact_write_items(store_t *s, json_t *req, store_done_cb done, void *data);
void st_query(store_t *s, json_t *req, st_answer_t *a); /* query.c */
void st_scan(store_t *s, json_t *req, st_answer_t *a);
/* Item helpers (item.c) the batch operations share; each answers on an error and returns -1 (0 on success).
 * st_open_table: table's schema and database (ResourceNotFoundException when missing; sc is then freed).
 * st_item_key: the LMDB key (into buf, 512 bytes) of an item (from_item: a PutItem Item, which holds the key among
 * other attributes) or of a Key (exactly the key attributes, else "The provided key element does not match the
 * schema"). st_load_item: the stored item at k (a new object) or NULL, expired or not (see st_visible), and its ETag
 * when etag is not NULL (0: none). */
int st_open_table(store_t *s, MDB_txn *txn, const char *table, st_schema_t *sc, MDB_dbi *dbi, st_answer_t *a);
int st_item_key(store_t *s, const st_schema_t *sc, const json_t *obj, int from_item, uint8_t *buf, size_t cap, MDB_val *out,
                st_answer_t *a);
int st_load_item(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, json_t **out, uint64_t *etag, st_answer_t *a);

/* ---- writes and their side effects (write.c) ---- */

/* A 64-bit hash of bytes (FNV-1a's steps and prime with an offset basis of its own, 1469598103934665603, not FNV's
 * 14695981039346656037). The handle map and Scan segments hash with it, and an item's ETag is its stored text's (so
 * changing it changes every ETag clients hold, and the segment of every item). */
uint64_t st_hash64(const void *text, size_t len);
/* The ETag of an item: the hash of its stored text (a new version changes it). */
static inline uint64_t st_etag(const void *stored, size_t len)
{
    return st_hash64(stored, len);
}
/* Whether a stored item is expired by the table's TTL (then every operation treats it as absent). */
int st_expired(const st_schema_t *sc, const json_t *item, int64_t now);
/* The item as operations see it: stored, or NULL when it is expired. */
static inline const json_t *st_visible(const st_schema_t *sc, const json_t *stored)
{
    return stored != NULL && sc->ttl != NULL && st_expired(sc, stored, (int64_t)time(NULL)) ? NULL : stored;
}
/*
 * Every item write goes through here (in the job's nested transaction): replaces the stored item `old` (NULL: none,
 * expired or not) at key k of table sc (opened by st_open_table) by `item` (NULL: deletes it), and keeps in step what
 * depends on it: the table's counters, its secondary indexes (an index key of the wrong type is a ValidationException,
 * checked before anything is written) and its TTL database. *etag (when not NULL) gets the new item's ETag (0 after a
 * delete). 0, or -1 answered.
 */
int st_item_write(store_t *s, MDB_txn *txn, const st_schema_t *sc, MDB_val *k, const json_t *old, const json_t *item,
                  uint64_t *etag, st_answer_t *a);
/* The index key of item in index ix (into buf, 512 bytes): its length, 0 when the item is not in the index, or -1
 * having answered (a key attribute of the wrong type or too long). */
int st_index_key(const st_index_t *ix, const json_t *item, uint8_t *buf, size_t cap, st_answer_t *a);
/* Fills index ix (or, ix NULL, the TTL database) of table sc from its items, after emptying it. 0 or an LMDB error. */
int st_backfill(MDB_txn *txn, const st_schema_t *sc, const st_index_t *ix);
/* Removes the expired items of every table with TTL, at most `max` (the writer, in its own batch). */
int st_ttl_reap(store_t *s, MDB_txn *txn, size_t max);

/* Opens handles of every table in meta (at store_open, before any reader). On failure, the table's name is in bad
 * (badlen bytes, NUL-terminated). */
int st_tables_open_all(store_t *s, MDB_txn *txn, char *bad, size_t badlen);
/* Empties table `name`'s databases (its own, its indexes', its TTL's), keeping their handles. 0 or an LMDB error. */
int st_drop_table_dbs(store_t *s, MDB_txn *txn, const char *name, const st_schema_t *sc);
int st_map_put(store_t *s, const char *name, MDB_dbi dbi);

#endif
