/* test_timeindex.c -- time keys, source windows, the index, CSV columns, zstd frames.
 *
 * Fixtures are written by lob_zwriter itself (so frame boundaries are known exactly) or
 * byte by byte; every expected value below is worked out by hand from the fixture text.
 */
#include "test.h"

#include "core/io/columns.h"
#include "core/io/timeindex.h"
#include "core/io/zframes.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const lob_tskey RAW = {' ', 0, 1, 0, "ns"};
static const lob_tskey CSV = {',', 1, 1000, 1, "timestamp"}; /* µs in field 1, a header */

static void
test_line_time(void)
{
    int64_t ns = 0;
    lob_error err = {0};
    test_cond("time: raw line", lob_line_time("17 {}", 5, &RAW, &ns, &err) == 0 && ns == 17);
    test_cond("time: csv field 1 in us",
              lob_line_time("a,5,x", 5, &CSV, &ns, &err) == 0 && ns == 5000);
    lob_tskey s = {',', 0, 1000000000, 0, "t"};
    test_cond("time: seconds with a fraction",
              lob_line_time("1.25,x", 6, &s, &ns, &err) == 0 && ns == 1250000000);
    test_cond("time: quoted", lob_line_time("\"3\",x", 5, &s, &ns, &err) == 0 && ns == 3000000000);
    lob_tskey a = {',', 0, 0, 0, "t"};
    test_cond("time: auto unit (ms)",
              lob_line_time("1723075200000", 13, &a, &ns, &err) == 0 && ns == 1723075200000000000);
    test_cond("time: auto unit (us)", lob_line_time("1723075200000000", 16, &a, &ns, &err) == 0 &&
                                          ns == 1723075200000000000);
    test_cond("time: missing field", lob_line_time("a", 1, &CSV, &ns, &err) == LOB_E_FORMAT &&
                                         strstr(err.msg, "field") != NULL);
    test_cond("time: not a number", lob_line_time("a,x1", 4, &CSV, &ns, &err) == LOB_E_FORMAT &&
                                        strstr(err.msg, "'x1'") != NULL);
    test_cond("time: text after digits",
              lob_line_time("12x y", 5, &RAW, &ns, &err) == LOB_E_FORMAT);
    test_cond("time: past int64 ns",
              lob_line_time("99999999999,", 12, &s, &ns, &err) == LOB_E_RANGE);
    test_cond("time: empty", lob_line_time(",x", 2, &s, &ns, &err) == LOB_E_FORMAT);
}

/* A zstd file of `nframes` frames, frame i holding frames[i]; @return 0 or -1. */
static int
write_frames(const char *path, const char *const *frames, int nframes)
{
    lob_zwriter *w = NULL;
    lob_error err = {0};
    if (lob_zwriter_open(&w, path, NULL, 3, 0, &err) < 0) {
        return -1;
    }
    for (int i = 0; i < nframes; i++) {
        if (lob_zwriter_frame(w, frames[i], strlen(frames[i]), &err) < 0) {
            lob_zwriter_close(w, NULL);
            return -1;
        }
    }
    return lob_zwriter_close(w, &err) < 0 ? -1 : 0;
}

static char *
slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    char *b = NULL;
    *n = 0;
    if (f != NULL && fseek(f, 0, SEEK_END) == 0) {
        long k = ftell(f);
        rewind(f);
        b = malloc((size_t)k + 1);
        *n = b ? fread(b, 1, (size_t)k, f) : 0;
    }
    if (f != NULL) {
        fclose(f);
    }
    return b;
}

static uint32_t
get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The text of `span` of `path`, NUL-terminated (caller frees). */
static char *
window_text(const char *path, int64_t c_lo, int64_t d_at, int64_t d_lo, int64_t d_hi, int *rc)
{
    lob_source *s = NULL;
    lob_error err = {0};
    char *out = calloc(1, 4096);
    size_t n = 0;
    *rc = lob_source_open(&s, path, &err);
    if (*rc == 0) {
        *rc = lob_source_window(s, c_lo, d_at, d_lo, d_hi, &err);
    }
    while (*rc == 0 && n < 4095) {
        ptrdiff_t k = lob_source_read(s, out + n, 4095 - n, &err);
        if (k <= 0) {
            *rc = k < 0 ? (int)k : 0;
            break;
        }
        n += (size_t)k;
    }
    out[n] = '\0'; /* a read may leave bytes past what it returned */
    lob_source_free(s);
    return out;
}

