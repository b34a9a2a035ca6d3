"""The C order book against the plain-Python reference book, the exchange's own quotes, and
bad input."""

from __future__ import annotations

import datetime
import gzip
import os
import signal
import threading
import time

import numpy as np
import pytest
from conftest import SPOT_BTC_0808, SPOT_BTC_0809, SPOT_ETH_0808, USDM_BTC_0808
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lobfast
from lobfast import BookBuilder, DepthEvents, Flags, LobError, _reference, reconstruct

SNAP, RESET, GAP, EOM = (int(f) for f in (Flags.SNAPSHOT, Flags.RESET, Flags.GAP, Flags.END_OF_MESSAGE))


@pytest.fixture(scope="module")
def spot():
    return lobfast.read_binance([SPOT_BTC_0808, SPOT_BTC_0809])


@pytest.fixture(scope="module")
def usdm():
    return lobfast.read_binance(USDM_BTC_0808)


def assert_same(got: lobfast.BookSnapshots, want: dict, what: str = "") -> None:
    assert len(got) == len(want["ts"]), f"{what}: {len(got)} rows, reference {len(want['ts'])}"
    for k, w in want.items():
        g = got.columns[k]
        assert g.shape == w.shape, f"{what}: {k} shape {g.shape} != {w.shape}"
        if not np.array_equal(g, w, equal_nan=True):
            bad = np.flatnonzero(
                ~np.all(
                    np.atleast_2d((g == w) | (np.isnan(g) & np.isnan(w)) if g.dtype.kind == "f" else g == w).reshape(
                        len(g), -1
                    ),
                    axis=1,
                )
            )
            i = int(bad[0])
            raise AssertionError(f"{what}: {k} differs first at row {i}: {g[i]} != {w[i]}")


@pytest.mark.parametrize("path", [SPOT_BTC_0808, SPOT_ETH_0808])
def test_every_message_equals_the_reference(path):
    depth = lobfast.read_binance(path).depth
    assert_same(reconstruct(depth, levels=10), _reference.reference_book(depth.columns, 10), path.name)


def test_grid_equals_the_reference(usdm):
    cols = usdm.depth.columns
    for every in (10**9, 250 * 10**6):
        assert_same(
            reconstruct(usdm.depth, levels=5, every=every),
            _reference.reference_book(cols, 5, every),
            f"every={every}",
        )


@pytest.mark.parametrize("orphans", ["keep", "prune"])
def test_orphans_equal_the_reference(usdm, orphans):
    got = reconstruct(usdm.depth[:120_000], levels=20, orphans=orphans)
    want = _reference.reference_book(usdm.depth[:120_000].columns, 20, prune_orphans=orphans == "prune")
    assert_same(got, want, orphans)


@pytest.mark.parametrize(
    "paths, pairs", [([SPOT_BTC_0808, SPOT_BTC_0809], 1072), ([SPOT_ETH_0808], 577), ([USDM_BTC_0808], 629)]
)
def test_book_ticker_oracle_is_exact(paths, pairs):
    md = lobfast.read_binance(paths)
    report = lobfast.check_against_quotes(md.depth, md.quotes)
    assert (report.compared, report.matched, report.mismatches) == (pairs, pairs, [])
    assert report.ok


def test_chunks_give_the_same_rows(spot):
    whole = reconstruct(spot.depth, levels=10, every="500ms")
    b = BookBuilder(10, every="500ms")
    cuts = [0, 1, 999, 2000, 2001, 150_000, len(spot.depth)]
    parts = [b.feed(spot.depth[a:z]) for a, z in zip(cuts[:-1], cuts[1:])] + [b.finish()]
    for k, w in whole.columns.items():
        np.testing.assert_array_equal(np.concatenate([p.columns[k] for p in parts]), w, err_msg=k)
    bid_px, bid_sz, ask_px, ask_sz = b.book()
    assert bid_px[0] == whole.bid_px[-1, 0] and ask_px[0] == whole.ask_px[-1, 0]
    assert np.all(np.diff(bid_px) < 0) and np.all(np.diff(ask_px) > 0) and np.all(bid_sz > 0)
    assert b.stats["gaps"] == 0 and b.stats["resets"] == 1


def test_grid_rows_never_see_the_future(usdm):
    every = 100 * 10**6
    snaps = reconstruct(usdm.depth, levels=1, every=every)
    assert np.all(snaps.ts % every == 0) and np.all(np.diff(snaps.ts) == every)
    # each grid row's update id is the last message with ts <= the row's time
    msg = usdm.depth.flags & EOM > 0
    mts, muid = usdm.depth.ts[msg], usdm.depth.update_id[msg]
    want = muid[np.searchsorted(mts, snaps.ts, side="right") - 1]
    np.testing.assert_array_equal(snaps.update_id, want)


