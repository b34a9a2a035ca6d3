"""Market figures: the book as a heatmap with trades, mid and microprice, OFI against the
next return. Each returns a ``matplotlib.figure.Figure`` made without pyplot (no global
state, nothing to close, no display needed), so they work in scripts and tests, and a
notebook cell whose result is one shows it as an image; each also saves to ``path`` when
given.

Examples
--------
>>> import lobfast
>>> from lobfast import datasets, plots
>>> md = lobfast.read_binance(datasets.path("spot_btcusdt_20240808"))
>>> book = lobfast.reconstruct(md.depth, levels=10, every="1s")
>>> fig = plots.book_heatmap(book, md.trades)
>>> len(fig.axes)
2
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .containers import BookSnapshots, Trades
from .evaluate import regression_metrics
from .figures import figure, save
from .frame import Frame

__all__ = ["book_heatmap", "figure", "mid_microprice", "ofi_vs_returns", "save"]


def _times(ts: np.ndarray) -> np.ndarray:
    return np.asarray(ts).view("datetime64[ns]")


def book_heatmap(book: BookSnapshots, trades: Trades | None = None, path: Any = None, *, max_rows: int = 2000):
    """Resting size by price and time (log colour scale), best bid/ask lines and trades as
    dots (green taker buys, red taker sells, area by size). Long books are thinned to
    ``max_rows`` evenly spaced rows; invalid rows are left blank."""
    if not isinstance(book, BookSnapshots):
        raise TypeError(f"book_heatmap takes BookSnapshots, not {type(book).__name__}")
    if len(book) == 0:
        raise ValueError("the book has no rows")
    take = np.unique(np.linspace(0, len(book) - 1, min(max_rows, len(book))).astype(np.int64))
    b = book[take]
    ok = b.valid
    px = np.concatenate([b.bid_px, b.ask_px], axis=1)
    sz = np.concatenate([b.bid_sz, b.ask_sz], axis=1)
    good = ok[:, None] & np.isfinite(px) & (sz > 0)
    if not good.any():
        raise ValueError("the book has no valid levels to draw")
    fig = figure(figsize=(10, 5))
    ax = fig.subplots()
    t = np.repeat(_times(b.ts)[:, None], px.shape[1], axis=1)
    sc = ax.scatter(
        t[good], px[good], c=np.log10(sz[good]), s=6, marker="s", cmap="viridis", linewidths=0, rasterized=True
    )
    fig.colorbar(sc, ax=ax, label="log10 resting size")
    best_bid = np.where(ok, b.bid_px[:, 0], np.nan)
    best_ask = np.where(ok, b.ask_px[:, 0], np.nan)
    ax.plot(_times(b.ts), best_bid, color="tab:blue", lw=0.8, label="best bid")
    ax.plot(_times(b.ts), best_ask, color="tab:orange", lw=0.8, label="best ask")
    if trades is not None and len(trades):
        inside = (trades.ts >= b.ts[0]) & (trades.ts <= b.ts[-1])
        tr = trades[inside]
        size = 4 + 40 * np.sqrt(tr.qty / max(float(tr.qty.max()), 1e-12))
        colour = np.where(tr.side > 0, "tab:green", "tab:red")
        ax.scatter(_times(tr.ts), tr.price, s=size, c=colour, alpha=0.6, linewidths=0, label="trades")
    ax.set_ylabel("price")
    ax.set_title(f"order book ({b.levels} levels a side) and trades")
    ax.legend(loc="upper left", fontsize="small")
    fig.autofmt_xdate()
    save(fig, path)
    return fig


def mid_microprice(features: Frame, path: Any = None, *, last: int | None = 3000):
    """Mid and microprice (and the spread below) from :func:`lobfast.features`; the last
    ``last`` rows (all when None), where the microprice's lead over the mid is visible."""
    for col in ("mid", "microprice", "spread"):
        if col not in features:
            raise ValueError(f"features need a {col!r} column (lobfast.features computes it)")
    f = features.rows[-last:] if last else features
    fig = figure(figsize=(10, 5))
    ax, ax2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    t = _times(f.ts)
    ax.plot(t, f["mid"], lw=0.9, label="mid")
    ax.plot(t, f["microprice"], lw=0.9, label="microprice")
    ax.set_ylabel("price")
    ax.legend(loc="upper left")
    ax.set_title("mid and microprice")
    ax2.plot(t, f["spread"], lw=0.8, color="tab:gray")
    ax2.set_ylabel("spread")
    fig.autofmt_xdate()
    save(fig, path)
    return fig


def ofi_vs_returns(ofi: Any, next_return: Any, path: Any = None, *, bins: int = 20, label: str = "OFI"):
    """Order-flow imbalance against the next return: a scatter with the mean return per OFI
    quantile bin, and the rank correlation (Spearman IC) in the title."""
    x, y = np.asarray(ofi, np.float64), np.asarray(next_return, np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"ofi and next_return must be 1-D of one length, got {x.shape} and {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3:
        raise ValueError(f"only {len(x)} rows where both are finite")
    ic = regression_metrics(x, y)["spearman"]
    edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
    counts = np.bincount(which, minlength=len(edges) - 1)
    mean_y = np.bincount(which, weights=y, minlength=len(edges) - 1) / np.maximum(counts, 1)
    centres = (edges[:-1] + edges[1:]) / 2
    fig = figure(figsize=(7, 5))
    ax = fig.subplots()
    ax.scatter(x, y * 1e4, s=3, alpha=0.25, color="tab:gray", rasterized=True, label="rows")
    ax.plot(centres[counts > 0], mean_y[counts > 0] * 1e4, "o-", color="tab:red", label="mean per quantile bin")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel(label)
    ax.set_ylabel("next return (bps)")
    ax.set_title(f"{label} against the next return: Spearman IC {ic:+.3f} (n={len(x):,})")
    ax.legend(loc="upper left", fontsize="small")
    ax.grid(alpha=0.3)
    save(fig, path)
    return fig
