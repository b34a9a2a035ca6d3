"""read_binance / iter_binance on the real recordings: counts, sync rules, exactness."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SPOT_BTC_0808, SPOT_BTC_0809, SPOT_ETH_0808, USDM_BTC_0808

import lobfast
from lobfast import Flags, _reference

TABLES = ("depth", "trades", "agg_trades", "quotes")


def assert_tables_equal(md: lobfast.MarketData, ref: dict, what: str = "") -> None:
    for name in TABLES:
        got = getattr(md, name).columns
        for col, want in ref[name].items():
            assert got[col].dtype == want.dtype, f"{what} {name}.{col}: dtype {got[col].dtype} != {want.dtype}"
            assert np.array_equal(got[col], want, equal_nan=True), f"{what} {name}.{col} differs from the reference"


@pytest.mark.parametrize(
    "path, market, depth, trades, tickers, snapshots, dropped",
    [
        (SPOT_BTC_0808, "spot", 3451, 9757, 28040, 1, 2),  # the 3rd diff bridges the snapshot
        (SPOT_ETH_0808, "spot", 3434, 6106, 24077, 1, None),
        (USDM_BTC_0808, "usdm", 6551, 21313, 66089, 1, 4),  # the 5th diff bridges
    ],
)
def test_known_counts(path, market, depth, trades, tickers, snapshots, dropped):
    md = lobfast.read_binance(path)
    s = md.stats
    assert (s["market"], s["symbol"]) == (market, path.name.split("_")[1].upper())
    assert s["depth_messages"] == depth
    assert s["trade_messages"] == trades == len(md.trades)
    assert s["book_ticker_messages"] == tickers == len(md.quotes)
    assert s["snapshots"] == snapshots
    assert s["gaps"] == 0 and s["resets"] == 1 and s["bad_lines"] == 0 and s["unknown_messages"] == 0
    if dropped is not None:
        assert s["dropped_before_sync"] == dropped
    fl = md.depth.flags
    # one END_OF_MESSAGE per applied diff, plus the snapshot's
    assert np.count_nonzero(fl & Flags.END_OF_MESSAGE) == depth - s["dropped_before_sync"] + 1
    assert np.count_nonzero(fl & Flags.RESET) == 1 and fl[0] & Flags.RESET
    assert np.count_nonzero(fl & Flags.SNAPSHOT) == 2000  # 1000 levels a side
    assert np.all(np.diff(md.depth.ts) >= 0), "depth ts must not go backwards"


def test_two_days_are_one_stream():
    md = lobfast.read_binance([SPOT_BTC_0808, SPOT_BTC_0809])
    s = md.stats
    assert s["gaps"] == 0 and s["resets"] == 1
    assert s["depth_messages"] == 3451 + 3044 and len(md.trades) == 9757 + 10147
    assert s["files"] == 2 and s["synced"] == 1
    # the glob form reads the same files in sorted order
    md2 = lobfast.read_binance(str(SPOT_BTC_0808).replace("0808", "080*"))
    assert np.array_equal(md2.depth.update_id, md.depth.update_id)


def test_second_day_alone_has_no_book():
    """0809 has no snapshot: its diffs cannot be placed on a known book, so none is emitted."""
    md = lobfast.read_binance(SPOT_BTC_0809)
    assert len(md.depth) == 0
    assert md.stats["dropped_before_sync"] == 3044 and md.stats["synced"] == 0
    assert len(md.trades) == 10147 and len(md.quotes) == 45134


@pytest.mark.parametrize("paths", [[SPOT_BTC_0808], [SPOT_BTC_0808, SPOT_BTC_0809], [USDM_BTC_0808], [SPOT_ETH_0808]])
def test_equals_python_reference(paths):
    md = lobfast.read_binance(paths)
    assert_tables_equal(md, _reference.read_binance([str(p) for p in paths]), str(paths))


@pytest.mark.parametrize(
    "paths, pairs", [([SPOT_BTC_0808, SPOT_BTC_0809], 1072), ([SPOT_ETH_0808], 577), ([USDM_BTC_0808], 629)]
)
def test_book_matches_exchange_book_ticker(paths, pairs):
    """Wherever bookTicker's u equals a depth message's u, the rebuilt best bid/ask must be
    exactly the exchange's: an oracle from the exchange itself."""
    md = lobfast.read_binance(paths)
    best = _reference.best_quotes_from_depth(md.depth.columns)
    q = md.quotes
    matched = [i for i, u in enumerate(q.update_id.tolist()) if u in best]
    assert len(matched) == pairs
    for i in matched:
        want = (q.bid_px[i], q.bid_qty[i], q.ask_px[i], q.ask_qty[i])
        assert best[int(q.update_id[i])] == want, f"update {q.update_id[i]}: book {best[q.update_id[i]]} != {want}"


