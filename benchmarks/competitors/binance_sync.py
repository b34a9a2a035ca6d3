"""Binance local-order-book sync rules in plain Python, shared by the baselines (a) and (b).

The same rules as ``lobfast.read_binance`` (csrc/core/formats/binance.c) and the test reference
(lobfast/_reference.py): diffs are buffered until a snapshot bridges them, stale diffs are
dropped, continuity is checked (spot ``U == prev u + 1``, USD-M ``pu == prev u``), a break
emits a GAP marker row and waits for the next snapshot.

What a row looks like is left to a subclass (the "sink"): the plain loop appends to lists,
the fast route records one segment per message and expands them with NumPy at the end.
A buffered message is a tuple ``(U, u, pu, ts, local, payload)``; ``payload`` is whatever
the sink's ``emit_*`` methods understand (its price levels).
"""

from __future__ import annotations

SNAPSHOT, RESET, GAP, END_OF_MESSAGE = 1, 2, 4, 8


def epoch_to_ns(t: int) -> int:
    """Seconds, ms, us or ns since the epoch, told apart by magnitude, to ns."""
    a = abs(t)
    if a < 10**10:
        return t * 1_000_000_000
    if a < 10**13:
        return t * 1_000_000
    if a < 10**16:
        return t * 1_000
    return t


