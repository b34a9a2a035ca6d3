"""Model windows without copies: strided views, the index of usable windows, normalisation.

A window is ``T`` consecutive rows of an ``(N, F)`` feature matrix, named by its **last**
row: window ``i`` holds rows ``i-T+1 .. i`` and pairs with the label of row ``i`` (known
only from data at and before ``i``). :func:`windows` shows all of them as one read-only
view; :func:`window_index` lists the ends whose rows are all usable; :class:`Normalizer`
holds per-feature statistics fitted on training rows only. :mod:`lobfast.torch` applies
the statistics while it gathers a batch, so the normalised matrix is never materialised.

Examples
--------
>>> import numpy as np, lobfast
>>> X = np.arange(12.0).reshape(6, 2)
>>> w = lobfast.windows(X, 3)
>>> w.shape, np.shares_memory(w, X), w[0].tolist()
((4, 3, 2), True, [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
>>> valid = np.array([True, True, False, True, True, True])
>>> lobfast.window_index(valid, 3).tolist()  # windows ending at rows 2 and 3 touch row 2
[5]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .containers import BookSnapshots
from .frame import Frame, LabelFrame, holds_labels
from .times import parse_duration

__all__ = ["Normalizer", "TargetScaler", "as_features", "window_index", "windows"]


def windows(X: Any, T: int, step: int = 1) -> np.ndarray:
    """All windows of ``T`` rows of ``X`` as a read-only ``(N-T+1, T, F)`` view (no copy).

    ``step`` keeps every ``step``-th window (first one ending at row ``T-1``). ``X`` may be
    1-D (one feature); the view then is ``(N-T+1, T)``.

    Examples
    --------
    >>> import numpy as np, lobfast
    >>> lobfast.windows(np.zeros((1000, 40), np.float32), 100, step=10).shape
    (91, 100, 40)
    """
    X = np.asarray(X)
    T, step = _positive(T, "T"), _positive(step, "step")
    if X.ndim not in (1, 2):
        raise ValueError(f"X must be 1-D or 2-D (rows, features), got shape {X.shape}")
    if T > len(X):
        raise ValueError(f"a window of {T} rows is longer than the data ({len(X)} rows)")
    view = np.lib.stride_tricks.sliding_window_view(X, T, axis=0)  # (N-T+1, [F,] T)
    if X.ndim == 2:
        view = view.transpose(0, 2, 1)
    return view[::step]


def window_index(valid: Any, T: int, *, step: int = 1, rows: Any = None, target: Any = None) -> np.ndarray:
    """Sorted int64 ends of the windows whose ``T`` rows are all usable.

    Parameters
    ----------
    valid : bool per row (e.g. ``BookSnapshots.valid``), or an int: that many rows, all usable.
    T : window length in rows.
    step : keep ends ``T-1, T-1+step, ...`` only.
    rows : restrict to these ends (slice, bool mask or index array), e.g. a split's training rows.
    target : labels per row (1-D or 2-D); ends whose label is NaN are left out.
    """
    if isinstance(valid, (int, np.integer)):
        valid = np.ones(int(valid), bool)
    valid = np.asarray(valid)
    if valid.ndim != 1 or valid.dtype != bool:
        raise TypeError(f"valid must be a 1-D bool array, got {valid.dtype} with shape {valid.shape}")
    T, step = _positive(T, "T"), _positive(step, "step")
    n = len(valid)
    if T > n:
        raise ValueError(f"a window of {T} rows is longer than the data ({n} rows)")
    # bad rows up to and including each row; a window is clean when none fall inside it
    bad = np.concatenate(([0], np.cumsum(~valid)))
    ends = np.arange(T - 1, n, step, dtype=np.int64)
    ok = bad[ends + 1] == bad[ends + 1 - T]
    if target is not None:
        target = np.asarray(target)
        if len(target) != n:
            raise ValueError(f"target has {len(target)} rows, valid {n}: labels must be aligned with the features")
        finite = np.isfinite(target) if target.ndim == 1 else np.isfinite(target).all(axis=1)
        ok &= finite[ends]
    ends = ends[ok]
    if rows is not None:
        ends = ends[np.isin(ends, _as_rows(rows, n))]
    return ends


def _as_rows(rows: Any, n: int) -> np.ndarray:
    """Sorted-as-given int64 row numbers from a slice, a bool mask or an index array."""
    if isinstance(rows, slice):
        return np.arange(n, dtype=np.int64)[rows]
    rows = np.asarray(rows)
    if rows.size == 0:
        return np.zeros(0, np.int64)
    if rows.dtype == bool:
        if rows.shape != (n,):
            raise ValueError(f"a row mask must have {n} entries, got shape {rows.shape}")
        return np.flatnonzero(rows)
    if rows.ndim != 1 or rows.dtype.kind not in "iu":
        raise TypeError(f"rows must be a bool mask or an integer index array, got {rows.dtype}")
    if len(rows) and (rows.min() < 0 or rows.max() >= n):
        raise IndexError(f"rows must be in 0..{n - 1}, got {rows.min()}..{rows.max()}")
    return rows.astype(np.int64, copy=False)


def _positive(v: Any, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name} must be a positive int, got {v!r}")
    return int(v)


def as_features(X: Any) -> tuple[np.ndarray, list[str], np.ndarray | None, np.ndarray | None]:
    """``(matrix, column names, ts or None, valid or None)`` of a feature source.

    ``X``: an ``(N, F)`` float array; a :class:`lobfast.BookSnapshots` (DeepLOB layout from
    :meth:`~lobfast.BookSnapshots.to_deeplob` in float64, which keeps the tick (windows are
    normalised in double and rounded once), with the book's ``valid``; an empty
    level, NaN in the book, takes the price of the level above it with size 0, so a thin
    but valid book stays usable); or a
    :class:`lobfast.FeatureFrame` / :class:`lobfast.Frame` (float64 columns, in order).
    Labels are refused: a label is never a feature.
    """
    if isinstance(X, BookSnapshots):
        L = X.levels
        names = [f"{s}{k}" for k in range(1, L + 1) for s in ("ask_px", "ask_sz", "bid_px", "bid_sz")]
        return _fill_empty_levels(X.to_deeplob(np.float64)), names, X.ts, np.asarray(X.valid)
    if isinstance(X, LabelFrame):
        raise TypeError("X is a LabelFrame: labels look ahead and are never features")
    if isinstance(X, Frame):
        for name, a in X.items():
            if holds_labels(a):
                raise TypeError(
                    f"feature {name!r} is a label (a LabelFrame's column): labels look ahead and are never features"
                )
        return X.to_numpy(), list(X.keys()), X.ts, None
    X = np.asarray(X)
    if holds_labels(X):
        raise TypeError(
            "X holds labels (a LabelFrame's column, or a view of one): labels look ahead and are never features"
        )
    if X.ndim != 2:
        raise ValueError(f"features must be 2-D (rows, features), got shape {X.shape}")
    if X.dtype.kind not in "fiu" or X.dtype == np.float16:
        raise TypeError(f"features must be float32 or float64, got {X.dtype}")
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    return X, [f"column {j}" for j in range(X.shape[1])], None, None


def _fill_empty_levels(x: np.ndarray) -> np.ndarray:
    """Empty levels (NaN price, size 0) of a DeepLOB matrix priced like the level above them."""
    v = x.reshape(len(x), -1, 4)
    for k in range(1, v.shape[1]):
        for col in (0, 2):  # ask price, bid price
            empty = np.isnan(v[:, k, col]) & (v[:, k, col + 1] == 0)  # a NaN price with a size is not empty
            if empty.any():
                v[empty, k, col] = v[empty, k - 1, col]
    return x


def first_nonfinite(X: np.ndarray, rows: np.ndarray | None = None, chunk: int = 1 << 16) -> tuple[int, int] | None:
    """``(row, column)`` of the first non-finite value among ``rows`` (all when None), or None.

    Scans in chunks so a long matrix never needs an (N, F) temporary."""
    n = len(X)
    for lo in range(0, n, chunk):
        block = X[lo : lo + chunk]
        bad = ~np.isfinite(block)
        if rows is not None:
            bad &= rows[lo : lo + chunk, None]
        if bad.any():
            r, c = np.argwhere(bad)[0]
            return lo + int(r), int(c)
    return None


class Normalizer:
    """Per-feature statistics fitted on training rows only, applied as ``(x - shift) * scale``.

    Methods
    -------
    ``"zscore"``
        mean and standard deviation of each feature over the training rows.
    ``"decimal_precision"``
        divide by ``10**k``, the smallest power of ten above the feature's largest absolute
        training value (as for FI-2010); no shift.
    ``"rolling_zscore"``
        as DeepLOB: the rows of each period (``period``, UTC days ``"1d"`` by default) are
        normalised with the mean and standard deviation of the ``lookback`` periods before
        it that hold data, never its own, so nothing from the future is used. Rows of a
        period without earlier data cannot be normalised: ``usable`` is False there, and
        :func:`lobfast.window_index` / :class:`lobfast.torch.WindowDataset` leave their
        windows out.

    A feature whose standard deviation is 0 (an always-empty level) is only shifted
    (scale 1). After :meth:`fit`, ``shift`` and ``scale`` are ``(g, F)`` float64 arrays
    (``g`` = 1, or one set per period) and ``group`` maps rows to sets (None if g = 1).

    Examples
    --------
    >>> import numpy as np, lobfast
    >>> X = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0], [100.0, 0.0]])
    >>> z = lobfast.Normalizer("zscore").fit(X, rows=[0, 1, 2])  # row 3 is test data
    >>> z.transform(X).round(3).tolist()
    [[-1.225, 0.0], [0.0, 0.0], [1.225, 0.0], [59.4, -10.0]]
    """

    METHODS = ("zscore", "rolling_zscore", "decimal_precision")

    def __init__(self, method: str = "zscore", *, lookback: int = 5, period: Any = "1d") -> None:
        if method not in self.METHODS:
            raise ValueError(f"method must be one of {', '.join(self.METHODS)}; got {method!r}")
        self.method = method
        self.lookback = _positive(lookback, "lookback")
        self.period = parse_duration(period, "period")
        self.shift: np.ndarray | None = None
        self.scale: np.ndarray | None = None
        self.group: np.ndarray | None = None
        self.usable: np.ndarray | None = None
        self.n_rows: int | None = None

    @property
    def fitted(self) -> bool:
        return self.shift is not None

    def fit(self, X: Any, rows: Any = None, *, ts: Any = None, valid: Any = None) -> Normalizer:
        """Fit on the training rows (``rows``: slice, bool mask or indices; default all) of ``X``.

        Rows where ``valid`` is False (default: a book's own ``valid``) never enter the
        statistics and may hold anything. ``rolling_zscore`` needs row times (``ts``, or
        ``X``'s own) and uses every valid row, each period only for the periods after it.
        """
        X, names, own_ts, own_valid = as_features(X)
        n = len(X)
        valid = own_valid if valid is None else np.asarray(valid)
        valid = np.ones(n, bool) if valid is None else valid
        if valid.shape != (n,) or valid.dtype != bool:
            raise ValueError(f"valid must be {n} bools, one per row, got {valid.dtype} with shape {valid.shape}")
        if self.method == "rolling_zscore":
            ts = own_ts if ts is None else np.asarray(ts)
            if ts is None or len(ts) != n:
                raise ValueError("rolling_zscore needs ts, one int64 ns time per row")
            if rows is not None:
                raise ValueError("rolling_zscore uses only earlier periods for each row; it takes no rows=")
            self._fit_rolling(X, names, np.asarray(ts, np.int64), valid)
            return self
        idx = np.arange(n) if rows is None else _as_rows(rows, n)
        idx = idx[valid[idx]]
        if len(idx) == 0:
            raise ValueError("no valid training rows to fit the normaliser on")
        train = X[idx].astype(np.float64)
        _check_finite(train, names, idx)
        if self.method == "zscore":
            shift = train.mean(axis=0)
            scale = _inverse(train.std(axis=0))
        else:
            top = np.abs(train).max(axis=0)
            k = np.where(top > 0, np.floor(np.log10(np.where(top > 0, top, 1.0))) + 1, 0)
            shift, scale = np.zeros(X.shape[1]), 1.0 / 10.0**k
        self.shift, self.scale = shift[None, :], scale[None, :]
        self.group, self.usable, self.n_rows = None, None, n
        return self

    def _fit_rolling(self, X: np.ndarray, names: list[str], ts: np.ndarray, valid: np.ndarray) -> None:
        if len(ts) and np.any(np.diff(ts) < 0):
            raise ValueError(f"ts must be sorted; it goes back at row {int(np.argmax(np.diff(ts) < 0)) + 1}")
        used = np.flatnonzero(valid)
        _check_finite(X[used], names, used)
        period = ts // self.period
        starts = np.flatnonzero(np.r_[True, period[1:] != period[:-1]]) if len(ts) else np.zeros(0, np.int64)
        rows = np.diff(np.r_[starts, len(X)])
        group = np.repeat(np.arange(len(starts), dtype=np.int32), rows)
        X64 = np.where(valid[:, None], X, 0.0)  # invalid rows add nothing to any sum
        count = np.add.reduceat(valid.astype(np.float64), starts) if len(ts) else np.zeros(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.add.reduceat(X64, starts, axis=0) / count[:, None]
        # sums of squared deviations per period, then pooled across periods (no x**2 - mean**2 cancellation)
        dev = np.where(valid[:, None], X64 - mean[group], 0.0)
        m2 = np.add.reduceat(dev**2, starts, axis=0)
        g, have = len(starts), np.flatnonzero(count > 0)
        shift, scale = np.zeros((g, X.shape[1])), np.ones((g, X.shape[1]))
        stats = np.zeros(g, bool)  # which periods have earlier data to be normalised with
        for p in range(1, g):
            prev = have[have < p][-self.lookback :]
            if not len(prev):
                continue
            c, mu, ss = count[prev], mean[prev], m2[prev]
            pooled = (c[:, None] * mu).sum(axis=0) / c.sum()
            var = (ss + c[:, None] * (mu - pooled) ** 2).sum(axis=0) / c.sum()
            shift[p], scale[p], stats[p] = pooled, _inverse(np.sqrt(var)), True
        # periods without statistics keep 0 / 1 so the gather never reads NaN; their rows are not usable
        self.usable = stats[group]
        self.shift, self.scale, self.group, self.n_rows = shift, scale, group, len(X)

    def params(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``(shift, scale, group)`` for a matrix of ``n`` rows (checks it is the fitted one)."""
        if not self.fitted:
            raise ValueError("the normaliser is not fitted: call fit(X_train) first")
        if self.group is not None and n != self.n_rows:
            raise ValueError(f"rolling statistics were fitted on {self.n_rows} rows, not {n}")
        return self.shift, self.scale, self.group

    def transform(self, X: Any) -> np.ndarray:
        """The normalised ``(N, F)`` float64 matrix (a copy; the reference for the C gather)."""
        X = as_features(X)[0]
        shift, scale, group = self.params(len(X))
        if X.shape[1] != shift.shape[1]:
            raise ValueError(f"fitted on {shift.shape[1]} features, got {X.shape[1]}")
        g = np.zeros(len(X), np.int64) if group is None else group
        return (X.astype(np.float64) - shift[g]) * scale[g]

    def state(self) -> dict[str, Any]:
        """What a saved model needs to normalise new data as in training: the method and its
        settings, and for ``zscore`` / ``decimal_precision`` the fitted ``shift`` and
        ``scale`` (``rolling_zscore`` is fitted again on the new data, from earlier periods
        only).  Lists and numbers only."""
        out: dict[str, Any] = {"method": self.method, "lookback": self.lookback, "period": self.period}
        if self.method != "rolling_zscore":
            if not self.fitted:
                raise ValueError("the normaliser is not fitted: call fit(X_train) first")
            out.update(shift=self.shift[0].tolist(), scale=self.scale[0].tolist())
        return out

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Normalizer:
        """The normaliser :meth:`state` describes."""
        norm = cls(state["method"], lookback=state["lookback"], period=state["period"])
        if "shift" in state:
            shift, scale = np.asarray(state["shift"], np.float64), np.asarray(state["scale"], np.float64)
            if (
                shift.ndim != 1
                or shift.shape != scale.shape
                or not (np.isfinite(shift).all() and np.isfinite(scale).all())
            ):
                raise ValueError("a saved normaliser's shift and scale must be finite and of one length")
            norm.shift, norm.scale = shift[None, :], scale[None, :]
        return norm

    def __repr__(self) -> str:
        state = f"{self.shift.shape[0]} set(s) of {self.shift.shape[1]} features" if self.fitted else "not fitted"
        return f"Normalizer({self.method!r}, {state})"


class TargetScaler:
    """Standardised regression targets: ``(y - mean) / std`` with the mean and standard
    deviation of the training rows only (per column, NaN rows ignored), and the inverse for
    predictions.  Fit it on the rows the model trains on, train on :meth:`transform`'s
    output, and turn predictions back with :meth:`inverse`; :func:`lobfast.models.save`
    keeps it with the model.

    Examples
    --------
    >>> import numpy as np, lobfast
    >>> y = np.array([1.0, 3.0, 5.0, 100.0])
    >>> s = lobfast.TargetScaler().fit(y, rows=[0, 1, 2])
    >>> s.transform(y).round(3).tolist(), s.inverse(s.transform(y)).round(9).tolist()
    ([-1.225, 0.0, 1.225, 59.4], [1.0, 3.0, 5.0, 100.0])
    """

    def __init__(self) -> None:
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    @property
    def fitted(self) -> bool:
        return self.mean is not None

    def fit(self, y: Any, rows: Any = None) -> TargetScaler:
        """Fit on ``y``'s rows ``rows`` (slice, mask or indices; default all); NaN rows are left out."""
        if isinstance(y, LabelFrame):
            y = y.to_numpy()
        y = np.asarray(y, dtype=np.float64)
        if y.ndim not in (1, 2):
            raise ValueError(f"targets must be 1-D or 2-D, got shape {y.shape}")
        train = y if rows is None else y[_as_rows(rows, len(y))]
        finite = np.isfinite(train) if train.ndim == 1 else np.isfinite(train).all(axis=1)
        train = train[finite]
        if len(train) < 2:
            raise ValueError("fewer than 2 finite training targets: nothing to scale with")
        std = train.std(axis=0)
        if np.any(std == 0):
            raise ValueError("a target is constant over the training rows: it cannot be standardised")
        self.mean, self.std = train.mean(axis=0), std
        return self

    def _check(self, y: np.ndarray) -> None:
        if not self.fitted:
            raise ValueError("the target scaler is not fitted: call fit(y_train) first")
        if np.shape(y)[1:] != np.shape(self.mean):
            raise ValueError(f"fitted on targets of shape (N, {np.shape(self.mean)}), got {np.shape(y)}")

    def transform(self, y: Any) -> np.ndarray:
        y = np.asarray(y.to_numpy() if isinstance(y, LabelFrame) else y, dtype=np.float64)
        self._check(y)
        return (y - self.mean) / self.std

    def inverse(self, pred: Any) -> np.ndarray:
        pred = np.asarray(pred, dtype=np.float64)
        self._check(pred)
        return pred * self.std + self.mean

    def state(self) -> dict[str, Any]:
        if not self.fitted:
            raise ValueError("the target scaler is not fitted: call fit(y_train) first")
        return {
            "mean": np.atleast_1d(self.mean).tolist(),
            "std": np.atleast_1d(self.std).tolist(),
            "ndim": self.mean.ndim,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TargetScaler:
        s = cls()
        mean, std = np.asarray(state["mean"], np.float64), np.asarray(state["std"], np.float64)
        if mean.shape != std.shape or not (np.isfinite(mean).all() and (std > 0).all()):
            raise ValueError("a saved target scaler needs finite means and positive standard deviations")
        s.mean, s.std = (mean, std) if state["ndim"] else (mean[0], std[0])
        return s

    def __repr__(self) -> str:
        return f"TargetScaler(mean={self.mean}, std={self.std})" if self.fitted else "TargetScaler(not fitted)"


def _inverse(std: np.ndarray) -> np.ndarray:
    return np.where(std > 0, 1.0 / np.where(std > 0, std, 1.0), 1.0)


def _check_finite(X: np.ndarray, names: list[str], idx: np.ndarray) -> None:
    bad = first_nonfinite(X)
    if bad is not None:
        r, c = bad
        raise ValueError(f"feature {names[c]!r} is {X[r, c]} at row {int(idx[r])}: fit on finite training rows only")
