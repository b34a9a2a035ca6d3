/* features.c -- lobfast._core feature and rolling-window kernels.
 *
 * features(ts, valid, update_id, bid_px, bid_sz, ask_px, ask_sz, requests, threads=1)
 *     -> [ndarray]; requests: [(name, k[, out, label])], name one of the core's feature kinds
 *     ("mid", "ofi", ...), out the array to write (None or absent: a new one), label its name
 *     in errors; row ranges on `threads` threads
 * trade_flow(ts, valid, trade_ts, qty, side, out=None, threads=1) -> (buy, sell, signed, count)
 *     out: None (four new arrays) or four arrays / None (that column is not computed)
 * rolling_sum(x, rows=0, span=0, ts=None, out=None, name="out") -> ndarray (out when given)
 * rolling_std(x, rows=0, span=0, ts=None, ddof=1, out=None, name="out") -> ndarray
 * rolling_many(jobs, threads=1) -> None: jobs [(x, rows, span, ts, ddof, out, name)] (ddof -1:
 *     the sum), one window per task on `threads` threads
 * Inputs are read in place when they already are contiguous arrays of the right dtype and
 * converted (copied) otherwise; they are never written.  The loops run without the GIL and
 * stop on Ctrl-C (lobpy_nogil).
 */
#include "binding.h"

#include "core/kernels/features.h"
#include "core/kernels/rolling.h"

#include <string.h>

static const struct {
    const char *name;
    int kind;
} KINDS[] = {
    {"mid", LOB_FT_MID},
    {"microprice", LOB_FT_MICROPRICE},
    {"wmid", LOB_FT_WMID},
    {"spread", LOB_FT_SPREAD},
    {"spread_bps", LOB_FT_SPREAD_BPS},
    {"imbalance", LOB_FT_IMBALANCE},
    {"bid_depth", LOB_FT_BID_DEPTH},
    {"ask_depth", LOB_FT_ASK_DEPTH},
    {"ofi", LOB_FT_OFI},
    {"ret", LOB_FT_RET},
    {"changed", LOB_FT_CHANGED},
};

static int
kind_of(PyObject *name)
{
    const char *s = PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
    for (size_t i = 0; s != NULL && i < sizeof KINDS / sizeof KINDS[0]; i++) {
        if (strcmp(s, KINDS[i].name) == 0) {
            return KINDS[i].kind;
        }
    }
    if (!PyErr_Occurred()) {
        PyErr_Format(PyExc_ValueError, "unknown feature kernel %R", name);
    }
    return -1;
}

static void
release(PyObject **a, int n)
{
    for (int i = 0; i < n; i++) {
        Py_XDECREF(a[i]);
    }
}

