/* labels.c -- look-ahead targets over a mid-price series (see labels.h for the rules). */
#include "core/kernels/labels.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define LOG_BLOCK 256 /* values per vectorised inner loop */

/* Row i can carry or be crossed by a label: the book is valid there and the mid finite. */
static inline int
usable(const lob_series *s, size_t i)
{
    return (s->valid == NULL || s->valid[i]) && isfinite(s->mid[i]);
}

/* 1 when every mid is finite and > 0 and every row valid (the usual series), with *lo_out
 * and *hi_out the smallest and largest mid.  Positive finite doubles order as their bits read as
 * int64 (and nothing else lands in (0, +inf bits)), so this is an integer min / max: one
 * vectorised pass. */
LOB_VECTOR_CLONES static int
series_is_clean(const double *restrict mid, const uint8_t *restrict valid, size_t n, double *lo_out,
                double *hi_out)
{
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    size_t i = 0;
    int64_t invalid = 0;
    for (; i + LOG_BLOCK <= n; i += LOG_BLOCK) { /* fixed inner counts: vector code at -O2 */
        int64_t u[LOG_BLOCK];
        memcpy(u, mid + i, sizeof u);
        for (int j = 0; j < LOG_BLOCK; j++) {
            lo = u[j] < lo ? u[j] : lo;
            hi = u[j] > hi ? u[j] : hi;
        }
        for (int j = 0; valid != NULL && j < LOG_BLOCK; j++) {
            invalid |= valid[i + j] == 0;
        }
    }
    for (; i < n; i++) {
        int64_t u;
        memcpy(&u, &mid[i], sizeof u);
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
        invalid |= valid != NULL && valid[i] == 0;
    }
    if (!(lo > 0 && hi < INT64_C(0x7ff0000000000000)) || invalid) {
        return 0;
    }
    memcpy(lo_out, &lo, sizeof lo);
    memcpy(hi_out, &hi, sizeof hi);
    return 1;
}

/* Sorted times in [LOB_TS_MIN, LOB_TS_MAX] (so t + h below cannot overflow for any h that
 * fits int64, and -1 in known_at is never a time), a finite positive mid on every usable row,
 * at least one row.  *nbad gets the number of unusable rows: with none, the kernels skip
 * their window checks.  The usual series (all usable) takes one vectorised pass. */
static int
check_series(const lob_series *s, size_t *nbad, lob_error *err)
{
    *nbad = 0;
    if (s->n == 0) {
        return lob_error_set(err, LOB_E_ARG, "no rows: labels need a non-empty series");
    }
    if (s->n > (size_t)INT64_MAX) {
        return lob_error_set(err, LOB_E_ARG, "%zu rows is more than int64 can count", s->n);
    }
    LOB_FORWARD_IF_ERROR(lob_check_times(s->ts, (int64_t)s->n, 1, "ts", err));
    double lo, hi;
    if (series_is_clean(s->mid, s->valid, s->n, &lo, &hi)) {
        return LOB_OK;
    }
    for (size_t i = 0; i < s->n; i++) {
        double m = s->mid[i];
        if (s->valid != NULL && s->valid[i] && !isfinite(m)) {
            return lob_error_set(err, LOB_E_ARG,
                                 "mid is %g at row %zu, where the book is marked valid; mark such "
                                 "rows invalid (valid=valid & np.isfinite(mid))",
                                 m, i);
        }
        *nbad += !usable(s, i);
        if (isfinite(m) && !(m > 0) && (s->valid == NULL || s->valid[i])) {
            return lob_error_set(err, LOB_E_ARG, "mid must be > 0 for log returns: %g at row %zu",
                                 m, i);
        }
    }
    return LOB_OK;
}

static int
check_horizon(lob_horizon h, const char *what, lob_error *err)
{
    if ((h.rows > 0) == (h.ns > 0) || h.rows < 0 || h.ns < 0) {
        return lob_error_set(err, LOB_E_ARG,
                             "%s must be a positive number of rows or a positive time span "
                             "(got rows=%lld, ns=%lld)",
                             what, (long long)h.rows, (long long)h.ns);
    }
    return LOB_OK;
}

