/* vision.c -- data.binance.vision CSV (trades, aggTrades, UM bookTicker) -> trades or quotes.
 *
 * Binance's public archive has five layouts, told apart by the header where there is one
 * and otherwise by the row itself:
 *   spot trades      id,price,qty,quoteQty,time,isBuyerMaker,isBestMatch          (7, no header)
 *   spot aggTrades   aggId,price,qty,firstId,lastId,time,isBuyerMaker,isBestMatch (8, no header)
 *   UM trades        id,price,qty,quote_qty,time,is_buyer_maker                   (6)
 *   UM aggTrades     agg_trade_id,price,quantity,first_trade_id,last_trade_id,
 *                    transact_time,is_buyer_maker                                 (7)
 *   UM bookTicker    update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,
 *                    transaction_time,event_time                                  (7)
 * Futures files gained headers in 2022 but older ones were not regenerated, so a header is
 * optional everywhere.  Headers are compared case-insensitively with '_' and ' ' ignored,
 * so the spot layouts are recognised should they ever get headers.  A headerless 7-column
 * row is spot trades when its 6th cell is a boolean, UM aggTrades when its 7th is, and UM
 * bookTicker otherwise.  The first line fixes the layout for the reader: files of another
 * layout are refused rather than misread.
 *
 * Times are ms (futures, spot before 2025) or us (spot from 2025), told apart by magnitude.
 * Trades: ts = local_ts = the trade time (the archive has no receive time); side is the
 * taker's, -1 when the buyer was the maker.  bookTicker: ts = transaction_time,
 * local_ts = event_time (the closest thing to a publication time the archive has).
 */
#include "core/formats/cells.h"
#include "core/formats/text.h"
#include "core/io/reader.h"
#include "core/schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { T_TRADES, T_QUOTES, T_N };
static const char *const table_names[T_N] = {"trades", "quotes"};

enum { L_NONE = -1, L_SPOT_TRADES, L_SPOT_AGG, L_UM_TRADES, L_UM_AGG, L_UM_BOOK, L_N };
enum { K_TRADES, K_AGG, K_BOOK };

#define MAX_COLS 8

typedef struct {
    const char *data_type;             /* stat: trades, aggTrades, bookTicker */
    const char *market;                /* stat: spot, usdm */
    const char *title;                 /* for messages */
    int kind;                          /* K_* */
    int ncol;                          /* cells per row */
    const char *header;                /* lower case, '_' and ' ' removed */
    const char *const names[MAX_COLS]; /* column names as Binance documents them */
} layout;

static const layout layouts[L_N] = {
    {"trades",
     "spot",
     "spot trades",
     K_TRADES,
     7,
     "id,price,qty,quoteqty,time,isbuyermaker,isbestmatch",
     {"id", "price", "qty", "quoteQty", "time", "isBuyerMaker", "isBestMatch"}},
    {"aggTrades",
     "spot",
     "spot aggTrades",
     K_AGG,
     8,
     "aggtradeid,price,quantity,firsttradeid,lasttradeid,transacttime,isbuyermaker,isbestmatch",
     {"aggId", "price", "qty", "firstId", "lastId", "time", "isBuyerMaker", "isBestMatch"}},
    {"trades",
     "usdm",
     "UM trades",
     K_TRADES,
     6,
     "id,price,qty,quoteqty,time,isbuyermaker",
     {"id", "price", "qty", "quote_qty", "time", "is_buyer_maker"}},
    {"aggTrades",
     "usdm",
     "UM aggTrades",
     K_AGG,
     7,
     "aggtradeid,price,quantity,firsttradeid,lasttradeid,transacttime,isbuyermaker",
     {"agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id", "transact_time",
      "is_buyer_maker"}},
    {"bookTicker",
     "usdm",
     "UM bookTicker",
     K_BOOK,
     7,
     "updateid,bestbidprice,bestbidqty,bestaskprice,bestaskqty,transactiontime,eventtime",
     {"update_id", "best_bid_price", "best_bid_qty", "best_ask_price", "best_ask_qty",
      "transaction_time", "event_time"}},
};

