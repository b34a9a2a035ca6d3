/* lines.c -- a file's lines from a lob_source, with carry-over between chunks. */
#include "core/io/lines.h"

#include <stdlib.h>
#include <string.h>

#define LOB_LINES_FIRST ((size_t)1 << 16) /* a lookup near an index entry reads little */
#define LOB_LINES_CHUNK ((size_t)1 << 20) /* long reads go in chunks of this */

int
lob_lines_open(lob_lines *ls, const char *path, const lob_span *span, int64_t line0, lob_error *err)
{
    memset(ls, 0, sizeof *ls);
    ls->line = line0;
    ls->max_line = LOB_MAX_LINE;
    LOB_FORWARD_IF_ERROR(lob_source_open(&ls->src, path, err));
    if (span != NULL) {
        int rc = lob_source_window(ls->src, span->c_lo, span->d_at, span->d_lo, span->d_hi, err);
        if (rc < 0) {
            lob_lines_close(ls);
            return rc;
        }
        ls->off = span->d_lo;
    }
    return LOB_OK;
}

int
lob_lines_restart(lob_lines *ls, const lob_span *span, int windowed, lob_error *err)
{
    LOB_FORWARD_IF_ERROR(
        lob_source_restart(ls->src, span->c_lo, span->d_at, span->d_lo, span->d_hi, windowed, err));
    ls->len = ls->pos = 0;
    ls->done = 0;
    ls->partial = 0;
    ls->unterminated = 0;
    ls->off = span->d_lo;
    return LOB_OK;
}

/* Keep the unreturned tail, make room (doubling for a long line, up to what a line of
 * max_line bytes and its "\n" need) and read more.  The caller has checked that the tail is
 * not longer than max_line, so there is always room for one more byte. */
static int
refill(lob_lines *ls, lob_error *err)
{
    LOB_FORWARD_IF_ERROR(lob_poll_stop(err));
    if (ls->pos > 0) {
        memmove(ls->buf, ls->buf + ls->pos, ls->len - ls->pos);
        ls->len -= ls->pos;
        ls->pos = 0;
    }
    size_t most = ls->max_line < LOB_LINES_CHUNK ? LOB_LINES_CHUNK : ls->max_line + 1;
    if ((ls->cap - ls->len < ls->cap / 4 && ls->cap < most) || ls->cap == 0) {
        size_t cap = ls->cap == 0                ? LOB_LINES_FIRST
                     : ls->cap < LOB_LINES_CHUNK ? LOB_LINES_CHUNK
                     : ls->cap < most / 2        ? ls->cap * 2
                                                 : most;
        char *b = realloc(ls->buf, cap);
        if (b == NULL) {
            return lob_error_set(err, LOB_E_NOMEM, "no memory for a %zu-byte line", ls->len);
        }
        ls->buf = b;
        ls->cap = cap;
    }
    ptrdiff_t k = lob_source_read(ls->src, ls->buf + ls->len, ls->cap - ls->len, err);
    if (k < 0) {
        return (int)k;
    }
    ls->done = k == 0;
    ls->len += (size_t)k;
    return LOB_OK;
}

int
lob_lines_next(lob_lines *ls, const char **s, size_t *n, int64_t *off, lob_error *err)
{
    for (;;) {
        size_t avail = ls->len - ls->pos;
        char *p = ls->buf != NULL ? ls->buf + ls->pos : NULL; /* no buffer before a read */
        char *nl = avail > 0 ? memchr(p, '\n', avail) : NULL;
        size_t len, step;
        if ((nl != NULL ? (size_t)(nl - p) : avail) > ls->max_line) {
            err->line = ls->line + 1;
            err->offset = ls->off;
            return lob_error_set(err, LOB_E_RANGE,
                                 "the line is longer than max_line=%zu bytes (no newline "
                                 "within them): not a line file, or raise max_line",
                                 ls->max_line);
        }
        ls->unterminated = 0;
        if (nl != NULL) {
            len = (size_t)(nl - p);
            step = len + 1;
        }
        else if (!ls->done) {
            LOB_FORWARD_IF_ERROR(refill(ls, err));
            continue;
        }
        else if (avail > 0 && lob_source_truncated(ls->src) == 0) {
            len = step = avail; /* a last line without "\n": complete, or being written */
            ls->unterminated = 1;
        }
        else {
            ls->partial = (int64_t)avail; /* cut off by a truncated file: not a line */
            return 0;
        }
        *s = p;
        *n = len > 0 && p[len - 1] == '\r' ? len - 1 : len;
        *off = ls->off;
        ls->pos += step;
        ls->off += (int64_t)step;
        ls->line++;
        return 1;
    }
}

void
lob_lines_close(lob_lines *ls)
{
    lob_source_free(ls->src);
    free(ls->buf);
    ls->src = NULL;
    ls->buf = NULL;
    ls->cap = ls->len = ls->pos = 0;
}
