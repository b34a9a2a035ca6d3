/* reader.c -- file -> lines -> format, with error locations and chunking. */
#include "reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOB_BUF_INIT ((size_t)1 << 20) /* text buffer; grows for longer lines */

struct lob_reader_s {
    const lob_format *fmt; /* the line format */
    void *ctx;             /* its state */
    int skip_errors;       /* count bad lines instead of failing */
    lob_source *src;       /* the open file, or NULL */
    char *buf;             /* decompressed text not yet parsed */
    size_t cap;            /* bytes allocated in buf */
    size_t len;            /* valid bytes in buf */
    size_t pos;            /* next unparsed byte in buf */
    int64_t line;          /* lines parsed in this file */
    int64_t offset;        /* text offset of buf[pos] in this file */
    int src_done;          /* the source has no more bytes */
    /* counters over all files */
    int64_t files;              /* files opened */
    int64_t lines;              /* lines parsed */
    int64_t bytes;              /* text bytes parsed */
    int64_t bad_lines;          /* lines skipped with on_error="skip" */
    int64_t truncated_files;    /* compressed files cut off before their end */
    int64_t truncated_bytes;    /* compressed bytes lost at those cuts */
    int64_t partial_line_bytes; /* text of an unterminated last line dropped at a cut */
    int64_t decompressed;       /* bytes decompressed (what a window read cost) */
    char first_error[256];      /* first skipped error, for the summary */
    char last_error[256];       /* most recent error (raised or skipped) */
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
    r->skip_errors = skip_errors;
    *out = r;
    return LOB_OK;
}

int
lob_reader_open(lob_reader *r, const char *path, lob_error *err)
{
    r->decompressed += r->src ? lob_source_decompressed(r->src) : 0;
    lob_source_free(r->src);
    r->src = NULL;
    r->len = r->pos = 0;
    r->line = r->offset = 0;
    r->src_done = 0;
    LOB_FORWARD_IF_ERROR(lob_source_open(&r->src, path, err));
    r->files++;
    return LOB_OK;
}

int
lob_reader_open_span(lob_reader *r, const char *path, const lob_span *span, int64_t line0,
                     lob_error *err)
{
    LOB_FORWARD_IF_ERROR(lob_reader_open(r, path, err));
    LOB_FORWARD_IF_ERROR(
        lob_source_window(r->src, span->c_lo, span->d_at, span->d_lo, span->d_hi, err));
    r->line = line0;
    r->offset = span->d_lo;
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

/* Read more text, keeping the unparsed tail; grows the buffer for a line longer than it. */
static int
refill(lob_reader *r, lob_error *err)
{
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->len -= r->pos;
        r->pos = 0;
    }
    if (r->cap - r->len < LOB_BUF_INIT / 4) {
        size_t cap = r->cap == 0 ? LOB_BUF_INIT : r->cap * 2;
        char *b = realloc(r->buf, cap);
        if (b == NULL) {
            return lob_error_set(err, LOB_E_NOMEM, "no memory for a %zu-byte line", r->len);
        }
        r->buf = b;
        r->cap = cap;
    }
    ptrdiff_t n = lob_source_read(r->src, r->buf + r->len, r->cap - r->len, err);
    if (n < 0) {
        return (int)n;
    }
    if (n == 0) {
        r->src_done = 1;
    }
    r->len += (size_t)n;
    return LOB_OK;
}

/* Parse one line; apply the on_error policy and fill in the location of a failure. */
static int
parse_line(lob_reader *r, const char *s, size_t n, lob_error *err)
{
    r->line++;
    r->lines++;
    r->bytes += (int64_t)n + 1;
    if (n > 0 && s[n - 1] == '\r') {
        n--;
    }
    int rc = r->fmt->line(r->ctx, s, n, err);
    if (rc == LOB_E_FORMAT || rc == LOB_E_RANGE) {
        err->line = r->line;
        err->offset = r->offset;
        snprintf(r->last_error, sizeof r->last_error, "line %lld: %.200s", (long long)r->line,
                 err->msg);
        if (r->skip_errors) {
            if (r->bad_lines++ == 0) {
                snprintf(r->first_error, sizeof r->first_error, "line %lld: %.200s",
                         (long long)r->line, err->msg);
            }
            err->line = err->offset = 0; /* a later, unrelated error must not inherit it */
            return LOB_OK;
        }
    }
    return rc;
}

int
lob_reader_pump(lob_reader *r, size_t max_rows, int *eof, lob_error *err)
{
    *eof = 0;
    if (r->src == NULL) {
        *eof = 1;
        return LOB_OK;
    }
    for (;;) {
        if (max_rows > 0 && rows(r) >= max_rows) {
            return LOB_OK;
        }
        size_t avail = r->len - r->pos;
        char *s = avail > 0 ? r->buf + r->pos : NULL; /* buf is NULL before the first read */
        char *nl = avail > 0 ? memchr(s, '\n', avail) : NULL;
        if (nl != NULL) {
            size_t n = (size_t)(nl - s);
            LOB_FORWARD_IF_ERROR(parse_line(r, s, n, err));
            r->pos += n + 1;
            r->offset += (int64_t)n + 1;
            continue;
        }
        if (!r->src_done) {
            int rc = refill(r, err);
            if (rc < 0) {
                size_t k = strlen(err->msg);
                snprintf(err->msg + k, sizeof err->msg - k, " (after line %lld, byte %lld)",
                         (long long)r->line, (long long)r->offset);
                err->line = err->offset = 0;
                return rc;
            }
            continue;
        }
        /* end of file: a last line without '\n' is complete unless the file was cut */
        size_t n = r->len - r->pos;
        int64_t cut = lob_source_truncated(r->src);
        if (cut > 0) {
            r->truncated_files++;
            r->truncated_bytes += cut;
            r->partial_line_bytes += (int64_t)n;
        }
        else if (n > 0) {
            LOB_FORWARD_IF_ERROR(parse_line(r, s, n, err));
        }
        r->pos = r->len;
        r->offset += (int64_t)n;
        r->decompressed += lob_source_decompressed(r->src);
        lob_source_free(r->src);
        r->src = NULL;
        *eof = 1;
        return LOB_OK;
    }
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

void
lob_reader_free(lob_reader *r)
{
    if (r == NULL) {
        return;
    }
    if (r->ctx != NULL) {
        r->fmt->destroy(r->ctx);
    }
    lob_source_free(r->src);
    free(r->buf);
    free(r);
}
