"""lobfast.aggregate (csrc/core/kernels/aggregate.c) against a NumPy/pandas reference, on the real
recording and on random inputs, plus the rules spelled out by hand and every bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import USDM_BTC_0808, interrupted, timed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lobfast
from lobfast import BookSnapshots, Quotes, Trades, _core

COLUMNS = [
    "mid_open",
    "mid_high",
    "mid_low",
    "mid_close",
    "vwap",
    "volume",
    "buy_volume",
    "sell_volume",
    "trades",
    "updates",
]
MIDS = COLUMNS[:4]
SEC = 10**9


# ------------------------------------------------------------------------------ reference
def mids_of(src) -> np.ndarray:
    """The mid of every book row, NaN where the row is a gap (not valid, or a side empty)."""
    if isinstance(src, Quotes):
        return (src.bid_px + src.ask_px) / 2
    mid = (src.bid_px[:, 0] + src.ask_px[:, 0]) / 2
    return np.where(src.valid, mid, np.nan)


def bucket_ids(book_ts, trade_ts, qty, by, every):
    """(bucket of each book row, bucket of each trade, bucket start times); -1 = no bucket."""
    if by == "time":
        all_ts = np.concatenate([book_ts, trade_ts])
        if len(all_ts) == 0:
            return book_ts.copy(), trade_ts.copy(), np.empty(0, np.int64)
        first, last = all_ts.min() // every, all_ts.max() // every
        starts = np.arange(first, last + 1, dtype=np.int64) * every
        return book_ts // every - first, trade_ts // every - first, starts
    if by == "events":
        starts = book_ts[::every]
        return np.arange(len(book_ts)) // every, np.searchsorted(starts, trade_ts, "right") - 1, starts
    # volume: a running sum per bucket, the trade that reaches `every` closes it
    tid, k, acc = [], 0, 0.0
    for q in qty:
        tid.append(k)
        acc += q
        if acc >= every:
            k, acc = k + 1, 0.0
    tid = np.array(tid, np.int64)
    first_trade = np.flatnonzero(np.diff(tid, prepend=-1))
    starts = trade_ts[first_trade]
    return np.searchsorted(starts, book_ts, "right") - 1, tid, starts


def reference(src, trades, by, every, empty_vwap="nan") -> dict[str, np.ndarray]:
    book_ts, mid = src.ts, mids_of(src)
    if trades is None:
        trades = Trades.empty()
    if by == "time":
        every = lobfast.parse_duration(every)
    bk, tk, starts = bucket_ids(book_ts, trades.ts, trades.qty, by, every)
    n = len(starts)
    idx = pd.RangeIndex(n)
    b = pd.DataFrame({"k": bk, "mid": mid})
    b = b[b.k >= 0]
    g = b.groupby("k")["mid"]  # first / last / max / min skip NaN: the rows with a mid
    out = {
        "mid_open": g.first().reindex(idx).to_numpy(np.float64, copy=True),
        "mid_high": g.max().reindex(idx).to_numpy(np.float64, copy=True),
        "mid_low": g.min().reindex(idx).to_numpy(np.float64, copy=True),
        "mid_close": g.last().reindex(idx).to_numpy(np.float64, copy=True),
    }
    # buckets without a mid of their own: the mid of the last book row at or before them
    last_row = np.searchsorted(bk, np.arange(n), "right") - 1
    carry = np.where(last_row >= 0, mid[np.maximum(last_row, 0)] if len(mid) else np.nan, np.nan)
    none = np.isnan(out["mid_open"])
    for c in MIDS:
        out[c][none] = carry[none]
    t = pd.DataFrame(
        {
            "k": tk,
            "volume": trades.qty,
            "pq": trades.price * trades.qty,
            "buy_volume": np.where(trades.side > 0, trades.qty, 0.0),
            "sell_volume": np.where(trades.side < 0, trades.qty, 0.0),
        }
    )
    t = t[t.k >= 0]
    sums = t.groupby("k").sum().reindex(idx, fill_value=0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        vwap = (sums["pq"] / sums["volume"]).to_numpy(np.float64, copy=True)
    no_volume = sums["volume"].to_numpy() == 0
    vwap[no_volume] = out["mid_close"][no_volume] if empty_vwap == "mid" else np.nan
    out["vwap"] = vwap
    for c in ("volume", "buy_volume", "sell_volume"):
        out[c] = sums[c].to_numpy(np.float64)
    out["trades"] = t.groupby("k").size().reindex(idx, fill_value=0).to_numpy(np.int64)
    out["updates"] = b.groupby("k").size().reindex(idx, fill_value=0).to_numpy(np.int64)
    return {"ts": np.asarray(starts, np.int64), **out}


def assert_same(got: lobfast.Frame, want: dict, what: str) -> None:
    assert list(got.keys()) == COLUMNS, what
    assert len(got) == len(want["ts"]), f"{what}: {len(got)} buckets, reference {len(want['ts'])}"
    np.testing.assert_array_equal(got.ts, want["ts"], err_msg=f"{what}: ts")
    for c in COLUMNS:
        g, w = got[c], want[c]
        if c in ("trades", "updates"):
            assert g.dtype == np.int64, f"{what}: {c} dtype {g.dtype}"
            np.testing.assert_array_equal(g, w, err_msg=f"{what}: {c}")
        else:
            assert g.dtype == np.float64, f"{what}: {c} dtype {g.dtype}"
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=0, equal_nan=True, err_msg=f"{what}: {c}")


# ------------------------------------------------------------------------------ real data
@pytest.fixture(scope="module")
def usdm():
    md = lobfast.read_binance(USDM_BTC_0808)
    book = lobfast.reconstruct(md.depth, levels=10)
    # the same book with gaps: every 37th row not valid, a stretch of 200 rows not valid
    valid = book.valid.copy()
    valid[::37] = False
    valid[3000:3200] = False
    gappy = BookSnapshots(**{**book.columns, "valid": valid})
    # the gappy book 12 times over, each copy later by its span: enough rows for event bars
    # on several threads
    c, k = gappy.columns, 12
    step = int(c["ts"][-1] - c["ts"][0]) + SEC
    later = np.repeat(np.arange(k, dtype=np.int64) * step, len(gappy))
    tiled = BookSnapshots(
        ts=np.tile(c["ts"], k) + later, update_id=np.tile(c["update_id"], k) + later, valid=np.tile(c["valid"], k),
        **{name: np.tile(c[name], (k, 1)) for name in ("bid_px", "bid_sz", "ask_px", "ask_sz")},
    )  # fmt: skip
    return {"book": book, "gappy": gappy, "quotes": md.quotes, "trades": md.trades, "tiled": tiled}


CASES = [
    ("time", "100ms"),
    ("time", "500ms"),
    ("time", "1s"),
    ("time", 7 * SEC + 3),
    ("time", "1min"),
    ("events", 1),
    ("events", 7),
    ("events", 100),
    ("events", 100_000),
    ("volume", 0.001),
    ("volume", 1.0),
    ("volume", 25.0),
    ("volume", 1e9),
]


@pytest.mark.parametrize("source", ["book", "gappy", "quotes"])
@pytest.mark.parametrize(("by", "every"), CASES)
def test_real_data_equals_the_reference(usdm, source, by, every):
    src, trades = usdm[source], usdm["trades"]
    got = lobfast.aggregate(src, trades, by=by, every=every)
    assert_same(got, reference(src, trades, by, every), f"{source} by={by} every={every}")
    if by != "volume":
        assert got["updates"].sum() == len(src)


def test_real_data_covers_every_row_and_trade(usdm):
    q, tr = usdm["quotes"], usdm["trades"]
    bars = lobfast.aggregate(q, tr, every="250ms")
    assert bars["updates"].sum() == len(q) and bars["trades"].sum() == len(tr)
    np.testing.assert_allclose(bars["volume"].sum(), tr.qty.sum(), rtol=1e-9)
    assert np.all(np.diff(bars.ts) == 250 * 10**6)
    assert bars.ts[0] == min(q.ts[0], tr.ts[0]) // (250 * 10**6) * (250 * 10**6)
    assert not np.isnan(bars["mid_close"][bars.ts >= q.ts[0]]).any()


def test_real_data_empty_vwap_mid_and_no_trades(usdm):
    book = usdm["gappy"]
    got = lobfast.aggregate(book, usdm["trades"], every="100ms", empty_vwap="mid")
    assert_same(got, reference(book, usdm["trades"], "time", "100ms", "mid"), "empty_vwap=mid")
    alone = lobfast.aggregate(book, every="1s")
    assert_same(alone, reference(book, None, "time", "1s"), "no trades")
    assert (alone["trades"] == 0).all() and np.isnan(alone["vwap"]).all()


def test_inputs_are_never_modified(usdm):
    book, quotes, trades = usdm["gappy"], usdm["quotes"], usdm["trades"]
    before = [{k: v.copy() for k, v in c.columns.items()} for c in (book, quotes, trades)]
    for src in (book, quotes):
        for by, every in (("time", "1s"), ("events", 10), ("volume", 2.0)):
            lobfast.aggregate(src, trades, by=by, every=every, empty_vwap="mid")
    for c, old in zip((book, quotes, trades), before):
        for k, v in c.columns.items():
            np.testing.assert_array_equal(v, old[k], err_msg=k)


def test_reads_inputs_in_place_when_they_fit(usdm):
    """Read-only arrays of the right dtype are accepted (lobpy_in_converted never writes or needs to)."""
    book, trades = usdm["book"], usdm["trades"]
    cols = {k: v.copy() for k, v in book.columns.items()}
    tcols = {k: v.copy() for k, v in trades.columns.items()}
    for a in (*cols.values(), *tcols.values()):
        a.setflags(write=False)
    got = lobfast.aggregate(BookSnapshots(**cols), Trades(**tcols), every="1s")
    assert_same(got, reference(book, trades, "time", "1s"), "read-only inputs")


# ------------------------------------------------------------------------------ random inputs
def make_book(ts, bid, ask, valid, levels):
    n = len(ts)
    px = lambda a: np.repeat(np.asarray(a, np.float64)[:, None], levels, axis=1)  # noqa: E731
    return BookSnapshots(
        ts=np.asarray(ts, np.int64),
        update_id=np.arange(n, dtype=np.int64),
        bid_px=px(bid),
        bid_sz=np.ones((n, levels)),
        ask_px=px(ask),
        ask_sz=np.ones((n, levels)),
        valid=np.asarray(valid, bool),
    )


def make_quotes(ts, bid, ask):
    n = len(ts)
    return Quotes(
        ts=np.asarray(ts, np.int64),
        local_ts=np.asarray(ts, np.int64),
        update_id=np.full(n, -1, np.int64),
        bid_px=np.asarray(bid, np.float64),
        bid_qty=np.ones(n),
        ask_px=np.asarray(ask, np.float64),
        ask_qty=np.ones(n),
    )


def make_trades(ts, price, qty, side):
    n = len(ts)
    return Trades(
        ts=np.asarray(ts, np.int64),
        local_ts=np.asarray(ts, np.int64),
        price=np.asarray(price, np.float64),
        qty=np.asarray(qty, np.float64),
        side=np.asarray(side, np.int8),
        trade_id=np.arange(n, dtype=np.int64),
    )


@st.composite
def scenarios(draw):
    # times lie in 1970..2262: from the epoch to near the last accepted time
    base = draw(st.sampled_from([0, 1_000_003, 1_723_161_256_322_000_000, 9_214_646_400_000_000_000 - 200]))
    nb = draw(st.integers(0, 40))
    nt = draw(st.integers(0, 40))
    # trades may start before and end after the book: a wider time range
    book_ts = sorted(draw(st.lists(st.integers(20, 80), min_size=nb, max_size=nb)))
    trade_ts = sorted(draw(st.lists(st.integers(0, 100), min_size=nt, max_size=nt)))
    prices = st.sampled_from([99.5, 100.0, 100.25, 101.0, 1e5 + 0.1])
    bid = draw(st.lists(st.one_of(prices, st.just(np.nan)), min_size=nb, max_size=nb))
    ask = [b + draw(st.sampled_from([0.5, 1.0])) for b in bid]
    valid = draw(st.lists(st.sampled_from([True, True, True, False]), min_size=nb, max_size=nb))
    tpx = draw(st.lists(prices, min_size=nt, max_size=nt))
    qty = draw(st.lists(st.sampled_from([0.0, 0.001, 0.5, 1.0, 2.5, 7.0]), min_size=nt, max_size=nt))
    side = draw(st.lists(st.sampled_from([-1, 0, 1]), min_size=nt, max_size=nt))
    by = draw(st.sampled_from(["time", "events", "volume"]))
    every = {
        "time": draw(st.sampled_from([1, 3, 7, 10, 25, 1000])),
        "events": draw(st.integers(1, 12)),
        "volume": draw(st.sampled_from([0.001, 0.7, 1.0, 3.0, 50.0])),
    }[by]
    kind = draw(st.sampled_from(["book", "quotes"]))
    levels = draw(st.integers(1, 3))
    src = (
        make_book(np.add(book_ts, base), bid, ask, valid, levels)
        if kind == "book"
        else make_quotes(np.add(book_ts, base), bid, ask)
    )
    trades = make_trades(np.add(trade_ts, base), tpx, qty, side)
    return src, trades, by, every, draw(st.sampled_from(["nan", "mid"]))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_random_inputs_equal_the_reference(case):
    src, trades, by, every, empty_vwap = case
    got = lobfast.aggregate(src, trades, by=by, every=every, empty_vwap=empty_vwap)
    assert_same(got, reference(src, trades, by, every, empty_vwap), f"by={by} every={every}")


def test_runs_of_every_length_around_the_count_windows():
    # bucket k holds k rows: the counts of 8 rows at a time, four of them, then the gallop
    lengths = np.arange(0, 90)
    ts = np.concatenate([k * 1000 + np.arange(n) for k, n in enumerate(lengths)]).astype(np.int64)
    bid = np.arange(len(ts), dtype=np.float64)
    quotes = make_quotes(ts, bid, bid + 1.0)
    trades = make_trades(ts[::3], bid[::3], np.ones(len(ts[::3])), np.ones(len(ts[::3]), np.int8))
    for threads in (1, 2):
        got = lobfast.aggregate(quotes, trades, every=1000, threads=threads)
        assert_same(got, reference(quotes, trades, "time", 1000), f"threads={threads}")
        np.testing.assert_array_equal(got["updates"], lengths[1:])  # from the first row's bucket


def test_buy_and_sell_volumes_keep_the_bits_of_an_ordered_sum():
    # sizes of -0.0 and 0.0 and sides of every kind: each volume is the sum, in order, of the
    # sizes of its side (a size of the other side adds +0.0)
    rng = np.random.default_rng(3)
    n = 5000
    ts = np.sort(rng.integers(0, 40_000, n)).astype(np.int64)
    qty = rng.choice([-0.0, 0.0, 1e-300, 0.001, 0.1, 3.0, 1e300], n)
    side = rng.integers(-1, 2, n).astype(np.int8)
    trades = make_trades(ts, np.full(n, 100.0), qty, side)
    quotes = make_quotes(ts[::7], np.full(len(ts[::7]), 99.0), np.full(len(ts[::7]), 101.0))
    got = lobfast.aggregate(quotes, trades, every=1000)
    k = (ts - ts.min() // 1000 * 1000) // 1000
    for name, sign in (("buy_volume", 1), ("sell_volume", -1), ("volume", None)):
        want = np.zeros(len(got))
        for b, q, s in zip(k, qty, side):
            want[b] += q if sign is None or s == sign else 0.0
        assert got[name].tobytes() == want.tobytes(), name


# Best prices whose mids are the awkward ones: +0.0 and -0.0 (and a subnormal halved to +0.0),
# NaN, both infinities, ties.
AWKWARD = [(1.0, 1.0), (2.0, 3.0), (-1.0, 1.0), (-0.0, -0.0), (0.0, -0.0), (5e-324, 0.0), (-2.0, 1.0)]
AWKWARD += [(np.nan, 1.0), (np.inf, 1.0), (-np.inf, 1.0), (np.inf, -np.inf), (4.0, 4.0)]


@st.composite
def short_buckets(draw):
    n = draw(st.integers(0, 120))
    ts = np.sort(np.array(draw(st.lists(st.integers(0, 300), min_size=n, max_size=n)), np.int64))
    pairs = np.array(draw(st.lists(st.sampled_from(AWKWARD), min_size=n, max_size=n)), np.float64).reshape(n, 2)
    valid = np.array(draw(st.lists(st.sampled_from([True, True, True, False]), min_size=n, max_size=n)), bool)
    nt = draw(st.integers(0, 30))
    tts = np.sort(np.array(draw(st.lists(st.integers(0, 300), min_size=nt, max_size=nt)), np.int64))
    trades = make_trades(tts, np.full(nt, 100.0), np.full(nt, 1.0), np.ones(nt, np.int8))
    by = draw(st.sampled_from(["time", "events", "volume"]))
    every = {"time": draw(st.sampled_from([1, 3, 7, 10, 25, 40])), "events": draw(st.integers(1, 20)), "volume": 2.0}
    return ts, pairs[:, 0], pairs[:, 1], valid, trades, by, every[by]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(short_buckets())
def test_short_buckets_keep_the_bits_of_the_row_loop(case):
    # Buckets of 1..8 rows of a one-level book (quotes, or a book of one level) go through one
    # AVX-512 register where the CPU has it, 9..16 rows through two (csrc/core/kernels/aggregate.c,
    # mids_short and mids_short16); the
    # same rows as a two-level book always go through the row loop.  The bars must be the same
    # bit for bit: signed zeros, NaN and infinities included.
    ts, bid, ask, valid, trades, by, every = case
    one, two = make_book(ts, bid, ask, valid, 1), make_book(ts, bid, ask, valid, 2)
    for threads in (1, 2):
        a = lobfast.aggregate(one, trades, by=by, every=every, threads=threads)
        b = lobfast.aggregate(two, trades, by=by, every=every, threads=threads)
        assert len(a) == len(b)
        for c in COLUMNS:
            assert a[c].tobytes() == b[c].tobytes(), f"{c} by={by} every={every} threads={threads}"


def test_short_buckets_with_zero_extremes_keep_the_first_zero():
    # high and low keep the first of equal mids: +0.0 then -0.0 gives +0.0 for both, -0.0 then
    # +0.0 gives -0.0 for both (a register's max does not know the order: the loop decides)
    zero, neg = (-1.0, 1.0), (-0.0, -0.0)
    rows = [zero, neg, (1.0, 1.0), neg, zero, (1.0, 1.0)] + [(1.0, 1.0)] * 10
    ts = np.array([0, 0, 10, 20, 20, 30] + list(range(40, 140, 10)), np.int64)
    px = np.array(rows, np.float64)
    got = lobfast.aggregate(make_book(ts, px[:, 0], px[:, 1], np.ones(len(ts), bool), 1), None, every=10)
    bits = lambda x: np.asarray(x).view(np.int64).tolist()  # noqa: E731
    assert bits(got["mid_high"][:3]) == bits([0.0, 1.0, -0.0])
    assert bits(got["mid_low"][:3]) == bits([0.0, 1.0, -0.0])
    assert bits(got["mid_open"][:3]) == bits([0.0, 1.0, -0.0])
    assert bits(got["mid_close"][:3]) == bits([-0.0, 1.0, 0.0])
    # the same in buckets of 9..16 rows (two registers), the zeros in either half
    for before in (0, 8):
        rows = [(1.0, 1.0)] * before + [zero, neg] + [(1.0, 1.0)] * (12 - before) + [(1.0, 1.0)] * 20
        rows = [(3.0, 3.0)] * 2 + rows  # the mids above the zeros: 1.0 and 3.0
        ts = np.array([0] * 16 + list(range(100, 100 + 10 * (len(rows) - 16), 10)), np.int64)
        px = np.array(rows, np.float64)
        got = lobfast.aggregate(make_book(ts, px[:, 0], px[:, 1], np.ones(len(ts), bool), 1), None, every=100)
        loop = lobfast.aggregate(make_book(ts, px[:, 0], px[:, 1], np.ones(len(ts), bool), 2), None, every=100)
        assert got["updates"][0] == 16
        for c in ("mid_open", "mid_high", "mid_low", "mid_close"):
            assert got[c].tobytes() == loop[c].tobytes(), (before, c)
        assert bits(got["mid_low"][:1]) == bits([0.0])


# ------------------------------------------------------------------------------ the rules by hand
def test_carry_gaps_and_vwap_by_hand():
    nan = np.nan
    # rows at 5, 12, 13 (a gap), 31; buckets of 10 ns from 0 to 40 (a trade at 45 ends it)
    book = make_book([5, 12, 13, 31], [10.0, 12.0, 14.0, 20.0], [12.0, 14.0, 16.0, 22.0], [1, 1, 0, 1], 2)
    trades = make_trades([0, 12, 18, 45], [100.0, 10.0, 20.0, 30.0], [1.0, 1.0, 3.0, 2.0], [1, -1, 0, 1])
    f = lobfast.aggregate(book, trades, every=10)
    np.testing.assert_array_equal(f.ts, [0, 10, 20, 30, 40])
    np.testing.assert_array_equal(f["mid_open"], [11.0, 13.0, nan, 21.0, 21.0])  # gap at 13 ends the carry
    np.testing.assert_array_equal(f["mid_close"], [11.0, 13.0, nan, 21.0, 21.0])  # ...but not bucket 10's close
    np.testing.assert_array_equal(f["updates"], [1, 2, 0, 1, 0])
    np.testing.assert_array_equal(f["trades"], [1, 2, 0, 0, 1])
    np.testing.assert_array_equal(f["vwap"], [100.0, (10.0 + 60.0) / 4.0, nan, nan, 30.0])
    np.testing.assert_array_equal(f["buy_volume"], [1.0, 0.0, 0.0, 0.0, 2.0])
    np.testing.assert_array_equal(f["sell_volume"], [0.0, 1.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(f["volume"], [1.0, 4.0, 0.0, 0.0, 2.0])
    g = lobfast.aggregate(book, trades, every=10, empty_vwap="mid")
    np.testing.assert_array_equal(g["vwap"], [100.0, 17.5, nan, 21.0, 30.0])
    # a bucket before the first book row has NaN mids
    early = lobfast.aggregate(make_book([25], [1.0], [3.0], [1], 1), trades, every=10)
    np.testing.assert_array_equal(early["mid_close"], [nan, nan, 2.0, 2.0, 2.0])


def test_events_and_volume_by_hand():
    book = make_quotes([10, 11, 20, 30, 30], [1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 2.0, 3.0, 4.0, 5.0])
    trades = make_trades([5, 10, 15, 30, 40], [1.0] * 5, [1.0, 2.0, 2.0, 1.0, 5.0], [0] * 5)
    ev = lobfast.aggregate(book, trades, by="events", every=2)
    np.testing.assert_array_equal(ev.ts, [10, 20, 30])
    np.testing.assert_array_equal(ev["updates"], [2, 2, 1])
    np.testing.assert_array_equal(ev["trades"], [2, 0, 2])  # the trade at 5 (before the book) is not counted
    np.testing.assert_array_equal(ev["mid_open"], [1.0, 3.0, 5.0])
    vol = lobfast.aggregate(book, trades, by="volume", every=3.0)
    np.testing.assert_array_equal(vol.ts, [5, 15, 40])  # 1+2 reaches 3; 2+1 reaches 3; 5 alone
    np.testing.assert_array_equal(vol["volume"], [3.0, 3.0, 5.0])
    np.testing.assert_array_equal(vol["updates"], [2, 3, 0])
    np.testing.assert_array_equal(vol["mid_open"], [1.0, 3.0, 5.0])  # the last bucket carries 5.0
    np.testing.assert_array_equal(vol["mid_close"], [2.0, 5.0, 5.0])
    big = lobfast.aggregate(book, trades, by="volume", every=2.5)  # a trade is never split
    np.testing.assert_array_equal(big["volume"], [3.0, 3.0, 5.0])


def test_empty_inputs_give_empty_frames():
    empty_book, empty_quotes, no_trades = BookSnapshots.empty(), Quotes.empty(), Trades.empty()
    for src in (empty_book, empty_quotes):
        for by, every in (("time", "1s"), ("events", 5), ("volume", 1.0)):
            f = lobfast.aggregate(src, no_trades, by=by, every=every)
            assert len(f) == 0 and list(f.keys()) == COLUMNS
            assert f.ts.dtype == np.int64 and f["trades"].dtype == np.int64 and f["vwap"].dtype == np.float64
        assert len(lobfast.aggregate(src, every="1s")) == 0
    trades = make_trades([SEC, 3 * SEC], [10.0, 11.0], [1.0, 1.0], [1, -1])
    f = lobfast.aggregate(empty_quotes, trades, every="1s")  # trades alone: bars with NaN mids
    np.testing.assert_array_equal(f.ts, [SEC, 2 * SEC, 3 * SEC])
    assert np.isnan(f["mid_close"]).all() and f["trades"].tolist() == [1, 0, 1]
    for cols in (["mid_close"], ["mid_close", "vwap", "volume"]):  # the close alone reads no row
        g = lobfast.aggregate(empty_quotes, trades, every="1s", columns=cols, empty_vwap="mid")
        assert np.isnan(g["mid_close"]).all() and list(g.keys()) == cols
    assert len(lobfast.aggregate(empty_quotes, trades, by="events", every=1)) == 0
    assert len(lobfast.aggregate(empty_quotes, trades, by="volume", every=1.0)) == 2


def test_trades_whose_times_are_the_books_own_array():
    # The checks split both inputs into ranges and told a trades range from a book range by its
    # times' pointer: with the trades' times a view of the book's (the same first address), book
    # ranges were checked as trades, reading their prices and sizes far past their end.
    n = 2_000_000
    ts = np.arange(n, dtype=np.int64) * 1_000
    px = np.full((n, 1), 100.0)
    for m in (0, 1, 3):
        trades = (ts[:m], np.full(m, 100.0), np.ones(m), np.ones(m, np.int8))
        for threads in (1, 2):
            got = _core.aggregate(ts, px, px, None, *trades, every=10**9, threads=threads)
            assert len(got["ts"]) == 2 and got["trades"].tolist() == [m, 0]


# ------------------------------------------------------------------------------ bad input
@pytest.fixture()
def small():
    book = make_book([1, 2, 3, 4], [1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0], [1, 1, 1, 1], 2)
    trades = make_trades([1, 2, 3], [1.5, 1.5, 1.5], [1.0, 1.0, 1.0], [1, -1, 0])
    return book, trades


def test_unsorted_book_names_the_row(small):
    book, trades = small
    bad = BookSnapshots(**{**book.columns, "ts": np.array([1, 2, 5, 4])})
    with pytest.raises(ValueError, match=r"book ts must be sorted ascending: row 2 \(5\) comes before row 3 \(4\)"):
        lobfast.aggregate(bad, trades)


def test_unsorted_quotes_and_trades_name_the_input(small):
    _, trades = small
    q = make_quotes([3, 1], [1.0, 1.0], [2.0, 2.0])
    with pytest.raises(ValueError, match=r"quotes ts must be sorted ascending: row 0 \(3\) comes before row 1"):
        lobfast.aggregate(q, None, by="events", every=1)
    bad = Trades(**{**trades.columns, "ts": np.array([1, 3, 2])})
    with pytest.raises(ValueError, match=r"trades ts must be sorted ascending: row 1 \(3\) comes before row 2 \(2\)"):
        lobfast.aggregate(small[0], bad)


@pytest.mark.parametrize(
    ("column", "value", "match"),
    [
        ("price", np.nan, "trades price at row 1 is nan"),
        ("price", np.inf, "trades price at row 1 is inf"),
        ("qty", np.nan, "trades qty at row 1 is nan"),
        ("qty", -1.0, "trades qty at row 1 is -1"),
        ("side", 2, "trades side at row 1 is 2"),
    ],
)
def test_bad_trade_values(small, column, value, match):
    book, trades = small
    cols = trades.columns
    cols[column] = cols[column].copy()
    cols[column][1] = value
    with pytest.raises(ValueError, match=match):
        lobfast.aggregate(book, Trades(**cols), by="volume", every=1.0)


def test_mismatched_lengths_in_the_core():
    ts, px, side = np.arange(3, dtype=np.int64), np.ones(3), np.zeros(3, np.int8)
    lvl = np.ones((3, 1))
    with pytest.raises(ValueError, match="ask_px has 2 rows, expected 3"):
        _core.aggregate(ts, lvl, lvl[:2], None, ts, px, px, side, every=1)
    with pytest.raises(ValueError, match="valid has 2 rows, expected 3"):
        _core.aggregate(ts, lvl, lvl, np.ones(2, bool), ts, px, px, side, every=1)
    with pytest.raises(ValueError, match="trades qty has 2 rows, expected 3"):
        _core.aggregate(ts, lvl, lvl, None, ts, px, px[:2], side, every=1)
    with pytest.raises(ValueError, match="bid_px has 1 levels, ask_px 2"):
        _core.aggregate(ts, lvl, np.ones((3, 2)), None, ts, px, px, side, every=1)
    with pytest.raises(TypeError, match="every"):
        _core.aggregate(ts, lvl, lvl, None, ts, px, px, side)
    with pytest.raises(ValueError, match="by must be"):
        _core.aggregate(ts, lvl, lvl, None, ts, px, px, side, by="ticks", every=1)


def test_book_without_levels():
    book = BookSnapshots(
        ts=np.arange(2),
        update_id=np.arange(2),
        bid_px=np.empty((2, 0)),
        bid_sz=np.empty((2, 0)),
        ask_px=np.empty((2, 0)),
        ask_sz=np.empty((2, 0)),
        valid=np.ones(2, bool),
    )
    with pytest.raises(ValueError, match="book has 2 rows but no price levels"):
        lobfast.aggregate(book)


@pytest.mark.parametrize(
    ("by", "every", "error", "match"),
    [
        ("time", 0, ValueError, "positive duration"),
        ("time", "-5ms", ValueError, "not a duration"),
        ("time", "fast", ValueError, "not a duration"),
        ("time", [1], ValueError, "must be a duration"),
        ("events", 0, ValueError, "> 0 book rows"),
        ("events", -3, ValueError, "> 0 book rows"),
        ("events", 2.5, TypeError, "int number of book rows"),
        ("events", "10", TypeError, "int number of book rows"),
        ("events", True, TypeError, "must be a number"),
        ("volume", 0.0, ValueError, "finite volume > 0"),
        ("volume", -1, ValueError, "finite volume > 0"),
        ("volume", float("nan"), ValueError, "finite volume > 0"),
        ("volume", float("inf"), ValueError, "finite volume > 0"),
        ("volume", "5", TypeError, "traded volume"),
    ],
)
def test_bad_every(small, by, every, error, match):
    book, trades = small
    with pytest.raises(error, match=match):
        lobfast.aggregate(book, trades, by=by, every=every)


def test_bad_options_and_types(small):
    book, trades = small
    with pytest.raises(ValueError, match="by must be one of"):
        lobfast.aggregate(book, trades, by="ticks")
    with pytest.raises(ValueError, match="empty_vwap must be"):
        lobfast.aggregate(book, trades, empty_vwap="zero")
    with pytest.raises(ValueError, match="by='volume' needs trades"):
        lobfast.aggregate(book, by="volume", every=1.0)
    with pytest.raises(TypeError, match="BookSnapshots or Quotes"):
        lobfast.aggregate(trades, trades)
    with pytest.raises(TypeError, match="trades must be Trades"):
        lobfast.aggregate(book, book)


def test_too_many_buckets(small):
    book, _ = small
    far = make_trades([0, 3 * SEC], [1.0, 1.0], [1.0, 1.0], [0, 0])
    with pytest.raises(ValueError, match=r"gives 3000000001 buckets .* at most 2147483648"):
        lobfast.aggregate(book, far, every=1)
    nat = make_trades([np.iinfo(np.int64).min], [1.0], [1.0], [0])
    with pytest.raises(ValueError, match="row 0 is NaT"):
        lobfast.aggregate(Quotes.empty(), nat, every=3)
    late = make_trades([np.iinfo(np.int64).max], [1.0], [1.0], [0])
    with pytest.raises(ValueError, match="row 0 .* is outside 1970-01-01..2262-01-01"):
        lobfast.aggregate(Quotes.empty(), late, every=3)


def _stops_early(threads):
    # one bar per book row: the per-bar work dominates; the outputs' pages are faulted in by
    # an untimed call first (their cost varies with the machine's memory), then a call is
    # stopped a tenth of the way in and must end well before a whole one (the binding looks
    # for signals every 20 ms at most: the margin is 80 % of a call of 60-180 ms here)
    n = 8_000_000
    ts, px = np.arange(n, dtype=np.int64), np.full((n, 1), 100.0)
    none = np.empty(0)

    def run():
        return _core.aggregate(
            ts, px, px, None, none.astype(np.int64), none, none, none.astype(np.int8), by="events", every=1,
            threads=threads,
        )  # fmt: skip

    run()
    whole = timed(run)
    assert interrupted(run, whole / 10) < whole * 0.9


def test_ctrl_c_stops_aggregate():
    _stops_early(threads=1)


@pytest.mark.parametrize("source", ["gappy", "tiled", "quotes"])
@pytest.mark.parametrize(("by", "every"), [("time", "1ms"), ("time", 777_777), ("events", 1), ("events", 2)])
def test_bars_on_threads_equal_one_thread(usdm, source, by, every):
    # enough bars for several ranges (>= 32,768 each): each range starts from a bisection and
    # the carry of the row before it, which must give the sequential bars bit for bit, with
    # every column and with the close-only path, empty buckets and gaps across range edges
    src, trades = usdm[source], usdm["trades"]
    for columns in (None, ["mid_close", "vwap", "volume"], ["mid_open", "updates"]):
        one = lobfast.aggregate(src, trades, by=by, every=every, columns=columns, threads=1)
        assert len(one) > 32_768 or (source == "gappy" and by == "events")
        for threads in (2, 3, 8):
            got = lobfast.aggregate(src, trades, by=by, every=every, columns=columns, threads=threads)
            assert got.ts.tobytes() == one.ts.tobytes()
            for name in one.keys():
                assert got[name].tobytes() == one[name].tobytes(), (threads, columns, name)
    if by == "time" and source == "gappy":
        assert_same(lobfast.aggregate(src, trades, by=by, every=every, threads=4),
                    reference(src, trades, by, every), "4 threads")  # fmt: skip


def test_ctrl_c_stops_aggregate_on_threads():
    _stops_early(threads=2)
    none = np.empty(0)
    with pytest.raises(ValueError, match="threads"):
        _core.aggregate(none.astype(np.int64), none.reshape(0, 1), none.reshape(0, 1), None,
                        none.astype(np.int64), none, none, none.astype(np.int8), every=1, threads=0)  # fmt: skip


def test_checks_on_threads_name_the_first_bad_row():
    # the inputs are checked in ranges on several threads; a bad row in any range is named as
    # the sequential checks name it: the book's times first, then the trades' times and values
    n, m = 1_200_000, 700_000
    ts, tts = np.arange(n, dtype=np.int64) * 10, np.arange(m, dtype=np.int64) * 17
    px, tpx, q, side = np.full((n, 1), 100.0), np.full(m, 100.0), np.ones(m), np.ones(m, np.int8)

    def bars(ts=ts, tts=tts, tpx=tpx, q=q, side=side, threads=2):
        return _core.aggregate(ts, px, px, None, tts, tpx, q, side, every=1000, threads=threads)

    assert len(bars()["ts"]) == len(bars(threads=1)["ts"])
    bad_ts, bad_tts, bad_q, bad_side = ts.copy(), tts.copy(), q.copy(), side.copy()
    bad_ts[[1_100_000, 650_000]] = 5
    bad_tts[600_001] = 3
    bad_q[[690_000, 20]] = [-1.0, np.inf]
    bad_side[400_000] = 7
    for threads in (1, 2, 4):
        with pytest.raises(ValueError, match=r"book ts must be sorted ascending: row 649999 "):
            bars(ts=bad_ts, tts=bad_tts, q=bad_q, threads=threads)
        with pytest.raises(ValueError, match=r"trades ts must be sorted ascending: row 600000 "):
            bars(tts=bad_tts, q=bad_q, threads=threads)
        with pytest.raises(ValueError, match=r"trades qty at row 20 is inf"):
            bars(q=bad_q, side=bad_side, threads=threads)
        with pytest.raises(ValueError, match=r"trades side at row 400000 is 7"):
            bars(side=bad_side, threads=threads)