/* Count of unusable rows in [lo, hi), kept while the window slides.  Each bound moves
 * monotonically in practice, so the total work is O(n) for a whole pass. */
typedef struct {
    size_t lo, hi; /* the rows counted: [lo, hi) */
    size_t bad;    /* unusable rows among them */
} bad_window;

static void
window_move(bad_window *w, const lob_series *s, size_t lo, size_t hi)
{
    /* grow to the union first, then shrink, so that the count never goes negative */
    while (w->hi < hi) {
        w->bad += !usable(s, w->hi++);
    }
    while (w->lo > lo) {
        w->bad += !usable(s, --w->lo);
    }
    while (w->hi > hi) {
        w->bad -= !usable(s, --w->hi);
    }
    while (w->lo < lo) {
        w->bad -= !usable(s, w->lo++);
    }
}

/* The mid in effect at ts[i] + ns: the last row j >= *p with ts[j] <= ts[i] + ns, found by
 * moving *p forward (targets never decrease as i grows).  0 when that time is past the
 * data's last row: then nothing after it is known. */
static int
time_end(const lob_series *s, size_t i, int64_t ns, size_t *p, int64_t *target)
{
    int64_t t;
    if (lob_ts_add(s->ts[i], ns, &t) < 0 || t > s->ts[s->n - 1]) {
        return 0;
    }
    size_t j = *p > i ? *p : i, last = s->n - 1;
    /* the end moves about one row per row on irregular data: two branch-free steps take
     * the usual cases without a mispredicted loop exit, the loop the rest */
    for (int step = 0; step < 2; step++) {
        size_t more = j < last;
        j += more & (s->ts[j + more] <= t);
    }
    while (j < last && s->ts[j + 1] <= t) {
        j++;
    }
    *p = j;
    *target = t;
    return 1;
}

/* ---- log over a block, vectorisable ------------------------------------------------
 *
 * libm's log is one call per value (about 40 % of a forward return on 3 M rows).  This one
 * has no branch and no table, so the compiler turns a loop of LOG_BLOCK values into vector
 * code: x = 2^k m with m in [sqrt(2)/2, sqrt(2)), f = m - 1, s = f / (2 + f), and
 * log(m) = f - f^2/2 + s (f^2/2 + R(s^2)), R the classic minimax fit (fdlibm's e_log.c
 * coefficients), error below 1 ulp.  libm's log differs from it in the last bit at times.
 * Zero, negative, subnormal, infinite and NaN values take libm's log. */

