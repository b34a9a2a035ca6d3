"""Chronological train / validation / test splits with purge and embargo, and walk-forward folds.

Rows are never shuffled: each part is a contiguous stretch of time, and a part starts at a
*boundary* (int64 ns), the time of its first row. A row belongs to the part whose time range
holds its ``ts`` (rows with the same ``ts`` always fall in the same part).

Two things leak across a boundary, and both are removed here:

- **Purge.** A row's label is computed from data up to ``known_at`` (see
  :class:`lobfast.LabelFrame`). A row of one part whose label is known at or after the start
  of the next part (``known_at >= boundary``) was labelled with data from that part: it is
  dropped (``purged``). This is exactly the crossing that :func:`lobfast.leakage_report`
  flags (``ts < boundary <= known_at``), so the kept rows of a split pass that check.
- **Embargo.** Features look back (rolling windows, EMAs): the first rows after a boundary
  are computed partly from the previous part. Rows of a part whose ``ts`` is within
  ``embargo`` after its boundary are dropped (``embargoed``).

Rows whose label is unknown (``known_at == -1``, a NaN label) are dropped as well
(``unlabelled``). Each dropped row is counted once, in that order of precedence:
unlabelled, purged, embargoed.

Horizons and embargoes follow :mod:`lobfast.labels`: an ``int`` counts rows, a duration
(``"10s"``, ``"250ms"``, ``datetime.timedelta``, ``numpy.timedelta64``) is a time span.

Examples
--------
>>> import numpy as np
>>> from lobfast import split
>>> ts = np.arange(20) * 1_000_000_000  # one row a second
>>> s = split.chronological(ts, (0.6, 0.2, 0.2), known_at=2)  # labels 2 rows ahead
>>> s.boundaries.tolist()
[12000000000, 16000000000]
>>> s.train.tolist(), s.val.tolist(), s.test.tolist()
([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [12, 13], [16, 17])
>>> s.purged, s.unlabelled  # rows 10, 11, 14, 15 cross a boundary; 18, 19 have no label
(4, 2)
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .frame import LabelFrame, _time_column
from .times import parse_horizon, to_ns

__all__ = ["Split", "chronological", "cut", "panel_walk_forward", "walk_forward"]

_EMPTY = np.empty(0, np.int64)


@dataclass(repr=False)
class Split:
    """Row indices of one chronological split, and what was dropped to keep it honest.

    Attributes
    ----------
    train, val, test : sorted int64 row indices into the ``ts`` that was split (``val`` is
        empty for a two-part split or a walk-forward fold without validation).
    boundaries : int64 ns, where the parts after train start: ``[val start, test start]``,
        or ``[test start]`` without a validation part. Pass the Split itself to
        :func:`lobfast.leakage_report` as ``splits`` (or these with ``unit="ns"``).
    purged : rows dropped because their label's horizon crosses into the next part.
    embargoed : rows dropped because they lie within the embargo after a boundary.
    unlabelled : rows dropped because their label is unknown (``known_at == -1``).
    rows : all kept rows, sorted (property).
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    boundaries: np.ndarray
    purged: int = 0
    embargoed: int = 0
    unlabelled: int = 0

    @property
    def rows(self) -> np.ndarray:
        """All kept rows (train, val and test), sorted."""
        return np.concatenate([self.train, self.val, self.test])

    def __repr__(self) -> str:
        def when(ns: Any) -> str:
            return np.datetime_as_string(np.datetime64(int(ns), "ns"), unit="auto")

        names = ("val", "test") if len(self.boundaries) > 1 else ("test",)
        sizes = f"train {len(self.train)}" + (f", val {len(self.val)}" if len(names) == 2 else "")
        starts = ", ".join(f"{n} from {when(b)}" for n, b in zip(names, self.boundaries))
        return (
            f"Split({sizes}, test {len(self.test)} rows; {starts}; "
            f"dropped {self.purged} purged, {self.embargoed} embargoed, {self.unlabelled} unlabelled)"
        )


# ------------------------------------------------------------------------------ inputs
def _sorted_ts(ts: Any) -> np.ndarray:
    t = _time_column(ts)
    bad = np.flatnonzero(t[1:] < t[:-1])
    if len(bad):
        i = int(bad[0]) + 1
        raise ValueError(f"ts must be sorted: row {i} ({t[i]}) is earlier than row {i - 1} ({t[i - 1]})")
    return t


