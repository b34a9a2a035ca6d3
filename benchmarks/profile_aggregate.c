/* profile_aggregate.c -- lob_agg_count + lob_agg_fill over bench_aggregate.py's workload, no
 * Python in the way: the best of 21 calls (thread CPU time), for one set of columns.
 *
 * Inputs: the raw arrays of bench_aggregate.synth() in DIR, written by
 *   .venv/bin/python -c "import sys; sys.path[:0] = ['.', 'benchmarks']; import bench_aggregate as
 * b; q, t = b.synth(); [a.tofile(f'DIR/{n}.bin') for n, a in dict(qts=q.ts, bid=q.bid_px,
 *     ask=q.ask_px, tts=t.ts, tpx=t.price, tqty=t.qty, tside=t.side).items()]"
 * Build and run (COLUMNS: "all" or names joined by commas; EVERY in ns, default 500 ms;
 * THREADS > 1 times both calls by the wall clock instead of the thread's CPU time):
 *   gcc -O2 -std=c11 -pthread -Icsrc -o /tmp/profile_aggregate benchmarks/profile_aggregate.c \
 *       csrc/core/kernels/aggregate.c csrc/core/error.c csrc/core/parallel.c -lm
 *   /tmp/profile_aggregate DIR mid_close,vwap,volume [EVERY [THREADS]]
 */
#define _POSIX_C_SOURCE 200809L
#include "core/kernels/aggregate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void *
load(const char *dir, const char *name, size_t size, size_t *n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.bin", dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL || fseek(f, 0, SEEK_END) != 0) {
        perror(path);
        exit(1);
    }
    long bytes = ftell(f);
    void *p = malloc((size_t)bytes + 1);
    rewind(f);
    if (p == NULL || fread(p, 1, (size_t)bytes, f) != (size_t)bytes) {
        perror(path);
        exit(1);
    }
    fclose(f);
    *n = (size_t)bytes / size;
    return p;
}

static int threads = 1; /* > 1: the fill on that many threads, timed by the wall clock */

static double
now(void)
{
    struct timespec t;
    clock_gettime(threads > 1 ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [all | column,column,...] [every ns] [threads]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1], *set = argc > 2 ? argv[2] : "all";
    threads = argc > 4 ? atoi(argv[4]) : 1;
    size_t nb, nt, x;
    lob_agg_input in = {0};
    in.book_ts = load(dir, "qts", 8, &nb);
    in.bid = load(dir, "bid", 8, &x);
    in.ask = load(dir, "ask", 8, &x);
    in.trade_ts = load(dir, "tts", 8, &nt);
    in.trade_px = load(dir, "tpx", 8, &x);
    in.trade_qty = load(dir, "tqty", 8, &x);
    in.trade_side = load(dir, "tside", 1, &x);
    in.n_book = nb;
    in.n_trades = nt;
    in.px_stride = 1;
    lob_agg_opts o = {LOB_AGG_TIME, argc > 3 ? atoll(argv[3]) : 500000000, 0, 0};
    lob_error err = {0};
    size_t n;
    if (lob_agg_count(&in, &o, &n, 1, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    lob_agg_output out = {0};
    out.ts = calloc(n, sizeof(int64_t));
#define COLUMN(f)                                                                                  \
    if (strcmp(set, "all") == 0 || strstr(set, #f) != NULL) {                                      \
        out.f = calloc(n, sizeof *out.f);                                                          \
    }
    COLUMN(mid_open)
    COLUMN(mid_high)
    COLUMN(mid_low)
    COLUMN(mid_close)
    COLUMN(vwap)
    COLUMN(volume)
    COLUMN(buy_volume)
    COLUMN(sell_volume)
    COLUMN(trades)
    COLUMN(updates)
    double best_count = 1e9, best_fill = 1e9;
    for (int r = 0; r < 21; r++) {
        double t0 = now();
        int rc = lob_agg_count(&in, &o, &n, threads, &err);
        double t1 = now();
        rc = rc < 0 ? rc : lob_agg_fill(&in, &o, n, &out, threads, &err);
        double t2 = now();
        if (rc < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        best_count = t1 - t0 < best_count ? t1 - t0 : best_count;
        best_fill = t2 - t1 < best_fill ? t2 - t1 : best_fill;
    }
    printf("%-36s count %6.2f ms  fill %6.2f ms  (%zu bars)\n", set, best_count * 1e3,
           best_fill * 1e3, n);
    return 0;
}