static PyObject *
py_features(PyObject *module, PyObject *args)
{
    PyObject *o[7], *requests;
    int threads = 1;
    if (!PyArg_ParseTuple(args, "OOOOOOOO|i:features", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5],
                          &o[6], &requests, &threads)) {
        return NULL;
    }
    if (threads < 1 || threads > 1024) {
        return PyErr_Format(PyExc_ValueError, "threads (=%d) must be in [1, 1024]", threads);
    }
    PyObject *in[7] = {NULL};
    PyObject *seq = NULL, *outs = NULL;
    lob_feature *req = NULL;
    in[0] = lobpy_in_converted(o[0], NPY_INT64, 1, -1, "ts");
    Py_ssize_t n = in[0] ? ROWS(in[0]) : 0;
    if (in[0] == NULL || (in[1] = lobpy_in_converted(o[1], NPY_BOOL, 1, n, "valid")) == NULL ||
        (in[2] = lobpy_in_converted(o[2], NPY_INT64, 1, n, "update_id")) == NULL) {
        goto done;
    }
    static const char *const level_names[] = {"bid_px", "bid_sz", "ask_px", "ask_sz"};
    for (int i = 0; i < 4; i++) {
        if ((in[3 + i] = lobpy_in_converted(o[3 + i], NPY_FLOAT64, 2, n, level_names[i])) == NULL) {
            goto done;
        }
        if (PyArray_DIM((PyArrayObject *)in[3 + i], 1) != PyArray_DIM((PyArrayObject *)in[3], 1)) {
            PyErr_SetString(PyExc_ValueError, "the level arrays have different shapes");
            goto done;
        }
    }
    if ((seq = PySequence_Fast(requests, "requests must be a sequence of (name, k)")) == NULL) {
        goto done;
    }
    Py_ssize_t nf = PySequence_Fast_GET_SIZE(seq);
    if ((outs = PyList_New(nf)) == NULL || (req = PyMem_Calloc(nf + 1, sizeof *req)) == NULL) {
        goto done;
    }
    for (Py_ssize_t j = 0; j < nf; j++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, j), *name, *given = Py_None;
        const char *label = "out";
        if (!PyArg_ParseTuple(item, "Oi|Os:request", &name, &req[j].k, &given, &label) ||
            (req[j].kind = kind_of(name)) < 0) {
            goto done;
        }
        PyObject *a = lobpy_out_given(given, NPY_FLOAT64, n, label);
        if (a == NULL) {
            goto done;
        }
        PyList_SET_ITEM(outs, j, a);
        static const char *const in_names[7] = {"ts",     "valid",  "update_id", "bid_px",
                                                "bid_sz", "ask_px", "ask_sz"};
        for (int i = 0; i < 7; i++) {
            if (lobpy_out_apart(a, label, in[i], in_names[i]) < 0) {
                goto done;
            }
        }
        req[j].out = DATA(a);
    }
    lob_book_view b = {.n = n,
                       .levels = PyArray_DIM((PyArrayObject *)in[3], 1),
                       .ts = DATA(in[0]),
                       .valid = DATA(in[1]),
                       .bid_px = DATA(in[3]),
                       .bid_sz = DATA(in[4]),
                       .ask_px = DATA(in[5]),
                       .ask_sz = DATA(in[6])};
    lob_error err = {0};
    int rc;
    lobpy_nogil g;
    lobpy_nogil_begin(&g, &err);
    rc = lob_features(&b, DATA(in[2]), req, (int)nf, threads, &err);
    lobpy_nogil_end(&g);
    if (rc < 0) {
        lobpy_raise(lobpy_get_state(module), rc, &err, NULL);
        Py_CLEAR(outs);
    }
done:
    if (PyErr_Occurred()) {
        Py_CLEAR(outs);
    }
    PyMem_Free(req);
    Py_XDECREF(seq);
    release(in, 7);
    return outs;
}

static PyObject *
py_trade_flow(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"ts", "valid", "trade_ts", "qty", "side", "out", "threads", NULL};
    static const char *const out_names[4] = {"out['buy_volume']", "out['sell_volume']",
                                             "out['signed_volume']", "out['trade_count']"};
    static const char *const in_names[5] = {"ts", "valid", "trade ts", "trade qty", "trade side"};
    PyObject *o[5], *outo = Py_None, *in[5] = {NULL}, *out[4] = {NULL}, *result = NULL;
    int threads = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOO|Oi:trade_flow", kwlist, &o[0], &o[1], &o[2],
                                     &o[3], &o[4], &outo, &threads)) {
        return NULL;
    }
    if (threads < 1 || threads > 1024) {
        return PyErr_Format(PyExc_ValueError, "threads (=%d) must be in [1, 1024]", threads);
    }
    if ((in[0] = lobpy_in_converted(o[0], NPY_INT64, 1, -1, "ts")) == NULL ||
        (in[1] = lobpy_in_converted(o[1], NPY_BOOL, 1, ROWS(in[0]), "valid")) == NULL ||
        (in[2] = lobpy_in_converted(o[2], NPY_INT64, 1, -1, "trade ts")) == NULL ||
        (in[3] = lobpy_in_converted(o[3], NPY_FLOAT64, 1, ROWS(in[2]), "trade qty")) == NULL ||
        (in[4] = lobpy_in_converted(o[4], NPY_INT8, 1, ROWS(in[2]), "trade side")) == NULL) {
        goto done;
    }
    if (outo != Py_None && (!PyTuple_Check(outo) || PyTuple_GET_SIZE(outo) != 4)) {
        PyErr_SetString(PyExc_ValueError, "trade_flow's out is None or a tuple of 4 arrays / None");
        goto done;
    }
    Py_ssize_t n = ROWS(in[0]), m = ROWS(in[2]);
    double *dst[4] = {NULL};
    for (int i = 0; i < 4; i++) {
        PyObject *given = outo == Py_None ? Py_None : PyTuple_GET_ITEM(outo, i);
        if (outo != Py_None && given == Py_None) {
            continue; /* not asked for: not computed */
        }
        if ((out[i] = lobpy_out_given(given, NPY_FLOAT64, n, out_names[i])) == NULL) {
            goto done;
        }
        for (int j = 0; j < 5; j++) {
            if (lobpy_out_apart(out[i], out_names[i], in[j], in_names[j]) < 0) {
                goto done;
            }
        }
        dst[i] = DATA(out[i]);
    }
    lob_error err = {0};
    int rc;
    lobpy_nogil g;
    lobpy_nogil_begin(&g, &err);
    rc = lob_trade_flow(DATA(in[0]), DATA(in[1]), n, DATA(in[2]), DATA(in[3]), DATA(in[4]), m,
                        dst[0], dst[1], dst[2], dst[3], threads, &err);
    lobpy_nogil_end(&g);
    if (rc < 0) {
        lobpy_raise(lobpy_get_state(module), rc, &err, NULL);
        goto done;
    }
    result = PyTuple_New(4);
    for (int i = 0; result != NULL && i < 4; i++) {
        PyObject *v = out[i] != NULL ? out[i] : Py_None;
        Py_INCREF(v);
        PyTuple_SET_ITEM(result, i, v);
    }
