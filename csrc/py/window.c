/* window.c -- lobfast._core batch gather for the PyTorch data path (core/window.h).
 *
 *   window_gather(x, ends, t, out, shift=None, scale=None, group=None, threads=1) -> None
 * x: (n, f) C-contiguous float32/float64, read in place (never converted: a silent copy of
 * the whole matrix per batch would cost more than the gather).  out: a writable
 * C-contiguous (len(ends), t, f) float32/float64 array, e.g. the NumPy view of a (pinned)
 * torch tensor; it is filled with the GIL released.  shift / scale: (g, f) float64, group:
 * (n,) int32 or None.  threads: how many threads share the copy (1..16).
 */
#include "binding.h"

#include "core/kernels/window.h"

static PyObject *
py_window_gather(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"x", "ends", "t", "out", "shift", "scale", "group", "threads", NULL};
    PyObject *xo, *endso, *outo, *shifto = Py_None, *scaleo = Py_None, *groupo = Py_None;
    PyObject *in[4] = {NULL, NULL, NULL, NULL}; /* ends, shift, scale, group */
    Py_ssize_t t;
    int threads = 1;
    PyObject *result = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOnO|OOOi:window_gather", kwlist, &xo, &endso, &t,
                                     &outo, &shifto, &scaleo, &groupo, &threads)) {
        return NULL;
    }
    if (threads < 1 || threads > LOB_GATHER_MAX_THREADS) {
        return PyErr_Format(PyExc_ValueError, "threads must be in 1..%d, got %d",
                            LOB_GATHER_MAX_THREADS, threads);
    }
    PyArrayObject *x = lobpy_in_strict(xo, NPY_FLOAT64, 2, -1, LOBPY_IN_OR_FLOAT32, "x"),
                  *out = NULL;
    if (x == NULL ||
        (out = lobpy_in_strict(outo, NPY_FLOAT64, 3, -1, LOBPY_IN_OR_FLOAT32 | LOBPY_IN_WRITABLE,
                               "out")) == NULL ||
        (in[0] = lobpy_in_converted(endso, NPY_INT64, 1, -1, "ends")) == NULL) {
        goto done;
    }
    Py_ssize_t n = PyArray_DIM(x, 0), f = PyArray_DIM(x, 1), nb = ROWS(in[0]);
    if (t < 1 || t > n) {
        PyErr_Format(PyExc_ValueError, "window length t=%zd must be in 1..%zd (the rows of x)", t,
                     n);
        goto done;
    }
    char *xlo = PyArray_BYTES(x), *olo = PyArray_BYTES(out);
    if (olo < xlo + PyArray_NBYTES(x) && xlo < olo + PyArray_NBYTES(out)) {
        PyErr_SetString(PyExc_ValueError,
                        "out overlaps x: the windows would overwrite their own rows");
        goto done;
    }
    if (PyArray_DIM(out, 0) != nb || PyArray_DIM(out, 1) != t || PyArray_DIM(out, 2) != f) {
        PyErr_Format(PyExc_ValueError, "out has shape (%zd, %zd, %zd), expected (%zd, %zd, %zd)",
                     (Py_ssize_t)PyArray_DIM(out, 0), (Py_ssize_t)PyArray_DIM(out, 1),
                     (Py_ssize_t)PyArray_DIM(out, 2), nb, t, f);
        goto done;
    }
    lob_window_src src = {.x = PyArray_DATA(x),
                          .x_f32 = PyArray_TYPE(x) == NPY_FLOAT32,
                          .n = (size_t)n,
                          .f = (size_t)f};
    if ((shifto == Py_None) != (scaleo == Py_None) || (shifto == Py_None && groupo != Py_None)) {
        PyErr_SetString(PyExc_ValueError, "shift and scale go together, and group needs them");
        goto done;
    }
    if (shifto != Py_None) {
        if ((in[1] = lobpy_in_converted(shifto, NPY_FLOAT64, 2, -1, "shift")) == NULL ||
            (in[2] = lobpy_in_converted(scaleo, NPY_FLOAT64, 2, -1, "scale")) == NULL) {
            goto done;
        }
        PyArrayObject *sh = (PyArrayObject *)in[1], *sc = (PyArrayObject *)in[2];
        if (PyArray_DIM(sh, 1) != f || PyArray_DIM(sc, 0) != PyArray_DIM(sh, 0) ||
            PyArray_DIM(sc, 1) != f || PyArray_DIM(sh, 0) < 1) {
            PyErr_Format(PyExc_ValueError, "shift and scale must both be (g, %zd) with g >= 1", f);
            goto done;
        }
        src.shift = PyArray_DATA(sh);
        src.scale = PyArray_DATA(sc);
        src.g = (size_t)PyArray_DIM(sh, 0);
        if (groupo != Py_None) {
            if ((in[3] = lobpy_in_converted(groupo, NPY_INT32, 1, n, "group")) == NULL) {
                goto done;
            }
            src.group = DATA(in[3]);
        }
        else if (src.g != 1) {
            PyErr_Format(PyExc_ValueError, "%zu statistics sets need a group per row", src.g);
            goto done;
        }
    }
    const int64_t *ends = DATA(in[0]);
    void *o = PyArray_DATA(out);
    int of32 = PyArray_TYPE(out) == NPY_FLOAT32, rc;
    lob_error err = {0};
    /* a batch takes milliseconds and is shared with worker threads: no stop check (window.c) */
    Py_BEGIN_ALLOW_THREADS;
    rc = lob_window_gather(&src, ends, (size_t)nb, (size_t)t, o, of32, threads, &err);
    Py_END_ALLOW_THREADS;
    if (rc < 0) {
        lobpy_raise(lobpy_get_state(module), rc, &err, NULL); /* a bad end or group: IndexError */
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    for (int i = 0; i < 4; i++) {
        Py_XDECREF(in[i]);
    }
    return result;
}

PyMethodDef lobpy_window_methods[] = {
    {"window_gather", (PyCFunction)(void (*)(void))py_window_gather, METH_VARARGS | METH_KEYWORDS,
     "window_gather(x, ends, t, out, shift=None, scale=None, group=None, threads=1)\n--\n\n"
     "Fill out[b] with the normalised window of t rows of x ending at row ends[b]."},
    {NULL, NULL, 0, NULL},
};
