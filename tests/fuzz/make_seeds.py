"""Seed corpora for the libFuzzer harnesses, from the first lines of tests/data/binance/*.gz.

    python3 tests/fuzz/make_seeds.py OUT_BINANCE OUT_DECIMAL

Depth snapshots are ~60 KB lines; their level lists are cut to a few levels so seeds stay
small enough for the fuzzer to mutate quickly, while a seed still holds a whole session
(diffs, snapshot, bridging diff, trades, quotes) for the sync logic to start from.
"""

from __future__ import annotations

import gzip
import itertools
import json
import re
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "binance"
LINES = 80  # lines per recording: enough to reach each file's first snapshot and sync
SINGLE = 25  # of which the first few also become one-line seeds
LEVELS = 3  # levels kept per side


# Small sessions for the sync paths real files rarely take early: a gap and a resync
# (spot), pu chaining (USD-M), a snapshot too old, an empty snapshot.
CRAFTED = [
    b'1 {"e":"depthUpdate","E":1700000000100,"s":"X","U":1,"u":5,"b":[["99","1"]],"a":[]}\n'
    b'2 {"e":"depthUpdate","E":1700000000200,"s":"X","U":6,"u":12,"b":[["100","2"]],"a":[["101","0"]]}\n'
    b'3 {"lastUpdateId":10,"bids":[["100","1"],["99","3"]],"asks":[["101","2"]]}\n'
    b'4 {"e":"depthUpdate","E":1700000000300,"s":"X","U":13,"u":15,"b":[["98","1"]],"a":[]}\n'
    b'5 {"e":"depthUpdate","E":1700000000300,"s":"X","U":14,"u":15,"b":[],"a":[["102","5"]]}\n'
    b'6 {"e":"depthUpdate","E":1700000000400,"s":"X","U":20,"u":25,"b":[["97","1"]],"a":[]}\n'
    b'7 {"e":"depthUpdate","E":1700000000500,"s":"X","U":26,"u":30,"b":[],"a":[["103","1"]]}\n'
    b'8 {"lastUpdateId":27,"bids":[["100","5"]],"asks":[]}\n',
    b'1 {"e":"depthUpdate","T":1700000000100,"U":100,"u":110,"pu":99,"b":[["100.5","1"]],"a":[]}\n'
    b'2 {"lastUpdateId":105,"T":1700000000090,"bids":[["100.5","2"]],"asks":[]}\n'
    b'3 {"e":"depthUpdate","T":1700000000200,"U":111,"u":120,"pu":110,"b":[],"a":[["101","1"]]}\n'
    b'4 {"e":"depthUpdate","T":1700000000300,"U":121,"u":130,"pu":119,"b":[],"a":[]}\n'
    b'5 {"e":"depthUpdate","T":1700000000400,"U":135,"u":140,"pu":130,"b":[["99","1"]],"a":[]}\n'
    b'6 {"lastUpdateId":137,"T":1700000000390,"bids":[],"asks":[]}\n',
    b'1 {"e":"depthUpdate","E":1700000000100,"U":20,"u":25,"b":[["1","1"]],"a":[]}\n'
    b'2 {"lastUpdateId":10,"bids":[["9","9"]],"asks":[]}\n'
    b'3 {"lastUpdateId":22,"bids":[],"asks":[]}\n',
]


def shorten(obj):
    if isinstance(obj, dict):
        return {
            k: (v[:LEVELS] if k in ("b", "a", "bids", "asks") and isinstance(v, list) else shorten(v))
            for k, v in obj.items()
        }
    return obj


def main(out_binance: Path, out_decimal: Path) -> None:
    out_binance.mkdir(parents=True, exist_ok=True)
    out_decimal.mkdir(parents=True, exist_ok=True)
    numbers: set[str] = set()
    for path in sorted(DATA.glob("*.gz")):
        lines = []
        with gzip.open(path, "rb") as f:
            for raw in itertools.islice(f, LINES):
                ts, _, body = raw.rstrip(b"\n").partition(b" ")
                msg = json.dumps(shorten(json.loads(body)), separators=(",", ":"))
                lines.append(ts + b" " + msg.encode() + b"\n")
                numbers.update(re.findall(r"-?[0-9][0-9.eE+-]*", msg))
        stem = path.name.removesuffix(".gz")
        # the session keeps every depth line and a few of each other stream (most lines
        # are quotes), so it stays a few KB
        kept, seen = [], {}
        for line in lines:
            kind = re.search(rb'"stream":"[a-z]+@([a-zA-Z]+)', line)
            kind = kind.group(1) if kind else b"snapshot"
            seen[kind] = seen.get(kind, 0) + 1
            if kind in (b"depth", b"snapshot") or seen[kind] <= 3:
                kept.append(line)
        session = b"".join(kept)
        (out_binance / f"{stem}.txt").write_bytes(session)
        (out_binance / f"{stem}.txt.gz").write_bytes(gzip.compress(session, mtime=0))
        for i, line in enumerate(lines[:SINGLE]):
            (out_binance / f"{stem}-{i:02d}.txt").write_bytes(line)
    for i, session in enumerate(CRAFTED):
        (out_binance / f"crafted-{i}.txt").write_bytes(session)
    numbers.update(
        [
            "0",
            "-0",
            "1e22",
            "1e23",
            "9007199254740993",
            "4.9e-324",
            "1.7976931348623157e308",
            "0.30000000000000004",
            "123456789012345678901234567890",
            "1e-400",
            "+.5e-3",
        ]
    )
    for i, text in enumerate(sorted(numbers)):
        (out_decimal / f"n{i:04d}").write_text(text)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
