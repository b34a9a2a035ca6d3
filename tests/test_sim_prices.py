"""lobfast.sim.prices: the C Hawkes log-likelihood against an O(n^2) reference, Ogata's
thinning, recovery of known parameters from simulated paths, fits of the real BTCUSDT mid,
and bad input.

Recovery tolerances come from the spread of each estimator over 24-40 seeds at the sample
size the test uses (the standard deviations quoted below); each is at least 3 of those
standard deviations beyond the estimator's measured bias, and the seeds are fixed.
"""

from __future__ import annotations

import math
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lobfast
import lobfast.datasets
import lobfast.sim.prices as prices
from lobfast import _core, to_ns
from lobfast.sim.prices import GBM, YEAR_S, HawkesJumpDiffusion, Merton, fit_hawkes

# --- the C log-likelihood ------------------------------------------------------------------


def reference_loglik(t, T0, T1, mu, alpha, beta):
    """The definition, term by term in O(n^2): sum log lambda(t_i) minus the compensator,
    lambda(t) = mu + sum over strictly earlier events of alpha beta exp(-beta (t - t_j)).
    Also returns the sum of the terms' magnitudes (the scale a rounding error is relative to)."""
    t = np.asarray(t, dtype=np.float64)
    lag = t[:, None] - t[None, :]
    kernel = np.where(lag > 0, alpha * beta * np.exp(-beta * np.where(lag > 0, lag, 0.0)), 0.0)
    lam = mu + kernel.sum(axis=1)
    comp = alpha * np.sum(1 - np.exp(-beta * (T1 - t)))
    value = np.sum(np.log(lam)) - mu * (T1 - T0) - comp
    scale = np.sum(np.abs(np.log(lam))) + mu * (T1 - T0) + comp
    return float(value), float(scale)


@st.composite
def event_sets(draw, min_alpha=0.0):
    T0 = draw(st.floats(-1e3, 1e3))
    length = draw(st.floats(0.1, 1e3))
    u = draw(st.lists(st.floats(0.0, 1.0), max_size=60))
    t = np.sort(T0 + length * np.asarray(u, dtype=np.float64))
    if draw(st.booleans()) and len(t) > 2:  # ties: events rounded to a coarse clock
        step = length / draw(st.integers(2, 20))
        t = np.sort(T0 + np.floor((t - T0) / step) * step)
    t = np.clip(t, T0, T0 + length)
    mu = draw(st.floats(1e-3, 10.0))
    alpha = draw(st.floats(min_alpha, 2.0))
    beta = draw(st.floats(1e-3, 100.0))
    return t, T0, T0 + length, mu, alpha, beta


@settings(max_examples=50, deadline=None)
@given(event_sets())
def test_loglik_matches_the_quadratic_reference(case):
    t, T0, T1, mu, alpha, beta = case
    ll, grad = _core.hawkes_loglik(t, T0, T1, mu, alpha, beta)
    ref, scale = reference_loglik(t, T0, T1, mu, alpha, beta)
    # relative to the terms' magnitudes: the sum itself may cancel to near zero
    assert abs(ll - ref) <= 1e-9 * max(scale, abs(ref)), (ll, ref)
    assert grad.shape == (3,) and grad.dtype == np.float64


@settings(max_examples=50, deadline=None)
@given(event_sets(min_alpha=0.01))
def test_gradient_matches_central_differences(case):
    t, T0, T1, mu, alpha, beta = case
    theta = np.array([mu, alpha, beta])
    _, grad = _core.hawkes_loglik(t, T0, T1, *theta)
    _, scale = reference_loglik(t, T0, T1, *theta)
    for j in range(3):
        h = 1e-6 * theta[j]
        up, down = theta.copy(), theta.copy()
        up[j] += h
        down[j] -= h
        fd = (_core.hawkes_loglik(t, T0, T1, *up)[0] - _core.hawkes_loglik(t, T0, T1, *down)[0]) / (2 * h)
        # truncation O(h^2) plus rounding ~1e-16 * scale / h
        assert abs(grad[j] - fd) <= 1e-6 * (abs(grad[j]) + (scale + 1) / theta[j]), (j, grad[j], fd)


