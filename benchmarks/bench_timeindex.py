"""Time-sliced loading: lobfast.TimeIndex vs a sparse index + pandas.read_csv, and zstd windows.

Workloads (benchmarks/datagen/timeindex_data.py, generated once into benchmarks/.data/):

* a time-sorted Tardis ``book_snapshot_10`` CSV of ~1.12 GB (3.2M rows, ~350 B/row, 10 ask
  and 10 bid levels a row, 3.7 days at ~10 rows/s) and 30-minute windows at random places;
* a day of raw Binance USD-M lines (~412 MB) rewritten by ``lobfast.convert`` as 1-second
  zstd frames, and as gzip for the sequential path.

Measured side by side in one run, page cache warm: index build (lobfast, the sparse index
of benchmarks/competitors/sparse_index.py, and reading every timestamp with polars / pandas), reopening
an indexed file, window loads (outputs checked equal on every window before timing), peak
memory of one window read in a fresh process, and what a window of a ``.zst`` file
decompresses.

    .venv/bin/python benchmarks/bench_timeindex.py [--rounds N] [--no-memory]
"""

from __future__ import annotations

import argparse
import bisect
import datetime
import gc
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

BENCH = Path(__file__).resolve().parent
if __name__ == "__main__":
    sys.path[:0] = [str(BENCH.parent), str(BENCH)]

import numpy as np  # noqa: E402
from common import (  # noqa: E402
    DATA,
    differences,
    machine,
    md_table,
    median,
    output_bytes,
    spread,
    time_side_by_side,
    warm_page_cache,
)
from competitors.sparse_index import SparseIndexPandas  # noqa: E402
from datagen.timeindex_data import book_csv, csv_time_span, raw_day_lines, windows  # noqa: E402

import lobfast  # noqa: E402
import lobfast.timeindex as lti  # noqa: E402

WINDOWS = 10  # CSV windows
RAW_WINDOWS = 5  # raw .zst windows
MINUTES = 30
BUILD_ROUNDS = 3
REOPEN_CALLS = 20
MEMORY_WINDOWS = 3  # fresh-process probes per tool
GZ_ROUNDS = 3  # the .gz window path decompresses from the start: ~0.5 s a call
WHOLE_ROUNDS = 3  # read the whole day, then filter: ~1.5 s a call
CSV_FRAME_BYTES = 1 << 20
RAW_FRAME = "1s"
TARGET_WINDOW, TARGET_BUILD, TARGET_BUILD_GBS, TARGET_REOPEN_MS, TARGET_MEM = 20.0, 10.0, 1.0, 50.0, 2.0

LOBFAST = "lobfast.TimeIndex"
LOBFAST_1T = "lobfast.TimeIndex, 1 thread"
LOBFAST_ALL = "lobfast.TimeIndex, all 44 columns"
LOBFAST_ZST = "lobfast.TimeIndex on the .zst CSV"
SPARSE = "sparse index + pandas.read_csv"
POLARS_TS = "polars.read_csv(columns=[ts]) + sorted check"
PANDAS_TS = "pandas.read_csv(usecols=[ts]) + sorted check"


def ok(flag: bool) -> str:
    return "met" if flag else "**not met**"


def loadavg() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


# ------------------------------------------------------------------------------ data
def _cached(dst: Path, src: Path, make: Callable[[Path], object]) -> Path:
    """``dst`` made from ``src`` once (again when src is newer); written to a temporary name first."""
    if dst.exists() and dst.stat().st_mtime >= src.stat().st_mtime:
        return dst
    tmp = dst.with_name(dst.name + ".tmp")
    make(tmp)
    tmp.replace(dst)
    side = Path(lti.sidecar_path(str(dst)))
    side.unlink(missing_ok=True)
    return dst


def raw_zst() -> Path:
    """The raw day as seekable zstd frames of one second (``lobfast.convert(frame="1s")``)."""
    src = raw_day_lines()
    return _cached(DATA / f"{src.stem}.frames{RAW_FRAME}.zst", src, lambda t: lobfast.convert(src, t, frame=RAW_FRAME))


def raw_gz() -> Path:
    """The raw day gzipped (level 6), which can only be decompressed from its start."""

    def make(tmp: Path) -> None:
        with open(src, "rb") as fin, gzip.open(tmp, "wb", compresslevel=6) as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)

    src = raw_day_lines()
    return _cached(DATA / f"{src.name}.gz", src, make)


def csv_zst() -> Path:
    """The book CSV as zstd frames of at most 1 MiB of text (no time limit per frame)."""
    src = book_csv()
    return _cached(
        DATA / f"{src.name}.frames1MiB.zst",
        src,
        lambda t: lobfast.convert(src, t, frame="1d", frame_bytes=CSV_FRAME_BYTES),
    )


def drop_sidecar(path: Path) -> None:
    Path(lti.sidecar_path(str(path))).unlink(missing_ok=True)


# ------------------------------------------------------------------------------ tools
def numeric_columns(path: Path) -> list[str]:
    """The columns both sides read: all but the text columns exchange and symbol."""
    with open(path, "rb") as f:
        header = f.readline().decode().rstrip("\r\n").split(",")
    return [c for c in header if c not in ("exchange", "symbol")]