static const char *const FRAMES[] = {"10 a\n11 b\n", "12 c\n13 d\n14 e\n", "15 f\n"};

static void
test_frames_and_windows(void)
{
    const char *z = lob_test_path("ix_frames.zst");
    test_cond("zwriter: three frames written", write_frames(z, FRAMES, 3) == 0);
    size_t n;
    unsigned char *b = (unsigned char *)slurp(z, &n);
    /* seek table: skippable magic, size, 3 x (c, d), footer (3, 0, magic) */
    int ok = b != NULL && n > 17 + 24 && get32(b + n - 4) == 0x8F92EAB1u && get32(b + n - 9) == 3 &&
             b[n - 5] == 0 && get32(b + n - 9 - 24 - 8) == 0x184D2A5Eu &&
             get32(b + n - 9 - 24 - 4) == 24 + 9;
    uint32_t c0 = ok ? get32(b + n - 9 - 24) : 0, c1 = ok ? get32(b + n - 9 - 16) : 0;
    ok = ok && get32(b + n - 9 - 20) == 10 && get32(b + n - 9 - 12) == 15 &&
         get32(b + n - 9 - 4) == 5;
    test_cond("zwriter: seek table lists each frame's sizes", ok);
    free(b);

    int rc;
    char *t = window_text(z, c0, 10, 15, 25, &rc);
    test_cond("window: zstd from frame 1, text [15, 25)",
              rc == 0 && strcmp(t, "13 d\n14 e\n") == 0);
    free(t);
    t = window_text(z, 0, 0, 5, 30, &rc);
    test_cond("window: zstd across frames to the end",
              rc == 0 && strcmp(t, "11 b\n12 c\n13 d\n14 e\n15 f\n") == 0);
    free(t);
    t = window_text(z, c0 + c1, 25, 25, 30, &rc);
    test_cond("window: last frame alone", rc == 0 && strcmp(t, "15 f\n") == 0);
    free(t);
    t = window_text(z, 0, 0, 20, 10, &rc);
    test_cond("window: d_lo > d_hi refused", rc == LOB_E_ARG);
    free(t);

    lob_ix ix;
    lob_error err = {0};
    rc = lob_ix_build(z, &RAW, 1 << 16, &ix, &err);
    ok = rc == 0 && ix.n == 3 && ix.rows == 6 && ix.first_ts == 10 && ix.last_ts == 15 &&
         ix.d_size == 30;
    test_cond("index: one entry per frame, rows and times", ok);
    ok = ok && ix.e[1].ts == 12 && ix.e[1].row == 2 && ix.e[1].line == 3 && ix.e[1].d_off == 10 &&
         ix.e[1].c_off == c0 && ix.e[1].d_at == 10 && ix.e[2].c_off == c0 + c1 &&
         ix.e[2].d_at == 25;
    test_cond("index: entries restart at their frame", ok);
    test_cond("index: data frames counted, the seek table's listed",
              rc == 0 && ix.frames == 3 && ix.seek_frames == 3 && ix.bad_frame == -1);

    lob_ixentry end = {INT64_MAX, 7, 6, 30, 0, 0}, at;
    rc = lob_ix_locate(z, &RAW, &ix.e[1], &end, 14, &at, &err);
    test_cond("locate: first row with time >= 14", rc == 0 && at.ts == 14 && at.row == 4 &&
                                                       at.line == 5 && at.d_off == 20 &&
                                                       at.c_off == c0 && at.d_at == 10);
    rc = lob_ix_locate(z, &RAW, &ix.e[2], &end, 99, &at, &err);
    test_cond("locate: past the data gives the end", rc == 0 && at.row == 6 && at.d_off == 30);

    lob_ixentry e = lob_ix_end(&ix), ends[2];
    test_cond("end: after the last row", e.ts == INT64_MAX && e.line == 7 && e.row == 6 &&
                                             e.d_off == 30 && e.c_off == 0 && e.d_at == 0);
    int64_t looked = 0;
    rc = lob_ix_window(z, &RAW, &ix, 11, 14, ends, &looked, &err);
    ok = rc == 0 && ends[0].row == 1 && ends[0].d_off == 5 && ends[0].c_off == 0 &&
         ends[1].row == 4 && ends[1].d_off == 20 && ends[1].c_off == c0 && ends[1].d_at == 10;
    test_cond("window: rows [1, 4) of [11, 14), found from the entries before them", ok);
    /* 11 was found from entry 0 (text 0..5), 14 from entry 1 (text 10..20) */
    test_cond("window: text decompressed to find the ends", looked == 5 + 10);
    lob_span sp = lob_ix_span(&ends[0], &ends[1]);
    test_cond("span: from the first end's restart point to the second end's line",
              sp.c_lo == 0 && sp.d_at == 0 && sp.d_lo == 5 && sp.d_hi == 20);
    rc = lob_ix_window(z, &RAW, &ix, 12, 12, ends, &looked, &err);
    test_cond("window: empty when end <= start",
              rc == 0 && ends[0].row == ends[1].row && ends[0].row == 2 && ends[0].d_off == 10);
    rc = lob_ix_window(z, &RAW, &ix, 5, 99, ends, &looked, &err);
    test_cond("window: all rows, from the first entry to the end",
              rc == 0 && ends[0].row == 0 && ends[1].row == 6 && ends[1].d_off == 30);
    lob_ixpiece pc[4];
    size_t np = lob_ix_pieces(&ix, &ends[0], &ends[1], 4, pc);
    ok = np == 3 && pc[0].rows == 2 && pc[1].rows == 3 && pc[2].rows == 1 && pc[0].line0 == 0 &&
         pc[1].line0 == 2 && pc[1].span.c_lo == c0 && pc[1].span.d_at == 10 &&
         pc[1].span.d_lo == 10 && pc[1].span.d_hi == 25 && pc[2].span.c_lo == c0 + c1 &&
         pc[2].span.d_hi == 30;
    test_cond("pieces: cut at entries, each restarting at its frame", ok);
    np = lob_ix_pieces(&ix, &ends[0], &ends[1], 1, pc);
    test_cond("pieces: one piece is the whole window",
              np == 1 && pc[0].rows == 6 && pc[0].span.d_lo == 0 && pc[0].span.d_hi == 30);
    np = lob_ix_pieces(&ix, &ends[1], &ends[1], 4, pc);
    test_cond("pieces: none for an empty window", np == 0);
    ok = 1;
    for (int i = 0; i < LOB_IX_FIELDS; i++) {
        ok = ok && lob_ix_layout[i].offset == (size_t)i * sizeof(int64_t);
    }
    test_cond("layout: six int64 in the order of the struct",
              ok && sizeof(lob_ixentry) == LOB_IX_FIELDS * sizeof(int64_t) &&
                  strcmp(lob_ix_layout[5].name, "d_at") == 0);
    lob_ix_free(&ix);
    lob_ix_free(&ix); /* idempotent */

    /* a line that runs over a frame boundary gets no entry in the frame it ends in */
    static const char *const SPLIT[] = {"20 a\n21 b", "b\n22 c\n"};
    const char *zs = lob_test_path("ix_split.zst");
    rc = write_frames(zs, SPLIT, 2);
    rc = rc == 0 ? lob_ix_build(zs, &RAW, 1 << 16, &ix, &err) : -1;
    ok = rc == 0 && ix.n == 2 && ix.rows == 3 && ix.e[1].ts == 22 && ix.e[1].d_off == 11 &&
         ix.e[1].d_at == 9;
    test_cond("index: a line across frames, entry at the next line start", ok);
    lob_ix_free(&ix);
}

