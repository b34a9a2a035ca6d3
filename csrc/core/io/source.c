/* source.c -- plain / gzip (zlib) / zstd file decompression in chunks. */
#define _POSIX_C_SOURCE 200809L /* O_CLOEXEC */
#include "core/io/source.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#define LOB_IN_CHUNK ((size_t)1 << 18) /* compressed bytes per read() */
#define LOB_SNIFF 4                    /* bytes that tell the compression */
/* The largest zstd window a frame may ask for (2^27 = 128 MiB, zstd's own default limit):
 * the decoder allocates it, so a frame header of a few bytes must not make it bigger. */
#define LOB_ZSTD_WINDOW_LOG 27

struct lob_source_s {
    int fd;               /* the open file */
    int may_block;        /* a pipe, FIFO or device: a read waits for the writer */
    lob_compression kind; /* detected from the magic bytes */
    unsigned char *in;    /* compressed input buffer */
    size_t in_len;        /* valid bytes in `in` */
    size_t in_pos;        /* bytes of `in` consumed */
    int eof;              /* the file has no more bytes */
    int done;             /* no more output */
    int in_member;        /* gzip: inside a member; zstd: inside a frame */
    int64_t pending;      /* compressed bytes fed into the current member/frame */
    int64_t truncated;    /* compressed bytes of an incomplete last member/frame */
    z_stream z;           /* gzip state */
    int z_init;           /* z was initialised */
    ZSTD_DStream *zs;     /* zstd state */
    int64_t c_base;       /* file offset of in[0] */
    int64_t d_pos;        /* decompressed offset of the next byte produced */
    int64_t d_lo;         /* window: bytes before this offset are discarded */
    int64_t d_end;        /* window: no bytes at or after this offset are delivered */
    int64_t produced;     /* bytes the decompressor produced, discarded ones included */
    int64_t frames;       /* zstd frames begun */
    int64_t frame_c;      /* compressed offset of the current zstd frame */
    int64_t frame_d;      /* decompressed offset of its first byte */
    int64_t junk;         /* bytes after the last gzip member / zstd frame that are neither */
    int64_t junk_off;     /* file offset of the first of them */
    int windowed;         /* reading a window of text that an index found in this file */
    int stop_pending;     /* a stop came while bytes were delivered: report it next read */
};

/* LOB_E_IO with the text of `e` appended, and e kept in err->sys_errno (so the binding can
 * raise the right OSError subclass: PermissionError, FileNotFoundError, ...). */
static int
io_error(lob_error *err, int e, const char *fmt, ...)
{
    if (err == NULL) {
        return LOB_E_IO;
    }
    va_list ap;
    va_start(ap, fmt);
    char what[160];
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    lob_error_set(err, LOB_E_IO, "%s: %s", what, strerror(e));
    err->sys_errno = e;
    return LOB_E_IO;
}

/* How long a read from a pipe waits between two stop checks. */
#define WAIT_SLICE_MS 100

/* read(2) that goes on after a signal (PEP 475), giving the caller's stop check a chance
 * to end the read first: a read from a pipe that never delivers can still be stopped.  A
 * pipe is waited on in slices, each followed by a stop check: a signal that lands between
 * the last check and read(2) does not interrupt it, and must not be left waiting.
 * @return bytes read (0 at the end of the file) or a negative code. */
static ptrdiff_t
read_some(lob_source *s, void *dst, size_t cap, lob_error *err)
{
    for (;;) {
        if (s->may_block && err != NULL && err->poll != NULL) {
            struct pollfd p = {.fd = s->fd, .events = POLLIN};
            int r = poll(&p, 1, WAIT_SLICE_MS);
            if (r == 0 || (r < 0 && errno == EINTR)) {
                LOB_FORWARD_IF_ERROR(lob_poll_stop_now(err));
                continue;
            }
            if (r < 0) {
                return io_error(err, errno, "waiting for data failed at byte %lld",
                                (long long)(s->c_base + (int64_t)s->in_len));
            }
        }
        ssize_t k = read(s->fd, dst, cap);
        if (k >= 0) {
            return (ptrdiff_t)k;
        }
        if (errno != EINTR) {
            return io_error(err, errno, "read failed at byte %lld",
                            (long long)(s->c_base + (int64_t)s->in_len));
        }
        LOB_FORWARD_IF_ERROR(lob_poll_stop_now(err));
    }
}

