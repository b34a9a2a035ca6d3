/* test_side.c -- a book side (side.c: a tick window near the best, sorted blocks for the
 * rest) against a plain array indexed by key, over keys spread across several windows. */
#include "core/book/side.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

#define RANGE (4 * LOB_SIDE_WINDOW) /* keys 0 .. RANGE - 1 */

static uint64_t rng = 88172645463325252ULL;

static uint64_t
next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* The whole side equals the reference: count, order (best first), keys and sizes. */
static int
same(const lob_side *s, const double *ref, int64_t *keys, double *qty)
{
    size_t n = lob_side_top(s, RANGE, keys, qty), k = 0;
    if (n != s->n) {
        return 0;
    }
    for (int64_t key = RANGE - 1; key >= 0; key--) {
        if (ref[key] != 0) {
            if (k >= n || keys[k] != key || qty[k] != ref[key]) {
                return 0;
            }
            k++;
        }
    }
    if (k != n) {
        return 0;
    }
    return n == 0 || (lob_side_best(s) == keys[0] && lob_side_worst(s) == keys[n - 1]);
}

void
lob_test_side(void)
{
    double *ref = calloc(RANGE, sizeof *ref);
    int64_t *keys = malloc(RANGE * sizeof *keys);
    double *qty = malloc(RANGE * sizeof *qty);
    lob_side s;
    memset(&s, 0, sizeof s);
    int ok = ref && keys && qty, changed_ok = 1, checks_ok = 1;
    int64_t centre = RANGE / 2;
    for (int op = 0; ok && op < 400000; op++) {
        uint64_t r = next();
        if (r % 1000 == 0) { /* the best jumps by up to a window and a half */
            int64_t to =
                centre + (int64_t)(next() % (3 * LOB_SIDE_WINDOW)) - 3 * LOB_SIDE_WINDOW / 2;
            to = to < 0 ? 0 : to >= RANGE - 100 ? RANGE - 101 : to;
            for (int64_t k = to + 1; k < RANGE; k++) { /* a falling best: the levels above go */
                if (ref[k] != 0) {
                    changed_ok &= lob_side_set(&s, k, 0) == 1;
                    ref[k] = 0;
                }
            }
            centre = to;
        }
        int64_t key, kind = (int64_t)((r >> 10) % 4);
        if (kind == 0) { /* a few ticks around the best: the same levels again and again */
            key = centre + (int64_t)(next() % 9) - 4;
        }
        else if (kind == 1) {
            key = centre - (int64_t)(next() % 2000);
        }
        else if (kind == 2) { /* anywhere below the best, or a little above it */
            key = (int64_t)(next() % (uint64_t)(centre + 100));
        }
        else { /* the bottom of the key range, or far above the best (a stray level) */
            key = (next() & 1) ? (int64_t)(next() % 64) : centre + 100 + (int64_t)(next() % 50000);
        }
        key = key < 0 ? 0 : key >= RANGE ? RANGE - 1 : key;
        double q = (r >> 20) % 3 == 0 ? 0.0 : (double)((r >> 24) % 50 + 1);
        int want = q != 0 || ref[key] != 0;
        if (lob_side_set(&s, key, q) != want) {
            changed_ok = 0;
        }
        ref[key] = q;
        if ((r >> 30) % 20000 == 0 && s.n > 0) { /* a crossed-book repair drops the best */
            int64_t best = lob_side_best(&s);
            lob_side_pop_best(&s);
            ref[best] = 0;
        }
        if ((r >> 40) % 100000 == 0) { /* a RESET */
            lob_side_clear(&s);
            memset(ref, 0, RANGE * sizeof *ref);
        }
        if (op % 4000 == 0 && !same(&s, ref, keys, qty)) {
            checks_ok = 0;
        }
        double got = 0;
        if (lob_side_get(&s, key, &got) != (ref[key] != 0) || got != ref[key]) {
            checks_ok = 0;
        }
    }
    test_cond("side: set says whether the side changed", ok && changed_ok);
    test_cond("side: equals an array over keys across 4 windows", ok && checks_ok);
    test_cond("side: equals it at the end", ok && same(&s, ref, keys, qty));
    /* a finer grid: every key times 10, the window emptied first */
    size_t n = ok ? s.n : 0;
    int scaled = ok && lob_side_unwindow(&s) == LOB_OK && s.n == n;
    if (scaled) {
        lob_side_scale(&s, 10);
        size_t m = lob_side_top(&s, RANGE, keys, qty), k = 0;
        for (int64_t key = RANGE - 1; key >= 0 && scaled; key--) {
            if (ref[key] != 0) {
                scaled = k < m && keys[k] == 10 * key && qty[k] == ref[key];
                k++;
            }
        }
        scaled = scaled && k == m && m == n;
    }
    test_cond("side: rescaled keys keep every level", scaled);
    lob_side_free(&s);
    test_cond("side: freed", s.n == 0 && s.qty == NULL && s.far.blk == NULL);
    free(ref);
    free(keys);
    free(qty);
}
