/* zpar.c -- seekable zstd frames decompressed and parsed on worker threads (zpar.h). */
#define _POSIX_C_SOURCE 200809L /* pread, pthreads, clock_gettime */
#include "core/io/zpar.h"

#include "core/io/zframes.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#define ZPAR_WINDOW_LOG 27    /* as source.c: a frame asking for more is corrupt */
#define ZPAR_STOP_LINES 4096  /* a worker looks at the stop flag this often */
#define ZPAR_WAIT_NS 20000000 /* the caller asks its stop check this often while waiting */
#define ZPAR_THREADS_MAX 256  /* workers, at most */
/* Frames in flight: at most ZPAR_SLOTS, and text beyond the frame the caller waits for: at
 * most ZPAR_AHEAD while the caller does other work (lob_zpar_away).  While it applies frames:
 * ZPAR_NEAR, so that what it reaches is still in the caches -- unless it came back to more
 * than ZPAR_BACKLOG parsed (it builds a book from each chunk, say): then the workers parse on
 * up to ZPAR_AHEAD rather than wait while it applies what they parsed meanwhile. */
#define ZPAR_SLOTS 256
#define ZPAR_AHEAD ((int64_t)64 << 20)
#define ZPAR_NEAR ((int64_t)1 << 20)
#define ZPAR_BACKLOG ((int64_t)8 << 20)
#define ZPAR_KEEP ((size_t)1 << 20)        /* buffers up to this serve the next frame ... */
#define ZPAR_HELD ((size_t)2 * ZPAR_AHEAD) /* ... while all of them hold less text than this */
#define ZPAR_HELP_MAX ((int64_t)8 << 20)   /* the caller parses frames up to this itself */

enum { SLOT_FREE, SLOT_BUSY, SLOT_DONE };

/* What a frame is parsed into.  Sets freed by the caller are reused last in, first out, so
 * the few the caller and the workers pass between them stay in the caches. */
typedef struct bufs_s {
    char *in; /* compressed bytes */
    size_t in_cap;
    char *text; /* decompressed bytes */
    size_t text_cap;
    size_t *start; /* line starts */
    size_t start_cap;
    size_t *len; /* line lengths */
    size_t len_cap;
    void *work;           /* the format's worker state */
    struct bufs_s *older; /* the next free set */
} bufs;

typedef struct {
    int state;        /* SLOT_* */
    int64_t index;    /* the frame it holds (BUSY, DONE) */
    lob_zpar_frame f; /* DONE: what lob_zpar_next hands out */
    bufs *b;          /* BUSY, DONE: the frame's buffers */
} slot;

struct lob_zpar_s {
    const lob_format *fmt;
    lob_opts opts;         /* for the format's worker states */
    int fd;                /* the file, read with pread by every worker */
    lob_zframe *frames;    /* the seek table */
    int64_t *c_at, *d_at;  /* per frame (and one past the last): file and text offsets */
    int64_t first, nframe; /* frames [first, nframe) are wanted */
    int64_t d_lo, d_hi;    /* the text window */
    size_t max_line;
    slot *slots;
    int nslot;
    pthread_t *threads;
    int nthread;
    ZSTD_DCtx **dctx; /* one per worker, and the caller's last */
    int ndctx;
    pthread_mutex_t mu;
    pthread_cond_t work_cv;  /* a slot became free, or quit */
    pthread_cond_t ready_cv; /* a frame is done */
    int64_t next;            /* the frame the caller gets next */
    int64_t stop_at;         /* frames at or after this are not taken (a frame fell back) */
    int64_t ahead;           /* text bytes of the frames taken and not yet given back */
    int idle;                /* workers waiting on work_cv */
    int64_t budget;          /* ZPAR_AHEAD, or less while the caller applies frames */
    bufs *free_bufs;         /* free sets, the last freed first */
    size_t held;             /* text capacity of every set, free or in a slot */
    int waiting;             /* the caller waits on ready_cv */
    atomic_int quit;         /* workers end */
    int sync_ok;             /* mu and the condition variables were initialised */
    pid_t pid;               /* the process the workers run in (not a fork's child) */
};

/* ------------------------------------------------------------------ a worker */

static int
grow(void *pp, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) {
        return LOB_OK;
    }
    size_t c = *cap ? *cap : 64;
    while (c < need) {
        c *= 2;
    }
    void *p = realloc(*(void **)pp, c * size);
    if (p == NULL) {
        return LOB_E_NOMEM;
    }
    *(void **)pp = p;
    *cap = c;
    return LOB_OK;
}

