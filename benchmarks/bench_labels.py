"""Labels: lobfast.labels (C kernels) vs the pandas / NumPy code a researcher would write.

Workload: a synthetic random-walk mid (BTC-like: 60,000 with 1 bp steps, rounded to the
0.05 tick as a mid of a 0.1-tick book) on irregular timestamps (exponential gaps of 50 ms
mean, truncated to the millisecond, so there are ties), ``ROWS`` rows, every row valid
(the pandas versions have no notion of an invalid book).  Each label is checked equal to
its pandas version (same NaN positions, values within 1e-9 relative) before timing; then
medians of interleaved rounds.  The triple barrier in Python walks a smaller input and
its time is extrapolated per row.

    python benchmarks/bench_labels.py [--rounds N] [--rows N]
"""

from __future__ import annotations

import argparse
import os
import sys
from functools import partial
from pathlib import Path

BENCH = Path(__file__).resolve().parent
if __name__ == "__main__":
    sys.path[:0] = [str(BENCH.parent), str(BENCH)]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lobfast import labels as L  # noqa: E402

ROWS = 3_000_000
K = 100  # rows
H = "10s"
H_NS = 10 * 10**9
ALPHA = 0.2  # EMA, as in the DeepLOB-TCN experiments
BARRIER = 5e-4  # absolute log-return barriers, both sides
TB_PY_ROWS = 20_000  # rows the Python triple barrier walks; its time is scaled per row
TARGET = 10.0
TARGET_RET_ROWS = 2.0  # forward return over rows against pandas shift + log
OUT = "lobfast out="  # the same call writing into the arrays of a previous result


