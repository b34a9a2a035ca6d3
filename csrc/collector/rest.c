/* rest.c -- REST depth snapshots, one request at a time, inside the request-weight budget.
 *
 * At start every symbol is probed with a 5-level request (not recorded): an unknown symbol
 * stops the collector with the exchange's own words instead of recording silence.  Real
 * snapshots (first diff, gap, periodic, stale) are queued per symbol (at most one each) and
 * spent from a token bucket of --rest-weight per minute.  429/418 pause every request for
 * the server's Retry-After; every other failure (no answer, 5xx, 403, 404, a body that is no
 * snapshot, a redirect, which is never followed) backs off exponentially and asks again.
 */
#include "collector.h"

#include <stdlib.h>
#include <string.h>

#define LC_SEC ((int64_t)1000000000)
#define LC_BODY_MAX ((size_t)64 << 20)
#define LC_REST_TIMEOUT (30 * LC_SEC)

/* Request weight of a depth snapshot (PROTOCOLS: spot /api/v3/depth, USD-M /fapi/v1/depth). */
static int
weight(const lc_collector *c, int limit)
{
    if (c->cfg.usdm) {
        return limit <= 50 ? 2 : limit <= 100 ? 5 : limit <= 500 ? 10 : 20;
    }
    return limit <= 100 ? 5 : limit <= 500 ? 25 : limit <= 1000 ? 50 : 250;
}

void
lc_rest_init(lc_collector *c)
{
    lc_rest *r = &c->rest;
    memset(r, 0, sizeof *r);
    r->tag = LC_TAG_REST;
    r->tokens = c->cfg.rest_weight;
    r->refilled = lc_now(c);
    for (size_t i = 0; i < c->cfg.nsym; i++) {
        lc_rest_want(c, &c->syms[i], 1, "probe");
    }
}

static void
enqueue(lc_rest *r, lc_symbol *s, int front)
{
    s->snap = LC_SNAP_QUEUED;
    s->qnext = NULL;
    if (r->head == NULL) {
        r->head = r->tail = s;
    }
    else if (front) {
        s->qnext = r->head;
        r->head = s;
    }
    else {
        r->tail->qnext = s;
        r->tail = s;
    }
}

void
lc_rest_want(lc_collector *c, lc_symbol *s, int probe, const char *why)
{
    if (s->snap == LC_SNAP_QUEUED) {
        if (!probe && s->snap_probe) {
            s->snap_probe = 0; /* a real snapshot answers the probe's question too */
            s->snap_why = why;
        }
        return;
    }
    if (s->snap == LC_SNAP_INFLIGHT) {
        if (!probe && s->snap_probe) {
            s->want_again = 1;
            s->snap_why = why;
        }
        return; /* a snapshot under way: record.c checks that it bridges, and asks again */
    }
    s->snap_probe = probe;
    s->snap_why = why;
    enqueue(&c->rest, s, 0);
}

static void
start(lc_collector *c, lc_symbol *s, int64_t now)
{
    lc_rest *r = &c->rest;
    const lc_config *cf = &c->cfg;
    int limit = s->snap_probe ? 5 : cf->snapshot_limit;
    char path[700];
    snprintf(path, sizeof path, "%s%s?symbol=%s&limit=%d", cf->rest.prefix,
             cf->usdm ? "/fapi/v1/depth" : "/api/v3/depth", s->upper, limit);
    r->cur = s;
    r->done = 0;
    r->n = 0;
    r->status = 0;
    r->started = now;
    r->retry_after[0] = '\0';
    r->location[0] = '\0';
    s->snap = LC_SNAP_INFLIGHT;
    r->tokens -= weight(c, limit);
    if (!s->snap_probe) {
        c->st.snapshot_requests++;
        lc_sink_event(c, &s->sink, now,
                      "\"event\":\"snapshot_requested\",\"reason\":\"%s\",\"limit\":%d",
                      s->snap_why, limit);
    }
    struct lws_client_connect_info i;
    memset(&i, 0, sizeof i);
    i.context = c->ctx;
    i.address = cf->rest.host;
    i.port = cf->rest.port;
    i.path = path;
    i.host = cf->rest.host;
    i.origin = cf->rest.host;
    i.method = "GET";
    i.alpn = "http/1.1";
    i.ssl_connection = (cf->rest.tls ? LCCSCF_USE_SSL : 0) | LCCSCF_HTTP_NO_FOLLOW_REDIRECT;
    i.protocol = "lobfast-collect";
    i.local_protocol_name = "lobfast-collect";
    i.opaque_user_data = r;
    i.pwsi = &r->wsi;
    if (lws_client_connect_via_info(&i) == NULL && r->cur == s && !r->done) {
        r->wsi = NULL;
        r->done = 1; /* handled in the tick: a failure without an answer */
    }
}

