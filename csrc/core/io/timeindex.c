/* timeindex.c -- build a sparse time index in one pass; locate a time from an entry. */
#include "core/io/timeindex.h"

#include "core/formats/number.h"
#include "core/io/lines.h"
#include "core/io/zframes.h"

#include <stddef.h>

#include <stdlib.h>
#include <string.h>

const lob_ixfield lob_ix_layout[LOB_IX_FIELDS] = {
    {"ts", offsetof(lob_ixentry, ts)},       {"line", offsetof(lob_ixentry, line)},
    {"row", offsetof(lob_ixentry, row)},     {"d_off", offsetof(lob_ixentry, d_off)},
    {"c_off", offsetof(lob_ixentry, c_off)}, {"d_at", offsetof(lob_ixentry, d_at)},
};

int
lob_line_time(const char *s, size_t n, const lob_tskey *key, int64_t *ns, lob_error *err)
{
    const char *p = s, *e = s + n;
    for (int k = 0; k < key->field; k++) {
        p = memchr(p, key->sep, (size_t)(e - p));
        if (p == NULL) {
            return lob_error_set(err, LOB_E_FORMAT,
                                 "the line has %d field(s); the time ('%s') is field %d", k + 1,
                                 key->name, key->field + 1);
        }
        p++;
    }
    int rc = LOB_OK;
    const char *q = lob_parse_time(p, e, key->unit, ns, &rc);
    if (q == NULL || (q < e && *q != key->sep)) {
        const char *c = memchr(p, key->sep, (size_t)(e - p));
        int len = (int)((c ? c : e) - p);
        if (rc == LOB_E_RANGE) {
            return lob_error_set(err, LOB_E_RANGE,
                                 "the time ('%s') '%.*s' is past the year 2262 in ns", key->name,
                                 len > 40 ? 40 : len, p);
        }
        return lob_error_set(err, LOB_E_FORMAT, "the time ('%s') is not a number: '%.*s'",
                             key->name, len > 40 ? 40 : len, p);
    }
    return LOB_OK;
}

static int
push(lob_ix *ix, const lob_ixentry *e, lob_error *err)
{
    if (ix->n == ix->cap) {
        size_t cap = ix->cap ? ix->cap * 2 : 1024;
        lob_ixentry *p = realloc(ix->e, cap * sizeof *p);
        if (p == NULL) {
            return lob_error_set(err, LOB_E_NOMEM, "no memory for %zu index entries", cap);
        }
        ix->e = p;
        ix->cap = cap;
    }
    ix->e[ix->n++] = *e;
    return LOB_OK;
}

/* What the index holds after some lines: rolled back to at a corrupt frame. */
typedef struct {
    size_t n;
    int64_t rows, lines, first_ts, last_ts, d_size;
} mark;

static void
save(mark *m, const lob_ix *ix)
{
    *m = (mark){ix->n, ix->rows, ix->lines, ix->first_ts, ix->last_ts, ix->d_size};
}

static void
restore(lob_ix *ix, const mark *m)
{
    ix->n = m->n;
    ix->rows = m->rows;
    ix->lines = m->lines;
    ix->first_ts = m->first_ts;
    ix->last_ts = m->last_ts;
    ix->d_size = m->d_size;
}

/* A read failed inside zstd frame `f`: keep what came before it. */
static void
stop_at_bad_frame(lob_ix *ix, lob_lines *ls, int64_t marked, const mark *m, const lob_error *e)
{
    int64_t c, d, f = lob_source_frame(ls->src, &c, &d);
    if (f == marked) { /* lines of this frame were indexed already: drop them */
        restore(ix, m);
    }
    ix->bad_frame = f;
    ix->bad_c_off = c;
    ix->frames = f;
    memcpy(ix->bad_msg, e->msg, sizeof ix->bad_msg);
}

