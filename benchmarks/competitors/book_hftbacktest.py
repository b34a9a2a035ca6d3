"""hftbacktest's ``HashMapMarketDepth`` (Rust) fed the same depth rows as lobfast's book.

Runs in its own interpreter (hftbacktest 2.4.4 pins an older NumPy than lobfast's, so
``benchmarks/bench_book.py`` makes a separate venv for it) and talks over stdin/stdout:

    python book_hftbacktest.py INPUT.npz OUTPUT.npz

loads the rows (``ts, side, price, qty, flags`` as lobfast's DepthEvents, plus
``tick_size``, ``lot_size``, ``levels``), writes the top ``levels`` of each side after
every END_OF_MESSAGE row to OUTPUT.npz (``bid_tick, bid_sz, ask_tick, ask_sz``: ticks are
integers, empty levels tick -1 and size 0) for the equality check, prints ``ready``, then
answers each ``time`` line on stdin with the seconds of one timed run.

hftbacktest 2.4.x exposes ``HashMapMarketDepth`` to Python only through a backtest
(``HashMapMarketDepthBacktest``), whose local processor applies each depth event with
``update_bid_depth`` / ``update_ask_depth`` and a clear event with ``clear_depth``.  The
rows become LOCAL events only (no EXCH events: only one book is kept, as in lobfast), a
RESET row is preceded by a DEPTH_CLEAR event, and message ``m``'s rows get the local time
``(m + 1) * 1000`` ns, so ``elapse(1000)`` applies exactly one message.  The timed loop
(numba-jitted, warmed up first on a copy of the data) applies each message and reads the
top levels per side by walking ticks down from the best bid (up from the best ask) with
``bid_qty_at_tick`` / ``ask_qty_at_tick``: the hash map has no order, so that walk is its
top-N read.  Building the backtest (untimed) only points it at the event array.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from hftbacktest import (
    BUY_EVENT,
    DEPTH_CLEAR_EVENT,
    DEPTH_EVENT,
    LOCAL_EVENT,
    SELL_EVENT,
    BacktestAsset,
    HashMapMarketDepthBacktest,
)
from hftbacktest.types import event_dtype
from numba import njit

RESET = 2  # lobfast.Flags
END_OF_MESSAGE = 8
STEP = 1000  # ns between messages


def events(side, price, qty, flags) -> tuple[np.ndarray, int]:
    """The rows as hftbacktest events (a clear before each RESET row); and the message count."""
    eom = (flags & END_OF_MESSAGE) != 0
    msg = np.concatenate(([0], np.cumsum(eom)[:-1]))  # message number of each row
    reset = (flags & RESET) != 0
    n = len(side)
    # each row is one event, a RESET row two (the clear first): slot of row i
    slot = np.arange(n) + np.cumsum(reset)
    out = np.zeros(n + int(reset.sum()), event_dtype)
    t = (msg + 1) * STEP
    clear_slot = slot[reset] - 1
    out["ev"][clear_slot] = DEPTH_CLEAR_EVENT | LOCAL_EVENT
    out["local_ts"][clear_slot] = out["exch_ts"][clear_slot] = t[reset]
    ev = np.where(side > 0, DEPTH_EVENT | LOCAL_EVENT | BUY_EVENT, DEPTH_EVENT | LOCAL_EVENT | SELL_EVENT)
    out["ev"][slot] = ev.astype(np.uint64)
    out["exch_ts"][slot] = t
    out["local_ts"][slot] = t
    out["px"][slot] = price
    out["qty"][slot] = qty
    keep = np.ones(len(out), bool)
    keep[slot[side == 0]] = False  # marker rows: flags only (their clear stays)
    return out[keep], int(eom.sum())


def backtest(ev: np.ndarray, tick_size: float, lot_size: float):
    asset = (
        BacktestAsset()
        .data(ev)
        .linear_asset(1.0)
        .constant_order_latency(0, 0)
        .risk_adverse_queue_model()
        .no_partial_fill_exchange()
        .trading_value_fee_model(0.0, 0.0)
        .tick_size(tick_size)
        .lot_size(lot_size)
    )
    return HashMapMarketDepthBacktest([asset])


@njit(cache=False)
def replay(hbt, n_msgs, lo_tick, hi_tick, bid_tick, bid_sz, ask_tick, ask_sz):
    """Apply each message, then read the top levels per side (ticks walked from the best)."""
    levels = bid_tick.shape[1]
    for m in range(n_msgs):
        hbt.elapse(0 if m == 0 else STEP)
        depth = hbt.depth(0)
        k = 0
        t = depth.best_bid_tick
        if t >= lo_tick:
            while k < levels and t >= lo_tick:
                q = depth.bid_qty_at_tick(t)
                if q > 0:
                    bid_tick[m, k] = t
                    bid_sz[m, k] = q
                    k += 1
                t -= 1
        while k < levels:
            bid_tick[m, k] = -1
            bid_sz[m, k] = 0.0
            k += 1
        k = 0
        t = depth.best_ask_tick
        if t <= hi_tick:
            while k < levels and t <= hi_tick:
                q = depth.ask_qty_at_tick(t)
                if q > 0:
                    ask_tick[m, k] = t
                    ask_sz[m, k] = q
                    k += 1
                t += 1
        while k < levels:
            ask_tick[m, k] = -1
            ask_sz[m, k] = 0.0
            k += 1
    return hbt.close()


def main() -> None:
    src, dst = sys.argv[1], sys.argv[2]
    with np.load(src) as z:
        side, price, qty, flags = z["side"], z["price"], z["qty"], z["flags"]
        tick_size, lot_size, levels = float(z["tick_size"]), float(z["lot_size"]), int(z["levels"])
    ev, n_msgs = events(side, price, qty, flags)
    ticks = np.round(price[side != 0] / tick_size).astype(np.int64)
    lo, hi = int(ticks.min()), int(ticks.max())
    outs = [np.empty((n_msgs, levels), dt) for dt in (np.int64, np.float64, np.int64, np.float64)]

    def run() -> float:
        data = ev.copy()  # the backtest borrows the array: a fresh one per run
        hbt = backtest(data, tick_size, lot_size)
        t0 = time.perf_counter()
        replay(hbt, n_msgs, lo, hi, *outs)
        dt = time.perf_counter() - t0
        del hbt, data
        return dt

    run()  # compiles (JIT warm-up), then the outputs of a clean run
    run()
    np.savez(dst, bid_tick=outs[0], bid_sz=outs[1], ask_tick=outs[2], ask_sz=outs[3])
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "time":
            print(f"{run():.9f}", flush=True)


if __name__ == "__main__":
    main()
