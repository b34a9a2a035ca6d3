/* json.c -- the validating JSON cursor. */
#include "core/formats/json.h"

#include <ctype.h>
#include <string.h>

int
lob_json_string_slow(lob_json *j, const char *start, const char **s, size_t *n)
{
    const char *p = start;
    for (;;) {
        if (p >= j->end) {
            j->p = p;
            return lob_json_fail(j, "closing '\"'", LOB_E_FORMAT);
        }
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            break;
        }
        if (c < 0x20) {
            j->p = p;
            return lob_json_fail(j, "a printable character in the string", LOB_E_FORMAT);
        }
        if (c == '\\') {
            p++;
            if (p >= j->end || *p == '\0' || strchr("\"\\/bfnrtu", *p) == NULL) {
                j->p = p;
                return lob_json_fail(j, "a valid escape", LOB_E_FORMAT);
            }
            if (*p == 'u') { /* \uXXXX: exactly four hex digits */
                for (int i = 1; i <= 4; i++) {
                    if (p + i >= j->end || !isxdigit((unsigned char)p[i])) {
                        j->p = p + i;
                        return lob_json_fail(j, "four hex digits after \\u", LOB_E_FORMAT);
                    }
                }
                p += 4;
            }
        }
        p++;
    }
    *s = start;
    *n = (size_t)(p - start);
    j->p = p + 1;
    return LOB_OK;
}

static int
skip_number(lob_json *j)
{
    double v;
    int rc = LOB_OK;
    const char *q = lob_parse_decimal(j->p, j->end, &v, &rc);
    if (q == NULL) {
        return lob_json_fail(j, "a number", rc);
    }
    j->p = q;
    return LOB_OK;
}

static int
skip_word(lob_json *j, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n) != 0) {
        return lob_json_fail(j, "a JSON value", LOB_E_FORMAT);
    }
    j->p += n;
    return LOB_OK;
}

int
lob_json_skip(lob_json *j, int depth)
{
    if (depth > LOB_JSON_MAX_DEPTH) {
        return lob_json_fail(j, "nesting shallower than 64 levels", LOB_E_FORMAT);
    }
    int c = lob_json_peek(j);
    const char *s;
    size_t n;
    switch (c) {
    case '"': return lob_json_string(j, &s, &n);
    case '{': {
        j->p++;
        int first = 1;
        int r;
        while ((r = lob_json_next_member(j, &first, &s, &n)) == 1) {
            LOB_FORWARD_IF_ERROR(lob_json_skip(j, depth + 1));
        }
        return r;
    }
    case '[':
        j->p++;
        if (lob_json_eat(j, ']')) {
            return LOB_OK;
        }
        do {
            LOB_FORWARD_IF_ERROR(lob_json_skip(j, depth + 1));
        } while (lob_json_eat(j, ','));
        return lob_json_eat(j, ']') ? LOB_OK : lob_json_fail(j, "',' or ']'", LOB_E_FORMAT);
    case 't': return skip_word(j, "true");
    case 'f': return skip_word(j, "false");
    case 'n': return skip_word(j, "null");
    default:
        if (c == '-' || (c >= '0' && c <= '9')) {
            return skip_number(j);
        }
        return lob_json_fail(j, "a JSON value", LOB_E_FORMAT);
    }
}

int
lob_json_int64(lob_json *j, int64_t *v)
{
    lob_json_peek(j);
    int rc = LOB_OK;
    const char *q = lob_parse_int64(j->p, j->end, v, &rc);
    if (q == NULL) {
        return lob_json_fail(j, rc == LOB_E_RANGE ? "an integer within int64" : "an integer", rc);
    }
    if (q < j->end && (*q == '.' || *q == 'e' || *q == 'E')) {
        return lob_json_fail(j, "an integer", LOB_E_FORMAT);
    }
    j->p = q;
    return LOB_OK;
}

int
lob_json_decimal(lob_json *j, double *v)
{
    int quoted = lob_json_eat(j, '"');
    if (!quoted) {
        lob_json_peek(j);
    }
    int rc = LOB_OK;
    const char *q = lob_parse_decimal(j->p, j->end, v, &rc);
    if (q == NULL) {
        return lob_json_fail(
            j, rc == LOB_E_RANGE ? "a decimal within float64 range" : "a decimal number", rc);
    }
    j->p = q;
    if (quoted) {
        if (j->p >= j->end || *j->p != '"') {
            return lob_json_fail(j, "'\"' after the decimal", LOB_E_FORMAT);
        }
        j->p++;
    }
    return LOB_OK;
}

int
lob_json_bool(lob_json *j, int *v)
{
    int c = lob_json_peek(j);
    if (c == 't' && skip_word(j, "true") == LOB_OK) {
        *v = 1;
        return LOB_OK;
    }
    if (c == 'f' && skip_word(j, "false") == LOB_OK) {
        *v = 0;
        return LOB_OK;
    }
    return lob_json_fail(j, "true or false", LOB_E_FORMAT);
}
