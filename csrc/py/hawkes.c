/* hawkes.c -- lobfast._core Hawkes-process kernels (csrc/core/kernels/hawkes.h).
 *
 *   hawkes_loglik(t, T0, T1, mu, alpha, beta)     -> (loglik, grad ndarray (3,))
 *   hawkes_simulate(mu, alpha, beta, T0, T1, seed, *, cap=0) -> ndarray of event times
 * Times are float64 in one unit (lobfast.sim passes seconds); mu and beta are per that
 * unit, alpha is the branching ratio.  The loops run with the GIL released; bad arguments
 * raise ValueError naming the event or parameter.
 */
#include "binding.h"

#include "core/kernels/hawkes.h"

#include <math.h>
#include <stdlib.h>

/* No simulation buffer grows past this many events (8 GiB of float64). */
#define HAWKES_MAX_EVENTS ((size_t)1 << 30)

static PyObject *
py_hawkes_loglik(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"t", "T0", "T1", "mu", "alpha", "beta", NULL};
    PyObject *to, *in = NULL, *grad = NULL;
    double T0, T1, mu, alpha, beta, ll = 0;
    lob_error err = {0};
    int rc;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Oddddd:hawkes_loglik", kwlist, &to, &T0, &T1, &mu,
                                     &alpha, &beta) ||
        (in = lobpy_in_converted(to, NPY_FLOAT64, 1, -1, "t")) == NULL ||
        (grad = lobpy_out(3, 0, NPY_FLOAT64)) == NULL) {
        goto fail;
    }
    const double *t = DATA(in);
    size_t n = (size_t)ROWS(in);
    double *g = DATA(grad);
    lobpy_nogil gil;
    lobpy_nogil_begin(&gil, &err);
    rc = lob_hawkes_loglik(t, n, T0, T1, mu, alpha, beta, &ll, g, &err);
    lobpy_nogil_end(&gil);
    if (rc < 0) {
        lobpy_raise(lobpy_get_state(module), rc, &err, NULL);
        goto fail;
    }
    Py_DECREF(in);
    return Py_BuildValue("(dN)", ll, grad);
fail:
    Py_XDECREF(in);
    Py_XDECREF(grad);
    return NULL;
}

static PyObject *
py_hawkes_simulate(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"mu", "alpha", "beta", "T0", "T1", "seed", "cap", NULL};
    double mu, alpha, beta, T0, T1;
    unsigned long long seed = 0;
    Py_ssize_t first_cap = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "dddddK|$n:hawkes_simulate", kwlist, &mu, &alpha,
                                     &beta, &T0, &T1, &seed, &first_cap)) {
        return NULL;
    }
    if (first_cap < 0 || (size_t)first_cap > HAWKES_MAX_EVENTS) {
        return PyErr_Format(PyExc_ValueError, "cap must be in 0..%zu, got %zd", HAWKES_MAX_EVENTS,
                            first_cap);
    }
    /* The buffer holds the stationary mean count plus ten standard deviations (the count's
     * variance is about mu T / (1 - alpha)^3) unless the caller sized it; bad parameters
     * leave it empty, and the core rejects them before it writes anything. */
    size_t cap = (size_t)first_cap;
    if (cap == 0 && mu > 0 && alpha >= 0 && alpha < 1 && beta > 0 && T0 < T1 && isfinite(mu) &&
        isfinite(T0) && isfinite(T1) && isfinite(beta)) {
        double mean = mu * (T1 - T0) / (1 - alpha);
        double want = mean + 10 * sqrt(mean / ((1 - alpha) * (1 - alpha) * (1 - alpha))) + 64;
        if (!(want < (double)HAWKES_MAX_EVENTS)) {
            return PyErr_Format(PyExc_ValueError,
                                "about %.3g events expected (mu (T1 - T0) / (1 - alpha)): more "
                                "than the %zu one simulation may hold",
                                mean, HAWKES_MAX_EVENTS);
        }
        cap = (size_t)want;
    }
    else if (cap == 0) {
        cap = 1;
    }
    for (;;) {
        double *buf = malloc(cap * sizeof(double));
        if (buf == NULL) {
            return PyErr_NoMemory();
        }
        size_t n = 0;
        lob_error err = {0};
        int rc;
        lobpy_nogil gil;
        lobpy_nogil_begin(&gil, &err);
        rc = lob_hawkes_simulate(mu, alpha, beta, T0, T1, (uint64_t)seed, buf, cap, &n, &err);
        lobpy_nogil_end(&gil);
        if (rc == LOB_E_RANGE && cap < HAWKES_MAX_EVENTS) {
            /* the same seed replays the same path: start again with twice the room */
            free(buf);
            cap = cap * 2 < HAWKES_MAX_EVENTS ? cap * 2 : HAWKES_MAX_EVENTS;
            continue;
        }
        if (rc < 0) {
            free(buf);
            return lobpy_raise(lobpy_get_state(module), rc, &err, NULL);
        }
        if (n > 0 && n < cap) {
            double *fit = realloc(buf, n * sizeof(double));
            buf = fit != NULL ? fit : buf;
        }
        return lobpy_array_from_owned(buf, (Py_ssize_t)n, 1, 0, LOB_F64);
    }
}

PyMethodDef lobpy_hawkes_methods[] = {
    {"hawkes_loglik", (PyCFunction)(void (*)(void))py_hawkes_loglik, METH_VARARGS | METH_KEYWORDS,
     "hawkes_loglik(t, T0, T1, mu, alpha, beta)\n--\n\n"
     "Exact log-likelihood of sorted event times t on [T0, T1] under the Hawkes intensity\n"
     "mu + sum alpha*beta*exp(-beta*(t - t_i)), and its gradient w.r.t. (mu, alpha, beta)."},
    {"hawkes_simulate", (PyCFunction)(void (*)(void))py_hawkes_simulate,
     METH_VARARGS | METH_KEYWORDS,
     "hawkes_simulate(mu, alpha, beta, T0, T1, seed, *, cap=0)\n--\n\n"
     "Event times on (T0, T1] of a Hawkes process started empty at T0, by Ogata's thinning;\n"
     "0 <= alpha < 1.  The same seed (an int, taken modulo 2**64) gives the same times.\n"
     "cap: the first buffer's size in events (0: from the expected count); it doubles as\n"
     "needed, replaying the same path."},
    {NULL, NULL, 0, NULL},
};
