/* record.c -- what each message means for its symbol, and the lines that say so.
 *
 * Every data frame is recorded: routed to its symbol's file by the combined-stream name,
 * or to the collector's own file when it names no known stream (replies, serverShutdown),
 * or wrapped as a {"lobfast":{"event":"malformed",..}} line (base64) when it is not one
 * JSON object.  Depth diffs are checked with the core's sequence rules: the first diff and
 * every gap ask for a REST snapshot, and a snapshot that cannot bridge the diffs since is
 * asked for again.  While a connection is being replaced, both deliver the same streams;
 * a message is then kept once, by its stream's id (update id, trade id, agg id).
 */
#include "collector.h"

#include "core/formats/sequence.h"
#include "core/formats/text.h"

#include <stdlib.h>
#include <string.h>

int
lc_record_init(lc_collector *c)
{
    const lc_config *cf = &c->cfg;
    c->syms = calloc(cf->nsym, sizeof *c->syms);
    c->nstreams = cf->nsym * cf->nstreams;
    c->streams = calloc(c->nstreams, sizeof *c->streams);
    size_t tsize = 16;
    while (tsize < 2 * c->nstreams) {
        tsize *= 2;
    }
    c->table = calloc(tsize, sizeof *c->table);
    c->tmask = tsize - 1;
    if (c->syms == NULL || c->streams == NULL || c->table == NULL) {
        lc_fatal(c, 1, "out of memory");
        return -1;
    }
    if (lc_sink_init(c, &c->events, "_collector") < 0) {
        return -1;
    }
    for (size_t i = 0; i < cf->nsym; i++) {
        lc_symbol *s = &c->syms[i];
        snprintf(s->name, sizeof s->name, "%s", cf->symbols[i]);
        for (size_t k = 0; s->name[k]; k++) {
            char ch = s->name[k];
            s->upper[k] = ch >= 'a' && ch <= 'z' ? (char)(ch - 32) : ch;
        }
        if (lc_sink_init(c, &s->sink, s->name) < 0) {
            return -1;
        }
        for (size_t j = 0; j < cf->nstreams; j++) {
            lc_stream *st = &c->streams[i * cf->nstreams + j];
            snprintf(st->name, sizeof st->name, "%s@%s", s->name, cf->streams[j]);
            st->sym = s;
            /* USD-M: book streams are served under /public, the rest under /market */
            st->route = strncmp(cf->streams[j], "depth", 5) == 0 ||
                                strcmp(cf->streams[j], "bookTicker") == 0
                            ? 0
                            : 1;
            size_t h = lob_hash(st->name, strlen(st->name)) & c->tmask;
            while (c->table[h] != NULL) {
                h = (h + 1) & c->tmask;
            }
            c->table[h] = st;
        }
    }
    return 0;
}

lc_stream *
lc_stream_find(lc_collector *c, const char *name, size_t n)
{
    size_t h = lob_hash(name, n) & c->tmask;
    for (lc_stream *st; (st = c->table[h]) != NULL; h = (h + 1) & c->tmask) {
        if (strlen(st->name) == n && memcmp(st->name, name, n) == 0) {
            return st;
        }
    }
    return NULL;
}

static void
base64(char *dst, const unsigned char *s, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t k = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        v |= i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0;
        v |= i + 2 < n ? s[i + 2] : 0;
        dst[k++] = tab[(v >> 18) & 63];
        dst[k++] = tab[(v >> 12) & 63];
        dst[k++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        dst[k++] = i + 2 < n ? tab[v & 63] : '=';
    }
    dst[k] = '\0';
}

/* A frame that is not one JSON object (or not text): kept whole, base64, in the collector's
 * file, so nothing is lost and readers of the symbol files are not derailed. */
static void
record_malformed(lc_collector *c, lc_conn *k, int64_t now, const char *msg, size_t n,
                 const char *why)
{
    c->st.malformed++;
    /* `why` is the parser's message: it quotes the frame escaped (lob_show), printable only */
    if (c->st.malformed <= 10 || c->st.malformed % 1000 == 0) {
        lc_log(c, "conn %d: malformed frame #%lld (%zu bytes) kept in _collector: %s", k->id,
               (long long)c->st.malformed, n, why);
    }
    size_t cap = 160 + 4 * (n / 3 + 1) + 512;
    char *line = malloc(cap);
    if (line == NULL) {
        lc_fatal(c, 1, "out of memory");
        return;
    }
    char reason[300];
    int h = snprintf(line, cap,
                     "{\"lobfast\":{\"event\":\"malformed\",\"conn\":%d,\"reason\":\"%s\","
                     "\"base64\":\"",
                     k->id, lc_json_text(reason, sizeof reason, why, strlen(why)));
    base64(line + h, (const unsigned char *)msg, n);
    size_t len = strlen(line);
    memcpy(line + len, "\"}}", 4);
    lc_sink_line(c, &c->events, now, line, len + 3);
    free(line);
}

