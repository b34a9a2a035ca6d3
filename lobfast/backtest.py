"""A first, deliberately simple backtest: trade a signal and hold each position to a horizon.

:func:`hold_to_horizon` opens a position where the signal crosses a threshold, crossing the
spread (a taker order at the best ask to buy, the best bid to sell), holds it for a fixed
horizon and closes it, either crossing the spread again (``exit="taker"``) or at the near
touch of the other side (``exit="maker"``, which assumes the resting order fills: an
optimistic bound). Returns are simple returns in fractions of the notional, net of fees.

It ignores queue position, partial fills, market impact and funding, and by default latency
(``latency=`` delays both legs to the first book row seen after the order arrives); it is meant
to tell whether a signal survives the spread and fees at all, not to size a strategy.

Examples
--------
>>> import numpy as np
>>> from lobfast import backtest
>>> ts = np.arange(6) * 1_000_000_000
>>> bid = np.array([99.0, 100.0, 101.0, 102.0, 101.0, 100.0])
>>> ask = bid + 1.0
>>> signal = np.array([1.0, np.nan, np.nan, -1.0, np.nan, np.nan])
>>> r = backtest.hold_to_horizon(signal, (ts, bid, ask), 2, fee_bps_taker=0.0)
>>> r.side.tolist(), r.entry_px.tolist(), r.exit_px.tolist()
([1, -1], [100.0, 102.0], [101.0, 101.0])
>>> np.round(r.net, 6).tolist()
[0.01, 0.009804]
"""

from __future__ import annotations

import datetime as _dt
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .containers import BookSnapshots
from .errors import LobWarning, _require
from .figures import figure, save
from .frame import _time_column
from .times import parse_horizon

__all__ = ["BacktestResult", "BacktestSweep", "hold_to_horizon", "plot_pnl"]

_SUMMARY = (
    "trades",
    "hit_rate",
    "gross_pnl",
    "net_pnl",
    "mean_net_bps",
    "turnover",
    "exposure",
    "sharpe_per_trade",
    "skipped_invalid",
    "skipped_end",
)


@dataclass(repr=False)
class BacktestResult:
    """The trades of one :func:`hold_to_horizon` run and their summary.

    Per trade (arrays of the same length, in entry order): ``signal_row`` (the row whose
    signal opened it), ``entry_row``, ``exit_row`` (the rows filled at: the signal's and the
    horizon's rows, later with ``latency``; int64 book rows), ``side`` (int8, +1 long, -1
    short), ``entry_px``, ``exit_px``, ``gross`` (simple return in fractions of the notional,
    before fees) and ``net`` (after fees). Summary numbers are properties, all together in :meth:`summary`.

    Attributes
    ----------
    skipped_invalid : signal rows not traded because the book was invalid at entry or exit.
    skipped_end : signal rows not traded because the horizon runs past the data.
    exposure : fraction of the book's rows with a position open (entry row to the row
        before the exit row).
    """

    entry_row: np.ndarray
    exit_row: np.ndarray
    side: np.ndarray
    entry_px: np.ndarray
    exit_px: np.ndarray
    gross: np.ndarray
    net: np.ndarray
    skipped_invalid: int
    skipped_end: int
    exposure: float
    threshold: float
    horizon: Any
    exit: str
    overlapping: bool
    fee_bps_taker: float
    fee_bps_maker: float
    n_rows: int
    ts: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    latency: Any = 0
    signal_row: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))

    @property
    def trades(self) -> int:
        return len(self.net)

    @property
    def hit_rate(self) -> float:
        """Fraction of trades with a positive net return (NaN without trades)."""
        return float(np.mean(self.net > 0)) if self.trades else float("nan")

    @property
    def gross_pnl(self) -> float:
        """Sum of gross returns (fractions of a notional of 1 per trade)."""
        return float(self.gross.sum())

    @property
    def net_pnl(self) -> float:
        """Sum of net returns."""
        return float(self.net.sum())

    @property
    def mean_net_bps(self) -> float:
        """Mean net return per trade in basis points (NaN without trades)."""
        return float(self.net.mean() * 1e4) if self.trades else float("nan")

    @property
    def turnover(self) -> float:
        """Notional traded, both legs, with a notional of 1 per trade: 2 x trades."""
        return 2.0 * self.trades

    @property
    def sharpe_per_trade(self) -> float:
        """Mean over standard deviation (ddof=1) of the net returns; not annualised. NaN with
        fewer than 2 trades or no dispersion."""
        if self.trades < 2:
            return float("nan")
        sd = float(self.net.std(ddof=1))
        return float(self.net.mean() / sd) if sd > 0 else float("nan")

    def summary(self) -> dict[str, Any]:
        """The summary numbers and the settings, as a dict."""
        out = {k: getattr(self, k) for k in _SUMMARY}
        out.update(
            threshold=self.threshold,
            horizon=self.horizon,
            exit=self.exit,
            overlapping=self.overlapping,
            fee_bps_taker=self.fee_bps_taker,
            fee_bps_maker=self.fee_bps_maker,
            latency=self.latency,
        )
        return out

    def equity(self, n_rows: int | None = None) -> np.ndarray:
        """Cumulative net PnL per book row: each trade's net return is booked at its exit row.

        ``n_rows`` defaults to the book's length.
        """
        n = self.n_rows if n_rows is None else int(n_rows)
        if self.trades and self.exit_row.max() >= n:
            raise ValueError(f"n_rows={n} is shorter than the last exit row {int(self.exit_row.max())}")
        return np.cumsum(np.bincount(self.exit_row, weights=self.net, minlength=n)[:n])

    def __repr__(self) -> str:
        s = self
        return (
            f"BacktestResult({s.trades} trades, threshold {s.threshold:g}, horizon {s.horizon!r}, exit {s.exit}: "
            f"net {s.net_pnl:+.6f} ({s.mean_net_bps:+.2f} bps/trade), gross {s.gross_pnl:+.6f}, "
            f"hit rate {s.hit_rate:.3f}, exposure {s.exposure:.3f}, sharpe/trade {s.sharpe_per_trade:.3f}; "
            f"skipped {s.skipped_invalid} invalid, {s.skipped_end} at the end)"
        )


