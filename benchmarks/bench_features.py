"""Features side by side: lobfast.features against the same features in vectorised NumPy, and
lobfast.rolling_std against bottleneck.move_std and pandas rolling().std().

The book is a synthetic random walk shaped like the USD-M sample (10 levels, irregular times,
~20 updates/s, trades on a third of the rows), all rows valid so the plain NumPy version, which
has no notion of gaps, computes the same numbers; equality is checked before timing.

    .venv/bin/python benchmarks/bench_features.py [--rows N] [--rounds R]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

from common import md_table, median, spread, time_side_by_side  # noqa: E402

import lobfast  # noqa: E402

LOBFAST = "lobfast.features (C)"
LOBFAST_OUT = "lobfast.features (C), out="
LOBFAST_ONE = "lobfast.features (C), threads=1"
LOBFAST_ONE_OUT = "lobfast.features (C), threads=1, out="
NUMPY = "vectorised NumPy"
TARGET = 8.0  # lobfast.features against vectorised NumPy
ROLL_TARGET = 1.5  # lobfast.rolling_std against bottleneck.move_std
STD, STD_OUT, BN = "lobfast.rolling_std", "lobfast.rolling_std, out=", "bottleneck.move_std"
ROWS = 2_000_000
LEVELS = 10
SPEC = lobfast.microstructure.default_spec(LEVELS, trades=True)


def synthetic_book(n: int = ROWS, levels: int = LEVELS, seed: int = 1):
    rng = np.random.default_rng(seed)
    ts = 1_723_161_600_000_000_000 + np.cumsum(rng.exponential(50e6, n)).astype(np.int64)
    tick = 0.1
    mid_ticks = 600_000 + np.cumsum(rng.choice([-1, 0, 0, 0, 1], n))
    spread_ticks = rng.choice([1, 1, 1, 2, 3], n)
    bid1 = (mid_ticks - spread_ticks // 2 - spread_ticks % 2) * tick
    ask1 = bid1 + spread_ticks * tick
    steps = np.arange(levels) * tick
    bid_px = bid1[:, None] - steps
    ask_px = ask1[:, None] + steps
    bid_sz = np.round(rng.lognormal(0, 1.2, (n, levels)), 3) + 0.001
    ask_sz = np.round(rng.lognormal(0, 1.2, (n, levels)), 3) + 0.001
    book = lobfast.BookSnapshots(
        ts=ts,
        update_id=np.arange(n, dtype=np.int64) * 3,
        bid_px=bid_px,
        bid_sz=bid_sz,
        ask_px=ask_px,
        ask_sz=ask_sz,
        valid=np.ones(n, bool),
    )
    m = n // 3
    tts = np.sort(rng.integers(ts[0], ts[-1], m))
    trades = lobfast.Trades(
        ts=tts,
        local_ts=tts,
        price=np.full(m, 60_000.0),
        qty=np.round(rng.lognormal(-3, 1.5, m), 3) + 0.001,
        side=rng.choice(np.array([-1, 1], np.int8), m),
        trade_id=np.arange(m),
    )
    return book, trades


# --- the same features, the way a researcher writes them with NumPy ---------------------------


def _roll_rows(x: np.ndarray, w: int) -> np.ndarray:
    c = np.concatenate([[0.0], np.cumsum(x)])
    out = np.full(len(x), np.nan)
    out[w - 1 :] = c[w:] - c[:-w]
    return out


def _roll_span(x: np.ndarray, ts: np.ndarray, span: int, first: int) -> tuple[np.ndarray, np.ndarray]:
    """Sums over (t - span, t] via cumulative sums; NaN until the window is full; also counts."""
    c = np.concatenate([[0.0], np.cumsum(x)])
    lo = np.searchsorted(ts, ts - span, side="right")
    hi = np.arange(1, len(x) + 1)
    s = c[hi] - c[lo]
    full = ts - ts[first] >= span
    return np.where(full, s, np.nan), np.where(full, hi - lo, 0)


def _roll_std_rows(x: np.ndarray, w: int) -> np.ndarray:
    s, s2 = _roll_rows(x, w), _roll_rows(x * x, w)
    return np.sqrt(np.maximum(s2 - s * s / w, 0) / (w - 1))


def _roll_std_span(x: np.ndarray, ts: np.ndarray, span: int) -> np.ndarray:
    s, n = _roll_span(x, ts, span, 1)
    s2, _ = _roll_span(x * x, ts, span, 1)
    with np.errstate(all="ignore"):
        v = np.sqrt(np.maximum(s2 - s * s / n, 0) / (n - 1))
    return np.where(n >= 2, v, np.nan)


def numpy_features(book, trades) -> dict[str, np.ndarray]:
    c = book.columns
    ts, bp, bs, ap, as_ = c["ts"], c["bid_px"], c["bid_sz"], c["ask_px"], c["ask_sz"]
    out = {}
    mid = (bp[:, 0] + ap[:, 0]) / 2
    out["mid"] = mid
    out["microprice"] = (bp[:, 0] * as_[:, 0] + ap[:, 0] * bs[:, 0]) / (bs[:, 0] + as_[:, 0])
    cb, ca = np.cumsum(bs, axis=1), np.cumsum(as_, axis=1)
    nb, na = np.cumsum(bp * bs, axis=1), np.cumsum(ap * as_, axis=1)
    out["wmid_5"] = (nb[:, 4] / cb[:, 4] + na[:, 4] / ca[:, 4]) / 2
    out["spread"] = ap[:, 0] - bp[:, 0]
    out["spread_bps"] = out["spread"] / mid * 1e4
    for k in (1, 5, 10):
        out[f"imbalance_{k}"] = (cb[:, k - 1] - ca[:, k - 1]) / (cb[:, k - 1] + ca[:, k - 1])
    for k in (1, 5, 10):
        out[f"bid_depth_{k}"] = cb[:, k - 1]
    for k in (1, 5, 10):
        out[f"ask_depth_{k}"] = ca[:, k - 1]
    ofi = np.full(bp.shape, np.nan)
    ofi[1:] = (
        np.where(bp[1:] >= bp[:-1], bs[1:], 0.0)
        - np.where(bp[1:] <= bp[:-1], bs[:-1], 0.0)
        - np.where(ap[1:] <= ap[:-1], as_[1:], 0.0)
        + np.where(ap[1:] >= ap[:-1], as_[:-1], 0.0)
    )
    out["ofi"] = ofi[:, 0]
    for i in range(LEVELS):
        out[f"ofi_{i + 1}"] = ofi[:, i]
    o = np.nan_to_num(ofi[:, 0])
    for w in (10, 100):
        r = _roll_rows(o, w)
        r[w - 1] = np.nan  # the first window would include row 0, whose OFI is unknown
        out[f"ofi_w{w}"] = r
    for name, span in (("1s", 10**9), ("10s", 10**10)):
        out[f"ofi_{name}"] = _roll_span(o, ts, span, 1)[0]
    out["ofi_cum"] = np.cumsum(o)
    out["ofi_cum"][0] = np.nan
    ret = np.full(len(mid), np.nan)
    ret[1:] = np.diff(np.log(mid))
    out["ret"] = ret
    r0 = np.nan_to_num(ret)
    for w in (20, 100):
        v = _roll_std_rows(r0, w)
        v[w - 1] = np.nan
        out[f"vol_{w}"] = v
    for name, span in (("10s", 10**10), ("60s", 6 * 10**10)):
        out[f"vol_{name}"] = _roll_std_span(r0, ts, span)
    changed = np.ones(len(ts))
    changed[1:] = c["update_id"][1:] != c["update_id"][:-1]
    for name, span in (("1s", 10**9), ("10s", 10**10)):
        out[f"intensity_{name}"] = _roll_span(changed, ts, span, 0)[0] / (span / 1e9)
    # trades to rows: row i takes trades in (ts[i-1], ts[i]]
    row = np.searchsorted(ts, trades.ts, side="left")
    keep = (row > 0) & (row < len(ts))
    row, q, s = row[keep], trades.qty[keep], trades.side[keep]
    n = len(ts)
    buy = np.bincount(row, weights=np.where(s > 0, q, 0.0), minlength=n)
    sell = np.bincount(row, weights=np.where(s < 0, q, 0.0), minlength=n)
    count = np.bincount(row, minlength=n).astype(float)
    for a in (buy, sell, count):
        a[0] = np.nan
    out.update(buy_volume=buy, sell_volume=sell, signed_volume=buy - sell, trade_count=count)
    return out


def check_same(got, want) -> None:
    for name in SPEC:
        g, w = got[name], want[name]
        scale = np.nanmax(np.abs(w)) if np.isfinite(w).any() else 1.0
        # the NumPy version's cumulative sums lose digits, so compare against the column's scale
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6 * max(scale, 1.0), equal_nan=True, err_msg=name)


def time_both(tools: dict, rounds: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Like common.time_side_by_side (interleaved, rotating order, garbage collected untimed),
    recording for each call the wall seconds and the process's CPU seconds (user + system, all
    its threads): on a shared machine the CPU time leaves out the other processes' turns, and it
    keeps the page faults of fresh memory, which are part of both sides' cost."""
    import gc
    import time

    names = list(tools)
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            gc.collect()
            t0, c0 = time.perf_counter(), time.process_time()
            result = tools[name]()
            cpu[name].append(time.process_time() - c0)
            wall[name].append(time.perf_counter() - t0)
            del result
    return wall, cpu


