"""One streamed day: a Binance USD-M raw .zst -> book (10 levels, 100 ms) -> default features.

The input is the real 6-minute BTCUSDT USD-M recording tiled to ``--hours`` (24 by default;
benchmarks/datagen/binance_tile.py shifts times and update ids so the depth stream stays
continuous) and written as seekable zstd with ``lobfast.convert`` (1 s frames), once, into
benchmarks/.data/ (or ``--data``).  Each configuration runs in its own process, so its
peak RSS is its own:

* ``parse``: ``iter_binance`` alone (decompress + parse), chunks dropped;
* ``day``: ``iter_binance`` -> ``BookBuilder(10, every="100ms").feed`` per chunk -> at the
  end ``lobfast.features`` (default spec, with the trades) over the day's book rows.

with ``threads=1`` (one line after the other) and ``threads=None`` (all CPUs).  Reported per
stage: wall and CPU seconds (``time.process_time``: what a loaded machine does not inflate,
but the sum over threads), the main thread's CPU (``time.thread_time``), peak RSS (the
process's ``ru_maxrss``), and ``os.getloadavg()``.  A span shorter than a day is
extrapolated linearly to 24 h (every stage is linear in the input), and says so.

    .venv/bin/python benchmarks/bench_day.py [--hours 24] [--rounds 1] [--keep] [--side ROUNDS] [--store]

``--side 5`` times decode+parse alone, threads=1 and 2 interleaved in one process (the
figures of PROFILE.md's "read_binance on all cores").  ``--whole 5`` times
``lobfast.read_binance`` of the whole file into memory, each call in a fresh process (what a
script or a new kernel pays: every output page is fresh memory), threads=1 and 2 interleaved;
``--root DIR`` imports lobfast from another checkout (an A/B of two builds).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
if __name__ == "__main__":
    sys.path[:0] = [str(BENCH.parent), str(BENCH)]

import numpy as np  # noqa: E402

import lobfast  # noqa: E402
from lobfast import datasets  # noqa: E402
from lobfast.reading import cpu_threads  # noqa: E402

HOUR = 3600 * 10**9
CHUNK_ROWS = 1_000_000


def day_file(hours: float, data: Path) -> Path:
    """The tiled recording covering `hours`, as seekable zstd (generated once)."""
    from datagen.binance_tile import Tiler

    text = gzip.decompress(datasets.path("usdm_btcusdt_20240808").read_bytes())
    tiler = Tiler(text)
    copies = int(np.ceil(hours * HOUR / tiler.ns_step))
    path = data / f"usdm_tiled_{copies}.zst"
    if path.exists():
        return path
    data.mkdir(parents=True, exist_ok=True)
    plain = data / f"usdm_tiled_{copies}.txt.tmp"
    t = time.perf_counter()
    with open(plain, "wb") as f:
        for c in range(copies):
            f.write(tiler.copy(c))
    tmp = path.with_suffix(".tmp.zst")
    lobfast.convert(plain, tmp, frame="1s", level=3)
    plain.unlink()
    tmp.replace(path)
    took = time.perf_counter() - t
    print(f"wrote {path} ({path.stat().st_size / 1e9:.2f} GB compressed, {copies} copies) in {took:.0f} s")
    return path


class Clock:
    """Wall, process CPU and main-thread CPU seconds spent inside `with` blocks of a stage."""

    def __init__(self) -> None:
        self.wall = self.cpu = self.main = 0.0

    def __enter__(self):
        self._t = (time.perf_counter(), time.process_time(), time.thread_time())
        return self

    def __exit__(self, *exc):
        w, c, m = self._t
        self.wall += time.perf_counter() - w
        self.cpu += time.process_time() - c
        self.main += time.thread_time() - m


def _concat(parts: list, cls):
    cols = [p.columns for p in parts if len(p)]
    if not cols:
        return parts[0] if parts else None
    return cls(**{k: np.concatenate([c[k] for c in cols]) for k in cols[0]})


def run(path: str, what: str, threads: int | None) -> dict:
    """One configuration, in this process."""
    stages = {"parse": Clock(), "book": Clock(), "features": Clock()}
    total = Clock()
    rows = {"depth": 0, "trades": 0, "book": 0, "features": 0}
    span = [2**63 - 1, 0]  # receive times of the first and last depth row
    with total:
        it = lobfast.iter_binance(path, chunk_rows=CHUNK_ROWS, threads=threads)
        builder = lobfast.BookBuilder(10, every="100ms") if what == "day" else None
        books, trades = [], []
        while True:
            with stages["parse"]:
                md = next(it, None)
            if md is None:
                break
            rows["depth"] += len(md.depth)
            rows["trades"] += len(md.trades)
            if len(md.depth):
                lt = md.depth.columns["local_ts"]
                span[0] = min(span[0], int(lt[0]))
                span[1] = max(span[1], int(lt[-1]))
            if builder is not None:
                with stages["book"]:
                    books.append(builder.feed(md.depth))
                    trades.append(md.trades)
        if builder is not None:
            with stages["book"]:
                books.append(builder.finish())
                book = _concat(books, lobfast.BookSnapshots)
                del books
            rows["book"] = len(book)
            with stages["features"]:
                tr = _concat(trades, lobfast.Trades)
                del trades
                feats = lobfast.features(book, tr)
            rows["features"] = len(feats)
    out = {k: {"wall": c.wall, "cpu": c.cpu, "main": c.main} for k, c in stages.items()}
    out["total"] = {"wall": total.wall, "cpu": total.cpu, "main": total.main}
    out["rows"] = rows
    out["hours"] = (span[1] - span[0]) / HOUR
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["load"] = os.getloadavg()
    return out


STORE_ONE = r"""
import json, os, resource, shutil, sys, time
sys.path.insert(0, sys.argv[4])
from lobfast import store
src, out, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
shutil.rmtree(out, ignore_errors=True)
t = time.perf_counter()
s = store.process(src, out, workers=workers, quiet=True)
wall = time.perf_counter() - t
self_, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
print(json.dumps({"wall": wall, "ok": s.ok, "partitions": s.written, "rows": s.rows,
                  "rss_mb": max(self_.ru_maxrss, kids.ru_maxrss) / 1024, "load": os.getloadavg()}))