@dataclass(repr=False)
class BacktestSweep:
    """One :class:`BacktestResult` per threshold (``hold_to_horizon`` with a list of them)."""

    thresholds: np.ndarray
    results: list[BacktestResult]

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self):
        return iter(self.results)

    def __getitem__(self, i: int) -> BacktestResult:
        return self.results[i]

    def table(self):
        """pandas.DataFrame, one row per threshold (the index) with the summary numbers."""
        pd = _require("pandas", "pandas")
        rows = [{k: r.summary()[k] for k in _SUMMARY} for r in self.results]
        return pd.DataFrame(rows, index=pd.Index(self.thresholds, name="threshold"))

    def best(self, metric: str = "net_pnl") -> BacktestResult:
        """The result with the highest ``metric`` (a summary key; NaN never wins).

        Picking the threshold on the data it is evaluated on overfits: choose it on
        validation rows and report the test rows.
        """
        if metric not in _SUMMARY:
            raise ValueError(f"metric must be one of {list(_SUMMARY)}, not {metric!r}")
        vals = np.array([getattr(r, metric) for r in self.results], dtype=np.float64)
        if np.isnan(vals).all():
            return self.results[0]
        return self.results[int(np.nanargmax(vals))]

    def __repr__(self) -> str:
        lines = [f"BacktestSweep({len(self.results)} thresholds)"]
        for r in self.results:
            lines.append(
                f"  threshold {r.threshold:<10g} {r.trades:>7} trades  net {r.net_pnl:+.6f}  "
                f"{r.mean_net_bps:+8.2f} bps/trade  hit {r.hit_rate:.3f}"
            )
        return "\n".join(lines)


