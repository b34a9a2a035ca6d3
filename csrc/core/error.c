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

int
lob_check_times(const int64_t *ts, int64_t n, int sorted, const char *what, lob_error *err)
{
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
