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


# --- the kernels: every time is in 1970..2262, every span / horizon / every is bounded ---------

I64 = np.iinfo(np.int64)
TS_MAX = 9_214_646_400_000_000_000  # 2262-01-01, the last time a kernel accepts
GOOD_TS = np.array([1, 2, 3, 4, 5], np.int64) * 1_000_000_000
BAD_TIMES = [  # (row, value, what the error says)
    (0, I64.min, "row 0 is NaT"),
    (2, I64.min, "row 2 is NaT"),
    (4, I64.min, "row 4 is NaT"),
    (4, I64.max, r"row 4 \(9223372036854775807 ns\) is outside 1970-01-01..2262-01-01"),
    (4, TS_MAX + 1, r"row 4 \(9214646400000000001 ns\) is outside"),
    (0, -1, r"row 0 \(-1 ns\) is outside 1970-01-01..2262-01-01"),
]


def _kernel_calls(ts):
    """One call per kernel taking times, each over the row times `ts` (5 rows)."""
    from lobfast import _core

    n = len(ts)
    x, mid, lvl = np.arange(1.0, n + 1), np.full(n, 100.0), np.ones((n, 1))
    ok = np.ones(n, bool)
    some = np.array([GOOD_TS[0]], np.int64)
    one, side = np.ones(1), np.zeros(1, np.int8)
    return {
        "rolling_sum": lambda: _core.rolling_sum(x, span=2_000_000_000, ts=ts),
        "rolling_std": lambda: _core.rolling_std(x, span=2_000_000_000, ts=ts),
        "features": lambda: _core.features(ts, ok, np.arange(n), lvl * 99, lvl, lvl * 101, lvl, [("ofi", 1)]),
        "trade_flow book": lambda: _core.trade_flow(ts, ok, some, one, side),
        "trade_flow trades": lambda: _core.trade_flow(GOOD_TS, ok, ts, x, np.zeros(n, np.int8)),
        "aggregate book": lambda: _core.aggregate(ts, lvl * 99, lvl * 101, ok, some, one, one, side, every=10**9),
        "aggregate trades": lambda: _core.aggregate(
            GOOD_TS, lvl * 99, lvl * 101, ok, ts, x, x, np.zeros(n, np.int8), by="volume", every=2.0
        ),
        "label_return rows": lambda: _core.label_return(mid, ts, None, 1, 0),
        "label_return time": lambda: _core.label_return(mid, ts, ok, 0, 1_000_000_000),
        "label_smooth": lambda: _core.label_smooth(mid, ts, None, 2, False),
        "label_barrier": lambda: _core.label_barrier(mid, ts, None, x, x, 0, 10**9),
    }


@pytest.mark.parametrize("kernel", list(_kernel_calls(GOOD_TS)))
@pytest.mark.parametrize("row, value, message", BAD_TIMES)
def test_kernels_refuse_nat_and_times_outside_the_range(kernel, row, value, message):
    _kernel_calls(GOOD_TS)[kernel]()  # the good times pass
    ts = GOOD_TS.copy()
    if row == 0 and value >= 0:  # a time before the epoch needs the rest sorted
        ts[0] = value
    ts[row] = value
    with pytest.raises(ValueError, match=message):
        _kernel_calls(ts)[kernel]()


def test_kernels_refuse_nat_through_the_public_api():
    from lobfast import labels

    mid, ts = np.full(5, 100.0), GOOD_TS.copy()
    ts[0] = I64.min
    with pytest.raises(ValueError, match="row 0 is NaT"):
        lobfast.rolling_std(np.ones(5), "2s", ts=ts)
    one = np.ones((5, 1))
    book = lobfast.BookSnapshots(
        ts=ts, update_id=np.arange(5), bid_px=one * 99, bid_sz=one, ask_px=one * 101, ask_sz=one, valid=np.ones(5, bool)
    )
    with pytest.raises(ValueError, match="ts row 0 is NaT"):
        lobfast.features(book, spec=["ofi_10s", "vol_10s"])
    for call in (
        lambda: labels.forward_return((mid, ts), "1s"),
        lambda: labels.smoothed((mid, ts), 2),
        lambda: labels.triple_barrier((mid, ts), "2s", upper=0.01),
    ):
        with pytest.raises(ValueError, match="row 0 is NaT"):
            call()


