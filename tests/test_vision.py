"""read_binance_vision: data.binance.vision CSVs built from the real Binance recordings.

The archive's layouts (spot trades/aggTrades without header, USD-M trades/aggTrades/
bookTicker with or without header, times in ms or us) are rebuilt from the recorded
trade and bookTicker messages by tests/convert.py.  The C reader must equal the
pure-Python reference exactly and give back what read_binance gives for the same trades.
"""

from __future__ import annotations

import doctest
import gzip
import tempfile
from pathlib import Path

import numpy as np
import pytest
from convert import (
    SPOT_BTC,
    USDM_BTC,
    VISION_HEADERS,
    binance,
    vision_agg_trades,
    vision_book_ticker,
    vision_trades,
    write_lines,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from test_tardis import DECIMAL, POSITIVE, assert_same

import lobfast
from lobfast import LobError, LobWarning
from lobfast import _reference as ref


def check_reference(path, result, **kw) -> dict:
    """The C result equals the reference's on the same files; returns the reference counters."""
    _, cols, counts = ref.read_binance_vision(path, **kw)
    assert_same(result, cols)
    return counts


def write(tmp_path, name: str, *lines: str) -> Path:
    return write_lines(tmp_path / name, list(lines))


# --------------------------------------------------------------------------- trades


@pytest.mark.parametrize("micros", [False, True], ids=["ms", "us"])
def test_spot_trades_equal_binance(tmp_path, micros):
    lines, exp = vision_trades(SPOT_BTC, spot=True, micros=micros)
    p = write_lines(tmp_path / ("t.csv.gz" if micros else "t.csv"), lines)
    stats: dict = {}
    t = lobfast.read_binance_vision(p, stats=stats)
    assert isinstance(t, lobfast.Trades) and len(t) == len(lines) > 1000
    for name, want in exp.items():
        assert np.array_equal(t[name], want), name
    b = binance(SPOT_BTC).trades[: len(t)]
    for name in ("ts", "price", "qty", "side", "trade_id"):
        assert np.array_equal(t[name], b[name]), name
    assert np.array_equal(t.local_ts, t.ts)  # the archive has no receive time
    assert (stats["data_type"], stats["market"], stats["headers"]) == ("trades", "spot", 0)
    check_reference(p, t)


@pytest.mark.parametrize("header", [True, False], ids=["header", "no-header"])
def test_um_trades_equal_binance(tmp_path, header):
    lines, exp = vision_trades(USDM_BTC, spot=False)
    p = write_lines(tmp_path / "t.csv", [VISION_HEADERS["um_trades"]] * header + lines)
    stats: dict = {}
    t = lobfast.read_binance_vision(p, stats=stats)
    b = binance(USDM_BTC).trades[: len(t)]
    assert len(t) == len(lines) > 1000
    for name in ("ts", "price", "qty", "side", "trade_id"):
        assert np.array_equal(t[name], b[name]), name
        assert np.array_equal(t[name], exp[name]), name
    assert (stats["data_type"], stats["market"], stats["headers"]) == ("trades", "usdm", int(header))
    check_reference(p, t)


@pytest.mark.parametrize(
    "spot, header, micros",
    [(True, False, False), (True, False, True), (False, True, False), (False, False, False)],
    ids=["spot-ms", "spot-us", "um-header", "um-no-header"],
)
def test_agg_trades(tmp_path, spot, header, micros):
    lines, exp = vision_agg_trades(SPOT_BTC if spot else USDM_BTC, spot=spot, micros=micros)
    p = write_lines(tmp_path / "a.csv.gz", [VISION_HEADERS["um_agg"]] * header + lines)
    stats: dict = {}
    t = lobfast.read_binance_vision(p, stats=stats)
    assert len(t) == len(lines) > 500
    for name, want in exp.items():
        assert np.array_equal(t[name], want), name
    assert stats["data_type"] == "aggTrades" and stats["market"] == ("spot" if spot else "usdm")
    # every fill of the recording is in exactly one aggregate
    b = binance(SPOT_BTC if spot else USDM_BTC).trades
    assert np.isin(t.price, b.price).all()
    check_reference(p, t)


# --------------------------------------------------------------------------- bookTicker


@pytest.fixture(scope="module")
def book_ticker():
    return vision_book_ticker(USDM_BTC, shuffle_seed=7)


def test_book_ticker_sorted_and_equal_binance(tmp_path, book_ticker):
    lines, exp = book_ticker
    p = write_lines(tmp_path / "bt.csv.gz", [VISION_HEADERS["um_book"], *lines])
    stats: dict = {}
    q = lobfast.read_binance_vision(p, stats=stats)
    assert isinstance(q, lobfast.Quotes) and len(q) == len(lines) > 1000
    for name, want in exp.items():
        assert np.array_equal(q[name], want), name
    assert stats["out_of_order_rows"] > 0 and stats["data_type"] == "bookTicker"
    check_reference(p, q)
    # the same quotes as read_binance's (ts = transaction time T), matched by update id
    b = binance(USDM_BTC).quotes[: len(q)]
    mine, theirs = np.argsort(q.update_id), np.argsort(b.update_id)
    for name in ("update_id", "ts", "bid_px", "bid_qty", "ask_px", "ask_qty"):
        assert np.array_equal(q[name][mine], b[name][theirs]), name


def test_book_ticker_in_order_is_not_copied(tmp_path, book_ticker):
    _, exp = book_ticker
    cols = [exp[k] for k in ("update_id", "bid_px", "bid_qty", "ask_px", "ask_qty")]
    cols += [exp["ts"] // 10**6, exp["local_ts"] // 10**6]  # back to ms
    lines = [",".join(map(str, row)) for row in zip(*cols, strict=True)]
    p = write_lines(tmp_path / "bt.csv", lines)  # headerless: told apart from aggTrades by its last cell
    stats: dict = {}
    q = lobfast.read_binance_vision(p, stats=stats)
    assert stats["out_of_order_rows"] == 0 and stats["headers"] == 0
    assert type(q.ts.base).__name__ == "PyCapsule"  # still the C reader's buffer
    assert_same(q, {**exp, "update_id": exp["update_id"].astype(np.int64)})


def test_book_ticker_sort_is_stable(tmp_path):
    """Equal (event_time, update_id) keep the file's order; the sort key is event_time first."""
    h = VISION_HEADERS["um_book"]
    rows = ["5,1,1,2,1,100,1001", "4,1,2,2,1,99,1000", "5,1,3,2,1,100,1001", "3,1,4,2,1,98,1001"]
    p = write(tmp_path, "bt.csv", h, *rows)
    q = lobfast.read_binance_vision(p)
    assert q.update_id.tolist() == [4, 3, 5, 5]
    assert q.bid_qty.tolist() == [2, 4, 1, 3]
    check_reference(p, q)


# --------------------------------------------------------------------------- files


def test_files_with_and_without_header(tmp_path):
    lines, _ = vision_trades(USDM_BTC, spot=False)
    a = write_lines(tmp_path / "a.csv", [VISION_HEADERS["um_trades"], *lines[:1000]])
    b = write_lines(tmp_path / "b.csv.gz", lines[1000:2000])
    whole = write_lines(tmp_path / "whole.csv", lines[:2000])
    assert_same(lobfast.read_binance_vision([a, b]), lobfast.read_binance_vision(whole).columns)


def test_mixed_layouts(tmp_path):
    trades, _ = vision_trades(SPOT_BTC, spot=True)
    aggs, _ = vision_agg_trades(SPOT_BTC, spot=True)
    a = write_lines(tmp_path / "trades.csv", trades[:10])
    b = write_lines(tmp_path / "agg.csv", aggs[:10])
    with pytest.raises(LobError, match=r"agg.csv, line 1 .*expected 7 columns \(spot trades\), found 8"):
        lobfast.read_binance_vision([a, b])
    with pytest.raises(LobError, match=r"agg.csv: no row of this file could be read \(10 bad lines\)"):
        lobfast.read_binance_vision([a, b], on_error="skip")
    um_trades, _ = vision_trades(USDM_BTC, spot=False)
    um_aggs, _ = vision_agg_trades(USDM_BTC, spot=False)
    c = write_lines(tmp_path / "um_trades.csv", [VISION_HEADERS["um_trades"], *um_trades[:10]])
    d = write_lines(tmp_path / "um_agg.csv", [VISION_HEADERS["um_agg"], *um_aggs[:10]])
    msg = "the header is for UM aggTrades but earlier data was UM trades: read each data type in its own call"
    with pytest.raises(LobError, match=r"um_agg.csv, line 1 .*" + msg):
        lobfast.read_binance_vision([c, d])
    with pytest.raises(LobError, match=r"um_agg.csv: no row of this file could be read.*" + msg):
        lobfast.read_binance_vision([c, d], on_error="skip")


SPOT_ROW = "51175358,17.80180000,5.69000000,101.29224200,1735689600010866,True,True"


@pytest.mark.parametrize(
    "row, match",
    [
        (
            SPOT_ROW.replace(",True,True", ",yes,True"),
            r"column 6 \(isBuyerMaker\): expected 'true' or 'false' \(any case\), found 'yes'",
        ),
        (
            SPOT_ROW.replace(",True,True", ",True,"),
            r"column 7 \(isBestMatch\): expected 'true' or 'false' \(any case\), found an empty",
        ),
        (SPOT_ROW.replace("17.8018", "17,8018"), r"expected 7 columns \(spot trades\), found 8"),
        (SPOT_ROW + ",x", r"expected 7 columns \(spot trades\), found 8"),
        (
            SPOT_ROW.replace("5.69", "5..69"),
            r"column 3 \(qty\): expected a decimal number, found '5..69000000'",
        ),
        (
            SPOT_ROW.replace("51175358", "51175358.0"),
            r"column 1 \(id\): expected an integer, found '51175358.0'",
        ),
        (
            SPOT_ROW.replace("51175358", "99999999999999999999"),
            r"column 1 \(id\): expected an integer within",
        ),
        (SPOT_ROW.replace("1735689600010866", "2025-01-01"), r"column 5 \(time\): expected an integer"),
        # past int64 ns once scaled: refused instead of overflowing (found by differential fuzzing)
        (
            SPOT_ROW.replace("1735689600010866", "9999999999999999"),
            r"column 5 \(time\): expected a time in s, ms, us or ns between 1970 and 2262",
        ),
        (
            SPOT_ROW.replace("1735689600010866", "-1735689600010"),
            r"column 5 \(time\): expected a time in s, ms, us or ns between 1970 and 2262",
        ),
        # times in 1970..2262 only: INT64_MAX (as ns) and 2262-01-01 + 1 ns are refused
        (SPOT_ROW.replace("1735689600010866", "9223372036854775807"), r"column 5 \(time\): .*between 1970 and 2262"),
        (SPOT_ROW.replace("1735689600010866", "9214646400000000001"), r"column 5 \(time\): .*between 1970 and 2262"),
        # values: price > 0, qty > 0, quoteQty >= 0; decimals that round to 0 or inf
        (SPOT_ROW.replace("17.80180000", "0"), r"column 2 \(price\): expected a price > 0, found '0'"),
        (SPOT_ROW.replace("17.80180000", "-17.8018"), r"column 2 \(price\): expected a price > 0"),
        (SPOT_ROW.replace("5.69000000", "0.0"), r"column 3 \(qty\): expected a quantity > 0"),
        (SPOT_ROW.replace("101.29224200", "-1"), r"column 4 \(quoteQty\): expected a value >= 0"),
        (SPOT_ROW.replace("17.80180000", "1e-400"), r"column 2 \(price\): expected a decimal number within"),
        (SPOT_ROW.replace("17.80180000", "1e400"), r"column 2 \(price\): expected a decimal number within"),
        # a NUL past the first 64 bytes (not taken for binary data) is shown escaped, never cut
        (
            SPOT_ROW[:-4] + "Tr\x00ue",
            r"column 7 \(isBestMatch\): expected 'true' or 'false' \(any case\), found 'Tr\\x00ue'",
        ),
        ("trade Id,price,qty", r"header not recognised: .* found 'trade Id,price,qty'"),
    ],
)
def test_bad_row(tmp_path, row, match):
    p = write(tmp_path, "t.csv", SPOT_ROW, row, SPOT_ROW.replace("51175358", "51175359"))
    with pytest.raises(LobError, match=r"t\.csv, line 2 \(byte 72\): " + match) as e:
        lobfast.read_binance_vision(p)
    assert e.value.line == 2
    with pytest.raises(ref.RowError) as r:
        ref.read_binance_vision(p)
    assert r.value.line == 2
    stats: dict = {}
    t = lobfast.read_binance_vision(p, on_error="skip", stats=stats)
    assert stats["bad_lines"] == 1 and stats["first_bad_line"].startswith("line 2: ")
    assert t.trade_id.tolist() == [51175358, 51175359]
    check_reference(p, t, on_error="skip")


@pytest.mark.parametrize(
    "cells, match",
    [
        ({1: "0"}, r"column 2 \(best_bid_price\): expected a price > 0"),
        ({3: "-2474.31"}, r"column 4 \(best_ask_price\): expected a price > 0"),
        ({2: "-6"}, r"column 3 \(best_bid_qty\): expected a value >= 0"),
        ({4: "1e-999"}, r"column 5 \(best_ask_qty\): expected a decimal number within"),
        ({5: "9223372036854775807"}, r"column 6 \(transaction_time\): .*between 1970 and 2262"),
        ({6: "-1"}, r"column 7 \(event_time\): .*between 1970 and 2262"),
    ],
)
def test_bad_book_ticker_values(tmp_path, cells, match):
    good = "3831603310013,2474.30000000,6.00900000,2474.31000000,44.75700000,1705276800000,1705276800005"
    bad = good.split(",")
    for i, v in cells.items():
        bad[i] = v
    p = write(tmp_path, "b.csv", VISION_HEADERS["um_book"], good, ",".join(bad), good)
    with pytest.raises(LobError, match=r"b\.csv, line 3 \(byte \d+\): " + match):
        lobfast.read_binance_vision(p)
    with pytest.raises(ref.RowError):
        ref.read_binance_vision(p)
    stats: dict = {}
    q = lobfast.read_binance_vision(p, on_error="skip", stats=stats)
    assert stats["bad_lines"] == 1 and stats["rows"] == 2 and len(q) == 2
    check_reference(p, q, on_error="skip")


def test_header_of_another_layout_mid_file(tmp_path):
    """A known header of another layout refuses the rows after it (they are of that
    layout); an unknown header-like line is one bad line."""
    um = "id,price,qty,quote_qty,time,is_buyer_maker"
    p = write(tmp_path, "t.csv", SPOT_ROW, um, "1,2,3,4,1705276800000,true", SPOT_ROW)
    with pytest.raises(LobError, match=r"line 2 .*header is for UM trades but earlier data was spot trades"):
        lobfast.read_binance_vision(p)
    stats: dict = {}
    t = lobfast.read_binance_vision(p, on_error="skip", stats=stats)
    assert len(t) == 1 and stats["bad_lines"] == 3
    check_reference(p, t, on_error="skip")


def test_bad_first_rows(tmp_path):
    p = write(tmp_path, "t.csv", "1,2,3,4,5")
    with pytest.raises(LobError, match=r"line 1 .*expected 6, 7 or 8 columns .*found 5"):
        lobfast.read_binance_vision(p)
    p = write(tmp_path, "h.csv", "id,price,qty,quote_qty,time,is_buyer_maker,extra", "1,2,3,4,5,true")
    with pytest.raises(LobError, match=r"line 1 .*header not recognised"):
        lobfast.read_binance_vision(p)
    with pytest.raises(LobError, match=r"no row of this file could be read \(2 bad lines\): header not recognised"):
        lobfast.read_binance_vision(p, on_error="skip")


def test_header_with_nul(tmp_path):
    """A NUL after a valid header does not end the comparison (found by differential fuzzing)."""
    p = tmp_path / "h.csv"
    header = VISION_HEADERS["um_book"].encode()  # longer than the 64 bytes checked for binary data
    p.write_bytes(header + b"\x001,2,3,4,5,6,7\n1,2,3,4,5,1705276800000,1705276800000\n")
    with pytest.raises(LobError, match=r"line 1 .*header not recognised"):
        lobfast.read_binance_vision(p)


def test_zip_archive(tmp_path):
    import zipfile

    p = tmp_path / "BTCUSDT-trades-2025-01-01.zip"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("BTCUSDT-trades-2025-01-01.csv", SPOT_ROW + "\n")
    with pytest.raises(LobError, match=r"line 1 .*binary data.*extract the .csv first"):
        lobfast.read_binance_vision(p)


def test_empty_file(tmp_path):
    p = tmp_path / "e.csv.gz"
    p.write_bytes(gzip.compress(b""))
    with pytest.raises(LobError, match="empty"):
        lobfast.read_binance_vision(p)
    with pytest.warns(LobWarning, match="empty"), pytest.raises(LobError, match="every file is empty"):
        lobfast.read_binance_vision(p, on_error="skip")


def test_docstring_example():
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in doctest.DocTestFinder().find(lobfast.read_binance_vision, "read_binance_vision", globs={}):
        runner.run(test)
    assert runner.tries > 0 and runner.failures == 0


# --------------------------------------------------------------------------- properties

HEADERS = {
    "spot trades": "id,price,qty,quoteQty,time,isBuyerMaker,isBestMatch",
    "spot aggTrades": "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker,"
    "is_best_match",
    "UM trades": VISION_HEADERS["um_trades"],
    "UM aggTrades": VISION_HEADERS["um_agg"],
    "UM bookTicker": VISION_HEADERS["um_book"],
}
BOOL = st.sampled_from(["True", "False", "true", "false", "TRUE"])
TIME = st.sampled_from([1705276800000, 1705276800005, 1735689600010866, 1735689600010867, 1705276800001])
INT = st.integers(0, 2**40).map(str)
BAD = st.sampled_from(["", "x", "1.5", "1e3", "-", "maybe", "1,2", "-1", "0", "1e-400", "9223372036854775807"])


@st.composite
def vision_file(draw):
    layout = draw(st.sampled_from(sorted(HEADERS)))
    lines = [HEADERS[layout]] if draw(st.booleans()) else []
    for _ in range(draw(st.integers(0, 20))):
        if layout == "UM bookTicker":
            row = [
                draw(st.sampled_from(["1", "2", "3"])),
                *(draw(POSITIVE if i % 2 == 0 else DECIMAL) for i in range(4)),
            ]
            row += [str(draw(TIME)), str(draw(TIME))]
        else:
            row = [draw(INT), draw(POSITIVE), draw(POSITIVE)]
            row += [draw(INT), draw(INT)] if "agg" in layout else [draw(DECIMAL)]
            row += [str(draw(TIME)), draw(BOOL)] + ([draw(BOOL)] if layout.startswith("spot") else [])
        if draw(st.integers(0, 14)) == 0:  # now and then a bad cell
            row[draw(st.integers(0, len(row) - 1))] = draw(BAD)
        lines.append(",".join(row))
    return lines


@settings(max_examples=100, deadline=None)
@given(lines=vision_file(), on_error=st.sampled_from(["raise", "skip"]))
def test_random_files_match_reference(lines, on_error):
    with tempfile.TemporaryDirectory() as tmp:
        p = write_lines(Path(tmp) / "r.csv", lines)
        try:
            kind, cols, counts = ref.read_binance_vision(p, on_error=on_error)
        except ref.RowError as e:
            with pytest.raises(LobError) as err:
                lobfast.read_binance_vision(p, on_error=on_error)
            assert err.value.line == e.line
            return
        if not lines:
            return  # an empty file: covered by test_empty_file
        if counts["bad_lines"] and not counts["rows"]:
            with pytest.raises(LobError, match="no row of this file could be read"):
                lobfast.read_binance_vision(p, on_error=on_error)
            return
        stats: dict = {}
        if kind is None:  # a header and nothing else: no data type can be told
            with pytest.raises(LobError, match="every file is empty"):
                lobfast.read_binance_vision(p, on_error=on_error, stats=stats)
            return
        got = lobfast.read_binance_vision(p, on_error=on_error, stats=stats)
        assert_same(got, cols)
        assert stats["data_type"] == kind
        for k, v in counts.items():
            assert stats[k] == v, k
