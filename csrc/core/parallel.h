/* parallel.h -- independent tasks on several threads, the calling thread among them.
 *
 * A kernel that splits its work (row ranges of a pass, one rolling window per task) hands
 * the pieces to lob_run_tasks().  The result is the sequential one: tasks write disjoint
 * outputs, and the error returned is the one that running the tasks in order would give. */
#ifndef LOB_PARALLEL_H
#define LOB_PARALLEL_H

#include "core/lob.h"

#include <stddef.h>

/* At most this many threads share one call (more only take turns on the same cores). */
#define LOB_MAX_THREADS 64

/* The fewest rows of a pass worth a thread of their own (starting one costs ~50 us). */
#define LOB_PARALLEL_MIN_ROWS ((int64_t)1 << 15)

/* One task: work item i of ctx.  Long tasks call lob_poll_stop(err) every LOB_POLL_ROWS rows. */
typedef int (*lob_task)(void *ctx, size_t i, lob_error *err);

/*! lob_run_tasks() : task(ctx, i, err) for every i in [0, n), on min(threads, n) threads, the
 *  calling thread one of them; tasks are taken in the order of i (put the longest first).
 *  When task i fails, the tasks after it stop at their next stop check (their poll answers
 *  stop) and none after it starts, while those before it run on: the error returned is the
 *  one of the lowest failing task, as in a sequential run.  Only the calling thread consults
 *  err->poll (the caller's stop check, e.g. Ctrl-C), every few ms while it waits too; a stop
 *  there stops every task and gives LOB_E_INTR.  A thread that cannot be started leaves its
 *  share to the others.  threads <= 1 runs the tasks in order on the calling thread. */
int lob_run_tasks(size_t n, int threads, lob_task task, void *ctx, lob_error *err);

#endif /* LOB_PARALLEL_H */
