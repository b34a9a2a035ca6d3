/* fuzz_kernels.c -- libFuzzer harness: the array kernels (rolling, features, labels,
 * aggregation, window gather) on any times, values and parameters.
 *
 * Byte 0 picks the family; the rest is read as a stream of small numbers, int64s and doubles
 * that favour the edges: NaT, INT64_MAX, 0, -1, times near LOB_TS_MAX (2262) on either side,
 * 2^62, NaN, +-inf, subnormals.  Times come sorted from such a base, as raw edge values
 * (unsorted), or sorted with one edge value spliced in.  Any ASan/UBSan report is a crash;
 * besides, every call must return 0 or a LOB_E_* code with a message, refuse times outside
 * [LOB_TS_MIN, LOB_TS_MAX] (or unsorted) with LOB_E_ARG, and stop with LOB_E_INTR when the
 * stop check installed in lob_error.poll says so (after a fuzzed number of checks).
 */
#include "core/kernels/aggregate.h"
#include "core/kernels/features.h"
#include "core/kernels/labels.h"
#include "core/kernels/rolling.h"
#include "core/kernels/window.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define MAX_N 256 /* rows per array */

/* The fuzz bytes as a stream; past the end every read gives 0. */
typedef struct {
    const uint8_t *p, *end;
} input;

static uint8_t
u8(input *in)
{
    return in->p < in->end ? *in->p++ : 0;
}

static uint64_t
u64(input *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = v << 8 | u8(in);
    }
    return v;
}

/* An int64 that is often an edge value. */
static int64_t
i64(input *in)
{
    uint8_t k = u8(in), s = u8(in);
    switch (k % 14) {
    case 0: return INT64_MIN; /* NaT */
    case 1: return INT64_MAX;
    case 2: return 0;
    case 3: return LOB_TS_MAX;
    case 4: return LOB_TS_MAX - s;
    case 5: return LOB_TS_MAX + 1 + s;
    case 6: return -1 - (int64_t)s;
    case 7: return s;
    case 8: return (int64_t)s * 1000000000;
    case 9: return INT64_C(1) << 62;
    case 10: return INT64_MAX - s;
    case 11: return INT64_C(1723161256322000000) + s;
    case 12: return (int64_t)1 << (s % 63);
    default: return (int64_t)u64(in);
    }
}

/* A double that is often an edge value. */
static double
f64(input *in)
{
    uint8_t k = u8(in), s = u8(in);
    switch (k % 12) {
    case 0: return NAN;
    case 1: return INFINITY;
    case 2: return -INFINITY;
    case 3: return 0.0;
    case 4: return -0.0;
    case 5: return 4.9e-324 * s;
    case 6: return 1e300;
    case 7: return -(double)s;
    case 8: return 100.0 + s * 0.5;
    case 9: return s / 64.0;
    case 10: return 60000.0 + s;
    default: {
        uint64_t b = u64(in);
        double d;
        memcpy(&d, &b, sizeof d);
        return d;
    }
    }
}

/* n times: sorted from an edge base, raw edge values, or sorted with one edge value. */
static void
times(input *in, int64_t *ts, size_t n)
{
    uint8_t mode = u8(in);
    int64_t t = i64(in), scale = (int64_t[]){1, 1000, 1000000000, INT64_C(1) << 60}[mode >> 2 & 3];
    for (size_t i = 0; i < n; i++) {
        int64_t step;
        if (__builtin_mul_overflow((int64_t)(u8(in) % 4), scale, &step) ||
            lob_ts_add(t, step, &t) < 0) {
            t = INT64_MAX;
        }
        ts[i] = (mode & 3) == 1 ? i64(in) : t;
    }
    if ((mode & 3) == 2 && n > 0) {
        ts[u8(in) % n] = i64(in);
    }
}

/* Whether lob_check_times() would accept ts: in [LOB_TS_MIN, LOB_TS_MAX] and sorted. */
static int
times_ok(const int64_t *ts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (ts[i] < LOB_TS_MIN || ts[i] > LOB_TS_MAX || (i > 0 && ts[i] < ts[i - 1])) {
            return 0;
        }
    }
    return 1;
}

