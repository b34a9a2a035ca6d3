"""Data-quality report of a recording: sequence breaks, book health, feed latency, rates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .book import BookBuilder
from .containers import MarketData
from .flags import Flags

_PCTS = (50, 90, 99, 99.9)


def _latency_ms(c) -> dict[str, float]:
    """Percentiles of receive time - exchange time, ms, over rows that have an exchange time."""
    if not len(c):
        return {}
    lat = (c.local_ts - c.ts) / 1e6
    lat = lat[c.local_ts != c.ts]  # rows without an exchange time carry the receive time in ts
    if not len(lat):
        return {}
    out = {f"p{p:g}": float(v) for p, v in zip(_PCTS, np.percentile(lat, _PCTS))}
    out["min"], out["max"] = float(lat.min()), float(lat.max())
    return out


def _busiest_second(ts: np.ndarray) -> int:
    if not len(ts):
        return 0
    return int(np.bincount((ts - ts[0]) // 10**9).max())


@dataclass
class QualityReport:
    """What :func:`quality_report` found.  ``str()`` reads well; ``to_pandas()`` gives one row
    per metric; ``plot()`` draws latency and update rates (matplotlib)."""

    symbol: str
    market: str
    span_s: float
    counts: dict[str, int] = field(default_factory=dict)  # messages, rows, gaps, book health
    rates: dict[str, float] = field(default_factory=dict)  # per second over the span
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # per stream
    _series: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_pandas(self):
        """One row per metric: ``section, metric, value``."""
        import pandas as pd

        rows = [("span", "seconds", self.span_s)]
        rows += [("counts", k, v) for k, v in self.counts.items()]
        rows += [("rates", k, v) for k, v in self.rates.items()]
        rows += [(f"latency_ms.{s}", k, v) for s, d in self.latency_ms.items() for k, v in d.items()]
        return pd.DataFrame(rows, columns=["section", "metric", "value"])

    def plot(self, axes=None):
        """Feed latency per stream over time and level updates per second (matplotlib)."""
        try:
            import matplotlib.pyplot as plt
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("plot() needs matplotlib: pip install matplotlib") from e
        if axes is None:
            _, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
        for name, (t, lat) in self._series.get("latency", {}).items():
            axes[0].plot((t - t[0]) / 1e9 if len(t) else t, lat, ".", ms=1, label=name)
        axes[0].set_ylabel("receive - exchange (ms)")
        axes[0].legend(loc="upper right")
        secs, per_s = self._series.get("updates_per_s", (np.empty(0), np.empty(0)))
        axes[1].step(secs, per_s, where="post")
        axes[1].set_ylabel("level updates / s")
        axes[1].set_xlabel("seconds from the first row")
        axes[0].set_title(
            f"{self.symbol} {self.market}: gaps {self.counts.get('gaps', 0)}, "
            f"crossed {self.counts.get('crossed_books', 0)}"
        )
        return axes

    def __str__(self) -> str:
        c, r = self.counts, self.rates
        lines = [
            f"quality of {self.symbol or '?'} ({self.market}) over {self.span_s:,.1f} s",
            f"  sequence     gaps {c['gaps']}, resets {c['resets']}, diffs before sync {c['dropped_before_sync']}, "
            f"stale diffs {c['stale_diffs']}, bad lines {c['bad_lines']}",
            f"  book         crossed {c['crossed_books']}, repairs {c['repairs']}, orphan levels {c['orphan_levels']}, "
            f"deletes of unknown levels {c['unknown_deletes']}, invalid rows {c['invalid_rows']}",
            f"  rates        {r['messages_per_s']:,.0f} msg/s, {r['level_updates_per_s']:,.0f} level updates/s "
            f"(busiest second {c['busiest_second_updates']:,}), {r['trades_per_s']:,.1f} trades/s",
        ]
        for name, d in self.latency_ms.items():
            if d:
                lines.append(
                    f"  latency {name:<8} p50 {d['p50']:,.1f} ms, p99 {d['p99']:,.1f} ms, max {d['max']:,.1f} ms "
                    "(receive - exchange clock: includes any clock offset)"
                )
        return "\n".join(lines)


def quality_report(md: MarketData) -> QualityReport:
    """Gaps, resets, crossed books, repairs, orphan levels, feed latency percentiles, and
    message and level-update rates of what a reader returned.

    Examples
    --------
    >>> import lobfast
    >>> from lobfast import datasets
    >>> report = lobfast.quality_report(lobfast.read_binance(datasets.path("usdm_btcusdt_20240808")))
    >>> report.counts["gaps"], report.counts["crossed_books"]
    (0, 0)
    """
    s = md.stats
    d = md.depth
    builder = BookBuilder(1)
    builder.feed(d)
    book = builder.stats
    times = [c.local_ts for c in (d, md.trades, md.agg_trades, md.quotes) if len(c)]
    t0 = min(int(t[0]) for t in times) if times else 0
    t1 = max(int(t[-1]) for t in times) if times else 0
    span = max((t1 - t0) / 1e9, 1e-9) if times else 0.0
    level_rows = d.side != 0
    # rates and the busiest second on the receive clock, the one the span is measured on
    updates = d.local_ts[level_rows & ((d.flags & Flags.SNAPSHOT) == 0)]
    counts = {
        "depth_messages": s.get("depth_messages", 0),
        "trade_messages": s.get("trade_messages", 0) + s.get("agg_trade_messages", 0),
        "book_ticker_messages": s.get("book_ticker_messages", 0),
        "level_updates": int(len(updates)),
        "gaps": s.get("gaps", 0),
        "resets": s.get("resets", 0),
        "dropped_before_sync": s.get("dropped_before_sync", 0),
        "stale_diffs": s.get("stale_diffs", 0),
        "bad_lines": s.get("bad_lines", 0),
        "crossed_books": book["crossed"],
        "repairs": book["repairs"],
        "orphan_levels": book["orphan_levels"],
        "unknown_deletes": book["unknown_deletes"],
        "invalid_rows": book["invalid_rows"],
        "busiest_second_updates": _busiest_second(updates),
    }
    n_msgs = s.get("lines", 0) - s.get("blank_lines", 0)
    rates = {
        "messages_per_s": n_msgs / span if span else 0.0,
        "level_updates_per_s": len(updates) / span if span else 0.0,
        "trades_per_s": (len(md.trades) + len(md.agg_trades)) / span if span else 0.0,
    }
    streams = {"depth": d[(d.flags & Flags.END_OF_MESSAGE) > 0], "trades": md.trades, "quotes": md.quotes}
    latency = {name: _latency_ms(c) for name, c in streams.items()}
    secs = np.arange(0, int(span) + 1)
    per_s = np.bincount((updates - t0) // 10**9, minlength=len(secs))[: len(secs)] if len(updates) else secs * 0
    series = {
        "latency": {n: (c.ts, (c.local_ts - c.ts) / 1e6) for n, c in streams.items() if len(c) and latency[n]},
        "updates_per_s": (secs, per_s),
    }
    return QualityReport(md.symbol, md.market, span, counts, rates, latency, series)
