/* aggregate.h -- bars from book mids and trades: time, event and volume buckets.
 *
 * One merge pass over two sorted streams (book rows, trades).  Each bucket is a run of book
 * rows and a run of trades; where a run ends is found without a branch per row: the next 8
 * times are compared and the answers summed, and a longer run is found by galloping
 * (exponential, then binary) search.  A bucket's rows are then walked by a loop with no edge
 * tests, and only when a column needs them (open, high, low; the trades' sums).  Time buckets
 * of a few rows each are found 256 at a time instead, each row's and trade's bucket from its
 * time (aggregate.c, "Dense TIME buckets"): the same bars, bit for bit.
 *
 * Mids: (best bid + best ask) / 2 of rows whose `valid` flag is set and whose mid is not NaN
 * (a NaN mid means a side was empty).  Any other row is a gap: it gives no mid and ends the
 * carry, so buckets after it hold NaN mids until the next row with a mid.  A bucket with no
 * mid of its own takes the carry: the mid of the last book row before its end, if that row
 * has one.
 */
#ifndef LOB_AGGREGATE_H
#define LOB_AGGREGATE_H

#include "core/lob.h"

/* More buckets than this is almost surely a mistaken `every` (and > 100 GB of output). */
#define LOB_AGG_MAX_BUCKETS ((size_t)1 << 31)

typedef enum {
    LOB_AGG_TIME = 0,   /* clock buckets on multiples of `every` ns */
    LOB_AGG_EVENTS = 1, /* every `every` book rows */
    LOB_AGG_VOLUME = 2, /* close after the trade that makes the volume reach `volume` */
} lob_agg_by;

/* The inputs, borrowed.  Book and trade times must be ascending (ties allowed). */
typedef struct lob_agg_input_s {
    size_t n_book;            /* book rows */
    const int64_t *book_ts;   /* (n_book,) ns */
    const double *bid;        /* best bid of row i at bid[i * px_stride] */
    const double *ask;        /* best ask of row i at ask[i * px_stride] */
    size_t px_stride;         /* doubles between rows: levels per side (1 for quotes) */
    const uint8_t *valid;     /* (n_book,) nonzero = book known; NULL = all rows valid */
    const char *book_name;    /* names the book input in error messages ("book", "quotes") */
    size_t n_trades;          /* trades */
    const int64_t *trade_ts;  /* (n_trades,) ns */
    const double *trade_px;   /* (n_trades,) finite */
    const double *trade_qty;  /* (n_trades,) finite, >= 0 */
    const int8_t *trade_side; /* (n_trades,) +1 taker buy, -1 taker sell, 0 unknown */
} lob_agg_input;

typedef struct lob_agg_opts_s {
    int by;             /* lob_agg_by */
    int64_t every;      /* TIME: bucket width in ns; EVENTS: book rows per bucket (> 0) */
    double volume;      /* VOLUME: traded volume that closes a bucket (> 0, finite) */
    int empty_vwap_mid; /* vwap of a bucket without traded volume: 0 NaN, 1 its mid_close */
} lob_agg_opts;

/* Output columns, each with room for the count lob_agg_count() gave.  A NULL column is
 * neither computed nor written: without mid_open, mid_high and mid_low only each bucket's last
 * mid is made (from prices streamed with the times where buckets hold a few rows; where they
 * hold many, the rows inside are skipped by the gallop, never read). */
typedef struct lob_agg_output_s {
    int64_t *ts;         /* bucket start (TIME), first book row (EVENTS), first trade (VOLUME) */
    double *mid_open;    /* first mid in the bucket, else the carry */
    double *mid_high;    /* highest mid, else the carry */
    double *mid_low;     /* lowest mid, else the carry */
    double *mid_close;   /* last mid, else the carry */
    double *vwap;        /* sum(px * qty) / sum(qty); see empty_vwap_mid when the sum is 0 */
    double *volume;      /* sum(qty) */
    double *buy_volume;  /* sum(qty) of taker buys */
    double *sell_volume; /* sum(qty) of taker sells */
    int64_t *trades;     /* trades in the bucket */
    int64_t *updates;    /* book rows in the bucket (valid or not) */
} lob_agg_output;

/*! lob_agg_count() : check the inputs and options and count the buckets.
 *  TIME: from the bucket of the earliest time (book or trades) to that of the latest.
 *  EVENTS: ceil(n_book / every).  VOLUME: one pass over trade sizes.
 *  @return 0, or LOB_E_ARG (bad option, unsorted times, non-finite trade price or size,
 *  negative size, side not in -1..1, more than LOB_AGG_MAX_BUCKETS buckets) with err saying
 *  which input and row.  The checks run in ranges on `threads` threads.  TIME checks here
 *  only the options and the first and last times: lob_agg_fill() checks every row as it
 *  reads it (one pass over the inputs instead of two). */
int lob_agg_count(const lob_agg_input *in, const lob_agg_opts *o, size_t *n_out, int threads,
                  lob_error *err);

/*! lob_agg_fill() : fill `out` with the `n_out` buckets lob_agg_count() gave for the same
 *  inputs.  Pure computation, no allocation.  TIME and EVENTS buckets are split into ranges on
 *  `threads` threads (core/parallel.h; the same values as one); VOLUME buckets, each ending
 *  where the volume before it says, are filled in order.  TIME: each block of buckets checks
 *  the rows and trades it read, as lob_agg_count() checks the other kinds, and the ranges
 *  must have read every row once; a bad row is named as the count names it.
 *  @return 0, or LOB_E_ARG when n_out is not that count or (TIME) a row is bad: then `out`
 *  may hold some of the bars. */
int lob_agg_fill(const lob_agg_input *in, const lob_agg_opts *o, size_t n_out,
                 const lob_agg_output *out, int threads, lob_error *err);

#endif /* LOB_AGGREGATE_H */
