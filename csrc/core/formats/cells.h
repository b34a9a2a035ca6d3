/* cells.h -- typed CSV cells: one parser per kind of value, one error format.
 *
 * Every CSV reader (Tardis, data.binance.vision, the TimeIndex's columns) reads its cells
 * with these, so a rule such as "a price is > 0" or "a time lies in 1970..2262" is written
 * once, and a bad cell is reported the same way whichever reader met it:
 *     column 7 (price): expected a price > 0, found '-1'
 *     column 4 (local_timestamp): expected an integer time in us since the epoch, found an
 *     empty cell
 * The column is counted from 1 and named; the cell is quoted escaped (lob_show, at most
 * LOB_SHOW bytes of it).  The reader adds the line and its byte offset (err->line,
 * err->offset), and the binding the file, so the message a user sees names them all.
 *
 * Each parser takes the whole cell (lob_csv_split) and its column (0-based number and
 * name), and returns 0, or LOB_E_FORMAT (not that kind of value) / LOB_E_RANGE (that kind,
 * but outside what is allowed) with err filled in.
 */
#ifndef LOB_CELLS_H
#define LOB_CELLS_H

#include "core/formats/number.h"
#include "core/formats/text.h"

#include <math.h>
#include <string.h>

/*! lob_cell_error() : the one message of a bad cell: "column COL+1 (NAME): expected
 *  EXPECTED, found 'CELL'" ("found an empty cell" when it is empty).  @return code. */
int lob_cell_error(lob_error *err, int code, int col, const char *name, const lob_cell *c,
                   const char *expected);

/* The errors of the parsers below, apart so that the parsers (inline: they run on every
 * cell) need no message buffer: not a number (integer != 0: an int64), a number breaking
 * a sign rule, not a time. */
int lob_cell_number_error(const lob_cell *c, int col, const char *name, int rc, int integer,
                          lob_error *err);
int lob_cell_sign_error(const lob_cell *c, int col, const char *name, int rule, const char *what,
                        lob_error *err);
int lob_cell_time_error(const lob_cell *c, int col, const char *name, int64_t unit, int how, int rc,
                        lob_error *err);

/*! lob_cell_int64() : `[-]digits`, within int64. */
static inline int
lob_cell_int64(const lob_cell *c, int col, const char *name, int64_t *out, lob_error *err)
{
    int rc = LOB_E_FORMAT;
    const char *e = lob_parse_int64(c->p, c->p + c->n, out, &rc);
    if (e == c->p + c->n) {
        return LOB_OK;
    }
    return lob_cell_number_error(c, col, name, e == NULL ? rc : LOB_E_FORMAT, 1, err);
}

/* What a number cell may hold (lob_cell_number), or-ed together. */
enum {
    LOB_NUM_ANY = 0,       /* any finite value */
    LOB_NUM_POSITIVE = 1,  /* > 0: prices key books, so 0 or less is damage */
    LOB_NUM_NONNEG = 2,    /* >= 0: sizes (0 removes a level) */
    LOB_NUM_EMPTY_NAN = 4, /* an empty cell is "no value": NaN */
    LOB_NUM_NAN_TEXT = 8,  /* 'nan' (any case) is NaN too */
};

/* The number obeys the sign rule of `rule` (the one test of it). */
static inline int
lob_num_sign_ok(int rule, double v)
{
    return (rule & LOB_NUM_NONNEG) ? v >= 0 : !(rule & LOB_NUM_POSITIVE) || v > 0;
}

/*! lob_cell_number() : a decimal number (lob_parse_decimal: no NaN or infinity spelling,
 *  and a nonzero value that rounds to 0 or to infinity is refused) obeying `rule`
 *  (LOB_NUM_*).  `what` names the value in the message of a sign rule, with its article:
 *  "a price" gives "expected a price > 0". */
static inline int
lob_cell_number(const lob_cell *c, int col, const char *name, int rule, const char *what,
                double *out, lob_error *err)
{
    if (c->n == 0 && (rule & LOB_NUM_EMPTY_NAN)) {
        *out = NAN;
        return LOB_OK;
    }
    int rc = LOB_E_FORMAT;
    const char *e = lob_parse_decimal(c->p, c->p + c->n, out, &rc);
    if (e != c->p + c->n) {
        if ((rule & LOB_NUM_NAN_TEXT) && lob_cell_is_nocase(c, "nan")) {
            *out = NAN;
            return LOB_OK;
        }
        return lob_cell_number_error(c, col, name, e == NULL ? rc : LOB_E_FORMAT, 0, err);
    }
    if (!lob_num_sign_ok(rule, *out)) {
        return lob_cell_sign_error(c, col, name, rule, what, err);
    }
    return LOB_OK;
}

