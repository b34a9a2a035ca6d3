/* binance.c -- Binance raw lines "<receive ns> <message>" -> depth, trades, quotes.
 *
 * Messages are combined-stream frames {"stream":..,"data":{..}}, raw stream events, REST
 * depth snapshot bodies {"lastUpdateId":..}, or collector events {"lobfast":{..}}.  Fields
 * are recognised by name and JSON type, so key order does not matter.  What kind a message
 * is, its symbol and its ids come from the one Binance classifier (peek.h), which the
 * collector uses too; the values are parsed in the same walk over the message.
 *
 * Depth follows Binance's local-order-book rules (spot and USD-M differ, see below):
 * diffs are buffered until a snapshot bridges them, stale diffs are dropped, continuity is
 * checked on every diff, and a break emits a GAP marker and waits for the next snapshot.
 * Nothing is emitted for a book that is not known, so every row after a RESET until the
 * next GAP describes the exchange's book exactly.
 */
#include "core/formats/binance.h"

#include "core/book/side.h"
#include "core/formats/json.h"
#include "core/formats/peek.h"
#include "core/formats/sequence.h"
#include "core/formats/text.h"
#include "core/io/reader.h"
#include "core/schema.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { T_DEPTH, T_TRADES, T_AGG, T_QUOTES, T_N };
static const char *const table_names[T_N] = {"depth", "trades", "agg_trades", "quotes"};

enum { MARKET_UNKNOWN, MARKET_SPOT, MARKET_USDM };
enum { WAIT_SNAPSHOT, SYNCED };

/* Buffered diff rows kept while waiting for a snapshot.  A snapshot can only bridge recent
 * diffs, so beyond this the oldest half is dropped (and counted) instead of growing. */
#define PEND_MAX_ROWS ((size_t)1 << 22)

/* A diff message buffered while no snapshot has bridged the stream. */
typedef struct {
    int64_t U, u, pu; /* first, final, previous-final (USD-M) update id */
    int64_t ts;       /* exchange time, ns */
    int64_t local;    /* receive time, ns (a diff without levels has no row to hold it) */
    size_t row0;      /* first row in pend_rows */
    size_t nrows;     /* rows in pend_rows */
} pend_msg;

/* Values seen in one message (bit set in msg.have); what names and orders it is in msg.f. */
enum {
    H_T = 1 << 0,
    H_p = 1 << 1,
    H_q = 1 << 2,
    H_bpx = 1 << 3,
    H_bqty = 1 << 4,
    H_apx = 1 << 5,
    H_aqty = 1 << 6,
    H_m = 1 << 7,
    H_X = 1 << 8,
};

typedef struct lob_binance_s lob_binance;

typedef struct {
    lob_peek f;                        /* kind, stream, symbol, ids (peek.h) */
    lob_table *lv;                     /* where "b"/"a" levels go (after its rows) */
    lob_table *sn;                     /* where "bids"/"asks" levels go (after its rows) */
    unsigned have;                     /* H_* bits */
    const char *X;                     /* raw string slice */
    size_t Xlen;                       /* its length */
    int64_t T;                         /* transaction time (exchange units) */
    double p, q, bpx, bqty, apx, aqty; /* trade price/qty, best bid/ask */
    int m;                             /* buyer is maker */
    size_t nlevels;                    /* "b"/"a" rows parsed into the depth table's tail */
    size_t nsnap;                      /* "bids"/"asks" rows parsed into snap_new */
} msg;

struct lob_binance_s {
    lob_table out[T_N];       /* depth, trades, agg_trades, quotes */
    lob_symbols syms;         /* the selected symbol and the others met */
    int64_t start_ns, end_ns; /* receive-time window */
    int64_t last_local;       /* receive time of the previous line (must not go back) */
    int market;               /* MARKET_*, from the first diff */
    int state;                /* WAIT_SNAPSHOT or SYNCED */
    int64_t last_u;           /* final update id applied (SYNCED) */
    int64_t last_ts;          /* exchange time of the last depth row emitted */
    lob_table pend_rows;      /* rows of buffered diffs */
    pend_msg *pend;           /* buffered diffs */
    size_t npend, pend_cap;   /* count and capacity of pend */
    lob_table snap;           /* the snapshot waiting for a bridging diff */
    lob_table snap_new;       /* the snapshot being parsed */
    int has_snap;             /* snap holds a snapshot */
    int64_t snap_id;          /* its lastUpdateId */
    int64_t snap_ts;          /* its exchange time (ns), or -1 when it has none */
    int64_t snap_local;       /* its receive time */
    /* the window's book (keep_book): lines before start_ns build it instead of rows */
    int keep_book;           /* replay the lines before the window */
    int opened;              /* the window's first line was met */
    lob_side bid, ask;       /* the replayed book, keyed by price_key() */
    int64_t *scratch;        /* keys of one side, to emit it */
    size_t scratch_cap;      /* its capacity */
    int book_at_start;       /* -1 not opened, 0 opened without a book, 1 with one */
    int64_t synced_at;       /* receive time the window's book became known, or -1 */
    int64_t cp_every;        /* checkpoint interval (ns), 0: none */
    int64_t cp_last;         /* receive time of the last checkpoint */
    int cp_due;              /* a sync happened since the last checkpoint */
    lob_table cp, cp_levels; /* checkpoints recorded (binance.h) */
    /* counters */
    int64_t n_depth, n_trade, n_agg, n_quote, n_snapshot, n_partial, n_collector, n_unknown,
        n_outside, n_blank, n_gaps, n_resets, n_dropped, n_stale, n_snap_rejected, n_snap_unused,
        n_snap_ambiguous, n_nonmarket, n_overflow, n_replayed;
};

const lob_column lob_cp_schema[LOB_CP_NCOL] = {
    {"t", LOB_I64, 8, 1, 0},          {"last_u", LOB_I64, 8, 1, 0}, {"last_ts", LOB_I64, 8, 1, 0},
    {"last_local", LOB_I64, 8, 1, 0}, {"market", LOB_I64, 8, 1, 0}, {"nbid", LOB_I64, 8, 1, 0},
    {"nask", LOB_I64, 8, 1, 0},
};
const lob_column lob_cp_level_schema[LOB_CPL_NCOL] = {
    {"side", LOB_I8, 1, 1, 0},
    {"price", LOB_F64, 8, 1, 0},
    {"qty", LOB_F64, 8, 1, 0},
};

/* ------------------------------------------------------------------ errors */

static int
fail_at(lob_error *err, int code, const char *line, const lob_json *j)
{
    size_t col = (size_t)(j->p - line);
    size_t left = (size_t)(j->end - j->p); /* the line is not NUL-terminated */
    char show[LOB_SHOW_BUF];
    return lob_error_set(err, code, "column %zu: expected %s, found '%s'%s", col + 1,
                         j->expected ? j->expected : "valid JSON",
                         lob_show(show, sizeof show, j->p, left, 24), left ? "" : "(end of line)");
}

/* ------------------------------------------------------------------ parsing */

