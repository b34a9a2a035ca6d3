/* test_binance.c -- lob_reader driving lob_format_binance over small crafted recordings.
 *
 * Each case writes "<receive ns> <message>" lines to a file, reads it the way the binding
 * does (open, pump, finish) and compares the depth table, rendered one row per
 * "side price qty update_id flags|" item, with what Binance's local-order-book rules
 * demand.  Sides: b = bid (+1), a = ask (-1), - = a marker row (side 0, NaN price and
 * qty).  Flags: S snapshot, R reset, G gap, E end of message.
 */
#include "test.h"

#include "core/blocks.h"

#include "core/formats/binance.h"
#include "core/formats/peek.h"
#include "core/formats/text.h"
#include "core/io/reader.h"
#include "core/schema.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum { T_DEPTH, T_TRADES, T_AGG, T_QUOTES }; /* lob_format_binance.table_names order */

typedef struct {
    lob_reader *r; /* the reader after finish(), or NULL if it could not be made */
    int rc;        /* first failure of new/open/pump/finish, else 0 */
    lob_error err; /* its description */
} run;

static lob_opts
opts_for(const char *symbol)
{
    lob_opts o;
    memset(&o, 0, sizeof o);
    if (symbol != NULL) {
        snprintf(o.symbol, sizeof o.symbol, "%s", symbol);
    }
    o.start_ns = INT64_MIN;
    o.end_ns = INT64_MAX;
    return o;
}

/* Read the file at `path` to the end; the caller frees x.r. */
static run
read_path(const char *path, int skip, const lob_opts *o)
{
    run x;
    memset(&x, 0, sizeof x);
    x.rc = lob_reader_new(&x.r, &lob_format_binance, o, skip, &x.err);
    if (x.rc == 0) {
        x.rc = lob_reader_open(x.r, path, &x.err);
    }
    int eof = 0;
    while (x.rc == 0 && !eof) {
        x.rc = lob_reader_pump(x.r, 0, &eof, &x.err);
    }
    if (x.rc == 0) {
        x.rc = lob_reader_finish(x.r, &x.err);
    }
    return x;
}

static run
read_text_opts(const char *text, int skip, const lob_opts *o)
{
    const char *path = lob_test_path("binance.txt");
    if (lob_test_write(path, text, strlen(text)) < 0) {
        run x;
        memset(&x, 0, sizeof x);
        x.rc = -100;
        return x;
    }
    return read_path(path, skip, o);
}

static run
read_text(const char *text, int skip)
{
    lob_opts o = opts_for(NULL);
    return read_text_opts(text, skip, &o);
}

/* The depth table as "side price qty update_id flags|" items (static buffer). */
static const char *
depth_str(lob_reader *r)
{
    static char buf[8192];
    size_t k = 0;
    buf[0] = '\0';
    if (r == NULL) {
        return "(no reader)";
    }
    const lob_table *t = lob_reader_table(r, T_DEPTH);
    for (size_t i = 0; i < t->n && k < sizeof buf - 100; i++) {
        int side = LOB_COL(t, LOB_D_SIDE, int8_t)[i];
        unsigned f = LOB_COL(t, LOB_D_FLAGS, uint8_t)[i];
        char fl[8];
        size_t m = 0;
        if (f & LOB_F_SNAPSHOT) {
            fl[m++] = 'S';
        }
        if (f & LOB_F_RESET) {
            fl[m++] = 'R';
        }
        if (f & LOB_F_GAP) {
            fl[m++] = 'G';
        }
        if (f & LOB_F_END_OF_MESSAGE) {
            fl[m++] = 'E';
        }
        if (f & ~0xfu) {
            fl[m++] = '?';
        }
        fl[m] = '\0';
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%c %g %g %lld %s|",
                              side > 0   ? 'b'
                              : side < 0 ? 'a'
                                         : '-',
                              LOB_COL(t, LOB_D_PRICE, double)[i], LOB_COL(t, LOB_D_QTY, double)[i],
                              (long long)LOB_COL(t, LOB_D_UPDATE_ID, int64_t)[i], fl);
    }
    return buf;
}

static int
depth_is(lob_reader *r, const char *want)
{
    const char *got = depth_str(r);
    if (strcmp(got, want) != 0) {
        printf("    depth rows: %s\n    expected:   %s\n", got, want);
        return 0;
    }
    return 1;
}

static const lob_stat *
find_stat(lob_reader *r, const char *name)
{
    static lob_stat st[LOB_MAX_STATS];
    int n = r ? lob_reader_stats(r, st, LOB_MAX_STATS) : 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(st[i].name, name) == 0) {
            return &st[i];
        }
    }
    return NULL;
}

/* A counter's value, or INT64_MIN when the reader has no such counter. */
static int64_t
stat_int(lob_reader *r, const char *name)
{
    const lob_stat *s = find_stat(r, name);
    return s && s->text == NULL ? s->value : INT64_MIN;
}

static int
stat_text_is(lob_reader *r, const char *name, const char *want)
{
    const lob_stat *s = find_stat(r, name);
    return s && s->text && strcmp(s->text, want) == 0;
}

/* Every marker row (side 0) has NaN price and qty; every row only uses the four flags. */
static int
rows_well_formed(lob_reader *r)
{
    const lob_table *t = lob_reader_table(r, T_DEPTH);
    for (size_t i = 0; i < t->n; i++) {
        int side = LOB_COL(t, LOB_D_SIDE, int8_t)[i];
        double px = LOB_COL(t, LOB_D_PRICE, double)[i];
        double q = LOB_COL(t, LOB_D_QTY, double)[i];
        if ((LOB_COL(t, LOB_D_FLAGS, uint8_t)[i] & ~0xfu) || side < -1 || side > 1 ||
            (side == 0 && !(isnan(px) && isnan(q))) || (side != 0 && (isnan(px) || isnan(q)))) {
            return 0;
        }
    }
    return 1;
}

/* ------------------------------------------------------------------ spot */

#define SPOT_DIFF(local, E, U, u, b, a)                                                            \
    local " {\"stream\":\"btcusdt@depth@100ms\",\"data\":{\"e\":\"depthUpdate\",\"E\":" E          \
          ",\"s\":\"BTCUSDT\",\"U\":" U ",\"u\":" u ",\"b\":[" b "],\"a\":[" a "]}}\n"

