"""Price processes for simulated markets, fitted by maximum likelihood and simulated on a
time grid: :class:`GBM`, :class:`Merton` and :class:`HawkesJumpDiffusion`.

Every model describes the log price.  Over an interval of length ``dt``::

    log S(t + dt) - log S(t) = (mu - sigma**2 / 2) dt + sigma (W(t + dt) - W(t)) + jumps

with ``W`` a standard Brownian motion and ``jumps`` the sum of the jumps in ``(t, t + dt]``,
each independently normal with mean ``jump_mean`` and standard deviation ``jump_std``.
GBM has no jumps; in Merton's model they arrive as a Poisson process of rate ``lam``; in
the Hawkes jump diffusion each jump raises the rate of further jumps (self-excitation).

Units
-----
* Times are int64 nanoseconds (durations too: ``"100ms"``, ``"1d"``, int ns, timedelta).
* ``mu`` and ``sigma`` are per year, a year being 365 days of 86400 s (crypto markets
  never close): ``sigma=0.6`` is a 60 % annualised volatility.  ``mu`` is the drift of the
  price in the diffusion part (the log price drifts by ``mu - sigma**2 / 2``); jumps add
  their own mean on top.
* Merton's ``lam``: jumps per year.
* Hawkes ``baseline`` and ``beta``: per second (jumps per second, decay rate per second);
  ``alpha`` is the branching ratio, the expected number of jumps each jump triggers, and
  must be < 1 (stationarity; the mean jump rate is then ``baseline / (1 - alpha)``).
* ``jump_mean`` and ``jump_std``: log-price units (0.01 is about a 1 % jump).
* Prices are positive floats in the caller's unit.

Fitting needs SciPy for Merton and the Hawkes model (``pip install 'lobfast[sim]'``).
Fitted instances carry ``loglik`` (the maximised log-likelihood, in nats; for the returns'
models it is the density of the log returns), ``n_obs`` (returns used) and ``mu_se``, the
standard error of the fitted drift ``mu`` (per year); the Hawkes model also ``n_jumps``.

No drift unless asked
---------------------
A drift fitted on minutes or hours of data is noise (its standard error is about
``sigma / sqrt(years observed)``: several hundred per year for a 60 % volatility over six
minutes), and so is the mean of a few hundred fitted jumps, so :meth:`~GBM.simulate`
simulates a martingale price (expected growth 0: ``mu = 0``, less the jumps' expected
growth where there are jumps) unless it is given ``drift=``: a number (the price's expected
growth per year) or ``"model"`` (the model's own ``mu``, jumps on top). Passing a fitted
drift that is not significant (``|mu| < 2 mu_se``) warns with a :class:`~lobfast.LobWarning`.

Limits: the models are for continuous prices.  A tick-discrete price sampled faster than it
moves (most returns exactly zero) violates them: Merton's likelihood then rewards a vanishing
diffusion and explains every move as a jump, and the threshold estimator of the Hawkes model
calls most moves jumps.  Sample such series more coarsely.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from .. import _core
from ..errors import LobWarning
from ..times import parse_duration, to_ns

__all__ = ["GBM", "Merton", "HawkesJumpDiffusion", "fit_hawkes", "YEAR_S"]

YEAR_S = 365 * 86400
"""Seconds in the year that ``mu``, ``sigma`` and Merton's ``lam`` are quoted per."""
_YEAR_NS = YEAR_S * 10**9
_MIN_RETURNS = 10
_MIN_EVENTS = 10
_LOG_2PI = math.log(2 * math.pi)


def _optimize():
    try:
        import scipy.optimize
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("fitting Merton and HawkesJumpDiffusion needs SciPy: pip install 'lobfast[sim]'") from e
    return scipy.optimize


