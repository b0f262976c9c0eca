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

static void test_rate(void **state)
{
    static const struct {
        const char *s;
        uint64_t count, per_ms;
    } good[] = {{"100/s", 100, 1000},
                {"10/m", 10, 60000},
                {"1000/h", 1000, 3600000},
                {"5000/d", 5000, 86400000},
                {"5/30s", 5, 30000},
                {"2/500ms", 2, 500},
                {"1/1ms", 1, 1},
                {"3/2m", 3, 120000},
                {"1/24h", 1, 86400000},
                {"1/1440m", 1, 86400000},
                {"1/86400000ms", 1, 86400000},
                {"007/s", 7, 1000},
                {"1000000000/s", 1000000000, 1000}};
    static const char *const bad[] = {"",
                                      "100",
                                      "/s",
                                      "100/",
                                      "100/x",
                                      "100/S",
                                      "100/ms",
                                      "100/sec",
                                      "100/1d",
                                      "100/1.5s",
                                      "0/s",
                                      "1000000001/s",
                                      "99999999999999999999999999/s",
                                      "1/0s",
                                      "1/0ms",
                                      "1/25h",
                                      "1/86400001ms",
                                      "1/18446744073709551616ms",
                                      "-1/s",
                                      "+1/s",
                                      " 1/s",
                                      "1/s ",
                                      "1 /s",
                                      "1/ s",
                                      "1.5/s",
                                      "1//s",
                                      "1/s/s",
                                      "0x10/s"};
    (void)state;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        uint64_t count = 12345, per = 12345;
        if (conf_parse_rate(good[i].s, &count, &per) != 0)
            print_error("refused \"%s\"\n", good[i].s);
        assert_int_equal(conf_parse_rate(good[i].s, &count, &per), 0);
        assert_true(count == good[i].count);
        assert_true(per == good[i].per_ms);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t count = 12345, per = 12345;
        if (conf_parse_rate(bad[i], &count, &per) != -1)
            print_error("accepted \"%s\"\n", bad[i]);
        assert_int_equal(conf_parse_rate(bad[i], &count, &per), -1);
        assert_true(count == 12345 && per == 12345);
    }
    assert_int_equal(conf_parse_rate(NULL, &(uint64_t){0}, &(uint64_t){0}), -1);
}

static void test_quota(void **state)
{
    static const struct {
        const char *s;
        uint64_t limit;
        conf_period_t period;
    } good[] = {{"10000/day", 10000, CONF_PERIOD_DAY},
                {"1/week", 1, CONF_PERIOD_WEEK},
                {"5/month", 5, CONF_PERIOD_MONTH},
                {"007/day", 7, CONF_PERIOD_DAY},
                {"1099511627775/month", CONF_MAX_QUOTA, CONF_PERIOD_MONTH}};
    static const char *const bad[] = {"",
                                      "10000",
                                      "/day",
                                      "10000/",
                                      "10000/d",
                                      "10000/Day",
                                      "10000/days",
                                      "10000/year",
                                      "10000/1d",
                                      "0/day",
                                      "1099511627776/day",
                                      "99999999999999999999999999/week",
                                      "-1/day",
                                      " 1/day",
                                      "1/day ",
                                      "1 /day",
                                      "1.5/day"};
    (void)state;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        uint64_t limit = 12345;
        conf_period_t period = (conf_period_t)99;
        assert_int_equal(conf_parse_quota(good[i].s, &limit, &period), 0);
        assert_true(limit == good[i].limit);
        assert_int_equal(period, good[i].period);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t limit = 12345;
        conf_period_t period = (conf_period_t)99;
        if (conf_parse_quota(bad[i], &limit, &period) != -1)
            print_error("accepted \"%s\"\n", bad[i]);
        assert_int_equal(conf_parse_quota(bad[i], &limit, &period), -1);
        assert_true(limit == 12345);
        assert_int_equal(period, 99);
    }
    assert_int_equal(conf_parse_quota(NULL, &(uint64_t){0}, &(conf_period_t){0}), -1);
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
    assert_int_equal(conf->hosts[0].nroutes, 7);
    assert_int_equal(conf->store.ntables, 1);
    assert_string_equal(conf->store.tables[0].attrs[0].name, "email");

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
    for (size_t i = 0; i < 3; i++) {
        r = &conf->hosts[0].routes[i];
        assert_int_equal(r->api_key, 0);
        assert_int_equal(r->jwt.enabled, 0);
        assert_int_equal(r->throttle.enabled, 0);
        assert_int_equal(r->ip_throttle.enabled, 0);
        assert_int_equal(r->cors.enabled, 0);
    }

    r = &conf->hosts[0].routes[3];
    assert_string_equal(r->path, "/keyed/");
    assert_int_equal(r->origin.kind, CONF_ORIGIN_URL);
    assert_string_equal(r->origin.url, conf->hosts[0].routes[1].origin.url);
    assert_int_equal(r->api_key, 1);
    assert_int_equal(r->jwt.enabled, 0);
    assert_int_equal(r->cors.enabled, 1);
    assert_int_equal(r->cors.any_origin, 0);
    assert_int_equal(r->cors.norigins, 1);
    assert_string_equal(r->cors.origins[0], "https://app.example.com");
    assert_int_equal(r->cors.methods, CONF_M_GET | CONF_M_HEAD | CONF_M_POST);
    assert_int_equal(r->cors.nheaders, 2);
    assert_string_equal(r->cors.headers[1], "x-api-key");
    assert_int_equal(r->cors.credentials, 0);
    assert_int_equal(r->cors.max_age_s, 600);

    r = &conf->hosts[0].routes[5];
    assert_string_equal(r->path, "/dynamodb");
    assert_int_equal(r->origin.kind, CONF_ORIGIN_STORE);
    assert_int_equal(r->origin.store_kind, CONF_STORE_DYNAMODB);
    snprintf(expect, sizeof(expect), "%s/conf/../var/store", src);
    assert_string_equal(conf->store.path, expect);

    assert_string_equal(conf->api_keys.header, "x-api-key");
    assert_null(conf->api_keys.query);
    assert_int_equal(conf->nplans, 1);
    assert_string_equal(conf->plans[0].name, "basic");
    assert_int_equal(conf->plans[0].rate.enabled, 1);
    assert_true(conf->plans[0].rate.count == 100);
    assert_true(conf->plans[0].rate.per_ms == 1000);
    assert_true(conf->plans[0].rate.burst == 50);
    assert_true(conf->plans[0].quota.limit == 10000);
    assert_int_equal(conf->plans[0].quota.period, CONF_PERIOD_DAY);
    assert_int_equal(conf->plans[0].noverrides, 0);
    assert_int_equal(conf->nkeys, 1);
    assert_string_equal(conf->keys[0].name, "demo");
    assert_int_equal(conf->keys[0].plan, 0);
    assert_int_equal(conf->keys[0].enabled, 1);
    {
        /* printf %s demo-key-change-me | sha256sum */
        static const uint8_t demo[32] = {0x09, 0x0d, 0x15, 0x48, 0xc9, 0xd6, 0x5f, 0x41, 0x3a, 0x1a, 0x2c,
                                         0x82, 0x8a, 0x0b, 0xee, 0x3a, 0x7a, 0xe0, 0x2d, 0x21, 0x37, 0xca,
                                         0xf5, 0x1e, 0x60, 0x29, 0xe6, 0xc3, 0xcb, 0x1f, 0x1f, 0xa4};
        assert_memory_equal(conf->keys[0].sha256, demo, 32);
    }

    r = &conf->hosts[0].routes[4];
    assert_string_equal(r->path, "/hello/{name}");
    assert_int_equal(r->origin.kind, CONF_ORIGIN_FUNCTION);
    snprintf(expect, sizeof(expect), "%s/conf/../examples/functions/hello.lua", src);
    assert_string_equal(r->origin.function_file, expect);
    snprintf(expect, sizeof(expect), "%s/conf/../examples/functions", src);
    assert_string_equal(conf->lua.dir, expect);
    assert_int_equal(conf->lua.cpu_limit_ms, 50);
    assert_true(conf->lua.memory_limit == 64ull * 1024 * 1024);
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
    assert_int_equal(r->api_key, 0);
    assert_int_equal(r->jwt.enabled, 0);
    assert_null(r->jwt.jwks);
    assert_int_equal(r->throttle.enabled, 0);
    assert_int_equal(r->ip_throttle.enabled, 0);
    assert_int_equal(r->cors.enabled, 0);
    assert_null(r->hooks.request_file);
    assert_null(r->hooks.response_file);
    assert_int_equal(r->hooks.on_error_continue, 0);
    assert_int_equal(r->internal, 0);
    assert_true(conf->lua.fetch.timeout_ms == CONF_DEFAULT_FETCH_TIMEOUT_MS);
    assert_true(conf->lua.fetch.max_body_size == CONF_DEFAULT_FETCH_MAX_BODY_SIZE);
    assert_null(conf->lua.fetch.ca_file);
    assert_string_equal(conf->api_keys.header, "x-api-key");
    assert_null(conf->api_keys.query);
    assert_int_equal(conf->nplans, 0);
    assert_int_equal(conf->nkeys, 0);
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
                "t.yaml:8: hosts.\"*\".routes[0].cache: only routes with an origin url or function can cache");
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

