"""read_tardis: Tardis.dev CSVs built from the real Binance recordings (tests/convert.py).

Every file is read by the C reader and by the pure-Python reference, which must agree
exactly (values and dtypes); depth, trades and quotes must also equal what read_binance
gives for the same messages.  Bad input of every kind gets a clear error.
"""

from __future__ import annotations

import doctest
import gzip
import heapq
import tempfile
from pathlib import Path

import numpy as np
import pytest
from convert import (
    SPOT_BTC,
    SPOT_ETH,
    TARDIS_HEADERS,
    USDM_BTC,
    binance,
    book_snapshot_header,
    tardis_book_snapshots,
    tardis_book_ticker,
    tardis_depth,
    tardis_trades,
    write_lines,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lobfast
from lobfast import Flags, LobError, LobWarning
from lobfast import _reference as ref

DEPTH_MESSAGES = 600  # messages of the spot BTC recording turned into depth rows
RESNAPSHOT_AFTER = 300  # a reconnect-style snapshot is inserted after this many


def assert_same(container, columns: dict[str, np.ndarray]) -> None:
    """Every column equal in value, shape and dtype (NaN equal to NaN)."""
    assert set(container.columns) == set(columns)
    for name, got in container.columns.items():
        want = columns[name]
        assert got.dtype == want.dtype, f"{name}: dtype {got.dtype} != {want.dtype}"
        assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
        assert np.array_equal(got, want, equal_nan=got.dtype.kind == "f"), f"{name} differs"


def check_reference(path, result, **kw) -> dict:
    """The C result equals the reference's on the same files; returns the reference counters."""
    _, cols, counts = ref.read_tardis(path, **kw)
    assert_same(result, cols)
    return counts


@pytest.fixture(scope="module")
def depth(tmp_path_factory):
    lines, exp, lead, binance_depth = tardis_depth(
        SPOT_BTC, "BTCUSDT", max_messages=DEPTH_MESSAGES, resnapshot_after=RESNAPSHOT_AFTER
    )
    path = write_lines(tmp_path_factory.mktemp("tardis") / "depth.csv.gz", [TARDIS_HEADERS["depth"], *lines])
    return path, lines, exp, lead, binance_depth


# --------------------------------------------------------------------------- depth


def test_depth_equals_binance(depth):
    path, _, exp, lead, binance_depth = depth
    stats: dict = {}
    d = lobfast.read_tardis(path, stats=stats)
    assert isinstance(d, lobfast.DepthEvents)
    for name in ("ts", "local_ts", "side", "price", "qty", "flags"):
        assert np.array_equal(d[name], exp[name]), name
    assert (d.update_id == -1).all()
    # outside the inserted snapshot the rows are read_binance's, flags included
    snap = np.flatnonzero(d.flags & Flags.RESET)
    assert len(snap) == 2 and snap[0] == 0
    k = int(snap[1])
    n_snap = int(np.argmax((d.flags[k:] & Flags.SNAPSHOT) == 0))
    keep = np.r_[0:k, k + n_snap : len(d)]
    for name in ("side", "price", "qty", "flags", "ts"):
        assert np.array_equal(d[name][keep], binance_depth[name]), name
    assert np.array_equal(d.local_ts[keep], binance_depth.local_ts // 1000 * 1000)
    assert stats["skipped_before_snapshot"] == lead > 0
    assert stats["snapshots"] == 2
    assert stats["data_type"] == "incremental_book_L2" and stats["exchange"] == "binance"
    counts = check_reference(path, d)
    assert counts["skipped_before_snapshot"] == lead


def test_depth_flags(depth):
    d = lobfast.read_tardis(depth[0])
    snap = (d.flags & Flags.SNAPSHOT) != 0
    reset = (d.flags & Flags.RESET) != 0
    eom = (d.flags & Flags.END_OF_MESSAGE) != 0
    # RESET exactly where a run of snapshot rows starts
    starts = snap & ~np.r_[False, snap[:-1]]
    assert np.array_equal(reset, starts)
    # END_OF_MESSAGE exactly on the last row of each run of equal local_timestamp
    assert np.array_equal(eom, np.r_[d.local_ts[1:] != d.local_ts[:-1], True])
    assert not (d.flags & Flags.GAP).any()


def test_depth_split_files_equal_one(depth, tmp_path):
    """State carries across files: a message cut by the file boundary still gets one
    END_OF_MESSAGE, on its last row in the second file."""
    path, lines, *_ = depth
    local = [line.split(",")[3] for line in lines]
    cut = next(i for i in range(5000, len(lines)) if local[i] == local[i - 1])  # inside a message
    a = write_lines(tmp_path / "a.csv.gz", [TARDIS_HEADERS["depth"], *lines[:cut]])
    b = write_lines(tmp_path / "b.csv", [TARDIS_HEADERS["depth"], *lines[cut:]])
    whole = lobfast.read_tardis(path)
    assert_same(lobfast.read_tardis([a, b]), whole.columns)


def test_depth_window_starts_at_next_snapshot(depth):
    """With start inside the data, depth begins at the first snapshot in the window."""
    path, *_ = depth
    whole = lobfast.read_tardis(path)
    k = int(np.flatnonzero(whole.flags & Flags.RESET)[1])
    start = int(whole.local_ts[k // 2])
    end = int(whole.local_ts[-100])
    stats: dict = {}
    d = lobfast.read_tardis(path, start=start, end=end, stats=stats)
    assert d.flags[0] & Flags.RESET
    assert (whole.local_ts[k:] >= start).all()  # after the first snapshot, local_ts is sorted
    stop = int(np.flatnonzero(whole.local_ts < end)[-1]) + 1
    assert_same(d, whole[k:stop].columns)
    assert stats["outside_window"] > 0 and stats["skipped_before_snapshot"] > 0
    check_reference(path, d, start=start, end=end)


def test_depth_snapshot_cut_by_start_is_not_a_reset(tmp_path):
    """A snapshot whose first rows fall before `start` is incomplete: skipped, not a RESET."""
    h = TARDIS_HEADERS["depth"]
    rows = [
        "binance,BTCUSDT,1,10,true,bid,1,1",
        "binance,BTCUSDT,1,11,true,ask,2,1",
        "binance,BTCUSDT,2,12,false,ask,2,0",
        "binance,BTCUSDT,3,13,true,bid,1,5",
        "binance,BTCUSDT,3,13,true,ask,3,5",
    ]
    p = write_lines(tmp_path / "d.csv", [h, *rows])
    stats: dict = {}
    d = lobfast.read_tardis(p, start=11_000, stats=stats)
    assert d.local_ts.tolist() == [13_000, 13_000]
    assert d.flags.tolist() == [Flags.SNAPSHOT | Flags.RESET, Flags.SNAPSHOT | Flags.END_OF_MESSAGE]
    assert stats["skipped_before_snapshot"] == 2 and stats["outside_window"] == 1
    check_reference(p, d, start=11_000)


# --------------------------------------------------------------------------- trades, quotes


@pytest.fixture(scope="module")
def btc_trades(tmp_path_factory):
    lines = tardis_trades(SPOT_BTC, "BTCUSDT")
    return write_lines(tmp_path_factory.mktemp("tardis") / "trades.csv.gz", [TARDIS_HEADERS["trades"], *lines])


def test_trades_equal_binance(btc_trades):
    t = lobfast.read_tardis(btc_trades)
    assert isinstance(t, lobfast.Trades)
    b = binance(SPOT_BTC).trades[: len(t)]
    assert len(t) > 1000
    for name in ("ts", "price", "qty", "side", "trade_id"):
        assert np.array_equal(t[name], b[name]), name
    assert np.array_equal(t.local_ts, b.local_ts // 1000 * 1000)
    check_reference(btc_trades, t)


@pytest.mark.parametrize("recording", [SPOT_BTC, USDM_BTC], ids=["spot", "usdm"])
def test_book_ticker_equals_binance(recording, tmp_path):
    lines, exp = tardis_book_ticker(recording, "BTCUSDT")
    p = write_lines(tmp_path / "book_ticker.csv.gz", [TARDIS_HEADERS["quotes"], *lines])
    q = lobfast.read_tardis(p)
    assert isinstance(q, lobfast.Quotes) and len(q) == len(lines) > 1000
    for name, want in exp.items():
        assert np.array_equal(q[name], want), name
    assert (q.update_id == -1).all()
    b = binance(recording).quotes[: len(q)]
    for name in ("ts", "bid_px", "bid_qty", "ask_px", "ask_qty"):
        want = b[name] if name != "ts" or recording is USDM_BTC else b.local_ts // 1000 * 1000
        assert np.array_equal(q[name], want), name
    check_reference(p, q)


@pytest.mark.parametrize("levels", [1, 5, 25])
def test_book_snapshots(depth, tmp_path, levels):
    lines, exp = tardis_book_snapshots(depth[1], levels, max_messages=150)
    p = write_lines(tmp_path / "book.csv.gz", [book_snapshot_header(levels), *lines])
    stats: dict = {}
    b = lobfast.read_tardis(p, stats=stats)
    assert isinstance(b, lobfast.BookSnapshots) and b.levels == levels and len(b) == 150
    assert stats["data_type"] == f"book_snapshot_{levels}"
    for name, want in exp.items():
        assert np.array_equal(b[name], want, equal_nan=True), name
    assert b.valid.dtype == np.bool_ and b.valid.all()
    assert (b.update_id == -1).all()
    assert b.to_deeplob().shape == (150, 4 * levels)
    check_reference(p, b)


def test_book_snapshot_empty_levels(tmp_path):
    """Empty cells: NaN prices, 0 sizes (a thin book)."""
    rows = ["deribit,BTC-PERPETUAL,5,6,101.5,2,,,,,,", "deribit,BTC-PERPETUAL,7,8,101.5,2,99,,102,1e-05,98,3"]
    p = write_lines(tmp_path / "b.csv", [book_snapshot_header(2), *rows])
    b = lobfast.read_tardis(p)
    assert np.array_equal(b.ask_px, [[101.5, np.nan], [101.5, 102.0]], equal_nan=True)
    assert np.array_equal(b.ask_sz, [[2, 0], [2, 1e-05]])
    assert np.array_equal(b.bid_px, [[np.nan, np.nan], [99, 98]], equal_nan=True)
    assert np.array_equal(b.bid_sz, [[0, 0], [0, 3]])
    assert b.ts.tolist() == [5000, 7000]
    check_reference(p, b)


def test_quotes_empty_cells_and_missing_timestamp(tmp_path):
    rows = ["binance,BTCUSDT,,1000,1.5,100.5,100,", "binance,BTCUSDT,999,1001,,,99.5,2"]
    p = write_lines(tmp_path / "q.csv", [TARDIS_HEADERS["quotes"], *rows])
    q = lobfast.read_tardis(p)
    assert q.ts.tolist() == [1_000_000, 999_000]  # empty timestamp: the local one
    assert np.array_equal(q.ask_qty, [1.5, np.nan], equal_nan=True)
    assert np.array_equal(q.bid_qty, [np.nan, 2], equal_nan=True)
    check_reference(p, q)


def test_non_integer_trade_ids(tmp_path):
    rows = [
        "deribit,BTC-PERPETUAL,1,2,ETH-12345,buy,100,1",
        "deribit,BTC-PERPETUAL,1,2,,unknown,100,1",
        "deribit,BTC-PERPETUAL,1,2,99999999999999999999,sell,100,1",
        "deribit,BTC-PERPETUAL,1,2,42,,100,1",
    ]
    p = write_lines(tmp_path / "t.csv", [TARDIS_HEADERS["trades"], *rows])
    stats: dict = {}
    t = lobfast.read_tardis(p, stats=stats)
    assert t.trade_id.tolist() == [-1, -1, -1, 42]
    assert t.side.tolist() == [1, 0, -1, 0]
    assert stats["non_integer_trade_ids"] == 3
    check_reference(p, t)


# --------------------------------------------------------------------------- symbols


@pytest.fixture(scope="module")
def btc_eth_trades(tmp_path_factory):
    def rows(path, sym):
        return [(int(line.split(",")[3]), line) for line in tardis_trades(path, sym)]

    merged = [line for _, line in heapq.merge(rows(SPOT_BTC, "BTCUSDT"), rows(SPOT_ETH, "ETHUSDT"))]
    return write_lines(tmp_path_factory.mktemp("tardis") / "mixed.csv.gz", [TARDIS_HEADERS["trades"], *merged])


def test_mixed_symbols_raise(btc_eth_trades):
    with pytest.raises(LobError, match=r"several symbols \(BTCUSDT, ETHUSDT\).*symbol="):
        lobfast.read_tardis(btc_eth_trades)


def test_symbol_selects(btc_eth_trades):
    stats: dict = {}
    t = lobfast.read_tardis(btc_eth_trades, symbol="ethusdt", stats=stats)
    eth = binance(SPOT_ETH).trades[: len(t)]
    assert len(t) > 1000 and np.array_equal(t.trade_id, eth.trade_id) and np.array_equal(t.price, eth.price)
    assert stats["other_symbol_rows"] > 1000 and stats["symbol"] == "ETHUSDT"
    check_reference(btc_eth_trades, t, symbol="ethusdt")


# --------------------------------------------------------------------------- bad input


def write(tmp_path, name: str, *lines: str) -> Path:
    return write_lines(tmp_path / name, list(lines))


H_DEPTH, H_TRADES = TARDIS_HEADERS["depth"], TARDIS_HEADERS["trades"]
GOOD = "binance,BTCUSDT,1,2,true,bid,100.5,1"


@pytest.mark.parametrize(
    "header, match",
    [
        (
            "exchange,symbol,timestamp,local_timestamp,funding_timestamp,funding_rate,predicted_funding_rate,"
            "open_interest,last_price,index_price,mark_price",
            r"line 1 .*header not recognised \(11 columns, column 5 'funding_timestamp'\)",
        ),
        (
            "exchange,symbol,time,local_timestamp,id,side,price,amount",
            r"header column 3: expected 'timestamp'",
        ),
        (
            "exchange,symbol,timestamp,local_timestamp,asks[0].price,asks[0].amount,bids[0].price",
            r"4 \+ 4 x N",
        ),
        (
            "exchange,symbol,timestamp,local_timestamp,asks[0].price,asks[0].amount,bids[0].price,bids[1].amount",
            r"column 8: expected 'bids\[0\].amount'",
        ),
    ],
    ids=["derivative_ticker", "renamed", "book-width", "book-name"],
)
def test_bad_header(tmp_path, header, match):
    p = write(tmp_path, "h.csv", header, GOOD)
    with pytest.raises(LobError, match=match):
        lobfast.read_tardis(p)
    with pytest.raises(LobError, match="no row of this file could be read.*" + match.split(".*")[-1]):
        lobfast.read_tardis(p, on_error="skip")


def test_missing_header(tmp_path):
    p = write(tmp_path, "d.csv", GOOD)
    with pytest.raises(LobError, match=r"line 1 .*expected the Tardis CSV header line"):
        lobfast.read_tardis(p)
    a = write(tmp_path, "a.csv", H_DEPTH, GOOD)
    with pytest.raises(LobError, match=r"d.csv: the file has no Tardis CSV header line"):
        lobfast.read_tardis([a, p])


@pytest.mark.parametrize(
    "row, match",
    [
        ("binance,BTCUSDT,1,2,true,bid,100.5", r"expected 8 columns \(incremental_book_L2.*found 7"),
        ("binance,BTCUSDT,1,2,true,bid,100.5,1,9", r"expected 8 columns.*found 9"),
        ("binance,BTCUSDT,1,2,true,bid,abc,1", r"column 7 \(price\): expected a decimal number, found 'abc'"),
        ("binance,BTCUSDT,1,2,true,bid,1e999,1", r"column 7 \(price\): expected a decimal number within"),
        ("binance,BTCUSDT,1,2,true,bid,-1,1", r"column 7 \(price\): expected a price > 0"),
        ("binance,BTCUSDT,1,2,true,bid,1,-0.5", r"column 8 \(amount\): expected an amount >= 0"),
        # a nonzero price that rounds to 0, and one that rounds to infinity
        ("binance,BTCUSDT,1,2,true,bid,1e-400,1", r"column 7 \(price\): expected a decimal number within"),
        ("binance,BTCUSDT,1,2,true,bid,1,0.1e-330", r"column 8 \(amount\): expected a decimal number within"),
        ("binance,BTCUSDT,1,2,true,bid,1e400,1", r"column 7 \(price\): expected a decimal number within"),
        ("binance,BTCUSDT,1,2,true,buy,1,1", r"column 6 \(side\): expected 'bid' or 'ask', found 'buy'"),
        ("binance,BTCUSDT,1,2,yes,bid,1,1", r"column 5 \(is_snapshot\): expected 'true' or 'false'"),
        ("binance,BTCUSDT,1.5,2,true,bid,1,1", r"column 3 \(timestamp\): expected an integer time"),
        ("binance,BTCUSDT,1,,true,bid,1,1", r"column 4 \(local_timestamp\).*found an empty cell"),
        ("binance,BTCUSDT,1,99999999999999999,true,bid,1,1", r"column 4 .*between 1970 and 2262"),
        # every time in 1970..2262: INT64_MAX us would overflow ns, 2262+ and negative are refused
        ("binance,BTCUSDT,1,9223372036854775807,true,bid,1,1", r"column 4 .*between 1970 and 2262"),
        ("binance,BTCUSDT,1,9214646400000001,true,bid,1,1", r"column 4 .*between 1970 and 2262"),
        ("binance,BTCUSDT,-1,2,true,bid,1,1", r"column 3 \(timestamp\).*between 1970 and 2262"),
        # a NUL or control byte is shown escaped, never cut
        ("binance,BTCUSDT,1,2,true,bid\x00x,1,1", r"column 6 \(side\): expected 'bid' or 'ask', found 'bid\\x00x'"),
        ("bin\x00ance,BTCUSDT,1,2,true,bid,1,1", r"column 1 \(exchange\): .*found 'bin\\x00ance'"),
        ("binance,BTC\tUSDT,1,2,true,bid,1,1", r"column 2 \(symbol\): .*found 'BTC\\x09USDT'"),
        ("binance,,1,2,true,bid,1,1", r"column 2 \(symbol\)"),
        # a NUL must not make 'BTCUSDT\0x' equal 'BTCUSDT' (found by differential fuzzing)
        (
            "binance,BTCUSDT\x00x,1,2,true,bid,1,1",
            r"column 2 \(symbol\): expected a symbol of 1 to 31 printable",
        ),
    ],
)
def test_bad_row(tmp_path, row, match):
    """The error names file, line, byte offset, column and what was expected; with
    on_error="skip" the row is counted and the others are read."""
    p = write(tmp_path, "d.csv", H_DEPTH, GOOD, row, GOOD.replace(",2,", ",3,"))
    with pytest.raises(LobError, match=r"d\.csv, line 3 \(byte \d+\): " + match) as e:
        lobfast.read_tardis(p)
    assert e.value.line == 3 and str(e.value.path).endswith("d.csv")
    with pytest.raises(ref.RowError) as r:
        ref.read_tardis(p)
    assert r.value.line == 3
    stats: dict = {}
    d = lobfast.read_tardis(p, on_error="skip", stats=stats)
    assert stats["bad_lines"] == 1 and stats["first_bad_line"].startswith("line 3: ")
    good = write(tmp_path, "good.csv", H_DEPTH, GOOD, GOOD.replace(",2,", ",3,"))
    assert_same(d, lobfast.read_tardis(good).columns)
    check_reference(p, d, on_error="skip")


def test_bad_trade_and_quote_rows(tmp_path):
    p = write(tmp_path, "t.csv", H_TRADES, "binance,BTCUSDT,1,2,7,long,100,1")
    with pytest.raises(LobError, match=r"column 6 \(side\): expected 'buy', 'sell' or 'unknown', found 'long'"):
        lobfast.read_tardis(p)
    p = write(tmp_path, "q.csv", TARDIS_HEADERS["quotes"], "binance,BTCUSDT,1,2,1,x,3,4")
    with pytest.raises(LobError, match=r"column 6 \(ask_price\): expected a decimal number, found 'x'"):
        lobfast.read_tardis(p)
    p = write(tmp_path, "b.csv", book_snapshot_header(1), "binance,BTCUSDT,1,2,1,2,3,4..")
    with pytest.raises(LobError, match=r"column 8 \(bids\[0\]\.amount\): expected a decimal number"):
        lobfast.read_tardis(p)


@pytest.mark.parametrize(
    "header, row, match",
    [
        (
            TARDIS_HEADERS["trades"],
            "binance,BTCUSDT,1,2,7,buy,0,1",
            r"column 7 \(price\): expected a price > 0, found '0'",
        ),
        (TARDIS_HEADERS["trades"], "binance,BTCUSDT,1,2,7,buy,-5,1", r"column 7 \(price\): expected a price > 0"),
        (TARDIS_HEADERS["trades"], "binance,BTCUSDT,1,2,7,buy,5,0", r"column 8 \(amount\): expected an amount > 0"),
        (TARDIS_HEADERS["trades"], "binance,BTCUSDT,1,2,7,buy,5,1e-400", r"column 8 \(amount\): expected a decimal"),
        (TARDIS_HEADERS["trades"], "binance,BTCUSDT,1,2,a\x00b,buy,5,1", r"column 5 \(id\): .*control.*'a\\x00b'"),
        (TARDIS_HEADERS["quotes"], "binance,BTCUSDT,1,2,1,-2,3,4", r"column 6 \(ask_price\): expected a price > 0"),
        (TARDIS_HEADERS["quotes"], "binance,BTCUSDT,1,2,-1,2,3,4", r"column 5 \(ask_amount\): expected an amount >= 0"),
        (TARDIS_HEADERS["quotes"], "binance,BTCUSDT,1,2,1,2,0,4", r"column 7 \(bid_price\): expected a price > 0"),
        (
            book_snapshot_header(1),
            "binance,BTCUSDT,1,2,1,2,0,4",
            r"column 7 \(bids\[0\]\.price\): expected a price > 0",
        ),
        (
            book_snapshot_header(1),
            "binance,BTCUSDT,1,2,1,-2,3,4",
            r"column 6 \(asks\[0\]\.amount\): expected an amount",
        ),
    ],
)
def test_bad_values(tmp_path, header, row, match):
    """Per data type, prices > 0 and sizes >= 0 (trade amounts > 0): a bad value is refused
    naming file, line and column, or counted and skipped with on_error="skip"."""
    good = row.split(",")
    good[4:] = ["7", "buy", "5", "1"] if header == TARDIS_HEADERS["trades"] else ["1", "2", "3", "4"]
    good = ",".join(good)
    p = write(tmp_path, "v.csv", header, good, row, good)
    with pytest.raises(LobError, match=r"v\.csv, line 3 \(byte \d+\): " + match):
        lobfast.read_tardis(p)
    with pytest.raises(ref.RowError) as r:
        ref.read_tardis(p)
    assert r.value.line == 3
    stats: dict = {}
    d = lobfast.read_tardis(p, on_error="skip", stats=stats)
    assert stats["bad_lines"] == 1 and stats["rows"] == 2 and len(d) == 2
    check_reference(p, d, on_error="skip")


def test_mixed_data_types(tmp_path, btc_trades, depth):
    with pytest.raises(
        LobError,
        match=r"trades.csv.gz, line 1 .*header is for trades but earlier data "
        r"was incremental_book_L2: read each Tardis data type in its own call",
    ):
        lobfast.read_tardis([depth[0], btc_trades])
    with pytest.raises(LobError, match=r"trades.csv.gz: no row of this file could be read.*its own call"):
        lobfast.read_tardis([depth[0], btc_trades], on_error="skip")
    a = write(tmp_path, "a.csv", book_snapshot_header(5))
    b = write(tmp_path, "b.csv", book_snapshot_header(25))
    with pytest.raises(LobError, match="header is for book_snapshot_25 but earlier data was book_snapshot_5"):
        lobfast.read_tardis([a, b])


def test_binary_file(tmp_path):
    p = tmp_path / "x.zip"
    p.write_bytes(b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(256)) * 4)
    with pytest.raises(LobError, match="binary data where Tardis CSV text was expected"):
        lobfast.read_tardis(p)


def test_empty_and_header_only_files(tmp_path):
    empty = tmp_path / "empty.csv.gz"
    empty.write_bytes(gzip.compress(b""))
    with pytest.raises(LobError, match="empty"):
        lobfast.read_tardis(empty)
    only = write(tmp_path, "only.csv", H_TRADES)
    t = lobfast.read_tardis(only)
    assert isinstance(t, lobfast.Trades) and len(t) == 0
    good = write(tmp_path, "good.csv", H_TRADES, "binance,BTCUSDT,1,2,7,buy,100,1")
    with pytest.warns(LobWarning, match="empty"):
        t = lobfast.read_tardis([empty, good], on_error="skip")
    assert len(t) == 1
    with pytest.warns(LobWarning, match="empty"), pytest.raises(LobError, match="data type is unknown"):
        lobfast.read_tardis(empty, on_error="skip")


def test_truncated_gzip(btc_trades, tmp_path):
    data = btc_trades.read_bytes()
    p = tmp_path / "cut.csv.gz"
    p.write_bytes(data[: len(data) // 2])
    with pytest.warns(LobWarning, match="truncated"):
        t = lobfast.read_tardis(p)
    whole = lobfast.read_tardis(btc_trades)
    assert 0 < len(t) < len(whole)
    assert_same(t, whole[: len(t)].columns)


def test_blank_lines_crlf_and_bom(tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes(b"\xef\xbb\xbf" + H_TRADES.encode() + b"\r\n\r\nbinance,BTCUSDT,1,2,7,buy,100,1\r\n")
    stats: dict = {}
    t = lobfast.read_tardis(p, stats=stats)
    assert t.trade_id.tolist() == [7] and stats["blank_lines"] == 1
    check_reference(p, t)


def test_docstring_example():
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in doctest.DocTestFinder().find(lobfast.read_tardis, "read_tardis", globs={}):
        runner.run(test)
    assert runner.tries > 0 and runner.failures == 0


# --------------------------------------------------------------------------- properties


@st.composite
def _decimal_text(draw, positive: bool):
    """Decimal strings in the forms exchanges write: fixed, trailing zeros, exponents."""
    m = draw(st.integers(1 if positive else 0, 10**15))
    scale = draw(st.integers(0, 12))
    style = draw(st.sampled_from(["fixed", "exp", "zeros", "dot"]))
    digits = str(m).rjust(scale + 1, "0")
    fixed = f"{digits[:-scale]}.{digits[-scale:]}" if scale else digits
    if style == "exp":
        return f"{m}{draw(st.sampled_from(['e', 'E', 'e-0', 'e+', 'e-']))}{draw(st.integers(0, 12))}"
    if style == "zeros":
        return fixed + ("." if not scale else "") + "0" * draw(st.integers(1, 6))
    if style == "dot":
        return f".{str(m)[:10]}" if m else "0."
    return fixed


DECIMAL = _decimal_text(False)
POSITIVE = _decimal_text(True)
DECIMAL_OR_EMPTY = st.one_of(st.just(""), DECIMAL)
POSITIVE_OR_EMPTY = st.one_of(st.just(""), POSITIVE)
BAD_CELLS = ["", "abc", "1..2", "nan", "1e", "-", "+", "0x10", "1,5", "-1", "0", "1e-400", "1e400", "1\x00"]


@st.composite
def tardis_file(draw):
    kind = draw(st.sampled_from(["depth", "trades", "quotes", "book"]))
    levels = draw(st.integers(1, 3))
    header = book_snapshot_header(levels) if kind == "book" else TARDIS_HEADERS[kind]
    n = draw(st.integers(0, 25))
    local = 1_700_000_000_000_000
    lines = [header]
    for _ in range(n):
        local += draw(st.sampled_from([0, 0, 1, 1000]))
        sym = draw(st.sampled_from(["BTCUSDT", "btcusdt", "ETHUSDT"]))
        ts = draw(st.sampled_from(["", str(local - 5)]))
        if kind == "depth":
            snap = draw(st.sampled_from(["true", "false", "True"]))
            side = draw(st.sampled_from(["bid", "ask"]))
            tail = [snap, side, draw(POSITIVE), draw(DECIMAL)]
        elif kind == "trades":
            tid = draw(st.sampled_from(["1", "123456789012", "abc", ""]))
            side = draw(st.sampled_from(["buy", "sell", "unknown", ""]))
            tail = [tid, side, draw(POSITIVE), draw(POSITIVE)]
        else:
            cells = 4 if kind == "quotes" else 4 * levels
            # prices (quotes: cells 1, 2; book: every other cell) > 0, sizes >= 0
            price = (lambda i: i in (1, 2)) if kind == "quotes" else (lambda i: i % 2 == 0)
            tail = [draw(POSITIVE_OR_EMPTY if price(i) else DECIMAL_OR_EMPTY) for i in range(cells)]
        row = ["binance", sym, ts, str(local), *tail]
        if draw(st.integers(0, 19)) == 0:  # now and then a bad cell
            row[draw(st.integers(2, len(row) - 1))] = draw(st.sampled_from(BAD_CELLS))
        lines.append(",".join(row))
    return lines


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=tardis_file(), on_error=st.sampled_from(["raise", "skip"]))
def test_random_files_match_reference(lines, on_error):
    with tempfile.TemporaryDirectory() as tmp:
        p = write_lines(Path(tmp) / "r.csv.gz", lines)
        try:
            kind, cols, counts = ref.read_tardis(p, symbol="BTCUSDT", on_error=on_error)
        except ref.RowError as e:
            with pytest.raises(LobError) as err:
                lobfast.read_tardis(p, symbol="BTCUSDT", on_error=on_error)
            assert err.value.line == e.line
            return
        if counts["bad_lines"] and not counts["rows"]:
            with pytest.raises(LobError, match="no row of this file could be read"):
                lobfast.read_tardis(p, symbol="BTCUSDT", on_error=on_error)
            return
        if not any(len(c) for c in cols.values()) and len(counts.get("symbols", [])) > 1:
            # only other symbols: a symbol asked for that is not there is an error
            with pytest.raises(LobError, match="is not in the data"):
                lobfast.read_tardis(p, symbol="BTCUSDT", on_error=on_error)
            return
        stats: dict = {}
        got = lobfast.read_tardis(p, symbol="BTCUSDT", on_error=on_error, stats=stats)
        assert_same(got, cols)
        for k, v in counts.items():
            if k != "symbols":
                assert stats[k] == v, k
