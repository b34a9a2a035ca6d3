"""Simulated markets: calibration on the real spot sample, the queue model, the simulated book's
invariants, the exact round trip through the raw Binance format, following a price path, and
bad input. (How the simulated book's shape compares with the real one: test_sim_facts.py.)"""

from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pytest

import lobfast
from lobfast import Flags, datasets
from lobfast.sim import GBM, FlowModel, SimMarket, calibrate, simulate
from lobfast.sim.flow import _fit_self_excitation, fano_factor, hawkes_fano
from lobfast.sim.market import hawkes_times

TICK = 0.01
START = lobfast.to_ns("2024-01-01")
STEP = 100_000_000


@pytest.fixture(scope="module")
def real():
    return lobfast.read_binance(datasets.path("spot_btcusdt_20240808"))


@pytest.fixture(scope="module")
def flow(real):
    return calibrate(real)


def gbm_path(minutes: float, seed: int = 11, s0: float = 61_700.0, sigma_step: float = 3e-5):
    """A geometric random walk on a 100 ms grid (sigma_step per step: about 19 ticks at 61 700)."""
    rng = np.random.default_rng(seed)
    n = int(minutes * 600) + 1
    ts = START + STEP * np.arange(n, dtype=np.int64)
    r = sigma_step * rng.standard_normal(n - 1) - 0.5 * sigma_step**2
    return ts, s0 * np.exp(np.concatenate([[0.0], np.cumsum(r)]))


@pytest.fixture(scope="module")
def path():
    return gbm_path(3)


@pytest.fixture(scope="module")
def sim_path(flow, path):
    return simulate("3min", flow=flow, price=path, seed=5, start=START)


@pytest.fixture(scope="module")
def sim_flow(flow):
    return simulate("3min", flow=flow, seed=6, start=START)


@pytest.fixture(scope="module", params=["path", "flow"])
def sim(request, sim_path, sim_flow):
    return sim_path if request.param == "path" else sim_flow


def same_columns(a, b) -> None:
    assert type(a) is type(b) and len(a) == len(b)
    for name, col in a.columns.items():
        other = b.columns[name]
        assert col.dtype == other.dtype, name
        assert np.array_equal(col, other), f"column {name} differs at {np.flatnonzero(col != other)[:5]}"


# ------------------------------------------------------------------------------ calibration
def test_calibrate_real_sample(real, flow):
    assert flow.symbol == "BTCUSDT"
    assert flow.tick == 0.01
    assert flow.lot == 1e-6  # the smallest size step in the recording (BTCUSDT book sizes)
    assert flow.levels == 10
    assert 340 < flow.duration_s < 350  # the synced part of the 6-minute sample
    for name in ("limit_rate", "limit_count", "cancel_rate", "cancel_count", "queue_mean", "queue_occupancy"):
        arr = getattr(flow, name)
        assert arr.shape == (10,) and np.all(np.isfinite(arr)) and np.all(arr >= 0), name
    # the touch is the busiest level; every level saw some flow
    assert flow.limit_rate[0] == flow.limit_rate.max() and np.all(flow.limit_rate > 0)
    assert np.all(flow.cancel_rate > 0) and np.all(flow.limit_count > 0)
    assert 0.9 < flow.queue_occupancy[0] <= 1.0 and flow.queue_occupancy[1] < flow.queue_occupancy[0]
    assert np.all(np.diff(flow.queue_quantiles, axis=1) >= 0)
    assert np.all(flow.market_rate > 0) and np.all(flow.trade_rate > 0)
    assert flow.trades_per_order >= 1
    assert np.all(np.diff(flow.market_size_quantiles) >= 0) and flow.market_size_quantiles[0] > 0
    assert np.isfinite(flow.market_size_lognormal).all()
    assert flow.spread_probs[0] > 0.95 and flow.spread_probs.sum() == pytest.approx(1.0)
    assert 0 < flow.exec_share < 1
    assert flow.add_size_sigma > 0 and flow.cancel_size_sigma > 0
    mid = 0.5 * (real.quotes.bid_px + real.quotes.ask_px)
    assert mid.min() <= flow.ref_price <= mid.max()
    # trades per second times the span is the trades counted inside it
    span = real.trades.between(flow.source["start"] + 1, flow.source["end"] + 1)
    assert flow.trade_rate.sum() * flow.duration_s == pytest.approx(len(span))
    assert flow.trade_rate[0] * flow.duration_s == pytest.approx((span.side > 0).sum())
    assert 0.3 < flow.market_branching <= 0.95 and flow.market_decay > 0  # market orders cluster
    assert "level" in flow.summary() and "BTCUSDT" in repr(flow)
    assert np.all(flow.limit_size >= 0) and np.all(flow.cancel_size >= 0)


