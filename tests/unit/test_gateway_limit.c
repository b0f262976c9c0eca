/*
 * Unit tests of gateway/limit.c: token buckets (GCRA) and quota periods, with an injected clock (no sleeping).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include "gateway/gateway.h"

#define MS 1000000ull
#define SEC 1000000000ull
#define T0 (1764547200ull * SEC) /* 2025-12-01T00:00:00Z */

static gw_rate_t rate_of(uint64_t count, uint64_t per_ms, uint64_t burst)
{
    conf_rate_t c = {1, count, per_ms, burst};
    gw_rate_t r;
    gw_rate_init(&r, &c);
    return r;
}

static void test_rate_init(void **state)
{
    (void)state;
    gw_rate_t r = rate_of(100, 1000, 50);
    assert_int_equal(r.interval_ns, 10 * MS);
    assert_int_equal(r.tolerance_ns, 49 * 10 * MS);
    r = rate_of(5, 30000, 1);
    assert_int_equal(r.interval_ns, 6 * SEC);
    assert_int_equal(r.tolerance_ns, 0);
}

/* A full bucket admits exactly `burst` at once, then refuses with Retry-After one interval. */
static void test_burst_then_refuse(void **state)
{
    (void)state;
    gw_rate_t r = rate_of(100, 1000, 50);
    gw_bucket_t b = {0};
    gw_take_t t;

    for (int i = 0; i != 50; ++i) {
        gw_bucket_take(&b, &r, T0, &t);
        assert_true(t.allowed);
        assert_int_equal(t.remaining, 49 - i);
    }
    gw_bucket_take(&b, &r, T0, &t);
    assert_false(t.allowed);
    assert_int_equal(t.remaining, 0);
    assert_int_equal(t.retry_after_ns, 10 * MS);
    assert_int_equal(t.reset_ns, 500 * MS);
    /* one interval later exactly one more */
    gw_bucket_take(&b, &r, T0 + 10 * MS, &t);
    assert_true(t.allowed);
    assert_int_equal(t.remaining, 0);
    gw_bucket_take(&b, &r, T0 + 10 * MS, &t);
    assert_false(t.allowed);
    /* idle long enough: full again */
    gw_bucket_take(&b, &r, T0 + 10 * SEC, &t);
    assert_true(t.allowed);
    assert_int_equal(t.remaining, 49);
    assert_int_equal(t.reset_ns, 10 * MS);
}

/* Hammered every 1 ms for 3 s: admitted = burst + rate x elapsed (the token-bucket allowance), not one more or less. */
static void test_allowance_over_window(void **state)
{
    (void)state;
    gw_rate_t r = rate_of(100, 1000, 50);
    gw_bucket_t b = {0};
    gw_take_t t;
    uint64_t admitted = 0;

    for (uint64_t ms = 0; ms <= 3000; ++ms) {
        for (int k = 0; k != 3; ++k) {
            gw_bucket_take(&b, &r, T0 + ms * MS, &t);
            admitted += t.allowed;
        }
    }
    assert_int_equal(admitted, 50 + 300);
}

/* Requests at irregular times never beat the allowance over any window that starts full. */
static void test_never_above_allowance(void **state)
{
    (void)state;
    gw_rate_t r = rate_of(7, 1000, 3);
    gw_bucket_t b = {0};
    gw_take_t t;
    uint64_t now = T0, admitted = 0, seed = 42;

    for (int i = 0; i != 20000; ++i) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        now += (seed >> 33) % (40 * MS);
        gw_bucket_take(&b, &r, now, &t);
        admitted += t.allowed;
        uint64_t elapsed = now - T0;
        assert_true(admitted <= 3 + elapsed * 7 / SEC);
    }
    assert_true(admitted > 0);
}

/* Two threads taking from one bucket at one instant: exactly the burst, never more. */
typedef struct {
    gw_bucket_t *b;
    const gw_rate_t *r;
    atomic_ulong *admitted;
} race_t;

