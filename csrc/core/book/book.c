/* book.c -- Level-2 book reconstruction from DepthEvents rows (see book.h for the layout). */
#include "core/book/book.h"

#include "core/book/side.h"
#include "core/schema.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define MAX_DECIMALS 12
#define NO_BOUND INT64_MIN

/* Most grid rows one batch may produce: a grid is sized before anything is allocated, and a
 * grid that fine over that long a span is a mistake (every=1 over a day is 8.6e13 rows), not
 * a request for hundreds of gigabytes. */
#define GRID_MAX_ROWS (INT64_C(1) << 31)

static const double pow10_exact[MAX_DECIMALS + 1] = {1e0, 1e1, 1e2, 1e3,  1e4,  1e5, 1e6,
                                                     1e7, 1e8, 1e9, 1e10, 1e11, 1e12};

/* One side: levels keyed by dir * tick (side.h: the best is the largest key), so the
 * same code serves bids (highest tick best) and asks (lowest tick best). */
typedef struct {
    lob_side lv;     /* the levels */
    int dir;         /* +1 bids, -1 asks */
    int64_t bound;   /* lowest key of the last snapshot (its deepest level), or NO_BOUND */
    int64_t changed; /* message number of the last change to this side (crossed repair) */
} book_side;

struct lob_book_s {
    lob_book_opts o;               /* options */
    book_side bid, ask;            /* the two sides */
    int decimals;                  /* ticks = price * 10^decimals */
    int known;                     /* a RESET was applied and no GAP since */
    int in_snapshot;               /* inside a run of SNAPSHOT rows */
    int at_boundary;               /* the last row ended a message (or nothing fed yet) */
    int fed;                       /* any row fed */
    int broken;                    /* a batch failed half-applied: refuse more */
    int grid_done;                 /* no grid time is left before the end of int64 ns */
    int gap_next;                  /* the message about to be applied follows a sequence break */
    lob_table held;                /* a batch's trailing message, until its last row arrives */
    int64_t seen;                  /* rows validated so far (error positions) */
    int64_t seen_ts;               /* ts of the last row validated (sortedness) */
    int64_t last_ts;               /* ts of the last row (sortedness) */
    int64_t last_msg_ts;           /* ts of the last message (staleness) */
    int64_t last_uid;              /* update id of the last message */
    int64_t next_grid;             /* next grid time to emit (every_ns > 0) */
    int64_t rows;                  /* rows fed so far (error positions) */
    int64_t msg;                   /* messages completed */
    lob_column schema[LOB_B_NCOL]; /* output columns (width = levels) */
    int64_t *top_key;              /* scratch: `levels` keys of one side, best first */
    double *top_qty;               /* scratch: their sizes */
    lob_table out;                 /* BookSnapshots rows */
    /* counters */
    int64_t n_crossed, n_repairs, n_orphans, n_pruned, n_unknown_deletes, n_gaps, n_resets,
        n_invalid, n_stale, n_before_gap;
};

/* ------------------------------------------------------------------ sides */

/* Set the level at `key` to qty (0 deletes).  @return 1 if the side changed, 0, or
 * LOB_E_NOMEM. */
static int
side_set(lob_book *b, book_side *s, int64_t key, double qty)
{
    int rc = lob_side_set(&s->lv, key, qty);
    if (rc == 0 && qty == 0) {
        b->n_unknown_deletes++; /* normal on Binance: levels outside the snapshot */
    }
    return rc;
}

/* ------------------------------------------------------------------ prices */

/* Ticks of `px` at the book's decimals, adding decimals (and rescaling the book) when the
 * price needs more.  The test is a round trip: the tick must give back exactly the same
 * double.  Exact parsing makes that true of every price written with at most `decimals`
 * places (the parser computes the same tick / 10^decimals), and false of any other double,
 * so a price is never keyed to a level it only approximates (0.1 + 0.2 is not 0.3). */
