/*
 * conf/node.c: the generic machinery of the YAML conf loader (libyaml's document API); the schema is in conf.c.
 *
 *   - errors and key paths: the first problem formats "FILE:LINE: KEY: message" and longjmp()s back to
 *     walk_protected(), the only setjmp();
 *   - the arena: every allocation made while loading is a chunk in a list owned by the conf (struct conf_impl wraps
 *     the public conf_t), so conf_free() releases everything at once and a failed load releases its partial result the
 *     same way. Nothing but arena chunks is allocated during the walk, so unwinding leaks nothing;
 *   - units (durations, sizes, rates, quotas) and typed readers of YAML nodes;
 *   - the entry points: conf_load(), conf_load_string(), conf_free().
 */
#include "conf/internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct conf_chunk {
    struct conf_chunk *next;
    max_align_t data[];
};

/* ---- errors and key paths ---- */

static void set_error(char *errbuf, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_error(char *errbuf, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (errbuf == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

_Noreturn void cn_fail(ctx_t *c, unsigned long line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->keylen != 0)
        set_error(c->errbuf, c->errlen, "%s:%lu: %s: %s", c->name, line, c->key, msg);
    else
        set_error(c->errbuf, c->errlen, "%s:%lu: %s", c->name, line, msg);
    longjmp(c->fail, 1);
}

size_t cn_key_push(ctx_t *c, const char *fmt, ...)
{
    size_t old = c->keylen;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(c->key + old, sizeof(c->key) - old, fmt, ap);
    va_end(ap);
    if (n > 0)
        c->keylen = old + (size_t)n < sizeof(c->key) ? old + (size_t)n : sizeof(c->key) - 1;
    return old;
}

void cn_key_pop(ctx_t *c, size_t old)
{
    c->keylen = old;
    c->key[old] = '\0';
}

/* Appends ".name" (or "name" at the top level). */
size_t cn_key_field(ctx_t *c, const char *name, size_t len)
{
    return cn_key_push(c, c->keylen != 0 ? ".%.*s" : "%.*s", (int)len, name);
}

size_t cn_key_index(ctx_t *c, size_t i)
{
    return cn_key_push(c, "[%zu]", i);
}

/* Fails with `msg` on the key `name` below the current one (used for "is required" with the enclosing mapping's line). */
_Noreturn void cn_fail_field(ctx_t *c, const char *name, unsigned long line, const char *msg)
{
    cn_key_field(c, name, strlen(name));
    cn_fail(c, line, "%s", msg);
}

/* ---- arena ---- */

void *cn_arena_alloc(ctx_t *c, size_t n, size_t size)
{
    struct conf_chunk *ch;

    if (size != 0 && n > (SIZE_MAX - sizeof(*ch)) / size)
        cn_fail(c, 1, "out of memory");
    if ((ch = calloc(1, sizeof(*ch) + n * size)) == NULL)
        cn_fail(c, 1, "out of memory");
    ch->next = c->impl->chunks;
    c->impl->chunks = ch;
    return ch->data;
}

char *cn_arena_strndup(ctx_t *c, const char *s, size_t len)
{
    char *p = cn_arena_alloc(c, len + 1, 1);

    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *cn_arena_printf(ctx_t *c, const char *fmt, ...)
{
    va_list ap;
    int n;
    char *p;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        cn_fail(c, 1, "out of memory");
    p = cn_arena_alloc(c, (size_t)n + 1, 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void cn_lower(char *s)
{
    for (; *s != '\0'; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* ---- units ---- */

typedef struct unit {
    const char *name;
    uint64_t mul;
} unit_t;

static const unit_t duration_units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
static const unit_t size_units[] = {{"", 1},
                                    {"B", 1},
                                    {"KB", 1000},
                                    {"MB", 1000 * 1000},
                                    {"GB", 1000 * 1000 * 1000},
                                    {"KiB", 1024},
                                    {"MiB", 1024 * 1024},
                                    {"GiB", 1024 * 1024 * 1024}};
static const unit_t no_units[] = {{"", 1}};

#define NUNITS(u) (sizeof(u) / sizeof((u)[0]))

/* Decimal digits followed by one of `units`. Returns 0, -1 on a bad form, -2 when the value does not fit in 64 bits. */
static int parse_with_unit(const char *s, const unit_t *units, size_t nunits, uint64_t *out)
{
    uint64_t v = 0;
    int overflow = 0;

    if (s == NULL || !isdigit((unsigned char)*s))
        return -1;
    for (; isdigit((unsigned char)*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            overflow = 1;
        else
            v = v * 10 + d;
    }
    for (size_t i = 0; i < nunits; i++) {
        if (strcmp(s, units[i].name) == 0) {
            if (overflow || v > UINT64_MAX / units[i].mul)
                return -2;
            *out = v * units[i].mul;
            return 0;
        }
    }
    return -1;
}

int conf_parse_duration(const char *s, uint64_t *ms)
{
    return parse_with_unit(s, duration_units, NUNITS(duration_units), ms) == 0 ? 0 : -1;
}

int conf_parse_size(const char *s, uint64_t *bytes)
{
    return parse_with_unit(s, size_units, NUNITS(size_units), bytes) == 0 ? 0 : -1;
}

/* Decimal digits ending at '/': *rest points past the '/'. Returns 0, -1 on a bad form, -2 when over `max` or 0. */
static int parse_count(const char *s, uint64_t max, uint64_t *out, const char **rest)
{
    uint64_t v = 0;
    int over = 0;

    if (s == NULL || !isdigit((unsigned char)*s))
        return -1;
    for (; isdigit((unsigned char)*s); s++) {
        v = v * 10 + (unsigned)(*s - '0');
        if (v > max) {
            over = 1;
            v = max; /* keeps the arithmetic in range; the value is rejected anyway */
        }
    }
    if (*s != '/')
        return -1;
    *rest = s + 1;
    if (over || v == 0)
        return -2;
    *out = v;
    return 0;
}

int cn_parse_rate(const char *s, uint64_t *count, uint64_t *per_ms)
{
    static const unit_t bare[] = {{"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    uint64_t n = 0, ms = UINT64_MAX;
    const char *per;
    int rc = parse_count(s, CONF_MAX_RATE_COUNT, &n, &per), prc = -1;

    if (rc == -1)
        return -1;
    for (size_t i = 0; i < NUNITS(bare); i++)
        if (strcmp(per, bare[i].name) == 0) {
            ms = bare[i].mul;
            prc = 0;
        }
    if (prc != 0 && (prc = parse_with_unit(per, duration_units, NUNITS(duration_units), &ms)) == -1)
        return -1;
    if (rc == -2)
        return -2;
    if (prc == -2 || ms < 1 || ms > CONF_MAX_RATE_PER_MS)
        return -3;
    *count = n;
    *per_ms = ms;
    return 0;
}

int conf_parse_rate(const char *s, uint64_t *count, uint64_t *per_ms)
{
    return cn_parse_rate(s, count, per_ms) == 0 ? 0 : -1;
}

int cn_parse_quota(const char *s, uint64_t *limit, conf_period_t *period)
{
    static const struct {
        const char *name;
        conf_period_t period;
    } periods[] = {{"day", CONF_PERIOD_DAY}, {"week", CONF_PERIOD_WEEK}, {"month", CONF_PERIOD_MONTH}};
    uint64_t n = 0;
    const char *per;
    int rc = parse_count(s, CONF_MAX_QUOTA, &n, &per);

    if (rc == -1)
        return -1;
    for (size_t i = 0; i < sizeof(periods) / sizeof(periods[0]); i++) {
        if (strcmp(per, periods[i].name) == 0) {
            if (rc != 0)
                return rc;
            *limit = n;
            *period = periods[i].period;
            return 0;
        }
    }
    return -1;
}

int conf_parse_quota(const char *s, uint64_t *limit, conf_period_t *period)
{
    return cn_parse_quota(s, limit, period) == 0 ? 0 : -1;
}

/* "29s", "50ms", "10m", "1h" for messages. */
static void format_duration(char *buf, size_t len, uint64_t ms)
{
    if (ms != 0 && ms % 3600000 == 0)
        snprintf(buf, len, "%lluh", (unsigned long long)(ms / 3600000));
    else if (ms != 0 && ms % 60000 == 0)
        snprintf(buf, len, "%llum", (unsigned long long)(ms / 60000));
    else if (ms % 1000 == 0)
        snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
    else
        snprintf(buf, len, "%llums", (unsigned long long)ms);
}

static void format_size(char *buf, size_t len, uint64_t n)
{
    if (n != 0 && n % (1024 * 1024 * 1024) == 0)
        snprintf(buf, len, "%lluGiB", (unsigned long long)(n >> 30));
    else if (n != 0 && n % (1024 * 1024) == 0)
        snprintf(buf, len, "%lluMiB", (unsigned long long)(n >> 20));
    else if (n != 0 && n % 1024 == 0)
        snprintf(buf, len, "%lluKiB", (unsigned long long)(n >> 10));
    else
        snprintf(buf, len, "%llu", (unsigned long long)n);
}

/* ---- typed node readers ---- */

/* The text of a scalar node; `what` is the message when the node is not a scalar. Embedded NULs are rejected. */
const char *cn_scalar(ctx_t *c, yaml_node_t *n, const char *what, size_t *len)
{
    if (n->type != YAML_SCALAR_NODE)
        cn_fail(c, cn_line_of(n), "%s", what);
    if (memchr(n->data.scalar.value, '\0', n->data.scalar.length) != NULL)
        cn_fail(c, cn_line_of(n), "must not contain NUL");
    if (len != NULL)
        *len = n->data.scalar.length;
    return (const char *)n->data.scalar.value;
}

char *cn_get_string(ctx_t *c, yaml_node_t *n)
{
    size_t len;
    const char *s = cn_scalar(c, n, "expected a string", &len);

    return cn_arena_strndup(c, s, len);
}

char *cn_get_nonempty_string(ctx_t *c, yaml_node_t *n)
{
    char *s = cn_get_string(c, n);

    if (*s == '\0')
        cn_fail(c, cn_line_of(n), "must not be empty");
    return s;
}

char *cn_resolve_path(ctx_t *c, const char *p)
{
    size_t blen = strlen(c->basedir);

    if (p[0] == '/')
        return cn_arena_strndup(c, p, strlen(p));
    return cn_arena_printf(c, "%s%s%s", c->basedir, blen != 0 && c->basedir[blen - 1] == '/' ? "" : "/", p);
}

char *cn_get_path(ctx_t *c, yaml_node_t *n)
{
    return cn_resolve_path(c, cn_get_nonempty_string(c, n));
}

int cn_get_bool(ctx_t *c, yaml_node_t *n)
{
    static const char *const yes[] = {"true", "yes"}, *const no[] = {"false", "no"};
    const char *s = cn_scalar(c, n, "expected true or false", NULL);

    for (size_t i = 0; i < 2; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return 1;
        if (strcasecmp(s, no[i]) == 0)
            return 0;
    }
    cn_fail(c, cn_line_of(n), "expected true or false");
}

uint64_t cn_get_int(ctx_t *c, yaml_node_t *n, uint64_t min, uint64_t max)
{
    const char *s = cn_scalar(c, n, "expected an integer", NULL);
    int neg = *s == '-', rc;
    uint64_t v = 0;

    rc = parse_with_unit(s + neg, no_units, NUNITS(no_units), &v);
    if (rc == -1)
        cn_fail(c, cn_line_of(n), "expected an integer");
    if (rc == -2 || (neg && v != 0) || v < min || v > max)
        cn_fail(c, cn_line_of(n), "must be between %llu and %llu", (unsigned long long)min, (unsigned long long)max);
    return v;
}

uint64_t cn_get_duration(ctx_t *c, yaml_node_t *n, uint64_t min, uint64_t max)
{
    const char *s = cn_scalar(c, n, "expected a duration such as 5s", NULL);
    uint64_t ms = UINT64_MAX;
    char a[32], b[32];

    if (parse_with_unit(s, duration_units, NUNITS(duration_units), &ms) == -1)
        cn_fail(c, cn_line_of(n), "bad duration \"%s\" (use ms, s, m or h)", s);
    if (ms < min || ms > max) { /* also an overflow: ms stays UINT64_MAX */
        format_duration(a, sizeof(a), min);
        format_duration(b, sizeof(b), max);
        cn_fail(c, cn_line_of(n), "must be between %s and %s", a, b);
    }
    return ms;
}

uint64_t cn_get_size(ctx_t *c, yaml_node_t *n, uint64_t max)
{
    const char *s = cn_scalar(c, n, "expected a size such as 10MiB", NULL);
    uint64_t v = UINT64_MAX;
    char b[32];

    if (parse_with_unit(s, size_units, NUNITS(size_units), &v) == -1)
        cn_fail(c, cn_line_of(n), "bad size \"%s\" (use B, KB, MB, GB, KiB, MiB or GiB)", s);
    if (v > max) { /* also an overflow: v stays UINT64_MAX */
        format_size(b, sizeof(b), max);
        cn_fail(c, cn_line_of(n), "must be at most %s", b);
    }
    return v;
}

void cn_get_rate(ctx_t *c, yaml_node_t *n, uint64_t *count, uint64_t *per_ms)
{
    const char *s = cn_scalar(c, n, "expected a rate such as 100/s", NULL);
    char b[32];

    switch (cn_parse_rate(s, count, per_ms)) {
    case 0:
        return;
    case -2:
        cn_fail(c, cn_line_of(n), "the count must be between 1 and %llu", (unsigned long long)CONF_MAX_RATE_COUNT);
    case -3:
        format_duration(b, sizeof(b), CONF_MAX_RATE_PER_MS);
        cn_fail(c, cn_line_of(n), "the period must be between 1ms and %s", b);
    default:
        cn_fail(c, cn_line_of(n), "bad rate \"%s\" (use N/s, N/m, N/h, N/d or N/DURATION such as 5/30s)", s);
    }
}

void cn_get_quota(ctx_t *c, yaml_node_t *n, conf_quota_t *q)
{
    const char *s = cn_scalar(c, n, "expected a quota such as 10000/day", NULL);

    switch (cn_parse_quota(s, &q->limit, &q->period)) {
    case 0:
        return;
    case -2:
        cn_fail(c, cn_line_of(n), "the count must be between 1 and %llu", (unsigned long long)CONF_MAX_QUOTA);
    default:
        cn_fail(c, cn_line_of(n), "bad quota \"%s\" (use N/day, N/week or N/month)", s);
    }
}

/* The items of a sequence node (failing when it is not one, or empty and `nonempty`). */
yaml_node_item_t *cn_get_seq(ctx_t *c, yaml_node_t *n, size_t *count, int nonempty)
{
    if (n->type != YAML_SEQUENCE_NODE)
        cn_fail(c, cn_line_of(n), "expected a sequence");
    *count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (nonempty && *count == 0)
        cn_fail(c, cn_line_of(n), "must not be empty");
    return n->data.sequence.items.start;
}

void cn_require_map(ctx_t *c, yaml_node_t *n)
{
    if (n->type != YAML_MAPPING_NODE)
        cn_fail(c, cn_line_of(n), "expected a mapping");
}

/*
 * Reads a mapping with a fixed set of keys: vals[i] receives the value node of names[i] (NULL when absent). Keys must be
 * scalars; unknown and repeated keys are errors.
 */
void cn_get_fields(ctx_t *c, yaml_node_t *n, const char *const *names, size_t nnames, yaml_node_t **vals)
{
    cn_require_map(c, n);
    for (size_t i = 0; i < nnames; i++)
        vals[i] = NULL;
    for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = cn_node_at(c, pair->key);
        size_t len, i;
        const char *name = cn_scalar(c, k, "keys must be strings", &len);
        for (i = 0; i < nnames; i++)
            if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
                break;
        if (i == nnames) {
            cn_key_field(c, name, len);
            cn_fail(c, cn_line_of(k), "unknown key");
        }
        if (vals[i] != NULL) {
            cn_key_field(c, name, len);
            cn_fail(c, cn_line_of(k), "duplicate key");
        }
        vals[i] = cn_node_at(c, pair->value);
    }
}

/* ---- loading ---- */

/* The only setjmp(): returns 0, or -1 after cn_fail() wrote the message. */
static int walk_protected(ctx_t *c, yaml_node_t *root)
{
    if (setjmp(c->fail) != 0)
        return -1;
    c->impl->pub.file = cn_arena_strndup(c, c->name, strlen(c->name));
    cn_parse_root(c, root);
    return 0;
}

static int load(const char *yaml, size_t len, const char *name, const char *basedir, conf_t **out, char *errbuf, size_t errlen)
{
    ctx_t c;
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    int ret = -1;

    *out = NULL;
    memset(&c, 0, sizeof(c));
    c.name = name;
    c.basedir = basedir;
    c.errbuf = errbuf;
    c.errlen = errlen;
    c.doc = &doc;
    if ((c.impl = calloc(1, sizeof(*c.impl))) == NULL) {
        set_error(errbuf, errlen, "%s: out of memory", name);
        return -1;
    }

    if (!yaml_parser_initialize(&parser)) {
        set_error(errbuf, errlen, "%s: out of memory", name);
        free(c.impl);
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    if (!yaml_parser_load(&parser, &doc))
        goto yaml_error;
    if (yaml_document_get_root_node(&doc) != NULL) {
        /* a second document in the same file is almost certainly a mistake */
        if (!yaml_parser_load(&parser, &extra)) {
            yaml_document_delete(&doc);
            goto yaml_error;
        }
        if (yaml_document_get_root_node(&extra) != NULL) {
            set_error(errbuf, errlen, "%s:%lu: only one YAML document is allowed", name, (unsigned long)extra.start_mark.line + 1);
            yaml_document_delete(&extra);
            yaml_document_delete(&doc);
            goto done;
        }
        yaml_document_delete(&extra);
    }

    ret = walk_protected(&c, yaml_document_get_root_node(&doc));
    yaml_document_delete(&doc);
    goto done;

yaml_error : {
    unsigned long line = (unsigned long)parser.problem_mark.line + 1;
    if (parser.error == YAML_READER_ERROR) { /* the reader runs ahead of the marks: count lines up to the bad byte */
        line = 1;
        for (size_t i = 0; i < parser.problem_offset && i < len; i++)
            line += yaml[i] == '\n';
    }
    set_error(errbuf, errlen, "%s:%lu: %s", name, line, parser.problem != NULL ? parser.problem : "YAML error");
}
done:
    yaml_parser_delete(&parser);
    if (ret == 0)
        *out = &c.impl->pub;
    else
        conf_free(&c.impl->pub);
    return ret;
}

int conf_load_string(const char *yaml, size_t len, const char *name, const char *basedir, conf_t **out, char *errbuf, size_t errlen)
{
    return load(yaml, len, name != NULL ? name : "<string>", basedir != NULL && *basedir != '\0' ? basedir : ".", out, errbuf,
                errlen);
}

int conf_load(const char *path, conf_t **out, char *errbuf, size_t errlen)
{
    FILE *fp;
    char *buf = NULL, *dir;
    size_t len = 0, cap = 0;
    const char *slash;
    int ret;

    *out = NULL;
    if ((fp = fopen(path, "rb")) == NULL) {
        set_error(errbuf, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        size_t n;
        if (len == cap) {
            char *nbuf = realloc(buf, cap = cap != 0 ? cap * 2 : 8192);
            if (nbuf == NULL) {
                set_error(errbuf, errlen, "%s: out of memory", path);
                goto error;
            }
            buf = nbuf;
        }
        n = fread(buf + len, 1, cap - len, fp);
        len += n;
        if (n == 0) {
            if (ferror(fp)) {
                set_error(errbuf, errlen, "%s: %s", path, strerror(errno));
                goto error;
            }
            break;
        }
    }
    fclose(fp);

    if ((slash = strrchr(path, '/')) == NULL)
        dir = strdup(".");
    else
        dir = strndup(path, slash == path ? 1 : (size_t)(slash - path));
    if (dir == NULL) {
        set_error(errbuf, errlen, "%s: out of memory", path);
        free(buf);
        return -1;
    }
    ret = load(buf, len, path, dir, out, errbuf, errlen);
    free(dir);
    free(buf);
    return ret;

error:
    fclose(fp);
    free(buf);
    return -1;
}

void conf_free(conf_t *conf)
{
    conf_impl_t *impl = (conf_impl_t *)conf;
    struct conf_chunk *ch, *next;

    if (impl == NULL)
        return;
    for (ch = impl->chunks; ch != NULL; ch = next) {
        next = ch->next;
        free(ch);
    }
    free(impl);
}
