"""lobfast.backtest.hold_to_horizon: hand-computed PnL and a row-by-row reference."""

from __future__ import annotations

import contextlib
import datetime as dt

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lobfast
from lobfast import LobWarning
from lobfast import backtest as B

SEC = 10**9
TS = np.arange(8, dtype=np.int64) * SEC
BID = np.array([100.0, 101.0, 102.0, 103.0, 102.0, 101.0, 100.0, 99.0])
ASK = BID + 1.0
BOOK = (TS, BID, ASK)


def only(rows, value=1.0, n=8):
    s = np.full(n, np.nan)
    s[rows] = value
    return s


# ------------------------------------------------------------------------------ reference
def reference(sig, ts, bid, ask, ok, h_rows, h_ns, thr, fee_in, fee_out, maker, overlapping, l_rows=0, l_ns=0):
    """Row by row, one position at a time unless overlapping; orders sent at a row fill at
    the first row at or after its time + l_ns (or l_rows rows later)."""
    n = len(ts)

    def fill(k):
        if l_rows:
            return k + l_rows
        return min([m for m in range(k, n) if ts[m] >= ts[k] + l_ns], default=n)

    trades, skipped_invalid, skipped_end, free_from = [], 0, 0, 0
    for i in range(n):
        if not overlapping and i < free_from:
            continue
        if not (sig[i] > thr or sig[i] < -thr):
            continue
        side = 1 if sig[i] > thr else -1
        if h_rows:
            j = i + h_rows
            if j >= n:
                skipped_end += 1
                continue
        else:
            if ts[i] + h_ns > ts[-1]:
                skipped_end += 1
                continue
            j = max(k for k in range(n) if ts[k] <= ts[i] + h_ns)
        e, x = fill(i), fill(j)
        if e >= n or x >= n:
            skipped_end += 1
            continue
        if not (ok[e] and ok[x]):
            skipped_invalid += 1
            continue
        entry = ask[e] if side > 0 else bid[e]
        if maker:
            exit_px = ask[x] if side > 0 else bid[x]
        else:
            exit_px = bid[x] if side > 0 else ask[x]
        gross = side * (exit_px - entry) / entry
        trades.append((e, x, side, entry, exit_px, gross, gross - (fee_in + fee_out) / 1e4, i))
        free_from = max(x, i + 1)
    held = np.zeros(n, bool)
    for e, x, *_ in trades:
        held[e:x] = True
    return [t[:7] for t in trades], skipped_invalid, skipped_end, held.mean(), [t[7] for t in trades]


def as_tuples(r):
    return list(
        zip(
            r.entry_row.tolist(),
            r.exit_row.tolist(),
            r.side.tolist(),
            r.entry_px.tolist(),
            r.exit_px.tolist(),
            r.gross.tolist(),
            r.net.tolist(),
        )
    )


# ------------------------------------------------------------------------------ by hand
def test_long_taker_with_and_without_fees():
    r = B.hold_to_horizon(only(0), BOOK, 2, fee_bps_taker=0.0)
    assert (r.entry_row.tolist(), r.exit_row.tolist(), r.side.tolist()) == ([0], [2], [1])
    assert (r.entry_px[0], r.exit_px[0]) == (101.0, 102.0)  # buy at the ask, sell at the bid
    assert r.gross[0] == pytest.approx(1 / 101) and r.net[0] == pytest.approx(1 / 101)
    r = B.hold_to_horizon(only(0), BOOK, 2)  # 4 bps taker on each leg
    assert r.net[0] == pytest.approx(1 / 101 - 8e-4)
    assert r.net_pnl == pytest.approx(1 / 101 - 8e-4) and r.gross_pnl == pytest.approx(1 / 101)
    assert r.mean_net_bps == pytest.approx((1 / 101 - 8e-4) * 1e4)
    assert (r.trades, r.turnover, r.hit_rate) == (1, 2.0, 1.0)
    assert np.isnan(r.sharpe_per_trade)


def test_short_taker_and_maker_exits():
    r = B.hold_to_horizon(only(3, -0.3), BOOK, 2, fee_bps_taker=1.0)
    assert (r.side[0], r.entry_px[0], r.exit_px[0]) == (-1, 103.0, 102.0)  # sell at the bid, buy back at the ask
    assert r.net[0] == pytest.approx(1 / 103 - 2e-4)
    r = B.hold_to_horizon(only(3, -0.3), BOOK, 2, fee_bps_taker=1.0, fee_bps_maker=0.5, exit="maker")
    assert r.exit_px[0] == 101.0  # bids at the bid and is filled
    assert r.net[0] == pytest.approx(2 / 103 - 1.5e-4)
    r = B.hold_to_horizon(only(0), BOOK, 2, exit="maker")
    assert r.exit_px[0] == 103.0  # offers at the ask
    assert r.net[0] == pytest.approx(2 / 101 - 4e-4)


