"""Order-flow calibration: a :class:`FlowModel` measured on a real recording (:func:`calibrate`).

Levels are counted in ticks from the *opposite* best quote (Cont, Stoikov and Talreja 2010):
a bid at level ``k`` sits ``k`` ticks below the best ask, an ask at level ``k`` ``k`` ticks
above the best bid. With a one-tick spread level 1 is the touch; with a wider spread the
first levels are the empty prices inside it, where new orders narrow the spread again.

What is measured, per level and per second, both sides pooled (numbers are per side):

- limit orders: the size added (``limit_rate``) and the number of additions
  (``limit_count``), hence their mean size;
- cancellations: the size removed other than by trades, per unit of resting size
  (``cancel_rate``), and the number of cancellations (``cancel_count``);
- market orders per side (taker buys, taker sells): trades sharing a timestamp and a side are
  one order; their rate, their size distribution (empirical quantiles and a lognormal fit),
  the number of trades per order, and how they cluster in time: an exponential-kernel Hawkes
  process whose variance of counts over windows of 10 ms to minutes matches theirs;
- the resting size per level (share of time the level holds anything, and quantiles of
  what it holds) and the spread in ticks, both from the rebuilt book sampled on a grid.

The simulator runs a queue model, per tick of distance out to ``depth`` ticks (one bucket
per tick up to ``levels``, wider buckets beyond, where a BTCUSDT book is sparse: about one
price in 30 holds an order): a queue is a list of orders; on an empty tick an order arrives
at ``birth_rate``, on an occupied one at ``join_rate``, and every resting order is cancelled
whole at a rate set so that occupied ticks empty at ``death_rate``. The three are counted
on the depth rows (a price going from nothing to something, something to more, something to
nothing) per second the ticks spent empty or occupied, so a tick holds size about
``birth / (birth + death)`` of the time, as it did in the recording (``tick_occupancy``).
Orders are sized from the resting sizes (``tick_size_quantiles``), scaled so that a queue of
the model's mean number of orders has the recorded mean. ``mid_move_rate`` counts how often
the mid moved.

Size changes come from the depth rows themselves: each row's change against the last row
at the same price, with the trades that fell inside the message's interval at that price
counted as executions rather than cancellations. Exchange diffs are aggregated (every 100 ms
on Binance spot), so several orders at one level within an interval show as one change:
counts are lower bounds and mean sizes upper bounds; sizes per second are exact up to
orders that arrive and leave within one interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

import numpy as np

from ..book import reconstruct
from ..containers import BookSnapshots, MarketData, Trades
from ..flags import Flags
from ..times import parse_duration

QUEUE_PROBS = np.linspace(0.0, 1.0, 21)
"""Probabilities of the stored queue-size quantiles (0, 5, ..., 100 %)."""

SIZE_PROBS = np.linspace(0.0, 1.0, 101)
"""Probabilities of the stored market-order size quantiles (0, 1, ..., 100 %)."""

SPREAD_TICKS = 64
"""Spread probabilities are kept for 1 .. SPREAD_TICKS - 1 ticks and one bucket for wider."""

MAX_BRANCHING = 0.95
"""Largest self-excitation of market orders calibrated or accepted (cascades stay short)."""

BUCKET_GROWTH = 1.5
"""Beyond the first ``levels`` ticks the queue model pools distances in buckets, each about
this much wider than the one before (deep ticks see few events each)."""

MAX_DEPTH = 100_000
"""Deepest book (ticks from the opposite best) calibrated or simulated."""

IMBALANCE_BUCKETS = 5
"""States of a side's share of the size at the two best quotes, for the reactive flow."""

ACTIVITY_BUCKETS = 4
"""States of recent activity for the reactive flow: 0, 1, 2, 3 or more mid changes in the last
``ACTIVITY_WINDOW_NS``."""

ACTIVITY_WINDOW_NS = 1_000_000_000

REACTIVE_PRIOR = 10.0
"""Pseudo-events pulling each state's rate towards the overall one."""

_MAX_ORDERS = 50.0
"""Cap on the mean number of orders of a queue (``orders_per_queue``) when none ever empties."""


# ----------------------------------------------------------------------------- grids
def decimal_step(x: float) -> tuple[int, int]:
    """``(units, decimals)`` with ``x == units / 10**decimals`` for a decimal step such as 0.01."""
    if not (isinstance(x, (int, float, np.floating, np.integer)) and math.isfinite(x) and x > 0):
        raise ValueError(f"a tick or lot must be a positive finite number, not {x!r}")
    d = Decimal(repr(float(x))).normalize()
    sign, digits, exp = d.as_tuple()
    units = int("".join(map(str, digits)))
    if exp >= 0:
        return units * 10**exp, 0
    return units, -exp