static int
read_at(int fd, char *dst, size_t n, int64_t at)
{
    size_t done = 0;
    while (done < n) {
        ssize_t k = pread(fd, dst + done, n - done, (off_t)(at + (int64_t)done));
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            return LOB_E_IO;
        }
        done += (size_t)k;
    }
    return LOB_OK;
}

/* The window a zstd frame asks for (RFC 8878 3.1.1.1): its content size for a single
 * segment (at most LOB_ZPAR_FRAME_MAX, checked by the caller), else the window descriptor's;
 * 0 for a skippable frame. */
static uint64_t
window_size(const char *in, size_t n)
{
    const unsigned char *p = (const unsigned char *)in;
    if (n < 6 || p[0] != 0x28 || p[1] != 0xb5 || p[2] != 0x2f || p[3] != 0xfd || (p[4] & 0x20)) {
        return 0;
    }
    unsigned wlog = 10 + (p[5] >> 3);
    uint64_t base = (uint64_t)1 << wlog;
    return base + (base / 8) * (p[5] & 7);
}

/* Frame i into slot s.  @return 1 parsed, 0 left to the sequential reader, -1 abandoned
 * (quit). */
static int
work_frame(lob_zpar *z, slot *sl, int64_t i, ZSTD_DCtx *dc)
{
    const lob_zframe *fr = &z->frames[i];
    lob_zpar_frame *f = &sl->f;
    bufs *s = sl->b;
    memset(f, 0, sizeof *f);
    f->c_at = z->c_at[i];
    f->d_at = z->d_at[i];
    if ((s->work == NULL && z->fmt->work_new(&s->work, &z->opts) < 0) ||
        fr->dsize > LOB_ZPAR_FRAME_MAX || grow(&s->in, &s->in_cap, fr->csize + 1, 1) < 0 ||
        grow(&s->text, &s->text_cap, (size_t)fr->dsize + 1, 1) < 0 ||
        read_at(z->fd, s->in, fr->csize, f->c_at) < 0) {
        return 0;
    }
    /* exactly one frame of exactly the table's sizes, else the table is not to be trusted;
     * one asking for a larger window than source.c allows is source.c's to refuse */
    if (ZSTD_findFrameCompressedSize(s->in, fr->csize) != fr->csize ||
        window_size(s->in, fr->csize) > ((uint64_t)1 << ZPAR_WINDOW_LOG)) {
        return 0;
    }
    size_t got = ZSTD_decompressDCtx(dc, s->text, (size_t)fr->dsize + 1, s->in, fr->csize);
    if (ZSTD_isError(got) || got != fr->dsize) {
        return 0;
    }
    /* the part in the window, as the sequential reader counts and delivers it */
    int64_t end = f->d_at + fr->dsize, hi = end < z->d_hi ? end : z->d_hi;
    int64_t lo = f->d_at > z->d_lo ? f->d_at : z->d_lo;
    f->produced = hi - f->d_at;
    f->off = lo;
    f->text = s->text + (lo - f->d_at);
    size_t len = (size_t)(hi - lo);
    if (len > 0 && f->text[len - 1] != '\n') {
        return 0; /* a line goes on in the next frame, or the window cuts one */
    }
    z->fmt->work_reset(s->work);
    const char *p = f->text, *e = f->text + len;
    size_t k = 0;
    while (p < e) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        size_t n = (size_t)(nl - p);
        if (n > z->max_line || grow(&s->start, &s->start_cap, k + 2, sizeof *s->start) < 0 ||
            grow(&s->len, &s->len_cap, k + 1, sizeof *s->len) < 0) {
            return 0;
        }
        s->len[k] = n > 0 && p[n - 1] == '\r' ? n - 1 : n;
        s->start[k] = (size_t)(p - f->text);
        if (z->fmt->work_line(s->work, p, s->len[k++]) < 0) {
            return 0;
        }
        if (k % ZPAR_STOP_LINES == 0 && atomic_load_explicit(&z->quit, memory_order_relaxed)) {
            return -1;
        }
        p = nl + 1;
    }
    if (grow(&s->start, &s->start_cap, k + 1, sizeof *s->start) < 0) {
        return 0;
    }
    s->start[k] = len;
    f->nlines = k;
    f->start = s->start;
    f->len = s->len;
    f->work = s->work;
    f->parsed = 1;
    return 1;
}

typedef struct {
    lob_zpar *z;
    int id;
} worker_arg;

