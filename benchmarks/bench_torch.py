"""PyTorch data path: ``lobfast.torch`` batches vs ``torch.utils.data.DataLoader`` and NumPy.

Workload: batches of ``BATCH`` windows of ``T`` rows x ``F`` features, float32, z-scored
(``lobfast.Normalizer("zscore")`` fitted on the first 70 % of the rows), from the 10-level
book of the bundled spot BTCUSDT sample (``reconstruct(every="100ms").to_deeplob()``,
6,504 rows) tiled to ``ROWS`` rows; labels are random normal float64 (speed does not depend
on the values).  Tools, all serving the same windows in the same shuffled order:

- lobfast: ``lobfast.torch.loader(WindowDataset(X, y, T, normalizer=...), BATCH, shuffle=True)``,
  one C gather per batch that normalises while copying;
- DataLoader: a map-style ``Dataset`` whose ``__getitem__`` slices one window, normalises it
  in float64 NumPy and returns ``torch.from_numpy(w.astype(np.float32))`` and a label tensor;
  ``DataLoader(batch_size=BATCH)`` with the default collate, in the main process;
- the same DataLoader with ``num_workers=2, persistent_workers=True``;
- NumPy: one fancy index ``X[ends[:, None] + np.arange(-T + 1, 1)]`` per batch, normalised
  in float64, ``torch.from_numpy(z.astype(np.float32))``.

Every tool's first batches are checked equal to lobfast's (float32 windows bit for bit,
labels) before timing.  Measurements: seconds per batch in steady state (interleaved rounds,
medians), peak RSS growth of each tool in a fresh process while it serves batches, and one
DeepLOB-TCN training step on the CPU to put the data time in proportion.

    python benchmarks/bench_torch.py [--quick] [--rounds N] [--json PATH]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

BENCH = Path(__file__).resolve().parent
if __name__ == "__main__":
    sys.path[:0] = [str(BENCH.parent), str(BENCH)]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from common import md_table, median, spread  # noqa: E402
from memprobe import reset_hwm, rss_now, vm_hwm  # noqa: E402

import lobfast  # noqa: E402
import lobfast.datasets  # noqa: E402
from lobfast.torch import WindowDataset, loader  # noqa: E402

LOBFAST = "lobfast `loader`"
DATALOADER = "DataLoader"
WORKERS = "DataLoader, 2 workers"
NUMPY = "NumPy fancy index"
TOOLS = (LOBFAST, DATALOADER, WORKERS, NUMPY)

BATCH, T, F = 2048, 100, 40
ROWS, ROWS_QUICK = 200_000, 50_000
BATCHES, BATCHES_QUICK = 40, 10  # batches per timed epoch
ROUNDS, ROUNDS_QUICK = 5, 2
SKIP = 2  # batches of each epoch left out of the time: the start-up of the 2 worker processes
CHECK_BATCHES = 3
INNER = {LOBFAST: 3}  # epochs a round: lobfast's take a fraction of a second, so more samples
PROBE_BATCHES = 20
N_WORKERS = 2
STEPS, STEPS_QUICK = 3, 1  # timed training steps (~40 s each on 2 cores)
MMAP_THRESHOLD = 1 << 20  # second memory probe: batches mapped and unmapped, so RSS follows live memory
WARM_BATCH = 64  # the untimed first step (optimiser state, allocator) runs on this many windows
TRAIN_SHARE = 0.7  # the normaliser is fitted on the first 70 % of the rows
SEED = 0
TARGET_RATIO = 5.0  # lobfast at least 5x faster than the DataLoader baseline
TARGET_SHARE = 0.10  # data loading under 10 % of a training step
BATCH_BYTES = BATCH * T * F * 4


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def loadavg() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


# ------------------------------------------------------------------------------ data
def book_rows() -> np.ndarray:
    """(6504, 40) float32: the spot BTCUSDT sample's 10-level book every 100 ms, DeepLOB layout."""
    paths = [lobfast.datasets.path("spot_btcusdt_20240808"), lobfast.datasets.path("spot_btcusdt_20240809")]
    md = lobfast.read_binance(paths)
    book = lobfast.reconstruct(md.depth, levels=10, every="100ms")
    return book.to_deeplob()


