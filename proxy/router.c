/*
 * router: picks the host entry and the route for a request. libh2o's own routing takes the first registered prefix;
 * we route in one handler instead, so the most specific route wins whatever the order of the file.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "proxy/internal.h"

struct px_router {
    const conf_t *conf;
    size_t nroutes;
    const conf_route_t **routes; /* by route id */
    size_t *host_first_id;       /* route id of each host's first route */
    const conf_host_t *default_host;
};

int px_router_create(px_router_t **out, const conf_t *conf)
{
    px_router_t *r = calloc(1, sizeof(*r));
    size_t i, j, id = 0;

    if (r == NULL)
        return -1;
    r->conf = conf;
    for (i = 0; i != conf->nhosts; ++i)
        r->nroutes += conf->hosts[i].nroutes;
    r->routes = calloc(r->nroutes + 1, sizeof(*r->routes));
    r->host_first_id = calloc(conf->nhosts + 1, sizeof(*r->host_first_id));
    if (r->routes == NULL || r->host_first_id == NULL) {
        px_router_free(r);
        return -1;
    }
    for (i = 0; i != conf->nhosts; ++i) {
        const conf_host_t *h = conf->hosts + i;
        r->host_first_id[i] = id;
        for (j = 0; j != h->nroutes; ++j)
            r->routes[id++] = h->routes + j;
        if (strcmp(h->name, "*") == 0)
            r->default_host = h;
    }
    *out = r;
    return 0;
}

void px_router_free(px_router_t *r)
{
    if (r == NULL)
        return;
    free(r->routes);
    free(r->host_first_id);
    free(r);
}

size_t px_router_nroutes(const px_router_t *r)
{
    return r->nroutes;
}

const conf_route_t *px_router_route(const px_router_t *r, size_t route_id)
{
    return route_id < r->nroutes ? r->routes[route_id] : NULL;
}

/* Strips the port (and the brackets of an IPv6 literal) from an authority. */
static void host_of_authority(const char **s, size_t *len)
{
    const char *p = *s;
    size_t n = *len;

    if (n != 0 && p[0] == '[') {
        const char *end = memchr(p, ']', n);
        if (end != NULL) {
            *s = p + 1;
            *len = (size_t)(end - p - 1);
        }
        return;
    }
    for (size_t i = n; i != 0; --i) {
        if (p[i - 1] == ':') {
            *len = i - 1;
            return;
        }
        if (p[i - 1] < '0' || p[i - 1] > '9')
            return;
    }
}

const conf_host_t *px_router_host(const px_router_t *r, const char *authority, size_t len)
{
    const conf_host_t *best = NULL;
    size_t best_len = 0, i;

    host_of_authority(&authority, &len);
    if (len != 0 && authority[len - 1] == '.') /* a fully qualified name's trailing dot */
        --len;
    for (i = 0; i != r->conf->nhosts; ++i) {
        const conf_host_t *h = r->conf->hosts + i;
        size_t nlen = strlen(h->name);
        if (h->name[0] == '*' && h->name[1] == '.') {
            size_t slen = nlen - 1; /* ".example.com" */
            if (len > slen && strncasecmp(authority + len - slen, h->name + 1, slen) == 0 && slen > best_len) {
                best = h;
                best_len = slen;
            }
        } else if (nlen == len && strncasecmp(authority, h->name, len) == 0 && h->name[0] != '*') {
            return h;
        }
    }
    return best != NULL ? best : r->default_host;
}

/* Prefix routes: the path itself, or below it at a '/' boundary. Returns the matched length, or -1. */
static long match_prefix(const char *prefix, const char *path, size_t plen)
{
    size_t n = strlen(prefix);

    if (plen < n || memcmp(path, prefix, n) != 0)
        return -1;
    if (plen == n || prefix[n - 1] == '/' || path[n] == '/')
        return (long)n;
    return -1;
}

/*
 * Pattern routes: segment by segment over the whole path. Returns the matched length (the greedy tail does not count),
 * or -1; *literal gets the number of literal characters matched (slashes included).
 */
static long match_pattern(const conf_route_t *route, const char *path, size_t plen, size_t *literal, px_match_t *m)
{
    const char *p = path, *end = path + plen;
    size_t i, matched = 0;

    *literal = 0;
    m->nparams = 0;
    for (i = 0; i != route->nsegs; ++i) {
        const conf_seg_t *seg = route->segs + i;
        const char *seg_start, *seg_end;
        if (p == end || *p != '/')
            return -1;
        ++p;
        ++*literal;
        seg_start = p;
        if (seg->kind == CONF_SEG_GREEDY) {
            if (p == end)
                return -1;
            seg_end = end;
        } else {
            seg_end = memchr(p, '/', (size_t)(end - p));
            if (seg_end == NULL)
                seg_end = end;
        }
        if (seg->kind == CONF_SEG_LITERAL) {
            size_t n = strlen(seg->text);
            if ((size_t)(seg_end - seg_start) != n || memcmp(seg_start, seg->text, n) != 0)
                return -1;
            *literal += n;
        } else {
            if (seg_end == seg_start || m->nparams == PX_MAX_PARAMS)
                return -1;
            m->params[m->nparams++] = (px_param_t){seg->text, seg_start, (size_t)(seg_end - seg_start)};
        }
        if (seg->kind != CONF_SEG_GREEDY)
            matched = (size_t)(seg_end - path);
        else
            matched = (size_t)(seg_start - path);
        p = seg_end;
    }
    if (p != end && !(p + 1 == end && *p == '/')) /* a trailing slash is tolerated */
        return -1;
    return (long)matched;
}

int px_router_match(const px_router_t *r, const char *authority, size_t alen, const char *path, size_t plen, px_match_t *m)
{
    const conf_host_t *host = px_router_host(r, authority, alen);
    long best_len = -1;
    size_t best_literal = 0, i, first_id;
    px_match_t cand;

    if (host == NULL)
        return -1;
    first_id = r->host_first_id[host - r->conf->hosts];
    for (i = 0; i != host->nroutes; ++i) {
        const conf_route_t *route = host->routes + i;
        size_t literal;
        long len;
        cand.nparams = 0;
        if (route->is_pattern) {
            len = match_pattern(route, path, plen, &literal, &cand);
        } else {
            len = match_prefix(route->path, path, plen);
            literal = len < 0 ? 0 : (size_t)len;
        }
        if (len < 0)
            continue;
        /* longer match first; then more literal characters; at a full tie a prefix beats a pattern, then file order */
        if (len > best_len || (len == best_len && literal > best_literal) ||
            (len == best_len && literal == best_literal && !route->is_pattern && m->route->is_pattern)) {
            best_len = len;
            best_literal = literal;
            *m = cand;
            m->route = route;
            m->route_id = first_id + i;
            m->prefix_len = route->is_pattern ? 0 : (size_t)len;
        }
    }
    return best_len < 0 ? -1 : 0;
}