@pytest.mark.parametrize("chunk_rows", [1, 997, 50_000])
def test_chunks_concatenate_to_one_read(chunk_rows):
    paths = [SPOT_BTC_0808, SPOT_BTC_0809]
    whole = lobfast.read_binance(paths)
    chunks = list(lobfast.iter_binance(paths, chunk_rows=chunk_rows))
    assert len(chunks) > 1
    for name in TABLES:
        for col, want in getattr(whole, name).columns.items():
            got = np.concatenate([getattr(c, name).columns[col] for c in chunks])
            assert np.array_equal(got, want, equal_nan=True), f"{name}.{col} with chunk_rows={chunk_rows}"
    assert chunks[-1].stats["gaps"] == 0 and chunks[-1].stats["depth_messages"] == 3451 + 3044
    if chunk_rows > 1:
        sizes = [len(c.depth) + len(c.trades) + len(c.agg_trades) + len(c.quotes) for c in chunks[:-1]]
        assert max(sizes) < chunk_rows + 5000  # a chunk ends at the first line that reaches chunk_rows


def test_receive_time_window():
    full = lobfast.read_binance(SPOT_BTC_0808)
    t0 = int(full.trades.local_ts[100])
    t1 = int(full.trades.local_ts[200])
    md = lobfast.read_binance(SPOT_BTC_0808, start=t0, end=t1)
    assert np.array_equal(md.trades.trade_id, full.trades.trade_id[100:200])
    assert md.stats["outside_window"] > 0
    # a window after the snapshot opens with the book the snapshot and the diffs since made
    assert md.depth.flags[0] == Flags.SNAPSHOT | Flags.RESET and md.stats["unsynced_until"] is None
    assert md.depth.local_ts[0] >= t0 and md.stats["book_at_start"] == 1
    iso = np.datetime64(t0, "ns").astype(str)
    assert len(lobfast.read_binance(SPOT_BTC_0808, start=iso, end=t1).trades) == 100


@pytest.mark.parametrize("symbol, alone", [("ETHUSDT", SPOT_ETH_0808), ("btcusdt", SPOT_BTC_0808)])
def test_symbol_filter_on_mixed_file(mixed_btc_eth, symbol, alone):
    md = lobfast.read_binance(mixed_btc_eth, symbol=symbol)
    one = lobfast.read_binance(alone)
    for name in TABLES:
        for col, want in getattr(one, name).columns.items():
            assert np.array_equal(getattr(md, name).columns[col], want, equal_nan=True), f"{name}.{col}"
    assert md.stats["other_symbol_messages"] > 0
    assert md.stats["snapshots_ambiguous"] == 1  # the other symbol's REST body was not applied
    assert md.stats["gaps"] == 0


def test_mixed_symbols_without_filter_is_an_error(mixed_btc_eth):
    with pytest.raises(lobfast.LobError, match="several symbols.*BTCUSDT, ETHUSDT.*symbol="):
        lobfast.read_binance(mixed_btc_eth)
    with pytest.raises(lobfast.LobError, match="several symbols"):
        list(lobfast.iter_binance(mixed_btc_eth, chunk_rows=10_000))


def test_trades_fields():
    md = lobfast.read_binance(SPOT_BTC_0808)
    t = md.trades
    assert set(np.unique(t.side)) == {-1, 1}
    assert t.trade_id[0] == 3735683259 and t.price[0] == 61837.63 and t.qty[0] == 0.02 and t.side[0] == -1
    assert t.ts[0] == 1723161255342 * 10**6  # trade time T, in ns
    q = md.quotes
    assert q.ts[0] == q.local_ts[0]  # spot bookTicker has no exchange time
    u = lobfast.read_binance(USDM_BTC_0808).quotes
    assert u.ts[0] == 1723161256313 * 10**6 and u.update_id[0] == 5123107839020


def test_arrays_are_zero_copy_and_owned():
    md = lobfast.read_binance(SPOT_BTC_0808)
    a = md.depth.price
    assert a.flags.c_contiguous and a.flags.writeable and not a.flags.owndata
    assert type(a.base).__name__ == "PyCapsule"
    df = md.depth.to_pandas()
    assert np.shares_memory(df["price"].to_numpy(), a)


def test_docstring_example_runs():
    import doctest

    runner = doctest.DocTestRunner()
    for test in doctest.DocTestFinder().find(lobfast.read_binance, "read_binance", globs={}):
        runner.run(test)
    assert runner.failures == 0 and runner.tries > 0


# --------------------------------------------------------------------------- values and times