def test_loglik_of_no_events_and_of_ties():
    ll, grad = _core.hawkes_loglik(np.empty(0), 0.0, 10.0, 0.5, 0.3, 2.0)
    assert ll == pytest.approx(-5.0) and grad.tolist() == [-10.0, 0.0, 0.0]
    # three events at t = 1: none excites the others, all excite the event at 2
    t = np.array([1.0, 1.0, 1.0, 2.0])
    ll, _ = _core.hawkes_loglik(t, 0.0, 3.0, 0.5, 0.3, 2.0)
    lam_last = 0.5 + 3 * 0.3 * 2.0 * math.exp(-2.0)
    comp = 0.5 * 3 + 0.3 * (3 * (1 - math.exp(-4.0)) + (1 - math.exp(-2.0)))
    assert ll == pytest.approx(3 * math.log(0.5) + math.log(lam_last) - comp, rel=1e-12)


# --- Ogata's thinning ------------------------------------------------------------------------


def test_simulated_count_matches_the_stationary_mean():
    mu, alpha, beta, T = 1.0, 0.5, 2.0, 1e5
    t = _core.hawkes_simulate(mu, alpha, beta, 0.0, T, 7)
    mean = mu * T / (1 - alpha)  # 200 000
    sd = math.sqrt(mu * T / (1 - alpha) ** 3)  # the count's long-run sd: 894
    # the path starts empty, which costs about mu alpha / (beta (1 - alpha)^2) = 1 event
    assert abs(len(t) - mean) < 4 * sd, (len(t), mean, sd)
    assert t.dtype == np.float64 and np.all(np.diff(t) >= 0) and 0 < t[0] and t[-1] <= T


def test_time_rescaling_gives_unit_exponentials():
    from scipy import stats

    mu, alpha, beta, T0, T1 = 0.8, 0.7, 1.3, 100.0, 5100.0
    t = _core.hawkes_simulate(mu, alpha, beta, T0, T1, 2024)
    assert len(t) > 5000
    # compensator increments: mu d + alpha (1 - exp(-beta d)) (1 + A) between events
    inc = np.empty(len(t))
    inc[0] = mu * (t[0] - T0)
    A = 0.0
    for i in range(1, len(t)):
        d = t[i] - t[i - 1]
        inc[i] = mu * d + alpha * (1 - math.exp(-beta * d)) * (1 + A)
        A = math.exp(-beta * d) * (1 + A)
    assert stats.kstest(inc, "expon").pvalue > 0.01
    assert inc.mean() == pytest.approx(1.0, abs=4 / math.sqrt(len(inc)))


def test_same_seed_same_path_and_buffer_growth_replays_it():
    a = _core.hawkes_simulate(0.5, 0.6, 1.5, 0.0, 2000.0, 11)
    b = _core.hawkes_simulate(0.5, 0.6, 1.5, 0.0, 2000.0, 11)
    c = _core.hawkes_simulate(0.5, 0.6, 1.5, 0.0, 2000.0, 12)
    grown = _core.hawkes_simulate(0.5, 0.6, 1.5, 0.0, 2000.0, 11, cap=1)  # doubles 11 times
    assert np.array_equal(a, b) and np.array_equal(a, grown)
    assert len(a) != len(c) or not np.array_equal(a, c)
    assert _core.hawkes_simulate(0.5, 0.6, 1.5, 0.0, 2000.0, -1).shape[0] > 0  # seeds mod 2**64


# --- recovery of known parameters --------------------------------------------------------------


