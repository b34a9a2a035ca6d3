"""lobfast-collect against a real WebSocket + HTTP peer on 127.0.0.1 (tests/fake_exchange.py).

The fake replays real recordings as a live exchange; what it actually sent is compared with what the
collector wrote, byte for byte, and the recording is then read and rebuilt by lobfast itself.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import struct
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import zstandard

import lobfast
from lobfast.collector import BINARY

sys.path.insert(0, str(Path(__file__).parent))
from fake_exchange import BINANCE_DATA, FakeExchange  # noqa: E402

SPOT_BTC = BINANCE_DATA / "spot_btcusdt_20240808.gz"
SPOT_ETH = BINANCE_DATA / "spot_ethusdt_20240808.gz"
USDM_BTC = BINANCE_DATA / "usdm_btcusdt_20240808.gz"
SEEKABLE_MAGIC = 0x8F92EAB1


# ------------------------------------------------------------------------------ helpers
_started: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_orphans():
    """A failed assertion must not leave a collector running: kill what a test did not stop."""
    yield
    while _started:
        p = _started.pop()
        if p.poll() is None:
            p.kill()
            p.wait(5)


def start(fx: FakeExchange | None, out: Path, *args: str, venue="spot", symbols="btcusdt", **popen):
    argv = [str(BINARY), "--venue", venue, "--symbols", symbols, "--out", str(out), "--stats-every", "200ms"]
    # files rotate at multiples of --rotate since the epoch (1h by default): a test that runs across
    # a full hour would find its recording in two files.  The next multiple of 1,000,000 h is in
    # 2084; a test that asks for rotation passes its own --rotate, which comes later and wins.
    argv += ["--stats-file", str(out / "stats.json"), "--quiet", "--rotate", "1000000h"]
    if fx is not None:
        argv += ["--ws-url", fx.ws_url, "--rest-url", fx.rest_url]
    argv += list(args)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "stderr.log", "wb") as log:
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, **popen)
    _started.append(p)
    return p


def log_of(out: Path) -> str:
    return (out / "stderr.log").read_text()


def stats(out: Path) -> dict:
    try:
        return json.loads((out / "stats.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def stop(p: subprocess.Popen, limit: float = 2.0) -> float:
    t = time.monotonic()
    p.send_signal(signal.SIGTERM)
    assert p.wait(10) == 0
    took = time.monotonic() - t
    assert took < limit
    return took


def replay(p: subprocess.Popen, fx: FakeExchange, out: Path) -> None:
    """Let the collector record the whole timeline, then stop it."""
    assert fx.wait_done(30)
    assert drained(fx, out)
    stop(p)


def wait_for(pred, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return bool(pred())


def drained(fx: FakeExchange, out: Path, extra=0, timeout=20.0) -> bool:
    """The collector has received every data frame the fake sent (plus `extra` frames it sent otherwise).
    Copies received twice while a connection was being replaced are not new frames."""

    def received() -> int:
        st = stats(out)
        return st.get("messages", -1) - st.get("duplicates", 0)

    return wait_for(lambda: received() >= len(fx.sent) + extra, timeout)


def settled(fx: FakeExchange, out: Path, timeout=20.0) -> bool:
    """The timeline is over and the collector has received nothing new for 0.6 s (during a switch-over a frame
    handed to a closing connection may never arrive, so the sent count is not a target)."""
    last, since = -1, time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = stats(out).get("messages", -1)
        if n != last:
            last, since = n, time.monotonic()
        elif fx.done and time.monotonic() - since > 0.6:
            return True
        time.sleep(0.05)
    return False


def files(out: Path, symbol="btcusdt", venue="spot") -> list[Path]:
    return sorted((out / venue / symbol).glob("*.zst"))


def lines_of(path: Path) -> list[str]:
    with open(path, "rb") as f:
        data = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True).read()
    text = data.decode()
    assert text == "" or text.endswith("\n")
    return text.splitlines()


def payloads(paths) -> list[str]:
    out = []
    for p in paths:
        for line in lines_of(p):
            ns, msg = line.split(" ", 1)
            assert int(ns) > 0
            out.append(msg)
    return out


def ws_payloads(paths) -> list[str]:
    return [m for m in payloads(paths) if m.startswith('{"stream"')]


def events(paths) -> list[dict]:
    return [json.loads(m)["lobfast"] for m in payloads(paths) if m.startswith('{"lobfast"')]


def snapshots(paths) -> list[dict]:
    return [json.loads(m) for m in payloads(paths) if m.startswith('{"lastUpdateId"')]


def sent_payloads(fx: FakeExchange, symbol="btcusdt") -> list[str]:
    return [p for _, p in fx.sent if isinstance(p, str) and p.startswith(f'{{"stream":"{symbol}@')]


def seek_table_frames(path: Path) -> int:
    """Number of frames in the zstd seekable-format table at the end of `path` (fails if there is none)."""
    data = path.read_bytes()
    n, desc, magic = struct.unpack("<IBI", data[-9:])
    assert magic == SEEKABLE_MAGIC, f"{path} has no seek table"
    assert desc == 0
    size = 8 * n + 9
    skippable, frame_size = struct.unpack("<II", data[-size - 8 : -size])
    assert skippable == 0x184D2A5E and frame_size == size
    entries = struct.unpack(f"<{2 * n}I", data[-size:-9])
    assert sum(entries[0::2]) == len(data) - size - 8  # the compressed sizes add up to the data before it
    return n


def assert_exactly_once(fx: FakeExchange, out: Path, symbol="btcusdt", venue="spot"):
    """Every payload the fake sent to anybody is recorded once (a payload sent on two connections during a
    switch-over is one message), in the order the exchange produced it."""
    rec = ws_payloads(files(out, symbol, venue))
    sent = list(dict.fromkeys(sent_payloads(fx, symbol)))  # the timeline order, duplicates across conns removed
    assert Counter(rec) == Counter(sent), (len(rec), len(sent))
    assert len(rec) == len(set(rec))
    return rec


def book_agrees(paths):
    md = lobfast.read_binance(paths)
    check = lobfast.check_against_quotes(md.depth, md.quotes)
    assert check.ok, check
    return md, check


# ------------------------------------------------------------------------------ the normal case
def test_records_every_message_byte_identical_and_the_book_agrees(tmp_path):
    out = tmp_path / "rec"
    with FakeExchange("spot", [SPOT_BTC], speed=None, rate=4000, max_messages=12000) as fx:
        replay(start(fx, out), fx, out)
    st = stats(out)
    assert st["final"] and st["messages"] == len(fx.sent) == 12000 and st["gaps"] == 0
    assert st["snapshots"] == 1 and st["malformed"] == 0 and st["duplicates"] == 0
    fs = files(out)
    assert len(fs) == 1 and seek_table_frames(fs[0]) >= 3  # ~1 s frames over a 3 s replay
    assert ws_payloads(fs) == [p for _, p in fx.sent]  # byte-identical and in order
    # the snapshot recorded is the fake's answer, byte for byte, after the first diff
    (req,) = [r for r in fx.rest_log if r.limit == 1000]
    snap = snapshots(fs)
    assert len(snap) == 1 and snap[0]["lastUpdateId"] == req.last_update_id
    kinds = [e["event"] for e in events(fs)]
    assert kinds[:2] == ["connect", "snapshot_requested"] and "stop" in kinds
    lines = [ln.split(" ", 1) for ln in lines_of(fs[0])]
    stamps = [int(t) for t, _ in lines]
    assert stamps == sorted(stamps)
    md, check = book_agrees(fs)
    assert md.stats["gaps"] == 0 and md.stats["resets"] == 1 and check.compared > 100
    # the file is seekable by time through lobfast's index
    ti = lobfast.TimeIndex(fs[0])
    assert ti.rows == len(lines)


def test_many_symbols_split_over_connections(tmp_path):
    out = tmp_path / "rec"
    with FakeExchange("spot", [SPOT_BTC, SPOT_ETH], speed=None, rate=4000, max_messages=8000) as fx:
        replay(start(fx, out, "--max-streams", "2", symbols="btcusdt,ethusdt"), fx, out)
    # 6 streams at most 2 per connection: 3 connections, each with its own URL
    assert len(fx.connections) == 3 and all(len(c.streams) == 2 for c in fx.connections)
    for sym in ("btcusdt", "ethusdt"):
        rec, sent = ws_payloads(files(out, sym)), sent_payloads(fx, sym)
        # connections deliver independently: each stream keeps its order, streams interleave freely
        assert Counter(rec) == Counter(sent)
        for stream in ("depth@100ms", "trade", "bookTicker"):
            tag = f'{{"stream":"{sym}@{stream}"'
            assert [m for m in rec if m.startswith(tag)] == [m for m in sent if m.startswith(tag)]
        book_agrees(files(out, sym))


def test_long_stream_lists_are_split_so_every_url_is_whole(tmp_path):
    """60 symbols x 3 streams: the URLs would pass what libwebsockets sends whole (~2 KiB)."""
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(10)
    port = srv.getsockname()[1]
    syms = [f"s{i:03d}usdt" for i in range(60)]
    out = tmp_path / "rec"
    p = start(
        None, out, "--ws-url", f"ws://127.0.0.1:{port}", "--rest-url", "http://127.0.0.1:9", symbols=",".join(syms)
    )
    streams, lines = [], []
    try:
        while len(streams) < 180:
            conn, _ = srv.accept()
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
            line = data.split(b"\r\n")[0].decode()
            lines.append(line)
            assert line.startswith("GET /stream?streams=") and line.endswith(" HTTP/1.1")
            streams += line[len("GET /stream?streams=") : -len(" HTTP/1.1")].split("/")
    finally:
        srv.close()
        p.kill()
        p.wait()
    assert sorted(streams) == sorted(f"{s}@{k}" for s in syms for k in ("depth@100ms", "trade", "bookTicker"))
    assert len(lines) >= 2 and all(len(ln) < 2000 for ln in lines)


def test_usdm_routes_public_and_market(tmp_path):
    out = tmp_path / "rec"
    with FakeExchange("usdm", [USDM_BTC], speed=None, rate=4000, max_messages=8000) as fx:
        replay(start(fx, out, "--streams", "depth@0ms,trade,bookTicker", venue="usdm"), fx, out)
    routes = sorted((c.route, tuple(c.streams)) for c in fx.connections)
    assert routes == [("market", ("btcusdt@trade",)), ("public", ("btcusdt@depth@0ms", "btcusdt@bookTicker"))]
    assert fx.misrouted == []
    fs = files(out, venue="usdm")
    assert ws_payloads(fs) and Counter(ws_payloads(fs)) == Counter(sent_payloads(fx))
    assert [r.path.split("?")[0] for r in fx.rest_log] == ["/fapi/v1/depth"]
    md, _ = book_agrees(fs)
    assert md.market == "usdm"


# ------------------------------------------------------------------------------ faults
@pytest.mark.parametrize("abrupt", [False, True])
def test_reconnects_after_a_drop_and_resyncs_with_a_new_snapshot(tmp_path, abrupt):
    out = tmp_path / "rec"
    with FakeExchange("spot", [SPOT_BTC], speed=None, rate=3000, max_messages=9000) as fx:
        p = start(fx, out)
        assert fx.wait(lambda: fx.emitted > 2000, 20)
        fx.drop(abrupt=abrupt)
        assert fx.wait_connections(2, 10)
        assert fx.wait_done(30)
        assert drained(fx, out)
        stop(p)
    st = stats(out)
    assert st["reconnects"] >= 1 and st["gaps"] >= 1 and st["snapshots"] >= 2
    fs = files(out)
    assert_exactly_once(fx, out)
    kinds = [e["event"] for e in events(fs)]
    assert "disconnect" in kinds and kinds.count("connect") == 2 and "gap" in kinds
    reasons = [e.get("reason") for e in events(fs) if e["event"] == "snapshot_requested"]
    assert reasons[0] == "first diff" and "gap" in reasons
    md, _ = book_agrees(fs)
    assert md.stats["gaps"] >= 1 and md.stats["resets"] >= 2  # the break is flagged, then the book is rebuilt


def test_injected_gap_leads_to_a_new_snapshot(tmp_path):
    out = tmp_path / "rec"
    with FakeExchange("spot", [SPOT_BTC], speed=None, rate=3000, max_messages=9000) as fx:
        p = start(fx, out)
        assert fx.wait(lambda: fx.emitted > 2000, 20)
        fx.inject_gap("btcusdt", 2)
        assert fx.wait_done(30)
        assert drained(fx, out)
        stop(p)
    fs = files(out)
    gaps = [e for e in events(fs) if e["event"] == "gap"]
    assert len(gaps) == 1 and gaps[0]["U"] > gaps[0]["last_u"] + 1
    assert len(snapshots(fs)) == 2
    assert ws_payloads(fs) == sent_payloads(fx)
    md, _ = book_agrees(fs)
    assert md.stats["gaps"] == 1 and md.stats["resets"] == 2


def test_server_shutdown_switches_over_without_loss(tmp_path):
    out = tmp_path / "rec"
    with FakeExchange("spot", [SPOT_BTC], speed=None, rate=3000, max_messages=9000) as fx:
        p = start(fx, out)
        assert fx.wait(lambda: fx.emitted > 2000, 20)
        fx.server_shutdown(close_after=3.0)
        assert fx.wait_connections(2, 10)
        assert fx.wait_done(30)
        assert settled(fx, out)
        stop(p)
    first, second = fx.connections[:2]
    assert second.opened < first.closed  # make-before-break: the new one was up before the old one went
    st = stats(out)
    assert st["switchovers"] == 1 and st["gaps"] == 0 and st["duplicates"] > 0
    assert_exactly_once(fx, out)
    shutdown = payloads(sorted((out / "spot" / "_collector").glob("*.zst")))
    assert any('"serverShutdown"' in m for m in shutdown)
    md, _ = book_agrees(files(out))
    assert md.stats["gaps"] == 0 and md.stats["resets"] == 1


def test_connection_lifetime_make_before_break_repeatedly(tmp_path):
    out = tmp_path / "rec"
    with FakeExchange("spot", [SPOT_BTC], speed=None, rate=3000, max_messages=12000) as fx:
        p = start(fx, out, "--conn-lifetime", "1s")
        assert fx.wait_done(30)
        assert settled(fx, out)
        stop(p)
    st = stats(out)
    assert st["switchovers"] >= 2 and st["gaps"] == 0
    assert_exactly_once(fx, out)
    md, _ = book_agrees(files(out))
    assert md.stats["gaps"] == 0


class RefusingExchange(FakeExchange):
    """Answers new handshakes with 503 while `refuse` is set; open connections go on."""

    refuse = False

    def _process_request(self, connection, request):
        if self.refuse:
            self._rejected.append((request.path, 503))
            return connection.respond(503, "busy\n")
        return super()._process_request(connection, request)


def test_a_failing_replacement_backs_off_while_the_old_connection_records(tmp_path):
    out = tmp_path / "rec"
    with RefusingExchange("spot", [SPOT_BTC], speed=None, rate=1000, max_messages=6000) as fx:
        p = start(fx, out, "--conn-lifetime", "1s")
        assert fx.wait_connections(1, 10)
        fx.refuse = True
        time.sleep(4)
        tries = len(fx.rejected)
        fx.refuse = False
        # a switch-over follows: frames handed to the closing connection need not arrive
        assert fx.wait_done(30) and settled(fx, out)
        stop(p)
    # 0.5 s, 1 s, 2 s ... less up to half at random: a handful in 4 s, not one every 100 ms tick
    assert 2 <= tries <= 7
    assert "the replacement failed" in log_of(out)
    assert stats(out)["gaps"] == 0
    # the old connection recorded throughout: every message once, each stream in order (across
    # streams the order may differ where the replacement, once accepted, overlapped the old one)
    rec = assert_exactly_once(fx, out)
    sent = list(dict.fromkeys(sent_payloads(fx)))
    for stream in {json.loads(m)["stream"] for m in sent}:
        tag = f'"stream":"{stream}"'
        assert [m for m in rec if tag in m] == [m for m in sent if tag in m], stream


def test_fragmented_messages_are_reassembled(tmp_path):
    out = tmp_path / "rec"
    with FakeExchange("spot", [SPOT_BTC], speed=None, rate=3000, max_messages=3000, start=False) as fx:
        fx.fragment = 37
        fx.start()
        replay(start(fx, out), fx, out)
    assert ws_payloads(files(out)) == [p for _, p in fx.sent]


def test_stall_is_detected_and_the_connection_replaced(tmp_path):
    out = tmp_path / "rec"
    with FakeExchange("spot", [SPOT_BTC], speed=None, rate=1000, max_messages=6000) as fx:
        p = start(fx, out, "--stall-timeout", "1s")
        assert fx.wait(lambda: fx.emitted > 1000, 20)
        fx.stall(30)
        assert fx.wait_connections(2, 10)
        assert fx.wait_done(30)
        assert drained(fx, out)
        stop(p)
    assert "no data for 1 s" in log_of(out)
    assert_exactly_once(fx, out)
    book_agrees(files(out))


def test_malformed_frames_are_kept_counted_and_harmless(tmp_path):
    out = tmp_path / "rec"
    bad = ["not json at all", '{"stream":"btcusdt@trade","data":{"e":"trade"', b"\x00\xffbinary", '{"a":1}\n{"b":2}']
    with FakeExchange("spot", [SPOT_BTC], speed=None, rate=2000, max_messages=3000) as fx:
        p = start(fx, out)
        assert fx.wait(lambda: fx.emitted > 500, 20)
        for b in bad:
            fx.send_raw(b)
        fx.send_raw('{"result":null,"id":1}')
        assert fx.wait_done(30)
        assert drained(fx, out)
        stop(p)
    st = stats(out)
    assert st["malformed"] == 4 and st["unexpected"] == 1
    coll = sorted((out / "spot" / "_collector").glob("*.zst"))
    mal = [e for e in events(coll) if e["event"] == "malformed"]
    import base64

    assert [base64.b64decode(e["base64"]) for e in mal] == [b if isinstance(b, bytes) else b.encode() for b in bad]
    assert '{"result":null,"id":1}' in payloads(coll)
    assert ws_payloads(files(out)) == [m for m in sent_payloads(fx) if m not in bad]
    book_agrees(files(out))


def test_rotation_keeps_every_message_once_across_files(tmp_path):
    out = tmp_path / "rec"
    with FakeExchange("spot", [SPOT_BTC], speed=None, rate=3000, max_messages=10000) as fx:
        replay(start(fx, out, "--rotate", "1s"), fx, out)
    fs = files(out)
    assert len(fs) >= 3
    for f in fs:
        seek_table_frames(f)
    assert ws_payloads(fs) == sent_payloads(fx)
    ti = lobfast.TimeIndex(out / "spot" / "btcusdt")
    assert ti.rows == sum(len(lines_of(f)) for f in fs)
    book_agrees(fs)


def test_max_file_size_starts_new_files(tmp_path):
    out = tmp_path / "rec"
    with FakeExchange("spot", [SPOT_BTC], speed=None, rate=3000, max_messages=6000) as fx:
        replay(start(fx, out, "--max-file-size", "64KB", "--frame-bytes", "16KB"), fx, out)
    fs = files(out)
    assert len(fs) >= 3 and all(f.stat().st_size < 64_000 + 40_000 for f in fs)
    assert ws_payloads(fs) == sent_payloads(fx)


def test_kill_9_leaves_a_readable_file(tmp_path):
    out = tmp_path / "rec"
    with FakeExchange("spot", [SPOT_BTC], speed=None, rate=2000, max_messages=20000) as fx:
        p = start(fx, out)
        assert fx.wait(lambda: fx.emitted > 6000, 30)
        time.sleep(1.5)  # the frames of the first seconds are closed
        p.send_signal(signal.SIGKILL)
        p.wait(5)
        sent = sent_payloads(fx)
    fs = files(out)
    rec = ws_payloads(fs)  # every whole frame decompresses
    assert rec == sent[: len(rec)]
    assert len(rec) >= len(sent) - 2000 * 2  # at most the frame being filled (~1 s at 2000 msg/s) was lost
    md = lobfast.read_binance(fs)  # no seek table: read as a plain multi-frame stream
    assert len(md.trades) > 0


def test_full_disk_stops_with_a_clear_error_and_an_intact_file(tmp_path):
    out = tmp_path / "rec"
    limit = 200_000

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    with FakeExchange("spot", [SPOT_BTC], speed=None, rate=4000, max_messages=20000) as fx:
        p = start(fx, out, preexec_fn=small_files)
        assert p.wait(30) == 1
    err = log_of(out)
    assert "error:" in err and "File too large" in err and str(out) in err
    fs = files(out)
    assert len(fs) == 1 and fs[0].stat().st_size <= limit
    rec = ws_payloads(fs)  # every frame written is whole: the partial one was cut back
    assert len(rec) > 1000 and rec == sent_payloads(fx)[: len(rec)]
    lobfast.read_binance(fs)


# ------------------------------------------------------------------------------ REST
def test_unknown_symbol_is_a_clear_error(tmp_path):
    out = tmp_path / "rec"
    with FakeExchange("spot", [SPOT_BTC], speed=None, rate=1000, max_messages=1000) as fx:
        p = start(fx, out, symbols="btcusdt,nosuchcoin")
        assert p.wait(10) == 2
    err = log_of(out)
    assert "nosuchcoin" in err and "Invalid symbol." in err and "-1121" in err


def test_server_errors_are_retried_with_backoff(tmp_path):
    out = tmp_path / "rec"
    # two failures wait 1-2 s and 2-4 s at random: a timeline of 12 s outlasts them
    with FakeExchange("spot", [SPOT_BTC], speed=None, rate=1000, max_messages=12000) as fx:
        fx.inject_rest_error(503, count=2)
        replay(start(fx, out), fx, out)
    log = fx.rest_log
    assert [r.status for r in log] == [503, 503, 200]
    assert (log[2].time_ns - log[1].time_ns) / 1e9 >= 0.9  # 2 s less up to half at random
    fs = files(out)
    failed = [e for e in events(fs) if e["event"] == "snapshot_failed"]
    assert [e["status"] for e in failed] == [503, 503]
    assert len(snapshots(fs)) == 1
    book_agrees(fs)


@pytest.mark.parametrize(
    "status, body, content_type, reason",
    [
        (403, "", "text/html", "HTTP 403"),  # Binance's WAF limit
        (404, '{"code":-1,"msg":"Not found"}', "application/json", "HTTP 404"),
        (200, "<html><body>Down for maintenance</body></html>", "text/html", "not a depth snapshot"),
    ],
)
def test_a_failed_first_snapshot_is_asked_again_until_the_book_is_known(tmp_path, status, body, content_type, reason):
    out = tmp_path / "rec"
    with FakeExchange("spot", [SPOT_BTC], speed=None, rate=1000, max_messages=6000) as fx:
        # the first full snapshot fails (the 5-level probe at start is answered as usual)
        fx.inject_rest_error(status, body=body, content_type=content_type, limit=1000)
        p = start(fx, out, "--snapshot-every", "2s")
        assert wait_for(lambda: stats(out).get("snapshots", 0) >= 1 and stats(out).get("books_unsynced") == 0)
        st = stats(out)
        assert st["snapshot_failures_by_status"] == {str(status): 1}
        assert st["last_snapshot_failure"]["symbol"] == "btcusdt"
        assert st["last_snapshot_failure"]["status"] == status and reason in st["last_snapshot_failure"]["reason"]
        assert fx.wait_done(30) and drained(fx, out)
        stop(p)
    full = [r for r in fx.rest_log if r.limit == 1000]
    assert full[0].status == status and full[1].status == 200
    assert (full[1].time_ns - full[0].time_ns) / 1e9 >= 0.9  # backoff: 2 s less up to half at random
    fs = files(out)
    (failed,) = [e for e in events(fs) if e["event"] == "snapshot_failed"]
    assert failed["status"] == status and reason in failed["reason"]
    assert snapshots(fs)
    assert "depth snapshot failed: " in log_of(out) and "retrying in" in log_of(out)
    md, _ = book_agrees(fs)
    assert md.stats["resets"] >= 1 and len(md.depth) > 1000


def test_a_snapshot_redirect_is_refused_and_asked_again(tmp_path):
    out = tmp_path / "rec"
    path = "/api/v3/depth?symbol=BTCUSDT&limit=1000"
    with (
        FakeExchange("spot", [SPOT_BTC], speed=None, rate=1000, max_messages=6000) as fx,
        FakeExchange("spot", [SPOT_BTC], autostart=False) as other,
    ):
        fx.inject_rest_error(302, headers=[("Location", other.rest_url + path)], limit=1000)
        replay(start(fx, out), fx, out)
        assert other.rest_log == []  # the other host was never asked
    full = [r for r in fx.rest_log if r.limit == 1000]
    assert [r.status for r in full] == [302, 200]
    fs = files(out)
    (failed,) = [e for e in events(fs) if e["event"] == "snapshot_failed"]
    assert failed["status"] == 302 and failed["reason"] == f"HTTP 302 redirect to '{other.rest_url + path}' refused"
    assert [s["lastUpdateId"] for s in snapshots(fs)] == [full[1].last_update_id]
    st = stats(out)
    assert st["snapshot_failures_by_status"] == {"302": 1} and st["last_snapshot_failure"]["status"] == 302
    book_agrees(fs)


def test_a_waf_refusal_of_the_start_probe_is_retried_not_fatal(tmp_path):
    out = tmp_path / "rec"
    with FakeExchange("spot", [SPOT_BTC], speed=None, rate=1000, max_messages=3000, autostart=False) as fx:
        fx.inject_rest_error(403, body="<html>Forbidden</html>", content_type="text/html", limit=5)
        p = start(fx, out)
        assert fx.wait(lambda: [r.status for r in fx.rest_log] == [403, 200], 20)  # the probe, asked again
        assert p.poll() is None
        fx.start_replay()
        assert wait_for(lambda: stats(out).get("snapshots") == 1 and stats(out).get("books_unsynced") == 0)
        assert stats(out)["snapshot_failures_by_status"] == {"403": 1}
        assert fx.wait_done(30) and drained(fx, out)
        stop(p)
    book_agrees(files(out))


class RedirectingExchange(FakeExchange):
    """Answers WebSocket handshakes with a redirect to `to` while it is set."""

    to: str | None = None

    def _process_request(self, connection, request):
        if self.to is not None:
            with self._lock:
                self._rejected.append((request.path, 302))
            response = connection.respond(302, "")
            response.headers["Location"] = self.to + request.path
            return response
        return super()._process_request(connection, request)


def test_a_stream_redirect_is_not_followed(tmp_path):
    out = tmp_path / "rec"
    with (
        RedirectingExchange("spot", [SPOT_BTC], speed=None, rate=1000, max_messages=3000) as fx,
        FakeExchange("spot", [SPOT_BTC], autostart=False) as other,
    ):
        fx.to = other.ws_url
        p = start(fx, out)
        assert fx.wait(lambda: len(fx.rejected) >= 2, 20)  # refused, then asked again after the backoff
        assert other.connections == []
        fx.to = None
        assert fx.wait_done(30) and drained(fx, out)
        stop(p)
    assert other.connections == [] and "connection failed" in log_of(out)
    assert ws_payloads(files(out)) == sent_payloads(fx)


def test_peer_text_is_escaped_in_the_log_and_the_events(tmp_path):
    out = tmp_path / "rec"
    reason = b'bye\n\x1b[2J"gone"\\\xff\x00'
    with FakeExchange("spot", [SPOT_BTC], speed=None, rate=1000, max_messages=5000) as fx:
        p = start(fx, out)
        assert fx.wait(lambda: fx.emitted > 500, 20)
        fx.send_raw("\x1b]0;title\x07 not json")  # the parser's message quotes the frame
        assert wait_for(lambda: stats(out).get("malformed") == 1)
        fx.close_raw(4001, reason)
        assert fx.wait_connections(2, 10)
        assert fx.wait_done(30)
        assert settled(fx, out)
        stop(p)
    log = (out / "stderr.log").read_bytes()
    assert all(b == 0x0A or 0x20 <= b < 0x7F for b in log), "the log holds bytes that are not printable ASCII"
    said = r'the server closed it (code 4001: bye\x0a\x1b[2J"gone"\\\xff\x00)'
    assert said.encode() in log
    assert rb"found '\x1b]0;title\x07 not json'" in log
    coll = sorted((out / "spot" / "_collector").glob("*.zst"))
    for recorded in (events(coll), events(files(out))):  # every event line is valid JSON
        gone = [e for e in recorded if e["event"] == "disconnect"]
        assert gone[0]["conn"] == 1 and gone[0]["detail"] == said
    (bad,) = [e for e in events(coll) if e["event"] == "malformed"]
    assert bad["reason"] == r"column 1: expected a JSON object, found '\x1b]0;title\x07 not json'"


def test_rate_limit_pauses_for_retry_after(tmp_path):
    out = tmp_path / "rec"
    # 25 weight per request, 30 per 2 s at the fake: every other request is refused with Retry-After: 1
    with FakeExchange(
        "spot", [SPOT_BTC], speed=None, rate=1000, max_messages=7000, weight_limit=30, weight_window=2.0, retry_after=1
    ) as fx:
        replay(start(fx, out, "--snapshot-limit", "500", "--snapshot-every", "1s"), fx, out)
    log = fx.rest_log
    limited = [i for i, r in enumerate(log) if r.status == 429]
    assert limited and any(r.status == 200 for r in log[limited[0] :])
    for i in limited:
        if i + 1 < len(log):
            assert (log[i + 1].time_ns - log[i].time_ns) / 1e9 >= 0.95  # Retry-After obeyed
    assert "rate limit hit (HTTP 429): no requests for 1 s" in log_of(out)
    book_agrees(files(out))


def test_snapshots_stay_inside_the_weight_budget(tmp_path):
    out = tmp_path / "rec"
    with FakeExchange("spot", [SPOT_BTC], speed=None, rate=3000, max_messages=9000) as fx:
        # 60 weight/min: after the first snapshot (50) the next one waits ~50 s, far beyond this test
        replay(start(fx, out, "--rest-weight", "60", "--snapshot-every", "1s"), fx, out)
    weights = [r for r in fx.rest_log if r.status == 200]
    assert len(weights) == 1


def test_periodic_snapshots(tmp_path):
    out = tmp_path / "rec"
    with FakeExchange("spot", [SPOT_BTC], speed=None, rate=2000, max_messages=8000) as fx:
        replay(start(fx, out, "--snapshot-every", "1s"), fx, out)
    fs = files(out)
    reasons = [e["reason"] for e in events(fs) if e["event"] == "snapshot_requested"]
    assert reasons[0] == "first diff" and reasons.count("periodic") >= 2
    md, _ = book_agrees(fs)
    assert md.stats["gaps"] == 0


# ------------------------------------------------------------------------------ bad set-up
def test_unwritable_output_is_refused_before_connecting(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with FakeExchange("spot", [SPOT_BTC], speed=None, rate=1000, max_messages=100) as fx:
        argv = [str(BINARY), "--venue", "spot", "--symbols", "btcusdt", "--out", str(blocker / "sub")]
        r = subprocess.run(argv + ["--ws-url", fx.ws_url, "--rest-url", fx.rest_url], capture_output=True, text=True)
        time.sleep(0.3)
        assert fx.connections == [] and fx.rest_log == []
    assert r.returncode == 2 and "Not a directory" in r.stderr and str(blocker) in r.stderr


def test_unreachable_host_backs_off_without_spinning(tmp_path):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    out = tmp_path / "rec"
    url = f"ws://127.0.0.1:{port}"
    p = start(None, out, "--ws-url", url, "--rest-url", f"http://127.0.0.1:{port}")
    time.sleep(4)
    cpu = stats(out).get("cpu_s", 99)
    stop(p)
    err = log_of(out)
    attempts = err.count("reconnecting in")
    assert 2 <= attempts <= 6  # 0.5 s, 1 s, 2 s ... with jitter: a handful in 4 s, not thousands
    assert "connection failed" in err and cpu < 0.5


@pytest.mark.parametrize(
    "args, message",
    [
        (["--venue", "binance"], "--venue must be spot or usdm"),
        (["--streams", "depth@7ms"], "is not a spot stream"),
        (["--rotate", "soon"], "is not a duration"),
        (["--max-file-size", "big"], "is not a size"),
        (["--ws-url", "ftp://x"], "is not a wss:// or ws:// URL"),
        (["--symbols", "btc usdt"], "is not a symbol name"),
        (["--symbols", "btcusdt,BTCUSDT"], "is given twice"),
        (["--snapshot-limit", "7", "--venue", "usdm"], "one of 5, 10, 20"),
        (["--bogus"], "unknown or incomplete option"),
    ],
)
def test_bad_arguments(tmp_path, args, message):
    base = {"--venue": "spot", "--symbols": "btcusdt", "--out": str(tmp_path)}
    for k, v in zip(args[::2], args[1::2]):
        base[k] = v
    argv = [str(BINARY)] + [x for kv in base.items() for x in kv]
    if args == ["--bogus"]:
        argv.append("--bogus")
    r = subprocess.run(argv, capture_output=True, text=True)
    assert r.returncode == 2 and message in r.stderr


def test_one_collector_per_directory(tmp_path):
    out = tmp_path / "rec"
    with FakeExchange("spot", [SPOT_BTC], speed=None, rate=1000, max_messages=4000) as fx:
        p = start(fx, out)
        assert wait_for(lambda: stats(out).get("messages", 0) > 0)
        q = start(fx, tmp_path / "other", "--out", str(out))
        assert q.wait(10) == 2
        assert f"(pid {p.pid}) is recording into" in log_of(tmp_path / "other")
        stop(p)


# ------------------------------------------------------------------------------ Python API and CLI
def test_python_collector_start_stats_stop_attach(tmp_path):
    with FakeExchange("spot", [SPOT_BTC], speed=None, rate=2000, max_messages=4000) as fx:
        c = lobfast.Collector(
            "spot", ["BTCUSDT"], tmp_path, ws_url=fx.ws_url, rest_url=fx.rest_url, stats_every="200ms"
        )
        c.start()
        assert c.running and "running" in repr(c)
        again = lobfast.Collector.attach(tmp_path, "spot")
        assert again.pid == c.pid and again.running
        assert fx.wait_done(30)
        assert wait_for(lambda: c.stats().get("messages") == len(fx.sent))
        assert c.stop() == 0 and not c.running
    assert ws_payloads(c.files("btcusdt")) == [p for _, p in fx.sent]
    assert c.stats()["final"]
    assert not (tmp_path / "spot" / "collector.pid").exists()  # removed on a clean exit
    with pytest.raises(lobfast.LobError, match="no recorder is running"):
        lobfast.Collector.attach(tmp_path, "spot")


def test_a_stale_pid_never_gets_a_signal(tmp_path):
    """collector.pid names a recorder only while that process is lobfast-collect holding the file's lock."""
    bystander = subprocess.Popen(["sleep", "60"])
    _started.append(bystander)
    stale = tmp_path / "stale"
    (stale / "spot").mkdir(parents=True)
    (stale / "spot" / "collector.pid").write_text(f"{bystander.pid}\n")  # a killed recorder's pid, reused
    with pytest.raises(lobfast.LobError, match=f"no recorder is running in .*pid {bystander.pid} .* another program"):
        lobfast.Collector.attach(stale, "spot")
    out = tmp_path / "rec"
    with FakeExchange("spot", [SPOT_BTC], speed=None, rate=1000, max_messages=3000) as fx:
        p = start(fx, out)
        assert wait_for(lambda: stats(out).get("messages", 0) > 0)
        # a live lobfast-collect that records elsewhere is not this directory's recorder
        (stale / "spot" / "collector.pid").write_text(f"{p.pid}\n")
        with pytest.raises(lobfast.LobError, match="does not hold the lock"):
            lobfast.Collector.attach(stale, "spot")
        attached = lobfast.Collector.attach(out, "spot")
        assert attached.pid == p.pid and attached.running
        stop(p)  # it goes by other means; then its pid is reused
    attached.pid = bystander.pid
    assert not attached.running
    with pytest.raises(lobfast.LobError, match=f"no recorder is running .*pid {bystander.pid} was not signalled"):
        attached.stop()
    assert not (out / "spot" / "collector.pid").exists()
    time.sleep(0.2)  # a signal sent would have landed by now
    assert bystander.poll() is None


