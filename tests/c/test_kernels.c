/* test_kernels.c -- hand-computed cases for the kernels: rolling.c, features.c, labels.c,
 * aggregate.c.  Python's tests compare them with NumPy on real and random data; these pin
 * the edge rules (restarts at NaN, full windows, first rows, carries) without Python. */
#include "core/kernels/aggregate.h"
#include "core/kernels/features.h"
#include "core/kernels/hawkes.h"
#include "core/kernels/labels.h"
#include "core/kernels/rolling.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int
near(double a, double b)
{
    return (isnan(a) && isnan(b)) || fabs(a - b) <= 1e-12 * (fabs(b) > 1 ? fabs(b) : 1);
}

static int
all_near(const double *got, const double *want, int n)
{
    for (int i = 0; i < n; i++) {
        if (!near(got[i], want[i])) {
            printf("  row %d: got %.17g, want %.17g\n", i, got[i], want[i]);
            return 0;
        }
    }
    return 1;
}

static void
test_rolling(void)
{
    lob_error err = {0};
    const double x[8] = {1, 2, 3, NAN, 4, 4, 4, 10};
    const int64_t ts[8] = {0, 10, 20, 30, 40, 50, 60, 70};
    double out[8];
    lob_window rows2 = {2, 0, NULL};
    test_cond("rolling sum over 2 rows returns 0", lob_rolling_sum(x, 8, &rows2, out, &err) == 0);
    const double s2[8] = {NAN, 3, 5, NAN, NAN, 8, 8, 14};
    test_cond("rolling sum over 2 rows restarts after NaN", all_near(out, s2, 8));
    lob_window cum = {0, 0, NULL};
    lob_rolling_sum(x, 8, &cum, out, &err);
    const double sc[8] = {1, 3, 6, NAN, 4, 8, 12, 22};
    test_cond("cumulative sum restarts after NaN", all_near(out, sc, 8));
    lob_window span = {0, 20, ts};
    lob_rolling_sum(x, 8, &span, out, &err);
    /* (t - 20, t]: full once t - first >= 20; row 6 (t=60) holds rows 5, 6 */
    const double ss[8] = {NAN, NAN, 5, NAN, NAN, NAN, 8, 14};
    test_cond("time-window sum: full windows only, restarts after NaN", all_near(out, ss, 8));
    lob_window rows3 = {3, 0, NULL};
    lob_rolling_std(x, 8, &rows3, 1, out, &err);
    const double sd[8] = {NAN, NAN, 1, NAN, NAN, NAN, 0, sqrt(12)};
    test_cond("rolling std (ddof 1): a repeated value is exactly 0",
              all_near(out, sd, 8) && out[6] == 0.0);
    lob_window both = {2, 5, ts};
    test_cond("rows and span together are refused",
              lob_rolling_sum(x, 8, &both, out, &err) == LOB_E_ARG);
    const int64_t back[3] = {0, 5, 4};
    lob_window bad = {0, 5, back};
    test_cond("unsorted ts are refused naming the row",
              lob_rolling_std(x, 3, &bad, 0, out, &err) == LOB_E_ARG &&
                  strstr(err.msg, "row 1 (5) comes before row 2 (4)") != NULL);
}

