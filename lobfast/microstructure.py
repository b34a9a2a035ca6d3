"""Microstructure features from the book and trades in one C pass (see :func:`features`)."""


def features(*args, **kwargs):
    raise NotImplementedError
