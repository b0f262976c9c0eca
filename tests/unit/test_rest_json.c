/*
 * Unit tests for proxy/rest_json.c: the exact-text JSON scanner of the REST origin (what it accepts as one value, how it
 * walks members and elements), the conversions between plain JSON and DynamoDB attribute values (numbers keep their
 * text both ways), the string escaper and the text buffer growing in a request's pool.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include "proxy/internal.h"

static h2o_req_t req; /* only its pool is used */

static int setup(void **state)
{
    (void)state;
    h2o_mem_init_pool(&req.pool);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    h2o_mem_clear_pool(&req.pool);
    return 0;
}

static h2o_iovec_t iov(const char *s)
{
    return h2o_iovec_init(s, strlen(s));
}

static void assert_iov(h2o_iovec_t v, const char *want)
{
    if (v.len != strlen(want) || memcmp(v.base, want, v.len) != 0)
        fail_msg("got '%.*s', want '%s'", (int)v.len, v.base, want);
}

static h2o_iovec_t to_ddb(const char *plain)
{
    px_rb_t b = px_rb_new(&req, 8); /* small: it has to grow */
    px_to_ddb(&b, iov(plain));
    return px_rb_done(&b);
}

static h2o_iovec_t to_plain(const char *map)
{
    px_rb_t b = px_rb_new(&req, 8);
    px_to_plain_map(&b, iov(map));
    return px_rb_done(&b);
}

static void test_whole_values(void **state)
{
    static const char *const objects[] = {
        "{}",
        " { } ",
        "{\"a\":1}",
        "{\"a\" : [1, -2.5e+3, \"x\", true, false, null, {}], \"b\":{\"c\":\"\\u00e9\\n\"}}\r\n",
        "{\"a\":0,\"a\":-0.0}", /* duplicates are the store's to judge */
    };
    static const char *const not_objects[] = {
        "",
        " ",
        "[]",
        "\"s\"",
        "1",
        "{",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\":1,}",
        "{a:1}",
        "{\"a\":1} x",
        "{\"a\":01}",
        "{\"a\":1.}",
        "{\"a\":.5}",
        "{\"a\":-}",
        "{\"a\":1e}",
        "{\"a\":tru}",
        "{\"a\":\"\\x\"}",
        "{\"a\":\"\\u12\"}",
        "{\"a\":\"tab\there\"}",
        "{\"a\":\"open}",
        "{\"a\":[1 2]}",
        "{\"a\":1}{}",
        "{'a':1}",
    };
    (void)state;
    for (size_t i = 0; i != sizeof(objects) / sizeof(objects[0]); ++i)
        if (!px_js_is_whole(iov(objects[i]), '{'))
            fail_msg("refused %s", objects[i]);
    for (size_t i = 0; i != sizeof(not_objects) / sizeof(not_objects[0]); ++i)
        if (px_js_is_whole(iov(not_objects[i]), '{'))
            fail_msg("accepted %s", not_objects[i]);
    assert_true(px_js_is_whole(iov("[1,{}]"), '['));
    assert_false(px_js_is_whole(iov("[1,{}]"), '{'));
}

/* Nesting deeper than PX_REST_MAX_DEPTH is refused (the store's own limit, 32, is below it and says what is wrong). */
static void test_depth(void **state)
{
    char deep[2 * (PX_REST_MAX_DEPTH + 2) + 16];
    (void)state;
    for (int levels = PX_REST_MAX_DEPTH; levels <= PX_REST_MAX_DEPTH + 1; ++levels) {
        size_t n = 5; /* {"a":[[...]]}: one object, then levels - 1 arrays */
        memcpy(deep, "{\"a\":", 5);
        for (int i = 1; i < levels; ++i)
            deep[n++] = '[';
        for (int i = 1; i < levels; ++i)
            deep[n++] = ']';
        deep[n++] = '}';
        deep[n] = '\0';
        assert_int_equal(px_js_is_whole(iov(deep), '{'), levels <= PX_REST_MAX_DEPTH);
    }
}