def test_calibrate_queue_model(real, flow):
    e = flow.tick_edges
    # one bucket per tick up to the 10 levels, then wider ones out to where 20 levels end
    assert e[0] == 1 and np.array_equal(e[:11], np.arange(1, 12)) and np.all(np.diff(e[10:]) > 1)
    assert flow.depth == e[-1] - 1 and 800 < flow.depth < 3000  # 1,355 ticks: a sparse book
    assert "queue model, 1355 ticks" in flow.summary()
    nb = len(e) - 1
    for name in ("tick_occupancy", "birth_rate", "join_rate", "death_rate"):
        arr = getattr(flow, name)
        assert arr.shape == (nb,) and np.all(np.isfinite(arr)) and np.all(arr >= 0), name
    # the first buckets are the levels: the same occupancy as measured per level
    np.testing.assert_array_equal(flow.tick_occupancy[:10], flow.queue_occupancy)
    # the touch is nearly always full; beyond the fifth tick about one price in 30 holds an order
    assert flow.tick_occupancy[0] > 0.99 and np.all(flow.tick_occupancy[5:] < 0.07)
    assert 0.015 < flow.tick_occupancy[10:].mean() < 0.05
    # births and deaths: a tick holds size about birth / (birth + death) of the time
    steady = flow.birth_rate / (flow.birth_rate + flow.death_rate)
    deep = slice(10, None)
    np.testing.assert_allclose(steady[deep], flow.tick_occupancy[deep], rtol=0.5)
    assert np.all(flow.death_rate > 0) and np.all(flow.birth_rate > 0)
    # orders: several at the touch, mostly one deeper; each cancelled whole at a finite rate
    m = flow.orders_per_queue
    assert 1.0 < m[0] < 10 and np.all(m[10:] < 0.5)
    assert np.all(np.isfinite(flow.order_cancel_rate)) and np.all(flow.order_cancel_rate > 0)
    for q in (flow.order_size_quantiles, flow.tick_size_quantiles):
        assert q.shape == (nb, 21) and np.all(np.diff(q, axis=1) >= 0) and np.all(q[:, 0] >= flow.lot)
    # an order at the touch is a share of the queue; deeper an order is the queue
    assert flow.order_size_quantiles[0, 10] < 0.6 * flow.tick_size_quantiles[0, 10]
    np.testing.assert_allclose(flow.order_size_quantiles[10:, 10], flow.tick_size_quantiles[10:, 10], rtol=0.2)
    assert 0.3 < flow.mid_move_rate < 3  # the mid moved about once a second
    assert 0.01 < flow.market_size_mean < 0.2


def test_flow_model_saves_and_loads(flow):
    d = json.loads(json.dumps(flow.to_dict()))
    again = FlowModel.from_dict(d)
    assert again.to_dict() == flow.to_dict()
    a = simulate("20s", flow=flow, seed=3)
    b = simulate("20s", flow=again, seed=3)
    same_columns(a.depth, b.depth)
    with pytest.raises(ValueError, match="missing"):
        FlowModel.from_dict({k: v for k, v in d.items() if k != "cancel_rate"})
    with pytest.raises(ValueError, match="levels"):
        FlowModel.from_dict({**d, "cancel_rate": d["cancel_rate"][:3]})
    with pytest.raises(ValueError, match="finite"):
        FlowModel.from_dict({**d, "limit_rate": [-1.0] * 10})
    with pytest.raises(TypeError):
        FlowModel.from_dict([1, 2])


