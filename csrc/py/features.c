/* features.c -- lobfast._core feature and rolling-window kernels. */
#include "binding.h"

PyMethodDef lob_feature_methods[] = {
    {NULL, NULL, 0, NULL},
};
