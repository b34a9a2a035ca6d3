/* labels.c -- lobfast._core label kernels (csrc/core/kernels/labels.h), one shape for all:
 * parse, convert inputs with lobpy_in_converted (never written), allocate outputs with lobpy_out,
 * run the kernel without the GIL and stoppable by Ctrl-C (lobpy_nogil; pure C over arrays that the
 * converted inputs, held until the end, keep alive; writers to the caller's arrays meanwhile
 * are the caller's problem), raise ValueError for bad arguments.
 *
 *   label_return(mid, ts, valid, rows, ns, out=None, known_at=None, name="ret")
 *                                                         -> (ret, known_at), written into
 *                                                            out / known_at when given
 *   label_smooth(mid, ts, valid, k, against_mean)          -> (value, known_at)
 *   label_ema(f, alpha)                                   -> y
 *   label_classify(x, alpha)                              -> classes
 *   label_barrier(mid, ts, valid, upper, lower, rows, ns) -> (label, time, ret)
 * `valid` is a bool array or None (then rows with a finite mid are usable).
 */
#include "binding.h"

#include "core/kernels/labels.h"

/* Convert mid / ts / valid into keep[0..2] (new references, keep[2] NULL for None) and
 * point `s` at them.  Returns -1 with an exception set. */
static int
series_in(PyObject *mid, PyObject *ts, PyObject *valid, PyObject **keep, lob_series *s)
{
    if ((keep[0] = lobpy_in_converted(mid, NPY_FLOAT64, 1, -1, "mid")) == NULL ||
        (keep[1] = lobpy_in_converted(ts, NPY_INT64, 1, ROWS(keep[0]), "ts")) == NULL) {
        return -1;
    }
    if (valid != Py_None &&
        (keep[2] = lobpy_in_converted(valid, NPY_BOOL, 1, ROWS(keep[0]), "valid")) == NULL) {
        return -1;
    }
    s->mid = DATA(keep[0]);
    s->ts = DATA(keep[1]);
    s->valid = keep[2] != NULL ? DATA(keep[2]) : NULL;
    s->n = (size_t)ROWS(keep[0]);
    return 0;
}

static void
release(PyObject **objs, int n)
{
    for (int i = 0; i < n; i++) {
        Py_CLEAR(objs[i]);
    }
}

static PyObject *
py_label_return(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"mid", "ts", "valid", "rows", "ns", "out", "known_at", "name", NULL};
    PyObject *mid, *ts, *valid, *in[3] = {NULL, NULL, NULL}, *ret = NULL, *known = NULL;
    PyObject *ret_arg = Py_None, *known_arg = Py_None;
    const char *name = "ret";
    char ret_name[96], known_name[96];
    long long rows, ns;
    lob_series s;
    lob_error err = {0};
    int rc;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOLL|OOs:label_return", kwlist, &mid, &ts,
                                     &valid, &rows, &ns, &ret_arg, &known_arg, &name) ||
        series_in(mid, ts, valid, in, &s) < 0) {
        goto fail;
    }
    PyOS_snprintf(ret_name, sizeof ret_name, "out['%s']", name);
    PyOS_snprintf(known_name, sizeof known_name, "out.known_at['%s']", name);
    if ((ret = lobpy_out_given(ret_arg, NPY_FLOAT64, (Py_ssize_t)s.n, ret_name)) == NULL ||
        (known = lobpy_out_given(known_arg, NPY_INT64, (Py_ssize_t)s.n, known_name)) == NULL ||
        lobpy_out_apart(ret, ret_name, known, known_name) < 0) {
        goto fail;
    }
    static const char *const in_names[3] = {"mid", "ts", "valid"};
    for (int i = 0; i < 3; i++) {
        if (lobpy_out_apart(ret, ret_name, in[i], in_names[i]) < 0 ||
            lobpy_out_apart(known, known_name, in[i], in_names[i]) < 0) {
            goto fail;
        }
    }
    lob_horizon h = {.rows = rows, .ns = ns};
    double *r = DATA(ret);
    int64_t *k = DATA(known);
    lobpy_nogil g;
    lobpy_nogil_begin(&g, &err);
    rc = lob_label_return(&s, h, r, k, &err);
    lobpy_nogil_end(&g);
    if (rc < 0) {
        lobpy_raise(lobpy_get_state(module), rc, &err, NULL);
        goto fail;
    }
    release(in, 3);
    return Py_BuildValue("(NN)", ret, known);
fail:
    release(in, 3);
    Py_XDECREF(ret);
    Py_XDECREF(known);
    return NULL;
}

static PyObject *
py_label_smooth(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"mid", "ts", "valid", "k", "against_mean", NULL};
    PyObject *mid, *ts, *valid, *in[3] = {NULL, NULL, NULL}, *out = NULL, *known = NULL;
    long long k;
    int against_mean;
    lob_series s;
    lob_error err = {0};
    int rc;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOLp:label_smooth", kwlist, &mid, &ts, &valid,
                                     &k, &against_mean) ||
        series_in(mid, ts, valid, in, &s) < 0 ||
        (out = lobpy_out((Py_ssize_t)s.n, 0, NPY_FLOAT64)) == NULL ||
        (known = lobpy_out((Py_ssize_t)s.n, 0, NPY_INT64)) == NULL) {
        goto fail;
    }
    double *o = DATA(out);
    int64_t *ka = DATA(known);
    lobpy_nogil g;
    lobpy_nogil_begin(&g, &err);
    rc = lob_label_smooth(&s, k, against_mean, o, ka, &err);
    lobpy_nogil_end(&g);
    if (rc < 0) {
        lobpy_raise(lobpy_get_state(module), rc, &err, NULL);
        goto fail;
    }
    release(in, 3);
    return Py_BuildValue("(NN)", out, known);
