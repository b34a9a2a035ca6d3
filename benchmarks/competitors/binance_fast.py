"""Baseline (b): the fastest pure-Python-ecosystem route we could build.

A C JSON decoder per line (msgspec with typed Structs, or orjson) and no per-row Python
objects kept: values go into ``array.array`` buffers (contiguous C arrays that grow
amortised and become NumPy arrays with ``np.frombuffer``, no copy).  Depth rows are stored
as one *segment* per message (times, id, level counts, flags) plus a flat buffer of
``price, qty`` pairs; ``finish`` expands the segments with ``np.repeat``.  The garbage
collector is paused while reading (nothing kept forms cycles).

Hot path: the line's stream name (``{"stream":"btcusdt@depth@0ms",...``) picks a decoder
typed for that stream; anything else (REST snapshots, collector events, raw streams, a
message the typed decoder rejects) goes through ``orjson.loads`` and the same
field-by-field routing as the plain loop (binance_sync.BinanceSync.message).
Same sync rules, same outputs as ``lobfast.read_binance``.

Variants tried and kept out of the hot path because they were slower here: preallocated
NumPy arrays filled by index (a NumPy scalar store costs more than ``array.append``),
``np.array`` over lists of level tuples, decoding the levels as strings and converting them
in bulk, and ``np.fromstring`` over the raw level text.
"""

from __future__ import annotations

import gc
import math
from array import array
from itertools import chain

import msgspec
import numpy as np
import orjson

from competitors.binance_sync import END_OF_MESSAGE, RESET, SNAPSHOT, BinanceSync, epoch_to_ns

NAN2 = (math.nan, math.nan)
MS_LO, MS_HI = 10**10, 10**13  # epoch_to_ns: milliseconds in [MS_LO, MS_HI)


class FastSink(BinanceSync):
    """Output buffers of route (b)."""

    def __init__(self, text_levels: bool) -> None:
        super().__init__()
        self.text_levels = text_levels  # levels hold strings (orjson) or floats (msgspec)
        # one segment per emitted message: its rows are nb bids, na asks, n0 marker rows
        self.seg = {k: array("q") for k in ("ts", "local_ts", "update_id", "nb", "na", "n0")}
        self.seg_flags = {k: array("B") for k in ("all", "first", "last")}
        self.lv = array("d")  # price, qty, price, qty, ...
        self.trades = self._trade_buffers()
        self.agg_trades = self._trade_buffers()
        self.quotes = {k: array("q") for k in ("ts", "local_ts", "update_id")}
        self.quotes.update({k: array("d") for k in ("bid_px", "bid_qty", "ask_px", "ask_qty")})

    @staticmethod
    def _trade_buffers() -> dict[str, array]:
        return {
            "ts": array("q"),
            "local_ts": array("q"),
            "price": array("d"),
            "qty": array("d"),
            "side": array("b"),
            "trade_id": array("q"),
        }

    # -- depth ---------------------------------------------------------------------------
    def levels(self, bids, asks):
        """Payload for the generic path: float pairs (the fast paths build theirs)."""
        return (
            [(float(p), float(q)) for p, q, *_ in bids],
            [(float(p), float(q)) for p, q, *_ in asks],
        )

    def _segment(self, ts, local, uid, nb, na, n0, f_all, f_first, f_last):
        s, f = self.seg, self.seg_flags
        s["ts"].append(ts)
        s["local_ts"].append(local)
        s["update_id"].append(uid)
        s["nb"].append(nb)
        s["na"].append(na)
        s["n0"].append(n0)
        f["all"].append(f_all)
        f["first"].append(f_first)
        f["last"].append(f_last)

    def _levels(self, levels) -> None:
        lv = self.lv
        n = len(lv)
        if self.text_levels:
            lv.extend(map(float, chain.from_iterable(levels)))
        else:
            lv.extend(chain.from_iterable(levels))
        if len(lv) - n != 2 * len(levels):  # levels with extra fields: [price, qty, ...]
            del lv[n:]
            for level in levels:
                lv.append(float(level[0]))
                lv.append(float(level[1]))

    def emit_diff(self, ts, local, u, payload):
        bids, asks = payload
        self._segment(ts, local, u, len(bids), len(asks), 0, 0, 0, END_OF_MESSAGE)
        self._levels(bids)
        self._levels(asks)

    def emit_snapshot(self, ts, local, last_update_id, payload):
        bids, asks = payload
        if not bids and not asks:
            self.emit_marker(ts, local, last_update_id, SNAPSHOT | RESET | END_OF_MESSAGE)
            return
        self._segment(ts, local, last_update_id, len(bids), len(asks), 0, SNAPSHOT, RESET, END_OF_MESSAGE)
        self._levels(bids)
        self._levels(asks)

    def emit_marker(self, ts, local, update_id, flags):
        self._segment(ts, local, update_id, 0, 0, 1, flags, 0, 0)
        self.lv.extend(NAN2)

    def finish(self) -> dict[str, dict[str, np.ndarray]]:
        self.end()
        s = {k: np.frombuffer(v, np.int64) if len(v) else np.empty(0, np.int64) for k, v in self.seg.items()}
        f = {k: np.frombuffer(v, np.uint8) if len(v) else np.empty(0, np.uint8) for k, v in self.seg_flags.items()}
        counts = np.stack([s["nb"], s["na"], s["n0"]], axis=1)
        n = counts.sum(axis=1)
        side = np.repeat(np.tile(np.array([1, -1, 0], np.int8), len(n)), counts.ravel())
        flags = np.repeat(f["all"], n)
        end = np.cumsum(n)
        nz = n > 0
        flags[(end - n)[nz]] |= f["first"][nz]
        flags[(end - 1)[nz]] |= f["last"][nz]
        lv = np.frombuffer(self.lv, np.float64).reshape(-1, 2) if len(self.lv) else np.empty((0, 2))
        depth = {
            "ts": np.repeat(s["ts"], n),
            "local_ts": np.repeat(s["local_ts"], n),
            "side": side,
            "price": lv[:, 0].copy(),
            "qty": lv[:, 1].copy(),
            "update_id": np.repeat(s["update_id"], n),
            "flags": flags,
        }
        types = {"q": np.int64, "d": np.float64, "b": np.int8}

        def table(cols):
            return {
                k: np.frombuffer(v, types[v.typecode]) if len(v) else np.empty(0, types[v.typecode])
                for k, v in cols.items()
            }

        return {
            "depth": depth,
            "trades": table(self.trades),
            "agg_trades": table(self.agg_trades),
            "quotes": table(self.quotes),
        }