/* Whether the trades' values are what bars accept. */
static int
trades_valid(const lob_agg_input *a)
{
    for (size_t i = 0; i < a->n_trades; i++) {
        const double q = a->trade_qty[i];
        if (!isfinite(a->trade_px[i]) || !isfinite(q) || q < 0 || a->trade_side[i] < -1 ||
            a->trade_side[i] > 1) {
            return 0;
        }
    }
    return 1;
}

/* The stop check: answers "stop" at its `left`-th call (never when left starts at 0). */
typedef struct {
    int left;
    int stopped;
} stopper;

static int
stop_now(void *ctx)
{
    stopper *s = ctx;
    if (s->left > 0 && --s->left == 0) {
        s->stopped = 1;
        return 1;
    }
    return 0;
}

/* A result must be 0, or a code with its message; LOB_E_INTR exactly when the check said
 * stop and not otherwise. */
static void
check_rc(int rc, const lob_error *err, const stopper *st)
{
    CHECK(rc == 0 || (rc >= LOB_E_INDEX && rc < 0), "a LOB_E_* code");
    CHECK(rc == 0 || err->msg[0] != '\0', "an error has a message");
    CHECK((rc == LOB_E_INTR) == (st->stopped != 0), "LOB_E_INTR when and only when stopped");
}

static double xs[4][MAX_N * 4];
static int64_t tsa[2][MAX_N];
static uint8_t flags[MAX_N];
static int8_t sides[MAX_N];
static double outs[4][MAX_N];
static int64_t iouts[2][MAX_N];

static void
fill_f64(input *in, double *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        x[i] = f64(in);
    }
}

static void
fuzz_rolling(input *in, lob_error *err, const stopper *st)
{
    size_t n = u8(in) % (MAX_N + 1);
    fill_f64(in, xs[0], n);
    times(in, tsa[0], n);
    uint8_t how = u8(in);
    lob_window w = {how & 1 ? i64(in) : 0, how & 2 ? i64(in) : 0, how & 4 ? NULL : tsa[0]};
    int ddof = (int)(u8(in) % 5) - 1;
    int rc = how & 8 ? lob_rolling_sum(xs[0], (int64_t)n, &w, outs[0], err)
                     : lob_rolling_std(xs[0], (int64_t)n, &w, ddof, outs[0], err);
    check_rc(rc, err, st);
    if (w.span > 0 && w.rows == 0 && w.ts != NULL && !times_ok(w.ts, n)) {
        CHECK(rc == LOB_E_ARG || rc == LOB_E_INTR, "bad times refused");
    }
}

static void
fuzz_features(input *in, lob_error *err, const stopper *st)
{
    size_t n = u8(in) % (MAX_N / 4 + 1), levels = 1 + u8(in) % 4, m = u8(in) % (MAX_N + 1);
    times(in, tsa[0], n);
    for (int s = 0; s < 4; s++) {
        fill_f64(in, xs[s], n * levels);
    }
    for (size_t i = 0; i < n; i++) {
        flags[i] = u8(in) & 1;
        tsa[1][i] = i64(in); /* update ids */
    }
    lob_book_view b = {(int64_t)n, (int64_t)levels, tsa[0], flags, xs[0], xs[1], xs[2], xs[3]};
    lob_feature f[4];
    int nf = u8(in) % 5;
    for (int j = 0; j < nf; j++) {
        f[j] = (lob_feature){(int)(u8(in) % 12) - (j == 3), (int)(u8(in) % 7) - 1, outs[j]};
    }
    const int64_t *uid = u8(in) & 1 ? NULL : tsa[1];
    int threads = 1 + (u8(in) & 3);
    int rc = lob_features(&b, uid, f, nf, threads, err);
    check_rc(rc, err, st);
    CHECK(times_ok(tsa[0], n) || rc < 0, "bad book times refused");
    if (rc == LOB_E_INTR) {
        return;
    }
    lob_error_clear(err);
    /* trade flow over the same rows: trades with their own times */
    static int64_t tts[MAX_N];
    times(in, tts, m);
    static double qty[MAX_N];
    fill_f64(in, qty, m);
    for (size_t t = 0; t < m; t++) {
        sides[t] = (int8_t)u8(in);
    }
    double *sell = u8(in) & 1 ? NULL : outs[1];
    rc = lob_trade_flow(tsa[0], flags, (int64_t)n, tts, qty, sides, (int64_t)m, outs[0], sell,
                        outs[2], outs[3], threads, err);
    check_rc(rc, err, st);
    CHECK((times_ok(tsa[0], n) && times_ok(tts, m)) || rc < 0, "bad trade-flow times refused");
}

