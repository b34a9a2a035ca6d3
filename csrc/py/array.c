/* array.c -- C-grown buffers to NumPy without copying, in one audited place. */
#include "binding.h"

#include "core/blocks.h"

#include <stdlib.h>

#define LOB_CAPSULE_NAME "lobfast.buffer"

/* The buffer a capsule holds, or NULL (reported: destructors must not raise). */
static void *
capsule_buffer(PyObject *capsule)
{
    void *p = PyCapsule_GetPointer(capsule, LOB_CAPSULE_NAME);
    if (p == NULL) {
        PyErr_WriteUnraisable(capsule);
    }
    return p;
}

static void
capsule_free(PyObject *capsule)
{
    free(capsule_buffer(capsule)); /* the core allocated it with malloc/realloc */
}

/* The destructor of a capsule over a block of core/blocks.h: its size in the context lets a
 * large one be kept for the next large output (of a kernel, or a reader's next chunk). */
static void
block_capsule_free(PyObject *capsule)
{
    void *p = capsule_buffer(capsule);
    if (p != NULL) {
        lob_block_free(p, (size_t)(uintptr_t)PyCapsule_GetContext(capsule));
    }
}

static int
typenum_of(char type)
{
    switch (type) {
    case LOB_I8: return NPY_INT8;
    case LOB_U8: return NPY_UINT8;
    case LOB_I64: return NPY_INT64;
    case LOB_BOOL: return NPY_BOOL;
    default: return NPY_FLOAT64;
    }
}

/* Free buf as the capsule `destructor` would (block_capsule_free: a block of `bytes`). */
static void
release(void *buf, PyCapsule_Destructor destructor, size_t bytes)
{
    if (destructor == block_capsule_free) {
        lob_block_free(buf, bytes);
    }
    else {
        free(buf);
    }
}

/* An array over buf (n x width of type), which the array's base frees with `destructor`
 * (context: the block's size in bytes, for block_capsule_free). */
