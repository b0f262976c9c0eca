/*
 * conf: loads the YAML configuration (libyaml's document API) into the typed structs of conf.h.
 *
 * Memory: every allocation made while loading is a chunk in a list owned by the conf (struct conf_impl wraps the public
 * conf_t), so conf_free() releases everything at once and a failed load releases its partial result the same way.
 *
 * Errors: the walk is a tree of small functions; the first problem formats the message and longjmp()s back to
 * load_document(), which is the only place that calls setjmp(). Nothing but arena chunks is allocated during the walk,
 * so unwinding leaks nothing.
 */
#include "conf/conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#define CONF_MAX_THREADS 256
#define CONF_MIN_IDLE_TIMEOUT_MS 1000u
#define CONF_MAX_IDLE_TIMEOUT_MS 3600000u
#define CONF_MAX_SHUTDOWN_TIMEOUT_MS 600000u

struct conf_chunk {
    struct conf_chunk *next;
    max_align_t data[];
};

typedef struct conf_impl {
    conf_t pub; /* first: a conf_t * is a struct conf_impl * */
    struct conf_chunk *chunks;
} conf_impl_t;

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

static _Noreturn void fail(ctx_t *c, unsigned long line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static _Noreturn void fail(ctx_t *c, unsigned long line, const char *fmt, ...)
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

static size_t key_push(ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t key_push(ctx_t *c, const char *fmt, ...)
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

static void key_pop(ctx_t *c, size_t old)
{
    c->keylen = old;
    c->key[old] = '\0';
}

/* Appends ".name" (or "name" at the top level). */
static size_t key_field(ctx_t *c, const char *name, size_t len)
{
    return key_push(c, c->keylen != 0 ? ".%.*s" : "%.*s", (int)len, name);
}

static size_t key_index(ctx_t *c, size_t i)
{
    return key_push(c, "[%zu]", i);
}

static unsigned long line_of(const yaml_node_t *n)
{
    return n != NULL ? (unsigned long)n->start_mark.line + 1 : 1;
}

/* Fails with `msg` on the key `name` below the current one (used for "is required" with the enclosing mapping's line). */
static _Noreturn void fail_field(ctx_t *c, const char *name, unsigned long line, const char *msg)
{
    key_field(c, name, strlen(name));
    fail(c, line, "%s", msg);
}

/* ---- arena ---- */

static void *arena_alloc(ctx_t *c, size_t n, size_t size)
{
    struct conf_chunk *ch;

    if (size != 0 && n > (SIZE_MAX - sizeof(*ch)) / size)
        fail(c, 1, "out of memory");
    if ((ch = calloc(1, sizeof(*ch) + n * size)) == NULL)
        fail(c, 1, "out of memory");
    ch->next = c->impl->chunks;
    c->impl->chunks = ch;
    return ch->data;
}

static char *arena_strndup(ctx_t *c, const char *s, size_t len)
{
    char *p = arena_alloc(c, len + 1, 1);

    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

static char *arena_printf(ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *arena_printf(ctx_t *c, const char *fmt, ...)
{
    va_list ap;
    int n;
    char *p;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        fail(c, 1, "out of memory");
    p = arena_alloc(c, (size_t)n + 1, 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

static void lower(char *s)
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

unsigned conf_method_bit(const char *name, size_t len)
{
    static const struct {
        const char *name;
        unsigned bit;
    } methods[] = {{"GET", CONF_M_GET},     {"HEAD", CONF_M_HEAD},     {"POST", CONF_M_POST},      {"PUT", CONF_M_PUT},
                   {"PATCH", CONF_M_PATCH}, {"DELETE", CONF_M_DELETE}, {"OPTIONS", CONF_M_OPTIONS}};

    if (name == NULL)
        return 0;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strlen(methods[i].name) == len && strncasecmp(methods[i].name, name, len) == 0)
            return methods[i].bit;
    return 0;
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

static yaml_node_t *node_at(ctx_t *c, int index)
{
    return yaml_document_get_node(c->doc, index);
}

/* The text of a scalar node; `what` is the message when the node is not a scalar. Embedded NULs are rejected. */
static const char *scalar(ctx_t *c, yaml_node_t *n, const char *what, size_t *len)
{
    if (n->type != YAML_SCALAR_NODE)
        fail(c, line_of(n), "%s", what);
    if (memchr(n->data.scalar.value, '\0', n->data.scalar.length) != NULL)
        fail(c, line_of(n), "must not contain NUL");
    if (len != NULL)
        *len = n->data.scalar.length;
    return (const char *)n->data.scalar.value;
}

static char *get_string(ctx_t *c, yaml_node_t *n)
{
    size_t len;
    const char *s = scalar(c, n, "expected a string", &len);

    return arena_strndup(c, s, len);
}

static char *get_nonempty_string(ctx_t *c, yaml_node_t *n)
{
    char *s = get_string(c, n);

    if (*s == '\0')
        fail(c, line_of(n), "must not be empty");
    return s;
}

static char *resolve_path(ctx_t *c, const char *p)
{
    size_t blen = strlen(c->basedir);

    if (p[0] == '/')
        return arena_strndup(c, p, strlen(p));
    return arena_printf(c, "%s%s%s", c->basedir, blen != 0 && c->basedir[blen - 1] == '/' ? "" : "/", p);
}

static char *get_path(ctx_t *c, yaml_node_t *n)
{
    return resolve_path(c, get_nonempty_string(c, n));
}

static int get_bool(ctx_t *c, yaml_node_t *n)
{
    static const char *const yes[] = {"true", "yes"}, *const no[] = {"false", "no"};
    const char *s = scalar(c, n, "expected true or false", NULL);

    for (size_t i = 0; i < 2; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return 1;
        if (strcasecmp(s, no[i]) == 0)
            return 0;
    }
    fail(c, line_of(n), "expected true or false");
}

static uint64_t get_int(ctx_t *c, yaml_node_t *n, uint64_t min, uint64_t max)
{
    const char *s = scalar(c, n, "expected an integer", NULL);
    int neg = *s == '-', rc;
    uint64_t v = 0;

    rc = parse_with_unit(s + neg, no_units, NUNITS(no_units), &v);
    if (rc == -1)
        fail(c, line_of(n), "expected an integer");
    if (rc == -2 || (neg && v != 0) || v < min || v > max)
        fail(c, line_of(n), "must be between %llu and %llu", (unsigned long long)min, (unsigned long long)max);
    return v;
}

static uint64_t get_duration(ctx_t *c, yaml_node_t *n, uint64_t min, uint64_t max)
{
    const char *s = scalar(c, n, "expected a duration such as 5s", NULL);
    uint64_t ms = UINT64_MAX;
    char a[32], b[32];

    if (parse_with_unit(s, duration_units, NUNITS(duration_units), &ms) == -1)
        fail(c, line_of(n), "bad duration \"%s\" (use ms, s, m or h)", s);
    if (ms < min || ms > max) { /* also an overflow: ms stays UINT64_MAX */
        format_duration(a, sizeof(a), min);
        format_duration(b, sizeof(b), max);
        fail(c, line_of(n), "must be between %s and %s", a, b);
    }
    return ms;
}

static uint64_t get_size(ctx_t *c, yaml_node_t *n, uint64_t max)
{
    const char *s = scalar(c, n, "expected a size such as 10MiB", NULL);
    uint64_t v = UINT64_MAX;
    char b[32];

    if (parse_with_unit(s, size_units, NUNITS(size_units), &v) == -1)
        fail(c, line_of(n), "bad size \"%s\" (use B, KB, MB, GB, KiB, MiB or GiB)", s);
    if (v > max) { /* also an overflow: v stays UINT64_MAX */
        format_size(b, sizeof(b), max);
        fail(c, line_of(n), "must be at most %s", b);
    }
    return v;
}

/* The items of a sequence node (failing when it is not one, or empty and `nonempty`). */
static yaml_node_item_t *get_seq(ctx_t *c, yaml_node_t *n, size_t *count, int nonempty)
{
    if (n->type != YAML_SEQUENCE_NODE)
        fail(c, line_of(n), "expected a sequence");
    *count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (nonempty && *count == 0)
        fail(c, line_of(n), "must not be empty");
    return n->data.sequence.items.start;
}

static void require_map(ctx_t *c, yaml_node_t *n)
{
    if (n->type != YAML_MAPPING_NODE)
        fail(c, line_of(n), "expected a mapping");
}

static size_t map_count(yaml_node_t *n)
{
    return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}

/*
 * Reads a mapping with a fixed set of keys: vals[i] receives the value node of names[i] (NULL when absent). Keys must be
 * scalars; unknown and repeated keys are errors.
 */
static void get_fields(ctx_t *c, yaml_node_t *n, const char *const *names, size_t nnames, yaml_node_t **vals)
{
    require_map(c, n);
    for (size_t i = 0; i < nnames; i++)
        vals[i] = NULL;
    for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = node_at(c, pair->key);
        size_t len, i;
        const char *name = scalar(c, k, "keys must be strings", &len);
        for (i = 0; i < nnames; i++)
            if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
                break;
        if (i == nnames) {
            key_field(c, name, len);
            fail(c, line_of(k), "unknown key");
        }
        if (vals[i] != NULL) {
            key_field(c, name, len);
            fail(c, line_of(k), "duplicate key");
        }
        vals[i] = node_at(c, pair->value);
    }
}

#define GET_FIELDS(c, n, names, vals)                                                                                              \
    do {                                                                                                                           \
        _Static_assert(sizeof(names) / sizeof(names[0]) == sizeof(vals) / sizeof(vals[0]), "names and vals differ");               \
        get_fields(c, n, names, sizeof(names) / sizeof(names[0]), vals);                                                           \
    } while (0)

/* ---- sections ---- */

static void parse_tls_cert(ctx_t *c, yaml_node_t *map, yaml_node_t *cert, yaml_node_t *key, conf_tls_cert_t *out)
{
    size_t k;

    if (cert == NULL)
        fail_field(c, "cert", line_of(map), "is required");
    if (key == NULL)
        fail_field(c, "key", line_of(map), "is required");
    k = key_field(c, "cert", 4);
    out->cert = get_path(c, cert);
    key_pop(c, k);
    k = key_field(c, "key", 3);
    out->key = get_path(c, key);
    key_pop(c, k);
}

static void parse_tls(ctx_t *c, yaml_node_t *n, conf_listener_t *l)
{
    static const char *const names[] = {"cert", "key", "certificates"};
    yaml_node_t *v[3];
    size_t k;

    GET_FIELDS(c, n, names, v);
    l->tls = 1;
    if (v[2] != NULL) {
        yaml_node_item_t *items;
        if (v[0] != NULL || v[1] != NULL)
            fail(c, line_of(n), "use either cert and key or certificates, not both");
        k = key_field(c, "certificates", 12);
        items = get_seq(c, v[2], &l->ncerts, 1);
        l->certs = arena_alloc(c, l->ncerts, sizeof(*l->certs));
        for (size_t i = 0; i < l->ncerts; i++) {
            static const char *const cnames[] = {"cert", "key"};
            yaml_node_t *cv[2], *item = node_at(c, items[i]);
            size_t ki = key_index(c, i);
            GET_FIELDS(c, item, cnames, cv);
            parse_tls_cert(c, item, cv[0], cv[1], &l->certs[i]);
            key_pop(c, ki);
        }
        key_pop(c, k);
    } else if (v[0] != NULL || v[1] != NULL) {
        l->ncerts = 1;
        l->certs = arena_alloc(c, 1, sizeof(*l->certs));
        parse_tls_cert(c, n, v[0], v[1], &l->certs[0]);
    }
}

static void parse_listener(ctx_t *c, yaml_node_t *n, conf_listener_t *l)
{
    static const char *const names[] = {"address", "port", "tls"};
    yaml_node_t *v[3];
    size_t k;

    GET_FIELDS(c, n, names, v);
    if (v[1] == NULL)
        fail_field(c, "port", line_of(n), "is required");
    if (v[0] != NULL) {
        unsigned char buf[sizeof(struct in6_addr)];
        k = key_field(c, "address", 7);
        l->address = get_string(c, v[0]);
        if (inet_pton(AF_INET, l->address, buf) != 1 && inet_pton(AF_INET6, l->address, buf) != 1)
            fail(c, line_of(v[0]), "expected an IP address, not \"%s\"", l->address);
        key_pop(c, k);
    } else {
        l->address = arena_strndup(c, "0.0.0.0", 7);
    }
    k = key_field(c, "port", 4);
    l->port = (uint16_t)get_int(c, v[1], 0, 65535);
    key_pop(c, k);
    if (v[2] != NULL) {
        k = key_field(c, "tls", 3);
        parse_tls(c, v[2], l);
        key_pop(c, k);
    }
}

static int is_host_char(char ch)
{
    return isalnum((unsigned char)ch) || ch == '-' || ch == '.' || ch == '_';
}

/* Parses origin.url into o; on a bad form fails with the reason. */
static void parse_url(ctx_t *c, yaml_node_t *n, conf_origin_t *o)
{
    const char *u = o->url, *p, *auth, *auth_end, *host, *host_end, *port = NULL;
    size_t plen;

#define BAD_URL(why) fail(c, line_of(n), "bad URL \"%s\": %s", u, why)
    if (strncasecmp(u, "http://", 7) == 0) {
        o->https = 0;
        auth = u + 7;
    } else if (strncasecmp(u, "https://", 8) == 0) {
        o->https = 1;
        auth = u + 8;
    } else {
        BAD_URL("must start with http:// or https://");
    }
    if (strpbrk(u, "?#") != NULL)
        BAD_URL("a query or fragment is not allowed");
    auth_end = auth + strcspn(auth, "/");
    if (memchr(auth, '@', (size_t)(auth_end - auth)) != NULL)
        BAD_URL("user info is not allowed");
    if (*auth == '[') {
        char addr[INET6_ADDRSTRLEN + 1];
        unsigned char buf[sizeof(struct in6_addr)];
        host = auth + 1;
        host_end = memchr(host, ']', (size_t)(auth_end - host));
        if (host_end == NULL || (size_t)(host_end - host) >= sizeof(addr))
            BAD_URL("bad IPv6 address");
        memcpy(addr, host, (size_t)(host_end - host));
        addr[host_end - host] = '\0';
        if (inet_pton(AF_INET6, addr, buf) != 1)
            BAD_URL("bad IPv6 address");
        p = host_end + 1;
        if (p != auth_end && *p != ':')
            BAD_URL("bad host");
    } else {
        host = auth;
        for (host_end = host; host_end < auth_end && *host_end != ':'; host_end++)
            if (!is_host_char(*host_end))
                BAD_URL("bad host");
        p = host_end;
    }
    if (host_end == host)
        BAD_URL("no host");
    if (p < auth_end) { /* *p == ':' */
        uint64_t v = 0;
        port = p + 1;
        if (port == auth_end)
            BAD_URL("port must be between 1 and 65535");
        for (p = port; p < auth_end; p++) {
            if (!isdigit((unsigned char)*p))
                BAD_URL("port must be between 1 and 65535");
            v = v * 10 + (unsigned)(*p - '0');
            if (v > 65535)
                BAD_URL("port must be between 1 and 65535");
        }
        if (v == 0)
            BAD_URL("port must be between 1 and 65535");
        o->port = (uint16_t)v;
    } else {
        o->port = o->https ? 443 : 80;
    }
#undef BAD_URL
    o->host = arena_strndup(c, host, (size_t)(host_end - host));
    for (plen = strlen(auth_end); plen != 0 && auth_end[plen - 1] == '/'; plen--)
        ;
    o->base_path = arena_strndup(c, auth_end, plen);
}

static void parse_origin(ctx_t *c, yaml_node_t *n, conf_origin_t *o)
{
    enum { F_URL, F_CA, F_PRESERVE_HOST, F_STATIC, F_INDEX, F_COUNT };
    static const char *const names[] = {"url", "ca", "preserve_host", "static", "index"};
    yaml_node_t *v[F_COUNT];
    size_t k;

    GET_FIELDS(c, n, names, v);
    if (v[F_URL] != NULL && v[F_STATIC] != NULL)
        fail(c, line_of(n), "use either url or static, not both");
    if (v[F_URL] == NULL && v[F_STATIC] == NULL)
        fail(c, line_of(n), "url or static is required");
    for (size_t i = 0; i < F_COUNT; i++) {
        int url_only = i == F_CA || i == F_PRESERVE_HOST, static_only = i == F_INDEX;
        if (v[i] == NULL || (url_only && v[F_URL] != NULL) || (static_only && v[F_STATIC] != NULL) || (!url_only && !static_only))
            continue;
        key_field(c, names[i], strlen(names[i]));
        fail(c, line_of(v[i]), "only allowed with %s", url_only ? "url" : "static");
    }
    if (v[F_URL] != NULL) {
        o->kind = CONF_ORIGIN_URL;
        k = key_field(c, "url", 3);
        o->url = get_nonempty_string(c, v[F_URL]);
        parse_url(c, v[F_URL], o);
        key_pop(c, k);
        if (v[F_CA] != NULL) {
            k = key_field(c, "ca", 2);
            o->ca_file = get_path(c, v[F_CA]);
            key_pop(c, k);
        }
        if (v[F_PRESERVE_HOST] != NULL) {
            k = key_field(c, "preserve_host", 13);
            o->preserve_host = get_bool(c, v[F_PRESERVE_HOST]);
            key_pop(c, k);
        }
    } else {
        o->kind = CONF_ORIGIN_STATIC;
        k = key_field(c, "static", 6);
        o->static_dir = get_path(c, v[F_STATIC]);
        key_pop(c, k);
        if (v[F_INDEX] != NULL) {
            yaml_node_item_t *items;
            k = key_field(c, "index", 5);
            items = get_seq(c, v[F_INDEX], &o->nindex, 1);
            o->index = arena_alloc(c, o->nindex, sizeof(*o->index));
            for (size_t i = 0; i < o->nindex; i++) {
                yaml_node_t *item = node_at(c, items[i]);
                size_t ki = key_index(c, i);
                o->index[i] = get_nonempty_string(c, item);
                if (strchr(o->index[i], '/') != NULL || strcmp(o->index[i], ".") == 0 || strcmp(o->index[i], "..") == 0)
                    fail(c, line_of(item), "expected a file name, not \"%s\"", o->index[i]);
                key_pop(c, ki);
            }
            key_pop(c, k);
        } else {
            o->nindex = 1;
            o->index = arena_alloc(c, 1, sizeof(*o->index));
            o->index[0] = arena_strndup(c, "index.html", 10);
        }
    }
}

static int is_param_name(const char *s, size_t len)
{
    if (len == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < len; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
            return 0;
    return 1;
}

/* Splits a pattern path ("/users/{id}/files/{rest+}") into r->segs. */
static void parse_pattern(ctx_t *c, yaml_node_t *n, conf_route_t *r)
{
    const char *p = r->path + 1;
    size_t nsegs = 1;

    for (const char *s = p; *s != '\0'; s++)
        nsegs += *s == '/';
    r->is_pattern = 1;
    r->segs = arena_alloc(c, nsegs, sizeof(*r->segs));
    for (size_t i = 0; i < nsegs; i++) {
        size_t len = strcspn(p, "/");
        conf_seg_t *seg = &r->segs[i];
        if (len == 0) {
            if (i + 1 == nsegs && i != 0)
                fail(c, line_of(n), "a pattern must not end with '/'");
            fail(c, line_of(n), "empty segment in pattern \"%s\"", r->path);
        }
        if (memchr(p, '{', len) == NULL && memchr(p, '}', len) == NULL) {
            seg->kind = CONF_SEG_LITERAL;
            seg->text = arena_strndup(c, p, len);
        } else {
            const char *name = p + 1;
            size_t nlen = len - 2;
            if (len < 3 || p[0] != '{' || p[len - 1] != '}')
                fail(c, line_of(n), "segment \"%.*s\" must be a literal, {name} or {name+}", (int)len, p);
            seg->kind = CONF_SEG_PARAM;
            if (name[nlen - 1] == '+') {
                seg->kind = CONF_SEG_GREEDY;
                nlen--;
            }
            if (!is_param_name(name, nlen))
                fail(c, line_of(n), "bad parameter name \"%.*s\" (use letters, digits and _)", (int)nlen, name);
            seg->text = arena_strndup(c, name, nlen);
            if (seg->kind == CONF_SEG_GREEDY && i + 1 != nsegs)
                fail(c, line_of(n), "{%s+} must be the last segment", seg->text);
            for (size_t j = 0; j < i; j++)
                if (r->segs[j].kind != CONF_SEG_LITERAL && strcmp(r->segs[j].text, seg->text) == 0)
                    fail(c, line_of(n), "duplicate parameter \"%s\"", seg->text);
        }
        p += len + (p[len] == '/');
    }
    r->nsegs = nsegs;
}

/* RFC 9110 token characters. */
static int is_token(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && strchr("!#$%&'*+-.^_`|~", s[i]) == NULL)
            return 0;
    return 1;
}

static char *get_header_name(ctx_t *c, yaml_node_t *n)
{
    size_t len;
    const char *s = scalar(c, n, "expected a string", &len);
    char *name;

    if (!is_token(s, len))
        fail(c, line_of(n), "bad header name \"%s\"", s);
    name = arena_strndup(c, s, len);
    lower(name);
    return name;
}

static void parse_header_cmds(ctx_t *c, yaml_node_t *n, conf_header_cmds_t *h)
{
    static const char *const names[] = {"add", "remove"};
    yaml_node_t *v[2];
    size_t k;

    GET_FIELDS(c, n, names, v);
    if (v[0] != NULL) {
        k = key_field(c, "add", 3);
        require_map(c, v[0]);
        h->nadd = map_count(v[0]);
        h->add = arena_alloc(c, h->nadd, sizeof(*h->add));
        for (size_t i = 0; i < h->nadd; i++) {
            yaml_node_pair_t *pair = &v[0]->data.mapping.pairs.start[i];
            yaml_node_t *name = node_at(c, pair->key), *value = node_at(c, pair->value);
            size_t kn;
            h->add[i].name = get_header_name(c, name);
            kn = key_field(c, (const char *)name->data.scalar.value, name->data.scalar.length);
            if (value->type == YAML_SCALAR_NODE && memchr(value->data.scalar.value, '\0', value->data.scalar.length) != NULL)
                fail(c, line_of(value), "must not contain CR, LF or NUL");
            h->add[i].value = get_string(c, value);
            if (strpbrk(h->add[i].value, "\r\n") != NULL)
                fail(c, line_of(value), "must not contain CR, LF or NUL");
            key_pop(c, kn);
        }
        key_pop(c, k);
    }
    if (v[1] != NULL) {
        yaml_node_item_t *items;
        k = key_field(c, "remove", 6);
        items = get_seq(c, v[1], &h->nremove, 0);
        h->remove = arena_alloc(c, h->nremove, sizeof(*h->remove));
        for (size_t i = 0; i < h->nremove; i++) {
            size_t ki = key_index(c, i);
            h->remove[i] = get_header_name(c, node_at(c, items[i]));
            key_pop(c, ki);
        }
        key_pop(c, k);
    }
}

static void parse_headers(ctx_t *c, yaml_node_t *n, conf_route_t *r)
{
    static const char *const names[] = {"request", "response"};
    yaml_node_t *v[2];
    size_t k;

    GET_FIELDS(c, n, names, v);
    if (v[0] != NULL) {
        k = key_field(c, "request", 7);
        parse_header_cmds(c, v[0], &r->request_headers);
        key_pop(c, k);
    }
    if (v[1] != NULL) {
        k = key_field(c, "response", 8);
        parse_header_cmds(c, v[1], &r->response_headers);
        key_pop(c, k);
    }
}

static void parse_route(ctx_t *c, yaml_node_t *n, conf_route_t *r)
{
    static const char *const names[] = {"path", "methods", "origin", "timeout", "max_body_size", "headers"};
    yaml_node_t *v[6];
    size_t k;

    GET_FIELDS(c, n, names, v);
    r->line = (unsigned)line_of(n);
    if (v[0] == NULL)
        fail_field(c, "path", line_of(n), "is required");
    if (v[2] == NULL)
        fail_field(c, "origin", line_of(n), "is required");

    k = key_field(c, "path", 4);
    r->path = get_string(c, v[0]);
    if (r->path[0] != '/')
        fail(c, line_of(v[0]), "must start with '/'");
    if (strpbrk(r->path, "{}") != NULL)
        parse_pattern(c, v[0], r);
    key_pop(c, k);

    if (v[1] != NULL) {
        size_t count;
        yaml_node_item_t *items;
        k = key_field(c, "methods", 7);
        items = get_seq(c, v[1], &count, 1);
        for (size_t i = 0; i < count; i++) {
            yaml_node_t *item = node_at(c, items[i]);
            size_t len, ki = key_index(c, i);
            const char *m = scalar(c, item, "expected a string", &len);
            unsigned bit = conf_method_bit(m, len);
            if (bit == 0)
                fail(c, line_of(item), "unknown method \"%s\" (use GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS)", m);
            r->methods |= bit == CONF_M_GET ? CONF_M_GET | CONF_M_HEAD : bit;
            key_pop(c, ki);
        }
        key_pop(c, k);
    }

    k = key_field(c, "origin", 6);
    parse_origin(c, v[2], &r->origin);
    key_pop(c, k);

    r->timeout_ms = CONF_DEFAULT_TIMEOUT_MS;
    if (v[3] != NULL) {
        k = key_field(c, "timeout", 7);
        r->timeout_ms = get_duration(c, v[3], CONF_MIN_TIMEOUT_MS, CONF_MAX_TIMEOUT_MS);
        key_pop(c, k);
    }
    r->max_body_size = c->impl->pub.limits.max_body_size;
    if (v[4] != NULL) {
        k = key_field(c, "max_body_size", 13);
        r->max_body_size = get_size(c, v[4], CONF_MAX_MAX_BODY_SIZE);
        key_pop(c, k);
    }
    if (v[5] != NULL) {
        k = key_field(c, "headers", 7);
        parse_headers(c, v[5], r);
        key_pop(c, k);
    }
}

/* "*", "*.suffix" or a plain name; lower-cased. */
static char *get_host_name(ctx_t *c, yaml_node_t *n)
{
    char *name = get_string(c, n);
    const char *rest = name;

    lower(name);
    if (strcmp(name, "*") == 0)
        return name;
    if (strncmp(name, "*.", 2) == 0)
        rest = name + 2;
    if (*rest == '\0' || *rest == '.')
        fail(c, line_of(n), "bad host name (use \"*\", a name or \"*.suffix\")");
    for (const char *s = rest; *s != '\0'; s++)
        if (!is_host_char(*s) && *s != ':' && *s != '[' && *s != ']')
            fail(c, line_of(n), "bad host name (use \"*\", a name or \"*.suffix\")");
    return name;
}

static void parse_hosts(ctx_t *c, yaml_node_t *n)
{
    conf_t *conf = &c->impl->pub;

    require_map(c, n);
    conf->nhosts = map_count(n);
    if (conf->nhosts == 0)
        fail(c, line_of(n), "must not be empty");
    conf->hosts = arena_alloc(c, conf->nhosts, sizeof(*conf->hosts));
    for (size_t i = 0; i < conf->nhosts; i++) {
        static const char *const names[] = {"routes"};
        yaml_node_pair_t *pair = &n->data.mapping.pairs.start[i];
        yaml_node_t *kn = node_at(c, pair->key), *vn = node_at(c, pair->value), *v[1];
        conf_host_t *h = &conf->hosts[i];
        yaml_node_item_t *items;
        size_t len, k;
        const char *written = scalar(c, kn, "keys must be strings", &len);

        k = key_push(c, ".\"%.*s\"", (int)len, written);
        h->name = get_host_name(c, kn);
        for (size_t j = 0; j < i; j++)
            if (strcmp(conf->hosts[j].name, h->name) == 0)
                fail(c, line_of(kn), "duplicate host");
        GET_FIELDS(c, vn, names, v);
        if (v[0] == NULL)
            fail_field(c, "routes", line_of(vn), "is required");
        key_field(c, "routes", 6);
        items = get_seq(c, v[0], &h->nroutes, 1);
        h->routes = arena_alloc(c, h->nroutes, sizeof(*h->routes));
        for (size_t r = 0; r < h->nroutes; r++) {
            size_t kr = key_index(c, r);
            parse_route(c, node_at(c, items[r]), &h->routes[r]);
            key_pop(c, kr);
        }
        key_pop(c, k);
    }
}

static void parse_root(ctx_t *c, yaml_node_t *root)
{
    static const char *const names[] = {"threads", "data_dir", "listen", "limits", "shutdown_timeout", "access_log", "hosts"};
    yaml_node_t *v[7];
    conf_t *conf = &c->impl->pub;
    size_t k;

    if (root == NULL) /* an empty file */
        fail_field(c, "listen", 1, "is required");
    if (root->type != YAML_MAPPING_NODE)
        fail(c, line_of(root), "expected a mapping at the top level");
    GET_FIELDS(c, root, names, v);
    if (v[2] == NULL)
        fail_field(c, "listen", line_of(root), "is required");
    if (v[6] == NULL)
        fail_field(c, "hosts", line_of(root), "is required");

    if (v[0] != NULL) {
        k = key_field(c, "threads", 7);
        conf->threads = (unsigned)get_int(c, v[0], 1, CONF_MAX_THREADS);
        key_pop(c, k);
    } else {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        conf->threads = n < 1 ? 1 : n > CONF_MAX_THREADS ? CONF_MAX_THREADS : (unsigned)n;
    }

    if (v[1] != NULL) {
        k = key_field(c, "data_dir", 8);
        conf->data_dir = get_path(c, v[1]);
        key_pop(c, k);
    } else {
        conf->data_dir = resolve_path(c, "var");
    }

    {
        yaml_node_item_t *items;
        k = key_field(c, "listen", 6);
        items = get_seq(c, v[2], &conf->nlisteners, 1);
        conf->listeners = arena_alloc(c, conf->nlisteners, sizeof(*conf->listeners));
        for (size_t i = 0; i < conf->nlisteners; i++) {
            size_t ki = key_index(c, i);
            parse_listener(c, node_at(c, items[i]), &conf->listeners[i]);
            key_pop(c, ki);
        }
        key_pop(c, k);
    }

    conf->limits.max_body_size = CONF_DEFAULT_MAX_BODY_SIZE;
    conf->limits.idle_timeout_ms = CONF_DEFAULT_IDLE_TIMEOUT_MS;
    if (v[3] != NULL) {
        static const char *const lnames[] = {"max_body_size", "idle_timeout"};
        yaml_node_t *lv[2];
        k = key_field(c, "limits", 6);
        GET_FIELDS(c, v[3], lnames, lv);
        if (lv[0] != NULL) {
            size_t kl = key_field(c, "max_body_size", 13);
            conf->limits.max_body_size = get_size(c, lv[0], CONF_MAX_MAX_BODY_SIZE);
            key_pop(c, kl);
        }
        if (lv[1] != NULL) {
            size_t kl = key_field(c, "idle_timeout", 12);
            conf->limits.idle_timeout_ms = get_duration(c, lv[1], CONF_MIN_IDLE_TIMEOUT_MS, CONF_MAX_IDLE_TIMEOUT_MS);
            key_pop(c, kl);
        }
        key_pop(c, k);
    }

    conf->shutdown_timeout_ms = CONF_DEFAULT_SHUTDOWN_TIMEOUT_MS;
    if (v[4] != NULL) {
        k = key_field(c, "shutdown_timeout", 16);
        conf->shutdown_timeout_ms = get_duration(c, v[4], 0, CONF_MAX_SHUTDOWN_TIMEOUT_MS);
        key_pop(c, k);
    }

    conf->access_log.enabled = 1;
    conf->access_log.path = NULL;
    if (v[5] != NULL) {
        static const char *const anames[] = {"enabled", "path"};
        yaml_node_t *av[2];
        k = key_field(c, "access_log", 10);
        GET_FIELDS(c, v[5], anames, av);
        if (av[0] != NULL) {
            size_t ka = key_field(c, "enabled", 7);
            conf->access_log.enabled = get_bool(c, av[0]);
            key_pop(c, ka);
        }
        if (av[1] != NULL) {
            size_t ka = key_field(c, "path", 4);
            char *p = get_nonempty_string(c, av[1]);
            conf->access_log.path = strcmp(p, "-") == 0 ? p : resolve_path(c, p);
            key_pop(c, ka);
        }
        key_pop(c, k);
    }
    if (conf->access_log.path == NULL)
        conf->access_log.path = arena_printf(c, "%s/access.log", conf->data_dir);

    k = key_field(c, "hosts", 5);
    parse_hosts(c, v[6]);
    key_pop(c, k);
}

/* ---- loading ---- */

/* The only setjmp(): returns 0, or -1 after fail() wrote the message. */
static int walk_protected(ctx_t *c, yaml_node_t *root)
{
    if (setjmp(c->fail) != 0)
        return -1;
    c->impl->pub.file = arena_strndup(c, c->name, strlen(c->name));
    parse_root(c, root);
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
