/* source.h -- decompressed bytes from a plain, gzip or zstd file.
 *
 * The compression is recognised by magic bytes, not by file name.  A compressed file that
 * ends early (a recorder that crashed) yields everything up to the cut and reports how
 * many compressed bytes it could not use, instead of failing the whole read.
 */
#ifndef LOB_SOURCE_H
#define LOB_SOURCE_H

#include "lob.h"

typedef struct lob_source_s lob_source;

typedef enum {
    LOB_PLAIN = 0,
    LOB_GZIP = 1,
    LOB_ZSTD = 2,
} lob_compression;

/*! lob_source_open() : open `path` for reading.  @return 0 or LOB_E_IO / LOB_E_NOMEM. */
int lob_source_open(lob_source **out, const char *path, lob_error *err);

/*! lob_source_read() : up to `cap` decompressed bytes into `dst`.
 *  @return bytes read (0 at the end), or a negative code (LOB_E_IO, LOB_E_CORRUPT). */
ptrdiff_t lob_source_read(lob_source *s, char *dst, size_t cap, lob_error *err);

/*! lob_source_truncated() : after the end, the number of compressed bytes at the tail
 *  that belong to an incomplete gzip member or zstd frame (0 for a complete file). */
int64_t lob_source_truncated(const lob_source *s);

/*! lob_source_compression() : what the file turned out to be. */
lob_compression lob_source_compression(const lob_source *s);

/*! lob_source_free() : close and free.  NULL-safe. */
void lob_source_free(lob_source *s);

#endif /* LOB_SOURCE_H */