/* A function origin and the lua block: paths resolved against the conf's directory, defaults. */
static void test_lua(void **state)
{
    conf_t *conf;
    (void)state;

    conf = load_ok(LISTEN "hosts:\n  \"*\":\n    routes:\n      - path: /f\n        origin: { function: fn/hello.lua }\n");
    assert_int_equal(conf->hosts[0].routes[0].origin.kind, CONF_ORIGIN_FUNCTION);
    assert_string_equal(conf->hosts[0].routes[0].origin.function_file, "/base/fn/hello.lua");
    assert_int_equal(conf->hosts[0].routes[0].origin.function_line, 7);
    assert_string_equal(conf->lua.dir, "/base/hooks");
    assert_int_equal(conf->lua.cpu_limit_ms, CONF_DEFAULT_LUA_CPU_MS);
    assert_int_equal(conf->lua.memory_limit, CONF_DEFAULT_LUA_MEMORY);
    assert_string_equal(conf->lua.stage, "prod");
    assert_int_equal(conf->lua.nvariables, 0);
    assert_true(conf->lua.fetch.timeout_ms == 10000);
    assert_true(conf->lua.fetch.max_body_size == 8ull * 1024 * 1024);
    assert_null(conf->lua.fetch.ca_file);
    conf_free(conf);

    conf = load_ok("lua:\n  dir: scripts\n  cpu_limit: 200ms\n  memory_limit: 8MiB\n  stage: beta\n"
                   "  variables: { color: blue, n: \"1\" }\n" LISTEN HOSTS);
    assert_string_equal(conf->lua.dir, "/base/scripts");
    assert_int_equal(conf->lua.cpu_limit_ms, 200);
    assert_int_equal(conf->lua.memory_limit, 8 * 1024 * 1024);
    assert_string_equal(conf->lua.stage, "beta");
    assert_int_equal(conf->lua.nvariables, 2);
    assert_string_equal(conf->lua.variables[0].name, "color");
    assert_string_equal(conf->lua.variables[0].value, "blue");
    assert_string_equal(conf->lua.variables[1].value, "1");
    /* a lua block without fetch: the fetch defaults */
    assert_true(conf->lua.fetch.timeout_ms == CONF_DEFAULT_FETCH_TIMEOUT_MS);
    assert_true(conf->lua.fetch.max_body_size == CONF_DEFAULT_FETCH_MAX_BODY_SIZE);
    assert_null(conf->lua.fetch.ca_file);
    conf_free(conf);

    /* lua.fetch: values, the bounds, paths like origin.ca */
    conf = load_ok("lua:\n  fetch:\n    timeout: 2500ms\n    max_body_size: 1GiB\n    ca: certs/ca.pem\n" LISTEN HOSTS);
    assert_true(conf->lua.fetch.timeout_ms == 2500);
    assert_true(conf->lua.fetch.max_body_size == CONF_MAX_FETCH_MAX_BODY_SIZE);
    assert_string_equal(conf->lua.fetch.ca_file, "/base/certs/ca.pem");
    assert_string_equal(conf->lua.dir, "/base/hooks");
    conf_free(conf);
    conf = load_ok("lua: { fetch: { timeout: 1ms, max_body_size: 1KiB, ca: /etc/ssl/ca.pem } }\n" LISTEN HOSTS);
    assert_true(conf->lua.fetch.timeout_ms == 1);
    assert_true(conf->lua.fetch.max_body_size == 1024);
    assert_string_equal(conf->lua.fetch.ca_file, "/etc/ssl/ca.pem");
    conf_free(conf);
    conf = load_ok("lua: { fetch: { timeout: 5m, max_body_size: 1024 } }\n" LISTEN HOSTS);
    assert_true(conf->lua.fetch.timeout_ms == 300000);
    assert_true(conf->lua.fetch.max_body_size == 1024);
    assert_null(conf->lua.fetch.ca_file);
    conf_free(conf);
    conf = load_ok("lua: { fetch: {} }\n" LISTEN HOSTS);
    assert_true(conf->lua.fetch.timeout_ms == CONF_DEFAULT_FETCH_TIMEOUT_MS);
    assert_true(conf->lua.fetch.max_body_size == CONF_DEFAULT_FETCH_MAX_BODY_SIZE);
    conf_free(conf);

    check_error("lua: []\n" LISTEN HOSTS, "t.yaml:1: lua: expected a mapping");
    check_error("lua: { cpu: 1s }\n" LISTEN HOSTS, "t.yaml:1: lua.cpu: unknown key");
    check_error("lua:\n  cpu_limit: 30s\n" LISTEN HOSTS, "t.yaml:2: lua.cpu_limit: must be between 1ms and 29s");
    check_error("lua:\n  memory_limit: 512KiB\n" LISTEN HOSTS, "t.yaml:2: lua.memory_limit: must be at least 1MiB");
    check_error("lua:\n  stage: \"\"\n" LISTEN HOSTS, "t.yaml:2: lua.stage: must not be empty");
    /* lua.fetch */
    check_error("lua:\n  fetch: []\n" LISTEN HOSTS, "t.yaml:2: lua.fetch: expected a mapping");
    check_error("lua:\n  fetch:\n    retries: 3\n" LISTEN HOSTS, "t.yaml:3: lua.fetch.retries: unknown key");
    check_error("lua:\n  fetch:\n    timeout: 0ms\n" LISTEN HOSTS, "t.yaml:3: lua.fetch.timeout: must be between 1ms and 5m");
    check_error("lua:\n  fetch:\n    timeout: 301s\n" LISTEN HOSTS, "t.yaml:3: lua.fetch.timeout: must be between 1ms and 5m");
    check_error("lua:\n  fetch:\n    timeout: 10\n" LISTEN HOSTS,
                "t.yaml:3: lua.fetch.timeout: bad duration \"10\" (use ms, s, m or h)");
    check_error("lua:\n  fetch:\n    timeout: 10sec\n" LISTEN HOSTS,
                "t.yaml:3: lua.fetch.timeout: bad duration \"10sec\" (use ms, s, m or h)");
    check_error("lua:\n  fetch:\n    max_body_size: 1023\n" LISTEN HOSTS,
                "t.yaml:3: lua.fetch.max_body_size: must be at least 1KiB");
    check_error("lua:\n  fetch:\n    max_body_size: 2GiB\n" LISTEN HOSTS,
                "t.yaml:3: lua.fetch.max_body_size: must be at most 1GiB");
    check_error("lua:\n  fetch:\n    max_body_size: 8mb\n" LISTEN HOSTS,
                "t.yaml:3: lua.fetch.max_body_size: bad size \"8mb\" (use B, KB, MB, GB, KiB, MiB or GiB)");
    check_error("lua:\n  fetch:\n    ca: \"\"\n" LISTEN HOSTS, "t.yaml:3: lua.fetch.ca: must not be empty");
}

/* A route's Lua hooks (on every origin kind) and internal routes. */
/* origin: { store: dynamodb } and the top-level store block. */
static void test_store(void **state)
{
    conf_t *conf;

    (void)state;
    conf = load_ok(ROUTE "        origin: { store: dynamodb }\n");
    assert_int_equal(conf->hosts[0].routes[0].origin.kind, CONF_ORIGIN_STORE);
    assert_int_equal(conf->hosts[0].routes[0].origin.store_kind, CONF_STORE_DYNAMODB);
    assert_string_equal(conf->store.path, "/base/var/store");
    assert_int_equal(conf->store.max_size, CONF_DEFAULT_STORE_MAX_SIZE);
    conf_free(conf);
    conf = load_ok("store: { path: items, max_size: 64MiB }\n" ROUTE ORIGIN);
    assert_string_equal(conf->store.path, "/base/items");
    assert_int_equal(conf->store.max_size, 64ull * 1024 * 1024);
    conf_free(conf);
    check_error(ROUTE "        origin: { store: mongo }\n",
                "t.yaml:7: hosts.\"*\".routes[0].origin.store: expected dynamodb or rest, not \"mongo\"");
    check_error(ROUTE "        origin: { store: dynamodb, url: \"http://o\" }\n",
                "t.yaml:7: hosts.\"*\".routes[0].origin: use one of url, static, function or store");
    check_error("store: { max_size: 1MiB }\n" ROUTE ORIGIN, "t.yaml:1: store.max_size: must be at least 16MiB");
    check_error("store: { where: x }\n" ROUTE ORIGIN, "t.yaml:1: store.where: unknown key");
}

