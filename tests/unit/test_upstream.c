/*
 * Unit tests of what proxy/upstream.c relies on: the picohttpparser declarations in proxy/phr.h against the parser
 * built into libh2o (a layout mismatch would show here, not in production), and the request-body hard cap.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include "proxy/internal.h"
#include "proxy/phr.h"

static void test_parse_response(void **state)
{
    static const char head[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 12\r\nX-A: b c\r\n\r\nbody";
    struct phr_header h[4];
    size_t nh = 4, msglen;
    int minor, status;
    const char *msg;
    (void)state;

    int r = phr_parse_response(head, sizeof(head) - 1, &minor, &status, &msg, &msglen, h, &nh, 0);
    assert_int_equal(r, (int)(sizeof(head) - 1 - 4));
    assert_int_equal(minor, 1);
    assert_int_equal(status, 404);
    assert_int_equal(msglen, 9);
    assert_memory_equal(msg, "Not Found", 9);
    assert_int_equal(nh, 2);
    assert_int_equal(h[1].name_len, 3);
    assert_memory_equal(h[1].name, "X-A", 3);
    assert_int_equal(h[1].value_len, 3);
    assert_memory_equal(h[1].value, "b c", 3);

    nh = 4;
    assert_int_equal(phr_parse_response(head, 20, &minor, &status, &msg, &msglen, h, &nh, 0), -2);
    nh = 4;
    assert_int_equal(phr_parse_response("HTTP/1.1 2x0 OK\r\n\r\n", 19, &minor, &status, &msg, &msglen, h, &nh, 0), -1);
}

static void test_decode_chunked(void **state)
{
    char buf[] = "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
    struct phr_chunked_decoder d = {0};
    size_t n = sizeof(buf) - 1;
    (void)state;

    d.consume_trailer = 1;
    ssize_t r = phr_decode_chunked(&d, buf, &n);
    assert_int_equal(r, 4); /* "NEXT" is left after the end */
    assert_int_equal(n, 11);
    assert_memory_equal(buf, "hello world", 11);
}

static void test_decode_chunked_in_pieces(void **state)
{
    const char *pieces[] = {"3\r", "\nabc", "\r\n", "2\r\nde\r\n0\r\n", "\r\n"};
    struct phr_chunked_decoder d = {0};
    char out[16];
    size_t o = 0;
    ssize_t r = -2;
    (void)state;

    d.consume_trailer = 1;
    for (size_t i = 0; i != sizeof(pieces) / sizeof(pieces[0]); ++i) {
        char buf[32];
        size_t n = strlen(pieces[i]);
        memcpy(buf, pieces[i], n);
        r = phr_decode_chunked(&d, buf, &n);
        assert_true(r == -2 || i == 4);
        memcpy(out + o, buf, n);
        o += n;
    }
    assert_int_equal(r, 0);
    assert_int_equal(o, 5);
    assert_memory_equal(out, "abcde", 5);

    char bad[] = "zz\r\n";
    size_t n = 4;
    d = (struct phr_chunked_decoder){0};
    assert_int_equal(phr_decode_chunked(&d, bad, &n), -1);
}

static void test_body_hard_cap(void **state)
{
    (void)state;
    assert_int_equal(px_body_hard_cap(10u << 20), 20u << 20);
    assert_int_equal(px_body_hard_cap(0), 0);
    assert_int_equal(px_body_hard_cap(700ull << 20), CONF_MAX_MAX_BODY_SIZE);
    assert_int_equal(px_body_hard_cap(CONF_MAX_MAX_BODY_SIZE), CONF_MAX_MAX_BODY_SIZE);
}

/* The client address formatter against inet_ntop, every octet value in every position. */
static void test_format_ipv4(void **state)
{
    char mine[16], want[INET_ADDRSTRLEN];
    (void)state;
    for (int pos = 0; pos != 4; ++pos) {
        for (int v = 0; v != 256; ++v) {
            uint8_t a[4] = {127, 0, 10, 200};
            a[pos] = (uint8_t)v;
            size_t len = px_format_ipv4(a, mine);
            assert_non_null(inet_ntop(AF_INET, a, want, sizeof(want)));
            assert_string_equal(mine, want);
            assert_int_equal(len, strlen(want));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_response),
        cmocka_unit_test(test_decode_chunked),
        cmocka_unit_test(test_decode_chunked_in_pieces),
        cmocka_unit_test(test_body_hard_cap),
        cmocka_unit_test(test_format_ipv4),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