static __attribute__((noinline)) int
price_ticks_slow(lob_book *b, double px, int64_t *tick)
{
    for (;;) {
        double x = px * pow10_exact[b->decimals];
        if (!(x < 4503599627370496.0)) { /* 2^52: beyond this ticks are not exact */
            return LOB_E_RANGE;
        }
        double r = rint(x);
        if (r / pow10_exact[b->decimals] == px) {
            *tick = (int64_t)r;
            return LOB_OK;
        }
        if (b->decimals == MAX_DECIMALS) {
            return LOB_E_RANGE;
        }
        /* rescale what the book holds (rare: the first prices fix the grid), unless a key
         * would leave the range where ticks are exact */
        for (int s = 0; s < 2; s++) {
            const book_side *sd = s ? &b->ask : &b->bid;
            int64_t big = sd->bound != NO_BOUND ? llabs(sd->bound) : 0;
            if (sd->lv.n > 0) {
                int64_t lo = llabs(lob_side_worst(&sd->lv)), hi = llabs(lob_side_best(&sd->lv));
                big = lo > big ? lo : big;
                big = hi > big ? hi : big;
            }
            if (big >= 450359962737049LL) { /* 2^52 / 10 */
                return LOB_E_RANGE;
            }
        }
        /* the windows empty into the far parts first (the only step that can fail), so
         * that both sides rescale or neither does */
        if (lob_side_unwindow(&b->bid.lv) < 0 || lob_side_unwindow(&b->ask.lv) < 0) {
            return LOB_E_NOMEM;
        }
        for (int s = 0; s < 2; s++) {
            book_side *sd = s ? &b->ask : &b->bid;
            lob_side_scale(&sd->lv, 10);
            if (sd->bound != NO_BOUND) {
                sd->bound *= 10;
            }
        }
        b->decimals++;
    }
}

/* Whether px is on the grid of 1 / p10 (*tick then holds its tick): price_ticks_slow()'s
 * test for every row but a few, in one multiply, one rounding and one divide.  Prices are positive
 * (validate), so 0 <= x < 2^52 and x + 2^52 has no fraction bits left: the sum is x rounded to the
 * nearest integer, ties to even (rint's rounding), and taking 2^52 off again is exact.  (ISO C mode
 * keeps the compiler from fusing or reassociating these.) */
static inline int
on_grid(double p10, double px, int64_t *tick)
{
    double x = px * p10;
    if (x < 4503599627370496.0) {
        double r = (x + 4503599627370496.0) - 4503599627370496.0;
        if (r / p10 == px) {
            *tick = (int64_t)r;
            return 1;
        }
    }
    return 0;
}

static inline int
price_ticks(lob_book *b, double px, int64_t *tick)
{
    return on_grid(pow10_exact[b->decimals], px, tick) ? LOB_OK : price_ticks_slow(b, px, tick);
}

static double
tick_price(const lob_book *b, int64_t tick)
{
    return (double)tick / pow10_exact[b->decimals]; /* both exact: the parsed double again */
}

/* ------------------------------------------------------------------ output */

static int
crossed(const lob_book *b)
{
    return b->bid.lv.n > 0 && b->ask.lv.n > 0 &&
           lob_side_best(&b->bid.lv) >= -lob_side_best(&b->ask.lv);
}

/* The book as it stands describes the exchange's: a snapshot was applied and no break came
 * since (known), the last message was applied whole (at_boundary: a RESET alone, or a
 * snapshot cut before its END_OF_MESSAGE, is not a book), both sides hold levels, and it is
 * not crossed. */
static int
consistent(const lob_book *b)
{
    return b->known && b->at_boundary && b->bid.lv.n > 0 && b->ask.lv.n > 0 && !crossed(b);
}

static int
emit(lob_book *b, int64_t ts)
{
    lob_table *t = &b->out;
    LOB_FORWARD_IF_ERROR(lob_table_room(t, 1));
    size_t r = t->n++;
    int L = b->o.levels;
    LOB_COL(t, LOB_B_TS, int64_t)[r] = ts;
    LOB_COL(t, LOB_B_UPDATE_ID, int64_t)[r] = b->last_uid;
    const book_side *sides[2] = {&b->bid, &b->ask};
    for (int s = 0; s < 2; s++) {
        const book_side *sd = sides[s];
        double *px = LOB_COL(t, s ? LOB_B_ASK_PX : LOB_B_BID_PX, double) + r * (size_t)L;
        double *sz = LOB_COL(t, s ? LOB_B_ASK_SZ : LOB_B_BID_SZ, double) + r * (size_t)L;
        size_t got = lob_side_top(&sd->lv, (size_t)L, b->top_key, b->top_qty);
        for (size_t k = 0; k < (size_t)L; k++) {
            px[k] = k < got ? tick_price(b, sd->dir * b->top_key[k]) : NAN;
            sz[k] = k < got ? b->top_qty[k] : 0;
        }
    }
    /* both times lie in [LOB_TS_MIN, LOB_TS_MAX] (validate), so the difference fits */
    int stale = b->o.max_stale_ns > 0 && ts - b->last_msg_ts > b->o.max_stale_ns;
    /* a grid row after the last message when the next one reveals a break: the updates
     * lost in the break happened somewhere in between, so the row's book may lack them */
    int before_gap = b->gap_next && ts > b->last_msg_ts;
    int valid = consistent(b) && !stale && !before_gap;
    b->n_stale += stale;
    b->n_before_gap += before_gap;
    b->n_invalid += !valid;
    LOB_COL(t, LOB_B_VALID, uint8_t)[r] = (uint8_t)valid;
    return LOB_OK;
}

