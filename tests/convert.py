"""Tardis.dev and data.binance.vision CSVs made from the real Binance recordings in tests/data.

There are no Tardis or data.binance.vision samples in the repository, so the tests rebuild
both formats from real market data, keeping the exchange's own decimal strings (trailing
zeros and all).  Each function writes the file and returns what a correct reader must give
back, as plain lists/arrays, so the tests can check the readers against Binance itself.

Depth needs the messages that lobfast.read_binance kept (after its sync rules); their
levels are taken from the raw JSON by update id so prices and sizes keep their text.
"""

from __future__ import annotations

import functools
import gzip
import itertools
import json
import random
from decimal import Decimal
from pathlib import Path

import numpy as np

import lobfast

BINANCE = Path(__file__).parent / "data" / "binance"
SPOT_BTC = BINANCE / "spot_btcusdt_20240808.gz"
SPOT_ETH = BINANCE / "spot_ethusdt_20240808.gz"
USDM_BTC = BINANCE / "usdm_btcusdt_20240808.gz"

TARDIS_HEADERS = {
    "depth": "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount",
    "trades": "exchange,symbol,timestamp,local_timestamp,id,side,price,amount",
    "quotes": "exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount",
}
EIGHT = Decimal("0.00000001")


def book_snapshot_header(levels: int) -> str:
    cols = ["exchange", "symbol", "timestamp", "local_timestamp"]
    for i in range(levels):
        cols += [f"asks[{i}].price", f"asks[{i}].amount", f"bids[{i}].price", f"bids[{i}].amount"]
    return ",".join(cols)


LINES = 20_000  # lines of each recording used: enough for every case, fast to parse


@functools.cache
def messages(path: Path) -> list[tuple[int, dict]]:
    """(receive ns, message body) of the first LINES lines of a recording (parsed once)."""
    out = []
    with gzip.open(path, "rt") as f:
        for line in itertools.islice(f, LINES):
            stamp, _, body = line.partition(" ")
            msg = json.loads(body)
            out.append((int(stamp), msg.get("data", msg)))
    return out


@functools.cache
def binance(path: Path) -> lobfast.MarketData:
    """lobfast.read_binance of a whole recording (read once per session; do not modify)."""
    return lobfast.read_binance(path)


def write_lines(path: Path, lines: list[str]) -> Path:
    """Write CSV lines; gzip when the name ends in .gz (as Tardis ships them)."""
    data = "".join(line + "\n" for line in lines).encode()
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
    return path


# --------------------------------------------------------------------------- Tardis


def _levels(d: dict, bids: str, asks: str) -> list[tuple[int, str, str]]:
    return [(1, p, q) for p, q, *_ in d[bids]] + [(-1, p, q) for p, q, *_ in d[asks]]


