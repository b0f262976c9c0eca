/*
 * conf/conf.c: the schema of the YAML configuration: what each section may hold (listeners and TLS, limits, access
 * log, hosts, routes, origins and their URLs, path patterns, header rewrites), its defaults, and how it maps onto the
 * structs of conf.h. cn_parse_root() is the entry point, called by the loader in node.c.
 *
 * Every reader here follows the same shape: CN_GET_FIELDS() the mapping, check required and exclusive keys, then for
 * each present key push it onto the key path, read it with a typed reader of node.c (which fails with
 * "FILE:LINE: KEY: message" and never returns on a bad value), and pop it. See internal.h.
 */
#include "conf/internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define CONF_MAX_THREADS 256
#define CONF_MIN_IDLE_TIMEOUT_MS 1000u
#define CONF_MAX_IDLE_TIMEOUT_MS 3600000u
#define CONF_MAX_SHUTDOWN_TIMEOUT_MS 600000u

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

/* Parses origin.url into o; on a bad form fails with the reason. */
static void parse_url(ctx_t *c, yaml_node_t *n, conf_origin_t *o)
{
    const char *u = o->url, *p, *auth, *auth_end, *host, *host_end, *port = NULL;
    size_t plen;

#define BAD_URL(why) cn_fail(c, cn_line_of(n), "bad URL \"%s\": %s", u, why)
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
    o->host = cn_arena_strndup(c, host, (size_t)(host_end - host));
    for (plen = strlen(auth_end); plen != 0 && auth_end[plen - 1] == '/'; plen--)
        ;
    o->base_path = cn_arena_strndup(c, auth_end, plen);
}

static void parse_origin(ctx_t *c, yaml_node_t *n, conf_origin_t *o)
{
    enum { F_URL, F_CA, F_PRESERVE_HOST, F_STATIC, F_INDEX, F_COUNT };
    static const char *const names[] = {"url", "ca", "preserve_host", "static", "index"};
    yaml_node_t *v[F_COUNT];
    size_t k;

    CN_GET_FIELDS(c, n, names, v);
    if (v[F_URL] != NULL && v[F_STATIC] != NULL)
        cn_fail(c, cn_line_of(n), "use either url or static, not both");
    if (v[F_URL] == NULL && v[F_STATIC] == NULL)
        cn_fail(c, cn_line_of(n), "url or static is required");
    for (size_t i = 0; i < F_COUNT; i++) {
        int url_only = i == F_CA || i == F_PRESERVE_HOST, static_only = i == F_INDEX;
        if (v[i] == NULL || (url_only && v[F_URL] != NULL) || (static_only && v[F_STATIC] != NULL) || (!url_only && !static_only))
            continue;
        cn_key_field(c, names[i], strlen(names[i]));
        cn_fail(c, cn_line_of(v[i]), "only allowed with %s", url_only ? "url" : "static");
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
    if (r->origin.kind != CONF_ORIGIN_URL)
        cn_fail(c, cn_line_of(n), "only routes with an origin url can cache");
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

static void parse_route(ctx_t *c, yaml_node_t *n, conf_route_t *r)
{
    static const char *const names[] = {"path", "methods", "origin", "timeout", "max_body_size", "headers", "cache"};
    yaml_node_t *v[7];
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
        size_t count;
        yaml_node_item_t *items;
        k = cn_key_field(c, "methods", 7);
        items = cn_get_seq(c, v[1], &count, 1);
        for (size_t i = 0; i < count; i++) {
            yaml_node_t *item = cn_node_at(c, items[i]);
            size_t len, ki = cn_key_index(c, i);
            const char *m = cn_scalar(c, item, "expected a string", &len);
            unsigned bit = conf_method_bit(m, len);
            if (bit == 0)
                cn_fail(c, cn_line_of(item), "unknown method \"%s\" (use GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS)", m);
            r->methods |= bit == CONF_M_GET ? CONF_M_GET | CONF_M_HEAD : bit;
            cn_key_pop(c, ki);
        }
        cn_key_pop(c, k);
    }

    k = cn_key_field(c, "origin", 6);
    parse_origin(c, v[2], &r->origin);
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

void cn_parse_root(ctx_t *c, yaml_node_t *root)
{
    static const char *const names[] = {"threads",    "data_dir", "listen", "limits", "shutdown_timeout",
                                        "access_log", "hosts",    "cache",  "admin"};
    yaml_node_t *v[9];
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
    if (v[8] != NULL) {
        k = cn_key_field(c, "admin", 5);
        parse_admin(c, v[8]);
        cn_key_pop(c, k);
    }

    k = cn_key_field(c, "hosts", 5);
    parse_hosts(c, v[6]);
    cn_key_pop(c, k);
}
