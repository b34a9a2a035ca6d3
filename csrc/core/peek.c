/* peek.c -- classify a Binance message by its fields (see peek.h). */
#include "peek.h"

#include "json.h"
#include "text.h"

#include <string.h>

#define IS(k, n, lit) ((n) == sizeof(lit) - 1 && memcmp((k), (lit), sizeof(lit) - 1) == 0)

/* Fields seen (beyond lob_peek.have). */
enum {
    F_e = 1 << 0,
    F_t = 1 << 1,
    F_a = 1 << 2,
    F_luid = 1 << 3,
    F_result = 1 << 4,
    F_id = 1 << 5,
    F_code = 1 << 6,
    F_msg = 1 << 7,
    F_levels = 1 << 8,
    F_bbo = 1 << 9,
};

typedef struct {
    unsigned seen;
    const char *e;
    size_t elen;
    int64_t t, a, luid;
} fields;

static int
int_field(lob_json *j, int64_t *v, unsigned *have, unsigned bit)
{
    LOB_FORWARD_IF_ERROR(lob_json_int64(j, v));
    *have |= bit;
    return LOB_OK;
}

/* The members of one object: nest 0 is the message, 1 a combined frame's "data". */
static int
members(lob_json *j, lob_peek *pk, fields *f, int nest)
{
    if (!lob_json_eat(j, '{')) {
        return lob_json_fail(j, "a JSON object", LOB_E_FORMAT);
    }
    int first = 1, r;
    const char *k;
    size_t kn;
    while ((r = lob_json_next_member(j, &first, &k, &kn)) == 1) {
        int c = lob_json_peek(j);
        int num = c == '-' || (c >= '0' && c <= '9');
        if (kn == 1 && num) {
            switch (k[0]) {
            case 'E': LOB_FORWARD_IF_ERROR(int_field(j, &pk->E, &pk->have, LOB_PK_E)); continue;
            case 'U': LOB_FORWARD_IF_ERROR(int_field(j, &pk->U, &pk->have, LOB_PK_U)); continue;
            case 'u': LOB_FORWARD_IF_ERROR(int_field(j, &pk->u, &pk->have, LOB_PK_u)); continue;
            case 't': LOB_FORWARD_IF_ERROR(int_field(j, &f->t, &f->seen, F_t)); continue;
            case 'a': LOB_FORWARD_IF_ERROR(int_field(j, &f->a, &f->seen, F_a)); continue;
            default: break;
            }
        }
        else if (kn == 1 && c == '"' && (k[0] == 'e' || k[0] == 's')) {
            if (k[0] == 'e') {
                LOB_FORWARD_IF_ERROR(lob_json_string(j, &f->e, &f->elen));
                f->seen |= F_e;
            }
            else {
                LOB_FORWARD_IF_ERROR(lob_json_string(j, &pk->sym, &pk->symlen));
            }
            continue;
        }
        else if (kn == 1 && (k[0] == 'b' || k[0] == 'a')) {
            f->seen |= c == '[' ? F_levels : c == '"' ? F_bbo : 0;
        }
        else if (IS(k, kn, "pu") && num) {
            LOB_FORWARD_IF_ERROR(int_field(j, &pk->pu, &pk->have, LOB_PK_pu));
            continue;
        }
        else if (IS(k, kn, "lastUpdateId") && num) {
            LOB_FORWARD_IF_ERROR(int_field(j, &f->luid, &f->seen, F_luid));
            continue;
        }
        else if (nest == 0 && IS(k, kn, "stream") && c == '"') {
            LOB_FORWARD_IF_ERROR(lob_json_string(j, &pk->stream, &pk->streamlen));
            continue;
        }
        else if (nest == 0 && IS(k, kn, "data") && c == '{') {
            LOB_FORWARD_IF_ERROR(members(j, pk, f, 1));
            continue;
        }
        else if (nest == 0 && IS(k, kn, "code") && num) {
            LOB_FORWARD_IF_ERROR(int_field(j, &pk->code, &f->seen, F_code));
            continue;
        }
        else if (nest == 0 && IS(k, kn, "msg") && c == '"') {
            LOB_FORWARD_IF_ERROR(lob_json_string(j, &pk->msg, &pk->msglen));
            f->seen |= F_msg;
            continue;
        }
        else if (nest == 0 && IS(k, kn, "result")) {
            f->seen |= F_result;
        }
        else if (nest == 0 && IS(k, kn, "id")) {
            f->seen |= F_id;
        }
        else if (IS(k, kn, "bids") || IS(k, kn, "asks")) {
            f->seen |= c == '[' ? F_levels : 0;
        }
        LOB_FORWARD_IF_ERROR(lob_json_skip(j, nest + 1));
    }
    return r;
}

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
set_id(lob_peek *pk, int kind, int has, int64_t id)
{
    pk->kind = kind;
    if (has) {
        pk->id = id;
        pk->have |= LOB_PK_ID;
    }
}

int
lob_peek_binance(const char *s, size_t n, lob_peek *pk, lob_error *err)
{
    memset(pk, 0, sizeof *pk);
    fields f = {0};
    lob_json j = {s, s + n, NULL};
    int rc = members(&j, pk, &f, 0);
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
    if (pk->symlen == 0 && pk->streamlen > 0) {
        const char *at = memchr(pk->stream, '@', pk->streamlen);
        pk->sym = pk->stream;
        pk->symlen = at ? (size_t)(at - pk->stream) : pk->streamlen;
        if (pk->symlen == 0 || pk->stream[0] == '!') {
            pk->sym = NULL; /* "!bookTicker", "!serverShutdown": every symbol or none */
            pk->symlen = 0;
        }
    }
    int has_e = (f.seen & F_e) != 0;
#define EV(lit) (has_e && IS(f.e, f.elen, lit))
    if (EV("depthUpdate")) {
        if (partial_stream(pk)) {
            set_id(pk, LOB_PK_PARTIAL, pk->have & LOB_PK_u, pk->u);
        }
        else {
            pk->kind = LOB_PK_DIFF;
        }
    }
    else if (EV("trade")) {
        set_id(pk, LOB_PK_TRADE, f.seen & F_t, f.t);
    }
    else if (EV("aggTrade")) {
        set_id(pk, LOB_PK_AGG, f.seen & F_a, f.a);
    }
    else if (EV("bookTicker") || (!has_e && (pk->have & LOB_PK_u) && (f.seen & F_bbo))) {
        set_id(pk, LOB_PK_QUOTE, pk->have & LOB_PK_u, pk->u);
    }
    else if (EV("serverShutdown")) {
        pk->kind = LOB_PK_SHUTDOWN;
    }
    else if (!has_e && (f.seen & F_luid) && (f.seen & F_levels)) {
        set_id(pk, pk->streamlen > 0 ? LOB_PK_PARTIAL : LOB_PK_SNAPSHOT, 1, f.luid);
    }
    else if (!has_e && (f.seen & F_code) && (f.seen & F_msg)) {
        pk->kind = LOB_PK_ERROR;
    }
    else if (!has_e && pk->streamlen == 0 && (f.seen & (F_result | F_id))) {
        pk->kind = LOB_PK_REPLY;
    }
    else {
        pk->kind = LOB_PK_OTHER;
    }
#undef EV
    return LOB_OK;
}
