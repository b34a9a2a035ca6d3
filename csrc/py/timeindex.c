/* timeindex.c -- lobfast._core functions of the time index, CSV columns and convert.
 *
 * A time key is a tuple (sep, field, unit, skip_lines, name[, max_line]); a span a 4-tuple
 * (c_lo, d_at, d_lo, d_hi).
 *   TimeIx: the index of one file (built, or adopted from its entries), windows, spans
 *   csv_columns(path, span, line0, key, nrows, [(field, kind, name, out), ...]) -> [values | None]
 *   convert(src, dst, key | None, frame_ns, frame_bytes, level) -> stats dict
 *   head(path, nbytes) -> the first nbytes of text (decompressed)
 *   csv_kinds(rows, sep, time_field, names, unit, max_rows) -> [column kind, ...]
 * Every file access runs with the GIL released and stops for Ctrl-C (KeyboardInterrupt).
 */
#include "binding.h"

#define NO_IMPORT_ARRAY
#define PY_ARRAY_UNIQUE_SYMBOL lobfast_ARRAY_API
#include <numpy/arrayobject.h>

#include "core/io/columns.h"
#include "core/io/lines.h"
#include "core/io/timeindex.h"
#include "core/io/zframes.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CSV_COLS 4096

static int
parse_key(PyObject *o, lob_tskey *key)
{
    const char *sep, *name;
    Py_ssize_t seplen, max_line = (Py_ssize_t)LOB_MAX_LINE;
    long long unit;
    memset(key, 0, sizeof *key);
    if (!PyArg_ParseTuple(o, "s#iLis|n:key", &sep, &seplen, &key->field, &unit, &key->skip_lines,
                          &name, &max_line)) {
        return -1;
    }
    if (seplen != 1 || key->field < 0 || unit < 0 || key->skip_lines < 0 || max_line < 1 ||
        (uint64_t)max_line > LOB_MAX_LINE_LIMIT) {
        PyErr_SetString(PyExc_ValueError, "key: one separator byte, field >= 0, unit >= 0, "
                                          "skip_lines >= 0, max_line in [1, 2**40]");
        return -1;
    }
    key->max_line = (size_t)max_line;
    key->sep = sep[0];
    key->unit = unit;
    snprintf(key->name, sizeof key->name, "%s", name);
    return 0;
}

/* Raise for `rc`, naming the file as text (`path` is the bytes of PyUnicode_FSConverter). */
static PyObject *
fail(PyObject *module, int rc, const lob_error *err, PyObject *path)
{
    PyObject *text = PyUnicode_DecodeFSDefault(PyBytes_AS_STRING(path));
    if (text == NULL) {
        return NULL;
    }
    lobpy_raise(lobpy_get_state(module), rc, err, text);
    Py_DECREF(text);
    return NULL;
}

/* ------------------------------------------------------------------ the TimeIx type */

typedef struct {
    PyObject_HEAD PyObject *path; /* the file: str, and bytes for the core */
    PyObject *fspath;
    PyObject *entries; /* 1-D array of the entry dtype: owns ix.e */
    lob_tskey key;
    lob_ix ix; /* the summary; e borrowed from entries */
} TimeIxObject;

/* The summary's integer fields, by name: `need`ed ones must be in an info dict handed in,
 * the others default to `dflt` (indexes saved by older versions lack them). */
static const struct {
    const char *name;
    size_t offset;
    int need;
    int64_t dflt;
} INFO[] = {
    {"rows", offsetof(lob_ix, rows), 1, 0},
    {"lines", offsetof(lob_ix, lines), 1, 0},
    {"first_ts", offsetof(lob_ix, first_ts), 1, 0},
    {"last_ts", offsetof(lob_ix, last_ts), 1, 0},
    {"data_off", offsetof(lob_ix, data_off), 1, 0},
    {"d_size", offsetof(lob_ix, d_size), 1, 0},
    {"c_size", offsetof(lob_ix, c_size), 1, 0},
    {"frames", offsetof(lob_ix, frames), 0, 0},
    {"truncated", offsetof(lob_ix, truncated), 0, 0},
    {"partial", offsetof(lob_ix, partial), 0, 0},
    {"junk_offset", offsetof(lob_ix, junk_off), 0, -1},
    {"bad_frame", offsetof(lob_ix, bad_frame), 1, 0},
    {"bad_c_off", offsetof(lob_ix, bad_c_off), 0, 0},
    {"seek_table_frames", offsetof(lob_ix, seek_frames), 0, -1},
};
#define N_INFO (sizeof INFO / sizeof INFO[0])

