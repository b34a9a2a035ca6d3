/* aggregate.c -- lobfast._core.aggregate: bars from book mids and trades.
 *
 * aggregate(book_ts, bid_px, ask_px, valid, trade_ts, trade_px, trade_qty, trade_side, *,
 *           by="time", every, empty_vwap_mid=False, book_name="book", columns=None,
 *           out=None, threads=1) -> {column: ndarray}
 * bid_px / ask_px are (N, L) and only column 0 (the best level) is read, in place: a quotes
 * column goes in as a (N, 1) view.  valid is (N,) bool or None.  Inputs of the exact dtype,
 * C-contiguous and aligned are read without copying (lobpy_in_converted), others converted.
 *
 * columns: None (every column) or the names to compute, in the order the result lists them
 * after "ts"; the kernel skips the work of the others (without open, high or low, the book
 * prices of the rows inside a bucket are never read).  out: None (new arrays), a dict {name:
 * ndarray} of writable C-contiguous arrays with one row per bar, written in place and returned (its
 * "ts" and the asked columns; other columns are left alone), or a callable (n, [(name, dtype str),
 * ...]) -> such a dict that allocates them once the bar count is known.  threads: time and
 * event bars are filled on that many threads (the same values).
 */
#include "binding.h"

#include "core/kernels/aggregate.h"

#include <string.h>

#define N_COLS 11

/* Output columns in order, with their NumPy types. */
static const char *const col_names[N_COLS] = {
    "ts",     "mid_open",   "mid_high",    "mid_low", "mid_close", "vwap",
    "volume", "buy_volume", "sell_volume", "trades",  "updates",
};
static const int col_types[N_COLS] = {
    NPY_INT64,   NPY_FLOAT64, NPY_FLOAT64, NPY_FLOAT64, NPY_FLOAT64, NPY_FLOAT64,
    NPY_FLOAT64, NPY_FLOAT64, NPY_FLOAT64, NPY_INT64,   NPY_INT64,
};

/* Index of the column `name` (a str), or -1. */
static int
col_index(PyObject *name)
{
    for (int c = 0; c < N_COLS; c++) {
        if (PyUnicode_CompareWithASCIIString(name, col_names[c]) == 0) {
            return c;
        }
    }
    return -1;
}

/* The asked columns as indexes into col_names, "ts" (0) first: order[0..*n).  0 or -1 with
 * ValueError / TypeError naming the bad entry. */
static int
parse_columns(PyObject *columns, int order[N_COLS], int *n)
{
    int seen[N_COLS] = {1}; /* ts: always first, never asked for */
    order[0] = 0;
    *n = 1;
    if (columns == Py_None) {
        for (int c = 1; c < N_COLS; c++) {
            order[(*n)++] = c;
        }
        return 0;
    }
    if (PyUnicode_Check(columns)) {
        PyErr_Format(PyExc_TypeError, "columns must be a list of column names, not the str %R",
                     columns);
        return -1;
    }
    PyObject *seq = PySequence_Fast(columns, "columns must be a list of column names");
    if (seq == NULL) {
        return -1;
    }
    int rc = 0;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq) && rc == 0; i++) {
        PyObject *name = PySequence_Fast_GET_ITEM(seq, i);
        int c = PyUnicode_Check(name) ? col_index(name) : -1;
        if (c == 0) {
            PyErr_SetString(PyExc_ValueError,
                            "columns: 'ts' is always returned; name the other columns");
            rc = -1;
        }
        else if (c < 0) {
            PyErr_Format(PyExc_ValueError,
                         "columns: unknown column %R; expected some of mid_open, mid_high, "
                         "mid_low, mid_close, vwap, volume, buy_volume, sell_volume, trades, "
                         "updates",
                         name);
            rc = -1;
        }
        else if (seen[c]) {
            PyErr_Format(PyExc_ValueError, "columns: %R is named twice", name);
            rc = -1;
        }
        else {
            seen[c] = 1;
            order[(*n)++] = c;
        }
    }
    Py_DECREF(seq);
    return rc;
}