static void test_numbers(void **state)
{
    static const struct {
        const char *text;
        size_t len; /* what px_js_num takes; 0: refused */
    } cases[] = {
        {"0", 1},         {"-0", 2},  {"12.50", 5}, {"1e5", 3},   {"1E-5", 4},
        {"-3.25e+10", 9}, {"007", 1}, {"12abc", 2}, {"1.5.5", 3}, {"-", 0},
        {".5", 0},        {"1.", 0},  {"1e", 0},    {"+1", 0},    {"123456789012345678901234567890123456789", 39},
    };
    (void)state;
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        const char *p = cases[i].text, *end = p + strlen(p), *q = px_js_num(p, end);
        if ((q == NULL ? 0 : (size_t)(q - p)) != cases[i].len)
            fail_msg("%s: took %d, want %zu", p, q == NULL ? -1 : (int)(q - p), cases[i].len);
    }
}

static void test_walk(void **state)
{
    h2o_iovec_t obj = iov(" {\"a\" : 1 , \"b\":[true, {\"c\":null}] ,\"a\":\"x\\\"y\"} ");
    px_js_it_t it = px_js_iter(h2o_iovec_init(obj.base + 1, obj.len - 1));
    h2o_iovec_t name, val;
    static const char *const want[][2] = {{"\"a\"", "1"}, {"\"b\"", "[true, {\"c\":null}]"}, {"\"a\"", "\"x\\\"y\""}};

    (void)state;
    for (size_t i = 0; i != 3; ++i) {
        assert_true(px_js_next(&it, &name, &val));
        assert_iov(name, want[i][0]);
        assert_iov(val, want[i][1]);
    }
    assert_false(px_js_next(&it, &name, &val));
    /* the elements of the array */
    it = px_js_iter(iov("[true, {\"c\":null}]"));
    assert_true(px_js_next(&it, NULL, &val));
    assert_iov(val, "true");
    assert_true(px_js_next(&it, NULL, &val));
    assert_iov(val, "{\"c\":null}");
    assert_false(px_js_next(&it, NULL, &val));
    it = px_js_iter(iov("[]"));
    assert_false(px_js_next(&it, NULL, &val));
    /* px_js_get: the first of a repeated name; absent; not an object */
    assert_iov(px_js_get(iov("{\"a\":1,\"b\":2,\"a\":3}"), "a"), "1");
    assert_iov(px_js_get(iov("{\"a\":1,\"b\":{\"x\":1}}"), "b"), "{\"x\":1}");
    assert_int_equal(px_js_get(iov("{\"a\":1}"), "x").len, 0);
    assert_int_equal(px_js_get(iov("{\"ab\":1}"), "a").len, 0);
    assert_int_equal(px_js_get(iov("[\"a\",1]"), "a").len, 0);
    assert_int_equal(px_js_get(iov(""), "a").len, 0);
}

static void test_unquote(void **state)
{
    (void)state;
    assert_iov(px_js_unquote(&req.pool, iov("\"plain\"")), "plain");
    assert_iov(px_js_unquote(&req.pool, iov("\"\"")), "");
    assert_iov(px_js_unquote(&req.pool, iov("\"a\\nb\\\"c\\u00e9\\/\"")), "a\nb\"c\xc3\xa9/");
    assert_iov(px_js_unquote(&req.pool, iov("\"\\ud83d\\ude00\"")), "\xf0\x9f\x98\x80");
    assert_iov(px_js_unquote(&req.pool, iov("\"\\udc00\"")), ""); /* a lone surrogate: not a string */
    assert_iov(px_js_unquote(&req.pool, iov("1")), "");
    assert_iov(px_js_unquote(&req.pool, iov("\"")), "");
}

