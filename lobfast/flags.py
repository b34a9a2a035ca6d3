"""Bit flags of ``DepthEvents.flags`` (mirrors the C core's values, checked at import)."""

from __future__ import annotations

import enum

from . import _core


class Flags(enum.IntFlag):
    """What a depth row means for the book.

    SNAPSHOT
        The row belongs to a snapshot (REST body or Tardis ``is_snapshot``).
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


if (Flags.SNAPSHOT, Flags.RESET, Flags.GAP, Flags.END_OF_MESSAGE) != (1, 2, 4, 8):
    raise ImportError("lobfast._core flag values changed; rebuild the extension")