/* After a failure: pause all requests (the exchange, or the path to it, is unwell). */
static void
backoff(lc_collector *c, lc_symbol *s, int64_t now, const char *what)
{
    lc_rest *r = &c->rest;
    r->attempts++;
    double secs = (double)(1 << (r->attempts < 6 ? r->attempts : 6));
    secs *= 0.5 + 0.5 * lc_random(c);
    r->paused_until = now + (int64_t)(secs * 1e9);
    lc_log(c, "%s: snapshot request failed (%s); retrying in %.1f s", s->name, what, secs);
    enqueue(r, s, 1);
}

/* Why an answer is not a usable depth snapshot, or NULL when it is one. */
static const char *
refusal(lc_rest *r, const lob_peek *pk, char *buf, size_t cap)
{
    int st = r->status;
    if (st == 0) {
        return "no answer";
    }
    if (st >= 300 && st < 400) {
        /* another host's book is not this exchange's: redirects are never followed */
        char where[300];
        snprintf(buf, cap, "HTTP %d redirect to '%s' refused", st,
                 r->location[0]
                     ? lc_printable(where, sizeof where, r->location, strlen(r->location))
                     : "(no Location)");
        return buf;
    }
    if (st != 200) {
        snprintf(buf, cap, "HTTP %d", st);
        return buf;
    }
    if (pk == NULL || pk->kind != LOB_PK_SNAPSHOT) {
        return "HTTP 200 but the body is not a depth snapshot";
    }
    if (memchr(r->body, '\n', r->n) || memchr(r->body, '\r', r->n)) {
        return "HTTP 200 but the snapshot spans several lines";
    }
    return NULL;
}