/* [[price, qty, ...], ...] into rows t->n + *count ... (not committed). */
static int
parse_levels(lob_json *j, lob_table *t, size_t *count, int side)
{
    if (!lob_json_eat(j, '[')) {
        return lob_json_fail(j, "'[' starting the levels", LOB_E_FORMAT);
    }
    if (lob_json_eat(j, ']')) {
        return LOB_OK;
    }
    do {
        double px, qty;
        if (!lob_json_eat(j, '[')) {
            return lob_json_fail(j, "'[' starting a [price, qty] level", LOB_E_FORMAT);
        }
        LOB_FORWARD_IF_ERROR(lob_json_decimal(j, &px));
        if (!lob_json_eat(j, ',')) {
            return lob_json_fail(j, "',' between price and qty", LOB_E_FORMAT);
        }
        const char *qpos = j->p;
        LOB_FORWARD_IF_ERROR(lob_json_decimal(j, &qty));
        if (!(px > 0) || !(qty >= 0)) {
            j->p = qpos;
            return lob_json_fail(j, "a positive price and a non-negative qty", LOB_E_RANGE);
        }
        while (lob_json_eat(j, ',')) {
            LOB_FORWARD_IF_ERROR(lob_json_skip(j, 2));
        }
        if (!lob_json_eat(j, ']')) {
            return lob_json_fail(j, "']' closing a level", LOB_E_FORMAT);
        }
        if (lob_table_room(t, *count + 1) < 0) {
            return lob_json_fail(j, "memory for the levels", LOB_E_NOMEM);
        }
        size_t i = t->n + (*count)++;
        LOB_COL(t, LOB_D_SIDE, int8_t)[i] = (int8_t)side;
        LOB_COL(t, LOB_D_PRICE, double)[i] = px;
        LOB_COL(t, LOB_D_QTY, double)[i] = qty;
    } while (lob_json_eat(j, ','));
    return lob_json_eat(j, ']') ? LOB_OK : lob_json_fail(j, "',' or ']'", LOB_E_FORMAT);
}

/* Parse a value into dst, note it in m->have, and tell the walk it was taken. */
#define TAKE(fn, dst, bit)                                                                         \
    do {                                                                                           \
        LOB_FORWARD_IF_ERROR(fn(j, dst));                                                          \
        m->have |= (bit);                                                                          \
        return 1;                                                                                  \
    } while (0)

/* The values of a message, in the walk that classifies it (lob_binance_value_fn): depth
 * levels, prices and quantities, T, m and X; a field of the wrong type is an error.  Inlined
 * into the walk (peek.h), so a member costs one call as it did before the walk was shared. */
static inline __attribute__((always_inline)) int
parse_value(void *ctx, lob_json *j, const char *k, size_t kn)
{
    msg *m = ctx;
    int c = lob_json_peek(j);
    if (kn != 1) {
        if (c == '[' && (LOB_JSON_IS(k, kn, "bids") || LOB_JSON_IS(k, kn, "asks"))) {
            LOB_FORWARD_IF_ERROR(parse_levels(j, m->sn, &m->nsnap, k[0] == 'b' ? 1 : -1));
            return 1;
        }
        return 0;
    }
    switch (k[0]) {
    case 'T': TAKE(lob_json_int64, &m->T, H_T);
    case 'p': TAKE(lob_json_decimal, &m->p, H_p);
    case 'q': TAKE(lob_json_decimal, &m->q, H_q);
    case 'B': TAKE(lob_json_decimal, &m->bqty, H_bqty);
    case 'A': TAKE(lob_json_decimal, &m->aqty, H_aqty);
    case 'm': TAKE(lob_json_bool, &m->m, H_m);
    case 'X':
        LOB_FORWARD_IF_ERROR(lob_json_string(j, &m->X, &m->Xlen));
        m->have |= H_X;
        return 1;
    case 'b':
    case 'a':
        /* depth levels or a bookTicker price (an aggTrade's "a" id is the walk's) */
        if (c == '[') {
            LOB_FORWARD_IF_ERROR(parse_levels(j, m->lv, &m->nlevels, k[0] == 'b' ? 1 : -1));
            return 1;
        }
        if (c == '"' && k[0] == 'b') {
            TAKE(lob_json_decimal, &m->bpx, H_bpx);
        }
        if (c == '"') {
            TAKE(lob_json_decimal, &m->apx, H_apx);
        }
        return 0;
    default: return 0;
    }
}

#undef TAKE

/* Exchange time in ns: USD-M T, else E; spot bookTicker and snapshots carry none, so the
 * receive time stands in.  Both E and T must be times in 1970..2262 when present, the one
 * not kept too: a message stamped with a broken time is a broken message. */
static int
exchange_ts(const msg *m, int64_t local, int64_t *ts, lob_error *err)
{
    *ts = local;
    static const char *const names[2] = {"E", "T"};
    for (int i = 0; i < 2; i++) {
        int64_t t = i ? m->T : m->f.E;
        int has = i ? (m->have & H_T) != 0 : (m->f.have & LOB_PK_E) != 0;
        if (has && lob_epoch_to_ns(t, ts) < 0) {
            return lob_error_set(err, LOB_E_RANGE,
                                 "exchange time %s=%lld is not a time between 1970 and 2262 "
                                 "(in s, ms, us or ns)",
                                 names[i], (long long)t);
        }
    }
    return LOB_OK; /* the last one converted is T when there is one, else E */
}

/* ------------------------------------------------------------------ depth sync */

static int
emit_marker(lob_binance *b, int64_t ts, int64_t local, int64_t update_id, unsigned flags)
{
    lob_table *t = &b->out[T_DEPTH];
    LOB_FORWARD_IF_ERROR(lob_table_room(t, 1));
    lob_depth_set(t, t->n++, ts, local, 0, NAN, NAN, update_id, flags);
    return LOB_OK;
}

static int
seq_check(const lob_binance *b, int64_t U, int64_t u, int64_t pu)
{
    return lob_seq_check(b->market == MARKET_USDM, b->last_u, U, u, pu);
}

static void
pend_drop_front(lob_binance *b, size_t k)
{
    if (k == 0) {
        return;
    }
    size_t rows = k < b->npend ? b->pend[k].row0 : b->pend_rows.n;
    lob_table_drop_front(&b->pend_rows, rows);
    memmove(b->pend, b->pend + k, (b->npend - k) * sizeof *b->pend);
    b->npend -= k;
    for (size_t i = 0; i < b->npend; i++) {
        b->pend[i].row0 -= rows;
    }
}

/* Buffer a diff whose rows sit (filled) in the depth table's tail. */
static int
pend_push(lob_binance *b, const pend_msg *hdr)
{
    lob_table *depth = &b->out[T_DEPTH];
    if (b->npend == b->pend_cap) {
        size_t cap = b->pend_cap ? b->pend_cap * 2 : 64;
        pend_msg *p = realloc(b->pend, cap * sizeof *p);
        if (p == NULL) {
            return LOB_E_NOMEM;
        }
        b->pend = p;
        b->pend_cap = cap;
    }
    pend_msg h = *hdr;
    h.row0 = b->pend_rows.n;
    LOB_FORWARD_IF_ERROR(lob_table_append(&b->pend_rows, depth, depth->n, h.nrows));
    b->pend[b->npend++] = h;
    if (b->pend_rows.n > PEND_MAX_ROWS) {
        size_t half = b->npend / 2 ? b->npend / 2 : 1;
        b->n_dropped += (int64_t)half;
        b->n_overflow += (int64_t)half;
        pend_drop_front(b, half);
    }
    return LOB_OK;
}

