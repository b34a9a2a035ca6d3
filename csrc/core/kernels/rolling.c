/* rolling.c -- rolling sums and standard deviations that restart after every NaN.
 *
 * The input is cut into segments at NaNs; each segment is one tight loop with its own
 * state, specialised by window kind (rows, span, cumulative) so that the common sliding
 * case is a few flops per value without branches that depend on the data.  Each loop runs
 * in blocks that end on multiples of LOB_POLL_ROWS, with a stop check (Ctrl-C) between them.
 *
 * Time arithmetic: lob_check_times() keeps every ts in [0, LOB_TS_MAX] and check_window()
 * every span in [0, INT64_MAX], so ts - span >= -INT64_MAX and ts[i] - ts[s] in
 * [0, LOB_TS_MAX]: neither can overflow.
 */
#include "core/kernels/rolling.h"

#include "core/parallel.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define SQRT_BLOCK 256 /* values per vectorised inner loop */

/* v[i] = sqrt(max(v[i], 0)) over [0, n), or sqrt(v[i]) when !clamp (NaN stays NaN): the
 * sliding loop leaves the variances and this pass takes their roots in vector code (sqrt
 * rounds correctly: the same bits as one at a time), so the root, slower than the update,
 * is off the loop.  Fixed inner counts: gcc -O2 vectorises them. */
LOB_VECTOR_CLONES static void
sqrt_in_place(double *restrict v, int64_t n, int clamp)
{
    int64_t i = 0;
    for (; i + SQRT_BLOCK <= n; i += SQRT_BLOCK) {
        double *restrict b = v + i;
        if (clamp) {
            for (int j = 0; j < SQRT_BLOCK; j++) {
                b[j] = sqrt(b[j] > 0.0 ? b[j] : 0.0);
            }
        }
        else {
            for (int j = 0; j < SQRT_BLOCK; j++) {
                b[j] = sqrt(b[j]);
            }
        }
    }
    for (; i < n; i++) {
        v[i] = sqrt(clamp && !(v[i] > 0.0) ? 0.0 : v[i]);
    }
}

/* End of the block holding row i: the next multiple of LOB_POLL_ROWS, or e.  i is an array
 * index (< PTRDIFF_MAX / 8), so the rounding up cannot overflow. */
static inline int64_t
block_end(int64_t i, int64_t e)
{
    const int64_t b = (i | (LOB_POLL_ROWS - 1)) + 1;
    return b < e ? b : e;
}

/* After a block's loop: 1 to go on (the block ended at its boundary, before e), 0 when the
 * loop stopped early or reached e, LOB_E_INTR (in *rc) when the caller asks to stop. */
static inline int
next_block(int64_t i, int64_t b, int64_t e, lob_error *err, int *rc)
{
    if (i < b || i == e) {
        return 0;
    }
    return (*rc = lob_poll_stop(err)) < 0 ? *rc : 1;
}

static int
check_window(int64_t n, const lob_window *w, lob_error *err)
{
    if (w->rows < 0 || w->span < 0 || (w->rows > 0 && w->span > 0)) {
        return lob_error_set(err, LOB_E_ARG, "a window is a positive number of rows or a span");
    }
    if (w->span > 0) {
        if (w->ts == NULL) {
            return lob_error_set(err, LOB_E_ARG, "a time window needs the row times");
        }
        return lob_check_times(w->ts, n, 1, "ts", err);
    }
    return LOB_OK;
}

/* The window's contents: a sum with its rounding error carried exactly (TwoSum, no
 * data-dependent branch), and Welford's mean / M2 for the standard deviation. */
typedef struct {
    double sum, comp, mean, m2;
    int64_t n;
} acc;

static inline void
sum_add(acc *a, double v)
{
    double t = a->sum + v, bv = t - a->sum;
    a->comp += (a->sum - (t - bv)) + (v - bv);
    a->sum = t;
}

/* Sum of x[from..to), for rebuilding a sliding sum that rounding has moved. */
static double
sum_of(const double *x, int64_t from, int64_t to)
{
    double t = 0.0;
    for (int64_t j = from; j < to; j++) {
        t += x[j];
    }
    return t;
}

