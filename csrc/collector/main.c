/* main.c -- lobfast-collect: set-up, the event loop, signals, and a clean stop.
 *
 * SIGINT/SIGTERM end the loop; every open frame is then flushed and every file gets its
 * seek table before exit 0.  A failed write (a full disk, a file size limit) stops the
 * collector with status 1 and a message naming the file; the file keeps every whole frame.
 */
#include "collector.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define LC_TICK_US 100000 /* housekeeping every 100 ms */

static volatile sig_atomic_t stop_signal;
static struct lws_context *signal_ctx;

static void
on_signal(int sig)
{
    stop_signal = sig;
    if (signal_ctx != NULL) {
        lws_cancel_service(signal_ctx); /* wakes the poll: a write to lws's own pipe */
    }
}

static void
lws_log(int level, const char *line)
{
    (void)level;
    size_t n = strlen(line);
    while (n > 0 && line[n - 1] == '\n') {
        n--;
    }
    char safe[1024]; /* lws quotes what peers send (headers, close reasons) */
    fprintf(stderr, "lobfast-collect: libwebsockets: %s\n",
            lc_printable(safe, sizeof safe, line, n));
}

static int
callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    const int *tag = lws_get_opaque_user_data(wsi);
    lc_collector *c = lws_context_user(lws_get_context(wsi));
    if (tag != NULL && *tag == LC_TAG_WS) {
        return lc_ws_callback(c, wsi, (int)reason, in, len);
    }
    if (tag != NULL && *tag == LC_TAG_REST) {
        return lc_rest_callback(c, wsi, (int)reason, in, len);
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    {"lobfast-collect", callback, 0, 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void
tick(lws_sorted_usec_list_t *sul)
{
    lc_collector *c = lws_container_of(sul, lc_collector, tick);
    int64_t now = lc_now(c);
    lc_ws_tick(c, now);
    lc_rest_tick(c, now);
    lc_record_tick(c, now);
    lc_stats_tick(c, now, 0);
    lws_sul_schedule(c->ctx, 0, &c->tick, tick, LC_TICK_US);
}

/* One collector per output directory and venue: a second one would write the same files. */
static int
take_lock(lc_collector *c, char *path, size_t cap)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", c->cfg.out, c->venue); /* made by lc_record_init */
    snprintf(path, cap, "%s/collector.pid", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
        lc_fatal(c, 2, "cannot write into the output directory %s: %s", dir, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t k = read(fd, pid, sizeof pid - 1);
        pid[k > 0 ? k : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        lc_fatal(c, 2, "another lobfast-collect (pid %s) is recording into %s", pid, dir);
        close(fd);
        return -1;
    }
    char pid[32];
    int k = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || write(fd, pid, (size_t)k) != k) {
        lc_fatal(c, 2, "cannot write into the output directory %s: %s", dir, strerror(errno));
        close(fd);
        return -1;
    }
    return fd; /* held (and locked) until exit */
}

static void
stop_everything(lc_collector *c, const char *why)
{
    int64_t now = lc_now(c);
    for (size_t i = 0; i < c->cfg.nsym && c->syms != NULL; i++) {
        lc_sink_event(c, &c->syms[i].sink, now, "\"event\":\"stop\",\"reason\":\"%s\"", why);
    }
    lc_sink_event(c, &c->events, now, "\"event\":\"stop\",\"reason\":\"%s\"", why);
}

int
main(int argc, char **argv)
{
    static lc_collector coll;
    lc_collector *c = &coll;
    char why[2048];
    int rc = lc_config_parse(&c->cfg, argc, argv, why, sizeof why);
    if (rc != 0) {
        if (rc < 0) {
            fprintf(stderr, "lobfast-collect: error: %s\n", why);
        }
        return rc < 0 ? 2 : 0;
    }
    c->venue = c->cfg.usdm ? "usdm" : "spot";
    c->started = c->stats_t0 = lc_now(c);
    c->next_stats = c->started + c->cfg.stats_every_ns;
    c->rng = (uint64_t)c->started ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ull;
    lc_random(c);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* a file size limit becomes a write error with a message */
    signal(SIGHUP, SIG_IGN);  /* a closed terminal does not end a recording */

    lob_error err = {0};
    int lock = -1;
    char pid_path[1100];
    if (lc_record_init(c) < 0 || (lock = take_lock(c, pid_path, sizeof pid_path)) < 0 ||
        lob_zctx_new(&c->z, c->cfg.level, &err) < 0) {
        if (err.msg[0]) {
            lc_fatal(c, 2, "%s", err.msg);
        }
        if (lock >= 0) {
            unlink(pid_path);
            close(lock);
        }
        lc_record_free(c);
        lob_zctx_free(c->z);
        lc_config_free(&c->cfg);
        return c->exit_code ? c->exit_code : 2;
    }

    lws_set_log_level(LLL_ERR, lws_log);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.extensions = lc_ws_extensions;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.user = c;
    info.fd_limit_per_thread = 1024;
    info.pt_serv_buf_size = 65536;     /* the handshake carries up to 200 stream names */
    info.max_http_header_data = 16384; /* ... and so does the stored request URI */
    info.connect_timeout_secs = 10;
    info.timeout_secs = 20;
    c->ctx = lws_create_context(&info);
    if (c->ctx == NULL) {
        lc_fatal(c, 1, "libwebsockets could not start (TLS set-up failed?)");
    }
    else {
        signal_ctx = c->ctx;
        lc_log(c, "recording %zu symbols x %zu streams (%s) into %s/%s", c->cfg.nsym,
               c->cfg.nstreams, c->venue, c->cfg.out, c->venue);
        lc_sink_event(c, &c->events, lc_now(c), "\"event\":\"start\",\"pid\":%ld", (long)getpid());
        lc_rest_init(c);
        lc_ws_init(c);
        lws_sul_schedule(c->ctx, 0, &c->tick, tick, LC_TICK_US);
        while (!c->stop && !stop_signal) {
            if (lws_service(c->ctx, 0) < 0) {
                lc_fatal(c, 1, "the event loop failed");
            }
        }
    }
    int sig = stop_signal;
    if (sig) {
        c->stop = sig;
        lc_log(c, "%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    }
    stop_everything(c, sig == SIGINT ? "SIGINT" : sig ? "SIGTERM" : "error");
    if (c->ctx != NULL) {
        lws_sul_cancel(&c->tick);
        signal_ctx = NULL;
        lws_context_destroy(c->ctx); /* connection callbacks may still record events */
        c->ctx = NULL;
    }
    lc_stats_tick(c, lc_now(c), 1);
    lc_record_free(c); /* flush frames, write seek tables */
    lc_ws_free(c);
    lc_rest_free(c);
    lob_zctx_free(c->z);
    lc_config_free(&c->cfg);
    if (lock >= 0) {
        unlink(pid_path); /* while still locked: no pid outlives the recorder it names */
        close(lock);
    }
    if (c->exit_code == 0) {
        lc_log(c, "stopped cleanly");
    }
    return c->exit_code;
}
