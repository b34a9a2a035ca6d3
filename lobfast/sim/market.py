"""A simulated Binance-spot market: order flow from a :class:`~lobfast.sim.FlowModel`,
optionally steered along a price path, recorded the way lobfast's readers return data and
written in the collector's raw format (:func:`simulate`, :class:`SimMarket`).

The book is kept in integer ticks and lots, ``levels`` ticks deep behind each best quote
(by default the calibrated depth: about 1,300 ticks for BTCUSDT, where a 10-level book
reaches 350 ticks on average). Each price holds a queue of orders, oldest first. Distances
are counted in ticks from the opposite best quote, so orders inside a wide spread narrow
it again. At distance ``d`` an order arrives on an empty tick at the calibrated birth rate
(drawn for the whole run up front and kept where the tick is empty), joins an occupied one
at the join rate, and each resting order is cancelled whole at its distance's rate (both
drawn each ``update_every`` step from the queues at its start); a queue of few orders
therefore empties, and a tick is occupied about as often as in the recording. Market
orders of each side arrive as the calibrated self-exciting process, drawn up front. The
events of a step are applied one by one in time order. A market order walks the book,
oldest orders first, and prints one or more trades per level it takes; it never takes a
side's last lot, and a cancellation never removes a side's last level, so the book always
has both sides and is never crossed.

Without a price path (``price=None``, the flow-driven mode) the mid moves only because the
simulated flow moves it: a market order empties a best queue, a cancellation empties one, an
order arrives inside the spread (``SimMarket.mid_causes`` names the event behind every
change). The flow at the best quotes then reacts to the book's state as calibrated on the
recording (queue-reactive, in the manner of Huang, Lehalle and Rosenbaum): by the side's share
of the size at the two best quotes and by the number of mid changes in the last second, the
rate of market orders hitting it, the share of them that take its whole best queue, the rate
at which its best queue is cancelled away and at which orders improve it inside the spread;
the other side follows a retreating best quote as often as in the recording, an order
improving a best quote is as large as the recorded improving quotes (the touch's joins
giving way, so that its queues hold as much as recorded), and the touch's orders are
cancelled as slowly as the recorded best queues forget their size. A small queue
facing a large one is therefore swept first (the book foretells the next move), and moves
bring more flow and more moves (volatility clusters). Both sides have the same rates, mirror
images of each other, so the flow has no drift of its own.

With a price path (the path-driven mode), the mid follows it: at the end of each step where the mid is more than a
tick from the path's price, the book is moved there, so the book of every depth update is
within a tick of the path. The side the price moves into loses every level short of the new
quote (with the calibrated execution share a market order of the calibrated size takes part
of a level, the rest is cancelled) and the side it leaves gets a new best quote, the prices
in between drawn from the steady state of the queue model. A path typically moves the book
every step, while a real mid moves about once a second (and then further), so a move keeps
the book's profile: every tick whose distance from the opposite best changes is kept or
emptied, filled or left, so that it is occupied as often as at its new distance. At the
calibrated rate of mid moves, though, the prices the side left behind jumps over stay
empty, as in a real book after the price jumps, until orders arrive there.

Update ids count level changes: each change is one id, a depth diff covers the ids of its
step (``U`` = previous ``u`` + 1), and a ``bookTicker`` is recorded after every event that
changed the best bid or ask (its ``u`` the id of that event's last change). Trades carry
millisecond exchange times like Binance's; receive times are the event time plus a small
random latency, increasing from line to line.
"""

from __future__ import annotations

import collections
import gzip
import itertools
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..book import BookBuilder
from ..containers import DepthEvents, MarketData, Quotes, Trades
from ..convert import convert
from ..flags import Flags
from ..times import parse_duration, to_ns
from .flow import (
    ACTIVITY_BUCKETS,
    ACTIVITY_WINDOW_NS,
    IMBALANCE_BUCKETS,
    MAX_DEPTH,
    QUEUE_PROBS,
    SIZE_PROBS,
    FlowModel,
    decimal_step,
    match_mean,
)

_MS = 1_000_000
_UID0 = 1_000_000_000  # lastUpdateId of the opening snapshot
_TID0 = 100_000_000  # first trade id
_LAT_MIN_NS = 500_000  # receive latency: this plus an exponential of mean _LAT_MEAN_NS
_LAT_MEAN_NS = 1_000_000
_SHIFT_TOL = 2  # the book is moved when |2 mid - 2 path| (in ticks) exceeds this
_SPREAD_MAX_SHIFT = 4  # widest spread (ticks) drawn for a moved book
_KIND_SNAPSHOT, _KIND_DIFF, _KIND_TRADE, _KIND_QUOTE = 0, 1, 2, 3


class _Pool:
    """Random draws made in batches by ``gen`` and handed out one at a time."""

    __slots__ = ("gen", "buf", "i")

    def __init__(self, gen):
        self.gen, self.buf, self.i = gen, [], 0

    def next(self):
        if self.i >= len(self.buf):
            self.buf, self.i = self.gen(), 0
        v = self.buf[self.i]
        self.i += 1
        return v


def _inverse_cdf(rng, probs: np.ndarray, quantiles: np.ndarray, lot: float, n: int = 2048):
    """Lots drawn from a distribution given by quantiles (log-linear between them)."""
    q = np.maximum(np.asarray(quantiles, np.float64), lot)
    logq = np.log(q)

    def gen():
        x = np.exp(np.interp(rng.random(n), probs, logq))
        return np.maximum(np.rint(x / lot), 1).astype(np.int64).tolist()

    return gen


def hawkes_times(rng: np.random.Generator, rate: float, branching: float, decay: float, span_ns: int) -> np.ndarray:
    """Sorted event times (int64 ns in ``[0, span_ns)``) of a stationary exponential-kernel
    Hawkes process with mean ``rate`` per second, by its cluster representation: immigrants
    at ``rate (1 - branching)``, each event begetting Poisson(``branching``) more after
    exponential delays of mean ``1 / decay`` seconds. The process starts ``10 / (decay (1 -
    branching))`` seconds early (at most an hour), so it is stationary at 0."""
    return hawkes_clusters(rng, rate, branching, decay, span_ns)[0]