def workload(rows: int) -> tuple[np.ndarray, np.ndarray, lobfast.Normalizer]:
    """``rows`` book rows (the sample tiled), random normal labels, a z-score normaliser."""
    x0 = book_rows()
    X = np.ascontiguousarray(np.tile(x0, (-(-rows // len(x0)), 1))[:rows])
    y = np.random.default_rng(SEED).standard_normal(rows)
    norm = lobfast.Normalizer("zscore").fit(X, rows=slice(0, int(rows * TRAIN_SHARE)))
    return X, y, norm


class UserWindows(torch.utils.data.Dataset):
    """The map-style Dataset a user writes: one window per ``__getitem__``, normalised in NumPy.

    It multiplies by the normaliser's inverse standard deviation (``scale``) rather than
    dividing by the standard deviation, the arithmetic of lobfast's gather, so the float32
    windows can be compared bit for bit."""

    def __init__(self, X: np.ndarray, y: np.ndarray, ends: np.ndarray, norm: lobfast.Normalizer) -> None:
        self.X, self.y, self.ends = X, y, ends
        self.mean, self.inv_std = norm.shift[0], norm.scale[0]

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        e = int(self.ends[i])
        w = self.X[e - T + 1 : e + 1]
        z = (w - self.mean) * self.inv_std  # float64
        return torch.from_numpy(z.astype(np.float32)), torch.tensor(self.y[e])


def numpy_batches(X: np.ndarray, y: np.ndarray, ends: np.ndarray, norm: lobfast.Normalizer, order: np.ndarray):
    """Batches the vectorised way: one fancy index per batch, normalised in place in float64."""
    mean, inv_std = norm.shift[0], norm.scale[0]
    back = np.arange(-T + 1, 1)
    for k in range(0, len(order), BATCH):
        e = ends[order[k : k + BATCH]]
        z = X[e[:, None] + back] - mean  # (B, T, F) float64
        z *= inv_std
        yield torch.from_numpy(z.astype(np.float32)), torch.from_numpy(y[e])


class Tools:
    """The four tools over one workload; ``epoch(name, order)`` iterates batches in that order."""

    def __init__(self, rows: int) -> None:
        self.X, self.y, self.norm = workload(rows)
        self.ds = WindowDataset(self.X, self.y, T, normalizer=self.norm)
        self.user = UserWindows(self.X, self.y, self.ds.ends, self.norm)
        self.lf = loader(self.ds, BATCH, shuffle=True, seed=SEED)
        # the permutation lobfast's loader draws for epoch 0 (seed, epoch): every tool follows it
        self.order = np.random.default_rng((SEED, 0)).permutation(len(self.ds))
        self._workers: dict[int, torch.utils.data.DataLoader] = {}

    def dataloader(self, positions: np.ndarray, workers: int = 0, **kw) -> torch.utils.data.DataLoader:
        # sampler= the shared order, in place of shuffle=True's own permutation
        return torch.utils.data.DataLoader(
            self.user, batch_size=BATCH, sampler=positions.tolist(), num_workers=workers, **kw
        )

    def epoch(self, name: str, n_batches: int):
        """Iterator over the first ``n_batches`` batches of the shared order."""
        if name == LOBFAST:
            self.lf.set_epoch(0)
            return islice(iter(self.lf), n_batches)
        positions = self.order[: n_batches * BATCH]
        if name == DATALOADER:
            return iter(self.dataloader(positions))
        if name == WORKERS:
            # one persistent pool per epoch length; an epoch ends with the sampler, so no work is
            # left in flight when the next tool is timed
            dl = self._workers.get(n_batches)
            if dl is None:
                dl = self._workers[n_batches] = self.dataloader(
                    positions, N_WORKERS, persistent_workers=True, worker_init_fn=_probe_worker_init
                )
            return iter(dl)
        if name == NUMPY:
            return numpy_batches(self.X, self.y, self.ds.ends, self.norm, positions)
        raise ValueError(name)

    def close(self) -> None:
        self._workers.clear()
        gc.collect()


def check_equal(tools: Tools) -> None:
    """Every tool's first batches equal lobfast's, float32 bit for bit; stops the run otherwise."""
    want = list(tools.epoch(LOBFAST, CHECK_BATCHES))
    for name in TOOLS[1:]:
        if name == WORKERS:
            it = iter(tools.dataloader(tools.order[: CHECK_BATCHES * BATCH], N_WORKERS))
        else:
            it = tools.epoch(name, CHECK_BATCHES)
        got = list(it)
        if len(got) != len(want):
            raise SystemExit(f"{name}: {len(got)} batches, expected {len(want)}")
        for k, ((xa, ya), (xb, yb)) in enumerate(zip(want, got)):
            if xb.dtype != xa.dtype or xb.shape != xa.shape:
                raise SystemExit(
                    f"{name}: batch {k} is {xb.dtype} {tuple(xb.shape)}, expected {xa.dtype} {tuple(xa.shape)}"
                )
            if not torch.equal(xa, xb):
                i = tuple(int(v) for v in (xa != xb).nonzero()[0])
                raise SystemExit(f"{name}: batch {k} window value {i} is {float(xb[i])!r}, expected {float(xa[i])!r}")
            if yb.dtype != ya.dtype or not torch.equal(ya, yb):
                raise SystemExit(f"{name}: batch {k} labels differ from lobfast's ({yb.dtype} vs {ya.dtype})")


# ------------------------------------------------------------------------------ speed
def per_batch(it, n_batches: int) -> float:
    """Seconds per batch from the SKIP-th batch to the last (steady state)."""
    n, t_start = 0, 0.0
    for _x, _y in it:
        n += 1
        if n == SKIP:
            t_start = time.perf_counter()
    t_end = time.perf_counter()
    if n != n_batches:
        raise SystemExit(f"{n} batches, expected {n_batches}")
    return (t_end - t_start) / (n_batches - SKIP)


def speed(tools: Tools, rounds: int, n_batches: int) -> dict[str, list[float]]:
    """Interleaved rounds (order rotating each round, garbage collected between tools, untimed);
    one epoch of ``n_batches`` batches per tool and round (``INNER`` epochs for the fast one)."""
    for name in TOOLS:  # untimed: starts the persistent workers, lets the allocator settle
        per_batch(tools.epoch(name, n_batches), n_batches)
    times: dict[str, list[float]] = {n: [] for n in TOOLS}
    for r in range(rounds):
        order = TOOLS[r % len(TOOLS) :] + TOOLS[: r % len(TOOLS)]
        for name in order:
            for _ in range(INNER.get(name, 1)):
                gc.collect()
                times[name].append(per_batch(tools.epoch(name, n_batches), n_batches))
    return times


# ------------------------------------------------------------------------------ memory
_WORKER_DIR = os.environ.get("LOBFAST_BENCH_WORKER_DIR")


def _probe_worker_init(_worker_id: int) -> None:
    """In a DataLoader worker of a memory probe: reset its peak and note its RSS."""
    if _WORKER_DIR:
        reset_hwm()
        Path(_WORKER_DIR, str(os.getpid())).write_text(str(rss_now()))


def probe(tool: str, rows: int, n_batches: int) -> dict:
    """Run in a fresh interpreter: peak RSS growth while ``tool`` serves ``n_batches`` batches
    (each read once, as a model would, then dropped)."""
    tools = Tools(rows)
    gc.collect()
    base = rss_now()
    reset = reset_hwm()
    n = 0
    workers = {}
    it = tools.epoch(tool, n_batches)
    for x, _y in it:
        float(x.sum())
        n += 1
    del x, _y
    peak = vm_hwm()
    if _WORKER_DIR:
        for p in Path(_WORKER_DIR).iterdir():
            hwm = vm_hwm(p.name)
            if hwm is not None:
                workers[p.name] = max(0, hwm - int(p.read_text()))
    return {
        "tool": tool,
        "batches": n,
        "rss_after_setup": base,
        "peak_extra": max(0, (peak or 0) - base),
        "workers_peak_extra": sorted(workers.values()),
        "hwm_reset": reset,
    }


def peak_memory(tool: str, rows: int, n_batches: int, mmap_threshold: int | None = None) -> dict:
    """``probe`` in a fresh interpreter; ``mmap_threshold``: glibc's fixed mmap threshold in
    bytes (blocks above it are mapped and unmapped one by one) instead of its dynamic one."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, LOBFAST_BENCH_WORKER_DIR=tmp)
        if mmap_threshold is not None:
            env["MALLOC_MMAP_THRESHOLD_"] = str(mmap_threshold)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--probe", tool, "--rows", str(rows)]
        cmd += ["--batches", str(n_batches)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if out.returncode != 0:
        raise SystemExit(f"memory probe {tool} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------ training step
def training(tools: Tools, steps: int) -> dict:
    """DeepLOB-TCN regression, Adam, Huber loss, on lobfast's batches: seconds per step
    (forward + backward + optimiser step) and per batch fetched, timed separately."""
    from lobfast.models import DeepLOBTCN

    torch.manual_seed(SEED)
    model = DeepLOBTCN(features=F, head="regression")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        loss = model.loss(model(x), y, base="huber")
        loss.backward()
        opt.step()

    tools.lf.set_epoch(1)
    it = iter(tools.lf)
    x, y = next(it)
    step(x[:WARM_BATCH], y[:WARM_BATCH])
    fetch_s, step_s = [], []
    for _ in range(steps):
        gc.collect()
        t0 = time.perf_counter()
        x, y = next(it)
        t1 = time.perf_counter()
        step(x, y)
        t2 = time.perf_counter()
        fetch_s.append(t1 - t0)
        step_s.append(t2 - t1)
    return {
        "threads": torch.get_num_threads(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "receptive_field": model.receptive_field,
        "steps": steps,
        "step_s": step_s,
        "fetch_s": fetch_s,
    }


# ------------------------------------------------------------------------------ entry point
def run(quick: bool = False, rounds: int | None = None) -> dict:
    rounds = rounds or (ROUNDS_QUICK if quick else ROUNDS)
    rows = ROWS_QUICK if quick else ROWS
    n_batches = BATCHES_QUICK if quick else BATCHES
    steps = STEPS_QUICK if quick else STEPS
    t0 = time.perf_counter()
    load0 = loadavg()
    tools = Tools(rows)
    log(f"torch: {len(tools.ds):,} windows of {T}x{F}; checking {CHECK_BATCHES} batches of every tool")
    check_equal(tools)
    log(f"torch: {rounds} rounds x {n_batches} batches of {BATCH} per tool")
    times = speed(tools, rounds, n_batches)
    tools.close()
    log(f"torch: peak memory, each tool in a fresh process ({PROBE_BATCHES} batches)")
    mem = {name: peak_memory(name, rows, PROBE_BATCHES) for name in TOOLS}
    mem_mapped = {name: peak_memory(name, rows, PROBE_BATCHES, MMAP_THRESHOLD) for name in TOOLS}
    log(f"torch: DeepLOB-TCN training step, batch {BATCH}, {steps} timed step(s) (tens of seconds each on 2 cores)")
    train = training(tools, steps)
    med = {n: median(v) for n, v in times.items()}
    step = median(train["step_s"])
    return {
        "rows": rows,
        "windows": len(tools.ds),
        "batch": BATCH,
        "T": T,
        "F": F,
        "batches": n_batches,
        "rounds": rounds,
        "torch": torch.__version__,
        "per_batch_s": times,
        "median_s": med,
        "spread": {n: spread(v) for n, v in times.items()},
        "ratio": {n: med[n] / med[LOBFAST] for n in TOOLS},
        "memory": mem,
        "memory_mapped": mem_mapped,
        "train": train,
        "step_s": step,
        "share": {n: med[n] / (med[n] + step) for n in TOOLS},
        "load_average": [load0, loadavg()],
        "elapsed_s": time.perf_counter() - t0,
    }


def _ok(flag: bool) -> str:
    return "met" if flag else "**not met**"


def _mb(nbytes: float) -> str:
    return f"{nbytes / 1e6:.1f}"


def lines(res: dict) -> list[str]:
    med, spr, ratio = res["median_s"], res["spread"], res["ratio"]
    rows = []
    for n in TOOLS:
        rows.append(
            [
                n,
                f"{med[n] * 1e3:,.1f}",
                f"±{spr[n] * 100:.0f}%",
                f"{res['batch'] / med[n]:,.0f}",
                f"{BATCH_BYTES / med[n] / 1e6:,.0f}",
                "1.0" if n == LOBFAST else f"{ratio[n]:.1f}x",
            ]
        )
    t_speed = md_table(
        ["tool", "ms per batch", "spread", "windows/s", "MB/s of float32 windows", "time / lobfast's"], rows
    )
    rows = []
    for n in TOOLS:
        row = [n]
        for key in ("memory", "memory_mapped"):
            m = res[key][n]
            w = m["workers_peak_extra"]
            total = m["peak_extra"] + sum(w)
            row += [
                _mb(m["peak_extra"]) + (" + " + " + ".join(_mb(v) for v in w) if w else ""),
                f"{total / BATCH_BYTES:.1f}",
            ]
        rows.append(row)
    t_mem = md_table(
        [
            "tool",
            "peak extra RSS MB (main + each worker)",
            "/ one batch",
            f"same, MALLOC_MMAP_THRESHOLD_={MMAP_THRESHOLD}",
            "/ one batch",
        ],
        rows,
    )
    tr, step = res["train"], res["step_s"]
    rows = [[n, f"{med[n] * 1e3:,.1f}", f"{step:,.1f}", f"{res['share'][n] * 100:.2f} %"] for n in TOOLS]
    t_train = md_table(["tool", "data ms per batch", "training step s", "data share of a step"], rows)
    lf_share = res["share"][LOBFAST]
    load = res["load_average"]
    return [
        "",
        "## PyTorch data path: `lobfast.torch` vs `torch.utils.data.DataLoader`",
        "",
        f"- Workload (`benchmarks/bench_torch.py`): batches of {res['batch']:,} windows of {res['T']} x {res['F']} "
        f"float32 (one batch = {_mb(BATCH_BYTES)} MB), z-scored; the 10-level book of the spot BTCUSDT sample "
        '(`reconstruct(every="100ms").to_deeplob()`, 6,504 rows) tiled to '
        f"{res['rows']:,} rows ({res['windows']:,} windows); random normal float64 labels.  torch {res['torch']}.",
        f"- {LOBFAST}: `lobfast.torch.loader(WindowDataset(X, y, T, normalizer=Normalizer('zscore')), "
        f"{BATCH}, shuffle=True)`: one C gather per batch that normalises while copying.",
        f"- {DATALOADER}: a map-style `Dataset` whose `__getitem__` slices one window, normalises it in float64 "
        "NumPy (`(w - mean) * inv_std`) and returns `torch.from_numpy(z.astype(np.float32))` and "
        f"`torch.tensor(y[e])`; `DataLoader(ds, batch_size={BATCH})`, default collate, `num_workers=0`.  "
        "`sampler=` lobfast's permutation stands for `shuffle=True`, so every tool serves the same windows.",
        f"- {WORKERS}: the same with `num_workers={N_WORKERS}, persistent_workers=True`.  The main process only "
        "receives the batches, so the workers have the cores to themselves (in training the model competes "
        "for them).",
        f"- {NUMPY}: `X[ends[:, None] + np.arange(-T + 1, 1)] - mean`, `*= inv_std`, "
        "`torch.from_numpy(z.astype(np.float32))`.",
        f"- Before timing, the first {CHECK_BATCHES} batches of every tool are checked equal to lobfast's "
        "(float32 windows bit for bit, labels); a difference stops the run.",
        f"- Time: {res['rounds']} interleaved rounds (order rotating); each round every tool serves one epoch of "
        f"{res['batches']} batches (lobfast {INNER[LOBFAST]} epochs), each timed from the arrival of batch {SKIP} "
        "to the last (steady state: the workers' start-up is left out), after one untimed epoch per tool "
        "(starts the persistent workers, lets the allocator settle); median seconds per batch, spread = half "
        "the interquartile range / median.",
        "",
        t_speed,
        "",
        f"### Peak memory while serving {PROBE_BATCHES} batches",
        "",
        "Each tool in a fresh process: peak RSS (VmHWM, reset through /proc/self/clear_refs after set-up) minus "
        "the RSS after set-up; each batch is read once (`x.sum()`) and dropped.  DataLoader workers: the "
        "same, measured in each worker from its start.  With glibc's default (dynamic) mmap threshold a freed "
        f"{_mb(BATCH_BYTES)} MB batch goes back to the heap, which can keep several of them resident (it levels "
        f"off after a few batches); the second run fixes the threshold at {MMAP_THRESHOLD >> 20} MiB, so every "
        "batch is mapped and unmapped and the peak follows the memory in use.",
        "",
        t_mem,
        "",
        "### Data loading in a training step",
        "",
        f"`DeepLOBTCN(features={res['F']}, head='regression')` ({tr['parameters']:,} parameters), Adam, Huber "
        f"loss, batch {res['batch']}, CPU, torch threads = {tr['threads']}: forward + backward + optimiser step "
        f"median of {tr['steps']} step(s) = {step:,.1f} s (each step: "
        + ", ".join(f"{s:.1f}" for s in tr["step_s"])
        + f" s) after one untimed step on {WARM_BATCH} windows; lobfast's batch fetched in that loop: "
        + ", ".join(f"{s * 1e3:.1f}" for s in tr["fetch_s"])
        + " ms.  Data share = data time per batch (above) / (that + the step).",
        "",
        t_train,
        "",
        f"Targets (batch {BATCH}, T={T}, F={F}, float32, normalised): lobfast >= {TARGET_RATIO:g}x faster than "
        f"the DataLoader baseline: {ratio[DATALOADER]:.1f}x {_ok(ratio[DATALOADER] >= TARGET_RATIO)} "
        f"({ratio[WORKERS]:.1f}x against {N_WORKERS} workers, {ratio[NUMPY]:.1f}x against NumPy); data loading "
        f"< {TARGET_SHARE * 100:g} % of a DeepLOB-TCN step on CPU: {lf_share * 100:.2f} % "
        f"{_ok(lf_share < TARGET_SHARE)} (DataLoader: {res['share'][DATALOADER] * 100:.2f} %).",
        "",
        f"Load average (1 min) at start / end of this section: {load[0]:.2f} / {load[1]:.2f}; "
        f"{res['elapsed_s']:.0f} s.",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=f"{ROWS_QUICK:,} rows, 2 rounds of 10 batches, 1 step")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    ap.add_argument("--probe", choices=TOOLS, help=argparse.SUPPRESS)
    ap.add_argument("--rows", type=int, default=ROWS, help=argparse.SUPPRESS)
    ap.add_argument("--batches", type=int, default=PROBE_BATCHES, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.probe:
        print(json.dumps(probe(args.probe, args.rows, args.batches)))
        return
    res = run(quick=args.quick, rounds=args.rounds)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=str))
    print("\n".join(lines(res)))
    log(f"total {res['elapsed_s']:.0f} s")


if __name__ == "__main__":
    main()