static inline double
nonneg(double v)
{
    return v > 0.0 ? v : 0.0; /* fmax() is a libm call at -O2 */
}

static inline void
var_add(acc *a, double v)
{
    a->n++;
    double d = v - a->mean;
    a->mean += d / (double)a->n;
    a->m2 += d * (v - a->mean);
}

static inline void
var_remove(acc *a, double v)
{
    if (--a->n == 0) {
        a->mean = a->m2 = 0.0;
        return;
    }
    double d = v - a->mean;
    a->mean -= d / (double)a->n;
    a->m2 -= d * (v - a->mean);
}

/* Welford's updates drift by rounding: rebuild mean and M2 exactly (two passes) now and
 * then -- a fraction of a pass overall -- and whenever the window holds a single repeated
 * value, whose deviation is exactly 0.  Returned by value: a loop whose accumulator had its
 * address taken would keep it in memory, and every update would wait on a store. */
static acc
var_rebuilt(acc a, const double *x, int64_t from, int64_t to)
{
    double mean = 0.0, m2 = 0.0;
    for (int64_t j = from; j < to; j++) {
        mean += x[j];
    }
    mean /= (double)(to - from);
    for (int64_t j = from; j < to; j++) {
        m2 += (x[j] - mean) * (x[j] - mean);
    }
    a.mean = mean;
    a.m2 = m2;
    return a;
}

/* M2 fell below 2^-20 of what it was (a large value left the window): the update
 * subtracted nearly equal numbers and kept only the last bits of precision, so the sliding
 * value is rounding noise (std 0 where it is 0.002) and must be rebuilt from the window. */
static inline int
cancelled(double m2, double before)
{
    return m2 < before * 0x1p-20;
}

static inline double
std_of(const acc *a, int64_t count, int ddof)
{
    return count < 2 || count <= ddof ? NAN : sqrt(nonneg(a->m2) / (double)(count - ddof));
}

#define REBUILD_MIN 8192

/* One segment of a row window from x[s] up to the first NaN or e; returns where it
 * stopped, or LOB_E_INTR.  ddof < 0 asks for the sum.  Finding the NaN here, not in a pass
 * of its own, reads the input once. */
static int64_t
seg_rows(const double *x, int64_t s, int64_t e, int64_t rows, int ddof, double *out, lob_error *err)
{
    acc a = {0};
    int64_t i = s;
    int rc = LOB_OK, more;
    do { /* filling */
        const int64_t b = block_end(i, e);
        for (; i < b && i - s < rows && !isnan(x[i]); i++) {
            if (ddof < 0) {
                sum_add(&a, x[i]);
            }
            else {
                var_add(&a, x[i]);
            }
            out[i] = NAN;
        }
        more = next_block(i, b, e, err, &rc);
    } while (more > 0);
    if (rc < 0) {
        return rc;
    }
    if (i - s < rows) {
        return i; /* the segment never fills a window */
    }
    /* here rows <= i - s <= n: rows * 8 cannot overflow */
    const int64_t every = rows * 8 > REBUILD_MIN ? rows * 8 : REBUILD_MIN;
    int64_t steps = 0;
    if (ddof < 0) {
        /* a plain sliding sum (two flops a value) rebuilt from the window every `every`
         * steps: drift stays below `every` roundings, and the loop keeps pace with memory */
        double sum = a.sum + a.comp;
        out[i - 1] = sum;
        do {
            const int64_t b = block_end(i, e);
            for (; i < b && !isnan(x[i]); i++) {
                sum += x[i] - x[i - rows];
                if (++steps == every) {
                    sum = sum_of(x, i - rows + 1, i + 1);
                    steps = 0;
                }
                out[i] = sum;
            }
            more = next_block(i, b, e, err, &rc);
        } while (more > 0);
        return rc < 0 ? rc : i;
    }
    const double inv = 1.0 / (double)rows;
    const double scale = rows > ddof && rows >= 2 ? 1.0 / (double)(rows - ddof) : NAN;
    int64_t run = 1;
    for (int64_t j = i - rows + 1; j < i; j++) {
        run = x[j] == x[j - 1] ? run + 1 : 1;
    }
    if (run >= rows) {
        a.mean = x[i - 1];
        a.m2 = 0.0;
    }
    out[i - 1] = sqrt(nonneg(a.m2) * scale);
    /* last: the latest row whose value differs from the row before (the window ending at i
     * holds one repeated value when i - last >= rows - 1); next: the row where the next
     * rebuild is due (every `every` updates that were not of such a window) */
    int64_t last = i - run, next = i + every - 1;
    do {
        const int64_t b = block_end(i, e), from = i;
        for (; i < b; i++) {
            const double v = x[i], old = x[i - rows], mean0 = a.mean, delta = v - old, m2 = a.m2;
            a.mean += delta * inv;
            a.m2 += delta * ((v - a.mean) + (old - mean0));
            /* branch-free bookkeeping and one rarely taken branch: a NaN (the segment ends
             * here, this update is dropped with it), one repeated value (exactly 0), or a
             * rebuild is due */
            last = v != x[i - 1] ? i : last;
            const int flat = i - last >= rows - 1;
            if (flat | (i == next) | cancelled(a.m2, m2) | (v != v)) {
                if (v != v) {
                    break;
                }
                if (flat) {
                    a.mean = v;
                    a.m2 = 0.0;
                    next++; /* not an update that counts towards a rebuild */
                }
                else {
                    a = var_rebuilt(a, x, i - rows + 1, i + 1);
                    next = i + every;
                }
            }
            out[i] = a.m2 * scale; /* the variance: its root (of >= 0) below */
        }
        sqrt_in_place(out + from, i - from, scale == scale);
        more = next_block(i, b, e, err, &rc);
    } while (more > 0);
    return rc < 0 ? rc : i;
}

