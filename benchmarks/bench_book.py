"""Order book reconstruction: lobfast.reconstruct (the C book) vs Python-driven books, and
the peak memory of reconstruct and of a chunk-fed BookBuilder.

Workload: the USD-M BTCUSDT depth rows of tests/data/binance (445k rows, 6.5k messages,
one 1000-level snapshot per side) replayed end to end ``REPLAYS`` times: each copy's
``ts`` / ``local_ts`` are shifted by whole seconds past the previous copy (so the rows stay
sorted and the 100 ms grid falls on the same phase) and each copy starts with its own
RESET snapshot rows, so every copy rebuilds the same books.  One output row per message
with the top 10 levels per side (``levels=10, every=None``).

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
import subprocess
import sys
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
    from common import median, spread, time_side_by_side
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
        "dataset": DATASET[0],
        "replays": replays,
        "rounds": rounds,
        "rows": len(depth),
        "updates": level_updates(depth),
        "messages": len(expected["bid_px"]),
        "base_rows": len(base),
        "snapshot_levels": [
            int(np.count_nonzero((base.flags & Flags.SNAPSHOT != 0) & (base.side == s))) for s in (1, -1)
        ],
        "median_s": {t: median(v) for t, v in times.items()},
        "spread": {t: spread(v) for t, v in times.items()},
        "calls": {t: len(v) for t, v in times.items()},
        "versions": {
            "order-book": _dist_version("order-book", getattr(order_book, "__version__", "?")),
            "sortedcontainers": sortedcontainers.__version__,
        },
    }


def _dist_version(dist: str, fallback: str) -> str:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:  # noqa: BLE001 - only a label
        return fallback


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
    if len(sys.argv) >= 4 and sys.argv[1] == "probe":
        _probe_main(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else CHUNK_ROWS)
    else:
        raise SystemExit(__doc__)