/* Grid rows for every multiple of every_ns before `ts` (the book after all events <= it). */
static int
emit_grid_until(lob_book *b, int64_t ts, int inclusive, lob_error *err)
{
    for (int64_t k = 1; !b->grid_done && (inclusive ? b->next_grid <= ts : b->next_grid < ts);
         k++) {
        if (emit(b, b->next_grid) < 0) {
            return lob_error_set(err, LOB_E_NOMEM, "no memory for the grid rows");
        }
        if (lob_ts_add(b->next_grid, b->o.every_ns, &b->next_grid) < 0) {
            b->grid_done = 1; /* the next grid time is past the end of int64 ns */
        }
        if (LOB_POLL_DUE(k)) {
            LOB_FORWARD_IF_ERROR(lob_poll_stop(err));
        }
    }
    return LOB_OK;
}

/* *first = the first multiple of every at or after ts (ts >= 0, every > 0).
 * @return 1 when that is past the end of int64 ns, else 0. */
static int
grid_first(int64_t ts, int64_t every, int64_t *first)
{
    int64_t q = ts / every + (ts % every > 0);
    return __builtin_mul_overflow(q, every, first);
}

/* ------------------------------------------------------------------ messages */

static int
end_message(lob_book *b, int64_t ts, int64_t uid, lob_error *err)
{
    b->msg++;
    b->last_msg_ts = ts;
    b->last_uid = uid;
    if (b->in_snapshot) {
        b->in_snapshot = 0;
    }
    if (crossed(b)) {
        b->n_crossed++;
        if (b->o.crossed == LOB_CROSSED_RAISE) {
            return lob_error_set(err, LOB_E_FORMAT,
                                 "row %lld: the book is crossed after this message (best bid "
                                 "%.12g >= best ask %.12g)",
                                 (long long)b->rows, tick_price(b, lob_side_best(&b->bid.lv)),
                                 tick_price(b, -lob_side_best(&b->ask.lv)));
        }
        if (b->o.crossed == LOB_CROSSED_REPAIR) {
            /* the side changed least recently holds the stale levels: drop those of its
             * levels that cross the other side's best (keys: dir * tick, best largest) */
            int bid_stale = b->bid.changed < b->ask.changed;
            book_side *stale = bid_stale ? &b->bid : &b->ask;
            const book_side *fresh = bid_stale ? &b->ask : &b->bid;
            int64_t limit = -lob_side_best(&fresh->lv); /* the fresh best, as a stale key */
            while (stale->lv.n > 0 && lob_side_best(&stale->lv) >= limit) {
                lob_side_pop_best(&stale->lv);
                b->n_repairs++;
            }
        }
    }
    if (b->o.every_ns == 0 && emit(b, ts) < 0) {
        return lob_error_set(err, LOB_E_NOMEM, "no memory for the book rows");
    }
    return LOB_OK;
}

/* The flags of a row that breaks the sequence (GAP) or starts a snapshot (RESET). */
static void
apply_marks(lob_book *b, unsigned flags)
{
    if (flags & LOB_F_GAP) {
        b->known = 0;
        b->n_gaps++;
    }
    if (flags & LOB_F_RESET) {
        lob_side_clear(&b->bid.lv);
        lob_side_clear(&b->ask.lv);
        b->bid.bound = b->ask.bound = NO_BOUND;
        b->known = 1;
        b->in_snapshot = 1;
        b->n_resets++;
    }
}

