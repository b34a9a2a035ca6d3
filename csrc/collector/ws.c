/* ws.c -- combined-stream connections: one per slot of <= --max-streams streams (USD-M:
 * /public and /market routes apart), kept alive with exponential backoff and jitter.
 *
 * Slots are also cut so that no URL passes LC_PATH_MAX.
 *
 * Planned switches (the 24 h cut-off, serverShutdown, a stalled connection) are
 * make-before-break: the replacement connects while the old one still records; both deliver
 * the same streams for a moment and record.c keeps each message once by its id.  The old
 * connection is closed once the new one has delivered a message the old one already had
 * (proof that nothing falls between them), or after LC_OVERLAP_MAX.
 */
#include "collector.h"

#include <stdlib.h>
#include <string.h>

#define LC_SEC ((int64_t)1000000000)
#define LC_OVERLAP_MIN (LC_SEC / 2) /* keep both at least this long */
#define LC_OVERLAP_MAX (10 * LC_SEC)
#define LC_DEDUPE_AFTER (10 * LC_SEC) /* the new connection may lag the old one this much */
#define LC_RX_MAX ((size_t)64 << 20)
/* libwebsockets 4.1 keeps at most ~2 KiB of a client's request path (longer ones are cut and
 * the server refuses the handshake), so a slot also ends before its URL would pass this. */
#define LC_PATH_MAX 1900

const struct lws_extension lc_ws_extensions[] = {
    {"permessage-deflate", lws_extension_callback_pm_deflate,
     "permessage-deflate; client_no_context_takeover; client_max_window_bits"},
    {NULL, NULL, NULL},
};

/* lws probes the connection with a PING after 30 s without a PONG and gives up after 75 s:
 * a dead TCP path is found even when the exchange sends nothing. */
static const lws_retry_bo_t keepalive = {
    .secs_since_valid_ping = 30,
    .secs_since_valid_hangup = 75,
};

static int
add_slot(lc_collector *c, lc_stream **list, size_t n, int route)
{
    const lc_config *cf = &c->cfg;
    const char *r = !cf->usdm ? "" : route == 0 ? "/public" : "/market";
    size_t len = strlen(cf->ws.prefix) + strlen(r) + 32;
    for (size_t i = 0; i < n; i++) {
        len += strlen(list[i]->name) + 1;
    }
    lc_slot *grown = realloc(c->slots, (c->nslots + 1) * sizeof *grown);
    char *path = malloc(len);
    lc_stream **streams = malloc(n * sizeof *streams);
    if (grown == NULL || path == NULL || streams == NULL) {
        free(path);
        free(streams);
        if (grown != NULL) {
            c->slots = grown;
        }
        lc_fatal(c, 1, "out of memory");
        return -1;
    }
    c->slots = grown;
    size_t k = (size_t)snprintf(path, len, "%s%s/stream?streams=", cf->ws.prefix, r);
    for (size_t i = 0; i < n; i++) {
        k += (size_t)snprintf(path + k, len - k, "%s%s", i ? "/" : "", list[i]->name);
        streams[i] = list[i];
    }
    lc_slot *s = &c->slots[c->nslots];
    memset(s, 0, sizeof *s);
    s->index = (int)c->nslots++;
    s->path = path;
    s->streams = streams;
    s->n = n;
    s->route = route;
    return 0;
}

static void conn_start(lc_collector *c, lc_slot *s, int as_next);

