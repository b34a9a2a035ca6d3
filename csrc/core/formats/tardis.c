/* tardis.c -- Tardis.dev CSV -> depth, trades, quotes or book snapshots.
 *
 * Which table a file fills is decided by its header line, which every Tardis CSV has:
 *   incremental_book_L2            -> "depth"  (DepthEvents)
 *   trades                         -> "trades" (Trades)
 *   quotes, book_ticker            -> "quotes" (Quotes; one header for both)
 *   book_snapshot_N (any N)        -> "book"   (BookSnapshots, N levels a side)
 * All files of one reader must hold the same data type: a header of another type is
 * refused, because the rows after it would otherwise be read with the wrong layout.
 *
 * Conventions shared by every data type:
 *  - timestamps are microseconds since the epoch; ts = `timestamp` (exchange time) and
 *    local_ts = `local_timestamp` (arrival time), both x1000 to ns.  An empty `timestamp`
 *    means the exchange gave none; Tardis then documents it as the local time, and so do we.
 *  - rows of other symbols are counted and skipped (the first symbol is kept when none
 *    was chosen); the [start, end) window applies to local_timestamp, as Tardis orders
 *    its files by it.
 *  - update_id is -1: Tardis CSVs carry no exchange sequence numbers.
 *
 * Depth flags follow Tardis' rules for incremental_book_L2: the first is_snapshot=true row
 * after a non-snapshot row starts a new book (RESET|SNAPSHOT); rows before the first
 * snapshot describe an unknown book and are skipped (counted); the last row of each run of
 * rows sharing local_timestamp (one exchange message) gets END_OF_MESSAGE.  That needs one
 * row of lookahead, so the newest depth row waits in `pend` until the next row or finish().
 */
#include "core/formats/cells.h"
#include "core/formats/number.h"
#include "core/formats/text.h"
#include "core/io/reader.h"
#include "core/schema.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { T_DEPTH, T_TRADES, T_QUOTES, T_BOOK, T_N };
static const char *const table_names[T_N] = {"depth", "trades", "quotes", "book"};

/* Data types, by the table they fill; KIND_NONE until a header is accepted. */
enum { KIND_NONE = -1 };

/* BookSnapshots columns; their width is the header's level count. */

#define NCOMMON 4       /* exchange,symbol,timestamp,local_timestamp */
#define MAX_LEVELS 1000 /* book_snapshot_N: Tardis publishes N <= 25; refuse absurd headers */
#define MAX_CELLS (NCOMMON + 4 * MAX_LEVELS)
#define SHOW 24 /* bytes of a bad header cell quoted in messages */
#define NAME 24 /* room for a book_snapshot column name: "bids[999].amount" */

static const char *const common_names[NCOMMON] = {"exchange", "symbol", "timestamp",
                                                  "local_timestamp"};
static const char *const depth_names[4] = {"is_snapshot", "side", "price", "amount"};
static const char *const trade_names[4] = {"id", "side", "price", "amount"};
static const char *const quote_names[4] = {"ask_amount", "ask_price", "bid_price", "bid_amount"};

/* The newest depth row, held back until we know whether its message ended. */
typedef struct {
    int64_t ts, local; /* ns */
    int side;          /* +1 bid, -1 ask */
    double price, qty; /* level and its new absolute size */
    unsigned flags;    /* LOB_F_* without END_OF_MESSAGE yet */
} depth_row;

