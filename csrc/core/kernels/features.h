/* features.h -- microstructure features of a Level-2 book, one pass over the snapshots.
 *
 * The book is read as BookSnapshots lays it out: (n, levels) row-major arrays, level 0 the
 * best, empty levels NaN price / 0 size.  Every feature of an invalid row is NaN; features
 * that compare with the previous row (OFI, returns) are NaN on the first row after one.
 */
#ifndef LOB_FEATURES_H
#define LOB_FEATURES_H

#include "core/lob.h"

typedef struct {
    int64_t n, levels;
    const int64_t *ts;
    const uint8_t *valid; /* n flags (0/1) */
    const double *bid_px, *bid_sz, *ask_px, *ask_sz;
} lob_book_view;

typedef enum {
    LOB_FT_MID,        /* (bid1 + ask1) / 2 */
    LOB_FT_MICROPRICE, /* (bid1 ask_sz1 + ask1 bid_sz1) / (bid_sz1 + ask_sz1) */
    LOB_FT_WMID,       /* mean of the size-weighted bid and ask prices over the top k */
    LOB_FT_SPREAD,     /* ask1 - bid1 */
    LOB_FT_SPREAD_BPS, /* spread / mid * 1e4 */
    LOB_FT_IMBALANCE,  /* (B - A) / (B + A), B and A the sizes over the top k */
    LOB_FT_BID_DEPTH,  /* size over the top k bid levels */
    LOB_FT_ASK_DEPTH,
    LOB_FT_OFI,     /* order-flow imbalance at level k (1 = best), Cont-Kukanov-Stoikov */
    LOB_FT_RET,     /* log(mid / previous mid) */
    LOB_FT_CHANGED, /* 1 where update_id differs from the previous row's, else 0 */
} lob_feature_kind;

typedef struct {
    int kind;    /* lob_feature_kind */
    int k;       /* levels (top k) or level number, 1-based; unused by the others */
    double *out; /* n values */
} lob_feature;

/*! lob_features() : compute every requested feature in one pass over the rows, split into
 *  row ranges over `threads` threads (core/parallel.h; the same values and errors as one).
 *  `update_id` is read only by LOB_FT_CHANGED (may be NULL otherwise). */
int lob_features(const lob_book_view *b, const int64_t *update_id, const lob_feature *f, int nf,
                 int threads, lob_error *err);

/*! lob_trade_flow() : trades aligned to book rows: row i gets the trades with ts in
 *  (ts[i-1], ts[i]] -- what is known when row i is seen.  Row 0 and invalid rows are NaN.
 *  Any output may be NULL.  Trades of unknown side (0) count in `count` only.  Row ranges
 *  run on `threads` threads, as in lob_features(). */
int lob_trade_flow(const int64_t *ts, const uint8_t *valid, int64_t n, const int64_t *trade_ts,
                   const double *qty, const int8_t *side, int64_t m, double *buy, double *sell,
                   double *signed_vol, double *count, int threads, lob_error *err);

#endif /* LOB_FEATURES_H */
