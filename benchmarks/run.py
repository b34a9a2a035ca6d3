"""`make bench`: lobfast's readers side by side with what users would use instead.

Prints the tables and rewrites benchmarks/RESULTS.md.  Speed is measured here, never
asserted in tests: machines are shared and noisy, so every number is a median over
interleaved repeats and the comparisons are ratios measured in the same run.

    .venv/bin/python benchmarks/run.py [--rounds N] [--quick] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH)]

import bench_binance as bb  # noqa: E402
import bench_memory as bm  # noqa: E402
import bench_tardis as bt  # noqa: E402
from common import machine, md_table  # noqa: E402

TARGET_LOOP, TARGET_FAST, TARGET_PANDAS, TARGET_MEM = 20.0, 3.0, 5.0, 1.5


def loadavg() -> float:
    """The 1-minute load average: other work on a shared machine shows up here."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def mbps(nbytes: int, seconds: float) -> str:
    return f"{nbytes / seconds / 1e6:,.0f}"


def ok(flag: bool) -> str:
    return "met" if flag else "**not met**"


def speed_section(results: list[dict]) -> tuple[str, list[str]]:
    rows, summary = [], []
    for r in results:
        med, spr = r["median_s"], r["spread"]
        base = med[bb.LOBFAST]
        for tool in (bb.LOBFAST, bb.LOOP, bb.MSGSPEC, bb.ORJSON):
            best = " (best b)" if tool == r["best_b"] else ""
            rows.append(
                [
                    r["dataset"],
                    f"{r['bytes'] / 1e6:.1f}",
                    tool + best,
                    f"{med[tool] * 1e3:,.1f}",
                    f"±{spr[tool] * 100:.0f}%",
                    mbps(r["bytes"], med[tool]),
                    "1.0" if tool == bb.LOBFAST else f"{med[tool] / base:.1f}x",
                ]
            )
        ra, rb = med[bb.LOOP] / base, med[r["best_b"]] / base
        usdm = r["dataset"].startswith("USD-M")
        summary.append(
            f"| {r['dataset']} | {mbps(r['bytes'], base)} | {ra:.1f}x | {rb:.1f}x ({r['best_b']}) | "
            + (
                f"{ok(ra >= TARGET_LOOP)} / {ok(rb >= TARGET_FAST)} |"
                if usdm
                else "(targets are set on USD-M) |"
            )
        )
    table = md_table(["data", "text MB", "tool", "median ms", "spread", "MB/s", "time / lobfast's"], rows)
    head = [
        "| data | lobfast MB/s | lobfast vs (a) | lobfast vs best (b) | targets >= 20x (a) / >= 3x (b) |",
        "|---|---|---|---|---|",
    ]
    return table, head + summary


def gz_section(results: list[dict]) -> str:
    rows = []
    for r in results:
        med, spr = r["median_s"], r["spread"]
        for tool in med:
            rows.append(
                [
                    r["dataset"] + " .gz",
                    f"{r['gz_bytes'] / 1e6:.1f} -> {r['bytes'] / 1e6:.1f}",
                    tool if tool == bb.LOBFAST else "gzip.open + " + tool,
                    f"{med[tool] * 1e3:,.1f}",
                    f"±{spr[tool] * 100:.0f}%",
                    mbps(r["bytes"], med[tool]),
                    f"{med[tool] / med[bb.LOBFAST]:.1f}x",
                ]
            )
    return md_table(
        ["data", "gz MB -> text MB", "tool", "median ms", "spread", "text MB/s", "time / lobfast's"], rows
    )


