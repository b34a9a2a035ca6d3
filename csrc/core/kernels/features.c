/* features.c -- microstructure features of a Level-2 book, one pass over the snapshots.
 *
 * No arithmetic on times here: they are only compared (trade flow) after lob_check_times();
 * the time windows over these features (ofi_10s, vol_60s) are rolling.c's. */
#include "core/kernels/features.h"

#include "core/parallel.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int
needs_top_k(int kind)
{
    return kind == LOB_FT_WMID || kind == LOB_FT_IMBALANCE || kind == LOB_FT_BID_DEPTH ||
           kind == LOB_FT_ASK_DEPTH;
}

static int
check_request(const lob_book_view *b, const int64_t *update_id, const lob_feature *f,
              lob_error *err)
{
    if (f->out == NULL || f->kind < LOB_FT_MID || f->kind > LOB_FT_CHANGED) {
        return lob_error_set(err, LOB_E_ARG, "unknown feature kind %d", f->kind);
    }
    if ((needs_top_k(f->kind) || f->kind == LOB_FT_OFI) && (f->k < 1 || f->k > b->levels)) {
        return lob_error_set(err, LOB_E_ARG, "level %d is outside the book's 1..%lld levels", f->k,
                             (long long)b->levels);
    }
    if (f->kind == LOB_FT_CHANGED && update_id == NULL) {
        return lob_error_set(err, LOB_E_ARG, "update counting needs update_id");
    }
    return LOB_OK;
}

/* `v` where `c` is nonzero, else +0.0: a select on the bits, so that the compiler emits no
 * branch (OFI's price comparisons are coin flips on real books: a branch per level and side
 * mispredicted about every other row). */
static inline double
keep_if(int c, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    u &= (uint64_t)0 - (uint64_t)(c != 0);
    memcpy(&v, &u, sizeof v);
    return v;
}

/* An empty level has a NaN price: for OFI it is a bid at -inf or an ask at +inf, so a level
 * that appears adds its size and one that disappears removes it.  Written as a comparison
 * that is false for NaN, which is exactly one maxsd / minsd (no branch). */
static inline double
bid_key(double p)
{
    return p > -INFINITY ? p : -INFINITY;
}

static inline double
ask_key(double p)
{
    return p < INFINITY ? p : INFINITY;
}

/* Rows are processed in blocks that stay in L1/L2: each feature is one tight loop over
 * the block (vectorisable, no per-row dispatch), yet the snapshots are read from memory
 * once.  Invalid rows are masked by adding NaN, not by branching. */
#define BLOCK 256

typedef struct {
    double now[BLOCK];  /* 0 where the row is valid, NaN where not */
    double pair[BLOCK]; /* 0 where the row and the one before are valid */
    double *ofi;        /* OFI of every level of the block's rows, [row][level]; or NULL */
} masks;

#define CHUNK 256 /* values per fixed-count inner loop (vectorised at -O2) */

static inline double
ofi_of(double pb, double pb0, double qb, double qb0, double pa, double pa0, double qa, double qa0)
{
    pb = bid_key(pb), pb0 = bid_key(pb0), pa = ask_key(pa), pa0 = ask_key(pa0);
    return keep_if(pb >= pb0, qb) - keep_if(pb <= pb0, qb0) - keep_if(pa <= pa0, qa) +
           keep_if(pa >= pa0, qa0);
}

/* OFI of every level of rows [r0, r1) into buf[(r - r0) * L + l] (row 0 has no row before
 * it: left alone).  The book is [row][level], so this is one contiguous pass over the block,
 * each entry against the one L back: vector code, where one level at a time would stride
 * through memory. */
LOB_VECTOR_CLONES static void
ofi_all_levels(const lob_book_view *b, int64_t r0, int64_t r1, double *restrict buf)
{
    const int64_t L = b->levels, k1 = (r1 - r0) * L;
    const double *restrict bp = b->bid_px + r0 * L, *restrict bs = b->bid_sz + r0 * L;
    const double *restrict ap = b->ask_px + r0 * L, *restrict as = b->ask_sz + r0 * L;
    int64_t k = r0 == 0 ? L : 0;
    for (; k + CHUNK <= k1; k += CHUNK) {
        for (int j = 0; j < CHUNK; j++) {
            const int64_t o = k + j, p = o - L;
            buf[o] = ofi_of(bp[o], bp[p], bs[o], bs[p], ap[o], ap[p], as[o], as[p]);
        }
    }
    for (; k < k1; k++) {
        buf[k] = ofi_of(bp[k], bp[k - L], bs[k], bs[k - L], ap[k], ap[k - L], as[k], as[k - L]);
    }
}