static void
test_bad_files(void)
{
    const char *p = lob_test_path("ix_unsorted.txt");
    const char text[] = "1 a\n2 b\n2 c\n1 d\n3 e\n";
    lob_test_write(p, text, sizeof text - 1);
    lob_ix ix;
    lob_error err = {0};
    int rc = lob_ix_build(p, &RAW, 4, &ix, &err);
    test_cond("index: unsorted file names line 4 at byte 12",
              rc == LOB_E_FORMAT && err.line == 4 && err.offset == 12 &&
                  strstr(err.msg, "not sorted") != NULL && ix.e == NULL);

    /* frame 1 of 3 damaged: frames before it stay indexed */
    const char *z = lob_test_path("ix_corrupt.zst");
    write_frames(z, FRAMES, 3);
    size_t n;
    unsigned char *b = (unsigned char *)slurp(z, &n);
    uint32_t c0 = get32(b + n - 9 - 24), c1 = get32(b + n - 9 - 16);
    b[c0 + c1 - 3] ^= 0xFF; /* inside frame 1's checksum */
    lob_test_write(z, b, n);
    rc = lob_ix_build(z, &RAW, 1 << 16, &ix, &err);
    test_cond("index: corrupt frame 1 ends the index before it",
              rc == 0 && ix.bad_frame == 1 && ix.bad_c_off == c0 && ix.rows == 2 &&
                  ix.last_ts == 11 && ix.n == 1 && ix.d_size == 10);
    test_cond("index: the corrupt frame is described", strstr(ix.bad_msg, "corrupt") != NULL);
    lob_ix_free(&ix);

    /* cut in the last frame: complete lines before the cut still count */
    write_frames(z, FRAMES, 2);
    free(b);
    b = (unsigned char *)slurp(z, &n);
    c0 = get32(b + n - 9 - 16);
    c1 = get32(b + n - 9 - 8);
    lob_test_write(z, b, c0 + c1 - 4);
    rc = lob_ix_build(z, &RAW, 1 << 16, &ix, &err);
    test_cond("index: truncated last frame is tolerated",
              rc == 0 && ix.truncated > 0 && ix.bad_frame == -1);
    lob_ix_free(&ix);
    free(b);
}

