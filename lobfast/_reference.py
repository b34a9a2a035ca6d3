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
TS_MAX = 9214646400000000000  # 2262-01-01 in ns: times read from files lie in 1970..2262


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
        self.snapshot = {
            "L": d["lastUpdateId"],
            "ts": None if t is None else epoch_to_ns(t),
            "local": local,
            "rows": rows,
        }
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
        types = {
            "ts": "i8",
            "local_ts": "i8",
            "side": "i1",
            "update_id": "i8",
            "flags": "u1",
            "trade_id": "i8",
        }
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
        depth["side"].tolist(),
        depth["price"].tolist(),
        depth["qty"].tolist(),
        depth["update_id"].tolist(),
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


# --------------------------------------------------------------------------- CSV archives
# References for the Tardis.dev and data.binance.vision readers: the csv module splits the
# lines, Decimal parses the numbers, and every rule of csrc/core/formats/tardis.c and vision.c is
# restated row by row.  Lines are decoded as latin-1 so any byte string reads, as in C.

import csv as _csv  # noqa: E402
import re as _re  # noqa: E402

_DECIMAL_RE = _re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\Z")
_INT_RE = _re.compile(r"-?\d+\Z")
_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


class RowError(ValueError):
    """A line the C reader refuses (LOB_E_FORMAT / LOB_E_RANGE)."""


