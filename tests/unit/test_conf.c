/*
 * Unit tests of conf/: units, the example conf, defaults, every accepted form and the exact message of every error class.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"

/* A valid conf is LISTEN + HOSTS. ROUTE starts a route on line 6 so its next key is on line 7. */
#define LISTEN "listen:\n  - port: 80\n"
#define HOSTS "hosts:\n  \"*\":\n    routes:\n      - path: /\n        origin: { url: \"http://o\" }\n"
#define ROUTE LISTEN "hosts:\n  \"*\":\n    routes:\n      - path: /\n"
#define ORIGIN "        origin: { url: \"http://o\" }\n"

static conf_t *load_ok(const char *yaml)
{
    char err[512] = "";
    conf_t *conf = NULL;
    int rc = conf_load_string(yaml, strlen(yaml), "t.yaml", "/base", &conf, err, sizeof(err));

    if (rc != 0)
        print_error("unexpected error: %s\nyaml:\n%s\n", err, yaml);
    assert_int_equal(rc, 0);
    assert_non_null(conf);
    return conf;
}

static void check_error(const char *yaml, const char *expected)
{
    char err[512] = "";
    conf_t *conf = (conf_t *)&err; /* must be reset to NULL */
    int rc = conf_load_string(yaml, strlen(yaml), "t.yaml", "/base", &conf, err, sizeof(err));

    if (rc != -1 || strcmp(err, expected) != 0)
        print_error("yaml:\n%s\nwant: %s\ngot:  %s (rc %d)\n", yaml, expected, err, rc);
    assert_int_equal(rc, -1);
    assert_null(conf);
    assert_string_equal(err, expected);
}

/* ---- units ---- */

static void test_duration(void **state)
{
    static const struct {
        const char *s;
        uint64_t ms;
    } good[] = {{"250ms", 250},
                {"30s", 30000},
                {"5m", 300000},
                {"1h", 3600000},
                {"0s", 0},
                {"007s", 7000},
                {"18446744073709551615ms", UINT64_MAX},
                {"5124095576030h", 5124095576030ull * 3600000}};
    static const char *const bad[] = {"",
                                      "5",
                                      "s",
                                      "5 s",
                                      " 5s",
                                      "5s ",
                                      "5sec",
                                      "1.5s",
                                      "-1s",
                                      "+1s",
                                      "5S",
                                      "5MS",
                                      "1d",
                                      "5s5",
                                      "0x10s",
                                      "18446744073709551616ms",
                                      "18446744073709551615s",
                                      "5124095576031h"};
    (void)state;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        uint64_t ms = 12345;
        assert_int_equal(conf_parse_duration(good[i].s, &ms), 0);
        assert_true(ms == good[i].ms);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t ms = 12345;
        if (conf_parse_duration(bad[i], &ms) != -1)
            print_error("accepted \"%s\"\n", bad[i]);
        assert_int_equal(conf_parse_duration(bad[i], &ms), -1);
        assert_true(ms == 12345);
    }
    assert_int_equal(conf_parse_duration(NULL, &(uint64_t){0}), -1);
}

static void test_size(void **state)
{
    static const struct {
        const char *s;
        uint64_t bytes;
    } good[] = {{"0", 0},
                {"1024", 1024},
                {"10B", 10},
                {"512KB", 512000},
                {"3MB", 3000000},
                {"2GB", 2000000000},
                {"1KiB", 1024},
                {"10MiB", 10485760},
                {"1GiB", 1073741824},
                {"18446744073709551615", UINT64_MAX},
                {"17179869183GiB", 17179869183ull << 30}};
    static const char *const bad[] = {"",
                                      "MiB",
                                      "10 MiB",
                                      "10mib",
                                      "10Mib",
                                      "1.5MiB",
                                      "-1",
                                      "+1",
                                      "10XB",
                                      "10b",
                                      "1TB",
                                      "10MiBs",
                                      "0x10",
                                      "18446744073709551616",
                                      "17179869184GiB",
                                      "18446744073709551615KB"};
    (void)state;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        uint64_t n = 12345;
        assert_int_equal(conf_parse_size(good[i].s, &n), 0);
        assert_true(n == good[i].bytes);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t n = 12345;
        if (conf_parse_size(bad[i], &n) != -1)
            print_error("accepted \"%s\"\n", bad[i]);
        assert_int_equal(conf_parse_size(bad[i], &n), -1);
        assert_true(n == 12345);
    }
}

static void test_method_bit(void **state)
{
    (void)state;
    assert_int_equal(conf_method_bit("GET", 3), CONF_M_GET);
    assert_int_equal(conf_method_bit("get", 3), CONF_M_GET);
    assert_int_equal(conf_method_bit("HEAD", 4), CONF_M_HEAD);
    assert_int_equal(conf_method_bit("post", 4), CONF_M_POST);
    assert_int_equal(conf_method_bit("Put", 3), CONF_M_PUT);
    assert_int_equal(conf_method_bit("PATCH", 5), CONF_M_PATCH);
    assert_int_equal(conf_method_bit("DELETE", 6), CONF_M_DELETE);
    assert_int_equal(conf_method_bit("Options", 7), CONF_M_OPTIONS);
    assert_int_equal(conf_method_bit("GETX", 3), CONF_M_GET); /* only len bytes are read */
    assert_int_equal(conf_method_bit("GETX", 4), 0);
    assert_int_equal(conf_method_bit("GE", 2), 0);
    assert_int_equal(conf_method_bit("CONNECT", 7), 0);
    assert_int_equal(conf_method_bit("", 0), 0);
    assert_int_equal(conf_method_bit(NULL, 0), 0);
}

/* ---- successful loads ---- */