static void
test_spot_sync(void)
{
    const char *text =
        /* before the snapshot: buffered; the first is older than the snapshot */
        SPOT_DIFF("1700000000000000101", "1700000000100", "1", "5", "[\"99\",\"1\"]", "") SPOT_DIFF(
            "1700000000000000102", "1700000000200", "6", "12", "[\"100\",\"2\"]",
            "[\"101\",\"0\"]") "1700000000000000103 "
                               "{\"lastUpdateId\":10,\"bids\":[[\"100\",\"1\"],[\"99\",\"3\"]],"
                               "\"asks\":[[\"101\",\"2\"]]}\n"
        /* synced: chains, then a stale repeat, then a gap */
        SPOT_DIFF("1700000000000000104", "1700000000300", "13", "15", "[\"98\",\"1\"]", "")
            SPOT_DIFF("1700000000000000105", "1700000000300", "14", "15", "", "[\"102\",\"5\"]")
                SPOT_DIFF("1700000000000000106", "1700000000400", "20", "25", "[\"97\",\"1\"]", "")
                    SPOT_DIFF("1700000000000000107", "1700000000500", "26", "30", "",
                              "[\"103\",\"1\"]")
        /* resync: the 20..25 diff is inside this snapshot, 26..30 bridges it */
        "1700000000000000108 {\"lastUpdateId\":27,\"bids\":[[\"100\",\"5\"]],\"asks\":[]}\n";
    run x = read_text(text, 0);
    test_cond("spot sync: reads without error", x.rc == 0);
    test_cond("spot sync: snapshot, bridging diff, chained diff, GAP marker, resync",
              depth_is(x.r, "b 100 1 10 SR|b 99 3 10 S|a 101 2 10 SE|"
                            "b 100 2 12 |a 101 0 12 E|"
                            "b 98 1 15 E|"
                            "- nan nan 25 GE|"
                            "b 100 5 27 SRE|a 103 1 30 E|"));
    test_cond("spot sync: rows well formed", rows_well_formed(x.r));
    const lob_table *d = lob_reader_table(x.r, T_DEPTH);
    if (d->n == 9) {
        const int64_t *ts = LOB_COL(d, LOB_D_TS, int64_t);
        const int64_t *local = LOB_COL(d, LOB_D_LOCAL_TS, int64_t);
        test_cond("spot sync: the snapshot takes the bridging diff's exchange time",
                  ts[0] == 1700000000200000000LL && ts[3] == 1700000000200000000LL);
        test_cond("spot sync: the snapshot keeps its own receive time",
                  local[0] == 1700000000000000103LL && local[2] == 1700000000000000103LL &&
                      local[3] == 1700000000000000102LL);
        test_cond("spot sync: the GAP marker has the breaking diff's times",
                  ts[6] == 1700000000400000000LL && local[6] == 1700000000000000106LL);
        test_cond("spot sync: exchange times never go back",
                  ts[7] >= ts[6] && ts[7] == 1700000000500000000LL && ts[8] == ts[7]);
    }
    test_cond("spot sync: market", stat_text_is(x.r, "market", "spot"));
    test_cond("spot sync: symbol", stat_text_is(x.r, "symbol", "BTCUSDT"));
    test_cond("spot sync: 6 diffs, 2 snapshots",
              stat_int(x.r, "depth_messages") == 6 && stat_int(x.r, "snapshots") == 2);
    test_cond("spot sync: two diffs dropped as older than their snapshot",
              stat_int(x.r, "dropped_before_sync") == 2);
    test_cond("spot sync: one stale diff", stat_int(x.r, "stale_diffs") == 1);
    test_cond("spot sync: one gap, two resets",
              stat_int(x.r, "gaps") == 1 && stat_int(x.r, "resets") == 2);
    test_cond("spot sync: synced at the end",
              stat_int(x.r, "synced") == 1 && stat_int(x.r, "last_update_id") == 30);
    test_cond("spot sync: reader counters",
              stat_int(x.r, "files") == 1 && stat_int(x.r, "lines") == 8 &&
                  stat_int(x.r, "bad_lines") == 0 && stat_int(x.r, "truncated_files") == 0 &&
                  find_stat(x.r, "first_bad_line") == NULL);
    lob_reader_free(x.r);

    /* snapshot first: later diffs it contains are dropped, the first newer one bridges */
    x = read_text("5 {\"lastUpdateId\":10,\"bids\":[],\"asks\":[]}\n" SPOT_DIFF(
                      "6", "1700000000100", "5", "9", "[\"1\",\"1\"]", "")
                      SPOT_DIFF("7", "1700000000200", "8", "14", "[\"2\",\"1\"]", ""),
                  0);
    test_cond("spot: an empty snapshot is one marker row (SNAPSHOT|RESET|END)",
              x.rc == 0 && depth_is(x.r, "- nan nan 10 SRE|b 2 1 14 E|") &&
                  stat_int(x.r, "dropped_before_sync") == 1);
    lob_reader_free(x.r);

    /* a snapshot older than every buffered diff cannot be bridged: rejected, no rows */
    x = read_text(SPOT_DIFF("1", "1700000000100", "20", "25", "[\"1\",\"1\"]",
                            "") "2 "
                                "{\"lastUpdateId\":10,\"bids\":[[\"9\",\"9\"]],\"asks\":[]}"
                                "\n" SPOT_DIFF("3", "1700000000200", "26", "28", "[\"2\",\"1\"]",
                                               "") "4 "
                                                   "{\"lastUpdateId\":22,\"bids\":[[\"8\",\"8\"]],"
                                                   "\"asks\":[]}\n",
                  0);
    test_cond("spot: a snapshot too old is rejected, the next one syncs",
              x.rc == 0 && depth_is(x.r, "b 8 8 22 SRE|b 1 1 25 E|b 2 1 28 E|") &&
                  stat_int(x.r, "snapshots_rejected") == 1 && stat_int(x.r, "resets") == 1);
    lob_reader_free(x.r);

    /* a break among the buffered diffs: sync up to it, then wait for the next snapshot */
    x = read_text(SPOT_DIFF("1", "1700000000100", "11", "15", "[\"1\",\"1\"]", "") SPOT_DIFF(
                      "2", "1700000000200", "20", "25", "[\"2\",\"1\"]",
                      "") "3 {\"lastUpdateId\":12,\"bids\":[[\"9\",\"9\"]],\"asks\":[]}\n"
                          "4 {\"lastUpdateId\":22,\"bids\":[[\"8\",\"8\"]],\"asks\":[]}\n",
                  0);
    test_cond("spot: a gap among buffered diffs is marked, then bridged by the next snapshot",
              x.rc == 0 &&
                  depth_is(x.r, "b 9 9 12 SRE|b 1 1 15 E|- nan nan 25 GE|"
                                "b 8 8 22 SRE|b 2 1 25 E|") &&
                  stat_int(x.r, "gaps") == 1 && stat_int(x.r, "resets") == 2);
    lob_reader_free(x.r);

    /* no snapshot ever: nothing is emitted, buffered diffs are counted as dropped */
    x = read_text(SPOT_DIFF("1", "1700000000100", "11", "15", "[\"1\",\"1\"]", "")
                      SPOT_DIFF("2", "1700000000200", "16", "25", "[\"2\",\"1\"]", ""),
                  0);
    test_cond("spot: without a snapshot nothing is emitted",
              x.rc == 0 && depth_is(x.r, "") && stat_int(x.r, "dropped_before_sync") == 2 &&
                  stat_int(x.r, "synced") == 0 && stat_int(x.r, "last_update_id") == -1);
    lob_reader_free(x.r);

    /* a second snapshot while synced adds nothing */
    x = read_text("1 {\"lastUpdateId\":10,\"bids\":[[\"9\",\"9\"]],\"asks\":[]}\n" SPOT_DIFF(
                      "2", "1700000000100", "11", "15", "[\"1\",\"1\"]",
                      "") "3 {\"lastUpdateId\":15,\"bids\":[[\"7\",\"7\"]],\"asks\":[]}\n",
                  0);
    test_cond("spot: a snapshot while synced is counted as unused",
              x.rc == 0 && depth_is(x.r, "b 9 9 10 SRE|b 1 1 15 E|") &&
                  stat_int(x.r, "snapshots_unused") == 1);
    lob_reader_free(x.r);
}

/* ------------------------------------------------------------------ USD-M */

#define USDM_DIFF(local, T, U, u, pu, b)                                                           \
    local " {\"stream\":\"btcusdt@depth@0ms\",\"data\":{\"e\":\"depthUpdate\",\"E\":" T            \
          ",\"T\":" T ",\"s\":\"BTCUSDT\",\"U\":" U ",\"u\":" u ",\"pu\":" pu ",\"b\":[" b         \
          "],\"a\":[]}}\n"
