/* aggregate.c -- bars from book mids and trades (see aggregate.h for the rules). */
#include "core/kernels/aggregate.h"

#include "core/parallel.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#if LOB_HAVE_AVX512
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

/* First index i in [lo, n) with ts[i] >= x, or n.  Galloping: probe lo, lo+1, lo+3, lo+7,
 * ... then bisect the last step, so finding the end of a run of k rows costs O(log k), and
 * an empty bucket (ts[lo] >= x already) costs one comparison. */
static size_t
gallop(const int64_t *ts, size_t lo, size_t n, int64_t x)
{
    if (lo >= n || ts[lo] >= x) {
        return lo;
    }
    size_t below = lo, step = 1, above = lo + 1; /* ts[below] < x */
    while (above < n && ts[above] < x) {
        below = above;
        step <<= 1;
        above = below + step;
    }
    if (above > n) {
        above = n;
    }
    while (above - below > 1) { /* ts[below] < x <= ts[above] (or above == n) */
        size_t mid = below + (above - below) / 2;
        int lt = ts[mid] < x; /* selects, not branches: the outcome is a coin flip */
        below = lt ? mid : below;
        above = lt ? above : mid;
    }
    return above;
}

/* One past the last trade of the volume bucket starting at trade t: the trade that makes
 * the running sum reach v closes it (never split); else every trade left. */
static size_t
volume_end(const double *qty, size_t t, size_t n, double v)
{
    double acc = 0;
    while (t < n) {
        acc += qty[t++];
        if (acc >= v) {
            break;
        }
    }
    return t;
}

/* Whether every trade surely passes check_trades(), in one branch-free pass over blocks of a
 * fixed length (vector instructions).  On the bits of the doubles, with F those of the
 * largest finite double (< 2^63): |p| <= F (p finite) holds when F - |p| has the top bit
 * clear; q <= F as unsigned (q finite and >= 0, but not -0.0: then check_trades decides)
 * when neither q nor F - q has it.  Sides: t = side + 1 as a byte is in 0..2 when neither
 * t nor 2 - t has the top bit. */
#define TRADES_BLOCK 64

LOB_SCAN_CLONES static int
trades_ok(const lob_agg_input *in, size_t i, size_t n)
{
    const uint64_t fin = UINT64_C(0x7FEFFFFFFFFFFFFF), abs = UINT64_C(0x7FFFFFFFFFFFFFFF);
    uint64_t acc = 0;
    uint8_t sides = 0;
    for (; i + TRADES_BLOCK <= n; i += TRADES_BLOCK) {
        uint64_t block = 0;
        uint8_t sblock = 0;
        for (int j = 0; j < TRADES_BLOCK; j++) {
            uint64_t p, q;
            memcpy(&p, in->trade_px + i + j, sizeof p);
            memcpy(&q, in->trade_qty + i + j, sizeof q);
            block |= (fin - (p & abs)) | q | (fin - q);
        }
        for (int j = 0; j < TRADES_BLOCK; j++) {
            uint8_t t = (uint8_t)(in->trade_side[i + j] + 1);
            sblock |= t | (uint8_t)(2 - t);
        }
        acc |= block;
        sides |= sblock;
    }
    for (; i < n; i++) {
        uint64_t p, q;
        memcpy(&p, in->trade_px + i, sizeof p);
        memcpy(&q, in->trade_qty + i, sizeof q);
        acc |= (fin - (p & abs)) | q | (fin - q);
        uint8_t t = (uint8_t)(in->trade_side[i] + 1);
        sides |= t | (uint8_t)(2 - t);
    }
    return (acc >> 63) == 0 && (sides & 0x80) == 0;
}

/* The inputs' checks in ranges on several threads: each range of book times (with the row
 * before it, for the order), of trade times, and of trade values is a task that only says
 * whether all is well; when one is not, named_checks() names the first bad row.  `book` and
 * `trades` pick which inputs are checked. */
#define CHECK_RANGE ((size_t)1 << 18) /* rows: ~1 ms of checks a task at least */

typedef struct {
    const lob_agg_input *in;
    size_t book_tasks, per_book, per_trade;
} check_job;

/* Rows [lo, hi) of book times (with the row before lo) or of trades, in order and valid. */
static int
rows_ok(const int64_t *ts, size_t lo, size_t hi)
{
    const size_t from = lo > 0 ? lo - 1 : 0;
    return hi <= lo || lob_times_ok(ts + from, (int64_t)(hi - from), 1);
}

static int
trade_rows_ok(const lob_agg_input *in, size_t lo, size_t hi)
{
    return rows_ok(in->trade_ts, lo, hi) && trades_ok(in, lo, hi);
}

static int
range_ok(void *arg, size_t i, lob_error *err)
{
    const check_job *j = arg;
    const lob_agg_input *in = j->in;
    const int trades = i >= j->book_tasks; /* by the task, not the pointer: they may be equal */
    const size_t n = trades ? in->n_trades : in->n_book, per = trades ? j->per_trade : j->per_book;
    i -= trades ? j->book_tasks : 0;
    const size_t lo = i * per, hi = n - lo > per ? lo + per : n;
    const int ok = trades ? trade_rows_ok(in, lo, hi) : rows_ok(in->book_ts, lo, hi);
    return ok ? LOB_OK : lob_error_set(err, LOB_E_ARG, "a bad row in %zu..%zu", lo, hi);
}

static size_t
ranges_of(size_t n, size_t per)
{
    return n == 0 ? 0 : (n - 1) / per + 1;
}

static int
inputs_ok(const lob_agg_input *in, int threads, int book, int trades)
{
    const size_t parts = 2 * (size_t)(threads > 1 ? threads : 1);
    check_job j = {in, 0, (in->n_book + parts - 1) / parts, (in->n_trades + parts - 1) / parts};
    j.per_book = j.per_book < CHECK_RANGE ? CHECK_RANGE : j.per_book;
    j.per_trade = j.per_trade < CHECK_RANGE ? CHECK_RANGE : j.per_trade;
    j.book_tasks = book ? ranges_of(in->n_book, j.per_book) : 0;
    const size_t trade_tasks = trades ? ranges_of(in->n_trades, j.per_trade) : 0;
    lob_error quiet = {0}; /* no stop check: the whole pass takes a few ms */
    return lob_run_tasks(j.book_tasks + trade_tasks, threads, range_ok, &j, &quiet) == LOB_OK;
}

static int
check_trades(const lob_agg_input *in, lob_error *err)
{
    for (size_t i = 0; i < in->n_trades; i++) {
        double p = in->trade_px[i], q = in->trade_qty[i];
        int s = in->trade_side[i];
        if (!isfinite(p)) {
            return lob_error_set(err, LOB_E_ARG, "trades price at row %zu is %g", i, p);
        }
        if (!isfinite(q) || q < 0) {
            return lob_error_set(
                err, LOB_E_ARG, "trades qty at row %zu is %g; sizes must be finite and >= 0", i, q);
        }
        if (s < -1 || s > 1) {
            return lob_error_set(err, LOB_E_ARG,
                                 "trades side at row %zu is %d; expected +1 (taker buy), -1 "
                                 "(taker sell) or 0 (unknown)",
                                 i, s);
        }
    }
    return 0;
}

/* The first bad row of the inputs, named in err (LOB_E_ARG); 0 when there is none. */
static int
named_checks(const lob_agg_input *in, lob_error *err)
{
    char what[64];
    snprintf(what, sizeof what, "%s ts", in->book_name != NULL ? in->book_name : "book");
    LOB_FORWARD_IF_ERROR(lob_check_times(in->book_ts, (int64_t)in->n_book, 1, what, err));
    LOB_FORWARD_IF_ERROR(lob_check_times(in->trade_ts, (int64_t)in->n_trades, 1, "trades ts", err));
    return check_trades(in, err);
}

/* TIME: index of the first bucket and the bucket count, or an error.  Times lie in
 * [0, LOB_TS_MAX] (lob_check_times) and every > 0, so `/` is the floor, and the bucket starts
 * f * every <= lo .. l * every <= hi, and every end (k + 1) * every of a bucket k < l, lie in
 * [0, hi]: no product or sum on bucket times can overflow, whatever `every` is. */
static int
time_span(const lob_agg_input *in, int64_t every, int64_t *first, size_t *count, lob_error *err)
{
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    if (in->n_book > 0) {
        lo = in->book_ts[0];
        hi = in->book_ts[in->n_book - 1];
    }
    if (in->n_trades > 0) {
        lo = in->trade_ts[0] < lo ? in->trade_ts[0] : lo;
        hi = in->trade_ts[in->n_trades - 1] > hi ? in->trade_ts[in->n_trades - 1] : hi;
    }
    *first = 0;
    *count = 0;
    if (in->n_book == 0 && in->n_trades == 0) {
        return 0;
    }
    if (lo < LOB_TS_MIN || hi > LOB_TS_MAX || every <= 0) { /* lob_agg_count() checked them */
        return lob_error_set(err, LOB_E_ARG, "times or every out of range");
    }
    int64_t f = lo / every, l = hi / every;
    uint64_t span = (uint64_t)(l - f); /* 0 <= f <= l */
    if (span >= LOB_AGG_MAX_BUCKETS) {
        return lob_error_set(err, LOB_E_ARG,
                             "every=%lld ns gives %llu buckets from %lld to %lld; at most %zu "
                             "are allowed (a longer `every`?)",
                             (long long)every, (unsigned long long)span + 1, (long long)lo,
                             (long long)hi, (size_t)LOB_AGG_MAX_BUCKETS);
    }
    *first = f;
    *count = (size_t)span + 1;
    return 0;
}

