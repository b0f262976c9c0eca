/*
 * Unit tests of cache/policy.c, cache/policy_http.c and cache/key.c: HTTP dates, Cache-Control and the targeted fields,
 * storability, freshness and age, reuse, conditionals, Vary, keys and ids, Cache-Status.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "cache/cache.h"

#define HDR(n, v)                                                                                                                  \
    {                                                                                                                              \
        n, sizeof(n) - 1, v, sizeof(v) - 1                                                                                         \
    }
#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Tue, 14 Nov 2023 22:13:20 GMT and friends */
#define T0 1700000000
#define T0_DATE "Tue, 14 Nov 2023 22:13:20 GMT"
#define T0_MINUS_1000 "Tue, 14 Nov 2023 21:56:40 GMT"
#define T0_PLUS_100 "Tue, 14 Nov 2023 22:15:00 GMT"
#define T0_MINUS_1M "Fri, 03 Nov 2023 08:26:40 GMT"

static int64_t date_of(const char *s)
{
    return cache_date_parse(s, strlen(s));
}

static cache_cc_t cc_of(const char *s)
{
    cache_cc_t cc;
    cache_cc_init(&cc);
    cache_cc_parse(&cc, CACHE_CC_SYNTAX_CACHE_CONTROL, s, strlen(s));
    return cc;
}

static const cache_route_policy_t no_route = {.default_ttl = -1, .default_swr = -1, .default_sie = -1};

/* A GET exchange at T0 (request sent and answered at T0) with the given request and response headers. */
static int judge(const cache_hdr_t *req, size_t nreq, int status, const cache_hdr_t *resp, size_t nresp,
                 const cache_route_policy_t *route, cache_store_plan_t *plan)
{
    cache_exchange_t x = {"GET", 3, req, nreq, status, resp, nresp, T0, T0};
    return cache_storable(&x, route != NULL ? route : &no_route, plan);
}

/* The reason a 200 with these response headers is refused, or "" when stored. */
static const char *reason_of(const cache_hdr_t *resp, size_t nresp)
{
    cache_store_plan_t plan;
    return judge(NULL, 0, 200, resp, nresp, NULL, &plan) ? "" : plan.reason;
}

/* The metadata of a stored 200; fails the test when not storable. */
static cache_meta_t meta_of(const cache_hdr_t *resp, size_t nresp, const cache_route_policy_t *route)
{
    cache_store_plan_t plan;
    int ok = judge(NULL, 0, 200, resp, nresp, route, &plan);
    if (!ok)
        fprintf(stderr, "refused: %s\n", plan.reason);
    assert_int_equal(ok, 1);
    return plan.meta;
}

/* A stored response's metadata built by hand: lifetime, stored at T0 with age 0. */
static cache_meta_t meta_fixed(int64_t lifetime, uint32_t flags, int64_t swr, int64_t sie)
{
    cache_meta_t m = {CACHE_META_VERSION, 0, 200, flags, T0, 0, lifetime, swr, sie, T0, -1};
    return m;
}

/* ==== dates ==== */

