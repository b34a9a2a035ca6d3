/* table.h -- growable column tables: the output of every reader.
 *
 * A table is a fixed schema of typed columns that grow together.  Each column is its own
 * buffer (core/blocks.h) so the binding can hand it to NumPy without copying (one capsule per
 * column) and then detach it from the table.
 */
#ifndef LOB_TABLE_H
#define LOB_TABLE_H

#include "core/lob.h"

#define LOB_MAX_COLS 12

/* Element types, named by their NumPy type characters. */
typedef enum {
    LOB_I8 = 'b',   /* int8 */
    LOB_U8 = 'B',   /* uint8 */
    LOB_I64 = 'q',  /* int64 */
    LOB_F64 = 'd',  /* float64 */
    LOB_BOOL = '?', /* bool, one byte holding 0 or 1 */
} lob_type;

typedef struct lob_column_s {
    const char *name; /* column name as the Python containers spell it */
    char type;        /* lob_type */
    uint8_t size;     /* bytes per element */
    uint16_t width;   /* elements per row: 1, or L for (N, L) book columns */
    uint8_t matrix;   /* 1: an (N, width) array even when width is 1 (book levels) */
} lob_column;

typedef struct lob_table_s {
    const lob_column *schema;   /* ncol column descriptions */
    int ncol;                   /* number of columns */
    size_t n;                   /* rows filled */
    size_t cap;                 /* rows allocated in every column */
    void *col[LOB_MAX_COLS];    /* one buffer per column, cap * size * width bytes */
    size_t bytes[LOB_MAX_COLS]; /* the size of each buffer (at least that) */
} lob_table;

/* Typed pointer to column i of table t. */
#define LOB_COL(t, i, T) ((T *)(t)->col[(i)])

/*! lob_table_init() : empty table over `schema` (no allocation). */
void lob_table_init(lob_table *t, const lob_column *schema, int ncol);

/*! lob_table_reserve() : make room for `extra` more rows in every column.
 *  Grows geometrically (x2 below 1 Mi rows, x1.5 above), so the copies of a table that
 *  grows to N rows add up to O(N) even for months of data (large columns are not copied at
 *  all on Linux: their pages move, core/blocks.h); capacity not yet written is address space
 *  only (pages are not touched), and detach() shrinks small buffers to fit.
 *  Rows the caller wrote past n into room reserved earlier (uncommitted rows) survive, up
 *  to row n + extra.  @return 0 or LOB_E_NOMEM / LOB_E_RANGE (size_t overflow). */
int lob_table_reserve(lob_table *t, size_t extra);

/*! lob_table_room() : lob_table_reserve() with the usual "there is room" case inline. */
static inline int
lob_table_room(lob_table *t, size_t extra)
{
    return t->cap - t->n >= extra ? LOB_OK : lob_table_reserve(t, extra);
}

/*! lob_table_detach() : give up ownership of every column buffer into `out[ncol]`, and
 *  its size in bytes into `out_bytes[ncol]` (may be NULL), and reset the table to empty.
 *  Small buffers are shrunk to n rows.  Each buffer is freed with lob_block_free()
 *  (core/blocks.h) and that size: a large one is a block of its own, not a malloc() block.
 *  Empty tables yield NULL pointers.  @return 0 or LOB_E_NOMEM. */
int lob_table_detach(lob_table *t, void **out, size_t *out_bytes);

/*! lob_table_append() : append rows [from, from + n) of `src` (same schema). */
int lob_table_append(lob_table *t, const lob_table *src, size_t from, size_t n);

/*! lob_table_drop_front() : remove the first `n` rows, keeping capacity. */
void lob_table_drop_front(lob_table *t, size_t n);

/*! lob_table_free() : free every column buffer; the table becomes empty. NULL-safe. */
void lob_table_free(lob_table *t);

#endif /* LOB_TABLE_H */