static void test_example_conf(void **state)
{
    const char *src = getenv("EDGEPROXY_SRC");
    char path[4096], expect[4096], err[512] = "";
    conf_t *conf = NULL;
    conf_route_t *r;
    (void)state;

    if (src == NULL)
        src = ".";
    snprintf(path, sizeof(path), "%s/conf/edge.yaml", src);
    if (conf_load(path, &conf, err, sizeof(err)) != 0)
        print_error("%s\n", err);
    assert_non_null(conf);
    assert_string_equal(conf->file, path);
    assert_int_equal(conf->threads, 2);
    snprintf(expect, sizeof(expect), "%s/conf/../var", src);
    assert_string_equal(conf->data_dir, expect);

    assert_int_equal(conf->nlisteners, 2);
    assert_string_equal(conf->listeners[0].address, "127.0.0.1");
    assert_int_equal(conf->listeners[0].port, 8080);
    assert_int_equal(conf->listeners[0].tls, 0);
    assert_int_equal(conf->listeners[0].ncerts, 0);
    assert_string_equal(conf->listeners[1].address, "127.0.0.1");
    assert_int_equal(conf->listeners[1].port, 8443);
    assert_int_equal(conf->listeners[1].tls, 1);
    assert_int_equal(conf->listeners[1].ncerts, 0);

    assert_true(conf->limits.max_body_size == 10 * 1024 * 1024);
    assert_true(conf->limits.idle_timeout_ms == 10000);
    assert_true(conf->shutdown_timeout_ms == 10000);
    assert_int_equal(conf->access_log.enabled, 1);
    snprintf(expect, sizeof(expect), "%s/conf/../var/access.log", src);
    assert_string_equal(conf->access_log.path, expect);

    assert_int_equal(conf->nhosts, 1);
    assert_string_equal(conf->hosts[0].name, "*");
    assert_int_equal(conf->hosts[0].nroutes, 3);

    r = &conf->hosts[0].routes[0];
    assert_string_equal(r->path, "/");
    assert_int_equal(r->is_pattern, 0);
    assert_int_equal(r->nsegs, 0);
    assert_int_equal(r->methods, 0);
    assert_int_equal(r->origin.kind, CONF_ORIGIN_STATIC);
    snprintf(expect, sizeof(expect), "%s/conf/../examples/public", src);
    assert_string_equal(r->origin.static_dir, expect);
    assert_int_equal(r->origin.nindex, 1);
    assert_string_equal(r->origin.index[0], "index.html");
    assert_true(r->timeout_ms == CONF_DEFAULT_TIMEOUT_MS);
    assert_true(r->max_body_size == 10 * 1024 * 1024);
    assert_int_equal(r->line, 27);

    r = &conf->hosts[0].routes[1];
    assert_string_equal(r->path, "/api/");
    assert_int_equal(r->is_pattern, 0);
    assert_int_equal(r->methods, CONF_M_GET | CONF_M_HEAD | CONF_M_POST);
    assert_int_equal(r->origin.kind, CONF_ORIGIN_URL);
    assert_string_equal(r->origin.url, "http://127.0.0.1:8081");
    assert_int_equal(r->origin.https, 0);
    assert_string_equal(r->origin.host, "127.0.0.1");
    assert_int_equal(r->origin.port, 8081);
    assert_string_equal(r->origin.base_path, "");
    assert_null(r->origin.ca_file);
    assert_int_equal(r->origin.preserve_host, 0);
    assert_true(r->timeout_ms == 5000);
    assert_true(r->max_body_size == 1024 * 1024);
    assert_int_equal(r->request_headers.nadd, 1);
    assert_string_equal(r->request_headers.add[0].name, "x-edge");
    assert_string_equal(r->request_headers.add[0].value, "edgeproxy");
    assert_int_equal(r->request_headers.nremove, 0);
    assert_int_equal(r->response_headers.nadd, 1);
    assert_string_equal(r->response_headers.add[0].name, "x-served-by");
    assert_string_equal(r->response_headers.add[0].value, "edgeproxy");
    assert_int_equal(r->response_headers.nremove, 1);
    assert_string_equal(r->response_headers.remove[0], "x-powered-by");
    assert_int_equal(r->cache.enabled, 1);
    assert_int_equal(r->cache.stale_if_error_s, 60);
    assert_int_equal(r->cache.query, CONF_QUERY_EXCEPT);
    assert_int_equal(conf->hosts[0].routes[0].cache.enabled, 0);
    assert_true(conf->cache.max_size == 256ull * 1024 * 1024);
    assert_int_equal(conf->admin.enabled, 1);
    assert_int_equal(conf->admin.port, 9090);

    r = &conf->hosts[0].routes[2];
    assert_string_equal(r->path, "/users/{id}");
    assert_int_equal(r->is_pattern, 1);
    assert_int_equal(r->nsegs, 2);
    assert_int_equal(r->segs[0].kind, CONF_SEG_LITERAL);
    assert_string_equal(r->segs[0].text, "users");
    assert_int_equal(r->segs[1].kind, CONF_SEG_PARAM);
    assert_string_equal(r->segs[1].text, "id");
    assert_int_equal(r->methods, CONF_M_GET | CONF_M_HEAD);
    assert_int_equal(r->origin.port, 8081);
    assert_int_equal(r->line, 40);
    conf_free(conf);
}

static void test_defaults(void **state)
{
    conf_t *conf = load_ok(LISTEN HOSTS);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    conf_route_t *r;
    (void)state;

    assert_string_equal(conf->file, "t.yaml");
    assert_int_equal(conf->threads, cpus < 1 ? 1 : cpus > 256 ? 256 : cpus);
    assert_string_equal(conf->data_dir, "/base/var");
    assert_int_equal(conf->nlisteners, 1);
    assert_string_equal(conf->listeners[0].address, "0.0.0.0");
    assert_int_equal(conf->listeners[0].port, 80);
    assert_int_equal(conf->listeners[0].tls, 0);
    assert_true(conf->limits.max_body_size == CONF_DEFAULT_MAX_BODY_SIZE);
    assert_true(conf->limits.idle_timeout_ms == CONF_DEFAULT_IDLE_TIMEOUT_MS);
    assert_true(conf->shutdown_timeout_ms == CONF_DEFAULT_SHUTDOWN_TIMEOUT_MS);
    assert_int_equal(conf->access_log.enabled, 1);
    assert_string_equal(conf->access_log.path, "/base/var/access.log");
    assert_int_equal(conf->nhosts, 1);
    r = &conf->hosts[0].routes[0];
    assert_int_equal(r->methods, 0);
    assert_true(r->timeout_ms == CONF_DEFAULT_TIMEOUT_MS);
    assert_true(r->max_body_size == CONF_DEFAULT_MAX_BODY_SIZE);
    assert_string_equal(r->origin.host, "o");
    assert_int_equal(r->origin.port, 80);
    assert_int_equal(r->origin.preserve_host, 0);
    assert_int_equal(r->request_headers.nadd + r->request_headers.nremove, 0);
    assert_int_equal(r->response_headers.nadd + r->response_headers.nremove, 0);
    assert_int_equal(r->line, 6);
    conf_free(conf);
}

static void test_top_level_values(void **state)
{
    conf_t *conf = load_ok("threads: 256\n"
                           "data_dir: /srv/edge\n"
                           "limits: { max_body_size: 1GiB, idle_timeout: 1h }\n"
                           "shutdown_timeout: 0s\n"
                           "access_log: { enabled: no, path: \"-\" }\n" LISTEN HOSTS);
    (void)state;

    assert_int_equal(conf->threads, 256);
    assert_string_equal(conf->data_dir, "/srv/edge");
    assert_true(conf->limits.max_body_size == CONF_MAX_MAX_BODY_SIZE);
    assert_true(conf->limits.idle_timeout_ms == 3600000);
    assert_true(conf->shutdown_timeout_ms == 0);
    assert_int_equal(conf->access_log.enabled, 0);
    assert_string_equal(conf->access_log.path, "-");
    /* the route default follows limits.max_body_size */
    assert_true(conf->hosts[0].routes[0].max_body_size == CONF_MAX_MAX_BODY_SIZE);
    conf_free(conf);

    /* the access log defaults beside a given data_dir; relative paths resolve against the base directory */
    conf = load_ok("data_dir: state\naccess_log: { enabled: True }\n" LISTEN HOSTS);
    assert_string_equal(conf->data_dir, "/base/state");
    assert_int_equal(conf->access_log.enabled, 1);
    assert_string_equal(conf->access_log.path, "/base/state/access.log");
    conf_free(conf);

    conf = load_ok("threads: \"1\"\naccess_log: { path: logs/a.log }\n" LISTEN HOSTS);
    assert_int_equal(conf->threads, 1);
    assert_string_equal(conf->access_log.path, "/base/logs/a.log");
    conf_free(conf);
}