/* origin: { store: rest } and its tables allowlist. */
static void test_store_rules_and_keys(void **state)
{
    conf_t *conf;

    (void)state;
    conf = load_ok(LISTEN "store:\n"
                          "  access_keys:\n"
                          "    - { id: AKID1, secret: \"s/e+c\" }\n"
                          "  tables:\n"
                          "    users:\n"
                          "      attributes:\n"
                          "        email: { type: S, required: true, pattern: \"^[^@]+@[^@]+$\" }\n"
                          "        age: { type: N, min: 0, max: 1.5E2 }\n"
                          "        role: { type: S, enum: [admin, user] }\n"
                          "        tags: { max_length: 3 }\n" HOSTS);
    assert_int_equal(conf->store.naccess_keys, 1);
    assert_string_equal(conf->store.access_keys[0].id, "AKID1");
    assert_string_equal(conf->store.access_keys[0].secret, "s/e+c");
    assert_int_equal(conf->store.ntables, 1);
    const conf_store_table_t *t = &conf->store.tables[0];
    assert_string_equal(t->name, "users");
    assert_int_equal(t->nattrs, 4);
    assert_string_equal(t->attrs[0].name, "email");
    assert_true(t->attrs[0].required);
    assert_string_equal(t->attrs[0].pattern, "^[^@]+@[^@]+$");
    assert_int_equal(t->attrs[0].min_length, -1);
    assert_string_equal(t->attrs[1].min, "0");
    assert_string_equal(t->attrs[1].max, "1.5E2");
    assert_int_equal(t->attrs[2].nenums, 2);
    assert_string_equal(t->attrs[2].enums[1], "user");
    assert_null(t->attrs[3].type);
    assert_int_equal(t->attrs[3].max_length, 3);
    conf_free(conf);

#define RULE(r) LISTEN "store:\n  tables:\n    users:\n      attributes:\n        a: " r "\n" HOSTS
    check_error(RULE("{ type: Q }"),
                "t.yaml:7: store.tables.\"users\".attributes.a.type: expected one of S, N, B, BOOL, NULL, L, M, SS, NS, BS");
    check_error(RULE("{ type: S, min: 1 }"), "t.yaml:7: store.tables.\"users\".attributes.a.min: needs type: N");
    check_error(RULE("{ type: N, max: ten }"), "t.yaml:7: store.tables.\"users\".attributes.a.max: expected a number");
    check_error(RULE("{ type: S, pattern: \"([a-\" }"),
                "t.yaml:7: store.tables.\"users\".attributes.a.pattern: bad regular expression: Unmatched [, [^, [:, [., or [=");
    check_error(RULE("{ type: BOOL, enum: [a] }"), "t.yaml:7: store.tables.\"users\".attributes.a.enum: needs type: S or N");
    check_error(RULE("{ type: N, min_length: 1 }"),
                "t.yaml:7: store.tables.\"users\".attributes.a.min_length: is for strings, binaries, lists, maps and sets");
    check_error(RULE("{ type: S, colour: red }"), "t.yaml:7: store.tables.\"users\".attributes.a.colour: unknown key");
    check_error(RULE("{ type: N, min: 10, max: 9.5 }"),
                "t.yaml:7: store.tables.\"users\".attributes.a.max: is below min: no value could be written");
    check_error(RULE("{ type: S, min_length: 3, max_length: 2 }"),
                "t.yaml:7: store.tables.\"users\".attributes.a.max_length: is below min_length: no value could be written");
#undef RULE
    check_error(LISTEN "store:\n  tables:\n    ab:\n      attributes: {}\n" HOSTS,
                "t.yaml:5: store.tables.\"ab\": bad table name (3 to 255 letters, digits, '_', '.' or '-')");
    check_error(LISTEN "store:\n  access_keys:\n    - { id: \"AK-1\", secret: x }\n" HOSTS,
                "t.yaml:5: store.access_keys[0].id: an access key id has letters and digits only");
    check_error(LISTEN "store:\n  access_keys:\n    - { id: AK1 }\n" HOSTS,
                "t.yaml:5: store.access_keys[0]: id and secret are required");
}

static void test_store_rest(void **state)
{
    conf_t *conf;
    const conf_origin_t *o;

    (void)state;
    conf = load_ok(ROUTE "        origin: { store: rest }\n");
    o = &conf->hosts[0].routes[0].origin;
    assert_int_equal(o->kind, CONF_ORIGIN_STORE);
    assert_int_equal(o->store_kind, CONF_STORE_REST);
    assert_int_equal(o->ntables, 0);
    assert_null(o->tables);
    conf_free(conf);
    conf = load_ok(ROUTE "        origin:\n          store: rest\n          tables: [users, My.Table-2_x]\n");
    o = &conf->hosts[0].routes[0].origin;
    assert_int_equal(o->store_kind, CONF_STORE_REST);
    assert_int_equal(o->ntables, 2);
    assert_string_equal(o->tables[0], "users");
    assert_string_equal(o->tables[1], "My.Table-2_x");
    conf_free(conf);
    /* a prefix path with a trailing slash is fine */
    conf = load_ok(LISTEN "hosts:\n  \"*\":\n    routes:\n      - path: /rest/\n        origin: { store: rest, tables: [abc] }\n");
    assert_string_equal(conf->hosts[0].routes[0].path, "/rest/");
    assert_int_equal(conf->hosts[0].routes[0].origin.ntables, 1);
    conf_free(conf);

    check_error(ROUTE "        origin: { store: dynamodb, tables: [users] }\n",
                "t.yaml:7: hosts.\"*\".routes[0].origin.tables: only allowed with store: rest");
    check_error(ROUTE "        origin: { url: \"http://o\", tables: [users] }\n",
                "t.yaml:7: hosts.\"*\".routes[0].origin.tables: only allowed with store: rest");
    check_error(ROUTE "        origin: { store: rest, tables: [] }\n",
                "t.yaml:7: hosts.\"*\".routes[0].origin.tables: must not be empty");
    check_error(ROUTE "        origin: { store: rest, tables: users }\n",
                "t.yaml:7: hosts.\"*\".routes[0].origin.tables: expected a sequence");
    check_error(ROUTE "        origin:\n          store: rest\n          tables:\n            - users\n            - ab\n",
                "t.yaml:11: hosts.\"*\".routes[0].origin.tables[1]: expected a table name (3 to 255 of A-Z a-z 0-9 _ . -), "
                "not \"ab\"");
    check_error(ROUTE "        origin: { store: rest, tables: [\"a/b/c\"] }\n",
                "t.yaml:7: hosts.\"*\".routes[0].origin.tables[0]: expected a table name (3 to 255 of A-Z a-z 0-9 _ . -), "
                "not \"a/b/c\"");
    check_error(ROUTE "        origin: { store: rest, tables: [[users]] }\n",
                "t.yaml:7: hosts.\"*\".routes[0].origin.tables[0]: expected a string");
    check_error(LISTEN "hosts:\n  \"*\":\n    routes:\n      - path: /t/{table}\n        origin: { store: rest }\n",
                "t.yaml:7: hosts.\"*\".routes[0].origin: store: rest needs a prefix path, not a pattern");
}

static void test_hooks(void **state)
{
    conf_t *conf = load_ok(LISTEN "hosts:\n"
                                  "  \"*\":\n"
                                  "    routes:\n"
                                  "      - path: /a\n"
                                  "        origin: { url: \"http://o\" }\n"
                                  "        hooks:\n"
                                  "          request: hooks/auth.lua\n"
                                  "          response: /srv/hooks/rewrite.lua\n"
                                  "          on_error: continue\n"
                                  "      - path: /s\n"
                                  "        origin: { function: g.lua }\n"
                                  "        hooks: { response: both.lua, on_error: fail }\n"
                                  "      - path: /f\n"
                                  "        origin: { function: f.lua }\n"
                                  "        hooks: { request: both.lua, response: both.lua }\n"
                                  "        internal: true\n"
                                  "      - path: /i\n"
                                  "        origin: { url: \"http://o\" }\n"
                                  "        internal: no\n");
    conf_route_t *r = conf->hosts[0].routes;
    (void)state;

    assert_string_equal(r[0].hooks.request_file, "/base/hooks/auth.lua");
    assert_int_equal(r[0].hooks.request_line, 9);
    assert_string_equal(r[0].hooks.response_file, "/srv/hooks/rewrite.lua");
    assert_int_equal(r[0].hooks.response_line, 10);
    assert_int_equal(r[0].hooks.on_error_continue, 1);
    assert_int_equal(r[0].internal, 0);

    assert_int_equal(r[1].origin.kind, CONF_ORIGIN_FUNCTION);
    assert_null(r[1].hooks.request_file);
    assert_int_equal(r[1].hooks.request_line, 0);
    assert_string_equal(r[1].hooks.response_file, "/base/both.lua");
    assert_int_equal(r[1].hooks.response_line, 14);
    assert_int_equal(r[1].hooks.on_error_continue, 0);

    /* both hooks in one file */
    assert_int_equal(r[2].origin.kind, CONF_ORIGIN_FUNCTION);
    assert_string_equal(r[2].hooks.request_file, "/base/both.lua");
    assert_string_equal(r[2].hooks.response_file, "/base/both.lua");
    assert_int_equal(r[2].hooks.request_line, 17);
    assert_int_equal(r[2].hooks.response_line, 17);
    assert_int_equal(r[2].hooks.on_error_continue, 0);
    assert_int_equal(r[2].internal, 1);

    assert_null(r[3].hooks.request_file);
    assert_null(r[3].hooks.response_file);
    assert_int_equal(r[3].internal, 0);
    conf_free(conf);

    /* a request hook alone */
    conf = load_ok(ROUTE ORIGIN "        hooks: { request: r.lua }\n        internal: Yes\n");
    assert_string_equal(conf->hosts[0].routes[0].hooks.request_file, "/base/r.lua");
    assert_null(conf->hosts[0].routes[0].hooks.response_file);
    assert_int_equal(conf->hosts[0].routes[0].hooks.on_error_continue, 0);
    assert_int_equal(conf->hosts[0].routes[0].internal, 1);
    conf_free(conf);
}

