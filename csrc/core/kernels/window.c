/* window.c -- batch gather of normalised windows (see window.h).
 *
 * No stop check (Ctrl-C): a call copies one training batch (B x T x f values, megabytes,
 * milliseconds), and the worker threads could not poll anyway (only the thread that released
 * the GIL may).  Ends are row numbers, not times: checked against [t - 1, n) before any use,
 * so ends[b] + 1 - t is a row of x, and every offset below lies inside x or the caller's out
 * (nb * t * f elements). */
#include "core/kernels/window.h"

#include <pthread.h>

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
    size_t nb, t;
    void *out;
    int out_f32;
} lob_gather_job;

static void *
gather_job(void *arg)
{
    const lob_gather_job *j = arg;
    if (j->s->x_f32) {
        j->out_f32 ? gather_ff(j->s, j->ends, j->nb, j->t, j->out)
                   : gather_fd(j->s, j->ends, j->nb, j->t, j->out);
    }
    else {
        j->out_f32 ? gather_df(j->s, j->ends, j->nb, j->t, j->out)
                   : gather_dd(j->s, j->ends, j->nb, j->t, j->out);
    }
    return NULL;
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
    /* One share of the windows per thread, the last one on the calling thread; a thread
     * that cannot be started leaves its share to the caller. */
    lob_gather_job jobs[LOB_GATHER_MAX_THREADS];
    pthread_t tid[LOB_GATHER_MAX_THREADS];
    int started[LOB_GATHER_MAX_THREADS] = {0};
    size_t elem = out_f32 ? sizeof(float) : sizeof(double), lo = 0;
    for (int k = 0; k < threads; k++) {
        size_t hi = nb * (size_t)(k + 1) / (size_t)threads;
        jobs[k] =
            (lob_gather_job){s, ends + lo, hi - lo, t, (char *)out + lo * t * s->f * elem, out_f32};
        lo = hi;
        if (k + 1 < threads) {
            started[k] = pthread_create(&tid[k], NULL, gather_job, &jobs[k]) == 0;
        }
    }
    for (int k = 0; k < threads; k++) {
        if (!started[k]) {
            gather_job(&jobs[k]);
        }
    }
    for (int k = 0; k < threads; k++) {
        if (started[k]) {
            pthread_join(tid[k], NULL);
        }
    }
    return LOB_OK;
}