static int64_t *
info_field(lob_ix *ix, size_t i)
{
    return (int64_t *)(void *)((char *)ix + INFO[i].offset);
}

/* The entry dtype, from the core's layout.  New reference. */
static PyArray_Descr *
entry_descr(void)
{
    PyObject *names = PyList_New(LOB_IX_FIELDS), *formats = PyList_New(LOB_IX_FIELDS);
    PyObject *offsets = PyList_New(LOB_IX_FIELDS), *spec = NULL;
    PyArray_Descr *descr = NULL;
    for (int i = 0; names && formats && offsets && i < LOB_IX_FIELDS; i++) {
        PyList_SET_ITEM(names, i, PyUnicode_FromString(lob_ix_layout[i].name));
        PyList_SET_ITEM(formats, i, PyUnicode_FromString("<i8"));
        PyList_SET_ITEM(offsets, i, PyLong_FromSize_t(lob_ix_layout[i].offset));
    }
    if (names && formats && offsets && !PyErr_Occurred()) {
        spec = Py_BuildValue("{sOsOsOsn}", "names", names, "formats", formats, "offsets", offsets,
                             "itemsize", (Py_ssize_t)sizeof(lob_ixentry));
    }
    if (spec != NULL && PyArray_DescrConverter(spec, &descr) != NPY_SUCCEED) {
        descr = NULL;
    }
    Py_XDECREF(names);
    Py_XDECREF(formats);
    Py_XDECREF(offsets);
    Py_XDECREF(spec);
    return descr;
}

/* Positions as an array of the entry dtype (of `like`'s descr).  New reference. */
static PyObject *
positions(PyArrayObject *like, const lob_ixentry *e, npy_intp n)
{
    PyArray_Descr *descr = PyArray_DESCR(like);
    Py_INCREF(descr);
    PyObject *a = PyArray_NewFromDescr(&PyArray_Type, descr, 1, &n, NULL, NULL, 0, NULL);
    if (a != NULL) {
        memcpy(PyArray_DATA((PyArrayObject *)a), e, (size_t)n * sizeof *e);
    }
    return a;
}