static void
fuzz_labels(input *in, lob_error *err, const stopper *st)
{
    size_t n = u8(in) % (MAX_N + 1);
    fill_f64(in, xs[0], n);
    times(in, tsa[0], n);
    for (size_t i = 0; i < n; i++) {
        flags[i] = u8(in) & 1;
    }
    lob_series s = {xs[0], tsa[0], u8(in) & 1 ? NULL : flags, n};
    uint8_t which = u8(in);
    lob_horizon h = {which & 16 ? i64(in) : 0, which & 32 ? i64(in) : 0};
    int rc;
    switch (which % 5) {
    case 0: rc = lob_label_return(&s, h, outs[0], iouts[0], err); break;
    case 1: rc = lob_label_smooth(&s, i64(in), which & 64, outs[0], iouts[0], err); break;
    case 2: rc = lob_label_ema(xs[0], n, f64(in), outs[0], err); break;
    case 3: rc = lob_label_classify(xs[0], n, f64(in), outs[0], err); break;
    default:
        fill_f64(in, xs[1], n);
        fill_f64(in, xs[2], n);
        rc = lob_label_barrier(&s, xs[1], xs[2], h, outs[0], iouts[0], outs[1], err);
        break;
    }
    check_rc(rc, err, st);
    if (which % 5 != 2 && which % 5 != 3) {
        CHECK(times_ok(tsa[0], n) || rc < 0, "bad label times refused");
    }
    if (rc == 0 && (which % 5 == 0 || which % 5 == 4)) {
        for (size_t i = 0; i < n; i++) { /* a time each label is known at, or -1 */
            CHECK(iouts[0][i] == -1 || (iouts[0][i] >= tsa[0][i] && iouts[0][i] <= tsa[0][n - 1]),
                  "known-at times within the data");
        }
    }
}