static void test_err_hooks(void **state)
{
    (void)state;
    check_error(ROUTE ORIGIN "        hooks: a.lua\n", "t.yaml:8: hosts.\"*\".routes[0].hooks: expected a mapping");
    check_error(ROUTE ORIGIN "        hooks: {}\n", "t.yaml:8: hosts.\"*\".routes[0].hooks: request or response is required");
    check_error(ROUTE ORIGIN "        hooks:\n          on_error: continue\n",
                "t.yaml:9: hosts.\"*\".routes[0].hooks: request or response is required");
    check_error(ROUTE ORIGIN "        hooks:\n          request: a.lua\n          before: b.lua\n",
                "t.yaml:10: hosts.\"*\".routes[0].hooks.before: unknown key");
    check_error(ROUTE ORIGIN "        hooks:\n          request: a.lua\n          request: b.lua\n",
                "t.yaml:10: hosts.\"*\".routes[0].hooks.request: duplicate key");
    check_error(ROUTE ORIGIN "        hooks:\n          request: a.lua\n          on_error: ignore\n",
                "t.yaml:10: hosts.\"*\".routes[0].hooks.on_error: expected fail or continue, not \"ignore\"");
    check_error(ROUTE ORIGIN "        hooks:\n          request: a.lua\n          on_error: Continue\n",
                "t.yaml:10: hosts.\"*\".routes[0].hooks.on_error: expected fail or continue, not \"Continue\"");
    check_error(ROUTE ORIGIN "        hooks:\n          request: a.lua\n          on_error: [fail]\n",
                "t.yaml:10: hosts.\"*\".routes[0].hooks.on_error: expected fail or continue");
    check_error(ROUTE ORIGIN "        hooks:\n          response: \"\"\n",
                "t.yaml:9: hosts.\"*\".routes[0].hooks.response: must not be empty");
    check_error(ROUTE ORIGIN "        hooks:\n          request: [a.lua]\n",
                "t.yaml:9: hosts.\"*\".routes[0].hooks.request: expected a string");
    /* a response hook where nothing would run it; a request hook is fine there */
    check_error(ROUTE "        origin: { static: www }\n        hooks: { response: r.lua }\n",
                "t.yaml:8: hosts.\"*\".routes[0].hooks.response: a response hook runs on url and function origins only "
                "(static files answer without it)");
    check_error(ROUTE "        origin: { store: dynamodb }\n        hooks:\n          request: q.lua\n          response: r.lua\n",
                "t.yaml:10: hosts.\"*\".routes[0].hooks.response: a response hook runs on url and function origins only "
                "(the item store's routes answer without it)");
    conf_t *conf = load_ok(ROUTE "        origin: { static: www }\n        hooks: { request: q.lua }\n");
    assert_string_equal(conf->hosts[0].routes[0].hooks.request_file, "/base/q.lua");
    conf_free(conf);
    /* internal */
    check_error(ROUTE ORIGIN "        internal: maybe\n", "t.yaml:8: hosts.\"*\".routes[0].internal: expected true or false");
    check_error(ROUTE ORIGIN "        internal: 1\n", "t.yaml:8: hosts.\"*\".routes[0].internal: expected true or false");
    check_error(ROUTE ORIGIN "        internal: [true]\n", "t.yaml:8: hosts.\"*\".routes[0].internal: expected true or false");
}

