/* sequence.h -- Binance depth-stream continuity, shared by the reader and the collector.
 *
 * Spot chains diffs by update id (U == previous u + 1); USD-M by the previous-final id each
 * event carries (pu == previous u), since its U may skip ids that never reach the stream.
 */
#ifndef LOB_SEQUENCE_H
#define LOB_SEQUENCE_H

#include <stdint.h>

enum { LOB_SEQ_OK, LOB_SEQ_STALE, LOB_SEQ_GAP };

/*! lob_seq_check() : how a diff [U, u] (pu on USD-M) follows the last applied id `last_u`:
 *  LOB_SEQ_OK, LOB_SEQ_STALE (already applied) or LOB_SEQ_GAP (events were missed). */
static inline int
lob_seq_check(int usdm, int64_t last_u, int64_t U, int64_t u, int64_t pu)
{
    if (u <= last_u) {
        return LOB_SEQ_STALE;
    }
    if (usdm ? pu != last_u : U > last_u + 1) {
        return LOB_SEQ_GAP;
    }
    return LOB_SEQ_OK;
}

/*! lob_seq_covered() : a snapshot at `L` already contains the diff ending at `u` (spot drops
 *  u <= L; USD-M drops u < L, its bridging rule being U <= L <= u). */
static inline int
lob_seq_covered(int usdm, int64_t L, int64_t u)
{
    return usdm ? u < L : u <= L;
}

/*! lob_seq_bridges() : the first diff not covered by a snapshot at `L` continues it. */
static inline int
lob_seq_bridges(int usdm, int64_t L, int64_t U, int64_t u, int64_t pu)
{
    return usdm ? (U <= L && u >= L) || pu == L : U <= L + 1;
}

#endif /* LOB_SEQUENCE_H */