static int
apply_row(lob_book *b, int64_t ts, int side, double px, double qty, unsigned flags, lob_error *err)
{
    if (flags & (LOB_F_GAP | LOB_F_RESET)) {
        apply_marks(b, flags);
    }
    if (side == 0) {
        return LOB_OK; /* a marker row: flags only */
    }
    int64_t tick;
    int rc = price_ticks(b, px, &tick);
    if (rc == LOB_E_NOMEM) {
        return lob_error_set(err, rc, "out of memory for the book");
    }
    if (rc < 0) {
        return lob_error_set(err, rc,
                             "row %lld: price %.17g is not on a decimal grid of at most %d places "
                             "(or is too large to key exactly)",
                             (long long)b->rows, px, MAX_DECIMALS);
    }
    book_side *s = side > 0 ? &b->bid : &b->ask;
    int64_t key = s->dir * tick;
    if ((flags & LOB_F_SNAPSHOT) && b->in_snapshot) {
        if (s->bound == NO_BOUND || key < s->bound) {
            s->bound = key; /* deepest snapshot level so far */
        }
    }
    else if (key < s->bound) { /* never true of NO_BOUND (INT64_MIN) */
        /* deeper than the snapshot reached: the level is real but its neighbours are not
         * known, and nothing will ever delete what the snapshot did not list */
        if (qty > 0) {
            b->n_orphans++;
        }
        if (b->o.prune_orphans) {
            b->n_pruned++;
            return LOB_OK;
        }
    }
    rc = side_set(b, s, key, qty);
    if (rc < 0) {
        return lob_error_set(err, rc, "out of memory for the book");
    }
    if (rc > 0) {
        s->changed = b->msg + 1;
    }
    (void)ts;
    return LOB_OK;
}

static int feed_rows(lob_book *b, const lob_depth_view *v, lob_error *err);

/* Refuse a batch whose grid would have more than GRID_MAX_ROWS rows (times are already
 * checked: they lie in [LOB_TS_MIN, LOB_TS_MAX]). */
static int
check_grid_size(const lob_book *b, const lob_depth_view *v, lob_error *err)
{
    if (b->o.every_ns == 0 || v->n == 0 || b->grid_done) {
        return LOB_OK;
    }
    int64_t first = b->next_grid, last = v->ts[v->n - 1], span;
    /* before any row was applied, the grid starts at the first row: a held-back one's */
    int64_t first_ts = b->held.n ? LOB_COL(&b->held, LOB_D_TS, int64_t)[0] : v->ts[0];
    if (!b->fed && grid_first(first_ts, b->o.every_ns, &first)) {
        return LOB_OK;
    }
    if (lob_ts_sub(last, first, &span) < 0 || span < 0) {
        return LOB_OK; /* first > last (the sub only fails when first is far past last) */
    }
    int64_t rows = span / b->o.every_ns + 1;
    if (rows > GRID_MAX_ROWS) {
        return lob_error_set(err, LOB_E_ARG,
                             "a grid every %lld ns from %lld to %lld ns would have %lld rows in "
                             "this batch, more than the limit of %lld: use a coarser every, or "
                             "feed shorter chunks",
                             (long long)b->o.every_ns, (long long)first, (long long)last,
                             (long long)rows, (long long)GRID_MAX_ROWS);
    }
    return LOB_OK;
}

/* validate()'s rules row by row over rows [from, to), naming the first row that breaks one;
 * prev is the time of the row before `from`. */
static int
validate_rows(const lob_book *b, const lob_depth_view *v, size_t from, size_t to, int64_t prev,
              lob_error *err)
{
    for (size_t i = from; i < to; i++) {
        long long row = (long long)(b->seen + (int64_t)i);
        int64_t ts = v->ts[i];
        int side = v->side[i];
        double px = v->price[i], qty = v->qty[i];
        unsigned flags = v->flags[i];
        if (ts < LOB_TS_MIN || ts > LOB_TS_MAX) {
            /* lob_check_times' rule, with rows counted from the first row ever fed */
            return ts == INT64_MIN
                       ? lob_error_set(err, LOB_E_ARG, "row %lld: ts is NaT (a missing time)", row)
                       : lob_error_set(err, LOB_E_ARG,
                                       "row %lld: ts %lld ns is outside 1970-01-01..2262-01-01",
                                       row, (long long)ts);
        }
        if ((b->seen > 0 || i > 0) && ts < prev) {
            return lob_error_set(err, LOB_E_FORMAT,
                                 "row %lld: ts %lld is before the previous row's %lld (rows must "
                                 "be sorted by ts)",
                                 row, (long long)ts, (long long)prev);
        }
        prev = ts;
        if (side != 1 && side != -1 && !(side == 0 && (flags & (LOB_F_GAP | LOB_F_RESET)))) {
            return lob_error_set(err, LOB_E_FORMAT,
                                 "row %lld: side must be +1 (bid) or -1 (ask), not %d "
                                 "(0 only on GAP or RESET marker rows)",
                                 row, side);
        }
        if (side != 0 && !(px > 0 && isfinite(px))) {
            return lob_error_set(err, LOB_E_FORMAT,
                                 "row %lld: price must be positive and finite, not %.17g", row, px);
        }
        if (side != 0 && !(qty >= 0 && isfinite(qty))) {
            return lob_error_set(err, LOB_E_FORMAT,
                                 "row %lld: qty must be >= 0 and finite, not %.17g", row, qty);
        }
    }
    return LOB_OK;
}