/* `a` where `c` is nonzero, else `b`: a select on the bits, which the compiler cannot turn
 * into a branch. */
static inline double
pick(int c, double a, double b)
{
    uint64_t ua, ub, m = (uint64_t)0 - (uint64_t)(c != 0);
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    ua = (ua & m) | (ub & ~m);
    memcpy(&a, &ua, sizeof a);
    return a;
}

/* One segment of a time-window sum (span > 0), as seg_span() computes it.  Rows leave the
 * window about one per new row, but 0, 1, 2 or more at random: a loop that removes them
 * mispredicts its exit about once a row.  So two removals are made without a branch, and the
 * loop takes the rest: each adds -x[tail] when that row has left, else -0.0, picked before
 * the addition so that the pick is not on the sum's chain.  Adding -0.0 changes nothing: s +
 * -0.0 is s for every s (+0.0 too), and TwoSum's error term for it is +0.0, which leaves the
 * compensation as it was (it starts at +0.0 and an addition never makes it -0.0); once an
 * infinity has entered, the compensation is NaN either way.  So the sums are those of the
 * plain loop, bit for bit. */
static int64_t
seg_span_sum(const double *x, const int64_t *ts, int64_t s, int64_t e, int64_t span, double *out,
             lob_error *err)
{
    acc a = {0};
    int64_t tail = s, i = s;
    int rc = LOB_OK, more;
    do {
        const int64_t b = block_end(i, e);
        for (; i < b && !isnan(x[i]); i++) {
            sum_add(&a, x[i]);
            const int64_t since = ts[i] - span;    /* ts <= since has left the window */
            for (int step = 0; step < 2; step++) { /* tail <= i, whose ts > since */
                const int gone = ts[tail] <= since;
                sum_add(&a, pick(gone, -x[tail], -0.0));
                tail += gone;
            }
            for (; ts[tail] <= since; tail++) {
                sum_add(&a, -x[tail]);
            }
            out[i] = ts[i] - ts[s] < span ? NAN : a.sum + a.comp; /* NaN: not yet full */
        }
        more = next_block(i, b, e, err, &rc);
    } while (more > 0);
    return rc < 0 ? rc : i;
}

/* One segment of a time window (span > 0) or of the cumulative window (span == 0), from
 * x[s] up to the first NaN or e; returns where it stopped, or LOB_E_INTR. */
