/*
 * store/expr.c: the DynamoDB expression parser (see expr.h). A hand-written recursive-descent parser over a lexer that
 * makes one token at a time (no token array: the "near" text of a syntax error needs only the previous token, the
 * current one and the next, which is lexed again on demand).
 *
 * Errors come in two sorts. A hard error (syntax, size, operator count, allocation) stops the parse at once and writes
 * err. A semantic error (reserved word, undefined placeholder, overlapping paths, ...) is recorded in the slot of its
 * rank, first one per slot, and the parse goes on: DynamoDB reports a syntax error anywhere before any semantic error,
 * and among semantic errors the one of the best rank (expr.h lists the ranks per kind).
 */
#include "store/expr.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- DynamoDB's reserved words (developer guide, "Reserved words in DynamoDB"), sorted for bsearch ---- */

/* clang-format off */
static const char *const reserved[] = {
    "ABORT", "ABSOLUTE", "ACTION", "ADD", "AFTER", "AGENT", "AGGREGATE", "ALL", "ALLOCATE", "ALTER", "ANALYZE", "AND", "ANY",
    "ARCHIVE", "ARE", "ARRAY", "AS", "ASC", "ASCII", "ASENSITIVE", "ASSERTION", "ASYMMETRIC", "AT", "ATOMIC", "ATTACH", "ATTRIBUTE",
    "AUTH", "AUTHORIZATION", "AUTHORIZE", "AUTO", "AVG",
    "BACK", "BACKUP", "BASE", "BATCH", "BEFORE", "BEGIN", "BETWEEN", "BIGINT", "BINARY", "BIT", "BLOB", "BLOCK", "BOOLEAN", "BOTH",
    "BREADTH", "BUCKET", "BULK", "BY", "BYTE",
    "CALL", "CALLED", "CALLING", "CAPACITY", "CASCADE", "CASCADED", "CASE", "CAST", "CATALOG", "CHAR", "CHARACTER", "CHECK",
    "CLASS", "CLOB", "CLOSE", "CLUSTER", "CLUSTERED", "CLUSTERING", "CLUSTERS", "COALESCE", "COLLATE", "COLLATION", "COLLECTION",
    "COLUMN", "COLUMNS", "COMBINE", "COMMENT", "COMMIT", "COMPACT", "COMPILE", "COMPRESS", "CONDITION", "CONFLICT", "CONNECT",
    "CONNECTION", "CONSISTENCY", "CONSISTENT", "CONSTRAINT", "CONSTRAINTS", "CONSTRUCTOR", "CONSUMED", "CONTINUE", "CONVERT",
    "COPY", "CORRESPONDING", "COUNT", "COUNTER", "CREATE", "CROSS", "CUBE", "CURRENT", "CURSOR", "CYCLE",
    "DATA", "DATABASE", "DATE", "DATETIME", "DAY", "DEALLOCATE", "DEC", "DECIMAL", "DECLARE", "DEFAULT", "DEFERRABLE", "DEFERRED",
    "DEFINE", "DEFINED", "DEFINITION", "DELETE", "DELIMITED", "DEPTH", "DEREF", "DESC", "DESCRIBE", "DESCRIPTOR", "DETACH",
    "DETERMINISTIC", "DIAGNOSTICS", "DIRECTORIES", "DISABLE", "DISCONNECT", "DISTINCT", "DISTRIBUTE", "DO", "DOMAIN", "DOUBLE",
    "DROP", "DUMP", "DURATION", "DYNAMIC",
    "EACH", "ELEMENT", "ELSE", "ELSEIF", "EMPTY", "ENABLE", "END", "EQUAL", "EQUALS", "ERROR", "ESCAPE", "ESCAPED", "EVAL",
    "EVALUATE", "EXCEEDED", "EXCEPT", "EXCEPTION", "EXCEPTIONS", "EXCLUSIVE", "EXEC", "EXECUTE", "EXISTS", "EXIT", "EXPLAIN",
    "EXPLODE", "EXPORT", "EXPRESSION", "EXTENDED", "EXTERNAL", "EXTRACT",
    "FAIL", "FALSE", "FAMILY", "FETCH", "FIELDS", "FILE", "FILTER", "FILTERING", "FINAL", "FINISH", "FIRST", "FIXED", "FLATTERN",
    "FLOAT", "FOR", "FORCE", "FOREIGN", "FORMAT", "FORWARD", "FOUND", "FREE", "FROM", "FULL", "FUNCTION", "FUNCTIONS",
    "GENERAL", "GENERATE", "GET", "GLOB", "GLOBAL", "GO", "GOTO", "GRANT", "GREATER", "GROUP", "GROUPING",
    "HANDLER", "HASH", "HAVE", "HAVING", "HEAP", "HIDDEN", "HOLD", "HOUR",
    "IDENTIFIED", "IDENTITY", "IF", "IGNORE", "IMMEDIATE", "IMPORT", "IN", "INCLUDING", "INCLUSIVE", "INCREMENT", "INCREMENTAL",
    "INDEX", "INDEXED", "INDEXES", "INDICATOR", "INFINITE", "INITIALLY", "INLINE", "INNER", "INNTER", "INOUT", "INPUT",
    "INSENSITIVE", "INSERT", "INSTEAD", "INT", "INTEGER", "INTERSECT", "INTERVAL", "INTO", "INVALIDATE", "IS", "ISOLATION", "ITEM",
    "ITEMS", "ITERATE",
    "JOIN",
    "KEY", "KEYS",
    "LAG", "LANGUAGE", "LARGE", "LAST", "LATERAL", "LEAD", "LEADING", "LEAVE", "LEFT", "LENGTH", "LESS", "LEVEL", "LIKE", "LIMIT",
    "LIMITED", "LINES", "LIST", "LOAD", "LOCAL", "LOCALTIME", "LOCALTIMESTAMP", "LOCATION", "LOCATOR", "LOCK", "LOCKS", "LOG",
    "LOGED", "LONG", "LOOP", "LOWER",
    "MAP", "MATCH", "MATERIALIZED", "MAX", "MAXLEN", "MEMBER", "MERGE", "METHOD", "METRICS", "MIN", "MINUS", "MINUTE", "MISSING",
    "MOD", "MODE", "MODIFIES", "MODIFY", "MODULE", "MONTH", "MULTI", "MULTISET",
    "NAME", "NAMES", "NATIONAL", "NATURAL", "NCHAR", "NCLOB", "NEW", "NEXT", "NO", "NONE", "NOT", "NULL", "NULLIF", "NUMBER",
    "NUMERIC",
    "OBJECT", "OF", "OFFLINE", "OFFSET", "OLD", "ON", "ONLINE", "ONLY", "OPAQUE", "OPEN", "OPERATOR", "OPTION", "OR", "ORDER",
    "ORDINALITY", "OTHER", "OTHERS", "OUT", "OUTER", "OUTPUT", "OVER", "OVERLAPS", "OVERRIDE", "OWNER",
    "PAD", "PARALLEL", "PARAMETER", "PARAMETERS", "PARTIAL", "PARTITION", "PARTITIONED", "PARTITIONS", "PATH", "PERCENT",
    "PERCENTILE", "PERMISSION", "PERMISSIONS", "PIPE", "PIPELINED", "PLAN", "POOL", "POSITION", "PRECISION", "PREPARE", "PRESERVE",
    "PRIMARY", "PRIOR", "PRIVATE", "PRIVILEGES", "PROCEDURE", "PROCESSED", "PROJECT", "PROJECTION", "PROPERTY", "PROVISIONING",
    "PUBLIC", "PUT",
    "QUERY", "QUIT", "QUORUM",
    "RAISE", "RANDOM", "RANGE", "RANK", "RAW", "READ", "READS", "REAL", "REBUILD", "RECORD", "RECURSIVE", "REDUCE", "REF",
    "REFERENCE", "REFERENCES", "REFERENCING", "REGEXP", "REGION", "REINDEX", "RELATIVE", "RELEASE", "REMAINDER", "RENAME", "REPEAT",
    "REPLACE", "REQUEST", "RESET", "RESIGNAL", "RESOURCE", "RESPONSE", "RESTORE", "RESTRICT", "RESULT", "RETURN", "RETURNING",
    "RETURNS", "REVERSE", "REVOKE", "RIGHT", "ROLE", "ROLES", "ROLLBACK", "ROLLUP", "ROUTINE", "ROW", "ROWS", "RULE", "RULES",
    "SAMPLE", "SATISFIES", "SAVE", "SAVEPOINT", "SCAN", "SCHEMA", "SCOPE", "SCROLL", "SEARCH", "SECOND", "SECTION", "SEGMENT",
    "SEGMENTS", "SELECT", "SELF", "SEMI", "SENSITIVE", "SEPARATE", "SEQUENCE", "SERIALIZABLE", "SESSION", "SET", "SETS", "SHARD",
    "SHARE", "SHARED", "SHORT", "SHOW", "SIGNAL", "SIMILAR", "SIZE", "SKEWED", "SMALLINT", "SNAPSHOT", "SOME", "SOURCE", "SPACE",
    "SPACES", "SPARSE", "SPECIFIC", "SPECIFICTYPE", "SPLIT", "SQL", "SQLCODE", "SQLERROR", "SQLEXCEPTION", "SQLSTATE", "SQLWARNING",
    "START", "STATE", "STATIC", "STATUS", "STORAGE", "STORE", "STORED", "STREAM", "STRING", "STRUCT", "STYLE", "SUB", "SUBMULTISET",
    "SUBPARTITION", "SUBSTRING", "SUBTYPE", "SUM", "SUPER", "SYMMETRIC", "SYNONYM", "SYSTEM",
    "TABLE", "TABLESAMPLE", "TEMP", "TEMPORARY", "TERMINATED", "TEXT", "THAN", "THEN", "THROUGHPUT", "TIME", "TIMESTAMP",
    "TIMEZONE", "TINYINT", "TO", "TOKEN", "TOTAL", "TOUCH", "TRAILING", "TRANSACTION", "TRANSFORM", "TRANSLATE", "TRANSLATION",
    "TREAT", "TRIGGER", "TRIM", "TRUE", "TRUNCATE", "TTL", "TUPLE", "TYPE",
    "UNDER", "UNDO", "UNION", "UNIQUE", "UNIT", "UNKNOWN", "UNLOGGED", "UNNEST", "UNPROCESSED", "UNSIGNED", "UNTIL", "UPDATE",
    "UPPER", "URL", "USAGE", "USE", "USER", "USERS", "USING", "UUID",
    "VACUUM", "VALUE", "VALUED", "VALUES", "VARCHAR", "VARIABLE", "VARIANCE", "VARINT", "VARYING", "VIEW", "VIEWS", "VIRTUAL",
    "VOID",
    "WAIT", "WHEN", "WHENEVER", "WHERE", "WHILE", "WINDOW", "WITH", "WITHIN", "WITHOUT", "WORK", "WRAPPED", "WRITE",
    "YEAR",
    "ZONE",
};
/* clang-format on */

