"""Bars: lobfast.aggregate (C) vs the published pipeline's Numba kernel, a Numba moving-pointer
kernel with lobfast's outputs, and polars ``group_by_dynamic`` + upsample + forward fill, on the
same synthetic quotes and trades.

Workload (``synth``): a seeded random walk of best bid / ask quotes, ``ROWS`` rows at ~10
updates/s on average with bursts (calm 3/s, busy 12/s and burst 80/s regimes of random
length; millisecond timestamps, so ties occur), a 0.1 tick mid walk with a 1-3 tick spread;
trades ~1/3 as many, placed near quote updates (so they burst with them), buy or sell at the
touch, lognormal sizes rounded to 0.001.  No gaps (every quote has both sides), so the tools'
rules coincide: buckets on multiples of ``every`` from the earliest to the latest time, OHLC of
the mid (empty buckets carry the previous close, NaN before the first quote), VWAP (NaN
without trades), volumes, trade and update counts.

The published kernel (``compute_aggregated_features`` in ../shared/ref/blog_aggregator.py,
imported from there, never copied; ``LOBFAST_REF`` names another directory) computes only the
last mid, VWAP and volume of intervals starting at the first quote, and gives an interval
without quotes mid 0; lobfast is timed on the same three columns (``columns=``) as well as on
all of them, and with ``out=`` (the arrays of an earlier call filled again).

    .venv/bin/python benchmarks/bench_aggregate.py [--rows N] [--rounds R]

prints the markdown table; ``benchmarks/run.py`` runs ``speed()`` and adds it to RESULTS.md.
"""

from __future__ import annotations

import argparse
import importlib
import os
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

LOBFAST = "lobfast.aggregate (C), all columns"
LOBFAST_OUT = "lobfast.aggregate, all columns, out= reused"
LOBFAST_COLS = "lobfast.aggregate, columns=[mid_close, vwap, volume]"
LOBFAST_COLS_OUT = "lobfast.aggregate, those 3 columns, out= reused"
LOBFAST_ONE = "lobfast.aggregate, all columns, threads=1"
LOBFAST_COLS_ONE = "lobfast.aggregate, those 3 columns, threads=1"
PUBLISHED = "published Numba kernel (last mid, VWAP, volume)"
NUMBA = "Numba moving-pointer kernel, all columns"
NUMBA_OUT = "Numba moving-pointer kernel, out= reused"
POLARS = "polars group_by_dynamic + upsample + ffill"
CLOSE_COLUMNS = ["mid_close", "vwap", "volume"]
REF = Path(os.environ.get("LOBFAST_REF", BENCH.parent.parent / "shared" / "ref"))


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
def lobfast_bars(
    quotes: Quotes, trades: Trades, every: str, columns=None, out=None, threads=None
) -> dict[str, np.ndarray]:
    f = lobfast.aggregate(quotes, trades, every=every, columns=columns, out=out, threads=threads)
    return {"ts": f.ts, **f.columns}


def published_kernel():
    """The published pipeline's Numba kernel, imported from its reference copy (None if absent)."""
    if not (REF / "blog_aggregator.py").exists():
        return None
    if str(REF) not in sys.path:
        sys.path.append(str(REF))
    return importlib.import_module("blog_aggregator").compute_aggregated_features


def published_bars(kernel, quotes: Quotes, trades: Trades, every: str):
    """(interval starts, last mid, VWAP, volume); its sizes are unused but passed, as published."""
    e = lobfast.parse_duration(every)
    q = quotes
    return kernel(q.ts, q.bid_px, q.ask_px, q.bid_qty, q.ask_qty, trades.price, trades.qty, trades.ts, e)


