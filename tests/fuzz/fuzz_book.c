/* fuzz_book.c -- libFuzzer harness: the C order book against a direct-indexed book.
 *
 * The input is read as options (levels, grid, crossed mode, pruning, decimals) and then
 * 4-byte rows: kind/side, price index, quantity, time step.  Prices are index * stride / 10^d
 * with indices 1..256, so a plain array indexed by index is a complete reference book; the
 * strides spread the levels from one tick apart to further apart than a side's tick window
 * (side.h), so levels land in the window, beyond it, and make it move.  Checks:
 * every output row is well formed (sides strictly ordered, NaN levels have size 0, a valid
 * row is not crossed); with crossed="flag" and no pruning the whole book equals the
 * reference after every batch; feeding the same rows in two batches gives the same rows.
 */
#include "core/book/book.h"
#include "core/schema.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define MAX_ROWS 4096
#define NTICK 257

typedef struct {
    int64_t ts[MAX_ROWS], uid[MAX_ROWS];
    int8_t side[MAX_ROWS];
    double px[MAX_ROWS], qty[MAX_ROWS];
    uint8_t flags[MAX_ROWS];
    size_t n;
} rows;

static void
check_output(lob_table *t, int levels)
{
    for (size_t r = 0; r < t->n; r++) {
        const double *bp = LOB_COL(t, LOB_B_BID_PX, double) + r * (size_t)levels;
        const double *bs = LOB_COL(t, LOB_B_BID_SZ, double) + r * (size_t)levels;
        const double *ap = LOB_COL(t, LOB_B_ASK_PX, double) + r * (size_t)levels;
        const double *as = LOB_COL(t, LOB_B_ASK_SZ, double) + r * (size_t)levels;
        for (int k = 0; k < levels; k++) {
            CHECK(isnan(bp[k]) ? bs[k] == 0 : bs[k] > 0, "bid size matches presence");
            CHECK(isnan(ap[k]) ? as[k] == 0 : as[k] > 0, "ask size matches presence");
            if (k > 0 && !isnan(bp[k])) {
                CHECK(!isnan(bp[k - 1]) && bp[k - 1] > bp[k], "bids strictly descending");
            }
            if (k > 0 && !isnan(ap[k])) {
                CHECK(!isnan(ap[k - 1]) && ap[k - 1] < ap[k], "asks strictly ascending");
            }
        }
        if (LOB_COL(t, LOB_B_VALID, uint8_t)[r] && !isnan(bp[0]) && !isnan(ap[0])) {
            CHECK(bp[0] < ap[0], "a valid row is not crossed");
        }
    }
}