static void test_tls_forms(void **state)
{
    conf_t *conf = load_ok("listen:\n"
                           "  - port: 80\n"
                           "  - { port: 443, tls: {} }\n"
                           "  - { address: \"::1\", port: 8443, tls: { cert: c.pem, key: /k/k.pem } }\n"
                           "  - port: 0\n"
                           "    tls:\n"
                           "      certificates:\n"
                           "        - { cert: a.pem, key: a.key }\n"
                           "        - { cert: b.pem, key: b.key }\n" HOSTS);
    conf_listener_t *l = conf->listeners;
    (void)state;

    assert_int_equal(conf->nlisteners, 4);
    assert_int_equal(l[0].tls, 0);
    assert_int_equal(l[0].ncerts, 0);
    assert_int_equal(l[1].tls, 1);
    assert_int_equal(l[1].ncerts, 0);
    assert_int_equal(l[2].tls, 1);
    assert_string_equal(l[2].address, "::1");
    assert_int_equal(l[2].ncerts, 1);
    assert_string_equal(l[2].certs[0].cert, "/base/c.pem");
    assert_string_equal(l[2].certs[0].key, "/k/k.pem");
    assert_int_equal(l[3].port, 0);
    assert_int_equal(l[3].tls, 1);
    assert_int_equal(l[3].ncerts, 2);
    assert_string_equal(l[3].certs[0].cert, "/base/a.pem");
    assert_string_equal(l[3].certs[0].key, "/base/a.key");
    assert_string_equal(l[3].certs[1].cert, "/base/b.pem");
    assert_string_equal(l[3].certs[1].key, "/base/b.key");
    conf_free(conf);
}

static void test_origins(void **state)
{
    static const struct {
        const char *url, *host, *base_path;
        int https;
        unsigned port;
    } urls[] = {
        {"https://api.example.com", "api.example.com", "", 1, 443},
        {"https://api.example.com/", "api.example.com", "", 1, 443},
        {"http://10.0.0.1:8080/v1/", "10.0.0.1", "/v1", 0, 8080},
        {"http://o/a/b", "o", "/a/b", 0, 80},
        {"http://[::1]:9000/x", "::1", "/x", 0, 9000},
        {"https://[2001:db8::1]", "2001:db8::1", "", 1, 443},
        {"HTTPS://Up.Example:65535", "Up.Example", "", 1, 65535},
    };
    char yaml[1024];
    conf_t *conf;
    conf_origin_t *o;
    (void)state;

    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        snprintf(yaml, sizeof(yaml), ROUTE "        origin: { url: \"%s\" }\n", urls[i].url);
        conf = load_ok(yaml);
        o = &conf->hosts[0].routes[0].origin;
        assert_int_equal(o->kind, CONF_ORIGIN_URL);
        assert_string_equal(o->url, urls[i].url);
        assert_string_equal(o->host, urls[i].host);
        assert_string_equal(o->base_path, urls[i].base_path);
        assert_int_equal(o->https, urls[i].https);
        assert_int_equal(o->port, urls[i].port);
        conf_free(conf);
    }

    conf = load_ok(ROUTE "        origin: { url: \"https://o\", ca: certs/ca.pem, preserve_host: yes }\n");
    o = &conf->hosts[0].routes[0].origin;
    assert_string_equal(o->ca_file, "/base/certs/ca.pem");
    assert_int_equal(o->preserve_host, 1);
    conf_free(conf);

    conf = load_ok(ROUTE "        origin: { static: /var/www, index: [index.htm, default.html] }\n");
    o = &conf->hosts[0].routes[0].origin;
    assert_int_equal(o->kind, CONF_ORIGIN_STATIC);
    assert_string_equal(o->static_dir, "/var/www");
    assert_int_equal(o->nindex, 2);
    assert_string_equal(o->index[0], "index.htm");
    assert_string_equal(o->index[1], "default.html");
    assert_null(o->url);
    conf_free(conf);
}

static void test_routes(void **state)
{
    conf_t *conf = load_ok(LISTEN "hosts:\n"
                                  "  \"*\":\n"
                                  "    routes:\n"
                                  "      - path: /files/{dir}/{rest+}\n"
                                  "        methods: [post, Delete, OPTIONS]\n"
                                  "        origin: { static: www }\n"
                                  "        timeout: 50ms\n"
                                  "        max_body_size: 0\n"
                                  "        headers:\n"
                                  "          request:\n"
                                  "            add: { X-Forwarded-Proto: https, x-empty: \"\", X-Dup: a, x-dup: b }\n"
                                  "            remove: [Cookie, x-secret]\n"
                                  "          response:\n"
                                  "            remove: []\n"
                                  "      - path: /{_a1}\n"
                                  "        methods: [HEAD]\n"
                                  "        origin: { url: \"http://o\" }\n"
                                  "        timeout: 29s\n"
                                  "        max_body_size: 1GiB\n"
                                  "      - path: /api\n"
                                  "        methods: [get]\n"
                                  "        origin: { url: \"http://o\" }\n");
    conf_route_t *r = conf->hosts[0].routes;
    (void)state;

    assert_int_equal(conf->hosts[0].nroutes, 3);
    assert_int_equal(r[0].line, 6);
    assert_int_equal(r[0].is_pattern, 1);
    assert_int_equal(r[0].nsegs, 3);
    assert_int_equal(r[0].segs[0].kind, CONF_SEG_LITERAL);
    assert_string_equal(r[0].segs[0].text, "files");
    assert_int_equal(r[0].segs[1].kind, CONF_SEG_PARAM);
    assert_string_equal(r[0].segs[1].text, "dir");
    assert_int_equal(r[0].segs[2].kind, CONF_SEG_GREEDY);
    assert_string_equal(r[0].segs[2].text, "rest");
    assert_int_equal(r[0].methods, CONF_M_POST | CONF_M_DELETE | CONF_M_OPTIONS);
    assert_string_equal(r[0].origin.static_dir, "/base/www");
    assert_true(r[0].timeout_ms == 50);
    assert_true(r[0].max_body_size == 0);
    assert_int_equal(r[0].request_headers.nadd, 4);
    assert_string_equal(r[0].request_headers.add[0].name, "x-forwarded-proto");
    assert_string_equal(r[0].request_headers.add[0].value, "https");
    assert_string_equal(r[0].request_headers.add[1].name, "x-empty");
    assert_string_equal(r[0].request_headers.add[1].value, "");
    assert_string_equal(r[0].request_headers.add[2].name, "x-dup");
    assert_string_equal(r[0].request_headers.add[3].value, "b");
    assert_int_equal(r[0].request_headers.nremove, 2);
    assert_string_equal(r[0].request_headers.remove[0], "cookie");
    assert_string_equal(r[0].request_headers.remove[1], "x-secret");
    assert_int_equal(r[0].response_headers.nadd, 0);
    assert_int_equal(r[0].response_headers.nremove, 0);

    assert_int_equal(r[1].line, 17);
    assert_int_equal(r[1].is_pattern, 1);
    assert_int_equal(r[1].nsegs, 1);
    assert_int_equal(r[1].segs[0].kind, CONF_SEG_PARAM);
    assert_string_equal(r[1].segs[0].text, "_a1");
    assert_int_equal(r[1].methods, CONF_M_HEAD); /* HEAD does not imply GET */
    assert_true(r[1].timeout_ms == 29000);
    assert_true(r[1].max_body_size == CONF_MAX_MAX_BODY_SIZE);

    assert_string_equal(r[2].path, "/api");
    assert_int_equal(r[2].is_pattern, 0);
    assert_int_equal(r[2].nsegs, 0);
    assert_null(r[2].segs);
    assert_int_equal(r[2].methods, CONF_M_GET | CONF_M_HEAD);
    conf_free(conf);
}

