/* test_parallel.c -- lob_run_tasks(): every task once, the sequential error, stops. */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include "core/parallel.h"
#include "test.h"

#include <stdatomic.h>
#include <string.h>
#include <time.h>

typedef struct {
    atomic_int runs[64];
    int fail_at[2];   /* tasks that fail (-1: none) */
    int slow;         /* the tasks before a failing one sleep this many ms first */
    atomic_int polls; /* stop checks of the caller's poll */
    int stop_after;   /* the caller's poll answers stop from this check on (0: never) */
} fixture;

static void
nap(int ms)
{
    struct timespec t = {0, (long)ms * 1000000L};
    nanosleep(&t, NULL);
}

/* Runs 20 slices of 1 ms, polling between them; fails at the end when asked to. */
static int
task(void *arg, size_t i, lob_error *err)
{
    fixture *f = arg;
    atomic_fetch_add(&f->runs[i], 1);
    int fails = (int)i == f->fail_at[0] || (int)i == f->fail_at[1];
    for (int s = 0; s < 20; s++) {
        LOB_FORWARD_IF_ERROR(lob_poll_stop(err));
        nap(fails ? 0 : f->slow);
    }
    if (fails) {
        return lob_error_set(err, LOB_E_FORMAT, "task %zu failed", i);
    }
    return LOB_OK;
}

static int
caller_stop(void *arg)
{
    fixture *f = arg;
    return atomic_fetch_add(&f->polls, 1) + 1 >= f->stop_after && f->stop_after > 0;
}

static void
fresh(fixture *f)
{
    memset(f, 0, sizeof *f);
    f->fail_at[0] = f->fail_at[1] = -1;
}

void
lob_test_parallel(void)
{
    fixture f;
    for (int threads = 1; threads <= 5; threads++) {
        fresh(&f);
        lob_error err = {0};
        int rc = lob_run_tasks(13, threads, task, &f, &err);
        int once = 1;
        for (int i = 0; i < 13; i++) {
            once &= atomic_load(&f.runs[i]) == 1;
        }
        test_cond("parallel: every task runs once", rc == LOB_OK && once);

        /* tasks 4 and 9 fail; 9 (no sleep) fails first in time, yet task 4's error is the
         * one returned, and no task after 4 starts once it failed */
        fresh(&f);
        f.fail_at[0] = 9;
        f.fail_at[1] = 4;
        f.slow = 1;
        lob_poll poll = {caller_stop, &f, NULL};
        err.poll = &poll;
        rc = lob_run_tasks(13, threads, task, &f, &err);
        test_cond("parallel: the lowest failing task's error is returned",
                  rc == LOB_E_FORMAT && strcmp(err.msg, "task 4 failed") == 0 && err.poll == &poll);
        int before = 1;
        for (int i = 0; i < 4; i++) {
            before &= atomic_load(&f.runs[i]) == 1;
        }
        test_cond("parallel: the tasks before a failure all run", before);
        test_cond("parallel: with one thread nothing after the failure runs",
                  threads > 1 || atomic_load(&f.runs[5]) == 0);

        /* the caller's stop check stops every task, on every thread */
        fresh(&f);
        f.slow = 2;
        f.stop_after = 3;
        poll = (lob_poll){caller_stop, &f, NULL};
        lob_error_clear(&err);
        err.poll = &poll;
        rc = lob_run_tasks(13, threads, task, &f, &err);
        int started = 0;
        for (int i = 0; i < 13; i++) {
            started += atomic_load(&f.runs[i]);
        }
        test_cond("parallel: a stop from the caller stops every task",
                  rc == LOB_E_INTR && started < 13 && err.poll == &poll);
    }
    fixture none;
    fresh(&none);
    lob_error err = {0};
    test_cond("parallel: no tasks", lob_run_tasks(0, 4, task, &none, &err) == LOB_OK);
    test_cond("parallel: more threads than the limit",
              lob_run_tasks(3, 1000, task, &none, &err) == LOB_OK &&
                  atomic_load(&none.runs[2]) == 1);
}