/* Apply buffered diffs after a snapshot.  The first one bridges the snapshot (checked by
 * the caller); the others must chain.  A break among them goes back to waiting. */
static int
replay_pending(lob_binance *b)
{
    lob_table *depth = &b->out[T_DEPTH];
    for (size_t i = 0; i < b->npend; i++) {
        const pend_msg *h = &b->pend[i];
        switch (i == 0 ? LOB_SEQ_OK : seq_check(b, h->U, h->u, h->pu)) {
        case LOB_SEQ_STALE: b->n_stale++; break;
        case LOB_SEQ_GAP: {
            b->n_gaps++;
            LOB_FORWARD_IF_ERROR(
                emit_marker(b, h->ts, h->local, h->u, LOB_F_GAP | LOB_F_END_OF_MESSAGE));
            b->state = WAIT_SNAPSHOT;
            pend_drop_front(b, i);
            return LOB_OK;
        }
        default:
            LOB_FORWARD_IF_ERROR(lob_table_append(depth, &b->pend_rows, h->row0, h->nrows));
            b->last_u = h->u;
            b->last_ts = h->ts;
        }
    }
    pend_drop_front(b, b->npend);
    return LOB_OK;
}

/* With a snapshot waiting: drop diffs it already contains, then sync if the first
 * remaining diff bridges it, or reject it as too old if that diff is already past it. */
static int
try_sync(lob_binance *b)
{
    int64_t L = b->snap_id;
    int usdm = b->market == MARKET_USDM;
    size_t i = 0;
    while (i < b->npend && lob_seq_covered(usdm, L, b->pend[i].u)) {
        i++;
    }
    b->n_dropped += (int64_t)i;
    pend_drop_front(b, i);
    if (b->npend == 0) {
        return LOB_OK; /* the next diff decides */
    }
    const pend_msg *f = &b->pend[0];
    int bridges = lob_seq_bridges(usdm, L, f->U, f->u, f->pu);
    if (!bridges) {
        b->n_snap_rejected++; /* older than the diffs we hold: wait for a newer one */
        b->has_snap = 0;
        return LOB_OK;
    }
    /* The snapshot takes effect just before its bridging diff: same exchange time (or its
     * own, if earlier), never before a row already emitted. */
    int64_t ts = f->ts;
    if (b->snap_ts >= 0 && b->snap_ts < ts) {
        ts = b->snap_ts;
    }
    if (ts < b->last_ts) {
        ts = b->last_ts;
    }
    lob_table *depth = &b->out[T_DEPTH];
    size_t k = b->snap.n;
    if (k == 0) {
        LOB_FORWARD_IF_ERROR(emit_marker(b, ts, b->snap_local, L,
                                         LOB_F_SNAPSHOT | LOB_F_RESET | LOB_F_END_OF_MESSAGE));
    }
    else {
        LOB_FORWARD_IF_ERROR(lob_table_room(depth, k));
        const lob_table *s = &b->snap;
        for (size_t r = 0; r < k; r++) {
            unsigned fl = LOB_F_SNAPSHOT | (r == 0 ? LOB_F_RESET : 0) |
                          (r == k - 1 ? LOB_F_END_OF_MESSAGE : 0);
            lob_depth_set(depth, depth->n + r, ts, b->snap_local, LOB_COL(s, LOB_D_SIDE, int8_t)[r],
                          LOB_COL(s, LOB_D_PRICE, double)[r], LOB_COL(s, LOB_D_QTY, double)[r], L,
                          fl);
        }
        depth->n += k;
    }
    b->n_resets++;
    b->has_snap = 0;
    b->state = SYNCED;
    b->cp_due = 1;
    if (b->opened && b->synced_at < 0) {
        b->synced_at = b->last_local; /* the line that brought the snapshot or bridging diff */
    }
    b->last_u = L;
    b->last_ts = ts;
    return replay_pending(b);
}

/* ------------------------------------------------------------------ the window's book */

/* A price's key on its side: the bits of a positive double order like its value, so bids
 * are keyed by them and asks by their negation (the best level has the largest key). */
static int64_t
price_key(int side, double px)
{
    int64_t k;
    memcpy(&k, &px, sizeof k);
    return side > 0 ? k : -k;
}

static double
key_price(int side, int64_t key)
{
    int64_t k = side > 0 ? key : -key;
    double px;
    memcpy(&px, &k, sizeof px);
    return px;
}

static void
book_clear(lob_binance *b)
{
    lob_side_clear(&b->bid);
    lob_side_clear(&b->ask);
}

/* Apply the depth rows a replayed line produced to the book, then drop them. */
static int
book_fold(lob_binance *b)
{
    lob_table *t = &b->out[T_DEPTH];
    const int8_t *side = LOB_COL(t, LOB_D_SIDE, int8_t);
    const double *px = LOB_COL(t, LOB_D_PRICE, double);
    const double *qty = LOB_COL(t, LOB_D_QTY, double);
    const uint8_t *fl = LOB_COL(t, LOB_D_FLAGS, uint8_t);
    for (size_t i = 0; i < t->n; i++) {
        if (fl[i] & (LOB_F_RESET | LOB_F_GAP)) {
            book_clear(b);
        }
        if (side[i] != 0 &&
            lob_side_set(side[i] > 0 ? &b->bid : &b->ask, price_key(side[i], px[i]), qty[i]) < 0) {
            return LOB_E_NOMEM;
        }
    }
    t->n = 0;
    return LOB_OK;
}

/* The levels of one side, best first: prices into px, sizes into qty (room for s->n). */
static int
book_side(lob_binance *b, int side, double *px, double *qty)
{
    const lob_side *s = side > 0 ? &b->bid : &b->ask;
    if (s->n > b->scratch_cap) {
        int64_t *p = realloc(b->scratch, s->n * sizeof *p);
        if (p == NULL) {
            return LOB_E_NOMEM;
        }
        b->scratch = p;
        b->scratch_cap = s->n;
    }
    size_t n = lob_side_top(s, s->n, b->scratch, qty);
    for (size_t r = 0; r < n; r++) {
        px[r] = key_price(side, b->scratch[r]);
    }
    return LOB_OK;
}

/* The window opens (its first line): the counters restart, and the replayed book, when it
 * is known, becomes SNAPSHOT|RESET rows stamped with the exchange time of its last update
 * and the receive time of this line. */