static int64_t
seg_span(const double *x, const int64_t *ts, int64_t s, int64_t e, int64_t span, int ddof,
         double *out, lob_error *err)
{
    acc a = {0};
    int64_t tail = s, run = 0, steps = 0;
    const int64_t every = REBUILD_MIN;
    int64_t i = s;
    int rc = LOB_OK, more;
    do {
        const int64_t b = block_end(i, e);
        for (; i < b && !isnan(x[i]); i++) {
            const double v = x[i];
            if (ddof < 0) {
                sum_add(&a, v);
            }
            else {
                var_add(&a, v);
            }
            const double m2 = a.m2;
            if (span > 0) {
                const int64_t since = ts[i] - span; /* ts <= since has left the window */
                for (; ts[tail] <= since; tail++) {
                    if (ddof < 0) {
                        sum_add(&a, -x[tail]);
                    }
                    else {
                        var_remove(&a, x[tail]);
                    }
                }
            }
            const int64_t count = i - tail + 1;
            if (ddof >= 0) {
                run = i > s && v == x[i - 1] ? run + 1 : 1;
                if (run >= count) {
                    a.mean = v;
                    a.m2 = 0.0;
                }
                else if (++steps == every || cancelled(a.m2, m2)) {
                    a = var_rebuilt(a, x, tail, i + 1);
                    steps = 0;
                }
            }
            if (span > 0 && ts[i] - ts[s] < span) {
                out[i] = NAN; /* the window is not yet full */
            }
            else {
                out[i] = ddof < 0 ? a.sum + a.comp : std_of(&a, count, ddof);
            }
        }
        more = next_block(i, b, e, err, &rc);
    } while (more > 0);
    return rc < 0 ? rc : i;
}

static int
roll(const double *x, int64_t n, const lob_window *w, int ddof, double *out, lob_error *err)
{
    LOB_FORWARD_IF_ERROR(check_window(n, w, err));
    int64_t polled = 0; /* short segments: a stop check each LOB_POLL_ROWS rows */
    for (int64_t s = 0; s < n;) {
        if (s - polled >= LOB_POLL_ROWS) {
            LOB_FORWARD_IF_ERROR(lob_poll_stop(err));
            polled = s;
        }
        int64_t e = w->rows > 0               ? seg_rows(x, s, n, w->rows, ddof, out, err)
                    : w->span > 0 && ddof < 0 ? seg_span_sum(x, w->ts, s, n, w->span, out, err)
                                              : seg_span(x, w->ts, s, n, w->span, ddof, out, err);
        if (e < 0) {
            return (int)e;
        }
        if (e < n) {
            out[e] = NAN; /* the break itself */
        }
        s = e + 1;
    }
    return LOB_OK;
}

int
lob_rolling_sum(const double *x, int64_t n, const lob_window *w, double *out, lob_error *err)
{
    return roll(x, n, w, -1, out, err);
}

int
lob_rolling_std(const double *x, int64_t n, const lob_window *w, int ddof, double *out,
                lob_error *err)
{
    if (ddof < 0) {
        return lob_error_set(err, LOB_E_ARG, "ddof must be >= 0, not %d", ddof);
    }
    return roll(x, n, w, ddof, out, err);
}

static int
run_job(void *arg, size_t i, lob_error *err)
{
    const lob_rolling_job *j = (const lob_rolling_job *)arg + i;
    return j->ddof < 0 ? lob_rolling_sum(j->x, j->n, &j->w, j->out, err)
                       : lob_rolling_std(j->x, j->n, &j->w, j->ddof, j->out, err);
}

int
lob_rolling_many(const lob_rolling_job *jobs, size_t n_jobs, int threads, lob_error *err)
{
    int64_t most = 0; /* windows over a few rows each are not worth a thread */
    for (size_t i = 0; i < n_jobs; i++) {
        most = jobs[i].n > most ? jobs[i].n : most;
    }
    return lob_run_tasks(n_jobs, most >= LOB_PARALLEL_MIN_ROWS ? threads : 1, run_job, (void *)jobs,
                         err);
}
