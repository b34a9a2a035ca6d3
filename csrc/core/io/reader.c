/* reader.c -- file -> lines -> format, with error locations and chunking. */
#include "core/io/reader.h"

#include "core/io/lines.h"
#include "core/io/zpar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lob_reader_s {
    const lob_format *fmt; /* the line format */
    void *ctx;             /* its state */
    int skip_errors;       /* count bad lines instead of failing */
    lob_lines ls;          /* the open file's lines (ls.src == NULL: none open) */
    lob_opts opts;         /* what the format was made with */
    /* a seekable zstd file read on opts.threads threads (zpar.h); then ls only counts */
    lob_zpar *zp;             /* its frames, NULL when read one line at a time */
    lob_zpar_frame *frame;    /* the frame being applied, or NULL */
    size_t kline;             /* its next line */
    int64_t zp_produced;      /* bytes decompressed for the frames applied */
    int windowed;             /* the file was opened for a span */
    int64_t span_lo, span_hi; /* its text window */
    /* counters over all files */
    int64_t files;              /* files opened */
    int64_t lines;              /* lines parsed */
    int64_t bytes;              /* text bytes parsed */
    int64_t bad_lines;          /* lines skipped with on_error="skip" */
    int64_t truncated_files;    /* compressed files cut off before their end */
    int64_t truncated_bytes;    /* compressed bytes lost at those cuts */
    int64_t partial_line_bytes; /* text of an unterminated last line dropped at a cut */
    int64_t partial_lines;      /* such lines: at a cut, or not parsing at a plain end */
    int64_t partial_offset;     /* text offset of the last one */
    int64_t junk_files;         /* files with junk after their compressed data */
    int64_t junk_offset;        /* file offset where the last such junk begins */
    size_t max_line;            /* longest line read */
    int64_t decompressed;       /* bytes decompressed (what a window read cost) */
    char first_error[256];      /* first skipped error, for the summary */
    char last_error[256];       /* most recent error (raised or skipped) */
    /* rows each table held when the last chunk (max_rows) was full: the room the next one,
     * taken afresh, is given at once, so that a chunk's columns are one block each, not a
     * doubling series of fresh blocks each copied into the next */
    size_t chunk_rows[LOB_READER_TABLES];
};

int
lob_reader_new(lob_reader **out, const lob_format *fmt, const lob_opts *opts, int skip_errors,
               lob_error *err)
{
    *out = NULL;
    lob_reader *r = calloc(1, sizeof *r);
    if (r == NULL || fmt->create(&r->ctx, opts) < 0) {
        free(r);
        return lob_error_set(err, LOB_E_NOMEM, "no memory for a %s reader", fmt->name);
    }
    r->fmt = fmt;
    r->opts = *opts;
    r->skip_errors = skip_errors;
    r->max_line = opts->max_line > 0 ? opts->max_line : LOB_MAX_LINE;
    r->junk_offset = -1;
    *out = r;
    return LOB_OK;
}

/* Close the file being read, counting what its decompression cost. */
static void
close_file(lob_reader *r)
{
    r->decompressed += r->ls.src ? lob_source_decompressed(r->ls.src) : 0;
    r->decompressed += r->zp_produced;
    r->zp_produced = 0;
    lob_zpar_free(r->zp);
    r->zp = NULL;
    r->frame = NULL;
    lob_lines_close(&r->ls);
}

int
lob_reader_open(lob_reader *r, const char *path, lob_error *err)
{
    return lob_reader_open_span(r, path, NULL, 0, err);
}

int
lob_reader_open_span(lob_reader *r, const char *path, const lob_span *span, int64_t line0,
                     lob_error *err)
{
    close_file(r);
    LOB_FORWARD_IF_ERROR(lob_lines_open(&r->ls, path, span, line0, err));
    r->ls.max_line = r->max_line;
    r->files++;
    r->windowed = span != NULL;
    r->span_lo = span ? span->d_lo : 0;
    r->span_hi = span ? span->d_hi : INT64_MAX;
    if (r->opts.threads > 1 && lob_source_compression(r->ls.src) == LOB_ZSTD) {
        int rc =
            lob_zpar_open(&r->zp, path, r->fmt, &r->opts, span, r->opts.threads, r->max_line, err);
        if (rc < 0) {
            close_file(r);
            return rc;
        }
    }
    return LOB_OK;
}

static size_t
rows(lob_reader *r)
{
    size_t n = 0;
    for (int i = 0; i < r->fmt->ntables; i++) {
        n += r->fmt->table(r->ctx, i)->n;
    }
    return n;
}

/* What the format made of line `line` (its text offset is `off`, its raw length with "\n"
 * `raw`): apply the on_error policy and fill in the location of a failure. */
