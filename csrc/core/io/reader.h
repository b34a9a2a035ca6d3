/* reader.h -- drives a line format over files: decompress, split lines, parse, locate errors.
 *
 * A format (Binance raw lines, Tardis CSV, data.binance.vision CSV) only sees one line at
 * a time and appends to its output tables.  The reader owns everything shared: the file,
 * the line buffer, line numbers and byte offsets for error messages, the on_error policy,
 * and stopping after about `max_rows` rows so long files are read in chunks.  Format state
 * (sequence numbers, pending snapshots) lives across chunks and files.
 */
#ifndef LOB_READER_H
#define LOB_READER_H

#include "core/io/source.h"
#include "core/table.h"

#define LOB_MAX_TABLES 4
#define LOB_MAX_STATS 64
#define LOB_SYMBOL_MAX 32 /* bytes in a symbol name, NUL included */

/* Options every format receives. */
typedef struct lob_opts_s {
    char symbol[LOB_SYMBOL_MAX]; /* selected symbol, "" = the first one seen */
    int64_t start_ns;            /* keep messages received at or after this time */
    int64_t end_ns;              /* ... and before this time */
    size_t max_line;             /* longest line read, in bytes (0: LOB_MAX_LINE) */
    int keep_book;               /* Binance: replay lines before start_ns into the book */
    int64_t checkpoint_every;    /* Binance: record checkpoints while replaying (> 0) */
    int threads;                 /* zstd files with a seek table: parse frames on this many
                                  * threads (formats with work_line; <= 1: one at a time) */
} lob_opts;

/* One named counter (text == NULL) or text value reported by a format. */
typedef struct lob_stat_s {
    const char *name;
    int64_t value;
    const char *text;
} lob_stat;

/* The most output tables a format has (the reader keeps a note per table). */
#define LOB_READER_TABLES 8

/* The interface a line format implements. */
typedef struct lob_format_s {
    const char *name;               /* "binance", "tardis", "vision" */
    int ntables;                    /* output tables */
    const char *const *table_names; /* ntables names */
    int (*create)(void **ctx, const lob_opts *opts);
    void (*destroy)(void *ctx);
    /* Parse one line (no newline).  May return LOB_E_FORMAT/LOB_E_RANGE with err->msg set;
     * it must then leave its tables as they were before the line. */
    int (*line)(void *ctx, const char *s, size_t n, lob_error *err);
    int (*finish)(void *ctx, lob_error *err); /* end of all input */
    lob_table *(*table)(void *ctx, int i);
    int (*stats)(void *ctx, lob_stat *out, int cap); /* @return count */
    /* Optional (NULL: lines are parsed one at a time by line()).  line() split in two, so
     * that worker threads parse the lines of zstd frames while one thread applies them in
     * order.  A worker state `w` holds one frame's parsed lines:
     *  - work_new/work_free (NULL-safe): a worker state for these options (@return 0 or
     *    LOB_E_NOMEM);
     *  - work_reset: forget the lines held (a new frame);
     *  - work_line: parse the next line without the format's state; what line() would fail
     *    with is kept for commit (@return 0, or LOB_E_NOMEM: the frame is then read by line());
     *  - commit: line k of w (text s, n) into the format's state, exactly as line() does. */
    int (*work_new)(void **w, const lob_opts *opts);
    void (*work_free)(void *w);
    void (*work_reset)(void *w);
    int (*work_line)(void *w, const char *s, size_t n);
    int (*commit)(void *ctx, void *w, size_t k, const char *s, size_t n, lob_error *err);
} lob_format;

extern const lob_format lob_format_binance;
extern const lob_format lob_format_tardis;
extern const lob_format lob_format_vision;

typedef struct lob_reader_s lob_reader;

/*! lob_reader_new() : a reader of `fmt`; skip_errors != 0 counts bad lines instead of
 *  failing.  @return 0 or LOB_E_NOMEM. */
int lob_reader_new(lob_reader **out, const lob_format *fmt, const lob_opts *opts, int skip_errors,
                   lob_error *err);

/*! lob_reader_open() : start reading `path` (closing any previous file).  Line numbers
 *  restart at 1; the format's state carries over.  @return 0 or LOB_E_IO. */
int lob_reader_open(lob_reader *r, const char *path, lob_error *err);

/*! lob_reader_open_span() : lob_reader_open() of the window `span` of the file only (see
 *  lob_source_window); `line0` lines come before it, for line numbers in errors. */
int lob_reader_open_span(lob_reader *r, const char *path, const lob_span *span, int64_t line0,
                         lob_error *err);

/*! lob_reader_pump() : parse lines until the file ends (*eof = 1) or the output tables
 *  hold at least `max_rows` rows (0 = no limit).  Pure C: safe without the GIL.
 *  The file's last line, when it has no "\n" (a writer is in the middle of it) and does not
 *  parse, is dropped and counted (stats partial_line_bytes, partial_line_offset), as the cut
 *  line of a truncated compressed file is; one that parses is kept.  A stop (LOB_E_INTR from
 *  err->poll) leaves the reader as it was after the last whole line: pump() goes on from
 *  there.  @return 0 or a negative code with err describing the line. */
int lob_reader_pump(lob_reader *r, size_t max_rows, int *eof, lob_error *err);

/*! lob_reader_close() : close the file being read, if any (format state and tables stay). */
void lob_reader_close(lob_reader *r);

/*! lob_reader_finish() : end of all input (flush what formats hold back). */
int lob_reader_finish(lob_reader *r, lob_error *err);

/*! lob_reader_table() : output table i (0 <= i < fmt->ntables). */
lob_table *lob_reader_table(lob_reader *r, int i);

/*! lob_reader_stats() : the reader's counters followed by the format's. @return count. */
int lob_reader_stats(lob_reader *r, lob_stat *out, int cap);

/*! lob_stats_copy() : copy up to `cap` of the n stats in `all` into `out`: what a
 *  format's stats() does with its table of counters.  @return how many were copied. */
int lob_stats_copy(lob_stat *out, int cap, const lob_stat *all, size_t n);

/*! lob_reader_format() : the format this reader parses. */
const lob_format *lob_reader_format(const lob_reader *r);

/*! lob_reader_state() : the format's state, for a format's own functions (binance.h). */
void *lob_reader_state(lob_reader *r);

/*! lob_reader_free() : NULL-safe. */
void lob_reader_free(lob_reader *r);

#endif /* LOB_READER_H */