static TimeIxObject *
timeix_alloc(PyTypeObject *type, PyObject *path, const lob_tskey *key)
{
    TimeIxObject *self = (TimeIxObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->fspath = path;
    Py_INCREF(path);
    self->path = PyUnicode_DecodeFSDefault(PyBytes_AS_STRING(path));
    self->key = *key;
    if (self->path == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return self;
}

/* TimeIx(path, key, entries, info): an index made before (entries of the entry dtype and
 * its summary), adopted without reading the file. */
static PyObject *
TimeIx_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"path", "key", "entries", "info", NULL};
    PyObject *path, *okey, *oentries, *info;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&OO!O!:TimeIx", kwlist, PyUnicode_FSConverter,
                                     &path, &okey, &PyArray_Type, &oentries, &PyDict_Type, &info)) {
        return NULL;
    }
    lob_tskey key;
    TimeIxObject *self = NULL;
    PyArrayObject *e = (PyArrayObject *)oentries;
    PyArray_Descr *descr = NULL;
    if (parse_key(okey, &key) < 0 || (descr = entry_descr()) == NULL) {
        goto fail;
    }
    /* a structured dtype's alignment is 1 for NumPy: the int64 fields need 8 */
    if (PyArray_NDIM(e) != 1 || !PyArray_EquivTypes(PyArray_DESCR(e), descr) ||
        !PyArray_IS_C_CONTIGUOUS(e) || (uintptr_t)PyArray_DATA(e) % _Alignof(lob_ixentry) != 0) {
        PyErr_SetString(PyExc_TypeError, "entries must be a C-contiguous 1-D array of the "
                                         "index entry dtype (lobfast.timeindex.ENTRY)");
        goto fail;
    }
    if ((self = timeix_alloc(type, path, &key)) == NULL) {
        goto fail;
    }
    lob_ix *ix = &self->ix;
    ix->e = PyArray_DATA(e);
    ix->n = ix->cap = (size_t)PyArray_DIM(e, 0);
    self->entries = oentries;
    Py_INCREF(oentries);
    for (size_t i = 0; i < N_INFO; i++) {
        PyObject *v = PyDict_GetItemString(info, INFO[i].name);
        long long x = v == NULL ? INFO[i].dflt : PyLong_AsLongLong(v);
        if (v == NULL && INFO[i].need) {
            PyErr_Format(PyExc_ValueError, "info has no '%s'", INFO[i].name);
        }
        if (PyErr_Occurred()) {
            goto fail;
        }
        *info_field(ix, i) = x;
    }
    PyObject *c = PyDict_GetItemString(info, "compression");
    long comp = c == NULL ? -1 : PyLong_AsLong(c);
    if (comp < LOB_PLAIN || comp > LOB_ZSTD) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "info: compression must be 0, 1 or 2");
        }
        goto fail;
    }
    ix->compression = (int)comp;
    PyObject *msg = PyDict_GetItemString(info, "bad_msg");
    const char *m = msg != NULL && PyUnicode_Check(msg) ? PyUnicode_AsUTF8(msg) : "";
    if (m == NULL) {
        goto fail;
    }
    snprintf(ix->bad_msg, sizeof ix->bad_msg, "%s", m);
    Py_DECREF(descr);
    Py_DECREF(path);
    return (PyObject *)self;
fail:
    Py_XDECREF(descr);
    Py_XDECREF(self);
    Py_DECREF(path);
    return NULL;
}

/* TimeIx.build(path, key, block, *, gzip=True): index the file (GIL released). */
static PyObject *
TimeIx_build(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"path", "key", "block", "gzip", NULL};
    PyObject *path, *okey;
    long long block;
    int gzip = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&OL|$p:build", kwlist, PyUnicode_FSConverter,
                                     &path, &okey, &block, &gzip)) {
        return NULL;
    }
    lob_tskey key;
    if (parse_key(okey, &key) < 0 || block <= 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "block must be > 0");
        }
        Py_DECREF(path);
        return NULL;
    }
    lob_ix ix;
    lob_error err = {0};
    int rc = LOB_OK, skip = 0;
    const char *cpath = PyBytes_AS_STRING(path);
    lobpy_nogil g;
    lobpy_nogil_begin(&g, &err);
    if (!gzip) { /* gzip cannot restart inside the file: the caller reads it through */
        lob_source *src = NULL;
        rc = lob_source_open(&src, cpath, &err);
        skip = rc == LOB_OK && lob_source_compression(src) == LOB_GZIP;
        lob_source_free(src);
    }
    if (rc == LOB_OK && !skip) {
        rc = lob_ix_build(cpath, &key, block, &ix, &err);
    }
    lobpy_nogil_end(&g);
    if (rc < 0 || skip) {
        PyObject *r = rc < 0 ? fail(PyType_GetModule(type), rc, &err, path) : Py_NewRef(Py_None);
        Py_DECREF(path);
        return r;
    }
    TimeIxObject *self = NULL;
    PyArray_Descr *descr = entry_descr();
    PyObject *flat = lobpy_array_from_owned(ix.e, (Py_ssize_t)ix.n, LOB_IX_FIELDS, 1, LOB_I64);
    ix.e = NULL;
    if (descr == NULL || flat == NULL) {
        goto done;
    }
    npy_intp n = (npy_intp)ix.n;
    Py_INCREF(descr);
    PyObject *entries =
        PyArray_NewFromDescr(&PyArray_Type, descr, 1, &n, NULL, PyArray_DATA((PyArrayObject *)flat),
                             NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED, NULL);
    /* the entries keep the buffer's owner alive (SetBaseObject steals a reference) */
    Py_INCREF(flat);
    if (entries != NULL && PyArray_SetBaseObject((PyArrayObject *)entries, flat) < 0) {
        Py_CLEAR(entries);
    }
    else if (entries == NULL) {
        Py_DECREF(flat);
    }
    if (entries == NULL) {
        goto done;
    }
    self = timeix_alloc(type, path, &key);
    if (self == NULL) {
        Py_DECREF(entries);
        goto done;
    }
    self->ix = ix;
    self->ix.e = PyArray_DATA((PyArrayObject *)entries);
    self->entries = entries;