def check_published(kernel, quotes: Quotes, trades: Trades, every: str) -> int:
    """The published kernel's intervals start at the first quote: on the inputs shifted so that
    it falls on a multiple of ``every``, its buckets are lobfast's; there its volumes, VWAPs
    (where there is volume) and mids (where there are quotes) equal lobfast's, bit for bit.
    Returns how many of its intervals have mid 0 (its known defect: no quote in them)."""
    e = lobfast.parse_duration(every)
    shift = int(quotes.ts[0] % e)
    q = Quotes(**{**quotes.columns, "ts": quotes.ts - shift, "local_ts": quotes.local_ts - shift})
    t = Trades(**{**trades.columns, "ts": trades.ts - shift, "local_ts": trades.local_ts - shift})
    starts, mid, vwap, vol = published_bars(kernel, q, t, every)
    mine = lobfast.aggregate(q, t, every=every, columns=["mid_close", "vwap", "volume", "updates"])
    n = len(starts)
    assert min(q.ts[0], t.ts[0]) == q.ts[0], "the workload's trades start after its first quote"
    same = {
        "ts": np.array_equal(mine.ts[:n], starts),
        "volume": np.array_equal(mine["volume"][:n], vol),
        "vwap": np.array_equal(mine["vwap"][:n][vol > 0], vwap[vol > 0]),
        "mid": np.array_equal(mine["mid_close"][:n][mine["updates"][:n] > 0], mid[mine["updates"][:n] > 0]),
    }
    if not all(same.values()):
        raise SystemExit(f"every={every}: the published kernel differs from lobfast in {same}")
    return int(np.count_nonzero(mid == 0))


def _numba_kernels():
    import numba

    @numba.njit(cache=False, nogil=True)
    def fill(book_ts, bid, ask, trade_ts, price, qty, side, every, first, ts, f, counts):
        # the usual shape: one pass over the intervals, a moving pointer into each stream
        # that tests every element against the interval's end
        nb, nt = len(book_ts), len(trade_ts)
        n = len(ts)
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

    @numba.njit(cache=False, nogil=True)
    def span(book_ts, trade_ts, every):
        nb, nt = len(book_ts), len(trade_ts)
        lo, hi = book_ts[0], book_ts[nb - 1]
        if nt:
            lo, hi = min(lo, trade_ts[0]), max(hi, trade_ts[nt - 1])
        first, last = lo // every, hi // every
        return first, last - first + 1

    @numba.njit(cache=False, nogil=True)
    def bars(book_ts, bid, ask, trade_ts, price, qty, side, every):
        first, n = span(book_ts, trade_ts, every)
        ts = np.empty(n, np.int64)
        f = np.empty((8, n))
        counts = np.empty((2, n), np.int64)
        fill(book_ts, bid, ask, trade_ts, price, qty, side, every, first, ts, f, counts)
        return ts, f, counts

    @numba.njit(cache=False, nogil=True)
    def bars_into(book_ts, bid, ask, trade_ts, price, qty, side, every, ts, f, counts):
        first, n = span(book_ts, trade_ts, every)
        if n != len(ts):
            raise ValueError("wrong output length")
        fill(book_ts, bid, ask, trade_ts, price, qty, side, every, first, ts, f, counts)
        return ts, f, counts

    return bars, bars_into


_NUMBA = None


def _numba_out(ts, f, counts) -> dict[str, np.ndarray]:
    out = {"ts": ts}
    out.update({c: f[i] for i, c in enumerate(COLUMNS[:8])})
    out["trades"], out["updates"] = counts[0], counts[1]
    return out


def numba_bars(quotes: Quotes, trades: Trades, every: str, out=None) -> dict[str, np.ndarray]:
    """The moving-pointer kernel's bars, into new arrays or (``out``: (ts, f, counts) of an
    earlier call) into those."""
    global _NUMBA
    if _NUMBA is None:
        _NUMBA = _numba_kernels()
    e = lobfast.parse_duration(every)
    args = (quotes.ts, quotes.bid_px, quotes.ask_px, trades.ts, trades.price, trades.qty, trades.side, e)
    if out is None:
        return _numba_out(*_NUMBA[0](*args))
    return _numba_out(*_NUMBA[1](*args, *out))


