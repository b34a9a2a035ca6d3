/* aggregate.c -- lobfast._core aggregate kernels (filled in with the kernels). */
#include "binding.h"

PyMethodDef lob_aggregate_methods[] = {
    {NULL, NULL, 0, NULL},
};
