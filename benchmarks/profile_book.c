/* profile_book.c -- where the C order book (csrc/core/book/book.c) spends its time, without Python.
 *
 * Build (from the repository root; book.c is compiled INTO this driver so the stats stage can
 * look at the sides, hence the other core files only on the command line):
 *   cc -O2 -g -std=c11 -Icsrc benchmarks/profile_book.c $(ls csrc/core/*.c csrc/core/*/*.c | grep -v book.c) \
 *      $(pkg-config --cflags --libs libzstd zlib) -lm -o /tmp/profile_book
 * Run:
 *   /tmp/profile_book tests/data/binance/usdm_btcusdt_20240808.gz [replays [iterations [stage]]]
 *   perf record /tmp/profile_book FILE 10 21 feed; perf report
 *   valgrind --tool=callgrind /tmp/profile_book FILE 1 1 feed
 *
 * The depth rows of FILE (a Binance recording, read as read_binance does) are replayed
 * `replays` times end to end (ts shifted past the previous copy, each copy starting with its
 * RESET snapshot), as benchmarks/bench_book.py does.  Stages (median of the iterations):
 *   feed      lob_book_feed with levels=10, every=0: reconstruct(levels=10) without Python
 *   grid      the same with every=100ms (few output rows: the book updates alone)
 *   validate  book.c's validate() pass alone (every row checked before any is applied)
 *   stats     one instrumented pass: what each level row does to the sorted side (update,
 *             insert, delete, unknown delete), how far from the top it lands, how many
 *             entries memmove shifts, and how many rows the linear top scan resolves
 *   proto-*   stand-alone sketches of the same hot path (price -> tick, set/delete a level,
 *             top-10 row per message) to size the suggestions in PROFILE.md:
 *     proto-base    book.c's layout and search (sorted array, best at the end, TOP_SCAN = 8
 *                   linear probes, then a branchy binary search of the rest)
 *     proto-nobranch  base with only the binary search made branch-free (the smallest change)
 *     proto-gallop  galloping search from the top (8, 16, 32, ... from the end) and a
 *                   branch-free binary search inside the bracket; memmove as in base
 *     proto-block   sides as sorted blocks of at most 128 levels (best block last): a
 *                   search touches one block index + one block, an insert or delete shifts
 *                   at most one block
 * The sketches skip validation, flags other than RESET / END_OF_MESSAGE, orphans and the
 * valid mask; their outputs are checked equal to lob_book's before timing.
 */
#define _GNU_SOURCE
#include "core/book/book.c" /* static internals for the stats stage */
#include "core/io/reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LEVELS 10

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ------------------------------------------------------------------ input */

typedef struct {
    int64_t *ts, *uid;
    int8_t *side;
    double *px, *qty;
    uint8_t *flags;
    size_t n;
} rows_t;

static void *
xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

/* The depth rows of `path`, replayed `reps` times with ts shifted past the previous copy. */
static rows_t
load(const char *path, int reps)
{
    lob_error err = {0};
    lob_opts opts;
    memset(&opts, 0, sizeof opts);
    opts.start_ns = INT64_MIN;
    opts.end_ns = INT64_MAX;
    lob_reader *r = NULL;
    int eof = 0;
    if (lob_reader_new(&r, &lob_format_binance, &opts, 0, &err) < 0 ||
        lob_reader_open(r, path, &err) < 0 || lob_reader_pump(r, 0, &eof, &err) < 0 ||
        lob_reader_finish(r, &err) < 0) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
        exit(1);
    }
    lob_table *t = lob_reader_table(r, 0); /* depth */
    size_t n = t->n;
    if (n == 0 || !(LOB_COL(t, LOB_D_FLAGS, uint8_t)[0] & LOB_F_RESET)) {
        fprintf(stderr, "%s: the depth rows must start with a RESET snapshot\n", path);
        exit(1);
    }
    const int64_t *ts = LOB_COL(t, LOB_D_TS, int64_t);
    int64_t shift = ((ts[n - 1] - ts[0]) / 1000000000 + 2) * 1000000000; /* whole seconds */
    rows_t v;
    v.n = n * (size_t)reps;
    v.ts = xmalloc(v.n * 8);
    v.uid = xmalloc(v.n * 8);
    v.side = xmalloc(v.n);
    v.px = xmalloc(v.n * 8);
    v.qty = xmalloc(v.n * 8);
    v.flags = xmalloc(v.n);
    for (int k = 0; k < reps; k++) {
        size_t o = (size_t)k * n;
        for (size_t i = 0; i < n; i++) {
            v.ts[o + i] = ts[i] + (int64_t)k * shift;
        }
        memcpy(v.uid + o, LOB_COL(t, LOB_D_UPDATE_ID, int64_t), n * 8);
        memcpy(v.side + o, LOB_COL(t, LOB_D_SIDE, int8_t), n);
        memcpy(v.px + o, LOB_COL(t, LOB_D_PRICE, double), n * 8);
        memcpy(v.qty + o, LOB_COL(t, LOB_D_QTY, double), n * 8);
        memcpy(v.flags + o, LOB_COL(t, LOB_D_FLAGS, uint8_t), n);
    }
    lob_reader_free(r);
    return v;
}

