/* test.h -- the sds-style harness shared by the C unit tests of csrc/core.
 *
 * Each check is one test_cond(name, cond) line; the binary prints every result, a
 * summary, and exits nonzero if any check failed, so `tests/test_c_core.py` only has to
 * look at the exit code.  Checks that document a known core bug say so in their name
 * ("[bug] ..."), so a failing run points straight at the report that explains it.
 */
#ifndef LOB_TEST_H
#define LOB_TEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern int lob_test_run;    /* checks evaluated */
extern int lob_test_failed; /* checks that failed */

#define test_cond(descr, cond)                                                                     \
    do {                                                                                           \
        lob_test_run++;                                                                            \
        if (cond) {                                                                                \
            printf("%d - %s: PASSED\n", lob_test_run, (descr));                                    \
        }                                                                                          \
        else {                                                                                     \
            lob_test_failed++;                                                                     \
            printf("%d - %s: FAILED (%s:%d)\n", lob_test_run, (descr), __FILE__, __LINE__);        \
        }                                                                                          \
    } while (0)

/* Directory for fixtures; set by main() before any suite runs. */
extern const char *lob_test_dir;

/*! lob_test_path() : `name` inside lob_test_dir, in a static buffer (one at a time). */
const char *lob_test_path(const char *name);

/*! lob_test_write() : write `n` bytes to `path`.  @return 0, or -1 (and a message). */
int lob_test_write(const char *path, const void *data, size_t n);

/*! lob_test_bits_equal() : same IEEE bits (tells -0.0 from 0.0, NaN payloads apart). */
int lob_test_bits_equal(double a, double b);

void lob_test_source(void);
void lob_test_binance(void);
void lob_test_kernels(void);   /* test_kernels.c */
void lob_test_timeindex(void); /* test_timeindex.c */
void lob_test_side(void);      /* test_side.c */
void lob_test_zpar(void);      /* test_zpar.c */
void lob_test_parallel(void);  /* test_parallel.c */
void lob_test_blocks(void);    /* test_blocks.c */

#endif /* LOB_TEST_H */