#define RESERVED_MAX_LEN 14 /* LOCALTIMESTAMP */

int store_expr_is_reserved(const char *word, size_t len)
{
    char up[RESERVED_MAX_LEN + 1];
    size_t lo = 0, hi = sizeof(reserved) / sizeof(reserved[0]);

    if (len == 0 || len > RESERVED_MAX_LEN)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = word[i];
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        else if (c < 'A' || c > 'Z')
            return 0;
        up[i] = c;
    }
    up[len] = '\0';
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(up, reserved[mid]);
        if (c == 0)
            return 1;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return 0;
}

const char *store_expr_kind_name(store_expr_kind_t kind)
{
    static const char *const names[] = {
        [STORE_EXPR_CONDITION] = "ConditionExpression",
        [STORE_EXPR_FILTER] = "FilterExpression",
        [STORE_EXPR_KEY_CONDITION] = "KeyConditionExpression",
        [STORE_EXPR_PROJECTION] = "ProjectionExpression",
        [STORE_EXPR_UPDATE] = "UpdateExpression",
    };
    return (size_t)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "Expression";
}

/* ---- the lexer ---- */

enum { T_EOF, T_IDENT, T_NAME, T_VALUE, T_NUMBER, T_PUNCT, T_OTHER };
enum { P_EQ = 1, P_NE, P_LT, P_LE, P_GT, P_GE, P_LPAREN, P_RPAREN, P_LBRACKET, P_RBRACKET, P_COMMA, P_DOT, P_PLUS, P_MINUS };

typedef struct tok {
    int kind, punct;
    size_t start, end;
} tok_t;

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_word(char c)
{
    return is_alpha(c) || is_digit(c) || c == '_';
}

/* The token at or after pos. */
static tok_t lex(const char *s, size_t len, size_t pos)
{
    tok_t t = {T_EOF, 0, len, len};
    unsigned char c;

    while (pos < len && is_space(s[pos]))
        pos++;
    if (pos >= len)
        return t;
    t.start = t.end = pos;
    c = (unsigned char)s[pos];
    if (is_alpha((char)c)) {
        t.kind = T_IDENT;
        while (++pos < len && is_word(s[pos]))
            ;
    } else if ((c == '#' || c == ':') && pos + 1 < len && is_word(s[pos + 1])) {
        t.kind = c == '#' ? T_NAME : T_VALUE;
        while (++pos < len && is_word(s[pos]))
            ;
    } else if (is_digit((char)c)) {
        t.kind = T_NUMBER;
        while (++pos < len && is_digit(s[pos]))
            ;
    } else {
        static const char punct[] = "=<>()[],.+-";
        const char *p = c != '\0' ? strchr(punct, c) : NULL;
        pos++;
        if (p != NULL) {
            static const int kinds[] = {P_EQ,       P_LT,    P_GT,  P_LPAREN, P_RPAREN, P_LBRACKET,
                                        P_RBRACKET, P_COMMA, P_DOT, P_PLUS,   P_MINUS};
            t.kind = T_PUNCT;
            t.punct = kinds[p - punct];
            if (t.punct == P_LT && pos < len && (s[pos] == '=' || s[pos] == '>')) {
                t.punct = s[pos] == '=' ? P_LE : P_NE;
                pos++;
            } else if (t.punct == P_GT && pos < len && s[pos] == '=') {
                t.punct = P_GE;
                pos++;
            }
        } else {
            /* anything else is one (UTF-8) character: a token only a syntax error will name */
            size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
            t.kind = T_OTHER;
            for (size_t i = 1; i < n && pos < len && ((unsigned char)s[pos] & 0xc0) == 0x80; i++)
                pos++;
        }
    }
    t.end = pos;
    return t;
}

/* ---- the parser ---- */

/* Semantic errors. */
enum {
    E_PARENS,     /* The expression has redundant parentheses; */
    E_UNKNOWN_FN, /* Invalid function name */
    E_MISUSED_FN, /* The function is not allowed to be used this way */
    E_RESERVED,   /* Attribute name is a reserved keyword */
    E_NAME,       /* undefined #name */
    E_VALUE,      /* undefined :value */
    E_ARITY,      /* Incorrect number of operands */
    E_DISTINCT,   /* The first operand must be distinct */
    E_PATHREQ,    /* Operator or function requires a document path */
    E_TYPE,       /* Incorrect operand type (functions, comparators), Invalid attribute type name */
    E_IN_COUNT,   /* The IN operator is provided with too many operands */
    E_SECTION,    /* The "SET" section can only be used once */
    E_OVERLAP,    /* Two document paths overlap */
    E_CONFLICT,   /* Two document paths conflict */
    E_OPERAND,    /* ADD / DELETE operand type */
};
#define NSLOTS 10

#define OP_BAD ((store_expr_op_t)0) /* an unknown function: never in a returned AST */
#define UNDEFINED_VALUE SIZE_MAX    /* the index of an undefined :value (the parse fails): no type to ask for */
#define MAX_DEPTH (STORE_EXPR_MAX_SIZE + 1)

typedef struct parser {
    const char *src;
    size_t len;
    tok_t cur, prev;
    int has_prev;
    store_expr_kind_t kind;
    const store_expr_env_t *env;
    int hard; /* 0, or the code of a hard error whose message is in err */
    char *err;
    size_t errsize;
    const char *msg[NSLOTS]; /* the first semantic error of each rank, without the "Invalid X: " prefix */
    unsigned ops, depth;
} parser_t;

static int is_cond_kind(const parser_t *p)
{
    return p->kind == STORE_EXPR_CONDITION || p->kind == STORE_EXPR_FILTER || p->kind == STORE_EXPR_KEY_CONDITION;
}