#define USDM_SNAP(local, L, T, b)                                                                  \
    local " {\"lastUpdateId\":" L ",\"E\":" T ",\"T\":" T ",\"bids\":[" b "],\"asks\":[]}\n"

static void
test_usdm_sync(void)
{
    const char *text = USDM_DIFF("1", "1700000000100", "100", "110", "99", "[\"100.5\",\"1\"]")
        USDM_SNAP("2", "105", "1700000000090", "[\"100.5\",\"2\"]")
            USDM_DIFF("3", "1700000000200", "111", "120", "110", "[\"100.4\",\"1\"]")
        /* U == last u + 1 would do for spot, but pu (119) does not chain to 120 */
        USDM_DIFF("4", "1700000000300", "121", "130", "119", "[\"100.3\",\"1\"]")
            USDM_DIFF("5", "1700000000400", "135", "140", "130", "[\"100.2\",\"1\"]")
                USDM_SNAP("6", "137", "1700000000390", "[\"100\",\"3\"]")
        /* U jumps (150 > 141) but pu chains: USD-M accepts it */
        USDM_DIFF("7", "1700000000500", "150", "160", "140", "[\"100.1\",\"1\"]");
    run x = read_text(text, 0);
    test_cond("usdm sync: reads without error", x.rc == 0);
    test_cond("usdm sync: pu chaining decides gaps, not U",
              depth_is(x.r, "b 100.5 2 105 SRE|b 100.5 1 110 E|b 100.4 1 120 E|"
                            "- nan nan 130 GE|"
                            "b 100 3 137 SRE|b 100.2 1 140 E|b 100.1 1 160 E|"));
    test_cond("usdm sync: market", stat_text_is(x.r, "market", "usdm"));
    test_cond("usdm sync: counters", stat_int(x.r, "gaps") == 1 && stat_int(x.r, "resets") == 2 &&
                                         stat_int(x.r, "dropped_before_sync") == 1 &&
                                         stat_int(x.r, "last_update_id") == 160);
    const lob_table *d = lob_reader_table(x.r, T_DEPTH);
    if (d->n == 7) {
        const int64_t *ts = LOB_COL(d, LOB_D_TS, int64_t);
        test_cond("usdm sync: a snapshot older than its bridging diff keeps its own time",
                  ts[0] == 1700000000090000000LL && ts[1] == 1700000000100000000LL);
        test_cond("usdm sync: diff rows take T",
                  ts[2] == 1700000000200000000LL && ts[6] == 1700000000500000000LL);
    }
    lob_reader_free(x.r);

    /* USD-M keeps a diff whose u equals lastUpdateId: it bridges (U <= L <= u) */
    x = read_text(USDM_DIFF("1", "1700000000100", "100", "105", "99", "[\"1\",\"1\"]")
                      USDM_SNAP("2", "105", "1700000000200", "[\"2\",\"2\"]"),
                  0);
    test_cond("usdm: u == lastUpdateId bridges", x.rc == 0 &&
                                                     depth_is(x.r, "b 2 2 105 SRE|b 1 1 105 E|") &&
                                                     stat_int(x.r, "dropped_before_sync") == 0);
    lob_reader_free(x.r);

    /* a USD-M snapshot first (E/T tell the market) and a diff bridging it by pu alone */
    x = read_text(USDM_SNAP("1", "105", "1700000000100", "[\"2\",\"2\"]")
                      USDM_DIFF("2", "1700000000200", "107", "110", "105", "[\"1\",\"1\"]"),
                  0);
    test_cond("usdm: snapshot first, bridged by pu == lastUpdateId",
              x.rc == 0 && depth_is(x.r, "b 2 2 105 SRE|b 1 1 110 E|") &&
                  stat_text_is(x.r, "market", "usdm"));
    lob_reader_free(x.r);

    /* too old: every buffered diff starts after it */
    x = read_text(USDM_DIFF("1", "1700000000100", "100", "110", "99", "[\"1\",\"1\"]")
                      USDM_SNAP("2", "90", "1700000000050", "[\"2\",\"2\"]"),
                  0);
    test_cond("usdm: a snapshot too old is rejected",
              x.rc == 0 && depth_is(x.r, "") && stat_int(x.r, "snapshots_rejected") == 1);
    lob_reader_free(x.r);
}

/* ------------------------------------------------------------------ other messages */

static void
test_partial_depth(void)
{
    const char *text =
        "1 {\"stream\":\"btcusdt@depth5@100ms\",\"data\":{\"lastUpdateId\":10,"
        "\"bids\":[[\"1\",\"1\"]],\"asks\":[[\"2\",\"1\"]]}}\n"
        "2 {\"stream\":\"btcusdt@depth20\",\"data\":{\"e\":\"depthUpdate\",\"E\":1700000000100,"
        "\"T\":1700000000100,\"s\":\"BTCUSDT\",\"U\":1,\"u\":5,\"pu\":0,\"b\":[[\"1\",\"1\"]],"
        "\"a\":[]}}\n"
        "3 {\"lastUpdateId\":10,\"bids\":[[\"3\",\"3\"]],\"asks\":[]}\n" SPOT_DIFF(
            "4", "1700000000200", "11", "12", "[\"4\",\"4\"]", "");
    run x = read_text(text, 0);
    test_cond("partial depth: top-N streams are counted and ignored",
              x.rc == 0 && stat_int(x.r, "partial_depth_messages") == 2 &&
                  stat_int(x.r, "depth_messages") == 1 && stat_int(x.r, "snapshots") == 1);
    test_cond("partial depth: the diff stream alone decides the market and the book",
              stat_text_is(x.r, "market", "spot") && depth_is(x.r, "b 3 3 10 SRE|b 4 4 12 E|"));
    lob_reader_free(x.r);
}

