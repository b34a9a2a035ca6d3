"""lobfast.aggregate's columns= and out=: a subset of the columns equals the same columns of the
full bars bit for bit (the close alone takes the path that skips the rows inside a bucket), out=
fills the caller's arrays in place, and every bad columns= / out= is refused naming what is
wrong.  Also the up-front checks' fast pass: it only decides that all is well, the row-by-row
loop names the bad row."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import interrupted, timed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_aggregate import COLUMNS, assert_same, make_book, make_quotes, make_trades, reference, scenarios

import lobfast
from lobfast import BookSnapshots, Quotes, Trades, _core, datasets
from lobfast.aggregation import COLUMNS as API_COLUMNS

# the close (and what needs only it or the bucket ends) without open / high / low: the path that
# finds each bucket's end by galloping and reads only its last rows
CLOSE_ONLY = ["mid_close", "vwap", "volume"]
SUBSETS = [
    CLOSE_ONLY,
    ["mid_close"],
    ["vwap"],
    ["volume", "mid_close"],
    ["updates"],
    ["trades", "updates"],
    ["buy_volume", "sell_volume"],
    ["mid_high"],
    ["mid_open", "vwap"],
    [],
]


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def assert_subset(full: lobfast.Frame, got: lobfast.Frame, cols: list[str], what: str) -> None:
    assert list(got.keys()) == cols, what
    assert same_bits(got.ts, full.ts), f"{what}: ts"
    for c in cols:
        assert same_bits(got[c], full[c]), f"{what}: {c} differs from the full bars"


def test_the_reference_covers_every_column():
    q = make_quotes([1, 2, 12], [1.0, 2.0, 3.0], [2.0, 3.0, 4.0])
    t = make_trades([3, 15], [1.5, 2.5], [1.0, 2.0], [1, -1])
    for by, every in (("time", 10), ("events", 2), ("volume", 1.0)):
        assert set(reference(q, t, by, every)) == {"ts", *API_COLUMNS}
    assert COLUMNS == list(API_COLUMNS)


# ------------------------------------------------------------------------------ real data
@pytest.fixture(scope="module")
def recordings():
    out = {}
    for name in ("usdm_btcusdt_20240808", "spot_btcusdt_20240808"):
        md = lobfast.read_binance(datasets.path(name))
        book = lobfast.reconstruct(md.depth, levels=5)
        valid = book.valid.copy()
        valid[::29] = False
        out[name] = {
            "quotes": md.quotes,
            "book": book,
            "gappy": BookSnapshots(**{**book.columns, "valid": valid}),
            "trades": md.trades,
        }
    return out


@pytest.mark.parametrize("name", ["usdm_btcusdt_20240808", "spot_btcusdt_20240808"])
@pytest.mark.parametrize("source", ["quotes", "book", "gappy"])
@pytest.mark.parametrize(
    ("by", "every"), [("time", "100ms"), ("time", "500ms"), ("time", "1min"), ("events", 7), ("volume", 2.0)]
)
def test_real_data_subsets_equal_the_full_bars(recordings, name, source, by, every):
    src, trades = recordings[name][source], recordings[name]["trades"]
    for empty_vwap in ("nan", "mid"):
        full = lobfast.aggregate(src, trades, by=by, every=every, empty_vwap=empty_vwap)
        for cols in SUBSETS:
            got = lobfast.aggregate(src, trades, by=by, every=every, empty_vwap=empty_vwap, columns=cols)
            assert_subset(full, got, cols, f"{name} {source} by={by} every={every} {cols}")


# ------------------------------------------------------------------------------ random inputs
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.lists(st.sampled_from(list(API_COLUMNS)), unique=True))
def test_random_subsets_equal_the_full_bars(case, cols):
    src, trades, by, every, empty_vwap = case
    full = lobfast.aggregate(src, trades, by=by, every=every, empty_vwap=empty_vwap)
    got = lobfast.aggregate(src, trades, by=by, every=every, empty_vwap=empty_vwap, columns=cols)
    assert_subset(full, got, cols, f"by={by} every={every}")
    close = lobfast.aggregate(src, trades, by=by, every=every, empty_vwap=empty_vwap, columns=CLOSE_ONLY)
    assert_subset(full, close, CLOSE_ONLY, f"close only, by={by} every={every}")


@st.composite
def long_runs(draw):
    """Quotes whose buckets hold from none to hundreds of rows (past the 8 counted before the
    gallop, and the groups of 4 trades), with ties, gaps and NaN sides, and trades alike."""
    n = draw(st.integers(1, 600))
    steps = draw(st.lists(st.sampled_from([0, 0, 1, 1, 2, 5, 40, 300]), min_size=n, max_size=n))
    ts = 1_000 + np.cumsum(steps)
    bid = np.array(draw(st.lists(st.sampled_from([10.0, 10.5, 11.0, np.nan]), min_size=n, max_size=n)))
    src = make_quotes(ts, bid, bid + 0.5)
    if draw(st.booleans()):
        valid = draw(st.lists(st.sampled_from([True, True, True, False]), min_size=n, max_size=n))
        src = make_book(ts, bid, bid + 0.5, valid, draw(st.integers(1, 3)))
    nt = draw(st.integers(0, 300))
    tts = np.sort(np.array(draw(st.lists(st.integers(900, int(ts[-1]) + 100), min_size=nt, max_size=nt)), np.int64))
    qty = draw(st.lists(st.sampled_from([0.0, -0.0, 0.25, 1.0, 3.0]), min_size=nt, max_size=nt))
    trades = make_trades(tts, np.full(nt, 100.0) + np.arange(nt) % 7, qty, np.arange(nt) % 3 - 1)
    every = draw(st.sampled_from([1, 7, 50, 1_000, 10**6]))
    return src, trades, every


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(long_runs(), st.sampled_from(["nan", "mid"]))
def test_gallop_path_equals_the_full_path(case, empty_vwap):
    src, trades, every = case
    for by, ev in (("time", every), ("events", max(1, every // 50)), ("volume", 2.0)):
        full = lobfast.aggregate(src, trades, by=by, every=ev, empty_vwap=empty_vwap)
        for cols in (CLOSE_ONLY, ["mid_close"], ["vwap"], ["volume", "trades", "updates"]):
            got = lobfast.aggregate(src, trades, by=by, every=ev, empty_vwap=empty_vwap, columns=cols)
            assert_subset(full, got, cols, f"by={by} every={ev} {cols}")


@pytest.mark.parametrize(
    ("ts", "every"),
    [
        ([5], 10),  # a single row
        ([3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3], 10),  # duplicate times, all in one bucket
        ([1, 2, 3, 4, 5, 6, 7, 8, 9], 1_000),  # every row in one bucket
        ([1, 2, 500, 501, 5_000], 10),  # empty buckets between rows
        (list(range(0, 100, 2)) + [100] * 20, 7),  # runs longer than the counted window
    ],
)
def test_gallop_path_edge_cases(ts, every):
    n = len(ts)
    q = make_quotes(ts, np.linspace(10, 11, n), np.linspace(10.5, 11.5, n))
    tr = make_trades(
        ts[::2], [10.0] * len(ts[::2]), [1.0] * len(ts[::2]), [1, -1] * (len(ts[::2]) // 2) + [0] * (len(ts[::2]) % 2)
    )
    full = lobfast.aggregate(q, tr, every=every)
    np.testing.assert_array_equal(full["mid_close"], reference(q, tr, "time", every)["mid_close"])
    for cols in (CLOSE_ONLY, ["mid_close"], ["updates", "trades"]):
        assert_subset(full, lobfast.aggregate(q, tr, every=every, columns=cols), cols, f"{ts} every={every}")


def test_an_empty_interval_carries_the_mid_and_never_gives_zero():
    # the rule the published kernel breaks: an interval without quotes has mid 0 there
    q = make_quotes([0, 1, 25], [10.0, 11.0, 12.0], [11.0, 12.0, 13.0])
    bars = lobfast.aggregate(q, None, every=10, columns=CLOSE_ONLY)
    np.testing.assert_array_equal(bars["mid_close"], [11.5, 11.5, 12.5])
    assert np.isnan(bars["vwap"]).all() and (bars["volume"] == 0).all()


# ------------------------------------------------------------------------------ out=
@pytest.fixture(scope="module")
def usdm():
    md = lobfast.read_binance(datasets.path("usdm_btcusdt_20240808"))
    return md.quotes, md.trades


@pytest.mark.parametrize("cols", [None, CLOSE_ONLY, ["updates"]])
def test_out_writes_in_place_and_returns_the_same_arrays(usdm, cols):
    q, tr = usdm
    fresh = lobfast.aggregate(q, tr, every="1s", columns=cols)
    names = list(fresh.keys())
    out = {"ts": np.full(len(fresh), -1, np.int64)}
    out.update({c: np.full(len(fresh), -7, fresh[c].dtype) for c in names})
    got = lobfast.aggregate(q, tr, every="1s", columns=cols, out=out)
    assert got.ts is out["ts"] and all(got[c] is out[c] for c in names)
    assert_subset(fresh, got, names, "out=dict")
    # a Frame an earlier call returned, again and again
    again = lobfast.aggregate(q, tr, every="1s", columns=cols, out=got)
    assert again.ts is out["ts"] and all(again[c] is out[c] for c in names)
    assert_subset(fresh, again, names, "out=Frame")


def test_out_with_a_full_frame_fills_only_the_asked_columns(usdm):
    q, tr = usdm
    full = lobfast.aggregate(q, tr, every="1s")
    before = full["mid_open"].copy()
    full["mid_open"][:] = 0.0
    sub = lobfast.aggregate(q, tr, every="1s", columns=["mid_close"], out=full)
    assert list(sub.keys()) == ["mid_close"] and sub["mid_close"] is full["mid_close"]
    assert (full["mid_open"] == 0.0).all()  # not asked for: left alone
    assert not np.array_equal(before, full["mid_open"])


def test_fresh_columns_share_one_block():
    q = make_quotes(np.arange(0, 10**9, 10**5), np.full(10**4, 1.0), np.full(10**4, 2.0))
    bars = lobfast.aggregate(q, None, every=10**5)
    owners = {id(a.base) for a in (bars.ts, *bars.values())}
    assert len(owners) == 1 and all(a.flags.c_contiguous and a.flags.writeable for a in bars.values())


def _out(n, **changes):
    out = {"ts": np.zeros(n, np.int64), "mid_close": np.zeros(n), "vwap": np.zeros(n), "volume": np.zeros(n)}
    out.update(changes)
    return out


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"vwap": np.zeros(4, np.float32)}, ValueError, r"out\['vwap'\] must be a writable 1-D .*float64"),
        ({"ts": np.zeros(4, np.float64)}, ValueError, r"out\['ts'\] must be a writable 1-D .*int64"),
        ({"volume": np.zeros(5)}, ValueError, r"out\['volume'\] has 5 rows, expected 4"),
        ({"mid_close": np.zeros(8)[::2]}, ValueError, r"out\['mid_close'\] .*not contiguous"),
        ({"vwap": np.zeros((4, 1))}, ValueError, r"out\['vwap'\] must be a writable 1-D"),
        ({"vwap": [0.0] * 4}, ValueError, r"out\['vwap'\] must be a NumPy array"),
        ({"bogus": np.zeros(4)}, ValueError, r"out: unknown column 'bogus'"),
        ({"vwap": None}, ValueError, r"out\['vwap'\] must be a NumPy array"),
    ],
)
def test_bad_out_names_the_column(change, error, match):
    q = make_quotes([0, 10, 20, 30], [1.0] * 4, [2.0] * 4)
    with pytest.raises(error, match=match):
        lobfast.aggregate(q, None, every=10, columns=CLOSE_ONLY, out=_out(4, **change))


def test_read_only_missing_and_shared_out():
    q = make_quotes([0, 10, 20, 30], [1.0] * 4, [2.0] * 4)
    ro = np.zeros(4)
    ro.setflags(write=False)
    with pytest.raises(ValueError, match=r"out\['vwap'\] must be a writable .*read-only"):
        lobfast.aggregate(q, None, every=10, columns=CLOSE_ONLY, out=_out(4, vwap=ro))
    missing = _out(4)
    del missing["volume"]
    with pytest.raises(ValueError, match="out has no array for 'volume'"):
        lobfast.aggregate(q, None, every=10, columns=CLOSE_ONLY, out=missing)
    with pytest.raises(ValueError, match="out has no array for 'mid_open'"):
        lobfast.aggregate(q, None, every=10, out=_out(4))
    one = np.zeros(4)
    with pytest.raises(ValueError, match=r"out\['volume'\] shares memory with out\['vwap'\]"):
        lobfast.aggregate(q, None, every=10, columns=CLOSE_ONLY, out=_out(4, vwap=one, volume=one))
    with pytest.raises(ValueError, match=r"out\['ts'\] shares memory with an input"):
        lobfast.aggregate(q, None, every=10, columns=CLOSE_ONLY, out=_out(4, ts=q.ts))
    with pytest.raises(ValueError, match=r"out= takes a dict \{name: ndarray\} or a Frame"):
        lobfast.aggregate(q, None, every=10, out=[np.zeros(4)])
    assert (one == 0).all()  # refused before anything was written


def test_out_from_the_binding_callable_is_checked():
    ts, px = np.arange(4, dtype=np.int64), np.ones((4, 1))
    none = np.empty(0)
    args = (ts, px, px, None, none.astype(np.int64), none, none, none.astype(np.int8))
    got = _core.aggregate(*args, every=1, columns=["updates"], out=lambda n, spec: {k: np.zeros(n, t) for k, t in spec})
    assert list(got) == ["ts", "updates"] and got["updates"].tolist() == [1, 1, 1, 1]
    with pytest.raises(ValueError, match="out= takes a dict"):
        _core.aggregate(*args, every=1, out=lambda n, spec: None)
    with pytest.raises(ZeroDivisionError):
        _core.aggregate(*args, every=1, out=lambda n, spec: 1 / 0)


@pytest.mark.parametrize(
    ("cols", "error", "match"),
    [
        (["mid_close", "vwapp"], ValueError, r"columns: unknown column 'vwapp'; expected some of mid_open"),
        (["ts"], ValueError, "'ts' is always returned"),
        (["vwap", "vwap"], ValueError, "'vwap' is named twice"),
        ([3], ValueError, "unknown column 3"),
        ("vwap", TypeError, "columns must be a list of column names"),
        (5, TypeError, "columns must be a list of column names"),
    ],
)
def test_bad_columns(cols, error, match):
    q = make_quotes([0, 10], [1.0, 1.0], [2.0, 2.0])
    with pytest.raises(error, match=match):
        lobfast.aggregate(q, None, every=10, columns=cols)


# ------------------------------------------------------------------------------ the checks
def test_checks_fast_pass_leaves_the_naming_to_the_loop():
    q = make_quotes([1, 2, 3], [1.0] * 3, [2.0] * 3)
    # -0.0 is a size >= 0: the fast pass is unsure of it, the loop accepts it
    t = make_trades([1, 2, 3], [1.0, 1.0, 1.0], [1.0, -0.0, 2.0], [1, 0, -1])
    bars = lobfast.aggregate(q, t, every=10)
    assert bars["volume"].tolist() == [3.0]
    nat = np.array([1, 2, np.iinfo(np.int64).min, 4])
    with pytest.raises(ValueError, match="book ts row 2 is NaT"):
        _core.aggregate(nat, np.ones((4, 1)), np.ones((4, 1)), None, t.ts, t.price, t.qty, t.side, every=1)
    late = Quotes(
        **{
            **make_quotes([1, 2, 3, 4], [1.0] * 4, [2.0] * 4).columns,
            "ts": np.array([1, 2, 9_214_646_400_000_000_001, 9_214_646_400_000_000_002]),
        }
    )
    with pytest.raises(ValueError, match="quotes ts row 2 .* is outside 1970-01-01..2262-01-01"):
        lobfast.aggregate(late, None, every=10)
    bad_side = Trades(**{**t.columns, "side": np.array([1, 0, -2], np.int8)})
    with pytest.raises(ValueError, match="trades side at row 2 is -2"):
        lobfast.aggregate(q, bad_side, every=10)
    # a long sorted input with one row out of order deep inside: found past the vector blocks
    ts = np.arange(1000, dtype=np.int64)
    ts[700] = 5
    with pytest.raises(ValueError, match=r"must be sorted ascending: row 699 \(699\) comes before row 700 \(5\)"):
        lobfast.aggregate(make_quotes(ts, np.ones(1000), np.ones(1000)), None, every=10)


# ------------------------------------------------------------------------------ Ctrl-C
def test_ctrl_c_stops_the_close_only_path():
    # one bar per book row, whose close is its only row: cheap bars, so many of them (fresh
    # columns: their page faults make the call long); tests/c/test_kernels.c stops every path
    n = 16_000_000
    ts, px = np.arange(n, dtype=np.int64), np.full((n, 1), 100.0)
    none = np.empty(0)
    args = (ts, px, px, None, none.astype(np.int64), none, none, none.astype(np.int8))

    def run():
        return _core.aggregate(*args, by="events", every=1, columns=["mid_close"])

    whole = timed(run)
    assert interrupted(run, 0.01) < whole / 2


# ------------------------------------------------------------------------------ dense blocks
def dense_inputs(seed: int, source: str, every: int):
    """Time bars with a few rows and trades a bucket, as 500 ms bars of a busy pair, which the
    fill finds a block of 256 buckets at a time (all columns: the open, high and low too); with
    a stretch of bursts (over 64 rows or trades a bucket: those blocks go through the loop over
    buckets), a stretch without quotes, rows and trades on bucket and block starts, NaN sides
    and invalid rows.  Every 49 ns: k * 49 times the double nearest 1 / 49 falls below k for
    most k."""
    rng = np.random.default_rng(seed)
    n = 3_000
    rows = rng.choice([0, 1, 2, 3, 6, 9, 12, 17], size=n)
    rows[700:1000] = 100
    rows[1500:1800] = 0
    bucket = np.repeat(np.arange(n), rows)
    offset = rng.integers(0, every, bucket.size)
    offset[rng.random(bucket.size) < 0.05] = 0  # on a bucket's start (a block's, some of them)
    ts = np.sort(10**9 * every + bucket * every + offset)
    bid = 100 + np.cumsum(rng.standard_normal(ts.size)) * 0.01
    bid[rng.random(ts.size) < 0.03] = np.nan
    ask = bid + 0.5
    if source == "quotes":
        src = make_quotes(ts, bid, ask)
    else:
        levels = 1 if source == "book" else 3
        src = make_book(ts, bid, ask, rng.random(ts.size) > 0.05, levels)
    per = rng.choice([0, 0, 1, 2, 3, 5], size=n)
    per[2000:2300] = 80
    tb = np.repeat(np.arange(n), per)
    tts = np.sort(10**9 * every + tb * every + np.where(rng.random(tb.size) < 0.05, 0, rng.integers(0, every, tb.size)))
    qty = rng.choice([0.0, -0.0, 0.001, 0.5, 3.0], size=tts.size)
    trades = make_trades(tts, 100 + rng.standard_normal(tts.size), qty, rng.integers(-1, 2, tts.size))
    return src, trades, every


@pytest.mark.parametrize("source", ["quotes", "book", "book3"])
@pytest.mark.parametrize(("seed", "every"), [(1, 1_000), (2, 1_000), (3, 49)])
def test_dense_blocks_equal_the_full_bars(source, seed, every):
    src, trades, every = dense_inputs(seed, source, every)
    for threads in (1, 2):
        for empty_vwap in ("nan", "mid"):
            full = lobfast.aggregate(src, trades, every=every, empty_vwap=empty_vwap, threads=threads)
            assert len(full.ts) > 2_900
            assert_same(full, reference(src, trades, "time", every, empty_vwap), f"{source} seed={seed}")
            for cols in SUBSETS:
                got = lobfast.aggregate(src, trades, every=every, empty_vwap=empty_vwap, columns=cols, threads=threads)
                assert_subset(full, got, cols, f"{source} seed={seed} threads={threads} {cols}")
            # the close without trades: the same where both have the bucket
            alone = lobfast.aggregate(src, None, every=every, columns=["mid_close"], threads=threads)
            at = np.searchsorted(full.ts, alone.ts)
            assert (full.ts[at] == alone.ts).all()
            assert same_bits(alone["mid_close"], full["mid_close"][at])


# Time bars check the rows as they read them, a block of buckets at a time, and each range of
# buckets on its thread: a bad row anywhere is refused and named as the checks before the fill
# name it, whichever columns are asked for (some read no book row, some no trade).
CHECKED_SUBSETS = [None, CLOSE_ONLY, ["vwap", "volume"], ["mid_close"], ["updates"], ["trades"], ["mid_high"], []]


def test_time_bars_name_a_bad_row_wherever_the_fill_meets_it():
    n, m = 1_200_000, 700_000
    ts, tts = np.arange(n, dtype=np.int64) * 10, np.arange(m, dtype=np.int64) * 17
    ts[300_000:330_000] = ts[300_000]  # a burst: blocks the dense pass leaves to the gallop
    px, tpx, q, side = np.full((n, 1), 100.0), np.full(m, 100.0), np.ones(m), np.ones(m, np.int8)

    def bars(ts=ts, tts=tts, tpx=tpx, q=q, side=side, threads=2, columns=None, out=None):
        return _core.aggregate(
            ts, px, px, None, tts, tpx, q, side, every=100, threads=threads, columns=columns, out=out
        )

    good = bars(threads=1)
    assert len(good["ts"]) == 120_000
    cases = []
    for row in (2, 5_003, 315_000, 649_999, n - 2):  # in a dense block, inside the burst, at a range's end
        bad = ts.copy()
        bad[row] -= 11
        cases.append(
            (dict(ts=bad), rf"book ts must be sorted ascending: row {row - 1} \(\d+\) comes before row {row} ")
        )
    bad = ts.copy()
    bad[777_777] = np.iinfo(np.int64).min
    cases.append((dict(ts=bad), "book ts row 777777 is NaT"))
    bad = ts.copy()
    bad[500_000] = 2**63 - 1
    cases.append((dict(ts=bad), r"book ts row 500000 \(\d+ ns\) is outside 1970-01-01..2262-01-01"))
    bad = ts.copy()
    bad[650_000] = 5  # far back: the ranges' bisections land in the wrong place
    cases.append((dict(ts=bad), "book ts must be sorted ascending: row 649999 "))
    bad = ts.copy()
    bad[599_000:599_100] += 10**6  # in order but far ahead: on 2 threads, no range reads them
    cases.append((dict(ts=bad), "book ts must be sorted ascending: row 599099 "))
    bad = tts.copy()
    bad[[3, 600_001]] = [tts[3], 3]
    cases.append((dict(tts=bad), "trades ts must be sorted ascending: row 600000 "))
    for name, row, value, match in (
        ("tpx", 123_457, np.nan, "trades price at row 123457 is nan"),
        ("q", 654_321, -1.0, "trades qty at row 654321 is -1"),
        ("q", 20, np.inf, "trades qty at row 20 is inf"),
        ("side", 400_000, 7, "trades side at row 400000 is 7"),
    ):
        bad = dict(tpx=tpx, q=q, side=side)[name].copy()
        bad[row] = value
        cases.append(({name: bad}, match))
    for columns in CHECKED_SUBSETS:
        cols = good.keys() - {"ts"} if columns is None else columns
        out = {c: np.empty_like(good[c]) for c in ["ts", *cols]}
        for threads in (1, 2):
            for kwargs, match in cases:
                with pytest.raises(ValueError, match=match):
                    bars(**kwargs, threads=threads, columns=columns)
                with pytest.raises(ValueError, match=match):  # the same into arrays of the caller's
                    bars(**kwargs, threads=threads, columns=columns, out=out)
            got = bars(threads=threads, columns=columns, out=out)
            for c in ["ts", *cols]:
                assert got[c] is out[c] and same_bits(got[c], good[c]), (columns, threads, c)


@given(st.data())
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_time_bars_refuse_rows_out_of_order_whatever_their_times(data):
    # rows a few a bucket (the dense blocks), then some inside ones moved anywhere: the bars
    # are refused when a time is out of order or out of range, and made when not
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    n, every = data.draw(st.integers(2_000, 8_000)), data.draw(st.sampled_from([7, 49, 1_000]))
    span = every * n // 4
    ts, tts = np.sort(rng.integers(0, span, n)), np.sort(rng.integers(0, span, n // 3))
    moved = ts if data.draw(st.booleans()) else tts
    at = rng.integers(1, moved.size - 1, data.draw(st.integers(0, 3)))
    far = [np.iinfo(np.int64).min, -1, 2**62, np.iinfo(np.int64).max, 2**52, 2**52 + 1]
    moved[at] = [
        data.draw(st.sampled_from(far)) if rng.random() < 0.3 else moved[i] + rng.integers(-3 * every, 3 * every)
        for i in at
    ]
    q = np.ones(tts.size)
    columns = data.draw(st.sampled_from(CHECKED_SUBSETS))

    def ok(t):
        return (t >= 0).all() and (np.diff(t) >= 0).all()

    def bars():
        return _core.aggregate(
            ts,
            np.full((n, 1), 99.0),
            np.full((n, 1), 101.0),
            None,
            tts,
            q * 100,
            q,
            q.astype(np.int8),
            every=every,
            columns=columns,
        )

    if ok(ts) and ok(tts):
        assert len(bars()["ts"]) == (max(ts[-1], tts[-1]) // every - min(ts[0], tts[0]) // every + 1)
    else:
        with pytest.raises(ValueError, match="ts must be sorted ascending|is outside|is NaT"):
            bars()
