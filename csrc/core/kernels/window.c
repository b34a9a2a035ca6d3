/* window.c -- batch gather of normalised windows (see window.h).
 *
 * No stop check (Ctrl-C): a call copies one training batch (B x T x f values, megabytes,
 * milliseconds).  The threads share the windows through core/parallel.h.  Ends are row
 * numbers, not times: checked against [t - 1, n) before any use, so ends[b] + 1 - t is a row
 * of x, and every offset below lies inside x or the caller's out (nb * t * f elements). */
#include "core/kernels/window.h"

#include "core/parallel.h"

/* One loop per (input, output) type pair: the inner loop then is a plain strided
 * multiply-add that the compiler vectorises. */
#define LOB_GATHER(NAME, TIN, TOUT)                                                                \
    static void NAME(const lob_window_src *s, const int64_t *ends, size_t nb, size_t t, TOUT *o)   \
    {                                                                                              \
        const TIN *x = s->x;                                                                       \
        const size_t f = s->f;                                                                     \
        for (size_t b = 0; b < nb; b++) {                                                          \
            size_t r = (size_t)ends[b] + 1 - t;                                                    \
            for (size_t k = 0; k < t; k++, r++, o += f) {                                          \
                const TIN *row = x + r * f;                                                        \
                if (s->shift == NULL) {                                                            \
                    for (size_t j = 0; j < f; j++) {                                               \
                        o[j] = (TOUT)row[j];                                                       \
                    }                                                                              \
                    continue;                                                                      \
                }                                                                                  \
                size_t at = s->group != NULL ? (size_t)s->group[r] * f : 0;                        \
                const double *sh = s->shift + at, *sc = s->scale + at;                             \
                for (size_t j = 0; j < f; j++) {                                                   \
                    o[j] = (TOUT)(((double)row[j] - sh[j]) * sc[j]);                               \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

LOB_GATHER(gather_dd, double, double)
LOB_GATHER(gather_df, double, float)
LOB_GATHER(gather_fd, float, double)
LOB_GATHER(gather_ff, float, float)

typedef struct {
    const lob_window_src *s;
    const int64_t *ends;
    size_t nb, t, shares;
    void *out;
    int out_f32;
} lob_gather_job;

/* Share i of the windows (of job->shares equal shares). */
static int
gather_share(void *arg, size_t i, lob_error *err)
{
    (void)err;
    const lob_gather_job *j = arg;
    size_t lo = j->nb * i / j->shares, hi = j->nb * (i + 1) / j->shares;
    size_t elem = j->out_f32 ? sizeof(float) : sizeof(double);
    const int64_t *ends = j->ends + lo;
    void *out = (char *)j->out + lo * j->t * j->s->f * elem;
    if (j->s->x_f32) {
        j->out_f32 ? gather_ff(j->s, ends, hi - lo, j->t, out)
                   : gather_fd(j->s, ends, hi - lo, j->t, out);
    }
    else {
        j->out_f32 ? gather_df(j->s, ends, hi - lo, j->t, out)
                   : gather_dd(j->s, ends, hi - lo, j->t, out);
    }
    return LOB_OK;
}

int
lob_window_gather(const lob_window_src *s, const int64_t *ends, size_t nb, size_t t, void *out,
                  int out_f32, int threads, lob_error *err)
{
    if (t == 0 || t > s->n) {
        return lob_error_set(err, LOB_E_ARG, "window length %zu must be in 1..%zu (the rows)", t,
                             s->n);
    }
    if (s->shift != NULL && (s->scale == NULL || s->g == 0)) {
        return lob_error_set(err, LOB_E_ARG, "normalisation needs shift, scale and g >= 1");
    }
    for (size_t b = 0; b < nb; b++) {
        if (ends[b] < (int64_t)t - 1 || ends[b] >= (int64_t)s->n) {
            return lob_error_set(err, LOB_E_INDEX,
                                 "window %zu ends at row %lld: it must be in %zu..%zu for %zu-row "
                                 "windows over %zu rows",
                                 b, (long long)ends[b], t - 1, s->n - 1, t, s->n);
        }
        if (s->shift != NULL && s->group != NULL) {
            for (size_t r = (size_t)ends[b] + 1 - t; r <= (size_t)ends[b]; r++) {
                if (s->group[r] < 0 || (size_t)s->group[r] >= s->g) {
                    return lob_error_set(err, LOB_E_INDEX,
                                         "row %zu has statistics set %d, not in 0..%zu", r,
                                         (int)s->group[r], s->g - 1);
                }
            }
        }
    }
    if (threads < 1) {
        threads = 1;
    }
    if (threads > LOB_GATHER_MAX_THREADS) {
        threads = LOB_GATHER_MAX_THREADS;
    }
    if ((size_t)threads > nb) {
        threads = nb > 0 ? (int)nb : 1;
    }
    /* one share of the windows per thread; a copy has no stop check (see the top) */
    lob_gather_job job = {s, ends, nb, t, (size_t)threads, out, out_f32};
    return lob_run_tasks((size_t)threads, threads, gather_share, &job, err);
}
