/* binance.c -- Binance raw lines "<receive ns> <message>" -> depth, trades, quotes.
 *
 * Messages are combined-stream frames {"stream":..,"data":{..}}, raw stream events, REST
 * depth snapshot bodies {"lastUpdateId":..}, or collector events {"lobfast":{..}}.  Fields
 * are recognised by name and JSON type, so key order does not matter.
 *
 * Depth follows Binance's local-order-book rules (spot and USD-M differ, see below):
 * diffs are buffered until a snapshot bridges them, stale diffs are dropped, continuity is
 * checked on every diff, and a break emits a GAP marker and waits for the next snapshot.
 * Nothing is emitted for a book that is not known, so every row after a RESET until the
 * next GAP describes the exchange's book exactly.
 */
#include "json.h"
#include "reader.h"
#include "schema.h"
#include "sequence.h"
#include "text.h"

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

/* Fields seen in one message (bit set in `have`). */
enum {
    H_e = 1 << 0,
    H_s = 1 << 1,
    H_E = 1 << 2,
    H_T = 1 << 3,
    H_U = 1 << 4,
    H_u = 1 << 5,
    H_pu = 1 << 6,
    H_t = 1 << 7,
    H_aid = 1 << 8,
    H_luid = 1 << 9,
    H_p = 1 << 10,
    H_q = 1 << 11,
    H_bpx = 1 << 12,
    H_bqty = 1 << 13,
    H_apx = 1 << 14,
    H_aqty = 1 << 15,
    H_m = 1 << 16,
    H_levels = 1 << 17,
    H_snap = 1 << 18,
    H_stream = 1 << 19,
    H_X = 1 << 20,
    H_lobfast = 1 << 21,
};

typedef struct {
    unsigned have;                  /* H_* bits */
    const char *e, *s, *stream, *X; /* raw string slices */
    size_t elen, slen, streamlen, Xlen;
    int64_t E, T, U, u, pu, t, aid, luid; /* times (exchange units) and ids */
    double p, q, bpx, bqty, apx, aqty;    /* trade price/qty, best bid/ask */
    int m;                                /* buyer is maker */
    size_t nlevels;                       /* "b"/"a" rows parsed into the depth table's tail */
    size_t nsnap;                         /* "bids"/"asks" rows parsed into snap_new */
} msg;

typedef struct {
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
    /* counters */
    int64_t n_depth, n_trade, n_agg, n_quote, n_snapshot, n_partial, n_collector, n_unknown,
        n_outside, n_blank, n_gaps, n_resets, n_dropped, n_stale, n_snap_rejected, n_snap_unused,
        n_snap_ambiguous, n_nonmarket, n_overflow;
} lob_binance;

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

/* A key (or string value) equals an ASCII literal; sizeof keeps the length a constant. */
#define KEY_IS(k, n, lit) ((n) == sizeof(lit) - 1 && memcmp((k), (lit), sizeof(lit) - 1) == 0)

#define GET(fn, dst, bit)                                                                          \
    do {                                                                                           \
        LOB_FORWARD_IF_ERROR(fn(j, dst));                                                          \
        m->have |= (bit);                                                                          \
    } while (0)

#define GET_STR(ptr, len, bit)                                                                     \
    do {                                                                                           \
        LOB_FORWARD_IF_ERROR(lob_json_string(j, &m->ptr, &m->len));                                \
        m->have |= (bit);                                                                          \
    } while (0)