_LOCAL = 1_700_000_000_000_000_000
_TRADE = '{"e":"trade","E":1700000000000,"s":"BTCUSDT","t":%d,"p":"%s","q":"%s","T":1700000000000,"m":true}'
_AGG = '{"e":"aggTrade","E":1700000000000,"s":"BTCUSDT","a":%d,"p":"%s","q":"%s","T":1700000000000,"m":true}'
_TICKER = '{"u":%d,"s":"BTCUSDT","b":"%s","B":"%s","a":"%s","A":"%s"}'


def _read_with_bad_line(tmp_path, bad: str, table: str, good: str, match: str) -> None:
    """`bad` between two good lines: refused naming the file, line 2 and the field, or
    counted and skipped with on_error="skip" (the good lines are all read)."""
    p = tmp_path / "v.txt"
    p.write_bytes(f"{_LOCAL} {good}\n{bad}\n{_LOCAL + 2} {good}\n".encode("latin-1"))
    with pytest.raises(lobfast.LobError, match=r"v\.txt, line 2 \(byte \d+\): " + match) as e:
        lobfast.read_binance(p)
    assert e.value.line == 2
    md = lobfast.read_binance(p, on_error="skip")
    assert md.stats["bad_lines"] == 1 and md.stats["first_bad_line"].startswith("line 2: ")
    assert len(getattr(md, table)) == 2


@pytest.mark.parametrize(
    "fmt, p, q, match",
    [
        (_TRADE, "0", "1", r"trade field 'p' is 0: expected a price > 0"),
        (_TRADE, "-100", "1", r"trade field 'p' is -100: expected a price > 0"),
        (_TRADE, "100", "0.00000000", r"trade field 'q' is 0: expected a quantity > 0"),
        (_TRADE, "100", "-1", r"trade field 'q' is -1: expected a quantity > 0"),
        (_AGG, "0", "1", r"aggTrade field 'p' is 0: expected a price > 0"),
        (_AGG, "1", "-0.5", r"aggTrade field 'q' is -0.5: expected a quantity > 0"),
        # a nonzero literal that rounds to 0, one that rounds to infinity
        (_TRADE, "1e-400", "1", r"column \d+: expected a decimal within float64 range, found '1e-400"),
        (_TRADE, "100", "1e400", r"column \d+: expected a decimal within float64 range, found '1e400"),
    ],
)
def test_trade_values_are_checked(tmp_path, fmt, p, q, match):
    bad = f"{_LOCAL + 1} " + fmt % (2, p, q)
    table = "trades" if fmt is _TRADE else "agg_trades"
    _read_with_bad_line(tmp_path, bad, table, fmt % (1, "100", "1"), match)


@pytest.mark.parametrize(
    "b, bq, a, aq, match",
    [
        ("0", "1", "101", "1", r"bookTicker field 'b' is 0: expected a price > 0"),
        ("100", "1", "-101", "1", r"bookTicker field 'a' is -101: expected a price > 0"),
        ("100", "-1", "101", "1", r"bookTicker field 'B' is -1: expected a size >= 0"),
        ("100", "1", "101", "-2", r"bookTicker field 'A' is -2: expected a size >= 0"),
        ("100", "1e-330", "101", "1", r"column \d+: expected a decimal within float64 range, found '1e-330"),
    ],
)
def test_book_ticker_values_are_checked(tmp_path, b, bq, a, aq, match):
    bad = f"{_LOCAL + 1} " + _TICKER % (2, b, bq, a, aq)
    _read_with_bad_line(tmp_path, bad, "quotes", _TICKER % (1, "100", "1", "101", "0"), match)


@pytest.mark.parametrize(
    "bad, match",
    [
        # a line stamped INT64_MAX was once counted as outside the window, in silence
        (f"9223372036854775807 {_TRADE % (2, '100', '1')}", r"receive time 9223372036854775807 ns is not a time"),
        (f"9214646400000000001 {_TRADE % (2, '100', '1')}", r"receive time 9214646400000000001 ns is not a time"),
        (
            f"{_LOCAL + 1} " + _TRADE.replace('"E":1700000000000', '"E":9223372036854775807') % (2, "100", "1"),
            r"exchange time E=9223372036854775807 is not a time between 1970 and 2262",
        ),
        (
            f"{_LOCAL + 1} " + _TRADE.replace('"T":1700000000000', '"T":-1') % (2, "100", "1"),
            r"exchange time T=-1 is not a time between 1970 and 2262",
        ),
        # JSON strings: a control byte is refused and shown escaped, never cut at the NUL
        (
            f'{_LOCAL + 1} {{"e":"trade","s":"BTC\x00USDT"}}',
            r"column 42: expected a printable character in the string, found '\\x00USDT\"}'",
        ),
    ],
)
def test_times_and_strings_are_checked(tmp_path, bad, match):
    _read_with_bad_line(tmp_path, bad, "trades", _TRADE % (1, "100", "1"), match)