def hawkes_clusters(
    rng: np.random.Generator, rate: float, branching: float, decay: float, span_ns: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`hawkes_times` and, per event, the index of the immigrant whose cluster it
    belongs to (an immigrant and all its descendants share it)."""
    if rate <= 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    span = span_ns / 1e9
    burn = min(10.0 / (decay * (1.0 - branching)), 3600.0) if branching > 0 else 0.0
    n0 = rng.poisson(rate * (1.0 - branching) * (span + burn))
    gen = rng.uniform(-burn, span, n0)
    root = np.arange(n0, dtype=np.int64)
    out, roots = [gen], [root]
    while branching > 0 and len(gen):
        kids = rng.poisson(branching, len(gen))
        gen = np.repeat(gen, kids) + rng.exponential(1.0 / decay, int(kids.sum()))
        root = np.repeat(root, kids)
        keep = gen < span
        gen, root = gen[keep], root[keep]
        out.append(gen)
        roots.append(root)
    t, r = np.concatenate(out), np.concatenate(roots)
    keep = t >= 0
    t, r = t[keep], r[keep]
    o = np.argsort(t, kind="stable")
    return np.minimum((t[o] * 1e9).astype(np.int64), span_ns - 1), r[o]


_BIRTH_BID, _BIRTH_ASK, _BUY, _SELL, _CANCEL_BID, _CANCEL_ASK, _JOIN_BID, _JOIN_ASK, _DEPLETE_BID, _DEPLETE_ASK = range(
    10
)

# why the mid changed at a bookTicker update (SimMarket.mid_causes)
CAUSE_NONE, CAUSE_MARKET, CAUSE_CANCEL, CAUSE_ARRIVAL, CAUSE_PATH = range(5)
_CAUSE_OF_KIND = {
    _BIRTH_BID: CAUSE_ARRIVAL,
    _BIRTH_ASK: CAUSE_ARRIVAL,
    _BUY: CAUSE_MARKET,
    _SELL: CAUSE_MARKET,
    _CANCEL_BID: CAUSE_CANCEL,
    _CANCEL_ASK: CAUSE_CANCEL,
    _JOIN_BID: CAUSE_NONE,
    _JOIN_ASK: CAUSE_NONE,
    _DEPLETE_BID: CAUSE_CANCEL,
    _DEPLETE_ASK: CAUSE_CANCEL,
}
_IMPROVE_REACH = 64  # ticks: births this close to the opposite best may land inside the spread
_FACTOR_RANGE = (0.25, 4.0)  # reactive factors are kept within this
_SIZE_TRIES = 32  # draws of a market order's size on the wanted side of the best queue's


class _Engine:
    """The book in ticks and lots, queue by queue and order by order, the flow applied to
    it, and what it records."""

    def __init__(self, flow: FlowModel, rng: np.random.Generator, levels: int, dt_ns: int, reactive: bool = False):
        self.rng, self.levels, self.dt_ns, self.flow = rng, levels, dt_ns, flow
        self.floor = levels + 1  # the lowest best bid whose book of `levels` ticks stays above 0
        # the flow-driven mode: both sides alike (no drift), rates at the best reacting to the book
        self.reactive = reactive
        lo, hi = _FACTOR_RANGE
        self.react_market = np.clip(flow.react_market, lo, hi).tolist()
        self.react_cancel = np.clip(flow.react_cancel, lo, hi)
        self.react_improve = np.clip(flow.react_improve, lo, hi).tolist()
        self.market_peak = max(map(max, self.react_market)) if reactive else 1.0
        self.sweep = None if np.isnan(flow.sweep_share).any() or not reactive else flow.sweep_share.tolist()
        self.deplete = flow.deplete_rate if reactive and flow.deplete_rate.any() else None
        self.improve_peak = max(map(max, self.react_improve)) if reactive else 1.0
        self.improve_peak *= 2 * max(flow.follow_share, 1 - flow.follow_share)
        self.moves: collections.deque[int] = collections.deque()  # times of recent mid changes
        self.decided: dict[int, bool] = {}  # market-order clusters: taken or not
        self.cause = CAUSE_NONE
        self.mid_causes: list[int] = []
        self.retreated = 0  # the side whose best last moved away from the other (+1 bids, -1 asks)
        self.follow = flow.follow_share
        # the queue model per distance d = 0 .. levels + 1 from the opposite best (index d;
        # beyond the calibrated depth, the deepest bucket)
        d = np.clip(np.arange(levels + 2), 1, flow.depth)
        b = np.searchsorted(flow.tick_edges, d, side="right") - 1
        self.bucket_of = b.tolist()
        self.occ_arr = flow.tick_occupancy[b]
        self.occ = self.occ_arr.tolist()
        self.orders_m = flow.orders_per_queue[b].tolist()
        self.birth = flow.birth_rate[b]
        self.birth[0] = self.birth[-1] = 0.0  # no arrivals outside the window
        if reactive:  # candidates near the touch, thinned by the book's state on arrival
            self.birth[: _IMPROVE_REACH + 1] *= self.improve_peak
        # reactive: an order improving a best quote sized as the recorded improving quotes
        iq = flow.improve_size_quantiles
        self.improve_pool = (
            _Pool(_inverse_cdf(rng, QUEUE_PROBS, iq, flow.lot)) if reactive and not np.isnan(iq).any() else None
        )
        self.join = flow.join_rate[b]
        self.cancel = flow.order_cancel_rate[b]
        if self.improve_pool is not None and self.join[1] > 0:
            # the size the improving quotes bring beyond one order at the touch (one per side
            # per half the mid's moves) comes out of the touch's joins, so its queues hold as
            # much as recorded on average
            order = float(np.mean(flow.order_size_quantiles[b[1]]))
            extra = 0.5 * flow.mid_move_rate * max(float(np.mean(iq)) / order - 1.0, 0.0)
            self.join[1] = max(self.join[1] - extra, 0.25 * self.join[1])
        if reactive and 0 < flow.touch_persistence < self.cancel[1]:
            # the touch's queues keep their size as long as recorded: their orders are
            # cancelled at that rate, and joined as much slower, keeping the orders per queue
            slow = flow.touch_persistence / self.cancel[1]
            self.cancel[1] *= slow
            self.join[1] *= slow
        self.exec_share = flow.exec_share
        self.gap_share = 0.0  # share of path moves that leave the prices jumped over empty
        u = rng.random
        self.uniform = _Pool(lambda: u(4096).tolist())
        self.size_pool = [_Pool(_inverse_cdf(rng, QUEUE_PROBS, q, flow.lot)) for q in flow.order_size_quantiles]
        msq = match_mean(flow.market_size_quantiles, SIZE_PROBS, flow.market_size_mean)
        self.market_pool = _Pool(_inverse_cdf(rng, SIZE_PROBS, msq, flow.lot))
        extra = max(flow.trades_per_order - 1.0, 0.0)
        self.pieces_pool = _Pool(lambda: (1 + rng.poisson(extra, 1024)).tolist())
        sp = flow.spread_probs[: min(_SPREAD_MAX_SHIFT, levels - 1)]
        self.spread_cdf = (np.cumsum(sp) / sp.sum()).tolist() if sp.sum() > 0 else [1.0]
        # state: resting size per price, and the orders (lots, oldest first) making it up
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.bid_orders: dict[int, list[int]] = {}
        self.ask_orders: dict[int, list[int]] = {}
        self.bb = self.ba = 0
        self.uid = _UID0
        self.tid = _TID0
        self.chg_b: dict[int, int] = {}
        self.chg_a: dict[int, int] = {}
        self.last_top: tuple = ()
        # records, in the order they happen
        self.seq_kind: list[int] = []
        self.seq_t: list[int] = []
        self.trades: list[tuple] = []  # (t ns, tick, lots, side, trade id)
        self.quotes: list[tuple] = []  # (uid, bid tick, bid lots, ask tick, ask lots)
        self.diffs: list[tuple] = []  # (E ns, U, u, [(tick, lots)] bids, [(tick, lots)] asks)

    # ------------------------------------------------------------------ primitives
    def _set(self, side: int, p: int, orders: list[int] | None) -> None:
        """Make ``orders`` the queue at ``p`` (None or empty: no queue) and record the change."""
        if side > 0:
            book, queues, chg = self.bids, self.bid_orders, self.chg_b
        else:
            book, queues, chg = self.asks, self.ask_orders, self.chg_a
        if orders:
            lots = sum(orders)
            book[p] = lots
            queues[p] = orders
        else:
            lots = 0
            del book[p]
            del queues[p]
        chg[p] = lots
        self.uid += 1

    def _queue(self, d: int) -> list[int]:
        """A queue as the model holds it at distance ``d`` when it is not empty: a
        zero-truncated Poisson number of orders, sizes from the calibrated distribution."""
        m = self.orders_m[d]
        n = 1
        if m > 0:
            e = math.exp(-m)
            u = e + self.uniform.next() * (1.0 - e)
            pk = cdf = e
            n = 0
            while cdf < u and n < 1000:
                n += 1
                pk *= m / n
                cdf += pk
            n = max(n, 1)
        pool = self.size_pool[self.bucket_of[d]]
        return [pool.next() for _ in range(n)]

    def _fill(self, side: int, lo: int, hi: int, opposite: int) -> None:
        """Draw the empty prices lo..hi of a side from the model's steady state at their distance."""
        if hi < lo:
            return
        book = self.bids if side > 0 else self.asks
        p = np.arange(lo, hi + 1)
        d = np.clip(opposite - p if side > 0 else p - opposite, 1, self.levels + 1)
        occ = self.occ_arr[d]
        for i in np.flatnonzero(self.rng.random(len(p)) < occ).tolist():
            x = lo + i
            if x not in book:
                self._set(side, x, self._queue(int(d[i])))

    def _next_bid(self, p: int) -> int:
        """The best bid once the one at ``p`` is gone; the window deepens with it."""
        bids = self.bids
        x = p - 1
        stop = p - self.levels
        while x > stop and x not in bids:
            x -= 1
        if x == stop:
            x = max(bids)
        self._fill(1, x - self.levels + 1, p - self.levels, self.ba)
        return x

    def _next_ask(self, p: int) -> int:
        asks = self.asks
        x = p + 1
        stop = p + self.levels
        while x < stop and x not in asks:
            x += 1
        if x == stop:
            x = min(asks)
        self._fill(-1, p + self.levels, x + self.levels - 1, self.bb)
        return x

    def _trim_bids(self, new_bb: int) -> None:
        """Delete bids that fall more than ``levels`` ticks behind a best bid moving up to new_bb."""
        lo = self.bb - self.levels + 1
        hi = min(new_bb - self.levels, self.bb)
        bids = self.bids
        if hi - lo > 4 * len(bids):
            gone = sorted(x for x in bids if lo <= x <= hi)
        else:
            gone = [x for x in range(lo, hi + 1) if x in bids]
        for x in gone:
            self._set(1, x, None)

    def _trim_asks(self, new_ba: int) -> None:
        hi = self.ba + self.levels - 1
        lo = max(new_ba + self.levels, self.ba)
        asks = self.asks
        if hi - lo > 4 * len(asks):
            gone = sorted(x for x in asks if lo <= x <= hi)
        else:
            gone = [x for x in range(lo, hi + 1) if x in asks]
        for x in gone:
            self._set(-1, x, None)

    def _trades(self, t: int, p: int, lots: int, side: int, pieces: int = 0) -> None:
        """Trades of ``lots`` at ``p``: ``pieces`` of them (default: as many as the calibrated
        trades per market order)."""
        n = min(pieces or self.pieces_pool.next(), lots)
        if n <= 1:
            parts = [lots]
        else:
            w = [-math.log(1.0 - self.uniform.next()) for _ in range(n)]
            s = sum(w)
            parts = [int(lots * x / s) for x in w]
            parts[-1] += lots - sum(parts)
            parts = [x for x in parts if x > 0]
        t_ms = t - t % _MS
        for x in parts:
            self.trades.append((t_ms, p, x, side, self.tid))
            self.seq_kind.append(_KIND_TRADE)
            self.seq_t.append(t)
            self.tid += 1

    def _quote(self, t: int) -> None:
        top = (self.bb, self.bids[self.bb], self.ba, self.asks[self.ba])
        if top != self.last_top:
            moved = top[0] + top[2] != self.last_top[0] + self.last_top[2]
            if top[0] < self.last_top[0]:
                self.retreated = 1
            elif top[2] > self.last_top[2]:
                self.retreated = -1
            if moved:
                self.moves.append(t)
            self.mid_causes.append(self.cause if moved else CAUSE_NONE)
            self.last_top = top
            self.quotes.append((self.uid, *top))
            self.seq_kind.append(_KIND_QUOTE)
            self.seq_t.append(t)

    # ------------------------------------------------------------------ the book's state
    def _activity(self, t: int) -> int:
        """Mid changes in the last ACTIVITY_WINDOW_NS, as a bucket."""
        moves = self.moves
        while moves and moves[0] <= t - ACTIVITY_WINDOW_NS:
            moves.popleft()
        return min(len(moves), ACTIVITY_BUCKETS - 1)

    def _share(self, side: int) -> int:
        """The imbalance bucket of ``side``'s best queue against the other best's."""
        qb, qa = self.bids[self.bb], self.asks[self.ba]
        own = qb if side > 0 else qa
        return min(int(own * IMBALANCE_BUCKETS / (qb + qa)), IMBALANCE_BUCKETS - 1)

    # ------------------------------------------------------------------ events
    def arrive(self, side: int, d: int, t: int = 0) -> None:
        """An order arriving at the empty tick ``d`` ticks from the opposite best (a new queue).
        Reactive: a candidate within ``_IMPROVE_REACH`` ticks is kept with probability
        ``factor / peak``, the factor being the calibrated one for an order improving a best
        quote in the book's state, and 1 for any other arrival; an improving order is sized as
        the calibrated improving quotes (``improve_size_quantiles``)."""
        inside = False
        if self.reactive and d <= _IMPROVE_REACH:
            inside = (self.ba - d > self.bb) if side > 0 else (self.bb + d < self.ba)
            f = self.react_improve[self._share(side)][self._activity(t)] if inside else 1.0
            if inside and self.retreated:  # the other side follows a retreating best quote
                f *= 2 * (1 - self.follow) if side == self.retreated else 2 * self.follow
            if self.uniform.next() * self.improve_peak >= f:
                return
        if side > 0:
            p = self.ba - d
            if p in self.bids or p <= self.bb - self.levels:
                return
            if p > self.bb:
                self._trim_bids(p)
                self.bb = p
        else:
            p = self.bb + d
            if p in self.asks or p >= self.ba + self.levels:
                return
            if p < self.ba:
                self._trim_asks(p)
                self.ba = p
        pool = self.improve_pool if inside and self.improve_pool is not None else self.size_pool[self.bucket_of[d]]
        self._set(side, p, [pool.next()])

    def join_queue(self, side: int, p: int) -> None:
        """An order joining the back of the queue at ``p``."""
        queues = self.bid_orders if side > 0 else self.ask_orders
        q = queues.get(p)
        if q is None:
            return
        d = min(self.ba - p if side > 0 else p - self.bb, self.levels + 1)
        self._set(side, p, [*q, self.size_pool[self.bucket_of[d]].next()])

    def cancel_order(self, side: int, p: int, u: float) -> None:
        """One order of the queue at ``p``, drawn at random, cancelled whole."""
        queues = self.bid_orders if side > 0 else self.ask_orders
        q = queues.get(p)
        if q is None or (len(q) == 1 and len(queues) == 1):
            return  # a side keeps its last level
        if len(q) == 1 and self.deplete is not None and p == (self.bb if side > 0 else self.ba):
            return  # reactive: a best queue empties by cancellation at the calibrated rate only
        i = int(u * len(q))
        self._set(side, p, q[:i] + q[i + 1 :])
        if len(q) == 1:
            if side > 0 and p == self.bb:
                self.bb = self._next_bid(p)
            elif side < 0 and p == self.ba:
                self.ba = self._next_ask(p)

    def deplete_best(self, side: int) -> None:
        """The best queue of ``side`` cancelled whole (not a side's last level)."""
        if side > 0:
            if len(self.bids) > 1:
                p = self.bb
                self._set(1, p, None)
                self.bb = self._next_bid(p)
        elif len(self.asks) > 1:
            p = self.ba
            self._set(-1, p, None)
            self.ba = self._next_ask(p)

    def market(self, side: int, t: int, cluster: int = -1) -> None:
        """A market order: a taker buy (side +1) takes asks, a taker sell bids, oldest orders first.
        Reactive: the first order of a cluster is kept with probability ``factor / peak`` (the
        calibrated factor for the side it hits, in the book's state), and the rest of the
        cluster goes with it."""
        if self.reactive:
            taken = self.decided.get(cluster)
            if taken is None:
                f = self.react_market[self._share(-side)][self._activity(t)]
                taken = self.decided[cluster] = self.uniform.next() * self.market_peak < f
            if not taken:
                return
        rem = first = self.market_pool.next()
        book, queues = (self.asks, self.ask_orders) if side > 0 else (self.bids, self.bid_orders)
        if self.sweep is not None:
            # reactive: it takes the whole best queue as often as calibrated in the book's
            # state, its size drawn from the calibrated sizes that do (or do not)
            q = book[self.ba if side > 0 else self.bb]
            take_all = self.uniform.next() < self.sweep[self._share(-side)][self._activity(t)]
            for _ in range(_SIZE_TRIES):
                if (rem >= q) == take_all:
                    break
                rem = self.market_pool.next()
            else:
                rem = q if take_all else max(q - 1, 1)
            first = rem
        while rem > 0:
            p = self.ba if side > 0 else self.bb
            q = book[p]
            take = min(rem, q - 1 if len(book) == 1 else q)
            if take <= 0:
                return
            orders = queues[p]
            left, i = take, 0
            while left and left >= orders[i]:
                left -= orders[i]
                i += 1
            rest = orders[i:]
            if left:
                rest[0] -= left
            # the touch: the calibrated trades per order; deeper: one per resting order filled
            self._trades(t, p, take, side, 0 if rem == first else i + (left > 0))
            self._set(-side, p, rest)
            rem -= take
            if take < q:
                return
            if side > 0:
                self.ba = self._next_ask(p)
            else:
                self.bb = self._next_bid(p)

    def move_to(self, target: float, t: int) -> None:
        """Move the book so that its mid is within half a tick of ``target`` (ticks)."""
        u = self.uniform.next()
        s = 1
        for i, c in enumerate(self.spread_cdf):
            if u <= c:
                s = i + 1
                break
        db = int(math.floor(target - 0.5 * s + 0.5))
        da = db + s
        bb, ba = self.bb, self.ba
        gap = self.uniform.next() < self.gap_share  # the prices jumped over stay empty
        if bb + ba < 2 * target:  # up: asks below da go, bids move up to db
            self._shift(1, bb, max(bb, db), ba, da)
            self._shift(-1, ba, da, bb, max(bb, db))
            self._take(-1, da, db, t)
            self._new_best(1, db, da, gap)
        else:
            self._shift(1, bb, db, ba, min(ba, da))
            self._shift(-1, ba, min(ba, da), bb, db)
            self._take(1, db, da, t)
            self._new_best(-1, da, db, gap)

    def _shift(self, side: int, best: int, new_best: int, opposite: int, new_opposite: int) -> None:
        """Keep the book's profile as the path moves it: the queues of ``side`` that stay in
        its window behind both its old and new best quote change distance from the opposite
        best (``opposite`` -> ``new_opposite``); each is kept with probability ``occ(new) /
        occ(old)`` (capped at 1), and each empty tick filled with probability ``(occ(new) -
        occ(old)) / (1 - occ(old))``, so a book in the steady state stays in it."""
        if new_opposite == opposite:
            return
        levels = self.levels
        if side > 0:
            lo, hi = max(best, new_best) - levels + 1, (best if new_best > best else new_best - 1)
            book = self.bids
        else:
            lo, hi = (best if new_best < best else new_best + 1), min(best, new_best) + levels - 1
            book = self.asks
        if hi < lo:
            return
        p = np.arange(lo, hi + 1)
        sign = 1 if side > 0 else -1
        top = self.levels + 1
        occ = self.occ_arr
        o_old = occ[np.clip(sign * (opposite - p), 1, top)]
        d_new = np.clip(sign * (new_opposite - p), 1, top)
        o_new = occ[d_new]
        keys = np.fromiter(book, np.int64, len(book))
        keys = keys[(keys >= lo) & (keys <= hi)]
        full = np.zeros(len(p), bool)
        full[keys - lo] = True
        u = self.rng.random(len(p))
        with np.errstate(divide="ignore", invalid="ignore"):
            drop = full & (u * o_old >= o_new)
            add = ~full & (u * (1.0 - o_old) < o_new - o_old)
        for i in np.flatnonzero(drop).tolist():
            self._set(side, lo + i, None)
        for i in np.flatnonzero(add).tolist():
            self._set(side, lo + i, self._queue(int(d_new[i])))

    def _take(self, side: int, p: int, opposite: int, t: int) -> None:
        """Make ``p`` the best price of ``side``, removing the levels better than it (each hit
        by a market order with the calibrated execution share, what is left cancelled) and
        drawing the prices that enter the window beyond the old one."""
        levels = self.levels
        if side < 0:
            book, old = self.asks, self.ba
            gone = sorted(x for x in book if x < p)
            out = [x for x in book if max(p + levels, old) <= x < old + levels]  # out of the new window
        else:
            book, old = self.bids, self.bb
            gone = sorted((x for x in book if x > p), reverse=True)
            out = [x for x in book if old - levels + 1 <= x <= min(p - levels, old)]
        for x in sorted(out):
            self._set(side, x, None)
        for x in gone:  # a market order of the calibrated size takes part, the rest is cancelled
            if self.uniform.next() < self.exec_share:
                self._trades(t, x, min(self.market_pool.next(), book[x]), -side)
            self._set(side, x, None)
        if p not in book:
            self._set(side, p, self._queue(1))
        if side < 0:
            self.ba = p
            self._fill(-1, max(old + levels, p + 1), p + levels - 1, opposite)
        else:
            self.bb = p
            self._fill(1, p - levels + 1, min(old - levels, p - 1), opposite)

    def _new_best(self, side: int, p: int, opposite: int, gap: bool = False) -> None:
        """Give ``side`` the best price ``p`` (if better than its own), drawing the prices in
        between from the steady state (``gap``: leaving them empty)."""
        if side > 0:
            if p <= self.bb:
                return
            self._trim_bids(p)
            if not gap:
                self._fill(1, max(self.bb + 1, p - self.levels + 1), p - 1, opposite)
            if p not in self.bids:
                self._set(1, p, self._queue(1))
            self.bb = p
        else:
            if p >= self.ba:
                return
            self._trim_asks(p)
            if not gap:
                self._fill(-1, p + 1, min(self.ba - 1, p + self.levels - 1), opposite)
            if p not in self.asks:
                self._set(-1, p, self._queue(1))
            self.ba = p

    # ------------------------------------------------------------------ running
    def open(self, mid: float, t: int) -> None:
        """The opening book around ``mid`` (ticks): one-tick spread, queues drawn from the
        model's steady state."""
        self.bb = int(math.floor(mid))
        self.ba = self.bb + 1
        self._set(1, self.bb, self._queue(1))
        self._set(-1, self.ba, self._queue(1))
        self._fill(1, self.bb - self.levels + 1, self.bb - 1, self.ba)
        self._fill(-1, self.ba + 1, self.ba + self.levels - 1, self.bb)
        self.chg_b, self.chg_a, self.uid = {}, {}, _UID0
        self.snapshot = (sorted(self.bids.items(), reverse=True), sorted(self.asks.items()))
        self.seq_kind.append(_KIND_SNAPSHOT)
        self.seq_t.append(t)
        self.last_top = (self.bb, self.bids[self.bb], self.ba, self.asks[self.ba])

    def _arrivals(self, span: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Events that do not depend on the book, drawn for the whole run up front: orders
        arriving at each distance (kept where the tick is empty: a new queue) and market orders.
        Returns (time offset ns, kind, distance) sorted by time."""
        rng, f = self.rng, self.flow
        cum = np.cumsum(self.birth)
        total = float(cum[-1])
        t, kind, arg = [], [], []
        for k in (_BIRTH_BID, _BIRTH_ASK):
            n = rng.poisson(total * span / 1e9) if total > 0 else 0
            t.append(rng.integers(0, span, n))
            kind.append(np.full(n, k, np.int64))
            arg.append(np.searchsorted(cum, rng.random(n) * total, side="right"))
        rates = f.market_rate
        if self.reactive:  # both sides alike, candidates thinned by the book's state
            rates = np.full(2, rates.mean() * self.market_peak)
        first = 0
        for k, r in zip((_BUY, _SELL), rates):
            mt, root = hawkes_clusters(rng, r, f.market_branching, f.market_decay, span)
            t.append(mt)
            kind.append(np.full(len(mt), k, np.int64))
            arg.append(root + first)  # the cluster, numbered across both sides
            first += int(root.max()) + 1 if len(root) else 0
        t = np.concatenate(t).astype(np.int64)
        o = np.argsort(t, kind="stable")
        return t[o], np.concatenate(kind)[o], np.concatenate(arg)[o]

    def _queue_events(self, cancel: np.ndarray, join: np.ndarray, t: int = 0):
        """Cancellations and joins for one step, from the queues at its start: each order is
        cancelled at its distance's rate, each queue is joined at its distance's rate.
        Returns (time offset ns, kind, price) unsorted."""
        bq, aq = self.bid_orders, self.ask_orders
        nb, na = len(bq), len(aq)
        p = np.fromiter(itertools.chain(bq, aq), np.int64, nb + na)
        n = np.fromiter(map(len, itertools.chain(bq.values(), aq.values())), np.int64, nb + na)
        d = np.empty(nb + na, np.int64)
        d[:nb] = self.ba - p[:nb]
        d[nb:] = p[nb:] - self.bb
        np.clip(d, 1, self.levels + 1, out=d)
        rate = cancel[d] * n
        if self.reactive:  # the best queues' cancellations react to the book's state
            act = self._activity(t)
            touch = np.flatnonzero(p[:nb] == self.bb)
            rate[touch] *= self.react_cancel[self._share(1), act]
            touch = nb + np.flatnonzero(p[nb:] == self.ba)
            rate[touch] *= self.react_cancel[self._share(-1), act]
        c = self.rng.poisson(np.concatenate([rate, join[d]]))
        hit = np.flatnonzero(c)
        extra = []
        if self.deplete is not None:  # reactive: best queues emptied whole at the calibrated rate
            act = self._activity(t)
            for side, k in ((1, _DEPLETE_BID), (-1, _DEPLETE_ASK)):
                r = self.deplete[self._share(side), act] * self.dt_ns / 1e9
                if self.uniform.next() < -math.expm1(-r):
                    extra.append(k)
        if len(hit) == 0 and not extra:
            return None
        idx = np.repeat(hit, c[hit])
        m = nb + na
        q = idx % m
        kind = np.where(idx < m, np.where(q < nb, _CANCEL_BID, _CANCEL_ASK), np.where(q < nb, _JOIN_BID, _JOIN_ASK))
        price = p[q]
        if extra:
            kind = np.concatenate([kind, np.asarray(extra, np.int64)])
            price = np.concatenate([price, np.zeros(len(extra), np.int64)])
        return self.rng.integers(0, self.dt_ns, len(kind)), kind, price

    def run(self, t_start: int, nsteps: int, targets: np.ndarray | None) -> None:
        dt_ns = self.dt_ns
        dt_s = dt_ns / 1e9
        cancel, join = self.cancel * dt_s, self.join * dt_s
        if targets is not None:  # gaps at the rate the real mid moves, however often the path does
            steps = np.abs(np.diff(np.concatenate([[0.5 * (self.bb + self.ba)], targets]))) > 1.0
            moved = max(float(steps.mean()), 1.0 / len(steps))
            self.gap_share = min(1.0, self.flow.mid_move_rate * dt_s / moved)
        a_t, a_kind, a_arg = self._arrivals(nsteps * dt_ns)
        bounds = np.searchsorted(a_t, dt_ns * np.arange(nsteps + 1, dtype=np.int64)).tolist()
        uniform = self.uniform
        cause_of = _CAUSE_OF_KIND
        for i in range(nsteps):
            t0 = t_start + i * dt_ns
            t1 = t0 + dt_ns
            uid0 = self.uid
            a, b = bounds[i], bounds[i + 1]
            qe = self._queue_events(cancel, join, t0)
            if qe is None:
                offs, kinds, args = a_t[a:b] - i * dt_ns, a_kind[a:b], a_arg[a:b]
            else:
                offs = np.concatenate([a_t[a:b] - i * dt_ns, qe[0]])
                o = np.argsort(offs, kind="stable")
                offs, kinds, args = (
                    offs[o],
                    np.concatenate([a_kind[a:b], qe[1]])[o],
                    np.concatenate([a_arg[a:b], qe[2]])[o],
                )
            for off, k, x in zip(offs.tolist(), kinds.tolist(), args.tolist()):
                self.cause = cause_of[k]
                if k == _BIRTH_BID:
                    self.arrive(1, x, t0 + off)
                elif k == _BIRTH_ASK:
                    self.arrive(-1, x, t0 + off)
                elif k == _CANCEL_BID:
                    self.cancel_order(1, x, uniform.next())
                elif k == _CANCEL_ASK:
                    self.cancel_order(-1, x, uniform.next())
                elif k == _DEPLETE_BID:
                    self.deplete_best(1)
                elif k == _DEPLETE_ASK:
                    self.deplete_best(-1)
                elif k == _JOIN_BID:
                    self.join_queue(1, x)
                elif k == _JOIN_ASK:
                    self.join_queue(-1, x)
                else:
                    self.market(1 if k == _BUY else -1, t0 + off, x)
                self._quote(t0 + off)
            if self.bb < self.floor:
                tick = self.flow.tick
                raise ValueError(
                    f"the simulated best bid fell to {self.bb * tick:g} at {np.datetime64(t1, 'ns')}: fewer than "
                    f"{self.floor} ticks of {tick:g}, too low for this tick size and {self.levels} levels (the "
                    "flow moves the price by ticks); start from a higher price (flow.ref_price), or simulate "
                    "less time or fewer levels"
                )
            if targets is not None:  # the path's price at the end of the step
                tg = targets[i]
                if abs(self.bb + self.ba - 2.0 * tg) > _SHIFT_TOL:
                    self.cause = CAUSE_PATH
                    self.move_to(tg, t1 - 1)
                    self._quote(t1 - 1)
            if self.uid != uid0:
                self.diffs.append(
                    (t1, uid0 + 1, self.uid, sorted(self.chg_b.items(), reverse=True), sorted(self.chg_a.items()))
                )
                self.seq_kind.append(_KIND_DIFF)
                self.seq_t.append(t1)
                self.chg_b, self.chg_a = {}, {}


# ---------------------------------------------------------------------------- inputs
def _price_path(price: Any, duration_ns: int, dt_ns: int, start_ns: int, seed: Any, s0: float, drift: Any = None):
    """(ts int64, price float64) validated, from arrays or a process with .simulate()."""
    if price is None:
        if drift is not None:
            raise ValueError("drift= applies to a price process (price=GBM(...) and the like); the flow has none")
        return None
    if hasattr(price, "simulate") and callable(price.simulate):
        what = f"{type(price).__name__}.simulate()"
        extra = {} if drift is None else {"drift": drift}
        price = price.simulate(duration_ns, seed=seed, dt=dt_ns, s0=s0, start=start_ns, **extra)
    else:
        if drift is not None:
            raise ValueError("drift= applies to a price process (price=GBM(...) and the like), not to a given path")
        what = "price"
    if not isinstance(price, (tuple, list)) or len(price) != 2:
        raise TypeError(
            f"{what} must be None, a (ts, price) pair of arrays, or an object with "
            f".simulate(duration, *, seed, dt, s0, start) -> (ts, price); got {type(price).__name__}"
        )
    ts, px = (np.asarray(a) for a in price)
    if ts.dtype.kind == "M":
        ts = ts.astype("datetime64[ns]").view(np.int64)
    if ts.ndim != 1 or px.ndim != 1 or len(ts) != len(px) or len(ts) == 0:
        raise ValueError(f"the price path needs 1-D ts and price of one length >= 1, got {ts.shape} and {px.shape}")
    if ts.dtype.kind not in "iu":
        raise TypeError(f"the price path's ts must be int64 ns or datetime64, not {ts.dtype}")
    if px.dtype.kind not in "iuf":
        raise TypeError(f"the price path's prices must be numbers, not {px.dtype}")
    ts = ts.astype(np.int64)
    px = px.astype(np.float64)
    if np.any(np.diff(ts) < 0):
        i = int(np.flatnonzero(np.diff(ts) < 0)[0])
        raise ValueError(f"the price path's ts must be sorted: ts[{i + 1}] = {ts[i + 1]} < ts[{i}] = {ts[i]}")
    bad = ~np.isfinite(px) | (px <= 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"the price path must be finite and positive: price[{i}] = {px[i]}")
    if ts[-1] < start_ns or ts[0] >= start_ns + duration_ns:
        raise ValueError(
            f"the price path ({ts[0]} .. {ts[-1]} ns) does not overlap the simulated span "
            f"({start_ns} .. {start_ns + duration_ns} ns); its ts are absolute times (int64 ns since the epoch)"
        )
    return ts, px


def _flow_rng(seed: Any) -> np.random.Generator:
    """The flow's generator: a stream of its own, independent of the one ``seed`` gives the
    price process (a Generator is used as it is)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, 1)))
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))


