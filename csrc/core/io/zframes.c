/* zframes.c -- independent zstd frames with a seek table; lob_convert on top. */
#define _POSIX_C_SOURCE 200809L /* open, write, ftruncate */
#include "core/io/zframes.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#define LOB_SKIPPABLE_SEEK 0x184D2A5Eu /* the seek table's skippable frame */
#define LOB_SEEKABLE_MAGIC 0x8F92EAB1u /* last four bytes of a seekable file */
#define LOB_FRAME_MAX ((size_t)1 << 31)

struct lob_zctx_s {
    ZSTD_CCtx *cc;
    void *out; /* the compressed frame */
    size_t out_cap;
};

struct lob_zwriter_s {
    int fd;
    lob_zctx *z;
    int own_z;       /* z was made for this writer alone */
    uint32_t *sizes; /* (compressed, decompressed) per frame */
    size_t n, cap;   /* frames written / room in sizes */
    int64_t bytes;   /* compressed bytes written: the end of the last complete frame */
};

static void
put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

int
lob_zctx_new(lob_zctx **out, int level, lob_error *err)
{
    *out = NULL;
    lob_zctx *z = calloc(1, sizeof *z);
    if (z == NULL || (z->cc = ZSTD_createCCtx()) == NULL) {
        free(z);
        return lob_error_set(err, LOB_E_NOMEM, "no memory for a zstd compressor");
    }
    size_t zr = ZSTD_CCtx_setParameter(z->cc, ZSTD_c_compressionLevel, level);
    if (!ZSTD_isError(zr)) {
        zr = ZSTD_CCtx_setParameter(z->cc, ZSTD_c_checksumFlag, 1);
    }
    if (ZSTD_isError(zr)) {
        lob_zctx_free(z);
        return lob_error_set(err, LOB_E_ARG, "zstd level %d: %s", level, ZSTD_getErrorName(zr));
    }
    *out = z;
    return LOB_OK;
}

void
lob_zctx_free(lob_zctx *z)
{
    if (z != NULL) {
        ZSTD_freeCCtx(z->cc);
        free(z->out);
        free(z);
    }
}

static void
zwriter_free(lob_zwriter *w)
{
    if (w->fd >= 0) {
        close(w->fd);
    }
    if (w->own_z) {
        lob_zctx_free(w->z);
    }
    free(w->sizes);
    free(w);
}

int
lob_zwriter_open(lob_zwriter **out, const char *path, lob_zctx *z, int level, int flags,
                 lob_error *err)
{
    *out = NULL;
    lob_zwriter *w = calloc(1, sizeof *w);
    if (w == NULL) {
        return lob_error_set(err, LOB_E_NOMEM, "no memory for a zstd writer");
    }
    w->fd = -1;
    w->z = z;
    if (z == NULL) {
        int rc = lob_zctx_new(&w->z, level, err);
        if (rc < 0) {
            free(w);
            return rc;
        }
        w->own_z = 1;
    }
    int oflags = O_WRONLY | O_CREAT | O_CLOEXEC | ((flags & LOB_ZW_EXCL) ? O_EXCL : O_TRUNC);
    int rc = LOB_OK;
    do { /* opening a FIFO waits for its reader: a signal may come first */
        w->fd = open(path, oflags, 0666);
    } while (w->fd < 0 && errno == EINTR && (rc = lob_poll_stop_now(err)) == LOB_OK);
    if (rc < 0) {
        zwriter_free(w);
        return rc;
    }
    if (w->fd < 0) {
        int e = errno;
        zwriter_free(w);
        lob_error_set(err, LOB_E_IO, "cannot create: %s", strerror(e));
        if (err != NULL) {
            err->sys_errno = e;
        }
        return LOB_E_IO;
    }
    *out = w;
    return LOB_OK;
}

/* Write all of [p, p + n) after the last complete frame.  Unbuffered, so every frame is in
 * the kernel once this returns and survives the process being killed.  On failure (a full
 * disk, a file size limit) the file is cut back to its last complete frame, so what is
 * there stays readable. */
static int
write_all(lob_zwriter *w, const void *p, size_t n, lob_error *err)
{
    const char *s = p;
    size_t done = 0;
    while (done < n) {
        ssize_t k = write(w->fd, s + done, n - done);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            int e = k < 0 ? errno : ENOSPC;
            if (done > 0 && ftruncate(w->fd, (off_t)w->bytes) == 0) {
                (void)lseek(w->fd, (off_t)w->bytes, SEEK_SET);
            }
            return lob_error_set(err, LOB_E_IO, "write failed after %lld bytes: %s",
                                 (long long)w->bytes, strerror(e));
        }
        done += (size_t)k;
    }
    w->bytes += (int64_t)n;
    return LOB_OK;
}

