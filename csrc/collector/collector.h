/* collector.h -- lobfast-collect: records Binance spot / USD-M streams to raw line files.
 *
 * One process, one thread, one libwebsockets event loop.  Messages are stamped on arrival,
 * checked with the core's Binance peek and sequence rules, and appended as
 * "<receive ns> <message>" lines to one file per symbol (sink.c), cut into ~1 s zstd frames.
 * ws.c keeps the combined-stream connections alive (backoff, make-before-break), rest.c
 * fetches depth snapshots inside the exchange's request weights, record.c decides what
 * each message means for its symbol (gap -> snapshot, duplicates during a switch-over);
 * util.c holds what they all use (receive time, logging, randomness, text made safe) and
 * main.c only sets up, runs and stops the loop.
 */
#ifndef LC_COLLECTOR_H
#define LC_COLLECTOR_H

#include "core/formats/peek.h"
#include "core/io/zframes.h"

#include <libwebsockets.h>
#include <stdint.h>
#include <stdio.h>

#define LC_NAME_MAX 32 /* symbol names (Binance's are <= 20) */
#define LC_HASHES 4    /* payload hashes kept for one id, for duplicates with equal ids */
#define LC_RESERVOIR 4096
#define LC_FAIL_KINDS 16 /* distinct HTTP statuses counted in the stats */

/* ------------------------------------------------------------------ configuration */

typedef struct {
    int tls;
    char host[256];
    int port;
    char prefix[512]; /* path before the route ("" or "/x") */
} lc_url;

typedef struct {
    int usdm;
    char **symbols; /* lower case */
    size_t nsym;
    char **streams; /* per-symbol stream suffixes: "depth@100ms", "trade", ... */
    size_t nstreams;
    const char *out;
    lc_url ws, rest;
    int64_t rotate_ns, snapshot_every_ns, conn_lifetime_ns, stall_ns, frame_ns, stats_every_ns;
    int64_t max_file_bytes;
    size_t frame_bytes;
    int snapshot_limit, rest_weight, max_streams, level, quiet;
    const char *stats_file;
} lc_config;

/* @return 0, 1 after --help / --version (printed), or -1 with `why` set. */
int lc_config_parse(lc_config *c, int argc, char **argv, char *why, size_t whylen);
void lc_config_free(lc_config *c);
int lc_url_parse(const char *s, int ws, lc_url *u, char *why, size_t whylen);

/* ------------------------------------------------------------------ files */

typedef struct {
    char dir[1024];  /* OUT/<venue>/<symbol> */
    char path[1100]; /* the file being written ("" when none is open) */
    lob_zwriter *w;
    char *buf; /* the frame being filled */
    size_t n, cap;
    int64_t frame_t0;     /* receive time of the frame's first line */
    int64_t period_end;   /* the rotation boundary of the open file */
    int64_t file_bytes;   /* compressed bytes in the open file */
    int64_t last_name_ms; /* names only grow */
} lc_sink;

/* ------------------------------------------------------------------ symbols and streams */

enum { LC_SYNC_NONE, LC_SYNC_WANT, LC_SYNC_OK }; /* depth snapshot state of a symbol */
enum { LC_SNAP_IDLE, LC_SNAP_QUEUED, LC_SNAP_INFLIGHT };

typedef struct lc_symbol {
    char name[LC_NAME_MAX], upper[LC_NAME_MAX];
    lc_sink sink;
    int have_u;
    int64_t last_u; /* final update id of the last diff recorded */
    int sync;       /* LC_SYNC_* */
    int have_first; /* a diff arrived since the book was last unknown */
    int64_t first_U, first_u, first_pu;
    int snap; /* LC_SNAP_*: the request for this symbol */
    int snap_probe, want_again;
    const char *snap_why; /* "first diff", "gap", "periodic", "stale snapshot" */
    int64_t next_periodic;
    struct lc_symbol *qnext; /* REST queue */
} lc_symbol;

typedef struct {
    char name[80]; /* "btcusdt@depth@100ms" */
    lc_symbol *sym;
    int route; /* USD-M: 0 /public, 1 /market */
    int64_t msgs, bytes, msgs_prev;
    /* duplicates during a switch-over: the last id recorded and its payload hashes */
    int have_id;
    int64_t id;
    uint64_t hashes[LC_HASHES];
    int nhash;
} lc_stream;

/* ------------------------------------------------------------------ connections */

enum { LC_CONN_CONNECTING, LC_CONN_OPEN, LC_CONN_GONE };

typedef struct lc_slot lc_slot;

enum { LC_TAG_WS = 0x4c435753, LC_TAG_REST = 0x4c435245 }; /* what a wsi's opaque data is */

typedef struct lc_conn {
    int tag; /* LC_TAG_WS */
    int id;
    lc_slot *slot;
    struct lws *wsi;
    int state;
    int retiring; /* closed on purpose (replaced) */
    int64_t opened, last_rx;
    char *rx; /* a fragmented message being assembled */
    size_t rxn, rxcap;
    int rx_binary;
    char why[160]; /* why it closed */
} lc_conn;

struct lc_slot {
    int index;
    char *path; /* "[prefix][/public|/market]/stream?streams=a/b/c" */
    lc_stream **streams;
    size_t n;
    int route;
    lc_conn *active, *next; /* next: the replacement during make-before-break */
    int dup_seen;           /* the replacement delivered a message the active one had */
    int64_t dedupe_until;   /* drop messages already recorded (a switch-over is under way) */
    int attempts;           /* failed connects in a row (backoff) */
    int64_t retry_at;       /* 0: no reconnect scheduled */
    char plan[64];          /* why a replacement is being made */
};

