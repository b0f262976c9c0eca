/*
 * Unit tests of store/decimal.c: DynamoDB numbers. The expected texts and errors come from what DynamoDB answers
 * (dynalite's test suite and ScyllaDB's Alternator tests were both run against DynamoDB itself: their cases are here
 * with the same inputs), and from the limits DynamoDB documents (38 digits, 1E-130 .. 9.99...E+125).
 *
 * The table tests pin exact behaviour: parsing (accepted syntax, every rejection, the digit and range limits at both
 * ends, exponents far beyond int32), the normalized text, comparison, addition and subtraction (carries, borrows,
 * signs, cancellation, and the precision and range errors of results), and the key bytes. The randomized tests
 * (a fixed seed, so a failure is reproducible) then check the properties over thousands of generated numbers: a
 * number written in any notation parses back to itself, format and parse are inverse, memcmp of keys orders like
 * store_num_cmp, keys round-trip and every accepted key is canonical, and add/sub agree with a reference written the
 * slow obvious way (a digit per array cell, positions -200..199) which shares no code with decimal.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/decimal.h"

typedef unsigned __int128 u128;

/* Expected outcomes in the tables: a text means STORE_NUM_OK with that normalized text. */
#define SYNTAX "<ESYNTAX>"
#define PRECISION "<EPRECISION>"
#define OVERFLOW "<EOVERFLOW>"
#define UNDERFLOW "<EUNDERFLOW>"

#define NINES38 "99999999999999999999999999999999999999"
#define DIGITS38 "12345678901234567890123456789012345678"
#define MAX_TEXT "9.9999999999999999999999999999999999999e125" /* the largest magnitude */

/* ---- helpers ---- */

static const char *err_name(store_num_err_t err)
{
    switch (err) {
    case STORE_NUM_OK:
        return "<OK>";
    case STORE_NUM_ESYNTAX:
        return SYNTAX;
    case STORE_NUM_EPRECISION:
        return PRECISION;
    case STORE_NUM_EOVERFLOW:
        return OVERFLOW;
    case STORE_NUM_EUNDERFLOW:
        return UNDERFLOW;
    }
    return "<?>";
}

/*
 * The long inputs (runs of 129 zeros...) are built, not typed: rep() and cat() return strings from an arena that
 * every test starts empty (arena_reset is each test's setup), so a table can hold many of them at once.
 */
static struct {
    char buf[1 << 20];
    size_t used;
} arena;

static int arena_reset(void **state)
{
    (void)state;
    arena.used = 0;
    return 0;
}

static char *arena_alloc(size_t n)
{
    char *p;

    assert_true(n <= sizeof(arena.buf) - arena.used);
    p = arena.buf + arena.used;
    arena.used += n;
    return p;
}

/* n copies of c. */
static const char *rep(char c, size_t n)
{
    char *b = arena_alloc(n + 1);

    memset(b, c, n);
    b[n] = '\0';
    return b;
}

static const char *cat(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *r = arena_alloc(la + lb + 1);

    memcpy(r, a, la);
    memcpy(r + la, b, lb + 1);
    return r;
}

/* a, n zeros, b: "0." + 129 zeros + "1" is zeros("0.", 129, "1"). */
static const char *zeros(const char *a, size_t n, const char *b)
{
    return cat(cat(a, rep('0', n)), b);
}

static store_num_t num(const char *s)
{
    store_num_t n;
    store_num_err_t err = store_num_parse(s, strlen(s), &n);

    if (err != STORE_NUM_OK)
        fail_msg("parse(\"%s\") = %s", s, err_name(err));
    return n;
}

/* The outcome of an operation as the tables write it: the normalized text, or the error's name. */
static const char *outcome(store_num_err_t err, const store_num_t *n, char *buf)
{
    size_t len;

    if (err != STORE_NUM_OK)
        return err_name(err);
    len = store_num_format(n, buf);
    assert_int_equal(len, strlen(buf));
    assert_true(len < STORE_NUM_TEXT_MAX);
    return buf;
}

static int num_eq(const store_num_t *a, const store_num_t *b)
{
    return a->sign == b->sign && a->exp == b->exp && a->coef == b->coef;
}

/* The invariants of decimal.h's representation. */
static void check_normalized(const store_num_t *n)
{
    if (n->sign == 0) {
        assert_true(n->coef == 0);
        assert_int_equal(n->exp, 0);
        return;
    }
    assert_true(n->sign == 1 || n->sign == -1);
    assert_true(n->coef != 0 && n->coef % 10 != 0);
    assert_true(n->coef < (u128)10000000000000000000u * 10000000000000000000u);
}

/* Compares keys as LMDB's default comparison does: memcmp on the common length, then the shorter first. */
static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);

    if (c != 0)
        return c < 0 ? -1 : 1;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* ---- error strings ---- */

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(store_num_strerror(STORE_NUM_ESYNTAX), "The parameter cannot be converted to a numeric value");
    assert_string_equal(store_num_strerror(STORE_NUM_EPRECISION),
                        "Attempting to store more than 38 significant digits in a Number");
    assert_string_equal(store_num_strerror(STORE_NUM_EOVERFLOW),
                        "Number overflow. Attempting to store a number with magnitude larger than supported range");
    assert_string_equal(store_num_strerror(STORE_NUM_EUNDERFLOW),
                        "Number underflow. Attempting to store a number with magnitude smaller than supported range");
    assert_string_equal(store_num_strerror(STORE_NUM_OK), "");
}

/* ---- parsing ---- */

typedef struct parse_case {
    const char *in;
    const char *want;
} parse_case_t;

static void run_parse_cases(const parse_case_t *cases, size_t n)
{
    char buf[STORE_NUM_TEXT_MAX];
    size_t i;

    for (i = 0; i < n; i++) {
        store_num_t v = {7, 7, 7}; /* garbage: an error must leave it alone, success must overwrite it */
        store_num_err_t err = store_num_parse(cases[i].in, strlen(cases[i].in), &v);
        const char *got = outcome(err, &v, buf);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("parse(\"%s\") = \"%s\", want \"%s\"", cases[i].in, got, cases[i].want);
        if (err == STORE_NUM_OK)
            check_normalized(&v);
        else
            assert_true(v.sign == 7 && v.exp == 7 && v.coef == 7);
    }
}

