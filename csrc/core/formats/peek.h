/* peek.h -- what a Binance message is: its kind, stream, symbol and ids.
 *
 * Every Binance message is classified here, once: lob_binance_walk() walks the message's
 * members a single time and keeps what names and orders it (event type, stream, symbol,
 * the ids E/U/u/pu/t/a/lastUpdateId, the shape of its levels), and lob_binance_classify()
 * tells its kind from those findings alone.  The reader parses values in the same walk
 * through a hook and then dispatches on the kind; the collector calls lob_peek_binance(),
 * which validates the whole JSON text (so a malformed frame is told apart from a valid one)
 * and keeps only the fields that name and order a message.  A new kind is told apart here,
 * once; each user then only decides what to do with it.
 */
#ifndef LOB_PEEK_H
#define LOB_PEEK_H

#include "core/formats/json.h"
#include "core/lob.h"

typedef enum {
    LOB_PK_OTHER,     /* valid JSON of no kind below (another stream, an unknown event) */
    LOB_PK_DIFF,      /* depthUpdate diff: U, u (and pu on USD-M) */
    LOB_PK_PARTIAL,   /* partial book depth (<sym>@depth5 ...): id = lastUpdateId or u */
    LOB_PK_TRADE,     /* trade: id = t */
    LOB_PK_AGG,       /* aggTrade: id = a */
    LOB_PK_QUOTE,     /* bookTicker: id = u */
    LOB_PK_SNAPSHOT,  /* REST depth snapshot body: id = lastUpdateId */
    LOB_PK_SHUTDOWN,  /* serverShutdown: the server is about to close the connection */
    LOB_PK_REPLY,     /* a reply to a control request: {"result":..,"id":..} */
    LOB_PK_ERROR,     /* an error body: {"code":..,"msg":..} */
    LOB_PK_COLLECTOR, /* a collector event {"lobfast":{..}} (lobfast's own line) */
    LOB_PK_NKINDS
} lob_pk_kind;

/* lob_peek.have: the fields found (the first five are the collector's API). */
enum {
    LOB_PK_E = 1 << 0,        /* E: event time */
    LOB_PK_U = 1 << 1,        /* U: first update id of a diff */
    LOB_PK_u = 1 << 2,        /* u: final update id (diff, bookTicker) */
    LOB_PK_pu = 1 << 3,       /* pu: previous final update id (USD-M diff) */
    LOB_PK_ID = 1 << 4,       /* id: the kind's id (set by lob_binance_classify) */
    LOB_PK_EVENT = 1 << 5,    /* e: the event type, a string */
    LOB_PK_SYM = 1 << 6,      /* s: the symbol, a string */
    LOB_PK_t = 1 << 7,        /* t: trade id */
    LOB_PK_a = 1 << 8,        /* a: aggregate trade id (a number) */
    LOB_PK_LUID = 1 << 9,     /* lastUpdateId */
    LOB_PK_LEVELS = 1 << 10,  /* "b"/"a"/"bids"/"asks" with an array of levels */
    LOB_PK_BOOK = 1 << 11,    /* "bids"/"asks" with an array of levels (a snapshot's) */
    LOB_PK_BBO = 1 << 12,     /* "b"/"a" with a string (a bookTicker's best price) */
    LOB_PK_CODE = 1 << 13,    /* top level "code", a number */
    LOB_PK_MSG = 1 << 14,     /* top level "msg", a string */
    LOB_PK_RESULT = 1 << 15,  /* top level "result" */
    LOB_PK_REQUEST = 1 << 16, /* top level "id" (a control request's) */
    LOB_PK_LOBFAST = 1 << 17, /* top level "lobfast" */
};

typedef struct lob_peek_s {
    int kind;                 /* lob_pk_kind */
    unsigned have;            /* LOB_PK_* bits for the fields below */
    const char *stream, *sym; /* combined-stream name; symbol ("s", else the stream's prefix) */
    size_t streamlen, symlen; /* 0 when absent */
    int64_t E, U, u, pu, id;  /* event time (exchange units), update ids, the kind's id */
    int64_t code;             /* LOB_PK_ERROR: the error code */
    const char *msg;          /* LOB_PK_ERROR: the message (raw JSON string contents) */
    size_t msglen;
    /* the rest of what the walk found (raw string slices; valid when their bit is set) */
    const char *e, *s; /* event type, "s" */
    size_t elen, slen;
    int64_t t, a, luid; /* trade id, aggregate trade id, lastUpdateId */
} lob_peek;

