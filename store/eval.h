/*
 * store/eval.h (internal to store/): evaluating parsed expressions (store/expr.h) on items (store/value.h).
 *
 * Three jobs: conditions (ConditionExpression, FilterExpression, and KeyConditionExpression when a caller wants one
 * tested on an item), projections (ProjectionExpression, and UPDATED_OLD / UPDATED_NEW), and updates
 * (UpdateExpression). The semantics are DynamoDB's, as its own answers show them (ScyllaDB's Alternator tests and
 * dynalite's, both run against DynamoDB, and AWS's documentation); where dynalite differs from DynamoDB, DynamoDB's
 * behaviour is the one here.
 *
 * Conditions, in short:
 *   - a path that does not resolve (missing attribute, a name into a non-map, an index into a non-list or beyond its
 *     end) is "no value"; size() of a value that has no size (N, BOOL, NULL) from the item is "no value" too;
 *   - = is true when both sides have a value and are equal (store_value_equal: N numerically, sets in any order);
 *     <> is its negation: true when either side has no value (so "q <> z" with both missing is true, "q = z" false);
 *   - < <= > >= and BETWEEN (inclusive) are true only when all sides have values of one type S, N or B (S bytewise,
 *     N numerically, B bytewise on the decoded bytes); other types or mixed types are simply false;
 *   - IN is true when the first operand has a value equal to one of the others (they may be of different types);
 *   - begins_with(a, b): both S or both B, a starts with b; contains(a, b): a S and b S (substring), a B and b B
 *     (byte subsequence), a a set and b a member of its type (NS numerically), a L with an element equal to b;
 *   - attribute_exists / attribute_not_exists on a path; attribute_type(a, :t) is true when a has a value of type :t;
 *   - size(): S counts UTF-16 code units as DynamoDB does (a 4-byte UTF-8 character counts 2, others 1: size of
 *     "é𝄞" is 3), B its decoded bytes, SS / NS / BS / L elements, M members;
 *   - AND, OR and NOT as usual (AND and OR short-circuit).
 * What DynamoDB rejects rather than evaluates false is a problem of the request's values, never of the item: a
 * :value of a type an operator does not take (< <= > >= BETWEEN: S, N, B; begins_with: S, B; size: not N, BOOL,
 * NULL; attribute_type's type: an S naming a type), and BETWEEN with two :value bounds of different types or in the
 * wrong order. store_expr_parse() makes the type checks when given value_type; store_eval_check() makes all of them
 * (call it once per request, before any item is read, so that the error does not depend on the items: a Scan over an
 * empty table still fails). store_eval_condition() repeats them on the nodes it evaluates, but a branch that AND or
 * OR skips is not evaluated, so only store_eval_check() guarantees the error whatever the item.
 *
 * Updates, in short: every action's operands are read from the item as it was before the update ("SET a = :v, b = a"
 * copies the old a), list indexes name the elements of the lists as they were before the update ("REMOVE a[1], a[3]"
 * removes the second and the fourth; "REMOVE a[1] SET a[3] = :v" replaces the old fourth), SET (and ADD) of an index
 * beyond a list's end appends, several appends in index order. Paths of one update never overlap (the parser's
 * check), so the order of actions does not matter. Every runtime error is found before anything changes: an update
 * that fails leaves the item as it was. Runtime errors (bare messages, no "Invalid UpdateExpression: " prefix, as
 * DynamoDB sends them):
 *   "The provided expression refers to an attribute that does not exist in the item"   (a SET operand's path)
 *   "An operand in the update expression has an incorrect data type"   (+ - on a non-N, list_append on a non-L, ADD
 *       or DELETE on an attribute of another type than the value's)
 *   "The document path provided in the update expression is invalid for update"   (a nested target whose parent is
 *       missing or of the wrong kind: SET a.b when a is missing or not a map, SET a[0] when a is not a list)
 *   "Number overflow. Attempting to store a number with magnitude larger than supported range" (and the underflow
 *       one) for + - and ADD on numbers (a result needing more than 38 digits is reported as the overflow, as DynamoDB
 *       does: see store/decimal.h).
 * REMOVE of a missing attribute or element is a no-op; REMOVE of a nested path whose parent is missing is an error,
 * except on an item that did not exist, where DynamoDB ignores it. DELETE of a missing attribute is a no-op; a set
 * emptied by DELETE is removed. ADD of a number or set to a missing attribute creates it. Not checked here: updates to
 * key attributes ("Cannot update attribute pk. This attribute is part of the key"), index key types and the item size
 * (store_item_check on the result): the caller's.
 *
 * Values and items. values[i] is the AttributeValue a VALUE node with index i stands for (the caller's index, as its
 * store_expr_env_t value lookup gave it); items are objects of name -> AttributeValue. Both must have passed
 * store_value_check / store_item_check (normalized, well-formed): nothing here re-validates them.
 *
 * Ownership: no function here takes or drops a reference to the caller's values, items or expressions, except the
 * update, which modifies its item in place (values it puts there are copies: the item never shares a json_t with
 * values[] or with another part of itself). Projections (store_eval_project, updated_old, updated_new) share the
 * projected values with the item they come from (new references, not copies): serialize them, or drop them, before
 * changing that item again. Nothing is kept between calls; no global state (thread-safe with distinct arguments).
 * Error messages go into the caller's buffer (err, errlen; err may be NULL when errlen is 0), NUL-terminated,
 * truncated to fit (STORE_EXPR_ERR_MAX bytes hold any of them).
 *
 * Stack: evaluation recurses once per level of the AST and of the values' nesting (at most STORE_DEPTH_MAX), a few
 * hundred bytes a level: far less than the parser's own recursion over the same expression.
 */
