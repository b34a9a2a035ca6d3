/* fuzz_binance.c -- libFuzzer harness: arbitrary bytes as a file through lob_reader with
 * lob_format_binance.
 *
 * One input is read five ways, and the results must agree:
 *   A  on_error=skip, one pump to the end
 *   B  the same again (determinism)
 *   C  on_error=raise: stops at the first bad line with rows that are a prefix of A's
 *   D  on_error=skip, pumped in chunks of a few rows and drained between pumps, as the
 *      binding's take() does: the concatenated chunks equal A
 *   E  (plain text only) the format's line() called directly on each line, copied into a
 *      buffer of exactly its length so ASan catches any read past the line: equals A
 * Every result is detached the way the binding detaches it (column buffers shrunk to n
 * rows) before it is inspected, so ASan also checks that each column really holds n rows.
 * Invariants on the rows (flags, sides, NaN markers, sync segments) are checked on A.
 *
 * The input reaches the reader as a file through a memfd, so the whole path runs:
 * compression sniffing (gzip/zstd magic in the input is decompressed), line splitting,
 * CRLF, a last line without '\n', error locations.
 *
 * Build and run: make fuzz (clang -fsanitize=fuzzer,address,undefined).
 */
#define _GNU_SOURCE /* memfd_create */

#include "core/blocks.h"
#include "core/io/reader.h"
#include "core/schema.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"

#define NT 4 /* lob_format_binance.ntables */
enum { T_DEPTH, T_TRADES, T_AGG, T_QUOTES };

/* Fail loudly: libFuzzer records the input as a crash. */

/* Owned copies of a reader's tables, each column exactly n rows long. */
typedef struct {
    lob_table t[NT];
} tables;

static const lob_format *const fmt = &lob_format_binance;

static size_t
row_bytes(const lob_column *c)
{
    return (size_t)c->size * c->width;
}

static void
tables_init(tables *s, lob_table *const *src)
{
    for (int i = 0; i < NT; i++) {
        lob_table_init(&s->t[i], src[i]->schema, src[i]->ncol);
    }
}

static void
tables_free(tables *s)
{
    for (int i = 0; i < NT; i++) {
        lob_table_free(&s->t[i]);
    }
}

/* Move the rows of `src` (detached like the binding does) onto the end of `dst`. */
static void
drain(lob_table *dst, lob_table *src)
{
    size_t n = src->n;
    lob_table view = *src;
    void *bufs[LOB_MAX_COLS];
    size_t bytes[LOB_MAX_COLS];
    CHECK(lob_table_detach(src, bufs, bytes) == LOB_OK, "detach failed");
    CHECK(src->n == 0 && src->cap == 0, "detach left %zu rows", src->n);
    for (int c = 0; c < view.ncol; c++) {
        view.col[c] = bufs[c];
        CHECK((n == 0) == (bufs[c] == NULL), "column %d: %zu rows but buffer %p", c, n, bufs[c]);
    }
    view.n = view.cap = n;
    if (n > 0) { /* appending nothing from NULL buffers would be memcpy(NULL, ..., 0) */
        CHECK(lob_table_append(dst, &view, 0, n) == LOB_OK, "append of %zu rows failed", n);
    }
    for (int c = 0; c < view.ncol; c++) {
        lob_block_free(bufs[c], bytes[c]);
    }
}

static void
take(tables *s, void *ctx, lob_table *(*table)(void *, int))
{
    for (int i = 0; i < NT; i++) {
        drain(&s->t[i], table(ctx, i));
    }
}

static lob_table *
reader_table(void *r, int i)
{
    return lob_reader_table(r, i);
}

/* Do `a`'s first rows equal `b`'s (all of b's rows when `prefix` is 0)? */
static int
tables_match(const tables *a, const tables *b, int prefix, int *which)
{
    for (int i = 0; i < NT; i++) {
        const lob_table *x = &a->t[i], *y = &b->t[i];
        *which = i;
        if (prefix ? y->n > x->n : y->n != x->n) {
            return 0;
        }
        for (int c = 0; c < x->ncol; c++) {
            size_t rb = row_bytes(&x->schema[c]);
            if (y->n > 0 && memcmp(x->col[c], y->col[c], y->n * rb) != 0) {
                return 0;
            }
        }
    }
    return 1;
}