static void test_hosts(void **state)
{
    conf_t *conf = load_ok(LISTEN "hosts:\n"
                                  "  Example.COM: &r\n"
                                  "    routes:\n"
                                  "      - { path: /, origin: { url: \"http://o\" } }\n"
                                  "  \"*.Example.com\": *r\n"
                                  "  \"*\": *r\n"
                                  "  \"127.0.0.1\": *r\n");
    (void)state;

    assert_int_equal(conf->nhosts, 4);
    assert_string_equal(conf->hosts[0].name, "example.com");
    assert_string_equal(conf->hosts[1].name, "*.example.com");
    assert_string_equal(conf->hosts[2].name, "*");
    assert_string_equal(conf->hosts[3].name, "127.0.0.1");
    /* aliases are resolved: every host has its own copy of the routes */
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(conf->hosts[i].nroutes, 1);
        assert_string_equal(conf->hosts[i].routes[0].origin.host, "o");
    }
    assert_ptr_not_equal(conf->hosts[0].routes, conf->hosts[1].routes);
    conf_free(conf);
}

static void test_basedir(void **state)
{
    char err[256];
    conf_t *conf = NULL;
    const char *yaml = "data_dir: v\n" LISTEN HOSTS;
    (void)state;

    assert_int_equal(conf_load_string(yaml, strlen(yaml), "x", "/etc/edge/", &conf, err, sizeof(err)), 0);
    assert_string_equal(conf->data_dir, "/etc/edge/v");
    conf_free(conf);
    assert_int_equal(conf_load_string(yaml, strlen(yaml), "x", "rel", &conf, err, sizeof(err)), 0);
    assert_string_equal(conf->data_dir, "rel/v");
    conf_free(conf);
    /* no basedir: the working directory; no errbuf: still fails cleanly */
    assert_int_equal(conf_load_string(yaml, strlen(yaml), NULL, NULL, &conf, err, sizeof(err)), 0);
    assert_string_equal(conf->data_dir, "./v");
    assert_string_equal(conf->file, "<string>");
    conf_free(conf);
    assert_int_equal(conf_load_string("x: 1", 4, "x", "/", &conf, NULL, 0), -1);
    assert_null(conf);
    conf_free(NULL);
}

/* conf_load on real files: the name as given in messages, paths beside the file, unreadable files. */
static void test_files(void **state)
{
    char dir[] = "/tmp/test_conf.XXXXXX", path[128], expect[256], err[512] = "", cwd[4096];
    conf_t *conf = NULL;
    FILE *fp;
    (void)state;

    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/edge.yaml", dir);

    assert_non_null(fp = fopen(path, "w"));
    fputs("access_log: { path: a.log }\n" LISTEN HOSTS, fp);
    fclose(fp);
    assert_int_equal(conf_load(path, &conf, err, sizeof(err)), 0);
    snprintf(expect, sizeof(expect), "%s/var", dir);
    assert_string_equal(conf->data_dir, expect);
    snprintf(expect, sizeof(expect), "%s/a.log", dir);
    assert_string_equal(conf->access_log.path, expect);
    conf_free(conf);

    assert_non_null(fp = fopen(path, "w"));
    fputs(LISTEN HOSTS "threads: 0\n", fp);
    fclose(fp);
    assert_int_equal(conf_load(path, &conf, err, sizeof(err)), -1);
    assert_null(conf);
    snprintf(expect, sizeof(expect), "%s:8: threads: must be between 1 and 256", path);
    assert_string_equal(err, expect);

    /* a file name without a directory: paths resolve against "." */
    assert_int_equal(chdir(dir), 0);
    assert_int_equal(conf_load("edge.yaml", &conf, err, sizeof(err)), -1);
    assert_string_equal(err, "edge.yaml:8: threads: must be between 1 and 256");
    assert_non_null(fp = fopen(path, "w"));
    fputs(LISTEN HOSTS, fp);
    fclose(fp);
    assert_int_equal(conf_load("edge.yaml", &conf, err, sizeof(err)), 0);
    assert_string_equal(conf->data_dir, "./var");
    conf_free(conf);
    assert_int_equal(chdir(cwd), 0);

    snprintf(expect, sizeof(expect), "%s: %s", dir, strerror(EISDIR));
    assert_int_equal(conf_load(dir, &conf, err, sizeof(err)), -1);
    assert_null(conf);
    assert_string_equal(err, expect);

    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
    assert_int_equal(conf_load(path, &conf, err, sizeof(err)), -1);
    assert_null(conf);
    snprintf(expect, sizeof(expect), "%s: %s", path, strerror(ENOENT));
    assert_string_equal(err, expect);
}

/* ---- errors ---- */

static void test_err_yaml(void **state)
{
    (void)state;
    check_error("threads: 2\n  bad: indent\n", "t.yaml:2: mapping values are not allowed in this context");
    check_error(LISTEN "hosts: [\n  a, b\n", "t.yaml:5: did not find expected ',' or ']'");
    check_error(LISTEN HOSTS "---\nthreads: 1\n", "t.yaml:8: only one YAML document is allowed");
    check_error("threads: 1\nx: \xff\n", "t.yaml:2: invalid leading UTF-8 octet");
    check_error("listen:\n\t- port: 1\n", "t.yaml:2: found character that cannot start any token");
    check_error("listen: *l\n", "t.yaml:1: found undefined alias");
    check_error("", "t.yaml:1: listen: is required");
    check_error("# only a comment\n", "t.yaml:1: listen: is required");
    check_error("- a\n- b\n", "t.yaml:1: expected a mapping at the top level");
    check_error("just text\n", "t.yaml:1: expected a mapping at the top level");
    check_error("? [a]\n: 1\n", "t.yaml:1: keys must be strings");
}