static int
after_line(lob_reader *r, int rc, int64_t line, int64_t off, int64_t raw, lob_error *err)
{
    if ((rc == LOB_E_FORMAT || rc == LOB_E_RANGE) && r->ls.unterminated) {
        /* the last line, without "\n", does not parse: a writer is in the middle of it */
        r->partial_lines++;
        r->partial_line_bytes += raw;
        r->partial_offset = off;
        lob_error_clear(err);
        return LOB_OK;
    }
    r->lines++;
    r->bytes += raw;
    if (rc == LOB_E_FORMAT || rc == LOB_E_RANGE) {
        err->line = line;
        err->offset = off;
        snprintf(r->last_error, sizeof r->last_error, "line %lld: %.200s", (long long)line,
                 err->msg);
        if (r->skip_errors) {
            if (r->bad_lines++ == 0) {
                snprintf(r->first_error, sizeof r->first_error, "line %lld: %.200s",
                         (long long)line, err->msg);
            }
            err->line = err->offset = 0; /* a later, unrelated error must not inherit it */
            return LOB_OK;
        }
    }
    return rc;
}

/* Parse one line with the format's line(). */
static int
parse_line(lob_reader *r, const char *s, size_t n, int64_t off, int64_t raw, lob_error *err)
{
    int64_t line = r->ls.line;
    return after_line(r, r->fmt->line(r->ctx, s, n, err), line, off, raw, err);
}

/* pump() over the frames workers parsed, in order, until max_rows or a frame they left to
 * one thread (or the end): *alone is then set, with ls restarted at that frame. */
static int
pump_frames(lob_reader *r, size_t max_rows, int *alone, lob_error *err)
{
    *alone = 0;
    r->ls.unterminated = 0;
    lob_zpar_away(r->zp, 0);
    for (;;) {
        if (r->frame == NULL) {
            LOB_FORWARD_IF_ERROR(lob_zpar_next(r->zp, &r->frame, err));
            r->kline = 0;
        }
        lob_zpar_frame *f = r->frame;
        if (!f->parsed) {
            /* the rest is read as a sequential read reads it from this frame on */
            int64_t d_lo = f->d_at > r->span_lo ? f->d_at : r->span_lo;
            lob_span span = {f->c_at, f->d_at, d_lo, r->span_hi > d_lo ? r->span_hi : d_lo};
            lob_zpar_free(r->zp);
            r->zp = NULL;
            r->frame = NULL;
            *alone = 1;
            return lob_lines_restart(&r->ls, &span, r->windowed, err);
        }
        while (r->kline < f->nlines) {
            if (max_rows > 0 && rows(r) >= max_rows) {
                lob_zpar_away(r->zp, 1); /* the caller takes the chunk: parse ahead meanwhile */
                return LOB_OK;
            }
            if (LOB_POLL_DUE(r->ls.line)) {
                LOB_FORWARD_IF_ERROR(lob_poll_stop(err));
            }
            size_t k = r->kline++, a = f->start[k];
            int64_t raw = (int64_t)(f->start[k + 1] - a);
            size_t n = f->len[k];
            const char *s = f->text + a;
            int64_t off = f->off + (int64_t)a;
            r->ls.line++;
            r->ls.off = off + raw;
            int rc = r->fmt->commit(r->ctx, f->work, k, s, n, err);
            LOB_FORWARD_IF_ERROR(after_line(r, rc, r->ls.line, off, raw, err));
        }
        r->zp_produced += f->produced;
        r->frame = NULL;
        lob_zpar_done(r->zp);
    }
}

static int
pump(lob_reader *r, size_t max_rows, int *eof, lob_error *err)
{
    *eof = 0;
    if (r->ls.src == NULL) {
        *eof = 1;
        return LOB_OK;
    }
    if (r->zp != NULL) {
        int alone;
        LOB_FORWARD_IF_ERROR(pump_frames(r, max_rows, &alone, err));
        if (!alone) {
            return LOB_OK; /* max_rows */
        }
    }
    const char *s;
    size_t n;
    int64_t off;
    for (;;) {
        if (max_rows > 0 && rows(r) >= max_rows) {
            return LOB_OK;
        }
        int rc = lob_lines_next(&r->ls, &s, &n, &off, err);
        if (rc > 0) {
            LOB_FORWARD_IF_ERROR(parse_line(r, s, n, off, r->ls.off - off, err));
            continue;
        }
        if (rc < 0) {
            if (err->line == 0 && rc != LOB_E_INTR) { /* could not read on: say how far it got */
                size_t k = strlen(err->msg);
                snprintf(err->msg + k, sizeof err->msg - k, " (after line %lld, byte %lld)",
                         (long long)r->ls.line, (long long)r->ls.off);
            }
            return rc;
        }
        int64_t cut = lob_source_truncated(r->ls.src);
        if (cut > 0) {
            r->truncated_files++;
            r->truncated_bytes += cut;
            r->partial_line_bytes += r->ls.partial;
            if (r->ls.partial > 0) {
                r->partial_lines++;
                r->partial_offset = r->ls.off;
            }
        }
        if (lob_source_junk(r->ls.src) >= 0) {
            r->junk_files++;
            r->junk_offset = lob_source_junk(r->ls.src);
        }
        close_file(r);
        *eof = 1;
        return LOB_OK;
    }
}

