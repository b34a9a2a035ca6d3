"""Bad input gets a clear error (or, with on_error="skip", a count) and loses nothing."""

from __future__ import annotations

import gzip
import shutil
import subprocess

import numpy as np
import pytest
from conftest import SPOT_BTC_0808, interrupted, raw_lines

import lobfast
from lobfast import LobError, LobWarning, datasets

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


@pytest.mark.parametrize("n", [1, 63, 64, 65, 66, 130, 200])
@pytest.mark.parametrize("bad", ["nat", "below", "above", "back"])
def test_the_time_check_names_a_bad_row_anywhere_in_its_blocks(n, bad):
    """The checks run over blocks of 64 times (vector instructions: SSE2, or AVX2 where the CPU
    has it), then the row loop names the first bad row: a bad row at every place of a block, and
    in the rows after the last whole block, is found; good times pass."""
    good = np.arange(n, dtype=np.int64) * 1_000 + GOOD_TS[0]
    x = np.ones(n)

    def calls(ts):
        no_trades = (ts[:0], x[:0], x[:0], np.zeros(0, np.int8))
        book = (ts, x[:, None], x[:, None], np.ones(n, bool))
        return [
            lambda: _core.rolling_sum(x, span=10_000, ts=ts),
            lambda: _core.aggregate(*book, *no_trades, every=10**6, threads=1),
            lambda: _core.aggregate(*book, *no_trades, every=10**6, threads=2),
        ]

    for call in calls(good):
        call()
    for row in range(1 if bad == "back" else 0, n):
        ts = good.copy()
        if bad == "nat":
            ts[row], want = I64.min, f"row {row} is NaT"
        elif bad == "below":  # the range is checked before the order, row by row
            ts[row], want = -1, rf"row {row} \(-1 ns\) is outside"
        elif bad == "above":
            ts[row], want = TS_MAX + 1, rf"row {row} \({TS_MAX + 1} ns\) is outside"
        else:
            ts[row] = ts[row - 1] - 1
            want = rf"row {row - 1} \({ts[row - 1]}\) comes before row {row} \({ts[row]}\)"
        for call in calls(ts):
            with pytest.raises(ValueError, match=want):
                call()


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


# ---------------------------------------------------------------- bounds, damaged ends, signals

import os  # noqa: E402
import pickle  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
import zlib  # noqa: E402

import pandas as pd  # noqa: E402

from lobfast import _core  # noqa: E402

REPLY = b'1723161255000000000 {"result":null,"id":1}\n'  # a reply: parsed, counted, no rows


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def zstd_frame(data: bytes, level: int = 3) -> bytes:
    return subprocess.run(["zstd", "-c", f"-{level}"], input=data, capture_output=True, check=True).stdout


needs_zstd = pytest.mark.skipif(shutil.which("zstd") is None, reason="needs the zstd command")