typedef struct {
    lob_table out[T_N];     /* trades, quotes */
    int layout;             /* L_*, fixed by the first good line; L_NONE before */
    int header_rejected;    /* the latest header was refused: rows are not read */
    char header_error[256]; /* why the latest header was refused, "" once one is accepted */
    /* counters */
    int64_t n_headers, n_rows, n_blank;
} lob_vision;

/* ------------------------------------------------------------------ cells */

/* True/False (spot) or true/false (futures); any case. */
static int
is_bool(const lob_cell *c)
{
    return lob_cell_is_nocase(c, "true") || lob_cell_is_nocase(c, "false");
}

static int
cell_int(int lay, const lob_cell *c, int col, int64_t *out, lob_error *err)
{
    return lob_cell_int64(&c[col], col, layouts[lay].names[col], out, err);
}

/* A time in s, ms or us (by magnitude) to ns, within 1970..2262. */
static int
cell_time(int lay, const lob_cell *c, int col, int64_t *out, lob_error *err)
{
    return lob_cell_time(&c[col], col, layouts[lay].names[col], 0, LOB_TIME_INT, out, err);
}

/* What a value must be: trade price > 0, quantity > 0 and quoteQty >= 0; bookTicker prices
 * > 0 and sizes >= 0.  Decimal text that overflows to infinity or underflows to 0 is
 * refused by the parser. */
typedef struct {
    int rule;         /* LOB_NUM_* */
    const char *what; /* for messages */
} value_rule;

static const value_rule PRICE = {LOB_NUM_POSITIVE, "a price"};
static const value_rule SIZE = {LOB_NUM_NONNEG, "a value"};
static const value_rule QTY = {LOB_NUM_POSITIVE, "a quantity"};

static int
cell_value(int lay, const lob_cell *c, int col, value_rule v, double *out, lob_error *err)
{
    return lob_cell_number(&c[col], col, layouts[lay].names[col], v.rule, v.what, out, err);
}

static int
cell_flag(int lay, const lob_cell *c, int col, int *out, lob_error *err)
{
    return lob_cell_bool(&c[col], col, layouts[lay].names[col], LOB_BOOL_WORDS, out, err);
}

/* ------------------------------------------------------------------ header */

static int
header(lob_vision *v, const char *s, size_t n, lob_error *err)
{
    char norm[160];
    size_t k = 0;
    for (size_t i = 0; i < n && k < sizeof norm - 1; i++) {
        char ch = s[i];
        if (ch != '_' && ch != ' ') {
            norm[k++] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
        }
    }
    norm[k] = '\0';
    int lay = L_NONE;
    for (int i = 0; i < L_N; i++) {
        /* length first: a NUL inside the line must not end the comparison early */
        if (k == strlen(layouts[i].header) && memcmp(norm, layouts[i].header, k) == 0) {
            lay = i;
        }
    }
    /* Rows after a header of another layout belong to it, so they are refused with it.  An
     * unknown "header" inside data of a known layout is more likely one damaged row (any
     * line starting with a letter looks like a header): refuse that line only. */
    v->header_rejected |= lay != L_NONE || v->layout == L_NONE;
    char show[LOB_SHOW_BUF];
    if (lay == L_NONE) {
        return lob_error_set(
            err, LOB_E_FORMAT,
            "header not recognised: expected a data.binance.vision trades, aggTrades or "
            "bookTicker header such as 'id,price,qty,quote_qty,time,is_buyer_maker', "
            "found '%s'",
            lob_show(show, sizeof show, s, n, LOB_SHOW));
    }
    if (v->layout != L_NONE && v->layout != lay) {
        return lob_error_set(
            err, LOB_E_FORMAT,
            "the header is for %s but earlier data was %s: read each data type in its "
            "own call",
            layouts[lay].title, layouts[v->layout].title);
    }
    v->layout = lay;
    v->header_rejected = 0;
    v->n_headers++;
    return LOB_OK;
}

