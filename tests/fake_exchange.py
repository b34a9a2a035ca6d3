"""A fake Binance exchange on 127.0.0.1: combined-stream WebSocket + REST depth snapshots, replaying real recordings.

It behaves like a live exchange, not a per-connection replay: one timeline walks the recorded messages and broadcasts
each one to the connections subscribed to its stream at that moment, so whatever is broadcast while a client is away
is lost to it. Depth diffs also update a per-symbol book, whether or not anyone received them, so a REST snapshot at
any moment is the true book at the current point of the timeline, and it bridges the next diff a client receives.

    with FakeExchange("spot", [SPOT_BTC_0808], max_messages=500) as fx:
        run_collector(fx.ws_url + "/stream?streams=btcusdt@depth@100ms", fx.rest_url)
        assert fx.wait_done(5)

Fault injection (drop, abort, raw close frames, serverShutdown, stall, gaps, fragmentation, raw frames, REST answers
of any status and body, redirects, rate limits) is driven from the test thread; every method is thread-safe. Nothing
listens anywhere but 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import gzip
import heapq
import json
import math
import re
import struct
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

BINANCE_DATA = Path(__file__).parent / "data" / "binance"
DEFAULT_FILES = {
    "spot": [BINANCE_DATA / "spot_btcusdt_20240808.gz"],
    "usdm": [BINANCE_DATA / "usdm_btcusdt_20240808.gz"],
}

HOST = "127.0.0.1"
REST_PREFIX = {"spot": "/api/v3/", "usdm": "/fapi/v1/"}
WEIGHT_LIMIT = {"spot": 6000, "usdm": 2400}
USDM_LIMITS = {5: 2, 10: 2, 20: 2, 50: 2, 100: 5, 500: 10, 1000: 20}  # valid limit -> weight
DEFAULT_LIMIT = {"spot": 100, "usdm": 500}
SPOT_MAX_LIMIT = 5000

# diff-depth streams only: partial-book streams (depth5, depth20@100ms, ...) are broadcast but never applied
_DIFF_DEPTH = re.compile(r"@depth(@\d+ms)?$")


def spot_weight(limit: int) -> int:
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


def usdm_route(stream: str) -> str:
    """The routed USD-M path that serves `stream`: high-frequency book data on /public, the rest on /market."""
    kind = stream.split("@", 1)[1] if "@" in stream else stream
    return "public" if kind.startswith("depth") or kind == "bookTicker" or stream == "!bookTicker" else "market"


def is_zero(qty: str) -> bool:
    return not qty.strip("0.")


class Event(NamedTuple):
    """One timeline message: recorded receive time, stream, upper-case symbol, frame exactly as recorded."""

    ts: int
    stream: str
    symbol: str
    payload: str
    depth: bool


@dataclasses.dataclass
class Connection:
    id: int
    path: str
    streams: list[str]
    route: str  # "stream" (spot, or USD-M legacy), "public", "market"
    opened: int  # time.time_ns()
    closed: int | None = None
    close_kind: str | None = None  # "client", "lost", "drop", "abort", "shutdown", "stop"
    close_code: int | None = None
    _ws: Any = dataclasses.field(default=None, repr=False, compare=False)
    _queue: Any = dataclasses.field(default=None, repr=False, compare=False)
    _sender: Any = dataclasses.field(default=None, repr=False, compare=False)
    _served: set = dataclasses.field(default_factory=set, repr=False, compare=False)
    _stall_until: float = dataclasses.field(default=0.0, repr=False, compare=False)
    _dropped: bool = dataclasses.field(default=False, repr=False, compare=False)


@dataclasses.dataclass(frozen=True)
class RestRecord:
    time_ns: int
    path: str
    symbol: str | None
    limit: int | None
    status: int
    last_update_id: int | None
    weight: int


@dataclasses.dataclass(frozen=True)
class _RestAnswer:
    """An injected REST answer (inject_rest_error)."""

    status: int
    body: str
    content_type: str
    headers: tuple[tuple[str, str], ...]
    limit: int | None  # only requests for this many levels take it


@dataclasses.dataclass(frozen=True)
class _Close:
    """Queued after data so that a scheduled close does not overtake frames queued before it."""

    kind: str
    code: int
    reason: str


class _Book:
    __slots__ = ("bids", "asks", "last_update_id", "E", "T")

    def __init__(self) -> None:
        # Decimal keys so that "61000.10" and "61000.1" are one level; values keep the exchange's own strings
        self.bids: dict[Decimal, tuple[str, str]] = {}
        self.asks: dict[Decimal, tuple[str, str]] = {}
        self.last_update_id: int | None = None
        self.E: int | None = None
        self.T: int | None = None

    @staticmethod
    def update(side: dict, levels: list) -> None:
        for p, q in levels:
            if is_zero(q):
                side.pop(Decimal(p), None)
            else:
                side[Decimal(p)] = (p, q)


# ---------------------------------------------------------------------------------------------------- recordings


@functools.lru_cache(maxsize=16)
def _read_recording(path: str, mtime_ns: int, size: int) -> tuple[tuple[int, str | None, str], ...]:
    """(ts, stream or None for a REST snapshot body, raw JSON) per line; cached because every test reloads."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        text = f.read()
    out = []
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if not line:
            continue
        ts, _, payload = line.partition(" ")
        if payload.startswith('{"stream":"'):
            stream = payload[11 : payload.index('"', 11)]
        elif payload.startswith('{"lastUpdateId":'):
            stream = None
        else:  # unusual key order: pay for a full parse
            obj = json.loads(payload)
            if isinstance(obj, dict) and isinstance(obj.get("stream"), str):
                stream = obj["stream"]
            elif isinstance(obj, dict) and "lastUpdateId" in obj:
                stream = None
            else:
                continue  # e.g. a recorded subscription reply
        out.append((int(ts), stream, payload))
    return tuple(out)