def test_huge_spans_and_horizons_are_answered():
    """Spans, horizons and `every` up to INT64_MAX at times up to 2262: no overflow, the answer
    a window that never fills / a horizon past the data gives."""
    from lobfast import _core

    big = I64.max
    ts = np.array([0, 1, TS_MAX - 1, TS_MAX, TS_MAX], np.int64)
    x, mid, ok = np.arange(1.0, 6.0), np.array([100.0, 101, 102, 103, 104]), np.ones(5, bool)
    for span in (big, big - 1, TS_MAX + 1):
        assert np.isnan(_core.rolling_sum(x, span=span, ts=ts)).all()
        assert np.isnan(_core.rolling_std(x, span=span, ts=ts)).all()
        ret, known = _core.label_return(mid, ts, ok, 0, span)
        assert np.isnan(ret).all() and (known == -1).all()
        label, when, r = _core.label_barrier(mid, ts, None, np.full(5, 1.0), np.full(5, 1.0), 0, span)
        assert np.isnan(label).all() and (when == -1).all()
    # a span of exactly the data's length fills once, at the last rows
    s = _core.rolling_sum(x, span=TS_MAX, ts=ts)  # (t - span, t]: row 0 has left at TS_MAX
    assert np.isnan(s[:3]).all() and s[3:].tolist() == [9.0, 14.0]
    ret, known = _core.label_return(mid, ts, ok, 0, TS_MAX)
    assert ret[0] == np.log(104 / 100) and known[0] == TS_MAX and np.isnan(ret[1:]).all()
    for rows in (big, 2**62, 6):
        assert np.isnan(_core.rolling_sum(x, rows=rows)).all()
        assert np.isnan(_core.label_return(mid, ts, ok, rows, 0)[0]).all()
        assert np.isnan(_core.label_smooth(mid, ts, None, rows, True)[0]).all()
        assert np.isnan(_core.label_barrier(mid, ts, None, x, x, rows, 0)[0]).all()
    lvl = np.ones((5, 1))
    none, one = np.empty(0, np.int64), np.empty(0)
    side = np.empty(0, np.int8)
    for every in (big, TS_MAX, TS_MAX + 1):
        bars = _core.aggregate(ts, lvl * 99, lvl * 101, ok, none, one, one, side, every=every)
        assert bars["ts"].tolist() == ([0, TS_MAX] if every == TS_MAX else [0]) and bars["updates"].sum() == 5
        bars = _core.aggregate(ts, lvl * 99, lvl * 101, ok, none, one, one, side, by="events", every=every)
        assert bars["ts"].tolist() == [0] and bars["updates"].tolist() == [5]
    for bad in (0, -1, I64.min):
        with pytest.raises(ValueError, match="every must be > 0"):
            _core.aggregate(ts, lvl * 99, lvl * 101, ok, none, one, one, side, every=bad)
        with pytest.raises(ValueError, match="positive"):
            _core.label_return(mid, ts, ok, 0, bad)
        if bad < 0:  # span 0 is the cumulative window
            with pytest.raises(ValueError, match="positive"):
                _core.rolling_sum(x, span=bad, ts=ts)


def test_row_counts_past_2_62_are_refused_and_2_62_is_past_the_data():
    """One rule for every count of rows (windows, horizons, k, bars of events), as for
    durations: at most 2^62, else a ValueError naming the argument; 2^62 rows reach past
    any data."""
    from lobfast import labels
    from lobfast.book import Quotes

    mid, ts, x = np.full(5, 100.0), GOOD_TS, np.arange(5.0)
    one = np.ones(5)
    q = Quotes(ts=ts, local_ts=ts, update_id=np.arange(5), bid_px=one, bid_qty=one, ask_px=one, ask_qty=one)
    for rows in (2**62 + 1, 2**63 - 1, 2**63, 2**70):
        for call, name in (
            (lambda r: lobfast.rolling_sum(x, r), "window"),
            (lambda r: lobfast.rolling_std(x, r), "window"),
            (lambda r: labels.forward_return((mid, ts), r), "horizon"),
            (lambda r: labels.smoothed((mid, ts), r), "k"),
            (lambda r: labels.triple_barrier((mid, ts), r, upper=0.1), "limit"),
            (lambda r: lobfast.aggregate(q, by="events", every=r), "every"),
        ):
            with pytest.raises(ValueError, match=rf"{name}={rows} rows is more than 2\^62"):
                call(rows)
    rows = 2**62
    assert np.isnan(lobfast.rolling_sum(x, rows)).all() and np.isnan(lobfast.rolling_std(x, rows)).all()
    assert np.isnan(labels.forward_return((mid, ts), rows)[f"ret_{rows}"]).all()
    assert np.isnan(labels.smoothed((mid, ts), rows)[f"smooth_{rows}"]).all()
    assert np.isnan(labels.triple_barrier((mid, ts), rows, upper=0.1)[f"tb_label_{rows}"]).all()
    bars = lobfast.aggregate(q, by="events", every=rows)
    assert bars.ts.tolist() == [ts[0]] and bars["updates"].tolist() == [5]
