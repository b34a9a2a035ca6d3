/* test_blocks.c -- core/blocks.h: large blocks kept and reused, from several threads. */
#include "core/blocks.h"
#include "core/table.h"
#include "test.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#define MIB ((size_t)1 << 20)

static void *
churn(void *arg)
{
    unsigned seed = (unsigned)(size_t)arg;
    int ok = 1;
    for (int i = 0; i < 300; i++) {
        seed = seed * 1103515245u + 12345u;
        size_t want = (4 + (seed >> 16) % 13) * MIB, got;
        unsigned char *p = lob_block_alloc(want, &got);
        if (p == NULL || got < want) {
            ok = 0;
            break;
        }
        p[0] = p[want - 1] = (unsigned char)i; /* the block is ours, all of it */
        ok &= p[0] == (unsigned char)i;
        lob_block_free(p, got);
        if (i % 97 == 0) {
            lob_block_trim();
        }
    }
    return ok ? arg : NULL;
}

void
lob_test_blocks(void)
{
    size_t got;
    char *a = lob_block_alloc(8 * MIB, &got);
    test_cond("blocks: a large block", a != NULL && got == 8 * MIB);
    memset(a, 7, got);
    lob_block_free(a, got);
    char *b = lob_block_alloc(6 * MIB, &got);
    test_cond("blocks: a freed block of about the size is reused, whole",
              b == a && got == 8 * MIB && b[got - 1] == 7);
    char *c = lob_block_alloc(6 * MIB, &got);
    test_cond("blocks: a block in use is never handed out again", c != NULL && c != b);
    lob_block_free(c, got);
    lob_block_free(b, 8 * MIB);
    char *d = lob_block_alloc(3 * MIB, &got); /* more than twice as small: a new block */
    test_cond("blocks: small requests are plain blocks", d != NULL && d != b && got == 3 * MIB);
    lob_block_free(d, got);
    char *e = lob_block_alloc(17 * MIB, &got);
    test_cond("blocks: a larger request gets a block of its own", e != NULL && e != b && e != c);
    lob_block_free(e, got);
    lob_block_trim();

    pthread_t tid[4];
    int started[4];
    for (int k = 0; k < 4; k++) {
        started[k] = pthread_create(&tid[k], NULL, churn, (void *)(size_t)(k + 1)) == 0;
    }
    int ok = 1;
    for (int k = 0; k < 4; k++) {
        void *r = NULL;
        if (started[k]) {
            pthread_join(tid[k], &r);
        }
        ok &= started[k] && r != NULL;
    }
    test_cond("blocks: four threads allocating and freeing", ok);
    lob_block_trim();

    /* a table's large columns: detached whole, with their size, and reused once freed */
    static const lob_column schema[1] = {{"x", LOB_F64, 8, 1, 0}};
    lob_table t;
    lob_table_init(&t, schema, 1);
    int rc = lob_table_reserve(&t, 1000000);
    t.n = 700000;
    void *col = NULL;
    size_t bytes = 0;
    rc = rc < 0 ? rc : lob_table_detach(&t, &col, &bytes);
    test_cond("blocks: a large column is detached whole", rc == 0 && bytes >= 1000000 * 8);
    lob_block_free(col, bytes);
    rc = lob_table_reserve(&t, 900000);
    test_cond("blocks: the next table of about its size reuses it", rc == 0 && t.col[0] == col);
    lob_table_free(&t);
    lob_block_trim();

    /* growth: the data stays, the block stays 2 MiB-aligned, its size is what *got says */
    size_t have;
    unsigned char *g = lob_block_grow(NULL, 0, 0, 5 * MIB, &have);
    int grew = g != NULL && have >= 5 * MIB && ((uintptr_t)g & (2 * MIB - 1)) == 0;
    for (size_t k = 0; grew && k < 5 * MIB; k += 4093) {
        g[k] = (unsigned char)(k * 13);
    }
    for (int step = 0; grew && step < 6; step++) {
        size_t want = have + have / 2 + 12345, got2;
        /* something mapped right after the block, half the time: it has to move */
        void *wall = step % 2 == 0 ? lob_block_alloc(4 * MIB, &got2) : NULL;
        unsigned char *h = lob_block_grow(g, have, 5 * MIB, want, &got2);
        grew = h != NULL && got2 >= want && ((uintptr_t)h & (2 * MIB - 1)) == 0;
        for (size_t k = 0; grew && k < 5 * MIB; k += 4093) {
            grew = h[k] == (unsigned char)(k * 13);
        }
        if (grew) {
            h[got2 - 1] = 1; /* all of it is ours */
            g = h;
            have = got2;
        }
        if (wall != NULL) {
            lob_block_free(wall, 4 * MIB);
        }
    }
    test_cond("blocks: a grown block keeps its data, whole and aligned", grew);
    size_t same;
    test_cond("blocks: growing to a size it has already is a no-op",
              grew && lob_block_grow(g, have, have, have - 1, &same) == g && same == have);
    /* sizes no system can map: refused, the block left whole */
    g[have - 1] = 42;
    test_cond("blocks: growth beyond the address space is refused, the block kept",
              grew && lob_block_grow(g, have, have, SIZE_MAX - 5, &same) == NULL &&
                  lob_block_grow(g, have, have, SIZE_MAX / 2, &same) == NULL && g[have - 1] == 42 &&
                  g[0] == 0);
    lob_block_free(g, have);
    char *small = lob_block_alloc(1000, &have);
    memcpy(small, "abc", 4);
    char *big = lob_block_grow(small, have, 4, 6 * MIB, &have);
    test_cond("blocks: a small block grown large is copied into a large block",
              big != NULL && have >= 6 * MIB && strcmp(big, "abc") == 0);
    lob_block_free(big, have);
    lob_block_trim();
}
