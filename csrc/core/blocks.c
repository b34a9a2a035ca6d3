/* blocks.c -- large blocks kept for reuse (see blocks.h). */
#define _GNU_SOURCE /* mremap */
#include "core/blocks.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif
#if defined(__linux__) && defined(MREMAP_MAYMOVE) && defined(MREMAP_FIXED)
#define LOB_BLOCKS_MAPPED 1
#else
#define LOB_BLOCKS_MAPPED 0
#endif

#define ALIGN ((size_t)2 << 20) /* a huge page, should the system use them */
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

#if LOB_BLOCKS_MAPPED
static size_t
round_up(size_t bytes)
{
    return bytes > SIZE_MAX - (ALIGN - 1) ? 0 : (bytes + ALIGN - 1) & ~(ALIGN - 1);
}

/* `bytes` of address space (a multiple of ALIGN) on an ALIGN boundary, mapped with `prot`:
 * ALIGN more are mapped, and what lies outside the aligned part unmapped again. */
static char *
map_aligned(size_t bytes, int prot, int flags)
{
    if (bytes == 0 || bytes > SIZE_MAX - ALIGN) {
        return NULL;
    }
    char *r = mmap(NULL, bytes + ALIGN, prot, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
    if (r == MAP_FAILED) {
        return NULL;
    }
    char *p = (char *)(((uintptr_t)r + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1));
    if (p > r) {
        (void)munmap(r, (size_t)(p - r));
    }
    if (p + bytes < r + bytes + ALIGN) {
        (void)munmap(p + bytes, (size_t)(r + bytes + ALIGN - (p + bytes)));
    }
    return p;
}
#endif

/* A new large block: on Linux a mapping of its own, its length rounded up to ALIGN; elsewhere
 * an ALIGN-aligned malloc block.  No MADV_HUGEPAGE: on a VM whose guest reports free memory
 * to the host (free page reporting, which works on 2 MiB blocks and more), a fresh huge page
 * is one the host has taken back, and its first touch ran at 0.4-0.6 GB/s against 2.4 GB/s for
 * 4 KiB pages (benchmarks/PROFILE.md).  The alignment leaves the system's own THP policy free
 * to use huge pages. */
static void *
block_new(size_t bytes, size_t *got)
{
#if LOB_BLOCKS_MAPPED
    size_t len = round_up(bytes);
    char *p = map_aligned(len, PROT_READ | PROT_WRITE, 0);
    if (p == NULL) {
        return NULL;
    }
    *got = len;
    return p;
#else
    void *p = NULL;
    *got = bytes;
    return posix_memalign(&p, ALIGN, bytes) == 0 ? p : NULL;
#endif
}

/* Give a block back to the system. */
static void
block_release(void *p, size_t bytes)
{
#if LOB_BLOCKS_MAPPED
    if (bytes >= LOB_BLOCK_MIN) {
        (void)munmap(p, bytes);
        return;
    }
#endif
    (void)bytes;
    free(p);
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
    return block_new(bytes, got);
}

void
lob_block_free(void *p, size_t bytes)
{
    if (p == NULL || bytes < LOB_BLOCK_MIN || bytes > LOB_BLOCK_KEEP) {
        if (p != NULL) {
            block_release(p, bytes);
        }
        return;
    }
    pthread_once(&once, register_fork);
    void *out[SLOTS]; /* blocks let go to make room, freed outside the lock */
    size_t out_bytes[SLOTS];
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
        out_bytes[nout] = kept[oldest].bytes;
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
        block_release(out[i], out_bytes[i]);
    }
}

void
lob_block_trim(void)
{
    void *out[SLOTS];
    size_t out_bytes[SLOTS];
    int nout = 0;
    pthread_once(&once, register_fork);
    pthread_mutex_lock(&mu);
    for (int i = 0; i < SLOTS; i++) {
        if (kept[i].p != NULL) {
            out_bytes[nout] = kept[i].bytes;
            out[nout++] = kept[i].p;
            kept[i].p = NULL;
        }
    }
    kept_total = 0;
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < nout; i++) {
        block_release(out[i], out_bytes[i]);
    }
}

void *
lob_block_grow(void *p, size_t bytes, size_t used, size_t want, size_t *got)
{
    if (p != NULL && want <= bytes) {
        *got = bytes;
        return p;
    }
#if LOB_BLOCKS_MAPPED
    if (p != NULL && bytes >= LOB_BLOCK_MIN && want >= LOB_BLOCK_MIN) {
        /* the pages move with the mapping: nothing copied, nothing faulted again */
        size_t len = round_up(want);
        char *q = len == 0 ? MAP_FAILED : mremap(p, bytes, len, 0); /* in place */
        char *r = NULL;
        if (q == MAP_FAILED && len != 0 &&
            (r = map_aligned(len, PROT_NONE, MAP_NORESERVE)) != NULL) {
            q = mremap(p, bytes, len, MREMAP_MAYMOVE | MREMAP_FIXED, r); /* onto the reservation */
            if (q == MAP_FAILED) {
                (void)munmap(r, len);
            }
        }
        if (q == MAP_FAILED) {
            return NULL; /* p is left as it was */
        }
        *got = len;
        return q;
    }
#endif
    void *q = lob_block_alloc(want, got);
    if (q == NULL) {
        return NULL;
    }
    if (used > 0) {
        memcpy(q, p, used < want ? used : want);
    }
    lob_block_free(p, bytes);
    return q;
}