/* Feed rows [from, to); append the output to *acc (a copy of the ts and best prices). */
static int
feed(lob_book *b, const rows *x, size_t from, size_t to, int levels, double *acc, size_t *nacc)
{
    lob_depth_view v = {x->ts + from,  x->side + from,  x->px + from, x->qty + from,
                        x->uid + from, x->flags + from, to - from};
    lob_error err = {0};
    int rc = lob_book_feed(b, &v, &err);
    lob_table *t = lob_book_output(b);
    check_output(t, levels);
    for (size_t r = 0; r < t->n && *nacc + 3 <= 3 * 2 * MAX_ROWS; r++) {
        acc[(*nacc)++] = (double)LOB_COL(t, LOB_B_TS, int64_t)[r];
        acc[(*nacc)++] = LOB_COL(t, LOB_B_BID_PX, double)[r * (size_t)levels];
        acc[(*nacc)++] = LOB_COL(t, LOB_B_ASK_SZ, double)[r * (size_t)levels];
    }
    t->n = 0;
    return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5) {
        return 0;
    }
    lob_book_opts o = {1 + data[0] % 12, (data[1] % 4) * 3, data[2] % 2 ? LOB_CROSSED_REPAIR : 0,
                       (data[2] >> 1) % 2, 0};
    int decimals = data[3] % 4;
    static const int64_t strides[4] = {1, 97, 4099, 65537};
    int64_t stride = strides[(data[3] >> 2) % 4];
    static rows x;
    x.n = 0;
    int64_t ts = 0, uid = 0;
    double bid[NTICK] = {0}, ask[NTICK] = {0}; /* the reference book, by tick */
    for (size_t i = 4; i + 4 <= size && x.n < MAX_ROWS; i += 4) {
        uint8_t kind = data[i], tick = data[i + 1], q = data[i + 2];
        ts += data[i + 3] % 4;
        size_t k = x.n++;
        x.ts[k] = ts;
        x.uid[k] = ++uid;
        x.flags[k] = (kind & 0x40) ? LOB_F_END_OF_MESSAGE : 0;
        if ((kind & 0x30) == 0x30) { /* a gap marker */
            x.side[k] = 0;
            x.px[k] = x.qty[k] = NAN;
            x.flags[k] |= LOB_F_GAP;
            continue;
        }
        int side = (kind & 1) ? 1 : -1;
        x.side[k] = (int8_t)side;
        x.px[k] = (double)((tick + 1) * stride) / pow(10.0, decimals);
        x.qty[k] = (q % 3 == 0) ? 0.0 : (double)(q % 7 + 1);
        if ((kind & 0x30) == 0x20) {
            x.flags[k] |= LOB_F_RESET | LOB_F_SNAPSHOT;
            memset(bid, 0, sizeof bid);
            memset(ask, 0, sizeof ask);
        }
        (side > 0 ? bid : ask)[tick + 1] = x.qty[k];
    }
    if (x.n == 0) {
        return 0;
    }
    x.flags[x.n - 1] |= LOB_F_END_OF_MESSAGE;

    static double one[6 * MAX_ROWS], two[6 * MAX_ROWS];
    size_t n1 = 0, n2 = 0;
    lob_book *a = NULL, *b = NULL;
    lob_error err = {0};
    CHECK(lob_book_new(&a, &o, &err) == 0 && lob_book_new(&b, &o, &err) == 0, "new");
    int rc1 = feed(a, &x, 0, x.n, o.levels, one, &n1);
    size_t cut = data[4] % (x.n + 1);
    int rc2 = feed(b, &x, 0, cut, o.levels, two, &n2);
    rc2 = rc2 ? rc2 : feed(b, &x, cut, x.n, o.levels, two, &n2);
    CHECK(rc1 == rc2, "same result in one or two batches");
    if (rc1 == 0) {
        lob_book_finish(a, &err);
        lob_book_finish(b, &err);
        size_t dummy1 = n1, dummy2 = n2;
        feed(a, &x, 0, 0, o.levels, one, &dummy1);
        feed(b, &x, 0, 0, o.levels, two, &dummy2);
        CHECK(n1 == n2 && memcmp(one, two, n1 * sizeof *one) == 0, "same rows in two batches");
        if (o.crossed == LOB_CROSSED_FLAG && !o.prune_orphans) {
            /* the whole book equals the reference, level by level */
            static double px[NTICK], qty[NTICK];
            for (int s = 1; s >= -1; s -= 2) {
                size_t m = 0;
                CHECK(lob_book_side(a, s, px, qty, &m) == 0, "side");
                size_t want = 0;
                for (int t = 0; t < NTICK; t++) {
                    want += (s > 0 ? bid : ask)[t] > 0;
                }
                CHECK(m == want, "same number of levels as the reference");
                for (size_t k = 0; k < m; k++) {
                    int64_t p = llround(px[k] * pow(10.0, decimals));
                    int64_t t = p / stride;
                    CHECK(p % stride == 0 && t > 0 && t < NTICK && (s > 0 ? bid : ask)[t] == qty[k],
                          "same level");
                }
            }
        }
    }
    lob_book_free(a);
    lob_book_free(b);
    return 0;
}