def _usable(rows: Any, n: int) -> np.ndarray:
    if rows is None:
        return np.arange(n, dtype=np.int64)
    r = np.asarray(rows)
    if r.dtype == bool:
        if r.shape != (n,):
            raise ValueError(f"rows as a mask must have one entry per row of ts ({n}), got shape {r.shape}")
        return np.flatnonzero(r).astype(np.int64)
    if r.ndim != 1 or (len(r) and r.dtype.kind not in "iu"):
        raise ValueError(f"rows must be a boolean mask or an array of row indices, got {r.dtype} {r.shape}")
    if len(r) and (r.min() < 0 or r.max() >= n):
        raise ValueError(f"rows holds indices outside 0 .. {n - 1}")
    return np.unique(r.astype(np.int64))


def _known(known_at: Any, ts: np.ndarray) -> np.ndarray | None:
    """Per row, when its label is known (int64 ns), -1 when unknown; None: no labels given."""
    if known_at is None:
        return None
    n = len(ts)
    if isinstance(known_at, LabelFrame):
        if len(known_at) != n or not np.array_equal(known_at.ts, ts):
            raise ValueError("the LabelFrame must have the same ts as the rows being split")
        cols = [known_at.known_at[c] for c in known_at if c in known_at.known_at]
        if not cols:
            raise ValueError("the LabelFrame has no known_at columns: pass known_at times or a horizon")
        k = np.vstack(cols)
        return np.where((k < 0).any(axis=0), -1, k.max(axis=0))
    if isinstance(known_at, (str, _dt.timedelta, np.timedelta64, int, np.integer)):
        rows, ns = parse_horizon(known_at, "known_at (a horizon)")
        if rows:
            out = np.full(n, -1, np.int64)
            out[: max(n - rows, 0)] = ts[rows:]
            return out
        end = ts + ns
        return np.where(end <= ts[-1], end, -1) if n else end
    k = _time_column(known_at)
    if len(k) != n:
        raise ValueError(f"known_at has {len(k)} rows, ts {n}")
    return np.where(k < 0, -1, k)


def _fractions(fractions: Sequence[float]) -> np.ndarray:
    f = np.asarray(fractions, dtype=np.float64)
    if f.ndim != 1 or len(f) not in (2, 3):
        raise ValueError(f"fractions must be 3 (train, val, test) or 2 (train, test) numbers, got {fractions!r}")
    if not (np.isfinite(f).all() and (f > 0).all()) or abs(f.sum() - 1) > 1e-9:
        raise ValueError(f"fractions must be positive and sum to 1, got {fractions!r} (sum {f.sum():.12g})")
    return f


def _size(x: Any, m: int, name: str, minimum: int) -> int | None:
    """A part size: int rows, or a float fraction of the m usable rows."""
    if x is None:
        return None
    if isinstance(x, (bool, np.bool_)):
        raise ValueError(f"{name} must be a number of rows or a fraction, not {x!r}")
    if isinstance(x, (int, np.integer)):
        size = int(x)
    elif isinstance(x, (float, np.floating)) and 0 <= x < 1:
        size = int(round(float(x) * m))
    else:
        raise ValueError(f"{name} must be a number of rows (int) or a fraction in [0, 1), not {x!r}")
    if size < minimum:
        raise ValueError(f"{name} must be at least {minimum} row(s), got {x!r} ({size} of {m} usable rows)")
    return size


# ------------------------------------------------------------------------------ core
def _assemble(
    ts: np.ndarray,
    cand: np.ndarray,
    bounds: np.ndarray,
    known: np.ndarray | None,
    emb: tuple[int, int],
) -> tuple[list[np.ndarray], int, int, int]:
    """Parts of the candidate rows ``cand`` cut at ``bounds``, purged and embargoed."""
    t = ts[cand]
    part = np.searchsorted(bounds, t, side="right")
    keep = np.ones(len(cand), bool)
    unlabelled = purged = embargoed = 0
    if known is not None:
        k = known[cand]
        unknown = k < 0
        following = bounds[np.minimum(part, len(bounds) - 1)]
        cross = ~unknown & (part < len(bounds)) & (k >= following)
        keep = ~unknown & ~cross
        unlabelled, purged = int(unknown.sum()), int(cross.sum())
    emb_rows, emb_ns = emb
    if emb_rows or emb_ns:
        start = bounds[np.maximum(part - 1, 0)]
        if emb_ns:
            late = t - start < emb_ns
        else:
            late = cand < np.searchsorted(ts, start, side="left") + emb_rows
        drop = keep & (part > 0) & late
        embargoed = int(drop.sum())
        keep &= ~drop
    return [cand[keep & (part == p)] for p in range(len(bounds) + 1)], purged, embargoed, unlabelled


