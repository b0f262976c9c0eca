/*
 * store/legacy.h (internal to store/): DynamoDB's legacy (non-expression) request parameters, which the AWS SDKs still
 * send, rewritten into expression parameters before an operation sees the request:
 *
 *   Expected + ConditionalOperator        -> ConditionExpression   (PutItem, UpdateItem, DeleteItem)
 *   AttributeUpdates (PUT, ADD, DELETE)    -> UpdateExpression      (UpdateItem)
 *   AttributesToGet                        -> ProjectionExpression  (GetItem, Query, Scan, BatchGetItem's tables)
 *   KeyConditions                          -> KeyConditionExpression (Query)
 *   QueryFilter / ScanFilter + ConditionalOperator -> FilterExpression (Query, Scan)
 *
 * with generated placeholders ("#l0", ":l0") in ExpressionAttributeNames / ExpressionAttributeValues. The operations
 * then parse and evaluate the expressions as usual: only the request checks that belong to the legacy parameters
 * (their shapes, enums, value counts and types, mixing them with expressions, ConditionalOperator's use) are made
 * here, in DynamoDB's words.
 */
#ifndef EDGEPROXY_STORE_LEGACY_H
#define EDGEPROXY_STORE_LEGACY_H

#include <jansson.h>
#include "store/internal.h"

/*
 * Rewrites the legacy members of operation op's request req (a parsed JSON object, changed in place; the caller keeps
 * its reference and ownership) into expression members, then deletes them. Legacy members the operation does not take
 * are deleted too (DynamoDB ignores unknown members). Returns 0 when req is ready for the operation: rewritten, left as
 * it was (no legacy member; or a TableName the operation rejects first, as DynamoDB does), or -1 having answered a
 * (a SerializationException or a ValidationException). Operations without legacy parameters return 0 at once.
 */
int st_legacy_rewrite(const char *op, json_t *req, st_answer_t *a);

#endif
