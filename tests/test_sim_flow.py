"""The flow-driven simulation (``simulate(price=None)``): what calibrate measures of how the flow
reacts to the book, that the mid changes only through simulated book events (each change
has its cause, a market order leaving its trades at the old best), that the flow has no drift
of its own over many seeds, and that a price path does drive the path mode."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import numpy as np
import pytest

import lobfast
from lobfast import datasets
from lobfast.book import reconstruct
from lobfast.sim import GBM, FlowModel, calibrate, simulate
from lobfast.sim.flow import ACTIVITY_BUCKETS, IMBALANCE_BUCKETS, QUEUE_PROBS, touch_persistence
from lobfast.sim.market import CAUSE_ARRIVAL, CAUSE_CANCEL, CAUSE_MARKET, CAUSE_NONE, CAUSE_PATH

START = lobfast.to_ns("2024-01-01")
SHAPE = (IMBALANCE_BUCKETS, ACTIVITY_BUCKETS)


@pytest.fixture(scope="module")
def real():
    return lobfast.read_binance(datasets.path("spot_btcusdt_20240808"))


@pytest.fixture(scope="module")
def flow(real):
    return calibrate(real)


@pytest.fixture(scope="module")
def market(flow):
    return simulate("3min", flow=flow, seed=2, start=START)


def test_calibrate_measures_how_the_flow_reacts(flow):
    for name in ("react_market", "react_cancel", "react_improve", "deplete_rate", "sweep_share"):
        arr = getattr(flow, name)
        assert arr.shape == SHAPE and np.all(np.isfinite(arr)) and np.all(arr >= 0), name
    assert np.all(flow.sweep_share <= 1)
    # a best queue much smaller than the other side's is swept far more often (on this
    # sample 11-20 % of the market orders hitting it against 1-6 % for a large one)
    assert flow.sweep_share[0].mean() > 3 * flow.sweep_share[-1].mean()
    # market orders come faster after the mid has moved (2x at 3+ moves in the last second)
    assert flow.react_market[:, -1].mean() > 1.3 * flow.react_market[:, 0].mean()
    # within a 100 ms message the other best follows a retreating one almost always
    assert 0.9 < flow.follow_share <= 1.0


def test_reactive_tables_save_and_older_models_load(flow):
    d = json.loads(json.dumps(flow.to_dict()))
    again = FlowModel.from_dict(d)
    assert np.array_equal(again.sweep_share, flow.sweep_share) and again.follow_share == flow.follow_share
    old = {k: v for k, v in d.items() if k not in ("react_market", "react_cancel", "react_improve")}
    old = {k: v for k, v in old.items() if k not in ("deplete_rate", "sweep_share", "follow_share")}
    old.pop("improve_size_quantiles")
    old.pop("touch_persistence")
    plain = FlowModel.from_dict(old)  # a model saved before: a flow that ignores the book
    assert np.all(plain.react_market == 1) and np.all(plain.deplete_rate == 0) and np.isnan(plain.sweep_share).all()
    assert plain.follow_share == 0.5 and np.isnan(plain.improve_size_quantiles).all()
    assert plain.touch_persistence == 0.0
    m = simulate("20s", flow=plain, seed=1)
    assert len(m.trades) > 0 and m.stats["gaps"] == 0
    for bad in (
        {"sweep_share": [[1.5] * ACTIVITY_BUCKETS] * IMBALANCE_BUCKETS},
        {"react_market": [[1.0] * 3] * IMBALANCE_BUCKETS},
        {"deplete_rate": [[-1.0] * ACTIVITY_BUCKETS] * IMBALANCE_BUCKETS},
        {"follow_share": 1.2},
        {"improve_size_quantiles": [1.0] * 20},
        {"improve_size_quantiles": [0.0] * 21},
        {"improve_size_quantiles": list(range(21, 0, -1))},
        {"touch_persistence": -1.0},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            FlowModel.from_dict({**d, **bad})


def _improving_sizes(md):
    """The best queue's size in each message that moved the bid up or the ask down, both
    sides pooled, from the book after every message (consecutive valid books only)."""
    b = reconstruct(md.depth, levels=1, every=None)
    ok = b.valid[1:] & b.valid[:-1]
    up = np.flatnonzero(ok & (b.bid_px[1:, 0] > b.bid_px[:-1, 0])) + 1
    down = np.flatnonzero(ok & (b.ask_px[1:, 0] < b.ask_px[:-1, 0])) + 1
    return np.concatenate([b.bid_sz[up, 0], b.ask_sz[down, 0]])


def test_calibrate_measures_the_size_of_improving_quotes(real, flow):
    sizes = _improving_sizes(real)
    assert len(sizes) > 200
    np.testing.assert_allclose(flow.improve_size_quantiles, np.quantile(sizes, QUEUE_PROBS), rtol=1e-9)
    # the quote a move leads to is far larger than one order at the touch
    median = len(QUEUE_PROBS) // 2
    assert flow.improve_size_quantiles[median] > 2 * flow.order_size_quantiles[0, median]


def test_flow_driven_improving_quotes_have_the_calibrated_size(flow):
    m = simulate("3min", flow=flow, seed=4, start=START)
    sim_median = np.median(_improving_sizes(m))
    real_median = flow.improve_size_quantiles[len(QUEUE_PROBS) // 2]
    assert 0.6 * real_median < sim_median < 1.5 * real_median
    # sized as any order at the touch they would be a third of that
    unset = FlowModel.from_dict({**flow.to_dict(), "improve_size_quantiles": [math.nan] * len(QUEUE_PROBS)})
    assert np.median(_improving_sizes(simulate("3min", flow=unset, seed=4, start=START))) < 0.5 * real_median


def test_calibrate_measures_how_long_best_queues_keep_their_size(real, flow):
    b = reconstruct(real.depth, levels=1, every="100ms")
    lags, logs = [], []
    for k in range(1, 11):  # 100 ms .. 1 s
        pairs = []
        for px, sz in ((b.bid_px[:, 0], b.bid_sz[:, 0]), (b.ask_px[:, 0], b.ask_sz[:, 0])):
            held = b.valid[:-k] & b.valid[k:] & (px[:-k] == px[k:])
            pairs.append(np.log(np.stack([sz[:-k][held], sz[k:][held]])))
        c = np.corrcoef(np.concatenate(pairs, axis=1))[0, 1]
        lags.append(k / 10)
        logs.append(-np.log(c))
    rate = np.linalg.lstsq(np.array(lags)[:, None], np.array(logs), rcond=None)[0][0]
    assert flow.touch_persistence == pytest.approx(rate, rel=1e-9)
    # on this sample the size at a held best price keeps a correlation of 0.49 after 1 s:
    # slower than the queue model's per-order cancellation at the touch (1.4/s)
    assert 0.5 < flow.touch_persistence < 0.9 < flow.order_cancel_rate[0]


def test_flow_driven_best_queues_keep_their_size_as_recorded(flow):
    def rate(f):
        m = simulate("5min", flow=f, seed=5, start=START)
        return touch_persistence(reconstruct(m.depth, levels=1, every="100ms"))

    # as recorded (0.63-0.79/s over seeds 4-6 against 0.72/s), give or take what market
    # orders and emptied queues add
    kept = rate(flow)
    assert 0.7 * flow.touch_persistence < kept < 1.5 * flow.touch_persistence
    # with the touch's orders cancelled at the queue model's rate (1.4/s) they forget faster
    unset = FlowModel.from_dict({**flow.to_dict(), "touch_persistence": 0.0})
    assert rate(unset) > 1.3 * kept


def test_every_mid_change_is_a_simulated_book_event(market, flow):
    q = market.quotes
    causes = market.mid_causes
    assert causes.shape == (len(q),) and causes.dtype == np.int8
    mid2 = np.rint((q.bid_px + q.ask_px) / flow.tick).astype(np.int64)
    changed = np.zeros(len(q), bool)
    changed[1:] = mid2[1:] != mid2[:-1]  # the first quote follows the snapshot's book
    first = np.rint(market._raw["snapshot"][0][0][0] + market._raw["snapshot"][1][0][0])
    changed[0] = mid2[0] != first
    assert changed.sum() > 50  # the flow does move the mid
    # a cause for every change, none where the mid stayed, and never a path
    assert np.all(causes[changed] != CAUSE_NONE) and np.all(causes[~changed] == CAUSE_NONE)
    assert set(np.unique(causes[changed])) <= {CAUSE_MARKET, CAUSE_CANCEL, CAUSE_ARRIVAL}
    assert not np.any(causes == CAUSE_PATH)
    # a market order that moved the mid printed trades at the best it emptied, just before
    # the bookTicker that shows the change (receive times trail event times by a few ms)
    tr = market.trades
    for i in np.flatnonzero(causes == CAUSE_MARKET):
        up = mid2[i] > mid2[i - 1]
        old = q.ask_px[i - 1] if up else q.bid_px[i - 1]
        near = (tr.ts <= q.ts[i]) & (tr.ts >= q.ts[i] - 100_000_000) & (tr.side == (1 if up else -1))
        assert np.any(np.isclose(tr.price[near], old)), i
    # an order arriving inside the spread improves a best quote; a cancellation empties one
    for i in np.flatnonzero(causes == CAUSE_ARRIVAL):
        assert q.bid_px[i] > q.bid_px[i - 1] or q.ask_px[i] < q.ask_px[i - 1], i
    for i in np.flatnonzero(causes == CAUSE_CANCEL):
        assert q.bid_px[i] < q.bid_px[i - 1] or q.ask_px[i] > q.ask_px[i - 1], i


def test_the_path_mode_moves_the_book_by_the_path(flow):
    ts = START + 100_000_000 * np.arange(601, dtype=np.int64)
    px = flow.ref_price * np.exp(np.linspace(0.0, 0.002, 601))  # a steady climb of 20 bps
    m = simulate("1min", flow=flow, price=(ts, px), seed=3, start=START)
    assert np.sum(m.mid_causes == CAUSE_PATH) > 10


def test_flow_has_no_drift_over_many_seeds(flow):
    # taker buys 20 times as frequent as taker sells: a flow that used the rates side by side
    # would climb; the flow-driven mode pools the sides (mirror images), so over 24 seeds the
    # mean log return is within three standard errors of 0
    d = flow.to_dict()
    d["market_rate"] = [20 * flow.market_rate.mean(), flow.market_rate.mean()]
    lopsided = FlowModel.from_dict(d)
    ends = []
    for seed in range(24):
        q = simulate("1min", flow=lopsided, seed=seed, start=START).quotes
        ends.append(math.log((q.bid_px[-1] + q.ask_px[-1]) / (q.bid_px[0] + q.ask_px[0])))
    ends = np.array(ends)
    se = ends.std(ddof=1) / math.sqrt(len(ends))
    assert ends.std() > 0 and abs(ends.mean()) < 3 * se


def test_simulate_passes_drift_to_a_price_process_only(flow):
    ts = START + 100_000_000 * np.arange(301, dtype=np.int64)
    px = np.full(301, flow.ref_price)
    with pytest.raises(ValueError, match="drift= applies to a price process"):
        simulate("10s", flow=flow, drift=1.0)
    with pytest.raises(ValueError, match="not to a given path"):
        simulate("10s", flow=flow, price=(ts, px), drift=1.0, start=START)
    steps = 1e-5 + 1e-5 * np.random.default_rng(0).standard_normal(300)  # a climb with noise
    fitted = GBM.fit(ts, flow.ref_price * np.exp(np.cumsum(np.r_[0.0, steps])))
    fitted.mu_se = abs(fitted.mu)  # as if the climb were noise: one standard error
    a = simulate("10s", flow=flow, price=fitted, seed=1, start=START)
    b = simulate("10s", flow=flow, price=GBM(0.0, fitted.sigma), seed=1, start=START)
    assert np.array_equal(a.path[1], b.path[1])  # the fitted drift is left out
    with pytest.warns(lobfast.LobWarning, match="not significant"):
        c = simulate("10s", flow=flow, price=fitted, seed=1, start=START, drift="model")
    assert c.path[1][-1] > a.path[1][-1]


def test_a_flow_that_takes_the_price_to_zero_is_refused_by_name(flow):
    """The flow moves the price by ticks: started a few ticks above the book's depth, the best
    bid reaches the floor, and the simulation stops there naming it, never writing a price at
    or below zero."""
    low = dataclasses.replace(flow, ref_price=0.22)
    refused = 0
    for seed in range(4):
        try:
            m = simulate("20min", flow=low, seed=seed, levels=10, start=START)
        except ValueError as e:
            assert re.search(r"best bid fell to [\d.]+ at 2024-01-01T.*fewer than 11 ticks of 0.01", str(e)), e
            refused += 1
        else:
            assert m.depth.price.min() > 0
    assert refused >= 2
