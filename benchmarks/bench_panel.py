"""Batches of a many-symbol ``PanelDataset`` against one ``WindowDataset`` of the same size,
and against the previous panel batch (each symbol's windows put in place by an indexed tensor
assignment, reproduced here as ``indexed_batch``).

Workload: ``SYMBOLS`` symbols x ``ROWS`` rows x ``F`` float64 features (random normal),
z-scored per symbol, windows of ``T`` rows, shuffled batches of ``BATCH`` windows (float32),
float64 labels.  Each tool serves the same positions; their batches are checked equal first.
CPU time per batch (``time.process_time``: the machine is shared, wall time is not
comparable), median of ``ROUNDS`` rounds of ``BATCHES`` batches, and the load average.

    python benchmarks/bench_panel.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

import lobfast
from lobfast.torch import PanelDataset, WindowDataset

SYMBOLS, ROWS, F, T, BATCH, BATCHES = 30, 13_000, 11, 30, 512, 50


def indexed_batch(panel: PanelDataset, positions) -> tuple[torch.Tensor, ...]:
    """The previous PanelDataset.batch: each symbol's batch assigned to its rows by index."""
    pos = np.asarray(positions, dtype=np.int64)
    sym = panel.symbol[pos]
    x = torch.empty((len(pos), panel.T, panel.parts[0].X.shape[1]), dtype=panel.dtype)
    ys = None
    for k in np.unique(sym):
        at = np.flatnonzero(sym == k)
        part = panel.parts[k].batch(pos[at] - panel.offsets[k])
        rows = torch.from_numpy(at)
        x[rows] = part[0]
        if ys is None:
            ys = torch.empty((len(pos), *part[1].shape[1:]), dtype=part[1].dtype)
        ys[rows] = part[1]
    return x, ys, torch.from_numpy(sym.astype(np.int64))


def cpu_ms(fn, batches) -> float:
    c = time.process_time()
    for b in batches:
        fn(b)
    return (time.process_time() - c) / len(batches) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    parts = {}
    for k in range(SYMBOLS):
        X = rng.normal(size=(ROWS, F))
        parts[f"S{k:02d}"] = WindowDataset(X, rng.normal(size=ROWS), T, normalizer=lobfast.Normalizer().fit(X))
    panel = PanelDataset(parts)
    one = WindowDataset(rng.normal(size=(SYMBOLS * ROWS, F)), rng.normal(size=SYMBOLS * ROWS), T)
    batches = [rng.permutation(len(panel))[:BATCH] for _ in range(BATCHES)]
    for b in batches[:3]:
        for a, c in zip(panel.batch(b), indexed_batch(panel, b)):
            assert torch.equal(a, c)
    tools = {
        "PanelDataset.batch (runs + one reorder)": panel.batch,
        "previous: indexed assignment per symbol": lambda b: indexed_batch(panel, b),
        "one WindowDataset, same batch size": one.batch,
    }
    load0 = os.getloadavg()[0]
    times = {name: [] for name in tools}
    for _ in range(args.rounds):
        for name, fn in tools.items():
            times[name].append(cpu_ms(fn, batches))
    load1 = os.getloadavg()[0]
    base = statistics.median(times["PanelDataset.batch (runs + one reorder)"])
    print(
        f"{SYMBOLS} symbols x {ROWS} rows x {F} features, T={T}, batch {BATCH}, torch threads {torch.get_num_threads()}"
    )
    print("| tool | CPU ms per batch | / PanelDataset.batch |\n|---|---|---|")
    for name, t in times.items():
        m = statistics.median(t)
        print(f"| {name} | {m:.2f} | {m / base:.1f}x |")
    print(f"load average (1 min) at start / end: {load0:.2f} / {load1:.2f}")


if __name__ == "__main__":
    main()