/* The rank of a semantic error for the parser's kind: 0 is reported first. */
static int rank(const parser_t *p, int e)
{
    static const signed char cond[] = {
        [E_PARENS] = 0,   [E_UNKNOWN_FN] = 1, [E_MISUSED_FN] = 2, [E_RESERVED] = 3, [E_NAME] = 4,
        [E_VALUE] = 4,    [E_ARITY] = 4,      [E_DISTINCT] = 4,   [E_PATHREQ] = 4,  [E_TYPE] = 4,
        [E_IN_COUNT] = 4, [E_SECTION] = 4,    [E_OVERLAP] = 4,    [E_CONFLICT] = 4, [E_OPERAND] = 4,
    };
    static const signed char update[] = {
        [E_RESERVED] = 0, [E_UNKNOWN_FN] = 1, [E_SECTION] = 2,    [E_NAME] = 3,     [E_VALUE] = 4,
        [E_OVERLAP] = 5,  [E_CONFLICT] = 6,   [E_OPERAND] = 7,    [E_ARITY] = 8,    [E_PATHREQ] = 8,
        [E_TYPE] = 8,     [E_PARENS] = 9,     [E_MISUSED_FN] = 9, [E_DISTINCT] = 9, [E_IN_COUNT] = 9,
    };
    static const signed char projection[] = {
        [E_RESERVED] = 0,   [E_NAME] = 1,       [E_OVERLAP] = 2,  [E_CONFLICT] = 3, [E_PARENS] = 4,
        [E_UNKNOWN_FN] = 4, [E_MISUSED_FN] = 4, [E_VALUE] = 4,    [E_ARITY] = 4,    [E_DISTINCT] = 4,
        [E_PATHREQ] = 4,    [E_TYPE] = 4,       [E_IN_COUNT] = 4, [E_SECTION] = 4,  [E_OPERAND] = 4,
    };
    if (p->kind == STORE_EXPR_UPDATE)
        return update[e];
    if (p->kind == STORE_EXPR_PROJECTION)
        return projection[e];
    return cond[e];
}

static void vfail(parser_t *p, int code, const char *fmt, va_list ap)
{
    if (p->hard)
        return;
    p->hard = code;
    if (p->errsize > 0) {
        int n = code == STORE_EXPR_ENOMEM ? 0 : snprintf(p->err, p->errsize, "Invalid %s: ", store_expr_kind_name(p->kind));
        if (n >= 0 && (size_t)n < p->errsize)
            vsnprintf(p->err + n, p->errsize - (size_t)n, fmt, ap);
    }
}