def test_book_at_matches_the_full_replay(usdm):
    full = reconstruct(usdm.depth, levels=10)
    for i in (0, 100, 3000, len(full) - 1):
        at = lobfast.book_at(usdm, int(full.ts[i]), levels=10)
        j = np.searchsorted(full.ts, full.ts[i], side="right") - 1  # the last message at that time
        np.testing.assert_array_equal(at.bid_px[0], full.bid_px[j])
        np.testing.assert_array_equal(at.ask_sz[0], full.ask_sz[j])
        assert bool(at.valid[0])
    before = lobfast.book_at(usdm, int(usdm.depth.ts[0]) - 1)
    assert not before.valid[0] and np.isnan(before.bid_px[0, 0])


def test_gap_invalidates_until_the_next_reset():
    rows = [  # ts, side, price, qty, uid, flags
        (1, 1, 100.0, 1.0, 10, RESET | SNAP),
        (1, -1, 101.0, 1.0, 10, SNAP | EOM),
        (2, 1, 100.5, 2.0, 11, EOM),
        (3, 0, np.nan, np.nan, 13, GAP | EOM),
        (4, 1, 100.0, 5.0, 14, EOM),  # applied, but the book is unknown
        (5, 1, 99.0, 1.0, 15, RESET | SNAP),
        (5, -1, 100.0, 1.0, 15, SNAP | EOM),
    ]
    d = depth_of(rows)
    s = reconstruct(d, levels=2)
    assert s.valid.tolist() == [True, True, False, False, True]
    assert s.bid_px[1].tolist() == [100.5, 100.0]
    assert s.bid_px[4, 0] == 99.0 and np.isnan(s.bid_px[4, 1])  # the reset cleared the old levels
    assert_same(s, _reference.reference_book(d.columns, 2))


def test_crossed_book_flag_raise_repair():
    rows = [
        (1, 1, 100.0, 1.0, 1, RESET | SNAP),
        (1, 1, 99.0, 1.0, 1, SNAP),
        (1, -1, 101.0, 1.0, 1, SNAP),
        (1, -1, 102.0, 1.0, 1, SNAP | EOM),
        (2, 1, 101.5, 3.0, 2, EOM),  # a bid through the stale 101 ask
    ]
    d = depth_of(rows)
    flagged = reconstruct(d, levels=2)
    assert flagged.valid.tolist() == [True, False]
    with pytest.raises(LobError, match=r"crossed after this message \(best bid 101.5 >= best ask 101\)"):
        reconstruct(d, levels=2, crossed="raise")
    b = BookBuilder(2, crossed="repair")
    repaired = b.feed(d)
    assert repaired.valid.tolist() == [True, True]
    assert repaired.ask_px[1, 0] == 102.0 and np.isnan(repaired.ask_px[1, 1])  # the stale 101 ask went
    assert b.stats["repairs"] == 1 and b.stats["crossed"] == 1
    assert_same(repaired, _reference.reference_book(d.columns, 2, crossed="repair"))


def test_max_stale_and_rows_before_a_reset():
    rows = [
        (1, 1, 100.0, 1.0, 1, EOM),
        (10, 1, 100.0, 1.0, 2, RESET | SNAP),
        (10, -1, 101.0, 1.0, 2, SNAP | EOM),
    ]
    d = depth_of(rows)
    s = reconstruct(d, levels=1, every=5, max_stale=6)
    assert s.ts.tolist() == [5, 10] and s.valid.tolist() == [False, True]  # 5: no RESET yet
    s = reconstruct(depth_of(rows + [(30, 1, 100.0, 2.0, 3, EOM)]), levels=1, every=5, max_stale=6)
    assert s.ts.tolist() == [5, 10, 15, 20, 25, 30]
    assert s.valid.tolist() == [False, True, True, False, False, True]


def test_prices_are_keyed_exactly():
    rows = [
        (1, 1, 0.1, 1.0, 1, RESET | SNAP),
        (1, -1, 0.3, 1.0, 1, SNAP | EOM),
        (2, 1, 0.1 + 0.2, 1.0, 2, EOM),
    ]  # 0.30000000000000004 is on no grid of <= 12 places
    with pytest.raises(LobError, match=r"row 2: price 0.30000000000000004 is not on a decimal grid"):
        reconstruct(depth_of(rows))
    rows[2] = (2, 1, 0.25, 1.0, 2, EOM)  # more decimals than seen so far: the book rescales
    s = reconstruct(depth_of(rows), levels=2)
    assert s.bid_px[-1].tolist() == [0.25, 0.1]
    b = BookBuilder(1)
    b.feed(depth_of(rows))
    assert b.stats["decimals"] == 2


