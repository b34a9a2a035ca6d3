"""The fake Binance exchange (tests/fake_exchange.py) against a plain websockets client and urllib on 127.0.0.1.

Expectations are computed here from the recordings themselves (bridging, book rebuild), not with the fake's code.
"""

from __future__ import annotations

import functools
import json
import time
import urllib.error
import urllib.request
from decimal import Decimal

import pytest
from conftest import SPOT_BTC_0808, SPOT_BTC_0809, SPOT_ETH_0808, USDM_BTC_0808, raw_lines
from fake_exchange import FakeExchange, build_timeline
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus
from websockets.sync.client import connect

SPOT_STREAMS = ("btcusdt@depth@100ms", "btcusdt@trade", "btcusdt@bookTicker")


@functools.lru_cache(maxsize=8)
def records(path) -> list[tuple[int, bytes]]:
    out = []
    for line in raw_lines(path):
        ts, payload = line.rstrip(b"\n").split(b" ", 1)
        out.append((int(ts), payload))
    return out


def stream_of(payload: bytes) -> str | None:
    # every frame in the recordings starts with its stream name; the snapshot body has none
    if payload.startswith(b'{"stream":"'):
        return payload[11 : payload.index(b'"', 11)].decode()
    return None


def recorded_snapshot(path) -> tuple[int, bytes]:
    """(index of the line, body) of the recording's REST snapshot."""
    return next((i, p) for i, (_, p) in enumerate(records(path)) if p.startswith(b'{"lastUpdateId"'))


def bridge_line(path, venue: str) -> int:
    """Index of the line holding the diff that bridges the recorded snapshot."""
    last = json.loads(recorded_snapshot(path)[1])["lastUpdateId"]
    for i, (_, p) in enumerate(records(path)):
        s = stream_of(p)
        if s is None or "@depth" not in s:
            continue
        d = json.loads(p)["data"]
        if venue == "spot" and d["u"] > last:
            assert d["U"] <= last + 1 <= d["u"]
            return i
        if venue == "usdm" and d["u"] >= last:
            assert d["U"] <= last <= d["u"]
            return i
    raise AssertionError("no bridging diff")


def expected_frames(path, venue: str, max_messages: int, streams) -> list[bytes]:
    """The frames a client subscribed from the start receives: the recording from the bridging diff on."""
    timeline = [p for _, p in records(path)[bridge_line(path, venue) :] if not p.startswith(b'{"lastUpdateId"')]
    return [p for p in timeline[:max_messages] if stream_of(p) in streams]