def lobfast_window(ti: lobfast.TimeIndex, start_us: int, end_us: int, columns) -> dict[str, np.ndarray]:
    return ti.read(start_us * 1000, end_us * 1000, columns=columns)


def lobfast_window_1t(ti: lobfast.TimeIndex, start_us: int, end_us: int, columns) -> dict[str, np.ndarray]:
    """The same read on the calling thread only: every window is below the per-thread minimum."""
    keep = lti.MIN_ROWS_PER_THREAD
    lti.MIN_ROWS_PER_THREAD = 1 << 62
    try:
        return ti.read(start_us * 1000, end_us * 1000, columns=columns)
    finally:
        lti.MIN_ROWS_PER_THREAD = keep


def polars_timestamps(path: Path) -> np.ndarray:
    import polars as pl

    ts = pl.read_csv(path, columns=["timestamp"])["timestamp"].to_numpy()
    if not (np.diff(ts) >= 0).all():
        raise SystemExit(f"{path}: not sorted")
    return ts


def pandas_timestamps(path: Path) -> np.ndarray:
    import pandas as pd

    ts = pd.read_csv(path, usecols=["timestamp"], engine="c")["timestamp"].to_numpy()
    if not (np.diff(ts) >= 0).all():
        raise SystemExit(f"{path}: not sorted")
    return ts


def baseline_rows(sparse: SparseIndexPandas, start_us: int, end_us: int) -> int:
    """Rows the sparse index hands to pandas for a window: whole runs of ``every`` rows."""
    i = max(bisect.bisect_left(sparse.ts, start_us) - 1, 0)
    j = bisect.bisect_left(sparse.ts, end_us)
    return (j - i) * sparse.every if j < len(sparse.ts) else -1


def check_window(label: str, lob: dict[str, np.ndarray], expected: dict[str, np.ndarray], ts_scale: int = 1000) -> None:
    """Every expected column equal to lobfast's (timestamps: expected x ts_scale == lobfast's ns, for
    the baseline's us); stops the run if not."""
    bad = []
    for col, b in expected.items():
        a = lob.get(col)
        if a is None:
            bad.append(f"{col}: missing")
            continue
        if col.endswith("timestamp"):
            b = b * ts_scale
        if a.shape != b.shape:
            bad.append(f"{col}: {len(a)} rows, expected {len(b)}")
        elif a.dtype != b.dtype:
            bad.append(f"{col}: dtype {a.dtype}, expected {b.dtype}")
        elif not np.array_equal(a, b, equal_nan=a.dtype.kind == "f"):
            i = int(np.flatnonzero(a != b)[0])
            bad.append(f"{col}: row {i} is {a[i]!r}, expected {b[i]!r}")
    if bad:
        raise SystemExit(f"{label}: lobfast's window differs:\n  " + "\n  ".join(bad[:10]))


def _interleaved(tools: dict[str, tuple[Callable[[], object] | None, Callable[[], object]]], rounds: int):
    """Like common.time_side_by_side, with an untimed setup before each call (e.g. drop a sidecar)."""
    names = list(tools)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            prep, fn = tools[name]
            if prep is not None:
                prep()
            gc.collect()
            t0 = time.perf_counter()
            result = fn()
            times[name].append(time.perf_counter() - t0)
            del result
    return times


# ------------------------------------------------------------------------------ CSV
def csv_build_and_reopen(path: Path, zpath: Path, raw: Path, zraw: Path, graw: Path) -> dict:
    size = path.stat().st_size
    tools = {
        LOBFAST: (partial(drop_sidecar, path), partial(lobfast.TimeIndex, path)),
        SPARSE: (None, partial(SparseIndexPandas, path)),
        POLARS_TS: (None, partial(polars_timestamps, path)),
        PANDAS_TS: (None, partial(pandas_timestamps, path)),
    }
    times = _interleaved(tools, BUILD_ROUNDS)
    ti = lobfast.TimeIndex(path)  # the last build's sidecar
    info = ti.info()[0]
    c_pass = []
    for _ in range(BUILD_ROUNDS):  # the C pass alone, as the index reports it
        drop_sidecar(path)
        c_pass.append(lobfast.TimeIndex(path).info()[0]["build_seconds"])
    sparse = SparseIndexPandas(path)
    others = {}
    for label, p in (
        ("book CSV .zst (1 MiB frames)", zpath),
        ("raw day, plain", raw),
        ("raw day .zst (1 s frames)", zraw),
        ("raw day .gz", graw),
    ):
        t = _interleaved({LOBFAST: (partial(drop_sidecar, p), partial(lobfast.TimeIndex, p))}, BUILD_ROUNDS)[LOBFAST]
        i = lobfast.TimeIndex(p).info()[0]
        others[label] = {
            "path": p,
            "build_s": median(t),
            "file_bytes": i["size"],
            "text_bytes": i["d_size"],
            "entries": i["entries"],
            "frames": i["frames"],
            "rows": i["rows"],
        }
    reopen = {}
    for label, p in [("book CSV", path)] + [(k, v["path"]) for k, v in others.items()]:
        ts = []
        for _ in range(REOPEN_CALLS):
            gc.collect()
            t0 = time.perf_counter()
            again = lobfast.TimeIndex(p)
            ts.append(time.perf_counter() - t0)
            if again.info()[0]["status"] != "loaded":
                raise SystemExit(f"{p}: reopening rebuilt the index ({again.info()[0]['status']})")
        reopen[label] = median(ts)
    return {
        "bytes": size,
        "rows": info["rows"],
        "entries": info["entries"],
        "sidecar_bytes": Path(lti.sidecar_path(str(path))).stat().st_size,
        "sparse_entries": len(sparse.ts),
        "build_s": {k: median(v) for k, v in times.items()},
        "build_spread": {k: spread(v) for k, v in times.items()},
        "c_pass_s": median(c_pass),
        "others": others,
        "reopen_s": reopen,
    }