def numba_arrays(bars: dict[str, np.ndarray]):
    """The (ts, f, counts) arrays behind numba_bars' result, for its ``out``."""
    return bars["ts"], bars["mid_open"].base, bars["trades"].base


def fresh_page_cost(n: int, k: int, rounds: int = 15) -> tuple[float, float]:
    """CPU seconds (medians) to write k float64 columns of n rows into new memory carved from one
    block as aggregate does, and into the same columns once they exist: the difference is the
    price of fresh pages, apart from any kernel."""
    import gc
    import time

    from lobfast.frame import empty_columns

    spec = [(f"c{i}", "float64") for i in range(k)]
    keep = empty_columns(n, spec)
    fresh, reused = [], []
    for _ in range(rounds):
        for dest, times in ((None, fresh), (keep, reused)):
            gc.collect()
            t0 = time.thread_time()
            cols = empty_columns(n, spec) if dest is None else dest
            for c in cols.values():
                c.fill(1.0)
            times.append(time.thread_time() - t0)
            del cols
    return float(np.median(fresh)), float(np.median(reused))


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
def check_same(label: str, expected: dict, got: dict, columns=COLUMNS) -> None:
    """Same buckets: ts and counts equal, floats within 1e-12 (NaN == NaN); else stop."""
    for c in ("ts", *columns):
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
def cpu_side_by_side(tools: dict, rounds: int, inner: dict) -> dict[str, list[float]]:
    """Like common.time_side_by_side, in CPU seconds of the process (all its threads): on a
    loaded machine, wall time counts the other processes' turns, this does not."""
    import gc
    import time

    names = list(tools)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            for _ in range(inner.get(name, 1)):
                gc.collect()
                t0 = time.process_time()
                result = tools[name]()
                times[name].append(time.process_time() - t0)
                del result
    return times


def speed(rounds: int, rows: int = ROWS) -> dict:
    """Equality first, then medians of ``rounds`` interleaved rounds (the fast tools 5 calls a
    round), for each ``every``; the machine's load averages before and after."""
    import numba
    import polars as pl
    from common import median, spread, time_side_by_side

    kernel = published_kernel()
    quotes, trades = synth(rows)
    frames = polars_frames(quotes, trades)
    span_s = (max(quotes.ts[-1], trades.ts[-1]) - min(quotes.ts[0], trades.ts[0])) / 1e9
    load_before = os.getloadavg()
    results = []
    for every in EVERY:
        full_out = lobfast.aggregate(quotes, trades, every=every)
        cols_out = lobfast.aggregate(quotes, trades, every=every, columns=CLOSE_COLUMNS)
        numba_out = numba_arrays(numba_bars(quotes, trades, every))  # also compiles the kernels
        tools = {
            LOBFAST: partial(lobfast_bars, quotes, trades, every),
            LOBFAST_OUT: partial(lobfast_bars, quotes, trades, every, out=full_out),
            LOBFAST_COLS: partial(lobfast_bars, quotes, trades, every, CLOSE_COLUMNS),
            LOBFAST_COLS_OUT: partial(lobfast_bars, quotes, trades, every, CLOSE_COLUMNS, cols_out),
            LOBFAST_ONE: partial(lobfast_bars, quotes, trades, every, threads=1),
            LOBFAST_COLS_ONE: partial(lobfast_bars, quotes, trades, every, CLOSE_COLUMNS, threads=1),
            NUMBA: partial(numba_bars, quotes, trades, every),
            NUMBA_OUT: partial(numba_bars, quotes, trades, every, out=numba_out),
            POLARS: partial(polars_bars, frames, every),
        }
        zero_mids = None
        if kernel is not None:
            tools[PUBLISHED] = partial(published_bars, kernel, quotes, trades, every)
            zero_mids = check_published(kernel, quotes, trades, every)  # also compiles it
        expected = tools[LOBFAST]()
        for tool in (LOBFAST_OUT, LOBFAST_ONE, NUMBA, NUMBA_OUT, POLARS):
            check_same(f"every={every}: {tool}", expected, tools[tool]())
        for tool in (LOBFAST_COLS, LOBFAST_COLS_OUT, LOBFAST_COLS_ONE):
            got = tools[tool]()
            check_same(f"every={every}: {tool}", {c: expected[c] for c in ("ts", *CLOSE_COLUMNS)}, got, CLOSE_COLUMNS)
        fast = {t: 5 for t in tools if t != POLARS}
        times = time_side_by_side(tools, rounds, inner=fast)
        cpu = cpu_side_by_side(tools, rounds, inner=fast)
        n_bars = len(expected["ts"])
        pages = {k: fresh_page_cost(n_bars, k) for k in (len(COLUMNS) + 1, len(CLOSE_COLUMNS) + 1)}
        results.append(
            {
                "every": every,
                "buckets": len(expected["ts"]),
                "empty": int(np.count_nonzero(expected["updates"] == 0)),
                "zero_mids": zero_mids,
                "median_s": {t: median(v) for t, v in times.items()},
                "spread": {t: spread(v) for t, v in times.items()},
                "cpu_s": {t: median(v) for t, v in cpu.items()},
                "pages": pages,
            }
        )
    return {
        "rows": len(quotes),
        "trades": len(trades),
        "span_s": span_s,
        "rounds": rounds,
        "load": (load_before, os.getloadavg()),
        "versions": {"numba": numba.__version__, "polars": pl.__version__},
        "results": results,
    }