def speed(rounds: int, rows: int = ROWS) -> dict:
    book, trades = synthetic_book(rows)
    check_same(lobfast.features(book, trades), numpy_features(book, trades))
    kept = lobfast.features(book, trades)  # the arrays out= writes into
    again = lobfast.features(book, trades, out=kept)
    fresh = lobfast.features(book, trades)
    one = lobfast.features(book, trades, threads=1)
    for name in SPEC:
        np.testing.assert_array_equal(again[name], fresh[name], err_msg=f"out= {name}")
        np.testing.assert_array_equal(one[name], fresh[name], err_msg=f"threads=1 {name}")
    del again, fresh, one
    load = [os.getloadavg()[0]]
    tools = {
        LOBFAST: lambda: lobfast.features(book, trades),
        LOBFAST_OUT: lambda: lobfast.features(book, trades, out=kept),
        LOBFAST_ONE: lambda: lobfast.features(book, trades, threads=1),
        LOBFAST_ONE_OUT: lambda: lobfast.features(book, trades, out=kept, threads=1),
        NUMPY: lambda: numpy_features(book, trades),
    }
    times, cpu = time_both(tools, rounds)
    load.append(os.getloadavg()[0])
    return {
        "rows": rows,
        "columns": len(SPEC),
        "median_s": {k: median(v) for k, v in times.items()},
        "cpu_s": {k: median(v) for k, v in cpu.items()},
        "spread": {k: spread(v) for k, v in times.items()},
        "load": load,
    }


