/* columns.c -- CSV rows of a window into preallocated typed columns. */
#include "columns.h"

#include "number.h"
#include "text.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- text dictionary */

const char *
lob_dict_value(const lob_dict *d, int i)
{
    return d->text + d->start[i];
}

/* Bytes of value i (its NUL aside): values are stored back to back. */
static size_t
dict_len(const lob_dict *d, int i)
{
    int64_t end = i + 1 < d->n ? d->start[i + 1] : (int64_t)d->len;
    return (size_t)(end - d->start[i] - 1);
}

/* Value i is exactly [s, s + n).  Lengths first: memcmp never reads past either. */
static int
dict_is(const lob_dict *d, int i, const char *s, size_t n)
{
    return dict_len(d, i) == n && memcmp(lob_dict_value(d, i), s, n) == 0;
}

static int
dict_grow_table(lob_dict *d)
{
    int slots = d->slots ? d->slots * 2 : 64;
    int32_t *slot = calloc((size_t)slots, sizeof *slot);
    int64_t *start = realloc(d->start, (size_t)slots / 2 * sizeof *start);
    if (slot == NULL || start == NULL) {
        free(slot);
        if (start != NULL) {
            d->start = start;
        }
        return LOB_E_NOMEM;
    }
    d->start = start;
    for (int i = 0; i < d->n; i++) {
        uint32_t h =
            (uint32_t)lob_hash(lob_dict_value(d, i), dict_len(d, i)) & (uint32_t)(slots - 1);
        while (slot[h] != 0) {
            h = (h + 1) & (uint32_t)(slots - 1);
        }
        slot[h] = i + 1;
    }
    free(d->slot);
    d->slot = slot;
    d->slots = slots;
    return LOB_OK;
}

static int dict_find(lob_dict *d, const char *s, size_t n);

/* The code of [s, s + n), added when new.  @return the code, or a negative code. */
static int
dict_code(lob_dict *d, const char *s, size_t n)
{
    if (d->n > 0 && dict_is(d, d->last, s, n)) {
        return d->last; /* most cells repeat the one above (exchange, symbol, side) */
    }
    int code = dict_find(d, s, n);
    if (code >= 0) {
        d->last = code;
    }
    return code;
}

static int
dict_find(lob_dict *d, const char *s, size_t n)
{
    if (d->slots == 0 || 2 * (d->n + 1) > d->slots) {
        if (d->n >= LOB_DICT_MAX) {
            return LOB_E_RANGE;
        }
        LOB_FORWARD_IF_ERROR(dict_grow_table(d));
    }
    uint32_t mask = (uint32_t)(d->slots - 1), h = (uint32_t)lob_hash(s, n) & mask;
    for (; d->slot[h] != 0; h = (h + 1) & mask) {
        if (dict_is(d, d->slot[h] - 1, s, n)) {
            return d->slot[h] - 1;
        }
    }
    if (d->cap - d->len < n + 1) {
        size_t cap = (d->cap + n + 1) * 2;
        char *t = realloc(d->text, cap);
        if (t == NULL) {
            return LOB_E_NOMEM;
        }
        d->text = t;
        d->cap = cap;
    }
    memcpy(d->text + d->len, s, n);
    d->text[d->len + n] = '\0';
    d->start[d->n] = (int64_t)d->len;
    d->len += n + 1;
    d->slot[h] = ++d->n;
    return d->n - 1;
}

void
lob_dict_free(lob_dict *d)
{
    if (d == NULL) {
        return;
    }
    free(d->text);
    free(d->start);
    free(d->slot);
    memset(d, 0, sizeof *d);
}

/* ---------------------------------------------------------------- cells */

static int
is_ci(const char *p, size_t n, const char *lower)
{
    if (strlen(lower) != n) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = p[i] >= 'A' && p[i] <= 'Z' ? (char)(p[i] + 32) : p[i];
        if (c != lower[i]) {
            return 0;
        }
    }
    return 1;
}

static const char *
cell_end(const char *p, const char *e, char sep)
{
    const char *q = memchr(p, sep, (size_t)(e - p));
    return q ? q : e;
}

/* Parse the cell at p into row `row` of column c.  @return the end of the cell, or NULL
 * with err->msg saying what was expected. */