def workload(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mid = np.round(60_000 * np.exp(np.cumsum(rng.normal(0, 1e-4, n))) / 0.05) * 0.05
    gaps = np.floor(rng.exponential(50.0, n)).astype(np.int64) * 10**6  # ms, ties when 0
    ts = 1_723_075_200 * 10**9 + np.cumsum(gaps)
    return mid, ts


# ------------------------------------------------------------------------------ pandas side
def pd_ret_rows(mid, ts):
    s = pd.Series(mid)
    return np.log(s.shift(-K) / s).to_numpy()


def pd_ret_time(mid, ts):
    """The mid in effect at t + h by merge_asof (backward), NaN past the last row."""
    target = pd.DataFrame({"t": ts + H_NS})
    book = pd.DataFrame({"t": ts, "m": mid})
    ahead = pd.merge_asof(target, book, on="t")["m"].to_numpy()
    out = np.log(ahead / mid)
    out[ts + H_NS > ts[-1]] = np.nan
    return out


def np_ret_time(mid, ts):
    """The same with np.searchsorted."""
    target = ts + H_NS
    j = np.searchsorted(ts, target, "right") - 1
    out = np.log(mid[j] / mid)
    out[target > ts[-1]] = np.nan
    return out


def pd_smooth(mid, ts):
    s = pd.Series(mid)
    plus = s[::-1].rolling(K).mean()[::-1].shift(-1)  # mean(mid[t+1 .. t+k])
    return ((plus - s) / s).to_numpy()


def pd_smooth_mean(mid, ts):
    s = pd.Series(mid)
    minus = s.rolling(K).mean()
    plus = minus.shift(-K)
    return ((plus - minus) / minus).to_numpy()


def pd_ema(mid, ts):
    s = pd.Series(mid)
    f = np.log(s.shift(-K) / s)
    return f.ewm(alpha=ALPHA, adjust=False).mean().where(f.notna()).to_numpy()


def py_triple_barrier(mid, ts, rows):
    """Per row: the path's log returns over the next K rows, first index past each barrier."""
    n = len(mid)
    label = np.full(n, np.nan)
    for i in range(min(rows, n)):
        e = i + K
        if e >= n:
            path = np.log(mid[i + 1 :] / mid[i])
        else:
            path = np.log(mid[i + 1 : e + 1] / mid[i])
        up = np.flatnonzero(path >= BARRIER)
        dn = np.flatnonzero(path <= -BARRIER)
        first_up = up[0] if len(up) else K + 1
        first_dn = dn[0] if len(dn) else K + 1
        if first_up < first_dn:
            label[i] = 1.0
        elif first_dn < first_up:
            label[i] = -1.0
        elif e < n:
            label[i] = 0.0
    return label


# ------------------------------------------------------------------------------ lobfast side
def lf_ret_rows(mid, ts):
    return L.forward_return((mid, ts), K)[f"ret_{K}"]


def lf_ret_time(mid, ts):
    return L.forward_return((mid, ts), H)[f"ret_{H}"]


def lf_out(horizon):
    """forward_return(..., out=) into the arrays of one earlier result (no new memory)."""
    kept = {}

    def call(mid, ts):
        if "lf" not in kept:
            kept["lf"] = L.forward_return((mid, ts), horizon)
        return L.forward_return((mid, ts), horizon, out=kept["lf"])[f"ret_{horizon}"]

    return call


def lf_smooth(mid, ts):
    return L.smoothed((mid, ts), K)[f"smooth_{K}"]


def lf_smooth_mean(mid, ts):
    return L.smoothed((mid, ts), K, against="mean")[f"smooth_mean_{K}"]


def lf_ema(mid, ts):
    return L.ema_return((mid, ts), K, alpha=ALPHA)[f"ema_{K}"]


def lf_triple_barrier(mid, ts):
    return L.triple_barrier((mid, ts), K, upper=BARRIER)[f"tb_label_{K}"]


CASES = [
    # (label, lobfast, [(baseline name, baseline)])
    (f"forward return, {K} rows", lf_ret_rows, [(OUT, lf_out(K)), ("pandas shift", pd_ret_rows)]),
    (
        f"forward return, {H} (irregular ts)",
        lf_ret_time,
        [(OUT, lf_out(H)), ("pandas merge_asof", pd_ret_time), ("numpy searchsorted", np_ret_time)],
    ),
    (f"smoothed vs mid, k={K}", lf_smooth, [("pandas reversed rolling", pd_smooth)]),
    (f"smoothed vs mean, k={K}", lf_smooth_mean, [("pandas rolling + shift", pd_smooth_mean)]),
    (f"EMA of {K}-row return, alpha={ALPHA}", lf_ema, [("pandas shift + ewm", pd_ema)]),
]


def check_same(label: str, expected: np.ndarray, got: np.ndarray) -> None:
    if expected.shape != got.shape or not np.array_equal(np.isnan(expected), np.isnan(got)):
        raise SystemExit(f"{label}: NaN positions differ from lobfast's")
    ok = ~np.isnan(expected)
    if not np.allclose(got[ok], expected[ok], rtol=1e-9, atol=1e-15):
        i = int(np.flatnonzero(~np.isclose(got, expected, rtol=1e-9, atol=1e-15) & ok)[0])
        raise SystemExit(f"{label}: row {i} is {got[i]!r}, lobfast {expected[i]!r}")


def speed(rounds: int, rows: int = ROWS) -> dict:
    from common import median, spread, time_side_by_side

    mid, ts = workload(rows)
    out = []
    load = [os.getloadavg()[0]]
    for label, mine, baselines in CASES:
        tools = {"lobfast": partial(mine, mid, ts)}
        tools.update({name: partial(fn, mid, ts) for name, fn in baselines})
        expected = tools["lobfast"]()
        for name, fn in baselines:
            got = fn(mid, ts)
            if name == OUT:  # bit for bit the fresh result
                np.testing.assert_array_equal(got, expected, err_msg=f"{label}: out=")
            check_same(f"{label}: {name}", expected, got)
        times = time_side_by_side(tools, rounds, inner={"lobfast": 3, OUT: 3})
        out.append(
            {
                "label": label,
                "rows": rows,
                "median_s": {t: median(v) for t, v in times.items()},
                "spread": {t: spread(v) for t, v in times.items()},
            }
        )
    # triple barrier: lobfast on all rows, the Python walk on the first TB_PY_ROWS, per row
    label = f"triple barrier, {K}-row limit, +-{BARRIER:g}"
    expected = lf_triple_barrier(mid, ts)
    py_rows = min(TB_PY_ROWS, rows)
    check_same(f"{label}: python", expected[:py_rows], py_triple_barrier(mid, ts, py_rows)[:py_rows])
    times = time_side_by_side(
        {"lobfast": partial(lf_triple_barrier, mid, ts), "python": partial(py_triple_barrier, mid, ts, py_rows)},
        max(1, rounds // 2),
    )
    py = median(times["python"]) * rows / py_rows
    out.append(
        {
            "label": label,
            "rows": rows,
            "median_s": {
                "lobfast": median(times["lobfast"]),
                f"numpy per row (x{rows / py_rows:.0f} extrapolated)": py,
            },
            "spread": {
                "lobfast": spread(times["lobfast"]),
                f"numpy per row (x{rows / py_rows:.0f} extrapolated)": spread(times["python"]),
            },
        }
    )
    load.append(os.getloadavg()[0])
    return {"rows": rows, "rounds": rounds, "cases": out, "load": load}


def table(r: dict) -> str:
    from common import md_table

    rows = []
    for c in r["cases"]:
        med, spr = c["median_s"], c["spread"]
        base = med["lobfast"]
        goal = TARGET_RET_ROWS if c["label"] == CASES[0][0] else TARGET
        for tool in med:
            ratio = med[tool] / base
            target = "" if tool in ("lobfast", OUT) else (f"{'met' if ratio >= goal else '**not met**'} ({goal:g}x)")
            rows.append(
                [
                    c["label"],
                    tool,
                    f"{med[tool] * 1e3:,.1f}",
                    f"±{spr[tool] * 100:.0f}%",
                    f"{c['rows'] / med[tool] / 1e6:,.1f}",
                    f"{ratio:.1f}x",
                    target,
                ]
            )
    return md_table(["label", "tool", "median ms", "spread", "M rows/s", "time / lobfast's", "target"], rows)


def lines(r: dict) -> list[str]:
    return [
        "",
        "## Labels: `lobfast.labels` vs pandas / NumPy",
        "",
        f"- Workload (`benchmarks/bench_labels.py`): {r['rows']:,} rows of a synthetic random-walk mid "
        "(60,000, 1 bp steps, 0.05 tick) on irregular ms timestamps with ties (exponential gaps, 50 ms mean), "
        "all rows valid.",
        "- Baselines: the pandas / NumPy code a researcher would write (see the file); each output checked "
        "equal to lobfast's (NaN positions, values within 1e-9 relative) before timing.",
        f"- {r['rounds']} interleaved rounds (lobfast 3 calls a round), medians; the Python triple barrier walks "
        f"the first {TB_PY_ROWS:,} rows and its time is scaled to all rows.",
        f"- `{OUT}`: `forward_return(..., out=lf)` into the arrays of an earlier result (checked bit for bit "
        "equal to the fresh one): no new memory, so no page faults.",
        f"- Machine load (1 min) at start / end: {r['load'][0]:.2f} / {r['load'][1]:.2f} (2 cores).",
        "",
        table(r),
        "",
        *ret_rows_summary(r),
    ]


def ret_rows_summary(r: dict) -> list[str]:
    c = r["cases"][0]["median_s"]
    fresh, out = c["pandas shift"] / c["lobfast"], c["pandas shift"] / c[OUT]
    ok = "met" if min(fresh, out) >= TARGET_RET_ROWS else "**not met**"
    return [
        f"- forward return over {K} rows vs pandas shift + log: **{fresh:.1f}x** with new arrays, "
        f"**{out:.1f}x** with `out=` (target >= {TARGET_RET_ROWS:g}x: {ok})"
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rows", type=int, default=ROWS)
    args = ap.parse_args()
    print("\n".join(lines(speed(args.rounds, args.rows))))


if __name__ == "__main__":
    main()
