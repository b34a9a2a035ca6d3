/* cells.c -- typed CSV cells and the one message of a bad one. */
#include "cells.h"

#include "number.h"
#include "timeindex.h" /* lob_parse_time: the time text of generic CSV files */

#include <math.h>
#include <stdio.h>
#include <string.h>

int
lob_cell_error(lob_error *err, int code, int col, const char *name, const lob_cell *c,
               const char *expected)
{
    if (c->n == 0) {
        return lob_error_set(err, code, "column %d (%s): expected %s, found an empty cell", col + 1,
                             name, expected);
    }
    char show[LOB_SHOW_BUF];
    return lob_error_set(err, code, "column %d (%s): expected %s, found '%s'", col + 1, name,
                         expected, lob_show(show, sizeof show, c->p, c->n, LOB_SHOW));
}

int
lob_cell_int64(const lob_cell *c, int col, const char *name, int64_t *out, lob_error *err)
{
    int rc = LOB_E_FORMAT;
    const char *e = lob_parse_int64(c->p, c->p + c->n, out, &rc);
    if (e == c->p + c->n) {
        return LOB_OK;
    }
    rc = e == NULL ? rc : LOB_E_FORMAT; /* else text after the number */
    return lob_cell_error(err, rc, col, name, c,
                          rc == LOB_E_RANGE ? "an integer within int64 range" : "an integer");
}

int
lob_cell_number(const lob_cell *c, int col, const char *name, int rule, const char *what,
                double *out, lob_error *err)
{
    if (c->n == 0 && (rule & LOB_NUM_EMPTY_NAN)) {
        *out = NAN;
        return LOB_OK;
    }
    int rc = LOB_E_FORMAT;
    const char *e = lob_parse_decimal(c->p, c->p + c->n, out, &rc);
    if (e != c->p + c->n) {
        if ((rule & LOB_NUM_NAN_TEXT) && lob_cell_is_nocase(c, "nan")) {
            *out = NAN;
            return LOB_OK;
        }
        rc = e == NULL ? rc : LOB_E_FORMAT;
        return lob_cell_error(err, rc, col, name, c,
                              rc == LOB_E_RANGE ? "a decimal number within float64 range"
                                                : "a decimal number");
    }
    int nonneg = (rule & LOB_NUM_NONNEG) != 0;
    if (nonneg ? !(*out >= 0) : (rule & LOB_NUM_POSITIVE) && !(*out > 0)) {
        char expected[64];
        snprintf(expected, sizeof expected, "%s %s", what, nonneg ? ">= 0" : "> 0");
        return lob_cell_error(err, LOB_E_RANGE, col, name, c, expected);
    }
    return LOB_OK;
}

static const char *
unit_text(int64_t unit)
{
    switch (unit) {
    case 0: return "s, ms, us or ns";
    case 1000000000: return "s";
    case 1000000: return "ms";
    case 1000: return "us";
    case 1: return "ns";
    default: return "the file's unit";
    }
}

int
lob_cell_time(const lob_cell *c, int col, const char *name, int64_t unit, int how, int64_t *ns,
              lob_error *err)
{
    const char *end = c->p + c->n;
    int rc = LOB_E_FORMAT;
    int64_t v = 0;
    if (how == LOB_TIME_DECIMAL) {
        /* already scaled to ns, the product checked against int64 */
        const char *e = lob_parse_time(c->p, end, unit, &v, &rc);
        rc = e == end    ? (v < LOB_TS_MIN || v > LOB_TS_MAX ? LOB_E_RANGE : LOB_OK)
             : e == NULL ? rc
                         : LOB_E_FORMAT;
        if (rc == LOB_OK) {
            *ns = v;
        }
    }
    else {
        const char *e = lob_parse_int64(c->p, end, &v, &rc);
        rc = e == end ? LOB_OK : e == NULL ? rc : LOB_E_FORMAT;
        if (rc == LOB_OK && unit == 0) {
            rc = lob_epoch_to_ns(v, ns);
        }
        else if (rc == LOB_OK) {
            /* the range is checked before the product is formed, so it cannot overflow */
            rc = v < LOB_TS_MIN || v > LOB_TS_MAX / unit ? LOB_E_RANGE : LOB_OK;
            *ns = rc == LOB_OK ? v * unit : *ns;
        }
    }
    if (rc == LOB_OK) {
        return LOB_OK;
    }
    char expected[80];
    if (rc == LOB_E_RANGE) {
        snprintf(expected, sizeof expected, "a time in %s between 1970 and 2262", unit_text(unit));
    }
    else {
        snprintf(expected, sizeof expected, "%s time in %s since the epoch",
                 how == LOB_TIME_DECIMAL ? "a" : "an integer", unit_text(unit));
    }
    return lob_cell_error(err, rc, col, name, c, expected);
}