/* Whether rows [from, to) keep validate_rows()'s rules with no marker row among them, at a
 * glance: times in order (then the first and last in range are enough), sides +-1, prices
 * finite and > 0, sizes finite and >= 0 (NaN fails every comparison).  Two doubles or 16 sides
 * per SSE2 compare, as gcc -O2 vectorises no form of these loops; a chunk that fails (or holds
 * a marker row) goes row by row. */
static int
rows_plain(const lob_depth_view *v, size_t from, size_t to, int64_t prev)
{
    if (from == to) {
        return 1;
    }
    int bad = v->ts[from] < LOB_TS_MIN || v->ts[to - 1] > LOB_TS_MAX;
    for (size_t i = from; i < to; i++) {
        bad |= v->ts[i] < prev;
        prev = v->ts[i];
    }
    size_t i = from;
#if defined(__SSE2__)
    const __m128d zero = _mm_setzero_pd(), big = _mm_set1_pd(DBL_MAX);
    __m128d ok = _mm_castsi128_pd(_mm_set1_epi32(-1));
    for (; i + 2 <= to; i += 2) {
        __m128d p = _mm_loadu_pd(v->price + i), q = _mm_loadu_pd(v->qty + i);
        ok = _mm_and_pd(ok, _mm_and_pd(_mm_cmpgt_pd(p, zero), _mm_cmple_pd(p, big)));
        ok = _mm_and_pd(ok, _mm_and_pd(_mm_cmpge_pd(q, zero), _mm_cmple_pd(q, big)));
    }
    bad |= _mm_movemask_pd(ok) != 3;
#endif
    for (; i < to; i++) {
        double px = v->price[i], qty = v->qty[i];
        bad |= !(px > 0 && px <= DBL_MAX && qty >= 0 && qty <= DBL_MAX);
    }
    i = from;
#if defined(__SSE2__)
    const __m128i one = _mm_set1_epi8(1), minus = _mm_set1_epi8(-1);
    for (; i + 16 <= to; i += 16) {
        __m128i sd = _mm_loadu_si128((const __m128i *)(const void *)(v->side + i));
        __m128i pm = _mm_or_si128(_mm_cmpeq_epi8(sd, one), _mm_cmpeq_epi8(sd, minus));
        bad |= _mm_movemask_epi8(pm) != 0xFFFF;
    }
#endif
    for (; i < to; i++) {
        bad |= v->side[i] != 1 && v->side[i] != -1;
    }
    return !bad;
}

/* Check a batch before applying any of it, so bad input leaves the book as it was: a glance
 * per LOB_POLL_ROWS rows, and the row by row check where it sees anything else. */
static int
validate(const lob_book *b, const lob_depth_view *v, lob_error *err)
{
    for (size_t from = 0; from < v->n; from += LOB_POLL_ROWS) {
        size_t to = v->n - from > LOB_POLL_ROWS ? from + LOB_POLL_ROWS : v->n;
        /* before the first row ever fed, nothing: validate_rows() skips that row's order */
        int64_t prev = from > 0 ? v->ts[from - 1] : b->seen_ts;
        LOB_FORWARD_IF_ERROR(lob_poll_stop(err));
        if (!rows_plain(v, from, to, from == 0 && b->seen == 0 ? INT64_MIN : prev)) {
            LOB_FORWARD_IF_ERROR(validate_rows(b, v, from, to, prev, err));
        }
    }
    return check_grid_size(b, v, err);
}

