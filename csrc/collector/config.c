/* config.c -- the command line of lobfast-collect. */
#include "collector.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: lobfast-collect --venue spot|usdm --symbols btcusdt,ethusdt,... --out DIR\n"
    "         [--streams depth@100ms,trade,bookTicker] [--rotate 1h] [--max-file-size 1GB]\n"
    "         [--snapshot-every 15m] [--snapshot-limit 1000] [--rest-weight N]\n"
    "         [--ws-url URL] [--rest-url URL] [--max-streams 200] [--conn-lifetime 23h]\n"
    "         [--stall-timeout 30s] [--frame 1s] [--frame-bytes 256KB] [--level 3]\n"
    "         [--stats-every 5s] [--stats-file PATH] [--quiet]\n"
    "\n"
    "Records Binance spot or USD-M streams: one zstd file per symbol per rotation period\n"
    "in DIR/<venue>/<symbol>/, lines '<receive ns> <message>'.  Stops cleanly on SIGINT or\n"
    "SIGTERM.  Exit status: 0 stopped, 1 recording failed (e.g. a full disk), 2 bad usage.\n";

static int
fail(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return -1;
}

/* "90s", "15m", "1h", "2d", "500ms", or plain seconds -> ns.  @return -1 when not one. */
static int64_t
duration(const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno != 0 || !(v >= 0) || v > 1e7) {
        return -1;
    }
    double unit = 1e9;
    if (strcmp(end, "ms") == 0) {
        unit = 1e6;
    }
    else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0) {
        unit = 60e9;
    }
    else if (strcmp(end, "h") == 0) {
        unit = 3600e9;
    }
    else if (strcmp(end, "d") == 0) {
        unit = 86400e9;
    }
    else if (*end != '\0' && strcmp(end, "s") != 0) {
        return -1;
    }
    return (int64_t)(v * unit);
}

/* "1GB", "512MiB", "64KB", or plain bytes.  @return -1 when not one. */
static int64_t
size_arg(const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno != 0 || !(v >= 0) || v > 1e15) {
        return -1;
    }
    static const struct {
        const char *suffix;
        double mult;
    } units[] = {{"", 1},     {"B", 1},        {"KB", 1e3},        {"MB", 1e6},
                 {"GB", 1e9}, {"TB", 1e12},    {"K", 1e3},         {"M", 1e6},
                 {"G", 1e9},  {"KiB", 1024.0}, {"MiB", 1048576.0}, {"GiB", 1073741824.0}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(end, units[i].suffix) == 0) {
            return (int64_t)(v * units[i].mult);
        }
    }
    return -1;
}

static int
int_arg(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || errno != 0 || v < lo || v > hi) {
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* Split a comma list into malloc'd items (lower-cased when `lower`). */
static int
split(const char *s, int lower, char ***items, size_t *n, char *why, size_t whylen,
      const char *what)
{
    *items = NULL;
    *n = 0;
    size_t cap = 0;
    const char *p = s;
    while (*p) {
        const char *q = strchr(p, ',');
        size_t len = q ? (size_t)(q - p) : strlen(p);
        if (len > 0) {
            if (*n == cap) {
                cap = cap ? 2 * cap : 16;
                char **grown = realloc(*items, cap * sizeof *grown);
                if (grown == NULL) {
                    return fail(why, whylen, "out of memory");
                }
                *items = grown;
            }
            char *item = strndup(p, len);
            if (item == NULL) {
                return fail(why, whylen, "out of memory");
            }
            for (size_t i = 0; i < len; i++) {
                if (lower) {
                    item[i] = (char)tolower((unsigned char)item[i]);
                }
            }
            (*items)[(*n)++] = item;
        }
        p += len + (q != NULL);
    }
    if (*n == 0) {
        return fail(why, whylen, "%s: empty list", what);
    }
    return 0;
}

static int
valid_symbol(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= LC_NAME_MAX - 1) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-') {
            return 0;
        }
    }
    return 1;
}

