/*
 * store/decimal.c: DynamoDB numbers (the contract is in decimal.h): parsing, the normalized text, comparison, exact
 * addition and subtraction, and the order-preserving key form. No floating point and no allocation anywhere.
 *
 * Parsing is one pass over the text. It never converts more than 38 digits: it only remembers where the first and the
 * last non-zero digit were (zeros between them are multiplied in when the next non-zero digit comes, so trailing zeros
 * cost nothing and never overflow the coefficient), and the exponent saturates at STORE_NUM_EXP_CAP, far outside the
 * range, so "1e999999999999" is an overflow and not a wrapped int32. Errors are checked in dynalite's order (which
 * is also what DynamoDB answers for the cases both were tested on): syntax, then overflow, underflow, and last the
 * number of significant digits ("1234567890123456789012345678901234567890e200" is an overflow, not a precision error).
 *
 * Arithmetic: both operands are aligned on the smaller exponent and added in 256 bits (four 64-bit limbs), which holds
 * any sum whose digits span at most 77 positions (10^77 < 2^256). When the span is wider the two numbers have a gap of
 * zeros between them, and then the exact result has a non-zero digit at the lower number's last position and at
 * least the upper number's first position minus one: 76 digits or more, an EPRECISION whatever the signs; it can be
 * neither an overflow nor an underflow (the larger operand, a multiple of 10^exp, stays below 10^126 with anything
 * under 10^exp added, and the result stays above 0.9 times it). So no input, however far apart the exponents, costs
 * more than a few 256-bit operations (ScyllaDB found the DoS of naive big-decimal alignment, its issue #6794).
 *
 * Key form (store_num_key), memcmp-ordered:
 *   zero:     0x02
 *   positive: 0x03, E, P1 .. Pk             E = adjusted exponent + 130 (0..255), Pi = digit pair + 1 (1..100)
 *   negative: 0x01, 255 - E, Q1 .. Qk, 0xFF  Qi = 100 - digit pair (1..100)
 * The adjusted exponent is that of the first significant digit (1.5E+3 has 3), and -130..125 fills a byte exactly.
 * The significant digits go two per byte, the last pair padded with a 0 digit when their count is odd. For two
 * positives with the same exponent a shorter digit string is a prefix of a longer one and so sorts first, which is
 * numeric order (1.2 < 1.23). Negatives invert every byte so larger magnitudes sort first, and their 0xFF terminator,
 * above any digit byte, puts -1.2 after -1.23, which a bare prefix would have sorted first. A 38-digit negative is
 * 1 + 1 + 19 + 1 = 22 bytes, STORE_NUM_KEY_MAX. Every value has exactly one key (the coefficient is normalized and the
 * padding digit can only be the one after an odd count), and store_num_from_key accepts only such keys.
 */
#include <string.h>
#include "store/decimal.h"

typedef unsigned __int128 u128;

/* Any exponent at or beyond this is out of range whatever the mantissa (the mantissa would need 10^15 digits to
 * bring it back), so the exponent's digits stop accumulating there instead of overflowing. */
#define STORE_NUM_EXP_CAP 1000000000000000LL

#define KEY_NEG 0x01
#define KEY_ZERO 0x02
#define KEY_POS 0x03
#define KEY_NEG_END 0xFF

#define E19 ((u128)10000000000000000000u)

/* 10^0 .. 10^38, computed by the compiler: 10^38 bounds a coefficient, the others count and align digits. */
static const u128 pow10_tab[39] = {
    1u,
    10u,
    100u,
    1000u,
    10000u,
    100000u,
    1000000u,
    10000000u,
    100000000u,
    1000000000u,
    10000000000u,
    100000000000u,
    1000000000000u,
    10000000000000u,
    100000000000000u,
    1000000000000000u,
    10000000000000000u,
    100000000000000000u,
    1000000000000000000u,
    E19,
    E19 * 10u,
    E19 * 100u,
    E19 * 1000u,
    E19 * 10000u,
    E19 * 100000u,
    E19 * 1000000u,
    E19 * 10000000u,
    E19 * 100000000u,
    E19 * 1000000000u,
    E19 * 10000000000u,
    E19 * 100000000000u,
    E19 * 1000000000000u,
    E19 * 10000000000000u,
    E19 * 100000000000000u,
    E19 * 1000000000000000u,
    E19 * 10000000000000000u,
    E19 * 100000000000000000u,
    E19 * 1000000000000000000u,
    (E19 * E19),
};