def read_recording(path: str | Path) -> tuple[tuple[int, str | None, str], ...]:
    st = Path(path).stat()
    return _read_recording(str(Path(path).resolve()), st.st_mtime_ns, st.st_size)


def _bridge_index(venue: str, entries: list[tuple[int, str, str]], last_update_id: int) -> int | None:
    """Index in `entries` of the first diff that bridges a snapshot, or None if the diffs never reach it."""
    for i, (_, stream, payload) in enumerate(entries):
        if not _DIFF_DEPTH.search(stream):
            continue
        d = json.loads(payload)["data"]
        if venue == "usdm":
            if d["u"] < last_update_id:
                continue
            return i if d["U"] <= last_update_id else None
        if d["u"] <= last_update_id:
            continue
        return i if d["U"] <= last_update_id + 1 else None
    return None


def build_timeline(
    venue: str, files: Iterable[str | Path], max_messages: int | None = None
) -> tuple[list[Event], dict[str, dict | None]]:
    """The merged timeline of all files, and each symbol's recorded snapshot body (parsed) or None.

    Each symbol's files are concatenated (in order of their first timestamp) and the symbols merged by receive time.
    A symbol with a snapshot starts at the diff that bridges it; everything recorded before that is skipped.
    """
    recs = sorted((read_recording(p) for p in files), key=lambda r: r[0][0] if r else 0)
    per_symbol: dict[str, list[tuple[int, str, str]]] = {}
    snapshots: dict[str, dict | None] = {}
    for rec in recs:
        local: dict[str, list[tuple[int, str, str]]] = {}
        for e in rec:
            if e[1] is not None:
                local.setdefault(e[1].split("@", 1)[0].upper(), []).append(e)
        for sym, entries in local.items():
            per_symbol.setdefault(sym, []).extend(entries)
            snapshots.setdefault(sym, None)
        for _, stream, payload in rec:
            if stream is not None:
                continue
            snap = json.loads(payload)
            # a file of several symbols: the snapshot belongs to the symbol whose diffs bridge it
            owners = (
                list(local)
                if len(local) == 1
                else [s for s in local if _bridge_index(venue, local[s], snap["lastUpdateId"]) is not None]
            )
            if len(owners) != 1:
                raise ValueError(f"cannot tell which symbol the snapshot lastUpdateId={snap['lastUpdateId']} is for")
            if snapshots[owners[0]] is None:  # later snapshots (recorded resyncs) are not needed
                snapshots[owners[0]] = snap
    streams = []
    for sym, entries in per_symbol.items():
        snap = snapshots[sym]
        start = 0
        if snap is not None:
            start = _bridge_index(venue, entries, snap["lastUpdateId"])
            if start is None:
                raise ValueError(f"{sym}: no diff bridges the snapshot lastUpdateId={snap['lastUpdateId']}")
        streams.append(
            [
                Event(ts, stream, sym, payload, bool(_DIFF_DEPTH.search(stream)))
                for ts, stream, payload in entries[start:]
            ]
        )
    timeline = list(heapq.merge(*streams, key=lambda e: e.ts))
    if max_messages is not None:
        del timeline[max_messages:]
    return timeline, snapshots


