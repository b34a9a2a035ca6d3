/* aggregate.c -- lobfast._core.aggregate: bars from book mids and trades.
 *
 * aggregate(book_ts, bid_px, ask_px, valid, trade_ts, trade_px, trade_qty, trade_side, *,
 *           by="time", every, empty_vwap_mid=False, book_name="book") -> {column: ndarray}
 * bid_px / ask_px are (N, L) and only column 0 (the best level) is read, in place: a quotes
 * column goes in as a (N, 1) view.  valid is (N,) bool or None.  Inputs of the exact dtype,
 * C-contiguous and aligned are read without copying (lobpy_in_converted), others converted.
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

static PyObject *
py_aggregate(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"book_ts",        "bid_px",    "ask_px",     "valid", "trade_ts",
                             "trade_px",       "trade_qty", "trade_side", "by",    "every",
                             "empty_vwap_mid", "book_name", NULL};
    PyObject *o_bts, *o_bid, *o_ask, *o_valid, *o_tts, *o_tpx, *o_tqty, *o_tside;
    PyObject *o_every = NULL;
    const char *by = "time", *book_name = "book";
    int vwap_mid = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOOO|$sOps:aggregate", kwlist, &o_bts, &o_bid,
                                     &o_ask, &o_valid, &o_tts, &o_tpx, &o_tqty, &o_tside, &by,
                                     &o_every, &vwap_mid, &book_name)) {
        return NULL;
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
    int rc;

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
    rc = lob_agg_count(&in, &opts, &n_out, &err);
    lobpy_nogil_end(&g);
    if (rc < 0) {
        lobpy_raise(lobpy_get_state(module), rc, &err, NULL);
        goto fail;
    }
    for (int c = 0; c < N_COLS; c++) {
        if ((cols[c] = lobpy_out((Py_ssize_t)n_out, 0, col_types[c])) == NULL) {
            goto fail;
        }
    }
    lob_agg_output out = {
        .ts = DATA(cols[0]),
        .mid_open = DATA(cols[1]),
        .mid_high = DATA(cols[2]),
        .mid_low = DATA(cols[3]),
        .mid_close = DATA(cols[4]),
        .vwap = DATA(cols[5]),
        .volume = DATA(cols[6]),
        .buy_volume = DATA(cols[7]),
        .sell_volume = DATA(cols[8]),
        .trades = DATA(cols[9]),
        .updates = DATA(cols[10]),
    };
    lobpy_nogil_begin(&g, &err);
    rc = lob_agg_fill(&in, &opts, n_out, &out, &err);
    lobpy_nogil_end(&g);
    if (rc < 0) {
        lobpy_raise(lobpy_get_state(module), rc, &err, NULL);
        goto fail;
    }
    if ((result = PyDict_New()) == NULL) {
        goto fail;
    }
    for (int c = 0; c < N_COLS; c++) {
        if (PyDict_SetItemString(result, col_names[c], cols[c]) < 0) {
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
     "by='time', every, empty_vwap_mid=False, book_name='book') -> dict: bars (see "
     "lobfast.aggregate)."},
    {NULL, NULL, 0, NULL},
};
