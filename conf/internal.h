/*
 * Declarations shared by the files of conf/. Never included outside conf/.
 *
 *   node.c  the generic machinery: the load context, errors and key paths, the allocation arena, units, typed readers
 *           of YAML nodes, and the public entry points (conf_load, conf_load_string, conf_free).
 *   conf.c  the schema: what each section of the file may hold and how it maps onto the structs of conf.h.
 *
 * Errors: every cn_* function that can fail formats "FILE:LINE: KEY: message" into the caller's buffer and longjmp()s
 * back to the loader (the only setjmp() is in node.c); none of them returns on failure. Everything they allocate is an
 * arena chunk owned by the conf being loaded, so unwinding leaks nothing.
 *
 * Key paths: a reader reports errors against ctx_t.key, the dotted path of the node being read. Callers bracket each
 * child with k = cn_key_field(...) / cn_key_index(...) and cn_key_pop(c, k).
 */
#ifndef EDGEPROXY_CONF_INTERNAL_H
#define EDGEPROXY_CONF_INTERNAL_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>
#include "conf/conf.h"

/* The conf as allocated: the public struct plus the arena that owns every pointer inside it. */
typedef struct conf_impl {
    conf_t pub; /* first: a conf_t * is a struct conf_impl * */
    struct conf_chunk *chunks;
} conf_impl_t;

/* The state of one load. */
typedef struct ctx {
    const char *name;    /* file name in messages */
    const char *basedir; /* relative paths resolve against this */
    conf_impl_t *impl;
    yaml_document_t *doc;
    char key[1024]; /* dotted key path of the node being read */
    size_t keylen;
    char *errbuf;
    size_t errlen;
    jmp_buf fail;
} ctx_t;

/* Rates: N/... with N in 1..CONF_MAX_RATE_COUNT over a period of 1ms..CONF_MAX_RATE_PER_MS (one day). */
#define CONF_MAX_RATE_COUNT 1000000000ull
#define CONF_MAX_RATE_PER_MS 86400000ull

/* ---- conf.c: the schema ---- */

/* Reads the whole document into c->impl->pub; root is NULL for an empty file. */
void cn_parse_root(ctx_t *c, yaml_node_t *root);

/* ---- node.c: units ---- */

/* conf_parse_rate() telling why: 0, -1 a bad form, -2 the count out of range, -3 the period out of range. */
int cn_parse_rate(const char *s, uint64_t *count, uint64_t *per_ms);
/* conf_parse_quota() telling why: 0, -1 a bad form, -2 the count out of range. */
int cn_parse_quota(const char *s, uint64_t *limit, conf_period_t *period);

/* ---- node.c: errors and key paths ---- */

/* Fails at `line` with the message "FILE:LINE: KEY: fmt..." (no KEY part at the top level). */
_Noreturn void cn_fail(ctx_t *c, unsigned long line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Fails with `msg` on the key `name` below the current one (used for "is required" with the enclosing mapping's line). */
_Noreturn void cn_fail_field(ctx_t *c, const char *name, unsigned long line, const char *msg);
/* Appends formatted text to the key path; returns the old length for cn_key_pop(). */
size_t cn_key_push(ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Truncates the key path back to `old`. */
void cn_key_pop(ctx_t *c, size_t old);
/* Appends ".name" (or "name" at the top level); returns the old length. */
size_t cn_key_field(ctx_t *c, const char *name, size_t len);
/* Appends "[i]"; returns the old length. */
size_t cn_key_index(ctx_t *c, size_t i);

/* The 1-based line of a node (1 for NULL). */
static inline unsigned long cn_line_of(const yaml_node_t *n)
{
    return n != NULL ? (unsigned long)n->start_mark.line + 1 : 1;
}

/* ---- node.c: arena and strings ---- */

/* Zeroed room for n objects of `size` bytes, owned by the conf. */
void *cn_arena_alloc(ctx_t *c, size_t n, size_t size);
/* A NUL-terminated copy of s[0..len) in the arena. */
char *cn_arena_strndup(ctx_t *c, const char *s, size_t len);
/* A formatted string in the arena. */
char *cn_arena_printf(ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Lower-cases s in place (ASCII). */
void cn_lower(char *s);

/* ---- node.c: typed node readers (each fails on a wrong type or an out-of-range value) ---- */

/* The node with the given index in the document being loaded. */
static inline yaml_node_t *cn_node_at(ctx_t *c, int index)
{
    return yaml_document_get_node(c->doc, index);
}

/* The number of pairs of a mapping node. */
static inline size_t cn_map_count(yaml_node_t *n)
{
    return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}

/* The text of a scalar node (not copied); `what` is the message when n is not a scalar. Embedded NULs are rejected. */
const char *cn_scalar(ctx_t *c, yaml_node_t *n, const char *what, size_t *len);
/* A copy of a scalar's text. */
char *cn_get_string(ctx_t *c, yaml_node_t *n);
/* A copy of a scalar's text, which must not be empty. */
char *cn_get_nonempty_string(ctx_t *c, yaml_node_t *n);
/* p as is when absolute, else joined to the conf file's directory. */
char *cn_resolve_path(ctx_t *c, const char *p);
/* A non-empty path, resolved by cn_resolve_path(). */
char *cn_get_path(ctx_t *c, yaml_node_t *n);
/* true/yes or false/no (any case): 1 or 0. */
int cn_get_bool(ctx_t *c, yaml_node_t *n);
/* A decimal integer within [min, max]. */
uint64_t cn_get_int(ctx_t *c, yaml_node_t *n, uint64_t min, uint64_t max);
/* A duration such as "5s" (ms, s, m, h), in milliseconds within [min, max]. */
uint64_t cn_get_duration(ctx_t *c, yaml_node_t *n, uint64_t min, uint64_t max);
/* A size such as "10MiB" (B, KB, MB, GB, KiB, MiB, GiB or none), in bytes up to max. */
uint64_t cn_get_size(ctx_t *c, yaml_node_t *n, uint64_t max);
/* A rate such as "100/s" or "5/30s" (see conf_parse_rate). */
void cn_get_rate(ctx_t *c, yaml_node_t *n, uint64_t *count, uint64_t *per_ms);
/* A quota such as "10000/day" (see conf_parse_quota). */
void cn_get_quota(ctx_t *c, yaml_node_t *n, conf_quota_t *q);
/* The items of a sequence node (failing when it is not one, or empty and `nonempty`); *count receives their number. */
yaml_node_item_t *cn_get_seq(ctx_t *c, yaml_node_t *n, size_t *count, int nonempty);
/* Fails unless n is a mapping. */
void cn_require_map(ctx_t *c, yaml_node_t *n);

/*
 * Reads a mapping with a fixed set of keys: vals[i] receives the value node of names[i] (NULL when absent). Keys must be
 * scalars; unknown and repeated keys are errors. Use CN_GET_FIELDS with arrays so the two lengths are checked.
 */
void cn_get_fields(ctx_t *c, yaml_node_t *n, const char *const *names, size_t nnames, yaml_node_t **vals);

#define CN_GET_FIELDS(c, n, names, vals)                                                                                           \
    do {                                                                                                                           \
        _Static_assert(sizeof(names) / sizeof(names[0]) == sizeof(vals) / sizeof(vals[0]), "names and vals differ");               \
        cn_get_fields(c, n, names, sizeof(names) / sizeof(names[0]), vals);                                                        \
    } while (0)

#endif