"""


def store_day(path: Path, rounds: int) -> None:
    """``lobfast.store.process`` of the file (10 levels, 100 ms, default features; trades and
    quotes tables), each run in a fresh process into an empty store: the local pool (all
    cores) and one process (``workers=1``, whose peak RSS is that of a process running the
    tasks; the pool's is the calling process's only, its workers are not its children).  The
    first run also builds the file's time index (reported on its own)."""
    out = path.parent / "store"
    for side in path.parent.glob(path.name + ".*"):
        side.unlink()  # the first run builds the index from nothing
    res: dict[str, list[dict]] = {"first run (builds the time index), pool": [], "pool": [], "one process": []}
    for r in range(rounds + 1):
        for name, workers in (("pool", 0), ("one process", 1)):
            if r == 0 and workers == 1:
                continue
            key = "first run (builds the time index), pool" if r == 0 else name
            proc = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    STORE_ONE,
                    str(path),
                    str(out),
                    str(workers or cpu_threads(None)),
                    str(BENCH.parent),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            one = json.loads(proc.stdout.strip().splitlines()[-1])
            assert one["ok"], one
            res[key].append(one)
            print(
                f"store {key:40} round {r}: wall {one['wall']:.1f} s, {one['partitions']} partitions, "
                f"peak RSS {one['rss_mb']:,.0f} MB, rows {one['rows']}, load {tuple(round(x, 1) for x in one['load'])}"
            )
    shutil.rmtree(out, ignore_errors=True)
    for key, v in res.items():
        rss = max(x["rss_mb"] for x in v)
        print(f"store {key}: median wall {np.median([x['wall'] for x in v]):.1f} s, peak RSS {rss:,.0f} MB")


WHOLE_ONE = """
import json, os, resource, sys, time
sys.path.insert(0, sys.argv[3])
import lobfast
w, c = time.perf_counter(), time.process_time()
md = lobfast.read_binance(sys.argv[1], threads=int(sys.argv[2]))
print(json.dumps({"wall": time.perf_counter() - w, "cpu": time.process_time() - c,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rows": len(md.depth), "load": os.getloadavg()}))
"""