# ------------------------------------------------------------------------------ inputs
def _book(book: Any, valid: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(ts, best bid, best ask, tradable) from a BookSnapshots or a (ts, bid, ask) tuple."""
    if isinstance(book, BookSnapshots):
        ts, bid, ask = book.ts, book.bid_px[:, 0], book.ask_px[:, 0]
        ok = book.valid
        if book.levels == 0:
            raise ValueError("the BookSnapshots has no levels")
    elif isinstance(book, tuple) and len(book) == 3:
        ts = _time_column(book[0])
        bid = np.asarray(book[1], dtype=np.float64)
        ask = np.asarray(book[2], dtype=np.float64)
        if bid.shape != ts.shape or ask.shape != ts.shape:
            raise ValueError(
                f"ts, bid and ask must be 1-D of the same length, got {ts.shape}, {bid.shape}, {ask.shape}"
            )
        ok = None
    else:
        raise TypeError("book must be a lobfast.BookSnapshots or a (ts, bid, ask) tuple of best prices")
    if np.any(ts[1:] < ts[:-1]):
        i = int(np.flatnonzero(ts[1:] < ts[:-1])[0]) + 1
        raise ValueError(f"the book's ts must be sorted: row {i} is earlier than row {i - 1}")
    with np.errstate(invalid="ignore"):
        priced = np.isfinite(bid) & np.isfinite(ask) & (bid > 0) & (bid < ask)
    if valid is not None:
        v = np.asarray(valid)
        if v.dtype != bool or v.shape != ts.shape:
            raise ValueError(
                f"valid must be a boolean mask with one entry per book row ({len(ts)}), got {v.dtype} {v.shape}"
            )
        ok = v if ok is None else ok & v
    return ts, bid, ask, priced if ok is None else priced & ok


def _fee(x: Any, name: str) -> float:
    try:
        f = float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of basis points, not {x!r}") from None
    if not (np.isfinite(f) and f >= 0):
        raise ValueError(f"{name} must be finite and >= 0 (basis points), not {x!r}")
    return f


def _thresholds(threshold: Any) -> tuple[np.ndarray, bool]:
    sweep = isinstance(threshold, (Sequence, np.ndarray)) and not isinstance(threshold, str) and np.ndim(threshold) > 0
    try:
        th = np.atleast_1d(np.asarray(threshold, dtype=np.float64))
    except (TypeError, ValueError):
        raise ValueError(f"threshold must be a number >= 0 or a list of them, not {threshold!r}") from None
    if th.ndim != 1 or not len(th) or not (np.isfinite(th).all() and (th >= 0).all()):
        raise ValueError(f"threshold must be finite and >= 0 (or a non-empty list of such), not {threshold!r}")
    return th, sweep


# ------------------------------------------------------------------------------ engine
def _later(t: np.ndarray, ns: int) -> np.ndarray:
    """t + ns, saturating at the largest int64 (a time past every row) instead of wrapping."""
    top = np.iinfo(np.int64).max
    return np.minimum(t, top - ns) + ns


def _exit_rows(ts: np.ndarray, rows: np.ndarray, h_rows: int, h_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """(exit row, past the end) for entries at ``rows``."""
    n = len(ts)
    if h_rows:
        j = rows + h_rows
        past = j >= n
        return np.minimum(j, n - 1), past
    end = _later(ts[rows], h_ns)
    past = end > ts[-1]
    return np.searchsorted(ts, end, side="right") - 1, past


def _delayed(ts: np.ndarray, rows: np.ndarray, l_rows: int, l_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """(fill row, past the end) of orders decided at ``rows`` and arriving ``l_rows`` rows or
    ``l_ns`` later: the first row at or after the arrival (the decision row itself with no
    latency)."""
    n = len(ts)
    if l_rows:
        j = rows + l_rows
    elif l_ns:
        j = np.maximum(rows, np.searchsorted(ts, _later(ts[rows], l_ns), side="left"))
    else:
        return rows, np.zeros(len(rows), bool)
    past = j >= n
    return np.minimum(j, n - 1), past


def _greedy(entries: np.ndarray, exits: np.ndarray) -> np.ndarray:
    """Positions in ``entries`` taken one at a time: after a trade entered at i and exiting at
    j, the next is the first entry at a row >= max(j, i + 1). One search per trade."""
    taken = []
    k, n, nxt = 0, len(entries), 0
    while True:
        k += int(np.searchsorted(entries[k:], nxt, side="left"))
        if k >= n:
            break
        taken.append(k)
        nxt = max(int(exits[k]), int(entries[k]) + 1)
        k += 1
    return np.asarray(taken, dtype=np.int64)


def _intervals(n: int, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Rows covered by any half-open interval [start, stop)."""
    d = np.zeros(n + 1, np.int64)
    np.add.at(d, start, 1)
    np.add.at(d, stop, -1)
    return np.cumsum(d[:n]) > 0


def _run(sig, thr, ts, bid, ask, ok, h, lat, horizon, fee_in, fee_out, maker, overlapping, settings):
    n = len(ts)
    with np.errstate(invalid="ignore"):
        side = np.where(sig > thr, 1, np.where(sig < -thr, -1, 0)).astype(np.int8)
    cand = np.flatnonzero(side)
    j, past = _exit_rows(ts, cand, *h)
    e, past_e = _delayed(ts, cand, *lat)  # the entry order fills here
    x, past_x = _delayed(ts, j, *lat)  # and the exit order, sent at the horizon's row
    past = past | past_e | past_x
    bad = ~past & ~(ok[e] & ok[x])
    good = ~past & ~bad
    gs, ge, gx = cand[good], e[good], x[good]
    if overlapping:
        free = np.ones(len(cand), bool)
    else:
        # one position at a time: the next signal acted on is the first at or after the
        # row the previous position closed on
        pick = _greedy(gs, gx)
        gs, ge, gx = gs[pick], ge[pick], gx[pick]
        free = ~_intervals(n, gs + 1, np.maximum(gx, gs + 1))[cand]
    gi, gj = ge, gx
    s = side[gs]
    long = s > 0
    entry_px = np.where(long, ask[gi], bid[gi])
    if maker:
        exit_px = np.where(long, ask[gj], bid[gj])
    else:
        exit_px = np.where(long, bid[gj], ask[gj])
    gross = s * (exit_px - entry_px) / entry_px
    net = gross - (fee_in + fee_out) / 1e4
    exposure = float(_intervals(n, gi, gj).mean()) if n else float("nan")
    return BacktestResult(
        entry_row=gi.astype(np.int64),
        exit_row=gj.astype(np.int64),
        side=s,
        entry_px=entry_px,
        exit_px=exit_px,
        gross=gross,
        net=net,
        skipped_invalid=int((bad & free).sum()),
        skipped_end=int((past & free).sum()),
        exposure=exposure,
        threshold=float(thr),
        horizon=horizon,
        ts=ts,
        n_rows=n,
        signal_row=gs.astype(np.int64),
        **settings,
    )


def hold_to_horizon(
    signal: Any,
    book: Any,
    horizon: int | str | _dt.timedelta | np.timedelta64,
    threshold: float | Sequence[float] = 0.0,
    *,
    fee_bps_taker: float = 4.0,
    fee_bps_maker: float = 0.0,
    exit: str = "taker",
    overlapping: bool = False,
    valid: Any = None,
    latency: int | str | _dt.timedelta | np.timedelta64 = 0,
) -> BacktestResult | BacktestSweep:
    """Enter where ``|signal| > threshold``, hold for ``horizon``, exit; PnL net of fees.

    - **Entry** at row i (always a taker order): long when ``signal[i] > threshold``, buying
      at the best ask; short when ``signal[i] < -threshold``, selling at the best bid. NaN
      is no signal.
    - **Exit** at row j: ``i + horizon`` for an int horizon (rows), or for a duration the
      last row with ``ts <= ts[i] + horizon`` (the book in effect then).
      ``exit="taker"`` crosses the spread back (a long sells at the bid, a short buys at the
      ask) and pays ``fee_bps_taker``; ``exit="maker"`` closes at the near touch of the other
      side (a long sells at the ask, a short buys at the bid) and pays ``fee_bps_maker``: it
      assumes the resting order is filled at once and in full, which it often is not, so it
      is an optimistic bound.
    - **Returns** are simple, per unit of notional: long ``(exit - entry) / entry``, short
      ``(entry - exit) / entry``; ``net = gross - (entry fee + exit fee) / 1e4``, each fee
      charged in basis points on a notional of 1.
    - **One position at a time** by default: after a trade from i to j, the next entry is
      the first signal row at or after j (a new position can open on the row the previous
      one closes; at the earliest the row after i). ``overlapping=True`` trades every signal
      row, positions overlapping; their returns share price moves, so they are not
      independent and the trade count, hit rate and Sharpe overstate the evidence (a
      :class:`lobfast.LobWarning` says so).
    - **Latency** (``latency=``, default 0: no delay, which is optimistic): an order sent at
      a row fills at the first book row at or after the row's time + latency (a duration),
      or ``latency`` rows later (an int); never earlier than the row it was sent at. Both
      legs are delayed: the entry is sent at the signal row, the exit at the horizon's row.
      ``entry_row`` / ``exit_row`` are the rows filled at, ``signal_row`` the signal's.
    - A signal row is **not traded** when the book is invalid at its entry or exit row
      (counted in ``skipped_invalid``) or its horizon runs past the data (``skipped_end``;
      for a duration: ``ts[i] + horizon`` after the last ``ts``). Rows that fall inside an
      open position are not counted as skipped.

    Parameters
    ----------
    signal : 1-D, one value per book row (NaN = no signal).
    book : a :class:`lobfast.BookSnapshots` (level 1 prices, its ``ts`` and ``valid``), or
        a ``(ts, best_bid, best_ask)`` tuple.
    horizon : int rows (>= 1) or a duration (``"10s"``, timedelta, timedelta64).
    threshold : >= 0, or a list of thresholds for a :class:`BacktestSweep`.
    fee_bps_taker, fee_bps_maker : fees in basis points per leg, finite and >= 0.
    exit : ``"taker"`` or ``"maker"``.
    overlapping : trade every signal row (see above).
    valid : boolean mask of tradable rows. Rows are always untradable where the best bid or
        ask is missing, not positive, or crossed (``bid >= ask``); for a BookSnapshots its
        own ``valid`` applies too, and ``valid`` restricts it further.
    latency : int rows (>= 0) or a duration (``"50ms"``, timedelta, timedelta64) between
        sending an order and the book row it fills at; 0 by default (see above).

    Returns
    -------
    :class:`BacktestResult`, or :class:`BacktestSweep` for a list of thresholds.

    Examples
    --------
    >>> import numpy as np
    >>> ts = np.arange(6) * 1_000_000_000
    >>> bid = np.array([99.0, 100.0, 101.0, 102.0, 101.0, 100.0])
    >>> sweep = hold_to_horizon([0.5, 2.0, 0.2, 3.0, 0.1, 0.0], (ts, bid, bid + 1), "1s", [0.0, 1.0],
    ...                         fee_bps_taker=0.0, exit="maker")
    >>> [r.trades for r in sweep], sweep.best().threshold
    ([5, 2], 0.0)
    """
    if exit not in ("taker", "maker"):
        raise ValueError(f"exit must be 'taker' or 'maker', not {exit!r}")
    fee_in = _fee(fee_bps_taker, "fee_bps_taker")
    fee_maker = _fee(fee_bps_maker, "fee_bps_maker")
    fee_out = fee_maker if exit == "maker" else fee_in
    h_rows, h_ns = parse_horizon(horizon)
    lat = parse_horizon(latency, "latency", allow_zero=True)
    ths, sweep = _thresholds(threshold)
    ts, bid, ask, ok = _book(book, valid)
    if not len(ts):
        raise ValueError("the book has no rows")
    sig = np.asarray(signal, dtype=np.float64)
    if sig.ndim != 1 or len(sig) != len(ts):
        raise ValueError(
            f"signal must be 1-D with one value per book row: signal has shape {sig.shape}, the book {len(ts)} rows"
        )
    if overlapping:
        warnings.warn(
            "overlapping=True: every signal row trades and positions overlap, so their returns share "
            "price moves and are not independent; the trade count, hit rate and Sharpe overstate the evidence",
            LobWarning,
            stacklevel=2,
        )
    settings = dict(
        latency=latency,
        exit=exit,
        overlapping=bool(overlapping),
        fee_bps_taker=fee_in,
        fee_bps_maker=fee_maker,
    )
    results = [
        _run(
            sig,
            t,
            ts,
            bid,
            ask,
            ok,
            (h_rows, h_ns),
            lat,
            horizon,
            fee_in,
            fee_out,
            exit == "maker",
            overlapping,
            settings,
        )
        for t in ths
    ]
    return BacktestSweep(ths, results) if sweep else results[0]


# ------------------------------------------------------------------------------ figure
def plot_pnl(result: BacktestResult | BacktestSweep, path: Any = None):
    """Cumulative net PnL (basis points of one notional) over time; one line per threshold
    for a sweep, and the gross PnL dashed for a single result.

    Returns
    -------
    matplotlib.figure.Figure (built without pyplot); saved to ``path`` too when given.
    """
    results = list(result) if isinstance(result, BacktestSweep) else [result]
    if not results or not all(isinstance(r, BacktestResult) for r in results):
        raise TypeError("plot_pnl takes a BacktestResult or a BacktestSweep")
    fig = figure(figsize=(8, 4))
    ax = fig.subplots()
    for r in results:
        x = r.ts.view("datetime64[ns]") if len(r.ts) == r.n_rows else np.arange(r.n_rows)
        label = f"threshold {r.threshold:g}: {r.trades} trades, {r.mean_net_bps:+.2f} bps/trade"
        ax.step(x, r.equity() * 1e4, where="post", label=label)
        if len(results) == 1:
            gross = np.cumsum(np.bincount(r.exit_row, weights=r.gross, minlength=r.n_rows)[: r.n_rows])
            ax.step(x, gross * 1e4, where="post", ls="--", color="tab:gray", label="gross (before fees)")
    r0 = results[0]
    ax.axhline(0, color="k", lw=0.5)
    ax.set_ylabel("cumulative PnL (bps of notional)")
    ax.set_title(f"hold to horizon {r0.horizon!r}, exit {r0.exit}, fees {r0.fee_bps_taker:g} bps taker")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    save(fig, path)
    return fig
