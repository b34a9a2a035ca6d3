/* zframes.h -- zstd files a reader can seek in: independent frames plus a seek table.
 *
 * Each frame is compressed on its own (content size and checksum in its header and
 * epilogue), so decompression can start at any frame.  At close the zstd seekable format's
 * seek table (v0.1.0, no per-frame checksums: each frame carries its own) is appended as a
 * skippable frame, which plain zstd decoders ignore.  A file cut off before its table is
 * still a valid multi-frame stream up to its last complete frame.
 */
#ifndef LOB_ZFRAMES_H
#define LOB_ZFRAMES_H

#include "core/io/lines.h"
#include "core/io/timeindex.h"

typedef struct lob_zwriter_s lob_zwriter;

/* A zstd compressor (context and output buffer).  Writers used from one thread can share
 * one: a recorder with a file per symbol then holds one compressor, not one per file. */
typedef struct lob_zctx_s lob_zctx;

/*! lob_zctx_new() : a compressor at `level`.  @return 0 or LOB_E_NOMEM / LOB_E_ARG. */
int lob_zctx_new(lob_zctx **out, int level, lob_error *err);

/*! lob_zctx_free() : NULL-safe. */
void lob_zctx_free(lob_zctx *z);

enum { LOB_ZW_EXCL = 1 }; /* lob_zwriter_open: fail if the file exists (else truncate it) */

/*! lob_zwriter_open() : create `path` for frames compressed by `z` (borrowed; it must outlive
 *  the writer), or by a compressor of its own at `level` when `z` is NULL.
 *  @return 0 or LOB_E_IO / LOB_E_NOMEM / LOB_E_ARG. */
int lob_zwriter_open(lob_zwriter **out, const char *path, lob_zctx *z, int level, int flags,
                     lob_error *err);

/*! lob_zwriter_frame() : compress [src, src + n) as one frame and write it, unbuffered (a
 *  killed process leaves every complete frame).  A failed write cuts the file back to its
 *  last complete frame.  @return 0 or LOB_E_IO (errno text: a full disk says so) / LOB_E_ARG
 *  (n >= 2 GiB). */
int lob_zwriter_frame(lob_zwriter *w, const void *src, size_t n, lob_error *err);

/*! lob_zwriter_close() : write the seek table, close and free `w` (even on error; NULL-safe).
 *  @return 0 or LOB_E_IO. */
int lob_zwriter_close(lob_zwriter *w, lob_error *err);

/*! lob_zwriter_stats() : frames and compressed bytes written so far. */
void lob_zwriter_stats(const lob_zwriter *w, int64_t *frames, int64_t *bytes);

/*! lob_seek_table_frames() : the frames listed by the zstd seekable-format seek table that
 *  ends `path` into *frames, or -1 when the file does not end with one.
 *  @return 0 or LOB_E_IO (err->sys_errno set). */
int lob_seek_table_frames(const char *path, int64_t *frames, lob_error *err);

/* One frame a seek table lists: its compressed and decompressed sizes. */
typedef struct lob_zframe_s {
    uint32_t csize, dsize;
} lob_zframe;

/*! lob_seek_table_read() : the frames listed by the seek table that ends `path` into *out
 *  (malloc'd, *n of them; the caller frees it) and the file offset where the table's
 *  skippable frame starts into *table_at.  *out is NULL and *n -1 when the file does not end
 *  with a well-formed table.  The sizes are the table's word: a reader checks each frame
 *  against them.  @return 0 or LOB_E_IO (err->sys_errno set) / LOB_E_NOMEM. */
int lob_seek_table_read(const char *path, lob_zframe **out, int64_t *n, int64_t *table_at,
                        lob_error *err);

/* What lob_convert() did. */
typedef struct lob_convert_stats_s {
    int64_t lines, frames, bytes_in, bytes_out, partial, truncated;
    int64_t junk_off; /* file offset of junk after src's compressed data, or -1 */
} lob_convert_stats;

/*! lob_convert() : rewrite `src` (plain, gzip or zstd) as seekable frames in `dst`: a new
 *  frame when the next line's time (by `key`, when not NULL) is `frame_ns` or more after the
 *  frame's first, or before the frame would pass `frame_bytes`.  Lines are copied byte for
 *  byte, and never split between frames.  Lines are at most key->max_line bytes; the stop
 *  check in err->poll is asked at every chunk read.  @return 0 or a negative code. */
int lob_convert(const char *src, const char *dst, const lob_tskey *key, int64_t frame_ns,
                size_t frame_bytes, int level, lob_convert_stats *st, lob_error *err);

#endif /* LOB_ZFRAMES_H */