static void *race_main(void *p)
{
    race_t *rc = p;
    gw_take_t t;
    for (int i = 0; i != 200000; ++i) {
        gw_bucket_take(rc->b, rc->r, T0 + (uint64_t)(i / 1000) * MS, &t);
        if (t.allowed)
            atomic_fetch_add(rc->admitted, 1);
    }
    return NULL;
}

static void test_threads_exact(void **state)
{
    (void)state;
    gw_rate_t r = rate_of(1000, 1000, 100); /* one token per ms */
    gw_bucket_t b = {0};
    atomic_ulong admitted = 0;
    race_t rc = {&b, &r, &admitted};
    pthread_t th[2];

    for (int i = 0; i != 2; ++i)
        pthread_create(&th[i], NULL, race_main, &rc);
    for (int i = 0; i != 2; ++i)
        pthread_join(th[i], NULL);
    /* time runs over 0..199 ms in both threads; admitted <= 100 + 199 and each thread's ms steps refill it */
    assert_true(atomic_load(&admitted) <= 100 + 199 + 1);
    assert_true(atomic_load(&admitted) >= 200);
}

static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = s};
    return (int64_t)timegm(&tm);
}

static void test_period_bounds(void **state)
{
    (void)state;
    int64_t s, e;

    gw_period_bounds(CONF_PERIOD_DAY, utc(2026, 12, 1, 13, 5, 7), &s, &e);
    assert_int_equal(s, utc(2026, 12, 1, 0, 0, 0));
    assert_int_equal(e, utc(2026, 12, 2, 0, 0, 0));
    /* 2026-12-01 is a Tuesday: the week began on Monday 2026-11-30 */
    gw_period_bounds(CONF_PERIOD_WEEK, utc(2026, 12, 1, 13, 5, 7), &s, &e);
    assert_int_equal(s, utc(2026, 11, 30, 0, 0, 0));
    assert_int_equal(e, utc(2026, 12, 7, 0, 0, 0));
    /* a Monday at 00:00 starts its own week; a Sunday 23:59:59 is the week before */
    gw_period_bounds(CONF_PERIOD_WEEK, utc(2026, 11, 30, 0, 0, 0), &s, &e);
    assert_int_equal(s, utc(2026, 11, 30, 0, 0, 0));
    gw_period_bounds(CONF_PERIOD_WEEK, utc(2026, 11, 29, 23, 59, 59), &s, &e);
    assert_int_equal(s, utc(2026, 11, 23, 0, 0, 0));
    /* months: December rolls into January; February of a leap year has 29 days */
    gw_period_bounds(CONF_PERIOD_MONTH, utc(2026, 12, 31, 23, 59, 59), &s, &e);
    assert_int_equal(s, utc(2026, 12, 1, 0, 0, 0));
    assert_int_equal(e, utc(2027, 1, 1, 0, 0, 0));
    gw_period_bounds(CONF_PERIOD_MONTH, utc(2024, 2, 10, 0, 0, 0), &s, &e);
    assert_int_equal(s, utc(2024, 2, 1, 0, 0, 0));
    assert_int_equal(e, utc(2024, 3, 1, 0, 0, 0));
    assert_int_equal(e - s, 29 * 86400);
    gw_period_bounds(CONF_PERIOD_MONTH, utc(2100, 2, 28, 0, 0, 0), &s, &e);
    assert_int_equal(e - s, 28 * 86400);
    /* every day of 400 years: the month holds t and its neighbours are contiguous */
    for (int64_t t = utc(2000, 1, 1, 12, 0, 0); t < utc(2400, 1, 1, 0, 0, 0); t += 86400 * 5) {
        int64_t s2, e2;
        gw_period_bounds(CONF_PERIOD_MONTH, t, &s, &e);
        assert_true(s <= t && t < e);
        gw_period_bounds(CONF_PERIOD_MONTH, e, &s2, &e2);
        assert_int_equal(s2, e);
        assert_true(e - s >= 28 * 86400 && e - s <= 31 * 86400);
    }
}