static void
test_features(void)
{
    lob_error err = {0};
    /* 3 rows x 2 levels: row 1 improves the bid, row 2 is invalid */
    const int64_t ts[3] = {1, 2, 3}, uid[3] = {7, 8, 8};
    const uint8_t valid[3] = {1, 1, 0};
    const double bp[6] = {99, 98, 99.5, 99, 99, 98}, bs[6] = {1, 2, 3, 1, 1, 1};
    const double ap[6] = {101, 102, 101, 102, 101, 102}, as[6] = {2, 1, 2, 4, 1, 1};
    lob_book_view b = {3, 2, ts, valid, bp, bs, ap, as};
    double mid[3], micro[3], imb[3], ofi[3], ofi2[3], ret[3], ch[3];
    lob_feature f[7] = {
        {LOB_FT_MID, 0, mid},    {LOB_FT_MICROPRICE, 0, micro}, {LOB_FT_IMBALANCE, 2, imb},
        {LOB_FT_OFI, 1, ofi},    {LOB_FT_OFI, 2, ofi2},         {LOB_FT_RET, 0, ret},
        {LOB_FT_CHANGED, 0, ch},
    };
    test_cond("features return 0", lob_features(&b, uid, f, 7, 1, &err) == 0);
    test_cond("mid", all_near(mid, (double[]){100, 100.25, NAN}, 3));
    test_cond(
        "microprice",
        all_near(micro, (double[]){(99 * 2 + 101 * 1) / 3.0, (99.5 * 2 + 101 * 3) / 5.0, NAN}, 3));
    test_cond("imbalance over 2 levels", all_near(imb, (double[]){0, -2 / 10.0, NAN}, 3));
    /* best bid up: +3; ask unchanged at 101: -2 (new size) + 2 (old size) */
    test_cond("OFI at the best level", all_near(ofi, (double[]){NAN, 3, NAN}, 3));
    /* level 2: bid 98 -> 99 (+1), ask 102 -> 102 (-4 + 1) */
    test_cond("OFI at level 2", all_near(ofi2, (double[]){NAN, 1 - 4 + 1, NAN}, 3));
    test_cond("log return", all_near(ret, (double[]){NAN, log(100.25 / 100), NAN}, 3));
    test_cond("update counting", all_near(ch, (double[]){1, 1, NAN}, 3));
    double bad_bp[6] = {99, NAN, 99.5, 99, 99, 98};
    lob_book_view nb = {3, 2, ts, valid, bad_bp, bs, ap, as};
    test_cond("a NaN price with a size is refused",
              lob_features(&nb, uid, f, 1, 1, &err) == LOB_E_ARG &&
                  strstr(err.msg, "row 0 level 2") != NULL);
    lob_feature deep = {LOB_FT_IMBALANCE, 3, imb};
    test_cond("a level beyond the book is refused",
              lob_features(&b, uid, &deep, 1, 1, &err) == LOB_E_ARG);
    /* trades: row i takes (ts[i-1], ts[i]] */
    const int64_t tts[4] = {1, 2, 2, 3};
    const double q[4] = {5, 1, 2, 4};
    const int8_t side[4] = {1, 1, -1, 1};
    double buy[3], sell[3], sv[3], cnt[3];
    test_cond("trade flow returns 0",
              lob_trade_flow(ts, valid, 3, tts, q, side, 4, buy, sell, sv, cnt, 1, &err) == 0);
    test_cond(
        "trade flow per row: row 0 and invalid rows NaN",
        all_near(buy, (double[]){NAN, 1, NAN}, 3) && all_near(sell, (double[]){NAN, 2, NAN}, 3) &&
            all_near(sv, (double[]){NAN, -1, NAN}, 3) && all_near(cnt, (double[]){NAN, 2, NAN}, 3));
}

static void
test_labels(void)
{
    lob_error err = {0};
    const double mid[5] = {100, 101, 102, 101, 100};
    const int64_t ts[5] = {0, 10, 20, 30, 40};
    const uint8_t valid[5] = {1, 1, 1, 0, 1};
    lob_series s = {mid, ts, valid, 5};
    double ret[5];
    int64_t known[5];
    test_cond("forward return returns 0",
              lob_label_return(&s, (lob_horizon){1, 0}, ret, known, &err) == 0);
    test_cond("forward return: NaN across the invalid row and past the end",
              all_near(ret, (double[]){log(1.01), log(102 / 101.0), NAN, NAN, NAN}, 5) &&
                  known[0] == 10 && known[2] == -1 && known[4] == -1);
    lob_series flat = {mid, ts, NULL, 5};
    test_cond(
        "time horizon: the mid in effect at t + h",
        lob_label_return(&flat, (lob_horizon){0, 15}, ret, known, &err) == 0 &&
            all_near(ret, (double[]){log(1.01), log(102 / 101.0), log(101 / 102.0), NAN, NAN}, 5) &&
            known[0] == 15);
    test_cond("a horizon of 0 is refused",
              lob_label_return(&s, (lob_horizon){0, 0}, ret, known, &err) == LOB_E_ARG);
}

