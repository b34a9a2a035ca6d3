"""Frames: a time column plus named numeric columns, the output of the C kernels.

:class:`Frame` is what :func:`lobfast.aggregate` returns; :class:`FeatureFrame` (model
inputs, :func:`lobfast.features`) and :class:`LabelFrame` (targets, :mod:`lobfast.labels`)
are kept apart on purpose: a label is never accepted where a feature is expected.
Columns are the kernels' arrays themselves; nothing is copied until a conversion needs to.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from . import _core
from .errors import _require
from .times import to_ns

_KINDS = {"f": np.dtype("f8"), "i": np.dtype("i8"), "u": np.dtype("i8"), "b": np.dtype("f8")}

# The arrays that own the memory of every live LabelFrame's columns, by id, weakly held. An
# array sharing memory with one of them (the column itself, np.asarray of it, a slice, a
# reshape) holds labels; copies are new memory and are left to leakage_report's correlations.
_LABEL_MEMORY: dict[int, weakref.ref] = {}


def _owner(a: np.ndarray) -> np.ndarray:
    """The array at the end of ``a``'s base chain: it owns (or holds) the memory, and every
    view of it keeps it alive."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def _mark_labels(a: np.ndarray) -> None:
    owner = _owner(a)
    key = id(owner)
    if key not in _LABEL_MEMORY:
        _LABEL_MEMORY[key] = weakref.ref(owner, lambda _, key=key: _LABEL_MEMORY.pop(key, None))


def holds_labels(a: Any) -> bool:
    """Whether the array ``a`` shares memory with a column of a :class:`LabelFrame` (or what
    its ``to_numpy`` gave): a label, however it was wrapped or sliced."""
    if not isinstance(a, np.ndarray) or a.size == 0:
        return False
    for ref in list(_LABEL_MEMORY.values()):
        owner = ref()
        if owner is not None and np.may_share_memory(a, owner):
            return True
    return False


def _time_column(ts: Any) -> np.ndarray:
    ts = np.asarray(ts)
    if ts.dtype.kind == "M":
        ts = ts.astype("datetime64[ns]").view(np.int64)
    if ts.ndim != 1 or ts.dtype.kind not in "iu":
        raise TypeError(f"ts must be a 1-D array of int64 ns or datetime64, got {ts.dtype} with shape {ts.shape}")
    return ts.astype(np.int64, copy=False)


def _value_column(name: Any, value: Any, n: int) -> np.ndarray:
    if not isinstance(name, str) or not name or name == "ts":
        raise ValueError(f"column names must be non-empty strings other than 'ts', got {name!r}")
    arr = np.asarray(value)
    if arr.dtype.kind not in _KINDS:
        raise TypeError(f"column '{name}' must be numeric, got {arr.dtype}")
    if arr.ndim != 1 or len(arr) != n:
        raise ValueError(f"column '{name}' must be 1-D with {n} rows like ts, got shape {arr.shape}")
    if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise ValueError(f"column '{name}' holds unsigned values beyond int64 (max {arr.max()})")
    return arr.astype(_KINDS[arr.dtype.kind], copy=False)


