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
} lob_code;

/* Where and why a read failed.  line/offset are 0 when they do not apply. */
typedef struct lob_error_s {
    int code;       /* LOB_E_* */
    int64_t line;   /* 1-based line number in the (decompressed) text */
    int64_t offset; /* byte offset of that line's start in the (decompressed) text */
    char msg[256];  /* what was wrong / expected, NUL-terminated */
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

/*! lob_check_sorted() : 0 when ts[0..n) never decreases, else LOB_E_ARG naming `what` and
 *  the first row that goes back. */
int lob_check_sorted(const int64_t *ts, int64_t n, const char *what, lob_error *err);

/* Propagate a negative code unchanged. */
#define LOB_FORWARD_IF_ERROR(expr)                                                                 \
    do {                                                                                           \
        int lob_rc_ = (expr);                                                                      \
        if (lob_rc_ < 0) {                                                                         \
            return lob_rc_;                                                                        \
        }                                                                                          \
    } while (0)

#endif /* LOB_H */
