/* columns.h -- rows of a CSV window parsed into typed columns.
 *
 * The time index gives the exact rows of a window, so every column is allocated once at
 * its final length and parsed in place; a window split at index entries can be parsed by
 * several threads at once, each into its own rows.  Text columns become small integer
 * codes: booleans 0/1, sides +1/-1/0, anything else an index into a per-call dictionary.
 */
#ifndef LOB_COLUMNS_H
#define LOB_COLUMNS_H

#include "core/io/lines.h"
#include "core/io/timeindex.h"

typedef enum {
    LOB_CK_I64 = 1,  /* int64 */
    LOB_CK_F64 = 2,  /* float64; an empty cell is NaN */
    LOB_CK_TIME = 3, /* int64 ns, in the unit of the index's time field */
    LOB_CK_BOOL = 4, /* int8: true/false (any case), 1/0 */
    LOB_CK_SIDE = 5, /* int8: buy/bid +1, sell/ask -1, unknown/empty 0 */
    LOB_CK_TEXT = 6, /* int32 code into `dict` */
} lob_colkind;

#define LOB_DICT_MAX 65536 /* distinct values of a text column: more is not a category */
#define LOB_TEXT_MAX 1024  /* bytes of one text value: longer is refused (columns.c says 1024) */

/* Distinct text values in first-seen order; an open-addressing table finds them. */
typedef struct lob_dict_s {
    char *text;      /* the values, each NUL-terminated, back to back */
    size_t len, cap; /* bytes used / allocated in text */
    int64_t *start;  /* start of value i in text */
    int n;           /* values */
    int32_t *slot;   /* hash table of value index + 1 (0 = empty), `slots` long */
    int slots;       /* a power of two */
    int last;        /* code of the value met last: runs repeat it */
} lob_dict;

typedef struct lob_csvcol_s {
    int field;        /* 0-based field of the line */
    int kind;         /* lob_colkind */
    void *out;        /* rows to fill: int64 / double / int8 / int32 */
    lob_dict *dict;   /* LOB_CK_TEXT: values met, in code order */
    const char *name; /* for errors */
} lob_csvcol;

/*! lob_csv_columns() : parse the `nrows` data rows of `span` of `path` (blank lines are
 *  not rows) into `cols` (sorted by field, at most one per field).  `line0` is the number of
 *  lines before the span, for error messages.  Fails with LOB_E_FORMAT naming the line,
 *  byte offset and column for a malformed cell, and when the span holds another number of
 *  rows than the index said (the file changed).  @return 0 or a negative code. */
int lob_csv_columns(const char *path, const lob_span *span, int64_t line0, const lob_tskey *key,
                    lob_csvcol *cols, int ncol, int64_t nrows, lob_error *err);

/*! lob_csv_guess() : the kind (lob_colkind) of each of the `ncol` fields of the rows in
 *  [s, s + n) (lines split at '\n', a '\r' before it dropped; blank lines skipped; at most
 *  `max_rows` rows; `n` must end at a line's end), decided by the cell readers that will
 *  read the column, so a column is never given a kind its cells then fail:
 *    field `time_field` (-1: none): LOB_CK_TIME;
 *    integers (lob_cell_int64) in every cell: LOB_CK_TIME when the column's name ends in
 *      "timestamp" and every cell is a time in `unit` (lob_cell_time), else LOB_CK_I64;
 *      LOB_CK_F64 when some cells are empty (NaN) or no cell holds anything;
 *    numbers or 'nan' (lob_cell_number): LOB_CK_F64;
 *    true/false in every cell, none empty: LOB_CK_BOOL;
 *    buy/sell/bid/ask/unknown or empty (any case): LOB_CK_SIDE;
 *    anything else: LOB_CK_TEXT.
 *  A row with fewer fields counts as empty cells.  `names` may be NULL. */
void lob_csv_guess(const char *s, size_t n, char sep, int ncol, int time_field, int64_t unit,
                   const char *const *names, int64_t max_rows, int *kinds);

/*! lob_dict_free() : NULL-safe. */
void lob_dict_free(lob_dict *d);

/*! lob_dict_value() : value i (0 <= i < d->n), NUL-terminated. */
const char *lob_dict_value(const lob_dict *d, int i);

#endif /* LOB_COLUMNS_H */