static void test_err_top(void **state)
{
    (void)state;
    check_error("bogus: 1\n" LISTEN HOSTS, "t.yaml:1: bogus: unknown key");
    check_error(LISTEN HOSTS "Threads: 2\n", "t.yaml:8: Threads: unknown key");
    check_error(LISTEN "listen:\n  - port: 81\n" HOSTS, "t.yaml:3: listen: duplicate key");
    check_error(LISTEN, "t.yaml:1: hosts: is required");
    check_error("threads: 1\n" HOSTS, "t.yaml:1: listen: is required");
    check_error("threads: 0\n" LISTEN HOSTS, "t.yaml:1: threads: must be between 1 and 256");
    check_error(LISTEN "threads: 257\n" HOSTS, "t.yaml:3: threads: must be between 1 and 256");
    check_error("threads: -1\n" LISTEN HOSTS, "t.yaml:1: threads: must be between 1 and 256");
    check_error("threads: 99999999999999999999999\n" LISTEN HOSTS, "t.yaml:1: threads: must be between 1 and 256");
    check_error("threads: 12abc\n" LISTEN HOSTS, "t.yaml:1: threads: expected an integer");
    check_error("threads: 1.5\n" LISTEN HOSTS, "t.yaml:1: threads: expected an integer");
    check_error("threads: 0x10\n" LISTEN HOSTS, "t.yaml:1: threads: expected an integer");
    check_error("threads: [1]\n" LISTEN HOSTS, "t.yaml:1: threads: expected an integer");
    check_error("data_dir: { a: 1 }\n" LISTEN HOSTS, "t.yaml:1: data_dir: expected a string");
    check_error("data_dir: \"\"\n" LISTEN HOSTS, "t.yaml:1: data_dir: must not be empty");
    check_error("data_dir: \"a\\0b\"\n" LISTEN HOSTS, "t.yaml:1: data_dir: must not contain NUL");
}

static void test_err_limits(void **state)
{
    (void)state;
    check_error("limits: []\n" LISTEN HOSTS, "t.yaml:1: limits: expected a mapping");
    check_error("limits: { max_body: 1 }\n" LISTEN HOSTS, "t.yaml:1: limits.max_body: unknown key");
    check_error("limits:\n  max_body_size: 2GiB\n" LISTEN HOSTS, "t.yaml:2: limits.max_body_size: must be at most 1GiB");
    check_error("limits:\n  max_body_size: 1073741825\n" LISTEN HOSTS, "t.yaml:2: limits.max_body_size: must be at most 1GiB");
    check_error("limits:\n  max_body_size: 99999999999999999999GiB\n" LISTEN HOSTS,
                "t.yaml:2: limits.max_body_size: must be at most 1GiB");
    check_error("limits:\n  max_body_size: 10XB\n" LISTEN HOSTS,
                "t.yaml:2: limits.max_body_size: bad size \"10XB\" (use B, KB, MB, GB, KiB, MiB or GiB)");
    check_error("limits:\n  max_body_size: { a: 1 }\n" LISTEN HOSTS,
                "t.yaml:2: limits.max_body_size: expected a size such as 10MiB");
    check_error("limits:\n  idle_timeout: 999ms\n" LISTEN HOSTS, "t.yaml:2: limits.idle_timeout: must be between 1s and 1h");
    check_error("limits:\n  idle_timeout: 61m\n" LISTEN HOSTS, "t.yaml:2: limits.idle_timeout: must be between 1s and 1h");
    check_error("limits:\n  idle_timeout: 10\n" LISTEN HOSTS,
                "t.yaml:2: limits.idle_timeout: bad duration \"10\" (use ms, s, m or h)");
    check_error("shutdown_timeout: 11m\n" LISTEN HOSTS, "t.yaml:1: shutdown_timeout: must be between 0s and 10m");
    check_error("shutdown_timeout: 99999999999999999999h\n" LISTEN HOSTS, "t.yaml:1: shutdown_timeout: must be between 0s and 10m");
    check_error("shutdown_timeout: 5 s\n" LISTEN HOSTS, "t.yaml:1: shutdown_timeout: bad duration \"5 s\" (use ms, s, m or h)");
    check_error("shutdown_timeout: [5s]\n" LISTEN HOSTS, "t.yaml:1: shutdown_timeout: expected a duration such as 5s");
    check_error("access_log:\n  enabled: maybe\n" LISTEN HOSTS, "t.yaml:2: access_log.enabled: expected true or false");
    check_error("access_log:\n  enabled: [true]\n" LISTEN HOSTS, "t.yaml:2: access_log.enabled: expected true or false");
    check_error("access_log:\n  path: [a]\n" LISTEN HOSTS, "t.yaml:2: access_log.path: expected a string");
    check_error("access_log: { file: a }\n" LISTEN HOSTS, "t.yaml:1: access_log.file: unknown key");
}

static void test_err_listen(void **state)
{
    (void)state;
    check_error("listen: { port: 80 }\n" HOSTS, "t.yaml:1: listen: expected a sequence");
    check_error("listen: []\n" HOSTS, "t.yaml:1: listen: must not be empty");
    check_error("listen:\n  - 80\n" HOSTS, "t.yaml:2: listen[0]: expected a mapping");
    check_error("listen:\n  - address: 127.0.0.1\n" HOSTS, "t.yaml:2: listen[0].port: is required");
    check_error("listen:\n  - port: 80\n  - { port: 81, addr: x }\n" HOSTS, "t.yaml:3: listen[1].addr: unknown key");
    check_error("listen:\n  - port: 65536\n" HOSTS, "t.yaml:2: listen[0].port: must be between 0 and 65535");
    check_error("listen:\n  - port: -80\n" HOSTS, "t.yaml:2: listen[0].port: must be between 0 and 65535");
    check_error("listen:\n  - port: http\n" HOSTS, "t.yaml:2: listen[0].port: expected an integer");
    check_error("listen:\n  - { address: localhost, port: 80 }\n" HOSTS,
                "t.yaml:2: listen[0].address: expected an IP address, not \"localhost\"");
    check_error("listen:\n  - { address: \"1.2.3.256\", port: 80 }\n" HOSTS,
                "t.yaml:2: listen[0].address: expected an IP address, not \"1.2.3.256\"");
    check_error("listen:\n  - { address: [1], port: 80 }\n" HOSTS, "t.yaml:2: listen[0].address: expected a string");
    /* tls */
    check_error("listen:\n  - port: 80\n    tls: yes\n" HOSTS, "t.yaml:3: listen[0].tls: expected a mapping");
    check_error("listen:\n  - port: 80\n    tls: { crt: a }\n" HOSTS, "t.yaml:3: listen[0].tls.crt: unknown key");
    check_error("listen:\n  - port: 80\n  - port: 443\n    tls: { cert: a.pem }\n" HOSTS,
                "t.yaml:4: listen[1].tls.key: is required");
    check_error("listen:\n  - port: 443\n    tls:\n      key: a.key\n" HOSTS, "t.yaml:4: listen[0].tls.cert: is required");
    check_error("listen:\n  - port: 443\n    tls: { cert: a, key: b, certificates: [] }\n" HOSTS,
                "t.yaml:3: listen[0].tls: use either cert and key or certificates, not both");
    check_error("listen:\n  - port: 443\n    tls: { certificates: [] }\n" HOSTS,
                "t.yaml:3: listen[0].tls.certificates: must not be empty");
    check_error("listen:\n  - port: 443\n    tls: { certificates: { cert: a, key: b } }\n" HOSTS,
                "t.yaml:3: listen[0].tls.certificates: expected a sequence");
    check_error(
        "listen:\n  - port: 443\n    tls:\n      certificates:\n        - { cert: a, key: b }\n        - { cert: c }\n" HOSTS,
        "t.yaml:6: listen[0].tls.certificates[1].key: is required");
    check_error("listen:\n  - port: 443\n    tls: { cert: \"\", key: b }\n" HOSTS,
                "t.yaml:3: listen[0].tls.cert: must not be empty");
}