int
lob_agg_count(const lob_agg_input *in, const lob_agg_opts *o, size_t *n_out, int threads,
              lob_error *err)
{
    const char *book = in->book_name != NULL ? in->book_name : "book";
    *n_out = 0;
    if (o->by == LOB_AGG_TIME || o->by == LOB_AGG_EVENTS) {
        if (o->every <= 0) {
            return lob_error_set(err, LOB_E_ARG, "every must be > 0, not %lld",
                                 (long long)o->every);
        }
    }
    else if (o->by == LOB_AGG_VOLUME) {
        if (!(o->volume > 0) || !isfinite(o->volume)) {
            return lob_error_set(err, LOB_E_ARG, "every must be a finite volume > 0, not %g",
                                 o->volume);
        }
    }
    else {
        return lob_error_set(err, LOB_E_ARG, "unknown bucket kind %d", o->by);
    }
    if (in->n_book > 0 &&
        (in->book_ts == NULL || in->bid == NULL || in->ask == NULL || in->px_stride == 0)) {
        return lob_error_set(err, LOB_E_ARG, "%s has rows but no prices (0 levels?)", book);
    }
    if (in->n_trades > 0 && (in->trade_ts == NULL || in->trade_px == NULL ||
                             in->trade_qty == NULL || in->trade_side == NULL)) {
        return lob_error_set(err, LOB_E_ARG, "trades have rows but missing columns");
    }
    /* TIME: the fill checks the rows as it reads them (lob_agg_fill()) */
    if (o->by != LOB_AGG_TIME && !inputs_ok(in, threads, 1, 1)) {
        LOB_FORWARD_IF_ERROR(named_checks(in, err));
    }

    size_t n = 0;
    if (o->by == LOB_AGG_TIME) {
        int64_t first;
        const int rc = time_span(in, o->every, &first, &n, err);
        if (rc < 0) {
            LOB_FORWARD_IF_ERROR(named_checks(in, err)); /* a bad first or last row, named */
            return rc;
        }
    }
    else if (o->by == LOB_AGG_EVENTS) {
        n = in->n_book == 0 ? 0 : (in->n_book - 1) / (uint64_t)o->every + 1;
    }
    else {
        for (size_t t = 0, next_poll = 0; t < in->n_trades; n++) {
            if (n + t >= next_poll) {
                LOB_FORWARD_IF_ERROR(lob_poll_stop(err));
                next_poll = n + t + LOB_POLL_ROWS;
            }
            t = volume_end(in->trade_qty, t, in->n_trades, o->volume);
        }
    }
    *n_out = n;
    return 0;
}

/* ---------------------------------------------------------------------------- the fill */

/* Rows counted at a time, and windows counted, before galloping: a bucket usually holds a
 * handful of rows. */
#define WINDOW 8
#define WINDOWS 4

/* One past the last row from b with ts < end (ts ascending).  The next WINDOW times are
 * compared and the answers summed, not branched on: the rows < end are a prefix of them, so
 * the sum is the run's length, found without the branch that a scan mispredicts once per
 * bucket where its run ends.  Four sums (a tree, not a chain of adds) keep the count off the
 * path from one bucket to the next.  A full window moves on to the next, up to WINDOWS of
 * them; a longer run (a burst) gallops from there, skipping its rows. */
static inline size_t
run_end(const int64_t *restrict ts, size_t b, size_t n, int64_t end)
{
    for (int w = 0; w < WINDOWS && n - b >= WINDOW; w++) {
        uint64_t c[4] = {0, 0, 0, 0};
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC unroll 8
#endif
        for (int j = 0; j < WINDOW; j++) {
            c[j & 3] += (uint64_t)(ts[b + j] < end);
        }
        const uint64_t below = (c[0] + c[1]) + (c[2] + c[3]);
        if (below < WINDOW) {
            return b + below;
        }
        b += WINDOW;
    }
    return gallop(ts, b, n, end);
}

/* The book as the fill reads it: the best bid and ask of row i < n at [i * stride]. */
typedef struct {
    const double *bid, *ask;
    size_t stride, n;
    const uint8_t *valid; /* NULL: every row valid */
} agg_book;

/* (bid + ask) / 2 times 1.0 (valid) or NaN (not valid): x * 1.0 is x exactly (-0.0 too), so
 * the flag needs no branch. */
static const double valid_factor[2] = {NAN, 1.0};

static inline double
mid_at(const agg_book *bk, size_t i)
{
    size_t j = i * bk->stride;
    double m = (bk->bid[j] + bk->ask[j]) / 2;
    return bk->valid != NULL ? m * valid_factor[bk->valid[i] != 0] : m;
}

/* A bucket's mids: open NaN when none of its rows has one. */
typedef struct {
    double open, high, low, close;
} agg_mids;

/* Open, high, low and close over the rows [b, b1) that have a mid (not NaN).  The first such
 * row is found first (nearly always row b), so the loop over the rest only keeps the extremes
 * and the last mid: maxsd / minsd and a select, no branch (a NaN row compares false). */
static inline agg_mids
mids_all(const double *restrict bid, const double *restrict ask, size_t stride,
         const uint8_t *restrict valid, size_t b, size_t b1)
{
    agg_mids r = {NAN, -INFINITY, INFINITY, NAN};
    if (b >= b1) { /* no rows (and maybe no book: bid and ask NULL) */
        return r;
    }
    const double *bp = bid + b * stride, *ap = ask + b * stride;
    for (; b < b1; b++, bp += stride, ap += stride) {
        double g = (*bp + *ap) / 2;
        g = valid != NULL ? g * valid_factor[valid[b] != 0] : g;
        if (g == g) {
            r.open = r.high = r.low = r.close = g;
            b++, bp += stride, ap += stride;
            break;
        }
    }
    double high = r.high, low = r.low, close = r.close;
    if (valid == NULL) {
        for (; b < b1; b++, bp += stride, ap += stride) {
            double g = (*bp + *ap) / 2;
            high = g > high ? g : high;
            low = g < low ? g : low;
            close = g == g ? g : close;
        }
    }
    else {
        for (; b < b1; b++, bp += stride, ap += stride) {
            double g = (*bp + *ap) / 2 * valid_factor[valid[b] != 0];
            high = g > high ? g : high;
            low = g < low ? g : low;
            close = g == g ? g : close;
        }
    }
    r.high = high;
    r.low = low;
    r.close = close;
    return r;
}

#if LOB_HAVE_AVX512
/* The open, high, low and close of the c rows from b (1 <= c <= 8) of a book of stride 1 with
 * 8 rows readable from b, in one register and without a branch on c: the 8 rows' mids, the
 * mask of the bucket's rows with a mid, high and low as reductions over those, open and close
 * the mids at the mask's first and last bit.  These are mids_all()'s values: the maximum and
 * minimum of a set do not depend on the order in which it is read, except for which of +0.0
 * and -0.0 wins when both are there, so a zero high or low returns 0 (not done) and the bucket
 * goes to mids_all().  A bucket whose loop exit the branch predictor cannot guess costs a
 * few instructions here instead (benchmarks/PROFILE.md, "aggregate"). */
LOB_AVX512 static inline int
mids_short(const double *restrict bid, const double *restrict ask, const uint8_t *restrict valid,
           size_t b, size_t c, agg_mids *r)
{
    const __m512d mid =
        _mm512_mul_pd(_mm512_add_pd(_mm512_loadu_pd(bid + b), _mm512_loadu_pd(ask + b)),
                      _mm512_set1_pd(0.5)); /* x * 0.5 is x / 2 exactly */
    __mmask8 has = _mm512_mask_cmp_pd_mask((__mmask8)((1u << c) - 1), mid, mid, _CMP_ORD_Q);
    if (valid != NULL) {
        uint64_t v;
        memcpy(&v, valid + b, sizeof v);
        const __m128i flags = _mm_cvtsi64_si128((long long)v);
        has &= _mm_test_epi8_mask(flags, flags);
    }
    if (has == 0) {
        r->open = NAN; /* no mid of its own */
        return 1;
    }
    const double high =
        _mm512_reduce_max_pd(_mm512_mask_blend_pd(has, _mm512_set1_pd(-INFINITY), mid));
    const double low =
        _mm512_reduce_min_pd(_mm512_mask_blend_pd(has, _mm512_set1_pd(INFINITY), mid));
    if (high == 0 || low == 0) {
        return 0;
    }
    const long long first = __builtin_ctz(has), last = 31 - __builtin_clz(has);
    r->open = _mm512_cvtsd_f64(_mm512_permutexvar_pd(_mm512_set1_epi64(first), mid));
    r->close = _mm512_cvtsd_f64(_mm512_permutexvar_pd(_mm512_set1_epi64(last), mid));
    r->high = high;
    r->low = low;
    return 1;
}