int
lc_ws_init(lc_collector *c)
{
    lc_stream **list = malloc(c->nstreams * sizeof *list);
    if (list == NULL) {
        lc_fatal(c, 1, "out of memory");
        return -1;
    }
    for (int route = 0; route < (c->cfg.usdm ? 2 : 1); route++) {
        size_t n = 0, path = 0; /* streams in the slot being filled, and its URL's length */
        for (size_t i = 0; i < c->nstreams; i++) {
            if (c->cfg.usdm && c->streams[i].route != route) {
                continue;
            }
            size_t len = strlen(c->streams[i].name) + 1;
            if (n > 0 && path + len > LC_PATH_MAX) {
                if (add_slot(c, list, n, route) < 0) {
                    free(list);
                    return -1;
                }
                n = 0;
            }
            if (n == 0) {
                path = strlen(c->cfg.ws.prefix) + 32; /* the route and "/stream?streams=" */
            }
            path += len;
            list[n++] = &c->streams[i];
            if (n == (size_t)c->cfg.max_streams) {
                if (add_slot(c, list, n, route) < 0) {
                    free(list);
                    return -1;
                }
                n = 0;
            }
        }
        if (n > 0 && add_slot(c, list, n, route) < 0) {
            free(list);
            return -1;
        }
    }
    free(list);
    for (size_t i = 0; i < c->nslots; i++) {
        lc_log(c, "slot %zu: %zu streams on %s%s:%d%.120s%s", i, c->slots[i].n,
               c->cfg.ws.tls ? "wss://" : "ws://", c->cfg.ws.host, c->cfg.ws.port, c->slots[i].path,
               strlen(c->slots[i].path) > 120 ? "..." : "");
        conn_start(c, &c->slots[i], 0);
    }
    return 0;
}

static void
conn_list_add(lc_collector *c, lc_conn *k)
{
    if (c->nconns == c->conns_cap) {
        size_t cap = c->conns_cap ? 2 * c->conns_cap : 16;
        lc_conn **p = realloc(c->conns, cap * sizeof *p);
        if (p == NULL) {
            lc_fatal(c, 1, "out of memory");
            return;
        }
        c->conns = p;
        c->conns_cap = cap;
    }
    c->conns[c->nconns++] = k;
}

/* The slot lost its connection: reconnect after 0.5 s * 2^attempts (at most 30 s), less up to
 * half at random, so many collectors (or slots) do not come back in step. */
static void
schedule_retry(lc_collector *c, lc_slot *s, const char *why)
{
    if (c->stop) {
        return;
    }
    double base = 0.5 * (double)(1 << (s->attempts < 6 ? s->attempts : 6));
    base = base > 30 ? 30 : base;
    double delay = base * (0.5 + 0.5 * lc_random(c));
    s->attempts++;
    s->retry_at = lc_now(c) + (int64_t)(delay * 1e9);
    lc_log(c, "slot %d: %s; reconnecting in %.1f s (attempt %d)", s->index, why, delay,
           s->attempts);
}

static void conn_gone(lc_collector *c, lc_conn *k, const char *why);

static void
conn_start(lc_collector *c, lc_slot *s, int as_next)
{
    lc_conn *k = calloc(1, sizeof *k);
    if (k == NULL) {
        lc_fatal(c, 1, "out of memory");
        return;
    }
    k->tag = LC_TAG_WS;
    k->id = ++c->next_conn_id;
    k->slot = s;
    k->state = LC_CONN_CONNECTING;
    k->opened = lc_now(c);
    conn_list_add(c, k);
    if (as_next) {
        s->next = k;
        s->dup_seen = 0;
        s->dedupe_until = INT64_MAX;
    }
    else {
        s->active = k;
    }
    s->retry_at = 0;
    const lc_config *cf = &c->cfg;
    struct lws_client_connect_info i;
    memset(&i, 0, sizeof i);
    i.context = c->ctx;
    i.address = cf->ws.host;
    i.port = cf->ws.port;
    i.path = s->path;
    i.host = cf->ws.host;
    i.origin = cf->ws.host;
    i.ssl_connection = (cf->ws.tls ? LCCSCF_USE_SSL | LCCSCF_PRIORITIZE_READS : 0) |
                       LCCSCF_HTTP_NO_FOLLOW_REDIRECT; /* another host's stream is not ours */
    i.protocol = NULL;
    i.local_protocol_name = "lobfast-collect";
    i.opaque_user_data = k;
    i.retry_and_idle_policy = &keepalive;
    i.pwsi = &k->wsi;
    if (lws_client_connect_via_info(&i) == NULL && k->state != LC_CONN_GONE) {
        k->wsi = NULL;
        conn_gone(c, k, "the connection could not be started");
    }
}