const char *store_num_strerror(store_num_err_t err)
{
    switch (err) {
    case STORE_NUM_OK:
        return "";
    case STORE_NUM_ESYNTAX:
        return "The parameter cannot be converted to a numeric value";
    case STORE_NUM_EPRECISION:
        return "Attempting to store more than 38 significant digits in a Number";
    case STORE_NUM_EOVERFLOW:
        return "Number overflow. Attempting to store a number with magnitude larger than supported range";
    case STORE_NUM_EUNDERFLOW:
        return "Number underflow. Attempting to store a number with magnitude smaller than supported range";
    }
    return "";
}

/* ---- digits of a coefficient ---- */

/* The number of decimal digits of x (1 for 0), for x < 10^39: a binary search of the table. */
static int digits128(u128 x)
{
    int lo = 1, hi = 39; /* the answer is in [lo, hi] */

    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (x < pow10_tab[mid]) /* mid digits are enough */
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* Writes the digits of a u64 left-padded with zeros to width (0: no padding); returns how many. */
static int put_u64(uint64_t x, int width, char *d)
{
    char tmp[20];
    int n = 0, i;

    do {
        tmp[n++] = (char)('0' + x % 10);
        x /= 10;
    } while (x != 0);
    while (n < width)
        tmp[n++] = '0';
    for (i = 0; i < n; i++)
        d[i] = tmp[n - 1 - i];
    return n;
}

/* The decimal digits of a coefficient (0 < c < 10^38) into d, no NUL; returns how many. One 128-bit division splits
 * it into two u64 halves, the rest is 64-bit. */
static int coef_text(u128 c, char *d)
{
    uint64_t hi = (uint64_t)(c / E19), lo = (uint64_t)(c % E19);

    if (hi == 0)
        return put_u64(lo, 0, d);
    int n = put_u64(hi, 0, d);
    return n + put_u64(lo, 19, d + n);
}

/* The exponent of the first significant digit of a non-zero number. */
static int adj_exp(const store_num_t *n)
{
    return (int)n->exp + digits128(n->coef) - 1;
}

/* ---- parsing ---- */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

store_num_err_t store_num_parse(const char *s, size_t len, store_num_t *out)
{
    size_t i = 0;
    int neg = 0, too_many = 0;
    int64_t nd = 0;                /* mantissa digits seen */
    int64_t point = -1;            /* mantissa digits before the '.', -1 until one is seen */
    int64_t first = -1, last = -1; /* positions of the first and last non-zero digits */
    int64_t ev = 0, adj, nsig;
    u128 coef = 0;

    if (len > 0 && (s[0] == '+' || s[0] == '-'))
        neg = s[i++] == '-';
    for (; i < len; i++) {
        char c = s[i];
        if (is_digit(c)) {
            if (c != '0') {
                if (first < 0)
                    first = nd;
                else if (nd - first + 1 > STORE_NUM_DIGITS)
                    too_many = 1; /* only the count matters from now on: the number is an error */
                else
                    coef *= pow10_tab[nd - last]; /* the zeros since the last non-zero digit, then room for this one */
                if (!too_many)
                    coef += (unsigned)(c - '0');
                last = nd;
            }
            nd++;
        } else if (c == '.' && point < 0) {
            point = nd;
        } else {
            break;
        }
    }
    if (nd == 0) /* "", "-", ".", "e5", ".e1" */
        return STORE_NUM_ESYNTAX;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        int eneg = 0;
        size_t start;
        if (++i < len && (s[i] == '+' || s[i] == '-'))
            eneg = s[i++] == '-';
        for (start = i; i < len && is_digit(s[i]); i++)
            if (ev < STORE_NUM_EXP_CAP)
                ev = ev * 10 + (s[i] - '0');
        if (i == start) /* "1e", "1e+" */
            return STORE_NUM_ESYNTAX;
        if (eneg)
            ev = -ev;
    }
    if (i != len) /* anything else: a space, a second '.', "x", "NaN", a NUL inside the text */
        return STORE_NUM_ESYNTAX;
    if (first < 0) { /* only zeros: 0 whatever the sign and the exponent ("-0.0", "0e99999999999") */
        out->sign = 0;
        out->exp = 0;
        out->coef = 0;
        return STORE_NUM_OK;
    }
    if (point < 0)
        point = nd;
    adj = point - 1 - first + ev; /* the digit at position p weighs 10^(point - 1 - p + ev) */
    nsig = last - first + 1;
    if (adj > STORE_NUM_MAX_EXP)
        return STORE_NUM_EOVERFLOW;
    if (adj < STORE_NUM_MIN_EXP)
        return STORE_NUM_EUNDERFLOW;
    if (too_many || nsig > STORE_NUM_DIGITS)
        return STORE_NUM_EPRECISION;
    out->sign = neg ? -1 : 1;
    out->exp = (int32_t)(adj - (nsig - 1));
    out->coef = coef;
    return STORE_NUM_OK;
}