def test_threshold_is_strict_and_nan_is_no_signal():
    sig = np.array([0.5, -0.5, 0.6, np.nan, -0.7, 0.0, 0.1, 0.2])
    r = B.hold_to_horizon(sig, BOOK, 1, 0.5, overlapping=False)
    assert r.entry_row.tolist() == [2, 4] and r.side.tolist() == [1, -1]
    assert B.hold_to_horizon(sig, BOOK, 1).entry_row.tolist() == [0, 1, 2, 4, 6]


def test_one_position_at_a_time_vs_overlapping():
    sig = np.ones(8)
    r = B.hold_to_horizon(sig, BOOK, 2)
    assert r.entry_row.tolist() == [0, 2, 4] and r.exit_row.tolist() == [2, 4, 6]
    assert (r.skipped_end, r.skipped_invalid) == (2, 0)  # rows 6 and 7; 1, 3, 5 are inside a position
    assert r.exposure == 6 / 8
    with pytest.warns(LobWarning, match="not independent"):
        o = B.hold_to_horizon(sig, BOOK, 2, overlapping=True)
    assert o.entry_row.tolist() == [0, 1, 2, 3, 4, 5] and o.skipped_end == 2
    assert o.exposure == 7 / 8
    np.testing.assert_allclose(o.gross, (BID[2:] - ASK[:6]) / ASK[:6])
    assert o.summary()["overlapping"] is True


def test_invalid_rows_are_skipped_not_traded():
    valid = np.ones(8, bool)
    valid[2] = False
    r = B.hold_to_horizon(only([0, 1]), BOOK, 2, valid=valid)
    assert r.entry_row.tolist() == [1] and r.skipped_invalid == 1  # row 0 would exit on row 2
    r = B.hold_to_horizon(only([2, 3]), BOOK, 2, valid=valid)
    assert r.entry_row.tolist() == [3] and r.skipped_invalid == 1  # row 2 would enter on it
    crossed = ASK.copy()
    crossed[5] = BID[5]  # bid == ask: not tradable without any mask
    bid_nan = BID.copy()
    bid_nan[3] = np.nan
    r = B.hold_to_horizon(only([1, 3, 4]), (TS, bid_nan, crossed), 1)
    assert r.entry_row.tolist() == [1] and r.skipped_invalid == 2


def test_duration_horizon_on_irregular_rows():
    ts = (np.array([0, 1, 1.5, 3, 4, 4.2, 6, 7]) * SEC).astype(np.int64)
    for h in ("2s", dt.timedelta(seconds=2), np.timedelta64(2, "s")):
        r = B.hold_to_horizon(only([0, 1, 5, 6]), (ts, BID, ASK), h, overlapping=False)
        # row 0 -> last ts <= 2 s is row 2; row 5 (4.2 s) -> row 6 (6 s); row 6 -> 8 s is past the data
        assert r.entry_row.tolist() == [0, 5] and r.exit_row.tolist() == [2, 6]
        assert r.skipped_end == 1
    r = B.hold_to_horizon(only([0, 1]), (ts, BID, ASK), "200ms")
    # the book in effect 200 ms later is the same row: the position opens and closes on it
    assert r.entry_row.tolist() == [0, 1] and r.exit_row.tolist() == [0, 1]
    assert r.gross[0] == pytest.approx(-1 / 101) and r.exposure == 0.0


def test_book_snapshots_input():
    valid = np.ones(8, bool)
    valid[4] = False
    snaps = lobfast.BookSnapshots(
        ts=TS,
        update_id=np.arange(8),
        bid_px=np.column_stack([BID, BID - 1]),
        bid_sz=np.ones((8, 2)),
        ask_px=np.column_stack([ASK, ASK + 1]),
        ask_sz=np.ones((8, 2)),
        valid=valid,
    )
    sig = np.array([1.0, -1, 1, -1, 1, -1, 1, -1])
    a = B.hold_to_horizon(sig, snaps, 1)
    b = B.hold_to_horizon(sig, BOOK, 1, valid=valid)
    assert as_tuples(a) == as_tuples(b) and a.skipped_invalid == b.skipped_invalid == 2
    more = np.ones(8, bool)
    more[0] = False
    c = B.hold_to_horizon(sig, snaps, 1, valid=more)  # narrows the book's own valid
    assert c.entry_row.tolist() == [1, 2, 5, 6]


