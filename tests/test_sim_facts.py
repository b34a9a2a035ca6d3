"""Stylized facts: the real spot sample's (fat tails, volatility clustering), facts computed by
hand on a made-up market, the side-by-side table and the figure, and the simulated book's
shape (where its levels sit, what they hold, how often each tick near the touch is occupied)
held against the real recording it was calibrated on."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import lobfast
from lobfast import BookSnapshots, DepthEvents, Flags, MarketData, Trades, datasets
from lobfast.sim import HawkesJumpDiffusion, calibrate, compare_facts, plot_facts, simulate, stylized_facts
from lobfast.sim.facts import acf, book_shape, excess_kurtosis, rank_ic

T0 = lobfast.to_ns("2024-03-01")
SEC = 1_000_000_000


@pytest.fixture(scope="module")
def real():
    return lobfast.read_binance(datasets.path("spot_btcusdt_20240808"))


@pytest.fixture(scope="module")
def real_facts(real):
    return stylized_facts(real)


@pytest.fixture(scope="module")
def sim(real):
    return simulate("2min", flow=calibrate(real), seed=4)


def test_real_sample_has_fat_tails_and_clustering(real_facts):
    f = real_facts
    assert 300 < f["n_returns"] < 350  # 1 s returns over the ~6 synced minutes
    assert f["tick"] == 0.01
    assert f["kurtosis"] > 3  # 15.8 on this sample: far from Gaussian
    assert f["acf_abs_returns"][0] > 0.05  # 0.125: volatility clusters
    assert abs(f["acf_returns"][0]) < 0.2  # returns themselves barely autocorrelated
    assert f["ofi_ic"] > 0.2  # 0.36: order flow over a second foretells the next second's move
    assert f["acf_returns"].shape == f["acf_abs_returns"].shape == (20,)
    assert f["spread_one_tick"] > 0.95 and f["spread_quantiles"][0.5] == 1
    assert 15 < f["trade_rate"] < 40  # 28 trades per second
    assert f["inter_arrival_cv"] > 1  # trades arrive in bursts, not as a Poisson stream
    q = f["trade_size_quantiles"]
    assert 0 < q[0.1] < q[0.5] < q[0.9] < q[0.99]
    assert f["spread_shares"].sum() == pytest.approx(1.0)


def test_facts_of_a_simulation(sim, real_facts):
    f = stylized_facts(sim)
    assert f["n_returns"] == 119
    assert np.isfinite(f["return_std"]) and f["spread_mean"] >= 1
    assert f["trade_count"] == len(sim.trades)
    same = stylized_facts(sim.market_data())
    assert same["kurtosis"] == f["kurtosis"] or (np.isnan(same["kurtosis"]) and np.isnan(f["kurtosis"]))
    table = compare_facts(real_facts, f)
    assert list(table.columns) == ["real", "sim"]
    assert {"kurtosis", "acf_abs_r_1", "acf_r_1", "spread_one_tick", "inter_arrival_cv", "trade_size_q50"} <= set(
        table.index
    )
    assert table.loc["kurtosis", "real"] == real_facts["kurtosis"]
    assert table.dtypes.tolist() == [np.float64, np.float64]
    assert {"ofi_ic", *(f"acf_abs_r_{k}" for k in range(1, 6))} <= set(table.index)
    assert table.loc["ofi_ic", "real"] == real_facts["ofi_ic"]
    # one column per simulated source, in order
    wide = compare_facts(real_facts, {"path": f, "flow": f})
    assert list(wide.columns) == ["real", "path", "flow"] and wide["flow"].equals(table["sim"].rename("flow"))
    with pytest.raises(ValueError, match="real"):
        compare_facts(real_facts, {"real": f})
    # data is measured on the spot
    assert compare_facts(sim, sim).equals(compare_facts(f, f))


def test_plot_renders(real_facts, sim, tmp_path):
    from matplotlib.figure import Figure

    out = tmp_path / "facts.png"
    fig = plot_facts(real_facts, sim, path=out)
    assert isinstance(fig, Figure) and len(fig.axes) == 8
    titles = {a.get_title() for a in fig.axes}
    assert {"book shape: where the levels sit", "book shape: what the levels hold"} <= titles
    assert "order flow against the next return" in titles
    # any number of simulated sources, one line each
    many = plot_facts(real_facts, {"path": sim, "flow": sim})
    labels = many.axes[1].get_legend_handles_labels()[1]
    assert labels == ["real", "path", "flow"]
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def hand_market(bids, asks, trade_ts, trade_qty) -> MarketData:
    """A market whose best bid and ask (in ticks of 0.01) are set once a second, with trades."""
    ts, side, price, qty, uid, flags = [], [], [], [], [], []
    for k, (b, a) in enumerate(zip(bids, asks)):
        t = T0 + k * SEC
        rows = [(1, b, 1.0), (-1, a, 2.0)]
        if k:
            rows = [(1, bids[k - 1], 0.0), (-1, asks[k - 1], 0.0), *rows]
        for j, (s, p, q) in enumerate(rows):
            ts.append(t)
            side.append(s)
            price.append(p / 100)
            qty.append(q)
            uid.append(k + 1)
            fl = Flags.END_OF_MESSAGE if j == len(rows) - 1 else 0
            if k == 0:
                fl |= Flags.SNAPSHOT | (Flags.RESET if j == 0 else 0)
            flags.append(int(fl))
    depth = DepthEvents(ts=ts, local_ts=ts, side=side, price=price, qty=qty, update_id=uid, flags=flags)
    n = len(trade_ts)
    trades = Trades(
        ts=trade_ts,
        local_ts=trade_ts,
        price=np.full(n, 100.0),
        qty=trade_qty,
        side=np.ones(n, np.int8),
        trade_id=np.arange(n),
    )
    return MarketData(depth=depth, trades=trades)


def test_facts_by_hand():
    rng = np.random.default_rng(8)
    n = 400
    bids = 10_000 + np.cumsum(rng.choice([-3, -1, 0, 0, 1, 2, 9], n))
    spread = rng.choice([1, 1, 1, 2, 5], n)
    asks = bids + spread
    gaps = rng.exponential(0.3, 300)
    trade_ts = T0 + np.rint(np.cumsum(gaps) * 1e3).astype(np.int64) * 1_000_000
    trade_qty = rng.lognormal(-3, 1, 300)
    md = hand_market(bids.tolist(), asks.tolist(), trade_ts, trade_qty)
    f = stylized_facts(md, every="1s", spread_every="1s")

    mid = (bids + asks) / 200
    r = np.diff(np.log(mid))
    assert f["n_returns"] == n - 1
    np.testing.assert_allclose(f["returns"], r, rtol=0, atol=1e-13)
    assert f["kurtosis"] == pytest.approx(stats.kurtosis(r), rel=1e-9)
    assert f["return_std"] == pytest.approx(r.std(), rel=1e-12)
    d = r - r.mean()
    want = [np.sum(d[:-k] * d[k:]) / np.sum(d * d) for k in range(1, 21)]
    np.testing.assert_allclose(f["acf_returns"], want, rtol=1e-9, atol=1e-12)
    a = np.abs(r) - np.abs(r).mean()
    np.testing.assert_allclose(f["acf_abs_returns"][:3], [np.sum(a[:-k] * a[k:]) / np.sum(a * a) for k in (1, 2, 3)])
    assert f["spread_mean"] == pytest.approx(spread.mean())
    assert f["spread_one_tick"] == pytest.approx(np.mean(spread == 1))
    assert f["spread_quantiles"][0.9] == np.quantile(spread, 0.9)
    np.testing.assert_array_equal(f["spread_values"], [1, 2, 5])
    ia = np.diff(np.unique(trade_ts)) / 1e9
    assert f["inter_arrival_mean"] == pytest.approx(ia.mean())
    assert f["inter_arrival_cv"] == pytest.approx(ia.std() / ia.mean())
    assert f["inter_arrival_quantiles"][0.5] == pytest.approx(np.median(ia))
    assert f["trade_size_quantiles"][0.9] == pytest.approx(np.quantile(trade_qty, 0.9))
    assert f["trade_rate"] == pytest.approx(300 / ((trade_ts[-1] - trade_ts[0]) / 1e9))
    # order flow at the best (bid size 1, ask size 2 after every change) against the next return
    b, a = bids, asks
    e = (b[1:] >= b[:-1]) * 1.0 - (b[1:] <= b[:-1]) * 1.0 - (a[1:] <= a[:-1]) * 2.0 + (a[1:] >= a[:-1]) * 2.0
    np.testing.assert_array_equal(f["ofi"][1:], e)
    np.testing.assert_allclose(f["ofi_next_return"][:-1], r, rtol=0, atol=1e-13)
    assert f["ofi_ic"] == pytest.approx(stats.spearmanr(e[:-1], r[1:]).statistic, rel=1e-9)


def test_helpers_against_scipy_and_numpy():
    rng = np.random.default_rng(1)
    x = rng.standard_t(4, 2000)
    assert excess_kurtosis(x) == pytest.approx(stats.kurtosis(x), rel=1e-12)
    ties = np.round(x, 0)  # many ties, ranked by their average rank
    assert rank_ic(ties, x**3) == pytest.approx(stats.spearmanr(ties, x**3).statistic, rel=1e-12)
    assert np.isnan(rank_ic(np.ones(5), x[:5])) and np.isnan(rank_ic([1.0, np.nan], [2.0, 3.0]))
    assert np.isnan(excess_kurtosis([1.0, 2.0])) and np.isnan(excess_kurtosis(np.ones(10)))
    y = np.r_[x[:500], np.nan, x[500:]]
    got = acf(y, 3)
    assert np.all(np.isfinite(got)) and np.all(np.abs(got) < 0.2)
    z = np.sin(np.arange(200) / 3.0)
    assert acf(z, 1)[0] > 0.9
    assert np.isnan(acf(np.ones(5), 2)).all()


def test_book_input_and_bad_input(real):
    book = lobfast.reconstruct(real.depth, levels=1, every="100ms")
    f = stylized_facts(book, every="1s")
    g = stylized_facts(real, every="1s")
    assert f["n_returns"] == g["n_returns"]
    np.testing.assert_allclose(f["returns"], g["returns"])
    assert np.isnan(f["trade_rate"]) and f["trade_count"] == 0
    with pytest.raises(TypeError, match="MarketData"):
        stylized_facts(real.trades)
    with pytest.raises(ValueError, match="every"):
        stylized_facts(real, every="often")
    with pytest.raises(ValueError, match="lags"):
        stylized_facts(real, lags=0)
    with pytest.raises(ValueError, match="no depth"):
        stylized_facts(MarketData())


# ------------------------------------------------------------------------------ the book's shape
def test_book_shape_by_hand():
    nan = np.nan
    book = BookSnapshots(
        ts=[T0, T0 + SEC, T0 + 2 * SEC],
        update_id=[1, 2, 3],
        bid_px=[[99.99, 99.97, nan], [99.99, 99.98, 99.90], [nan, nan, nan]],
        bid_sz=[[1.0, 0.5, 0.0], [2.0, 0.1, 0.3], [0.0, 0.0, 0.0]],
        ask_px=[[100.00, 100.04, 100.05], [100.00, 100.01, nan], [100.0, nan, nan]],
        ask_sz=[[3.0, 0.2, 0.4], [1.0, 0.7, 0.0], [1.0, 0.0, 0.0]],
        valid=[True, True, False],
    )
    f = book_shape(book, 0.01, levels=4)
    mid = 99.995
    off = lambda p: abs(p - mid) / mid * 1e4  # noqa: E731
    np.testing.assert_allclose(
        f["level_offset_bps"][:3],
        [
            np.mean([off(99.99), off(100.0)] * 2),
            np.mean([off(99.97), off(100.04), off(99.98), off(100.01)]),
            np.mean([off(100.05), off(99.90)]),
        ],
    )
    assert np.isnan(f["level_offset_bps"][3]) and np.isnan(f["level_size_mean"][3])
    np.testing.assert_allclose(f["level_size_mean"][:3], [7 / 4, 1.5 / 4, 0.35])
    np.testing.assert_allclose(f["level_size_median"][:3], [1.5, 0.35, 0.35])
    # ticks from the opposite best: first row bids 1, 3 and asks 1, 5, 6; second row bids 1,
    # 2, 10 and asks 1, 2; the third row is not valid. Ticks 1 to 4 are in view on every side
    # (its last column is empty, so it shows all it holds, or lies beyond them)
    occ = f["tick_occupancy"]
    assert occ[0] == 1.0
    assert occ[1] == pytest.approx(2 / 4) and occ[2] == pytest.approx(1 / 4)
    assert occ[3] == 0.0


@pytest.fixture(scope="module")
def shapes():
    """The real book (both days) and 10 simulated minutes calibrated on it: along a fitted Hawkes
    jump diffusion without drift (as the demo does), and from the flow alone."""
    md = lobfast.read_binance([datasets.path("spot_btcusdt_20240808"), datasets.path("spot_btcusdt_20240809")])
    flow = calibrate(md)
    book = lobfast.reconstruct(md.depth, levels=1, every="100ms")
    ok = book.valid
    mid = 0.5 * (book.bid_px[ok, 0] + book.ask_px[ok, 0])
    price = HawkesJumpDiffusion(**{**HawkesJumpDiffusion.fit(book.ts[ok], mid).params, "mu": 0.0})
    start = int(book.ts[-1]) + 3600 * SEC
    path = simulate("10min", flow=flow, price=price, seed=7, start=start)
    alone = simulate("10min", flow=flow, seed=7, start=start)
    return flow, stylized_facts(md), stylized_facts(path), stylized_facts(alone)


def test_real_book_shape(shapes):
    flow, real, _, _ = shapes
    # the same measure as the calibration's
    np.testing.assert_allclose(real["tick_occupancy"], flow.queue_occupancy, atol=1e-12)
    off = real["level_offset_bps"]
    assert off[0] < 0.003  # half a tick: 0.0008 bp
    # deep ticks are mostly empty: level 2 sits 37 ticks out on average, level 10 about 350
    assert 0.05 < off[1] < 0.08 and 0.5 < off[9] < 0.65 and np.all(np.diff(off) > 0)
    assert real["tick_occupancy"][0] > 0.99 and real["tick_occupancy"][1] < 0.45
    assert real["level_size_mean"][0] > 10 * real["level_size_mean"][1]


def test_simulated_book_has_the_real_shape(shapes):
    """Along a price path: every tick within 10 of the touch is occupied as often as in the real
    book (within 4 points), the levels sit where the real ones do (level 2 within 40 %, 3 to 10
    within 20 %) and hold what they hold (level 1 within 10 %, deeper means within 50 %)."""
    _, real, sim, _ = shapes
    occ_r, occ_s = real["tick_occupancy"], sim["tick_occupancy"]
    np.testing.assert_allclose(occ_s, occ_r, atol=0.04)
    off_r, off_s = real["level_offset_bps"], sim["level_offset_bps"]
    assert off_s[0] < 0.003  # a one-tick spread
    assert off_s[1] == pytest.approx(off_r[1], rel=0.4)
    np.testing.assert_allclose(off_s[2:], off_r[2:], rtol=0.2)
    assert off_s[9] > 0.4  # 10 levels packed one tick apart reached 0.01 bp
    size_r, size_s = real["level_size_mean"], sim["level_size_mean"]
    assert size_s[0] == pytest.approx(size_r[0], rel=0.1)
    np.testing.assert_allclose(size_s[1:], size_r[1:], rtol=0.5)
    med_r, med_s = real["level_size_median"], sim["level_size_median"]
    assert med_s[0] == pytest.approx(med_r[0], rel=0.1)
    np.testing.assert_allclose(med_s[2:], med_r[2:], rtol=0.35)
    # and the rest still looks like the market
    assert sim["spread_one_tick"] > 0.95 and sim["inter_arrival_cv"] > 1.3
    assert 0.5 * real["trade_rate"] < sim["trade_rate"] < 2 * real["trade_rate"]


def test_flow_alone_gives_a_similar_shape(shapes):
    """Without a path the book moves only by its own flow, less often than the real one, so
    its deep levels sit closer (within 40 % from level 3 on) but ticks are occupied as often."""
    _, real, _, alone = shapes
    np.testing.assert_allclose(alone["tick_occupancy"], real["tick_occupancy"], atol=0.06)
    np.testing.assert_allclose(alone["level_offset_bps"][2:], real["level_offset_bps"][2:], rtol=0.4)
    assert alone["level_offset_bps"][9] > 0.35
    assert alone["level_size_mean"][0] == pytest.approx(real["level_size_mean"][0], rel=0.25)


def test_compare_facts_shows_the_book_shape(shapes):
    _, real, sim, _ = shapes
    table = compare_facts(real, sim)
    rows = [f"offset_bps_{k}" for k in range(1, 11)] + [f"size_mean_{k}" for k in range(1, 11)]
    rows += [f"occupancy_{d}" for d in range(1, 6)]
    assert set(rows) <= set(table.index) and "occupancy_6" not in table.index
    assert table.loc["offset_bps_2", "real"] == real["level_offset_bps"][1]
    assert table.loc["occupancy_2", "sim"] == sim["tick_occupancy"][1]
    assert np.isfinite(table.loc[rows].to_numpy()).all()