@pytest.mark.parametrize(
    "rows, message",
    [
        ([(2, 1, 1.0, 1.0, 1, EOM), (1, 1, 1.0, 1.0, 2, EOM)], r"row 1: ts 1 is before the previous row's 2"),
        ([(1, 2, 1.0, 1.0, 1, EOM)], r"row 0: side must be \+1 \(bid\) or -1 \(ask\), not 2"),
        ([(1, 0, 1.0, 1.0, 1, EOM)], r"side must be .* not 0 \(0 only on GAP or RESET marker rows\)"),
        ([(1, 1, 1.0, -1.0, 1, EOM)], r"row 0: qty must be >= 0 and finite, not -1"),
        ([(1, 1, 1.0, np.nan, 1, EOM)], r"qty must be >= 0 and finite, not nan"),
        ([(1, 1, np.nan, 1.0, 1, EOM)], r"price must be positive and finite, not nan"),
        ([(1, 1, -5.0, 1.0, 1, EOM)], r"price must be positive and finite, not -5"),
    ],
)
def test_bad_rows(rows, message):
    with pytest.raises(LobError, match=message):
        reconstruct(depth_of(rows))


def test_bad_input_leaves_the_book_usable_and_errors_later_chunks_name_global_rows():
    b = BookBuilder(1)
    b.feed(depth_of([(1, 1, 1.0, 1.0, 1, RESET | SNAP | EOM)]))
    with pytest.raises(LobError, match="row 2: side must be"):
        b.feed(depth_of([(2, 1, 1.0, 2.0, 2, EOM), (3, 5, 1.0, 2.0, 3, EOM)]))
    assert len(b.feed(depth_of([(4, 1, 1.0, 3.0, 4, EOM)]))) == 1  # the failed batch changed nothing


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"levels": 0}, "levels must be an int >= 1"),
        ({"levels": 2.5}, "levels must be an int >= 1"),
        ({"every": "fast"}, "every='fast' is not a duration"),
        ({"every": -5}, "every must be a positive duration"),
        ({"every": "0ms"}, "every must be a positive duration"),
        ({"crossed": "ignore"}, "crossed must be 'flag', 'raise' or 'repair'"),
        ({"orphans": "drop"}, "orphans must be 'keep' or 'prune'"),
        ({"max_stale": "soon"}, "max_stale='soon' is not a duration"),
    ],
)
def test_bad_arguments(kwargs, error):
    with pytest.raises(ValueError, match=error):
        BookBuilder(**kwargs)


def test_zero_copy_inputs_are_checked():
    b = lobfast._core.Book(levels=1)
    ts = np.array([1], np.int64)
    good = dict(
        side=np.array([1], np.int8),
        price=np.array([1.0]),
        qty=np.array([1.0]),
        uid=np.array([1], np.int64),
        flags=np.array([EOM], np.uint8),
    )
    with pytest.raises(TypeError, match=r"ts must be a 1-D C-contiguous aligned native int64 array"):
        b.feed(ts.astype(np.int32), *good.values())
    with pytest.raises(TypeError, match="not contiguous"):
        b.feed(np.arange(4, dtype=np.int64)[::2], *good.values())
    with pytest.raises(TypeError, match="price must be a NumPy array"):
        b.feed(ts, good["side"], [1.0], good["qty"], good["uid"], good["flags"])
    with pytest.raises(ValueError, match="side has 2 rows, the other columns 1"):
        b.feed(ts, np.array([1, 1], np.int8), good["price"], good["qty"], good["uid"], good["flags"])
    with pytest.raises(TypeError, match=r"native int64 array \(got >i8"):
        b.feed(ts.astype(">i8"), *good.values())


def test_durations():
    assert lobfast.parse_duration("100ms") == 10**8
    assert lobfast.parse_duration("1.5s") == 1_500_000_000
    assert lobfast.parse_duration("5min") == 300 * 10**9
    assert lobfast.parse_duration(np.timedelta64(2, "ms")) == 2 * 10**6
    assert lobfast.parse_duration(__import__("datetime").timedelta(seconds=1)) == 10**9
    assert lobfast.parse_duration(250) == 250


def depth_of(rows) -> DepthEvents:
    ts, side, price, qty, uid, flags = zip(*rows)
    return DepthEvents(
        ts=list(ts),
        local_ts=list(ts),
        side=list(side),
        price=list(price),
        qty=list(qty),
        update_id=list(uid),
        flags=list(flags),
    )


# --------------------------------------------------------------------------- random streams

prices = st.integers(min_value=1, max_value=40)


