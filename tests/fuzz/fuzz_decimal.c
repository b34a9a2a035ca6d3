/* fuzz_decimal.c -- libFuzzer harness: lob_parse_decimal and lob_parse_int64 against the C
 * library on the same text.
 *
 * Whatever text lob_parse_decimal accepts, strtod must read completely and to the same
 * bits (sign of zero included): the fast path is only allowed where one IEEE operation is
 * exact, and the slow path hands strtod a rebuilt string, so either can drift.  The same
 * for lob_parse_int64 and strtoll, where an overflow must also be an overflow for both.
 * The input is not NUL-terminated, so ASan catches a parse that reads past `last`.
 * The program runs in the "C" locale (nothing calls setlocale), so strtod reads '.'.
 */
#include "core/formats/number.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define MAX_TEXT 4096 /* longer inputs add nothing the parser has not seen */

static void
check_decimal(const char *first, const char *last, char *buf)
{
    double v = -7.0;
    int rc = LOB_OK;
    const char *end = lob_parse_decimal(first, last, &v, &rc);
    if (end == NULL) {
        CHECK(rc == LOB_E_FORMAT || rc == LOB_E_RANGE, "failed with code %d", rc);
        CHECK(v == -7.0, "a failed parse wrote %.17g", v);
        return;
    }
    CHECK(end > first && end <= last, "end pointer %td bytes past first of %td", end - first,
          last - first);
    size_t n = (size_t)(end - first);
    memcpy(buf, first, n);
    buf[n] = '\0';
    char *stop = NULL;
    double want = strtod(buf, &stop);
    CHECK(stop == buf + n, "'%s': strtod stops after %td of %zu bytes", buf, stop - buf, n);
    CHECK(memcmp(&v, &want, sizeof v) == 0, "'%s': lob_parse_decimal %.17g (%a), strtod %.17g (%a)",
          buf, v, v, want, want);
}

static void
check_int64(const char *first, const char *last, char *buf)
{
    int64_t v = -7;
    int rc = LOB_OK;
    const char *end = lob_parse_int64(first, last, &v, &rc);
    /* the text strtoll sees: an optional '-' and the digits after it, nothing else */
    size_t n = first < last && *first == '-';
    while (first + n < last && first[n] >= '0' && first[n] <= '9') {
        n++;
    }
    memcpy(buf, first, n);
    buf[n] = '\0';
    errno = 0;
    char *stop = NULL;
    long long want = strtoll(buf, &stop, 10);
    int overflow = errno == ERANGE;
    if (end == NULL) {
        CHECK(v == -7, "a failed parse wrote %lld", (long long)v);
        if (rc == LOB_E_RANGE) {
            CHECK(overflow, "'%s': LOB_E_RANGE, but strtoll reads %lld", buf, want);
        }
        else {
            CHECK(rc == LOB_E_FORMAT && stop == buf, "'%s': code %d, strtoll read %td bytes", buf,
                  rc, stop - buf);
        }
        return;
    }
    CHECK(end == first + n, "'%s': stopped after %td bytes", buf, end - first);
    CHECK(!overflow && stop == buf + n && want == v, "'%s': lob_parse_int64 %lld, strtoll %lld",
          buf, (long long)v, want);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char buf[MAX_TEXT + 1];
    if (size > MAX_TEXT) {
        return 0;
    }
    const char *first = (const char *)data;
    check_decimal(first, first + size, buf);
    check_int64(first, first + size, buf);
    return 0;
}
