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

import bench_aggregate as ba  # noqa: E402
import bench_binance as bb  # noqa: E402
import bench_book as bk  # noqa: E402
import bench_collector as bc  # noqa: E402
import bench_features as bf  # noqa: E402
import bench_labels as bl  # noqa: E402
import bench_memory as bm  # noqa: E402
import bench_store as bs  # noqa: E402
import bench_tardis as bt  # noqa: E402
import bench_timeindex as bti  # noqa: E402
from common import machine, md_table  # noqa: E402

try:
    import bench_torch as btorch  # noqa: E402
except ImportError:  # PyTorch is an optional dependency
    btorch = None

TARGET_LOOP, TARGET_FAST, TARGET_MEM = 20.0, 3.0, 1.5
# order book: lobfast M level updates/s on one core; lobfast's speed-up over each Python book
TARGET_BOOK_UPS, TARGET_BOOK_RATIO = 20.0, {bk.ORDERBOOK: 10.0, bk.SORTEDDICT: 50.0}
BOOK_ROUNDS = 3  # the order-book loop takes ~30 s a call: 3 rounds keep `make bench` near 3 minutes
FLAT_MIB = 1.0  # "output + a constant": peak - output may move this much across sizes


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
            + (f"{ok(ra >= TARGET_LOOP)} / {ok(rb >= TARGET_FAST)} |" if usdm else "(targets are set on USD-M) |")
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
    return md_table(["data", "gz MB -> text MB", "tool", "median ms", "spread", "text MB/s", "time / lobfast's"], rows)


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
            want = bt.TARGETS.get(tool)
            target = "" if want is None else f">= {want:g}x: " + ok(ratio >= want)
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
            "target",
        ],
        rows,
    )


def book_speed_section(r: dict) -> tuple[str, list[str]]:
    med, spr = r["median_s"], r["spread"]
    base = med[bk.LOBFAST]
    rows, summary = [], []
    for tool in (bk.LOBFAST, bk.ORDERBOOK, bk.SORTEDDICT):
        ups = r["updates"] / med[tool] / 1e6
        ratio = med[tool] / base
        if tool == bk.LOBFAST:
            target = f">= {TARGET_BOOK_UPS:.0f} M/s: {ok(ups >= TARGET_BOOK_UPS)}"
        else:
            goal = TARGET_BOOK_RATIO[tool]
            target = f"lobfast >= {goal:.0f}x: {ok(ratio >= goal)}"
            summary.append(f"- lobfast vs {tool}: **{ratio:.1f}x** (target >= {goal:.0f}x: {ok(ratio >= goal)})")
        rows.append(
            [
                tool,
                f"{med[tool]:,.3f}",
                f"±{spr[tool] * 100:.0f}%",
                f"{r['calls'][tool]}",
                f"{ups:,.2f}",
                f"{ratio:.1f}x",
                target,
            ]
        )
    lob_ups = r["updates"] / base / 1e6
    summary.insert(
        0,
        f"- lobfast.reconstruct: **{lob_ups:.1f} M level updates/s** on one core "
        f"(target >= {TARGET_BOOK_UPS:.0f}: {ok(lob_ups >= TARGET_BOOK_UPS)})",
    )
    table = md_table(["tool", "median s", "spread", "calls", "M level updates/s", "time / lobfast's", "target"], rows)
    return table, summary


def book_memory_section(probes: list[dict]) -> tuple[str, list[str], str]:
    rows, over = [], {}
    for p in probes:
        if not p["mode"].startswith("reconstruct"):
            continue
        out, extra = p["output_bytes"], p["peak_extra"]
        over.setdefault(p["mode"], []).append(extra - out)
        rows.append(
            [
                p["mode"],
                f"{p['replays']}x",
                f"{p['input_bytes'] / 1e6:,.0f}",
                f"{p['rows']:,}",
                f"{out / 1e6:.1f}",
                f"{extra / 1e6:.1f}",
                f"{(extra - out) / 1e6:+.1f}",
                f"{extra / out:.2f}",
            ]
        )
    t1 = md_table(
        [
            "probe",
            "replays",
            "input in memory MB",
            "output rows",
            "output MB",
            "peak extra RSS MB",
            "peak - output MB",
            "peak / output",
        ],
        rows,
    )
    checks = []
    for mode, xs in over.items():
        moved = max(xs) - min(xs)
        flat = moved <= FLAT_MIB * 2**20
        checks.append(
            f"- `{mode}`: peak - output = {', '.join(f'{x / 1e6:+.1f}' for x in xs)} MB at "
            f"{', '.join(f'{r}x' for r in bk.RECONSTRUCT_REPLAYS)}: moves by {moved / 1e6:.1f} MB; "
            f"target (output + a constant, i.e. flat within {FLAT_MIB:g} MiB) {ok(flat)}"
        )
    rows = []
    for p in probes:
        if p["mode"].startswith("reconstruct"):
            continue
        rows.append(
            [
                p["mode"],
                f"{p['replays']}x",
                f"{p['input_bytes'] / 1e6:,.0f}",
                f"{p['chunks']}",
                f"{p['output_bytes'] / 1e6:.1f}",
                f"{p['largest_chunk_bytes'] / 1e6:.2f}",
                f"{p['peak_extra'] / 1e6:.1f}",
            ]
        )
    t2 = md_table(
        [
            "probe",
            "replays",
            "input in memory MB",
            f"chunks (chunk_rows={bk.CHUNK_ROWS:,})",
            "all output MB",
            "largest chunk's output MB",
            "peak extra RSS MB",
        ],
        rows,
    )
    return t1, checks, t2


