/* timeindex.h -- a sparse time index over a sorted line file, and lookups in it.
 *
 * One pass over the (decompressed) text parses the time of every line, proves the file is
 * sorted, and keeps an entry every `block` bytes and at the first line of every zstd frame.
 * An entry says where decompression can restart (a frame start; any byte of a plain file)
 * and which line, row and text offset it stands for.  A window [start, end) is then at most
 * one block or frame away from an entry: lob_ix_locate() finds its exact first line, and
 * readers decompress and parse nothing outside it.
 */
#ifndef LOB_TIMEINDEX_H
#define LOB_TIMEINDEX_H

#include "core/io/source.h"

/* Where the time of a line is (and how long a line may be). */
typedef struct lob_tskey_s {
    char sep;        /* field separator: ',' (CSV) or ' ' (raw lines "<ns> <message>") */
    int field;       /* 0-based field holding the time */
    int64_t unit;    /* ns per unit (1, 1e3, 1e6, 1e9), or 0: told apart by magnitude */
    int skip_lines;  /* header lines before the data */
    char name[64];   /* the field's name, for error messages */
    size_t max_line; /* longest line read, in bytes (0: LOB_MAX_LINE) */
} lob_tskey;

/* A point of the file: a line, and where to restart decompression to reach it. */
typedef struct lob_ixentry_s {
    int64_t ts;    /* time of the line, ns */
    int64_t line;  /* 1-based line number */
    int64_t row;   /* 0-based data row (header and blank lines are not rows) */
    int64_t d_off; /* text offset of the line's first byte */
    int64_t c_off; /* file offset where decompression restarts (a zstd frame, 0 for gzip) */
    int64_t d_at;  /* text offset of the byte decompressed first from c_off */
} lob_ixentry;

#define LOB_IX_FIELDS 6 /* int64 fields of an entry, in the order above */

/* The layout of an entry, for a binding that checks its own against it. */
typedef struct lob_ixfield_s {
    const char *name;
    size_t offset;
} lob_ixfield;

extern const lob_ixfield lob_ix_layout[LOB_IX_FIELDS];

/* A piece of a window: the span to read, the line before its first, and its rows. */
typedef struct lob_ixpiece_s {
    lob_span span;
    int64_t line0, rows;
} lob_ixpiece;

/* The index of one file. */
typedef struct lob_ix_s {
    lob_ixentry *e;   /* entries, in file order */
    size_t n, cap;    /* entries used / allocated */
    int64_t rows;     /* data rows */
    int64_t lines;    /* lines, header and blank lines included */
    int64_t first_ts; /* time of the first row (INT64_MIN when there is none) */
    int64_t last_ts;  /* time of the last row */
    int64_t data_off; /* text offset of the first data line */
    int64_t d_size;   /* text bytes indexed: the end of the last complete line */
    int64_t c_size;   /* file bytes they come from */
    int64_t frames;   /* zstd data frames read (0 for plain and gzip; the seek table is not one) */
    int64_t seek_frames; /* frames listed by the seek table that ends the file, or -1 */
    int64_t truncated;   /* file bytes of an incomplete last frame or member */
    int64_t partial;     /* text bytes of an unterminated last line that was left out */
    int64_t junk_off;    /* file offset of junk after the compressed data, or -1 */
    int compression;     /* lob_compression */
    int64_t bad_frame;   /* -1, or the zstd frame that failed to decompress ... */
    int64_t bad_c_off;   /* ... its file offset ... */
    char bad_msg[256];   /* ... and why; everything before it is indexed */
} lob_ix;

/*! lob_ix_build() : index `path` (plain, gzip or zstd).  Every data line's time is parsed;
 *  a line whose time goes back fails with LOB_E_FORMAT naming it (line and byte offset).
 *  A corrupt zstd frame ends the index at the frame before it (ix->bad_*); a file cut off
 *  in its last frame is indexed up to its last complete line (ix->truncated); a last line
 *  without "\n" whose time does not parse (or goes back) is a line being written: it is
 *  left out (ix->partial).  Junk after compressed data ends the index (ix->junk_off).
 *  The stop check in err->poll is asked at every chunk (LOB_E_INTR).
 *  @return 0 or a negative code; ix is then empty. */
int lob_ix_build(const char *path, const lob_tskey *key, int64_t block, lob_ix *ix, lob_error *err);

/*! lob_ix_locate() : the first data line at or after `from` with time >= t, scanning at
 *  most to text offset `d_end` (where the answer is `*end`, passed in by the caller).
 *  `from` must be an entry of this file's index or a position found by this function.
 *  The result keeps from's restart point.  @return 0 or a negative code. */
int lob_ix_locate(const char *path, const lob_tskey *key, const lob_ixentry *from,
                  const lob_ixentry *end, int64_t t, lob_ixentry *out, lob_error *err);

/*! lob_ix_end() : the position after the last row of `ix`. */
lob_ixentry lob_ix_end(const lob_ix *ix);

/*! lob_ix_seek() : the position of the first row with time >= t (lob_ix_end() when none):
 *  from the last entry before t, scanning at most one block or frame.  *looked grows by the
 *  text bytes a compressed file decompressed to find it.  @return 0 or a negative code. */
int lob_ix_seek(const char *path, const lob_tskey *key, const lob_ix *ix, int64_t t,
                lob_ixentry *out, int64_t *looked, lob_error *err);

/*! lob_ix_window() : ends[0] the first row at or after t0, ends[1] the first at or after t1
 *  rows [ends[0].row, ends[1].row) are the window (none when t1 <= t0).  *looked as lob_ix_seek().
 *  @return 0 or a negative code. */
int lob_ix_window(const char *path, const lob_tskey *key, const lob_ix *ix, int64_t t0, int64_t t1,
                  lob_ixentry ends[2], int64_t *looked, lob_error *err);

/*! lob_ix_span() : the bytes to read for rows [a, b): decompression restarts at a's
 *  restart point; the text runs from a's line to b's. */
lob_span lob_ix_span(const lob_ixentry *a, const lob_ixentry *b);

/*! lob_ix_pieces() : rows [a, b) (positions of this index) in at most `n` pieces of about
 *  equal rows, cut at entries, into out[] (room for n).  @return the pieces written. */
size_t lob_ix_pieces(const lob_ix *ix, const lob_ixentry *a, const lob_ixentry *b, size_t n,
                     lob_ixpiece *out);

/*! lob_line_time() : the time of line [s, s + n) by `key` into *ns.
 *  @return 0, or LOB_E_FORMAT / LOB_E_RANGE with err->msg saying why. */
int lob_line_time(const char *s, size_t n, const lob_tskey *key, int64_t *ns, lob_error *err);

/*! lob_ix_free() : free the entries; ix becomes empty.  NULL-safe. */
void lob_ix_free(lob_ix *ix);

#endif /* LOB_TIMEINDEX_H */