def empty_columns(n: int, spec: list[tuple[str, Any]]) -> dict[str, np.ndarray]:
    """Empty columns of n rows, {name: array of dtype}, carved from one allocation: a large one
    is a block of csrc/core/blocks.c, kept once freed for the next block of about its size, so
    a loop of calls pays the page faults of fresh memory (which can take longer than the kernel
    that fills them) once.  Each column starts on a 64-byte boundary; they keep the block alive
    together."""
    sizes = [(n * np.dtype(t).itemsize + 63) // 64 * 64 for _, t in spec]
    block = _core.empty(sum(sizes) // 8, "q").view(np.uint8)
    out, at = {}, 0
    for (name, t), size in zip(spec, sizes):
        out[name] = block[at : at + n * np.dtype(t).itemsize].view(t)
        at += size
    return out


class Frame:
    """``ts`` (int64 ns, one per row) and named float64 / int64 columns of the same length.

    Dict-like over the column names (``frame["mid"]``, ``"mid" in frame``, ``frame.keys()``);
    ``len(frame)`` is the number of rows. Rows by slice, boolean mask or index array:
    ``frame.rows[100:200]``; a subset of columns: ``frame[["mid", "spread"]]``.
    """

    __slots__ = ("_ts", "_cols")

    def __init__(self, ts: Any, columns: dict[str, Any] | None = None, **more: Any) -> None:
        self._ts = _time_column(ts)
        cols = dict(columns or {}, **more)
        self._cols = {name: _value_column(name, v, len(self._ts)) for name, v in cols.items()}

    def _take(self, rows: Any = slice(None), names: list[str] | None = None) -> Frame:
        """Rows by key and columns by name, as a frame of the same type (subclasses carry extras)."""
        names = list(self._cols) if names is None else names
        return type(self)(self._ts[rows], {n: self[n][rows] for n in names})

    # --- mapping over columns --------------------------------------------------------------
    @property
    def ts(self) -> np.ndarray:
        """Row times, int64 ns since the epoch (UTC)."""
        return self._ts

    @property
    def columns(self) -> dict[str, np.ndarray]:
        """The columns by name (the arrays themselves, not copies), without ``ts``."""
        return dict(self._cols)

    def keys(self):
        return self._cols.keys()

    def values(self):
        return self._cols.values()

    def items(self):
        return self._cols.items()

    def __iter__(self):
        return iter(self._cols)

    def __contains__(self, name: object) -> bool:
        return name in self._cols

    def __len__(self) -> int:
        return len(self._ts)

    def __getitem__(self, key):
        if isinstance(key, str):
            if key == "ts":
                return self._ts
            try:
                return self._cols[key]
            except KeyError:
                raise KeyError(f"no column {key!r}; columns are {list(self._cols)}") from None
        if isinstance(key, (list, tuple)) and all(isinstance(k, str) for k in key):
            return self._take(names=list(key))
        raise TypeError(f"{type(self).__name__}[...] takes a column name or a list of names; rows: .rows[...]")

    @property
    def rows(self) -> _Rows:
        """Row selection: ``frame.rows[a:b]`` (views), a boolean mask or an index array (copies)."""
        return _Rows(self)

    def between(self, start, end) -> Frame:
        """Rows with ``start <= ts < end`` as views; ``ts`` must be sorted."""
        lo = 0 if start is None else int(np.searchsorted(self._ts, to_ns(start), "left"))
        hi = len(self._ts) if end is None else int(np.searchsorted(self._ts, to_ns(end), "left"))
        return self.rows[lo:hi]

    def to_numpy(self, columns: list[str] | None = None, dtype: Any = np.float64) -> np.ndarray:
        """``(N, F)`` array of the named columns (all by default), in that order."""
        names = list(self._cols) if columns is None else list(columns)
        out = np.empty((len(self._ts), len(names)), dtype)
        for j, n in enumerate(names):
            out[:, j] = self[n]
        return out

    # --- conversions -----------------------------------------------------------------------
    def to_pandas(self):
        """A pandas DataFrame indexed by ``ts`` (DatetimeIndex, UTC); columns are not copied."""
        pd = _require("pandas", "pandas")
        index = pd.DatetimeIndex(self._ts.view("datetime64[ns]"), name="ts").tz_localize("UTC")
        return pd.DataFrame(self._cols, index=index, copy=False)

    def to_polars(self):
        """A polars DataFrame with a ``ts`` Datetime('ns', 'UTC') column first."""
        pl = _require("polars", "polars")
        ts = pl.Series("ts", self._ts).cast(pl.Datetime("ns", "UTC"))
        return pl.DataFrame([ts, *(pl.Series(n, a) for n, a in self._cols.items())])

    def to_arrow(self):
        """A pyarrow Table with ``ts`` as timestamp('ns', tz='UTC')."""
        pa = _require("pyarrow", "parquet")
        arrays = [pa.array(self._ts, type=pa.timestamp("ns", tz="UTC"))]
        arrays += [pa.array(a) for a in self._cols.values()]
        return pa.Table.from_arrays(arrays, names=["ts", *self._cols])

    def to_parquet(self, path, **kwargs) -> None:
        """Write to a Parquet file (pyarrow)."""
        pq = _require("pyarrow.parquet", "parquet")
        pq.write_table(self.to_arrow(), path, **kwargs)

    @classmethod
    def read_parquet(cls, path) -> Frame:
        """Read a file written by :meth:`to_parquet`."""
        pq = _require("pyarrow.parquet", "parquet")
        t = pq.read_table(path)
        ts = t["ts"].cast("int64").to_numpy()
        return cls(ts, {n: t[n].to_numpy() for n in t.column_names if n != "ts"})

    def __repr__(self) -> str:
        n = len(self._ts)
        span = ""
        if n:
            span = f", {np.datetime64(int(self._ts[0]), 'ns')} .. {np.datetime64(int(self._ts[-1]), 'ns')}"
        names = list(self._cols)
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        return f"{type(self).__name__}({n} rows{span}; {len(names)} columns: {shown})"


class _Rows:
    __slots__ = ("_f",)

    def __init__(self, frame: Frame) -> None:
        self._f = frame

    def __getitem__(self, key) -> Frame:
        if isinstance(key, (int, np.integer)):
            key = slice(key, key + 1 if key != -1 else None)
        return self._f._take(key)


class FeatureFrame(Frame):
    """Model inputs computed from the book and trades (see :func:`lobfast.features`).

    A column that is a label (an array of a :class:`LabelFrame`, or a view of one) is refused.
    """

    __slots__ = ()

    def __init__(self, ts: Any, columns: dict[str, Any] | None = None, **more: Any) -> None:
        super().__init__(ts, columns, **more)
        for name, a in self._cols.items():
            if holds_labels(a):
                raise TypeError(
                    f"column {name!r} is a label (it shares memory with a LabelFrame's column): "
                    "labels look ahead and are never features"
                )


class LabelFrame(Frame):
    """Targets: look-ahead by construction, so kept apart from features.

    ``known_at[name]`` (int64 ns, per row) is when each row's label becomes known (the end
    of its horizon); -1 where the label is NaN. :func:`lobfast.leakage_report` uses it to
    find labels whose horizon crosses a split boundary.

    The memory of its columns stays known as labels while any view of it lives: a
    :class:`FeatureFrame`, :class:`lobfast.torch.WindowDataset` or :class:`lobfast.Normalizer`
    given a column, a slice, ``np.asarray`` or ``to_numpy()`` of them refuses it (a column
    that is a view into a larger array marks that whole array). Copies are new data:
    :func:`lobfast.leakage_report` flags them by their correlation with the labels.
    """

    __slots__ = ("known_at",)

    def __init__(
        self, ts: Any, columns: dict[str, Any] | None = None, known_at: dict[str, Any] | None = None, **more: Any
    ) -> None:
        super().__init__(ts, columns, **more)
        known_at = dict(known_at or {})
        unknown = set(known_at) - set(self._cols)
        if unknown:
            raise ValueError(f"known_at names columns that are not labels: {sorted(unknown)}")
        self.known_at = {}
        for name, v in known_at.items():
            arr = _time_column(v)
            if len(arr) != len(self._ts):
                raise ValueError(f"known_at['{name}'] has {len(arr)} rows, the labels {len(self._ts)}")
            self.known_at[name] = arr
        for a in self._cols.values():
            _mark_labels(a)

    def to_numpy(self, columns: list[str] | None = None, dtype: Any = np.float64) -> np.ndarray:
        out = super().to_numpy(columns, dtype)
        _mark_labels(out)  # a copy, but still the labels
        return out

    def _take(self, rows: Any = slice(None), names: list[str] | None = None) -> LabelFrame:
        names = list(self._cols) if names is None else names
        known = {n: self.known_at[n][rows] for n in names if n in self.known_at}
        return LabelFrame(self._ts[rows], {n: self[n][rows] for n in names}, known)
