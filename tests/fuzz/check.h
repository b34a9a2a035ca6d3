/* check.h -- the harnesses' invariant check: a violated invariant is a crash, which libFuzzer
 * saves as crash-<sha1> with the message on stderr. */
#ifndef FUZZ_CHECK_H
#define FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

/* CHECK(cond, printf-style explanation...) */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant violated: %s (%s:%d)\n  ", #cond, __FILE__, __LINE__);      \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif /* FUZZ_CHECK_H */