static void
test_trades_quotes(void)
{
    const char *text =
        "11 {\"stream\":\"btcusdt@trade\",\"data\":{\"e\":\"trade\",\"E\":1700000000101,"
        "\"s\":\"BTCUSDT\",\"t\":3735683259,\"p\":\"61837.63000000\",\"q\":\"0.02000000\","
        "\"T\":1700000000100,\"m\":true,\"M\":true}}\n"
        "12 {\"stream\":\"btcusdt@aggTrade\",\"data\":{\"e\":\"aggTrade\",\"E\":1700000000201,"
        "\"s\":\"BTCUSDT\",\"a\":77,\"p\":\"61837.64\",\"q\":\"1.5\",\"f\":1,\"l\":2,"
        "\"T\":1700000000200,\"m\":false}}\n"
        "13 {\"stream\":\"btcusdt@trade\",\"data\":{\"e\":\"trade\",\"E\":1700000000301,"
        "\"T\":1700000000300,\"s\":\"BTCUSDT\",\"t\":9,\"p\":\"1\",\"q\":\"1\","
        "\"X\":\"INSURANCE_FUND\",\"m\":false}}\n"
        "14 {\"stream\":\"btcusdt@bookTicker\",\"data\":{\"u\":50093239212,\"s\":\"BTCUSDT\","
        "\"b\":\"61837.63000000\",\"B\":\"3.78826000\",\"a\":\"61837.64000000\","
        "\"A\":\"1.54698000\"}}\n"
        "15 {\"e\":\"bookTicker\",\"u\":7,\"s\":\"BTCUSDT\",\"b\":\"1.5\",\"B\":\"2\","
        "\"a\":\"1.6\",\"A\":\"3\",\"T\":1700000000400,\"E\":1700000000401}\n";
    run x = read_text(text, 0);
    const lob_table *tr = lob_reader_table(x.r, T_TRADES);
    const lob_table *ag = lob_reader_table(x.r, T_AGG);
    const lob_table *q = lob_reader_table(x.r, T_QUOTES);
    test_cond("trades: one trade, one aggTrade, two quotes",
              x.rc == 0 && tr->n == 1 && ag->n == 1 && q->n == 2);
    if (tr->n == 1 && ag->n == 1 && q->n == 2) {
        test_cond("trades: buyer is maker -> taker sold (-1), time from T",
                  LOB_COL(tr, LOB_T_SIDE, int8_t)[0] == -1 &&
                      LOB_COL(tr, LOB_T_TS, int64_t)[0] == 1700000000100000000LL &&
                      LOB_COL(tr, LOB_T_LOCAL_TS, int64_t)[0] == 11 &&
                      LOB_COL(tr, LOB_T_PRICE, double)[0] == 61837.63 &&
                      LOB_COL(tr, LOB_T_QTY, double)[0] == 0.02 &&
                      LOB_COL(tr, LOB_T_TRADE_ID, int64_t)[0] == 3735683259LL);
        test_cond("trades: aggTrade id from 'a', taker bought (+1)",
                  LOB_COL(ag, LOB_T_SIDE, int8_t)[0] == 1 &&
                      LOB_COL(ag, LOB_T_TRADE_ID, int64_t)[0] == 77 &&
                      LOB_COL(ag, LOB_T_QTY, double)[0] == 1.5);
        test_cond("quotes: spot bookTicker without time uses the receive time",
                  LOB_COL(q, LOB_Q_TS, int64_t)[0] == 14 &&
                      LOB_COL(q, LOB_Q_UPDATE_ID, int64_t)[0] == 50093239212LL &&
                      LOB_COL(q, LOB_Q_BID_PX, double)[0] == 61837.63 &&
                      LOB_COL(q, LOB_Q_BID_QTY, double)[0] == 3.78826 &&
                      LOB_COL(q, LOB_Q_ASK_PX, double)[0] == 61837.64 &&
                      LOB_COL(q, LOB_Q_ASK_QTY, double)[0] == 1.54698);
        test_cond("quotes: a raw USD-M bookTicker uses T",
                  LOB_COL(q, LOB_Q_TS, int64_t)[1] == 1700000000400000000LL &&
                      LOB_COL(q, LOB_Q_ASK_QTY, double)[1] == 3.0);
    }
    test_cond("trades: insurance-fund fills are not market trades",
              stat_int(x.r, "nonmarket_trades") == 1 && stat_int(x.r, "trade_messages") == 2);
    test_cond("trades: no depth rows", depth_is(x.r, ""));
    lob_reader_free(x.r);
}

static void
test_symbols_window_lines(void)
{
    const char *text =
        "1 {\"stream\":\"btcusdt@bookTicker\",\"data\":{\"u\":1,\"s\":\"BTCUSDT\",\"b\":\"1\","
        "\"B\":\"1\",\"a\":\"2\",\"A\":\"1\"}}\r\n"
        "\n"
        "2 {\"stream\":\"ethusdt@bookTicker\",\"data\":{\"u\":2,\"s\":\"ETHUSDT\",\"b\":\"3\","
        "\"B\":\"1\",\"a\":\"4\",\"A\":\"1\"}}\r\n"
        "3 {\"lobfast\":{\"event\":\"reconnect\"}}\n"
        "4 {\"result\":null,\"id\":1}\n"
        "5 {\"stream\":\"ethusdt@bookTicker\",\"data\":{\"u\":3,\"s\":\"ETHUSDT\",\"b\":\"5\","
        "\"B\":\"1\",\"a\":\"6\",\"A\":\"1\"}}"; /* no final newline: still a complete line */
    lob_opts o = opts_for("ethusdt");
    run x = read_text_opts(text, 0, &o);
    const lob_table *q = lob_reader_table(x.r, T_QUOTES);
    test_cond("symbols: the selected symbol, case-insensitively, CRLF and all",
              x.rc == 0 && q->n == 2 && LOB_COL(q, LOB_Q_BID_PX, double)[1] == 5.0);
    test_cond("symbols: others are counted and listed",
              stat_int(x.r, "other_symbol_messages") == 1 &&
                  stat_text_is(x.r, "symbols", "ETHUSDT,BTCUSDT"));
    test_cond("lines: blank, collector and unknown lines are counted",
              stat_int(x.r, "blank_lines") == 1 && stat_int(x.r, "collector_events") == 1 &&
                  stat_int(x.r, "unknown_messages") == 1 && stat_int(x.r, "lines") == 6);
    lob_reader_free(x.r);

    o = opts_for(NULL);
    o.start_ns = 2;
    o.end_ns = 5;
    x = read_text_opts(text, 0, &o);
    q = lob_reader_table(x.r, T_QUOTES);
    test_cond("window: start inclusive, end exclusive",
              x.rc == 0 && q->n == 1 && LOB_COL(q, LOB_Q_LOCAL_TS, int64_t)[0] == 2 &&
                  stat_int(x.r, "outside_window") == 2);
    lob_reader_free(x.r);
}

static void
test_on_error(void)
{
    const char *line1 = "1 {\"e\":\"trade\",\"t\":1,\"p\":\"1\",\"q\":\"1\",\"m\":true}\n";
    char text[1024];
    snprintf(text, sizeof text,
             "%s"
             "garbage\n"
             "2 {\"e\":\"trade\",\"t\":2,\"p\":\"1\",\"q\":\"1\"}\n" /* no "m" */
             "3 {\"e\":\"depthUpdate\",\"u\":5,\"b\":[]}\n"          /* no "U" */
             "4 {\"a\":[[\"1\",\"-1\"]]}\n"                          /* negative qty */
             "5 {\"e\":\"trade\",\"t\":3,\"p\":\"1e999\",\"q\":\"1\",\"m\":true}\n"
             "\x01\x02\x03\x04\n"
             "6 {\"e\":\"trade\",\"t\":4,\"p\":\"2\",\"q\":\"1\",\"m\":false} x\n"
             "7 {\"e\":\"trade\",\"t\":5,\"p\":\"3\",\"q\":\"1\",\"m\":false}\n",
             line1);

    run x = read_text(text, 1);
    const lob_table *tr = lob_reader_table(x.r, T_TRADES);
    test_cond("on_error=skip: bad lines are counted, good ones kept",
              x.rc == 0 && stat_int(x.r, "bad_lines") == 7 && tr->n == 2 &&
                  LOB_COL(tr, LOB_T_TRADE_ID, int64_t)[1] == 5);
    const lob_stat *first = find_stat(x.r, "first_bad_line");
    test_cond("on_error=skip: the first bad line is described",
              first && first->text && strncmp(first->text, "line 2: ", 8) == 0 &&
                  strstr(first->text, "<receive time in ns> <JSON message>") != NULL);
    lob_reader_free(x.r);

    x = read_text(text, 0);
    tr = lob_reader_table(x.r, T_TRADES);
    test_cond("on_error=raise: LOB_E_FORMAT located at line 2",
              x.rc == LOB_E_FORMAT && x.err.code == LOB_E_FORMAT && x.err.line == 2 &&
                  x.err.offset == (int64_t)strlen(line1));
    test_cond("on_error=raise: rows before the bad line are kept", tr->n == 1);
    lob_reader_free(x.r);

    /* each kind of bad line, alone after a good one, in raise mode */
    static const struct {
        const char *line;
        int code;
        const char *msg;
    } bad[] = {
        {"2 {\"e\":\"trade\",\"t\":2,\"p\":\"1\",\"q\":\"1\"}", LOB_E_FORMAT, "without 'm'"},
        {"3 {\"e\":\"depthUpdate\",\"u\":5}", LOB_E_FORMAT, "without 'U'"},
        {"4 {\"a\":[[\"1\",\"-1\"]]}", LOB_E_RANGE, "non-negative qty"},
        {"5 {\"p\":\"1e999\"}", LOB_E_RANGE, "float64 range"},
        {"6 {\"u\":99999999999999999999}", LOB_E_RANGE, "within int64"},
        {"\x01\x02\x03\x04", LOB_E_FORMAT, "binary data"},
        {"-5 {}", LOB_E_FORMAT, "receive time"},
        {"7 {\"a\":1 \"b\":2}", LOB_E_FORMAT, "column 10: expected ',' or '}'"},
        {"8 {} {}", LOB_E_FORMAT, "the end of the line"},
        {"9 [1]", LOB_E_FORMAT, "a JSON object"},
        {"10 {\"data\":{\"e\":\"trade\"", LOB_E_FORMAT, "expected"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "%s%s\n", line1, bad[i].line);
        x = read_text(text, 0);
        char name[160];
        snprintf(name, sizeof name, "on_error=raise: '%.40s' -> code %d, \"%s\"", bad[i].line,
                 bad[i].code, bad[i].msg);
        int ok = x.rc == bad[i].code && x.err.line == 2 && strstr(x.err.msg, bad[i].msg) != NULL;
        if (!ok) {
            printf("    got code %d, line %lld: %s\n", x.rc, (long long)x.err.line, x.err.msg);
        }
        test_cond(name, ok);
        lob_reader_free(x.r);
    }

    /* lines are not NUL-terminated: a message quoting a short line must stop at its end
     * instead of running on into the next lines */
    x = read_text("1 [\n2 SECRET\n", 0);
    test_cond("on_error=raise: the message quotes only the bad line (JSON error)",
              x.rc == LOB_E_FORMAT && strstr(x.err.msg, "SECRET") == NULL);
    lob_reader_free(x.r);
    x = read_text("abc\n2 SECRET\n", 0);
    test_cond("on_error=raise: the message quotes only the bad line (prefix error)",
              x.rc == LOB_E_FORMAT && strstr(x.err.msg, "SECRET") == NULL);
    lob_reader_free(x.r);
}