def infer_step(values: np.ndarray, max_decimals: int = 12) -> float:
    """The grid step of ``values``: the greatest common divisor of their decimal expansions
    (e.g. 0.01 for prices with two decimals). ValueError if they are on no decimal grid."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0:
        raise ValueError("no positive values to infer a grid step from")
    v = np.unique(v)
    for d in range(max_decimals + 1):
        x = v * 10.0**d
        r = np.rint(x)
        if r.max() < 2**62 and np.all(np.abs(x - r) <= 1e-11 * np.maximum(1.0, x)):
            g = int(np.gcd.reduce(r.astype(np.int64)))
            return g / 10**d
    raise ValueError(f"the values are on no decimal grid with up to {max_decimals} decimals")


# ----------------------------------------------------------------------------- the model
_ARRAYS = {
    "limit_rate": 1,
    "limit_count": 1,
    "cancel_rate": 1,
    "cancel_count": 1,
    "queue_mean": 1,
    "queue_occupancy": 1,
    "queue_quantiles": 2,
    "market_rate": 1,
    "trade_rate": 1,
    "market_size_quantiles": 1,
    "spread_probs": 1,
    "tick_edges": 1,
    "tick_occupancy": 1,
    "birth_rate": 1,
    "join_rate": 1,
    "death_rate": 1,
    "order_size_quantiles": 2,
    "tick_size_quantiles": 2,
}


@dataclass(repr=False, eq=False)
class FlowModel:
    """Order-flow rates of one market, per second, per side (see :mod:`lobfast.sim.flow`).

    Arrays indexed by level hold levels 1..``levels`` (index 0 is level 1); levels count
    ticks from the opposite best quote. Two-element arrays are ``[taker buy, taker sell]``.

    Attributes
    ----------
    symbol, tick, lot : the instrument, its price step and its size step.
    ref_price : median mid price of the calibration sample (the default starting price).
    duration_s : seconds of synced book the rates were measured on.
    limit_rate : (L,) size added by limit orders per second at each level.
    limit_count : (L,) limit-order additions per second at each level.
    cancel_rate : (L,) size cancelled per second per unit of resting size.
    cancel_count : (L,) cancellations per second at each level.
    queue_mean : (L,) time-averaged resting size (empty counted as 0).
    queue_occupancy : (L,) share of the time a level holds size.
    queue_quantiles : (L, len(QUEUE_PROBS)) quantiles of the resting size when not empty.
    add_size_sigma, cancel_size_sigma : lognormal shape of addition / cancellation sizes
        around each level's mean size.
    market_rate : (2,) market orders per second, taker buys and taker sells.
    trade_rate : (2,) trades per second, taker buys and taker sells.
    market_size_quantiles : (len(SIZE_PROBS),) quantiles of market-order sizes.
    market_size_lognormal : ``(mu, sigma)`` of log market-order sizes.
    market_size_mean : mean market-order size (the simulator sets the top quantile so that
        its draws have this mean).
    trades_per_order : trades per market order (fills against distinct resting orders).
    spread_probs : (SPREAD_TICKS,) share of time with a spread of 1, 2, ... ticks (last: wider).
    exec_share : share of the size leaving level 1 that left through trades.
    tick_edges : (B + 1,) the queue model's buckets of distance: bucket ``b`` holds the ticks
        ``tick_edges[b] <= d < tick_edges[b + 1]`` from the opposite best (one tick each up to
        ``levels``, then wider); ``depth = tick_edges[-1] - 1`` ticks are modelled.
    tick_occupancy : (B,) share of the time a tick of the bucket holds size.
    birth_rate : (B,) per second and per empty tick: an order arrives there (a new queue).
    join_rate : (B,) per second and per occupied tick: an order joins the queue.
    death_rate : (B,) per second and per occupied tick: the queue empties (cancelled or traded away).
    order_size_quantiles : (B, len(QUEUE_PROBS)) sizes of the orders that arrive.
    tick_size_quantiles : (B, len(QUEUE_PROBS)) resting size of an occupied tick.
    mid_move_rate : changes of the mid per second (each leaves the side it moves away from
        thin behind its new best quote until new orders arrive there).
    market_branching, market_decay : market orders of each side arrive as a self-exciting
        (Hawkes) process: each order brings ``market_branching`` more on average, spread over
        an exponential delay of rate ``market_decay`` per second (0 and anything: Poisson).
    react_market, react_cancel, react_improve : (IMBALANCE_BUCKETS, ACTIVITY_BUCKETS) how the
        flow at the best quotes reacts to the book (queue-reactive): the rate of market orders
        hitting a side, of size cancelled from its best queue (per unit of size) and of orders
        improving its best quote inside a spread wider than a tick, each over its overall
        rate, by the side's share of the size at the two best quotes (:func:`imbalance_bucket`:
        5 equal-width buckets, 0 = its queue is much the smaller) and by the number of mid
        changes in the last second (:func:`activity_bucket`: 0, 1, 2, 3+). Time-weighted
        means are 1 on the recording; all ones: rates that ignore the book. Both sides are
        pooled, mirror images of each other, so the flow has no drift of its own.
    deplete_rate : (IMBALANCE_BUCKETS, ACTIVITY_BUCKETS) per second: a side's best queue
        emptying with no market order on that side (its last orders cancelled, the best
        retreating), by the same states. The flow-driven simulator empties best queues by
        cancellation at this rate (and never otherwise); all zeros: per order, as elsewhere.
    sweep_share : (IMBALANCE_BUCKETS, ACTIVITY_BUCKETS) the share of market orders that took
        the whole best queue they hit, by the same states (a queue that is small against the
        other side's is swept more often). The flow-driven simulator sizes market orders so;
        NaN: sizes drawn without regard to the queue.
    follow_share : of the messages in which a best quote retreated (the bid fell, the ask
        rose), the share in which the other best followed it (moved the same way); the
        flow-driven simulator's orders inside a spread come from the following side with
        this probability (0.5: either side alike).
    improve_size_quantiles : (len(QUEUE_PROBS),) quantiles of the size a best queue holds in
        the message that moved its price closer to the other side (an order inside the spread,
        or the other side following a retreating quote), both sides pooled: the recorded ones
        quote far more than a typical order at the touch (BTCUSDT spot: a median of 3.6 against
        0.8), so the side a move leads to is the larger one and the book foretells the move
        after. The flow-driven simulator sizes an order improving a best quote so; all NaN: as
        any order at its distance.
    touch_persistence : per second, how fast the size of a best queue forgets itself while its
        price holds: ``-ln(corr) / lag`` fitted over lags of 100 ms to 1 s, ``corr`` the
        correlation of the log size of the best queue at two times of the 100 ms book with the
        same best price (:func:`touch_persistence`; BTCUSDT spot: 0.72/s). A queue whose
        orders are each cancelled at rate ``c`` forgets its size at about ``c``, so the
        flow-driven simulator slows its touch's cancellations (and joins alike, keeping its
        orders per queue) to this rate when the queue model turns the touch over faster; 0:
        as calibrated per order.
    """

    symbol: str
    tick: float
    lot: float
    ref_price: float
    duration_s: float
    levels: int
    limit_rate: np.ndarray
    limit_count: np.ndarray
    cancel_rate: np.ndarray
    cancel_count: np.ndarray
    queue_mean: np.ndarray
    queue_occupancy: np.ndarray
    queue_quantiles: np.ndarray
    add_size_sigma: float
    cancel_size_sigma: float
    market_rate: np.ndarray
    trade_rate: np.ndarray
    market_size_quantiles: np.ndarray
    market_size_lognormal: tuple[float, float]
    market_size_mean: float
    trades_per_order: float
    spread_probs: np.ndarray
    exec_share: float
    tick_edges: np.ndarray
    tick_occupancy: np.ndarray
    birth_rate: np.ndarray
    join_rate: np.ndarray
    death_rate: np.ndarray
    order_size_quantiles: np.ndarray
    tick_size_quantiles: np.ndarray
    mid_move_rate: float
    market_branching: float = 0.0
    market_decay: float = 1.0
    react_market: np.ndarray = field(default_factory=lambda: np.ones((IMBALANCE_BUCKETS, ACTIVITY_BUCKETS)))
    react_cancel: np.ndarray = field(default_factory=lambda: np.ones((IMBALANCE_BUCKETS, ACTIVITY_BUCKETS)))
    react_improve: np.ndarray = field(default_factory=lambda: np.ones((IMBALANCE_BUCKETS, ACTIVITY_BUCKETS)))
    deplete_rate: np.ndarray = field(default_factory=lambda: np.zeros((IMBALANCE_BUCKETS, ACTIVITY_BUCKETS)))
    sweep_share: np.ndarray = field(default_factory=lambda: np.full((IMBALANCE_BUCKETS, ACTIVITY_BUCKETS), np.nan))
    follow_share: float = 0.5
    improve_size_quantiles: np.ndarray = field(default_factory=lambda: np.full(len(QUEUE_PROBS), np.nan))
    touch_persistence: float = 0.0
    source: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, nd in _ARRAYS.items():
            arr = np.array(getattr(self, name), dtype=np.float64)
            if arr.ndim != nd:
                raise ValueError(f"FlowModel.{name} must be {nd}-D, got shape {arr.shape}")
            if not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise ValueError(f"FlowModel.{name} must hold finite values >= 0")
            setattr(self, name, arr)
        self.levels = int(self.levels)
        if self.levels < 1:
            raise ValueError(f"FlowModel.levels must be >= 1, not {self.levels}")
        for name in ("limit_rate", "limit_count", "cancel_rate", "cancel_count", "queue_mean", "queue_occupancy"):
            if getattr(self, name).shape != (self.levels,):
                raise ValueError(f"FlowModel.{name} must have {self.levels} levels, got {getattr(self, name).shape}")
        if self.queue_quantiles.shape != (self.levels, len(QUEUE_PROBS)):
            raise ValueError(f"FlowModel.queue_quantiles must have shape ({self.levels}, {len(QUEUE_PROBS)})")
        if self.market_rate.shape != (2,) or self.trade_rate.shape != (2,):
            raise ValueError("FlowModel.market_rate and trade_rate hold [taker buy, taker sell]")
        if self.market_size_quantiles.shape != (len(SIZE_PROBS),):
            raise ValueError(f"FlowModel.market_size_quantiles must hold {len(SIZE_PROBS)} quantiles")
        if self.spread_probs.shape != (SPREAD_TICKS,) or not math.isclose(self.spread_probs.sum(), 1.0, abs_tol=1e-6):
            raise ValueError(f"FlowModel.spread_probs must hold {SPREAD_TICKS} probabilities summing to 1")
        e = self.tick_edges
        if len(e) < 2 or e[0] != 1 or np.any(np.diff(e) <= 0) or np.any(e != np.rint(e)) or e[-1] > MAX_DEPTH + 1:
            raise ValueError(
                f"FlowModel.tick_edges must be increasing whole ticks from 1 up to at most {MAX_DEPTH + 1}"
            )
        self.tick_edges = e.astype(np.int64)
        nb = len(e) - 1
        for name in ("tick_occupancy", "birth_rate", "join_rate", "death_rate"):
            if getattr(self, name).shape != (nb,):
                raise ValueError(f"FlowModel.{name} must have one value per bucket of tick_edges ({nb})")
        for name in ("order_size_quantiles", "tick_size_quantiles"):
            if getattr(self, name).shape != (nb, len(QUEUE_PROBS)):
                raise ValueError(f"FlowModel.{name} must have shape ({nb}, {len(QUEUE_PROBS)})")
        if np.any(self.tick_occupancy > 1):
            raise ValueError("FlowModel.tick_occupancy holds shares of time: at most 1")
        for name in ("tick", "lot"):
            decimal_step(getattr(self, name))
            setattr(self, name, float(getattr(self, name)))
        for name in (
            "ref_price",
            "duration_s",
            "add_size_sigma",
            "cancel_size_sigma",
            "trades_per_order",
            "mid_move_rate",
            "market_size_mean",
        ):
            v = float(getattr(self, name))
            if not math.isfinite(v) or v < 0:
                raise ValueError(f"FlowModel.{name} must be finite and >= 0, not {v}")
            setattr(self, name, v)
        if self.ref_price <= 0:
            raise ValueError("FlowModel.ref_price must be positive")
        if self.trades_per_order < 1:
            raise ValueError("FlowModel.trades_per_order must be >= 1")
        self.exec_share = float(self.exec_share)
        if not 0.0 <= self.exec_share <= 1.0:
            raise ValueError("FlowModel.exec_share must be in [0, 1]")
        self.market_branching, self.market_decay = float(self.market_branching), float(self.market_decay)
        self.follow_share = float(self.follow_share)
        self.touch_persistence = float(self.touch_persistence)
        if not (math.isfinite(self.touch_persistence) and self.touch_persistence >= 0):
            raise ValueError(f"FlowModel.touch_persistence must be a finite rate >= 0, not {self.touch_persistence}")
        if not 0.0 <= self.follow_share <= 1.0:
            raise ValueError(f"FlowModel.follow_share must be in [0, 1], not {self.follow_share}")
        for name in ("react_market", "react_cancel", "react_improve", "deplete_rate", "sweep_share"):
            arr = np.array(getattr(self, name), dtype=np.float64)
            unset = name == "sweep_share" and arr.shape == (IMBALANCE_BUCKETS, ACTIVITY_BUCKETS) and np.isnan(arr).all()
            if not unset and (
                arr.shape != (IMBALANCE_BUCKETS, ACTIVITY_BUCKETS)
                or not np.all(np.isfinite(arr))
                or np.any(arr < 0)
                or (name == "sweep_share" and np.any(arr > 1))
            ):
                raise ValueError(
                    f"FlowModel.{name} must hold ({IMBALANCE_BUCKETS}, {ACTIVITY_BUCKETS}) finite values >= 0"
                    f"{' and <= 1 (or all NaN)' if name == 'sweep_share' else ''}, got shape {arr.shape}"
                )
            setattr(self, name, arr)
        arr = np.array(self.improve_size_quantiles, dtype=np.float64)
        if arr.shape != QUEUE_PROBS.shape or not (
            np.isnan(arr).all() or (np.all(np.isfinite(arr)) and np.all(arr > 0) and np.all(np.diff(arr) >= 0))
        ):
            raise ValueError(
                f"FlowModel.improve_size_quantiles must hold {len(QUEUE_PROBS)} increasing sizes > 0 (or all NaN)"
            )
        self.improve_size_quantiles = arr
        if not 0.0 <= self.market_branching <= MAX_BRANCHING:
            raise ValueError(f"FlowModel.market_branching must be in [0, {MAX_BRANCHING}]")
        if not (math.isfinite(self.market_decay) and self.market_decay > 0):
            raise ValueError("FlowModel.market_decay must be a positive rate per second")
        mu, sigma = (float(x) for x in self.market_size_lognormal)
        self.market_size_lognormal = (mu, sigma)
        self.symbol = str(self.symbol)
        self.source = dict(self.source)

    # -- derived
    @property
    def limit_size(self) -> np.ndarray:
        """Mean size of one limit-order addition per level (0 where none was seen)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.limit_count > 0, self.limit_rate / np.maximum(self.limit_count, 1e-300), 0.0)

    @property
    def cancel_size(self) -> np.ndarray:
        """Mean size of one cancellation per level (0 where none was seen)."""
        vol = self.cancel_rate * self.queue_mean
        return np.where(self.cancel_count > 0, vol / np.maximum(self.cancel_count, 1e-300), 0.0)

    @property
    def depth(self) -> int:
        """Ticks from the opposite best covered by the queue model."""
        return int(self.tick_edges[-1] - 1)

    @property
    def orders_per_queue(self) -> np.ndarray:
        """(B,) ``m`` such that an occupied tick holds a zero-truncated Poisson(``m``) number
        of orders in the queue model: ``m = ln(1 + join_rate / death_rate)`` (a queue of one
        order dies at the order's cancellation rate; 0 where no order joins)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            m = np.log1p(np.where(self.death_rate > 0, self.join_rate / self.death_rate, np.inf))
        return np.where(self.join_rate > 0, np.minimum(m, _MAX_ORDERS), 0.0)

    @property
    def order_cancel_rate(self) -> np.ndarray:
        """(B,) per second: the rate at which each resting order is cancelled, whole, in the
        queue model (``join_rate / orders_per_queue``; ``death_rate`` for one-order queues)."""
        m = self.orders_per_queue
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(m > 0, self.join_rate / np.where(m > 0, m, 1.0), self.death_rate)

    @property
    def spread_mean(self) -> float:
        """Mean spread in ticks (the wide bucket counted at its lower edge)."""
        return float(np.dot(np.arange(1, SPREAD_TICKS + 1), self.spread_probs))

    # -- text
    def __repr__(self) -> str:
        return (
            f"FlowModel({self.symbol or '?'}: tick={self.tick:g}, lot={self.lot:g}, levels={self.levels}, "
            f"limit={self.limit_rate.sum():.4g}/s, cancel@1={self.cancel_rate[0]:.3g}/s, "
            f"market={self.market_rate[0]:.3g}+{self.market_rate[1]:.3g}/s, spread={self.spread_mean:.2f} ticks)"
        )

    def summary(self) -> str:
        """A table of the calibrated numbers, per-second units."""
        lines = [
            f"FlowModel {self.symbol or '?'}: tick {self.tick:g}, lot {self.lot:g}, reference price "
            f"{self.ref_price:.10g}, calibrated on {self.duration_s:.1f} s",
            f"market orders/s: buy {self.market_rate[0]:.4g}, sell {self.market_rate[1]:.4g}; "
            f"trades/s: buy {self.trade_rate[0]:.4g}, sell {self.trade_rate[1]:.4g}; "
            f"{self.trades_per_order:.3g} trades per order; self-excitation {self.market_branching:.2f} "
            f"(decay {self.market_decay:.3g}/s)",
            "market order size: "
            + ", ".join(
                f"q{int(p * 100)} {self.market_size_quantiles[int(round(p * 100))]:.6g}" for p in (0.1, 0.5, 0.9, 0.99)
            )
            + f"; lognormal mu {self.market_size_lognormal[0]:.3f} sigma {self.market_size_lognormal[1]:.3f}",
            f"spread: mean {self.spread_mean:.3f} ticks, one tick {self.spread_probs[0]:.1%}; "
            f"execution share at level 1 {self.exec_share:.1%}",
            f"{'level':>5} {'limit size/s':>13} {'limits/s':>9} {'cancel /s/q':>12} {'cancels/s':>10} "
            f"{'mean queue':>11} {'occupied':>9} {'median q':>10}",
        ]
        mid = len(QUEUE_PROBS) // 2
        for k in range(self.levels):
            lines.append(
                f"{k + 1:>5} {self.limit_rate[k]:>13.5g} {self.limit_count[k]:>9.4g} {self.cancel_rate[k]:>12.4g} "
                f"{self.cancel_count[k]:>10.4g} {self.queue_mean[k]:>11.5g} {self.queue_occupancy[k]:>9.1%} "
                f"{self.queue_quantiles[k, mid]:>10.5g}"
            )
        lines.append(
            f"queue model, {self.depth} ticks: {'ticks':>11} {'occupied':>9} {'births/s':>9} {'joins/s':>9} "
            f"{'deaths/s':>9} {'orders':>7} {'median order':>13} {'median q':>10}"
        )
        m, e = self.orders_per_queue, self.tick_edges
        for b in range(len(e) - 1):
            span = f"{e[b]}" if e[b + 1] == e[b] + 1 else f"{e[b]}-{e[b + 1] - 1}"
            lines.append(
                f"{'':>27}{span:>11} {self.tick_occupancy[b]:>9.1%} {self.birth_rate[b]:>9.4g} "
                f"{self.join_rate[b]:>9.4g} {self.death_rate[b]:>9.4g} {m[b]:>7.3g} "
                f"{self.order_size_quantiles[b, mid]:>13.5g} {self.tick_size_quantiles[b, mid]:>10.5g}"
            )
        return "\n".join(lines)

    # -- saving
    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (lists, floats, str): JSON-serialisable."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                v = v.tolist()
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FlowModel:
        """The model saved by :meth:`to_dict` (validated)."""
        if not isinstance(d, dict):
            raise TypeError(f"FlowModel.from_dict takes a dict, not {type(d).__name__}")
        names = {f.name for f in fields(cls)}
        optional = {
            "source",
            "market_branching",
            "market_decay",
            "react_market",
            "react_cancel",
            "react_improve",
            "deplete_rate",
            "sweep_share",
            "follow_share",
            "improve_size_quantiles",
            "touch_persistence",
        }
        missing = sorted(names - set(d) - optional)
        extra = sorted(set(d) - names)
        if missing or extra:
            raise ValueError(f"FlowModel.from_dict: missing {missing}, unexpected {extra}")
        return cls(**d)


# ----------------------------------------------------------------------------- calibration
def _market_orders(trades: Trades) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Trades sharing a timestamp and a taker side, consecutive: one market order each.
    Returns (start index, side, size) per order."""
    ts, side = trades.ts, trades.side
    if len(ts) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int8), np.empty(0)
    new = np.ones(len(ts), bool)
    new[1:] = (ts[1:] != ts[:-1]) | (side[1:] != side[:-1])
    starts = np.flatnonzero(new)
    return starts, side[starts], np.add.reduceat(trades.qty, starts)


