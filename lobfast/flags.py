"""Bit flags of ``DepthEvents.flags`` (mirrors the C core's values, checked at import)."""

from __future__ import annotations

import enum
from typing import Any

import numpy as np

from . import _core


class Flags(enum.IntFlag):
    """What a depth row means for the book.

    SNAPSHOT
        The row belongs to a snapshot (REST body, Tardis ``is_snapshot``, or the book a
        time window of a Binance recording opens with).
    RESET
        Clear the book before applying this row (first row of a snapshot).
    GAP
        A sequence break happened before this row: the book is unknown until the next RESET.
        Binance readers emit it on a row with ``side == 0`` (no level changes).
    END_OF_MESSAGE
        Last row of an exchange message: the book is consistent after it.
    """

    SNAPSHOT = _core.FLAG_SNAPSHOT
    RESET = _core.FLAG_RESET
    GAP = _core.FLAG_GAP
    END_OF_MESSAGE = _core.FLAG_END_OF_MESSAGE

    @classmethod
    def names(cls, flags: Any) -> np.ndarray:
        """The names in each value of a flags column, e.g. ``"SNAPSHOT|END_OF_MESSAGE"`` (``""``
        for none), as an object array of the same shape. ``str()`` of an IntFlag is its number
        on Python 3.11+; this is how a table shows names::

            df = depth.to_pandas()
            df["flags"] = lobfast.Flags.names(df["flags"])
        """
        a = np.asarray(flags)
        if a.dtype.kind not in "iub":
            raise TypeError(f"flags must be integers, got dtype {a.dtype}")
        known = sum(m.value for m in cls)
        if a.size and (int(a.min()) < 0 or (a.astype(np.int64) & ~known).any()):
            raise ValueError(f"flags hold bits that are not lobfast.Flags (known: {known:#x})")
        table = np.array(["|".join(m.name for m in cls if v & m) for v in range(known + 1)], dtype=object)
        return table[a.astype(np.intp)]


if (Flags.SNAPSHOT, Flags.RESET, Flags.GAP, Flags.END_OF_MESSAGE) != (1, 2, 4, 8):
    raise ImportError("lobfast._core flag values changed; rebuild the extension")