def test_self_exciting_market_orders():
    rng = np.random.default_rng(0)
    span = 2000 * 10**9
    poisson = hawkes_times(rng, 5.0, 0.0, 1.0, span)
    assert np.all(np.diff(poisson) >= 0) and poisson.min() >= 0 and poisson.max() < span
    assert len(poisson) / 2000 == pytest.approx(5.0, rel=0.05)
    t = hawkes_times(rng, 5.0, 0.7, 10.0, span)
    assert len(t) / 2000 == pytest.approx(5.0, rel=0.15)
    windows = np.array([0.1, 1.0, 10.0])
    got = fano_factor(t, 0, span, windows)
    want = hawkes_fano(0.7, 10.0 * 0.3, windows)
    np.testing.assert_allclose(got, want, rtol=0.3)
    np.testing.assert_allclose(fano_factor(poisson, 0, span, windows), 1.0, atol=0.2)
    # and the fit finds them again
    n, decay = _fit_self_excitation([t], 0, span)
    assert n == pytest.approx(0.7, abs=0.1) and decay == pytest.approx(10.0, rel=0.5)
    assert _fit_self_excitation([poisson], 0, span)[0] < 0.1


def test_calibrate_refuses_bad_input(real):
    with pytest.raises(TypeError, match="MarketData"):
        calibrate(real.depth)
    with pytest.raises(ValueError, match="levels"):
        calibrate(real, levels=0)
    with pytest.raises(ValueError, match="snapshot"):
        calibrate(lobfast.MarketData())
    with pytest.raises(ValueError, match="every"):
        calibrate(real, every="soon")
    for depth in (0, 1.5, True, 10**6):
        with pytest.raises(ValueError, match="depth"):
            calibrate(real, depth=depth)


def test_calibrate_per_message_and_fewer_levels(real):
    f = calibrate(real, levels=3, every=None)
    assert f.levels == 3 and f.queue_quantiles.shape == (3, 21)
    assert f.source["every"] is None
    assert np.array_equal(f.tick_edges[:4], [1, 2, 3, 4]) and f.depth > 100
    g = calibrate(real, levels=3, depth=40)
    assert g.depth == 40 and g.tick_edges[-1] == 41 and len(g.tick_edges) < 15
    assert g.tick_occupancy.shape == (len(g.tick_edges) - 1,)


def test_flow_model_validates_the_queue_model(flow):
    d = flow.to_dict()
    with pytest.raises(ValueError, match="tick_edges"):
        FlowModel.from_dict({**d, "tick_edges": [0, *d["tick_edges"][1:]]})
    with pytest.raises(ValueError, match="tick_edges"):
        FlowModel.from_dict({**d, "tick_edges": [1, 3, 2]})
    with pytest.raises(ValueError, match="bucket"):
        FlowModel.from_dict({**d, "birth_rate": d["birth_rate"][:-1]})
    with pytest.raises(ValueError, match="at most 1"):
        FlowModel.from_dict({**d, "tick_occupancy": [1.5] * len(d["tick_occupancy"])})
    with pytest.raises(ValueError, match="shape"):
        FlowModel.from_dict({**d, "order_size_quantiles": d["order_size_quantiles"][:-1]})


def toy_flow(flow, *, market: bool = False) -> FlowModel:
    """Three buckets with round numbers: the touch (always refilled at once), ticks 2-5 and
    ticks 6-40; every order 0.01, so a queue's size counts its orders."""
    d = flow.to_dict()
    d.update(
        tick_edges=[1, 2, 6, 41],
        tick_occupancy=[1.0, 0.5, 0.1],
        birth_rate=[100.0, 0.5, 0.05],
        join_rate=[1.0, 0.5, 0.0],
        death_rate=[0.01, 0.5, 0.45],
        order_size_quantiles=[[0.01] * 21] * 3,
        tick_size_quantiles=[[0.01] * 21] * 3,
        improve_size_quantiles=[math.nan] * 21,  # improving orders sized as any other
        touch_persistence=0.0,  # the touch's orders cancelled at the model's rate
    )
    if not market:
        d["market_rate"] = [0.0, 0.0]
    return FlowModel.from_dict(d)


