"""A book side (csrc/core/book/side.c: a tick-indexed window near the best, sorted blocks for
the rest) against a plain dict, through BookBuilder: levels near and far from the best, a best
that jumps by more than the window, many updates on the same few ticks, deletes of levels that
are not there, RESETs and a grid that gains decimals on the way."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lobfast import BookBuilder, DepthEvents, Flags

SNAP, RESET, EOM = (int(f) for f in (Flags.SNAPSHOT, Flags.RESET, Flags.END_OF_MESSAGE))
WINDOW = 1 << 15  # side.h: LOB_SIDE_WINDOW ticks
LEVELS = 4

# how far from the current centre a level lands, in ticks: on a few ticks (collisions), near,
# just outside the window, far outside it
offsets = st.one_of(
    st.integers(-3, 3),
    st.integers(-200, 200),
    st.integers(-(WINDOW + 3000), WINDOW + 3000),
    st.integers(-20 * WINDOW, 20 * WINDOW),
)


@st.composite
def ops(draw):
    """Messages of (kind, side, tick offset, qty, decimals); the centre moves between them."""
    out = []
    for _ in range(draw(st.integers(1, 60))):
        kind = draw(st.sampled_from(["level"] * 8 + ["move", "reset"]))
        if kind == "move":
            out.append(("move", 0, draw(st.integers(-3 * WINDOW, 3 * WINDOW)), 0.0, 1))
        elif kind == "reset":
            out.append(("reset", 0, 0, 0.0, 1))
        else:
            n = draw(st.integers(1, 6))
            for k in range(n):
                side = draw(st.sampled_from([1, -1]))
                qty = 0.0 if draw(st.integers(0, 2)) == 0 else float(draw(st.integers(1, 9)))
                decimals = 2 if draw(st.integers(0, 30)) == 0 else 1  # a rare finer price
                out.append(("level" if k + 1 < n else "last", side, draw(offsets), qty, decimals))
    return out


def rows_of(ops_: list, start: int) -> list[tuple]:
    rows, centre, ts = [], start, 0
    for kind, side, off, qty, decimals in ops_:
        ts += 1
        if kind == "move":
            centre = max(100 * WINDOW, centre + off)
        elif kind == "reset":
            rows.append((ts, 1, centre / 10, 1.0, RESET | SNAP))
            rows.append((ts, -1, (centre + 1) / 10, 1.0, SNAP | EOM))
        else:
            tick = centre + off
            price = tick / 10 if decimals == 1 else (10 * tick + 5) / 100
            rows.append((ts, side, price, qty, EOM if kind == "last" else 0))
    return rows


def depth_of(rows: list[tuple]) -> DepthEvents:
    n = len(rows)
    ts, side, price, qty, flags = (list(c) for c in zip(*rows)) if rows else ([], [], [], [], [])
    ts = np.array(ts, np.int64) + 1_700_000_000_000_000_000
    return DepthEvents(
        ts=ts,
        local_ts=ts,
        side=np.array(side, np.int8),
        price=np.array(price, np.float64),
        qty=np.array(qty, np.float64),
        update_id=np.arange(n, dtype=np.int64),
        flags=np.array(flags, np.uint8),
    )


def reference(rows: list[tuple]):
    """Per message the top LEVELS of each side, and the whole book at the end."""
    book = {1: {}, -1: {}}
    tops = []

    def top(side):
        keys = sorted(book[side], reverse=side > 0)[:LEVELS]
        px = np.full(LEVELS, np.nan)
        sz = np.zeros(LEVELS)
        px[: len(keys)] = keys
        sz[: len(keys)] = [book[side][k] for k in keys]
        return px, sz

    for _, side, price, qty, flags in rows:
        if flags & RESET:
            book = {1: {}, -1: {}}
        if qty > 0:
            book[side][price] = qty
        else:
            book[side].pop(price, None)
        if flags & EOM:
            tops.append(top(1) + top(-1))
    whole = []
    for side in (1, -1):
        keys = sorted(book[side], reverse=side > 0)
        whole += [np.array(keys, np.float64), np.array([book[side][k] for k in keys], np.float64)]
    return tops, whole


@given(ops(), st.integers(0, 2), st.integers(1, 3))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_sides_equal_a_dict(ops_, start, chunks):
    # a first RESET so that every row lands on a known book; the centre starts high enough
    # that no price reaches 0
    start_tick = (100 + start) * WINDOW
    rows = rows_of([("reset", 0, 0, 0.0, 1)] + ops_, start_tick)
    tops, whole = reference(rows)
    d = depth_of(rows)
    builder = BookBuilder(LEVELS)
    cuts = np.linspace(0, len(d), chunks + 1).astype(int)
    parts = [builder.feed(d[a:b]) for a, b in zip(cuts[:-1], cuts[1:])] + [builder.finish()]
    got = {k: np.concatenate([getattr(p, k) for p in parts]) for k in ("bid_px", "bid_sz", "ask_px", "ask_sz")}
    assert len(got["bid_px"]) == len(tops)
    for k, name in enumerate(("bid_px", "bid_sz", "ask_px", "ask_sz")):
        want = np.array([t[k] for t in tops])
        np.testing.assert_array_equal(got[name], want, err_msg=f"{name} per message")
    for k, (g, w) in enumerate(zip(builder.book(), whole)):
        np.testing.assert_array_equal(g, w, err_msg=f"whole book, array {k}")
    stats = builder.stats
    assert stats["bid_levels"] == len(whole[0]) and stats["ask_levels"] == len(whole[2])


def test_a_best_far_above_the_window_and_back():
    """A stray bid far above the window (the window stays), then the best trending up and
    down across several windows one level at a time (the window follows): every top equals
    the dict's."""
    base = 200 * WINDOW
    ops_ = [("level", 1, -k * 7, 1.0, 1) for k in range(300)]
    # dense bands of levels across where window edges fall as the window moves
    for edge in (-WINDOW, -3 * WINDOW // 4, -WINDOW // 2, WINDOW // 4, WINDOW, 2 * WINDOW):
        ops_ += [("level", 1, edge + k, 5.0, 1) for k in range(-40, 40)]
    ops_ += [("last", 1, 5 * WINDOW, 2.0, 1), ("last", 1, 5 * WINDOW, 0.0, 1)]
    for step in list(range(0, 4 * WINDOW, 997)) + list(range(4 * WINDOW, -4 * WINDOW, -1499)):
        ops_ += [("last", 1, step, 3.0, 1), ("last", -1, step + 1 + WINDOW // 2, 4.0, 1)]
        ops_ += [("last", 1, step - 2 * WINDOW, 0.0, 1)]  # deletes deep below, mostly absent
    rows = rows_of([("reset", 0, 0, 0.0, 1)] + ops_, base)
    tops, whole = reference(rows)
    builder = BookBuilder(LEVELS)
    got = builder.feed(depth_of(rows))
    for k, name in enumerate(("bid_px", "bid_sz", "ask_px", "ask_sz")):
        np.testing.assert_array_equal(getattr(got, name), np.array([t[k] for t in tops]), err_msg=name)
    for g, w in zip(builder.book(), whole):
        np.testing.assert_array_equal(g, w)


def test_window_moves_over_levels_on_every_tick():
    """Levels on every tick across several windows: the best climbs through them one insert
    at a time (the window moves up, its bottom levels go to the sorted blocks), then falls
    through them as the levels above it are deleted (the window moves down, the levels it
    now covers come in from the blocks); asks mirror it.  Every message's top and the whole
    book equal the dict's, also after every level left is updated once more (a level held
    twice, or in the wrong part, would show there)."""
    c = 300 * WINDOW
    span = 3 * WINDOW
    rows = [(0, 1, c / 10, 1.0, RESET | SNAP), (0, -1, (c + 1) / 10, 1.0, SNAP | EOM)]

    def message(levels):  # (side, tick, qty) rows as one message
        ts = rows[-1][0] + 1
        for k, (side, tick, qty) in enumerate(levels):
            rows.append((ts, side, tick / 10, qty, EOM if k + 1 == len(levels) else 0))

    chunk = WINDOW // 8 + 7
    for lo in range(c - span, c + span, chunk):  # climbing: bids below, asks above, every tick
        ticks = range(lo, min(lo + chunk, c + span))  # up to c + span - 1: the best then
        message([(1, t, 2.0) for t in ticks])
        message([(-1, 2 * c - t + 1, 2.0) for t in ticks])
    for hi in range(c + span, c - span // 2, -chunk):  # falling: the levels above the best go
        far = [(1, c - 10 * span, 0.0), (-1, c + 10 * span, 0.0)]  # absent: updates outside
        message([(1, t, 0.0) for t in range(hi - chunk, hi)] + far)
        message([(-1, 2 * c - t + 1, 0.0) for t in range(hi - chunk, hi)] + far)
    tops, whole = reference(rows)
    builder = BookBuilder(LEVELS)
    got = builder.feed(depth_of(rows))
    for k, name in enumerate(("bid_px", "bid_sz", "ask_px", "ask_sz")):
        np.testing.assert_array_equal(getattr(got, name), np.array([t[k] for t in tops]), err_msg=name)
    for g, w in zip(builder.book(), whole):
        np.testing.assert_array_equal(g, w)
    bids, _, asks, _ = builder.book()
    assert len(bids) > WINDOW and len(asks) > WINDOW
    ts = rows[-1][0] + 1
    again = [(ts, 1, p, 3.0, 0) for p in bids] + [(ts, -1, p, 3.0, 0) for p in asks]
    again[-1] = again[-1][:4] + (EOM,)
    builder.feed(depth_of(again))
    bid_px, bid_sz, ask_px, ask_sz = builder.book()
    np.testing.assert_array_equal(bid_px, bids)
    np.testing.assert_array_equal(ask_px, asks)
    assert (bid_sz == 3.0).all() and (ask_sz == 3.0).all()
