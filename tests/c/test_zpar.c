/* test_zpar.c -- the Binance reader on worker threads (core/io/zpar.c) against one thread.
 *
 * A seekable zstd file is written with lob_zwriter, a few lines a frame, with gaps, stale
 * diffs, snapshots, trades, bad lines, a line cut by a frame edge and a corrupt frame; each
 * is read with opts.threads = 1 and with 3 workers, whole and in small chunks, stopped by
 * the stop check and resumed, and as a window: the tables, stats and errors must agree.
 */
#include "test.h"

#include "core/io/reader.h"
#include "core/io/zframes.h"
#include "core/schema.h"

#include <stdlib.h>
#include <string.h>

#define TS0 1723075200000000000LL

typedef struct {
    char *p;
    size_t n, cap;
} text;

static void
put(text *t, const char *s)
{
    size_t k = strlen(s);
    if (t->n + k + 1 > t->cap) {
        t->cap = (t->n + k + 1) * 2;
        t->p = realloc(t->p, t->cap);
    }
    memcpy(t->p + t->n, s, k + 1);
    t->n += k;
}

/* Lines of a spot stream; every 7th "step" something other than a chaining diff. */
static void
stream(text *t, int lines, unsigned seed)
{
    char buf[512];
    long long u = 100, ts = TS0;
    for (int i = 0; i < lines; i++) {
        seed = seed * 1103515245u + 12345u;
        unsigned r = (seed >> 16) % 16;
        ts += (seed >> 8) % 3 * 1000000;
        if (r < 9) {
            snprintf(
                buf, sizeof buf,
                "%lld {\"stream\":\"btcusdt@depth\",\"data\":{\"e\":\"depthUpdate\",\"E\":%lld,"
                "\"s\":\"BTCUSDT\",\"U\":%lld,\"u\":%lld,\"b\":[[\"%d.5\",\"1\"]],\"a\":[[\"%d.5\","
                "\"0\"]]}}\n",
                ts, ts / 1000000, u + 1, u + 3, 100 + i % 7, 101 + i % 7);
            u += 3;
        }
        else if (r == 9) {
            u += 10; /* a gap */
            snprintf(
                buf, sizeof buf,
                "%lld {\"e\":\"depthUpdate\",\"E\":%lld,\"s\":\"BTCUSDT\",\"U\":%lld,\"u\":%lld,"
                "\"b\":[],\"a\":[[\"105\",\"2\"]]}\n",
                ts, ts / 1000000, u, u + 1);
            u += 1;
        }
        else if (r == 10) {
            snprintf(
                buf, sizeof buf,
                "%lld {\"lastUpdateId\":%lld,\"bids\":[[\"99\",\"1\"],[\"98\",\"2\"]],\"asks\":"
                "[[\"101\",\"3\"]]}\n",
                ts, u - 1);
        }
        else if (r == 11) {
            snprintf(buf, sizeof buf,
                     "%lld {\"e\":\"trade\",\"E\":%lld,\"s\":\"BTCUSDT\",\"t\":%d,\"p\":\"100.5\","
                     "\"q\":\"0.25\",\"T\":%lld,\"m\":true}\n",
                     ts, ts / 1000000, i, ts / 1000000);
        }
        else if (r == 12) {
            snprintf(buf, sizeof buf, "%lld {\"e\":\"trade\",\"s\":\"BTCUSDT\",\"p\":\n", ts);
        }
        else if (r == 13) {
            snprintf(buf, sizeof buf, "\n");
        }
        else {
            snprintf(buf, sizeof buf,
                     "%lld {\"e\":\"bookTicker\",\"s\":\"BTCUSDT\",\"u\":%lld,\"b\":\"100\",\"B\":"
                     "\"1\",\"a\":\"101\",\"A\":\"2\"}\r\n",
                     ts, u);
        }
        put(t, buf);
    }
}

/* Write `t` as frames of about `frame` bytes (cut at line ends, or anywhere when `anywhere`). */
static int
write_frames(const char *path, const text *t, size_t frame, int anywhere)
{
    lob_error err = {0};
    lob_zwriter *w;
    if (lob_zwriter_open(&w, path, NULL, 1, 0, &err) < 0) {
        return -1;
    }
    size_t a = 0;
    while (a < t->n) {
        size_t b = a + frame < t->n ? a + frame : t->n;
        while (!anywhere && b < t->n && t->p[b - 1] != '\n') {
            b++;
        }
        if (lob_zwriter_frame(w, t->p + a, b - a, &err) < 0) {
            lob_zwriter_close(w, &err);
            return -1;
        }
        a = b;
    }
    return lob_zwriter_close(w, &err);
}

/* A read and what it gave: tables and stats as text. */
typedef struct {
    int rc;
    lob_error err;
    char *out;
} result;

static int
stop_after(void *ctx)
{
    int *left = ctx;
    return (*left)-- == 0;
}

static void
dump(text *o, lob_reader *r)
{
    char buf[256];
    for (int i = 0; i < lob_reader_format(r)->ntables; i++) {
        const lob_table *t = lob_reader_table(r, i);
        snprintf(buf, sizeof buf, "table %d: %zu rows\n", i, t->n);
        put(o, buf);
        for (int c = 0; c < t->ncol; c++) {
            size_t w = (size_t)t->schema[c].size * t->schema[c].width;
            for (size_t k = 0; k < t->n * w; k++) {
                snprintf(buf, sizeof buf, "%02x", ((const unsigned char *)t->col[c])[k]);
                put(o, buf);
            }
            put(o, "\n");
        }
    }
}