def book_lines(book: dict, book_mem: list[dict], book_hft: dict | None = None) -> list[str]:
    table, summary = book_speed_section(book)
    v = book["versions"]
    per_copy = book["messages"] // book["replays"]
    out = [
        "",
        "## Order book: `lobfast.reconstruct` vs Python-driven books",
        "",
        f"- Workload: the {book['dataset']} depth rows ({book['base_rows']:,} rows, {per_copy:,} "
        f"messages, one snapshot of {book['snapshot_levels'][0]:,} bid + {book['snapshot_levels'][1]:,} "
        f"ask levels) replayed **{book['replays']}x** "
        "end to end (`benchmarks/bench_book.py`: `ts` shifted by whole seconds past the previous "
        "copy, each copy starting with its RESET snapshot rows): "
        f"**{book['updates']:,} level updates**, {book['messages']:,} output rows of the top 10 "
        "levels per side, one per message (`levels=10, every=None`).",
        "- lobfast: `lobfast.reconstruct(depth, levels=10)` (the C book, csrc/core/book/book.c).",
        f"- order-book {v['order-book']} (`from order_book import OrderBook`, the C extension "
        "cryptofeed uses), driven from Python (`benchmarks/competitors/book_python.py`): "
        "`OrderBook(max_depth=10)`, `side[price] = qty`, `del side[price]` when qty == 0 (KeyError "
        "ignored), a new book on RESET, `side.to_list()` per side at every END_OF_MESSAGE (its "
        "fastest documented top-N read; `index(i)` per level measured the same).  It re-sorts all "
        "of a side's keys whenever a level was added or removed since the last read (~3,400 levels "
        "a side here).  order-book >= 0.7 needs Python 3.12 and 1.0 adds an incremental key "
        "cache: the ratio is this version's.",
        f"- sortedcontainers {v['sortedcontainers']}: a `SortedDict` per side (bids keyed by "
        "-price), `pop(key, None)`, `clear()` on RESET, `items()[:10]` at every END_OF_MESSAGE.",
        "- Both Python loops walk `zip()` over the columns' `.tolist()` with the GC paused and end "
        "with the same (N, 10) NumPy arrays as lobfast (empty levels NaN / 0); all of it is timed.",
        "- Before timing, the top-10 prices and sizes at every message of both are checked "
        "**equal** to lobfast's (NaN == NaN); a difference stops the run.",
        f"- {book['rounds']} interleaved rounds (lobfast 5 calls a round), medians; M level "
        "updates/s = level-update rows / median seconds, one core.",
        "",
        table,
        "",
    ]
    out += summary
    if book_hft is not None:
        out += bk.hftbacktest_lines(book_hft)
    if book_mem:
        t1, checks, t2 = book_memory_section(book_mem)
        out += [
            "",
            '### Peak memory of `reconstruct(depth, every="100ms")`',
            "",
            "Fresh interpreter per probe (`python benchmarks/bench_book.py probe MODE REPLAYS`): "
            "the replayed DepthEvents are built first (in the baseline, not in the peak), then the "
            "peak RSS (VmHWM, reset as in memprobe.py) minus the RSS before the call, against the "
            "bytes of the BookSnapshots arrays.  `reconstruct-pinned` is the same call with glibc's "
            "mmap threshold fixed at 128 KiB and transparent huge pages off for the process: what "
            "is left there is lobfast's own; the rest comes from how the output table grows "
            "(a copying `realloc` on the heap once glibc has raised its mmap threshold after big "
            "arrays were freed; 2 MiB pages and a copy for columns of 4 MiB and more in "
            "csrc/core/table.c).",
            "",
            t1,
            "",
        ]
        out += checks
        out += [
            "",
            "### Bounded memory with `BookBuilder` fed in chunks",
            "",
            "Each chunk's rows are dropped after use (a consumer that keeps summaries).  `builder`: "
            "slices of the replayed DepthEvents held in memory; `builder-iter`: `iter_binance` "
            "chunks of the .gz file, replayed with shifted `ts` (the input is never held whole).  "
            "The peak stays flat as the output triples.",
            "",
            t2,
        ]
    out += [
        "",
        "Where the C book's time goes and what to change in csrc/core/book/book.c: "
        "`benchmarks/PROFILE.md` (from `benchmarks/profile_book.c`).",
    ]
    return out


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
    book_replays = 2 if args.quick else bk.REPLAYS
    book_rounds = min(rounds, BOOK_ROUNDS)
    log(f"order book: {bk.DATASET[0]} x{book_replays} ({book_rounds} rounds; order-book takes ~30 s a call)")
    book = bk.speed(book_rounds, book_replays)
    log(f"order book: vs hftbacktest {bk.HFT_VERSION} ({min(rounds, 5)} rounds; its venv is made on first use)")
    book_hft = bk.vs_hftbacktest(min(rounds, 5), book_replays)
    book_mem = []
    if not args.quick:
        log("order book: memory probes")
        book_mem = bk.memory()
    log(f"bars: lobfast.aggregate vs Numba and polars ({rounds} rounds)")
    bars = ba.speed(rounds, ba.ROWS // 5 if args.quick else ba.ROWS)
    tardis = []
    if bt.available():
        for name in bt.DATASETS:
            log(f"tardis: {bt.DATASETS[name][0]}")
            tardis.append(bt.speed(name, rounds))
    feat_rows = bf.ROWS // 4 if args.quick else bf.ROWS
    log(f"features: {feat_rows:,} book rows ({min(rounds, 5)} rounds)")
    feats = bf.speed(min(rounds, 5), feat_rows), bf.rolling_speed(min(rounds, 5))
    log(f"labels: {bl.ROWS:,} rows ({min(rounds, 5)} rounds)")
    labels = bl.speed(min(rounds, 5))
    log(f"time index: {bti.WINDOWS} windows of a ~1.1 GB CSV and {bti.RAW_WINDOWS} of a day of .zst lines")
    timeindex = bti.speed(rounds, with_memory=not args.quick)
    log("recorder: lobfast-collect vs a Python websockets recorder (flat out, then 15,000 msg/s paced)")
    collector = bc.run(quick=args.quick)
    torch_res = None
    if btorch is not None:
        log("pytorch: lobfast.torch batches vs DataLoader and NumPy, and a DeepLOB-TCN training step on the CPU")
        torch_res = btorch.run(quick=args.quick)
    log("store: local pool, one process, Dask, a per-file loop")
    store_res = bs.run(2 if args.quick else 4, 1 if args.quick else 3)
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
        "- (a) `benchmarks/competitors/binance_loop.py`: `json.loads` per line, `float()` per decimal string, one list "
        "per column, `np.array` at the end; the sync rules in `benchmarks/competitors/binance_sync.py`.",
        "- (b) `benchmarks/competitors/binance_fast.py`: the stream name picks a typed decoder (msgspec Structs, "
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
    out += book_lines(book, book_mem, book_hft)
    out += ba.lines(bars)
    out += ["", "## Tardis CSV (`incremental_book_L2`)", ""]
    if tardis:
        out += [
            "The Binance recordings' synced depth rows written as Tardis CSV (`benchmarks/datagen/tardis_data.py`: "
            "microsecond times, shortest round-trip decimals).  pandas side (`benchmarks/bench_tardis.py`): "
            "`pd.read_csv(usecols=...)` (the `exchange` column is not read) + the DepthEvents normalisation "
            "of csrc/core/formats/tardis.c in vectorised NumPy (first snapshot, RESET where is_snapshot turns true, "
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
    out += ["", "## Features: `lobfast.features` vs vectorised NumPy, rolling std vs bottleneck / pandas", ""]
    out += bf.section(*feats)
    out += bl.lines(labels)
    out += bti.lines(timeindex)
    out += bc.lines(collector)
    if torch_res is not None:
        out += btorch.lines(torch_res)
    else:
        out += ["", "## PyTorch data path", "", "Not run: PyTorch is not installed (`pip install 'lobfast[torch]'`)."]
    out += ["", *bs.section(store_res).rstrip("\n").split("\n")]
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
