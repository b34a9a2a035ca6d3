"""Plain-Python references for the C core, used by the tests (and as the benchmarks' baseline).

Written for clarity, not speed: each function restates a rule of the C code in the most
obvious way, so a disagreement points at a bug in one of them.
"""

from __future__ import annotations

import gzip
import json
import math
from decimal import Decimal

import numpy as np

SNAPSHOT, RESET, GAP, END_OF_MESSAGE = 1, 2, 4, 8


def parse_decimal(text: str) -> float:
    """The correctly rounded float64 of a decimal string (Python's float() is exact)."""
    return float(Decimal(text))


def epoch_to_ns(t: int) -> int:
    """Seconds, ms, us or ns since the epoch, told apart by magnitude, to ns."""
    a = abs(t)
    if a < 10**10:
        return t * 10**9
    if a < 10**13:
        return t * 10**6
    if a < 10**16:
        return t * 10**3
    return t


def open_text(path: str):
    """Lines of a plain or gzip text file."""
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rt") if magic == b"\x1f\x8b" else open(path)  # noqa: SIM115


class BinanceReference:
    """Binance raw lines -> the same columns as the C reader, with json.loads per line."""

    def __init__(self, symbol: str | None = None) -> None:
        self.depth: dict[str, list] = {k: [] for k in ("ts", "local_ts", "side", "price", "qty", "update_id", "flags")}
        self.trades: dict[str, list] = {k: [] for k in ("ts", "local_ts", "price", "qty", "side", "trade_id")}
        self.agg_trades: dict[str, list] = {k: [] for k in ("ts", "local_ts", "price", "qty", "side", "trade_id")}
        self.quotes: dict[str, list] = {
            k: [] for k in ("ts", "local_ts", "update_id", "bid_px", "bid_qty", "ask_px", "ask_qty")
        }
        self.symbol: str | None = symbol.upper() if symbol else None
        self.others: set[str] = set()
        self.market: str | None = None
        self.synced = False
        self.last_u = 0
        self.last_ts = 0
        self.pending: list[dict] = []  # buffered diffs: {U, u, pu, ts, local, rows}
        self.snapshot: dict | None = None  # {L, ts, local, rows}
        self.gaps = self.resets = self.dropped = 0

    # -- output -------------------------------------------------------------------------
    def _row(self, ts, local, side, price, qty, uid, flags):
        for k, v in zip(self.depth, (ts, local, side, price, qty, uid, flags)):
            self.depth[k].append(v)

    def _emit_msg(self, m):
        for i, (side, px, qty) in enumerate(m["rows"]):
            last = i == len(m["rows"]) - 1
            self._row(m["ts"], m["local"], side, px, qty, m["u"], END_OF_MESSAGE if last else 0)
        self.last_u, self.last_ts = m["u"], m["ts"]

    def _check(self, m) -> str:
        if m["u"] <= self.last_u:
            return "stale"
        if self.market == "usdm":
            return "gap" if m["pu"] != self.last_u else "ok"
        return "gap" if m["U"] > self.last_u + 1 else "ok"

    # -- the sync rules -------------------------------------------------------------------
    def _try_sync(self):
        s = self.snapshot
        L = s["L"]
        usdm = self.market == "usdm"
        while self.pending and (self.pending[0]["u"] < L if usdm else self.pending[0]["u"] <= L):
            self.pending.pop(0)
            self.dropped += 1
        if not self.pending:
            return
        f = self.pending[0]
        ok = (f["U"] <= L <= f["u"] or f["pu"] == L) if usdm else f["U"] <= L + 1
        if not ok:
            self.snapshot = None
            return
        ts = f["ts"]
        if s["ts"] is not None and s["ts"] < ts:
            ts = s["ts"]
        ts = max(ts, self.last_ts)
        rows = s["rows"]
        if not rows:
            self._row(ts, s["local"], 0, math.nan, math.nan, L, SNAPSHOT | RESET | END_OF_MESSAGE)
        for i, (side, px, qty) in enumerate(rows):
            fl = SNAPSHOT | (RESET if i == 0 else 0) | (END_OF_MESSAGE if i == len(rows) - 1 else 0)
            self._row(ts, s["local"], side, px, qty, L, fl)
        self.resets += 1
        self.snapshot = None
        self.synced, self.last_u, self.last_ts = True, L, ts
        pending, self.pending = self.pending, []
        for i, m in enumerate(pending):
            state = "ok" if i == 0 else self._check(m)
            if state == "gap":
                self.gaps += 1
                self._row(m["ts"], m["local"], 0, math.nan, math.nan, m["u"], GAP | END_OF_MESSAGE)
                self.synced = False
                self.pending = pending[i:]
                return
            if state == "ok":
                self._emit_msg(m)

    def _diff(self, d, local):
        if self.market is None:
            self.market = "usdm" if "pu" in d else "spot"
        levels = [(1, parse_decimal(p), parse_decimal(q)) for p, q, *_ in d.get("b", [])]
        levels += [(-1, parse_decimal(p), parse_decimal(q)) for p, q, *_ in d.get("a", [])]
        ts = epoch_to_ns(d["T"] if "T" in d else d["E"])
        m = {"U": d["U"], "u": d["u"], "pu": d.get("pu", 0), "ts": ts, "local": local, "rows": levels}
        if self.synced:
            state = self._check(m)
            if state == "stale":
                return
            if state == "ok":
                self._emit_msg(m)
                return
            self.gaps += 1
            self.synced = False
            self.pending = [m]
            self._row(ts, local, 0, math.nan, math.nan, m["u"], GAP | END_OF_MESSAGE)
            return
        self.pending.append(m)
        if self.snapshot is not None:
            self._try_sync()

    def _snapshot(self, d, local, bare):
        if self.synced:
            return
        L = d["lastUpdateId"]
        if bare and self.others and not (self.pending and self.pending[0]["U"] - 1 <= L <= self.pending[-1]["u"]):
            return  # may be another symbol's REST body
        rows = [(1, parse_decimal(p), parse_decimal(q)) for p, q, *_ in d["bids"]]
        rows += [(-1, parse_decimal(p), parse_decimal(q)) for p, q, *_ in d["asks"]]
        t = d.get("T", d.get("E"))
        if self.market is None and t is not None:
            self.market = "usdm"
        self.snapshot = {"L": d["lastUpdateId"], "ts": None if t is None else epoch_to_ns(t), "local": local, "rows": rows}
        self._try_sync()

    def line(self, line: str) -> None:
        line = line.rstrip("\r\n")
        if not line:
            return
        stamp, _, body = line.partition(" ")
        local = int(stamp)
        msg = json.loads(body)
        if "lobfast" in msg:
            return
        stream = msg.get("stream", "")
        d = msg["data"] if "data" in msg else msg
        e = d.get("e")
        if "@depth" in stream and stream.split("@depth", 1)[1][:1].isdigit():
            return  # partial book depth
        snapshot = "lastUpdateId" in d and "bids" in d and e is None
        quote = e == "bookTicker" or (e is None and "u" in d and isinstance(d.get("b"), str))
        if not (snapshot or quote or e in ("depthUpdate", "trade", "aggTrade")):
            return
        sym = d.get("s") or (stream.split("@", 1)[0].upper() if stream else None)
        if sym is not None:
            if self.symbol is None:
                self.symbol = sym
            elif sym != self.symbol:
                self.others.add(sym)
                return
        if snapshot:
            self._snapshot(d, local, sym is None)
        elif e == "depthUpdate":
            self._diff(d, local)
        elif e in ("trade", "aggTrade"):
            if d.get("X", "MARKET") != "MARKET":
                return
            out = self.trades if e == "trade" else self.agg_trades
            row = (
                epoch_to_ns(d.get("T", d.get("E"))),
                local,
                parse_decimal(d["p"]),
                parse_decimal(d["q"]),
                -1 if d["m"] else 1,
                d["t"] if e == "trade" else d["a"],
            )
            for k, v in zip(out, row):
                out[k].append(v)
        else:
            t = d.get("T", d.get("E"))
            row = (
                local if t is None else epoch_to_ns(t),
                local,
                d["u"],
                parse_decimal(d["b"]),
                parse_decimal(d["B"]),
                parse_decimal(d["a"]),
                parse_decimal(d["A"]),
            )
            for k, v in zip(self.quotes, row):
                self.quotes[k].append(v)

    def finish(self) -> dict[str, dict[str, np.ndarray]]:
        if not self.synced:
            self.dropped += len(self.pending)
            self.pending = []
        types = {"ts": "i8", "local_ts": "i8", "side": "i1", "update_id": "i8", "flags": "u1", "trade_id": "i8"}
        out = {}
        for name in ("depth", "trades", "agg_trades", "quotes"):
            cols = getattr(self, name)
            out[name] = {k: np.array(v, dtype=types.get(k, "f8")) for k, v in cols.items()}
        return out


def read_binance(paths, symbol: str | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Reference of lobfast.read_binance's tables for one symbol."""
    ref = BinanceReference(symbol)
    for p in [paths] if isinstance(paths, str) else paths:
        with open_text(p) as f:
            for line in f:
                ref.line(line)
    return ref.finish()


def best_quotes_from_depth(depth: dict[str, np.ndarray]) -> dict[int, tuple[float, float, float, float]]:
    """Apply depth rows to a dict book; after every message, the best bid/ask by update id.

    Only messages on a known book (after a RESET, before a GAP) are reported.
    """
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    known = False
    out = {}
    for side, px, qty, uid, fl in zip(
        depth["side"].tolist(), depth["price"].tolist(), depth["qty"].tolist(), depth["update_id"].tolist(),
        depth["flags"].tolist(),
    ):
        if fl & GAP:
            known = False
        if fl & RESET:
            bids.clear()
            asks.clear()
            known = True
        if side:
            book = bids if side > 0 else asks
            if qty == 0:
                book.pop(px, None)
            else:
                book[px] = qty
        if fl & END_OF_MESSAGE and known and bids and asks:
            bb, ba = max(bids), min(asks)
            out[uid] = (bb, bids[bb], ba, asks[ba])
    return out