done:
    Py_XDECREF(descr);
    Py_XDECREF(flat);
    Py_DECREF(path);
    return (PyObject *)self;
}

static void
TimeIx_dealloc(TimeIxObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    Py_XDECREF(self->path);
    Py_XDECREF(self->fspath);
    Py_XDECREF(self->entries);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *
span_tuple(const lob_span *s, int64_t line0)
{
    return Py_BuildValue("((LLLL)L)", (long long)s->c_lo, (long long)s->d_at, (long long)s->d_lo,
                         (long long)s->d_hi, (long long)line0);
}

/* window(t0, t1) -> (ends, looked, span): see the type's doc. */
static PyObject *
TimeIx_window(TimeIxObject *self, PyObject *args)
{
    long long t0, t1;
    if (!PyArg_ParseTuple(args, "LL:window", &t0, &t1)) {
        return NULL;
    }
    lob_ixentry ends[2];
    int64_t looked = 0;
    lob_error err = {0};
    int rc;
    const char *cpath = PyBytes_AS_STRING(self->fspath);
    lobpy_nogil g;
    lobpy_nogil_begin(&g, &err);
    rc = lob_ix_window(cpath, &self->key, &self->ix, t0, t1, ends, &looked, &err);
    lobpy_nogil_end(&g);
    if (rc < 0) {
        return fail(PyType_GetModule(Py_TYPE(self)), rc, &err, self->fspath);
    }
    PyObject *span = Py_None;
    if (ends[1].row > ends[0].row) {
        lob_span s = lob_ix_span(&ends[0], &ends[1]);
        span = span_tuple(&s, ends[0].line - 1);
    }
    else {
        Py_INCREF(span);
    }
    PyObject *a = positions((PyArrayObject *)self->entries, ends, 2);
    if (span == NULL || a == NULL) {
        Py_XDECREF(span);
        Py_XDECREF(a);
        return NULL;
    }
    return Py_BuildValue("(NLN)", a, (long long)looked, span);
}

/* TimeIx.adopt(path, key, entries, info, t0, t1) -> (TimeIx, (ends, looked, span)): adopt
 * an index made before and find a window in it, in one call. */
static PyObject *
TimeIx_adopt(PyTypeObject *type, PyObject *args)
{
    PyObject *path, *okey, *entries, *info;
    long long t0, t1;
    if (!PyArg_ParseTuple(args, "OOOOLL:adopt", &path, &okey, &entries, &info, &t0, &t1)) {
        return NULL;
    }
    PyObject *made = Py_BuildValue("(OOOO)", path, okey, entries, info);
    PyObject *self = made == NULL ? NULL : TimeIx_new(type, made, NULL);
    Py_XDECREF(made);
    PyObject *ends = self == NULL ? NULL : Py_BuildValue("(LL)", t0, t1);
    PyObject *w = ends == NULL ? NULL : TimeIx_window((TimeIxObject *)self, ends);
    Py_XDECREF(ends);
    if (w == NULL) {
        Py_XDECREF(self);
        return NULL;
    }
    return Py_BuildValue("(NN)", self, w);
}

/* pieces(ends, n) -> [(span, line0, rows)]: see the type's doc. */
static PyObject *
TimeIx_pieces(TimeIxObject *self, PyObject *args)
{
    PyObject *oends;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "O!n:pieces", &PyArray_Type, &oends, &n)) {
        return NULL;
    }
    PyArrayObject *a = (PyArrayObject *)oends;
    if (PyArray_NDIM(a) != 1 || PyArray_DIM(a, 0) != 2 || !PyArray_ISCARRAY_RO(a) ||
        !PyArray_EquivTypes(PyArray_DESCR(a), PyArray_DESCR((PyArrayObject *)self->entries))) {
        PyErr_SetString(PyExc_TypeError, "ends must be the two positions window() gave");
        return NULL;
    }
    if (n < 1 || n > 4096) {
        PyErr_SetString(PyExc_ValueError, "n must be in [1, 4096]");
        return NULL;
    }
    lob_ixentry ends[2];
    memcpy(ends, PyArray_DATA(a), sizeof ends);
    lob_ixpiece *out = PyMem_Malloc((size_t)n * sizeof *out);
    if (out == NULL) {
        return PyErr_NoMemory();
    }
    size_t k = lob_ix_pieces(&self->ix, &ends[0], &ends[1], (size_t)n, out);
    PyObject *r = PyList_New((Py_ssize_t)k);
    for (size_t i = 0; r != NULL && i < k; i++) {
        lob_span *s = &out[i].span;
        PyObject *t =
            Py_BuildValue("((LLLL)LL)", (long long)s->c_lo, (long long)s->d_at, (long long)s->d_lo,
                          (long long)s->d_hi, (long long)out[i].line0, (long long)out[i].rows);
        if (t == NULL) {
            Py_CLEAR(r);
            break;
        }
        PyList_SET_ITEM(r, (Py_ssize_t)i, t);
    }
    PyMem_Free(out);
    return r;
}