@st.composite
def streams(draw):
    """Messages of random level changes on a small price grid: inserts, updates, deletes of
    unknown levels, crossing updates, snapshots mid-stream and gaps."""
    decimals = draw(st.integers(0, 3))
    rows, ts, uid = [], 0, 0
    for _ in range(draw(st.integers(1, 40))):
        ts += draw(st.integers(0, 3))
        uid += 1
        kind = draw(st.sampled_from(["diff"] * 6 + ["snapshot", "gap"]))
        if kind == "gap":
            rows.append((ts, 0, np.nan, np.nan, uid, GAP | EOM))
            continue
        n = draw(st.integers(1 if kind == "snapshot" else 0, 8))
        msg = []
        for _ in range(n):
            side = draw(st.sampled_from([1, -1]))
            tick = draw(prices)
            qty = 0.0 if kind == "diff" and draw(st.booleans()) else float(draw(st.integers(1, 5)))
            msg.append([ts, side, tick / 10**decimals, qty, uid, SNAP if kind == "snapshot" else 0])
        if not msg:
            continue
        if kind == "snapshot":
            msg = [r for r in msg if r[3] > 0] or [[ts, 1, 1 / 10**decimals, 1.0, uid, SNAP]]
            msg[0][5] |= RESET
        msg[-1][5] |= EOM
        rows.extend(tuple(r) for r in msg)
    if not rows:
        rows.append((0, 1, 1.0, 1.0, 0, RESET | SNAP | EOM))
    return rows


@given(
    streams(),
    st.sampled_from([1, 3]),
    st.sampled_from([None, 2]),
    st.sampled_from(["flag", "repair"]),
    st.booleans(),
)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_streams_equal_the_reference(rows, levels, every, crossed, prune):
    d = depth_of(rows)
    got = reconstruct(d, levels=levels, every=every, crossed=crossed, orphans="prune" if prune else "keep")
    want = _reference.reference_book(d.columns, levels, every, crossed, prune)
    assert_same(got, want, f"levels={levels} every={every} crossed={crossed} prune={prune}")


@pytest.mark.parametrize("seed", [0, 1])
def test_large_random_book_splits_and_merges_blocks(seed):
    """Thousands of levels per side, inserted and deleted all over the book: exercises the
    blocked sides (splits of full blocks, empty blocks removed) against the reference."""
    rng = np.random.default_rng(seed)
    n = 30_000
    side = rng.choice(np.array([1, -1], np.int8), n)
    tick = np.where(side > 0, rng.integers(1, 4000, n), rng.integers(4001, 8000, n))
    qty = np.where(rng.random(n) < 0.35, 0.0, rng.integers(1, 9, n).astype(float))
    flags = np.where(rng.random(n) < 0.2, EOM, 0).astype(np.uint8)
    flags[0] |= RESET | SNAP
    flags[-1] |= EOM
    d = DepthEvents(
        ts=np.arange(n) // 7,
        local_ts=np.arange(n),
        side=side,
        price=tick / 100,
        qty=qty,
        update_id=np.arange(n),
        flags=flags,
    )
    b = BookBuilder(25)
    got = b.feed(d)
    assert_same(got, _reference.reference_book(d.columns, 25), f"seed {seed}")
    bid_px, bid_sz, ask_px, ask_sz = b.book()
    assert b.stats["bid_levels"] == len(bid_px) > 1000 and np.all(np.diff(bid_px) < 0)
    assert np.all(np.diff(ask_px) > 0) and np.all(bid_sz > 0) and np.all(ask_sz > 0)


# --------------------------------------------------------------------------- review regressions


def test_rescaling_never_leaves_the_exact_tick_range():
    rows = [(1, -1, 20000000.0, 1.0, 1, RESET | SNAP), (1, 1, 1e-12, 1.0, 1, SNAP | EOM)]
    with pytest.raises(LobError, match="not on a decimal grid of at most 12 places .or is too large"):
        reconstruct(depth_of(rows))


def test_quote_check_ignores_missing_ids_and_uses_the_last_row_of_a_repeated_id():
    rows = [
        (10, 1, 100.0, 1.0, -1, RESET | SNAP),
        (10, -1, 101.0, 1.0, -1, SNAP | EOM),
        (20, 1, 100.5, 2.0, -1, EOM),
    ]
    q = lobfast.Quotes(
        ts=[20], local_ts=[20], update_id=[-1], bid_px=[100.5], bid_qty=[2.0], ask_px=[101.0], ask_qty=[1.0]
    )
    assert lobfast.check_against_quotes(depth_of(rows), q).compared == 0
    rows = [
        (1, 1, 100.0, 1.0, 5, RESET | SNAP),
        (1, -1, 101.0, 1.0, 5, SNAP | EOM),
        (2, -1, 101.0, 0.0, 7, EOM),
        (3, 0, np.nan, np.nan, 8, GAP | EOM),
        (4, 1, 99.0, 3.0, 7, RESET | SNAP),
        (4, -1, 102.0, 3.0, 7, SNAP | EOM),  # a resync that repeats id 7
    ]
    q = lobfast.Quotes(ts=[4], local_ts=[4], update_id=[7], bid_px=[99.0], bid_qty=[3.0], ask_px=[102.0], ask_qty=[3.0])
    check = lobfast.check_against_quotes(depth_of(rows), q)
    assert (check.compared, check.matched) == (1, 1)


