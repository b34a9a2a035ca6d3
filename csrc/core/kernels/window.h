/* window.h -- the batch gather behind lobfast's PyTorch data path.
 *
 * A training batch is B windows of T consecutive rows of an (n, f) feature matrix, each
 * normalised as (x - shift) * scale with per-feature statistics (one set, or one per row
 * group: a day's rolling statistics).  One call copies a whole batch into a caller-owned
 * (B, T, f) buffer, so no window is ever materialised on its own.
 * Pure C11, re-entrant, never includes Python.h.
 */
#ifndef LOB_WINDOW_H
#define LOB_WINDOW_H

#include "core/lob.h"

/* The matrix windows are cut from, and how its rows are normalised. */
typedef struct lob_window_src_s {
    const void *x;        /* (n, f) C-contiguous; float or double, see x_f32 */
    int x_f32;            /* 1: x is float, 0: double */
    size_t n, f;          /* rows, features per row */
    const double *shift;  /* (g, f) subtracted, or NULL: no normalisation */
    const double *scale;  /* (g, f) multiplied after the shift; NULL with shift */
    const int32_t *group; /* (n,) statistics set of each row in [0, g), or NULL: set 0 */
    size_t g;             /* statistics sets (>= 1 when shift is given) */
} lob_window_src;

/*! lob_window_gather() : out[b, s, :] = normalised x[ends[b] - t + 1 + s, :] for every
 *  b < nb and s < t; `out` is (nb, t, f) C-contiguous float (out_f32) or double.  Values
 *  are computed in double and rounded once.  Every end is checked first (t - 1 <= end < n)
 *  and so are the groups of the rows used, so a bad argument writes nothing.  `threads`
 *  (1..LOB_GATHER_MAX_THREADS) share the windows: one core cannot fill the memory bandwidth
 *  a batch copy could use.  Threads are started and joined within the call.
 *  @return 0, LOB_E_INDEX naming the first bad end / group, or LOB_E_ARG (bad t, or
 *  normalisation without its statistics). */
int lob_window_gather(const lob_window_src *src, const int64_t *ends, size_t nb, size_t t,
                      void *out, int out_f32, int threads, lob_error *err);

#define LOB_GATHER_MAX_THREADS 16

#endif /* LOB_WINDOW_H */