/* How a time cell is written (lob_cell_time). */
enum {
    LOB_TIME_INT = 0,     /* an integer, as the exchanges' archives write it */
    LOB_TIME_DECIMAL = 1, /* digits, an optional fraction (ns resolution), optionally in
                             double quotes: what generic CSV files hold (lob_parse_time) */
};

/* The time written at [p, e) as lob_cell_time() reads it, to ns in *ns: the end of its
 * text, or NULL with *rc = LOB_E_FORMAT / LOB_E_RANGE.  A time outside [LOB_TS_MIN,
 * LOB_TS_MAX] (1970..2262) still returns the end of its text, with *rc = LOB_E_RANGE and *ns
 * not set (a cell with more after the time is LOB_E_FORMAT before it is LOB_E_RANGE).
 * The range is checked before the scaling, which therefore cannot overflow. */
static inline const char *
lob_time_text(const char *p, const char *e, int64_t unit, int how, int64_t *ns, int *rc)
{
    int64_t v = 0;
    *rc = LOB_E_FORMAT;
    if (how == LOB_TIME_DECIMAL) {
        /* already scaled to ns, the product checked against int64 */
        const char *q = lob_parse_time(p, e, unit, &v, rc);
        if (q != NULL) {
            *rc = v < LOB_TS_MIN || v > LOB_TS_MAX ? LOB_E_RANGE : LOB_OK;
            *ns = *rc == LOB_OK ? v : *ns;
        }
        return q;
    }
    const char *q = lob_parse_int64(p, e, &v, rc);
    if (q != NULL && unit == 0) {
        *rc = lob_epoch_to_ns(v, ns);
    }
    else if (q != NULL) {
        *rc = v < LOB_TS_MIN || v > LOB_TS_MAX / unit ? LOB_E_RANGE : LOB_OK;
        *ns = *rc == LOB_OK ? v * unit : *ns;
    }
    return q;
}

/*! lob_cell_time() : a time since the epoch in units of `unit` ns (1e9 s, 1e6 ms, 1e3 us,
 *  1 ns), or with unit 0 in s, ms, us or ns told apart by magnitude (lob_epoch_to_ns), to
 *  ns.  Times outside [LOB_TS_MIN, LOB_TS_MAX] (1970..2262) are LOB_E_RANGE. */
static inline int
lob_cell_time(const lob_cell *c, int col, const char *name, int64_t unit, int how, int64_t *ns,
              lob_error *err)
{
    const char *end = c->p + c->n;
    int rc = LOB_E_FORMAT;
    int64_t v = 0;
    const char *e = lob_time_text(c->p, end, unit, how, &v, &rc);
    if (e == end && rc == LOB_OK) {
        *ns = v;
        return LOB_OK;
    }
    return lob_cell_time_error(c, col, name, unit, how, e == NULL || e == end ? rc : LOB_E_FORMAT,
                               err);
}

/* The words a side cell may hold (lob_cell_side), or-ed together. */
enum {
    LOB_SIDE_BOOK = 1,    /* bid +1, ask -1 */
    LOB_SIDE_TRADE = 2,   /* buy +1, sell -1 (the taker's side) */
    LOB_SIDE_UNKNOWN = 4, /* unknown, or an empty cell: 0 */
    LOB_SIDE_NOCASE = 8,  /* in any case (otherwise lower case only) */
};

/* The error of lob_cell_side() / lob_cell_bool(): what `words` / `how` allow. */
int lob_cell_side_error(const lob_cell *c, int col, const char *name, int words, lob_error *err);
int lob_cell_bool_error(const lob_cell *c, int col, const char *name, int how, lob_error *err);

/* The cell is `word`, in any case when nocase. */
static inline int
lob_cell_is_word(const lob_cell *c, const char *word, int nocase)
{
    return nocase ? lob_cell_is_nocase(c, word) : lob_cell_is(c, word);
}

/*! lob_cell_side() : +1, -1 or 0 from the words `words` (LOB_SIDE_*) allows.  Inline: it
 *  runs on every row, and `words` is a constant that folds the tests away. */
static inline int
lob_cell_side(const lob_cell *c, int col, const char *name, int words, int *side, lob_error *err)
{
    int nocase = (words & LOB_SIDE_NOCASE) != 0;
    int trade = (words & LOB_SIDE_TRADE) != 0, book = (words & LOB_SIDE_BOOK) != 0;
    int v = (trade && lob_cell_is_word(c, "buy", nocase)) ||
                    (book && lob_cell_is_word(c, "bid", nocase))
                ? 1
            : (trade && lob_cell_is_word(c, "sell", nocase)) ||
                    (book && lob_cell_is_word(c, "ask", nocase))
                ? -1
            : (words & LOB_SIDE_UNKNOWN) && (c->n == 0 || lob_cell_is_word(c, "unknown", nocase))
                ? 0
                : 2; /* none of the words */
    if (v == 2) {
        return lob_cell_side_error(c, col, name, words, err);
    }
    *side = v;
    return LOB_OK;
}