static void
test_aggregate(void)
{
    lob_error err = {0};
    /* book at 0, 50, 250 (invalid), 260; trades at 10 and 120 */
    const int64_t bts[4] = {0, 50, 250, 260};
    const double bid[4] = {99, 100, 0, 101}, ask[4] = {101, 102, 0, 103};
    const uint8_t valid[4] = {1, 1, 0, 1};
    const int64_t tts[2] = {10, 120};
    const double tpx[2] = {100, 110}, tq[2] = {1, 3};
    const int8_t tside[2] = {1, -1};
    lob_agg_input in = {4, bts, bid, ask, 1, valid, "book", 2, tts, tpx, tq, tside};
    lob_agg_opts o = {LOB_AGG_TIME, 100, 0, 0};
    size_t n = 0;
    test_cond("time bars: count", lob_agg_count(&in, &o, &n, 1, &err) == 0 && n == 3);
    int64_t ts[3], trades[3], updates[3];
    double op[3], hi[3], lo[3], cl[3], vwap[3], vol[3], buy[3], sell[3];
    lob_agg_output out = {ts, op, hi, lo, cl, vwap, vol, buy, sell, trades, updates};
    test_cond("time bars: fill", lob_agg_fill(&in, &o, n, &out, 1, &err) == 0);
    test_cond("bucket starts", ts[0] == 0 && ts[1] == 100 && ts[2] == 200);
    test_cond("OHLC of the mid; an empty bucket carries the close",
              all_near(op, (double[]){100, 101, 102}, 3) &&
                  all_near(hi, (double[]){101, 101, 102}, 3) &&
                  all_near(lo, (double[]){100, 101, 102}, 3) &&
                  all_near(cl, (double[]){101, 101, 102}, 3));
    test_cond("VWAP and volumes", all_near(vwap, (double[]){100, 110, NAN}, 3) &&
                                      all_near(vol, (double[]){1, 3, 0}, 3) &&
                                      all_near(buy, (double[]){1, 0, 0}, 3) &&
                                      all_near(sell, (double[]){0, 3, 0}, 3));
    test_cond("counts", trades[0] == 1 && trades[1] == 1 && trades[2] == 0 && updates[0] == 2 &&
                            updates[1] == 0 && updates[2] == 2);
    /* one bucket whose start plus `every` is past INT64_MAX: nothing is computed past it */
    const int64_t late = (int64_t)1 << 62;
    lob_agg_input one = {0, NULL, NULL, NULL, 1, NULL, "book", 1, &late, tpx, tq, tside};
    lob_agg_opts wide = {LOB_AGG_TIME, late, 0, 0};
    test_cond("time bars: a bucket at the end of time",
              lob_agg_count(&one, &wide, &n, 1, &err) == 0 && n == 1 &&
                  lob_agg_fill(&one, &wide, n, &out, 1, &err) == 0 && ts[0] == late &&
                  trades[0] == 1);
    const int64_t back[4] = {0, 50, 40, 60};
    lob_agg_input bad = in;
    bad.book_ts = back;
    /* time bars: the fill checks the rows as it reads them; the other kinds, the count */
    test_cond("unsorted book times are refused by the time bars' fill",
              lob_agg_count(&bad, &o, &n, 1, &err) == 0 && n == 2 &&
                  lob_agg_fill(&bad, &o, n, &out, 1, &err) == LOB_E_ARG &&
                  strstr(err.msg, "book ts must be sorted ascending: row 1 ") != NULL);
    const double nan_px[2] = {100, NAN};
    lob_agg_input nan_trade = in;
    nan_trade.trade_px = nan_px;
    lob_agg_output close_only = {.ts = ts, .mid_close = cl};
    test_cond("a bad trade is refused by time bars that read no trade",
              lob_agg_count(&nan_trade, &o, &n, 1, &err) == 0 &&
                  lob_agg_fill(&nan_trade, &o, n, &close_only, 1, &err) == LOB_E_ARG &&
                  strstr(err.msg, "trades price at row 1 is nan") != NULL);
    lob_agg_opts events = {LOB_AGG_EVENTS, 2, 0, 0};
    test_cond("unsorted book times are refused by the count of event bars",
              lob_agg_count(&bad, &events, &n, 1, &err) == LOB_E_ARG &&
                  strstr(err.msg, "book ts") != NULL);
}

/* Time bars the plain way, for test_aggregate_dense(): each bucket's rows and trades by a scan,
 * sums in order from +0.0, the open, high, low and close over the rows with a mid, else the
 * carry (the last row's mid so far, NaN after a gap).  Every column of `r`. */
