/* fuzz_csv.c -- libFuzzer harness: arbitrary bytes as a CSV file through the CSV readers.
 *
 * The first byte picks the reader; the rest is the file (through a memfd, so the whole
 * path runs: line splitting, CRLF, a last line without '\n'):
 *   0  lob_csv_columns (TimeIndex CSV columns): field 0 is the time; the second byte
 *      picks how many fields follow (bits 0-1) and their kinds (2 bits each: int64,
 *      float64, text, side), byte 0 / 3 the time unit (bits 0-1) and bool for side (bit
 *      2); every data row is parsed into columns allocated at exactly the row count, so
 *      ASan catches a write past them
 *   1  lob_format_tardis, 2  lob_format_vision, through lob_reader with on_error=skip and
 *      =raise (the raise read's rows are a prefix of the skip read's), and line() by hand
 *      on each line copied into a buffer of exactly its length
 * Whatever is accepted must obey the rules the readers document: times in 1970..2262,
 * prices > 0 and finite, sizes >= 0 (trade amounts > 0), text values without control
 * bytes and at most LOB_TEXT_MAX bytes, codes inside the dictionary.  Every error message
 * must be a NUL-terminated string with no control byte (bad cells are shown escaped).
 *
 * Build and run: make fuzz (clang -fsanitize=fuzzer,address,undefined).
 */
#define _GNU_SOURCE /* memfd_create */
#include "core/formats/text.h"
#include "core/io/columns.h"
#include "core/io/reader.h"
#include "core/schema.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"

static int
in_time(int64_t t)
{
    return t >= LOB_TS_MIN && t <= LOB_TS_MAX;
}

static void
check_message(const lob_error *err)
{
    size_t n = strnlen(err->msg, sizeof err->msg);
    CHECK(n > 0 && n < sizeof err->msg, "error message of %zu bytes", n);
    CHECK(lob_find_control(err->msg, n) == NULL, "control byte in the message: %s", err->msg);
}

/* ------------------------------------------------------------------ 0: columns */

/* Parse every row of `path` into columns of `kind` and check what was accepted.
 * @return 0, or the column (from 1) of a bad cell, or -1 for a line with too few fields. */
static int
parse_columns(const char *path, int64_t nrows, int64_t unit, const int *kind, int ncol)
{
    static const size_t bytes[7] = {0, 8, 8, 8, 1, 1, 4};
    lob_tskey key = {',', 0, unit, 0, "t"};
    lob_csvcol cols[4];
    lob_dict dicts[4];
    memset(dicts, 0, sizeof dicts);
    for (int i = 0; i < ncol; i++) {
        int k = kind[i];
        cols[i] = (lob_csvcol){i, k, malloc(nrows ? (size_t)nrows * bytes[k] : 1), &dicts[i], "c"};
    }
    lob_error err;
    memset(&err, 0, sizeof err);
    int rc = lob_csv_columns(path, NULL, 0, &key, cols, ncol, nrows, &err), col = 0;
    if (rc < 0) {
        CHECK(rc == LOB_E_FORMAT || rc == LOB_E_RANGE, "failed with %d: %s", rc, err.msg);
        check_message(&err);
        CHECK(err.line >= 1, "error without a line: %s", err.msg);
        /* a bad cell or a short line: the row count was right (nothing says "the file
         * changed", which only the text of a quoted cell may contain) */
        int used = 0;
        int cell = sscanf(err.msg, "column %d (c): expected %n", &col, &used) == 1 && used > 0;
        CHECK((cell && col >= 1 && col <= ncol) || strncmp(err.msg, "the line has", 12) == 0,
              "row count %lld: %s", (long long)nrows, err.msg);
        col = cell ? col : -1;
    }
    for (int i = 0; i < ncol && rc == 0; i++) {
        const lob_dict *d = cols[i].dict;
        for (int64_t r = 0; r < nrows; r++) {
            switch (cols[i].kind) {
            case LOB_CK_TIME: {
                int64_t t = ((int64_t *)cols[i].out)[r];
                CHECK(in_time(t), "row %lld: time %lld", (long long)r, (long long)t);
                break;
            }
            case LOB_CK_F64: {
                double v = ((double *)cols[i].out)[r];
                CHECK(!isinf(v), "row %lld: %g", (long long)r, v);
                break;
            }
            case LOB_CK_BOOL:
            case LOB_CK_SIDE: {
                int v = ((int8_t *)cols[i].out)[r];
                CHECK(v >= (cols[i].kind == LOB_CK_SIDE ? -1 : 0) && v <= 1, "row %lld: %d",
                      (long long)r, v);
                break;
            }
            case LOB_CK_TEXT: {
                int32_t v = ((int32_t *)cols[i].out)[r];
                CHECK(v >= 0 && v < d->n, "row %lld: code %d of %d", (long long)r, v, d->n);
                break;
            }
            default: break;
            }
        }
        for (int v = 0; cols[i].kind == LOB_CK_TEXT && v < d->n; v++) {
            const char *s = lob_dict_value(d, v);
            size_t n = strlen(s);
            CHECK(n <= LOB_TEXT_MAX && lob_find_control(s, n) == NULL, "text value %d: %zu bytes",
                  v, n);
            for (int w = 0; w < v; w++) {
                CHECK(strcmp(s, lob_dict_value(d, w)) != 0, "values %d and %d are both '%s'", w, v,
                      s);
            }
        }
    }
    for (int i = 0; i < ncol; i++) {
        free(cols[i].out);
        lob_dict_free(&dicts[i]);
    }
    return col;
}