typedef struct {
    lob_table out[T_N];                 /* depth, trades, quotes, book */
    lob_column book_schema[LOB_B_NCOL]; /* the book table's columns (width = levels) */
    int kind;                           /* T_* of the accepted header, or KIND_NONE */
    int levels;                         /* book_snapshot_N: N */
    int header_rejected;                /* the latest header was refused: rows are not read */
    lob_symbols syms;                   /* the selected symbol and the others met */
    char exchange[LOB_SYMBOL_MAX];      /* exchange of the first row, for stats */
    int64_t start_ns, end_ns;           /* local-time window */
    int prev_snapshot;                  /* the previous row of the symbol had is_snapshot */
    int synced;                         /* a snapshot start has been emitted */
    depth_row pend;                     /* held-back depth row */
    int has_pend;                       /* pend holds a row */
    lob_cell *cells;                    /* MAX_CELLS cells of the current line */
    const char *names[MAX_CELLS];       /* column names of the accepted header, for errors */
    char (*level_names)[NAME];          /* book_snapshot_N: names of its 4 x N level columns */
    char type_text[32];                 /* data_type stat */
    char header_error[256]; /* why the latest header was refused, "" once one is accepted */
    char prefix[2 * LOB_SYMBOL_MAX + 2]; /* "exchange,symbol," of the last depth row read ... */
    size_t prefix_n;                     /* ... its bytes (0: none) ... */
    int prefix_sel;                      /* ... and whether its symbol is the one kept */
    /* counters */
    int64_t n_headers, n_rows, n_outside, n_before_snapshot, n_snapshots, n_nonint_ids, n_blank;
} lob_tardis;

/* ------------------------------------------------------------------ cells */

/* What a value must be, per data type:
 *  - incremental_book_L2: price > 0, amount >= 0 (0 removes the level);
 *  - trades: price > 0, amount > 0;
 *  - quotes / book_ticker and book_snapshot_N: an empty cell is "no value" (NaN; an empty
 *    snapshot level has size 0), otherwise prices > 0 and amounts >= 0.
 * Decimal text that overflows to infinity or underflows to 0 is refused by the parser. */
typedef struct {
    int rule;         /* LOB_NUM_* */
    const char *what; /* for messages */
} value_rule;

static const value_rule PRICE = {LOB_NUM_POSITIVE, "a price"};
static const value_rule SIZE = {LOB_NUM_NONNEG, "an amount"};
static const value_rule QTY = {LOB_NUM_POSITIVE, "an amount"};

/* Cell `col` of the row; `more` adds LOB_NUM_EMPTY_NAN where an empty cell is no value. */
static int
cell_value(const lob_tardis *t, const lob_cell *c, int col, value_rule v, int more, double *out,
           lob_error *err)
{
    return lob_cell_number(&c[col], col, t->names[col], v.rule | more, v.what, out, err);
}

/* Microseconds to ns, within 1970..2262. */
static int
cell_time(const lob_tardis *t, const lob_cell *c, int col, int64_t *out, lob_error *err)
{
    return lob_cell_time(&c[col], col, t->names[col], 1000, LOB_TIME_INT, out, err);
}

/* The names of the columns of header `kind`, for messages. */
static int
set_names(lob_tardis *t, int kind, int levels)
{
    static const char *const *const fixed[3] = {depth_names, trade_names, quote_names};
    for (int i = 0; i < NCOMMON; i++) {
        t->names[i] = common_names[i];
    }
    if (kind != T_BOOK) {
        for (int i = 0; i < 4; i++) {
            t->names[NCOMMON + i] = fixed[kind][i];
        }
        return LOB_OK;
    }
    static const char *const fields[4] = {"asks[%d].price", "asks[%d].amount", "bids[%d].price",
                                          "bids[%d].amount"};
    t->level_names = malloc((size_t)(4 * levels) * sizeof *t->level_names);
    if (t->level_names == NULL) {
        return LOB_E_NOMEM;
    }
    for (int i = 0; i < 4 * levels; i++) {
        snprintf(t->level_names[i], NAME, fields[i % 4], i / 4);
        t->names[NCOMMON + i] = t->level_names[i];
    }
    return LOB_OK;
}

/* ------------------------------------------------------------------ header */