static void
agg_reference(const lob_agg_input *in, const lob_agg_opts *o, size_t n, const lob_agg_output *r)
{
    const int64_t every = o->every;
    const int64_t t0 = in->book_ts[0] < in->trade_ts[0] ? in->book_ts[0] : in->trade_ts[0];
    const int64_t first = t0 / every;
    size_t row = 0, x = 0;
    double carry = NAN;
    for (size_t k = 0; k < n; k++) {
        const int64_t start = (first + (int64_t)k) * every;
        const int64_t end = k + 1 < n ? start + every : INT64_MAX;
        double op = NAN, hi = NAN, lo = NAN, cl = NAN;
        const size_t row0 = row, x0 = x;
        for (; row < in->n_book && in->book_ts[row] < end; row++) {
            double m = (in->bid[row * in->px_stride] + in->ask[row * in->px_stride]) / 2;
            m = in->valid != NULL && !in->valid[row] ? NAN : m;
            carry = m;
            if (m == m) {
                op = op == op ? op : m;
                hi = hi == hi && hi >= m ? hi : m;
                lo = lo == lo && lo <= m ? lo : m;
                cl = m;
            }
        }
        if (op != op) {
            op = hi = lo = cl = carry;
        }
        double vol = 0, pq = 0, buy = 0, sell = 0;
        for (; x < in->n_trades && in->trade_ts[x] < end; x++) {
            const double q = in->trade_qty[x];
            vol += q;
            pq += in->trade_px[x] * q;
            buy += q * (in->trade_side[x] > 0 ? 1.0 : 0.0);
            sell += q * (in->trade_side[x] < 0 ? 1.0 : 0.0);
        }
        r->ts[k] = start;
        r->mid_open[k] = op;
        r->mid_high[k] = hi;
        r->mid_low[k] = lo;
        r->mid_close[k] = cl;
        r->vwap[k] = vol > 0 ? pq / vol : o->empty_vwap_mid ? cl : NAN;
        r->volume[k] = vol;
        r->buy_volume[k] = buy;
        r->sell_volume[k] = sell;
        r->trades[k] = (int64_t)(x - x0);
        r->updates[k] = (int64_t)(row - row0);
    }
}

/* Dense time bars (a few rows and trades a bucket, found a block of buckets at a time; a
 * stretch of bursts goes through the loop over buckets instead): all the columns and subsets
 * of them equal agg_reference() bit for bit.  Every 49 ns: k * 49 times the double nearest
 * 1 / 49 falls below k for most k, which the bucket's correction must catch.  Built by gcc
 * this runs the AVX-512 passes where the CPU has them; by clang, the plain ones. */
static uint64_t
lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005u + 1442695040888963407u;
    return *s >> 33;
}

static int
same_column(const void *a, const void *b, size_t n)
{
    return a == NULL || memcmp(a, b, n * 8) == 0;
}

