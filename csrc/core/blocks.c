/* blocks.c -- large blocks kept for reuse (see blocks.h). */
#define _GNU_SOURCE /* madvise */
#include "core/blocks.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#define ALIGN ((size_t)2 << 20) /* a huge page */
#define SLOTS 64

static struct {
    void *p;
    size_t bytes;
    uint64_t age; /* when it was freed: the oldest goes first */
} kept[SLOTS];
static size_t kept_total;
static uint64_t clock_now;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* fork() while another thread holds the mutex would leave it held for ever in the child */
static void
before_fork(void)
{
    pthread_mutex_lock(&mu);
}

static void
after_fork(void)
{
    pthread_mutex_unlock(&mu);
}

static void
register_fork(void)
{
    (void)pthread_atfork(before_fork, after_fork, after_fork);
}

void *
lob_block_alloc(size_t bytes, size_t *got)
{
    *got = bytes;
    if (bytes < LOB_BLOCK_MIN) {
        return malloc(bytes > 0 ? bytes : 1);
    }
    pthread_once(&once, register_fork);
    void *p = NULL;
    pthread_mutex_lock(&mu);
    int best = -1;
    for (int i = 0; i < SLOTS; i++) {
        /* the smallest that fits; of those, the last freed (its pages the warmest) */
        if (kept[i].p != NULL && kept[i].bytes >= bytes && kept[i].bytes / 2 <= bytes &&
            (best < 0 || kept[i].bytes < kept[best].bytes ||
             (kept[i].bytes == kept[best].bytes && kept[i].age > kept[best].age))) {
            best = i;
        }
    }
    if (best >= 0) {
        p = kept[best].p; /* its pages are in place: nothing to fault in or zero */
        *got = kept[best].bytes;
        kept_total -= kept[best].bytes;
        kept[best].p = NULL;
    }
    pthread_mutex_unlock(&mu);
    if (p != NULL) {
        return p;
    }
    if (posix_memalign(&p, ALIGN, bytes) != 0) {
        return NULL;
    }
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    (void)madvise(p, bytes & ~(ALIGN - 1), MADV_HUGEPAGE); /* a hint only */
#endif
    return p;
}

void
lob_block_free(void *p, size_t bytes)
{
    if (p == NULL || bytes < LOB_BLOCK_MIN || bytes > LOB_BLOCK_KEEP) {
        free(p);
        return;
    }
    pthread_once(&once, register_fork);
    void *out[SLOTS]; /* blocks let go to make room, freed outside the lock */
    int nout = 0, slot = -1;
    pthread_mutex_lock(&mu);
    for (;;) {
        int oldest = -1;
        slot = -1;
        for (int i = 0; i < SLOTS; i++) {
            if (kept[i].p == NULL) {
                slot = slot < 0 ? i : slot;
            }
            else if (oldest < 0 || kept[i].age < kept[oldest].age) {
                oldest = i;
            }
        }
        if (slot >= 0 && kept_total + bytes <= LOB_BLOCK_KEEP) {
            break;
        }
        out[nout++] = kept[oldest].p; /* oldest >= 0: the slots are full or hold bytes */
        kept_total -= kept[oldest].bytes;
        kept[oldest].p = NULL;
    }
    kept[slot].p = p;
    kept[slot].bytes = bytes;
    kept[slot].age = ++clock_now;
    kept_total += bytes;
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < nout; i++) {
        free(out[i]);
    }
}

void
lob_block_trim(void)
{
    void *out[SLOTS];
    int nout = 0;
    pthread_once(&once, register_fork);
    pthread_mutex_lock(&mu);
    for (int i = 0; i < SLOTS; i++) {
        if (kept[i].p != NULL) {
            out[nout++] = kept[i].p;
            kept[i].p = NULL;
        }
    }
    kept_total = 0;
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < nout; i++) {
        free(out[i]);
    }
}