static int
header(lob_tardis *t, lob_cell *c, int nc, lob_error *err)
{
    char show[LOB_SHOW_BUF];
    int kind = KIND_NONE, levels = 0;
    t->header_rejected = 1; /* until accepted below */
    for (int i = 0; i < NCOMMON; i++) {
        if (i >= nc || !lob_cell_is(&c[i], common_names[i])) {
            return lob_error_set(err, LOB_E_FORMAT,
                                 "header column %d: expected '%s' (Tardis CSV headers start with "
                                 "'exchange,symbol,timestamp,local_timestamp'), found '%s'",
                                 i + 1, common_names[i],
                                 i < nc ? lob_show(show, sizeof show, c[i].p, c[i].n, SHOW) : "");
        }
    }
    static const char *const *const fixed[3] = {depth_names, trade_names, quote_names};
    static const int fixed_kind[3] = {T_DEPTH, T_TRADES, T_QUOTES};
    for (int k = 0; k < 3 && nc == NCOMMON + 4; k++) {
        int ok = 1;
        for (int i = 0; i < 4 && ok; i++) {
            ok = lob_cell_is(&c[NCOMMON + i], fixed[k][i]);
        }
        if (ok) {
            kind = fixed_kind[k];
        }
    }
    if (kind == KIND_NONE && nc > NCOMMON && lob_cell_is(&c[NCOMMON], "asks[0].price")) {
        if ((nc - NCOMMON) % 4 != 0 || nc > MAX_CELLS) {
            return lob_error_set(
                err, LOB_E_FORMAT,
                "book_snapshot header with %d columns: expected 4 + 4 x N columns with N "
                "<= %d",
                nc, MAX_LEVELS);
        }
        levels = (nc - NCOMMON) / 4;
        for (int i = 0; i < levels; i++) {
            char want[4][40];
            snprintf(want[0], sizeof want[0], "asks[%d].price", i);
            snprintf(want[1], sizeof want[1], "asks[%d].amount", i);
            snprintf(want[2], sizeof want[2], "bids[%d].price", i);
            snprintf(want[3], sizeof want[3], "bids[%d].amount", i);
            for (int j = 0; j < 4; j++) {
                const lob_cell *h = &c[NCOMMON + 4 * i + j];
                if (!lob_cell_is(h, want[j])) {
                    return lob_error_set(
                        err, LOB_E_FORMAT,
                        "book_snapshot header column %d: expected '%s', found '%s'",
                        NCOMMON + 4 * i + j + 1, want[j],
                        lob_show(show, sizeof show, h->p, h->n, SHOW));
                }
            }
        }
        kind = T_BOOK;
    }
    if (kind == KIND_NONE) {
        const lob_cell *h = nc > NCOMMON ? &c[NCOMMON] : NULL;
        return lob_error_set(
            err, LOB_E_FORMAT,
            "Tardis header not recognised (%d columns, column 5 '%s'): expected the "
            "incremental_book_L2, trades, quotes/book_ticker or book_snapshot_N columns "
            "after 'exchange,symbol,timestamp,local_timestamp'",
            nc, h ? lob_show(show, sizeof show, h->p, h->n, SHOW) : "");
    }
    char text[sizeof t->type_text];
    static const char *const kind_text[T_N] = {"incremental_book_L2", "trades", "quotes", ""};
    if (kind == T_BOOK) {
        snprintf(text, sizeof text, "book_snapshot_%d", levels);
    }
    else {
        snprintf(text, sizeof text, "%s", kind_text[kind]);
    }
    if (t->kind != KIND_NONE && (t->kind != kind || t->levels != levels)) {
        return lob_error_set(
            err, LOB_E_FORMAT,
            "the header is for %s but earlier data was %s: read each Tardis data type "
            "in its own call",
            text, t->type_text);
    }
    if (t->kind == KIND_NONE) {
        LOB_FORWARD_IF_ERROR(set_names(t, kind, levels));
    }
    if (kind == T_BOOK && t->kind == KIND_NONE) {
        lob_book_schema_levels(t->book_schema, levels);
    }
    memcpy(t->type_text, text, sizeof text);
    t->kind = kind;
    t->levels = levels;
    t->header_rejected = 0;
    t->n_headers++;
    return LOB_OK;
}

/* ------------------------------------------------------------------ symbols */

