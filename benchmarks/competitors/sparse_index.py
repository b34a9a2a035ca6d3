"""Baseline for time-sliced loading: a sparse in-memory index + pandas, as researchers do it today.

To read one window of a big time-sorted CSV without parsing all of it, the usual recipe is
to record (timestamp, byte offset) every 100,000 rows, binary-search that list for the rows
around the window, seek there, let ``pandas.read_csv`` parse those rows and filter them by
time.  The list lives in memory only, so every new process scans the whole file again to
rebuild it.  :class:`SparseIndexPandas` is that recipe written with care (the choices made
are measured, see its docstring); ``lobfast.TimeIndex`` is compared with it side by side.

``python benchmarks/competitors/sparse_index.py`` times the build and 30-minute window reads on the
~1.1 GB ``book_snapshot_10`` CSV of :mod:`datagen.timeindex_data` and a fresh process's peak RSS.
"""

from __future__ import annotations

import bisect
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

BENCH = Path(__file__).resolve().parents[1]
if str(BENCH) not in sys.path:  # run as a script
    sys.path[:0] = [str(BENCH.parent), str(BENCH)]

BLOCK = 64 << 20  # read size
SUB = 4 << 20  # newline-count granularity inside a block


class SparseIndexPandas:
    """(timestamp, byte offset) every `every` rows; window = seek + pandas.read_csv of the chunk + filter.

    Build: the file is read in 64 MiB blocks into one reused buffer (``readinto``);
    numpy counts the newlines of each 4 MiB slice and locates the ``every``-th ones only
    in the slices that hold one; each recorded row's timestamp is then parsed after a seek.
    On a warm 1.1 GB file (3.2M rows) this takes ~0.2 s, against ~0.6 s for the plain
    ``for line in f`` loop accumulating ``len(line)`` and ~0.46 s for skipping lines with
    ``itertools.islice``; ``f.read(BLOCK)`` + ``bytes.count``/``find`` was slower still (~1.7 s).

    Read: ``pandas.read_csv(engine="c")`` straight from the seeked file with ``nrows``, the
    text columns ``exchange``/``symbol`` dropped by ``usecols`` and dtypes given, then a
    boolean filter.  ``engine="pyarrow"`` (two threads) has no ``nrows``, so it parses the
    byte range read into memory: ~5 % slower per window here, and pandas 3.1 fails on
    ``usecols`` with ``names`` for that engine.
    """

    def __init__(self, path, ts_col: str = "timestamp", every: int = 100_000):
        self.path, self.every = Path(path), every
        with open(self.path, "rb") as f:
            header = f.readline()
        self.columns = header.decode().rstrip("\r\n").split(",")
        col = self.columns.index(ts_col)
        self.ts_col = ts_col
        self.offsets = self._row_offsets(len(header))
        self.ts = []
        with open(self.path, "rb") as f:
            for off in self.offsets:
                f.seek(off)
                self.ts.append(int(f.readline().split(b",", col + 1)[col]))
        self.usecols = [c for c in self.columns if c not in ("exchange", "symbol")]
        self.dtype = {c: "int64" if c.endswith("timestamp") else "float64" for c in self.usecols}

    def _row_offsets(self, start: int) -> list[int]:
        """Byte offsets of rows 0, every, 2*every, ... (row 0 starts at ``start``)."""
        every = self.every
        offsets = [start]
        buf = bytearray(BLOCK)
        arr = np.frombuffer(buf, np.uint8)
        base, need = start, every  # file offset of buf[0]; newlines before the next recorded row
        with open(self.path, "rb", buffering=0) as f:
            f.seek(start)
            while n := f.readinto(buf):
                for lo in range(0, n, SUB):
                    nl = arr[lo : min(n, lo + SUB)] == 10
                    count = int(np.count_nonzero(nl))
                    if count < need:
                        need -= count
                        continue
                    offsets.extend((base + lo + 1 + np.flatnonzero(nl)[need - 1 :: every]).tolist())
                    need = every - (count - need) % every
                base += n
        return [o for o in offsets if o < base]  # a newline at the very end starts no row

    def read(self, start_us: int, end_us: int) -> dict[str, np.ndarray]:
        """Numeric columns of the rows with ``start_us <= ts < end_us``."""
        i = max(bisect.bisect_left(self.ts, start_us) - 1, 0)  # last entry before start
        j = bisect.bisect_left(self.ts, end_us)  # first entry at or after end
        nrows = (j - i) * self.every if j < len(self.ts) else None
        with open(self.path, "rb") as f:
            f.seek(self.offsets[i])
            df = pd.read_csv(
                f, header=None, names=self.columns, usecols=self.usecols, dtype=self.dtype, nrows=nrows, engine="c"
            )
        ts = df[self.ts_col].to_numpy()
        keep = (ts >= start_us) & (ts < end_us)
        return {c: df[c].to_numpy()[keep] for c in self.usecols}


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM), MB."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _probe(path: str, start: int, end: int) -> None:
    before = peak_rss_mb()
    rows = len(SparseIndexPandas(path).read(start, end)["timestamp"])
    print(f"{before:.0f} {peak_rss_mb():.0f} {rows}")


def main() -> None:
    from common import warm_page_cache
    from datagen.timeindex_data import book_csv, csv_time_span, windows

    path = book_csv()
    warm_page_cache(path)
    size = path.stat().st_size
    builds = []
    for _ in range(3):
        t0 = time.perf_counter()
        index = SparseIndexPandas(path)
        builds.append(time.perf_counter() - t0)
    build = statistics.median(builds)
    first, last = csv_time_span(path)
    wins = windows(first, last)
    per_window, rows = [], []
    for start, end in wins:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            out = index.read(start, end)
            times.append(time.perf_counter() - t0)
        ts = out["timestamp"]
        assert len(ts) and ts[0] >= start and ts[-1] < end and (np.diff(ts) > 0).all()
        per_window.append(statistics.median(times))
        rows.append(len(ts))
    with open(path, "rb") as f:
        f.seek(index.offsets[-1])
        n_rows = (len(index.offsets) - 1) * index.every + f.read().count(b"\n")
    print(f"{path.name}: {size / 1e9:.2f} GB, {n_rows:,} rows, {size / n_rows:.0f} B/row")
    print(f"build (median of 3): {build:.3f} s = {size / build / 1e6:.0f} MB/s, {len(index.ts)} entries")
    print(
        f"30-min window read (median over {len(wins)} windows of per-window median of 3): "
        f"{statistics.median(per_window) * 1e3:.1f} ms (min {min(per_window) * 1e3:.1f}, "
        f"max {max(per_window) * 1e3:.1f}); rows per window {min(rows)}-{max(rows)}, "
        f"median {statistics.median(rows):.0f}"
    )
    start, end = wins[0]
    probe = subprocess.run(
        [sys.executable, __file__, "--probe", str(path), str(start), str(end)],
        capture_output=True,
        text=True,
        check=True,
        cwd=os.path.dirname(os.path.abspath(__file__)),
    )
    before, after, n = probe.stdout.split()
    print(f"fresh process, build + one window read ({n} rows): peak RSS {after} MB ({before} MB after imports)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--probe"]:
        _probe(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