static void fail(parser_t *p, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(parser_t *p, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(p, code, fmt, ap);
    va_end(ap);
}

static void *palloc(parser_t *p, size_t size)
{
    void *m;
    if (p->hard)
        return NULL;
    if ((m = p->env->alloc(size != 0 ? size : 1, p->env->ud)) == NULL)
        fail(p, STORE_EXPR_ENOMEM, "out of memory");
    return m;
}

/* A syntax error at the current token: near is the text from the previous token to the next one. */
static void syntax_error(parser_t *p)
{
    const tok_t *t = &p->cur;
    size_t from = p->has_prev ? p->prev.start : t->start, to;
    const char *tok = t->kind == T_EOF ? "<EOF>" : p->src + t->start;
    int toklen = t->kind == T_EOF ? 5 : (int)(t->end - t->start);

    if (t->kind == T_EOF) {
        to = p->len;
    } else {
        tok_t next = lex(p->src, p->len, t->end);
        to = next.kind == T_EOF ? t->end : next.end;
    }
    fail(p, STORE_EXPR_EINVALID, "Syntax error; token: \"%.*s\", near: \"%.*s\"", toklen, tok, (int)(to - from), p->src + from);
}

static int slot_free(const parser_t *p, int e)
{
    return !p->hard && p->msg[rank(p, e)] == NULL;
}

static void record(parser_t *p, int e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void record(parser_t *p, int e, const char *fmt, ...)
{
    va_list ap;
    int n;
    char *m;

    if (!slot_free(p, e))
        return;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || (m = palloc(p, (size_t)n + 1)) == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(m, (size_t)n + 1, fmt, ap);
    va_end(ap);
    p->msg[rank(p, e)] = m;
}

static void next(parser_t *p)
{
    p->prev = p->cur;
    p->has_prev = 1;
    p->cur = lex(p->src, p->len, p->cur.end);
}

static int at_punct(const parser_t *p, int punct)
{
    return p->cur.kind == T_PUNCT && p->cur.punct == punct;
}

static int tok_is(const parser_t *p, const tok_t *t, const char *word)
{
    size_t n = strlen(word);
    if (t->kind != T_IDENT || t->end - t->start != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = p->src[t->start + i];
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (c != word[i])
            return 0;
    }
    return 1;
}

static const char *const clause_names[] = {"SET", "REMOVE", "ADD", "DELETE"};

/* The clause (STORE_EXPR_SET ...) a token starts, or -1. */
static int clause_of(const parser_t *p, const tok_t *t)
{
    for (int i = 0; i < 4; i++)
        if (tok_is(p, t, clause_names[i]))
            return i;
    return -1;
}

static int is_keyword(const parser_t *p, const tok_t *t)
{
    if (t->kind != T_IDENT)
        return 0;
    if (is_cond_kind(p))
        return tok_is(p, t, "AND") || tok_is(p, t, "OR") || tok_is(p, t, "NOT") || tok_is(p, t, "BETWEEN") || tok_is(p, t, "IN");
    if (p->kind == STORE_EXPR_UPDATE)
        return clause_of(p, t) >= 0;
    return 0;
}

/* One more operator against DynamoDB's limit: -1 (a hard error) past it. */
static int count_op(parser_t *p)
{
    if (++p->ops > STORE_EXPR_MAX_OPERATORS) {
        fail(p, STORE_EXPR_EINVALID, "The expression contains too many operators; operator count: %u", p->ops);
        return -1;
    }
    return 0;
}

static int enter(parser_t *p)
{
    if (++p->depth > MAX_DEPTH) {
        syntax_error(p);
        return -1;
    }
    return 0;
}

/* A growable array in the arena (a grown array leaves its old copy behind: at most twice the final size). */
static int grow(parser_t *p, void **items, size_t *cap, size_t n, size_t size)
{
    void *m;
    if (n < *cap)
        return 0;
    *cap = *cap != 0 ? *cap * 2 : 4;
    if ((m = palloc(p, *cap * size)) == NULL)
        return -1;
    if (n != 0)
        memcpy(m, *items, n * size);
    *items = m;
    return 0;
}

/* ---- paths ---- */

static int path_equal(const store_expr_path_t *a, const store_expr_path_t *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++) {
        const store_expr_elem_t *x = &a->elems[i], *y = &b->elems[i];
        if ((x->name == NULL) != (y->name == NULL))
            return 0;
        if (x->name == NULL ? x->index != y->index : x->len != y->len || memcmp(x->name, y->name, x->len) != 0)
            return 0;
    }
    return 1;
}

/* "[a, b, [1]]", as DynamoDB names paths in its messages. */
static char *path_str(parser_t *p, const store_expr_path_t *path)
{
    size_t need = 3, at = 0;
    char *s;

    for (size_t i = 0; i < path->n; i++)
        need += 2 + (path->elems[i].name != NULL ? path->elems[i].len : 12);
    if ((s = palloc(p, need)) == NULL)
        return NULL;
    s[at++] = '[';
    for (size_t i = 0; i < path->n; i++) {
        const store_expr_elem_t *e = &path->elems[i];
        if (i > 0) {
            s[at++] = ',';
            s[at++] = ' ';
        }
        if (e->name != NULL) {
            memcpy(s + at, e->name, e->len);
            at += e->len;
        } else {
            at += (size_t)snprintf(s + at, need - at, "[%u]", (unsigned)e->index);
        }
    }
    s[at++] = ']';
    s[at] = '\0';
    return s;
}

/* Overlap (one path a prefix of the other) and conflict (a name where the other has an index) with earlier paths. */
static void check_paths(parser_t *p, const store_expr_path_t *earlier, size_t n, const store_expr_path_t *path)
{
    for (size_t i = 0; i < n; i++) {
        const store_expr_path_t *q = &earlier[i];
        int conflict = 0, related = 1;
        for (size_t j = 0; j < q->n && j < path->n; j++) {
            const store_expr_elem_t *x = &q->elems[j], *y = &path->elems[j];
            if ((x->name == NULL) != (y->name == NULL)) {
                conflict = 1;
                break;
            }
            if (x->name == NULL ? x->index != y->index : x->len != y->len || memcmp(x->name, y->name, x->len) != 0) {
                related = 0;
                break;
            }
        }
        if (conflict) {
            if (slot_free(p, E_CONFLICT)) {
                char *one = path_str(p, q), *two = path_str(p, path);
                if (one != NULL && two != NULL)
                    record(p, E_CONFLICT,
                           "Two document paths conflict with each other; must remove or rewrite one of these paths; path one: %s, "
                           "path two: %s",
                           one, two);
            }
        } else if (related) {
            if (slot_free(p, E_OVERLAP)) {
                char *one = path_str(p, q), *two = path_str(p, path);
                if (one != NULL && two != NULL)
                    record(p, E_OVERLAP,
                           "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: %s, "
                           "path two: %s",
                           one, two);
            }
            return;
        }
    }
}

/* A name step at the current token (a #name or an identifier that is no keyword): 0, or -1 when it is neither. */
static int path_name(parser_t *p, store_expr_elem_t *e)
{
    const char *s = p->src + p->cur.start;
    size_t n = p->cur.end - p->cur.start;

    e->index = 0;
    if (p->cur.kind == T_NAME) {
        const char *name = NULL;
        size_t len = 0;
        if (p->env->name != NULL && p->env->name(p->env->ud, s, n, &name, &len) == 0) {
            e->name = name != NULL ? name : "";
            e->len = name != NULL ? len : 0;
        } else {
            record(p, E_NAME, "An expression attribute name used in the document path is not defined; attribute name: %.*s", (int)n,
                   s);
            e->name = s;
            e->len = n;
        }
    } else if (p->cur.kind == T_IDENT && !is_keyword(p, &p->cur)) {
        if (store_expr_is_reserved(s, n))
            record(p, E_RESERVED, "Attribute name is a reserved keyword; reserved keyword: %.*s", (int)n, s);
        e->name = s;
        e->len = n;
    } else {
        return -1;
    }
    next(p);
    return 0;
}

static int parse_path(parser_t *p, store_expr_path_t *out)
{
    store_expr_elem_t *elems = NULL;
    size_t n = 0, cap = 0;

    for (;;) {
        if (grow(p, (void **)&elems, &cap, n, sizeof(*elems)) != 0)
            return -1;
        if (n == 0 || at_punct(p, P_DOT)) {
            if (n != 0)
                next(p);
            if (path_name(p, &elems[n]) != 0) {
                syntax_error(p);
                return -1;
            }
        } else if (at_punct(p, P_LBRACKET)) {
            unsigned long long v = 0;
            next(p);
            if (p->cur.kind != T_NUMBER) {
                syntax_error(p);
                return -1;
            }
            for (size_t i = p->cur.start; i < p->cur.end && v <= INT32_MAX; i++)
                v = v * 10 + (unsigned)(p->src[i] - '0');
            if (v > INT32_MAX) {
                syntax_error(p);
                return -1;
            }
            next(p);
            if (!at_punct(p, P_RBRACKET)) {
                syntax_error(p);
                return -1;
            }
            next(p);
            elems[n].name = NULL;
            elems[n].len = 0;
            elems[n].index = (uint32_t)v;
        } else {
            break;
        }
        n++;
    }
    out->elems = elems;
    out->n = n;
    return 0;
}

/* ---- nodes ---- */

static store_expr_node_t *mknode(parser_t *p, store_expr_op_t op, uint32_t nargs, store_expr_node_t *const *args)
{
    store_expr_node_t *n = palloc(p, sizeof(*n));
    if (n == NULL)
        return NULL;
    memset(n, 0, sizeof(*n));
    n->op = op;
    n->nargs = nargs;
    n->args = args;
    return n;
}

static store_expr_node_t *node2(parser_t *p, store_expr_op_t op, store_expr_node_t *a, store_expr_node_t *b)
{
    store_expr_node_t **args = palloc(p, 2 * sizeof(*args));
    if (args == NULL)
        return NULL;
    args[0] = a;
    args[1] = b;
    return mknode(p, op, 2, args);
}

static int is_call(const store_expr_node_t *n)
{
    if (n->op == OP_BAD)
        return 1;
    switch (n->op) {
    case STORE_EXPR_SIZE:
    case STORE_EXPR_IF_NOT_EXISTS:
    case STORE_EXPR_LIST_APPEND:
    case STORE_EXPR_ATTRIBUTE_EXISTS:
    case STORE_EXPR_ATTRIBUTE_NOT_EXISTS:
    case STORE_EXPR_ATTRIBUTE_TYPE:
    case STORE_EXPR_BEGINS_WITH:
    case STORE_EXPR_CONTAINS:
        return 1;
    default:
        return 0;
    }
}

/* An operand (path, value, function call), as opposed to a condition built of operators. */
static int is_operand(const store_expr_node_t *n)
{
    return n->op == STORE_EXPR_PATH || n->op == STORE_EXPR_VALUE || is_call(n);
}

static const char *op_name(store_expr_op_t op)
{
    static const char *const names[] = {
        [STORE_EXPR_PATH] = "path",
        [STORE_EXPR_VALUE] = "value",
        [STORE_EXPR_SIZE] = "size",
        [STORE_EXPR_IF_NOT_EXISTS] = "if_not_exists",
        [STORE_EXPR_LIST_APPEND] = "list_append",
        [STORE_EXPR_PLUS] = "+",
        [STORE_EXPR_MINUS] = "-",
        [STORE_EXPR_EQ] = "=",
        [STORE_EXPR_NE] = "<>",
        [STORE_EXPR_LT] = "<",
        [STORE_EXPR_LE] = "<=",
        [STORE_EXPR_GT] = ">",
        [STORE_EXPR_GE] = ">=",
        [STORE_EXPR_BETWEEN] = "BETWEEN",
        [STORE_EXPR_IN] = "IN",
        [STORE_EXPR_AND] = "AND",
        [STORE_EXPR_OR] = "OR",
        [STORE_EXPR_NOT] = "NOT",
        [STORE_EXPR_ATTRIBUTE_EXISTS] = "attribute_exists",
        [STORE_EXPR_ATTRIBUTE_NOT_EXISTS] = "attribute_not_exists",
        [STORE_EXPR_ATTRIBUTE_TYPE] = "attribute_type",
        [STORE_EXPR_BEGINS_WITH] = "begins_with",
        [STORE_EXPR_CONTAINS] = "contains",
    };
    return (size_t)op < sizeof(names) / sizeof(names[0]) && names[op] != NULL ? names[op] : "?";
}

static const char *vt_name(store_expr_vtype_t t)
{
    static const char *const names[] = {"", "S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS", "L", "M"};
    return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "";
}

/* The type of a :value, when the caller told it. */
static store_expr_vtype_t value_type(const parser_t *p, const store_expr_node_t *n)
{
    if (n->op != STORE_EXPR_VALUE || p->env->value_type == NULL || n->value == UNDEFINED_VALUE)
        return STORE_EXPR_VT_UNKNOWN;
    return p->env->value_type(p->env->ud, n->value);
}

/* The type an operand has before any item is read: a value's, or N for size(). */
static store_expr_vtype_t static_type(const parser_t *p, const store_expr_node_t *n)
{
    return n->op == STORE_EXPR_SIZE ? STORE_EXPR_VT_N : value_type(p, n);
}

static void type_error(parser_t *p, store_expr_op_t op, store_expr_vtype_t t)
{
    record(p, E_TYPE, "Incorrect operand type for operator or function; operator or function: %s, operand type: %s", op_name(op),
           vt_name(t));
}

/* ---- operands ---- */

static store_expr_node_t *operand(parser_t *p);

/* The value at the current token (a VALUE token). */
static store_expr_node_t *value_node(parser_t *p)
{
    const char *s = p->src + p->cur.start;
    size_t n = p->cur.end - p->cur.start, index = 0;
    store_expr_node_t *node = mknode(p, STORE_EXPR_VALUE, 0, NULL);

    if (node == NULL)
        return NULL;
    if (p->env->value != NULL && p->env->value(p->env->ud, s, n, &index) == 0) {
        node->value = index;
    } else {
        record(p, E_VALUE, "An expression attribute value used in expression is not defined; attribute value: %.*s", (int)n, s);
        node->value = UNDEFINED_VALUE;
    }
    next(p);
    return node;
}

/* A condition's operand in parentheses or not; *wrapped is 1 when in one pair of its own. */
static store_expr_node_t *cond_operand_p(parser_t *p, int *wrapped)
{
    store_expr_node_t *n;
    int inner;

    if (!at_punct(p, P_LPAREN)) {
        *wrapped = 0;
        return operand(p);
    }
    if (enter(p) != 0)
        return NULL;
    next(p);
    if ((n = cond_operand_p(p, &inner)) == NULL)
        return NULL;
    if (!at_punct(p, P_RPAREN)) {
        syntax_error(p);
        return NULL;
    }
    next(p);
    p->depth--;
    if (inner)
        record(p, E_PARENS, "The expression has redundant parentheses;");
    *wrapped = 1;
    return n;
}

/* An update's operand: at most one pair of parentheses. */
static store_expr_node_t *update_operand_p(parser_t *p)
{
    store_expr_node_t *n;

    if (!at_punct(p, P_LPAREN))
        return operand(p);
    next(p);
    if ((n = operand(p)) == NULL)
        return NULL;
    if (!at_punct(p, P_RPAREN)) {
        syntax_error(p);
        return NULL;
    }
    next(p);
    return n;
}

/* A function, used as an operand (not size): a misuse in a condition. */
static void check_operand_use(parser_t *p, const store_expr_node_t *n)
{
    if (is_call(n) && n->op != STORE_EXPR_SIZE && n->op != OP_BAD)
        record(p, E_MISUSED_FN, "The function is not allowed to be used this way in an expression; function: %s", op_name(n->op));
}

static void check_distinct(parser_t *p, const char *op, const store_expr_node_t *first, store_expr_node_t *const *rest, size_t n)
{
    if (first->op != STORE_EXPR_PATH || !slot_free(p, E_DISTINCT))
        return;
    for (size_t i = 0; i < n; i++) {
        if (rest[i]->op == STORE_EXPR_PATH && path_equal(&first->path, &rest[i]->path)) {
            char *s = path_str(p, &first->path);
            if (s != NULL)
                record(p, E_DISTINCT,
                       "The first operand must be distinct from the remaining operands for this operator or function; operator: "
                       "%s, first operand: %s",
                       op, s);
            return;
        }
    }
}

/* The checks of a known function's arguments (DynamoDB's order: count, distinct, then per function). */
static void check_call(parser_t *p, store_expr_node_t *fn, uint32_t want)
{
    store_expr_node_t *const *a = fn->args;
    const char *name = op_name(fn->op);

    if (is_cond_kind(p))
        for (uint32_t i = 0; i < fn->nargs; i++)
            check_operand_use(p, a[i]);
    if (fn->nargs != want) {
        record(p, E_ARITY,
               "Incorrect number of operands for operator or function; operator or function: %s, number of operands: %u", name,
               (unsigned)fn->nargs);
        return;
    }
    if (is_cond_kind(p) && want == 2)
        check_distinct(p, name, a[0], a + 1, 1);
    switch (fn->op) {
    case STORE_EXPR_ATTRIBUTE_EXISTS:
    case STORE_EXPR_ATTRIBUTE_NOT_EXISTS:
    case STORE_EXPR_IF_NOT_EXISTS:
        if (a[0]->op != STORE_EXPR_PATH)
            record(p, E_PATHREQ, "Operator or function requires a document path; operator or function: %s", name);
        break;
    case STORE_EXPR_ATTRIBUTE_TYPE: {
        store_expr_vtype_t t = static_type(p, a[1]);
        const char *s;
        size_t len;
        if (a[0]->op != STORE_EXPR_PATH) {
            record(p, E_PATHREQ, "Operator or function requires a document path; operator or function: %s", name);
        } else if (a[1]->op == STORE_EXPR_PATH) {
            record(p, E_TYPE, "Incorrect operand type for operator or function; operator or function: %s, operand type: %s", name,
                   "{NS,SS,L,BS,N,M,B,BOOL,NULL,S}");
        } else if (t != STORE_EXPR_VT_UNKNOWN && t != STORE_EXPR_VT_S) {
            type_error(p, fn->op, t);
        } else if (t == STORE_EXPR_VT_S && p->env->value_s != NULL && p->env->value_s(p->env->ud, a[1]->value, &s, &len) == 0) {
            static const char *const types[] = {"S", "N", "B", "NULL", "SS", "BOOL", "L", "BS", "NS", "M"};
            int ok = 0;
            for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
                ok |= strlen(types[i]) == len && memcmp(types[i], s, len) == 0;
            if (!ok)
                record(p, E_TYPE, "Invalid attribute type name found; type: %.*s, valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}",
                       (int)len, s);
        }
        break;
    }
    case STORE_EXPR_BEGINS_WITH:
        for (int i = 0; i < 2; i++) {
            store_expr_vtype_t t = static_type(p, a[i]);
            if (t != STORE_EXPR_VT_UNKNOWN && t != STORE_EXPR_VT_S && t != STORE_EXPR_VT_B) {
                type_error(p, fn->op, t);
                break;
            }
        }
        break;
    case STORE_EXPR_SIZE: {
        store_expr_vtype_t t = static_type(p, a[0]);
        if (t == STORE_EXPR_VT_N || t == STORE_EXPR_VT_BOOL || t == STORE_EXPR_VT_NULL)
            type_error(p, fn->op, t);
        break;
    }
    case STORE_EXPR_LIST_APPEND:
        for (int i = 0; i < 2; i++) {
            store_expr_vtype_t t = value_type(p, a[i]);
            if (t != STORE_EXPR_VT_UNKNOWN && t != STORE_EXPR_VT_L) {
                type_error(p, fn->op, t);
                break;
            }
        }
        break;
    default:
        break;
    }
}

/* name(args) at the current token (an identifier followed by a parenthesis). */
static store_expr_node_t *function_call(parser_t *p)
{
    static const struct {
        const char *name;
        store_expr_op_t op;
        uint32_t nargs;
        int update;
    } fns[] = {
        {"attribute_exists", STORE_EXPR_ATTRIBUTE_EXISTS, 1, 0},
        {"attribute_not_exists", STORE_EXPR_ATTRIBUTE_NOT_EXISTS, 1, 0},
        {"attribute_type", STORE_EXPR_ATTRIBUTE_TYPE, 2, 0},
        {"begins_with", STORE_EXPR_BEGINS_WITH, 2, 0},
        {"contains", STORE_EXPR_CONTAINS, 2, 0},
        {"size", STORE_EXPR_SIZE, 1, 0},
        {"if_not_exists", STORE_EXPR_IF_NOT_EXISTS, 2, 1},
        {"list_append", STORE_EXPR_LIST_APPEND, 2, 1},
    };
    const char *name = p->src + p->cur.start;
    size_t len = p->cur.end - p->cur.start, n = 0, cap = 0;
    store_expr_op_t op = OP_BAD;
    uint32_t want = 0;
    store_expr_node_t **args = NULL, *fn;

    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
        if (fns[i].update == (p->kind == STORE_EXPR_UPDATE) && strlen(fns[i].name) == len && memcmp(fns[i].name, name, len) == 0) {
            op = fns[i].op;
            want = fns[i].nargs;
        }
    }
    if (op == OP_BAD)
        record(p, E_UNKNOWN_FN, "Invalid function name; function: %.*s", (int)len, name);
    if (p->kind == STORE_EXPR_UPDATE && count_op(p) != 0)
        return NULL;
    if (enter(p) != 0)
        return NULL;
    next(p); /* the name */
    next(p); /* ( */
    for (;;) {
        int wrapped;
        store_expr_node_t *arg = p->kind == STORE_EXPR_UPDATE ? update_operand_p(p) : cond_operand_p(p, &wrapped);
        if (arg == NULL || grow(p, (void **)&args, &cap, n, sizeof(*args)) != 0)
            return NULL;
        args[n++] = arg;
        if (at_punct(p, P_COMMA)) {
            next(p);
        } else if (at_punct(p, P_RPAREN)) {
            next(p);
            break;
        } else {
            syntax_error(p);
            return NULL;
        }
    }
    p->depth--;
    if ((fn = mknode(p, op, (uint32_t)n, args)) == NULL)
        return NULL;
    if (op != OP_BAD)
        check_call(p, fn, want);
    return fn;
}

