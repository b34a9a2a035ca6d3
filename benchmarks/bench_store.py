"""The store: ``lobfast.store.process`` with the local pool, one process and a Dask cluster, and
the loop a researcher writes today.

Workload: simulated Binance spot recorder trees (``lobfast.sim``, the calibrated BTCUSDT flow
slowed down so that a day of a symbol is a few MB; ``SimMarket.write_tree``: hourly seekable
zstd files, a REST snapshot every 15 minutes), N symbols x 50 h from 22:00 (3 UTC days each:
2 full days and 2 hours).  Parameters: 10 levels on a 100 ms grid, lobfast's default features
(store spec: without ``ofi_cum``).

* local pool: ``process(tree, out, workers=2)`` (2 processes, forkserver);
* one process: ``process(tree, out, workers=1)`` (the tasks run one after the other in the caller);
* Dask: ``process(tree, out, client=Client(LocalCluster(n_workers=2, threads_per_worker=1)))``,
  the cluster started before timing;
* a loop: per file, ``read_binance(file)`` -> ``reconstruct(levels=10, every="100ms")`` ->
  ``features(book, trades)`` -> ``pyarrow.parquet.write_table`` of book and features (zstd), in
  one process.  Less work than the store (no warm-up across files, no day partitions, no
  trades/quotes tables, no manifest) and a different result (each file's book is unknown until
  its first snapshot); the time to beat.

Every store run starts from an empty folder (the files' time indexes are built by an untimed
first run).  Rounds interleaved (order rotating), median seconds.

    .venv/bin/python benchmarks/bench_store.py [--symbols N] [--rounds R] [--write]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

import lobfast  # noqa: E402
from lobfast import datasets, sim, store  # noqa: E402

PARAMS = dict(levels=10, every="100ms", features="default", quiet=True)


def make_tree(root: Path, symbols: int) -> list[str]:
    flow = sim.calibrate(lobfast.read_binance(datasets.path("spot_btcusdt_20240808")))
    rates = ["limit_rate", "limit_count", "cancel_rate", "cancel_count", "market_rate", "trade_rate"]
    rates += ["birth_rate", "join_rate", "death_rate", "mid_move_rate"]
    flow = dataclasses.replace(flow, **{r: getattr(flow, r) * 0.01 for r in rates})
    files = []
    for i in range(symbols):
        sym = "S" + "".join(chr(65 + int(c)) for c in f"{i:02d}") + "USDT"
        m = sim.simulate("50h", flow=flow, seed=i, update_every="1s", levels=20, symbol=sym, start="2024-01-01T22:00")
        files += m.write_tree(root, rotate="1h", snapshot_every="15min")
    return files


def researcher_loop(files: list[str], out: Path) -> None:
    """What one writes without the store: one Parquet per input file, in one process."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    spec = list(store.make_spec(10, "100ms").features)
    for path in files:
        md = lobfast.read_binance(path)
        book = lobfast.reconstruct(md.depth, levels=10, every="100ms")
        ff = lobfast.features(book, md.trades, spec=spec)
        cols = {"ts": book.ts, "valid": book.valid}
        for side in ("bid_px", "bid_sz", "ask_px", "ask_sz"):
            for k in range(10):
                cols[f"{side}_{k + 1}"] = getattr(book, side)[:, k]
        name = Path(path).parent.name + "_" + Path(path).name.replace(".zst", "")
        pq.write_table(pa.table(cols), out / f"{name}.book.parquet", compression="zstd")
        pq.write_table(ff.to_arrow(), out / f"{name}.features.parquet", compression="zstd")


def _ticks(pid: int) -> float:
    """CPU seconds of ``pid`` and of the children it has reaped (/proc/PID/stat utime..cstime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _cpu(client=None) -> float:
    """CPU seconds so far of this process, the pool's workers (children of the forkserver,
    which reaps them) and the Dask workers."""
    import multiprocessing.forkserver as fs

    total = time.process_time()
    pid = getattr(fs._forkserver, "_forkserver_pid", None)
    if pid:
        total += _ticks(pid)
    if client is not None:
        total += sum(client.run(time.process_time).values())
    return total


def _spin(n: int) -> float:
    t = time.perf_counter()
    s = 0
    for i in range(n):
        s += i
    return time.perf_counter() - t


def parallel_capacity(n: int = 20_000_000) -> float:
    """How much faster two CPU-bound processes finish than one after the other, now: about
    2 on an idle 2-core machine, 1 when other work leaves room for one process's worth."""
    import multiprocessing

    one = _spin(n)
    with multiprocessing.get_context("forkserver").Pool(2) as pool:
        pool.map(_spin, [1, 1])  # started
        t = time.perf_counter()
        pool.map(_spin, [n, n])
        two = time.perf_counter() - t
    return 2 * one / two