static int
open_window(lob_binance *b, int64_t local)
{
    b->opened = 1;
    b->n_depth = b->n_trade = b->n_agg = b->n_quote = b->n_snapshot = b->n_partial = 0;
    b->n_collector = b->n_unknown = b->n_gaps = b->n_resets = b->n_dropped = b->n_stale = 0;
    b->n_snap_rejected = b->n_snap_unused = b->n_snap_ambiguous = b->n_nonmarket = 0;
    b->n_overflow = 0;
    b->book_at_start = b->state == SYNCED;
    if (b->state == SYNCED) {
        lob_table *t = &b->out[T_DEPTH];
        size_t nb = b->bid.n, k = nb + b->ask.n;
        unsigned snap = LOB_F_SNAPSHOT | LOB_F_RESET;
        if (k == 0) {
            LOB_FORWARD_IF_ERROR(
                emit_marker(b, b->last_ts, local, b->last_u, snap | LOB_F_END_OF_MESSAGE));
        }
        else {
            LOB_FORWARD_IF_ERROR(lob_table_room(t, k));
            double *px = LOB_COL(t, LOB_D_PRICE, double) + t->n;
            double *qty = LOB_COL(t, LOB_D_QTY, double) + t->n;
            LOB_FORWARD_IF_ERROR(book_side(b, 1, px, qty));
            LOB_FORWARD_IF_ERROR(book_side(b, -1, px + nb, qty + nb));
            for (size_t r = 0; r < k; r++) {
                unsigned fl = LOB_F_SNAPSHOT | (r == 0 ? LOB_F_RESET : 0) |
                              (r == k - 1 ? LOB_F_END_OF_MESSAGE : 0);
                lob_depth_set(t, t->n + r, b->last_ts, local, r < nb ? 1 : -1, px[r], qty[r],
                              b->last_u, fl);
            }
            t->n += k;
        }
        b->n_resets = 1;
        b->synced_at = local;
    }
    book_clear(b); /* the window's rows say the rest */
    return LOB_OK;
}

/* Record the synced state before the line received at t (binance.h). */
static int
checkpoint(lob_binance *b, int64_t t)
{
    lob_table *c = &b->cp, *l = &b->cp_levels;
    size_t nb = b->bid.n, k = nb + b->ask.n;
    LOB_FORWARD_IF_ERROR(lob_table_room(c, 1));
    LOB_FORWARD_IF_ERROR(lob_table_room(l, k));
    double *px = LOB_COL(l, LOB_CPL_PRICE, double) + l->n;
    double *qty = LOB_COL(l, LOB_CPL_QTY, double) + l->n;
    LOB_FORWARD_IF_ERROR(book_side(b, 1, px, qty));
    LOB_FORWARD_IF_ERROR(book_side(b, -1, px + nb, qty + nb));
    int8_t *side = LOB_COL(l, LOB_CPL_SIDE, int8_t) + l->n;
    for (size_t r = 0; r < k; r++) {
        side[r] = r < nb ? 1 : -1;
    }
    l->n += k;
    const int64_t row[LOB_CP_NCOL] = {t,         b->last_u,   b->last_ts,       b->last_local,
                                      b->market, (int64_t)nb, (int64_t)(k - nb)};
    for (int i = 0; i < LOB_CP_NCOL; i++) {
        LOB_COL(c, i, int64_t)[c->n] = row[i];
    }
    c->n++;
    b->cp_last = t;
    b->cp_due = 0;
    return LOB_OK;
}

int
lob_binance_restore(void *ctx, const lob_binance_cp *cp, lob_error *err)
{
    lob_binance *b = ctx;
    if (!b->keep_book || b->last_local != 0 || b->market != MARKET_UNKNOWN) {
        return lob_error_set(err, LOB_E_ARG,
                             "only a reader that keeps the book and has read nothing can be "
                             "restored from a checkpoint");
    }
    if (cp->market != MARKET_SPOT && cp->market != MARKET_USDM) {
        return lob_error_set(err, LOB_E_ARG, "checkpoint market %lld is not 1 or 2",
                             (long long)cp->market);
    }
    if (cp->last_u < 0 || cp->last_u == INT64_MAX || cp->last_ts < LOB_TS_MIN ||
        cp->last_ts > LOB_TS_MAX || cp->last_local <= 0 || cp->last_local > LOB_TS_MAX) {
        return lob_error_set(err, LOB_E_ARG,
                             "checkpoint state out of range (last_u=%lld, last_ts=%lld, "
                             "last_local=%lld)",
                             (long long)cp->last_u, (long long)cp->last_ts,
                             (long long)cp->last_local);
    }
    for (size_t i = 0; i < cp->n; i++) {
        int side = cp->side[i];
        double px = cp->price[i], qty = cp->qty[i];
        if ((side != 1 && side != -1) || !(px > 0) || !isfinite(px) || !(qty > 0) ||
            !isfinite(qty)) {
            book_clear(b);
            return lob_error_set(err, LOB_E_ARG,
                                 "checkpoint level %zu is not a level (side %d, price %g, qty %g)",
                                 i, side, px, qty);
        }
        if (lob_side_set(side > 0 ? &b->bid : &b->ask, price_key(side, px), qty) < 0) {
            book_clear(b);
            return lob_error_set(err, LOB_E_NOMEM, "no memory for the checkpoint's book");
        }
    }
    b->market = (int)cp->market;
    b->state = SYNCED;
    b->last_u = cp->last_u;
    b->last_ts = cp->last_ts;
    b->last_local = cp->last_local;
    b->cp_last = cp->last_local;
    return LOB_OK;
}

lob_table *
lob_binance_checkpoints(void *ctx, int which)
{
    lob_binance *b = ctx;
    return which == 0 ? &b->cp : &b->cp_levels;
}

/* ------------------------------------------------------------------ messages */

static int
on_diff(lob_binance *b, const msg *m, int64_t local, lob_error *err)
{
    const lob_peek *f = &m->f;
    if (!(f->have & LOB_PK_U) || !(f->have & LOB_PK_u)) {
        return lob_error_set(err, LOB_E_FORMAT, "depthUpdate without %s",
                             (f->have & LOB_PK_U) ? "'u'" : "'U'");
    }
    if (f->U < 0 || f->u < f->U || f->u == INT64_MAX || ((f->have & LOB_PK_pu) && f->pu < -1)) {
        return lob_error_set(err, LOB_E_RANGE,
                             "depthUpdate ids out of range (U=%lld, u=%lld): expected "
                             "0 <= U <= u < 2^63-1",
                             (long long)f->U, (long long)f->u);
    }
    int64_t ts;
    LOB_FORWARD_IF_ERROR(exchange_ts(m, local, &ts, err));
    b->n_depth++;
    int64_t pu = (f->have & LOB_PK_pu) ? f->pu : 0;
    if (b->market == MARKET_UNKNOWN) {
        b->market = (f->have & LOB_PK_pu) ? MARKET_USDM : MARKET_SPOT;
    }
    lob_table *depth = &b->out[T_DEPTH];
    size_t k = m->nlevels;
    for (size_t r = 0; r < k; r++) {
        size_t i = depth->n + r;
        LOB_COL(depth, LOB_D_TS, int64_t)[i] = ts;
        LOB_COL(depth, LOB_D_LOCAL_TS, int64_t)[i] = local;
        LOB_COL(depth, LOB_D_UPDATE_ID, int64_t)[i] = f->u;
        LOB_COL(depth, LOB_D_FLAGS, uint8_t)[i] = r == k - 1 ? LOB_F_END_OF_MESSAGE : 0;
    }
    if (b->state == SYNCED) {
        switch (seq_check(b, f->U, f->u, pu)) {
        case LOB_SEQ_STALE: b->n_stale++; return LOB_OK;
        case LOB_SEQ_OK:
            depth->n += k; /* the hot path: rows were parsed in place */
            b->last_u = f->u;
            b->last_ts = ts;
            return LOB_OK;
        default: break;
        }
        /* gap: buffer this diff (it may bridge the next snapshot), then mark the break */
        pend_msg h = {f->U, f->u, pu, ts, local, 0, k};
        b->n_gaps++;
        b->state = WAIT_SNAPSHOT;
        pend_drop_front(b, b->npend);
        LOB_FORWARD_IF_ERROR(pend_push(b, &h));
        return emit_marker(b, ts, local, f->u, LOB_F_GAP | LOB_F_END_OF_MESSAGE);
    }
    pend_msg h = {f->U, f->u, pu, ts, local, 0, k};
    LOB_FORWARD_IF_ERROR(pend_push(b, &h));
    return b->has_snap ? try_sync(b) : LOB_OK;
}