/* Apply whole messages: reserve the output once, then the rows. */
static int
apply_view(lob_book *b, const lob_depth_view *v, lob_error *err)
{
    /* size the output once: growing it row by row would copy it as it grows */
    size_t rows_out = 0;
    if (b->o.every_ns > 0) {
        /* at most GRID_MAX_ROWS + 1 (check_grid_size) */
        int64_t first = b->fed ? b->next_grid : (v->n ? v->ts[0] : 0), span;
        if (v->n > 0 && !b->grid_done && lob_ts_sub(v->ts[v->n - 1], first, &span) == 0) {
            rows_out = span >= 0 ? (size_t)(span / b->o.every_ns) + 2 : 0;
        }
    }
    else {
        for (size_t i = 0; i < v->n; i++) {
            rows_out += (v->flags[i] & LOB_F_END_OF_MESSAGE) != 0;
        }
    }
    if (lob_table_room(&b->out, rows_out) < 0) {
        return lob_error_set(err, LOB_E_NOMEM, "no memory for %zu output rows", rows_out);
    }
    int rc = feed_rows(b, v, err);
    b->broken = rc < 0; /* a failure while applying leaves a half-applied message */
    return rc;
}

/* Rows [from, to) of v join the held-back message. */
static int
hold(lob_book *b, const lob_depth_view *v, size_t from, size_t to)
{
    size_t k = to - from;
    lob_table *t = &b->held;
    if (k == 0) {
        return LOB_OK;
    }
    LOB_FORWARD_IF_ERROR(lob_table_room(t, k));
    memcpy(LOB_COL(t, LOB_D_TS, int64_t) + t->n, v->ts + from, k * sizeof *v->ts);
    memcpy(LOB_COL(t, LOB_D_LOCAL_TS, int64_t) + t->n, v->ts + from, k * sizeof *v->ts);
    memcpy(LOB_COL(t, LOB_D_SIDE, int8_t) + t->n, v->side + from, k * sizeof *v->side);
    memcpy(LOB_COL(t, LOB_D_PRICE, double) + t->n, v->price + from, k * sizeof *v->price);
    memcpy(LOB_COL(t, LOB_D_QTY, double) + t->n, v->qty + from, k * sizeof *v->qty);
    memcpy(LOB_COL(t, LOB_D_UPDATE_ID, int64_t) + t->n, v->update_id + from,
           k * sizeof *v->update_id);
    memcpy(LOB_COL(t, LOB_D_FLAGS, uint8_t) + t->n, v->flags + from, k * sizeof *v->flags);
    t->n += k;
    return LOB_OK;
}

/* Apply the held-back rows and forget them. */
static int
apply_held(lob_book *b, lob_error *err)
{
    lob_table *t = &b->held;
    lob_depth_view h = {LOB_COL(t, LOB_D_TS, int64_t),
                        LOB_COL(t, LOB_D_SIDE, int8_t),
                        LOB_COL(t, LOB_D_PRICE, double),
                        LOB_COL(t, LOB_D_QTY, double),
                        LOB_COL(t, LOB_D_UPDATE_ID, int64_t),
                        LOB_COL(t, LOB_D_FLAGS, uint8_t),
                        t->n};
    int rc = h.n ? apply_view(b, &h, err) : LOB_OK;
    t->n = 0;
    return rc;
}

int
lob_book_feed(lob_book *b, const lob_depth_view *v, lob_error *err)
{
    if (b->broken) {
        return lob_error_set(err, LOB_E_ARG,
                             "this book stopped at an error in an earlier batch; start a new one");
    }
    LOB_FORWARD_IF_ERROR(validate(b, v, err));
    b->seen += (int64_t)v->n;
    if (v->n > 0) {
        b->seen_ts = v->ts[v->n - 1];
    }
    /* A message is applied whole, once its last row (and so its time) is known: a batch's
     * trailing message waits for the next batch, so where batches are cut never matters. */
    size_t start = 0;
    if (b->held.n > 0) {
        size_t e = 0;
        while (e < v->n && !(v->flags[e] & LOB_F_END_OF_MESSAGE)) {
            e++;
        }
        start = e < v->n ? e + 1 : v->n;
        if (hold(b, v, 0, start) < 0) {
            return lob_error_set(err, LOB_E_NOMEM, "no memory for a held-back message");
        }
        if (e == v->n) {
            return LOB_OK; /* the message goes on in the next batch */
        }
        LOB_FORWARD_IF_ERROR(apply_held(b, err));
    }
    size_t cut = v->n;
    while (cut > start && !(v->flags[cut - 1] & LOB_F_END_OF_MESSAGE)) {
        cut--;
    }
    lob_depth_view body = {v->ts + start,        v->side + start,  v->price + start, v->qty + start,
                           v->update_id + start, v->flags + start, cut - start};
    LOB_FORWARD_IF_ERROR(apply_view(b, &body, err));
    if (hold(b, v, cut, v->n) < 0) {
        return lob_error_set(err, LOB_E_NOMEM, "no memory for a held-back message");
    }
    return LOB_OK;
}

