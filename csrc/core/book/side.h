/* side.h -- one side of an order book: levels keyed by an integer, best = largest key.
 *
 * Keys ascend and the best level is the largest key (book.c stores dir * tick, so that holds
 * for bids and asks alike).  Two parts hold the levels, each key in exactly one:
 *
 *  - the window: a tick-indexed array of LOB_SIDE_WINDOW slots (key - lo), one bit per slot
 *    saying whether a level is there and one bit per 64 slots saying whether any is.  A set,
 *    a delete or a lookup is one index; the next level below a slot is found with a count of
 *    leading zeros (two when the word is empty), so reading the top N never walks empty ticks.
 *    Measured on Binance USD-M BTCUSDT: ~95 % of the level updates land within 16,384 ticks
 *    of the best, and the window keeps 3/4 of its slots below the best.
 *  - the far part: every other level (far below the best, or far above it: a stray level
 *    beyond the window), as sorted blocks of at most LOB_SIDE_BLOCK levels.
 *
 * When an update lands outside the window and the best has moved a quarter of the window
 * away from where the window puts it, the window moves back over the best: the levels that
 * leave it go to the far part, those it now covers come in.  A best far above the window (a
 * stray level, more than half a window up) does not move it.  Which part holds a level
 * never changes what the side holds: the window is a cache of the levels near the best.
 */
#ifndef LOB_SIDE_H
#define LOB_SIDE_H

#include "core/lob.h"

#define LOB_SIDE_BLOCK 128 /* levels per far block: a split or a shift stays within ~3 KiB */
#define LOB_SIDE_WINDOW_BITS 15
#define LOB_SIDE_WINDOW (1 << LOB_SIDE_WINDOW_BITS) /* window slots: 256 KiB of sizes */

typedef struct lob_side_block_s {
    int64_t key[LOB_SIDE_BLOCK]; /* ascending */
    double qty[LOB_SIDE_BLOCK];  /* size of each level (> 0) */
    int n;                       /* levels held */
} lob_side_block;

/* Levels outside the window, as sorted blocks. */
typedef struct lob_side_far_s {
    lob_side_block **blk; /* blocks in ascending key order, none empty */
    size_t nblk;          /* blocks held */
    size_t cap;           /* blocks allocated in blk */
    size_t n;             /* levels held, all blocks */
} lob_side_far;

typedef struct lob_side_s {
    int64_t lo;       /* key of window slot 0 (the window holds keys lo .. lo + WINDOW - 1) */
    double *qty;      /* size at each slot, meaningful where its bit is set; NULL until used */
    uint64_t *bits;   /* one bit per slot: a level is there */
    uint64_t *sum;    /* one bit per word of bits: the word is not 0 */
    int top;          /* highest occupied slot (meaningful when wn > 0) */
    size_t wn;        /* levels in the window */
    lob_side_far far; /* levels outside the window */
    size_t n;         /* levels held, both parts */
} lob_side;

/* lob_side_set()'s parts, for it alone: the highest occupied slot <= i (or -1); an update
 * outside the window (or before it exists). */
int lob_side_below(const lob_side *s, int i);
int lob_side_set_far(lob_side *s, int64_t key, double qty);

/* Set window slot i to qty (0 deletes).  @return 1 if the side changed, else 0. */
static inline int
lob_side_set_slot(lob_side *s, int i, double qty)
{
    uint64_t *word = &s->bits[i >> 6], bit = UINT64_C(1) << (i & 63), w = *word;
    if (qty != 0) {
        s->qty[i] = qty;
        if (w & bit) {
            return 1; /* a new size for a level that is there: most updates */
        }
        *word = w | bit;
        s->sum[i >> 12] |= UINT64_C(1) << ((i >> 6) & 63);
        s->n++;
        if (s->wn++ == 0 || i > s->top) {
            s->top = i;
        }
        return 1;
    }
    if (!(w & bit)) {
        return 0;
    }
    if ((*word = w & ~bit) == 0) {
        s->sum[i >> 12] &= ~(UINT64_C(1) << ((i >> 6) & 63));
    }
    s->n--;
    if (--s->wn > 0 && i == s->top) {
        s->top = lob_side_below(s, i); /* the slot's bit is clear now */
    }
    return 1;
}

/*! lob_side_set() : set the level at `key` to qty (0 deletes).  |key| must stay below
 *  2^60 (book.c keys are below 2^52), so that window arithmetic cannot overflow.  Inline:
 *  an update inside the window is a few instructions, without a call.
 *  @return 1 if the side changed, 0 if not (deleting a level that is not there),
 *  LOB_E_NOMEM (the side is as it was). */
static inline int
lob_side_set(lob_side *s, int64_t key, double qty)
{
    uint64_t i = (uint64_t)(key - s->lo); /* |key| < 2^60, lo a key +- window: no overflow */
    if (i < LOB_SIDE_WINDOW && s->qty != NULL) {
        return lob_side_set_slot(s, (int)i, qty);
    }
    return lob_side_set_far(s, key, qty);
}

/*! lob_side_get() : 1 and *qty if a level is at `key`, else 0. */
int lob_side_get(const lob_side *s, int64_t key, double *qty);

/*! lob_side_top() : up to k levels from the best down into keys/qty.  @return how many. */
size_t lob_side_top(const lob_side *s, size_t k, int64_t *keys, double *qty);

/*! lob_side_best() : the best (largest) key; the side must not be empty. */
static inline int64_t
lob_side_best(const lob_side *s)
{
    int64_t w = s->wn ? s->lo + s->top : INT64_MIN;
    if (s->far.nblk) {
        const lob_side_block *b = s->far.blk[s->far.nblk - 1];
        return b->key[b->n - 1] > w ? b->key[b->n - 1] : w;
    }
    return w;
}

/*! lob_side_worst() : the worst (smallest) key; the side must not be empty. */
int64_t lob_side_worst(const lob_side *s);

/*! lob_side_pop_best() : remove the best level (the side must not be empty). */
void lob_side_pop_best(lob_side *s);

/*! lob_side_unwindow() : move every level of the window to the far part (before a
 *  lob_side_scale(), which then cannot fail).  @return 0 or LOB_E_NOMEM (the side is as it
 *  was). */
int lob_side_unwindow(lob_side *s);

/*! lob_side_scale() : multiply every key by f (a rescaled tick grid keeps the order); the
 *  window must be empty (lob_side_unwindow()). */
void lob_side_scale(lob_side *s, int64_t f);

/*! lob_side_clear() : remove every level (keeps the window's memory).  lob_side_free():
 *  remove every level and free everything. */
void lob_side_clear(lob_side *s);
void lob_side_free(lob_side *s);

#endif /* LOB_SIDE_H */
