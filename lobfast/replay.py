"""Time windows of raw Binance recordings that start with their book.

A window ``[start, end)`` of receive time opens with the book as it stood at ``start``: the
reader is set to the last book checkpoint received before ``start`` (or to the start of the
files when there is none), replays the depth messages from there to ``start`` with the same
sequence rules as a full read, keeping only the book (csrc/core/formats/binance.h), emits
that book as ``SNAPSHOT | RESET`` rows at the window's first line, and then reads the window
exactly as a full read does.  Memory is bounded by the book, not by the replayed span.

Checkpoints (the whole book and the sequence state) are made by one replay of a file, the
first time a window of it needs them, and kept in its ``.lfidx`` sidecar
(:class:`lobfast.sidecar.Checkpoints`): one after each sync from a snapshot and then one
every :data:`CHECKPOINT_EVERY` of receive time while the book is synced.  So a seek-back
replays at most that much data, whatever the spacing of the recording's snapshots.  A
file's checkpoints depend on the files read before it (its book may come from them): they
are kept with the stamps of those files, and rebuilt when the files before it differ.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from typing import Any

import numpy as np

from . import _core
from .errors import LobError, LobWarning
from .reading import cpu_threads, open_part
from .sidecar import Checkpoints, CorruptCheckpoint, source_stamp

# Five minutes of receive time between checkpoints: replaying that much of a busy USD-M
# BTCUSDT stream (about 1,300 level updates/s) takes about 30 ms, so a window's book costs
# tens of milliseconds whatever the time of day, while a day of checkpoints (288 books of a
# few thousand levels, compressed) stays in the tens of MB beside a multi-GB recording.
CHECKPOINT_EVERY = 5 * 60 * 10**9
# A window whose start lies within this much text of the start of the first file replays
# from there (~80 ms for a busy USD-M stream) rather than having that file's checkpoints
# made: a whole replay of the file, which a day-long file takes seconds for.
REPLAY_BYTES = 64 << 20
_ALL_BEFORE = 2**63 - 2  # a window start after every line: the whole file is replayed
_START = np.iinfo(np.int64).min
_END = np.iinfo(np.int64).max


def _fmt(ns: int) -> str:
    return str(np.datetime64(int(ns), "ns"))


class Window:
    """How to read ``[t0, t1)`` of the files ``paths`` (in reading order) with the book at
    ``t0``; ``index`` holds each file's raw :class:`~lobfast.timeindex.FileIndex`, or None for
    a file read from its start (gzip).  :meth:`open_all` restores a reader and yields what
    to open."""

    def __init__(self, paths, index, t0: int, t1: int, *, symbol, on_error: str, max_line: int, every=None) -> None:
        self.t0, self.t1 = t0, t1
        self.symbol, self.on_error, self.max_line = symbol, on_error, max_line
        self.every = CHECKPOINT_EVERY if every is None else int(every)
        self.paths, self.index = list(paths), list(index)
        self._stamps: list[dict | None] = [None] * len(self.paths)
        self._cps: dict[int, Checkpoints] = {}
        self._damaged: set[int] = set()  # files whose kept checkpoints failed a check: rebuilt

    # -- checkpoints
    def _stamp(self, k: int) -> dict:
        if self._stamps[k] is None:
            fi = self.index[k]
            self._stamps[k] = fi.stamp if fi is not None else source_stamp(self.paths[k])
        return self._stamps[k]

    def _params(self, k: int) -> dict[str, Any]:
        before = hashlib.sha1(json.dumps([self._stamp(m) for m in range(k)]).encode()).hexdigest()
        return {
            "every": self.every,
            "symbol": None if self.symbol is None else str(self.symbol).upper(),
            "on_error": self.on_error,
            "max_line": self.max_line,
            "source": self._stamp(k),
            "before": before,
        }

    def checkpoints(self, k: int) -> Checkpoints:
        """File k's checkpoints (an indexed file), loaded or built."""
        if k not in self._cps:
            params = self._params(k)
            cps = None if k in self._damaged else self.index[k].load_checkpoints(params)
            self._cps[k] = cps if cps is not None else self._build(k, params)
        return self._cps[k]

    def _latest(self, k: int, t: int) -> tuple[int, Checkpoints, int] | None:
        """The last checkpoint received at or before t in files k, k-1, ... 0."""
        for m in range(k, -1, -1):
            if self.index[m] is None:
                continue
            cps = self.checkpoints(m)
            i = int(np.searchsorted(cps.table["t"], t, side="right")) - 1
            if i >= 0:
                return m, cps, i
        return None

    def _restore(self, r: _core.Reader, at: tuple[int, Checkpoints, int]) -> bool:
        """Set r to a checkpoint; False (after a warning, and the checkpoints rebuilt) when its
        levels in the sidecar are damaged."""
        m, cps, i = at
        row = cps.table[i]
        try:
            side, price, qty = cps.levels(i)
            state = (int(row["market"]), int(row["last_u"]), int(row["last_ts"]), int(row["last_local"]))
            r.restore(*state, side, price, qty)  # checks every value; r is left fresh when it refuses
        except (CorruptCheckpoint, LobError) as e:
            fi = self.index[m]
            warnings.warn(f"{fi.side}: corrupt checkpoints: {e}; rebuilding them", LobWarning, stacklevel=5)
            del self._cps[m]
            self._damaged.add(m)
            fi.drop_checkpoints()
            return False
        return True

    def _opens(self, at, t1: int, last: int | None = None):
        """(k, path, span, line0) of the files to read from checkpoint ``at`` (or from the
        first file) up to t1 and file ``last``; span None: the whole file."""
        first = 0 if at is None else at[0]
        for k in range(first, len(self.paths) if last is None else last + 1):
            fi = self.index[k]
            if fi is None:
                yield k, self.paths[k], None, 0
                continue
            if fi.rows == 0 or (t1 <= fi.first_ts and k != first):
                continue
            lo = int(at[1].table["t"][at[2]]) if at is not None and k == first else _START
            hi = min(t1, fi.last_ts + 1) if fi.info["bad_frame"] >= 0 and t1 == _END else t1
            if lo == _START and hi == _END:
                yield k, fi.path, None, 0
                continue
            try:
                span = fi.lookup(lo, hi)[1]
            except LobError as e:
                warnings.warn(f"{fi.path} has no usable time index ({e}); reading all of it", LobWarning, stacklevel=5)
                yield k, fi.path, None, 0
                continue
            if span is not None:
                yield k, fi.path, span[0], span[1]

    def _reader(self, start: int, end, every: int = 0) -> _core.Reader:
        return _core.Reader(
            "binance",
            symbol=self.symbol,
            on_error=self.on_error,
            start=start,
            end=end,
            max_line=self.max_line,
            book=True,
            checkpoint_every=every,
            threads=cpu_threads(None),
        )

    def _build(self, k: int, params: dict[str, Any]) -> Checkpoints:
        """Replay up to the end of file k (from the latest checkpoint of the files before it),
        recording file k's checkpoints, and keep them with its index."""
        while True:
            at = self._latest(k - 1, _END) if k > 0 else None
            r = self._reader(_ALL_BEFORE, None, self.every)
            if at is not None and not self._restore(r, at):
                continue
            try:
                for _, path, span, line0 in self._opens(at, _END, k):
                    r.checkpoints()  # those of the files before k are kept already
                    open_part(r, path, span, line0)
                    r.pump()
            finally:
                r.close()
            cps = Checkpoints.from_reader(params, *r.checkpoints())
            self.index[k].keep_checkpoints(cps)
            return cps

    def _near_start(self, t: int) -> bool:
        """Whether the first file holds at most REPLAY_BYTES of text before time t (by its
        index entries: no call into the index)."""
        before = self.index[0].text_before(t)
        return before is not None and before <= REPLAY_BYTES

    # -- the window
    def open_all(self, r: _core.Reader):
        """Restore r (a ``book=True`` reader of [t0, t1)) to the last checkpoint before t0
        and yield (path, span, line0) of what it must read, in order."""
        while True:
            at = None
            # a checkpoint before t0 is in an indexed file starting before t0 (gzip files are
            # read from their start: never resumed inside)
            last = [k for k, fi in enumerate(self.index) if fi is not None and fi.rows and fi.first_ts <= self.t0]
            if last and not (last[-1] == 0 and self._near_start(self.t0)):
                at = self._latest(last[-1], self.t0)
            if at is None or self._restore(r, at):
                break
        for _, path, span, line0 in self._opens(at, self.t1):
            yield path, span, line0