static int
fill(lob_source *s, lob_error *err)
{
    if (s->in_pos < s->in_len || s->eof) {
        return LOB_OK;
    }
    s->c_base += (int64_t)s->in_len;
    s->in_len = s->in_pos = 0;
    ptrdiff_t k = read_some(s, s->in, LOB_IN_CHUNK, err);
    if (k < 0) {
        return (int)k;
    }
    s->in_len = (size_t)k;
    s->eof = k == 0;
    return LOB_OK;
}

/* At least `want` unread bytes in `in` unless the file ends first (a pipe delivers in
 * pieces): the unread tail moves to the front and more is read after it. */
static int
fill_at_least(lob_source *s, size_t want, lob_error *err)
{
    while (s->in_len - s->in_pos < want && !s->eof) {
        if (s->in_pos > 0) {
            memmove(s->in, s->in + s->in_pos, s->in_len - s->in_pos);
            s->c_base += (int64_t)s->in_pos;
            s->in_len -= s->in_pos;
            s->in_pos = 0;
        }
        ptrdiff_t k = read_some(s, s->in + s->in_len, LOB_IN_CHUNK - s->in_len, err);
        if (k < 0) {
            return (int)k;
        }
        s->in_len += (size_t)k;
        s->eof = k == 0;
    }
    return LOB_OK;
}

/* open(2) for reading that goes on after a signal (a FIFO blocks until a writer comes). */
static int
open_read(const char *path, lob_error *err)
{
    for (;;) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            return fd;
        }
        if (errno != EINTR) {
            return io_error(err, errno, "cannot open");
        }
        LOB_FORWARD_IF_ERROR(lob_poll_stop_now(err));
    }
}

int
lob_source_open(lob_source **out, const char *path, lob_error *err)
{
    *out = NULL;
    lob_source *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return lob_error_set(err, LOB_E_NOMEM, "no memory for a file reader");
    }
    s->junk_off = -1;
    s->fd = open_read(path, err);
    if (s->fd < 0) {
        int rc = s->fd;
        free(s);
        return rc;
    }
    struct stat st;
    if (fstat(s->fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        lob_source_free(s);
        return io_error(err, EISDIR, "cannot read");
    }
    s->may_block = fstat(s->fd, &st) == 0 && !S_ISREG(st.st_mode);
    s->d_end = INT64_MAX;
    s->in = malloc(LOB_IN_CHUNK);
    if (s->in == NULL) {
        lob_source_free(s);
        return lob_error_set(err, LOB_E_NOMEM, "no memory for a file reader");
    }
    /* a few bytes tell the compression; a window read seeks away from them at once */
    int rc = fill_at_least(s, LOB_SNIFF, err);
    if (rc < 0) {
        lob_source_free(s);
        return rc;
    }
    const unsigned char *m = s->in;
    if (s->in_len >= 2 && m[0] == 0x1f && m[1] == 0x8b) {
        s->kind = LOB_GZIP;
        /* 15 + 32: zlib or gzip header, detected automatically */
        if (inflateInit2(&s->z, 15 + 32) != Z_OK) {
            lob_source_free(s);
            return lob_error_set(err, LOB_E_NOMEM, "cannot initialise zlib");
        }
        s->z_init = 1;
    }
    else if (s->in_len >= 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd) {
        s->kind = LOB_ZSTD;
        s->zs = ZSTD_createDStream();
        if (s->zs == NULL ||
            ZSTD_isError(ZSTD_DCtx_setParameter(s->zs, ZSTD_d_windowLogMax, LOB_ZSTD_WINDOW_LOG))) {
            lob_source_free(s);
            return lob_error_set(err, LOB_E_NOMEM, "cannot initialise zstd");
        }
    }
    *out = s;
    return LOB_OK;
}