/* The hook a walk calls for each member it does not consume itself, and for the levels and
 * best prices ("b", "a", "bids", "asks") after noting their shape.  It reads the value at
 * j->p and returns 1, or returns 0 to have the walk skip (and validate) it, or an error. */
typedef int (*lob_binance_value_fn)(void *ctx, lob_json *j, const char *key, size_t klen);

/*! lob_binance_classify() : pk->kind, pk->id (LOB_PK_ID) and pk->sym from what a walk found.
 *  The symbol is a non-empty "s", else the stream's name before '@' (none for "!..." streams
 *  that carry every symbol or none). */
void lob_binance_classify(lob_peek *pk);

/*! lob_peek_binance() : walk and classify the JSON text [s, s + n).  Whitespace around it is
 *  allowed; anything else after the object is not.  @return 0, or LOB_E_FORMAT / LOB_E_RANGE
 *  with `err` naming the column and what was expected. */
int lob_peek_binance(const char *s, size_t n, lob_peek *pk, lob_error *err);

/* ------------------------------------------------------------------ the walk
 * Inline, so that the reader's hook is called directly (and inlined) on its hot path. */

static inline int
lob_binance_int_(lob_json *j, int64_t *v, lob_peek *pk, unsigned bit)
{
    LOB_FORWARD_IF_ERROR(lob_json_int64(j, v));
    pk->have |= bit;
    return LOB_OK;
}

static inline int
lob_binance_str_(lob_json *j, const char **s, size_t *n, lob_peek *pk, unsigned bit)
{
    LOB_FORWARD_IF_ERROR(lob_json_string(j, s, n));
    pk->have |= bit;
    return LOB_OK;
}

/* The members of one object: nest 0 is the message, 1 a combined frame's "data".  A field
 * that names or orders the message is kept when its value has the field's JSON type; of
 * another type it is an error when `strict`, else skipped like any other member. */
