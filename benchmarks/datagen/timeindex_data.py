"""Synthetic inputs for the time-sliced loading benchmark (TimeIndex vs a sparse index).

Reading one time window of a big sorted file is only interesting when the file is big, and
the repository's recordings are a few MB, so the inputs are generated, deterministically
from a seed, into benchmarks/.data/ (gitignored) and reused while the parameters are the
same (they are in the file name):

* :func:`book_csv`: a Tardis ``book_snapshot_10`` CSV of about 1 GB (several days of a
  random-walk BTCUSDT book), the layout researchers slice by time every day.
* :func:`raw_day_lines`: a day of Binance USD-M ``<receive ns> <JSON>`` lines as a collector
  records them: stream-wrapped diff depth and aggTrade messages plus REST depth snapshots,
  with gap-free update ids, so ``lobfast.read_binance`` syncs once and never breaks.
* :func:`windows`: the fixed list of random 30-minute windows both sides of the benchmark read.

Run ``python benchmarks/datagen/timeindex_data.py`` to generate both files and check the raw lines
with lobfast.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

BENCH = Path(__file__).resolve().parents[1]
if str(BENCH) not in sys.path:  # run as a script
    sys.path[:0] = [str(BENCH.parent), str(BENCH)]

from common import DATA  # noqa: E402

START_US = 1_723_075_200_000_000  # 2024-08-08T00:00:00Z
LEVELS = 10
SNAPSHOT_LEVELS = 1000  # as the recordings (REST limit=1000): the whole synthetic book


def _done(path: Path, tmp: Path, t0: float, what: str, count: int) -> Path:
    tmp.replace(path)
    size = path.stat().st_size
    print(
        f"{path.name}: {size / 1e6:.0f} MB, {count:,} {what}, {size / count:.0f} B/{what[:-1]}, "
        f"written in {time.perf_counter() - t0:.1f} s"
    )
    return path


# ------------------------------------------------------------------------------ Tardis CSV
def book_header() -> list[str]:
    """Tardis ``book_snapshot_10`` columns: per level, asks price/amount then bids price/amount."""
    cols = ["exchange", "symbol", "timestamp", "local_timestamp"]
    for i in range(LEVELS):
        cols += [f"asks[{i}].price", f"asks[{i}].amount", f"bids[{i}].price", f"bids[{i}].amount"]
    return cols


def _level_offsets(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, LEVELS) distances from the touch in cents: 0 first, then strictly increasing."""
    steps = rng.geometric(0.05, (n, LEVELS))  # 1, 2, ... cents, mean 20
    steps[:, 0] = 0
    return np.cumsum(steps, axis=1)