def test_queues_are_whole_orders_that_empty():
    """Without market orders the touch never moves, so each tick is a queue of whole orders on
    its own: it holds size birth / (birth + death) of the time, a zero-truncated Poisson number
    of orders with mean m / (1 - exp(-m)), m = ln(1 + join / death)."""
    flow = toy_flow(calibrate(lobfast.read_binance(datasets.path("spot_btcusdt_20240808")), levels=3, depth=40))
    m = simulate("5min", flow=flow, seed=3, start=START, levels=40)
    book = lobfast.reconstruct(m.depth, levels=40, every="100ms")
    ok = book.valid
    assert ok.all() and np.all(np.rint((book.ask_px[:, 0] - book.bid_px[:, 0]) / TICK) == 1)
    sizes = np.concatenate([book.bid_sz[ok], book.ask_sz[ok]])
    prices = np.concatenate([book.bid_px[ok], book.ask_px[ok]])
    mid = np.concatenate([0.5 * (book.bid_px[ok, :1] + book.ask_px[ok, :1])] * 2)
    dist = np.rint(np.abs(prices - mid) / TICK + 0.5)  # ticks from the opposite best
    orders = np.rint(sizes / 0.01)
    assert np.all(orders[sizes > 0] >= 1) and np.all(np.abs(orders - sizes / 0.01)[sizes > 0] < 1e-6)
    n_rows = 2 * ok.sum()
    for lo, hi, p, mean_orders in ((2, 5, 0.5, np.log(2) / 0.5), (6, 40, 0.1, 1.0)):
        inb = (dist >= lo) & (dist <= hi) & (sizes > 0)
        assert inb.sum() / (n_rows * (hi - lo + 1)) == pytest.approx(p, abs=0.03)
        assert orders[inb].mean() == pytest.approx(mean_orders, rel=0.05)
    assert 0 < len(m.depth) and len(m.trades) == 0


def test_market_orders_take_the_oldest_orders_first(flow):
    """A market order that takes part of a queue leaves it with fewer or smaller orders, never
    more; and one that empties the touch leaves the next price as the best, crossing nothing."""
    m = simulate("1min", flow=toy_flow(flow, market=True), seed=5, start=START, levels=40)
    assert len(m.trades) > 100
    book = lobfast.reconstruct(m.depth, levels=1, every=None, crossed="raise")
    assert book.valid.all() and np.all(book.bid_px[:, 0] < book.ask_px[:, 0])
    assert lobfast.check_against_quotes(m.depth, m.quotes).ok


# ------------------------------------------------------------------------------ the simulated book
def test_round_trip_is_exact(sim, tmp_path):
    md = sim.market_data()
    for name in ("sim.gz", "sim.txt"):
        path = sim.write_raw(tmp_path / name)
        got = lobfast.read_binance(path)
        same_columns(sim.depth, got.depth)
        same_columns(sim.trades, got.trades)
        same_columns(sim.quotes, got.quotes)
        assert len(got.agg_trades) == 0
        # every counter the simulation states is the reader's
        common = {k for k in md.stats if k in got.stats}
        assert {"gaps", "resets", "depth_messages", "trade_messages", "book_ticker_messages", "lines"} <= common
        assert {k: md.stats[k] for k in common} == {k: got.stats[k] for k in common}
    with open(tmp_path / "sim.gz", "rb") as f:
        assert f.read(2) == b"\x1f\x8b"


def test_round_trip_zstd(sim_path, tmp_path):
    pytest.importorskip("zstandard")
    got = lobfast.read_binance(sim_path.write_raw(tmp_path / "sim.zst"))
    same_columns(sim_path.depth, got.depth)
    same_columns(sim_path.trades, got.trades)


def test_quotes_match_the_book_and_no_gaps(sim):
    md = sim.market_data()
    assert md.stats["gaps"] == 0 and md.stats["resets"] == 1 and md.stats["synced"] == 1
    check = lobfast.check_against_quotes(md.depth, md.quotes)
    assert check.ok, check.mismatches[:3]
    # compared where a diff's last change moved the touch: 17 % of the real sample's diffs,
    # 9 % of the flow-driven one's (its best queues change less often than the real ones)
    assert check.compared > 0.05 * md.stats["depth_messages"]
    report = lobfast.quality_report(md)
    assert report.counts["gaps"] == 0


def test_book_never_crossed(sim):
    book = lobfast.reconstruct(sim.depth, levels=sim.levels, every=None, crossed="raise")
    assert book.valid.all()
    assert np.all(book.bid_px[:, 0] < book.ask_px[:, 0])
    assert np.all(book.bid_sz[:, 0] > 0) and np.all(book.ask_sz[:, 0] > 0)
    # quotes, trades: never crossed either, trades at or inside the touch of the book before
    assert np.all(sim.quotes.bid_px < sim.quotes.ask_px)
    builder = lobfast.BookBuilder(1)
    builder.feed(sim.depth)
    assert builder.stats["crossed"] == 0