def test_fit_hawkes_recovers_parameters():
    # 20 000 s, about 25 000 events; over 40 seeds the estimates' sd: baseline 1.3 %,
    # alpha 0.008, beta 2 %, no visible bias
    T = 20000
    t = _core.hawkes_simulate(0.5, 0.6, 1.5, 0.0, float(T), 3)
    start = 1_723_161_255 * 10**9  # epoch ns: fit_hawkes works relative to T_start
    times = start + np.round(t * 1e9).astype(np.int64)
    baseline, alpha, beta = fit_hawkes(times, start, start + T * 10**9)
    assert baseline == pytest.approx(0.5, rel=0.06)
    assert alpha == pytest.approx(0.6, abs=0.04)
    assert beta == pytest.approx(1.5, rel=0.1)


def test_gbm_recovers_sigma_on_a_regular_and_an_irregular_grid():
    # one day at 1 s: 86 400 returns; sd of sigma-hat = sigma / sqrt(2 n) = 0.14 %, of mu-hat
    # sigma / sqrt(T) = 11.5 per year (the drift is not identifiable in a day)
    true = GBM(0.1, sigma=0.6)
    ts, price = true.simulate("1d", dt="1s", seed=1)
    assert len(ts) == 86401 and ts.dtype == np.int64 and price[0] == 100.0
    fit = GBM.fit(ts, price)
    assert fit.sigma == pytest.approx(0.6, rel=0.01)
    assert abs(fit.mu - 0.1) < 4 * 0.6 / math.sqrt(86400 / YEAR_S)
    assert fit.n_obs == 86400 and math.isfinite(fit.loglik)
    # irregular: a random half of the rows, gaps of 1 s to over 10 s
    keep = np.sort(np.random.default_rng(5).choice(len(ts), len(ts) // 2, replace=False))
    fit = GBM.fit(ts[keep], price[keep])
    assert fit.sigma == pytest.approx(0.6, rel=0.015)


def test_gbm_fit_is_the_closed_form_maximum():
    ts, price = GBM(0.0, sigma=0.5).simulate("1h", dt="1s", seed=4)
    fit = GBM.fit(ts, price)
    r, dt = np.diff(np.log(price)), np.diff(ts) / (YEAR_S * 1e9)

    def loglik(mu, sigma):
        m = mu - sigma**2 / 2
        return float(np.sum(-0.5 * np.log(2 * np.pi * sigma**2 * dt) - (r - m * dt) ** 2 / (2 * sigma**2 * dt)))

    assert fit.loglik == pytest.approx(loglik(fit.mu, fit.sigma), rel=1e-12)
    for dmu, dsig in ((1.0, 0), (-1.0, 0), (0, 1e-3), (0, -1e-3)):
        assert loglik(fit.mu + dmu, fit.sigma + dsig) < fit.loglik


def test_merton_recovers_parameters():
    # one day at 1 s, 200 jumps a day of sd 0.002 (22 diffusion sds): over 24 seeds the
    # estimates' sd: sigma 0.2 %, lam 7 %, jump_mean 1.4e-4, jump_std 5 %
    true = Merton(0.1, 0.5, 200 * 365, 0.0, 0.002)
    ts, price = true.simulate("1d", dt="1s", seed=1)
    fit = Merton.fit(ts, price)
    assert fit.sigma == pytest.approx(0.5, rel=0.02)
    assert fit.lam == pytest.approx(200 * 365, rel=0.25)
    assert abs(fit.jump_mean) < 6e-4
    assert fit.jump_std == pytest.approx(0.002, rel=0.2)
    # GBM is Merton without jumps: the nested fit cannot be better
    assert fit.loglik > GBM.fit(ts, price).loglik
    assert fit.n_obs == 86400


def test_hawkes_jump_diffusion_recovers_parameters():
    # four days at 1 s (345 600 returns), about 3 450 jumps of which ~6 % fall under the
    # 4-sigma threshold (3 200 detected).  Over 30 seeds: sigma sd 0.15 %; baseline bias -4 %,
    # sd 3 %; alpha bias -0.017, sd 0.019; beta bias -6 %, sd 6.4 %; jump_std +3.5 %, sd 1 %
    true = HawkesJumpDiffusion(0.1, 0.3, 0.005, 0.5, 0.02, 0.0, 0.003)
    ts, price = true.simulate("4d", dt="1s", seed=1)
    fit = HawkesJumpDiffusion.fit(ts, price)
    assert fit.sigma == pytest.approx(0.3, rel=0.02)
    assert fit.baseline == pytest.approx(0.005, rel=0.3)
    assert fit.alpha == pytest.approx(0.5, abs=0.1)
    assert fit.beta == pytest.approx(0.02, rel=0.3)
    assert abs(fit.jump_mean) < 4 * 0.003 / math.sqrt(3200)
    assert fit.jump_std == pytest.approx(0.003, rel=0.1)
    assert 3000 < fit.n_jumps < 3900 and fit.n_obs == 4 * 86400
    assert math.isfinite(fit.loglik) and math.isfinite(fit.hawkes_loglik)


def test_simulate_grid_seeds_and_repr():
    for model in (
        GBM(0.05, sigma=0.8),
        Merton(0.0, 0.5, 1000.0, -0.001, 0.004),
        HawkesJumpDiffusion(0.0, 0.5, 0.01, 0.4, 0.1, 0.0, 0.002),
    ):
        ts, price = model.simulate("10min", seed=3, dt="250ms", s0=60000.0, start="2024-08-08T00:00:00")
        start = to_ns("2024-08-08T00:00:00")
        assert ts.dtype == np.int64 and price.dtype == np.float64 and len(ts) == len(price) == 2401
        assert np.array_equal(ts, start + 250_000_000 * np.arange(2401))
        assert price[0] == 60000.0 and np.all(np.isfinite(price)) and np.all(price > 0)
        assert np.allclose(model.simulate("10min", seed=3, dt="250ms")[1] * 600, price, rtol=1e-12, atol=0)
        assert not np.allclose(model.simulate("10min", seed=4, dt="250ms")[1] * 600, price, rtol=1e-6, atol=0)
        text = repr(model)
        assert text.startswith(type(model).__name__ + "(mu=") and "loglik" not in text
        assert set(model.params) == set(model._params)
    assert repr(GBM(0.1, 0.6)) == "GBM(mu=0.1, sigma=0.6)"
    fitted = GBM.fit(*GBM(sigma=0.6).simulate("1h", dt="1s"))
    assert "loglik=" in repr(fitted) and "n_obs=3600" in repr(fitted)


# --- the real mid series -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def btc_mid():
    md = lobfast.read_binance(lobfast.datasets.path("spot_btcusdt_20240808"))
    book = lobfast.reconstruct(md.depth, levels=10, every="100ms")
    mid = (book.bid_px[:, 0] + book.ask_px[:, 0]) / 2
    ok = book.valid & np.isfinite(mid)
    return book.ts[ok], mid[ok]


def test_fits_on_the_real_btcusdt_mid(btc_mid):
    ts, mid = btc_mid  # 3 457 rows, 345.6 s every 100 ms; 92 % of the returns are exactly 0
    gbm = GBM.fit(ts, mid)
    assert 0.1 < gbm.sigma < 3.0 and math.isfinite(gbm.mu) and math.isfinite(gbm.loglik)
    hawkes = HawkesJumpDiffusion.fit(ts, mid)
    assert 0 < hawkes.sigma < gbm.sigma and hawkes.n_jumps >= 10
    assert hawkes.baseline > 0 and 0 <= hawkes.alpha < 1 and 0 < hawkes.beta < 1e4
    assert abs(hawkes.jump_mean) < 1e-3 and 0 <= hawkes.jump_std < 1e-2
    assert all(math.isfinite(v) for v in hawkes.params.values()) and math.isfinite(hawkes.loglik)
    # Merton's continuous density fits a tick-discrete price only where most returns move:
    # at 100 ms its likelihood rewards a vanishing diffusion (see the module's docstring),
    # every 5 s (17 % zeros) the fit is interior
    merton = Merton.fit(ts[::50], mid[::50])
    assert 0.05 < merton.sigma <= GBM.fit(ts[::50], mid[::50]).sigma
    assert merton.lam > 0 and abs(merton.jump_mean) < 1e-3 and 0 < merton.jump_std < 1e-2
    assert all(math.isfinite(v) for v in merton.params.values()) and math.isfinite(merton.loglik)
    fast = Merton.fit(ts, mid)
    assert all(math.isfinite(v) for v in fast.params.values()) and fast.sigma > 0


# --- no drift unless asked ------------------------------------------------------------------


def test_fits_report_the_drift_with_its_standard_error(btc_mid):
    # six minutes of the real mid: sigma ~0.4 / yr, so the drift's standard error is sigma /
    # sqrt(345 s in years) ~ 100 / yr, and a fitted drift of that size is noise
    ts, mid = btc_mid
    years = (ts[-1] - ts[0]) / 1e9 / YEAR_S
    gbm = GBM.fit(ts, mid)
    assert gbm.mu_se == pytest.approx(gbm.sigma / math.sqrt(years), rel=1e-9)
    assert abs(gbm.mu) < 3 * gbm.mu_se and "mu_se=" in repr(gbm)
    hawkes = HawkesJumpDiffusion.fit(ts, mid)
    assert hawkes.mu_se == pytest.approx(hawkes.sigma / math.sqrt(years), rel=1e-9)
    merton = Merton.fit(ts[::50], mid[::50])
    r = np.diff(np.log(mid[::50]))
    # the whole return's rate, jumps included, is at least as uncertain as the diffusion's
    assert merton.mu_se >= 0.9 * float(np.std(r)) * math.sqrt(len(r)) / years
    # a day of a strong trend: significant
    trend = GBM.fit(*GBM(2000.0, sigma=0.5).simulate("1d", dt="1s", seed=2, drift="model"))
    assert trend.mu == pytest.approx(2000.0, abs=5 * trend.mu_se) and trend.mu > 10 * trend.mu_se


@pytest.mark.parametrize(
    "model",
    [
        GBM(300.0, sigma=0.6),
        Merton(300.0, 0.5, 1000.0, 0.0, 0.002),
        HawkesJumpDiffusion(300.0, 0.5, 0.01, 0.4, 0.1, 0.0, 0.002),
    ],
)
def test_simulation_has_no_drift_unless_asked(model):
    # the default is the diffusion drift that makes the price a martingale: 0 less the
    # jumps' expected growth (rate * (E[e^J] - 1))
    comp = model.jump_drift()
    assert comp == 0.0 if isinstance(model, GBM) else comp != 0.0
    flat = type(model)(**{**model.params, "mu": -comp})
    default = model.simulate("10min", seed=5, dt="1s")
    assert np.array_equal(default[1], flat.simulate("10min", seed=5, dt="1s", drift="model")[1])
    h = 600 / YEAR_S
    asked = model.simulate("10min", seed=5, dt="1s", drift=300.0)[1]  # the price's growth, jumps included
    assert math.log(asked[-1] / default[1][-1]) == pytest.approx(300.0 * h, rel=1e-9)
    own = model.simulate("10min", seed=5, dt="1s", drift="model")[1]  # mu in the diffusion, jumps on top
    assert math.log(own[-1] / default[1][-1]) == pytest.approx((300.0 + comp) * h, rel=1e-9)
    with pytest.raises(ValueError, match="drift"):
        model.simulate("1min", drift="fitted")
    with pytest.raises(ValueError, match="drift"):
        model.simulate("1min", drift=float("nan"))


def test_mean_simulated_drift_is_zero_over_many_seeds(btc_mid):
    # fitted on six minutes of a falling BTCUSDT mid: GBM's drift and the Hawkes model's jumps
    # (a mean of -1.2e-5 at 0.6 jumps a second: -0.025 an hour) both point down; simulated as
    # they come out of the fit, the price is a martingale: over 400 paths of an hour the mean
    # of S_T / S_0 - 1 is within three standard errors of 0, where either drift lies far outside
    ts, mid = btc_mid
    T = 3600 / YEAR_S
    for fit in (GBM.fit(ts, mid), HawkesJumpDiffusion.fit(ts, mid)):
        growth = np.array([p[-1] / p[0] - 1 for p in (fit.simulate("1h", seed=s, dt="1s")[1] for s in range(400))])
        se = growth.std(ddof=1) / math.sqrt(len(growth))
        assert abs(growth.mean()) < 3 * se
        would = (fit.mu + fit.jump_drift()) * T  # what the fitted drift and jumps would add
        assert abs(would) > 6 * se


def test_passing_an_insignificant_fitted_drift_warns(btc_mid):
    ts, mid = btc_mid
    fit = GBM.fit(ts, mid)
    with pytest.warns(lobfast.LobWarning, match="not significant"):
        fit.simulate("1min", drift="model")
    with pytest.warns(lobfast.LobWarning, match="not significant"):
        fit.simulate("1min", drift=fit.mu)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit.simulate("1min")  # no drift: nothing to warn about
        fit.simulate("1min", drift=0.5)  # a drift of the caller's own
        GBM(fit.mu, fit.sigma).simulate("1min", drift="model")  # not a fit
        trend = GBM.fit(*GBM(2000.0, sigma=0.5).simulate("1d", dt="1s", seed=2, drift="model"))
        trend.simulate("1min", drift="model")  # significant


# --- bad input ---------------------------------------------------------------------------------


def series(n=20):
    ts = 1_700_000_000 * 10**9 + 10**9 * np.arange(n, dtype=np.int64)
    return ts, 100.0 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 1e-3, n)))