/* Plain files are read straight into the caller's buffer: only the bytes read to sniff the
 * magic number go through the staging buffer. */
static ptrdiff_t
read_plain(lob_source *s, char *dst, size_t cap, lob_error *err)
{
    size_t n = s->in_len - s->in_pos;
    n = n < cap ? n : cap;
    memcpy(dst, s->in + s->in_pos, n);
    s->in_pos += n;
    if (n == 0 && !s->eof) { /* short reads (a pipe) are fine: only 0 is the end */
        s->c_base = s->d_pos;
        s->in_len = s->in_pos = 0;
        ptrdiff_t k = read_some(s, dst, cap, err);
        if (k < 0) {
            return k;
        }
        s->eof = k == 0;
        n = (size_t)k;
    }
    return (ptrdiff_t)n;
}

/* A zstd skippable frame (0x184D2A50..5F): metadata such as the seek table. */
static int
is_skippable(const unsigned char *p)
{
    return (p[0] & 0xf0) == 0x50 && p[1] == 0x2a && p[2] == 0x4d && p[3] == 0x18;
}

/* Between members (frames): what follows must start with `magic` (or be a skippable frame,
 * when `also` says so), else it is junk left after the data (zero padding from a download
 * or a disk, garbage): reading ends there and junk_off says where it began.  A tail that
 * is too short to tell but starts like `magic` is left to the decompressor (a cut file).
 * In a window (a span an index found) it is an error: the index does not fit the file. */
static int
trailing_junk(lob_source *s, const unsigned char *magic, size_t n,
              int (*also)(const unsigned char *), lob_error *err)
{
    LOB_FORWARD_IF_ERROR(fill_at_least(s, n, err));
    size_t avail = s->in_len - s->in_pos;
    const unsigned char *p = s->in + s->in_pos;
    if (avail == 0) {
        return LOB_OK;
    }
    int ok = avail >= n ? memcmp(p, magic, n) == 0 || (also != NULL && also(p))
                        : memcmp(p, magic, avail) == 0;
    if (!ok && s->windowed) { /* a restart point from an index must be a member/frame */
        return lob_error_set(err, LOB_E_CORRUPT, "byte %lld is not the start of a %s",
                             (long long)(s->c_base + (int64_t)s->in_pos),
                             s->kind == LOB_GZIP ? "gzip member" : "zstd frame");
    }
    if (!ok) {
        s->junk_off = s->c_base + (int64_t)s->in_pos;
        s->in_pos = s->in_len;
        s->eof = 1;
    }
    return LOB_OK;
}

/* A read that fails after decompressing `done` bytes into the caller's buffer: the
 * decompressor has moved past them, so they must be delivered.  A stop (LOB_E_INTR, from a
 * signal during read(2)) is then reported by the next read instead, so a reader stopped by
 * Ctrl-C loses nothing and can go on; any other error ends the read at once. */
static ptrdiff_t
keep_output(lob_source *s, int rc, size_t done)
{
    if (rc == LOB_E_INTR && done > 0) {
        s->stop_pending = 1;
        return (ptrdiff_t)done;
    }
    return rc;
}