static void test_err_hosts(void **state)
{
    (void)state;
    check_error(LISTEN "hosts: []\n", "t.yaml:3: hosts: expected a mapping");
    check_error(LISTEN "hosts: {}\n", "t.yaml:3: hosts: must not be empty");
    check_error(LISTEN "hosts:\n  \"a*b\": {}\n", "t.yaml:4: hosts.\"a*b\": bad host name (use \"*\", a name or \"*.suffix\")");
    check_error(LISTEN "hosts:\n  \"\": {}\n", "t.yaml:4: hosts.\"\": bad host name (use \"*\", a name or \"*.suffix\")");
    check_error(LISTEN "hosts:\n  \"*.\": {}\n", "t.yaml:4: hosts.\"*.\": bad host name (use \"*\", a name or \"*.suffix\")");
    check_error(LISTEN "hosts:\n  \"**.a\": {}\n", "t.yaml:4: hosts.\"**.a\": bad host name (use \"*\", a name or \"*.suffix\")");
    check_error(LISTEN "hosts:\n  \"*a.com\": {}\n",
                "t.yaml:4: hosts.\"*a.com\": bad host name (use \"*\", a name or \"*.suffix\")");
    check_error(LISTEN "hosts:\n  a b: {}\n", "t.yaml:4: hosts.\"a b\": bad host name (use \"*\", a name or \"*.suffix\")");
    check_error(LISTEN "hosts:\n  [a]: {}\n", "t.yaml:4: hosts: keys must be strings");
    check_error(LISTEN "hosts:\n"
                       "  example.com:\n"
                       "    routes: [{ path: /, origin: { url: \"http://o\" } }]\n"
                       "  Example.COM:\n"
                       "    routes: [{ path: /, origin: { url: \"http://o\" } }]\n",
                "t.yaml:6: hosts.\"Example.COM\": duplicate host");
    check_error(LISTEN "hosts:\n  \"*\": []\n", "t.yaml:4: hosts.\"*\": expected a mapping");
    check_error(LISTEN "hosts:\n  \"*\":\n    route: []\n", "t.yaml:5: hosts.\"*\".route: unknown key");
    check_error(LISTEN "hosts:\n  \"*\": {}\n", "t.yaml:4: hosts.\"*\".routes: is required");
    check_error(LISTEN "hosts:\n  \"*\":\n    routes: []\n", "t.yaml:5: hosts.\"*\".routes: must not be empty");
    check_error(LISTEN "hosts:\n  \"*\":\n    routes: { path: / }\n", "t.yaml:5: hosts.\"*\".routes: expected a sequence");
    check_error(LISTEN "hosts:\n  \"*\":\n    routes:\n      - /\n", "t.yaml:6: hosts.\"*\".routes[0]: expected a mapping");
}

static void test_err_route(void **state)
{
    (void)state;
    check_error(ROUTE ORIGIN "        tiemout: 5s\n", "t.yaml:8: hosts.\"*\".routes[0].tiemout: unknown key");
    check_error(ROUTE ORIGIN "      - path: /b\n" ORIGIN "        path: /c\n",
                "t.yaml:10: hosts.\"*\".routes[1].path: duplicate key");
    check_error(LISTEN "hosts:\n  \"*\":\n    routes:\n      - origin: { url: \"http://o\" }\n",
                "t.yaml:6: hosts.\"*\".routes[0].path: is required");
    check_error(ROUTE "        timeout: 5s\n", "t.yaml:6: hosts.\"*\".routes[0].origin: is required");
    check_error(LISTEN "hosts:\n  \"*\":\n    routes:\n      - path: api\n" ORIGIN,
                "t.yaml:6: hosts.\"*\".routes[0].path: must start with '/'");
    check_error(LISTEN "hosts:\n  \"*\":\n    routes:\n      - path: [a]\n" ORIGIN,
                "t.yaml:6: hosts.\"*\".routes[0].path: expected a string");
    /* timeout and body size */
    check_error(ROUTE ORIGIN "        timeout: 49ms\n", "t.yaml:8: hosts.\"*\".routes[0].timeout: must be between 50ms and 29s");
    check_error(ROUTE ORIGIN "        timeout: 30s\n", "t.yaml:8: hosts.\"*\".routes[0].timeout: must be between 50ms and 29s");
    check_error(ROUTE ORIGIN "        timeout: 5\n",
                "t.yaml:8: hosts.\"*\".routes[0].timeout: bad duration \"5\" (use ms, s, m or h)");
    check_error(ROUTE ORIGIN "        timeout: 5sec\n",
                "t.yaml:8: hosts.\"*\".routes[0].timeout: bad duration \"5sec\" (use ms, s, m or h)");
    check_error(ROUTE ORIGIN "        max_body_size: 2GiB\n",
                "t.yaml:8: hosts.\"*\".routes[0].max_body_size: must be at most 1GiB");
    check_error(ROUTE ORIGIN "        max_body_size: -1\n",
                "t.yaml:8: hosts.\"*\".routes[0].max_body_size: bad size \"-1\" (use B, KB, MB, GB, KiB, MiB or GiB)");
    /* methods */
    check_error(ROUTE ORIGIN "        methods: [GET, FETCH]\n",
                "t.yaml:8: hosts.\"*\".routes[0].methods[1]: unknown method \"FETCH\" (use GET, HEAD, POST, PUT, PATCH, "
                "DELETE or OPTIONS)");
    check_error(ROUTE ORIGIN "        methods:\n          - GET\n          - [POST]\n",
                "t.yaml:10: hosts.\"*\".routes[0].methods[1]: expected a string");
    check_error(ROUTE ORIGIN "        methods: GET\n", "t.yaml:8: hosts.\"*\".routes[0].methods: expected a sequence");
    check_error(ROUTE ORIGIN "        methods: []\n", "t.yaml:8: hosts.\"*\".routes[0].methods: must not be empty");
}

