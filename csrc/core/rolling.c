/* rolling.c -- rolling sums and standard deviations that restart after every NaN.
 *
 * The input is cut into segments at NaNs; each segment is one tight loop with its own
 * state, specialised by window kind (rows, span, cumulative) so that the common sliding
 * case is a few flops per value without branches that depend on the data.
 */
#include "rolling.h"

#include <math.h>

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
 * value, whose deviation is exactly 0. */
static void
var_rebuild(acc *a, const double *x, int64_t from, int64_t to)
{
    double mean = 0.0, m2 = 0.0;
    for (int64_t j = from; j < to; j++) {
        mean += x[j];
    }
    mean /= (double)(to - from);
    for (int64_t j = from; j < to; j++) {
        m2 += (x[j] - mean) * (x[j] - mean);
    }
    a->mean = mean;
    a->m2 = m2;
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
 * stopped.  ddof < 0 asks for the sum.  Finding the NaN here, not in a pass of its own,
 * reads the input once. */
static int64_t
seg_rows(const double *x, int64_t s, int64_t e, int64_t rows, int ddof, double *out)
{
    acc a = {0};
    int64_t i = s;
    for (; i < e && i - s < rows && !isnan(x[i]); i++) { /* filling */
        if (ddof < 0) {
            sum_add(&a, x[i]);
        }
        else {
            var_add(&a, x[i]);
        }
        out[i] = NAN;
    }
    if (i - s < rows) {
        return i; /* the segment never fills a window */
    }
    const int64_t every = rows * 8 > REBUILD_MIN ? rows * 8 : REBUILD_MIN;
    int64_t steps = 0;
    if (ddof < 0) {
        /* a plain sliding sum (two flops a value) rebuilt from the window every `every`
         * steps: drift stays below `every` roundings, and the loop keeps pace with memory */
        double sum = a.sum + a.comp;
        out[i - 1] = sum;
        for (; i < e && !isnan(x[i]); i++) {
            sum += x[i] - x[i - rows];
            if (++steps == every) {
                sum = sum_of(x, i - rows + 1, i + 1);
                steps = 0;
            }
            out[i] = sum;
        }
        return i;
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
    for (; i < e && !isnan(x[i]); i++) {
        const double v = x[i], old = x[i - rows], mean0 = a.mean, delta = v - old, m2 = a.m2;
        a.mean += delta * inv;
        a.m2 += delta * ((v - a.mean) + (old - mean0));
        run = v == x[i - 1] ? run + 1 : 1;
        if (run >= rows) {
            a.mean = v;
            a.m2 = 0.0;
        }
        else if (++steps == every || cancelled(a.m2, m2)) {
            var_rebuild(&a, x, i - rows + 1, i + 1);
            steps = 0;
        }
        out[i] = sqrt(nonneg(a.m2) * scale);
    }
    return i;
}

/* One segment of a time window (span > 0) or of the cumulative window (span == 0), from
 * x[s] up to the first NaN or e; returns where it stopped. */
static int64_t
seg_span(const double *x, const int64_t *ts, int64_t s, int64_t e, int64_t span, int ddof,
         double *out)
{
    acc a = {0};
    int64_t tail = s, run = 0, steps = 0;
    const int64_t every = REBUILD_MIN;
    int64_t i = s;
    for (; i < e && !isnan(x[i]); i++) {
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
                var_rebuild(&a, x, tail, i + 1);
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
    return i;
}

static int
roll(const double *x, int64_t n, const lob_window *w, int ddof, double *out, lob_error *err)
{
    LOB_FORWARD_IF_ERROR(check_window(n, w, err));
    for (int64_t s = 0; s < n;) {
        int64_t e = w->rows > 0 ? seg_rows(x, s, n, w->rows, ddof, out)
                                : seg_span(x, w->ts, s, n, w->span, ddof, out);
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