/* A message already recorded from the other connection of a switch-over. */
static int
duplicate(const lc_stream *st, int64_t id, uint64_t h)
{
    if (!st->have_id || id > st->id) {
        return 0;
    }
    if (id < st->id) {
        return 1;
    }
    for (int i = 0; i < st->nhash; i++) {
        if (st->hashes[i] == h) {
            return 1;
        }
    }
    return 0;
}

static void
remember(lc_stream *st, int64_t id, uint64_t h)
{
    if (!st->have_id || id != st->id) {
        st->have_id = 1;
        st->id = id;
        st->nhash = 0;
    }
    st->hashes[st->nhash++ % LC_HASHES] = h;
    if (st->nhash > LC_HASHES) {
        st->nhash = LC_HASHES;
    }
}

static void
want_snapshot(lc_collector *c, lc_symbol *s, const char *why)
{
    s->sync = LC_SYNC_WANT;
    lc_rest_want(c, s, 0, why);
}

static void
on_diff(lc_collector *c, lc_symbol *s, lc_conn *k, int64_t now, const lob_peek *pk)
{
    int usdm = c->cfg.usdm;
    if (!(pk->have & LOB_PK_U) || !(pk->have & LOB_PK_u) || (usdm && !(pk->have & LOB_PK_pu))) {
        return; /* not a diff this collector can check; recorded all the same */
    }
    int64_t pu = pk->have & LOB_PK_pu ? pk->pu : 0;
    int r = s->have_u ? lob_seq_check(usdm, s->last_u, pk->U, pk->u, pu) : LOB_SEQ_GAP;
    if (r == LOB_SEQ_STALE) {
        return;
    }
    if (r == LOB_SEQ_GAP) {
        if (s->have_u) {
            c->st.gaps++;
            lc_log(c, "%s: sequence gap on conn %d: last u %lld, then U %lld pu %lld", s->name,
                   k->id, (long long)s->last_u, (long long)pk->U, (long long)pu);
            lc_sink_event(c, &s->sink, now,
                          "\"event\":\"gap\",\"conn\":%d,\"last_u\":%lld,\"U\":%lld,\"u\":%lld,"
                          "\"pu\":%lld",
                          k->id, (long long)s->last_u, (long long)pk->U, (long long)pk->u,
                          (long long)pu);
        }
        s->have_first = 1;
        s->first_U = pk->U;
        s->first_u = pk->u;
        s->first_pu = pu;
        want_snapshot(c, s, s->have_u ? "gap" : "first diff");
    }
    s->have_u = 1;
    s->last_u = pk->u;
}

void
lc_record_message(lc_collector *c, lc_conn *k, const char *msg, size_t n, int binary)
{
    int64_t now = lc_now(c);
    k->last_rx = now;
    c->st.msgs++;
    c->st.bytes += (int64_t)n;
    lob_peek pk;
    lob_error err = {0};
    if (binary) {
        record_malformed(c, k, now, msg, n, "a binary frame");
        return;
    }
    if (lob_peek_binance(msg, n, &pk, &err) < 0) {
        record_malformed(c, k, now, msg, n, err.msg);
        return;
    }
    if (memchr(msg, '\n', n) || memchr(msg, '\r', n)) {
        /* valid JSON spread over lines: one line per record is the format */
        record_malformed(c, k, now, msg, n, "a line break inside the message");
        return;
    }
    lc_stream *st = pk.streamlen ? lc_stream_find(c, pk.stream, pk.streamlen) : NULL;
    if (st == NULL) {
        if (pk.kind == LOB_PK_SHUTDOWN) {
            lc_log(c, "conn %d: the server announced serverShutdown: replacing the connection",
                   k->id);
            lc_ws_replace(c, k->slot, "serverShutdown");
        }
        else {
            c->st.unexpected++;
        }
        lc_sink_line(c, &c->events, now, msg, n);
        return;
    }
    if (pk.have & LOB_PK_E) {
        lc_stats_latency(c, now / 1000 - pk.E * 1000);
    }
    lc_slot *slot = k->slot;
    if (pk.have & LOB_PK_ID || pk.kind == LOB_PK_DIFF) {
        int64_t id = pk.kind == LOB_PK_DIFF ? pk.u : pk.id;
        uint64_t h = lob_hash(msg, n);
        if (now < slot->dedupe_until && duplicate(st, id, h)) {
            c->st.duplicates++;
            if (k == slot->next) {
                slot->dup_seen = 1;
            }
            return;
        }
        remember(st, id, h);
    }
    else if (k != slot->active && slot->active != NULL) {
        /* no id to tell copies apart: the active connection speaks for the stream */
        c->st.duplicates++;
        return;
    }
    st->msgs++;
    st->bytes += (int64_t)n;
    lc_symbol *s = st->sym;
    lc_sink_line(c, &s->sink, now, msg, n);
    if (pk.kind == LOB_PK_DIFF) {
        on_diff(c, s, k, now, &pk);
    }
}