def memory_section(per_tool: list[dict], bounded: list[dict]) -> tuple[str, str]:
    rows = []
    for r in per_tool:
        for tool, m in r["tools"].items():
            out, extra = m["output_bytes"], m["peak_extra"]
            limit = TARGET_MEM * out + bm.CHUNK_BYTES
            rows.append(
                [
                    r["dataset"],
                    tool,
                    f"{out / 1e6:.1f}",
                    f"{extra / 1e6:.1f}",
                    f"{extra / out:.2f}",
                    (ok(extra <= limit) if tool == "lobfast" else ""),
                ]
            )
    t1 = md_table(
        [
            "data",
            "tool",
            "output arrays MB",
            "peak extra RSS MB",
            "peak / output",
            "target <= 1.5 x output + 1.25 MiB",
        ],
        rows,
    )
    rows = []
    for r in bounded:
        rd, it = r["read"], r["iter"]
        rows.append(
            [
                r["dataset"],
                f"{r['bytes'] / 1e6:.1f}",
                f"{rd['output_bytes'] / 1e6:.1f}",
                f"{rd['peak_extra'] / 1e6:.1f}",
                f"{it['chunks']}",
                f"{it['largest_chunk_bytes'] / 1e6:.1f}",
                f"{it['peak_extra'] / 1e6:.1f}",
            ]
        )
    t2 = md_table(
        [
            "data",
            "text MB",
            "all rows MB",
            "read_binance peak extra MB",
            f"iter_binance chunks (chunk_rows={bm.ITER_CHUNK_ROWS:,})",
            "largest chunk MB",
            "iter_binance peak extra MB",
        ],
        rows,
    )
    return t1, t2


