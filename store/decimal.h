/*
 * store/decimal.h (internal to store/): DynamoDB numbers, exactly. No floating point anywhere.
 *
 * A DynamoDB number has at most 38 significant decimal digits and a magnitude of 1E-130 up to
 * 9.9999999999999999999999999999999999999E+125 (or is zero). It is sent as a string ("12", "-1.50", "1e3", " 7"
 * is not allowed...) and DynamoDB answers it normalized: no leading zeros, no trailing zeros after the point, no
 * exponent notation, "-0" is "0" ("1.50" -> "1.5", "1e3" -> "1000", "0.00" -> "0", "-0.0" -> "0", "1E-3" -> "0.001").
 *
 * Representation: value = sign * coef * 10^exp with coef < 10^38 and, when the value is not zero, coef not divisible
 * by 10 (normalized: each value has exactly one representation, so equal values compare equal bytewise). Zero is
 * sign 0, coef 0, exp 0.
 *
 * Every function is pure (no allocation, no global state) and thread-safe.
 */
#ifndef EDGEPROXY_STORE_DECIMAL_H
#define EDGEPROXY_STORE_DECIMAL_H

#include <stddef.h>
#include <stdint.h>

#define STORE_NUM_DIGITS 38
#define STORE_NUM_MIN_EXP -130 /* the smallest magnitude is 1E-130 */
#define STORE_NUM_MAX_EXP 125  /* the largest is 9.99...(38 digits)E+125 */
/* Bytes of store_num_format's longest output, with its NUL: sign, 126 integer digits or "0." + 129 zeros + 38 digits. */
#define STORE_NUM_TEXT_MAX 176
/* Bytes of store_num_key's longest output. */
#define STORE_NUM_KEY_MAX 22

typedef struct store_num {
    int sign;               /* -1, 0, +1 */
    int32_t exp;            /* value = sign * coef * 10^exp */
    unsigned __int128 coef; /* < 10^38; not divisible by 10 unless zero */
} store_num_t;

typedef enum store_num_err {
    STORE_NUM_OK = 0,
    STORE_NUM_ESYNTAX,    /* not a number: "The parameter cannot be converted to a numeric value: <text>" */
    STORE_NUM_EPRECISION, /* more than 38 significant digits: "Attempting to store more than 38 significant digits in a
                             Number" */
    STORE_NUM_EOVERFLOW,  /* "Number overflow. Attempting to store a number with magnitude larger than supported range" */
    STORE_NUM_EUNDERFLOW, /* "Number underflow. Attempting to store a number with magnitude smaller than supported range" */
} store_num_err_t;

/* DynamoDB's message for an error (a static string, without the text for ESYNTAX, which callers append). DynamoDB
 * appends ": <text>" to the ESYNTAX message, except for an empty string, which it answers with the bare message.
 * DynamoDB answers a sum or difference that would need more than 38 digits (1E+50 - 1) with the EOVERFLOW message, not
 * the EPRECISION one (ScyllaDB's tests against DynamoDB record this), so UpdateExpression arithmetic that wants
 * DynamoDB's exact wording maps store_num_add/sub's EPRECISION to store_num_strerror(STORE_NUM_EOVERFLOW). */
const char *store_num_strerror(store_num_err_t err);

/*
 * Parses s[0..len) as DynamoDB does: optional sign ('+' or '-'), digits with at most one '.', at least one digit,
 * optional exponent ('e' or 'E', optional sign, digits); no spaces, no hex, no "Infinity" or "NaN". Leading zeros and
 * trailing zeros do not count as significant digits ("0.000100" has 1; "1000" has 1; "1001" has 4).
 * ".5", "5.", "+.5" and "0001.23" are numbers; "." is not. Only zeros is 0 whatever the exponent ("0e99999999999").
 * Errors are checked in this order: ESYNTAX, EOVERFLOW, EUNDERFLOW, EPRECISION (a 40-digit number of magnitude 1E+200
 * is an overflow); any exponent is read without overflowing ("1e999999999999" is EOVERFLOW). On an error *out is
 * left unchanged; s may be NULL when len is 0.
 */
store_num_err_t store_num_parse(const char *s, size_t len, store_num_t *out);

/* Writes the normalized text (as DynamoDB returns it) with a NUL; returns its length (without the NUL).
 * buf must have STORE_NUM_TEXT_MAX bytes. */
size_t store_num_format(const store_num_t *n, char *buf);

/* -1, 0, 1 as a < b, a == b, a > b (numerically). */
int store_num_cmp(const store_num_t *a, const store_num_t *b);

/* *out = a + b and a - b, exactly. A result that needs more than 38 significant digits is STORE_NUM_EPRECISION (as
 * DynamoDB: no rounding); out of range is EOVERFLOW / EUNDERFLOW (checked before the digits, as in parsing). The
 * operands must be normalized numbers (as parse, add, sub and from_key make them); out may be a or b, and is left
 * unchanged on an error. The cost does not depend on how far apart the exponents are. */
store_num_err_t store_num_add(const store_num_t *a, const store_num_t *b, store_num_t *out);
store_num_err_t store_num_sub(const store_num_t *a, const store_num_t *b, store_num_t *out);

/*
 * An order-preserving binary form, for keys in LMDB: memcmp of two keys orders them as store_num_cmp orders their
 * numbers (negatives first, then zero, then positives; by magnitude within a sign), and equal numbers give equal bytes.
 * Returns the length (at most STORE_NUM_KEY_MAX). store_num_from_key reverses it; -1 when buf is not such a key.
 * Keys differ in length: they compare as LMDB's default comparison does (memcmp over the shorter length, then the
 * shorter key first). The layout (decimal.c tells why): zero is 0x02; a positive is 0x03, the exponent of its first
 * digit + 130, then its significant digits two per byte as pair + 1 (an odd count pads the last pair with a 0); a
 * negative is 0x01, 255 - (exponent + 130), each pair as 100 - pair, then 0xFF.
 */
size_t store_num_key(const store_num_t *n, uint8_t *buf);
int store_num_from_key(const uint8_t *buf, size_t len, store_num_t *out);

#endif