class BinanceSync:
    """Depth sync state machine; subclasses provide ``emit_diff``, ``emit_snapshot``,
    ``emit_marker``."""

    def __init__(self) -> None:
        self.symbol: str | None = None
        self.market: str | None = None  # "spot" / "usdm", from the first diff
        self.synced = False
        self.last_u = 0
        self.last_ts = 0
        self.pending: list[tuple] = []  # buffered diffs (U, u, pu, ts, local, payload)
        self.snapshot: tuple | None = None  # (L, ts or None, local, payload)
        self.gaps = self.resets = self.dropped = self.stale = 0

    # -- sink interface ------------------------------------------------------------------
    def emit_diff(self, ts: int, local: int, u: int, payload) -> None:
        raise NotImplementedError

    def emit_snapshot(self, ts: int, local: int, last_update_id: int, payload) -> None:
        raise NotImplementedError

    def emit_marker(self, ts: int, local: int, update_id: int, flags: int) -> None:
        raise NotImplementedError

    # -- the rules -----------------------------------------------------------------------
    def _check(self, U: int, u: int, pu: int) -> int:
        """0 ok, 1 stale, 2 gap."""
        if u <= self.last_u:
            return 1
        if self.market == "usdm":
            return 2 if pu != self.last_u else 0
        return 2 if U > self.last_u + 1 else 0

    def diff(self, U: int, u: int, pu: int | None, ts: int, local: int, payload) -> None:
        if self.market is None:
            self.market = "spot" if pu is None else "usdm"
        if pu is None:
            pu = 0
        if self.synced:
            state = self._check(U, u, pu)
            if state == 0:
                self.emit_diff(ts, local, u, payload)
                self.last_u, self.last_ts = u, ts
            elif state == 1:
                self.stale += 1
            else:
                self.gaps += 1
                self.synced = False
                self.pending = [(U, u, pu, ts, local, payload)]
                self.emit_marker(ts, local, u, GAP | END_OF_MESSAGE)
            return
        self.pending.append((U, u, pu, ts, local, payload))
        if self.snapshot is not None:
            self._try_sync()

    def snap(self, last_update_id: int, ts: int | None, local: int, payload) -> None:
        if self.synced:
            return  # the book is continuous: the snapshot adds nothing
        if self.market is None and ts is not None:
            self.market = "usdm"  # only USD-M snapshots carry E/T
        self.snapshot = (last_update_id, ts, local, payload)
        self._try_sync()

    def _try_sync(self) -> None:
        L, snap_ts, snap_local, payload = self.snapshot
        usdm = self.market == "usdm"
        pending = self.pending
        i = 0
        while i < len(pending) and (pending[i][1] < L if usdm else pending[i][1] <= L):
            i += 1
        if i:
            self.dropped += i
            pending = self.pending = pending[i:]
        if not pending:
            return  # the next diff decides
        U, u, pu, ts, _, _ = pending[0]
        if not ((U <= L <= u or pu == L) if usdm else U <= L + 1):
            self.snapshot = None  # older than the diffs held: wait for a newer one
            return
        if snap_ts is not None and snap_ts < ts:
            ts = snap_ts
        ts = max(ts, self.last_ts)
        self.emit_snapshot(ts, snap_local, L, payload)
        self.resets += 1
        self.snapshot = None
        self.synced, self.last_u, self.last_ts = True, L, ts
        self.pending = []
        for k, (U, u, pu, ts, local, payload) in enumerate(pending):
            state = 0 if k == 0 else self._check(U, u, pu)
            if state == 2:
                self.gaps += 1
                self.emit_marker(ts, local, u, GAP | END_OF_MESSAGE)
                self.synced = False
                self.pending = pending[k:]
                return
            if state == 0:
                self.emit_diff(ts, local, u, payload)
                self.last_u, self.last_ts = u, ts
            else:
                self.stale += 1

    def end(self) -> None:
        if not self.synced:
            self.dropped += len(self.pending)
            self.pending = []

    # -- one decoded message (a dict, as json.loads / orjson.loads give it) ----------------
    def levels(self, bids: list, asks: list):
        """The sink's depth payload for a message's ``[[price, qty, ...], ...]`` lists."""
        raise NotImplementedError

    def message(self, msg: dict, local: int) -> None:
        """Route one message by its fields, like the C reader and the test reference.

        The sink has ``trades``, ``agg_trades`` and ``quotes``: dicts of column name -> a
        list or array.array (anything with ``append``)."""
        if "lobfast" in msg:
            return  # collector event
        stream = msg.get("stream", "")
        d = msg["data"] if "data" in msg else msg
        e = d.get("e")
        if "@depth" in stream and stream.split("@depth", 1)[1][:1].isdigit():
            return  # partial book depth
        snapshot = e is None and "lastUpdateId" in d and "bids" in d
        quote = e == "bookTicker" or (e is None and "u" in d and isinstance(d.get("b"), str))
        if not (snapshot or quote or e in ("depthUpdate", "trade", "aggTrade")):
            return
        if not self.symbol_ok(d.get("s") or (stream.split("@", 1)[0].upper() if stream else None)):
            return
        if e == "depthUpdate":
            ts = epoch_to_ns(d["T"] if "T" in d else d["E"])
            self.diff(d["U"], d["u"], d.get("pu"), ts, local, self.levels(d.get("b", ()), d.get("a", ())))
        elif snapshot:
            if self.synced:
                return
            t = d.get("T", d.get("E"))
            payload = self.levels(d["bids"], d["asks"])
            self.snap(d["lastUpdateId"], None if t is None else epoch_to_ns(t), local, payload)
        elif quote:
            t = d.get("T", d.get("E"))
            q = self.quotes
            q["ts"].append(local if t is None else epoch_to_ns(t))
            q["local_ts"].append(local)
            q["update_id"].append(d["u"])
            q["bid_px"].append(float(d["b"]))
            q["bid_qty"].append(float(d["B"]))
            q["ask_px"].append(float(d["a"]))
            q["ask_qty"].append(float(d["A"]))
        else:
            if d.get("X", "MARKET") != "MARKET":
                return  # insurance-fund / ADL fills are not market trades
            out = self.trades if e == "trade" else self.agg_trades
            out["ts"].append(epoch_to_ns(d.get("T", d.get("E"))))
            out["local_ts"].append(local)
            out["price"].append(float(d["p"]))
            out["qty"].append(float(d["q"]))
            out["side"].append(-1 if d["m"] else 1)
            out["trade_id"].append(d["t"] if e == "trade" else d["a"])

    def symbol_ok(self, sym: str | None) -> bool:
        """Adopt the first symbol seen; False for any other."""
        if sym is None:
            return True
        if self.symbol is None:
            self.symbol = sym
            return True
        return sym == self.symbol
