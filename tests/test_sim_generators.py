"""The generative baselines (ARMLP, QuantGAN): trained and sampled deterministically from a
seed on the CPU, sampled with the price processes' signature so the flow simulator follows
them, kept finite where their feedback or tail transform could blow up, and refusing bad
input; path_facts, the row of facts they are compared by."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lobfast
from lobfast import datasets
from lobfast.sim import GBM, calibrate, path_facts, simulate

torch = pytest.importorskip("torch")
gen = pytest.importorskip("lobfast.sim.generators")
ARMLP, QuantGAN = gen.ARMLP, gen.QuantGAN

SEC = 1_000_000_000
T0 = lobfast.to_ns("2024-03-01")


def small_gan(**kw):
    return QuantGAN(**{"hidden": 8, "dilations": (1, 2, 4), "window": 16, "stride": 4, "batch_size": 32, **kw})


@pytest.fixture(scope="module")
def real():
    return lobfast.read_binance(datasets.path("spot_btcusdt_20240808"))


@pytest.fixture(scope="module")
def armlp(real):
    return ARMLP(lags=10).fit(real, every="100ms", epochs=3, seed=0)


@pytest.fixture(scope="module")
def gan(real):
    return small_gan().fit(real, every="100ms", epochs=2, seed=0)


def gbm_pair(n=2000, seed=3):
    ts, px = GBM(sigma=0.8).simulate(n * 100_000_000, seed=seed, dt="100ms", s0=100.0, start=T0)
    return ts, px


# ---------------------------------------------------------------- determinism
def test_armlp_trains_and_samples_deterministically(real, armlp):
    before = torch.random.get_rng_state()
    again = ARMLP(lags=10).fit(real, every="100ms", epochs=3, seed=0)
    assert torch.equal(torch.random.get_rng_state(), before)  # the caller's generator untouched
    assert again.loss_history == armlp.loss_history
    for a, b in zip(armlp.net.state_dict().values(), again.net.state_dict().values()):
        assert torch.equal(a, b)
    p1 = armlp.sample("2min", seed=5, s0=100.0)
    p2 = again.sample("2min", seed=5, s0=100.0)
    np.testing.assert_array_equal(p1[0], p2[0])
    np.testing.assert_array_equal(p1[1], p2[1])
    assert not np.array_equal(p1[1], armlp.sample("2min", seed=6, s0=100.0)[1])
    other = ARMLP(lags=10).fit(real, every="100ms", epochs=3, seed=1)
    assert other.loss_history != armlp.loss_history


def test_quantgan_trains_and_samples_deterministically(real, gan):
    before = torch.random.get_rng_state()
    again = small_gan().fit(real, every="100ms", epochs=2, seed=0)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert again.loss_history == gan.loss_history
    for a, b in zip(gan.generator.state_dict().values(), again.generator.state_dict().values()):
        assert torch.equal(a, b)
    np.testing.assert_array_equal(gan.sample("2min", seed=5)[1], again.sample("2min", seed=5)[1])
    assert not np.array_equal(gan.sample("2min", seed=5)[1], gan.sample("2min", seed=6)[1])
    # a numpy Generator or SeedSequence seeds it as an int does
    rng = np.random.SeedSequence(9)
    np.testing.assert_array_equal(gan.sample("10s", seed=rng)[1], gan.sample("10s", seed=np.random.SeedSequence(9))[1])


def test_progress_bar(real, capsys):
    ARMLP(lags=5, hidden=(8,)).fit(real, every="100ms", epochs=2, seed=0, progress=True)
    small_gan().fit(real, every="100ms", epochs=1, seed=0, progress=True)
    err = capsys.readouterr().err
    assert "ARMLP" in err and "QuantGAN" in err


# ---------------------------------------------------------------- sampling
@pytest.mark.parametrize("model", ["armlp", "gan"])
def test_sample_has_the_price_process_signature(model, request):
    m = request.getfixturevalue(model)
    ts, px = m.sample("1min", seed=0, s0=250.0, start=T0)
    assert ts.dtype == np.int64 and px.dtype == np.float64
    assert len(ts) == 601 and ts[0] == T0 and np.all(np.diff(ts) == 100_000_000)  # dt: the training grid
    assert px[0] == 250.0 and np.all(np.isfinite(px)) and np.all(px > 0)
    # a coarser dt reads the same path every 10 steps; a finer one holds each price
    ts1, px1 = m.sample("1min", seed=0, s0=250.0, start=T0, dt="1s")
    assert len(ts1) == 61 and np.array_equal(px1, px[::10])
    ts2, px2 = m.sample("1min", seed=0, s0=250.0, start=T0, dt="50ms")
    assert len(ts2) == 1201 and np.array_equal(px2[::2], px) and np.array_equal(px2[1::2], px[:-1])
    # .simulate is .sample: the flow simulator follows the path
    assert m.simulate == m.sample


def test_flow_simulator_follows_a_generator(real, armlp):
    flow = calibrate(real)
    market = simulate("20s", flow=flow, price=armlp, seed=2)
    ts, px = armlp.sample("20s", seed=2, dt="100ms", s0=flow.ref_price, start="2024-01-01")
    book = lobfast.reconstruct(market.market_data().depth, levels=1)
    mid = 0.5 * (book.bid_px[-1, 0] + book.ask_px[-1, 0])
    assert abs(mid - px[-1]) <= 3 * flow.tick


def test_armlp_feedback_stays_in_the_training_range(armlp):
    """Fed back unbounded, a tail draw could start a feedback that took the 1 h price to 1e16."""
    ts, px = armlp.sample("1h", seed=0, s0=60000.0)
    r = np.diff(np.log(px))
    lo, hi = armlp.z_range
    assert np.all(np.isfinite(px))
    assert r.min() >= lo * armlp.scale * (1 + 1e-9) and r.max() <= hi * armlp.scale * (1 + 1e-9)
    assert abs(math.log(px[-1] / px[0])) < 0.2


def test_armlp_learns_the_return_distribution():
    """On a GBM path (no zeros, no book): the sampled returns' scale is the training one."""
    ts, px = gbm_pair(3000)
    m = ARMLP(lags=5, hidden=(32, 16), features=(), zero_atom=False, components=1, burn_in=50)
    m.fit((ts, px), every="100ms", epochs=15, seed=0)
    r_train = np.diff(np.log(px))
    r = np.diff(np.log(m.sample("5min", seed=1)[1]))
    assert 0.7 < r.std() / r_train.std() < 1.4
    assert np.mean(r == 0) == 0.0


