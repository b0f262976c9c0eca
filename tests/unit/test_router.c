/* Unit tests of proxy/router.c: host choice, longest-match routing, patterns and their parameters. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "conf/conf.h"
#include "proxy/internal.h"

static const char yaml[] = "listen: [{port: 8080}]\n"
                           "hosts:\n"
                           "  \"*\":\n"
                           "    routes:\n"
                           "      - {path: /, origin: {static: s}}\n"
                           "      - {path: \"/users/{id}\", origin: {url: http://o}}\n"
                           "      - {path: /a/b/, origin: {static: s}}\n"
                           "      - {path: /a, origin: {static: s}}\n"
                           "      - {path: /users/me, origin: {static: s}}\n"
                           "      - {path: \"/files/{path+}\", origin: {url: http://o}}\n"
                           "      - {path: \"/users/{id}/posts/{post}\", origin: {url: http://o}}\n"
                           "  \"*.example.com\":\n"
                           "    routes:\n"
                           "      - {path: /, origin: {url: http://wild}}\n"
                           "  \"*.deep.example.com\":\n"
                           "    routes:\n"
                           "      - {path: /, origin: {url: http://deeper}}\n"
                           "  \"api.example.com\":\n"
                           "    routes:\n"
                           "      - {path: /v1/, origin: {url: http://exact}}\n";

static conf_t *conf;
static px_router_t *router;

static int setup(void **state)
{
    char err[256];
    (void)state;
    if (conf_load_string(yaml, strlen(yaml), "router.yaml", "/tmp", &conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return px_router_create(&router, conf);
}

static int teardown(void **state)
{
    (void)state;
    px_router_free(router);
    conf_free(conf);
    return 0;
}

/* The path of the route chosen for host + path, or NULL when none. */
static const char *route_for(const char *host, const char *path, px_match_t *m)
{
    if (px_router_match(router, host, strlen(host), path, strlen(path), m) != 0)
        return NULL;
    return m->route->path;
}

static const char *host_for(const char *authority)
{
    const conf_host_t *h = px_router_host(router, authority, strlen(authority));
    return h != NULL ? h->name : NULL;
}

static void test_hosts(void **state)
{
    (void)state;
    assert_string_equal(host_for("api.example.com"), "api.example.com");
    assert_string_equal(host_for("API.Example.COM:8443"), "api.example.com");
    assert_string_equal(host_for("api.example.com."), "api.example.com");
    assert_string_equal(host_for("www.example.com"), "*.example.com");
    assert_string_equal(host_for("a.b.example.com"), "*.example.com");
    assert_string_equal(host_for("x.deep.example.com"), "*.deep.example.com"); /* the longest wildcard wins */
    assert_string_equal(host_for("example.com"), "*");                         /* a wildcard needs a label before it */
    assert_string_equal(host_for("other.test"), "*");
    assert_string_equal(host_for("[::1]:8080"), "*");
    assert_string_equal(host_for(""), "*");
}

static void test_longest_prefix(void **state)
{
    px_match_t m;
    (void)state;
    assert_string_equal(route_for("x", "/", &m), "/");
    assert_string_equal(route_for("x", "/zzz", &m), "/");
    assert_string_equal(route_for("x", "/a", &m), "/a");
    assert_int_equal(m.prefix_len, 2);
    assert_string_equal(route_for("x", "/a/x", &m), "/a");
    assert_string_equal(route_for("x", "/apple", &m), "/"); /* "/a" stops at a '/' boundary */
    assert_string_equal(route_for("x", "/a/b/", &m), "/a/b/");
    assert_string_equal(route_for("x", "/a/b/c/d", &m), "/a/b/");
    assert_int_equal(m.prefix_len, 5);
    assert_string_equal(route_for("x", "/a/b", &m), "/a"); /* "/a/b/" needs its trailing slash */
    /* the route ids are dense and follow the file */
    assert_string_equal(route_for("x", "/a/b/c", &m), "/a/b/");
    assert_int_equal(m.route_id, 2);
    assert_ptr_equal(px_router_route(router, m.route_id), m.route);
    assert_int_equal(px_router_nroutes(router), 10);
}

static void test_patterns(void **state)
{
    px_match_t m;
    (void)state;
    assert_string_equal(route_for("x", "/users/42", &m), "/users/{id}");
    assert_int_equal(m.nparams, 1);
    assert_string_equal(m.params[0].name, "id");
    assert_int_equal(m.params[0].value_len, 2);
    assert_memory_equal(m.params[0].value, "42", 2);
    assert_string_equal(route_for("x", "/users/42/", &m), "/users/{id}"); /* a trailing slash is tolerated */
    assert_string_equal(route_for("x", "/users/me", &m), "/users/me");    /* a literal beats a parameter */
    assert_string_equal(route_for("x", "/users/42/x", &m), "/");          /* a pattern matches the whole path */
    assert_string_equal(route_for("x", "/users/", &m), "/");              /* a parameter is never empty */
    assert_string_equal(route_for("x", "/users/7/posts/9", &m), "/users/{id}/posts/{post}");
    assert_int_equal(m.nparams, 2);
    assert_memory_equal(m.params[1].value, "9", 1);
    assert_string_equal(route_for("x", "/files/a/b/c.txt", &m), "/files/{path+}");
    assert_int_equal(m.params[0].value_len, strlen("a/b/c.txt"));
    assert_string_equal(route_for("x", "/files/", &m), "/"); /* greedy needs one segment */
}

static void test_host_routes(void **state)
{
    px_match_t m;
    (void)state;
    assert_string_equal(route_for("api.example.com", "/v1/things", &m), "/v1/");
    assert_null(route_for("api.example.com", "/v2/things", &m)); /* no fallback to other hosts' routes */
    assert_string_equal(route_for("www.example.com", "/v2", &m), "/");
    assert_string_equal(m.route->origin.host, "wild");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hosts),
        cmocka_unit_test(test_longest_prefix),
        cmocka_unit_test(test_patterns),
        cmocka_unit_test(test_host_routes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