def _queues_by_distance(book: BookSnapshots, tick: float, levels: int, rows: np.ndarray) -> np.ndarray:
    """(len(rows), 2, levels): resting size at 1..levels ticks from the opposite best, bids then asks."""
    out = np.zeros((len(rows), 2, levels))
    if len(rows) == 0:
        return out
    bid_px, bid_sz = book.bid_px[rows], book.bid_sz[rows]
    ask_px, ask_sz = book.ask_px[rows], book.ask_sz[rows]
    best_bid = np.rint(bid_px[:, :1] / tick)
    best_ask = np.rint(ask_px[:, :1] / tick)
    for s, (px, sz, dist) in enumerate(
        ((bid_px, bid_sz, best_ask - np.rint(bid_px / tick)), (ask_px, ask_sz, np.rint(ask_px / tick) - best_bid))
    ):
        ok = np.isfinite(px) & np.isfinite(dist) & (dist >= 1) & (dist <= levels) & (sz > 0)
        r, c = np.nonzero(ok)
        out[r, s, dist[r, c].astype(np.int64) - 1] = sz[r, c]
    return out


def tick_profile(book: BookSnapshots, tick: float, depth: int, rows: np.ndarray | None = None):
    """Which ticks hold size, by distance from the opposite best, on rows of a rebuilt book.

    Returns ``(occupied, seen, dist, size)``: ``occupied[d]`` and ``seen[d]`` (d = 0..depth,
    index 0 unused) count the (row, side) pairs where the tick ``d`` ticks from the opposite
    best held size and where it was in view (a side whose last column is filled shows
    nothing beyond its deepest level); ``dist`` and ``size`` list every occupied tick in view.
    ``rows``: the rows to use (default: those with both best quotes)."""
    if rows is None:
        rows = np.flatnonzero(book.valid & np.isfinite(book.bid_px[:, 0]) & np.isfinite(book.ask_px[:, 0]))
    occupied = np.zeros(depth + 1)
    horizon_n = np.zeros(depth + 1)
    dists, sizes = [np.empty(0, np.int64)], [np.empty(0)]
    if len(rows) and book.levels:
        best_bid = np.rint(book.bid_px[rows, :1] / tick)
        best_ask = np.rint(book.ask_px[rows, :1] / tick)
        for sz, dist in (
            (book.bid_sz[rows], best_ask - np.rint(book.bid_px[rows] / tick)),
            (book.ask_sz[rows], np.rint(book.ask_px[rows] / tick) - best_bid),
        ):
            last = dist[:, -1]
            horizon = np.where(np.isfinite(last), np.clip(last, 0, depth), depth).astype(np.int64)
            horizon_n += np.bincount(horizon, minlength=depth + 1)
            ok = np.isfinite(dist) & (sz > 0) & (dist >= 1) & (dist <= depth)
            d = dist[ok].astype(np.int64)
            occupied += np.bincount(d, minlength=depth + 1)
            dists.append(d)
            sizes.append(sz[ok])
    seen = np.cumsum(horizon_n[::-1])[::-1]  # pairs whose view reaches d or further
    return occupied, seen, np.concatenate(dists), np.concatenate(sizes)