/* The layout of a headerless row, from its shape. */
static int
guess_layout(const lob_cell *c, int nc)
{
    switch (nc) {
    case 6: return L_UM_TRADES;
    case 8: return L_SPOT_AGG;
    case 7:
        if (is_bool(&c[5])) {
            return L_SPOT_TRADES;
        }
        return is_bool(&c[6]) ? L_UM_AGG : L_UM_BOOK;
    default: return L_NONE;
    }
}

/* ------------------------------------------------------------------ rows */

static int
trade_row(lob_vision *v, int lay, const lob_cell *c, lob_error *err)
{
    int agg = layouts[lay].kind == K_AGG;
    int ncol = layouts[lay].ncol;
    int64_t id, ts, first, last;
    double px, qty, quote;
    int maker, best;
    int tcol = agg ? 5 : 4; /* the time column; aggTrades have first/last ids before it */
    LOB_FORWARD_IF_ERROR(cell_int(lay, c, 0, &id, err));
    LOB_FORWARD_IF_ERROR(cell_value(lay, c, 1, PRICE, &px, err));
    LOB_FORWARD_IF_ERROR(cell_value(lay, c, 2, QTY, &qty, err));
    if (agg) {
        LOB_FORWARD_IF_ERROR(cell_int(lay, c, 3, &first, err));
        LOB_FORWARD_IF_ERROR(cell_int(lay, c, 4, &last, err));
    }
    else {
        LOB_FORWARD_IF_ERROR(cell_value(lay, c, 3, SIZE, &quote, err));
    }
    LOB_FORWARD_IF_ERROR(cell_time(lay, c, tcol, &ts, err));
    LOB_FORWARD_IF_ERROR(cell_flag(lay, c, tcol + 1, &maker, err));
    if (tcol + 2 < ncol) {
        LOB_FORWARD_IF_ERROR(cell_flag(lay, c, tcol + 2, &best, err));
    }
    lob_table *t = &v->out[T_TRADES];
    LOB_FORWARD_IF_ERROR(lob_table_room(t, 1));
    size_t i = t->n++;
    LOB_COL(t, LOB_T_TS, int64_t)[i] = ts;
    LOB_COL(t, LOB_T_LOCAL_TS, int64_t)[i] = ts;
    LOB_COL(t, LOB_T_PRICE, double)[i] = px;
    LOB_COL(t, LOB_T_QTY, double)[i] = qty;
    LOB_COL(t, LOB_T_SIDE, int8_t)[i] = maker ? -1 : 1; /* maker buyer => taker sold */
    LOB_COL(t, LOB_T_TRADE_ID, int64_t)[i] = id;
    return LOB_OK;
}

static int
book_row(lob_vision *v, const lob_cell *c, lob_error *err)
{
    int64_t uid, tt, et;
    double x[4];
    LOB_FORWARD_IF_ERROR(cell_int(L_UM_BOOK, c, 0, &uid, err));
    for (int i = 0; i < 4; i++) { /* bid price, bid qty, ask price, ask qty */
        LOB_FORWARD_IF_ERROR(cell_value(L_UM_BOOK, c, 1 + i, i % 2 ? SIZE : PRICE, &x[i], err));
    }
    LOB_FORWARD_IF_ERROR(cell_time(L_UM_BOOK, c, 5, &tt, err));
    LOB_FORWARD_IF_ERROR(cell_time(L_UM_BOOK, c, 6, &et, err));
    lob_table *t = &v->out[T_QUOTES];
    LOB_FORWARD_IF_ERROR(lob_table_room(t, 1));
    size_t i = t->n++;
    LOB_COL(t, LOB_Q_TS, int64_t)[i] = tt;
    LOB_COL(t, LOB_Q_LOCAL_TS, int64_t)[i] = et;
    LOB_COL(t, LOB_Q_UPDATE_ID, int64_t)[i] = uid;
    LOB_COL(t, LOB_Q_BID_PX, double)[i] = x[0];
    LOB_COL(t, LOB_Q_BID_QTY, double)[i] = x[1];
    LOB_COL(t, LOB_Q_ASK_PX, double)[i] = x[2];
    LOB_COL(t, LOB_Q_ASK_QTY, double)[i] = x[3];
    return LOB_OK;
}