def _multistart(fun: Any, starts: list[Any], bounds: list[tuple[float, float]], what: str) -> Any:
    """L-BFGS-B (``fun`` returns value and gradient) from every start to a loose tolerance,
    then the best of them polished to a tight one."""
    opt = _optimize()
    lo, hi = [b[0] for b in bounds], [b[1] for b in bounds]
    best = None
    for x0 in starts:
        res = opt.minimize(
            fun, np.clip(x0, lo, hi), jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 500}
        )
        if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
            best = res
    if best is None:  # pragma: no cover - every start failed
        raise ValueError(f"the {what} likelihood could not be maximised from any starting point")
    polished = opt.minimize(
        fun,
        best.x,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": 1000, "ftol": 1e-14, "gtol": 1e-10},
    )
    return polished if np.isfinite(polished.fun) and polished.fun <= best.fun else best


def _finite(name: str, value: Any, low: float | None = None, strict: bool = False) -> float:
    v = float(value)
    if not math.isfinite(v) or (low is not None and (v <= low if strict else v < low)):
        bound = "" if low is None else f" and {'>' if strict else '>='} {low:g}"
        raise ValueError(f"{name} must be finite{bound}, got {value!r}")
    return v


def _times_ns(values: Any, name: str) -> np.ndarray:
    a = np.asarray(values)
    if a.dtype.kind == "M":
        a = a.astype("datetime64[ns]").view(np.int64)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integer ns (int64) or datetime64, got dtype {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    return a.astype(np.int64, copy=False)


def _returns(ts: Any, mid: Any) -> tuple[np.ndarray, np.ndarray]:
    """Log returns and their interval lengths in years, after checking the series."""
    t = _times_ns(ts, "ts")
    p = np.asarray(mid, dtype=np.float64)
    if p.ndim != 1 or len(p) != len(t):
        raise ValueError(f"mid must be 1-D with one price per ts ({len(t)}), got shape {p.shape}")
    bad = np.flatnonzero(~(np.isfinite(p) & (p > 0)))
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"mid must be finite and > 0: row {i} is {float(p[i])!r}")
    step = np.diff(t)
    bad = np.flatnonzero(step <= 0)
    if len(bad):
        i = int(bad[0]) + 1
        raise ValueError(f"ts must be strictly increasing: row {i} ({t[i]}) is not after row {i - 1} ({t[i - 1]})")
    if len(p) - 1 < _MIN_RETURNS:
        raise ValueError(f"{len(p) - 1} returns are too few to fit; at least {_MIN_RETURNS} are needed")
    return np.diff(np.log(p)), step / _YEAR_NS


def _split_jumps(r: np.ndarray, dt: np.ndarray, k: float) -> tuple[float, np.ndarray]:
    """sigma by two-pass bipower variation, and which returns are jumps (|r| > k sigma sqrt(dt)).

    Bipower variation, (pi / 2) mean |z_i||z_{i-1}| for z = r / sqrt(dt), estimates sigma^2
    with a single jump weighing in only through its neighbours; with large, frequent jumps
    that is still a bias (each adds |jump| |z_neighbour| twice), so a second pass leaves out
    the products that touch a return the first pass flags.  One pass is enough: the jumps
    it misses are those near the threshold, whose products are small.  Under pure diffusion
    the products left out are a fraction ~1e-4 (k = 4), no visible bias.  (Iterating to a
    fixed point would be worse on tick-discrete prices, where it drives sigma to 0.)
    """
    z = np.abs(r) / np.sqrt(dt)
    prod = z[1:] * z[:-1]
    sigma = math.sqrt(math.pi / 2 * float(np.mean(prod)))
    jump = z > k * sigma
    keep = ~(jump[1:] | jump[:-1])
    if sigma > 0 and keep.any():
        sigma = math.sqrt(math.pi / 2 * float(np.mean(prod[keep])))
        jump = z > k * sigma
    return sigma, jump