static lob_depth_view
view_of(const rows_t *v, size_t from, size_t n)
{
    lob_depth_view d = {v->ts + from,
                        v->side + from,
                        v->px + from,
                        v->qty + from,
                        v->uid + from,
                        v->flags + from,
                        n};
    return d;
}

/* ------------------------------------------------------------------ lob_book runs */

static lob_book *
run_book(const rows_t *v, int64_t every_ns)
{
    lob_book_opts o = {LEVELS, every_ns, LOB_CROSSED_FLAG, 0, 0};
    lob_error err = {0};
    lob_book *b = NULL;
    lob_depth_view d = view_of(v, 0, v->n);
    if (lob_book_new(&b, &o, &err) < 0 || lob_book_feed(b, &d, &err) < 0 ||
        lob_book_finish(b, &err) < 0) {
        fprintf(stderr, "book: %s\n", err.msg);
        exit(1);
    }
    return b;
}

/* ------------------------------------------------------------------ stats */

static const char *const depth_names[] = {"top (0)", "1-7", "8-63", "64-511", "512-999", ">= 1000"};

static int
depth_bucket(size_t d)
{
    return d == 0 ? 0 : d < 8 ? 1 : d < 64 ? 2 : d < 512 ? 3 : d < 1000 ? 4 : 5;
}

static void
stats(const rows_t *v)
{
    lob_book_opts o = {LEVELS, 0, LOB_CROSSED_FLAG, 0, 0};
    lob_error err = {0};
    lob_book *b = NULL;
    lob_book_new(&b, &o, &err);
    enum { UPD, INS, DEL, UNK, NOP };
    const char *op_names[] = {"update", "insert", "delete", "unknown delete"};
    int64_t ops[NOP] = {0}, by_depth[NOP][6] = {{0}}, scanned[NOP] = {0}, orphan[NOP] = {0};
    double moved[NOP] = {0}; /* entries shifted by memmove (key + qty each) */
    int64_t levels_sum = 0, level_rows = 0;
    for (size_t i = 0; i < v->n; i++) {
        int side = v->side[i];
        if (side != 0 && !(v->flags[i] & LOB_F_RESET)) {
            book_side *s = side > 0 ? &b->bid : &b->ask;
            int64_t tick;
            if (price_ticks(b, v->px[i], &tick) == LOB_OK) {
                int64_t key = s->dir * tick;
                int found;
                size_t at = side_find(s, key, &found);
                int op = v->qty[i] > 0 ? (found ? UPD : INS) : (found ? DEL : UNK);
                size_t from_top = found ? s->n - 1 - at : s->n - at;
                ops[op]++;
                by_depth[op][depth_bucket(from_top)]++;
                scanned[op] += from_top < TOP_SCAN;
                orphan[op] += s->bound != NO_BOUND && key < s->bound;
                moved[op] += op == INS   ? (double)(s->n - at)
                             : op == DEL ? (double)(s->n - at - 1)
                                         : 0;
                levels_sum += (int64_t)s->n;
                level_rows++;
            }
        }
        lob_depth_view d = view_of(v, i, 1);
        if (lob_book_feed(b, &d, &err) < 0) {
            fprintf(stderr, "book: %s\n", err.msg);
            exit(1);
        }
    }
    int64_t total = 0;
    for (int k = 0; k < NOP; k++) {
        total += ops[k];
    }
    printf("\none replay: %lld level rows (snapshot rows included); mean levels on the row's side: "
           "%.0f\n",
           (long long)total, (double)levels_sum / (double)level_rows);
    printf("%-15s %7s %9s %9s %16s", "op", "share", "top-scan", "orphans", "memmove B/row");
    for (int k = 0; k < 6; k++) {
        printf(" %8s", depth_names[k]);
    }
    printf("\n");
    double moved_all = 0;
    for (int k = 0; k < NOP; k++) {
        moved_all += moved[k];
        printf("%-15s %6.1f%% %8.1f%% %8.1f%% %16.0f", op_names[k],
               100.0 * (double)ops[k] / (double)total,
               100.0 * (double)scanned[k] / (double)(ops[k] ? ops[k] : 1),
               100.0 * (double)orphan[k] / (double)(ops[k] ? ops[k] : 1),
               ops[k] ? 16.0 * moved[k] / (double)ops[k] : 0.0);
        for (int j = 0; j < 6; j++) {
            printf(" %7.1f%%", 100.0 * (double)by_depth[k][j] / (double)(ops[k] ? ops[k] : 1));
        }
        printf("\n");
    }
    printf("memmove: %.1f MB per replay, %.0f bytes per level row on average\n",
           16.0 * moved_all / 1e6, 16.0 * moved_all / (double)total);
    lob_book_free(b);
}

