/* lines.h -- the lines of a file (or of a window of it), one at a time.
 *
 * The small line splitter shared by the time index, the CSV column reader and the
 * converter: text comes from a lob_source in chunks of about a megabyte; a line that runs
 * over a chunk (or over a zstd frame) is carried over to the next; a last line cut off by a
 * truncated file is dropped and counted, never half-parsed.  A line may be at most
 * `max_line` bytes (64 MiB unless the caller sets another bound after opening): memory stays
 * bounded whatever the file holds (a 1 GiB line in a small .zst, /dev/zero).  The caller's
 * stop check (err->poll) is asked at every chunk read, so every loop over lines can be
 * stopped (Ctrl-C) within a chunk.
 */
#ifndef LOB_LINES_H
#define LOB_LINES_H

#include "core/io/source.h"

#define LOB_MAX_LINE ((size_t)64 << 20)        /* default bound on a line's bytes */
#define LOB_MAX_LINE_LIMIT ((uint64_t)1 << 40) /* the most a caller may set */

typedef struct lob_lines_s {
    lob_source *src;  /* the open file */
    char *buf;        /* text not yet returned */
    size_t cap;       /* bytes allocated */
    size_t len;       /* valid bytes */
    size_t pos;       /* next unreturned byte */
    int64_t off;      /* text offset of buf[pos] */
    int64_t line;     /* lines returned so far (plus the first line number - 1) */
    int done;         /* the source has no more bytes */
    int64_t partial;  /* bytes of an unterminated last line dropped at a truncated end */
    size_t max_line;  /* longest line accepted, "\n" not counted (LOB_MAX_LINE after open) */
    int unterminated; /* the line returned last is the file's last and has no "\n" */
} lob_lines;

/*! lob_lines_open() : lines of `path`, or of `span` of it when not NULL.  `line0` is the
 *  number of lines before the first one returned (for error messages).
 *  @return 0 or a negative code (ls is then closed). */
int lob_lines_open(lob_lines *ls, const char *path, const lob_span *span, int64_t line0,
                   lob_error *err);

/*! lob_lines_restart() : go on from text offset span->d_lo (a line start) of the open file,
 *  decompressing from span->c_lo (see lob_source_restart); line numbers go on from where
 *  they are.  @return 0 or a negative code. */
int lob_lines_restart(lob_lines *ls, const lob_span *span, int windowed, lob_error *err);

/*! lob_lines_next() : the next line (without "\n" or "\r\n") at *s, *n; *off is its text
 *  offset.  @return 1 for a line, 0 at the end, or a negative code from the source, LOB_E_INTR
 *  from the stop check, or LOB_E_RANGE for a line over max_line (err->line and err->offset
 *  then name it). */
int lob_lines_next(lob_lines *ls, const char **s, size_t *n, int64_t *off, lob_error *err);

/*! lob_lines_close() : NULL-safe, idempotent. */
void lob_lines_close(lob_lines *ls);

#endif /* LOB_LINES_H */