static void
fuzz_aggregate(input *in, lob_error *err, const stopper *st)
{
    size_t nb = u8(in) % (MAX_N / 4 + 1), stride = 1 + u8(in) % 3, nt = u8(in) % (MAX_N + 1);
    times(in, tsa[0], nb);
    fill_f64(in, xs[0], nb * stride);
    fill_f64(in, xs[1], nb * stride);
    for (size_t i = 0; i < nb; i++) {
        flags[i] = u8(in) & 1;
    }
    times(in, tsa[1], nt);
    fill_f64(in, xs[2], nt);
    fill_f64(in, xs[3], nt);
    for (size_t t = 0; t < nt; t++) {
        sides[t] = (int8_t)((int)(u8(in) % 5) - 2); /* -2 and 2 are refused */
    }
    lob_agg_input a = {nb,   tsa[0], xs[0],  xs[1], stride, u8(in) & 1 ? NULL : flags,
                       NULL, nt,     tsa[1], xs[2], xs[3],  sides};
    lob_agg_opts o = {(int)(u8(in) % 4), i64(in), f64(in), u8(in) & 1};
    size_t n = 0;
    int threads = 1 + (u8(in) & 3);
    int rc = lob_agg_count(&a, &o, &n, threads, err);
    check_rc(rc, err, st);
    /* time bars: the fill checks the rows as it reads them (unchecked until then, read safely) */
    const int good = times_ok(tsa[0], nb) && times_ok(tsa[1], nt) && trades_valid(&a);
    CHECK(good || rc < 0 || o.by == LOB_AGG_TIME, "bad bar inputs refused by the count");
    if (rc < 0 || n > (size_t)1 << 16) {
        return;
    }
    size_t room = n + (u8(in) % 3 == 0); /* sometimes the wrong count */
    int64_t *bts = calloc(room + 1, sizeof *bts), *trades = calloc(room + 1, sizeof *trades),
            *updates = calloc(room + 1, sizeof *updates);
    double *d = calloc((room + 1) * 8, sizeof *d);
    CHECK(bts && trades && updates && d, "memory");
    lob_agg_output out = {bts,          d,
                          d + room,     d + 2 * room,
                          d + 3 * room, d + 4 * room,
                          d + 5 * room, d + 6 * room,
                          d + 7 * room, trades,
                          updates};
    rc = lob_agg_fill(&a, &o, room, &out, threads, err);
    check_rc(rc, err, st);
    CHECK(good || rc < 0, "bad bar inputs refused");
    CHECK(rc < 0 || room == n, "a wrong bucket count refused");
    if (rc == 0) {
        int64_t rows = 0, trs = 0;
        for (size_t k = 0; k < n; k++) {
            CHECK(bts[k] >= LOB_TS_MIN && bts[k] <= LOB_TS_MAX, "bucket times in range");
            CHECK(k == 0 || bts[k] > bts[k - 1] || o.by != LOB_AGG_TIME, "bucket times ascend");
            rows += updates[k];
            trs += trades[k];
        }
        CHECK(o.by != LOB_AGG_TIME || (rows == (int64_t)nb && trs == (int64_t)nt),
              "time buckets hold every row and trade");
    }
    free(bts);
    free(trades);
    free(updates);
    free(d);
}

static void
fuzz_window(input *in, lob_error *err, const stopper *st)
{
    static float xf[MAX_N * 4];
    static int32_t group[MAX_N];
    size_t n = u8(in) % (MAX_N / 4 + 1), f = 1 + u8(in) % 4, g = u8(in) % 4, nb = u8(in) % 17;
    uint8_t how = u8(in);
    fill_f64(in, xs[0], n * f);
    for (size_t i = 0; i < n * f; i++) {
        xf[i] = (float)xs[0][i];
    }
    fill_f64(in, xs[1], (g + 1) * f);
    fill_f64(in, xs[2], (g + 1) * f);
    for (size_t i = 0; i < n; i++) {
        group[i] = (int32_t)(int8_t)u8(in) % 5;
    }
    for (size_t b = 0; b < nb; b++) {
        tsa[0][b] = u8(in) & 1 ? i64(in) : (int64_t)(u8(in) % (n + 2)) - 1; /* ends */
    }
    size_t t = how & 64 ? (size_t)i64(in) : u8(in) % (n + 2);
    lob_window_src s = {how & 1 ? (const void *)xf : xs[0],
                        how & 1,
                        n,
                        f,
                        how & 2 ? xs[1] : NULL,
                        how & 2 ? xs[2] : NULL,
                        how & 4 ? group : NULL,
                        g};
    size_t rows = t <= n ? t : n; /* t > n is refused before anything is written */
    void *out = malloc(nb * rows * f * sizeof(double) + 1);
    CHECK(out != NULL, "memory");
    int rc = lob_window_gather(&s, tsa[0], nb, t, out, how & 8, 1 + (how >> 4 & 3), err);
    check_rc(rc, err, st);
    free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input in = {data, data + size};
    uint8_t family = u8(&in);
    stopper st = {u8(&in) % 4, 0}; /* stop at the 1st, 2nd, 3rd check, or never */
    lob_poll poll = {stop_now, &st};
    lob_error err = {0};
    err.poll = &poll;
    switch (family % 5) {
    case 0: fuzz_rolling(&in, &err, &st); break;
    case 1: fuzz_features(&in, &err, &st); break;
    case 2: fuzz_labels(&in, &err, &st); break;
    case 3: fuzz_aggregate(&in, &err, &st); break;
    default: fuzz_window(&in, &err, &st); break;
    }
    return 0;
}