/* The same for 9 <= c <= 16 rows, 16 readable from b: two registers, a 16-bit mask. */
LOB_AVX512 static inline int
mids_short16(const double *restrict bid, const double *restrict ask, const uint8_t *restrict valid,
             size_t b, size_t c, agg_mids *r)
{
    const __m512d half = _mm512_set1_pd(0.5);
    const __m512d lo =
        _mm512_mul_pd(_mm512_add_pd(_mm512_loadu_pd(bid + b), _mm512_loadu_pd(ask + b)), half);
    const __m512d hi = _mm512_mul_pd(
        _mm512_add_pd(_mm512_loadu_pd(bid + b + 8), _mm512_loadu_pd(ask + b + 8)), half);
    __mmask8 has_lo = _mm512_cmp_pd_mask(lo, lo, _CMP_ORD_Q);
    __mmask8 has_hi = _mm512_mask_cmp_pd_mask((__mmask8)((1u << (c - 8)) - 1), hi, hi, _CMP_ORD_Q);
    if (valid != NULL) {
        uint64_t v[2];
        memcpy(v, valid + b, sizeof v);
        const __m128i flags = _mm_loadu_si128((const __m128i *)(const void *)v);
        const __mmask16 ok = _mm_test_epi8_mask(flags, flags);
        has_lo &= (__mmask8)ok;
        has_hi &= (__mmask8)(ok >> 8);
    }
    const unsigned has = (unsigned)has_lo | (unsigned)has_hi << 8;
    if (has == 0) {
        r->open = NAN;
        return 1;
    }
    const __m512d ninf = _mm512_set1_pd(-INFINITY), pinf = _mm512_set1_pd(INFINITY);
    const double high = _mm512_reduce_max_pd(_mm512_max_pd(_mm512_mask_blend_pd(has_lo, ninf, lo),
                                                           _mm512_mask_blend_pd(has_hi, ninf, hi)));
    const double low = _mm512_reduce_min_pd(_mm512_min_pd(_mm512_mask_blend_pd(has_lo, pinf, lo),
                                                          _mm512_mask_blend_pd(has_hi, pinf, hi)));
    if (high == 0 || low == 0) {
        return 0;
    }
    const long long first = __builtin_ctz(has), last = 31 - __builtin_clz(has);
    r->open = _mm512_cvtsd_f64(_mm512_permutex2var_pd(lo, _mm512_set1_epi64(first), hi));
    r->close = _mm512_cvtsd_f64(_mm512_permutex2var_pd(lo, _mm512_set1_epi64(last), hi));
    r->high = high;
    r->low = low;
    return 1;
}
#else
static inline int
mids_short(const double *bid, const double *ask, const uint8_t *valid, size_t b, size_t c,
           agg_mids *r)
{
    (void)bid, (void)ask, (void)valid, (void)b, (void)c, (void)r;
    return 0;
}

static inline int
mids_short16(const double *bid, const double *ask, const uint8_t *valid, size_t b, size_t c,
             agg_mids *r)
{
    (void)bid, (void)ask, (void)valid, (void)b, (void)c, (void)r;
    return 0;
}
#endif

/* The close alone reads one row a bucket, the last: a new line of bid and of ask nearly every
 * bucket, which the hardware's prefetchers do not bring in time (half the samples of the fill
 * sat on these two loads).  So the loops over buckets ask for the lines CLOSE_AHEAD rows past
 * the bucket's first row, a few TIME buckets ahead; farther (64 rows and more) was slower
 * (benchmarks/PROFILE.md). */
#define CLOSE_AHEAD 32

static inline void
prefetch_close(const agg_book *bk, size_t b)
{
#if defined(__GNUC__)
    if (bk->n - b > CLOSE_AHEAD) {
        __builtin_prefetch(bk->bid + (b + CLOSE_AHEAD) * bk->stride);
        __builtin_prefetch(bk->ask + (b + CLOSE_AHEAD) * bk->stride);
    }
#else
    (void)bk;
    (void)b;
#endif
}

/* The close alone: the last row of [b, b1) with a mid, found from the end (nearly always
 * row b1 - 1), so the rows before it are never read.  NaN when there is none. */
static inline double
mid_last(const agg_book *bk, size_t b, size_t b1)
{
    while (b1 > b) {
        double g = mid_at(bk, --b1);
        if (g == g) {
            return g;
        }
    }
    return NAN;
}

/* A bucket's trades. */
typedef struct {
    double vol, pq, buy, sell;
} agg_sums;

/* Sums over the trades [t, t1), in order (the same roundings whatever the caller asked for).
 * Sides are a coin flip: sizes go into the buy and sell volumes times lob_unit's factors, not
 * through a branch; `sides` 0 leaves buy and sell at 0. */
static inline agg_sums
trade_sums(const double *restrict px, const double *restrict qty, const int8_t *restrict side,
           size_t t, size_t t1, int sides)
{
    double vol = 0, pq = 0, buy = 0, sell = 0;
    if (sides) {
        for (; t < t1; t++) {
            double q = qty[t];
            vol += q;
            pq += px[t] * q;
            buy += q * lob_unit[side[t] > 0];
            sell += q * lob_unit[side[t] < 0];
        }
    }
    else {
        for (; t < t1; t++) {
            vol += qty[t];
            pq += px[t] * qty[t];
        }
    }
    return (agg_sums){vol, pq, buy, sell};
}

/* The trades from t while ts < end, summed in the loop that finds where they end (with the
 * sides when `sides`): a bucket holds few trades, and one loop that tests each against the
 * end mispredicts once per bucket, which costs less here than counting the run first and
 * summing it in groups masked past its end (measured: benchmarks/PROFILE.md).  Returns one
 * past the last trade. */
static inline size_t
trades_until(const int64_t *restrict ts, const double *restrict px, const double *restrict qty,
             const int8_t *restrict side, size_t t, size_t n, int64_t end, int sides,
             agg_sums *sums)
{
    double vol = 0, pq = 0, buy = 0, sell = 0;
    if (sides) {
        for (; t < n && ts[t] < end; t++) {
            double q = qty[t];
            vol += q;
            pq += px[t] * q;
            buy += q * lob_unit[side[t] > 0];
            sell += q * lob_unit[side[t] < 0];
        }
    }
    else {
        for (; t < n && ts[t] < end; t++) {
            vol += qty[t];
            pq += px[t] * qty[t];
        }
    }
    *sums = (agg_sums){vol, pq, buy, sell};
    return t;
}

/* a where m is all ones, b where it is 0, without a branch: gcc makes a ternary on doubles a
 * branch, and an and-mask in the integer registers costs two moves between register files. */
static inline double
pick(uint64_t m, double a, double b)
{
#if defined(__SSE2__) && defined(__x86_64__) /* _mm_cvtsi64_si128: x86-64 only */
    const __m128d mask = _mm_castsi128_pd(_mm_cvtsi64_si128((long long)m));
    return _mm_cvtsd_f64(
        _mm_or_pd(_mm_and_pd(mask, _mm_set_sd(a)), _mm_andnot_pd(mask, _mm_set_sd(b))));
#else
    uint64_t x, y;
    memcpy(&x, &a, sizeof x);
    memcpy(&y, &b, sizeof y);
    x = (x & m) | (y & ~m);
    memcpy(&a, &x, sizeof a);
    return a;
#endif
}

/* What the fill computes, from the columns the caller asked for. */
typedef struct {
    int ohlc;   /* open, high or low: every book row is read */
    int close;  /* the close (or the carry) */
    int rows;   /* where each bucket's book rows end */
    int sums;   /* volume or vwap */
    int sides;  /* buy or sell volume */
    int trades; /* where each bucket's trades end */
} agg_need;

static agg_need
need_of(const lob_agg_opts *o, const lob_agg_output *out)
{
    agg_need n;
    n.ohlc = out->mid_open != NULL || out->mid_high != NULL || out->mid_low != NULL;
    n.close = n.ohlc || out->mid_close != NULL || (out->vwap != NULL && o->empty_vwap_mid);
    n.rows = n.close || out->updates != NULL;
    n.sides = out->buy_volume != NULL || out->sell_volume != NULL;
    n.sums = n.sides || out->volume != NULL || out->vwap != NULL;
    n.trades = n.sums || out->trades != NULL;
    return n;
}

/* put_bucket() inlined into each loop of lob_agg_fill(), whatever gcc's size heuristics say:
 * a call per bucket with a dozen arguments cost ~5 % of the fill (profile_aggregate.c, all ten
 * columns and the three of the published kernel alike). */
#if defined(__GNUC__)
#define AGG_INLINE static inline __attribute__((always_inline))
#else
#define AGG_INLINE static inline
#endif

