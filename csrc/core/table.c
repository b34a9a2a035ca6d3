/* table.c -- growable column tables. */
#define _GNU_SOURCE /* madvise */
#include "core/table.h"

#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#define LOB_GROW_STEP ((size_t)1 << 20) /* rows: doubling gives way to x1.5 here */

#define LOB_HUGE_BYTES ((size_t)4 << 20) /* columns this large ask for 2 MiB pages */
#define LOB_HUGE_ALIGN ((size_t)2 << 20)

/* Grow one column (`used` bytes filled) to `bytes`.  Output columns are written once, so a
 * read is dominated by page faults on fresh memory: a large column moves to a 2 MiB-aligned
 * block the kernel is asked to back with huge pages (Linux transparent huge pages in
 * "madvise" mode: ~500x fewer faults).  Elsewhere, or below the size, plain realloc. */
static void *
grow(void *old, size_t used, size_t bytes)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (bytes >= LOB_HUGE_BYTES) {
        void *p = NULL;
        if (posix_memalign(&p, LOB_HUGE_ALIGN, bytes) != 0) {
            return NULL;
        }
        (void)madvise(p, bytes & ~(LOB_HUGE_ALIGN - 1), MADV_HUGEPAGE); /* a hint only */
        if (used > 0) {
            memcpy(p, old, used);
        }
        free(old);
        return p;
    }
#endif
    (void)used;
    return realloc(old, bytes);
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
        void *p = grow(t->col[i], keep * rb, cap * rb);
        if (p == NULL) {
            return LOB_E_NOMEM; /* columns already grown keep their larger size */
        }
        t->col[i] = p;
    }
    t->cap = cap;
    return LOB_OK;
}

int
lob_table_detach(lob_table *t, void **out)
{
    for (int i = 0; i < t->ncol; i++) {
        out[i] = NULL;
        if (t->n == 0) {
            free(t->col[i]);
        }
        else if (t->n < t->cap) {
            /* shrinking realloc rarely fails; keep the larger block if it does */
            void *p = realloc(t->col[i], t->n * row_bytes(&t->schema[i]));
            out[i] = p != NULL ? p : t->col[i];
        }
        else {
            out[i] = t->col[i];
        }
        t->col[i] = NULL;
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
        free(t->col[i]);
        t->col[i] = NULL;
    }
    t->n = 0;
    t->cap = 0;
}