/* ------------------------------------------------------------------ sketches */

/* Output of a sketch: one row of LEVELS (px, sz) per side per message. */
typedef struct {
    double *bpx, *bsz, *apx, *asz;
    size_t n, cap;
} top_out;

static void
out_init(top_out *o, size_t cap)
{
    o->n = 0;
    o->cap = cap;
    o->bpx = xmalloc(cap * LEVELS * 8);
    o->bsz = xmalloc(cap * LEVELS * 8);
    o->apx = xmalloc(cap * LEVELS * 8);
    o->asz = xmalloc(cap * LEVELS * 8);
}

static void
out_free(top_out *o)
{
    free(o->bpx);
    free(o->bsz);
    free(o->apx);
    free(o->asz);
}

/* Fixed decimal grid for the sketches (the real book finds it; USD-M BTC: 1). */
static double scale;

static int64_t
to_tick(double px)
{
    return (int64_t)rint(px * scale);
}

/* --- base and gallop: book.c's layout (sorted ascending key = dir * tick, best last) */
typedef struct {
    int64_t *key;
    double *qty;
    size_t n, cap;
} arr_side;

static size_t
find_base(const arr_side *s, int64_t key, int *found)
{
    size_t i = s->n;
    size_t stop = s->n > TOP_SCAN ? s->n - TOP_SCAN : 0;
    for (; i > stop; i--) {
        int64_t k = s->key[i - 1];
        if (k <= key) {
            *found = k == key;
            return *found ? i - 1 : i;
        }
    }
    size_t lo = 0, hi = stop;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->key[mid] < key) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    *found = lo < stop && s->key[lo] == key;
    return lo;
}

/* First index in [lo, hi) whose key is >= key, without data-dependent branches. */
static inline size_t
lower_bound_branchless(const int64_t *a, size_t lo, size_t hi, int64_t key)
{
    const int64_t *base = a + lo;
    size_t len = hi - lo;
    while (len > 1) {
        size_t half = len / 2;
        base += (size_t)(base[half - 1] < key) * half; /* no branch: setcc + multiply */
        len -= half;
    }
    return (size_t)(base - a) + (len == 1 && *base < key);
}

static size_t
find_gallop(const arr_side *s, int64_t key, int *found)
{
    size_t n = s->n;
    /* gallop down from the top: brackets [n - 2d, n - d) with d = 1, 2, 4, 8, ... */
    size_t hi = n, step = 1;
    while (hi > 0) {
        size_t lo = hi > step ? hi - step : 0;
        if (s->key[lo] <= key) {
            size_t i = lower_bound_branchless(s->key, lo, hi, key);
            *found = i < n && s->key[i] == key;
            return i;
        }
        hi = lo;
        step *= 2;
    }
    *found = n > 0 && s->key[0] == key;
    return 0;
}

/* book.c's search with only its binary search made branch-free */
static size_t
find_nobranch(const arr_side *s, int64_t key, int *found)
{
    size_t i = s->n;
    size_t stop = s->n > TOP_SCAN ? s->n - TOP_SCAN : 0;
    for (; i > stop; i--) {
        int64_t k = s->key[i - 1];
        if (k <= key) {
            *found = k == key;
            return *found ? i - 1 : i;
        }
    }
    size_t lo = lower_bound_branchless(s->key, 0, stop, key);
    *found = lo < stop && s->key[lo] == key;
    return lo;
}

typedef size_t (*find_fn)(const arr_side *, int64_t, int *);

