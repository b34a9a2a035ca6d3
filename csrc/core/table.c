/* table.c -- growable column tables. */
#include "core/table.h"

#include "core/blocks.h"

#include <stdlib.h>
#include <string.h>

#define LOB_GROW_STEP ((size_t)1 << 20) /* rows: doubling gives way to x1.5 here */

/* Grow column i (`used` bytes filled) to `bytes`.  Output columns are written once, so a
 * read is dominated by page faults on fresh memory: a large column is a block of blocks.h (a
 * block freed earlier when one of about the size is kept), which grows with its pages in
 * place.  Below the size, plain realloc. */
static int
grow(lob_table *t, int i, size_t used, size_t bytes)
{
    if (bytes >= LOB_BLOCK_MIN) {
        size_t got;
        void *p = lob_block_grow(t->col[i], t->bytes[i], used, bytes, &got);
        if (p == NULL) {
            return LOB_E_NOMEM;
        }
        t->col[i] = p;
        t->bytes[i] = got;
        return LOB_OK;
    }
    void *p = realloc(t->col[i], bytes);
    if (p == NULL) {
        return LOB_E_NOMEM;
    }
    t->col[i] = p;
    t->bytes[i] = bytes;
    return LOB_OK;
}

static size_t
row_bytes(const lob_column *c)
{
    return (size_t)c->size * (size_t)c->width;
}

void
lob_table_init(lob_table *t, const lob_column *schema, int ncol)
{
    memset(t, 0, sizeof *t);
    t->schema = schema;
    t->ncol = ncol;
}

int
lob_table_reserve(lob_table *t, size_t extra)
{
    if (t->cap - t->n >= extra) {
        return LOB_OK;
    }
    if (extra > SIZE_MAX / 2 - t->n) {
        return LOB_E_RANGE;
    }
    size_t need = t->n + extra;
    size_t cap = t->cap < 256 ? 256 : t->cap;
    while (cap < need) {
        cap = cap < LOB_GROW_STEP ? cap * 2 : cap + cap / 2;
    }
    /* rows past n that the caller wrote into earlier room (a message parsed before it is
     * committed) are kept: up to n + extra, never beyond what was allocated */
    size_t keep = t->n + extra < t->cap ? t->n + extra : t->cap;
    for (int i = 0; i < t->ncol; i++) {
        size_t rb = row_bytes(&t->schema[i]);
        if (cap > SIZE_MAX / rb) {
            return LOB_E_RANGE;
        }
        if (grow(t, i, keep * rb, cap * rb) < 0) {
            return LOB_E_NOMEM; /* columns already grown keep their larger size */
        }
    }
    t->cap = cap;
    return LOB_OK;
}

int
lob_table_detach(lob_table *t, void **out, size_t *out_bytes)
{
    for (int i = 0; i < t->ncol; i++) {
        size_t bytes = t->bytes[i];
        out[i] = NULL;
        if (t->n == 0) {
            lob_block_free(t->col[i], bytes);
            bytes = 0;
        }
        else if (t->n < t->cap && bytes < LOB_BLOCK_MIN) {
            /* shrinking realloc rarely fails; keep the larger block if it does (a large
             * block is left whole: the room not written is address space only, and the
             * block can serve another of its size once freed) */
            size_t fit = t->n * row_bytes(&t->schema[i]);
            void *p = realloc(t->col[i], fit);
            out[i] = p != NULL ? p : t->col[i];
            bytes = p != NULL ? fit : bytes;
        }
        else {
            out[i] = t->col[i];
        }
        if (out_bytes != NULL) {
            out_bytes[i] = bytes;
        }
        t->col[i] = NULL;
        t->bytes[i] = 0;
    }
    t->n = 0;
    t->cap = 0;
    return LOB_OK;
}

int
lob_table_append(lob_table *t, const lob_table *src, size_t from, size_t n)
{
    if (n == 0) {
        return LOB_OK; /* the columns may not exist yet: memcpy(NULL, NULL, 0) is undefined */
    }
    LOB_FORWARD_IF_ERROR(lob_table_reserve(t, n));
    for (int i = 0; i < t->ncol; i++) {
        size_t rb = row_bytes(&t->schema[i]);
        memcpy((char *)t->col[i] + t->n * rb, (const char *)src->col[i] + from * rb, n * rb);
    }
    t->n += n;
    return LOB_OK;
}

void
lob_table_drop_front(lob_table *t, size_t n)
{
    if (n >= t->n) {
        t->n = 0;
        return;
    }
    for (int i = 0; i < t->ncol; i++) {
        size_t rb = row_bytes(&t->schema[i]);
        memmove(t->col[i], (char *)t->col[i] + n * rb, (t->n - n) * rb);
    }
    t->n -= n;
}

void
lob_table_free(lob_table *t)
{
    if (t == NULL) {
        return;
    }
    for (int i = 0; i < t->ncol; i++) {
        lob_block_free(t->col[i], t->bytes[i]);
        t->col[i] = NULL;
        t->bytes[i] = 0;
    }
    t->n = 0;
    t->cap = 0;
}