/* The cell is the n bytes at w, in any case when nocase.  Lengths first. */
static int
is_word(const lob_cell *c, const char *w, size_t n, int nocase)
{
    if (c->n != n) {
        return 0;
    }
    if (!nocase) {
        return memcmp(c->p, w, n) == 0;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = c->p[i];
        if ((ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch) != w[i]) {
            return 0;
        }
    }
    return 1;
}

int
lob_cell_side(const lob_cell *c, int col, const char *name, int words, int *side, lob_error *err)
{
    static const struct {
        const char *word;
        size_t n;
        int words, side;
    } sides[] = {
        {"buy", 3, LOB_SIDE_TRADE, 1},       {"sell", 4, LOB_SIDE_TRADE, -1},
        {"bid", 3, LOB_SIDE_BOOK, 1},        {"ask", 3, LOB_SIDE_BOOK, -1},
        {"unknown", 7, LOB_SIDE_UNKNOWN, 0},
    };
    enum { NSIDES = sizeof sides / sizeof sides[0] };
    int nocase = (words & LOB_SIDE_NOCASE) != 0;
    for (int i = 0; i < NSIDES; i++) {
        if ((words & sides[i].words) && is_word(c, sides[i].word, sides[i].n, nocase)) {
            *side = sides[i].side;
            return LOB_OK;
        }
    }
    if (c->n == 0 && (words & LOB_SIDE_UNKNOWN)) {
        *side = 0;
        return LOB_OK;
    }
    char expected[80];
    int k = 0, left = 0;
    for (int i = 0; i < NSIDES; i++) {
        left += (words & sides[i].words) != 0;
    }
    for (int i = 0; i < NSIDES; i++) {
        if (words & sides[i].words) {
            left--;
            k += snprintf(expected + k, sizeof expected - (size_t)k, "'%s'%s", sides[i].word,
                          left > 1    ? ", "
                          : left == 1 ? " or "
                                      : "");
        }
    }
    snprintf(expected + k, sizeof expected - (size_t)k, "%s", nocase ? " (any case)" : "");
    return lob_cell_error(err, LOB_E_FORMAT, col, name, c, expected);
}

int
lob_cell_bool(const lob_cell *c, int col, const char *name, int how, int *out, lob_error *err)
{
    int digits = how == LOB_BOOL_DIGITS;
    if (is_word(c, "true", 4, 1) || (digits && is_word(c, "1", 1, 0))) {
        *out = 1;
        return LOB_OK;
    }
    if (is_word(c, "false", 5, 1) || (digits && is_word(c, "0", 1, 0))) {
        *out = 0;
        return LOB_OK;
    }
    return lob_cell_error(err, LOB_E_FORMAT, col, name, c,
                          digits ? "'true', 'false', '1' or '0' (any case)"
                                 : "'true' or 'false' (any case)");
}

int
lob_cell_text(const lob_cell *c, int col, const char *name, size_t max, lob_error *err)
{
    if (c->n > max) {
        char expected[64];
        snprintf(expected, sizeof expected, "text of at most %zu bytes", max);
        return lob_cell_error(err, LOB_E_RANGE, col, name, c, expected);
    }
    if (lob_find_control(c->p, c->n) != NULL) {
        return lob_cell_error(err, LOB_E_FORMAT, col, name, c,
                              "text without control bytes (NUL, tab, newline, ...)");
    }
    return LOB_OK;
}
