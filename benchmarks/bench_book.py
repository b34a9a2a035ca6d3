"""Order book reconstruction: lobfast.reconstruct (the C book) vs Python-driven books, and
the peak memory of reconstruct and of a chunk-fed BookBuilder, and lobfast vs hftbacktest's
Rust book.

Workload: the USD-M BTCUSDT depth rows of tests/data/binance (445k rows, 6.5k messages,
one 1000-level snapshot per side) replayed end to end ``REPLAYS`` times: each copy's
``ts`` / ``local_ts`` are shifted by whole seconds past the previous copy (so the rows stay
sorted and the 100 ms grid falls on the same phase) and each copy starts with its own
RESET snapshot rows, so every copy rebuilds the same books.  One output row per message
with the top 10 levels per side (``levels=10, every=None``).

    python benchmarks/bench_book.py hftbacktest [ROUNDS [REPLAYS]]

times lobfast against hftbacktest 2.4.4's ``HashMapMarketDepth`` (Rust) on the same rows
(``vs_hftbacktest``: the peer runs in benchmarks/.venv-hftbacktest, made on first use, through
``competitors/book_hftbacktest.py``) and prints the markdown table of RESULTS.md.

    python benchmarks/bench_book.py probe MODE REPLAYS [CHUNK_ROWS]

runs one memory probe in this (fresh) interpreter and prints a JSON line; MODE is
``reconstruct`` (``reconstruct(depth, every="100ms")`` over the replay held in memory),
``builder`` (BookBuilder fed slices of that replay, each chunk's rows dropped after use) or
``builder-iter`` (BookBuilder fed ``iter_binance`` chunks of the file, replayed: the input
is never held whole).  ``reconstruct-pinned`` is ``reconstruct`` with the allocator held
still (glibc's mmap threshold fixed at 128 KiB, transparent huge pages off for the process):
a diagnostic that separates lobfast's own working set from allocator effects.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

BENCH = Path(__file__).resolve().parent
if __name__ == "__main__":
    sys.path[:0] = [str(BENCH.parent), str(BENCH)]

import numpy as np  # noqa: E402

import lobfast  # noqa: E402
from lobfast import DepthEvents, Flags  # noqa: E402

DATASET = ("USD-M BTCUSDT 2024-08-08", "usdm_btcusdt_20240808")
REPLAYS = 10
LEVELS = 10
GRID = "100ms"
CHUNK_ROWS = 65_536
# reconstruct at three sizes (20x lands just past a doubling of the output table, 30x
# further on): "output + a constant" means peak - output stays flat across them
RECONSTRUCT_REPLAYS = (10, 20, 30)
BUILDER_REPLAYS = (10, 30)

LOBFAST = "lobfast.reconstruct (C book)"
ORDERBOOK = "order-book OrderBook (C ext., Python loop)"
SORTEDDICT = "sortedcontainers SortedDict (Python loop)"
SNAP_COLS = ("bid_px", "bid_sz", "ask_px", "ask_sz")


def source() -> Path:
    return BENCH.parent / "tests" / "data" / "binance" / f"{DATASET[1]}.gz"


def replay(depth: DepthEvents, times: int) -> DepthEvents:
    """``depth`` end to end ``times`` times, ts shifted by whole seconds past each copy."""
    if not len(depth) or not depth.flags[0] & Flags.RESET:
        raise SystemExit("the replayed depth rows must start with a RESET snapshot")
    shift = ((int(depth.ts[-1]) - int(depth.ts[0])) // 10**9 + 2) * 10**9
    offsets = np.repeat(np.arange(times, dtype=np.int64) * shift, len(depth))
    cols = {}
    for name, a in depth.columns.items():
        cols[name] = np.tile(a, times)
        if name in ("ts", "local_ts"):
            cols[name] += offsets
    return DepthEvents(**cols)


def shifted(depth: DepthEvents, by: int) -> DepthEvents:
    cols = depth.columns
    cols["ts"] = cols["ts"] + by
    cols["local_ts"] = cols["local_ts"] + by
    return DepthEvents(**cols)


def level_updates(depth: DepthEvents) -> int:
    return int(np.count_nonzero(depth.side))


# ------------------------------------------------------------------------------ speed
def lobfast_top(depth: DepthEvents) -> dict[str, np.ndarray]:
    snaps = lobfast.reconstruct(depth, levels=LEVELS)
    return {k: getattr(snaps, k) for k in SNAP_COLS}


def check_same(label: str, expected: dict, got: dict) -> None:
    """Top-10 prices and sizes at every message equal (NaN == NaN), or stop the run."""
    for k in SNAP_COLS:
        a, b = expected[k], got[k]
        if a.shape != b.shape:
            raise SystemExit(f"{label}: {k} has shape {b.shape}, expected {a.shape}")
        if not np.array_equal(a, b, equal_nan=True):
            bad = (a != b) & ~(np.isnan(a) & np.isnan(b))
            row, lvl = (int(x[0]) for x in np.nonzero(bad))
            raise SystemExit(
                f"{label}: {k}[{row}, {lvl}] is {b[row, lvl]!r}, expected {a[row, lvl]!r} "
                f"(message {row}, level {lvl + 1})"
            )


def speed(rounds: int, replays: int = REPLAYS) -> dict:
    """Equality first, then medians of ``rounds`` interleaved rounds (lobfast 5 calls a round)."""
    import order_book
    import sortedcontainers
    from common import time_side_by_side
    from competitors import book_python

    base = lobfast.read_binance(str(source())).depth
    depth = replay(base, replays)
    tools = {
        LOBFAST: partial(lobfast_top, depth),
        ORDERBOOK: partial(book_python.orderbook_top, depth, LEVELS),
        SORTEDDICT: partial(book_python.sorteddict_top, depth, LEVELS),
    }
    expected = tools[LOBFAST]()
    for tool, fn in tools.items():
        if tool != LOBFAST:
            check_same(f"{DATASET[0]} x{replays}: {tool}", expected, fn())
    times = time_side_by_side(tools, rounds, inner={LOBFAST: 5})
    return {
        **_summary(depth, expected, replays, rounds, times),
        "base_rows": len(base),
        "snapshot_levels": [
            int(np.count_nonzero((base.flags & Flags.SNAPSHOT != 0) & (base.side == s))) for s in (1, -1)
        ],
        "versions": {
            "order-book": _dist_version("order-book", getattr(order_book, "__version__", "?")),
            "sortedcontainers": sortedcontainers.__version__,
        },
    }


def _summary(depth, expected: dict, replays: int, rounds: int, times: dict) -> dict:
    """What every book comparison reports: the workload and each tool's median, spread and calls."""
    from common import median, spread

    return {
        "dataset": DATASET[0],
        "replays": replays,
        "rounds": rounds,
        "rows": len(depth),
        "updates": level_updates(depth),
        "messages": len(expected["bid_px"]),
        "median_s": {t: median(v) for t, v in times.items()},
        "spread": {t: spread(v) for t, v in times.items()},
        "calls": {t: len(v) for t, v in times.items()},
    }