/* Bucket k: book rows [b0, b1), trades [t0, t1).  Computes what `need` says and writes the
 * columns that `out` has; `summed` (or NULL): the trades' sums, already made.  *carry is the
 * mid of the last book row seen so far (NaN if none or a gap) and moves past this bucket's
 * rows.  `wide`: short buckets of a stride-1 book by mids_short() (a caller built for and
 * running on AVX-512). */
AGG_INLINE void
put_bucket(const lob_agg_input *in, const agg_book *bk, const agg_need *need, const lob_agg_opts *o,
           const lob_agg_output *out, size_t k, int64_t start, size_t b0, size_t b1, size_t t0,
           size_t t1, const agg_sums *summed, double *carry, const int wide)
{
    agg_mids m = {NAN, NAN, NAN, NAN};
    if (need->ohlc) {
        const size_t c = b1 - b0;
        if (!(wide && bk->stride == 1 && c > 0 && c <= 16 && bk->n - b0 >= 16 &&
              (c <= 8 ? mids_short(bk->bid, bk->ask, bk->valid, b0, c, &m)
                      : mids_short16(bk->bid, bk->ask, bk->valid, b0, c, &m)))) {
            m = mids_all(bk->bid, bk->ask, bk->stride, bk->valid, b0, b1);
        }
    }
    if (need->ohlc || (need->close && bk->n == 0)) {
        if (b1 > b0) {
            *carry = mid_at(bk, b1 - 1); /* a gap as the last row ends the carry */
        }
        if (m.open != m.open) { /* no mid of its own: the carry */
            m.open = m.high = m.low = m.close = *carry;
        }
    }
    else if (need->close) {
        /* The same without a branch on whether the bucket has rows, which is as random as the
         * quotes where many buckets are empty: the last row's mid (row b1 - 1, or a row read for
         * nothing) becomes the carry or not by a mask, and is the close unless it is NaN; then
         * an earlier row of the bucket may have a mid (a gap at its end: rare). */
        *carry = pick(-(uint64_t)(b1 > b0), mid_at(bk, b1 - (b1 > 0)), *carry);
        m.close = *carry;
        if (m.close != m.close && b1 - b0 > 1) {
            m.close = mid_last(bk, b0, b1 - 1);
        }
    }
    agg_sums s = {0, 0, 0, 0};
    if (summed != NULL) {
        s = *summed;
    }
    else if (need->sums) {
        s = trade_sums(in->trade_px, in->trade_qty, in->trade_side, t0, t1, need->sides);
    }
    if (out->ts != NULL) {
        out->ts[k] = start;
    }
    if (out->mid_open != NULL) {
        out->mid_open[k] = m.open;
    }
    if (out->mid_high != NULL) {
        out->mid_high[k] = m.high;
    }
    if (out->mid_low != NULL) {
        out->mid_low[k] = m.low;
    }
    if (out->mid_close != NULL) {
        out->mid_close[k] = m.close;
    }
    if (out->vwap != NULL) { /* 0 / 0 where there is no volume: not used */
        out->vwap[k] = s.vol > 0 ? s.pq / s.vol : (o->empty_vwap_mid ? m.close : NAN);
    }
    if (out->volume != NULL) {
        out->volume[k] = s.vol;
    }
    if (out->buy_volume != NULL) {
        out->buy_volume[k] = s.buy;
    }
    if (out->sell_volume != NULL) {
        out->sell_volume[k] = s.sell;
    }
    if (out->trades != NULL) {
        out->trades[k] = (int64_t)(t1 - t0);
    }
    if (out->updates != NULL) {
        out->updates[k] = (int64_t)(b1 - b0);
    }
}

/* Dense TIME buckets.  Where buckets hold a few rows each (500 ms of a busy pair: 6 quotes and 2
 * trades), the loop over buckets pays, for each, a chain from where its rows end to where the
 * next bucket's search starts and a mispredicted branch where its trades end: 20-25 ns a bucket
 * whatever it computes.  A block of DENSE_BUCKETS buckets is found at once instead, by the
 * bucket of each row and trade: a product with the reciprocal, exact after a correction of one
 * either way.  Each bucket's last row is stored as its end; each trade's sums, restarted from
 * +0.0 by an and-mask where its bucket changes, are stored at every trade, the last store
 * being the bucket's.  Then the columns of the block, from these, in loops without a branch on
 * the data; with the open, high and low, each bucket through put_bucket() from the rows' ends
 * found.  The same bars as the loop over buckets, bit for bit: the same sums in the same
 * order, the same mids, close and carry.  A block with more than DENSE_ROWS rows or trades a
 * bucket on average goes through that loop, whose gallop skips long runs without reading
 * them.  Measured in benchmarks/PROFILE.md ("aggregate: dense buckets a block at a time"). */
#define DENSE_BUCKETS 256
#define DENSE_ROWS 64
#define DENSE_AHEAD 512 /* rows: 4 KiB of each array */
/* every * (DENSE_BUCKETS + 2) < 2^52: the times from a block's start are exact doubles */
#define DENSE_EVERY_MAX (((int64_t)1 << 52) / (DENSE_BUCKETS + 2))

typedef struct {
    /* one past each bucket's last row and trade, from the block's first (0: none) */
    uint32_t rows[DENSE_BUCKETS], trades[DENSE_BUCKETS];
    /* dense_rows_wide(): the last rows of buckets as found, with their mids; the mid of each
     * bucket's last row (where `mids` and the bucket has rows) */
    uint32_t last_bucket[DENSE_BUCKETS + 16], last_row[DENSE_BUCKETS + 16];
    double last_mid[DENSE_BUCKETS + 16], mid[DENSE_BUCKETS];
    int mids;
    /* dense_rows_wide(): the rows from the block's first whose times it compared with the
     * next row's, and whether one was greater; dense_trades_wide(): the trades from the
     * block's first it checked, and whether one failed */
    size_t ordered, checked;
    int disorder, unchecked;
    double vol[DENSE_BUCKETS], pq[DENSE_BUCKETS], buy[DENSE_BUCKETS], sell[DENSE_BUCKETS];
    double close[DENSE_BUCKETS];
} agg_dense;

/* The bucket of time x in the block from `base`: d / every for d = x - base, which lies in
 * [0, DENSE_BUCKETS * every) when the times are in order.  The quotient of doubles is within
 * one of it (d exact, 1 / every and the product each rounded by half an ulp), and d - q * every
 * tells which way.  Times out of order (not yet checked: the fill checks each block after
 * reading it) give the last bucket, never an index outside the block. */
static inline size_t
bucket_of(int64_t x, int64_t base, int64_t every, double inv)
{
    const uint64_t d = (uint64_t)x - (uint64_t)base;
    if (d >= (uint64_t)DENSE_BUCKETS * (uint64_t)every) {
        return DENSE_BUCKETS - 1;
    }
    int64_t q = (int64_t)((double)d * inv);
    const int64_t r = (int64_t)d - q * every;
    q += (r >= every) - (r < 0);
    return (size_t)q;
}

/* The book rows from i below `stop` and below b1 into end[] of the block starting at `base`, as
 * one past the row from `origin`.  Returns one past the last row read.  The loop ends by one
 * branch a block, not a search: a gallop to the block's end waited on a dozen lines from
 * memory, one after the other. */
static inline size_t
dense_rows(const int64_t *restrict ts, size_t i, size_t b1, size_t origin, int64_t base,
           int64_t stop, int64_t every, double inv, uint32_t *restrict end)
{
    for (; i < b1 && ts[i] < stop; i++) {
        end[bucket_of(ts[i], base, every, inv)] = (uint32_t)(i + 1 - origin);
    }
    return i;
}

#if LOB_HAVE_AVX512
/* dense_rows() eight rows at a time: the buckets in doubles (a time below 2^52 becomes one by
 * its bits, no conversion instruction needed), a row the last of its bucket where the next
 * row's time (or `stop`, if less) reaches the bucket's end; those rows (about one in six at
 * 500 ms) packed, and stored as the ends afterwards.  With a book of one level (`book` not
 * NULL), their mids too, computed as mid_at() does from bid and ask read in the same loop:
 * three streams in order, asked for DENSE_AHEAD rows ahead, instead of a line of each price
 * per bucket at irregular steps.  The scalar loop takes the rows past the last full eight. */
