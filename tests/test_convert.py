"""lobfast.convert, windows of raw Binance files, and the ``lobfast convert`` / ``index`` commands.

Everything runs on the real recordings in tests/data.  A converted file must hold the
recording byte for byte, end with a valid zstd seekable-format seek table (read here by a
small parser written from the format's description), and give, for every window,
exactly what ``read_binance`` gives when it reads the original gzip file from the start.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import struct
import subprocess
import warnings
import zlib

import numpy as np
import pytest
from conftest import SPOT_BTC_0808, SPOT_BTC_0809, USDM_BTC_0808

import lobfast
from lobfast import LobError, LobWarning, TimeIndex, _core, cli
from lobfast.timeindex import sidecar_path

pytestmark = pytest.mark.skipif(shutil.which("zstd") is None, reason="needs the zstd command")

SEEKABLE_MAGIC = 0x8F92EAB1  # last four bytes of a seekable zstd file
SKIPPABLE_SEEK_MAGIC = 0x184D2A5E  # the skippable frame holding the seek table
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
SECOND = 10**9
REAL = {"spot_0808": SPOT_BTC_0808, "spot_0809": SPOT_BTC_0809, "usdm_0808": USDM_BTC_0808}
TABLES = ("depth", "trades", "agg_trades", "quotes")


def unzstd(data_or_path) -> bytes:
    """Decompressed by the zstd command (all frames, skippable ones ignored)."""
    if isinstance(data_or_path, (str, os.PathLike)):
        return subprocess.run(["zstd", "-dc", str(data_or_path)], capture_output=True, check=True).stdout
    return subprocess.run(["zstd", "-dc"], input=data_or_path, capture_output=True, check=True).stdout


def seek_table(data: bytes) -> tuple[list[tuple[int, int]], int]:
    """The seek table at the end of a zstd seekable-format file: [(compressed, decompressed)]
    per frame, and the table's own size in bytes."""
    assert len(data) >= 17
    frames, descriptor, magic = struct.unpack("<IBI", data[-9:])
    assert magic == SEEKABLE_MAGIC
    assert descriptor & 0x7C == 0  # reserved bits
    entry = 12 if descriptor & 0x80 else 8  # with checksums: one more u32 per entry
    size = 8 + frames * entry + 9
    skip, length = struct.unpack_from("<II", data, len(data) - size)
    assert skip == SKIPPABLE_SEEK_MAGIC and length == size - 8
    at = len(data) - size + 8
    return [struct.unpack_from("<II", data, at + i * entry) for i in range(frames)], size


def line_times(text: bytes) -> np.ndarray:
    return np.array([int(line.split(b" ", 1)[0]) for line in text.splitlines()], dtype=np.int64)


def assert_same_data(got: lobfast.MarketData, want: lobfast.MarketData, where: str = "") -> None:
    for name in TABLES:
        g, w = getattr(got, name), getattr(want, name)
        assert list(g.columns) == list(w.columns), f"{where} {name}"
        for col, values in w.columns.items():
            other = g.columns[col]
            assert other.dtype == values.dtype, f"{where} {name}.{col}"
            assert np.array_equal(other, values, equal_nan=values.dtype.kind == "f"), f"{where} {name}.{col}"


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """Per recording: the original .gz, its text, a plain copy and a converted .zst."""
    out = {}
    for name, gz in REAL.items():
        d = tmp_path_factory.mktemp(name)
        text = gzip.decompress(gz.read_bytes())
        plain = d / f"{name}.txt"
        plain.write_bytes(text)
        zst = d / f"{name}.zst"
        stats = lobfast.convert(gz, zst)
        out[name] = {"gz": gz, "text": text, "plain": plain, "zst": zst, "stats": stats, "dir": d}
    return out


@pytest.mark.parametrize("name", list(REAL))
def test_convert_keeps_every_byte(real, name):
    r = real[name]
    text, zst, stats = r["text"], r["zst"], r["stats"]
    assert unzstd(zst) == text
    assert _core.head(str(zst), len(text) + 100) == text
    frames, _ = seek_table(zst.read_bytes())
    assert stats["lines"] == text.count(b"\n") and stats["bytes_in"] == len(text)
    assert stats["bytes_out"] == os.path.getsize(zst) and stats["frames"] == len(frames)
    assert stats["partial_line_bytes"] == stats["truncated_bytes"] == 0


