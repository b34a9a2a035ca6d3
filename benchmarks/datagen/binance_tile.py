"""Long Binance raw recordings made by tiling a real one.

:func:`tile` repeats a ``<receive ns> <JSON>`` recording end to end with every time (the
receive time, ``E``, ``T``) shifted by the recording's span and every update id (``U``,
``u``, ``pu``, ``lastUpdateId``) by the span of its depth ids, so the depth stream stays
continuous across copies (spot ``U == prev u + 1``, USD-M ``pu == prev u``); REST snapshots
are kept in the first copy only (a day-long file with one snapshot at its start, as
third-party archives have).  Numbers are rewritten in place, vectorised, so a day of USD-M
(~7 GB) takes seconds plus the writing.

Used by benchmarks/bench_window.py and tests/test_window_book.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np

_FIELD = re.compile(rb'"(E|T|U|u|pu|lastUpdateId)":(\d+)')
_IDS = (b"U", b"u", b"pu", b"lastUpdateId")


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) ASCII digits of non-negative ints, zero-padded."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((values[:, None] // powers) % 10 + 48).astype(np.uint8)


class Tiler:
    """A recording's text, ready to be written as copies ``0, 1, ...`` of itself."""

    def __init__(self, text: bytes) -> None:
        if not text.endswith(b"\n"):
            text += b"\n"
        self.text = text
        starts = np.concatenate([[0], np.flatnonzero(np.frombuffer(text, np.uint8) == 10)[:-1] + 1])
        local = np.array([int(text[s : text.index(b" ", s)]) for s in starts], np.int64)
        fields = []  # (position, width, value, kind): kind 0 receive ns, 1 exchange time, 2 id
        for s, t in zip(starts, local):
            fields.append((int(s), len(str(t)), int(t), 0))
        depth_ids = []
        for m in _FIELD.finditer(text):
            name, digits = m.group(1), m.group(2)
            kind = 2 if name in _IDS else 1
            fields.append((m.start(2), len(digits), int(digits), kind))
        for line in text.split(b"\n"):
            if b'"depthUpdate"' in line:
                ids = {m.group(1): int(m.group(2)) for m in _FIELD.finditer(line)}
                depth_ids.append((ids[b"U"], ids[b"u"], ids.get(b"pu")))
        if not depth_ids:
            raise ValueError("the recording has no depth diffs to chain")
        first, last = depth_ids[0], depth_ids[-1]
        # ids per copy: the first diff of copy c chains to the last diff of copy c - 1
        self.id_step = last[1] - first[2] if first[2] is not None else last[1] + 1 - first[0]
        self.ns_step = int(-(-(int(local[-1]) - int(local[0]) + 1_000_000) // 1_000_000) * 1_000_000)
        f = np.array(fields, np.int64)
        self.pos, self.width, self.value, self.kind = f[:, 0], f[:, 1], f[:, 2], f[:, 3]
        # exchange times: ms, us or ns by their digits
        self.unit = np.where(self.width >= 19, 1, np.where(self.width >= 16, 1_000, 1_000_000))
        snap = [s for s in starts if text.startswith(b'{"lastUpdateId"', text.index(b" ", s) + 1)]
        ends = {int(s): text.index(b"\n", s) + 1 for s in snap}
        self.snapshots = sorted(ends.items())

    def copy(self, c: int) -> bytes:
        """Copy c: times and ids shifted c times; snapshots only in copy 0."""
        buf = np.frombuffer(self.text, np.uint8).copy()
        shift = np.where(self.kind == 2, c * self.id_step, c * self.ns_step // self.unit)
        values = self.value + shift
        for w in np.unique(self.width):
            sel = self.width == w
            v = values[sel]
            if np.any(v >= 10 ** int(w)):
                raise ValueError(f"copy {c}: a {w}-digit number outgrows its width")
            buf[self.pos[sel][:, None] + np.arange(w)] = _digits(v, int(w))
        out = buf.tobytes()
        if c == 0 or not self.snapshots:
            return out
        pieces, at = [], 0
        for s, e in self.snapshots:
            pieces.append(out[at:s])
            at = e
        pieces.append(out[at:])
        return b"".join(pieces)

    def copies(self, n: int) -> Iterator[bytes]:
        for c in range(n):
            yield self.copy(c)


def tile(text: bytes, copies: int) -> bytes:
    """``copies`` copies of a recording as one continuous recording (see the module)."""
    return b"".join(Tiler(text).copies(copies))