static void
arr_set(arr_side *s, find_fn find, int64_t key, double qty)
{
    int found;
    size_t i = find(s, key, &found);
    if (qty == 0) {
        if (found) {
            memmove(s->key + i, s->key + i + 1, (s->n - i - 1) * sizeof *s->key);
            memmove(s->qty + i, s->qty + i + 1, (s->n - i - 1) * sizeof *s->qty);
            s->n--;
        }
        return;
    }
    if (found) {
        s->qty[i] = qty;
        return;
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 1024;
        s->key = realloc(s->key, s->cap * sizeof *s->key);
        s->qty = realloc(s->qty, s->cap * sizeof *s->qty);
    }
    memmove(s->key + i + 1, s->key + i, (s->n - i) * sizeof *s->key);
    memmove(s->qty + i + 1, s->qty + i, (s->n - i) * sizeof *s->qty);
    s->key[i] = key;
    s->qty[i] = qty;
    s->n++;
}

static void
arr_top(const arr_side *s, int dir, double *px, double *sz)
{
    for (size_t k = 0; k < LEVELS; k++) {
        if (k < s->n) {
            px[k] = (double)(dir * s->key[s->n - 1 - k]) / scale; /* exact, as tick_price() */
            sz[k] = s->qty[s->n - 1 - k];
        }
        else {
            px[k] = NAN;
            sz[k] = 0;
        }
    }
}

static void
proto_arr(const rows_t *v, find_fn find, top_out *o)
{
    arr_side sd[2];
    memset(sd, 0, sizeof sd);
    o->n = 0;
    for (size_t i = 0; i < v->n; i++) {
        unsigned f = v->flags[i];
        if (f & LOB_F_RESET) {
            sd[0].n = sd[1].n = 0;
        }
        int side = v->side[i];
        if (side != 0) {
            arr_side *s = &sd[side < 0];
            arr_set(s, find, side * to_tick(v->px[i]), v->qty[i]);
        }
        if (f & LOB_F_END_OF_MESSAGE) {
            size_t r = o->n++ * LEVELS;
            arr_top(&sd[0], 1, o->bpx + r, o->bsz + r);
            arr_top(&sd[1], -1, o->apx + r, o->asz + r);
        }
    }
    for (int k = 0; k < 2; k++) {
        free(sd[k].key);
        free(sd[k].qty);
    }
}

static void
proto_base(const rows_t *v, top_out *o)
{
    proto_arr(v, find_base, o);
}

static void
proto_nobranch(const rows_t *v, top_out *o)
{
    proto_arr(v, find_nobranch, o);
}

static void
proto_gallop(const rows_t *v, top_out *o)
{
    proto_arr(v, find_gallop, o);
}

/* --- block: sorted blocks of at most BLK levels, ascending; the best level is the last
 * entry of the last block.  `hi[b]` is block b's largest key (its last). */
#define BLK 128

typedef struct {
    int64_t key[BLK];
    double qty[BLK];
    int n;
} block;

typedef struct {
    block **b;     /* nb blocks, ascending */
    int64_t *last; /* last key of each block */
    size_t nb, cap;
    size_t n; /* levels */
} blk_side;

static void
blk_clear(blk_side *s)
{
    for (size_t k = 0; k < s->nb; k++) {
        free(s->b[k]);
    }
    s->nb = 0;
    s->n = 0;
}

static void
blk_insert_block(blk_side *s, size_t at, block *nbk)
{
    if (s->nb == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->b = realloc(s->b, s->cap * sizeof *s->b);
        s->last = realloc(s->last, s->cap * sizeof *s->last);
    }
    memmove(s->b + at + 1, s->b + at, (s->nb - at) * sizeof *s->b);
    memmove(s->last + at + 1, s->last + at, (s->nb - at) * sizeof *s->last);
    s->b[at] = nbk;
    s->last[at] = nbk->key[nbk->n - 1];
    s->nb++;
}