/* Stream suffixes this collector knows how to route and check. */
static int
valid_stream(const char *s, int usdm)
{
    static const char *const spot[] = {
        "depth", "depth@100ms", "depth@1000ms", "trade", "aggTrade", "bookTicker", NULL};
    static const char *const fut[] = {"depth",       "depth@0ms",    "depth@100ms", "depth@250ms",
                                      "depth@500ms", "trade",        "aggTrade",    "bookTicker",
                                      "markPrice",   "markPrice@1s", "forceOrder",  NULL};
    for (const char *const *k = usdm ? fut : spot; *k; k++) {
        if (strcmp(s, *k) == 0) {
            return 1;
        }
    }
    /* partial book depth: depth5 / depth10 / depth20, optionally @100ms (@500ms USD-M) */
    int lv;
    char rest[16] = "";
    if (sscanf(s, "depth%d%15s", &lv, rest) >= 1 && (lv == 5 || lv == 10 || lv == 20)) {
        char exact[32];
        snprintf(exact, sizeof exact, "depth%d%s", lv, rest);
        return strcmp(exact, s) == 0 &&
               (rest[0] == '\0' || strcmp(rest, "@100ms") == 0 ||
                (usdm && (strcmp(rest, "@500ms") == 0 || strcmp(rest, "@250ms") == 0)) ||
                (!usdm && strcmp(rest, "@1000ms") == 0));
    }
    return 0;
}

int
lc_url_parse(const char *s, int ws, lc_url *u, char *why, size_t whylen)
{
    memset(u, 0, sizeof *u);
    const char *secure = ws ? "wss://" : "https://", *plain = ws ? "ws://" : "http://";
    const char *p;
    if (strncmp(s, secure, strlen(secure)) == 0) {
        u->tls = 1;
        p = s + strlen(secure);
    }
    else if (strncmp(s, plain, strlen(plain)) == 0) {
        p = s + strlen(plain);
    }
    else {
        return fail(why, whylen, "'%s' is not a %s or %s URL", s, secure, plain);
    }
    const char *slash = strchr(p, '/');
    size_t hostlen = slash ? (size_t)(slash - p) : strlen(p);
    const char *colon = memchr(p, ':', hostlen);
    size_t namelen = colon ? (size_t)(colon - p) : hostlen;
    if (namelen == 0 || namelen >= sizeof u->host) {
        return fail(why, whylen, "'%s' has no host", s);
    }
    memcpy(u->host, p, namelen);
    u->port = u->tls ? 443 : 80;
    if (colon) {
        char port[8] = "";
        size_t pl = hostlen - namelen - 1;
        if (pl == 0 || pl >= sizeof port) {
            return fail(why, whylen, "'%s' has a bad port", s);
        }
        memcpy(port, colon + 1, pl);
        if (int_arg(port, 1, 65535, &u->port) < 0) {
            return fail(why, whylen, "'%s' has a bad port", s);
        }
    }
    if (slash) {
        size_t pl = strlen(slash);
        while (pl > 0 && slash[pl - 1] == '/') {
            pl--; /* routes are appended with their own '/' */
        }
        if (pl >= sizeof u->prefix || memchr(slash, '?', pl)) {
            return fail(why, whylen, "'%s': the path must be short and have no query", s);
        }
        memcpy(u->prefix, slash, pl);
    }
    return 0;
}

enum {
    O_VENUE = 256,
    O_SYMBOLS,
    O_OUT,
    O_STREAMS,
    O_ROTATE,
    O_MAXSIZE,
    O_SNAPEVERY,
    O_SNAPLIMIT,
    O_WEIGHT,
    O_WSURL,
    O_RESTURL,
    O_MAXSTREAMS,
    O_LIFETIME,
    O_STALL,
    O_FRAME,
    O_FRAMEBYTES,
    O_LEVEL,
    O_STATSEVERY,
    O_STATSFILE,
    O_QUIET,
    O_HELP,
};