/* The row invariants the schema and binance.c document. */
static void
check_rows(const tables *s)
{
    const lob_table *d = &s->t[T_DEPTH];
    int in_book = 0; /* between a RESET and the next GAP the book is known */
    int64_t last_id = 0;
    for (size_t i = 0; i < d->n; i++) {
        int side = LOB_COL(d, LOB_D_SIDE, int8_t)[i];
        unsigned f = LOB_COL(d, LOB_D_FLAGS, uint8_t)[i];
        double px = LOB_COL(d, LOB_D_PRICE, double)[i];
        double qty = LOB_COL(d, LOB_D_QTY, double)[i];
        int64_t id = LOB_COL(d, LOB_D_UPDATE_ID, int64_t)[i];
        CHECK((f & ~15u) == 0, "depth row %zu: flags %#x use unknown bits", i, f);
        CHECK(side >= -1 && side <= 1, "depth row %zu: side %d", i, side);
        if (side == 0) {
            CHECK(isnan(px) && isnan(qty), "depth row %zu: marker with price %g qty %g", i, px,
                  qty);
            CHECK((f & LOB_F_GAP) || f == (LOB_F_SNAPSHOT | LOB_F_RESET | LOB_F_END_OF_MESSAGE),
                  "depth row %zu: marker that is neither a GAP nor an empty snapshot (flags %#x)",
                  i, f);
        }
        else {
            CHECK(px > 0 && qty >= 0 && isfinite(px) && isfinite(qty),
                  "depth row %zu: level with price %g qty %g", i, px, qty);
        }
        CHECK(!(f & LOB_F_GAP) || side == 0, "depth row %zu: GAP on a level (side %d)", i, side);
        CHECK(!(f & LOB_F_RESET) || (f & LOB_F_SNAPSHOT), "depth row %zu: RESET outside a snapshot",
              i);
        if (f & LOB_F_RESET) {
            in_book = 1;
            last_id = id;
            continue;
        }
        CHECK(in_book, "depth row %zu (flags %#x, id %lld): emitted while the book is unknown", i,
              f, (long long)id);
        if (f & LOB_F_GAP) {
            in_book = 0;
            continue;
        }
        CHECK(id >= last_id, "depth row %zu: update id %lld after %lld in one synced stretch", i,
              (long long)id, (long long)last_id);
        last_id = id;
    }
    if (d->n > 0) {
        unsigned f = LOB_COL(d, LOB_D_FLAGS, uint8_t)[d->n - 1];
        CHECK(f & LOB_F_END_OF_MESSAGE, "last depth row (%zu) lacks END_OF_MESSAGE", d->n - 1);
    }
    for (int k = T_TRADES; k <= T_AGG; k++) {
        const lob_table *t = &s->t[k];
        for (size_t i = 0; i < t->n; i++) {
            int side = LOB_COL(t, LOB_T_SIDE, int8_t)[i];
            CHECK(side == 1 || side == -1, "%s row %zu: side %d", fmt->table_names[k], i, side);
            double px = LOB_COL(t, LOB_T_PRICE, double)[i], q = LOB_COL(t, LOB_T_QTY, double)[i];
            CHECK(px > 0 && isfinite(px) && q > 0 && isfinite(q), "%s row %zu: %g x %g",
                  fmt->table_names[k], i, px, q);
        }
    }
    const lob_table *q = &s->t[T_QUOTES];
    for (size_t i = 0; i < q->n; i++) {
        for (int c = LOB_Q_BID_PX; c <= LOB_Q_ASK_QTY; c++) {
            double v = LOB_COL(q, c, double)[i];
            int price = c == LOB_Q_BID_PX || c == LOB_Q_ASK_PX;
            CHECK(isfinite(v) && (price ? v > 0 : v >= 0), "quote row %zu column %d: %g", i, c, v);
        }
    }
    /* every time read from the file (or derived from one) lies in 1970..2262 */
    static const int ts_cols[NT][2] = {{LOB_D_TS, LOB_D_LOCAL_TS},
                                       {LOB_T_TS, LOB_T_LOCAL_TS},
                                       {LOB_T_TS, LOB_T_LOCAL_TS},
                                       {LOB_Q_TS, LOB_Q_LOCAL_TS}};
    for (int k = 0; k < NT; k++) {
        for (size_t i = 0; i < s->t[k].n; i++) {
            for (int c = 0; c < 2; c++) {
                int64_t ts = LOB_COL(&s->t[k], ts_cols[k][c], int64_t)[i];
                CHECK(ts >= LOB_TS_MIN && ts <= LOB_TS_MAX, "%s row %zu: time %lld",
                      fmt->table_names[k], i, (long long)ts);
            }
        }
    }
}