/* ------------------------------------------------------------------ rows */

static int
in_window(lob_tardis *t, int64_t local)
{
    if (local < t->start_ns || local >= t->end_ns) {
        t->n_outside++;
        return 0;
    }
    return 1;
}

static void
push_pending(lob_tardis *t)
{
    lob_table *d = &t->out[T_DEPTH];
    const depth_row *r = &t->pend;
    lob_depth_set(d, d->n++, r->ts, r->local, r->side, r->price, r->qty, -1, r->flags);
    t->has_pend = 0;
}

/* The typed columns of one data row, parsed before anything is changed. */
typedef struct {
    int snap;    /* depth: is_snapshot */
    int side;    /* depth +1 bid / -1 ask; trades +1 buy / -1 sell / 0 unknown */
    double v[4]; /* depth, trades: price, amount; quotes: the four cells in file order */
    int64_t id;  /* trades: id, or -1 when it is not an int64 */
    int nonint;  /* trades: the id was not an int64 */
} row;

static int
depth_parse(lob_tardis *t, const lob_cell *c, row *r, lob_error *err)
{
    LOB_FORWARD_IF_ERROR(lob_cell_bool(&c[4], 4, t->names[4], LOB_BOOL_WORDS, &r->snap, err));
    LOB_FORWARD_IF_ERROR(lob_cell_side(&c[5], 5, t->names[5], LOB_SIDE_BOOK, &r->side, err));
    /* prices key the book, so a non-positive one is corrupt data, not a level */
    LOB_FORWARD_IF_ERROR(cell_value(t, c, 6, PRICE, 0, &r->v[0], err));
    return cell_value(t, c, 7, SIZE, 0, &r->v[1], err);
}

static int
trade_parse(lob_tardis *t, const lob_cell *c, row *r, lob_error *err)
{
    LOB_FORWARD_IF_ERROR(
        lob_cell_side(&c[5], 5, t->names[5], LOB_SIDE_TRADE | LOB_SIDE_UNKNOWN, &r->side, err));
    LOB_FORWARD_IF_ERROR(cell_value(t, c, 6, PRICE, 0, &r->v[0], err));
    LOB_FORWARD_IF_ERROR(cell_value(t, c, 7, QTY, 0, &r->v[1], err));
    /* ids are integers on most exchanges but text (or empty) on some; trade_id is int64, so
     * those become -1 and are counted rather than refusing the file */
    int rc = LOB_OK;
    const char *e = lob_parse_int64(c[4].p, c[4].p + c[4].n, &r->id, &rc);
    r->nonint = e == NULL || e != c[4].p + c[4].n;
    if (r->nonint) {
        r->id = -1;
        return lob_cell_text(&c[4], 4, t->names[4], SIZE_MAX, err);
    }
    return LOB_OK;
}

static int
quote_parse(lob_tardis *t, const lob_cell *c, row *r, lob_error *err)
{
    const value_rule rule[4] = {SIZE, PRICE, PRICE, SIZE}; /* file order */
    for (int i = 0; i < 4; i++) {
        LOB_FORWARD_IF_ERROR(cell_value(t, c, 4 + i, rule[i], LOB_NUM_EMPTY_NAN, &r->v[i], err));
    }
    return LOB_OK;
}

