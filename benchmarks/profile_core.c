/* profile_core.c -- where lobfast's readers spend their time, without Python.
 *
 * Build (from the repository root; nothing is installed):
 *   cc -O2 -g -std=c11 -Icsrc benchmarks/profile_core.c csrc/core/*.c csrc/core/*/*.c \
 *      $(pkg-config --cflags --libs libzstd zlib) -lm -o /tmp/profile_core
 * Run:
 *   /tmp/profile_core benchmarks/.data/usdm_btcusdt_20240808.txt [iterations [stage]]
 *   valgrind --tool=callgrind /tmp/profile_core FILE 1 parse  (instructions per function)
 *   perf record /tmp/profile_core FILE 50 parse; perf report   (where perf is allowed)
 *
 * FILE is a Binance raw recording, or a Tardis CSV when its name contains ".csv" (then the
 * stages use the tardis format and "tokenize" is skipped).
 * Stages, each a full read of FILE (median of the iterations):
 *   lines     the reader alone: read(), copy into the line buffer, memchr for '\n'
 *   tokenize  + validate every line as JSON (lob_json_skip: also parses every number)
 *   parse     the real format: fields, decimals, sync rules, output tables (as read_binance
 *             or read_tardis)
 *   reserved  parse with output tables sized up front (no realloc growth)
 *   huge      reserved + madvise(MADV_HUGEPAGE) on the columns (2 MiB pages: fewer faults)
 *   touched   reserved + the output pages touched before timing (no page faults)
 * The differences between stages are the cost of each step (huge vs reserved: what
 * transparent huge pages would save where the kernel has them in "madvise" mode).
 */
#define _GNU_SOURCE
#include "core/formats/json.h"
#include "core/io/reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ stand-in formats */

typedef struct {
    int64_t lines, bytes;
    int validate;
} null_ctx;

static int
null_create(void **ctx, const lob_opts *o)
{
    (void)o;
    *ctx = calloc(1, sizeof(null_ctx));
    return *ctx ? LOB_OK : LOB_E_NOMEM;
}

static void
null_destroy(void *ctx)
{
    free(ctx);
}

static int
null_line(void *ctx, const char *s, size_t n, lob_error *err)
{
    null_ctx *c = ctx;
    c->lines++;
    c->bytes += (int64_t)n;
    return LOB_OK;
    (void)s;
    (void)err;
}

static int
skip_line(void *ctx, const char *s, size_t n, lob_error *err)
{
    null_ctx *c = ctx;
    c->lines++;
    const char *sp = memchr(s, ' ', n);
    if (sp == NULL) {
        return lob_error_set(err, LOB_E_FORMAT, "no space");
    }
    lob_json j = {sp + 1, s + n, NULL};
    int rc = lob_json_skip(&j, 0);
    return rc < 0 ? lob_error_set(err, rc, "bad JSON: %s", j.expected) : LOB_OK;
}

static int
null_finish(void *ctx, lob_error *err)
{
    (void)ctx;
    (void)err;
    return LOB_OK;
}

static lob_table *
null_table(void *ctx, int i)
{
    (void)ctx;
    (void)i;
    return NULL;
}

static int
null_stats(void *ctx, lob_stat *out, int cap)
{
    (void)ctx;
    (void)out;
    (void)cap;
    return 0;
}

static const lob_format fmt_lines = {"lines",   0,           NULL,       null_create, null_destroy,
                                     null_line, null_finish, null_table, null_stats};
static const lob_format fmt_tokenize = {
    "tokenize", 0, NULL, null_create, null_destroy, skip_line, null_finish, null_table, null_stats};

/* ------------------------------------------------------------------ driver */

enum { PLAIN, RESERVED, HUGE, TOUCHED };

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Rows per table of one full read, for sizing the tables up front. */
static size_t sizes[LOB_MAX_TABLES];