static result
read_zst(const char *path, int threads, int skip, size_t chunk, int stops, const lob_span *span)
{
    result x;
    memset(&x, 0, sizeof x);
    text o = {0};
    put(&o, "");
    lob_opts opts;
    memset(&opts, 0, sizeof opts);
    opts.start_ns = INT64_MIN;
    opts.end_ns = INT64_MAX;
    opts.threads = threads;
    lob_reader *r = NULL;
    int left = 0;
    lob_poll poll = {stop_after, &left, NULL};
    x.err.poll = &poll;
    x.rc = lob_reader_new(&r, &lob_format_binance, &opts, skip, &x.err);
    if (x.rc == 0) {
        x.rc = span ? lob_reader_open_span(r, path, span, 5, &x.err)
                    : lob_reader_open(r, path, &x.err);
    }
    int eof = 0, stopped = 0;
    while (x.rc == 0 && !eof) {
        left = stopped < stops ? 3 : 1 << 30; /* the first pumps are stopped early */
        x.rc = lob_reader_pump(r, chunk, &eof, &x.err);
        if (x.rc == LOB_E_INTR && stopped < stops) {
            stopped++; /* nothing lost: go on */
            x.rc = 0;
            lob_error_clear(&x.err);
            continue;
        }
        if (chunk > 0) { /* hand the chunk over, as take() does */
            dump(&o, r);
            for (int i = 0; i < lob_reader_format(r)->ntables; i++) {
                lob_reader_table(r, i)->n = 0;
            }
        }
    }
    if (x.rc == 0) {
        x.rc = lob_reader_finish(r, &x.err);
    }
    if (x.rc == 0) {
        dump(&o, r);
        lob_stat st[LOB_MAX_STATS];
        int n = lob_reader_stats(r, st, LOB_MAX_STATS);
        for (int i = 0; i < n; i++) {
            char buf[512];
            snprintf(buf, sizeof buf, "%s=%lld %s\n", st[i].name, (long long)st[i].value,
                     st[i].text ? st[i].text : "");
            put(&o, buf);
        }
    }
    x.out = o.p;
    lob_reader_free(r);
    return x;
}

static int
same(const result *a, const result *b)
{
    /* after a read that succeeded, err only holds what a skipped line left (and a stop
     * cleared): the error is compared when there is one */
    return a->rc == b->rc && strcmp(a->out, b->out) == 0 &&
           (a->rc == 0 || (a->err.line == b->err.line && a->err.offset == b->err.offset &&
                           strcmp(a->err.msg, b->err.msg) == 0));
}

static void
check(const char *name, const char *path, int skip, size_t chunk, int stops, const lob_span *span)
{
    result a = read_zst(path, 1, skip, chunk, 0, span);
    result b = read_zst(path, 3, skip, chunk, stops, span);
    char descr[256];
    snprintf(descr, sizeof descr, "zpar: %s (skip %d, chunk %zu, stops %d) as one thread", name,
             skip, chunk, stops);
    test_cond(descr, same(&a, &b));
    if (!same(&a, &b)) {
        printf("  one thread: rc %d line %lld '%s'\n  threads:    rc %d line %lld '%s'\n", a.rc,
               (long long)a.err.line, a.err.msg, b.rc, (long long)b.err.line, b.err.msg);
    }
    free(a.out);
    free(b.out);
}

void
lob_test_zpar(void)
{
    text t = {0};
    put(&t, "");
    stream(&t, 3000, 7);
    const char *path = lob_test_path("zpar.zst");
    char keep[512];
    snprintf(keep, sizeof keep, "%s", path);
    test_cond("zpar: write frames", write_frames(keep, &t, 600, 0) == 0);
    for (int skip = 0; skip < 2; skip++) {
        check("frames at line ends", keep, skip, 0, 0, NULL);
        check("frames at line ends", keep, skip, 50, 0, NULL);
        check("frames at line ends", keep, skip, 0, 4, NULL);
    }
    /* the frames' text offsets: a window from frame 3 (a line inside it) to inside frame 20 */
    int64_t c = 0, d = 0, c3 = 0, d3 = 0, lo = 0, hi = 0;
    {
        lob_zframe *f;
        int64_t n, at;
        lob_error err = {0};
        test_cond("zpar: seek table read",
                  lob_seek_table_read(keep, &f, &n, &at, &err) == 0 && n > 25);
        for (int64_t i = 0; f != NULL && i < n; i++) {
            if (i == 3) {
                c3 = c;
                d3 = d;
                const char *nl = memchr(t.p + d + 1, '\n', f[i].dsize);
                lo = nl ? nl + 1 - t.p : d;
            }
            if (i == 20) {
                const char *nl = memchr(t.p + d + 10, '\n', f[i].dsize);
                hi = nl ? nl + 1 - t.p : d;
            }
            c += f[i].csize;
            d += f[i].dsize;
        }
        free(f);
    }
    lob_span span = {c3, d3, lo, hi};
    check("a window", keep, 1, 0, 0, &span);
    check("a window", keep, 1, 40, 2, &span);
    span.d_hi = hi - 5; /* cutting a line */
    check("a window cutting a line", keep, 1, 0, 0, &span);
    /* frame edges inside lines */
    test_cond("zpar: write cut frames", write_frames(keep, &t, 777, 1) == 0);
    check("frames cut inside lines", keep, 1, 0, 0, NULL);
    check("frames cut inside lines", keep, 0, 30, 0, NULL);
    /* a corrupt frame in the middle */
    test_cond("zpar: write frames again", write_frames(keep, &t, 600, 0) == 0);
    FILE *fp = fopen(keep, "r+b");
    if (fp != NULL) {
        fseek(fp, c3 + 2000, SEEK_SET);
        fputs("garbage!", fp);
        fclose(fp);
    }
    check("a corrupt frame", keep, 0, 0, 0, NULL);
    check("a corrupt frame", keep, 1, 20, 1, NULL);
    free(t.p);
}