def _dist_version(dist: str, fallback: str) -> str:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:  # noqa: BLE001 - only a label
        return fallback


# ------------------------------------------------------------------------------ vs hftbacktest
HFTBACKTEST = "hftbacktest 2.4.4 HashMapMarketDepth (Rust, numba loop)"
LOBFAST_GRID = 'lobfast.reconstruct(every="100ms")'
HFT_VERSION = "2.4.4"
HFT_VENV = BENCH / ".venv-hftbacktest"
HFT_SCRIPT = BENCH / "competitors" / "book_hftbacktest.py"
TICK_SIZE, LOT_SIZE = 0.1, 0.001  # BTCUSDT USD-M


def hft_python() -> tuple[Path | None, str]:
    """The venv's interpreter with hftbacktest installed (made on first use: it pins an older
    NumPy than lobfast's), or None and why not."""
    py = HFT_VENV / "bin" / "python"
    check = [str(py), "-c", f"import hftbacktest, sys; sys.exit(hftbacktest.__version__ != {HFT_VERSION!r})"]
    if py.exists() and subprocess.run(check, capture_output=True, check=False).returncode == 0:
        return py, ""
    steps = [
        [sys.executable, "-m", "venv", str(HFT_VENV)],
        [str(py), "-m", "pip", "install", "-q", f"hftbacktest=={HFT_VERSION}"],
    ]
    for cmd in steps:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["?"]
            return None, f"`{' '.join(cmd[:4])} ...` failed: {tail[0]}"
    if subprocess.run(check, capture_output=True, check=False).returncode != 0:
        return None, f"hftbacktest {HFT_VERSION} does not import in {HFT_VENV}"
    return py, ""


