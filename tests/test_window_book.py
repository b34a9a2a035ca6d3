"""A time window of a Binance recording opens with its book (lobfast.replay).

The reference is always the full read: the window's book, rebuilt on a grid, must be the
full read's at every grid time the window covers (levels, sizes, update ids, ``valid``),
for spot (U/u rules) and USD-M (pu rule), plain and seekable zstd files, with checkpoints
every few seconds of data and with none but the one after the snapshot, on the real
recordings and on long ones tiled from them (one snapshot at the start).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import re
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import SPOT_BTC_0808, SPOT_BTC_0809, USDM_BTC_0808

import lobfast
import lobfast.cli
from lobfast import Flags, LobError, LobWarning, TimeIndex, _core, replay, sidecar
from lobfast.timeindex import sidecar_path

SECOND = 10**9
GRID = 100_000_000
LEVELS = 20
FEW = 20 * SECOND  # checkpoints every 20 s of data
NONE = 10**15  # only the checkpoint after each sync

_spec = importlib.util.spec_from_file_location(
    "binance_tile", Path(__file__).resolve().parents[1] / "benchmarks" / "datagen" / "binance_tile.py"
)
binance_tile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(binance_tile)


def line_times(text: bytes) -> np.ndarray:
    return np.array([int(line.split(b" ", 1)[0]) for line in text.splitlines()], np.int64)


@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    """name -> {"plain": [paths], "zst": [paths], "text": bytes of all, "full": the full read}."""
    d = tmp_path_factory.mktemp("window_book")
    sources = {
        "spot": [gzip.decompress(SPOT_BTC_0808.read_bytes()), gzip.decompress(SPOT_BTC_0809.read_bytes())],
        "usdm": [gzip.decompress(USDM_BTC_0808.read_bytes())],
        # 17 minutes of USD-M with one snapshot at its start, as two rotated files
        "usdm_tiled": [binance_tile.tile(gzip.decompress(USDM_BTC_0808.read_bytes()), 3)],
    }
    half = sources["usdm_tiled"][0].index(b"\n", len(sources["usdm_tiled"][0]) // 2) + 1
    sources["usdm_tiled"] = [sources["usdm_tiled"][0][:half], sources["usdm_tiled"][0][half:]]
    out = {}
    for name, texts in sources.items():
        plain, zst = [], []
        for i, text in enumerate(texts):
            p = d / f"{name}_{i}.txt"
            p.write_bytes(text)
            plain.append(str(p))
            z = d / f"{name}_{i}.zst"
            lobfast.convert(p, z)
            zst.append(str(z))
        out[name] = {"plain": plain, "zst": zst, "text": b"".join(texts), "full": lobfast.read_binance(plain)}
    return out


@pytest.fixture(autouse=True)
def checkpoints_near_the_start(monkeypatch):
    """These tests are about checkpoints: windows of the first file use them however near its
    start they lie (by default a window within ``REPLAY_BYTES`` replays from the start)."""
    monkeypatch.setattr(replay, "REPLAY_BYTES", 0)


def test_a_window_near_the_start_of_a_file_replays_from_there_without_checkpoints(rec, monkeypatch):
    """A window whose start lies within REPLAY_BYTES of text of the first file's start (by the
    index's entries) opens with the same book, replaying from the file's start: no checkpoints
    are made (they cost a replay of the whole file); further in, they are."""
    r = rec["usdm_tiled"]
    text = r["text"]
    ts = line_times(text)
    k = snapshot_line(text) + 2_000
    t0, t1 = int(ts[k]), int(ts[k]) + 20 * SECOND
    built = []
    real = replay.Window._build
    monkeypatch.setattr(replay.Window, "_build", lambda self, *a: built.append(a) or real(self, *a))
    first_file = len(Path(r["plain"][0]).read_bytes())
    monkeypatch.setattr(replay, "REPLAY_BYTES", first_file // 2)
    for kind in ("plain", "zst"):
        fresh(r[kind])
        md = lobfast.read_binance(r[kind], start=t0, end=t1)
        assert assert_window(md, r["full"], t0, t1, f"{kind} [{t0}, {t1})") > 10
        assert md.stats["replayed_lines"] == np.count_nonzero(ts < t0)  # every line from the start
    assert built == []
    n_first = len(Path(r["plain"][0]).read_bytes().splitlines())
    later = int(ts[n_first * 3 // 4])  # past half the first file: its checkpoints are made and used
    md = lobfast.read_binance(r["zst"], start=later, end=later + SECOND)
    assert assert_window(md, r["full"], later, later + SECOND, "later") > 0
    assert len(built) == 1


def fresh(paths: list[str]) -> None:
    """Forget the files' indexes and checkpoints."""
    for p in paths:
        if os.path.exists(sidecar_path(p)):
            os.unlink(sidecar_path(p))


