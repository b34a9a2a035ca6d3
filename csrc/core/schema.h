/* schema.h -- the column layouts of lobfast's containers, defined once for every reader.
 *
 * The Python containers (DepthEvents, Trades, Quotes) check at import that these names and
 * types match theirs, so a drift between C and Python fails loudly.
 */
#ifndef LOB_SCHEMA_H
#define LOB_SCHEMA_H

#include "core/table.h"

/* DepthEvents.flags bits (lobfast.Flags mirrors them). */
enum {
    LOB_F_SNAPSHOT = 1,       /* row belongs to a snapshot */
    LOB_F_RESET = 2,          /* clear the book before this row */
    LOB_F_GAP = 4,            /* sequence break before this row: book unknown until RESET */
    LOB_F_END_OF_MESSAGE = 8, /* the book is consistent after this row */
};

/* DepthEvents: one row per price-level change.  A row with side 0 marks an event that
 * changes no level (a sequence gap, or an empty snapshot); its price and qty are NaN. */
enum {
    LOB_D_TS,
    LOB_D_LOCAL_TS,
    LOB_D_SIDE,
    LOB_D_PRICE,
    LOB_D_QTY,
    LOB_D_UPDATE_ID,
    LOB_D_FLAGS,
    LOB_D_NCOL
};
extern const lob_column lob_depth_schema[LOB_D_NCOL];

/* Trades (and aggregated trades): side +1 taker buy, -1 taker sell, 0 unknown. */
enum { LOB_T_TS, LOB_T_LOCAL_TS, LOB_T_PRICE, LOB_T_QTY, LOB_T_SIDE, LOB_T_TRADE_ID, LOB_T_NCOL };
extern const lob_column lob_trades_schema[LOB_T_NCOL];

/* Quotes: the exchange's best bid and offer.  update_id is -1 where the source has none. */
enum {
    LOB_Q_TS,
    LOB_Q_LOCAL_TS,
    LOB_Q_UPDATE_ID,
    LOB_Q_BID_PX,
    LOB_Q_BID_QTY,
    LOB_Q_ASK_PX,
    LOB_Q_ASK_QTY,
    LOB_Q_NCOL
};
extern const lob_column lob_quotes_schema[LOB_Q_NCOL];

/* BookSnapshots: ts, update_id, four (N, L) level columns (set `width` to L in a copy of
 * this schema) and valid. */
enum {
    LOB_B_TS,
    LOB_B_UPDATE_ID,
    LOB_B_BID_PX,
    LOB_B_BID_SZ,
    LOB_B_ASK_PX,
    LOB_B_ASK_SZ,
    LOB_B_VALID,
    LOB_B_NCOL
};
extern const lob_column lob_book_schema[LOB_B_NCOL];

/*! lob_book_schema_levels() : a copy of lob_book_schema whose level columns hold L levels. */
void lob_book_schema_levels(lob_column *dst, int levels);

/*! lob_depth_push() : append one depth row (reserve first).  No checks: hot path. */
static inline void
lob_depth_set(lob_table *t, size_t i, int64_t ts, int64_t local_ts, int side, double price,
              double qty, int64_t update_id, unsigned flags)
{
    LOB_COL(t, LOB_D_TS, int64_t)[i] = ts;
    LOB_COL(t, LOB_D_LOCAL_TS, int64_t)[i] = local_ts;
    LOB_COL(t, LOB_D_SIDE, int8_t)[i] = (int8_t)side;
    LOB_COL(t, LOB_D_PRICE, double)[i] = price;
    LOB_COL(t, LOB_D_QTY, double)[i] = qty;
    LOB_COL(t, LOB_D_UPDATE_ID, int64_t)[i] = update_id;
    LOB_COL(t, LOB_D_FLAGS, uint8_t)[i] = (uint8_t)flags;
}

#endif /* LOB_SCHEMA_H */