def _mean_rate_se(r: np.ndarray, dt: np.ndarray) -> float:
    """Standard error of the mean log-return rate ``sum(r) / sum(dt)`` (per year) for
    independent returns of variance proportional to their interval, jumps included: the
    variance of the whole is ``sum((r - m dt)^2) / sum(dt)^2``."""
    T = float(dt.sum())
    e = r - float(r.sum()) / T * dt
    return math.sqrt(float(np.sum(e * e))) / T


def _normal_loglik(e: np.ndarray, var: np.ndarray) -> float:
    return float(-0.5 * np.sum(_LOG_2PI + np.log(var) + e * e / var))


class _PriceProcess:
    """Shared by the three models: parameters, repr, the grid and simulation."""

    _params: tuple[str, ...] = ()
    loglik: float | None = None
    n_obs: int | None = None
    mu_se: float | None = None

    @property
    def params(self) -> dict[str, float]:
        """The parameters by name (units: see the module's docstring)."""
        return {k: getattr(self, k) for k in self._params}

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={getattr(self, k):.6g}" for k in self._params)
        if self.loglik is not None:
            body += f", mu_se={self.mu_se:.6g}, loglik={self.loglik:.6g}, n_obs={self.n_obs}"
            n_jumps = getattr(self, "n_jumps", None)
            if n_jumps is not None:
                body += f", n_jumps={n_jumps}"
        return f"{type(self).__name__}({body})"

    def jump_drift(self) -> float:
        """Expected growth of the price per year that the jumps bring, ``rate * (E[e^J] - 1)``
        (0 without jumps)."""
        return 0.0

    def drift_for(self, drift: Any = None) -> float:
        """The diffusion's ``mu`` (per year) a simulation uses: for ``None`` the one that makes
        the price a martingale (``-``:meth:`jump_drift`: the jumps' mean is compensated), for
        ``"model"`` the model's own ``mu``, for a number the one that makes the price's
        expected growth that number per year, jumps included.  Warns
        (:class:`~lobfast.LobWarning`) when asked for a fitted drift within two standard
        errors of 0."""
        if drift is None:
            return -self.jump_drift()
        if isinstance(drift, str):
            if drift != "model":
                raise ValueError(f'drift must be None, a number (per year) or "model", not {drift!r}')
            value = self.mu  # type: ignore[attr-defined]
        else:
            value = _finite("drift", drift)
        se = self.mu_se
        if value != 0 and value == self.mu and se is not None and not abs(value) >= 2 * se:  # type: ignore[attr-defined]
            warnings.warn(
                f"simulating with the fitted drift mu={value:.4g}/yr, which is not significant (standard error "
                f"{se:.4g}/yr, |t| = {abs(value) / se if se > 0 else 0:.2f} < 2): it is noise, not a trend; "
                "leave drift=None to simulate without one",
                LobWarning,
                stacklevel=3,
            )
        return value if isinstance(drift, str) else value - self.jump_drift()

    def simulate(
        self,
        duration: Any,
        *,
        seed: Any = 0,
        dt: Any = "100ms",
        s0: float = 100.0,
        start: Any = 0,
        drift: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """A price path on the grid ``start, start + dt, ...`` covering ``duration``.

        Returns ``(ts, price)``: int64 ns and float64, ``floor(duration / dt) + 1`` rows, the
        first price being ``s0``.  ``seed`` feeds ``numpy.random.default_rng`` (an int, a
        SeedSequence or a Generator): the same seed gives the same path.  A jump is applied
        at the end of the grid step that contains it.

        ``drift``: ``None`` (default) simulates a martingale price, whatever the model's ``mu``
        and its jumps' mean (the diffusion's drift compensates the jumps: see
        :meth:`drift_for`); a number is the price's expected growth per year, ``"model"`` the
        model's own ``mu`` with the jumps on top (a fitted drift that is not significant
        warns, see the module's docstring).
        """
        mu = self.drift_for(drift)
        duration_ns = parse_duration(duration, "duration")
        step_ns = parse_duration(dt, "dt")
        n = duration_ns // step_ns
        if n < 1:
            raise ValueError(f"duration ({duration_ns} ns) is shorter than one step dt ({step_ns} ns)")
        t0 = to_ns(start)
        if not -(2**63) <= t0 <= 2**63 - 1 - n * step_ns:
            raise ValueError(f"start={start!r} plus the duration does not fit int64 ns")
        s0 = _finite("s0", s0, 0.0, strict=True)
        rng = np.random.default_rng(seed)
        r = self._log_returns(rng, int(n), step_ns, mu)
        ts = t0 + step_ns * np.arange(n + 1, dtype=np.int64)
        logp = np.empty(n + 1)
        logp[0] = 0.0
        np.cumsum(r, out=logp[1:])
        return ts, s0 * np.exp(logp)

    def _diffusion(self, rng: np.random.Generator, n: int, step_ns: int, mu: float) -> np.ndarray:
        h = step_ns / _YEAR_NS
        sigma = self.sigma  # type: ignore[attr-defined]
        return (mu - 0.5 * sigma * sigma) * h + sigma * math.sqrt(h) * rng.standard_normal(n)

    def _log_returns(self, rng: np.random.Generator, n: int, step_ns: int, mu: float) -> np.ndarray:
        raise NotImplementedError


class GBM(_PriceProcess):
    """Geometric Brownian motion: ``dS / S = mu dt + sigma dW``.

    ``mu`` (drift) and ``sigma`` (volatility) are per year of 365 days.
    """

    _params = ("mu", "sigma")

    def __init__(self, mu: float = 0.0, sigma: float | None = None):
        if sigma is None:
            raise TypeError("GBM() needs sigma (annualised volatility, e.g. GBM(sigma=0.6))")
        self.mu = _finite("mu", mu)
        self.sigma = _finite("sigma", sigma, 0.0)

    @classmethod
    def fit(cls, ts: Any, mid: Any) -> GBM:
        """The exact maximum-likelihood fit to a price series, regular or not.

        Each log return r_i over dt_i is N(m dt_i, sigma^2 dt_i), m = mu - sigma^2 / 2, so
        m = sum(r) / sum(dt) and sigma^2 = mean((r_i - m dt_i)^2 / dt_i) in closed form.
        ``ts``: int64 ns (or datetime64), strictly increasing; ``mid``: positive prices.
        """
        r, dt = _returns(ts, mid)
        m = float(r.sum() / dt.sum())
        e = r - m * dt
        s2 = float(np.mean(e * e / dt))
        if not s2 > 0:
            raise ValueError("the price never moves off its drift: sigma would be 0")
        out = cls(m + 0.5 * s2, math.sqrt(s2))
        out.mu_se = math.sqrt(s2 / float(dt.sum()))  # of m = sum(r) / sum(dt), var s2 / sum(dt)
        out.loglik = _normal_loglik(e, s2 * dt)
        out.n_obs = len(r)
        return out

    def _log_returns(self, rng: np.random.Generator, n: int, step_ns: int, mu: float) -> np.ndarray:
        return self._diffusion(rng, n, step_ns, mu)


def _poisson_cutoff(lam: float, eps: float = 1e-13) -> int:
    """A K with P(N > K) < eps for N ~ Poisson(lam), where the sum is cut: the first K from
    floor(lam) up whose tail bound P(N > K) <= p(K + 1) / (1 - lam / (K + 2)) (the tail's
    terms fall at least geometrically) is below eps."""
    if lam <= 0:
        return 0
    log_lam, log_eps = math.log(lam), math.log(eps)
    k = int(lam)
    while True:
        ratio = lam / (k + 2)
        if ratio < 1 and (k + 1) * log_lam - lam - math.lgamma(k + 2) - math.log1p(-ratio) < log_eps:
            return k
        k += 1


class _MertonObjective:
    """Negative mean log-likelihood of Merton's model and its gradient, in scaled units.

    Returns z (log returns / c) over intervals d (in units of the median interval): z_i has
    density sum_k Poisson(k; lam d_i) N(m d_i + k jm, s^2 d_i + k js^2), the sum cut where
    the Poisson tail is below 1e-13.  The intervals are grouped by powers of two so that a
    few long gaps do not make every row carry their long sum; a group of equal intervals
    (a regular grid) keeps d as a scalar, so the variances are per k, not per return.
    """

    def __init__(self, z: np.ndarray, d: np.ndarray):
        level = np.floor(np.log2(d / d.min())).astype(np.int64)
        self.groups: list[tuple[np.ndarray, np.ndarray | float, float]] = []
        for lv in np.unique(level):
            idx = np.flatnonzero(level == lv)
            dg = d[idx]
            dmax = float(dg.max())
            self.groups.append((z[idx], dmax if dg.min() == dmax else dg, dmax))
        self.n = len(z)

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        m, s, lam, jm, js = (float(x) for x in theta)
        f, g = 0.0, np.zeros(5)
        for z, d, dmax in self.groups:
            K = _poisson_cutoff(lam * dmax)
            k = np.arange(K + 1, dtype=np.float64)[:, None]
            log_fact = np.array([math.lgamma(i + 1) for i in range(K + 1)])[:, None]
            ld = lam * d
            inv_v = 1 / (s * s * d + k * (js * js))
            e = (z - m * d) - k * jm
            e_v = e * inv_v
            q = e * e_v
            L = (k * np.log(ld) - ld - log_fact + 0.5 * np.log(inv_v)) - 0.5 * q
            top = L.max(axis=0)
            w = np.exp(L - top)
            total = w.sum(axis=0)
            f -= float(np.sum(top) + np.sum(np.log(total))) - 0.5 * _LOG_2PI * len(z)
            w *= 1 / total  # posterior weight of k jumps, per return
            de = w * e_v  # w dlogN/da
            dv = (0.5 * w * inv_v) * (q - 1)  # w dlogN/dv
            kk = k[:, 0]
            g[2] -= float(kk @ w.sum(axis=1)) / lam - float(np.sum(d) if isinstance(d, np.ndarray) else d * len(z))
            g[3] -= float(kk @ de.sum(axis=1))
            g[4] -= 2 * js * float(kk @ dv.sum(axis=1))
            if isinstance(d, np.ndarray):
                g[0] -= float(de.sum(axis=0) @ d)
                g[1] -= 2 * s * float(dv.sum(axis=0) @ d)
            else:
                g[0] -= float(de.sum()) * d
                g[1] -= 2 * s * float(dv.sum()) * d
        return f / self.n, g / self.n


class Merton(_PriceProcess):
    """Merton's jump diffusion: GBM plus jumps arriving as a Poisson process.

    ``mu``, ``sigma``: per year of 365 days; ``lam``: jumps per year; each jump adds
    N(``jump_mean``, ``jump_std``^2) to the log price.
    """

    _params = ("mu", "sigma", "lam", "jump_mean", "jump_std")

    def __init__(self, mu: float, sigma: float, lam: float, jump_mean: float, jump_std: float):
        self.mu = _finite("mu", mu)
        self.sigma = _finite("sigma", sigma, 0.0)
        self.lam = _finite("lam", lam, 0.0)
        self.jump_mean = _finite("jump_mean", jump_mean)
        self.jump_std = _finite("jump_std", jump_std, 0.0)

    @classmethod
    def fit(cls, ts: Any, mid: Any) -> Merton:
        """Maximum likelihood of the log returns' Poisson mixture of normals.

        Each return over dt has density sum_k P(k jumps; lam dt) N(m dt + k jump_mean,
        sigma^2 dt + k jump_std^2), m = mu - sigma^2 / 2, the sum cut where the Poisson
        tail is below 1e-13.  The analytic gradient drives L-BFGS-B (with bounds) from up to
        four starting points, the best optimum being polished and kept: a threshold split of
        the returns into diffusion and jumps (as :meth:`HawkesJumpDiffusion.fit` does, when it
        finds two or more jumps), and three mixtures from rare-large to frequent-small jumps.
        Memory: a few float64 arrays of (K + 1) x n, K the truncation (about 5 when jumps
        are rare per interval).  Irregular spacing is handled exactly.
        """
        _optimize()  # fail early without SciPy
        r, dt = _returns(ts, mid)
        tau = float(np.median(dt))
        d = dt / tau
        c = float(np.std(r / np.sqrt(d)))
        if not c > 0:
            raise ValueError("the price never moves off its drift: nothing to fit")
        z = r / c
        objective = _MertonObjective(z, d)
        m0 = float(z.sum() / d.sum())
        # a threshold split: bipower sigma, returns beyond 4 sigma as jumps
        s_bp, jumps = _split_jumps(z - m0 * d, d, 4.0)
        s_bp = max(s_bp, 0.05)
        starts = [(m0, 0.9, 1e-3, 0.0, 3.0), (m0, 0.6, 0.05, 0.0, 2.5), (m0, 0.3, 0.2, 0.0, 2.0)]
        if jumps.sum() >= 2:
            zj = z[jumps]
            js0 = math.sqrt(max(float(np.var(zj)) - s_bp**2, s_bp**2))
            starts.insert(0, (m0, s_bp, float(jumps.sum() / d.sum()), float(zj.mean()), js0))
        bounds = [(-5.0, 5.0), (1e-4, 10.0), (1e-8, 5.0), (-50.0, 50.0), (1e-4, 100.0)]
        best = _multistart(objective, starts, bounds, "Merton")
        m, s, lam, jm, js = (float(x) for x in best.x)
        sigma = s * c / math.sqrt(tau)
        out = cls(m * c / tau + 0.5 * sigma * sigma, sigma, lam / tau, jm * c, js * c)
        out.loglik = float(-best.fun * len(z) - len(z) * math.log(c))
        out.n_obs = len(z)
        out.mu_se = _mean_rate_se(r, dt)
        return out

    def jump_drift(self) -> float:
        return self.lam * math.expm1(self.jump_mean + 0.5 * self.jump_std**2)

    def _log_returns(self, rng: np.random.Generator, n: int, step_ns: int, mu: float) -> np.ndarray:
        r = self._diffusion(rng, n, step_ns, mu)
        count = rng.poisson(self.lam * step_ns / _YEAR_NS, n)
        size = rng.standard_normal(n)
        return r + count * self.jump_mean + np.sqrt(count) * self.jump_std * size


def _fit_hawkes_seconds(t: np.ndarray, T: float) -> tuple[float, float, float, float]:
    """(baseline, alpha, beta, loglik) maximising the Hawkes likelihood of sorted times t
    (seconds) on [0, T]: L-BFGS-B over (log baseline, alpha, log beta), nine starts."""
    n = len(t)
    rate = n / T
    gaps = np.diff(t)
    gaps = gaps[gaps > 0]
    min_gap = float(gaps.min()) if len(gaps) else T / n

    def objective(y: np.ndarray) -> tuple[float, np.ndarray]:
        mu, alpha, beta = math.exp(y[0]), float(y[1]), math.exp(y[2])
        ll, g = _core.hawkes_loglik(t, 0.0, T, mu, alpha, beta)
        return -ll / n, -np.array([g[0] * mu, g[1], g[2] * beta]) / n

    # beta from a kernel lasting 100 windows to one far shorter than the closest events
    bounds = [
        (math.log(rate * 1e-6), math.log(rate * 10)),
        (0.0, 0.9999),
        (math.log(0.01 / T), math.log(1e3 / min_gap)),
    ]
    starts = [
        (math.log(rate * (1 - alpha0)), alpha0, math.log(rate * beta_rate))
        for alpha0 in (0.2, 0.5, 0.8)
        for beta_rate in (0.3, 3.0, 30.0)
    ]
    best = _multistart(objective, starts, bounds, "Hawkes")
    return math.exp(best.x[0]), float(best.x[1]), math.exp(best.x[2]), float(-best.fun * n)


def fit_hawkes(times_ns: Any, T_start: Any, T_end: Any) -> tuple[float, float, float]:
    """Exact maximum-likelihood fit of an exponential-kernel Hawkes process.

    ``times_ns``: event times, int64 ns (or datetime64), sorted, inside the observation
    window ``[T_start, T_end]`` (times as :func:`lobfast.to_ns` reads them); no
    events are assumed before ``T_start``.  Returns ``(baseline, alpha, beta)``: baseline
    intensity in events per second, branching ratio (in [0, 0.9999]) and kernel decay rate
    per second, for the intensity baseline + sum alpha beta exp(-beta (t - t_i)).  At least
    10 events are needed.
    """
    baseline, alpha, beta, _ = _fit_hawkes_ns(_times_ns(times_ns, "times_ns"), to_ns(T_start), to_ns(T_end))
    return baseline, alpha, beta


def _fit_hawkes_ns(t: np.ndarray, t0: int, t1: int) -> tuple[float, float, float, float]:
    if not t1 > t0:
        raise ValueError(f"the window must have T_end > T_start, got [{t0}, {t1}]")
    bad = np.flatnonzero((t < t0) | (t > t1))
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"event {i} at {t[i]} ns lies outside the window [{t0}, {t1}]")
    bad = np.flatnonzero(np.diff(t) < 0)
    if len(bad):
        i = int(bad[0]) + 1
        raise ValueError(f"times_ns must be sorted: event {i} ({t[i]}) is earlier than event {i - 1} ({t[i - 1]})")
    if len(t) < _MIN_EVENTS:
        raise ValueError(f"{len(t)} events are too few to fit a Hawkes process; at least {_MIN_EVENTS} are needed")
    # differences in int64 first: epoch ns as float64 would keep only ~0.2 us
    return _fit_hawkes_seconds((t - t0) / 1e9, (t1 - t0) / 1e9)


