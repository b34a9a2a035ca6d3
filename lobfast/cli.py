"""The ``lobfast`` command: ``lobfast demo`` and ``lobfast info FILES``."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from . import datasets
from .book import check_against_quotes, reconstruct
from .containers import MarketData
from .quality import quality_report
from .readers import expand_paths, read_binance


def _fmt_ns(ns: int) -> str:
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
        lines.append(f"  span         {_fmt_ns(t0)} -> {_fmt_ns(t1)} UTC ({span:,.1f} s, receive time)")
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


def _read_and_summarize(paths, symbol=None) -> str:
    t = time.perf_counter()
    md = read_binance(paths, symbol=symbol)
    text = summarize(md, time.perf_counter() - t, md.stats["bytes"])
    t = time.perf_counter()
    snaps = reconstruct(md.depth, levels=10, every="100ms")
    dt = time.perf_counter() - t
    check = check_against_quotes(md.depth, md.quotes)
    level_rows = int(np.count_nonzero(md.depth.side))
    text += (
        f"\n  book         {len(snaps):,} rows of 10 levels on a 100 ms grid in {dt * 1e3:,.1f} ms "
        f"({level_rows / max(dt, 1e-9) / 1e6:,.1f} M level updates/s), {int(snaps.valid.sum()):,} valid"
        f"\n  oracle       rebuilt best bid/ask = exchange bookTicker in {check.matched:,} of {check.compared:,} "
        "shared updates"
    )
    return text + "\n" + str(quality_report(md))


def demo(argv: list[str]) -> int:
    print("lobfast demo: real Binance recordings bundled with the package\n")
    for title, names in datasets.DEMO_SETS:
        print(f"== {title}")
        print(_read_and_summarize([datasets.path(n) for n in names]))
        print()
    return 0


def info(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="lobfast info", description="Summarise Binance raw recordings.")
    p.add_argument("paths", nargs="+", help="files or globs (plain, .gz, .zst)")
    p.add_argument("--symbol", default=None)
    a = p.parse_args(argv)
    print(_read_and_summarize(expand_paths(a.paths), a.symbol))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    commands = {"demo": demo, "info": info}
    if not argv or argv[0] not in commands:
        print("usage: lobfast {demo | info FILES...}", file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