static int
on_snapshot(lob_binance *b, const msg *m, int64_t local, int bare, lob_error *err)
{
    int64_t luid = m->f.luid;
    if (luid < 0 || luid == INT64_MAX) {
        return lob_error_set(err, LOB_E_RANGE, "snapshot lastUpdateId %lld out of range",
                             (long long)luid);
    }
    int64_t ts;
    LOB_FORWARD_IF_ERROR(exchange_ts(m, local, &ts, err));
    b->n_snapshot++;
    if (b->state == SYNCED) {
        /* the book is continuous, so the snapshot adds nothing the diffs have not */
        b->n_snap_unused++;
        return LOB_OK;
    }
    /* A REST body names no symbol.  Once other symbols have been met it could be theirs:
     * take it only if its id falls inside the buffered diffs' range, as this symbol's
     * snapshot would (another symbol's ids are unrelated), so it cannot wipe the buffer. */
    if (bare && b->syms.nseen > 0 &&
        !(b->npend > 0 && b->pend[0].U - 1 <= luid && luid <= b->pend[b->npend - 1].u)) {
        b->n_snap_ambiguous++;
        return LOB_OK;
    }
    if (b->has_snap) {
        b->n_snap_unused++; /* replaced before any diff bridged it */
    }
    lob_table tmp = b->snap;
    b->snap = b->snap_new;
    b->snap_new = tmp;
    b->snap.n = m->nsnap;
    b->has_snap = 1;
    int timed = (m->have & H_T) || (m->f.have & LOB_PK_E);
    b->snap_id = luid;
    b->snap_ts = timed ? ts : -1;
    b->snap_local = local;
    if (b->market == MARKET_UNKNOWN && timed) {
        b->market = MARKET_USDM; /* only USD-M snapshots carry E/T */
    }
    return try_sync(b);
}

/* ------------------------------------------------------------------ trades, quotes */

static int
missing(lob_error *err, const char *what, const char *field)
{
    return lob_error_set(err, LOB_E_FORMAT, "%s message without '%s'", what, field);
}

/* What a value must be, per field (depth levels are checked in parse_levels: price > 0,
 * qty >= 0, 0 deleting the level):
 *  - trade and aggTrade: price 'p' > 0 and quantity 'q' > 0 (a fill of nothing, or at no
 *    price, is not a trade);
 *  - bookTicker: prices 'b', 'a' > 0 and sizes 'B', 'A' >= 0.  Binance documents no
 *    convention for an empty side, so a zero or negative price is refused like any other.
 * Decimal text that overflows to infinity or underflows to 0 was refused by the parser. */
static int
bad_value(lob_error *err, const char *what, const char *field, double v, const char *expected)
{
    return lob_error_set(err, LOB_E_RANGE, "%s field '%s' is %.17g: expected %s", what, field, v,
                         expected);
}

static int
on_trade(lob_binance *b, const msg *m, int64_t local, int agg, lob_error *err)
{
    const char *what = agg ? "aggTrade" : "trade";
    unsigned need[] = {H_p, H_q, H_m};
    const char *names[] = {"p", "q", "m"};
    for (int i = 0; i < 3; i++) {
        if (!(m->have & need[i])) {
            return missing(err, what, names[i]);
        }
    }
    if (!(m->f.have & LOB_PK_ID)) {
        return missing(err, what, agg ? "a" : "t"); /* the id the walk took */
    }
    if (!(m->p > 0)) {
        return bad_value(err, what, "p", m->p, "a price > 0");
    }
    if (!(m->q > 0)) {
        return bad_value(err, what, "q", m->q, "a quantity > 0");
    }
    int64_t ts;
    LOB_FORWARD_IF_ERROR(exchange_ts(m, local, &ts, err));
    if (agg) {
        b->n_agg++;
    }
    else {
        b->n_trade++;
    }
    /* USD-M marks insurance-fund and ADL fills with X; they are not market trades */
    if ((m->have & H_X) && !(m->Xlen == 6 && memcmp(m->X, "MARKET", 6) == 0)) {
        b->n_nonmarket++;
        return LOB_OK;
    }
    lob_table *t = &b->out[agg ? T_AGG : T_TRADES];
    LOB_FORWARD_IF_ERROR(lob_table_room(t, 1));
    size_t i = t->n++;
    LOB_COL(t, LOB_T_TS, int64_t)[i] = ts;
    LOB_COL(t, LOB_T_LOCAL_TS, int64_t)[i] = local;
    LOB_COL(t, LOB_T_PRICE, double)[i] = m->p;
    LOB_COL(t, LOB_T_QTY, double)[i] = m->q;
    LOB_COL(t, LOB_T_SIDE, int8_t)[i] = m->m ? -1 : 1; /* maker buyer => taker sold */
    LOB_COL(t, LOB_T_TRADE_ID, int64_t)[i] = m->f.id;
    return LOB_OK;
}

static int
on_quote(lob_binance *b, const msg *m, int64_t local, lob_error *err)
{
    unsigned need[] = {H_bpx, H_bqty, H_apx, H_aqty};
    const char *names[] = {"u", "b", "B", "a", "A"};
    if (!(m->f.have & LOB_PK_u)) {
        return missing(err, "bookTicker", names[0]);
    }
    for (int i = 0; i < 4; i++) {
        if (!(m->have & need[i])) {
            return missing(err, "bookTicker", names[1 + i]);
        }
    }
    const double v[4] = {m->bpx, m->bqty, m->apx, m->aqty};
    for (int i = 0; i < 4; i++) {
        int size = i % 2; /* b, B, a, A */
        if (size ? !(v[i] >= 0) : !(v[i] > 0)) {
            return bad_value(err, "bookTicker", names[1 + i], v[i],
                             size ? "a size >= 0" : "a price > 0");
        }
    }
    int64_t ts;
    LOB_FORWARD_IF_ERROR(exchange_ts(m, local, &ts, err));
    b->n_quote++;
    lob_table *t = &b->out[T_QUOTES];
    LOB_FORWARD_IF_ERROR(lob_table_room(t, 1));
    size_t i = t->n++;
    LOB_COL(t, LOB_Q_TS, int64_t)[i] = ts;
    LOB_COL(t, LOB_Q_LOCAL_TS, int64_t)[i] = local;
    LOB_COL(t, LOB_Q_UPDATE_ID, int64_t)[i] = m->f.u;
    LOB_COL(t, LOB_Q_BID_PX, double)[i] = m->bpx;
    LOB_COL(t, LOB_Q_BID_QTY, double)[i] = m->bqty;
    LOB_COL(t, LOB_Q_ASK_PX, double)[i] = m->apx;
    LOB_COL(t, LOB_Q_ASK_QTY, double)[i] = m->aqty;
    return LOB_OK;
}