/* A path, a :value or a function call. */
static store_expr_node_t *operand(parser_t *p)
{
    store_expr_node_t *n;

    if (p->cur.kind == T_VALUE)
        return value_node(p);
    if (p->cur.kind == T_IDENT && !is_keyword(p, &p->cur)) {
        tok_t after = lex(p->src, p->len, p->cur.end);
        if (after.kind == T_PUNCT && after.punct == P_LPAREN)
            return function_call(p);
    } else if (p->cur.kind != T_NAME) {
        syntax_error(p);
        return NULL;
    }
    if ((n = mknode(p, STORE_EXPR_PATH, 0, NULL)) == NULL || parse_path(p, &n->path) != 0)
        return NULL;
    return n;
}

/* ---- conditions ---- */

/* An operand where a condition must be: a path or a value is a syntax error (at the current token), size() a misuse. */
static int use_as_condition(parser_t *p, const store_expr_node_t *n)
{
    if (n->op == STORE_EXPR_PATH || n->op == STORE_EXPR_VALUE) {
        syntax_error(p);
        return -1;
    }
    if (n->op == STORE_EXPR_SIZE)
        record(p, E_MISUSED_FN, "The function is not allowed to be used this way in an expression; function: size");
    return 0;
}

static store_expr_op_t comparator(const parser_t *p)
{
    static const store_expr_op_t ops[] = {[P_EQ] = STORE_EXPR_EQ, [P_NE] = STORE_EXPR_NE, [P_LT] = STORE_EXPR_LT,
                                          [P_LE] = STORE_EXPR_LE, [P_GT] = STORE_EXPR_GT, [P_GE] = STORE_EXPR_GE};
    if (p->cur.kind != T_PUNCT || p->cur.punct > P_GE)
        return OP_BAD;
    return ops[p->cur.punct];
}

