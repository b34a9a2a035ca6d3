/* sink.c -- one output series: "<receive ns> <message>" lines in ~1 s zstd frames, a new
 * file per rotation period or when a file reaches --max-file-size.
 *
 * Frames are written as soon as they close (unbuffered), so a killed collector loses at most
 * the frame being filled; a quiet series is flushed by age from the tick (lc_sink_flush_old).
 */
#include "collector.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* mkdir -p */
static int
make_dirs(const char *path)
{
    char buf[1024];
    size_t n = strlen(path);
    if (n >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
                return -1;
            }
            *p = '/';
        }
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
        return -1;
    }
    struct stat st;
    if (stat(buf, &st) != 0) {
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

int
lc_sink_init(lc_collector *c, lc_sink *s, const char *name)
{
    memset(s, 0, sizeof *s);
    int k = snprintf(s->dir, sizeof s->dir, "%s/%s/%s", c->cfg.out, c->venue, name);
    if (k < 0 || (size_t)k >= sizeof s->dir) {
        lc_fatal(c, 2, "the output path '%s/%s/%s' is too long", c->cfg.out, c->venue, name);
        return -1;
    }
    if (make_dirs(s->dir) != 0) {
        lc_fatal(c, 2, "cannot create the output directory %s: %s", s->dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* Files are named by the time of their first line, to the millisecond, and those names only
 * grow, so sorting names sorts files by time even when a size limit cuts several in a second. */
static int
open_file(lc_collector *c, lc_sink *s, int64_t ns)
{
    int64_t ms = ns / 1000000;
    lob_error err = {0};
    for (int i = 0; i < 1000; i++, ms++) {
        ms = ms > s->last_name_ms ? ms : s->last_name_ms + 1;
        time_t secs = (time_t)(ms / 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        char stamp[32];
        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
        snprintf(s->path, sizeof s->path, "%s/%s.%03d.zst", s->dir, stamp, (int)(ms % 1000));
        int rc = lob_zwriter_open(&s->w, s->path, c->z, 0, LOB_ZW_EXCL, &err);
        s->last_name_ms = ms;
        if (rc == LOB_OK) {
            s->period_end = (ns / c->cfg.rotate_ns + 1) * c->cfg.rotate_ns;
            s->file_bytes = 0;
            return 0;
        }
        if (!strstr(err.msg, "File exists")) {
            break;
        }
    }
    lc_fatal(c, 1, "%s: %s", s->path, err.msg);
    s->path[0] = '\0';
    return -1;
}

static int
close_file(lc_collector *c, lc_sink *s)
{
    if (s->w == NULL) {
        return 0;
    }
    lob_error err = {0};
    int rc = lob_zwriter_close(s->w, &err);
    s->w = NULL;
    if (rc < 0) {
        c->io_failed = 1;
        lc_fatal(c, 1, "%s: %s", s->path, err.msg);
        return -1;
    }
    c->st.written_bytes += 8 + 9; /* the seek table's frame header and footer, roughly */
    s->path[0] = '\0';
    return 0;
}

static int
flush_frame(lc_collector *c, lc_sink *s)
{
    if (s->n == 0) {
        return 0;
    }
    if (s->w == NULL && open_file(c, s, s->frame_t0) < 0) {
        s->n = 0;
        return -1;
    }
    lob_error err = {0};
    int64_t before, after, frames;
    lob_zwriter_stats(s->w, &frames, &before);
    int rc = lob_zwriter_frame(s->w, s->buf, s->n, &err);
    s->n = 0;
    if (s->cap > 4 * c->cfg.frame_bytes) {
        /* one huge message grew the buffer: give the memory back */
        free(s->buf);
        s->buf = NULL;
        s->cap = 0;
    }
    if (rc < 0) {
        c->io_failed = 1;
        lc_fatal(c, 1, "%s: %s", s->path, err.msg);
        /* the writer cut the file back to its last whole frame; close it with its table */
        lob_zwriter_close(s->w, NULL);
        s->w = NULL;
        return -1;
    }
    lob_zwriter_stats(s->w, &frames, &after);
    s->file_bytes += after - before;
    c->st.written_bytes += after - before;
    if (s->file_bytes >= c->cfg.max_file_bytes) {
        return close_file(c, s);
    }
    return 0;
}

int
lc_sink_line(lc_collector *c, lc_sink *s, int64_t ns, const char *msg, size_t n)
{
    if (c->io_failed) {
        return -1; /* recording failed: stopping, what is on disk stays as it is */
    }
    size_t need = 21 + n; /* "<ns> " + msg + "\n" */
    if (s->n > 0 && (ns - s->frame_t0 >= c->cfg.frame_ns || s->n + need > c->cfg.frame_bytes ||
                     (s->w != NULL && ns >= s->period_end))) {
        if (flush_frame(c, s) < 0) {
            return -1;
        }
    }
    if (s->w != NULL && ns >= s->period_end && close_file(c, s) < 0) {
        return -1;
    }
    if (s->cap - s->n < need) {
        size_t cap = s->n + need;
        cap = cap < c->cfg.frame_bytes ? c->cfg.frame_bytes : cap;
        char *p = realloc(s->buf, cap);
        if (p == NULL) {
            lc_fatal(c, 1, "out of memory for a %zu-byte frame", cap);
            return -1;
        }
        s->buf = p;
        s->cap = cap;
    }
    if (s->n == 0) {
        s->frame_t0 = ns;
    }
    char *p = s->buf + s->n;
    int k = snprintf(p, 21, "%lld ", (long long)ns);
    memcpy(p + k, msg, n);
    p[k + n] = '\n';
    s->n += (size_t)k + n + 1;
    return 0;
}

int
lc_sink_event(lc_collector *c, lc_sink *s, int64_t ns, const char *fmt, ...)
{
    char buf[2048];
    int k = snprintf(buf, sizeof buf, "{\"lobfast\":{");
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + k, sizeof buf - (size_t)k - 3, fmt, ap);
    va_end(ap);
    if (m < 0) {
        return -1;
    }
    size_t len = (size_t)k + (size_t)m;
    if (len > sizeof buf - 3) {
        len = sizeof buf - 3; /* callers keep events short; never cut one mid-way silently */
    }
    memcpy(buf + len, "}}", 3);
    return lc_sink_line(c, s, ns, buf, len + 2);
}

int
lc_sink_flush_old(lc_collector *c, lc_sink *s, int64_t now)
{
    if (s->n > 0 && now - s->frame_t0 >= c->cfg.frame_ns) {
        return flush_frame(c, s);
    }
    if (s->w != NULL && now >= s->period_end) {
        return close_file(c, s);
    }
    return 0;
}

int
lc_sink_close(lc_collector *c, lc_sink *s)
{
    int rc = 0;
    if (s->n > 0) {
        rc = flush_frame(c, s);
    }
    if (s->w != NULL) {
        rc |= close_file(c, s);
    }
    free(s->buf);
    s->buf = NULL;
    s->cap = s->n = 0;
    return rc;
}
