"""Loopback Binance feed for the recorder benchmark: a raw-socket WebSocket server and a REST depth endpoint.

The WebSocket side answers the RFC 6455 handshake itself (no extension is negotiated, so no
permessage-deflate) and writes pre-encoded, unmasked text frames from one pre-built buffer with
``sendall`` in ~1 MiB slices cut at frame boundaries, so the sender costs a memcpy into the kernel
per byte and is never what limits a recorder.  Each connection gets, in file order, the messages of
the streams named in its ``/stream?streams=a/b/c`` URL; either flat out or paced (``--rate``
messages/s over the whole file, sent in 10 ms batches).  Client frames are read and discarded on a
thread of their own (pings are answered between slices, a close is echoed), so the TCP window never
fills on the way back.  Every connection ends with a close frame: when the client closes, when
``--close-when-done`` is given and its data is sent, or when the server stops (SIGTERM/SIGINT).
With ``--sync-start`` no connection starts before the open connections carry every stream of the
file and all their frames are built (at most 10 s), so that a recorder's connections start together
and none is slowed by the build of another.  A connection whose URL names no stream (``/stream``,
``/ws``) takes its streams from Binance-style ``{"method":"SUBSCRIBE","params":[...],"id":N}``
requests (answered ``{"result":null,"id":N}``) before its first data frame.

The REST side (``GET /api/v3/depth`` and ``/fapi/v1/depth``) returns the recording's snapshot for
every symbol of the workload (its levels cut to ``limit``) and Binance's 400
``{"code":-1121,"msg":"Invalid symbol."}`` for any other.

Events go to stdout as JSON lines (``listening``, ``connected``, ``start``, ``done``, ``closed``,
``rest``); times are CLOCK_MONOTONIC ns (``t``) and wall-clock ns (``wall``).

Workloads are built from tests/data/binance/spot_btcusdt_2024080{8,9}.gz (one continuous spot
BTCUSDT recording): K copies with ``btcusdt``/``BTCUSDT`` renamed to ``s001usdt``/``S001USDT``...,
interleaved round robin, one message per line in send order, cached in benchmarks/.data/.

    python benchmarks/datagen/ws_blast.py --build KxN        (prints the workload's two files)
    python benchmarks/datagen/ws_blast.py --messages FILE --snapshot FILE [--rate N] [--sync-start] [--close-when-done]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import queue
import signal
import socket
import struct
import sys
import threading
import time
from array import array
from bisect import bisect_left, bisect_right
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

BENCH = Path(__file__).resolve().parents[1]
if str(BENCH) not in sys.path:  # run as a script
    sys.path[:0] = [str(BENCH.parent), str(BENCH)]

HOST = "127.0.0.1"
RECORDINGS = ("spot_btcusdt_20240808", "spot_btcusdt_20240809")
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SLICE = 1 << 20  # bytes per sendall when flat out
TICK = 0.010  # seconds per batch when paced
SYNC_WAIT = 10.0  # --sync-start: longest wait for the connections carrying the other streams
STREAM_PREFIX = b'{"stream":"'
INVALID_SYMBOL = b'{"code":-1121,"msg":"Invalid symbol."}'


# ------------------------------------------------------------------------------ workloads
def symbol_names(k: int) -> list[str]:
    return [f"s{i:03d}usdt" for i in range(1, k + 1)]


def base_recording() -> tuple[list[bytes], bytes]:
    """The WebSocket payloads of the spot BTCUSDT recording, in order, and its REST snapshot body."""
    from common import plain_copy

    msgs: list[bytes] = []
    snapshot = b""
    for name in RECORDINGS:
        with open(plain_copy(name), "rb") as f:
            for line in f:
                payload = line.rstrip(b"\r\n").partition(b" ")[2]
                if payload.startswith(STREAM_PREFIX):
                    msgs.append(payload)
                elif payload.startswith(b'{"lastUpdateId"') and not snapshot:
                    snapshot = payload
    if not snapshot:
        raise SystemExit("no REST snapshot line in the spot BTCUSDT recording")
    return msgs, snapshot


def workload(k: int, per_symbol: int) -> tuple[Path, Path]:
    """(messages file, snapshot file) for k symbols x the first ``per_symbol`` messages of the
    recording, interleaved round robin; built once into benchmarks/.data/."""
    from common import DATA

    messages = DATA / f"ws_blast_{k}x{per_symbol}.txt"
    snapshot = DATA / "ws_blast_snapshot.json"
    if messages.exists() and snapshot.exists():
        return messages, snapshot
    base, snap = base_recording()
    if per_symbol > len(base):
        raise SystemExit(f"the recording has {len(base):,} messages, {per_symbol:,} per symbol asked")
    base = base[:per_symbol]
    copies = []
    for name in symbol_names(k):
        low, up = name.encode(), name.upper().encode()
        copies.append([m.replace(b"btcusdt", low).replace(b"BTCUSDT", up) for m in base])
    DATA.mkdir(exist_ok=True)
    tmp = messages.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        for i in range(per_symbol):
            f.write(b"\n".join(c[i] for c in copies))
            f.write(b"\n")
    tmp.replace(messages)
    snapshot.write_bytes(snap)
    return messages, snapshot


def stream_of(payload: bytes) -> bytes:
    """``s001usdt@trade`` of ``{"stream":"s001usdt@trade","data":...}``."""
    return payload[11 : payload.index(b'"', 11)]


# ------------------------------------------------------------------------------ frames
def frame_header(n: int, opcode: int = 0x1) -> bytes:
    """FIN + opcode, unmasked, 7-bit / 16-bit / 64-bit payload length."""
    if n < 126:
        return bytes((0x80 | opcode, n))
    if n < 1 << 16:
        return struct.pack("!BBH", 0x80 | opcode, 126, n)
    return struct.pack("!BBQ", 0x80 | opcode, 127, n)


def control_frame(opcode: int, payload: bytes = b"") -> bytes:
    return frame_header(len(payload), opcode) + payload


def unmask(data: bytes, mask: bytes) -> bytes:
    if not mask or not data:
        return data
    n = len(data)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


class Plan:
    """The frames one connection gets: one buffer, the end offset and the file index of each frame."""

    __slots__ = ("buf", "ends", "index", "payload_bytes")

    def __init__(self, msgs: list[bytes], streams: list[bytes], wanted: set[bytes] | None):
        parts: list[bytes] = []
        ends = array("q")
        index = array("q")
        pos = payload = 0
        hdr = frame_header
        for i, m in enumerate(msgs):
            if wanted is not None and streams[i] not in wanted:
                continue
            h = hdr(len(m))
            parts.append(h)
            parts.append(m)
            pos += len(h) + len(m)
            payload += len(m)
            ends.append(pos)
            index.append(i)
        self.buf = b"".join(parts)
        self.ends = ends
        self.index = index
        self.payload_bytes = payload


# ------------------------------------------------------------------------------ server
class Feed:
    def __init__(
        self,
        messages: Path,
        snapshot: Path,
        rate: float = 0.0,
        start_delay: float = 0.0,
        close_when_done: bool = False,
        sync_start: bool = False,
    ):
        self.msgs = messages.read_bytes().splitlines()
        self.streams = [stream_of(m) for m in self.msgs]
        self.available = set(self.streams)
        self.symbols = {s.split(b"@", 1)[0].decode().upper() for s in self.available}
        self.snapshot = snapshot.read_bytes()
        self.rate = rate
        self.start_delay = start_delay
        self.close_when_done = close_when_done
        self.sync_start = sync_start
        self.open_streams: dict[bytes, int] = {}  # stream -> open connections carrying it (sync_start)
        self.open_cond = threading.Condition()
        self.plans: dict[frozenset, Plan] = {frozenset(self.available): Plan(self.msgs, self.streams, None)}
        self.plans_lock = threading.Lock()
        self.out_lock = threading.Lock()
        self.stop = threading.Event()
        self.conns: list[threading.Thread] = []
        self.next_id = 0
        self._snap_cache: dict[int, bytes] = {}

    def emit(self, **event) -> None:
        line = json.dumps(event, separators=(",", ":"))
        with self.out_lock:
            try:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
            except (OSError, ValueError):  # nobody is reading any more
                pass

    def plan(self, wanted: set[bytes]) -> Plan:
        key = frozenset(wanted & self.available)
        with self.plans_lock:
            p = self.plans.get(key)
            if p is None:
                p = self.plans[key] = Plan(self.msgs, self.streams, set(key))
            return p

    # ---- REST
    def depth_body(self, limit: int) -> bytes:
        body = self._snap_cache.get(limit)
        if body is None:
            snap = json.loads(self.snapshot)
            if limit >= max(len(snap.get("bids", ())), len(snap.get("asks", ()))):
                body = self.snapshot
            else:
                snap["bids"] = snap["bids"][:limit]
                snap["asks"] = snap["asks"][:limit]
                body = json.dumps(snap, separators=(",", ":")).encode()
            self._snap_cache[limit] = body
        return body

    # ---- WebSocket
    def serve(self, lsock: socket.socket) -> None:
        lsock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                sock, _ = lsock.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            cid = self.next_id
            self.next_id += 1
            t = threading.Thread(target=self.connection, args=(sock, cid), daemon=True)
            t.start()
            self.conns.append(t)

    def connection(self, sock: socket.socket, cid: int) -> None:
        try:
            self._connection(sock, cid)
        except OSError as e:
            self.emit(event="error", conn=cid, error=repr(e))
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def _handshake(self, sock: socket.socket) -> tuple[str, bytes] | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            data += chunk
            if len(data) > 1 << 16:
                return None
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        key = headers.get("sec-websocket-key")
        why = ""
        if len(parts) != 3 or parts[0] != "GET" or parts[2] != "HTTP/1.1" or "\0" in head.decode("latin-1"):
            why = "malformed request line"
        elif "websocket" not in headers.get("upgrade", "").lower() or not key:
            why = "not a WebSocket upgrade"
        if why:
            self.emit(event="bad_request", why=why, request_line=lines[0][:120] + " ... " + lines[0][-120:])
            sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return None
        accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest())
        sock.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        return parts[1], rest

    def _connection(self, sock: socket.socket, cid: int) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        hs = self._handshake(sock)
        if hs is None:
            return
        target, rest = hs
        url = urlsplit(target)
        qs = parse_qs(url.query)
        wanted = {s.encode() for v in qs.get("streams", ()) for s in unquote(v).split("/") if s}
        if url.path.startswith("/ws/"):
            wanted |= {s.encode() for s in url.path[4:].split("/") if s}
        control: queue.SimpleQueue = queue.SimpleQueue()
        reader = threading.Thread(target=self.read_client, args=(sock, rest, control), daemon=True)
        reader.start()
        subscribed = 0
        if not wanted:  # no streams in the URL: take them from SUBSCRIBE requests
            wanted, subscribed = self.subscriptions(sock, control)
        plan = self.plan(wanted)
        self.emit(
            event="connected",
            conn=cid,
            path=url.path,
            streams=len(wanted),
            unknown=len(wanted - self.available),
            subscribe_requests=subscribed,
            frames=len(plan.ends),
            payload_bytes=plan.payload_bytes,
            t=time.monotonic_ns(),
        )
        if self.sync_start:
            self.all_streams_open(wanted, +1)
        try:
            if self.start_delay > 0:
                time.sleep(self.start_delay)
            sent, closing = self.send_plan(sock, cid, plan, control)
            self.idle(sock, cid, sent, closing, control, reader)
        finally:
            if self.sync_start:
                self.all_streams_open(wanted, -1)

    def all_streams_open(self, wanted: set[bytes], delta: int) -> None:
        """Count this connection's streams in (+1) or out (-1); coming in, wait (at most SYNC_WAIT s)
        until the open connections carry every stream of the file and their frames are built, so
        that all connections start together and none waits on another one's build."""
        with self.open_cond:
            for st in wanted & self.available:
                n = self.open_streams.get(st, 0) + delta
                if n > 0:
                    self.open_streams[st] = n
                else:
                    self.open_streams.pop(st, None)
            self.open_cond.notify_all()
            if delta > 0:
                self.open_cond.wait_for(
                    lambda: self.stop.is_set() or len(self.open_streams) == len(self.available), SYNC_WAIT
                )

    def idle(self, sock, cid: int, sent: int, closing: bytes | None, control, reader) -> None:
        """After the data: answer pings until the client closes or the server stops; end with a close frame."""
        if closing is None and (self.close_when_done or self.stop.is_set()):
            closing = struct.pack("!H", 1000)
        while closing is None:  # idle: answer pings until the client closes or the server stops
            try:
                kind, payload = control.get(timeout=0.1)
            except queue.Empty:
                if self.stop.is_set():
                    closing = struct.pack("!H", 1001)
                continue
            if kind == "ping":
                sock.sendall(control_frame(0xA, payload))
            elif kind == "close":
                closing = payload[:2] if len(payload) >= 2 else struct.pack("!H", 1000)
            elif kind == "eof":
                break
        if closing is not None:
            try:
                sock.sendall(control_frame(0x8, closing))
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            reader.join(1.0)
        self.emit(event="closed", conn=cid, frames=sent, t=time.monotonic_ns())

    def subscriptions(self, sock: socket.socket, control) -> tuple[set[bytes], int]:
        """Streams of the client's ``{"method":"SUBSCRIBE","params":[...],"id":N}`` requests, each answered
        ``{"result":null,"id":N}``: until 0.3 s pass without one after the first (10 s for the first)."""
        wanted: set[bytes] = set()
        n = 0
        wait = 10.0
        while True:
            try:
                kind, payload = control.get(timeout=wait)
            except queue.Empty:
                return wanted, n
            if kind == "ping":
                sock.sendall(control_frame(0xA, payload))
            elif kind == "text":
                try:
                    req = json.loads(payload)
                except ValueError:
                    continue
                if isinstance(req, dict) and req.get("method") == "SUBSCRIBE":
                    wanted |= {str(x).encode() for x in req.get("params") or ()}
                    n += 1
                    reply = json.dumps({"result": None, "id": req.get("id")}, separators=(",", ":")).encode()
                    sock.sendall(frame_header(len(reply)) + reply)
                    wait = 0.3
            else:  # close or eof before any data: put it back for the sending loop
                control.put((kind, payload))
                return wanted, n

    def send_plan(self, sock, cid: int, plan: Plan, control) -> tuple[int, bytes | None]:
        """Send the plan's frames; returns (frames sent, close payload to echo or None)."""
        mv = memoryview(plan.buf)
        ends, index = plan.ends, plan.index
        n = len(ends)
        pos = done = 0
        t0 = time.monotonic()
        self.emit(event="start", conn=cid, t=time.monotonic_ns(), wall=time.time_ns(), rate=self.rate)
        next_tick = t0
        try:
            while done < n:
                if self.rate > 0:
                    now = time.monotonic()
                    if now < next_tick:
                        time.sleep(next_tick - now)
                    next_tick += TICK
                    due = int((time.monotonic() - t0) * self.rate) + 1  # file index < due is due
                    upto = bisect_left(index, due, done)
                else:
                    upto = bisect_right(ends, pos + SLICE, done)
                    if upto == done:
                        upto = done + 1  # one frame bigger than a slice
                end = ends[upto - 1] if upto > done else pos
                while pos < end:
                    stop = min(end, pos + SLICE)
                    sock.sendall(mv[pos:stop])
                    pos = stop
                done = upto
                while True:  # pongs and close between whole frames only
                    try:
                        kind, payload = control.get_nowait()
                    except queue.Empty:
                        break
                    if kind == "ping":
                        sock.sendall(control_frame(0xA, payload))
                    elif kind == "close":
                        return self._finish(cid, done, plan, payload[:2] or struct.pack("!H", 1000))
                    elif kind == "eof":
                        return self._finish(cid, done, plan, None)
                if self.stop.is_set():
                    return self._finish(cid, done, plan, struct.pack("!H", 1001))
        except OSError as e:
            self.emit(event="error", conn=cid, error=repr(e), frames=done)
            return done, None
        return self._finish(cid, done, plan, None)

    def _finish(self, cid: int, done: int, plan: Plan, closing: bytes | None) -> tuple[int, bytes | None]:
        self.emit(
            event="done",
            conn=cid,
            frames=done,
            complete=done == len(plan.ends),
            payload_bytes=plan.payload_bytes,
            t=time.monotonic_ns(),
            wall=time.time_ns(),
        )
        return done, closing

    @staticmethod
    def read_client(sock: socket.socket, buf: bytes, control) -> None:
        """Read and discard client frames (masked); hand pings and the close to the sending thread."""
        buf = bytearray(buf)
        while True:
            while True:  # parse as many whole frames as the buffer holds
                if len(buf) < 2:
                    break
                b0, b1 = buf[0], buf[1]
                n = b1 & 0x7F
                p = 2
                if n == 126:
                    if len(buf) < 4:
                        break
                    n = struct.unpack_from("!H", buf, 2)[0]
                    p = 4
                elif n == 127:
                    if len(buf) < 10:
                        break
                    n = struct.unpack_from("!Q", buf, 2)[0]
                    p = 10
                mask = b""
                if b1 & 0x80:
                    if len(buf) < p + 4:
                        break
                    mask = bytes(buf[p : p + 4])
                    p += 4
                if len(buf) < p + n:
                    break
                opcode = b0 & 0x0F
                if opcode in (0x1, 0x8, 0x9):  # text (requests), close, ping; pongs and the rest are dropped
                    payload = unmask(bytes(buf[p : p + n]), mask)
                    control.put(({0x1: "text", 0x8: "close", 0x9: "ping"}[opcode], payload))
                    if opcode == 0x8:
                        return
                del buf[: p + n]
            try:
                chunk = sock.recv(1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                control.put(("eof", b""))
                return
            buf += chunk


def rest_handler(feed: Feed):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # noqa: A002
            pass

        def do_GET(self):  # noqa: N802
            url = urlsplit(self.path)
            qs = parse_qs(url.query)
            symbol = qs.get("symbol", [""])[0]
            limit = qs.get("limit", ["100"])[0]
            if url.path not in ("/api/v3/depth", "/fapi/v1/depth"):
                status, body = 404, b'{"code":-1,"msg":"Not found."}'
            elif symbol.upper() not in feed.symbols:
                status, body = 400, INVALID_SYMBOL
            elif not limit.isdigit() or not 1 <= int(limit) <= 5000:
                status, body = 400, b'{"code":-1100,"msg":"Illegal characters found in parameter \'limit\'."}'
            else:
                status, body = 200, feed.depth_body(int(limit))
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            feed.emit(event="rest", path=url.path, symbol=symbol, limit=limit, status=status, t=time.monotonic_ns())

    return Handler


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=Path, help="one WebSocket payload a line, in send order")
    ap.add_argument("--snapshot", type=Path, help="the REST depth snapshot body")
    ap.add_argument("--build", metavar="KxN", help="build (or find) the workload of K symbols x N messages and exit")
    ap.add_argument("--rate", type=float, default=0.0, help="messages/s over the whole file (0: flat out)")
    ap.add_argument("--start-delay", type=float, default=0.0, help="seconds between handshake and first frame")
    ap.add_argument(
        "--close-when-done", action="store_true", help="send a close frame once a connection's data is sent"
    )
    ap.add_argument(
        "--sync-start",
        action="store_true",
        help="start sending once the open connections carry every stream of the file (at most 10 s)",
    )
    ap.add_argument("--ws-port", type=int, default=0)
    ap.add_argument("--rest-port", type=int, default=0)
    args = ap.parse_args()
    if args.build:
        k, n = (int(x) for x in args.build.lower().split("x"))
        print(*workload(k, n))
        return
    if not args.messages or not args.snapshot:
        ap.error("--messages and --snapshot are required")

    feed = Feed(args.messages, args.snapshot, args.rate, args.start_delay, args.close_when_done, args.sync_start)
    lsock = socket.create_server((HOST, args.ws_port), backlog=64)
    rest = ThreadingHTTPServer((HOST, args.rest_port), rest_handler(feed))
    rest.daemon_threads = True
    threading.Thread(target=rest.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    acceptor = threading.Thread(target=feed.serve, args=(lsock,), daemon=True)
    acceptor.start()

    def on_signal(signum, frame):
        feed.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    plan = next(iter(feed.plans.values()))
    feed.emit(
        event="listening",
        ws_port=lsock.getsockname()[1],
        rest_port=rest.server_address[1],
        messages=len(feed.msgs),
        streams=len(feed.available),
        symbols=len(feed.symbols),
        frame_bytes=len(plan.buf),
        payload_bytes=plan.payload_bytes,
        pid=os.getpid(),
    )
    while not feed.stop.wait(0.5):
        pass
    acceptor.join(1.0)
    for t in list(feed.conns):
        t.join(2.0)
    rest.shutdown()
    lsock.close()
    feed.emit(event="exit", t=time.monotonic_ns())


if __name__ == "__main__":
    main()
