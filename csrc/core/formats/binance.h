/* binance.h -- what the Binance reader offers beyond the line-format interface: the book
 * kept while replaying the lines before a window, checkpoints of it, and restoring one.
 *
 * With lob_opts.keep_book, lines received before start_ns are not dropped: their depth
 * messages go through the same sequence rules as the window's (nothing else of them is
 * kept) and build a book instead of rows.  At the first line of the window the book, when
 * it is known, is emitted as SNAPSHOT|RESET rows (bids then asks, best first), stamped with
 * the exchange time of the last update it holds and the receive time of that line; the
 * counters restart there, so the window's stats and rows are those a full read gives from
 * that line on.
 *
 * With lob_opts.checkpoint_every > 0 (and keep_book), the replay also records checkpoints
 * before a line: the book and the sequence state, when the book is synced (nothing is then
 * buffered), at the first line after each sync and then each time checkpoint_every of
 * receive time has passed.  A checkpoint labelled T holds the state after every line
 * received before T, and the next line was received at T: a reader restored from it and
 * opened at the file's first line received at or after T goes on exactly as the one that
 * recorded it.
 */
#ifndef LOB_BINANCE_H
#define LOB_BINANCE_H

#include "core/table.h"

/* Checkpoint table columns (all int64): one row per checkpoint. */
enum {
    LOB_CP_T,          /* receive time of the line it precedes */
    LOB_CP_LAST_U,     /* last update id applied */
    LOB_CP_LAST_TS,    /* exchange time of the last depth row */
    LOB_CP_LAST_LOCAL, /* receive time of the last line read */
    LOB_CP_MARKET,     /* 1 spot, 2 USD-M */
    LOB_CP_NBID,       /* bid levels (the first rows of its levels) */
    LOB_CP_NASK,       /* ask levels (after the bids) */
    LOB_CP_NCOL
};
/* Checkpoint level columns: side (+1/-1), price, qty; best first on each side. */
enum { LOB_CPL_SIDE, LOB_CPL_PRICE, LOB_CPL_QTY, LOB_CPL_NCOL };

extern const lob_column lob_cp_schema[LOB_CP_NCOL];
extern const lob_column lob_cp_level_schema[LOB_CPL_NCOL];

/* The state a reader is restored to (a checkpoint row and its levels). */
typedef struct lob_binance_cp_s {
    int64_t last_u, last_ts, last_local, market;
    const int8_t *side; /* n levels, any order */
    const double *price;
    const double *qty;
    size_t n;
} lob_binance_cp;

/*! lob_binance_restore() : set a fresh Binance reader state `ctx` (lob_reader_state) to a
 *  synced book and its sequence state.  Every value is checked (ids, times, sides, prices >
 *  0, sizes > 0).  @return 0, LOB_E_ARG (a reader that already read lines, or a bad value,
 *  named in err) or LOB_E_NOMEM. */
int lob_binance_restore(void *ctx, const lob_binance_cp *cp, lob_error *err);

/*! lob_binance_checkpoints() : the checkpoints recorded so far: table 0 (lob_cp_schema)
 *  and table 1 (lob_cp_level_schema).  The caller may detach them. */
lob_table *lob_binance_checkpoints(void *ctx, int which);

#endif /* LOB_BINANCE_H */