/* Levels go straight into the next (uncommitted) row of the book table. */
static int
book_parse(lob_tardis *t, const lob_cell *c, lob_error *err)
{
    lob_table *tb = &t->out[T_BOOK];
    LOB_FORWARD_IF_ERROR(lob_table_room(tb, 1));
    size_t L = (size_t)t->levels, i = tb->n;
    double *bpx = LOB_COL(tb, LOB_B_BID_PX, double) + i * L;
    double *bsz = LOB_COL(tb, LOB_B_BID_SZ, double) + i * L;
    double *apx = LOB_COL(tb, LOB_B_ASK_PX, double) + i * L;
    double *asz = LOB_COL(tb, LOB_B_ASK_SZ, double) + i * L;
    for (size_t k = 0; k < L; k++) {
        int col = NCOMMON + 4 * (int)k;
        LOB_FORWARD_IF_ERROR(cell_value(t, c, col, PRICE, LOB_NUM_EMPTY_NAN, &apx[k], err));
        LOB_FORWARD_IF_ERROR(cell_value(t, c, col + 1, SIZE, LOB_NUM_EMPTY_NAN, &asz[k], err));
        LOB_FORWARD_IF_ERROR(cell_value(t, c, col + 2, PRICE, LOB_NUM_EMPTY_NAN, &bpx[k], err));
        LOB_FORWARD_IF_ERROR(cell_value(t, c, col + 3, SIZE, LOB_NUM_EMPTY_NAN, &bsz[k], err));
        /* BookSnapshots: an empty level has size 0, not NaN */
        asz[k] = isnan(asz[k]) ? 0.0 : asz[k];
        bsz[k] = isnan(bsz[k]) ? 0.0 : bsz[k];
    }
    return LOB_OK;
}

static void
depth_apply(lob_tardis *t, const row *r, int64_t ts, int64_t local)
{
    /* Tardis: a snapshot starts where is_snapshot turns true.  Rows outside the window still
     * move this state, so a snapshot cut by `start` is not mistaken for a whole one. */
    int run_start = r->snap && !t->prev_snapshot;
    t->prev_snapshot = r->snap;
    if (!in_window(t, local)) {
        return;
    }
    if (!t->synced) {
        if (!run_start) {
            t->n_before_snapshot++; /* the book is unknown until the first snapshot */
            return;
        }
        t->synced = 1;
    }
    if (run_start) {
        t->n_snapshots++;
    }
    if (t->has_pend) {
        if (t->pend.local != local) {
            t->pend.flags |= LOB_F_END_OF_MESSAGE;
        }
        push_pending(t); /* room was reserved by the caller */
    }
    unsigned flags = r->snap ? LOB_F_SNAPSHOT | (run_start ? (unsigned)LOB_F_RESET : 0u) : 0u;
    depth_row d = {ts, local, r->side, r->v[0], r->v[1], flags};
    t->pend = d;
    t->has_pend = 1;
}

static void
trade_apply(lob_tardis *t, const row *r, int64_t ts, int64_t local)
{
    t->n_nonint_ids += r->nonint;
    if (!in_window(t, local)) {
        return;
    }
    lob_table *tb = &t->out[T_TRADES];
    size_t i = tb->n++;
    LOB_COL(tb, LOB_T_TS, int64_t)[i] = ts;
    LOB_COL(tb, LOB_T_LOCAL_TS, int64_t)[i] = local;
    LOB_COL(tb, LOB_T_PRICE, double)[i] = r->v[0];
    LOB_COL(tb, LOB_T_QTY, double)[i] = r->v[1];
    LOB_COL(tb, LOB_T_SIDE, int8_t)[i] = (int8_t)r->side;
    LOB_COL(tb, LOB_T_TRADE_ID, int64_t)[i] = r->id;
}

static void
quote_apply(lob_tardis *t, const row *r, int64_t ts, int64_t local)
{
    if (!in_window(t, local)) {
        return;
    }
    lob_table *tb = &t->out[T_QUOTES];
    size_t i = tb->n++;
    LOB_COL(tb, LOB_Q_TS, int64_t)[i] = ts;
    LOB_COL(tb, LOB_Q_LOCAL_TS, int64_t)[i] = local;
    LOB_COL(tb, LOB_Q_UPDATE_ID, int64_t)[i] = -1;
    LOB_COL(tb, LOB_Q_BID_PX, double)[i] = r->v[2];  /* file order: ask_amount, ask_price, */
    LOB_COL(tb, LOB_Q_BID_QTY, double)[i] = r->v[3]; /* bid_price, bid_amount */
    LOB_COL(tb, LOB_Q_ASK_PX, double)[i] = r->v[1];
    LOB_COL(tb, LOB_Q_ASK_QTY, double)[i] = r->v[0];
}

