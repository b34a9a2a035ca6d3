"""The C order book against the plain-Python reference book, the exchange's own quotes, and
bad input."""

from __future__ import annotations

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


def test_grid_arithmetic_at_the_ends_of_int64():
    rows = [(5, 1, 1.0, 1.0, 1, RESET | SNAP | EOM)]
    s = reconstruct(depth_of(rows), levels=1, every=2**62)
    assert len(s) == 0  # the first grid time (2^62) is after the data
    rows = [(2**62 + 1, 1, 1.0, 1.0, 1, RESET | SNAP | EOM), (2**63 - 10, 1, 1.0, 2.0, 2, EOM)]
    s = reconstruct(depth_of(rows), levels=1, every=2**62)
    assert s.ts.tolist() == []  # the first grid time would be 2 * 2^62: past the end of int64
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