def csv_windows(path: Path, zpath: Path, wins: list[tuple[int, int]], rounds: int) -> dict:
    cols = numeric_columns(path)
    ti = lobfast.TimeIndex(path)
    tz = lobfast.TimeIndex(zpath)
    sparse = SparseIndexPandas(path)
    per: dict[str, list[float]] = {t: [] for t in (LOBFAST, LOBFAST_1T, LOBFAST_ALL, LOBFAST_ZST, SPARSE)}
    rows, parsed, text, out_b, zdec, ztext, zfile = [], [], [], [], [], [], tz.info()[0]["size"]
    for k, (s, e) in enumerate(wins):
        lob = lobfast_window(ti, s, e, cols)
        check_window(f"window {k}", lob, sparse.read(s, e))
        text.append(ti.last_read["text_bytes"])
        check_window(f"window {k}, 1 thread", lobfast_window_1t(ti, s, e, cols), sparse.read(s, e))
        allc = lobfast_window(ti, s, e, None)
        check_window(f"window {k}, all columns", allc, lob, ts_scale=1)
        zst = lobfast_window(tz, s, e, cols)
        check_window(f"window {k}, .zst CSV", zst, lob, ts_scale=1)
        zdec.append(tz.last_read["decompressed_bytes"])
        ztext.append(tz.last_read["text_bytes"])
        rows.append(len(lob["timestamp"]))
        parsed.append(baseline_rows(sparse, s, e))
        out_b.append(sum(a.nbytes for a in lob.values()))
        if not rows[-1]:
            raise SystemExit(f"window {k} is empty")
        del lob, allc, zst
        times = time_side_by_side(
            {
                LOBFAST: partial(lobfast_window, ti, s, e, cols),
                LOBFAST_1T: partial(lobfast_window_1t, ti, s, e, cols),
                LOBFAST_ALL: partial(lobfast_window, ti, s, e, None),
                LOBFAST_ZST: partial(lobfast_window, tz, s, e, cols),
                SPARSE: partial(sparse.read, s, e),
            },
            rounds,
        )
        for t, v in times.items():
            per[t].append(median(v))
    return {
        "windows": wins,
        "rounds": rounds,
        "columns": len(cols),
        "per_window_s": per,
        "median_s": {t: median(v) for t, v in per.items()},
        "rows": rows,
        "baseline_parsed_rows": parsed,
        "text_bytes": text,
        "output_bytes": out_b,
        "zst_decompressed": zdec,
        "zst_extra": [d - t for d, t in zip(zdec, ztext)],
        "zst_file_bytes": zfile,
        "threads": min(os.cpu_count() or 1, min(rows) // lti.MIN_ROWS_PER_THREAD),
    }


# ------------------------------------------------------------------------------ raw .zst
def _frames_touched(f: lti.FileIndex, t0: int, t1: int) -> tuple[int, int]:
    """(compressed bytes, frames) of the zstd frames that hold the window's lines."""
    p0, p1 = f.window(t0, t1)
    starts = f.entries[f.entries["d_off"] == f.entries["d_at"]]  # entries at frame starts
    k0 = int(np.searchsorted(starts["d_off"], p0["d_at"], "left"))
    k1 = int(np.searchsorted(starts["d_off"], p1["d_off"], "left"))  # first frame starting at or after the end
    c_end = int(starts["c_off"][k1]) if k1 < len(starts) else int(f.info["c_size"])
    return c_end - int(starts["c_off"][k0]), k1 - k0


def _mask_tables(md: lobfast.MarketData, t0: int, t1: int) -> dict:
    out = {}
    for t in ("depth", "trades", "agg_trades", "quotes"):
        cols = getattr(md, t).columns
        keep = (cols["local_ts"] >= t0) & (cols["local_ts"] < t1)
        out[t] = {c: a[keep] for c, a in cols.items()}
    return out


def raw_windows(rounds: int) -> dict:
    plain, zst, gz = raw_day_lines(), raw_zst(), raw_gz()
    ti = lobfast.TimeIndex(zst)
    tg = lobfast.TimeIndex(gz)
    f = ti.files[0]
    first_us, last_us = ti.start // 1000, ti.end // 1000
    wins = [(s * 1000, e * 1000) for s, e in windows(first_us, last_us, n=RAW_WINDOWS, minutes=MINUTES)]
    starts = f.entries[f.entries["d_off"] == f.entries["d_at"]]
    frame_text = np.diff(np.append(starts["d_off"], f.info["d_size"]))
    whole_t = []
    for _ in range(WHOLE_ROUNDS):
        gc.collect()
        t0 = time.perf_counter()
        whole = lobfast.read_binance(zst)
        whole_t.append(time.perf_counter() - t0)
    out = []
    for k, (s, e) in enumerate(wins):
        ref = lobfast.read_binance(plain, start=s, end=e)
        got = lobfast.read_binance(zst, start=s, end=e)
        gz_md = lobfast.read_binance(gz, start=s, end=e)
        tg_md = tg.read(s, e)
        tg_dec = tg.last_read["decompressed_bytes"]
        for label, other in (
            (".zst", got),
            (".gz", gz_md),
            ("TimeIndex(.zst).read", ti.read(s, e)),
            ("TimeIndex(.gz).read", tg_md),
        ):
            diffs = differences(ref, other)
            if diffs:
                raise SystemExit(
                    f"raw window {k}: {label} differs from the plain text's:\n  " + "\n  ".join(diffs[:10])
                )
        masked = _mask_tables(whole, s, e)
        agg_same = all(
            np.array_equal(masked["agg_trades"][c], ref.agg_trades.columns[c]) for c in ref.agg_trades.columns
        )
        c_bytes, frames = _frames_touched(f, s, e)
        times = time_side_by_side(
            {
                "zst": partial(lobfast.read_binance, zst, start=s, end=e),
                "plain": partial(lobfast.read_binance, plain, start=s, end=e),
                "mask": partial(_mask_tables, whole, s, e),
            },
            rounds,
        )
        gz_t = time_side_by_side(
            {"gz": partial(lobfast.read_binance, gz, start=s, end=e), "tg": partial(tg.read, s, e)}, GZ_ROUNDS
        )
        t0 = time.perf_counter()  # how much of TimeIndex(.gz).read finding the window's two ends takes
        tg.files[0].window(s, e)
        tg_locate = time.perf_counter() - t0
        out.append(
            {
                "window": (s, e),
                "depth_rows": len(got.depth),
                "agg_trades": len(got.agg_trades),
                "output_bytes": output_bytes(got),
                "window_text_bytes": got.stats["bytes"],
                "decompressed_bytes": got.stats["decompressed_bytes"],
                "compressed_bytes": c_bytes,
                "frames": frames,
                "extra_decompressed": got.stats["decompressed_bytes"] - got.stats["bytes"],
                "gz_decompressed_bytes": gz_md.stats["decompressed_bytes"],
                "gz_outside_window": gz_md.stats["outside_window"],
                "tg_decompressed_bytes": tg_dec,
                "masked_depth_rows": len(masked["depth"]["ts"]),
                "masked_agg_equal": agg_same,
                "zst_s": median(times["zst"]),
                "plain_s": median(times["plain"]),
                "gz_s": median(gz_t["gz"]),
                "tg_s": median(gz_t["tg"]),
                "tg_locate_s": tg_locate,
                "whole_mask_s": median(whole_t) + median(times["mask"]),
            }
        )
        del ref, got, gz_md, tg_md, masked
    return {
        "text_bytes": f.info["d_size"],
        "zst_bytes": f.size,
        "gz_bytes": gz.stat().st_size,
        "lines": f.info["lines"],
        "frames": len(starts),
        "frame_text_mean": float(frame_text.mean()),
        "frame_text_max": int(frame_text.max()),
        "whole_s": median(whole_t),
        "rounds": rounds,
        "windows": out,
    }


# ------------------------------------------------------------------------------ memory
def _probe(tool: str, path: str, start: int, end: int) -> None:
    """In a fresh interpreter: open the index, then the peak RSS of one window read above
    the RSS at that point (VmHWM reset there, as benchmarks/memprobe.py does)."""
    from memprobe import reset_hwm, rss_now, vm_hwm

    if tool == "sparse":  # times in us
        index = SparseIndexPandas(path)

        def read():
            return index.read(start, end)
    elif tool == "lobfast":  # times in us
        ti = lobfast.TimeIndex(path)
        cols = numeric_columns(Path(path))

        def read():
            return ti.read(start * 1000, end * 1000, columns=cols)
    elif tool == "lobfast-raw":  # times in ns
        ti = lobfast.TimeIndex(path)

        def read():
            return ti.read(start, end)
    else:
        raise SystemExit(f"unknown probe {tool!r}")
    gc.collect()
    base = rss_now()
    reset = reset_hwm()
    out = read()
    peak = vm_hwm()
    if peak is None:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if isinstance(out, dict):
        nbytes, rows = sum(a.nbytes for a in out.values()), len(out["timestamp"])
    else:
        nbytes, rows = output_bytes(out), len(out.depth) + len(out.agg_trades)
    print(
        json.dumps(
            {
                "tool": tool,
                "rss_after_open": base,
                "peak_extra": max(0, peak - base),
                "output_bytes": nbytes,
                "rows": rows,
                "hwm_reset": reset,
            }
        )
    )


def probe(tool: str, path: Path, start: int, end: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--probe", tool, str(path), str(start), str(end)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=str(BENCH))
    if out.returncode != 0:
        raise SystemExit(f"probe {tool} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def memory(path: Path, wins: list[tuple[int, int]], raw_wins: list[tuple[int, int]]) -> list[dict]:
    res = []
    for k, (s, e) in enumerate(wins[:MEMORY_WINDOWS]):
        for tool in ("lobfast", "sparse"):
            res.append({"window": k, **probe(tool, path, s, e)})
    for k, (s, e) in enumerate(raw_wins[:1]):
        res.append({"window": k, **probe("lobfast-raw", raw_zst(), s, e)})
    return res


# ------------------------------------------------------------------------------ all
def speed(rounds: int = 7, with_memory: bool = True) -> dict:
    """Every measurement of this file, in one run."""
    load0 = loadavg()
    t_start = time.perf_counter()
    path, zpath, raw, zraw, graw = book_csv(), csv_zst(), raw_day_lines(), raw_zst(), raw_gz()
    warm_page_cache(path, zpath, raw, zraw, graw)
    first, last = csv_time_span(path)
    wins = windows(first, last, n=WINDOWS, minutes=MINUTES)
    with warnings.catch_warnings():  # TimeIndex(.gz) says, each time, that gzip cannot seek: measured here
        warnings.filterwarnings("ignore", "gzip files cannot be read from the middle", lobfast.LobWarning)
        build = csv_build_and_reopen(path, zpath, raw, zraw, graw)
        win = csv_windows(path, zpath, wins, max(5, rounds))
        rawr = raw_windows(max(5, rounds))
    mem = memory(path, wins, [w["window"] for w in rawr["windows"]]) if with_memory else []
    info = machine()
    return {
        "file": path.name,
        "span_us": (first, last),
        "build": build,
        "win": win,
        "raw": rawr,
        "memory": mem,
        "run": {
            "date": info["date"],
            "cpu": info["cpu"],
            "cores": info["cores"],
            "ram": info["ram"],
            "load": (load0, loadavg()),
            "seconds": time.perf_counter() - t_start,
        },
    }


def _utc(ns: int) -> str:
    return datetime.datetime.fromtimestamp(ns / 1e9, datetime.timezone.utc).strftime("%m-%d %H:%M")


def lines(r: dict) -> list[str]:
    b, w, raw, run = r["build"], r["win"], r["raw"], r["run"]
    size = b["bytes"]
    gb = size / 1e9
    bs = b["build_s"]
    lob_b = bs[LOBFAST]
    ts_fast = min((POLARS_TS, PANDAS_TS), key=lambda t: bs[t])
    days = (r["span_us"][1] - r["span_us"][0]) / 86400e6
    out = [
        "",
        "## Time-sliced loading (`lobfast.TimeIndex`) vs a sparse index + pandas",
        "",
        f"- Run (`benchmarks/bench_timeindex.py`): {run['date']}, {run['cpu']}, {run['cores']}, {run['ram']}; "
        f"1-min load average {run['load'][0]:.2f} at start / {run['load'][1]:.2f} at end; {run['seconds']:.0f} s.  "
        "Page cache warm (every file read once before timing); MB/GB = 10^6/10^9 bytes.",
        f"- Data (`benchmarks/datagen/timeindex_data.py`): a time-sorted Tardis `book_snapshot_10` CSV, **{gb:.2f} GB, "
        f"{b['rows']:,} rows, {size / b['rows']:.0f} B/row** (10 ask + 10 bid levels a row; the issue's "
        f"workload says ~300 B/row, ours is longer), {days:.1f} days at ~10 rows/s, microsecond timestamps.  "
        f"{WINDOWS} windows of {MINUTES} minutes at random places (`timeindex_data.windows`, seed 0).",
        "- Baseline (`benchmarks/competitors/sparse_index.py`, `SparseIndexPandas`): (timestamp, byte offset) of every "
        "100,000th row, found by counting newlines with NumPy in 64 MiB blocks (it parses only "
        f"{b['sparse_entries']} timestamps, so it cannot tell whether the file is sorted), kept in memory only; "
        "a window = seek to the entry before it, `pandas.read_csv(engine='c', nrows=..., usecols=<the "
        f"{w['columns']} numeric columns>, dtype given)` and a boolean filter.",
        f"- lobfast: `TimeIndex(path)` reads the whole file once in C, parses and checks **every** row's "
        f"timestamp (it refuses an unsorted file), keeps an entry every 64 KiB ({b['entries']:,} entries) and "
        f"saves them next to the file (`.lfidx`, {b['sidecar_bytes'] / 1e6:.2f} MB); a window = "
        f"`ti.read(start_ns, end_ns, columns=<the same {w['columns']}>)` parsed in C straight into the columns, "
        f"split over threads at index entries ({w['threads']} here).  Build timed with the sidecar removed "
        "first (untimed).",
        '- "parses every timestamp": the cheapest way to read every timestamp (what proving sortedness '
        "costs), no offsets kept: `polars.read_csv(columns=['timestamp'])` and `pandas.read_csv(usecols="
        "['timestamp'], engine='c')`, each followed by `(np.diff(ts) >= 0).all()`.",
        "",
        "### Index build and reopen",
        "",
    ]
    rows = []
    for tool in (LOBFAST, SPARSE, POLARS_TS, PANDAS_TS):
        rows.append(
            [
                tool,
                f"{bs[tool]:.3f}",
                f"±{b['build_spread'][tool] * 100:.0f}%",
                f"{gb / bs[tool]:.2f}",
                "1.0x" if tool == LOBFAST else f"{bs[tool] / lob_b:.1f}x",
                f"{b['reopen_s']['book CSV'] * 1e3:.2f}"
                if tool == LOBFAST
                else (f"{bs[tool] * 1e3:,.0f} (rebuild)" if tool == SPARSE else ""),
            ]
        )
    out.append(
        md_table(
            [
                f"book CSV, {gb:.2f} GB",
                f"build median of {BUILD_ROUNDS}, s",
                "spread",
                "GB/s",
                "time / lobfast's",
                f"reopen median of {REOPEN_CALLS}, ms",
            ],
            rows,
        )
    )
    out += [
        "",
        f"lobfast's C pass alone (`info()['build_seconds']`, median of {BUILD_ROUNDS}): {b['c_pass_s']:.3f} s = "
        f"{gb / b['c_pass_s']:.2f} GB/s (separate builds from the table's; the rest of `TimeIndex(path)` is the header "
        "sniff and writing the sidecar).",
        "",
        "lobfast on the other files (median of 3 builds; reopen median of 20):",
        "",
    ]
    rows = []
    for label, o in b["others"].items():
        rows.append(
            [
                label,
                f"{o['file_bytes'] / 1e6:,.1f}",
                f"{o['text_bytes'] / 1e6:,.1f}",
                f"{o['entries']:,}",
                f"{o['build_s']:.3f}",
                f"{o['text_bytes'] / o['build_s'] / 1e9:.2f}",
                f"{b['reopen_s'][label] * 1e3:.2f}",
            ]
        )
    out.append(
        md_table(
            ["file", "file MB", "text MB", "entries", "build s", "text GB/s", "reopen ms"],
            rows,
        )
    )
    reopen_ms = b["reopen_s"]["book CSV"] * 1e3
    r_sparse = bs[SPARSE] / lob_b
    r_ts = bs[ts_fast] / lob_b
    out += [
        "",
        f"- Build, lobfast vs the sparse index: **{r_sparse:.1f}x** (target >= {TARGET_BUILD:.0f}x: "
        f"{ok(r_sparse >= TARGET_BUILD)}).  The sparse index only counts newlines (NumPy, memory-bound) and "
        f"parses {b['sparse_entries']} timestamps; lobfast parses all {b['rows']:,}.",
        f"- Build, lobfast vs parsing every timestamp ({ts_fast}): **{r_ts:.1f}x** (against the same "
        f"{TARGET_BUILD:.0f}x: {ok(r_ts >= TARGET_BUILD)}).",
        f"- Build throughput from page cache: **{gb / lob_b:.2f} GB/s** (target >= {TARGET_BUILD_GBS:.0f} GB/s: "
        f"{ok(gb / lob_b >= TARGET_BUILD_GBS)}).",
        f"- Reopening the indexed CSV: **{reopen_ms:.2f} ms** (target < {TARGET_REOPEN_MS:.0f} ms: "
        f"{ok(reopen_ms < TARGET_REOPEN_MS)}); the sparse index has nothing to reopen and rebuilds "
        f"({bs[SPARSE] * 1e3:,.0f} ms, {bs[SPARSE] / b['reopen_s']['book CSV']:,.0f}x).",
        "",
        f"### {MINUTES}-minute windows of the CSV",
        "",
        f"Per window: median of {w['rounds']} interleaved reads of every tool; below, the median over the "
        f"{WINDOWS} windows of those medians.  Before timing, every column of every window is checked equal "
        "(lobfast ns == baseline us x 1000; floats bit for bit), also for the 1-thread, all-column and .zst "
        "reads; a difference stops the run.",
        "",
    ]
    med = w["median_s"]
    base = med[LOBFAST]
    rows_m = median(w["rows"])
    text_m = median(w["text_bytes"])
    tbl = []
    for tool in (LOBFAST, LOBFAST_1T, LOBFAST_ALL, LOBFAST_ZST, SPARSE):
        per = w["per_window_s"][tool]
        ratio = med[tool] / base
        tbl.append(
            [
                tool,
                f"{med[tool] * 1e3:,.1f}",
                f"{min(per) * 1e3:,.1f} - {max(per) * 1e3:,.1f}",
                f"{rows_m / med[tool] / 1e6:.2f}",
                f"{text_m / med[tool] / 1e6:,.0f}",
                f"{ratio:.1f}x",
                ok(ratio >= TARGET_WINDOW) if tool == SPARSE else "",
            ]
        )
    out.append(
        md_table(
            [
                "tool",
                "median ms",
                "windows' min - max ms",
                "window M rows/s",
                "window text MB/s",
                "time / lobfast's",
                f"target >= {TARGET_WINDOW:.0f}x",
            ],
            tbl,
        )
    )
    ratio = med[SPARSE] / base
    per_ratio = median([a / b for a, b in zip(w["per_window_s"][SPARSE], w["per_window_s"][LOBFAST])])
    zdec = w["zst_decompressed"]
    zextra = max(w["zst_extra"])
    pr = [x for x in w["baseline_parsed_rows"] if x > 0]
    out += [
        "",
        f"- Rows per window: median {rows_m:,.0f} (min {min(w['rows']):,}, max {max(w['rows']):,}); "
        f"text per window: median {text_m / 1e6:.2f} MB; output ({w['columns']} int64/float64 columns): median "
        f"{median(w['output_bytes']) / 1e6:.2f} MB.",
        f"- Window load, lobfast vs the sparse index + pandas: **{ratio:.1f}x** (target >= {TARGET_WINDOW:.0f}x: "
        f"{ok(ratio >= TARGET_WINDOW)}; median of the per-window ratios {per_ratio:.1f}x); on one thread: "
        f"{med[SPARSE] / med[LOBFAST_1T]:.1f}x "
        f"(threads give {med[LOBFAST_1T] / base:.2f}x on this {run['cores'].split()[0]}-core machine).",
        f"- The .zst CSV (`lobfast.convert(frame_bytes=1 MiB)`, {w['zst_file_bytes'] / 1e6:,.0f} MB): a window "
        f"decompresses median {median(zdec) / 1e6:.2f} MB (min {min(zdec) / 1e6:.2f}, max {max(zdec) / 1e6:.2f}) "
        f"of {b['others']['book CSV .zst (1 MiB frames)']['text_bytes'] / 1e9:.2f} GB of text, at most "
        f"{zextra / 1e6:.2f} MB beyond the window's own text (within one 1 MiB frame: "
        f"{ok(zextra <= CSV_FRAME_BYTES)}), and takes {med[LOBFAST_ZST] / base:.1f}x the plain file's time.",
    ]
    if pr:
        out.append(
            f"- Where the ratio comes from: the sparse index hands pandas whole runs of 100,000 rows, "
            f"{min(pr):,} - {max(pr):,} rows per window (median {median(pr):,.0f}) for ~{rows_m:,.0f} wanted, "
            f"i.e. {median(pr) / rows_m:.1f}x the rows; per row parsed, pandas runs at "
            f"{median(pr) / med[SPARSE] / 1e6:.2f} M rows/s and lobfast at {rows_m / base / 1e6:.2f} M rows/s "
            f"({rows_m / base / (median(pr) / med[SPARSE]):.1f}x)."
        )
    if r["memory"]:
        out += [
            "",
            "### Peak memory of one window read",
            "",
            "Fresh interpreter per probe (this file's `--probe` mode, the measure of `benchmarks/memprobe.py`): "
            "imports, open the index (lobfast: load the sidecar; the baseline: build its list), then VmHWM "
            "reset; peak extra = VmHWM after the read - RSS before it, against the bytes of the output arrays.",
            "",
        ]
        mrows = []
        for m in r["memory"]:
            out_b, extra = m["output_bytes"], m["peak_extra"]
            raw_probe = m["tool"] == "lobfast-raw"
            mrows.append(
                [
                    ("raw day .zst, " if raw_probe else "book CSV, ") + f"window {m['window']}",
                    {"lobfast": LOBFAST, "sparse": SPARSE, "lobfast-raw": "lobfast.TimeIndex(.zst).read"}[m["tool"]],
                    f"{m['rows']:,}",
                    f"{out_b / 1e6:.2f}",
                    f"{extra / 1e6:.2f}",
                    f"{extra / out_b:.2f}",
                    ok(extra <= TARGET_MEM * out_b) if m["tool"] != "sparse" else "",
                ]
            )
        out.append(
            md_table(
                ["window", "tool", "rows", "output MB", "peak extra MB", "peak / output", "target <= 2x output"],
                mrows,
            )
        )
        if not all(m["hwm_reset"] for m in r["memory"]):
            out += ["", "(VmHWM could not be reset here: the peaks include the imports.)"]
    out += [
        "",
        "### Raw `.zst`: a 30-minute window of a day-long file",
        "",
        f"- Data: a day of Binance USD-M BTCUSDT raw lines (`timeindex_data.raw_day_lines`: "
        f"{raw['lines']:,} lines, {raw['text_bytes'] / 1e6:,.1f} MB of text), written by `lobfast.convert(src, dst, "
        f"frame='1s')` as {raw['frames']:,} zstd frames (mean {raw['frame_text_mean'] / 1e3:.1f} KB of text, "
        f"max {raw['frame_text_max'] / 1e3:.1f} KB) + seek table: **{raw['zst_bytes'] / 1e6:,.1f} MB**; "
        f"gzip level 6: {raw['gz_bytes'] / 1e6:,.1f} MB.  {RAW_WINDOWS} windows of {MINUTES} minutes at random "
        "places.",
        f"- `lobfast.read_binance(zst, start=, end=)` (median of {raw['rounds']}); its output is checked equal "
        "(every table, column by column) to `read_binance(plain text, start=, end=)`, to the `.gz` read with "
        "start/end and to `TimeIndex(zst).read(start, end)`.  Decompressed = `md.stats['decompressed_bytes']`; "
        "compressed = the bytes of the frames holding the window (from the index).",
        "- Alternatives, on the gzip copy (gzip cannot restart mid-stream): `read_binance(gz, start=, end=)`, "
        "which reads .gz files without the index, so it decompresses and scans the whole file and keeps the "
        "window's lines; and `TimeIndex(gz).read(start, end)`, which decompresses from the start up to the "
        f"window's end (median of {GZ_ROUNDS} each); reading the whole .zst "
        f"(`read_binance(zst)`, {raw['whole_s'] * 1e3:,.0f} ms, median of {WHOLE_ROUNDS}) and then keeping "
        "`start <= local_ts < end` of every table (the depth rows of that differ: the whole day is synced "
        "from its first snapshot, the window from the first snapshot inside it; the aggTrades are compared).",
        "",
    ]
    rrows = []
    for x in raw["windows"]:
        s, e = x["window"]
        rrows.append(
            [
                f"{_utc(s)} - {_utc(e)}",
                f"{x['depth_rows']:,} / {x['agg_trades']:,}",
                f"{x['window_text_bytes'] / 1e6:.2f}",
                f"{x['decompressed_bytes'] / 1e6:.2f} ({x['decompressed_bytes'] / raw['text_bytes'] * 100:.1f}%)",
                f"{x['compressed_bytes'] / 1e6:.2f} ({x['compressed_bytes'] / raw['zst_bytes'] * 100:.1f}%)",
                f"{x['zst_s'] * 1e3:.1f}",
                f"{x['plain_s'] * 1e3:.1f}",
                f"{x['gz_s'] * 1e3:,.0f} ({x['gz_decompressed_bytes'] / 1e6:,.0f} MB)",
                f"{x['tg_s'] * 1e3:,.0f} ({x['tg_decompressed_bytes'] / 1e6:,.0f} MB)",
                f"{x['whole_mask_s'] * 1e3:,.0f}",
            ]
        )
    out.append(
        md_table(
            [
                "window (UTC, 2024-)",
                "depth rows / aggTrades",
                "window text MB",
                "decompressed MB (of all text)",
                "compressed MB read (of the .zst)",
                ".zst ms",
                "plain text ms",
                "read_binance(.gz, start, end) ms (decompressed)",
                "TimeIndex(.gz).read ms (decompressed)",
                "whole .zst + filter ms",
            ],
            rrows,
        )
    )
    ws = raw["windows"]
    extra = max(x["extra_decompressed"] for x in ws)
    only = all(x["extra_decompressed"] <= raw["frame_text_max"] for x in ws)
    zst_m = median([x["zst_s"] for x in ws])
    dec_m = median([x["decompressed_bytes"] for x in ws])
    late = max(ws, key=lambda x: x["tg_decompressed_bytes"])
    out += [
        "",
        f"- Only the window's frames are decompressed: at most {extra / 1e3:.1f} KB beyond the window's own "
        f"lines on any window (the head of the first frame, before the window starts; the largest frame is "
        f"{raw['frame_text_max'] / 1e3:.1f} KB): {ok(only)}.  Median {dec_m / 1e6:.2f} "
        f"MB decompressed of a {raw['zst_bytes'] / 1e6:,.1f} MB file ({raw['text_bytes'] / 1e6:,.1f} MB of text).",
        f"- Median window: .zst {zst_m * 1e3:.1f} ms; `read_binance(.gz, start, end)` "
        f"{median([x['gz_s'] for x in ws]) / zst_m:.0f}x slower, `TimeIndex(.gz).read` "
        f"{median([x['tg_s'] for x in ws]) / zst_m:.0f}x slower; whole .zst + filter "
        f"{median([x['whole_mask_s'] for x in ws]) / zst_m:.0f}x slower; plain text with its index "
        f"{median([x['plain_s'] for x in ws]) * 1e3:.1f} ms.  aggTrades of whole + filter equal the window's: "
        f"{'yes' if all(x['masked_agg_equal'] for x in ws) else '**no**'}.",
        f"- `TimeIndex(.gz).read` on the latest-ending window ({_utc(late['window'][0])}): "
        f"{late['tg_s'] * 1e3:,.0f} ms for the {late['tg_decompressed_bytes'] / 1e6:,.0f} MB prefix it reports, "
        f"vs {late['gz_s'] * 1e3:,.0f} ms for `read_binance(.gz)` decompressing and scanning all "
        f"{late['gz_decompressed_bytes'] / 1e6:,.0f} MB.  Finding the window's two ends (`FileIndex.window`, "
        f"timed alone: {late['tg_locate_s'] * 1e3:,.0f} ms) decompresses from the start again, so the prefix is "
        f"inflated about {late['tg_s'] / (late['tg_s'] - late['tg_locate_s']):.1f} times; "
        "`last_read['decompressed_bytes']` counts it once.",
    ]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7, help="reads per window and tool (at least 5)")
    ap.add_argument("--no-memory", action="store_true", help="skip the fresh-process memory probes")
    args = ap.parse_args()
    print("\n".join(lines(speed(args.rounds, not args.no_memory))))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--probe"]:
        _probe(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        main()
