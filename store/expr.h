/*
 * store/expr.h (internal to store/): DynamoDB expressions, parsed to an AST. No evaluation here.
 *
 * Five kinds share one lexer and one path syntax: ConditionExpression, FilterExpression and KeyConditionExpression
 * (the condition grammar), ProjectionExpression (paths separated by commas) and UpdateExpression (SET, REMOVE, ADD,
 * DELETE clauses). store_expr_parse() resolves #name and :value placeholders through the caller's lookups, runs the
 * static checks DynamoDB runs before it touches an item, and reports the first problem with DynamoDB's wording, e.g.
 *
 *     Invalid ConditionExpression: Syntax error; token: "x", near: "a x b"
 *     Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths;
 *         path one: [a], path two: [a, b]
 *
 * (without the "1 validation error detected: " envelope some DynamoDB endpoints add: the caller's business).
 *
 * Grammar (keywords are case-insensitive, function names case-sensitive, whitespace is space, tab, CR, LF):
 *
 *     condition := condition OR condition | condition AND condition | NOT condition | ( condition )
 *                | operand comparator operand                       comparator: = <> < <= > >=
 *                | operand BETWEEN operand AND operand
 *                | operand IN ( operand {, operand} )               at most 100 operands after IN
 *                | attribute_exists(path) | attribute_not_exists(path) | attribute_type(path, :type)
 *                | begins_with(operand, operand) | contains(operand, operand)
 *     operand   := path | :value | size(operand) | ( operand )
 *     update    := clause {clause}, each of SET, REMOVE, ADD, DELETE at most once, in any order
 *                  SET path = value {, path = value}      value := operand | operand + operand | operand - operand
 *                                                          operand := path | :value | if_not_exists(path, operand)
 *                                                                   | list_append(operand, operand) | ( operand )
 *                  REMOVE path {, path}     ADD path :value {, path :value}     DELETE path :value {, path :value}
 *     projection:= path {, path}
 *     path      := name { . name | [ digits ] }         name := [A-Za-z][A-Za-z0-9_]* | #[A-Za-z0-9_]+
 *
 * Precedence: comparators, BETWEEN and IN bind tightest, then NOT, then AND, then OR; AND and OR associate to the left
 * and build binary nodes ("a AND b AND c" is AND(AND(a, b), c)).
 *
 * Checks, in DynamoDB's order of report (a syntax error, an over-long expression and too many operators win over all;
 * then, for conditions: redundant parentheses, unknown function, misused function, reserved word, then the first of
 * [undefined placeholder, operand count, operands not distinct, operand types, IN with over 100 operands] in the
 * order written; for updates: reserved word, unknown function, a clause used twice, undefined #name, undefined
 * :value, overlapping paths, conflicting paths, ADD/DELETE operand type, function checks; for projections: reserved
 * word, undefined #name, overlapping paths, conflicting paths). Type checks on :values (begins_with, attribute_type,
 * size, ordering comparators, BETWEEN, +, -, list_append, ADD, DELETE) run only when the caller gives value_type.
 *
 * Not checked here (the evaluator's, or the caller's, with their values at hand): BETWEEN bounds of different types or
 * in the wrong order, the 255-byte limit of a placeholder's name (checked where ExpressionAttributeNames/Values keys
 * are validated), unused placeholders across a request (see the lookups below), document paths deeper than DynamoDB's
 * 32 levels (no item can have them: a condition simply does not match, an update fails on the item).
 *
 * Memory. Every node, path and array of the AST, and the text of semantic error messages while parsing, comes from
 * env->alloc; the parser never frees anything and keeps no global state (re-entrant, thread-safe with distinct envs).
 * Give it an arena (h2o's request pool, say) and drop the arena when done with the AST. The AST borrows: a path
 * element's name points either into src (a literal name) or at the bytes env->name returned (a #name): both must stay
 * valid, unchanged, as long as the AST is used. A failed parse may have allocated; the arena owns it.
 *
 * Stack. The parser recurses once per level of parentheses or function call, and the 4 KB limit bounds the levels:
 * the deepest 4 KB input takes about 1.2 MB of stack in an optimized build (about 2 MB under ASan), well within the
 * 8 MB of Linux threads. An ordinary expression takes a few KB.
 */
#ifndef EDGEPROXY_STORE_EXPR_H
#define EDGEPROXY_STORE_EXPR_H

#include <stddef.h>
#include <stdint.h>

#define STORE_EXPR_MAX_SIZE 4096       /* bytes of an expression, as sent (placeholders not substituted) */
#define STORE_EXPR_MAX_OPERATORS 300   /* comparators, BETWEEN, IN, AND, OR, NOT; in updates +, - and functions */
#define STORE_EXPR_MAX_IN_OPERANDS 100 /* operands after IN */
#define STORE_EXPR_ERR_MAX 1024        /* a good size for err buffers: longer messages are truncated to fit */