static inline double
bits_to_double(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static inline uint64_t
double_to_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static inline double
log_normal(double x)
{
    const double lg1 = 6.666666666666735130e-01, lg2 = 3.999999999940941908e-01,
                 lg3 = 2.857142874366239149e-01, lg4 = 2.222219843214978396e-01,
                 lg5 = 1.818357216161805012e-01, lg6 = 1.531383769920937332e-01,
                 lg7 = 1.479819860511658591e-01;
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    const uint64_t ix = double_to_bits(x);
    /* the exponent k of x / (sqrt(2)/2), as the top 12 bits of a difference (two's
     * complement), and as a double without an int64 -> double conversion */
    const uint64_t e = ix - UINT64_C(0x3fe6a09e667f3bcd);
    const double dk =
        bits_to_double(UINT64_C(0x4330000000000000) | ((e >> 52) ^ 2048)) - (0x1p52 + 2048.0);
    const double f = bits_to_double(ix - (e & UINT64_C(0xfff0000000000000))) - 1.0;
    const double s = f / (2.0 + f), z = s * s, w = z * z;
    const double r = z * (lg1 + w * (lg3 + w * (lg5 + w * lg7))) + w * (lg2 + w * (lg4 + w * lg6));
    const double hfsq = 0.5 * f * f;
    return dk * ln2_hi - ((hfsq - (s * (hfsq + r) + dk * ln2_lo)) - f);
}

/* out[j] = log(x[j]) for LOG_BLOCK values. */
LOB_VECTOR_CLONES static void
log_block(const double *restrict x, double *restrict out)
{
    int odd = 0;
    for (int j = 0; j < LOG_BLOCK; j++) {
        out[j] = log_normal(x[j]); /* garbage for the odd values, fixed below */
    }
    for (int j = 0; j < LOG_BLOCK; j++) {
        odd |= !(x[j] >= DBL_MIN) | !(x[j] <= DBL_MAX);
    }
    for (int j = 0; odd && j < LOG_BLOCK; j++) {
        if (!(x[j] >= DBL_MIN && x[j] <= DBL_MAX)) {
            out[j] = isnan(x[j]) ? x[j] : log(x[j]);
        }
    }
}

/* v[i] = log(v[i]) for i in [0, n). */
static void
log_in_place(double *v, size_t n)
{
    double x[LOG_BLOCK];
    size_t i = 0;
    for (; i + LOG_BLOCK <= n; i += LOG_BLOCK) {
        memcpy(x, v + i, sizeof x);
        log_block(x, v + i);
    }
    for (; i < n; i++) {
        const double t = v[i];
        v[i] = t >= DBL_MIN && t <= DBL_MAX ? log_normal(t) : isnan(t) ? t : log(t);
    }
}

/* What the dense rows horizon learns about its series on the way: the mids' bits as int64
 * (min, max), and any time out of range or out of order, or row marked invalid. */
typedef struct {
    int64_t lo, hi, bad;
} dense_check;

static inline void
dense_row(const double *mid, const int64_t *ts, const uint8_t *valid, size_t i, size_t k,
          double *ret, int64_t *known_at, dense_check *c)
{
    int64_t u;
    memcpy(&u, &mid[i], sizeof u);
    c->lo = u < c->lo ? u : c->lo;
    c->hi = u > c->hi ? u : c->hi;
    const int64_t t = ts[i + k];
    c->bad |= (int64_t)(t < LOB_TS_MIN) | (int64_t)(t > LOB_TS_MAX) | (int64_t)(t < ts[i + k - 1]);
    c->bad |= valid != NULL && valid[i] == 0;
    ret[i] = mid[i + k] / mid[i]; /* its log comes after */
    known_at[i] = t;
}

/* LOG_BLOCK rows of the dense rows horizon from row i (k >= 1): the logs of the ratios, the
 * times k rows on, and the checks of the rows read (fixed counts: vector code). */
LOB_VECTOR_CLONES static void
dense_block(const double *restrict mid, const int64_t *restrict ts, const uint8_t *restrict valid,
            size_t i, size_t k, double *restrict ret, int64_t *restrict known_at, dense_check *c)
{
    const double *restrict num = mid + i + k, *restrict den = mid + i;
    const int64_t *restrict t = ts + i + k;
    int64_t lo = c->lo, hi = c->hi, bad = c->bad;
    for (int j = 0; j < LOG_BLOCK; j++) {
        int64_t u;
        memcpy(&u, &den[j], sizeof u);
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
    }
    for (int j = 0; j < LOG_BLOCK; j++) {
        ret[i + j] = log_normal(num[j] / den[j]);
    }
    for (int j = 0; j < LOG_BLOCK; j++) {
        known_at[i + j] = t[j];
        bad |= (int64_t)(t[j] < LOB_TS_MIN) | (int64_t)(t[j] > LOB_TS_MAX) |
               (int64_t)(t[j] < t[j - 1]);
    }
    if (valid != NULL) {
        for (int j = 0; j < LOG_BLOCK; j++) {
            bad |= (int64_t)(valid[i + j] == 0);
        }
    }
    c->lo = lo, c->hi = hi, c->bad = bad;
}

/* Rows horizon k >= 1, computed on the guess that every row is usable (the usual series):
 * then every label from row 0 to n - 1 - k exists, the ratios and their logs run over
 * contiguous blocks in vector code, and known_at is ts shifted by k.  The checks of
 * check_series() ride along on the values read (one pass over the data instead of three).
 * 1 when the guess held (all written), 0 when it did not (the caller starts over on the
 * general path, which also names a bad row), LOB_E_INTR.  Polls every LOB_POLL_ROWS rows. */
static int
return_rows_dense(const lob_series *s, size_t k, double *restrict ret, int64_t *restrict known_at,
                  lob_error *err)
{
    const size_t n = s->n, m = k < n ? n - k : 0;
    /* rows 0..k of ts (k + 1 <= n) and the mids of rows m..n-1 are not seen by the blocks */
    lob_error quiet = {0};
    double lo, hi;
    if (lob_check_times(s->ts, (int64_t)(k < n ? k + 1 : n), 1, "ts", &quiet) < 0 ||
        !series_is_clean(s->mid + m, s->valid != NULL ? s->valid + m : NULL, n - m, &lo, &hi)) {
        return 0;
    }
    dense_check c = {INT64_MAX, INT64_MIN, 0};
    int rc;
    for (size_t i0 = 0; i0 < m; i0 += LOB_POLL_ROWS) {
        if ((rc = lob_poll_stop(err)) < 0) {
            return rc;
        }
        const size_t i1 = m - i0 > LOB_POLL_ROWS ? i0 + LOB_POLL_ROWS : m;
        size_t i = i0;
        for (; i + LOG_BLOCK <= i1; i += LOG_BLOCK) {
            dense_block(s->mid, s->ts, s->valid, i, k, ret, known_at, &c);
        }
        const size_t rest = i;
        for (; i < i1; i++) {
            dense_row(s->mid, s->ts, s->valid, i, k, ret, known_at, &c);
        }
        log_in_place(ret + rest, i1 - rest);
    }
    /* the guess held when every mid is finite and > 0, every row valid, every time in range
     * and in order, and every ratio of two mids a normal double (log_normal() took them all) */
    if (m > 0) {
        if (!(c.lo > 0 && c.hi < INT64_C(0x7ff0000000000000)) || c.bad != 0) {
            return 0;
        }
        double blo, bhi;
        memcpy(&blo, &c.lo, sizeof blo);
        memcpy(&bhi, &c.hi, sizeof bhi);
        lo = blo < lo ? blo : lo;
        hi = bhi > hi ? bhi : hi;
    }
    if (!(hi / lo < 0x1p1000)) {
        return 0;
    }
    for (size_t i = m; i < n; i++) {
        ret[i] = NAN;
        known_at[i] = -1;
    }
    return 1;
}

int
lob_label_return(const lob_series *s, lob_horizon h, double *ret, int64_t *known_at, lob_error *err)
{
    LOB_FORWARD_IF_ERROR(check_horizon(h, "horizon", err));
    if (h.rows > 0 && s->n > 0 && s->n <= (size_t)INT64_MAX) {
        int done = return_rows_dense(s, (uint64_t)h.rows < s->n ? (size_t)h.rows : s->n, ret,
                                     known_at, err);
        if (done != 0) {
            return done < 0 ? done : LOB_OK;
        }
    }
    size_t nbad;
    LOB_FORWARD_IF_ERROR(check_series(s, &nbad, err));
    bad_window w = {0, 0, 0};
    size_t p = 0;
    int rc;
    /* ret holds the ratio mid[j] / mid[i] (or NaN) until the log runs over each block */
    for (size_t i0 = 0; i0 < s->n; i0 += LOB_POLL_ROWS) {
        if ((rc = lob_poll_stop(err)) < 0) {
            return rc;
        }
        const size_t i1 = s->n - i0 > LOB_POLL_ROWS ? i0 + LOB_POLL_ROWS : s->n;
        for (size_t i = i0; i < i1; i++) {
            size_t j;
            int64_t at;
            ret[i] = NAN;
            known_at[i] = -1;
            if (h.rows > 0) {
                if ((uint64_t)h.rows > s->n - 1 - i) {
                    continue;
                }
                j = i + (size_t)h.rows;
                at = s->ts[j];
            }
            else {
                if (!time_end(s, i, h.ns, &p, &at)) {
                    continue;
                }
                j = p;
            }
            if (nbad > 0) {
                window_move(&w, s, i, j + 1);
            }
            if (w.bad == 0) {
                ret[i] = s->mid[j] / s->mid[i];
                known_at[i] = at;
            }
        }
        log_in_place(ret + i0, i1 - i0);
    }
    return LOB_OK;
}

/* Sum of x over rows [lo, lo + k), x = mid - ref on usable rows and 0 elsewhere (windows
 * holding those rows are discarded, but the sum must stay finite). */
static double
centered_sum(const lob_series *s, double ref, size_t lo, size_t k)
{
    double sum = 0;
    for (size_t j = lo; j < lo + k; j++) {
        sum += usable(s, j) ? s->mid[j] - ref : 0.0;
    }
    return sum;
}

int
lob_label_smooth(const lob_series *s, int64_t k, int against_mean, double *out, int64_t *known_at,
                 lob_error *err)
{
    if (k <= 0) {
        return lob_error_set(err, LOB_E_ARG, "k must be a positive number of rows, not %lld",
                             (long long)k);
    }
    size_t nbad;
    LOB_FORWARD_IF_ERROR(check_series(s, &nbad, err));
    size_t n = s->n, K = (size_t)k;
    double ref = NAN;
    for (size_t i = 0; i < n && isnan(ref); i++) {
        ref = usable(s, i) ? s->mid[i] : NAN;
    }
    for (size_t i = 0; i < n; i++) {
        known_at[i] = -1;
    }
    if ((uint64_t)k >= n || isnan(ref)) {
        for (size_t i = 0; i < n; i++) {
            out[i] = NAN;
        }
        return LOB_OK;
    }
    /* Pass 1: out[t] = sum of x over the k rows after t (t + k < n), by a running sum that
     * restarts from an exact sum every k rows: O(n) in all, drift bounded by 2k terms.
     * Centering on ref keeps the terms small, so (m+ - mid) loses no digits to the price. */
    double run = 0;
    int rc;
    for (size_t t = 0, left = 0; t + K < n; t++, left--) {
        if (LOB_POLL_DUE(t) && (rc = lob_poll_stop(err)) < 0) { /* off the add chain: free */
            return rc;
        }
        if (left == 0) { /* every k rows (a counter: a division per row costs more) */
            out[t] = run = centered_sum(s, ref, t + 1, K);
            left = K;
        }
        else {
            double in = usable(s, t + K) ? s->mid[t + K] - ref : 0.0;
            double gone = usable(s, t) ? s->mid[t] - ref : 0.0;
            out[t] = run = run + (in - gone); /* one add on the carried chain */
        }
    }
    /* Pass 2, backwards so that out[t - k] (the k rows up to t) is still a window sum. */
    bad_window w = {n, n, 0};
    for (size_t t = n; t-- > 0;) {
        if (LOB_POLL_DUE(t) && (rc = lob_poll_stop(err)) < 0) {
            return rc;
        }
        if (t + K >= n || (against_mean && t + 1 < K)) {
            out[t] = NAN;
            continue;
        }
        if (nbad > 0) {
            window_move(&w, s, against_mean ? t + 1 - K : t, t + K + 1);
        }
        if (w.bad != 0) {
            out[t] = NAN;
            continue;
        }
        double plus = out[t] / (double)k; /* m+ - ref */
        if (against_mean) {
            double minus = (t >= K ? out[t - K] : centered_sum(s, ref, 0, K)) / (double)k;
            out[t] = (plus - minus) / (minus + ref);
        }
        else {
            out[t] = (plus - (s->mid[t] - ref)) / s->mid[t];
        }
        known_at[t] = s->ts[t + K];
    }
    return LOB_OK;
}

int
lob_label_ema(const double *f, size_t n, double alpha, double *y, lob_error *err)
{
    if (!(alpha > 0 && alpha <= 1)) {
        return lob_error_set(err, LOB_E_ARG, "alpha must be in (0, 1], not %g", alpha);
    }
    double prev = NAN;
    int rc;
    for (size_t i0 = 0; i0 < n; i0 += LOB_POLL_ROWS) { /* blocks: a stop check between them */
        if ((rc = lob_poll_stop(err)) < 0) {
            return rc;
        }
        size_t i1 = n - i0 > (size_t)LOB_POLL_ROWS ? i0 + (size_t)LOB_POLL_ROWS : n;
        for (size_t i = i0; i < i1; i++) {
            if (isnan(f[i])) {
                y[i] = prev = NAN;
            }
            else {
                y[i] = prev = isnan(prev) ? f[i] : alpha * f[i] + (1 - alpha) * prev;
            }
        }
    }
    return LOB_OK;
}

int
lob_label_classify(const double *x, size_t n, double alpha, double *out, lob_error *err)
{
    if (!(alpha >= 0 && isfinite(alpha))) {
        return lob_error_set(err, LOB_E_ARG, "alpha must be a finite threshold >= 0, not %g",
                             alpha);
    }
    int rc;
    for (size_t i0 = 0; i0 < n; i0 += LOB_POLL_ROWS) { /* blocks: a stop check between them */
        if ((rc = lob_poll_stop(err)) < 0) {
            return rc;
        }
        size_t i1 = n - i0 > (size_t)LOB_POLL_ROWS ? i0 + (size_t)LOB_POLL_ROWS : n;
        for (size_t i = i0; i < i1; i++) {
            double v = x[i];
            out[i] = isnan(v) ? NAN : v > alpha ? 1.0 : v < -alpha ? -1.0 : 0.0;
        }
    }
    return LOB_OK;
}

static int
check_barrier(const double *b, size_t n, const char *name, lob_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (!(b[i] > 0) && !isnan(b[i])) {
            return lob_error_set(err, LOB_E_ARG,
                                 "%s barrier must be > 0 (a log return; +inf for none), not %g at "
                                 "row %zu (a volatility that can be 0 needs a floor)",
                                 name, b[i], i);
        }
    }
    return LOB_OK;
}

