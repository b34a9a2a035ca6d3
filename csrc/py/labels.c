/* labels.c -- lobfast._core label kernels (csrc/core/kernels/labels.h), one shape for all:
 * parse, convert inputs with lobpy_in_converted (never written), allocate outputs with lobpy_out,
 * run the kernel without the GIL and stoppable by Ctrl-C (lobpy_nogil; pure C over arrays that the
 * converted inputs, held until the end, keep alive; writers to the caller's arrays meanwhile
 * are the caller's problem), raise ValueError for bad arguments.
 *
 *   label_return(mid, ts, valid, rows, ns, out=None, known_at=None, name="ret")
 *                                                         -> (ret, known_at), written into
 *                                                            out / known_at when given
 *   label_smooth(mid, ts, valid, k, against_mean, out=None, known_at=None, name="smooth")
 *                                                         -> (value, known_at)
 *   label_ema(f, alpha, out=None, name="out")             -> y
 *   label_classify(x, alpha, out=None, name="out")        -> classes
 *   label_barrier(mid, ts, valid, upper, lower, rows, ns, out=None, name="")
 *                                                         -> (label, time, ret)
 * Every output is written into the caller's array when one is given (out=, checked: dtype,
 * rows, layout, writable, apart from the inputs and the other outputs; ValueError naming it)
 * and is a new array otherwise.
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

/* The output arrays of a label kernel: the caller's (`given[i]`, None: a new one), checked
 * (dtype `types[i]`, s->n rows, writable, contiguous), apart from each other and from the
 * inputs in[0..nin).  Named `out['<name>']` in errors (`out.known_at['<name>']` for an int64
 * known-at array).  outs[i] get new references; -1 with an exception set. */