static void
fuzz_columns(const char *path, const uint8_t *data, size_t size, uint8_t how, uint8_t opt)
{
    if (size >= 2 &&
        ((data[0] == 0x1f && data[1] == 0x8b) || (data[0] == 0x28 && data[1] == 0xb5))) {
        return; /* compressed: the row count below would be the compressed text's */
    }
    int64_t nrows = 0; /* lines that are not blank, as lob_lines splits them */
    for (size_t pos = 0; pos < size;) {
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        size_t n = nl ? (size_t)(nl - (data + pos)) : size - pos;
        nrows += n > 1 || (n == 1 && data[pos] != '\r');
        pos += n + 1;
    }
    const int kinds[4] = {LOB_CK_I64, LOB_CK_F64, LOB_CK_TEXT, opt & 4 ? LOB_CK_BOOL : LOB_CK_SIDE};
    static const int64_t units[4] = {0, 1, 1000, 1000000000};
    int ncol = 1 + (how & 3), kind[4];
    for (int i = 0; i < ncol; i++) {
        kind[i] = i == 0 ? LOB_CK_TIME : kinds[(how >> (2 * i)) & 3];
    }
    parse_columns(path, nrows, units[opt & 3], kind, ncol);
    /* the kinds guessed from every row read every row: only the time, a text cell (control
     * bytes, length) or a short line may still fail */
    lob_csv_guess((const char *)data, size, ',', ncol, 0, units[opt & 3], NULL, nrows, kind);
    int bad = parse_columns(path, nrows, units[opt & 3], kind, ncol);
    CHECK(bad <= 0 || kind[bad - 1] == LOB_CK_TIME || kind[bad - 1] == LOB_CK_TEXT,
          "column %d guessed as kind %d fails to read", bad, bad > 0 ? kind[bad - 1] : 0);
}

/* ------------------------------------------------------------------ 1, 2: line formats */

static void
check_table(const char *name, const lob_table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(name, "depth") == 0) {
            double px = LOB_COL(t, LOB_D_PRICE, double)[i], q = LOB_COL(t, LOB_D_QTY, double)[i];
            CHECK(in_time(LOB_COL(t, LOB_D_TS, int64_t)[i]) &&
                      in_time(LOB_COL(t, LOB_D_LOCAL_TS, int64_t)[i]),
                  "depth row %zu: time out of range", i);
            CHECK(px > 0 && isfinite(px) && q >= 0 && isfinite(q), "depth row %zu: %g x %g", i, px,
                  q);
        }
        else if (strcmp(name, "trades") == 0) {
            double px = LOB_COL(t, LOB_T_PRICE, double)[i], q = LOB_COL(t, LOB_T_QTY, double)[i];
            int side = LOB_COL(t, LOB_T_SIDE, int8_t)[i];
            CHECK(in_time(LOB_COL(t, LOB_T_TS, int64_t)[i]) &&
                      in_time(LOB_COL(t, LOB_T_LOCAL_TS, int64_t)[i]),
                  "trade row %zu: time out of range", i);
            CHECK(px > 0 && isfinite(px) && q > 0 && isfinite(q) && side >= -1 && side <= 1,
                  "trade row %zu: %g x %g side %d", i, px, q, side);
        }
        else if (strcmp(name, "quotes") == 0) {
            CHECK(in_time(LOB_COL(t, LOB_Q_TS, int64_t)[i]) &&
                      in_time(LOB_COL(t, LOB_Q_LOCAL_TS, int64_t)[i]),
                  "quote row %zu: time out of range", i);
            for (int c = LOB_Q_BID_PX; c <= LOB_Q_ASK_QTY; c++) {
                double v = LOB_COL(t, c, double)[i];
                int price = c == LOB_Q_BID_PX || c == LOB_Q_ASK_PX;
                CHECK(isnan(v) || (isfinite(v) && (price ? v > 0 : v >= 0)),
                      "quote row %zu column %d: %g", i, c, v);
            }
        }
        else if (strcmp(name, "book") == 0) {
            CHECK(in_time(LOB_COL(t, LOB_B_TS, int64_t)[i]), "book row %zu: time out of range", i);
            size_t L = t->schema[LOB_B_BID_PX].width;
            for (int c = LOB_B_BID_PX; c <= LOB_B_ASK_SZ; c++) {
                for (size_t k = 0; k < L; k++) {
                    double v = LOB_COL(t, c, double)[i * L + k];
                    int price = c == LOB_B_BID_PX || c == LOB_B_ASK_PX;
                    CHECK(price ? isnan(v) || (isfinite(v) && v > 0) : isfinite(v) && v >= 0,
                          "book row %zu column %d level %zu: %g", i, c, k, v);
                }
            }
        }
    }
}

