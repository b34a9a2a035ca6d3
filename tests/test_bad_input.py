"""Bad input gets a clear error (or, with on_error="skip", a count) and loses nothing."""

from __future__ import annotations

import gzip
import shutil
import subprocess

import numpy as np
import pytest
from conftest import SPOT_BTC_0808, raw_lines

import lobfast
from lobfast import LobError, LobWarning

LINES = raw_lines(SPOT_BTC_0808)
TRADE = next(line for line in LINES if b"@trade" in line)


def restamp(line: bytes, ref: bytes) -> bytes:
    """`line`'s message with `ref`'s receive time, so a spliced line keeps the file in order."""
    return ref.split(b" ", 1)[0] + b" " + line.split(b" ", 1)[1]


def write(tmp_path, name: str, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_wrong_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        lobfast.read_binance(tmp_path / "missing.gz")
    with pytest.raises(FileNotFoundError, match="no files match"):
        lobfast.read_binance(str(tmp_path / "*.gz"))
    with pytest.raises(IsADirectoryError, match="is a directory"):
        lobfast.read_binance(tmp_path)
    with pytest.raises(ValueError, match="no paths"):
        lobfast.read_binance([])


def test_empty_file(tmp_path):
    p = write(tmp_path, "empty.gz", gzip.compress(b""))
    with pytest.raises(LobError, match="empty"):
        lobfast.read_binance(p)
    with pytest.warns(LobWarning, match="empty"):
        md = lobfast.read_binance([p, SPOT_BTC_0808], on_error="skip")
    assert len(md.trades) == 9757


def test_binary_file(tmp_path):
    p = write(tmp_path, "random.bin", np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(LobError, match=r"random\.bin, line 1 \(byte 0\): binary data"):
        lobfast.read_binance(p)


def test_malformed_json_names_file_and_line(tmp_path):
    bad = TRADE.replace(b'"p":"', b'"p":', 1)  # an unquoted-then-quoted mess
    data = b"".join(LINES[:10]) + restamp(bad, LINES[9]) + b"".join(LINES[10:20])
    p = write(tmp_path, "bad.txt", data)
    offset = len(b"".join(LINES[:10]))
    with pytest.raises(LobError, match=rf"bad\.txt, line 11 \(byte {offset}\): column \d+: expected") as e:
        lobfast.read_binance(p)
    assert (e.value.line, e.value.offset, e.value.path) == (11, offset, str(p))
    md = lobfast.read_binance(p, on_error="skip")
    assert md.stats["bad_lines"] == 1 and "line 11" in md.stats["first_bad_line"]
    good = lobfast.read_binance(write(tmp_path, "good.txt", b"".join(LINES[:10] + LINES[10:20])))
    assert len(md.trades) == len(good.trades) and md.stats["lines"] == 21


@pytest.mark.parametrize(
    "line, message",
    [
        (b"abc " + TRADE.split(b" ", 1)[1], "expected '<receive time in ns> <JSON message>'"),
        (b"-5 " + TRADE.split(b" ", 1)[1], "expected '<receive time in ns>"),
        (TRADE.split(b" ", 1)[1], "expected '<receive time in ns>"),
        (TRADE.replace(b'"q":"0.02000000"', b'"q":"1e400"'), "decimal within float64 range"),
        (TRADE.replace(b'"q":"0.02000000"', b'"q":"' + b"1" * 45 + b'"'), "decimal within float64 range"),
        (TRADE.replace(b'"t":3735683259', b'"t":99999999999999999999'), "integer within int64"),
        (TRADE.replace(b'"t":3735683259', b'"t":1.5'), "an integer"),
        (TRADE.replace(b'"m":true', b'"m":"yes"'), "true or false"),
        (TRADE.replace(b'"p":"61837.63000000",', b""), "trade message without 'p'"),
        (TRADE[:-5] + b"\n", "expected"),
        (TRADE[:-1] + b" trailing\n", "end of the line after the JSON object"),
        (TRADE.replace(b'"p":"61837.63000000"', b'"p":"6183x"'), "expected '\"' after the decimal"),
    ],
)
def test_bad_line(tmp_path, line, message):
    if line[:1].isdigit() and not line.startswith(b"-"):
        line = restamp(line, LINES[4])
    p = write(tmp_path, "one.txt", b"".join(LINES[:5]) + line + b"".join(LINES[5:8]))
    with pytest.raises(LobError, match=r"one\.txt, line 6 \(byte \d+\): .*" + __import__("re").escape(message)):
        lobfast.read_binance(p)
    md = lobfast.read_binance(p, on_error="skip")
    assert md.stats["bad_lines"] == 1 and md.stats["lines"] == 9


def test_negative_quantity_in_depth(tmp_path):
    diff = next(line for line in LINES if b"depthUpdate" in line)
    bad = diff.replace(b'"0.00000000"', b'"-1.0"', 1)
    p = write(tmp_path, "neg.txt", bad)
    with pytest.raises(LobError, match="non-negative qty"):
        lobfast.read_binance(p)


def test_skipped_depth_line_becomes_a_gap(tmp_path):
    """A malformed diff skipped with on_error='skip' breaks the sequence: it must show as a
    GAP, never as a silently wrong book."""
    diffs = [i for i, line in enumerate(LINES) if b"depthUpdate" in line]
    k = diffs[50]
    lines = list(LINES)
    lines[k] = lines[k].replace(b'"U":', b'"U":"', 1)
    md = lobfast.read_binance(write(tmp_path, "gap.txt", b"".join(lines)), on_error="skip")
    assert md.stats["bad_lines"] == 1 and md.stats["gaps"] == 1
    gap = np.flatnonzero(md.depth.flags & lobfast.Flags.GAP)
    assert len(gap) == 1 and md.depth.side[gap[0]] == 0 and np.isnan(md.depth.price[gap[0]])
    # nothing after the gap: this file has no second snapshot to resync on
    assert gap[0] == len(md.depth) - 1


def truncated(tmp_path, name, compressor, fraction=0.6):
    whole = compressor(b"".join(LINES))
    return write(tmp_path, name, whole[: int(len(whole) * fraction)])


@pytest.mark.parametrize("kind", ["gz", "zst"])
def test_truncated_compressed_tail(tmp_path, kind):
    if kind == "gz":
        p = truncated(tmp_path, "cut.gz", lambda b: gzip.compress(b, 6))
    else:
        if shutil.which("zstd") is None:
            pytest.skip("the zstd command is needed to write the fixture (make test installs it)")
        src = write(tmp_path, "whole.txt", b"".join(LINES))
        subprocess.run(
            ["zstd", "-q", "-f", "--block-size=64KB", str(src), "-o", str(tmp_path / "whole.zst")], check=True
        )
        data = (tmp_path / "whole.zst").read_bytes()
        p = write(tmp_path, "cut.zst", data[: int(len(data) * 0.6)])
    with pytest.warns(LobWarning, match=r"truncated: \d+ bytes .* \d+ bytes of an incomplete last line"):
        md = lobfast.read_binance(p)
    full = lobfast.read_binance(SPOT_BTC_0808)
    n = len(md.trades)
    assert 0 < n < len(full.trades)
    assert np.array_equal(md.trades.trade_id, full.trades.trade_id[:n]), "everything before the cut is returned"
    assert md.stats["truncated_files"] == 1 and md.stats["truncated_bytes"] > 0


def test_zstd_and_plain_read_the_same(tmp_path):
    if shutil.which("zstd") is None:
        pytest.skip("the zstd command is needed to write the fixture")
    src = write(tmp_path, "plain.log", b"".join(LINES))  # content decides, not the name
    subprocess.run(["zstd", "-q", "-f", str(src), "-o", str(tmp_path / "a.zst")], check=True)
    a = lobfast.read_binance(src)
    b = lobfast.read_binance(tmp_path / "a.zst")
    c = lobfast.read_binance(SPOT_BTC_0808)
    for x in (a, b):
        assert np.array_equal(x.depth.price, c.depth.price) and np.array_equal(x.quotes.ts, c.quotes.ts)


def test_corrupt_gzip(tmp_path):
    data = bytearray(gzip.compress(b"".join(LINES[:2000])))
    data[len(data) // 2 : len(data) // 2 + 64] = b"\x00" * 64
    with pytest.raises(LobError, match="gzip data is corrupt"):
        lobfast.read_binance(write(tmp_path, "corrupt.gz", bytes(data)))


def test_crlf_blank_lines_and_unknown_messages(tmp_path):
    extra = [
        b"\n",
        b'1723161253937085760 {"result":null,"id":1}\n',
        b'1723161253937085761 {"stream":"btcusdt@markPrice","data":{"e":"markPriceUpdate","E":1,"s":"BTCUSDT"}}\n',
        b'1723161253937085762 {"lobfast":{"event":"connect","url":"wss://x"}}\n',
        b'1723161253937085763 {"stream":"btcusdt@depth5@100ms","data":{"lastUpdateId":1,"bids":[],"asks":[]}}\n',
    ]
    body = [line.replace(b"\n", b"\r\n") for line in LINES[:50]]
    md = lobfast.read_binance(write(tmp_path, "misc.txt", b"".join(extra + body)))
    s = md.stats
    assert (s["blank_lines"], s["unknown_messages"], s["collector_events"], s["partial_depth_messages"]) == (
        1,
        2,
        1,
        1,
    )
    ref = lobfast.read_binance(write(tmp_path, "plain.txt", b"".join(LINES[:50])))
    assert np.array_equal(md.quotes.bid_px, ref.quotes.bid_px)


def test_bad_arguments():
    with pytest.raises(ValueError, match="on_error must be 'raise' or 'skip'"):
        lobfast.read_binance(SPOT_BTC_0808, on_error="ignore")
    with pytest.raises(ValueError, match="start .* must be before end"):
        lobfast.read_binance(SPOT_BTC_0808, start=10, end=5)
    with pytest.raises(ValueError, match="cannot read 'yesterday' as a time"):
        lobfast.read_binance(SPOT_BTC_0808, start="yesterday")
    with pytest.raises(ValueError, match="chunk_rows must be positive"):
        next(lobfast.iter_binance(SPOT_BTC_0808, chunk_rows=0))
    with pytest.raises(ValueError, match="symbol must be 1 to 31 characters"):
        lobfast.read_binance(SPOT_BTC_0808, symbol="X" * 40)
    with pytest.raises(ValueError, match="format must be"):
        lobfast._core.Reader("csv")


def test_files_out_of_order(tmp_path):
    """A recording is in receive order; files given in the wrong order are an error, not a
    silently broken sequence."""
    from conftest import SPOT_BTC_0809

    with pytest.raises(
        LobError,
        match=r"0808.gz, line 1 \(byte 0\): receive time \d+ is before the previous "
        r"line's \d+ \(files out of order\?\)",
    ):
        lobfast.read_binance([SPOT_BTC_0809, SPOT_BTC_0808])
    swapped = write(tmp_path, "swapped.txt", b"".join([LINES[1], LINES[0]] + LINES[2:50]))
    md = lobfast.read_binance(swapped, on_error="skip")
    assert md.stats["bad_lines"] == 1 and "before the previous line" in md.stats["first_bad_line"]


def test_empty_diff_before_a_snapshot_then_a_gap(tmp_path):
    """A buffered diff without levels that breaks the sequence: the GAP row takes that
    diff's own receive time (it has no level row to read it from)."""
    lines = (
        b'1000000000000000001 {"e":"depthUpdate","E":1723161255208,"s":"BTCUSDT","U":100,"u":105,"b":[],"a":[]}\n'
        b'1000000000000000002 {"e":"depthUpdate","E":1723161255308,"s":"BTCUSDT","U":200,"u":205,"b":[],"a":[]}\n'
        b'1000000000000000003 {"lastUpdateId":101,"bids":[["1.0","2.0"]],"asks":[["2.0","1.0"]]}\n'
    )
    md = lobfast.read_binance(write(tmp_path, "empty.txt", lines))
    d = md.depth
    assert d.flags.tolist() == [3, 9, 12] and d.update_id.tolist() == [101, 101, 205]
    assert d.local_ts[2] == 1000000000000000002 and md.stats["gaps"] == 1


@pytest.mark.parametrize(
    "fields, message",
    [
        ('"U":-5,"u":5', "depthUpdate ids out of range"),
        ('"U":9,"u":5', "depthUpdate ids out of range"),
        ('"U":1,"u":9223372036854775807', "depthUpdate ids out of range"),
    ],
)
def test_update_ids_out_of_range(tmp_path, fields, message):
    line = b'1 {"e":"depthUpdate","E":1723161255208,"s":"BTCUSDT",' + fields.encode() + b',"b":[],"a":[]}\n'
    with pytest.raises(LobError, match=message):
        lobfast.read_binance(write(tmp_path, "ids.txt", line))


def test_error_after_skipped_lines_has_its_own_location(tmp_path):
    body = b"not a line\n" + b"".join(LINES[1:2000])
    data = bytearray(gzip.compress(body))
    data[-2000:-1000] = b"\x00" * 1000
    with pytest.raises(LobError) as e:
        lobfast.read_binance(write(tmp_path, "late.gz", bytes(data)), on_error="skip")
    assert e.value.line == 0 and "gzip data is corrupt" in str(e.value) and "(after line" in str(e.value)


def test_a_symbol_that_is_not_there():
    with pytest.raises(LobError, match=r"symbol 'BTCUSDX' is not in the data, which holds BTCUSDT") as e:
        lobfast.read_binance(SPOT_BTC_0808, symbol="BTCUSDX")
    assert e.value.line == 0 and e.value.offset == 0
    with pytest.raises(LobError, match="is not in the data"):
        list(lobfast.iter_binance(SPOT_BTC_0808, symbol="btcusdx", chunk_rows=50_000))


def test_python_raised_errors_carry_the_c_attributes(tmp_path):
    p = write(tmp_path, "empty.gz", gzip.compress(b""))
    with pytest.raises(LobError) as e:
        lobfast.read_binance(p)
    assert (e.value.path, e.value.line, e.value.offset) == (str(p), 0, 0)