static worker_arg *
worker_args(lob_zpar *z)
{
    return (worker_arg *)(z->threads + z->nthread);
}

/* The first frame not yet taken that may be taken now (mu held), or -1.  Frames run ahead of
 * the caller (while it works on a chunk) within a budget; the frame it waits for is always
 * taken. */
static int64_t
pick(lob_zpar *z)
{
    int64_t i = z->next, last = z->next + z->nslot;
    last = last < z->stop_at ? last : z->stop_at;
    while (i < last && z->slots[i % z->nslot].state != SLOT_FREE) {
        i++;
    }
    if (i >= last || (i > z->next && z->ahead + z->frames[i].dsize > z->budget)) {
        return -1;
    }
    return i;
}

static void
free_bufs(lob_zpar *z, bufs *b)
{
    if (b != NULL) {
        free(b->in);
        free(b->text);
        free(b->start);
        free(b->len);
        if (b->work != NULL) {
            z->fmt->work_free(b->work);
        }
        free(b);
    }
}

/* Take frame i (from pick()) and parse it with dc, releasing mu meanwhile. */
static void
run_frame(lob_zpar *z, int64_t i, ZSTD_DCtx *dc)
{
    slot *s = &z->slots[i % z->nslot];
    s->state = SLOT_BUSY;
    s->index = i;
    z->ahead += z->frames[i].dsize;
    s->b = z->free_bufs;
    if (s->b != NULL) {
        z->free_bufs = s->b->older;
    }
    pthread_mutex_unlock(&z->mu);
    if (s->b == NULL) {
        s->b = calloc(1, sizeof *s->b);
    }
    size_t cap = s->b != NULL ? s->b->text_cap : 0;
    int rc = s->b != NULL ? work_frame(z, s, i, dc) : 0;
    pthread_mutex_lock(&z->mu);
    if (s->b != NULL) {
        z->held += s->b->text_cap - cap;
    }
    if (rc < 0) { /* quit: the buffers go back (a free slot holds none) */
        s->state = SLOT_FREE;
        z->ahead -= z->frames[i].dsize;
        s->b->older = z->free_bufs;
        z->free_bufs = s->b;
        s->b = NULL;
        return;
    }
    s->state = SLOT_DONE;
    if (rc == 0 && i + 1 < z->stop_at) {
        z->stop_at = i + 1; /* the caller reads on alone from here */
    }
}

static void *
worker(void *arg)
{
    lob_zpar *z = ((worker_arg *)arg)->z;
    ZSTD_DCtx *dc = z->dctx[((worker_arg *)arg)->id];
    pthread_mutex_lock(&z->mu);
    while (!atomic_load(&z->quit)) {
        int64_t i = pick(z);
        if (i < 0) {
            z->idle++;
            pthread_cond_wait(&z->work_cv, &z->mu);
            z->idle--;
            continue;
        }
        run_frame(z, i, dc);
        if (z->waiting) { /* no system call when nobody sleeps */
            pthread_cond_broadcast(&z->ready_cv);
        }
    }
    pthread_mutex_unlock(&z->mu);
    return NULL;
}

/* ------------------------------------------------------------------ the caller's side */

void
lob_zpar_free(lob_zpar *z)
{
    if (z == NULL) {
        return;
    }
    if (z->sync_ok && getpid() == z->pid) { /* a fork's child has none of the workers */
        pthread_mutex_lock(&z->mu);
        atomic_store(&z->quit, 1);
        pthread_cond_broadcast(&z->work_cv);
        pthread_mutex_unlock(&z->mu);
        for (int t = 0; t < z->nthread; t++) {
            pthread_join(z->threads[t], NULL);
        }
        pthread_mutex_destroy(&z->mu);
        pthread_cond_destroy(&z->work_cv);
        pthread_cond_destroy(&z->ready_cv);
    }
    for (int i = 0; z->slots != NULL && i < z->nslot; i++) {
        free_bufs(z, z->slots[i].b);
    }
    while (z->free_bufs != NULL) {
        bufs *b = z->free_bufs;
        z->free_bufs = b->older;
        free_bufs(z, b);
    }
    for (int t = 0; z->dctx != NULL && t < z->ndctx; t++) {
        ZSTD_freeDCtx(z->dctx[t]);
    }
    if (z->fd >= 0) {
        close(z->fd);
    }
    free(z->dctx);
    free(z->slots);
    free(z->threads);
    free(z->frames);
    free(z->c_at);
    free(z->d_at);
    free(z);
}