/* ---- formatting ---- */

size_t store_num_format(const store_num_t *n, char *buf)
{
    char d[40];
    int nd, intlen, i;
    size_t k = 0;

    if (n->sign == 0) {
        memcpy(buf, "0", 2);
        return 1;
    }
    nd = coef_text(n->coef, d);
    if (n->sign < 0)
        buf[k++] = '-';
    intlen = nd + (int)n->exp; /* digits before the point; <= 0 when the number is below 1 */
    if (n->exp >= 0) {
        memcpy(buf + k, d, (size_t)nd);
        k += (size_t)nd;
        for (i = 0; i < n->exp; i++)
            buf[k++] = '0';
    } else if (intlen > 0) {
        memcpy(buf + k, d, (size_t)intlen);
        k += (size_t)intlen;
        buf[k++] = '.';
        memcpy(buf + k, d + intlen, (size_t)(nd - intlen));
        k += (size_t)(nd - intlen);
    } else {
        buf[k++] = '0';
        buf[k++] = '.';
        for (i = 0; i < -intlen; i++)
            buf[k++] = '0';
        memcpy(buf + k, d, (size_t)nd);
        k += (size_t)nd;
    }
    buf[k] = '\0';
    return k;
}

/* ---- comparison ---- */

/* Compares |a| and |b|, both non-zero. */
static int cmp_mag(const store_num_t *a, const store_num_t *b)
{
    int da = digits128(a->coef), db = digits128(b->coef);
    int ea = (int)a->exp + da - 1, eb = (int)b->exp + db - 1;
    u128 ca = a->coef, cb = b->coef;

    if (ea != eb)
        return ea < eb ? -1 : 1;
    /* Same first digit position: pad the shorter coefficient with zeros to the other's length (<= 38 digits). */
    if (da < db)
        ca *= pow10_tab[db - da];
    else
        cb *= pow10_tab[da - db];
    return ca < cb ? -1 : ca > cb ? 1 : 0;
}

int store_num_cmp(const store_num_t *a, const store_num_t *b)
{
    int m;

    if (a->sign != b->sign)
        return a->sign < b->sign ? -1 : 1;
    if (a->sign == 0)
        return 0;
    m = cmp_mag(a, b);
    return a->sign > 0 ? m : -m;
}

/* ---- 256-bit unsigned integers, just enough for aligned sums ---- */

typedef struct u256 {
    uint64_t w[4]; /* least significant limb first */
} u256_t;

static u256_t u256_of(u128 x)
{
    u256_t r = {{(uint64_t)x, (uint64_t)(x >> 64), 0, 0}};
    return r;
}

