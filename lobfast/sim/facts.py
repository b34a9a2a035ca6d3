"""Stylized facts of a market, to hold a simulation against the recording it imitates.

:func:`stylized_facts` measures, from a book (and its trades): the excess kurtosis of mid
log-returns on a time grid, the autocorrelation of returns and of absolute returns, how
well order flow predicts the next return (the rank correlation of the best-level order-flow
imbalance over one grid interval with the log-return over the next: ``ofi_ic``), the spread
in ticks, trade inter-arrival times and trade sizes, and the book's shape: how far from the
mid each of the first 10 levels sits (in bps), what it holds, and how often each tick near
the touch holds anything. :func:`compare_facts` puts a real market and any number of
simulated ones side by side (one column each) and :func:`plot_facts` draws them.
:func:`path_facts` measures the returns of price paths (samples of a price process or a
generator, or a recording's mid) as one row of a table.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..book import reconstruct
from ..containers import BookSnapshots, MarketData, Trades
from ..figures import figure
from ..times import parse_duration
from .flow import infer_step, tick_profile

QUANTILES = (0.1, 0.5, 0.9, 0.99)
SPREAD_QUANTILES = (0.5, 0.9, 0.99)
SHAPE_LEVELS = 10
"""Levels of the book whose offset from the mid and size are measured (and ticks whose occupancy is)."""
_COMPARE_LAGS = (1, 2, 3, 4, 5, 10, 20)
_COMPARE_TICKS = 5


def excess_kurtosis(x: np.ndarray) -> float:
    """Excess kurtosis ``m4 / m2**2 - 3`` with population moments (``scipy.stats.kurtosis``'s
    default); NaN for fewer than 4 values or no variance."""
    x = np.asarray(x, np.float64)
    if len(x) < 4:
        return float("nan")
    d = x - x.mean()
    m2 = np.mean(d * d)
    if m2 <= 0:
        return float("nan")
    return float(np.mean(d**4) / (m2 * m2) - 3.0)


def acf(x: np.ndarray, lags: int = 20) -> np.ndarray:
    """Sample autocorrelation at lags 1..``lags``: ``sum_t (x_t - m)(x_{t+k} - m) / sum_t (x_t - m)^2``.

    NaN values are left out of both sums (pairs with a NaN count for nothing), so a series
    with breaks keeps its length and lag structure. NaN where the variance is zero.
    """
    x = np.asarray(x, np.float64)
    ok = np.isfinite(x)
    out = np.full(lags, np.nan)
    if ok.sum() < 2:
        return out
    d = np.where(ok, x - x[ok].mean(), 0.0)
    den = np.dot(d, d)
    if den <= 0:
        return out
    for k in range(1, lags + 1):
        if k < len(d):
            out[k - 1] = np.dot(d[:-k], d[k:]) / den
    return out


def rank_ic(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation of the pairs where both are finite (ties get their average
    rank); NaN for fewer than 3 pairs or a constant side."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return float("nan")

    def ranks(v):
        _, inv, counts = np.unique(v, return_inverse=True, return_counts=True)
        return (np.cumsum(counts) - 0.5 * (counts - 1))[inv]

    a, b = ranks(x[ok]), ranks(y[ok])
    a, b = a - a.mean(), b - b.mean()
    den = np.sqrt(np.dot(a, a) * np.dot(b, b))
    return float(np.dot(a, b) / den) if den > 0 else float("nan")


def best_level_ofi(book: BookSnapshots) -> np.ndarray:
    """Order-flow imbalance at the best level between consecutive rows (Cont, Kukanov and
    Stoikov 2014): bid size added at a bid that held or rose, less size gone at one that held
    or fell, and the mirror image for the ask; 0 for the first row and where either row lacks
    a best quote."""
    pb, qb = book.bid_px[:, 0], book.bid_sz[:, 0]
    pa, qa = book.ask_px[:, 0], book.ask_sz[:, 0]
    ok = book.valid & np.isfinite(pb) & np.isfinite(pa)
    e = np.zeros(len(book))
    if len(book) > 1:
        with np.errstate(invalid="ignore"):
            e[1:] = (
                (pb[1:] >= pb[:-1]) * qb[1:]
                - (pb[1:] <= pb[:-1]) * qb[:-1]
                - (pa[1:] <= pa[:-1]) * qa[1:]
                + (pa[1:] >= pa[:-1]) * qa[:-1]
            )
        e[1:][~(ok[1:] & ok[:-1])] = 0.0
    return e


def ofi_next_return(book: BookSnapshots, every_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ofi, next_return)`` on the grid ``every_ns``: the best-level OFI summed over the rows
    in each interval ``(g - every, g]`` and the mid log-return over the next, ``(g, g + every]``
    (NaN where the book is not valid at either end)."""
    if len(book) < 2:
        return np.empty(0), np.empty(0)
    e = best_level_ofi(book)
    mid = _grid_mid(book, every_ns)
    t0 = -(-int(book.ts[0]) // every_ns) * every_ns
    grid = t0 + every_ns * np.arange(len(mid), dtype=np.int64)
    c = np.concatenate([[0.0], np.cumsum(e)])
    upto = np.searchsorted(book.ts, grid, side="right")  # rows at or before each grid time
    flow = np.full(len(grid), np.nan)
    flow[1:] = c[upto[1:]] - c[upto[:-1]]
    with np.errstate(invalid="ignore", divide="ignore"):
        nxt = np.full(len(grid), np.nan)
        nxt[:-1] = np.diff(np.log(mid))
    return flow, nxt


def _grid_mid(book: BookSnapshots, every_ns: int) -> np.ndarray:
    """Mid on the grid ``every_ns`` (the last row at or before each grid time; NaN where
    that row is not valid), covering the book's rows."""
    mid = np.where(book.valid, 0.5 * (book.bid_px[:, 0] + book.ask_px[:, 0]), np.nan)
    if len(book) == 0:
        return mid
    t0 = -(-int(book.ts[0]) // every_ns) * every_ns
    grid = np.arange(t0, int(book.ts[-1]) + 1, every_ns, dtype=np.int64)
    idx = np.searchsorted(book.ts, grid, side="right") - 1
    return mid[idx]


def book_shape(book: BookSnapshots, tick: float, levels: int = SHAPE_LEVELS) -> dict[str, np.ndarray]:
    """The shape of a book over its rows with both best quotes, both sides pooled.

    Returns ``level_offset_bps``: per level k = 1..levels the mean distance of the k-th
    non-empty level from the mid, in bps (``|price - mid| / mid * 1e4``); ``level_size_mean``
    and ``level_size_median``: its size; ``tick_occupancy``: per distance d = 1..levels ticks
    from the opposite best quote (1 = the touch when the spread is one tick), the share of
    time the tick holds size (as :func:`lobfast.sim.calibrate` measures ``queue_occupancy``).
    NaN where a level is never there (a book with fewer columns: NaN beyond them).
    """
    out = {k: np.full(levels, np.nan) for k in ("level_offset_bps", "level_size_mean", "level_size_median")}
    out["tick_occupancy"] = np.full(levels, np.nan)
    rows = np.flatnonzero(book.valid & np.isfinite(book.bid_px[:, 0]) & np.isfinite(book.ask_px[:, 0]))
    k = min(levels, book.levels)
    if len(rows) == 0 or k == 0:
        return out
    bid_px, ask_px = book.bid_px[rows, :k], book.ask_px[rows, :k]
    mid = 0.5 * (bid_px[:, :1] + ask_px[:, :1])
    off = np.concatenate([(mid - bid_px) / mid, (ask_px - mid) / mid]) * 1e4
    size = np.concatenate([book.bid_sz[rows, :k], book.ask_sz[rows, :k]])
    here = np.isfinite(off) & (size > 0)
    n = here.sum(axis=0)
    seen = n > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        out["level_offset_bps"][:k] = np.where(seen, np.where(here, off, 0.0).sum(axis=0) / n, np.nan)
        out["level_size_mean"][:k] = np.where(seen, np.where(here, size, 0.0).sum(axis=0) / n, np.nan)
    for j in np.flatnonzero(seen):
        out["level_size_median"][j] = float(np.median(size[here[:, j], j]))
    occupied, view, _, _ = tick_profile(book, tick, levels, rows)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["tick_occupancy"] = np.where(view[1:] > 0, occupied[1:] / view[1:], np.nan)
    return out


def _source(data: Any) -> tuple[BookSnapshots | None, Trades | None, MarketData | None]:
    if hasattr(data, "market_data") and callable(data.market_data):  # a SimMarket
        data = data.market_data()
    if isinstance(data, MarketData):
        return None, data.trades, data
    if isinstance(data, BookSnapshots):
        return data, None, None
    raise TypeError(
        f"stylized facts are measured on MarketData, a SimMarket or BookSnapshots, not {type(data).__name__}"
    )


def stylized_facts(md_or_book: Any, *, every="1s", lags: int = 20, spread_every="100ms") -> dict[str, Any]:
    """Stylized facts of a market.

    Parameters
    ----------
    md_or_book : MarketData (a reader's or ``SimMarket.market_data()``), a SimMarket, or
        BookSnapshots (then without the trade facts).
    every : grid of the mid log-returns (``"1s"``); a return is kept when the book is valid
        at both ends.
    lags : autocorrelation lags 1..lags.
    spread_every : grid on which the spread is sampled (MarketData input); BookSnapshots use
        their own rows.

    Returns
    -------
    dict with ``kurtosis`` (excess, population moments), ``return_std``, ``n_returns``,
    ``acf_returns`` and ``acf_abs_returns`` (arrays, lags 1..lags), ``ofi_ic`` (Spearman
    correlation of the best-level OFI over each ``every`` interval with the next interval's
    mid log-return, on the ``spread_every`` book: see :func:`ofi_next_return`), the pairs
    ``ofi`` and ``ofi_next_return``, ``spread_mean``,
    ``spread_one_tick`` (share of samples at one tick), ``spread_quantiles`` ({q: ticks}),
    ``spread_values``/``spread_shares`` (the distribution), ``tick``, ``trade_count``,
    ``trade_rate`` (per second), ``inter_arrival_mean`` (s), ``inter_arrival_cv``,
    ``inter_arrival_quantiles`` ({q: s}), ``trade_size_quantiles`` ({q: size}), the
    samples ``returns`` and ``inter_arrivals``, and the book's shape on the ``spread_every``
    grid (see :func:`book_shape`): ``level_offset_bps``, ``level_size_mean``,
    ``level_size_median`` (levels 1..10) and ``tick_occupancy`` (distances 1..10 ticks from
    the opposite best). Trades sharing a timestamp arrived together (one taker order) and
    count as one arrival. Trade facts are NaN without trades.
    """
    every_ns = parse_duration(every, "every")
    if isinstance(lags, bool) or not isinstance(lags, (int, np.integer)) or lags < 1:
        raise ValueError(f"lags must be an int >= 1, not {lags!r}")
    book, trades, md = _source(md_or_book)
    if md is not None:
        if not len(md.depth):
            raise ValueError("the MarketData holds no depth: no book to measure")
        book = reconstruct(md.depth, levels=1, every=every_ns)
        spread_book = reconstruct(md.depth, levels=SHAPE_LEVELS, every=parse_duration(spread_every, "spread_every"))
        lv = md.depth.side != 0
        tick = infer_step(md.depth.price[lv])
    else:
        spread_book = book
        px = np.concatenate([book.bid_px[:, 0], book.ask_px[:, 0]])
        tick = infer_step(px[np.isfinite(px)])

    mid = _grid_mid(book, every_ns)
    with np.errstate(invalid="ignore", divide="ignore"):
        r_all = np.diff(np.log(mid))
    r = r_all[np.isfinite(r_all)]
    out: dict[str, Any] = {"every_ns": every_ns, "tick": tick, "n_returns": len(r)}
    out["return_std"] = float(r.std()) if len(r) > 1 else float("nan")
    out["kurtosis"] = excess_kurtosis(r)
    out["acf_returns"] = acf(r_all, lags)
    out["acf_abs_returns"] = acf(np.abs(r_all), lags)
    out["returns"] = r

    sv = spread_book.valid & np.isfinite(spread_book.bid_px[:, 0]) & np.isfinite(spread_book.ask_px[:, 0])
    spread = np.rint((spread_book.ask_px[sv, 0] - spread_book.bid_px[sv, 0]) / tick).astype(np.int64)
    if len(spread):
        values, counts = np.unique(spread, return_counts=True)
        out["spread_mean"] = float(spread.mean())
        out["spread_one_tick"] = float(np.mean(spread == 1))
        out["spread_quantiles"] = {q: float(v) for q, v in zip(SPREAD_QUANTILES, np.quantile(spread, SPREAD_QUANTILES))}
        out["spread_values"], out["spread_shares"] = values, counts / len(spread)
    else:
        out["spread_mean"] = out["spread_one_tick"] = float("nan")
        out["spread_quantiles"] = {q: float("nan") for q in SPREAD_QUANTILES}
        out["spread_values"], out["spread_shares"] = np.empty(0, np.int64), np.empty(0)

    out.update(book_shape(spread_book, tick))
    flow, nxt = ofi_next_return(spread_book, every_ns)
    out["ofi"], out["ofi_next_return"] = flow, nxt
    out["ofi_ic"] = rank_ic(flow, nxt)

    nan_q = {q: float("nan") for q in QUANTILES}
    if trades is not None and len(trades) > 1:
        t = np.unique(trades.ts)
        ia = np.diff(t) / 1e9
        span = (int(trades.ts[-1]) - int(trades.ts[0])) / 1e9
        out["trade_count"] = len(trades)
        out["trade_rate"] = len(trades) / span if span > 0 else float("nan")
        out["inter_arrival_mean"] = float(ia.mean()) if len(ia) else float("nan")
        out["inter_arrival_cv"] = float(ia.std() / ia.mean()) if len(ia) > 1 and ia.mean() > 0 else float("nan")
        out["inter_arrival_quantiles"] = (
            {q: float(v) for q, v in zip(QUANTILES, np.quantile(ia, QUANTILES))} if len(ia) else nan_q
        )
        out["trade_size_quantiles"] = {q: float(v) for q, v in zip(QUANTILES, np.quantile(trades.qty, QUANTILES))}
        out["inter_arrivals"] = ia
    else:
        out["trade_count"] = 0 if trades is None else len(trades)
        out["trade_rate"] = out["inter_arrival_mean"] = out["inter_arrival_cv"] = float("nan")
        out["inter_arrival_quantiles"] = dict(nan_q)
        out["trade_size_quantiles"] = dict(nan_q)
        out["inter_arrivals"] = np.empty(0)
    return out


def _as_facts(x: Any) -> dict[str, Any]:
    return x if isinstance(x, dict) else stylized_facts(x)


def _rows(f: dict[str, Any]) -> dict[str, float]:
    rows = {
        "return_std": f["return_std"],
        "kurtosis": f["kurtosis"],
        "ofi_ic": f.get("ofi_ic", float("nan")),
    }
    for name, key in (("acf_r", "acf_returns"), ("acf_abs_r", "acf_abs_returns")):
        a = f[key]
        for k in _COMPARE_LAGS:
            rows[f"{name}_{k}"] = float(a[k - 1]) if k <= len(a) else float("nan")
    rows["spread_mean"] = f["spread_mean"]
    rows["spread_one_tick"] = f["spread_one_tick"]
    for q, v in f["spread_quantiles"].items():
        rows[f"spread_q{q * 100:g}"] = v
    rows["trade_rate"] = f["trade_rate"]
    rows["inter_arrival_mean"] = f["inter_arrival_mean"]
    rows["inter_arrival_cv"] = f["inter_arrival_cv"]
    for q, v in f["inter_arrival_quantiles"].items():
        rows[f"inter_arrival_q{q * 100:g}"] = v
    for q, v in f["trade_size_quantiles"].items():
        rows[f"trade_size_q{q * 100:g}"] = v
    for name, key in (("offset_bps", "level_offset_bps"), ("size_mean", "level_size_mean")):
        for k, v in enumerate(f[key], 1):
            rows[f"{name}_{k}"] = v
    for d, v in enumerate(f["tick_occupancy"][:_COMPARE_TICKS], 1):
        rows[f"occupancy_{d}"] = v
    return {k: float(v) for k, v in rows.items()}


def _named(real: Any, sim: Any) -> dict[str, dict[str, Any]]:
    """``{"real": facts, name: facts, ...}``: ``sim`` is one source (named ``sim``) or a
    mapping of names to sources (one column each, in order)."""
    sims = dict(sim) if isinstance(sim, dict) and not {"kurtosis", "every_ns"} <= set(sim) else {"sim": sim}
    if "real" in sims:
        raise ValueError('the simulated sources need names other than "real"')
    return {"real": _as_facts(real), **{str(k): _as_facts(v) for k, v in sims.items()}}


def compare_facts(real: Any, sim: Any):
    """Stylized facts side by side: a pandas DataFrame indexed by fact with a column ``real``
    and one per simulated source. ``sim`` is one source (the column ``sim``) or a dict of
    them by name (e.g. ``{"path": ..., "flow": ...}``; further simulators add further
    entries); each source is a :func:`stylized_facts` dict or data it accepts (measured with
    the defaults)."""
    import pandas as pd

    cols = {k: pd.Series(_rows(v)) for k, v in _named(real, sim).items()}
    df = pd.DataFrame(cols)
    df.index.name = "fact"
    return df


def plot_facts(real: Any, sim: Any, path=None):
    """Eight panels: return histogram (log scale), ACF of absolute returns and of returns,
    order flow against the next return, spread distribution, trade inter-arrival
    distribution, and the book's shape: the mean offset of each level from the mid and its
    mean size. ``sim``: one source or a dict of them by name, as for :func:`compare_facts`.
    Returns a ``matplotlib.figure.Figure`` (made without pyplot); saved to ``path`` when given."""
    named = _named(real, sim)
    fr = named["real"]
    fig = figure(figsize=(20, 7.5), layout="constrained")
    ax = fig.subplots(2, 4)
    colors = ["C0", "C3", "C2", "C1", "C4", "C5", "C6", "C7", "C8", "C9"]
    style = tuple((name, f, colors[i % len(colors)]) for i, (name, f) in enumerate(named.items()))

    a = ax[0, 0]
    both = np.concatenate([f["returns"] for _, f, _ in style]) * 1e4
    if len(both):
        lim = max(float(np.max(np.abs(both))), 1e-9)
        bins = np.linspace(-lim, lim, 61)
        for name, f, c in style:
            if len(f["returns"]):
                a.hist(f["returns"] * 1e4, bins=bins, density=True, histtype="step", color=c, label=name)
        a.set_yscale("log")
    a.set_xlabel(f"mid log-return over {fr['every_ns'] / 1e9:g} s (bp)")
    a.set_ylabel("density")
    a.set_title("returns")

    for a, key, title in (
        (ax[0, 1], "acf_abs_returns", "ACF of |returns|"),
        (ax[0, 3], "acf_returns", "ACF of returns"),
    ):
        for name, f, c in style:
            lags = np.arange(1, len(f[key]) + 1)
            a.plot(lags, f[key], "o-", color=c, ms=3, label=name)
        a.axhline(0.0, color="0.5", lw=0.8)
        a.set_xlabel("lag")
        a.set_ylabel("autocorrelation")
        a.set_title(title)

    a = ax[1, 3]
    for name, f, c in style:
        x, y = np.asarray(f.get("ofi", []), np.float64), np.asarray(f.get("ofi_next_return", []), np.float64)
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.sum() < 10:
            continue
        x, y = x[ok], y[ok]
        # OFI as its quantile in its own market (sizes differ between markets), the next
        # return in its own standard deviations
        q = (np.argsort(np.argsort(x, kind="stable"), kind="stable") + 0.5) / len(x)
        b = np.minimum((q * 10).astype(np.int64), 9)
        n = np.bincount(b, minlength=10)
        m = np.bincount(b, y, minlength=10) / np.maximum(n, 1) / (y.std() or 1.0)
        a.plot((np.arange(10) + 0.5)[n > 0] / 10, m[n > 0], "o-", color=c, ms=3, label=f"{name}: IC {f['ofi_ic']:+.2f}")
    a.axhline(0.0, color="0.5", lw=0.8)
    a.set_xlabel("OFI over the last interval (quantile)")
    a.set_ylabel("mean next return (sd)")
    a.set_title("order flow against the next return")

    a = ax[1, 0]
    for name, f, c in style:
        v, s = f["spread_values"], f["spread_shares"]
        keep = v <= 30
        a.plot(v[keep], s[keep], "o-", color=c, ms=3, label=name)
    a.set_yscale("log")
    a.set_xlabel("spread (ticks)")
    a.set_ylabel("share of time")
    a.set_title("spread")

    a = ax[1, 1]
    ia = [f["inter_arrivals"] for _, f, _ in style]
    pos = np.concatenate([x[x > 0] for x in ia])
    if len(pos):
        bins = np.logspace(np.log10(pos.min()), np.log10(pos.max()) + 1e-9, 40)
        for (name, _, c), x in zip(style, ia):
            if len(x[x > 0]):
                a.hist(x[x > 0], bins=bins, density=True, histtype="step", color=c, label=name)
        a.set_xscale("log")
        a.set_yscale("log")
    a.set_xlabel("time between trades (s)")
    a.set_ylabel("density")
    a.set_title("trade inter-arrival")

    for a, key, label, title in (
        (ax[0, 2], "level_offset_bps", "mean distance from the mid (bp)", "book shape: where the levels sit"),
        (ax[1, 2], "level_size_mean", "mean size", "book shape: what the levels hold"),
    ):
        for name, f, c in style:
            v = np.asarray(f.get(key, []), np.float64)
            if np.isfinite(v).any():
                a.plot(np.arange(1, len(v) + 1), v, "o-", color=c, ms=3, label=name)
        a.set_xlabel("level (1 = best)")
        a.set_ylabel(label)
        a.set_title(title)
    if np.isfinite(np.asarray(fr.get("level_size_mean", []), np.float64)).any():
        ax[1, 2].set_yscale("log")
    for a in ax.flat:
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=8)
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig


_YEAR_S = 365 * 86400


def _path_returns(path: Any, every_ns: int | None) -> tuple[np.ndarray, float]:
    """(log returns, span in years) of one path: a ``(ts, price)`` pair, or market data whose
    mid is taken on the grid ``every_ns``."""
    if isinstance(path, tuple) and len(path) == 2:
        ts = np.asarray(path[0])
        if ts.dtype.kind == "M":
            ts = ts.astype("datetime64[ns]").view(np.int64)
        if ts.dtype.kind not in "iu" or ts.ndim != 1:
            raise TypeError(f"a path's ts must be 1-D int64 ns or datetime64, got dtype {ts.dtype} shape {ts.shape}")
        px = np.asarray(path[1], np.float64)
        if px.shape != ts.shape:
            raise ValueError(f"a path needs one price per ts ({len(ts)}), got shape {px.shape}")
        bad = np.flatnonzero(~(np.isfinite(px) & (px > 0)))
        if len(bad):
            raise ValueError(f"a path's prices must be finite and > 0: row {int(bad[0])} is {float(px[bad[0]])!r}")
        bad = np.flatnonzero(np.diff(ts) <= 0)
        if len(bad):
            i = int(bad[0]) + 1
            raise ValueError(f"a path's ts must be strictly increasing: row {i} ({ts[i]}) is not after row {i - 1}")
        ts = ts.astype(np.int64)
        if every_ns is not None and len(ts):
            grid = np.arange(int(ts[0]), int(ts[-1]) + 1, every_ns, dtype=np.int64)
            px = px[np.searchsorted(ts, grid, side="right") - 1]
            ts = grid
        span = (int(ts[-1]) - int(ts[0])) / 1e9 / _YEAR_S if len(ts) else 0.0
        return np.diff(np.log(px)), span
    if every_ns is None:
        raise ValueError("market data needs every= (the grid its mid is sampled on)")
    book, _, md = _source(path)
    if md is not None:
        book = reconstruct(md.depth, levels=1, every=every_ns)
    mid = _grid_mid(book, every_ns)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.diff(np.log(mid))
    return r, np.isfinite(r).sum() * every_ns / 1e9 / _YEAR_S


def path_facts(paths: Any, *, every: Any = None, lags: int = 5) -> dict[str, float]:
    """One row of facts of the log returns of price paths, pooled over the paths (e.g. one
    per seed): what tells a price model from the market it imitates.

    Parameters
    ----------
    paths : a ``(ts, price)`` pair (as the price processes and generators sample them), data
        :func:`stylized_facts` accepts (the mid on the grid ``every``), or a list of these.
    every : the grid of the returns; None: each pair's own rows (market data needs it).
    lags : autocorrelation lags 1..lags.

    Returns
    -------
    dict of floats: ``paths``, ``n_returns``, ``hours`` (time covered), ``return_std``,
    ``zero_share`` (returns exactly zero: a tick-discrete price that did not move),
    ``drift_per_year`` (the mean log return per year, sum(r) / time) with ``drift_se``
    (its standard error treating returns as independent: std(r) sqrt(n) / time) and
    ``drift_t`` (their ratio), ``kurtosis`` (excess), ``acf_r_k`` and ``acf_abs_r_k`` for
    k = 1..lags (returns and absolute returns; pairs never cross from one path into the
    next) and ``acf_abs_r_mean`` (their mean over the lags).  Returns whose ends are not both
    valid books count for nothing.
    """
    every_ns = None if every is None else parse_duration(every, "every")
    if isinstance(lags, bool) or not isinstance(lags, (int, np.integer)) or lags < 1:
        raise ValueError(f"lags must be an int >= 1, not {lags!r}")
    items = list(paths) if isinstance(paths, list) else [paths]
    if not items:
        raise ValueError("no paths to measure")
    pieces, span = [], 0.0
    for p in items:
        r, years = _path_returns(p, every_ns)
        pieces += [r, np.full(lags, np.nan)]  # a gap of NaN: no pair crosses paths
        span += years
    r_all = np.concatenate(pieces)
    r = r_all[np.isfinite(r_all)]
    n = len(r)
    out = {"paths": float(len(items)), "n_returns": float(n), "hours": span * _YEAR_S / 3600}
    out["return_std"] = float(r.std()) if n > 1 else float("nan")
    out["zero_share"] = float(np.mean(r == 0)) if n else float("nan")
    if n > 1 and span > 0:
        out["drift_per_year"] = float(r.sum() / span)
        out["drift_se"] = float(r.std() * np.sqrt(n) / span)
        out["drift_t"] = out["drift_per_year"] / out["drift_se"] if out["drift_se"] > 0 else float("nan")
    else:
        out["drift_per_year"] = out["drift_se"] = out["drift_t"] = float("nan")
    out["kurtosis"] = excess_kurtosis(r)
    a, b = acf(r_all, lags), acf(np.abs(r_all), lags)
    for k in range(lags):
        out[f"acf_r_{k + 1}"] = float(a[k])
    for k in range(lags):
        out[f"acf_abs_r_{k + 1}"] = float(b[k])
    out["acf_abs_r_mean"] = float(np.nanmean(b)) if np.isfinite(b).any() else float("nan")
    return out
