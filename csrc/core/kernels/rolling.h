/* rolling.h -- rolling sums and standard deviations that never reach across a gap.
 *
 * A NaN in the input marks a break (an invalid book row, an unknown return): its output is
 * NaN and the window restarts after it, so no value mixes data from both sides of a gap.
 * A window is a number of rows or a time span (ts in (t - span, t], ts sorted); an output is
 * written only once the window is full since the last restart -- `rows` values, or a restart
 * at least `span` before t -- so early values are never computed from a partial window.
 * rows = span = 0 is the cumulative window (everything since the restart).
 */
#ifndef LOB_ROLLING_H
#define LOB_ROLLING_H

#include "core/lob.h"

typedef struct {
    int64_t rows;      /* window of the last `rows` values, or 0 */
    int64_t span;      /* window of times in (t - span, t] (ns), or 0 */
    const int64_t *ts; /* row times (sorted), required when span > 0 */
} lob_window;

/*! lob_rolling_sum() : out[i] = sum of the window ending at row i (compensated, so adding
 *  and removing millions of values does not drift). */
int lob_rolling_sum(const double *x, int64_t n, const lob_window *w, double *out, lob_error *err);

/*! lob_rolling_std() : out[i] = standard deviation of the window ending at row i with
 *  `ddof` delta degrees of freedom (sliding Welford updates); NaN when the window holds
 *  fewer than ddof + 1 values or fewer than 2. */
int lob_rolling_std(const double *x, int64_t n, const lob_window *w, int ddof, double *out,
                    lob_error *err);

/* One window of lob_rolling_many(): the sum (ddof < 0) or the standard deviation of x. */
typedef struct {
    const double *x;
    int64_t n;
    lob_window w;
    int ddof;
    double *out;
} lob_rolling_job;

/*! lob_rolling_many() : every job, one per task on `threads` threads (core/parallel.h): the
 *  same values and the same error as running them in order.  Outputs must not overlap. */
int lob_rolling_many(const lob_rolling_job *jobs, size_t n_jobs, int threads, lob_error *err);

#endif /* LOB_ROLLING_H */