static PyObject *
TimeIx_info(TimeIxObject *self, void *Py_UNUSED(closure))
{
    PyObject *d = PyDict_New();
    for (size_t i = 0; d != NULL && i < N_INFO; i++) {
        PyObject *v = PyLong_FromLongLong(*info_field(&self->ix, i));
        if (v == NULL || PyDict_SetItemString(d, INFO[i].name, v) < 0) {
            Py_XDECREF(v);
            Py_CLEAR(d);
            break;
        }
        Py_DECREF(v);
    }
    PyObject *c = d ? PyLong_FromLong(self->ix.compression) : NULL;
    PyObject *m =
        d ? PyUnicode_DecodeUTF8(self->ix.bad_msg, (Py_ssize_t)strlen(self->ix.bad_msg), "replace")
          : NULL;
    if (c == NULL || m == NULL || PyDict_SetItemString(d, "compression", c) < 0 ||
        PyDict_SetItemString(d, "bad_msg", m) < 0) {
        Py_CLEAR(d);
    }
    Py_XDECREF(c);
    Py_XDECREF(m);
    return d;
}

static PyObject *
TimeIx_entries(TimeIxObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->entries);
}

static PyObject *
TimeIx_path(TimeIxObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->path);
}

/* layout() -> (itemsize, ((name, offset), ...)): the core's entry layout. */
static PyObject *
TimeIx_layout(PyObject *Py_UNUSED(cls), PyObject *Py_UNUSED(ignored))
{
    PyObject *fields = PyTuple_New(LOB_IX_FIELDS);
    for (int i = 0; fields != NULL && i < LOB_IX_FIELDS; i++) {
        PyObject *f =
            Py_BuildValue("(sn)", lob_ix_layout[i].name, (Py_ssize_t)lob_ix_layout[i].offset);
        if (f == NULL) {
            Py_CLEAR(fields);
            break;
        }
        PyTuple_SET_ITEM(fields, i, f);
    }
    return fields ? Py_BuildValue("(nN)", (Py_ssize_t)sizeof(lob_ixentry), fields) : NULL;
}