int
lc_config_parse(lc_config *c, int argc, char **argv, char *why, size_t whylen)
{
    static const struct option opts[] = {
        {"venue", required_argument, 0, O_VENUE},
        {"symbols", required_argument, 0, O_SYMBOLS},
        {"out", required_argument, 0, O_OUT},
        {"streams", required_argument, 0, O_STREAMS},
        {"rotate", required_argument, 0, O_ROTATE},
        {"max-file-size", required_argument, 0, O_MAXSIZE},
        {"snapshot-every", required_argument, 0, O_SNAPEVERY},
        {"snapshot-limit", required_argument, 0, O_SNAPLIMIT},
        {"rest-weight", required_argument, 0, O_WEIGHT},
        {"ws-url", required_argument, 0, O_WSURL},
        {"rest-url", required_argument, 0, O_RESTURL},
        {"max-streams", required_argument, 0, O_MAXSTREAMS},
        {"conn-lifetime", required_argument, 0, O_LIFETIME},
        {"stall-timeout", required_argument, 0, O_STALL},
        {"frame", required_argument, 0, O_FRAME},
        {"frame-bytes", required_argument, 0, O_FRAMEBYTES},
        {"level", required_argument, 0, O_LEVEL},
        {"stats-every", required_argument, 0, O_STATSEVERY},
        {"stats-file", required_argument, 0, O_STATSFILE},
        {"quiet", no_argument, 0, O_QUIET},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    memset(c, 0, sizeof *c);
    c->usdm = -1;
    c->rotate_ns = 3600 * (int64_t)1000000000;
    c->max_file_bytes = (int64_t)1000000000;
    c->snapshot_every_ns = 900 * (int64_t)1000000000;
    c->snapshot_limit = 1000;
    c->max_streams = 200;
    c->conn_lifetime_ns = 23 * 3600 * (int64_t)1000000000; /* Binance cuts at 24 h */
    c->stall_ns = 30 * (int64_t)1000000000;
    c->frame_ns = 1000000000;
    c->frame_bytes = 256 * 1024;
    c->level = 3;
    c->stats_every_ns = 5 * (int64_t)1000000000;
    const char *symbols = NULL, *streams = NULL, *ws = NULL, *rest = NULL;
    int64_t v;
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        const char *a = optarg;
        switch (opt) {
        case O_VENUE:
            if (strcmp(a, "spot") != 0 && strcmp(a, "usdm") != 0) {
                return fail(why, whylen, "--venue must be spot or usdm, not '%s'", a);
            }
            c->usdm = strcmp(a, "usdm") == 0;
            break;
        case O_SYMBOLS: symbols = a; break;
        case O_OUT: c->out = a; break;
        case O_STREAMS: streams = a; break;
        case O_WSURL: ws = a; break;
        case O_RESTURL: rest = a; break;
        case O_STATSFILE: c->stats_file = a; break;
        case O_QUIET: c->quiet = 1; break;
        case O_ROTATE:
        case O_SNAPEVERY:
        case O_LIFETIME:
        case O_STALL:
        case O_FRAME:
        case O_STATSEVERY: {
            if ((v = duration(a)) < 0) {
                return fail(why, whylen, "%s: '%s' is not a duration (like 90s, 15m, 1h)",
                            argv[optind - 2], a);
            }
            int64_t min = opt == O_SNAPEVERY ? 0 : opt == O_ROTATE ? 1000000000 : 1000000;
            if (v < min) {
                return fail(why, whylen, "%s: '%s' is too short", argv[optind - 2], a);
            }
            *(opt == O_ROTATE      ? &c->rotate_ns
              : opt == O_SNAPEVERY ? &c->snapshot_every_ns
              : opt == O_LIFETIME  ? &c->conn_lifetime_ns
              : opt == O_STALL     ? &c->stall_ns
              : opt == O_FRAME     ? &c->frame_ns
                                   : &c->stats_every_ns) = v;
            break;
        }
        case O_MAXSIZE:
        case O_FRAMEBYTES:
            if ((v = size_arg(a)) < 4096) {
                return fail(why, whylen, "%s: '%s' is not a size of at least 4KB (like 1GB)",
                            argv[optind - 2], a);
            }
            if (opt == O_MAXSIZE) {
                c->max_file_bytes = v;
            }
            else if (v > ((int64_t)1 << 30)) {
                return fail(why, whylen, "--frame-bytes: '%s' is over 1GiB", a);
            }
            else {
                c->frame_bytes = (size_t)v;
            }
            break;
        case O_SNAPLIMIT:
        case O_WEIGHT:
        case O_MAXSTREAMS:
        case O_LEVEL: {
            int lo = opt == O_LEVEL ? -7 : 1, out;
            int hi = opt == O_SNAPLIMIT    ? 5000
                     : opt == O_MAXSTREAMS ? 1024
                     : opt == O_LEVEL      ? 22
                                           : 1000000;
            if (int_arg(a, lo, hi, &out) < 0) {
                return fail(why, whylen, "%s: '%s' is not an integer in [%d, %d]", argv[optind - 2],
                            a, lo, hi);
            }
            *(opt == O_SNAPLIMIT    ? &c->snapshot_limit
              : opt == O_WEIGHT     ? &c->rest_weight
              : opt == O_MAXSTREAMS ? &c->max_streams
                                    : &c->level) = out;
            break;
        }
        case O_HELP: fputs(usage, stdout); return 1;
        default:
            return fail(why, whylen, "unknown or incomplete option '%s'\n%s", argv[optind - 1],
                        usage);
        }
    }
    if (optind < argc) {
        return fail(why, whylen, "unexpected argument '%s'\n%s", argv[optind], usage);
    }
    if (c->usdm < 0 || symbols == NULL || c->out == NULL) {
        return fail(why, whylen, "--venue, --symbols and --out are required\n%s", usage);
    }
    if (c->usdm && c->snapshot_limit != 5 && c->snapshot_limit != 10 && c->snapshot_limit != 20 &&
        c->snapshot_limit != 50 && c->snapshot_limit != 100 && c->snapshot_limit != 500 &&
        c->snapshot_limit != 1000) {
        return fail(why, whylen,
                    "--snapshot-limit on usdm is one of 5, 10, 20, 50, 100, 500, "
                    "1000");
    }
    if (split(symbols, 1, &c->symbols, &c->nsym, why, whylen, "--symbols") < 0) {
        return -1;
    }
    for (size_t i = 0; i < c->nsym; i++) {
        if (!valid_symbol(c->symbols[i])) {
            return fail(why, whylen, "--symbols: '%s' is not a symbol name", c->symbols[i]);
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(c->symbols[i], c->symbols[k]) == 0) {
                return fail(why, whylen, "--symbols: '%s' is given twice", c->symbols[i]);
            }
        }
    }
    if (streams == NULL) {
        streams = c->usdm ? "depth@100ms,aggTrade,bookTicker" : "depth@100ms,trade,bookTicker";
    }
    if (split(streams, 0, &c->streams, &c->nstreams, why, whylen, "--streams") < 0) {
        return -1;
    }
    for (size_t i = 0; i < c->nstreams; i++) {
        if (!valid_stream(c->streams[i], c->usdm)) {
            return fail(why, whylen, "--streams: '%s' is not a %s stream this collector knows",
                        c->streams[i], c->usdm ? "USD-M" : "spot");
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(c->streams[i], c->streams[k]) == 0) {
                return fail(why, whylen, "--streams: '%s' is given twice", c->streams[i]);
            }
        }
    }
    if (ws == NULL) {
        ws = c->usdm ? "wss://fstream.binance.com" : "wss://stream.binance.com:9443";
    }
    if (rest == NULL) {
        rest = c->usdm ? "https://fapi.binance.com" : "https://api.binance.com";
    }
    if (lc_url_parse(ws, 1, &c->ws, why, whylen) < 0 ||
        lc_url_parse(rest, 0, &c->rest, why, whylen) < 0) {
        return -1;
    }
    if (c->rest_weight == 0) {
        /* half of the IP's per-minute request weight: other programs on the IP share it */
        c->rest_weight = c->usdm ? 1200 : 3000;
    }
    return 0;
}

void
lc_config_free(lc_config *c)
{
    for (size_t i = 0; i < c->nsym; i++) {
        free(c->symbols[i]);
    }
    for (size_t i = 0; i < c->nstreams; i++) {
        free(c->streams[i]);
    }
    free(c->symbols);
    free(c->streams);
}