def test_prices_and_sizes_on_the_grid(sim):
    for name, col in (
        ("depth.price", sim.depth.price),
        ("trades.price", sim.trades.price),
        ("quotes.bid_px", sim.quotes.bid_px),
        ("quotes.ask_px", sim.quotes.ask_px),
    ):
        assert np.array_equal(col, np.rint(col / TICK) / 100), name
    lot = sim.flow.lot
    for name, col in (
        ("depth.qty", sim.depth.qty),
        ("trades.qty", sim.trades.qty),
        ("quotes.bid_qty", sim.quotes.bid_qty),
        ("quotes.ask_qty", sim.quotes.ask_qty),
    ):
        assert np.array_equal(col, np.rint(col / lot) / 1e6), name
    assert np.all(sim.trades.qty > 0) and np.all(sim.quotes.bid_qty > 0)
    assert np.all(sim.depth.qty >= 0)
    # the book stays within its window of ticks behind each best quote (200 columns see it all)
    book = lobfast.reconstruct(sim.depth, levels=200, every=None)
    assert not np.isfinite(book.bid_px[:, -1]).any() and not np.isfinite(book.ask_px[:, -1]).any()
    with np.errstate(invalid="ignore"):
        behind_bid = np.nanmax(np.rint((book.bid_px[:, :1] - book.bid_px) / TICK), axis=1)
        behind_ask = np.nanmax(np.rint((book.ask_px - book.ask_px[:, :1]) / TICK), axis=1)
    assert behind_bid.max() < sim.levels and behind_ask.max() < sim.levels
    assert sim.levels == sim.flow.depth and behind_bid.max() > 0.5 * sim.levels  # and uses it


def test_ids_flags_and_times(sim, tmp_path):
    d, t, q = sim.depth, sim.trades, sim.quotes
    snap = (d.flags & Flags.SNAPSHOT) != 0
    n_snap = int(snap.sum())
    assert snap[:n_snap].all() and not snap[n_snap:].any()
    assert d.flags[0] == Flags.SNAPSHOT | Flags.RESET
    assert d.flags[n_snap - 1] & Flags.END_OF_MESSAGE
    assert not np.any(d.flags & Flags.GAP) and not np.any(d.flags[1:] & Flags.RESET)
    eom = (d.flags & Flags.END_OF_MESSAGE) != 0
    assert eom.sum() == sim.stats["depth_messages"] + 1 and eom[-1]
    assert np.all(np.diff(d.update_id) >= 0) and np.all(np.diff(d.update_id[eom]) > 0)
    assert np.all(np.diff(d.ts) >= 0) and np.all(np.diff(t.ts) >= 0) and np.all(np.diff(q.ts) >= 0)
    assert np.all(d.ts[~snap] % 100_000_000 == 0)  # diffs every 100 ms on the grid
    assert np.all(t.ts % 1_000_000 == 0)  # trade times in ms, as Binance's
    assert np.all(np.diff(t.trade_id) == 1)
    assert np.all(t.local_ts > t.ts) and np.all(d.local_ts[~snap] > d.ts[~snap])
    assert np.all(q.ts == q.local_ts)
    assert q.update_id.min() > d.update_id[0] and q.update_id.max() <= d.update_id[-1]
    # the raw file: U continues the previous u, starting right after the snapshot's id
    path = sim.write_raw(tmp_path / "ids.txt")
    last, local = None, []
    with open(path) as f:
        for line in f:
            ns, msg = line.split(" ", 1)
            local.append(int(ns))
            m = json.loads(msg)
            if "lastUpdateId" in m:
                assert last is None
                last = m["lastUpdateId"]
            elif m["stream"].endswith("@depth@100ms"):
                assert m["data"]["U"] == last + 1 and m["data"]["u"] >= m["data"]["U"]
                last = m["data"]["u"]
    assert last == d.update_id[-1]
    assert np.all(np.diff(local) > 0)


