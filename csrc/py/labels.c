/* labels.c -- lobfast._core labels kernels (filled in with the kernels). */
#include "binding.h"

PyMethodDef lob_label_methods[] = {
    {NULL, NULL, 0, NULL},
};