static const char *
parse_cell(const lob_csvcol *c, int64_t row, const char *p, const char *e, const lob_tskey *key,
           lob_error *err)
{
    char sep = key->sep;
    const char *q = NULL, *what = "";
    int rc = LOB_OK;
    switch (c->kind) {
    case LOB_CK_F64: {
        double v = NAN;
        q = p < e && *p != sep ? lob_parse_decimal(p, e, &v, &rc) : p;
        if (q == NULL && is_ci(p, (size_t)(cell_end(p, e, sep) - p), "nan")) {
            q = p + 3;
            v = NAN;
        }
        ((double *)c->out)[row] = v;
        what = rc == LOB_E_RANGE ? "a number within float64 range (a nonzero value that "
                                   "rounds to 0 or to infinity is refused)"
                                 : "a number";
        break;
    }
    case LOB_CK_I64:
        q = lob_parse_int64(p, e, &((int64_t *)c->out)[row], &rc);
        what = "an integer (read the column as float64 if it is not one)";
        break;
    case LOB_CK_TIME: {
        int64_t *t = &((int64_t *)c->out)[row];
        q = lob_parse_time(p, e, key->unit, t, &rc);
        if (q != NULL && *t > LOB_TS_MAX) {
            q = NULL; /* a time past 2262 is damage, never a time to keep (or compare) */
            rc = LOB_E_RANGE;
        }
        what = "a time between 1970 and 2262";
        break;
    }
    case LOB_CK_BOOL: {
        q = cell_end(p, e, sep);
        size_t n = (size_t)(q - p);
        int8_t v = is_ci(p, n, "true") || (n == 1 && *p == '1')    ? 1
                   : is_ci(p, n, "false") || (n == 1 && *p == '0') ? 0
                                                                   : -1;
        ((int8_t *)c->out)[row] = v;
        q = v < 0 ? NULL : q;
        what = "true or false";
        break;
    }
    case LOB_CK_SIDE: {
        q = cell_end(p, e, sep);
        size_t n = (size_t)(q - p);
        int8_t v = is_ci(p, n, "buy") || is_ci(p, n, "bid")    ? 1
                   : is_ci(p, n, "sell") || is_ci(p, n, "ask") ? -1
                   : n == 0 || is_ci(p, n, "unknown")          ? 0
                                                               : 2;
        ((int8_t *)c->out)[row] = v == 2 ? 0 : v;
        q = v == 2 ? NULL : q;
        what = "a side (buy, sell, bid, ask or unknown)";
        break;
    }
    case LOB_CK_TEXT: {
        /* checked before the lookup: a value holds no control byte (a NUL would end it
         * early) and is at most LOB_TEXT_MAX bytes (a category, not a document) */
        q = cell_end(p, e, sep);
        size_t n = (size_t)(q - p);
        int code = n > LOB_TEXT_MAX                 ? LOB_E_RANGE
                   : lob_find_control(p, n) != NULL ? LOB_E_FORMAT
                                                    : dict_code(c->dict, p, n);
        if (code < 0) {
            what = n > LOB_TEXT_MAX      ? "text of at most 1024 bytes"
                   : code == LOB_E_RANGE ? "at most 65536 distinct values in a text column"
                   : code == LOB_E_NOMEM ? "memory for the text values"
                                         : "text without control bytes (NUL, tab, newline, ...)";
            rc = code;
            q = NULL;
        }
        else {
            ((int32_t *)c->out)[row] = code;
        }
        break;
    }
    default: what = "a known column kind"; break;
    }
    if (q != NULL && q < e && *q != sep) {
        q = NULL; /* text after the value */
    }
    if (q == NULL) {
        char show[LOB_SHOW_BUF];
        const char *end = cell_end(p, e, sep);
        lob_error_set(err, rc == LOB_E_RANGE || rc == LOB_E_NOMEM ? rc : LOB_E_FORMAT,
                      "column '%s': expected %s, not '%s'", c->name, what,
                      lob_show(show, sizeof show, p, (size_t)(end - p), LOB_SHOW));
    }
    return q;
}

static int
parse_row(const lob_csvcol *cols, int ncol, int64_t row, const char *s, size_t n,
          const lob_tskey *key, lob_error *err)
{
    const char *p = s, *e = s + n;
    int field = 0, more = 1; /* more: field `field` exists (it starts at p) */
    for (int i = 0; i < ncol; i++) {
        for (; field < cols[i].field && more; field++) {
            const char *q = memchr(p, key->sep, (size_t)(e - p));
            more = q != NULL;
            p = more ? q + 1 : e;
        }
        if (!more) {
            return lob_error_set(err, LOB_E_FORMAT,
                                 "the line has %d field(s); column '%s' is field %d", field,
                                 cols[i].name, cols[i].field + 1);
        }
        const char *q = parse_cell(&cols[i], row, p, e, key, err);
        if (q == NULL) {
            return err->code;
        }
        more = q < e; /* a separator follows */
        p = more ? q + 1 : e;
        field++;
    }
    return LOB_OK;
}

int
lob_csv_columns(const char *path, const lob_span *span, int64_t line0, const lob_tskey *key,
                lob_csvcol *cols, int ncol, int64_t nrows, lob_error *err)
{
    for (int i = 0; i < ncol; i++) {
        if (cols[i].field < 0 || (i > 0 && cols[i].field <= cols[i - 1].field) ||
            (cols[i].kind == LOB_CK_TEXT && cols[i].dict == NULL)) {
            return lob_error_set(err, LOB_E_ARG, "columns must be distinct fields in order");
        }
    }
    lob_lines ls;
    LOB_FORWARD_IF_ERROR(lob_lines_open(&ls, path, span, line0, err));
    const char *s;
    size_t n;
    int64_t off, row = 0;
    int rc;
    while ((rc = lob_lines_next(&ls, &s, &n, &off, err)) > 0) {
        if (n == 0) {
            continue;
        }
        if (row == nrows) {
            rc = lob_error_set(err, LOB_E_FORMAT,
                               "more rows than the index holds: the file changed");
        }
        else {
            rc = parse_row(cols, ncol, row++, s, n, key, err);
        }
        if (rc < 0) {
            err->line = ls.line;
            err->offset = off;
            break;
        }
    }
    if (rc == 0 && row != nrows) {
        rc = lob_error_set(
            err, LOB_E_FORMAT,
            "%lld rows where the index holds %lld: the file changed since it was indexed",
            (long long)row, (long long)nrows);
    }
    lob_lines_close(&ls);
    return rc < 0 ? rc : LOB_OK;
}