/* Ordering comparators and BETWEEN take S, N or B values only. */
static void check_ordered(parser_t *p, store_expr_op_t op, store_expr_node_t *const *args, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        store_expr_vtype_t t = value_type(p, args[i]);
        if (t != STORE_EXPR_VT_UNKNOWN && t != STORE_EXPR_VT_S && t != STORE_EXPR_VT_N && t != STORE_EXPR_VT_B) {
            type_error(p, op, t);
            return;
        }
    }
}

/* The rest of a predicate after its first operand: comparator, BETWEEN or IN (not inlined: keeps the frames of the
 * recursion through cond_unary small). */
static __attribute__((noinline)) store_expr_node_t *predicate(parser_t *p, store_expr_node_t *left, store_expr_op_t cmp)
{
    store_expr_node_t **args = NULL;
    size_t n = 0, cap = 0;
    int wrapped;

    if (count_op(p) != 0)
        return NULL;
    check_operand_use(p, left);
    if (cmp != OP_BAD) {
        store_expr_node_t *right;
        next(p);
        if ((right = cond_operand_p(p, &wrapped)) == NULL || (args = palloc(p, 2 * sizeof(*args))) == NULL)
            return NULL;
        check_operand_use(p, right);
        args[0] = left;
        args[1] = right;
        check_distinct(p, op_name(cmp), left, args + 1, 1);
        if (cmp != STORE_EXPR_EQ && cmp != STORE_EXPR_NE)
            check_ordered(p, cmp, args, 2);
        return mknode(p, cmp, 2, args);
    }
    if (tok_is(p, &p->cur, "BETWEEN")) {
        if ((args = palloc(p, 3 * sizeof(*args))) == NULL)
            return NULL;
        args[0] = left;
        next(p);
        if ((args[1] = cond_operand_p(p, &wrapped)) == NULL)
            return NULL;
        if (!tok_is(p, &p->cur, "AND")) {
            syntax_error(p);
            return NULL;
        }
        next(p);
        if ((args[2] = cond_operand_p(p, &wrapped)) == NULL)
            return NULL;
        check_operand_use(p, args[1]);
        check_operand_use(p, args[2]);
        check_distinct(p, "BETWEEN", left, args + 1, 2);
        check_ordered(p, STORE_EXPR_BETWEEN, args, 3);
        return mknode(p, STORE_EXPR_BETWEEN, 3, args);
    }
    /* IN */
    next(p);
    if (!at_punct(p, P_LPAREN)) {
        syntax_error(p);
        return NULL;
    }
    next(p);
    if (grow(p, (void **)&args, &cap, n, sizeof(*args)) != 0)
        return NULL;
    args[n++] = left;
    for (;;) {
        store_expr_node_t *arg = cond_operand_p(p, &wrapped);
        if (arg == NULL || grow(p, (void **)&args, &cap, n, sizeof(*args)) != 0)
            return NULL;
        check_operand_use(p, arg);
        args[n++] = arg;
        if (at_punct(p, P_COMMA)) {
            next(p);
        } else if (at_punct(p, P_RPAREN)) {
            next(p);
            break;
        } else {
            syntax_error(p);
            return NULL;
        }
    }
    check_distinct(p, "IN", left, args + 1, n - 1);
    if (n - 1 > STORE_EXPR_MAX_IN_OPERANDS)
        record(p, E_IN_COUNT, "The IN operator is provided with too many operands; number of operands: %zu", n - 1);
    return mknode(p, STORE_EXPR_IN, (uint32_t)n, args);
}

static store_expr_node_t *cond_or(parser_t *p, int *wrapped);

/*
 * NOT*, then a parenthesized condition or a predicate. An operand with no comparator after it comes back as is when a
 * ')' follows inside parentheses ("(a) = :v": the caller's caller sees the comparator); *wrapped is 1 when the result
 * is exactly one pair of parentheses around something.
 */
static store_expr_node_t *cond_unary(parser_t *p, int *wrapped)
{
    store_expr_node_t *n;
    store_expr_op_t cmp;
    unsigned nots = 0;
    int w = 0;

    while (tok_is(p, &p->cur, "NOT")) {
        if (count_op(p) != 0)
            return NULL;
        next(p);
        nots++;
    }
    if (at_punct(p, P_LPAREN)) {
        int inner;
        if (enter(p) != 0)
            return NULL;
        next(p);
        if ((n = cond_or(p, &inner)) == NULL)
            return NULL;
        if (!at_punct(p, P_RPAREN)) {
            syntax_error(p);
            return NULL;
        }
        next(p);
        p->depth--;
        if (inner)
            record(p, E_PARENS, "The expression has redundant parentheses;");
        w = 1;
    } else if ((n = operand(p)) == NULL) {
        return NULL;
    }
    cmp = comparator(p);
    if (cmp != OP_BAD || tok_is(p, &p->cur, "BETWEEN") || tok_is(p, &p->cur, "IN")) {
        if (!is_operand(n)) {
            syntax_error(p);
            return NULL;
        }
        if ((n = predicate(p, n, cmp)) == NULL)
            return NULL;
        w = 0;
    } else if (is_operand(n)) {
        if (nots == 0 && at_punct(p, P_RPAREN) && p->depth > 0) {
            *wrapped = w;
            return n;
        }
        if (use_as_condition(p, n) != 0)
            return NULL;
    }
    for (unsigned i = 0; i < nots; i++) {
        store_expr_node_t **args = palloc(p, sizeof(*args));
        if (args == NULL)
            return NULL;
        args[0] = n;
        if ((n = mknode(p, STORE_EXPR_NOT, 1, args)) == NULL)
            return NULL;
        w = 0;
    }
    *wrapped = w;
    return n;
}

/* OR of ANDs of unary conditions, both left-associative. */
static store_expr_node_t *cond_or(parser_t *p, int *wrapped)
{
    store_expr_node_t *acc = NULL;
    int w = 0, items = 0;

    for (;;) {
        store_expr_node_t *and = cond_unary(p, &w);
        if (and == NULL)
            return NULL;
        items++;
        while (tok_is(p, &p->cur, "AND")) {
            store_expr_node_t *right;
            if (count_op(p) != 0)
                return NULL;
            next(p);
            if ((right = cond_unary(p, &w)) == NULL || (is_operand(right) && use_as_condition(p, right) != 0))
                return NULL;
            if ((and = node2(p, STORE_EXPR_AND, and, right)) == NULL)
                return NULL;
            items++;
        }
        if (acc != NULL) {
            if (is_operand(and) && use_as_condition(p, and) != 0)
                return NULL;
            if ((acc = node2(p, STORE_EXPR_OR, acc, and)) == NULL)
                return NULL;
        } else {
            acc = and;
        }
        if (!tok_is(p, &p->cur, "OR"))
            break;
        if (count_op(p) != 0)
            return NULL;
        next(p);
    }
    *wrapped = items == 1 ? w : 0;
    return acc;
}

/* ---- updates and projections ---- */