static ptrdiff_t
read_gzip(lob_source *s, char *dst, size_t cap, lob_error *err)
{
    s->z.next_out = (Bytef *)dst;
    s->z.avail_out = (uInt)(cap > UINT32_MAX ? UINT32_MAX : cap);
    while (s->z.avail_out > 0) {
        static const unsigned char magic[2] = {0x1f, 0x8b};
        int rc = fill(s, err);
        if (rc == LOB_OK && !s->in_member && s->junk_off < 0) {
            rc = trailing_junk(s, magic, 2, NULL, err);
        }
        if (rc < 0) {
            return keep_output(s, rc, (size_t)((char *)s->z.next_out - dst));
        }
        if (s->in_pos == s->in_len || s->junk_off >= 0) {
            if (s->in_member) {
                s->truncated = s->pending; /* the file ends inside a member */
            }
            break;
        }
        s->z.next_in = s->in + s->in_pos;
        s->z.avail_in = (uInt)(s->in_len - s->in_pos);
        int zr = inflate(&s->z, Z_NO_FLUSH);
        size_t used = (s->in_len - s->in_pos) - s->z.avail_in;
        s->in_pos += used;
        s->pending += (int64_t)used;
        s->in_member = 1;
        if (zr == Z_STREAM_END) {
            /* concatenated members (gzip -c a >> f) continue as one stream */
            inflateReset(&s->z);
            s->in_member = 0;
            s->pending = 0;
        }
        else if (zr == Z_DATA_ERROR || zr == Z_NEED_DICT) {
            return lob_error_set(err, LOB_E_CORRUPT, "gzip data is corrupt: %s",
                                 s->z.msg ? s->z.msg : "inflate failed");
        }
        else if (zr == Z_MEM_ERROR) {
            return lob_error_set(err, LOB_E_NOMEM, "zlib is out of memory");
        }
    }
    return (ptrdiff_t)((char *)s->z.next_out - dst);
}

static ptrdiff_t
read_zstd(lob_source *s, char *dst, size_t cap, lob_error *err)
{
    ZSTD_outBuffer out = {dst, cap, 0};
    while (out.pos < out.size) {
        static const unsigned char magic[4] = {0x28, 0xb5, 0x2f, 0xfd};
        int rc = fill(s, err);
        if (rc == LOB_OK && !s->in_member && s->junk_off < 0) {
            rc = trailing_junk(s, magic, 4, is_skippable, err);
        }
        if (rc < 0) {
            return keep_output(s, rc, out.pos);
        }
        if (s->in_pos == s->in_len || s->junk_off >= 0) {
            if (s->in_member) {
                s->truncated = s->pending; /* the file ends inside a frame */
            }
            break;
        }
        if (!s->in_member) { /* a frame begins here */
            s->frames++;
            s->frame_c = s->c_base + (int64_t)s->in_pos;
            s->frame_d = s->d_pos + (int64_t)out.pos;
        }
        ZSTD_inBuffer in = {s->in, s->in_len, s->in_pos};
        size_t zr = ZSTD_decompressStream(s->zs, &out, &in);
        if (ZSTD_getErrorCode(zr) == ZSTD_error_frameParameter_windowTooLarge) {
            return lob_error_set(err, LOB_E_CORRUPT,
                                 "the zstd frame at byte %lld asks for a window over %d MiB "
                                 "(the most a reader allocates): it is corrupt or was not "
                                 "written for streaming",
                                 (long long)s->frame_c, 1 << (LOB_ZSTD_WINDOW_LOG - 20));
        }
        if (ZSTD_isError(zr)) {
            return lob_error_set(err, LOB_E_CORRUPT, "the zstd frame at byte %lld is corrupt: %s",
                                 (long long)s->frame_c, ZSTD_getErrorName(zr));
        }
        s->pending += (int64_t)(in.pos - s->in_pos);
        s->in_pos = in.pos;
        s->in_member = zr != 0; /* 0: a frame has just been completed and flushed */
        if (zr == 0) {
            s->pending = 0;
            if (out.pos > 0) {
                break; /* one read, one frame: callers can tell frames apart */
            }
        }
    }
    return (ptrdiff_t)out.pos;
}

ptrdiff_t
lob_source_read(lob_source *s, char *dst, size_t cap, lob_error *err)
{
    if (s->stop_pending) {
        s->stop_pending = 0;
        return lob_error_set(err, LOB_E_INTR, "interrupted");
    }
    for (;;) {
        if (s->done || cap == 0) {
            return 0;
        }
        int64_t room = s->d_end - s->d_pos;
        size_t want = room < 0 ? 0 : (uint64_t)room < cap ? (size_t)room : cap;
        ptrdiff_t n = 0;
        if (want > 0) {
            switch (s->kind) {
            case LOB_GZIP: n = read_gzip(s, dst, want, err); break;
            case LOB_ZSTD: n = read_zstd(s, dst, want, err); break;
            default: n = read_plain(s, dst, want, err); break;
            }
        }
        if (n < 0) {
            return n;
        }
        if (n == 0) {
            s->done = 1;
            return 0;
        }
        int64_t from = s->d_pos;
        s->d_pos += n;
        s->produced += s->kind == LOB_PLAIN ? 0 : n;
        if (s->d_pos <= s->d_lo) { /* still before the window (gzip: maybe for long) */
            LOB_FORWARD_IF_ERROR(lob_poll_stop(err));
            continue;
        }
        if (from < s->d_lo) {
            memmove(dst, dst + (s->d_lo - from), (size_t)(s->d_pos - s->d_lo));
            n = (ptrdiff_t)(s->d_pos - s->d_lo);
        }
        return n;
    }
}

