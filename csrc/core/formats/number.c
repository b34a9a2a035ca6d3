/* number.c -- exact decimal and integer parsing. */
#include "core/formats/number.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOB_MAX_FAST_DIGITS 19 /* 10^19 - 1 fits uint64 */
#define LOB_MAX_DIGITS 40      /* beyond this a price or size is not plausible */

static const double lob_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static int
is_digit(char c)
{
    return (unsigned)(c - '0') < 10u;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define LOB_SWAR_DIGITS 1
#else
#define LOB_SWAR_DIGITS 0
#endif

/* Eight ASCII digits at p as their value (SWAR: one 64-bit load, no per-digit branch).
 * @return 0 if any of the eight bytes is not a digit.  Little-endian: p[0] is byte 0. */
static inline int
eight_digits(const char *p, uint64_t *out)
{
    uint64_t v;
    memcpy(&v, p, 8);
    /* a digit is 0x30..0x39: high nibble 3, and adding 6 must not carry out of the nibble */
    uint64_t hi =
        (v & 0xF0F0F0F0F0F0F0F0ULL) | (((v + 0x0606060606060606ULL) & 0xF0F0F0F0F0F0F0F0ULL) >> 4);
    if (hi != 0x3333333333333333ULL) {
        return 0;
    }
    v -= 0x3030303030303030ULL;
    v = v * 10 + (v >> 8); /* bytes 0, 2, 4, 6 now hold the pairs d0d1, d2d3, d4d5, d6d7 */
    /* combine the pairs: d0d1 * 10^6 + d2d3 * 10^4 + d4d5 * 100 + d6d7, in the top half */
    v = ((v & 0x000000FF000000FFULL) * (100 + (1000000ULL << 32)) +
         ((v >> 16) & 0x000000FF000000FFULL) * (1 + (10000ULL << 32))) >>
        32;
    *out = v;
    return 1;
}

/* Consume the digits at *pp into *m, eight at a time when `swar` (worth it for ids and
 * times of 10-19 digits; prices are mostly short runs, where the 8-byte test only costs).
 * *m wraps past 19 digits: callers count the digits and re-parse or refuse. */
static inline void
scan_digits(const char **pp, const char *last, uint64_t *m, int swar)
{
    const char *p = *pp;
    uint64_t v = *m;
#if LOB_SWAR_DIGITS
    uint64_t d8;
    while (swar && last - p >= 8 && eight_digits(p, &d8)) {
        v = v * 100000000u + d8;
        p += 8;
    }
#endif
    for (; p < last && is_digit(*p); p++) {
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *pp = p;
    *m = v;
}

/* Slow path: rebuild "DIGITSe<exp>" (no decimal point, so no locale) and use strtod. */
static int
decimal_slow(const char *first, const char *mant_end, int64_t exp10, double *out)
{
    char buf[LOB_MAX_DIGITS + 32];
    size_t k = 0;
    const char *p = first;
    if (*p == '-' || *p == '+') {
        buf[k++] = *p++;
    }
    /* Leading and trailing zeros do not count towards the digit limit: zeros are held back
     * until a nonzero digit follows, and those at the end move into the exponent. */
    int seen_nonzero = 0;
    int64_t zeros = 0;
    for (; p < mant_end; p++) {
        if (*p == '.' || (*p == '0' && !seen_nonzero)) {
            continue;
        }
        if (*p == '0') {
            zeros++;
            continue;
        }
        seen_nonzero = 1;
        if (k + (size_t)zeros >= LOB_MAX_DIGITS) {
            return LOB_E_RANGE;
        }
        for (; zeros > 0; zeros--) {
            buf[k++] = '0';
        }
        buf[k++] = *p;
    }
    exp10 += zeros;
    if (!seen_nonzero) {
        buf[k++] = '0';
    }
    snprintf(buf + k, sizeof buf - k, "e%lld", (long long)exp10);
    char *endp = NULL;
    double v = strtod(buf, &endp);
    if (!isfinite(v) || (seen_nonzero && v == 0)) {
        return LOB_E_RANGE; /* overflow to inf, or a nonzero value lost to 0 */
    }
    *out = v;
    return LOB_OK;
}

/* Digit by digit with the 19-digit limit checked on every digit: for long inputs. */
static const char *
parse_decimal_careful(const char *first, const char *last, double *out, int *rc)
{
    const char *p = first;
    int neg = 0;
    if (p < last && (*p == '-' || *p == '+')) {
        neg = *p == '-';
        p++;
    }
    uint64_t m = 0;
    int nd = 0;        /* significant digits held in m */
    int ndigits = 0;   /* all digits seen */
    int inexact = 0;   /* a nonzero digit did not fit in m */
    int64_t exp10 = 0; /* value = m * 10^exp10 */
    int64_t frac = 0;  /* digits after the point that went into the slow-path text */
    for (; p < last && is_digit(*p); p++, ndigits++) {
        if (nd < LOB_MAX_FAST_DIGITS) {
            m = m * 10 + (uint64_t)(*p - '0');
            nd += m != 0;
        }
        else {
            exp10++;
            inexact |= *p != '0';
        }
    }
    if (p < last && *p == '.') {
        p++;
        for (; p < last && is_digit(*p); p++, ndigits++, frac++) {
            if (nd < LOB_MAX_FAST_DIGITS) {
                m = m * 10 + (uint64_t)(*p - '0');
                nd += m != 0;
                exp10--;
            }
            else {
                inexact |= *p != '0'; /* trailing zeros beyond 19 digits are exact */
            }
        }
    }
    if (ndigits == 0) {
        *rc = LOB_E_FORMAT;
        return NULL;
    }
    const char *mant_end = p;
    int64_t e = 0;
    if (p < last && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0;
        if (p < last && (*p == '-' || *p == '+')) {
            eneg = *p == '-';
            p++;
        }
        if (p == last || !is_digit(*p)) {
            *rc = LOB_E_FORMAT;
            return NULL;
        }
        for (; p < last && is_digit(*p); p++) {
            if (e < 100000) {
                e = e * 10 + (*p - '0');
            }
        }
        e = eneg ? -e : e;
    }
    exp10 += e;
    double v;
    if (m == 0 && !inexact) {
        v = 0.0;
    }
    else if (!inexact && m <= ((uint64_t)1 << 53) && exp10 >= -22 && exp10 <= 22) {
        /* both operands exact, so one IEEE operation rounds correctly */
        v = exp10 < 0 ? (double)m / lob_pow10[-exp10] : (double)m * lob_pow10[exp10];
    }
    else {
        int r = decimal_slow(first + (neg || *first == '+'), mant_end, e - frac, &v);
        if (r < 0) {
            *rc = r;
            return NULL;
        }
    }
    *out = neg ? -v : v;
    return p;
}

/* The common case, prices and sizes of at most 19 digits, without a branch per digit:
 * 19 decimal digits always fit in uint64, so the limit is checked once at the end. */
const char *
lob_parse_decimal(const char *first, const char *last, double *out, int *rc)
{
    const char *p = first;
    int neg = 0;
    if (p < last && (*p == '-' || *p == '+')) {
        neg = *p == '-';
        p++;
    }
    const char *d0 = p;
    uint64_t m = 0;
    scan_digits(&p, last, &m, 0);
    ptrdiff_t ndigits = p - d0, nfrac = 0;
    if (p < last && *p == '.') {
        const char *f0 = ++p;
        scan_digits(&p, last, &m, 0);
        nfrac = p - f0;
        ndigits += nfrac;
    }
    if (ndigits == 0 || ndigits > LOB_MAX_FAST_DIGITS || (p < last && (*p == 'e' || *p == 'E'))) {
        return parse_decimal_careful(first, last, out, rc);
    }
    if (m <= ((uint64_t)1 << 53) && nfrac <= 22) {
        double v = (double)m / lob_pow10[nfrac]; /* both exact: one correct rounding */
        *out = neg ? -v : v;
        return p;
    }
    return parse_decimal_careful(first, last, out, rc);
}

const char *
lob_parse_int64(const char *first, const char *last, int64_t *out, int *rc)
{
    const char *p = first;
    int neg = p < last && *p == '-';
    p += neg;
    const char *d0 = p;
    while (p < last && *p == '0') {
        p++; /* leading zeros do not count towards the 19-digit limit */
    }
    const char *s0 = p;
    uint64_t v = 0;
    scan_digits(&p, last, &v, 1); /* 19 digits never wrap uint64; more are refused below */
    if (p == d0) {
        *rc = LOB_E_FORMAT;
        return NULL;
    }
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (p - s0 > 19 || v > limit) {
        *rc = LOB_E_RANGE;
        return NULL;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return p;
}

int
lob_epoch_to_ns(int64_t t, int64_t *ns)
{
    int64_t unit = t < 10000000000LL         ? 1000000000 /* < 1e10: seconds */
                   : t < 10000000000000LL    ? 1000000    /* < 1e13: milliseconds */
                   : t < 10000000000000000LL ? 1000       /* < 1e16: microseconds */
                                             : 1;
    if (t < LOB_TS_MIN || t > LOB_TS_MAX / unit) {
        return LOB_E_RANGE; /* 1970..2262 only, checked before the product is formed */
    }
    *ns = t * unit;
    return LOB_OK;
}

/* ns per unit of an epoch time told apart by magnitude (see lob_epoch_to_ns). */
static int64_t
auto_unit(uint64_t t)
{
    return t < 10000000000ULL         ? 1000000000
           : t < 10000000000000ULL    ? 1000000
           : t < 10000000000000000ULL ? 1000
                                      : 1;
}

const char *
lob_parse_time(const char *p, const char *e, int64_t unit, int64_t *ns, int *rc)
{
    int quoted = p < e && *p == '"';
    p += quoted;
    uint64_t v = 0;
    int digits = 0;
    for (; p < e && is_digit(*p); p++, digits++) {
        v = v * 10 + (uint64_t)(*p - '0');
    }
    uint64_t frac = 0, scale = 1;
    if (p < e && *p == '.') {
        for (p++; p < e && is_digit(*p); p++) {
            if (scale < 1000000000ULL) { /* ns resolution at most: further digits are dropped */
                frac = frac * 10 + (uint64_t)(*p - '0');
                scale *= 10;
            }
        }
    }
    if (quoted) {
        if (p == e || *p != '"') {
            digits = 0;
        }
        p++;
    }
    if (digits == 0 || digits > 19) {
        *rc = LOB_E_FORMAT;
        return NULL;
    }
    uint64_t u = unit > 0 ? (uint64_t)unit : (uint64_t)auto_unit(v);
    if (v > (uint64_t)INT64_MAX / u - 1) {
        *rc = LOB_E_RANGE;
        return NULL;
    }
    *ns = (int64_t)(v * u + frac * u / scale);
    return p;
}
