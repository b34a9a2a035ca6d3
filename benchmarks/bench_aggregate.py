"""Bars: lobfast.aggregate (C, galloping merge) vs a Numba linear-scan kernel and polars
``group_by_dynamic`` + upsample + forward fill, on the same synthetic quotes and trades.

Workload (``synth``): a seeded random walk of best bid / ask quotes, ``ROWS`` rows at ~10
updates/s on average with bursts (calm 3/s, busy 12/s and burst 80/s regimes of random
length; millisecond timestamps, so ties occur), a 0.1 tick mid walk with a 1-3 tick spread;
trades ~1/3 as many, placed near quote updates (so they burst with them), buy or sell at the
touch, lognormal sizes rounded to 0.001.  No gaps (every quote has both sides), so all three
tools' rules coincide: buckets on multiples of ``every`` from the earliest to the latest
time, OHLC of the mid (empty buckets carry the previous close, NaN before the first quote),
VWAP (NaN without trades), volumes, trade and update counts.

    .venv/bin/python benchmarks/bench_aggregate.py [--rows N] [--rounds R]

prints the markdown table; ``benchmarks/run.py`` runs ``speed()`` and adds it to RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

BENCH = Path(__file__).resolve().parent
if __name__ == "__main__":
    sys.path[:0] = [str(BENCH.parent), str(BENCH)]

import numpy as np  # noqa: E402

import lobfast  # noqa: E402
from lobfast import Quotes, Trades  # noqa: E402
from lobfast.aggregation import COLUMNS  # noqa: E402

ROWS = 5_000_000
EVERY = ("500ms", "1s")
SEED = 20240808

LOBFAST = "lobfast.aggregate (C)"
NUMBA = "Numba linear-scan kernel"
POLARS = "polars group_by_dynamic + upsample + ffill"


# ------------------------------------------------------------------------------ data
def synth(rows: int = ROWS, seed: int = SEED) -> tuple[Quotes, Trades]:
    """Quotes and trades of a bursty random walk (see the module docstring)."""
    rng = np.random.default_rng(seed)
    # regimes of exponential length (mean 60 s); their rates average ~10 updates/s
    n_regimes = max(1, rows // 400)
    rate = rng.choice([3.0, 12.0, 80.0], size=n_regimes, p=[0.55, 0.37, 0.08])
    per_regime = np.maximum(1, rng.exponential(60.0, n_regimes) * rate).astype(np.int64)
    reps = np.repeat(rate, per_regime)
    while len(reps) < rows:  # short draw: top up with the calm regime
        reps = np.concatenate([reps, np.full(rows - len(reps), 3.0)])
    gaps_s = rng.exponential(1.0 / reps[:rows])
    t0 = 1_723_161_600 * 10**9
    ts = t0 + (np.cumsum(gaps_s) * 1e3).astype(np.int64) * 10**6  # exchange ms
    ticks = 600_000 + np.cumsum(rng.choice([-1, 0, 0, 0, 1], size=rows))
    spread = rng.choice([1, 1, 1, 2, 3], size=rows)
    bid = ticks / 10.0
    ask = (ticks + spread) / 10.0
    quotes = Quotes(
        ts=ts,
        local_ts=ts + 5 * 10**6,
        update_id=np.arange(rows, dtype=np.int64),
        bid_px=bid,
        bid_qty=rng.exponential(2.0, rows).round(3),
        ask_px=ask,
        ask_qty=rng.exponential(2.0, rows).round(3),
    )
    n_tr = rows // 3
    at = np.sort(rng.integers(0, rows, n_tr))  # trades follow the quotes' bursts
    tts = ts[at] + rng.integers(0, 3, n_tr) * 10**6
    tts.sort()
    side = rng.choice(np.array([1, -1], np.int8), n_tr)
    price = np.where(side > 0, ask[at], bid[at])
    qty = np.maximum(0.001, rng.lognormal(-3.0, 1.5, n_tr).round(3))
    trades = Trades(ts=tts, local_ts=tts + 5 * 10**6, price=price, qty=qty, side=side, trade_id=np.arange(n_tr))
    return quotes, trades


# ------------------------------------------------------------------------------ tools
def lobfast_bars(quotes: Quotes, trades: Trades, every: str) -> dict[str, np.ndarray]:
    f = lobfast.aggregate(quotes, trades, every=every)
    return {"ts": f.ts, **f.columns}


def _numba_kernel():
    import numba

    @numba.njit(cache=False, nogil=True)
    def bars(book_ts, bid, ask, trade_ts, price, qty, side, every):
        # the usual shape: one pass over the intervals, a moving pointer into each stream
        # that tests every element against the interval's end
        nb, nt = len(book_ts), len(trade_ts)
        lo, hi = book_ts[0], book_ts[nb - 1]
        if nt:
            lo, hi = min(lo, trade_ts[0]), max(hi, trade_ts[nt - 1])
        first, last = lo // every, hi // every
        n = last - first + 1
        ts = np.empty(n, np.int64)
        f = np.empty((8, n))
        counts = np.empty((2, n), np.int64)
        i = j = 0
        carry = np.nan
        for k in range(n):
            start = (first + k) * every
            end = start + every
            o = h = lo_ = c = np.nan
            upd = 0
            while i < nb and book_ts[i] < end:
                m = (bid[i] + ask[i]) / 2
                if m == m:
                    if o != o:
                        o = h = lo_ = m
                    else:
                        h = max(h, m)
                        lo_ = min(lo_, m)
                    c = m
                carry = m
                upd += 1
                i += 1
            if o != o:
                o = h = lo_ = c = carry
            vol = pq = buy = sell = 0.0
            ntr = 0
            while j < nt and trade_ts[j] < end:
                q = qty[j]
                vol += q
                pq += price[j] * q
                if side[j] > 0:
                    buy += q
                elif side[j] < 0:
                    sell += q
                ntr += 1
                j += 1
            ts[k] = start
            f[0, k], f[1, k], f[2, k], f[3, k] = o, h, lo_, c
            f[4, k] = pq / vol if vol > 0 else np.nan
            f[5, k], f[6, k], f[7, k] = vol, buy, sell
            counts[0, k], counts[1, k] = ntr, upd
        return ts, f, counts

    return bars


_NUMBA = None


def numba_bars(quotes: Quotes, trades: Trades, every: str) -> dict[str, np.ndarray]:
    global _NUMBA
    if _NUMBA is None:
        _NUMBA = _numba_kernel()
    e = lobfast.parse_duration(every)
    ts, f, counts = _NUMBA(quotes.ts, quotes.bid_px, quotes.ask_px, trades.ts, trades.price, trades.qty, trades.side, e)
    out = {"ts": ts}
    out.update({c: f[i] for i, c in enumerate(COLUMNS[:8])})
    out["trades"], out["updates"] = counts[0], counts[1]
    return out


def polars_frames(quotes: Quotes, trades: Trades):
    """The inputs as polars DataFrames (built once, outside the timing: polars' best case)."""
    import polars as pl

    q = pl.DataFrame({"ts": quotes.ts, "bid": quotes.bid_px, "ask": quotes.ask_px})
    t = pl.DataFrame({"ts": trades.ts, "price": trades.price, "qty": trades.qty, "side": trades.side})
    dt = pl.Datetime("ns")
    return q.with_columns(pl.col("ts").cast(dt)), t.with_columns(pl.col("ts").cast(dt))


def polars_bars(frames, every: str) -> dict[str, np.ndarray]:
    import polars as pl

    q, t = frames
    dyn = {"index_column": "ts", "every": every, "closed": "left", "label": "left"}
    mid = (pl.col("bid") + pl.col("ask")) / 2
    qb = q.group_by_dynamic(**dyn).agg(
        mid.first().alias("mid_open"),
        mid.max().alias("mid_high"),
        mid.min().alias("mid_low"),
        mid.last().alias("mid_close"),
        pl.len().cast(pl.Int64).alias("updates"),
    )
    qty = pl.col("qty")
    tb = t.group_by_dynamic(**dyn).agg(
        qty.sum().alias("volume"),
        (pl.col("price") * qty).sum().alias("pq"),
        qty.filter(pl.col("side") > 0).sum().alias("buy_volume"),
        qty.filter(pl.col("side") < 0).sum().alias("sell_volume"),
        pl.len().cast(pl.Int64).alias("trades"),
    )
    bars = qb.join(tb, on="ts", how="full", coalesce=True).sort("ts").upsample("ts", every=every)
    close = pl.col("mid_close").forward_fill()
    out = bars.select(
        pl.col("ts").cast(pl.Int64),
        *(pl.col(c).fill_null(close).fill_null(np.nan) for c in ("mid_open", "mid_high", "mid_low")),
        close.fill_null(np.nan).alias("mid_close"),
        pl.when(pl.col("volume") > 0).then(pl.col("pq") / pl.col("volume")).otherwise(np.nan).alias("vwap"),
        *(pl.col(c).fill_null(0.0) for c in ("volume", "buy_volume", "sell_volume")),
        *(pl.col(c).fill_null(0) for c in ("trades", "updates")),
    )
    return {c: out[c].to_numpy() for c in out.columns}


# ------------------------------------------------------------------------------ checks
def check_same(label: str, expected: dict, got: dict) -> None:
    """Same buckets: ts and counts equal, floats within 1e-12 (NaN == NaN); else stop."""
    for c in ("ts", *COLUMNS):
        a, b = expected[c], got.get(c)
        if b is None or a.shape != b.shape:
            raise SystemExit(f"{label}: {c} is {None if b is None else b.shape}, expected {a.shape}")
        if a.dtype.kind == "f":
            same = np.isclose(a, b, rtol=1e-12, atol=0, equal_nan=True)
        else:
            same = a == b
        if not same.all():
            i = int(np.flatnonzero(~same)[0])
            raise SystemExit(f"{label}: {c}[{i}] is {b[i]!r}, expected {a[i]!r}")


# ------------------------------------------------------------------------------ speed
def speed(rounds: int, rows: int = ROWS) -> dict:
    """Equality first, then medians of ``rounds`` interleaved rounds (lobfast and Numba 5
    calls a round), for each ``every``."""
    import numba
    import polars as pl
    from common import median, spread, time_side_by_side

    quotes, trades = synth(rows)
    frames = polars_frames(quotes, trades)
    span_s = (max(quotes.ts[-1], trades.ts[-1]) - min(quotes.ts[0], trades.ts[0])) / 1e9
    results = []
    for every in EVERY:
        tools = {
            LOBFAST: partial(lobfast_bars, quotes, trades, every),
            NUMBA: partial(numba_bars, quotes, trades, every),
            POLARS: partial(polars_bars, frames, every),
        }
        expected = tools[LOBFAST]()
        for tool, fn in tools.items():  # also compiles the Numba kernel before timing
            if tool != LOBFAST:
                check_same(f"every={every}: {tool}", expected, fn())
        times = time_side_by_side(tools, rounds, inner={LOBFAST: 5, NUMBA: 5})
        results.append(
            {
                "every": every,
                "buckets": len(expected["ts"]),
                "empty": int(np.count_nonzero(expected["updates"] == 0)),
                "median_s": {t: median(v) for t, v in times.items()},
                "spread": {t: spread(v) for t, v in times.items()},
            }
        )
    return {
        "rows": len(quotes),
        "trades": len(trades),
        "span_s": span_s,
        "rounds": rounds,
        "versions": {"numba": numba.__version__, "polars": pl.__version__},
        "results": results,
    }


def lines(r: dict) -> list[str]:
    """The RESULTS.md section."""
    from common import md_table

    rows = []
    for res in r["results"]:
        med, spr = res["median_s"], res["spread"]
        base = med[LOBFAST]
        for tool in (LOBFAST, NUMBA, POLARS):
            rows.append(
                [
                    res["every"],
                    f"{res['buckets']:,} ({res['empty']:,} without quotes)",
                    tool,
                    f"{med[tool] * 1e3:,.1f}",
                    f"±{spr[tool] * 100:.0f}%",
                    f"{(r['rows'] + r['trades']) / med[tool] / 1e6:,.0f}",
                    "1.0" if tool == LOBFAST else f"{med[tool] / base:.1f}x",
                ]
            )
    v = r["versions"]
    return [
        "",
        "## Bars: `lobfast.aggregate` vs Numba and polars",
        "",
        f"- Workload (`benchmarks/bench_aggregate.py`): synthetic quotes, a bursty random walk of "
        f"**{r['rows']:,} best bid/ask rows** (~10 updates/s on average, ms timestamps) and "
        f"**{r['trades']:,} trades** over {r['span_s'] / 3600:,.0f} hours; clock bars "
        '(`by="time"`) of the mid (OHLC, carried through empty buckets), VWAP, volumes and counts.',
        "- lobfast: `lobfast.aggregate(quotes, trades, every=...)`: one merge pass in C, the end of each "
        "bucket found by galloping search (csrc/core/kernels/aggregate.c), GIL released.",
        f"- Numba {v['numba']}: an `@njit` loop over the buckets with a moving pointer into the quotes "
        "and the trades, testing each row against the bucket's end (compiled before timing).",
        f"- polars {v['polars']}: `group_by_dynamic` on quotes and on trades (first / max / min / last "
        "of the mid; sums, filtered sums, counts), a full join, `upsample`, then the close forward-filled "
        "into empty buckets; the inputs are polars DataFrames built before timing.",
        "- Before timing, the three outputs are checked to be the same buckets: ts and counts equal, "
        "floats within rtol 1e-12 (NaN == NaN).",
        f"- {r['rounds']} interleaved rounds (lobfast and Numba 5 calls a round), medians; M rows/s = "
        "(quotes + trades) / median seconds, one core.",
        "",
        md_table(["every", "buckets", "tool", "median ms", "spread", "M rows/s", "time / lobfast's"], rows),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=ROWS, help=f"quote rows (default {ROWS:,})")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    args = ap.parse_args()
    print("\n".join(lines(speed(max(1, args.rounds), args.rows))))


if __name__ == "__main__":
    main()