static void test_err_origin(void **state)
{
    (void)state;
    check_error(ROUTE "        origin: \"http://o\"\n", "t.yaml:7: hosts.\"*\".routes[0].origin: expected a mapping");
    check_error(ROUTE "        origin: { url: \"http://o\", static: www }\n",
                "t.yaml:7: hosts.\"*\".routes[0].origin: use one of url, static, function or store");
    check_error(ROUTE "        origin: { static: www, function: f.lua }\n",
                "t.yaml:7: hosts.\"*\".routes[0].origin: use one of url, static, function or store");
    check_error(ROUTE "        origin: { preserve_host: false }\n",
                "t.yaml:7: hosts.\"*\".routes[0].origin: url, static, function or store is required");
    check_error(ROUTE "        origin: { function: f.lua, index: [a.html] }\n",
                "t.yaml:7: hosts.\"*\".routes[0].origin.index: only allowed with static");
    check_error(ROUTE "        origin: { function: \"\" }\n", "t.yaml:7: hosts.\"*\".routes[0].origin.function: must not be empty");
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

/* ---- gateway: auth, throttles, CORS, API keys, plans ---- */

#define R0 "hosts.\"*\".routes[0]."
#define SHA_A "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF"
#define SHA_B "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"

static void test_auth(void **state)
{
    conf_t *conf;
    conf_route_t *r;
    (void)state;

    conf = load_ok(LISTEN "hosts:\n"
                          "  \"*\":\n"
                          "    routes:\n"
                          "      - { path: /a, origin: { url: \"http://o\" }, auth: none }\n"
                          "      - { path: /b, origin: { static: www }, auth: api_key }\n"
                          "      - { path: /c, origin: { url: \"http://o\" }, auth: { api_key: yes } }\n"
                          "      - { path: /d, origin: { url: \"http://o\" }, auth: {} }\n"
                          "      - path: /e\n"
                          "        origin: { static: www }\n"
                          "        auth:\n"
                          "          jwt: { jwks: certs/jwks.json }\n"
                          "      - path: /f\n" ORIGIN "        auth:\n"
                          "          api_key: true\n"
                          "          jwt:\n"
                          "            jwks: /etc/jwks.json\n"
                          "            issuer: \"https://issuer.example\"\n"
                          "            audience: api\n"
                          "            leeway: 5m\n"
                          "            algorithms: [RS256, ES256]\n"
                          "      - path: /g\n" ORIGIN "        auth:\n"
                          "          api_key: false\n"
                          "          jwt: { jwks: j, audience: [a, b], leeway: 1500ms, algorithms: [HS256] }\n");
    r = conf->hosts[0].routes;
    assert_int_equal(conf->hosts[0].nroutes, 7);
    assert_int_equal(r[0].api_key, 0);
    assert_int_equal(r[0].jwt.enabled, 0);
    assert_int_equal(r[1].api_key, 1);
    assert_int_equal(r[1].jwt.enabled, 0);
    assert_int_equal(r[2].api_key, 1);
    assert_int_equal(r[3].api_key, 0);
    assert_int_equal(r[3].jwt.enabled, 0);
    /* jwt defaults */
    assert_int_equal(r[4].api_key, 0);
    assert_int_equal(r[4].jwt.enabled, 1);
    assert_string_equal(r[4].jwt.jwks, "/base/certs/jwks.json");
    assert_null(r[4].jwt.issuer);
    assert_int_equal(r[4].jwt.naudiences, 0);
    assert_null(r[4].jwt.audiences);
    assert_true(r[4].jwt.leeway_s == CONF_DEFAULT_JWT_LEEWAY_S);
    assert_int_equal(r[4].jwt.algorithms, CONF_JWT_HS256 | CONF_JWT_RS256 | CONF_JWT_ES256);
    /* everything given */
    assert_int_equal(r[5].api_key, 1);
    assert_int_equal(r[5].jwt.enabled, 1);
    assert_string_equal(r[5].jwt.jwks, "/etc/jwks.json");
    assert_string_equal(r[5].jwt.issuer, "https://issuer.example");
    assert_int_equal(r[5].jwt.naudiences, 1);
    assert_string_equal(r[5].jwt.audiences[0], "api");
    assert_true(r[5].jwt.leeway_s == CONF_MAX_JWT_LEEWAY_S);
    assert_int_equal(r[5].jwt.algorithms, CONF_JWT_RS256 | CONF_JWT_ES256);
    assert_int_equal(r[6].api_key, 0);
    assert_string_equal(r[6].jwt.jwks, "/base/j");
    assert_int_equal(r[6].jwt.naudiences, 2);
    assert_string_equal(r[6].jwt.audiences[0], "a");
    assert_string_equal(r[6].jwt.audiences[1], "b");
    assert_true(r[6].jwt.leeway_s == 1); /* whole seconds, rounded down like the cache's durations */
    assert_int_equal(r[6].jwt.algorithms, CONF_JWT_HS256);
    conf_free(conf);

    conf = load_ok(ROUTE ORIGIN "        auth: { jwt: { jwks: j, leeway: 0s } }\n");
    assert_true(conf->hosts[0].routes[0].jwt.leeway_s == 0);
    conf_free(conf);
}

static void test_err_auth(void **state)
{
    (void)state;
    check_error(ROUTE ORIGIN "        auth: jwt\n",
                "t.yaml:8: " R0 "auth: jwt needs a mapping with jwks (auth: { jwt: { jwks: FILE } })");
    check_error(ROUTE ORIGIN "        auth: apikey\n",
                "t.yaml:8: " R0 "auth: expected none, api_key or a mapping { api_key: true, jwt: {...} }, not \"apikey\"");
    check_error(ROUTE ORIGIN "        auth: \"\"\n",
                "t.yaml:8: " R0 "auth: expected none, api_key or a mapping { api_key: true, jwt: {...} }, not \"\"");
    check_error(ROUTE ORIGIN "        auth: [api_key]\n", "t.yaml:8: " R0 "auth: expected a mapping");
    check_error(ROUTE ORIGIN "        auth: { apikey: true }\n", "t.yaml:8: " R0 "auth.apikey: unknown key");
    check_error(ROUTE ORIGIN "        auth: { api_key: 1 }\n", "t.yaml:8: " R0 "auth.api_key: expected true or false");
    check_error(ROUTE ORIGIN "        auth:\n          jwt: yes\n", "t.yaml:9: " R0 "auth.jwt: expected a mapping");
    check_error(ROUTE ORIGIN "        auth:\n          jwt: {}\n", "t.yaml:9: " R0 "auth.jwt.jwks: is required");
    check_error(ROUTE ORIGIN "        auth:\n          jwt: { issuer: x }\n", "t.yaml:9: " R0 "auth.jwt.jwks: is required");
    check_error(ROUTE ORIGIN "        auth:\n          jwt: { jwks: \"\" }\n", "t.yaml:9: " R0 "auth.jwt.jwks: must not be empty");
    check_error(ROUTE ORIGIN "        auth:\n          jwt: { jwks: j, iss: x }\n", "t.yaml:9: " R0 "auth.jwt.iss: unknown key");
    check_error(ROUTE ORIGIN "        auth:\n          jwt: { jwks: j, issuer: \"\" }\n",
                "t.yaml:9: " R0 "auth.jwt.issuer: must not be empty");
    check_error(ROUTE ORIGIN "        auth:\n          jwt: { jwks: j, audience: [] }\n",
                "t.yaml:9: " R0 "auth.jwt.audience: must not be empty");
    check_error(ROUTE ORIGIN "        auth:\n          jwt: { jwks: j, audience: [a, \"\"] }\n",
                "t.yaml:9: " R0 "auth.jwt.audience[1]: must not be empty");
    check_error(ROUTE ORIGIN "        auth:\n          jwt: { jwks: j, audience: { a: 1 } }\n",
                "t.yaml:9: " R0 "auth.jwt.audience: expected a sequence");
    check_error(ROUTE ORIGIN "        auth:\n          jwt:\n            jwks: j\n            leeway: 301s\n",
                "t.yaml:11: " R0 "auth.jwt.leeway: must be between 0s and 5m");
    check_error(ROUTE ORIGIN "        auth:\n          jwt: { jwks: j, leeway: 30 }\n",
                "t.yaml:9: " R0 "auth.jwt.leeway: bad duration \"30\" (use ms, s, m or h)");
    check_error(ROUTE ORIGIN "        auth:\n          jwt: { jwks: j, algorithms: [] }\n",
                "t.yaml:9: " R0 "auth.jwt.algorithms: must not be empty");
    check_error(ROUTE ORIGIN "        auth:\n          jwt: { jwks: j, algorithms: RS256 }\n",
                "t.yaml:9: " R0 "auth.jwt.algorithms: expected a sequence");
    check_error(ROUTE ORIGIN "        auth:\n          jwt: { jwks: j, algorithms: [RS256, HS512] }\n",
                "t.yaml:9: " R0 "auth.jwt.algorithms[1]: unknown algorithm \"HS512\" (use HS256, RS256 or ES256)");
    check_error(ROUTE ORIGIN "        auth:\n          jwt: { jwks: j, algorithms: [rs256] }\n",
                "t.yaml:9: " R0 "auth.jwt.algorithms[0]: unknown algorithm \"rs256\" (use HS256, RS256 or ES256)");
    check_error(ROUTE ORIGIN "        auth:\n          jwt: { jwks: j, algorithms: [none] }\n",
                "t.yaml:9: " R0 "auth.jwt.algorithms[0]: unknown algorithm \"none\" (use HS256, RS256 or ES256)");
}

static void test_throttle(void **state)
{
    conf_t *conf;
    conf_route_t *r;
    (void)state;

    conf = load_ok(ROUTE "        origin: { static: www }\n"
                         "        throttle: { rate: 100/s }\n"
                         "        ip_throttle:\n"
                         "          rate: 5/30s\n"
                         "          burst: 1\n"
                         "      - path: /b\n" ORIGIN "        throttle: { rate: 1000000000/1ms, burst: 1000000000 }\n"
                         "        ip_throttle: { burst: 7, rate: 2/500ms }\n");
    r = conf->hosts[0].routes;
    assert_int_equal(r[0].throttle.enabled, 1);
    assert_true(r[0].throttle.count == 100);
    assert_true(r[0].throttle.per_ms == 1000);
    assert_true(r[0].throttle.burst == 100); /* the rate's count */
    assert_int_equal(r[0].ip_throttle.enabled, 1);
    assert_true(r[0].ip_throttle.count == 5);
    assert_true(r[0].ip_throttle.per_ms == 30000);
    assert_true(r[0].ip_throttle.burst == 1);
    assert_true(r[1].throttle.count == 1000000000);
    assert_true(r[1].throttle.per_ms == 1);
    assert_true(r[1].throttle.burst == 1000000000);
    assert_true(r[1].ip_throttle.count == 2);
    assert_true(r[1].ip_throttle.per_ms == 500);
    assert_true(r[1].ip_throttle.burst == 7);
    conf_free(conf);

    conf = load_ok(ROUTE ORIGIN "        throttle: { rate: 1/d }\n");
    assert_true(conf->hosts[0].routes[0].throttle.count == 1);
    assert_true(conf->hosts[0].routes[0].throttle.per_ms == 86400000);
    assert_true(conf->hosts[0].routes[0].throttle.burst == 1);
    assert_int_equal(conf->hosts[0].routes[0].ip_throttle.enabled, 0);
    conf_free(conf);
}

static void test_err_throttle(void **state)
{
    (void)state;
    check_error(ROUTE ORIGIN "        throttle: 100/s\n", "t.yaml:8: " R0 "throttle: expected a mapping");
    check_error(ROUTE ORIGIN "        throttle: {}\n", "t.yaml:8: " R0 "throttle.rate: is required");
    check_error(ROUTE ORIGIN "        ip_throttle:\n          burst: 5\n", "t.yaml:9: " R0 "ip_throttle.rate: is required");
    check_error(ROUTE ORIGIN "        throttle: { rate: 1/s, brust: 1 }\n", "t.yaml:8: " R0 "throttle.brust: unknown key");
    check_error(ROUTE ORIGIN "        throttle: { rate: [1/s] }\n", "t.yaml:8: " R0 "throttle.rate: expected a rate such as 100/s");
    check_error(ROUTE ORIGIN "        throttle: { rate: 100 }\n",
                "t.yaml:8: " R0 "throttle.rate: bad rate \"100\" (use N/s, N/m, N/h, N/d or N/DURATION such as 5/30s)");
    check_error(ROUTE ORIGIN "        throttle: { rate: 100/sec }\n",
                "t.yaml:8: " R0 "throttle.rate: bad rate \"100/sec\" (use N/s, N/m, N/h, N/d or N/DURATION such as 5/30s)");
    check_error(ROUTE ORIGIN "        throttle: { rate: 0/s }\n",
                "t.yaml:8: " R0 "throttle.rate: the count must be between 1 and 1000000000");
    check_error(ROUTE ORIGIN "        throttle: { rate: 1000000001/s }\n",
                "t.yaml:8: " R0 "throttle.rate: the count must be between 1 and 1000000000");
    check_error(ROUTE ORIGIN "        throttle: { rate: 1/25h }\n",
                "t.yaml:8: " R0 "throttle.rate: the period must be between 1ms and 24h");
    check_error(ROUTE ORIGIN "        throttle: { rate: 1/0s }\n",
                "t.yaml:8: " R0 "throttle.rate: the period must be between 1ms and 24h");
    check_error(ROUTE ORIGIN "        ip_throttle:\n          rate: 1/s\n          burst: 0\n",
                "t.yaml:10: " R0 "ip_throttle.burst: must be between 1 and 1000000000");
    check_error(ROUTE ORIGIN "        ip_throttle: { rate: 1/s, burst: 1000000001 }\n",
                "t.yaml:8: " R0 "ip_throttle.burst: must be between 1 and 1000000000");
    check_error(ROUTE ORIGIN "        ip_throttle: { rate: 1/s, burst: lots }\n",
                "t.yaml:8: " R0 "ip_throttle.burst: expected an integer");
}

static void test_cors(void **state)
{
    conf_t *conf;
    const conf_cors_t *cors;
    (void)state;

    conf = load_ok(ROUTE ORIGIN "        cors:\n"
                                "          origins:\n"
                                "            - \"HTTPS://App.Example.com/\"\n"
                                "            - \"http://a.example:80\"\n"
                                "            - \"https://a.example:443/\"\n"
                                "            - \"https://a.example:8443\"\n"
                                "            - \"http://[::1]:8080\"\n"
                                "            - \"http://10.0.0.1\"\n"
                                "          methods: [get, PUT]\n"
                                "          headers: [Content-Type, x-api-key]\n"
                                "          expose_headers: [X-Request-Id, \"*\"]\n"
                                "          credentials: true\n"
                                "          max_age: 10m\n"
                                "      - path: /b\n"
                                "        origin: { static: www }\n"
                                "        cors: { origins: \"*\", headers: \"*\", max_age: 0s, credentials: false }\n");
    cors = &conf->hosts[0].routes[0].cors;
    assert_int_equal(cors->enabled, 1);
    assert_int_equal(cors->any_origin, 0);
    assert_int_equal(cors->norigins, 6);
    assert_string_equal(cors->origins[0], "https://app.example.com");
    assert_string_equal(cors->origins[1], "http://a.example");
    assert_string_equal(cors->origins[2], "https://a.example");
    assert_string_equal(cors->origins[3], "https://a.example:8443");
    assert_string_equal(cors->origins[4], "http://[::1]:8080");
    assert_string_equal(cors->origins[5], "http://10.0.0.1");
    assert_int_equal(cors->methods, CONF_M_GET | CONF_M_HEAD | CONF_M_PUT);
    assert_int_equal(cors->any_header, 0);
    assert_int_equal(cors->nheaders, 2);
    assert_string_equal(cors->headers[0], "content-type");
    assert_string_equal(cors->headers[1], "x-api-key");
    assert_int_equal(cors->nexpose, 2);
    assert_string_equal(cors->expose[0], "X-Request-Id");
    assert_string_equal(cors->expose[1], "*");
    assert_int_equal(cors->credentials, 1);
    assert_int_equal(cors->max_age_s, 600);
    cors = &conf->hosts[0].routes[1].cors;
    assert_int_equal(cors->enabled, 1);
    assert_int_equal(cors->any_origin, 1);
    assert_int_equal(cors->norigins, 0);
    assert_int_equal(cors->any_header, 1);
    assert_int_equal(cors->nheaders, 0);
    assert_int_equal(cors->credentials, 0);
    assert_int_equal(cors->max_age_s, 0);
    conf_free(conf);

    /* defaults */
    conf = load_ok(ROUTE ORIGIN "        cors: { origins: [\"https://a\"] }\n");
    cors = &conf->hosts[0].routes[0].cors;
    assert_int_equal(cors->enabled, 1);
    assert_int_equal(cors->norigins, 1);
    assert_string_equal(cors->origins[0], "https://a");
    assert_int_equal(cors->methods, CONF_M_GET | CONF_M_HEAD | CONF_M_POST);
    assert_int_equal(cors->any_header, 0);
    assert_int_equal(cors->nheaders, 0);
    assert_int_equal(cors->nexpose, 0);
    assert_int_equal(cors->credentials, 0);
    assert_int_equal(cors->max_age_s, -1);
    conf_free(conf);
}

static void test_err_cors(void **state)
{
    static const struct {
        const char *origin, *why;
    } bad[] = {
        {"*.example.com", "must start with http:// or https://"},
        {"app.example.com", "must start with http:// or https://"},
        {"ftp://a", "must start with http:// or https://"},
        {"null", "must start with http:// or https://"},
        {"https://", "no host"},
        {"https://a/b", "a path is not allowed"},
        {"https://a//", "a path is not allowed"},
        {"https://a/?x", "a query or fragment is not allowed"},
        {"https://a#x", "a query or fragment is not allowed"},
        {"https://u@a", "user info is not allowed"},
        {"https://a:0", "port must be between 1 and 65535"},
        {"https://a b", "bad host"},
        {"https://[::1", "bad IPv6 address"},
    };
    char yaml[512], expect[512];
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(yaml, sizeof(yaml), ROUTE ORIGIN "        cors:\n          origins: [\"https://ok\", \"%s\"]\n", bad[i].origin);
        snprintf(expect, sizeof(expect), "t.yaml:9: " R0 "cors.origins[1]: bad origin \"%s\": %s", bad[i].origin, bad[i].why);
        check_error(yaml, expect);
    }
    check_error(ROUTE ORIGIN "        cors: {}\n", "t.yaml:8: " R0 "cors.origins: is required");
    check_error(ROUTE ORIGIN "        cors: yes\n", "t.yaml:8: " R0 "cors: expected a mapping");
    check_error(ROUTE ORIGIN "        cors: { origins: \"https://a\" }\n",
                "t.yaml:8: " R0 "cors.origins: expected \"*\" or a list such as [\"https://app.example.com\"]");
    check_error(ROUTE ORIGIN "        cors: { origins: [] }\n", "t.yaml:8: " R0 "cors.origins: must not be empty");
    check_error(ROUTE ORIGIN "        cors: { origins: [\"\"] }\n", "t.yaml:8: " R0 "cors.origins[0]: must not be empty");
    check_error(ROUTE ORIGIN "        cors: { origins: \"*\", origin: x }\n", "t.yaml:8: " R0 "cors.origin: unknown key");
    check_error(ROUTE ORIGIN "        cors:\n          origins: \"*\"\n          credentials: true\n",
                "t.yaml:10: " R0 "cors.credentials: not allowed with origins \"*\" (the Fetch standard forbids it)");
    check_error(ROUTE ORIGIN "        cors: { origins: \"*\", credentials: 1 }\n",
                "t.yaml:8: " R0 "cors.credentials: expected true or false");
    check_error(ROUTE ORIGIN "        cors: { origins: \"*\", methods: [GET, FETCH] }\n",
                "t.yaml:8: " R0 "cors.methods[1]: unknown method \"FETCH\" (use GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS)");
    check_error(ROUTE ORIGIN "        cors: { origins: \"*\", methods: [] }\n", "t.yaml:8: " R0 "cors.methods: must not be empty");
    check_error(ROUTE ORIGIN "        cors: { origins: \"*\", headers: content-type }\n",
                "t.yaml:8: " R0 "cors.headers: expected \"*\" or a list of header names");
    check_error(ROUTE ORIGIN "        cors: { origins: \"*\", headers: [a, \"b c\"] }\n",
                "t.yaml:8: " R0 "cors.headers[1]: bad header name \"b c\"");
    check_error(ROUTE ORIGIN "        cors: { origins: \"*\", headers: [] }\n", "t.yaml:8: " R0 "cors.headers: must not be empty");
    check_error(ROUTE ORIGIN "        cors: { origins: \"*\", expose_headers: [\"x:y\"] }\n",
                "t.yaml:8: " R0 "cors.expose_headers[0]: bad header name \"x:y\"");
    check_error(ROUTE ORIGIN "        cors: { origins: \"*\", expose_headers: x }\n",
                "t.yaml:8: " R0 "cors.expose_headers: expected a sequence");
    check_error(ROUTE ORIGIN "        cors: { origins: \"*\", max_age: 25h }\n",
                "t.yaml:8: " R0 "cors.max_age: must be between 0s and 24h");
    check_error(ROUTE ORIGIN "        cors: { origins: \"*\", max_age: 600 }\n",
                "t.yaml:8: " R0 "cors.max_age: bad duration \"600\" (use ms, s, m or h)");
}