def whole_reads(path: str, rounds: int, roots: list[str]) -> None:
    """``read_binance`` of the whole file, each call in a fresh process, threads=1 and 2 (and
    each root) interleaved: medians of wall and CPU, the largest peak RSS."""
    res: dict[tuple[str, int], list[dict]] = {}
    for r in range(rounds):
        for root in roots:
            for t in (1, 2):
                proc = subprocess.run(
                    [sys.executable, "-c", WHOLE_ONE, path, str(t), root], capture_output=True, text=True, check=True
                )
                one = json.loads(proc.stdout.strip().splitlines()[-1])
                res.setdefault((root, t), []).append(one)
                print(
                    f"whole read, {root}, threads={t}, round {r}: wall {one['wall']:.2f} s, CPU {one['cpu']:.2f} s, "
                    f"peak RSS {one['rss_mb']:,.0f} MB, {one['rows']:,} depth rows, "
                    f"load {tuple(round(x, 1) for x in one['load'])}"
                )
    for (root, t), v in res.items():
        print(
            f"whole read, {root}, threads={t}: median wall {np.median([x['wall'] for x in v]):.2f} s, "
            f"CPU {np.median([x['cpu'] for x in v]):.2f} s, peak RSS {max(x['rss_mb'] for x in v):,.0f} MB "
            f"({len(v)} processes)"
        )


def side_by_side(path: str, rounds: int) -> None:
    """decode+parse alone, threads=1 and 2 interleaved in this process: medians of CPU,
    calling-thread CPU and wall, and what two quiet cores would give from the CPU seconds."""
    res: dict[int, list[tuple[float, float, float]]] = {1: [], 2: []}
    for _ in range(rounds):
        for t in (1, 2):
            c = Clock()
            with c:
                for _md in lobfast.iter_binance(path, chunk_rows=CHUNK_ROWS, threads=t):
                    pass
            res[t].append((c.cpu, c.main, c.wall))
    med = {t: [float(np.median(x)) for x in zip(*v)] for t, v in res.items()}
    for t, (cpu, main, wall) in med.items():
        print(f"parse threads={t}: CPU {cpu:.3f} s, calling thread {main:.3f} s, wall {wall:.3f} s ({rounds} rounds)")
    best = med[1][0] / max(med[2][1], med[2][0] / 2)
    print(f"two quiet cores, from CPU seconds: {best:.2f}x; load {os.getloadavg()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--data", type=Path, default=BENCH / ".data")
    ap.add_argument("--keep", action="store_true", help="keep the generated file")
    ap.add_argument("--side", type=int, default=0, metavar="ROUNDS", help="only decode+parse, 1 vs 2 threads")
    ap.add_argument("--store", action="store_true", help="the day into the store (lobfast.store.process) instead")
    ap.add_argument("--whole", type=int, default=0, metavar="ROUNDS", help="whole-file reads, fresh processes")
    ap.add_argument("--root", action="append", default=[], help="with --whole: import lobfast from here (repeatable)")
    ap.add_argument("--one", nargs=3, metavar=("PATH", "WHAT", "THREADS"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        path, what, threads = a.one
        print(json.dumps(run(path, what, None if threads == "all" else int(threads))))
        return
    path = day_file(a.hours, a.data)
    if a.store:
        try:
            store_day(path, a.rounds)
        finally:
            if not a.keep:
                path.unlink(missing_ok=True)
        return
    if a.whole:
        try:
            whole_reads(str(path), a.whole, a.root or [str(BENCH.parent)])
        finally:
            if not a.keep:
                path.unlink(missing_ok=True)
        return
    if a.side:
        try:
            side_by_side(str(path), a.side)
        finally:
            if not a.keep:
                path.unlink(missing_ok=True)
        return
    print(f"{path.name}: {path.stat().st_size / 1e6:,.0f} MB compressed; figures scaled to 24 h by the span read")
    print(f"CPUs: {cpu_threads(None)}; load before: {os.getloadavg()}")
    try:
        for what in ("parse", "day"):
            for threads in ("1", "all"):
                for r in range(a.rounds):
                    proc = subprocess.run(
                        [sys.executable, __file__, "--one", str(path), what, threads],
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    res = json.loads(proc.stdout.strip().splitlines()[-1])
                    scale = 24.0 / res["hours"]
                    stages = ", ".join(
                        f"{k} {v['wall'] * scale:.1f}/{v['cpu'] * scale:.1f}/{v['main'] * scale:.1f}"
                        for k, v in res.items()
                        if isinstance(v, dict) and "wall" in v and (what == "day" or k in ("parse", "total"))
                    )
                    print(
                        f"{what:5} threads={threads:3} round {r}: [wall/cpu/main-thread s, 24 h] {stages}; "
                        f"peak RSS {res['peak_rss_mb']:,.0f} MB; {res['hours']:.2f} h read (x{scale:.2f}); "
                        f"rows {res['rows']}; "
                        f"load {tuple(round(x, 1) for x in res['load'])}"
                    )
    finally:
        if not a.keep:
            path.unlink(missing_ok=True)
            for side in path.parent.glob(path.name + ".*"):
                side.unlink()


if __name__ == "__main__":
    main()
