"""Baseline recorder: Binance combined streams to per-symbol zstd files with websockets + zstandard.

What a researcher writes today: an asyncio ``websockets`` client per combined-stream URL (at most
``--max-streams`` streams each), every message routed to its symbol by the ``"stream"`` field parsed
with ``orjson.loads`` (the fast JSON parser a competent user picks; it takes bytes) and written as
``<time.time_ns()> <message as received>\\n`` into that symbol's ``zstandard`` stream writer.  Messages
are received as bytes (``recv(decode=False)``: the text is written back as bytes anyway, so decoding it
to ``str`` would only be undone).  One REST depth snapshot per symbol at start, written into its file
as ``<ns> <body>``.  Reconnects with websockets' own backoff when a connection drops.

Same command line and file layout as ``lobfast-collect`` (a subset): ``DIR/<venue>/<symbol>/
<YYYYmmdd-HHMMSS>.zst``; ``--stats-file`` is rewritten every ``--stats-every`` with
``{"messages": N, "bytes": B}`` (WebSocket data messages written, their payload bytes), and stdout
gets the same objects as JSON lines.  SIGTERM / SIGINT: close the connections, end every zstd
stream (flushing it) and exit 0.

    python benchmarks/competitors/py_recorder.py --venue spot --symbols btcusdt,ethusdt --out DIR
        [--ws-url ws://127.0.0.1:PORT] [--rest-url http://127.0.0.1:PORT] [--stats-every 1s] [--stats-file PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import zstandard
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

DEFAULT_STREAMS = {"spot": "depth@100ms,trade,bookTicker", "usdm": "depth@100ms,aggTrade,bookTicker"}
WS_URL = {"spot": "wss://stream.binance.com:9443", "usdm": "wss://fstream.binance.com"}
REST_URL = {"spot": "https://api.binance.com", "usdm": "https://fapi.binance.com"}
DEPTH_PATH = {"spot": "/api/v3/depth", "usdm": "/fapi/v1/depth"}


def seconds(text: str) -> float:
    """'100ms', '5s', '15m', '1h' or a plain number of seconds."""
    for unit, mult in (("ms", 1e-3), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * mult
    return float(text)


class Recorder:
    def __init__(self, out: Path, venue: str, symbols: list[str], streams: list[str], level: int):
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        self.writers = {}
        self.by_stream = {}
        for sym in symbols:
            d = out / venue / sym
            d.mkdir(parents=True, exist_ok=True)
            w = zstandard.ZstdCompressor(level=level).stream_writer(open(d / f"{stamp}.zst", "wb"))
            self.writers[sym] = w
            for st in streams:
                self.by_stream[f"{sym}@{st}"] = w
        self.messages = 0
        self.bytes = 0
        self.unrouted = 0

    def write(self, msg: bytes) -> None:
        w = self.by_stream.get(orjson.loads(msg).get("stream"))
        if w is None:
            self.unrouted += 1
            return
        w.write(b"%d %b\n" % (time.time_ns(), msg))
        self.messages += 1
        self.bytes += len(msg)

    def write_line(self, sym: str, body: bytes) -> None:
        self.writers[sym].write(b"%d %b\n" % (time.time_ns(), body))

    def close(self) -> None:
        for w in self.writers.values():
            w.close()  # ends the zstd frame and closes the file


async def consume(url: str, rec: Recorder) -> None:
    # compression stays websockets' default: permessage-deflate is offered; a server that declines it sends plain frames
    async for ws in connect(url, max_size=None, proxy=None, close_timeout=1):
        print(f"connected {url[:80]}", file=sys.stderr, flush=True)
        try:
            while True:
                rec.write(await ws.recv(decode=False))
        except ConnectionClosed as e:
            print(f"disconnected: {e}", file=sys.stderr, flush=True)
            continue
        finally:
            await ws.close()  # on shutdown (the task is cancelled): the closing handshake


def fetch_snapshot(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


async def snapshots(rest_url: str, venue: str, symbols: list[str], limit: int, rec: Recorder) -> None:
    for sym in symbols:
        url = f"{rest_url}{DEPTH_PATH[venue]}?symbol={sym.upper()}&limit={limit}"
        try:
            rec.write_line(sym, await asyncio.to_thread(fetch_snapshot, url))
        except (OSError, urllib.error.URLError) as e:
            print(f"snapshot {sym}: {e}", file=sys.stderr, flush=True)


async def stats_loop(rec: Recorder, every: float, path: Path | None) -> None:
    while True:
        await asyncio.sleep(every)
        write_stats(rec, path)


def write_stats(rec: Recorder, path: Path | None) -> None:
    line = orjson.dumps({"messages": rec.messages, "bytes": rec.bytes, "unrouted": rec.unrouted, "t": time.time_ns()})
    if path is not None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(line)
        os.replace(tmp, path)
    sys.stdout.buffer.write(line + b"\n")
    sys.stdout.flush()


async def run(args) -> None:
    symbols = [s.strip().lower() for s in args.symbols.split(",") if s.strip()]
    streams = [s.strip() for s in (args.streams or DEFAULT_STREAMS[args.venue]).split(",") if s.strip()]
    rec = Recorder(args.out, args.venue, symbols, streams, args.level)
    names = [f"{sym}@{st}" for sym in symbols for st in streams]
    ws_url = (args.ws_url or WS_URL[args.venue]).rstrip("/")
    urls = [
        f"{ws_url}/stream?streams=" + "/".join(names[i : i + args.max_streams])
        for i in range(0, len(names), args.max_streams)
    ]

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(consume(u, rec)) for u in urls]
    tasks.append(asyncio.create_task(stats_loop(rec, seconds(args.stats_every), args.stats_file)))
    if args.snapshot_limit > 0:
        rest = (args.rest_url or REST_URL[args.venue]).rstrip("/")
        tasks.append(asyncio.create_task(snapshots(rest, args.venue, symbols, args.snapshot_limit, rec)))
    await stop.wait()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    rec.close()
    write_stats(rec, args.stats_file)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venue", choices=("spot", "usdm"), default="spot")
    ap.add_argument("--symbols", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--streams")
    ap.add_argument("--ws-url")
    ap.add_argument("--rest-url")
    ap.add_argument("--snapshot-limit", type=int, default=1000, help="depth snapshot per symbol at start (0: none)")
    ap.add_argument("--max-streams", type=int, default=200)
    ap.add_argument("--stats-every", default="5s")
    ap.add_argument("--stats-file", type=Path)
    ap.add_argument("--level", type=int, default=3)
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