/* operand, operand + operand or operand - operand (each operand in at most one pair of parentheses). */
static store_expr_node_t *set_arith(parser_t *p)
{
    store_expr_node_t *left, *right, *n;
    store_expr_op_t op;

    if ((left = update_operand_p(p)) == NULL)
        return NULL;
    if (!at_punct(p, P_PLUS) && !at_punct(p, P_MINUS))
        return left;
    op = at_punct(p, P_PLUS) ? STORE_EXPR_PLUS : STORE_EXPR_MINUS;
    if (count_op(p) != 0)
        return NULL;
    next(p);
    if ((right = update_operand_p(p)) == NULL || (n = node2(p, op, left, right)) == NULL)
        return NULL;
    for (int i = 0; i < 2; i++) {
        store_expr_vtype_t t = value_type(p, n->args[i]);
        if (t != STORE_EXPR_VT_UNKNOWN && t != STORE_EXPR_VT_N) {
            type_error(p, op, t);
            break;
        }
    }
    return n;
}

/* A SET value: set_arith, or set_arith in parentheses ("(a + b)", "((a)) + b" is not one). */
static store_expr_node_t *set_value(parser_t *p)
{
    store_expr_node_t *n;

    if (!at_punct(p, P_LPAREN))
        return set_arith(p);
    /* "(a) + b": the parentheses are the first operand's */
    {
        tok_t t = lex(p->src, p->len, p->cur.end);
        int depth = 1;
        size_t pos = p->cur.end;
        while (t.kind != T_EOF && depth > 0) {
            if (t.kind == T_PUNCT && t.punct == P_LPAREN)
                depth++;
            else if (t.kind == T_PUNCT && t.punct == P_RPAREN)
                depth--;
            pos = t.end;
            t = lex(p->src, p->len, pos);
        }
        if (depth == 0 && t.kind == T_PUNCT && (t.punct == P_PLUS || t.punct == P_MINUS))
            return set_arith(p);
    }
    next(p);
    if ((n = set_arith(p)) == NULL)
        return NULL;
    if (!at_punct(p, P_RPAREN)) {
        syntax_error(p);
        return NULL;
    }
    next(p);
    return n;
}

static int parse_update(parser_t *p, store_expr_t *out)
{
    static const char *const long_names[] = {"", "STRING", "NUMBER", "BINARY", "BOOLEAN", "NULL", "SS", "NS", "BS", "LIST", "MAP"};
    store_expr_action_t *acts = NULL;
    store_expr_path_t *paths = NULL;
    size_t n = 0, cap = 0, pcap = 0;
    int seen[4] = {0, 0, 0, 0}, clause;

    if (clause_of(p, &p->cur) < 0) {
        syntax_error(p);
        return -1;
    }
    while ((clause = clause_of(p, &p->cur)) >= 0) {
        if (seen[clause])
            record(p, E_SECTION, "The \"%s\" section can only be used once in an update expression;", clause_names[clause]);
        seen[clause] = 1;
        next(p);
        for (;;) {
            store_expr_action_t *a;
            if (grow(p, (void **)&acts, &cap, n, sizeof(*acts)) != 0 || grow(p, (void **)&paths, &pcap, n, sizeof(*paths)) != 0)
                return -1;
            a = &acts[n];
            a->kind = (store_expr_action_kind_t)clause;
            a->value = NULL;
            if (p->cur.kind != T_NAME && p->cur.kind != T_IDENT) {
                syntax_error(p);
                return -1;
            }
            if (parse_path(p, &a->path) != 0)
                return -1;
            check_paths(p, paths, n, &a->path);
            paths[n] = a->path;
            if (clause == STORE_EXPR_SET) {
                if (!at_punct(p, P_EQ)) {
                    syntax_error(p);
                    return -1;
                }
                next(p);
                if ((a->value = set_value(p)) == NULL)
                    return -1;
            } else if (clause == STORE_EXPR_ADD || clause == STORE_EXPR_DELETE) {
                store_expr_node_t *v;
                store_expr_vtype_t t;
                if (p->cur.kind != T_VALUE) {
                    syntax_error(p);
                    return -1;
                }
                if ((v = value_node(p)) == NULL)
                    return -1;
                a->value = v;
                t = value_type(p, v);
                if (t != STORE_EXPR_VT_UNKNOWN && t != STORE_EXPR_VT_SS && t != STORE_EXPR_VT_NS && t != STORE_EXPR_VT_BS &&
                    !(clause == STORE_EXPR_ADD && t == STORE_EXPR_VT_N))
                    record(p, E_OPERAND, "Incorrect operand type for operator or function; operator: %s, operand type: %s",
                           clause_names[clause], long_names[t]);
            }
            n++;
            if (!at_punct(p, P_COMMA))
                break;
            next(p);
        }
    }
    if (p->cur.kind != T_EOF) {
        syntax_error(p);
        return -1;
    }
    out->actions = acts;
    out->nactions = n;
    return 0;
}

static int parse_projection(parser_t *p, store_expr_t *out)
{
    store_expr_path_t *paths = NULL;
    size_t n = 0, cap = 0;

    for (;;) {
        if (grow(p, (void **)&paths, &cap, n, sizeof(*paths)) != 0)
            return -1;
        if (p->cur.kind != T_NAME && p->cur.kind != T_IDENT) {
            syntax_error(p);
            return -1;
        }
        if (parse_path(p, &paths[n]) != 0)
            return -1;
        check_paths(p, paths, n, &paths[n]);
        n++;
        if (!at_punct(p, P_COMMA))
            break;
        next(p);
    }
    if (p->cur.kind != T_EOF) {
        syntax_error(p);
        return -1;
    }
    out->paths = paths;
    out->npaths = n;
    return 0;
}

int store_expr_parse(store_expr_kind_t kind, const char *src, size_t len, const store_expr_env_t *env, store_expr_t *out, char *err,
                     size_t errsize)
{
    parser_t p;
    size_t i;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    memset(&p, 0, sizeof(p));
    p.src = src;
    p.len = len;
    p.kind = kind;
    p.env = env;
    p.err = err;
    p.errsize = errsize;
    if (errsize > 0)
        err[0] = '\0';
    if (len > STORE_EXPR_MAX_SIZE) {
        fail(&p, STORE_EXPR_EINVALID, "Expression size has exceeded the maximum allowed size; expression size: %zu", len);
        return p.hard;
    }
    for (i = 0; i < len && is_space(src[i]); i++)
        ;
    if (i == len) {
        fail(&p, STORE_EXPR_EINVALID, "The expression can not be empty;");
        return p.hard;
    }
    p.cur = lex(src, len, 0);
    if (kind == STORE_EXPR_UPDATE) {
        rc = parse_update(&p, out);
    } else if (kind == STORE_EXPR_PROJECTION) {
        rc = parse_projection(&p, out);
    } else {
        int wrapped;
        const store_expr_node_t *root = cond_or(&p, &wrapped);
        if (root == NULL)
            rc = -1;
        else if (p.cur.kind != T_EOF) {
            syntax_error(&p);
            rc = -1;
        }
        out->cond = root;
    }
    if (rc == 0 && !p.hard) {
        for (i = 0; i < NSLOTS; i++) {
            if (p.msg[i] != NULL) {
                fail(&p, STORE_EXPR_EINVALID, "%s", p.msg[i]);
                break;
            }
        }
    }
    if (p.hard) {
        memset(out, 0, sizeof(*out));
        return p.hard;
    }
    out->kind = kind;
    return 0;
}

/* ---- key conditions ---- */

typedef struct keycond {
    const store_expr_node_t *node;
    const store_expr_elem_t *attr;
    int flipped; /* the attribute is not the first operand */
} keycond_t;

typedef struct keywalk {
    keycond_t conds[STORE_EXPR_MAX_OPERATORS + 1];
    size_t n;
} keywalk_t;