/* Before a chunk: tables handed over since the last one get the rows that one needed. */
static int
reserve_chunk(lob_reader *r, size_t max_rows)
{
    for (int i = 0; max_rows > 0 && i < r->fmt->ntables && i < LOB_READER_TABLES; i++) {
        lob_table *t = r->fmt->table(r->ctx, i);
        size_t want = r->chunk_rows[i] + r->chunk_rows[i] / 8; /* a chunk ends after a line */
        if (t->n == 0 && t->cap < want && lob_table_reserve(t, want) < 0) {
            return LOB_E_NOMEM;
        }
    }
    return LOB_OK;
}

/* After a chunk that reached max_rows: what each table held. */
static void
note_chunk(lob_reader *r, size_t max_rows, int eof)
{
    if (max_rows == 0 || eof || rows(r) < max_rows) {
        return;
    }
    for (int i = 0; i < r->fmt->ntables && i < LOB_READER_TABLES; i++) {
        r->chunk_rows[i] = r->fmt->table(r->ctx, i)->n;
    }
}

int
lob_reader_pump(lob_reader *r, size_t max_rows, int *eof, lob_error *err)
{
    if (reserve_chunk(r, max_rows) < 0) {
        return lob_error_set(err, LOB_E_NOMEM, "out of memory for a chunk of rows");
    }
    int rc = pump(r, max_rows, eof, err);
    if (rc == LOB_OK) {
        note_chunk(r, max_rows, *eof);
    }
    if (rc == LOB_E_INTR && r->ls.src != NULL) {
        lob_source_forget_stop(r->ls.src); /* one stop, reported once */
    }
    return rc;
}

void
lob_reader_close(lob_reader *r)
{
    close_file(r);
}

int
lob_reader_finish(lob_reader *r, lob_error *err)
{
    return r->fmt->finish(r->ctx, err);
}

lob_table *
lob_reader_table(lob_reader *r, int i)
{
    return r->fmt->table(r->ctx, i);
}

int
lob_reader_stats(lob_reader *r, lob_stat *out, int cap)
{
    const lob_stat mine[] = {
        {"files", r->files, NULL},
        {"lines", r->lines, NULL},
        {"bytes", r->bytes, NULL},
        {"bad_lines", r->bad_lines, NULL},
        {"first_bad_line", 0, r->bad_lines ? r->first_error : NULL},
        {"last_error", 0, r->last_error},
        {"truncated_files", r->truncated_files, NULL},
        {"truncated_bytes", r->truncated_bytes, NULL},
        {"partial_line_bytes", r->partial_line_bytes, NULL},
        {"partial_lines", r->partial_lines, NULL},
        {"partial_line_offset", r->partial_offset, NULL},
        {"junk_files", r->junk_files, NULL},
        {"junk_offset", r->junk_offset, NULL},
        {"decompressed_bytes", r->decompressed, NULL},
    };
    int k = 0;
    for (size_t i = 0; i < sizeof mine / sizeof mine[0] && k < cap; i++) {
        if (strcmp(mine[i].name, "first_bad_line") == 0 && mine[i].text == NULL) {
            continue;
        }
        out[k++] = mine[i];
    }
    return k + r->fmt->stats(r->ctx, out + k, cap - k);
}

int
lob_stats_copy(lob_stat *out, int cap, const lob_stat *all, size_t n)
{
    int k = 0;
    for (size_t i = 0; i < n && k < cap; i++) {
        out[k++] = all[i];
    }
    return k;
}

const lob_format *
lob_reader_format(const lob_reader *r)
{
    return r->fmt;
}

void *
lob_reader_state(lob_reader *r)
{
    return r->ctx;
}

void
lob_reader_free(lob_reader *r)
{
    if (r == NULL) {
        return;
    }
    lob_zpar_free(r->zp); /* its workers first */
    if (r->ctx != NULL) {
        r->fmt->destroy(r->ctx);
    }
    lob_lines_close(&r->ls);
    free(r);
}