def test_armlp_zero_atom_on_a_tick_discrete_mid(real, armlp):
    r = np.diff(np.log(armlp.sample("10min", seed=3, s0=60000.0)[1]))
    book = lobfast.reconstruct(real.depth, levels=1, every="100ms")
    r_real = np.diff(np.log(0.5 * (book.bid_px[:, 0] + book.ask_px[:, 0])))
    assert np.mean(r_real == 0) > 0.8
    assert abs(np.mean(r == 0) - np.mean(r_real == 0)) < 0.1


# ---------------------------------------------------------------- Quant GAN preprocessing
def test_lambert_w():
    x = np.array([0.0, 1e-300, 1e-8, 0.5, 1.0, math.e, 10.0, 1e5, 1e300])
    w = gen.lambert_w(x)
    np.testing.assert_allclose(w * np.exp(w), x, rtol=1e-14, atol=0)
    assert w[4] == pytest.approx(0.5671432904097838, rel=1e-15)
    with pytest.raises(ValueError, match="x >= 0"):
        gen.lambert_w(np.array([-0.1]))


def test_igmm_recovers_the_tail_parameter():
    u = np.random.default_rng(0).standard_normal(50_000)
    delta = 0.2
    x = 0.5 + 2.0 * u * np.exp(0.5 * delta * u * u)
    mu, sigma, d = gen._igmm(x)
    assert d == pytest.approx(delta, abs=0.02)
    assert mu == pytest.approx(0.5, abs=0.02) and sigma == pytest.approx(2.0, rel=0.03)
    g = gen._gaussianize((x - mu) / sigma, d)
    assert abs(gen._excess_kurtosis(g)) < 1e-6


def test_quantgan_tail_parameter_on_a_tick_discrete_mid(gan):
    """With ~90 % zero returns no delta gives a normal kurtosis; estimated on every return,
    IGMM ran delta to 1e6 and the samples to inf. On the moves alone it is moderate."""
    assert 0 < gan.delta < 5
    v = np.array([-1e3, -3.0, 0.0, 3.0, 1e3])
    r = gan.postprocess(v)
    assert np.all(np.isfinite(r))
    assert r[0] == gan.postprocess(np.array([gan.v_range[0]]))[0]  # clipped to the training range
    series = np.linspace(-2, 2, 9) * gan.sigma + gan.mu
    np.testing.assert_allclose(gan.postprocess(gan.preprocess(series)), series, rtol=1e-9)
    assert np.all(np.isfinite(gan.sample("1h", seed=1, s0=60000.0)[1]))