static void
test_csv_columns(void)
{
    const char *p = lob_test_path("cols.csv");
    const char text[] = "sym,timestamp,px,qty,side,ok\n"
                        "BTC,1,1.5,2,buy,true\r\n"
                        "\n"
                        "ETH,2,,3,sell,False\n"
                        "BTC,3,nan,-4,unknown,1\n";
    lob_test_write(p, text, sizeof text - 1);
    lob_ix ix;
    lob_error err = {0};
    int rc = lob_ix_build(p, &CSV, 16, &ix, &err);
    test_cond("csv: index skips the header and blank lines",
              rc == 0 && ix.rows == 3 && ix.lines == 5 && ix.data_off == 29 && ix.first_ts == 1000);
    int32_t sym[3];
    int64_t ts[3], qty[3];
    double px[3];
    int8_t side[3], ok[3];
    lob_dict d = {0};
    lob_csvcol cols[] = {
        {0, LOB_CK_TEXT, sym, &d, "sym"},     {1, LOB_CK_TIME, ts, NULL, "timestamp"},
        {2, LOB_CK_F64, px, NULL, "px"},      {3, LOB_CK_I64, qty, NULL, "qty"},
        {4, LOB_CK_SIDE, side, NULL, "side"}, {5, LOB_CK_BOOL, ok, NULL, "ok"},
    };
    lob_span all = {0, 0, 29, ix.d_size};
    rc = lob_csv_columns(p, &all, 1, &CSV, cols, 6, 3, &err);
    int good = rc == 0 && d.n == 2 && strcmp(lob_dict_value(&d, 1), "ETH") == 0 && sym[0] == 0 &&
               sym[1] == 1 && sym[2] == 0 && ts[2] == 3000 && px[0] == 1.5 && isnan(px[1]) &&
               isnan(px[2]) && qty[2] == -4 && side[0] == 1 && side[1] == -1 && side[2] == 0 &&
               ok[0] == 1 && ok[1] == 0 && ok[2] == 1;
    test_cond("csv: every kind parsed, CRLF and blank lines", good);
    lob_dict_free(&d);
    rc = lob_csv_columns(p, &all, 1, &CSV, cols, 6, 2, &err);
    test_cond("csv: more rows than expected is an error, not an overrun",
              rc == LOB_E_FORMAT && strstr(err.msg, "changed") != NULL);
    lob_dict_free(&d);
    rc = lob_csv_columns(p, &all, 1, &CSV, cols, 6, 4, &err);
    test_cond("csv: fewer rows than expected is an error", rc == LOB_E_FORMAT);
    lob_dict_free(&d);
    lob_csvcol bad[] = {{4, LOB_CK_I64, qty, NULL, "side"}};
    rc = lob_csv_columns(p, &all, 1, &CSV, bad, 1, 3, &err);
    test_cond("csv: a bad cell names line, offset and column",
              rc == LOB_E_FORMAT && err.line == 2 && err.offset == 29 &&
                  strstr(err.msg, "column 5 (side)") != NULL && strstr(err.msg, "'buy'") != NULL);
    lob_csvcol far[] = {{9, LOB_CK_F64, px, NULL, "far"}};
    rc = lob_csv_columns(p, &all, 1, &CSV, far, 1, 3, &err);
    test_cond("csv: a missing field is named",
              rc == LOB_E_FORMAT && strstr(err.msg, "field 10") != NULL);
    lob_csvcol twice[] = {{2, LOB_CK_F64, px, NULL, "a"}, {2, LOB_CK_F64, px, NULL, "b"}};
    test_cond("csv: columns out of order refused",
              lob_csv_columns(p, &all, 1, &CSV, twice, 2, 3, &err) == LOB_E_ARG);
    lob_ix_free(&ix);

    /* Numbers are read in place (not scanned for their end first) only when the separator
     * is no byte of a number: with '.', "1.5.2" is the three cells 1, 5 and 2. */
    const char dots[] = "1.5.2\n7.-8.9\n";
    lob_test_write(p, dots, sizeof dots - 1);
    lob_tskey dot = {'.', 2, 1, 0, "t"};
    lob_csvcol num[] = {{0, LOB_CK_F64, px, NULL, "px"},
                        {1, LOB_CK_I64, qty, NULL, "qty"},
                        {2, LOB_CK_TIME, ts, NULL, "t"}};
    lob_span whole = {0, 0, 0, sizeof dots - 1};
    rc = lob_csv_columns(p, &whole, 0, &dot, num, 3, 2, &err);
    test_cond("csv: a separator a number may hold ('.') splits the cells first",
              rc == 0 && px[0] == 1 && qty[0] == 5 && ts[0] == 2 && px[1] == 7 && qty[1] == -8 &&
                  ts[1] == 9);
}