@pytest.mark.parametrize("cls", [GBM, Merton, HawkesJumpDiffusion])
def test_fit_rejects_bad_series(cls):
    ts, mid = series()
    bad = ts.copy()
    bad[5], bad[6] = bad[6], bad[5]
    with pytest.raises(ValueError, match="strictly increasing: row 6"):
        cls.fit(bad, mid)
    bad = ts.copy()
    bad[4] = bad[3]
    with pytest.raises(ValueError, match="row 4"):
        cls.fit(bad, mid)
    for value in (0.0, -1.0, np.nan, np.inf):
        p = mid.copy()
        p[3] = value
        with pytest.raises(ValueError, match="finite and > 0: row 3"):
            cls.fit(ts, p)
    with pytest.raises(ValueError, match="too few"):
        cls.fit(ts[:10], mid[:10])  # 9 returns
    with pytest.raises(ValueError, match="one price per ts"):
        cls.fit(ts, mid[:-1])
    with pytest.raises(TypeError, match="integer ns"):
        cls.fit(ts.astype(np.float64), mid)


def test_bad_parameters():
    with pytest.raises(ValueError, match="stationary"):
        HawkesJumpDiffusion(0.0, 0.3, 0.01, 1.0, 0.1, 0.0, 0.01)
    with pytest.raises(ValueError, match="baseline"):
        HawkesJumpDiffusion(0.0, 0.3, 0.0, 0.5, 0.1, 0.0, 0.01)
    with pytest.raises(ValueError, match="lam"):
        Merton(0.0, 0.3, -1.0, 0.0, 0.01)
    with pytest.raises(ValueError, match="sigma"):
        GBM(0.0, sigma=np.nan)
    with pytest.raises(TypeError, match="sigma"):
        GBM(0.1)
    with pytest.raises(ValueError, match="shorter than one step"):
        GBM(sigma=0.5).simulate("50ms", dt="100ms")
    with pytest.raises(ValueError, match="s0"):
        GBM(sigma=0.5).simulate("1s", s0=0.0)
    with pytest.raises(ValueError, match="too few jumps"):
        HawkesJumpDiffusion.fit(*GBM(sigma=0.5).simulate("10min", dt="1s", seed=2))