/* ------------------------------------------------------------------ the format */

/* Whether a message may be a diff or a snapshot: one names "depthUpdate" (its "e"), the
 * other "lastUpdateId", and the classifier compares raw bytes, so a message without either
 * string is neither.  Found from their 'U', rarer than the quotes. */
static int
maybe_book(const char *s, size_t n)
{
    const char *end = s + n, *p = s;
    while ((p = memchr(p, 'U', (size_t)(end - p))) != NULL) {
        if ((p - s >= 6 && end - p >= 7 && memcmp(p - 6, "\"depthUpdate\"", 13) == 0) ||
            (p - s >= 5 && end - p >= 9 && memcmp(p - 5, "\"lastUpdateId\"", 14) == 0)) {
            return 1;
        }
        p++;
    }
    return 0;
}

/* The start of a line, which needs no state: its receive time (*json: the message after
 * it).  @return 0, 1 for a blank line, or an error. */
static int
line_head(const char *s, size_t n, int64_t *local, const char **json, lob_error *err)
{
    if (n == 0) {
        return 1;
    }
    int rc = LOB_OK;
    const char *p = lob_parse_int64(s, s + n, local, &rc);
    if (p == NULL || p == s + n || *p != ' ' || *local <= 0) {
        if (lob_looks_binary(s, n)) {
            return lob_error_set(err, LOB_E_FORMAT,
                                 "binary data where '<receive time ns> <JSON>' text was "
                                 "expected (is this the right file?)");
        }
        char show[LOB_SHOW_BUF];
        return lob_error_set(err, LOB_E_FORMAT,
                             "expected '<receive time in ns> <JSON message>', found '%s'",
                             lob_show(show, sizeof show, s, n, 32));
    }
    if (*local > LOB_TS_MAX) {
        /* refused, not counted as outside the window: a time past 2262 is damage */
        return lob_error_set(err, LOB_E_RANGE,
                             "receive time %lld ns is not a time between 1970 and 2262",
                             (long long)*local);
    }
    *json = p + 1;
    return LOB_OK;
}

/* Whether the message [json, end) of a line received at `local` is parsed at all: not when
 * it falls outside the window, unless it is a diff or snapshot replayed into the book. */
static int
wanted(int64_t local, int64_t start_ns, int64_t end_ns, int keep_book, const char *json,
       const char *end)
{
    if (local < start_ns) {
        return keep_book && maybe_book(json, (size_t)(end - json));
    }
    return local < end_ns;
}

/* What the line received at `local` does to the state before its message is parsed: time
 * order, checkpoints, the window.  @return 1 (parse the message; *warm: it is replayed
 * into the book), 0 (the line ends here) or an error. */
static int
line_gate(lob_binance *b, int64_t local, const char *json, const char *end, int *warm,
          lob_error *err)
{
    if (local < b->last_local) {
        /* a recording is written in receive order: going back means files given out of
         * order (or a damaged file), which would silently break the sequence checks */
        return lob_error_set(err, LOB_E_FORMAT,
                             "receive time %lld is before the previous line's %lld (files out of "
                             "order?)",
                             (long long)local, (long long)b->last_local);
    }
    /* local - cp_last cannot overflow: both are receive times in [1, LOB_TS_MAX] */
    if (b->cp_every > 0 && local > b->last_local && b->state == SYNCED &&
        (b->cp_due || local - b->cp_last >= b->cp_every)) {
        LOB_FORWARD_IF_ERROR(checkpoint(b, local));
    }
    b->last_local = local;
    *warm = 0; /* a line before the window, replayed into the book */
    if (local < b->start_ns) {
        b->n_outside++;
        if (!b->keep_book) {
            return 0;
        }
        b->n_replayed++;
        *warm = 1;
        /* only diffs and snapshots are replayed: the rest is not parsed */
        return wanted(local, b->start_ns, b->end_ns, 1, json, end);
    }
    if (local >= b->end_ns) {
        b->n_outside++;
        return 0;
    }
    if (b->keep_book && !b->opened) {
        LOB_FORWARD_IF_ERROR(open_window(b, local));
    }
    return 1;
}

/* Walk the message [json, end) of the line at s into m: "b"/"a" levels after lv's rows,
 * "bids"/"asks" after sn's (not committed), then classify it. */
static int
line_walk(msg *m, lob_table *lv, lob_table *sn, const char *s, const char *json, const char *end,
          lob_error *err)
{
    m->lv = lv;
    m->sn = sn;
    m->have = 0;
    m->nlevels = 0;
    m->nsnap = 0;
    lob_json j = {json, end, NULL};
    int rc = lob_binance_walk(&j, &m->f, 1, parse_value, m);
    if (rc == LOB_E_NOMEM) {
        return lob_error_set(err, rc, "out of memory while parsing");
    }
    if (rc < 0) {
        return fail_at(err, rc, s, &j);
    }
    if (lob_json_peek(&j) != -1) {
        j.expected = "the end of the line after the JSON object";
        return fail_at(err, LOB_E_FORMAT, s, &j);
    }
    lob_binance_classify(&m->f);
    return LOB_OK;
}

/* What a walked message does: its kind, its symbol, then the handler of its kind, whose
 * levels sit after the depth table's rows ("b"/"a") or in snap_new ("bids"/"asks"). */
static int
line_body(lob_binance *b, const msg *m, int64_t local, int warm, lob_error *err)
{
    switch (m->f.kind) {
    case LOB_PK_DIFF:
    case LOB_PK_TRADE:
    case LOB_PK_AGG:
    case LOB_PK_QUOTE: break;
    case LOB_PK_SNAPSHOT:
        if (m->f.have & LOB_PK_BOOK) {
            break;
        }
        b->n_unknown++; /* lastUpdateId with "b"/"a" levels: not a book a snapshot holds */
        return LOB_OK;
    case LOB_PK_PARTIAL: b->n_partial++; return LOB_OK;
    case LOB_PK_COLLECTOR: b->n_collector++; return LOB_OK;
    default: b->n_unknown++; return LOB_OK;
    }
    if ((m->f.have & LOB_PK_SYM) || m->f.sym != NULL) {
        /* a symbol is named: "s" (an empty one is refused) or the stream's */
        const char *sym = m->f.sym ? m->f.sym : m->f.s;
        size_t symlen = m->f.sym ? m->f.symlen : 0;
        int keep = lob_symbols_select(&b->syms, sym, symlen);
        if (keep < 0) {
            char show[LOB_SHOW_BUF];
            return lob_error_set(err, LOB_E_FORMAT,
                                 "symbol '%s' is not 1 to 31 printable ASCII characters",
                                 lob_show(show, sizeof show, sym, symlen, LOB_SHOW));
        }
        if (!keep) {
            return LOB_OK;
        }
    }
    int rc = LOB_OK;
    if (warm) {
        /* only the book is replayed; the window's trades and quotes are its own */
        if (m->f.kind == LOB_PK_SNAPSHOT) {
            rc = on_snapshot(b, m, local, m->f.sym == NULL, err);
        }
        else if (m->f.kind == LOB_PK_DIFF) {
            rc = on_diff(b, m, local, err);
        }
        return rc < 0 ? rc : book_fold(b);
    }
    switch (m->f.kind) {
    case LOB_PK_SNAPSHOT: return on_snapshot(b, m, local, m->f.sym == NULL, err);
    case LOB_PK_DIFF: return on_diff(b, m, local, err);
    case LOB_PK_TRADE: return on_trade(b, m, local, 0, err);
    case LOB_PK_AGG: return on_trade(b, m, local, 1, err);
    default: return on_quote(b, m, local, err);
    }
}