/* One JSON object's members into m; nest 0 is the line's top level. */
static int
parse_fields(lob_binance *b, lob_json *j, msg *m, int nest)
{
    if (!lob_json_eat(j, '{')) {
        return lob_json_fail(j, "a JSON object", LOB_E_FORMAT);
    }
    int first = 1, r;
    const char *k;
    size_t kn;
    lob_table *depth = &b->out[T_DEPTH];
    while ((r = lob_json_next_member(j, &first, &k, &kn)) == 1) {
        int c = lob_json_peek(j);
        if (kn == 1) {
            switch (k[0]) {
            case 'e': GET_STR(e, elen, H_e); continue;
            case 's': GET_STR(s, slen, H_s); continue;
            case 'X': GET_STR(X, Xlen, H_X); continue;
            case 'E': GET(lob_json_int64, &m->E, H_E); continue;
            case 'T': GET(lob_json_int64, &m->T, H_T); continue;
            case 'U': GET(lob_json_int64, &m->U, H_U); continue;
            case 'u': GET(lob_json_int64, &m->u, H_u); continue;
            case 't': GET(lob_json_int64, &m->t, H_t); continue;
            case 'p': GET(lob_json_decimal, &m->p, H_p); continue;
            case 'q': GET(lob_json_decimal, &m->q, H_q); continue;
            case 'B': GET(lob_json_decimal, &m->bqty, H_bqty); continue;
            case 'A': GET(lob_json_decimal, &m->aqty, H_aqty); continue;
            case 'm': GET(lob_json_bool, &m->m, H_m); continue;
            case 'b':
            case 'a':
                /* depth levels, a bookTicker price, or (aggTrade "a") an id */
                if (c == '[') {
                    LOB_FORWARD_IF_ERROR(parse_levels(j, depth, &m->nlevels, k[0] == 'b' ? 1 : -1));
                    m->have |= H_levels;
                }
                else if (c == '"' && k[0] == 'b') {
                    GET(lob_json_decimal, &m->bpx, H_bpx);
                }
                else if (c == '"') {
                    GET(lob_json_decimal, &m->apx, H_apx);
                }
                else if (k[0] == 'a') {
                    GET(lob_json_int64, &m->aid, H_aid);
                }
                else {
                    LOB_FORWARD_IF_ERROR(lob_json_skip(j, nest + 1));
                }
                continue;
            default: break;
            }
        }
        else if (KEY_IS(k, kn, "pu")) {
            GET(lob_json_int64, &m->pu, H_pu);
            continue;
        }
        else if (KEY_IS(k, kn, "lastUpdateId")) {
            GET(lob_json_int64, &m->luid, H_luid);
            continue;
        }
        else if ((KEY_IS(k, kn, "bids") || KEY_IS(k, kn, "asks")) && c == '[') {
            LOB_FORWARD_IF_ERROR(parse_levels(j, &b->snap_new, &m->nsnap, k[0] == 'b' ? 1 : -1));
            m->have |= H_snap;
            continue;
        }
        else if (nest == 0 && KEY_IS(k, kn, "stream") && c == '"') {
            GET_STR(stream, streamlen, H_stream);
            continue;
        }
        else if (nest == 0 && KEY_IS(k, kn, "data") && c == '{') {
            LOB_FORWARD_IF_ERROR(parse_fields(b, j, m, 1));
            continue;
        }
        else if (nest == 0 && KEY_IS(k, kn, "lobfast")) {
            m->have |= H_lobfast;
        }
        LOB_FORWARD_IF_ERROR(lob_json_skip(j, nest + 1));
    }
    return r;
}

#undef GET
#undef GET_STR

/* ------------------------------------------------------------------ symbols */

/* The symbol a message is for: its "s" field, else the stream name before '@'. */
static void
message_symbol(const msg *m, const char **s, size_t *n)
{
    if (m->have & H_s) {
        *s = m->s;
        *n = m->slen;
    }
    else if (m->have & H_stream) {
        const char *at = memchr(m->stream, '@', m->streamlen);
        *s = m->stream;
        *n = at ? (size_t)(at - m->stream) : m->streamlen;
    }
    else {
        *s = NULL;
        *n = 0;
    }
}

/* "<sym>@depth5", "@depth10@100ms", ...: partial book depth (top-N snapshots, not diffs). */
static int
is_partial_depth(const msg *m)
{
    if (!(m->have & H_stream)) {
        return 0;
    }
    for (size_t i = 0; i + 6 < m->streamlen; i++) {
        if (memcmp(m->stream + i, "@depth", 6) == 0) {
            char c = m->stream[i + 6];
            return c >= '0' && c <= '9';
        }
    }
    return 0;
}

/* Exchange time in ns: USD-M T, else E; spot bookTicker and snapshots carry none, so the
 * receive time stands in.  Both E and T must be times in 1970..2262 when present, the one
 * not kept too: a message stamped with a broken time is a broken message. */
