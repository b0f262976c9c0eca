/*
 * store/capacity.c: ConsumedCapacity, when a request asks for it (ReturnConsumedCapacity TOTAL or INDEXES). Nothing is
 * provisioned nor throttled here, but clients log and test these numbers, so they are computed as DynamoDB documents
 * them, from the sizes the request and its answer show:
 *   - reads: one unit per 4 KB read (rounded up, at least 1), half for eventually consistent reads; Query and Scan
 *     count every item they read, before the filter, as DynamoDB does (the size they report in ST_READ_BYTES);
 *   - writes: one unit per 1 KB written (rounded up, at least 1): PutItem's item; UpdateItem and DeleteItem count 1
 *     (the item's size is not in their request);
 *   - transactions: twice that.
 * The answer gets "ConsumedCapacity" (an object; a list of one per table for the batch and transaction operations),
 * with "Table" too for INDEXES. The wrapping costs nothing unless asked: st_capacity_wrap changes nothing then.
 */
#include <stdlib.h>
#include <string.h>
#include "store/internal.h"

typedef struct capacity {
    store_done_cb done;
    void *data;
    char op[32];
    json_t *req; /* owned */
    int indexes;
} capacity_t;

static double read_units(size_t bytes, int consistent)
{
    double u = (double)((bytes + 4095) / 4096);
    return (u < 1 ? 1 : u) * (consistent ? 1 : 0.5);
}

static double write_units(size_t bytes)
{
    double u = (double)((bytes + 1023) / 1024);
    return u < 1 ? 1 : u;
}

static size_t items_size(const json_t *items)
{
    size_t n = 0, i;
    json_t *it;
    json_array_foreach(items, i, it) n += store_item_size(it);
    return n;
}

/* {"TableName", "CapacityUnits", "ReadCapacityUnits" | "WriteCapacityUnits"[, "Table"]} */
static json_t *entry(const char *table, double units, int write, int indexes)
{
    json_t *o = json_pack("{s:s, s:f, s:f}", "TableName", table, "CapacityUnits", units,
                          write ? "WriteCapacityUnits" : "ReadCapacityUnits", units);
    if (o != NULL && indexes)
        json_object_set_new(
            o, "Table", json_pack("{s:f, s:f}", "CapacityUnits", units, write ? "WriteCapacityUnits" : "ReadCapacityUnits", units));
    return o;
}

/* Adds units to table's entry in the per-table map m ({table: units}). */
static void add(json_t *m, const char *table, double units)
{
    if (table != NULL)
        json_object_set_new(m, table, json_real(json_real_value(json_object_get(m, table)) + units));
}

/* The ConsumedCapacity of a 200 answer (a new value), or NULL. */
static json_t *consumed(const capacity_t *c, json_t *ans)
{
    const json_t *req = c->req;
    const char *op = c->op, *table = json_string_value(json_object_get(req, "TableName"));
    int consistent = json_is_true(json_object_get(req, "ConsistentRead"));
    json_t *per = json_object(), *out = NULL, *v;
    const char *k;
    int write = 0, list = 1;
    size_t i;

    if (!strcmp(op, "GetItem") || !strcmp(op, "Query") || !strcmp(op, "Scan")) {
        json_t *items = json_object_get(ans, "Items"), *read = json_object_get(ans, ST_READ_BYTES);
        size_t bytes = json_is_integer(read) ? (size_t)json_integer_value(read)
                       : items != NULL       ? items_size(items)
                                             : store_item_size(json_object_get(ans, "Item"));
        add(per, table, read_units(bytes, consistent));
        list = 0;
    } else if (!strcmp(op, "PutItem") || !strcmp(op, "UpdateItem") || !strcmp(op, "DeleteItem")) {
        add(per, table, !strcmp(op, "PutItem") ? write_units(store_item_size(json_object_get(req, "Item"))) : 1);
        write = 1, list = 0;
    } else if (!strcmp(op, "BatchGetItem")) {
        json_object_foreach(json_object_get(ans, "Responses"), k, v)
        {
            int cons = json_is_true(json_object_get(json_object_get(json_object_get(req, "RequestItems"), k), "ConsistentRead"));
            json_t *it;
            json_array_foreach(v, i, it) add(per, k, read_units(store_item_size(it), cons));
        }
    } else if (!strcmp(op, "BatchWriteItem")) {
        write = 1;
        json_object_foreach(json_object_get(req, "RequestItems"), k, v)
        {
            json_t *r;
            json_array_foreach(v, i, r)
            {
                json_t *item = json_object_get(json_object_get(r, "PutRequest"), "Item");
                add(per, k, item != NULL ? write_units(store_item_size(item)) : 1);
            }
        }
    } else if (!strcmp(op, "TransactWriteItems") || !strcmp(op, "TransactGetItems")) {
        write = op[8] == 'W';
        json_t *acts = json_object_get(req, "TransactItems"), *a, *resp = json_object_get(ans, "Responses");
        json_array_foreach(acts, i, a)
        {
            const char *kind;
            json_t *body;
            json_object_foreach(a, kind, body)
            {
                const char *t = json_string_value(json_object_get(body, "TableName"));
                json_t *item = json_object_get(body, "Item");
                double u = write ? (item != NULL ? write_units(store_item_size(item)) : 1)
                                 : read_units(store_item_size(json_object_get(json_array_get(resp, i), "Item")), 1);
                add(per, t, 2 * u);
            }
        }
    } else {
        json_decref(per);
        return NULL;
    }
    if (list) {
        out = json_array();
        json_object_foreach(per, k, v) json_array_append_new(out, entry(k, json_real_value(v), write, c->indexes));
    } else if (table != NULL) {
        out = entry(table, json_real_value(json_object_get(per, table)), write, c->indexes);
    }
    json_decref(per);
    return out;
}

static void on_done(void *data, int status, char *body, size_t len)
{
    capacity_t *c = data;
    json_t *ans = status == 200 ? json_loadb(body, len, 0, NULL) : NULL, *cc = ans != NULL ? consumed(c, ans) : NULL;
    char *text;

    if (ans != NULL)
        json_object_del(ans, ST_READ_BYTES); /* ours: never sent */
    if (cc != NULL && json_object_set_new(ans, "ConsumedCapacity", cc) == 0 && (text = json_dumps(ans, JSON_COMPACT)) != NULL) {
        free(body);
        body = text;
        len = strlen(text);
    }
    json_decref(ans);
    c->done(c->data, status, body, len);
    json_decref(c->req);
    free(c);
}

int st_capacity_asked(const json_t *req)
{
    const char *rcc = json_string_value(json_object_get(req, "ReturnConsumedCapacity"));
    return rcc != NULL && (strcmp(rcc, "TOTAL") == 0 || strcmp(rcc, "INDEXES") == 0);
}

int st_capacity_wrap(const char *op, json_t *req, store_done_cb *done, void **data)
{
    const char *rcc = json_string_value(json_object_get(req, "ReturnConsumedCapacity"));
    capacity_t *c;

    if (!st_capacity_asked(req) || strlen(op) >= sizeof(c->op) || (c = calloc(1, sizeof(*c))) == NULL)
        return 0;
    c->done = *done, c->data = *data;
    strcpy(c->op, op);
    c->req = json_incref(req);
    c->indexes = strcmp(rcc, "INDEXES") == 0;
    *done = on_done, *data = c;
    return 1;
}
