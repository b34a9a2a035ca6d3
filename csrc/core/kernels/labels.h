/* labels.h -- look-ahead targets over a mid-price series: forward log returns, DeepLOB
 * smoothed returns, their EMA, 3-class thresholds and triple-barrier labels.
 *
 * Every kernel reads a lob_series and writes caller-allocated arrays of n rows.  A row's
 * label is NaN (and its known-at time -1) when its horizon runs past the data or touches a
 * row that is not usable: valid[i] == 0, or a non-finite mid when `valid` is NULL.  Time
 * horizons follow the mid in effect at t + h: the last row with ts <= t + h.
 * Pure C11, re-entrant, never includes Python.h.
 */
#ifndef LOB_LABELS_H
#define LOB_LABELS_H

#include "core/lob.h"

/* The series a label is computed over. */
typedef struct lob_series_s {
    const double *mid;    /* mid price per row; finite and > 0 on usable rows */
    const int64_t *ts;    /* row times, int64 ns, non-decreasing */
    const uint8_t *valid; /* 1 = book usable; NULL: every row with a finite mid is */
    size_t n;             /* rows */
} lob_series;

/* A horizon: exactly one of rows / ns is > 0. */
typedef struct lob_horizon_s {
    int64_t rows; /* k rows ahead */
    int64_t ns;   /* a time span, int64 ns */
} lob_horizon;

/*! lob_label_return() : forward log return ret[i] = log(mid[j] / mid[i]), j = i + rows or
 *  the last row with ts[j] <= ts[i] + ns; NaN unless rows i..j are all usable and j lies in
 *  the data (for time horizons: ts[i] + ns <= ts[n-1]).  known_at[i] = ts[j] (rows) or
 *  ts[i] + ns (time), -1 where ret is NaN.
 *  @return 0, or LOB_E_ARG (bad series or horizon; err says which row / value). */
int lob_label_return(const lob_series *s, lob_horizon h, double *ret, int64_t *known_at,
                     lob_error *err);

/*! lob_label_smooth() : DeepLOB smoothed return over k rows.  m+ = mean(mid[i+1..i+k]);
 *  against the current mid (against_mean == 0): (m+ - mid[i]) / mid[i], needing rows
 *  i..i+k usable; against m- = mean(mid[i-k+1..i]) (against_mean != 0): (m+ - m-) / m-,
 *  needing rows i-k+1..i+k.  known_at[i] = ts[i+k], -1 where NaN.  O(n): window sums run
 *  over mid - ref (ref = the first usable mid) and are recomputed from scratch every k rows,
 *  so the rounding drift of the running sum never spans more than 2k additions.
 *  No allocation.  @return 0 or LOB_E_ARG. */
int lob_label_smooth(const lob_series *s, int64_t k, int against_mean, double *out,
                     int64_t *known_at, lob_error *err);

/*! lob_label_ema() : y[i] = alpha * f[i] + (1 - alpha) * y[i-1], 0 < alpha <= 1.  y is NaN
 *  where f is NaN, and the recursion restarts (y[i] = f[i]) at the first finite f after a
 *  NaN, so no value mixes returns from both sides of an unusable stretch.
 *  @return 0 or LOB_E_ARG (alpha out of range). */
int lob_label_ema(const double *f, size_t n, double alpha, double *y, lob_error *err);

/*! lob_label_classify() : out[i] = +1 if x[i] > alpha, -1 if x[i] < -alpha, else 0; NaN
 *  where x is NaN.  alpha must be finite and >= 0.
 *  @return 0 or LOB_E_ARG. */
int lob_label_classify(const double *x, size_t n, double alpha, double *out, lob_error *err);

/*! lob_label_barrier() : triple barrier.  From each usable row i, walk j = i+1, i+2, ...
 *  while j is within the limit (j <= i + rows, or ts[j] <= ts[i] + ns); the first j with
 *  r = log(mid[j] / mid[i]) >= upper[i] gives label +1, r <= -lower[i] gives -1 (upper is
 *  tested first); time[i] = ts[j], ret[i] = r.  Reaching the limit inside the data gives
 *  label 0, ret = the return at the last row within the limit, time = ts[i + rows] or
 *  ts[i] + ns.  NaN label and ret, time -1, where row i is unusable, upper[i] or lower[i]
 *  is NaN, or the walk meets an unusable row or the end of the data before it resolves.
 *  Thresholds are positive log returns; +inf disables a barrier.  O(n * limit) worst case.
 *  @return 0 or LOB_E_ARG. */
int lob_label_barrier(const lob_series *s, const double *upper, const double *lower,
                      lob_horizon limit, double *label, int64_t *time, double *ret, lob_error *err);

#endif /* LOB_LABELS_H */