def bucket_edges(levels: int, depth: int) -> np.ndarray:
    """Buckets of distance for the queue model: one tick each up to ``levels``, then each
    about ``BUCKET_GROWTH`` times wider than the one before, up to ``depth`` ticks."""
    e = list(range(1, min(levels, depth) + 1))
    x = e[-1] + 1
    while x <= depth:
        e.append(x)
        x = max(x + 1, int(round(x * BUCKET_GROWTH)))
    if len(e) > levels + 1 and depth + 1 - e[-1] < (e[-1] - e[-2]) / 2:
        e.pop()  # no sliver at the end
    return np.array([*e, depth + 1], np.int64)


def _bucket_quantiles(values: np.ndarray, bucket: np.ndarray, nb: int, floor: float) -> np.ndarray:
    """(nb, len(QUEUE_PROBS)) quantiles of values per bucket; a bucket without values takes
    the nearest one's (``floor`` everywhere when there are none)."""
    out = np.full((nb, len(QUEUE_PROBS)), floor)
    have = [b for b in range(nb) if np.any(bucket == b)]
    if not have:
        return out
    order = np.argsort(bucket, kind="stable")
    bs, vs = bucket[order], values[order]
    cuts = np.searchsorted(bs, np.arange(nb + 1))
    for b in have:
        out[b] = np.quantile(vs[cuts[b] : cuts[b + 1]], QUEUE_PROBS)
    idx = np.array(have)
    for b in range(nb):
        if b not in have:
            out[b] = out[idx[np.argmin(np.abs(idx - b))]]
    return out


def loglinear_mean(quantiles: np.ndarray, probs: np.ndarray) -> float:
    """Mean of the distribution whose log is linear in probability between the quantiles
    (the way the simulator draws sizes)."""
    q = np.asarray(quantiles, np.float64)
    a, b, w = q[:-1], q[1:], np.diff(probs)
    with np.errstate(divide="ignore", invalid="ignore"):
        seg = np.where(b > a * (1 + 1e-12), (b - a) / np.log(b / np.where(a > 0, a, 1.0)), a)
    return float(np.sum(w * seg))


