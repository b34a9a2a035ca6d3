/* lob.h -- error convention shared by the whole pure-C core.
 *
 * Every core function returns 0 (LOB_OK) or a negative LOB_E_* code.  Functions that
 * read user data also fill a lob_error with what was expected and where, so the binding
 * can raise an exception naming the file, line and byte offset.  Never includes Python.h.
 */
#ifndef LOB_H
#define LOB_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    LOB_OK = 0,
    LOB_E_NOMEM = -1,   /* allocation failed */
    LOB_E_IO = -2,      /* open/read failed (errno text in the message) */
    LOB_E_FORMAT = -3,  /* malformed input: not the syntax that was expected */
    LOB_E_RANGE = -4,   /* a number does not fit the type or precision */
    LOB_E_CORRUPT = -5, /* compressed data is corrupt */
    LOB_E_ARG = -6,     /* invalid argument from the caller */
    LOB_E_BUSY = -7,    /* object used from two threads at once */
    LOB_E_INTR = -8,    /* the caller stopped a long loop (a signal: Ctrl-C) */
    LOB_E_INDEX = -9,   /* an index from the caller (a row, a group) is out of range */
} lob_code;

/* Cooperative interruption.  The caller of a long loop may install a stop check in
 * lob_error.poll; the loop calls lob_poll_stop(err) every LOB_POLL_ROWS units of work and, when
 * the check answers nonzero, frees what it allocated and returns LOB_E_INTR.  The check is
 * the caller's business (the binding looks for pending signals, at most every few ms). */
typedef struct lob_poll_s {
    int (*stop)(void *ctx); /* nonzero: stop now (may answer from a cache for a few ms) */
    void *ctx;
    int (*stop_now)(void *ctx); /* optional: the same, never cached (after EINTR) */
} lob_poll;

/* Work between two lob_poll_stop() calls: cheap enough that a check costs nothing measurable,
 * small enough that a stop is seen within a few milliseconds. */
#define LOB_POLL_ROWS ((int64_t)1 << 16)

/* Where and why a read failed.  line/offset are 0 when they do not apply. */
typedef struct lob_error_s {
    int code;             /* LOB_E_* */
    int64_t line;         /* 1-based line number in the (decompressed) text */
    int64_t offset;       /* byte offset of that line's start in the (decompressed) text */
    char msg[256];        /* what was wrong / expected, NUL-terminated */
    const lob_poll *poll; /* set by the caller (may be NULL): how long loops are stopped */
    int sys_errno;        /* LOB_E_IO: the errno of the failed system call, else 0 */
} lob_error;

/*! lob_strerror() : @return a static description of a LOB_E_* code. */
const char *lob_strerror(int code);

/*! lob_error_set() : fill `err` (may be NULL) with `code` and a printf-style message.
 *  @return code, so callers can `return lob_error_set(err, LOB_E_FORMAT, "...")`. */