fail:
    release(in, 3);
    Py_XDECREF(out);
    Py_XDECREF(known);
    return NULL;
}

/* label_ema and label_classify: one float64 array and a float parameter in, one out. */
typedef int (*unary_kernel)(const double *, size_t, double, double *, lob_error *);

static PyObject *
unary(PyObject *module, PyObject *args, PyObject *kwds, const char *format, char **kwlist,
      unary_kernel kernel)
{
    PyObject *x, *in = NULL, *out = NULL;
    double alpha;
    lob_error err = {0};
    int rc;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, format, kwlist, &x, &alpha) ||
        (in = lobpy_in_converted(x, NPY_FLOAT64, 1, -1, kwlist[0])) == NULL ||
        (out = lobpy_out(ROWS(in), 0, NPY_FLOAT64)) == NULL) {
        goto fail;
    }
    const double *src = DATA(in);
    double *dst = DATA(out);
    size_t n = (size_t)ROWS(in);
    lobpy_nogil g;
    lobpy_nogil_begin(&g, &err);
    rc = kernel(src, n, alpha, dst, &err);
    lobpy_nogil_end(&g);
    if (rc < 0) {
        lobpy_raise(lobpy_get_state(module), rc, &err, NULL);
        goto fail;
    }
    Py_DECREF(in);
    return out;
fail:
    Py_XDECREF(in);
    Py_XDECREF(out);
    return NULL;
}

static PyObject *
py_label_ema(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"f", "alpha", NULL};
    return unary(module, args, kwds, "Od:label_ema", kwlist, lob_label_ema);
}

static PyObject *
py_label_classify(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"x", "alpha", NULL};
    return unary(module, args, kwds, "Od:label_classify", kwlist, lob_label_classify);
}

static PyObject *
py_label_barrier(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"mid", "ts", "valid", "upper", "lower", "rows", "ns", NULL};
    PyObject *mid, *ts, *valid, *upper, *lower;
    PyObject *in[5] = {NULL, NULL, NULL, NULL, NULL}, *label = NULL, *time = NULL, *ret = NULL;
    long long rows, ns;
    lob_series s;
    lob_error err = {0};
    int rc;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOLL:label_barrier", kwlist, &mid, &ts, &valid,
                                     &upper, &lower, &rows, &ns) ||
        series_in(mid, ts, valid, in, &s) < 0 ||
        (in[3] = lobpy_in_converted(upper, NPY_FLOAT64, 1, (Py_ssize_t)s.n, "upper")) == NULL ||
        (in[4] = lobpy_in_converted(lower, NPY_FLOAT64, 1, (Py_ssize_t)s.n, "lower")) == NULL ||
        (label = lobpy_out((Py_ssize_t)s.n, 0, NPY_FLOAT64)) == NULL ||
        (time = lobpy_out((Py_ssize_t)s.n, 0, NPY_INT64)) == NULL ||
        (ret = lobpy_out((Py_ssize_t)s.n, 0, NPY_FLOAT64)) == NULL) {
        goto fail;
    }
    lob_horizon h = {.rows = rows, .ns = ns};
    const double *up = DATA(in[3]), *dn = DATA(in[4]);
    double *l = DATA(label), *r = DATA(ret);
    int64_t *t = DATA(time);
    lobpy_nogil g;
    lobpy_nogil_begin(&g, &err);
    rc = lob_label_barrier(&s, up, dn, h, l, t, r, &err);
    lobpy_nogil_end(&g);
    if (rc < 0) {
        lobpy_raise(lobpy_get_state(module), rc, &err, NULL);
        goto fail;
    }
    release(in, 5);
    return Py_BuildValue("(NNN)", label, time, ret);
fail:
    release(in, 5);
    Py_XDECREF(label);
    Py_XDECREF(time);
    Py_XDECREF(ret);
    return NULL;
}

PyMethodDef lobpy_label_methods[] = {
    {"label_return", (PyCFunction)(void (*)(void))py_label_return, METH_VARARGS | METH_KEYWORDS,
     "label_return(mid, ts, valid, rows, ns, out=None, known_at=None, name='ret') -> (ret, "
     "known_at): forward log returns, into out / known_at when given (name names them in "
     "errors)."},
    {"label_smooth", (PyCFunction)(void (*)(void))py_label_smooth, METH_VARARGS | METH_KEYWORDS,
     "label_smooth(mid, ts, valid, k, against_mean) -> (value, known_at): DeepLOB smoothed "
     "returns."},
    {"label_ema", (PyCFunction)(void (*)(void))py_label_ema, METH_VARARGS | METH_KEYWORDS,
     "label_ema(f, alpha) -> y: EMA over f, NaN where f is NaN, restarting after it."},
    {"label_classify", (PyCFunction)(void (*)(void))py_label_classify, METH_VARARGS | METH_KEYWORDS,
     "label_classify(x, alpha) -> classes: -1 / 0 / +1, NaN kept."},
    {"label_barrier", (PyCFunction)(void (*)(void))py_label_barrier, METH_VARARGS | METH_KEYWORDS,
     "label_barrier(mid, ts, valid, upper, lower, rows, ns) -> (label, time, ret): triple "
     "barrier."},
    {NULL, NULL, 0, NULL},
};