enum {
    STORE_EXPR_EINVALID = -33100, /* a ValidationException: err holds DynamoDB's message */
    STORE_EXPR_ENOMEM = -33101,   /* env->alloc returned NULL */
};

typedef enum store_expr_kind {
    STORE_EXPR_CONDITION,     /* ConditionExpression */
    STORE_EXPR_FILTER,        /* FilterExpression */
    STORE_EXPR_KEY_CONDITION, /* KeyConditionExpression: then check its shape with store_expr_key_condition() */
    STORE_EXPR_PROJECTION,    /* ProjectionExpression */
    STORE_EXPR_UPDATE,        /* UpdateExpression */
} store_expr_kind_t;

/* The type of an expression attribute value, as the caller knows it (for the static type checks). */
typedef enum store_expr_vtype {
    STORE_EXPR_VT_UNKNOWN = 0,
    STORE_EXPR_VT_S,
    STORE_EXPR_VT_N,
    STORE_EXPR_VT_B,
    STORE_EXPR_VT_BOOL,
    STORE_EXPR_VT_NULL,
    STORE_EXPR_VT_SS,
    STORE_EXPR_VT_NS,
    STORE_EXPR_VT_BS,
    STORE_EXPR_VT_L,
    STORE_EXPR_VT_M,
} store_expr_vtype_t;

/* One step of a document path: a map key (name != NULL) or a list index (name == NULL). */
typedef struct store_expr_elem {
    const char *name; /* borrowed (see Memory above); not NUL-terminated; may hold any bytes, dots included */
    size_t len;       /* bytes of name */
    uint32_t index;   /* when name == NULL: the list index, 0 ... 2^31 - 1 */
} store_expr_elem_t;

typedef struct store_expr_path {
    const store_expr_elem_t *elems; /* elems[0] is always a name */
    size_t n;                       /* >= 1 */
} store_expr_path_t;

typedef enum store_expr_op {
    /* operands */
    STORE_EXPR_PATH = 1,      /* path */
    STORE_EXPR_VALUE,         /* value: the caller's index of the :value */
    STORE_EXPR_SIZE,          /* size(args[0]) */
    STORE_EXPR_IF_NOT_EXISTS, /* if_not_exists(args[0], args[1]); args[0] is a PATH (updates only) */
    STORE_EXPR_LIST_APPEND,   /* list_append(args[0], args[1]) (updates only) */
    STORE_EXPR_PLUS,          /* args[0] + args[1] (SET values only) */
    STORE_EXPR_MINUS,         /* args[0] - args[1] (SET values only) */
    /* conditions */
    STORE_EXPR_EQ, /* args[0] = args[1] */
    STORE_EXPR_NE, /* <> */
    STORE_EXPR_LT,
    STORE_EXPR_LE,
    STORE_EXPR_GT,
    STORE_EXPR_GE,
    STORE_EXPR_BETWEEN, /* args[0] BETWEEN args[1] AND args[2] */
    STORE_EXPR_IN,      /* args[0] IN (args[1], ..., args[nargs - 1]) */
    STORE_EXPR_AND,     /* args[0] AND args[1] */
    STORE_EXPR_OR,
    STORE_EXPR_NOT,                  /* NOT args[0] */
    STORE_EXPR_ATTRIBUTE_EXISTS,     /* args[0] is a PATH */
    STORE_EXPR_ATTRIBUTE_NOT_EXISTS, /* args[0] is a PATH */
    STORE_EXPR_ATTRIBUTE_TYPE,       /* args[0] is a PATH, args[1] the type (a VALUE, an S naming a type) */
    STORE_EXPR_BEGINS_WITH,          /* begins_with(args[0], args[1]) */
    STORE_EXPR_CONTAINS,             /* contains(args[0], args[1]) */
} store_expr_op_t;

typedef struct store_expr_node store_expr_node_t;
struct store_expr_node {
    store_expr_op_t op;
    uint32_t nargs;                 /* 0 for PATH and VALUE */
    store_expr_node_t *const *args; /* nargs children */
    store_expr_path_t path;         /* PATH */
    size_t value;                   /* VALUE */
};

typedef enum store_expr_action_kind {
    STORE_EXPR_SET,
    STORE_EXPR_REMOVE,
    STORE_EXPR_ADD,
    STORE_EXPR_DELETE,
} store_expr_action_kind_t;