static int
exchange_ts(const msg *m, int64_t local, int64_t *ts, lob_error *err)
{
    *ts = local;
    static const unsigned bits[2] = {H_E, H_T};
    static const char *const names[2] = {"E", "T"};
    for (int i = 0; i < 2; i++) {
        int64_t t = i ? m->T : m->E;
        if ((m->have & bits[i]) && lob_epoch_to_ns(t, ts) < 0) {
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
    b->last_u = L;
    b->last_ts = ts;
    return replay_pending(b);
}

static int
on_diff(lob_binance *b, const msg *m, int64_t local, lob_error *err)
{
    if (!(m->have & H_U) || !(m->have & H_u)) {
        return lob_error_set(err, LOB_E_FORMAT, "depthUpdate without %s",
                             (m->have & H_U) ? "'u'" : "'U'");
    }
    if (m->U < 0 || m->u < m->U || m->u == INT64_MAX || ((m->have & H_pu) && m->pu < -1)) {
        return lob_error_set(err, LOB_E_RANGE,
                             "depthUpdate ids out of range (U=%lld, u=%lld): expected "
                             "0 <= U <= u < 2^63-1",
                             (long long)m->U, (long long)m->u);
    }
    int64_t ts;
    LOB_FORWARD_IF_ERROR(exchange_ts(m, local, &ts, err));
    b->n_depth++;
    int64_t pu = (m->have & H_pu) ? m->pu : 0;
    if (b->market == MARKET_UNKNOWN) {
        b->market = (m->have & H_pu) ? MARKET_USDM : MARKET_SPOT;
    }
    lob_table *depth = &b->out[T_DEPTH];
    size_t k = m->nlevels;
    for (size_t r = 0; r < k; r++) {
        size_t i = depth->n + r;
        LOB_COL(depth, LOB_D_TS, int64_t)[i] = ts;
        LOB_COL(depth, LOB_D_LOCAL_TS, int64_t)[i] = local;
        LOB_COL(depth, LOB_D_UPDATE_ID, int64_t)[i] = m->u;
        LOB_COL(depth, LOB_D_FLAGS, uint8_t)[i] = r == k - 1 ? LOB_F_END_OF_MESSAGE : 0;
    }
    if (b->state == SYNCED) {
        switch (seq_check(b, m->U, m->u, pu)) {
        case LOB_SEQ_STALE: b->n_stale++; return LOB_OK;
        case LOB_SEQ_OK:
            depth->n += k; /* the hot path: rows were parsed in place */
            b->last_u = m->u;
            b->last_ts = ts;
            return LOB_OK;
        default: break;
        }
        /* gap: buffer this diff (it may bridge the next snapshot), then mark the break */
        pend_msg h = {m->U, m->u, pu, ts, local, 0, k};
        b->n_gaps++;
        b->state = WAIT_SNAPSHOT;
        pend_drop_front(b, b->npend);
        LOB_FORWARD_IF_ERROR(pend_push(b, &h));
        return emit_marker(b, ts, local, m->u, LOB_F_GAP | LOB_F_END_OF_MESSAGE);
    }
    pend_msg h = {m->U, m->u, pu, ts, local, 0, k};
    LOB_FORWARD_IF_ERROR(pend_push(b, &h));
    return b->has_snap ? try_sync(b) : LOB_OK;
}

static int
on_snapshot(lob_binance *b, const msg *m, int64_t local, int bare, lob_error *err)
{
    if (m->luid < 0 || m->luid == INT64_MAX) {
        return lob_error_set(err, LOB_E_RANGE, "snapshot lastUpdateId %lld out of range",
                             (long long)m->luid);
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
        !(b->npend > 0 && b->pend[0].U - 1 <= m->luid && m->luid <= b->pend[b->npend - 1].u)) {
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
    b->snap_id = m->luid;
    b->snap_ts = (m->have & (H_T | H_E)) ? ts : -1;
    b->snap_local = local;
    if (b->market == MARKET_UNKNOWN && (m->have & (H_T | H_E))) {
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
    unsigned need[] = {H_p, H_q, H_m, agg ? H_aid : H_t};
    const char *names[] = {"p", "q", "m", agg ? "a" : "t"};
    for (int i = 0; i < 4; i++) {
        if (!(m->have & need[i])) {
            return missing(err, what, names[i]);
        }
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
    LOB_COL(t, LOB_T_TRADE_ID, int64_t)[i] = agg ? m->aid : m->t;
    return LOB_OK;
}

static int
on_quote(lob_binance *b, const msg *m, int64_t local, lob_error *err)
{
    unsigned need[] = {H_u, H_bpx, H_bqty, H_apx, H_aqty};
    const char *names[] = {"u", "b", "B", "a", "A"};
    for (int i = 0; i < 5; i++) {
        if (!(m->have & need[i])) {
            return missing(err, "bookTicker", names[i]);
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
    LOB_COL(t, LOB_Q_UPDATE_ID, int64_t)[i] = m->u;
    LOB_COL(t, LOB_Q_BID_PX, double)[i] = m->bpx;
    LOB_COL(t, LOB_Q_BID_QTY, double)[i] = m->bqty;
    LOB_COL(t, LOB_Q_ASK_PX, double)[i] = m->apx;
    LOB_COL(t, LOB_Q_ASK_QTY, double)[i] = m->aqty;
    return LOB_OK;
}

/* ------------------------------------------------------------------ the format */

#define EVENT_IS(m, lit) (((m)->have & H_e) && KEY_IS((m)->e, (m)->elen, lit))

static int
binance_line(void *ctx, const char *s, size_t n, lob_error *err)
{
    lob_binance *b = ctx;
    if (n == 0) {
        b->n_blank++;
        return LOB_OK;
    }
    int64_t local = 0;
    int rc = LOB_OK;
    const char *p = lob_parse_int64(s, s + n, &local, &rc);
    if (p == NULL || p == s + n || *p != ' ' || local <= 0) {
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
    if (local > LOB_TS_MAX) {
        /* refused, not counted as outside the window: a time past 2262 is damage */
        return lob_error_set(err, LOB_E_RANGE,
                             "receive time %lld ns is not a time between 1970 and 2262",
                             (long long)local);
    }
    if (local < b->last_local) {
        /* a recording is written in receive order: going back means files given out of
         * order (or a damaged file), which would silently break the sequence checks */
        return lob_error_set(err, LOB_E_FORMAT,
                             "receive time %lld is before the previous line's %lld (files out of "
                             "order?)",
                             (long long)local, (long long)b->last_local);
    }
    b->last_local = local;
    if (local < b->start_ns || local >= b->end_ns) {
        b->n_outside++;
        return LOB_OK;
    }
    msg m;
    m.have = 0;
    m.nlevels = 0;
    m.nsnap = 0;
    b->snap_new.n = 0;
    lob_json j = {p + 1, s + n, NULL};
    rc = parse_fields(b, &j, &m, 0);
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
    if (m.have & H_lobfast) {
        b->n_collector++;
        return LOB_OK;
    }
    const char *sym;
    size_t symlen;
    message_symbol(&m, &sym, &symlen);
    int depth_like = (m.have & H_snap) || EVENT_IS(&m, "depthUpdate");
    if (depth_like && is_partial_depth(&m)) {
        b->n_partial++;
        return LOB_OK;
    }
    int quote = EVENT_IS(&m, "bookTicker") ||
                (!(m.have & H_e) && (m.have & H_u) && (m.have & (H_bpx | H_apx)));
    int trade = EVENT_IS(&m, "trade"), agg = EVENT_IS(&m, "aggTrade");
    int snapshot = (m.have & H_snap) && (m.have & H_luid) && !(m.have & H_e);
    if (!(depth_like || quote || trade || agg || snapshot)) {
        b->n_unknown++;
        return LOB_OK;
    }
    if (sym != NULL) {
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
    if (snapshot) {
        return on_snapshot(b, &m, local, sym == NULL, err);
    }
    if (EVENT_IS(&m, "depthUpdate")) {
        return on_diff(b, &m, local, err);
    }
    if (trade || agg) {
        return on_trade(b, &m, local, agg, err);
    }
    if (quote) {
        return on_quote(b, &m, local, err);
    }
    b->n_unknown++;
    return LOB_OK;
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
    };
    return lob_stats_copy(out, cap, all, sizeof all / sizeof all[0]);
}

const lob_format lob_format_binance = {
    "binance",      T_N,           table_names,   binance_create, binance_destroy, binance_line,
    binance_finish, binance_table, binance_stats,
};
