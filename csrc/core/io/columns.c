/* columns.c -- CSV rows of a window into preallocated typed columns. */
#include "core/io/columns.h"

#include "core/formats/cells.h"

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

static int dict_find(lob_dict *d, const lob_csvcol *col, const lob_cell *c, lob_error *err);

/* The code of cell c in the dictionary of column col, added when new.  @return the code,
 * or a negative code with err filled. */
static int
dict_code(const lob_csvcol *col, const lob_cell *c, lob_error *err)
{
    lob_dict *d = col->dict;
    if (d->n > 0 && dict_is(d, d->last, c->p, c->n)) {
        return d->last; /* most cells repeat the one above (exchange, symbol, side) */
    }
    int code = dict_find(d, col, c, err);
    if (code >= 0) {
        d->last = code;
    }
    return code;
}

/* The slot of [s, s + n): where it is, or the empty slot where it goes. */
static uint32_t
dict_slot(const lob_dict *d, const char *s, size_t n)
{
    uint32_t mask = (uint32_t)(d->slots - 1), h = (uint32_t)lob_hash(s, n) & mask;
    for (; d->slot[h] != 0 && !dict_is(d, d->slot[h] - 1, s, n); h = (h + 1) & mask) {
    }
    return h;
}

static int
dict_find(lob_dict *d, const lob_csvcol *col, const lob_cell *c, lob_error *err)
{
    uint32_t h = 0;
    if (d->slots > 0 && d->slot[h = dict_slot(d, c->p, c->n)] != 0) {
        return d->slot[h] - 1;
    }
    /* A new value is checked before it is kept: it holds no control byte (a NUL would end
     * it early) and is at most LOB_TEXT_MAX bytes (a category, not a document).  A value
     * found above was checked when it was added. */
    LOB_FORWARD_IF_ERROR(lob_cell_text(c, col->field, col->name, LOB_TEXT_MAX, err));
    size_t n = c->n;
    int rc = LOB_OK;
    if (d->slots == 0 || 2 * (d->n + 1) > d->slots) {
        rc = d->n >= LOB_DICT_MAX ? LOB_E_RANGE : dict_grow_table(d);
        h = rc == LOB_OK ? dict_slot(d, c->p, n) : h;
    }
    if (rc == LOB_OK && d->cap - d->len < n + 1) {
        size_t cap = (d->cap + n + 1) * 2;
        char *t = realloc(d->text, cap);
        rc = t == NULL ? LOB_E_NOMEM : LOB_OK;
        d->text = t == NULL ? d->text : t;
        d->cap = t == NULL ? d->cap : cap;
    }
    if (rc < 0) {
        return lob_cell_error(err, rc, col->field, col->name, c,
                              rc == LOB_E_RANGE ? "at most 65536 distinct values in a text column"
                                                : "memory for the text values");
    }
    memcpy(d->text + d->len, c->p, n);
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

/* Parse the cell starting at p, in a line ending at e, into row `row` of column col.
 * Number and time cells are read in place when `plain` (lob_sep_plain): not scanned for
 * their end first.  @return the end of the cell (its separator or e), or NULL with err
 * saying which cell, and what was expected. */
static inline const char *
parse_cell(const lob_csvcol *col, int64_t row, const char *p, const char *e, const lob_tskey *key,
           int plain, lob_error *err)
{
    int f = col->field, v = 0, rc;
    const char *nm = col->name;
    char sep = key->sep;
    const char *q;
    lob_cell c;
    switch (col->kind) {
    case LOB_CK_F64:
        if (plain) {
            return lob_cell_number_at(p, e, sep, f, nm, LOB_NUM_EMPTY_NAN | LOB_NUM_NAN_TEXT, NULL,
                                      &((double *)col->out)[row], err);
        }
        c = lob_cell_at(p, e, sep);
        rc = lob_cell_number(&c, f, nm, LOB_NUM_EMPTY_NAN | LOB_NUM_NAN_TEXT, NULL,
                             &((double *)col->out)[row], err);
        return LOB_CELL_END(c, rc);
    case LOB_CK_I64:
        if (plain) {
            return lob_cell_int64_at(p, e, sep, f, nm, &((int64_t *)col->out)[row], err);
        }
        c = lob_cell_at(p, e, sep);
        rc = lob_cell_int64(&c, f, nm, &((int64_t *)col->out)[row], err);
        return LOB_CELL_END(c, rc);
    case LOB_CK_TIME:
        if (plain) {
            return lob_cell_time_at(p, e, sep, f, nm, key->unit, LOB_TIME_DECIMAL,
                                    &((int64_t *)col->out)[row], err);
        }
        c = lob_cell_at(p, e, sep);
        rc =
            lob_cell_time(&c, f, nm, key->unit, LOB_TIME_DECIMAL, &((int64_t *)col->out)[row], err);
        return LOB_CELL_END(c, rc);
    case LOB_CK_BOOL:
        c = lob_cell_at(p, e, sep);
        rc = lob_cell_bool(&c, f, nm, LOB_BOOL_DIGITS, &v, err);
        ((int8_t *)col->out)[row] = (int8_t)v;
        return LOB_CELL_END(c, rc);
    case LOB_CK_SIDE:
        c = lob_cell_at(p, e, sep);
        rc = lob_cell_side(&c, f, nm,
                           LOB_SIDE_TRADE | LOB_SIDE_BOOK | LOB_SIDE_UNKNOWN | LOB_SIDE_NOCASE, &v,
                           err);
        ((int8_t *)col->out)[row] = (int8_t)v;
        return LOB_CELL_END(c, rc);
    case LOB_CK_TEXT:
        c = lob_cell_at(p, e, sep);
        v = dict_code(col, &c, err);
        q = v < 0 ? NULL : c.p + c.n;
        ((int32_t *)col->out)[row] = v < 0 ? 0 : v;
        return q;
    default:
        c = lob_cell_at(p, e, sep);
        lob_cell_error(err, LOB_E_FORMAT, f, nm, &c, "a known column kind");
        return NULL;
    }
}

/* What the sampled cells of one column allowed so far (lob_csv_guess). */
typedef struct guess_s {
    int64_t present, empty;
    unsigned ok; /* GUESS_* still possible */
} guess;

enum { GUESS_INT = 1, GUESS_NUM = 2, GUESS_BOOL = 4, GUESS_SIDE = 8, GUESS_TIME = 16 };

static void
guess_cell(guess *g, const lob_cell *c, int64_t unit)
{
    lob_error err = {0};
    int64_t i64 = 0;
    double d = 0;
    int v = 0;
    if (c->n == 0) {
        g->empty++;
        g->ok &= ~(unsigned)(GUESS_BOOL | GUESS_TIME);
        return;
    }
    g->present++;
    if ((g->ok & GUESS_INT) && lob_cell_int64(c, 0, "", &i64, &err) < 0) {
        g->ok &= ~(unsigned)(GUESS_INT | GUESS_TIME);
    }
    if ((g->ok & GUESS_TIME) && lob_cell_time(c, 0, "", unit, LOB_TIME_DECIMAL, &i64, &err) < 0) {
        g->ok &= ~(unsigned)GUESS_TIME;
    }
    if ((g->ok & GUESS_NUM) &&
        lob_cell_number(c, 0, "", LOB_NUM_EMPTY_NAN | LOB_NUM_NAN_TEXT, NULL, &d, &err) < 0) {
        g->ok &= ~(unsigned)GUESS_NUM;
    }
    if ((g->ok & GUESS_BOOL) && lob_cell_bool(c, 0, "", LOB_BOOL_WORDS, &v, &err) < 0) {
        g->ok &= ~(unsigned)GUESS_BOOL;
    }
    if ((g->ok & GUESS_SIDE) &&
        lob_cell_side(c, 0, "", LOB_SIDE_TRADE | LOB_SIDE_BOOK | LOB_SIDE_UNKNOWN | LOB_SIDE_NOCASE,
                      &v, &err) < 0) {
        g->ok &= ~(unsigned)GUESS_SIDE;
    }
}

static int
guess_kind(const guess *g, const char *name)
{
    size_t len = name == NULL ? 0 : strlen(name), tail = sizeof "timestamp" - 1;
    int time_name = len >= tail && strcmp(name + len - tail, "timestamp") == 0;
    if (g->present == 0) {
        return LOB_CK_F64;
    }
    if (g->ok & GUESS_INT) {
        return g->empty ? LOB_CK_F64 : time_name && (g->ok & GUESS_TIME) ? LOB_CK_TIME : LOB_CK_I64;
    }
    return (g->ok & GUESS_NUM)    ? LOB_CK_F64
           : (g->ok & GUESS_BOOL) ? LOB_CK_BOOL
           : (g->ok & GUESS_SIDE) ? LOB_CK_SIDE
                                  : LOB_CK_TEXT;
}

void
lob_csv_guess(const char *s, size_t n, char sep, int ncol, int time_field, int64_t unit,
              const char *const *names, int64_t max_rows, int *kinds)
{
    guess *g = calloc(ncol > 0 ? (size_t)ncol : 1, sizeof *g);
    const char *p = s, *end = s + n;
    int64_t rows = 0;
    for (int i = 0; g != NULL && i < ncol; i++) {
        g[i].ok = GUESS_INT | GUESS_NUM | GUESS_BOOL | GUESS_SIDE | GUESS_TIME;
    }
    while (g != NULL && p < end && rows < max_rows) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl == NULL ? end : nl, *next = nl == NULL ? end : nl + 1;
        e -= e > p && e[-1] == '\r';
        if (e > p) {
            const char *q = p;
            int more = 1; /* field i exists (it starts at q); missing fields are empty */
            for (int i = 0; i < ncol; i++) {
                const char *c_end = more ? lob_csv_find(q, e, sep) : q;
                lob_cell c = {q, (size_t)(c_end - q)};
                guess_cell(&g[i], &c, unit);
                more = more && c_end < e;
                q = more ? c_end + 1 : c_end;
            }
            rows++;
        }
        p = next;
    }
    for (int i = 0; i < ncol; i++) {
        /* no memory for the sample: text reads every cell */
        kinds[i] = i == time_field ? LOB_CK_TIME
                   : g == NULL     ? LOB_CK_TEXT
                                   : guess_kind(&g[i], names == NULL ? NULL : names[i]);
    }
    free(g);
}

static int
parse_row(const lob_csvcol *cols, int ncol, int64_t row, const char *s, size_t n,
          const lob_tskey *key, int plain, lob_error *err)
{
    const char *p = s, *e = s + n;
    int field = 0, more = 1; /* more: field `field` exists (it starts at p) */
    for (int i = 0; i < ncol; i++) {
        for (; field < cols[i].field && more; field++) {
            const char *q = lob_csv_find(p, e, key->sep);
            more = q < e;
            p = more ? q + 1 : e;
        }
        if (!more) {
            return lob_error_set(err, LOB_E_FORMAT,
                                 "the line has %d field(s); column '%s' is field %d", field,
                                 cols[i].name, cols[i].field + 1);
        }
        const char *q = parse_cell(&cols[i], row, p, e, key, plain, err);
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
    int plain = lob_sep_plain(key->sep); /* decided once, not per cell */
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
            rc = parse_row(cols, ncol, row++, s, n, key, plain, err);
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
