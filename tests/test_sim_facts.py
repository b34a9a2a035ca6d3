"""Stylized facts: the real spot sample's (fat tails, volatility clustering), facts computed by
hand on a made-up market, the side-by-side table and the figure."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import lobfast
from lobfast import DepthEvents, Flags, MarketData, Trades, datasets
from lobfast.sim import calibrate, compare_facts, plot_facts, simulate, stylized_facts
from lobfast.sim.facts import acf, excess_kurtosis

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
    # data is measured on the spot
    assert compare_facts(sim, sim).equals(compare_facts(f, f))


def test_plot_renders(real_facts, sim, tmp_path):
    from matplotlib.figure import Figure

    out = tmp_path / "facts.png"
    fig = plot_facts(real_facts, sim, path=out)
    assert isinstance(fig, Figure) and len(fig.axes) == 4
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


def test_helpers_against_scipy_and_numpy():
    rng = np.random.default_rng(1)
    x = rng.standard_t(4, 2000)
    assert excess_kurtosis(x) == pytest.approx(stats.kurtosis(x), rel=1e-12)
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