int lob_error_set(lob_error *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/*! lob_error_clear() : forget a handled error (the caller's poll stays installed). */
static inline void
lob_error_clear(lob_error *err)
{
    if (err != NULL) {
        err->code = LOB_OK;
        err->line = err->offset = 0;
        err->msg[0] = '\0';
        err->sys_errno = 0;
    }
}

/*! lob_poll_stop() : LOB_E_INTR (with a message in err) when the caller's stop check in
 *  err->poll answers nonzero, else 0.  Loops call it every LOB_POLL_ROWS rows. */
static inline int
lob_poll_stop(lob_error *err)
{
    if (err != NULL && err->poll != NULL && err->poll->stop(err->poll->ctx)) {
        return lob_error_set(err, LOB_E_INTR, "interrupted");
    }
    return LOB_OK;
}

/*! lob_poll_stop_now() : lob_poll_stop() for a system call that a signal just interrupted
 *  (EINTR): the caller's check runs at once, so a signal is never left waiting. */
static inline int
lob_poll_stop_now(lob_error *err)
{
    if (err != NULL && err->poll != NULL) {
        int (*f)(void *) = err->poll->stop_now != NULL ? err->poll->stop_now : err->poll->stop;
        if (f(err->poll->ctx)) {
            return lob_error_set(err, LOB_E_INTR, "interrupted");
        }
    }
    return LOB_OK;
}

/* LOB_VECTOR_CLONES before a function with hot loops: AVX-512 and AVX2 clones of it beside
 * the baseline one, picked once when the library loads (gcc on x86-64 Linux; elsewhere one
 * plain version).  LOB_SCAN_CLONES: the AVX2 clone only, for a pass that streams memory
 * (the time checks ran 10-20 % slower with 512-bit loads than with 256-bit ones).  Only in ISO C
 * mode (-std=c11, __STRICT_ANSI__), where gcc never fuses a multiply and an add into an FMA: every
 * clone rounds every value alike. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) &&       \
    defined(__STRICT_ANSI__)
#define LOB_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#define LOB_SCAN_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define LOB_VECTOR_CLONES
#define LOB_SCAN_CLONES
#endif

/* LOB_AVX512 before a function written with AVX-512 intrinsics (<immintrin.h>, foundation,
 * byte/word and 128/256-bit forms), which runs only where lob_has_avx512() says so.  The same
 * compilers and mode as LOB_VECTOR_CLONES; elsewhere LOB_HAVE_AVX512 is 0 and such functions
 * are left out. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__STRICT_ANSI__)
#define LOB_HAVE_AVX512 1
#define LOB_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))
static inline int
lob_has_avx512(void)
{
    __builtin_cpu_init(); /* cheap once done; needed before any constructor has run */
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}
#else
#define LOB_HAVE_AVX512 0
static inline int
lob_has_avx512(void)
{
    return 0;
}
#endif

/* lob_unit[test] is 0.0 or 1.0: `sum += q * lob_unit[side > 0]` adds a trade's size or +0.0
 * (exactly, for finite q) without a branch.  Sides are a coin flip, and gcc turns both
 * `q * (double)(side > 0)` and `side > 0 ? q : 0.0` into a branch on the side, mispredicted
 * every other trade (benchmarks/PROFILE.md, "aggregate"); a load from a table it cannot
 * undo. */
static const double lob_unit[2] = {0.0, 1.0};

/*! Every `LOB_POLL_ROWS`-th value of the loop counter `i`: check for a stop. */
#define LOB_POLL_DUE(i) (((i) & (LOB_POLL_ROWS - 1)) == 0)

/* Timestamps: int64 nanoseconds since the Unix epoch.  Every time a kernel or reader accepts
 * lies in [LOB_TS_MIN, LOB_TS_MAX] (1970-01-01 .. 2262-01-01): NaT (INT64_MIN) and times
 * outside are refused up front, and arithmetic on times is still overflow-checked. */
#define LOB_TS_MIN INT64_C(0)
#define LOB_TS_MAX INT64_C(9214646400000000000) /* 2262-01-01T00:00:00Z */

/*! lob_times_ok() : whether lob_check_times() would accept ts[0..n), in one branch-free pass
 *  that names no row (for a kernel that checks ranges of a large input on several threads). */
int lob_times_ok(const int64_t *ts, int64_t n, int sorted);

/*! lob_check_times() : 0 when every ts[0..n) lies in [LOB_TS_MIN, LOB_TS_MAX] and, when
 *  `sorted`, never decreases; else LOB_E_ARG naming `what`, the first bad row and its value
 *  (NaT by name). */
int lob_check_times(const int64_t *ts, int64_t n, int sorted, const char *what, lob_error *err);

/*! lob_ts_add() / lob_ts_sub() : *out = a + b / a - b, or LOB_E_RANGE when the result
 *  overflows int64 (out is then left unchanged). */
static inline int
lob_ts_add(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) {
        return LOB_E_RANGE;
    }
    *out = r;
    return LOB_OK;
}

static inline int
lob_ts_sub(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r)) {
        return LOB_E_RANGE;
    }
    *out = r;
    return LOB_OK;
}

/* Propagate a negative code unchanged. */
#define LOB_FORWARD_IF_ERROR(expr)                                                                 \
    do {                                                                                           \
        int lob_rc_ = (expr);                                                                      \
        if (lob_rc_ < 0) {                                                                         \
            return lob_rc_;                                                                        \
        }                                                                                          \
    } while (0)

#endif /* LOB_H */
