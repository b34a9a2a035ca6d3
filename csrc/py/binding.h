/* binding.h -- shared declarations of the Python binding (the only C that sees Python.h).
 *
 * Binding helpers are named lobpy_*: they need the GIL (or, for lobpy_nogil_*, manage it).
 * lob_* names belong to the pure-C core (csrc/core), which never sees Python. */
#ifndef LOBPY_BINDING_H
#define LOBPY_BINDING_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* NumPy's C API: module.c imports it (LOBPY_IMPORTS_NUMPY), every file shares it. */
#define PY_ARRAY_UNIQUE_SYMBOL lobfast_ARRAY_API
#ifndef LOBPY_IMPORTS_NUMPY
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include "core/lob.h"
#include "core/table.h"

/* Per-module state (multi-phase init: no process globals). */
typedef struct {
    PyObject *LobError;   /* lobfast.LobError(ValueError) */
    PyObject *ReaderType; /* lobfast._core.Reader */
    PyObject *BookType;   /* lobfast._core.Book */
} lobpy_state;

/*! lobpy_get_state() : state of the module `m`.  Borrowed. */
lobpy_state *lobpy_get_state(PyObject *m);

/*! lobpy_raise() : set the Python exception for core code `rc`; the one place where codes
 *  become exceptions:
 *    LOB_E_INTR   the exception a signal handler raised (KeyboardInterrupt when there is none)
 *    LOB_E_NOMEM  MemoryError, with the core's message when it gave one
 *    LOB_E_IO     OSError, the subclass for err->sys_errno when set (PermissionError, ...)
 *    LOB_E_INDEX  IndexError
 *    any other    LobError (a ValueError) with `path`, `line` and `offset` attributes
 *  `where` (may be NULL) names the file; err supplies the message and line/offset.
 *  Always returns NULL. */
PyObject *lobpy_raise(lobpy_state *st, int rc, const lob_error *err, PyObject *where);

/* A long core call without the GIL that Ctrl-C can stop:
 *
 *     lob_error err = {0};
 *     lobpy_nogil g;
 *     lobpy_nogil_begin(&g, &err);      // releases the GIL, installs err.poll
 *     rc = lob_long_loop(..., &err);  // calls lob_poll_stop(&err) every LOB_POLL_ROWS rows
 *     lobpy_nogil_end(&g);              // takes the GIL back
 *     if (rc < 0) return lobpy_raise(st, rc, &err, path);
 *
 * The stop check takes the GIL back briefly, at most every few milliseconds, to run the
 * Python signal handlers (PyErr_CheckSignals); when one raises (KeyboardInterrupt), the core
 * call returns LOB_E_INTR and lobpy_raise() leaves that exception in place.  The check must
 * be called only from the thread that called lobpy_nogil_begin(). */
typedef struct {
    PyThreadState *save;
    lob_poll poll;
    int64_t next_ns; /* monotonic time of the next real check */
} lobpy_nogil;

void lobpy_nogil_begin(lobpy_nogil *g, lob_error *err);
void lobpy_nogil_end(lobpy_nogil *g);

/*! lobpy_array_from_owned() : an ndarray over `buf` (malloc'd, n rows x width elements of
 *  `type`), owning it through a capsule base; (n, width) when `matrix` or width > 1, else
 *  (n,).  Frees buf on failure.
 *  Returns a new reference, or NULL with an exception set. */
PyObject *lobpy_array_from_owned(void *buf, Py_ssize_t n, Py_ssize_t width, int matrix, char type);

/*! lobpy_table_to_dict() : detach every column of `t` into {name: ndarray}.  The table is
 *  left empty.  Returns a new reference or NULL. */
PyObject *lobpy_table_to_dict(lob_table *t);

/*! lobpy_schema_list() : [(name, type char, width), ...] for a schema.  New reference. */
PyObject *lobpy_schema_list(const lob_column *schema, int ncol);

/* The data and the rows (first dimension) of an ndarray held as a PyObject *. */
#define DATA(a) PyArray_DATA((PyArrayObject *)(a))
#define ROWS(a) ((Py_ssize_t)PyArray_DIM((PyArrayObject *)(a), 0))

/*! lobpy_in_strict() : `obj` itself, read (or written) in place and never copied: an ndarray
 *  of NumPy type `typenum` with `ndim` dimensions, C-contiguous, aligned and in native byte
 *  order, and, when `n` >= 0, with `n` rows.  `flags`: LOBPY_IN_WRITABLE (it is written),
 *  LOBPY_IN_OR_FLOAT32 (typenum NPY_FLOAT64, float32 accepted too).  For inputs whose identity
 *  matters (read without the GIL in place, or filled for the caller); nothing is cast.
 *  `name` names the argument in errors.  Borrowed (the caller's argument keeps it alive), or
 *  NULL with TypeError (type, layout) / ValueError (rows) set. */
enum { LOBPY_IN_WRITABLE = 1, LOBPY_IN_OR_FLOAT32 = 2 };
PyArrayObject *lobpy_in_strict(PyObject *obj, int typenum, int ndim, Py_ssize_t n, int flags,
                               const char *name);

/*! lobpy_in_converted() : `obj` as a C-contiguous, aligned, native-order array of NumPy type
 *  `typenum` with `ndim` dimensions and, when `n` >= 0, `n` rows: the caller's array itself
 *  when it already is one, else a converted copy (safe casts only).  For inputs that are
 *  only read, by kernels that document they may copy; the caller's data are never written.
 *  `name` names the argument in errors.  New reference, or NULL with TypeError / ValueError
 *  set. */
PyObject *lobpy_in_converted(PyObject *obj, int typenum, int ndim, Py_ssize_t n, const char *name);

/*! lobpy_out() : a new C-contiguous array of `typenum`, shape (n,) or (n, width) when
 *  width > 0.  New reference or NULL. */
PyObject *lobpy_out(Py_ssize_t n, Py_ssize_t width, int typenum);

/*! lobpy_out_given() : the output array of a kernel's out= argument: `obj` itself when it is
 *  a writable, C-contiguous, aligned, native 1-D array of `typenum` with `n` rows, else
 *  ValueError naming it by `name` (what was wrong: dtype, rows, layout, read-only); a new
 *  array (lobpy_out) when `obj` is NULL or None.  New reference, or NULL with ValueError. */
PyObject *lobpy_out_given(PyObject *obj, int typenum, Py_ssize_t n, const char *name);

/*! lobpy_out_apart() : 0 when the contiguous arrays `out` and `in` (either may be NULL) share
 *  no byte, else -1 with ValueError naming both: a kernel that reads `in` while it writes
 *  `out` would read its own results. */
int lobpy_out_apart(PyObject *out, const char *out_name, PyObject *in, const char *in_name);

/*! Kernel functions, one table per binding file (features.c, labels.c, aggregate.c, ...). */
extern PyMethodDef lobpy_feature_methods[];
extern PyMethodDef lobpy_label_methods[];
extern PyMethodDef lobpy_aggregate_methods[];
extern PyMethodDef lobpy_timeindex_methods[];
extern PyMethodDef lobpy_window_methods[];
extern PyMethodDef lobpy_hawkes_methods[];

/*! lobpy_reader_type_spec, lobpy_book_type_spec : the heap types. */
extern PyType_Spec lobpy_reader_type_spec;
extern PyType_Spec lobpy_book_type_spec;
extern PyType_Spec lobpy_timeix_type_spec; /* lobfast._core.TimeIx (timeindex.c) */

#endif /* LOBPY_BINDING_H */
