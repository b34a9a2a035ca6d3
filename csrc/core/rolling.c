/* rolling.c -- rolling sums and standard deviations that restart after every NaN. */
#include "rolling.h"

#include <math.h>

int
lob_check_sorted(const int64_t *ts, int64_t n, const char *what, lob_error *err)
{
    for (int64_t i = 1; i < n; i++) {
        if (ts[i] < ts[i - 1]) {
            return lob_error_set(err, LOB_E_ARG,
                                 "%s must be sorted ascending: row %lld (%lld) comes before "
                                 "row %lld (%lld)",
                                 what, (long long)i - 1, (long long)ts[i - 1], (long long)i,
                                 (long long)ts[i]);
        }
    }
    return LOB_OK;
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
        return lob_check_sorted(w->ts, n, "ts", err);
    }
    return LOB_OK;
}

/* The window's contents: a compensated sum (Neumaier) and Welford's mean / M2. */
typedef struct {
    double sum, comp, mean, m2;
    int64_t n;
} acc;

static inline void
sum_add(acc *a, double v)
{
    double t = a->sum + v;
    a->comp += fabs(a->sum) >= fabs(v) ? (a->sum - t) + v : (v - t) + a->sum;
    a->sum = t;
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

/* Welford's updates drift by rounding: rebuild the window's mean and M2 exactly (two
 * passes) now and then, which costs a fraction of a pass overall. */
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

/* One driver for both statistics: `std` < 0 asks for the sum, else the ddof of the std. */
static int
roll(const double *x, int64_t n, const lob_window *w, int std, double *out, lob_error *err)
{
    LOB_FORWARD_IF_ERROR(check_window(n, w, err));
    const int64_t *ts = w->ts;
    acc a = {0};
    int64_t tail = 0;    /* oldest row still in the window */
    int64_t restart = 0; /* first row after the last NaN */
    int64_t count = 0;   /* values in the window */
    const double inv_rows = w->rows > 0 ? 1.0 / (double)w->rows : 0.0;
    /* std only: a run of equal values is exactly 0, and the state is rebuilt periodically */
    int64_t run = 0, steps = 0;
    const int64_t rebuild_every = 8 * (w->rows > 1024 ? w->rows : 1024);
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        if (isnan(v)) {
            out[i] = NAN;
            a = (acc){0};
            tail = restart = i + 1;
            count = run = steps = 0;
            continue;
        }
        if (w->rows > 0 && count == w->rows) {
            /* a full row window slides by one: replace the oldest value */
            double old = x[tail++];
            if (std < 0) {
                sum_add(&a, v);
                sum_add(&a, -old);
            }
            else {
                double delta = v - old, mean0 = a.mean;
                a.mean += delta * inv_rows;
                a.m2 += delta * ((v - a.mean) + (old - mean0));
            }
        }
        else {
            count++;
            if (std < 0) {
                sum_add(&a, v);
            }
            else {
                var_add(&a, v);
            }
            if (w->span > 0) {
                const int64_t since = ts[i] - w->span; /* ts >= since leaves the window */
                for (; ts[tail] <= since; tail++, count--) {
                    if (std < 0) {
                        sum_add(&a, -x[tail]);
                    }
                    else {
                        var_remove(&a, x[tail]);
                    }
                }
            }
        }
        if (std >= 0) {
            run = i > restart && v == x[i - 1] ? run + 1 : 1;
            if (run >= count) { /* the window holds one value: no rounding residue */
                a.mean = v;
                a.m2 = 0.0;
                steps = 0;
            }
            else if (++steps >= rebuild_every) {
                var_rebuild(&a, x, tail, i + 1);
                steps = 0;
            }
        }
        int full = w->rows > 0   ? count == w->rows
                   : w->span > 0 ? ts[i] - ts[restart] >= w->span
                                 : 1;
        if (!full) {
            out[i] = NAN;
        }
        else if (std < 0) {
            out[i] = a.sum + a.comp;
        }
        else if (count < 2 || count <= std) {
            out[i] = NAN;
        }
        else {
            out[i] = sqrt(fmax(a.m2, 0.0) / (double)(count - std));
        }
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