def _split(ts, cand, bounds, known, emb) -> Split:
    bounds = np.asarray(bounds, dtype=np.int64)
    parts, purged, embargoed, unlabelled = _assemble(ts, cand, bounds, known, emb)
    if len(parts) == 2:
        parts = [parts[0], _EMPTY.copy(), parts[1]]
    return Split(*parts, boundaries=bounds, purged=purged, embargoed=embargoed, unlabelled=unlabelled)


# ------------------------------------------------------------------------------ public
def chronological(
    ts: Any,
    fractions: Sequence[float] = (0.6, 0.2, 0.2),
    *,
    known_at: Any = None,
    embargo: Any = 0,
    rows: Any = None,
) -> Split:
    """Train / validation / test by time, purged and embargoed.

    Parameters
    ----------
    ts : sorted row times, int64 ns or datetime64 (ties allowed).
    fractions : 3 fractions (train, val, test) or 2 (train, test; ``val`` is then empty),
        positive, summing to 1. The cuts fall at these fractions of the usable rows
        (``rows``), counted in rows; a boundary is the ``ts`` of the first row after a cut,
        and rows tied with it move to the later part.
    known_at : when each row's label is known, to purge horizons crossing a boundary:

        - an int64 ns array (``-1`` = unknown label, as in ``LabelFrame.known_at``);
        - a :class:`lobfast.LabelFrame`: all its labels at once; a row is purged when any
          of its labels crosses, and unlabelled when any of them is unknown (pass
          ``lf[["name"]]`` to split on one label);
        - a horizon: ``int`` rows (known at ``ts[i + h]``) or a duration (known at
          ``ts[i] + h``); rows whose horizon runs past the last row are unlabelled, as
          :mod:`lobfast.labels` leaves them NaN;
        - None: nothing is purged.
    embargo : drop the rows of val and test that are this close after their boundary:
        ``int`` rows (the first ``embargo`` rows of ``ts`` from the boundary) or a duration
        (``ts < boundary + embargo``). 0 = none.
    rows : the usable rows, a boolean mask or an index array (e.g. the rows with a valid
        feature window); the others are in no part and counted nowhere.

    Returns
    -------
    :class:`Split`

    Examples
    --------
    >>> import numpy as np
    >>> ts = np.arange(10) * 1_000_000_000
    >>> s = chronological(ts, (0.5, 0.5), known_at="1s", embargo=1)
    >>> s.train.tolist(), s.test.tolist(), s.purged, s.embargoed, s.unlabelled
    ([0, 1, 2, 3], [6, 7, 8], 1, 1, 1)
    """
    t = _sorted_ts(ts)
    f = _fractions(fractions)
    cand = _usable(rows, len(t))
    m = len(cand)
    if not m:
        raise ValueError("no usable rows to split")
    known = _known(known_at, t)
    emb = parse_horizon(embargo, "embargo", allow_zero=True)
    cuts = [int(round(c * m)) for c in np.cumsum(f)[:-1]]
    bounds = [int(t[cand[c]]) if c < m else int(t[-1]) + 1 for c in cuts]
    return _split(t, cand, bounds, known, emb)