/* x *= m; the callers' bounds keep the product below 2^256. */
static void u256_mul64(u256_t *x, uint64_t m)
{
    u128 carry = 0;
    int i;

    for (i = 0; i < 4; i++) {
        u128 p = (u128)x->w[i] * m + carry;
        x->w[i] = (uint64_t)p;
        carry = p >> 64;
    }
}

static void u256_mul_pow10(u256_t *x, int k)
{
    for (; k >= 19; k -= 19)
        u256_mul64(x, (uint64_t)E19);
    if (k > 0)
        u256_mul64(x, (uint64_t)pow10_tab[k]);
}

/* x /= d; returns the remainder. */
static uint64_t u256_div64(u256_t *x, uint64_t d)
{
    u128 rem = 0;
    int i;

    for (i = 3; i >= 0; i--) {
        u128 cur = (rem << 64) | x->w[i];
        x->w[i] = (uint64_t)(cur / d);
        rem = cur % d;
    }
    return (uint64_t)rem;
}

static u256_t u256_add(u256_t a, const u256_t *b)
{
    uint64_t carry = 0;
    int i;

    for (i = 0; i < 4; i++) {
        u128 s = (u128)a.w[i] + b->w[i] + carry;
        a.w[i] = (uint64_t)s;
        carry = (uint64_t)(s >> 64);
    }
    return a;
}

/* a - b, for a >= b. */
static u256_t u256_sub(u256_t a, const u256_t *b)
{
    uint64_t borrow = 0;
    int i;

    for (i = 0; i < 4; i++) {
        uint64_t bi = b->w[i] + borrow;
        uint64_t nb = (bi < borrow) || (a.w[i] < bi); /* b->w[i] + borrow wrapped, or it exceeds a's limb */
        a.w[i] -= bi;
        borrow = nb;
    }
    return a;
}

static int u256_cmp(const u256_t *a, const u256_t *b)
{
    int i;

    for (i = 3; i >= 0; i--)
        if (a->w[i] != b->w[i])
            return a->w[i] < b->w[i] ? -1 : 1;
    return 0;
}

/* The number of decimal digits of a non-zero x. */
static int u256_digits(u256_t x)
{
    int n = 0;

    while (x.w[2] != 0 || x.w[3] != 0) {
        u256_div64(&x, (uint64_t)E19);
        n += 19;
    }
    return n + digits128(((u128)x.w[1] << 64) | x.w[0]);
}

/* ---- addition and subtraction ---- */

/* *out = sign * r * 10^exp, normalized and checked like a parsed number (overflow, underflow, then digits). */
static store_num_err_t finish(int sign, u256_t r, int exp, store_num_t *out)
{
    int nd, adj;

    for (;;) { /* strip trailing zeros: possible only when the operands had the same exponent */
        u256_t q = r;
        if (u256_div64(&q, 10) != 0)
            break;
        r = q;
        exp++;
    }
    nd = u256_digits(r);
    adj = exp + nd - 1;
    if (adj > STORE_NUM_MAX_EXP)
        return STORE_NUM_EOVERFLOW;
    if (adj < STORE_NUM_MIN_EXP)
        return STORE_NUM_EUNDERFLOW;
    if (nd > STORE_NUM_DIGITS)
        return STORE_NUM_EPRECISION;
    out->sign = sign;
    out->exp = exp;
    out->coef = ((u128)r.w[1] << 64) | r.w[0];
    return STORE_NUM_OK;
}