/* 1 when every level of rows [r0, r1) is well formed: an empty level is NaN price and 0 size,
 * sizes are >= 0.  For blocks of valid rows only: one contiguous branch-free pass. */
LOB_VECTOR_CLONES static int
levels_ok(const lob_book_view *b, int64_t r0, int64_t r1)
{
    const int64_t L = b->levels, k0 = r0 * L, k1 = r1 * L;
    const double *restrict bp = b->bid_px, *restrict bs = b->bid_sz;
    const double *restrict ap = b->ask_px, *restrict as = b->ask_sz;
    int64_t bad = 0, k = k0;
    for (; k + CHUNK <= k1; k += CHUNK) {
        for (int j = 0; j < CHUNK; j++) {
            const int64_t o = k + j;
            bad |= (int64_t) !(bs[o] >= 0.0) | (int64_t) !(as[o] >= 0.0) |
                   ((int64_t)(bp[o] != bp[o]) & (int64_t)(bs[o] != 0.0)) |
                   ((int64_t)(ap[o] != ap[o]) & (int64_t)(as[o] != 0.0));
        }
    }
    for (; k < k1; k++) {
        bad |= (int64_t) !(bs[k] >= 0.0) | (int64_t) !(as[k] >= 0.0) |
               ((int64_t)(bp[k] != bp[k]) & (int64_t)(bs[k] != 0.0)) |
               ((int64_t)(ap[k] != ap[k]) & (int64_t)(as[k] != 0.0));
    }
    return bad == 0;
}

static int
check_rows(const lob_book_view *b, int64_t r0, int64_t r1, lob_error *err)
{
    int all_valid = 1;
    for (int64_t r = r0; r < r1; r++) {
        all_valid &= b->valid[r] != 0;
    }
    if (all_valid && levels_ok(b, r0, r1)) {
        return LOB_OK;
    }
    const int64_t L = b->levels;
    for (int64_t r = r0; r < r1; r++) {
        if (!b->valid[r]) {
            continue;
        }
        for (int64_t l = 0; l < L; l++) {
            const double bp = b->bid_px[r * L + l], bs = b->bid_sz[r * L + l];
            const double ap = b->ask_px[r * L + l], as = b->ask_sz[r * L + l];
            /* an empty level is NaN price and 0 size; anything else is a broken book */
            if (!(bs >= 0.0) || !(as >= 0.0) || (isnan(bp) && bs != 0.0) ||
                (isnan(ap) && as != 0.0)) {
                return lob_error_set(err, LOB_E_ARG,
                                     "row %lld level %lld holds a NaN price with a size or a "
                                     "negative or NaN size (bid %g x %g, ask %g x %g)",
                                     (long long)r, (long long)l + 1, bp, bs, ap, as);
            }
        }
    }
    return LOB_OK;
}

/* Sizes and price x size over the top 0..kmax levels of rows [r0, r1), per side, laid out
 * [k][row] (plane k at k * BLOCK): level by level across the rows, so that every loop runs
 * over contiguous rows and has no per-row exit to mispredict; each row's sums add the same
 * values in the same order as a loop over its levels would. */
static void
top_k_sums(const lob_book_view *b, int64_t r0, int64_t r1, int kmax, double *bsz, double *asz,
           double *bn, double *an)
{
    const int64_t L = b->levels, nb = r1 - r0;
    for (int64_t i = 0; i < nb; i++) {
        bsz[i] = asz[i] = bn[i] = an[i] = 0.0;
    }
    for (int l = 0; l < kmax; l++) {
        const double *restrict qb = b->bid_sz + r0 * L + l, *restrict qa = b->ask_sz + r0 * L + l;
        const double *restrict pb = b->bid_px + r0 * L + l, *restrict pa = b->ask_px + r0 * L + l;
        const double *restrict sb0 = bsz + l * BLOCK, *restrict sa0 = asz + l * BLOCK;
        const double *restrict nb0 = bn + l * BLOCK, *restrict na0 = an + l * BLOCK;
        double *restrict sb = bsz + (l + 1) * BLOCK, *restrict sa = asz + (l + 1) * BLOCK;
        double *restrict nb1 = bn + (l + 1) * BLOCK, *restrict na1 = an + (l + 1) * BLOCK;
        for (int64_t i = 0; i < nb; i++) {
            const double vb = qb[i * L], va = qa[i * L];
            sb[i] = sb0[i] + vb;
            sa[i] = sa0[i] + va;
            nb1[i] = nb0[i] + keep_if(vb > 0.0, pb[i * L] * vb); /* an empty level adds 0 */
            na1[i] = na0[i] + keep_if(va > 0.0, pa[i * L] * va);
        }
    }
}

