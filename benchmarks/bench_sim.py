"""The simulator's stylized-facts targets: real recording against both simulation modes.

For each bundled recording (Binance spot and USD-M BTCUSDT, 2024-08-08) the order flow is
calibrated on the recording and one hour is simulated per seed (0-7 by default) in each mode:

- ``path``: the book follows a Hawkes jump diffusion fitted to the real mid (no drift: the
  fitted one is noise), the flow only fills the book around it;
- ``flow``: no price path; the mid moves only through the simulated order flow, whose rates
  react to the book (``simulate(price=None)``).

Measured with :func:`lobfast.sim.stylized_facts` (1 s returns): OFI -> next-return IC, lag
1..5 ACF of |returns|, excess kurtosis, spread and book-shape facts, and the mean log return
(drift) over the seeds. Targets: IC within 0.08 of real, each ACF lag within 0.04 of real,
kurtosis within a factor 2. Also the CPU seconds each hour took (``time.process_time``) with
the load average.

Run: ``python benchmarks/bench_sim.py [--seeds 8] [--hours 1] [--json out.json]``; prints a
markdown table per recording. Parts run apart (``--recording``, ``--mode``, each with its own
``--json``) are put together by ``--merge a.json b.json ...``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lobfast  # noqa: E402
from lobfast import datasets, sim  # noqa: E402
from lobfast.book import reconstruct  # noqa: E402

RECORDINGS = ("spot_btcusdt_20240808", "usdm_btcusdt_20240808")
LAGS = (1, 2, 3, 4, 5)
IC_TOL, ACF_TOL, KURT_FACTOR = 0.08, 0.04, 2.0
SHAPE = ("spread_mean", "spread_one_tick", "occupancy_1", "occupancy_2", "offset_bps_1", "offset_bps_2")


def facts_row(f: dict) -> dict:
    row = {
        "ofi_ic": f["ofi_ic"],
        "kurtosis": f["kurtosis"],
        "return_std": f["return_std"],
        "mean_return": float(np.mean(f["returns"])) if len(f["returns"]) else float("nan"),
        "n_returns": f["n_returns"],
        "trade_rate": f["trade_rate"],
        "spread_mean": f["spread_mean"],
        "spread_one_tick": f["spread_one_tick"],
    }
    for k in LAGS:
        row[f"acf_abs_{k}"] = float(f["acf_abs_returns"][k - 1])
    for d in (1, 2):
        row[f"occupancy_{d}"] = float(f["tick_occupancy"][d - 1])
        row[f"offset_bps_{d}"] = float(f["level_offset_bps"][d - 1])
    return {k: float(v) for k, v in row.items()}


def run(seeds: int, hours: float, recordings=RECORDINGS, modes=("path", "flow")) -> dict:
    out = {"seeds": seeds, "hours": hours, "recordings": {}}
    for name in recordings:
        md = lobfast.read_binance(datasets.path(name))
        flow = sim.calibrate(md)
        book = reconstruct(md.depth, levels=1, every="100ms")
        ok = book.valid
        mid = (book.bid_px[ok, 0] + book.ask_px[ok, 0]) / 2
        price = sim.HawkesJumpDiffusion.fit(book.ts[ok], mid)
        rec = {"real": facts_row(sim.stylized_facts(md)), "price_fit": repr(price), "modes": {}}
        start = int(book.ts[-1]) + 3600 * 10**9
        for mode, p in (("path", price), ("flow", None)):
            if mode not in modes:
                continue
            rows = []
            for seed in range(seeds):
                c0 = time.process_time()
                m = sim.simulate(f"{int(hours * 3600)}s", flow=flow, price=p, seed=seed, start=start)
                cpu = time.process_time() - c0
                row = facts_row(sim.stylized_facts(m))
                row.update(cpu_s=cpu, load=os.getloadavg()[0], seed=seed)
                rows.append(row)
                print(f"{name} {mode} seed {seed}: {cpu:.1f} s CPU, IC {row['ofi_ic']:+.3f}", file=sys.stderr)
            rec["modes"][mode] = rows
        out["recordings"][name] = rec
    return out


def _mean_sd(rows: list[dict], key: str) -> tuple[float, float]:
    v = np.array([r[key] for r in rows], np.float64)
    v = v[np.isfinite(v)]
    return (float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float("nan")) if len(v) else (math.nan, math.nan)


def table(res: dict) -> str:
    lines = []
    for name, rec in res["recordings"].items():
        real, modes = rec["real"], rec["modes"]
        lines += [
            f"### {name}: real vs simulated ({res['seeds']} seeds x {res['hours']:g} h, mean +- sd over seeds)",
            "",
            "| fact | real | " + " | ".join(modes) + " | target | " + " | ".join(f"{m} meets" for m in modes) + " |",
            "|---|---|" + "---|" * len(modes) + "---|" + "---|" * len(modes),
        ]

        def line(key, target, check, real=real, modes=modes, lines=lines):
            cells, ok = [], []
            for rows in modes.values():
                m, s = _mean_sd(rows, key)
                cells.append(f"{m:.4g} +- {s:.2g}")
                ok.append("-" if check is None else ("yes" if check(m, real[key]) else "**no**"))
            lines.append(
                f"| {key} | {real[key]:.4g} | " + " | ".join(cells) + f" | {target} | " + " | ".join(ok) + " |"
            )

        line("ofi_ic", f"real +- {IC_TOL}", lambda m, r: abs(m - r) <= IC_TOL)
        for k in LAGS:
            line(f"acf_abs_{k}", f"real +- {ACF_TOL}", lambda m, r: abs(m - r) <= ACF_TOL)
        line("kurtosis", f"real x/ {KURT_FACTOR:g}", lambda m, r: r / KURT_FACTOR <= m <= r * KURT_FACTOR)
        for key in ("return_std", "trade_rate", *SHAPE):
            line(key, "(as today)", None)
        for mode, rows in modes.items():
            mr = np.array([r["mean_return"] for r in rows])
            se = mr.std(ddof=1) / math.sqrt(len(mr)) if len(mr) > 1 else math.nan
            cpu = np.array([r["cpu_s"] for r in rows])
            load = np.array([r["load"] for r in rows])
            lines.append(
                f"\n- {mode}: mean 1 s log return over the seeds {mr.mean():+.3g} (standard error {se:.2g}); "
                f"CPU per simulated {res['hours']:g} h: {cpu.mean():.1f} s (min {cpu.min():.1f}, max {cpu.max():.1f}) "
                f"at load {load.mean():.1f}"
            )
        lines += ["", f"Path-mode price: {rec['price_fit']}", ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--recording", choices=RECORDINGS, action="append", help="only these (default: both)")
    ap.add_argument("--mode", choices=("path", "flow"), action="append", help="only these (default: both)")
    ap.add_argument("--merge", type=Path, nargs="+", default=None, help="print the table of saved --json runs")
    args = ap.parse_args(argv)
    if args.merge:
        res = None
        for path in args.merge:
            part = json.loads(path.read_text())
            if res is None:
                res = part
                continue
            for name, rec in part["recordings"].items():
                res["recordings"].setdefault(name, {**rec, "modes": {}})["modes"].update(rec["modes"])
        for rec in res["recordings"].values():
            rec["modes"] = {m: rec["modes"][m] for m in ("path", "flow") if m in rec["modes"]}
        print(table(res))
        return
    res = run(args.seeds, args.hours, args.recording or RECORDINGS, args.mode or ("path", "flow"))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    print(table(res))


if __name__ == "__main__":
    main()