/* Read `path` with on_error=skip or raise; `chunk` > 0 pumps at most ~chunk rows at a time
 * and drains between pumps.  @return the first error code (0 if none). */
static int
read_all(const char *path, int skip, size_t chunk, tables *out, lob_error *err, int64_t *bad_lines)
{
    lob_opts o;
    memset(&o, 0, sizeof o);
    o.start_ns = INT64_MIN;
    o.end_ns = INT64_MAX;
    lob_reader *r = NULL;
    memset(err, 0, sizeof *err);
    int rc = lob_reader_new(&r, fmt, &o, skip, err);
    CHECK(rc == 0, "lob_reader_new: %d", rc);
    lob_table *src[NT];
    for (int i = 0; i < NT; i++) {
        src[i] = lob_reader_table(r, i);
    }
    tables_init(out, src);
    rc = lob_reader_open(r, path, err);
    int eof = 0, pumps = 0;
    while (rc == 0 && !eof) {
        rc = lob_reader_pump(r, chunk, &eof, err);
        if (chunk > 0) {
            take(out, r, reader_table);
        }
        CHECK(++pumps < 1000000, "pump makes no progress");
    }
    if (rc == 0) {
        rc = lob_reader_finish(r, err);
    }
    take(out, r, reader_table);

    lob_stat st[LOB_MAX_STATS];
    int n = lob_reader_stats(r, st, LOB_MAX_STATS);
    CHECK(n > 0 && n <= LOB_MAX_STATS, "%d stats", n);
    *bad_lines = -1;
    for (int i = 0; i < n; i++) {
        CHECK(st[i].name != NULL, "stat %d has no name", i);
        if (st[i].text != NULL) {
            CHECK(strlen(st[i].text) < 4096, "stat %s: %zu bytes", st[i].name, strlen(st[i].text));
        }
        if (strcmp(st[i].name, "bad_lines") == 0) {
            *bad_lines = st[i].value;
        }
    }
    CHECK(*bad_lines >= 0 && (skip || *bad_lines == 0), "bad_lines = %lld", (long long)*bad_lines);
    lob_reader_free(r);
    return rc;
}

/* E: the format's line() over each line of plain text, as on_error=skip would. */
static void
read_lines_directly(const uint8_t *data, size_t size, tables *out)
{
    void *ctx = NULL;
    lob_opts o;
    memset(&o, 0, sizeof o);
    o.start_ns = INT64_MIN;
    o.end_ns = INT64_MAX;
    CHECK(fmt->create(&ctx, &o) == 0, "create failed");
    lob_table *src[NT];
    for (int i = 0; i < NT; i++) {
        src[i] = fmt->table(ctx, i);
    }
    tables_init(out, src);
    size_t pos = 0;
    while (pos < size) {
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        size_t n = nl ? (size_t)(nl - (data + pos)) : size - pos;
        size_t next = pos + n + (nl != NULL);
        if (n > 0 && data[pos + n - 1] == '\r') {
            n--;
        }
        char *line = malloc(n ? n : 1); /* exactly the line: no '\n', no NUL after it */
        memcpy(line, data + pos, n);
        size_t before[NT];
        for (int i = 0; i < NT; i++) {
            before[i] = src[i]->n;
        }
        lob_error err;
        memset(&err, 0, sizeof err);
        int rc = fmt->line(ctx, line, n, &err);
        free(line);
        if (rc < 0) {
            CHECK(rc == LOB_E_FORMAT || rc == LOB_E_RANGE, "line() returned %d: %s", rc, err.msg);
            CHECK(err.msg[0] != '\0', "line() failed with code %d and no message", rc);
            for (int i = 0; i < NT; i++) {
                CHECK(src[i]->n == before[i],
                      "a failing line changed table %s from %zu to %zu rows (%s)",
                      fmt->table_names[i], before[i], src[i]->n, err.msg);
            }
        }
        pos = next;
    }
    lob_error err;
    memset(&err, 0, sizeof err);
    CHECK(fmt->finish(ctx, &err) == 0, "finish failed");
    take(out, ctx, fmt->table);
    fmt->destroy(ctx);
}

