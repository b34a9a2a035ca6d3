/* json.h -- a small validating JSON cursor for exchange messages.
 *
 * Not a general JSON library: it walks one object at a time and lets the caller pick the
 * fields it knows, skipping (but still validating) everything else.  Strings are returned
 * as raw slices of the input; callers only compare them with ASCII names.  On failure the
 * cursor stops at the offending byte and `expected` says what should have been there.
 */
#ifndef LOB_JSON_H
#define LOB_JSON_H

#include "core/formats/number.h"
#include "core/lob.h"

#include <string.h>

#define LOB_JSON_MAX_DEPTH 64 /* deeper nesting is refused rather than recursed into */

typedef struct lob_json_s {
    const char *p;        /* next byte */
    const char *end;      /* end of the text */
    const char *expected; /* on failure: what was expected at p */
} lob_json;

static inline int
lob_json_fail(lob_json *j, const char *expected, int code)
{
    j->expected = expected;
    return code;
}

static inline int
lob_json_peek(lob_json *j)
{
    if (j->p < j->end && (unsigned char)*j->p > ' ') {
        return (unsigned char)*j->p; /* the usual case: exchanges send compact JSON */
    }
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\r' || *j->p == '\n')) {
        j->p++;
    }
    return j->p < j->end ? (unsigned char)*j->p : -1;
}

/* Consume `c` if it is the next non-blank byte. */
static inline int
lob_json_eat(lob_json *j, char c)
{
    if (lob_json_peek(j) == (unsigned char)c) {
        j->p++;
        return 1;
    }
    return 0;
}

/* Out-of-line rest of lob_json_string() for strings with escapes or bad bytes. */
int lob_json_string_slow(lob_json *j, const char *start, const char **s, size_t *n);

/*! lob_json_string() : a string's raw contents (escapes validated, not decoded).
 *  Inline because every key goes through it; escapes are rare and handled out of line. */
static inline int
lob_json_string(lob_json *j, const char **s, size_t *n)
{
    if (lob_json_peek(j) != '"') {
        return lob_json_fail(j, "a string", LOB_E_FORMAT);
    }
    const char *start = j->p + 1;
    for (const char *p = start; p < j->end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            *s = start;
            *n = (size_t)(p - start);
            j->p = p + 1;
            return LOB_OK;
        }
        if (c == '\\' || c < 0x20) {
            break;
        }
    }
    return lob_json_string_slow(j, start, s, n);
}

/* A key (or raw string) [k, k + n) equals the ASCII literal `lit` (its length a constant). */
#define LOB_JSON_IS(k, n, lit) ((n) == sizeof(lit) - 1 && memcmp((k), (lit), sizeof(lit) - 1) == 0)

/*! lob_json_skip() : validate and skip any value. */
int lob_json_skip(lob_json *j, int depth);

/*! lob_json_int64() : an integer number. */
int lob_json_int64(lob_json *j, int64_t *v);

/*! lob_json_decimal() : a decimal given as a string ("1.5") or as a bare number. */
int lob_json_decimal(lob_json *j, double *v);

/*! lob_json_bool() : true or false. */
int lob_json_bool(lob_json *j, int *v);

/*! lob_json_next_member() : after '{' or a member, read `,"key":` or the closing '}'.
 *  @return 1 with key set, 0 at '}', or a negative error.  `*first` must start at 1. */
static inline int
lob_json_next_member(lob_json *j, int *first, const char **key, size_t *klen)
{
    if (*first) {
        *first = 0;
        if (lob_json_eat(j, '}')) {
            return 0;
        }
    }
    else if (!lob_json_eat(j, ',')) {
        return lob_json_eat(j, '}') ? 0 : lob_json_fail(j, "',' or '}'", LOB_E_FORMAT);
    }
    LOB_FORWARD_IF_ERROR(lob_json_string(j, key, klen));
    if (!lob_json_eat(j, ':')) {
        return lob_json_fail(j, "':'", LOB_E_FORMAT);
    }
    return 1;
}

#endif /* LOB_JSON_H */
