/* book.c -- lobfast._core.Book: the C order book, fed DepthEvents columns.
 *
 * Book(levels=10, every=0, crossed="flag", prune_orphans=False, max_stale=0)
 *   .feed(ts, side, price, qty, update_id, flags) -> {column: ndarray}  rows this batch made
 *   .finish()                                     -> {column: ndarray}  remaining grid rows
 *   .side(+1 | -1)                                -> (price, qty)       whole side, best first
 *   .stats()                                      -> {name: int}
 * Inputs are read in place: they must already have the exact dtype, be C-contiguous,
 * aligned and in native byte order (the containers guarantee it); nothing is cast silently.
 */
#include "binding.h"

#include "core/book/book.h"

#include <string.h>

typedef struct {
    PyObject_HEAD lob_book *b; /* the core book */
    int busy;                  /* a feed is running with the GIL released */
} BookObject;

static lobpy_state *
state_of(PyObject *self)
{
    return (lobpy_state *)PyType_GetModuleState(Py_TYPE(self));
}

static PyObject *
Book_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"levels", "every", "crossed", "prune_orphans", "max_stale", NULL};
    int levels = 10, prune = 0;
    long long every = 0, max_stale = 0;
    const char *crossed = "flag";
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$iLspL:Book", kwlist, &levels, &every, &crossed,
                                     &prune, &max_stale)) {
        return NULL;
    }
    lob_book_opts o = {.levels = levels,
                       .every_ns = every,
                       .crossed = LOB_CROSSED_FLAG,
                       .prune_orphans = prune,
                       .max_stale_ns = max_stale};
    if (strcmp(crossed, "raise") == 0) {
        o.crossed = LOB_CROSSED_RAISE;
    }
    else if (strcmp(crossed, "repair") == 0) {
        o.crossed = LOB_CROSSED_REPAIR;
    }
    else if (strcmp(crossed, "flag") != 0) {
        return PyErr_Format(PyExc_ValueError,
                            "crossed must be 'flag', 'raise' or 'repair', not '%s'", crossed);
    }
    lob_error err = {0};
    lob_book *b = NULL;
    int rc = lob_book_new(&b, &o, &err);
    if (rc < 0) {
        return lobpy_raise(PyType_GetModuleState(type), rc, &err, NULL);
    }
    BookObject *self = (BookObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        lob_book_free(b);
        return NULL;
    }
    self->b = b;
    return (PyObject *)self;
}

static void
Book_dealloc(BookObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    lob_book_free(self->b);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static int
check_idle(BookObject *self)
{
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError,
                        "this Book is in use by another thread; use one Book per thread");
        return -1;
    }
    return 0;
}

/* The rows a feed or finish made, or the exception for its core error `rc`. */
static PyObject *
output(BookObject *self, int rc, const lob_error *err)
{
    if (rc < 0) {
        return lobpy_raise(state_of((PyObject *)self), rc, err, NULL);
    }
    return lobpy_table_to_dict(lob_book_output(self->b));
}

static PyObject *
Book_feed(BookObject *self, PyObject *args)
{
    PyObject *ts, *side, *price, *qty, *uid, *flags;
    if (!PyArg_ParseTuple(args, "OOOOOO:feed", &ts, &side, &price, &qty, &uid, &flags) ||
        check_idle(self) < 0) {
        return NULL;
    }
    /* read in place without the GIL: the exact dtypes, never a converted copy */
    PyArrayObject *a_ts = lobpy_in_strict(ts, NPY_INT64, 1, -1, 0, "ts");
    Py_ssize_t n = a_ts != NULL ? ROWS(a_ts) : 0;
    PyArrayObject *a_side, *a_price, *a_qty, *a_uid, *a_flags;
    if (a_ts == NULL || (a_side = lobpy_in_strict(side, NPY_INT8, 1, n, 0, "side")) == NULL ||
        (a_price = lobpy_in_strict(price, NPY_FLOAT64, 1, n, 0, "price")) == NULL ||
        (a_qty = lobpy_in_strict(qty, NPY_FLOAT64, 1, n, 0, "qty")) == NULL ||
        (a_uid = lobpy_in_strict(uid, NPY_INT64, 1, n, 0, "update_id")) == NULL ||
        (a_flags = lobpy_in_strict(flags, NPY_UINT8, 1, n, 0, "flags")) == NULL) {
        return NULL;
    }
    lob_depth_view v = {.ts = DATA(a_ts),
                        .side = DATA(a_side),
                        .price = DATA(a_price),
                        .qty = DATA(a_qty),
                        .update_id = DATA(a_uid),
                        .flags = DATA(a_flags),
                        .n = (size_t)n};
    lob_error err = {0};
    lobpy_nogil g;
    self->busy = 1;
    /* pure C over arrays the caller's arguments keep alive for the whole call; Ctrl-C stops
     * it (the book then refuses more rows: it stopped inside a batch) */
    lobpy_nogil_begin(&g, &err);
    int rc = lob_book_feed(self->b, &v, &err);
    lobpy_nogil_end(&g);
    self->busy = 0;
    return output(self, rc, &err);
}

