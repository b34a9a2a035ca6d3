/* features.c -- microstructure features of a Level-2 book, one pass over the snapshots. */
#include "features.h"
#include "rolling.h"

#include <math.h>
#include <stdlib.h>

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

/* An empty level has a NaN price: for OFI it is a bid at -inf or an ask at +inf, so a level
 * that appears adds its size and one that disappears removes it. */
static inline double
bid_key(double p)
{
    return isnan(p) ? -INFINITY : p;
}

static inline double
ask_key(double p)
{
    return isnan(p) ? INFINITY : p;
}

static inline double
ofi_at(const lob_book_view *b, int64_t r, int64_t l)
{
    const int64_t now = r * b->levels + l, before = now - b->levels;
    double pb = bid_key(b->bid_px[now]), pb0 = bid_key(b->bid_px[before]);
    double pa = ask_key(b->ask_px[now]), pa0 = ask_key(b->ask_px[before]);
    double e = 0.0;
    e += pb >= pb0 ? b->bid_sz[now] : 0.0;
    e -= pb <= pb0 ? b->bid_sz[before] : 0.0;
    e -= pa <= pa0 ? b->ask_sz[now] : 0.0;
    e += pa >= pa0 ? b->ask_sz[before] : 0.0;
    return e;
}

static inline double
mid_at(const lob_book_view *b, int64_t r)
{
    return 0.5 * (b->bid_px[r * b->levels] + b->ask_px[r * b->levels]);
}

int
lob_features(const lob_book_view *b, const int64_t *update_id, const lob_feature *f, int nf,
             lob_error *err)
{
    if (b->n < 0 || b->levels < 1) {
        return lob_error_set(err, LOB_E_ARG, "a book needs at least one level");
    }
    LOB_FORWARD_IF_ERROR(lob_check_sorted(b->ts, b->n, "ts", err));
    int kmax = 0;
    for (int j = 0; j < nf; j++) {
        LOB_FORWARD_IF_ERROR(check_request(b, update_id, &f[j], err));
        if (needs_top_k(f[j].kind) && f[j].k > kmax) {
            kmax = f[j].k;
        }
    }
    /* running sums over the top levels of one row: sizes and price x size per side */
    double *cum = malloc(sizeof(double) * 4 * (size_t)(kmax + 1));
    if (cum == NULL) {
        return lob_error_set(err, LOB_E_NOMEM, "out of memory");
    }
    double *bsz = cum, *asz = cum + kmax + 1, *bnot = asz + kmax + 1, *anot = bnot + kmax + 1;
    bsz[0] = asz[0] = bnot[0] = anot[0] = 0.0;
    const int64_t L = b->levels;
    for (int64_t r = 0; r < b->n; r++) {
        const int ok = b->valid[r] != 0, prev_ok = ok && r > 0 && b->valid[r - 1] != 0;
        const double *bp = b->bid_px + r * L, *bs = b->bid_sz + r * L;
        const double *ap = b->ask_px + r * L, *as = b->ask_sz + r * L;
        if (ok) {
            for (int64_t l = 0; l < L; l++) {
                /* an empty level is NaN price and 0 size; anything else is a broken book */
                if (!(bs[l] >= 0.0) || !(as[l] >= 0.0) || (isnan(bp[l]) && bs[l] != 0.0) ||
                    (isnan(ap[l]) && as[l] != 0.0)) {
                    free(cum);
                    return lob_error_set(err, LOB_E_ARG,
                                         "row %lld level %lld holds a NaN price with a size or a "
                                         "negative or NaN size (bid %g x %g, ask %g x %g)",
                                         (long long)r, (long long)l + 1, bp[l], bs[l], ap[l],
                                         as[l]);
                }
            }
            for (int l = 0; l < kmax; l++) {
                bsz[l + 1] = bsz[l] + bs[l];
                asz[l + 1] = asz[l] + as[l];
                bnot[l + 1] = bnot[l] + (bs[l] > 0.0 ? bp[l] * bs[l] : 0.0);
                anot[l + 1] = anot[l] + (as[l] > 0.0 ? ap[l] * as[l] : 0.0);
            }
        }
        for (int j = 0; j < nf; j++) {
            const int k = f[j].k;
            double v = NAN;
            switch (ok ? f[j].kind : -1) {
            case LOB_FT_MID: v = 0.5 * (bp[0] + ap[0]); break;
            case LOB_FT_MICROPRICE: v = (bp[0] * as[0] + ap[0] * bs[0]) / (bs[0] + as[0]); break;
            case LOB_FT_WMID: v = 0.5 * (bnot[k] / bsz[k] + anot[k] / asz[k]); break;
            case LOB_FT_SPREAD: v = ap[0] - bp[0]; break;
            case LOB_FT_SPREAD_BPS: v = (ap[0] - bp[0]) / (0.5 * (bp[0] + ap[0])) * 1e4; break;
            case LOB_FT_IMBALANCE: v = (bsz[k] - asz[k]) / (bsz[k] + asz[k]); break;
            case LOB_FT_BID_DEPTH: v = bsz[k]; break;
            case LOB_FT_ASK_DEPTH: v = asz[k]; break;
            case LOB_FT_OFI: v = prev_ok ? ofi_at(b, r, k - 1) : NAN; break;
            case LOB_FT_RET: v = prev_ok ? log(mid_at(b, r) / mid_at(b, r - 1)) : NAN; break;
            case LOB_FT_CHANGED: v = !prev_ok || update_id[r] != update_id[r - 1]; break;
            default: break; /* invalid row */
            }
            f[j].out[r] = v;
        }
    }
    free(cum);
    return LOB_OK;
}

int
lob_trade_flow(const int64_t *ts, const uint8_t *valid, int64_t n, const int64_t *trade_ts,
               const double *qty, const int8_t *side, int64_t m, double *buy, double *sell,
               double *signed_vol, double *count, lob_error *err)
{
    LOB_FORWARD_IF_ERROR(lob_check_sorted(ts, n, "book ts", err));
    LOB_FORWARD_IF_ERROR(lob_check_sorted(trade_ts, m, "trade ts", err));
    for (int64_t t = 0; t < m; t++) {
        if (!(qty[t] >= 0.0) || isinf(qty[t]) || side[t] < -1 || side[t] > 1) {
            return lob_error_set(err, LOB_E_ARG,
                                 "trade row %lld has qty %g and side %d: qty must be finite and "
                                 ">= 0, side -1, 0 or +1",
                                 (long long)t, qty[t], side[t]);
        }
    }
    int64_t t = 0;
    for (int64_t i = 0; i < n; i++) {
        double vb = 0.0, vs = 0.0, c = 0.0;
        for (; t < m && trade_ts[t] <= ts[i]; t++) {
            vb += side[t] > 0 ? qty[t] : 0.0;
            vs += side[t] < 0 ? qty[t] : 0.0;
            c += 1.0;
        }
        if (i == 0 || !valid[i]) {
            vb = vs = c = NAN; /* no interval before the first row; nothing on an unknown book */
        }
        if (buy != NULL) {
            buy[i] = vb;
        }
        if (sell != NULL) {
            sell[i] = vs;
        }
        if (signed_vol != NULL) {
            signed_vol[i] = vb - vs;
        }
        if (count != NULL) {
            count[i] = c;
        }
    }
    return LOB_OK;
}