/* The seek table's frames and their offsets; 0 with z->frames NULL when there is none or it
 * does not describe the data (the frames must fill the file up to the table). */
static int
load_table(lob_zpar *z, const char *path, lob_error *err)
{
    int64_t n, table_at;
    lob_error e = {0};
    int rc = lob_seek_table_read(path, &z->frames, &n, &table_at, &e);
    if (rc == LOB_E_NOMEM) {
        return lob_error_set(err, rc, "%s", e.msg);
    }
    if (rc < 0 || z->frames == NULL) {
        return LOB_OK; /* the sequential reader says what is wrong with the file, if anything */
    }
    z->c_at = malloc((size_t)(n + 1) * sizeof *z->c_at);
    z->d_at = malloc((size_t)(n + 1) * sizeof *z->d_at);
    if (z->c_at == NULL || z->d_at == NULL) {
        return lob_error_set(err, LOB_E_NOMEM, "no memory for %lld frame offsets", (long long)n);
    }
    z->c_at[0] = z->d_at[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        /* sums of 32-bit sizes: at most n * 2^32 < 2^63 for any table a file can hold */
        z->c_at[i + 1] = z->c_at[i] + z->frames[i].csize;
        z->d_at[i + 1] = z->d_at[i] + z->frames[i].dsize;
    }
    if (z->c_at[n] != table_at) {
        free(z->frames);
        z->frames = NULL;
        return LOB_OK;
    }
    z->nframe = n;
    return LOB_OK;
}

int
lob_zpar_open(lob_zpar **out, const char *path, const lob_format *fmt, const lob_opts *opts,
              const lob_span *span, int threads, size_t max_line, lob_error *err)
{
    *out = NULL;
    if (fmt->work_line == NULL || threads < 2) {
        return LOB_OK;
    }
    threads = threads < ZPAR_THREADS_MAX ? threads : ZPAR_THREADS_MAX;
    lob_zpar *z = calloc(1, sizeof *z);
    if (z == NULL) {
        return lob_error_set(err, LOB_E_NOMEM, "no memory for a parallel reader");
    }
    z->fmt = fmt;
    z->opts = *opts;
    z->fd = -1;
    z->max_line = max_line;
    z->d_lo = span ? span->d_lo : 0;
    z->d_hi = span ? span->d_hi : INT64_MAX;
    int rc = load_table(z, path, err);
    if (rc < 0 || z->frames == NULL) {
        lob_zpar_free(z);
        return rc;
    }
    /* the window's first frame must be one the table lists */
    int64_t first = 0;
    if (span != NULL) {
        while (first < z->nframe && z->c_at[first] < span->c_lo) {
            first++;
        }
        if (first == z->nframe || z->c_at[first] != span->c_lo || z->d_at[first] != span->d_at) {
            lob_zpar_free(z);
            return LOB_OK;
        }
    }
    int64_t last = first;
    while (last < z->nframe && z->d_at[last] < z->d_hi) {
        last++;
    }
    z->first = z->next = first;
    z->budget = ZPAR_AHEAD; /* until the caller asks for frames */
    z->stop_at = last;
    z->nframe = last;
    z->fd = open(path, O_RDONLY | O_CLOEXEC);
    threads--; /* workers: the caller is the last thread */
    z->nthread = threads;
    z->nslot = ZPAR_SLOTS > 2 * threads ? ZPAR_SLOTS : 2 * threads;
    z->slots = calloc((size_t)z->nslot, sizeof *z->slots);
    z->dctx = calloc((size_t)threads + 1, sizeof *z->dctx);
    z->ndctx = z->dctx != NULL ? threads + 1 : 0;
    z->threads = malloc((size_t)threads * (sizeof(pthread_t) + sizeof(worker_arg)));
    int bad = z->fd < 0 || z->slots == NULL || z->dctx == NULL || z->threads == NULL;
    for (int t = 0; !bad && t <= threads; t++) {
        z->dctx[t] = ZSTD_createDCtx();
        bad =
            z->dctx[t] == NULL ||
            ZSTD_isError(ZSTD_DCtx_setParameter(z->dctx[t], ZSTD_d_windowLogMax, ZPAR_WINDOW_LOG));
    }
    if (bad) {
        int fd_failed = z->fd < 0;
        z->nthread = 0;
        lob_zpar_free(z);
        /* a file that cannot be opened again is read by the one open already */
        return fd_failed ? LOB_OK
                         : lob_error_set(err, LOB_E_NOMEM, "no memory for %d workers", threads);
    }
    if (pthread_mutex_init(&z->mu, NULL) != 0) {
        z->nthread = 0;
        lob_zpar_free(z);
        return LOB_OK;
    }
    pthread_cond_init(&z->work_cv, NULL);
    pthread_cond_init(&z->ready_cv, NULL);
    z->sync_ok = 1;
    z->pid = getpid();
    int started = 0;
    for (int t = 0; t < threads; t++) {
        worker_arg *a = &worker_args(z)[t];
        a->z = z;
        a->id = t;
        if (pthread_create(&z->threads[t], NULL, worker, a) != 0) {
            break;
        }
        started++;
    }
    z->nthread = started;
    if (started == 0) {
        lob_zpar_free(z);
        return LOB_OK; /* no threads to be had: one thread reads it */
    }
    *out = z;
    return LOB_OK;
}