static PyObject *
Book_finish(BookObject *self, PyObject *Py_UNUSED(ignored))
{
    if (check_idle(self) < 0) {
        return NULL;
    }
    lob_error err = {0};
    lobpy_nogil g;
    self->busy = 1;
    lobpy_nogil_begin(&g, &err);
    int rc = lob_book_finish(self->b, &err);
    lobpy_nogil_end(&g);
    self->busy = 0;
    return output(self, rc, &err);
}

static PyObject *
Book_side(BookObject *self, PyObject *arg)
{
    long side = PyLong_AsLong(arg);
    if (side == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if ((side != 1 && side != -1) || check_idle(self) < 0) {
        return side == 1 || side == -1
                   ? NULL
                   : PyErr_Format(PyExc_ValueError, "side must be +1 (bids) or -1 (asks), not %ld",
                                  side);
    }
    npy_intp n = (npy_intp)lob_book_side_size(self->b, (int)side);
    PyObject *px = PyArray_EMPTY(1, &n, NPY_FLOAT64, 0);
    PyObject *qty = PyArray_EMPTY(1, &n, NPY_FLOAT64, 0);
    if (px == NULL || qty == NULL) {
        Py_XDECREF(px);
        Py_XDECREF(qty);
        return NULL;
    }
    size_t got = 0;
    if (lob_book_side(self->b, (int)side, DATA(px), DATA(qty), &got) < 0) {
        Py_DECREF(px);
        Py_DECREF(qty);
        return PyErr_NoMemory();
    }
    return Py_BuildValue("(NN)", px, qty);
}

static PyObject *
Book_stats(BookObject *self, PyObject *Py_UNUSED(ignored))
{
    const char *names[32];
    int64_t values[32];
    int n = lob_book_stats(self->b, names, values, 32);
    PyObject *d = PyDict_New();
    for (int i = 0; d != NULL && i < n; i++) {
        PyObject *v = PyLong_FromLongLong(values[i]);
        if (v == NULL || PyDict_SetItemString(d, names[i], v) < 0) {
            Py_XDECREF(v);
            Py_CLEAR(d);
            break;
        }
        Py_DECREF(v);
    }
    return d;
}

static PyMethodDef Book_methods[] = {
    {"feed", (PyCFunction)Book_feed, METH_VARARGS,
     "feed(ts, side, price, qty, update_id, flags) -> dict: apply rows, return new rows."},
    {"finish", (PyCFunction)Book_finish, METH_NOARGS, "finish() -> dict: remaining grid rows."},
    {"side", (PyCFunction)Book_side, METH_O, "side(+1|-1) -> (price, qty): a side, best first."},
    {"stats", (PyCFunction)Book_stats, METH_NOARGS, "stats() -> dict of counters."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Book_slots[] = {
    {Py_tp_new, Book_new},
    {Py_tp_dealloc, Book_dealloc},
    {Py_tp_methods, Book_methods},
    {Py_tp_doc, "Book(*, levels=10, every=0, crossed='flag', prune_orphans=False, max_stale=0): "
                "a Level-2 book fed DepthEvents columns."},
    {0, NULL},
};

PyType_Spec lobpy_book_type_spec = {
    "lobfast._core.Book", sizeof(BookObject), 0, Py_TPFLAGS_DEFAULT, Book_slots,
};