/* What a bool cell may hold besides true/false in any case (lob_cell_bool). */
enum {
    LOB_BOOL_WORDS = 0,  /* true or false only */
    LOB_BOOL_DIGITS = 1, /* 1 and 0 too */
};

/*! lob_cell_bool() : 1 or 0.  Inline, as lob_cell_side(). */
static inline int
lob_cell_bool(const lob_cell *c, int col, const char *name, int how, int *out, lob_error *err)
{
    int digits = how == LOB_BOOL_DIGITS;
    int v = lob_cell_is_nocase(c, "true") || (digits && lob_cell_is(c, "1"))    ? 1
            : lob_cell_is_nocase(c, "false") || (digits && lob_cell_is(c, "0")) ? 0
                                                                                : -1;
    if (v < 0) {
        return lob_cell_bool_error(c, col, name, how, err);
    }
    *out = v;
    return LOB_OK;
}

/* Cells read in place.  A reader splitting a line cell by cell need not find where a number
 * cell ends before reading it: the value's text stops at the first byte that is not part of
 * it, and when that is the separator or the end of the line, the value is the cell's.  Any
 * other cell (bad, empty, 'nan', ...) is found and read again by lob_cell_*(), which decides
 * it, so the rules and messages stay theirs.  Only for a separator that no number or time
 * holds (lob_sep_plain).  Each takes the cell starting at p in a line ending at e and
 * returns the end of the cell (the separator or e), or NULL with err filled. */

/*! lob_sep_plain() : `sep` is no byte of a number or time (digits, sign, point, exponent,
 *  quote), so the *_at() readers below may be used. */
static inline int
lob_sep_plain(char sep)
{
    return sep != '\0' && strchr("0123456789+-.eE\"", sep) == NULL;
}

/* The cell at p: the bad-cell path of the readers below. */
static inline lob_cell
lob_cell_at(const char *p, const char *e, char sep)
{
    lob_cell c = {p, (size_t)(lob_csv_find(p, e, sep) - p)};
    return c;
}

/* The cell's end, once lob_cell_*() has read cell c: NULL when it failed. */
#define LOB_CELL_END(c, rc) ((rc) == LOB_OK ? (c).p + (c).n : NULL)

/*! lob_cell_int64_at() : lob_cell_int64() in place. */
static inline const char *
lob_cell_int64_at(const char *p, const char *e, char sep, int col, const char *name, int64_t *out,
                  lob_error *err)
{
    int rc = LOB_E_FORMAT;
    const char *q = lob_parse_int64(p, e, out, &rc);
    if (q != NULL && (q == e || *q == sep)) {
        return q;
    }
    lob_cell c = lob_cell_at(p, e, sep);
    rc = lob_cell_int64(&c, col, name, out, err);
    return LOB_CELL_END(c, rc);
}

/*! lob_cell_number_at() : lob_cell_number() in place. */
static inline const char *
lob_cell_number_at(const char *p, const char *e, char sep, int col, const char *name, int rule,
                   const char *what, double *out, lob_error *err)
{
    int rc = LOB_E_FORMAT;
    const char *q = lob_parse_decimal(p, e, out, &rc);
    if (q != NULL && (q == e || *q == sep) && lob_num_sign_ok(rule, *out)) {
        return q;
    }
    lob_cell c = lob_cell_at(p, e, sep);
    rc = lob_cell_number(&c, col, name, rule, what, out, err);
    return LOB_CELL_END(c, rc);
}

/*! lob_cell_time_at() : lob_cell_time() in place. */
static inline const char *
lob_cell_time_at(const char *p, const char *e, char sep, int col, const char *name, int64_t unit,
                 int how, int64_t *ns, lob_error *err)
{
    int rc = LOB_E_FORMAT;
    int64_t v = 0;
    const char *q = lob_time_text(p, e, unit, how, &v, &rc);
    if (q != NULL && rc == LOB_OK && (q == e || *q == sep)) {
        *ns = v;
        return q;
    }
    lob_cell c = lob_cell_at(p, e, sep);
    rc = lob_cell_time(&c, col, name, unit, how, ns, err);
    return LOB_CELL_END(c, rc);
}

/*! lob_cell_text() : the cell is text to keep: at most `max` bytes (LOB_E_RANGE) and no
 *  control byte (LOB_E_FORMAT; see lob_find_control).  Nothing is copied. */
int lob_cell_text(const lob_cell *c, int col, const char *name, size_t max, lob_error *err);

#endif /* LOB_CELLS_H */