/* ------------------------------------------------------------------ the format */

static int
vision_line(void *ctx, const char *s, size_t n, lob_error *err)
{
    lob_vision *v = ctx;
    if (n == 0) {
        v->n_blank++;
        return LOB_OK;
    }
    if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
        s += 3; /* a UTF-8 byte-order mark from tools that re-save the CSV */
        n -= 3;
    }
    if (lob_looks_binary(s, n)) {
        return lob_error_set(
            err, LOB_E_FORMAT,
            "binary data where CSV text was expected (data.binance.vision ships .zip "
            "archives: extract the .csv first)");
    }
    char c0 = n ? s[0] : '\0';
    if ((c0 >= 'a' && c0 <= 'z') || (c0 >= 'A' && c0 <= 'Z')) {
        int rc = header(v, s, n, err); /* data rows start with a digit */
        if (rc == LOB_OK || v->header_rejected) {
            memcpy(v->header_error, rc < 0 ? err->msg : "", rc < 0 ? sizeof v->header_error : 1);
        }
        return rc;
    }
    if (v->header_rejected) {
        return lob_error_set(err, LOB_E_FORMAT, "row after a refused header line (%.200s)",
                             v->header_error);
    }
    lob_cell c[MAX_COLS];
    int nc = lob_csv_split(s, n, c, MAX_COLS);
    int lay = v->layout;
    if (lay == L_NONE) {
        lay = guess_layout(c, nc);
        if (lay == L_NONE) {
            return lob_error_set(
                err, LOB_E_FORMAT,
                "expected 6, 7 or 8 columns (a data.binance.vision trades, aggTrades or "
                "bookTicker CSV), found %d",
                nc);
        }
    }
    else if (nc != layouts[lay].ncol) {
        return lob_error_set(err, LOB_E_FORMAT, "expected %d columns (%s), found %d",
                             layouts[lay].ncol, layouts[lay].title, nc);
    }
    int rc = layouts[lay].kind == K_BOOK ? book_row(v, c, err) : trade_row(v, lay, c, err);
    if (rc < 0) {
        return rc;
    }
    v->layout = lay; /* only a row that parsed decides the layout */
    v->n_rows++;
    return LOB_OK;
}

static int
vision_create(void **ctx, const lob_opts *o)
{
    (void)o; /* the archive holds one symbol per file and no receive times to window on */
    lob_vision *v = calloc(1, sizeof *v);
    if (v == NULL) {
        return LOB_E_NOMEM;
    }
    lob_table_init(&v->out[T_TRADES], lob_trades_schema, LOB_T_NCOL);
    lob_table_init(&v->out[T_QUOTES], lob_quotes_schema, LOB_Q_NCOL);
    v->layout = L_NONE;
    *ctx = v;
    return LOB_OK;
}

static void
vision_destroy(void *ctx)
{
    lob_vision *v = ctx;
    for (int i = 0; i < T_N; i++) {
        lob_table_free(&v->out[i]);
    }
    free(v);
}

static int
vision_finish(void *ctx, lob_error *err)
{
    (void)ctx;
    (void)err;
    return LOB_OK;
}

static lob_table *
vision_table(void *ctx, int i)
{
    return &((lob_vision *)ctx)->out[i];
}

static int
vision_stats(void *ctx, lob_stat *out, int cap)
{
    lob_vision *v = ctx;
    int lay = v->layout;
    const lob_stat all[] = {
        {"data_type", 0, lay == L_NONE ? "" : layouts[lay].data_type},
        {"market", 0, lay == L_NONE ? "unknown" : layouts[lay].market},
        {"headers", v->n_headers, NULL},
        {"rows", v->n_rows, NULL},
        {"blank_lines", v->n_blank, NULL},
        {"header_error", 0, v->header_error},
    };
    return lob_stats_copy(out, cap, all, sizeof all / sizeof all[0]);
}

const lob_format lob_format_vision = {
    "vision",    T_N,           table_names,  vision_create, vision_destroy,
    vision_line, vision_finish, vision_table, vision_stats,
};
