"""Tardis ``incremental_book_L2`` CSV made from the real Binance recordings.

Tardis publishes the same Binance streams as CSV; we rebuild that layout from
``lobfast.read_binance``'s synced depth rows (marker rows dropped): ``exchange, symbol,
timestamp, local_timestamp`` (microseconds), ``is_snapshot``, ``side`` (bid / ask),
``price``, ``amount`` (shortest round-trip decimal text of the float).  Written once into
benchmarks/.data/ and reused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from common import DATA, plain_copy

import lobfast

HEADER = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n"


def tardis_csv(stem: str, exchange: str) -> Path:
    src = plain_copy(stem)
    dst = DATA / f"{stem}.incremental_book_L2.csv"
    if dst.exists() and dst.stat().st_mtime >= src.stat().st_mtime:
        return dst
    md = lobfast.read_binance(str(src))
    d = md.depth
    keep = d.side != 0
    ts = (d.ts[keep] // 1000).tolist()
    local = (d.local_ts[keep] // 1000).tolist()
    snap = ((d.flags[keep] & int(lobfast.Flags.SNAPSHOT)) != 0).tolist()
    side = np.where(d.side[keep] > 0, "bid", "ask").tolist()
    prefix = f"{exchange},{md.symbol},"
    tmp = dst.with_suffix(".tmp")
    with open(tmp, "w") as f:
        f.write(HEADER)
        f.writelines(
            f"{prefix}{t},{lt},{'true' if s else 'false'},{sd},{p!r},{q!r}\n"
            for t, lt, s, sd, p, q in zip(
                ts, local, snap, side, d.price[keep].tolist(), d.qty[keep].tolist(), strict=True
            )
        )
    tmp.replace(dst)
    return dst