static void
blk_set(blk_side *s, int64_t key, double qty)
{
    size_t nb = s->nb;
    size_t bi;
    if (nb == 0) {
        if (qty == 0) {
            return;
        }
        block *nbk = xmalloc(sizeof *nbk);
        nbk->n = 1;
        nbk->key[0] = key;
        nbk->qty[0] = qty;
        blk_insert_block(s, 0, nbk);
        s->n = 1;
        return;
    }
    if (s->last[nb - 1] < key) {
        bi = nb - 1; /* above everything: append to the top block */
    }
    else {
        /* the first block whose last key is >= key, galloping down from the top block
         * (whose last key is known to be >= key) */
        size_t hi = nb - 1, step = 1;
        for (;;) {
            if (hi < step) {
                bi = lower_bound_branchless(s->last, 0, hi + 1, key);
                break;
            }
            size_t lo = hi - step;
            if (s->last[lo] < key) {
                bi = lower_bound_branchless(s->last, lo + 1, hi + 1, key);
                break;
            }
            hi = lo;
            step *= 2;
        }
    }
    block *bk = s->b[bi];
    size_t i = lower_bound_branchless(bk->key, 0, (size_t)bk->n, key);
    int found = i < (size_t)bk->n && bk->key[i] == key;
    if (qty == 0) {
        if (!found) {
            return;
        }
        memmove(bk->key + i, bk->key + i + 1, ((size_t)bk->n - i - 1) * 8);
        memmove(bk->qty + i, bk->qty + i + 1, ((size_t)bk->n - i - 1) * 8);
        bk->n--;
        s->n--;
        if (bk->n == 0) {
            free(bk);
            memmove(s->b + bi, s->b + bi + 1, (s->nb - bi - 1) * sizeof *s->b);
            memmove(s->last + bi, s->last + bi + 1, (s->nb - bi - 1) * sizeof *s->last);
            s->nb--;
        }
        else {
            s->last[bi] = bk->key[bk->n - 1];
        }
        return;
    }
    if (found) {
        bk->qty[i] = qty;
        return;
    }
    if (bk->n == BLK) { /* split in halves, then insert into the right one */
        block *nbk = xmalloc(sizeof *nbk);
        nbk->n = BLK / 2;
        memcpy(nbk->key, bk->key + BLK / 2, (BLK / 2) * 8);
        memcpy(nbk->qty, bk->qty + BLK / 2, (BLK / 2) * 8);
        bk->n = BLK / 2;
        s->last[bi] = bk->key[bk->n - 1];
        blk_insert_block(s, bi + 1, nbk);
        if (i >= BLK / 2) {
            bk = nbk;
            bi++;
            i -= BLK / 2;
        }
    }
    memmove(bk->key + i + 1, bk->key + i, ((size_t)bk->n - i) * 8);
    memmove(bk->qty + i + 1, bk->qty + i, ((size_t)bk->n - i) * 8);
    bk->key[i] = key;
    bk->qty[i] = qty;
    bk->n++;
    s->last[bi] = bk->key[bk->n - 1];
    s->n++;
}

static void
blk_top(const blk_side *s, int dir, double *px, double *sz)
{
    size_t k = 0;
    for (size_t bi = s->nb; bi > 0 && k < LEVELS; bi--) {
        const block *bk = s->b[bi - 1];
        for (int j = bk->n - 1; j >= 0 && k < LEVELS; j--, k++) {
            px[k] = (double)(dir * bk->key[j]) / scale; /* exact, as tick_price() */
            sz[k] = bk->qty[j];
        }
    }
    for (; k < LEVELS; k++) {
        px[k] = NAN;
        sz[k] = 0;
    }
}

static void
proto_block(const rows_t *v, top_out *o)
{
    blk_side sd[2];
    memset(sd, 0, sizeof sd);
    o->n = 0;
    for (size_t i = 0; i < v->n; i++) {
        unsigned f = v->flags[i];
        if (f & LOB_F_RESET) {
            blk_clear(&sd[0]);
            blk_clear(&sd[1]);
        }
        int side = v->side[i];
        if (side != 0) {
            blk_set(&sd[side < 0], side * to_tick(v->px[i]), v->qty[i]);
        }
        if (f & LOB_F_END_OF_MESSAGE) {
            size_t r = o->n++ * LEVELS;
            blk_top(&sd[0], 1, o->bpx + r, o->bsz + r);
            blk_top(&sd[1], -1, o->apx + r, o->asz + r);
        }
    }
    for (int k = 0; k < 2; k++) {
        blk_clear(&sd[k]);
        free(sd[k].b);
        free(sd[k].last);
    }
}