/* *out = a + bsign * |b|. Copies the operands first: out may be a or b. */
static store_num_err_t add_signed(const store_num_t *a, const store_num_t *b, int bsign, store_num_t *out)
{
    store_num_t x = *a, y = *b;
    int emin, top;
    u256_t vx, vy;

    y.sign = bsign;
    if (y.sign == 0) {
        *out = x;
        return STORE_NUM_OK;
    }
    if (x.sign == 0) {
        *out = y;
        return STORE_NUM_OK;
    }
    emin = x.exp < y.exp ? (int)x.exp : (int)y.exp;
    top = adj_exp(&x) > adj_exp(&y) ? adj_exp(&x) : adj_exp(&y);
    top++; /* a carry can add one digit */
    if (top - emin + 1 > 77)
        return STORE_NUM_EPRECISION; /* a gap between the operands: see the top of the file */
    vx = u256_of(x.coef);
    vy = u256_of(y.coef);
    u256_mul_pow10(&vx, (int)x.exp - emin);
    u256_mul_pow10(&vy, (int)y.exp - emin);
    if (x.sign == y.sign)
        return finish(x.sign, u256_add(vx, &vy), emin, out);
    switch (u256_cmp(&vx, &vy)) {
    case 0: /* exact cancellation */
        out->sign = 0;
        out->exp = 0;
        out->coef = 0;
        return STORE_NUM_OK;
    case 1:
        return finish(x.sign, u256_sub(vx, &vy), emin, out);
    default:
        return finish(y.sign, u256_sub(vy, &vx), emin, out);
    }
}

store_num_err_t store_num_add(const store_num_t *a, const store_num_t *b, store_num_t *out)
{
    return add_signed(a, b, b->sign, out);
}

store_num_err_t store_num_sub(const store_num_t *a, const store_num_t *b, store_num_t *out)
{
    return add_signed(a, b, -b->sign, out);
}

/* ---- the key form ---- */

size_t store_num_key(const store_num_t *n, uint8_t *buf)
{
    char d[40];
    int nd, i, neg = n->sign < 0;
    uint8_t e;
    size_t k = 0;

    if (n->sign == 0) {
        buf[0] = KEY_ZERO;
        return 1;
    }
    nd = coef_text(n->coef, d);
    e = (uint8_t)((int)n->exp + nd - 1 - STORE_NUM_MIN_EXP);
    buf[k++] = neg ? KEY_NEG : KEY_POS;
    buf[k++] = neg ? (uint8_t)(255 - e) : e;
    for (i = 0; i < nd; i += 2) {
        int pair = (d[i] - '0') * 10 + (i + 1 < nd ? d[i + 1] - '0' : 0);
        buf[k++] = (uint8_t)(neg ? 100 - pair : pair + 1);
    }
    if (neg)
        buf[k++] = KEY_NEG_END;
    return k;
}

int store_num_from_key(const uint8_t *buf, size_t len, store_num_t *out)
{
    int neg, e, nd, pair = 0;
    size_t npairs, i;
    u128 coef = 0;

    if (len == 0)
        return -1;
    if (buf[0] == KEY_ZERO) {
        if (len != 1)
            return -1;
        out->sign = 0;
        out->exp = 0;
        out->coef = 0;
        return 0;
    }
    if (buf[0] != KEY_NEG && buf[0] != KEY_POS)
        return -1;
    neg = buf[0] == KEY_NEG;
    if (neg && (len < 4 || buf[len - 1] != KEY_NEG_END))
        return -1;
    npairs = len - 2 - (size_t)neg;
    if (npairs < 1 || npairs > (STORE_NUM_DIGITS + 1) / 2)
        return -1;
    e = neg ? 255 - buf[1] : buf[1];
    for (i = 0; i < npairs; i++) {
        int b = buf[2 + i];
        if (b < 1 || b > 100)
            return -1;
        pair = neg ? 100 - b : b - 1;
        if (i == 0 && pair < 10) /* a leading zero digit */
            return -1;
        coef = coef * 100 + (unsigned)pair;
    }
    if (pair == 0) /* the digits end with "00": not normalized */
        return -1;
    nd = (int)npairs * 2;
    if (pair % 10 == 0) { /* an odd count: drop the padding digit */
        coef /= 10;
        nd--;
    }
    out->sign = neg ? -1 : 1;
    out->exp = e + STORE_NUM_MIN_EXP - (nd - 1);
    out->coef = coef;
    return 0;
}
