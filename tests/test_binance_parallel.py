"""read_binance / iter_binance of seekable zstd files on several threads.

Workers decompress and parse frames; the calling thread applies their lines in order.  The
result must be exactly that of threads=1 (one line after the other): every column, every
counter in stats, the chunks of iter_binance, the errors with their line numbers and byte
offsets, and what on_error="skip" counts.  Frames the workers cannot vouch for (a line
running into the next frame, a corrupt frame, a seek table that does not fit) are read on
by one thread from there, so they too give what threads=1 gives.
"""

from __future__ import annotations

import gzip
import os
import signal
import struct
import threading
import time
import warnings
from functools import partial

import numpy as np
import pytest
from conftest import SPOT_BTC_0808, SPOT_BTC_0809, SPOT_ETH_0808, USDM_BTC_0808
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lobfast
from lobfast.errors import LobError

zstandard = pytest.importorskip("zstandard")

TABLES = ("depth", "trades", "agg_trades", "quotes")


# --------------------------------------------------------------------------- helpers


def seekable(path, frames: list[bytes], *, table: bool = True, level: int = 1) -> list[int]:
    """Write `frames` (texts) as one zstd frame each plus the seek table; the frames' offsets."""
    cctx = zstandard.ZstdCompressor(level=level, write_content_size=True)
    blobs = [cctx.compress(f) for f in frames]
    offsets, at = [], 0
    for b in blobs:
        offsets.append(at)
        at += len(b)
    body = b"".join(blobs)
    if table:
        entries = b"".join(struct.pack("<II", len(b), len(f)) for b, f in zip(blobs, frames))
        foot = struct.pack("<IBI", len(frames), 0, 0x8F92EAB1)
        body += struct.pack("<II", 0x184D2A5E, len(entries) + len(foot)) + entries + foot
    with open(path, "wb") as f:
        f.write(body)
    return offsets


def assert_same(a: lobfast.MarketData, b: lobfast.MarketData, what: str = "") -> None:
    for name in TABLES:
        ca, cb = getattr(a, name).columns, getattr(b, name).columns
        assert ca.keys() == cb.keys()
        for col in ca:
            assert ca[col].dtype == cb[col].dtype, f"{what} {name}.{col}"
            assert np.array_equal(ca[col], cb[col], equal_nan=True), f"{what} {name}.{col} differs"
    assert a.stats == b.stats, {k: (a.stats[k], b.stats.get(k)) for k in a.stats if a.stats[k] != b.stats.get(k)}


