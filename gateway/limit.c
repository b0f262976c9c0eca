/*
 * limit: token buckets and quota periods.
 *
 * A token bucket is kept in GCRA form (the "generic cell rate algorithm" of ATM, the form Redis-cell and most
 * gateways use): instead of a token count and a refill time, one number, the theoretical arrival time (TAT) of the next
 * request if requests came exactly at the rate. A request at `now` is admitted when TAT - now <= tolerance; admitting
 * it moves TAT to max(TAT, now) + interval. That is exactly a bucket of `burst` tokens refilled at the rate, and being
 * one word it is updated with one compare-and-swap: threads that take from one bucket at once are serialised by the
 * CAS, so the admitted count over any window stays within the bucket's allowance (no per-thread share, no drift).
 *
 * A quota counter packs its period (the start day, 24 bits) and its count (40 bits) into one word for the same reason:
 * the first request of a new period resets the count in the CAS that counts it.
 */
#include <time.h>
#include "gateway/gateway.h"

static int64_t clock_offset_ns;

uint64_t gw_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + clock_offset_ns);
}

void gw_set_clock_offset(int64_t offset_ns)
{
    clock_offset_ns = offset_ns;
}

void gw_rate_init(gw_rate_t *r, const conf_rate_t *c)
{
    uint64_t burst = c->burst != 0 ? c->burst : 1;

    r->count = c->count != 0 ? c->count : 1;
    r->per_ms = c->per_ms != 0 ? c->per_ms : 1000;
    r->interval_ns = r->per_ms * 1000000 / r->count;
    if (r->interval_ns == 0)
        r->interval_ns = 1;
    r->burst = burst;
    r->tolerance_ns = (burst - 1) * r->interval_ns;
}

void gw_bucket_take(gw_bucket_t *b, const gw_rate_t *r, uint64_t now_ns, gw_take_t *out)
{
    uint64_t tat = atomic_load_explicit(&b->tat, memory_order_relaxed);

    for (;;) {
        uint64_t t = tat > now_ns ? tat : now_ns, ahead = t - now_ns, next;
        if (ahead > r->tolerance_ns) {
            out->allowed = 0;
            out->remaining = 0;
            out->retry_after_ns = ahead - r->tolerance_ns;
            out->reset_ns = ahead;
            return;
        }
        next = t + r->interval_ns;
        if (atomic_compare_exchange_weak_explicit(&b->tat, &tat, next, memory_order_relaxed, memory_order_relaxed)) {
            out->allowed = 1;
            out->remaining = (r->tolerance_ns + r->interval_ns - (next - now_ns)) / r->interval_ns;
            out->retry_after_ns = 0;
            out->reset_ns = next - now_ns;
            return;
        }
    }
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* The civil year and month of a day number (the inverse, for the month only). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

void gw_period_bounds(conf_period_t period, int64_t t, int64_t *start, int64_t *end)
{
    int64_t days = floor_div(t, 86400), y;
    unsigned m;

    switch (period) {
    case CONF_PERIOD_WEEK: {
        int64_t monday = days - (days + 3) % 7; /* 1970-01-01 was a Thursday: (days + 3) % 7 is 0 on Mondays */
        if ((days + 3) % 7 < 0)
            monday -= 7;
        *start = monday * 86400;
        *end = *start + 7 * 86400;
        return;
    }
    case CONF_PERIOD_MONTH:
        civil_from_days(days, &y, &m);
        *start = days_from_civil(y, m, 1) * 86400;
        *end = (m == 12 ? days_from_civil(y + 1, 1, 1) : days_from_civil(y, m + 1, 1)) * 86400;
        return;
    case CONF_PERIOD_DAY:
    default:
        *start = days * 86400;
        *end = *start + 86400;
        return;
    }
}

#define QUOTA_COUNT_BITS 40
#define QUOTA_COUNT_MASK ((UINT64_C(1) << QUOTA_COUNT_BITS) - 1)

static uint64_t quota_pack(int64_t period_start_s, uint64_t used)
{
    uint64_t day = (uint64_t)floor_div(period_start_s, 86400) & 0xffffff;
    return (day << QUOTA_COUNT_BITS) | (used & QUOTA_COUNT_MASK);
}

void gw_quota_unpack(uint64_t word, int64_t *period_start_s, uint64_t *used)
{
    *period_start_s = (int64_t)(word >> QUOTA_COUNT_BITS) * 86400;
    *used = word & QUOTA_COUNT_MASK;
}

void gw_quota_take(gw_quota_t *q, uint64_t limit, conf_period_t period, int64_t now_s, gw_quota_take_t *out)
{
    int64_t start, end;
    uint64_t w = atomic_load_explicit(&q->word, memory_order_relaxed);

    gw_period_bounds(period, now_s, &start, &end);
    out->reset_s = end - now_s;
    for (;;) {
        int64_t wstart;
        uint64_t used;
        gw_quota_unpack(w, &wstart, &used);
        if (wstart < start) { /* an older period: this request starts the new one; a newer one (the clock stepped back)
                                 keeps counting */
            wstart = start;
            used = 0;
        }
        if (used >= limit) {
            out->allowed = 0;
            out->used = used;
            out->remaining = 0;
            return;
        }
        if (atomic_compare_exchange_weak_explicit(&q->word, &w, quota_pack(wstart, used + 1), memory_order_relaxed,
                                                  memory_order_relaxed)) {
            out->allowed = 1;
            out->used = used + 1;
            out->remaining = limit - (used + 1);
            return;
        }
    }
}

uint64_t gw_quota_used(const gw_quota_t *q, conf_period_t period, int64_t now_s)
{
    int64_t start, end, wstart;
    uint64_t used;

    gw_period_bounds(period, now_s, &start, &end);
    gw_quota_unpack(atomic_load_explicit(&q->word, memory_order_relaxed), &wstart, &used);
    return wstart < start ? 0 : used;
}

void gw_quota_set(gw_quota_t *q, int64_t period_start_s, uint64_t used)
{
    atomic_store_explicit(&q->word, quota_pack(period_start_s, used), memory_order_relaxed);
}