done:
    release(in, 5);
    release(out, 4);
    return result;
}

/* One window's arguments -> job.  keep[0..2] receive x, ts (or NULL) and out, new references
 * the caller releases; out is `outo` itself when given, else a new array.  ddof < 0: the sum. */
static int
window_job(PyObject *xo, long long rows, long long span, PyObject *tso, int ddof, PyObject *outo,
           const char *name, lob_rolling_job *job, PyObject **keep)
{
    PyObject *x, *ts = NULL, *out = NULL;
    if ((keep[0] = x = lobpy_in_converted(xo, NPY_FLOAT64, 1, -1, "x")) == NULL ||
        (tso != Py_None &&
         (keep[1] = ts = lobpy_in_converted(tso, NPY_INT64, 1, ROWS(x), "ts")) == NULL) ||
        (keep[2] = out = lobpy_out_given(outo, NPY_FLOAT64, ROWS(x), name)) == NULL ||
        lobpy_out_apart(out, name, x, "x") < 0 || lobpy_out_apart(out, name, ts, "ts") < 0) {
        return -1;
    }
    *job = (lob_rolling_job){.x = DATA(x),
                             .n = ROWS(x),
                             .w = {.rows = rows, .span = span, .ts = ts != NULL ? DATA(ts) : NULL},
                             .ddof = ddof,
                             .out = DATA(out)};
    return 0;
}

/* Run the jobs without the GIL (Ctrl-C stops them); -1 with the error raised. */
static int
run_jobs(PyObject *module, const lob_rolling_job *jobs, size_t n, int threads)
{
    lob_error err = {0};
    int rc;
    lobpy_nogil g;
    lobpy_nogil_begin(&g, &err);
    rc = lob_rolling_many(jobs, n, threads, &err);
    lobpy_nogil_end(&g);
    if (rc < 0) {
        lobpy_raise(lobpy_get_state(module), rc, &err, NULL);
        return -1;
    }
    return 0;
}

/* rolling_sum / rolling_std share the argument handling; ddof < 0 selects the sum.  `out`:
 * the caller's array to write (None: a new one), named `name` in errors. */
static PyObject *
rolling(PyObject *module, PyObject *args, PyObject *kwds, int with_ddof)
{
    static char *kwlist[] = {"x", "rows", "span", "ts", "ddof", "out", "name", NULL};
    static char *sum_kwlist[] = {"x", "rows", "span", "ts", "out", "name", NULL};
    PyObject *xo, *tso = Py_None, *outo = Py_None, *keep[3] = {NULL};
    const char *name = "out";
    long long rows = 0, span = 0;
    int ddof = 1, ok;
    if (with_ddof) {
        ok = PyArg_ParseTupleAndKeywords(args, kwds, "O|$LLOiOs:rolling_std", kwlist, &xo, &rows,
                                         &span, &tso, &ddof, &outo, &name);
    }
    else {
        ddof = -1;
        ok = PyArg_ParseTupleAndKeywords(args, kwds, "O|$LLOOs:rolling_sum", sum_kwlist, &xo, &rows,
                                         &span, &tso, &outo, &name);
    }
    if (!ok) {
        return NULL;
    }
    if (with_ddof && ddof < 0) {
        return PyErr_Format(PyExc_ValueError, "ddof must be >= 0, not %d", ddof);
    }
    lob_rolling_job job;
    PyObject *out = NULL;
    if (window_job(xo, rows, span, tso, ddof, outo, name, &job, keep) == 0 &&
        run_jobs(module, &job, 1, 1) == 0) {
        out = keep[2];
        keep[2] = NULL;
    }
    release(keep, 3);
    return out;
}