ROLL_N = 10_000_000


def rolling_speed(rounds: int, n: int = ROLL_N) -> dict:
    import bottleneck as bn
    import pandas as pd

    x = np.random.default_rng(3).normal(0, 1e-4, n)
    out = {"n": n, "windows": {}, "load": [os.getloadavg()[0]]}
    series = pd.Series(x)
    buf = np.empty(n)
    for w in (20, 100):
        np.testing.assert_allclose(lobfast.rolling_std(x, w, ddof=0), bn.move_std(x, w), rtol=1e-6, equal_nan=True)
        tools = {
            STD: lambda w=w: lobfast.rolling_std(x, w, ddof=0),
            STD_OUT: lambda w=w: lobfast.rolling_std(x, w, ddof=0, out=buf),
            BN: lambda w=w: bn.move_std(x, w),
            "pandas rolling().std()": lambda w=w: series.rolling(w).std(ddof=0),
        }
        times = time_side_by_side(tools, rounds, inner={STD: 3, STD_OUT: 3, BN: 3})
        out["windows"][w] = {k: median(v) for k, v in times.items()}
    ts = np.cumsum(np.random.default_rng(4).exponential(50e6, n)).astype(np.int64)
    pts = pd.Series(x, index=pd.to_datetime(ts))
    times = time_side_by_side(
        {
            STD: lambda: lobfast.rolling_std(x, "10s", ts=ts, ddof=1),
            STD_OUT: lambda: lobfast.rolling_std(x, "10s", ts=ts, ddof=1, out=buf),
            "pandas rolling('10s').std()": lambda: pts.rolling("10s").std(),
        },
        max(1, rounds // 2),
    )
    out["time"] = {k: median(v) for k, v in times.items()}
    out["load"].append(os.getloadavg()[0])
    return out


def section(feat: dict, roll: dict | None) -> list[str]:
    base = feat["median_s"][LOBFAST]
    rows = [
        [
            tool,
            f"{t * 1e3:,.0f}",
            f"±{feat['spread'][tool] * 100:.0f}%",
            f"{feat['rows'] / t / 1e6:.1f}",
            f"{t / base:.1f}x",
            f"{feat['cpu_s'][tool] * 1e3:,.0f}",
            f"{feat['cpu_s'][tool] / feat['cpu_s'][LOBFAST]:.1f}x",
        ]
        for tool, t in feat["median_s"].items()
    ]
    med = feat["median_s"]
    fresh, reuse = med[NUMPY] / med[LOBFAST], med[NUMPY] / med[LOBFAST_OUT]
    cpu = feat["cpu_s"]
    cpu_fresh, cpu_reuse = cpu[NUMPY] / cpu[LOBFAST], cpu[NUMPY] / cpu[LOBFAST_OUT]
    one, one_out = med[NUMPY] / med[LOBFAST_ONE], med[NUMPY] / med[LOBFAST_ONE_OUT]
    lines = [
        f"{feat['rows']:,} book rows x {LEVELS} levels, {feat['columns']} columns (the default spec, with trades); "
        "`out=`: written into the arrays of an earlier result (checked bit for bit equal to a fresh one); "
        f"lobfast on every core ({os.cpu_count()}) unless `threads=1` (the same values, checked); "
        f"machine load (1 min) at start / end: {feat['load'][0]:.2f} / {feat['load'][1]:.2f} (2 cores):",
        "",
        md_table(
            ["tool", "median ms", "spread", "M rows/s", "time / lobfast's", "median CPU ms", "CPU / lobfast's"], rows
        ),
        "",
        f"- lobfast vs vectorised NumPy: **{fresh:.1f}x** with new columns, **{reuse:.1f}x** with `out=` "
        f"(target >= {TARGET:g}x: {'met' if min(fresh, reuse) >= TARGET else '**not met**'}"
        f"{'' if min(fresh, reuse) >= TARGET or reuse < TARGET else ' with new columns, met with out='})",
        f"- on one core (`threads=1`): {one:.1f}x with new columns, {one_out:.1f}x with `out=`",
        f"- in CPU time (process, all threads; the other processes' turns left out): {cpu_fresh:.1f}x with new "
        f"columns, {cpu_reuse:.1f}x with `out=`",
    ]
    if roll is None:
        return lines
    lines += [
        "",
        f"Rolling standard deviation, {roll['n']:,} float64 values (lobfast and bottleneck 3 calls a round); "
        f"load at start / end: {roll['load'][0]:.2f} / {roll['load'][1]:.2f}:",
        "",
    ]
    rrows = []
    for w, m in roll["windows"].items():
        b = m[STD]
        for tool, t in m.items():
            rrows.append([f"{w} rows", tool, f"{t * 1e3:,.1f}", f"{t / b:.2f}x"])
    b = roll["time"][STD]
    for tool, t in roll["time"].items():
        rrows.append(["10 s span", tool, f"{t * 1e3:,.1f}", f"{t / b:.2f}x"])
    lines.append(md_table(["window", "tool", "median ms", "time / lobfast's"], rrows))
    worst = min(m[BN] / m[STD] for m in roll["windows"].values())
    worst_out = min(m[BN] / m[STD_OUT] for m in roll["windows"].values())
    ok = "met" if min(worst, worst_out) >= ROLL_TARGET else "**not met**"
    lines += [
        "",
        f"- lobfast vs bottleneck (worst window): **{worst:.2f}x** with a new array, **{worst_out:.2f}x** with "
        f"`out=` (target >= {ROLL_TARGET:g}x: {ok}); bottleneck has no time windows.",
    ]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=ROWS)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--features-only", action="store_true", help="skip the rolling_std comparison")
    args = ap.parse_args()
    feat = speed(args.rounds, args.rows)
    if args.features_only:
        print("\n".join(section(feat, None)))
        return
    print("\n".join(section(feat, rolling_speed(args.rounds))))


if __name__ == "__main__":
    main()