/* A text column holds at most LOB_DICT_MAX distinct values; once it is full, its values
 * still read, and only a new one is refused. */
static void
test_csv_dict_full(void)
{
    const char *p = lob_test_path("dict.csv");
    size_t cap = (size_t)(LOB_DICT_MAX + 3) * 16, n = 0;
    char *text = malloc(cap);
    int64_t rows = 0;
    for (int i = 0; i < LOB_DICT_MAX; i++, rows++) {
        n += (size_t)snprintf(text + n, cap - n, "v%d,1\n", i);
    }
    n += (size_t)snprintf(text + n, cap - n, "v7,1\nv%d,1\n", LOB_DICT_MAX);
    rows += 2;
    lob_test_write(p, text, n);
    int32_t *code = malloc((size_t)rows * sizeof *code);
    int64_t *ts = malloc((size_t)rows * sizeof *ts);
    lob_dict d = {0};
    lob_csvcol cols[] = {{0, LOB_CK_TEXT, code, &d, "sym"}, {1, LOB_CK_TIME, ts, NULL, "t"}};
    lob_tskey key = {',', 1, 1, 0, "t"};
    lob_span whole = {0, 0, 0, n};
    lob_error err = {0};
    int rc = lob_csv_columns(p, &whole, 0, &key, cols, 2, rows, &err);
    test_cond("csv: a full text column still reads its values, and refuses a new one",
              rc == LOB_E_RANGE && err.line == rows && code[rows - 2] == 7 &&
                  strstr(err.msg, "at most 65536 distinct values") != NULL);
    lob_dict_free(&d);
    free(code);
    free(ts);
    free(text);
}

static void
test_convert(void)
{
    char src[512], dst[512]; /* lob_test_path reuses one buffer */
    snprintf(src, sizeof src, "%s", lob_test_path("conv.txt"));
    snprintf(dst, sizeof dst, "%s", lob_test_path("conv.zst"));
    const char text[] = "100 a\n200 b\r\n1100 c\n1150 d\n2500 e"; /* no final newline */
    lob_test_write(src, text, sizeof text - 1);
    lob_convert_stats st;
    lob_error err = {0};
    int rc = lob_convert(src, dst, &RAW, 1000, 1 << 20, 3, &st, &err);
    test_cond("convert: frames of 1000 ns of data", rc == 0 && st.lines == 5 && st.frames == 3);
    int wrc;
    char *t = window_text(dst, 0, 0, 0, INT64_MAX, &wrc);
    test_cond("convert: the text is kept byte for byte", wrc == 0 && strcmp(t, text) == 0);
    free(t);
    rc = lob_convert(src, dst, NULL, 1, 7, 3, &st, &err);
    test_cond("convert: by size, lines never split", rc == 0 && st.frames == 5);
    rc = lob_convert(src, lob_test_path("no/such/dir.zst"), &RAW, 1000, 1 << 20, 3, &st, &err);
    test_cond("convert: an unwritable destination fails clearly",
              rc == LOB_E_IO && strstr(err.msg, "create") != NULL);
}

void
lob_test_timeindex(void)
{
    test_line_time();
    test_frames_and_windows();
    test_bad_files();
    test_csv_columns();
    test_csv_dict_full();
    test_convert();
}
