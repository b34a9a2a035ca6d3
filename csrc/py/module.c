/* module.c -- lobfast._core: module state, errors, and small entry points.
 *
 * Multi-phase init with per-module state (no process-wide Python objects).  NumPy's C API
 * is imported once in the exec slot.
 */
#define LOBPY_IMPORTS_NUMPY /* the one file that imports NumPy's C API */
#include "binding.h"

#include "core/blocks.h"
#include "core/formats/number.h"
#include "core/formats/peek.h"
#include "core/schema.h"

#include <string.h>
#include <time.h>

lobpy_state *
lobpy_get_state(PyObject *m)
{
    return (lobpy_state *)PyModule_GetState(m);
}

static int
set_int_attr(PyObject *o, const char *name, long long v)
{
    PyObject *x = PyLong_FromLongLong(v);
    int rc = x == NULL ? -1 : PyObject_SetAttrString(o, name, x);
    Py_XDECREF(x);
    return rc;
}

PyObject *
lobpy_raise(lobpy_state *st, int rc, const lob_error *err, PyObject *where)
{
    const char *msg = err != NULL && err->msg[0] ? err->msg : lob_strerror(rc);
    if (rc == LOB_E_INTR) {
        if (!PyErr_Occurred()) {
            PyErr_SetNone(PyExc_KeyboardInterrupt);
        }
        return NULL;
    }
    if (rc == LOB_E_NOMEM) { /* the core's message says how much was asked for */
        return err != NULL && err->msg[0] ? PyErr_Format(PyExc_MemoryError, "%s", err->msg)
                                          : PyErr_NoMemory();
    }
    if (rc == LOB_E_IO && err != NULL && err->sys_errno != 0) {
        /* OSError(errno, text, path) is the subclass for the errno (PermissionError, ...) */
        PyObject *exc = PyObject_CallFunction(PyExc_OSError, "isO", err->sys_errno, msg,
                                              where != NULL ? where : Py_None);
        if (exc != NULL) {
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
            Py_DECREF(exc);
        }
        return NULL;
    }
    PyObject *exc_type = rc == LOB_E_IO      ? PyExc_OSError
                         : rc == LOB_E_INDEX ? PyExc_IndexError
                                             : st->LobError;
    PyObject *text;
    if (where != NULL && err != NULL && err->line > 0) {
        text = PyUnicode_FromFormat("%S, line %lld (byte %lld): %s", where, (long long)err->line,
                                    (long long)err->offset, msg);
    }
    else if (where != NULL) {
        text = PyUnicode_FromFormat("%S: %s", where, msg);
    }
    else {
        text = PyUnicode_FromString(msg);
    }
    if (text == NULL) {
        return NULL;
    }
    PyObject *exc = PyObject_CallOneArg(exc_type, text);
    Py_DECREF(text);
    if (exc == NULL) {
        return NULL;
    }
    if (exc_type == st->LobError) {
        if (PyObject_SetAttrString(exc, "path", where ? where : Py_None) < 0 ||
            set_int_attr(exc, "line", err ? err->line : 0) < 0 ||
            set_int_attr(exc, "offset", err ? err->offset : 0) < 0) {
            Py_DECREF(exc);
            return NULL;
        }
    }
    PyErr_SetObject(exc_type, exc);
    Py_DECREF(exc);
    return NULL;
}

/* How often a long call without the GIL looks for pending signals. */
#define NOGIL_POLL_NS INT64_C(20000000) /* 20 ms */

static int64_t
monotonic_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Run the Python signal handlers now: nonzero when one raised.  A handler that raised
 * before, during a read whose bytes the core delivered first (it reports that stop at its
 * next read), has left its exception set: that is still a stop, and no handler may run
 * while it is set. */
static int
nogil_stop_now(void *ctx)
{
    lobpy_nogil *g = ctx;
    PyEval_RestoreThread(g->save);
    int stop = PyErr_Occurred() != NULL || PyErr_CheckSignals() < 0;
    g->save = PyEval_SaveThread();
    g->next_ns = monotonic_ns() + NOGIL_POLL_NS;
    return stop;
}

/* The same, at most every NOGIL_POLL_NS: between two checks a loop pays one clock read. */
static int
nogil_stop(void *ctx)
{
    lobpy_nogil *g = ctx;
    return monotonic_ns() < g->next_ns ? 0 : nogil_stop_now(ctx);
}

void
lobpy_nogil_begin(lobpy_nogil *g, lob_error *err)
{
    g->poll.stop = nogil_stop;
    g->poll.stop_now = nogil_stop_now;
    g->poll.ctx = g;
    g->next_ns = monotonic_ns() + NOGIL_POLL_NS;
    err->poll = &g->poll;
    g->save = PyEval_SaveThread();
}

void
lobpy_nogil_end(lobpy_nogil *g)
{
    PyEval_RestoreThread(g->save);
}