/* ------------------------------------------------------------------ REST snapshots */

typedef struct {
    int tag;                /* LC_TAG_REST */
    lc_symbol *head, *tail; /* queue */
    int done;               /* the request in flight has its answer */
    lc_symbol *cur;         /* the request in flight */
    struct lws *wsi;
    char *body;
    size_t n, cap;
    int status;
    int64_t started;
    double tokens; /* request weight available now */
    int64_t refilled;
    int64_t paused_until; /* after 429 / 418 / repeated failures */
    int attempts;         /* failures in a row */
    int64_t used_weight;  /* X-MBX-USED-WEIGHT-1M last seen */
    char retry_after[16];
    char location[256]; /* Location of a redirect (never followed) */
} lc_rest;

/* ------------------------------------------------------------------ the collector */

typedef struct {
    int64_t msgs, bytes, msgs_prev, bytes_prev;
    int64_t gaps, snapshots, snapshot_requests, snapshot_failures, snapshot_stale;
    int64_t connects, disconnects, reconnects, switchovers, malformed, unexpected, duplicates;
    int64_t written_bytes;
    int64_t lat[LC_RESERVOIR]; /* receive - exchange time samples of the interval, us */
    int64_t lat_seen;
    struct {
        int status;    /* HTTP status, 0: no answer */
        int64_t count; /* failed depth requests answered so */
    } fail_by_status[LC_FAIL_KINDS];
    int nfail_kinds;
    int last_fail_status;
    int64_t last_fail_ns;
    char last_fail_symbol[LC_NAME_MAX], last_fail_why[200];
} lc_stats;

typedef struct lc_collector {
    lc_config cfg;
    const char *venue;
    struct lws_context *ctx;
    lob_zctx *z;
    lc_symbol *syms;
    lc_stream *streams;
    size_t nstreams;
    lc_stream **table; /* open-addressing hash of stream names */
    size_t tmask;
    lc_slot *slots;
    size_t nslots;
    lc_conn **conns; /* every live connection */
    size_t nconns, conns_cap;
    int next_conn_id;
    lc_sink events; /* OUT/<venue>/_collector */
    lc_rest rest;
    lc_stats st;
    int64_t started, last_ns, next_stats, stats_t0;
    int stop;      /* 0, or the signal / reason that stops the loop */
    int exit_code; /* set with a fatal error */
    int io_failed; /* a file could not be written: no more lines are taken */
    lws_sorted_usec_list_t tick;
    uint64_t rng;
} lc_collector;

/* util.c: receive time, randomness, logging, text made safe */
int64_t lc_now(lc_collector *c); /* receive time, ns; never goes back */
void lc_log(lc_collector *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lc_fatal(lc_collector *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
double lc_random(lc_collector *c); /* uniform [0, 1) */
/* Text from a peer (close reasons, error bodies, headers) made safe for one log line:
 * printable ASCII kept, '\\' doubled, every other byte as \xNN; cut to fit `cap`.  @return dst */
const char *lc_printable(char *dst, size_t cap, const char *s, size_t n);
/* The contents of a JSON string holding `s` (escaped, cut to fit `cap`).  @return dst */
const char *lc_json_text(char *dst, size_t cap, const char *s, size_t n);

/* sink.c */
int lc_sink_init(lc_collector *c, lc_sink *s, const char *name);
int lc_sink_line(lc_collector *c, lc_sink *s, int64_t ns, const char *msg, size_t n);
int lc_sink_event(lc_collector *c, lc_sink *s, int64_t ns, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int lc_sink_flush_old(lc_collector *c, lc_sink *s, int64_t now);
int lc_sink_close(lc_collector *c, lc_sink *s);

/* record.c */
int lc_record_init(lc_collector *c);
void lc_record_message(lc_collector *c, lc_conn *k, const char *msg, size_t n, int binary);
void lc_record_conn_event(lc_collector *c, lc_conn *k, const char *event, const char *detail);
/* A snapshot answer: `why` says why it is not a usable snapshot (NULL: it is one, recorded);
 * `pk`: the body peeked (NULL when it is not one JSON object). */
void lc_record_snapshot(lc_collector *c, lc_symbol *s, int status, const char *why,
                        const char *body, size_t n, const lob_peek *pk);
void lc_record_tick(lc_collector *c, int64_t now);
void lc_record_free(lc_collector *c);
lc_stream *lc_stream_find(lc_collector *c, const char *name, size_t n);

/* ws.c, rest.c: libwebsockets callbacks (main.c dispatches by the wsi's tag) */
int lc_ws_callback(lc_collector *c, struct lws *wsi, int reason, void *in, size_t len);
int lc_rest_callback(lc_collector *c, struct lws *wsi, int reason, void *in, size_t len);
extern const struct lws_extension lc_ws_extensions[];

/* ws.c */
int lc_ws_init(lc_collector *c);
void lc_ws_tick(lc_collector *c, int64_t now);
void lc_ws_replace(lc_collector *c, lc_slot *slot, const char *why);
void lc_ws_free(lc_collector *c);

/* rest.c */
void lc_rest_init(lc_collector *c);
void lc_rest_want(lc_collector *c, lc_symbol *s, int probe, const char *reason);
void lc_rest_tick(lc_collector *c, int64_t now);
void lc_rest_free(lc_collector *c);

/* stats.c */
void lc_stats_latency(lc_collector *c, int64_t us);
void lc_stats_snapshot_failed(lc_collector *c, const lc_symbol *s, int status, const char *why);
void lc_stats_tick(lc_collector *c, int64_t now, int final);

#endif /* LC_COLLECTOR_H */