def tardis_depth(
    path: Path,
    symbol: str,
    *,
    max_messages: int,
    resnapshot_after: int | None = None,
    exchange: str = "binance",
):
    """incremental_book_L2 rows for one recording.

    Rows are, in order: the raw diffs read_binance dropped while waiting for the snapshot
    (Tardis files may start with such rows: a reader must skip them), then every depth row
    read_binance emitted, message by message (the first `max_messages`), with the raw
    strings.  `resnapshot_after`
    inserts, after that many messages, a snapshot of the book as it stands (as Tardis
    writes after a reconnect), built from the same real levels.

    Returns (CSV lines without header, expected columns of the rows a reader keeps, number of
    leading rows to skip, read_binance's depth rows that were used).
    """
    d = binance(path).depth
    assert binance(path).symbol == symbol
    diffs: dict[int, list] = {}
    snaps: dict[int, list] = {}
    early: list[tuple[int, dict]] = []  # diffs received before the first snapshot
    for local, m in messages(path):
        if "lastUpdateId" in m and "bids" in m:
            snaps[m["lastUpdateId"]] = _levels(m, "bids", "asks")
        elif m.get("e") == "depthUpdate":
            diffs[m["u"]] = _levels(m, "b", "a")
            if not snaps:
                early.append((local, m))
    kept = set(d.update_id[(d.flags & lobfast.Flags.SNAPSHOT) == 0].tolist())
    lines: list[str] = []
    exp = {k: [] for k in ("ts", "local_ts", "side", "price", "qty", "flags")}

    def row(ts_us, local_us, snap, side, px, qty, flags=None):
        side_s = "bid" if side > 0 else "ask"
        lines.append(f"{exchange},{symbol},{ts_us},{local_us},{'true' if snap else 'false'},{side_s},{px},{qty}")
        if flags is not None:
            for k, v in zip(exp, (ts_us * 1000, local_us * 1000, side, float(px), float(qty), flags), strict=True):
                exp[k].append(v)

    lead = 0
    for local, m in early:
        if m["u"] not in kept:
            for side, px, qty in _levels(m, "b", "a"):
                row(m["E"] * 1000, local // 1000, False, side, px, qty)
                lead += 1
    ends = np.flatnonzero(d.flags & lobfast.Flags.END_OF_MESSAGE)[:max_messages]
    start = 0
    book: dict[tuple[int, float], tuple[str, str]] = {}
    for k, end in enumerate(ends):
        sl = slice(start, end + 1)
        uid, fl0 = int(d.update_id[start]), int(d.flags[start])
        raw = snaps[uid] if fl0 & lobfast.Flags.SNAPSHOT else diffs[uid]
        assert [(s, float(p), float(q)) for s, p, q in raw] == list(
            zip(d.side[sl].tolist(), d.price[sl].tolist(), d.qty[sl].tolist(), strict=True)
        ), "read_binance's rows differ from the raw message"
        ts_us, local_us = int(d.ts[start]) // 1000, int(d.local_ts[start]) // 1000
        if fl0 & lobfast.Flags.RESET:
            book.clear()
        for i, (side, px, qty) in enumerate(raw):
            flags = int(d.flags[start + i])
            row(ts_us, local_us, bool(fl0 & lobfast.Flags.SNAPSHOT), side, px, qty, flags)
            if float(qty) == 0:
                book.pop((side, float(px)), None)
            else:
                book[(side, float(px))] = (px, qty)
        start = end + 1
        if resnapshot_after is not None and k + 1 == resnapshot_after:
            nxt_local = int(d.local_ts[start]) // 1000
            assert nxt_local - local_us >= 2, "pick a message followed by a gap"
            snap_local = (local_us + nxt_local) // 2
            levels = sorted(book.items(), key=lambda kv: (-kv[0][0], -kv[0][0] * kv[0][1]))
            for i, ((side, _), (px, qty)) in enumerate(levels):
                fl = lobfast.Flags.SNAPSHOT | (lobfast.Flags.RESET if i == 0 else 0)
                fl |= lobfast.Flags.END_OF_MESSAGE if i == len(levels) - 1 else 0
                row(ts_us, snap_local, True, side, px, qty, int(fl))
    return lines, {k: np.array(v) for k, v in exp.items()}, lead, d[: ends[-1] + 1]


def tardis_trades(path: Path, symbol: str, exchange: str = "binance"):
    """Tardis trades rows of a recording; expected = read_binance's trades (local_ts in us)."""
    lines = []
    for local, m in messages(path):
        if m.get("e") == "trade":
            side = "sell" if m["m"] else "buy"
            lines.append(f"{exchange},{symbol},{m['T'] * 1000},{local // 1000},{m['t']},{side},{m['p']},{m['q']}")
    return lines


def tardis_book_ticker(path: Path, symbol: str, exchange: str = "binance"):
    """Tardis book_ticker rows; spot bookTicker has no exchange time, so (as Tardis does)
    timestamp = local_timestamp.  Returns (lines, expected quote columns)."""
    lines = []
    exp = {k: [] for k in ("ts", "local_ts", "bid_px", "bid_qty", "ask_px", "ask_qty")}
    for local, m in messages(path):
        if "u" in m and isinstance(m.get("b"), str) and m.get("e") in (None, "bookTicker"):
            local_us = local // 1000
            ts_us = m["T"] * 1000 if "T" in m else local_us
            lines.append(f"{exchange},{symbol},{ts_us},{local_us},{m['A']},{m['a']},{m['b']},{m['B']}")
            for k, v in zip(exp, (ts_us * 1000, local_us * 1000, m["b"], m["B"], m["a"], m["A"]), strict=True):
                exp[k].append(float(v) if isinstance(v, str) else v)
    return lines, {k: np.array(v) for k, v in exp.items()}


def tardis_book_snapshots(depth_lines: list[str], levels: int, max_messages: int):
    """book_snapshot_N rows from incremental_book_L2 rows (as Tardis derives them): after
    each message (run of equal local_timestamp) of a known book, the top `levels` levels.
    Returns (lines, expected {bid_px, bid_sz, ask_px, ask_sz, ts})."""
    book: dict[int, dict[float, tuple[str, str]]] = {1: {}, -1: {}}
    lines, exp = [], {k: [] for k in ("ts", "bid_px", "bid_sz", "ask_px", "ask_sz")}
    prev_snap, synced = False, False
    cells = [line.split(",") for line in depth_lines]
    for i, c in enumerate(cells):
        snap, side, px, qty = c[4] == "true", 1 if c[5] == "bid" else -1, c[6], c[7]
        if snap and not prev_snap:
            book = {1: {}, -1: {}}
            synced = True
        prev_snap = snap
        if float(qty) == 0:
            book[side].pop(float(px), None)
        else:
            book[side][float(px)] = (px, qty)
        last = i + 1 == len(cells) or cells[i + 1][3] != c[3]
        if not (synced and last):
            continue
        bids = [book[1][p] for p in sorted(book[1], reverse=True)[:levels]]
        asks = [book[-1][p] for p in sorted(book[-1])[:levels]]
        row = [c[0], c[1], c[2], c[3]]
        for k in range(levels):
            a = asks[k] if k < len(asks) else ("", "")
            b = bids[k] if k < len(bids) else ("", "")
            row += [a[0], a[1], b[0], b[1]]
        lines.append(",".join(row))
        exp["ts"].append(int(c[2]) * 1000)
        for name, side_levels in (("bid", bids), ("ask", asks)):
            pad = levels - len(side_levels)
            exp[f"{name}_px"].append([float(p) for p, _ in side_levels] + [np.nan] * pad)
            exp[f"{name}_sz"].append([float(q) for _, q in side_levels] + [0.0] * pad)
        if len(lines) == max_messages:
            break
    return lines, {k: np.array(v) for k, v in exp.items()}


# --------------------------------------------------------------------------- data.binance.vision


def _bool(b: bool, spot: bool) -> str:
    return ("True" if b else "False") if spot else ("true" if b else "false")


def vision_trades(path: Path, *, spot: bool, micros: bool = False):
    """Spot (7 columns) or USD-M (6 columns) trades CSV lines from a recording's trade
    messages; returns (lines, expected Trades columns)."""
    lines = []
    exp = {k: [] for k in ("ts", "price", "qty", "side", "trade_id")}
    for _, m in messages(path):
        if m.get("e") != "trade":
            continue
        t = m["T"] * 1000 if micros else m["T"]
        quote = (Decimal(m["p"]) * Decimal(m["q"])).quantize(EIGHT)
        row = [str(m["t"]), m["p"], m["q"], str(quote), str(t), _bool(m["m"], spot)]
        if spot:
            row.append("True")
        lines.append(",".join(row))
        for k, v in zip(exp, (m["T"] * 10**6, float(m["p"]), float(m["q"]), -1 if m["m"] else 1, m["t"]), strict=True):
            exp[k].append(v)
    return lines, {k: np.array(v) for k, v in exp.items()}


def vision_agg_trades(path: Path, *, spot: bool, micros: bool = False):
    """aggTrades lines built the way Binance aggregates: consecutive fills of one taker
    order at one price and time (same T, price, side) become one row."""
    groups: list[list[dict]] = []
    for _, m in messages(path):
        if m.get("e") != "trade":
            continue
        g = groups[-1] if groups else None
        if g and (g[0]["T"], g[0]["p"], g[0]["m"]) == (m["T"], m["p"], m["m"]) and g[-1]["t"] + 1 == m["t"]:
            g.append(m)
        else:
            groups.append([m])
    lines = []
    exp = {k: [] for k in ("ts", "price", "qty", "side", "trade_id")}
    for agg_id, g in enumerate(groups, start=2_000_000_000):
        m = g[0]
        qty = sum((Decimal(x["q"]) for x in g), Decimal(0)).quantize(EIGHT)
        t = m["T"] * 1000 if micros else m["T"]
        row = [str(agg_id), m["p"], str(qty), str(g[0]["t"]), str(g[-1]["t"]), str(t), _bool(m["m"], spot)]
        if spot:
            row.append("True")
        lines.append(",".join(row))
        for k, v in zip(exp, (m["T"] * 10**6, float(m["p"]), float(qty), -1 if m["m"] else 1, agg_id), strict=True):
            exp[k].append(v)
    return lines, {k: np.array(v) for k, v in exp.items()}


def vision_book_ticker(path: Path, *, shuffle_seed: int | None = None):
    """USD-M bookTicker lines; with `shuffle_seed`, some rows are swapped with a neighbour,
    as the archive's files sometimes are out of order.  Returns (lines, expected Quotes
    columns in (event_time, update_id) order)."""
    rows = []
    for _, m in messages(path):
        if m.get("e") == "bookTicker":
            rows.append((m["u"], m["b"], m["B"], m["a"], m["A"], m["T"], m["E"]))
    lines = [",".join(map(str, r)) for r in rows]
    if shuffle_seed is not None:
        rng = random.Random(shuffle_seed)
        for i in rng.sample(range(len(lines) - 1), len(lines) // 50):
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
    rows.sort(key=lambda r: (r[6], r[0]))
    exp = {
        "ts": np.array([r[5] * 10**6 for r in rows]),
        "local_ts": np.array([r[6] * 10**6 for r in rows]),
        "update_id": np.array([r[0] for r in rows]),
        "bid_px": np.array([float(r[1]) for r in rows]),
        "bid_qty": np.array([float(r[2]) for r in rows]),
        "ask_px": np.array([float(r[3]) for r in rows]),
        "ask_qty": np.array([float(r[4]) for r in rows]),
    }
    return lines, exp


VISION_HEADERS = {
    "um_trades": "id,price,qty,quote_qty,time,is_buyer_maker",
    "um_agg": "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker",
    "um_book": "update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,transaction_time,event_time",
}
