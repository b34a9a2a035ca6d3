/* schema.c -- column layouts of the containers. */
#include "core/schema.h"

#include <string.h>

const lob_column lob_depth_schema[LOB_D_NCOL] = {
    {"ts", LOB_I64, 8, 1},    {"local_ts", LOB_I64, 8, 1}, {"side", LOB_I8, 1, 1},
    {"price", LOB_F64, 8, 1}, {"qty", LOB_F64, 8, 1},      {"update_id", LOB_I64, 8, 1},
    {"flags", LOB_U8, 1, 1},
};

const lob_column lob_trades_schema[LOB_T_NCOL] = {
    {"ts", LOB_I64, 8, 1},  {"local_ts", LOB_I64, 8, 1}, {"price", LOB_F64, 8, 1},
    {"qty", LOB_F64, 8, 1}, {"side", LOB_I8, 1, 1},      {"trade_id", LOB_I64, 8, 1},
};

const lob_column lob_quotes_schema[LOB_Q_NCOL] = {
    {"ts", LOB_I64, 8, 1},      {"local_ts", LOB_I64, 8, 1}, {"update_id", LOB_I64, 8, 1},
    {"bid_px", LOB_F64, 8, 1},  {"bid_qty", LOB_F64, 8, 1},  {"ask_px", LOB_F64, 8, 1},
    {"ask_qty", LOB_F64, 8, 1},
};

const lob_column lob_book_schema[LOB_B_NCOL] = {
    {"ts", LOB_I64, 8, 1, 0},     {"update_id", LOB_I64, 8, 1, 0}, {"bid_px", LOB_F64, 8, 1, 1},
    {"bid_sz", LOB_F64, 8, 1, 1}, {"ask_px", LOB_F64, 8, 1, 1},    {"ask_sz", LOB_F64, 8, 1, 1},
    {"valid", LOB_BOOL, 1, 1, 0},
};

void
lob_book_schema_levels(lob_column *dst, int levels)
{
    memcpy(dst, lob_book_schema, sizeof lob_book_schema);
    for (int i = LOB_B_BID_PX; i <= LOB_B_ASK_SZ; i++) {
        dst[i].width = (uint16_t)levels;
    }
}