LOB_AVX512 static size_t
dense_rows_wide(const int64_t *restrict ts, size_t b, size_t b1, size_t n, int64_t base,
                int64_t stop, int64_t every, double inv, const agg_book *book,
                agg_dense *restrict d)
{
    const __m512i magic = _mm512_set1_epi64(INT64_C(0x4330000000000000)),
                  vbase = _mm512_set1_epi64(base), vstop = _mm512_set1_epi64(stop);
    const __m512d two52 = _mm512_set1_pd(0x1p52), vinv = _mm512_set1_pd(inv),
                  vev = _mm512_set1_pd((double)every), one = _mm512_set1_pd(1.0),
                  zero = _mm512_setzero_pd(), nan = _mm512_set1_pd(NAN), half = _mm512_set1_pd(0.5);
    const __m256i lane = _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8),
                  last_j = _mm256_set1_epi32(DENSE_BUCKETS - 1);
    size_t i = b, p = 0;
    __mmask8 disorder = 0;
    /* rows i .. i + 7 all below stop, and row i + 8 there to compare with; room for eight more
     * last rows (in order, a bucket has one at most) */
    while (i + 8 < n && i + 8 <= b1 && ts[i + 7] < stop && p <= DENSE_BUCKETS) {
        /* DENSE_AHEAD rows ahead: the hardware's prefetch alone left the loop waiting */
        if (n - i > DENSE_AHEAD) {
            _mm_prefetch((const char *)(ts + i + DENSE_AHEAD), _MM_HINT_T0);
        }
        if (book != NULL && n - i > DENSE_AHEAD) {
            _mm_prefetch((const char *)(book->bid + i + DENSE_AHEAD), _MM_HINT_T0);
            _mm_prefetch((const char *)(book->ask + i + DENSE_AHEAD), _MM_HINT_T0);
        }
        const __m512i t = _mm512_loadu_si512(ts + i), next = _mm512_loadu_si512(ts + i + 1),
                      u = _mm512_min_epi64(next, vstop);
        disorder |= _mm512_cmpgt_epi64_mask(t, next); /* the checks' order, on the way */
        const __m512d x = _mm512_sub_pd(
            _mm512_castsi512_pd(_mm512_or_si512(_mm512_sub_epi64(t, vbase), magic)), two52);
        const __m512d y = _mm512_sub_pd(
            _mm512_castsi512_pd(_mm512_or_si512(_mm512_sub_epi64(u, vbase), magic)), two52);
        __m512d q = _mm512_roundscale_pd(_mm512_mul_pd(x, vinv), _MM_FROUND_TO_ZERO);
        const __m512d r = _mm512_sub_pd(x, _mm512_mul_pd(q, vev)); /* exact: all below 2^53 */
        q = _mm512_mask_add_pd(q, _mm512_cmp_pd_mask(r, vev, _CMP_GE_OQ), q, one);
        q = _mm512_mask_sub_pd(q, _mm512_cmp_pd_mask(r, zero, _CMP_LT_OQ), q, one);
        const __mmask8 last =
            _mm512_cmp_pd_mask(y, _mm512_mul_pd(_mm512_add_pd(q, one), vev), _CMP_GE_OQ);
        /* out of order (not yet checked), a time gives the last bucket, as bucket_of() */
        const __m256i jb = _mm256_min_epu32(_mm512_cvttpd_epi32(q), last_j);
        const __m256i row = _mm256_add_epi32(lane, _mm256_set1_epi32((int)(i - b)));
        _mm256_storeu_si256((__m256i *)(d->last_bucket + p), _mm256_maskz_compress_epi32(last, jb));
        _mm256_storeu_si256((__m256i *)(d->last_row + p), _mm256_maskz_compress_epi32(last, row));
        if (book != NULL) {
            /* times 0.5: the same as / 2, both rounded once from the same exact half */
            __m512d mid = _mm512_mul_pd(
                _mm512_add_pd(_mm512_loadu_pd(book->bid + i), _mm512_loadu_pd(book->ask + i)),
                half);
            if (book->valid != NULL) { /* times 1.0 or NaN, as mid_at() */
                const __m128i v = _mm_loadl_epi64((const __m128i *)(book->valid + i));
                const __mmask8 ok =
                    _mm512_test_epi64_mask(_mm512_cvtepu8_epi64(v), _mm512_set1_epi64(0xFF));
                mid = _mm512_mul_pd(mid, _mm512_mask_blend_pd(ok, nan, one));
            }
            _mm512_storeu_pd(d->last_mid + p, _mm512_maskz_compress_pd(last, mid));
        }
        p += (size_t)__builtin_popcount(last);
        i += 8;
    }
    d->ordered = i - b;
    d->disorder = disorder != 0;
    for (size_t k = 0; k < p; k++) {
        d->rows[d->last_bucket[k]] = d->last_row[k];
    }
    if (book != NULL) {
        for (size_t k = 0; k < p; k++) {
            d->mid[d->last_bucket[k]] = d->last_mid[k];
        }
        /* the rows past the last full eight, one at a time */
        for (; i < b1 && ts[i] < stop; i++) {
            const size_t j = bucket_of(ts[i], base, every, inv);
            d->rows[j] = (uint32_t)(i + 1 - b);
            d->mid[j] = mid_at(book, i);
        }
        return i;
    }
    return dense_rows(ts, i, b1, b, base, stop, every, inv, d->rows);
}
#endif

/* The trades from t as dense_rows() for the rows, each bucket's sums into the block's (left as
 * they are where a bucket has no trade). */
AGG_INLINE size_t
dense_trades(const lob_agg_input *in, size_t t, size_t t1, int64_t base, int64_t stop,
             int64_t every, double inv, const agg_need *need, agg_dense *restrict d)
{
    const int64_t *restrict ts = in->trade_ts;
    if (!need->sums) {
        return dense_rows(ts, t, t1, t, base, stop, every, inv, d->trades);
    }
    const double *restrict px = in->trade_px, *restrict qty = in->trade_qty;
    const int8_t *restrict side = in->trade_side;
    const int sides = need->sides;
    size_t i = t, last = DENSE_BUCKETS; /* no bucket yet */
#if defined(__SSE2__) && defined(__x86_64__)
    /* vol and pq in one register, buy and sell in another: an and and an add on each chain */
    __m128d vp = _mm_setzero_pd(), bs = _mm_setzero_pd();
    for (; i < t1 && ts[i] < stop; i++) {
        const size_t j = bucket_of(ts[i], base, every, inv);
        const __m128d keep = _mm_castsi128_pd(_mm_set1_epi64x(-(long long)(j == last)));
        const double q = qty[i];
        vp = _mm_add_pd(_mm_and_pd(vp, keep), _mm_set_pd(px[i] * q, q));
        _mm_store_sd(d->vol + j, vp);
        _mm_storeh_pd(d->pq + j, vp);
        if (sides) {
            const __m128d u = _mm_set_pd(q * lob_unit[side[i] < 0], q * lob_unit[side[i] > 0]);
            bs = _mm_add_pd(_mm_and_pd(bs, keep), u);
            _mm_store_sd(d->buy + j, bs);
            _mm_storeh_pd(d->sell + j, bs);
        }
        d->trades[j] = (uint32_t)(i + 1 - t);
        last = j;
    }
#else
    double vol = 0, pq = 0, buy = 0, sell = 0;
    for (; i < t1 && ts[i] < stop; i++) {
        const size_t j = bucket_of(ts[i], base, every, inv);
        if (j != last) {
            vol = pq = buy = sell = 0;
        }
        const double q = qty[i];
        d->vol[j] = vol += q;
        d->pq[j] = pq += px[i] * q;
        if (sides) {
            d->buy[j] = buy += q * lob_unit[side[i] > 0];
            d->sell[j] = sell += q * lob_unit[side[i] < 0];
        }
        d->trades[j] = (uint32_t)(i + 1 - t);
        last = j;
    }
#endif
    return i;
}

#if LOB_HAVE_AVX512
/* dense_trades() eight trades at a time where it can be: their buckets, whether each is in the
 * bucket of the one before, and their products as dense_rows_wide() finds the rows' buckets;
 * then the sums in order, one trade at a time, on chains of an and (the restart) and an add,
 * the same operations as dense_trades() on the same values. */