def assert_book_as_full_read(md: lobfast.MarketData, full: lobfast.MarketData, t0: int, t1: int, where: str) -> int:
    """The window's grid book equals the full read's wherever the window decides it: from its
    first RESET to its last row, and before the first exchange time of a row received after
    it.  Returns how many grid rows were compared."""
    depth = md.depth
    resets = np.flatnonzero(depth.flags & Flags.RESET)
    if len(resets) == 0:
        return 0
    a = lobfast.reconstruct(depth, every=GRID, levels=LEVELS)
    b = lobfast.reconstruct(full.depth, every=GRID, levels=LEVELS)
    later = full.depth.ts[full.depth.local_ts >= t1]
    lo = depth.ts[resets[0]]
    hi = min(depth.ts[-1], later.min() if len(later) else np.iinfo(np.int64).max)
    ia = np.flatnonzero((a.ts >= lo) & (a.ts < hi))
    ib = np.searchsorted(b.ts, a.ts[ia])
    assert np.array_equal(b.ts[ib], a.ts[ia]), where
    for col in ("update_id", "bid_px", "bid_sz", "ask_px", "ask_sz", "valid"):
        assert np.array_equal(getattr(a, col)[ia], getattr(b, col)[ib], equal_nan=True), f"{where}: {col}"
    return len(ia)


def assert_window(md: lobfast.MarketData, full: lobfast.MarketData, t0: int, t1: int, where: str) -> int:
    """Book, rows, trades, quotes and counters of a window whose book is known at its start."""
    st = md.stats
    assert st["book_at_start"] == 1 and st["unsynced_until"] is None, where
    nbook = int(np.flatnonzero(md.depth.flags & Flags.END_OF_MESSAGE)[0]) + 1
    book = md.depth[:nbook]
    assert np.all(book.flags & Flags.SNAPSHOT) and book.flags[0] & Flags.RESET, where
    assert np.all(book.local_ts == book.local_ts[0]) and book.local_ts[0] >= t0, where
    # after the book: exactly the full read's rows (no gap here: each row from its own line)
    keep = (full.depth.local_ts >= t0) & (full.depth.local_ts < t1)
    for col, values in full.depth.columns.items():
        assert np.array_equal(md.depth.columns[col][nbook:], values[keep], equal_nan=True), f"{where}: depth.{col}"
    for table in ("trades", "agg_trades", "quotes"):
        rows = getattr(full, table)
        sel = (rows.local_ts >= t0) & (rows.local_ts < t1)
        for col, values in rows.columns.items():
            assert np.array_equal(getattr(md, table).columns[col], values[sel], equal_nan=True), f"{where}: {table}"
    assert st["gaps"] == np.count_nonzero(md.depth.flags & Flags.GAP) == 0, where
    return assert_book_as_full_read(md, full, t0, t1, where)


def random_windows(text: bytes, n: int, seed: int, after: int) -> list[tuple[int, int]]:
    """n windows of 1..60 s starting after line `after` (once the book is known)."""
    ts = line_times(text)
    rng = np.random.default_rng(seed)
    starts = rng.integers(ts[after], ts[-1] - SECOND, n)
    return [(int(s), int(s + rng.integers(1, 60) * SECOND)) for s in starts]


def snapshot_line(text: bytes) -> int:
    return next(i for i, line in enumerate(text.splitlines()) if b'{"lastUpdateId"' in line)