def _stream_kind(stream: str) -> str:
    """What a combined stream carries, from its name."""
    if "@depth" in stream:
        return "partial" if stream.split("@depth", 1)[1][:1].isdigit() else "depth"
    for kind in ("aggTrade", "trade", "bookTicker"):
        if stream.endswith("@" + kind):
            return kind
    return "generic"


_PREFIX = b'{"stream":"'


# ---------------------------------------------------------------------------- msgspec
class _Depth(msgspec.Struct, kw_only=True):
    e: str
    E: int
    T: int | None = None
    s: str = ""
    U: int
    u: int
    pu: int | None = None
    b: list[tuple[float, float]] = []
    a: list[tuple[float, float]] = []


class _Trade(msgspec.Struct, kw_only=True):
    e: str
    E: int | None = None
    T: int | None = None
    s: str = ""
    t: int
    p: float
    q: float
    m: bool
    X: str = "MARKET"


class _AggTrade(msgspec.Struct, kw_only=True):
    e: str
    E: int | None = None
    T: int | None = None
    s: str = ""
    a: int
    p: float
    q: float
    m: bool
    X: str = "MARKET"


class _BookTicker(msgspec.Struct, kw_only=True):
    e: str = "bookTicker"
    E: int | None = None
    T: int | None = None
    s: str = ""
    u: int
    b: float
    B: float
    a: float
    A: float


class _DepthMsg(msgspec.Struct):
    stream: str
    data: _Depth


class _TradeMsg(msgspec.Struct):
    stream: str
    data: _Trade


class _AggTradeMsg(msgspec.Struct):
    stream: str
    data: _AggTrade


class _BookTickerMsg(msgspec.Struct):
    stream: str
    data: _BookTicker


# strict=False: decimal strings ("61800.20") decode straight to float (correctly rounded)
_MS_DECODERS = {
    kind: msgspec.json.Decoder(t, strict=False).decode
    for kind, t in (
        ("depth", _DepthMsg),
        ("trade", _TradeMsg),
        ("aggTrade", _AggTradeMsg),
        ("bookTicker", _BookTickerMsg),
    )
}
_MS_EVENT = {"depth": "depthUpdate", "trade": "trade", "aggTrade": "aggTrade", "bookTicker": "bookTicker"}