static void test_cache(void **state)
{
    conf_t *conf;
    const conf_route_cache_t *rc;
    (void)state;

    conf = load_ok(LISTEN "data_dir: /d\n" HOSTS);
    assert_string_equal(conf->cache.path, "/d/cache");
    assert_int_equal(conf->cache.max_size, 1024ull * 1024 * 1024);
    assert_int_equal(conf->cache.max_object_size, 64ull * 1024 * 1024);
    assert_int_equal(conf->hosts[0].routes[0].cache.enabled, 0);
    assert_int_equal(conf->admin.enabled, 0);
    conf_free(conf);

    conf = load_ok("cache: { path: c, max_size: 32MiB }\n"
                   "admin: { port: 9000, token: 0123456789abcdef }\n" ROUTE ORIGIN "        cache:\n"
                   "          default_ttl: 90s\n"
                   "          override: true\n"
                   "          stale_while_revalidate: 1500ms\n"
                   "          stale_if_error: 1h\n"
                   "          key: { query: { except: [utm_source, fbclid] }, sort_query: yes, headers: [Accept-Language] }\n"
                   "      - path: /b\n" ORIGIN "        cache: {}\n");
    assert_string_equal(conf->cache.path, "/base/c");
    assert_int_equal(conf->cache.max_size, 32ull * 1024 * 1024);
    assert_int_equal(conf->cache.max_object_size, 8ull * 1024 * 1024); /* a quarter of max_size */
    assert_int_equal(conf->admin.enabled, 1);
    assert_string_equal(conf->admin.address, "127.0.0.1");
    assert_int_equal(conf->admin.port, 9000);
    assert_string_equal(conf->admin.token, "0123456789abcdef");
    rc = &conf->hosts[0].routes[0].cache;
    assert_int_equal(rc->enabled, 1);
    assert_int_equal(rc->default_ttl_s, 90);
    assert_int_equal(rc->override, 1);
    assert_int_equal(rc->stale_while_revalidate_s, 1);
    assert_int_equal(rc->stale_if_error_s, 3600);
    assert_int_equal(rc->query, CONF_QUERY_EXCEPT);
    assert_int_equal(rc->nquery_params, 2);
    assert_string_equal(rc->query_params[1], "fbclid");
    assert_int_equal(rc->sort_query, 1);
    assert_int_equal(rc->nkey_headers, 1);
    assert_string_equal(rc->key_headers[0], "accept-language");
    rc = &conf->hosts[0].routes[1].cache;
    assert_int_equal(rc->enabled, 1);
    assert_int_equal(rc->default_ttl_s, -1);
    assert_int_equal(rc->override, 0);
    assert_int_equal(rc->query, CONF_QUERY_ALL);
    conf_free(conf);

    conf = load_ok(ROUTE ORIGIN "        cache: { key: { query: none } }\n");
    assert_int_equal(conf->hosts[0].routes[0].cache.query, CONF_QUERY_NONE);
    conf_free(conf);
    conf = load_ok(ROUTE ORIGIN "        cache: { key: { query: { only: [id] } } }\n");
    assert_int_equal(conf->hosts[0].routes[0].cache.query, CONF_QUERY_ONLY);
    conf_free(conf);
}

static void test_err_cache(void **state)
{
    (void)state;
    check_error(LISTEN "cache: { max_size: 1MiB }\n" HOSTS, "t.yaml:3: cache.max_size: must be at least 16MiB");
    check_error(LISTEN "cache: { max_size: 16MiB, max_object_size: 5MiB }\n" HOSTS,
                "t.yaml:3: cache.max_object_size: must be between 1 and a quarter of max_size");
    check_error(LISTEN "cache: { size: 1GiB }\n" HOSTS, "t.yaml:3: cache.size: unknown key");
    check_error(LISTEN "admin: { token: 0123456789abcdef }\n" HOSTS, "t.yaml:3: admin.port: is required");
    check_error(LISTEN "admin: { port: 9000 }\n" HOSTS, "t.yaml:3: admin.token: is required");
    check_error(LISTEN "admin: { port: 9000, token: short }\n" HOSTS, "t.yaml:3: admin.token: must be at least 16 characters");
    check_error(LISTEN "admin: { address: localhost, port: 9000, token: 0123456789abcdef }\n" HOSTS,
                "t.yaml:3: admin.address: expected an IP address, not \"localhost\"");
    check_error(ROUTE "        origin: { static: s }\n        cache: {}\n",
                "t.yaml:8: hosts.\"*\".routes[0].cache: only routes with an origin url can cache");
    check_error(ROUTE ORIGIN "        cache: { ttl: 5s }\n", "t.yaml:8: hosts.\"*\".routes[0].cache.ttl: unknown key");
    check_error(ROUTE ORIGIN "        cache: { override: true }\n",
                "t.yaml:8: hosts.\"*\".routes[0].cache.override: needs a default_ttl above 0s");
    check_error(ROUTE ORIGIN "        cache: { default_ttl: 5 }\n",
                "t.yaml:8: hosts.\"*\".routes[0].cache.default_ttl: bad duration \"5\" (use ms, s, m or h)");
    check_error(ROUTE ORIGIN "        cache: { key: { query: some } }\n",
                "t.yaml:8: hosts.\"*\".routes[0].cache.key.query: expected all, none, {only: [...]} or {except: [...]}, not "
                "\"some\"");
    check_error(ROUTE ORIGIN "        cache: { key: { query: { only: [a], except: [b] } } }\n",
                "t.yaml:8: hosts.\"*\".routes[0].cache.key.query: use one of only or except");
    check_error(ROUTE ORIGIN "        cache: { key: { headers: [] } }\n",
                "t.yaml:8: hosts.\"*\".routes[0].cache.key.headers: must not be empty");
}

static void test_err_origin(void **state)
{
    (void)state;
    check_error(ROUTE "        origin: \"http://o\"\n", "t.yaml:7: hosts.\"*\".routes[0].origin: expected a mapping");
    check_error(ROUTE "        origin: { url: \"http://o\", static: www }\n",
                "t.yaml:7: hosts.\"*\".routes[0].origin: use either url or static, not both");
    check_error(ROUTE "        origin: { preserve_host: false }\n",
                "t.yaml:7: hosts.\"*\".routes[0].origin: url or static is required");
    check_error(ROUTE "        origin: { static: www, preserve_host: false }\n",
                "t.yaml:7: hosts.\"*\".routes[0].origin.preserve_host: only allowed with url");
    check_error(ROUTE "        origin:\n          url: \"http://o\"\n          index: [a.html]\n",
                "t.yaml:9: hosts.\"*\".routes[0].origin.index: only allowed with static");
    check_error(ROUTE "        origin: { url: \"http://o\", host: x }\n",
                "t.yaml:7: hosts.\"*\".routes[0].origin.host: unknown key");
    check_error(ROUTE "        origin: { url: \"http://o\", preserve_host: 1 }\n",
                "t.yaml:7: hosts.\"*\".routes[0].origin.preserve_host: expected true or false");
    check_error(ROUTE "        origin: { static: www, index: [] }\n",
                "t.yaml:7: hosts.\"*\".routes[0].origin.index: must not be empty");
    check_error(ROUTE "        origin: { static: www, index: [a/b.html] }\n",
                "t.yaml:7: hosts.\"*\".routes[0].origin.index[0]: expected a file name, not \"a/b.html\"");
    check_error(ROUTE "        origin: { static: \"\" }\n", "t.yaml:7: hosts.\"*\".routes[0].origin.static: must not be empty");
}

