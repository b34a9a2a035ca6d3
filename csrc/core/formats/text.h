/* text.h -- helpers every line format shares: binary sniffing, CSV cells, symbol selection.
 */
#ifndef LOB_TEXT_H
#define LOB_TEXT_H

#include "core/io/reader.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define LOB_MAX_SYMBOLS 64 /* distinct symbols remembered for the mixed-symbol error */

/*! lob_looks_binary() : the first 64 bytes hold a NUL or control character (not a tab):
 *  the file is not text, which makes a better error than "expected ...". */
int lob_looks_binary(const char *s, size_t n);

#define LOB_SHOW 40                     /* bytes of a bad value quoted in error messages */
#define LOB_SHOW_BUF (4 * LOB_SHOW + 8) /* room for lob_show() of LOB_SHOW bytes */

/*! lob_show() : [s, s + n) made safe to quote in an error message: printable ASCII as is,
 *  every other byte (NUL, control bytes, UTF-8) as \xNN, and '...' when more than `max`
 *  bytes were given.  A NUL byte does not end the text, so the message shows the whole
 *  value.  `cap` >= 4 * max + 8 always fits.  @return buf. */
const char *lob_show(char *buf, size_t cap, const char *s, size_t n, size_t max);

/*! lob_find_control() : the first byte of [s, s + n) below 0x20 (NUL, tab, newline, ...) or
 *  0x7F, or NULL.  Text read from a file never holds one: they end C strings early, hide in
 *  printed output and make different values look alike. */
const char *lob_find_control(const char *s, size_t n);

/* A cell of a CSV line: a slice of the line, not NUL-terminated.  Typed values of cells,
 * and the one message of a bad cell: cells.h. */
typedef struct lob_cell_s {
    const char *p; /* first byte */
    size_t n;      /* bytes */
} lob_cell;

/*! lob_csv_find() : the first `sep` in [p, end), or end.  Eight bytes at a time:
 *  x = bytes ^ sep has a zero byte where a separator is; (x - 0x01..) & ~x & 0x80.. flags
 *  it.  Only the lowest flag is exact (a borrow can flag a higher byte too), and only the
 *  lowest is used.  Inline: cells are short, so a call would cost more than the scan. */
static inline const char *
lob_csv_find(const char *p, const char *end, char sep)
{
#if defined(__SSE2__) && defined(__GNUC__)
    /* sixteen bytes at a time: most cells end in the first sixteen */
    const __m128i wide = _mm_set1_epi8(sep);
    for (; end - p >= 16; p += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, wide));
        if (m != 0) {
            return p + __builtin_ctz(m);
        }
    }
    /* the rest of a line (its last cell): memchr has no loop whose end the branch
     * predictor must guess */
    const char *q = memchr(p, sep, (size_t)(end - p));
    return q != NULL ? q : end;
#endif
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t seps = 0x0101010101010101ULL * (unsigned char)sep;
    for (; end - p >= 8; p += 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        uint64_t x = v ^ seps;
        uint64_t t = (x - 0x0101010101010101ULL) & ~x & 0x8080808080808080ULL;
        if (t != 0) {
            return p + (__builtin_ctzll(t) >> 3);
        }
    }
#endif
    for (; p < end && *p != sep; p++) {
    }
    return p;
}

/*! lob_csv_split() : split at commas (the archives handled here never quote).
 *  @return the number of cells, which may exceed `cap`: only the first `cap` are stored. */
int lob_csv_split(const char *s, size_t n, lob_cell *cells, int cap);

/*! lob_hash() : FNV-1a over [s, s + n): hash tables of text, and the collector's test for a
 *  message it already recorded. */
static inline uint64_t
lob_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    }
    return h;
}

/*! lob_cell_is() : the cell is exactly `text`.  Inline so strlen of a literal folds away
 *  (it runs on every row). */
static inline int
lob_cell_is(const lob_cell *c, const char *text)
{
    size_t n = strlen(text);
    return c->n == n && memcmp(c->p, text, n) == 0;
}

/*! lob_cell_is_nocase() : the same, ASCII case aside (`lower` is lower case).  Or-ing 0x20
 *  into a byte lowers an upper-case letter and turns no other byte into a lower-case
 *  letter, so a letter of `lower` is matched by one or and compare (the test of `lower`
 *  folds away for a literal). */
static inline int
lob_cell_is_nocase(const lob_cell *c, const char *lower)
{
    size_t n = strlen(lower);
    if (c->n != n) {
        return 0;
    }
    if (n <= 8) {
        /* one word compare: the cell's bytes, or-ed with 0x20 where `lower` has a letter
         * (every word built from a literal folds to a constant) */
        unsigned char fold[8] = {0};
        uint64_t w = 0, f = 0, l = 0;
        for (size_t i = 0; i < n; i++) {
            fold[i] = lower[i] >= 'a' && lower[i] <= 'z' ? 0x20 : 0;
        }
        memcpy(&w, c->p, n);
        memcpy(&f, fold, n);
        memcpy(&l, lower, n);
        return (w | f) == l;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char l = (unsigned char)lower[i];
        if (((unsigned char)c->p[i] | (l >= 'a' && l <= 'z' ? 0x20 : 0)) != l) {
            return 0;
        }
    }
    return 1;
}

/* The symbol a reader keeps: the one asked for, or the first one met.  Others are counted
 * and remembered, so a file with several symbols can be reported with all of them. */
typedef struct lob_symbols_s {
    char selected[LOB_SYMBOL_MAX];                     /* upper case; "" until chosen */
    size_t len;                                        /* strlen(selected) */
    char seen[LOB_MAX_SYMBOLS][LOB_SYMBOL_MAX];        /* other symbols met */
    int nseen;                                         /* entries in seen */
    int64_t n_other;                                   /* rows/messages of other symbols */
    char text[LOB_MAX_SYMBOLS * (LOB_SYMBOL_MAX + 1)]; /* "SELECTED,OTHER,..." */
} lob_symbols;

/*! lob_symbol_valid() : 1 to LOB_SYMBOL_MAX - 1 printable ASCII characters.  Symbols are
 *  compared by name, so control bytes could make two different symbols look alike. */
int lob_symbol_valid(const char *name, size_t n);

/*! lob_symbols_init() : `selected` may be "" (adopt the first symbol met). */
void lob_symbols_init(lob_symbols *sy, const char *selected);

/*! lob_symbols_select() : is `name` (any case) the selected symbol?
 *  @return 1 keep, 0 another symbol, LOB_E_FORMAT if !lob_symbol_valid(name). */
int lob_symbols_select(lob_symbols *sy, const char *name, size_t n);

/*! lob_symbols_text() : "SELECTED,OTHER1,..." for the stats.  Borrowed from sy. */
const char *lob_symbols_text(lob_symbols *sy);

#endif /* LOB_TEXT_H */
