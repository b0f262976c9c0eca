/*
 * conf/conf.c: the schema of the YAML configuration: what each section may hold (listeners and TLS, limits, access
 * log, hosts, routes, origins and their URLs, path patterns, header rewrites, auth, throttles, CORS, Lua hooks, API
 * keys and plans, the lua block and its fetch), its defaults, and how it maps onto the structs of conf.h.
 * cn_parse_root() is the entry point, called by the loader in node.c.
 *
 * Every reader here follows the same shape: CN_GET_FIELDS() the mapping, check required and exclusive keys, then for
 * each present key push it onto the key path, read it with a typed reader of node.c (which fails with
 * "FILE:LINE: KEY: message" and never returns on a bad value), and pop it. See internal.h.
 */
#include "conf/internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <regex.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define CONF_MAX_THREADS 256
#define CONF_MIN_IDLE_TIMEOUT_MS 1000u
#define CONF_MAX_IDLE_TIMEOUT_MS 3600000u
#define CONF_MAX_SHUTDOWN_TIMEOUT_MS 600000u
#define CONF_MAX_CORS_MAX_AGE_S 86400u /* Firefox's cap; Chromium caps at 2h */

/* ---- methods ---- */

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

/* ---- sections ---- */

static void parse_tls_cert(ctx_t *c, yaml_node_t *map, yaml_node_t *cert, yaml_node_t *key, conf_tls_cert_t *out)
{
    size_t k;

    if (cert == NULL)
        cn_fail_field(c, "cert", cn_line_of(map), "is required");
    if (key == NULL)
        cn_fail_field(c, "key", cn_line_of(map), "is required");
    k = cn_key_field(c, "cert", 4);
    out->cert = cn_get_path(c, cert);
    cn_key_pop(c, k);
    k = cn_key_field(c, "key", 3);
    out->key = cn_get_path(c, key);
    cn_key_pop(c, k);
}

static void parse_tls(ctx_t *c, yaml_node_t *n, conf_listener_t *l)
{
    static const char *const names[] = {"cert", "key", "certificates"};
    yaml_node_t *v[3];
    size_t k;

    CN_GET_FIELDS(c, n, names, v);
    l->tls = 1;
    if (v[2] != NULL) {
        yaml_node_item_t *items;
        if (v[0] != NULL || v[1] != NULL)
            cn_fail(c, cn_line_of(n), "use either cert and key or certificates, not both");
        k = cn_key_field(c, "certificates", 12);
        items = cn_get_seq(c, v[2], &l->ncerts, 1);
        l->certs = cn_arena_alloc(c, l->ncerts, sizeof(*l->certs));
        for (size_t i = 0; i < l->ncerts; i++) {
            static const char *const cnames[] = {"cert", "key"};
            yaml_node_t *cv[2], *item = cn_node_at(c, items[i]);
            size_t ki = cn_key_index(c, i);
            CN_GET_FIELDS(c, item, cnames, cv);
            parse_tls_cert(c, item, cv[0], cv[1], &l->certs[i]);
            cn_key_pop(c, ki);
        }
        cn_key_pop(c, k);
    } else if (v[0] != NULL || v[1] != NULL) {
        l->ncerts = 1;
        l->certs = cn_arena_alloc(c, 1, sizeof(*l->certs));
        parse_tls_cert(c, n, v[0], v[1], &l->certs[0]);
    }
}

static void parse_listener(ctx_t *c, yaml_node_t *n, conf_listener_t *l)
{
    static const char *const names[] = {"address", "port", "tls"};
    yaml_node_t *v[3];
    size_t k;

    CN_GET_FIELDS(c, n, names, v);
    if (v[1] == NULL)
        cn_fail_field(c, "port", cn_line_of(n), "is required");
    if (v[0] != NULL) {
        unsigned char buf[sizeof(struct in6_addr)];
        k = cn_key_field(c, "address", 7);
        l->address = cn_get_string(c, v[0]);
        if (inet_pton(AF_INET, l->address, buf) != 1 && inet_pton(AF_INET6, l->address, buf) != 1)
            cn_fail(c, cn_line_of(v[0]), "expected an IP address, not \"%s\"", l->address);
        cn_key_pop(c, k);
    } else {
        l->address = cn_arena_strndup(c, "0.0.0.0", 7);
    }
    k = cn_key_field(c, "port", 4);
    l->port = (uint16_t)cn_get_int(c, v[1], 0, 65535);
    cn_key_pop(c, k);
    if (v[2] != NULL) {
        k = cn_key_field(c, "tls", 3);
        parse_tls(c, v[2], l);
        cn_key_pop(c, k);
    }
}

static int is_host_char(char ch)
{
    return isalnum((unsigned char)ch) || ch == '-' || ch == '.' || ch == '_';
}

/* The parts of an http(s) URL. */
typedef struct url_parts {
    int https;
    const char *host; /* without the brackets of an IPv6 literal */
    size_t host_len;
    int has_port;
    uint16_t port;    /* explicit or the scheme's default */
    const char *path; /* the rest after the authority: "" or from the first '/' */
} url_parts_t;