def lines(r: dict) -> list[str]:
    """The RESULTS.md section."""
    from common import md_table

    rows, ratios = [], []
    order = (
        LOBFAST, LOBFAST_OUT, LOBFAST_ONE, LOBFAST_COLS, LOBFAST_COLS_OUT, LOBFAST_COLS_ONE, PUBLISHED, NUMBA,
        NUMBA_OUT, POLARS,
    )  # fmt: skip
    for res in r["results"]:
        med, spr = res["median_s"], res["spread"]
        for tool in order:
            if tool not in med:
                continue
            rows.append(
                [
                    res["every"],
                    tool,
                    f"{med[tool] * 1e3:,.1f}",
                    f"±{spr[tool] * 100:.0f}%",
                    f"{res['cpu_s'][tool] * 1e3:,.1f}",
                    f"{(r['rows'] + r['trades']) / med[tool] / 1e6:,.0f}",
                ]
            )
        pairs = [
            (NUMBA, LOBFAST, "all columns vs the moving-pointer Numba kernel"),
            (NUMBA, LOBFAST_OUT, "all columns, out= reused, vs the moving-pointer Numba kernel"),
            (NUMBA_OUT, LOBFAST_OUT, "all columns, both with out= reused (no fresh pages on either side)"),
            (NUMBA, LOBFAST_ONE, "all columns on one thread vs the moving-pointer Numba kernel"),
            (PUBLISHED, LOBFAST, "all columns vs the published kernel (its 3 columns)"),
            (PUBLISHED, LOBFAST_ONE, "all columns on one thread vs the published kernel"),
            (PUBLISHED, LOBFAST_COLS, "the published kernel's 3 columns vs it"),
            (PUBLISHED, LOBFAST_COLS_OUT, "those 3 columns, out= reused, vs it"),
            (PUBLISHED, LOBFAST_COLS_ONE, "those 3 columns on one thread vs it"),
            (POLARS, LOBFAST, "all columns vs polars"),
        ]
        for peer, mine, what in pairs:
            if peer in med:
                cpu = res["cpu_s"]
                ratios.append([res["every"], what, f"{med[peer] / med[mine]:.2f}x", f"{cpu[peer] / cpu[mine]:.2f}x"])
    v = r["versions"]
    (b1, b5, b15), (a1, a5, a15) = r["load"]
    res0 = r["results"][0]
    zero = "" if res0["zero_mids"] is None else f" ({res0['zero_mids']:,} of its intervals have mid 0 at 500ms)"
    return [
        "",
        "## Bars: `lobfast.aggregate` vs Numba and polars",
        "",
        f"- Workload (`benchmarks/bench_aggregate.py`): synthetic quotes, a bursty random walk of "
        f"**{r['rows']:,} best bid/ask rows** (~10 updates/s on average, ms timestamps) and "
        f"**{r['trades']:,} trades** over {r['span_s'] / 3600:,.0f} hours; clock bars "
        f'(`by="time"`); {res0["buckets"]:,} bars at 500ms ({res0["empty"]:,} without quotes).',
        "- lobfast: `lobfast.aggregate(quotes, trades, every=...)`, all ten columns; with "
        '`columns=["mid_close", "vwap", "volume"]` (no open, high or low: where buckets hold a few rows, '
        "each row's bucket from its time, a block of 256 buckets at a time, the mids of their last rows "
        "only; where they hold many, the ends galloped, the rows inside never read); and with `out=` the "
        "arrays of an earlier call (no fresh pages). Time bars check every row as the fill reads it "
        "(one pass over the inputs). GIL released. "
        f"On every core ({os.cpu_count()}: the bars split into ranges of buckets) unless `threads=1`.",
        "- published Numba kernel: `compute_aggregated_features` of the pipeline lobfast replaces "
        "(../shared/ref/blog_aggregator.py, imported from there), last mid, VWAP and volume per "
        f"interval from the first quote{zero}. Checked first to give lobfast's values where it is "
        "defined (inputs shifted so that its intervals are lobfast's buckets).",
        f"- Numba {v['numba']} moving-pointer kernel: an `@njit` loop over the buckets with a pointer "
        "into the quotes and the trades, testing each row against the bucket's end; lobfast's ten "
        "columns, checked equal to lobfast's (floats within rtol 1e-12); into new arrays, and (`out=` "
        "reused) into those of an earlier call, so that both sides are timed without fresh pages.",
        f"- polars {v['polars']}: `group_by_dynamic` on quotes and on trades, a full join, `upsample`, "
        "the close forward-filled; inputs are polars DataFrames built before timing.",
        f"- {r['rounds']} interleaved rounds (the fast tools 5 calls a round), medians; M rows/s = "
        "(quotes + trades) / median wall seconds; then as many rounds again timed in the process's "
        "CPU time (`time.process_time`, all threads), which leaves out the other processes' turns: "
        "a tool on two cores shows about twice its wall time there. Numba kernels "
        "compiled before timing. "
        f"Load averages (1/5/15 min) {b1:.2f}/{b5:.2f}/{b15:.2f} before, {a1:.2f}/{a5:.2f}/{a15:.2f} "
        "after, on 2 cores shared with other work: absolute times move with it, ratios less.",
        "",
        md_table(["every", "tool", "median ms (wall)", "spread", "median ms (CPU)", "M rows/s"], rows),
        "",
        md_table(["every", "lobfast", "speed-up, wall (peer's time / lobfast's)", "speed-up, CPU"], ratios),
        "",
        "Fresh pages apart from any kernel (`fresh_page_cost`: CPU ms to write the columns into a new block "
        "carved as `aggregate` does, against the same columns once they exist):",
        "",
        md_table(
            ["every", "columns (with ts)", "new block, ms CPU", "existing, ms CPU", "fresh-page cost, ms"],
            [
                [res["every"], str(k), f"{a * 1e3:.1f}", f"{b * 1e3:.1f}", f"{(a - b) * 1e3:.1f}"]
                for res in r["results"]
                for k, (a, b) in res["pages"].items()
            ],
        ),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=ROWS, help=f"quote rows (default {ROWS:,})")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    args = ap.parse_args()
    print("\n".join(lines(speed(max(1, args.rounds), args.rows))))


if __name__ == "__main__":
    main()