static void test_parse_valid(void **state)
{
    const parse_case_t cases[] = {
        /* zeros, whatever their sign, point and exponent */
        {"0", "0"},
        {"-0", "0"},
        {"+0", "0"},
        {"0.00", "0"},
        {"-0.0", "0"},
        {"000", "0"},
        {".0", "0"},
        {"0.", "0"},
        {"0e5", "0"},
        {"0e1000", "0"}, /* ScyllaDB: DynamoDB accepts it */
        {"0e99999999999", "0"},
        {"-0e-99999999999", "0"},
        {"0.000e+999999999999999999999999", "0"},
        /* plain numbers and normalization */
        {"1", "1"},
        {"+1", "1"},
        {"-1", "-1"},
        {"3", "3"},
        {"+3", "3"}, /* ScyllaDB: DynamoDB accepts a '+', which big.js (dynalite) does not */
        {"1.50", "1.5"},
        {"100.000", "100"},
        {"1000", "1000"},
        {"1001", "1001"},
        {"0001.23", "1.23"},
        {"0.00100", "0.001"},
        {"-7.1234", "-7.1234"},
        {"-56.789", "-56.789"},
        {".123", "0.123"},
        {".5", "0.5"},
        {"5.", "5"},
        {"-.5", "-0.5"},
        {"+.5", "0.5"},
        /* exponents */
        {"1e3", "1000"},
        {"1E3", "1000"},
        {"1E+3", "1000"},
        {"1e+5", "100000"},
        {"1e-3", "0.001"},
        {"1E-3", "0.001"},
        {"-1.5e-2", "-0.015"},
        {"1e0", "1"},
        {"1e-0", "1"},
        {"1e+00", "1"},
        {"1e-0000000000000000000000000000002", "0.01"},
        {"1.e1", "10"},
        {".5e1", "5"},
        {"12.34e1", "123.4"},
        {"12.34e2", "1234"},
        {"12.34e3", "12340"},
        {"12.34e-2", "0.1234"},
        {"123456789e-9", "0.123456789"},
        {"-17e5", "-1700000"},
        {"-0015.789e6", "-15789000"},
        {"-17.4E37", cat("-174", rep('0', 36))},
        /* dynalite's "should put really long numbers" (run against DynamoDB) */
        {"0000012345678901234567890123456789012345678", DIGITS38},
        {"-00001.23456789012345678901234567890123456780000", "-1.2345678901234567890123456789012345678"},
        {"0009.99999999999999999999999999999999999990000e125", cat(NINES38, rep('0', 88))},
        {"-0009.99999999999999999999999999999999999990000e125", cat(cat("-", NINES38), rep('0', 88))},
        {"0001.000e-130", zeros("0.", 129, "1")},
        {"-0001.000e-130", zeros("-0.", 129, "1")},
        /* ScyllaDB's test_number_precision_allowed */
        {"3.1415926535897932384626433832795028841", "3.1415926535897932384626433832795028841"},
        {"314159265358979323846.26433832795028841", "314159265358979323846.26433832795028841"},
        {"31415926535897932384626433832795028841e30", cat("31415926535897932384626433832795028841", rep('0', 30))},
    };
    (void)state;
    run_parse_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* The representation itself: one per value, coefficient without trailing zeros. */
static void test_parse_fields(void **state)
{
    store_num_t n;
    (void)state;

    n = num("1.50");
    assert_int_equal(n.sign, 1);
    assert_true(n.coef == 15);
    assert_int_equal(n.exp, -1);
    n = num("-1e3");
    assert_int_equal(n.sign, -1);
    assert_true(n.coef == 1);
    assert_int_equal(n.exp, 3);
    n = num("1000");
    assert_true(n.coef == 1);
    assert_int_equal(n.exp, 3);
    n = num("1001");
    assert_true(n.coef == 1001);
    assert_int_equal(n.exp, 0);
    n = num("0.00100");
    assert_true(n.coef == 1);
    assert_int_equal(n.exp, -3);
    n = num("-0.0");
    assert_int_equal(n.sign, 0);
    assert_true(n.coef == 0);
    assert_int_equal(n.exp, 0);
    n = num("1e-130");
    assert_true(n.coef == 1);
    assert_int_equal(n.exp, -130);
    n = num("1.2345678901234567890123456789012345678e-130"); /* the smallest exponent there is */
    assert_int_equal(n.exp, -167);
    n = num(MAX_TEXT);
    assert_true(n.coef == (u128)10000000000000000000u * 10000000000000000000u - 1);
    assert_int_equal(n.exp, 88);

    /* The length bounds the text: "123" read as 2 bytes is 12, and the byte after is never read. */
    assert_int_equal(store_num_parse("123", 2, &n), STORE_NUM_OK);
    assert_true(n.coef == 12);
    assert_int_equal(store_num_parse("1.5e3", 3, &n), STORE_NUM_OK);
    assert_true(n.coef == 15 && n.exp == -1);
    assert_int_equal(store_num_parse(NULL, 0, &n), STORE_NUM_ESYNTAX);
}

static void test_parse_syntax(void **state)
{
    const parse_case_t cases[] = {
        {"", SYNTAX},
        {"-", SYNTAX},
        {"+", SYNTAX},
        {".", SYNTAX},
        {"-.", SYNTAX},
        {"+.", SYNTAX},
        {"1e", SYNTAX},
        {"1E", SYNTAX},
        {"e1", SYNTAX},
        {"E1", SYNTAX},
        {"e", SYNTAX},
        {".e1", SYNTAX},
        {"-e1", SYNTAX},
        {"1.2.3", SYNTAX},
        {"1..", SYNTAX},
        {"..1", SYNTAX},
        {" 1", SYNTAX},
        {"1 ", SYNTAX},
        {"\t1", SYNTAX},
        {"1\n", SYNTAX},
        {"1 e1", SYNTAX},
        {"1e 1", SYNTAX},
        {"0x10", SYNTAX},
        {"0b1", SYNTAX},
        {"NaN", SYNTAX},
        {"nan", SYNTAX},
        {"-NaN", SYNTAX},
        {"Infinity", SYNTAX},
        {"-Infinity", SYNTAX},
        {"inf", SYNTAX},
        {"--1", SYNTAX},
        {"++1", SYNTAX},
        {"+-1", SYNTAX},
        {"-+1", SYNTAX},
        {"1e+", SYNTAX},
        {"1e-", SYNTAX},
        {"1e+-1", SYNTAX},
        {"1e--1", SYNTAX},
        {"1e1.5", SYNTAX},
        {"1e1e1", SYNTAX},
        {"1ee1", SYNTAX},
        {"1.e", SYNTAX},
        {"1,5", SYNTAX},
        {"1_000", SYNTAX},
        {"dog", SYNTAX},
        {"-dog", SYNTAX},
        {"1f", SYNTAX},
        {"1d", SYNTAX},
        {"1L", SYNTAX},
        {"1-", SYNTAX},
        {"1+1", SYNTAX},
        {"(1)", SYNTAX},
        {"\xd9\xa1", SYNTAX},
        {"\xef\xbc\x91", SYNTAX},                               /* Arabic, fullwidth 1 */
        {"1e999999999999x", SYNTAX},                            /* syntax before range */
        {"12345678901234567890123456789012345678901 ", SYNTAX}, /* syntax before precision */
    };
    store_num_t n;
    (void)state;

    run_parse_cases(cases, sizeof(cases) / sizeof(cases[0]));
    /* A NUL inside the text is a character like any other, not its end. */
    assert_int_equal(store_num_parse("1\0", 2, &n), STORE_NUM_ESYNTAX);
    assert_int_equal(store_num_parse("1\0"
                                     "5",
                                     3, &n),
                     STORE_NUM_ESYNTAX);
    assert_int_equal(store_num_parse("\0", 1, &n), STORE_NUM_ESYNTAX);
}

static void test_parse_precision(void **state)
{
    const parse_case_t cases[] = {
        {DIGITS38, DIGITS38},
        {cat(DIGITS38, "9"), PRECISION},
        {"123456789012345678901234567890123456789", PRECISION}, /* dynalite (DynamoDB) */
        {"-1.23456789012345678901234567890123456789", PRECISION},
        {cat("-", DIGITS38), cat("-", DIGITS38)},
        /* zeros between significant digits count, leading and trailing ones do not */
        {zeros("1", 36, "1"), zeros("1", 36, "1")},
        {zeros("1", 37, "1"), PRECISION},
        {zeros("1.", 36, "1"), zeros("1.", 36, "1")},
        {zeros("1.", 38, "1"), PRECISION}, /* 40 significant digits */
        {cat("1", rep('0', 100)), cat("1", rep('0', 100))},
        {cat(DIGITS38, rep('0', 80)), cat(DIGITS38, rep('0', 80))},
        {cat(cat(rep('0', 80), DIGITS38), rep('0', 80)), cat(DIGITS38, rep('0', 80))},
        {cat(cat("0.", rep('0', 50)), DIGITS38), cat(cat("0.", rep('0', 50)), DIGITS38)},
        {cat(cat("0.", rep('0', 50)), cat(DIGITS38, rep('0', 60))), cat(cat("0.", rep('0', 50)), DIGITS38)},
        {cat(DIGITS38, "000000e-6"), DIGITS38},
        {cat(NINES38, ".0000000"), NINES38},
        {cat(NINES38, ".0000001"), PRECISION},
        /* ScyllaDB's test_number_precision_not_allowed */
        {"3.14159265358979323846264338327950288419", PRECISION},
        {"314159265358979323846.264338327950288419", PRECISION},
        {"314159265358979323846264338327950288419e30", PRECISION},
    };
    (void)state;
    run_parse_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_parse_range(void **state)
{
    const parse_case_t cases[] = {
        /* the top: 9.99...E+125 is the largest, anything reaching 10^126 overflows */
        {"1e125", cat("1", rep('0', 125))},
        {MAX_TEXT, cat(NINES38, rep('0', 88))},
        {cat("-", MAX_TEXT), cat(cat("-", NINES38), rep('0', 88))},
        {"9.99999999e125", cat("999999999", rep('0', 117))},
        {cat(NINES38, "e88"), cat(NINES38, rep('0', 88))},
        {cat("1", rep('0', 125)), cat("1", rep('0', 125))},
        {cat("1", rep('0', 126)), OVERFLOW},
        {"1e126", OVERFLOW},
        {"-1e126", OVERFLOW},
        {"10e125", OVERFLOW},
        {"11e125", OVERFLOW}, /* ScyllaDB */
        {cat(NINES38, "e89"), OVERFLOW},
        {"0.1e127", OVERFLOW},
        {"0.01e127", cat("1", rep('0', 125))},
        {zeros("0.", 50, "1e176"), cat("1", rep('0', 125))},
        /* the bottom: 1E-130 is the smallest */
        {"1e-130", zeros("0.", 129, "1")},
        {"-1e-130", zeros("-0.", 129, "1")},
        {"10e-131", zeros("0.", 129, "1")},
        {zeros("0.", 129, "1"), zeros("0.", 129, "1")},
        {zeros("0.", 130, "1"), UNDERFLOW},
        {"1e-131", UNDERFLOW},
        {"-1e-131", UNDERFLOW},
        {"0.9e-130", UNDERFLOW}, /* ScyllaDB */
        {"9.9999999999999999999999999999999999999e-131", UNDERFLOW},
        {"1.2345678901234567890123456789012345678e-130", cat("0.", cat(rep('0', 129), "12345678901234567890123456789012345678"))},
        {cat(rep('0', 300), "1e-130"), zeros("0.", 129, "1")},
    };
    (void)state;
    run_parse_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* Exponents far outside int32 (and int64) must neither wrap nor be read as something in range. */
static void test_parse_huge_exponents(void **state)
{
    const parse_case_t cases[] = {
        {"1e999999999999", OVERFLOW},
        {"1e-999999999999", UNDERFLOW},
        {"-1e999999999999", OVERFLOW},
        {"1e2147483647", OVERFLOW},
        {"1e2147483648", OVERFLOW}, /* INT32_MAX + 1: wraps to INT32_MIN in a naive int32 parser */
        {"1e4294967296", OVERFLOW}, /* 2^32: wraps to 0 */
        {"1e4294967297", OVERFLOW}, /* 2^32 + 1: wraps to 1 */
        {"1e-2147483648", UNDERFLOW},
        {"1e-2147483649", UNDERFLOW},
        {"1e-4294967296", UNDERFLOW},
        {"1e18446744073709551616", OVERFLOW}, /* 2^64 */
        {"1e-18446744073709551617", UNDERFLOW},
        {cat("1e", rep('9', 1000)), OVERFLOW},
        {cat("1e-", rep('9', 1000)), UNDERFLOW},
        {"0e99999999999", "0"},
        {"0e-99999999999", "0"},
        {cat("0e", rep('9', 1000)), "0"},
        {"-1e+0000000000000000000000000000005", "-100000"},
        /* a long mantissa moves the point as far as the exponent does */
        {cat(cat("0.", rep('0', 1000)), "1e1001"), "1"},
        {cat(cat("0.", rep('0', 1000)), "1e1000"), "0.1"},
        {cat("1", cat(rep('0', 1000), "e-1000")), "1"},
        {cat("1", cat(rep('0', 1000), "e-875")), cat("1", rep('0', 125))},
        {cat("1", cat(rep('0', 1000), "e-874")), OVERFLOW},
        {cat(cat("0.", rep('0', 1000)), "1e871"), zeros("0.", 129, "1")},
        {cat(cat("0.", rep('0', 1000)), "1e870"), UNDERFLOW},
    };
    (void)state;
    run_parse_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* Range errors come before the digit count, as dynalite checks them (DynamoDB agrees where both were tested). */
static void test_parse_error_order(void **state)
{
    const parse_case_t cases[] = {
        {"1234567890123456789012345678901234567890e200", OVERFLOW},
        {"-1234567890123456789012345678901234567890e200", OVERFLOW},
        {"1234567890123456789012345678901234567890e-300", UNDERFLOW},
        {"1234567890123456789012345678901234567890e-100", PRECISION},
        {cat(cat("1.", rep('0', 38)), "1e126"), OVERFLOW},
        {cat(cat("1.", rep('0', 38)), "1e125"), PRECISION},
        {cat(cat("1.", rep('0', 38)), "1e-131"), UNDERFLOW},
        {cat(cat("1.", rep('0', 38)), "1e-130"), PRECISION},
    };
    (void)state;
    run_parse_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* ---- formatting ---- */

static void test_format(void **state)
{
    char buf[STORE_NUM_TEXT_MAX];
    store_num_t n;
    const char *longest;
    (void)state;

    n = (store_num_t){0, 0, 0};
    assert_int_equal(store_num_format(&n, buf), 1);
    assert_string_equal(buf, "0");
    n = (store_num_t){1, 0, 15};
    store_num_format(&n, buf);
    assert_string_equal(buf, "15");
    n = (store_num_t){1, -1, 15};
    store_num_format(&n, buf);
    assert_string_equal(buf, "1.5");
    n = (store_num_t){-1, -2, 15};
    store_num_format(&n, buf);
    assert_string_equal(buf, "-0.15");
    n = (store_num_t){-1, -3, 15};
    store_num_format(&n, buf);
    assert_string_equal(buf, "-0.015");
    n = (store_num_t){1, 2, 15};
    store_num_format(&n, buf);
    assert_string_equal(buf, "1500");
    n = (store_num_t){1, -3, 1};
    store_num_format(&n, buf);
    assert_string_equal(buf, "0.001");

    /* The longest texts: a 38-digit negative at the bottom of the range, and the largest negative integer. */
    n = num("-1.2345678901234567890123456789012345678e-130");
    longest = cat("-0.", cat(rep('0', 129), "12345678901234567890123456789012345678"));
    assert_int_equal(store_num_format(&n, buf), strlen(longest));
    assert_string_equal(buf, longest);
    assert_int_equal(strlen(longest), 170);
    assert_true(strlen(longest) < STORE_NUM_TEXT_MAX);
    n = num(cat("-", MAX_TEXT));
    assert_int_equal(store_num_format(&n, buf), 127);
    assert_string_equal(buf, cat(cat("-", NINES38), rep('0', 88)));
    /* Coefficients around the 10^19 split inside the formatter. */
    n = num("10000000000000000001");
    store_num_format(&n, buf);
    assert_string_equal(buf, "10000000000000000001");
    n = num("9999999999999999999");
    store_num_format(&n, buf);
    assert_string_equal(buf, "9999999999999999999");
    n = num("1.0000000000000000001");
    store_num_format(&n, buf);
    assert_string_equal(buf, "1.0000000000000000001");
    n = num("10000000000000000000000000000000000001");
    store_num_format(&n, buf);
    assert_string_equal(buf, "10000000000000000000000000000000000001");
}

/* Texts DynamoDB would send back parse to the same number and format to themselves. */
static void test_format_round_trip(void **state)
{
    const char *texts[] = {
        "0",
        "1",
        "-1",
        "0.5",
        "-0.015",
        "1000",
        "1001",
        "123.456",
        DIGITS38,
        "-1.2345678901234567890123456789012345678",
        "0.00000000000000000000000000000000000000000000000001",
        "10000000000000000000000000000000000000000000000000",
        cat(NINES38, rep('0', 88)),
        zeros("0.", 129, "1"),
        cat("-0.", cat(rep('0', 129), DIGITS38)),
        cat("0.", cat(rep('0', 20), "1001")),
    };
    char buf[STORE_NUM_TEXT_MAX];
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        store_num_t a = num(texts[i]), b;
        size_t len = store_num_format(&a, buf);
        assert_string_equal(buf, texts[i]);
        assert_int_equal(store_num_parse(buf, len, &b), STORE_NUM_OK);
        assert_true(num_eq(&a, &b));
    }
}

/* ---- comparison ---- */

static void test_cmp(void **state)
{
    const struct {
        const char *a, *b;
        int want;
    } cases[] = {
        {"1", "2", -1},
        {"2", "1", 1},
        {"-1", "1", -1},
        {"0", "-0", 0},
        {"0", "0.000", 0},
        {"1.5", "1.50", 0},
        {"1e3", "1000", 0},
        {"123", "1.23e2", 0},
        {"-2", "-1", -1},
        {"0.1", "0.09", 1},
        {"10", "9.99", 1},
        {"100", "99", 1},
        {"1.2", "1.23", -1},
        {"-1.2", "-1.23", 1},
        {"1.23e2", "1.24e2", -1},
        {"1e-130", "0", 1},
        {"-1e-130", "0", -1},
        {"-1e-130", "1e-130", -1},
        {MAX_TEXT, "1e125", 1},
        {cat("-", MAX_TEXT), "-1e125", -1},
        {cat("-", MAX_TEXT), "1e-130", -1},
        {"1.2345678901234567890123456789012345678", "1.2345678901234567890123456789012345679", -1},
        {"1.2345678901234567890123456789012345678", "1.234567890123456789012345678901234567", 1},
        {"9", "10", -1},
        {cat("0.", NINES38), "1", -1},
        {"12345678901234567890123456789012345678e88", "1.2345678901234567890123456789012345678e125", 0},
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        store_num_t a = num(cases[i].a), b = num(cases[i].b);
        int got = store_num_cmp(&a, &b), rev = store_num_cmp(&b, &a);
        if (got != cases[i].want || rev != -cases[i].want)
            fail_msg("cmp(%s, %s) = %d / %d, want %d", cases[i].a, cases[i].b, got, rev, cases[i].want);
    }
}

/* ---- addition and subtraction ---- */

typedef struct arith_case {
    const char *a, *b, *want;
} arith_case_t;

static void run_arith(const arith_case_t *cases, size_t n, int sub)
{
    char buf[STORE_NUM_TEXT_MAX];
    size_t i;

    for (i = 0; i < n; i++) {
        store_num_t a = num(cases[i].a), b = num(cases[i].b), r = {7, 7, 7};
        store_num_err_t err = sub ? store_num_sub(&a, &b, &r) : store_num_add(&a, &b, &r);
        const char *got = outcome(err, &r, buf);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("%s %s %s = %s, want %s", cases[i].a, sub ? "-" : "+", cases[i].b, got, cases[i].want);
        if (err == STORE_NUM_OK)
            check_normalized(&r);
        else
            assert_true(r.sign == 7 && r.exp == 7 && r.coef == 7);
    }
}

static void test_add(void **state)
{
    const arith_case_t cases[] = {
        {"1", "1", "2"},
        {"0", "0", "0"},
        {"5", "0", "5"},
        {"0", "-5", "-5"},
        {"0.5", "0.5", "1"},
        {"0.001", "1000", "1000.001"},
        {"-0.001", "-1000", "-1000.001"},
        {"1", "10000000000000000000000", "10000000000000000000001"}, /* ScyllaDB */
        /* carries */
        {NINES38, "1", cat("1", rep('0', 38))},          /* 1E+38: one significant digit */
        {cat("0.", NINES38), zeros("0.", 37, "1"), "1"}, /* 38 nines + 1E-38 */
        {"50000000000000000000000000000000000000", "50000000000000000000000000000000000000", cat("1", rep('0', 38))},
        {"999.999", "0.001", "1000"},
        {"1e125", "1e125", cat("2", rep('0', 125))},
        {"1e-130", "1e-130", zeros("0.", 129, "2")},
        /* signs and cancellation */
        {"1.5", "-1.5", "0"},
        {"-1", "1", "0"},
        {"123.45", "-23.45", "100"},
        {"-123.45", "23.45", "-100"},
        {"1", "-2", "-1"},
        {"-1", "2", "1"},
        {cat("-", MAX_TEXT), MAX_TEXT, "0"},
        {"1.2345678901234567890123456789012345678e125", "-1.2345678901234567890123456789012345677e125", cat("1", rep('0', 88))},
        {DIGITS38, "-12345678901234567890123456789012345677", "1"},
        /* precision: the exact result needs more than 38 digits */
        {"1", "1e-38", PRECISION},
        {"1", "1e-37", zeros("1.", 36, "1")},
        {NINES38, NINES38, PRECISION},
        {"1e50", "1", PRECISION}, /* ScyllaDB (DynamoDB words it as an overflow) */
        {"9e125", "1e-130", PRECISION},
        {"1e125", "-1e-130", PRECISION},
        {"1e-130", "1e125", PRECISION},
        {DIGITS38, "0.1", PRECISION},
        /* range */
        {MAX_TEXT, MAX_TEXT, OVERFLOW},
        {"9e125", "9e125", OVERFLOW}, /* ScyllaDB */
        {MAX_TEXT, "1e88", OVERFLOW}, /* exactly 10^126 */
        /* Digits spanning 76 positions with the carry, the widest sum that can still overflow rather than only need
         * too many digits: the overflow is found exactly (it is checked before the digit count). */
        {MAX_TEXT, zeros("1.", 36, "1e88"), OVERFLOW},
        {cat("-", MAX_TEXT), zeros("-1.", 36, "1e88"), OVERFLOW},
        {MAX_TEXT, zeros("-1.", 36, "1e88"), PRECISION},
        /* 78 positions and more: a gap between the operands, always too many digits */
        {MAX_TEXT, "1e49", PRECISION},
        {MAX_TEXT, "-1e49", PRECISION},
        {cat("-", MAX_TEXT), "-1e-130", PRECISION},
        {cat("-", MAX_TEXT), "-1e88", OVERFLOW},
        {"9.9999999999999999999999999999999999998e125", "1e88", cat(NINES38, rep('0', 88))},
        {"1.1e-130", "-1e-130", UNDERFLOW},
        {"-1.1e-130", "1e-130", UNDERFLOW},
        {"2e-130", "-1e-130", zeros("0.", 129, "1")},
        {zeros("1.", 36, "1e-93"), "-1e-93", zeros("0.", 129, "1")}, /* 38 digits down to 1E-130 */
        {zeros("1.", 36, "1e-92"), "-1e-92", zeros("0.", 128, "1")},
    };
    (void)state;
    run_arith(cases, sizeof(cases) / sizeof(cases[0]), 0);
}

static void test_sub(void **state)
{
    const arith_case_t cases[] = {
        {"1", "2", "-1"},
        {"-1", "2", "-3"},
        {"-1", "-1", "0"},
        {"0", "5", "-5"},
        {"0", "-5", "5"},
        {"5", "0", "5"},
        {"0", "0", "0"},
        {"10000000000000000000000", "1", "9999999999999999999999"}, /* ScyllaDB */
        /* borrows */
        {"1e38", "1", NINES38},
        {"1e39", "1", PRECISION},
        {"1000000", "0.000001", "999999.999999"},
        {"1", zeros("0.", 37, "1"), cat("0.", NINES38)},
        {"1", zeros("0.", 38, "1"), PRECISION},
        {"100", "0.01", "99.99"},
        {"1.001", "1", "0.001"},
        {DIGITS38, "12345678901234567890123456789012345677", "1"},
        {"-1e-130", "-1e-130", "0"},
        /* signs */
        {"-5", "-7", "2"},
        {"-7", "-5", "-2"},
        {"5", "-7", "12"},
        /* precision and range */
        {"1e50", "1", PRECISION},
        {"9e125", "-9e125", OVERFLOW}, /* ScyllaDB */
        {cat("-", MAX_TEXT), "1e88", OVERFLOW},
        {"1.1e-130", "1e-130", UNDERFLOW},
        {"2e-130", "1e-130", zeros("0.", 129, "1")},
        {"1e125", "1e-130", PRECISION},
    };
    (void)state;
    run_arith(cases, sizeof(cases) / sizeof(cases[0]), 1);
}

/* out may be either operand. */
static void test_arith_aliasing(void **state)
{
    char buf[STORE_NUM_TEXT_MAX];
    store_num_t a = num("1.5"), b = num("2.25");
    (void)state;

    assert_int_equal(store_num_add(&a, &b, &a), STORE_NUM_OK);
    store_num_format(&a, buf);
    assert_string_equal(buf, "3.75");
    assert_int_equal(store_num_sub(&a, &b, &b), STORE_NUM_OK);
    store_num_format(&b, buf);
    assert_string_equal(buf, "1.5");
    assert_int_equal(store_num_sub(&a, &a, &a), STORE_NUM_OK);
    assert_int_equal(a.sign, 0);
    b = num("-7");
    assert_int_equal(store_num_add(&b, &b, &b), STORE_NUM_OK);
    store_num_format(&b, buf);
    assert_string_equal(buf, "-14");
    a = num(MAX_TEXT);
    b = a;
    assert_int_equal(store_num_add(&a, &a, &a), STORE_NUM_EOVERFLOW);
    assert_true(num_eq(&a, &b)); /* unchanged on error */
}

/* ---- keys ---- */

static void expect_key(const char *text, const uint8_t *want, size_t wlen)
{
    uint8_t key[STORE_NUM_KEY_MAX];
    store_num_t n = num(text), back;
    size_t len = store_num_key(&n, key);

    if (len != wlen || memcmp(key, want, wlen) != 0)
        fail_msg("key(%s) has the wrong bytes (length %zu, want %zu)", text, len, wlen);
    assert_int_equal(store_num_from_key(key, len, &back), 0);
    assert_true(num_eq(&n, &back));
}

static void test_key_bytes(void **state)
{
    uint8_t max[21] = {0x03, 0xFF}, negmax[22] = {0x01, 0x00};
    int i;
    (void)state;

    expect_key("0", (const uint8_t[]){0x02}, 1);
    expect_key("1", (const uint8_t[]){0x03, 0x82, 11}, 3);        /* exponent 0 + 130; the pair "10" + 1 */
    expect_key("-1", (const uint8_t[]){0x01, 0x7D, 90, 0xFF}, 4); /* 255 - 130; 100 - 10; the terminator */
    expect_key("1.5", (const uint8_t[]){0x03, 0x82, 16}, 3);
    expect_key("15", (const uint8_t[]){0x03, 0x83, 16}, 3);
    expect_key("123", (const uint8_t[]){0x03, 0x84, 13, 31}, 4);
    expect_key("1001", (const uint8_t[]){0x03, 0x85, 11, 2}, 4);
    expect_key("-123", (const uint8_t[]){0x01, 0x7B, 88, 70, 0xFF}, 5);
    expect_key("1e-130", (const uint8_t[]){0x03, 0x00, 11}, 3);
    expect_key("-1e-130", (const uint8_t[]){0x01, 0xFF, 90, 0xFF}, 4);
    for (i = 0; i < 19; i++) {
        max[2 + i] = 100;  /* "99" + 1 */
        negmax[2 + i] = 1; /* 100 - "99" */
    }
    negmax[21] = 0xFF;
    expect_key(MAX_TEXT, max, sizeof(max));
    expect_key(cat("-", MAX_TEXT), negmax, sizeof(negmax)); /* STORE_NUM_KEY_MAX bytes */
    assert_int_equal(sizeof(negmax), STORE_NUM_KEY_MAX);
}

/* Numbers in increasing order: their keys must increase strictly under memcmp. */
static void test_key_order(void **state)
{
    const char *sorted[] = {
        cat("-", MAX_TEXT),
        "-1e125",
        "-123.45",
        "-100",
        "-99.99",
        "-10",
        "-1.23",
        "-1.2",
        zeros("-1.", 36, "1"),
        "-1",
        cat("-0.", NINES38),
        "-0.5",
        "-1.2345678901234567890123456789012345678e-130",
        "-1e-130",
        "0",
        "1e-130",
        zeros("1.", 36, "1e-130"),
        "1.2e-129",
        "0.5",
        cat("0.", NINES38),
        "1",
        zeros("1.", 36, "1"),
        "1.2",
        "1.23",
        "9.99",
        "10",
        "10.01",
        "99",
        "100",
        "101",
        "1e125",
        MAX_TEXT,
    };
    size_t i, n = sizeof(sorted) / sizeof(sorted[0]);
    (void)state;

    for (i = 0; i + 1 < n; i++) {
        uint8_t ka[STORE_NUM_KEY_MAX], kb[STORE_NUM_KEY_MAX];
        store_num_t a = num(sorted[i]), b = num(sorted[i + 1]);
        size_t la = store_num_key(&a, ka), lb = store_num_key(&b, kb);
        assert_int_equal(store_num_cmp(&a, &b), -1);
        if (key_cmp(ka, la, kb, lb) != -1)
            fail_msg("key(%s) does not sort before key(%s)", sorted[i], sorted[i + 1]);
    }
}

static void test_key_malformed(void **state)
{
    const struct {
        const char *why;
        uint8_t b[24];
        size_t len;
    } bad[] = {
        {"empty", {0}, 0},
        {"unknown sign byte 0x00", {0x00}, 1},
        {"unknown sign byte 0x04", {0x04, 0x82, 11}, 3},
        {"unknown sign byte 0xFF", {0xFF}, 1},
        {"zero with more bytes", {0x02, 0x00}, 2},
        {"positive without exponent", {0x03}, 1},
        {"positive without digits", {0x03, 0x82}, 2},
        {"digit byte 0", {0x03, 0x82, 0}, 3},
        {"digit byte 101", {0x03, 0x82, 101}, 3},
        {"digit byte 0xFF", {0x03, 0x82, 0xFF}, 3},
        {"leading zero pair", {0x03, 0x82, 1}, 3},
        {"leading zero digit", {0x03, 0x82, 5}, 3},
        {"trailing 00 pair", {0x03, 0x82, 11, 1}, 4},
        {"20 pairs (40 digits)", {0x03, 0x82, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12}, 22},
        {"negative without terminator", {0x01, 0x7D, 90}, 3},
        {"negative, wrong terminator", {0x01, 0x7D, 90, 0xFE}, 4},
        {"negative without digits", {0x01, 0x7D, 0xFF}, 3},
        {"negative, digit byte 0", {0x01, 0x7D, 0, 0xFF}, 4},
        {"negative, digit byte 101", {0x01, 0x7D, 101, 0xFF}, 4},
        {"negative, two terminators", {0x01, 0x7D, 90, 0xFF, 0xFF}, 5},
        {"negative, leading zero pair", {0x01, 0x7D, 100, 0xFF}, 4},
        {"negative, trailing 00 pair", {0x01, 0x7D, 90, 100, 0xFF}, 5},
        {"negative, 20 pairs",
         {0x01, 0x7D, 88, 88, 88, 88, 88, 88, 88, 88, 88, 88, 88, 88, 88, 88, 88, 88, 88, 88, 88, 88, 0xFF},
         23},
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        store_num_t n = {7, 7, 7};
        if (store_num_from_key(bad[i].b, bad[i].len, &n) != -1)
            fail_msg("a malformed key was accepted: %s", bad[i].why);
    }
}

/* ---- randomized properties ---- */

#define SEED 0x5eed2024decafbadULL
#define NGEN 5000
#define NPAIRS 20000

static uint64_t rng_state;

static uint64_t rnd(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int rnd_in(int lo, int hi) /* [lo, hi] */
{
    return lo + (int)(rnd() % (uint64_t)(hi - lo + 1));
}

/* A generated number, kept as its digits so the reference below never uses decimal.c. */
typedef struct gen {
    int sign;   /* -1, 0, 1 */
    int nd;     /* significant digits */
    char d[40]; /* the digits, first and last non-zero */
    int adj;    /* exponent of the first digit */
    store_num_t n;
} gen_t;

static char rnd_digit(int mode)
{
    switch (mode) {
    case 0:
        return (char)('0' + rnd_in(0, 9));
    case 1: /* mostly nines: carries */
        return rnd_in(0, 9) < 8 ? '9' : (char)('0' + rnd_in(0, 9));
    case 2: /* mostly zeros: borrows, and zeros between significant digits */
        return rnd_in(0, 9) < 8 ? '0' : (char)('0' + rnd_in(0, 9));
    default: /* 0 and 9 */
        return rnd_in(0, 1) ? '9' : '0';
    }
}

/* Fills g->n from the digits, independently of the parser. */
static void gen_finish(gen_t *g)
{
    u128 c = 0;
    int i;

    if (g->sign == 0) {
        g->nd = 0;
        g->adj = 0;
        g->n = (store_num_t){0, 0, 0};
        return;
    }
    for (i = 0; i < g->nd; i++)
        c = c * 10 + (unsigned)(g->d[i] - '0');
    g->n.sign = g->sign;
    g->n.coef = c;
    g->n.exp = g->adj - g->nd + 1;
}

static void gen_digits(gen_t *g, int nd)
{
    int mode = rnd_in(0, 3), i;

    g->nd = nd;
    for (i = 0; i < nd; i++)
        g->d[i] = rnd_digit(mode);
    g->d[0] = (char)('1' + rnd_in(0, 8));
    if (nd > 1)
        g->d[nd - 1] = (char)('1' + rnd_in(0, 8));
    g->d[nd] = '\0';
}

static void gen_random(gen_t *g)
{
    int r = rnd_in(0, 99), nd;

    memset(g, 0, sizeof(*g));
    if (r < 3) {
        g->sign = 0;
        gen_finish(g);
        return;
    }
    g->sign = rnd_in(0, 1) ? 1 : -1;
    r = rnd_in(0, 9);
    nd = r < 3 ? 38 : r < 6 ? rnd_in(1, 5) : rnd_in(1, 38);
    gen_digits(g, nd);
    r = rnd_in(0, 9);
    if (r < 4)
        g->adj = rnd_in(STORE_NUM_MIN_EXP, STORE_NUM_MAX_EXP);
    else if (r < 7)
        g->adj = rnd_in(-5, 40);
    else if (r < 8)
        g->adj = rnd_in(STORE_NUM_MIN_EXP, STORE_NUM_MIN_EXP + 3);
    else
        g->adj = rnd_in(STORE_NUM_MAX_EXP - 3, STORE_NUM_MAX_EXP);
    gen_finish(g);
}

/* A second operand near the first, so sums overlap, carry, borrow and cancel often. */
static void gen_near(gen_t *g, const gen_t *a)
{
    int r = rnd_in(0, 9);

    if (a->sign == 0 || r == 0) {
        gen_random(g);
        return;
    }
    *g = *a;
    if (r == 1) { /* the same value or its opposite */
        if (rnd_in(0, 1))
            g->sign = -g->sign;
        gen_finish(g);
        return;
    }
    if (r == 2) { /* the same digits, one of them changed */
        int i = rnd_in(0, g->nd - 1);
        g->d[i] = (char)('0' + rnd_in(i == 0 || i == g->nd - 1 ? 1 : 0, 9));
    } else {
        gen_digits(g, rnd_in(1, 38));
        g->adj = a->adj + rnd_in(-40, 40);
        if (g->adj > STORE_NUM_MAX_EXP)
            g->adj = STORE_NUM_MAX_EXP;
        if (g->adj < STORE_NUM_MIN_EXP)
            g->adj = STORE_NUM_MIN_EXP;
    }
    if (rnd_in(0, 1))
        g->sign = -g->sign;
    gen_finish(g);
}

/* Writes g in a random notation: sign, leading and trailing zeros, any point position, an exponent or none. */
static size_t gen_text(const gen_t *g, char *buf)
{
    char s[64];
    int lead = rnd_in(0, 3), trail = rnd_in(0, 3), m = 0, q, e, i;
    size_t k = 0;

    if (g->sign < 0)
        buf[k++] = '-';
    else if (rnd_in(0, 3) == 0)
        buf[k++] = '+';
    if (g->sign == 0) {
        lead = 1 + lead;
        trail = 0;
    }
    for (i = 0; i < lead; i++)
        s[m++] = '0';
    for (i = 0; i < g->nd; i++)
        s[m++] = g->d[i];
    for (i = 0; i < trail; i++)
        s[m++] = '0';
    q = rnd_in(0, m); /* digits before the point */
    /* The digit at index i weighs 10^(q - 1 - i + e): the first significant one (index lead) must weigh 10^adj. */
    e = g->sign == 0 ? rnd_in(-300, 300) : g->adj - q + 1 + lead;
    for (i = 0; i < m; i++) {
        if (i == q)
            buf[k++] = '.';
        buf[k++] = s[i];
    }
    if (q == m && rnd_in(0, 3) == 0)
        buf[k++] = '.'; /* "5." */
    if (e != 0 || rnd_in(0, 3) == 0)
        k += (size_t)sprintf(buf + k, "%s%s%d", rnd_in(0, 1) ? "e" : "E", e >= 0 && rnd_in(0, 1) ? "+" : "", e);
    buf[k] = '\0';
    return k;
}

/* ---- the reference: one decimal digit per cell ---- */

#define REF_OFF 200
#define REF_N 400

typedef struct ref {
    int sign;
    signed char d[REF_N]; /* d[p + REF_OFF] is the digit of 10^p */
} ref_t;

static void ref_of(const gen_t *g, ref_t *r)
{
    int i;

    memset(r, 0, sizeof(*r));
    r->sign = g->sign;
    for (i = 0; i < g->nd; i++)
        r->d[g->adj - i + REF_OFF] = (signed char)(g->d[i] - '0');
}

/* Compares magnitudes from the top. */
static int ref_cmp_mag(const ref_t *a, const ref_t *b)
{
    int i;

    for (i = REF_N - 1; i >= 0; i--)
        if (a->d[i] != b->d[i])
            return a->d[i] < b->d[i] ? -1 : 1;
    return 0;
}

static int ref_cmp(const ref_t *a, const ref_t *b)
{
    int m;

    if (a->sign != b->sign)
        return a->sign < b->sign ? -1 : 1;
    m = ref_cmp_mag(a, b);
    return a->sign >= 0 ? m : -m;
}

/* r = a + bsign * |b|, schoolbook. */
static void ref_add(const ref_t *a, const ref_t *b, int bsign, ref_t *r)
{
    const ref_t *big = a, *small = b;
    int i, carry = 0, sign;

    memset(r, 0, sizeof(*r));
    if (bsign == 0) {
        *r = *a;
        return;
    }
    if (a->sign == 0) {
        *r = *b;
        r->sign = bsign;
        return;
    }
    if (a->sign == bsign) {
        for (i = 0; i < REF_N; i++) {
            int s = a->d[i] + b->d[i] + carry;
            r->d[i] = (signed char)(s % 10);
            carry = s / 10;
        }
        r->sign = a->sign;
        return;
    }
    if (ref_cmp_mag(a, b) < 0) {
        big = b;
        small = a;
        sign = bsign;
    } else {
        sign = a->sign;
    }
    for (i = 0; i < REF_N; i++) {
        int s = big->d[i] - small->d[i] - carry;
        carry = s < 0;
        r->d[i] = (signed char)(s < 0 ? s + 10 : s);
    }
    r->sign = ref_cmp_mag(a, b) == 0 ? 0 : sign;
}

/* The expected outcome of a reference value: its normalized text (built digit by digit) or the error. */
static const char *ref_outcome(const ref_t *r, char *buf)
{
    int hi = -1, lo = -1, p;
    size_t k = 0;

    for (p = REF_N - 1; p >= 0; p--)
        if (r->d[p] != 0) {
            if (hi < 0)
                hi = p;
            lo = p;
        }
    if (hi < 0)
        return "0";
    hi -= REF_OFF;
    lo -= REF_OFF;
    if (hi > STORE_NUM_MAX_EXP)
        return OVERFLOW;
    if (hi < STORE_NUM_MIN_EXP)
        return UNDERFLOW;
    if (hi - lo + 1 > STORE_NUM_DIGITS)
        return PRECISION;
    if (r->sign < 0)
        buf[k++] = '-';
    if (hi < 0) {
        buf[k++] = '0';
        buf[k++] = '.';
        for (p = -1; p > hi; p--)
            buf[k++] = '0';
    }
    for (p = hi; p >= lo || p >= 0; p--) {
        if (p == -1 && hi >= 0)
            buf[k++] = '.';
        buf[k++] = (char)('0' + r->d[p + REF_OFF]);
    }
    buf[k] = '\0';
    return buf;
}

static gen_t gens[NGEN];

static int cmp_gen(const void *a, const void *b)
{
    return store_num_cmp(&((const gen_t *)a)->n, &((const gen_t *)b)->n);
}

/* Any notation parses to the generated number; format is its normalized text and parses back; keys round-trip. */
static void test_random_parse_format_key(void **state)
{
    size_t i;
    (void)state;

    rng_state = SEED;
    for (i = 0; i < NGEN; i++) {
        char text[128], got[STORE_NUM_TEXT_MAX], want[STORE_NUM_TEXT_MAX];
        uint8_t key[STORE_NUM_KEY_MAX];
        store_num_t n, back;
        ref_t r;
        size_t len, klen;
        gen_t *g = &gens[i];

        gen_random(g);
        check_normalized(&g->n);
        len = gen_text(g, text);
        if (store_num_parse(text, len, &n) != STORE_NUM_OK || !num_eq(&n, &g->n))
            fail_msg("parse(\"%s\") is not the generated number %s", text, g->d);
        ref_of(g, &r);
        len = store_num_format(&n, got);
        assert_string_equal(got, ref_outcome(&r, want));
        assert_int_equal(store_num_parse(got, len, &back), STORE_NUM_OK);
        assert_true(num_eq(&n, &back));
        klen = store_num_key(&n, key);
        assert_true(klen >= 1 && klen <= STORE_NUM_KEY_MAX);
        assert_int_equal(store_num_from_key(key, klen, &back), 0);
        assert_true(num_eq(&n, &back));
    }
}

/* memcmp order of keys == store_num_cmp == the reference order, on random pairs and on the sorted sequence. */
static void test_random_order(void **state)
{
    size_t i;
    (void)state;

    rng_state = SEED ^ 1;
    for (i = 0; i < NGEN; i++)
        gen_random(&gens[i]);
    for (i = 0; i < NPAIRS; i++) {
        gen_t a = gens[rnd() % NGEN], b;
        uint8_t ka[STORE_NUM_KEY_MAX], kb[STORE_NUM_KEY_MAX];
        ref_t ra, rb;
        size_t la, lb;
        int c;

        if (i % 2)
            gen_near(&b, &a);
        else
            b = gens[rnd() % NGEN];
        ref_of(&a, &ra);
        ref_of(&b, &rb);
        c = store_num_cmp(&a.n, &b.n);
        la = store_num_key(&a.n, ka);
        lb = store_num_key(&b.n, kb);
        if (c != ref_cmp(&ra, &rb) || key_cmp(ka, la, kb, lb) != c || store_num_cmp(&b.n, &a.n) != -c)
            fail_msg("order of %s%s e%d and %s%s e%d: cmp %d, reference %d, keys %d", a.sign < 0 ? "-" : "", a.d, a.adj,
                     b.sign < 0 ? "-" : "", b.d, b.adj, c, ref_cmp(&ra, &rb), key_cmp(ka, la, kb, lb));
    }
    qsort(gens, NGEN, sizeof(gens[0]), cmp_gen);
    for (i = 0; i + 1 < NGEN; i++) {
        uint8_t ka[STORE_NUM_KEY_MAX], kb[STORE_NUM_KEY_MAX];
        size_t la = store_num_key(&gens[i].n, ka), lb = store_num_key(&gens[i + 1].n, kb);
        assert_int_equal(key_cmp(ka, la, kb, lb), store_num_cmp(&gens[i].n, &gens[i + 1].n));
        assert_true(key_cmp(ka, la, kb, lb) <= 0);
    }
}

/* add and sub against the reference, and their algebra: a + b == b + a, a - b == -(b - a), (a + b) - b == a. */
static void test_random_arith(void **state)
{
    size_t i, ok = 0, precision = 0, range = 0;
    (void)state;

    rng_state = SEED ^ 2;
    for (i = 0; i < NGEN; i++)
        gen_random(&gens[i]);
    for (i = 0; i < NPAIRS; i++) {
        gen_t a = gens[rnd() % NGEN], b;
        ref_t ra, rb, rr;
        store_num_t s, s2, d, d2, back;
        store_num_err_t es, es2, ed, ed2;
        char got[STORE_NUM_TEXT_MAX], want[STORE_NUM_TEXT_MAX];
        const char *w;

        gen_near(&b, &a);
        ref_of(&a, &ra);
        ref_of(&b, &rb);

        es = store_num_add(&a.n, &b.n, &s);
        ref_add(&ra, &rb, rb.sign, &rr);
        w = ref_outcome(&rr, want);
        if (strcmp(outcome(es, &s, got), w) != 0)
            fail_msg("%s%s e%d + %s%s e%d = %s, want %s", a.sign < 0 ? "-" : "", a.d, a.adj, b.sign < 0 ? "-" : "", b.d, b.adj, got,
                     w);
        ed = store_num_sub(&a.n, &b.n, &d);
        ref_add(&ra, &rb, -rb.sign, &rr);
        w = ref_outcome(&rr, want);
        if (strcmp(outcome(ed, &d, got), w) != 0)
            fail_msg("%s%s e%d - %s%s e%d = %s, want %s", a.sign < 0 ? "-" : "", a.d, a.adj, b.sign < 0 ? "-" : "", b.d, b.adj, got,
                     w);

        es2 = store_num_add(&b.n, &a.n, &s2);
        assert_int_equal(es2, es);
        ed2 = store_num_sub(&b.n, &a.n, &d2);
        assert_int_equal(ed2, ed);
        if (es == STORE_NUM_OK) {
            check_normalized(&s);
            assert_true(num_eq(&s, &s2));
            assert_int_equal(store_num_sub(&s, &b.n, &back), STORE_NUM_OK);
            assert_true(num_eq(&back, &a.n));
            ok++;
        } else if (es == STORE_NUM_EPRECISION) {
            precision++;
        } else {
            range++;
        }
        if (ed == STORE_NUM_OK) {
            check_normalized(&d);
            d2.sign = -d2.sign;
            assert_true(num_eq(&d, &d2));
        }
    }
    /* The generator must reach every outcome often enough for the comparison to mean something. */
    assert_true(ok > NPAIRS / 10);
    assert_true(precision > NPAIRS / 20);
    assert_true(range > 50);
}

/* Random mutations of valid keys: from_key either rejects them or accepts the one key of the number it returns. */
static void test_random_keys_canonical(void **state)
{
    size_t i, accepted = 0;
    (void)state;

    rng_state = SEED ^ 3;
    for (i = 0; i < 50000; i++) {
        gen_t g;
        uint8_t key[STORE_NUM_KEY_MAX + 2], again[STORE_NUM_KEY_MAX];
        store_num_t n;
        size_t len, len2;
        int r;

        gen_random(&g);
        len = store_num_key(&g.n, key);
        r = rnd_in(0, 3);
        if (r == 0)
            key[rnd() % len] = (uint8_t)rnd();
        else if (r == 1 && len > 1)
            len--;
        else if (r == 2)
            key[len++] = (uint8_t)rnd();
        else
            key[rnd() % len] ^= (uint8_t)(1u << rnd_in(0, 7));
        if (store_num_from_key(key, len, &n) != 0)
            continue;
        accepted++;
        check_normalized(&n);
        len2 = store_num_key(&n, again);
        assert_int_equal(len2, len);
        assert_memory_equal(again, key, len);
    }
    assert_true(accepted > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_strerror, arena_reset),
        cmocka_unit_test_setup(test_parse_valid, arena_reset),
        cmocka_unit_test_setup(test_parse_fields, arena_reset),
        cmocka_unit_test_setup(test_parse_syntax, arena_reset),
        cmocka_unit_test_setup(test_parse_precision, arena_reset),
        cmocka_unit_test_setup(test_parse_range, arena_reset),
        cmocka_unit_test_setup(test_parse_huge_exponents, arena_reset),
        cmocka_unit_test_setup(test_parse_error_order, arena_reset),
        cmocka_unit_test_setup(test_format, arena_reset),
        cmocka_unit_test_setup(test_format_round_trip, arena_reset),
        cmocka_unit_test_setup(test_cmp, arena_reset),
        cmocka_unit_test_setup(test_add, arena_reset),
        cmocka_unit_test_setup(test_sub, arena_reset),
        cmocka_unit_test_setup(test_arith_aliasing, arena_reset),
        cmocka_unit_test_setup(test_key_bytes, arena_reset),
        cmocka_unit_test_setup(test_key_order, arena_reset),
        cmocka_unit_test_setup(test_key_malformed, arena_reset),
        cmocka_unit_test_setup(test_random_parse_format_key, arena_reset),
        cmocka_unit_test_setup(test_random_order, arena_reset),
        cmocka_unit_test_setup(test_random_arith, arena_reset),
        cmocka_unit_test_setup(test_random_keys_canonical, arena_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