def csv_lines(path) -> list[str]:
    """A file's lines as the C reader splits them: at '\\n', one trailing '\\r' dropped, a
    last line without '\\n' kept; gzip recognised by its magic bytes."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return [(ln[:-1] if ln.endswith(b"\r") else ln).decode("latin-1") for ln in lines]


def csv_cells(line: str) -> list[str]:
    """Cells of an unquoted CSV line (the csv module with quoting off, as C splits at ',')."""
    # the csv module ends a record at a lone '\r'; C keeps it inside the cell
    hidden = line.replace("\r", "\ue000")
    cells = next(_csv.reader([hidden], delimiter=",", quoting=_csv.QUOTE_NONE, escapechar=None))
    return [c.replace("\ue000", "\r") for c in cells]


def csv_decimal(text: str) -> float:
    """A decimal cell as lob_parse_decimal reads it: correctly rounded, finite."""
    if not _DECIMAL_RE.match(text):
        raise RowError(f"expected a decimal number, found {text!r}")
    mant = _re.split("[eE]", text)[0].lstrip("+-").replace(".", "").lstrip("0")
    if len(mant) > 40:
        raise RowError(f"too many digits: {text!r}")
    v = float(Decimal(text))
    if math.isinf(v) or (v == 0 and Decimal(text) != 0):
        raise RowError(f"out of float64 range (overflow or underflow to 0): {text!r}")
    return v


def csv_value(text: str, rule: str) -> float:
    """A decimal cell that must be > 0 (rule ">") or >= 0 (rule ">=")."""
    v = csv_decimal(text)
    if not (v > 0 if rule == ">" else v >= 0):
        raise RowError(f"{text!r} is not {rule} 0")
    return v


def csv_int(text: str) -> int:
    """An integer cell as lob_parse_int64 reads it."""
    if not _INT_RE.match(text):
        raise RowError(f"expected an integer, found {text!r}")
    v = int(text)
    if not -(2**63) <= v < 2**63:
        raise RowError(f"out of int64 range: {text!r}")
    return v


def csv_time(text: str) -> int:
    """A time cell in s, ms or us (by magnitude) to ns; outside 1970..2262 refused."""
    t = csv_int(text)
    ns = epoch_to_ns(t)
    if t < 0 or ns > TS_MAX:
        raise RowError(f"time out of range: {text!r}")
    return ns


def csv_bool(text: str) -> int | None:
    """True/False in any ASCII case, or None."""
    low = text.translate(_LOWER)
    return {"true": 1, "false": 0}.get(low)


def _strip_bom(line: str) -> str:
    return line[3:] if line.startswith("\xef\xbb\xbf") else line


class _CsvReference:
    """A line of a CSV reference: a bad row raises, or with on_error="skip" is counted."""

    skip: bool
    counts: dict[str, int]

    def line(self, line: str) -> None:
        try:
            self._line(line)
        except RowError:
            if not self.skip:
                raise
            self.counts["bad_lines"] += 1


class TardisReference(_CsvReference):
    """Tardis.dev CSV lines -> the columns lobfast.read_tardis returns."""

    COMMON = ["exchange", "symbol", "timestamp", "local_timestamp"]
    FIXED = {
        ("is_snapshot", "side", "price", "amount"): "incremental_book_L2",
        ("id", "side", "price", "amount"): "trades",
        ("ask_amount", "ask_price", "bid_price", "bid_amount"): "quotes",
    }

    def __init__(self, symbol=None, start=None, end=None, on_error="raise") -> None:
        self.symbol = symbol.translate(_UPPER) if symbol else None
        self.start = -(2**63) if start is None else start
        self.end = 2**63 - 1 if end is None else end
        self.skip = on_error == "skip"
        self.kind: str | None = None
        self.levels = 0
        self.rejected = False
        self.prev_snapshot = False
        self.synced = False
        self.out: list[tuple] = []
        self.symbols: list[str] = []
        self.counts = dict.fromkeys(
            (
                "headers",
                "rows",
                "other_symbol_rows",
                "outside_window",
                "skipped_before_snapshot",
                "snapshots",
                "non_integer_trade_ids",
                "blank_lines",
                "bad_lines",
            ),
            0,
        )

    def _header(self, cells: list[str]) -> None:
        self.rejected = True
        if cells[:4] != self.COMMON:
            raise RowError(f"header does not start with {self.COMMON}")
        kind, levels = self.FIXED.get(tuple(cells[4:])), 0
        if kind is None and len(cells) > 4 and cells[4] == "asks[0].price":
            if (len(cells) - 4) % 4 or len(cells) > 4 + 4 * 1000:
                raise RowError("bad book_snapshot header width")
            levels = (len(cells) - 4) // 4
            names = [
                f"{s}[{i}].{f}"
                for i in range(levels)
                for s, f in (("asks", "price"), ("asks", "amount"), ("bids", "price"), ("bids", "amount"))
            ]
            if cells[4:] != names:
                raise RowError("bad book_snapshot header")
            kind = f"book_snapshot_{levels}"
        if kind is None:
            raise RowError("header not recognised")
        if self.kind is not None and self.kind != kind:
            raise RowError(f"header for {kind} after {self.kind}")
        self.kind, self.levels, self.rejected = kind, levels, False
        self.counts["headers"] += 1

    @staticmethod
    def _time(text: str) -> int:
        us = csv_int(text)
        if not 0 <= us <= TS_MAX // 1000:
            raise RowError("time out of range")
        return us * 1000

    def _line(self, line: str) -> None:
        if not line:
            self.counts["blank_lines"] += 1
            return
        line = _strip_bom(line)
        cells = csv_cells(line)
        if cells[0] == "exchange":
            self._header(cells)
            return
        if self.kind is None or self.rejected:
            raise RowError("row before a valid header")
        if len(cells) != 4 + (4 * self.levels if self.levels else 4):
            raise RowError("wrong column count")
        exchange, sym = cells[0], cells[1]
        for name in (exchange, sym):
            if not 1 <= len(name) < 32 or any(not "!" <= ch <= "~" for ch in name):
                raise RowError("an exchange or symbol is 1 to 31 printable ASCII characters")
        local = self._time(cells[3])
        ts = self._time(cells[2]) if cells[2] else local
        kind = self.kind
        if kind == "incremental_book_L2":
            snap = csv_bool(cells[4])
            side = {"bid": 1, "ask": -1}.get(cells[5])
            if snap is None or side is None:
                raise RowError("bad is_snapshot or side")
            px, qty = csv_value(cells[6], ">"), csv_value(cells[7], ">=")
            row = (snap, side, px, qty)
        elif kind == "trades":
            side = {"buy": 1, "sell": -1, "unknown": 0, "": 0}.get(cells[5])
            if side is None:
                raise RowError("bad side")
            px, qty = csv_value(cells[6], ">"), csv_value(cells[7], ">")
            try:
                tid, nonint = csv_int(cells[4]), 0
            except RowError:
                tid, nonint = -1, 1  # text ids (some exchanges) become -1
                if any(ch < " " or ch == "\x7f" for ch in cells[4]):
                    raise RowError("a control byte in the id") from None
            row = (px, qty, side, tid, nonint)
        elif kind == "quotes":
            rules = (">=", ">", ">", ">=")
            ask_qty, ask_px, bid_px, bid_qty = (
                csv_value(c, r) if c else math.nan for c, r in zip(cells[4:8], rules, strict=True)
            )
            row = (bid_px, bid_qty, ask_px, ask_qty)
        else:
            levels = [(csv_value(c, ">" if i % 2 == 0 else ">=") if c else math.nan) for i, c in enumerate(cells[4:])]
            asks_px, asks_sz = levels[0::4], [0.0 if math.isnan(x) else x for x in levels[1::4]]
            bids_px, bids_sz = levels[2::4], [0.0 if math.isnan(x) else x for x in levels[3::4]]
            row = (bids_px, bids_sz, asks_px, asks_sz)
        self.counts["rows"] += 1
        up = sym.translate(_UPPER)
        if self.symbol is None:
            self.symbol = up
        if up != self.symbol:
            self.counts["other_symbol_rows"] += 1
            if up not in self.symbols:
                self.symbols.append(up)
            return
        del exchange
        inside = self.start <= local < self.end
        if kind == "incremental_book_L2":
            snap = row[0]
            run_start = snap and not self.prev_snapshot
            self.prev_snapshot = bool(snap)
            if not inside:
                self.counts["outside_window"] += 1
                return
            if not self.synced:
                if not run_start:
                    self.counts["skipped_before_snapshot"] += 1
                    return
                self.synced = True
            self.counts["snapshots"] += bool(run_start)
            flags = (SNAPSHOT | (RESET if run_start else 0)) if snap else 0
            self.out.append((ts, local, row[1], row[2], row[3], -1, flags))
            return
        if kind == "trades":
            self.counts["non_integer_trade_ids"] += row[4]
        if not inside:
            self.counts["outside_window"] += 1
            return
        if kind == "trades":
            self.out.append((ts, local, row[0], row[1], row[2], row[3]))
        elif kind == "quotes":
            self.out.append((ts, local, -1, *row))
        else:
            self.out.append((ts, -1, *row, True))

    def finish(self) -> tuple[str | None, dict[str, np.ndarray], dict[str, int]]:
        kind, rows = self.kind, self.out
        if kind == "incremental_book_L2":
            # END_OF_MESSAGE: last row of each run sharing local_timestamp
            rows = [
                (*r[:6], r[6] | (END_OF_MESSAGE if i + 1 == len(rows) or rows[i + 1][1] != r[1] else 0))
                for i, r in enumerate(rows)
            ]
            names = ("ts", "local_ts", "side", "price", "qty", "update_id", "flags")
            types = "i8 i8 i1 f8 f8 i8 u1"
        elif kind == "trades":
            names, types = ("ts", "local_ts", "price", "qty", "side", "trade_id"), "i8 i8 f8 f8 i1 i8"
        elif kind == "quotes":
            names = ("ts", "local_ts", "update_id", "bid_px", "bid_qty", "ask_px", "ask_qty")
            types = "i8 i8 i8 f8 f8 f8 f8"
        elif kind is not None:
            names = ("ts", "update_id", "bid_px", "bid_sz", "ask_px", "ask_sz", "valid")
            types = "i8 i8 f8 f8 f8 f8 ?"
        else:
            return None, {}, dict(self.counts)
        cols = {}
        for j, (name, t) in enumerate(zip(names, types.split(), strict=True)):
            a = np.array([r[j] for r in rows], dtype=t)
            if kind.startswith("book_snapshot") and name in ("bid_px", "bid_sz", "ask_px", "ask_sz"):
                a = a.reshape(len(rows), self.levels)
            cols[name] = a
        counts = dict(self.counts, symbols=[self.symbol, *self.symbols] if self.symbol else [])
        return kind, cols, counts


def _feed(ref, paths) -> None:
    """Every line of every file to `ref`; a RowError gets the file and 1-based line."""
    for p in [paths] if isinstance(paths, str) or hasattr(paths, "__fspath__") else paths:
        for i, line in enumerate(csv_lines(p), 1):
            try:
                ref.line(line)
            except RowError as e:
                e.path, e.line = p, i
                raise


def read_tardis(paths, symbol=None, start=None, end=None, on_error="raise"):
    """Reference of lobfast.read_tardis: (data type, {column: array}, counters)."""
    ref = TardisReference(symbol, start, end, on_error)
    _feed(ref, paths)
    return ref.finish()


class VisionReference(_CsvReference):
    """data.binance.vision CSV lines -> the columns lobfast.read_binance_vision returns."""

    # name -> (data type, cells, normalised header, kind)
    LAYOUTS = {
        "spot trades": ("trades", 7, "id,price,qty,quoteqty,time,isbuyermaker,isbestmatch", "trades"),
        "spot aggTrades": (
            "aggTrades",
            8,
            "aggtradeid,price,quantity,firsttradeid,lasttradeid,transacttime,isbuyermaker,isbestmatch",
            "agg",
        ),
        "UM trades": ("trades", 6, "id,price,qty,quoteqty,time,isbuyermaker", "trades"),
        "UM aggTrades": (
            "aggTrades",
            7,
            "aggtradeid,price,quantity,firsttradeid,lasttradeid,transacttime,isbuyermaker",
            "agg",
        ),
        "UM bookTicker": (
            "bookTicker",
            7,
            "updateid,bestbidprice,bestbidqty,bestaskprice,bestaskqty,transactiontime,eventtime",
            "book",
        ),
    }

    def __init__(self, on_error="raise") -> None:
        self.skip = on_error == "skip"
        self.layout: str | None = None
        self.rejected = False
        self.trades: list[tuple] = []
        self.quotes: list[tuple] = []
        self.counts = dict.fromkeys(("headers", "rows", "blank_lines", "bad_lines"), 0)

    def _line(self, line: str) -> None:
        if not line:
            self.counts["blank_lines"] += 1
            return
        line = _strip_bom(line)
        if any(c == "\0" or (c < " " and c != "\t") for c in line[:64]):
            raise RowError("binary data")
        if line[0].isascii() and line[0].isalpha():
            norm = line.translate(_LOWER).replace("_", "").replace(" ", "")[:159]
            names = [n for n, lay in self.LAYOUTS.items() if lay[2] == norm]
            # a known header of another layout refuses the rows after it; an unknown one
            # does so only before any layout is known (later it is one damaged line)
            self.rejected = self.rejected or bool(names) or self.layout is None
            if not names:
                raise RowError("header not recognised")
            if self.layout is not None and self.layout != names[0]:
                raise RowError("header of another layout")
            self.layout, self.rejected = names[0], False
            self.counts["headers"] += 1
            return
        if self.rejected:
            raise RowError("row after a refused header")
        cells = csv_cells(line)
        layout = self.layout
        if layout is None:
            n = len(cells)
            if n == 6:
                layout = "UM trades"
            elif n == 8:
                layout = "spot aggTrades"
            elif n == 7:
                if csv_bool(cells[5]) is not None:
                    layout = "spot trades"
                else:
                    layout = "UM aggTrades" if csv_bool(cells[6]) is not None else "UM bookTicker"
            else:
                raise RowError("expected 6, 7 or 8 columns")
        _, ncol, _, kind = self.LAYOUTS[layout]
        if len(cells) != ncol:
            raise RowError("wrong column count")
        if kind == "book":
            uid = csv_int(cells[0])
            bid_px, bid_qty, ask_px, ask_qty = (csv_value(c, r) for c, r in zip(cells[1:5], (">", ">=") * 2))
            tt, et = csv_time(cells[5]), csv_time(cells[6])
            self.quotes.append((tt, et, uid, bid_px, bid_qty, ask_px, ask_qty))
        else:
            tid, px, qty = csv_int(cells[0]), csv_value(cells[1], ">"), csv_value(cells[2], ">")
            if kind == "agg":
                csv_int(cells[3]), csv_int(cells[4])
                t = 5
            else:
                csv_value(cells[3], ">=")
                t = 4
            ts = csv_time(cells[t])
            flags = [csv_bool(c) for c in cells[t + 1 :]]
            if None in flags:
                raise RowError("expected True or False")
            self.trades.append((ts, ts, px, qty, -1 if flags[0] else 1, tid))
        self.layout = layout
        self.counts["rows"] += 1

    def finish(self) -> tuple[str | None, dict[str, np.ndarray], dict[str, int]]:
        if self.layout is None:
            return None, {}, dict(self.counts)
        data_type = self.LAYOUTS[self.layout][0]
        if data_type == "bookTicker":
            # the archive's rows may be out of order: by (event_time, update_id), stable
            rows = sorted(self.quotes, key=lambda r: (r[1], r[2]))
            names = ("ts", "local_ts", "update_id", "bid_px", "bid_qty", "ask_px", "ask_qty")
            types = ("i8", "i8", "i8", "f8", "f8", "f8", "f8")
        else:
            rows = self.trades
            names = ("ts", "local_ts", "price", "qty", "side", "trade_id")
            types = ("i8", "i8", "f8", "f8", "i1", "i8")
        pairs = enumerate(zip(names, types, strict=True))
        cols = {n: np.array([r[j] for r in rows], dtype=t) for j, (n, t) in pairs}
        return data_type, cols, dict(self.counts, market="spot" if self.layout.startswith("spot") else "usdm")


def read_binance_vision(paths, on_error="raise"):
    """Reference of lobfast.read_binance_vision: (data type, {column: array}, counters)."""
    ref = VisionReference(on_error)
    _feed(ref, paths)
    return ref.finish()


# --------------------------------------------------------------------------- the order book


def reference_book(
    depth: dict[str, np.ndarray],
    levels: int = 10,
    every: int | None = None,
    crossed: str = "flag",
    prune_orphans: bool = False,
    max_stale: int = 0,
) -> dict[str, np.ndarray]:
    """The rows lobfast.reconstruct returns, from a dict book sorted on every output row.

    Rules (the C book's): GAP -> unknown until RESET, and grid rows after the last message
    before a GAP are invalid; a row is valid only after a whole message, with both sides
    non-empty and not crossed; RESET clears both sides; snapshot rows
    set each side's orphan bound (its deepest level); later levels deeper than the bound are
    orphans (skipped when pruned); END_OF_MESSAGE completes a message (crossed check, then a
    row per message, or grid rows at multiples of `every` before the next message).
    """
    book = {1: {}, -1: {}}
    bound: dict[int, float | None] = {1: None, -1: None}
    changed = {1: 0, -1: 0}
    known = in_snapshot = False
    msg = 0
    last_msg_ts = 0
    last_uid = -1
    at_boundary = True
    next_grid = None
    out: dict[str, list] = {k: [] for k in ("ts", "update_id", "bid_px", "bid_sz", "ask_px", "ask_sz", "valid")}

    def deeper(side, px, b):
        return px < b if side > 0 else px > b

    def is_crossed():
        return bool(book[1]) and bool(book[-1]) and max(book[1]) >= min(book[-1])

    def emit(t, gap_next=False):
        bids = sorted(book[1].items(), reverse=True)[:levels]
        asks = sorted(book[-1].items())[:levels]
        pad = [(math.nan, 0.0)] * levels
        bids, asks = (bids + pad)[:levels], (asks + pad)[:levels]
        stale = max_stale > 0 and t - last_msg_ts > max_stale
        out["ts"].append(t)
        out["update_id"].append(last_uid)
        out["bid_px"].append([p for p, _ in bids])
        out["bid_sz"].append([q for _, q in bids])
        out["ask_px"].append([p for p, _ in asks])
        out["ask_sz"].append([q for _, q in asks])
        before_gap = gap_next and t > last_msg_ts
        consistent = known and at_boundary and bool(book[1]) and bool(book[-1]) and not is_crossed()
        out["valid"].append(consistent and not stale and not before_gap)

    # a message takes effect at its last row's time: the ts of the next END_OF_MESSAGE row
    all_ts, all_fl = depth["ts"].tolist(), depth["flags"].tolist()
    msg_end = list(all_ts)
    gap_in_msg = [bool(f & GAP) for f in all_fl]  # a GAP row from here to the message's end
    for i in range(len(all_ts) - 2, -1, -1):
        if not all_fl[i] & END_OF_MESSAGE:
            msg_end[i] = msg_end[i + 1]
            gap_in_msg[i] = gap_in_msg[i] or gap_in_msg[i + 1]
    cols = zip(*(depth[k].tolist() for k in ("ts", "side", "price", "qty", "update_id", "flags")))
    last_ts = None
    for row, (ts, side, px, qty, uid, fl) in enumerate(cols):
        if every:
            if next_grid is None:
                next_grid = -(-ts // every) * every
            if at_boundary:
                while next_grid < msg_end[row]:
                    emit(next_grid, gap_in_msg[row])
                    next_grid += every
        last_ts = ts
        if fl & GAP:
            known = False
        if fl & RESET:
            book = {1: {}, -1: {}}
            bound = {1: None, -1: None}
            known = in_snapshot = True
        if side:
            skip = False
            if fl & SNAPSHOT and in_snapshot:
                if bound[side] is None or deeper(side, px, bound[side]):
                    bound[side] = px
            elif bound[side] is not None and deeper(side, px, bound[side]):
                skip = prune_orphans
            if not skip:
                levels_of = book[side]
                if qty == 0:
                    if px in levels_of:
                        del levels_of[px]
                        changed[side] = msg + 1
                else:
                    levels_of[px] = qty
                    changed[side] = msg + 1
        at_boundary = bool(fl & END_OF_MESSAGE)
        if at_boundary:
            msg += 1
            last_msg_ts, last_uid = ts, uid
            in_snapshot = False
            if crossed == "repair":
                stale_side = 1 if changed[1] < changed[-1] else -1
                while is_crossed():
                    lv = book[stale_side]
                    del lv[max(lv) if stale_side > 0 else min(lv)]
            if not every:
                emit(ts)
    if every and last_ts is not None:
        while next_grid <= last_ts:
            emit(next_grid)
            next_grid += every
    return {
        "ts": np.array(out["ts"], np.int64),
        "update_id": np.array(out["update_id"], np.int64),
        **{k: np.array(out[k], np.float64).reshape(-1, levels) for k in ("bid_px", "bid_sz", "ask_px", "ask_sz")},
        "valid": np.array(out["valid"], bool),
    }