def match_mean(quantiles: np.ndarray, probs: np.ndarray, mean: float) -> np.ndarray:
    """The quantiles with the top one lowered (to no less than the one below it) so that the
    distribution log-linear between them has the given mean: between the last two it would
    otherwise spread a few extreme values evenly in log size and overstate the mean."""
    q = np.array(quantiles, np.float64)
    lo, hi = q[-2], q[-1]
    if not (mean > 0 and lo > 0) or hi <= lo or loglinear_mean(q, probs) <= mean:
        return q
    for _ in range(60):  # bisection on a log scale
        q[-1] = math.sqrt(lo * hi)
        if loglinear_mean(q, probs) < mean:
            lo = q[-1]
        else:
            hi = q[-1]
    q[-1] = lo
    return q


def fano_factor(times_ns: np.ndarray, t0: int, t1: int, windows: np.ndarray) -> np.ndarray:
    """Variance over mean of event counts in consecutive windows of each length (seconds)."""
    out = np.full(len(windows), np.nan)
    x = (np.asarray(times_ns, np.int64) - t0) / 1e9
    span = (t1 - t0) / 1e9
    for i, w in enumerate(windows):
        nb = int(span / w)
        if nb < 10:
            continue
        c = np.bincount((x[x < nb * w] / w).astype(np.int64), minlength=nb)[:nb]
        if c.mean() > 0:
            out[i] = c.var() / c.mean()
    return out


def hawkes_fano(branching, gamma, windows):
    """Fano factor of a stationary exponential-kernel Hawkes process over windows ``tau``:
    ``A - (A - 1)(1 - exp(-g tau)) / (g tau)`` with ``A = 1 / (1 - branching)**2`` and
    ``g = decay (1 - branching)`` (broadcasts)."""
    a = 1.0 / (1.0 - np.asarray(branching)) ** 2
    x = np.asarray(gamma) * np.asarray(windows)
    return a - (a - 1.0) * (-np.expm1(-x)) / x


def _fit_self_excitation(times: list[np.ndarray], t0: int, t1: int) -> tuple[float, float]:
    """(branching, decay) of market-order arrivals by matching the Fano factor of counts over
    windows from 10 ms to a twentieth of the span (least squares on its logarithm, each
    window length weighted by how many windows it has, on a grid)."""
    span = (t1 - t0) / 1e9
    windows = np.array([w for w in (0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100, 300) if w <= span / 20])
    used = [t for t in times if len(t) >= 50]
    if len(windows) < 3 or not used:
        return 0.0, 1.0
    fano = np.nanmean([fano_factor(t, t0, t1, windows) for t in used], axis=0)
    ok = np.isfinite(fano) & (fano > 0)
    if ok.sum() < 3:
        return 0.0, 1.0
    w, logf = windows[ok], np.log(fano[ok])
    weight = span / w  # windows counted: the sampling variance of a Fano factor goes as 2 / count
    weight /= weight.sum()
    n = np.linspace(0.0, MAX_BRANCHING, 96)[:, None, None]
    g = np.logspace(-3, 3, 121)[None, :, None]
    err = np.sum(weight * (np.log(hawkes_fano(n, g, w[None, None, :])) - logf) ** 2, axis=2)
    # slow kernels make any branching look Poisson: of the fits as good as the best, the least excited
    good = err <= 1.05 * err.min() + 1e-5
    i = int(np.flatnonzero(good.any(axis=1))[0])
    j = int(np.argmin(np.where(good[i], err[i], np.inf)))
    branching, gamma = float(n[i, 0, 0]), float(g[0, j, 0])
    return branching, gamma / (1.0 - branching)


def _log_sigma(sizes: np.ndarray, level: np.ndarray, levels: int) -> float:
    """Pooled standard deviation of log sizes around each level's mean log size."""
    ok = sizes > 0
    if ok.sum() < 2:
        return 1.0
    x, lv = np.log(sizes[ok]), level[ok]
    n = np.bincount(lv, minlength=levels + 1)
    mean = np.bincount(lv, x, minlength=levels + 1) / np.maximum(n, 1)
    dev = x - mean[lv]
    dof = max(len(x) - int((n > 0).sum()), 1)
    return float(np.sqrt(np.sum(dev * dev) / dof))


def _improve_sizes(snaps: BookSnapshots, usable: np.ndarray, bid1: np.ndarray, ask1: np.ndarray) -> np.ndarray:
    """The sizes of the best queues in the messages that moved their price closer to the other
    side (the bid up, the ask down), both sides pooled; ``snaps`` is the book after every message."""
    um = np.flatnonzero(usable)
    bid = um[bid1[um] > bid1[um - 1]]
    ask = um[ask1[um] < ask1[um - 1]]
    size = np.concatenate([snaps.bid_sz[bid, 0], snaps.ask_sz[ask, 0]])
    return size[np.isfinite(size) & (size > 0)]


PERSISTENCE_LAGS = np.arange(1, 11)
"""Lags of :func:`touch_persistence`, in steps of its book's grid (100 ms: 100 ms to 1 s)."""


def touch_persistence(book: BookSnapshots, step_s: float = 0.1) -> float:
    """How fast the best queues' sizes forget themselves while their price holds, per second:
    for each lag of ``PERSISTENCE_LAGS`` rows of ``book`` (a grid of ``step_s`` seconds), the
    correlation ``c`` of the log size of a best queue at two rows with the same best price
    (both sides pooled), and the rate ``k`` of ``c = exp(-k lag)`` fitted to them by least
    squares on ``-ln c``. 0 when no lag has two such pairs or a positive correlation."""
    x, y = [], []
    for lag in PERSISTENCE_LAGS.tolist():
        a, b = [], []
        for px, sz in ((book.bid_px[:, 0], book.bid_sz[:, 0]), (book.ask_px[:, 0], book.ask_sz[:, 0])):
            with np.errstate(invalid="ignore"):
                ok = book.valid[:-lag] & book.valid[lag:] & (px[:-lag] == px[lag:]) & (sz[:-lag] > 0) & (sz[lag:] > 0)
            a.append(sz[:-lag][ok])
            b.append(sz[lag:][ok])
        a, b = np.log(np.concatenate(a)), np.log(np.concatenate(b))
        if len(a) < 2 or a.std() == 0 or b.std() == 0:
            continue
        c = float(np.corrcoef(a, b)[0, 1])
        if c > 0:
            x.append(lag * step_s)
            y.append(-math.log(c))
    if not x:
        return 0.0
    x, y = np.asarray(x), np.asarray(y)
    return max(float(np.dot(x, y) / np.dot(x, x)), 0.0)