def test_quality_report_with_a_receive_clock_ahead_of_the_exchange():
    d = DepthEvents(
        ts=[100 * 10**9] * 2,
        local_ts=[102 * 10**9] * 2,
        side=[1, -1],
        price=[1.0, 2.0],
        qty=[1.0, 1.0],
        update_id=[1, 1],
        flags=[RESET | SNAP, SNAP | EOM],
    )
    r = lobfast.quality_report(lobfast.MarketData(depth=d))
    assert r.counts["resets"] == 0 and r.latency_ms["depth"]["p50"] == pytest.approx(2000.0)


TS_MAX = 9_214_646_400_000_000_000  # 2262-01-01, the last time the core accepts


def test_grid_arithmetic_at_the_ends_of_int64():
    rows = [(5, 1, 1.0, 1.0, 1, RESET | SNAP | EOM)]
    s = reconstruct(depth_of(rows), levels=1, every=2**62)
    assert len(s) == 0  # the first grid time (2^62) is after the data
    rows = [(2**62 + 1, 1, 1.0, 1.0, 1, RESET | SNAP | EOM), (TS_MAX, 1, 1.0, 2.0, 2, EOM)]
    s = reconstruct(depth_of(rows), levels=1, every=2**62)
    assert s.ts.tolist() == []  # the first grid time would be 2 * 2^62: past the end of int64
    rows = [(2**62, 1, 1.0, 1.0, 1, RESET | SNAP), (2**62, -1, 2.0, 1.0, 1, SNAP | EOM), (TS_MAX, 1, 1.0, 2.0, 2, EOM)]
    s = reconstruct(depth_of(rows), levels=1, every=2**62)
    assert s.ts.tolist() == [2**62]  # the next grid time, 2 * 2^62, is past the end of int64
    with pytest.raises(ValueError, match="longer than 2\\^62 ns"):
        BookBuilder(every=2**63)


def test_finish_after_a_failed_feed_is_refused():
    b = BookBuilder(1, every=10)
    b.feed(depth_of([(0, 1, 1.0, 1.0, 1, RESET | SNAP | EOM)]))
    with pytest.raises(LobError, match="not on a decimal grid"):
        b.feed(depth_of([(25, 1, 2.0, 1.0, 2, 0), (25, 1, 0.1 + 0.2, 1.0, 2, EOM)]))
    with pytest.raises(LobError, match="stopped at an error in an earlier batch"):
        b.finish()


def test_a_message_spanning_a_grid_time_takes_effect_at_its_end():
    rows = [
        (0, 1, 100.0, 1.0, 1, RESET | SNAP),
        (0, -1, 101.0, 1.0, 1, SNAP | EOM),
        (5, 1, 100.5, 1.0, 2, 0),
        (15, 1, 100.7, 1.0, 2, EOM),  # one message, rows at 5 and 15
    ]
    s = reconstruct(depth_of(rows), levels=1, every=10)
    assert s.ts.tolist() == [0, 10] and s.bid_px[:, 0].tolist() == [100.0, 100.0]
    assert_same(s, _reference.reference_book(depth_of(rows).columns, 1, 10))


# --------------------------------------------------------------------------- times, grids, Ctrl-C

NAT = int(np.iinfo(np.int64).min)
T0 = 10**18
BOOK = [(T0, 1, 100.0, 1.0, 1, RESET | SNAP), (T0, -1, 101.0, 1.0, 1, SNAP | EOM)]


@pytest.mark.parametrize("every", [None, "1s"])
@pytest.mark.parametrize(
    "rows, message",
    [
        ([(NAT, 1, 100.0, 1.0, 1, RESET | SNAP | EOM), *BOOK], r"row 0: ts is NaT \(a missing time\)"),
        ([(-1, 1, 100.0, 1.0, 1, RESET | SNAP | EOM), *BOOK], r"row 0: ts -1 ns is outside 1970-01-01..2262-01-01"),
        ([*BOOK, (TS_MAX + 1, 1, 100.0, 2.0, 2, EOM)], r"row 2: ts 9214646400000000001 ns is outside 1970"),
        ([*BOOK, (2**63 - 1, 1, 100.0, 2.0, 2, EOM)], r"row 2: ts 9223372036854775807 ns is outside 1970"),
    ],
)
def test_times_outside_1970_to_2262_are_refused_naming_the_row(rows, message, every):
    with pytest.raises(LobError, match=message):
        reconstruct(depth_of(rows), every=every)