static void
test_aggregate_dense(int64_t every)
{
    enum { BUCKETS = 3000, CAP = 120000, STRIDE = 2 };
    int64_t *bts = malloc(CAP * sizeof *bts), *tts = malloc(CAP * sizeof *tts);
    double *bid = malloc(CAP * STRIDE * sizeof *bid), *ask = malloc(CAP * STRIDE * sizeof *ask);
    double *tpx = malloc(CAP * sizeof *tpx), *tq = malloc(CAP * sizeof *tq);
    int8_t *side = malloc(CAP);
    uint8_t *valid = malloc(CAP);
    uint64_t s = 7;
    size_t nb = 0, nt = 0;
    for (int64_t k = 0; k < BUCKETS; k++) {
        int rows = (int)(lcg(&s) % 14), trades = (int)(lcg(&s) % 5);
        rows = k >= 700 && k < 1000 ? 100 : k >= 1500 && k < 1800 ? 0 : rows; /* bursts, none */
        trades = k >= 2000 && k < 2300 ? 80 : trades;
        /* sorted offsets in the bucket: steps, the first one at the bucket's start at times */
        int64_t at = lcg(&s) % 4 == 0 ? 0 : (int64_t)(lcg(&s) % 50);
        for (int r = 0; r < rows; r++, at += (int64_t)(lcg(&s) % 9)) {
            bts[nb] = 1000000 * every + k * every + (at < every ? at : every - 1);
            double b = 100 + (double)(lcg(&s) % 1000) / 64;
            bid[nb * STRIDE] = lcg(&s) % 30 == 0 ? NAN : b;
            ask[nb * STRIDE] = b + 0.5;
            bid[nb * STRIDE + 1] = ask[nb * STRIDE + 1] = -1; /* a second level, never read */
            valid[nb] = lcg(&s) % 20 != 0;
            nb++;
        }
        at = lcg(&s) % 4 == 0 ? 0 : (int64_t)(lcg(&s) % 50);
        for (int r = 0; r < trades; r++, at += (int64_t)(lcg(&s) % 11)) {
            tts[nt] = 1000000 * every + k * every + (at < every ? at : every - 1);
            tpx[nt] = 100 + (double)(lcg(&s) % 1000) / 128;
            tq[nt] = (double)(lcg(&s) % 5) / 4;
            side[nt] = (int8_t)(lcg(&s) % 3) - 1;
            nt++;
        }
    }
    enum { N = BUCKETS + 1 };
    static int64_t its[2][3][N];
    static double f[2][8][N];
    const lob_agg_output want = {its[0][0], f[0][0], f[0][1], f[0][2],   f[0][3],  f[0][4],
                                 f[0][5],   f[0][6], f[0][7], its[0][1], its[0][2]};
    const lob_agg_output sets[5] = {
        {its[1][0], f[1][0], f[1][1], f[1][2], f[1][3], f[1][4], f[1][5], f[1][6], f[1][7],
         its[1][1], its[1][2]},
        {its[1][0], NULL, NULL, NULL, f[1][3], f[1][4], f[1][5]},
        {its[1][0], NULL, NULL, NULL, f[1][3]},
        {its[1][0], NULL, NULL, NULL, NULL, f[1][4]},
        {its[1][0], NULL, NULL, NULL, NULL, NULL, NULL, f[1][6], f[1][7], its[1][1], its[1][2]},
    };
    int ok = 1;
    for (size_t stride = 1; stride <= STRIDE; stride++) {
        for (int mid = 0; mid <= 1; mid++) {
            lob_agg_input in = {nb,     bts, bid, ask, stride, stride == 2 ? valid : NULL,
                                "book", nt,  tts, tpx, tq,     side};
            lob_agg_opts o = {LOB_AGG_TIME, every, 0, mid};
            lob_error err = {0};
            size_t n = 0;
            ok = ok && lob_agg_count(&in, &o, &n, 1, &err) == 0 && n <= N;
            if (ok) {
                agg_reference(&in, &o, n, &want);
            }
            for (int threads = 1; ok && threads <= 2; threads++) {
                for (int k = 0; ok && k < 5; k++) {
                    const lob_agg_output *g = &sets[k];
                    ok = lob_agg_fill(&in, &o, n, g, threads, &err) == 0 &&
                         same_column(g->ts, want.ts, n) &&
                         same_column(g->mid_open, want.mid_open, n) &&
                         same_column(g->mid_high, want.mid_high, n) &&
                         same_column(g->mid_low, want.mid_low, n) &&
                         same_column(g->mid_close, want.mid_close, n) &&
                         same_column(g->vwap, want.vwap, n) &&
                         same_column(g->volume, want.volume, n) &&
                         same_column(g->buy_volume, want.buy_volume, n) &&
                         same_column(g->sell_volume, want.sell_volume, n) &&
                         same_column(g->trades, want.trades, n) &&
                         same_column(g->updates, want.updates, n);
                    if (!ok) {
                        printf("  every %lld, stride %zu, %d threads, empty vwap mid %d, set %d\n",
                               (long long)every, stride, threads, mid, k);
                    }
                }
            }
        }
    }
    test_cond("dense time bars: the columns, all or some, equal a plain loop's bit for bit", ok);
    free(bts), free(tts), free(bid), free(ask), free(tpx), free(tq), free(side), free(valid);
}

/* A stop check that says stop at its `at`-th call; counts its calls. */
typedef struct {
    int calls, at;
} stop_at;

static int
stop_fn(void *ctx)
{
    stop_at *s = ctx;
    return ++s->calls == s->at;
}

/* A book of many blocks (10 levels, empty levels, an invalid stretch, a bad row in an invalid
 * one): all OFI levels at once (one contiguous pass per block) give what each level alone
 * gives (a strided pass), bit for bit; the top-k sums match a direct sum. */