/* Whether [a, a + na) and [b, b + nb) share a byte. */
static int
overlaps(const char *a, size_t na, const char *b, size_t nb)
{
    return na > 0 && nb > 0 && a < b + nb && b < a + na;
}

/* The caller's output arrays, one per asked column (cols[c], new references), checked:
 * writable, C-contiguous, the column's dtype, n rows, sharing no memory with each other or
 * with the inputs.  `out` is a dict or a callable that makes one.  0 or -1 with an error
 * naming the column. */
static int
take_out(PyObject *out, const int *order, int n_asked, Py_ssize_t n, PyObject *const *inputs,
         int n_inputs, PyObject *cols[N_COLS])
{
    PyObject *made = NULL;
    if (PyCallable_Check(out)) {
        PyObject *spec = PyList_New(n_asked);
        if (spec == NULL) {
            return -1;
        }
        for (int i = 0; i < n_asked; i++) {
            int c = order[i];
            PyObject *item = Py_BuildValue("(ss)", col_names[c],
                                           col_types[c] == NPY_INT64 ? "int64" : "float64");
            if (item == NULL) {
                Py_DECREF(spec);
                return -1;
            }
            PyList_SET_ITEM(spec, i, item);
        }
        made = PyObject_CallFunction(out, "nO", n, spec);
        Py_DECREF(spec);
        if (made == NULL) {
            return -1;
        }
        out = made;
    }
    int rc = -1;
    if (!PyDict_Check(out)) {
        PyErr_Format(PyExc_ValueError, "out= takes a dict {column: ndarray}, not %s",
                     Py_TYPE(out)->tp_name);
        goto done;
    }
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(out, &pos, &key, &value)) {
        if (!PyUnicode_Check(key) || col_index(key) < 0) {
            PyErr_Format(PyExc_ValueError,
                         "out: unknown column %R; expected 'ts' and columns of "
                         "the bars",
                         key);
            goto done;
        }
    }
    for (int i = 0; i < n_asked; i++) {
        int c = order[i];
        char what[32];
        snprintf(what, sizeof what, "out['%s']", col_names[c]);
        PyObject *a = PyDict_GetItemString(out, col_names[c]); /* borrowed */
        if (a == NULL) {
            PyErr_Format(PyExc_ValueError, "out has no array for '%s'", col_names[c]);
            goto done;
        }
        if (a == Py_None) { /* (lobpy_out_given would make a new array for None) */
            PyErr_Format(PyExc_ValueError, "%s must be a NumPy array, not None", what);
            goto done;
        }
        /* the one check of a kernel's output array: ValueError naming it */
        PyObject *given = lobpy_out_given(a, col_types[c], n, what);
        if (given == NULL) {
            goto done;
        }
        Py_DECREF(given); /* a itself, still held by the dict */
        const char *p = DATA(a);
        size_t bytes = (size_t)PyArray_NBYTES((PyArrayObject *)a);
        for (int j = 0; j < i; j++) {
            PyObject *o = cols[order[j]];
            if (overlaps(p, bytes, DATA(o), (size_t)PyArray_NBYTES((PyArrayObject *)o))) {
                PyErr_Format(PyExc_ValueError, "%s shares memory with out['%s']", what,
                             col_names[order[j]]);
                goto done;
            }
        }
        for (int j = 0; j < n_inputs; j++) {
            PyObject *o = inputs[j];
            if (o != NULL &&
                overlaps(p, bytes, DATA(o), (size_t)PyArray_NBYTES((PyArrayObject *)o))) {
                PyErr_Format(PyExc_ValueError, "%s shares memory with an input", what);
                goto done;
            }
        }
        cols[c] = Py_NewRef(a); /* held: the GIL is released while it is written */
    }
    rc = 0;
done:
    Py_XDECREF(made);
    return rc;
}