@pytest.mark.parametrize("every", [FEW, NONE], ids=["checkpoints", "no checkpoints"])
@pytest.mark.parametrize("kind", ["plain", "zst"])
@pytest.mark.parametrize("name", ["spot", "usdm", "usdm_tiled"])
def test_random_windows_open_with_the_full_reads_book(rec, monkeypatch, name, kind, every):
    r = rec[name]
    monkeypatch.setattr(replay, "CHECKPOINT_EVERY", every)
    fresh(r[kind])
    ts = line_times(r["text"])
    compared = 0
    for t0, t1 in random_windows(r["text"], 5, seed=len(name) + every % 7, after=snapshot_line(r["text"]) + 200):
        md = lobfast.read_binance(r[kind], start=t0, end=t1)
        compared += assert_window(md, r["full"], t0, t1, f"{name} {kind} [{t0}, {t1})")
        replayed = md.stats["replayed_lines"]
        if every == FEW:  # from the last checkpoint: at most one interval (and a line) back
            assert replayed <= np.count_nonzero((ts >= t0 - FEW - SECOND) & (ts < t0)), (t0, replayed)
    assert compared > 100
    assert all(Path(sidecar_path(p)).read_bytes()[-8:] == b"LFCKPEND" for p in r[kind])


def test_checkpoints_bound_the_replay_of_a_long_file(rec, monkeypatch):
    """A late window of a file with one snapshot: without checkpoints all of it is replayed,
    with them one interval; the results are the same."""
    r = rec["usdm_tiled"]
    ts = line_times(r["text"])
    t0, t1 = int(ts[-20_000]), int(ts[-20_000]) + 30 * SECOND
    got = {}
    for every in (NONE, FEW):
        monkeypatch.setattr(replay, "CHECKPOINT_EVERY", every)
        got[every] = lobfast.read_binance(r["zst"], start=t0, end=t1)
    k = snapshot_line(r["text"])
    assert got[NONE].stats["replayed_lines"] == np.count_nonzero((ts > ts[k]) & (ts < t0))  # from the sync
    assert got[FEW].stats["replayed_lines"] < np.count_nonzero((ts >= t0 - FEW - SECOND) & (ts < t0))
    for table in ("depth", "trades", "quotes"):
        for col, values in getattr(got[NONE], table).columns.items():
            assert np.array_equal(getattr(got[FEW], table).columns[col], values, equal_nan=True)


@pytest.mark.parametrize("name", ["spot", "usdm_tiled"])
def test_iter_binance_window_chunks_equal_read_binance(rec, name):
    r = rec[name]
    t0, t1 = random_windows(r["text"], 1, seed=3, after=snapshot_line(r["text"]) + 100)[0]
    t1 = t0 + 90 * SECOND
    want = lobfast.read_binance(r["zst"], start=t0, end=t1)
    for chunk_rows in (2_000, 10_000):
        chunks = list(lobfast.iter_binance(r["zst"], start=t0, end=t1, chunk_rows=chunk_rows))
        assert len(chunks) > 1
        for table in ("depth", "trades", "agg_trades", "quotes"):
            for col, values in getattr(want, table).columns.items():
                got = np.concatenate([getattr(c, table).columns[col] for c in chunks])
                assert np.array_equal(got, values, equal_nan=True), f"{table}.{col} chunk_rows={chunk_rows}"
        assert all(c.stats["unsynced_until"] is None for c in chunks)
        assert chunks[-1].stats == want.stats