static inline int
lob_binance_members_(lob_json *j, lob_peek *pk, int nest, int strict, lob_binance_value_fn value,
                     void *ctx)
{
    if (!lob_json_eat(j, '{')) {
        return lob_json_fail(j, "a JSON object", LOB_E_FORMAT);
    }
    int first = 1, r;
    const char *k;
    size_t kn;
    while ((r = lob_json_next_member(j, &first, &k, &kn)) == 1) {
        int c = lob_json_peek(j);
        /* evaluated where used: the reader's walk (strict) never looks at c for them */
#define LOB_BINANCE_NUM_ (strict || c == '-' || (c >= '0' && c <= '9'))
#define LOB_BINANCE_STR_ (strict || c == '"')
        if (kn == 1) {
            switch (k[0]) {
            case 'e':
                if (LOB_BINANCE_STR_) {
                    LOB_FORWARD_IF_ERROR(lob_binance_str_(j, &pk->e, &pk->elen, pk, LOB_PK_EVENT));
                    continue;
                }
                break;
            case 's':
                if (LOB_BINANCE_STR_) {
                    LOB_FORWARD_IF_ERROR(lob_binance_str_(j, &pk->s, &pk->slen, pk, LOB_PK_SYM));
                    continue;
                }
                break;
            case 'E':
                if (LOB_BINANCE_NUM_) {
                    LOB_FORWARD_IF_ERROR(lob_binance_int_(j, &pk->E, pk, LOB_PK_E));
                    continue;
                }
                break;
            case 'U':
                if (LOB_BINANCE_NUM_) {
                    LOB_FORWARD_IF_ERROR(lob_binance_int_(j, &pk->U, pk, LOB_PK_U));
                    continue;
                }
                break;
            case 'u':
                if (LOB_BINANCE_NUM_) {
                    LOB_FORWARD_IF_ERROR(lob_binance_int_(j, &pk->u, pk, LOB_PK_u));
                    continue;
                }
                break;
            case 't':
                if (LOB_BINANCE_NUM_) {
                    LOB_FORWARD_IF_ERROR(lob_binance_int_(j, &pk->t, pk, LOB_PK_t));
                    continue;
                }
                break;
            case 'a':
            case 'b':
                /* depth levels, a bookTicker price, or (aggTrade "a") an id */
                if (c == '[') {
                    pk->have |= LOB_PK_LEVELS;
                }
                else if (c == '"') {
                    pk->have |= LOB_PK_BBO;
                }
                else if (k[0] == 'a' && LOB_BINANCE_NUM_) {
                    LOB_FORWARD_IF_ERROR(lob_binance_int_(j, &pk->a, pk, LOB_PK_a));
                    continue;
                }
                break;
            default: break;
            }
        }
        else if (LOB_JSON_IS(k, kn, "pu")) {
            if (LOB_BINANCE_NUM_) {
                LOB_FORWARD_IF_ERROR(lob_binance_int_(j, &pk->pu, pk, LOB_PK_pu));
                continue;
            }
        }
        else if (LOB_JSON_IS(k, kn, "lastUpdateId")) {
            if (LOB_BINANCE_NUM_) {
                LOB_FORWARD_IF_ERROR(lob_binance_int_(j, &pk->luid, pk, LOB_PK_LUID));
                continue;
            }
        }
        else if (LOB_JSON_IS(k, kn, "bids") || LOB_JSON_IS(k, kn, "asks")) {
            pk->have |= c == '[' ? LOB_PK_LEVELS | LOB_PK_BOOK : 0;
        }
        else if (nest == 0) {
            /* the frame's own members (never a message's inside "data") */
            if (LOB_JSON_IS(k, kn, "stream") && c == '"') {
                LOB_FORWARD_IF_ERROR(lob_json_string(j, &pk->stream, &pk->streamlen));
                continue;
            }
            if (LOB_JSON_IS(k, kn, "data") && c == '{') {
                LOB_FORWARD_IF_ERROR(lob_binance_members_(j, pk, 1, strict, value, ctx));
                continue;
            }
            if (LOB_JSON_IS(k, kn, "code") && (c == '-' || (c >= '0' && c <= '9'))) {
                LOB_FORWARD_IF_ERROR(lob_binance_int_(j, &pk->code, pk, LOB_PK_CODE));
                continue;
            }
            if (LOB_JSON_IS(k, kn, "msg") && c == '"') {
                LOB_FORWARD_IF_ERROR(lob_binance_str_(j, &pk->msg, &pk->msglen, pk, LOB_PK_MSG));
                continue;
            }
            pk->have |= LOB_JSON_IS(k, kn, "result")    ? LOB_PK_RESULT
                        : LOB_JSON_IS(k, kn, "id")      ? LOB_PK_REQUEST
                        : LOB_JSON_IS(k, kn, "lobfast") ? LOB_PK_LOBFAST
                                                        : 0;
        }
        if (value != NULL) {
            int took = value(ctx, j, k, kn);
            if (took < 0) {
                return took;
            }
            if (took) {
                continue;
            }
        }
        LOB_FORWARD_IF_ERROR(lob_json_skip(j, nest + 1));
    }
    return r;
#undef LOB_BINANCE_NUM_
#undef LOB_BINANCE_STR_
}

/*! lob_binance_walk() : walk the JSON object at j->p (and a combined frame's "data") once,
 *  filling pk->have and the fields it names; pk->kind and pk->sym are left to
 *  lob_binance_classify().  `strict`: a known field of the wrong JSON type is an error (the
 *  reader's rule) instead of being skipped (the collector's).  `value` may be NULL.
 *  @return 0 with j->p after the object, or an error with j->p at the offending byte and
 *  j->expected saying what should have been there.  Text after the object is the caller's. */
static inline int
lob_binance_walk(lob_json *j, lob_peek *pk, int strict, lob_binance_value_fn value, void *ctx)
{
    pk->have = 0;
    pk->stream = NULL;
    pk->streamlen = 0;
    return lob_binance_members_(j, pk, 0, strict, value, ctx);
}

#endif /* LOB_PEEK_H */