/* Make `k` the slot's active connection; the one it replaces is closed. */
static void
promote(lc_collector *c, lc_slot *s, int64_t now)
{
    lc_conn *old = s->active, *k = s->next;
    s->active = k;
    s->next = NULL;
    s->dedupe_until = now + LC_DEDUPE_AFTER;
    if (old != NULL && old->state != LC_CONN_GONE) {
        old->retiring = 1;
        c->st.switchovers++;
        lc_log(c, "slot %d: switched from conn %d to conn %d (%s)", s->index, old->id, k->id,
               s->dup_seen ? "overlap seen" : "no overlap seen in time");
        if (old->wsi != NULL) {
            lws_set_timeout(old->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        }
    }
}

static void
conn_gone(lc_collector *c, lc_conn *k, const char *why)
{
    if (k->state == LC_CONN_GONE) {
        return;
    }
    int was_open = k->state == LC_CONN_OPEN;
    k->state = LC_CONN_GONE;
    if (k->wsi != NULL) {
        lws_set_opaque_user_data(k->wsi, NULL);
        k->wsi = NULL;
    }
    lc_slot *s = k->slot;
    if (why != NULL && !k->why[0]) {
        snprintf(k->why, sizeof k->why, "%s", why);
    }
    if (was_open) {
        c->st.disconnects++;
        lc_record_conn_event(c, k, k->retiring ? "closed_replaced" : "disconnect", k->why);
    }
    if (k->retiring || c->stop) {
        lc_log(c, "conn %d closed%s", k->id, k->retiring ? " (replaced)" : "");
        return;
    }
    lc_log(c, "conn %d %s: %s", k->id, was_open ? "lost" : "failed", k->why[0] ? k->why : "?");
    if (k == s->active) {
        s->active = NULL;
        if (s->next != NULL && s->next->state == LC_CONN_OPEN) {
            promote(c, s, lc_now(c));
        }
        else if (s->next == NULL) {
            c->st.reconnects++;
            schedule_retry(c, s, was_open ? "connection lost" : "connection failed");
        }
        /* else: the replacement is connecting and takes over when it is up */
    }
    else if (k == s->next) {
        s->next = NULL;
        s->dedupe_until = lc_now(c) + LC_DEDUPE_AFTER;
        if (s->active == NULL) {
            c->st.reconnects++;
            schedule_retry(c, s, "connection failed");
        }
        else {
            /* the old connection still records: the next replacement waits out the backoff
             * (without this, the tick would ask for one every 100 ms of a failing server) */
            schedule_retry(c, s, "the replacement failed");
        }
    }
}

void
lc_ws_replace(lc_collector *c, lc_slot *s, const char *why)
{
    if (c->stop || s->next != NULL || s->active == NULL || s->active->state != LC_CONN_OPEN ||
        (s->retry_at && lc_now(c) < s->retry_at)) {
        return;
    }
    snprintf(s->plan, sizeof s->plan, "%s", why);
    lc_log(c, "slot %d: opening a replacement for conn %d (%s)", s->index, s->active->id, why);
    conn_start(c, s, 1);
}

void
lc_ws_tick(lc_collector *c, int64_t now)
{
    for (size_t i = 0; i < c->nslots; i++) {
        lc_slot *s = &c->slots[i];
        if (s->active == NULL && s->next == NULL) {
            if (s->retry_at && now >= s->retry_at) {
                conn_start(c, s, 0);
            }
            continue;
        }
        lc_conn *a = s->active, *n = s->next;
        if (n != NULL && n->state == LC_CONN_OPEN && now - n->opened >= LC_OVERLAP_MIN &&
            (s->dup_seen || now - n->opened >= LC_OVERLAP_MAX)) {
            promote(c, s, now);
            continue;
        }
        if (a == NULL || a->state != LC_CONN_OPEN || n != NULL) {
            continue;
        }
        if (now - a->opened >= c->cfg.conn_lifetime_ns) {
            lc_ws_replace(c, s, "connection lifetime");
        }
        else if (now - (a->last_rx > a->opened ? a->last_rx : a->opened) >= c->cfg.stall_ns) {
            char why[64];
            snprintf(why, sizeof why, "no data for %.0f s",
                     (double)c->cfg.stall_ns / (double)LC_SEC);
            lc_ws_replace(c, s, why);
        }
    }
    /* free what is gone */
    size_t w = 0;
    for (size_t i = 0; i < c->nconns; i++) {
        lc_conn *k = c->conns[i];
        if (k->state == LC_CONN_GONE) {
            free(k->rx);
            free(k);
        }
        else {
            c->conns[w++] = k;
        }
    }
    c->nconns = w;
}

static void
on_receive(lc_collector *c, lc_conn *k, struct lws *wsi, const char *in, size_t len)
{
    int first = lws_is_first_fragment(wsi), final = lws_is_final_fragment(wsi);
    if (first) {
        k->rxn = 0;
        k->rx_binary = lws_frame_is_binary(wsi);
    }
    if (first && final) {
        lc_record_message(c, k, in, len, k->rx_binary); /* the usual case: no copy */
        return;
    }
    if (k->rxn + len > LC_RX_MAX) {
        lc_log(c, "conn %d: a message over %zu MiB: dropping the connection", k->id,
               LC_RX_MAX >> 20);
        snprintf(k->why, sizeof k->why, "a message over %zu MiB", LC_RX_MAX >> 20);
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        k->rxn = 0;
        return;
    }
    if (k->rxn + len > k->rxcap) {
        size_t cap = (k->rxn + len) * 2;
        char *p = realloc(k->rx, cap);
        if (p == NULL) {
            lc_fatal(c, 1, "out of memory for a %zu-byte message", k->rxn + len);
            return;
        }
        k->rx = p;
        k->rxcap = cap;
    }
    memcpy(k->rx + k->rxn, in, len);
    k->rxn += len;
    if (final) {
        lc_record_message(c, k, k->rx, k->rxn, k->rx_binary);
        k->rxn = 0;
        if (k->rxcap > ((size_t)1 << 20)) {
            free(k->rx); /* keep memory flat after one huge message */
            k->rx = NULL;
            k->rxcap = 0;
        }
    }
}

int
lc_ws_callback(lc_collector *c, struct lws *wsi, int reason, void *in, size_t len)
{
    lc_conn *k = lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED: {
        lc_slot *s = k->slot;
        k->state = LC_CONN_OPEN;
        k->opened = lc_now(c);
        c->st.connects++;
        s->attempts = 0;
        lc_log(c, "conn %d open: slot %d, %zu streams%s", k->id, s->index, s->n,
               k == s->next ? " (replacement)" : "");
        lc_record_conn_event(c, k, "connect", k == s->next ? s->plan : "");
        if (k == s->next && (s->active == NULL || s->active->state == LC_CONN_GONE)) {
            promote(c, s, k->opened);
        }
        break;
    }
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (k->state == LC_CONN_OPEN) {
            on_receive(c, k, wsi, in, len);
        }
        break;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (len >= 2) {
            const unsigned char *p = in;
            char reason[100]; /* the peer's bytes: anything, a terminal's escapes included */
            lc_printable(reason, sizeof reason, (const char *)in + 2, len - 2);
            snprintf(k->why, sizeof k->why, "the server closed it (code %d%s%s)", p[0] << 8 | p[1],
                     len > 2 ? ": " : "", reason);
        }
        else {
            snprintf(k->why, sizeof k->why, "the server closed it");
        }
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
        char why[140];
        if (in != NULL) {
            lc_printable(why, sizeof why, in, len > 0 ? len : strlen(in));
        }
        else {
            snprintf(why, sizeof why, "connection error");
        }
        conn_gone(c, k, why);
        break;
    }
    case LWS_CALLBACK_CLIENT_CLOSED: conn_gone(c, k, "closed"); break;
    default: break;
    }
    return 0;
}

void
lc_ws_free(lc_collector *c)
{
    for (size_t i = 0; i < c->nconns; i++) {
        free(c->conns[i]->rx);
        free(c->conns[i]);
    }
    free(c->conns);
    c->conns = NULL;
    c->nconns = 0;
    for (size_t i = 0; i < c->nslots; i++) {
        free(c->slots[i].path);
        free(c->slots[i].streams);
    }
    free(c->slots);
    c->slots = NULL;
    c->nslots = 0;
}