void
lc_record_conn_event(lc_collector *c, lc_conn *k, const char *event, const char *detail)
{
    int64_t now = lc_now(c);
    char esc[400];
    lc_json_text(esc, sizeof esc, detail ? detail : "", detail ? strlen(detail) : 0);
    lc_sink_event(c, &c->events, now, "\"event\":\"%s\",\"conn\":%d,\"detail\":\"%s\"", event,
                  k->id, esc);
    lc_symbol *last = NULL;
    for (size_t i = 0; i < k->slot->n; i++) {
        lc_symbol *s = k->slot->streams[i]->sym;
        if (s != last) { /* a slot's streams are grouped by symbol */
            lc_sink_event(c, &s->sink, now, "\"event\":\"%s\",\"conn\":%d,\"detail\":\"%s\"", event,
                          k->id, esc);
            last = s;
        }
    }
}

void
lc_record_snapshot(lc_collector *c, lc_symbol *s, int status, const char *why, const char *body,
                   size_t n, const lob_peek *pk)
{
    int64_t now = lc_now(c);
    if (why != NULL) {
        char safe[400], esc[800];
        int said = status != 200 && pk != NULL && pk->kind == LOB_PK_ERROR; /* Binance's words */
        const char *what = said ? pk->msg : body;
        size_t wn = said ? pk->msglen : n;
        lc_printable(safe, sizeof safe, what, wn < 200 ? wn : 200);
        lc_log(c, "%s: depth snapshot failed: %s%s%s", s->name, why, safe[0] ? ": " : "", safe);
        lc_json_text(esc, sizeof esc, safe, strlen(safe));
        char reason[600];
        lc_json_text(reason, sizeof reason, why, strlen(why));
        lc_sink_event(c, &s->sink, now,
                      "\"event\":\"snapshot_failed\",\"status\":%d,\"reason\":\"%s\","
                      "\"detail\":\"%s\"",
                      status, reason, esc);
        return;
    }
    c->st.snapshots++;
    lc_sink_line(c, &s->sink, now, body, n);
    int64_t L = pk->id;
    int usdm = c->cfg.usdm;
    /* a snapshot older than the first diff since the book was last unknown cannot be
     * bridged by any diff recorded since: the reader would wait for the next one */
    if (s->have_first && !lob_seq_covered(usdm, L, s->first_u) &&
        !lob_seq_bridges(usdm, L, s->first_U, s->first_u, s->first_pu)) {
        c->st.snapshot_stale++;
        lc_log(c, "%s: snapshot lastUpdateId %lld is older than the first diff (U %lld): again",
               s->name, (long long)L, (long long)s->first_U);
        lc_sink_event(c, &s->sink, now,
                      "\"event\":\"snapshot_stale\",\"lastUpdateId\":%lld,\"first_U\":%lld",
                      (long long)L, (long long)s->first_U);
        lc_rest_want(c, s, 0, "stale snapshot");
        return;
    }
    s->sync = LC_SYNC_OK;
    s->have_first = 0;
    if (c->cfg.snapshot_every_ns > 0) {
        /* +-10 %: symbols synced together do not ask again all at once */
        s->next_periodic =
            now + (int64_t)((double)c->cfg.snapshot_every_ns * (0.9 + 0.2 * lc_random(c)));
    }
}

void
lc_record_tick(lc_collector *c, int64_t now)
{
    for (size_t i = 0; i < c->cfg.nsym; i++) {
        lc_symbol *s = &c->syms[i];
        if (s->sync == LC_SYNC_OK && c->cfg.snapshot_every_ns > 0 && now >= s->next_periodic) {
            s->next_periodic = now + c->cfg.snapshot_every_ns;
            lc_rest_want(c, s, 0, "periodic");
        }
        lc_sink_flush_old(c, &s->sink, now);
    }
    lc_sink_flush_old(c, &c->events, now);
}

void
lc_record_free(lc_collector *c)
{
    if (c->syms != NULL) {
        for (size_t i = 0; i < c->cfg.nsym; i++) {
            lc_sink_close(c, &c->syms[i].sink);
        }
    }
    lc_sink_close(c, &c->events);
    free(c->syms);
    free(c->streams);
    free(c->table);
    c->syms = NULL;
    c->streams = NULL;
    c->table = NULL;
}