static PyObject *
array_over(void *buf, Py_ssize_t n, Py_ssize_t width, int matrix, char type,
           PyCapsule_Destructor destructor, size_t bytes)
{
    int nd = matrix || width > 1 ? 2 : 1;
    npy_intp dims[2] = {n, width};
    int typenum = typenum_of(type);
    if (buf == NULL || n == 0) {
        release(buf, destructor, bytes);
        return PyArray_EMPTY(nd, dims, typenum, 0);
    }
    PyArray_Descr *descr = PyArray_DescrFromType(typenum); /* stolen below */
    PyObject *arr =
        PyArray_NewFromDescr(&PyArray_Type, descr, nd, dims, NULL, buf, NPY_ARRAY_CARRAY, NULL);
    if (arr == NULL) {
        release(buf, destructor, bytes);
        return NULL;
    }
    PyObject *cap = PyCapsule_New(buf, LOB_CAPSULE_NAME, destructor);
    if (cap == NULL || PyCapsule_SetContext(cap, (void *)(uintptr_t)bytes) < 0) {
        Py_DECREF(arr); /* the array does not own buf */
        if (cap != NULL) {
            PyCapsule_SetDestructor(cap, NULL);
            Py_DECREF(cap);
        }
        release(buf, destructor, bytes);
        return NULL;
    }
    /* SetBaseObject steals `cap` even when it fails; then the capsule frees buf */
    if (PyArray_SetBaseObject((PyArrayObject *)arr, cap) < 0) {
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

PyObject *
lobpy_array_from_owned(void *buf, Py_ssize_t n, Py_ssize_t width, int matrix, char type)
{
    return array_over(buf, n, width, matrix, type, capsule_free, 0);
}

PyObject *
lobpy_table_to_dict(lob_table *t)
{
    void *bufs[LOB_MAX_COLS];
    size_t bytes[LOB_MAX_COLS];
    Py_ssize_t n = (Py_ssize_t)t->n;
    lob_table_detach(t, bufs, bytes);
    PyObject *d = PyDict_New();
    int i = 0;
    if (d == NULL) {
        goto fail;
    }
    for (; i < t->ncol; i++) {
        const lob_column *c = &t->schema[i];
        PyObject *a =
            array_over(bufs[i], n, c->width, c->matrix, c->type, block_capsule_free, bytes[i]);
        bufs[i] = NULL;
        if (a == NULL || PyDict_SetItemString(d, c->name, a) < 0) {
            Py_XDECREF(a);
            i++;
            goto fail;
        }
        Py_DECREF(a);
    }
    return d;
fail:
    for (; i < t->ncol; i++) {
        lob_block_free(bufs[i], bytes[i]);
    }
    Py_XDECREF(d);
    return NULL;
}

PyObject *
lobpy_schema_list(const lob_column *schema, int ncol)
{
    PyObject *l = PyList_New(ncol);
    if (l == NULL) {
        return NULL;
    }
    for (int i = 0; i < ncol; i++) {
        PyObject *item =
            Py_BuildValue("(sCi)", schema[i].name, (int)schema[i].type, (int)schema[i].width);
        if (item == NULL) {
            Py_DECREF(l);
            return NULL;
        }
        PyList_SET_ITEM(l, i, item);
    }
    return l;
}

/* The dtype(s) lobpy_in_strict() expects, as text for its errors.  New reference or NULL. */
static PyObject *
strict_types(int typenum, int flags)
{
    if (flags & LOBPY_IN_OR_FLOAT32) {
        return PyUnicode_FromString("float32 or float64");
    }
    PyArray_Descr *d = PyArray_DescrFromType(typenum);
    PyObject *text = d != NULL ? PyObject_Str((PyObject *)d) : NULL;
    Py_XDECREF(d);
    return text;
}

PyArrayObject *
lobpy_in_strict(PyObject *obj, int typenum, int ndim, Py_ssize_t n, int flags, const char *name)
{
    PyArrayObject *a = (PyArrayObject *)obj;
    int write = flags & LOBPY_IN_WRITABLE;
    if (PyArray_Check(obj) &&
        (PyArray_TYPE(a) == typenum ||
         (flags & LOBPY_IN_OR_FLOAT32 && PyArray_TYPE(a) == NPY_FLOAT32)) &&
        PyArray_NDIM(a) == ndim && PyArray_IS_C_CONTIGUOUS(a) && PyArray_ISALIGNED(a) &&
        !PyArray_ISBYTESWAPPED(a) && (!write || PyArray_ISWRITEABLE(a))) {
        if (n >= 0 && PyArray_DIM(a, 0) != n) {
            PyErr_Format(PyExc_ValueError, "%s has %zd rows, the other columns %zd", name,
                         (Py_ssize_t)PyArray_DIM(a, 0), n);
            return NULL;
        }
        return a;
    }
    PyObject *want = strict_types(typenum, flags);
    if (want == NULL) {
        return NULL;
    }
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError,
                     "%s must be a NumPy array, not %s: a %s%d-D C-contiguous aligned native %U "
                     "ndarray, read in place",
                     name, Py_TYPE(obj)->tp_name, write ? "writable " : "", ndim, want);
    }
    else {
        /* an input gets a hint; an output must be the caller's own array, not a copy */
        PyErr_Format(PyExc_TypeError,
                     "%s must be a %s%d-D C-contiguous aligned native %U array (got %S, %d-D%s%s%s)"
                     "%s%s%s",
                     name, write ? "writable " : "", ndim, want, (PyObject *)PyArray_DESCR(a),
                     PyArray_NDIM(a), PyArray_IS_C_CONTIGUOUS(a) ? "" : ", not contiguous",
                     PyArray_ISALIGNED(a) ? "" : ", not aligned",
                     write && !PyArray_ISWRITEABLE(a) ? ", read-only" : "",
                     write ? "" : "; use np.ascontiguousarray(", write ? "" : name,
                     write ? "" : ", dtype=...)");
    }
    Py_DECREF(want);
    return NULL;
}

