/* test_core.c -- main() and the tests of number.c, cells.c, json.c, table.c and book.c.
 *
 * tests/test_c_core.py compiles every tests/c and csrc/core source into one binary with
 * gcc -std=c11 -Wall -Wextra -Werror -fsanitize=address,undefined and runs it as
 * `test_core [fixture-dir]`; without an argument it makes a directory under /tmp.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */

#include "test.h"

#include "core/blocks.h"
#include "core/book/book.h"
#include "core/formats/cells.h"
#include "core/formats/json.h"
#include "core/formats/number.h"
#include "core/schema.h"
#include "core/table.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int lob_test_run = 0;
int lob_test_failed = 0;
const char *lob_test_dir = NULL;

const char *
lob_test_path(const char *name)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", lob_test_dir, name);
    return buf;
}

int
lob_test_write(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    int rc = fclose(f);
    return w == n && rc == 0 ? 0 : -1;
}

int
lob_test_bits_equal(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* ------------------------------------------------------------------ number.c */

/* Parse all of `s`; `*used` is the number of bytes consumed, or -1 on failure. */
static int
dec(const char *s, double *v, ptrdiff_t *used)
{
    int rc = LOB_OK;
    *v = -12345.0; /* must not be written on failure (checked by callers that care) */
    const char *e = lob_parse_decimal(s, s + strlen(s), v, &rc);
    *used = e ? e - s : -1;
    return e ? LOB_OK : rc;
}

/* Is `s` parsed completely to exactly `want` (the compiler's correctly rounded literal)? */
static int
dec_is(const char *s, double want)
{
    double v;
    ptrdiff_t used;
    return dec(s, &v, &used) == LOB_OK && used == (ptrdiff_t)strlen(s) &&
           lob_test_bits_equal(v, want);
}

/* Same, checked against the C library's strtod on the same text. */
static int
dec_matches_strtod(const char *s)
{
    char *end;
    double want = strtod(s, &end);
    return *end == '\0' && dec_is(s, want);
}

static int
dec_fails(const char *s, int code)
{
    double v;
    ptrdiff_t used;
    return dec(s, &v, &used) == code && used == -1;
}

static void
test_decimal(void)
{
    /* the values Binance sends, and the classic hard cases of decimal -> binary */
    test_cond("decimal: price with trailing zeros", dec_is("61737.63000000", 61737.63));
    test_cond("decimal: qty with leading zeros after the point", dec_is("0.00001234", 1.234e-05));
    test_cond("decimal: 0.1", dec_is("0.1", 0.1));
    test_cond("decimal: 0.30000000000000004", dec_is("0.30000000000000004", 0.30000000000000004));
    test_cond("decimal: integer", dec_is("42", 42.0));
    test_cond("decimal: 2^53 + 1 rounds to even", dec_is("9007199254740993", 9007199254740992.0));
    test_cond("decimal: 2^53 + 3 rounds to even", dec_is("9007199254740995", 9007199254740996.0));
    test_cond("decimal: 1e22 (last exact power of ten)", dec_is("1e22", 1e22));
    test_cond("decimal: 1e23 (not exact, slow path)", dec_is("1e23", 1e23));
    test_cond("decimal: DBL_MAX", dec_is("1.7976931348623157e308", DBL_MAX));
    test_cond("decimal: DBL_MIN", dec_is("2.2250738585072014e-308", DBL_MIN));
    test_cond("decimal: smallest subnormal",
              dec_is("4.9406564584124654e-324", 4.9406564584124654e-324));
    {
        /* a nonzero literal that rounds to 0 is refused (it would read as a deleted level);
         * zero itself, however spelled, is 0 */
        const char *tiny = "1e-400";
        double v = 7;
        int rc = LOB_OK;
        test_cond("decimal: 1e-400 (underflows to 0) is refused",
                  lob_parse_decimal(tiny, tiny + strlen(tiny), &v, &rc) == NULL &&
                      rc == LOB_E_RANGE && v == 7);
        test_cond("decimal: 0e-400 is 0", dec_is("0e-400", 0.0));
        test_cond("decimal: 0.000 is 0", dec_is("0.000", 0.0));
    }
    test_cond("decimal: halfway case 2^-1074 * 0.5 + tiny",
              dec_matches_strtod("2.4703282292062328e-324"));
    test_cond("decimal: Paxson's hard case", dec_matches_strtod("8.98846567431158e307"));
    test_cond("decimal: 17-digit round trip", dec_is("0.1234567890123456", 0.1234567890123456));

    test_cond("decimal: zero", dec_is("0", 0.0));
    test_cond("decimal: 0.00000000", dec_is("0.00000000", 0.0));
    test_cond("decimal: -0 keeps its sign", dec_is("-0", -0.0));
    test_cond("decimal: -0.0e5 keeps its sign", dec_is("-0.0e5", -0.0));
    test_cond("decimal: negative", dec_is("-61737.63", -61737.63));
    test_cond("decimal: explicit plus", dec_is("+1.5", 1.5));

    /* trailing and leading zeros must not change the value or push it off the fast path */
    test_cond("decimal: trailing zeros (20 after the point)",
              dec_is("1.50000000000000000000", 1.5));
    test_cond("decimal: trailing zeros in an integer", dec_is("1000000000000000000000", 1e21));
    test_cond("decimal: leading zeros in the integer part", dec_is("000123.4500", 123.45));
    test_cond("decimal: 30 leading zeros after the point",
              dec_is("0.0000000000000000000000000000001", 1e-31));
    test_cond("decimal: leading zeros do not count towards 40 digits",
              dec_matches_strtod("0.000000000000000000000000000000000000000000000000001234"));

    test_cond("decimal: exponent", dec_is("1.5e3", 1500.0));
    test_cond("decimal: exponent E+", dec_is("1.5E+3", 1500.0));
    test_cond("decimal: negative exponent", dec_is("15e-1", 1.5));
    test_cond("decimal: exponent with leading zeros", dec_is("1e0005", 1e5));
    test_cond("decimal: exponent cancels fraction", dec_is("0.000123e4", 1.23));
    test_cond("decimal: point without fraction digits", dec_is("5.", 5.0));
    test_cond("decimal: point without integer digits", dec_is(".5", 0.5));
    test_cond("decimal: huge exponent on zero", dec_is("0e999999999999", 0.0));

    /* more than 19 significant digits: exact via the slow path */
    test_cond("decimal: 20 digits", dec_matches_strtod("12345678901234567890"));
    test_cond("decimal: 23 digits with a point", dec_matches_strtod("1234567890.1234567890123"));
    test_cond("decimal: 30 digits",
              dec_is("123456789012345678901234567890", 1.2345678901234568e29));
    test_cond("decimal: 40 digits (the limit)",
              dec_matches_strtod("1234567890123456789012345678901234567890"));
    test_cond("decimal: 25 digits then an exponent",
              dec_matches_strtod("1.234567890123456789012345e-10"));
    test_cond("decimal: 20 digits, negative", dec_matches_strtod("-9.9999999999999999999"));

    test_cond("decimal: 41 digits -> LOB_E_RANGE",
              dec_fails("12345678901234567890123456789012345678901", LOB_E_RANGE));
    test_cond(
        "decimal: 60 digits -> LOB_E_RANGE",
        dec_fails("123456789012345678901234567890123456789012345678901234567890", LOB_E_RANGE));
    test_cond("decimal: 1e400 -> LOB_E_RANGE", dec_fails("1e400", LOB_E_RANGE));
    test_cond("decimal: -1e400 -> LOB_E_RANGE", dec_fails("-1e400", LOB_E_RANGE));
    test_cond("decimal: 2e308 -> LOB_E_RANGE", dec_fails("2e308", LOB_E_RANGE));

    test_cond("decimal: empty -> LOB_E_FORMAT", dec_fails("", LOB_E_FORMAT));
    test_cond("decimal: '-' -> LOB_E_FORMAT", dec_fails("-", LOB_E_FORMAT));
    test_cond("decimal: '+' -> LOB_E_FORMAT", dec_fails("+", LOB_E_FORMAT));
    test_cond("decimal: '.' -> LOB_E_FORMAT", dec_fails(".", LOB_E_FORMAT));
    test_cond("decimal: '-.' -> LOB_E_FORMAT", dec_fails("-.", LOB_E_FORMAT));
    test_cond("decimal: 'e5' -> LOB_E_FORMAT", dec_fails("e5", LOB_E_FORMAT));
    test_cond("decimal: '1e' -> LOB_E_FORMAT", dec_fails("1e", LOB_E_FORMAT));
    test_cond("decimal: '1e+' -> LOB_E_FORMAT", dec_fails("1e+", LOB_E_FORMAT));
    test_cond("decimal: leading blank -> LOB_E_FORMAT", dec_fails(" 1", LOB_E_FORMAT));
    test_cond("decimal: 'nan' -> LOB_E_FORMAT", dec_fails("nan", LOB_E_FORMAT));
    test_cond("decimal: 'inf' -> LOB_E_FORMAT", dec_fails("inf", LOB_E_FORMAT));

    double v;
    ptrdiff_t used;
    int rc = dec("1.25,\"next\"", &v, &used);
    test_cond("decimal: stops at ',' after the number", rc == LOB_OK && used == 4 && v == 1.25);
    rc = dec("12abc", &v, &used);
    test_cond("decimal: stops at a letter", rc == LOB_OK && used == 2 && v == 12.0);
    rc = dec("1.5e3x", &v, &used);
    test_cond("decimal: stops after the exponent", rc == LOB_OK && used == 5 && v == 1500.0);
    rc = dec("0x10", &v, &used);
    test_cond("decimal: no hex (stops at 'x')", rc == LOB_OK && used == 1 && v == 0.0);
    rc = dec("7\"", &v, &used);
    test_cond("decimal: stops at a closing quote", rc == LOB_OK && used == 1 && v == 7.0);
    rc = dec("1e", &v, &used);
    test_cond("decimal: a failed parse leaves *out alone", rc == LOB_E_FORMAT && v == -12345.0);

    /* the end pointer bounds the parse: the same text read through a shorter window */
    const char *s = "123.456e7";
    rc = LOB_OK;
    const char *e = lob_parse_decimal(s, s + 5, &v, &rc);
    test_cond("decimal: stops at `last` inside the fraction", e == s + 5 && v == 123.4);
    e = lob_parse_decimal(s, s + 8, &v, &rc);
    test_cond("decimal: an exponent cut at `last` -> LOB_E_FORMAT",
              e == NULL && rc == LOB_E_FORMAT);
    e = lob_parse_decimal(s, s, &v, &rc);
    test_cond("decimal: an empty window -> LOB_E_FORMAT", e == NULL && rc == LOB_E_FORMAT);

    /* regression: trailing zeros are not significant digits; only the slow path counts them */
    test_cond("decimal: 0.1 followed by 45 zeros is 0.1, not LOB_E_RANGE",
              dec_is("0.1000000000000000000000000000000000000000000000", 0.1));
}

static int
int64_is(const char *s, int64_t want)
{
    int64_t v = 0;
    int rc = LOB_OK;
    const char *e = lob_parse_int64(s, s + strlen(s), &v, &rc);
    return e == s + strlen(s) && v == want;
}

static int
int64_fails(const char *s, int code)
{
    int64_t v = 0;
    int rc = LOB_OK;
    return lob_parse_int64(s, s + strlen(s), &v, &rc) == NULL && rc == code;
}

static void
test_int64(void)
{
    test_cond("int64: 0", int64_is("0", 0));
    test_cond("int64: leading zeros", int64_is("007", 7));
    test_cond("int64: -0", int64_is("-0", 0));
    test_cond("int64: a Binance update id", int64_is("5123107832006", 5123107832006LL));
    test_cond("int64: INT64_MAX", int64_is("9223372036854775807", INT64_MAX));
    test_cond("int64: INT64_MIN", int64_is("-9223372036854775808", INT64_MIN));
    test_cond("int64: INT64_MAX + 1 -> LOB_E_RANGE",
              int64_fails("9223372036854775808", LOB_E_RANGE));
    test_cond("int64: INT64_MIN - 1 -> LOB_E_RANGE",
              int64_fails("-9223372036854775809", LOB_E_RANGE));
    test_cond("int64: 20 nines -> LOB_E_RANGE", int64_fails("99999999999999999999", LOB_E_RANGE));
    test_cond("int64: 10 * INT64_MAX -> LOB_E_RANGE",
              int64_fails("92233720368547758070", LOB_E_RANGE));
    test_cond("int64: empty -> LOB_E_FORMAT", int64_fails("", LOB_E_FORMAT));
    test_cond("int64: '-' -> LOB_E_FORMAT", int64_fails("-", LOB_E_FORMAT));
    test_cond("int64: '+1' -> LOB_E_FORMAT (JSON has no plus)", int64_fails("+1", LOB_E_FORMAT));
    test_cond("int64: 'x' -> LOB_E_FORMAT", int64_fails("x", LOB_E_FORMAT));

    const char *s = "1723161253937085768 {";
    int64_t v = 0;
    int rc = LOB_OK;
    const char *e = lob_parse_int64(s, s + strlen(s), &v, &rc);
    test_cond("int64: stops at the blank after a receive time",
              e == s + 19 && v == 1723161253937085768LL);
    e = lob_parse_int64(s, s + 4, &v, &rc);
    test_cond("int64: stops at `last`", e == s + 4 && v == 1723);
}

static int64_t
epoch(int64_t t)
{
    int64_t ns = -1;
    return lob_epoch_to_ns(t, &ns) == LOB_OK ? ns : -1;
}

static void
test_epoch(void)
{
    const int64_t ns = 1723161255208123456LL;
    test_cond("epoch: seconds", epoch(1723161255LL) == 1723161255000000000LL);
    test_cond("epoch: milliseconds", epoch(1723161255208LL) == 1723161255208000000LL);
    test_cond("epoch: microseconds", epoch(1723161255208123LL) == 1723161255208123000LL);
    test_cond("epoch: nanoseconds unchanged", epoch(ns) == ns);
    test_cond("epoch: zero", epoch(0) == 0);
    test_cond("epoch: 1973 in seconds (smallest 10-digit)",
              epoch(1000000000LL) == 1000000000000000000LL);
    test_cond("epoch: 1e10 is read as milliseconds", epoch(10000000000LL) == 10000000000000000LL);
    test_cond("epoch: 1e13 is read as microseconds",
              epoch(10000000000000LL) == 10000000000000000LL);
    test_cond("epoch: 1e16 is read as nanoseconds",
              epoch(10000000000000000LL) == 10000000000000000LL);
    test_cond("epoch: 2262-01-01 in seconds (LOB_TS_MAX)", epoch(9214646400LL) == LOB_TS_MAX);
    /* found by fuzz_binance: the top of each unit's range does not fit int64 ns; the
     * multiply used to overflow (undefined) and wrap to a time before 1970 */
    int64_t out = 0;
    test_cond("epoch: 9223372037 s is refused", lob_epoch_to_ns(9223372037LL, &out) == LOB_E_RANGE);
    test_cond("epoch: 9999999999 s is refused", lob_epoch_to_ns(9999999999LL, &out) == LOB_E_RANGE);
    test_cond("epoch: 9700000000400 ms is refused",
              lob_epoch_to_ns(9700000000400LL, &out) == LOB_E_RANGE);
    test_cond("epoch: 9999999999999999 us is refused",
              lob_epoch_to_ns(9999999999999999LL, &out) == LOB_E_RANGE);
    test_cond("epoch: negative times are refused",
              lob_epoch_to_ns(-1000000000LL, &out) == LOB_E_RANGE);
    test_cond("epoch: INT64_MIN is refused", lob_epoch_to_ns(INT64_MIN, &out) == LOB_E_RANGE);
    /* times lie in 1970..2262 (LOB_TS_MIN..LOB_TS_MAX): past it in any unit is refused */
    test_cond("epoch: LOB_TS_MAX ns is kept", epoch(LOB_TS_MAX) == LOB_TS_MAX);
    test_cond("epoch: LOB_TS_MAX + 1 ns is refused",
              lob_epoch_to_ns(LOB_TS_MAX + 1, &out) == LOB_E_RANGE);
    test_cond("epoch: 9214646401 s is refused", lob_epoch_to_ns(9214646401LL, &out) == LOB_E_RANGE);
    test_cond("epoch: INT64_MAX ns is refused", lob_epoch_to_ns(INT64_MAX, &out) == LOB_E_RANGE);
}

/* ------------------------------------------------------------------ cells.c */

static lob_cell
cell(const char *s)
{
    lob_cell c = {s, strlen(s)};
    return c;
}

/* The cell fails with `code` and exactly the message `msg`. */
static int
cell_fails(int rc, const lob_error *err, int code, const char *msg)
{
    return rc == code && err->code == code && strcmp(err->msg, msg) == 0;
}

static void
test_cells(void)
{
    lob_error err = {0};
    int64_t i = 0;
    double d = 0;
    int v = 0;
    lob_cell c = cell("-42");
    test_cond("cells: int64", lob_cell_int64(&c, 0, "id", &i, &err) == 0 && i == -42);
    c = cell("4.5");
    test_cond("cells: an int64 names column, name and cell",
              cell_fails(lob_cell_int64(&c, 0, "id", &i, &err), &err, LOB_E_FORMAT,
                         "column 1 (id): expected an integer, found '4.5'"));
    c = cell("99999999999999999999");
    test_cond("cells: an int64 past int64 is LOB_E_RANGE",
              lob_cell_int64(&c, 0, "id", &i, &err) == LOB_E_RANGE);
    c = cell("");
    test_cond("cells: an empty cell is said to be empty",
              cell_fails(lob_cell_int64(&c, 2, "id", &i, &err), &err, LOB_E_FORMAT,
                         "column 3 (id): expected an integer, found an empty cell"));

    /* numbers: the sign rules, empty and 'nan' cells where the format allows them */
    c = cell("0");
    test_cond("cells: a price must be > 0",
              cell_fails(lob_cell_number(&c, 6, "price", LOB_NUM_POSITIVE, "a price", &d, &err),
                         &err, LOB_E_RANGE, "column 7 (price): expected a price > 0, found '0'"));
    test_cond("cells: an amount may be 0",
              lob_cell_number(&c, 7, "amount", LOB_NUM_NONNEG, "an amount", &d, &err) == 0 &&
                  d == 0);
    c = cell("-0.5");
    test_cond("cells: an amount must be >= 0",
              cell_fails(lob_cell_number(&c, 7, "amount", LOB_NUM_NONNEG, "an amount", &d, &err),
                         &err, LOB_E_RANGE,
                         "column 8 (amount): expected an amount >= 0, found '-0.5'"));
    test_cond("cells: any number",
              lob_cell_number(&c, 0, "x", LOB_NUM_ANY, NULL, &d, &err) == 0 && d == -0.5);
    c = cell("");
    test_cond("cells: an empty number cell is NaN where allowed",
              lob_cell_number(&c, 0, "x", LOB_NUM_EMPTY_NAN, NULL, &d, &err) == 0 && isnan(d));
    test_cond("cells: and an error elsewhere",
              lob_cell_number(&c, 0, "x", LOB_NUM_POSITIVE, "a price", &d, &err) == LOB_E_FORMAT);
    c = cell("NaN");
    test_cond("cells: 'nan' in any case where allowed",
              lob_cell_number(&c, 0, "x", LOB_NUM_NAN_TEXT, NULL, &d, &err) == 0 && isnan(d));
    test_cond("cells: and an error elsewhere",
              cell_fails(lob_cell_number(&c, 0, "x", LOB_NUM_ANY, NULL, &d, &err), &err,
                         LOB_E_FORMAT, "column 1 (x): expected a decimal number, found 'NaN'"));
    c = cell("1e-400");
    test_cond("cells: a nonzero number that rounds to 0 is refused",
              cell_fails(lob_cell_number(&c, 0, "x", LOB_NUM_NONNEG, "a size", &d, &err), &err,
                         LOB_E_RANGE,
                         "column 1 (x): expected a decimal number within float64 range, found "
                         "'1e-400'"));
    c = cell("1.5x");
    test_cond("cells: text after a number",
              lob_cell_number(&c, 0, "x", LOB_NUM_ANY, NULL, &d, &err) == LOB_E_FORMAT);

    /* times: units, the 1970..2262 bounds, checked before the scaling */
    int64_t ns = 0;
    c = cell("1723161255208123");
    test_cond("cells: a time in us",
              lob_cell_time(&c, 0, "t", 1000, LOB_TIME_INT, &ns, &err) == 0 &&
                  ns == 1723161255208123000LL);
    test_cond("cells: a time by magnitude",
              lob_cell_time(&c, 0, "t", 0, LOB_TIME_INT, &ns, &err) == 0 &&
                  ns == 1723161255208123000LL);
    c = cell("9214646400");
    test_cond("cells: 2262-01-01 in s",
              lob_cell_time(&c, 0, "t", 1000000000, LOB_TIME_INT, &ns, &err) == 0 &&
                  ns == LOB_TS_MAX);
    c = cell("9214646401");
    test_cond("cells: a second past 2262 is refused, not wrapped",
              cell_fails(lob_cell_time(&c, 3, "ts", 1000000000, LOB_TIME_INT, &ns, &err), &err,
                         LOB_E_RANGE,
                         "column 4 (ts): expected a time in s between 1970 and 2262, found "
                         "'9214646401'"));
    c = cell("9223372036854775807");
    test_cond("cells: INT64_MAX us is refused (the product would overflow)",
              lob_cell_time(&c, 0, "t", 1000, LOB_TIME_INT, &ns, &err) == LOB_E_RANGE);
    c = cell("-1");
    test_cond("cells: a time before 1970 is refused",
              lob_cell_time(&c, 0, "t", 1000, LOB_TIME_INT, &ns, &err) == LOB_E_RANGE);
    c = cell("1.5");
    test_cond("cells: an integer time has no fraction",
              cell_fails(lob_cell_time(&c, 2, "timestamp", 1000, LOB_TIME_INT, &ns, &err), &err,
                         LOB_E_FORMAT,
                         "column 3 (timestamp): expected an integer time in us since the epoch, "
                         "found '1.5'"));
    test_cond("cells: a decimal time has one",
              lob_cell_time(&c, 0, "t", 1000, LOB_TIME_DECIMAL, &ns, &err) == 0 && ns == 1500);
    c = cell("\"1723161255\"");
    test_cond("cells: a decimal time may be quoted",
              lob_cell_time(&c, 0, "t", 1000000000, LOB_TIME_DECIMAL, &ns, &err) == 0 &&
                  ns == 1723161255000000000LL);
    c = cell("9214646401");
    test_cond("cells: a decimal time past 2262 is refused",
              lob_cell_time(&c, 0, "t", 1000000000, LOB_TIME_DECIMAL, &ns, &err) == LOB_E_RANGE);

    /* sides, bools, text */
    c = cell("Sell");
    test_cond("cells: a side in any case",
              lob_cell_side(&c, 0, "side", LOB_SIDE_TRADE | LOB_SIDE_NOCASE, &v, &err) == 0 &&
                  v == -1);
    test_cond("cells: or lower case only",
              cell_fails(lob_cell_side(&c, 5, "side", LOB_SIDE_TRADE | LOB_SIDE_UNKNOWN, &v, &err),
                         &err, LOB_E_FORMAT,
                         "column 6 (side): expected 'buy', 'sell' or 'unknown', found 'Sell'"));
    c = cell("buy");
    test_cond("cells: a trade side is no book side",
              cell_fails(lob_cell_side(&c, 5, "side", LOB_SIDE_BOOK, &v, &err), &err, LOB_E_FORMAT,
                         "column 6 (side): expected 'bid' or 'ask', found 'buy'"));
    c = cell("");
    test_cond("cells: an empty side is unknown where allowed",
              lob_cell_side(&c, 0, "side", LOB_SIDE_BOOK | LOB_SIDE_UNKNOWN, &v, &err) == 0 &&
                  v == 0);
    c = (lob_cell){"bi\0", 3};
    test_cond("cells: a NUL inside a cell is shown escaped",
              lob_cell_side(&c, 0, "side", LOB_SIDE_BOOK, &v, &err) == LOB_E_FORMAT &&
                  strstr(err.msg, "found 'bi\\x00'") != NULL);
    c = cell("TRUE");
    test_cond("cells: a bool in any case",
              lob_cell_bool(&c, 0, "b", LOB_BOOL_WORDS, &v, &err) == 0 && v == 1);
    c = cell("0");
    test_cond("cells: digits where allowed",
              lob_cell_bool(&c, 0, "b", LOB_BOOL_DIGITS, &v, &err) == 0 && v == 0);
    test_cond("cells: and an error elsewhere",
              cell_fails(lob_cell_bool(&c, 4, "is_snapshot", LOB_BOOL_WORDS, &v, &err), &err,
                         LOB_E_FORMAT,
                         "column 5 (is_snapshot): expected 'true' or 'false' (any case), found "
                         "'0'"));
    c = cell("BTC\tUSDT");
    test_cond("cells: text without control bytes",
              cell_fails(lob_cell_text(&c, 1, "sym", 64, &err), &err, LOB_E_FORMAT,
                         "column 2 (sym): expected text without control bytes (NUL, tab, "
                         "newline, ...), found 'BTC\\x09USDT'"));
    c = cell("BTCUSDT");
    test_cond("cells: text of at most `max` bytes",
              lob_cell_text(&c, 1, "sym", 7, &err) == 0 &&
                  cell_fails(lob_cell_text(&c, 1, "sym", 6, &err), &err, LOB_E_RANGE,
                             "column 2 (sym): expected text of at most 6 bytes, found 'BTCUSDT'"));
}

/* ------------------------------------------------------------------ json.c */

static lob_json
jtext(const char *s)
{
    lob_json j = {s, s + strlen(s), NULL};
    return j;
}

/* Skip one value; @return the code, and *rest the text after it. */
static int
skip(const char *s, const char **rest)
{
    lob_json j = jtext(s);
    int rc = lob_json_skip(&j, 0);
    *rest = j.p;
    return rc;
}

static int
skips_to(const char *s, const char *rest_want)
{
    const char *rest;
    return skip(s, &rest) == LOB_OK && strcmp(rest, rest_want) == 0;
}

static int
skip_fails(const char *s)
{
    const char *rest;
    return skip(s, &rest) == LOB_E_FORMAT;
}

/* "[[[...1...]]]" with `depth` brackets, malloc'd. */
static char *
nested(int depth, char open, char close)
{
    char *s = malloc((size_t)depth * 2 + 2);
    if (s == NULL) {
        return NULL;
    }
    memset(s, open, (size_t)depth);
    s[depth] = '1';
    memset(s + depth + 1, close, (size_t)depth);
    s[depth * 2 + 1] = '\0';
    return s;
}

static void
test_json_strings(void)
{
    const char *str;
    size_t n = 0;
    lob_json j = jtext("  \"BTCUSDT\",");
    int rc = lob_json_string(&j, &str, &n);
    test_cond("json: string after blanks",
              rc == LOB_OK && n == 7 && memcmp(str, "BTCUSDT", 7) == 0 && *j.p == ',');

    const char *raw = "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\"";
    j = jtext(raw);
    rc = lob_json_string(&j, &str, &n);
    test_cond("json: every escape accepted, returned raw (not decoded)",
              rc == LOB_OK && n == strlen(raw) - 2 && str == raw + 1 && j.p == raw + strlen(raw));

    j = jtext("\"\"x");
    rc = lob_json_string(&j, &str, &n);
    test_cond("json: empty string", rc == LOB_OK && n == 0 && *j.p == 'x');

    j = jtext("\"caf\xc3\xa9\"");
    rc = lob_json_string(&j, &str, &n);
    test_cond("json: UTF-8 bytes pass through", rc == LOB_OK && n == 5);

    j = jtext("\"a\\xb\"");
    rc = lob_json_string(&j, &str, &n);
    test_cond("json: invalid escape \\x -> LOB_E_FORMAT at the escape",
              rc == LOB_E_FORMAT && *j.p == 'x' && strstr(j.expected, "escape") != NULL);

    char with_nul[] = "\"a\\\0b\"";
    j.p = with_nul;
    j.end = with_nul + sizeof with_nul - 1;
    rc = lob_json_string(&j, &str, &n);
    test_cond("json: backslash + NUL byte is not an escape", rc == LOB_E_FORMAT);

    j = jtext("\"abc\\");
    rc = lob_json_string(&j, &str, &n);
    test_cond("json: backslash at the end of input", rc == LOB_E_FORMAT);

    j = jtext("\"abc");
    rc = lob_json_string(&j, &str, &n);
    test_cond("json: unterminated string -> LOB_E_FORMAT",
              rc == LOB_E_FORMAT && strstr(j.expected, "closing") != NULL);

    j = jtext("\"a\nb\"");
    rc = lob_json_string(&j, &str, &n);
    test_cond("json: raw control character -> LOB_E_FORMAT", rc == LOB_E_FORMAT && *j.p == '\n');

    j = jtext("abc");
    rc = lob_json_string(&j, &str, &n);
    test_cond("json: not a string -> LOB_E_FORMAT", rc == LOB_E_FORMAT && *j.p == 'a');

    j = jtext("");
    rc = lob_json_string(&j, &str, &n);
    test_cond("json: string at the end of input -> LOB_E_FORMAT", rc == LOB_E_FORMAT);

    /* regression: the header promises validated escapes; \u needs four hex digits */
    j = jtext("\"\\uZZZZ\"");
    rc = lob_json_string(&j, &str, &n);
    test_cond("json: \\u without four hex digits -> LOB_E_FORMAT", rc == LOB_E_FORMAT);
}

static void
test_json_skip(void)
{
    test_cond("json skip: string", skips_to("\"a\\\"b\" ,", " ,"));
    test_cond("json skip: integer", skips_to("-12,", ","));
    test_cond("json skip: decimal with exponent", skips_to("1.5e-3]", "]"));
    test_cond("json skip: true", skips_to("true}", "}"));
    test_cond("json skip: false", skips_to("false,", ","));
    test_cond("json skip: null", skips_to("null", ""));
    test_cond("json skip: empty object", skips_to("{ }x", "x"));
    test_cond("json skip: empty array", skips_to("[ ]x", "x"));
    test_cond("json skip: object of every type",
              skips_to("{\"a\":1,\"b\":\"s\",\"c\":[true,false,null],\"d\":{\"e\":{}},\"f\":-0.5}!",
                       "!"));
    test_cond("json skip: blanks everywhere",
              skips_to(" \t\r\n[ 1 , { \"a\" : [ ] } , \"x\" ] ,", " ,"));
    test_cond("json skip: nested arrays of levels",
              skips_to("[[\"61737.63\",\"0.1\"],[\"61730.17\",\"0\"]]", ""));

    test_cond("json skip: empty input", skip_fails(""));
    test_cond("json skip: only blanks", skip_fails("   "));
    test_cond("json skip: truncated object", skip_fails("{\"a\":1"));
    test_cond("json skip: truncated object after ','", skip_fails("{\"a\":1,"));
    test_cond("json skip: truncated key", skip_fails("{\"a"));
    test_cond("json skip: truncated before value", skip_fails("{\"a\":"));
    test_cond("json skip: truncated array", skip_fails("[1,2"));
    test_cond("json skip: truncated array after ','", skip_fails("[1,"));
    test_cond("json skip: truncated string", skip_fails("\"abc"));
    test_cond("json skip: truncated true", skip_fails("tru"));
    test_cond("json skip: truncated false", skip_fails("fals"));
    test_cond("json skip: truncated null", skip_fails("nul"));
    test_cond("json skip: lone minus", skip_fails("-"));
    test_cond("json skip: key without ':'", skip_fails("{\"a\" 1}"));
    test_cond("json skip: non-string key", skip_fails("{a:1}"));
    test_cond("json skip: missing ',' in an object", skip_fails("{\"a\":1 \"b\":2}"));
    test_cond("json skip: missing ',' in an array", skip_fails("[1 2]"));
    test_cond("json skip: not a value", skip_fails("}"));
    test_cond("json skip: capitalised literal", skip_fails("True"));

    char *ok = nested(LOB_JSON_MAX_DEPTH, '[', ']');
    char *deep = nested(LOB_JSON_MAX_DEPTH + 1, '[', ']');
    char *huge = nested(100000, '[', ']');
    char *objs = malloc(200001 * 5 + 2);
    const char *rest = NULL;
    test_cond("json skip: 64 nested arrays accepted", ok && skip(ok, &rest) == LOB_OK && !*rest);
    lob_json j = jtext(deep ? deep : "");
    int rc = lob_json_skip(&j, 0);
    test_cond("json skip: 65 nested arrays refused",
              rc == LOB_E_FORMAT && j.expected && strstr(j.expected, "nesting") != NULL);
    test_cond("json skip: 100000 nested arrays refused without deep recursion",
              huge && skip_fails(huge));
    if (objs != NULL) {
        size_t k = 0;
        for (int i = 0; i < 100000; i++) {
            memcpy(objs + k, "{\"a\":", 5);
            k += 5;
        }
        objs[k] = '\0';
        test_cond("json skip: 100000 nested objects refused", skip_fails(objs));
    }
    free(ok);
    free(deep);
    free(huge);
    free(objs);
}

static void
test_json_values(void)
{
    int64_t i = 0;
    lob_json j = jtext(" 1723161255208,");
    int rc = lob_json_int64(&j, &i);
    test_cond("json int64: after a blank", rc == LOB_OK && i == 1723161255208LL && *j.p == ',');
    j = jtext("1.5");
    test_cond("json int64: a decimal is not an integer", lob_json_int64(&j, &i) == LOB_E_FORMAT);
    j = jtext("1e3");
    test_cond("json int64: an exponent is not an integer", lob_json_int64(&j, &i) == LOB_E_FORMAT);
    j = jtext("9223372036854775808");
    rc = lob_json_int64(&j, &i);
    test_cond("json int64: overflow -> LOB_E_RANGE",
              rc == LOB_E_RANGE && strstr(j.expected, "int64") != NULL);
    j = jtext("\"5\"");
    test_cond("json int64: a quoted integer is refused", lob_json_int64(&j, &i) == LOB_E_FORMAT);

    double d = 0;
    j = jtext("\"61737.63000000\"]");
    rc = lob_json_decimal(&j, &d);
    test_cond("json decimal: quoted", rc == LOB_OK && d == 61737.63 && *j.p == ']');
    j = jtext(" 0.5,");
    rc = lob_json_decimal(&j, &d);
    test_cond("json decimal: bare", rc == LOB_OK && d == 0.5 && *j.p == ',');
    j = jtext("\"1.5");
    test_cond("json decimal: missing closing quote", lob_json_decimal(&j, &d) == LOB_E_FORMAT);
    j = jtext("\"1.5x\"");
    test_cond("json decimal: junk inside the quotes", lob_json_decimal(&j, &d) == LOB_E_FORMAT);
    j = jtext("\" 1.5\"");
    test_cond("json decimal: blank inside the quotes", lob_json_decimal(&j, &d) == LOB_E_FORMAT);
    j = jtext("\"\"");
    test_cond("json decimal: empty string", lob_json_decimal(&j, &d) == LOB_E_FORMAT);
    j = jtext("\"1e400\"");
    rc = lob_json_decimal(&j, &d);
    test_cond("json decimal: out of range -> LOB_E_RANGE",
              rc == LOB_E_RANGE && strstr(j.expected, "range") != NULL);

    int b = -1;
    j = jtext(" true,");
    test_cond("json bool: true", lob_json_bool(&j, &b) == LOB_OK && b == 1 && *j.p == ',');
    j = jtext("false");
    test_cond("json bool: false", lob_json_bool(&j, &b) == LOB_OK && b == 0);
    j = jtext("tru");
    test_cond("json bool: truncated", lob_json_bool(&j, &b) == LOB_E_FORMAT);
    j = jtext("1");
    test_cond("json bool: a number is not a bool", lob_json_bool(&j, &b) == LOB_E_FORMAT);

    /* members: keys come back as raw slices, values are left to the caller */
    const char *key;
    size_t klen;
    int first = 1;
    j = jtext("{ \"e\" : \"trade\" , \"pu\":7 }!");
    lob_json_eat(&j, '{');
    int r1 = lob_json_next_member(&j, &first, &key, &klen);
    int k1 = r1 == 1 && klen == 1 && key[0] == 'e';
    lob_json_skip(&j, 1);
    int r2 = lob_json_next_member(&j, &first, &key, &klen);
    int k2 = r2 == 1 && klen == 2 && memcmp(key, "pu", 2) == 0;
    lob_json_skip(&j, 1);
    int r3 = lob_json_next_member(&j, &first, &key, &klen);
    test_cond("json members: two members then '}'", k1 && k2 && r3 == 0 && *j.p == '!');

    first = 1;
    j = jtext("{}");
    lob_json_eat(&j, '{');
    test_cond("json members: empty object", lob_json_next_member(&j, &first, &key, &klen) == 0);

    first = 1;
    j = jtext("{\"a\" 1}");
    lob_json_eat(&j, '{');
    test_cond("json members: missing ':'",
              lob_json_next_member(&j, &first, &key, &klen) == LOB_E_FORMAT);

    first = 1;
    j = jtext("{\"a\":1 \"b\":2}");
    lob_json_eat(&j, '{');
    lob_json_next_member(&j, &first, &key, &klen);
    lob_json_skip(&j, 1);
    rc = lob_json_next_member(&j, &first, &key, &klen);
    test_cond("json members: missing ','",
              rc == LOB_E_FORMAT && strstr(j.expected, "','") != NULL && *j.p == '"');

    first = 1;
    j = jtext("{,}");
    lob_json_eat(&j, '{');
    test_cond("json members: leading ','",
              lob_json_next_member(&j, &first, &key, &klen) == LOB_E_FORMAT);

    first = 1;
    j = jtext("{\"a\":1,}");
    lob_json_eat(&j, '{');
    lob_json_next_member(&j, &first, &key, &klen);
    lob_json_skip(&j, 1);
    test_cond("json members: trailing ','",
              lob_json_next_member(&j, &first, &key, &klen) == LOB_E_FORMAT);
}

/* ------------------------------------------------------------------ table.c */

static const lob_column test_schema[] = {
    {"id", LOB_I64, 8, 1}, {"flag", LOB_U8, 1, 1}, {"book", LOB_F64, 8, 3}, /* an (N, 3) column */
};
enum { C_ID, C_FLAG, C_BOOK, C_N };

/* Append rows [from, from + n) with id = i, flag = i % 251, book = (i, -i, 0.5 i). */
static int
fill_rows(lob_table *t, int64_t from, size_t n)
{
    if (lob_table_reserve(t, n) != LOB_OK) {
        return -1;
    }
    for (size_t k = 0; k < n; k++) {
        int64_t i = from + (int64_t)k;
        size_t r = t->n + k;
        LOB_COL(t, C_ID, int64_t)[r] = i;
        LOB_COL(t, C_FLAG, uint8_t)[r] = (uint8_t)(i % 251);
        double *b = LOB_COL(t, C_BOOK, double) + r * 3;
        b[0] = (double)i;
        b[1] = -(double)i;
        b[2] = 0.5 * (double)i;
    }
    t->n += n;
    return 0;
}

/* Do rows [0, n) hold ids first, first + 1, ... in every column? */
static int
rows_are(const lob_table *t, int64_t first, size_t n)
{
    if (t->n != n) {
        return 0;
    }
    for (size_t r = 0; r < n; r++) {
        int64_t i = first + (int64_t)r;
        const double *b = LOB_COL(t, C_BOOK, double) + r * 3;
        if (LOB_COL(t, C_ID, int64_t)[r] != i || LOB_COL(t, C_FLAG, uint8_t)[r] != i % 251 ||
            b[0] != (double)i || b[1] != -(double)i || b[2] != 0.5 * (double)i) {
            return 0;
        }
    }
    return 1;
}

static void
test_table(void)
{
    lob_table t, u;
    lob_table_init(&t, test_schema, C_N);
    test_cond("table: init allocates nothing",
              t.n == 0 && t.cap == 0 && t.col[0] == NULL && t.ncol == C_N);
    test_cond("table: reserve 0 on an empty table", lob_table_reserve(&t, 0) == LOB_OK);
    test_cond("table: reserve 1 allocates 256 rows",
              lob_table_reserve(&t, 1) == LOB_OK && t.cap == 256 && t.col[C_BOOK] != NULL);
    test_cond("table: reserve within capacity keeps it",
              lob_table_reserve(&t, 256) == LOB_OK && t.cap == 256);
    test_cond("table: reserve 257 doubles", lob_table_reserve(&t, 257) == LOB_OK && t.cap == 512);
    test_cond("table: reserve near SIZE_MAX -> LOB_E_RANGE",
              lob_table_reserve(&t, SIZE_MAX - 1) == LOB_E_RANGE && t.cap == 512);

    void *cols[LOB_MAX_COLS];
    memset(cols, 0xff, sizeof cols);
    int rc = lob_table_detach(&t, cols, NULL);
    test_cond("table: detach of an empty table yields NULL buffers and frees them",
              rc == LOB_OK && cols[C_ID] == NULL && cols[C_FLAG] == NULL && cols[C_BOOK] == NULL &&
                  t.cap == 0 && t.col[C_ID] == NULL);
    rc = lob_table_detach(&t, cols, NULL);
    test_cond("table: detach of a never-allocated table", rc == LOB_OK && cols[C_ID] == NULL);

    fill_rows(&t, 0, 1000);
    test_cond("table: 1000 rows written", rows_are(&t, 0, 1000) && t.cap == 1024);
    lob_table_drop_front(&t, 0);
    test_cond("table: drop_front(0) keeps everything", rows_are(&t, 0, 1000));
    lob_table_drop_front(&t, 300);
    test_cond("table: drop_front(300) shifts every column",
              rows_are(&t, 300, 700) && t.cap == 1024);
    fill_rows(&t, 1000, 10);
    lob_table_drop_front(&t, 5000);
    test_cond("table: drop_front past the end empties it", t.n == 0 && t.cap == 1024);
    lob_table_drop_front(&t, 1);
    test_cond("table: drop_front on an empty table", t.n == 0);

    lob_table_init(&u, test_schema, C_N);
    fill_rows(&u, 0, 100);
    rc = lob_table_append(&t, &u, 10, 20);
    test_cond("table: append a range", rc == LOB_OK && rows_are(&t, 10, 20));
    rc = lob_table_append(&t, &u, 30, 70);
    test_cond("table: append the rest", rc == LOB_OK && rows_are(&t, 10, 90));
    rc = lob_table_append(&t, &u, 100, 0);
    test_cond("table: append zero rows at the end of the source", rc == LOB_OK && t.n == 90);

    size_t col_bytes[LOB_MAX_COLS];
    rc = lob_table_detach(&t, cols, col_bytes);
    int64_t *ids = cols[C_ID];
    uint8_t *flags = cols[C_FLAG];
    double *book = cols[C_BOOK];
    test_cond("table: detach hands over shrunk buffers and resets the table",
              rc == LOB_OK && ids && flags && book && ids[0] == 10 && ids[89] == 99 &&
                  flags[89] == 99 && book[89 * 3 + 2] == 49.5 && t.n == 0 && t.cap == 0 &&
                  t.col[C_ID] == NULL);
    lob_block_free(cols[C_ID], col_bytes[C_ID]);
    lob_block_free(cols[C_FLAG], col_bytes[C_FLAG]);
    lob_block_free(cols[C_BOOK], col_bytes[C_BOOK]);
    fill_rows(&t, 7, 3);
    test_cond("table: reusable after detach", rows_are(&t, 7, 3) && t.cap == 256);
    lob_table_free(&t);
    lob_table_free(&u);
    test_cond("table: free resets", t.n == 0 && t.cap == 0 && t.col[0] == NULL);
    lob_table_free(NULL);
    test_cond("table: free(NULL) is a no-op", 1);

    /* regression: found by fuzz_binance: memcpy(NULL, NULL, 0) and NULL + 0 are undefined
     * behaviour; UBSan reports table.c when two never-allocated tables are appended (the
     * Binance format does this for a depthUpdate without levels, see test_binance.c).
     * The check itself passes; tests/test_c_core.py fails on the sanitizer report. */
    lob_table_init(&t, test_schema, C_N);
    lob_table_init(&u, test_schema, C_N);
    rc = lob_table_append(&t, &u, 0, 0);
    test_cond("table: append zero rows between empty tables", rc == LOB_OK && t.n == 0);
    lob_table_free(&t);

    /* Formats write a message's rows past n before committing them (parse_levels); growth
     * must keep them, also when a large column becomes a block of its own (core/blocks.h). */
    static const lob_column f64_schema[] = {{"x", LOB_F64, 8, 1}};
    lob_table_init(&t, f64_schema, 1);
    size_t pending = 700000; /* 5.6 MB: crosses LOB_BLOCK_MIN (4 MiB) */
    int kept = 1;
    for (size_t k = 0; k < pending && kept; k++) {
        kept = lob_table_reserve(&t, k + 1) == LOB_OK;
        LOB_COL(&t, 0, double)[t.n + k] = (double)k;
    }
    for (size_t k = 0; k < pending && kept; k++) {
        kept = LOB_COL(&t, 0, double)[k] == (double)k;
    }
    test_cond("table: uncommitted rows past n survive growth (the move to a large block included)",
              kept);
    lob_table_free(&t);

    /* Past 1 Mi rows growth turns from x2 to x1.5; 3.1 M one-byte rows keep this quick. */
    static const lob_column bytes_schema[] = {{"b", LOB_U8, 1, 1}};
    lob_table_init(&t, bytes_schema, 1);
    size_t big = 3100000;
    rc = lob_table_reserve(&t, big);
    test_cond("table: 3.1 M rows -> 3.375 Mi capacity (doubling to 1 Mi, then x1.5)",
              rc == LOB_OK && t.cap == ((size_t)27 << 17));
    for (size_t r = 0; r < big; r++) {
        LOB_COL(&t, 0, uint8_t)[r] = (uint8_t)(r * 7);
    }
    t.n = big;
    rc = lob_table_reserve(&t, ((size_t)1 << 20) + 1);
    test_cond("table: growth above 1 Mi rows is x1.5", rc == LOB_OK && t.cap == ((size_t)81 << 16));
    lob_table_drop_front(&t, 1000003);
    int same = t.n == big - 1000003;
    for (size_t r = 0; same && r < t.n; r++) {
        same = LOB_COL(&t, 0, uint8_t)[r] == (uint8_t)((r + 1000003) * 7);
    }
    test_cond("table: drop_front on a large table", same);
    size_t big_bytes[LOB_MAX_COLS];
    rc = lob_table_detach(&t, cols, big_bytes);
    uint8_t *b = cols[0];
    test_cond("table: detach of a large table",
              rc == LOB_OK && b && b[0] == (uint8_t)(1000003 * 7) &&
                  b[big - 1000003 - 1] == (uint8_t)((big - 1) * 7));
    lob_block_free(cols[0], big_bytes[0]);
    lob_table_free(&t);
}

/* ------------------------------------------------------------------ main */

/* ------------------------------------------------------------------ book.c */

/* A stop check that answers "stop" from its `after`-th call on, counting calls. */
typedef struct {
    int calls, after;
} stop_after;

static int
stop_after_check(void *ctx)
{
    stop_after *s = ctx;
    return ++s->calls >= s->after;
}

static void
test_book(void)
{
    lob_book_opts o = {1, 10, LOB_CROSSED_FLAG, 0, 0};
    lob_error err = {0};
    lob_book *b = NULL;
    /* a snapshot, a diff, then a GAP marker 30 ns later, fed in three batches */
    int64_t ts[] = {5, 5, 12, 45};
    int8_t side[] = {1, -1, 1, 0};
    double px[] = {1.0, 2.0, 1.5, NAN}, qty[] = {1.0, 1.0, 1.0, NAN};
    int64_t uid[] = {1, 1, 2, 4};
    uint8_t fl[] = {LOB_F_RESET | LOB_F_SNAPSHOT, LOB_F_SNAPSHOT | LOB_F_END_OF_MESSAGE,
                    LOB_F_END_OF_MESSAGE, LOB_F_GAP | LOB_F_END_OF_MESSAGE};
    test_cond("book: new", lob_book_new(&b, &o, &err) == LOB_OK);
    size_t cuts[] = {0, 2, 3, 4};
    int rc = 0;
    for (int k = 0; k < 3 && rc == 0; k++) {
        lob_depth_view v = {ts + cuts[k],  side + cuts[k], px + cuts[k],         qty + cuts[k],
                            uid + cuts[k], fl + cuts[k],   cuts[k + 1] - cuts[k]};
        rc = lob_book_feed(b, &v, &err);
    }
    rc = rc ? rc : lob_book_finish(b, &err);
    lob_table *t = lob_book_output(b);
    const uint8_t *valid = LOB_COL(t, LOB_B_VALID, uint8_t);
    const int64_t *gts = LOB_COL(t, LOB_B_TS, int64_t);
    /* 10: the snapshot's book, before the diff at 12 (valid); 20, 30, 40: after the last
     * message, with a break before the next one, which only the third batch shows */
    test_cond("book: grid rows before a gap are invalid across batches",
              rc == 0 && t->n == 4 && gts[0] == 10 && valid[0] && gts[3] == 40 && !valid[1] &&
                  !valid[2] && !valid[3]);
    lob_book_free(b);

    /* a time outside 1970..2262 in a later batch: refused naming the row counted from the
     * first, before anything of the batch is applied */
    int64_t bad_ts[] = {20, INT64_MIN};
    lob_depth_view bad = {bad_ts, side, px, qty, uid, fl + 1, 2};
    lob_depth_view first = {ts, side, px, qty, uid, fl, 2};
    b = NULL;
    rc = lob_book_new(&b, &o, &err);
    rc = rc ? rc : lob_book_feed(b, &first, &err);
    rc = rc ? rc : lob_book_feed(b, &bad, &err);
    test_cond("book: NaT refused naming the row",
              rc == LOB_E_ARG && strcmp(err.msg, "row 3: ts is NaT (a missing time)") == 0);
    bad_ts[1] = -1;
    rc = lob_book_feed(b, &bad, &err);
    test_cond("book: a time before 1970 refused",
              rc == LOB_E_ARG && strstr(err.msg, "row 3: ts -1 ns is outside 1970") != NULL);
    lob_book_free(b);

    /* a grid too large for one batch is refused before anything is allocated */
    int64_t far_ts[] = {5, 5, LOB_TS_MAX};
    lob_book_opts fine = {1, 1, LOB_CROSSED_FLAG, 0, 0};
    lob_depth_view far = {far_ts, side, px, qty, uid, fl, 3};
    b = NULL;
    rc = lob_book_new(&b, &fine, &err);
    rc = rc ? rc : lob_book_feed(b, &far, &err);
    test_cond("book: grid size bounded",
              rc == LOB_E_ARG &&
                  strstr(err.msg, "rows in this batch, more than the limit of "
                                  "2147483648") != NULL &&
                  lob_book_output(b)->cap == 0);
    lob_book_free(b);

    /* a long grid fill stops at the caller's stop check, then the book refuses more */
    int64_t long_ts[] = {0, 0, 10 * LOB_POLL_ROWS};
    lob_depth_view longv = {long_ts, side, px, qty, uid, fl, 3};
    stop_after st = {0, 3};
    lob_poll poll = {stop_after_check, &st};
    lob_error perr = {0};
    perr.poll = &poll;
    b = NULL;
    rc = lob_book_new(&b, &fine, &perr);
    rc = rc ? rc : lob_book_feed(b, &longv, &perr);
    size_t got = lob_book_output(b)->n;
    test_cond("book: a long grid fill stops at the poll", rc == LOB_E_INTR && perr.poll == &poll &&
                                                              got > 0 &&
                                                              got < (size_t)(10 * LOB_POLL_ROWS));
    test_cond("book: stopped book refuses more", lob_book_finish(b, &perr) == LOB_E_ARG);
    lob_book_free(b);
}

int
main(int argc, char **argv)
{
    static char tmp[] = "/tmp/lobfast-ctest-XXXXXX";
    if (argc > 1) {
        lob_test_dir = argv[1];
    }
    else if ((lob_test_dir = mkdtemp(tmp)) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep order with sanitizer reports on stderr */
    test_decimal();
    test_int64();
    test_epoch();
    test_cells();
    test_json_strings();
    test_json_skip();
    test_json_values();
    test_table();
    test_book();
    lob_test_side();
    lob_test_source();
    lob_test_binance();
    lob_test_kernels();
    lob_test_timeindex();
    lob_test_zpar();
    lob_test_parallel();
    lob_test_blocks();
    printf("%d tests, %d passed, %d failed\n", lob_test_run, lob_test_run - lob_test_failed,
           lob_test_failed);
    if (lob_test_failed) {
        printf("=== WARNING === %d test(s) failed\n", lob_test_failed);
    }
    return lob_test_failed ? 1 : 0;
}
