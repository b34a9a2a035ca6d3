/* peek.c -- classify a Binance message by its fields (see peek.h). */
#include "core/formats/peek.h"

#include "core/formats/text.h"

#include <string.h>

/* "<sym>@depth5", "@depth10@100ms", ...: partial book depth, not diffs. */
static int
partial_stream(const lob_peek *pk)
{
    for (size_t i = 0; i + 6 < pk->streamlen; i++) {
        if (memcmp(pk->stream + i, "@depth", 6) == 0) {
            char c = pk->stream[i + 6];
            return c >= '0' && c <= '9';
        }
    }
    return 0;
}

static void
set_id(lob_peek *pk, int kind, unsigned bit, int64_t id)
{
    pk->kind = kind;
    if (pk->have & bit) {
        pk->id = id;
        pk->have |= LOB_PK_ID;
    }
}

void
lob_binance_classify(lob_peek *pk)
{
    unsigned h = pk->have;
    if ((h & LOB_PK_SYM) && pk->slen > 0) {
        pk->sym = pk->s;
        pk->symlen = pk->slen;
    }
    else if (pk->streamlen > 0 && pk->stream[0] != '!') {
        /* "!bookTicker", "!serverShutdown": every symbol or none */
        const char *at = memchr(pk->stream, '@', pk->streamlen);
        pk->sym = pk->stream;
        pk->symlen = at ? (size_t)(at - pk->stream) : pk->streamlen;
    }
    else {
        pk->sym = NULL;
        pk->symlen = 0;
    }
    if (pk->symlen == 0) {
        pk->sym = NULL;
    }
    int has_e = (h & LOB_PK_EVENT) != 0;
#define EV(lit) (has_e && LOB_JSON_IS(pk->e, pk->elen, lit))
    if (h & LOB_PK_LOBFAST) {
        pk->kind = LOB_PK_COLLECTOR;
    }
    else if (EV("depthUpdate")) {
        if (partial_stream(pk)) {
            set_id(pk, LOB_PK_PARTIAL, LOB_PK_u, pk->u);
        }
        else {
            pk->kind = LOB_PK_DIFF;
        }
    }
    else if (EV("trade")) {
        set_id(pk, LOB_PK_TRADE, LOB_PK_t, pk->t);
    }
    else if (EV("aggTrade")) {
        set_id(pk, LOB_PK_AGG, LOB_PK_a, pk->a);
    }
    else if (EV("bookTicker") || (!has_e && (h & LOB_PK_u) && (h & LOB_PK_BBO))) {
        set_id(pk, LOB_PK_QUOTE, LOB_PK_u, pk->u);
    }
    else if (EV("serverShutdown")) {
        pk->kind = LOB_PK_SHUTDOWN;
    }
    else if (!has_e && (h & LOB_PK_LUID) && (h & LOB_PK_LEVELS)) {
        set_id(pk, pk->streamlen > 0 ? LOB_PK_PARTIAL : LOB_PK_SNAPSHOT, LOB_PK_LUID, pk->luid);
    }
    else if (!has_e && (h & LOB_PK_CODE) && (h & LOB_PK_MSG)) {
        pk->kind = LOB_PK_ERROR;
    }
    else if (!has_e && pk->streamlen == 0 && (h & (LOB_PK_RESULT | LOB_PK_REQUEST))) {
        pk->kind = LOB_PK_REPLY;
    }
    else {
        pk->kind = LOB_PK_OTHER;
    }
#undef EV
}

int
lob_peek_binance(const char *s, size_t n, lob_peek *pk, lob_error *err)
{
    memset(pk, 0, sizeof *pk);
    lob_json j = {s, s + n, NULL};
    int rc = lob_binance_walk(&j, pk, 0, NULL, NULL);
    if (rc == LOB_OK && lob_json_peek(&j) != -1) {
        rc = lob_json_fail(&j, "the end of the message after the JSON object", LOB_E_FORMAT);
    }
    if (rc < 0) {
        size_t left = (size_t)(j.end - j.p);
        char show[LOB_SHOW_BUF]; /* escaped: a NUL or control byte must not cut the text */
        return lob_error_set(err, rc, "column %zu: expected %s, found '%s'%s",
                             (size_t)(j.p - s) + 1, j.expected ? j.expected : "valid JSON",
                             lob_show(show, sizeof show, j.p, left, 24),
                             left ? "" : "(end of message)");
    }
    lob_binance_classify(pk);
    return LOB_OK;
}