static void
book_apply(lob_tardis *t, int64_t ts, int64_t local)
{
    if (!in_window(t, local)) {
        return;
    }
    lob_table *tb = &t->out[T_BOOK];
    size_t i = tb->n++;
    LOB_COL(tb, LOB_B_TS, int64_t)[i] = ts;
    LOB_COL(tb, LOB_B_UPDATE_ID, int64_t)[i] = -1;
    LOB_COL(tb, LOB_B_VALID, uint8_t)[i] = 1;
}

/* ------------------------------------------------------------------ the format */

/* ------------------------------------------------------------------ depth fast path */

/* The value at p, up to the next ',' or e, when it is a plain decimal obeying the sign rule
 * `positive` (> 0) or >= 0: the end of the cell; NULL for anything else (the slow path then
 * reads the cell and decides, with its message). */
static inline const char *
fast_number(const char *p, const char *e, int positive, double *out)
{
    int rc = LOB_OK;
    const char *q = lob_parse_decimal(p, e, out, &rc);
    if (q == NULL || (q != e && *q != ',') || !(positive ? *out > 0 : *out >= 0)) {
        return NULL;
    }
    return q;
}

/* The word at p when it is `w` (`k` bytes) followed by ',': the byte after the ','. */
static inline const char *
fast_word(const char *p, const char *e, const char *w, size_t k)
{
    return (size_t)(e - p) > k && memcmp(p, w, k) == 0 && p[k] == ',' ? p + k + 1 : NULL;
}

/* An incremental_book_L2 row of the same exchange and symbol as the previous row read, with
 * its cells read in place: no split into cells, no second look at the names.  Rows this
 * does not take whole (any cell it would have to judge: empty or odd values, other case,
 * another symbol, too many columns) return 0 and go through the general path below, which
 * reads them and words any error exactly as always.  @return 1 when the row was taken. */
static int
depth_fast(lob_tardis *t, const char *s, size_t n, int *rc)
{
    const char *p = s + t->prefix_n, *e = s + n, *q;
    int64_t ts = 0, local = 0;
    int trc = LOB_OK;
    row r = {0};
    if (n <= t->prefix_n || memcmp(s, t->prefix, t->prefix_n) != 0) {
        return 0;
    }
    if ((q = lob_time_text(p, e, 1000, LOB_TIME_INT, &ts, &trc)) == NULL || trc != LOB_OK ||
        q == e || *q != ',') {
        return 0;
    }
    p = q + 1;
    if ((q = lob_time_text(p, e, 1000, LOB_TIME_INT, &local, &trc)) == NULL || trc != LOB_OK ||
        q == e || *q != ',') {
        return 0;
    }
    p = q + 1;
    if ((q = fast_word(p, e, "true", 4)) != NULL) {
        r.snap = 1;
    }
    else if ((q = fast_word(p, e, "false", 5)) == NULL) {
        return 0;
    }
    p = q;
    if ((q = fast_word(p, e, "bid", 3)) != NULL) {
        r.side = 1;
    }
    else if ((q = fast_word(p, e, "ask", 3)) != NULL) {
        r.side = -1;
    }
    else {
        return 0;
    }
    if ((q = fast_number(q, e, 1, &r.v[0])) == NULL || q == e ||
        (q = fast_number(q + 1, e, 0, &r.v[1])) != e) {
        return 0; /* a bad value, or more than 8 columns */
    }
    if ((*rc = lob_table_room(&t->out[T_DEPTH], 1)) < 0) {
        return 1;
    }
    t->n_rows++;
    if (!t->prefix_sel) {
        t->syms.n_other++; /* what lob_symbols_select() counts for another symbol */
        return 1;
    }
    depth_apply(t, &r, ts, local);
    return 1;
}

/* Remember the exchange and symbol cells of a depth row just read (and whether the symbol
 * is kept) for depth_fast(): the next rows usually start with the same bytes. */