def test_rotated_files_take_the_book_from_the_previous_file(rec):
    """spot 0809 has no snapshot: its windows get their book from 0808, read before it; its
    checkpoints depend on that file (read alone, it has no book)."""
    r = rec["spot"]
    second = r["zst"][1]
    ts = line_times(gzip.decompress(SPOT_BTC_0809.read_bytes()))
    t0, t1 = int(ts[len(ts) // 2]), int(ts[len(ts) // 2]) + 20 * SECOND
    md = lobfast.read_binance(r["zst"], start=t0, end=t1)
    assert_window(md, r["full"], t0, t1, "0808+0809")
    with pytest.warns(LobWarning, match=r"no snapshot inside it syncs one: it has no book"):
        alone = lobfast.read_binance(second, start=t0, end=t1)
    assert len(alone.depth) == 0 and alone.stats["unsynced_until"] == t1
    again = lobfast.read_binance(r["zst"], start=t0, end=t1)  # the checkpoints of 0809 follow the files
    assert np.array_equal(again.depth.price, md.depth.price, equal_nan=True)
    ti = TimeIndex(r["zst"])
    assert_window(ti.read(t0, t1), r["full"], t0, t1, "TimeIndex 0808+0809")


def test_window_without_a_snapshot_before_it_says_when_the_book_starts(rec):
    r = rec["usdm"]
    ts = line_times(r["text"])
    k = snapshot_line(r["text"])
    t0, t1 = int(ts[10]), int(ts[k]) + 30 * SECOND
    with pytest.warns(LobWarning) as got:
        md = lobfast.read_binance(r["plain"], start=t0, end=t1)
    (w,) = got
    assert re.match(
        r"window \[2024-08-08T23:54:\d\d\.\d+, 2024-08-08T23:5\d:\d\d\.\d+\): the book is not known at its start "
        r"\(no snapshot before it in the files, or a sequence gap since the last one\); its depth starts at the "
        r"first snapshot inside it, received at 2024-08-08T23:54:15.319702566 \(stats\['unsynced_until'\]\)",
        str(w.message),
    ), str(w.message)
    assert md.stats["unsynced_until"] == ts[k] and md.stats["book_at_start"] == 0
    assert md.depth.flags[0] == Flags.SNAPSHOT | Flags.RESET  # the snapshot, as in the full read
    assert assert_book_as_full_read(md, r["full"], t0, t1, "unsynced") > 100
    # a window starting with the data is a full read: no warning, the same rows
    md = lobfast.read_binance(r["plain"], start=int(ts[0]) - 3600 * SECOND, end=t1)
    head = lobfast.read_binance(r["plain"], end=t1)
    assert np.array_equal(md.depth.price, head.depth.price, equal_nan=True)
    assert md.stats["unsynced_until"] == ts[k] and md.stats["replayed_lines"] == 0


def test_window_after_the_data_is_empty_with_a_warning(rec):
    r = rec["usdm"]
    end = int(line_times(r["text"])[-1])
    with pytest.warns(LobWarning, match=r"window \[.*\): no line of the files was received in it; it is empty"):
        md = lobfast.read_binance(r["zst"], start=end + 1, end=end + 60 * SECOND)
    assert len(md.depth) == len(md.trades) == len(md.quotes) == 0


@pytest.fixture(scope="module")
def gapped(tmp_path_factory):
    """The USD-M recording with one diff dropped at 60 % of it: one GAP, then no book."""
    lines = gzip.decompress(USDM_BTC_0808.read_bytes()).splitlines(keepends=True)
    k = next(i for i in range(len(lines) * 6 // 10, len(lines)) if b'"depthUpdate"' in lines[i])
    path = tmp_path_factory.mktemp("gap") / "gap.txt"
    path.write_bytes(b"".join(lines[:k] + lines[k + 1 :]))
    return str(path), int(lines[k].split(b" ", 1)[0]), lobfast.read_binance(str(path))


def test_window_across_a_gap(gapped, monkeypatch):
    path, at, full = gapped
    monkeypatch.setattr(replay, "CHECKPOINT_EVERY", FEW)
    assert full.stats["gaps"] == 1
    t0, t1 = at - 40 * SECOND, at + 20 * SECOND
    md = lobfast.read_binance(path, start=t0, end=t1)
    assert md.stats["book_at_start"] == 1 and md.stats["gaps"] == 1
    assert np.count_nonzero(md.depth.flags & Flags.GAP) == 1
    assert assert_book_as_full_read(md, full, t0, t1, "across the gap") > 100
    # after the gap the book is unknown until a snapshot (none comes): said, not invented
    with pytest.warns(LobWarning, match=r"or a sequence gap since the last one\) and no snapshot inside it"):
        after = lobfast.read_binance(path, start=at + SECOND, end=at + 30 * SECOND)
    assert len(after.depth) == 0 and after.stats["unsynced_until"] == at + 30 * SECOND
    assert len(after.trades) > 0


# ---------------------------------------------------------------------------- the sidecar's checkpoints


def sidecar_parts(data: bytes) -> tuple[int, int, int]:
    """(index part length, checkpoint table end, checkpoint count) of a sidecar with checkpoints."""
    at, magic = struct.unpack("<Q8s", data[-16:])
    assert magic == b"LFCKPEND"
    _, n_json, n = struct.unpack_from("<6sIQ", data, at)
    return at, at + 18 + n_json + n * sidecar.CHECKPOINT.itemsize, n


def repack_first_block(data: bytes, change) -> bytes:
    """The sidecar with checkpoint 0's levels changed by `change(price, qty)`, CRCs made valid."""
    at, table_end, n = sidecar_parts(data)
    _, n_json, _ = struct.unpack_from("<6sIQ", data, at)
    table = np.frombuffer(data, sidecar.CHECKPOINT, n, at + 18 + n_json).copy()
    row = table[0]
    m = int(row["nbid"] + row["nask"])
    block = data[at + int(row["off"]) : at + int(row["off"] + row["size"])]
    levels = np.frombuffer(zlib.decompress(block), "<f8").copy()
    change(levels[:m], levels[m:])
    new = zlib.compress(levels.tobytes())
    grow = len(new) - len(block)
    table["size"][0], table["crc"][0] = len(new), zlib.crc32(new)
    table["off"][1:] += grow
    part = data[at : at + 18 + n_json] + table.tobytes()
    blocks = data[table_end + 4 : -16]
    blocks = new + blocks[len(block) :]
    return data[:at] + part + struct.pack("<I", zlib.crc32(part)) + blocks + data[-16:]


def retable(data: bytes, change) -> bytes:
    """The sidecar with its checkpoint table changed by `change(table)`, its CRC made valid."""
    at, table_end, n = sidecar_parts(data)
    _, n_json, _ = struct.unpack_from("<6sIQ", data, at)
    table = np.frombuffer(data, sidecar.CHECKPOINT, n, at + 18 + n_json).copy()
    change(table)
    part = data[at : at + 18 + n_json] + table.tobytes()
    return data[:at] + part + struct.pack("<I", zlib.crc32(part)) + data[table_end + 4 :]


def damaged():
    def flip_block(data):
        at, table_end, _ = sidecar_parts(data)
        i = table_end + 4 + 10
        return data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]

    def flip_table(data):
        _, table_end, _ = sidecar_parts(data)
        return data[: table_end - 3] + bytes([data[table_end - 3] ^ 0x01]) + data[table_end - 2 :]

    def unsorted(price, qty):
        price[[0, 1]] = price[[1, 0]]

    def negative(price, qty):
        qty[5] = -1.0

    return {
        "block byte flipped": (flip_block, "fail their checksum"),
        "table byte flipped": (flip_table, "checksum mismatch"),
        "bids out of order": (lambda d: repack_first_block(d, unsorted), "not a book"),
        "negative size": (lambda d: repack_first_block(d, negative), "not a book"),
        "truncated": (lambda d: d[: len(d) - 1000], "rebuilding the index"),
        "state out of range": (lambda d: retable(d, lambda t: t["last_ts"].fill(-5)), "out of range"),
        "levels past the part": (lambda d: retable(d, lambda t: t["size"].__iadd__(1)), "inconsistent"),
        "trailer points past the end": (lambda d: d[:-16] + struct.pack("<Q8s", 1 << 40, b"LFCKPEND"), "corrupt"),
    }


@pytest.mark.parametrize("damage", list(damaged()))
def test_damaged_checkpoints_are_rebuilt_never_used(rec, monkeypatch, tmp_path, damage):
    r = rec["usdm"]
    path = tmp_path / "u.zst"
    path.write_bytes(Path(r["zst"][0]).read_bytes())
    monkeypatch.setattr(replay, "CHECKPOINT_EVERY", 300 * SECOND)  # the checkpoint after the snapshot only
    ts = line_times(r["text"])
    t0, t1 = int(ts[len(ts) // 2]), int(ts[len(ts) // 2]) + 10 * SECOND
    want = lobfast.read_binance(str(path), start=t0, end=t1)
    side = Path(sidecar_path(str(path)))
    change, why = damaged()[damage]
    side.write_bytes(change(side.read_bytes()))
    with pytest.warns(LobWarning, match=why) as got:
        md = lobfast.read_binance(str(path), start=t0, end=t1)
    assert all("rebuilding" in str(w.message) for w in got)
    for col, values in want.depth.columns.items():
        assert np.array_equal(md.depth.columns[col], values, equal_nan=True), col
    assert side.read_bytes()[-8:] == b"LFCKPEND"
    lobfast.read_binance(str(path), start=t0, end=t1)  # rebuilt: no warning now


def test_sidecar_of_the_older_version_is_rebuilt(tmp_path):
    path = tmp_path / "u.txt"
    path.write_bytes(gzip.decompress(USDM_BTC_0808.read_bytes()))
    side = Path(sidecar_path(str(path)))
    lobfast.read_binance(str(path), start=1723161400 * SECOND, end=1723161410 * SECOND)
    data = side.read_bytes()
    at, _, _ = sidecar_parts(data)
    old = data[:6] + struct.pack("<H", 1) + data[8 : at - 4]  # version 1: an index and nothing after
    side.write_bytes(old + struct.pack("<I", zlib.crc32(old)))
    ti = TimeIndex(path)
    assert ti.info()[0]["status"] == "rebuilt (stale: index format version 1, this lobfast writes 2)"
    assert side.read_bytes()[6:8] == struct.pack("<H", sidecar.VERSION)


def test_checkpoints_are_loaded_not_rebuilt(rec, monkeypatch):
    r = rec["usdm"]
    ts = line_times(r["text"])
    t0 = int(ts[len(ts) // 3])
    want = lobfast.read_binance(r["plain"], start=t0, end=t0 + 5 * SECOND)

    def refuse(*args):
        raise AssertionError("checkpoints rebuilt")

    monkeypatch.setattr(replay.Window, "_build", refuse)
    got = lobfast.read_binance(r["plain"], start=t0, end=t0 + 5 * SECOND)
    assert np.array_equal(got.depth.qty, want.depth.qty)
    data = Path(sidecar_path(r["plain"][0])).read_bytes()
    at, _, n = sidecar_parts(data)
    _, n_json, _ = struct.unpack_from("<6sIQ", data, at)
    params = json.loads(data[at + 18 : at + 18 + n_json])["params"]
    assert params["every"] == replay.CHECKPOINT_EVERY and params["source"] == sidecar.source_stamp(r["plain"][0])
    assert n >= 1


def test_unwritable_sidecar_keeps_checkpoints_in_memory(rec, monkeypatch, tmp_path):
    path = tmp_path / "u.txt"
    path.write_bytes(Path(rec["usdm"]["plain"][0]).read_bytes())
    ts = line_times(rec["usdm"]["text"])
    t0 = int(ts[len(ts) // 2])
    lobfast.read_binance(str(path), start=t0, end=t0 + SECOND)  # index and checkpoints on disk
    os.unlink(sidecar_path(str(path)))
    lobfast.TimeIndex(path)  # the index alone

    def refuse(*args, **kw):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(sidecar, "save", refuse)
    with pytest.warns(LobWarning, match="kept in memory for this process only"):
        md = lobfast.read_binance(str(path), start=t0, end=t0 + SECOND)
    again = lobfast.read_binance(str(path), start=t0, end=t0 + SECOND)  # from memory: no warning
    assert np.array_equal(again.depth.price, md.depth.price, equal_nan=True)


# ---------------------------------------------------------------------------- the core reader


def test_restore_refuses_what_is_not_a_synced_book():
    ok = (2, 100, 1723161255 * SECOND, 1723161255 * SECOND, np.array([1, -1], np.int8), np.array([10.0, 11.0]))
    qty = np.array([1.0, 2.0])
    r = _core.Reader("binance", start=1723161256 * SECOND, book=True)
    r.restore(*ok, qty)
    bad = [
        ((3, *ok[1:]), qty, "market 3"),
        ((ok[0], -5, *ok[2:]), qty, "out of range"),
        ((*ok[:4], np.array([1, 0], np.int8), ok[5]), qty, "level 1 is not a level"),
        ((*ok[:5], np.array([10.0, -1.0])), qty, "level 1 is not a level"),
        (ok, np.array([1.0, np.nan]), "level 1 is not a level"),
        (ok, np.array([1.0, 0.0]), "level 1 is not a level"),
    ]
    for args, q, msg in bad:
        with pytest.raises(LobError, match=msg):
            _core.Reader("binance", start=1723161256 * SECOND, book=True).restore(*args, q)
    with pytest.raises(LobError, match="has read nothing"):
        r.restore(*ok, qty)  # twice
    with pytest.raises(LobError, match="keeps the book"):
        _core.Reader("binance").restore(*ok, qty)
    with pytest.raises(ValueError, match="for 'binance'"):
        _core.Reader("tardis", book=True)
    with pytest.raises(ValueError, match="checkpoint_every"):
        _core.Reader("binance", book=True, checkpoint_every=-1)


# ---------------------------------------------------------------------------- book_at


@pytest.mark.parametrize("name", ["spot", "usdm_tiled"])
def test_book_at_from_files_equals_book_at_from_the_full_depth(rec, name):
    r = rec[name]
    full = r["full"]
    rng = np.random.default_rng(11)
    first = full.depth.ts[np.flatnonzero(full.depth.flags & Flags.RESET)[0]]
    times = rng.integers(first + SECOND, full.depth.ts[-1] - 70 * SECOND, 6)
    ti = TimeIndex(r["zst"])
    valid = 0
    for t in times:
        want = lobfast.book_at(full.depth, int(t), levels=LEVELS)
        for got in (lobfast.book_at(r["zst"], int(t), levels=LEVELS), lobfast.book_at(ti, int(t), levels=LEVELS)):
            for col in ("ts", "update_id", "bid_px", "bid_sz", "ask_px", "ask_sz", "valid"):
                assert np.array_equal(getattr(got, col), getattr(want, col), equal_nan=True), (t, col)
        valid += bool(want.valid[0])
    assert valid == len(times) or name == "usdm_tiled"  # tiled copies leave stale levels: crossed books
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lobfast.book_at(r["plain"], int(times[0]))


def test_bad_lines_before_the_window(tmp_path):
    """Lines before the window are parsed only when they may change the book: a damaged
    diff there stops the read (naming its line) as it would a full read, or is counted with
    on_error="skip"; a damaged trade or quote there is not read at all."""
    lines = gzip.decompress(USDM_BTC_0808.read_bytes()).splitlines(keepends=True)
    ts = line_times(b"".join(lines))
    k = len(lines) // 2
    t0 = int(ts[k + 1000])
    quote = next(i for i in range(k, len(lines)) if b"@bookTicker" in lines[i])
    diff = next(i for i in range(k, len(lines)) if b'"depthUpdate"' in lines[i])
    for i, fails in ((quote, False), (diff, True)):
        bad = lines.copy()
        bad[i] = bad[i].replace(b'"u":', b'"u":"x",', 1)
        path = tmp_path / f"bad{i}.txt"
        path.write_bytes(b"".join(bad))
        if fails:
            with pytest.raises(LobError, match=rf"line {i + 1} "):
                lobfast.read_binance(path, start=t0, end=t0 + SECOND)
            with pytest.warns(LobWarning, match="or a sequence gap since the last one"):  # the lost diff
                md = lobfast.read_binance(path, start=t0, end=t0 + SECOND, on_error="skip")
            assert md.stats["bad_lines"] == 1 and len(md.depth) == 0
        else:
            md = lobfast.read_binance(path, start=t0, end=t0 + SECOND)
            assert md.stats["bad_lines"] == 0 and md.stats["book_at_start"] == 1


def test_prepared_checkpoints_are_the_ones_a_window_uses(rec, monkeypatch, capsys):
    r = rec["usdm_tiled"]
    ts = line_times(r["text"])
    t0 = int(ts[len(ts) * 9 // 10])  # in the second file, long after the only snapshot
    fresh(r["zst"])
    want = lobfast.read_binance(r["zst"], start=t0, end=t0 + 5 * SECOND)  # builds them on first use
    fresh(r["zst"])
    assert lobfast.cli.main(["index", "--checkpoints", *r["zst"]]) == 0
    out = capsys.readouterr().out
    counts = [int(n.replace(",", "")) for n in re.findall(r"([\d,]+) book checkpoints", out)]
    assert len(counts) == 2 and all(n >= 1 for n in counts), out

    def refuse(*args):
        raise AssertionError("checkpoints rebuilt")

    monkeypatch.setattr(replay.Window, "_build", refuse)
    got = lobfast.read_binance(r["zst"], start=t0, end=t0 + 5 * SECOND)
    for name in ("ts", "price", "qty", "side", "flags"):
        assert np.array_equal(getattr(got.depth, name), getattr(want.depth, name)), name
    # a gzip file is read from its start: nothing to prepare, said so
    assert lobfast.prepare_windows([str(USDM_BTC_0808)]) == [(str(USDM_BTC_0808), None)]


def test_prepared_checkpoints_refuse_an_index_dir(rec, tmp_path):
    with pytest.raises(SystemExit):
        lobfast.cli.main(["index", "--checkpoints", "--index-dir", str(tmp_path), *rec["usdm"]["zst"]])