def test_threshold_sweep():
    sig = np.array([0.5, 2.0, -0.2, -3.0, 0.1, 1.5, 0.0, 0.0])
    sweep = B.hold_to_horizon(sig, BOOK, 1, [0.0, 1.0, 5.0], fee_bps_taker=0.0, exit="maker")
    assert isinstance(sweep, B.BacktestSweep) and len(sweep) == 3
    assert [r.trades for r in sweep] == [6, 3, 0]
    assert sweep[1].entry_row.tolist() == [1, 3, 5]
    table = sweep.table()
    assert table.index.tolist() == [0.0, 1.0, 5.0] and table.index.name == "threshold"
    assert table["trades"].tolist() == [6, 3, 0]
    assert table.loc[1.0, "net_pnl"] == pytest.approx(1 / 102 + 1 / 103 - 1 / 102)
    assert np.isnan(table.loc[5.0, "hit_rate"])
    assert sweep.best() is max(sweep, key=lambda r: r.net_pnl)
    assert sweep.best("trades") is sweep[0]
    assert "threshold" in repr(sweep)
    with pytest.raises(ValueError, match="metric"):
        sweep.best("pnl")
    assert isinstance(B.hold_to_horizon(sig, BOOK, 1, np.float64(1.0)), B.BacktestResult)


def test_equity_summary_repr_and_plot(tmp_path):
    from matplotlib.figure import Figure

    r = B.hold_to_horizon(np.ones(8), BOOK, 2, fee_bps_taker=0.0)
    eq = r.equity()
    expect = np.zeros(8)
    for j, x in zip(r.exit_row, r.net):
        expect[j:] += x
    np.testing.assert_allclose(eq, expect)
    assert len(r.equity(12)) == 12
    with pytest.raises(ValueError, match="n_rows"):
        r.equity(3)
    s = r.summary()
    assert s["trades"] == 3 and s["turnover"] == 6.0 and s["horizon"] == 2 and s["exit"] == "taker"
    assert s["sharpe_per_trade"] == pytest.approx(r.net.mean() / r.net.std(ddof=1))
    assert "3 trades" in repr(r)
    f1 = B.plot_pnl(r, tmp_path / "one.png")
    f2 = B.plot_pnl(B.hold_to_horizon(np.linspace(-1, 1, 8), BOOK, 1, [0.0, 0.5]), tmp_path / "sweep.png")
    assert isinstance(f1, Figure) and isinstance(f2, Figure)
    for name in ("one", "sweep"):
        assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    empty = B.hold_to_horizon(np.zeros(8), BOOK, 2)
    assert empty.trades == 0 and empty.net_pnl == 0.0 and np.isnan(empty.mean_net_bps)
    np.testing.assert_array_equal(empty.equity(), np.zeros(8))


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"horizon": 0}, "at least 1 row"),
        ({"horizon": -2}, "at least 1 row"),
        ({"horizon": True}, "number of rows or a duration"),
        ({"horizon": 1.5}, "duration"),
        ({"horizon": "soon"}, "not a duration"),
        ({"threshold": -0.1}, "threshold"),
        ({"threshold": [0.1, np.nan]}, "threshold"),
        ({"threshold": []}, "threshold"),
        ({"fee_bps_taker": -1.0}, "fee_bps_taker"),
        ({"fee_bps_maker": np.inf}, "fee_bps_maker"),
        ({"exit": "limit"}, "exit must be"),
        ({"signal": np.ones(7)}, r"signal has shape \(7,\), the book 8 rows"),
        ({"signal": np.ones((8, 1))}, "1-D"),
        ({"valid": np.ones(7, bool)}, "valid"),
        ({"book": (TS[::-1], BID, ASK)}, "sorted"),
        ({"book": (TS, BID[:5], ASK)}, "same length"),
    ],
)
def test_validation(kw, match):
    args = {"signal": np.ones(8), "book": BOOK, "horizon": 2, **kw}
    with pytest.raises(ValueError, match=match):
        B.hold_to_horizon(**args)


def test_book_type_error():
    with pytest.raises(TypeError, match="BookSnapshots"):
        B.hold_to_horizon(np.ones(8), {"bid": BID}, 1)
    with pytest.raises(TypeError, match="BacktestResult"):
        B.plot_pnl("nothing")