int
lob_zwriter_frame(lob_zwriter *w, const void *src, size_t n, lob_error *err)
{
    if (n >= LOB_FRAME_MAX) {
        return lob_error_set(err, LOB_E_ARG, "a frame of %zu bytes is over the 2 GiB limit", n);
    }
    lob_zctx *z = w->z;
    size_t bound = ZSTD_compressBound(n);
    if (bound > z->out_cap) {
        void *p = realloc(z->out, bound);
        if (p == NULL) {
            return lob_error_set(err, LOB_E_NOMEM, "no memory to compress %zu bytes", n);
        }
        z->out = p;
        z->out_cap = bound;
    }
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 256;
        uint32_t *p = realloc(w->sizes, cap * 2 * sizeof *p);
        if (p == NULL) {
            return lob_error_set(err, LOB_E_NOMEM, "no memory for the seek table");
        }
        w->sizes = p;
        w->cap = cap;
    }
    size_t c = ZSTD_compress2(z->cc, z->out, z->out_cap, src, n);
    if (ZSTD_isError(c)) {
        return lob_error_set(err, LOB_E_CORRUPT, "zstd compression failed: %s",
                             ZSTD_getErrorName(c));
    }
    LOB_FORWARD_IF_ERROR(write_all(w, z->out, c, err));
    w->sizes[2 * w->n] = (uint32_t)c;
    w->sizes[2 * w->n + 1] = (uint32_t)n;
    w->n++;
    return LOB_OK;
}

static uint32_t
get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int
lob_seek_table_frames(const char *path, int64_t *frames, lob_error *err)
{
    *frames = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC), e = 0;
    struct stat st;
    unsigned char foot[9];
    if (fd < 0 || fstat(fd, &st) != 0) {
        e = errno;
    }
    /* the smallest table: skippable header (8) + footer (9) */
    else if (st.st_size >= 17) {
        ssize_t got = pread(fd, foot, sizeof foot, st.st_size - (off_t)sizeof foot);
        if (got != (ssize_t)sizeof foot) {
            e = got < 0 ? errno : EIO;
        }
        else if (get32(foot + 5) == LOB_SEEKABLE_MAGIC) {
            *frames = get32(foot);
        }
    }
    if (fd >= 0) {
        close(fd);
    }
    if (e != 0) {
        lob_error_set(err, LOB_E_IO, "cannot read the seek table: %s", strerror(e));
        err->sys_errno = e;
        return LOB_E_IO;
    }
    return LOB_OK;
}

int
lob_seek_table_read(const char *path, lob_zframe **out, int64_t *n, int64_t *table_at,
                    lob_error *err)
{
    *out = NULL;
    *n = -1;
    *table_at = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC), e = 0;
    struct stat st;
    unsigned char foot[9], head[8];
    unsigned char *t = NULL;
    int rc = LOB_OK;
    if (fd < 0 || fstat(fd, &st) != 0) {
        e = errno;
        goto done;
    }
    if (!S_ISREG(st.st_mode) || st.st_size < 17) {
        goto done; /* a pipe or a device has no table to seek with */
    }
    ssize_t got = pread(fd, foot, sizeof foot, st.st_size - (off_t)sizeof foot);
    if (got != (ssize_t)sizeof foot) {
        e = got < 0 ? errno : EIO;
        goto done;
    }
    uint32_t k = get32(foot);
    size_t entry = (foot[4] & 0x80) ? 12 : 8; /* with per-frame checksums or without */
    if (get32(foot + 5) != LOB_SEEKABLE_MAGIC || (foot[4] & 0x7c) != 0) {
        goto done;
    }
    /* header (8) + entries + footer (9), all inside the file */
    uint64_t size = 8 + (uint64_t)k * entry + 9;
    if (size > (uint64_t)st.st_size) {
        goto done;
    }
    off_t at = st.st_size - (off_t)size;
    got = pread(fd, head, sizeof head, at);
    if (got != (ssize_t)sizeof head) {
        e = got < 0 ? errno : EIO;
        goto done;
    }
    if (get32(head) != LOB_SKIPPABLE_SEEK || get32(head + 4) != size - 8) {
        goto done;
    }
    size_t bytes = (size_t)k * entry;
    t = malloc(bytes ? bytes : 1);
    lob_zframe *f = malloc((k ? k : 1) * sizeof *f);
    if (t == NULL || f == NULL) {
        free(f);
        rc = lob_error_set(err, LOB_E_NOMEM, "no memory for a seek table of %u frames", k);
        goto done;
    }
    got = bytes ? pread(fd, t, bytes, at + 8) : 0;
    if (got != (ssize_t)bytes) {
        free(f);
        e = got < 0 ? errno : EIO;
        goto done;
    }
    for (uint32_t i = 0; i < k; i++) {
        f[i].csize = get32(t + i * entry);
        f[i].dsize = get32(t + i * entry + 4);
    }
    *out = f;
    *n = k;
    *table_at = (int64_t)at;
done:
    free(t);
    if (fd >= 0) {
        close(fd);
    }
    if (e != 0) {
        lob_error_set(err, LOB_E_IO, "cannot read the seek table: %s", strerror(e));
        err->sys_errno = e;
        return LOB_E_IO;
    }
    return rc;
}