/* The message of a line the gate let through, parsed here (levels straight into place). */
static int
line_rest(lob_binance *b, const char *s, const char *json, const char *end, int64_t local, int warm,
          lob_error *err)
{
    msg m;
    b->snap_new.n = 0;
    LOB_FORWARD_IF_ERROR(line_walk(&m, &b->out[T_DEPTH], &b->snap_new, s, json, end, err));
    return line_body(b, &m, local, warm, err);
}

static int
binance_line(void *ctx, const char *s, size_t n, lob_error *err)
{
    lob_binance *b = ctx;
    int64_t local = 0;
    const char *json = NULL;
    int warm, rc = line_head(s, n, &local, &json, err);
    if (rc != LOB_OK) {
        b->n_blank += rc > 0;
        return rc > 0 ? LOB_OK : rc;
    }
    rc = line_gate(b, local, json, s + n, &warm, err);
    if (rc <= 0) {
        return rc;
    }
    return line_rest(b, s, json, s + n, local, warm, err);
}

/* ------------------------------------------------------------------ parsing on workers */

/* A line parsed on a worker thread (lob_format.work_line), for binance_commit(). */
enum { W_BLANK, W_HEAD_ERROR, W_SKIP, W_WALK_ERROR, W_MSG };

typedef struct {
    int kind;       /* W_* */
    uint32_t error; /* W_*_ERROR: index in errors */
    int64_t local;  /* receive time */
    size_t json;    /* offset of the message in the line */
    size_t lv0;     /* W_MSG: its "b"/"a" levels start at this row of lv ... */
    size_t sn0;     /* ... and its "bids"/"asks" levels at this row of sn */
    msg m;          /* W_MSG: the walked message (slices point into the line) */
    /* the symbol and X, which commit compares, copied here when short: the line's text is
     * then not touched again (it sits in the worker's cache, not the caller's) */
    char sym[LOB_SYMBOL_MAX], X[16];
    uint8_t has_sym, has_X;
} wline;

typedef struct {
    int64_t start_ns, end_ns; /* the window (lob_opts) */
    int keep_book;
    lob_table lv, sn; /* the levels of the frame's lines */
    wline *lines;     /* one per line of the frame */
    size_t n, cap;
    lob_error *errors; /* the errors their lines would raise */
    size_t nerr, errcap;
} bwork;

static int
binance_work_new(void **out, const lob_opts *o)
{
    bwork *w = calloc(1, sizeof *w);
    if (w == NULL) {
        return LOB_E_NOMEM;
    }
    w->start_ns = o->start_ns;
    w->end_ns = o->end_ns;
    w->keep_book = o->keep_book != 0;
    lob_table_init(&w->lv, lob_depth_schema, LOB_D_NCOL);
    lob_table_init(&w->sn, lob_depth_schema, LOB_D_NCOL);
    *out = w;
    return LOB_OK;
}

static void
binance_work_free(void *wv)
{
    bwork *w = wv;
    if (w != NULL) {
        lob_table_free(&w->lv);
        lob_table_free(&w->sn);
        free(w->lines);
        free(w->errors);
        free(w);
    }
}

static void
binance_work_reset(void *wv)
{
    bwork *w = wv;
    w->lv.n = w->sn.n = 0;
    w->n = w->nerr = 0;
}

static int
keep_error(bwork *w, wline *l, int kind, const lob_error *e)
{
    if (w->nerr == w->errcap) {
        size_t cap = w->errcap ? w->errcap * 2 : 8;
        lob_error *p = cap <= UINT32_MAX ? realloc(w->errors, cap * sizeof *p) : NULL;
        if (p == NULL) {
            return LOB_E_NOMEM;
        }
        w->errors = p;
        w->errcap = cap;
    }
    l->kind = kind;
    l->error = (uint32_t)w->nerr;
    w->errors[w->nerr++] = *e;
    return LOB_OK;
}

/* The part of binance_line() that needs no state, on a worker thread: the receive time and,
 * when the line can be wanted, the walk.  Errors are kept for the line's commit, which
 * raises them only where binance_line() would. */
static int
binance_work_line(void *wv, const char *s, size_t n)
{
    bwork *w = wv;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 1024;
        wline *p = realloc(w->lines, cap * sizeof *p);
        if (p == NULL) {
            return LOB_E_NOMEM;
        }
        w->lines = p;
        w->cap = cap;
    }
    wline *l = &w->lines[w->n++];
    lob_error e = {0};
    const char *json = NULL;
    int rc = line_head(s, n, &l->local, &json, &e);
    if (rc != LOB_OK) {
        l->kind = W_BLANK;
        return rc > 0 ? LOB_OK : keep_error(w, l, W_HEAD_ERROR, &e);
    }
    l->json = (size_t)(json - s);
    if (!wanted(l->local, w->start_ns, w->end_ns, w->keep_book, json, s + n)) {
        l->kind = W_SKIP;
        return LOB_OK;
    }
    if (line_walk(&l->m, &w->lv, &w->sn, s, json, s + n, &e) < 0) {
        return keep_error(w, l, W_WALK_ERROR, &e);
    }
    l->kind = W_MSG;
    l->has_sym = l->m.f.sym != NULL && l->m.f.symlen < sizeof l->sym;
    if (l->has_sym) {
        memcpy(l->sym, l->m.f.sym, l->m.f.symlen);
    }
    l->has_X = (l->m.have & H_X) && l->m.Xlen < sizeof l->X;
    if (l->has_X) {
        memcpy(l->X, l->m.X, l->m.Xlen);
    }
    l->lv0 = w->lv.n;
    l->sn0 = w->sn.n;
    w->lv.n += l->m.nlevels;
    w->sn.n += l->m.nsnap;
    return LOB_OK;
}

static int
raise_kept(lob_error *err, const lob_error *e)
{
    err->code = e->code;
    err->line = err->offset = 0;
    memcpy(err->msg, e->msg, sizeof err->msg);
    err->sys_errno = e->sys_errno;
    return e->code;
}