def outcome(fn):
    """(fn()'s MarketData or its error as (type, message, attributes), the warnings it gave)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            got = fn()
        except (LobError, OSError) as e:
            got = (type(e), str(e), {k: v for k, v in vars(e).items() if k != "__traceback__"})
    return got, [(w.category, str(w.message)) for w in caught]


def assert_same_outcome(fn, what: str = "") -> None:
    want, want_warned = outcome(partial(fn, 1))
    for threads in (2, 4):
        got, warned = outcome(partial(fn, threads))
        assert warned == want_warned, f"{what} threads={threads}"
        if isinstance(want, lobfast.MarketData):
            assert isinstance(got, lobfast.MarketData), f"{what} threads={threads}: {got}"
            assert_same(want, got, f"{what} threads={threads}")
        else:
            assert got == want, f"{what} threads={threads}"


def concat_chunks(chunks: list[lobfast.MarketData]):
    return [({n: getattr(c, n).columns for n in TABLES}, c.stats) for c in chunks]


def assert_same_chunks(a, b) -> None:
    assert len(a) == len(b)
    for (ta, sa), (tb, sb) in zip(a, b):
        assert sa == sb
        for n in TABLES:
            for col in ta[n]:
                assert np.array_equal(ta[n][col], tb[n][col], equal_nan=True), (n, col)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """The bundled recordings rewritten as seekable zstd: 1 s frames, and small frames."""
    d = tmp_path_factory.mktemp("zpar")
    out = {}
    for src in (SPOT_BTC_0808, SPOT_BTC_0809, SPOT_ETH_0808, USDM_BTC_0808):
        base = os.path.basename(src).removesuffix(".gz")
        out[base] = str(d / f"{base}.zst")
        lobfast.convert(src, out[base], frame="1s")
        out[base + "_small"] = str(d / f"{base}_small.zst")
        lobfast.convert(src, out[base + "_small"], frame="1s", frame_bytes=4096)
    return out


# --------------------------------------------------------------------------- real recordings


@pytest.mark.parametrize("name", ["spot_btcusdt_20240808", "usdm_btcusdt_20240808", "spot_ethusdt_20240808_small"])
def test_recordings_equal_one_thread(recordings, name):
    path = recordings[name]
    assert_same_outcome(lambda t: lobfast.read_binance(path, threads=t), name)
    assert lobfast.read_binance(path, threads=2).stats["lines"] > 10_000


def test_two_days_as_one_stream(recordings):
    paths = [recordings["spot_btcusdt_20240808_small"], recordings["spot_btcusdt_20240809"]]
    assert_same_outcome(lambda t: lobfast.read_binance(paths, threads=t))


@pytest.mark.parametrize("chunk_rows", [1, 5000, 200_000])
def test_iter_chunks_equal_one_thread(recordings, chunk_rows):
    path = recordings["usdm_btcusdt_20240808_small"]
    if chunk_rows == 1:  # every line a chunk: only the first few thousand rows
        a = [c for _, c in zip(range(3000), lobfast.iter_binance(path, chunk_rows=1, threads=1))]
        b = [c for _, c in zip(range(3000), lobfast.iter_binance(path, chunk_rows=1, threads=3))]
    else:
        a = list(lobfast.iter_binance(path, chunk_rows=chunk_rows, threads=1))
        b = list(lobfast.iter_binance(path, chunk_rows=chunk_rows, threads=3))
    assert_same_chunks(concat_chunks(a), concat_chunks(b))


def test_windows_equal_one_thread(recordings):
    path = recordings["usdm_btcusdt_20240808_small"]
    full = lobfast.read_binance(path, threads=1)
    ts = full.trades.columns["local_ts"]
    for lo, hi in [(0.1, 0.4), (0.5, 0.500001), (0.7, None)]:
        start = int(ts[int(lo * len(ts))])
        end = None if hi is None else int(ts[int(hi * len(ts))]) + 1
        read = partial(lobfast.read_binance, path, start=start, end=end)
        assert_same_outcome(lambda t, read=read: read(threads=t), f"{lo}-{hi}")


def test_symbol_filter_and_skip_equal_one_thread(recordings, tmp_path):
    # two symbols interleaved by receive time, with bad lines, in small frames
    lines = []
    for p in (SPOT_BTC_0808, SPOT_ETH_0808):
        with gzip.open(p, "rb") as f:
            lines += f.read().splitlines(keepends=True)[:20000]
    lines.sort(key=lambda s: int(s.split(b" ", 1)[0]))
    for i in range(100, len(lines), 997):
        lines[i] = lines[i][:40] + b"}\n"
    frames = [b"".join(lines[i : i + 37]) for i in range(0, len(lines), 37)]
    path = tmp_path / "mixed.zst"
    seekable(path, frames)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        read = partial(lobfast.read_binance, path, symbol=symbol, on_error="skip")
        assert_same_outcome(lambda t, read=read: read(threads=t), symbol)
    got = lobfast.read_binance(path, symbol="BTCUSDT", on_error="skip", threads=2)
    assert got.stats["bad_lines"] >= 10
    # raise: the first bad line, named by line and byte offset, in a late frame
    e, _ = outcome(lambda: lobfast.read_binance(path, symbol="BTCUSDT", threads=2))
    assert e[0] is LobError and "line 101" in e[1]
    assert_same_outcome(lambda t: lobfast.read_binance(path, symbol="BTCUSDT", threads=t))


# --------------------------------------------------------------------------- generated streams

TS0 = 1_723_075_200_000_000_000


def _diff(u: int, U: int, t: int, px: int) -> bytes:
    body = (
        f'{{"stream":"btcusdt@depth@100ms","data":{{"e":"depthUpdate","E":{t // 1_000_000},"s":"BTCUSDT",'
        f'"U":{U},"u":{u},"b":[["{px}.5","1.25"]],"a":[["{px + 1}.5","0"]]}}}}'
    )
    return f"{t} {body}\n".encode()


def _snapshot(L: int, t: int) -> bytes:
    return f'{t} {{"lastUpdateId":{L},"bids":[["99.5","2"]],"asks":[["100.5","3"]]}}\n'.encode()


def _trade(i: int, t: int) -> bytes:
    body = (
        f'{{"stream":"btcusdt@trade","data":{{"e":"trade","E":{t // 1_000_000},"s":"BTCUSDT","t":{i},'
        f'"p":"100.1","q":"0.5","T":{t // 1_000_000},"m":{"true" if i % 2 else "false"}}}}}'
    )
    return f"{t} {body}\n".encode()


BAD = [
    b"not a line\n",
    b"\n",
    b'123 {"e":"trade"\n',
    b"\r\n",
    b'5 {"stream":"x@trade","data":{"e":"trade","s":"BTCUSDT","t":1,"p":"-1","q":"1","m":true}}\n',
    b"99999999999999999999 {}\n",
]


@st.composite
def streams(draw):
    """Lines of a spot stream with gaps, stale diffs, snapshots and bad lines, cut into frames
    (some frame edges fall inside a line) -> (frames, cut_inside_lines)."""
    n = draw(st.integers(5, 80))
    u, t, lines = 100, TS0, []
    for i in range(n):
        t += draw(st.integers(0, 3)) * 1_000_000
        kind = draw(st.sampled_from(["diff", "diff", "diff", "gap", "stale", "snap", "trade", "bad"]))
        if kind == "diff":
            lines.append(_diff(u + 3, u + 1, t, 100 + i % 5))
            u += 3
        elif kind == "gap":
            u += 10
            lines.append(_diff(u + 1, u, t, 100))
            u += 1
        elif kind == "stale":
            lines.append(_diff(u - 1, u - 2, t, 100))
        elif kind == "snap":
            lines.append(_snapshot(u + draw(st.integers(-2, 2)), t))
        elif kind == "trade":
            lines.append(_trade(i, t))
        else:
            timed = [  # bad JSON, a bad value, a bad symbol: found by the walk, or after it
                f'{t} {{"e":"trade","p":\n'.encode(),
                _trade(i, t).replace(b'"p":"100.1"', b'"p":"-1"'),
                _trade(i, t).replace(b'"s":"BTCUSDT"', b'"s":"BTC\\u0001"'),
            ]
            lines.append(draw(st.sampled_from(BAD + timed)))
    text = b"".join(lines)
    cuts = sorted(set(draw(st.lists(st.integers(0, len(text)), max_size=12))))
    inside = draw(st.booleans())
    if not inside:  # frame edges at line ends only
        ends = np.cumsum([len(s) for s in lines]).tolist()
        cuts = sorted({min(ends, key=lambda e, c=c: abs(e - c)) for c in cuts})
    bounds = [0, *[c for c in cuts if 0 < c < len(text)], len(text)]
    frames = [text[a:b] for a, b in zip(bounds, bounds[1:])]
    return frames


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=streams(), on_error=st.sampled_from(["raise", "skip"]), unterminated=st.booleans())
def test_generated_streams_equal_one_thread(tmp_path, frames, on_error, unterminated):
    if unterminated and frames and frames[-1].endswith(b"\n"):
        frames[-1] = frames[-1][:-1]  # the last line without "\n"
    path = tmp_path / "gen.zst"
    seekable(path, frames)
    assert_same_outcome(lambda t: lobfast.read_binance(path, on_error=on_error, threads=t))
    if on_error == "skip":
        a, wa = outcome(lambda: list(lobfast.iter_binance(path, chunk_rows=3, on_error="skip", threads=1)))
        b, wb = outcome(lambda: list(lobfast.iter_binance(path, chunk_rows=3, on_error="skip", threads=2)))
        assert wa == wb
        if isinstance(a, tuple):  # an error (e.g. a stream naming two symbols): the same one
            assert a == b
        else:
            assert_same_chunks(concat_chunks(a), concat_chunks(b))


def test_line_across_frames_and_long_lines(tmp_path):
    lines = [_diff(103 + 3 * i, 101 + 3 * i, TS0 + i * 1_000_000, 100) for i in range(200)]
    text = _snapshot(100, TS0 - 1) + b"".join(lines)
    path = tmp_path / "across.zst"
    seekable(path, [text[:5000], text[5000:5003], text[5003:12000], text[12000:]])
    assert_same_outcome(lambda t: lobfast.read_binance(path, threads=t))
    # a line over max_line: the same error, with its line number
    assert_same_outcome(lambda t: lobfast.read_binance(path, threads=t, max_line=100))


# --------------------------------------------------------------------------- damaged files


def _frames_of(path: str) -> list[bytes]:
    with open(path, "rb") as f:
        data = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True).read()
    lines = data.splitlines(keepends=True)
    return [b"".join(lines[i : i + 500]) for i in range(0, len(lines), 500)]


@pytest.fixture(scope="module")
def usdm_frames(recordings):
    return _frames_of(recordings["usdm_btcusdt_20240808"])


@pytest.mark.parametrize("damage", ["corrupt", "bad_size", "cut", "no_table", "junk_before_table", "bad_line"])
def test_damaged_files_equal_one_thread(tmp_path, usdm_frames, damage):
    frames = usdm_frames[:40]
    path = tmp_path / f"{damage}.zst"
    offsets = seekable(path, frames, table=damage != "no_table")
    data = bytearray(path.read_bytes())
    late = offsets[30]
    if damage == "corrupt":  # a late frame's compressed bytes
        for k in range(40, 60):
            data[late + k] ^= 0x5A
    elif damage == "bad_size":  # the table gives frame 29 a wrong decompressed size
        table = len(data) - (8 + 8 * len(frames) + 9)
        pos = table + 8 + 8 * 29 + 4
        data[pos : pos + 4] = struct.pack("<I", len(frames[29]) + 7)
    elif damage == "cut":  # a crash: cut inside frame 30 (no table then)
        data = data[: late + 100]
    elif damage == "junk_before_table":
        table = len(data) - (8 + 8 * len(frames) + 9)
        data[table:table] = b"\0" * 16
    elif damage == "bad_line":
        lines = frames[33].split(b"\n")
        lines[7] = lines[7][:60]
        frames[33] = b"\n".join(lines)
        seekable(path, frames)
        data = bytearray(path.read_bytes())
    path.write_bytes(bytes(data))
    for on_error in ("raise", "skip"):
        read = partial(lobfast.read_binance, path, on_error=on_error)
        assert_same_outcome(lambda t, read=read: read(threads=t), damage)
    if damage in ("corrupt", "bad_line"):
        e, _ = outcome(lambda: lobfast.read_binance(path, threads=2))
        assert e[0] is LobError and "line" in e[1], e


# --------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_stops_a_threaded_read(tmp_path, usdm_frames):
    big = tmp_path / "big.zst"
    # the same frames many times over, as one stream whose receive times keep rising
    frames = usdm_frames[:60]
    seekable(big, frames * 40, level=1)
    lobfast.read_binance(str(big), threads=2, on_error="skip")  # warm the page cache
    t0 = time.perf_counter()
    full = lobfast.read_binance(str(big), threads=2, on_error="skip")
    took = time.perf_counter() - t0
    assert full.stats["bad_lines"] > 0  # receive times go back at each repeat
    main = threading.main_thread().ident
    timer = threading.Timer(took * 0.2, lambda: signal.pthread_kill(main, signal.SIGINT))
    t0 = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            lobfast.read_binance(str(big), threads=2, on_error="skip")
    finally:
        timer.cancel()
    assert time.perf_counter() - t0 < 0.5 * took + 0.5


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_reader_forked_mid_read_says_so_in_the_child(recordings):
    """fork() copies the reader but not its worker threads: the child gets an error naming
    that (never a hang), the parent reads on."""
    path = recordings["usdm_btcusdt_20240808_small"]
    it = lobfast.iter_binance(path, chunk_rows=1000, threads=2)
    first = next(it)
    r, w = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads running
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            for _ in it:
                pass
            msg = "read on"
        except BaseException as e:
            msg = f"{type(e).__name__}: {e}"
        os.write(w, msg.encode())
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    with os.fdopen(r, "rb") as f:
        child = f.read().decode()
    assert child.startswith("LobError") and "forked while its worker threads were reading" in child
    rest = list(it)
    assert_same_chunks(
        concat_chunks([first, *rest]), concat_chunks(list(lobfast.iter_binance(path, chunk_rows=1000, threads=1)))
    )