/* Sketch output == lob_book's per-message output (NaN == NaN). */
static int
same_as_book(const top_out *o, lob_book *b)
{
    lob_table *t = lob_book_output(b);
    if (t->n != o->n) {
        return 0;
    }
    const double *cols[4] = {o->bpx, o->bsz, o->apx, o->asz};
    int ids[4] = {LOB_B_BID_PX, LOB_B_BID_SZ, LOB_B_ASK_PX, LOB_B_ASK_SZ};
    for (int c = 0; c < 4; c++) {
        const double *want = LOB_COL(t, ids[c], double);
        for (size_t i = 0; i < o->n * LEVELS; i++) {
            if (!(want[i] == cols[c][i] || (isnan(want[i]) && isnan(cols[c][i])))) {
                return 0;
            }
        }
    }
    return 1;
}

/* ------------------------------------------------------------------ driver */

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE [replays [iterations [stage]]]\n", argv[0]);
        return 2;
    }
    int reps = argc > 2 ? atoi(argv[2]) : 10;
    int iters = argc > 3 ? atoi(argv[3]) : 11;
    const char *only = argc > 4 ? argv[4] : NULL;
    reps = reps < 1 ? 1 : reps;
    iters = iters < 1 ? 1 : iters;
    rows_t v = load(argv[1], reps);
    int64_t level_rows = 0;
    for (size_t i = 0; i < v.n; i++) {
        level_rows += v.side[i] != 0;
    }
    printf("%zu rows (%d replays), %lld level updates\n", v.n, reps, (long long)level_rows);

    lob_book *ref = run_book(&v, 0);
    scale = pow10_exact[ref->decimals];
    size_t msgs = lob_book_output(ref)->n;

    double *t = xmalloc(sizeof(double) * (size_t)iters);
    printf("%-14s %10s %12s\n", "stage", "median ms", "M updates/s");
    struct {
        const char *name;
        int64_t every;
    } book_stages[] = {{"feed", 0}, {"grid", 100000000}};
    for (size_t s = 0; s < 2; s++) {
        if (only != NULL && strcmp(only, book_stages[s].name) != 0) {
            continue;
        }
        for (int i = 0; i < iters; i++) {
            double t0 = now();
            lob_book *b = run_book(&v, book_stages[s].every);
            t[i] = now() - t0;
            lob_book_free(b);
        }
        qsort(t, (size_t)iters, sizeof *t, cmp_double);
        printf("%-14s %10.2f %12.2f\n", book_stages[s].name, t[iters / 2] * 1e3,
               (double)level_rows / t[iters / 2] / 1e6);
    }
    if (only == NULL || strcmp(only, "validate") == 0) {
        lob_book_opts bo = {LEVELS, 0, LOB_CROSSED_FLAG, 0, 0};
        lob_error err = {0};
        lob_book *b = NULL;
        lob_book_new(&b, &bo, &err);
        lob_depth_view d = view_of(&v, 0, v.n);
        for (int i = 0; i < iters; i++) {
            double t0 = now();
            if (validate(b, &d, &err) < 0) {
                fprintf(stderr, "validate: %s\n", err.msg);
                return 1;
            }
            t[i] = now() - t0;
        }
        lob_book_free(b);
        qsort(t, (size_t)iters, sizeof *t, cmp_double);
        printf("%-14s %10.2f %12.2f\n", "validate", t[iters / 2] * 1e3,
               (double)level_rows / t[iters / 2] / 1e6);
    }
    struct {
        const char *name;
        void (*fn)(const rows_t *, top_out *);
    } protos[] = {{"proto-base", proto_base},
                  {"proto-nobranch", proto_nobranch},
                  {"proto-gallop", proto_gallop},
                  {"proto-block", proto_block}};
    top_out o;
    out_init(&o, msgs + 1);
    for (size_t s = 0; s < sizeof protos / sizeof protos[0]; s++) {
        if (only != NULL && strcmp(only, protos[s].name) != 0) {
            continue;
        }
        protos[s].fn(&v, &o);
        if (!same_as_book(&o, ref)) {
            fprintf(stderr, "%s: output differs from lob_book's\n", protos[s].name);
            return 1;
        }
        for (int i = 0; i < iters; i++) {
            double t0 = now();
            protos[s].fn(&v, &o);
            t[i] = now() - t0;
        }
        qsort(t, (size_t)iters, sizeof *t, cmp_double);
        printf("%-14s %10.2f %12.2f\n", protos[s].name, t[iters / 2] * 1e3,
               (double)level_rows / t[iters / 2] / 1e6);
    }
    if (only == NULL || strcmp(only, "stats") == 0) {
        rows_t one = v;
        one.n = v.n / (size_t)reps; /* one replay: every copy does the same */
        stats(&one);
    }
    out_free(&o);
    lob_book_free(ref);
    free(t);
    return 0;
}