def test_quantgan_receptive_field_bounds_the_dependence(gan):
    """Returns further apart than the receptive field come from disjoint noise."""
    assert gan.receptive_field == 8
    n = 200
    z = torch.zeros(1, gan.noise, n + gan.receptive_field - 1)
    base = gan.generator(z)[0, 0].detach()
    z[0, :, 100] = 5.0  # noise at 100 reaches outputs 100 - 7 .. 100 only
    moved = torch.nonzero(gan.generator(z)[0, 0].detach() != base).flatten()
    assert moved.min() >= 100 - gan.receptive_field + 1 and moved.max() <= 100


# ---------------------------------------------------------------- bad input
def test_bad_input(real):
    ts, px = gbm_pair(300)
    with pytest.raises(RuntimeError, match="not fitted"):
        ARMLP().sample("1min")
    with pytest.raises(RuntimeError, match="not fitted"):
        QuantGAN().sample("1min")
    with pytest.raises(ValueError, match="unknown features"):
        ARMLP(features=("imbalance", "volume"))
    with pytest.raises(ValueError, match="features=()"):
        ARMLP().fit((ts, px), every="100ms", epochs=1)
    with pytest.raises(ValueError, match="book must be 'blocks' or 'mean'"):
        ARMLP(book="replay")
    with pytest.raises(ValueError, match="lags must be an int >= 1"):
        ARMLP(lags=0)
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        ARMLP(features=()).fit((ts, px), every="100ms", epochs=0)
    with pytest.raises(ValueError, match="seed must be an int >= 0"):
        ARMLP(features=()).fit((ts, px), every="100ms", epochs=1, seed=-1)
    with pytest.raises(ValueError, match="receptive field"):
        QuantGAN(window=32)  # the default dilations see 64 steps
    with pytest.raises(ValueError, match="never moves"):
        ARMLP(features=()).fit((ts, np.full(len(ts), 5.0)), every="100ms", epochs=1)
    with pytest.raises(ValueError, match="never moves"):
        small_gan().fit((ts, np.full(len(ts), 5.0)), every="100ms", epochs=1)
    with pytest.raises(ValueError, match="too few to train on"):
        ARMLP(lags=5, features=()).fit((ts[:40], px[:40]), every="100ms", epochs=1)
    with pytest.raises(ValueError, match="fewer than one window"):
        small_gan(window=16).fit((ts[:10], px[:10]), every="100ms", epochs=1)
    bad = px.copy()
    bad[7] = np.nan
    with pytest.raises(ValueError, match="row 7"):
        ARMLP(features=()).fit((ts, bad), every="100ms", epochs=1)
    back = ts.copy()
    back[9] = back[3]
    with pytest.raises(ValueError, match="row 9"):
        ARMLP(features=()).fit((back, px), every="100ms", epochs=1)
    with pytest.raises(TypeError, match="MarketData"):
        ARMLP().fit(np.arange(10), every="100ms")
    m = ARMLP(lags=5, hidden=(8,), features=()).fit((ts, px), every="100ms", epochs=1)
    with pytest.raises(ValueError, match="shorter than one step"):
        m.sample("50ms")
    with pytest.raises(ValueError, match="s0 must be finite and > 0"):
        m.sample("1s", s0=0.0)
    with pytest.raises(ValueError, match="outside"):
        m.sample("1h", start=2**63 - 10)


def test_invalid_book_rows_are_left_out(real):
    """Returns touching an invalid book row never reach the training set (no NaN loss)."""
    book = lobfast.reconstruct(real.depth, levels=1, every="100ms")
    valid = book.valid.copy()
    valid[100:200] = False
    cut = lobfast.BookSnapshots(
        ts=book.ts,
        bid_px=book.bid_px,
        bid_sz=book.bid_sz,
        ask_px=book.ask_px,
        ask_sz=book.ask_sz,
        update_id=book.update_id,
        valid=valid,
    )
    full = ARMLP(lags=10, hidden=(16,)).fit(book, every="100ms", epochs=1)
    m = ARMLP(lags=10, hidden=(16,)).fit(cut, every="100ms", epochs=1)
    assert m.n_obs <= full.n_obs - 100 and np.isfinite(m.loss_history).all()
    q = small_gan().fit(cut, every="100ms", epochs=1)
    assert np.isfinite(q.loss_history).all()


