"""Bars from the book and trades: time, event and volume buckets (C kernel)."""


def aggregate(*args, **kwargs):
    raise NotImplementedError