/* Copy rows [from, from + n) of the level columns of src after dst's rows (not committed). */
static int
put_levels(lob_table *dst, const lob_table *src, size_t from, size_t n)
{
    if (n == 0) {
        return LOB_OK;
    }
    LOB_FORWARD_IF_ERROR(lob_table_room(dst, n));
    memcpy(LOB_COL(dst, LOB_D_SIDE, int8_t) + dst->n, LOB_COL(src, LOB_D_SIDE, int8_t) + from,
           n * sizeof(int8_t));
    memcpy(LOB_COL(dst, LOB_D_PRICE, double) + dst->n, LOB_COL(src, LOB_D_PRICE, double) + from,
           n * sizeof(double));
    memcpy(LOB_COL(dst, LOB_D_QTY, double) + dst->n, LOB_COL(src, LOB_D_QTY, double) + from,
           n * sizeof(double));
    return LOB_OK;
}

/* Line k of the frame a worker parsed (its text is s, n), in order: exactly what
 * binance_line() does with it. */
static int
binance_commit(void *ctx, void *wv, size_t k, const char *s, size_t n, lob_error *err)
{
    lob_binance *b = ctx;
    bwork *w = wv;
    wline *l = &w->lines[k];
    if (l->kind == W_BLANK) {
        b->n_blank++;
        return LOB_OK;
    }
    if (l->kind == W_HEAD_ERROR) {
        return raise_kept(err, &w->errors[l->error]);
    }
    int warm, rc = line_gate(b, l->local, s + l->json, s + n, &warm, err);
    if (rc <= 0) {
        return rc;
    }
    if (l->kind == W_SKIP) { /* the worker did not parse it: the gate and wanted() agree */
        return line_rest(b, s, s + l->json, s + n, l->local, warm, err);
    }
    if (l->kind == W_WALK_ERROR) {
        return raise_kept(err, &w->errors[l->error]);
    }
    msg *m = &l->m; /* the caller owns the frame now: its records can be pointed home */
    m->lv = &b->out[T_DEPTH];
    m->sn = &b->snap_new;
    if (l->has_sym) {
        m->f.sym = l->sym;
    }
    if (l->has_X) {
        m->X = l->X;
    }
    if (m->f.kind == LOB_PK_DIFF) {
        LOB_FORWARD_IF_ERROR(put_levels(m->lv, &w->lv, l->lv0, m->nlevels));
    }
    else if (m->f.kind == LOB_PK_SNAPSHOT) {
        b->snap_new.n = 0;
        LOB_FORWARD_IF_ERROR(put_levels(m->sn, &w->sn, l->sn0, m->nsnap));
    }
    return line_body(b, m, l->local, warm, err);
}

static int
binance_create(void **ctx, const lob_opts *o)
{
    lob_binance *b = calloc(1, sizeof *b);
    if (b == NULL) {
        return LOB_E_NOMEM;
    }
    lob_table_init(&b->out[T_DEPTH], lob_depth_schema, LOB_D_NCOL);
    lob_table_init(&b->out[T_TRADES], lob_trades_schema, LOB_T_NCOL);
    lob_table_init(&b->out[T_AGG], lob_trades_schema, LOB_T_NCOL);
    lob_table_init(&b->out[T_QUOTES], lob_quotes_schema, LOB_Q_NCOL);
    lob_table_init(&b->pend_rows, lob_depth_schema, LOB_D_NCOL);
    lob_table_init(&b->snap, lob_depth_schema, LOB_D_NCOL);
    lob_table_init(&b->snap_new, lob_depth_schema, LOB_D_NCOL);
    lob_symbols_init(&b->syms, o->symbol);
    b->start_ns = o->start_ns;
    b->end_ns = o->end_ns;
    b->snap_ts = -1;
    b->keep_book = o->keep_book != 0;
    b->cp_every = b->keep_book && o->checkpoint_every > 0 ? o->checkpoint_every : 0;
    b->book_at_start = -1;
    b->synced_at = -1;
    lob_table_init(&b->cp, lob_cp_schema, LOB_CP_NCOL);
    lob_table_init(&b->cp_levels, lob_cp_level_schema, LOB_CPL_NCOL);
    *ctx = b;
    return LOB_OK;
}

static void
binance_destroy(void *ctx)
{
    lob_binance *b = ctx;
    for (int i = 0; i < T_N; i++) {
        lob_table_free(&b->out[i]);
    }
    lob_table_free(&b->pend_rows);
    lob_table_free(&b->snap);
    lob_table_free(&b->snap_new);
    free(b->pend);
    lob_side_free(&b->bid);
    lob_side_free(&b->ask);
    free(b->scratch);
    lob_table_free(&b->cp);
    lob_table_free(&b->cp_levels);
    free(b);
}

static int
binance_finish(void *ctx, lob_error *err)
{
    (void)err;
    lob_binance *b = ctx;
    if (b->state == WAIT_SNAPSHOT) {
        b->n_dropped += (int64_t)b->npend; /* never bridged by a snapshot */
        pend_drop_front(b, b->npend);
    }
    if (b->has_snap) {
        b->n_snap_unused++;
        b->has_snap = 0;
    }
    return LOB_OK;
}

static lob_table *
binance_table(void *ctx, int i)
{
    return &((lob_binance *)ctx)->out[i];
}

static int
binance_stats(void *ctx, lob_stat *out, int cap)
{
    lob_binance *b = ctx;
    static const char *const markets[] = {"unknown", "spot", "usdm"};
    const lob_stat all[] = {
        {"market", 0, markets[b->market]},
        {"symbol", 0, b->syms.selected},
        {"symbols", 0, lob_symbols_text(&b->syms)},
        {"depth_messages", b->n_depth, NULL},
        {"trade_messages", b->n_trade, NULL},
        {"agg_trade_messages", b->n_agg, NULL},
        {"book_ticker_messages", b->n_quote, NULL},
        {"snapshots", b->n_snapshot, NULL},
        {"partial_depth_messages", b->n_partial, NULL},
        {"collector_events", b->n_collector, NULL},
        {"unknown_messages", b->n_unknown, NULL},
        {"other_symbol_messages", b->syms.n_other, NULL},
        {"outside_window", b->n_outside, NULL},
        {"blank_lines", b->n_blank, NULL},
        {"gaps", b->n_gaps, NULL},
        {"resets", b->n_resets, NULL},
        {"dropped_before_sync", b->n_dropped, NULL},
        {"stale_diffs", b->n_stale, NULL},
        {"snapshots_rejected", b->n_snap_rejected, NULL},
        {"snapshots_unused", b->n_snap_unused, NULL},
        {"snapshots_ambiguous", b->n_snap_ambiguous, NULL},
        {"nonmarket_trades", b->n_nonmarket, NULL},
        {"buffer_overflow_drops", b->n_overflow, NULL},
        {"synced", b->state == SYNCED, NULL},
        {"last_update_id", b->state == SYNCED ? b->last_u : -1, NULL},
        {"replayed_lines", b->n_replayed, NULL},
        {"book_at_start", b->book_at_start, NULL},
        {"synced_at", b->synced_at, NULL},
        {"last_receive_time", b->last_local, NULL},
    };
    return lob_stats_copy(out, cap, all, sizeof all / sizeof all[0]);
}

const lob_format lob_format_binance = {
    "binance",         T_N,
    table_names,       binance_create,
    binance_destroy,   binance_line,
    binance_finish,    binance_table,
    binance_stats,     binance_work_new,
    binance_work_free, binance_work_reset,
    binance_work_line, binance_commit,
};
