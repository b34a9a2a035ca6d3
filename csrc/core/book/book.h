/* book.h -- a Level-2 order book rebuilt from DepthEvents rows, emitting top-N snapshots.
 *
 * Levels are keyed by integer ticks: price * 10^decimals, where `decimals` is the fewest
 * decimal places that hold every price seen (found as prices arrive, at most 12).  Prices
 * come from exact decimal parsing, so the same price string always hits the same level, and
 * a price that is not on such a grid is refused instead of being keyed approximately.
 *
 * Each side (side.h) keeps the levels within a window of 32,768 ticks around its best in an
 * array indexed by tick, with a bitmap that finds the next level down, so an update is one
 * index and the top N are read without sorting; levels outside the window (deep ones, stray
 * ones far away) live in sorted blocks of at most 128 levels, and the window follows the best.
 */
#ifndef LOB_BOOK_H
#define LOB_BOOK_H

#include "core/schema.h"

typedef struct lob_book_s lob_book;

enum { LOB_CROSSED_FLAG = 0, LOB_CROSSED_RAISE = 1, LOB_CROSSED_REPAIR = 2 };

typedef struct lob_book_opts_s {
    int levels;           /* top-N levels per side in each output row (>= 1) */
    int64_t every_ns;     /* 0: one row per message; > 0: rows on multiples of this interval */
    int crossed;          /* LOB_CROSSED_*: what a crossed book does */
    int prune_orphans;    /* drop levels beyond the last snapshot's depth */
    int64_t max_stale_ns; /* rows more than this after the last update are not valid; 0: off */
} lob_book_opts;

/* One batch of DepthEvents columns (borrowed). */
typedef struct lob_depth_view_s {
    const int64_t *ts;
    const int8_t *side;
    const double *price;
    const double *qty;
    const int64_t *update_id;
    const uint8_t *flags;
    size_t n;
} lob_depth_view;

/*! lob_book_new() : an empty book.  @return 0, LOB_E_ARG (bad options) or LOB_E_NOMEM. */
int lob_book_new(lob_book **out, const lob_book_opts *opts, lob_error *err);

/*! lob_book_free() : NULL-safe. */
void lob_book_free(lob_book *b);

/*! lob_book_output() : the table rows are appended to (BookSnapshots schema). */
lob_table *lob_book_output(lob_book *b);

/*! lob_book_feed() : apply rows in order, appending output rows.  Rows must be sorted by
 *  ts (within and across batches), each in [LOB_TS_MIN, LOB_TS_MAX].  The batch is checked
 *  before any of it is applied (rows, times, and a grid of at most 2^31 rows), so a refused
 *  batch leaves the book as it was; err names the offending row (counted from the first row
 *  ever fed).  Output rows are `valid` only where the book is known (a RESET, no GAP since),
 *  whole (after an END_OF_MESSAGE), two-sided, not crossed, not stale, and, for grid rows
 *  after the last message, when the next message shows no GAP: grid rows past a batch's last
 *  message wait for the next batch (or lob_book_finish), so batches never change the rows.
 *  Long batches call lob_poll_stop(err) every LOB_POLL_ROWS rows or grid rows.
 *  @return 0, LOB_E_FORMAT (bad row), LOB_E_ARG (a time outside 1970..2262, NaT, or a grid
 *  too large), LOB_E_RANGE (price off any decimal grid), LOB_E_NOMEM, LOB_E_INTR (stopped:
 *  the book then refuses more, as after any error while applying). */
int lob_book_feed(lob_book *b, const lob_depth_view *rows, lob_error *err);

/*! lob_book_finish() : end of input: grid rows up to the last event's time.
 *  @return 0, LOB_E_ARG (the book stopped at an earlier error), LOB_E_NOMEM, LOB_E_INTR. */
int lob_book_finish(lob_book *b, lob_error *err);

/*! lob_book_side() : levels on one side (+1 bids, -1 asks), best first, into px/qty (each
 *  room for lob_book_side_size()); *n gets the count.  @return 0 or LOB_E_NOMEM. */
int lob_book_side(const lob_book *b, int side, double *px, double *qty, size_t *n);
size_t lob_book_side_size(const lob_book *b, int side);

/*! lob_book_stats() : counters (crossed rows, repairs, orphans, ...), the book's state
 *  ("known", "valid": what a row emitted now would say, staleness aside) and
 *  "before_gap_rows" (grid rows invalid because the next message revealed a GAP).
 *  @return count. */
int lob_book_stats(const lob_book *b, const char **names, int64_t *values, int cap);

#endif /* LOB_BOOK_H */