/* ------------------------------------------------------------------ fuzzer findings */

static void
test_fuzz_findings(void)
{
    /* regression: found by fuzz_binance: the first lob_reader_pump() of every file computes
     * `r->buf + r->pos` while buf is still NULL (reader.c, before the first refill).
     * NULL + 0 is undefined in C; clang's UBSan (pointer-overflow, which gcc's lacks)
     * reports it, so the clang run of tests/test_c_core.py fails on any reader test. */
    run x = read_text("", 0);
    test_cond("fuzz: an empty file", x.rc == 0 && depth_is(x.r, "") && stat_int(x.r, "lines") == 0);
    lob_reader_free(x.r);

    /* found by fuzz_binance: a depthUpdate without levels before any depth row appended 0
     * rows between two never-allocated tables, memcpy(NULL, NULL, 0) (undefined) */
    x = read_text("1 {\"e\":\"depthUpdate\",\"U\":1,\"u\":2}\n", 0);
    test_cond("fuzz: a depthUpdate without levels is buffered",
              x.rc == 0 && depth_is(x.r, "") && stat_int(x.r, "depth_messages") == 1);
    lob_reader_free(x.r);

    /* found by fuzz_binance: an exchange time near the top of its unit's range (here
     * T = 9700000000400 ms, year 2277) overflowed int64 ns; it is now refused */
    x = read_text("1 {\"e\":\"trade\",\"t\":1,\"p\":\"1\",\"q\":\"1\",\"m\":true,"
                  "\"T\":9700000000400}\n",
                  0);
    const lob_table *tr = x.r ? lob_reader_table(x.r, T_TRADES) : NULL;
    test_cond("fuzz: a trade time in 2277 is refused", x.rc == LOB_E_RANGE && (!tr || tr->n == 0));
    lob_reader_free(x.r);
}

/* ------------------------------------------------------------------ values and times */

static void
test_values(void)
{
    /* every value is checked: a bad one fails the line (LOB_E_RANGE), or with on_error=skip
     * is counted and skipped, never kept */
    static const char *const bad[] = {
        "2 {\"e\":\"trade\",\"t\":2,\"p\":\"0\",\"q\":\"1\",\"m\":true}\n",
        "2 {\"e\":\"trade\",\"t\":2,\"p\":\"1\",\"q\":\"-1\",\"m\":true}\n",
        "2 {\"e\":\"aggTrade\",\"a\":2,\"p\":\"1\",\"q\":\"0\",\"m\":true}\n",
        "2 {\"u\":2,\"s\":\"X\",\"b\":\"-1\",\"B\":\"1\",\"a\":\"2\",\"A\":\"1\"}\n",
        "2 {\"u\":2,\"s\":\"X\",\"b\":\"1\",\"B\":\"1\",\"a\":\"2\",\"A\":\"-1\"}\n",
        "2 {\"e\":\"trade\",\"t\":2,\"p\":\"1e-400\",\"q\":\"1\",\"m\":true}\n",
        "9223372036854775807 {\"e\":\"trade\",\"t\":2,\"p\":\"1\",\"q\":\"1\",\"m\":true}\n",
        "2 {\"e\":\"trade\",\"t\":2,\"p\":\"1\",\"q\":\"1\",\"m\":true,\"E\":-5}\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[512];
        snprintf(text, sizeof text,
                 "1 {\"e\":\"trade\",\"t\":1,\"p\":\"1\",\"q\":\"1\",\"m\":true}\n%s", bad[i]);
        run x = read_text(text, 0);
        char what[64];
        snprintf(what, sizeof what, "values: bad line %zu is refused", i);
        test_cond(what, (x.rc == LOB_E_RANGE || x.rc == LOB_E_FORMAT) && x.err.line == 2);
        lob_reader_free(x.r);
        x = read_text(text, 1);
        snprintf(what, sizeof what, "values: bad line %zu is counted and skipped", i);
        size_t kept = 0;
        for (int t = T_TRADES; x.r && t <= T_QUOTES; t++) {
            kept += lob_reader_table(x.r, t)->n;
        }
        test_cond(what, x.rc == 0 && stat_int(x.r, "bad_lines") == 1 && kept == 1);
        lob_reader_free(x.r);
    }
    char buf[LOB_SHOW_BUF];
    test_cond("values: lob_show escapes a NUL and control bytes, never cuts",
              strcmp(lob_show(buf, sizeof buf, "A\0B\t\\", 5, LOB_SHOW), "A\\x00B\\x09\\x5c") == 0);
    test_cond("values: lob_show marks a cut",
              strcmp(lob_show(buf, sizeof buf, "ABCDEF", 6, 3), "ABC...") == 0);
}

/* ------------------------------------------------------------------ kinds */

/* One table of message kinds, checked through both users of the classifier (peek.h): the
 * collector's lob_peek_binance() must see `kind`, and the reader, given the message as a
 * one-line recording, must count it under `counter` (and nothing as unknown otherwise). */
