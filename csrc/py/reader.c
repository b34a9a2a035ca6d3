/* reader.c -- lobfast._core.Reader: one Python type for every line format.
 *
 * Reader(format, symbol=None, on_error="raise", start=None, end=None, max_line=64 MiB,
 *        book=False, checkpoint_every=0, threads=1)
 *   .open(path, span=None, line0=0)  start a file, or a window of it (format state carries over)
 *   .pump(max_rows=0)      parse until the file ends (-> True) or about max_rows rows
 *   .close()               close the file being read (a stopped read: Ctrl-C)
 *   .finish()              end of all input
 *   .take()                {table: {column: ndarray}}, zero-copy; the reader starts afresh
 *   .stats()               {name: int | str}
 *   .restore(market, last_u, last_ts, last_local, side, price, qty)  Binance, book=True: start
 *                          from a checkpoint (core/formats/binance.h)
 *   .checkpoints()         Binance: ({column: ndarray}, {column: ndarray}) recorded so far
 * pump() releases the GIL for the whole read and stops for Ctrl-C (KeyboardInterrupt) between
 * lines, leaving the reader usable; a busy flag refuses concurrent use.  With threads > 1, a
 * zstd file with a seek table is decompressed and parsed on that many threads (pump()'s
 * and threads - 1 workers, core/io/zpar.h), which may run ahead of pump() until close().
 */
#include "binding.h"

#include "core/formats/binance.h"
#include "core/io/lines.h"
#include "core/io/reader.h"

#include <string.h>

typedef struct {
    PyObject_HEAD lob_reader *r; /* the core reader */
    PyObject *path;              /* file being read (str), for error messages; new reference */
    int busy;                    /* a pump() is running with the GIL released */
} ReaderObject;

static const lob_format *const formats[] = {&lob_format_binance, &lob_format_tardis,
                                            &lob_format_vision};

static lobpy_state *
state_of(PyObject *self)
{
    return (lobpy_state *)PyType_GetModuleState(Py_TYPE(self));
}

static int
check_idle(ReaderObject *self)
{
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError,
                        "this Reader is in use by another thread; use one Reader per thread");
        return -1;
    }
    return 0;
}

static PyObject *
Reader_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"format",   "symbol", "on_error",         "start",   "end",
                             "max_line", "book",   "checkpoint_every", "threads", NULL};
    const char *fmt_name = NULL, *symbol = NULL, *on_error = "raise";
    PyObject *ostart = Py_None, *oend = Py_None;
    long long start = INT64_MIN, end = INT64_MAX;
    Py_ssize_t max_line = (Py_ssize_t)LOB_MAX_LINE;
    int book = 0;
    long long cp_every = 0;
    int threads = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "s|$zsOOnpLi:Reader", kwlist, &fmt_name, &symbol,
                                     &on_error, &ostart, &oend, &max_line, &book, &cp_every,
                                     &threads)) {
        return NULL;
    }
    if (threads < 1 || threads > 1024) {
        return PyErr_Format(PyExc_ValueError, "threads (=%d) must be in [1, 1024]", threads);
    }
    if (cp_every < 0) {
        return PyErr_Format(PyExc_ValueError, "checkpoint_every (=%lld) must be >= 0", cp_every);
    }
    if ((ostart != Py_None && (start = PyLong_AsLongLong(ostart)) == -1 && PyErr_Occurred()) ||
        (oend != Py_None && (end = PyLong_AsLongLong(oend)) == -1 && PyErr_Occurred())) {
        return NULL;
    }
    /* INT64_MIN is NaT: a missing time, never "from the beginning" (that is None) */
    if ((ostart != Py_None && start == INT64_MIN) || (oend != Py_None && end == INT64_MIN)) {
        return PyErr_Format(PyExc_ValueError,
                            "%s is NaT (a missing time); use None for an "
                            "open end",
                            ostart != Py_None && start == INT64_MIN ? "start" : "end");
    }
    if (max_line < 1 || (uint64_t)max_line > LOB_MAX_LINE_LIMIT) {
        return PyErr_Format(PyExc_ValueError, "max_line (=%zd) must be in [1, 2**40]", max_line);
    }
    const lob_format *fmt = NULL;
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        if (strcmp(formats[i]->name, fmt_name) == 0) {
            fmt = formats[i];
        }
    }
    if (fmt == NULL) {
        return PyErr_Format(PyExc_ValueError,
                            "format must be 'binance', 'tardis' or 'vision', not '%s'", fmt_name);
    }
    int skip;
    if (strcmp(on_error, "raise") == 0) {
        skip = 0;
    }
    else if (strcmp(on_error, "skip") == 0) {
        skip = 1;
    }
    else {
        return PyErr_Format(PyExc_ValueError, "on_error must be 'raise' or 'skip', not '%s'",
                            on_error);
    }
    lob_opts opts;
    memset(&opts, 0, sizeof opts);
    if (symbol != NULL) {
        if (strlen(symbol) >= sizeof opts.symbol || symbol[0] == '\0') {
            return PyErr_Format(PyExc_ValueError, "symbol must be 1 to %d characters, not '%s'",
                                (int)sizeof opts.symbol - 1, symbol);
        }
        strcpy(opts.symbol, symbol);
    }
    if (start >= end) {
        return PyErr_Format(PyExc_ValueError, "start (=%lld) must be before end (=%lld)", start,
                            end);
    }
    opts.start_ns = start;
    opts.end_ns = end;
    opts.max_line = (size_t)max_line;
    if ((book || cp_every) && fmt != &lob_format_binance) {
        return PyErr_Format(PyExc_ValueError, "book= and checkpoint_every= are for 'binance'");
    }
    opts.keep_book = book;
    opts.checkpoint_every = cp_every;
    opts.threads = threads;
    ReaderObject *self = (ReaderObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    lob_error err = {0};
    int rc = lob_reader_new(&self->r, fmt, &opts, skip, &err);
    if (rc < 0) {
        Py_DECREF(self);
        return lobpy_raise(PyType_GetModuleState(type), rc, &err, NULL);
    }
    return (PyObject *)self;
}