static void test_date_three_formats(void **state)
{
    (void)state;
    assert_int_equal(date_of("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
    assert_int_equal(date_of("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777);
    assert_int_equal(date_of("Sun Nov  6 08:49:37 1994"), 784111777);
    assert_int_equal(date_of(T0_DATE), T0);
}

static void test_date_lenient(void **state)
{
    (void)state;
    assert_int_equal(date_of("  Sun, 06 Nov 1994 08:49:37 GMT \t"), 784111777);
    assert_int_equal(date_of("sun, 06 nov 1994 08:49:37 gmt"), 784111777);
    assert_int_equal(date_of("Sun, 6 Nov 1994 08:49:37 GMT"), 784111777);
    assert_int_equal(date_of("Sunday, 06-Nov-1994 08:49:37 GMT"), 784111777);
    assert_int_equal(date_of("Sun Nov 06 08:49:37 1994"), 784111777);
    assert_int_equal(date_of("Mon, 06 Nov 1994 08:49:37 GMT"), 784111777); /* the weekday is not checked */
    assert_int_equal(date_of("Thursday, 01-Jan-70 00:00:00 GMT"), 0);
    assert_int_equal(date_of("Saturday, 01-Jan-69 00:00:00 GMT"), date_of("Tue, 01 Jan 2069 00:00:00 GMT"));
    assert_int_equal(date_of("Wed, 31 Dec 1969 23:59:59 GMT"), 0); /* before the epoch: 0 */
}

static void test_date_invalid(void **state)
{
    static const char *bad[] = {
        "",
        "0",
        "-1",
        "Sun, 06 Nov 1994 08:49:37",
        "Sun, 06 Nov 1994 08:49:37 GMT+1",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 06 Nov 19940 08:49:37 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 31 Nov 1994 08:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 06 November 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT",
        "Xyz, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-994 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994 GMT",
        "Sun Nov  6 08:49:37",
        "Sun,06 Nov 1994 08:49:37 GMT",
        "Tue, 29 Feb 2023 00:00:00 GMT",
        "Thu, 29 Feb 1900 00:00:00 GMT",
        "garbage",
    };
    (void)state;
    for (size_t i = 0; i != N(bad); ++i) {
        if (date_of(bad[i]) != -1)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    assert_int_equal(date_of("Thu, 29 Feb 2024 00:00:00 GMT"), 1709164800);
    assert_int_equal(date_of("Tue, 29 Feb 2000 00:00:00 GMT"), 951782400);
}

static void test_date_length_bounded(void **state)
{
    const char *s = "Sun, 06 Nov 1994 08:49:37 GMTXXXX";
    (void)state;
    assert_int_equal(cache_date_parse(s, 29), 784111777);
    assert_int_equal(cache_date_parse(s, 28), -1); /* "GM": must not look past len */
    assert_int_equal(cache_date_parse(s, 0), -1);
    assert_int_equal(cache_date_parse("Sun Nov  6 08:49:37 19945", 24), 784111777);
}

static void test_date_format(void **state)
{
    char buf[CACHE_DATE_SIZE];
    (void)state;
    cache_date_format(784111777, buf);
    assert_string_equal(buf, "Sun, 06 Nov 1994 08:49:37 GMT");
    cache_date_format(0, buf);
    assert_string_equal(buf, "Thu, 01 Jan 1970 00:00:00 GMT");
    cache_date_format(-5, buf);
    assert_string_equal(buf, "Thu, 01 Jan 1970 00:00:00 GMT");
    cache_date_format(INT64_MAX, buf);
    assert_string_equal(buf, "Fri, 31 Dec 9999 23:59:59 GMT");
    cache_date_format(1709164800, buf);
    assert_string_equal(buf, "Thu, 29 Feb 2024 00:00:00 GMT");
    for (int64_t t = 0; t < 253402300799LL; t += 86400LL * 97 + 3607) { /* round trip over the whole range */
        cache_date_format(t, buf);
        assert_int_equal(strlen(buf), CACHE_DATE_SIZE - 1);
        assert_int_equal(date_of(buf), t);
    }
}

/* ==== Cache-Control ==== */

static void test_cc_every_directive(void **state)
{
    cache_cc_t cc = cc_of("max-age=60, s-maxage=120, no-store, no-cache, private, public, must-revalidate, "
                          "proxy-revalidate, must-understand, no-transform, immutable, stale-while-revalidate=30, "
                          "stale-if-error=40, max-stale=50, min-fresh=5, only-if-cached");
    (void)state;
    assert_int_equal(cc.flags, CACHE_CC_MAX_AGE | CACHE_CC_S_MAXAGE | CACHE_CC_NO_STORE | CACHE_CC_NO_CACHE | CACHE_CC_PRIVATE |
                                   CACHE_CC_PUBLIC | CACHE_CC_MUST_REVALIDATE | CACHE_CC_PROXY_REVALIDATE |
                                   CACHE_CC_MUST_UNDERSTAND | CACHE_CC_NO_TRANSFORM | CACHE_CC_IMMUTABLE | CACHE_CC_SWR |
                                   CACHE_CC_SIE | CACHE_CC_MAX_STALE | CACHE_CC_MIN_FRESH | CACHE_CC_ONLY_IF_CACHED);
    assert_int_equal(cc.invalid, 0);
    assert_int_equal(cc.max_age, 60);
    assert_int_equal(cc.s_maxage, 120);
    assert_int_equal(cc.stale_while_revalidate, 30);
    assert_int_equal(cc.stale_if_error, 40);
    assert_int_equal(cc.max_stale, 50);
    assert_int_equal(cc.min_fresh, 5);
    assert_int_equal(cc.ndirectives, 16);
    assert_int_equal(cc.nknown, 16);
}

static void test_cc_case_and_whitespace(void **state)
{
    cache_cc_t cc = cc_of(" ,, MAX-AGE=5 ,,\tNo-Store,, Public ,");
    (void)state;
    assert_int_equal(cc.flags, CACHE_CC_MAX_AGE | CACHE_CC_NO_STORE | CACHE_CC_PUBLIC);
    assert_int_equal(cc.max_age, 5);
    cc = cc_of("max-age = 7");
    assert_int_equal(cc.max_age, 7);
    cc = cc_of("");
    assert_int_equal(cc.flags, 0);
    assert_int_equal(cc.ndirectives, 0);
    cc = cc_of(" , ,, ");
    assert_int_equal(cc.ndirectives, 0);
}

static void test_cc_quoted_values(void **state)
{
    cache_cc_t cc = cc_of("max-age=\"60\", s-maxage=\"10\"");
    (void)state;
    assert_int_equal(cc.max_age, 60);
    assert_int_equal(cc.s_maxage, 10);
    assert_int_equal(cc.invalid, 0);
    /* a comma inside an unknown directive's quoted value is not a separator */
    cc = cc_of("ext=\"a, max-age=1\", max-age=5");
    assert_int_equal(cc.max_age, 5);
    assert_int_equal(cc.invalid, 0);
    cc = cc_of("max-age=\"6\\0\""); /* an escape makes it not a number */
    assert_int_equal(cc.max_age, 0);
    assert_true(cc.invalid & CACHE_CC_MAX_AGE);
}

static void test_cc_invalid_max_age_is_stale(void **state)
{
    static const char *bad[] = {"max-age=-1", "max-age=abc",  "max-age=",    "max-age",     "max-age=1.5", "max-age=60 foo",
                                "max-age=+5", "max-age=\"\"", "max-age=\"5", "max-age=5;x", "max-age=0x10"};
    (void)state;
    for (size_t i = 0; i != N(bad); ++i) {
        cache_cc_t cc = cc_of(bad[i]);
        if (!(cc.flags & CACHE_CC_MAX_AGE) || cc.max_age != 0 || !(cc.invalid & CACHE_CC_MAX_AGE))
            fail_msg("\"%s\" not read as an invalid max-age", bad[i]);
    }
    cache_cc_t cc = cc_of("s-maxage=-3");
    assert_true(cc.flags & CACHE_CC_S_MAXAGE);
    assert_int_equal(cc.s_maxage, 0);
}

static void test_cc_duplicates(void **state)
{
    cache_cc_t cc = cc_of("max-age=60, max-age=60");
    (void)state;
    assert_int_equal(cc.max_age, 60);
    assert_int_equal(cc.invalid, 0);
    cc = cc_of("max-age=60, max-age=30");
    assert_int_equal(cc.max_age, 0);
    assert_true(cc.invalid & CACHE_CC_MAX_AGE);
    cc = cc_of("max-age=abc, max-age=60"); /* invalid stays invalid */
    assert_int_equal(cc.max_age, 0);
    cc = cc_of("max-age=60, max-age=abc, max-age=60");
    assert_int_equal(cc.max_age, 0);
    /* across field lines */
    cache_cc_init(&cc);
    cache_cc_parse(&cc, CACHE_CC_SYNTAX_CACHE_CONTROL, "max-age=60", 10);
    cache_cc_parse(&cc, CACHE_CC_SYNTAX_CACHE_CONTROL, "max-age=61", 10);
    assert_int_equal(cc.max_age, 0);
    /* the other delta directives disappear */
    cc = cc_of("stale-while-revalidate=10, stale-while-revalidate=20, stale-if-error=5, stale-if-error=x");
    assert_false(cc.flags & (CACHE_CC_SWR | CACHE_CC_SIE));
    assert_true(cc.invalid & CACHE_CC_SWR);
    cc = cc_of("min-fresh=-1, max-stale=x");
    assert_false(cc.flags & (CACHE_CC_MIN_FRESH | CACHE_CC_MAX_STALE));
}

static void test_cc_huge_values(void **state)
{
    cache_cc_t cc = cc_of("max-age=99999999999999999999999999999999, s-maxage=2147483648, stale-if-error=2147483647");
    (void)state;
    assert_int_equal(cc.max_age, CACHE_DELTA_MAX);
    assert_int_equal(cc.s_maxage, CACHE_DELTA_MAX);
    assert_int_equal(cc.stale_if_error, 2147483647);
    assert_int_equal(cc.invalid, 0);
    cc = cc_of("max-age=000000000000000000000000000000000000007");
    assert_int_equal(cc.max_age, 7);
}

static void test_cc_field_lists(void **state)
{
    cache_cc_t cc = cc_of("no-cache=\"set-cookie, x-foo\", private=\" x-user ,,\"");
    (void)state;
    assert_int_equal(cc.flags, CACHE_CC_NO_CACHE_FIELDS | CACHE_CC_PRIVATE_FIELDS);
    assert_int_equal(cc.nno_cache, 2);
    assert_memory_equal(cc.no_cache[0].base, "set-cookie", cc.no_cache[0].len);
    assert_int_equal(cc.no_cache[1].len, 5);
    assert_memory_equal(cc.no_cache[1].base, "x-foo", 5);
    assert_int_equal(cc.nprivate, 1);
    assert_int_equal(cc.private_[0].len, 6);
    assert_memory_equal(cc.private_[0].base, "x-user", 6);
    /* token form, and lists merged across directives */
    cc = cc_of("private=set-cookie, private=\"x-a\"");
    assert_int_equal(cc.flags, CACHE_CC_PRIVATE_FIELDS);
    assert_int_equal(cc.nprivate, 2);
    assert_memory_equal(cc.private_[1].base, "x-a", 3);
}

static void test_cc_field_lists_read_strictly(void **state)
{
    static const char *bare[] = {
        "private=\"\"",           "private=\" , \"",       "private=\"a b\"",
        "private=\"unterminated", "private=\"x\" garbage", "private=\"a\\\"b\"",
    };
    char many[400] = "private=\"";
    (void)state;
    for (size_t i = 0; i != N(bare); ++i) {
        cache_cc_t cc = cc_of(bare[i]);
        if (cc.flags != CACHE_CC_PRIVATE || cc.nprivate != 0)
            fail_msg("\"%s\" not read as bare private", bare[i]);
    }
    for (int i = 0; i != CACHE_CC_MAX_FIELDS + 1; ++i)
        sprintf(many + strlen(many), "x-h%d,", i);
    strcat(many, "\"");
    cache_cc_t cc = cc_of(many);
    assert_int_equal(cc.flags, CACHE_CC_PRIVATE);
    /* bare wins over a list, in either order */
    cc = cc_of("no-cache, no-cache=\"a\"");
    assert_int_equal(cc.flags, CACHE_CC_NO_CACHE);
    cc = cc_of("no-cache=\"a\", no-cache");
    assert_int_equal(cc.flags, CACHE_CC_NO_CACHE);
    assert_int_equal(cc.nno_cache, 0);
}

static void test_cc_restrictive_honoured_when_malformed(void **state)
{
    cache_cc_t cc = cc_of("no-store=1, must-revalidate garbage, proxy-revalidate=\"x\"");
    (void)state;
    assert_int_equal(cc.flags, CACHE_CC_NO_STORE | CACHE_CC_MUST_REVALIDATE | CACHE_CC_PROXY_REVALIDATE);
    cc = cc_of("public=1, immutable x, must-understand=yes");
    assert_int_equal(cc.flags, 0);
    assert_int_equal(cc.ndirectives, 3);
}

static void test_cc_request_side(void **state)
{
    cache_cc_t cc = cc_of("max-stale");
    (void)state;
    assert_true(cc.flags & CACHE_CC_MAX_STALE);
    assert_int_equal(cc.max_stale, CACHE_DELTA_MAX);
    cc = cc_of("max-stale=10, min-fresh=3, only-if-cached");
    assert_int_equal(cc.max_stale, 10);
    assert_int_equal(cc.min_fresh, 3);
    assert_true(cc.flags & CACHE_CC_ONLY_IF_CACHED);
}

static void test_cc_unknown_ignored(void **state)
{
    cache_cc_t cc = cc_of("foo=bar, baz, community=\"UCI\", max-age=3");
    (void)state;
    assert_int_equal(cc.flags, CACHE_CC_MAX_AGE);
    assert_int_equal(cc.ndirectives, 4);
    assert_int_equal(cc.nknown, 1);
    cc = cc_of("=5, \"x\", max-age=4"); /* members without a name are skipped */
    assert_int_equal(cc.max_age, 4);
    assert_int_equal(cc.ndirectives, 1);
}

static void test_cc_length_bounded(void **state)
{
    const char *s = "max-age=600";
    cache_cc_t cc;
    (void)state;
    cache_cc_init(&cc);
    cache_cc_parse(&cc, CACHE_CC_SYNTAX_CACHE_CONTROL, s, 9);
    assert_int_equal(cc.max_age, 6);
    cache_cc_init(&cc);
    cache_cc_parse(&cc, CACHE_CC_SYNTAX_CACHE_CONTROL, "private=\"abc\"", 11); /* the closing quote is past len */
    assert_int_equal(cc.flags, CACHE_CC_PRIVATE);
}

static void test_request_cc_pragma(void **state)
{
    cache_hdr_t only_pragma[] = {HDR("pragma", "no-cache")};
    cache_hdr_t both[] = {HDR("pragma", "no-cache"), HDR("cache-control", "max-age=5")};
    cache_hdr_t lines[] = {HDR("cache-control", "max-age=5"), HDR("x", "y"), HDR("cache-control", "min-fresh=2")};
    cache_hdr_t other_pragma[] = {HDR("pragma", "foo")};
    cache_cc_t cc;
    (void)state;
    cache_request_cc(&cc, only_pragma, N(only_pragma));
    assert_int_equal(cc.flags, CACHE_CC_NO_CACHE);
    cache_request_cc(&cc, both, N(both));
    assert_int_equal(cc.flags, CACHE_CC_MAX_AGE);
    cache_request_cc(&cc, lines, N(lines));
    assert_int_equal(cc.flags, CACHE_CC_MAX_AGE | CACHE_CC_MIN_FRESH);
    cache_request_cc(&cc, other_pragma, N(other_pragma));
    assert_int_equal(cc.flags, 0);
    cache_request_cc(&cc, NULL, 0);
    assert_int_equal(cc.flags, 0);
}

/* ==== targeted fields ==== */

static void test_targeted_precedence(void **state)
{
    cache_hdr_t all[] = {HDR("cache-control", "max-age=10"), HDR("cdn-cache-control", "max-age=20"),
                         HDR("surrogate-control", "max-age=30")};
    cache_hdr_t cdn[] = {HDR("cache-control", "max-age=10"), HDR("cdn-cache-control", "max-age=20")};
    cache_hdr_t cc_only[] = {HDR("cache-control", "max-age=10")};
    cache_cc_t cc;
    (void)state;
    assert_int_equal(cache_response_cc(&cc, all, N(all)), CACHE_CC_SRC_SURROGATE);
    assert_int_equal(cc.max_age, 30);
    assert_int_equal(cache_response_cc(&cc, cdn, N(cdn)), CACHE_CC_SRC_CDN);
    assert_int_equal(cc.max_age, 20);
    assert_int_equal(cache_response_cc(&cc, cc_only, N(cc_only)), CACHE_CC_SRC_CACHE_CONTROL);
    assert_int_equal(cc.max_age, 10);
    assert_int_equal(cache_response_cc(&cc, NULL, 0), CACHE_CC_SRC_NONE);
}

static void test_surrogate_targets(void **state)
{
    cache_hdr_t ours[] = {HDR("surrogate-control", "max-age=60;edgeproxy, no-store;other, max-age=5;other"),
                          HDR("cache-control", "no-store")};
    cache_hdr_t others[] = {HDR("surrogate-control", "max-age=60;other"), HDR("cdn-cache-control", "max-age=20")};
    cache_hdr_t esi_only[] = {HDR("surrogate-control", "content=\"ESI/1.0\""), HDR("cache-control", "max-age=9")};
    cache_hdr_t untargeted[] = {HDR("surrogate-control", "max-age=70, no-store;other")};
    cache_cc_t cc;
    (void)state;
    assert_int_equal(cache_response_cc(&cc, ours, N(ours)), CACHE_CC_SRC_SURROGATE);
    assert_int_equal(cc.flags, CACHE_CC_MAX_AGE);
    assert_int_equal(cc.max_age, 60);
    assert_int_equal(cache_response_cc(&cc, others, N(others)), CACHE_CC_SRC_CDN);
    assert_int_equal(cc.max_age, 20);
    assert_int_equal(cache_response_cc(&cc, esi_only, N(esi_only)), CACHE_CC_SRC_CACHE_CONTROL);
    assert_int_equal(cc.max_age, 9);
    assert_int_equal(cache_response_cc(&cc, untargeted, N(untargeted)), CACHE_CC_SRC_SURROGATE);
    assert_int_equal(cc.flags, CACHE_CC_MAX_AGE);
    assert_int_equal(cc.max_age, 70);
}

static void test_cdn_cache_control_params(void **state)
{
    cache_hdr_t h[] = {HDR("cdn-cache-control", "max-age=60;foo=\"x,y\";bar, public")};
    cache_cc_t cc;
    (void)state;
    assert_int_equal(cache_response_cc(&cc, h, N(h)), CACHE_CC_SRC_CDN);
    assert_int_equal(cc.flags, CACHE_CC_MAX_AGE | CACHE_CC_PUBLIC);
    assert_int_equal(cc.max_age, 60);
    assert_int_equal(cc.invalid, 0);
}

static void test_targeted_fields_replace_cache_control(void **state)
{
    cache_hdr_t private_cc[] = {HDR("cache-control", "private, no-store"), HDR("cdn-cache-control", "max-age=60")};
    cache_hdr_t cdn_no_store[] = {HDR("cache-control", "max-age=60"), HDR("cdn-cache-control", "no-store")};
    /* a targeted field without freshness: Expires no longer counts (RFC 9213), and a 302 is not heuristic */
    cache_hdr_t no_expires[] = {HDR("date", T0_DATE), HDR("expires", T0_PLUS_100), HDR("cdn-cache-control", "must-revalidate")};
    cache_store_plan_t plan;
    (void)state;
    assert_int_equal(judge(NULL, 0, 200, private_cc, N(private_cc), NULL, &plan), 1);
    assert_int_equal(plan.cc_source, CACHE_CC_SRC_CDN);
    assert_int_equal(plan.meta.freshness_lifetime, 60);
    assert_string_equal(reason_of(cdn_no_store, N(cdn_no_store)), "no-store");
    assert_int_equal(judge(NULL, 0, 302, no_expires, N(no_expires), NULL, &plan), 0);
    assert_string_equal(plan.reason, "no-freshness");
}

static void test_hdr_is_targeted(void **state)
{
    (void)state;
    assert_true(cache_hdr_is_targeted("cdn-cache-control", 17));
    assert_true(cache_hdr_is_targeted("surrogate-control", 17));
    assert_false(cache_hdr_is_targeted("cache-control", 13));
    assert_false(cache_hdr_is_targeted("surrogate-key", 13));
    assert_false(cache_hdr_is_targeted("cdn-cache-control", 16));
}

/* ==== storability ==== */

static void test_store_method_and_status(void **state)
{
    cache_hdr_t resp[] = {HDR("cache-control", "max-age=60")};
    cache_exchange_t x = {"HEAD", 4, NULL, 0, 200, resp, 1, T0, T0};
    cache_store_plan_t plan;
    static const int bad_status[] = {100, 101, 199, 206, 304, 600, 0, -1};
    (void)state;
    assert_int_equal(cache_storable(&x, &no_route, &plan), 0);
    assert_string_equal(plan.reason, "method");
    x.method = "POST";
    assert_int_equal(cache_storable(&x, &no_route, &plan), 0);
    x.method = "get";
    x.method_len = 3;
    assert_int_equal(cache_storable(&x, NULL, &plan), 0); /* methods are case-sensitive */
    x.method = "GET";
    assert_int_equal(cache_storable(&x, NULL, &plan), 1);
    assert_null(plan.reason);
    for (size_t i = 0; i != N(bad_status); ++i) {
        x.status = bad_status[i];
        assert_int_equal(cache_storable(&x, &no_route, &plan), 0);
        assert_string_equal(plan.reason, "status");
    }
    x.status = 500; /* any final status with explicit freshness */
    assert_int_equal(cache_storable(&x, &no_route, &plan), 1);
    assert_int_equal(plan.meta.status, 500);
}

static void test_store_no_store(void **state)
{
    cache_hdr_t resp[] = {HDR("cache-control", "max-age=60, no-store")};
    cache_hdr_t ok[] = {HDR("cache-control", "max-age=60")};
    cache_hdr_t req[] = {HDR("cache-control", "no-store")};
    cache_store_plan_t plan;
    (void)state;
    assert_string_equal(reason_of(resp, N(resp)), "no-store");
    assert_int_equal(judge(req, N(req), 200, ok, N(ok), NULL, &plan), 0);
    assert_string_equal(plan.reason, "req-no-store");
}

static void test_store_must_understand(void **state)
{
    cache_hdr_t resp[] = {HDR("cache-control", "max-age=60, no-store, must-understand")};
    cache_store_plan_t plan;
    (void)state;
    assert_int_equal(judge(NULL, 0, 200, resp, N(resp), NULL, &plan), 1); /* known status: no-store lifted */
    assert_int_equal(judge(NULL, 0, 299, resp, N(resp), NULL, &plan), 0);
    assert_string_equal(plan.reason, "must-understand");
}

static void test_store_private(void **state)
{
    cache_hdr_t bare[] = {HDR("cache-control", "private, max-age=60")};
    cache_hdr_t fields[] = {HDR("cache-control", "private=\"x-user, x-session\", max-age=60"), HDR("x-user", "bob")};
    cache_store_plan_t plan;
    (void)state;
    assert_string_equal(reason_of(bare, N(bare)), "private");
    assert_int_equal(judge(NULL, 0, 200, fields, N(fields), NULL, &plan), 1);
    assert_int_equal(plan.nstrip, 2);
    assert_int_equal(plan.strip[0].len, 6);
    assert_memory_equal(plan.strip[0].base, "x-user", 6);
    assert_memory_equal(plan.strip[1].base, "x-session", 9);
}

static void test_store_authorization(void **state)
{
    cache_hdr_t req[] = {HDR("authorization", "Bearer x")};
    cache_hdr_t plain[] = {HDR("cache-control", "max-age=60")};
    cache_hdr_t pub[] = {HDR("cache-control", "max-age=60, public")};
    cache_hdr_t smax[] = {HDR("cache-control", "s-maxage=60")};
    cache_hdr_t mr[] = {HDR("cache-control", "max-age=60, must-revalidate")};
    cache_store_plan_t plan;
    (void)state;
    assert_int_equal(judge(req, N(req), 200, plain, N(plain), NULL, &plan), 0);
    assert_string_equal(plan.reason, "authorization");
    assert_int_equal(judge(req, N(req), 200, pub, N(pub), NULL, &plan), 1);
    assert_int_equal(judge(req, N(req), 200, smax, N(smax), NULL, &plan), 1);
    assert_int_equal(judge(req, N(req), 200, mr, N(mr), NULL, &plan), 1);
    assert_int_equal(judge(NULL, 0, 200, plain, N(plain), NULL, &plan), 1);
}

static void test_store_vary(void **state)
{
    cache_hdr_t star[] = {HDR("cache-control", "max-age=60"), HDR("vary", "accept, *")};
    cache_hdr_t star2[] = {HDR("cache-control", "max-age=60"), HDR("vary", "accept"), HDR("vary", " * ")};
    cache_hdr_t fine[] = {HDR("cache-control", "max-age=60"), HDR("vary", "accept-encoding, x-*")};
    cache_hdr_t longv[] = {HDR("cache-control", "max-age=60"),
                           HDR("vary", "a1,a2,a3,a4,a5,a6,a7,a8,a9,a10,a11,a12,a13,a14,a15,a16,a17,a18,a19,a20,a21,"
                                       "a22,a23,a24,a25,a26,a27,a28,a29,a30,a31,a32,a33")};
    (void)state;
    assert_string_equal(reason_of(star, N(star)), "vary-star");
    assert_string_equal(reason_of(star2, N(star2)), "vary-star");
    assert_string_equal(reason_of(fine, N(fine)), "");
    assert_string_equal(reason_of(longv, N(longv)), "vary-too-long");
}

static void test_store_set_cookie(void **state)
{
    cache_hdr_t resp[] = {HDR("cache-control", "max-age=60"), HDR("set-cookie", "a=1")};
    cache_route_policy_t over = {.default_ttl = 300, .override = 1};
    cache_store_plan_t plan;
    (void)state;
    assert_string_equal(reason_of(resp, N(resp)), "set-cookie");
    assert_int_equal(judge(NULL, 0, 200, resp, N(resp), &over, &plan), 1);
    assert_int_equal(plan.nstrip, 1);
    assert_int_equal(plan.strip[0].len, 10);
    assert_memory_equal(plan.strip[0].base, "set-cookie", 10);
}

static void test_store_needs_freshness(void **state)
{
    cache_hdr_t nothing[] = {HDR("content-type", "text/plain")};
    cache_hdr_t lm[] = {HDR("date", T0_DATE), HDR("last-modified", T0_MINUS_1000)};
    cache_hdr_t pub[] = {HDR("cache-control", "public")};
    cache_hdr_t bad_lm[] = {HDR("last-modified", "yesterday")};
    cache_route_policy_t ttl = {.default_ttl = 120, .default_swr = -1, .default_sie = -1};
    static const int heuristic[] = {200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501};
    static const int not_heuristic[] = {201, 302, 303, 307, 400, 403, 500, 502, 503};
    cache_store_plan_t plan;
    (void)state;
    assert_string_equal(reason_of(nothing, N(nothing)), "no-freshness");
    assert_string_equal(reason_of(bad_lm, N(bad_lm)), "no-freshness");
    for (size_t i = 0; i != N(heuristic); ++i) {
        assert_int_equal(judge(NULL, 0, heuristic[i], lm, N(lm), NULL, &plan), 1);
        assert_true(plan.meta.flags & CACHE_META_HEURISTIC);
        assert_int_equal(judge(NULL, 0, heuristic[i], nothing, N(nothing), &ttl, &plan), 1);
        assert_int_equal(plan.meta.freshness_lifetime, 120);
    }
    for (size_t i = 0; i != N(not_heuristic); ++i) {
        assert_int_equal(judge(NULL, 0, not_heuristic[i], lm, N(lm), NULL, &plan), 0);
        assert_string_equal(plan.reason, "no-freshness");
        assert_int_equal(judge(NULL, 0, not_heuristic[i], nothing, N(nothing), &ttl, &plan), 0);
        assert_int_equal(judge(NULL, 0, not_heuristic[i], pub, N(pub), NULL, &plan), 1); /* public: any status */
        assert_int_equal(plan.meta.freshness_lifetime, 0);
    }
}

static void test_store_override(void **state)
{
    cache_hdr_t resp[] = {HDR("cache-control", "max-age=10, private, no-cache, must-revalidate, proxy-revalidate"),
                          HDR("expires", "0")};
    cache_hdr_t no_store[] = {HDR("cache-control", "no-store")};
    cache_hdr_t plain[] = {HDR("cache-control", "max-age=10")};
    cache_route_policy_t over = {.default_ttl = 300, .override = 1};
    cache_route_policy_t over_no_ttl = {.default_ttl = -1, .override = 1};
    cache_store_plan_t plan;
    (void)state;
    assert_int_equal(judge(NULL, 0, 200, resp, N(resp), &over, &plan), 1);
    assert_int_equal(plan.meta.freshness_lifetime, 300);
    assert_int_equal(plan.meta.flags & (CACHE_META_MUST_REVALIDATE | CACHE_META_PROXY_REVALIDATE | CACHE_META_NO_CACHE), 0);
    assert_true(plan.meta.flags & CACHE_META_DEFAULT_TTL);
    assert_int_equal(judge(NULL, 0, 200, no_store, N(no_store), &over, &plan), 0);
    assert_string_equal(plan.reason, "no-store");
    /* without default_ttl, override falls to the heuristic: nothing here */
    assert_int_equal(judge(NULL, 0, 200, plain, N(plain), &over_no_ttl, &plan), 0);
    assert_string_equal(plan.reason, "no-freshness");
    /* override never applies default_ttl to a status outside the heuristic list */
    assert_int_equal(judge(NULL, 0, 500, plain, N(plain), &over, &plan), 0);
}

static void test_store_meta_layout(void **state)
{
    cache_hdr_t resp[] = {HDR("cache-control", "max-age=60"), HDR("etag", "\"x\""), HDR("last-modified", T0_MINUS_1000)};
    cache_meta_t m = meta_of(resp, N(resp), NULL);
    (void)state;
    assert_int_equal(sizeof(cache_meta_t), 64);
    assert_int_equal(m.version, CACHE_META_VERSION);
    assert_int_equal(m.status, 200);
    assert_int_equal(m.flags, CACHE_META_HAS_ETAG | CACHE_META_HAS_LAST_MODIFIED);
    assert_int_equal(m.last_modified, T0 - 1000);
    assert_int_equal(m.date, T0);
    assert_int_equal(m.response_time, T0);
}

/* ==== freshness ==== */

static void test_freshness_sources(void **state)
{
    cache_hdr_t smax[] = {HDR("cache-control", "max-age=10, s-maxage=20"), HDR("expires", T0_PLUS_100)};
    cache_hdr_t maxage[] = {HDR("cache-control", "max-age=10"), HDR("date", T0_DATE), HDR("expires", T0_PLUS_100)};
    cache_hdr_t expires[] = {HDR("date", T0_DATE), HDR("expires", T0_PLUS_100)};
    cache_hdr_t expires_no_date[] = {HDR("expires", T0_PLUS_100)};
    cache_hdr_t expires_bad[] = {HDR("expires", "0"), HDR("last-modified", T0_MINUS_1000)};
    cache_hdr_t expires_past[] = {HDR("date", T0_PLUS_100), HDR("expires", T0_DATE)};
    cache_hdr_t expires_old_date[] = {HDR("date", T0_MINUS_1000), HDR("expires", T0_PLUS_100)};
    cache_hdr_t bad_maxage[] = {HDR("cache-control", "max-age=ten"), HDR("expires", T0_PLUS_100)};
    (void)state;
    assert_int_equal(meta_of(smax, N(smax), NULL).freshness_lifetime, 20);
    assert_true(meta_of(smax, N(smax), NULL).flags & CACHE_META_HAS_S_MAXAGE);
    assert_int_equal(meta_of(maxage, N(maxage), NULL).freshness_lifetime, 10);
    assert_int_equal(meta_of(expires, N(expires), NULL).freshness_lifetime, 100);
    assert_int_equal(meta_of(expires_no_date, N(expires_no_date), NULL).freshness_lifetime, 100);
    assert_int_equal(meta_of(expires_bad, N(expires_bad), NULL).freshness_lifetime, 0); /* no heuristic */
    assert_int_equal(meta_of(expires_past, N(expires_past), NULL).freshness_lifetime, 0);
    /* Expires counts from Date, not from when we received it; the apparent age takes the difference back */
    cache_meta_t m = meta_of(expires_old_date, N(expires_old_date), NULL);
    assert_int_equal(m.freshness_lifetime, 1100);
    assert_int_equal(cache_meta_ttl(&m, T0), 100);
    assert_int_equal(meta_of(bad_maxage, N(bad_maxage), NULL).freshness_lifetime, 0);
}

static void test_freshness_default_and_heuristic(void **state)
{
    cache_hdr_t lm[] = {HDR("date", T0_DATE), HDR("last-modified", T0_MINUS_1000)};
    cache_hdr_t old_lm[] = {HDR("date", T0_DATE), HDR("last-modified", T0_MINUS_1M)};
    cache_hdr_t future_lm[] = {HDR("date", T0_MINUS_1000), HDR("last-modified", T0_DATE)};
    cache_hdr_t explicit_[] = {HDR("cache-control", "max-age=5")};
    cache_route_policy_t ttl = {.default_ttl = 77};
    cache_meta_t m;
    (void)state;
    m = meta_of(lm, N(lm), NULL);
    assert_int_equal(m.freshness_lifetime, 100); /* 10% of 1000 s */
    assert_int_equal(m.flags & CACHE_META_HEURISTIC, CACHE_META_HEURISTIC);
    assert_int_equal(meta_of(old_lm, N(old_lm), NULL).freshness_lifetime, 86400); /* capped at a day */
    assert_int_equal(meta_of(future_lm, N(future_lm), NULL).freshness_lifetime, 0);
    m = meta_of(lm, N(lm), &ttl); /* the route's default comes before the heuristic */
    assert_int_equal(m.freshness_lifetime, 77);
    assert_int_equal(m.flags & (CACHE_META_HEURISTIC | CACHE_META_DEFAULT_TTL), CACHE_META_DEFAULT_TTL);
    assert_int_equal(meta_of(explicit_, N(explicit_), &ttl).freshness_lifetime, 5); /* explicit wins */
}

static void test_freshness_windows(void **state)
{
    cache_hdr_t resp[] = {HDR("cache-control", "max-age=5, stale-while-revalidate=30, stale-if-error=400")};
    cache_hdr_t plain[] = {HDR("cache-control", "max-age=5")};
    cache_route_policy_t defaults = {.default_ttl = -1, .default_swr = 10, .default_sie = 20};
    cache_meta_t m;
    (void)state;
    m = meta_of(resp, N(resp), &defaults);
    assert_int_equal(m.swr, 30);
    assert_int_equal(m.sie, 400);
    m = meta_of(plain, N(plain), &defaults);
    assert_int_equal(m.swr, 10);
    assert_int_equal(m.sie, 20);
    m = meta_of(plain, N(plain), NULL);
    assert_int_equal(m.swr, 0);
    assert_int_equal(m.sie, 0);
}

/* ==== age ==== */

static int64_t initial_age(const cache_hdr_t *resp, size_t n, int64_t request_time, int64_t response_time)
{
    cache_exchange_t x = {"GET", 3, NULL, 0, 200, resp, n, request_time, response_time};
    cache_store_plan_t plan;
    assert_int_equal(cache_storable(&x, &no_route, &plan), 1);
    return plan.meta.corrected_initial_age;
}

static void test_age_calculation(void **state)
{
    cache_hdr_t none[] = {HDR("cache-control", "max-age=600")};
    cache_hdr_t dated[] = {HDR("cache-control", "max-age=600"), HDR("date", T0_MINUS_1000)};
    cache_hdr_t aged[] = {HDR("cache-control", "max-age=600"), HDR("date", T0_DATE), HDR("age", "100")};
    cache_hdr_t dated_aged[] = {HDR("cache-control", "max-age=600"), HDR("date", T0_MINUS_1000), HDR("age", "100")};
    cache_hdr_t bad_age[] = {HDR("cache-control", "max-age=600"), HDR("age", "-5")};
    cache_hdr_t junk_age[] = {HDR("cache-control", "max-age=600"), HDR("age", "10, 20")};
    cache_hdr_t future[] = {HDR("cache-control", "max-age=600"), HDR("date", T0_PLUS_100)};
    cache_hdr_t huge_age[] = {HDR("cache-control", "max-age=600"), HDR("age", "99999999999999999999")};
    (void)state;
    assert_int_equal(initial_age(none, N(none), T0, T0), 0);
    assert_int_equal(initial_age(none, N(none), T0 - 3, T0), 3);                 /* response_delay */
    assert_int_equal(initial_age(dated, N(dated), T0, T0), 1000);                /* apparent_age */
    assert_int_equal(initial_age(aged, N(aged), T0 - 10, T0), 110);              /* Age + response_delay */
    assert_int_equal(initial_age(aged, N(aged), T0, T0 + 200), 300);             /* Age 100 + delay 200 beats apparent 200 */
    assert_int_equal(initial_age(dated_aged, N(dated_aged), T0 - 10, T0), 1000); /* apparent beats Age + delay */
    assert_int_equal(initial_age(bad_age, N(bad_age), T0, T0), 0);               /* invalid Age ignored */
    assert_int_equal(initial_age(junk_age, N(junk_age), T0, T0), 0);
    assert_int_equal(initial_age(future, N(future), T0, T0), 0); /* Date ahead of us: apparent age 0 */
    assert_int_equal(initial_age(huge_age, N(huge_age), T0, T0), CACHE_DELTA_MAX);
}

static void test_age_current(void **state)
{
    cache_meta_t m = meta_fixed(60, 0, 0, 0);
    (void)state;
    m.corrected_initial_age = 15;
    assert_int_equal(cache_meta_age(&m, T0), 15);
    assert_int_equal(cache_meta_age(&m, T0 + 30), 45);
    assert_int_equal(cache_meta_age(&m, T0 - 100), 15); /* a clock that went back adds nothing */
    assert_int_equal(cache_meta_ttl(&m, T0 + 30), 15);
    assert_int_equal(cache_meta_ttl(&m, T0 + 100), -55);
    /* metadata from outside: saturates instead of overflowing */
    m.response_time = INT64_MIN;
    m.corrected_initial_age = INT64_MAX;
    assert_int_equal(cache_meta_age(&m, INT64_MAX), INT64_MAX);
    assert_true(cache_meta_ttl(&m, INT64_MAX) < 0);
}

/* ==== reuse ==== */

static cache_reuse_t reuse_at(const cache_meta_t *m, const char *req_cc, int64_t now, cache_reuse_info_t *info)
{
    cache_cc_t cc = cc_of(req_cc != NULL ? req_cc : "");
    return cache_reuse(m, req_cc != NULL ? &cc : NULL, now, info);
}

static void test_reuse_fresh_and_stale(void **state)
{
    cache_meta_t m = meta_fixed(60, 0, 0, 0);
    cache_reuse_info_t info;
    (void)state;
    assert_int_equal(reuse_at(&m, NULL, T0 + 59, &info), CACHE_REUSE_FRESH);
    assert_int_equal(info.age, 59);
    assert_int_equal(info.ttl, 1);
    assert_int_equal(reuse_at(&m, NULL, T0 + 60, &info), CACHE_REUSE_REVALIDATE);
    assert_int_equal(info.ttl, 0);
    assert_int_equal(info.by_request, 0);
    assert_int_equal(reuse_at(&m, "", T0 + 10, NULL), CACHE_REUSE_FRESH);
}

static void test_reuse_no_cache_response(void **state)
{
    cache_meta_t m = meta_fixed(60, CACHE_META_NO_CACHE, 100, 0);
    cache_reuse_info_t info;
    (void)state;
    assert_int_equal(reuse_at(&m, NULL, T0, &info), CACHE_REUSE_REVALIDATE);
    assert_int_equal(info.by_request, 0);
    assert_int_equal(reuse_at(&m, NULL, T0 + 70, &info), CACHE_REUSE_REVALIDATE); /* and no swr either */
    cache_hdr_t resp[] = {HDR("cache-control", "max-age=60, no-cache=\"set-cookie\"")};
    cache_meta_t q = meta_of(resp, N(resp), NULL);
    assert_int_equal(reuse_at(&q, NULL, T0, NULL), CACHE_REUSE_REVALIDATE); /* qualified reads as unqualified */
}

static void test_reuse_request_directives(void **state)
{
    cache_meta_t m = meta_fixed(60, 0, 0, 0);
    cache_hdr_t pragma[] = {HDR("pragma", "no-cache")};
    cache_reuse_info_t info;
    cache_cc_t cc;
    (void)state;
    assert_int_equal(reuse_at(&m, "no-cache", T0 + 5, &info), CACHE_REUSE_REVALIDATE);
    assert_int_equal(info.by_request, 1);
    cache_request_cc(&cc, pragma, N(pragma));
    assert_int_equal(cache_reuse(&m, &cc, T0 + 5, &info), CACHE_REUSE_REVALIDATE);
    assert_int_equal(info.by_request, 1);
    assert_int_equal(reuse_at(&m, "max-age=0", T0 + 5, &info), CACHE_REUSE_REVALIDATE);
    assert_int_equal(info.by_request, 1);
    assert_int_equal(reuse_at(&m, "max-age=0", T0, NULL), CACHE_REUSE_FRESH); /* age 0 <= 0 */
    assert_int_equal(reuse_at(&m, "max-age=10", T0 + 5, NULL), CACHE_REUSE_FRESH);
    assert_int_equal(reuse_at(&m, "max-age=10", T0 + 11, NULL), CACHE_REUSE_REVALIDATE);
    assert_int_equal(reuse_at(&m, "min-fresh=20", T0 + 30, NULL), CACHE_REUSE_FRESH); /* ttl 30 */
    assert_int_equal(reuse_at(&m, "min-fresh=20", T0 + 50, &info), CACHE_REUSE_REVALIDATE);
    assert_int_equal(info.by_request, 1);
    /* NULL: the client's directives are not obeyed at all */
    assert_int_equal(cache_reuse(&m, NULL, T0 + 5, NULL), CACHE_REUSE_FRESH);
}

static void test_reuse_max_stale(void **state)
{
    cache_meta_t m = meta_fixed(60, 0, 0, 0);
    cache_meta_t mr = meta_fixed(60, CACHE_META_MUST_REVALIDATE, 0, 0);
    cache_meta_t pr = meta_fixed(60, CACHE_META_PROXY_REVALIDATE, 0, 0);
    cache_meta_t sm = meta_fixed(60, CACHE_META_HAS_S_MAXAGE, 0, 0);
    cache_reuse_info_t info;
    (void)state;
    assert_int_equal(reuse_at(&m, "max-stale=100", T0 + 110, &info), CACHE_REUSE_STALE_ALLOWED); /* 50 stale */
    assert_int_equal(info.ttl, -50);
    assert_int_equal(reuse_at(&m, "max-stale=10", T0 + 110, NULL), CACHE_REUSE_REVALIDATE);
    assert_int_equal(reuse_at(&m, "max-stale", T0 + 100000, NULL), CACHE_REUSE_STALE_ALLOWED);
    assert_int_equal(reuse_at(&mr, "max-stale", T0 + 61, NULL), CACHE_REUSE_REVALIDATE);
    assert_int_equal(reuse_at(&pr, "max-stale", T0 + 61, NULL), CACHE_REUSE_REVALIDATE);
    assert_int_equal(reuse_at(&sm, "max-stale", T0 + 61, NULL), CACHE_REUSE_REVALIDATE);
    assert_int_equal(reuse_at(&m, "max-stale, max-age=30", T0 + 61, NULL), CACHE_REUSE_REVALIDATE);
}

static void test_reuse_stale_while_revalidate(void **state)
{
    cache_meta_t m = meta_fixed(60, 0, 30, 0);
    cache_meta_t mr = meta_fixed(60, CACHE_META_MUST_REVALIDATE, 30, 0);
    cache_reuse_info_t info;
    (void)state;
    assert_int_equal(reuse_at(&m, NULL, T0 + 30, NULL), CACHE_REUSE_FRESH);
    assert_int_equal(reuse_at(&m, NULL, T0 + 61, &info), CACHE_REUSE_STALE_WHILE_REVALIDATE);
    assert_int_equal(info.ttl, -1);
    assert_int_equal(reuse_at(&m, NULL, T0 + 90, NULL), CACHE_REUSE_STALE_WHILE_REVALIDATE);
    assert_int_equal(reuse_at(&m, NULL, T0 + 91, NULL), CACHE_REUSE_REVALIDATE);
    assert_int_equal(reuse_at(&mr, NULL, T0 + 61, NULL), CACHE_REUSE_REVALIDATE);
    assert_int_equal(reuse_at(&m, "no-cache", T0 + 61, &info), CACHE_REUSE_REVALIDATE);
    assert_int_equal(info.by_request, 1);
    /* swr comes before max-stale: serve and refresh */
    assert_int_equal(reuse_at(&m, "max-stale", T0 + 61, NULL), CACHE_REUSE_STALE_WHILE_REVALIDATE);
    assert_int_equal(reuse_at(&m, "max-stale", T0 + 100, NULL), CACHE_REUSE_STALE_ALLOWED);
}

static void test_reuse_immutable(void **state)
{
    cache_meta_t m = meta_fixed(60, CACHE_META_IMMUTABLE, 0, 0);
    (void)state;
    assert_int_equal(reuse_at(&m, "no-cache", T0 + 5, NULL), CACHE_REUSE_FRESH);
    assert_int_equal(reuse_at(&m, "max-age=0", T0 + 5, NULL), CACHE_REUSE_FRESH);
    assert_int_equal(reuse_at(&m, "min-fresh=100", T0 + 5, NULL), CACHE_REUSE_REVALIDATE);
    assert_int_equal(reuse_at(&m, "no-cache", T0 + 61, NULL), CACHE_REUSE_REVALIDATE);
}

static void test_stale_if_error(void **state)
{
    cache_meta_t m = meta_fixed(60, 0, 0, 100);
    cache_meta_t none = meta_fixed(60, 0, 0, 0);
    static const uint32_t forbid[] = {CACHE_META_MUST_REVALIDATE, CACHE_META_PROXY_REVALIDATE, CACHE_META_HAS_S_MAXAGE};
    cache_cc_t req = cc_of("stale-if-error=500");
    (void)state;
    assert_int_equal(cache_stale_if_error(&m, NULL, T0 + 10), 1); /* fresh */
    assert_int_equal(cache_stale_if_error(&m, NULL, T0 + 160), 1);
    assert_int_equal(cache_stale_if_error(&m, NULL, T0 + 161), 0);
    assert_int_equal(cache_stale_if_error(&none, NULL, T0 + 61), 0);
    assert_int_equal(cache_stale_if_error(&none, &req, T0 + 560), 1); /* the request's own stale-if-error */
    assert_int_equal(cache_stale_if_error(&none, &req, T0 + 561), 0);
    for (size_t i = 0; i != N(forbid); ++i) {
        cache_meta_t f = meta_fixed(60, forbid[i], 0, 100);
        assert_int_equal(cache_stale_if_error(&f, NULL, T0 + 10), 1);
        assert_int_equal(cache_stale_if_error(&f, &req, T0 + 61), 0);
    }
    cache_meta_t nc = meta_fixed(60, CACHE_META_NO_CACHE, 0, 100);
    assert_int_equal(cache_stale_if_error(&nc, NULL, T0 + 10), 0);
    /* from a stored response's directives, and the route's default */
    cache_hdr_t resp[] = {HDR("cache-control", "max-age=10, stale-if-error=60")};
    cache_hdr_t plain[] = {HDR("cache-control", "max-age=10")};
    cache_route_policy_t route = {.default_ttl = -1, .default_sie = 30};
    cache_meta_t a = meta_of(resp, N(resp), NULL), b = meta_of(plain, N(plain), &route);
    assert_int_equal(cache_stale_if_error(&a, NULL, T0 + 70), 1);
    assert_int_equal(cache_stale_if_error(&a, NULL, T0 + 71), 0);
    assert_int_equal(cache_stale_if_error(&b, NULL, T0 + 40), 1);
    assert_int_equal(cache_stale_if_error(&b, NULL, T0 + 41), 0);
}

/* ==== validators ==== */

static void test_etag_parse(void **state)
{
    cache_etag_t t;
    static const char *bad[] = {"", "  ", "W/", "W/abc", "\"a\"b\"", "\"abc", "a b", "a,b", "\"a\" \"b\"", "W/\"\x01\""};
    (void)state;
    assert_int_equal(cache_etag_parse("\"abc\"", 5, &t), 0);
    assert_int_equal(t.weak, 0);
    assert_int_equal(t.len, 3);
    assert_memory_equal(t.opaque, "abc", 3);
    assert_int_equal(cache_etag_parse(" W/\"abc\" ", 9, &t), 0);
    assert_int_equal(t.weak, 1);
    assert_memory_equal(t.opaque, "abc", 3);
    assert_int_equal(cache_etag_parse("\"\"", 2, &t), 0);
    assert_int_equal(t.len, 0);
    assert_int_equal(cache_etag_parse("abc", 3, &t), 0); /* unquoted, leniently */
    assert_memory_equal(t.opaque, "abc", 3);
    for (size_t i = 0; i != N(bad); ++i)
        if (cache_etag_parse(bad[i], strlen(bad[i]), &t) == 0)
            fail_msg("accepted etag '%s'", bad[i]);
}

static int inm(const char *header, const char *etag)
{
    return cache_if_none_match(header, strlen(header), etag, etag != NULL ? strlen(etag) : 0);
}

static void test_if_none_match(void **state)
{
    (void)state;
    assert_true(inm("\"abc\"", "\"abc\""));
    assert_false(inm("\"abc\"", "\"abd\""));
    assert_true(inm("W/\"abc\"", "\"abc\"")); /* weak comparison, both ways */
    assert_true(inm("\"abc\"", "W/\"abc\""));
    assert_true(inm("W/\"abc\"", "W/\"abc\""));
    assert_true(inm("\"x\", \"y\" ,W/\"abc\"", "\"abc\""));
    assert_true(inm("*", "\"abc\""));
    assert_true(inm(" * ", NULL));
    assert_false(inm("\"abc\"", NULL));
    assert_false(inm("", "\"abc\""));
    assert_false(inm("\"ab\"", "\"abc\""));
    assert_true(inm("garbage\"x, \"abc\"", "\"abc\"")); /* a malformed member is skipped */
    assert_true(inm("\"a,b\"", "\"a,b\""));             /* commas inside a tag */
    assert_false(inm("\"a\", \"b\"", "\"a,b\""));
    assert_false(inm("\"abc", "\"abc\"")); /* unterminated */
    assert_false(inm("*x", "\"abc\""));
    assert_true(inm("abc", "abc")); /* unquoted on both sides */
    assert_true(inm("\"abc\"", "abc"));
    assert_false(inm("\"abc\"", "\"a\"b\"")); /* a broken stored tag matches nothing but * */
}

static int nm(const cache_hdr_t *req, size_t n, const char *etag, int64_t lm)
{
    return cache_not_modified(req, n, etag, etag != NULL ? strlen(etag) : 0, lm);
}

static void test_not_modified(void **state)
{
    cache_hdr_t inm_match[] = {HDR("if-none-match", "\"v1\"")};
    cache_hdr_t inm_two_lines[] = {HDR("if-none-match", "\"v0\""), HDR("if-none-match", "\"v1\"")};
    cache_hdr_t inm_miss_ims_ok[] = {HDR("if-none-match", "\"v0\""), HDR("if-modified-since", T0_DATE)};
    cache_hdr_t ims[] = {HDR("if-modified-since", T0_DATE)};
    cache_hdr_t ims_bad[] = {HDR("if-modified-since", "yesterday")};
    cache_hdr_t ims_two[] = {HDR("if-modified-since", T0_DATE), HDR("if-modified-since", T0_DATE)};
    (void)state;
    assert_int_equal(nm(inm_match, N(inm_match), "\"v1\"", -1), 1);
    assert_int_equal(nm(inm_match, N(inm_match), "\"v2\"", T0 - 100), 0);
    assert_int_equal(nm(inm_two_lines, N(inm_two_lines), "\"v1\"", -1), 1);
    assert_int_equal(nm(inm_miss_ims_ok, N(inm_miss_ims_ok), "\"v1\"", T0 - 100), 0); /* If-None-Match decides */
    assert_int_equal(nm(ims, N(ims), NULL, T0 - 100), 1);
    assert_int_equal(nm(ims, N(ims), NULL, T0), 1);
    assert_int_equal(nm(ims, N(ims), NULL, T0 + 1), 0);
    assert_int_equal(nm(ims, N(ims), "\"v1\"", -1), 0); /* unknown Last-Modified */
    assert_int_equal(nm(ims_bad, N(ims_bad), NULL, T0 - 100), 0);
    assert_int_equal(nm(ims_two, N(ims_two), NULL, T0 - 100), 0);
    assert_int_equal(nm(NULL, 0, "\"v1\"", T0), 0);
}

/* ==== Vary ==== */

static void test_vary_names(void **state)
{
    cache_hdr_t resp[] = {HDR("vary", "User-Agent, accept-encoding,,"), HDR("content-type", "x"),
                          HDR("Vary", " Accept-Language , ACCEPT-ENCODING")};
    char buf[128];
    size_t n;
    (void)state;
    n = cache_vary_names(resp, N(resp), buf, sizeof(buf));
    assert_int_equal(n, strlen("accept-encoding,accept-language,user-agent"));
    assert_memory_equal(buf, "accept-encoding,accept-language,user-agent", n);
    assert_int_equal(cache_vary_names(resp + 1, 1, buf, sizeof(buf)), 0);
    assert_int_equal(cache_vary_names(NULL, 0, NULL, 0), 0);
    assert_false(cache_vary_star(resp, N(resp)));
}

static size_t vkey(const char *names, const cache_hdr_t *req, size_t n, char *buf, size_t cap)
{
    return cache_vary_key(names, strlen(names), req, n, buf, cap);
}

static void test_vary_key_equivalent_requests(void **state)
{
    cache_hdr_t a[] = {HDR("accept-encoding", "gzip, br"), HDR("accept-language", "en-GB")};
    cache_hdr_t b[] = {HDR("accept-language", " en-GB "), HDR("accept-encoding", "GZIP"), HDR("accept-encoding", "br")};
    cache_hdr_t c[] = {HDR("accept-encoding", "  gzip ,\t br  "), HDR("accept-language", "en-GB")};
    cache_hdr_t d[] = {HDR("accept-encoding", "gzip"), HDR("accept-language", "en-GB")};
    cache_hdr_t e[] = {HDR("accept-encoding", "gzip, br"), HDR("accept-language", "en-gb")};
    char ka[256], kb[256], kc[256], kd[256], ke[256];
    size_t na, nb, nc, nd, ne;
    (void)state;
    na = vkey("Accept-Encoding, accept-language", a, N(a), ka, sizeof(ka));
    nb = vkey("accept-language,accept-encoding", b, N(b), kb, sizeof(kb));
    nc = vkey("accept-encoding, accept-language, accept-encoding", c, N(c), kc, sizeof(kc));
    assert_int_equal(na, strlen("accept-encoding:gzip,br\naccept-language:en-GB\n"));
    assert_memory_equal(ka, "accept-encoding:gzip,br\naccept-language:en-GB\n", na);
    assert_int_equal(nb, na);
    assert_memory_equal(kb, ka, na);
    assert_int_equal(nc, na);
    assert_memory_equal(kc, ka, na);
    nd = vkey("accept-encoding, accept-language", d, N(d), kd, sizeof(kd));
    assert_false(nd == na && memcmp(kd, ka, na) == 0);
    ne = vkey("accept-encoding, accept-language", e, N(e), ke, sizeof(ke)); /* only accept-encoding is lower-cased */
    assert_false(ne == na && memcmp(ke, ka, na) == 0);
}

static void test_vary_key_absent_vs_empty(void **state)
{
    cache_hdr_t empty[] = {HDR("accept-encoding", "")};
    char k1[64], k2[64];
    size_t n1, n2;
    (void)state;
    n1 = vkey("accept-encoding", NULL, 0, k1, sizeof(k1));
    n2 = vkey("accept-encoding", empty, N(empty), k2, sizeof(k2));
    assert_int_equal(n1, 16);
    assert_memory_equal(k1, "accept-encoding\n", n1);
    assert_int_equal(n2, 17);
    assert_memory_equal(k2, "accept-encoding:\n", n2);
    assert_int_equal(vkey("", NULL, 0, k1, sizeof(k1)), 0);
}

static void test_vary_key_truncation(void **state)
{
    cache_hdr_t req[] = {HDR("accept-encoding", "gzip")};
    char buf[16];
    size_t n;
    (void)state;
    memset(buf, 'Z', sizeof(buf));
    n = vkey("accept-encoding", req, N(req), buf, 8);
    assert_int_equal(n, strlen("accept-encoding:gzip\n"));
    assert_memory_equal(buf, "accept-e", 8);
    assert_int_equal(buf[8], 'Z'); /* nothing past cap */
}

/* ==== keys ==== */

static size_t key_of(const char *method, const char *scheme, const char *authority, const char *path, const cache_key_opts_t *opts,
                     const cache_hdr_t *hdrs, size_t nhdrs, char *buf, size_t cap)
{
    cache_key_req_t r = {method,       scheme, authority, path, strlen(method), strlen(scheme), strlen(authority),
                         strlen(path), hdrs,   nhdrs};
    size_t n = cache_key_build(&r, opts, buf, cap - 1);
    buf[n < cap - 1 ? n : cap - 1] = '\0';
    return n;
}

#define ASSERT_KEY(expected, method, scheme, authority, path, opts, hdrs, nhdrs)                                                   \
    do {                                                                                                                           \
        char buf_[512];                                                                                                            \
        size_t n_ = key_of(method, scheme, authority, path, opts, hdrs, nhdrs, buf_, sizeof(buf_));                                \
        assert_string_equal(buf_, expected);                                                                                       \
        assert_int_equal(n_, strlen(expected));                                                                                    \
    } while (0)

static void test_key_basic(void **state)
{
    (void)state;
    ASSERT_KEY("GET https://example.com/a/b?x=1", "GET", "https", "example.com", "/a/b?x=1", NULL, NULL, 0);
    ASSERT_KEY("GET https://example.com/a", "HEAD", "https", "example.com", "/a", NULL, NULL, 0);
    ASSERT_KEY("POST http://example.com/a", "POST", "http", "example.com", "/a", NULL, NULL, 0);
    ASSERT_KEY("GET http://example.com/a", "GET", "HTTP", "example.com", "/a?", NULL, NULL, 0);
    ASSERT_KEY("GET http://example.com/%7Ea", "GET", "http", "example.com", "/%7Ea", NULL, NULL, 0); /* as sent */
}

static void test_key_host(void **state)
{
    (void)state;
    ASSERT_KEY("GET https://example.com/", "GET", "https", "Example.COM:443", "/", NULL, NULL, 0);
    ASSERT_KEY("GET https://example.com/", "GET", "https", "example.com.", "/", NULL, NULL, 0);
    ASSERT_KEY("GET https://example.com/", "GET", "https", "example.com.:0443", "/", NULL, NULL, 0);
    ASSERT_KEY("GET http://example.com/", "GET", "http", "example.com:80", "/", NULL, NULL, 0);
    ASSERT_KEY("GET http://example.com:443/", "GET", "http", "example.com:443", "/", NULL, NULL, 0);
    ASSERT_KEY("GET https://example.com:8443/", "GET", "https", "example.com:8443", "/", NULL, NULL, 0);
    ASSERT_KEY("GET https://example.com/", "GET", "https", "example.com:", "/", NULL, NULL, 0);
    ASSERT_KEY("GET https://[::1]/", "GET", "https", "[::1]:443", "/", NULL, NULL, 0);
    ASSERT_KEY("GET https://[::1]:8443/", "GET", "https", "[::1]:8443", "/", NULL, NULL, 0);
    ASSERT_KEY("GET https://[::1]/", "GET", "https", "[::1]", "/", NULL, NULL, 0);
}

static void test_key_query_modes(void **state)
{
    static const char *const ac[] = {"a", "c"};
    static const char *const b[] = {"b"};
    cache_key_opts_t none = {.query = CACHE_QUERY_NONE};
    cache_key_opts_t only = {.query = CACHE_QUERY_ONLY, .params = ac, .nparams = 2};
    cache_key_opts_t except = {.query = CACHE_QUERY_EXCEPT, .params = b, .nparams = 1};
    cache_key_opts_t all = {.query = CACHE_QUERY_ALL};
    (void)state;
    ASSERT_KEY("GET http://h/p?c=3&b=2&a=1", "GET", "http", "h", "/p?c=3&b=2&a=1&&", NULL, NULL, 0);
    ASSERT_KEY("GET http://h/p?c=3&b=2&a=1", "GET", "http", "h", "/p?c=3&&b=2&a=1&", &all, NULL, 0);
    ASSERT_KEY("GET http://h/p", "GET", "http", "h", "/p?c=3&b=2&a=1", &none, NULL, 0);
    ASSERT_KEY("GET http://h/p?c=3&a=1", "GET", "http", "h", "/p?c=3&b=2&a=1&ab=4&cc", &only, NULL, 0);
    ASSERT_KEY("GET http://h/p?c=3&a=1&c", "GET", "http", "h", "/p?c=3&b=2&a=1&c", &only, NULL, 0);
    ASSERT_KEY("GET http://h/p", "GET", "http", "h", "/p?x=1&y=2", &only, NULL, 0);
    ASSERT_KEY("GET http://h/p?c=3&a=1&bb=5", "GET", "http", "h", "/p?c=3&b=2&a=1&b&bb=5", &except, NULL, 0);
}

static void test_key_sort(void **state)
{
    cache_key_opts_t sorted = {.query = CACHE_QUERY_ALL, .sort_query = 1};
    static const char *const keep[] = {"b", "a"};
    cache_key_opts_t only_sorted = {.query = CACHE_QUERY_ONLY, .params = keep, .nparams = 2, .sort_query = 1};
    (void)state;
    ASSERT_KEY("GET http://h/p?a=1&a=0&ab=2&b=2", "GET", "http", "h", "/p?b=2&a=1&ab=2&&a=0", &sorted, NULL, 0);
    ASSERT_KEY("GET http://h/p?a=2&b=1", "GET", "http", "h", "/p?x=9&b=1&a=2", &only_sorted, NULL, 0);
    ASSERT_KEY("GET http://h/p", "GET", "http", "h", "/p?&&", &sorted, NULL, 0);
    /* the same request in two orders gives one key */
    char k1[128], k2[128];
    key_of("GET", "http", "h", "/p?z=1&y=2&x=3", &sorted, NULL, 0, k1, sizeof(k1));
    key_of("GET", "http", "h", "/p?x=3&z=1&y=2", &sorted, NULL, 0, k2, sizeof(k2));
    assert_string_equal(k1, k2);
}

static void test_key_sort_too_many(void **state)
{
    cache_key_opts_t sorted = {.query = CACHE_QUERY_ALL, .sort_query = 1};
    char path[2048] = "/p?", expect[2200] = "GET http://h/p?", key[2200];
    (void)state;
    for (int i = CACHE_KEY_MAX_SORTED_PARAMS; i >= 0; --i) /* one more than the limit, in reverse order */
        sprintf(path + strlen(path), "p%03d=1%s", i, i != 0 ? "&" : "");
    strcat(expect, path + 3);
    key_of("GET", "http", "h", path, &sorted, NULL, 0, key, sizeof(key));
    assert_string_equal(key, expect); /* kept as sent */
    /* at the limit, sorted */
    strcpy(path, "/p?");
    for (int i = CACHE_KEY_MAX_SORTED_PARAMS - 1; i >= 0; --i)
        sprintf(path + strlen(path), "p%03d=1%s", i, i != 0 ? "&" : "");
    key_of("GET", "http", "h", path, &sorted, NULL, 0, key, sizeof(key));
    assert_memory_equal(key, "GET http://h/p?p000=1&p001=1&", 29);
}

static void test_key_headers(void **state)
{
    static const char *const names[] = {"x-device", "accept-encoding", "x-absent"};
    cache_key_opts_t opts = {.headers = names, .nheaders = 3};
    cache_hdr_t hdrs[] = {HDR("x-device", " Mobile "), HDR("accept-encoding", "GZIP , br"), HDR("x-device", "tablet")};
    (void)state;
    ASSERT_KEY("GET https://h/\nx-device:Mobile,tablet\naccept-encoding:gzip,br\nx-absent", "GET", "https", "h", "/", &opts, hdrs,
               N(hdrs));
    ASSERT_KEY("GET https://h/\nx-device\naccept-encoding\nx-absent", "GET", "https", "h", "/", &opts, NULL, 0);
}

static void test_key_truncation(void **state)
{
    cache_key_req_t r = {"GET", "http", "example.com", "/abc?b=1&a=2", 3, 4, 11, 12, NULL, 0};
    cache_key_opts_t sorted = {.sort_query = 1};
    char buf[64];
    (void)state;
    memset(buf, 'Z', sizeof(buf));
    size_t n = cache_key_build(&r, &sorted, buf, 10);
    assert_int_equal(n, strlen("GET http://example.com/abc?a=2&b=1"));
    assert_memory_equal(buf, "GET http:/", 10);
    assert_int_equal(buf[10], 'Z');
    assert_int_equal(cache_key_build(&r, &sorted, NULL, 0), n);
}

static void test_key_null_parts(void **state)
{
    cache_key_req_t r = {NULL, NULL, NULL, NULL, 0, 0, 0, 0, NULL, 0};
    char buf[16];
    (void)state;
    assert_int_equal(cache_key_build(&r, NULL, buf, sizeof(buf)), 4);
    assert_memory_equal(buf, " ://", 4);
}

static void test_key_digest(void **state)
{
    static const uint8_t abc[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                    0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    uint8_t a[CACHE_ID_SIZE], b[CACHE_ID_SIZE], c[CACHE_ID_SIZE], d[CACHE_ID_SIZE];
    (void)state;
    cache_key_digest("abc", 3, NULL, 0, a);
    assert_memory_equal(a, abc, 32); /* SHA-256("abc") */
    cache_key_digest("abc", 3, "", 0, b);
    assert_memory_not_equal(a, b, 32); /* a variant with an empty vary string is not the primary */
    cache_key_digest("abc", 3, "x:1\n", 4, c);
    cache_key_digest("abc", 3, "x:2\n", 4, d);
    assert_memory_not_equal(c, d, 32);
    cache_key_digest("ab\0c", 4, NULL, 0, d); /* H(key || 0x00 || vary) */
    cache_key_digest("ab", 2, "c", 1, c);
    assert_memory_equal(c, d, 32);
    cache_key_digest("abd", 3, NULL, 0, b);
    assert_memory_not_equal(a, b, 32);
}

/* ==== Cache-Status ==== */

static const char *status_str(const cache_status_t *s)
{
    static char buf[256];
    size_t n = cache_status_format(s, buf, sizeof(buf) - 1);
    buf[n < sizeof(buf) - 1 ? n : sizeof(buf) - 1] = '\0';
    return buf;
}

static void test_cache_status(void **state)
{
    cache_status_t hit = {.fwd = CACHE_FWD_NONE, .has_ttl = 1, .ttl = 42, .fwd_status = 200};
    cache_status_t miss = {.fwd = CACHE_FWD_URI_MISS, .fwd_status = 200, .stored = 1, .has_ttl = 1, .ttl = 60};
    cache_status_t bypass = {.fwd = CACHE_FWD_BYPASS, .fwd_status = 200, .detail = "no-store"};
    cache_status_t stale = {.fwd = CACHE_FWD_STALE, .fwd_status = 304, .collapsed = 1};
    cache_status_t odd = {.fwd = CACHE_FWD_VARY_MISS, .detail = "a \"b\"\\\x01"};
    cache_status_t req = {.fwd = CACHE_FWD_REQUEST, .detail = ""};
    cache_status_t digit = {.fwd = CACHE_FWD_BYPASS, .detail = "404-cached"}; /* a token cannot start with a digit */
    cache_status_t swr = {.fwd = CACHE_FWD_NONE, .has_ttl = 1, .ttl = -5};
    (void)state;
    assert_string_equal(status_str(&hit), "edgeproxy; hit; ttl=42");
    assert_string_equal(status_str(&miss), "edgeproxy; fwd=uri-miss; fwd-status=200; ttl=60; stored");
    assert_string_equal(status_str(&bypass), "edgeproxy; fwd=bypass; fwd-status=200; detail=no-store");
    assert_string_equal(status_str(&stale), "edgeproxy; fwd=stale; fwd-status=304; collapsed");
    assert_string_equal(status_str(&odd), "edgeproxy; fwd=vary-miss; detail=\"a \\\"b\\\"\\\\\"");
    assert_string_equal(status_str(&req), "edgeproxy; fwd=request");
    assert_string_equal(status_str(&digit), "edgeproxy; fwd=bypass; detail=\"404-cached\"");
    assert_string_equal(status_str(&swr), "edgeproxy; hit; ttl=-5");
    char small[8] = "ZZZZZZZ";
    assert_int_equal(cache_status_format(&hit, small, 4), strlen("edgeproxy; hit; ttl=42"));
    assert_memory_equal(small, "edgeZZZ", 7);
}

/* ==== hostile input ==== */

/*
 * Every parser over every prefix of some nasty strings: ASan catches a read past len (the copies are exact-size, with
 * plain malloc: cmocka's test_malloc pads its blocks, which would hide a small over-read).
 */
static void test_fuzz_prefixes(void **state)
{
    static const char *inputs[] = {
        "max-age=\"",
        "private=\"a,\\",
        "no-cache=\"a\\\"",
        "W/\"",
        "\"a",
        "Sun, 06 Nov 1994 08:49:",
        "a=1&&b",
        "x;edgeproxy=",
        ",;=\"\\",
        "Sunday, 06-Nov-",
        "Sun Nov  6 08:49:37 199",
    };
    char out[64];
    (void)state;
    for (size_t i = 0; i != N(inputs); ++i) {
        size_t len = strlen(inputs[i]);
        for (size_t n = 0; n <= len; ++n) {
            char *s = malloc(n + 1);
            assert_non_null(s);
            memcpy(s, inputs[i], n);
            cache_cc_t cc;
            cache_etag_t t;
            cache_hdr_t h[] = {
                {"vary", 4, s, n}, {"if-none-match", 13, s, n}, {"cache-control", 13, s, n}, {"surrogate-control", 17, s, n}};
            cache_cc_init(&cc);
            cache_cc_parse(&cc, CACHE_CC_SYNTAX_SURROGATE, s, n);
            cache_cc_parse(&cc, CACHE_CC_SYNTAX_CDN, s, n);
            cache_cc_parse(&cc, CACHE_CC_SYNTAX_CACHE_CONTROL, s, n);
            assert_true(cache_date_parse(s, n) >= -1);
            (void)cache_etag_parse(s, n, &t);
            (void)cache_if_none_match(s, n, s, n);
            (void)cache_not_modified(h, N(h), s, n, 0);
            (void)cache_vary_names(h, N(h), out, sizeof(out));
            (void)cache_vary_key(s, n, h, N(h), out, sizeof(out));
            cache_key_req_t r = {s, s, s, s, n, n, n, n, h, N(h)};
            assert_true(cache_key_build(&r, NULL, out, sizeof(out)) >= n);
            free(s);
        }
    }
}

/* Deterministic random strings over the characters the parsers care about; checks the invariants of every output. */
static void test_fuzz_random(void **state)
{
    static const char alphabet[] = "aZ09=,;\" \t\\-W/*:?&.[]GMTSunNov";
    uint32_t seed = 12345;
    char out[96];
    (void)state;
    for (int iter = 0; iter != 20000; ++iter) {
        size_t n = (seed = seed * 1103515245 + 12345) >> 16 & 63;
        char *s = malloc(n + 1);
        assert_non_null(s);
        for (size_t i = 0; i != n; ++i)
            s[i] = alphabet[((seed = seed * 1103515245 + 12345) >> 16) % (sizeof(alphabet) - 1)];
        cache_cc_t cc;
        cache_cc_init(&cc);
        cache_cc_parse(&cc, (cache_cc_syntax_t)(iter % 3), s, n);
        if (cc.flags & CACHE_CC_MAX_AGE)
            assert_true(cc.max_age >= 0 && cc.max_age <= CACHE_DELTA_MAX);
        assert_true(cc.nprivate <= CACHE_CC_MAX_FIELDS && cc.nno_cache <= CACHE_CC_MAX_FIELDS);
        for (uint32_t i = 0; i != cc.nprivate; ++i)
            assert_true(cc.private_[i].base >= s && cc.private_[i].base + cc.private_[i].len <= s + n);
        assert_true(cache_date_parse(s, n) >= -1);
        cache_etag_t t;
        if (cache_etag_parse(s, n, &t) == 0)
            assert_true(t.opaque >= s && t.opaque + t.len <= s + n);
        cache_hdr_t h[] = {{"vary", 4, s, n},           {"if-none-match", 13, s, n}, {"age", 3, s, n},
                           {"cache-control", 13, s, n}, {"expires", 7, s, n},        {"last-modified", 13, s, n}};
        cache_exchange_t x = {"GET", 3, h, N(h), 200, h, N(h), T0, T0};
        cache_store_plan_t plan;
        if (cache_storable(&x, &no_route, &plan))
            assert_true(plan.meta.freshness_lifetime >= 0 && plan.meta.corrected_initial_age >= 0);
        else
            assert_non_null(plan.reason);
        size_t len = cache_vary_names(h, N(h), out, sizeof(out));
        assert_true(len <= 3 * n + CACHE_VARY_MAX_NAMES); /* names, lower-cased, and commas */
        (void)cache_vary_key(s, n, h, N(h), out, sizeof(out));
        (void)cache_not_modified(h, N(h), s, n, T0);
        free(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_date_three_formats),
        cmocka_unit_test(test_date_lenient),
        cmocka_unit_test(test_date_invalid),
        cmocka_unit_test(test_date_length_bounded),
        cmocka_unit_test(test_date_format),
        cmocka_unit_test(test_cc_every_directive),
        cmocka_unit_test(test_cc_case_and_whitespace),
        cmocka_unit_test(test_cc_quoted_values),
        cmocka_unit_test(test_cc_invalid_max_age_is_stale),
        cmocka_unit_test(test_cc_duplicates),
        cmocka_unit_test(test_cc_huge_values),
        cmocka_unit_test(test_cc_field_lists),
        cmocka_unit_test(test_cc_field_lists_read_strictly),
        cmocka_unit_test(test_cc_restrictive_honoured_when_malformed),
        cmocka_unit_test(test_cc_request_side),
        cmocka_unit_test(test_cc_unknown_ignored),
        cmocka_unit_test(test_cc_length_bounded),
        cmocka_unit_test(test_request_cc_pragma),
        cmocka_unit_test(test_targeted_precedence),
        cmocka_unit_test(test_surrogate_targets),
        cmocka_unit_test(test_cdn_cache_control_params),
        cmocka_unit_test(test_targeted_fields_replace_cache_control),
        cmocka_unit_test(test_hdr_is_targeted),
        cmocka_unit_test(test_store_method_and_status),
        cmocka_unit_test(test_store_no_store),
        cmocka_unit_test(test_store_must_understand),
        cmocka_unit_test(test_store_private),
        cmocka_unit_test(test_store_authorization),
        cmocka_unit_test(test_store_vary),
        cmocka_unit_test(test_store_set_cookie),
        cmocka_unit_test(test_store_needs_freshness),
        cmocka_unit_test(test_store_override),
        cmocka_unit_test(test_store_meta_layout),
        cmocka_unit_test(test_freshness_sources),
        cmocka_unit_test(test_freshness_default_and_heuristic),
        cmocka_unit_test(test_freshness_windows),
        cmocka_unit_test(test_age_calculation),
        cmocka_unit_test(test_age_current),
        cmocka_unit_test(test_reuse_fresh_and_stale),
        cmocka_unit_test(test_reuse_no_cache_response),
        cmocka_unit_test(test_reuse_request_directives),
        cmocka_unit_test(test_reuse_max_stale),
        cmocka_unit_test(test_reuse_stale_while_revalidate),
        cmocka_unit_test(test_reuse_immutable),
        cmocka_unit_test(test_stale_if_error),
        cmocka_unit_test(test_etag_parse),
        cmocka_unit_test(test_if_none_match),
        cmocka_unit_test(test_not_modified),
        cmocka_unit_test(test_vary_names),
        cmocka_unit_test(test_vary_key_equivalent_requests),
        cmocka_unit_test(test_vary_key_absent_vs_empty),
        cmocka_unit_test(test_vary_key_truncation),
        cmocka_unit_test(test_key_basic),
        cmocka_unit_test(test_key_host),
        cmocka_unit_test(test_key_query_modes),
        cmocka_unit_test(test_key_sort),
        cmocka_unit_test(test_key_sort_too_many),
        cmocka_unit_test(test_key_headers),
        cmocka_unit_test(test_key_truncation),
        cmocka_unit_test(test_key_null_parts),
        cmocka_unit_test(test_key_digest),
        cmocka_unit_test(test_cache_status),
        cmocka_unit_test(test_fuzz_prefixes),
        cmocka_unit_test(test_fuzz_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