/* A price just inside a barrier: the walk compares prices (no log per step) and confirms a
 * candidate with the exact log-return test, so the label is the one the rule defines. */
#define LOB_BARRIER_SLACK 1e-12

int
lob_label_barrier(const lob_series *s, const double *upper, const double *lower, lob_horizon limit,
                  double *label, int64_t *time, double *ret, lob_error *err)
{
    LOB_FORWARD_IF_ERROR(check_horizon(limit, "limit", err));
    size_t nbad;
    LOB_FORWARD_IF_ERROR(check_series(s, &nbad, err));
    LOB_FORWARD_IF_ERROR(check_barrier(upper, s->n, "upper", err));
    LOB_FORWARD_IF_ERROR(check_barrier(lower, s->n, "lower", err));
    size_t n = s->n, p = 0, walked = 0; /* rows walked since the last stop check */
    int rc;
    for (size_t i = 0; i < n; i++) {
        if (walked >= (size_t)LOB_POLL_ROWS) { /* O(n * limit): count the walks, not the rows */
            if ((rc = lob_poll_stop(err)) < 0) {
                return rc;
            }
            walked = 0;
        }
        walked++;
        label[i] = ret[i] = NAN;
        time[i] = -1;
        double up = upper[i], dn = lower[i];
        if (!usable(s, i) || isnan(up) || isnan(dn)) {
            continue;
        }
        /* e: last row within the limit, or n - 1 when the limit lies past the data */
        size_t e = n - 1;
        int inside = 0;
        int64_t at = 0;
        if (limit.rows > 0) {
            if ((uint64_t)limit.rows <= n - 1 - i) {
                e = i + (size_t)limit.rows;
                at = s->ts[e];
                inside = 1;
            }
        }
        else if (time_end(s, i, limit.ns, &p, &at)) {
            e = p;
            inside = 1;
        }
        double m0 = s->mid[i];
        double up_px = m0 * exp(up) * (1 - LOB_BARRIER_SLACK);
        double dn_px = m0 * exp(-dn) * (1 + LOB_BARRIER_SLACK);
        size_t j = i + 1;
        for (; j <= e; j++) {
            if (nbad > 0 && !usable(s, j)) {
                break; /* the path crosses an unknown book: unresolved */
            }
            double m = s->mid[j];
            if (m >= up_px || m <= dn_px) {
                double r = log(m / m0);
                if (r >= up || r <= -dn) {
                    label[i] = r >= up ? 1.0 : -1.0;
                    ret[i] = r;
                    time[i] = s->ts[j];
                    break;
                }
            }
        }
        walked += j - i;
        if (j > e && inside) {
            label[i] = 0.0;
            ret[i] = log(s->mid[e] / m0);
            time[i] = at;
        }
    }
    return LOB_OK;
}
