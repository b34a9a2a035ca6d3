/* side.c -- a book side as sorted blocks (see side.h). */
#include "core/book/side.h"

#include <stdlib.h>
#include <string.h>

/* First index in a[0..n) whose key is >= key (n if none).  Branch-free: the comparisons
 * depend on the data and mispredict when compiled as branches. */
static size_t
lower_bound(const int64_t *a, size_t n, int64_t key)
{
    if (n == 0) {
        return 0;
    }
    const int64_t *base = a;
    while (n > 1) {
        size_t half = n / 2;
        base += (size_t)(base[half] < key) * half; /* a multiply, not a branch */
        n -= half;
    }
    return (size_t)(base - a) + (*base < key);
}

/* The block `key` belongs in: the last one whose first key is <= key (block 0 if none).
 * Gallops down from the top block, where most updates land, then bisects. */
static size_t
find_block(const lob_side *s, int64_t key)
{
    size_t hi = s->nblk; /* blocks [hi, nblk) start above key */
    size_t step = 1;
    while (step <= hi && s->blk[hi - step]->key[0] > key) {
        hi -= step;
        step <<= 1;
    }
    size_t lo = step <= hi ? hi - step : 0; /* block lo starts at or below key (or is 0) */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->blk[mid]->key[0] <= key) {
            lo = mid;
        }
        else {
            hi = mid;
        }
    }
    return lo;
}

static int
insert_block(lob_side *s, size_t at, lob_side_block *b)
{
    if (s->nblk == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        lob_side_block **p = realloc(s->blk, cap * sizeof *p);
        if (p == NULL) {
            return LOB_E_NOMEM;
        }
        s->blk = p;
        s->cap = cap;
    }
    memmove(s->blk + at + 1, s->blk + at, (s->nblk - at) * sizeof *s->blk);
    s->blk[at] = b;
    s->nblk++;
    return LOB_OK;
}

static void
remove_block(lob_side *s, size_t at)
{
    free(s->blk[at]);
    memmove(s->blk + at, s->blk + at + 1, (s->nblk - at - 1) * sizeof *s->blk);
    s->nblk--;
}

int
lob_side_set(lob_side *s, int64_t key, double qty)
{
    if (s->nblk == 0) {
        if (qty == 0) {
            return 0;
        }
        lob_side_block *b = malloc(sizeof *b);
        if (b == NULL || insert_block(s, 0, b) < 0) {
            free(b);
            return LOB_E_NOMEM;
        }
        b->key[0] = key;
        b->qty[0] = qty;
        b->n = 1;
        s->n = 1;
        return 1;
    }
    size_t j = find_block(s, key);
    lob_side_block *b = s->blk[j];
    size_t i = lower_bound(b->key, (size_t)b->n, key);
    int found = i < (size_t)b->n && b->key[i] == key;
    if (qty == 0) {
        if (!found) {
            return 0;
        }
        memmove(b->key + i, b->key + i + 1, ((size_t)b->n - i - 1) * sizeof *b->key);
        memmove(b->qty + i, b->qty + i + 1, ((size_t)b->n - i - 1) * sizeof *b->qty);
        s->n--;
        if (--b->n == 0) {
            remove_block(s, j);
        }
        return 1;
    }
    if (found) {
        b->qty[i] = qty;
        return 1;
    }
    if (b->n == LOB_SIDE_BLOCK) {
        /* split the full block in halves; the new key goes to the half it sorts into */
        lob_side_block *up = malloc(sizeof *up);
        if (up == NULL || insert_block(s, j + 1, up) < 0) {
            free(up);
            return LOB_E_NOMEM;
        }
        int half = LOB_SIDE_BLOCK / 2;
        memcpy(up->key, b->key + half, (size_t)half * sizeof *b->key);
        memcpy(up->qty, b->qty + half, (size_t)half * sizeof *b->qty);
        up->n = half;
        b->n = half;
        if (i > (size_t)half) {
            b = up;
            i -= (size_t)half;
        }
    }
    memmove(b->key + i + 1, b->key + i, ((size_t)b->n - i) * sizeof *b->key);
    memmove(b->qty + i + 1, b->qty + i, ((size_t)b->n - i) * sizeof *b->qty);
    b->key[i] = key;
    b->qty[i] = qty;
    b->n++;
    s->n++;
    return 1;
}

size_t
lob_side_top(const lob_side *s, size_t k, int64_t *keys, double *qty)
{
    size_t out = 0;
    for (size_t j = s->nblk; j > 0 && out < k; j--) {
        const lob_side_block *b = s->blk[j - 1];
        for (int i = b->n; i > 0 && out < k; i--, out++) {
            keys[out] = b->key[i - 1];
            qty[out] = b->qty[i - 1];
        }
    }
    return out;
}

void
lob_side_pop_best(lob_side *s)
{
    lob_side_block *b = s->blk[s->nblk - 1];
    s->n--;
    if (--b->n == 0) {
        remove_block(s, s->nblk - 1);
    }
}

void
lob_side_scale(lob_side *s, int64_t f)
{
    for (size_t j = 0; j < s->nblk; j++) {
        for (int i = 0; i < s->blk[j]->n; i++) {
            s->blk[j]->key[i] *= f;
        }
    }
}

void
lob_side_clear(lob_side *s)
{
    for (size_t j = 0; j < s->nblk; j++) {
        free(s->blk[j]);
    }
    s->nblk = 0;
    s->n = 0;
}

void
lob_side_free(lob_side *s)
{
    lob_side_clear(s);
    free(s->blk);
    s->blk = NULL;
    s->cap = 0;
}
