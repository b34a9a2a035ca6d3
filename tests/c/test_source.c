/* test_source.c -- lob_source on plain, gzip and zstd files, whole, cut short and corrupt.
 *
 * Fixtures are compressed in memory with zlib and libzstd (so they can be cut and
 * concatenated byte-exactly) and written into the fixture directory.
 */
#include "test.h"

#include "core/io/lines.h"
#include "core/io/source.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

typedef struct {
    unsigned char *p; /* malloc'd bytes */
    size_t n;         /* length */
} bytes;

/* Text that does not compress much, so the compressed file spans several read chunks. */
static bytes
random_text(size_t n, uint32_t seed)
{
    bytes b = {malloc(n ? n : 1), n};
    for (size_t i = 0; b.p && i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        unsigned r = (seed >> 16) % 40;
        b.p[i] = r < 26 ? (unsigned char)('a' + r) : r < 36 ? (unsigned char)('0' + r - 26) : '\n';
    }
    return b;
}

static bytes
gzip_of(const void *src, size_t n)
{
    bytes out = {NULL, 0};
    z_stream z;
    memset(&z, 0, sizeof z);
    /* 15 + 16: a gzip wrapper, as the gzip tool writes */
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        return out;
    }
    size_t cap = deflateBound(&z, (uLong)n) + 32;
    out.p = malloc(cap);
    z.next_in = (Bytef *)src;
    z.avail_in = (uInt)n;
    z.next_out = out.p;
    z.avail_out = (uInt)cap;
    if (out.p == NULL || deflate(&z, Z_FINISH) != Z_STREAM_END) {
        free(out.p);
        out.p = NULL;
    }
    else {
        out.n = cap - z.avail_out;
    }
    deflateEnd(&z);
    return out;
}

static bytes
zstd_of(const void *src, size_t n, int checksum)
{
    bytes out = {malloc(ZSTD_compressBound(n)), 0};
    ZSTD_CCtx *c = ZSTD_createCCtx();
    if (out.p != NULL && c != NULL) {
        ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, checksum);
        size_t r = ZSTD_compress2(c, out.p, ZSTD_compressBound(n), src, n);
        out.n = ZSTD_isError(r) ? 0 : r;
    }
    ZSTD_freeCCtx(c);
    return out;
}

static bytes
concat(bytes a, const void *b, size_t bn)
{
    bytes out = {malloc(a.n + bn + 1), a.n + bn};
    if (out.p != NULL) {
        memcpy(out.p, a.p, a.n);
        memcpy(out.p + a.n, b, bn);
    }
    return out;
}

/* What reading a whole file gave. */
typedef struct {
    int open_rc;          /* lob_source_open's result */
    int rc;               /* last lob_source_read result if negative, else 0 */
    bytes text;           /* everything read before the end or the error */
    int64_t truncated;    /* lob_source_truncated after the end */
    int64_t junk;         /* lob_source_junk after the end */
    lob_compression kind; /* lob_source_compression */
    lob_error err;        /* the error, if any */
} readout;

static readout
read_file(const char *name, const bytes *content, size_t cap)
{
    readout o;
    memset(&o, 0, sizeof o);
    const char *path = lob_test_path(name);
    if (content != NULL && lob_test_write(path, content->p, content->n) < 0) {
        o.open_rc = -100;
        return o;
    }
    lob_source *s = NULL;
    o.open_rc = lob_source_open(&s, path, &o.err);
    if (o.open_rc < 0) {
        return o;
    }
    size_t have = 0, alloc = 1 << 16;
    o.text.p = malloc(alloc);
    char *chunk = malloc(cap);
    for (;;) {
        ptrdiff_t r = lob_source_read(s, chunk, cap, &o.err);
        if (r <= 0) {
            o.rc = (int)r;
            break;
        }
        if (have + (size_t)r > alloc) {
            alloc = (have + (size_t)r) * 2;
            o.text.p = realloc(o.text.p, alloc);
        }
        memcpy(o.text.p + have, chunk, (size_t)r);
        have += (size_t)r;
    }
    if (o.rc == 0) {
        ptrdiff_t again = lob_source_read(s, chunk, cap, &o.err);
        if (again != 0) {
            o.rc = -200; /* a source must stay at its end */
        }
    }
    o.text.n = have;
    o.truncated = lob_source_truncated(s);
    o.junk = lob_source_junk(s);
    o.kind = lob_source_compression(s);
    lob_source_free(s);
    free(chunk);
    return o;
}