# ---------------------------------------------------------------- path_facts
def test_path_facts_by_hand():
    ts = T0 + SEC * np.arange(6, dtype=np.int64)
    px = 100.0 * np.exp(np.cumsum([0.0, 0.01, 0.0, -0.02, 0.03, 0.0]))
    f = path_facts((ts, px), lags=2)
    r = np.array([0.01, 0.0, -0.02, 0.03, 0.0])
    years = 5 / (365 * 86400)
    assert f["n_returns"] == 5 and f["paths"] == 1 and f["hours"] == pytest.approx(5 / 3600)
    assert f["zero_share"] == pytest.approx(0.4)
    assert f["drift_per_year"] == pytest.approx(r.sum() / years)
    assert f["drift_se"] == pytest.approx(r.std() * math.sqrt(5) / years)
    assert f["drift_t"] == pytest.approx(r.sum() / (r.std() * math.sqrt(5)))
    d = r - r.mean()
    assert f["acf_r_1"] == pytest.approx(np.dot(d[:-1], d[1:]) / np.dot(d, d))
    assert f["acf_r_2"] == pytest.approx(np.dot(d[:-2], d[2:]) / np.dot(d, d))
    a = np.abs(r) - np.abs(r).mean()
    assert f["acf_abs_r_1"] == pytest.approx(np.dot(a[:-1], a[1:]) / np.dot(a, a))
    assert f["acf_abs_r_mean"] == pytest.approx(0.5 * (f["acf_abs_r_1"] + f["acf_abs_r_2"]))


def test_path_facts_pools_paths_without_crossing_them():
    ts = T0 + SEC * np.arange(4, dtype=np.int64)
    up = (ts, np.array([1.0, 2.0, 4.0, 8.0]))
    down = (ts, np.array([8.0, 4.0, 2.0, 1.0]))
    f = path_facts([up, down], lags=1)
    assert f["paths"] == 2 and f["n_returns"] == 6 and f["drift_per_year"] == pytest.approx(0.0, abs=1e-9)
    # 2 x 2 pairs of equal returns (+-log 2) within the paths; the pair across would add one
    # of opposite signs
    assert f["acf_r_1"] == pytest.approx(4 / 6)  # 3 / 6 with the pair across
    # on a coarser grid: the price in effect every 2 s
    ts5 = T0 + SEC * np.arange(5, dtype=np.int64)
    g = path_facts((ts5, 2.0 ** np.arange(5)), every="2s", lags=1)
    assert g["n_returns"] == 2 and g["drift_per_year"] == pytest.approx(math.log(16) / (4 / (365 * 86400)))


def test_path_facts_of_a_recording(real):
    f = path_facts(real, every="100ms")
    book = lobfast.reconstruct(real.depth, levels=1, every="100ms")
    r = np.diff(np.log(0.5 * (book.bid_px[:, 0] + book.ask_px[:, 0])))
    assert f["n_returns"] == len(r) and f["return_std"] == pytest.approx(r.std())
    assert f["kurtosis"] > 10 and f["acf_abs_r_1"] > 0.1


def test_path_facts_bad_input(real):
    ts = T0 + SEC * np.arange(4, dtype=np.int64)
    with pytest.raises(ValueError, match="every="):
        path_facts(real)
    with pytest.raises(ValueError, match="row 2"):
        path_facts((ts, np.array([1.0, 2.0, -1.0, 3.0])))
    with pytest.raises(ValueError, match="strictly increasing: row 3"):
        path_facts((ts[[0, 1, 2, 2]], np.ones(4)))
    with pytest.raises(ValueError, match="no paths"):
        path_facts([])
    with pytest.raises(ValueError, match="lags"):
        path_facts((ts, np.ones(4)), lags=0)


def test_threads_are_put_back(real):
    before = torch.get_num_threads()
    ARMLP(lags=5, hidden=(8,)).fit(real, every="100ms", epochs=1, threads=1)
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads"):
        ARMLP(lags=5, hidden=(8,)).fit(real, every="100ms", epochs=1, threads=0)


def test_armlp_book_features_while_sampling(real, armlp):
    """Blocks of recorded book rows: runs of consecutive training rows; the mean: a constant."""
    rows = armlp.feature_rows
    f = armlp._sampled_features(np.random.default_rng(0), 250)
    assert f.shape == (250, 2)
    start = int(np.flatnonzero((rows == f[0]).all(axis=1))[0])
    np.testing.assert_array_equal(f[:100], rows[(start + np.arange(100)) % len(rows)])
    held = ARMLP(lags=10, hidden=(16,), book="mean").fit(real, every="100ms", epochs=1)
    assert held._sampled_features(np.random.default_rng(0), 10) is None
    np.testing.assert_array_equal(held.sample("30s", seed=1)[1], held.sample("30s", seed=1)[1])


def test_examples_in_the_docstring():
    import doctest

    failed, tried = doctest.testmod(gen)
    assert tried > 0 and failed == 0