def test_a_bad_time_in_a_later_chunk_names_the_row_and_changes_nothing():
    b = BookBuilder(1, every="1s")
    b.feed(depth_of(BOOK))
    with pytest.raises(ValueError, match=r"row 3: ts is NaT"):
        b.feed(depth_of([(T0 + 10**9, 1, 100.0, 2.0, 2, 0), (NAT, 1, 100.0, 3.0, 2, EOM)]))
    later = [(T0 + 2 * 10**9, 1, 100.0, 2.0, 2, EOM)]
    got = _concat_rows([b.feed(depth_of(later)), b.finish()])
    want = reconstruct(depth_of(BOOK + later), levels=1, every="1s")
    assert_same(got, want.columns)


@pytest.mark.parametrize("t", [NAT, "NaT", np.datetime64("NaT"), -1, "1600-01-01", "2262-01-02", TS_MAX + 1])
def test_book_at_refuses_times_outside_1970_to_2262(usdm, t):
    with pytest.raises(ValueError, match=r"t=.* (is NaT|is outside 1970-01-01..2262-01-01)"):
        lobfast.book_at(usdm, t)


def test_a_grid_too_fine_for_its_span_is_refused_before_anything_is_allocated(usdm):
    with pytest.raises(
        ValueError,
        match=r"a grid every 1 ns from \d+ to \d+ ns would have 344\d{9} rows in this batch, "
        r"more than the limit of 2147483648: use a coarser every, or feed shorter chunks",
    ):
        reconstruct(usdm.depth, every=1)
    b = BookBuilder(1, every=1)
    b.feed(depth_of(BOOK))
    with pytest.raises(ValueError, match=r"would have 3000000001 rows"):
        b.feed(depth_of([(T0 + 3 * 10**9, 1, 100.0, 2.0, 2, EOM)]))
    rows = b.feed(depth_of([(T0 + 1000, 1, 100.0, 2.0, 2, EOM)]))  # the refused chunk changed nothing
    assert rows.ts.tolist() == list(range(T0, T0 + 1000)) and rows.valid.all()
    b = BookBuilder(1, every=1)
    b.feed(depth_of(BOOK[:1]))  # a message that goes on in the next chunk: held back
    with pytest.raises(ValueError, match=r"from 1000000000000000000 to 1000000003000000000 ns would have"):
        b.feed(depth_of([(T0 + 3 * 10**9, -1, 101.0, 1.0, 1, SNAP | EOM)]))


