/* util.c -- the recorder's small helpers: receive time, randomness, logging, and text from
 * peers made safe for a log line or a JSON string.
 */
#include "collector.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

int64_t
lc_now(lc_collector *c)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    /* readers require receive times that never go back; the wall clock can (NTP steps) */
    if (ns < c->last_ns) {
        ns = c->last_ns;
    }
    c->last_ns = ns;
    return ns;
}

double
lc_random(lc_collector *c)
{
    uint64_t x = c->rng; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    c->rng = x;
    return (double)((x * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static void
vlog(const char *level, const char *fmt, va_list ap)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ lobfast-collect: %s", stamp, ts.tv_nsec / 1000000, level);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    fflush(stderr);
}

void
lc_log(lc_collector *c, const char *fmt, ...)
{
    (void)c;
    va_list ap;
    va_start(ap, fmt);
    vlog("", fmt, ap);
    va_end(ap);
}

void
lc_fatal(lc_collector *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog("error: ", fmt, ap);
    va_end(ap);
    if (!c->exit_code) {
        c->exit_code = code;
    }
    c->stop = -1;
}

const char *
lc_printable(char *dst, size_t cap, const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 5 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\\') {
            dst[k++] = '\\';
            dst[k++] = '\\';
        }
        else if (ch < 0x20 || ch >= 0x7f) {
            k += (size_t)snprintf(dst + k, cap - k, "\\x%02x", ch);
        }
        else {
            dst[k++] = (char)ch;
        }
    }
    if (cap > 0) {
        dst[k] = '\0';
    }
    return dst;
}

const char *
lc_json_text(char *dst, size_t cap, const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 7 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            dst[k++] = '\\';
            dst[k++] = (char)ch;
        }
        else if (ch < 0x20 || ch >= 0x7f) {
            k += (size_t)snprintf(dst + k, cap - k, "\\u%04x", ch);
        }
        else {
            dst[k++] = (char)ch;
        }
    }
    if (cap > 0) {
        dst[k] = '\0';
    }
    return dst;
}