int
lob_source_window(lob_source *s, int64_t c_lo, int64_t d_at, int64_t d_lo, int64_t d_hi,
                  lob_error *err)
{
    return lob_source_restart(s, c_lo, d_at, d_lo, d_hi, 1, err);
}

int
lob_source_restart(lob_source *s, int64_t c_lo, int64_t d_at, int64_t d_lo, int64_t d_hi,
                   int windowed, lob_error *err)
{
    if (c_lo < 0 || d_at < 0 || d_at > d_lo || d_lo > d_hi) {
        return lob_error_set(err, LOB_E_ARG,
                             "invalid window: restart at byte %lld (text offset %lld), "
                             "text [%lld, %lld)",
                             (long long)c_lo, (long long)d_at, (long long)d_lo, (long long)d_hi);
    }
    if (s->kind == LOB_PLAIN) {
        c_lo = d_at = d_lo; /* any byte of a plain file is a restart point */
    }
    else if (s->kind == LOB_GZIP && c_lo != 0) {
        return lob_error_set(err, LOB_E_ARG, "gzip cannot restart inside the file (byte %lld)",
                             (long long)c_lo);
    }
    if (lseek(s->fd, (off_t)c_lo, SEEK_SET) < 0) {
        return io_error(err, errno, "cannot seek to byte %lld", (long long)c_lo);
    }
    s->c_base = c_lo;
    s->in_len = s->in_pos = 0;
    s->eof = s->done = s->in_member = 0;
    s->pending = s->truncated = 0;
    s->junk_off = -1;
    s->windowed = windowed != 0;
    if (s->kind == LOB_GZIP) {
        inflateReset(&s->z);
    }
    else if (s->kind == LOB_ZSTD) {
        ZSTD_DCtx_reset(s->zs, ZSTD_reset_session_only);
    }
    s->d_pos = d_at;
    s->d_lo = d_lo;
    s->d_end = d_hi;
    s->frames = 0;
    return LOB_OK;
}

int64_t
lob_source_frame(const lob_source *s, int64_t *c_off, int64_t *d_off)
{
    if (s->kind != LOB_ZSTD) {
        *c_off = *d_off = 0;
        return -1;
    }
    *c_off = s->frame_c;
    *d_off = s->frame_d;
    return s->frames - 1;
}

void
lob_source_forget_stop(lob_source *s)
{
    s->stop_pending = 0;
}

int64_t
lob_source_coffset(const lob_source *s)
{
    return s->kind == LOB_PLAIN ? s->d_pos : s->c_base + (int64_t)s->in_pos;
}

int64_t
lob_source_decompressed(const lob_source *s)
{
    return s->produced;
}

int64_t
lob_source_junk(const lob_source *s)
{
    return s->junk_off;
}

int64_t
lob_source_truncated(const lob_source *s)
{
    return s->truncated;
}

lob_compression
lob_source_compression(const lob_source *s)
{
    return s->kind;
}

void
lob_source_free(lob_source *s)
{
    if (s == NULL) {
        return;
    }
    if (s->fd >= 0) {
        close(s->fd); /* read-only: nothing to lose, and no retry after EINTR (Linux) */
    }
    if (s->z_init) {
        inflateEnd(&s->z);
    }
    ZSTD_freeDStream(s->zs);
    free(s->in);
    free(s);
}
