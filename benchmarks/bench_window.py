"""A late window of a day-long recording with one snapshot: how long until it has its book.

The input is a day of Binance USD-M BTCUSDT raw lines made by tiling the real 6-minute
recording (benchmarks/datagen/binance_tile.py: times and update ids shifted so the depth
stream stays continuous, the REST snapshot only at the start), written once into
benchmarks/.data/ (plain text; ``--zst`` also converts it to seekable zstd).  With the
file indexed, it times ``lobfast.read_binance(file, start=23:00, end=23:01)`` (counted
from the file's first line), which opens with the book as it stood at 23:00:

* with book checkpoints (every ``lobfast.replay.CHECKPOINT_EVERY``, 5 min by default), the
  seek-back replays at most one interval;
* without (one checkpoint, after the snapshot at the start), it replays 23 hours;
* ``lobfast.book_at(file, t)`` at the same time.

The checkpoints are made by the first windowed read (timed once, "first window").  Every
window's book is checked equal to the no-checkpoint read's before timing.

    .venv/bin/python benchmarks/bench_window.py [--hours 24] [--rounds 7] [--zst]
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import time
from functools import partial
from pathlib import Path

BENCH = Path(__file__).resolve().parent
if __name__ == "__main__":
    sys.path[:0] = [str(BENCH.parent), str(BENCH)]

import numpy as np  # noqa: E402
from common import DATA, machine, md_table, median, spread, warm_page_cache  # noqa: E402
from datagen.binance_tile import Tiler  # noqa: E402

import lobfast  # noqa: E402
from lobfast import datasets, replay  # noqa: E402
from lobfast.timeindex import sidecar_path  # noqa: E402

SECOND = 10**9
HOUR = 3600 * SECOND


def day_file(hours: float) -> Path:
    """The tiled recording covering `hours` (generated once)."""
    text = gzip.decompress(datasets.path("usdm_btcusdt_20240808").read_bytes())
    tiler = Tiler(text)
    copies = int(np.ceil(hours * HOUR / tiler.ns_step))
    path = DATA / f"usdm_tiled_{copies}.txt"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    t = time.perf_counter()
    with open(tmp, "wb") as f:
        for c in range(copies):
            f.write(tiler.copy(c))
    tmp.replace(path)
    print(f"wrote {path} ({path.stat().st_size / 1e9:.2f} GB, {copies} copies) in {time.perf_counter() - t:.0f} s")
    return path


def timed(fn, rounds: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds of each round (the CPU time is what a busy machine does
    not inflate: the read is one thread)."""
    wall, cpu = [], []
    for _ in range(rounds):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return wall, cpu


def row(size: str, what: str, t: tuple[list[float], list[float]], replayed: str = "") -> list[str]:
    wall, cpu = t
    return [size, what, f"{median(wall) * 1000:,.1f}", f"±{spread(wall):.0%}", f"{median(cpu) * 1000:,.1f}", replayed]


def same_book(a: lobfast.MarketData, b: lobfast.MarketData) -> None:
    for col, values in b.depth.columns.items():
        if not np.array_equal(a.depth.columns[col], values, equal_nan=True):
            raise SystemExit(f"the windows differ in depth.{col}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--at", type=float, default=23.0, help="window start, hours after the first line")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--zst", action="store_true", help="also a seekable zstd copy")
    args = ap.parse_args()
    plain = day_file(args.hours)
    files = [plain]
    if args.zst:
        zst = plain.with_suffix(".zst")
        if not zst.exists():
            lobfast.convert(plain, zst)
        files.append(zst)
    rows = []
    for path in files:
        side = Path(sidecar_path(str(path)))
        if side.exists():
            side.unlink()
        warm_page_cache(path)
        t = time.perf_counter()
        ti = lobfast.TimeIndex(path)
        build = time.perf_counter() - t
        t0 = ti.start + int(args.at * HOUR)
        t1 = t0 + 60 * SECOND
        window = partial(lobfast.read_binance, path, start=t0, end=t1)
        t = time.perf_counter()
        first = lobfast.read_binance(path, start=t0, end=t1)  # makes the checkpoints
        first_s = time.perf_counter() - t
        with_cp = timed(window, args.rounds)
        md = lobfast.read_binance(path, start=t0, end=t1)
        book_at = timed(partial(lobfast.book_at, path, t0 + 30 * SECOND), args.rounds)
        default = replay.CHECKPOINT_EVERY
        replay.CHECKPOINT_EVERY = 10**18  # only the checkpoint after the snapshot
        t = time.perf_counter()
        lobfast.read_binance(path, start=t0, end=t1)  # makes that one checkpoint (a full replay)
        none_first = time.perf_counter() - t
        without = timed(window, max(1, args.rounds // 3))
        slow = lobfast.read_binance(path, start=t0, end=t1)
        replay.CHECKPOINT_EVERY = default
        same_book(md, slow)
        same_book(first, slow)
        lobfast.read_binance(path, start=t0, end=t1)  # the checkpoints back for the next run
        kind = "zstd" if path.suffix == ".zst" else "plain"
        size = f"{os.path.getsize(path) / 1e9:.2f} GB {kind}"
        nbook = int(np.flatnonzero(md.depth.flags & lobfast.Flags.END_OF_MESSAGE)[0]) + 1
        rows += [
            [size, "index build (once)", f"{build * 1000:,.0f}", "", "", ""],
            [size, "first window: checkpoints made (once)", f"{first_s * 1000:,.0f}", "", "", ""],
            row(
                size,
                f"1-min window at {args.at:g} h, checkpoints every {default // SECOND // 60} min",
                with_cp,
                f"{md.stats['replayed_lines']:,}",
            ),
            row(size, f"book_at at {args.at:g} h + 30 s (window of ±1 min)", book_at),
            [size, "first window without checkpoints (once)", f"{none_first * 1000:,.0f}", "", "", ""],
            row(
                size,
                f"1-min window at {args.at:g} h, no checkpoint after the snapshot",
                without,
                f"{slow.stats['replayed_lines']:,}",
            ),
        ]
        print(f"{path.name}: book of {nbook:,} levels, {len(md.depth):,} depth rows in the window", flush=True)
    m = machine()
    print(f"\n{m['cpu']}, {m['cores']}; lobfast {m['lobfast']}\n")
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f}\n")
    print(md_table(["file", "what", "median ms", "spread", "cpu ms", "lines replayed"], rows))


if __name__ == "__main__":
    main()
