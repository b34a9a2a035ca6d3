/* stats.c -- live statistics: a JSON object every --stats-every on stdout and, rewritten
 * atomically, in --stats-file (what lobfast.Collector.stats() reads). */
#include "collector.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

void
lc_stats_latency(lc_collector *c, int64_t us)
{
    lc_stats *st = &c->st;
    int64_t seen = st->lat_seen++;
    if (seen < LC_RESERVOIR) {
        st->lat[seen] = us;
    }
    else {
        /* reservoir sampling: every message of the interval equally likely to be kept */
        int64_t j = (int64_t)(lc_random(c) * (double)(seen + 1));
        if (j < LC_RESERVOIR) {
            st->lat[j] = us;
        }
    }
}

void
lc_stats_snapshot_failed(lc_collector *c, const lc_symbol *s, int status, const char *why)
{
    lc_stats *st = &c->st;
    st->snapshot_failures++;
    int i = 0;
    while (i < st->nfail_kinds && st->fail_by_status[i].status != status) {
        i++;
    }
    if (i == st->nfail_kinds && i < LC_FAIL_KINDS) {
        st->fail_by_status[st->nfail_kinds++].status = status;
    }
    if (i < LC_FAIL_KINDS) {
        st->fail_by_status[i].count++;
    }
    st->last_fail_status = status;
    st->last_fail_ns = lc_now(c);
    snprintf(st->last_fail_symbol, sizeof st->last_fail_symbol, "%s", s->name);
    snprintf(st->last_fail_why, sizeof st->last_fail_why, "%s", why);
}

static int
cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static long
status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL) {
        return -1;
    }
    char line[256];
    long v = -1;
    size_t n = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, n) == 0) {
            v = atol(line + n);
            break;
        }
    }
    fclose(f);
    return v;
}

/* Appends to a growing string (the stream list can be long). */
typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
put(sbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            return;
        }
        if (b->p != NULL && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = (b->cap + (size_t)k + 1) * 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

void
lc_stats_tick(lc_collector *c, int64_t now, int final)
{
    if (!final && now < c->next_stats) {
        return;
    }
    lc_stats *st = &c->st;
    double dt = (double)(now - c->stats_t0) / 1e9;
    dt = dt > 0 ? dt : 1e-9;
    c->stats_t0 = now;
    c->next_stats = now + c->cfg.stats_every_ns;
    int open = 0;
    for (size_t i = 0; i < c->nconns; i++) {
        open += c->conns[i]->state == LC_CONN_OPEN;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                 ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
    sbuf b = {0};
    put(&b,
        "{\"time_ns\":%lld,\"uptime_s\":%.3f,\"interval_s\":%.3f,\"final\":%s,"
        "\"messages\":%lld,\"bytes\":%lld,\"msg_per_s\":%.1f,\"mb_per_s\":%.3f,"
        "\"written_bytes\":%lld,\"gaps\":%lld,\"snapshots\":%lld,\"snapshot_requests\":%lld,"
        "\"snapshot_failures\":%lld,\"snapshot_stale\":%lld,\"connects\":%lld,"
        "\"disconnects\":%lld,\"reconnects\":%lld,\"switchovers\":%lld,\"malformed\":%lld,"
        "\"unexpected\":%lld,\"duplicates\":%lld,\"connections_open\":%d,"
        "\"rest_weight_used\":%lld,\"rss_kb\":%ld,\"max_rss_kb\":%ld,\"cpu_s\":%.3f,",
        (long long)now, (double)(now - c->started) / 1e9, dt, final ? "true" : "false",
        (long long)st->msgs, (long long)st->bytes, (double)(st->msgs - st->msgs_prev) / dt,
        (double)(st->bytes - st->bytes_prev) / dt / 1e6, (long long)st->written_bytes,
        (long long)st->gaps, (long long)st->snapshots, (long long)st->snapshot_requests,
        (long long)st->snapshot_failures, (long long)st->snapshot_stale, (long long)st->connects,
        (long long)st->disconnects, (long long)st->reconnects, (long long)st->switchovers,
        (long long)st->malformed, (long long)st->unexpected, (long long)st->duplicates, open,
        (long long)c->rest.used_weight, status_kb("VmRSS:"), status_kb("VmHWM:"), cpu);
    st->msgs_prev = st->msgs;
    st->bytes_prev = st->bytes;
    int64_t k = st->lat_seen < LC_RESERVOIR ? st->lat_seen : LC_RESERVOIR;
    if (k > 0) {
        qsort(st->lat, (size_t)k, sizeof *st->lat, cmp64);
        put(&b, "\"latency_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"messages\":%lld},",
            (double)st->lat[k / 2] / 1e3, (double)st->lat[(k * 99) / 100] / 1e3,
            (long long)st->lat_seen);
    }
    else {
        put(&b, "\"latency_ms\":null,");
    }
    st->lat_seen = 0;
    int unsynced = 0;
    for (size_t i = 0; i < c->cfg.nsym && c->syms != NULL; i++) {
        unsynced += c->syms[i].sync != LC_SYNC_OK;
    }
    put(&b, "\"books_unsynced\":%d,\"snapshot_failures_by_status\":{", unsynced);
    for (int i = 0; i < st->nfail_kinds; i++) {
        put(&b, "%s\"%d\":%lld", i ? "," : "", st->fail_by_status[i].status,
            (long long)st->fail_by_status[i].count);
    }
    if (st->last_fail_ns) {
        char why[sizeof st->last_fail_why * 6];
        put(&b,
            "},\"last_snapshot_failure\":{\"symbol\":\"%s\",\"status\":%d,\"reason\":\"%s\","
            "\"time_ns\":%lld},",
            st->last_fail_symbol, st->last_fail_status,
            lc_json_text(why, sizeof why, st->last_fail_why, strlen(st->last_fail_why)),
            (long long)st->last_fail_ns);
    }
    else {
        put(&b, "},\"last_snapshot_failure\":null,");
    }
    put(&b, "\"streams\":{");
    for (size_t i = 0; i < c->nstreams; i++) {
        lc_stream *s = &c->streams[i];
        put(&b, "%s\"%s\":{\"messages\":%lld,\"msg_per_s\":%.1f,\"bytes\":%lld}", i ? "," : "",
            s->name, (long long)s->msgs, (double)(s->msgs - s->msgs_prev) / dt,
            (long long)s->bytes);
        s->msgs_prev = s->msgs;
    }
    put(&b, "}}\n");
    if (b.p == NULL) {
        return;
    }
    if (!c->cfg.quiet) {
        fwrite(b.p, 1, b.n, stdout);
        fflush(stdout);
    }
    if (c->cfg.stats_file != NULL) {
        char tmp[1100];
        snprintf(tmp, sizeof tmp, "%s.tmp", c->cfg.stats_file);
        FILE *f = fopen(tmp, "w");
        int ok = f != NULL && fwrite(b.p, 1, b.n, f) == b.n;
        if (f != NULL) {
            ok &= fclose(f) == 0;
        }
        if (!ok || rename(tmp, c->cfg.stats_file) != 0) {
            lc_log(c, "cannot write the stats file %s", c->cfg.stats_file);
        }
    }
    free(b.p);
}