/* One feature over rows [r0, r1) of a block; `cum` holds the top-level sums of the block. */
static void
feature_block(const lob_book_view *b, const int64_t *uid, const lob_feature *f, int64_t r0,
              int64_t r1, const double *const cum[4], const masks *m)
{
    const int64_t L = b->levels, nb = r1 - r0;
    const double *bp = b->bid_px, *bs = b->bid_sz, *ap = b->ask_px, *as = b->ask_sz;
    /* top-k sums of row i are at [k * BLOCK + i] */
    const int64_t plane = (int64_t)f->k * BLOCK;
    const double *bsz = cum[0] + plane, *asz = cum[1] + plane, *bn = cum[2] + plane,
                 *an = cum[3] + plane;
    double *out = f->out + r0;
    switch (f->kind) {
    case LOB_FT_MID:
        for (int64_t i = 0; i < nb; i++) {
            out[i] = 0.5 * (bp[(r0 + i) * L] + ap[(r0 + i) * L]) + m->now[i];
        }
        break;
    case LOB_FT_MICROPRICE:
        for (int64_t i = 0; i < nb; i++) {
            const int64_t o = (r0 + i) * L;
            out[i] = (bp[o] * as[o] + ap[o] * bs[o]) / (bs[o] + as[o]) + m->now[i];
        }
        break;
    case LOB_FT_WMID:
        for (int64_t i = 0; i < nb; i++) {
            out[i] = 0.5 * (bn[i] / bsz[i] + an[i] / asz[i]) + m->now[i];
        }
        break;
    case LOB_FT_SPREAD:
        for (int64_t i = 0; i < nb; i++) {
            out[i] = ap[(r0 + i) * L] - bp[(r0 + i) * L] + m->now[i];
        }
        break;
    case LOB_FT_SPREAD_BPS:
        for (int64_t i = 0; i < nb; i++) {
            const double a = ap[(r0 + i) * L], bb = bp[(r0 + i) * L];
            out[i] = (a - bb) / (0.5 * (bb + a)) * 1e4 + m->now[i];
        }
        break;
    case LOB_FT_IMBALANCE:
        for (int64_t i = 0; i < nb; i++) {
            out[i] = (bsz[i] - asz[i]) / (bsz[i] + asz[i]) + m->now[i];
        }
        break;
    case LOB_FT_BID_DEPTH:
        for (int64_t i = 0; i < nb; i++) {
            out[i] = bsz[i] + m->now[i];
        }
        break;
    case LOB_FT_ASK_DEPTH:
        for (int64_t i = 0; i < nb; i++) {
            out[i] = asz[i] + m->now[i];
        }
        break;
    case LOB_FT_OFI: {
        const int64_t l = f->k - 1;
        if (m->ofi != NULL) { /* every level's OFI is in the block buffer */
            for (int64_t i = r0 == 0; i < nb; i++) {
                out[i] = m->ofi[i * L + l] + m->pair[i];
            }
            break;
        }
        for (int64_t i = r0 == 0; i < nb; i++) {
            const int64_t o = (r0 + i) * L + l, p = o - L;
            out[i] = ofi_of(bp[o], bp[p], bs[o], bs[p], ap[o], ap[p], as[o], as[p]) + m->pair[i];
        }
        break;
    }
    case LOB_FT_RET:
        for (int64_t i = r0 == 0; i < nb; i++) {
            const int64_t o = (r0 + i) * L, p = o - L;
            out[i] = log((bp[o] + ap[o]) / (bp[p] + ap[p])) + m->pair[i];
        }
        break;
    case LOB_FT_CHANGED:
        for (int64_t i = r0 == 0; i < nb; i++) {
            const double first = isnan(m->pair[i]) ? 1.0 : 0.0; /* first row after a gap */
            out[i] = (uid[r0 + i] != uid[r0 + i - 1] ? 1.0 : first) + m->now[i];
        }
        break;
    default: break;
    }
    if (r0 == 0 && nb > 0 && (f->kind == LOB_FT_OFI || f->kind == LOB_FT_RET)) {
        out[0] = NAN; /* nothing before the first row */
    }
    if (r0 == 0 && nb > 0 && f->kind == LOB_FT_CHANGED) {
        out[0] = 1.0 + m->now[0];
    }
}

