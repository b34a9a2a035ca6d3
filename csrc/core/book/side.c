/* side.c -- a book side as a tick-indexed window near the best plus sorted blocks for the
 * rest (see side.h). */
#include "core/book/side.h"

#include <stdlib.h>
#include <string.h>

#define W LOB_SIDE_WINDOW
#define NWORD (W / 64)        /* words of bits */
#define NSUM (NWORD / 64)     /* words of sum */
#define BEST_SLOT (W / 4 * 3) /* where a re-centred window puts the best */
#define DRIFT (W / 4)         /* how far the best moves from there before the window follows */

/* ------------------------------------------------------------------ far part: sorted blocks */

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
 * Gallops down from the top block, then bisects. */
static size_t
find_block(const lob_side_far *f, int64_t key)
{
    size_t hi = f->nblk; /* blocks [hi, nblk) start above key */
    size_t step = 1;
    while (step <= hi && f->blk[hi - step]->key[0] > key) {
        hi -= step;
        step <<= 1;
    }
    size_t lo = step <= hi ? hi - step : 0; /* block lo starts at or below key (or is 0) */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (f->blk[mid]->key[0] <= key) {
            lo = mid;
        }
        else {
            hi = mid;
        }
    }
    return lo;
}

static int
insert_block(lob_side_far *f, size_t at, lob_side_block *b)
{
    if (f->nblk == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        lob_side_block **p = realloc(f->blk, cap * sizeof *p);
        if (p == NULL) {
            return LOB_E_NOMEM;
        }
        f->blk = p;
        f->cap = cap;
    }
    memmove(f->blk + at + 1, f->blk + at, (f->nblk - at) * sizeof *f->blk);
    f->blk[at] = b;
    f->nblk++;
    return LOB_OK;
}

static void
remove_block(lob_side_far *f, size_t at)
{
    free(f->blk[at]);
    memmove(f->blk + at, f->blk + at + 1, (f->nblk - at - 1) * sizeof *f->blk);
    f->nblk--;
}

/* Remove entry i of block j (never allocates). */
static void
far_remove_at(lob_side_far *f, size_t j, size_t i)
{
    lob_side_block *b = f->blk[j];
    memmove(b->key + i, b->key + i + 1, ((size_t)b->n - i - 1) * sizeof *b->key);
    memmove(b->qty + i, b->qty + i + 1, ((size_t)b->n - i - 1) * sizeof *b->qty);
    f->n--;
    if (--b->n == 0) {
        remove_block(f, j);
    }
}

/* Set the level at `key` to qty (0 deletes; a delete never allocates).
 * @return 1 if the part changed, 0 if not, LOB_E_NOMEM (unchanged). */