def test_fit_hawkes_rejects_bad_events():
    t = np.arange(1, 21, dtype=np.int64) * 10**9
    with pytest.raises(ValueError, match="sorted: event 6"):
        fit_hawkes(t[[0, 1, 2, 3, 4, 6, 5, 7, 8, 9, 10, 11]], 0, 30 * 10**9)
    with pytest.raises(ValueError, match="event 15 .* outside"):
        fit_hawkes(t, 0, 15 * 10**9)
    with pytest.raises(ValueError, match="T_end > T_start"):
        fit_hawkes(t, 30 * 10**9, 0)
    with pytest.raises(ValueError, match="too few"):
        fit_hawkes(t[:9], 0, 30 * 10**9)


def test_binding_rejects_bad_arguments():
    t = np.array([0.5, 1.0, 2.0])
    for args, message in [
        ((np.array([0.5, 2.0, 1.0]), 0.0, 3.0, 1.0, 0.5, 1.0), "event 1 .* before event 2"),
        ((np.array([0.5, np.nan]), 0.0, 3.0, 1.0, 0.5, 1.0), "event 1 is not finite"),
        ((t, 0.0, 1.5, 1.0, 0.5, 1.0), "event 2 at 2 lies outside"),
        ((t, 1.0, 3.0, 1.0, 0.5, 1.0), "event 0 at 0.5 lies outside"),
        ((t, 3.0, 3.0, 1.0, 0.5, 1.0), "T0 < T1"),
        ((t, 0.0, 3.0, 0.0, 0.5, 1.0), "mu"),
        ((t, 0.0, 3.0, 1.0, -0.1, 1.0), "alpha"),
        ((t, 0.0, 3.0, 1.0, 0.5, 0.0), "beta"),
        ((t, 0.0, np.inf, 1.0, 0.5, 1.0), "finite"),
    ]:
        with pytest.raises(ValueError, match=message):
            _core.hawkes_loglik(*args)
    with pytest.raises(ValueError, match="1-D"):
        _core.hawkes_loglik(np.zeros((2, 2)), 0.0, 3.0, 1.0, 0.5, 1.0)
    for args, message in [
        ((1.0, 1.0, 1.0, 0.0, 10.0, 0), "stationary"),
        ((1.0, 1.5, 1.0, 0.0, 10.0, 0), "stationary"),
        ((0.0, 0.5, 1.0, 0.0, 10.0, 0), "mu"),
        ((1.0, 0.5, -1.0, 0.0, 10.0, 0), "beta"),
        ((1.0, 0.5, 1.0, 10.0, 0.0, 0), "T0 < T1"),
        ((1.0, np.nan, 1.0, 0.0, 10.0, 0), "alpha"),
        ((1e12, 0.5, 1.0, 0.0, 1e3, 0), "events expected"),
        # epoch nanoseconds passed as seconds: steps below a double's resolution there
        ((1.0, 0.5, 1.0, 1e17, 1e17 + 1000, 0), "time resolution lost"),
    ]:
        with pytest.raises(ValueError, match=message):
            _core.hawkes_simulate(*args)
    with pytest.raises(ValueError, match="cap"):
        _core.hawkes_simulate(1.0, 0.5, 1.0, 0.0, 10.0, 0, cap=-1)
    with pytest.raises(TypeError):
        _core.hawkes_simulate(1.0, 0.5, 1.0, 0.0, 10.0, 1.5)


def test_fitting_without_scipy_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.optimize", None)
    ts, mid = series(50)
    with pytest.raises(ImportError, match=r"lobfast\[sim\]"):
        Merton.fit(ts, mid)
    assert GBM.fit(ts, mid).sigma > 0  # closed form: no SciPy
    assert prices.GBM is GBM
