"""Baseline (a): the plain Python loop a competent user would write.

``json.loads`` per line, ``float()`` for the decimal strings (float(str) is correctly
rounded, so it gives the same doubles as lobfast's exact parser), rows appended to one list
per column, ``np.array`` at the end.  Depth follows the same Binance sync rules and message
routing (binance_sync.BinanceSync), so the output equals ``lobfast.read_binance`` array for
array.
"""

from __future__ import annotations

import json
import math

import numpy as np

from competitors.binance_sync import END_OF_MESSAGE, RESET, SNAPSHOT, BinanceSync

DEPTH_COLS = ("ts", "local_ts", "side", "price", "qty", "update_id", "flags")
TRADE_COLS = ("ts", "local_ts", "price", "qty", "side", "trade_id")
QUOTE_COLS = ("ts", "local_ts", "update_id", "bid_px", "bid_qty", "ask_px", "ask_qty")
DTYPES = {"ts": "i8", "local_ts": "i8", "side": "i1", "update_id": "i8", "flags": "u1", "trade_id": "i8"}


class LoopReader(BinanceSync):
    """Lines in, one list per column out."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = {k: [] for k in DEPTH_COLS}
        self.trades = {k: [] for k in TRADE_COLS}
        self.agg_trades = {k: [] for k in TRADE_COLS}
        self.quotes = {k: [] for k in QUOTE_COLS}

    # -- depth rows: the payload is a list of (side, price, qty) ------------------------
    def levels(self, bids, asks):
        rows = [(1, float(p), float(q)) for p, q, *_ in bids]
        rows += [(-1, float(p), float(q)) for p, q, *_ in asks]
        return rows

    def _rows(self, ts, local, uid, rows, first_flags, all_flags):
        n = len(rows)
        if n == 0:
            return
        d = self.depth
        d["ts"].extend([ts] * n)
        d["local_ts"].extend([local] * n)
        d["update_id"].extend([uid] * n)
        side, price, qty = d["side"], d["price"], d["qty"]
        for s, p, q in rows:
            side.append(s)
            price.append(p)
            qty.append(q)
        flags = d["flags"]
        if n == 1:
            flags.append(all_flags | first_flags | END_OF_MESSAGE)
        else:
            flags.append(all_flags | first_flags)
            flags.extend([all_flags] * (n - 2))
            flags.append(all_flags | END_OF_MESSAGE)

    def emit_diff(self, ts, local, u, rows):
        self._rows(ts, local, u, rows, 0, 0)

    def emit_snapshot(self, ts, local, last_update_id, rows):
        if not rows:
            self.emit_marker(ts, local, last_update_id, SNAPSHOT | RESET | END_OF_MESSAGE)
        else:
            self._rows(ts, local, last_update_id, rows, RESET, SNAPSHOT)

    def emit_marker(self, ts, local, update_id, flags):
        self._rows(ts, local, update_id, [(0, math.nan, math.nan)], flags, 0)

    def line(self, line: str) -> None:
        stamp, _, body = line.partition(" ")
        if body:  # else a blank line
            self.message(json.loads(body), int(stamp))

    def finish(self) -> dict[str, dict[str, np.ndarray]]:
        self.end()
        return {
            name: {k: np.array(v, dtype=DTYPES.get(k, "f8")) for k, v in getattr(self, name).items()}
            for name in ("depth", "trades", "agg_trades", "quotes")
        }


def read(path: str, opener=open) -> dict[str, dict[str, np.ndarray]]:
    """(a): lobfast.read_binance's tables for one file, in plain Python."""
    r = LoopReader()
    with opener(path, "rt") as f:
        for line in f:
            r.line(line)
    return r.finish()
