/* timeindex.c -- lobfast._core functions of the time index, CSV columns and convert.
 *
 * A time key is a tuple (sep, field, unit, skip_lines, name[, max_line]); an index entry or
 * position a 6-tuple (ts, line, row, d_off, c_off, d_at); a span a 4-tuple (c_lo, d_at, d_lo,
 * d_hi).
 *   ix_build(path, key, block) -> (entries (n, 6) int64, info dict)
 *   ix_locate(path, key, from, end, t) -> position
 *   csv_columns(path, span, line0, key, nrows, [(field, kind, name, out), ...]) -> [values | None]
 *   convert(src, dst, key | None, frame_ns, frame_bytes, level) -> stats dict
 *   head(path, nbytes) -> the first nbytes of text (decompressed)
 * Every file access runs with the GIL released and stops for Ctrl-C (KeyboardInterrupt).
 */
#include "binding.h"

#define NO_IMPORT_ARRAY
#define PY_ARRAY_UNIQUE_SYMBOL lobfast_ARRAY_API
#include <numpy/arrayobject.h>

#include "core/columns.h"
#include "core/lines.h"
#include "core/timeindex.h"
#include "core/zframes.h"

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

static int
parse_pos(PyObject *o, lob_ixentry *e, const char *what)
{
    long long v[LOB_IX_FIELDS];
    if (!PyArg_ParseTuple(o, "LLLLLL", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5])) {
        PyErr_Format(PyExc_TypeError, "%s must be 6 ints (ts, line, row, d_off, c_off, d_at)",
                     what);
        return -1;
    }
    *e = (lob_ixentry){v[0], v[1], v[2], v[3], v[4], v[5]};
    return 0;
}

static PyObject *
pos_tuple(const lob_ixentry *e)
{
    return Py_BuildValue("(LLLLLL)", (long long)e->ts, (long long)e->line, (long long)e->row,
                         (long long)e->d_off, (long long)e->c_off, (long long)e->d_at);
}

/* Raise for `rc`, naming the file as text (`path` is the bytes of PyUnicode_FSConverter). */
static PyObject *
fail(PyObject *module, int rc, const lob_error *err, PyObject *path)
{
    PyObject *text = PyUnicode_DecodeFSDefault(PyBytes_AS_STRING(path));
    if (text == NULL) {
        return NULL;
    }
    lob_raise(lob_get_state(module), rc, err, text);
    Py_DECREF(text);
    return NULL;
}

static PyObject *
py_ix_build(PyObject *module, PyObject *args)
{
    PyObject *path, *okey;
    long long block;
    if (!PyArg_ParseTuple(args, "O&OL:ix_build", PyUnicode_FSConverter, &path, &okey, &block)) {
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
    int rc;
    const char *cpath = PyBytes_AS_STRING(path);
    lob_nogil g;
    lob_nogil_begin(&g, &err);
    rc = lob_ix_build(cpath, &key, block, &ix, &err);
    lob_nogil_end(&g);
    if (rc < 0) {
        PyObject *r = fail(module, rc, &err, path);
        Py_DECREF(path);
        return r;
    }
    Py_DECREF(path);
    PyObject *entries = lob_array_from_owned(ix.e, (Py_ssize_t)ix.n, LOB_IX_FIELDS, 1, LOB_I64);
    ix.e = NULL;
    if (entries == NULL) {
        return NULL;
    }
    PyObject *info = Py_BuildValue(
        "{sLsLsLsLsLsLsLsLsLsLsLsisLsLss}", "rows", (long long)ix.rows, "lines",
        (long long)ix.lines, "first_ts", (long long)ix.first_ts, "last_ts", (long long)ix.last_ts,
        "data_off", (long long)ix.data_off, "d_size", (long long)ix.d_size, "c_size",
        (long long)ix.c_size, "frames", (long long)ix.frames, "truncated", (long long)ix.truncated,
        "partial", (long long)ix.partial, "junk_offset", (long long)ix.junk_off, "compression",
        ix.compression, "bad_frame", (long long)ix.bad_frame, "bad_c_off", (long long)ix.bad_c_off,
        "bad_msg", ix.bad_msg);
    if (info == NULL) {
        Py_DECREF(entries);
        return NULL;
    }
    return Py_BuildValue("(NN)", entries, info);
}

static PyObject *
py_ix_locate(PyObject *module, PyObject *args)
{
    PyObject *path, *okey, *ofrom, *oend;
    long long t;
    if (!PyArg_ParseTuple(args, "O&OOOL:ix_locate", PyUnicode_FSConverter, &path, &okey, &ofrom,
                          &oend, &t)) {
        return NULL;
    }
    lob_tskey key;
    lob_ixentry from, end, out;
    if (parse_key(okey, &key) < 0 || parse_pos(ofrom, &from, "from") < 0 ||
        parse_pos(oend, &end, "end") < 0) {
        Py_DECREF(path);
        return NULL;
    }
    lob_error err = {0};
    int rc;
    const char *cpath = PyBytes_AS_STRING(path);
    lob_nogil g;
    lob_nogil_begin(&g, &err);
    rc = lob_ix_locate(cpath, &key, &from, &end, t, &out, &err);
    lob_nogil_end(&g);
    PyObject *r = rc < 0 ? fail(module, rc, &err, path) : pos_tuple(&out);
    Py_DECREF(path);
    return r;
}

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
    lob_nogil g; /* csv_columns runs in worker threads too: their checks see no signal */
    lob_nogil_begin(&g, &err);
    rc = lob_csv_columns(cpath, &span, line0, &key, cols, (int)ncol, nrows, &err);
    lob_nogil_end(&g);
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
    lob_nogil g;
    lob_nogil_begin(&g, &err);
    rc = lob_convert(csrc, cdst, pkey, frame_ns, (size_t)frame_bytes, level, &st, &err);
    lob_nogil_end(&g);
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
    lob_nogil g;
    lob_nogil_begin(&g, &err);
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
    lob_nogil_end(&g);
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

PyMethodDef lob_timeindex_methods[] = {
    {"ix_build", py_ix_build, METH_VARARGS,
     "ix_build(path, key, block) -> (entries, info): index a sorted line file."},
    {"ix_locate", py_ix_locate, METH_VARARGS,
     "ix_locate(path, key, from, end, t) -> position of the first line with time >= t."},
    {"csv_columns", py_csv_columns, METH_VARARGS,
     "csv_columns(path, span, line0, key, nrows, spec) -> text values per column."},
    {"convert", py_convert, METH_VARARGS,
     "convert(src, dst, key, frame_ns, frame_bytes, level) -> stats: seekable zstd frames."},
    {"head", py_head, METH_VARARGS, "head(path, nbytes) -> bytes: the start of the text."},
    {NULL, NULL, 0, NULL},
};
