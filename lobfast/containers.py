"""Columnar containers: DepthEvents, Trades, Quotes, BookSnapshots and MarketData.

Every container is a set of equal-length NumPy columns, built by keyword and validated.
Arrays coming from the C readers already have the exact dtypes, so nothing is copied.
Times are int64 nanoseconds since the Unix epoch (UTC); ``.to_pandas()`` and friends
show them as timestamps through zero-copy views.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from . import _core
from .errors import _require
from .times import to_ns

_TIME_COLUMNS = ("ts", "local_ts")


def _column(name: str, value: Any, dtype: np.dtype, ndim: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind == "M" and name in _TIME_COLUMNS:
        arr = arr.astype("datetime64[ns]").view(np.int64)
    if arr.ndim != ndim:
        raise ValueError(f"column '{name}' must be {ndim}-D, got shape {arr.shape}")
    if arr.dtype != dtype:
        if dtype.kind in "iu" and arr.dtype.kind in "iub":
            # integers narrow only when every value fits (Python lists arrive as int64)
            info = np.iinfo(dtype)
            if arr.size and (arr.min() < info.min or arr.max() > info.max):
                raise ValueError(f"column '{name}' holds values outside {dtype} ({arr.min()}..{arr.max()})")
        elif not np.can_cast(arr.dtype, dtype, casting="same_kind") or (dtype.kind in "iu" and arr.dtype.kind == "f"):
            raise TypeError(f"column '{name}' must be {dtype}, got {arr.dtype}")
        arr = arr.astype(dtype)
    return arr


class Columns:
    """Base of the columnar containers: equal-length, validated NumPy columns."""

    _schema: ClassVar[dict[str, tuple[np.dtype, int]]] = {}  # name -> (dtype, ndim)
    __slots__ = ("_cols",)

    def __init__(self, **columns: Any) -> None:
        missing = [c for c in self._schema if c not in columns]
        extra = [c for c in columns if c not in self._schema]
        if missing or extra:
            raise TypeError(
                f"{type(self).__name__} takes columns {list(self._schema)}; missing {missing}, unexpected {extra}"
            )
        cols = {name: _column(name, columns[name], dt, nd) for name, (dt, nd) in self._schema.items()}
        lengths = {name: len(a) for name, a in cols.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"{type(self).__name__} columns have different lengths: {lengths}")
        self._cols = cols

    @classmethod
    def empty(cls):
        """A container with no rows."""
        shape = {1: (0,), 2: (0, 0)}
        return cls(**{n: np.empty(shape[nd], dt) for n, (dt, nd) in cls._schema.items()})

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        for name in cls._schema:
            setattr(cls, name, property(lambda self, _n=name: self._cols[_n], doc=f"column '{name}'"))

    def __len__(self) -> int:
        return len(next(iter(self._cols.values())))

    @property
    def columns(self) -> dict[str, np.ndarray]:
        """The columns by name (the arrays themselves, not copies)."""
        return dict(self._cols)

    def __getitem__(self, key) -> Columns:
        """Rows by slice (views), boolean mask or index array (copies)."""
        if isinstance(key, str):
            return self._cols[key]
        if isinstance(key, (int, np.integer)):
            raise TypeError(
                f"{type(self).__name__} rows are taken by slice, mask or index array; "
                f"for one row use [{key}:{key + 1}], for one column .{next(iter(self._cols))}"
            )
        return type(self)(**{n: a[key] for n, a in self._cols.items()})

    def between(self, start, end) -> Columns:
        """Rows with ``start <= ts < end`` as views; ``ts`` must be sorted."""
        ts = self._cols["ts"]
        lo = 0 if start is None else int(np.searchsorted(ts, to_ns(start), "left"))
        hi = len(ts) if end is None else int(np.searchsorted(ts, to_ns(end), "left"))
        return self[lo:hi]

    def _flat(self) -> dict[str, np.ndarray]:
        out = {}
        for n, a in self._cols.items():
            if a.ndim == 2:
                out.update({f"{n}_{i + 1}": a[:, i] for i in range(a.shape[1])})
            elif n in _TIME_COLUMNS:
                out[n] = a.view("datetime64[ns]")
            else:
                out[n] = a
        return out

    def to_pandas(self):
        """A pandas DataFrame; times as datetime64[ns] (UTC) views, (N, L) columns flattened."""
        pd = _require("pandas", "pandas")
        return pd.DataFrame(self._flat(), copy=False)

    def to_polars(self):
        """A polars DataFrame (times as Datetime('ns'))."""
        pl = _require("polars", "polars")
        return pl.DataFrame(self._flat())

    def to_arrow(self):
        """A pyarrow Table; times as timestamp('ns', tz='UTC')."""
        pa = _require("pyarrow", "parquet")
        arrays, names = [], []
        for n, a in self._flat().items():
            if a.dtype.kind == "M":
                arrays.append(pa.array(a.view(np.int64), type=pa.timestamp("ns", tz="UTC")))
            else:
                arrays.append(pa.array(a))
            names.append(n)
        return pa.Table.from_arrays(arrays, names=names)

    def to_parquet(self, path, **kwargs) -> None:
        """Write to a Parquet file (pyarrow)."""
        pq = _require("pyarrow.parquet", "parquet")
        pq.write_table(self.to_arrow(), path, **kwargs)

    @classmethod
    def read_parquet(cls, path):
        """Read a file written by :meth:`to_parquet`."""
        pq = _require("pyarrow.parquet", "parquet")
        t = pq.read_table(path)
        cols = {}
        for n, (dt, nd) in cls._schema.items():
            if nd == 2:
                parts = sorted(
                    (c for c in t.column_names if c.startswith(n + "_") and c[len(n) + 1 :].isdigit()),
                    key=lambda c: int(c[len(n) + 1 :]),
                )
                cols[n] = np.column_stack([t[c].to_numpy() for c in parts]) if parts else np.empty((0, 0), dt)
            else:
                col = t[n]
                if n in _TIME_COLUMNS:
                    col = col.cast("int64")
                cols[n] = col.to_numpy()
        return cls(**cols)

    def __repr__(self) -> str:
        n = len(self)
        span = ""
        if n and "ts" in self._cols:
            ts = self._cols["ts"]
            a, b = np.datetime64(int(ts[0]), "ns"), np.datetime64(int(ts[-1]), "ns")
            span = f", {a} .. {b}"
        return f"{type(self).__name__}({n} rows{span})"


def _schema(spec: dict[str, Any]) -> dict[str, tuple[np.dtype, int]]:
    return {n: (np.dtype(v[0]), v[1]) if isinstance(v, tuple) else (np.dtype(v), 1) for n, v in spec.items()}


class DepthEvents(Columns):
    """One row per price-level change (Tardis ``incremental_book_L2``-like).

    Columns: ``ts`` exchange time, ``local_ts`` receive time (int64 ns); ``side`` (int8:
    +1 bid, -1 ask, 0 a marker row that changes no level); ``price``; ``qty`` (absolute
    size, 0 deletes the level); ``update_id`` (exchange sequence id of the message);
    ``flags`` (uint8, :class:`lobfast.Flags`).
    """

    _schema = _schema(
        {
            "ts": "i8",
            "local_ts": "i8",
            "side": "i1",
            "price": "f8",
            "qty": "f8",
            "update_id": "i8",
            "flags": "u1",
        }
    )
    __slots__ = ()


class Trades(Columns):
    """Trades: ``ts, local_ts, price, qty, side (+1 taker buy, -1 taker sell, 0 unknown), trade_id``."""

    _schema = _schema({"ts": "i8", "local_ts": "i8", "price": "f8", "qty": "f8", "side": "i1", "trade_id": "i8"})
    __slots__ = ()


class Quotes(Columns):
    """Exchange best bid/offer (``bookTicker``): ``ts, local_ts, update_id, bid_px, bid_qty, ask_px, ask_qty``.

    ``update_id`` is -1 where the source has none.
    """

    _schema = _schema(
        {
            "ts": "i8",
            "local_ts": "i8",
            "update_id": "i8",
            "bid_px": "f8",
            "bid_qty": "f8",
            "ask_px": "f8",
            "ask_qty": "f8",
        }
    )
    __slots__ = ()


class BookSnapshots(Columns):
    """Level-2 book states: ``ts (N,)``, ``update_id (N,)``, ``bid_px, bid_sz, ask_px, ask_sz (N, L)``
    (level 1 = best; empty levels are NaN prices and 0 sizes) and ``valid (N,) bool``.
    """

    _schema = _schema(
        {
            "ts": "i8",
            "update_id": "i8",
            "bid_px": ("f8", 2),
            "bid_sz": ("f8", 2),
            "ask_px": ("f8", 2),
            "ask_sz": ("f8", 2),
            "valid": "?",
        }
    )
    __slots__ = ()

    def __init__(self, **columns: Any) -> None:
        super().__init__(**columns)
        shapes = {n: self._cols[n].shape for n in ("bid_px", "bid_sz", "ask_px", "ask_sz")}
        if len(set(shapes.values())) > 1:
            raise ValueError(f"BookSnapshots level columns have different shapes: {shapes}")

    @property
    def levels(self) -> int:
        """Levels per side (L)."""
        return self._cols["bid_px"].shape[1]

    def to_deeplob(self, dtype: Any = np.float32) -> np.ndarray:
        """``(N, 4L)`` in FI-2010 order ``[ask_px1, ask_sz1, bid_px1, bid_sz1, ask_px2, ...]``.

        float32 by default (what models take); ``dtype=np.float64`` keeps the tick: near
        60,000 a float32 only resolves about 0.004."""
        c = self._cols
        out = np.empty((len(self), self.levels, 4), dtype)
        out[:, :, 0], out[:, :, 1] = c["ask_px"], c["ask_sz"]
        out[:, :, 2], out[:, :, 3] = c["bid_px"], c["bid_sz"]
        return out.reshape(len(self), 4 * self.levels)


def _check_against_core() -> None:
    """Fail at import if the C readers' columns drifted from the containers'."""
    kinds = {"q": np.dtype("i8"), "d": np.dtype("f8"), "b": np.dtype("i1"), "B": np.dtype("u1")}
    for name, cls in (("depth", DepthEvents), ("trades", Trades), ("quotes", Quotes)):
        core = [(c, kinds[t]) for c, t, _ in _core.schemas()[name]]
        mine = [(c, dt) for c, (dt, _) in cls._schema.items()]
        if core != mine:
            raise ImportError(f"lobfast._core '{name}' columns {core} differ from {cls.__name__} {mine}")


_check_against_core()


@dataclass(repr=False)
class MarketData:
    """What a reader returns for one symbol: depth, trades, aggregated trades, quotes and counters.

    ``stats`` counts messages per type, bad lines, gaps, resets, diffs dropped before the
    book was synced, unknown messages, and so on (see :func:`lobfast.read_binance`).
    """

    depth: DepthEvents = field(default_factory=DepthEvents.empty)
    trades: Trades = field(default_factory=Trades.empty)
    agg_trades: Trades = field(default_factory=Trades.empty)
    quotes: Quotes = field(default_factory=Quotes.empty)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def symbol(self) -> str:
        return self.stats.get("symbol", "")

    @property
    def market(self) -> str:
        return self.stats.get("market", "unknown")

    def __repr__(self) -> str:
        s = self.stats
        return (
            f"MarketData({self.symbol or '?'} {self.market}: {len(self.depth)} depth rows, "
            f"{len(self.trades)} trades, {len(self.agg_trades)} agg trades, {len(self.quotes)} quotes, "
            f"gaps={s.get('gaps', 0)}, resets={s.get('resets', 0)})"
        )