#ifndef EDGEPROXY_STORE_EVAL_H
#define EDGEPROXY_STORE_EVAL_H

#include <stddef.h>
#include <jansson.h>
#include "store/expr.h"

enum {
    STORE_EVAL_EINVALID = -33200, /* a ValidationException: err holds DynamoDB's message */
    STORE_EVAL_ENOMEM = -33201,   /* an allocation failed ("out of memory" in err) */
};

/*
 * The checks of the request's values that DynamoDB makes before reading any item (see above), for a CONDITION,
 * FILTER, KEY_CONDITION or UPDATE expression (a PROJECTION has none). Returns 0, or STORE_EVAL_EINVALID with the
 * message ("Invalid ConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to
 * lower bound; lower bound operand: AttributeValue: {N:5}, upper bound operand: AttributeValue: {N:4}", "Invalid
 * FilterExpression: The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand:
 * AttributeValue: {N:1}, upper bound operand: AttributeValue: {S:a}", "Invalid ConditionExpression: Invalid attribute
 * type name found; type: X, valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}", "Invalid UpdateExpression: Incorrect
 * operand type for operator or function; operator or function: +, operand type: S", ...), the first in the order the
 * expression is written.
 */
int store_eval_check(const store_expr_t *expr, json_t *const *values, char *err, size_t errlen);

/*
 * Evaluates a CONDITION, FILTER or KEY_CONDITION expression on item (NULL: there is no item, every path is missing:
 * a ConditionExpression on a PutItem of a new key, say). Returns 1 (true), 0 (false), STORE_EVAL_EINVALID (a problem
 * of the values, see store_eval_check; the message is prefixed "Invalid <kind>: " as DynamoDB does) or
 * STORE_EVAL_ENOMEM.
 */
int store_eval_condition(const store_expr_t *cond, const json_t *item, json_t *const *values, char *err, size_t errlen);

/*
 * The projection of item on a PROJECTION expression: a new object holding only the attributes its paths reach, nested
 * maps rebuilt around the projected members ("a.b, a.c" gives {"a": {"M": {"b": .., "c": ..}}}) and lists holding the
 * projected elements only, in index order ("a[3], a[1]" gives {"a": {"L": [a[1], a[3]]}}); paths that reach nothing
 * are left out (no empty map or list is made for them). item NULL gives an empty object. The projected values are
 * shared with item (see Ownership). Returns NULL only when out of memory.
 */
json_t *store_eval_project(const store_expr_t *projection, const json_t *item);

/*
 * Applies an UPDATE expression to item, in place. item is the current item (a copy the caller may modify), or, when
 * the item does not exist (existed == 0), what the new item starts as (its key, typically). values as above.
 * updated_old and updated_new (caller-owned objects, either may be NULL) receive, as ReturnValues UPDATED_OLD and
 * UPDATED_NEW want them, the projection of the update's target paths on the item before and after the update
 * (members are added to what the objects hold). DynamoDB returns only the updated part of a nested attribute: after
 * "SET a.c[1] = :v, a.b = :w" they hold {"a": {"M": {"b": .., "c": {"L": [..]}}}}; a removed attribute is not in
 * updated_new; a list element appended by SET a[100] is not in either (a[100] does not exist after the update
 * either), and REMOVE a[1] puts the element that moved into a[1] in updated_new, as DynamoDB does.
 * Returns 0, STORE_EVAL_EINVALID (message in err; item, updated_old and updated_new unchanged) or STORE_EVAL_ENOMEM
 * (item may then be partly updated: drop it).
 */
int store_eval_update(const store_expr_t *update, json_t *item, int existed, json_t *const *values, json_t *updated_old,
                      json_t *updated_new, char *err, size_t errlen);

#endif