/* Rows from *at on that only set levels (no flag, side +-1, price on the grid), up to the
 * first that is anything else or due a poll: apply_row()'s work for the rows inside a message
 * (all but its last, which carries END_OF_MESSAGE), without the flag cases and with the
 * counters in locals.  *at moves past the rows applied.  @return 0 or LOB_E_NOMEM. */
static int
apply_levels(lob_book *b, const lob_depth_view *v, size_t *at, lob_error *err)
{
    const int8_t *side = v->side;
    const uint8_t *flags = v->flags;
    const double p10 = pow10_exact[b->decimals];
    const int64_t mark = b->msg + 1;
    int64_t orphans = 0, pruned = 0, unknown = 0;
    int rc = LOB_OK;
    size_t i = *at;
    for (; i < v->n && flags[i] == 0 && side[i] != 0 && !LOB_POLL_DUE(i); i++) {
        double px = v->price[i], qty = v->qty[i];
        int64_t tick;
        if (!on_grid(p10, px, &tick)) {
            break; /* more decimals, or an error: apply_row() */
        }
        book_side *s = side[i] > 0 ? &b->bid : &b->ask;
        int64_t key = s->dir * tick;
        if (key < s->bound) { /* an orphan (see apply_row); never true of NO_BOUND */
            orphans += qty > 0;
            if (b->o.prune_orphans) {
                pruned++;
                continue;
            }
        }
        if ((rc = lob_side_set(&s->lv, key, qty)) < 0) {
            break;
        }
        unknown += rc == 0; /* only a delete leaves a side as it was */
        if (rc > 0) {
            s->changed = mark;
        }
    }
    b->n_orphans += orphans;
    b->n_pruned += pruned;
    b->n_unknown_deletes += unknown;
    b->rows += (int64_t)(i - *at);
    if (i == v->n && i > *at) {
        b->last_ts = v->ts[i - 1]; /* else the next row, applied by feed_rows, sets it */
    }
    *at = i;
    return rc < 0 ? lob_error_set(err, rc, "out of memory for the book") : LOB_OK;
}

static int
feed_rows(lob_book *b, const lob_depth_view *v, lob_error *err)
{
    for (size_t i = 0; i < v->n; i++, b->rows++) {
        int64_t ts = v->ts[i];
        int side = v->side[i];
        double px = v->price[i], qty = v->qty[i];
        unsigned flags = v->flags[i];
        if (LOB_POLL_DUE(i)) {
            LOB_FORWARD_IF_ERROR(lob_poll_stop(err));
        }
        if (b->o.every_ns > 0) {
            if (!b->fed) {
                b->grid_done = grid_first(ts, b->o.every_ns, &b->next_grid);
            }
            if (b->at_boundary) {
                /* a message takes effect at its last row's time: grid points before that
                 * show the book as it was, never part of a message that ends later.  Rows
                 * come in whole messages (lob_book_feed holds a batch's trailing one back),
                 * so the next message is always known here, and with it whether a sequence
                 * break comes before it: grid rows after the last message are then invalid,
                 * wherever the batches were cut. */
                size_t j = i;
                unsigned any = v->flags[j];
                while (j + 1 < v->n && !(v->flags[j] & LOB_F_END_OF_MESSAGE)) {
                    any |= v->flags[++j];
                }
                b->gap_next = (any & LOB_F_GAP) != 0;
                int rc = emit_grid_until(b, v->ts[j], 0, err);
                b->gap_next = 0;
                LOB_FORWARD_IF_ERROR(rc);
            }
        }
        b->fed = 1;
        b->last_ts = ts;
        LOB_FORWARD_IF_ERROR(apply_row(b, ts, side, px, qty, flags, err));
        b->at_boundary = (flags & LOB_F_END_OF_MESSAGE) != 0;
        if (b->at_boundary) {
            LOB_FORWARD_IF_ERROR(end_message(b, ts, v->update_id[i], err));
        }
        else {
            size_t next = i + 1; /* the rest of the message: rows i + 1 .. next - 1 */
            int rc = apply_levels(b, v, &next, err);
            i = next - 1;
            LOB_FORWARD_IF_ERROR(rc);
        }
    }
    return LOB_OK;
}

