/* number.h -- exact, locale-free number parsing in the shape of std::from_chars.
 *
 * Prices and sizes arrive as decimal text.  They are parsed to the correctly rounded
 * float64 (the same string always gives the same double, so a double is a stable book
 * key) without going through atof/strtod on the common path.
 */
#ifndef LOB_NUMBER_H
#define LOB_NUMBER_H

#include "core/lob.h"

/*! lob_parse_decimal() : parse `[+-]digits[.digits][(e|E)[+-]digits]` at [first, last).
 *  Up to 19 significant digits with a decimal exponent within 1e-22..1e22 take an exact
 *  fast path (Clinger: one correctly rounded multiply or divide); other values go through
 *  strtod on a point-free copy "DIGITSe<exp>", which is locale independent.
 *  NaN and infinity have no spelling here.
 *  @return pointer past the number, or NULL with *rc = LOB_E_FORMAT (no digits) or
 *  LOB_E_RANGE (more than 40 significant digits, a value that overflows to infinity, or a
 *  nonzero value that underflows to 0, such as 1e-400: reading it as 0 would turn damage
 *  into a deleted book level).  Subnormal results are kept: they are the nearest double. */
const char *lob_parse_decimal(const char *first, const char *last, double *out, int *rc);

/*! lob_parse_int64() : parse `[-]digits` at [first, last) into an int64.
 *  @return pointer past the number, or NULL with *rc = LOB_E_FORMAT / LOB_E_RANGE. */
const char *lob_parse_int64(const char *first, const char *last, int64_t *out, int *rc);

/*! lob_epoch_to_ns() : an epoch time in s, ms, us or ns, told apart by magnitude, to ns
 *  (unambiguous for dates 1973..2262, the end of int64 ns).
 *  @return 0, or LOB_E_RANGE for a time outside [LOB_TS_MIN, LOB_TS_MAX] (1970..2262). */
int lob_epoch_to_ns(int64_t t, int64_t *ns);

/*! lob_parse_time() : a time cell at [p, e): digits, an optional fraction, optionally in
 *  double quotes, in `unit` ns (0: by magnitude).  @return the end of the cell's text, or
 *  NULL with *rc = LOB_E_FORMAT (not a number) / LOB_E_RANGE (past int64 ns). */
const char *lob_parse_time(const char *p, const char *e, int64_t unit, int64_t *ns, int *rc);

#endif /* LOB_NUMBER_H */