static void
test_features_blocks(void)
{
    enum { N = 1000, L = 10 };
    double *bp = malloc(sizeof(double) * N * L), *bs = malloc(sizeof(double) * N * L);
    double *ap = malloc(sizeof(double) * N * L), *as = malloc(sizeof(double) * N * L);
    double *all = malloc(sizeof(double) * N * L), *one = malloc(sizeof(double) * N);
    double *depth = malloc(sizeof(double) * N);
    int64_t *ts = malloc(sizeof(int64_t) * N), *uid = malloc(sizeof(int64_t) * N);
    uint8_t *valid = malloc(N);
    if (!bp || !bs || !ap || !as || !all || !one || !depth || !ts || !uid || !valid) {
        test_cond("memory", 0);
        return;
    }
    uint64_t r = 12345;
    for (int i = 0; i < N; i++) {
        ts[i] = i;
        uid[i] = i / 2;
        valid[i] = !(i >= 300 && i < 310);
        const double mid = 100.0 + (double)(i % 13) * 0.5;
        for (int l = 0; l < L; l++) {
            r = r * 6364136223846793005u + 1442695040888963407u;
            const int empty = (r >> 40) % 17 == 0 && l > 2;
            bp[i * L + l] = empty ? NAN : mid - 0.5 - l;
            ap[i * L + l] = empty ? NAN : mid + 0.5 + l;
            bs[i * L + l] = empty ? 0.0 : (double)((r >> 20) % 100) / 8.0;
            as[i * L + l] = empty ? 0.0 : (double)((r >> 30) % 100) / 8.0;
        }
    }
    bs[305 * L + 4] = -1.0; /* broken, but on an invalid row: not looked at */
    lob_book_view b = {N, L, ts, valid, bp, bs, ap, as};
    lob_feature f[L + 1];
    for (int l = 0; l < L; l++) {
        f[l] = (lob_feature){LOB_FT_OFI, l + 1, all + (size_t)l * N};
    }
    f[L] = (lob_feature){LOB_FT_BID_DEPTH, 7, depth};
    lob_error err = {0};
    int ok = lob_features(&b, uid, f, L + 1, 1, &err) == 0;
    for (int l = 0; ok && l < L; l++) {
        lob_feature single = {LOB_FT_OFI, l + 1, one};
        ok = lob_features(&b, uid, &single, 1, 1, &err) == 0 &&
             memcmp(one, all + (size_t)l * N, sizeof(double) * N) == 0;
    }
    test_cond("features: all OFI levels at once equal each level alone, bit for bit", ok);
    ok = 1;
    for (int i = 0; i < N && ok; i++) {
        double s = 0.0;
        for (int l = 0; l < 7; l++) {
            s += bs[i * L + l];
        }
        ok = valid[i] ? depth[i] == s : isnan(depth[i]);
    }
    test_cond("features: top-7 bid depth over many blocks", ok);
    bs[400 * L + 9] = -1.0; /* now on a valid row */
    test_cond("features: a broken level in a block of valid rows is named",
              lob_features(&b, uid, f, L + 1, 1, &err) == LOB_E_ARG &&
                  strstr(err.msg, "row 400 level 10") != NULL);
    free(bp), free(bs), free(ap), free(as), free(all), free(one), free(depth), free(ts), free(uid);
    free(valid);
}