/* Rows per task for `threads` threads: a few ranges per thread, LOB_PARALLEL_MIN_ROWS at least,
 * whole blocks. */
static int64_t
range_rows(int64_t n, int threads)
{
    const int64_t ranges = threads > 1 ? 4 * (int64_t)threads : 1;
    int64_t rows = (n + ranges - 1) / ranges;
    rows = rows < LOB_PARALLEL_MIN_ROWS ? LOB_PARALLEL_MIN_ROWS : rows;
    return (rows + BLOCK - 1) / BLOCK * BLOCK;
}

static size_t
range_count(int64_t n, int64_t rows)
{
    return n > 0 ? (size_t)((n + rows - 1) / rows) : 1;
}

/* One call's work, split into row ranges of whole blocks (one task each). */
typedef struct {
    const lob_book_view *b;
    const int64_t *uid;
    const lob_feature *f;
    int nf, kmax, nofi;
    int64_t rows; /* rows per task, a multiple of BLOCK */
} feature_job;

/* Every requested feature of rows [i * rows, (i + 1) * rows): rows only look back at the row
 * before them, which is input, so the ranges are independent. */
static int
feature_rows(void *arg, size_t i, lob_error *err)
{
    const feature_job *j = arg;
    const lob_book_view *b = j->b;
    const int64_t begin = (int64_t)i * j->rows;
    const int64_t end = b->n - begin > j->rows ? begin + j->rows : b->n;
    /* per block: sizes and price x size summed over the top 0..kmax levels, per side,
     * laid out [quantity][k][row] (see top_k_sums()) */
    const size_t plane = (size_t)(j->kmax + 1) * BLOCK;
    double *scratch = malloc(sizeof(double) * 4 * plane + sizeof(masks));
    if (scratch == NULL) {
        return lob_error_set(err, LOB_E_NOMEM, "out of memory");
    }
    const double *const cum[4] = {scratch, scratch + plane, scratch + 2 * plane,
                                  scratch + 3 * plane};
    double *bsz = scratch, *asz = scratch + plane, *bn = scratch + 2 * plane,
           *an = scratch + 3 * plane;
    masks *m = (masks *)(scratch + 4 * plane);
    const int64_t L = b->levels;
    /* several OFI levels: all of them in one pass per block (one level: strided, as needed) */
    m->ofi = NULL;
    if (j->nofi > 1 && (m->ofi = malloc(sizeof(double) * BLOCK * (size_t)L)) == NULL) {
        free(scratch);
        return lob_error_set(err, LOB_E_NOMEM, "out of memory");
    }
    int rc = LOB_OK;
    for (int64_t r0 = begin; r0 < end; r0 += BLOCK) {
        const int64_t r1 = r0 + BLOCK < end ? r0 + BLOCK : end;
        /* LOB_POLL_ROWS is a multiple of BLOCK: a stop check every LOB_POLL_ROWS rows */
        if ((LOB_POLL_DUE(r0) && (rc = lob_poll_stop(err)) < 0) ||
            (rc = check_rows(b, r0, r1, err)) < 0) {
            break;
        }
        for (int64_t r = r0; r < r1; r++) {
            m->now[r - r0] = b->valid[r] ? 0.0 : NAN;
            m->pair[r - r0] = b->valid[r] && r > 0 && b->valid[r - 1] ? 0.0 : NAN;
        }
        if (j->kmax > 0) {
            top_k_sums(b, r0, r1, j->kmax, bsz, asz, bn, an);
        }
        if (m->ofi != NULL) {
            ofi_all_levels(b, r0, r1, m->ofi);
        }
        for (int k = 0; k < j->nf; k++) {
            feature_block(b, j->uid, &j->f[k], r0, r1, cum, m);
        }
    }
    free(m->ofi);
    free(scratch);
    return rc;
}

