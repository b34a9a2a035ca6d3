"""Generative baselines for mid-price returns: :class:`ARMLP` and :class:`QuantGAN`.

Both are trained on a recording's mid log-returns on a time grid (``every``) and sample
price paths with the price processes' signature, ``.sample(duration, *, seed, dt, s0,
start) -> (ts, price)`` (also as ``.simulate``), so :func:`lobfast.sim.simulate` follows them
(``simulate(price=model, flow=flow)``) and :func:`lobfast.sim.path_facts` measures them like
any other path.

* :class:`ARMLP`: an autoregressive multilayer perceptron (3 hidden layers, 256/128/64 units).
  Inputs: the last ``lags`` returns and book features (level-1 size imbalance, spread in
  bps) at the time of the prediction; output: the distribution of the next return, a
  mixture of an atom at exactly zero and ``components`` normals.  Sampling feeds its own
  returns back, with the book features replayed in blocks of recorded rows.
* :class:`QuantGAN`: a temporal convolutional network (dilated causal convolutions, skip
  connections) turns Gaussian noise into returns; a second one judges windows of returns.
  Returns go through the Quant GAN preprocessing (standardise, inverse Lambert W transform
  with the tail parameter from IGMM, standardise again) and training is WGAN-GP.

Times are int64 ns.  Training is deterministic from ``seed`` on the CPU (weights, batches and
noise come from that seed alone; the caller's global torch generator is left as it was):
two fits with the same data and seed give identical models, and two samples with the same
seed identical paths.  PyTorch is an optional dependency (``pip install 'lobfast[torch]'``);
``import lobfast.sim`` does not load it.

On the bundled recordings (``benchmarks/bench_generators.py``, ``benchmarks/RESULTS.md``) the
ARMLP keeps the zero share, scale and fat tails of 100 ms returns but not all of their
clustering, and carries the recording's drift; the Quant GAN, whose continuous generator
cannot produce the atom at zero, collapses towards it and drifts.

Examples
--------
>>> import lobfast
>>> from lobfast import datasets
>>> from lobfast.sim.generators import ARMLP
>>> md = lobfast.read_binance(datasets.path("spot_btcusdt_20240808"))
>>> model = ARMLP(lags=10, hidden=(32, 16)).fit(md, every="100ms", epochs=2, seed=0)
>>> ts, price = model.sample("1min", seed=1, s0=60000.0)
>>> len(ts), price[0]
(601, np.float64(60000.0))
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np

try:
    import torch
    from torch import nn
    from torch.nn import functional as F
except ImportError as e:  # pragma: no cover - exercised only without torch
    raise ImportError("lobfast.sim.generators needs PyTorch: pip install 'lobfast[torch]'") from e

from ..book import reconstruct
from ..containers import BookSnapshots, MarketData
from ..times import parse_duration, to_ns

__all__ = ["ARMLP", "FEATURES", "QuantGAN", "lambert_w"]

FEATURES = ("imbalance", "spread")
"""Book features :class:`ARMLP` knows: level-1 size imbalance ``(bid - ask) / (bid + ask)``
and the spread in bps of the mid."""
_MIN_SAMPLES = 50
_LOG_2PI = math.log(2 * math.pi)


# ------------------------------------------------------------------------ the data
def _grid_series(data: Any, every_ns: int, features: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(grid times, log mid, features (n, F)) on the grid ``every_ns``: the last row at or
    before each grid time; NaN where that row is not a valid book."""
    if hasattr(data, "market_data") and callable(data.market_data):  # a SimMarket
        data = data.market_data()
    if isinstance(data, MarketData):
        if not len(data.depth):
            raise ValueError("the MarketData holds no depth: no mid to train on")
        data = reconstruct(data.depth, levels=1, every=every_ns)
    if isinstance(data, BookSnapshots):
        ts = np.asarray(data.ts, np.int64)
        ok = np.asarray(data.valid, bool)
        bid, ask = data.bid_px[:, 0], data.ask_px[:, 0]
        bq, aq = data.bid_sz[:, 0], data.ask_sz[:, 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            ok = ok & np.isfinite(bid) & np.isfinite(ask) & (bid > 0) & (ask >= bid)
            mid = np.where(ok, 0.5 * (bid + ask), np.nan)
            cols = {"imbalance": (bq - aq) / (bq + aq), "spread": (ask - bid) / mid * 1e4}
        feats = np.column_stack([np.where(ok, cols[f], np.nan) for f in features]) if features else None
    elif isinstance(data, tuple) and len(data) == 2:
        if features:
            raise ValueError(
                f"a (ts, mid) pair has no book: train with features=() or give MarketData/BookSnapshots for {features}"
            )
        ts = np.asarray(data[0])
        if ts.dtype.kind == "M":
            ts = ts.astype("datetime64[ns]").view(np.int64)
        if ts.dtype.kind not in "iu" or ts.ndim != 1:
            raise TypeError(f"ts must be 1-D int64 ns or datetime64, got dtype {ts.dtype} shape {ts.shape}")
        ts = ts.astype(np.int64, copy=False)
        mid = np.asarray(data[1], np.float64)
        if mid.shape != ts.shape:
            raise ValueError(f"mid must have one price per ts ({len(ts)}), got shape {mid.shape}")
        bad = np.flatnonzero(~(np.isfinite(mid) & (mid > 0)))
        if len(bad):
            raise ValueError(f"mid must be finite and > 0: row {int(bad[0])} is {float(mid[bad[0]])!r}")
        feats = None
    else:
        raise TypeError(
            f"train on MarketData, a SimMarket, BookSnapshots or a (ts, mid) pair, not {type(data).__name__}"
        )
    if len(ts) == 0:
        raise ValueError("no rows to train on")
    bad = np.flatnonzero(np.diff(ts) < 0)
    if len(bad):
        i = int(bad[0]) + 1
        raise ValueError(f"ts must be sorted: row {i} ({ts[i]}) is before row {i - 1} ({ts[i - 1]})")
    t0 = -(-int(ts[0]) // every_ns) * every_ns
    grid = np.arange(t0, int(ts[-1]) + 1, every_ns, dtype=np.int64)
    idx = np.searchsorted(ts, grid, side="right") - 1
    logmid = np.log(mid[idx])
    f = np.empty((len(grid), 0)) if feats is None else feats[idx]
    return grid, logmid, f


def _returns_of(data: Any, every: Any, features: tuple[str, ...]) -> tuple[int, np.ndarray, np.ndarray]:
    every_ns = parse_duration(every, "every")
    _, logmid, feats = _grid_series(data, every_ns, features)
    r = np.diff(logmid)  # NaN where either end is not a valid book
    return every_ns, r, feats[:-1]  # the book when the return starts


def _seed_int(seed: Any, what: str = "seed") -> int:
    """An int seed for torch from an int, a SeedSequence or a numpy Generator."""
    if isinstance(seed, bool):
        raise ValueError(f"{what} must be an int >= 0, a SeedSequence or a numpy Generator, not {seed!r}")
    if isinstance(seed, (int, np.integer)):
        if seed < 0:
            raise ValueError(f"{what} must be an int >= 0, not {seed!r}")
        return int(seed)
    return int(np.random.default_rng(seed).integers(0, 2**63))


@contextlib.contextmanager
def _seeded(seed: int, threads: int | None):
    """Torch's global generator seeded for the block and put back after it (weights are
    initialised from it), deterministic algorithms on, ``threads`` intra-op threads (None:
    as they are); a local generator for the rest."""
    was = torch.are_deterministic_algorithms_enabled()
    was_threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            yield torch.Generator().manual_seed(seed)
        finally:
            torch.use_deterministic_algorithms(was)
            torch.set_num_threads(was_threads)


def _threads(value: Any) -> int | None:
    return None if value is None else _positive_int(value, "threads")


def _bar(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with the torch extra
        return None
    return tqdm(total=total, desc=desc, leave=False, unit="epoch")


def _positive_int(value: Any, name: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, not {value!r}")
    return int(value)


def _positive_float(value: Any, name: str) -> float:
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be finite and > 0, not {value!r}")
    return v


class _Generator:
    """What both generators share: the fitted check and sampling onto a ``dt`` grid."""

    every_ns: int | None = None

    def _check_fitted(self) -> None:
        if self.every_ns is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call .fit(data) first")

    def sample(
        self, duration: Any, *, seed: Any = 0, dt: Any = None, s0: float = 100.0, start: Any = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """A price path on the grid ``start, start + dt, ...`` covering ``duration``.

        Returns ``(ts, price)``: int64 ns and float64, ``floor(duration / dt) + 1`` rows, the
        first price being ``s0``.  The model generates returns on its training grid
        (``every``, the default ``dt``); the price at each ``dt`` grid time is the one in effect
        then (the last ``every`` step at or before it).  ``seed`` (an int, a SeedSequence or a
        numpy Generator) gives the same path every time.
        """
        self._check_fitted()
        duration_ns = parse_duration(duration, "duration")
        step_ns = self.every_ns if dt is None else parse_duration(dt, "dt")
        n = duration_ns // step_ns
        if n < 1:
            raise ValueError(f"duration ({duration_ns} ns) is shorter than one step dt ({step_ns} ns)")
        t0 = to_ns(start)
        if not -(2**63) <= t0 <= 2**63 - 1 - n * step_ns:
            raise ValueError(f"start={start!r} plus the duration does not fit int64 ns")
        s0 = float(s0)
        if not (math.isfinite(s0) and s0 > 0):
            raise ValueError(f"s0 must be finite and > 0, got {s0!r}")
        offsets = step_ns * np.arange(n + 1, dtype=np.int64)
        at = offsets // self.every_ns  # the model's step in effect at each grid time
        m = int(at[-1])
        logp = np.zeros(m + 1)
        if m:
            np.cumsum(self._log_returns(seed, m), out=logp[1:])
        return t0 + offsets, s0 * np.exp(logp[at])

    simulate = sample

    def _log_returns(self, seed: Any, n: int) -> np.ndarray:
        raise NotImplementedError


# ------------------------------------------------------------------------ AR-MLP
class ARMLP(_Generator):
    """An autoregressive MLP: lagged returns and book features -> the next return's distribution.

    The network (``hidden`` = 256/128/64 ReLU layers) maps the last ``lags`` returns on the
    training grid (divided by their standard deviation) and the book ``features`` at the time
    of the prediction (standardised) to a mixture: an atom at exactly zero (``zero_atom``) and
    ``components`` normals (means and log-scales).  Why a mixture: a tick-discrete mid on a
    fine grid does not move in most steps (about 90 % of the bundled recordings' 100 ms
    returns are exactly zero), which a normal or a Student-t density cannot put mass on, and
    the moves are fat-tailed; a network predicting only the next return (squared error)
    would sample nothing but its mean.  Training maximises the likelihood (the atom's
    probability for zero returns, the normals' density otherwise) with Adam.

    Sampling starts from a history of zero returns, runs ``burn_in`` steps that are dropped,
    and feeds each drawn return back as the newest lag, clipped to the range of the training
    returns (a draw from the tails fed back unbounded can start a feedback that blows the
    path up; ``z_range`` holds the bounds, in units of ``scale``).  The model has no book to
    read its features from while sampling; ``book`` says where they come from:

    * ``"blocks"`` (default): a block bootstrap of the training rows: runs of ``block``
      consecutive rows from random starts (wrapping around at the end), so the book's states,
      their mix and their persistence (a wide spread lasting a while) are those recorded.
      They do not react to the drawn returns (a move does not widen the spread).
    * ``"mean"``: held at their training mean, so clustering can only come from the lagged
      returns.  A poor summary of a skewed feature: the mean spread is a state the book is
      rarely in, and the moves the network ties to wide spreads mostly vanish.

    Parameters
    ----------
    lags : returns the network sees.
    hidden : hidden layer widths.
    features : book features from :data:`FEATURES` (``()``: returns only; needed for a
        ``(ts, mid)`` pair).
    components : normals in the mixture.
    zero_atom : give exactly-zero returns their own probability.
    lr, batch_size, weight_decay : Adam's learning rate and weight decay, rows per step.
    burn_in : sampled steps dropped before the path starts.
    book, block : the book features while sampling (``"blocks"`` of ``block`` rows, or
        ``"mean"``).
    """

    def __init__(
        self,
        lags: int = 20,
        hidden: tuple[int, ...] = (256, 128, 64),
        features: tuple[str, ...] = FEATURES,
        *,
        components: int = 3,
        zero_atom: bool = True,
        lr: float = 1e-3,
        batch_size: int = 256,
        weight_decay: float = 0.0,
        burn_in: int = 1000,
        book: str = "blocks",
        block: int = 100,
    ):
        self.lags = _positive_int(lags, "lags")
        self.hidden = tuple(_positive_int(h, "hidden width") for h in hidden)
        if isinstance(features, str):
            features = (features,)
        self.features = tuple(features)
        unknown = [f for f in self.features if f not in FEATURES]
        if unknown:
            raise ValueError(f"unknown features {unknown}; known: {', '.join(FEATURES)}")
        self.components = _positive_int(components, "components")
        self.zero_atom = bool(zero_atom)
        self.lr = _positive_float(lr, "lr")
        self.batch_size = _positive_int(batch_size, "batch_size")
        self.weight_decay = float(weight_decay)
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be finite and >= 0, not {weight_decay!r}")
        self.burn_in = _positive_int(burn_in, "burn_in", 0)
        if book not in ("blocks", "mean"):
            raise ValueError(f"book must be 'blocks' or 'mean', not {book!r}")
        self.book = book
        self.block = _positive_int(block, "block")
        self.net: nn.Module | None = None
        self.loss_history: list[float] = []

    def __repr__(self) -> str:
        fitted = "" if self.every_ns is None else f", every={self.every_ns}ns, n_obs={self.n_obs}"
        return (
            f"ARMLP(lags={self.lags}, hidden={self.hidden}, features={self.features}, "
            f"components={self.components}, zero_atom={self.zero_atom}{fitted})"
        )

    @property
    def _n_out(self) -> int:
        return (self.components + self.zero_atom) + 2 * self.components

    def _build(self) -> nn.Module:
        layers: list[nn.Module] = []
        width = self.lags + len(self.features)
        for h in self.hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, self._n_out))
        return nn.Sequential(*layers).double()

    def _design(self, r: np.ndarray, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(inputs, targets) of every step whose lags, features and target are all finite."""
        L = self.lags
        z = r / self.scale
        n = len(z) - L
        if n <= 0:
            raise ValueError(f"{len(z)} returns are fewer than lags + 1 ({L + 1})")
        lagged = np.lib.stride_tricks.sliding_window_view(z, L)[:n]  # oldest to newest
        f = (feats[L : L + n] - self.feature_mean) / self.feature_std  # the book when the target starts
        x = np.concatenate([lagged, f], axis=1)
        y = z[L:]
        keep = np.isfinite(x).all(axis=1) & np.isfinite(y)
        return x[keep], y[keep]

    def _nll(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        K, a = self.components, self.components + self.zero_atom
        logw = torch.log_softmax(out[:, :a], dim=1)
        mean, log_scale = out[:, a : a + K], out[:, a + K :].clamp(-12.0, 6.0)
        e = (y[:, None] - mean) * torch.exp(-log_scale)
        dens = logw[:, -K:] - log_scale - 0.5 * (_LOG_2PI + e * e)
        ll = torch.logsumexp(dens, dim=1)
        if self.zero_atom:
            ll = torch.where(y == 0, logw[:, 0], ll)
        return -ll.mean()

    def fit(
        self,
        data: Any,
        every: Any = "1s",
        *,
        epochs: int = 30,
        seed: Any = 0,
        progress: bool = False,
        threads: int | None = 1,
    ) -> ARMLP:
        """Train on a recording's mid returns on the grid ``every``.

        ``data``: MarketData (its depth reconstructed on the grid), a SimMarket,
        BookSnapshots (the last row at or before each grid time) or a ``(ts, mid)`` pair
        (then ``features=()``).  A step is used when its lags, the features and the next return
        are finite (the book valid at both ends).  ``epochs`` passes over the steps in
        batches shuffled from ``seed``; ``progress`` shows a bar per epoch.  ``threads``: torch's
        intra-op threads while training (put back after; None leaves them): one by default, as
        these networks are too small to gain from more, and one thread sums in the same order
        on any machine, so a seed gives the same model everywhere.  Returns self, with
        ``loss_history`` (the mean negative log-likelihood per epoch, in units of the scaled
        return) and ``n_obs`` (steps trained on).
        """
        epochs = _positive_int(epochs, "epochs")
        threads = _threads(threads)
        every_ns, r, feats = _returns_of(data, every, self.features)
        finite = r[np.isfinite(r)]
        scale = float(finite.std()) if len(finite) > 1 else 0.0
        if not scale > 0:
            raise ValueError("the mid never moves on this grid: nothing to learn")
        self.scale = scale
        fv = feats[np.isfinite(feats).all(axis=1)] if feats.shape[1] else feats
        self.feature_mean = fv.mean(axis=0) if len(fv) else np.zeros(feats.shape[1])
        sd = fv.std(axis=0) if len(fv) else np.ones(feats.shape[1])
        self.feature_std = np.where(sd > 0, sd, 1.0)
        self.feature_rows = (fv - self.feature_mean) / self.feature_std  # standardised, in time order
        x, y = self._design(r, feats)
        if len(y) < _MIN_SAMPLES:
            raise ValueError(f"{len(y)} usable steps are too few to train on; at least {_MIN_SAMPLES} are needed")
        seed = _seed_int(seed)
        X, Y = torch.from_numpy(x), torch.from_numpy(y)
        self.loss_history = []
        with _seeded(seed, threads) as gen:
            net = self._build()
            opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            bar = _bar(epochs, "ARMLP", progress)
            try:
                for _ in range(epochs):
                    order = torch.randperm(len(Y), generator=gen)
                    total = 0.0
                    for i in range(0, len(Y), self.batch_size):
                        b = order[i : i + self.batch_size]
                        loss = self._nll(net(X[b]), Y[b])
                        opt.zero_grad()
                        loss.backward()
                        opt.step()
                        total += float(loss.detach()) * len(b)
                    self.loss_history.append(total / len(Y))
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(nll=f"{self.loss_history[-1]:.4g}")
            finally:
                if bar is not None:
                    bar.close()
        net.eval()
        self.net = net
        self.every_ns, self.n_obs = every_ns, len(Y)
        self.z_range = (float(y.min()), float(y.max()))
        linear = [m for m in net if isinstance(m, nn.Linear)]
        self._weights = [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()) for m in linear]
        return self

    def _log_returns(self, seed: Any, n: int) -> np.ndarray:
        """``n`` returns drawn step by step (the network evaluated in NumPy: one row at a time
        is faster there), each fed back as the newest lag."""
        rng = np.random.default_rng(seed)
        K, a, L = self.components, self.components + self.zero_atom, self.lags
        total = n + self.burn_in
        u = rng.random(total)
        g = rng.standard_normal(total)
        hist = np.zeros(L + total)
        x = np.zeros(L + len(self.features))  # features at their training mean: 0
        feats = self._sampled_features(rng, total)
        layers = self._weights
        lo, hi = self.z_range
        last = len(layers) - 1
        for t in range(total):
            x[:L] = hist[t : t + L]
            if feats is not None:
                x[L:] = feats[t]
            h = x
            for j, (w, b) in enumerate(layers):
                h = h @ w + b
                if j < last:
                    np.maximum(h, 0.0, out=h)
            logits = h[:a]
            p = np.exp(logits - logits.max())
            c = int(np.searchsorted(np.cumsum(p), u[t] * p.sum(), side="right"))
            c = min(c, a - 1)
            if self.zero_atom and c == 0:
                z = 0.0
            else:
                k = c - (a - K)
                z = h[a + k] + math.exp(min(max(h[a + K + k], -12.0), 6.0)) * g[t]
            hist[L + t] = min(max(z, lo), hi)
        return hist[L + self.burn_in :] * self.scale

    def _sampled_features(self, rng: np.random.Generator, total: int) -> np.ndarray | None:
        """``total`` rows of standardised features by block bootstrap, or None (held at the mean)."""
        rows = self.feature_rows
        if self.book == "mean" or not len(self.features) or not len(rows):
            return None
        B = self.block
        starts = rng.integers(0, len(rows), -(-total // B))
        idx = (starts[:, None] + np.arange(B)[None, :]).ravel()[:total] % len(rows)
        return rows[idx]


# ------------------------------------------------------------------------ Quant GAN
def lambert_w(x: np.ndarray) -> np.ndarray:
    """The principal branch of Lambert's W for ``x >= 0`` (``w exp(w) = x``), by Halley's
    iteration from ``log1p(x)`` to machine precision."""
    x = np.asarray(x, np.float64)
    if np.any(x < 0):
        raise ValueError("lambert_w is implemented for x >= 0 only")
    w = np.log1p(x)
    for _ in range(100):
        ew = np.exp(w)
        f = w * ew - x
        step = f / (ew * (w + 1) - (w + 2) * f / (2 * w + 2))
        w = w - step
        if np.all(np.abs(step) <= 1e-15 * (1 + np.abs(w))):
            break
    return w


def _gaussianize(z: np.ndarray, delta: float) -> np.ndarray:
    """The inverse Lambert W x Gaussian transform: u with ``u exp(delta u^2 / 2) = z``."""
    if delta <= 0:
        return z.copy()
    return np.sign(z) * np.sqrt(lambert_w(delta * z * z) / delta)


def _excess_kurtosis(x: np.ndarray) -> float:
    d = x - x.mean()
    m2 = float(np.mean(d * d))
    return float(np.mean(d**4) / (m2 * m2) - 3.0) if m2 > 0 else 0.0


def _tail_delta(z: np.ndarray) -> float:
    """The delta >= 0 whose inverse transform gives ``z`` a normal's kurtosis (excess 0; the
    kurtosis falls as delta grows): 0 when ``z`` is not heavy-tailed, else a root bracketed by
    doubling and found by regula falsi (Illinois), a few transforms in all."""

    def f(d: float) -> float:
        return _excess_kurtosis(_gaussianize(z, d))

    lo, flo = 0.0, f(0.0)
    if flo <= 0:
        return 0.0
    hi, fhi = 1.0, f(1.0)
    while fhi > 0:
        if hi >= 1e6:  # pragma: no cover - no root: a tail no delta tames
            return hi
        lo, flo, hi = hi, fhi, 2 * hi
        fhi = f(hi)
    d, side = hi, 0
    for _ in range(100):
        d = (lo * fhi - hi * flo) / (fhi - flo)
        fd = f(d)
        if abs(fd) < 1e-9 or hi - lo <= 1e-12 * hi:
            break
        if fd > 0:
            lo, flo = d, fd
            if side == 1:
                fhi /= 2
            side = 1
        else:
            hi, fhi = d, fd
            if side == -1:
                flo /= 2
            side = -1
    return d


def _igmm(x: np.ndarray, iterations: int = 20) -> tuple[float, float, float]:
    """(mu, sigma, delta) of Goerg's iterative generalised method of moments for the heavy-tail
    Lambert W x Gaussian model: delta makes the back-transformed data's kurtosis normal, then
    mu and sigma are the mean and standard deviation of the data back-transformed, until
    they settle."""
    mu, sigma, delta = float(x.mean()), float(x.std()), 0.0
    for _ in range(iterations):
        z = (x - mu) / sigma
        delta = _tail_delta(z)
        u = _gaussianize(z, delta)
        mu_new, sigma_new = mu + sigma * float(u.mean()), sigma * float(u.std())
        done = abs(mu_new - mu) <= 1e-9 * sigma and abs(sigma_new - sigma) <= 1e-9 * sigma
        mu, sigma = mu_new, sigma_new
        if done:
            break
    return mu, sigma, delta


class _Block(nn.Module):
    """A temporal block: a causal dilated convolution (kernel 2, no padding: the output is
    ``dilation`` shorter), a 1x1 convolution, PReLUs; a residual path and a skip output."""

    def __init__(self, c_in: int, hidden: int, dilation: int):
        super().__init__()
        self.dilation = dilation
        self.conv = nn.Conv1d(c_in, hidden, 2, dilation=dilation)
        self.mix = nn.Conv1d(hidden, hidden, 1)
        self.act1, self.act2 = nn.PReLU(hidden), nn.PReLU(hidden)
        self.res = nn.Conv1d(c_in, hidden, 1) if c_in != hidden else nn.Identity()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.act2(self.mix(self.act1(self.conv(x))))
        return y + self.res(x[..., self.dilation :]), y


class _TCN(nn.Module):
    """Temporal blocks of growing dilation; the skips of all blocks summed (each cut to the
    last block's length) and mapped to ``c_out`` channels.  Receptive field: 1 + sum(dilations)."""

    def __init__(self, c_in: int, c_out: int, hidden: int, dilations: tuple[int, ...]):
        super().__init__()
        self.blocks = nn.ModuleList(_Block(c_in if i == 0 else hidden, hidden, d) for i, d in enumerate(dilations))
        self.out = nn.Conv1d(hidden, c_out, 1)
        self.receptive_field = 1 + sum(dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1] - self.receptive_field + 1
        total = 0
        for block in self.blocks:
            x, skip = block(x)
            total = total + skip[..., -n:]
        return self.out(F.relu(total))


class QuantGAN(_Generator):
    """A Quant GAN: a temporal convolutional generator of log returns, trained against a
    temporal convolutional discriminator.

    Preprocessing (as in Wiese et al., *Quant GANs*, 2020): the returns are standardised,
    Gaussianised by the inverse Lambert W transform whose tail parameter ``delta`` comes from
    IGMM (kurtosis of the transformed data brought to a normal's), and standardised again;
    the generator learns that series and sampling undoes the three steps.  One departure:
    location, scale and ``delta`` are estimated on the non-zero returns.  A tick-discrete mid
    on a fine grid does not move in most steps, and with that atom at zero no ``delta`` brings
    the kurtosis down to a normal's (IGMM would run ``delta`` off to infinity); the zeros
    still go through the transform (to about zero) and the generator learns them.  The generator maps
    ``noise`` channels of i.i.d. standard normals to returns through dilated causal
    convolutions (kernel 2, dilations ``dilations``, ``hidden`` channels, PReLU, residual and
    skip connections; receptive field 1 + sum(dilations) steps), so paths of any length come
    out of one pass and returns further apart than the receptive field are independent.  The
    discriminator is the same network on one channel of returns, its scores averaged over the
    window.  Loss: WGAN-GP (gradient penalty ``gp``, ``critic`` discriminator steps per
    generator step, Adam with betas (0, 0.9)); windows of ``window`` steps.

    Parameters
    ----------
    noise, hidden, dilations : the generator's noise channels, both networks' channels and
        dilations.
    window : training window in steps (at least the receptive field).
    stride : steps between the starts of an epoch's windows (each epoch starts them at an
        offset drawn from the seed, so every window start is used over the epochs).
    lr, batch_size, critic, gp : optimiser and WGAN-GP settings.
    """

    def __init__(
        self,
        *,
        noise: int = 3,
        hidden: int = 32,
        dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32),
        window: int = 128,
        stride: int = 16,
        lr: float = 2e-4,
        batch_size: int = 64,
        critic: int = 2,
        gp: float = 10.0,
    ):
        self.noise = _positive_int(noise, "noise")
        self.hidden = _positive_int(hidden, "hidden")
        self.dilations = tuple(_positive_int(d, "dilation") for d in dilations)
        if not self.dilations:
            raise ValueError("dilations must name at least one block")
        self.receptive_field = 1 + sum(self.dilations)
        self.window = _positive_int(window, "window")
        if self.window < self.receptive_field:
            raise ValueError(f"window ({self.window}) must be at least the receptive field ({self.receptive_field})")
        self.stride = _positive_int(stride, "stride")
        self.lr = _positive_float(lr, "lr")
        self.batch_size = _positive_int(batch_size, "batch_size")
        self.critic = _positive_int(critic, "critic")
        self.gp = float(gp)
        if not (math.isfinite(self.gp) and self.gp >= 0):
            raise ValueError(f"gp must be finite and >= 0, not {gp!r}")
        self.generator: nn.Module | None = None
        self.loss_history: list[tuple[float, float]] = []

    def __repr__(self) -> str:
        fitted = ""
        if self.every_ns is not None:
            fitted = f", every={self.every_ns}ns, delta={self.delta:.4g}, n_obs={self.n_obs}"
        return (
            f"QuantGAN(noise={self.noise}, hidden={self.hidden}, dilations={self.dilations}, "
            f"window={self.window}{fitted})"
        )

    def preprocess(self, r: np.ndarray) -> np.ndarray:
        """Returns -> the standardised Gaussianised series the generator learns."""
        u = _gaussianize((r - self.mu) / self.sigma, self.delta)
        return (u - self.u_mean) / self.u_std

    def postprocess(self, v: np.ndarray) -> np.ndarray:
        """The generator's output -> log returns (the inverse of :meth:`preprocess`), clipped
        first to the range of the training series (``v_range``): the heavy-tail transform
        ``u exp(delta u^2 / 2)`` turns a value beyond it into an arbitrarily large return."""
        u = np.clip(v, *self.v_range) * self.u_std + self.u_mean
        return self.mu + self.sigma * u * np.exp(0.5 * self.delta * u * u)

    def fit(
        self,
        data: Any,
        every: Any = "1s",
        *,
        epochs: int = 20,
        seed: Any = 0,
        progress: bool = False,
        threads: int | None = 1,
    ) -> QuantGAN:
        """Train on a recording's mid returns on the grid ``every`` (``data`` as for
        :meth:`ARMLP.fit`; no book features).  The training windows are every run of ``window``
        finite returns starting every ``stride`` steps from an offset drawn per epoch; an epoch
        passes over them in batches shuffled from ``seed``; ``progress`` and ``threads`` as for
        :meth:`ARMLP.fit`.  Returns self, with ``loss_history`` ((discriminator, generator) loss per epoch),
        ``delta`` (the Lambert W tail parameter) and ``n_obs`` (returns)."""
        epochs = _positive_int(epochs, "epochs")
        threads = _threads(threads)
        every_ns, r, _ = _returns_of(data, every, ())
        ok = np.isfinite(r)
        finite = r[ok]
        if not (len(finite) > 1 and finite.std() > 0):
            raise ValueError("the mid never moves on this grid: nothing to learn")
        moved = finite[finite != 0]
        if len(moved) < 4:
            raise ValueError(f"the mid moves in only {len(moved)} steps on this grid: too few to learn from")
        self.mu, self.sigma, self.delta = _igmm(moved)
        u = _gaussianize((finite - self.mu) / self.sigma, self.delta)
        self.u_mean, self.u_std = float(u.mean()), float(u.std())
        series = np.full(len(r), np.nan)
        series[ok] = self.preprocess(finite)
        self.v_range = (float(np.nanmin(series)), float(np.nanmax(series)))
        W = self.window
        if len(series) < W:
            raise ValueError(f"{len(series)} returns are fewer than one window ({W})")
        windows = np.lib.stride_tricks.sliding_window_view(series, W)
        usable = np.isfinite(windows).all(axis=1)
        if not usable.any():
            raise ValueError(f"no run of {W} returns with the book valid throughout")
        seed = _seed_int(seed)
        real = torch.from_numpy(np.ascontiguousarray(windows, np.float32))[:, None, :]
        usable = torch.from_numpy(usable)
        S = min(self.stride, len(real))
        self.loss_history = []
        B, RF = self.batch_size, self.receptive_field
        with _seeded(seed, threads) as gen:
            G = _TCN(self.noise, 1, self.hidden, self.dilations)
            D = _TCN(1, 1, self.hidden, self.dilations)
            opt_g = torch.optim.Adam(G.parameters(), lr=self.lr, betas=(0.0, 0.9))
            opt_d = torch.optim.Adam(D.parameters(), lr=self.lr, betas=(0.0, 0.9))
            bar = _bar(epochs, "QuantGAN", progress)
            try:
                for _ in range(epochs):
                    offset = int(torch.randint(S, (1,), generator=gen))
                    starts = torch.arange(offset, len(real), S)
                    starts = starts[usable[starts]]
                    if not len(starts):  # this offset hits only windows with a gap
                        starts = torch.nonzero(usable).flatten()
                    order = starts[torch.randperm(len(starts), generator=gen)]
                    d_sum = g_sum = 0.0
                    g_steps = d_steps = 0
                    for j, i in enumerate(range(0, len(order), B)):
                        x = real[order[i : i + B]]
                        b = len(x)
                        z = torch.randn(b, self.noise, W + RF - 1, generator=gen)
                        fake = G(z).detach()
                        eps = torch.rand(b, 1, 1, generator=gen)
                        mix = (eps * x + (1 - eps) * fake).requires_grad_(True)
                        (grad,) = torch.autograd.grad(D(mix).sum(), mix, create_graph=True)
                        penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
                        d_loss = D(fake).mean() - D(x).mean() + self.gp * penalty
                        opt_d.zero_grad()
                        d_loss.backward()
                        opt_d.step()
                        d_sum += float(d_loss.detach())
                        d_steps += 1
                        if (j + 1) % self.critic == 0:
                            z = torch.randn(B, self.noise, W + RF - 1, generator=gen)
                            g_loss = -D(G(z)).mean()
                            opt_g.zero_grad()
                            g_loss.backward()
                            opt_g.step()
                            g_sum += float(g_loss.detach())
                            g_steps += 1
                    self.loss_history.append((d_sum / d_steps, g_sum / g_steps if g_steps else float("nan")))
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(d=f"{self.loss_history[-1][0]:.3g}", g=f"{self.loss_history[-1][1]:.3g}")
            finally:
                if bar is not None:
                    bar.close()
        G.eval()
        self.generator = G
        self.every_ns, self.n_obs = every_ns, len(finite)
        return self

    def _log_returns(self, seed: Any, n: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((1, self.noise, n + self.receptive_field - 1)).astype(np.float32)
        with torch.no_grad():
            v = self.generator(torch.from_numpy(z))[0, 0].double().numpy()
        return self.postprocess(v)