def tardis_section(results: list[dict]) -> str:
    rows = []
    for r in results:
        med, spr = r["median_s"], r["spread"]
        base = med[bt.LOBFAST]
        for tool in med:
            ratio = med[tool] / base
            target = "" if tool == bt.LOBFAST else ok(ratio >= TARGET_PANDAS)
            rows.append(
                [
                    r["dataset"],
                    f"{r['bytes'] / 1e6:.1f}",
                    f"{r['rows']:,}",
                    tool,
                    f"{med[tool] * 1e3:,.1f}",
                    f"±{spr[tool] * 100:.0f}%",
                    mbps(r["bytes"], med[tool]),
                    f"{ratio:.1f}x",
                    target,
                ]
            )
    return md_table(
        [
            "data",
            "CSV MB",
            "depth rows",
            "tool",
            "median ms",
            "spread",
            "MB/s",
            "time / lobfast's",
            "target >= 5x",
        ],
        rows,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds per comparison (default 7)")
    ap.add_argument("--quick", action="store_true", help="3 rounds, no memory probes")
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = ap.parse_args()
    rounds = 3 if args.quick else max(1, args.rounds)
    t0 = time.perf_counter()

    info = machine()
    load0 = loadavg()
    speed, gz = [], []
    for name in bb.DATASETS:
        log(f"speed: {bb.DATASETS[name][0]} ({rounds} rounds)")
        speed.append(bb.speed(name, rounds))
    for name in bb.DATASETS:
        log(f"speed: {bb.DATASETS[name][0]} .gz")
        gz.append(bb.speed_gz(name, rounds))
    per_tool, bounded = [], []
    if not args.quick:
        for name in bb.DATASETS:
            log(f"memory: {bb.DATASETS[name][0]}")
            per_tool.append(bm.peak_per_tool(name))
        log("memory: iter_binance")
        bounded = bm.bounded()
    tardis = []
    if bt.available():
        for name in bt.DATASETS:
            log(f"tardis: {bt.DATASETS[name][0]}")
            tardis.append(bt.speed(name, rounds))
    elapsed = time.perf_counter() - t0
    info["load average (1 min) at start / end"] = f"{load0:.2f} / {loadavg():.2f}"

    speed_table, summary = speed_section(speed)
    out = [
        "# lobfast benchmarks",
        "",
        "Generated by `make bench` (`.venv/bin/python benchmarks/run.py`); do not edit by hand.",
        "",
        "## Machine",
        "",
    ]
    out += [f"- {k}: {v}" for k, v in info.items()]
    out += [
        "",
        "## Method",
        "",
        "- Real recordings from tests/data/binance (see tests/data/README.md), decompressed once into "
        "benchmarks/.data/ and read once before timing, so every tool parses page-cached plain text "
        "(decompression is timed only in the .gz rows).",
        f"- Each comparison runs {rounds} interleaved rounds (every tool once per round, lobfast 5 times; "
        f"the order rotates each round) and reports the **median**; spread = half the interquartile range "
        f"/ median.  Ratios are medians measured side by side in the same run.  MB = 10^6 bytes of raw text.",
        "- Before timing, every tool's output is checked **equal** to `lobfast.read_binance`'s: the depth "
        "rows (with flags, Binance sync rules), trades, aggregated trades and quotes, column by column, "
        "same dtypes and values (NaN == NaN).  A difference stops the run.",
        "- (a) `benchmarks/binance_loop.py`: `json.loads` per line, `float()` per decimal string, one list "
        "per column, `np.array` at the end; the sync rules in `benchmarks/binance_sync.py`.",
        "- (b) `benchmarks/binance_fast.py`: the stream name picks a typed decoder (msgspec Structs, "
        "decimal strings decoded straight to float) or `orjson.loads`; values go into `array.array` "
        "buffers, depth rows as per-message segments expanded with `np.repeat`; GC paused while reading; "
        'same sync rules.  The faster of the two variants is "best (b)".',
        "- Memory: each tool in a fresh interpreter (`benchmarks/memprobe.py`): peak RSS "
        "(VmHWM = `ru_maxrss` of the reader's own address space, high-water mark reset after imports via "
        "/proc/self/clear_refs; plain `ru_maxrss` would also carry the parent's peak across fork+exec) "
        "minus the RSS after imports, against the bytes of the output arrays.",
        "",
        "## Speed: plain text",
        "",
        speed_table,
        "",
        "### Ratios (USD-M carries the targets)",
        "",
    ]
    out += summary
    out += [
        "",
        "## Speed: reading the .gz recordings directly (secondary)",
        "",
        "lobfast decompresses with zlib in C; the Python side is `gzip.open(path, 'rb')` feeding the "
        "(b) msgspec route.  MB/s counts decompressed text.",
        "",
        gz_section(gz),
    ]
    if per_tool:
        t1, t2 = memory_section(per_tool, bounded)
        out += [
            "",
            "## Peak memory",
            "",
            t1,
            "",
            '"1.25 MiB" is lobfast\'s one chunk: its 1 MiB text buffer plus its 256 KiB input buffer.',
            "",
            "### Bounded memory with `iter_binance`",
            "",
            "Each chunk is dropped after use (a consumer that keeps summaries); the peak stays near one "
            "chunk's arrays whatever the input size.",
            "",
            t2,
        ]
    out += ["", "## Tardis CSV (`incremental_book_L2`)", ""]
    if tardis:
        out += [
            "The Binance recordings' synced depth rows written as Tardis CSV (`benchmarks/tardis_data.py`: "
            "microsecond times, shortest round-trip decimals).  pandas side (`benchmarks/bench_tardis.py`): "
            "`pd.read_csv(usecols=...)` (the `exchange` column is not read) + the DepthEvents normalisation "
            "of csrc/core/tardis.c in vectorised NumPy (first snapshot, RESET where is_snapshot turns true, "
            "END_OF_MESSAGE per local_timestamp run, side, update_id -1).  Outputs checked equal before "
            "timing; same rounds and medians as above.",
            "",
            tardis_section(tardis),
        ]
    else:
        out += [
            "Not run: `lobfast.read_tardis` does not exist in this build.  The hook is ready in "
            "`benchmarks/bench_tardis.py` and runs as soon as it does."
        ]
    out += [
        "",
        "Where lobfast's time goes and what to change in csrc/core: `benchmarks/PROFILE.md` (hand-written, "
        "from `benchmarks/profile_core.c`, perf and callgrind).",
        "",
        f"Total benchmark time: {elapsed:.0f} s.",
        "",
    ]
    text = "\n".join(out)
    print(text)
    if not args.no_write:
        (BENCH / "RESULTS.md").write_text(text)
        log(f"wrote {BENCH / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