PyObject *
lobpy_in_converted(PyObject *obj, int typenum, int ndim, Py_ssize_t n, const char *name)
{
    PyArray_Descr *want = PyArray_DescrFromType(typenum);
    if (want == NULL) {
        return NULL;
    }
    PyObject *arr = PyArray_FromAny(obj, want, 0, 0, NPY_ARRAY_IN_ARRAY, NULL); /* steals want */
    if (arr == NULL) {
        if (PyErr_ExceptionMatches(PyExc_TypeError) || PyErr_ExceptionMatches(PyExc_ValueError)) {
            PyObject *type, *value, *tb;
            PyErr_Fetch(&type, &value, &tb);
            PyErr_Format(PyExc_TypeError, "%s must be an array of %s: %S", name,
                         typenum == NPY_INT64   ? "int64"
                         : typenum == NPY_INT32 ? "int32"
                         : typenum == NPY_BOOL  ? "bool"
                                                : "float64",
                         value ? value : Py_None);
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(tb);
        }
        return NULL;
    }
    PyArrayObject *a = (PyArrayObject *)arr;
    if (PyArray_NDIM(a) != ndim) {
        PyErr_Format(PyExc_ValueError, "%s must be %d-D, got %d-D", name, ndim, PyArray_NDIM(a));
        Py_DECREF(arr);
        return NULL;
    }
    if (n >= 0 && PyArray_DIM(a, 0) != n) {
        PyErr_Format(PyExc_ValueError, "%s has %zd rows, expected %zd", name,
                     (Py_ssize_t)PyArray_DIM(a, 0), n);
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

PyObject *
lobpy_out(Py_ssize_t n, Py_ssize_t width, int typenum)
{
    npy_intp dims[2] = {n, width};
    /* A kernel's output is written once, so its cost is page faults on fresh memory (on a
     * VM a fault in the host too).  A large one is a block of core/blocks.h: a freed one of
     * about its size whose pages are in place already, or a new 2 MiB-aligned mapping. */
    const size_t bytes = (size_t)n * (size_t)(width > 0 ? width : 1) * sizeof(double);
    if ((typenum == NPY_FLOAT64 || typenum == NPY_INT64) && n > 0 && bytes >= LOB_BLOCK_MIN) {
        size_t got;
        void *p = lob_block_alloc(bytes, &got);
        if (p == NULL) {
            return PyErr_NoMemory();
        }
        return array_over(p, n, width > 0 ? width : 1, width > 0,
                          typenum == NPY_INT64 ? LOB_I64 : LOB_F64, block_capsule_free, got);
    }
    return PyArray_EMPTY(width > 0 ? 2 : 1, dims, typenum, 0);
}

PyObject *
lobpy_out_given(PyObject *obj, int typenum, Py_ssize_t n, const char *name)
{
    if (obj == NULL || obj == Py_None) {
        return lobpy_out(n, 0, typenum);
    }
    if (PyArray_Check(obj) && PyArray_NDIM((PyArrayObject *)obj) == 1 &&
        PyArray_DIM((PyArrayObject *)obj, 0) != n) {
        PyErr_Format(PyExc_ValueError, "%s has %zd rows, expected %zd (one per row of the input)",
                     name, (Py_ssize_t)PyArray_DIM((PyArrayObject *)obj, 0), n);
        return NULL;
    }
    PyArrayObject *a = lobpy_in_strict(obj, typenum, 1, n, LOBPY_IN_WRITABLE, name);
    if (a == NULL) {
        /* a wrong output is a bad value of out=, whatever was wrong with it */
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyObject *type, *value, *tb;
            PyErr_Fetch(&type, &value, &tb);
            PyErr_SetObject(PyExc_ValueError, value);
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(tb);
        }
        return NULL;
    }
    Py_INCREF(a);
    return (PyObject *)a;
}

int
lobpy_out_apart(PyObject *out, const char *out_name, PyObject *in, const char *in_name)
{
    if (out == NULL || in == NULL) {
        return 0;
    }
    PyArrayObject *o = (PyArrayObject *)out, *i = (PyArrayObject *)in;
    const char *o0 = PyArray_BYTES(o), *i0 = PyArray_BYTES(i);
    const char *o1 = o0 + PyArray_NBYTES(o), *i1 = i0 + PyArray_NBYTES(i);
    if (o0 < i1 && i0 < o1) {
        PyErr_Format(PyExc_ValueError,
                     "%s shares memory with %s: the kernel reads %s while it writes %s, so pass "
                     "a separate array",
                     out_name, in_name, in_name, out_name);
        return -1;
    }
    return 0;
}