def run(symbols: int, rounds: int, tree: Path | None = None) -> dict:
    try:
        import distributed
    except ImportError:  # the dask extra: the other routes still run
        distributed = None

    load0 = os.getloadavg()[0]
    capacity = [parallel_capacity()]
    tmp = Path(tempfile.mkdtemp(prefix="bench-store-"))
    try:
        t = time.perf_counter()
        if tree is None:
            tree = tmp / "tree"
        if tree.exists():  # made by an earlier run (--tree)
            files = sorted(str(p) for p in tree.rglob("*.zst"))
        else:
            files = make_tree(tree, symbols)
        gen = time.perf_counter() - t
        size = sum(os.path.getsize(f) for f in files)
        first = store.process(tree, tmp / "warm", workers=2, **PARAMS)  # builds the time indexes
        assert first.ok, str(first)
        parts = first.written
        cluster = client = None
        if distributed is not None:
            cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0")
            client = distributed.Client(cluster)

        def pool(out):
            assert store.process(tree, out, workers=2, **PARAMS).written == parts

        def one(out):
            assert store.process(tree, out, workers=1, **PARAMS).written == parts

        def dask(out):
            assert store.process(tree, out, client=client, **PARAMS).written == parts

        def loop(out):
            out.mkdir()
            researcher_loop(files, out)

        tools = {"local pool (2 workers)": pool, "one process": one}
        if client is not None:
            tools["Dask LocalCluster (2 workers)"] = dask
        tools["loop: read_binance -> reconstruct -> features -> write_table per file"] = loop
        times: dict[str, list[float]] = {k: [] for k in tools}
        cpu: dict[str, list[float]] = {k: [] for k in tools}
        loads: list[float] = []
        names = list(tools)
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                out = tmp / f"out-{r}-{names.index(name)}"
                c, t = _cpu(client), time.perf_counter()
                tools[name](out)
                times[name].append(time.perf_counter() - t)
                cpu[name].append(_cpu(client) - c)
                loads.append(os.getloadavg()[0])
                shutil.rmtree(out)
        if client is not None:
            client.close()
            cluster.close()
        capacity.append(parallel_capacity())
        return {
            "symbols": symbols,
            "partitions": parts,
            "files": len(files),
            "mb": size / 1e6,
            "rows": first.rows,
            "generate_s": gen,
            "times": times,
            "cpu": cpu,
            "load": (load0, os.getloadavg()[0]),
            "loads": loads,
            "capacity": capacity,
            "cores": len(os.sched_getaffinity(0)),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def section(r: dict) -> str:
    med = {k: statistics.median(v) for k, v in r["times"].items()}
    pool = med["local pool (2 workers)"]
    lines = [
        "## store",
        "",
        f"- Workload (`benchmarks/bench_store.py`): {r['symbols']} simulated spot symbols x 50 h (from 22:00: "
        f"3 UTC days each) as a recorder tree of {r['files']} hourly seekable zstd files ({r['mb']:.1f} MB), "
        f"a REST snapshot every 15 minutes -> {r['partitions']} partitions; 10 levels on a 100 ms grid and the "
        "default features (the store's: without `ofi_cum`); the store also writes trades and quotes "
        f"({', '.join(f'{n:,} {t}' for t, n in r['rows'].items())} rows).",
        "- Each store run starts from an empty folder (time indexes built by an untimed first run); the "
        "Dask cluster is started before timing. The loop does less (see the module's notes): one Parquet "
        "per file, no warm-up across files, no trades/quotes, no manifest.",
        f"- {len(next(iter(r['times'].values())))} interleaved rounds, median; {r['cores']} cores.",
        "",
        "| route | seconds | partitions/s | time / local pool's | CPU s (all processes) |",
        "|---|---|---|---|---|",
    ]
    for k, v in med.items():
        c = statistics.median(r["cpu"][k])
        lines.append(f"| {k} | {v:.2f} | {r['partitions'] / v:.2f} | {v / pool:.2f}x | {c:.2f} |")
    one, dask = med["one process"], med.get("Dask LocalCluster (2 workers)")
    loop = [v for k, v in med.items() if k.startswith("loop")][0]
    overhead = "not run (no dask.distributed)" if dask is None else f"{(dask / pool - 1) * 100:+.0f} %"
    lines += [
        "",
        f"Targets: pool vs one process >= 1.8x: {one / pool:.2f}x; Dask overhead vs the pool <= 15 %: "
        f"{overhead}; vs the loop >= 2x: {loop / pool:.2f}x.  Load average (1 min) at start / end: "
        f"{r['load'][0]:.2f} / {r['load'][1]:.2f}, after each timed run {min(r['loads']):.1f}..{max(r['loads']):.1f} "
        "(other work on the machine shares its cores and memory). CPU: this process, plus the pool's workers "
        "(reaped by the forkserver) and the Dask workers; the timed pool runs reuse the forkserver the untimed "
        "first run started (it imports lobfast and pyarrow once per calling process). Parallel capacity "
        f"(two CPU-bound processes against one after the other) at start / end: {r['capacity'][0]:.2f}x / "
        f"{r['capacity'][1]:.2f}x: no route can run faster than one process by more than this.",
        "",
    ]
    return "\n".join(lines)


def write(text: str) -> None:
    """Put the section into RESULTS.md in place of an earlier one (before the total time)."""
    path = BENCH / "RESULTS.md"
    body = path.read_text()
    body = re.sub(r"## store\n.*?(?=\n## |\nTotal benchmark time|\Z)", "", body, flags=re.S).rstrip("\n") + "\n"
    if "\nTotal benchmark time" in body:
        head, _, tail = body.rpartition("\nTotal benchmark time")
        body = head.rstrip("\n") + "\n\n" + text + "\nTotal benchmark time" + tail
    else:
        body += "\n" + text
    path.write_text(body)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--write", action="store_true", help="put the section into benchmarks/RESULTS.md")
    ap.add_argument("--tree", type=Path, help="keep the simulated recordings here (made once, reused after)")
    a = ap.parse_args()
    text = section(run(a.symbols, a.rounds, a.tree))
    print(text)
    if a.write:
        write(text)


if __name__ == "__main__":
    main()