static int memfd = -1;
static char memfd_path[64];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (memfd < 0) {
        memfd = memfd_create("fuzz_binance", 0);
        CHECK(memfd >= 0, "memfd_create failed");
        snprintf(memfd_path, sizeof memfd_path, "/proc/self/fd/%d", memfd);
    }
    CHECK(ftruncate(memfd, 0) == 0, "ftruncate failed");
    CHECK(size == 0 || pwrite(memfd, data, size, 0) == (ssize_t)size, "pwrite failed");

    tables a, b, c, d, e;
    lob_error ea, eb, ec, ed;
    int64_t bad_a, bad_b, bad_c, bad_d;
    int which = 0;
    int ra = read_all(memfd_path, 1, 0, &a, &ea, &bad_a);
    int compressed = size >= 2 && ((data[0] == 0x1f && data[1] == 0x8b) ||
                                   (size >= 4 && memcmp(data, "\x28\xb5\x2f\xfd", 4) == 0));
    CHECK(ra == 0 || (compressed && ra == LOB_E_CORRUPT), "on_error=skip failed with %d: %s", ra,
          ea.msg);
    check_rows(&a);

    int rb = read_all(memfd_path, 1, 0, &b, &eb, &bad_b);
    CHECK(rb == ra && bad_b == bad_a, "second read: rc %d vs %d, bad lines %lld vs %lld", rb, ra,
          (long long)bad_b, (long long)bad_a);
    CHECK(tables_match(&a, &b, 0, &which), "second read differs in table %s",
          fmt->table_names[which]);

    int rc = read_all(memfd_path, 0, 0, &c, &ec, &bad_c);
    if (rc == 0 || rc == LOB_E_CORRUPT) {
        CHECK(rc == ra && bad_a == 0, "raise read rc %d, skip read rc %d with %lld bad lines", rc,
              ra, (long long)bad_a);
        CHECK(tables_match(&a, &c, 0, &which), "raise read differs in table %s",
              fmt->table_names[which]);
    }
    else {
        CHECK(rc == LOB_E_FORMAT || rc == LOB_E_RANGE, "raise read failed with %d: %s", rc, ec.msg);
        CHECK(bad_a > 0, "raise read failed at line %lld, skip read had no bad lines: %s",
              (long long)ec.line, ec.msg);
        CHECK(ec.line >= 1 && ec.offset >= 0 && ec.msg[0] != '\0',
              "error without a location: line %lld offset %lld", (long long)ec.line,
              (long long)ec.offset);
        CHECK(tables_match(&a, &c, 1, &which),
              "rows before the bad line differ from on_error=skip in table %s",
              fmt->table_names[which]);
    }

    int rd = read_all(memfd_path, 1, 3, &d, &ed, &bad_d);
    CHECK(rd == ra && bad_d == bad_a, "chunked read: rc %d vs %d", rd, ra);
    CHECK(tables_match(&a, &d, 0, &which), "chunked read differs in table %s",
          fmt->table_names[which]);

    if (!compressed && ra == 0) {
        read_lines_directly(data, size, &e);
        CHECK(tables_match(&a, &e, 0, &which), "line() by hand differs in table %s",
              fmt->table_names[which]);
        tables_free(&e);
    }
    tables_free(&a);
    tables_free(&b);
    tables_free(&c);
    tables_free(&d);
    return 0;
}