/* parse_decimal(text: bytes) -> float: the core's exact decimal parser (for tests). */
static PyObject *
py_parse_decimal(PyObject *module, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_CONTIG_RO) < 0) {
        return NULL;
    }
    const char *s = view.buf;
    double v = 0;
    int rc = LOB_OK;
    const char *end = lob_parse_decimal(s, s + view.len, &v, &rc);
    int whole = end == s + view.len;
    PyBuffer_Release(&view);
    if (end != NULL && whole) {
        return PyFloat_FromDouble(v);
    }
    PyObject *repr = PyObject_Repr(arg);
    const char *text = repr != NULL ? PyUnicode_AsUTF8(repr) : NULL;
    if (text != NULL) {
        lob_error err = {0};
        rc = rc == LOB_E_RANGE ? LOB_E_RANGE : LOB_E_FORMAT;
        lob_error_set(&err, rc, "%s: %s",
                      rc == LOB_E_RANGE ? "decimal out of range" : "not a decimal number", text);
        lobpy_raise(lobpy_get_state(module), rc, &err, NULL);
    }
    Py_XDECREF(repr);
    return NULL;
}

/* peek_binance(message: bytes) -> dict: what the collector sees of a message (for tests). */
static PyObject *
py_peek_binance(PyObject *module, PyObject *arg)
{
    static const char *const kinds[] = {"other", "diff",  "partial",  "trade",
                                        "agg",   "quote", "snapshot", "shutdown",
                                        "reply", "error", "collector"};
    _Static_assert(sizeof kinds / sizeof kinds[0] == LOB_PK_NKINDS, "a name for every kind");
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_CONTIG_RO) < 0) {
        return NULL;
    }
    lob_peek pk;
    lob_error err = {0};
    int rc = lob_peek_binance(view.buf, (size_t)view.len, &pk, &err);
    PyObject *out = NULL;
    if (rc < 0) {
        lobpy_raise(lobpy_get_state(module), rc, &err, NULL);
    }
    else {
        out = Py_BuildValue("{sssy#sy#}", "kind", kinds[pk.kind], "stream",
                            pk.stream ? pk.stream : "", (Py_ssize_t)pk.streamlen, "symbol",
                            pk.sym ? pk.sym : "", (Py_ssize_t)pk.symlen);
        static const struct {
            unsigned bit;
            const char *name;
        } ids[] = {{LOB_PK_E, "E"},
                   {LOB_PK_U, "U"},
                   {LOB_PK_u, "u"},
                   {LOB_PK_pu, "pu"},
                   {LOB_PK_ID, "id"}};
        const int64_t vals[] = {pk.E, pk.U, pk.u, pk.pu, pk.id};
        for (size_t i = 0; out != NULL && i < 5; i++) {
            if (pk.have & ids[i].bit) {
                PyObject *v = PyLong_FromLongLong(vals[i]);
                if (v == NULL || PyDict_SetItemString(out, ids[i].name, v) < 0) {
                    Py_CLEAR(out);
                }
                Py_XDECREF(v);
            }
        }
        if (out != NULL && pk.kind == LOB_PK_ERROR) {
            PyObject *v = Py_BuildValue("(Ly#)", (long long)pk.code, pk.msg, (Py_ssize_t)pk.msglen);
            if (v == NULL || PyDict_SetItemString(out, "error", v) < 0) {
                Py_CLEAR(out);
            }
            Py_XDECREF(v);
        }
    }
    PyBuffer_Release(&view);
    return out;
}

static PyObject *
py_schemas(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    (void)module;
    return Py_BuildValue("{sNsNsN}", "depth", lobpy_schema_list(lob_depth_schema, LOB_D_NCOL),
                         "trades", lobpy_schema_list(lob_trades_schema, LOB_T_NCOL), "quotes",
                         lobpy_schema_list(lob_quotes_schema, LOB_Q_NCOL));
}

static PyObject *
py_release_kept(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    (void)module;
    lob_block_trim();
    Py_RETURN_NONE;
}

/* empty(n, type) -> ndarray: n values of type 'd' (float64) or 'q' (int64), not initialised;
 * large ones are blocks of core/blocks.h (huge pages; a freed one of about the size reused). */
static PyObject *
py_empty(PyObject *module, PyObject *args)
{
    (void)module;
    Py_ssize_t n;
    int type;
    if (!PyArg_ParseTuple(args, "nC:empty", &n, &type)) {
        return NULL;
    }
    if (n < 0 || (type != 'd' && type != 'q')) {
        return PyErr_Format(PyExc_ValueError, "empty(n >= 0, 'd' or 'q'), not (%zd, %c)", n, type);
    }
    return lobpy_out(n, 0, type == 'd' ? NPY_FLOAT64 : NPY_INT64);
}

