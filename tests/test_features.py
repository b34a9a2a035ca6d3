"""lobfast.features and lobfast.rolling against plain NumPy references, on real and random books."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import SPOT_BTC_0808, USDM_BTC_0808, interrupted, timed
from hypothesis import example, given, settings
from hypothesis import strategies as st

import lobfast
from lobfast import _core
from lobfast.microstructure import default_spec
from lobfast.rolling import rolling_std, rolling_sum

# --- references: the definitions, written the obvious way ------------------------------------


def ref_rolling(x, *, rows=0, span=0, ts=None, std=None):
    """Loop over rows; the window restarts after NaN and counts only once full."""
    out = np.full(len(x), np.nan)
    start = 0
    for i, v in enumerate(x):
        if np.isnan(v):
            start = i + 1
            continue
        if rows:
            if i - start + 1 < rows:
                continue
            w = x[i - rows + 1 : i + 1]
        elif span:
            if ts[i] - ts[start] < span:
                continue
            j = start
            while ts[j] <= ts[i] - span:
                j += 1
            w = x[j : i + 1]
        else:
            w = x[start : i + 1]
        if std is None:
            out[i] = w.sum()
        elif len(w) >= 2 and len(w) > std:
            out[i] = np.std(w, ddof=std)
    return out


def ref_ofi(bp, bs, ap, as_, valid):
    bp = np.where(np.isnan(bp), -np.inf, bp)
    ap = np.where(np.isnan(ap), np.inf, ap)
    e = np.full(bp.shape, np.nan)
    e[1:] = (
        np.where(bp[1:] >= bp[:-1], bs[1:], 0.0)
        - np.where(bp[1:] <= bp[:-1], bs[:-1], 0.0)
        - np.where(ap[1:] <= ap[:-1], as_[1:], 0.0)
        + np.where(ap[1:] >= ap[:-1], as_[:-1], 0.0)
    )
    both = np.zeros(len(valid), bool)
    both[1:] = valid[1:] & valid[:-1]
    e[~both] = np.nan
    return e


def ref_trade_flow(ts, valid, trades):
    n = len(ts)
    out = {k: np.full(n, np.nan) for k in ("buy_volume", "sell_volume", "signed_volume", "trade_count")}
    for i in range(1, n):
        if not valid[i]:
            continue
        sel = (trades.ts > ts[i - 1]) & (trades.ts <= ts[i])
        q, s = trades.qty[sel], trades.side[sel]
        out["buy_volume"][i] = q[s > 0].sum()
        out["sell_volume"][i] = q[s < 0].sum()
        out["signed_volume"][i] = q[s > 0].sum() - q[s < 0].sum()
        out["trade_count"][i] = sel.sum()
    return out


def ref_features(book, trades, names):
    c = book.columns
    bp, bs, ap, as_ = c["bid_px"], c["bid_sz"], c["ask_px"], c["ask_sz"]
    valid, ts = c["valid"], c["ts"]
    with np.errstate(all="ignore"):
        mid = (bp[:, 0] + ap[:, 0]) / 2
        ret = np.full(len(ts), np.nan)
        ret[1:] = np.log(mid[1:] / mid[:-1])
        ret[1:][~(valid[1:] & valid[:-1])] = np.nan
        ofi = ref_ofi(bp, bs, ap, as_, valid)
        changed = np.ones(len(ts))
        changed[1:] = np.where(valid[:-1] & (c["update_id"][1:] == c["update_id"][:-1]), 0.0, 1.0)
        out = {}
        for name in names:
            k = int(name.rsplit("_", 1)[1]) if re.search(r"_\d+$", name) else None
            if name == "mid":
                v = mid
            elif name == "microprice":
                v = (bp[:, 0] * as_[:, 0] + ap[:, 0] * bs[:, 0]) / (bs[:, 0] + as_[:, 0])
            elif name.startswith("wmid_"):
                bn = np.where(bs[:, :k] > 0, bp[:, :k] * bs[:, :k], 0).sum(1)
                an = np.where(as_[:, :k] > 0, ap[:, :k] * as_[:, :k], 0).sum(1)
                v = (bn / bs[:, :k].sum(1) + an / as_[:, :k].sum(1)) / 2
            elif name == "spread":
                v = ap[:, 0] - bp[:, 0]
            elif name == "spread_bps":
                v = (ap[:, 0] - bp[:, 0]) / mid * 1e4
            elif name.startswith("imbalance_"):
                b, a = bs[:, :k].sum(1), as_[:, :k].sum(1)
                v = (b - a) / (b + a)
            elif name.startswith("bid_depth_"):
                v = bs[:, :k].sum(1)
            elif name.startswith("ask_depth_"):
                v = as_[:, :k].sum(1)
            elif name == "ofi":
                v = ofi[:, 0]
            elif name.startswith("ofi_w"):
                v = ref_rolling(ofi[:, 0], rows=int(name[5:]))
            elif name == "ofi_cum":
                v = ref_rolling(ofi[:, 0])
            elif re.fullmatch(r"ofi_\d+", name):
                v = ofi[:, k - 1]
            elif name.startswith("ofi_"):
                v = ref_rolling(ofi[:, 0], span=lobfast.parse_duration(name[4:]), ts=ts)
            elif name == "ret":
                v = ret
            elif re.fullmatch(r"vol_\d+", name):
                v = ref_rolling(ret, rows=k, std=1)
            elif name.startswith("vol_"):
                v = ref_rolling(ret, span=lobfast.parse_duration(name[4:]), ts=ts, std=1)
            elif name.startswith("intensity_"):
                span = lobfast.parse_duration(name[10:])
                ch = np.where(valid, changed, np.nan)
                v = ref_rolling(ch, span=span, ts=ts) / (span / 1e9)
            else:
                v = ref_trade_flow(ts, valid, trades)[name]
            v = np.array(v, float)
            v[~valid] = np.nan
            out[name] = v
    return out


def assert_frame_matches(got, want, rtol=1e-9):
    assert list(got.keys()) == list(want)
    for name, w in want.items():
        g = got[name]
        scale = np.nanmax(np.abs(w)) if np.isfinite(w).any() else 1.0
        np.testing.assert_allclose(g, w, rtol=rtol, atol=1e-12 * max(scale, 1.0), equal_nan=True, err_msg=name)


# --- real data ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def usdm():
    md = lobfast.read_binance(USDM_BTC_0808)
    return md, lobfast.reconstruct(md.depth, levels=10)


def test_default_features_equal_reference_on_real_book(usdm):
    md, book = usdm
    f = lobfast.features(book, md.trades)
    assert isinstance(f, lobfast.FeatureFrame) and len(f) == len(book)
    assert list(f.keys()) == default_spec(10, True)
    assert np.array_equal(f.ts, book.ts)
    assert_frame_matches(f, ref_features(book, md.trades, list(f.keys())))


def test_grid_book_with_gaps_and_quotes(usdm):
    md, _ = usdm
    book = lobfast.reconstruct(md.depth, levels=5, every="100ms")
    # knock out a stretch: every feature NaN there, windows restart after it
    valid = book.valid.copy()
    valid[1000:1040] = False
    cols = book.columns | {"valid": valid}
    gapped = lobfast.BookSnapshots(**cols)
    spec = [*default_spec(5, True), "ofi_w3", "vol_500ms", "intensity_250ms", "wmid_2", "ofi_250ms"]
    f = lobfast.features(gapped, md.trades, spec=spec)
    assert_frame_matches(f, ref_features(gapped, md.trades, spec))
    assert np.isnan(f.to_numpy()[1000:1040]).all()
    assert np.isnan(f["vol_20"][1040 : 1040 + 20]).all() and np.isfinite(f["vol_20"][1061])
    q = lobfast.features(md.quotes, spec=["mid", "microprice", "spread", "imbalance_1", "ofi", "vol_20"])
    assert len(q) == len(md.quotes)
    one = lobfast.BookSnapshots(
        ts=md.quotes.ts,
        update_id=md.quotes.update_id,
        bid_px=md.quotes.bid_px[:, None],
        bid_sz=md.quotes.bid_qty[:, None],
        ask_px=md.quotes.ask_px[:, None],
        ask_sz=md.quotes.ask_qty[:, None],
        valid=np.ones(len(md.quotes), bool),
    )
    assert_frame_matches(q, ref_features(one, None, list(q.keys())))


def test_spot_book_and_conversions(tmp_path):
    md = lobfast.read_binance(SPOT_BTC_0808)
    book = lobfast.reconstruct(md.depth, levels=10)
    f = lobfast.features(book, md.trades, spec=["mid", "ofi", "imbalance_5", "trade_count"])
    assert_frame_matches(f, ref_features(book, md.trades, ["mid", "ofi", "imbalance_5", "trade_count"]))
    pdf = f.to_pandas()
    assert list(pdf.columns) == list(f.keys()) and np.shares_memory(pdf["mid"].to_numpy(), f["mid"])
    assert f.to_polars().columns == ["ts", *f.keys()]
    f.to_parquet(tmp_path / "f.parquet")
    back = lobfast.FeatureFrame.read_parquet(tmp_path / "f.parquet")
    assert type(back) is lobfast.FeatureFrame
    assert_frame_matches(back, {k: f[k] for k in f.keys()}, rtol=0)
    # the trades of the whole book are all counted once, except those at or before row 0
    assert np.nansum(f["trade_count"]) == np.sum((md.trades.ts > book.ts[0]) & (md.trades.ts <= book.ts[-1]))


# --- random books -----------------------------------------------------------------------------


@st.composite
def books(draw):
    n = draw(st.integers(0, 60))
    levels = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    # times from the epoch to near the last accepted one (2262-01-01)
    base = draw(st.sampled_from([10, 1_723_161_256_322_000_000, 9_214_646_400_000_000_000 - 10**11]))
    ts = base + np.cumsum(rng.choice([0, 1, 5, 100, 10**9], n)).astype(np.int64)
    mid = 100 + np.cumsum(rng.choice([-0.5, 0, 0.5], n))
    ticks = np.arange(levels) * 0.5
    bp = mid[:, None] - 0.25 - ticks
    ap = mid[:, None] + 0.25 + ticks
    bs = rng.choice([0.0, 0.5, 1.0, 3.0], (n, levels))
    as_ = rng.choice([0.0, 0.5, 1.0, 3.0], (n, levels))
    bp[bs == 0] = np.nan  # empty levels: NaN price and 0 size
    ap[as_ == 0] = np.nan
    valid = rng.random(n) > 0.15
    uid = np.cumsum(rng.integers(0, 2, n))
    book = lobfast.BookSnapshots(ts=ts, update_id=uid, bid_px=bp, bid_sz=bs, ask_px=ap, ask_sz=as_, valid=valid)
    m = draw(st.integers(0, 40))
    tts = np.sort(rng.integers(ts[0] - 10 if n else 0, (ts[-1] + 10) if n else 10, m)).astype(np.int64)
    trades = lobfast.Trades(
        ts=tts,
        local_ts=tts,
        price=np.full(m, 100.0),
        qty=rng.choice([0.1, 1.0, 2.5], m),
        side=rng.choice([-1, 0, 1], m).astype(np.int8),
        trade_id=np.arange(m),
    )
    return book, trades


SPEC_RANDOM = [
    "mid", "microprice", "wmid_1", "spread", "spread_bps", "imbalance_1", "bid_depth_1", "ask_depth_1", "ofi",
    "ofi_1", "ofi_w3", "ofi_cum", "ofi_1s", "ret", "vol_2", "vol_5", "vol_1s", "intensity_1s",
    *lobfast.microstructure.TRADE_COLUMNS,
]  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(books())
def test_random_books_equal_reference(bt):
    book, trades = bt
    spec = list(dict.fromkeys(SPEC_RANDOM + [f"ofi_{book.levels}", f"imbalance_{book.levels}", f"wmid_{book.levels}"]))
    before = {k: v.copy() for k, v in book.columns.items()}
    f = lobfast.features(book, trades, spec=spec)
    assert_frame_matches(f, ref_features(book, trades, spec))
    for k, v in book.columns.items():  # inputs are never modified
        assert np.array_equal(v, before[k], equal_nan=True)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(float("nan"))), max_size=80),
    st.integers(1, 9),
    st.integers(0, 2),
    st.sampled_from([1, 2, 3, 7, 50, 2**62]),
    st.sampled_from([0, 1_723_161_256_322_000_000, 9_214_646_400_000_000_000 - 1000]),
)
# a large value leaving the window: the sliding M2 cancels down to rounding noise
@example([370728.0, 0.0, 0.00390625], 2, 0, 1, 0)
@example([1e6, -1e6, 1e6, 1e-3, 2e-3, 3e-3], 3, 1, 2, 0)
def test_rolling_kernels_equal_reference(values, rows, ddof, span, base):
    x = np.array(values, float)
    ts = base + np.cumsum(np.arange(len(x)) % 4).astype(np.int64)
    dur = f"{span}ns"  # an int window is rows; a span is a duration
    np.testing.assert_allclose(rolling_sum(x, rows), ref_rolling(x, rows=rows), rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(
        rolling_std(x, rows, ddof=ddof), ref_rolling(x, rows=rows, std=ddof), rtol=1e-7, atol=1e-6
    )
    np.testing.assert_allclose(rolling_sum(x, dur, ts=ts), ref_rolling(x, span=span, ts=ts), rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(
        rolling_std(x, dur, ts=ts, ddof=ddof), ref_rolling(x, span=span, ts=ts, std=ddof), rtol=1e-7, atol=1e-6
    )


def test_rolling_matches_bottleneck_and_does_not_drift():
    bn = pytest.importorskip("bottleneck")
    rng = np.random.default_rng(7)
    x = rng.normal(0, 1e-4, 200_000) + 50.0  # a large mean stresses the variance update
    np.testing.assert_allclose(rolling_std(x, 100, ddof=0), bn.move_std(x, 100), rtol=1e-6)
    s = rolling_sum(x, 1000)
    np.testing.assert_allclose(s[-5:], [x[i - 999 : i + 1].sum() for i in range(len(x) - 5, len(x))], rtol=1e-12)


# --- bad input --------------------------------------------------------------------------------


def _book(n=5, **over):
    cols = dict(
        ts=np.arange(n, dtype=np.int64),
        update_id=np.arange(n),
        bid_px=np.full((n, 2), 99.0),
        bid_sz=np.ones((n, 2)),
        ask_px=np.full((n, 2), 101.0),
        ask_sz=np.ones((n, 2)),
        valid=np.ones(n, bool),
    )
    cols.update(over)
    return lobfast.BookSnapshots(**cols)


def test_bad_input_errors():
    with pytest.raises(ValueError, match=r"ts must be sorted.*row 2"):
        lobfast.features(_book(ts=np.array([0, 5, 3, 6, 7])))
    px = np.full((5, 2), 99.0)
    px[3, 1] = np.nan
    with pytest.raises(ValueError, match="row 3 level 2 holds a NaN price"):
        lobfast.features(_book(bid_px=px))
    sz = np.ones((5, 2))
    sz[1, 0] = -1
    with pytest.raises(ValueError, match="row 1 level 1"):
        lobfast.features(_book(ask_sz=sz))
    with pytest.raises(ValueError, match="unknown feature 'midd'"):
        lobfast.features(_book(), spec=["mid", "midd"])
    with pytest.raises(ValueError, match="imbalance_3.*levels 1..2"):
        lobfast.features(_book(), spec=["imbalance_3"])
    with pytest.raises(ValueError, match="twice"):
        lobfast.features(_book(), spec=["mid", "mid"])
    with pytest.raises(ValueError, match="need trades"):
        lobfast.features(_book(), spec=["buy_volume"])
    with pytest.raises(ValueError, match="at least 2 rows"):
        lobfast.features(_book(), spec=["vol_1"])
    with pytest.raises(ValueError, match="positive duration"):
        lobfast.features(_book(), spec=["vol_0s"])
    with pytest.raises(TypeError, match="list of feature names"):
        lobfast.features(_book(), spec="mid")
    with pytest.raises(TypeError, match="BookSnapshots or Quotes"):
        lobfast.features(np.zeros((5, 4)))
    labels = lobfast.LabelFrame(np.arange(5), {"ret_10": np.zeros(5)})
    with pytest.raises(TypeError, match="labels are targets"):
        lobfast.features(labels)
    with pytest.raises(TypeError, match="labels are targets"):
        lobfast.features(_book(), labels)
    bad_trades = lobfast.Trades(
        ts=np.array([3, 1]), local_ts=np.array([3, 1]), price=np.ones(2), qty=np.ones(2), side=np.ones(2, np.int8),
        trade_id=np.arange(2),
    )  # fmt: skip
    with pytest.raises(ValueError, match="trade ts must be sorted"):
        lobfast.features(_book(), bad_trades, spec=["trade_count"])
    nan_trades = lobfast.Trades(
        ts=np.array([1, 3]), local_ts=np.array([1, 3]), price=np.ones(2), qty=np.array([1.0, np.nan]),
        side=np.ones(2, np.int8), trade_id=np.arange(2),
    )  # fmt: skip
    with pytest.raises(ValueError, match="trade row 1 has qty nan"):
        lobfast.features(_book(), nan_trades, spec=["trade_count"])


def test_kernel_argument_errors():
    x = np.arange(5.0)
    with pytest.raises(ValueError, match="rows, expected 5"):
        _core.rolling_sum(x, span=3, ts=np.arange(4))
    with pytest.raises(ValueError, match="needs ts"):
        rolling_sum(x, "1s")
    with pytest.raises(ValueError, match="positive number of rows"):
        rolling_std(x, 0)
    with pytest.raises(ValueError, match="ts must be sorted"):
        rolling_sum(x, "3ns", ts=np.array([0, 2, 1, 3, 4]))
    with pytest.raises(ValueError, match="ddof"):
        rolling_std(x, 3, ddof=-1)
    with pytest.raises(TypeError, match="x must be an array of float64"):
        rolling_sum(np.array(["a", "b"]), 1)
    with pytest.raises(ValueError, match="1-D"):
        rolling_sum(np.zeros((2, 2)), 1)
    with pytest.raises(ValueError, match="unknown feature kernel"):
        _core.features(
            *(_book().columns[k] for k in ("ts", "valid", "update_id", "bid_px", "bid_sz", "ask_px", "ask_sz")),
            [("nope", 0)],
        )


def test_empty_and_edge_books():
    empty = lobfast.features(lobfast.BookSnapshots.empty())
    assert len(empty) == 0 and "mid" in empty
    one = lobfast.features(_book(1), spec=["mid", "ofi", "vol_20", "ofi_cum"])
    assert one["mid"][0] == 100.0 and np.isnan(one["ofi"][0]) and np.isnan(one["vol_20"][0])
    # a window longer than the data is all NaN, never an error
    assert np.isnan(lobfast.features(_book(5), spec=["vol_100", "ofi_1h"]).to_numpy()).all()


def test_frames_refuse_what_they_cannot_hold():
    with pytest.raises(ValueError, match="beyond int64"):
        lobfast.Frame(np.arange(2), {"n": np.array([1, 2**63], np.uint64)})
    with pytest.raises(ValueError, match="2 rows like ts"):
        lobfast.Frame(np.arange(2), {"x": np.zeros(3)})
    with pytest.raises(TypeError, match="numeric"):
        lobfast.Frame(np.arange(2), {"x": np.array(["a", "b"])})
    with pytest.raises(ValueError, match="not labels"):
        lobfast.LabelFrame(np.arange(2), {"y": np.zeros(2)}, known_at={"z": np.zeros(2, np.int64)})
    assert lobfast.Frame(np.arange(2), {"n": np.array([1, 2], np.uint8)})["n"].dtype == np.int64


def test_ctrl_c_stops_a_time_window_std():
    # a window that never slides: the exact rebuilds make the work grow as n^2
    def call(n):
        return lambda: rolling_std(np.tile([1.0, 2.0, 4.0, 3.0], n // 4), "1000s", ts=np.arange(n, dtype=np.int64))

    quarter = timed(call(3_000_000))  # a quarter of the work of 6M rows
    assert interrupted(call(6_000_000), 0.3) < quarter


# --- out= and subsets ------------------------------------------------------------------------


def test_rolling_out_writes_in_place():
    rng = np.random.default_rng(5)
    x = rng.normal(0, 1, 3000)
    x[[100, 1500]] = np.nan
    ts = np.cumsum(rng.integers(0, 3, len(x))).astype(np.int64)
    for fn, kw in ((rolling_std, {"ddof": 0}), (rolling_std, {}), (rolling_sum, {})):
        for window in (1, 20, 300, "40ns"):
            if fn is rolling_std and window == 1:
                continue
            fresh = fn(x, window, ts=ts, **kw)
            out = np.full(len(x), 7.5)
            got = fn(x, window, ts=ts, out=out, **kw)
            assert got is out
            np.testing.assert_array_equal(out, fresh)  # bit for bit, NaN where NaN


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(float("nan"))), max_size=600), st.integers(2, 40))
def test_rolling_std_out_equals_fresh(values, rows):
    x = np.array(values, float)
    out = np.empty(len(x))
    assert rolling_std(x, rows, out=out) is out
    np.testing.assert_array_equal(out, rolling_std(x, rows))


def test_a_freed_large_output_is_reused_and_a_live_one_never():
    """Large outputs freed (>= 4 MiB, 256 MiB in all, core/blocks.h) are kept for the next of
    about their size, the last freed first: a loop of calls pays no page faults; an output
    still referenced is never handed out again, and every value of a reused block is written
    anew."""
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal(1_000_000).cumsum(), rng.standard_normal(1_000_000)
    first = rolling_std(x, 50)
    expect_x, expect_y = first.copy(), rolling_std(y, 7).copy()
    address = first.__array_interface__["data"][0]
    first[:] = 123.0  # garbage a reused block must not show
    del first
    again = rolling_std(y, 7)
    assert again.__array_interface__["data"][0] == address  # the freed block, reused
    np.testing.assert_array_equal(again, expect_y)
    live = rolling_std(x, 50)  # `again` is alive: a block of its own
    assert live.__array_interface__["data"][0] != address
    np.testing.assert_array_equal(live, expect_x)
    np.testing.assert_array_equal(again, expect_y)
    del again, live
    bigger = rolling_std(np.concatenate([x, x]), 50)  # larger than the kept block: a new one
    np.testing.assert_array_equal(bigger[:1_000_000], expect_x)


def test_rolling_bad_out():
    x = np.arange(10.0)
    ro = np.zeros(10)
    ro.flags.writeable = False
    cases = [
        (np.zeros(10, np.float32), r"out must be a writable 1-D.*float64 array \(got float32"),
        (np.zeros(11), "out has 11 rows, expected 10"),
        (ro, "out.*read-only"),
        (np.zeros(20)[::2], "out.*not contiguous"),
        (np.zeros((10, 1)), "out must be a writable 1-D"),
        ([0.0] * 10, "out must be a NumPy array"),
        (x, "out shares memory with x"),  # the window reads x behind the row it writes
        (np.zeros(20)[5:15], None),  # a view of another array is fine
    ]
    for out, match in cases:
        if match is None:
            assert rolling_std(x, 3, out=out) is out
            continue
        for fn in (rolling_std, rolling_sum):
            with pytest.raises(ValueError, match=match):
                fn(x, 3, out=out)
    base = np.arange(20.0)
    with pytest.raises(ValueError, match="shares memory with x"):  # overlapping views
        rolling_sum(base[:10], 3, out=base[5:15])
    ts = np.arange(10, dtype=np.int64)
    with pytest.raises(ValueError, match="shares memory with ts"):
        rolling_sum(x, "3ns", ts=ts, out=ts.view(np.float64))
    np.testing.assert_array_equal(x, np.arange(10.0))


def test_ctrl_c_stops_a_time_window_std_into_out():
    def call(n):
        x, ts, out = np.tile([1.0, 2.0, 4.0, 3.0], n // 4), np.arange(n, dtype=np.int64), np.empty(n)
        return lambda: rolling_std(x, "1000s", ts=ts, out=out)

    quarter = timed(call(3_000_000))
    assert interrupted(call(6_000_000), 0.3) < quarter


def test_feature_subsets_equal_the_full_result(usdm):
    md, book = usdm
    full = lobfast.features(book, md.trades)
    names = list(full.keys())
    rng = np.random.default_rng(11)
    subsets = [[n] for n in names] + [list(rng.choice(names, k, replace=False)) for k in (2, 5, 13) for _ in range(3)]
    for spec in subsets:
        sub = lobfast.features(book, md.trades, spec=spec)
        assert list(sub.keys()) == spec
        for name in spec:
            np.testing.assert_array_equal(sub[name], full[name], err_msg=f"{name} in {spec}")


def test_features_compute_only_what_the_spec_needs(monkeypatch):
    calls = {"features": [], "trade_flow": []}
    real_features, real_flow = _core.features, _core.trade_flow

    def spy_features(*args):
        calls["features"].append([(k, p) for k, p, *_ in args[7]])
        return real_features(*args)

    def spy_flow(*args, **kw):
        calls["trade_flow"].append([a is not None for a in kw["out"]])
        return real_flow(*args, **kw)

    monkeypatch.setattr(_core, "features", spy_features)
    monkeypatch.setattr(_core, "trade_flow", spy_flow)
    book = _book(50)
    trades = lobfast.Trades(
        ts=np.array([1, 3]), local_ts=np.array([1, 3]), price=np.ones(2), qty=np.ones(2), side=np.ones(2, np.int8),
        trade_id=np.arange(2),
    )  # fmt: skip
    lobfast.features(book, trades, spec=["vol_20"])
    lobfast.features(book, trades, spec=["mid", "sell_volume"])
    lobfast.features(book, trades, spec=["ofi", "ofi_1", "ofi_w10"])
    lobfast.features(book, trades, spec=["buy_volume"])
    assert calls["features"] == [[("ret", 0)], [("mid", 0)], [("ofi", 1)]]
    assert calls["trade_flow"] == [[False, True, False, False], [True, False, False, False]]


def test_features_out_writes_in_place(usdm):
    md, book = usdm
    first = lobfast.features(book, md.trades)
    again = lobfast.features(book, md.trades, out=first)
    fresh = lobfast.features(book, md.trades)
    for name in fresh.keys():
        assert again[name] is first[name]
        np.testing.assert_array_equal(again[name], fresh[name], err_msg=name)
    spec = ["ofi_1", "ofi", "vol_10s", "intensity_1s", "trade_count"]
    out = {name: np.full(len(book), 7.5) for name in spec}
    got = lobfast.features(book, md.trades, spec=spec, out=out)
    for name in spec:
        assert got[name] is out[name]
        np.testing.assert_array_equal(out[name], fresh[name], err_msg=name)
    # new columns are separate arrays (each freed on its own, back to the process heap)
    cols = list(fresh.columns.values())
    assert not any(np.may_share_memory(a, b) for i, a in enumerate(cols) for b in cols[i + 1 :])


def test_features_bad_out():
    book = _book(5)
    ro = np.zeros(5)
    ro.flags.writeable = False
    ts_as_float = book.columns["ts"].view(np.float64)
    shared = np.zeros(5)
    cases = [
        ({"mid": np.zeros(5, np.float32)}, r"out\['mid'\].*float64.*float32"),
        ({"mid": np.zeros(4)}, r"out\['mid'\] has 4 rows"),
        ({"mid": ro}, r"out\['mid'\].*read-only"),
        ({"mid": np.zeros(10)[::2]}, r"out\['mid'\].*not contiguous"),
        ({"spread": np.zeros(5)}, "out has no column 'mid'"),
        ({"mid": ts_as_float}, r"out\['mid'\] shares memory with ts"),
        ({"mid": shared, "spread": shared}, r"out\['mid'\] and out\['spread'\] share memory"),
        ([np.zeros(5)], "out= takes a dict"),
    ]
    for out, match in cases:
        spec = ["mid", "spread"] if isinstance(out, list) or "spread" in out else ["mid"]
        with pytest.raises(ValueError, match=match):
            lobfast.features(book, spec=spec, out=out)
    vol = np.zeros(4)
    with pytest.raises(ValueError, match=r"out\['vol_2'\] has 4 rows"):
        lobfast.features(book, spec=["vol_2"], out={"vol_2": vol})


def test_ctrl_c_stops_features_into_out():
    # returns cycling with period 4 under a window that never slides: n^2 exact rebuilds
    def call(n):
        mid = np.tile([1.0, 2.0, 4.0, 3.0], n // 4).reshape(-1, 1)
        book = lobfast.BookSnapshots(
            ts=np.arange(n, dtype=np.int64), update_id=np.arange(n), bid_px=mid, bid_sz=np.ones((n, 1)),
            ask_px=mid, ask_sz=np.ones((n, 1)), valid=np.ones(n, bool),
        )  # fmt: skip
        out = {"vol_1000s": np.empty(n)}
        return lambda: lobfast.features(book, spec=["vol_1000s"], out=out)

    quarter = timed(call(3_000_000))  # a quarter of the work of 6M rows: ~1.5 s here
    assert interrupted(call(6_000_000), 0.3) < quarter


# --- threads ----------------------------------------------------------------------------------


def _big_book(n=150_000, seed=5):
    """A book long enough to be split over threads, with gaps, empty levels and flat stretches."""
    rng = np.random.default_rng(seed)
    ts = 1_723_161_600_000_000_000 + np.cumsum(rng.choice([0, 1, 10**6, 10**8, 10**9], n)).astype(np.int64)
    mid = 100 + np.cumsum(rng.choice([-0.5, 0, 0, 0.5], n))
    steps = np.arange(3) * 0.5
    bp, ap = mid[:, None] - 0.25 - steps, mid[:, None] + 0.25 + steps
    bs, as_ = rng.choice([0.0, 0.5, 1.0, 3.0], (n, 3)), rng.choice([0.0, 0.5, 1.0, 3.0], (n, 3))
    bp[bs == 0] = np.nan
    ap[as_ == 0] = np.nan
    valid = rng.random(n) > 0.001
    uid = np.cumsum(rng.integers(0, 2, n))
    book = lobfast.BookSnapshots(ts=ts, update_id=uid, bid_px=bp, bid_sz=bs, ask_px=ap, ask_sz=as_, valid=valid)
    m = n // 3
    tts = np.sort(rng.integers(ts[0], ts[-1], m)).astype(np.int64)
    trades = lobfast.Trades(
        ts=tts, local_ts=tts, price=np.full(m, 100.0), qty=rng.choice([0.1, 1.0], m),
        side=rng.choice([-1, 0, 1], m).astype(np.int8), trade_id=np.arange(m),
    )  # fmt: skip
    return book, trades


def _tiled(book, trades, copies):
    """The real book and its trades repeated `copies` times, each copy later by the span."""
    step = int(book.ts[-1] - book.ts[0]) + 10**9
    shift = lambda ts, k: np.tile(ts, k) + np.repeat(np.arange(k, dtype=np.int64) * step, len(ts))  # noqa: E731
    c = book.columns
    tiled = lobfast.BookSnapshots(
        ts=shift(c["ts"], copies), update_id=shift(c["update_id"], copies), valid=np.tile(c["valid"], copies),
        **{k: np.tile(c[k], (copies, 1)) for k in ("bid_px", "bid_sz", "ask_px", "ask_sz")},
    )  # fmt: skip
    t = trades
    tr = lobfast.Trades(
        ts=shift(t.ts, copies), local_ts=shift(t.local_ts, copies), price=np.tile(t.price, copies),
        qty=np.tile(t.qty, copies), side=np.tile(t.side, copies), trade_id=np.arange(len(t.ts) * copies),
    )  # fmt: skip
    return tiled, tr


def test_features_on_threads_equal_one_thread(usdm):
    md, real = usdm
    big, trades = _big_book()
    for book, tr in (_tiled(real, md.trades, 12), (big, trades)):
        one = lobfast.features(book, tr, threads=1)
        assert len(book) > 2 * 32_768  # split into ranges, so the threads have work
        for threads in (2, 3, 8):
            got = lobfast.features(book, tr, threads=threads)
            for name in one.keys():  # bit for bit, NaN where NaN
                assert got[name].tobytes() == one[name].tobytes(), (threads, name)
            again = lobfast.features(book, tr, threads=threads, out=got)
            for name in one.keys():
                assert again[name].tobytes() == one[name].tobytes(), (threads, name)
    with pytest.raises(ValueError, match="threads"):
        lobfast.features(real, threads=0)


def test_features_on_threads_report_the_first_bad_row():
    # two broken rows in different ranges: every thread count names the first, as one does
    book, _ = _big_book(120_000)
    c = dict(book.columns)
    px = c["bid_px"].copy()
    for r in (100_000, 40_000):
        px[r, 0], c["valid"][r] = np.nan, True
    c["bid_sz"] = c["bid_sz"].copy()
    c["bid_sz"][[40_000, 100_000], 0] = 1.0
    bad = lobfast.BookSnapshots(**{**c, "bid_px": px})
    for threads in (1, 2, 4, 4, 4):
        with pytest.raises(ValueError, match=r"^row 40000 level 1 holds a NaN price"):
            lobfast.features(bad, spec=["mid", "ofi_10s"], threads=threads)


def test_ctrl_c_stops_features_on_threads():
    # the slow windows of test_ctrl_c_stops_features_into_out, two at a time: the stop reaches
    # the window on the other thread too, and the calling thread's wait
    n = 4_000_000
    mid = np.tile([1.0, 2.0, 4.0, 3.0], n // 4).reshape(-1, 1)
    book = lobfast.BookSnapshots(
        ts=np.arange(n, dtype=np.int64), update_id=np.arange(n), bid_px=mid, bid_sz=np.ones((n, 1)),
        ask_px=mid, ask_sz=np.ones((n, 1)), valid=np.ones(n, bool),
    )  # fmt: skip
    for spec in (["vol_1000s", "vol_999s"], ["vol_1000s", "ofi_w10"]):
        took = interrupted(lambda spec=spec: lobfast.features(book, spec=spec, threads=2), 0.3)
        assert took < 2.0, spec


def test_rolling_many_and_thread_arguments():
    x, ts = np.arange(5.0), np.arange(5, dtype=np.int64)
    a, b = np.empty(5), np.empty(5)
    _core.rolling_many([(x, 2, 0, None, -1, a, "a"), (x, 0, 3, ts, 1, b, "b")], 2)
    np.testing.assert_array_equal(a, lobfast.rolling_sum(x, 2))
    np.testing.assert_array_equal(b, lobfast.rolling_std(x, "3ns", ts=ts))
    with pytest.raises(ValueError, match="a must be given"):
        _core.rolling_many([(x, 2, 0, None, -1, None, "a")])
    with pytest.raises(ValueError, match=r"shares memory with (x of )?[ab]\b"):
        _core.rolling_many([(x, 2, 0, None, -1, a, "a"), (x, 3, 0, None, -1, a, "b")])
    with pytest.raises(ValueError, match=r"shares memory with (x of )?[ab]\b"):
        _core.rolling_many([(x, 2, 0, None, -1, a, "a"), (a, 3, 0, None, -1, b, "b")])
    with pytest.raises(ValueError, match="threads"):
        _core.rolling_many([], 0)
    with pytest.raises(ValueError, match="threads"):
        _core.trade_flow(ts, np.ones(5, bool), ts, x, np.ones(5, np.int8), threads=1025)
    with pytest.raises(ValueError, match="ts must be sorted"):
        _core.rolling_many([(x, 0, 3, ts[::-1].copy(), 1, b, "b")], 2)


def test_new_columns_reuse_freed_blocks():
    # kernels' new columns (lobfast.reading.new_column) come from lobfast's kept blocks: a
    # freed large one serves the next of about its size, never one still in use
    from lobfast.reading import new_column

    a = new_column(1_000_000, np.float64)
    address = a.__array_interface__["data"][0]
    a[:] = 1.5
    del a
    b = new_column(900_000, np.int64)  # about the size: the freed block, as int64
    assert b.__array_interface__["data"][0] == address and b.dtype == np.int64 and len(b) == 900_000
    c = new_column(1_000_000, np.float64)
    assert c.__array_interface__["data"][0] != address
    assert new_column(10, np.int8).dtype == np.int8 and len(new_column(0, np.float64)) == 0
    for bad in ((-1, "d"), (5, "f")):
        with pytest.raises(ValueError, match="empty"):
            _core.empty(*bad)
    _core.release_kept()


def test_trade_flow_keeps_the_bits_of_an_ordered_sum():
    # sizes of -0.0 and 0.0 and sides of every kind: each row's buy (sell) volume is the sum,
    # in order, of its interval's buy (sell) sizes; a size of the other side adds nothing
    rng = np.random.default_rng(4)
    n, m = 3000, 20000
    ts = np.sort(rng.integers(0, 10**6, n)).astype(np.int64)
    tts = np.sort(rng.integers(0, 10**6, m)).astype(np.int64)
    qty = rng.choice([-0.0, 0.0, 1e-300, 0.001, 0.1, 3.0, 1e300], m)
    side = rng.integers(-1, 2, m).astype(np.int8)
    valid = np.ones(n, bool)
    for threads in (1, 2):
        buy, sell = np.empty(n), np.empty(n)
        _core.trade_flow(ts, valid, tts, qty, side, out=(buy, sell, None, None), threads=threads)
        want = {1: np.full(n, np.nan), -1: np.full(n, np.nan)}
        j = np.searchsorted(tts, ts, side="right")
        for i in range(1, n):
            for s in (1, -1):
                acc = 0.0
                for t in range(j[i - 1], j[i]):
                    acc += qty[t] if side[t] == s else 0.0
                want[s][i] = acc
        assert buy.tobytes() == want[1].tobytes(), threads
        assert sell.tobytes() == want[-1].tobytes(), threads