def loadavg() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def vs_hftbacktest(rounds: int, replays: int = REPLAYS) -> dict:
    """lobfast's book and hftbacktest's HashMapMarketDepth on the same rows, side by side.

    The peer runs in its own interpreter (``competitors/book_hftbacktest.py``); its top-10
    ticks and sizes per message are checked equal to lobfast's before timing.  Each round
    times lobfast 5 times in this process and the peer once (its replay loop only), in an
    order that rotates; medians."""

    py, why = hft_python()
    if py is None:
        return {"skipped": why}
    base = lobfast.read_binance(str(source())).depth
    depth = replay(base, replays)
    data = BENCH / ".data"
    data.mkdir(exist_ok=True)
    src, dst = data / "book_hft_in.npz", data / "book_hft_out.npz"
    np.savez(
        src,
        **{k: getattr(depth, k) for k in ("ts", "side", "price", "qty", "flags")},
        tick_size=TICK_SIZE,
        lot_size=LOT_SIZE,
        levels=LEVELS,
    )
    peer = subprocess.Popen(
        [str(py), str(HFT_SCRIPT), str(src), str(dst)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        if peer.stdout.readline().strip() != "ready":
            raise SystemExit("hftbacktest: the peer did not start (see its error above)")
        expected = lobfast_top(depth)
        with np.load(dst) as z:
            got = {
                "bid_px": np.where(z["bid_tick"] >= 0, z["bid_tick"] / 10.0, np.nan),  # exact: 1 decimal
                "bid_sz": z["bid_sz"],
                "ask_px": np.where(z["ask_tick"] >= 0, z["ask_tick"] / 10.0, np.nan),
                "ask_sz": z["ask_sz"],
            }
        check_same(f"{DATASET[0]} x{replays}: {HFTBACKTEST}", expected, got)

        def peer_run() -> float:
            peer.stdin.write("time\n")
            peer.stdin.flush()
            return float(peer.stdout.readline())

        def timed(fn) -> float:
            gc.collect()
            t0 = time.perf_counter()
            fn()
            return time.perf_counter() - t0

        grid = partial(lobfast.reconstruct, depth, levels=LEVELS, every=GRID)
        load0 = loadavg()
        times: dict[str, list[float]] = {LOBFAST: [], LOBFAST_GRID: [], HFTBACKTEST: []}
        for r in range(rounds):
            order = [LOBFAST, LOBFAST_GRID, HFTBACKTEST]
            order = order[r % 3 :] + order[: r % 3]
            for name in order:
                if name == HFTBACKTEST:
                    times[name].append(peer_run())
                else:
                    fn = partial(lobfast_top, depth) if name == LOBFAST else grid
                    times[name] += [timed(fn) for _ in range(5)]
        load1 = loadavg()
    finally:
        peer.stdin.close()
        peer.wait(timeout=60)
    return {**_summary(depth, expected, replays, rounds, times), "load": (load0, load1)}


def hftbacktest_lines(r: dict) -> list[str]:
    """The markdown of the comparison (RESULTS.md, Order book section)."""
    out = ["", "### lobfast vs hftbacktest's Rust book (`HashMapMarketDepth`)", ""]
    if "skipped" in r:
        return out + [f"- skipped: {r['skipped']}"]
    from common import md_table

    med, base = r["median_s"], r["median_s"][LOBFAST]
    rows = []
    for tool in (LOBFAST, LOBFAST_GRID, HFTBACKTEST):
        rows.append(
            [
                tool,
                f"{med[tool] * 1e3:,.1f}",
                f"±{r['spread'][tool] * 100:.0f}%",
                f"{r['calls'][tool]}",
                f"{r['updates'] / med[tool] / 1e6:,.1f}",
                f"{med[tool] / base:.2f}x",
            ]
        )
    ratio = med[HFTBACKTEST] / base
    return out + [
        f"- Same workload ({r['replays']}x, {r['updates']:,} level updates, {r['messages']:,} messages).  "
        f"hftbacktest {HFT_VERSION} runs in its own venv (it pins an older NumPy; "
        "`benchmarks/.venv-hftbacktest`, made on first use) and process "
        "(`benchmarks/competitors/book_hftbacktest.py`): the rows become LOCAL depth events of a "
        "`HashMapMarketDepthBacktest` (its only Python way to a `HashMapMarketDepth`: "
        "`update_bid_depth` / `update_ask_depth` per row, `clear_depth` before each RESET, tick "
        f"{TICK_SIZE}, lot {LOT_SIZE}), one `elapse` per message in a numba loop (JIT warmed up "
        "first) that then reads the top 10 per side by walking ticks from the best with "
        "`bid_qty_at_tick` / `ask_qty_at_tick`.  Timed: that loop only (building the backtest is "
        "not); its output arrays are allocated once, lobfast's fresh per call.  "
        f'lobfast\'s every="{GRID}" row: the same updates, with a row per grid time instead of per '
        "message (the peer has no such mode).",
        "- Before timing, its top-10 ticks and sizes at every message are checked **equal** to "
        "lobfast's (ticks / 10 == lobfast's prices, bit for bit).",
        f"- {r['rounds']} interleaved rounds (lobfast 5 calls of each mode, the peer 1 run a round), "
        "medians, one core.",
        "",
        md_table(["tool", "median ms", "spread", "calls", "M level updates/s", "time / lobfast's"], rows),
        "",
        f"- lobfast vs {HFTBACKTEST}: **{ratio:.2f}x** (target >= 3x: {'met' if ratio >= 3 else '**not met**'}); "
        f"load average (1 min) at start / end: {r['load'][0]:.2f} / {r['load'][1]:.2f} on 2 cores",
    ]


# ------------------------------------------------------------------------------ memory
def probe(mode: str, replays: int, chunk_rows: int = CHUNK_ROWS) -> dict:
    """Run one memory probe in a fresh interpreter (this file's ``probe`` entry)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "probe", mode, str(replays), str(chunk_rows)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"book memory probe {mode} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def memory() -> list[dict]:
    out = [probe(m, r) for m in ("reconstruct", "reconstruct-pinned") for r in RECONSTRUCT_REPLAYS]
    return out + [probe(m, r) for m in ("builder", "builder-iter") for r in BUILDER_REPLAYS]


def _snap_bytes(snaps) -> int:
    return sum(a.nbytes for a in snaps.columns.values())


def _pin_allocator() -> None:
    """Fixed mmap threshold (no heap growth by copying realloc) and no THP for this process."""
    import ctypes

    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD: also stops glibc's dynamic raising of it
    libc.prctl(41, 1, 0, 0, 0)  # PR_SET_THP_DISABLE


def _probe_main(mode: str, replays: int, chunk_rows: int) -> None:
    from memprobe import reset_hwm, rss_now, vm_hwm

    if mode == "reconstruct-pinned":
        _pin_allocator()
    path = str(source())
    depth = None
    if mode in ("reconstruct", "reconstruct-pinned", "builder"):
        depth = replay(lobfast.read_binance(path).depth, replays)
    elif mode != "builder-iter":
        raise SystemExit(f"unknown probe mode {mode!r}")
    gc.collect()
    try:  # hand freed heap memory back, so that the baseline RSS holds live data only
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    base = rss_now()
    reset = reset_hwm()
    chunks = rows = out_bytes = largest = 0
    if mode.startswith("reconstruct"):
        snaps = lobfast.reconstruct(depth, levels=LEVELS, every=GRID)
        rows, out_bytes, largest, chunks = len(snaps), _snap_bytes(snaps), _snap_bytes(snaps), 1
        valid = bool(snaps.valid.all())
    else:
        builder = lobfast.BookBuilder(LEVELS, every=GRID)
        valid = True

        def take(part) -> None:
            nonlocal chunks, rows, out_bytes, largest, valid
            b = _snap_bytes(part)
            chunks += 1
            rows += len(part)
            out_bytes += b
            largest = max(largest, b)
            valid &= bool(part.valid.all())  # a consumer that keeps a summary, not the rows

        if mode == "builder":
            for i in range(0, len(depth), chunk_rows):
                take(builder.feed(depth[i : i + chunk_rows]))
        else:
            first = last = shift = 0
            for k in range(replays):
                for md in lobfast.iter_binance(path, chunk_rows=chunk_rows):
                    d = md.depth
                    del md
                    if len(d) and k == 0:  # the first pass finds the shift
                        first = first or int(d.ts[0])
                        last = int(d.ts[-1])
                    if len(d):
                        take(builder.feed(shifted(d, k * shift) if k else d))
                    del d
                shift = ((last - first) // 10**9 + 2) * 10**9
        take(builder.finish())
    peak = vm_hwm()
    if peak is None:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "mode": mode,
                "replays": replays,
                "chunk_rows": 0 if mode.startswith("reconstruct") else chunk_rows,
                "input_bytes": sum(a.nbytes for a in depth.columns.values()) if depth is not None else 0,
                "rss_after_setup": base,
                "peak_rss": peak,
                "peak_extra": max(0, peak - base),
                "rows": rows,
                "output_bytes": out_bytes,
                "largest_chunk_bytes": largest,
                "chunks": chunks,
                "valid": valid,
                "hwm_reset": reset,
            }
        )
    )


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "hftbacktest":
        res = vs_hftbacktest(
            int(sys.argv[2]) if len(sys.argv) > 2 else 7, int(sys.argv[3]) if len(sys.argv) > 3 else REPLAYS
        )
        print(json.dumps(res))
        print("\n".join(hftbacktest_lines(res)))
    elif len(sys.argv) >= 4 and sys.argv[1] == "probe":
        _probe_main(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else CHUNK_ROWS)
    else:
        raise SystemExit(__doc__)
