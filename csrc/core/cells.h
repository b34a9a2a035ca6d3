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

#include "text.h"

/*! lob_cell_error() : the one message of a bad cell: "column COL+1 (NAME): expected
 *  EXPECTED, found 'CELL'" ("found an empty cell" when it is empty).  @return code. */
int lob_cell_error(lob_error *err, int code, int col, const char *name, const lob_cell *c,
                   const char *expected);

/*! lob_cell_int64() : `[-]digits`, within int64. */
int lob_cell_int64(const lob_cell *c, int col, const char *name, int64_t *out, lob_error *err);

/* What a number cell may hold (lob_cell_number), or-ed together. */
enum {
    LOB_NUM_ANY = 0,       /* any finite value */
    LOB_NUM_POSITIVE = 1,  /* > 0: prices key books, so 0 or less is damage */
    LOB_NUM_NONNEG = 2,    /* >= 0: sizes (0 removes a level) */
    LOB_NUM_EMPTY_NAN = 4, /* an empty cell is "no value": NaN */
    LOB_NUM_NAN_TEXT = 8,  /* 'nan' (any case) is NaN too */
};

/*! lob_cell_number() : a decimal number (lob_parse_decimal: no NaN or infinity spelling,
 *  and a nonzero value that rounds to 0 or to infinity is refused) obeying `rule`
 *  (LOB_NUM_*).  `what` names the value in the message of a sign rule, with its article:
 *  "a price" gives "expected a price > 0". */
int lob_cell_number(const lob_cell *c, int col, const char *name, int rule, const char *what,
                    double *out, lob_error *err);

/* How a time cell is written (lob_cell_time). */
enum {
    LOB_TIME_INT = 0,     /* an integer, as the exchanges' archives write it */
    LOB_TIME_DECIMAL = 1, /* digits, an optional fraction (ns resolution), optionally in
                             double quotes: what generic CSV files hold (lob_parse_time) */
};

/*! lob_cell_time() : a time since the epoch in units of `unit` ns (1e9 s, 1e6 ms, 1e3 us,
 *  1 ns), or with unit 0 in s, ms, us or ns told apart by magnitude (lob_epoch_to_ns), to
 *  ns.  Times outside [LOB_TS_MIN, LOB_TS_MAX] (1970..2262) are LOB_E_RANGE, checked
 *  before the scaling (which therefore cannot overflow). */
int lob_cell_time(const lob_cell *c, int col, const char *name, int64_t unit, int how, int64_t *ns,
                  lob_error *err);

/* The words a side cell may hold (lob_cell_side), or-ed together. */
enum {
    LOB_SIDE_BOOK = 1,    /* bid +1, ask -1 */
    LOB_SIDE_TRADE = 2,   /* buy +1, sell -1 (the taker's side) */
    LOB_SIDE_UNKNOWN = 4, /* unknown, or an empty cell: 0 */
    LOB_SIDE_NOCASE = 8,  /* in any case (otherwise lower case only) */
};

/*! lob_cell_side() : +1, -1 or 0 from the words `words` (LOB_SIDE_*) allows. */
int lob_cell_side(const lob_cell *c, int col, const char *name, int words, int *side,
                  lob_error *err);

/* What a bool cell may hold besides true/false in any case (lob_cell_bool). */
enum {
    LOB_BOOL_WORDS = 0,  /* true or false only */
    LOB_BOOL_DIGITS = 1, /* 1 and 0 too */
};

/*! lob_cell_bool() : 1 or 0. */
int lob_cell_bool(const lob_cell *c, int col, const char *name, int how, int *out, lob_error *err);

/*! lob_cell_text() : the cell is text to keep: at most `max` bytes (LOB_E_RANGE) and no
 *  control byte (LOB_E_FORMAT; see lob_find_control).  Nothing is copied. */
int lob_cell_text(const lob_cell *c, int col, const char *name, size_t max, lob_error *err);

#endif /* LOB_CELLS_H */