static const struct {
    const char *msg;
    int kind;
    const char *counter;
} kinds[] = {
    {"{\"stream\":\"btcusdt@depth@100ms\",\"data\":{\"e\":\"depthUpdate\",\"E\":1700000000000,"
     "\"s\":\"BTCUSDT\",\"U\":1,\"u\":2,\"b\":[[\"1\",\"1\"]],\"a\":[]}}",
     LOB_PK_DIFF, "depth_messages"},
    {"{\"e\":\"depthUpdate\",\"E\":1700000000000,\"T\":1700000000000,\"s\":\"BTCUSDT\",\"U\":5,"
     "\"u\":9,\"pu\":4,\"b\":[],\"a\":[[\"2\",\"0\"]]}",
     LOB_PK_DIFF, "depth_messages"},
    {"{\"stream\":\"btcusdt@depth5\",\"data\":{\"e\":\"depthUpdate\",\"E\":1700000000000,"
     "\"s\":\"BTCUSDT\",\"U\":1,\"u\":9,\"pu\":0,\"b\":[],\"a\":[]}}",
     LOB_PK_PARTIAL, "partial_depth_messages"},
    {"{\"stream\":\"btcusdt@depth10@100ms\",\"data\":{\"lastUpdateId\":7,\"bids\":[],\"asks\":[]}}",
     LOB_PK_PARTIAL, "partial_depth_messages"},
    /* a snapshot's shape in a stream frame is never a REST snapshot, whatever the stream */
    {"{\"stream\":\"btcusdt@depth@100ms\",\"data\":{\"lastUpdateId\":7,\"bids\":[],\"asks\":[]}}",
     LOB_PK_PARTIAL, "partial_depth_messages"},
    {"{\"stream\":\"btcusdt@trade\",\"data\":{\"e\":\"trade\",\"E\":1700000000000,\"s\":"
     "\"BTCUSDT\","
     "\"t\":12,\"p\":\"1.5\",\"q\":\"2\",\"T\":1700000000000,\"m\":true,\"M\":true}}",
     LOB_PK_TRADE, "trade_messages"},
    {"{\"e\":\"aggTrade\",\"E\":1700000000000,\"s\":\"BTCUSDT\",\"a\":26129,\"p\":\"1\",\"q\":"
     "\"1\","
     "\"f\":1,\"l\":2,\"T\":1700000000000,\"m\":false}",
     LOB_PK_AGG, "agg_trade_messages"},
    {"{\"u\":400900217,\"s\":\"BNBUSDT\",\"b\":\"25.35\",\"B\":\"31.21\",\"a\":\"25.36\",\"A\":"
     "\"40\"}",
     LOB_PK_QUOTE, "book_ticker_messages"},
    {"{\"e\":\"bookTicker\",\"u\":4,\"E\":1700000000000,\"T\":1700000000000,\"s\":\"BTCUSDT\","
     "\"b\":\"1\",\"B\":\"1\",\"a\":\"2\",\"A\":\"1\"}",
     LOB_PK_QUOTE, "book_ticker_messages"},
    /* both a bookTicker's and a snapshot's fields: the quote wins, in both users */
    {"{\"u\":4,\"b\":\"1\",\"B\":\"1\",\"a\":\"2\",\"A\":\"1\",\"lastUpdateId\":3,\"bids\":[],"
     "\"asks\":[]}",
     LOB_PK_QUOTE, "book_ticker_messages"},
    {"{\"lastUpdateId\":1027024,\"bids\":[[\"4.0\",\"431.0\"]],\"asks\":[]}", LOB_PK_SNAPSHOT,
     "snapshots"},
    {"{\"lastUpdateId\":1027024,\"E\":1589436922972,\"T\":1589436922959,\"bids\":[],"
     "\"asks\":[[\"4.0\",\"1\"]]}",
     LOB_PK_SNAPSHOT, "snapshots"},
    {"{\"lobfast\":{\"event\":\"connected\",\"conn\":1}}", LOB_PK_COLLECTOR, "collector_events"},
    {"{\"stream\":\"!serverShutdown\",\"data\":{\"e\":\"serverShutdown\",\"E\":1770123456789}}",
     LOB_PK_SHUTDOWN, "unknown_messages"},
    {"{\"result\":null,\"id\":1}", LOB_PK_REPLY, "unknown_messages"},
    {"{\"code\":-1121,\"msg\":\"Invalid symbol.\"}", LOB_PK_ERROR, "unknown_messages"},
    {"{\"stream\":\"btcusdt@markPrice\",\"data\":{\"e\":\"markPriceUpdate\",\"E\":1,\"p\":\"1\"}}",
     LOB_PK_OTHER, "unknown_messages"},
    /* levels on a top-N stream without lastUpdateId or an event: nothing known */
    {"{\"stream\":\"btcusdt@depth5\",\"data\":{\"bids\":[],\"asks\":[]}}", LOB_PK_OTHER,
     "unknown_messages"},
    {"{}", LOB_PK_OTHER, "unknown_messages"},
};

/* Fields of the wrong JSON type: the collector skips them (and records the message), the
 * reader refuses the line; what both see of the kind is the same. */
static const struct {
    const char *msg;
    int kind;
    int column; /* of the reader's error, in "1 <msg>" */
} mistyped[] = {
    {"{\"e\":7,\"E\":1}", LOB_PK_OTHER, 8},
    {"{\"e\":\"trade\",\"t\":\"12\",\"p\":\"1\",\"q\":\"1\",\"m\":true}", LOB_PK_TRADE, 20},
    {"{\"e\":\"depthUpdate\",\"U\":1,\"u\":null,\"b\":[],\"a\":[]}", LOB_PK_DIFF, 32},
    {"{\"e\":\"aggTrade\",\"a\":true,\"p\":\"1\",\"q\":\"1\",\"m\":true}", LOB_PK_AGG, 23},
};

static void
test_kinds(void)
{
    static const char *const counters[] = {
        "depth_messages", "trade_messages",         "agg_trade_messages", "book_ticker_messages",
        "snapshots",      "partial_depth_messages", "collector_events",   "unknown_messages"};
    int peek_ok = 1, reader_ok = 1;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        lob_peek pk;
        lob_error err;
        memset(&err, 0, sizeof err);
        int rc = lob_peek_binance(kinds[i].msg, strlen(kinds[i].msg), &pk, &err);
        if (rc != 0 || pk.kind != kinds[i].kind) {
            printf("    collector: %s -> rc %d kind %d, expected kind %d\n", kinds[i].msg, rc,
                   pk.kind, kinds[i].kind);
            peek_ok = 0;
        }
        char line[512];
        snprintf(line, sizeof line, "1700000000000000000 %s\n", kinds[i].msg);
        run x = read_text(line, 0);
        int counted = x.rc == 0;
        for (size_t c = 0; counted && c < sizeof counters / sizeof counters[0]; c++) {
            int want = strcmp(counters[c], kinds[i].counter) == 0;
            counted = stat_int(x.r, counters[c]) == want;
        }
        if (!counted) {
            printf("    reader: %s -> rc %d (%s), expected one of '%s'\n", kinds[i].msg, x.rc,
                   x.err.msg, kinds[i].counter);
            reader_ok = 0;
        }
        lob_reader_free(x.r);
    }
    test_cond("kinds: the collector classifies every kind of the table", peek_ok);
    test_cond("kinds: the reader counts every kind of the table as the collector sees it",
              reader_ok);

    int lenient = 1, strict = 1;
    for (size_t i = 0; i < sizeof mistyped / sizeof mistyped[0]; i++) {
        lob_peek pk;
        lob_error err;
        memset(&err, 0, sizeof err);
        const char *m = mistyped[i].msg;
        lenient &= lob_peek_binance(m, strlen(m), &pk, &err) == 0 && pk.kind == mistyped[i].kind;
        char line[512];
        snprintf(line, sizeof line, "1 %s\n", m);
        run x = read_text(line, 0);
        char col[32];
        snprintf(col, sizeof col, "column %d:", mistyped[i].column);
        if (!(x.rc == LOB_E_FORMAT && strstr(x.err.msg, col) != NULL)) {
            printf("    reader: %s -> rc %d (%s), expected %s\n", m, x.rc, x.err.msg, col);
            strict = 0;
        }
        lob_reader_free(x.r);
    }
    test_cond("kinds: the collector skips a field of the wrong type", lenient);
    test_cond("kinds: the reader refuses a field of the wrong type, naming its column", strict);
}