/* rolling_many(jobs, threads=1): jobs [(x, rows, span, ts, ddof, out, name)], ddof -1 for the
 * sum; every out is given and apart from every other job's arrays. */
static PyObject *
py_rolling_many(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"jobs", "threads", NULL};
    PyObject *jobso, *seq = NULL, **keep = NULL;
    int threads = 1;
    lob_rolling_job *jobs = NULL;
    const char **names = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|i:rolling_many", kwlist, &jobso, &threads)) {
        return NULL;
    }
    if (threads < 1 || threads > 1024) {
        return PyErr_Format(PyExc_ValueError, "threads (=%d) must be in [1, 1024]", threads);
    }
    if ((seq = PySequence_Fast(jobso, "jobs must be a sequence of tuples")) == NULL) {
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if ((jobs = PyMem_Calloc(n + 1, sizeof *jobs)) == NULL ||
        (keep = PyMem_Calloc(3 * n + 1, sizeof *keep)) == NULL ||
        (names = PyMem_Calloc(n + 1, sizeof *names)) == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *xo, *tso, *outo;
        long long rows, span;
        int ddof;
        const char *name;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, j), "OLLOiOs:rolling job", &xo, &rows,
                              &span, &tso, &ddof, &outo, &name)) {
            goto done;
        }
        if (outo == Py_None) {
            PyErr_Format(PyExc_ValueError, "rolling_many: %s must be given", name);
            goto done;
        }
        if (window_job(xo, rows, span, tso, ddof, outo, name, &jobs[j], &keep[3 * j]) < 0) {
            goto done;
        }
        names[j] = name;
        for (Py_ssize_t i = 0; i < j; i++) { /* no output is another job's input or output */
            for (int a = 0; a < 3; a++) {
                char in_j[160], in_i[160];
                static const char *const what[3] = {"x of ", "ts of ", ""};
                snprintf(in_j, sizeof in_j, "%s%s", what[a], name);
                snprintf(in_i, sizeof in_i, "%s%s", what[a], names[i]);
                if (lobpy_out_apart(keep[3 * j + 2], name, keep[3 * i + a], in_i) < 0 ||
                    lobpy_out_apart(keep[3 * i + 2], names[i], keep[3 * j + a], in_j) < 0) {
                    goto done;
                }
            }
        }
    }
    run_jobs(module, jobs, (size_t)n, threads);
done:
    if (keep != NULL) {
        release(keep, 3 * (int)n);
    }
    PyMem_Free(keep);
    PyMem_Free(jobs);
    PyMem_Free(names);
    Py_DECREF(seq);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
py_rolling_sum(PyObject *module, PyObject *args, PyObject *kwds)
{
    return rolling(module, args, kwds, 0);
}

static PyObject *
py_rolling_std(PyObject *module, PyObject *args, PyObject *kwds)
{
    return rolling(module, args, kwds, 1);
}

PyMethodDef lobpy_feature_methods[] = {
    {"features", py_features, METH_VARARGS,
     "features(ts, valid, update_id, bid_px, bid_sz, ask_px, ask_sz, requests, threads=1) -> "
     "[ndarray]; requests: [(kind, k[, out, label])]"},
    {"trade_flow", (PyCFunction)(void (*)(void))py_trade_flow, METH_VARARGS | METH_KEYWORDS,
     "trade_flow(ts, valid, trade_ts, qty, side, out=None, threads=1) -> (buy, sell, signed, "
     "count); out: four arrays to write, None for a column not wanted"},
    {"rolling_sum", (PyCFunction)(void (*)(void))py_rolling_sum, METH_VARARGS | METH_KEYWORDS,
     "rolling_sum(x, *, rows=0, span=0, ts=None, out=None, name='out') -> ndarray: out when "
     "given"},
    {"rolling_std", (PyCFunction)(void (*)(void))py_rolling_std, METH_VARARGS | METH_KEYWORDS,
     "rolling_std(x, *, rows=0, span=0, ts=None, ddof=1, out=None, name='out') -> ndarray: out "
     "when given"},
    {"rolling_many", (PyCFunction)(void (*)(void))py_rolling_many, METH_VARARGS | METH_KEYWORDS,
     "rolling_many(jobs, threads=1) -> None: jobs [(x, rows, span, ts, ddof, out, name)], ddof -1 "
     "for a sum, run on `threads` threads"},
    {NULL, NULL, 0, NULL},
};