static double
one_read(const lob_format *fmt, const char *path, int prep, int64_t *bytes)
{
    lob_error err = {0};
    lob_opts opts;
    memset(&opts, 0, sizeof opts);
    opts.start_ns = INT64_MIN;
    opts.end_ns = INT64_MAX;
    lob_reader *r = NULL;
    if (lob_reader_new(&r, fmt, &opts, 0, &err) < 0) {
        fprintf(stderr, "reader: %s\n", err.msg);
        exit(1);
    }
    for (int i = 0; prep != PLAIN && i < fmt->ntables; i++) {
        lob_table *t = lob_reader_table(r, i);
        lob_table_reserve(t, sizes[i] + 16);
        if (prep == HUGE) {
            /* transparent huge pages for the 2 MiB-aligned part of each big column */
            for (int c = 0; c < t->ncol; c++) {
                uintptr_t a =
                    ((uintptr_t)t->col[c] + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1);
                uintptr_t e =
                    (uintptr_t)t->col[c] + t->cap * t->schema[c].size * t->schema[c].width;
                if (e > a + (2u << 20)) {
                    madvise((void *)a, (e - a) & ~(uintptr_t)((2u << 20) - 1), MADV_HUGEPAGE);
                }
            }
        }
        if (prep == TOUCHED) {
            for (int c = 0; c < t->ncol; c++) {
                memset(t->col[c], 0, t->cap * t->schema[c].size * t->schema[c].width);
            }
        }
    }
    double t0 = now();
    int eof = 0;
    if (lob_reader_open(r, path, &err) < 0 || lob_reader_pump(r, 0, &eof, &err) < 0 ||
        lob_reader_finish(r, &err) < 0) {
        fprintf(stderr, "%s: line %lld: %s\n", path, (long long)err.line, err.msg);
        exit(1);
    }
    double t1 = now();
    for (int i = 0; i < fmt->ntables; i++) {
        sizes[i] = lob_reader_table(r, i)->n;
    }
    lob_stat st[LOB_MAX_STATS];
    int n = lob_reader_stats(r, st, LOB_MAX_STATS);
    for (int i = 0; i < n; i++) {
        if (strcmp(st[i].name, "bytes") == 0) {
            *bytes = st[i].value;
        }
    }
    lob_reader_free(r);
    return t1 - t0;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE [iterations [stage]]\n", argv[0]);
        return 2;
    }
    const char *path = argv[1];
    int iters = argc > 2 ? atoi(argv[2]) : 15;
    const char *only = argc > 3 ? argv[3] : NULL; /* one stage, e.g. for perf record */
    if (iters < 1) {
        iters = 1;
    }
    int csv = strstr(path, ".csv") != NULL;
    const lob_format *fmt = csv ? &lob_format_tardis : &lob_format_binance;
    struct {
        const char *name;
        const lob_format *fmt;
        int prep;
    } stages[] = {
        {"lines", &fmt_lines, PLAIN}, {"tokenize", &fmt_tokenize, PLAIN},
        {"parse", fmt, PLAIN},        {"reserved", fmt, RESERVED},
        {"huge", fmt, HUGE},          {"touched", fmt, TOUCHED},
    };
    int64_t bytes = 0;
    one_read(fmt, path, PLAIN, &bytes); /* sizes[] and a warm page cache */
    double *t = malloc(sizeof(double) * (size_t)iters);
    double prev = 0;
    printf("%-10s %10s %10s %12s\n", "stage", "median ms", "MB/s", "step ms");
    for (size_t s = 0; s < sizeof stages / sizeof stages[0]; s++) {
        if ((only != NULL && strcmp(only, stages[s].name) != 0) ||
            (csv && stages[s].fmt == &fmt_tokenize)) {
            continue;
        }
        for (int i = 0; i < iters; i++) {
            t[i] = one_read(stages[s].fmt, path, stages[s].prep, &bytes);
        }
        qsort(t, (size_t)iters, sizeof *t, cmp_double);
        double med = t[iters / 2];
        printf("%-10s %10.2f %10.0f %+12.2f\n", stages[s].name, med * 1e3,
               (double)bytes / med / 1e6, (med - prev) * 1e3);
        prev = med;
    }
    free(t);
    return 0;
}
