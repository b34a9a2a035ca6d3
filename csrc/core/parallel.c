/* parallel.c -- independent tasks on several threads (see parallel.h).
 *
 * Threads are started per call: a call that is worth splitting runs for milliseconds at least,
 * and starting a thread costs tens of microseconds.  Tasks are handed out one at a time under a
 * mutex, in order; each thread polls its own lob_error, whose stop check answers from the shared
 * state (and, on the calling thread only, from the caller's own check). */
#define _POSIX_C_SOURCE 200809L /* pthread_condattr_setclock, pthread_sigmask, clock_gettime */
#include "core/parallel.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>

typedef struct {
    lob_task task;
    void *ctx;
    size_t n;
    const lob_poll *outer; /* the caller's stop check: consulted on the calling thread only */
    pthread_mutex_t mu;
    pthread_cond_t idle; /* a worker thread finished */
    /* under mu: */
    size_t next;     /* the next task to hand out */
    size_t failed;   /* the lowest task that failed, n while none has */
    int stopped;     /* the caller's check answered stop: every task stops */
    int active;      /* worker threads not yet finished */
    lob_error first; /* the error of task `failed` */
} runner;

typedef struct {
    runner *r;
    size_t current; /* the task this thread runs */
    int caller;     /* the calling thread: may consult r->outer */
    lob_poll poll;
} lane;

static int
halted(runner *r, size_t task)
{
    pthread_mutex_lock(&r->mu);
    int stop = r->stopped || r->failed < task;
    pthread_mutex_unlock(&r->mu);
    return stop;
}

static void
stop_all(runner *r)
{
    pthread_mutex_lock(&r->mu);
    r->stopped = 1;
    pthread_mutex_unlock(&r->mu);
}

static int
lane_stop_with(lane *l, int now)
{
    const lob_poll *o = l->r->outer;
    if (l->caller && o != NULL) {
        int (*f)(void *) = now && o->stop_now != NULL ? o->stop_now : o->stop;
        if (f(o->ctx)) {
            stop_all(l->r);
            return 1;
        }
    }
    return halted(l->r, l->current);
}

static int
lane_stop(void *arg)
{
    return lane_stop_with(arg, 0);
}

static int
lane_stop_now(void *arg)
{
    return lane_stop_with(arg, 1);
}

static void
run_lane(lane *l)
{
    runner *r = l->r;
    lob_error e;
    memset(&e, 0, sizeof e);
    e.poll = &l->poll;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        if (r->stopped || r->failed < r->n || r->next >= r->n) {
            pthread_mutex_unlock(&r->mu);
            return;
        }
        size_t i = l->current = r->next++;
        pthread_mutex_unlock(&r->mu);
        if (r->task(r->ctx, i, &e) < 0) {
            pthread_mutex_lock(&r->mu);
            /* a task stopped by another's failure or by the caller is not a failure itself */
            if (!r->stopped && i < r->failed) {
                r->failed = i;
                r->first = e;
            }
            pthread_mutex_unlock(&r->mu);
            lob_error_clear(&e);
        }
    }
}

static void *
worker(void *arg)
{
    lane *l = arg;
    run_lane(l);
    pthread_mutex_lock(&l->r->mu);
    l->r->active--;
    pthread_cond_signal(&l->r->idle);
    pthread_mutex_unlock(&l->r->mu);
    return NULL;
}

static int
run_in_order(size_t n, lob_task task, void *ctx, lob_error *err)
{
    for (size_t i = 0; i < n; i++) {
        LOB_FORWARD_IF_ERROR(task(ctx, i, err));
    }
    return LOB_OK;
}

/* Wait for the worker threads, consulting the caller's stop check every few ms. */
static void
wait_workers(runner *r)
{
    pthread_mutex_lock(&r->mu);
    while (r->active > 0) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        t.tv_nsec += 5 * 1000 * 1000;
        if (t.tv_nsec >= 1000 * 1000 * 1000) {
            t.tv_sec++;
            t.tv_nsec -= 1000 * 1000 * 1000;
        }
        pthread_cond_timedwait(&r->idle, &r->mu, &t);
        if (r->active > 0 && !r->stopped && r->outer != NULL) {
            pthread_mutex_unlock(&r->mu);
            int stop = r->outer->stop(r->outer->ctx);
            pthread_mutex_lock(&r->mu);
            r->stopped |= stop != 0;
        }
    }
    pthread_mutex_unlock(&r->mu);
}

int
lob_run_tasks(size_t n, int threads, lob_task task, void *ctx, lob_error *err)
{
    if (threads > LOB_MAX_THREADS) {
        threads = LOB_MAX_THREADS;
    }
    if (threads <= 1 || n <= 1) {
        return run_in_order(n, task, ctx, err);
    }
    if ((size_t)threads > n) {
        threads = (int)n;
    }
    runner r = {.task = task, .ctx = ctx, .n = n, .outer = err != NULL ? err->poll : NULL};
    r.failed = n;
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0) {
        return run_in_order(n, task, ctx, err);
    }
    int ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
             pthread_cond_init(&r.idle, &ca) == 0;
    pthread_condattr_destroy(&ca);
    if (!ok) {
        return run_in_order(n, task, ctx, err);
    }
    if (pthread_mutex_init(&r.mu, NULL) != 0) {
        pthread_cond_destroy(&r.idle);
        return run_in_order(n, task, ctx, err);
    }
    lane lanes[LOB_MAX_THREADS];
    pthread_t tid[LOB_MAX_THREADS];
    int started[LOB_MAX_THREADS] = {0};
    /* signals go to the calling thread, whose stop check sees them */
    sigset_t all, old;
    sigfillset(&all);
    int masked = pthread_sigmask(SIG_BLOCK, &all, &old) == 0;
    for (int k = 0; k < threads; k++) {
        lanes[k] = (lane){.r = &r, .caller = k == 0, .poll = {lane_stop, NULL, lane_stop_now}};
        lanes[k].poll.ctx = &lanes[k];
        if (k > 0) {
            pthread_mutex_lock(&r.mu);
            r.active++;
            pthread_mutex_unlock(&r.mu);
            started[k] = pthread_create(&tid[k], NULL, worker, &lanes[k]) == 0;
            if (!started[k]) {
                pthread_mutex_lock(&r.mu);
                r.active--;
                pthread_mutex_unlock(&r.mu);
            }
        }
    }
    if (masked) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    run_lane(&lanes[0]);
    wait_workers(&r);
    for (int k = 1; k < threads; k++) {
        if (started[k]) {
            pthread_join(tid[k], NULL);
        }
    }
    pthread_mutex_destroy(&r.mu);
    pthread_cond_destroy(&r.idle);
    if (r.stopped) {
        return lob_error_set(err, LOB_E_INTR, "interrupted");
    }
    if (r.failed < n) {
        if (err != NULL) {
            const lob_poll *p = err->poll;
            *err = r.first;
            err->poll = p;
        }
        return r.first.code;
    }
    return LOB_OK;
}