static void test_to_ddb(void **state)
{
    (void)state;
    assert_iov(to_ddb("\"x\""), "{\"S\":\"x\"}");
    assert_iov(to_ddb("12.50"), "{\"N\":\"12.50\"}");   /* the text as it is: the store normalizes */
    assert_iov(to_ddb("-1e400"), "{\"N\":\"-1e400\"}"); /* out of double's range: still exact text (the store judges) */
    assert_iov(to_ddb("true"), "{\"BOOL\":true}");
    assert_iov(to_ddb("false"), "{\"BOOL\":false}");
    assert_iov(to_ddb("null"), "{\"NULL\":true}");
    assert_iov(to_ddb("[]"), "{\"L\":[]}");
    assert_iov(to_ddb("{}"), "{\"M\":{}}");
    assert_iov(to_ddb("{ \"id\" : \"k\\u00e9\", \"n\": 123456789012345678901234567890123456789, \"tags\": [\"a\", 1, [null]], "
                      "\"m\": {\"deep\": {\"x\": false}} }"),
               "{\"M\":{\"id\":{\"S\":\"k\\u00e9\"},\"n\":{\"N\":\"123456789012345678901234567890123456789\"},"
               "\"tags\":{\"L\":[{\"S\":\"a\"},{\"N\":\"1\"},{\"L\":[{\"NULL\":true}]}]},"
               "\"m\":{\"M\":{\"deep\":{\"M\":{\"x\":{\"BOOL\":false}}}}}}}");
}

static void test_to_plain(void **state)
{
    (void)state;
    assert_iov(to_plain("{}"), "{}");
    assert_iov(to_plain("{\"s\":{\"S\":\"x\\\"\"},\"n\":{\"N\":\"12.5\"},\"b\":{\"BOOL\":true},\"z\":{\"NULL\":true}}"),
               "{\"s\":\"x\\\"\",\"n\":12.5,\"b\":true,\"z\":null}");
    assert_iov(to_plain("{\"l\":{\"L\":[{\"N\":\"1\"},{\"M\":{\"k\":{\"S\":\"v\"}}}]},\"m\":{\"M\":{}}}"),
               "{\"l\":[1,{\"k\":\"v\"}],\"m\":{}}");
    /* sets: numbers as numbers, strings and binaries (base64) as strings; B as its base64 string */
    assert_iov(
        to_plain(
            "{\"ns\":{\"NS\":[\"1\",\"2.5\"]},\"ss\":{\"SS\":[\"a\",\"b\"]},\"bs\":{\"BS\":[\"AAE=\"]},\"bin\":{\"B\":\"AAE=\"}}"),
        "{\"ns\":[1,2.5],\"ss\":[\"a\",\"b\"],\"bs\":[\"AAE=\"],\"bin\":\"AAE=\"}");
    /* an empty attribute value (not the store's) comes out as null rather than as nothing */
    assert_iov(to_plain("{\"odd\":{}}"), "{\"odd\":null}");
    /* the way back of the way in */
    h2o_iovec_t ddb = to_ddb("{\"a\":[1,\"x\",{\"b\":null}],\"n\":-0.50}");
    h2o_iovec_t m = px_js_get(ddb, "M");
    px_rb_t b = px_rb_new(&req, 4);
    px_to_plain_map(&b, m);
    assert_iov(px_rb_done(&b), "{\"a\":[1,\"x\",{\"b\":null}],\"n\":-0.50}");
}

static void test_buffer(void **state)
{
    px_rb_t b = px_rb_new(&req, 2);
    char big[5000];

    (void)state;
    px_rb_str(&b, "q\"b\\s\n\x01\x7f\xc3\xa9", 10);
    assert_iov(px_rb_done(&b), "\"q\\\"b\\\\s\\u000a\\u0001\x7f\xc3\xa9\"");
    b = px_rb_new(&req, 1);
    memset(big, 'z', sizeof(big));
    for (int i = 0; i < 10; ++i)
        px_rb_add(&b, big, sizeof(big)); /* grows well past its first chunk */
    PX_RB_LIT(&b, "!");
    h2o_iovec_t v = px_rb_done(&b);
    assert_int_equal(v.len, 10 * sizeof(big) + 1);
    assert_int_equal(v.base[0], 'z');
    assert_int_equal(v.base[v.len - 2], 'z');
    assert_int_equal(v.base[v.len - 1], '!');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_whole_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_depth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_numbers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_walk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unquote, setup, teardown),
        cmocka_unit_test_setup_teardown(test_to_ddb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_to_plain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_buffer, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