/* DynamoDB's walk of a key condition, in its order of checks: NULL, or the message. */
static const char *key_walk(const store_expr_node_t *n, keywalk_t *w)
{
    const store_expr_path_t *attr = NULL;
    size_t at = 0;

    switch (n->op) {
    case STORE_EXPR_OR:
        return "Invalid operator used in KeyConditionExpression: OR";
    case STORE_EXPR_NOT:
        return "Invalid operator used in KeyConditionExpression: NOT";
    case STORE_EXPR_IN:
        return "Invalid operator used in KeyConditionExpression: IN";
    case STORE_EXPR_NE:
        return "Invalid operator used in KeyConditionExpression: <>";
    case STORE_EXPR_ATTRIBUTE_EXISTS:
        return "Invalid operator used in KeyConditionExpression: attribute_exists";
    case STORE_EXPR_ATTRIBUTE_NOT_EXISTS:
        return "Invalid operator used in KeyConditionExpression: attribute_not_exists";
    case STORE_EXPR_ATTRIBUTE_TYPE:
        return "Invalid operator used in KeyConditionExpression: attribute_type";
    case STORE_EXPR_CONTAINS:
        return "Invalid operator used in KeyConditionExpression: contains";
    case STORE_EXPR_SIZE:
        return "KeyConditionExpressions cannot contain nested operations";
    case STORE_EXPR_BETWEEN:
        if (n->args[0]->op != STORE_EXPR_PATH)
            return "Invalid condition in KeyConditionExpression: BETWEEN operator must have the key attribute as its first operand";
        break;
    case STORE_EXPR_BEGINS_WITH:
        if (n->args[0]->op != STORE_EXPR_PATH)
            return "Invalid condition in KeyConditionExpression: begins_with operator must have the key attribute as its first "
                   "operand";
        break;
    default:
        break;
    }
    for (uint32_t i = 0; i < n->nargs; i++) {
        const store_expr_node_t *a = n->args[i];
        if (a->op == STORE_EXPR_PATH) {
            if (attr != NULL)
                return "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition";
            if (a->path.n > 1)
                return "KeyConditionExpressions cannot have conditions on nested attributes";
            attr = &a->path;
            at = i;
        } else if (a->op != STORE_EXPR_VALUE) {
            const char *msg = key_walk(a, w);
            if (msg != NULL)
                return msg;
        }
    }
    if (n->op == STORE_EXPR_AND)
        return NULL;
    if (attr == NULL)
        return "Invalid condition in KeyConditionExpression: No key attribute specified";
    for (size_t i = 0; i < w->n; i++)
        if (w->conds[i].attr->len == attr->elems[0].len &&
            memcmp(w->conds[i].attr->name, attr->elems[0].name, attr->elems[0].len) == 0)
            return "Invalid KeyConditionExpression: KeyConditionExpressions must only contain one condition per key";
    if (w->n < sizeof(w->conds) / sizeof(w->conds[0])) {
        w->conds[w->n].node = n;
        w->conds[w->n].attr = &attr->elems[0];
        w->conds[w->n].flipped = at != 0;
        w->n++;
    }
    return NULL;
}

static int elem_is(const store_expr_elem_t *e, const char *name, size_t len)
{
    return e->name != NULL && e->len == len && memcmp(e->name, name, len) == 0;
}

/* The index of the value operand of a comparison or begins_with. */
static size_t key_value(const store_expr_node_t *n)
{
    return n->args[0]->op == STORE_EXPR_VALUE ? n->args[0]->value : n->args[1]->value;
}

int store_expr_key_condition(const store_expr_t *expr, const char *pk, size_t pklen, const char *sk, size_t sklen,
                             store_expr_keycond_t *out, char *err, size_t errsize)
{
    keywalk_t w;
    const keycond_t *pkc = NULL, *skc = NULL;
    const char *msg;
    size_t nkeys = sk != NULL ? 2 : 1;

    memset(out, 0, sizeof(*out));
    w.n = 0;
    if (errsize > 0)
        err[0] = '\0';
    if (expr->cond == NULL) {
        snprintf(err, errsize, "Query condition missed key schema element: %.*s", (int)pklen, pk);
        return STORE_EXPR_EINVALID;
    }
    if ((msg = key_walk(expr->cond, &w)) != NULL) {
        snprintf(err, errsize, "%s", msg);
        return STORE_EXPR_EINVALID;
    }
    if (w.n > nkeys) {
        snprintf(err, errsize,
                 "The number of query conditions (%zu) exceeds the number of key attributes defined in the schema (%zu)", w.n,
                 nkeys);
        return STORE_EXPR_EINVALID;
    }
    for (size_t i = 0; i < w.n; i++) {
        if (elem_is(w.conds[i].attr, pk, pklen))
            pkc = &w.conds[i];
        else
            skc = &w.conds[i];
    }
    if (pkc == NULL) {
        snprintf(err, errsize, "Query condition missed key schema element: %.*s", (int)pklen, pk);
        return STORE_EXPR_EINVALID;
    }
    if (skc != NULL && !elem_is(skc->attr, sk, sklen)) {
        snprintf(err, errsize, "Query condition missed key schema element: %.*s", (int)sklen, sk);
        return STORE_EXPR_EINVALID;
    }
    if (pkc->node->op != STORE_EXPR_EQ) {
        snprintf(err, errsize, "Query key condition not supported");
        return STORE_EXPR_EINVALID;
    }
    out->pk_value = key_value(pkc->node);
    if (skc != NULL) {
        const store_expr_node_t *n = skc->node;
        out->sk_op = n->op;
        if (n->op == STORE_EXPR_BETWEEN) {
            out->sk_values[0] = n->args[1]->value;
            out->sk_values[1] = n->args[2]->value;
        } else {
            out->sk_values[0] = key_value(n);
            if (skc->flipped) {
                static const store_expr_op_t mirror[] = {[STORE_EXPR_EQ] = STORE_EXPR_EQ,
                                                         [STORE_EXPR_LT] = STORE_EXPR_GT,
                                                         [STORE_EXPR_LE] = STORE_EXPR_GE,
                                                         [STORE_EXPR_GT] = STORE_EXPR_LT,
                                                         [STORE_EXPR_GE] = STORE_EXPR_LE};
                if ((size_t)n->op < sizeof(mirror) / sizeof(mirror[0]))
                    out->sk_op = mirror[n->op];
            }
        }
    }
    return 0;
}

/* ---- the debug rendering ---- */

typedef struct out {
    char *buf;
    size_t size, len;
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    if (o->len < o->size) {
        size_t room = o->size - o->len - 1;
        memcpy(o->buf + o->len, s, n < room ? n : room);
        o->buf[o->len + (n < room ? n : room)] = '\0';
    }
    o->len += n;
}

static void puts_(out_t *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_path(out_t *o, const store_expr_path_t *path)
{
    for (size_t i = 0; i < path->n; i++) {
        const store_expr_elem_t *e = &path->elems[i];
        if (e->name == NULL) {
            char b[16];
            put(o, b, (size_t)snprintf(b, sizeof(b), "[%u]", (unsigned)e->index));
            continue;
        }
        int plain = e->len > 0 && is_alpha(e->name[0]);
        for (size_t j = 1; plain && j < e->len; j++)
            plain = is_word(e->name[j]);
        if (i > 0)
            put(o, ".", 1);
        if (!plain)
            put(o, "\"", 1);
        put(o, e->name, e->len);
        if (!plain)
            put(o, "\"", 1);
    }
}

static void put_node(out_t *o, const store_expr_node_t *n)
{
    char b[32];

    if (n->op == STORE_EXPR_PATH) {
        put_path(o, &n->path);
        return;
    }
    if (n->op == STORE_EXPR_VALUE) {
        put(o, b, (size_t)snprintf(b, sizeof(b), ":v%zu", n->value));
        return;
    }
    put(o, "(", 1);
    puts_(o, op_name(n->op));
    for (uint32_t i = 0; i < n->nargs; i++) {
        put(o, " ", 1);
        put_node(o, n->args[i]);
    }
    put(o, ")", 1);
}

size_t store_expr_format(const store_expr_t *expr, char *buf, size_t size)
{
    out_t o = {buf, size, 0};

    if (size > 0)
        buf[0] = '\0';
    if (expr->kind == STORE_EXPR_PROJECTION) {
        for (size_t i = 0; i < expr->npaths; i++) {
            if (i > 0)
                put(&o, ", ", 2);
            put_path(&o, &expr->paths[i]);
        }
    } else if (expr->kind == STORE_EXPR_UPDATE) {
        for (size_t i = 0; i < expr->nactions; i++) {
            const store_expr_action_t *a = &expr->actions[i];
            if (i > 0)
                put(&o, " ", 1);
            put(&o, "(", 1);
            puts_(&o, clause_names[a->kind]);
            put(&o, " ", 1);
            put_path(&o, &a->path);
            if (a->value != NULL) {
                put(&o, " ", 1);
                put_node(&o, a->value);
            }
            put(&o, ")", 1);
        }
    } else if (expr->cond != NULL) {
        put_node(&o, expr->cond);
    }
    return o.len;
}