static void test_plans_keys(void **state)
{
    conf_t *conf;
    const conf_plan_t *p;
    (void)state;

    /* plans and keys before hosts: the overrides' paths are checked once the hosts are read */
    conf =
        load_ok("api_keys: { header: X-Key, query: key }\n"
                "plans:\n"
                "  basic:\n"
                "    rate: 100/s\n"
                "    burst: 50\n"
                "    quota: 10000/day\n"
                "    overrides:\n"
                "      - { path: /search, methods: [GET], rate: 10/s, burst: 5 }\n"
                "      - path: /search\n"
                "        methods: [POST]\n"
                "        rate: 1/m\n"
                "      - { path: \"/users/{id}\", rate: 2/s }\n"
                "  Gold.v2_x-1: { quota: 5/month }\n"
                "  empty: {}\n"
                "  \"0123456789012345678901234567890123456789012345678901234567890123\": { rate: 1/h }\n"
                "keys:\n"
                "  - { name: a, sha256: " SHA_A ", plan: basic }\n"
                "  - name: B.2_-\n"
                "    sha256: " SHA_B "\n"
                "    plan: Gold.v2_x-1\n"
                "    enabled: false\n"
                "  - { name: c, sha256: \"0000000000000000000000000000000000000000000000000000000000000000\" }\n" LISTEN "hosts:\n"
                "  a.example:\n"
                "    routes:\n"
                "      - { path: /, origin: { url: \"http://o\" } }\n"
                "      - { path: /search, origin: { url: \"http://o\" } }\n"
                "  b.example:\n"
                "    routes:\n"
                "      - { path: \"/users/{id}\", origin: { url: \"http://o\" } }\n");
    assert_string_equal(conf->api_keys.header, "x-key");
    assert_string_equal(conf->api_keys.query, "key");

    assert_int_equal(conf->nplans, 4);
    p = &conf->plans[0];
    assert_string_equal(p->name, "basic");
    assert_int_equal(p->line, 3);
    assert_int_equal(p->rate.enabled, 1);
    assert_true(p->rate.count == 100 && p->rate.per_ms == 1000 && p->rate.burst == 50);
    assert_true(p->quota.limit == 10000);
    assert_int_equal(p->quota.period, CONF_PERIOD_DAY);
    assert_int_equal(p->noverrides, 3);
    assert_string_equal(p->overrides[0].path, "/search");
    assert_int_equal(p->overrides[0].methods, CONF_M_GET | CONF_M_HEAD);
    assert_int_equal(p->overrides[0].rate.enabled, 1);
    assert_true(p->overrides[0].rate.count == 10 && p->overrides[0].rate.per_ms == 1000 && p->overrides[0].rate.burst == 5);
    assert_int_equal(p->overrides[0].line, 8);
    assert_int_equal(p->overrides[1].methods, CONF_M_POST);
    assert_true(p->overrides[1].rate.count == 1 && p->overrides[1].rate.per_ms == 60000 && p->overrides[1].rate.burst == 1);
    assert_int_equal(p->overrides[1].line, 9);
    assert_string_equal(p->overrides[2].path, "/users/{id}");
    assert_int_equal(p->overrides[2].methods, 0);
    assert_true(p->overrides[2].rate.burst == 2);
    p = &conf->plans[1];
    assert_string_equal(p->name, "Gold.v2_x-1");
    assert_int_equal(p->line, 13);
    assert_int_equal(p->rate.enabled, 0);
    assert_true(p->quota.limit == 5);
    assert_int_equal(p->quota.period, CONF_PERIOD_MONTH);
    assert_int_equal(p->noverrides, 0);
    p = &conf->plans[2];
    assert_string_equal(p->name, "empty");
    assert_int_equal(p->rate.enabled, 0);
    assert_true(p->quota.limit == 0);
    assert_int_equal(conf->plans[3].rate.enabled, 1);

    assert_int_equal(conf->nkeys, 3);
    assert_string_equal(conf->keys[0].name, "a");
    assert_int_equal(conf->keys[0].line, 17);
    assert_int_equal(conf->keys[0].plan, 0);
    assert_int_equal(conf->keys[0].enabled, 1);
    assert_int_equal(conf->keys[0].sha256[0], 0x00);
    assert_int_equal(conf->keys[0].sha256[1], 0x11);
    assert_int_equal(conf->keys[0].sha256[15], 0xff);
    assert_int_equal(conf->keys[0].sha256[26], 0xaa); /* upper-case digits */
    assert_int_equal(conf->keys[0].sha256[31], 0xff);
    assert_string_equal(conf->keys[1].name, "B.2_-");
    assert_int_equal(conf->keys[1].line, 18);
    assert_int_equal(conf->keys[1].plan, 1);
    assert_int_equal(conf->keys[1].enabled, 0);
    assert_int_equal(conf->keys[1].sha256[17], 0xff);
    assert_int_equal(conf->keys[2].plan, -1);
    assert_int_equal(conf->keys[2].enabled, 1);
    assert_int_equal(conf->keys[2].sha256[5], 0);
    conf_free(conf);

    /* empty sections */
    conf = load_ok("plans: {}\nkeys: []\napi_keys: {}\n" LISTEN HOSTS);
    assert_int_equal(conf->nplans, 0);
    assert_int_equal(conf->nkeys, 0);
    assert_string_equal(conf->api_keys.header, "x-api-key");
    assert_null(conf->api_keys.query);
    conf_free(conf);
}