# ---------------------------------------------------------------------------------------------------- the exchange


class _RestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real endpoint
    timeout = 5  # idle keep-alive connections must not hold a thread forever

    def do_GET(self) -> None:  # noqa: N802
        self.server.fake._rest(self)  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class FakeExchange:
    """Fake Binance spot or USD-M exchange on 127.0.0.1 (see the module docstring).

    speed: multiple of the recorded pace; rate: messages per second instead; both None: as fast as possible.
    autostart: the timeline begins when the first connection subscribes to something (else call start_replay()).
    weight_limit / weight_window / retry_after: REST rate limiting (None = the venue's limit; a sliding window in
    seconds; the Retry-After value, None to compute it from the window).
    usdm_legacy: also serve everything on the USD-M /stream path (the pre-routing URL); off, it answers 404.
    ws_options: extra keyword arguments for websockets' serve().
    """

    def __init__(
        self,
        venue: str = "spot",
        files: Iterable[str | Path] | None = None,
        *,
        speed: float | None = 50.0,
        rate: float | None = None,
        autostart: bool = True,
        rest_delay: float = 0.0,
        weight_limit: int | None = None,
        weight_window: float = 60.0,
        retry_after: int | None = 2,
        max_messages: int | None = None,
        loop: bool = False,
        usdm_legacy: bool = False,
        ws_options: dict | None = None,
        start: bool = True,
    ) -> None:
        if venue not in REST_PREFIX:
            raise ValueError(f"venue must be 'spot' or 'usdm', not {venue!r}")
        if loop:
            # replaying again would send update ids backwards, which no real stream does
            raise NotImplementedError("loop=True is not supported")
        self.venue = venue
        self.files = [Path(p) for p in (files if files is not None else DEFAULT_FILES[venue])]
        self.speed, self.rate, self.autostart = speed, rate, autostart
        self.rest_delay = rest_delay
        self.weight_limit = weight_limit if weight_limit is not None else WEIGHT_LIMIT[venue]
        self.weight_window, self.retry_after = weight_window, retry_after
        self.usdm_legacy = usdm_legacy
        self.ws_options = {"close_timeout": 2, **(ws_options or {})}
        self.fragment: int | None = None  # read by the senders at each message: may be changed at any time

        self.timeline, self.recorded_snapshots = build_timeline(venue, self.files, max_messages)
        self.symbols = sorted(self.recorded_snapshots)
        self._books: dict[str, _Book] = {}
        for sym, snap in self.recorded_snapshots.items():
            book = self._books[sym] = _Book()
            if snap is not None:
                _Book.update(book.bids, snap["bids"])
                _Book.update(book.asks, snap["asks"])
                book.last_update_id, book.E, book.T = snap["lastUpdateId"], snap.get("E"), snap.get("T")

        self._lock = threading.Lock()  # records, books and the weight window; never held across I/O
        self._sent: list[tuple[int, str | bytes]] = []
        self._connections: list[Connection] = []
        self._rest_log: list[RestRecord] = []
        self._misrouted: list[tuple[int, str]] = []
        self._gapped: list[Event] = []
        self._received: list[tuple[int, str | bytes]] = []
        self._rejected: list[tuple[str, int]] = []
        self.errors: list[str] = []  # unexpected exceptions in the background threads
        self._weights: deque[tuple[float, int]] = deque()
        self._rest_errors: deque[_RestAnswer] = deque()

        self._open: dict[int, Connection] = {}  # loop thread only
        self._gaps: dict[str, int] = {}  # loop thread only
        self._next_id = 1
        self._emitted = 0
        self._done = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._http: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self._replay_task: asyncio.Task | None = None
        self._running: asyncio.Event | None = None  # cleared while paused
        self.ws_url = self.rest_url = ""
        self._closed = False
        if start:
            self.start()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeExchange:
        if self._closed:
            raise RuntimeError("a closed FakeExchange cannot be restarted")
        if self._thread is not None:
            return self
        ready = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._loop_main, args=(ready,), name="fake-exchange-ws", daemon=True)
        self._thread.start()
        self.ws_url = f"ws://{HOST}:{ready.result(10)}"
        self._http = ThreadingHTTPServer((HOST, 0), _RestHandler)
        self._http.daemon_threads = True
        self._http.fake = self  # type: ignore[attr-defined]
        self._http_thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-exchange-rest", daemon=True
        )
        self._http_thread.start()
        self.rest_url = f"http://{HOST}:{self._http.server_address[1]}"
        return self

    def close(self) -> None:
        self._closed = True
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http_thread.join(5)
            self._http = None
        if self._thread is not None and self._loop is not None and self._loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(10)
        self._thread = None

    def __enter__(self) -> FakeExchange:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _loop_main(self, ready: concurrent.futures.Future) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)  # this thread's loop only
        loop.set_exception_handler(lambda _loop, ctx: self._error(ctx.get("exception"), ctx.get("message")))
        try:
            loop.run_until_complete(self._boot())
        except BaseException as e:  # reported to start(), which raises it in the caller's thread
            ready.set_exception(e)
            loop.close()
            return
        ready.set_result(self._server.sockets[0].getsockname()[1])
        try:
            loop.run_forever()
        finally:
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            asyncio.set_event_loop(None)

    async def _boot(self) -> None:
        self._running = asyncio.Event()
        self._running.set()
        self._server = await serve(self._handler, HOST, 0, process_request=self._process_request, **self.ws_options)

    async def _shutdown(self) -> None:
        if self._replay_task is not None:
            self._replay_task.cancel()
        for c in self._open.values():
            c.close_kind = c.close_kind or "stop"
        self._server.close(close_connections=True)
        try:
            await asyncio.wait_for(self._server.wait_closed(), 3)
        except asyncio.TimeoutError:  # a peer that never answers the close frame
            for c in list(self._open.values()):
                c._ws.transport.abort()

    def _error(self, exc: BaseException | None, message: str | None = None) -> None:
        text = "".join(traceback.format_exception(exc)) if exc is not None else str(message)
        with self._lock:
            self.errors.append(text)

    def _call(self, fn: Callable, *args: Any) -> Any:
        """Run fn in the loop thread and return its result: state the loop owns is only touched there."""
        if threading.current_thread() is self._thread:
            return fn(*args)
        fut: concurrent.futures.Future = concurrent.futures.Future()

        def run() -> None:
            try:
                fut.set_result(fn(*args))
            except BaseException as e:
                fut.set_exception(e)

        self._loop.call_soon_threadsafe(run)
        return fut.result(10)

    # ------------------------------------------------------------------ timeline

    def start_replay(self) -> None:
        self._call(self._start_replay)

    def _start_replay(self) -> None:
        if self._replay_task is None:
            self._replay_task = asyncio.get_running_loop().create_task(self._replay())

    async def _replay(self) -> None:
        loop = asyncio.get_running_loop()
        events = self.timeline
        t0 = loop.time()
        ts0 = events[0].ts if events else 0
        for i, ev in enumerate(events):
            if self.rate:
                due = t0 + i / self.rate
            elif self.speed:
                due = t0 + (ev.ts - ts0) / 1e9 / self.speed
            else:
                due = None
            if due is not None and due - loop.time() > 0.001:
                await asyncio.sleep(due - loop.time())
            elif i % 64 == 0:  # behind schedule or unpaced: still let the senders and handlers run
                await asyncio.sleep(0)
            if not self._running.is_set():
                held = loop.time()
                await self._running.wait()
                t0 += loop.time() - held
            self._emit(ev)
            self._emitted = i + 1
        self._done.set()

    def _emit(self, ev: Event) -> None:
        if ev.depth:
            self._apply(ev)
            if self._gaps.get(ev.symbol):
                self._gaps[ev.symbol] -= 1
                with self._lock:
                    self._gapped.append(ev)
                return
        now = self._loop.time()
        for c in self._open.values():
            if ev.stream in c._served and c._stall_until <= now:
                c._queue.put_nowait(ev.payload)

    def _apply(self, ev: Event) -> None:
        d = json.loads(ev.payload)["data"]
        with self._lock:
            book = self._books[ev.symbol]
            _Book.update(book.bids, d["b"])
            _Book.update(book.asks, d["a"])
            book.last_update_id, book.E, book.T = d["u"], d.get("E"), d.get("T")

    @property
    def emitted(self) -> int:
        """How many timeline messages have been broadcast (or applied, for gapped diffs)."""
        return self._emitted

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def paused(self) -> bool:
        return self._running is not None and not self._running.is_set()

    def pause(self) -> None:
        """Hold the timeline; once this returns nothing more is broadcast (frames already queued still go out)."""
        self._call(self._running.clear)

    def resume(self) -> None:
        self._call(self._running.set)

    # ------------------------------------------------------------------ waiting

    def wait(self, predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.005) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                return bool(predicate())
            time.sleep(interval)
        return True

    def wait_done(self, timeout: float = 10.0) -> bool:
        return self._done.wait(timeout)

    def wait_connections(self, n: int, timeout: float = 5.0) -> bool:
        """At least n WebSocket connections have been opened in total."""
        return self.wait(lambda: len(self._connections) >= n, timeout)

    def wait_closed(self, timeout: float = 5.0) -> bool:
        """No WebSocket connection is open."""
        return self.wait(lambda: all(c.closed is not None for c in self.connections), timeout)

    # ------------------------------------------------------------------ faults

    def drop(self, abrupt: bool = False, code: int = 1000, reason: str = "", wait: bool = True) -> int:
        """Close every open connection now (queued frames are lost); abrupt: TCP abort, no close frame."""
        conns = self._call(self._drop, abrupt, code, reason)
        if wait:
            self.wait(lambda: all(c.closed is not None for c in conns))
        return len(conns)

    def _drop(self, abrupt: bool, code: int, reason: str) -> list[Connection]:
        conns = list(self._open.values())
        for c in conns:
            c.close_kind = c.close_kind or ("abort" if abrupt else "drop")
            c._dropped = True  # the sender must not start another frame before the close goes out
            if abrupt:
                c._ws.transport.abort()
            else:
                asyncio.get_running_loop().create_task(c._ws.close(code, reason))
        return conns

    def close_raw(self, code: int, reason: bytes) -> int:
        """Close every open connection with a close frame whose reason is these raw bytes (invalid UTF-8, control
        characters: what a misbehaving peer may send); the TCP connection is cut a second later."""
        if len(reason) > 123:
            raise ValueError("a close reason holds at most 123 bytes")
        return len(self._call(self._close_raw, code, reason))

    def _close_raw(self, code: int, reason: bytes) -> list[Connection]:
        frame = struct.pack("!BBH", 0x88, 2 + len(reason), code) + reason  # FIN + close, unmasked (server side)
        conns = list(self._open.values())
        for c in conns:
            c.close_kind = c.close_kind or "drop"
            c._dropped = True  # the sender must not start another frame after it
            c._ws.transport.write(frame)
            self._loop.call_later(1.0, c._ws.transport.abort)
        return conns

    def inject_gap(self, symbol: str, count: int = 1) -> None:
        """The next `count` diffs of symbol are sent to nobody; the book still applies them."""
        self._call(self._inject_gap, symbol.upper(), count)

    def _inject_gap(self, symbol: str, count: int) -> None:
        self._gaps[symbol] = self._gaps.get(symbol, 0) + count

    def server_shutdown(self, close_after: float = 0.5, code: int = 1001, reason: str = "") -> int:
        """Send serverShutdown to every open connection, then close them close_after seconds later."""
        return self._call(self._server_shutdown, close_after, code, reason)

    def _server_shutdown(self, close_after: float, code: int, reason: str) -> int:
        e = int(time.time() * 1000)
        frame = f'{{"stream":"!serverShutdown","data":{{"e":"serverShutdown","E":{e}}}}}'
        conns = list(self._open.values())
        for c in conns:
            c._queue.put_nowait(frame)
        marker = _Close("shutdown", code, reason)

        def close_them() -> None:
            for c in conns:
                if c.closed is None:
                    c._queue.put_nowait(marker)

        self._loop.call_later(close_after, close_them)
        return len(conns)

    def stall(self, seconds: float) -> int:
        """Connections open now receive nothing for `seconds` (what is broadcast meanwhile is lost); they stay open."""
        return self._call(self._stall, seconds)

    def _stall(self, seconds: float) -> int:
        until = self._loop.time() + seconds
        for c in self._open.values():
            c._stall_until = until
        return len(self._open)

    def send_raw(self, data: str | bytes) -> int:
        """Queue one arbitrary frame (str: text, bytes: binary) to every open connection."""
        return self._call(self._send_raw, data)

    def _send_raw(self, data: str | bytes) -> int:
        for c in self._open.values():
            c._queue.put_nowait(data)
        return len(self._open)

    def inject_rest_error(
        self,
        status: int = 503,
        count: int = 1,
        body: str = "",
        *,
        content_type: str = "application/json;charset=UTF-8",
        headers: Iterable[tuple[str, str]] = (),
        limit: int | None = None,
    ) -> None:
        """The next `count` depth requests get this answer instead of a snapshot.

        Any status goes: 403 (the WAF), 404, 200 with an HTML page (content_type="text/html"), a 3xx with
        headers=[("Location", url)]. limit: only requests for this many levels take it (others are served as usual).
        """
        answer = _RestAnswer(status, body, content_type, tuple(headers), limit)
        with self._lock:
            self._rest_errors.extend([answer] * count)

    # ------------------------------------------------------------------ records (snapshots, safe from any thread)

    @property
    def sent(self) -> list[tuple[int, str | bytes]]:
        """(connection id, frame) for every data frame handed to websockets, in order."""
        with self._lock:
            return list(self._sent)

    def sent_to(self, conn_id: int) -> list[str | bytes]:
        with self._lock:
            return [p for i, p in self._sent if i == conn_id]

    @property
    def connections(self) -> list[Connection]:
        with self._lock:
            return list(self._connections)

    @property
    def rest_log(self) -> list[RestRecord]:
        with self._lock:
            return list(self._rest_log)

    @property
    def misrouted(self) -> list[tuple[int, str]]:
        with self._lock:
            return list(self._misrouted)

    @property
    def gapped(self) -> list[Event]:
        """Diffs withheld by inject_gap."""
        with self._lock:
            return list(self._gapped)

    @property
    def received(self) -> list[tuple[int, str | bytes]]:
        """Messages clients sent to the server."""
        with self._lock:
            return list(self._received)

    @property
    def rejected(self) -> list[tuple[str, int]]:
        """WebSocket handshakes refused: (path, HTTP status)."""
        with self._lock:
            return list(self._rejected)

    def book_state(self, symbol: str) -> tuple[int | None, list[tuple[str, str]], list[tuple[str, str]]]:
        """(lastUpdateId, bids best first, asks best first), every level the fake knows."""
        with self._lock:
            book = self._books[symbol.upper()]
            return (
                book.last_update_id,
                [book.bids[k] for k in sorted(book.bids, reverse=True)],
                [book.asks[k] for k in sorted(book.asks)],
            )

    def snapshot(self, symbol: str, limit: int) -> tuple[str, int | None]:
        """The REST depth body for the current book, and its lastUpdateId."""
        with self._lock:
            book = self._books[symbol.upper()]
            bids = [list(book.bids[k]) for k in heapq.nlargest(limit, book.bids)]
            asks = [list(book.asks[k]) for k in heapq.nsmallest(limit, book.asks)]
            luid, e, t = book.last_update_id, book.E, book.T
        head = f'{{"lastUpdateId":{json.dumps(luid)}'
        if self.venue == "usdm":
            head += f',"E":{json.dumps(e)},"T":{json.dumps(t)}'
        sep = (",", ":")
        return f'{head},"bids":{json.dumps(bids, separators=sep)},"asks":{json.dumps(asks, separators=sep)}}}', luid

    # ------------------------------------------------------------------ WebSocket side

    def _parse_path(self, path: str) -> tuple[str | None, list[str]]:
        url = urlsplit(path)
        routes = (
            {"/stream": "stream"} if self.venue == "spot" else {"/public/stream": "public", "/market/stream": "market"}
        )
        if self.venue == "usdm" and self.usdm_legacy:
            routes["/stream"] = "stream"
        raw = parse_qs(url.query, keep_blank_values=True).get("streams", [""])[0]
        return routes.get(url.path), [s for s in raw.split("/") if s]

    def _process_request(self, connection: ServerConnection, request: Any) -> Any:
        route, _ = self._parse_path(request.path)
        if route is None:
            with self._lock:
                self._rejected.append((request.path, 404))
            return connection.respond(404, "Not Found\n")
        return None

    def _subscribe(self, c: Connection, streams: list[str]) -> None:
        for s in streams:
            if c.route == "stream" or usdm_route(s) == c.route:
                c._served.add(s)
            else:  # the real routed endpoint accepts it and stays silent
                with self._lock:
                    self._misrouted.append((c.id, s))
        if self.autostart and c._served:
            self._start_replay()

    async def _handler(self, ws: ServerConnection) -> None:
        route, streams = self._parse_path(ws.request.path)
        c = Connection(self._next_id, ws.request.path, streams, route, time.time_ns())
        self._next_id += 1
        c._ws, c._queue = ws, asyncio.Queue()
        self._open[c.id] = c
        with self._lock:
            self._connections.append(c)
        c._sender = asyncio.get_running_loop().create_task(self._send_loop(c))
        self._subscribe(c, streams)
        try:
            async for msg in ws:
                self._on_client_message(c, msg)
        except ConnectionClosed:
            pass
        finally:
            del self._open[c.id]
            c._sender.cancel()
            c.close_kind = c.close_kind or ("client" if ws.protocol.close_rcvd is not None else "lost")
            c.close_code = ws.close_code
            c.closed = time.time_ns()

    async def _send_loop(self, c: Connection) -> None:
        ws, queue = c._ws, c._queue
        try:
            while True:
                item = await queue.get()
                if c._dropped:
                    return
                if isinstance(item, _Close):
                    c.close_kind = c.close_kind or item.kind
                    await ws.close(item.code, item.reason)
                    return
                with self._lock:
                    self._sent.append((c.id, item))
                n = self.fragment
                if n and isinstance(item, str):
                    await ws.send([item[i : i + n] for i in range(0, max(len(item), 1), n)])
                elif n:
                    await ws.send([bytes(item[i : i + n]) for i in range(0, max(len(item), 1), n)])
                else:
                    await ws.send(item)
        except ConnectionClosed:
            pass
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._error(e)

    def _on_client_message(self, c: Connection, msg: str | bytes) -> None:
        """The live API's SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS; anything else gets an error reply."""
        with self._lock:
            self._received.append((c.id, msg))
        try:
            req = json.loads(msg)
            method, rid = req["method"], req.get("id")
            params = req.get("params", [])
        except (ValueError, TypeError, KeyError):
            c._queue.put_nowait('{"error":{"code":3,"msg":"Invalid JSON"}}')
            return
        if method == "SUBSCRIBE":
            c.streams.extend(s for s in params if s not in c.streams)
            self._subscribe(c, params)
            result = None
        elif method == "UNSUBSCRIBE":
            c.streams[:] = [s for s in c.streams if s not in params]
            c._served.difference_update(params)
            result = None
        elif method == "LIST_SUBSCRIPTIONS":
            result = list(c.streams)
        else:
            c._queue.put_nowait(json.dumps({"error": {"code": 2, "msg": "Invalid request"}, "id": rid}))
            return
        c._queue.put_nowait(json.dumps({"result": result, "id": rid}, separators=(",", ":")))

    # ------------------------------------------------------------------ REST side (HTTP server threads)

    def _take_weight(self, weight: int) -> tuple[bool, int, int]:
        """(allowed, weight used in the window afterwards, Retry-After seconds)."""
        with self._lock:
            now = time.monotonic()
            while self._weights and self._weights[0][0] <= now - self.weight_window:
                self._weights.popleft()
            used = sum(w for _, w in self._weights)
            if used + weight <= self.weight_limit:
                self._weights.append((now, weight))
                return True, used + weight, 0
            retry = self.retry_after
            if retry is None:  # until enough of the window has expired
                need, freed, expires = used + weight - self.weight_limit, 0, now
                for t, w in self._weights:
                    freed, expires = freed + w, t + self.weight_window
                    if freed >= need:
                        break
                retry = max(1, math.ceil(expires - now))
            return False, used, retry

    def _rest(self, h: BaseHTTPRequestHandler) -> None:
        try:
            self._rest_inner(h)
        except Exception as e:
            self._error(e)
            raise

    def _rest_inner(self, h: BaseHTTPRequestHandler) -> None:
        url = urlsplit(h.path)
        q = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        prefix = REST_PREFIX[self.venue]
        sym = q.get("symbol", "").upper() or None
        limit = None

        def reply(
            status: int,
            body: str,
            weight: int,
            used: int,
            luid: int | None = None,
            headers=(),
            content_type="application/json;charset=UTF-8",
        ) -> None:
            data = body.encode()
            with self._lock:  # logged before the client can see the response
                self._rest_log.append(RestRecord(time.time_ns(), h.path, sym, limit, status, luid, weight))
            h.send_response(status)
            h.send_header("Content-Type", content_type)
            h.send_header("Content-Length", str(len(data)))
            h.send_header("X-MBX-USED-WEIGHT-1M", str(used))
            for k, v in headers:
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)

        def error(status: int, code: int, msg: str, weight: int) -> None:
            ok, used, retry = self._take_weight(weight)
            if not ok:
                return too_many(weight, used, retry)
            reply(status, json.dumps({"code": code, "msg": msg}, separators=(",", ":")), weight, used)

        def too_many(weight: int, used: int, retry: int) -> None:
            reply(429, '{"code":-1003,"msg":"Too many requests"}', weight, used, headers=[("Retry-After", str(retry))])

        if url.path in (prefix + "ping", prefix + "time"):
            ok, used, retry = self._take_weight(1)
            if not ok:
                return too_many(1, used, retry)
            body = "{}" if url.path.endswith("ping") else f'{{"serverTime":{int(time.time() * 1000)}}}'
            return reply(200, body, 1, used)
        if url.path != prefix + "depth":
            return reply(404, "", 0, self._take_weight(0)[1])

        default = DEFAULT_LIMIT[self.venue]
        default_weight = spot_weight(default) if self.venue == "spot" else USDM_LIMITS[default]
        raw_limit = q.get("limit")
        if raw_limit is None:
            limit = default
        elif not raw_limit.isdigit() or len(raw_limit) > 20:
            msg = "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'."
            return error(400, -1100, msg, default_weight)
        else:
            limit = int(raw_limit)
        if self.venue == "spot":
            if limit < 1:
                return error(400, -1130, "Data sent for parameter 'limit' is not valid.", default_weight)
            limit = min(limit, SPOT_MAX_LIMIT)  # the real endpoint truncates rather than refuses
            weight = spot_weight(limit)
        else:
            if limit not in USDM_LIMITS:
                return error(400, -1130, "Data sent for parameter 'limit' is not valid.", default_weight)
            weight = USDM_LIMITS[limit]
        if sym is None:
            msg = "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
            return error(400, -1102, msg, weight)

        ok, used, retry = self._take_weight(weight)
        if not ok:
            return too_many(weight, used, retry)
        with self._lock:
            injected = next((a for a in self._rest_errors if a.limit in (None, limit)), None)
            if injected is not None:
                self._rest_errors.remove(injected)  # equal answers are interchangeable
        if injected is not None:
            a = injected
            return reply(a.status, a.body, weight, used, headers=a.headers, content_type=a.content_type)
        if sym not in self._books:
            return reply(400, '{"code":-1121,"msg":"Invalid symbol."}', weight, used)
        body, luid = self.snapshot(sym, limit)  # taken on arrival: rest_delay models the response in transit
        if self.rest_delay:
            time.sleep(self.rest_delay)
        reply(200, body, weight, used, luid)