static PyMethodDef TimeIx_methods[] = {
    {"build", (PyCFunction)(void (*)(void))TimeIx_build, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     "build(path, key, block, *, gzip=True) -> TimeIx: index a sorted line file in one pass; "
     "None for a gzip file when gzip is False (it cannot restart inside)."},
    {"adopt", (PyCFunction)(void (*)(void))TimeIx_adopt, METH_VARARGS | METH_CLASS,
     "adopt(path, key, entries, info, t0, t1) -> (TimeIx, window(t0, t1)): in one call."},
    {"window", (PyCFunction)TimeIx_window, METH_VARARGS,
     "window(t0, t1) -> (ends, looked, span): ends, the positions of the first rows at or after "
     "t0 and t1 (entry dtype); looked, the text bytes decompressed to find them; span, "
     "((c_lo, d_at, d_lo, d_hi), line0) to read the window's rows, or None when it has none."},
    {"pieces", (PyCFunction)TimeIx_pieces, METH_VARARGS,
     "pieces(ends, n) -> [(span, line0, rows)]: the window's rows in at most n pieces cut at "
     "entries."},
    {"layout", (PyCFunction)TimeIx_layout, METH_NOARGS | METH_STATIC,
     "layout() -> (itemsize, ((name, offset), ...)): the C layout of an entry."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef TimeIx_getset[] = {
    {"entries", (getter)TimeIx_entries, NULL,
     "entries (ts, line, row, d_off, c_off, d_at), read-only, in file order", NULL},
    {"info", (getter)TimeIx_info, NULL, "the summary: rows, lines, times, sizes, damage", NULL},
    {"path", (getter)TimeIx_path, NULL, "the indexed file", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot TimeIx_slots[] = {
    {Py_tp_new, TimeIx_new},
    {Py_tp_dealloc, TimeIx_dealloc},
    {Py_tp_methods, TimeIx_methods},
    {Py_tp_getset, TimeIx_getset},
    {Py_tp_doc, "TimeIx(path, key, entries, info): the time index of one file (TimeIx.build "
                "makes one), its windows and their byte spans.  A key is (sep, field, unit, "
                "skip_lines, name[, max_line])."},
    {0, NULL},
};

PyType_Spec lobpy_timeix_type_spec = {
    "lobfast._core.TimeIx", sizeof(TimeIxObject), 0, Py_TPFLAGS_DEFAULT, TimeIx_slots,
};

/* NumPy type of each column kind's output. */
static int
kind_type(int kind)
{
    switch (kind) {
    case LOB_CK_I64:
    case LOB_CK_TIME: return NPY_INT64;
    case LOB_CK_F64: return NPY_FLOAT64;
    case LOB_CK_BOOL:
    case LOB_CK_SIDE: return NPY_INT8;
    case LOB_CK_TEXT: return NPY_INT32;
    default: return -1;
    }
}

static PyObject *
py_csv_columns(PyObject *module, PyObject *args)
{
    PyObject *path, *okey, *ospec;
    lob_span span;
    long long line0, nrows;
    if (!PyArg_ParseTuple(args, "O&(LLLL)LOLO!:csv_columns", PyUnicode_FSConverter, &path,
                          &span.c_lo, &span.d_at, &span.d_lo, &span.d_hi, &line0, &okey, &nrows,
                          &PyList_Type, &ospec)) {
        return NULL;
    }
    Py_ssize_t ncol = PyList_GET_SIZE(ospec);
    lob_tskey key;
    lob_csvcol *cols = calloc((size_t)(ncol > 0 ? ncol : 1), sizeof *cols);
    lob_dict *dicts = calloc((size_t)(ncol > 0 ? ncol : 1), sizeof *dicts);
    PyObject *result = NULL;
    if (cols == NULL || dicts == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (parse_key(okey, &key) < 0) {
        goto done;
    }
    if (nrows < 0 || ncol > MAX_CSV_COLS) {
        PyErr_SetString(PyExc_ValueError, "nrows must be >= 0, columns at most 4096");
        goto done;
    }
    for (Py_ssize_t i = 0; i < ncol; i++) {
        PyObject *arr;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(ospec, i), "iisO!", &cols[i].field, &cols[i].kind,
                              &cols[i].name, &PyArray_Type, &arr)) {
            goto done;
        }
        PyArrayObject *a = (PyArrayObject *)arr;
        int typenum = kind_type(cols[i].kind);
        if (typenum < 0 || PyArray_TYPE(a) != typenum || PyArray_NDIM(a) != 1 ||
            !PyArray_ISCARRAY(a) || PyArray_DIM(a, 0) < nrows) {
            PyErr_Format(PyExc_ValueError,
                         "column '%s': the output must be a writeable C-contiguous 1-D array of "
                         "%lld rows of the column kind's type",
                         cols[i].name, nrows);
            goto done;
        }
        cols[i].out = PyArray_DATA(a);
        cols[i].dict = &dicts[i];
    }
    lob_error err = {0};
    int rc;
    const char *cpath = PyBytes_AS_STRING(path);
    lobpy_nogil g; /* csv_columns runs in worker threads too: their checks see no signal */
    lobpy_nogil_begin(&g, &err);
    rc = lob_csv_columns(cpath, &span, line0, &key, cols, (int)ncol, nrows, &err);
    lobpy_nogil_end(&g);
    if (rc < 0) {
        fail(module, rc, &err, path);
        goto done;
    }
    result = PyList_New(ncol);
    for (Py_ssize_t i = 0; result != NULL && i < ncol; i++) {
        PyObject *v = Py_None;
        if (cols[i].kind == LOB_CK_TEXT) {
            v = PyList_New(dicts[i].n);
            for (int j = 0; v != NULL && j < dicts[i].n; j++) {
                const char *s = lob_dict_value(&dicts[i], j);
                PyObject *u = PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "replace");
                if (u == NULL) {
                    Py_CLEAR(v);
                    break;
                }
                PyList_SET_ITEM(v, j, u);
            }
            if (v == NULL) {
                Py_CLEAR(result);
                break;
            }
        }
        else {
            Py_INCREF(v);
        }
        PyList_SET_ITEM(result, i, v);
    }
done:
    for (Py_ssize_t i = 0; dicts != NULL && i < ncol; i++) {
        lob_dict_free(&dicts[i]);
    }
    free(dicts);
    free(cols);
    Py_DECREF(path);
    return result;
}

static PyObject *
py_convert(PyObject *module, PyObject *args)
{
    PyObject *src, *dst, *okey;
    long long frame_ns;
    Py_ssize_t frame_bytes;
    int level;
    if (!PyArg_ParseTuple(args, "O&O&OLni:convert", PyUnicode_FSConverter, &src,
                          PyUnicode_FSConverter, &dst, &okey, &frame_ns, &frame_bytes, &level)) {
        return NULL;
    }
    lob_tskey key;
    PyObject *r = NULL;
    if (okey != Py_None && parse_key(okey, &key) < 0) {
        goto done;
    }
    if (frame_ns <= 0 || frame_bytes <= 0) {
        PyErr_SetString(PyExc_ValueError, "frame_ns and frame_bytes must be > 0");
        goto done;
    }
    lob_convert_stats st;
    lob_error err = {0};
    int rc;
    const char *csrc = PyBytes_AS_STRING(src), *cdst = PyBytes_AS_STRING(dst);
    const lob_tskey *pkey = okey == Py_None ? NULL : &key;
    lobpy_nogil g;
    lobpy_nogil_begin(&g, &err);
    rc = lob_convert(csrc, cdst, pkey, frame_ns, (size_t)frame_bytes, level, &st, &err);
    lobpy_nogil_end(&g);
    if (rc < 0) {
        fail(module, rc, &err, src);
        goto done;
    }
    r = Py_BuildValue("{sLsLsLsLsLsLsL}", "lines", (long long)st.lines, "frames",
                      (long long)st.frames, "bytes_in", (long long)st.bytes_in, "bytes_out",
                      (long long)st.bytes_out, "partial_line_bytes", (long long)st.partial,
                      "truncated_bytes", (long long)st.truncated, "junk_offset",
                      (long long)st.junk_off);
done:
    Py_DECREF(src);
    Py_DECREF(dst);
    return r;
}

static PyObject *
py_head(PyObject *module, PyObject *args)
{
    PyObject *path;
    Py_ssize_t cap;
    if (!PyArg_ParseTuple(args, "O&n:head", PyUnicode_FSConverter, &path, &cap)) {
        return NULL;
    }
    PyObject *out = cap >= 0 ? PyBytes_FromStringAndSize(NULL, cap) : NULL;
    if (out == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "nbytes must be >= 0");
        }
        Py_DECREF(path);
        return NULL;
    }
    lob_source *s = NULL;
    lob_error err = {0};
    ptrdiff_t got = 0;
    int rc;
    char *dst = PyBytes_AS_STRING(out);
    const char *cpath = PyBytes_AS_STRING(path);
    lobpy_nogil g;
    lobpy_nogil_begin(&g, &err);
    rc = lob_source_open(&s, cpath, &err);
    while (rc == LOB_OK && got < cap) {
        ptrdiff_t k = lob_source_read(s, dst + got, (size_t)(cap - got), &err);
        if (k < 0) {
            rc = (int)k;
        }
        if (k <= 0) {
            break;
        }
        got += k;
    }
    lob_source_free(s);
    lobpy_nogil_end(&g);
    if (rc == LOB_E_INTR || (rc < 0 && got == 0)) {
        Py_DECREF(out);
        out = fail(module, rc, &err, path);
    }
    else if (_PyBytes_Resize(&out, got) < 0) {
        out = NULL;
    }
    Py_DECREF(path);
    return out;
}