static void
remember_prefix(lob_tardis *t, const char *s, const lob_cell *c, int selected)
{
    size_t k = (size_t)(c[1].p + c[1].n - s) + 1; /* through the ',' after the symbol */
    t->prefix_n = 0;
    if (c[0].p == s && k <= sizeof t->prefix && !lob_cell_is(&c[0], "exchange")) {
        memcpy(t->prefix, s, k);
        t->prefix_n = k;
        t->prefix_sel = selected;
    }
}

static int
tardis_line(void *ctx, const char *s, size_t n, lob_error *err)
{
    lob_tardis *t = ctx;
    if (t->kind == T_DEPTH && t->prefix_n > 0 && !t->header_rejected) {
        int rc = LOB_OK;
        if (depth_fast(t, s, n, &rc)) {
            return rc;
        }
    }
    if (n == 0) {
        t->n_blank++;
        return LOB_OK;
    }
    if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
        s += 3; /* a UTF-8 byte-order mark from tools that re-save the CSV */
        n -= 3;
    }
    lob_cell *c = t->cells;
    int nc = lob_csv_split(s, n, c, MAX_CELLS);
    if (lob_cell_is(&c[0], "exchange")) {
        int rc = header(t, c, nc, err);
        memcpy(t->header_error, rc < 0 ? err->msg : "", rc < 0 ? sizeof t->header_error : 1);
        return rc;
    }
    if (t->kind == KIND_NONE || t->header_rejected) {
        if (lob_looks_binary(s, n)) {
            return lob_error_set(
                err, LOB_E_FORMAT,
                "binary data where Tardis CSV text was expected (is this the right "
                "file?)");
        }
        if (t->header_rejected) {
            return lob_error_set(err, LOB_E_FORMAT, "row after a refused header line (%.200s)",
                                 t->header_error);
        }
        char show[LOB_SHOW_BUF];
        return lob_error_set(
            err, LOB_E_FORMAT,
            "expected the Tardis CSV header line "
            "'exchange,symbol,timestamp,local_timestamp,...' before the data, found '%s'",
            lob_show(show, sizeof show, s, n, 32));
    }
    int want = NCOMMON + (t->kind == T_BOOK ? 4 * t->levels : 4);
    if (nc != want) {
        return lob_error_set(err, LOB_E_FORMAT,
                             "expected %d columns (%s, as the header says), found %d", want,
                             t->type_text, nc);
    }
    for (int i = 0; i < 2; i++) { /* exchange, symbol: names, compared and reported */
        if (!lob_symbol_valid(c[i].p, c[i].n)) {
            return lob_cell_error(err, LOB_E_FORMAT, i, t->names[i], &c[i],
                                  i ? "a symbol of 1 to 31 printable ASCII characters"
                                    : "an exchange of 1 to 31 printable ASCII characters");
        }
    }
    int64_t ts = 0, local = 0;
    LOB_FORWARD_IF_ERROR(cell_time(t, c, 3, &local, err));
    if (c[2].n == 0) {
        ts = local; /* Tardis: the exchange gave no time */
    }
    else {
        LOB_FORWARD_IF_ERROR(cell_time(t, c, 2, &ts, err));
    }
    /* Every row is checked whole before the symbol filter, so a broken file is an error
     * whichever symbol was asked for.  Appends are reserved here: nothing below can fail. */
    row r = {0};
    lob_table *tb = &t->out[t->kind];
    switch (t->kind) {
    case T_DEPTH: LOB_FORWARD_IF_ERROR(depth_parse(t, c, &r, err)); break;
    case T_TRADES: LOB_FORWARD_IF_ERROR(trade_parse(t, c, &r, err)); break;
    case T_QUOTES: LOB_FORWARD_IF_ERROR(quote_parse(t, c, &r, err)); break;
    default: LOB_FORWARD_IF_ERROR(book_parse(t, c, err)); break;
    }
    LOB_FORWARD_IF_ERROR(lob_table_room(tb, 1));
    t->n_rows++;
    int selected = lob_symbols_select(&t->syms, c[1].p, c[1].n) == 1;
    if (t->kind == T_DEPTH) {
        remember_prefix(t, s, c, selected);
    }
    if (!selected) {
        return LOB_OK; /* another symbol (validity was checked above) */
    }
    if (t->exchange[0] == '\0') {
        size_t k = c[0].n < LOB_SYMBOL_MAX ? c[0].n : LOB_SYMBOL_MAX - 1;
        memcpy(t->exchange, c[0].p, k);
        t->exchange[k] = '\0';
    }
    switch (t->kind) {
    case T_DEPTH: depth_apply(t, &r, ts, local); break;
    case T_TRADES: trade_apply(t, &r, ts, local); break;
    case T_QUOTES: quote_apply(t, &r, ts, local); break;
    default: book_apply(t, ts, local); break;
    }
    return LOB_OK;
}