static PyMethodDef module_methods[] = {
    {"parse_decimal", py_parse_decimal, METH_O,
     "parse_decimal(text: bytes) -> float: exact decimal parsing as the readers do it."},
    {"peek_binance", py_peek_binance, METH_O,
     "peek_binance(message: bytes) -> dict: the collector's view of a Binance message."},
    {"schemas", py_schemas, METH_NOARGS,
     "schemas() -> {name: [(column, type char, width)]}: the C containers' columns."},
    {"empty", py_empty, METH_VARARGS,
     "empty(n, type) -> ndarray: n float64 ('d') or int64 ('q') values, not initialised; large "
     "ones reuse freed blocks (core/blocks.h)."},
    {"release_kept", py_release_kept, METH_NOARGS,
     "release_kept() -> None: free the large blocks kept for reuse (core/blocks.h)."},
    {NULL, NULL, 0, NULL},
};

static int
module_exec(PyObject *m)
{
    if (PyArray_ImportNumPyAPI() < 0) {
        return -1;
    }
    lobpy_state *st = lobpy_get_state(m);
    /* path / line / offset: None / 0 / 0 on the class, so that every LobError has them */
    PyObject *attrs = Py_BuildValue("{sOsisi}", "path", Py_None, "line", 0, "offset", 0);
    if (attrs == NULL) {
        return -1;
    }
    st->LobError = PyErr_NewExceptionWithDoc(
        "lobfast.LobError",
        "Input that lobfast cannot read: says what was expected and where (path, line, offset).",
        PyExc_ValueError, attrs);
    Py_DECREF(attrs);
    if (st->LobError == NULL || PyModule_AddObjectRef(m, "LobError", st->LobError) < 0) {
        return -1;
    }
    st->ReaderType = PyType_FromModuleAndSpec(m, &lobpy_reader_type_spec, NULL);
    if (st->ReaderType == NULL || PyModule_AddObjectRef(m, "Reader", st->ReaderType) < 0) {
        return -1;
    }
    st->BookType = PyType_FromModuleAndSpec(m, &lobpy_book_type_spec, NULL);
    if (st->BookType == NULL || PyModule_AddObjectRef(m, "Book", st->BookType) < 0) {
        return -1;
    }
    PyObject *timeix = PyType_FromModuleAndSpec(m, &lobpy_timeix_type_spec, NULL);
    int bad = timeix == NULL || PyModule_AddObjectRef(m, "TimeIx", timeix) < 0;
    Py_XDECREF(timeix);
    if (bad) {
        return -1;
    }
    if (PyModule_AddFunctions(m, lobpy_feature_methods) < 0 ||
        PyModule_AddFunctions(m, lobpy_label_methods) < 0 ||
        PyModule_AddFunctions(m, lobpy_aggregate_methods) < 0 ||
        PyModule_AddFunctions(m, lobpy_timeindex_methods) < 0 ||
        PyModule_AddFunctions(m, lobpy_window_methods) < 0 ||
        PyModule_AddFunctions(m, lobpy_hawkes_methods) < 0) {
        return -1;
    }
    if (PyModule_AddIntConstant(m, "FLAG_SNAPSHOT", LOB_F_SNAPSHOT) < 0 ||
        PyModule_AddIntConstant(m, "FLAG_RESET", LOB_F_RESET) < 0 ||
        PyModule_AddIntConstant(m, "FLAG_GAP", LOB_F_GAP) < 0 ||
        PyModule_AddIntConstant(m, "FLAG_END_OF_MESSAGE", LOB_F_END_OF_MESSAGE) < 0) {
        return -1;
    }
    return 0;
}

static int
module_traverse(PyObject *m, visitproc visit, void *arg)
{
    lobpy_state *st = lobpy_get_state(m);
    Py_VISIT(st->LobError);
    Py_VISIT(st->ReaderType);
    Py_VISIT(st->BookType);
    return 0;
}

static int
module_clear(PyObject *m)
{
    lobpy_state *st = lobpy_get_state(m);
    Py_CLEAR(st->LobError);
    Py_CLEAR(st->ReaderType);
    Py_CLEAR(st->BookType);
    return 0;
}

static void
module_free(void *m)
{
    module_clear((PyObject *)m);
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
#ifdef Py_mod_multiple_interpreters
    /* NumPy itself supports a single interpreter only */
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
#endif
#ifdef Py_mod_gil
    /* readers keep per-object state guarded by a busy flag, which assumes the GIL */
    {Py_mod_gil, Py_MOD_GIL_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "lobfast._core",
    "lobfast's C core: readers returning zero-copy NumPy arrays.",
    sizeof(lobpy_state),
    module_methods,
    module_slots,
    module_traverse,
    module_clear,
    module_free,
};

PyMODINIT_FUNC
PyInit__core(void)
{
    return PyModuleDef_Init(&module_def);
}