_SYMBOL = re.compile(r"[A-Z0-9]{1,20}")


# ---------------------------------------------------------------------------- the result
@dataclass(repr=False, eq=False)
class SimMarket:
    """A simulated market: what :func:`lobfast.read_binance` returns for its raw file.

    ``depth``, ``trades`` and ``quotes`` hold exactly what reading :meth:`write_raw`'s output
    gives (the opening snapshot's rows with ``SNAPSHOT`` (and ``RESET`` on the first),
    ``END_OF_MESSAGE`` on the last row of each message, update ids from the diffs);
    ``path`` is the ``(ts, price)`` path the mid followed, or None. ``mid_causes``, one per
    quote: what changed the mid at that bookTicker update (``CAUSE_NONE``: it did not change;
    ``CAUSE_MARKET``: a market order emptied a best queue; ``CAUSE_CANCEL``: a cancellation
    did; ``CAUSE_ARRIVAL``: an order arrived inside the spread; ``CAUSE_PATH``: the book was
    moved to follow the price path).
    """

    depth: DepthEvents
    trades: Trades
    quotes: Quotes
    stats: dict[str, Any]
    flow: FlowModel
    path: tuple[np.ndarray, np.ndarray] | None
    symbol: str
    start: int
    end: int
    update_every: int
    levels: int
    seed: Any
    mid_causes: np.ndarray = field(default_factory=lambda: np.empty(0, np.int8))
    _raw: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        s = self.stats
        return (
            f"SimMarket({self.symbol}: {(self.end - self.start) / 1e9:g} s, {len(self.depth)} depth rows "
            f"({s['depth_messages']} diffs), {len(self.trades)} trades, {len(self.quotes)} quotes, "
            f"{'following a price path' if self.path is not None else 'flow only'})"
        )

    def market_data(self) -> MarketData:
        """The data as a :class:`lobfast.MarketData`, with the reader's counters."""
        return MarketData(depth=self.depth, trades=self.trades, quotes=self.quotes, stats=dict(self.stats))

    # ------------------------------------------------------------------ raw lines
    def lines(self) -> list[tuple[int, str]]:
        """The raw recording as ``(receive ns, message)`` pairs in receive order (what
        :meth:`write_raw` writes, one ``f"{ns} {message}"`` line each)."""
        flow = self.flow
        tu, td = decimal_step(flow.tick)
        lu, ld = decimal_step(flow.lot)
        dec = max(8, td, ld)
        pscale, qscale = tu * 10 ** (dec - td), lu * 10 ** (dec - ld)
        one = 10**dec

        def num(v: int, scale: int) -> str:
            x = v * scale
            return f'"{x // one}.{x % one:0{dec}d}"'

        def ticks(a: np.ndarray) -> list[int]:
            return np.rint(a / flow.tick).astype(np.int64).tolist()

        def lots(a: np.ndarray) -> list[int]:
            return np.rint(a / flow.lot).astype(np.int64).tolist()

        sym, low = self.symbol, self.symbol.lower()
        ms = self.update_every // _MS
        stream = f"{low}@depth" if ms == 1000 else f"{low}@depth@{ms}ms"
        out: list[tuple[int, str]] = []
        raw = self._raw
        # the opening snapshot (also when no diff followed it, in which case the reader drops it)
        sb, sa = raw["snapshot"]
        levels = lambda rows: ",".join(f"[{num(p, pscale)},{num(q, qscale)}]" for p, q in rows)  # noqa: E731
        out.append((raw["snapshot_local"], f'{{"lastUpdateId":{_UID0},"bids":[{levels(sb)}],"asks":[{levels(sa)}]}}'))
        d = self.depth
        body = np.flatnonzero((d.flags & Flags.SNAPSHOT) == 0)
        if len(body):
            p, q, side = ticks(d.price[body]), lots(d.qty[body]), d.side[body].tolist()
            eom = np.flatnonzero(d.flags[body] & Flags.END_OF_MESSAGE)
            uid, ts, loc = d.update_id[body][eom].tolist(), d.ts[body][eom].tolist(), d.local_ts[body][eom].tolist()
            first = _UID0 + 1
            lo = 0
            for j, hi in enumerate((eom + 1).tolist()):
                b = ",".join(f"[{num(p[i], pscale)},{num(q[i], qscale)}]" for i in range(lo, hi) if side[i] > 0)
                a = ",".join(f"[{num(p[i], pscale)},{num(q[i], qscale)}]" for i in range(lo, hi) if side[i] < 0)
                out.append(
                    (
                        loc[j],
                        f'{{"stream":"{stream}","data":{{"e":"depthUpdate","E":{ts[j] // _MS},"s":"{sym}",'
                        f'"U":{first},"u":{uid[j]},"b":[{b}],"a":[{a}]}}}}',
                    )
                )
                first = uid[j] + 1
                lo = hi
        t = self.trades
        if len(t):
            for ts_, loc, p_, q_, s_, tid in zip(
                t.ts.tolist(), t.local_ts.tolist(), ticks(t.price), lots(t.qty), t.side.tolist(), t.trade_id.tolist()
            ):
                T = ts_ // _MS
                out.append(
                    (
                        loc,
                        f'{{"stream":"{low}@trade","data":{{"e":"trade","E":{T},"s":"{sym}","t":{tid},'
                        f'"p":{num(p_, pscale)},"q":{num(q_, qscale)},"T":{T},"m":{"true" if s_ < 0 else "false"},'
                        f'"M":true}}}}',
                    )
                )
        qt = self.quotes
        if len(qt):
            for loc, uid_, bp, bq, ap, aq in zip(
                qt.local_ts.tolist(),
                qt.update_id.tolist(),
                ticks(qt.bid_px),
                lots(qt.bid_qty),
                ticks(qt.ask_px),
                lots(qt.ask_qty),
            ):
                out.append(
                    (
                        loc,
                        f'{{"stream":"{low}@bookTicker","data":{{"u":{uid_},"s":"{sym}","b":{num(bp, pscale)},'
                        f'"B":{num(bq, qscale)},"a":{num(ap, pscale)},"A":{num(aq, qscale)}}}}}',
                    )
                )
        out.sort(key=lambda x: x[0])
        return out

    def write_raw(self, path: str | os.PathLike) -> str:
        """Write the collector's raw format: ``<receive ns> <message>`` lines in receive order
        (the REST depth snapshot first, then depth diffs, trades and bookTicker messages).

        Compressed by suffix: ``.gz`` (gzip), ``.zst`` (zstd, needs the ``zstandard``
        package), anything else plain text. Returns the path written.
        """
        path = os.fspath(path)
        lines = self.lines()
        if path.endswith(".zst"):
            try:
                import zstandard
            except ImportError as e:
                raise ImportError("writing .zst needs the zstandard package (pip install zstandard)") from e
        with open(path, "wb") as raw:
            if path.endswith(".gz"):
                f = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0)
            elif path.endswith(".zst"):
                f = zstandard.ZstdCompressor(level=3).stream_writer(raw, closefd=False)
            else:
                f = raw
            for i in range(0, len(lines), 20_000):
                f.write("".join(f"{ns} {msg}\n" for ns, msg in lines[i : i + 20_000]).encode("ascii"))
            if f is not raw:
                f.close()
        return path

    def write_tree(
        self, root: str | os.PathLike, *, venue: str = "spot", rotate="1h", snapshot_every="15min"
    ) -> list[str]:
        """Write the recording as ``lobfast-collect`` lays it out: ``root/<venue>/<symbol>/``
        (the symbol in lower case), one seekable zstd file per ``rotate`` period named by its
        first line's time (``YYYYmmdd-HHMMSS.mmm.zst``), with a REST depth snapshot of the
        whole book every ``snapshot_every`` (as the recorder asks for one periodically; a
        reader that is already in sync ignores them, a read starting mid-file syncs on the
        first).  Returns the files written, in time order.
        """
        period, every_snap = parse_duration(rotate, "rotate"), parse_duration(snapshot_every, "snapshot_every")
        lines = self.lines()
        d = self.depth
        ends = np.flatnonzero(d.flags & Flags.END_OF_MESSAGE)
        first_t = lines[0][0] if lines else self.start
        times = np.arange((first_t // every_snap + 1) * every_snap, self.end, every_snap, dtype=np.int64)
        builder, done, snaps = BookBuilder(1), 0, []
        tu, td = decimal_step(self.flow.tick)
        lu, ld = decimal_step(self.flow.lot)
        dec = max(8, td, ld)
        for t in times.tolist():
            k = int(np.searchsorted(d.local_ts[ends], t, "left"))  # messages received before t
            if k == 0:
                continue
            builder.feed(d[done : ends[k - 1] + 1])
            done = int(ends[k - 1]) + 1
            bp, bs, ap, asz = builder.book()
            fmt = lambda px, sz: ",".join(f'["{p:.{dec}f}","{q:.{dec}f}"]' for p, q in zip(px, sz))  # noqa: E731
            body = f'{{"lastUpdateId":{int(d.update_id[ends[k - 1]])},"bids":[{fmt(bp, bs)}],"asks":[{fmt(ap, asz)}]}}'
            snaps.append((t, body))
        merged = sorted(lines + snaps, key=lambda x: x[0])
        folder = os.path.join(os.fspath(root), venue, self.symbol.lower())
        os.makedirs(folder, exist_ok=True)
        out, i = [], 0
        while i < len(merged):
            t0 = merged[i][0]
            stop = (t0 // period + 1) * period
            j = i
            while j < len(merged) and merged[j][0] < stop:
                j += 1
            ms = t0 // _MS
            name = f"{np.datetime64(ms, 'ms').astype(object):%Y%m%d-%H%M%S}.{ms % 1000:03d}.zst"
            path = os.path.join(folder, name)
            plain = path + ".txt"
            with open(plain, "w") as f:
                f.write("".join(f"{ns} {msg}\n" for ns, msg in merged[i:j]))
            convert(plain, path)
            os.unlink(plain)
            out.append(path)
            i = j
        return out


# ---------------------------------------------------------------------------- simulate
def simulate(
    duration="10min",
    *,
    flow: FlowModel,
    price=None,
    seed=0,
    symbol: str = "SIMUSDT",
    start="2024-01-01",
    levels: int | None = None,
    update_every="100ms",
    drift=None,
) -> SimMarket:
    """Simulate a Binance-spot-like market from a calibrated :class:`FlowModel`.

    Parameters
    ----------
    duration : how long (``"10min"``, ``"1h"``, int ns, timedelta); at least one update step.
    flow : the order-flow rates (:func:`lobfast.sim.calibrate`).
    price : ``None`` (flow-driven: the simulated flow alone moves the book and reacts to it,
        see the module's docstring), a ``(ts, price)`` pair of arrays (int64
        ns since the epoch, sorted; prices finite and positive; the price in effect at ``t`` is
        the last one at or before it), or an object with ``.simulate(duration, *, seed, dt, s0,
        start) -> (ts, price)`` such as :class:`lobfast.sim.GBM` (called with this ``seed``,
        ``dt=update_every``, ``s0=flow.ref_price`` and ``start``). The mid then follows the path
        within about a tick.
    seed : seeds ``numpy.random.default_rng``; the same seed gives the same market.
    symbol : upper-case letters and digits, as in Binance symbols.
    start : the opening time (int ns, ISO string, datetime), rounded down to the millisecond.
    levels : ticks of book kept behind each best quote (and of flow simulated); default: the
        calibrated depth (``flow.depth``), shallower if the price is too low for it.
    update_every : the depth-diff interval, whole milliseconds (Binance spot: 100 ms).
    drift : with a price process only: ``None`` (default) simulates it without drift
        (``mu = 0``, a martingale, whatever its fitted ``mu``); a number (per year) or
        ``"model"`` (its own ``mu``) asks for one (see :mod:`lobfast.sim.prices`).

    Returns
    -------
    SimMarket with ``depth``, ``trades``, ``quotes`` as :func:`lobfast.read_binance` returns
    them, ``market_data()`` and ``write_raw(path)``.

    Examples
    --------
    >>> import lobfast
    >>> from lobfast import datasets
    >>> from lobfast.sim import calibrate, simulate
    >>> flow = calibrate(lobfast.read_binance(datasets.path("spot_btcusdt_20240808")))
    >>> sim = simulate("30s", flow=flow, seed=1)
    >>> lobfast.check_against_quotes(sim.depth, sim.quotes).ok
    True
    """
    if not isinstance(flow, FlowModel):
        raise TypeError(f"flow must be a lobfast.sim.FlowModel (from calibrate), not {type(flow).__name__}")
    duration_ns = parse_duration(duration, "duration")
    dt_ns = parse_duration(update_every, "update_every")
    if dt_ns % _MS:
        raise ValueError(f"update_every must be a whole number of milliseconds (Binance times are ms), not {dt_ns} ns")
    nsteps = duration_ns // dt_ns
    if nsteps < 1:
        raise ValueError(f"duration ({duration_ns} ns) is shorter than one update step ({dt_ns} ns)")
    if levels is not None:
        if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or not 2 <= levels <= MAX_DEPTH:
            raise ValueError(f"levels must be None or an int in 2..{MAX_DEPTH}, not {levels!r}")
        levels = int(levels)
    if not isinstance(symbol, str) or not _SYMBOL.fullmatch(symbol):
        raise ValueError(f"symbol must be 1 to 20 upper-case letters or digits, not {symbol!r}")
    start_ns = to_ns(start)
    start_ns -= start_ns % _MS
    if start_ns <= 0 or start_ns + duration_ns >= 2**62:
        raise ValueError(f"start={start!r} must be after 1970 and start + duration fit int64 ns")
    path = _price_path(price, nsteps * dt_ns, dt_ns, start_ns, seed, flow.ref_price, drift)

    tick = flow.tick
    t_grid = start_ns + dt_ns * np.arange(nsteps + 1, dtype=np.int64)
    if path is None:
        targets, mid0 = None, flow.ref_price / tick
        low = mid0
    else:
        ts, px = path
        idx = np.maximum(np.searchsorted(ts, t_grid, side="right") - 1, 0)
        at = px[idx] / tick  # the price in effect at start, start + dt, ..., end
        mid0, targets = float(at[0]), at[1:]
        low = float(at.min())
    if levels is None:  # the calibrated depth, as far as the price allows (at least its levels)
        levels = max(2, min(flow.depth, max(flow.levels, int((low - 2) // 2))))
    if low < 2 * levels + 2:
        what = "starting price" if path is None or low == mid0 else "price path goes down to"
        raise ValueError(
            f"the {what} {low * tick:g} is fewer than {2 * levels + 2} ticks of {tick:g}: "
            f"too low for this tick size and {levels} levels"
        )

    rng = _flow_rng(seed)
    eng = _Engine(flow, rng, levels, dt_ns, reactive=path is None)
    eng.open(mid0, start_ns)
    eng.run(start_ns, int(nsteps), targets)
    return _assemble(eng, flow, path, symbol, start_ns, start_ns + nsteps * dt_ns, dt_ns, levels, seed, rng)


def _assemble(eng: _Engine, flow, path, symbol, start_ns, end_ns, dt_ns, levels, seed, rng) -> SimMarket:
    tu, td = decimal_step(flow.tick)
    lu, ld = decimal_step(flow.lot)
    pdiv, qdiv = float(10**td), float(10**ld)

    def px(t) -> np.ndarray:
        return (np.asarray(t, np.int64) * tu).astype(np.float64) / pdiv

    def qty(v) -> np.ndarray:
        return (np.asarray(v, np.int64) * lu).astype(np.float64) / qdiv

    # receive times: event time + latency, strictly increasing line after line
    kind = np.asarray(eng.seq_kind, np.int8)
    ev = np.asarray(eng.seq_t, np.int64)
    lat = _LAT_MIN_NS + rng.exponential(_LAT_MEAN_NS, len(ev)).astype(np.int64)
    n = np.arange(len(ev), dtype=np.int64)
    local = np.maximum.accumulate(ev + lat - n) + n
    snap_local = int(local[0])
    diff_local = local[kind == _KIND_DIFF]
    trade_local = local[kind == _KIND_TRADE]
    quote_local = local[kind == _KIND_QUOTE]

    # depth: the snapshot (taking effect with the first diff, as the reader places it), then diffs
    sb, sa = eng.snapshot
    cols: dict[str, list] = {k: [] for k in ("ts", "local_ts", "side", "tick", "lots", "update_id", "flags")}
    if eng.diffs:
        first_ts = eng.diffs[0][0]
        rows = [(1, p, q) for p, q in sb] + [(-1, p, q) for p, q in sa]
        for i, (s, p, q) in enumerate(rows):
            fl = Flags.SNAPSHOT | (Flags.RESET if i == 0 else 0) | (Flags.END_OF_MESSAGE if i == len(rows) - 1 else 0)
            cols["ts"].append(first_ts)
            cols["local_ts"].append(snap_local)
            cols["side"].append(s)
            cols["tick"].append(p)
            cols["lots"].append(q)
            cols["update_id"].append(_UID0)
            cols["flags"].append(int(fl))
        for (E, _U, u, b, a), loc in zip(eng.diffs, diff_local.tolist()):
            m = len(b) + len(a)
            cols["ts"].extend([E] * m)
            cols["local_ts"].extend([loc] * m)
            cols["side"].extend([1] * len(b) + [-1] * len(a))
            cols["tick"].extend([p for p, _ in b] + [p for p, _ in a])
            cols["lots"].extend([q for _, q in b] + [q for _, q in a])
            cols["update_id"].extend([u] * m)
            cols["flags"].extend([0] * (m - 1) + [int(Flags.END_OF_MESSAGE)])
    depth = DepthEvents(
        ts=np.asarray(cols["ts"], np.int64),
        local_ts=np.asarray(cols["local_ts"], np.int64),
        side=np.asarray(cols["side"], np.int8),
        price=px(cols["tick"]),
        qty=qty(cols["lots"]),
        update_id=np.asarray(cols["update_id"], np.int64),
        flags=np.asarray(cols["flags"], np.uint8),
    )
    tr = np.asarray(eng.trades, np.int64).reshape(-1, 5)
    trades = Trades(
        ts=tr[:, 0], local_ts=trade_local, price=px(tr[:, 1]), qty=qty(tr[:, 2]), side=tr[:, 3], trade_id=tr[:, 4]
    )
    qt = np.asarray(eng.quotes, np.int64).reshape(-1, 5)
    quotes = Quotes(
        ts=quote_local,
        local_ts=quote_local,
        update_id=qt[:, 0],
        bid_px=px(qt[:, 1]),
        bid_qty=qty(qt[:, 2]),
        ask_px=px(qt[:, 3]),
        ask_qty=qty(qt[:, 4]),
    )
    synced = bool(eng.diffs)
    stats = {
        "lines": 1 + len(eng.diffs) + len(trades) + len(quotes),
        "bad_lines": 0,
        "market": "spot",
        "symbol": symbol,
        "symbols": symbol,
        "depth_messages": len(eng.diffs),
        "trade_messages": len(trades),
        "agg_trade_messages": 0,
        "book_ticker_messages": len(quotes),
        "snapshots": 1,
        "partial_depth_messages": 0,
        "collector_events": 0,
        "unknown_messages": 0,
        "other_symbol_messages": 0,
        "outside_window": 0,
        "blank_lines": 0,
        "gaps": 0,
        "resets": int(synced),
        "dropped_before_sync": 0,
        "stale_diffs": 0,
        "snapshots_rejected": 0,
        "snapshots_unused": 0,
        "snapshots_ambiguous": 0,
        "nonmarket_trades": 0,
        "buffer_overflow_drops": 0,
        "synced": int(synced),
        "last_update_id": eng.diffs[-1][2] if synced else -1,
        "simulated": True,
    }
    if not synced:  # no diff ever bridged the snapshot: the reader keeps no book and no symbol
        stats.update(market="unknown", symbol="", symbols="", snapshots_unused=1)
    return SimMarket(
        depth=depth,
        trades=trades,
        quotes=quotes,
        stats=stats,
        flow=flow,
        path=path,
        symbol=symbol,
        start=start_ns,
        end=end_ns,
        update_every=dt_ns,
        levels=levels,
        seed=seed,
        mid_causes=np.asarray(eng.mid_causes, np.int8),
        _raw={"snapshot": eng.snapshot, "snapshot_local": snap_local},
    )