@pytest.mark.parametrize("name", list(REAL))
def test_seek_table_lists_one_second_frames(real, name):
    r = real[name]
    text, data = r["text"], r["zst"].read_bytes()
    frames, table = seek_table(data)
    c_off = np.cumsum([0] + [c for c, _ in frames])
    d_off = np.cumsum([0] + [d for _, d in frames])
    assert c_off[-1] + table == len(data) and d_off[-1] == len(text)
    pieces = [text[a:b] for a, b in zip(d_off, d_off[1:])]
    for k in range(len(frames)):
        assert data[c_off[k] : c_off[k] + 4] == ZSTD_MAGIC
        assert pieces[k].endswith(b"\n")  # lines are never split
    for k in sorted({0, 1, len(frames) // 2, len(frames) - 1}):  # each frame decompresses on its own
        assert unzstd(data[c_off[k] : c_off[k + 1]]) == pieces[k]
    firsts = []
    for piece in pieces:
        ts = line_times(piece)
        assert np.all(ts - ts[0] < SECOND)  # nothing a second or more after the frame's first line
        firsts.append(ts[0])
    assert np.all(np.diff(firsts) >= SECOND)  # a frame ends only when the next line is a second later
    span = (line_times(text)[-1] - line_times(text)[0]) / SECOND
    assert len(frames) <= span + 1
    assert r["stats"]["frames"] == TimeIndex(r["zst"]).info()[0]["seek_table_frames"]


def test_index_counts_the_frames_that_convert_wrote(real, tmp_path, capsys):
    """The seek table (a skippable frame) holds no data: `lobfast index` and TimeIndex.info()
    report the frames `lobfast convert` wrote and the seek table lists."""
    r = real["spot_0808"]
    frames, _ = seek_table(r["zst"].read_bytes())
    assert r["stats"]["frames"] == len(frames)
    info = TimeIndex(r["zst"], index_dir=tmp_path).info()[0]
    assert info["seek_table_frames"] == len(frames)
    assert cli.main(["index", str(r["zst"]), "--index-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.rstrip().endswith(f" entries, {len(frames):,} frames")
    assert info["frames"] == len(frames)


def test_frame_size_limit_and_frame_duration(tmp_path):
    text = gzip.decompress(SPOT_BTC_0808.read_bytes())
    lines = text.splitlines(keepends=True)
    limit = 100_000
    dst = tmp_path / "small.zst"
    stats = lobfast.convert(SPOT_BTC_0808, dst, frame="1h", frame_bytes=limit, level=1)
    data = dst.read_bytes()
    frames, _ = seek_table(data)
    assert stats["frames"] == len(frames) and unzstd(dst) == text
    # greedy packing of whole lines, as the rule says: cut only when the next line would pass the limit
    sizes, n = [], 0
    for line in lines:
        if n and n + len(line) > limit:
            sizes.append(n)
            n = 0
        n += len(line)
    sizes.append(n)
    assert [d for _, d in frames] == sizes
    stats = lobfast.convert(SPOT_BTC_0808, tmp_path / "quarter.zst", frame=250_000_000)
    frames, _ = seek_table((tmp_path / "quarter.zst").read_bytes())
    d_off = np.cumsum([0] + [d for _, d in frames])
    firsts = [line_times(text[a:b]) for a, b in zip(d_off, d_off[1:])]
    assert all(np.all(t - t[0] < 250_000_000) for t in firsts)
    assert np.all(np.diff([t[0] for t in firsts]) >= 250_000_000)


def real_windows(text: bytes) -> list[tuple]:
    ts = line_times(text)
    lines = text.splitlines()
    snap = [i for i, line in enumerate(lines) if line.split(b" ", 1)[1].startswith(b'{"lastUpdateId"')]
    n = len(ts)
    w = [
        (ts[0], ts[0] + 30 * SECOND),
        (ts[n // 3], ts[n // 3 + 2000]),  # exactly on lines' times
        (ts[n // 2] + 1, ts[n // 2 + 500] + 1),
        (ts[-1] - 20 * SECOND, ts[-1]),
        (ts[-1], ts[-1] + 1),
        (ts[0] - 86400 * SECOND, ts[0] - 1),  # before the data
        (ts[-1] + 1, ts[-1] + 86400 * SECOND),  # after it
        (None, ts[n // 5]),
        (ts[4 * n // 5], None),
        (str(np.datetime64(int(ts[n // 4]), "ns")), str(np.datetime64(int(ts[n // 4]) + 15 * SECOND, "ns"))),
    ]
    for i in snap:  # windows holding the REST snapshot: the book starts in them
        w += [(ts[i], ts[i] + 10 * SECOND), (ts[i] - SECOND, ts[min(i + 3000, n - 1)])]
    return [tuple(t if t is None or isinstance(t, str) else int(t) for t in pair) for pair in w]


def windowed(read, *args, **kw):
    """``read(*args, **kw)`` and the window warnings it gave (any other warning fails)."""
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        out = read(*args, **kw)
    messages = [str(w.message) for w in got]
    assert all(w.category is LobWarning and re.match(r"window \[", str(w.message)) for w in got), messages
    return out, messages


@pytest.mark.parametrize("name", list(REAL))
def test_read_binance_windows_equal_the_gzip_read(real, name):
    r = real[name]
    full = lobfast.read_binance(r["gz"])
    ti_zst = TimeIndex(r["zst"])
    ti_plain = TimeIndex(r["plain"])
    with pytest.warns(LobWarning, match="gzip"):
        ti_gz = TimeIndex(r["gz"], index_dir=r["dir"])
    depth_rows = 0
    for start, end in real_windows(r["text"]):
        want, warned = windowed(lobfast.read_binance, r["gz"], start=start, end=end)  # gzip: from the start
        where = f"{name} [{start}, {end})"
        # the same rows and the same warnings (a window with no line, or without a book at its start)
        for read, path in ((lobfast.read_binance, r["zst"]), (lobfast.read_binance, r["plain"])):
            got, also = windowed(read, path, start=start, end=end)
            assert_same_data(got, want, where)
            assert also == warned, where
        for ti in (ti_zst, ti_plain, ti_gz):
            got, also = windowed(ti.read, start, end)
            assert_same_data(got, want, where)
            assert also == warned, where
        if start is not None and len(want.depth):
            # the depth opens with the book, or says when it became known
            assert (want.depth.flags[0] & 3 == 3) or want.stats["unsynced_until"] is not None, where
        # trades and quotes need no book: the full read, filtered by receive time
        t0 = np.iinfo(np.int64).min if start is None else lobfast.to_ns(start)
        t1 = np.iinfo(np.int64).max if end is None else lobfast.to_ns(end)
        for table in ("trades", "quotes"):
            all_rows = getattr(full, table)
            keep = (all_rows.local_ts >= t0) & (all_rows.local_ts < t1)
            for col, values in getattr(want, table).columns.items():
                assert np.array_equal(values, all_rows.columns[col][keep], equal_nan=True), f"{where} {table}.{col}"
        depth_rows += len(want.depth)
    assert (depth_rows > 0) == (full.stats["snapshots"] > 0)
    assert os.path.exists(sidecar_path(str(r["zst"]))) and os.path.exists(sidecar_path(str(r["plain"])))
    assert not os.path.exists(sidecar_path(str(r["gz"])))  # tests/data is left alone


def test_two_days_of_converted_files_are_one_stream(real):
    a, b = real["spot_0808"], real["spot_0809"]
    ts_a, ts_b = line_times(a["text"]), line_times(b["text"])
    for start, end in [(ts_a[0], ts_b[-1] + 1), (ts_a[-1] - 30 * SECOND, ts_b[0] + 30 * SECOND), (ts_a[100], None)]:
        want = lobfast.read_binance([a["gz"], b["gz"]], start=start, end=end)
        assert_same_data(lobfast.read_binance([a["zst"], b["zst"]], start=start, end=end), want)
        assert_same_data(TimeIndex([b["zst"], a["zst"]]).read(start, end), want)  # ordered by time
    assert TimeIndex([a["zst"], b["zst"]]).rows == len(ts_a) + len(ts_b)


def test_raw_index_and_small_windows_decompress_little(real):
    r = real["usdm_0808"]
    text = r["text"]
    ts = line_times(text)
    ti = TimeIndex(r["zst"])
    assert ti.format == "raw" and ti.rows == len(ts) and (ti.start, ti.end) == (ts[0], ts[-1])
    info = ti.info()[0]
    assert info["compression"] == "zstd" and info["d_size"] == len(text) and info["c_size"] <= info["size"]
    t0 = int(ts[len(ts) // 2])
    ti.read(t0, t0 + 2 * SECOND)
    inside = np.count_nonzero((ts >= t0) & (ts < t0 + 2 * SECOND))
    assert ti.last_read["rows"] == inside > 0
    assert 0 < ti.last_read["decompressed_bytes"] < len(text) // 20
    ti.read(None, None)
    assert ti.last_read["decompressed_bytes"] == len(text)
    plain = TimeIndex(r["plain"])
    plain.read(t0, t0 + 2 * SECOND)
    assert plain.last_read["decompressed_bytes"] == 0 and plain.last_read["text_bytes"] < len(text) // 20


def test_columns_of_a_raw_file_are_refused(real):
    """Raw files give MarketData: a column selection cannot apply, and is not silently dropped."""
    ti = TimeIndex(real["spot_0809"]["zst"])
    with pytest.raises(TypeError, match="columns= applies to CSV"):
        ti.read(None, None, columns=["price"])


def test_corrupt_frame_of_a_raw_file(real, tmp_path):
    r = real["spot_0808"]
    text, data = r["text"], r["zst"].read_bytes()
    frames, _ = seek_table(data)
    c_off = np.cumsum([0] + [c for c, _ in frames])
    d_off = np.cumsum([0] + [d for _, d in frames])
    k = len(frames) // 2
    bad = bytearray(data)
    bad[c_off[k] + 30 : c_off[k] + 46] = bytes(16)
    path = tmp_path / "bad.zst"
    path.write_bytes(bytes(bad))
    message = rf"zstd frame {k} at byte {c_off[k]} is corrupt"
    with pytest.warns(LobWarning, match=message):
        ti = TimeIndex(path)
    ts = line_times(text)
    before = line_times(text[: d_off[k]])
    assert ti.rows == len(before) and ti.end == before[-1]
    for start, end in [(None, before[-1] + 1), (ts[0], ts[0] + 60 * SECOND), (before[-500], before[-1])]:
        want = lobfast.read_binance(r["gz"], start=start, end=end)
        assert_same_data(ti.read(start, end), want, f"[{start}, {end})")
        with pytest.warns(LobWarning, match=message):
            got = lobfast.read_binance(path, start=start, end=end)
        assert_same_data(got, want, f"read_binance [{start}, {end})")
    for start, end in [(before[-1], before[-1] + 2 * SECOND), (ts[-100], None), (None, None)]:
        with pytest.raises(LobError, match=message):
            ti.read(start, end)


@pytest.mark.parametrize("where", ["last frame", "big frame"])
def test_truncated_zst_of_a_raw_file(real, tmp_path, where):
    r = real["spot_0808"]
    text = r["text"]
    src = r["zst"]
    if where == "big frame":  # one frame of many blocks: its complete blocks still decompress
        src = tmp_path / "one.zst"
        lobfast.convert(r["plain"], src, frame="1d", frame_bytes=1 << 30)
    data = src.read_bytes()
    frames, table = seek_table(data)
    last = frames[-1][0]
    cut = tmp_path / "cut.zst"
    cut.write_bytes(data[: len(data) - table - last // 2])  # half of the last frame, no seek table
    out = subprocess.run(["zstd", "-dc", str(cut)], capture_output=True).stdout
    complete = out[: out.rindex(b"\n") + 1]
    assert text.startswith(complete) and len(complete) < len(text)
    prefix = tmp_path / "complete.txt"
    prefix.write_bytes(complete)
    with pytest.warns(LobWarning, match="ends inside a compressed block"):
        ti = TimeIndex(cut)
    assert ti.rows == complete.count(b"\n") and ti.info()[0]["seek_table_frames"] == -1
    ts = line_times(complete)
    for start, end in [(None, None), (ts[-200], None), (ts[0], ts[0] + 30 * SECOND)]:
        want = lobfast.read_binance(prefix, start=start, end=end)
        assert_same_data(ti.read(start, end), want, f"{where} [{start}, {end})")
    with pytest.warns(LobWarning, match="truncated"):
        assert_same_data(lobfast.read_binance(cut), lobfast.read_binance(prefix))


def test_convert_truncated_gzip_keeps_the_complete_lines(tmp_path):
    gz = SPOT_BTC_0808.read_bytes()
    cut = tmp_path / "cut.gz"
    cut.write_bytes(gz[: len(gz) * 6 // 10])
    part = zlib.decompressobj(31).decompress(cut.read_bytes())  # what can be decompressed
    complete = part[: part.rindex(b"\n") + 1]
    with pytest.warns(LobWarning, match=r"cut\.gz is cut off: .* incomplete last line"):
        stats = lobfast.convert(cut, tmp_path / "out.zst")
    assert unzstd(tmp_path / "out.zst") == complete
    assert stats["lines"] == complete.count(b"\n") and stats["partial_line_bytes"] == len(part) - len(complete)
    assert stats["truncated_bytes"] > 0


def test_convert_refuses_to_overwrite_its_source(tmp_path):
    src = tmp_path / "a.txt"
    src.write_bytes(gzip.decompress(SPOT_BTC_0808.read_bytes())[:50_000].rsplit(b"\n", 1)[0] + b"\n")
    before = src.read_bytes()
    for dst in (src, str(src), tmp_path / "." / "a.txt", os.path.relpath(src)):
        with pytest.raises(ValueError, match="dst must not be src"):
            lobfast.convert(src, dst)
    assert src.read_bytes() == before
    with pytest.raises(ValueError, match="frame must be a positive duration"):
        lobfast.convert(src, tmp_path / "b.zst", frame=0)
    assert sorted(os.listdir(tmp_path)) == ["a.txt"]


def test_failed_convert_leaves_nothing(tmp_path):
    lobfast.convert(SPOT_BTC_0808, tmp_path / "good.zst")
    data = (tmp_path / "good.zst").read_bytes()
    frames, _ = seek_table(data)
    bad = bytearray(data)
    bad[frames[0][0] + 40 : frames[0][0] + 56] = bytes(16)  # inside the second frame
    (tmp_path / "bad.zst").write_bytes(bytes(bad))
    with pytest.raises(LobError, match="corrupt"):
        lobfast.convert(tmp_path / "bad.zst", tmp_path / "out.zst")
    assert sorted(os.listdir(tmp_path)) == ["bad.zst", "good.zst"]


def test_convert_csv_keeps_header_crlf_and_last_line(tmp_path):
    rows = [f"binance,BTCUSDT,{1723161255000000 + 1000 * i},{i % 10}.5" for i in range(30_000)]
    text = ("exchange,symbol,timestamp,price\r\n" + "\r\n".join(rows)).encode()  # no final newline
    src = tmp_path / "a.csv"
    src.write_bytes(text)
    stats = lobfast.convert(src, tmp_path / "a.csv.zst", frame="5ms")
    assert unzstd(tmp_path / "a.csv.zst") == text and stats["lines"] == 30_001
    frames, _ = seek_table((tmp_path / "a.csv.zst").read_bytes())
    assert stats["frames"] == len(frames) == 6000  # 5 rows of 1 ms a frame, the header with the first
    with pytest.raises(LobError, match="no timestamp column 'time'"):
        lobfast.convert(src, tmp_path / "b.zst", ts_col="time")
    a = TimeIndex(src).read()
    b = TimeIndex(tmp_path / "a.csv.zst").read()
    assert all(np.array_equal(a[k], b[k]) for k in a) and len(a["timestamp"]) == 30_000


# ---------------------------------------------------------------------------- the command


def test_cli_convert_and_index(real, tmp_path, capsys):
    r = real["spot_0808"]
    dst = tmp_path / "out.zst"
    assert cli.main(["convert", str(r["gz"]), str(dst)]) == 0
    out = capsys.readouterr().out
    lines = r["text"].count(b"\n")
    frames, _ = seek_table(dst.read_bytes())
    assert out.startswith(f"{dst}: {lines:,} lines, {len(frames):,} frames, ")
    assert f"{len(r['text']) / 1e6:,.1f} MB of text -> {os.path.getsize(dst) / 1e6:,.1f} MB" in out
    assert unzstd(dst) == r["text"]
    assert cli.main(["convert", str(r["gz"]), str(tmp_path / "b.zst"), "--frame", "10s", "--level", "1"]) == 0
    assert f"{lines:,} lines" in capsys.readouterr().out
    assert len(seek_table((tmp_path / "b.zst").read_bytes())[0]) < len(frames) // 5

    assert cli.main(["index", str(dst)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"<TimeIndex raw, 1 file(s), {lines:,} rows, ")
    assert out[1].startswith(f"  {dst}: built, zstd, {lines:,} rows, 2024-08-08 ")
    assert out[1].endswith(" frames")
    assert os.path.exists(sidecar_path(str(dst)))
    assert cli.main(["index", str(tmp_path / "*.zst")]) == 0
    out = capsys.readouterr().out
    assert "2 file(s)" in out and f"{dst}: loaded, zstd" in out and "b.zst: built, zstd" in out

    ix = tmp_path / "ix"
    ix.mkdir()
    csv = tmp_path / "t.csv"
    csv.write_text("id,time,price\n" + "".join(f"{i},{1723161255000 + i},{i}.5\n" for i in range(100)))
    assert cli.main(["index", str(csv), "--ts-col", "time", "--unit", "ms", "--index-dir", str(ix)]) == 0
    out = capsys.readouterr().out
    assert "<TimeIndex csv, 1 file(s), 100 rows, 2024-08-08T23:54:15.000000000 .. 2024-08-08T23:54:15.099" in out
    assert f"{csv}: built, plain, 100 rows, 2024-08-08 23:54:15.000 -> 2024-08-08 23:54:15.099" in out
    assert os.listdir(ix) == [os.path.basename(sidecar_path(str(csv), str(ix)))]
    assert cli.main(["index", str(csv), "--ts-col", "1", "--unit", "ms", "--index-dir", str(ix)]) == 0
    assert "rebuilt (stale: built with other parameters)" in capsys.readouterr().out
    with pytest.raises(LobError, match="no timestamp column 'timestamp'"):
        cli.main(["index", str(csv)])
    assert cli.main(["nothing"]) == 2 and "convert SRC DST" in capsys.readouterr().err


def test_convert_junk_after_gzip_is_left_out_with_a_warning(tmp_path):
    gz = SPOT_BTC_0808.read_bytes()
    src = tmp_path / "padded.gz"
    src.write_bytes(gz + bytes(4096))  # zero padding a download left
    with pytest.warns(LobWarning, match=rf"padded\.gz: the bytes from byte {len(gz)} on are not compressed data"):
        stats = lobfast.convert(src, tmp_path / "out.zst")
    assert stats["junk_offset"] == len(gz)
    assert unzstd(tmp_path / "out.zst") == gzip.decompress(gz)
    # the converted file reads without a warning and gives the same rows
    md = lobfast.read_binance(tmp_path / "out.zst")
    assert len(md.trades) == len(lobfast.read_binance(SPOT_BTC_0808).trades)


def test_convert_line_over_max_line_leaves_nothing(tmp_path):
    text = gzip.decompress(SPOT_BTC_0808.read_bytes())[:200_000]
    text = text[: text.rindex(b"\n") + 1]
    src = tmp_path / "long.txt"
    longest = max(map(len, text.split(b"\n")))  # a REST snapshot
    src.write_bytes(text + b"1723161256000000000 " + b"x" * longest + b"\n")
    line = text.count(b"\n") + 1
    where = rf"long\.txt, line {line} \(byte {len(text)}\): the line is longer than max_line"
    with pytest.raises(LobError, match=where):
        lobfast.convert(src, tmp_path / "out.zst", max_line=longest)
    assert sorted(os.listdir(tmp_path)) == ["long.txt"]
    stats = lobfast.convert(src, tmp_path / "out.zst", max_line=2 * longest)
    assert unzstd(tmp_path / "out.zst") == src.read_bytes() and stats["junk_offset"] == -1