static void test_quota(void **state)
{
    (void)state;
    gw_quota_t q = {0};
    gw_quota_take_t t;
    int64_t now = utc(2026, 12, 1, 23, 59, 58);

    for (int i = 0; i != 3; ++i) {
        gw_quota_take(&q, 3, CONF_PERIOD_DAY, now, &t);
        assert_true(t.allowed);
        assert_int_equal(t.used, i + 1);
        assert_int_equal(t.remaining, 2 - i);
        assert_int_equal(t.reset_s, 2);
    }
    gw_quota_take(&q, 3, CONF_PERIOD_DAY, now + 1, &t);
    assert_false(t.allowed);
    assert_int_equal(t.reset_s, 1);
    assert_int_equal(gw_quota_used(&q, CONF_PERIOD_DAY, now + 1), 3);
    /* the next day starts again */
    assert_int_equal(gw_quota_used(&q, CONF_PERIOD_DAY, now + 2), 0);
    gw_quota_take(&q, 3, CONF_PERIOD_DAY, now + 2, &t);
    assert_true(t.allowed);
    assert_int_equal(t.used, 1);
    assert_int_equal(t.reset_s, 86400);
    /* a clock that steps back keeps counting in the newer period */
    gw_quota_take(&q, 3, CONF_PERIOD_DAY, now, &t);
    assert_true(t.allowed);
    assert_int_equal(t.used, 2);
}

static void test_quota_set_unpack(void **state)
{
    (void)state;
    gw_quota_t q = {0};
    int64_t start, e, ps;
    uint64_t used;
    gw_quota_take_t t;

    gw_period_bounds(CONF_PERIOD_MONTH, utc(2026, 12, 15, 0, 0, 0), &start, &e);
    gw_quota_set(&q, start, 9999);
    gw_quota_unpack(atomic_load(&q.word), &ps, &used);
    assert_int_equal(ps, start);
    assert_int_equal(used, 9999);
    gw_quota_take(&q, 10000, CONF_PERIOD_MONTH, utc(2026, 12, 20, 0, 0, 0), &t);
    assert_true(t.allowed);
    assert_int_equal(t.remaining, 0);
    gw_quota_take(&q, 10000, CONF_PERIOD_MONTH, utc(2026, 12, 20, 0, 0, 0), &t);
    assert_false(t.allowed);
    /* a stored count of last month does not count in this one */
    assert_int_equal(gw_quota_used(&q, CONF_PERIOD_MONTH, utc(2027, 1, 1, 0, 0, 0)), 0);
    /* the largest quota fits */
    gw_quota_set(&q, start, CONF_MAX_QUOTA - 1);
    gw_quota_take(&q, CONF_MAX_QUOTA, CONF_PERIOD_MONTH, utc(2026, 12, 20, 0, 0, 0), &t);
    assert_true(t.allowed);
    assert_int_equal(t.used, CONF_MAX_QUOTA);
}

static void test_clock_offset(void **state)
{
    (void)state;
    uint64_t a = gw_now_ns();
    gw_set_clock_offset(-(int64_t)(3600 * SEC));
    uint64_t b = gw_now_ns();
    gw_set_clock_offset(0);
    assert_true(a - b > 3599 * SEC && a - b < 3601 * SEC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate_init),
        cmocka_unit_test(test_burst_then_refuse),
        cmocka_unit_test(test_allowance_over_window),
        cmocka_unit_test(test_never_above_allowance),
        cmocka_unit_test(test_threads_exact),
        cmocka_unit_test(test_period_bounds),
        cmocka_unit_test(test_quota),
        cmocka_unit_test(test_quota_set_unpack),
        cmocka_unit_test(test_clock_offset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
