"""The ``lobfast`` command: ``demo``, ``info FILES``, ``index FILES``, ``convert SRC DST``, ``collect ...``."""

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


def _time_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", default="auto", choices=["auto", "csv", "raw"])
    p.add_argument("--ts-col", default="timestamp", help="CSV time column: name or 0-based position")
    p.add_argument("--unit", default="us", choices=["s", "ms", "us", "ns", "auto"], help="CSV time unit")


def _ts_col(text: str) -> str | int:
    return int(text) if text.isdigit() else text


def convert(argv: list[str]) -> int:
    from .convert import convert as run

    p = argparse.ArgumentParser(
        prog="lobfast convert", description="Rewrite a recording (plain, .gz, .zst) as seekable zstd frames."
    )
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--frame", default="1s", help="time per frame (default 1s)")
    p.add_argument("--frame-bytes", type=int, default=4 << 20, help="bytes per frame at most")
    p.add_argument("--level", type=int, default=3, help="zstd level")
    _time_args(p)
    a = p.parse_args(argv)
    t = time.perf_counter()
    st = run(
        a.src, a.dst, frame=a.frame, frame_bytes=a.frame_bytes, level=a.level,
        format=a.format, ts_col=_ts_col(a.ts_col), unit=a.unit,
    )  # fmt: skip
    dt = time.perf_counter() - t
    print(
        f"{a.dst}: {st['lines']:,} lines, {st['frames']:,} frames, {st['bytes_in'] / 1e6:,.1f} MB of text -> "
        f"{st['bytes_out'] / 1e6:,.1f} MB in {dt:,.1f} s"
    )
    return 0


def index(argv: list[str]) -> int:
    from .timeindex import TimeIndex

    p = argparse.ArgumentParser(prog="lobfast index", description="Build (or check) the time index of files.")
    p.add_argument("paths", nargs="+", help="files, globs or a directory")
    p.add_argument("--index-dir", default=None, help="keep the .lfidx files here instead of next to the data")
    _time_args(p)
    a = p.parse_args(argv)
    ti = TimeIndex(a.paths, format=a.format, ts_col=_ts_col(a.ts_col), unit=a.unit, index_dir=a.index_dir)
    print(ti)
    for f in ti.info():
        span = f"{_fmt_ns(f['first_ts'])} -> {_fmt_ns(f['last_ts'])}" if f["rows"] else "no rows"
        print(
            f"  {f['path']}: {f['status']}, {f['compression']}, {f['rows']:,} rows, {span}, "
            f"{f['entries']:,} entries, {f['frames']:,} frames"
        )
    return 0


def collect(argv: list[str]) -> int:
    """Record Binance streams: ``lobfast collect --venue spot --symbols btcusdt --out DIR`` (see --help)."""
    from .collector import main as run_collector

    return run_collector(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    commands = {"demo": demo, "info": info, "index": index, "convert": convert, "collect": collect}
    if not argv or argv[0] not in commands:
        print(
            "usage: lobfast {demo | info FILES... | index FILES... | convert SRC DST | collect OPTIONS}",
            file=sys.stderr,
        )
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