/* ------------------------------------------------------------------ files */

static void
test_files(void)
{
    /* 400 trades, gzip'd, cut in the middle: the complete lines before the cut survive */
    char *text = malloc(400 * 100);
    size_t n = 0;
    for (int i = 0; i < 400; i++) {
        n += (size_t)sprintf(text + n,
                             "%d {\"e\":\"trade\",\"t\":%d,\"p\":\"%d.5\",\"q\":\"1\",\"m\":%s}\n",
                             1000 + i, i, 100 + i % 37, i % 2 ? "true" : "false");
    }
    uLongf cap = compressBound((uLong)n) + 64;
    unsigned char *gz = malloc(cap);
    z_stream z;
    memset(&z, 0, sizeof z);
    deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    z.next_in = (Bytef *)text;
    z.avail_in = (uInt)n;
    z.next_out = gz;
    z.avail_out = (uInt)cap;
    deflate(&z, Z_FINISH);
    size_t gzn = cap - z.avail_out;
    deflateEnd(&z);

    const char *path = lob_test_path("trades.gz");
    lob_opts o = opts_for(NULL);
    lob_test_write(path, gz, gzn);
    run x = read_path(path, 0, &o);
    test_cond("files: a whole gzip file", x.rc == 0 && lob_reader_table(x.r, T_TRADES)->n == 400 &&
                                              stat_int(x.r, "bytes") == (int64_t)n);
    lob_reader_free(x.r);

    lob_test_write(path, gz, gzn / 2);
    x = read_path(path, 0, &o);
    int64_t rows = x.r ? (int64_t)lob_reader_table(x.r, T_TRADES)->n : -1;
    test_cond("files: a cut gzip file keeps its complete lines and reports the cut",
              x.rc == 0 && rows > 0 && rows < 400 && stat_int(x.r, "truncated_files") == 1 &&
                  stat_int(x.r, "truncated_bytes") == (int64_t)(gzn / 2) &&
                  stat_int(x.r, "lines") == rows);
    test_cond("files: the unterminated line at the cut is counted, not parsed",
              stat_int(x.r, "partial_line_bytes") > 0 && stat_int(x.r, "bad_lines") == 0);
    lob_reader_free(x.r);

    /* a 3 MB line (longer than the reader's 1 MiB buffer) between two short ones */
    size_t big = (size_t)3 << 20;
    char *longtext = malloc(big + 200);
    size_t k = (size_t)sprintf(longtext, "1 {\"e\":\"trade\",\"t\":1,\"p\":\"1\",\"q\":\"1\","
                                         "\"m\":true}\n2 {\"x\":\"");
    memset(longtext + k, 'a', big);
    k += big;
    k += (size_t)sprintf(longtext + k, "\"}\n3 {\"e\":\"trade\",\"t\":2,\"p\":\"1\",\"q\":\"1\","
                                       "\"m\":true}\n");
    lob_test_write(path, longtext, k);
    x = read_path(path, 0, &o);
    test_cond("files: a line longer than the read buffer",
              x.rc == 0 && lob_reader_table(x.r, T_TRADES)->n == 2 && stat_int(x.r, "lines") == 3 &&
                  stat_int(x.r, "bytes") == (int64_t)k && stat_int(x.r, "unknown_messages") == 1);
    lob_reader_free(x.r);
    free(longtext);

    /* pump in chunks of at most ~50 rows, draining between pumps like the binding does */
    lob_test_write(path, gz, gzn);
    lob_reader *r = NULL;
    lob_error err;
    memset(&err, 0, sizeof err);
    int rc = lob_reader_new(&r, &lob_format_binance, &o, 0, &err);
    rc = rc ? rc : lob_reader_open(r, path, &err);
    int eof = 0, pumps = 0;
    size_t total = 0;
    int64_t last_id = -1, ids_in_order = 1;
    while (rc == 0 && !eof && pumps < 1000) {
        rc = lob_reader_pump(r, 50, &eof, &err);
        pumps++;
        lob_table *t = lob_reader_table(r, T_TRADES);
        if (t->n > 50) {
            ids_in_order = 0;
        }
        for (size_t i = 0; i < t->n; i++) {
            ids_in_order &= LOB_COL(t, LOB_T_TRADE_ID, int64_t)[i] == last_id + 1;
            last_id = LOB_COL(t, LOB_T_TRADE_ID, int64_t)[i];
        }
        total += t->n;
        void *cols[LOB_MAX_COLS];
        size_t bytes[LOB_MAX_COLS];
        lob_table_detach(t, cols, bytes);
        for (int i = 0; i < t->ncol; i++) {
            lob_block_free(cols[i], bytes[i]);
        }
    }
    test_cond("files: pumping in chunks of 50 rows loses and repeats nothing",
              rc == 0 && eof && total == 400 && ids_in_order && pumps == 9);
    lob_reader_free(r);

    /* a second file continues the same reader; line numbers restart */
    r = NULL;
    rc = lob_reader_new(&r, &lob_format_binance, &o, 0, &err);
    rc = rc ? rc : lob_reader_open(r, path, &err);
    eof = 0;
    while (rc == 0 && !eof) {
        rc = lob_reader_pump(r, 0, &eof, &err);
    }
    /* receive times continue the first file's (they must not go back) */
    lob_test_write(lob_test_path("bad.txt"), "9000000000000000000 {}\nnot a line\n", 34);
    rc = rc ? rc : lob_reader_open(r, lob_test_path("bad.txt"), &err);
    rc = rc ? rc : lob_reader_pump(r, 0, &eof, &err);
    test_cond("files: a second file keeps counting files, restarts line numbers",
              rc == LOB_E_FORMAT && err.line == 2 && err.offset == 23 &&
                  stat_int(r, "files") == 2 && lob_reader_table(r, T_TRADES)->n == 400);
    lob_reader_free(r);

    r = NULL;
    rc = lob_reader_new(&r, &lob_format_binance, &o, 0, &err);
    rc = rc ? rc : lob_reader_open(r, lob_test_path("missing.txt"), &err);
    test_cond("files: opening a missing file -> LOB_E_IO", rc == LOB_E_IO);
    rc = lob_reader_pump(r, 0, &eof, &err);
    test_cond("files: pump without an open file is at its end", rc == 0 && eof == 1);
    lob_reader_free(r);
    lob_reader_free(NULL);

    free(text);
    free(gz);
}

/* ------------------------------------------------------------------ the window's book */

/* The recording of test_spot_sync: synced at 103, a stale diff at 105, a gap at 106, a
 * resync at 108. */
