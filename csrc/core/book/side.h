/* side.h -- one side of an order book: levels kept sorted by an integer key.
 *
 * Keys ascend and the best level is the last one (book.c stores dir * tick, so that holds
 * for bids and asks alike).  The levels live in blocks of at most LOB_SIDE_BLOCK, sorted
 * among themselves: measured on Binance streams, updates land tens to hundreds of levels
 * below the top, and a side holds thousands of levels, so one flat sorted array moved
 * kilobytes on every insert or delete; a block moves at most LOB_SIDE_BLOCK entries.
 */
#ifndef LOB_SIDE_H
#define LOB_SIDE_H

#include "core/lob.h"

#define LOB_SIDE_BLOCK 128 /* levels per block: a split or a shift stays within ~3 KiB */

typedef struct lob_side_block_s {
    int64_t key[LOB_SIDE_BLOCK]; /* ascending */
    double qty[LOB_SIDE_BLOCK];  /* size of each level (> 0) */
    int n;                       /* levels held */
} lob_side_block;

typedef struct lob_side_s {
    lob_side_block **blk; /* blocks in ascending key order, none empty */
    size_t nblk;          /* blocks held */
    size_t cap;           /* blocks allocated in blk */
    size_t n;             /* levels held, all blocks */
} lob_side;

/*! lob_side_set() : set the level at `key` to qty (0 deletes).
 *  @return 1 if the side changed, 0 if not (deleting a level that is not there),
 *  LOB_E_NOMEM. */
int lob_side_set(lob_side *s, int64_t key, double qty);

/*! lob_side_top() : up to k levels from the best down into keys/qty.  @return how many. */
size_t lob_side_top(const lob_side *s, size_t k, int64_t *keys, double *qty);

/*! lob_side_best() : the best (largest) key; the side must not be empty. */
static inline int64_t
lob_side_best(const lob_side *s)
{
    const lob_side_block *b = s->blk[s->nblk - 1];
    return b->key[b->n - 1];
}

/*! lob_side_worst() : the worst (smallest) key; the side must not be empty. */
static inline int64_t
lob_side_worst(const lob_side *s)
{
    return s->blk[0]->key[0];
}

/*! lob_side_pop_best() : remove the best level (the side must not be empty). */
void lob_side_pop_best(lob_side *s);

/*! lob_side_scale() : multiply every key by f (a rescaled tick grid keeps the order). */
void lob_side_scale(lob_side *s, int64_t f);

/*! lob_side_clear() : remove every level (keeps nothing allocated).  lob_side_free() too. */
void lob_side_clear(lob_side *s);
void lob_side_free(lob_side *s);

#endif /* LOB_SIDE_H */
