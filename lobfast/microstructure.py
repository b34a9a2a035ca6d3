"""Microstructure features from the book and trades (see :func:`features`).

The book-level features come from one C pass over the snapshots; rolling windows are C
kernels over those columns (:mod:`lobfast.rolling`). Python only parses the spec.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _core
from .containers import BookSnapshots, Quotes, Trades
from .frame import FeatureFrame, LabelFrame
from .reading import _out_arrays, cpu_threads
from .rolling import window_args
from .times import parse_duration

TRADE_COLUMNS = ("buy_volume", "sell_volume", "signed_volume", "trade_count")
_DURATION = r"\d+(?:\.\d+)?(?:ns|us|ms|s|min|h|d)"
_SIMPLE = {"mid", "microprice", "spread", "spread_bps", "ret"}
_TOP_K = ("wmid", "imbalance", "bid_depth", "ask_depth")  # name_k: over the top k levels


def default_spec(levels: int = 10, trades: bool = True) -> list[str]:
    """The default feature names for a book of ``levels`` levels (see :func:`features`)."""
    tops = [k for k in (1, 5, 10) if k <= levels]
    spec = ["mid", "microprice", f"wmid_{min(5, levels)}", "spread", "spread_bps"]
    spec += [f"imbalance_{k}" for k in tops]
    spec += [f"{side}_depth_{k}" for side in ("bid", "ask") for k in tops]
    spec += ["ofi", *(f"ofi_{i}" for i in range(1, levels + 1)), "ofi_w10", "ofi_w100", "ofi_1s", "ofi_10s"]
    spec += ["ofi_cum", "ret", "vol_20", "vol_100", "vol_10s", "vol_60s", "intensity_1s", "intensity_10s"]
    return spec + list(TRADE_COLUMNS) if trades else spec


def _parse(name: Any, levels: int) -> tuple[str, Any]:
    """A feature name -> (what, parameter); ValueError for names that mean nothing."""
    if not isinstance(name, str):
        raise TypeError(f"feature names are strings, got {name!r}")
    if name in _SIMPLE or name in TRADE_COLUMNS:
        return name, None
    if name == "ofi":
        return "ofi_level", 1
    if name == "ofi_cum":
        return "ofi_cum", None
    m = re.fullmatch(r"(wmid|imbalance|bid_depth|ask_depth|ofi)_(\d+)", name)
    if m:
        what, k = m.group(1), int(m.group(2))
        if not 1 <= k <= levels:
            raise ValueError(f"feature {name!r} needs level {k}, the book has levels 1..{levels}")
        return ("ofi_level" if what == "ofi" else what), k
    m = re.fullmatch(r"(ofi_w|vol_)(\d+)", name)
    if m:
        rows = int(m.group(2))
        if rows <= 0 or (m.group(1) == "vol_" and rows < 2):
            raise ValueError(f"feature {name!r}: the window must be at least {1 if m.group(1) == 'ofi_w' else 2} rows")
        return ("ofi_sum" if m.group(1) == "ofi_w" else "vol"), rows
    m = re.fullmatch(rf"(ofi|vol|intensity)_({_DURATION})", name)
    if m:
        what = {"ofi": "ofi_sum", "vol": "vol", "intensity": "intensity"}[m.group(1)]
        return what, m.group(2)
    raise ValueError(
        f"unknown feature {name!r}; features are {sorted(_SIMPLE | {'ofi', 'ofi_cum'})}, "
        f"{', '.join(f'{p}_K' for p in _TOP_K)} (top K levels), ofi_L (level L), ofi_wN / ofi_<span> "
        f"(rolling OFI over N rows or a span such as 10s), vol_N / vol_<span>, intensity_<span>, "
        f"and with trades {', '.join(TRADE_COLUMNS)}"
    )


def lookback(spec: Sequence[str], levels: int, every: int) -> int | None:
    """How far back in time (ns) the features of ``spec`` look on a grid of ``every`` ns: the
    longest window (``N`` rows count ``N + 1`` rows, since returns and OFI need the row before;
    a span adds one row for the same reason), at least one row.  None when a feature looks back
    without bound (``ofi_cum``, the running sum since the book was last invalid)."""
    if every <= 0:
        raise ValueError(f"every must be a positive duration in ns, not {every!r}")
    longest = every  # the previous row: ret, ofi, trade flow, intensity's update-id change
    for name in spec:
        what, p = _parse(name, max(levels, 1))
        if what == "ofi_cum":
            return None
        if what in ("ofi_sum", "vol", "intensity"):
            longest = max(longest, (p + 1) * every if isinstance(p, int) else parse_duration(p) + every)
    return longest


def _as_book(book: Any) -> BookSnapshots:
    if isinstance(book, BookSnapshots):
        return book
    if isinstance(book, Quotes):  # the exchange's BBO as a one-level book
        col = lambda a: np.ascontiguousarray(a, np.float64).reshape(-1, 1)  # noqa: E731
        valid = ~(np.isnan(book.bid_px) | np.isnan(book.ask_px))
        return BookSnapshots(
            ts=book.ts,
            update_id=book.update_id,
            bid_px=col(book.bid_px),
            bid_sz=col(book.bid_qty),
            ask_px=col(book.ask_px),
            ask_sz=col(book.ask_qty),
            valid=valid,
        )
    raise TypeError(f"features are computed from BookSnapshots or Quotes, not {type(book).__name__}")


def features(
    book: BookSnapshots | Quotes,
    trades: Trades | None = None,
    *,
    spec: Sequence[str] | None = None,
    out: dict[str, np.ndarray] | FeatureFrame | None = None,
    threads: int | None = None,
) -> FeatureFrame:
    """Microstructure features, one row per book snapshot, as a :class:`FeatureFrame`.

    ``spec`` lists the columns wanted (default: :func:`default_spec`); names are short and
    stable, and parametric names carry their parameter:

    - ``mid``; ``microprice`` = (bid1 ask_sz1 + ask1 bid_sz1) / (bid_sz1 + ask_sz1);
      ``wmid_K`` = mean of the size-weighted bid and ask prices over the top K levels;
      ``spread`` = ask1 - bid1; ``spread_bps`` = spread / mid * 1e4;
    - ``imbalance_K`` = (B - A) / (B + A) with B, A the sizes over the top K levels;
      ``bid_depth_K``, ``ask_depth_K`` the sizes themselves;
    - ``ofi`` = order-flow imbalance at the best level (Cont, Kukanov, Stoikov 2014: a better
      bid adds its whole size, a worse one removes the old size, symmetrically for asks);
      ``ofi_L`` the same at level L (multi-level OFI; ``ofi_1`` equals ``ofi``); an empty level is
      a bid at -inf / an ask at +inf, so a level that appears or empties counts its size;
      ``ofi_wN`` the sum over the last N rows; ``ofi_10s`` (any span: ``500ms``, ``1min``) the sum
      over rows in (t - span, t]; ``ofi_cum`` the running sum since the book was last invalid;
    - ``ret`` = log(mid / previous mid); ``vol_N`` / ``vol_<span>`` = rolling standard
      deviation of ``ret`` (ddof=1) over N rows or a span;
    - ``intensity_<span>`` = book updates per second over the span (rows whose update_id
      changed: with grid snapshots, ``reconstruct(every=...)``, several updates between two
      rows count once; reconstruct with ``every=0`` for message rates);
    - with ``trades``: ``buy_volume``, ``sell_volume`` (taker side), ``signed_volume`` (buy -
      sell), ``trade_count``, of the trades with ts in (previous row's ts, this row's ts] —
      what is known when the row is seen. Trades of unknown side count in ``trade_count`` only.

    Rows where ``valid`` is False give NaN in every column; OFI, returns and trade flow are
    NaN on the first row after one, and rolling windows never reach across them: a window's
    value appears once it is full (N values, or a span of data) since the book became valid.
    Default spans: ``ofi_1s``, ``ofi_10s``, ``vol_10s``, ``vol_60s``, ``intensity_1s``, ``intensity_10s``;
    default windows ``ofi_w10``, ``ofi_w100``, ``vol_20``, ``vol_100``.

    ``book`` is a :class:`BookSnapshots` (or :class:`Quotes`, read as a one-level book). Label
    frames are refused: targets are never inputs. Inputs are never modified.

    Only the columns of ``spec`` are computed (and the per-row series their windows need).
    ``out`` writes them into given arrays instead of new ones (no new memory: for repeated
    calls): a FeatureFrame this function returned, or a dict ``{name: float64 array}`` with
    an array for every name of ``spec``, each 1-D, C-contiguous, writable, of the book's
    length and apart from the inputs and the other outputs, else ValueError. The returned
    FeatureFrame holds these very arrays.

    ``threads``: the book pass is split into row ranges and the rolling windows run one per
    thread, on this many threads (None: every CPU this process may use; books of fewer than
    32,768 rows stay on one).  The values and errors are those of ``threads=1``, bit for bit.
    """
    for arg in (book, trades):
        if isinstance(arg, LabelFrame):
            raise TypeError("labels are targets, never feature inputs: pass the BookSnapshots (and Trades)")
    book = _as_book(book)
    if trades is not None and not isinstance(trades, Trades):
        raise TypeError(f"trades must be lobfast.Trades, not {type(trades).__name__}")
    levels = book.levels
    if len(book) and levels == 0:
        raise ValueError("the book has no levels")
    if isinstance(spec, str):
        raise TypeError("spec is a list of feature names, not one string")
    names = default_spec(max(levels, 1), trades is not None) if spec is None else list(spec)
    if len(set(names)) != len(names):
        raise ValueError(f"spec names a feature twice: {sorted({n for n in names if names.count(n) > 1})}")
    parsed = [_parse(n, max(levels, 1)) for n in names]
    if trades is None and any(n in TRADE_COLUMNS for n in names):
        raise ValueError(f"{[n for n in names if n in TRADE_COLUMNS]} need trades: features(book, trades)")

    threads = cpu_threads(threads)
    # where each column goes: out's arrays, or new ones
    n = len(book)
    cols = _out_arrays(out, [(name, np.float64) for name in names], n)

    # the book pass: every per-row quantity, each once, written straight into the column that
    # shows it; quantities that only feed a window (OFI under ofi_w10, ret under vol_20, the
    # update flags under intensity) go to scratch columns, dropped after the call
    base: dict[tuple[str, int], str | None] = {}  # key -> the column showing it (None: scratch)
    for name, (what, p) in zip(names, parsed):
        if what in TRADE_COLUMNS:
            continue
        if what in ("ofi_sum", "ofi_cum", "vol", "intensity"):
            key = {"ofi_sum": ("ofi", 1), "ofi_cum": ("ofi", 1), "vol": ("ret", 0), "intensity": ("changed", 0)}[what]
            base.setdefault(key, None)
        else:
            key = ("ofi", p) if what == "ofi_level" else (what, p or 0)
            if base.get(key) is None:
                base[key] = name
    scratch = _out_arrays(None, [(key, np.float64) for key, shown in base.items() if shown is None], n)
    c = book.columns
    got = {key: (cols[shown] if shown is not None else scratch[key]) for key, shown in base.items()}
    if levels and base:
        _core.features(
            c["ts"],
            c["valid"],
            c["update_id"],
            c["bid_px"],
            c["bid_sz"],
            c["ask_px"],
            c["ask_sz"],
            [(what, p, got[(what, p)], f"out[{shown or what!r}]") for (what, p), shown in base.items()],
            threads,
        )
    if trades is not None and any(n in TRADE_COLUMNS for n in names):
        flow = tuple(cols.get(t) for t in TRADE_COLUMNS)
        _core.trade_flow(c["ts"], c["valid"], trades.ts, trades.qty, trades.side, out=flow, threads=threads)

    ts = c["ts"]
    windows, rates = [], []  # (cost, job) for _core.rolling_many; intensities to scale after
    for name, (what, p) in zip(names, parsed):
        dst, label = cols[name], f"out[{name!r}]"
        if what in TRADE_COLUMNS:
            continue
        if what == "ofi_level" or what not in ("ofi_sum", "ofi_cum", "vol", "intensity"):
            src = got[("ofi", p) if what == "ofi_level" else (what, p or 0)]
            if src is not dst:  # a second name for the same quantity (ofi and ofi_1)
                np.copyto(dst, src)
            continue
        x = got[{"ofi_sum": ("ofi", 1), "ofi_cum": ("ofi", 1), "vol": ("ret", 0), "intensity": ("changed", 0)}[what]]
        w = window_args(p, ts) if what != "ofi_cum" else {}
        rows, span, wts = w.get("rows", 0), w.get("span", 0), w.get("ts")
        ddof = 1 if what == "vol" else -1
        # the longest first: spans search their tail, and a standard deviation divides
        windows.append(((span > 0) * 2 + (ddof >= 0), (x, rows, span, wts, ddof, dst, label)))
        if what == "intensity":
            rates.append((dst, parse_duration(p) / 1e9))
    windows.sort(key=lambda cw: -cw[0])
    _core.rolling_many([job for _, job in windows], threads)
    for dst, seconds in rates:
        np.divide(dst, seconds, out=dst)
    return FeatureFrame(ts, cols)
