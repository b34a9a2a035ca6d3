/* peek.h -- what a Binance message is and its ids, without parsing its levels.
 *
 * The collector routes, checks and de-duplicates every message it records with this; it
 * validates the whole JSON text (so a malformed frame is told apart from a valid one) but
 * keeps only the fields that name and order a message.
 */
#ifndef LOB_PEEK_H
#define LOB_PEEK_H

#include "lob.h"

typedef enum {
    LOB_PK_OTHER,    /* valid JSON of no kind below (another stream, an unknown event) */
    LOB_PK_DIFF,     /* depthUpdate diff: U, u (and pu on USD-M) */
    LOB_PK_PARTIAL,  /* partial book depth (<sym>@depth5 ...): id = lastUpdateId or u */
    LOB_PK_TRADE,    /* trade: id = t */
    LOB_PK_AGG,      /* aggTrade: id = a */
    LOB_PK_QUOTE,    /* bookTicker: id = u */
    LOB_PK_SNAPSHOT, /* REST depth snapshot body: id = lastUpdateId */
    LOB_PK_SHUTDOWN, /* serverShutdown: the server is about to close the connection */
    LOB_PK_REPLY,    /* a reply to a control request: {"result":..,"id":..} */
    LOB_PK_ERROR,    /* an error body: {"code":..,"msg":..} */
} lob_pk_kind;

enum { LOB_PK_E = 1, LOB_PK_U = 2, LOB_PK_u = 4, LOB_PK_pu = 8, LOB_PK_ID = 16 };

typedef struct lob_peek_s {
    int kind;                 /* lob_pk_kind */
    unsigned have;            /* LOB_PK_* bits for the fields below */
    const char *stream, *sym; /* combined-stream name; symbol ("s", else the stream's prefix) */
    size_t streamlen, symlen; /* 0 when absent */
    int64_t E, U, u, pu, id;  /* event time (exchange units), update ids, the kind's id */
    int64_t code;             /* LOB_PK_ERROR: the error code */
    const char *msg;          /* LOB_PK_ERROR: the message (raw JSON string contents) */
    size_t msglen;
} lob_peek;

/*! lob_peek_binance() : classify the JSON text [s, s + n).  Whitespace around it is allowed;
 *  anything else after the object is not.  @return 0, or LOB_E_FORMAT / LOB_E_RANGE with
 *  `err` naming the column and what was expected. */
int lob_peek_binance(const char *s, size_t n, lob_peek *pk, lob_error *err);

#endif /* LOB_PEEK_H */