static void test_err_url(void **state)
{
    static const struct {
        const char *url, *why;
    } bad[] = {
        {"ftp://o", "must start with http:// or https://"},
        {"o:80", "must start with http:// or https://"},
        {"http:/o", "must start with http:// or https://"},
        {"http://", "no host"},
        {"http:///x", "no host"},
        {"http://:80", "no host"},
        {"http://o:0", "port must be between 1 and 65535"},
        {"http://o:65536", "port must be between 1 and 65535"},
        {"http://o:", "port must be between 1 and 65535"},
        {"http://o:8a/", "port must be between 1 and 65535"},
        {"http://o:99999999999999999999", "port must be between 1 and 65535"},
        {"http://o/a?b=1", "a query or fragment is not allowed"},
        {"http://o#top", "a query or fragment is not allowed"},
        {"http://user:pw@o/", "user info is not allowed"},
        {"http://[::1", "bad IPv6 address"},
        {"http://[zz]/", "bad IPv6 address"},
        {"http://[]/", "bad IPv6 address"},
        {"http://[::1]x/", "bad host"},
        {"http://o o/", "bad host"},
        {"http://o%20/", "bad host"},
    };
    char yaml[512], expect[512];
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(yaml, sizeof(yaml), ROUTE "        origin:\n          url: \"%s\"\n", bad[i].url);
        snprintf(expect, sizeof(expect), "t.yaml:8: hosts.\"*\".routes[0].origin.url: bad URL \"%s\": %s", bad[i].url, bad[i].why);
        check_error(yaml, expect);
    }
    check_error(ROUTE "        origin:\n          url: [a]\n", "t.yaml:8: hosts.\"*\".routes[0].origin.url: expected a string");
}

static void test_err_headers(void **state)
{
    (void)state;
    check_error(ROUTE ORIGIN "        headers: []\n", "t.yaml:8: hosts.\"*\".routes[0].headers: expected a mapping");
    check_error(ROUTE ORIGIN "        headers:\n          req: {}\n", "t.yaml:9: hosts.\"*\".routes[0].headers.req: unknown key");
    check_error(ROUTE ORIGIN "        headers:\n          request: { delete: [a] }\n",
                "t.yaml:9: hosts.\"*\".routes[0].headers.request.delete: unknown key");
    check_error(ROUTE ORIGIN "        headers:\n          request:\n            add:\n              \"bad name\": x\n",
                "t.yaml:11: hosts.\"*\".routes[0].headers.request.add: bad header name \"bad name\"");
    check_error(ROUTE ORIGIN "        headers:\n          request:\n            add: { \"x-a:\": x }\n",
                "t.yaml:10: hosts.\"*\".routes[0].headers.request.add: bad header name \"x-a:\"");
    check_error(ROUTE ORIGIN "        headers:\n          request:\n            add: { \"\": x }\n",
                "t.yaml:10: hosts.\"*\".routes[0].headers.request.add: bad header name \"\"");
    check_error(ROUTE ORIGIN "        headers:\n          response:\n            add:\n              X-A: \"a\\r\\nb\"\n",
                "t.yaml:11: hosts.\"*\".routes[0].headers.response.add.X-A: must not contain CR, LF or NUL");
    check_error(ROUTE ORIGIN "        headers:\n          response:\n            add:\n              x-a: \"a\\0b\"\n",
                "t.yaml:11: hosts.\"*\".routes[0].headers.response.add.x-a: must not contain CR, LF or NUL");
    check_error(ROUTE ORIGIN "        headers:\n          response:\n            add:\n              x-a: [a]\n",
                "t.yaml:11: hosts.\"*\".routes[0].headers.response.add.x-a: expected a string");
    check_error(ROUTE ORIGIN "        headers:\n          response:\n            add: [x-a]\n",
                "t.yaml:10: hosts.\"*\".routes[0].headers.response.add: expected a mapping");
    check_error(ROUTE ORIGIN "        headers:\n          response:\n            remove: [x-a, \":path\"]\n",
                "t.yaml:10: hosts.\"*\".routes[0].headers.response.remove[1]: bad header name \":path\"");
    check_error(ROUTE ORIGIN "        headers:\n          response:\n            remove: x-a\n",
                "t.yaml:10: hosts.\"*\".routes[0].headers.response.remove: expected a sequence");
}

static void test_err_patterns(void **state)
{
    static const struct {
        const char *path, *why;
    } bad[] = {
        {"/users/{id}/", "a pattern must not end with '/'"},
        {"/a//{id}", "empty segment in pattern \"/a//{id}\""},
        {"//{id}", "empty segment in pattern \"//{id}\""},
        {"/a{b}", "segment \"a{b}\" must be a literal, {name} or {name+}"},
        {"/{b}c", "segment \"{b}c\" must be a literal, {name} or {name+}"},
        {"/a}", "segment \"a}\" must be a literal, {name} or {name+}"},
        {"/{}", "segment \"{}\" must be a literal, {name} or {name+}"},
        {"/{id", "segment \"{id\" must be a literal, {name} or {name+}"},
        {"/{1x}", "bad parameter name \"1x\" (use letters, digits and _)"},
        {"/{a-b}", "bad parameter name \"a-b\" (use letters, digits and _)"},
        {"/{+}", "bad parameter name \"\" (use letters, digits and _)"},
        {"/{a{b}}", "bad parameter name \"a{b}\" (use letters, digits and _)"},
        {"/{rest+}/x", "{rest+} must be the last segment"},
        {"/{id}/{id}", "duplicate parameter \"id\""},
        {"/{id}/x/{id+}", "duplicate parameter \"id\""},
    };
    char yaml[512], expect[512];
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(yaml, sizeof(yaml),
                 LISTEN "hosts:\n  \"*\":\n    routes:\n      - origin: { static: www }\n        path: \"%s\"\n", bad[i].path);
        snprintf(expect, sizeof(expect), "t.yaml:7: hosts.\"*\".routes[0].path: %s", bad[i].why);
        check_error(yaml, expect);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration),     cmocka_unit_test(test_size),      cmocka_unit_test(test_method_bit),
        cmocka_unit_test(test_example_conf), cmocka_unit_test(test_defaults),  cmocka_unit_test(test_top_level_values),
        cmocka_unit_test(test_tls_forms),    cmocka_unit_test(test_origins),   cmocka_unit_test(test_routes),
        cmocka_unit_test(test_hosts),        cmocka_unit_test(test_basedir),   cmocka_unit_test(test_files),
        cmocka_unit_test(test_err_yaml),     cmocka_unit_test(test_err_top),   cmocka_unit_test(test_err_limits),
        cmocka_unit_test(test_err_listen),   cmocka_unit_test(test_err_hosts), cmocka_unit_test(test_err_route),
        cmocka_unit_test(test_err_origin),   cmocka_unit_test(test_err_url),   cmocka_unit_test(test_err_headers),
        cmocka_unit_test(test_err_patterns), cmocka_unit_test(test_cache),     cmocka_unit_test(test_err_cache),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
