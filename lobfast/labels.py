"""Labels: forward returns, DeepLOB smoothed labels, EMA returns, triple barrier (C kernels).

Every function takes the series to label as

- a :class:`lobfast.BookSnapshots`: mid = (best bid + best ask) / 2, ``valid`` from the book;
- a :class:`lobfast.Frame` / :class:`lobfast.FeatureFrame` with a ``mid`` column;
- a ``(mid, ts)`` tuple, or a mid array with ``ts=``;

and returns a :class:`lobfast.LabelFrame` on the same ``ts``, whose column names end with
the horizon (``ret_10`` for 10 rows, ``ret_10s`` for 10 seconds) and whose
``known_at[name]`` is, per row, the time (int64 ns) at which that row's label is known:
the end of its horizon, or the barrier hit; -1 where the label is NaN.

Horizons: an ``int`` counts rows; a duration (``"10s"``, ``"250ms"``,
``datetime.timedelta``, ``numpy.timedelta64``) is a time span, and the mid at ``t + h`` is
the mid in effect then: the last row with ``ts <= t + h`` (timestamps may be irregular and
tied). Time suffixes are written in whole seconds when they can be (``"1min"`` -> ``60s``),
else ms, us or ns.

Unknown labels are NaN, never guessed:

- a row is *usable* when the book is valid there (``valid``; without a mask, when its mid
  is finite). A valid row must have a finite mid > 0, else the call raises;
- a label is NaN when its horizon runs past the last row (for time horizons: when
  ``t + h`` is after the last timestamp), or when any row from ``t`` to the end of its
  horizon (for smoothed labels, the whole window used) is not usable;
- triple barrier: NaN when the path meets an unusable row or the end of the data before a
  barrier or the time limit resolves it; a barrier hit before that is a label.

Inputs are never modified. All loops run in C (csrc/core/kernels/labels.c) with the GIL released.

Examples
--------
>>> import numpy as np, lobfast
>>> mid = np.array([100.0, 101.0, 100.5, 102.0, 101.0])
>>> ts = np.arange(5) * 1_000_000_000
>>> lf = lobfast.labels.forward_return((mid, ts), [1, "2s"])
>>> list(lf)
['ret_1', 'ret_2s']
>>> lf.known_at["ret_2s"].tolist()
[2000000000, 3000000000, 4000000000, -1, -1]
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import _core
from .containers import BookSnapshots
from .frame import Frame, LabelFrame, _time_column
from .reading import _apart, _out_arrays
from .times import parse_horizon

Horizon = int | str | _dt.timedelta | np.timedelta64

__all__ = [
    "balanced_alpha",
    "classify",
    "combine",
    "ema_return",
    "forward_return",
    "smoothed",
    "triple_barrier",
]


# ------------------------------------------------------------------------------ inputs
def _series(data: Any, ts: Any, valid: Any) -> tuple[np.ndarray, np.ndarray, Any]:
    """(mid, ts int64, valid or None) from a book, a frame with ``mid``, (mid, ts) or mid + ts=."""
    if isinstance(data, BookSnapshots):
        if ts is not None:
            raise TypeError("ts comes from the BookSnapshots; do not pass ts=")
        mid = (data.bid_px[:, 0] + data.ask_px[:, 0]) * 0.5
        return mid, data.ts, data.valid if valid is None else valid
    if isinstance(data, LabelFrame):
        raise TypeError("labels are computed from a book or a frame with a 'mid' column, not from a LabelFrame")
    if isinstance(data, Frame):
        if ts is not None:
            raise TypeError("ts comes from the frame; do not pass ts=")
        return data["mid"], data.ts, valid
    if isinstance(data, tuple):
        if len(data) != 2 or ts is not None:
            raise TypeError("pass (mid, ts) as a 2-tuple, or mid with ts=")
        data, ts = data
    if ts is None:
        raise TypeError("a mid array needs its timestamps: pass (mid, ts) or ts=")
    return np.asarray(data), _time_column(ts), valid


def _horizon(h: Any, name: str = "horizon") -> tuple[int, int, str]:
    """(rows, ns, suffix): an int is rows, a duration is a time span."""
    rows, ns = parse_horizon(h, name)
    if rows:
        return rows, 0, str(rows)
    for unit, size in (("s", 10**9), ("ms", 10**6), ("us", 10**3)):
        if ns % size == 0:
            return 0, ns, f"{ns // size}{unit}"
    return 0, ns, f"{ns}ns"


def _horizons(h: Any, name: str = "horizon") -> list[Any]:
    hs = list(h) if isinstance(h, (list, tuple)) else [h]
    if not hs:
        raise ValueError(f"no {name} given")
    return hs


# ------------------------------------------------------------------------------ labels
def forward_return(
    data: Any,
    horizon: Horizon | Sequence[Horizon],
    *,
    ts: Any = None,
    valid: Any = None,
    out: Mapping[str, np.ndarray] | LabelFrame | None = None,
) -> LabelFrame:
    """Forward log return ``log(mid[t + h] / mid[t])``, one column ``ret_<h>`` per horizon.

    Parameters
    ----------
    data : BookSnapshots, Frame with ``mid``, ``(mid, ts)`` or a mid array (with ``ts=``).
    horizon : rows (int) or a duration (``"10s"``), or a list of them.
    ts : row times (int64 ns or datetime64) when ``data`` is a mid array.
    valid : bool mask of usable rows (default: the book's ``valid``, else finite mids).
    out : arrays to write into instead of new ones (no new memory: for repeated calls):
        a LabelFrame this function returned (its columns and ``known_at``), or a dict
        ``{"ret_<h>": float64 array}`` that may also hold ``"known_at": {"ret_<h>": int64
        array}`` (known_at arrays not given are new). Each array is 1-D, C-contiguous,
        writable, of the data's length, apart from the inputs and the other outputs, else
        ValueError. The returned LabelFrame holds these very arrays.

    Returns
    -------
    LabelFrame with ``ret_<h>``; ``known_at`` is ``ts[t + k]`` for rows, ``t + h`` for time.

    Examples
    --------
    >>> import numpy as np, lobfast
    >>> lf = lobfast.labels.forward_return((np.array([1.0, 2.0, 4.0]), np.arange(3)), 1)
    >>> np.round(lf["ret_1"], 4).tolist()
    [0.6931, 0.6931, nan]
    >>> again = lobfast.labels.forward_return((np.array([1.0, 2.0, 4.0]), np.arange(3)), 1, out=lf)
    >>> again["ret_1"] is lf["ret_1"]
    True
    """
    mid, t, ok = _series(data, ts, valid)
    hs = [(h, *_horizon(h)) for h in _horizons(horizon)]
    names = [f"ret_{sfx}" for _, _, _, sfx in hs]
    cols, known = _label_out(out, names, len(t))
    for name, (_, rows, ns, _) in zip(names, hs):
        _core.label_return(mid, t, ok, rows, ns, cols[name], known[name], name)
    return LabelFrame(t, cols, known)


def _label_out(
    out: Any, names: list[str], n: int, timed: list[str] | None = None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(label columns, known_at columns) to write: out's (see :func:`forward_return`), the rest
    new. ``timed``: the names that get a known_at array of their own (default: all)."""
    timed = names if timed is None else timed
    if out is None:
        block = _out_arrays(None, [(m, np.float64) for m in names] + [((m, "k"), np.int64) for m in timed], n)
        return {m: block[m] for m in names}, {m: block[(m, "k")] for m in timed}
    cols = _out_arrays(out, [(m, np.float64) for m in names], n)
    given = out.known_at if isinstance(out, LabelFrame) else out.get("known_at") if hasattr(out, "get") else None
    given = {} if given is None else given
    if not isinstance(given, Mapping):
        raise ValueError(f"out['known_at'] is a dict {{name: int64 array}}, not {type(given).__name__}")
    missing = [m for m in timed if m not in given]
    known = {m: given[m] for m in timed if m in given}
    known.update(_out_arrays(None, [(m, np.int64) for m in missing], n))
    _apart({**cols, **{f"known_at[{m!r}]": a for m, a in known.items()}})
    return cols, known


def smoothed(
    data: Any,
    k: int | Sequence[int],
    *,
    against: str = "mid",
    alpha: float | Mapping[int, float] | None = None,
    ts: Any = None,
    valid: Any = None,
    out: Mapping[str, np.ndarray] | LabelFrame | None = None,
) -> LabelFrame:
    """DeepLOB smoothed returns over ``k`` rows, and their 3 classes when ``alpha`` is given.

    ``m+ = mean(mid[t+1 .. t+k])``. With ``against="mid"`` the label is
    ``(m+ - mid[t]) / mid[t]`` (column ``smooth_<k>``, rows ``t .. t+k`` must be usable);
    with ``against="mean"`` it is ``(m+ - m-) / m-`` with ``m- = mean(mid[t-k+1 .. t])``
    (column ``smooth_mean_<k>``, rows ``t-k+1 .. t+k``; NaN for the first k - 1 rows).
    ``known_at = ts[t + k]``. Computed in O(N) with running window sums.

    Parameters
    ----------
    data, ts, valid : as in :func:`forward_return`.
    k : window in rows (> 0), or a list of windows.
    against : ``"mid"`` or ``"mean"``.
    alpha : class threshold (see :func:`classify`, :func:`balanced_alpha`), one for every k
        or ``{k: alpha}``; adds ``smooth_class_<k>`` / ``smooth_mean_class_<k>``.
    out : arrays to write into, as in :func:`forward_return` (a class column shares the
        ``known_at`` of its smoothed return).

    Examples
    --------
    >>> import numpy as np, lobfast
    >>> lf = lobfast.labels.smoothed((np.array([1.0, 2.0, 4.0, 4.0]), np.arange(4)), 2, alpha=0.5)
    >>> lf["smooth_2"].tolist(), lf["smooth_class_2"].tolist()
    ([2.0, 1.0, nan, nan], [1.0, 1.0, nan, nan])
    """
    if against not in ("mid", "mean"):
        raise ValueError(f"against must be 'mid' or 'mean', not {against!r}")
    mid, t, ok = _series(data, ts, valid)
    base = "smooth" if against == "mid" else "smooth_mean"
    plan = []  # (k, name, class name or None, alpha)
    for w in _horizons(k, "k"):
        if not isinstance(w, (int, np.integer)):
            raise ValueError(f"k must be a positive number of rows, not {w!r}")
        rows = parse_horizon(w, "k")[0]
        a = alpha.get(w) if isinstance(alpha, Mapping) else alpha
        plan.append((rows, f"{base}_{rows}", None if a is None else f"{base}_class_{int(w)}", a))
    names = [m for _, name, cname, _ in plan for m in (name, cname) if m is not None]
    cols, known = _label_out(out, names, len(t), [name for _, name, _, _ in plan])
    for rows, name, cname, a in plan:
        _core.label_smooth(mid, t, ok, rows, against == "mean", cols[name], known[name], name)
        if cname is not None:
            _core.label_classify(cols[name], float(a), cols[cname], f"out[{cname!r}]")
            known[cname] = known[name]
    return LabelFrame(t, cols, known)


def classify(values: Any, alpha: float, *, out: np.ndarray | None = None) -> np.ndarray:
    """3 classes of ``values``: +1 where ``> alpha`` (up), -1 where ``< -alpha`` (down), 0
    in between (stationary); float64 with NaN where ``values`` is NaN. ``out``: a float64
    array of the same length to write into and return (not ``values`` itself).

    >>> import numpy as np, lobfast
    >>> lobfast.labels.classify(np.array([0.2, -0.05, np.nan, -0.3]), 0.1).tolist()
    [1.0, 0.0, nan, -1.0]
    """
    return _core.label_classify(values, float(alpha), out)


def balanced_alpha(values: Any, train: Any = None) -> float:
    """The threshold that makes :func:`classify` roughly balanced: the 1/3 quantile of
    ``|values|`` over the training rows only (NaN ignored), so that about a third of them
    is stationary and the rest splits into up and down.

    Parameters
    ----------
    values : label values (e.g. ``lf["smooth_10"]``).
    train : the training rows: a slice, a boolean mask or an index array; None = all rows.
        Never pick the threshold on rows that are later evaluated.

    >>> import numpy as np, lobfast
    >>> lobfast.labels.balanced_alpha(np.array([-3.0, 1.0, 2.0, np.nan, 9.0]), train=slice(0, 3))
    1.6666666666666665
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {v.shape}")
    if train is not None:
        v = v[train]
    v = np.abs(v[~np.isnan(v)])
    if not len(v):
        raise ValueError("no finite values among the training rows to pick alpha from")
    return float(np.quantile(v, 1 / 3))


def ema_return(
    data: Any,
    horizon: Horizon | Sequence[Horizon],
    *,
    alpha: float = 0.2,
    ts: Any = None,
    valid: Any = None,
    out: Mapping[str, np.ndarray] | LabelFrame | None = None,
) -> LabelFrame:
    """EMA of the forward return: ``y[t] = alpha * f[t] + (1 - alpha) * y[t-1]``, ``f`` the
    ``horizon`` forward log return (as in :func:`forward_return`); column ``ema_<h>``.
    alpha = 0.2 as in the DeepLOB-TCN experiments.

    ``y`` is NaN where ``f`` is NaN, and restarts (``y = f``) after a NaN, so it never mixes
    returns across an unusable stretch. ``known_at`` is that of ``f[t]``. ``out``: arrays
    to write into, as in :func:`forward_return` (``f`` itself is a new array each call).

    .. warning:: Leakage. ``y[t]`` mixes ``f[t-1], f[t-2], ...``, and ``f[t-j]`` for
       ``j >= k`` (or whose horizon ended before t) is already fully known at t: part of the
       target is observable when predicting it, so features built from recent returns can
       look predictive for that reason alone. Prefer :func:`smoothed` or
       :func:`forward_return` for evaluation, and purge across splits
       (:func:`lobfast.leakage_report`).

    Examples
    --------
    >>> import numpy as np, lobfast
    >>> lf = lobfast.labels.ema_return((np.exp([0.0, 1.0, 3.0, 3.0]), np.arange(4)), 1, alpha=0.5)
    >>> np.round(lf["ema_1"], 6).tolist()
    [1.0, 1.5, 0.75, nan]
    """
    mid, t, ok = _series(data, ts, valid)
    hs = [_horizon(h) for h in _horizons(horizon)]
    names = [f"ema_{sfx}" for _, _, sfx in hs]
    cols, known = _label_out(out, names, len(t))
    for name in names:  # the EMA reads f, not the series: refused so that inputs stay unchanged
        for what, a in (("mid", mid), ("ts", t), ("valid", ok)):
            dst = cols[name]
            if isinstance(a, np.ndarray) and isinstance(dst, np.ndarray) and np.may_share_memory(dst, a):
                raise ValueError(f"out[{name!r}] shares memory with {what}: inputs are never written")
    for name, (rows, ns, _) in zip(names, hs):
        f, _ = _core.label_return(mid, t, ok, rows, ns, None, known[name], name)
        _core.label_ema(f, float(alpha), cols[name], f"out[{name!r}]")
    return LabelFrame(t, cols, known)


def triple_barrier(
    data: Any,
    limit: Horizon,
    *,
    upper: Any,
    lower: Any = None,
    vol: Any = None,
    floor: float = 0.0,
    ts: Any = None,
    valid: Any = None,
    out: Mapping[str, np.ndarray] | LabelFrame | None = None,
) -> LabelFrame:
    """Triple-barrier labels: which of the upper barrier, the lower barrier or the time
    limit the path of ``log(mid / mid[t])`` reaches first.

    Barriers are log returns: ``upper`` and ``lower`` (default: ``upper``) are absolute
    thresholds, or multiples of ``vol`` (per-row volatility in log-return units, e.g. a
    rolling std of returns known at t) when it is given. The walk looks at rows
    ``t+1, t+2, ...`` within the limit (``limit`` rows, or ``ts <= t + limit``):
    ``r >= upper`` first gives +1, ``r <= -lower`` first gives -1; reaching the limit gives
    0 with the return of the mid in effect at the limit. ``+inf`` disables a barrier.
    ``floor`` is the smallest barrier: a rolling volatility is exactly 0 over a quiet
    stretch, and a barrier of 0 is refused, so with ``vol`` pass e.g. one tick over the price.

    Returns a LabelFrame with ``tb_label_<limit>`` (+1 / -1 / 0), ``tb_ret_<limit>`` (log
    return at the hit or at the limit) and ``tb_time_<limit>`` (int64 ns of the hit or of the
    limit, -1 where unknown); ``known_at`` is that time for all three. NaN where row t is
    unusable, a barrier is NaN (e.g. ``vol`` still warming up), or the walk meets an unusable
    row or the end of the data before it resolves. O(N x limit) at worst. ``out``: arrays
    to write into, as in :func:`forward_return` (``tb_time_<limit>`` an int64 one).

    Examples
    --------
    >>> import numpy as np, lobfast
    >>> mid = np.array([100.0, 100.5, 102.0, 99.0, 99.5])
    >>> lf = lobfast.labels.triple_barrier((mid, np.arange(5)), 2, upper=0.01)
    >>> lf["tb_label_2"].tolist(), lf["tb_time_2"].tolist()
    ([1.0, 1.0, -1.0, nan, nan], [2, 2, 3, -1, -1])
    """
    mid, t, ok = _series(data, ts, valid)
    rows, ns, sfx = _horizon(limit, "limit")
    n = len(t)
    scale = 1.0 if vol is None else np.asarray(vol, dtype=np.float64)
    bars = []
    if not floor >= 0:
        raise ValueError(f"floor must be a log return >= 0, not {floor!r}")
    for b in (upper, upper if lower is None else lower):
        bar = np.asarray(b, dtype=np.float64) * scale
        if floor > 0:
            bar = np.maximum(bar, floor)  # NaN (vol warming up) stays NaN
        bars.append(np.ascontiguousarray(np.broadcast_to(bar, (n,))))
    names = [f"tb_label_{sfx}", f"tb_ret_{sfx}", f"tb_time_{sfx}"]
    spec = [(names[0], np.float64), (names[1], np.float64), (names[2], np.int64)]
    dst = _out_arrays(out, spec, n)
    label, time, ret = _core.label_barrier(
        mid, t, ok, bars[0], bars[1], rows, ns, (dst[names[0]], dst[names[2]], dst[names[1]]), f"_{sfx}"
    )
    return LabelFrame(t, dict(zip(names, (label, ret, time))), dict.fromkeys(names, time))


def combine(*frames: LabelFrame) -> LabelFrame:
    """One LabelFrame with the columns (and ``known_at``) of several on the same ``ts``.

    >>> import numpy as np, lobfast
    >>> data = (np.array([1.0, 2.0, 4.0]), np.arange(3))
    >>> list(lobfast.labels.combine(lobfast.labels.forward_return(data, 1), lobfast.labels.smoothed(data, 1)))
    ['ret_1', 'smooth_1']
    """
    if not frames:
        raise ValueError("no LabelFrames to combine")
    cols: dict[str, np.ndarray] = {}
    known: dict[str, np.ndarray] = {}
    for f in frames:
        if not isinstance(f, LabelFrame):
            raise TypeError(f"combine takes LabelFrames, not {type(f).__name__}")
        if not np.array_equal(f.ts, frames[0].ts):
            raise ValueError("LabelFrames to combine must have the same ts")
        for name in f:
            if name in cols:
                raise ValueError(f"column {name!r} appears in more than one LabelFrame")
            cols[name] = f[name]
        known.update(f.known_at)
    return LabelFrame(frames[0].ts, cols, known)