static void test_err_plans_keys(void **state)
{
    (void)state;
    /* api_keys */
    check_error("api_keys: []\n" LISTEN HOSTS, "t.yaml:1: api_keys: expected a mapping");
    check_error("api_keys: { cookie: k }\n" LISTEN HOSTS, "t.yaml:1: api_keys.cookie: unknown key");
    check_error("api_keys:\n  header: \"x key\"\n" LISTEN HOSTS, "t.yaml:2: api_keys.header: bad header name \"x key\"");
    check_error("api_keys:\n  header: \"\"\n" LISTEN HOSTS, "t.yaml:2: api_keys.header: bad header name \"\"");
    check_error("api_keys:\n  query: \"\"\n" LISTEN HOSTS, "t.yaml:2: api_keys.query: must not be empty");
    check_error("api_keys:\n  query: [a]\n" LISTEN HOSTS, "t.yaml:2: api_keys.query: expected a string");

    /* plans */
    check_error("plans: []\n" LISTEN HOSTS, "t.yaml:1: plans: expected a mapping");
    check_error("plans:\n  \"bad name\": {}\n" LISTEN HOSTS,
                "t.yaml:2: plans.\"bad name\": bad plan name (use 1 to 64 letters, digits, '.', '_' or '-')");
    check_error("plans:\n  \"\": {}\n" LISTEN HOSTS,
                "t.yaml:2: plans.\"\": bad plan name (use 1 to 64 letters, digits, '.', '_' or '-')");
    check_error("plans:\n  \"01234567890123456789012345678901234567890123456789012345678901234\": {}\n" LISTEN HOSTS,
                "t.yaml:2: plans.\"01234567890123456789012345678901234567890123456789012345678901234\": bad plan name (use 1 to "
                "64 letters, digits, '.', '_' or '-')");
    check_error("plans:\n  [a]: {}\n" LISTEN HOSTS, "t.yaml:2: plans: keys must be strings");
    check_error("plans:\n  a: {}\n  b: {}\n  a: {}\n" LISTEN HOSTS, "t.yaml:4: plans.\"a\": duplicate plan");
    check_error("plans:\n  a: []\n" LISTEN HOSTS, "t.yaml:2: plans.\"a\": expected a mapping");
    check_error("plans:\n  a:\n" LISTEN HOSTS, "t.yaml:2: plans.\"a\": expected a mapping");
    check_error("plans:\n  a: { limit: 1/s }\n" LISTEN HOSTS, "t.yaml:2: plans.\"a\".limit: unknown key");
    check_error("plans:\n  a:\n    burst: 5\n" LISTEN HOSTS, "t.yaml:3: plans.\"a\".burst: only allowed with rate");
    check_error("plans:\n  a: { rate: 5/s, burst: 0 }\n" LISTEN HOSTS,
                "t.yaml:2: plans.\"a\".burst: must be between 1 and 1000000000");
    check_error("plans:\n  a:\n    rate: 5/x\n" LISTEN HOSTS,
                "t.yaml:3: plans.\"a\".rate: bad rate \"5/x\" (use N/s, N/m, N/h, N/d or N/DURATION such as 5/30s)");
    check_error("plans:\n  a:\n    quota: 10/year\n" LISTEN HOSTS,
                "t.yaml:3: plans.\"a\".quota: bad quota \"10/year\" (use N/day, N/week or N/month)");
    check_error("plans:\n  a:\n    quota: 10000\n" LISTEN HOSTS,
                "t.yaml:3: plans.\"a\".quota: bad quota \"10000\" (use N/day, N/week or N/month)");
    check_error("plans:\n  a:\n    quota: 0/day\n" LISTEN HOSTS,
                "t.yaml:3: plans.\"a\".quota: the count must be between 1 and 1099511627775");
    check_error("plans:\n  a:\n    quota: 1099511627776/week\n" LISTEN HOSTS,
                "t.yaml:3: plans.\"a\".quota: the count must be between 1 and 1099511627775");
    check_error("plans:\n  a:\n    quota: [1/day]\n" LISTEN HOSTS,
                "t.yaml:3: plans.\"a\".quota: expected a quota such as 10000/day");

    /* overrides */
    check_error("plans:\n  a: { overrides: [] }\n" LISTEN HOSTS, "t.yaml:2: plans.\"a\".overrides: must not be empty");
    check_error("plans:\n  a: { overrides: { path: / } }\n" LISTEN HOSTS, "t.yaml:2: plans.\"a\".overrides: expected a sequence");
    check_error("plans:\n  a:\n    overrides:\n      - { rate: 1/s }\n" LISTEN HOSTS,
                "t.yaml:4: plans.\"a\".overrides[0].path: is required");
    check_error("plans:\n  a:\n    overrides:\n      - { path: / }\n" LISTEN HOSTS,
                "t.yaml:4: plans.\"a\".overrides[0].rate: is required");
    check_error("plans:\n  a:\n    overrides:\n      - { path: /, rate: 1/s, quota: 1/day }\n" LISTEN HOSTS,
                "t.yaml:4: plans.\"a\".overrides[0].quota: unknown key");
    check_error(
        "plans:\n  a:\n    overrides:\n      - { path: /, rate: 1/s }\n      - path: /nope\n        rate: 1/s\n" LISTEN HOSTS,
        "t.yaml:5: plans.\"a\".overrides[1].path: no route has the path \"/nope\" (use a route's path exactly as written "
        "in hosts)");
    /* a route's path as written: "/api" is not "/api/" */
    check_error(LISTEN "hosts:\n  \"*\":\n    routes:\n      - { path: /api/, origin: { url: \"http://o\" } }\n"
                       "plans:\n  a:\n    overrides:\n      - { path: /api, rate: 1/s }\n",
                "t.yaml:10: plans.\"a\".overrides[0].path: no route has the path \"/api\" (use a route's path exactly as written "
                "in hosts)");
    check_error("plans:\n  a:\n    overrides:\n      - { path: /, rate: 1/s, methods: [FETCH] }\n" LISTEN HOSTS,
                "t.yaml:4: plans.\"a\".overrides[0].methods[0]: unknown method \"FETCH\" (use GET, HEAD, POST, PUT, PATCH, DELETE "
                "or OPTIONS)");
    check_error("plans:\n  a:\n    overrides:\n      - { path: /, rate: 1/s, burst: 0 }\n" LISTEN HOSTS,
                "t.yaml:4: plans.\"a\".overrides[0].burst: must be between 1 and 1000000000");
    check_error("plans:\n  a:\n    overrides:\n      - { path: /, rate: 1/s, methods: [GET] }\n"
                "      - { path: /, rate: 2/s, methods: [POST, HEAD] }\n" LISTEN HOSTS,
                "t.yaml:5: plans.\"a\".overrides[1]: overlaps overrides[0] (the same path and method)");
    check_error("plans:\n  a:\n    overrides:\n      - { path: /, rate: 1/s, methods: [POST] }\n"
                "      - { path: /, rate: 2/s }\n" LISTEN HOSTS,
                "t.yaml:5: plans.\"a\".overrides[1]: overlaps overrides[0] (the same path and method)");

    /* keys */
    check_error("keys: {}\n" LISTEN HOSTS, "t.yaml:1: keys: expected a sequence");
    check_error("keys:\n  - demo\n" LISTEN HOSTS, "t.yaml:2: keys[0]: expected a mapping");
    check_error("keys:\n  - { sha256: " SHA_A " }\n" LISTEN HOSTS, "t.yaml:2: keys[0].name: is required");
    check_error("keys:\n  - { name: a }\n" LISTEN HOSTS, "t.yaml:2: keys[0].sha256: is required");
    check_error("keys:\n  - { name: a, sha256: " SHA_A ", key: x }\n" LISTEN HOSTS, "t.yaml:2: keys[0].key: unknown key");
    check_error("keys:\n  - { name: \"a b\", sha256: " SHA_A " }\n" LISTEN HOSTS,
                "t.yaml:2: keys[0].name: bad key name (use 1 to 64 letters, digits, '.', '_' or '-')");
    check_error("keys:\n  - { name: \"\", sha256: " SHA_A " }\n" LISTEN HOSTS,
                "t.yaml:2: keys[0].name: bad key name (use 1 to 64 letters, digits, '.', '_' or '-')");
    check_error("keys:\n  - { name: 01234567890123456789012345678901234567890123456789012345678901234, sha256: " SHA_A
                " }\n" LISTEN HOSTS,
                "t.yaml:2: keys[0].name: bad key name (use 1 to 64 letters, digits, '.', '_' or '-')");
    check_error("keys:\n  - { name: [a], sha256: " SHA_A " }\n" LISTEN HOSTS, "t.yaml:2: keys[0].name: expected a string");
    check_error("keys:\n  - { name: a, sha256: " SHA_A " }\n  - { name: b, sha256: " SHA_B " }\n  - name: a\n    sha256: " SHA_B
                "\n" LISTEN HOSTS,
                "t.yaml:4: keys[2].name: duplicate name \"a\" (also keys[0])");
    check_error("keys:\n  - { name: a, sha256: " SHA_A " }\n  - { name: b, sha256: \"" SHA_A "\" }\n" LISTEN HOSTS,
                "t.yaml:3: keys[1].sha256: the same key as keys[0]");
    check_error("keys:\n  - { name: a, sha256: 0011 }\n" LISTEN HOSTS,
                "t.yaml:2: keys[0].sha256: expected 64 hex digits (the key's SHA-256: printf %s KEY | sha256sum)");
    check_error("keys:\n  - { name: a, sha256: " SHA_A "0 }\n" LISTEN HOSTS,
                "t.yaml:2: keys[0].sha256: expected 64 hex digits (the key's SHA-256: printf %s KEY | sha256sum)");
    check_error("keys:\n  - { name: a, sha256: 0g112233445566778899aabbccddeeff00112233445566778899aabbccddeeff }\n" LISTEN HOSTS,
                "t.yaml:2: keys[0].sha256: expected 64 hex digits (the key's SHA-256: printf %s KEY | sha256sum)");
    check_error("keys:\n  - { name: a, sha256: 00112233445566778899aabbccddeeff00112233445566778899aabbccddeef }\n" LISTEN HOSTS,
                "t.yaml:2: keys[0].sha256: expected 64 hex digits (the key's SHA-256: printf %s KEY | sha256sum)");
    check_error("keys:\n  - { name: a, sha256: [1] }\n" LISTEN HOSTS, "t.yaml:2: keys[0].sha256: expected a string");
    check_error("keys:\n  - name: a\n    sha256: " SHA_A "\n    plan: gold\n" LISTEN HOSTS,
                "t.yaml:4: keys[0].plan: no plan named \"gold\" in plans");
    check_error("plans: { Gold: {} }\nkeys:\n  - { name: a, sha256: " SHA_A ", plan: gold }\n" LISTEN HOSTS,
                "t.yaml:3: keys[0].plan: no plan named \"gold\" in plans");
    check_error("keys:\n  - { name: a, sha256: " SHA_A ", enabled: maybe }\n" LISTEN HOSTS,
                "t.yaml:2: keys[0].enabled: expected true or false");
    check_error(LISTEN HOSTS "Keys: []\n", "t.yaml:8: Keys: unknown key");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_size),
        cmocka_unit_test(test_method_bit),
        cmocka_unit_test(test_example_conf),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_top_level_values),
        cmocka_unit_test(test_tls_forms),
        cmocka_unit_test(test_origins),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_hosts),
        cmocka_unit_test(test_basedir),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_err_yaml),
        cmocka_unit_test(test_err_top),
        cmocka_unit_test(test_err_limits),
        cmocka_unit_test(test_err_listen),
        cmocka_unit_test(test_err_hosts),
        cmocka_unit_test(test_err_route),
        cmocka_unit_test(test_err_origin),
        cmocka_unit_test(test_lua),
        cmocka_unit_test(test_err_url),
        cmocka_unit_test(test_err_headers),
        cmocka_unit_test(test_err_patterns),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_err_cache),
        cmocka_unit_test(test_rate),
        cmocka_unit_test(test_quota),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_err_auth),
        cmocka_unit_test(test_throttle),
        cmocka_unit_test(test_err_throttle),
        cmocka_unit_test(test_cors),
        cmocka_unit_test(test_err_cors),
        cmocka_unit_test(test_plans_keys),
        cmocka_unit_test(test_err_plans_keys),
        cmocka_unit_test(test_hooks),
        cmocka_unit_test(test_store),
        cmocka_unit_test(test_store_rest),
        cmocka_unit_test(test_store_rules_and_keys),
        cmocka_unit_test(test_err_hooks),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