def _book_chunk(rng: np.random.Generator, n: int, ts0: int, mid0: int, rate: float) -> tuple[pl.DataFrame, int, int]:
    """n rows after time ts0 (us) from mid price mid0 (cents); also the last ts and mid."""
    gaps = np.maximum(1, np.ceil(rng.exponential(1e6 / rate, n))).astype(np.int64)
    ts = ts0 + np.cumsum(gaps)
    # BTC's ~2 % daily volatility: 4 USD per sqrt(second), in cents
    mid = mid0 + np.cumsum(np.rint(rng.normal(0.0, 408.0 * np.sqrt(gaps / 1e6))).astype(np.int64))
    spread = rng.geometric(0.6, n)  # cents, mostly one tick
    ask = (mid + spread // 2 + spread % 2)[:, None] + _level_offsets(rng, n)
    bid = (mid - spread // 2)[:, None] - _level_offsets(rng, n)
    cols = {
        "exchange": pl.repeat("binance", n, eager=True),
        "symbol": pl.repeat("BTCUSDT", n, eager=True),
        "timestamp": ts,
        "local_timestamp": ts + rng.integers(200, 5000, n),
    }
    amounts = {side: np.minimum(5000, rng.geometric(0.002, (n, LEVELS))) for side in ("asks", "bids")}  # 0.001 units
    for i in range(LEVELS):
        for side, px in (("asks", ask), ("bids", bid)):  # Decimal columns print exactly 2 and 3 decimals
            cols[f"{side}[{i}].price"] = pl.Series(px[:, i] / 100).cast(pl.Decimal(12, 2))
            cols[f"{side}[{i}].amount"] = pl.Series(amounts[side][:, i] / 1000).cast(pl.Decimal(10, 3))
    assert list(cols) == book_header()
    return pl.DataFrame(cols), int(ts[-1]), int(mid[-1])


def book_csv(target_bytes: int = 1_100_000_000, rows_per_second: float = 10.0, seed: int = 0) -> Path:
    """A time-sorted Tardis ``book_snapshot_10`` CSV of at least ``target_bytes`` (~350 B/row).

    binance BTCUSDT from 2024-08-08T00:00:00Z: timestamps in us with exponential gaps (mean
    1/rows_per_second s, at least 1 us), local_timestamp 0.2-5 ms later; a random-walk mid
    around 60000 (tick 0.01), 10 ask levels above and 10 bid levels below it, prices with 2
    decimals and amounts with 3 (0.001 to 5.000).  Written with polars in 200k-row chunks.
    """
    path = DATA / f"book_snapshot_10_{rows_per_second:g}hz_{target_bytes}_seed{seed}.csv"
    if path.exists():
        return path
    DATA.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".tmp")
    ts, mid, rows = START_US, 6_000_000, 0
    with open(tmp, "wb") as f:
        f.write((",".join(book_header()) + "\n").encode())
        while f.tell() < target_bytes:
            chunk, ts, mid = _book_chunk(rng, 200_000, ts, mid, rows_per_second)
            chunk.write_csv(f, include_header=False)
            rows += len(chunk)
    return _done(path, tmp, t0, "rows", rows)


def csv_time_span(path: Path, ts_col: str = "timestamp") -> tuple[int, int]:
    """Timestamps of the first and the last row of a time-sorted CSV (reads both ends only)."""
    with open(path, "rb") as f:
        col = f.readline().decode().rstrip("\r\n").split(",").index(ts_col)
        first = f.readline()
        f.seek(max(0, f.seek(0, 2) - (1 << 16)))
        last = f.read().rstrip(b"\r\n").rsplit(b"\n", 1)[-1]
    return int(first.split(b",")[col]), int(last.split(b",")[col])


def windows(ts_first: int, ts_last: int, n: int = 10, minutes: float = 30, seed: int = 0) -> list[tuple[int, int]]:
    """n windows [start, end) of ``minutes`` at random positions inside [ts_first, ts_last] (us)."""
    width = int(minutes * 60e6)
    starts = np.random.default_rng(seed).integers(ts_first, ts_last - width, n, endpoint=True)
    return [(int(s), int(s) + width) for s in starts]


# ------------------------------------------------------------------------------ Binance raw lines
BID, ASK = 0, 1
FIRST_UPDATE_ID = 5_123_107_832_006
FIRST_AGG_ID = 2_310_000_000
FIRST_TRADE_ID = 5_266_583_935
BEST_BID0 = 600_000  # best bid in USD-M BTCUSDT ticks of 0.10


def _arrivals(rng: np.random.Generator, rate: float, span_ns: int) -> np.ndarray:
    """Poisson arrival times in [0, span_ns), ns."""
    n = int(rate * span_ns / 1e9 * 1.1) + 100
    t = np.cumsum(np.maximum(1, rng.exponential(1e9 / rate, n)).astype(np.int64))
    while t[-1] < span_ns:
        t = np.concatenate([t, t[-1] + np.cumsum(np.maximum(1, rng.exponential(1e9 / rate, n)).astype(np.int64))])
    return t[t < span_ns]


def _grouped(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For groups of ``counts`` rows: each row's group and its 1-based position in it."""
    group = np.repeat(np.arange(len(counts)), counts)
    return group, np.arange(len(group)) - np.repeat(np.cumsum(counts) - counts, counts) + 1


def _qty(rng: np.random.Generator, n: int, p_delete: float) -> np.ndarray:
    """Quantities in 0.001 units (0.001 .. 5.000), a share p_delete of them 0 (level removed)."""
    q = np.minimum(5000, rng.geometric(0.003, n))
    return np.where(rng.random(n) < p_delete, 0, q)


def _level_updates(rng: np.random.Generator, best_bid: np.ndarray) -> tuple[np.ndarray, ...]:
    """(message, side, price in ticks, qty) of the initial book (message -1) and of the diffs.

    Bids stay at or below each message's best bid and asks above it: when the best bid moves,
    the message also removes the levels it crossed, so the book is never crossed.  Rows are
    sorted by message, side, price, one per (message, side, price).
    """
    n = len(best_bid)
    prev = np.concatenate([[BEST_BID0], best_bid[:-1]])
    step = best_bid - prev
    init = np.arange(100)
    msg, side, price, qty = [np.full(200, -1)], [np.repeat([BID, ASK], 100)], [], []
    price.append(np.concatenate([BEST_BID0 - init, BEST_BID0 + 1 + init]))
    qty.append(np.maximum(1, _qty(rng, 200, 0.0)))
    # crossed levels: asks in (prev, best] when it rises, bids in (best, prev] when it falls
    m, j = _grouped(np.abs(step))
    msg.append(m)
    side.append(np.where(step[m] > 0, ASK, BID))
    price.append(np.minimum(prev, best_bid)[m] + j)
    qty.append(np.zeros(len(m), dtype=np.int64))
    # 1-8 random changes per side, most near the touch, a fifth of them deletions
    for s in (BID, ASK):
        m, _ = _grouped(rng.integers(1, 9, n))
        dist = np.minimum(rng.geometric(0.12, len(m)) - 1, 300)
        msg.append(m)
        side.append(np.full(len(m), s))
        price.append(best_bid[m] - dist if s == BID else best_bid[m] + 1 + dist)
        qty.append(_qty(rng, len(m), 0.2))
    msg, side, price, qty = (np.concatenate(a).astype(np.int64) for a in (msg, side, price, qty))
    order = np.lexsort((price, side, msg))
    msg, side, price, qty = msg[order], side[order], price[order], qty[order]
    first = np.ones(len(msg), dtype=bool)
    first[1:] = (np.diff(msg) != 0) | (np.diff(side) != 0) | (np.diff(price) != 0)
    return msg[first], side[first], price[first], qty[first]


def _book_states(updates: tuple[np.ndarray, ...], at: np.ndarray, depth: int) -> list[tuple[np.ndarray, ...]]:
    """The top ``depth`` levels (bid prices, bid qty, ask prices, ask qty) after each message in ``at``."""
    msg, side, price, qty = updates
    lo, width = int(price.min()), int(price.max() - price.min()) + 1
    book = np.zeros(2 * width, dtype=np.int64)  # qty by side * width + price - lo
    key = side * width + price - lo
    out, done = [], 0
    for i in at:
        end = int(np.searchsorted(msg, i, side="right"))
        last, idx = np.unique(key[done:end][::-1], return_index=True)  # a level's last update wins
        book[last] = qty[done:end][::-1][idx]
        done = end
        bids = np.flatnonzero(book[:width])[::-1][:depth]
        asks = np.flatnonzero(book[width:])[:depth]
        out.append((bids + lo, book[bids], asks + lo, book[width + asks]))
    return out


def _fmt(template: str, *args: str | pl.Expr) -> pl.Expr:
    """``template`` with each ``{}`` replaced by a column (name or expression) as text."""
    parts = template.split("{}")
    assert len(parts) == len(args) + 1
    exprs: list[pl.Expr] = [pl.lit(parts[0])]
    for a, text in zip(args, parts[1:]):
        exprs += [(pl.col(a) if isinstance(a, str) else a).cast(pl.String), pl.lit(text)]
    return pl.concat_str(exprs)


def _price(col: str) -> pl.Expr:
    """Ticks of 0.10 as Binance prints them: '60000.10'."""
    return _fmt("{}.{}0", pl.col(col) // 10, pl.col(col) % 10)


def _amount(col: str) -> pl.Expr:
    """0.001 units as Binance prints them: '1.234'."""
    return _fmt("{}.{}", pl.col(col) // 1000, (pl.col(col) % 1000).cast(pl.String).str.zfill(3))


def _levels_text(pairs) -> str:
    return ",".join(f'["{p // 10}.{p % 10}0","{q // 1000}.{q % 1000:03d}"]' for p, q in pairs)


def raw_day_lines(
    hours: float = 24.0,
    depth_per_second: float = 10.0,
    trades_per_second: float = 5.0,
    snapshot_every_s: int = 900,
    seed: int = 0,
) -> Path:
    """Binance USD-M BTCUSDT raw lines ``<receive ns> <JSON>`` for ``hours`` from 2024-08-08.

    Message shapes are the recordings' (tests/data/binance/usdm_*): combined-stream
    ``depthUpdate`` diffs (Poisson, 1-10 changes per side, ids chained by ``pu``) and
    ``aggTrade`` messages, plus bare REST depth bodies ``{"lastUpdateId","E","T","bids",
    "asks"}`` (lobfast takes a JSON object with ``lastUpdateId`` and ``bids``/``asks`` arrays
    and no ``e`` as a snapshot) right after the first diff and then after the first diff of
    every ``snapshot_every_s``.  A snapshot's lastUpdateId is that diff's ``u`` and it holds
    the book after that diff (up to 1000 levels a side, as recorded, which here is all of
    it), so read_binance syncs once and never reports a gap, and a read starting at any
    snapshot rebuilds the same books as the whole day.  Receive time = event time E + 1-5 ms,
    non-decreasing in file order.
    """
    name = f"binance_usdm_btcusdt_{hours:g}h_{depth_per_second:g}dps_{trades_per_second:g}tps_{snapshot_every_s}s"
    path = DATA / f"{name}_seed{seed}.txt"
    if path.exists():
        return path
    DATA.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    span = int(hours * 3600e9)
    start_ms = START_US // 1000

    # depth diffs: the best bid walks by a few ticks; ids U = pu + 1, u = U + 1..20
    dt = _arrivals(rng, depth_per_second, span)
    n = len(dt)
    best_bid = BEST_BID0 + np.cumsum(rng.choice([-2, -1, 0, 1, 2], n, p=[0.03, 0.22, 0.5, 0.22, 0.03]))
    u = FIRST_UPDATE_ID + np.cumsum(rng.integers(2, 22, n))
    pu = np.concatenate([[FIRST_UPDATE_ID], u[:-1]])
    updates = _level_updates(rng, best_bid)
    msg, side, price, qty = updates
    keep = msg >= 0
    sides = (
        pl.DataFrame({"msg": msg[keep], "side": side[keep], "px": price[keep], "q": qty[keep]})
        .with_columns(lv=_fmt('["{}","{}"]', _price("px"), _amount("q")))
        .group_by("msg", "side", maintain_order=True)
        .agg(pl.col("lv").str.join(","))
    )
    T = start_ms + dt // 1_000_000
    depth = pl.DataFrame(
        {
            "key": 2 * dt,
            "E": T + rng.integers(0, 3, n),
            "T": T,
            "U": pu + 1,
            "u": u,
            "pu": pu,
            "b": sides.filter(pl.col("side") == BID)["lv"],
            "a": sides.filter(pl.col("side") == ASK)["lv"],
        }
    ).select(
        "key",
        "E",
        body=_fmt(
            '{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":{},"T":{},"s":"BTCUSDT",'
            '"U":{},"u":{},"pu":{},"b":[{}],"a":[{}]}}',
            *"E T U u pu b a".split(),
        ),
    )

    # aggTrades at the best bid (the buyer was the maker) or one tick above it
    tt = _arrivals(rng, trades_per_second, span)
    k = len(tt)
    at = np.searchsorted(dt, tt, side="right") - 1
    maker = rng.random(k) < 0.5
    fills = rng.geometric(0.5, k)
    last = FIRST_TRADE_ID + np.cumsum(fills) - 1
    T = start_ms + tt // 1_000_000
    trades = pl.DataFrame(
        {
            "key": 2 * tt,
            "E": T,
            "a": FIRST_AGG_ID + np.arange(k),
            "px": np.where(at >= 0, best_bid[np.maximum(at, 0)], BEST_BID0) + ~maker,
            "q": np.minimum(5000, rng.geometric(0.02, k)),
            "f": last - fills + 1,
            "l": last,
            "m": np.where(maker, "true", "false"),
        }
    ).select(
        "key",
        "E",
        body=_fmt(
            '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":{},"a":{},"s":"BTCUSDT","p":"{}","q":"{}",'
            '"f":{},"l":{},"T":{},"m":{}}}',
            "E",
            "a",
            _price("px"),
            _amount("q"),
            "f",
            "l",
            "E",
            "m",
        ),
    )

    # REST snapshots, each right after the diff it follows (key 2 * time + 1: before anything later)
    every = int(snapshot_every_s * 1e9)
    after = np.unique(np.searchsorted(dt, np.arange(0, span, every)))
    after = after[after < n]
    rows = []
    for i, (bp, bq, ap, aq) in zip(after, _book_states(updates, after, SNAPSHOT_LEVELS)):
        t = start_ms + int(dt[i]) // 1_000_000
        e = t + int(rng.integers(2, 10))
        body = (
            f'{{"lastUpdateId":{u[i]},"E":{e},"T":{t},"bids":[{_levels_text(zip(bp, bq))}],'
            f'"asks":[{_levels_text(zip(ap, aq))}]}}'
        )
        rows.append((2 * int(dt[i]) + 1, e, body))
    snaps = pl.DataFrame(rows, schema={"key": pl.Int64, "E": pl.Int64, "body": pl.String}, orient="row")

    lines = pl.concat([depth, trades, snaps]).sort("key", maintain_order=True)
    local = lines["E"].to_numpy() * 1_000_000 + rng.integers(1_000_000, 5_000_001, len(lines))
    lines = lines.select(_fmt("{} {}", pl.Series(np.maximum.accumulate(local)), "body"))
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        lines.write_csv(f, include_header=False, quote_style="never")
    return _done(path, tmp, t0, "lines", len(lines))


def check_raw_lines(path: Path) -> None:
    """lobfast reads the lines without a gap, syncs on the first snapshot and rebuilds the book."""
    import lobfast

    md = lobfast.read_binance(path)
    s = md.stats
    assert s["gaps"] == 0 and s["resets"] == 1 and s["snapshots"] > 0 and len(md.depth) > 0, s
    assert s["depth_messages"] > 0 and s["agg_trade_messages"] == len(md.agg_trades) > 0, s
    book = lobfast.reconstruct(md.depth, levels=10)
    assert len(book) and book.valid.all()
    print(f"lobfast: {md!r}, {s['snapshots']} snapshots, {len(book)} valid books")


def main() -> None:
    check_raw_lines(raw_day_lines(hours=1))
    raw_day_lines()
    book_csv()


if __name__ == "__main__":
    main()