LOB_AVX512 static size_t
dense_trades_wide(const lob_agg_input *in, size_t t, size_t t1, int64_t base, int64_t stop,
                  int64_t every, double inv, int sides, agg_dense *restrict d)
{
    const int64_t *restrict ts = in->trade_ts;
    const double *restrict px = in->trade_px, *restrict qty = in->trade_qty;
    const int8_t *restrict side = in->trade_side;
    const size_t n = in->n_trades;
    const __m512i magic = _mm512_set1_epi64(INT64_C(0x4330000000000000)),
                  vbase = _mm512_set1_epi64(base), ones = _mm512_set1_epi64(-1);
    const __m512d two52 = _mm512_set1_pd(0x1p52), vinv = _mm512_set1_pd(inv),
                  vev = _mm512_set1_pd((double)every), one = _mm512_set1_pd(1.0),
                  zero = _mm512_setzero_pd();
    const __m256i last_j = _mm256_set1_epi32(DENSE_BUCKETS - 1); /* as in dense_rows_wide() */
    _Alignas(64) int64_t keep[8];
    _Alignas(64) int32_t bucket[8];
    _Alignas(64) double q8[8], pq8[8], buy8[8], sell8[8];
    __m128d vol = _mm_setzero_pd(), pq = vol, buy = vol, sell = vol;
    __m256i prev = _mm256_set1_epi32(DENSE_BUCKETS); /* no bucket yet */
    /* the checks on the way (as trades_ok() and lob_times_ok(), each time against the one
     * before it from the second): top bits of `bad`, the order and the sides in `odd` */
    const __m512i fin = _mm512_set1_epi64(INT64_C(0x7FEFFFFFFFFFFFFF)),
                  abs = _mm512_set1_epi64(INT64_C(0x7FFFFFFFFFFFFFFF));
    __m512i bad = _mm512_setzero_si512(), before = _mm512_set1_epi64(INT64_MIN);
    __mmask8 odd = 0;
    size_t i = t;
    while (i + 8 <= t1 && ts[i + 7] < stop) {
        if (n - i > DENSE_AHEAD) {
            _mm_prefetch((const char *)(ts + i + DENSE_AHEAD), _MM_HINT_T0);
            _mm_prefetch((const char *)(px + i + DENSE_AHEAD), _MM_HINT_T0);
            _mm_prefetch((const char *)(qty + i + DENSE_AHEAD), _MM_HINT_T0);
        }
        const __m512i tv = _mm512_loadu_si512(ts + i);
        odd |= _mm512_cmpgt_epi64_mask(_mm512_alignr_epi64(tv, before, 7), tv);
        before = tv;
        const __m512d x = _mm512_sub_pd(
            _mm512_castsi512_pd(_mm512_or_si512(_mm512_sub_epi64(tv, vbase), magic)), two52);
        __m512d b = _mm512_roundscale_pd(_mm512_mul_pd(x, vinv), _MM_FROUND_TO_ZERO);
        const __m512d r = _mm512_sub_pd(x, _mm512_mul_pd(b, vev));
        b = _mm512_mask_add_pd(b, _mm512_cmp_pd_mask(r, vev, _CMP_GE_OQ), b, one);
        b = _mm512_mask_sub_pd(b, _mm512_cmp_pd_mask(r, zero, _CMP_LT_OQ), b, one);
        const __m256i j = _mm256_min_epu32(_mm512_cvttpd_epi32(b), last_j);
        /* each trade's bucket against the one before it (the last of the eight before) */
        const __mmask8 same = _mm256_cmpeq_epi32_mask(j, _mm256_alignr_epi32(j, prev, 7));
        prev = j;
        _mm256_store_si256((__m256i *)bucket, j);
        _mm512_store_si512(keep, _mm512_maskz_mov_epi64(same, ones));
        const __m512d q = _mm512_loadu_pd(qty + i), p = _mm512_loadu_pd(px + i);
        _mm512_store_pd(q8, q);
        _mm512_store_pd(pq8, _mm512_mul_pd(p, q));
        const __m512i qi = _mm512_castpd_si512(q),
                      pa = _mm512_and_si512(_mm512_castpd_si512(p), abs);
        bad = _mm512_ternarylogic_epi64(bad, _mm512_sub_epi64(fin, pa),
                                        _mm512_or_si512(qi, _mm512_sub_epi64(fin, qi)), 0xFE);
        const __m512i sd = _mm512_cvtepi8_epi64(_mm_loadl_epi64((const __m128i *)(side + i)));
        odd |= _mm512_cmpgt_epi64_mask(_mm512_abs_epi64(sd), _mm512_set1_epi64(1));
        if (sides) { /* q times 1.0 or 0.0, as lob_unit[] */
            const __mmask8 up = _mm512_cmpgt_epi64_mask(sd, _mm512_setzero_si512());
            const __mmask8 down = _mm512_cmplt_epi64_mask(sd, _mm512_setzero_si512());
            _mm512_store_pd(buy8, _mm512_mul_pd(q, _mm512_mask_blend_pd(up, zero, one)));
            _mm512_store_pd(sell8, _mm512_mul_pd(q, _mm512_mask_blend_pd(down, zero, one)));
        }
        for (int k = 0; k < 8; k++) {
            const __m128d m = _mm_castsi128_pd(_mm_set1_epi64x(keep[k]));
            const size_t at = (size_t)bucket[k];
            vol = _mm_add_sd(_mm_and_pd(vol, m), _mm_set_sd(q8[k]));
            pq = _mm_add_sd(_mm_and_pd(pq, m), _mm_set_sd(pq8[k]));
            _mm_store_sd(d->vol + at, vol);
            _mm_store_sd(d->pq + at, pq);
            if (sides) {
                buy = _mm_add_sd(_mm_and_pd(buy, m), _mm_set_sd(buy8[k]));
                sell = _mm_add_sd(_mm_and_pd(sell, m), _mm_set_sd(sell8[k]));
                _mm_store_sd(d->buy + at, buy);
                _mm_store_sd(d->sell + at, sell);
            }
            d->trades[at] = (uint32_t)(i + (size_t)k + 1 - t);
        }
        i += 8;
    }
    d->checked = i - t;
    d->unchecked = odd != 0 || _mm512_cmplt_epi64_mask(bad, _mm512_setzero_si512()) != 0;
    /* the trades past the last full eight, one at a time, the chains going on */
    size_t last = i > t ? (size_t)_mm256_extract_epi32(prev, 7) : DENSE_BUCKETS;
    for (; i < t1 && ts[i] < stop; i++) {
        const size_t j = bucket_of(ts[i], base, every, inv);
        const __m128d m = _mm_castsi128_pd(_mm_set1_epi64x(-(long long)(j == last)));
        const double q = qty[i];
        vol = _mm_add_sd(_mm_and_pd(vol, m), _mm_set_sd(q));
        pq = _mm_add_sd(_mm_and_pd(pq, m), _mm_set_sd(px[i] * q));
        _mm_store_sd(d->vol + j, vol);
        _mm_store_sd(d->pq + j, pq);
        if (sides) {
            buy = _mm_add_sd(_mm_and_pd(buy, m), _mm_set_sd(q * lob_unit[side[i] > 0]));
            sell = _mm_add_sd(_mm_and_pd(sell, m), _mm_set_sd(q * lob_unit[side[i] < 0]));
            _mm_store_sd(d->buy + j, buy);
            _mm_store_sd(d->sell + j, sell);
        }
        d->trades[j] = (uint32_t)(i + 1 - t);
        last = j;
    }
    return i;
}
#endif

/* The VWAP of m buckets: NaN (or the close, with `empty_mid`) where there is no volume; the
 * quotient always made (0 / 0 there: not used) and picked by a mask, not a branch. */
static inline void
vwap_of(const double *restrict vol, const double *restrict pq, const double *restrict close,
        size_t m, int empty_mid, double *restrict vwap)
{
    for (size_t j = 0; j < m; j++) {
        vwap[j] = pick(-(uint64_t)(vol[j] > 0), pq[j] / vol[j], empty_mid ? close[j] : NAN);
    }
}

#if LOB_HAVE_AVX512
LOB_AVX512 static void
vwap_wide(const double *restrict vol, const double *restrict pq, const double *restrict close,
          size_t m, int empty_mid, double *restrict vwap)
{
    const __m512d zero = _mm512_setzero_pd(), nan = _mm512_set1_pd(NAN);
    size_t j = 0;
    for (; j + 8 <= m; j += 8) {
        const __m512d v = _mm512_loadu_pd(vol + j),
                      e = empty_mid ? _mm512_loadu_pd(close + j) : nan;
        const __mmask8 some = _mm512_cmp_pd_mask(v, zero, _CMP_GT_OQ);
        _mm512_storeu_pd(vwap + j, _mm512_mask_div_pd(e, some, _mm512_loadu_pd(pq + j), v));
    }
    vwap_of(vol + j, pq + j, close + j, m - j, empty_mid, vwap + j);
}
#endif

/* The rows (or trades) of each of m buckets into count (if not NULL), from one past the last
 * of each as found, 0 where a bucket has none. */
static inline void
block_counts(const uint32_t *restrict end, size_t m, int64_t *restrict count)
{
    uint32_t e = 0, p = 0;
    for (size_t j = 0; count != NULL && j < m; j++) {
        e = end[j] > e ? end[j] : e;
        count[j] = (int64_t)(e - p);
        p = e;
    }
}

/* Buckets [k, kb) of a TIME fill (kb < n: each ends where the next starts) from book row *b
 * and trade *t, when they are dense: 0 (nothing written) when they are not. */
