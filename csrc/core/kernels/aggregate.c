/* aggregate.c -- bars from book mids and trades (see aggregate.h for the rules). */
#include "core/kernels/aggregate.h"

#include <math.h>
#include <stdio.h>

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

/* The mid of book row i, or NaN where the row is a gap (not valid, or a side empty). */
static inline double
row_mid(const lob_agg_input *in, size_t i)
{
    size_t j = i * in->px_stride;
    double m = (in->bid[j] + in->ask[j]) / 2;
    return in->valid != NULL && !in->valid[i] ? NAN : m;
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
lob_agg_count(const lob_agg_input *in, const lob_agg_opts *o, size_t *n_out, lob_error *err)
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
    char what[64];
    snprintf(what, sizeof what, "%s ts", book);
    LOB_FORWARD_IF_ERROR(lob_check_times(in->book_ts, (int64_t)in->n_book, 1, what, err));
    LOB_FORWARD_IF_ERROR(lob_check_times(in->trade_ts, (int64_t)in->n_trades, 1, "trades ts", err));
    LOB_FORWARD_IF_ERROR(check_trades(in, err));

    size_t n = 0;
    if (o->by == LOB_AGG_TIME) {
        int64_t first;
        LOB_FORWARD_IF_ERROR(time_span(in, o->every, &first, &n, err));
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

/* One bucket's running sums. */
typedef struct {
    double open, high, low, close; /* over the rows with a mid; open NaN: none yet */
    double vol, pq, buy, sell;     /* over the trades */
} agg_acc;

/* Short scans before galloping: a bucket usually holds a handful of rows, and one loop that
 * tests each against the edge mispredicts once, where a gallop then a loop over the run
 * would mispredict twice.  Past this many rows, the gallop finds the edge. */
#define SCAN 8

static void
acc_reset(agg_acc *a)
{
    a->open = a->close = NAN;
    a->high = -INFINITY;
    a->low = INFINITY;
    a->vol = a->pq = a->buy = a->sell = 0;
}

/* NaN mids are rare, so the test for them is a well-predicted branch; a select there would
 * chain every row to the previous one through integer registers.  Trade sides are a coin
 * flip, so they are summed with 0/1 factors instead of branches. */
static inline void
add_mid(agg_acc *a, double m)
{
    if (m == m) {
        if (a->open != a->open) {
            a->open = m; /* the first mid */
        }
        a->high = m > a->high ? m : a->high;
        a->low = m < a->low ? m : a->low;
        a->close = m; /* the last mid */
    }
}

static inline void
add_trade(agg_acc *a, const lob_agg_input *in, size_t j)
{
    double q = in->trade_qty[j]; /* finite: q * 0.0 is 0 and q * 1.0 is q, exactly */
    a->vol += q;
    a->pq += in->trade_px[j] * q;
    a->buy += q * (double)(in->trade_side[j] > 0);
    a->sell += q * (double)(in->trade_side[j] < 0);
}

/* The loops below sum into a local copy of the accumulator, which stays in registers. */
static void
add_rows(agg_acc *a, const lob_agg_input *in, size_t b, size_t b1)
{
    agg_acc s = *a;
    for (; b < b1; b++) {
        add_mid(&s, row_mid(in, b));
    }
    *a = s;
}

static void
add_trades(agg_acc *a, const lob_agg_input *in, size_t t, size_t t1)
{
    agg_acc s = *a;
    for (; t < t1; t++) {
        add_trade(&s, in, t);
    }
    *a = s;
}

/* Book rows from b while ts < end; returns one past the last. */
static size_t
rows_until(agg_acc *a, const lob_agg_input *in, size_t b, int64_t end)
{
    const int64_t *ts = in->book_ts;
    size_t n = in->n_book, stop = n - b > SCAN ? b + SCAN : n;
    agg_acc s = *a;
    for (; b < stop && ts[b] < end; b++) {
        add_mid(&s, row_mid(in, b));
    }
    *a = s;
    if (b == stop && b < n && ts[b] < end) { /* a long run */
        size_t b1 = gallop(ts, b, n, end);
        add_rows(a, in, b, b1);
        b = b1;
    }
    return b;
}

/* Trades from t while ts < end; returns one past the last. */
static size_t
trades_until(agg_acc *a, const lob_agg_input *in, size_t t, int64_t end)
{
    const int64_t *ts = in->trade_ts;
    size_t n = in->n_trades, stop = n - t > SCAN ? t + SCAN : n;
    agg_acc s = *a;
    for (; t < stop && ts[t] < end; t++) {
        add_trade(&s, in, t);
    }
    *a = s;
    if (t == stop && t < n && ts[t] < end) {
        size_t t1 = gallop(ts, t, n, end);
        add_trades(a, in, t, t1);
        t = t1;
    }
    return t;
}

/* Write bucket k (book rows [b0, b1), trades [t0, t1), summed in `a`).  *carry is the mid of
 * the last book row seen so far (NaN if none or a gap) and moves past this bucket's rows. */
static void
put_bucket(const lob_agg_input *in, const lob_agg_opts *o, const lob_agg_output *out, size_t k,
           int64_t start, size_t b0, size_t b1, size_t t0, size_t t1, const agg_acc *a,
           double *carry)
{
    if (b1 > b0) {
        *carry = row_mid(in, b1 - 1); /* a gap as the last row ends the carry */
    }
    int none = a->open != a->open; /* no mid of its own: the carry */
    double close = none ? *carry : a->close;
    double vwap = a->pq / a->vol; /* 0 / 0 where there is no volume: replaced below */
    out->ts[k] = start;
    out->mid_open[k] = none ? *carry : a->open;
    out->mid_high[k] = none ? *carry : a->high;
    out->mid_low[k] = none ? *carry : a->low;
    out->mid_close[k] = close;
    out->vwap[k] = a->vol > 0 ? vwap : (o->empty_vwap_mid ? close : NAN);
    out->volume[k] = a->vol;
    out->buy_volume[k] = a->buy;
    out->sell_volume[k] = a->sell;
    out->trades[k] = (int64_t)(t1 - t0);
    out->updates[k] = (int64_t)(b1 - b0);
}

int
lob_agg_fill(const lob_agg_input *in, const lob_agg_opts *o, size_t n_out,
             const lob_agg_output *out, lob_error *err)
{
    const size_t nb = in->n_book, nt = in->n_trades;
    const int64_t *bts = in->book_ts, *tts = in->trade_ts;
    double carry = NAN;
    size_t b = 0, t = 0, k = 0, next_poll = 0;
    agg_acc a;

    if (o->by == LOB_AGG_TIME) {
        int64_t first;
        size_t n;
        LOB_FORWARD_IF_ERROR(time_span(in, o->every, &first, &n, err));
        if (n != n_out) {
            return lob_error_set(err, LOB_E_ARG, "room for %zu buckets, %zu needed", n_out, n);
        }
        for (; k < n; k++) {
            if (k + b + t >= next_poll) { /* a stop check every LOB_POLL_ROWS buckets and rows */
                LOB_FORWARD_IF_ERROR(lob_poll_stop(err));
                next_poll = k + b + t + LOB_POLL_ROWS;
            }
            /* start and end lie in [0, hi]: no overflow (see time_span) */
            int64_t start = (first + (int64_t)k) * o->every;
            size_t b1 = nb, t1 = nt;
            acc_reset(&a);
            if (k + 1 < n) {
                b1 = rows_until(&a, in, b, start + o->every);
                t1 = trades_until(&a, in, t, start + o->every);
            }
            else { /* the last bucket: everything left */
                add_rows(&a, in, b, nb);
                add_trades(&a, in, t, nt);
            }
            put_bucket(in, o, out, k, start, b, b1, t, t1, &a, &carry);
            b = b1;
            t = t1;
        }
        return 0;
    }

    if (o->by == LOB_AGG_EVENTS) {
        size_t every = (size_t)o->every;
        /* trades before the first book row belong to no bucket */
        t = nb > 0 ? gallop(tts, 0, nt, bts[0]) : nt;
        for (; b < nb && k < n_out; k++) {
            if (k + b + t >= next_poll) {
                LOB_FORWARD_IF_ERROR(lob_poll_stop(err));
                next_poll = k + b + t + LOB_POLL_ROWS;
            }
            size_t b1 = nb - b <= every ? nb : b + every, t1 = nt;
            acc_reset(&a);
            add_rows(&a, in, b, b1);
            if (b1 < nb) {
                t1 = trades_until(&a, in, t, bts[b1]);
            }
            else {
                add_trades(&a, in, t, nt);
            }
            put_bucket(in, o, out, k, bts[b], b, b1, t, t1, &a, &carry);
            b = b1;
            t = t1;
        }
    }
    else {
        /* book rows before the first trade are in no bucket but set the carry */
        b = nt > 0 ? gallop(bts, 0, nb, tts[0]) : nb;
        if (b > 0) {
            carry = row_mid(in, b - 1);
        }
        for (; t < nt && k < n_out; k++) {
            if (k + b + t >= next_poll) {
                LOB_FORWARD_IF_ERROR(lob_poll_stop(err));
                next_poll = k + b + t + LOB_POLL_ROWS;
            }
            size_t t1 = t, b1 = nb;
            acc_reset(&a);
            while (t1 < nt) { /* the same sums as volume_end(): the same buckets */
                add_trade(&a, in, t1++);
                if (a.vol >= o->volume) {
                    break;
                }
            }
            if (t1 < nt) {
                b1 = rows_until(&a, in, b, tts[t1]);
            }
            else {
                add_rows(&a, in, b, nb);
            }
            put_bucket(in, o, out, k, tts[t], b, b1, t, t1, &a, &carry);
            b = b1;
            t = t1;
        }
    }
    if (k != n_out || (o->by == LOB_AGG_EVENTS ? b < nb : t < nt)) {
        return lob_error_set(err, LOB_E_ARG, "room for %zu buckets, not the count of the input",
                             n_out);
    }
    return 0;
}