static int
far_set(lob_side_far *f, int64_t key, double qty)
{
    if (f->nblk == 0) {
        if (qty == 0) {
            return 0;
        }
        lob_side_block *b = malloc(sizeof *b);
        if (b == NULL || insert_block(f, 0, b) < 0) {
            free(b);
            return LOB_E_NOMEM;
        }
        b->key[0] = key;
        b->qty[0] = qty;
        b->n = 1;
        f->n = 1;
        return 1;
    }
    size_t j = find_block(f, key);
    lob_side_block *b = f->blk[j];
    size_t i = lower_bound(b->key, (size_t)b->n, key);
    int found = i < (size_t)b->n && b->key[i] == key;
    if (qty == 0) {
        if (!found) {
            return 0;
        }
        far_remove_at(f, j, i);
        return 1;
    }
    if (found) {
        b->qty[i] = qty;
        return 1;
    }
    if (b->n == LOB_SIDE_BLOCK) {
        /* split the full block in halves; the new key goes to the half it sorts into */
        lob_side_block *up = malloc(sizeof *up);
        if (up == NULL || insert_block(f, j + 1, up) < 0) {
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
    f->n++;
    return 1;
}

static int
far_get(const lob_side_far *f, int64_t key, double *qty)
{
    if (f->nblk == 0) {
        return 0;
    }
    const lob_side_block *b = f->blk[find_block(f, key)];
    size_t i = lower_bound(b->key, (size_t)b->n, key);
    if (i < (size_t)b->n && b->key[i] == key) {
        *qty = b->qty[i];
        return 1;
    }
    return 0;
}

static int64_t
far_best(const lob_side_far *f)
{
    const lob_side_block *b = f->blk[f->nblk - 1];
    return b->key[b->n - 1];
}

static void
far_clear(lob_side_far *f)
{
    for (size_t j = 0; j < f->nblk; j++) {
        free(f->blk[j]);
    }
    f->nblk = 0;
    f->n = 0;
}

/* ------------------------------------------------------------------ window */

static int
win_has(const lob_side *s, int i)
{
    return (int)((s->bits[i >> 6] >> (i & 63)) & 1);
}

static void
win_mark(lob_side *s, int i)
{
    s->bits[i >> 6] |= UINT64_C(1) << (i & 63);
    s->sum[i >> 12] |= UINT64_C(1) << ((i >> 6) & 63);
}

static void
win_unmark(lob_side *s, int i)
{
    if ((s->bits[i >> 6] &= ~(UINT64_C(1) << (i & 63))) == 0) {
        s->sum[i >> 12] &= ~(UINT64_C(1) << ((i >> 6) & 63));
    }
}

/* The highest non-empty word of bits below word w (w > 0), or -1. */
static int
word_below(const lob_side *s, int w)
{
    int j = w - 1, k = j >> 6;
    uint64_t sm = s->sum[k] & (~UINT64_C(0) >> (63 - (j & 63)));
    while (sm == 0) {
        if (k == 0) {
            return -1;
        }
        sm = s->sum[--k];
    }
    return (k << 6) | (63 - __builtin_clzll(sm));
}

/* The highest occupied slot <= i (0 <= i < W), or -1. */
int
lob_side_below(const lob_side *s, int i)
{
    int w = i >> 6;
    uint64_t m = s->bits[w] & (~UINT64_C(0) >> (63 - (i & 63)));
    if (m) {
        return (w << 6) | (63 - __builtin_clzll(m));
    }
    if (w == 0 || (w = word_below(s, w)) < 0) {
        return -1;
    }
    return (w << 6) | (63 - __builtin_clzll(s->bits[w]));
}

/* The lowest occupied slot >= i (0 <= i < W), or -1. */
static int
win_above(const lob_side *s, int i)
{
    int w = i >> 6;
    uint64_t m = s->bits[w] & (~UINT64_C(0) << (i & 63));
    if (m) {
        return (w << 6) | __builtin_ctzll(m);
    }
    if (w == NWORD - 1) {
        return -1;
    }
    int j = w + 1, k = j >> 6;
    uint64_t sm = s->sum[k] & (~UINT64_C(0) << (j & 63));
    while (sm == 0) {
        if (k == NSUM - 1) {
            return -1;
        }
        sm = s->sum[++k];
    }
    j = (k << 6) | __builtin_ctzll(sm);
    return (j << 6) | __builtin_ctzll(s->bits[j]);
}

/* The window's memory (once per side; the sizes need no zeroing: bits say what is set). */
static int
win_alloc(lob_side *s)
{
    if (s->qty != NULL) {
        return LOB_OK;
    }
    s->qty = malloc(W * sizeof *s->qty);
    s->bits = calloc(NWORD + NSUM, sizeof *s->bits);
    if (s->qty == NULL || s->bits == NULL) {
        free(s->qty);
        free(s->bits);
        s->qty = NULL;
        s->bits = NULL;
        return LOB_E_NOMEM;
    }
    s->sum = s->bits + NWORD;
    return LOB_OK;
}

/* Copy the window's levels in slots [from, to) to the far part, leaving the window as it
 * is.  On LOB_E_NOMEM the copies made are deleted again (deletes never allocate). */
static int
win_copy_out(lob_side *s, int from, int to)
{
    for (int i = from < to ? win_above(s, from) : -1; i >= 0 && i < to;
         i = i + 1 < W ? win_above(s, i + 1) : -1) {
        if (far_set(&s->far, s->lo + i, s->qty[i]) < 0) {
            for (int k = win_above(s, from); k >= 0 && k < i; k = win_above(s, k + 1)) {
                far_set(&s->far, s->lo + k, 0);
            }
            return LOB_E_NOMEM;
        }
    }
    return LOB_OK;
}

/* Forget the window's levels in slots [from, to) (copied out already). */
static void
win_drop(lob_side *s, int from, int to)
{
    for (int i = from < to ? win_above(s, from) : -1; i >= 0 && i < to;
         i = i + 1 < W ? win_above(s, i + 1) : -1) {
        win_unmark(s, i);
        s->wn--;
    }
}

/* Bits move d slots down (d > 0: slot i + d becomes slot i) or up (d < 0); |d| < W. */
static void
shift_bits(uint64_t *bits, int d)
{
    if (d > 0) {
        int ws = d >> 6, bs = d & 63;
        for (int w = 0; w < NWORD; w++) {
            uint64_t a = w + ws < NWORD ? bits[w + ws] : 0;
            uint64_t b = w + ws + 1 < NWORD ? bits[w + ws + 1] : 0;
            bits[w] = bs ? (a >> bs) | (b << (64 - bs)) : a;
        }
    }
    else if (d < 0) {
        int ws = (-d) >> 6, bs = (-d) & 63;
        for (int w = NWORD - 1; w >= 0; w--) {
            uint64_t a = w - ws >= 0 ? bits[w - ws] : 0;
            uint64_t b = w - ws - 1 >= 0 ? bits[w - ws - 1] : 0;
            bits[w] = bs ? (a << bs) | (b >> (64 - bs)) : a;
        }
    }
}

/* Move the window to start at key `lo`: its levels outside the new range go to the far part,
 * the far levels inside it come in.  @return 0 or LOB_E_NOMEM (the side is as it was). */
static int
win_move(lob_side *s, int64_t lo)
{
    /* both lie within 2^60 + W of 0 (side.h), so the difference cannot overflow */
    int64_t d = lo - s->lo;
    if (s->wn > 0) {
        int from = d > 0 ? 0 : (d <= -W ? 0 : W + (int)d);
        int to = d > 0 ? (d >= W ? W : (int)d) : W;
        LOB_FORWARD_IF_ERROR(win_copy_out(s, from, to));
        win_drop(s, from, to);
    }
    /* what stays moves by d slots (|d| < W then: a larger move dropped everything; with
     * nothing left the bits are all 0 already, as wn counts them) */
    if (s->wn > 0 && d > 0) {
        memmove(s->qty, s->qty + d, (size_t)(W - d) * sizeof *s->qty);
        shift_bits(s->bits, (int)d);
    }
    else if (s->wn > 0 && d < 0) {
        memmove(s->qty - d, s->qty, (size_t)(W + d) * sizeof *s->qty);
        shift_bits(s->bits, (int)d);
    }
    s->lo = lo;
    for (int k = 0; k < NSUM; k++) {
        uint64_t m = 0;
        for (int b = 0; b < 64; b++) {
            m |= (uint64_t)(s->bits[k * 64 + b] != 0) << b;
        }
        s->sum[k] = m;
    }
    /* the far levels now inside the window come in (moves never allocate) */
    lob_side_far *f = &s->far;
    size_t j = f->nblk ? find_block(f, lo) : 0;
    while (j < f->nblk) {
        lob_side_block *b = f->blk[j];
        size_t i = lower_bound(b->key, (size_t)b->n, lo);
        if (i == (size_t)b->n) {
            j++;
            continue;
        }
        if (b->key[i] - lo >= W) {
            break;
        }
        int slot = (int)(b->key[i] - lo);
        win_mark(s, slot);
        s->qty[slot] = b->qty[i];
        s->wn++;
        far_remove_at(f, j, i); /* block j now holds the next key, or is gone */
    }
    if (s->wn > 0) {
        s->top = lob_side_below(s, W - 1);
    }
    return LOB_OK;
}

/* After an update outside the window: move the window over the best when the best has
 * drifted DRIFT slots from BEST_SLOT (or the window is empty).  The best is the window's, or
 * the far part's when it lies above the window by less than half a window (a stray level
 * further up is left in the far part).  Best effort: without memory the levels stay where
 * they are, which changes nothing but speed. */
static void
recentre(lob_side *s)
{
    if (s->far.n == 0 || win_alloc(s) < 0) {
        return;
    }
    int64_t ref = s->lo + s->top, fb = far_best(&s->far);
    if (s->wn == 0 || (fb >= s->lo + W && fb - (s->lo + W) < W / 2)) {
        ref = fb;
    }
    int64_t lo = ref - BEST_SLOT, d = lo - s->lo;
    if (s->wn == 0 || d >= DRIFT || d <= -DRIFT) {
        (void)win_move(s, lo);
    }
}

/* ------------------------------------------------------------------ the side */

int
lob_side_set_far(lob_side *s, int64_t key, double qty)
{
    if (s->n == 0 && qty != 0 && win_alloc(s) == LOB_OK) {
        s->lo = key - BEST_SLOT; /* an empty side: the window goes where the first level is */
        return lob_side_set_slot(s, BEST_SLOT, qty);
    }
    int rc = far_set(&s->far, key, qty);
    s->n = s->wn + s->far.n;
    if (rc >= 0) {
        recentre(s);
    }
    return rc;
}

int
lob_side_get(const lob_side *s, int64_t key, double *qty)
{
    uint64_t i = (uint64_t)(key - s->lo);
    if (i < W && s->qty != NULL) {
        if (!win_has(s, (int)i)) {
            return 0;
        }
        *qty = s->qty[i];
        return 1;
    }
    return far_get(&s->far, key, qty);
}

size_t
lob_side_top(const lob_side *s, size_t k, int64_t *keys, double *qty)
{
    size_t out = 0;
    size_t j = s->far.nblk; /* far cursor: entry fi of block j - 1 */
    int fi = j ? s->far.blk[j - 1]->n - 1 : -1;
    if (s->wn > 0) {
        /* the window's levels from its top down, a word of bits at a time; far levels above
         * the window (stray ones) merge in where they belong.  Locals throughout: stores to
         * keys / qty could alias the side's fields. */
        const uint64_t *bits = s->bits;
        const double *wq = s->qty;
        int64_t lo = s->lo;
        int64_t fk = j ? s->far.blk[j - 1]->key[fi] : INT64_MIN;
        int w = s->top >> 6;
        uint64_t m = bits[w] & (~UINT64_C(0) >> (63 - (s->top & 63)));
        while (out < k) {
            if (m == 0) {
                if (w == 0 || (w = word_below(s, w)) < 0) {
                    break;
                }
                m = bits[w];
            }
            int i = (w << 6) | (63 - __builtin_clzll(m));
            if (fk > lo + i) {
                const lob_side_block *b = s->far.blk[j - 1];
                keys[out] = fk;
                qty[out++] = b->qty[fi];
                if (--fi < 0 && --j > 0) {
                    fi = s->far.blk[j - 1]->n - 1;
                }
                fk = j ? s->far.blk[j - 1]->key[fi] : INT64_MIN;
                continue;
            }
            m &= ~(UINT64_C(1) << (i & 63)); /* the highest bit, taken */
            keys[out] = lo + i;
            qty[out++] = wq[i];
        }
    }
    /* then the far levels below the window */
    while (out < k && j > 0) {
        const lob_side_block *b = s->far.blk[j - 1];
        keys[out] = b->key[fi];
        qty[out++] = b->qty[fi];
        if (--fi < 0 && --j > 0) {
            fi = s->far.blk[j - 1]->n - 1;
        }
    }
    return out;
}

int64_t
lob_side_worst(const lob_side *s)
{
    int64_t w = s->wn ? s->lo + win_above(s, 0) : INT64_MAX;
    return s->far.nblk && s->far.blk[0]->key[0] < w ? s->far.blk[0]->key[0] : w;
}

void
lob_side_pop_best(lob_side *s)
{
    if (s->wn > 0 && (s->far.nblk == 0 || s->lo + s->top > far_best(&s->far))) {
        lob_side_set_slot(s, s->top, 0);
        return;
    }
    lob_side_block *b = s->far.blk[s->far.nblk - 1];
    far_remove_at(&s->far, s->far.nblk - 1, (size_t)b->n - 1);
    s->n--;
}

int
lob_side_unwindow(lob_side *s)
{
    if (s->wn == 0) {
        return LOB_OK;
    }
    LOB_FORWARD_IF_ERROR(win_copy_out(s, 0, W));
    memset(s->bits, 0, (NWORD + NSUM) * sizeof *s->bits);
    s->wn = 0;
    return LOB_OK;
}

void
lob_side_scale(lob_side *s, int64_t f)
{
    for (size_t j = 0; j < s->far.nblk; j++) {
        for (int i = 0; i < s->far.blk[j]->n; i++) {
            s->far.blk[j]->key[i] *= f;
        }
    }
    recentre(s); /* the window is empty: it goes over the best again */
}

void
lob_side_clear(lob_side *s)
{
    far_clear(&s->far);
    if (s->wn > 0) {
        memset(s->bits, 0, (NWORD + NSUM) * sizeof *s->bits);
    }
    s->wn = 0;
    s->n = 0;
}

void
lob_side_free(lob_side *s)
{
    lob_side_clear(s);
    free(s->far.blk);
    free(s->qty);
    free(s->bits);
    s->far.blk = NULL;
    s->far.cap = 0;
    s->qty = NULL;
    s->bits = s->sum = NULL;
}