def walk_forward(
    ts: Any,
    n_splits: int,
    *,
    train: Any = None,
    test: Any = None,
    val: Any = 0.0,
    known_at: Any = None,
    embargo: Any = 0,
    expanding: bool = True,
    rows: Any = None,
) -> list[Split]:
    """Walk-forward folds: consecutive test blocks moving forward, training on the past only.

    Sizes count usable rows (``rows``, default all): an ``int`` is rows, a float in
    ``[0, 1)`` a fraction of all usable rows. With ``T`` rows per test block, ``V`` rows of
    validation and ``W`` rows of training:

    - ``test`` (``T``): default ``(N - V - W) // n_splits`` when ``train`` is given, else
      ``(N - V) // (n_splits + 1)`` (the first training window then about as long as a block).
    - The test blocks are consecutive and, unless both ``train`` and ``test`` are given,
      end at the last usable row (the few rows left over by the division join the first
      training window). With both given, the first block starts right after the first
      ``W + V`` rows, and rows after the last block are unused.
    - Fold k: test = block k; val = the ``V`` rows just before it (none when ``val=0``);
      train = every row before val from the first row (``expanding=True``), or the ``W``
      rows just before val (``expanding=False``, a rolling window; ``W`` defaults to the
      first fold's training rows).

    Each fold is then purged and embargoed as in :func:`chronological`: train rows whose
    label is known at or after the start of val (or of test, without val), val rows whose
    label is known at or after the start of test, unlabelled rows, and the rows within the
    embargo after each boundary are dropped. The end of a test block is not a boundary:
    rows after it belong to no part of that fold. Blocks are cut by row count and assigned
    by time, so rows with tied ``ts`` stay together.

    Parameters
    ----------
    ts, known_at, embargo, rows : as in :func:`chronological`.
    n_splits : number of folds (test blocks), >= 1.
    train, test, val : sizes, as above.
    expanding : expanding (True) or rolling (False) training window.

    Returns
    -------
    list of :class:`Split`, one per fold, in time order.

    Examples
    --------
    >>> import numpy as np
    >>> folds = walk_forward(np.arange(12), 3, known_at=1)
    >>> [(f.train.tolist(), f.test.tolist()) for f in folds]
    [([0, 1], [3, 4, 5]), ([0, 1, 2, 3, 4], [6, 7, 8]), ([0, 1, 2, 3, 4, 5, 6, 7], [9, 10])]
    >>> [f.purged for f in folds], folds[-1].unlabelled
    ([1, 1, 1], 1)
    """
    t = _sorted_ts(ts)
    cand = _usable(rows, len(t))
    known = _known(known_at, t)
    emb = parse_horizon(embargo, "embargo", allow_zero=True)
    plan = _fold_times(t[cand], n_splits, train, test, val, expanding)
    return [_cut(t, cand, fold, known, emb) for fold in plan]


def _fold_times(
    tc: np.ndarray, n_splits: Any, train: Any, test: Any, val: Any, expanding: bool
) -> list[tuple[int, list[int], int | None]]:
    """Per fold, the time its first training row may have, its boundaries (val start, test
    start) and the time its test block ends before (None: the end of the data), cut by
    counting the sorted usable times ``tc``."""
    if isinstance(n_splits, (bool, np.bool_)) or not isinstance(n_splits, (int, np.integer)) or n_splits < 1:
        raise ValueError(f"n_splits must be a positive int, not {n_splits!r}")
    m = len(tc)
    v = _size(val, m, "val", 0) or 0
    w = _size(train, m, "train", 1)
    size = _size(test, m, "test", 1)
    if size is None:
        free = m - v - (w or 0)
        size = free // (n_splits if w is not None else n_splits + 1)
        if size < 1:
            raise ValueError(f"{m} usable rows are too few for {n_splits} test blocks after {v + (w or 0)} rows")
        first = m - n_splits * size
    elif w is not None:
        first = w + v
    else:
        first = m - n_splits * size
    if first + n_splits * size > m:
        raise ValueError(
            f"{n_splits} test blocks of {size} rows after {first} rows need {first + n_splits * size} "
            f"usable rows, there are {m}"
        )
    if w is None:
        w = first - v
    if first - v < 1:
        raise ValueError(f"no rows left to train on before the first test block ({first} rows before it, val {v})")
    plan = []
    for k in range(n_splits):
        s = first + k * size
        e = s + size
        lo = 0 if expanding else max(s - v - w, 0)
        bounds = ([int(tc[s - v])] if v else []) + [int(tc[s])]
        plan.append((int(tc[lo]), bounds, int(tc[e]) if e < m else None))
    return plan


def _cut(t: np.ndarray, cand: np.ndarray, fold: tuple[int, list[int], int | None], known, emb) -> Split:
    """The fold of the usable rows ``cand`` of ``t`` at the times of ``fold`` (:func:`_fold_times`)."""
    lo, bounds, end = fold
    tc = t[cand]
    region = cand[(tc >= lo) & ((tc < end) if end is not None else True)]
    return _split(t, region, bounds, known, emb)


