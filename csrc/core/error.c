/* error.c -- lob_strerror and lob_error_set. */
#include "core/lob.h"

#include <stdarg.h>
#include <stdio.h>

const char *
lob_strerror(int code)
{
    switch (code) {
    case LOB_OK: return "no error";
    case LOB_E_NOMEM: return "out of memory";
    case LOB_E_IO: return "I/O error";
    case LOB_E_FORMAT: return "malformed input";
    case LOB_E_RANGE: return "value out of range";
    case LOB_E_CORRUPT: return "corrupt compressed data";
    case LOB_E_ARG: return "invalid argument";
    case LOB_E_BUSY: return "object is in use by another thread";
    case LOB_E_INTR: return "interrupted";
    case LOB_E_INDEX: return "index out of range";
    default: return "unknown error";
    }
}

int
lob_error_set(lob_error *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        err->code = code;
        err->sys_errno = 0; /* a caller that knows one sets it after */
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Whether every ts[0..n) lies in [LOB_TS_MIN, LOB_TS_MAX] and, when `sorted`, never
 * decreases, in one branch-free pass at the speed of memory; lob_check_times() looks for the
 * row to name only when this says no.  With LOB_TS_MIN 0 and LOB_TS_MAX < 2^63, and u the
 * times as unsigned: u and LOB_TS_MAX - u both have the top bit clear exactly when u is in
 * range, and then u - previous has it set exactly when the time went back.  So the top bit
 * of everything or-ed together says whether any row is bad.  Blocks of a fixed length let
 * the compiler use vector instructions without a cost model that allows it elsewhere; the AVX2
 * clone matters because SSE2's two lanes check ~20 GB/s, from the caches too, half of what one
 * core reads from memory (benchmarks/PROFILE.md). */
#define TIMES_BLOCK 64

LOB_SCAN_CLONES int
lob_times_ok(const int64_t *ts, int64_t n, int sorted)
{
    const uint64_t *u = (const uint64_t *)ts, max = (uint64_t)LOB_TS_MAX;
    const uint64_t order = sorted ? UINT64_MAX : 0; /* keeps the differences, or not */
    uint64_t acc = 0;
    int64_t i = 0;
    if (n <= 0) {
        return 1;
    }
    acc = u[0] | (max - u[0]);
    for (i = 1; i + TIMES_BLOCK <= n; i += TIMES_BLOCK) {
        uint64_t block = 0;
        for (int j = 0; j < TIMES_BLOCK; j++) {
            uint64_t x = u[i + j];
            block |= x | (max - x) | ((x - u[i + j - 1]) & order);
        }
        acc |= block;
    }
    for (; i < n; i++) {
        acc |= u[i] | (max - u[i]) | ((u[i] - u[i - 1]) & order);
    }
    return (acc >> 63) == 0;
}

int
lob_check_times(const int64_t *ts, int64_t n, int sorted, const char *what, lob_error *err)
{
    if (lob_times_ok(ts, n, sorted)) {
        return LOB_OK;
    }
    for (int64_t i = 0; i < n; i++) {
        if (ts[i] < LOB_TS_MIN || ts[i] > LOB_TS_MAX) {
            if (ts[i] == INT64_MIN) {
                return lob_error_set(err, LOB_E_ARG, "%s row %lld is NaT (a missing time)", what,
                                     (long long)i);
            }
            return lob_error_set(err, LOB_E_ARG,
                                 "%s row %lld (%lld ns) is outside 1970-01-01..2262-01-01", what,
                                 (long long)i, (long long)ts[i]);
        }
        if (sorted && i > 0 && ts[i] < ts[i - 1]) {
            return lob_error_set(err, LOB_E_ARG,
                                 "%s must be sorted ascending: row %lld (%lld) comes before "
                                 "row %lld (%lld)",
                                 what, (long long)i - 1, (long long)ts[i - 1], (long long)i,
                                 (long long)ts[i]);
        }
    }
    return LOB_OK;
}