int
lob_zwriter_close(lob_zwriter *w, lob_error *err)
{
    if (w == NULL) {
        return LOB_OK;
    }
    /* skippable header (8) + 8 bytes per frame + footer (9) */
    size_t size = 8 + 8 * w->n + 9;
    unsigned char *t = malloc(size);
    int rc = LOB_OK;
    if (t == NULL || w->n > 0x8000000) {
        rc = lob_error_set(err, LOB_E_NOMEM, "no room for a seek table of %zu frames", w->n);
    }
    else {
        put32(t, LOB_SKIPPABLE_SEEK);
        put32(t + 4, (uint32_t)(size - 8));
        for (size_t i = 0; i < 2 * w->n; i++) {
            put32(t + 8 + 4 * i, w->sizes[i]);
        }
        unsigned char *foot = t + 8 + 8 * w->n;
        put32(foot, (uint32_t)w->n);
        foot[4] = 0; /* descriptor: no checksums */
        put32(foot + 5, LOB_SEEKABLE_MAGIC);
        rc = write_all(w, t, size, err);
    }
    free(t);
    if (close(w->fd) != 0 && rc == LOB_OK) {
        rc = lob_error_set(err, LOB_E_IO, "closing the file failed: %s", strerror(errno));
    }
    w->fd = -1;
    zwriter_free(w);
    return rc;
}

void
lob_zwriter_stats(const lob_zwriter *w, int64_t *frames, int64_t *bytes)
{
    *frames = (int64_t)w->n;
    *bytes = w->bytes;
}

/* ---------------------------------------------------------------- convert */

typedef struct {
    char *p;
    size_t n, cap;
} buffer;

static int
append(buffer *b, const char *s, size_t n, lob_error *err)
{
    if (b->cap - b->n < n) {
        size_t cap = (b->cap + n) * 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            return lob_error_set(err, LOB_E_NOMEM, "no memory for a %zu-byte frame", b->n + n);
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    return LOB_OK;
}

int
lob_convert(const char *src, const char *dst, const lob_tskey *key, int64_t frame_ns,
            size_t frame_bytes, int level, lob_convert_stats *st, lob_error *err)
{
    memset(st, 0, sizeof *st);
    if (frame_bytes == 0 || frame_bytes >= LOB_FRAME_MAX) {
        return lob_error_set(err, LOB_E_ARG, "frame_bytes must be in [1, 2 GiB)");
    }
    lob_lines ls;
    LOB_FORWARD_IF_ERROR(lob_lines_open(&ls, src, NULL, 0, err));
    if (key != NULL && key->max_line > 0) {
        ls.max_line = key->max_line;
    }
    lob_zwriter *w = NULL;
    int rc = lob_zwriter_open(&w, dst, NULL, level, 0, err);
    buffer b = {0};
    const char *s;
    size_t n;
    int64_t off, t0 = 0, ts;
    int timed = 0; /* the frame's first line had a time */
    int more;
    while (rc == LOB_OK && (more = lob_lines_next(&ls, &s, &n, &off, err)) != 0) {
        if (more < 0) {
            rc = more;
            break;
        }
        size_t raw = (size_t)(ls.off - off); /* the line as it was: "\r\n" or "\n" included */
        int has_ts = key != NULL && ls.line > key->skip_lines && n > 0 &&
                     lob_line_time(s, n, key, &ts, NULL) == LOB_OK;
        int cut = b.n > 0 && (b.n + raw > frame_bytes || (timed && has_ts && ts - t0 >= frame_ns));
        if (cut) {
            rc = lob_zwriter_frame(w, b.p, b.n, err);
            b.n = 0;
        }
        if (b.n == 0) {
            timed = has_ts;
            t0 = has_ts ? ts : 0;
        }
        else if (!timed && has_ts) {
            timed = 1; /* a frame that began with the header line */
            t0 = ts;
        }
        if (rc == LOB_OK) {
            rc = append(&b, s, raw, err);
        }
        st->lines++;
        st->bytes_in += (int64_t)raw;
    }
    if (rc == LOB_OK && b.n > 0) {
        rc = lob_zwriter_frame(w, b.p, b.n, err);
    }
    st->partial = ls.partial;
    st->truncated = ls.src ? lob_source_truncated(ls.src) : 0;
    st->junk_off = ls.src ? lob_source_junk(ls.src) : -1;
    if (w != NULL) {
        lob_zwriter_stats(w, &st->frames, &st->bytes_out);
        int rc2 = lob_zwriter_close(w, rc == LOB_OK ? err : NULL);
        rc = rc == LOB_OK ? rc2 : rc;
        st->bytes_out += rc == LOB_OK ? 8 + 8 * st->frames + 9 : 0;
    }
    free(b.p);
    lob_lines_close(&ls);
    return rc;
}