def http_get(url: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, dict(e.headers), e.read()


def recv_n(ws, n: int, timeout: float = 5.0) -> list:
    return [ws.recv(timeout=timeout, decode=False) for _ in range(n)]


def assert_silent(ws, seconds: float = 0.2) -> None:
    with pytest.raises(TimeoutError):
        ws.recv(timeout=seconds)


def rebuild(path, venue: str, up_to_u: int | None = None) -> tuple[dict, dict]:
    """Recorded snapshot + recorded diffs (from the bridging one) up to and including u == up_to_u."""
    snap = json.loads(recorded_snapshot(path)[1])
    bids = {Decimal(p): [p, q] for p, q in snap["bids"]}
    asks = {Decimal(p): [p, q] for p, q in snap["asks"]}
    for _, p in records(path)[bridge_line(path, venue) :]:
        s = stream_of(p)
        if s is None or "@depth" not in s:
            continue
        d = json.loads(p)["data"]
        apply_diff(bids, asks, d)
        if d["u"] == up_to_u:
            break
    return bids, asks


def apply_diff(bids: dict, asks: dict, d: dict) -> None:
    for side, levels in ((bids, d["b"]), (asks, d["a"])):
        for price, qty in levels:
            if Decimal(qty) == 0:
                side.pop(Decimal(price), None)
            else:
                side[Decimal(price)] = [price, qty]


def top(bids: dict, asks: dict, n: int) -> tuple[list, list]:
    return [bids[k] for k in sorted(bids, reverse=True)[:n]], [asks[k] for k in sorted(asks)[:n]]


# ---------------------------------------------------------------------------------------------------- timeline


def test_timeline_starts_at_the_bridging_diff():
    tl, snaps = build_timeline("spot", [SPOT_BTC_0808])
    lines = records(SPOT_BTC_0808)
    # 3rd diff (line 5) bridges; the snapshot line (7) is never broadcast
    assert bridge_line(SPOT_BTC_0808, "spot") == 5 and recorded_snapshot(SPOT_BTC_0808)[0] == 7
    assert [e.payload.encode() for e in tl] == [p for i, (_, p) in enumerate(lines) if i >= 5 and i != 7]
    assert snaps["BTCUSDT"]["lastUpdateId"] == 50093239218

    tl, _ = build_timeline("usdm", [USDM_BTC_0808])
    # the 5th diff (line 41) bridges a snapshot recorded later (line 54)
    assert bridge_line(USDM_BTC_0808, "usdm") == 41 and recorded_snapshot(USDM_BTC_0808)[0] == 54
    assert tl[0].payload.encode() == records(USDM_BTC_0808)[41][1] and len(tl) == 93954 - 41 - 1


def test_timeline_merges_symbols_and_concatenates_days(mixed_btc_eth):
    tl, snaps = build_timeline("spot", [SPOT_ETH_0808, SPOT_BTC_0809, SPOT_BTC_0808])
    assert sorted(snaps) == ["BTCUSDT", "ETHUSDT"] and all(snaps.values())
    assert all(a.ts <= b.ts for a, b in zip(tl, tl[1:]))
    btc = [json.loads(e.payload)["data"] for e in tl if e.stream == "btcusdt@depth@100ms"]
    assert len(btc) == 3451 - 2 + 3044 and all(b["U"] == a["u"] + 1 for a, b in zip(btc, btc[1:]))
    # one file holding both symbols and both snapshot bodies: each snapshot goes to the symbol its diffs bridge
    tl2, snaps2 = build_timeline("spot", [mixed_btc_eth])
    assert {s: v["lastUpdateId"] for s, v in snaps2.items()} == {"BTCUSDT": 50093239218, "ETHUSDT": 35346513512}
    assert [e.payload for e in tl2] == [e.payload for e in build_timeline("spot", [SPOT_BTC_0808, SPOT_ETH_0808])[0]]


def test_full_replay_book_equals_rebuilt_book():
    # nobody connected: everything is broadcast to nobody, but the book follows the whole timeline (two days)
    with FakeExchange("spot", [SPOT_BTC_0808, SPOT_BTC_0809], speed=None, autostart=False) as fx:
        fx.start_replay()
        assert fx.wait_done(20)
        assert fx.sent == [] and fx.emitted == len(fx.timeline)
        last_u = json.loads(next(p for _, p in reversed(records(SPOT_BTC_0809)) if b"@depth" in p[:40]))["data"]["u"]
        luid, bids, asks = fx.book_state("btcusdt")
        assert luid == last_u
        # the rebuild of day 1 then day 2 in the test
        want_b, want_a = rebuild(SPOT_BTC_0808, "spot")
        for _, p in records(SPOT_BTC_0809):
            if b"@depth" in p[:40]:
                apply_diff(want_b, want_a, json.loads(p)["data"])
        wb, wa = top(want_b, want_a, 10**6)
        assert [list(x) for x in bids] == wb and [list(x) for x in asks] == wa
        assert not fx.errors


# ---------------------------------------------------------------------------------------------------- WebSocket


def test_replay_is_byte_identical_for_the_subscribed_streams():
    streams = ("btcusdt@depth@100ms", "btcusdt@trade")
    with FakeExchange("spot", [SPOT_BTC_0808], speed=None, max_messages=400) as fx:
        with connect(f"{fx.ws_url}/stream?streams={'/'.join(streams)}") as ws:
            want = expected_frames(SPOT_BTC_0808, "spot", 400, streams)
            assert len(want) > 50
            assert recv_n(ws, len(want)) == want
            assert fx.wait_done(5)
            assert_silent(ws)
        assert fx.wait_closed()
        (c,) = fx.connections
        assert c.route == "stream" and c.streams == list(streams) and c.close_kind == "client"
        assert [p.encode() for p in fx.sent_to(c.id)] == want and not fx.misrouted and not fx.errors


def test_usdm_routes_and_misrouted_streams():
    with FakeExchange("usdm", [USDM_BTC_0808], speed=None, max_messages=300, autostart=False) as fx:
        with (
            connect(f"{fx.ws_url}/public/stream?streams=btcusdt@depth@0ms/btcusdt@trade") as pub,
            connect(f"{fx.ws_url}/market/stream?streams=btcusdt@trade/btcusdt@bookTicker") as mkt,
        ):
            assert fx.wait_connections(2)
            fx.start_replay()
            want_depth = expected_frames(USDM_BTC_0808, "usdm", 300, {"btcusdt@depth@0ms"})
            want_trade = expected_frames(USDM_BTC_0808, "usdm", 300, {"btcusdt@trade"})
            assert want_depth and want_trade
            assert recv_n(pub, len(want_depth)) == want_depth
            assert recv_n(mkt, len(want_trade)) == want_trade
            assert fx.wait_done(5)
            assert_silent(pub, 0.1)
            assert_silent(mkt, 0.1)
        routes = {c.route: c.id for c in fx.connections}
        assert sorted(routes) == ["market", "public"]
        assert sorted(fx.misrouted) == sorted(
            [(routes["public"], "btcusdt@trade"), (routes["market"], "btcusdt@bookTicker")]
        )


@pytest.mark.parametrize(
    "venue, path",
    [
        ("spot", "/foo"),
        ("spot", "/ws/btcusdt@trade"),
        ("spot", "/public/stream?streams=btcusdt@trade"),
        ("usdm", "/stream?streams=btcusdt@trade"),  # the pre-routing URL
        ("usdm", "/private/stream"),
    ],
)
def test_bad_path_is_404(venue, path):
    with FakeExchange(venue, speed=None, max_messages=10) as fx:
        with pytest.raises(InvalidStatus) as ei:
            connect(fx.ws_url + path)
        assert ei.value.response.status_code == 404
        assert fx.rejected == [(path, 404)] and fx.connections == []


def test_usdm_legacy_path_serves_everything():
    with FakeExchange("usdm", speed=None, max_messages=200, usdm_legacy=True) as fx:
        with connect(f"{fx.ws_url}/stream?streams=btcusdt@trade/btcusdt@depth@0ms") as ws:
            want = expected_frames(USDM_BTC_0808, "usdm", 200, {"btcusdt@trade", "btcusdt@depth@0ms"})
            assert recv_n(ws, len(want)) == want and not fx.misrouted


def test_subscribe_method_starts_the_stream():
    with FakeExchange("spot", speed=None, max_messages=300) as fx:
        with connect(f"{fx.ws_url}/stream") as ws:
            time.sleep(0.05)
            assert fx.emitted == 0  # nothing subscribed yet: the timeline waits
            ws.send('{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":7}')
            assert ws.recv(timeout=5) == '{"result":null,"id":7}'
            want = expected_frames(SPOT_BTC_0808, "spot", 300, {"btcusdt@trade"})
            assert recv_n(ws, len(want)) == want
            ws.send('{"method":"LIST_SUBSCRIPTIONS","id":8}')
            assert json.loads(ws.recv(timeout=5)) == {"result": ["btcusdt@trade"], "id": 8}


def test_live_semantics_late_client_misses_the_past():
    with FakeExchange("spot", rate=400, max_messages=5000) as fx:
        url = f"{fx.ws_url}/stream?streams={'/'.join(SPOT_STREAMS)}"
        with connect(url) as first:
            recv_n(first, 40)
            with connect(url) as late:
                got = late.recv(timeout=5, decode=False)
        payloads = [e.payload.encode() for e in fx.timeline]
        assert payloads.index(got) >= 40


def test_drop_and_abrupt_drop():
    with FakeExchange("spot", rate=300, max_messages=5000) as fx:
        url = f"{fx.ws_url}/stream?streams={'/'.join(SPOT_STREAMS)}"
        with connect(url) as ws:
            ws.recv(timeout=5)
            assert fx.drop() == 1
            with pytest.raises(ConnectionClosedOK) as ei:
                while True:
                    ws.recv(timeout=5)
            assert ei.value.rcvd.code == 1000
        with connect(url) as ws:
            ws.recv(timeout=5)
            assert fx.drop(abrupt=True) == 1
            with pytest.raises(ConnectionClosedError) as ei:
                while True:
                    ws.recv(timeout=5)
            assert ei.value.rcvd is None  # no close frame: the TCP connection just went away
        a, b = fx.connections
        assert (a.close_kind, b.close_kind) == ("drop", "abort") and a.closed and b.closed
        # the exchange lives on: a reconnect gets data again
        with connect(url) as ws:
            assert ws.recv(timeout=5)
        assert not fx.errors


def test_server_shutdown_then_close():
    with FakeExchange("spot", rate=300, max_messages=5000) as fx:
        with connect(f"{fx.ws_url}/stream?streams={'/'.join(SPOT_STREAMS)}") as ws:
            ws.recv(timeout=5)
            assert fx.server_shutdown(close_after=0.3) == 1
            frames, at = [], None
            with pytest.raises(ConnectionClosedOK) as ei:
                while True:
                    m = ws.recv(timeout=5)
                    if at is None and '"!serverShutdown"' in m:
                        at = time.monotonic()
                        notice = json.loads(m)
                    elif at is not None:
                        frames.append(m)
            closed_after = time.monotonic() - at
        assert fx.wait_closed()
        assert notice["stream"] == "!serverShutdown" and notice["data"]["e"] == "serverShutdown"
        assert abs(notice["data"]["E"] - time.time() * 1000) < 10_000
        assert ei.value.rcvd.code == 1001 and closed_after >= 0.2
        assert frames, "data keeps flowing until the close"
        assert fx.connections[0].close_kind == "shutdown"


def test_stall_loses_messages_and_keeps_the_connection():
    with FakeExchange("spot", rate=500, max_messages=5000) as fx:
        with connect(f"{fx.ws_url}/stream?streams={'/'.join(SPOT_STREAMS)}") as ws:
            before = recv_n(ws, 20)
            t0 = time.monotonic()
            assert fx.stall(0.5) == 1
            # whatever was queued before the stall still arrives at once; then silence until it ends
            arrivals = []
            while not arrivals or arrivals[-1][0] - t0 < 0.45:
                m = ws.recv(timeout=5, decode=False)
                arrivals.append((time.monotonic(), m))
            quiet = max(b[0] - a[0] for a, b in zip([(t0, None), *arrivals], arrivals))
            assert quiet >= 0.35
            assert fx.connections[0].closed is None
        index = {e.payload.encode(): i for i, e in enumerate(fx.timeline)}
        seen = [index[m] for m in before + [m for _, m in arrivals]]
        assert max(b - a for a, b in zip(seen, seen[1:])) > 100, "messages broadcast during the stall are lost"


def test_inject_gap_breaks_the_sequence_and_the_book_still_applies():
    with FakeExchange("spot", rate=2000, max_messages=8000) as fx:
        with connect(f"{fx.ws_url}/stream?streams=btcusdt@depth@100ms") as ws:
            diffs = [json.loads(m)["data"] for m in recv_n(ws, 3)]
            fx.inject_gap("btcusdt", count=2)
            # diffs already queued still arrive in sequence; the break comes right after them
            while len(diffs) < 60 and diffs[-1]["u"] + 1 == (d := json.loads(ws.recv(timeout=5))["data"])["U"]:
                diffs.append(d)
            diffs += [d, *(json.loads(m)["data"] for m in recv_n(ws, 3))]
        breaks = [(a, b) for a, b in zip(diffs, diffs[1:]) if b["U"] != a["u"] + 1]
        assert len(breaks) == 1
        gapped = [json.loads(e.payload)["data"] for e in fx.gapped]
        (a, b) = breaks[0]
        assert len(gapped) == 2 and gapped[0]["U"] == a["u"] + 1 and b["U"] == gapped[1]["u"] + 1
        assert fx.book_state("BTCUSDT")[0] >= b["u"]
        fx.pause()
        luid, bids, asks = fx.book_state("BTCUSDT")
        want_b, want_a = top(*rebuild(SPOT_BTC_0808, "spot", luid), 10**6)
        assert [list(x) for x in bids] == want_b and [list(x) for x in asks] == want_a


def test_fragmented_messages_arrive_whole():
    with FakeExchange("spot", speed=None, max_messages=200, autostart=False) as fx:
        fx.fragment = 64
        with connect(f"{fx.ws_url}/stream?streams={'/'.join(SPOT_STREAMS)}") as ws:
            fx.start_replay()
            want = expected_frames(SPOT_BTC_0808, "spot", 200, SPOT_STREAMS)
            chunks = list(ws.recv_streaming(decode=False))
            assert len(chunks) > 1 and all(len(c) <= 64 for c in chunks)
            assert b"".join(chunks) == want[0] and len(want[0]) > 64
            assert recv_n(ws, len(want) - 1) == want[1:]


def test_send_raw_text_and_binary():
    with FakeExchange("spot", speed=None, autostart=False) as fx:
        with connect(f"{fx.ws_url}/stream?streams=btcusdt@trade") as ws:
            assert fx.wait_connections(1)
            assert fx.send_raw("not json {") == 1
            fx.send_raw(b"\x00\xff")
            assert ws.recv(timeout=5) == "not json {"
            assert ws.recv(timeout=5) == b"\x00\xff"
        assert [p for _, p in fx.sent] == ["not json {", b"\x00\xff"]


def test_pause_holds_the_timeline():
    # no client: one that stops reading would hold the server's writes (and its own close) behind TCP back-pressure
    with FakeExchange("spot", rate=1000, max_messages=5000, autostart=False) as fx:
        fx.start_replay()
        assert fx.wait(lambda: fx.emitted > 5)
        fx.pause()
        n = fx.emitted
        time.sleep(0.1)
        assert fx.paused and fx.emitted == n
        fx.resume()
        assert fx.wait(lambda: fx.emitted > n + 20, 2) and not fx.paused


# ---------------------------------------------------------------------------------------------------- REST


@pytest.mark.parametrize(
    "venue, path, endpoint, weight",
    [("spot", SPOT_BTC_0808, "/api/v3/depth", 50), ("usdm", USDM_BTC_0808, "/fapi/v1/depth", 20)],
)
def test_snapshot_before_start_is_the_recorded_one(venue, path, endpoint, weight):
    with FakeExchange(venue, [path], autostart=False) as fx:
        status, headers, body = http_get(f"{fx.rest_url}{endpoint}?symbol=btcusdt&limit=1000")
        assert status == 200 and headers["Content-Type"].startswith("application/json")
        assert body == recorded_snapshot(path)[1]  # byte for byte, usdm "E" and "T" included
        assert headers["X-MBX-USED-WEIGHT-1M"] == str(weight)
        status, _, body = http_get(f"{fx.rest_url}{endpoint}?symbol=BTCUSDT")
        snap, default = json.loads(body), {"spot": 100, "usdm": 500}[venue]
        assert len(snap["bids"]) == len(snap["asks"]) == default
        assert snap["bids"] == json.loads(recorded_snapshot(path)[1])["bids"][:default]
        (r1, r2) = fx.rest_log
        assert (r1.symbol, r1.limit, r1.status, r1.last_update_id) == ("BTCUSDT", 1000, 200, snap["lastUpdateId"])
        assert r2.limit == default


@pytest.mark.parametrize(
    "venue, path, stream, endpoint",
    [
        ("spot", SPOT_BTC_0808, "btcusdt@depth@100ms", "/stream?streams=btcusdt@depth@100ms"),
        ("usdm", USDM_BTC_0808, "btcusdt@depth@0ms", "/public/stream?streams=btcusdt@depth@0ms"),
    ],
)
def test_midstream_snapshot_bridges_the_next_diff(venue, path, stream, endpoint):
    rest = {"spot": "/api/v3/depth", "usdm": "/fapi/v1/depth"}[venue]
    with FakeExchange(venue, [path], rate=1500, max_messages=20000) as fx:
        with connect(fx.ws_url + endpoint) as ws:
            diffs = [json.loads(m)["data"] for m in recv_n(ws, 10)]
            status, _, body = http_get(f"{fx.rest_url}{rest}?symbol=BTCUSDT&limit=1000")
            assert status == 200
            snap = json.loads(body)
            last = snap["lastUpdateId"]
            while diffs[-1]["u"] <= last:
                diffs.append(json.loads(ws.recv(timeout=5))["data"])
    assert last > diffs[0]["u"]  # taken mid-stream, not the recorded one
    i = next(i for i, d in enumerate(diffs) if d["u"] == last)  # the book is exactly at a diff boundary
    nxt = diffs[i + 1]
    assert nxt["U"] == last + 1 if venue == "spot" else nxt["pu"] == last
    if venue == "usdm":
        assert (snap["E"], snap["T"]) == (diffs[i]["E"], diffs[i]["T"])
    want_b, want_a = top(*rebuild(path, venue, last), 1000)
    assert snap["bids"] == want_b and snap["asks"] == want_a


def test_rest_delay_serves_the_book_of_the_request_time():
    with FakeExchange("spot", autostart=False, rest_delay=0.3) as fx:
        t = time.monotonic()
        fx.start_replay()
        status, _, body = http_get(f"{fx.rest_url}/api/v3/depth?symbol=BTCUSDT&limit=5")
        assert status == 200 and time.monotonic() - t >= 0.3


def test_weight_limit_429_retry_after_and_recovery():
    with FakeExchange("spot", autostart=False, weight_limit=120, weight_window=1.0) as fx:
        url = f"{fx.rest_url}/api/v3/depth?symbol=BTCUSDT&limit=1000"  # weight 50
        assert [http_get(url)[1]["X-MBX-USED-WEIGHT-1M"] for _ in range(2)] == ["50", "100"]
        status, headers, body = http_get(url)
        assert status == 429 and headers["Retry-After"] == "2" and headers["X-MBX-USED-WEIGHT-1M"] == "100"
        assert json.loads(body) == {"code": -1003, "msg": "Too many requests"}
        time.sleep(1.05)
        status, headers, _ = http_get(url)
        assert status == 200 and headers["X-MBX-USED-WEIGHT-1M"] == "50"
        assert [r.status for r in fx.rest_log] == [200, 200, 429, 200]
    with FakeExchange("spot", autostart=False, weight_limit=60, weight_window=0.5, retry_after=None) as fx:
        url = f"{fx.rest_url}/api/v3/depth?symbol=BTCUSDT&limit=5000"  # weight 250: never fits
        status, headers, _ = http_get(url)
        assert status == 429 and headers["Retry-After"] == "1"


def test_weights_per_limit():
    with FakeExchange("usdm", autostart=False) as fx:
        used = [
            int(http_get(f"{fx.rest_url}/fapi/v1/depth?symbol=BTCUSDT&limit={n}")[1]["X-MBX-USED-WEIGHT-1M"])
            for n in (5, 10, 20, 50, 100, 500, 1000)
        ]
        assert [b - a for a, b in zip([0, *used], used)] == [2, 2, 2, 2, 5, 10, 20]
    with FakeExchange("spot", autostart=False) as fx:
        used = [
            int(http_get(f"{fx.rest_url}/api/v3/depth?symbol=BTCUSDT&limit={n}")[1]["X-MBX-USED-WEIGHT-1M"])
            for n in (1, 100, 101, 500, 501, 1000, 1001, 5000, 9999)
        ]
        assert [b - a for a, b in zip([0, *used], used)] == [5, 5, 25, 25, 50, 50, 250, 250, 250]
        assert fx.rest_log[-1].limit == 5000  # truncated, as the real endpoint does


def test_rest_errors():
    with FakeExchange("usdm", autostart=False) as fx:
        status, headers, body = http_get(f"{fx.rest_url}/fapi/v1/depth?symbol=FOOUSDT&limit=5")
        assert (status, json.loads(body)) == (400, {"code": -1121, "msg": "Invalid symbol."})
        assert "X-MBX-USED-WEIGHT-1M" in headers
        status, _, body = http_get(f"{fx.rest_url}/fapi/v1/depth?limit=5")
        assert (status, json.loads(body)["code"]) == (400, -1102)
        status, _, body = http_get(f"{fx.rest_url}/fapi/v1/depth?symbol=BTCUSDT&limit=7")
        assert (status, json.loads(body)["code"]) == (400, -1130)
        status, _, body = http_get(f"{fx.rest_url}/fapi/v1/depth?symbol=BTCUSDT&limit=x")
        assert (status, json.loads(body)["code"]) == (400, -1100)
        assert http_get(f"{fx.rest_url}/api/v3/depth?symbol=BTCUSDT")[0] == 404  # the spot path on USD-M
        fx.inject_rest_error(503, body="busy")
        status, _, body = http_get(f"{fx.rest_url}/fapi/v1/depth?symbol=BTCUSDT")
        assert (status, body) == (503, b"busy")
        assert http_get(f"{fx.rest_url}/fapi/v1/depth?symbol=BTCUSDT")[0] == 200
        assert [r.status for r in fx.rest_log] == [400, 400, 400, 400, 404, 503, 200]


def test_injected_rest_answers_of_any_kind():
    import http.client

    with FakeExchange("spot", autostart=False) as fx:
        fx.inject_rest_error(403, body="")
        fx.inject_rest_error(200, body="<html>maintenance</html>", content_type="text/html")
        fx.inject_rest_error(302, headers=[("Location", "http://127.0.0.1:9/elsewhere")], limit=1000)
        status, _, body = http_get(f"{fx.rest_url}/api/v3/depth?symbol=BTCUSDT&limit=5")
        assert (status, body) == (403, b"")
        status, headers, body = http_get(f"{fx.rest_url}/api/v3/depth?symbol=BTCUSDT&limit=5")
        assert (status, headers["Content-Type"], body) == (200, "text/html", b"<html>maintenance</html>")
        # the redirect waits for a request of its own limit; others are served as usual
        status, _, body = http_get(f"{fx.rest_url}/api/v3/depth?symbol=BTCUSDT&limit=5")
        assert status == 200 and json.loads(body)["lastUpdateId"] > 0
        conn = http.client.HTTPConnection(fx.rest_url.removeprefix("http://"), timeout=5)
        conn.request("GET", "/api/v3/depth?symbol=BTCUSDT&limit=1000")
        r = conn.getresponse()
        assert (r.status, r.getheader("Location")) == (302, "http://127.0.0.1:9/elsewhere")
        r.read()
        conn.close()
        assert [(r.status, r.limit) for r in fx.rest_log] == [(403, 5), (200, 5), (200, 5), (302, 1000)]