static void
Reader_dealloc(ReaderObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    lob_reader_free(self->r);
    Py_XDECREF(self->path);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *
Reader_open(ReaderObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"path", "span", "line0", NULL};
    PyObject *arg, *ospan = Py_None, *bytes = NULL;
    long long line0 = 0;
    lob_span span;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OL:open", kwlist, &arg, &ospan, &line0)) {
        return NULL;
    }
    if (ospan != Py_None &&
        !PyArg_ParseTuple(ospan, "LLLL:span", &span.c_lo, &span.d_at, &span.d_lo, &span.d_hi)) {
        return NULL;
    }
    if (check_idle(self) < 0 || !PyUnicode_FSConverter(arg, &bytes)) {
        return NULL;
    }
    lob_error err = {0};
    int rc;
    const char *cpath = PyBytes_AS_STRING(bytes);
    self->busy = 1;
    lobpy_nogil g; /* opening a FIFO waits for its writer */
    lobpy_nogil_begin(&g, &err);
    rc = ospan == Py_None ? lob_reader_open(self->r, cpath, &err)
                          : lob_reader_open_span(self->r, cpath, &span, line0, &err);
    lobpy_nogil_end(&g);
    self->busy = 0;
    Py_DECREF(bytes);
    PyObject *path = PyOS_FSPath(arg);
    if (path == NULL) {
        return NULL;
    }
    Py_XSETREF(self->path, path);
    if (rc < 0) {
        return lobpy_raise(state_of((PyObject *)self), rc, &err, self->path);
    }
    Py_RETURN_NONE;
}

static PyObject *
Reader_pump(ReaderObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"max_rows", NULL};
    Py_ssize_t max_rows = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|n:pump", kwlist, &max_rows)) {
        return NULL;
    }
    if (max_rows < 0) {
        return PyErr_Format(PyExc_ValueError, "max_rows (=%zd) must be >= 0", max_rows);
    }
    if (check_idle(self) < 0) {
        return NULL;
    }
    lob_error err = {0};
    int eof = 0, rc;
    self->busy = 1;
    /* decompress + parse is pure C over memory the reader owns; Ctrl-C stops it between
     * lines (the reader then goes on from there at the next pump) */
    lobpy_nogil g;
    lobpy_nogil_begin(&g, &err);
    rc = lob_reader_pump(self->r, (size_t)max_rows, &eof, &err);
    lobpy_nogil_end(&g);
    self->busy = 0;
    if (rc < 0) {
        return lobpy_raise(state_of((PyObject *)self), rc, &err, self->path);
    }
    return PyBool_FromLong(eof);
}

static PyObject *
Reader_finish(ReaderObject *self, PyObject *Py_UNUSED(ignored))
{
    if (check_idle(self) < 0) {
        return NULL;
    }
    lob_error err = {0};
    int rc = lob_reader_finish(self->r, &err);
    if (rc < 0) {
        return lobpy_raise(state_of((PyObject *)self), rc, &err, self->path);
    }
    Py_RETURN_NONE;
}

static PyObject *
Reader_close(ReaderObject *self, PyObject *Py_UNUSED(ignored))
{
    if (check_idle(self) < 0) {
        return NULL;
    }
    lob_reader_close(self->r);
    Py_RETURN_NONE;
}