AGG_INLINE int
dense_block(const lob_agg_input *in, const agg_book *bk, const agg_need *need,
            const lob_agg_opts *o, const lob_agg_output *out, int64_t first, size_t k, size_t kb,
            size_t *b, size_t *t, double *carry, agg_dense *restrict d, const int wide)
{
    const int64_t every = o->every, base = (first + (int64_t)k) * every,
                  stop = (first + (int64_t)kb) * every;
    const size_t m = kb - k, b0 = *b, t0 = *t, cap = DENSE_ROWS * m;
    const double inv = 1.0 / (double)every;
    size_t b1 = b0, t1 = t0;
    d->mids = LOB_HAVE_AVX512 && wide && need->close && bk->stride == 1; /* (ohlc: a prefetch) */
    d->ordered = d->checked = 0;
    d->disorder = d->unchecked = 0;
    if (need->rows) {
        const size_t lim = in->n_book - b0 > cap ? b0 + cap : in->n_book;
        memset(d->rows, 0, m * sizeof d->rows[0]);
#if LOB_HAVE_AVX512
        b1 = wide ? dense_rows_wide(in->book_ts, b0, lim, in->n_book, base, stop, every, inv,
                                    d->mids ? bk : NULL, d)
                  : dense_rows(in->book_ts, b0, lim, b0, base, stop, every, inv, d->rows);
#else
        b1 = dense_rows(in->book_ts, b0, lim, b0, base, stop, every, inv, d->rows);
#endif
        if (b1 == lim && b1 < in->n_book && in->book_ts[b1] < stop) {
            return 0; /* not dense */
        }
    }
    if (need->trades) {
        const size_t lim = in->n_trades - t0 > cap ? t0 + cap : in->n_trades;
        memset(d->trades, 0, m * sizeof d->trades[0]);
        if (need->sums) {
            memset(d->vol, 0, m * sizeof d->vol[0]);
            memset(d->pq, 0, m * sizeof d->pq[0]);
            memset(d->buy, 0, m * sizeof d->buy[0]);
            memset(d->sell, 0, m * sizeof d->sell[0]);
        }
#if LOB_HAVE_AVX512
        t1 = wide && need->sums
                 ? dense_trades_wide(in, t0, lim, base, stop, every, inv, need->sides, d)
                 : dense_trades(in, t0, lim, base, stop, every, inv, need, d);
#else
        t1 = dense_trades(in, t0, lim, base, stop, every, inv, need, d);
#endif
        if (t1 == lim && t1 < in->n_trades && in->trade_ts[t1] < stop) {
            return 0;
        }
    }
    if (need->ohlc) { /* the open, high and low from the rows, as the loop over buckets does */
        uint32_t re = 0, te = 0, rp = 0, tp = 0;
        for (size_t j = 0; j < m; j++) {
            re = d->rows[j] > re ? d->rows[j] : re;
            te = d->trades[j] > te ? d->trades[j] : te;
            const agg_sums sums = {d->vol[j], d->pq[j], d->buy[j], d->sell[j]};
            put_bucket(in, bk, need, o, out, k + j, base + (int64_t)j * every, b0 + rp, b0 + re,
                       t0 + tp, t0 + te, need->sums ? &sums : NULL, carry, wide);
            rp = re;
            tp = te;
        }
        *b = b1;
        *t = t1;
        return 1;
    }
    /* the columns of the block, each in a loop of its own without a branch on the data (what
     * the caller asked for read once, not at each bucket: a store into a column could change
     * it, for all the compiler knows).  The close (and its carry) in order, straight into its
     * column when it was asked for. */
    double *const closes = out->mid_close != NULL ? out->mid_close + k : d->close;
    if (need->close) {
        const int mids = d->mids;
        uint32_t re = 0, rp = 0;
        double cy = *carry;
        for (size_t j = 0; j < m; j++) {
            re = d->rows[j] > re ? d->rows[j] : re;
            const size_t c0 = b0 + rp, c1 = b0 + re;
            /* as put_bucket(): the last row's mid, else the carry; a gap at its end looks back */
            if (mids) {
                cy = pick(-(uint64_t)(c1 > c0), d->mid[j], cy);
            }
            else {
                prefetch_close(bk, c0);
                cy = pick(-(uint64_t)(c1 > c0), mid_at(bk, c1 - (c1 > 0)), cy);
            }
            double c = cy;
            if (c != c && c1 - c0 > 1) {
                c = mid_last(bk, c0, c1 - 1);
            }
            closes[j] = c;
            rp = re;
        }
        *carry = cy;
    }
    block_counts(d->rows, m, out->updates != NULL ? out->updates + k : NULL);
    block_counts(d->trades, m, out->trades != NULL ? out->trades + k : NULL);
    int64_t *const ts = out->ts != NULL ? out->ts + k : NULL;
    for (size_t j = 0; ts != NULL && j < m; j++) {
        ts[j] = base + (int64_t)j * every;
    }
    if (out->vwap != NULL) {
#if LOB_HAVE_AVX512
        if (wide) {
            vwap_wide(d->vol, d->pq, closes, m, o->empty_vwap_mid, out->vwap + k);
        }
        else
#endif
        {
            vwap_of(d->vol, d->pq, closes, m, o->empty_vwap_mid, out->vwap + k);
        }
    }
    if (out->volume != NULL) {
        memcpy(out->volume + k, d->vol, m * sizeof d->vol[0]);
    }
    if (out->buy_volume != NULL) {
        memcpy(out->buy_volume + k, d->buy, m * sizeof d->buy[0]);
    }
    if (out->sell_volume != NULL) {
        memcpy(out->sell_volume + k, d->sell, m * sizeof d->sell[0]);
    }
    *b = b1;
    *t = t1;
    return 1;
}

#define AGG_RANGE_MIN ((size_t)8192) /* buckets: a task of ~0.2 ms at least */
#define AGG_MAX_RANGES 256

/* What a TIME task read: book rows [b0, b1) and trades [t0, t1), and whether they passed the
 * checks (in order with the row before, times valid, trades' values valid). */
typedef struct {
    size_t b0, b1, t0, t1;
    int ok;
} agg_span;

/* One call of the fill: TIME and EVENTS buckets split into ranges of `per` buckets, one task
 * each.  A range starts where the buckets before it leave off: the first book row and trade
 * at or after its first bucket's start (found by bisection), and the carry is the mid of the
 * row before -- what the loop over those buckets would have left. */
typedef struct {
    const lob_agg_input *in;
    const lob_agg_opts *o;
    const lob_agg_output *out;
    agg_need need;
    int64_t first;  /* TIME: the first bucket's number (its start / every) */
    agg_span *read; /* TIME: what each task read */
    size_t n, per;
} agg_job;

AGG_INLINE int
fill_time_(void *arg, size_t i, lob_error *err, const int wide)
{
    const agg_job *j = arg;
    const lob_agg_input *in = j->in;
    const size_t nb = in->n_book, nt = in->n_trades, n = j->n;
    const int64_t *bts = in->book_ts, *tts = in->trade_ts, every = j->o->every;
    const agg_book bk = {in->bid, in->ask, in->px_stride, in->n_book, in->valid};
    const agg_need need = j->need;
    const lob_agg_output out = *j->out; /* a copy: no store into a column can change it */
    size_t k = i * j->per, k1 = n - k > j->per ? k + j->per : n, next_poll = 0;
    /* the start of bucket k < n lies in [0, hi] (see time_span) */
    const int64_t start0 = (j->first + (int64_t)k) * every;
    size_t b = need.rows && k > 0 ? gallop(bts, 0, nb, start0) : 0;
    size_t t = need.trades && k > 0 ? gallop(tts, 0, nt, start0) : 0;
    double carry = b > 0 ? mid_at(&bk, b - 1) : NAN;
    const int fused = need.sums; /* the trades' ends found by their sums */
    /* dense blocks where the rows may be (no open, high or low; a book to take the close from) */
    const int dense = every <= DENSE_EVERY_MAX && (nb > 0 || !need.close);
    agg_dense d;
    agg_span *read = j->read + i;
    *read = (agg_span){b, b, t, t, 1};
    while (k < k1) {
        const size_t kb = k1 - k > DENSE_BUCKETS ? k + DENSE_BUCKETS : k1;
        /* each block checks the rows and trades it read while they are in the caches: the
         * order of each row with the one before, but where the dense pass compared them */
        read->ok &= rows_ok(bts, read->b1, b) && trade_rows_ok(in, read->t1, t);
        read->b1 = b;
        read->t1 = t;
        if (dense && kb < n) {
            if (k + b + t >= next_poll) {
                LOB_FORWARD_IF_ERROR(lob_poll_stop(err));
                next_poll = k + b + t + LOB_POLL_ROWS;
            }
            if (dense_block(in, &bk, &need, j->o, &out, j->first, k, kb, &b, &t, &carry, &d,
                            wide)) {
                const size_t b0 = read->b1, t0 = read->t1;
                read->ok &= !d.disorder && !d.unchecked && rows_ok(bts, b0, b0 + (b > b0)) &&
                            rows_ok(tts, t0, t0 + (t > t0));
                read->b1 = b0 + d.ordered < b ? b0 + d.ordered : b;
                read->t1 = t0 + d.checked < t ? t0 + d.checked : t;
                k = kb;
                continue;
            }
        }
        for (; k < kb; k++) {
            /* the end of bucket k + 1 < n lies in [0, hi] too, never the start of a bucket n; the
             * last bucket takes every row and trade left, all below INT64_MAX */
            int64_t start = (j->first + (int64_t)k) * every;
            if (k + b + t >= next_poll) { /* a stop check every LOB_POLL_ROWS buckets and rows */
                LOB_FORWARD_IF_ERROR(lob_poll_stop(err));
                next_poll = k + b + t + LOB_POLL_ROWS;
            }
            int64_t end = k + 1 < n ? start + every : INT64_MAX;
            if (need.close && !need.ohlc) {
                prefetch_close(&bk, b);
            }
            size_t b1 = need.rows ? run_end(bts, b, nb, end) : b;
            size_t t1 = t;
            agg_sums sums;
            if (fused) {
                t1 = trades_until(tts, in->trade_px, in->trade_qty, in->trade_side, t, nt, end,
                                  need.sides, &sums);
            }
            else if (need.trades) {
                t1 = run_end(tts, t, nt, end);
            }
            put_bucket(in, &bk, &need, j->o, &out, k, start, b, b1, t, t1, fused ? &sums : NULL,
                       &carry, wide);
            b = b1;
            t = t1;
        }
    }
    read->ok &= rows_ok(bts, read->b1, b) && trade_rows_ok(in, read->t1, t);
    read->b1 = b;
    read->t1 = t;
    return 0;
}