def test_python_collector_reports_the_collectors_error(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(lobfast.LobError, match="Not a directory"):
        lobfast.Collector("spot", "btcusdt", tmp_path / "f" / "x").start()
    with pytest.raises(TypeError, match="unknown option"):
        lobfast.Collector("spot", "btcusdt", tmp_path, rotation="1h")


def test_cli_collect_runs_the_collector(tmp_path):
    r = subprocess.run([sys.executable, "-m", "lobfast.cli", "collect", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--venue spot|usdm" in r.stdout
    r = subprocess.run(
        [sys.executable, "-m", "lobfast.cli", "collect", "--venue", "spot"], capture_output=True, text=True
    )
    assert r.returncode == 2 and "are required" in r.stderr
    assert os.access(BINARY, os.X_OK)


def test_python_collector_without_the_recorder_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(lobfast.collector, "BINARY", tmp_path / "lobfast-collect")
    with pytest.raises(lobfast.LobError, match="built without its recorder.*libwebsockets-dev.*LOBFAST_COLLECTOR=1"):
        lobfast.Collector("spot", "btcusdt", tmp_path / "out").start()
    assert not (tmp_path / "out").exists()  # refused before anything was made
    (tmp_path / "lobfast-collect").write_bytes(b"\x7fELF")
    with pytest.raises(lobfast.LobError, match="lobfast-collect is not executable"):
        lobfast.Collector("spot", "btcusdt", tmp_path / "out").start()
    (tmp_path / "lobfast-collect").chmod(0o755)  # executable, yet not a program
    with pytest.raises(lobfast.LobError, match="cannot start .*lobfast-collect: .*Exec format error"):
        lobfast.Collector("spot", "btcusdt", tmp_path / "out").start()