static void
finish(lc_collector *c, int64_t now)
{
    lc_rest *r = &c->rest;
    lc_symbol *s = r->cur;
    r->cur = NULL;
    if (r->wsi != NULL) {
        lws_set_opaque_user_data(r->wsi, NULL);
        lws_set_timeout(r->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        r->wsi = NULL;
    }
    s->snap = LC_SNAP_IDLE;
    int st = r->status;
    lob_peek body; /* what the answer is: a snapshot, an error body, or neither (NULL) */
    const lob_peek *pk =
        st != 0 && r->n > 0 && lob_peek_binance(r->body, r->n, &body, NULL) == LOB_OK ? &body
                                                                                      : NULL;
    char buf[400];
    const char *why = refusal(r, pk, buf, sizeof buf);
    if (why != NULL) {
        lc_stats_snapshot_failed(c, s, st, why);
    }
    if (!s->snap_probe) {
        lc_record_snapshot(c, s, st, why, r->body, r->n, pk);
    }
    if (st == 429 || st == 418) {
        int secs = atoi(r->retry_after);
        secs = secs > 0 ? secs : 60;
        r->paused_until = now + secs * LC_SEC;
        lc_log(c, "REST rate limit hit (HTTP %d): no requests for %d s", st, secs);
        enqueue(r, s, 1);
        return;
    }
    /* A probe refused with the exchange's 4xx (an unknown symbol, a wrong URL) stops the
     * collector; 403 is Binance's WAF limit, which passes.  Every other failure, probe or
     * snapshot, is asked again with backoff: a symbol is never left without a book. */
    int fatal = s->snap_probe && st >= 400 && st < 500 && st != 403;
    if (why != NULL && !fatal) {
        if (s->want_again) { /* the probe failed: ask for the snapshot wanted since instead */
            s->want_again = 0;
            s->snap_probe = 0;
        }
        backoff(c, s, now, why);
        return;
    }
    r->attempts = 0;
    if (fatal) {
        char msg[300];
        if (pk != NULL && pk->kind == LOB_PK_ERROR) {
            lc_fatal(c, 2, "symbol '%s': %s%s answered HTTP %d: %s (code %lld)", s->name,
                     c->cfg.rest.host, c->cfg.usdm ? "/fapi/v1/depth" : "/api/v3/depth", st,
                     lc_printable(msg, sizeof msg, pk->msg, pk->msglen < 200 ? pk->msglen : 200),
                     (long long)pk->code);
        }
        else {
            lc_fatal(c, 2, "symbol '%s': the REST endpoint answered HTTP %d", s->name, st);
        }
    }
    if (s->want_again) {
        s->want_again = 0;
        lc_rest_want(c, s, 0, s->snap_why);
    }
}

void
lc_rest_tick(lc_collector *c, int64_t now)
{
    lc_rest *r = &c->rest;
    if (r->cur != NULL) {
        if (r->done) {
            finish(c, now);
        }
        else if (now - r->started > LC_REST_TIMEOUT) {
            lc_log(c, "%s: snapshot request timed out", r->cur->name);
            r->status = 0;
            r->n = 0;
            finish(c, now);
        }
        return;
    }
    double budget = c->cfg.rest_weight;
    r->tokens += (double)(now - r->refilled) * budget / (60.0 * 1e9);
    r->tokens = r->tokens > budget ? budget : r->tokens;
    r->refilled = now;
    if (r->head == NULL || now < r->paused_until) {
        return;
    }
    lc_symbol *s = r->head;
    if (r->tokens < weight(c, s->snap_probe ? 5 : c->cfg.snapshot_limit)) {
        return;
    }
    r->head = s->qnext;
    if (r->head == NULL) {
        r->tail = NULL;
    }
    start(c, s, now);
}

static void
header(struct lws *wsi, const char *name, char *dst, int cap)
{
    int n = lws_hdr_custom_length(wsi, name, (int)strlen(name));
    if (n > 0 && n < cap) {
        lws_hdr_custom_copy(wsi, dst, cap, name, (int)strlen(name));
    }
}

int
lc_rest_callback(lc_collector *c, struct lws *wsi, int reason, void *in, size_t len)
{
    lc_rest *r = &c->rest;
    if (reason == LWS_CALLBACK_CLOSED_CLIENT_HTTP ||
        reason == LWS_CALLBACK_CLIENT_CONNECTION_ERROR) {
        lws_set_opaque_user_data(wsi, NULL);
        if (r->wsi == wsi) {
            r->wsi = NULL;
        }
    }
    if (r->cur == NULL || r->done) {
        return 0;
    }
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP: {
        r->status = (int)lws_http_client_http_response(wsi);
        char used[24] = "";
        header(wsi, "x-mbx-used-weight-1m:", used, sizeof used);
        if (used[0]) {
            r->used_weight = atoll(used);
        }
        if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_RETRY_AFTER) > 0) {
            lws_hdr_copy(wsi, r->retry_after, sizeof r->retry_after, WSI_TOKEN_HTTP_RETRY_AFTER);
        }
        if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_LOCATION) > 0) {
            lws_hdr_copy(wsi, r->location, sizeof r->location, WSI_TOKEN_HTTP_LOCATION);
        }
        break;
    }
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
        if (r->n + len > LC_BODY_MAX) {
            r->status = 0;
            r->done = 1;
            return -1;
        }
        if (r->n + len > r->cap) {
            size_t cap = (r->n + len) * 2;
            char *p = realloc(r->body, cap);
            if (p == NULL) {
                r->status = 0;
                r->done = 1;
                return -1;
            }
            r->body = p;
            r->cap = cap;
        }
        memcpy(r->body + r->n, in, len);
        r->n += len;
        break;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
        char buf[LWS_PRE + 16384];
        char *p = buf + LWS_PRE;
        int n = (int)sizeof buf - LWS_PRE;
        if (lws_http_client_read(wsi, &p, &n) < 0) {
            return -1;
        }
        return 0;
    }
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP: r->done = 1; break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
        char safe[300];
        lc_log(c, "%s: snapshot request: %s", r->cur->name,
               in ? lc_printable(safe, sizeof safe, in, len ? len : strlen(in)) : "error");
        r->status = 0;
        r->n = 0;
        r->done = 1;
        break;
    }
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
        r->status = 0; /* closed before the body was complete */
        r->n = 0;
        r->done = 1;
        break;
    default: break;
    }
    return 0;
}

void
lc_rest_free(lc_collector *c)
{
    free(c->rest.body);
    c->rest.body = NULL;
}
