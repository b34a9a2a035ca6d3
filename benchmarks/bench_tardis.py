"""Tardis CSV hook: lobfast.read_tardis vs pandas.read_csv + the same normalisation.

Runs only when ``lobfast.read_tardis`` exists.  Data: the Binance recordings' synced depth
rows written as Tardis CSV by datagen/tardis_data.py.  The pandas side turns a Tardis
``incremental_book_L2`` frame into DepthEvents columns with the rules of
csrc/core/formats/tardis.c: ts/local_ts = microseconds x 1000 (empty timestamp -> local), side
bid/ask -> +1/-1, update_id -1, rows before the first snapshot dropped, SNAPSHOT on
is_snapshot rows, RESET where is_snapshot turns true, END_OF_MESSAGE on the last row of each
run of rows sharing local_timestamp; first symbol kept.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from common import check_equal, median, spread, time_side_by_side, warm_page_cache
from datagen.tardis_data import tardis_csv

import lobfast

SNAPSHOT, RESET, END_OF_MESSAGE = 1, 2, 8
DATASETS = {
    "usdm": ("USD-M BTCUSDT 2024-08-08", "usdm_btcusdt_20240808", "binance-futures"),
    "spot": ("spot BTCUSDT 2024-08-08", "spot_btcusdt_20240808", "binance"),
}
LOBFAST = "lobfast.read_tardis"
PANDAS = "pandas.read_csv (C engine)"
PANDAS_ARROW = "pandas.read_csv (pyarrow engine)"
POLARS = "polars.read_csv"
TARGETS = {PANDAS: 3.0, POLARS: 1.5}  # lobfast at least this many times faster


def available() -> bool:
    return hasattr(lobfast, "read_tardis")


COLUMNS = ["symbol", "timestamp", "local_timestamp", "is_snapshot", "side", "price", "amount"]


def _normalise(sym, ts_us, ts_missing, local_us, snap, side_bid, side_ask, price, amount) -> dict:
    """The DepthEvents normalisation of csrc/core/formats/tardis.c in vectorised NumPy, from
    the columns as NumPy arrays (``sym`` as upper-case-comparable strings)."""
    if len(sym) and not (sym == sym[0]).all():  # keep the first symbol (any case)
        keep = np.char.upper(sym.astype(str)) == str(sym[0]).upper()
        ts_us, ts_missing, local_us, snap = ts_us[keep], ts_missing[keep], local_us[keep], snap[keep]
        side_bid, side_ask, price, amount = side_bid[keep], side_ask[keep], price[keep], amount[keep]
    run_start = snap & ~np.concatenate(([False], snap[:-1]))
    first = int(np.argmax(run_start)) if run_start.any() else len(snap)
    local = local_us[first:] * 1000
    ts = ts_us[first:] * 1000
    if ts_missing.any():  # no exchange time: Tardis documents it as the local time
        ts = np.where(ts_missing[first:], local, ts)
    snap, run_start, bid = snap[first:], run_start[first:], side_bid[first:]
    if not (bid | side_ask[first:]).all():
        raise ValueError("side must be 'bid' or 'ask'")
    n = len(snap)
    flags = np.where(snap, SNAPSHOT, 0).astype(np.uint8)
    flags[run_start] |= RESET
    eom = np.ones(n, bool)
    eom[:-1] = local[1:] != local[:-1]
    flags[eom] |= END_OF_MESSAGE
    return {
        "depth": {
            "ts": ts,
            "local_ts": local,
            "side": np.where(bid, 1, -1).astype(np.int8),
            "price": price[first:],
            "qty": amount[first:],
            "update_id": np.full(n, -1, np.int64),
            "flags": flags,
        }
    }


def pandas_depth(path: str, engine: str = "c") -> dict:
    """DepthEvents columns from a Tardis incremental_book_L2 CSV, the pandas way (vectorised)."""
    import pandas as pd

    df = pd.read_csv(path, engine=engine, usecols=COLUMNS)
    ts = df["timestamp"]
    missing = ts.isna().to_numpy()
    return _normalise(
        df["symbol"].to_numpy(),
        ts.fillna(0).to_numpy(np.int64) if missing.any() else ts.to_numpy(np.int64),
        missing,
        df["local_timestamp"].to_numpy(np.int64),
        df["is_snapshot"].to_numpy(dtype=bool),
        (df["side"] == "bid").to_numpy(bool),
        (df["side"] == "ask").to_numpy(bool),
        df["price"].to_numpy(np.float64),
        df["amount"].to_numpy(np.float64),
    )


def polars_depth(path: str) -> dict:
    """The same with polars.read_csv (multi-threaded) and the same NumPy normalisation."""
    import polars as pl

    df = pl.read_csv(
        path,
        columns=COLUMNS,
        schema_overrides={
            "timestamp": pl.Int64,
            "local_timestamp": pl.Int64,
            "price": pl.Float64,
            "amount": pl.Float64,
        },
    )
    ts = df["timestamp"]
    missing = ts.is_null().to_numpy()
    return _normalise(
        df["symbol"].to_numpy(),
        ts.fill_null(0).to_numpy(),
        missing,
        df["local_timestamp"].to_numpy(),
        df["is_snapshot"].to_numpy(),
        (df["side"] == "bid").to_numpy(),
        (df["side"] == "ask").to_numpy(),
        df["price"].to_numpy(),
        df["amount"].to_numpy(),
    )


def _depth_only(result) -> dict:
    """A DepthEvents (read_tardis) or pandas_depth's dict, in the shape common.differences takes."""
    cols = result.columns if isinstance(result, lobfast.DepthEvents) else result["depth"]
    return {"depth": cols, "trades": {}, "agg_trades": {}, "quotes": {}}


def speed(name: str, rounds: int) -> dict:
    label, stem, exchange = DATASETS[name]
    path = tardis_csv(stem, exchange)
    warm_page_cache(path)
    p = str(path)
    tools = {
        LOBFAST: partial(lobfast.read_tardis, p),
        PANDAS: partial(pandas_depth, p),
        PANDAS_ARROW: partial(pandas_depth, p, "pyarrow"),
        POLARS: partial(polars_depth, p),
    }
    expected = _depth_only(tools[LOBFAST]())
    for tool, fn in tools.items():
        if tool != LOBFAST:
            check_equal(f"Tardis {label}: {tool}", expected, _depth_only(fn()))
    times = time_side_by_side(tools, rounds, inner={LOBFAST: 3})
    return {
        "dataset": label,
        "bytes": path.stat().st_size,
        "rows": len(expected["depth"]["ts"]),
        "median_s": {t: median(v) for t, v in times.items()},
        "spread": {t: spread(v) for t, v in times.items()},
    }