static void
test_stop_and_times(void)
{
    /* three blocks of rows: the second stop check is inside the loops, not at their start */
    const int64_t n = 3 * LOB_POLL_ROWS;
    double *x = malloc(sizeof(double) * (size_t)n), *out = malloc(sizeof(double) * (size_t)n);
    double *out2 = malloc(sizeof(double) * (size_t)n);
    int64_t *ts = malloc(sizeof(int64_t) * (size_t)n), *known = malloc(sizeof(int64_t) * (size_t)n);
    if (!x || !out || !out2 || !ts || !known) {
        test_cond("memory", 0);
        return;
    }
    const lob_window windows[3] = {{50, 0, NULL}, {0, 40, ts}, {0, 0, NULL}};
    /* one long segment (checks in the segment's loops), then short ones (between them) */
    for (int gappy = 0; gappy < 2; gappy++) {
        for (int64_t i = 0; i < n; i++) {
            x[i] = 100.0 + (double)(i % 7) + (gappy && i % 1000 == 999 ? NAN : 0.0);
            ts[i] = LOB_TS_MAX - n + i; /* the last accepted times */
        }
        for (int w = 0; w < 3; w++) {
            for (int std = 0; std < 2; std++) {
                stop_at st = {0, 2};
                lob_poll poll = {stop_fn, &st};
                lob_error err = {0};
                err.poll = &poll;
                int rc = std ? lob_rolling_std(x, n, &windows[w], 1, out, &err)
                             : lob_rolling_sum(x, n, &windows[w], out, &err);
                test_cond("rolling: the stop check is made every block and stops the loop",
                          rc == LOB_E_INTR && st.calls == 2 && strcmp(err.msg, "interrupted") == 0);
                stop_at never = {0, 0};
                lob_poll keep = {stop_fn, &never};
                lob_error err2 = {0};
                err2.poll = &keep;
                rc = std ? lob_rolling_std(x, n, &windows[w], 1, out, &err2)
                         : lob_rolling_sum(x, n, &windows[w], out, &err2);
                lob_error plain = {0};
                int rc2 = std ? lob_rolling_std(x, n, &windows[w], 1, out2, &plain)
                              : lob_rolling_sum(x, n, &windows[w], out2, &plain);
                test_cond("rolling: checks that never stop change nothing",
                          rc == 0 && rc2 == 0 && never.calls >= 2 &&
                              memcmp(out, out2, sizeof(double) * (size_t)n) == 0);
            }
        }
    }
    lob_series s = {x, ts, NULL, (size_t)n};
    const double inf = INFINITY;
    double *upper = malloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; upper != NULL && i < n; i++) {
        upper[i] = inf;
    }
    for (int k = 0; k < 5 && upper != NULL; k++) {
        stop_at st = {0, 2};
        lob_poll poll = {stop_fn, &st};
        lob_error err = {0};
        err.poll = &poll;
        int rc = k == 0   ? lob_label_return(&s, (lob_horizon){0, 1000}, out, known, &err)
                 : k == 1 ? lob_label_smooth(&s, 10, 1, out, known, &err)
                 : k == 2 ? lob_label_ema(x, (size_t)n, 0.5, out, &err)
                 : k == 3 ? lob_label_classify(x, (size_t)n, 0.5, out, &err)
                          : lob_label_barrier(&s, upper, upper, (lob_horizon){100, 0}, out, known,
                                              out2, &err);
        test_cond("labels: the stop check stops the loop", rc == LOB_E_INTR && st.calls == 2);
    }
    free(upper);
    /* a rows horizon over a clean series takes the one-pass vectorised path: it stops too,
     * and gives log(x[i + 3] / x[i]) within an ulp, ts[i + 3], NaN / -1 at the end */
    for (int64_t i = 0; i < n; i++) {
        x[i] = 100.0 + (double)(i % 7);
    }
    lob_series clean = {x, ts, NULL, (size_t)n};
    {
        stop_at st = {0, 2};
        lob_poll poll = {stop_fn, &st};
        lob_error err = {0};
        err.poll = &poll;
        int rc = lob_label_return(&clean, (lob_horizon){3, 0}, out, known, &err);
        test_cond("labels: the one-pass rows horizon stops at the poll",
                  rc == LOB_E_INTR && st.calls == 2);
        lob_error plain = {0};
        rc = lob_label_return(&clean, (lob_horizon){3, 0}, out, known, &plain);
        int ok = rc == 0;
        for (int64_t i = 0; ok && i < n - 3; i++) {
            const double want = log(x[i + 3] / x[i]);
            ok = fabs(out[i] - want) <= nextafter(fabs(want), INFINITY) - fabs(want) &&
                 known[i] == ts[i + 3];
        }
        for (int64_t i = n - 3; ok && i < n; i++) {
            ok = isnan(out[i]) && known[i] == -1;
        }
        test_cond("labels: the one-pass rows horizon is log(x[i + k] / x[i]) within an ulp", ok);
    }
    lob_error err = {0};
    test_cond("labels: t + h past INT64_MAX is past the data, not an overflow",
              lob_label_return(&s, (lob_horizon){0, INT64_MAX}, out, known, &err) == 0 &&
                  isnan(out[0]) && known[0] == -1);
    const int64_t nat[3] = {0, INT64_MIN, 5};
    lob_series bad = {x, nat, NULL, 3};
    test_cond("labels: NaT is refused naming the row",
              lob_label_return(&bad, (lob_horizon){1, 0}, out, known, &err) == LOB_E_ARG &&
                  strstr(err.msg, "ts row 1 is NaT") != NULL);
    /* a Hawkes path of about 10^6 events: many more steps than LOB_POLL_ROWS */
    size_t cap = (size_t)4 << 20, got = 0;
    double *events = malloc(sizeof(double) * cap);
    stop_at st = {0, 2};
    lob_poll poll = {stop_fn, &st};
    lob_error herr = {0};
    herr.poll = &poll;
    test_cond("hawkes: the stop check stops a long simulation",
              events != NULL &&
                  lob_hawkes_simulate(1e6, 0.5, 10.0, 0.0, 1.0, 7, events, cap, &got, &herr) ==
                      LOB_E_INTR &&
                  st.calls == 2);
    free(events);
    free(x);
    free(out);
    free(out2);
    free(ts);
    free(known);
}