def test_write_raw_matches_binance_text(sim_path, tmp_path):
    path = sim_path.write_raw(tmp_path / "sim.gz")
    with gzip.open(path, "rt") as f:
        head = [f.readline() for _ in range(200)]
    assert head[0].split(" ", 1)[1].startswith('{"lastUpdateId":')
    kinds = set()
    for line in head[1:]:
        m = json.loads(line.split(" ", 1)[1])
        kinds.add(m["stream"].split("@", 1)[1])
        data = m["data"]
        if "p" in data:
            assert data["e"] == "trade" and data["s"] == "SIMUSDT" and len(data["p"].split(".")[1]) == 8
    assert kinds == {"depth@100ms", "trade", "bookTicker"}


def test_mid_follows_the_path(sim_path, path):
    book = lobfast.reconstruct(sim_path.depth, levels=5, every="100ms")
    ts, px = path
    at = px[np.searchsorted(ts, book.ts, side="right") - 1]
    mid = 0.5 * (book.bid_px[:, 0] + book.ask_px[:, 0])
    err = np.abs(mid - at)[book.valid] / TICK
    assert book.valid.mean() > 0.99
    assert err.max() <= 1.0 + 1e-6  # every depth update leaves the mid within a tick of the path
    moved = (px.max() - px.min()) / TICK
    assert moved > 100  # the path really moved the book
    # the trades went the path's way: taker buys where it rose
    assert sim_path.trades.side.min() == -1 and sim_path.trades.side.max() == 1


def test_flow_alone_moves_the_book(sim_flow, flow):
    book = lobfast.reconstruct(sim_flow.depth, levels=5, every="1s")
    mid = 0.5 * (book.bid_px[:, 0] + book.ask_px[:, 0])
    assert len(np.unique(mid)) > 5
    assert abs(mid[0] - flow.ref_price) <= TICK
    spread = np.rint((book.ask_px[:, 0] - book.bid_px[:, 0]) / TICK)
    assert np.mean(spread == 1) > 0.7
    # trade rates near the calibrated ones
    rate = len(sim_flow.trades) / 180
    assert 0.5 * flow.trade_rate.sum() < rate < 2 * flow.trade_rate.sum()


def test_features_and_labels_on_the_simulation(sim):
    book = lobfast.reconstruct(sim.depth, levels=10, every="100ms")
    assert book.valid.all()
    f = lobfast.features(book, sim.trades)
    for name in ("mid", "microprice", "spread", "spread_bps", "imbalance_1", "imbalance_5", "bid_depth_10"):
        assert np.isfinite(f[name]).all(), name
    for name in ("ofi", "ret", "buy_volume", "trade_count"):
        assert np.isfinite(f[name][1:]).all(), name
    assert np.isfinite(f["vol_100"][100:]).all()
    t = sim.trades.ts
    assert f["trade_count"][1:].sum() == np.sum((t > book.ts[0]) & (t <= book.ts[-1]))
    y = lobfast.labels.forward_return(book, [10, "1s"])
    assert np.isfinite(y["ret_10"][:-10]).all() and np.isnan(y["ret_10"][-10:]).all()
    assert np.isfinite(y["ret_1s"][:-10]).all()
    s = lobfast.labels.smoothed(book, 20)
    assert np.isfinite(s["smooth_20"][20:-20]).all()


def test_deterministic_per_seed(flow, path):
    a = simulate("30s", flow=flow, price=path, seed=42, start=START)
    b = simulate("30s", flow=flow, price=path, seed=42, start=START)
    for name in ("depth", "trades", "quotes"):
        same_columns(getattr(a, name), getattr(b, name))
    c = simulate("30s", flow=flow, price=path, seed=43, start=START)
    assert len(c.trades) != len(a.trades) or not np.array_equal(c.trades.qty, a.trades.qty)


def test_price_process_object(flow):
    class Walk:  # anything with .simulate(duration, *, seed, dt, s0, start) -> (ts, price)
        def simulate(self, duration, *, seed, dt, s0, start):
            n = int(duration) // int(dt)
            rng = np.random.default_rng(seed)
            return start + dt * np.arange(n + 1), s0 + 0.05 * np.cumsum(np.r_[0, rng.choice([-1, 1], n)])

    m = simulate("20s", flow=flow, price=Walk(), seed=1)
    assert isinstance(m, SimMarket) and m.path is not None
    assert m.path[1][0] == flow.ref_price
    assert lobfast.check_against_quotes(m.depth, m.quotes).ok
    g = simulate("20s", flow=flow, price=GBM(sigma=0.5), seed=1)
    assert lobfast.check_against_quotes(g.depth, g.quotes).ok
    assert g.path[0][0] == lobfast.to_ns("2024-01-01") and g.path[1][0] == flow.ref_price


