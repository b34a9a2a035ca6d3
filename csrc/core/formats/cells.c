/* cells.c -- typed CSV cells and the one message of a bad one. */
#include "core/formats/cells.h"

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

/* The messages below are built apart from the parsers, so that the parsers, which run on
 * every cell, need no buffer on the stack. */

/* Not a number (LOB_E_FORMAT) or outside int64 / float64 (LOB_E_RANGE). */
int
lob_cell_number_error(const lob_cell *c, int col, const char *name, int rc, int integer,
                      lob_error *err)
{
    return lob_cell_error(
        err, rc, col, name, c,
        integer
            ? (rc == LOB_E_RANGE ? "an integer within int64 range" : "an integer")
            : (rc == LOB_E_RANGE ? "a decimal number within float64 range" : "a decimal number"));
}

/* A number that breaks a sign rule: "a price > 0". */
int
lob_cell_sign_error(const lob_cell *c, int col, const char *name, int rule, const char *what,
                    lob_error *err)
{
    char expected[64];
    snprintf(expected, sizeof expected, "%s %s", what, rule & LOB_NUM_NONNEG ? ">= 0" : "> 0");
    return lob_cell_error(err, LOB_E_RANGE, col, name, c, expected);
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

/* Not a time (LOB_E_FORMAT) or outside 1970..2262 (LOB_E_RANGE). */
int
lob_cell_time_error(const lob_cell *c, int col, const char *name, int64_t unit, int how, int rc,
                    lob_error *err)
{
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

int
lob_cell_side_error(const lob_cell *c, int col, const char *name, int words, lob_error *err)
{
    static const struct {
        const char *word;
        int words;
    } names[] = {
        {"buy", LOB_SIDE_TRADE}, {"sell", LOB_SIDE_TRADE},      {"bid", LOB_SIDE_BOOK},
        {"ask", LOB_SIDE_BOOK},  {"unknown", LOB_SIDE_UNKNOWN},
    };
    enum { NNAMES = sizeof names / sizeof names[0] };
    char expected[80];
    int k = 0, left = 0;
    for (int i = 0; i < NNAMES; i++) {
        left += (words & names[i].words) != 0;
    }
    for (int i = 0; i < NNAMES; i++) {
        if (words & names[i].words) {
            left--;
            k += snprintf(expected + k, sizeof expected - (size_t)k, "'%s'%s", names[i].word,
                          left > 1    ? ", "
                          : left == 1 ? " or "
                                      : "");
        }
    }
    snprintf(expected + k, sizeof expected - (size_t)k, "%s",
             words & LOB_SIDE_NOCASE ? " (any case)" : "");
    return lob_cell_error(err, LOB_E_FORMAT, col, name, c, expected);
}

int
lob_cell_bool_error(const lob_cell *c, int col, const char *name, int how, lob_error *err)
{
    return lob_cell_error(err, LOB_E_FORMAT, col, name, c,
                          how == LOB_BOOL_DIGITS ? "'true', 'false', '1' or '0' (any case)"
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