@needs_zstd
def test_a_line_longer_than_max_line_stops_with_its_offset_and_bounded_memory(tmp_path):
    """512 MiB of 'a' without a newline (a few KB of zstd) after two good lines: the read
    stops at the limit naming the line and its byte offset, without holding the line."""
    head = b"".join(LINES[:2])
    p = write(tmp_path, "long.zst", zstd_frame(head + b"a" * (512 << 20)))
    assert os.path.getsize(p) < 1 << 20
    where = rf"long\.zst, line 3 \(byte {len(head)}\): the line is longer than max_line=1048576"
    for kw in ({}, {"on_error": "skip"}):
        with pytest.raises(LobError, match=where):
            lobfast.read_binance(p, max_line=1 << 20, **kw)
    # the peak memory of a fresh process (VmHWM: ru_maxrss would count the parent's before exec)
    probe = (
        "import lobfast\n"
        f"try:\n    lobfast.read_binance({str(p)!r}, max_line=1 << 20)\nexcept lobfast.LobError:\n    pass\n"
        "print(next(int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmHWM')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert int(out.stdout) < 300 << 10  # KiB: far below the 512 MiB line
    with pytest.raises(LobError, match="longer than max_line=67108864"):
        lobfast.read_binance(p)  # the default bound: 64 MiB
    with pytest.raises(LobError, match="longer than max_line=100"):
        list(lobfast.iter_binance(p, max_line=100))
    md = lobfast.read_binance(SPOT_BTC_0808, max_line=max(map(len, LINES)))  # the longest line fits
    assert len(md.trades) == 9757
    for bad in (0, -1, 1 << 41, 1.5, "1"):
        with pytest.raises(ValueError, match="max_line"):
            lobfast.read_binance(SPOT_BTC_0808, max_line=bad)


def test_dev_zero_is_refused_at_max_line():
    with pytest.raises(LobError, match=r"/dev/zero, line 1 \(byte 0\): the line is longer than max_line=1048576"):
        lobfast.read_binance("/dev/zero", max_line=1 << 20)


@needs_zstd
def test_zstd_frame_asking_for_a_huge_window_is_refused(tmp_path):
    """A 13-byte frame whose header asks for a 2 GiB window: refused, never allocated."""
    frame = b"\x28\xb5\x2f\xfd" + b"\x00" + bytes([(31 - 10) << 3]) + b"\x09\x00\x00" + b"x"
    p = write(tmp_path, "window.zst", zstd_frame(LINES[0]) + frame)
    with pytest.raises(LobError, match=r"zstd frame at byte \d+ asks for a window over 128 MiB"):
        lobfast.read_binance(p)


@pytest.mark.parametrize("junk", [b"\0" * 4096, b"\0", b"garbage after the data\n", b"\x1f\x00", b"\x1f"])
def test_gzip_followed_by_junk_is_read_with_a_warning(tmp_path, junk):
    gz = gzip.compress(b"".join(LINES))
    p = write(tmp_path, "junk.gz", gz + junk)
    for on_error in ("raise", "skip"):
        if junk == b"\x1f":  # could be the first byte of a member: a cut file
            with pytest.warns(LobWarning, match=r"junk\.gz: the compressed file is truncated: 1 bytes"):
                md = lobfast.read_binance(p, on_error=on_error)
            assert len(md.trades) == 9757
            continue
        with pytest.warns(LobWarning, match=rf"junk\.gz: the bytes from byte {len(gz)} on are not compressed data"):
            md = lobfast.read_binance(p, on_error=on_error)
        assert len(md.trades) == 9757 and md.stats["junk_files"] == 1 and md.stats["junk_offset"] == len(gz)


def test_gzip_members_then_junk_and_a_corrupt_member(tmp_path):
    a, b = gzip.compress(b"".join(LINES[:5000])), gzip.compress(b"".join(LINES[5000:]))
    with pytest.warns(LobWarning, match=rf"from byte {len(a) + len(b)} on"):
        md = lobfast.read_binance(write(tmp_path, "two.gz", a + b + b"\0" * 100))
    assert len(md.trades) == 9757
    bad = bytearray(b)
    bad[len(b) // 2 : len(b) // 2 + 64] = b"\xff" * 64  # a real member, damaged: still an error
    with pytest.raises(LobError, match="gzip data is corrupt"):
        lobfast.read_binance(write(tmp_path, "bad.gz", a + bytes(bad)))


@needs_zstd
@pytest.mark.parametrize("junk", [b"\0" * 1000, b"junk\n", b"\x28"])
def test_zstd_followed_by_junk_is_read_with_a_warning(tmp_path, junk):
    z = zstd_frame(b"".join(LINES[:5000])) + zstd_frame(b"".join(LINES[5000:]))
    p = write(tmp_path, "junk.zst", z + junk)
    with pytest.warns(LobWarning) as w:
        md = lobfast.read_binance(p, on_error="skip")
    assert len(md.trades) == 9757
    text = " ".join(str(x.message) for x in w)
    if junk == b"\x28":  # could be the first byte of a frame: a cut file
        assert "truncated" in text
    else:
        assert f"from byte {len(z)} on are not compressed data" in text


@pytest.mark.parametrize("kind", ["plain", "gzip", "zstd"])
def test_last_line_being_written_is_dropped_with_a_warning(tmp_path, kind):
    """A file whose writer is in the middle of its last line: the line does not parse, so
    it is left out with a warning naming its offset (as a cut .gz/.zst does); a last line
    without newline that parses is kept."""
    if kind == "zstd" and shutil.which("zstd") is None:
        pytest.skip("needs the zstd command")
    body = b"".join(LINES[:3000])
    pack = {"plain": lambda d: d, "gzip": gzip.compress, "zstd": zstd_frame}[kind]
    cut = TRADE[: len(TRADE) // 2]
    p = write(tmp_path, "mid.dat", pack(body + restamp(cut, LINES[2999])))
    for on_error in ("raise", "skip"):
        with pytest.warns(LobWarning, match=rf"the last line \(byte {len(body)}, {len(cut)} bytes\) has no newline"):
            md = lobfast.read_binance(p, on_error=on_error)
        ref = lobfast.read_binance(write(tmp_path, "ref.txt", body))
        assert len(md.trades) == len(ref.trades) and md.stats["bad_lines"] == 0
        assert md.stats["partial_lines"] == 1 and md.stats["partial_line_offset"] == len(body)
    whole = restamp(TRADE, LINES[2999]).rstrip(b"\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        md = lobfast.read_binance(write(tmp_path, "whole.dat", pack(body + whole)))
    assert len(md.trades) == len(ref.trades) + 1 and md.stats["partial_lines"] == 0
    # a file holding only a line being written is not "empty"
    with pytest.warns(LobWarning, match="has no newline"):
        lobfast.read_binance(write(tmp_path, "only.dat", pack(cut)))


def test_reads_from_a_pipe_go_on_after_a_signal(tmp_path):
    """A no-op Python signal handler firing every millisecond while the reader waits on a
    FIFO: reads are retried (PEP 475), never OSError 'Interrupted system call'."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    data = b"".join(LINES[:4000])

    def feed():
        with open(fifo, "wb") as f:
            for i in range(0, len(data), 200_000):
                f.write(data[i : i + 200_000])
                f.flush()
                time.sleep(0.02)

    old = signal.signal(signal.SIGALRM, lambda *a: None)
    signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
    writer = threading.Thread(target=feed)
    writer.start()
    try:
        md = lobfast.read_binance(str(fifo))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        writer.join()
    assert len(md.trades) == len(lobfast.read_binance(write(tmp_path, "same.txt", data)).trades)


def test_one_ctrl_c_stops_a_read_waiting_on_a_pipe(tmp_path):
    """The reader waits on a FIFO whose writer sends nothing: a single SIGINT, soon or late
    after the reader met the writer, interrupts the wait and is honoured at once (never left
    pending until a second signal or until data arrive)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for delay in (0.002, 0.05):
        met, release = threading.Event(), threading.Event()

        def hold_open(met=met, release=release):  # the writer end stays open and silent
            with open(fifo, "wb"):
                met.set()
                release.wait(10)

        def interrupt(met=met, delay=delay):  # once the reader has opened the FIFO
            if met.wait(10):
                time.sleep(delay)
                os.kill(os.getpid(), signal.SIGINT)

        writer = threading.Thread(target=hold_open, daemon=True)
        killer = threading.Thread(target=interrupt, daemon=True)
        writer.start()
        killer.start()
        t0 = time.monotonic()
        try:
            with pytest.raises(KeyboardInterrupt):
                lobfast.read_binance(str(fifo))
            assert time.monotonic() - t0 < 5
        finally:
            release.set()
            killer.join(10)
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))  # frees a writer still waiting to open
            writer.join(10)
        assert not writer.is_alive() and not killer.is_alive()


def endless_gzip(path, member_mb: int, members: int) -> None:
    """members * member_mb MiB of reply lines as concatenated gzip members: seconds of work
    from a file of a few MB."""
    n = (member_mb << 20) // len(REPLY)
    member = zlib.compressobj(1, zlib.DEFLATED, 31)
    member = member.compress(REPLY * n) + member.flush()
    with open(path, "wb") as f:
        for _ in range(members):
            f.write(member)


def test_ctrl_c_stops_read_binance_without_leaking(tmp_path):
    one, many = tmp_path / "one.gz", tmp_path / "many.gz"
    endless_gzip(one, 16, 1)
    endless_gzip(many, 16, 200)  # 3.2 GiB of text: far longer than the test
    t = time.perf_counter()
    assert lobfast.read_binance(one, on_error="skip").stats["lines"] > 0
    full = 200 * (time.perf_counter() - t)
    fds = open_fds()
    took = interrupted(lambda: lobfast.read_binance(many))
    assert took < 0.5 * full and open_fds() == fds
    took = interrupted(lambda: list(lobfast.iter_binance(many, chunk_rows=10)))
    assert took < 0.5 * full and open_fds() == fds
    # the Reader itself stays usable: stopped between lines, it goes on, or reads another file
    r = _core.Reader("binance")
    r.open(str(many))
    interrupted(r.pump)
    lines = r.stats()["lines"]
    assert 0 < lines < 200 * 16 * (1 << 20) // len(REPLY)
    interrupted(r.pump, 0.1)  # goes on from the line after the stop
    assert r.stats()["lines"] > lines and r.stats()["bad_lines"] == 0
    r.close()
    assert open_fds() == fds
    r.open(str(one))
    assert r.pump() is True and r.stats()["files"] == 2


def as_nobody(fn):
    """fn() in a child process that runs as user and group 65534 (nobody), so permissions
    apply when the tests run as root: ('ok', value) or ('exc', type name, str, errno, filename)."""
    if os.geteuid() != 0:
        try:
            return ("ok", fn())
        except Exception as e:
            return ("exc", type(e).__name__, str(e), getattr(e, "errno", None), getattr(e, "filename", None))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                out = ("ok", fn())
            except Exception as e:
                out = ("exc", type(e).__name__, str(e), getattr(e, "errno", None), getattr(e, "filename", None))
            os.write(w, pickle.dumps(out))
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 1 << 16):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return pickle.loads(data)


@pytest.fixture
def shared_dir(tmp_path_factory):
    """A directory user nobody can reach (pytest's own are 0700 under root's)."""
    import tempfile

    d = tempfile.mkdtemp(prefix="lobfast-perm-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_permission_denied_is_a_permission_error_naming_the_path(shared_dir):
    unreadable = os.path.join(shared_dir, "unreadable.txt")
    with open(unreadable, "wb") as f:
        f.write(b"".join(LINES[:100]))
    os.chmod(unreadable, 0)
    closed = os.path.join(shared_dir, "closed")
    os.mkdir(closed)
    inside = os.path.join(closed, "inside.txt")
    with open(inside, "wb") as f:
        f.write(b"".join(LINES[:100]))
    os.chmod(closed, 0o600)  # not searchable: what is inside cannot be reached
    for path, call in [
        (unreadable, lambda: lobfast.read_binance(unreadable)),
        (unreadable, lambda: _core.Reader("binance").open(unreadable)),
        (unreadable, lambda: lobfast.TimeIndex(unreadable)),
        (unreadable, lambda: _core.TimeIx.build(unreadable, (" ", 0, 1, 0, "t"), 1024)),
        (inside, lambda: lobfast.read_binance(inside)),
        (inside, lambda: lobfast.read_tardis(inside)),
    ]:
        got = as_nobody(call)
        assert got[0] == "exc" and got[1] == "PermissionError", got
        assert got[3] == 13 and got[4] == path and "Permission denied" in got[2]


def test_missing_file_in_c_is_file_not_found_with_errno(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        _core.Reader("binance").open(tmp_path / "missing.txt")
    assert e.value.errno == 2 and e.value.filename == str(tmp_path / "missing.txt")
    with pytest.raises(IsADirectoryError) as e:
        _core.TimeIx.build(str(tmp_path), (" ", 0, 1, 0, "t"), 1024)
    assert e.value.errno == 21


@pytest.mark.parametrize("nat", [np.datetime64("NaT"), np.datetime64("NaT", "ns"), pd.NaT, np.iinfo(np.int64).min])
def test_nat_start_or_end_is_refused(nat):
    for kw in ({"start": nat}, {"end": nat}):
        with pytest.raises(ValueError, match="NaT"):
            lobfast.read_binance(SPOT_BTC_0808, **kw)
        with pytest.raises(ValueError, match="NaT"):
            list(lobfast.iter_binance(SPOT_BTC_0808, **kw))
    with pytest.raises(ValueError, match="NaT"):
        lobfast.to_ns(nat)
    with pytest.raises(ValueError, match="start is NaT"):
        _core.Reader("binance", start=np.iinfo(np.int64).min)


def test_start_after_end_is_refused():
    with pytest.raises(ValueError, match="must be before end"):
        lobfast.read_binance(SPOT_BTC_0808, start="2024-08-09", end="2024-08-08")


class _Stop(Exception):
    pass


@pytest.mark.parametrize("kind", ["plain", "gzip"])
def test_a_reader_stopped_by_signals_goes_on_without_losing_a_line(tmp_path, kind):
    """A handler that raises every few ms while a FIFO delivers the file slowly: each stop
    (in a read waiting on the pipe, or between chunks) leaves the Reader where it was, and
    pumping again gives every row exactly once."""
    data = b"".join(LINES[:6000])
    payload = gzip.compress(data) if kind == "gzip" else data[: data.index(b"\n", 400_000) + 1]
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def feed():
        with open(fifo, "wb") as f:
            for i in range(0, len(payload), 1 << 12):
                f.write(payload[i : i + (1 << 12)])
                f.flush()
                time.sleep(0.001)

    armed = threading.Event()  # the handler raises only while the reads run

    def stop(*args):
        if armed.is_set():
            raise _Stop

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    r = _core.Reader("binance")
    # opened before the signals start: a FIFO whose open is stopped after it met its writer
    # has lost that writer, and a second open would wait for another one forever
    r.open(str(fifo))
    stops = 0
    old = signal.signal(signal.SIGALRM, stop)
    armed.set()
    signal.setitimer(signal.ITIMER_REAL, 0.005, 0.005)
    try:
        while True:
            try:
                if r.pump():  # a stop between here and the next line is caught: pumping again
                    armed.clear()  # at the end of the file says so again
                    break
            except _Stop:
                stops += 1
    finally:
        armed.clear()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        writer.join(30)
    assert not writer.is_alive()
    r.finish()
    got = r.take()
    data = gzip.decompress(payload) if kind == "gzip" else payload
    ref = lobfast.read_binance(write(tmp_path, "same.txt", data))
    assert stops > 0
    assert np.array_equal(got["trades"]["trade_id"], ref.trades.trade_id)
    assert np.array_equal(got["depth"]["price"], ref.depth.price)
    assert r.stats()["lines"] == len(data.splitlines())


@pytest.mark.parametrize("t", ["1600-01-01", "2300-01-01T00:00", np.datetime64("1677-09-22", "D"), -1, 2**63 - 1])
def test_times_outside_1970_to_2262_are_refused_not_wrapped(t):
    """datetime64[ns] wraps such dates around (1600 became 2184): every time argument is
    checked in its own unit first, and named."""
    with pytest.raises(ValueError, match=r"start=.* is outside 1970-01-01..2262-01-01"):
        lobfast.readers.to_ns(t, "start")
    with pytest.raises(ValueError, match="outside 1970-01-01..2262-01-01"):
        lobfast.read_binance(datasets.path("spot_btcusdt_20240808"), start=t)