#define WINDOW_TEXT                                                                                \
    SPOT_DIFF("1700000000000000101", "1700000000100", "1", "5", "[\"99\",\"1\"]", "")              \
    SPOT_DIFF("1700000000000000102", "1700000000200", "6", "12", "[\"100\",\"2\"]",                \
              "[\"101\",\"0\"]")                                                                   \
    "1700000000000000103 {\"lastUpdateId\":10,\"bids\":[[\"100\",\"1\"],[\"99\",\"3\"]],"          \
    "\"asks\":[[\"101\",\"2\"]]}\n" SPOT_DIFF("1700000000000000104", "1700000000300", "13", "15",  \
                                              "[\"98\",\"1\"]", "")                                \
        SPOT_DIFF("1700000000000000105", "1700000000300", "14", "15", "", "[\"102\",\"5\"]")       \
            SPOT_DIFF("1700000000000000106", "1700000000400", "20", "25", "[\"97\",\"1\"]", "")    \
                SPOT_DIFF("1700000000000000107", "1700000000500", "26", "30", "",                  \
                          "[\"103\",\"1\"]") "1700000000000000108 "                                \
                                             "{\"lastUpdateId\":27,\"bids\":[[\"100\",\"5\"]],"    \
                                             "\"asks\":[]}\n"

static void
test_window_book(void)
{
    lob_opts o = opts_for(NULL);
    o.keep_book = 1;
    o.start_ns = 1700000000000000105LL;
    run x = read_text_opts(WINDOW_TEXT, 0, &o);
    test_cond("window book: reads without error", x.rc == 0);
    test_cond("window book: the replayed book, then the window's rows as a full read gives them",
              depth_is(x.r, "b 100 2 15 SR|b 99 3 15 S|b 98 1 15 SE|"
                            "- nan nan 25 GE|"
                            "b 100 5 27 SRE|a 103 1 30 E|"));
    const lob_table *d = lob_reader_table(x.r, T_DEPTH);
    test_cond("window book: stamped with its last update's exchange time and the window's first "
              "line's receive time",
              d->n == 6 && LOB_COL(d, LOB_D_TS, int64_t)[0] == 1700000000300000000LL &&
                  LOB_COL(d, LOB_D_LOCAL_TS, int64_t)[2] == 1700000000000000105LL);
    test_cond("window book: the counters are the window's",
              stat_int(x.r, "book_at_start") == 1 && stat_int(x.r, "replayed_lines") == 4 &&
                  stat_int(x.r, "outside_window") == 4 && stat_int(x.r, "gaps") == 1 &&
                  stat_int(x.r, "resets") == 2 && stat_int(x.r, "stale_diffs") == 1 &&
                  stat_int(x.r, "depth_messages") == 3 && stat_int(x.r, "snapshots") == 1 &&
                  stat_int(x.r, "synced_at") == 1700000000000000105LL);
    lob_reader_free(x.r);

    o.start_ns = 1700000000000000107LL; /* after the gap: no book until the resync */
    x = read_text_opts(WINDOW_TEXT, 0, &o);
    test_cond("window book: after a gap, the depth starts at the resync",
              x.rc == 0 && depth_is(x.r, "b 100 5 27 SRE|a 103 1 30 E|") &&
                  stat_int(x.r, "book_at_start") == 0 &&
                  stat_int(x.r, "synced_at") == 1700000000000000108LL);
    lob_reader_free(x.r);

    o.start_ns = INT64_MAX - 1; /* all replayed, checkpoints at every synced line */
    o.checkpoint_every = 1;
    x = read_text_opts(WINDOW_TEXT, 0, &o);
    const lob_table *cp = x.r ? lob_binance_checkpoints(lob_reader_state(x.r), 0) : NULL;
    const lob_table *lv = x.r ? lob_binance_checkpoints(lob_reader_state(x.r), 1) : NULL;
    test_cond("window book: a full replay emits nothing",
              x.rc == 0 && lob_reader_table(x.r, T_DEPTH)->n == 0);
    test_cond("window book: checkpoints before each line while synced",
              cp && cp->n == 3 && LOB_COL(cp, LOB_CP_T, int64_t)[0] == 1700000000000000104LL &&
                  LOB_COL(cp, LOB_CP_T, int64_t)[2] == 1700000000000000106LL);
    if (cp && cp->n == 3 && lv->n == 2 + 3 + 3) {
        const double *px = LOB_COL(lv, LOB_CPL_PRICE, double);
        const double *qty = LOB_COL(lv, LOB_CPL_QTY, double);
        test_cond("window book: a checkpoint holds the book and the sequence state",
                  LOB_COL(cp, LOB_CP_LAST_U, int64_t)[1] == 15 &&
                      LOB_COL(cp, LOB_CP_LAST_LOCAL, int64_t)[1] == 1700000000000000104LL &&
                      LOB_COL(cp, LOB_CP_MARKET, int64_t)[1] == 1 &&
                      LOB_COL(cp, LOB_CP_NBID, int64_t)[1] == 3 &&
                      LOB_COL(cp, LOB_CP_NASK, int64_t)[1] == 0 && px[2] == 100 && qty[2] == 2 &&
                      px[4] == 98 && LOB_COL(lv, LOB_CPL_SIDE, int8_t)[4] == 1);
        /* a fresh reader restored from the checkpoint before line 105 reads on from there */
        lob_binance_cp c = {15,
                            LOB_COL(cp, LOB_CP_LAST_TS, int64_t)[1],
                            1700000000000000104LL,
                            1,
                            LOB_COL(lv, LOB_CPL_SIDE, int8_t) + 2,
                            px + 2,
                            qty + 2,
                            3};
        const char *rest = strstr(WINDOW_TEXT, "1700000000000000105 ");
        lob_opts w = opts_for(NULL);
        w.keep_book = 1;
        w.start_ns = 1700000000000000105LL;
        lob_reader *r = NULL;
        lob_error err = {0};
        int rc = lob_reader_new(&r, &lob_format_binance, &w, 0, &err);
        rc = rc ? rc : lob_binance_restore(lob_reader_state(r), &c, &err);
        rc = rc ? rc : lob_binance_restore(lob_reader_state(r), &c, &err);
        test_cond("window book: a reader is restored once", rc == LOB_E_ARG);
        lob_reader_free(r);
        r = NULL;
        rc = lob_reader_new(&r, &lob_format_binance, &w, 0, &err);
        rc = rc ? rc : lob_binance_restore(lob_reader_state(r), &c, &err);
        lob_test_write(lob_test_path("rest.txt"), rest, strlen(rest));
        rc = rc ? rc : lob_reader_open(r, lob_test_path("rest.txt"), &err);
        int eof = 0;
        while (rc == 0 && !eof) {
            rc = lob_reader_pump(r, 0, &eof, &err);
        }
        rc = rc ? rc : lob_reader_finish(r, &err);
        test_cond("window book: restored from a checkpoint, the same window",
                  rc == 0 && depth_is(r, "b 100 2 15 SR|b 99 3 15 S|b 98 1 15 SE|"
                                         "- nan nan 25 GE|"
                                         "b 100 5 27 SRE|a 103 1 30 E|"));
        lob_reader_free(r);
        double bad_px[1] = {-1}, one[1] = {1};
        int8_t bid[1] = {1};
        lob_binance_cp b = {15, 0, 1, 1, bid, bad_px, one, 1};
        r = NULL;
        rc = lob_reader_new(&r, &lob_format_binance, &w, 0, &err);
        rc = rc ? rc : lob_binance_restore(lob_reader_state(r), &b, &err);
        test_cond("window book: a checkpoint level with a price <= 0 is refused", rc == LOB_E_ARG);
        lob_reader_free(r);
    }
    else {
        test_cond("window book: checkpoint levels", 0);
    }
    lob_reader_free(x.r);
}

void
lob_test_binance(void)
{
    test_window_book();
    test_spot_sync();
    test_usdm_sync();
    test_partial_depth();
    test_trades_quotes();
    test_symbols_window_lines();
    test_on_error();
    test_fuzz_findings();
    test_values();
    test_kinds();
    test_files();
}