int
lob_book_finish(lob_book *b, lob_error *err)
{
    if (b->broken) {
        return lob_error_set(err, LOB_E_ARG,
                             "this book stopped at an error in an earlier batch; start a new one");
    }
    LOB_FORWARD_IF_ERROR(apply_held(b, err)); /* an unterminated last message */
    if (b->o.every_ns > 0 && b->fed) {
        int rc = emit_grid_until(b, b->last_ts, 1, err);
        b->broken = rc < 0;
        return rc;
    }
    return LOB_OK;
}

/* ------------------------------------------------------------------ lifecycle, queries */

int
lob_book_new(lob_book **out, const lob_book_opts *o, lob_error *err)
{
    *out = NULL;
    if (o->levels < 1 || o->levels > 65535) {
        return lob_error_set(err, LOB_E_ARG, "levels must be between 1 and 65535, not %d",
                             o->levels);
    }
    if (o->every_ns < 0 || o->max_stale_ns < 0 || o->every_ns > ((int64_t)1 << 62)) {
        return lob_error_set(err, LOB_E_ARG,
                             "every and max_stale must be between 0 and 2^62 ns (146 years)");
    }
    lob_book *b = calloc(1, sizeof *b);
    if (b == NULL) {
        return lob_error_set(err, LOB_E_NOMEM, "no memory for a book");
    }
    b->o = *o;
    b->bid.dir = 1;
    b->ask.dir = -1;
    b->bid.bound = b->ask.bound = NO_BOUND;
    b->at_boundary = 1;
    b->last_uid = -1;
    lob_book_schema_levels(b->schema, o->levels);
    lob_table_init(&b->out, b->schema, LOB_B_NCOL);
    lob_table_init(&b->held, lob_depth_schema, LOB_D_NCOL);
    b->top_key = malloc((size_t)o->levels * sizeof *b->top_key);
    b->top_qty = malloc((size_t)o->levels * sizeof *b->top_qty);
    if (b->top_key == NULL || b->top_qty == NULL) {
        lob_book_free(b);
        return lob_error_set(err, LOB_E_NOMEM, "no memory for a book");
    }
    *out = b;
    return LOB_OK;
}

void
lob_book_free(lob_book *b)
{
    if (b == NULL) {
        return;
    }
    lob_side_free(&b->bid.lv);
    lob_side_free(&b->ask.lv);
    free(b->top_key);
    free(b->top_qty);
    lob_table_free(&b->out);
    lob_table_free(&b->held);
    free(b);
}

lob_table *
lob_book_output(lob_book *b)
{
    return &b->out;
}

size_t
lob_book_side_size(const lob_book *b, int side)
{
    return side > 0 ? b->bid.lv.n : b->ask.lv.n;
}

int
lob_book_side(const lob_book *b, int side, double *px, double *qty, size_t *n)
{
    const book_side *s = side > 0 ? &b->bid : &b->ask;
    int64_t *keys = malloc((s->lv.n ? s->lv.n : 1) * sizeof *keys);
    if (keys == NULL) {
        return LOB_E_NOMEM;
    }
    *n = lob_side_top(&s->lv, s->lv.n, keys, qty);
    for (size_t k = 0; k < *n; k++) {
        px[k] = tick_price(b, s->dir * keys[k]);
    }
    free(keys);
    return LOB_OK;
}

int
lob_book_stats(const lob_book *b, const char **names, int64_t *values, int cap)
{
    const char *n[] = {"rows",          "messages",       "resets",
                       "gaps",          "crossed",        "repairs",
                       "orphan_levels", "orphans_pruned", "unknown_deletes",
                       "invalid_rows",  "stale_rows",     "decimals",
                       "bid_levels",    "ask_levels",     "known",
                       "valid",         "before_gap_rows"};
    int64_t v[] = {b->rows,
                   b->msg,
                   b->n_resets,
                   b->n_gaps,
                   b->n_crossed,
                   b->n_repairs,
                   b->n_orphans,
                   b->n_pruned,
                   b->n_unknown_deletes,
                   b->n_invalid,
                   b->n_stale,
                   b->decimals,
                   (int64_t)b->bid.lv.n,
                   (int64_t)b->ask.lv.n,
                   b->known,
                   consistent(b),
                   b->n_before_gap};
    int k = 0;
    for (size_t i = 0; i < sizeof v / sizeof v[0] && k < cap; i++, k++) {
        names[k] = n[i];
        values[k] = v[i];
    }
    return k;
}
