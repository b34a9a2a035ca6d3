/* text.c -- helpers shared by the line formats. */
#include "core/formats/text.h"

#include <stdio.h>
#include <string.h>

int
lob_looks_binary(const char *s, size_t n)
{
    size_t k = n < 64 ? n : 64;
    for (size_t i = 0; i < k; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0 || (c < 0x20 && c != '\t')) {
            return 1;
        }
    }
    return 0;
}

const char *
lob_show(char *buf, size_t cap, const char *s, size_t n, size_t max)
{
    static const char hex[] = "0123456789abcdef";
    size_t k = 0, i = 0;
    for (; i < n && i < max && k + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7F && c != '\\') {
            buf[k++] = (char)c;
        }
        else {
            buf[k++] = '\\';
            buf[k++] = 'x';
            buf[k++] = hex[c >> 4];
            buf[k++] = hex[c & 15];
        }
    }
    if (i < n && k + 4 <= cap) {
        memcpy(buf + k, "...", 3);
        k += 3;
    }
    if (cap > 0) {
        buf[k < cap ? k : cap - 1] = '\0';
    }
    return buf;
}

const char *
lob_find_control(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7F) {
            return s + i;
        }
    }
    return NULL;
}

int
lob_csv_split(const char *s, size_t n, lob_cell *cells, int cap)
{
    int k = 0;
    const char *end = s + n;
    for (;;) {
        const char *stop = lob_csv_find(s, end, ',');
        if (k < cap) {
            cells[k].p = s;
            cells[k].n = (size_t)(stop - s);
        }
        k++;
        if (stop == end) {
            return k;
        }
        s = stop + 1;
    }
}

int
lob_symbol_valid(const char *name, size_t n)
{
    if (n == 0 || n >= LOB_SYMBOL_MAX) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= ' ' || c > '~') {
            return 0;
        }
    }
    return 1;
}

void
lob_symbols_init(lob_symbols *sy, const char *selected)
{
    memset(sy, 0, sizeof *sy);
    for (size_t i = 0; i < sizeof sy->selected - 1 && selected[i]; i++) {
        char c = selected[i];
        sy->selected[i] = (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
        sy->len = i + 1;
    }
}

int
lob_symbols_select(lob_symbols *sy, const char *name, size_t n)
{
    if (n == sy->len && memcmp(name, sy->selected, n) == 0 && n > 0) {
        return 1; /* the usual case: already upper case */
    }
    if (!lob_symbol_valid(name, n)) {
        return LOB_E_FORMAT;
    }
    char up[LOB_SYMBOL_MAX];
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        up[i] = (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
    }
    up[n] = '\0';
    if (sy->len == 0) {
        memcpy(sy->selected, up, n + 1);
        sy->len = n;
        return 1;
    }
    if (n == sy->len && memcmp(up, sy->selected, n) == 0) {
        return 1;
    }
    sy->n_other++;
    for (int i = 0; i < sy->nseen; i++) {
        if (strcmp(sy->seen[i], up) == 0) {
            return 0;
        }
    }
    if (sy->nseen < LOB_MAX_SYMBOLS) {
        memcpy(sy->seen[sy->nseen++], up, n + 1);
    }
    return 0;
}

const char *
lob_symbols_text(lob_symbols *sy)
{
    size_t left = sizeof sy->text;
    int k = snprintf(sy->text, left, "%s", sy->selected);
    for (int i = 0; i < sy->nseen && k > 0 && (size_t)k < left; i++) {
        k += snprintf(sy->text + k, left - (size_t)k, ",%s", sy->seen[i]);
    }
    return sy->text;
}