static PyObject *
py_aggregate(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"book_ts",  "bid_px",   "ask_px",         "valid",
                             "trade_ts", "trade_px", "trade_qty",      "trade_side",
                             "by",       "every",    "empty_vwap_mid", "book_name",
                             "columns",  "out",      "threads",        NULL};
    PyObject *o_bts, *o_bid, *o_ask, *o_valid, *o_tts, *o_tpx, *o_tqty, *o_tside;
    PyObject *o_every = NULL, *o_columns = Py_None, *o_out = Py_None;
    const char *by = "time", *book_name = "book";
    int vwap_mid = 0, threads = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOOO|$sOpsOOi:aggregate", kwlist, &o_bts,
                                     &o_bid, &o_ask, &o_valid, &o_tts, &o_tpx, &o_tqty, &o_tside,
                                     &by, &o_every, &vwap_mid, &book_name, &o_columns, &o_out,
                                     &threads)) {
        return NULL;
    }
    if (threads < 1 || threads > 1024) {
        return PyErr_Format(PyExc_ValueError, "threads (=%d) must be in [1, 1024]", threads);
    }
    if (o_every == NULL) {
        PyErr_SetString(PyExc_TypeError, "aggregate() needs every=");
        return NULL;
    }
    PyObject *bts = NULL, *bid = NULL, *ask = NULL, *valid = NULL;
    PyObject *tts = NULL, *tpx = NULL, *tqty = NULL, *tside = NULL;
    PyObject *cols[N_COLS] = {NULL};
    PyObject *result = NULL;
    lob_agg_opts opts = {0};
    lob_error err = {0};
    lobpy_nogil g;
    size_t n_out = 0;
    int order[N_COLS], n_asked, rc;

    if (strcmp(by, "time") == 0 || strcmp(by, "events") == 0) {
        opts.by = by[0] == 't' ? LOB_AGG_TIME : LOB_AGG_EVENTS;
        long long every = PyLong_AsLongLong(o_every);
        if (every == -1 && PyErr_Occurred()) {
            return NULL;
        }
        opts.every = every;
    }
    else if (strcmp(by, "volume") == 0) {
        opts.by = LOB_AGG_VOLUME;
        opts.volume = PyFloat_AsDouble(o_every);
        if (opts.volume == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
    }
    else {
        return PyErr_Format(PyExc_ValueError, "by must be 'time', 'events' or 'volume', not '%s'",
                            by);
    }
    opts.empty_vwap_mid = vwap_mid;
    if (parse_columns(o_columns, order, &n_asked) < 0) {
        return NULL;
    }

    if ((bts = lobpy_in_converted(o_bts, NPY_INT64, 1, -1, "book ts")) == NULL) {
        goto fail;
    }
    Py_ssize_t nb = ROWS(bts);
    if ((bid = lobpy_in_converted(o_bid, NPY_FLOAT64, 2, nb, "bid_px")) == NULL ||
        (ask = lobpy_in_converted(o_ask, NPY_FLOAT64, 2, nb, "ask_px")) == NULL) {
        goto fail;
    }
    Py_ssize_t levels = PyArray_DIM((PyArrayObject *)bid, 1);
    if (PyArray_DIM((PyArrayObject *)ask, 1) != levels) {
        PyErr_Format(PyExc_ValueError, "bid_px has %zd levels, ask_px %zd", levels,
                     (Py_ssize_t)PyArray_DIM((PyArrayObject *)ask, 1));
        goto fail;
    }
    if (nb > 0 && levels < 1) {
        PyErr_Format(PyExc_ValueError, "%s has %zd rows but no price levels", book_name, nb);
        goto fail;
    }
    if (o_valid != Py_None &&
        (valid = lobpy_in_converted(o_valid, NPY_BOOL, 1, nb, "valid")) == NULL) {
        goto fail;
    }
    if ((tts = lobpy_in_converted(o_tts, NPY_INT64, 1, -1, "trades ts")) == NULL) {
        goto fail;
    }
    Py_ssize_t nt = ROWS(tts);
    if ((tpx = lobpy_in_converted(o_tpx, NPY_FLOAT64, 1, nt, "trades price")) == NULL ||
        (tqty = lobpy_in_converted(o_tqty, NPY_FLOAT64, 1, nt, "trades qty")) == NULL ||
        (tside = lobpy_in_converted(o_tside, NPY_INT8, 1, nt, "trades side")) == NULL) {
        goto fail;
    }

    lob_agg_input in = {
        .n_book = (size_t)nb,
        .book_ts = DATA(bts),
        .bid = DATA(bid),
        .ask = DATA(ask),
        .px_stride = (size_t)levels,
        .valid = valid != NULL ? DATA(valid) : NULL,
        .book_name = book_name,
        .n_trades = (size_t)nt,
        .trade_ts = DATA(tts),
        .trade_px = DATA(tpx),
        .trade_qty = DATA(tqty),
        .trade_side = DATA(tside),
    };
    /* pure C over arrays this call holds references to; checks and counts in one pass */
    lobpy_nogil_begin(&g, &err);
    rc = lob_agg_count(&in, &opts, &n_out, threads, &err);
    lobpy_nogil_end(&g);
    if (rc < 0) {
        lobpy_raise(lobpy_get_state(module), rc, &err, NULL);
        goto fail;
    }
    if (o_out == Py_None) {
        for (int i = 0; i < n_asked; i++) {
            int c = order[i];
            if ((cols[c] = lobpy_out((Py_ssize_t)n_out, 0, col_types[c])) == NULL) {
                goto fail;
            }
        }
    }
    else {
        PyObject *const inputs[] = {bts, bid, ask, valid, tts, tpx, tqty, tside};
        if (take_out(o_out, order, n_asked, (Py_ssize_t)n_out, inputs, 8, cols) < 0) {
            goto fail;
        }
    }
#define COL(c) (cols[c] != NULL ? DATA(cols[c]) : NULL) /* NULL: not asked for, not computed */
    lob_agg_output out = {
        .ts = COL(0),
        .mid_open = COL(1),
        .mid_high = COL(2),
        .mid_low = COL(3),
        .mid_close = COL(4),
        .vwap = COL(5),
        .volume = COL(6),
        .buy_volume = COL(7),
        .sell_volume = COL(8),
        .trades = COL(9),
        .updates = COL(10),
    };
#undef COL
    lobpy_nogil_begin(&g, &err);
    rc = lob_agg_fill(&in, &opts, n_out, &out, threads, &err);
    lobpy_nogil_end(&g);
    if (rc < 0) {
        lobpy_raise(lobpy_get_state(module), rc, &err, NULL);
        goto fail;
    }
    if ((result = PyDict_New()) == NULL) {
        goto fail;
    }
    for (int i = 0; i < n_asked; i++) {
        if (PyDict_SetItemString(result, col_names[order[i]], cols[order[i]]) < 0) {
            Py_CLEAR(result);
            goto fail;
        }
    }
fail: /* also the normal exit: result holds its own references to the columns */
    for (int c = 0; c < N_COLS; c++) {
        Py_XDECREF(cols[c]);
    }
    Py_XDECREF(bts);
    Py_XDECREF(bid);
    Py_XDECREF(ask);
    Py_XDECREF(valid);
    Py_XDECREF(tts);
    Py_XDECREF(tpx);
    Py_XDECREF(tqty);
    Py_XDECREF(tside);
    return result;
}

PyMethodDef lobpy_aggregate_methods[] = {
    {"aggregate", (PyCFunction)(void (*)(void))py_aggregate, METH_VARARGS | METH_KEYWORDS,
     "aggregate(book_ts, bid_px, ask_px, valid, trade_ts, trade_px, trade_qty, trade_side, *, "
     "by='time', every, empty_vwap_mid=False, book_name='book', columns=None, out=None) -> "
     "dict: bars (see lobfast.aggregate); out: a dict of arrays to fill, or a callable "
     "(n, [(name, dtype), ...]) -> such a dict."},
    {NULL, NULL, 0, NULL},
};
