/* source.h -- decompressed bytes from a plain, gzip or zstd file.
 *
 * The compression is recognised by magic bytes, not by file name.  A compressed file that
 * ends early (a recorder that crashed) yields everything up to the cut and reports how
 * many compressed bytes it could not use, instead of failing the whole read; bytes after
 * the last member/frame that are not one (zero padding, junk) end the data the same way
 * (lob_source_junk).  Reads go on after a signal (EINTR), after asking the caller's stop
 * check (err->poll) whether to end instead.
 */
#ifndef LOB_SOURCE_H
#define LOB_SOURCE_H

#include "core/lob.h"

typedef struct lob_source_s lob_source;

typedef enum {
    LOB_PLAIN = 0,
    LOB_GZIP = 1,
    LOB_ZSTD = 2,
} lob_compression;

/* A window of a file: text [d_lo, d_hi), decompressed from file offset c_lo whose text
 * offset is d_at (see lob_source_window). */
typedef struct lob_span_s {
    int64_t c_lo, d_at, d_lo, d_hi;
} lob_span;

/*! lob_source_open() : open `path` for reading.  @return 0 or LOB_E_IO (err->sys_errno set)
 *  / LOB_E_NOMEM / LOB_E_INTR. */
int lob_source_open(lob_source **out, const char *path, lob_error *err);

/*! lob_source_read() : up to `cap` decompressed bytes into `dst`.
 *  @return bytes read (0 at the end), or a negative code (LOB_E_IO, LOB_E_CORRUPT). */
ptrdiff_t lob_source_read(lob_source *s, char *dst, size_t cap, lob_error *err);

/*! lob_source_forget_stop() : a stop (LOB_E_INTR) was reported to the caller: a stop this
 *  source held back to deliver bytes decompressed before it is the same stop, not another. */
void lob_source_forget_stop(lob_source *s);

/*! lob_source_truncated() : after the end, the number of compressed bytes at the tail
 *  that belong to an incomplete gzip member or zstd frame (0 for a complete file). */
int64_t lob_source_truncated(const lob_source *s);

/*! lob_source_junk() : after the end, the file offset of bytes that follow the last
 *  complete gzip member or zstd frame but are neither (zero padding, garbage): they are not
 *  read.  -1 when there are none. */
int64_t lob_source_junk(const lob_source *s);

/*! lob_source_compression() : what the file turned out to be. */
lob_compression lob_source_compression(const lob_source *s);

/*! lob_source_window() : deliver only the decompressed bytes [d_lo, d_hi) of the file, then
 *  end.  Decompression restarts at compressed offset `c_lo`, whose decompressed offset is
 *  `d_at` (<= d_lo): a zstd frame start, 0 for gzip, d_lo itself for a plain file.  Call it
 *  right after lob_source_open(), before any read.  @return 0 or LOB_E_ARG / LOB_E_IO. */
int lob_source_window(lob_source *s, int64_t c_lo, int64_t d_at, int64_t d_lo, int64_t d_hi,
                      lob_error *err);

/*! lob_source_restart() : lob_source_window(), for a window (windowed != 0) or for the rest
 *  of a whole-file read that goes on from the frame at c_lo (windowed == 0: junk after the
 *  data then ends it, as in a read from the start, instead of being an error). */
int lob_source_restart(lob_source *s, int64_t c_lo, int64_t d_at, int64_t d_lo, int64_t d_hi,
                       int windowed, lob_error *err);

/*! lob_source_coffset() : file offset of the next byte the decompressor has not used. */
int64_t lob_source_coffset(const lob_source *s);

/*! lob_source_frame() : the zstd frame that produced the bytes of the last read (a zstd
 *  read never runs past the end of a frame, so they all come from one): its compressed
 *  offset and the decompressed offset of its first byte.  Frames are counted from where
 *  reading started.  @return the frame's number, or -1 for plain and gzip files. */
int64_t lob_source_frame(const lob_source *s, int64_t *c_off, int64_t *d_off);

/*! lob_source_decompressed() : bytes produced by decompression so far (0 for plain files):
 *  what a window read really cost. */
int64_t lob_source_decompressed(const lob_source *s);

/*! lob_source_free() : close and free.  NULL-safe. */
void lob_source_free(lob_source *s);

#endif /* LOB_SOURCE_H */
