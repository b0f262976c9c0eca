/*
 * store: the item store, DynamoDB-compatible tables on LMDB (issue 6). No h2o types: the proxy hands over requests as
 * DynamoDB JSON and gets DynamoDB JSON back, whichever way they came in (the DynamoDB wire protocol, the REST origin,
 * Lua's edge.store).
 *
 * Model (store/README.md):
 *   - one LMDB environment (a directory), opened with MDB_NOTLS so read transactions can run on any thread;
 *   - a `meta` database (table name -> the table's description: key schema, attribute definitions, indexes, TTL,
 *     counters) and one database per table (key: store_key_encode_pair of the item's key; value: the item's checked,
 *     normalized JSON text);
 *   - reads (GetItem, Query, Scan, BatchGetItem, TransactGetItems, DescribeTable, ListTables, DescribeTimeToLive,
 *     ListTagsOfResource) run
 *     on the caller's thread in a read-only transaction, at once: they never wait for writes;
 *   - writes go to the store's writer thread, which takes every request queued, runs each in its own nested
 *     transaction (a failed condition aborts that request alone), commits the batch once, synchronously to disk
 *     (group commit), and only then calls each request's callback: an acknowledged write is on disk.
 *
 * Besides DynamoDB's members, the item operations take three of edgeproxy's own, for the REST origin's versions:
 *   - "EdgeETag": true on GetItem, PutItem, UpdateItem: the answer has "ETag": 16 lowercase hex digits, a 64-bit hash
 *     of the item's stored text (read or written; absent when there is no item), which changes with it; DeleteItem
 *     takes the member and answers none (no item is left);
 *   - "EdgeIfMatch": "<16 hex>" on PutItem, UpdateItem, DeleteItem: ConditionalCheckFailedException unless the item
 *     exists with that ETag; "EdgeIfNoneMatch": "*": ConditionalCheckFailedException if the item exists. Both are
 *     checked in the write's transaction, with any ConditionExpression.
 * An item whose TTL has passed is absent for every operation (see README.md); the writer thread reaps such items.
 *
 * Ownership: store_open copies the path and the rules. A request's text is copied before store_call returns. The
 * answer passed to the callback is malloc'ed and becomes the callee's (free it).
 */
#ifndef EDGEPROXY_STORE_H
#define EDGEPROXY_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct store store_t;

/*
 * Schema validation (the Dynamoose idea, on the server): rules on a table's top-level attributes, checked on every
 * write of an item (PutItem, the item an UpdateItem makes, BatchWriteItem, TransactWriteItems; the REST origin and Lua
 * go through them). A write that breaks a rule gets a ValidationException naming the attribute, and writes nothing.
 */
typedef struct store_attr_rule {
    const char *name;            /* the attribute */
    const char *type;            /* "S", "N", "B", "BOOL", "NULL", "L", "M", "SS", "NS", "BS"; NULL: any */
    int required;                /* must be present */
    const char *min, *max;       /* N: inclusive bounds, as decimal text; NULL: none */
    long min_length, max_length; /* S: characters, B: bytes, L, M, SS, NS, BS: elements; -1: none */
    const char *const *enums;    /* S or N: the values allowed (N compared as numbers); NULL: any */
    size_t nenums;
    const char *pattern; /* S: a POSIX extended regular expression that must match (unanchored: use ^ and $) */
} store_attr_rule_t;

typedef struct store_table_rules {
    const char *table;
    const store_attr_rule_t *attrs;
    size_t nattrs;
} store_table_rules_t;

typedef struct store_options {
    const char *dir;                  /* the environment's directory (made if missing) */
    uint64_t map_size;                /* LMDB map size in bytes; 0: 1 GiB */
    const store_table_rules_t *rules; /* validation rules per table (copied by store_open); NULL: none */
    size_t nrules;
} store_options_t;

/* Checks validation rules as store_open would (a bad pattern, number or type): 0, or -1 with a message in err naming
 * the table and attribute. */
int store_rules_check(const store_table_rules_t *rules, size_t nrules, char *err, size_t errlen);

/* Opens (or creates) the environment and starts the writer thread. 0, or -1 with a message in err. */
int store_open(store_t **out, const store_options_t *opts, char *err, size_t errlen);
/* Waits for queued writes to be committed and answered, stops the writer and closes the environment. NULL is fine. */
void store_close(store_t *s);

/*
 * The answer to one request: status is the HTTP status DynamoDB would send (200, 400 for client errors, 500 for
 * internal ones); body the JSON text (malloc'ed, NUL-terminated; the callee frees it): the operation's output, or for
 * an error {"__type": "...", "message": "..."} with DynamoDB's __type (e.g.
 * "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException", "com.amazon.coral.validate#ValidationException").
 */
typedef void (*store_done_cb)(void *data, int status, char *body, size_t len);

/*
 * Runs one DynamoDB operation: op is the name after "DynamoDB_20120810." ("PutItem", ...), body its JSON request.
 * Reads call done before store_call returns, on the caller's thread. Writes call done later, ON THE WRITER THREAD,
 * after their commit; bridge to an event loop with a message. A write refused by its checks (or queued while the store
 * closes) is answered at once, on the caller's thread: the callback must tell the two apart. An unknown operation answers 400
 * com.amazon.coral.service#UnknownOperationException; a body that is not a JSON object answers 400
 * com.amazon.coral.service#SerializationException.
 */
void store_call(store_t *s, const char *op, const char *body, size_t len, store_done_cb done, void *data);

/* Blocks until everything queued before the call is committed and answered (tests, shutdown). */
void store_flush(store_t *s);

#endif