def test_ten_minutes_along_a_path(flow):
    # speed is never asserted in tests (shared machines are noisy); this checks a long run completes
    ts, px = gbm_path(10, seed=2)
    m = simulate("10min", flow=flow, price=(ts, px), seed=0, start=START)
    assert m.stats["depth_messages"] > 5000


def test_a_market_where_nothing_happens(flow, tmp_path):
    d = flow.to_dict()
    for k in ("birth_rate", "join_rate", "death_rate"):
        d[k] = [0.0] * len(d[k])
    d["market_rate"] = [0.0, 0.0]
    m = simulate("1s", flow=FlowModel.from_dict(d), seed=1)
    assert len(m.depth) == len(m.trades) == len(m.quotes) == 0
    got = lobfast.read_binance(m.write_raw(tmp_path / "still.txt"))
    assert len(got.depth) == 0
    common = {k for k in m.stats if k in got.stats}
    assert {k: m.stats[k] for k in common} == {k: got.stats[k] for k in common}


def test_examples_in_the_docstrings():
    import doctest

    import lobfast.sim
    import lobfast.sim.flow
    import lobfast.sim.market

    for module in (lobfast.sim, lobfast.sim.flow, lobfast.sim.market):
        failed, tried = doctest.testmod(module)
        assert tried > 0 and failed == 0, module.__name__


def test_repr_and_market_data(sim_path):
    assert "SIMUSDT" in repr(sim_path) and "price path" in repr(sim_path)
    md = sim_path.market_data()
    assert isinstance(md, lobfast.MarketData) and md.symbol == "SIMUSDT" and md.market == "spot"
    assert md.depth is sim_path.depth


# ------------------------------------------------------------------------------ bad input
def test_bad_input(flow, path):
    ts, px = path
    with pytest.raises(ValueError, match="duration"):
        simulate(-5, flow=flow)
    with pytest.raises(ValueError, match="duration"):
        simulate("-5min", flow=flow)
    with pytest.raises(ValueError, match="shorter than one update step"):
        simulate("50ms", flow=flow)
    with pytest.raises(TypeError, match="FlowModel"):
        simulate("1min", flow=flow.to_dict())
    with pytest.raises(ValueError, match="finite and positive"):
        simulate("1min", flow=flow, price=(ts, np.where(np.arange(len(px)) == 7, 0.0, px)), start=START)
    with pytest.raises(ValueError, match="finite and positive"):
        simulate("1min", flow=flow, price=(ts, -px), start=START)
    with pytest.raises(ValueError, match="finite and positive"):
        simulate("1min", flow=flow, price=(ts, np.where(np.arange(len(px)) == 3, np.nan, px)), start=START)
    with pytest.raises(ValueError, match="sorted"):
        simulate("1min", flow=flow, price=(ts[::-1], px), start=START)
    with pytest.raises(ValueError, match="one length"):
        simulate("1min", flow=flow, price=(ts, px[:-1]), start=START)
    with pytest.raises(ValueError, match="does not overlap"):
        simulate("1min", flow=flow, price=(ts - ts[0], px), start=START)
    with pytest.raises(TypeError, match="price"):
        simulate("1min", flow=flow, price="gbm")
    with pytest.raises(ValueError, match="too low"):
        simulate("1min", flow=flow, price=(ts, px * 1e-6), start=START)
    with pytest.raises(ValueError, match="whole number of milliseconds"):
        simulate("1min", flow=flow, update_every="100us")
    with pytest.raises(ValueError, match="levels"):
        simulate("1min", flow=flow, levels=1)
    with pytest.raises(ValueError, match="levels"):
        simulate("1min", flow=flow, levels=10**6)
    with pytest.raises(ValueError, match="too low"):
        simulate("1min", flow=flow, price=(ts, px / 10_000), start=START, levels=1000)
    with pytest.raises(ValueError, match="symbol"):
        simulate("1min", flow=flow, symbol="sim usdt")