static int
outputs_in(PyObject *const *given, const int *types, const char *const *names, int nout,
           PyObject **in, int nin, const char *const *in_names, Py_ssize_t n, PyObject **outs)
{
    char label[4][96];
    for (int i = 0; i < nout; i++) {
        PyOS_snprintf(label[i], sizeof label[i], "%s", names[i]);
        if ((outs[i] = lobpy_out_given(given[i], types[i], n, label[i])) == NULL) {
            return -1;
        }
        for (int j = 0; j < i; j++) {
            if (lobpy_out_apart(outs[i], label[i], outs[j], label[j]) < 0) {
                return -1;
            }
        }
        for (int j = 0; j < nin; j++) {
            if (lobpy_out_apart(outs[i], label[i], in[j], in_names[j]) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

static const char *const SERIES_NAMES[5] = {"mid", "ts", "valid", "upper", "lower"};

/* "out['<name>']" and "out.known_at['<name>']" for errors. */
static void
label_names(const char *name, char value[96], char known[96])
{
    PyOS_snprintf(value, 96, "out['%s']", name);
    PyOS_snprintf(known, 96, "out.known_at['%s']", name);
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
    label_names(name, ret_name, known_name);
    {
        PyObject *given[2] = {ret_arg, known_arg}, *outs[2] = {NULL, NULL};
        const int types[2] = {NPY_FLOAT64, NPY_INT64};
        const char *const names[2] = {ret_name, known_name};
        int bad = outputs_in(given, types, names, 2, in, 3, SERIES_NAMES, (Py_ssize_t)s.n, outs);
        ret = outs[0], known = outs[1];
        if (bad < 0) {
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
    static char *kwlist[] = {"mid", "ts",       "valid", "k", "against_mean",
                             "out", "known_at", "name",  NULL};
    PyObject *mid, *ts, *valid, *in[3] = {NULL, NULL, NULL}, *out = NULL, *known = NULL;
    PyObject *out_arg = Py_None, *known_arg = Py_None;
    const char *name = "smooth";
    char out_name[96], known_name[96];
    long long k;
    int against_mean;
    lob_series s;
    lob_error err = {0};
    int rc;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOLp|OOs:label_smooth", kwlist, &mid, &ts,
                                     &valid, &k, &against_mean, &out_arg, &known_arg, &name) ||
        series_in(mid, ts, valid, in, &s) < 0) {
        goto fail;
    }
    label_names(name, out_name, known_name);
    {
        PyObject *given[2] = {out_arg, known_arg}, *outs[2] = {NULL, NULL};
        const int types[2] = {NPY_FLOAT64, NPY_INT64};
        const char *const names[2] = {out_name, known_name};
        int bad = outputs_in(given, types, names, 2, in, 3, SERIES_NAMES, (Py_ssize_t)s.n, outs);
        out = outs[0], known = outs[1];
        if (bad < 0) {
            goto fail;
        }
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
    PyObject *x, *in = NULL, *out = NULL, *out_arg = Py_None;
    const char *name = "out";
    double alpha;
    lob_error err = {0};
    int rc;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, format, kwlist, &x, &alpha, &out_arg, &name) ||
        (in = lobpy_in_converted(x, NPY_FLOAT64, 1, -1, kwlist[0])) == NULL ||
        (out = lobpy_out_given(out_arg, NPY_FLOAT64, ROWS(in), name)) == NULL ||
        lobpy_out_apart(out, name, in, kwlist[0]) < 0) {
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
    static char *kwlist[] = {"f", "alpha", "out", "name", NULL};
    return unary(module, args, kwds, "Od|Os:label_ema", kwlist, lob_label_ema);
}

static PyObject *
py_label_classify(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"x", "alpha", "out", "name", NULL};
    return unary(module, args, kwds, "Od|Os:label_classify", kwlist, lob_label_classify);
}

static PyObject *
py_label_barrier(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"mid",  "ts", "valid", "upper", "lower",
                             "rows", "ns", "out",   "name",  NULL};
    PyObject *mid, *ts, *valid, *upper, *lower, *out_arg = Py_None;
    PyObject *in[5] = {NULL, NULL, NULL, NULL, NULL}, *outs[3] = {NULL, NULL, NULL};
    const char *name = "";
    long long rows, ns;
    lob_series s;
    lob_error err = {0};
    int rc;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOLL|Os:label_barrier", kwlist, &mid, &ts,
                                     &valid, &upper, &lower, &rows, &ns, &out_arg, &name) ||
        series_in(mid, ts, valid, in, &s) < 0 ||
        (in[3] = lobpy_in_converted(upper, NPY_FLOAT64, 1, (Py_ssize_t)s.n, "upper")) == NULL ||
        (in[4] = lobpy_in_converted(lower, NPY_FLOAT64, 1, (Py_ssize_t)s.n, "lower")) == NULL) {
        goto fail;
    }
    if (out_arg != Py_None && (!PyTuple_Check(out_arg) || PyTuple_GET_SIZE(out_arg) != 3)) {
        PyErr_SetString(PyExc_ValueError, "label_barrier's out is None or (label, time, ret)");
        goto fail;
    }
    {
        char names[3][96];
        PyOS_snprintf(names[0], 96, "out['tb_label%s']", name);
        PyOS_snprintf(names[1], 96, "out['tb_time%s']", name);
        PyOS_snprintf(names[2], 96, "out['tb_ret%s']", name);
        PyObject *given[3] = {Py_None, Py_None, Py_None};
        for (int i = 0; out_arg != Py_None && i < 3; i++) {
            given[i] = PyTuple_GET_ITEM(out_arg, i);
        }
        const int types[3] = {NPY_FLOAT64, NPY_INT64, NPY_FLOAT64};
        const char *const labels[3] = {names[0], names[1], names[2]};
        if (outputs_in(given, types, labels, 3, in, 5, SERIES_NAMES, (Py_ssize_t)s.n, outs) < 0) {
            goto fail;
        }
    }
    lob_horizon h = {.rows = rows, .ns = ns};
    const double *up = DATA(in[3]), *dn = DATA(in[4]);
    double *l = DATA(outs[0]), *r = DATA(outs[2]);
    int64_t *t = DATA(outs[1]);
    lobpy_nogil g;
    lobpy_nogil_begin(&g, &err);
    rc = lob_label_barrier(&s, up, dn, h, l, t, r, &err);
    lobpy_nogil_end(&g);
    if (rc < 0) {
        lobpy_raise(lobpy_get_state(module), rc, &err, NULL);
        goto fail;
    }
    release(in, 5);
    return Py_BuildValue("(NNN)", outs[0], outs[1], outs[2]);
fail:
    release(in, 5);
    release(outs, 3);
    return NULL;
}

PyMethodDef lobpy_label_methods[] = {
    {"label_return", (PyCFunction)(void (*)(void))py_label_return, METH_VARARGS | METH_KEYWORDS,
     "label_return(mid, ts, valid, rows, ns, out=None, known_at=None, name='ret') -> (ret, "
     "known_at): forward log returns, into out / known_at when given (name names them in "
     "errors)."},
    {"label_smooth", (PyCFunction)(void (*)(void))py_label_smooth, METH_VARARGS | METH_KEYWORDS,
     "label_smooth(mid, ts, valid, k, against_mean, out=None, known_at=None, name='smooth') -> "
     "(value, known_at): DeepLOB smoothed returns."},
    {"label_ema", (PyCFunction)(void (*)(void))py_label_ema, METH_VARARGS | METH_KEYWORDS,
     "label_ema(f, alpha, out=None, name='out') -> y: EMA over f, NaN where f is NaN, restarting "
     "after it."},
    {"label_classify", (PyCFunction)(void (*)(void))py_label_classify, METH_VARARGS | METH_KEYWORDS,
     "label_classify(x, alpha, out=None, name='out') -> classes: -1 / 0 / +1, NaN kept."},
    {"label_barrier", (PyCFunction)(void (*)(void))py_label_barrier, METH_VARARGS | METH_KEYWORDS,
     "label_barrier(mid, ts, valid, upper, lower, rows, ns, out=None, name='') -> (label, time, "
     "ret): triple barrier; out: (label, time, ret) arrays or None."},
    {NULL, NULL, 0, NULL},
};