static PyObject *
Reader_take(ReaderObject *self, PyObject *Py_UNUSED(ignored))
{
    if (check_idle(self) < 0) {
        return NULL;
    }
    const lob_format *fmt = lob_reader_format(self->r);
    PyObject *out = PyDict_New();
    if (out == NULL) {
        return NULL;
    }
    for (int i = 0; i < fmt->ntables; i++) {
        PyObject *d = lobpy_table_to_dict(lob_reader_table(self->r, i));
        if (d == NULL || PyDict_SetItemString(out, fmt->table_names[i], d) < 0) {
            Py_XDECREF(d);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(d);
    }
    return out;
}

static PyObject *
Reader_stats(ReaderObject *self, PyObject *Py_UNUSED(ignored))
{
    if (check_idle(self) < 0) {
        return NULL;
    }
    lob_stat st[LOB_MAX_STATS];
    int n = lob_reader_stats(self->r, st, LOB_MAX_STATS);
    PyObject *d = PyDict_New();
    if (d == NULL) {
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        PyObject *v =
            st[i].text ? PyUnicode_DecodeUTF8(st[i].text, (Py_ssize_t)strlen(st[i].text), "replace")
                       : PyLong_FromLongLong(st[i].value);
        if (v == NULL || PyDict_SetItemString(d, st[i].name, v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(v);
    }
    return d;
}

static int
check_binance(ReaderObject *self)
{
    if (lob_reader_format(self->r) != &lob_format_binance) {
        PyErr_SetString(PyExc_TypeError, "checkpoints are for the 'binance' format");
        return -1;
    }
    return check_idle(self);
}

static PyObject *
Reader_restore(ReaderObject *self, PyObject *args)
{
    long long market, last_u, last_ts, last_local;
    PyObject *oside, *oprice, *oqty;
    if (!PyArg_ParseTuple(args, "LLLLOOO:restore", &market, &last_u, &last_ts, &last_local, &oside,
                          &oprice, &oqty) ||
        check_binance(self) < 0) {
        return NULL;
    }
    PyArrayObject *side = lobpy_in_strict(oside, NPY_INT8, 1, -1, 0, "side");
    if (side == NULL) {
        return NULL;
    }
    Py_ssize_t n = PyArray_DIM(side, 0);
    PyArrayObject *price = lobpy_in_strict(oprice, NPY_FLOAT64, 1, n, 0, "price");
    PyArrayObject *qty = price ? lobpy_in_strict(oqty, NPY_FLOAT64, 1, n, 0, "qty") : NULL;
    if (qty == NULL) {
        return NULL;
    }
    lob_binance_cp cp = {last_u,
                         last_ts,
                         last_local,
                         market,
                         PyArray_DATA(side),
                         PyArray_DATA(price),
                         PyArray_DATA(qty),
                         (size_t)n};
    lob_error err = {0};
    int rc = lob_binance_restore(lob_reader_state(self->r), &cp, &err);
    if (rc < 0) {
        return lobpy_raise(state_of((PyObject *)self), rc, &err, NULL);
    }
    Py_RETURN_NONE;
}

static PyObject *
Reader_checkpoints(ReaderObject *self, PyObject *Py_UNUSED(ignored))
{
    if (check_binance(self) < 0) {
        return NULL;
    }
    void *ctx = lob_reader_state(self->r);
    PyObject *cp = lobpy_table_to_dict(lob_binance_checkpoints(ctx, 0));
    PyObject *levels = cp ? lobpy_table_to_dict(lob_binance_checkpoints(ctx, 1)) : NULL;
    if (levels == NULL) {
        Py_XDECREF(cp);
        return NULL;
    }
    return Py_BuildValue("(NN)", cp, levels);
}

static PyMethodDef Reader_methods[] = {
    {"open", (PyCFunction)(void (*)(void))Reader_open, METH_VARARGS | METH_KEYWORDS,
     "open(path, span=None, line0=0): start reading a file, or the window span=(c_lo, d_at, "
     "d_lo, d_hi) of it."},
    {"pump", (PyCFunction)(void (*)(void))Reader_pump, METH_VARARGS | METH_KEYWORDS,
     "pump(max_rows=0) -> bool: parse until the file ends (True) or max_rows rows."},
    {"finish", (PyCFunction)Reader_finish, METH_NOARGS, "finish(): end of all input."},
    {"close", (PyCFunction)Reader_close, METH_NOARGS,
     "close(): close the file being read (what was parsed stays; open() starts another)."},
    {"take", (PyCFunction)Reader_take, METH_NOARGS,
     "take() -> {table: {column: ndarray}}: hand over the rows parsed so far."},
    {"stats", (PyCFunction)Reader_stats, METH_NOARGS, "stats() -> dict of counters."},
    {"restore", (PyCFunction)Reader_restore, METH_VARARGS,
     "restore(market, last_u, last_ts, last_local, side, price, qty): a fresh book=True "
     "Binance reader starts from this checkpoint."},
    {"checkpoints", (PyCFunction)Reader_checkpoints, METH_NOARGS,
     "checkpoints() -> (checkpoints, levels): those recorded so far, as column dicts."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Reader_slots[] = {
    {Py_tp_new, Reader_new},
    {Py_tp_dealloc, Reader_dealloc},
    {Py_tp_methods, Reader_methods},
    {Py_tp_doc,
     "Reader(format, *, symbol=None, on_error='raise', start=None, end=None, "
     "max_line=64 MiB, book=False, checkpoint_every=0, threads=1): a line-format reader over "
     "plain, "
     "gzip or zstd files."},
    {0, NULL},
};

PyType_Spec lobpy_reader_type_spec = {
    "lobfast._core.Reader", sizeof(ReaderObject), 0, Py_TPFLAGS_DEFAULT, Reader_slots,
};