def window_stats(stats: dict[str, Any], t0: int, t1: int) -> dict[str, Any]:
    """Add ``unsynced_until`` to a window's stats: None when the depth opens with the book at
    ``t0``; else the receive time (ns) of the line that brought the first book, or the
    window's end (or the last line's time + 1) when none came."""
    if stats.get("book_at_start") == 1:
        stats["unsynced_until"] = None
    elif stats.get("synced_at", -1) >= 0:
        stats["unsynced_until"] = int(stats["synced_at"])
    else:
        stats["unsynced_until"] = int(t1) if t1 != _END else int(stats.get("last_receive_time", 0)) + 1
    return stats


def warn_unsynced(stats: dict[str, Any], t0: int, t1: int, stacklevel: int) -> None:
    """A LobWarning naming the window when its depth does not open with the book (unless
    the window starts with the files' first line, as a full read does)."""
    window = f"[{_fmt(t0)}, {_fmt(t1) if t1 != _END else 'end'})"
    if stats.get("book_at_start", -1) == -1:
        msg = f"window {window}: no line of the files was received in it; it is empty"
    elif stats["book_at_start"] == 1 or stats.get("replayed_lines", 0) == 0:
        return  # the book at start, or a window starting with the data: as a full read
    elif stats["unsynced_until"] is not None and stats.get("synced_at", -1) >= 0:
        msg = (
            f"window {window}: the book is not known at its start (no snapshot before it in the files, or a "
            f"sequence gap since the last one); its depth starts at the first snapshot inside it, received at "
            f"{_fmt(stats['unsynced_until'])} (stats['unsynced_until'])"
        )
    else:
        msg = (
            f"window {window}: the book is not known at its start (no snapshot before it in the files, or a "
            "sequence gap since the last one) and no snapshot inside it syncs one: it has no book"
        )
    warnings.warn(msg, LobWarning, stacklevel=stacklevel)


__all__ = ["CHECKPOINT_EVERY", "Window", "warn_unsynced", "window_stats"]