int
lob_ix_build(const char *path, const lob_tskey *key, int64_t block, lob_ix *ix, lob_error *err)
{
    memset(ix, 0, sizeof *ix);
    ix->first_ts = ix->last_ts = INT64_MIN;
    ix->bad_frame = -1;
    ix->junk_off = -1;
    ix->seek_frames = -1;
    lob_lines ls;
    LOB_FORWARD_IF_ERROR(lob_lines_open(&ls, path, NULL, 0, err));
    ls.max_line = key->max_line > 0 ? key->max_line : LOB_MAX_LINE;
    ix->compression = lob_source_compression(ls.src);
    int zstd = ix->compression == LOB_ZSTD;
    int64_t next_mark = 0, entry_frame = -1, marked = -1;
    int have_data = 0;
    mark m;
    save(&m, ix);
    const char *s;
    size_t n;
    int64_t off;
    int rc;
    while ((rc = lob_lines_next(&ls, &s, &n, &off, err)) > 0) {
        int64_t fc = 0, fd = 0, f = zstd ? lob_source_frame(ls.src, &fc, &fd) : -1;
        if (f != marked) { /* lines from here on hold bytes of frame f */
            save(&m, ix);
            marked = f;
        }
        ix->lines = ls.line;
        ix->d_size = ls.off;
        if (ls.line <= key->skip_lines || n == 0) {
            continue; /* header or blank line */
        }
        if (!have_data) {
            ix->data_off = off;
            have_data = 1;
        }
        int64_t ts;
        rc = lob_line_time(s, n, key, &ts, err);
        if (rc == LOB_OK && ts < ix->last_ts) {
            rc =
                lob_error_set(err, LOB_E_FORMAT,
                              "the file is not sorted by '%s': this line's time %lld is before the "
                              "previous line's %lld",
                              key->name, (long long)ts, (long long)ix->last_ts);
        }
        if (rc < 0 && ls.unterminated) { /* a line being written: not part of the file yet */
            lob_error_clear(err);
            ix->lines = ls.line - 1;
            ix->d_size = off;
            ix->partial = ls.off - off;
            rc = 0;
            break;
        }
        if (rc < 0) {
            err->line = ls.line;
            err->offset = off;
            goto fail;
        }
        /* restart where the line's frame starts; a line begun in an earlier frame can only
         * restart at the file's start, which the first row (and no other) needs */
        int in_frame = !zstd || off >= fd;
        int plain = ix->compression == LOB_PLAIN;
        int new_frame = zstd && in_frame && f != entry_frame;
        if (ix->rows == 0 || new_frame || (in_frame && off >= next_mark)) {
            lob_ixentry e = {ts,
                             ls.line,
                             ix->rows,
                             off,
                             plain ? off : in_frame ? fc : 0,
                             plain ? off : in_frame ? fd : 0};
            if ((rc = push(ix, &e, err)) < 0) {
                goto fail;
            }
            entry_frame = in_frame ? f : entry_frame;
            next_mark = off + block;
        }
        if (ix->rows++ == 0) {
            ix->first_ts = ts;
        }
        ix->last_ts = ts;
    }
    if (rc == LOB_E_CORRUPT && zstd) {
        stop_at_bad_frame(ix, &ls, marked, &m, err);
        lob_error_clear(err);
    }
    else if (rc < 0) {
        goto fail;
    }
    else {
        int64_t c, d;
        ix->frames = zstd ? lob_source_frame(ls.src, &c, &d) + 1 : 0;
        ix->truncated = lob_source_truncated(ls.src);
        ix->junk_off = lob_source_junk(ls.src);
    }
    ix->c_size = lob_source_coffset(ls.src);
    lob_lines_close(&ls);
    if ((rc = lob_seek_table_frames(path, &ix->seek_frames, err)) < 0) {
        lob_ix_free(ix);
        return rc;
    }
    ix->frames -= ix->seek_frames >= 0; /* the table is a (skippable) frame too */
    return LOB_OK;
fail:
    lob_lines_close(&ls);
    lob_ix_free(ix);
    return rc;
}

int
lob_ix_locate(const char *path, const lob_tskey *key, const lob_ixentry *from,
              const lob_ixentry *end, int64_t t, lob_ixentry *out, lob_error *err)
{
    *out = *end;
    if (from->d_off >= end->d_off) {
        return LOB_OK;
    }
    lob_span span = {from->c_off, from->d_at, from->d_off, end->d_off};
    lob_lines ls;
    LOB_FORWARD_IF_ERROR(lob_lines_open(&ls, path, &span, from->line - 1, err));
    ls.max_line = key->max_line > 0 ? key->max_line : LOB_MAX_LINE;
    const char *s;
    size_t n;
    int64_t off, row = from->row, ts;
    int rc;
    while ((rc = lob_lines_next(&ls, &s, &n, &off, err)) > 0) {
        if (n == 0) {
            continue;
        }
        if ((rc = lob_line_time(s, n, key, &ts, err)) < 0) {
            err->line = ls.line;
            err->offset = off;
            break;
        }
        if (ts >= t) {
            *out = (lob_ixentry){ts, ls.line, row, off, from->c_off, from->d_at};
            break;
        }
        row++;
    }
    lob_lines_close(&ls);
    return rc < 0 ? rc : LOB_OK;
}

