/* profile_book.c -- where the C order book (csrc/core/book/book.c) spends its time, without Python.
 *
 * Build (from the repository root; book.c is compiled INTO this driver so the stats stage can
 * look at the sides, hence the other core files only on the command line):
 *   cc -O2 -g -std=c11 -Icsrc benchmarks/profile_book.c $(find csrc/core -name "*.c" ! -name
 * book.c) \
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
 *   stats     one instrumented pass: what each level row does to its side (update, insert,
 *             delete, unknown delete) and how many ticks from the side's best it lands
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
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: other processes on the cores do not count */
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

static const char *const dist_names[] = {"best (0)", "1-15",       "16-255",
                                         "256-4095", "4096-16383", ">= 16384"};

static int
dist_bucket(int64_t d)
{
    return d == 0 ? 0 : d < 16 ? 1 : d < 256 ? 2 : d < 4096 ? 3 : d < 16384 ? 4 : 5;
}

/* What each level row does to its side (update, insert, delete, unknown delete) and how many
 * ticks it lands from the side's best (negative distances, better than the best, count as 0):
 * sizes a tick-indexed window around the best. */
static void
stats(const rows_t *v)
{
    lob_book_opts o = {LEVELS, 0, LOB_CROSSED_FLAG, 0, 0};
    lob_error err = {0};
    lob_book *b = NULL;
    lob_book_new(&b, &o, &err);
    enum { UPD, INS, DEL, UNK, NOP };
    const char *op_names[] = {"update", "insert", "delete", "unknown delete"};
    int64_t ops[NOP] = {0}, by_dist[NOP][6] = {{0}}, levels_sum = 0, level_rows = 0;
    for (size_t i = 0; i < v->n; i++) {
        int side = v->side[i];
        if (side != 0 && !(v->flags[i] & LOB_F_RESET)) {
            book_side *s = side > 0 ? &b->bid : &b->ask;
            int64_t tick;
            if (price_ticks(b, v->px[i], &tick) == LOB_OK && s->lv.n > 0) {
                int64_t key = s->dir * tick, best = lob_side_best(&s->lv);
                double q = 0;
                int found = lob_side_get(&s->lv, key, &q);
                int op = v->qty[i] > 0 ? (found ? UPD : INS) : (found ? DEL : UNK);
                ops[op]++;
                by_dist[op][dist_bucket(best > key ? best - key : 0)]++;
                levels_sum += (int64_t)s->lv.n;
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
    printf("\none replay: %lld level rows (snapshot rows excluded); mean levels on the row's "
           "side: %.0f\nticks from the best:\n",
           (long long)total, (double)levels_sum / (double)(level_rows ? level_rows : 1));
    printf("%-15s %7s", "op", "share");
    for (int k = 0; k < 6; k++) {
        printf(" %9s", dist_names[k]);
    }
    printf("\n");
    for (int k = 0; k < NOP; k++) {
        printf("%-15s %6.1f%%", op_names[k], 100.0 * (double)ops[k] / (double)total);
        for (int j = 0; j < 6; j++) {
            printf(" %8.1f%%", 100.0 * (double)by_dist[k][j] / (double)(ops[k] ? ops[k] : 1));
        }
        printf("\n");
    }
    lob_book_free(b);
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
    if (only == NULL || strcmp(only, "stats") == 0) {
        rows_t one = v;
        one.n = v.n / (size_t)reps; /* one replay: every copy does the same */
        stats(&one);
    }
    lob_book_free(ref);
    free(t);
    return 0;
}
