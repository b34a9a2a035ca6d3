"""The ``lobfast`` command: ``demo``, ``info FILES``, ``index FILES``, ``convert SRC DST``, ``collect ...``,
``process SRC... --out STORE``."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from . import datasets
from .book import check_against_quotes, reconstruct
from .collector import main as run_collector
from .convert import convert as run_convert
from .quality import quality_report
from .readers import expand_paths, prepare_windows, read_binance
from .store import connect
from .store import process as run_process
from .summary import fmt_ns, summarize
from .timeindex import TimeIndex


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
    """The whole pipeline on the bundled real sample (or ``--data``) plus a simulated stretch."""
    p = argparse.ArgumentParser(
        prog="lobfast demo",
        description="Read, rebuild, check, featurise, label, simulate, train a small DeepLOB-TCN, "
        "evaluate against raw returns and backtest with costs; report and figures in --out.",
    )
    p.add_argument("--data", nargs="+", help="your recordings (files or globs) instead of the bundled sample")
    p.add_argument("--symbol", default=None, help="the symbol to use when the files hold several")
    p.add_argument("--out", default="demo-output", help="folder for report.md and the PNG figures")
    p.add_argument("--sim-minutes", type=float, default=60.0, help="simulated minutes to train on (default 60)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="6 simulated minutes and one epoch")
    a = p.parse_args(argv)
    try:
        from .demo import run
    except ImportError as e:
        print(f"lobfast demo needs the demo extra: pip install 'lobfast[demo]' ({e})", file=sys.stderr)
        return 1
    print("lobfast demo: " + ("your recordings" if a.data else "real Binance recordings bundled with the package"))
    try:
        t = time.perf_counter()
        paths = expand_paths(a.data) if a.data else [datasets.path(n) for n in datasets.DEMO_SETS[0][1]]
        md = read_binance(paths, symbol=a.symbol)
        print(summarize(md, time.perf_counter() - t, md.stats["bytes"]) + "\n")
        run(
            paths, a.out, symbol=a.symbol, sim_minutes=a.sim_minutes, epochs=a.epochs, seed=a.seed, quick=a.quick, md=md
        )
    except (OSError, ValueError) as e:  # LobError is a ValueError: bad files, too little data
        print(f"lobfast demo: {e}", file=sys.stderr)
        return 1
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
    st = run_convert(
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
    p = argparse.ArgumentParser(prog="lobfast index", description="Build (or check) the time index of files.")
    p.add_argument("paths", nargs="+", help="files, globs or a directory")
    p.add_argument("--index-dir", default=None, help="keep the .lfidx files here instead of next to the data")
    p.add_argument(
        "--checkpoints",
        action="store_true",
        help="raw Binance files: also make the book checkpoints that windows of them (read_binance(FILES, "
        "start=...)) replay from, in the order given",
    )
    p.add_argument("--symbol", default=None, help="with --checkpoints: the symbol the windows will read")
    _time_args(p)
    a = p.parse_args(argv)
    if a.checkpoints and a.index_dir is not None:
        p.error("--checkpoints keeps them in the sidecars next to the data, where read_binance looks: drop --index-dir")
    ti = TimeIndex(a.paths, format=a.format, ts_col=_ts_col(a.ts_col), unit=a.unit, index_dir=a.index_dir)
    print(ti)
    for f in ti.info():
        span = f"{fmt_ns(f['first_ts'])} -> {fmt_ns(f['last_ts'])}" if f["rows"] else "no rows"
        print(
            f"  {f['path']}: {f['status']}, {f['compression']}, {f['rows']:,} rows, {span}, "
            f"{f['entries']:,} entries, {f['frames']:,} frames"
        )
    if a.checkpoints:
        for path, n in prepare_windows(a.paths, symbol=a.symbol):
            what = "read from its start (gzip): no checkpoints" if n is None else f"{n:,} book checkpoints"
            print(f"  {path}: {what}")
    return 0


def collect(argv: list[str]) -> int:
    """Record Binance streams: ``lobfast collect --venue spot --symbols btcusdt --out DIR`` (see --help)."""
    return run_collector(argv)


def process(argv: list[str]) -> int:
    """Recordings -> a partitioned Parquet store (see lobfast.store.process)."""
    p = argparse.ArgumentParser(
        prog="lobfast process",
        description="Turn recordings (a lobfast-collect tree, files/globs of raw Binance lines, or Tardis CSVs) into a "
        "Hive-partitioned Parquet store: book, features, labels, bars, trades, quotes per venue, symbol and UTC "
        "day. Only partitions whose inputs or parameters changed are redone.",
    )
    p.add_argument(
        "src",
        nargs="+",
        help="a recorder tree (OUT/<venue>/<symbol>/*.zst), folders, files or globs (raw lines or Tardis CSVs)",
    )
    p.add_argument("--out", required=True, help="the store's folder")
    p.add_argument("--levels", type=int, default=10, help="book levels per side (default 10)")
    p.add_argument("--every", default="100ms", help="grid step of the book, dividing a day (default 100ms)")
    p.add_argument("--features", default="default", help="'default', 'none' or names: mid,ofi_10s,...")
    p.add_argument("--labels", default=None, help="label names: ret_<h>, smooth_<k>, smooth_mean_<k> (comma-separated)")
    p.add_argument("--bars", default=None, help="bar size for the bars table, e.g. 1s")
    run = p.add_mutually_exclusive_group()
    run.add_argument("--workers", type=int, default=None, help="local worker processes (default: every core)")
    run.add_argument("--scheduler", default=None, help="a Dask scheduler, tcp://HOST:PORT, instead of local workers")
    p.add_argument("--watch", action="store_true", help="follow a live recorder tree: process files once rotated")
    p.add_argument("--poll", type=float, default=1.0, help="seconds between looks with --watch (default 1)")
    p.add_argument("--rebuild", action="store_true", help="rewrite a store made with other parameters")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    a = p.parse_args(argv)
    client = None
    try:
        if a.scheduler:
            client = connect(a.scheduler)
        summary = run_process(
            a.src, a.out, levels=a.levels, every=a.every, features=None if a.features == "none" else a.features,
            labels=a.labels, bars=a.bars, workers=a.workers, client=client, watch=a.watch, rebuild=a.rebuild,
            quiet=a.quiet, poll=a.poll,
        )  # fmt: skip
    except (OSError, ValueError, ImportError) as e:  # LobError is a ValueError
        print(f"lobfast process: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lobfast process: stopped; partitions written so far are kept, the next run goes on", file=sys.stderr)
        return 130
    finally:
        if client is not None:
            client.close()
    print(summary)
    return 0 if summary.ok else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    commands = {"demo": demo, "info": info, "index": index, "convert": convert, "collect": collect, "process": process}
    if not argv or argv[0] not in commands:
        print(
            "usage: lobfast {demo | info FILES... | index FILES... | convert SRC DST | collect OPTIONS | "
            "process SRC... --out STORE}",
            file=sys.stderr,
        )
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