int
lob_features(const lob_book_view *b, const int64_t *update_id, const lob_feature *f, int nf,
             int threads, lob_error *err)
{
    if (b->n < 0 || b->levels < 1) {
        return lob_error_set(err, LOB_E_ARG, "a book needs at least one level");
    }
    LOB_FORWARD_IF_ERROR(lob_check_times(b->ts, b->n, 1, "ts", err));
    feature_job job = {.b = b, .uid = update_id, .f = f, .nf = nf};
    for (int j = 0; j < nf; j++) {
        LOB_FORWARD_IF_ERROR(check_request(b, update_id, &f[j], err));
        if (needs_top_k(f[j].kind) && f[j].k > job.kmax) {
            job.kmax = f[j].k;
        }
        job.nofi += f[j].kind == LOB_FT_OFI;
    }
    /* a few ranges per thread, so that a thread slowed by another process does not hold up
     * the call */
    job.rows = range_rows(b->n, threads);
    return lob_run_tasks(range_count(b->n, job.rows), threads, feature_rows, &job, err);
}

typedef struct {
    const int64_t *ts, *trade_ts;
    const uint8_t *valid;
    const double *qty;
    const int8_t *side;
    int64_t n, m, rows; /* rows per task */
    double *buy, *sell, *signed_vol, *count;
} flow_job;

/* Trade flow of rows [i * rows, (i + 1) * rows): the trades up to the range's first row are
 * those at or before the row before it, found by bisection -- where the loop over the rows
 * before would have left off. */
static int
flow_rows(void *arg, size_t i, lob_error *err)
{
    const flow_job *j = arg;
    const int64_t begin = (int64_t)i * j->rows;
    const int64_t end = j->n - begin > j->rows ? begin + j->rows : j->n;
    int64_t t = 0;
    if (begin > 0) {
        for (int64_t hi = j->m; t < hi;) {
            int64_t mid = t + (hi - t) / 2;
            if (j->trade_ts[mid] <= j->ts[begin - 1]) {
                t = mid + 1;
            }
            else {
                hi = mid;
            }
        }
    }
    int64_t next_poll = begin + t; /* a stop check every LOB_POLL_ROWS rows and trades */
    for (int64_t r = begin; r < end; r++) {
        if (r + t >= next_poll) {
            LOB_FORWARD_IF_ERROR(lob_poll_stop(err));
            next_poll = r + t + LOB_POLL_ROWS;
        }
        double vb = 0.0, vs = 0.0, c = 0.0;
        for (; t < j->m && j->trade_ts[t] <= j->ts[r]; t++) {
            /* q * 1.0 or q * 0.0, no branch (lob_unit): bit for bit the select, as q is
             * finite and >= 0 (checked) and a sum from +0.0 of such values is never -0.0 */
            vb += j->qty[t] * lob_unit[j->side[t] > 0];
            vs += j->qty[t] * lob_unit[j->side[t] < 0];
            c += 1.0;
        }
        if (r == 0 || !j->valid[r]) {
            vb = vs = c = NAN; /* no interval before the first row; nothing on an unknown book */
        }
        if (j->buy != NULL) {
            j->buy[r] = vb;
        }
        if (j->sell != NULL) {
            j->sell[r] = vs;
        }
        if (j->signed_vol != NULL) {
            j->signed_vol[r] = vb - vs;
        }
        if (j->count != NULL) {
            j->count[r] = c;
        }
    }
    return LOB_OK;
}

int
lob_trade_flow(const int64_t *ts, const uint8_t *valid, int64_t n, const int64_t *trade_ts,
               const double *qty, const int8_t *side, int64_t m, double *buy, double *sell,
               double *signed_vol, double *count, int threads, lob_error *err)
{
    LOB_FORWARD_IF_ERROR(lob_check_times(ts, n, 1, "book ts", err));
    LOB_FORWARD_IF_ERROR(lob_check_times(trade_ts, m, 1, "trade ts", err));
    for (int64_t t = 0; t < m; t++) {
        if (!(qty[t] >= 0.0) || isinf(qty[t]) || side[t] < -1 || side[t] > 1) {
            return lob_error_set(err, LOB_E_ARG,
                                 "trade row %lld has qty %g and side %d: qty must be finite and "
                                 ">= 0, side -1, 0 or +1",
                                 (long long)t, qty[t], side[t]);
        }
    }
    flow_job job = {ts,  trade_ts, valid,      qty,  side, n, m, range_rows(n, threads),
                    buy, sell,     signed_vol, count};
    return lob_run_tasks(range_count(n, job.rows), threads, flow_rows, &job, err);
}