/* Bars over 3 * LOB_POLL_ROWS book rows and trades, one per ns: each way of bucketing and each
 * set of columns (every column; the close, VWAP and volume alone, which skip the rows inside
 * a bucket; the counts alone) stops at the second stop check, and checks that never stop
 * change nothing: the columns equal those of the full bars. */
static void
test_aggregate_stops(void)
{
    const size_t n = 3 * (size_t)LOB_POLL_ROWS;
    int64_t *ts = malloc(sizeof(int64_t) * n), *ints = malloc(sizeof(int64_t) * 3 * n);
    double *px = malloc(sizeof(double) * n), *q = malloc(sizeof(double) * n);
    double *full = malloc(sizeof(double) * 9 * n), *part = malloc(sizeof(double) * 9 * n);
    int8_t *side = malloc(n);
    if (!ts || !ints || !px || !q || !full || !part || !side) {
        test_cond("memory", 0);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        ts[i] = (int64_t)i;
        px[i] = 100.0 + (double)(i % 5);
        q[i] = 0.25 * (double)(i % 3);
        side[i] = (int8_t)(i % 3) - 1;
    }
    lob_agg_input in = {n, ts, px, px, 1, NULL, "book", n, ts, px, q, side};
    const lob_agg_opts opts[3] = {
        {LOB_AGG_TIME, 3, 0, 0}, {LOB_AGG_EVENTS, 2, 0, 0}, {LOB_AGG_VOLUME, 0, 1.0, 1}};
    for (int by = 0; by < 3; by++) {
        size_t nk = 0;
        lob_error err = {0};
        test_cond("bars: count", lob_agg_count(&in, &opts[by], &nk, 1, &err) == 0 && nk <= n);
        double *f = full, *g = part;
        lob_agg_output all = {ints,      f,         f + n,     f + 2 * n, f + 3 * n,   f + 4 * n,
                              f + 5 * n, f + 6 * n, f + 7 * n, ints + n,  ints + 2 * n};
        test_cond("bars: fill", lob_agg_fill(&in, &opts[by], nk, &all, 1, &err) == 0);
        lob_agg_output sets[3] = {
            {ints, g, g + n, g + 2 * n, g + 3 * n, g + 4 * n, g + 5 * n, g + 6 * n, g + 7 * n,
             ints + n, ints + 2 * n},
            {.ts = ints, .mid_close = g + 3 * n, .vwap = g + 4 * n, .volume = g + 5 * n},
            {.ts = ints, .trades = ints + n, .updates = ints + 2 * n},
        };
        for (int c = 0; c < 3; c++) {
            stop_at st = {0, 2};
            lob_poll poll = {stop_fn, &st};
            lob_error e1 = {0};
            e1.poll = &poll;
            test_cond("bars: the stop check stops every path",
                      lob_agg_fill(&in, &opts[by], nk, &sets[c], 1, &e1) == LOB_E_INTR &&
                          st.calls == 2);
            if (c == 1) {
                stop_at never = {0, 0};
                lob_poll keep = {stop_fn, &never};
                lob_error e2 = {0};
                e2.poll = &keep;
                test_cond("bars: the close alone equals the full bars' columns",
                          lob_agg_fill(&in, &opts[by], nk, &sets[c], 1, &e2) == 0 &&
                              memcmp(g + 3 * n, f + 3 * n, nk * sizeof(double)) == 0 &&
                              memcmp(g + 4 * n, f + 4 * n, nk * sizeof(double)) == 0 &&
                              memcmp(g + 5 * n, f + 5 * n, nk * sizeof(double)) == 0);
            }
        }
    }
    free(ts);
    free(ints);
    free(px);
    free(q);
    free(full);
    free(part);
    free(side);
}

void
lob_test_kernels(void)
{
    test_rolling();
    test_features();
    test_features_blocks();
    test_labels();
    test_aggregate();
    test_aggregate_dense(1000);
    test_aggregate_dense(49);
    test_stop_and_times();
    test_aggregate_stops();
}