static int
tardis_create(void **ctx, const lob_opts *o)
{
    lob_tardis *t = calloc(1, sizeof *t);
    lob_cell *cells = malloc(MAX_CELLS * sizeof *cells);
    if (t == NULL || cells == NULL) {
        free(t);
        free(cells);
        return LOB_E_NOMEM;
    }
    t->cells = cells;
    lob_book_schema_levels(t->book_schema, 1);
    lob_table_init(&t->out[T_DEPTH], lob_depth_schema, LOB_D_NCOL);
    lob_table_init(&t->out[T_TRADES], lob_trades_schema, LOB_T_NCOL);
    lob_table_init(&t->out[T_QUOTES], lob_quotes_schema, LOB_Q_NCOL);
    lob_table_init(&t->out[T_BOOK], t->book_schema, LOB_B_NCOL);
    lob_symbols_init(&t->syms, o->symbol);
    t->kind = KIND_NONE;
    t->start_ns = o->start_ns;
    t->end_ns = o->end_ns;
    *ctx = t;
    return LOB_OK;
}

static void
tardis_destroy(void *ctx)
{
    lob_tardis *t = ctx;
    for (int i = 0; i < T_N; i++) {
        lob_table_free(&t->out[i]);
    }
    free(t->cells);
    free(t->level_names);
    free(t);
}

static int
tardis_finish(void *ctx, lob_error *err)
{
    (void)err; /* finishing cannot fail */
    lob_tardis *t = ctx;
    if (t->has_pend) {
        LOB_FORWARD_IF_ERROR(lob_table_room(&t->out[T_DEPTH], 1));
        t->pend.flags |= LOB_F_END_OF_MESSAGE; /* nothing follows the last message */
        push_pending(t);
    }
    return LOB_OK;
}

static lob_table *
tardis_table(void *ctx, int i)
{
    return &((lob_tardis *)ctx)->out[i];
}

static int
tardis_stats(void *ctx, lob_stat *out, int cap)
{
    lob_tardis *t = ctx;
    const lob_stat all[] = {
        {"data_type", 0, t->type_text},
        {"levels", t->levels, NULL},
        {"exchange", 0, t->exchange},
        {"symbol", 0, t->syms.selected},
        {"symbols", 0, lob_symbols_text(&t->syms)},
        {"headers", t->n_headers, NULL},
        {"rows", t->n_rows, NULL},
        {"other_symbol_rows", t->syms.n_other, NULL},
        {"outside_window", t->n_outside, NULL},
        {"skipped_before_snapshot", t->n_before_snapshot, NULL},
        {"snapshots", t->n_snapshots, NULL},
        {"non_integer_trade_ids", t->n_nonint_ids, NULL},
        {"blank_lines", t->n_blank, NULL},
        {"header_error", 0, t->header_error},
    };
    return lob_stats_copy(out, cap, all, sizeof all / sizeof all[0]);
}

const lob_format lob_format_tardis = {
    "tardis",    T_N,           table_names,  tardis_create, tardis_destroy,
    tardis_line, tardis_finish, tardis_table, tardis_stats,
};