static int
same(const readout *o, const void *want, size_t n)
{
    return o->open_rc == 0 && o->rc == 0 && o->text.n == n && memcmp(o->text.p, want, n) == 0;
}

static int
is_prefix(const readout *o, const bytes *whole)
{
    return o->text.n <= whole->n && memcmp(o->text.p, whole->p, o->text.n) == 0;
}

void
lob_test_source(void)
{
    bytes text = random_text(1500000, 1);
    bytes text2 = random_text(70000, 2);
    bytes gz = gzip_of(text.p, text.n);
    bytes gz2 = gzip_of(text2.p, text2.n);
    bytes zs = zstd_of(text.p, text.n, 0);
    bytes zs2 = zstd_of(text2.p, text2.n, 1);
    if (!text.p || !text2.p || !gz.p || !gz2.p || !zs.n || !zs2.n) {
        test_cond("source: fixtures could be built", 0);
        return;
    }
    test_cond("source: the gzip fixture spans several 256 KiB input chunks", gz.n > (1u << 19));
    readout o;

    /* plain */
    o = read_file("plain.txt", &text, 1 << 20);
    test_cond("source: plain file",
              same(&o, text.p, text.n) && o.kind == LOB_PLAIN && o.truncated == 0);
    free(o.text.p);
    o = read_file("plain.txt", NULL, 7);
    test_cond("source: plain file, 7-byte reads", same(&o, text.p, text.n));
    free(o.text.p);

    bytes empty = {(unsigned char *)"", 0};
    o = read_file("empty", &empty, 4096);
    test_cond("source: empty file", same(&o, "", 0) && o.kind == LOB_PLAIN && o.truncated == 0);
    free(o.text.p);

    bytes one = {(unsigned char *)"\x1f", 1};
    o = read_file("one-byte", &one, 4096);
    test_cond("source: half a gzip magic is plain text",
              same(&o, "\x1f", 1) && o.kind == LOB_PLAIN);
    free(o.text.p);

    /* gzip */
    o = read_file("whole.gz", &gz, 1 << 20);
    test_cond("source: gzip file",
              same(&o, text.p, text.n) && o.kind == LOB_GZIP && o.truncated == 0);
    free(o.text.p);
    o = read_file("whole.gz", NULL, 1);
    test_cond("source: gzip file, 1-byte reads", same(&o, text.p, text.n) && o.truncated == 0);
    free(o.text.p);
    o = read_file("whole.gz", NULL, 4093);
    test_cond("source: gzip file, 4093-byte reads", same(&o, text.p, text.n) && o.truncated == 0);
    free(o.text.p);

    bytes gzcat = concat(gz2, gz.p, gz.n);
    bytes want = concat(text2, text.p, text.n);
    o = read_file("members.gz", &gzcat, 1 << 16);
    test_cond("source: concatenated gzip members read as one stream",
              same(&o, want.p, want.n) && o.truncated == 0);
    free(o.text.p);

    size_t cut = gz.n / 2;
    bytes half = {gz.p, cut};
    o = read_file("cut.gz", &half, 1 << 20);
    test_cond("source: truncated gzip gives a clean prefix",
              o.open_rc == 0 && o.rc == 0 && o.text.n > 0 && o.text.n < text.n &&
                  is_prefix(&o, &text));
    test_cond("source: truncated gzip reports the bytes of the cut member",
              o.truncated == (int64_t)cut);
    free(o.text.p);

    bytes cut2 = concat(gz2, gz.p, cut);
    o = read_file("cut2.gz", &cut2, 1 << 20);
    test_cond("source: second gzip member cut: the first is whole, the cut counts only the "
              "second",
              o.rc == 0 && o.text.n > text2.n && memcmp(o.text.p, text2.p, text2.n) == 0 &&
                  o.truncated == (int64_t)cut);
    free(o.text.p);
    free(cut2.p);

    bytes header = {gz.p, 10};
    o = read_file("header.gz", &header, 4096);
    test_cond("source: a bare gzip header is a truncated, empty file",
              o.open_rc == 0 && o.rc == 0 && o.text.n == 0 && o.kind == LOB_GZIP &&
                  o.truncated == 10);
    free(o.text.p);

    bytes gz_empty = gzip_of("", 0);
    o = read_file("empty.gz", &gz_empty, 4096);
    test_cond("source: gzip of nothing", same(&o, "", 0) && o.kind == LOB_GZIP && o.truncated == 0);
    free(o.text.p);
    free(gz_empty.p);

    bytes bad = concat(gz, "", 0);
    bad.p[bad.n - 6] ^= 0x55; /* inside the CRC32 trailer */
    o = read_file("crc.gz", &bad, 1 << 20);
    test_cond("source: gzip with a wrong CRC -> LOB_E_CORRUPT",
              o.rc == LOB_E_CORRUPT && o.err.code == LOB_E_CORRUPT &&
                  strstr(o.err.msg, "gzip") != NULL);
    free(o.text.p);
    memcpy(bad.p, gz.p, gz.n);
    bad.p[3] = 0xe0; /* reserved header flag bits */
    o = read_file("flags.gz", &bad, 1 << 20);
    test_cond("source: gzip with a bad header -> LOB_E_CORRUPT", o.rc == LOB_E_CORRUPT);
    free(o.text.p);
    free(bad.p);

    /* junk after the last member: read up to it, its offset reported */
    static const char zeros[4096];
    bytes padded = concat(gz, zeros, sizeof zeros);
    for (size_t cap = 1; cap <= (1 << 20); cap *= 1024) {
        o = read_file("padded.gz", &padded, cap);
        test_cond("source: gzip + zero padding: the data, then the padding's offset",
                  same(&o, text.p, text.n) && o.junk == (int64_t)gz.n && o.truncated == 0);
        free(o.text.p);
    }
    free(padded.p);
    bytes garbage = concat(gzcat, "\x1f\x8c junk", 7);
    o = read_file("garbage.gz", &garbage, 1 << 16);
    test_cond("source: two members + junk that starts like a gzip magic",
              same(&o, want.p, want.n) && o.junk == (int64_t)gzcat.n);
    free(o.text.p);
    free(garbage.p);
    o = read_file("members.gz", NULL, 1 << 16);
    test_cond("source: no junk: -1", o.junk == -1);
    free(o.text.p);

    /* lines longer than max_line */
    size_t longn = 3 + 100000 + 5;
    char *longline = malloc(longn);
    memcpy(longline, "ab\n", 3);
    memset(longline + 3, 'x', 100000);
    memcpy(longline + 3 + 100000, "\nend\n", 5);
    lob_test_write(lob_test_path("long.txt"), longline, longn);
    lob_lines ls;
    lob_error lerr = {0};
    int lrc = lob_lines_open(&ls, lob_test_path("long.txt"), NULL, 0, &lerr);
    ls.max_line = 99999; /* the second line is one byte longer */
    const char *ln;
    size_t lnn;
    int64_t loff;
    int first = lrc == 0 ? lob_lines_next(&ls, &ln, &lnn, &loff, &lerr) : -1;
    lrc = first == 1 ? lob_lines_next(&ls, &ln, &lnn, &loff, &lerr) : -1;
    test_cond("source: a line over max_line -> LOB_E_RANGE naming line 2 at byte 3",
              first == 1 && lrc == LOB_E_RANGE && lerr.line == 2 && lerr.offset == 3 &&
                  strstr(lerr.msg, "max_line") != NULL);
    lob_lines_close(&ls);
    free(longline);

    /* zstd */
    o = read_file("whole.zst", &zs, 1 << 20);
    test_cond("source: zstd file",
              same(&o, text.p, text.n) && o.kind == LOB_ZSTD && o.truncated == 0);
    free(o.text.p);
    o = read_file("whole.zst", NULL, 1);
    test_cond("source: zstd file, 1-byte reads", same(&o, text.p, text.n) && o.truncated == 0);
    free(o.text.p);
    o = read_file("whole.zst", NULL, 100003);
    test_cond("source: zstd file, 100003-byte reads", same(&o, text.p, text.n) && o.truncated == 0);
    free(o.text.p);

    bytes zcat = concat(zs2, zs.p, zs.n);
    o = read_file("frames.zst", &zcat, 1 << 16);
    test_cond("source: concatenated zstd frames", same(&o, want.p, want.n) && o.truncated == 0);
    free(o.text.p);
    bytes zjunk = concat(zcat, "junk after the frames", 21);
    o = read_file("junk.zst", &zjunk, 1 << 16);
    test_cond("source: zstd frames + junk: the data, then the junk's offset",
              same(&o, want.p, want.n) && o.junk == (int64_t)zcat.n && o.truncated == 0);
    free(o.text.p);
    /* a window that restarts where no frame starts: the index does not fit, an error */
    lob_source *zsrc = NULL;
    lob_error zerr = {0};
    char zbuf[4096];
    int zrc = lob_source_open(&zsrc, lob_test_path("junk.zst"), &zerr);
    zrc = zrc == 0 ? lob_source_window(zsrc, (int64_t)zs2.n + 3, (int64_t)text2.n, (int64_t)text2.n,
                                       (int64_t)want.n, &zerr)
                   : zrc;
    ptrdiff_t zk = zrc == 0 ? lob_source_read(zsrc, zbuf, sizeof zbuf, &zerr) : -1;
    test_cond("source: a window restarting inside a frame -> LOB_E_CORRUPT",
              zk == LOB_E_CORRUPT && strstr(zerr.msg, "not the start of a zstd frame") != NULL);
    lob_source_free(zsrc);
    free(zjunk.p);
    free(zcat.p);

    cut = zs.n / 2;
    bytes zhalf = {zs.p, cut};
    o = read_file("cut.zst", &zhalf, 1 << 20);
    test_cond("source: truncated zstd gives a clean prefix",
              o.open_rc == 0 && o.rc == 0 && o.text.n > 0 && o.text.n < text.n &&
                  is_prefix(&o, &text));
    test_cond("source: truncated zstd reports the cut frame's bytes",
              o.truncated > 0 && o.truncated <= (int64_t)cut);
    free(o.text.p);

    bytes zbad = concat(zs2, "", 0);
    zbad.p[zbad.n - 1] ^= 0x01; /* the frame's content checksum */
    o = read_file("checksum.zst", &zbad, 1 << 20);
    test_cond("source: zstd with a wrong checksum -> LOB_E_CORRUPT",
              o.rc == LOB_E_CORRUPT && strstr(o.err.msg, "zstd") != NULL);
    free(o.text.p);
    free(zbad.p);

    /* files that cannot be read */
    lob_source *s = (lob_source *)&o; /* must be reset to NULL on failure */
    lob_error err;
    memset(&err, 0, sizeof err);
    int rc = lob_source_open(&s, lob_test_path("does-not-exist.gz"), &err);
    test_cond("source: missing path -> LOB_E_IO naming the reason, errno kept",
              rc == LOB_E_IO && s == NULL && err.code == LOB_E_IO &&
                  strstr(err.msg, "No such file") != NULL && err.sys_errno == ENOENT);
    rc = lob_source_open(&s, lob_test_dir, &err);
    test_cond("source: a directory -> LOB_E_IO, EISDIR",
              rc == LOB_E_IO && s == NULL && err.sys_errno == EISDIR);
    lob_source_free(NULL);
    test_cond("source: free(NULL) is a no-op", 1);

    free(text.p);
    free(text2.p);
    free(gz.p);
    free(gz2.p);
    free(zs.p);
    free(zs2.p);
    free(gzcat.p);
    free(want.p);
}