class HawkesJumpDiffusion(_PriceProcess):
    """A jump diffusion whose jumps arrive as a self-exciting Hawkes process.

    The jump intensity is ``baseline + sum_{t_i < t} alpha * beta * exp(-beta (t - t_i))``
    over past jump times t_i: ``baseline`` in jumps per second, ``alpha`` the branching
    ratio (< 1), ``beta`` the decay rate per second (an excitation halves in ln 2 / beta
    seconds).  ``mu``, ``sigma``: per year of 365 days; jumps add N(``jump_mean``,
    ``jump_std``^2) to the log price.  Simulated paths start with no excitation.
    """

    _params = ("mu", "sigma", "baseline", "alpha", "beta", "jump_mean", "jump_std")
    n_jumps: int | None = None
    hawkes_loglik: float | None = None

    def __init__(
        self,
        mu: float,
        sigma: float,
        baseline: float,
        alpha: float,
        beta: float,
        jump_mean: float,
        jump_std: float,
    ):
        self.mu = _finite("mu", mu)
        self.sigma = _finite("sigma", sigma, 0.0)
        self.baseline = _finite("baseline", baseline, 0.0, strict=True)
        self.alpha = _finite("alpha", alpha, 0.0)
        if not self.alpha < 1:
            raise ValueError(
                f"alpha (the branching ratio) must be < 1 for a stationary process, got {alpha!r}: "
                "each jump would trigger on average at least one more"
            )
        self.beta = _finite("beta", beta, 0.0, strict=True)
        self.jump_mean = _finite("jump_mean", jump_mean)
        self.jump_std = _finite("jump_std", jump_std, 0.0)

    @classmethod
    def fit(cls, ts: Any, mid: Any, *, k: float = 4.0) -> HawkesJumpDiffusion:
        """A two-step estimator (not a joint maximum likelihood, which discrete sampling makes
        intractable).

        1. Diffusion and jumps: sigma from bipower variation (two passes, the second without
           the products next to the returns the first flags); a return r over dt is a jump
           when ``|r| > k sigma sqrt(dt)``.  The jumps' mean gives ``jump_mean``, their
           variance less the diffusion's share (sigma^2 dt) gives ``jump_std``; the other
           returns give the drift.  Jumps smaller than the threshold count as diffusion, and
           diffusion moves beyond it (about 6e-5 of returns for k = 4) as jumps.
        2. The jump times (the end of each jump's interval) are fitted as a Hawkes process
           on [ts[0], ts[-1]] by exact maximum likelihood (:func:`fit_hawkes`).

        ``loglik`` is the sum of the two steps' log-likelihoods: the returns given the split
        (normal, with the jump variance added on jump intervals) and the Hawkes likelihood of
        the jump times in seconds (also in ``hawkes_loglik``).  It is not comparable with
        GBM's or Merton's.  ``n_jumps``: returns classified as jumps (at least 10 needed).
        """
        k = _finite("k", k, 0.0, strict=True)
        t = _times_ns(ts, "ts")
        r, dt = _returns(t, mid)
        sigma, jump = _split_jumps(r, dt, k)
        if not sigma > 0:
            raise ValueError(
                "bipower variation is zero: the price never moves in two consecutive intervals; sample it more coarsely"
            )
        n_jumps = int(jump.sum())
        if n_jumps < _MIN_EVENTS:
            raise ValueError(
                f"only {n_jumps} returns exceed k sigma sqrt(dt) (k={k:g}): too few jumps to fit a Hawkes "
                "process; lower k or fit a longer series"
            )
        rj = r[jump]
        jump_mean = float(rj.mean())
        jump_std = math.sqrt(max(float(np.var(rj, ddof=1)) - sigma * sigma * float(dt[jump].mean()), 0.0))
        m = float(r[~jump].sum() / dt.sum())
        baseline, alpha, beta, hll = _fit_hawkes_ns(t[1:][jump], int(t[0]), int(t[-1]))
        out = cls(m + 0.5 * sigma * sigma, sigma, baseline, alpha, beta, jump_mean, jump_std)
        var = sigma * sigma * dt + np.where(jump, jump_std * jump_std, 0.0)
        e = r - m * dt - np.where(jump, jump_mean, 0.0)
        out.hawkes_loglik = hll
        out.mu_se = sigma / math.sqrt(float(dt.sum()))  # of m, the diffusion returns' sum over the span
        out.loglik = _normal_loglik(e, var) + hll
        out.n_obs = len(r)
        out.n_jumps = n_jumps
        return out

    def jump_drift(self) -> float:
        rate = self.baseline / (1.0 - self.alpha) * YEAR_S  # stationary jumps per year
        return rate * math.expm1(self.jump_mean + 0.5 * self.jump_std**2)

    def _log_returns(self, rng: np.random.Generator, n: int, step_ns: int, mu: float) -> np.ndarray:
        c_seed = int(rng.integers(0, 2**63))
        r = self._diffusion(rng, n, step_ns, mu)
        step_s = step_ns / 1e9
        times = _core.hawkes_simulate(self.baseline, self.alpha, self.beta, 0.0, n * step_s, c_seed)
        # the step (j dt, (j + 1) dt] holds the jump at t: j = ceil(t / dt) - 1
        at = np.clip(np.ceil(times / step_s).astype(np.int64) - 1, 0, n - 1)
        size = self.jump_mean + self.jump_std * rng.standard_normal(len(times))
        return r + np.bincount(at, weights=size, minlength=n)