lob_ixentry
lob_ix_end(const lob_ix *ix)
{
    return (lob_ixentry){INT64_MAX, ix->lines + 1, ix->rows, ix->d_size, 0, 0};
}

int
lob_ix_seek(const char *path, const lob_tskey *key, const lob_ix *ix, int64_t t, lob_ixentry *out,
            int64_t *looked, lob_error *err)
{
    lob_ixentry end = lob_ix_end(ix);
    if (ix->rows == 0 || ix->n == 0 || t > ix->last_ts) {
        *out = end;
        return LOB_OK;
    }
    size_t lo = 0, hi = ix->n; /* the first entry with ts >= t */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ix->e[mid].ts < t) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    if (lo == 0) {
        *out = ix->e[0];
        return LOB_OK;
    }
    const lob_ixentry *from = &ix->e[lo - 1]; /* the last entry before t */
    LOB_FORWARD_IF_ERROR(lob_ix_locate(path, key, from, &end, t, out, err));
    if (ix->compression != LOB_PLAIN) {
        *looked += out->d_off - from->d_at; /* from the restart point to the row found */
    }
    return LOB_OK;
}

int
lob_ix_window(const char *path, const lob_tskey *key, const lob_ix *ix, int64_t t0, int64_t t1,
              lob_ixentry ends[2], int64_t *looked, lob_error *err)
{
    LOB_FORWARD_IF_ERROR(lob_ix_seek(path, key, ix, t0, &ends[0], looked, err));
    if (t1 <= ends[0].ts) {
        ends[1] = ends[0];
        return LOB_OK;
    }
    return lob_ix_seek(path, key, ix, t1, &ends[1], looked, err);
}

lob_span
lob_ix_span(const lob_ixentry *a, const lob_ixentry *b)
{
    return (lob_span){a->c_off, a->d_at, a->d_off, b->d_off};
}

/* The first entry of e[lo, hi) whose field at `offset` is > v (strictly) or >= v. */
static size_t
first_past(const lob_ix *ix, size_t lo, size_t hi, size_t offset, int64_t v, int strict)
{
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t x;
        memcpy(&x, (const char *)&ix->e[mid] + offset, sizeof x);
        if (strict ? x <= v : x < v) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    return lo;
}

size_t
lob_ix_pieces(const lob_ix *ix, const lob_ixentry *a, const lob_ixentry *b, size_t n,
              lob_ixpiece *out)
{
    if (n == 0 || b->row <= a->row) {
        return 0;
    }
    /* the entries strictly inside (a, b) by text offset: rows grow with them */
    size_t lo = first_past(ix, 0, ix->n, offsetof(lob_ixentry, d_off), a->d_off, 1);
    size_t hi = first_past(ix, lo, ix->n, offsetof(lob_ixentry, d_off), b->d_off, 0);
    int64_t rows = b->row - a->row;
    int64_t q = rows / (int64_t)n, r = rows % (int64_t)n; /* rows * i / n without overflow */
    const lob_ixentry *cut = a;
    size_t count = 0, last = SIZE_MAX;
    for (size_t i = 1; i <= n; i++) {
        const lob_ixentry *next = b;
        if (i < n) {
            int64_t want = a->row + q * (int64_t)i + r * (int64_t)i / (int64_t)n;
            size_t k = first_past(ix, lo, hi, offsetof(lob_ixentry, row), want, 0);
            if (k == hi || k == last) {
                continue;
            }
            last = k;
            next = &ix->e[k];
        }
        if (next->row > cut->row) {
            out[count++] =
                (lob_ixpiece){lob_ix_span(cut, next), cut->line - 1, next->row - cut->row};
            cut = next;
        }
    }
    return count;
}

void
lob_ix_free(lob_ix *ix)
{
    if (ix == NULL) {
        return;
    }
    free(ix->e);
    ix->e = NULL;
    ix->n = ix->cap = 0;
}