static PyObject *
py_csv_kinds(PyObject *module, PyObject *args)
{
    (void)module;
    Py_buffer text;
    const char *sep;
    Py_ssize_t seplen, max_rows;
    int time_field;
    long long unit;
    PyObject *names;
    if (!PyArg_ParseTuple(args, "y*s#iO!Ln:csv_kinds", &text, &sep, &seplen, &time_field,
                          &PyList_Type, &names, &unit, &max_rows)) {
        return NULL;
    }
    Py_ssize_t ncol = PyList_GET_SIZE(names);
    const char **cnames = NULL;
    int *kinds = NULL;
    PyObject *out = NULL;
    if (seplen != 1 || ncol < 1 || ncol > MAX_CSV_COLS || unit < 0 || max_rows < 0) {
        PyErr_Format(PyExc_ValueError,
                     "csv_kinds: one separator byte, 1..%d names, unit >= 0, max_rows >= 0",
                     MAX_CSV_COLS);
        goto done;
    }
    cnames = PyMem_Calloc((size_t)ncol, sizeof *cnames);
    kinds = PyMem_Calloc((size_t)ncol, sizeof *kinds);
    if (cnames == NULL || kinds == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < ncol; i++) {
        if ((cnames[i] = PyUnicode_AsUTF8(PyList_GET_ITEM(names, i))) == NULL) {
            goto done;
        }
    }
    /* a sample of a few hundred KiB: no need to release the GIL */
    lob_csv_guess(text.buf, (size_t)text.len, sep[0], (int)ncol, time_field, unit, cnames, max_rows,
                  kinds);
    if ((out = PyList_New(ncol)) == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < ncol; i++) {
        PyList_SET_ITEM(out, i, PyLong_FromLong(kinds[i]));
    }
done:
    PyMem_Free(cnames);
    PyMem_Free(kinds);
    PyBuffer_Release(&text);
    return out;
}

PyMethodDef lobpy_timeindex_methods[] = {
    {"csv_kinds", py_csv_kinds, METH_VARARGS,
     "csv_kinds(rows, sep, time_field, names, unit, max_rows) -> the kind of each column."},
    {"csv_columns", py_csv_columns, METH_VARARGS,
     "csv_columns(path, span, line0, key, nrows, spec) -> text values per column."},
    {"convert", py_convert, METH_VARARGS,
     "convert(src, dst, key, frame_ns, frame_bytes, level) -> stats: seekable zstd frames."},
    {"head", py_head, METH_VARARGS, "head(path, nbytes) -> bytes: the start of the text."},
    {NULL, NULL, 0, NULL},
};
