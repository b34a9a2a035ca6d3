"""Shared helpers: test data, side-by-side timing, output equality, peak memory, machine info."""

from __future__ import annotations

import datetime
import gzip
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DATA = BENCH / ".data"  # decompressed copies (gitignored)
SOURCES = ROOT / "tests" / "data" / "binance"
TABLES = ("depth", "trades", "agg_trades", "quotes")


# ------------------------------------------------------------------------------ data
def plain_copy(name: str) -> Path:
    """``tests/data/binance/<name>.gz`` decompressed once into benchmarks/.data/<name>.txt."""
    src = SOURCES / f"{name}.gz"
    dst = DATA / f"{name}.txt"
    if not dst.exists() or dst.stat().st_mtime < src.stat().st_mtime:
        DATA.mkdir(exist_ok=True)
        tmp = dst.with_suffix(".tmp")
        with gzip.open(src, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
        tmp.replace(dst)
    return dst


def warm_page_cache(*paths: Path) -> None:
    """Read the files once so every tool parses text that is already in memory."""
    for p in paths:
        with open(p, "rb") as f:
            while f.read(1 << 22):
                pass


# ------------------------------------------------------------------------------ outputs
def tables_of(result) -> dict[str, dict[str, np.ndarray]]:
    """{table: {column: array}} of a MarketData or of a baseline's dict."""
    if isinstance(result, dict):
        return result
    return {t: getattr(result, t).columns for t in TABLES}


def output_bytes(result) -> int:
    return sum(a.nbytes for cols in tables_of(result).values() for a in cols.values())


def differences(expected, got) -> list[str]:
    """What differs between two outputs (dtype, length or values, NaN == NaN); [] if equal."""
    exp, res = tables_of(expected), tables_of(got)
    out = []
    for t in TABLES:
        for col, a in exp[t].items():
            b = res.get(t, {}).get(col)
            if b is None:
                out.append(f"{t}.{col}: missing")
            elif a.dtype != b.dtype:
                out.append(f"{t}.{col}: dtype {b.dtype}, expected {a.dtype}")
            elif a.shape != b.shape:
                out.append(f"{t}.{col}: {len(b)} rows, expected {len(a)}")
            elif not np.array_equal(a, b, equal_nan=a.dtype.kind == "f"):
                bad = a != b
                if a.dtype.kind == "f":
                    bad &= ~(np.isnan(a) & np.isnan(b))
                i = int(np.flatnonzero(bad)[0])
                out.append(f"{t}.{col}: row {i} is {b[i]!r}, expected {a[i]!r}")
    return out


def check_equal(label: str, expected, got) -> None:
    diffs = differences(expected, got)
    if diffs:
        raise SystemExit(f"{label}: output differs from lobfast's:\n  " + "\n  ".join(diffs[:10]))


# ------------------------------------------------------------------------------ timing
def time_side_by_side(
    tools: dict[str, Callable[[], object]], rounds: int, inner: dict[str, int] | None = None
) -> dict[str, list[float]]:
    """Seconds per call of each tool, interleaved: every round runs every tool (``inner[name]``
    times, for the fast ones), in an order that rotates each round, so slow drifts of a
    shared machine hit all tools alike.  Garbage is collected between calls, untimed."""
    import gc

    inner = inner or {}
    names = list(tools)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            for _ in range(inner.get(name, 1)):
                gc.collect()
                t0 = time.perf_counter()
                result = tools[name]()
                times[name].append(time.perf_counter() - t0)
                del result
    return times


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def spread(xs: list[float]) -> float:
    """Half the interquartile range relative to the median (0.05 = +-5 %)."""
    if len(xs) < 4:
        return (max(xs) - min(xs)) / 2 / statistics.median(xs)
    q = statistics.quantiles(xs, n=4)
    return (q[2] - q[0]) / 2 / statistics.median(xs)


# ------------------------------------------------------------------------------ memory
def peak_memory(tool: str, paths: list[Path], chunk_rows: int = 0) -> dict:
    """Run one tool in a fresh interpreter (benchmarks/memprobe.py) and return its report:
    rss after imports, peak extra RSS while reading, output array bytes."""
    cmd = [sys.executable, str(BENCH / "memprobe.py"), tool, str(chunk_rows), *map(str, paths)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"memprobe {tool} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------ machine
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("nan")


def _version(mod: str) -> str:
    try:
        return __import__(mod).__version__
    except ImportError:
        return "not installed"


def _git_head() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return head + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _so_built() -> str:
    """When the imported lobfast._core was built (its file's mtime), UTC."""
    try:
        import lobfast._core as core

        t = Path(core.__file__).stat().st_mtime
        return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except (ImportError, OSError):
        return "unknown"


def machine() -> dict[str, str]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": f"{usable} usable ({os.cpu_count()} online)",
        "ram": f"{_ram_gib():.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "orjson": _version("orjson"),
        "msgspec": _version("msgspec"),
        "pandas": _version("pandas"),
        "lobfast": f"{_version('lobfast')} (git {_git_head()}; extension built {_so_built()})",
    }


# ------------------------------------------------------------------------------ tables
def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def mb(nbytes: float) -> str:
    return f"{nbytes / 1e6:.1f}"
