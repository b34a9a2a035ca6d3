"""Readable summaries of what a reader returned (``lobfast info``, ``lobfast demo``)."""

from __future__ import annotations

import numpy as np

from .containers import MarketData


def fmt_ns(ns: int) -> str:
    """int64 ns as "YYYY-mm-dd HH:MM:SS.mmm" (UTC)."""
    return str(np.datetime64(int(ns), "ns").astype("datetime64[ms]")).replace("T", " ")


def summarize(md: MarketData, seconds: float, nbytes: int) -> str:
    """A readable summary of what a reader returned."""
    s = md.stats
    times = [c.local_ts for c in (md.depth, md.trades, md.agg_trades, md.quotes) if len(c)]
    lines = [f"{md.symbol or '?'} ({md.market}), {s['files']} file(s), {s['lines']:,} lines"]
    if times:
        t0 = min(int(t[0]) for t in times)
        t1 = max(int(t[-1]) for t in times)
        span = max((t1 - t0) / 1e9, 1e-9)
        lines.append(f"  span         {fmt_ns(t0)} -> {fmt_ns(t1)} UTC ({span:,.1f} s, receive time)")
    else:
        span = 0.0
    lines.append(
        "  messages     depth {:,}  trade {:,}  aggTrade {:,}  bookTicker {:,}  snapshots {}  unknown {:,}".format(
            s["depth_messages"],
            s["trade_messages"],
            s["agg_trade_messages"],
            s["book_ticker_messages"],
            s["snapshots"],
            s["unknown_messages"],
        )
    )
    d = md.depth
    n_levels = int(np.count_nonzero(d.side))
    lines.append(
        f"  book         {n_levels:,} level changes, resets {s['resets']}, gaps {s['gaps']}, "
        f"diffs before sync {s['dropped_before_sync']}, stale {s['stale_diffs']}, synced at end: {bool(s['synced'])}"
    )
    for name, t in (("trades", md.trades), ("agg trades", md.agg_trades)):
        if len(t):
            buy = float(t.qty[t.side > 0].sum())
            sell = float(t.qty[t.side < 0].sum())
            vwap = float((t.price * t.qty).sum() / t.qty.sum())
            lines.append(
                f"  {name:<12} {len(t):,}: taker buy {buy:,.4f}, taker sell {sell:,.4f}, "
                f"VWAP {vwap:,.2f}, last {t.price[-1]:,.2f}"
            )
    if len(md.quotes):
        q = md.quotes
        spread = q.ask_px - q.bid_px
        lines.append(
            f"  quotes       {len(q):,}: median spread {np.median(spread):.6g}, "
            f"last {q.bid_px[-1]:,} / {q.ask_px[-1]:,}"
        )
    if span:
        lines.append(
            f"  rates        {s['lines'] / span:,.0f} msg/s, {n_levels / span:,.0f} level changes/s, "
            f"{(len(md.trades) + len(md.agg_trades)) / span:,.1f} trades/s"
        )
    lines.append(
        f"  read in      {seconds * 1e3:,.1f} ms ({nbytes / seconds / 1e6:,.0f} MB/s of text, decompression included, "
        f"bad lines {s['bad_lines']}, truncated files {s['truncated_files']})"
    )
    return "\n".join(lines)