def deep_stream(n: int, levels: int = 100_000) -> DepthEvents:
    """n rows that insert, then delete, `levels` price levels in a random order (a deep book
    kept busy: each row costs a lookup and a shift), 1000 rows per message."""
    tick = np.random.default_rng(0).permutation(np.arange(1, levels + 1))
    reps = -(-n // (2 * levels))
    flags = np.zeros(n, np.uint8)
    flags[999::1000] = EOM
    flags[0] |= RESET | SNAP
    flags[-1] |= EOM
    return DepthEvents(
        ts=np.arange(T0, T0 + n),
        local_ts=np.arange(T0, T0 + n),
        side=np.tile(np.where(tick > levels // 2, -1, 1).astype(np.int8), 2 * reps)[:n],
        price=np.tile(tick / 100, 2 * reps)[:n],
        qty=np.tile(np.repeat([1.0, 0.0], levels), reps)[:n],
        update_id=np.arange(n),
        flags=flags,
    )


def test_ctrl_c_stops_a_long_feed():
    d = deep_stream(3_000_000)
    t0 = time.perf_counter()
    BookBuilder(1).feed(d)
    full = time.perf_counter() - t0
    b = BookBuilder(1)
    timer = threading.Timer(full / 5, lambda: os.kill(os.getpid(), signal.SIGINT))
    t0 = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            b.feed(d)
            time.sleep(full)  # not reached: the signal came during feed
    finally:
        timer.cancel()
    assert time.perf_counter() - t0 < full / 2, f"stopped after {time.perf_counter() - t0:.2f} s of {full:.2f} s"
    with pytest.raises(LobError, match="stopped at an error in an earlier batch"):
        b.feed(d[:10])


# --------------------------------------------------------------------------- what a valid row is


def test_a_snapshot_alone_or_cut_mid_message_is_not_a_valid_book(usdm):
    first_end = int(np.flatnonzero(usdm.depth.flags & EOM)[0])
    assert first_end > 10  # the snapshot is one message of many rows
    for k in (1, first_end // 2, first_end):  # cut inside the snapshot
        s = reconstruct(usdm.depth[:k], every="1ms")
        assert len(s) >= 1 and not s.valid.any(), k
        assert len(reconstruct(usdm.depth[:k])) == 0  # no message ended: no row per message
    s = reconstruct(usdm.depth[: first_end + 1], every="1ms")
    assert s.valid.tolist() == [True]


def test_a_one_sided_book_is_not_valid():
    rows = [
        (1, 1, 100.0, 1.0, 1, RESET | SNAP | EOM),  # a snapshot with bids only
        (2, -1, 101.0, 1.0, 2, EOM),
        (3, -1, 101.0, 0.0, 3, EOM),  # the last ask goes
        (4, -1, 102.0, 1.0, 4, EOM),
    ]
    d = depth_of(rows)
    assert reconstruct(d, levels=1).valid.tolist() == [False, True, False, True]
    grid = reconstruct(d, levels=1, every=1)
    assert grid.ts.tolist() == [1, 2, 3, 4] and grid.valid.tolist() == [False, True, False, True]
    assert [bool(lobfast.book_at(d, t, levels=1).valid[0]) for t in (1, 2, 3, 4)] == [False, True, False, True]
    assert_same(grid, _reference.reference_book(d.columns, 1, 1))


def test_grid_rows_between_the_last_message_and_a_gap_are_not_valid():
    rows = [
        (0, 1, 100.0, 1.0, 1, RESET | SNAP),
        (0, -1, 101.0, 1.0, 1, SNAP | EOM),
        (12, 1, 100.5, 1.0, 2, EOM),
        (45, 0, np.nan, np.nan, 4, GAP | EOM),  # update 3 was lost, somewhere in (12, 45]
    ]
    d = depth_of(rows)
    s = reconstruct(d, levels=1, every=10)
    assert s.ts.tolist() == [0, 10, 20, 30, 40] and s.valid.tolist() == [True, True, False, False, False]
    assert_same(s, _reference.reference_book(d.columns, 1, 10))
    for cuts in ([0, 3, 4], [0, 2, 3, 4], [0, 1, 2, 3, 4]):  # the gap only shows in the last chunk
        b = BookBuilder(1, every=10)
        parts = [b.feed(d[a:z]) for a, z in zip(cuts[:-1], cuts[1:])] + [b.finish()]
        assert_same(_concat_rows(parts), s.columns, f"cuts {cuts}")
    for t, valid in ((10, True), (12, True), (13, False), (44, False), (45, False)):
        assert bool(lobfast.book_at(d, t, levels=1).valid[0]) == valid, t


LOST_UID = 5123116293232  # one diff of the USD-M recording


@pytest.fixture(scope="module")
def usdm_lost(tmp_path_factory):
    """The USD-M recording without the diff LOST_UID (its raw line removed)."""
    lines = gzip.open(USDM_BTC_0808, "rb").read().split(b"\n")
    keep = [line for line in lines if f'"u":{LOST_UID},'.encode() not in line]
    assert len(keep) == len(lines) - 1
    path = tmp_path_factory.mktemp("lost") / "usdm_lost.txt"
    path.write_bytes(b"\n".join(keep))
    return lobfast.read_binance(path).depth


@pytest.mark.parametrize("every, wrong", [(10**8, 1), (10**6, 53)])
def test_no_valid_row_misses_a_lost_diff(usdm, usdm_lost, every, wrong):
    gaps = np.flatnonzero(usdm_lost.flags & GAP)
    assert len(gaps) == 1
    ends = np.flatnonzero(usdm_lost.flags[: gaps[0]] & EOM)
    last_ok = int(usdm_lost.ts[ends[-1]])  # the last message before the break
    full = reconstruct(usdm.depth, levels=10, every=every)
    lost = reconstruct(usdm_lost, levels=10, every=every)
    full = full[: len(lost)]
    np.testing.assert_array_equal(full.ts, lost.ts)
    differs = np.zeros(len(lost), bool)
    for k in ("bid_px", "bid_sz", "ask_px", "ask_sz"):
        differs |= np.any(full.columns[k] != lost.columns[k], axis=1)
    assert np.count_nonzero(differs & (lost.ts < usdm_lost.ts[gaps[0]])) == wrong  # rows missing the update
    assert not np.any(differs & lost.valid)
    # exactly the rows after the last message before the break are invalid
    np.testing.assert_array_equal(lost.valid, lost.ts <= last_ok)
    assert full.valid.all()
    # book_at agrees, row for row, around the break
    first_bad = int(np.argmax(~lost.valid))
    for i in range(max(first_bad - 3, 0), len(lost), max(1, (len(lost) - first_bad) // 20)):
        at = lobfast.book_at(usdm_lost, int(lost.ts[i]), levels=10)
        assert bool(at.valid[0]) == bool(lost.valid[i]), i
        np.testing.assert_array_equal(at.bid_px[0], lost.bid_px[i])
        np.testing.assert_array_equal(at.ask_sz[0], lost.ask_sz[i])
    # chunks cut anywhere around the break give the same rows
    g = int(gaps[0])
    for cuts in ([0, g, g + 1], [0, 1, 5000, g - 3, g, g + 1], [0, int(ends[-1]), int(ends[-1]) + 1, g + 1]):
        b = BookBuilder(10, every=every)
        parts = [b.feed(usdm_lost[a:z]) for a, z in zip(cuts[:-1], cuts[1:])] + [b.finish()]
        assert_same(_concat_rows(parts), lost.columns, f"cuts {cuts}")


@given(streams(), st.sampled_from([None, 2]), st.lists(st.integers(0, 400), max_size=4))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_streams_in_chunks_equal_the_reference(rows, every, cuts):
    d = depth_of(rows)
    cuts = sorted({0, len(d), *(c % (len(d) + 1) for c in cuts)})
    b = BookBuilder(2, every=every)
    parts = [b.feed(d[a:z]) for a, z in zip(cuts[:-1], cuts[1:])] + [b.finish()]
    assert_same(_concat_rows(parts), _reference.reference_book(d.columns, 2, every), f"cuts {cuts}")


def _concat_rows(parts: list[lobfast.BookSnapshots]) -> lobfast.BookSnapshots:
    return lobfast.BookSnapshots(**{k: np.concatenate([p.columns[k] for p in parts]) for k in parts[0].columns})


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    "value, message",
    [
        ("1" + "0" * 400 + "s", r"every='10+s' is longer than 2\^62 ns"),
        ("1e400s", r"every='1e400s' is not a duration"),
        ("0s", "every must be a positive duration, not '0s'"),
        ("-1s", r"every='-1s' is not a duration"),
        ("0.5ns", r"every='0.5ns' is not a whole number of nanoseconds"),
        (np.timedelta64("NaT"), r"every=.*NaT.* is NaT"),
        (np.timedelta64(1, "Y"), "has no fixed length in ns"),
        (np.timedelta64(1500, "ps"), "not a whole number of nanoseconds"),
        (np.timedelta64(2**62, "s"), r"longer than 2\^62 ns"),
        (np.timedelta64(-1, "s"), "positive duration"),
        (datetime.timedelta(days=10**8), r"longer than 2\^62 ns"),
        (2**63, r"longer than 2\^62 ns"),
        (np.uint64(2**64 - 1), r"longer than 2\^62 ns"),
        (float("inf"), "every must be a duration .* not float"),
        (float("nan"), "every must be a duration .* not float"),
        (1.5, "every must be a duration .* not float"),
    ],
)
def test_bad_durations_are_value_errors_naming_the_text(value, message):
    with pytest.raises(ValueError, match=message):
        lobfast.parse_duration(value)
    with pytest.raises(ValueError, match=message):
        BookBuilder(every=value)


def test_durations_are_exact():
    assert lobfast.parse_duration("123456789.123456789s") == 123456789123456789  # float would round
    assert lobfast.parse_duration("0.3s") == 3 * 10**8
    assert lobfast.parse_duration(".5us") == 500
    assert lobfast.parse_duration(np.timedelta64(2000, "ps")) == 2
    assert lobfast.parse_duration(np.timedelta64(3, "W")) == 3 * 7 * 86400 * 10**9
    assert lobfast.parse_duration(datetime.timedelta(microseconds=-1) * -5) == 5000
    assert lobfast.parse_duration(2**62) == 2**62


def test_horizons():
    parse_horizon = lobfast.times.parse_horizon
    assert parse_horizon(7) == (7, 0) and parse_horizon(np.int64(0), allow_zero=True) == (0, 0)
    assert parse_horizon("5ms") == (0, 5 * 10**6) and parse_horizon(np.timedelta64(5, "ms")) == (0, 5 * 10**6)
    for value, message in [
        (2**70, r"horizon=1180591620717411303424 rows is more than 2\^62"),
        (0, "positive number of rows"),
        (-1, "positive number of rows"),
        (1.5, "horizon must be a number of rows .int. or a duration .str, timedelta., not float"),
        (float("nan"), "number of rows .int. or a duration"),
        ("1" + "0" * 400 + "ms", r"longer than 2\^62 ns"),
        ("0.5ns", "not a whole number of nanoseconds"),
        (np.timedelta64("NaT"), "is NaT"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_horizon(value)