# ------------------------------------------------------------------------------ property
@st.composite
def markets(draw):
    n = draw(st.integers(1, 40))
    steps = draw(st.lists(st.sampled_from([0, 1, 1, 2, 3]), min_size=n, max_size=n))
    ts = np.cumsum(np.array(steps, dtype=np.int64)) * (SEC // 2)
    bid = 100 + np.array(draw(st.lists(st.integers(-20, 20), min_size=n, max_size=n)), dtype=np.float64) / 4
    spread = np.array(draw(st.lists(st.sampled_from([0.25, 0.5, 1.0]), min_size=n, max_size=n)))
    valid = np.array(draw(st.lists(st.sampled_from([True, True, True, False]), min_size=n, max_size=n)))
    sig = np.array(draw(st.lists(st.sampled_from([np.nan, 0.0, -2.0, -0.5, 0.5, 1.0, 3.0]), min_size=n, max_size=n)))
    horizon = draw(st.one_of(st.integers(1, 6), st.sampled_from(["500ms", "1s", "2s", "3500ms"])))
    return sig, (ts, bid, bid + spread), valid, horizon


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    markets(),
    st.sampled_from([0.0, 0.5, 1.5]),
    st.sampled_from(["taker", "maker"]),
    st.booleans(),
    st.sampled_from([(0.0, 0.0), (4.0, 1.0)]),
    st.sampled_from([0, 0, 1, 3, "0s", "500ms", "1s", "1500ms"]),
)
def test_matches_row_by_row_reference(market, thr, exit, overlapping, fees, latency):
    sig, book, valid, horizon = market
    ts, bid, ask = book
    warn = pytest.warns(LobWarning) if overlapping else contextlib.nullcontext()
    with warn:
        r = B.hold_to_horizon(
            sig,
            book,
            horizon,
            thr,
            fee_bps_taker=fees[0],
            fee_bps_maker=fees[1],
            exit=exit,
            overlapping=overlapping,
            valid=valid,
            latency=latency,
        )
    h_rows, h_ns = (horizon, 0) if isinstance(horizon, int) else (0, lobfast.parse_duration(horizon))
    l_rows, l_ns = (latency, 0) if isinstance(latency, int) else (0, lobfast.parse_duration(latency, allow_zero=True))
    fee_out = fees[1] if exit == "maker" else fees[0]
    trades, inv, end, exposure, signals = reference(
        sig, ts, bid, ask, valid, h_rows, h_ns, thr, fees[0], fee_out, exit == "maker", overlapping, l_rows, l_ns
    )
    got = as_tuples(r)
    assert [t[:5] for t in got] == [t[:5] for t in trades]
    np.testing.assert_allclose([t[5:] for t in got], [t[5:] for t in trades], rtol=1e-12, atol=1e-15)
    assert (r.skipped_invalid, r.skipped_end) == (inv, end)
    assert r.exposure == pytest.approx(exposure)
    assert r.signal_row.tolist() == signals and r.summary()["latency"] == latency
    assert r.entry_row.dtype == np.int64 and r.side.dtype == np.int8


def test_latency_fills_at_the_first_row_after_the_order_arrives():
    """50 ms on a 100 ms grid: both legs fill one row late; 0 (the default) is the signal's
    rows; a latency past the data skips the trade; bad values are refused."""
    ts = np.arange(8) * (SEC // 10)
    bid = np.array([100.0, 101, 102, 103, 104, 105, 106, 107])
    sig = only([1])
    now = B.hold_to_horizon(sig, (ts, bid, bid + 1), 2, fee_bps_taker=0.0)
    late = B.hold_to_horizon(sig, (ts, bid, bid + 1), 2, fee_bps_taker=0.0, latency="50ms")
    rows = B.hold_to_horizon(sig, (ts, bid, bid + 1), 2, fee_bps_taker=0.0, latency=1)
    assert (now.entry_row.tolist(), now.exit_row.tolist(), now.entry_px.tolist()) == ([1], [3], [102.0])
    assert (late.entry_row.tolist(), late.exit_row.tolist(), late.entry_px.tolist()) == ([2], [4], [103.0])
    assert late.signal_row.tolist() == [1] and as_tuples(rows) == as_tuples(late)
    assert B.hold_to_horizon(sig, (ts, bid, bid + 1), 2, latency="1s").skipped_end == 1
    for bad, match in [(-1, "latency must be a non-negative"), ("-5ms", "latency"), (True, "latency")]:
        with pytest.raises(ValueError, match=match):
            B.hold_to_horizon(sig, (ts, bid, bid + 1), 2, latency=bad)