def imbalance_bucket(own: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Bucket 0..IMBALANCE_BUCKETS-1 of a side's share ``own / (own + other)`` of the size at
    the two best quotes (equal widths; 0: its queue is the much smaller one)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(own + other > 0, own / (own + other), 0.5)
    return np.minimum((x * IMBALANCE_BUCKETS).astype(np.int64), IMBALANCE_BUCKETS - 1)


def activity_bucket(moves: np.ndarray) -> np.ndarray:
    """Bucket 0..ACTIVITY_BUCKETS-1 of the number of mid changes in the last ACTIVITY_WINDOW_NS."""
    return np.minimum(np.asarray(moves, np.int64), ACTIVITY_BUCKETS - 1)


def _factors(counts: np.ndarray, exposure: np.ndarray) -> np.ndarray:
    """Rates per state over the overall rate, each state shrunk towards the overall rate by
    REACTIVE_PRIOR pseudo-events (a state seen for a moment says little) and normalised to a
    time-weighted mean of 1 (the overall rate is kept)."""
    total_n, total_t = float(counts.sum()), float(exposure.sum())
    if total_n <= 0 or total_t <= 0:
        return np.ones(counts.shape)
    r = total_n / total_t
    f = (counts + REACTIVE_PRIOR) / (exposure * r + REACTIVE_PRIOR)
    return f * total_t / float(np.sum(f * exposure))


def _reactive(snaps, usable, dt, msg_ts, bid1, ask1, o_ts, o_side, o_size, ev_msg, ev_side, ev_tick, ev_book):
    """How the flow at the best quotes reacts to the book's state (see :class:`FlowModel`):
    ``(market, cancel, improve)`` factors by (own share bucket, activity bucket), both sides
    pooled (mirror images: a buy hits the asks, whose share is ``1 -`` the bids')."""
    nmsg = len(msg_ts)
    qb = np.where(np.isfinite(snaps.bid_sz[:, 0]), snaps.bid_sz[:, 0], 0.0)
    qa = np.where(np.isfinite(snaps.ask_sz[:, 0]), snaps.ask_sz[:, 0], 0.0)
    xb, xa = imbalance_bucket(qb, qa), imbalance_bucket(qa, qb)
    mid2 = bid1 + ask1
    moved = np.zeros(nmsg, np.int64)
    moved[1:] = usable[1:] & (mid2[1:] != mid2[:-1])
    cm = np.cumsum(moved)
    lo = np.searchsorted(msg_ts, msg_ts - ACTIVITY_WINDOW_NS, side="right")
    act = activity_bucket(cm - np.where(lo > 0, cm[np.maximum(lo - 1, 0)], 0))  # moves in (E - w, E]
    spread = ask1 - bid1
    shape = (IMBALANCE_BUCKETS, ACTIVITY_BUCKETS)
    um = np.flatnonzero(usable)
    pre = um - 1  # the state each usable message starts from
    w = dt[um]
    # exposure: time per state, per side (pooled), and touch size-time for cancellations
    t_state = np.zeros(shape)
    np.add.at(t_state, (xb[pre], act[pre]), w)
    np.add.at(t_state, (xa[pre], act[pre]), w)
    q_state = np.zeros(shape)
    np.add.at(q_state, (xb[pre], act[pre]), w * qb[pre])
    np.add.at(q_state, (xa[pre], act[pre]), w * qa[pre])
    wide = spread[pre] > 1
    t_wide = np.zeros(shape)
    np.add.at(t_wide, (xb[pre][wide], act[pre][wide]), w[wide])
    np.add.at(t_wide, (xa[pre][wide], act[pre][wide]), w[wide])
    # market orders: the side they hit and its state before the message they fall in
    om = np.searchsorted(msg_ts, o_ts, side="left")
    ok = (om >= 1) & (om < nmsg)
    ok[ok] &= usable[om[ok]]
    om, oside, osize = om[ok], o_side[ok], o_size[ok]
    x = np.where(oside > 0, xa[om - 1], xb[om - 1])
    n_market = np.zeros(shape)
    np.add.at(n_market, (x, act[om - 1]), 1.0)
    # the share of them that took the whole best queue they hit (at least its size before)
    touch = np.where(oside > 0, qa[om - 1], qb[om - 1])
    n_sweep = np.zeros(shape)
    sw = osize >= touch * (1 - 1e-9)
    np.add.at(n_sweep, (x[sw], act[om - 1][sw]), 1.0)
    p_all = float(n_sweep.sum()) / max(float(n_market.sum()), 1.0)
    sweep = (n_sweep + REACTIVE_PRIOR * p_all) / (n_market + REACTIVE_PRIOR)
    # cancellations at a side's own best, by size; orders improving a side's best inside the spread
    okm = (ev_msg >= 1) & (ev_msg < nmsg)
    m, sd, tk, bk = ev_msg[okm], ev_side[okm], ev_tick[okm], ev_book[okm]
    own_best = np.where(sd > 0, bid1[m - 1], ask1[m - 1])
    x = np.where(sd > 0, xb[m - 1], xa[m - 1])
    a = act[m - 1]
    c = (bk < 0) & (tk == own_best)
    v_cancel = np.zeros(shape)
    np.add.at(v_cancel, (x[c], a[c]), -bk[c])
    inside = (bk > 0) & (tk > bid1[m - 1]) & (tk < ask1[m - 1])
    n_improve = np.zeros(shape)
    np.add.at(n_improve, (x[inside], a[inside]), 1.0)
    # a best queue emptied without a trade on its side: the best retreats in a message where
    # no market order hit that side
    hit = np.zeros((nmsg, 2), bool)
    hit[om, (oside > 0).astype(np.int64)] = True  # column 1: a buy hit the asks, 0: a sell the bids
    n_gone = np.zeros(shape)
    for col, own, cur, prev in ((0, xb, bid1[um], bid1[pre]), (1, xa, ask1[um], ask1[pre])):
        worse = (cur < prev) if col == 0 else (cur > prev)
        g = worse & ~hit[um, col]
        np.add.at(n_gone, (own[pre][g], act[pre][g]), 1.0)
    # the other best following a retreat within the message
    db, da = bid1[um] - bid1[pre], ask1[um] - ask1[pre]
    n_retreat = int(np.sum(da > 0) + np.sum(db < 0))
    n_follow = int(np.sum((da > 0) & (db > 0)) + np.sum((db < 0) & (da < 0)))
    follow = (n_follow + 1.0) / (n_retreat + 2.0)
    total = float(t_state.sum())
    base = float(n_gone.sum()) / total if total > 0 else 0.0
    deplete = _factors(n_gone, t_state) * base
    return (
        _factors(n_market, t_state),
        _factors(v_cancel, q_state),
        _factors(n_improve, t_wide),
        deplete,
        sweep,
        follow,
    )


def _auto_depth(grid: BookSnapshots, rows: np.ndarray, tick: float, levels: int) -> int:
    """Ticks from the opposite best within which the book holds ``2 * levels`` non-empty
    levels (or all it has) 99 % of the time."""
    k = 2 * levels
    far = []
    for px, opp, sign in (
        (grid.bid_px[rows, :k], grid.ask_px[rows, 0], -1.0),
        (grid.ask_px[rows, :k], grid.bid_px[rows, 0], 1.0),
    ):
        n = np.isfinite(px).sum(axis=1)  # levels fill from the best
        has = np.flatnonzero(n > 0)
        far.append(sign * (np.rint(px[has, n[has] - 1] / tick) - np.rint(opp[has] / tick)))
    d = np.concatenate(far)
    if len(d) == 0:
        return levels
    return int(np.clip(np.ceil(np.quantile(d, 0.99)), levels, MAX_DEPTH))


def _queue_model(grid, rows, tick, lot, edges, duration, dist, book, prior, after) -> dict[str, np.ndarray]:
    """The queue model's arrays (see :class:`FlowModel`) from the sampled book (occupancy,
    resting sizes) and the book events (``dist`` from the opposite best, net size ``book``
    added, whether the price held size before and after the message)."""
    depth, nb = int(edges[-1] - 1), len(edges) - 1
    occupied, seen, odist, osize = tick_profile(grid, tick, depth, rows)
    bucket = np.searchsorted(edges, np.arange(1, depth + 1), side="right") - 1  # of each tick
    occ_n = np.bincount(bucket, occupied[1:], minlength=nb)
    seen_n = np.bincount(bucket, seen[1:], minlength=nb)
    p_b = np.where(seen_n > 0, occ_n / np.maximum(seen_n, 1), 0.0)
    p_d = np.where(seen[1:] > 0, occupied[1:] / np.maximum(seen[1:], 1), p_b[bucket])
    t_occ = np.bincount(bucket, p_d, minlength=nb) * 2 * duration  # tick-seconds, both sides
    t_empty = np.bincount(bucket, 1.0 - p_d, minlength=nb) * 2 * duration
    inb = (dist >= 1) & (dist <= depth)
    eb = np.searchsorted(edges, dist[inb], side="right") - 1
    size, was, now = book[inb], prior[inb], after[inb]
    add = size > 0
    n_birth = np.bincount(eb[add & ~was], minlength=nb)
    n_join = np.bincount(eb[add & was], minlength=nb)
    n_death = np.bincount(eb[was & ~now], minlength=nb)
    with np.errstate(divide="ignore", invalid="ignore"):
        # half a death where none was seen: a queue that holds size does empty some time
        death = np.where(t_occ > 0, np.maximum(n_death, 0.5) / t_occ, 0.0)
        join = np.where(t_occ > 0, n_join / t_occ, 0.0)
        birth = np.where(t_empty > 0, n_birth / t_empty, 0.0)
        # ticks that held size but were never seen to fill (always full, or full since the
        # snapshot): births from the balance with deaths
        pc = np.minimum(p_b, 0.999)
        birth = np.where((n_birth == 0) & (p_b > 0), death * pc / (1.0 - pc), birth)
    ob = np.searchsorted(edges, odist, side="right") - 1
    resting = _bucket_quantiles(osize, ob, nb, lot)
    n_ob = np.bincount(ob, minlength=nb)
    mean = np.bincount(ob, osize, minlength=nb) / np.maximum(n_ob, 1)
    model = np.array([match_mean(resting[b], QUEUE_PROBS, mean[b]) if n_ob[b] else resting[b] for b in range(nb)])
    # the orders: the resting sizes' shape, scaled so that a queue of the mean number of
    # orders (zero-truncated Poisson) has the resting mean; an addition's size in the diffs
    # merges whatever arrived at the price within an update, so it overstates an order's
    m = np.log1p(np.where(death > 0, join / np.where(death > 0, death, 1.0), 0.0))
    m = np.minimum(m, _MAX_ORDERS)
    per_queue = np.where(m > 0, m / -np.expm1(-np.where(m > 0, m, 1.0)), 1.0)
    return {
        "tick_edges": edges,
        "tick_occupancy": p_b,
        "birth_rate": birth,
        "join_rate": join,
        "death_rate": death,
        "order_size_quantiles": np.maximum(model / per_queue[:, None], lot),
        "tick_size_quantiles": resting,
    }


def calibrate(md: MarketData, *, levels: int = 10, every="100ms", depth: int | None = None) -> FlowModel:
    """Measure a :class:`FlowModel` on a real recording.

    Parameters
    ----------
    md : MarketData from a reader (e.g. :func:`lobfast.read_binance`) with depth (a synced
        book: at least one snapshot) and trades.
    levels : levels per side, in ticks from the opposite best quote.
    every : grid on which the rebuilt book is sampled for the queue-size, occupancy and
        spread distributions (``None``: after every exchange message).
    depth : ticks from the opposite best covered by the queue model (births, joins and deaths
        of queues per tick); ``None``: where the book holds ``2 * levels`` non-empty levels
        99 % of the time (BTCUSDT spot: about 1,300 ticks), at least ``levels``.

    Returns
    -------
    FlowModel, every rate per second and per side (both sides pooled).

    Examples
    --------
    >>> import lobfast
    >>> from lobfast import datasets
    >>> from lobfast.sim import calibrate
    >>> flow = calibrate(lobfast.read_binance(datasets.path("spot_btcusdt_20240808")))
    >>> flow.tick, bool(flow.limit_rate[0] > 0)
    (0.01, True)
    """
    if not isinstance(md, MarketData):
        raise TypeError(f"calibrate takes lobfast.MarketData (e.g. from read_binance), not {type(md).__name__}")
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or not 1 <= levels <= 1000:
        raise ValueError(f"levels must be an int in 1..1000, not {levels!r}")
    levels = int(levels)
    if every is not None:
        parse_duration(every, "every")
    if depth is not None and (
        isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or not 1 <= depth <= MAX_DEPTH
    ):
        raise ValueError(f"depth must be None or an int in 1..{MAX_DEPTH}, not {depth!r}")
    events, trades = md.depth, md.trades
    flags = events.flags
    if len(events) == 0 or not np.any(flags & Flags.RESET):
        raise ValueError("calibrate needs depth with a snapshot (a synced book); this data has none")

    lv = events.side != 0
    tick = infer_step(events.price[lv])
    sizes = np.concatenate([events.qty[lv & (events.qty > 0)], trades.qty[trades.qty > 0]])
    lot = infer_step(sizes)

    # the book after every message; row m is message m
    snaps = reconstruct(events, levels=levels, every=None)
    eom = (flags & Flags.END_OF_MESSAGE) != 0
    if len(snaps) != int(eom.sum()):
        raise ValueError("the depth rows do not end every message with END_OF_MESSAGE; cannot align them")
    nmsg = len(snaps)
    msg = np.cumsum(eom) - eom  # message index of each row
    msg_ts = snaps.ts
    bid1 = np.rint(snaps.bid_px[:, 0] / tick)
    ask1 = np.rint(snaps.ask_px[:, 0] / tick)
    state_ok = snaps.valid & np.isfinite(bid1) & np.isfinite(ask1)
    is_snap_msg = np.zeros(nmsg, bool)
    is_snap_msg[msg[(flags & Flags.SNAPSHOT) != 0]] = True
    # a message is usable when the book before it was known (its own changes are then exact)
    usable = np.zeros(nmsg, bool)
    usable[1:] = state_ok[:-1] & ~is_snap_msg[1:] & state_ok[1:]
    if not usable.any():
        raise ValueError("no depth message follows a valid book: nothing to calibrate on")
    dt = np.zeros(nmsg)
    dt[1:] = np.maximum(np.diff(msg_ts), 0) / 1e9
    duration = float(dt[usable].sum())
    if duration <= 0:
        raise ValueError("the synced depth spans no time")

    # every row's change against the last row at the same price (same side, same snapshot epoch)
    n = len(events)
    seg = np.cumsum((flags & Flags.RESET) != 0)
    ptick = np.zeros(n, np.int64)
    ptick[lv] = np.rint(events.price[lv] / tick).astype(np.int64)
    order = np.lexsort((np.arange(n), ptick, events.side, seg))
    same = np.zeros(n, bool)
    same[1:] = (
        (seg[order][1:] == seg[order][:-1])
        & (events.side[order][1:] == events.side[order][:-1])
        & (ptick[order][1:] == ptick[order][:-1])
    )
    old = np.zeros(n)
    q_sorted = events.qty[order]
    old_sorted = np.zeros(n)
    old_sorted[1:] = np.where(same[1:], q_sorted[:-1], 0.0)
    old[order] = old_sorted

    rows = np.flatnonzero(lv & usable[msg])
    r_msg, r_side, r_tick = msg[rows], events.side[rows].astype(np.int64), ptick[rows]
    r_delta = events.qty[rows] - old[rows]

    # trades inside each message's interval (previous E, E], by book side and price
    t_msg = np.searchsorted(msg_ts, trades.ts, side="left")
    t_ok = (t_msg >= 1) & (t_msg < nmsg)
    t_ok[t_ok] &= usable[t_msg[t_ok]]
    tt = np.flatnonzero(t_ok)
    t_msg, t_side = t_msg[tt], -trades.side[tt].astype(np.int64)  # a taker buy takes asks
    t_tick = np.rint(trades.price[tt] / tick).astype(np.int64)
    all_ticks = np.concatenate([r_tick, t_tick])
    pmin = int(all_ticks.min()) if len(all_ticks) else 0
    span = (int(all_ticks.max()) - pmin + 1) if len(all_ticks) else 1
    if (2 * nmsg + 2) * span >= 2**62:
        raise ValueError("the price range is too wide to key levels by tick")

    def key(m, s, p):
        return (m * 2 + (s > 0)) * span + (p - pmin)

    t_key, inv = np.unique(key(t_msg, t_side, t_tick), return_inverse=True)
    t_vol = np.bincount(inv, trades.qty[tt], minlength=len(t_key))
    r_key = key(r_msg, r_side, r_tick)
    pos = np.searchsorted(t_key, r_key)
    hit = (pos < len(t_key)) & (t_key[np.minimum(pos, len(t_key) - 1)] == r_key)
    r_exec = np.where(hit, t_vol[np.minimum(pos, len(t_key) - 1)], 0.0)
    # trades at prices whose level shows no net change: replenished within the interval
    seen = np.zeros(len(t_key), bool)
    seen[pos[hit]] = True
    ex = np.flatnonzero(~seen)
    e_msg = t_key[ex] // span // 2
    e_side = np.where((t_key[ex] // span) % 2 == 1, 1, -1)
    e_tick = t_key[ex] % span + pmin

    ev_msg = np.concatenate([r_msg, e_msg])
    ev_side = np.concatenate([r_side, e_side])
    ev_tick = np.concatenate([r_tick, e_tick])
    ev_exec = np.concatenate([r_exec, t_vol[ex]])
    ev_book = np.concatenate([r_delta, np.zeros(len(ex))]) + ev_exec  # additions - cancellations
    ev_book = np.rint(ev_book / lot) * lot  # on the lot grid: no float residue counts as an order
    # an addition rests where the message leaves the book, a removal left the book before it
    ref = np.where(ev_book > 0, ev_msg, ev_msg - 1)
    dist = np.where(ev_side > 0, ask1[ref] - ev_tick, ev_tick - bid1[ref]).astype(np.int64)
    inl = (dist >= 1) & (dist <= levels)
    d_in, b_in, x_in = dist[inl], ev_book[inl], ev_exec[inl]
    nb = levels + 1
    add = b_in > 0
    can = b_in < 0
    add_vol = np.bincount(d_in[add], b_in[add], minlength=nb)[1:]
    add_n = np.bincount(d_in[add], minlength=nb)[1:].astype(np.float64)
    can_vol = np.bincount(d_in[can], -b_in[can], minlength=nb)[1:]
    can_n = np.bincount(d_in[can], minlength=nb)[1:].astype(np.float64)
    exec_vol = np.bincount(d_in, x_in, minlength=nb)[1:]
    add_sigma = _log_sigma(b_in[add], d_in[add], levels)
    can_sigma = _log_sigma(-b_in[can], d_in[can], levels)

    # resting size integrated over the time each pre-message book lasted
    um = np.flatnonzero(usable)
    qpre = _queues_by_distance(snaps, tick, levels, um - 1)  # (n, 2, L)
    q_int = np.einsum("nsl,n->l", qpre, dt[um])  # both sides
    with np.errstate(divide="ignore", invalid="ignore"):
        cancel_rate = np.where(q_int > 0, can_vol / np.where(q_int > 0, q_int, 1.0), 0.0)
    queue_mean = q_int / (2 * duration)

    # distributions on the sampling grid, deep enough to see where 2 * levels levels end
    grid = reconstruct(events, levels=2 * levels + min(2 * levels, 40), every=every)
    gb = np.rint(grid.bid_px[:, 0] / tick)
    ga = np.rint(grid.ask_px[:, 0] / tick)
    grows = np.flatnonzero(grid.valid & np.isfinite(gb) & np.isfinite(ga))
    if len(grows) == 0:
        raise ValueError("the rebuilt book is never valid on the sampling grid")
    qg = _queues_by_distance(grid, tick, levels, grows).transpose(1, 0, 2).reshape(-1, levels)
    occupancy = (qg > 0).mean(axis=0)
    qq = np.zeros((levels, len(QUEUE_PROBS)))
    for k in range(levels):
        pos_k = qg[:, k][qg[:, k] > 0]
        if len(pos_k):
            qq[k] = np.quantile(pos_k, QUEUE_PROBS)
    spread = (ga[grows] - gb[grows]).astype(np.int64)
    spread_probs = np.bincount(np.clip(spread, 1, SPREAD_TICKS) - 1, minlength=SPREAD_TICKS) / len(spread)
    mid = 0.5 * (grid.bid_px[grows, 0] + grid.ask_px[grows, 0])

    # market orders within the calibrated span
    t0, t1 = msg_ts[um[0] - 1], msg_ts[um[-1]]
    tw = trades.between(t0 + 1, t1 + 1) if len(trades) else trades
    starts, o_side, o_size = _market_orders(tw)
    market_rate = np.array([(o_side > 0).sum(), (o_side < 0).sum()], np.float64) / duration
    trade_rate = np.array([(tw.side > 0).sum(), (tw.side < 0).sum()], np.float64) / duration
    if len(o_size):
        msq = np.quantile(o_size, SIZE_PROBS)
        lg = np.log(o_size[o_size > 0])
        lognormal = (float(lg.mean()), float(lg.std(ddof=1)) if len(lg) > 1 else 0.0)
        tpo = len(tw) / len(o_size)
        msize_mean = float(o_size.mean())
    else:
        msq = np.full(len(SIZE_PROBS), lot)
        lognormal, tpo, msize_mean = (math.log(lot), 0.0), 1.0, lot
    o_ts = tw.ts[starts] if len(tw) else np.empty(0, np.int64)
    # the queue model: queues appearing, growing and emptying per tick of distance
    prior = np.concatenate([old[rows] > 0, np.ones(len(ex), bool)])  # the price held size before
    after = np.concatenate([events.qty[rows] > 0, np.ones(len(ex), bool)])  # and after
    if depth is None:
        depth = _auto_depth(grid, grows, tick, levels)
    queues = _queue_model(
        grid, grows, tick, lot, bucket_edges(levels, int(depth)), duration, dist, ev_book, prior, after
    )
    branching, decay = _fit_self_excitation([o_ts[o_side > 0], o_ts[o_side < 0]], int(t0), int(t1))
    react_market, react_cancel, react_improve, deplete_rate, sweep_share, follow_share = _reactive(
        snaps, usable, dt, msg_ts, bid1, ask1, o_ts, o_side, o_size, ev_msg, ev_side, ev_tick, ev_book
    )
    improved = _improve_sizes(snaps, usable, bid1, ask1)
    improve_q = np.quantile(improved, QUEUE_PROBS) if len(improved) else np.full(len(QUEUE_PROBS), np.nan)
    persistence = touch_persistence(reconstruct(events, levels=1, every="100ms"))
    mid2 = bid1 + ask1
    mid_move_rate = float(np.sum(mid2[um] != mid2[um - 1]) / duration)
    out1 = exec_vol[0] + can_vol[0]
    exec_share = float(exec_vol[0] / out1) if out1 > 0 else 0.0

    return FlowModel(
        symbol=md.symbol,
        tick=tick,
        lot=lot,
        ref_price=float(np.median(mid)),
        duration_s=duration,
        levels=levels,
        limit_rate=add_vol / (2 * duration),
        limit_count=add_n / (2 * duration),
        cancel_rate=cancel_rate,
        cancel_count=can_n / (2 * duration),
        queue_mean=queue_mean,
        queue_occupancy=occupancy,
        queue_quantiles=qq,
        add_size_sigma=add_sigma,
        cancel_size_sigma=can_sigma,
        market_rate=market_rate,
        trade_rate=trade_rate,
        market_size_quantiles=msq,
        market_size_lognormal=lognormal,
        market_size_mean=msize_mean,
        trades_per_order=max(tpo, 1.0),
        spread_probs=spread_probs,
        exec_share=exec_share,
        **queues,
        mid_move_rate=mid_move_rate,
        market_branching=branching,
        market_decay=decay,
        react_market=react_market,
        react_cancel=react_cancel,
        react_improve=react_improve,
        deplete_rate=deplete_rate,
        sweep_share=sweep_share,
        follow_share=follow_share,
        improve_size_quantiles=improve_q,
        touch_persistence=persistence,
        source={
            "market": md.market,
            "start": int(t0),
            "end": int(t1),
            "messages": int(usable.sum()),
            "trades": len(tw),
            "every": every if every is None or isinstance(every, str) else parse_duration(every),
        },
    )