def panel_walk_forward(
    ts: Mapping[str, Any],
    n_splits: int,
    *,
    train: Any = None,
    test: Any = None,
    val: Any = 0.0,
    known_at: Any = None,
    embargo: Any = 0,
    expanding: bool = True,
    rows: Mapping[str, Any] | None = None,
) -> dict[str, list[Split]]:
    """Walk-forward folds for many symbols at the same split times, to train one pooled
    model per fold (:func:`lobfast.train.walk_forward` with several symbols).

    The fold times are those :func:`walk_forward` cuts from all the symbols' usable row
    times together (sizes count the rows of every symbol); each symbol's rows are then cut
    at these times and purged and embargoed on their own, as :func:`walk_forward` does.  So
    fold ``k`` has the same ``boundaries`` for every symbol, and no symbol trains on a row
    whose label is known at or after the fold's validation or test start.

    Parameters
    ----------
    ts : ``{symbol: sorted row times}`` (int64 ns or datetime64).
    known_at : a horizon (int rows or a duration, the same for every symbol), ``{symbol:
        known_at}`` (as :func:`chronological` takes it; a symbol left out is not purged) or None.
    rows : ``{symbol: usable rows}`` (a symbol left out: all its rows), or None.
    n_splits, train, test, val, embargo, expanding : as in :func:`walk_forward`.

    Returns
    -------
    ``{symbol: [Split, ...]}``, each list in time order, fold ``k`` at the same times for all.

    Examples
    --------
    >>> import numpy as np
    >>> ts = {"A": np.arange(0, 12, 2), "B": np.arange(1, 12, 2)}  # interleaved rows
    >>> folds = panel_walk_forward(ts, 2)
    >>> [f.boundaries.tolist() for f in folds["A"]], [f.boundaries.tolist() for f in folds["B"]]
    ([[4], [8]], [[4], [8]])
    >>> [(f.train.tolist(), f.test.tolist()) for f in folds["B"]]
    [([0, 1], [2, 3]), ([0, 1, 2, 3], [4, 5])]
    """
    if not isinstance(ts, Mapping) or not ts:
        raise ValueError("ts must be {symbol: row times} with at least one symbol")
    rows = {} if rows is None else rows
    known_each = isinstance(known_at, Mapping)
    for name, given in (("rows", rows), ("known_at", known_at if known_each else {})):
        extra = set(given) - set(ts)
        if extra:
            raise ValueError(f"{name} names symbols that ts has not: {', '.join(map(repr, sorted(extra)))}")
    emb = parse_horizon(embargo, "embargo", allow_zero=True)
    each = {}
    for sym, times in ts.items():
        try:
            t = _sorted_ts(times)
            cand = _usable(rows.get(sym), len(t))
            known = _known(known_at.get(sym) if known_each else known_at, t)
        except ValueError as e:
            raise ValueError(f"symbol {sym!r}: {e}") from None
        each[sym] = (t, cand, known)
    tc = np.sort(np.concatenate([t[cand] for t, cand, _ in each.values()]), kind="stable")
    plan = _fold_times(tc, n_splits, train, test, val, expanding)
    return {sym: [_cut(t, cand, fold, known, emb) for fold in plan] for sym, (t, cand, known) in each.items()}


def cut(
    ts: Any,
    boundaries: Any,
    *,
    start: Any = None,
    end: Any = None,
    known_at: Any = None,
    embargo: Any = 0,
    rows: Any = None,
) -> Split:
    """The rows of ``ts`` cut at given times, purged and embargoed as in :func:`chronological`:
    the same cut for another series (one symbol of many split at the same times).

    Parameters
    ----------
    ts, known_at, embargo, rows : as in :func:`chronological`.
    boundaries : where the parts after train start, ascending: ``[test start]`` (train / test)
        or ``[val start, test start]`` (a :class:`Split`'s ``boundaries``); int64 ns, or
        anything :func:`lobfast.to_ns` reads.
    start, end : only rows with ``start <= ts < end`` take part (a walk-forward fold's span);
        None: from the first row / to the last.

    Examples
    --------
    >>> import numpy as np
    >>> ts = np.arange(10) * 1_000_000_000
    >>> s = cut(ts, [6_000_000_000], start=2_000_000_000, known_at=1)
    >>> s.train.tolist(), s.test.tolist(), s.purged, s.unlabelled
    ([2, 3, 4], [6, 7, 8], 1, 1)
    """
    t = _sorted_ts(ts)
    b = [to_ns(x, "boundary") for x in (boundaries.tolist() if isinstance(boundaries, np.ndarray) else boundaries)]
    if len(b) not in (1, 2) or b != sorted(b):
        raise ValueError(
            f"boundaries must be 1 or 2 ascending times ([test start] or [val start, test start]), got {b}"
        )
    cand = _usable(rows, len(t))
    tc = t[cand]
    keep = np.ones(len(cand), bool)
    if start is not None:
        keep &= tc >= to_ns(start, "start")
    if end is not None:
        keep &= tc < to_ns(end, "end")
    known = _known(known_at, t)
    emb = parse_horizon(embargo, "embargo", allow_zero=True)
    return _split(t, cand[keep], b, known, emb)