/* Rows of every table after a read with on_error=skip (skip) or =raise. */
static int
read_file(const lob_format *fmt, const char *path, int skip, size_t *rows, lob_error *err)
{
    lob_opts o;
    memset(&o, 0, sizeof o);
    o.start_ns = INT64_MIN;
    o.end_ns = INT64_MAX;
    lob_reader *r = NULL;
    memset(err, 0, sizeof *err);
    CHECK(lob_reader_new(&r, fmt, &o, skip, err) == 0, "lob_reader_new failed");
    int rc = lob_reader_open(r, path, err), eof = 0;
    while (rc == 0 && !eof) {
        rc = lob_reader_pump(r, 0, &eof, err);
    }
    if (rc == 0) {
        rc = lob_reader_finish(r, err);
    }
    for (int i = 0; i < fmt->ntables; i++) {
        rows[i] = lob_reader_table(r, i)->n;
        if (skip) {
            check_table(fmt->table_names[i], lob_reader_table(r, i));
        }
    }
    lob_reader_free(r);
    return rc;
}

static void
fuzz_format(const lob_format *fmt, const char *path, const uint8_t *data, size_t size)
{
    size_t a[LOB_MAX_TABLES], c[LOB_MAX_TABLES];
    lob_error ea, ec;
    int ra = read_file(fmt, path, 1, a, &ea);
    int compressed = size >= 2 && ((data[0] == 0x1f && data[1] == 0x8b) ||
                                   (size >= 4 && memcmp(data, "\x28\xb5\x2f\xfd", 4) == 0));
    CHECK(ra == 0 || (compressed && ra == LOB_E_CORRUPT), "on_error=skip failed with %d: %s", ra,
          ea.msg);
    int rc = read_file(fmt, path, 0, c, &ec);
    if (rc == LOB_E_FORMAT || rc == LOB_E_RANGE) {
        check_message(&ec);
        CHECK(ec.line >= 1, "error without a line: %s", ec.msg);
        for (int i = 0; i < fmt->ntables; i++) {
            CHECK(c[i] <= a[i], "table %s: raise read has %zu rows, skip read %zu",
                  fmt->table_names[i], c[i], a[i]);
        }
    }
    if (compressed) {
        return;
    }
    /* line() by hand on exact-size copies: a failing line changes no table */
    void *ctx = NULL;
    lob_opts o;
    memset(&o, 0, sizeof o);
    o.start_ns = INT64_MIN;
    o.end_ns = INT64_MAX;
    CHECK(fmt->create(&ctx, &o) == 0, "create failed");
    for (size_t pos = 0; pos < size;) {
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        size_t n = nl ? (size_t)(nl - (data + pos)) : size - pos;
        size_t next = pos + n + 1;
        n -= n > 0 && data[pos + n - 1] == '\r';
        char *line = malloc(n ? n : 1);
        memcpy(line, data + pos, n);
        size_t before[LOB_MAX_TABLES];
        for (int i = 0; i < fmt->ntables; i++) {
            before[i] = fmt->table(ctx, i)->n;
        }
        lob_error err;
        memset(&err, 0, sizeof err);
        int r = fmt->line(ctx, line, n, &err);
        free(line);
        if (r < 0) {
            CHECK(r == LOB_E_FORMAT || r == LOB_E_RANGE, "line() returned %d: %s", r, err.msg);
            check_message(&err);
            for (int i = 0; i < fmt->ntables; i++) {
                CHECK(fmt->table(ctx, i)->n == before[i], "a failing line changed table %s (%s)",
                      fmt->table_names[i], err.msg);
            }
        }
        pos = next;
    }
    lob_error err;
    memset(&err, 0, sizeof err);
    CHECK(fmt->finish(ctx, &err) == 0, "finish failed");
    for (int i = 0; i < fmt->ntables; i++) {
        check_table(fmt->table_names[i], fmt->table(ctx, i));
    }
    fmt->destroy(ctx);
}

static int memfd = -1;
static char memfd_path[64];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    if (memfd < 0) {
        memfd = memfd_create("fuzz_csv", 0);
        CHECK(memfd >= 0, "memfd_create failed");
        snprintf(memfd_path, sizeof memfd_path, "/proc/self/fd/%d", memfd);
    }
    uint8_t which = data[0] % 3, how = data[1];
    const uint8_t *text = data + 1 + (which == 0); /* columns: a second byte for the kinds */
    size_t n = size - 1 - (which == 0);
    CHECK(ftruncate(memfd, 0) == 0, "ftruncate failed");
    CHECK(n == 0 || pwrite(memfd, text, n, 0) == (ssize_t)n, "pwrite failed");
    switch (which) {
    case 0: fuzz_columns(memfd_path, text, n, how, (uint8_t)(data[0] / 3)); break;
    case 1: fuzz_format(&lob_format_tardis, memfd_path, text, n); break;
    default: fuzz_format(&lob_format_vision, memfd_path, text, n); break;
    }
    return 0;
}