/* Splits an http(s) URL; on a bad form fails with "bad WHAT \"u\": reason". */
static void split_url(ctx_t *c, yaml_node_t *n, const char *u, const char *what, url_parts_t *out)
{
    const char *p, *auth, *auth_end, *host, *host_end, *port = NULL;

#define BAD_URL(why) cn_fail(c, cn_line_of(n), "bad %s \"%s\": %s", what, u, why)
    if (strncasecmp(u, "http://", 7) == 0) {
        out->https = 0;
        auth = u + 7;
    } else if (strncasecmp(u, "https://", 8) == 0) {
        out->https = 1;
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
    out->has_port = p < auth_end;
    if (out->has_port) { /* *p == ':' */
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
        out->port = (uint16_t)v;
    } else {
        out->port = out->https ? 443 : 80;
    }
#undef BAD_URL
    out->host = host;
    out->host_len = (size_t)(host_end - host);
    out->path = auth_end;
}

/* Parses origin.url into o; on a bad form fails with the reason. */
static void parse_url(ctx_t *c, yaml_node_t *n, conf_origin_t *o)
{
    url_parts_t u;
    size_t plen;

    split_url(c, n, o->url, "URL", &u);
    o->https = u.https;
    o->port = u.port;
    o->host = cn_arena_strndup(c, u.host, u.host_len);
    for (plen = strlen(u.path); plen != 0 && u.path[plen - 1] == '/'; plen--)
        ;
    o->base_path = cn_arena_strndup(c, u.path, plen);
}

/* A DynamoDB table name: 3..255 of A-Z a-z 0-9 _ . - */
static int is_table_name(const char *s)
{
    size_t len = strlen(s);
    if (len < 3 || len > 255)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
            return 0;
    return 1;
}

/* origin: { store: dynamodb } or { store: rest, tables: [a, b] } */
static void parse_store_origin(ctx_t *c, yaml_node_t *store, yaml_node_t *tables, conf_origin_t *o)
{
    size_t k = cn_key_field(c, "store", 5);
    const char *kind = cn_get_nonempty_string(c, store);
    yaml_node_item_t *items;

    o->kind = CONF_ORIGIN_STORE;
    if (strcmp(kind, "dynamodb") == 0)
        o->store_kind = CONF_STORE_DYNAMODB;
    else if (strcmp(kind, "rest") == 0)
        o->store_kind = CONF_STORE_REST;
    else
        cn_fail(c, cn_line_of(store), "expected dynamodb or rest, not \"%s\"", kind);
    cn_key_pop(c, k);
    if (tables == NULL)
        return;
    k = cn_key_field(c, "tables", 6);
    if (o->store_kind != CONF_STORE_REST)
        cn_fail(c, cn_line_of(tables), "only allowed with store: rest");
    items = cn_get_seq(c, tables, &o->ntables, 1);
    o->tables = cn_arena_alloc(c, o->ntables, sizeof(*o->tables));
    for (size_t i = 0; i < o->ntables; i++) {
        yaml_node_t *item = cn_node_at(c, items[i]);
        size_t ki = cn_key_index(c, i);
        o->tables[i] = cn_get_nonempty_string(c, item);
        if (!is_table_name(o->tables[i]))
            cn_fail(c, cn_line_of(item), "expected a table name (3 to 255 of A-Z a-z 0-9 _ . -), not \"%s\"", o->tables[i]);
        cn_key_pop(c, ki);
    }
    cn_key_pop(c, k);
}

static void parse_origin(ctx_t *c, yaml_node_t *n, conf_origin_t *o)
{
    enum { F_URL, F_CA, F_PRESERVE_HOST, F_STATIC, F_INDEX, F_FUNCTION, F_STORE, F_TABLES, F_COUNT };
    static const char *const names[] = {"url", "ca", "preserve_host", "static", "index", "function", "store", "tables"};
    yaml_node_t *v[F_COUNT];
    size_t k;

    CN_GET_FIELDS(c, n, names, v);
    if ((v[F_URL] != NULL) + (v[F_STATIC] != NULL) + (v[F_FUNCTION] != NULL) + (v[F_STORE] != NULL) > 1)
        cn_fail(c, cn_line_of(n), "use one of url, static, function or store");
    if (v[F_URL] == NULL && v[F_STATIC] == NULL && v[F_FUNCTION] == NULL && v[F_STORE] == NULL)
        cn_fail(c, cn_line_of(n), "url, static, function or store is required");
    for (size_t i = 0; i < F_COUNT; i++) {
        int url_only = i == F_CA || i == F_PRESERVE_HOST, static_only = i == F_INDEX, store_only = i == F_TABLES;
        if (v[i] == NULL || (url_only && v[F_URL] != NULL) || (static_only && v[F_STATIC] != NULL) ||
            (store_only && v[F_STORE] != NULL) || (!url_only && !static_only && !store_only))
            continue;
        cn_key_field(c, names[i], strlen(names[i]));
        cn_fail(c, cn_line_of(v[i]), "only allowed with %s", url_only ? "url" : static_only ? "static" : "store: rest");
    }
    if (v[F_STORE] != NULL) {
        parse_store_origin(c, v[F_STORE], v[F_TABLES], o);
        return;
    }
    if (v[F_FUNCTION] != NULL) {
        o->kind = CONF_ORIGIN_FUNCTION;
        k = cn_key_field(c, "function", 8);
        o->function_file = cn_get_path(c, v[F_FUNCTION]);
        o->function_line = (unsigned)cn_line_of(v[F_FUNCTION]);
        cn_key_pop(c, k);
        return;
    }
    if (v[F_URL] != NULL) {
        o->kind = CONF_ORIGIN_URL;
        k = cn_key_field(c, "url", 3);
        o->url = cn_get_nonempty_string(c, v[F_URL]);
        o->url_key = cn_arena_strndup(c, c->key, c->keylen);
        o->url_line = (unsigned)cn_line_of(v[F_URL]);
        parse_url(c, v[F_URL], o);
        cn_key_pop(c, k);
        if (v[F_CA] != NULL) {
            k = cn_key_field(c, "ca", 2);
            o->ca_file = cn_get_path(c, v[F_CA]);
            cn_key_pop(c, k);
        }
        if (v[F_PRESERVE_HOST] != NULL) {
            k = cn_key_field(c, "preserve_host", 13);
            o->preserve_host = cn_get_bool(c, v[F_PRESERVE_HOST]);
            cn_key_pop(c, k);
        }
    } else {
        o->kind = CONF_ORIGIN_STATIC;
        k = cn_key_field(c, "static", 6);
        o->static_dir = cn_get_path(c, v[F_STATIC]);
        cn_key_pop(c, k);
        if (v[F_INDEX] != NULL) {
            yaml_node_item_t *items;
            k = cn_key_field(c, "index", 5);
            items = cn_get_seq(c, v[F_INDEX], &o->nindex, 1);
            o->index = cn_arena_alloc(c, o->nindex, sizeof(*o->index));
            for (size_t i = 0; i < o->nindex; i++) {
                yaml_node_t *item = cn_node_at(c, items[i]);
                size_t ki = cn_key_index(c, i);
                o->index[i] = cn_get_nonempty_string(c, item);
                if (strchr(o->index[i], '/') != NULL || strcmp(o->index[i], ".") == 0 || strcmp(o->index[i], "..") == 0)
                    cn_fail(c, cn_line_of(item), "expected a file name, not \"%s\"", o->index[i]);
                cn_key_pop(c, ki);
            }
            cn_key_pop(c, k);
        } else {
            o->nindex = 1;
            o->index = cn_arena_alloc(c, 1, sizeof(*o->index));
            o->index[0] = cn_arena_strndup(c, "index.html", 10);
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
    r->segs = cn_arena_alloc(c, nsegs, sizeof(*r->segs));
    for (size_t i = 0; i < nsegs; i++) {
        size_t len = strcspn(p, "/");
        conf_seg_t *seg = &r->segs[i];
        if (len == 0) {
            if (i + 1 == nsegs && i != 0)
                cn_fail(c, cn_line_of(n), "a pattern must not end with '/'");
            cn_fail(c, cn_line_of(n), "empty segment in pattern \"%s\"", r->path);
        }
        if (memchr(p, '{', len) == NULL && memchr(p, '}', len) == NULL) {
            seg->kind = CONF_SEG_LITERAL;
            seg->text = cn_arena_strndup(c, p, len);
        } else {
            const char *name = p + 1;
            size_t nlen = len - 2;
            if (len < 3 || p[0] != '{' || p[len - 1] != '}')
                cn_fail(c, cn_line_of(n), "segment \"%.*s\" must be a literal, {name} or {name+}", (int)len, p);
            seg->kind = CONF_SEG_PARAM;
            if (name[nlen - 1] == '+') {
                seg->kind = CONF_SEG_GREEDY;
                nlen--;
            }
            if (!is_param_name(name, nlen))
                cn_fail(c, cn_line_of(n), "bad parameter name \"%.*s\" (use letters, digits and _)", (int)nlen, name);
            seg->text = cn_arena_strndup(c, name, nlen);
            if (seg->kind == CONF_SEG_GREEDY && i + 1 != nsegs)
                cn_fail(c, cn_line_of(n), "{%s+} must be the last segment", seg->text);
            for (size_t j = 0; j < i; j++)
                if (r->segs[j].kind != CONF_SEG_LITERAL && strcmp(r->segs[j].text, seg->text) == 0)
                    cn_fail(c, cn_line_of(n), "duplicate parameter \"%s\"", seg->text);
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
    const char *s = cn_scalar(c, n, "expected a string", &len);
    char *name;

    if (!is_token(s, len))
        cn_fail(c, cn_line_of(n), "bad header name \"%s\"", s);
    name = cn_arena_strndup(c, s, len);
    cn_lower(name);
    return name;
}

/* lua.fetch: { timeout: 10s, max_body_size: 8MiB, ca: FILE } (also the defaults when n is NULL). */
static void parse_lua_fetch(ctx_t *c, yaml_node_t *n)
{
    enum { F_TIMEOUT, F_MAX_BODY, F_CA, F_COUNT };
    static const char *const names[] = {"timeout", "max_body_size", "ca"};
    yaml_node_t *v[F_COUNT] = {NULL};
    conf_t *conf = &c->impl->pub;
    size_t k;

    conf->lua.fetch.timeout_ms = CONF_DEFAULT_FETCH_TIMEOUT_MS;
    conf->lua.fetch.max_body_size = CONF_DEFAULT_FETCH_MAX_BODY_SIZE;
    conf->lua.fetch.ca_file = NULL;
    if (n == NULL)
        return;
    CN_GET_FIELDS(c, n, names, v);
    if (v[F_TIMEOUT] != NULL) {
        k = cn_key_field(c, "timeout", 7);
        conf->lua.fetch.timeout_ms = cn_get_duration(c, v[F_TIMEOUT], CONF_MIN_FETCH_TIMEOUT_MS, CONF_MAX_FETCH_TIMEOUT_MS);
        cn_key_pop(c, k);
    }
    if (v[F_MAX_BODY] != NULL) {
        k = cn_key_field(c, "max_body_size", 13);
        conf->lua.fetch.max_body_size = cn_get_size(c, v[F_MAX_BODY], CONF_MAX_FETCH_MAX_BODY_SIZE);
        if (conf->lua.fetch.max_body_size < CONF_MIN_FETCH_MAX_BODY_SIZE)
            cn_fail(c, cn_line_of(v[F_MAX_BODY]), "must be at least 1KiB");
        cn_key_pop(c, k);
    }
    if (v[F_CA] != NULL) {
        k = cn_key_field(c, "ca", 2);
        conf->lua.fetch.ca_file = cn_get_path(c, v[F_CA]);
        cn_key_pop(c, k);
    }
}

/*
 * lua: { dir: hooks, cpu_limit: 50ms, memory_limit: 64MiB, stage: prod, variables: { name: value }, fetch: {...} }
 * (n may be NULL: the defaults)
 */
static void parse_lua(ctx_t *c, yaml_node_t *n)
{
    enum { F_DIR, F_CPU, F_MEM, F_STAGE, F_VARS, F_FETCH, F_COUNT };
    static const char *const names[] = {"dir", "cpu_limit", "memory_limit", "stage", "variables", "fetch"};
    yaml_node_t *v[F_COUNT] = {NULL};
    conf_t *conf = &c->impl->pub;
    size_t k;

    conf->lua.cpu_limit_ms = CONF_DEFAULT_LUA_CPU_MS;
    conf->lua.memory_limit = CONF_DEFAULT_LUA_MEMORY;
    if (n != NULL)
        CN_GET_FIELDS(c, n, names, v);
    if (v[F_DIR] != NULL) {
        k = cn_key_field(c, "dir", 3);
        conf->lua.dir = cn_get_path(c, v[F_DIR]);
        cn_key_pop(c, k);
    } else {
        conf->lua.dir = cn_resolve_path(c, "hooks");
    }
    if (v[F_CPU] != NULL) {
        k = cn_key_field(c, "cpu_limit", 9);
        conf->lua.cpu_limit_ms = cn_get_duration(c, v[F_CPU], 1, CONF_MAX_LUA_CPU_MS);
        cn_key_pop(c, k);
    }
    if (v[F_MEM] != NULL) {
        k = cn_key_field(c, "memory_limit", 12);
        conf->lua.memory_limit = cn_get_size(c, v[F_MEM], CONF_MAX_LUA_MEMORY);
        if (conf->lua.memory_limit < CONF_MIN_LUA_MEMORY)
            cn_fail(c, cn_line_of(v[F_MEM]), "must be at least 1MiB");
        cn_key_pop(c, k);
    }
    if (v[F_STAGE] != NULL) {
        k = cn_key_field(c, "stage", 5);
        conf->lua.stage = cn_get_nonempty_string(c, v[F_STAGE]);
        cn_key_pop(c, k);
    } else {
        conf->lua.stage = cn_arena_strndup(c, "prod", 4);
    }
    if (v[F_VARS] != NULL) {
        k = cn_key_field(c, "variables", 9);
        cn_require_map(c, v[F_VARS]);
        conf->lua.nvariables = cn_map_count(v[F_VARS]);
        conf->lua.variables = cn_arena_alloc(c, conf->lua.nvariables, sizeof(*conf->lua.variables));
        for (size_t i = 0; i < conf->lua.nvariables; i++) {
            yaml_node_pair_t *pair = &v[F_VARS]->data.mapping.pairs.start[i];
            yaml_node_t *name = cn_node_at(c, pair->key), *value = cn_node_at(c, pair->value);
            conf->lua.variables[i].name = cn_get_nonempty_string(c, name);
            size_t kn = cn_key_field(c, conf->lua.variables[i].name, strlen(conf->lua.variables[i].name));
            conf->lua.variables[i].value = cn_get_string(c, value);
            cn_key_pop(c, kn);
        }
        cn_key_pop(c, k);
    }
    k = cn_key_field(c, "fetch", 5);
    parse_lua_fetch(c, v[F_FETCH]);
    cn_key_pop(c, k);
}

static void parse_header_cmds(ctx_t *c, yaml_node_t *n, conf_header_cmds_t *h)
{
    static const char *const names[] = {"add", "remove"};
    yaml_node_t *v[2];
    size_t k;

    CN_GET_FIELDS(c, n, names, v);
    if (v[0] != NULL) {
        k = cn_key_field(c, "add", 3);
        cn_require_map(c, v[0]);
        h->nadd = cn_map_count(v[0]);
        h->add = cn_arena_alloc(c, h->nadd, sizeof(*h->add));
        for (size_t i = 0; i < h->nadd; i++) {
            yaml_node_pair_t *pair = &v[0]->data.mapping.pairs.start[i];
            yaml_node_t *name = cn_node_at(c, pair->key), *value = cn_node_at(c, pair->value);
            size_t kn;
            h->add[i].name = get_header_name(c, name);
            kn = cn_key_field(c, (const char *)name->data.scalar.value, name->data.scalar.length);
            if (value->type == YAML_SCALAR_NODE && memchr(value->data.scalar.value, '\0', value->data.scalar.length) != NULL)
                cn_fail(c, cn_line_of(value), "must not contain CR, LF or NUL");
            h->add[i].value = cn_get_string(c, value);
            if (strpbrk(h->add[i].value, "\r\n") != NULL)
                cn_fail(c, cn_line_of(value), "must not contain CR, LF or NUL");
            cn_key_pop(c, kn);
        }
        cn_key_pop(c, k);
    }
    if (v[1] != NULL) {
        yaml_node_item_t *items;
        k = cn_key_field(c, "remove", 6);
        items = cn_get_seq(c, v[1], &h->nremove, 0);
        h->remove = cn_arena_alloc(c, h->nremove, sizeof(*h->remove));
        for (size_t i = 0; i < h->nremove; i++) {
            size_t ki = cn_key_index(c, i);
            h->remove[i] = get_header_name(c, cn_node_at(c, items[i]));
            cn_key_pop(c, ki);
        }
        cn_key_pop(c, k);
    }
}

static void parse_headers(ctx_t *c, yaml_node_t *n, conf_route_t *r)
{
    static const char *const names[] = {"request", "response"};
    yaml_node_t *v[2];
    size_t k;

    CN_GET_FIELDS(c, n, names, v);
    if (v[0] != NULL) {
        k = cn_key_field(c, "request", 7);
        parse_header_cmds(c, v[0], &r->request_headers);
        cn_key_pop(c, k);
    }
    if (v[1] != NULL) {
        k = cn_key_field(c, "response", 8);
        parse_header_cmds(c, v[1], &r->response_headers);
        cn_key_pop(c, k);
    }
}

/* A list of non-empty strings (lower-cased when `lower`). */
static char **get_string_list(ctx_t *c, yaml_node_t *n, size_t *count, int lower)
{
    yaml_node_item_t *items = cn_get_seq(c, n, count, 1);
    char **out = cn_arena_alloc(c, *count, sizeof(*out));
    for (size_t i = 0; i < *count; i++) {
        size_t ki = cn_key_index(c, i);
        out[i] = cn_get_nonempty_string(c, cn_node_at(c, items[i]));
        if (lower)
            cn_lower(out[i]);
        cn_key_pop(c, ki);
    }
    return out;
}

/* A duration in whole seconds (HTTP's resolution), 0..CONF_MAX_CACHE_TTL_S. */
static int64_t get_seconds(ctx_t *c, yaml_node_t *n)
{
    return (int64_t)(cn_get_duration(c, n, 0, CONF_MAX_CACHE_TTL_S * 1000) / 1000);
}

static void parse_cache_key(ctx_t *c, yaml_node_t *n, conf_route_cache_t *rc)
{
    static const char *const names[] = {"query", "sort_query", "headers"};
    yaml_node_t *v[3];
    size_t k;

    CN_GET_FIELDS(c, n, names, v);
    if (v[0] != NULL) {
        k = cn_key_field(c, "query", 5);
        if (v[0]->type == YAML_SCALAR_NODE) {
            const char *q = cn_get_string(c, v[0]);
            if (strcmp(q, "all") == 0)
                rc->query = CONF_QUERY_ALL;
            else if (strcmp(q, "none") == 0)
                rc->query = CONF_QUERY_NONE;
            else
                cn_fail(c, cn_line_of(v[0]), "expected all, none, {only: [...]} or {except: [...]}, not \"%s\"", q);
        } else {
            static const char *const qnames[] = {"only", "except"};
            yaml_node_t *qv[2];
            CN_GET_FIELDS(c, v[0], qnames, qv);
            if ((qv[0] == NULL) == (qv[1] == NULL))
                cn_fail(c, cn_line_of(v[0]), "use one of only or except");
            size_t kq = cn_key_field(c, qv[0] != NULL ? "only" : "except", qv[0] != NULL ? 4 : 6);
            rc->query = qv[0] != NULL ? CONF_QUERY_ONLY : CONF_QUERY_EXCEPT;
            rc->query_params = get_string_list(c, qv[0] != NULL ? qv[0] : qv[1], &rc->nquery_params, 0);
            cn_key_pop(c, kq);
        }
        cn_key_pop(c, k);
    }
    if (v[1] != NULL) {
        k = cn_key_field(c, "sort_query", 10);
        rc->sort_query = cn_get_bool(c, v[1]);
        cn_key_pop(c, k);
    }
    if (v[2] != NULL) {
        k = cn_key_field(c, "headers", 7);
        rc->key_headers = get_string_list(c, v[2], &rc->nkey_headers, 1);
        cn_key_pop(c, k);
    }
}

static void parse_route_cache(ctx_t *c, yaml_node_t *n, conf_route_t *r)
{
    static const char *const names[] = {"default_ttl", "override", "stale_while_revalidate", "stale_if_error", "key"};
    yaml_node_t *v[5];
    conf_route_cache_t *rc = &r->cache;
    size_t k;

    CN_GET_FIELDS(c, n, names, v);
    if (r->origin.kind != CONF_ORIGIN_URL && r->origin.kind != CONF_ORIGIN_FUNCTION)
        cn_fail(c, cn_line_of(n), "only routes with an origin url or function can cache");
    rc->enabled = 1;
    rc->default_ttl_s = -1;
    if (v[0] != NULL) {
        k = cn_key_field(c, "default_ttl", 11);
        rc->default_ttl_s = get_seconds(c, v[0]);
        cn_key_pop(c, k);
    }
    if (v[1] != NULL) {
        k = cn_key_field(c, "override", 8);
        rc->override = cn_get_bool(c, v[1]);
        if (rc->override && rc->default_ttl_s <= 0)
            cn_fail(c, cn_line_of(v[1]), "needs a default_ttl above 0s");
        cn_key_pop(c, k);
    }
    if (v[2] != NULL) {
        k = cn_key_field(c, "stale_while_revalidate", 22);
        rc->stale_while_revalidate_s = get_seconds(c, v[2]);
        cn_key_pop(c, k);
    }
    if (v[3] != NULL) {
        k = cn_key_field(c, "stale_if_error", 14);
        rc->stale_if_error_s = get_seconds(c, v[3]);
        cn_key_pop(c, k);
    }
    if (v[4] != NULL) {
        k = cn_key_field(c, "key", 3);
        parse_cache_key(c, v[4], rc);
        cn_key_pop(c, k);
    }
}

/* A non-empty list of method names -> CONF_M_* mask; GET implies HEAD. */
static unsigned get_methods(ctx_t *c, yaml_node_t *n)
{
    size_t count;
    yaml_node_item_t *items = cn_get_seq(c, n, &count, 1);
    unsigned mask = 0;

    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = cn_node_at(c, items[i]);
        size_t len, ki = cn_key_index(c, i);
        const char *m = cn_scalar(c, item, "expected a string", &len);
        unsigned bit = conf_method_bit(m, len);
        if (bit == 0)
            cn_fail(c, cn_line_of(item), "unknown method \"%s\" (use GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS)", m);
        mask |= bit == CONF_M_GET ? CONF_M_GET | CONF_M_HEAD : bit;
        cn_key_pop(c, ki);
    }
    return mask;
}

/*
 * The rate and burst keys of the mapping `map` (either may be NULL): rate: "100/s", burst: 1..1e9 (default: the rate's
 * count). A burst without a rate is an error; no rate leaves out->enabled 0.
 */
static void get_rate_fields(ctx_t *c, yaml_node_t *rate, yaml_node_t *burst, conf_rate_t *out)
{
    size_t k;

    if (rate == NULL) {
        if (burst != NULL)
            cn_fail_field(c, "burst", cn_line_of(burst), "only allowed with rate");
        return;
    }
    k = cn_key_field(c, "rate", 4);
    cn_get_rate(c, rate, &out->count, &out->per_ms);
    cn_key_pop(c, k);
    out->burst = out->count;
    if (burst != NULL) {
        k = cn_key_field(c, "burst", 5);
        out->burst = cn_get_int(c, burst, 1, CONF_MAX_RATE_COUNT);
        cn_key_pop(c, k);
    }
    out->enabled = 1;
}

/* A rate block: { rate: 100/s, burst: 50 } (route throttle and ip_throttle). */
static void parse_rate_block(ctx_t *c, yaml_node_t *n, conf_rate_t *out)
{
    static const char *const names[] = {"rate", "burst"};
    yaml_node_t *v[2];

    CN_GET_FIELDS(c, n, names, v);
    if (v[0] == NULL)
        cn_fail_field(c, "rate", cn_line_of(n), "is required");
    get_rate_fields(c, v[0], v[1], out);
}

/* A string or a non-empty list of strings, each non-empty. */
static char **get_strings(ctx_t *c, yaml_node_t *n, size_t *count)
{
    char **out;

    if (n->type != YAML_SCALAR_NODE)
        return get_string_list(c, n, count, 0);
    out = cn_arena_alloc(c, 1, sizeof(*out));
    out[0] = cn_get_nonempty_string(c, n);
    *count = 1;
    return out;
}

static void parse_jwt(ctx_t *c, yaml_node_t *n, conf_jwt_t *j)
{
    enum { F_JWKS, F_ISSUER, F_AUDIENCE, F_LEEWAY, F_ALGORITHMS, F_COUNT };
    static const char *const names[] = {"jwks", "issuer", "audience", "leeway", "algorithms"};
    yaml_node_t *v[F_COUNT];
    size_t k;

    CN_GET_FIELDS(c, n, names, v);
    if (v[F_JWKS] == NULL)
        cn_fail_field(c, "jwks", cn_line_of(n), "is required");
    j->enabled = 1;
    k = cn_key_field(c, "jwks", 4);
    j->jwks = cn_get_path(c, v[F_JWKS]);
    cn_key_pop(c, k);
    if (v[F_ISSUER] != NULL) {
        k = cn_key_field(c, "issuer", 6);
        j->issuer = cn_get_nonempty_string(c, v[F_ISSUER]);
        cn_key_pop(c, k);
    }
    if (v[F_AUDIENCE] != NULL) {
        k = cn_key_field(c, "audience", 8);
        j->audiences = get_strings(c, v[F_AUDIENCE], &j->naudiences);
        cn_key_pop(c, k);
    }
    j->leeway_s = CONF_DEFAULT_JWT_LEEWAY_S;
    if (v[F_LEEWAY] != NULL) {
        k = cn_key_field(c, "leeway", 6);
        j->leeway_s = cn_get_duration(c, v[F_LEEWAY], 0, CONF_MAX_JWT_LEEWAY_S * 1000) / 1000;
        cn_key_pop(c, k);
    }
    j->algorithms = CONF_JWT_HS256 | CONF_JWT_RS256 | CONF_JWT_ES256;
    if (v[F_ALGORITHMS] != NULL) {
        static const struct {
            const char *name;
            unsigned bit;
        } algs[] = {{"HS256", CONF_JWT_HS256}, {"RS256", CONF_JWT_RS256}, {"ES256", CONF_JWT_ES256}};
        size_t count;
        yaml_node_item_t *items;
        k = cn_key_field(c, "algorithms", 10);
        items = cn_get_seq(c, v[F_ALGORITHMS], &count, 1);
        j->algorithms = 0;
        for (size_t i = 0; i < count; i++) {
            yaml_node_t *item = cn_node_at(c, items[i]);
            size_t ki = cn_key_index(c, i), a;
            const char *name = cn_scalar(c, item, "expected a string", NULL);
            for (a = 0; a < sizeof(algs) / sizeof(algs[0]); a++)
                if (strcmp(name, algs[a].name) == 0)
                    break;
            if (a == sizeof(algs) / sizeof(algs[0]))
                cn_fail(c, cn_line_of(item), "unknown algorithm \"%s\" (use HS256, RS256 or ES256)", name);
            j->algorithms |= algs[a].bit;
            cn_key_pop(c, ki);
        }
        cn_key_pop(c, k);
    }
}

/* auth: none | api_key | { api_key: bool, jwt: {...} } */
static void parse_auth(ctx_t *c, yaml_node_t *n, conf_route_t *r)
{
    static const char *const names[] = {"api_key", "jwt"};
    yaml_node_t *v[2];
    size_t k;

    if (n->type == YAML_SCALAR_NODE) {
        const char *s = cn_scalar(c, n, "expected a string", NULL);
        if (strcmp(s, "none") == 0)
            return;
        if (strcmp(s, "api_key") == 0) {
            r->api_key = 1;
            return;
        }
        if (strcmp(s, "jwt") == 0)
            cn_fail(c, cn_line_of(n), "jwt needs a mapping with jwks (auth: { jwt: { jwks: FILE } })");
        cn_fail(c, cn_line_of(n), "expected none, api_key or a mapping { api_key: true, jwt: {...} }, not \"%s\"", s);
    }
    CN_GET_FIELDS(c, n, names, v);
    if (v[0] != NULL) {
        k = cn_key_field(c, "api_key", 7);
        r->api_key = cn_get_bool(c, v[0]);
        cn_key_pop(c, k);
    }
    if (v[1] != NULL) {
        k = cn_key_field(c, "jwt", 3);
        parse_jwt(c, v[1], &r->jwt);
        cn_key_pop(c, k);
    }
}

/* One CORS origin "scheme://host[:port]" -> lower-cased, without a trailing '/' or the scheme's default port. */
static char *get_cors_origin(ctx_t *c, yaml_node_t *n)
{
    const char *s = cn_get_nonempty_string(c, n);
    url_parts_t u;
    char port[8] = "";
    char *out;
    int ipv6;

    split_url(c, n, s, "origin", &u);
    if (strcmp(u.path, "") != 0 && strcmp(u.path, "/") != 0)
        cn_fail(c, cn_line_of(n), "bad origin \"%s\": a path is not allowed", s);
    if (u.has_port && u.port != (u.https ? 443 : 80))
        snprintf(port, sizeof(port), ":%u", (unsigned)u.port);
    ipv6 = memchr(u.host, ':', u.host_len) != NULL;
    out = cn_arena_printf(c, "%s://%s%.*s%s%s", u.https ? "https" : "http", ipv6 ? "[" : "", (int)u.host_len, u.host,
                          ipv6 ? "]" : "", port);
    cn_lower(out);
    return out;
}

/* The scalar "*". */
static int is_star(yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE && n->data.scalar.length == 1 && n->data.scalar.value[0] == '*';
}

/* A non-empty list of header names, lower-cased when `lower`, else as written. */
static char **get_header_list(ctx_t *c, yaml_node_t *n, size_t *count, int lower)
{
    yaml_node_item_t *items = cn_get_seq(c, n, count, 1);
    char **out = cn_arena_alloc(c, *count, sizeof(*out));

    for (size_t i = 0; i < *count; i++) {
        size_t len, ki = cn_key_index(c, i);
        yaml_node_t *item = cn_node_at(c, items[i]);
        const char *name = cn_scalar(c, item, "expected a string", &len);
        if (!is_token(name, len))
            cn_fail(c, cn_line_of(item), "bad header name \"%s\"", name);
        out[i] = cn_arena_strndup(c, name, len);
        if (lower)
            cn_lower(out[i]);
        cn_key_pop(c, ki);
    }
    return out;
}

static void parse_cors(ctx_t *c, yaml_node_t *n, conf_cors_t *cors)
{
    enum { F_ORIGINS, F_METHODS, F_HEADERS, F_EXPOSE, F_CREDENTIALS, F_MAX_AGE, F_COUNT };
    static const char *const names[] = {"origins", "methods", "headers", "expose_headers", "credentials", "max_age"};
    yaml_node_t *v[F_COUNT];
    size_t k;

    CN_GET_FIELDS(c, n, names, v);
    if (v[F_ORIGINS] == NULL)
        cn_fail_field(c, "origins", cn_line_of(n), "is required");
    cors->enabled = 1;
    k = cn_key_field(c, "origins", 7);
    if (is_star(v[F_ORIGINS])) {
        cors->any_origin = 1;
    } else if (v[F_ORIGINS]->type == YAML_SCALAR_NODE) {
        cn_fail(c, cn_line_of(v[F_ORIGINS]), "expected \"*\" or a list such as [\"https://app.example.com\"]");
    } else {
        yaml_node_item_t *items = cn_get_seq(c, v[F_ORIGINS], &cors->norigins, 1);
        cors->origins = cn_arena_alloc(c, cors->norigins, sizeof(*cors->origins));
        for (size_t i = 0; i < cors->norigins; i++) {
            size_t ki = cn_key_index(c, i);
            cors->origins[i] = get_cors_origin(c, cn_node_at(c, items[i]));
            cn_key_pop(c, ki);
        }
    }
    cn_key_pop(c, k);
    cors->methods = CONF_M_GET | CONF_M_HEAD | CONF_M_POST;
    if (v[F_METHODS] != NULL) {
        k = cn_key_field(c, "methods", 7);
        cors->methods = get_methods(c, v[F_METHODS]);
        cn_key_pop(c, k);
    }
    if (v[F_HEADERS] != NULL) {
        k = cn_key_field(c, "headers", 7);
        if (is_star(v[F_HEADERS]))
            cors->any_header = 1;
        else if (v[F_HEADERS]->type == YAML_SCALAR_NODE)
            cn_fail(c, cn_line_of(v[F_HEADERS]), "expected \"*\" or a list of header names");
        else
            cors->headers = get_header_list(c, v[F_HEADERS], &cors->nheaders, 1);
        cn_key_pop(c, k);
    }
    if (v[F_EXPOSE] != NULL) {
        k = cn_key_field(c, "expose_headers", 14);
        cors->expose = get_header_list(c, v[F_EXPOSE], &cors->nexpose, 0);
        cn_key_pop(c, k);
    }
    if (v[F_CREDENTIALS] != NULL) {
        k = cn_key_field(c, "credentials", 11);
        cors->credentials = cn_get_bool(c, v[F_CREDENTIALS]);
        if (cors->credentials && cors->any_origin)
            cn_fail(c, cn_line_of(v[F_CREDENTIALS]), "not allowed with origins \"*\" (the Fetch standard forbids it)");
        cn_key_pop(c, k);
    }
    cors->max_age_s = -1;
    if (v[F_MAX_AGE] != NULL) {
        k = cn_key_field(c, "max_age", 7);
        cors->max_age_s = (int64_t)(cn_get_duration(c, v[F_MAX_AGE], 0, CONF_MAX_CORS_MAX_AGE_S * 1000) / 1000);
        cn_key_pop(c, k);
    }
}

/* hooks: { request: FILE, response: FILE, on_error: fail | continue }; a request hook with every origin kind, a response
 * hook with url and function origins only (static files and the item store answer without it: refused, not ignored). */
static void parse_hooks(ctx_t *c, yaml_node_t *n, conf_route_hooks_t *h, conf_origin_kind_t origin)
{
    enum { F_REQUEST, F_RESPONSE, F_ON_ERROR, F_COUNT };
    static const char *const names[] = {"request", "response", "on_error"};
    yaml_node_t *v[F_COUNT];
    size_t k;

    CN_GET_FIELDS(c, n, names, v);
    if (v[F_REQUEST] == NULL && v[F_RESPONSE] == NULL)
        cn_fail(c, cn_line_of(n), "request or response is required");
    /* the files are resolved like origin.function's and, like it, not opened here (the Lua VMs load them) */
    if (v[F_REQUEST] != NULL) {
        k = cn_key_field(c, "request", 7);
        h->request_file = cn_get_path(c, v[F_REQUEST]);
        h->request_line = (unsigned)cn_line_of(v[F_REQUEST]);
        cn_key_pop(c, k);
    }
    if (v[F_RESPONSE] != NULL) {
        k = cn_key_field(c, "response", 8);
        if (origin == CONF_ORIGIN_STATIC || origin == CONF_ORIGIN_STORE)
            cn_fail(c, cn_line_of(v[F_RESPONSE]), "a response hook runs on url and function origins only (%s answer without it)",
                    origin == CONF_ORIGIN_STATIC ? "static files" : "the item store's routes");
        h->response_file = cn_get_path(c, v[F_RESPONSE]);
        h->response_line = (unsigned)cn_line_of(v[F_RESPONSE]);
        cn_key_pop(c, k);
    }
    if (v[F_ON_ERROR] != NULL) {
        const char *s;
        k = cn_key_field(c, "on_error", 8);
        s = cn_scalar(c, v[F_ON_ERROR], "expected fail or continue", NULL);
        if (strcmp(s, "continue") == 0)
            h->on_error_continue = 1;
        else if (strcmp(s, "fail") != 0)
            cn_fail(c, cn_line_of(v[F_ON_ERROR]), "expected fail or continue, not \"%s\"", s);
        cn_key_pop(c, k);
    }
}

static void parse_route(ctx_t *c, yaml_node_t *n, conf_route_t *r)
{
    static const char *const names[] = {"path", "methods",  "origin",      "timeout", "max_body_size", "headers", "cache",
                                        "auth", "throttle", "ip_throttle", "cors",    "hooks",         "internal"};
    yaml_node_t *v[13];
    size_t k;

    CN_GET_FIELDS(c, n, names, v);
    r->line = (unsigned)cn_line_of(n);
    if (v[0] == NULL)
        cn_fail_field(c, "path", cn_line_of(n), "is required");
    if (v[2] == NULL)
        cn_fail_field(c, "origin", cn_line_of(n), "is required");

    k = cn_key_field(c, "path", 4);
    r->path = cn_get_string(c, v[0]);
    if (r->path[0] != '/')
        cn_fail(c, cn_line_of(v[0]), "must start with '/'");
    if (strpbrk(r->path, "{}") != NULL)
        parse_pattern(c, v[0], r);
    cn_key_pop(c, k);

    if (v[1] != NULL) {
        k = cn_key_field(c, "methods", 7);
        r->methods = get_methods(c, v[1]);
        cn_key_pop(c, k);
    }

    k = cn_key_field(c, "origin", 6);
    parse_origin(c, v[2], &r->origin);
    if (r->origin.kind == CONF_ORIGIN_STORE && r->origin.store_kind == CONF_STORE_REST && r->is_pattern)
        cn_fail(c, cn_line_of(v[2]), "store: rest needs a prefix path, not a pattern");
    cn_key_pop(c, k);

    r->timeout_ms = CONF_DEFAULT_TIMEOUT_MS;
    if (v[3] != NULL) {
        k = cn_key_field(c, "timeout", 7);
        r->timeout_ms = cn_get_duration(c, v[3], CONF_MIN_TIMEOUT_MS, CONF_MAX_TIMEOUT_MS);
        cn_key_pop(c, k);
    }
    r->max_body_size = c->impl->pub.limits.max_body_size;
    if (v[4] != NULL) {
        k = cn_key_field(c, "max_body_size", 13);
        r->max_body_size = cn_get_size(c, v[4], CONF_MAX_MAX_BODY_SIZE);
        cn_key_pop(c, k);
    }
    if (v[5] != NULL) {
        k = cn_key_field(c, "headers", 7);
        parse_headers(c, v[5], r);
        cn_key_pop(c, k);
    }
    if (v[6] != NULL) {
        k = cn_key_field(c, "cache", 5);
        parse_route_cache(c, v[6], r);
        cn_key_pop(c, k);
    }
    if (v[7] != NULL) {
        k = cn_key_field(c, "auth", 4);
        parse_auth(c, v[7], r);
        cn_key_pop(c, k);
    }
    if (v[8] != NULL) {
        k = cn_key_field(c, "throttle", 8);
        parse_rate_block(c, v[8], &r->throttle);
        cn_key_pop(c, k);
    }
    if (v[9] != NULL) {
        k = cn_key_field(c, "ip_throttle", 11);
        parse_rate_block(c, v[9], &r->ip_throttle);
        cn_key_pop(c, k);
    }
    if (v[10] != NULL) {
        k = cn_key_field(c, "cors", 4);
        parse_cors(c, v[10], &r->cors);
        cn_key_pop(c, k);
    }
    if (v[11] != NULL) {
        k = cn_key_field(c, "hooks", 5);
        parse_hooks(c, v[11], &r->hooks, r->origin.kind);
        cn_key_pop(c, k);
    }
    if (v[12] != NULL) {
        k = cn_key_field(c, "internal", 8);
        r->internal = cn_get_bool(c, v[12]);
        cn_key_pop(c, k);
    }
}

/* "*", "*.suffix" or a plain name; lower-cased. */
static char *get_host_name(ctx_t *c, yaml_node_t *n)
{
    char *name = cn_get_string(c, n);
    const char *rest = name;

    cn_lower(name);
    if (strcmp(name, "*") == 0)
        return name;
    if (strncmp(name, "*.", 2) == 0)
        rest = name + 2;
    if (*rest == '\0' || *rest == '.')
        cn_fail(c, cn_line_of(n), "bad host name (use \"*\", a name or \"*.suffix\")");
    for (const char *s = rest; *s != '\0'; s++)
        if (!is_host_char(*s) && *s != ':' && *s != '[' && *s != ']')
            cn_fail(c, cn_line_of(n), "bad host name (use \"*\", a name or \"*.suffix\")");
    return name;
}

static void parse_hosts(ctx_t *c, yaml_node_t *n)
{
    conf_t *conf = &c->impl->pub;

    cn_require_map(c, n);
    conf->nhosts = cn_map_count(n);
    if (conf->nhosts == 0)
        cn_fail(c, cn_line_of(n), "must not be empty");
    conf->hosts = cn_arena_alloc(c, conf->nhosts, sizeof(*conf->hosts));
    for (size_t i = 0; i < conf->nhosts; i++) {
        static const char *const names[] = {"routes"};
        yaml_node_pair_t *pair = &n->data.mapping.pairs.start[i];
        yaml_node_t *kn = cn_node_at(c, pair->key), *vn = cn_node_at(c, pair->value), *v[1];
        conf_host_t *h = &conf->hosts[i];
        yaml_node_item_t *items;
        size_t len, k;
        const char *written = cn_scalar(c, kn, "keys must be strings", &len);

        k = cn_key_push(c, ".\"%.*s\"", (int)len, written);
        h->name = get_host_name(c, kn);
        for (size_t j = 0; j < i; j++)
            if (strcmp(conf->hosts[j].name, h->name) == 0)
                cn_fail(c, cn_line_of(kn), "duplicate host");
        CN_GET_FIELDS(c, vn, names, v);
        if (v[0] == NULL)
            cn_fail_field(c, "routes", cn_line_of(vn), "is required");
        cn_key_field(c, "routes", 6);
        items = cn_get_seq(c, v[0], &h->nroutes, 1);
        h->routes = cn_arena_alloc(c, h->nroutes, sizeof(*h->routes));
        for (size_t r = 0; r < h->nroutes; r++) {
            size_t kr = cn_key_index(c, r);
            parse_route(c, cn_node_at(c, items[r]), &h->routes[r]);
            cn_key_pop(c, kr);
        }
        cn_key_pop(c, k);
    }
}

static void parse_cache(ctx_t *c, yaml_node_t *n)
{
    static const char *const names[] = {"path", "max_size", "max_object_size"};
    yaml_node_t *v[3] = {NULL, NULL, NULL};
    conf_t *conf = &c->impl->pub;
    size_t k = cn_key_field(c, "cache", 5);

    if (n != NULL)
        CN_GET_FIELDS(c, n, names, v);
    conf->cache.max_size = CONF_DEFAULT_CACHE_MAX_SIZE;
    conf->cache.max_object_size = CONF_DEFAULT_CACHE_MAX_OBJECT_SIZE;
    if (v[0] != NULL) {
        size_t kf = cn_key_field(c, "path", 4);
        conf->cache.path = cn_get_path(c, v[0]);
        cn_key_pop(c, kf);
    } else {
        conf->cache.path = cn_arena_printf(c, "%s/cache", conf->data_dir);
    }
    if (v[1] != NULL) {
        size_t kf = cn_key_field(c, "max_size", 8);
        conf->cache.max_size = cn_get_size(c, v[1], CONF_MAX_CACHE_MAX_SIZE);
        if (conf->cache.max_size < CONF_MIN_CACHE_MAX_SIZE)
            cn_fail(c, cn_line_of(v[1]), "must be at least 16MiB");
        cn_key_pop(c, kf);
    }
    if (v[2] != NULL) {
        size_t kf = cn_key_field(c, "max_object_size", 15);
        conf->cache.max_object_size = cn_get_size(c, v[2], CONF_MAX_CACHE_MAX_SIZE);
        if (conf->cache.max_object_size == 0 || conf->cache.max_object_size > conf->cache.max_size / 4)
            cn_fail(c, cn_line_of(v[2]), "must be between 1 and a quarter of max_size");
        cn_key_pop(c, kf);
    } else if (conf->cache.max_object_size > conf->cache.max_size / 4) {
        conf->cache.max_object_size = conf->cache.max_size / 4;
    }
    cn_key_pop(c, k);
}

/* A number as DynamoDB writes one (the store checks its range and digits at open). */
static int is_decimal(const char *s)
{
    char *end;
    if (*s == '\0' || isspace((unsigned char)*s))
        return 0;
    strtod(s, &end);
    return *end == '\0' && strpbrk(s, "xXiInN") == NULL; /* no hex, inf, nan */
}

/* One attribute's rule: { type, required, min, max, min_length, max_length, enum, pattern }. */
static void parse_store_attr(ctx_t *c, yaml_node_t *n, conf_store_attr_t *a)
{
    static const char *const names[] = {"type", "required", "min", "max", "min_length", "max_length", "enum", "pattern"};
    static const char *const types[] = {"S", "N", "B", "BOOL", "NULL", "L", "M", "SS", "NS", "BS"};
    enum { F_TYPE, F_REQUIRED, F_MIN, F_MAX, F_MINLEN, F_MAXLEN, F_ENUM, F_PATTERN };
    yaml_node_t *v[8];
    size_t k;

    CN_GET_FIELDS(c, n, names, v);
    a->min_length = a->max_length = -1;
    if (v[F_TYPE] != NULL) {
        int ok = 0;
        k = cn_key_field(c, "type", 4);
        a->type = cn_get_string(c, v[F_TYPE]);
        for (size_t i = 0; i != sizeof(types) / sizeof(types[0]); ++i)
            ok |= strcmp(types[i], a->type) == 0;
        if (!ok)
            cn_fail(c, cn_line_of(v[F_TYPE]), "expected one of S, N, B, BOOL, NULL, L, M, SS, NS, BS");
        cn_key_pop(c, k);
    }
    int is_n = a->type != NULL && strcmp(a->type, "N") == 0, is_s = a->type != NULL && strcmp(a->type, "S") == 0;
    if (v[F_REQUIRED] != NULL) {
        k = cn_key_field(c, "required", 8);
        a->required = cn_get_bool(c, v[F_REQUIRED]);
        cn_key_pop(c, k);
    }
    for (int i = F_MIN; i <= F_MAX; ++i) {
        if (v[i] == NULL)
            continue;
        k = cn_key_field(c, names[i], 3);
        char *num = cn_get_nonempty_string(c, v[i]);
        if (!is_n)
            cn_fail(c, cn_line_of(v[i]), "needs type: N");
        if (!is_decimal(num))
            cn_fail(c, cn_line_of(v[i]), "expected a number");
        *(i == F_MIN ? &a->min : &a->max) = num;
        cn_key_pop(c, k);
    }
    for (int i = F_MINLEN; i <= F_MAXLEN; ++i) {
        if (v[i] == NULL)
            continue;
        k = cn_key_field(c, names[i], 10);
        if (is_n || (a->type != NULL && (!strcmp(a->type, "BOOL") || !strcmp(a->type, "NULL"))))
            cn_fail(c, cn_line_of(v[i]), "is for strings, binaries, lists, maps and sets");
        *(i == F_MINLEN ? &a->min_length : &a->max_length) = (long)cn_get_int(c, v[i], 0, 1u << 30);
        cn_key_pop(c, k);
    }
    if (a->min != NULL && a->max != NULL && strtod(a->min, NULL) > strtod(a->max, NULL))
        cn_fail_field(c, "max", cn_line_of(v[F_MAX]), "is below min: no value could be written");
    if (a->min_length >= 0 && a->max_length >= 0 && a->min_length > a->max_length)
        cn_fail_field(c, "max_length", cn_line_of(v[F_MAXLEN]), "is below min_length: no value could be written");
    if (v[F_ENUM] != NULL) {
        size_t count;
        k = cn_key_field(c, "enum", 4);
        if (!is_n && !is_s)
            cn_fail(c, cn_line_of(v[F_ENUM]), "needs type: S or N");
        yaml_node_item_t *items = cn_get_seq(c, v[F_ENUM], &count, 1);
        a->nenums = count;
        a->enums = cn_arena_alloc(c, count, sizeof(*a->enums));
        for (size_t i = 0; i != count; ++i) {
            size_t ki = cn_key_index(c, i);
            yaml_node_t *e = cn_node_at(c, items[i]);
            a->enums[i] = cn_get_string(c, e);
            if (is_n && !is_decimal(a->enums[i]))
                cn_fail(c, cn_line_of(e), "expected a number");
            cn_key_pop(c, ki);
        }
        cn_key_pop(c, k);
    }
    if (v[F_PATTERN] != NULL) {
        regex_t re;
        k = cn_key_field(c, "pattern", 7);
        a->pattern = cn_get_nonempty_string(c, v[F_PATTERN]);
        if (!is_s)
            cn_fail(c, cn_line_of(v[F_PATTERN]), "needs type: S");
        int rc = regcomp(&re, a->pattern, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char msg[128];
            regerror(rc, &re, msg, sizeof(msg));
            cn_fail(c, cn_line_of(v[F_PATTERN]), "bad regular expression: %s", msg);
        }
        regfree(&re);
        cn_key_pop(c, k);
    }
}

/* store.tables: { NAME: { attributes: { ATTR: RULE } } } */
static void parse_store_tables(ctx_t *c, yaml_node_t *n)
{
    static const char *const names[] = {"attributes"};
    conf_t *conf = &c->impl->pub;

    cn_require_map(c, n);
    conf->store.ntables = cn_map_count(n);
    conf->store.tables = cn_arena_alloc(c, conf->store.ntables, sizeof(*conf->store.tables));
    for (size_t i = 0; i < conf->store.ntables; i++) {
        yaml_node_pair_t *pair = &n->data.mapping.pairs.start[i];
        yaml_node_t *kn = cn_node_at(c, pair->key), *v[1];
        conf_store_table_t *t = &conf->store.tables[i];
        size_t len;
        const char *name = cn_scalar(c, kn, "keys must be strings", &len);
        size_t k = cn_key_push(c, ".\"%.*s\"", (int)len, name);

        if (len < 3 || len > 255 || strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != len)
            cn_fail(c, cn_line_of(kn), "bad table name (3 to 255 letters, digits, '_', '.' or '-')");
        t->name = cn_arena_strndup(c, name, len);
        t->line = (unsigned)cn_line_of(kn);
        for (size_t j = 0; j < i; j++)
            if (strcmp(conf->store.tables[j].name, t->name) == 0)
                cn_fail(c, cn_line_of(kn), "duplicate table");
        CN_GET_FIELDS(c, cn_node_at(c, pair->value), names, v);
        if (v[0] == NULL)
            cn_fail(c, t->line, "attributes is required");
        size_t ka = cn_key_field(c, "attributes", 10);
        cn_require_map(c, v[0]);
        t->nattrs = cn_map_count(v[0]);
        t->attrs = cn_arena_alloc(c, t->nattrs, sizeof(*t->attrs));
        for (size_t j = 0; j < t->nattrs; j++) {
            yaml_node_pair_t *ap = &v[0]->data.mapping.pairs.start[j];
            yaml_node_t *an = cn_node_at(c, ap->key);
            t->attrs[j].name = cn_get_nonempty_string(c, an);
            size_t kn = cn_key_field(c, t->attrs[j].name, strlen(t->attrs[j].name));
            parse_store_attr(c, cn_node_at(c, ap->value), &t->attrs[j]);
            cn_key_pop(c, kn);
        }
        cn_key_pop(c, ka);
        cn_key_pop(c, k);
    }
}

/* store.access_keys: [ { id, secret } ] */
static void parse_access_keys(ctx_t *c, yaml_node_t *n)
{
    static const char *const names[] = {"id", "secret"};
    conf_t *conf = &c->impl->pub;
    size_t count;
    yaml_node_item_t *items = cn_get_seq(c, n, &count, 1);

    conf->store.naccess_keys = count;
    conf->store.access_keys = cn_arena_alloc(c, count, sizeof(*conf->store.access_keys));
    for (size_t i = 0; i != count; ++i) {
        size_t k = cn_key_index(c, i), kf;
        yaml_node_t *e = cn_node_at(c, items[i]), *v[2];
        conf_access_key_t *a = &conf->store.access_keys[i];
        CN_GET_FIELDS(c, e, names, v);
        if (v[0] == NULL || v[1] == NULL)
            cn_fail(c, cn_line_of(e), "id and secret are required");
        kf = cn_key_field(c, "id", 2);
        a->id = cn_get_nonempty_string(c, v[0]);
        if (strspn(a->id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") != strlen(a->id))
            cn_fail(c, cn_line_of(v[0]), "an access key id has letters and digits only");
        for (size_t j = 0; j != i; ++j)
            if (strcmp(conf->store.access_keys[j].id, a->id) == 0)
                cn_fail(c, cn_line_of(v[0]), "duplicate access key id");
        cn_key_pop(c, kf);
        kf = cn_key_field(c, "secret", 6);
        a->secret = cn_get_nonempty_string(c, v[1]);
        cn_key_pop(c, kf);
        cn_key_pop(c, k);
    }
}

/* store: { path, max_size, tables, access_keys }: the item store's LMDB environment (always set: defaults without the
 * block), its schema validation rules and the DynamoDB API's SigV4 keys. */
static void parse_store(ctx_t *c, yaml_node_t *n)
{
    static const char *const names[] = {"path", "max_size", "tables", "access_keys"};
    yaml_node_t *v[4] = {NULL, NULL, NULL, NULL};
    conf_t *conf = &c->impl->pub;
    size_t k = cn_key_field(c, "store", 5);

    if (n != NULL)
        CN_GET_FIELDS(c, n, names, v);
    conf->store.max_size = CONF_DEFAULT_STORE_MAX_SIZE;
    if (v[0] != NULL) {
        size_t kf = cn_key_field(c, "path", 4);
        conf->store.path = cn_get_path(c, v[0]);
        cn_key_pop(c, kf);
    } else {
        conf->store.path = cn_arena_printf(c, "%s/store", conf->data_dir);
    }
    if (v[1] != NULL) {
        size_t kf = cn_key_field(c, "max_size", 8);
        conf->store.max_size = cn_get_size(c, v[1], CONF_MAX_CACHE_MAX_SIZE);
        if (conf->store.max_size < CONF_MIN_CACHE_MAX_SIZE)
            cn_fail(c, cn_line_of(v[1]), "must be at least 16MiB");
        cn_key_pop(c, kf);
    }
    if (v[2] != NULL) {
        size_t kf = cn_key_field(c, "tables", 6);
        parse_store_tables(c, v[2]);
        cn_key_pop(c, kf);
    }
    if (v[3] != NULL) {
        size_t kf = cn_key_field(c, "access_keys", 11);
        parse_access_keys(c, v[3]);
        cn_key_pop(c, kf);
    }
    cn_key_pop(c, k);
}

static void parse_admin(ctx_t *c, yaml_node_t *n)
{
    static const char *const names[] = {"address", "port", "token"};
    yaml_node_t *v[3];
    conf_t *conf = &c->impl->pub;
    size_t k;
    struct in_addr a4;
    struct in6_addr a6;

    CN_GET_FIELDS(c, n, names, v);
    if (v[1] == NULL)
        cn_fail_field(c, "port", cn_line_of(n), "is required");
    if (v[2] == NULL)
        cn_fail_field(c, "token", cn_line_of(n), "is required");
    conf->admin.enabled = 1;
    conf->admin.address = "127.0.0.1";
    if (v[0] != NULL) {
        k = cn_key_field(c, "address", 7);
        conf->admin.address = cn_get_nonempty_string(c, v[0]);
        if (inet_pton(AF_INET, conf->admin.address, &a4) != 1 && inet_pton(AF_INET6, conf->admin.address, &a6) != 1)
            cn_fail(c, cn_line_of(v[0]), "expected an IP address, not \"%s\"", conf->admin.address);
        cn_key_pop(c, k);
    }
    k = cn_key_field(c, "port", 4);
    conf->admin.port = (uint16_t)cn_get_int(c, v[1], 0, 65535);
    cn_key_pop(c, k);
    k = cn_key_field(c, "token", 5);
    conf->admin.token = cn_get_nonempty_string(c, v[2]);
    if (strlen(conf->admin.token) < 16)
        cn_fail(c, cn_line_of(v[2]), "must be at least 16 characters");
    cn_key_pop(c, k);
}

/* api_keys: { header: x-api-key, query: api_key } (also the defaults when n is NULL). */
static void parse_api_keys(ctx_t *c, yaml_node_t *n)
{
    static const char *const names[] = {"header", "query"};
    yaml_node_t *v[2] = {NULL, NULL};
    conf_t *conf = &c->impl->pub;
    size_t k = cn_key_field(c, "api_keys", 8);

    if (n != NULL)
        CN_GET_FIELDS(c, n, names, v);
    if (v[0] != NULL) {
        size_t kf = cn_key_field(c, "header", 6);
        conf->api_keys.header = get_header_name(c, v[0]);
        cn_key_pop(c, kf);
    } else {
        conf->api_keys.header = cn_arena_strndup(c, "x-api-key", 9);
    }
    if (v[1] != NULL) {
        size_t kf = cn_key_field(c, "query", 5);
        conf->api_keys.query = cn_get_nonempty_string(c, v[1]);
        cn_key_pop(c, kf);
    }
    cn_key_pop(c, k);
}

/* Plan and key names: [A-Za-z0-9._-]{1,64}. */
static int is_name(const char *s, size_t len)
{
    if (len == 0 || len > 64)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

/* Whether some route of some host has exactly this path as written. */
static int route_path_exists(const conf_t *conf, const char *path)
{
    for (size_t h = 0; h < conf->nhosts; h++)
        for (size_t r = 0; r < conf->hosts[h].nroutes; r++)
            if (strcmp(conf->hosts[h].routes[r].path, path) == 0)
                return 1;
    return 0;
}

/* plans.NAME.overrides[i]: { path: /api/search, methods: [GET], rate: 10/s, burst: 5 }; the hosts are already read. */
static void parse_override(ctx_t *c, yaml_node_t *n, conf_plan_t *p, size_t i)
{
    static const char *const names[] = {"path", "methods", "rate", "burst"};
    yaml_node_t *v[4];
    conf_plan_override_t *o = &p->overrides[i];
    size_t k;

    CN_GET_FIELDS(c, n, names, v);
    o->line = (unsigned)cn_line_of(n);
    if (v[0] == NULL)
        cn_fail_field(c, "path", cn_line_of(n), "is required");
    if (v[2] == NULL)
        cn_fail_field(c, "rate", cn_line_of(n), "is required");
    k = cn_key_field(c, "path", 4);
    o->path = cn_get_nonempty_string(c, v[0]);
    if (!route_path_exists(&c->impl->pub, o->path))
        cn_fail(c, cn_line_of(v[0]), "no route has the path \"%s\" (use a route's path exactly as written in hosts)", o->path);
    cn_key_pop(c, k);
    if (v[1] != NULL) {
        k = cn_key_field(c, "methods", 7);
        o->methods = get_methods(c, v[1]);
        cn_key_pop(c, k);
    }
    get_rate_fields(c, v[2], v[3], &o->rate);
    for (size_t j = 0; j < i; j++) {
        const conf_plan_override_t *e = &p->overrides[j];
        if (strcmp(e->path, o->path) == 0 && (e->methods == 0 || o->methods == 0 || (e->methods & o->methods) != 0))
            cn_fail(c, o->line, "overlaps overrides[%zu] (the same path and method)", j);
    }
}

static void parse_plan(ctx_t *c, yaml_node_t *n, conf_plan_t *p)
{
    static const char *const names[] = {"rate", "burst", "quota", "overrides"};
    yaml_node_t *v[4];
    size_t k;

    CN_GET_FIELDS(c, n, names, v);
    get_rate_fields(c, v[0], v[1], &p->rate);
    if (v[2] != NULL) {
        k = cn_key_field(c, "quota", 5);
        cn_get_quota(c, v[2], &p->quota);
        cn_key_pop(c, k);
    }
    if (v[3] != NULL) {
        yaml_node_item_t *items;
        k = cn_key_field(c, "overrides", 9);
        items = cn_get_seq(c, v[3], &p->noverrides, 1);
        p->overrides = cn_arena_alloc(c, p->noverrides, sizeof(*p->overrides));
        for (size_t i = 0; i < p->noverrides; i++) {
            size_t ki = cn_key_index(c, i);
            parse_override(c, cn_node_at(c, items[i]), p, i);
            cn_key_pop(c, ki);
        }
        cn_key_pop(c, k);
    }
}

/* plans: { NAME: {...}, ... }; read after hosts, which the overrides name. */
static void parse_plans(ctx_t *c, yaml_node_t *n)
{
    conf_t *conf = &c->impl->pub;

    cn_require_map(c, n);
    conf->nplans = cn_map_count(n);
    conf->plans = cn_arena_alloc(c, conf->nplans, sizeof(*conf->plans));
    for (size_t i = 0; i < conf->nplans; i++) {
        yaml_node_pair_t *pair = &n->data.mapping.pairs.start[i];
        yaml_node_t *kn = cn_node_at(c, pair->key);
        conf_plan_t *p = &conf->plans[i];
        size_t len, k;
        const char *name = cn_scalar(c, kn, "keys must be strings", &len);

        k = cn_key_push(c, ".\"%.*s\"", (int)len, name);
        if (!is_name(name, len))
            cn_fail(c, cn_line_of(kn), "bad plan name (use 1 to 64 letters, digits, '.', '_' or '-')");
        p->name = cn_arena_strndup(c, name, len);
        p->line = (unsigned)cn_line_of(kn);
        for (size_t j = 0; j < i; j++)
            if (strcmp(conf->plans[j].name, p->name) == 0)
                cn_fail(c, cn_line_of(kn), "duplicate plan");
        parse_plan(c, cn_node_at(c, pair->value), p);
        cn_key_pop(c, k);
    }
}

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* keys[i]: { name: demo, sha256: 64 hex digits, plan: basic, enabled: true }; read after plans. */
static void parse_key(ctx_t *c, yaml_node_t *n, size_t i)
{
    static const char *const names[] = {"name", "sha256", "plan", "enabled"};
    yaml_node_t *v[4];
    conf_t *conf = &c->impl->pub;
    conf_key_t *key = &conf->keys[i];
    size_t k, len;
    const char *s;

    CN_GET_FIELDS(c, n, names, v);
    key->line = (unsigned)cn_line_of(n);
    if (v[0] == NULL)
        cn_fail_field(c, "name", cn_line_of(n), "is required");
    if (v[1] == NULL)
        cn_fail_field(c, "sha256", cn_line_of(n), "is required");

    k = cn_key_field(c, "name", 4);
    s = cn_scalar(c, v[0], "expected a string", &len);
    if (!is_name(s, len))
        cn_fail(c, cn_line_of(v[0]), "bad key name (use 1 to 64 letters, digits, '.', '_' or '-')");
    key->name = cn_arena_strndup(c, s, len);
    for (size_t j = 0; j < i; j++)
        if (strcmp(conf->keys[j].name, key->name) == 0)
            cn_fail(c, cn_line_of(v[0]), "duplicate name \"%s\" (also keys[%zu])", key->name, j);
    cn_key_pop(c, k);

    k = cn_key_field(c, "sha256", 6);
    s = cn_scalar(c, v[1], "expected a string", &len);
    for (size_t b = 0; b < 32 && len == 64; b++) {
        int hi = hex_value(s[2 * b]), lo = hex_value(s[2 * b + 1]);
        if (hi < 0 || lo < 0)
            len = 0;
        else
            key->sha256[b] = (uint8_t)(hi << 4 | lo);
    }
    if (len != 64)
        cn_fail(c, cn_line_of(v[1]), "expected 64 hex digits (the key's SHA-256: printf %%s KEY | sha256sum)");
    for (size_t j = 0; j < i; j++)
        if (memcmp(conf->keys[j].sha256, key->sha256, sizeof(key->sha256)) == 0)
            cn_fail(c, cn_line_of(v[1]), "the same key as keys[%zu]", j);
    cn_key_pop(c, k);

    key->plan = -1;
    if (v[2] != NULL) {
        k = cn_key_field(c, "plan", 4);
        s = cn_scalar(c, v[2], "expected a string", &len);
        for (size_t j = 0; j < conf->nplans && key->plan < 0; j++)
            if (strlen(conf->plans[j].name) == len && memcmp(conf->plans[j].name, s, len) == 0)
                key->plan = (int)j;
        if (key->plan < 0)
            cn_fail(c, cn_line_of(v[2]), "no plan named \"%s\" in plans", s);
        cn_key_pop(c, k);
    }
    key->enabled = 1;
    if (v[3] != NULL) {
        k = cn_key_field(c, "enabled", 7);
        key->enabled = cn_get_bool(c, v[3]);
        cn_key_pop(c, k);
    }
}

static void parse_keys(ctx_t *c, yaml_node_t *n)
{
    conf_t *conf = &c->impl->pub;
    yaml_node_item_t *items = cn_get_seq(c, n, &conf->nkeys, 0);

    conf->keys = cn_arena_alloc(c, conf->nkeys, sizeof(*conf->keys));
    for (size_t i = 0; i < conf->nkeys; i++) {
        size_t ki = cn_key_index(c, i);
        parse_key(c, cn_node_at(c, items[i]), i);
        cn_key_pop(c, ki);
    }
}

void cn_parse_root(ctx_t *c, yaml_node_t *root)
{
    static const char *const names[] = {"threads",    "data_dir", "listen", "limits", "shutdown_timeout",
                                        "access_log", "hosts",    "cache",  "admin",  "api_keys",
                                        "plans",      "keys",     "lua",    "store"};
    yaml_node_t *v[14];
    conf_t *conf = &c->impl->pub;
    size_t k;

    if (root == NULL) /* an empty file */
        cn_fail_field(c, "listen", 1, "is required");
    if (root->type != YAML_MAPPING_NODE)
        cn_fail(c, cn_line_of(root), "expected a mapping at the top level");
    CN_GET_FIELDS(c, root, names, v);
    if (v[2] == NULL)
        cn_fail_field(c, "listen", cn_line_of(root), "is required");
    if (v[6] == NULL)
        cn_fail_field(c, "hosts", cn_line_of(root), "is required");

    if (v[0] != NULL) {
        k = cn_key_field(c, "threads", 7);
        conf->threads = (unsigned)cn_get_int(c, v[0], 1, CONF_MAX_THREADS);
        cn_key_pop(c, k);
    } else {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        conf->threads = n < 1 ? 1 : n > CONF_MAX_THREADS ? CONF_MAX_THREADS : (unsigned)n;
    }

    if (v[1] != NULL) {
        k = cn_key_field(c, "data_dir", 8);
        conf->data_dir = cn_get_path(c, v[1]);
        cn_key_pop(c, k);
    } else {
        conf->data_dir = cn_resolve_path(c, "var");
    }

    {
        yaml_node_item_t *items;
        k = cn_key_field(c, "listen", 6);
        items = cn_get_seq(c, v[2], &conf->nlisteners, 1);
        conf->listeners = cn_arena_alloc(c, conf->nlisteners, sizeof(*conf->listeners));
        for (size_t i = 0; i < conf->nlisteners; i++) {
            size_t ki = cn_key_index(c, i);
            parse_listener(c, cn_node_at(c, items[i]), &conf->listeners[i]);
            cn_key_pop(c, ki);
        }
        cn_key_pop(c, k);
    }

    conf->limits.max_body_size = CONF_DEFAULT_MAX_BODY_SIZE;
    conf->limits.idle_timeout_ms = CONF_DEFAULT_IDLE_TIMEOUT_MS;
    if (v[3] != NULL) {
        static const char *const lnames[] = {"max_body_size", "idle_timeout"};
        yaml_node_t *lv[2];
        k = cn_key_field(c, "limits", 6);
        CN_GET_FIELDS(c, v[3], lnames, lv);
        if (lv[0] != NULL) {
            size_t kl = cn_key_field(c, "max_body_size", 13);
            conf->limits.max_body_size = cn_get_size(c, lv[0], CONF_MAX_MAX_BODY_SIZE);
            cn_key_pop(c, kl);
        }
        if (lv[1] != NULL) {
            size_t kl = cn_key_field(c, "idle_timeout", 12);
            conf->limits.idle_timeout_ms = cn_get_duration(c, lv[1], CONF_MIN_IDLE_TIMEOUT_MS, CONF_MAX_IDLE_TIMEOUT_MS);
            cn_key_pop(c, kl);
        }
        cn_key_pop(c, k);
    }

    conf->shutdown_timeout_ms = CONF_DEFAULT_SHUTDOWN_TIMEOUT_MS;
    if (v[4] != NULL) {
        k = cn_key_field(c, "shutdown_timeout", 16);
        conf->shutdown_timeout_ms = cn_get_duration(c, v[4], 0, CONF_MAX_SHUTDOWN_TIMEOUT_MS);
        cn_key_pop(c, k);
    }

    conf->access_log.enabled = 1;
    conf->access_log.path = NULL;
    if (v[5] != NULL) {
        static const char *const anames[] = {"enabled", "path"};
        yaml_node_t *av[2];
        k = cn_key_field(c, "access_log", 10);
        CN_GET_FIELDS(c, v[5], anames, av);
        if (av[0] != NULL) {
            size_t ka = cn_key_field(c, "enabled", 7);
            conf->access_log.enabled = cn_get_bool(c, av[0]);
            cn_key_pop(c, ka);
        }
        if (av[1] != NULL) {
            size_t ka = cn_key_field(c, "path", 4);
            char *p = cn_get_nonempty_string(c, av[1]);
            conf->access_log.path = strcmp(p, "-") == 0 ? p : cn_resolve_path(c, p);
            cn_key_pop(c, ka);
        }
        cn_key_pop(c, k);
    }
    if (conf->access_log.path == NULL)
        conf->access_log.path = cn_arena_printf(c, "%s/access.log", conf->data_dir);

    parse_cache(c, v[7]);
    parse_store(c, v[13]);
    if (v[8] != NULL) {
        k = cn_key_field(c, "admin", 5);
        parse_admin(c, v[8]);
        cn_key_pop(c, k);
    }

    k = cn_key_field(c, "hosts", 5);
    parse_hosts(c, v[6]);
    cn_key_pop(c, k);

    /* after hosts (plan overrides name routes' paths), in any order in the file; keys name plans */
    parse_api_keys(c, v[9]);
    if (v[10] != NULL) {
        k = cn_key_field(c, "plans", 5);
        parse_plans(c, v[10]);
        cn_key_pop(c, k);
    }
    if (v[11] != NULL) {
        k = cn_key_field(c, "keys", 4);
        parse_keys(c, v[11]);
        cn_key_pop(c, k);
    }
    k = cn_key_field(c, "lua", 3);
    parse_lua(c, v[12]);
    cn_key_pop(c, k);
}