AGG_INLINE int
fill_events_(void *arg, size_t i, lob_error *err, const int wide)
{
    const agg_job *j = arg;
    const lob_agg_input *in = j->in;
    const size_t nb = in->n_book, nt = in->n_trades, every = (size_t)j->o->every;
    const int64_t *bts = in->book_ts, *tts = in->trade_ts;
    const agg_book bk = {in->bid, in->ask, in->px_stride, in->n_book, in->valid};
    const agg_need need = j->need;
    const lob_agg_output out = *j->out; /* a copy: no store into a column can change it */
    size_t k = i * j->per, k1 = j->n - k > j->per ? k + j->per : j->n, next_poll = 0;
    size_t b = k * every;
    /* trades before the first book row belong to no bucket */
    size_t t = gallop(tts, 0, nt, bts[b]);
    double carry = b > 0 ? mid_at(&bk, b - 1) : NAN;
    for (; k < k1; k++) {
        if (k + b + t >= next_poll) {
            LOB_FORWARD_IF_ERROR(lob_poll_stop(err));
            next_poll = k + b + t + LOB_POLL_ROWS;
        }
        size_t b1 = nb - b <= every ? nb : b + every;
        int64_t end = b1 < nb ? bts[b1] : INT64_MAX; /* the last bucket: every trade left */
        agg_sums sums;
        size_t t1 = need.sums ? trades_until(tts, in->trade_px, in->trade_qty, in->trade_side, t,
                                             nt, end, need.sides, &sums)
                              : run_end(tts, t, nt, end);
        put_bucket(in, &bk, &need, j->o, &out, k, bts[b], b, b1, t, t1, need.sums ? &sums : NULL,
                   &carry, wide);
        b = b1;
        t = t1;
    }
    return 0;
}

/* VOLUME buckets: where one ends depends on every trade before it, so one pass, in order. */
AGG_INLINE int
fill_volume_(void *arg, size_t i, lob_error *err, const int wide)
{
    (void)i;
    const agg_job *j = arg;
    const lob_agg_input *in = j->in;
    const size_t nb = in->n_book, nt = in->n_trades;
    const int64_t *bts = in->book_ts, *tts = in->trade_ts;
    const agg_book bk = {in->bid, in->ask, in->px_stride, in->n_book, in->valid};
    const agg_need need = j->need;
    const lob_agg_output out = *j->out; /* a copy: no store into a column can change it */
    double carry = NAN;
    /* book rows before the first trade are in no bucket but set the carry */
    size_t b = nt > 0 ? gallop(bts, 0, nb, tts[0]) : nb, t = 0, k = 0, next_poll = 0;
    if (b > 0) {
        carry = mid_at(&bk, b - 1);
    }
    for (; t < nt && k < j->n; k++) {
        if (k + b + t >= next_poll) {
            LOB_FORWARD_IF_ERROR(lob_poll_stop(err));
            next_poll = k + b + t + LOB_POLL_ROWS;
        }
        /* the same sums as lob_agg_count(): the same buckets */
        size_t t1 = volume_end(in->trade_qty, t, nt, j->o->volume);
        size_t b1 = need.rows ? run_end(bts, b, nb, t1 < nt ? tts[t1] : INT64_MAX) : nb;
        put_bucket(in, &bk, &need, j->o, &out, k, tts[t], b, b1, t, t1, NULL, &carry, wide);
        b = b1;
        t = t1;
    }
    if (k != j->n || t < nt) {
        return lob_error_set(err, LOB_E_ARG, "room for %zu buckets, not the count of the input",
                             j->n);
    }
    return 0;
}

/* Each fill as a task, built twice where the compiler can: for any x86-64 and for AVX-512
 * (short buckets by mids_short()); lob_agg_fill() picks by the CPU it runs on.  The two give
 * the same bars, bit for bit. */
#define AGG_TASKS(name)                                                                            \
    static int name(void *arg, size_t i, lob_error *err)                                           \
    {                                                                                              \
        return name##_(arg, i, err, 0);                                                            \
    }                                                                                              \
    AGG_WIDE_TASK(name)
#if LOB_HAVE_AVX512
#define AGG_WIDE_TASK(name)                                                                        \
    LOB_AVX512 static int name##_wide(void *arg, size_t i, lob_error *err)                         \
    {                                                                                              \
        return name##_(arg, i, err, 1);                                                            \
    }
#else
#define AGG_WIDE_TASK(name)                                                                        \
    static int name##_wide(void *arg, size_t i, lob_error *err)                                    \
    {                                                                                              \
        return name(arg, i, err);                                                                  \
    }
#endif
AGG_TASKS(fill_time)
AGG_TASKS(fill_events)
AGG_TASKS(fill_volume)

/* After a TIME fill: the inputs passed their checks if each task's rows and trades did and
 * the tasks read them all, each range where the one before it ended (they do when the times
 * are in order; out of order, the bisections of their starts may skip or read again).  The
 * inputs a fill did not read (no column needs them) are checked here.  Where the quick checks
 * doubt (a bad row, or a size of -0.0, which is allowed), the first bad row is named, as
 * lob_agg_count() does for the other kinds. */
static int
time_read_ok(const lob_agg_input *in, const agg_need *need, const agg_span *read, size_t tasks,
             int threads, lob_error *err)
{
    int ok = 1, covered = 1;
    size_t b = 0, t = 0;
    for (size_t i = 0; i < tasks; i++) {
        ok &= read[i].ok;
        covered &= (!need->rows || read[i].b0 == b) && (!need->trades || read[i].t0 == t);
        b = read[i].b1;
        t = read[i].t1;
    }
    covered &= (!need->rows || b == in->n_book) && (!need->trades || t == in->n_trades);
    if (ok && covered && (!need->rows || !need->trades)) {
        ok = inputs_ok(in, threads, !need->rows, !need->trades);
    }
    if (ok && covered) {
        return 0;
    }
    LOB_FORWARD_IF_ERROR(named_checks(in, err));
    /* the times are in order: the tasks read every row once */
    return covered ? 0 : lob_error_set(err, LOB_E_ARG, "the bars read the rows out of order");
}

int
lob_agg_fill(const lob_agg_input *in, const lob_agg_opts *o, size_t n_out,
             const lob_agg_output *out, int threads, lob_error *err)
{
    const int wide = lob_has_avx512();
    agg_job job = {.in = in, .o = o, .out = out, .need = need_of(o, out), .n = n_out};
    size_t n = n_out;
    if (o->by == LOB_AGG_TIME) {
        LOB_FORWARD_IF_ERROR(time_span(in, o->every, &job.first, &n, err));
    }
    else if (o->by == LOB_AGG_EVENTS) {
        n = in->n_book == 0 ? 0 : (in->n_book - 1) / (uint64_t)o->every + 1;
    }
    else {
        return wide ? fill_volume_wide(&job, 0, err) : fill_volume(&job, 0, err);
    }
    if (n != n_out) {
        return lob_error_set(err, LOB_E_ARG, "room for %zu buckets, %zu needed", n_out, n);
    }
    /* No split under LOB_PARALLEL_MIN_ROWS buckets; else 16 ranges per thread of AGG_RANGE_MIN
     * buckets at least: short tasks even out a core that the machine lends elsewhere for a
     * while (benchmarks/PROFILE.md), and each costs only the bisection of its start. */
    size_t ranges = threads > 1 && n >= (size_t)LOB_PARALLEL_MIN_ROWS ? 16 * (size_t)threads : 1;
    ranges = ranges < AGG_MAX_RANGES ? ranges : AGG_MAX_RANGES;
    job.per = (n + ranges - 1) / ranges;
    job.per = job.per < AGG_RANGE_MIN ? AGG_RANGE_MIN : job.per;
    const size_t tasks = n == 0 ? 0 : (n - 1) / job.per + 1;
    if (o->by == LOB_AGG_EVENTS) {
        return lob_run_tasks(tasks, threads, wide ? fill_events_wide : fill_events, &job, err);
    }
    agg_span read[AGG_MAX_RANGES];
    job.read = read;
    LOB_FORWARD_IF_ERROR(
        lob_run_tasks(tasks, threads, wide ? fill_time_wide : fill_time, &job, err));
    return time_read_ok(in, &job.need, read, tasks, threads, err);
}