typedef struct store_expr_action {
    store_expr_action_kind_t kind;
    store_expr_path_t path;         /* the target */
    const store_expr_node_t *value; /* SET: the operand tree; ADD, DELETE: a VALUE node; REMOVE: NULL */
} store_expr_action_t;

/* A parsed expression. Which fields are set depends on kind. */
typedef struct store_expr {
    store_expr_kind_t kind;
    const store_expr_node_t *cond;  /* CONDITION, FILTER, KEY_CONDITION: the root condition */
    const store_expr_path_t *paths; /* PROJECTION: in the order written */
    size_t npaths;
    const store_expr_action_t *actions; /* UPDATE: in the order written (no two actions' paths overlap) */
    size_t nactions;
} store_expr_t;

/*
 * What the parser needs from the caller. Lookups get the placeholder as written ("#a", ":v", len bytes, not
 * NUL-terminated) and return 0 when it is defined, non-zero when it is not; each 0 return is a use, so a caller that
 * records them can then raise "Value provided in ExpressionAttributeNames unused in expressions: keys: {#a}" (and the
 * ExpressionAttributeValues one) once all of a request's expressions parsed. A lookup may be called more than once for
 * one placeholder. A NULL lookup means no placeholder of that sort is defined.
 */
typedef struct store_expr_env {
    void *(*alloc)(size_t size, void *ud); /* required; aligned as malloc's; NULL fails the parse (ENOMEM) */
    /* #name: sets *out and *outlen to the attribute name it stands for (borrowed, see Memory). */
    int (*name)(void *ud, const char *ph, size_t len, const char **out, size_t *outlen);
    /* :value: sets *index to the caller's index for the value (the AST's VALUE nodes carry it). */
    int (*value)(void *ud, const char *ph, size_t len, size_t *index);
    /* optional: the type of the value at index; without it no type check is made on values */
    store_expr_vtype_t (*value_type)(void *ud, size_t index);
    /* optional: the bytes of an S value (for attribute_type's "Invalid attribute type name found"); 0 when it is one */
    int (*value_s)(void *ud, size_t index, const char **s, size_t *len);
    void *ud; /* passed to all of the above */
} store_expr_env_t;

/*
 * Parses src[0..len) as an expression of the given kind. Returns 0 and fills *out, or STORE_EXPR_EINVALID with
 * DynamoDB's message in err ("Invalid <kind>: ...", NUL-terminated, truncated to errsize) and *out zeroed, or
 * STORE_EXPR_ENOMEM. err may be NULL when errsize is 0.
 */
int store_expr_parse(store_expr_kind_t kind, const char *src, size_t len, const store_expr_env_t *env, store_expr_t *out, char *err,
                     size_t errsize);

/* The shape DynamoDB allows a KeyConditionExpression: pk = :v [AND sk (= < <= > >=) :v | BETWEEN :a AND :b |
 * begins_with(sk, :v)], in either order, the value first or last ("sk > :v" and ":v < sk" are both GT). */
typedef struct store_expr_keycond {
    size_t pk_value;       /* the index of the partition key's value */
    store_expr_op_t sk_op; /* 0 when there is no sort key condition; EQ, LT, LE, GT, GE, BETWEEN or BEGINS_WITH */
    size_t sk_values[2];   /* the sort key condition's value indexes ([1]: BETWEEN's upper bound) */
} store_expr_keycond_t;

/*
 * Checks a parsed KeyConditionExpression against the key schema: the partition key's name, and the sort key's
 * (sk NULL for a table or index without one). Returns 0 and fills *out, or STORE_EXPR_EINVALID with DynamoDB's message
 * in err ("Query condition missed key schema element: pk", "Invalid operator used in KeyConditionExpression: OR",
 * "Query key condition not supported", ...). Checking the values' types against the schema is the caller's.
 */
int store_expr_key_condition(const store_expr_t *expr, const char *pk, size_t pklen, const char *sk, size_t sklen,
                             store_expr_keycond_t *out, char *err, size_t errsize);

/* 1 when word[0..len) is one of DynamoDB's 573 reserved words (case-insensitive). */
int store_expr_is_reserved(const char *word, size_t len);

/* "ConditionExpression", "FilterExpression", ... */
const char *store_expr_kind_name(store_expr_kind_t kind);

/*
 * A debug and test rendering, snprintf-like (returns the length it needed): conditions as s-expressions,
 * "(AND (= a :v0) (begins_with b.c[1] :v1))", values as :v<index>, names that are not plain identifiers in double
 * quotes; updates as "(SET a (+ a :v0)) (REMOVE b)"; projections as "a, b.c".
 */
size_t store_expr_format(const store_expr_t *expr, char *buf, size_t size);

#endif