int
lob_zpar_next(lob_zpar *z, lob_zpar_frame **f, lob_error *err)
{
    if (getpid() != z->pid) {
        /* fork() copied the reader but not its workers (nor, maybe, an unlocked mutex) */
        return lob_error_set(err, LOB_E_ARG,
                             "this reader was forked while its worker threads were reading: "
                             "read the file again in this process");
    }
    pthread_mutex_lock(&z->mu);
    if (z->next >= z->stop_at) {
        /* every frame taken was applied: read on alone from the one after them */
        slot *s = &z->slots[z->next % z->nslot];
        memset(&s->f, 0, sizeof s->f);
        s->f.c_at = z->c_at[z->next];
        s->f.d_at = z->d_at[z->next];
        pthread_mutex_unlock(&z->mu);
        *f = &s->f;
        return 1;
    }
    slot *s = &z->slots[z->next % z->nslot];
    while (s->state != SLOT_DONE || s->index != z->next) {
        /* rather than sleep, parse a frame no worker has taken (a small one: the stop
         * check is asked again soon) */
        int64_t i = pick(z);
        if (i >= 0 && z->frames[i].dsize <= ZPAR_HELP_MAX) {
            run_frame(z, i, z->dctx[z->ndctx - 1]);
        }
        else {
            struct timespec t;
            clock_gettime(CLOCK_REALTIME, &t);
            t.tv_nsec += ZPAR_WAIT_NS;
            if (t.tv_nsec >= 1000000000) {
                t.tv_sec++;
                t.tv_nsec -= 1000000000;
            }
            z->waiting = 1;
            pthread_cond_timedwait(&z->ready_cv, &z->mu, &t);
            z->waiting = 0;
        }
        pthread_mutex_unlock(&z->mu);
        LOB_FORWARD_IF_ERROR(lob_poll_stop(err));
        pthread_mutex_lock(&z->mu);
    }
    pthread_mutex_unlock(&z->mu);
    *f = &s->f;
    return 1;
}

void
lob_zpar_done(lob_zpar *z)
{
    slot *s = &z->slots[z->next % z->nslot];
    pthread_mutex_lock(&z->mu);
    if (s->state == SLOT_DONE && s->index == z->next) {
        s->state = SLOT_FREE;
        z->ahead -= z->frames[z->next].dsize;
    }
    bufs *b = s->b, *gone = NULL;
    s->b = NULL;
    if (b != NULL && (b->text_cap > ZPAR_KEEP || z->held > ZPAR_HELD)) {
        /* memory stays bounded by the frames in flight, not by the largest frames seen */
        z->held -= b->text_cap;
        gone = b;
    }
    else if (b != NULL) {
        b->older = z->free_bufs;
        z->free_bufs = b;
    }
    z->next++;
    if (z->idle > 0) {
        pthread_cond_signal(&z->work_cv); /* one slot came free: one worker can go on */
    }
    pthread_mutex_unlock(&z->mu);
    free_bufs(z, gone);
}

void
lob_zpar_away(lob_zpar *z, int away)
{
    if (getpid() != z->pid) {
        return; /* a fork's child: no workers, and maybe a mutex locked for good */
    }
    pthread_mutex_lock(&z->mu);
    z->budget = away || z->ahead > ZPAR_BACKLOG ? ZPAR_AHEAD : ZPAR_NEAR;
    if (away && z->idle > 0) {
        pthread_cond_broadcast(&z->work_cv); /* the look-ahead grew: parse on */
    }
    pthread_mutex_unlock(&z->mu);
}