def read_msgspec(path: str, opener=open) -> dict[str, dict[str, np.ndarray]]:
    """(b) with msgspec typed Structs."""
    r = FastSink(text_levels=False)
    routes: dict[bytes, tuple] = {}  # stream name -> (kind, decoder, symbol from the stream)
    qt, tr, ag = r.quotes, r.trades, r.agg_trades
    q_ts, q_local, q_uid = qt["ts"].append, qt["local_ts"].append, qt["update_id"].append
    q_bp, q_bq, q_ap, q_aq = (
        qt["bid_px"].append,
        qt["bid_qty"].append,
        qt["ask_px"].append,
        qt["ask_qty"].append,
    )
    t_ts, t_local, t_px, t_qty, t_side, t_id = (tr[k].append for k in tr)
    symbol = None
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        with opener(path, "rb") as f:
            for line in f:
                sp = line.find(b" ")
                if sp <= 0:
                    if line.strip():
                        raise ValueError(f"expected '<receive time ns> <message>', got {line[:40]!r}")
                    continue
                local = int(line[:sp])
                if line.startswith(_PREFIX, sp + 1):
                    key = line[sp + 12 : line.find(b'"', sp + 12)]
                    route = routes.get(key)
                    if route is None:
                        name = key.decode()
                        kind = _stream_kind(name)
                        route = routes[key] = (kind, _MS_DECODERS.get(kind), name.split("@", 1)[0].upper())
                    kind, dec, stream_sym = route
                    if kind == "partial":
                        continue
                    if dec is not None:
                        try:
                            d = dec(memoryview(line)[sp + 1 :]).data
                        except msgspec.ValidationError:
                            d = None
                        if d is not None and d.e == _MS_EVENT[kind]:
                            sym = d.s or stream_sym
                            if sym != symbol:
                                if not r.symbol_ok(sym):
                                    continue
                                symbol = r.symbol
                            t = d.T if d.T is not None else d.E
                            if kind == "bookTicker":
                                q_ts(local if t is None else t * 1_000_000 if MS_LO <= t < MS_HI else epoch_to_ns(t))
                                q_local(local)
                                q_uid(d.u)
                                q_bp(d.b)
                                q_bq(d.B)
                                q_ap(d.a)
                                q_aq(d.A)
                            elif kind == "trade":
                                if d.X != "MARKET":
                                    continue
                                t_ts(t * 1_000_000 if MS_LO <= t < MS_HI else epoch_to_ns(t))
                                t_local(local)
                                t_px(d.p)
                                t_qty(d.q)
                                t_side(-1 if d.m else 1)
                                t_id(d.t)
                            elif kind == "depth":
                                r.diff(d.U, d.u, d.pu, epoch_to_ns(t), local, (d.b, d.a))
                            else:  # aggTrade
                                if d.X != "MARKET":
                                    continue
                                a = ag
                                a["ts"].append(epoch_to_ns(t))
                                a["local_ts"].append(local)
                                a["price"].append(d.p)
                                a["qty"].append(d.q)
                                a["side"].append(-1 if d.m else 1)
                                a["trade_id"].append(d.a)
                            continue
                r.message(orjson.loads(memoryview(line)[sp + 1 :]), local)
                symbol = r.symbol
    finally:
        if was_enabled:
            gc.enable()
    return r.finish()


# ---------------------------------------------------------------------------- orjson
def read_orjson(path: str, opener=open) -> dict[str, dict[str, np.ndarray]]:
    """(b) with orjson dicts and float() on the decimal strings."""
    r = FastSink(text_levels=True)
    routes: dict[bytes, tuple] = {}
    qt, tr = r.quotes, r.trades
    q_ts, q_local, q_uid = qt["ts"].append, qt["local_ts"].append, qt["update_id"].append
    q_bp, q_bq, q_ap, q_aq = (
        qt["bid_px"].append,
        qt["bid_qty"].append,
        qt["ask_px"].append,
        qt["ask_qty"].append,
    )
    t_ts, t_local, t_px, t_qty, t_side, t_id = (tr[k].append for k in tr)
    loads = orjson.loads
    symbol = None
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        with opener(path, "rb") as f:
            for line in f:
                sp = line.find(b" ")
                if sp <= 0:
                    if line.strip():
                        raise ValueError(f"expected '<receive time ns> <message>', got {line[:40]!r}")
                    continue
                local = int(line[:sp])
                msg = loads(memoryview(line)[sp + 1 :])
                if line.startswith(_PREFIX, sp + 1):
                    key = line[sp + 12 : line.find(b'"', sp + 12)]
                    route = routes.get(key)
                    if route is None:
                        name = key.decode()
                        route = routes[key] = (_stream_kind(name), name.split("@", 1)[0].upper())
                    kind, stream_sym = route
                    if kind == "partial":
                        continue
                    d = msg.get("data")
                    if kind in _MS_EVENT and d is not None and d.get("e", "bookTicker") == _MS_EVENT[kind]:
                        sym = d.get("s") or stream_sym
                        if sym != symbol:
                            if not r.symbol_ok(sym):
                                continue
                            symbol = r.symbol
                        t = d.get("T", d.get("E"))
                        if kind == "bookTicker":
                            q_ts(local if t is None else t * 1_000_000 if MS_LO <= t < MS_HI else epoch_to_ns(t))
                            q_local(local)
                            q_uid(d["u"])
                            q_bp(float(d["b"]))
                            q_bq(float(d["B"]))
                            q_ap(float(d["a"]))
                            q_aq(float(d["A"]))
                            continue
                        if kind == "trade":
                            if d.get("X", "MARKET") != "MARKET":
                                continue
                            t_ts(t * 1_000_000 if MS_LO <= t < MS_HI else epoch_to_ns(t))
                            t_local(local)
                            t_px(float(d["p"]))
                            t_qty(float(d["q"]))
                            t_side(-1 if d["m"] else 1)
                            t_id(d["t"])
                            continue
                        if kind == "depth":
                            r.diff(
                                d["U"],
                                d["u"],
                                d.get("pu"),
                                epoch_to_ns(t),
                                local,
                                (d.get("b", ()), d.get("a", ())),
                            )
                            continue
                r.message(msg, local)  # aggTrade, snapshots, anything unusual
                symbol = r.symbol
    finally:
        if was_enabled:
            gc.enable()
    return r.finish()


ROUTES = {"msgspec": read_msgspec, "orjson": read_orjson}
