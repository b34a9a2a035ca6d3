"""lobfast.leakage_report: horizons across split boundaries and look-ahead features."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from conftest import USDM_BTC_0808

import lobfast
from lobfast import labels as L

SEC = 10**9


@pytest.fixture(scope="module")
def book():
    md = lobfast.read_binance(str(USDM_BTC_0808))
    return lobfast.reconstruct(md.depth, levels=10, every="100ms")


def ref_crossings(ts, known, bounds):
    rows = [i for i in range(len(ts)) if known[i] >= 0 and any(ts[i] < b <= known[i] for b in bounds)]
    return len(rows), (rows[0] if rows else None)


def test_real_book_flags_shifted_return_not_real_feature(book):
    mid = (book.bid_px[:, 0] + book.ask_px[:, 0]) / 2
    # 5 s horizons: at 1 s, level-1 imbalance really does predict the next ticks (|r| ~ 0.37)
    labels = L.combine(
        L.forward_return(book, [50, "5s"]), L.smoothed(book, 50), L.triple_barrier(book, "5s", upper=5e-4)
    )
    past = np.r_[np.full(50, np.nan), np.log(mid[50:] / mid[:-50])]  # known at t
    bid1, ask1 = book.bid_sz[:, 0], book.ask_sz[:, 0]
    feats = lobfast.FeatureFrame(
        book.ts,
        past_ret_50=past,
        imbalance=(bid1 - ask1) / (bid1 + ask1),
        leak=np.r_[past[50:], np.full(50, np.nan)],  # the future return, shifted back
    )
    mid_t = int(book.ts[len(book.ts) // 2])
    splits = [np.datetime64(mid_t, "ns"), str(np.datetime64(mid_t + 60 * SEC, "ns"))]
    r = lobfast.leakage_report(feats, labels, splits)
    assert not r.ok
    flagged = {f for f, _, _ in r.suspicious}
    assert flagged == {"leak"}, r
    assert r.correlations[("leak", "ret_50")] > 0.99
    assert abs(r.correlations[("past_ret_50", "ret_50")]) < 0.3
    assert ("leak", "tb_time_5s") not in r.correlations  # times are not returns
    bounds = np.array([mid_t, mid_t + 60 * SEC])
    np.testing.assert_array_equal(r.boundaries, bounds)
    purge = np.zeros(len(book.ts), bool)
    for name in labels:
        count, first = ref_crossings(book.ts, labels.known_at[name], bounds)
        c = r.crossings[name]
        assert (c.rows, c.first_row) == (count, first), name
        assert book.ts[first] < c.boundary <= labels.known_at[name][first]
        purge |= (labels.known_at[name] >= 0) & np.any(
            (book.ts[:, None] < bounds) & (bounds <= labels.known_at[name][:, None]), axis=1
        )
    np.testing.assert_array_equal(r.purge, purge)
    assert r.crossings["ret_5s"].rows == 2 * 50  # 5 s of 100 ms rows before each boundary
    text = str(r)
    assert "ret_5s" in text and "leak ~ ret_50" in text and "rows to purge" in text
    assert repr(r) == text


def test_pearson_and_threshold_and_ok():
    rng = np.random.default_rng(0)
    n = 2000
    ts = np.arange(n) * SEC
    mid = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    labels = L.forward_return((mid, ts), 1)
    noise = lobfast.FeatureFrame(ts, noise=rng.normal(size=n))
    r = lobfast.leakage_report(noise, labels, [])
    assert r.ok and not r.crossings and r.purge.sum() == 0
    assert "ok" in str(r)
    f = labels["ret_1"] + rng.normal(0, 2 * np.nanstd(labels["ret_1"]), n)  # corr ~ 0.45
    weak = lobfast.FeatureFrame(ts, weak=f)
    for method in ("pearson", "spearman"):
        assert lobfast.leakage_report(weak, labels, [], method=method).ok  # default 0.5
        assert not lobfast.leakage_report(weak, labels, [], method=method, threshold=0.3).ok
        assert lobfast.leakage_report(weak, labels, [], method=method, threshold=0.6).ok
    # pearson matches numpy on the rows where both are finite
    r = lobfast.leakage_report(weak, labels, [], method="pearson")
    both = np.isfinite(f) & np.isfinite(labels["ret_1"])
    assert r.correlations[("weak", "ret_1")] == pytest.approx(np.corrcoef(f[both], labels["ret_1"][both])[0, 1])
    r = lobfast.leakage_report(weak, labels, [])
    ranks = [pd.Series(a[both]).rank() for a in (f, labels["ret_1"])]  # average ranks for ties
    expected = ranks[0].corr(ranks[1])
    assert r.correlations[("weak", "ret_1")] == pytest.approx(expected)


def test_hand_made_crossings_and_time_forms():
    ts = np.arange(10) * SEC
    known = np.array([2, 3, 4, 5, 6, 7, 8, 9, -1, -1]) * SEC
    known[known < 0] = -1
    labels = lobfast.LabelFrame(ts, {"y": np.arange(10.0), "z": np.ones(10)}, known_at={"y": known})
    forms = [
        ([4 * SEC], {"unit": "ns"}),
        ([4_000_000], {"unit": "us"}),
        (np.array([4_000]), {"unit": "ms"}),
        ([np.int32(4)], {"unit": "s"}),
        ([4], {"unit": "rows"}),  # row 4 (ts 4 s) starts the next part
        (["1970-01-01T00:00:04"], {}),
        ([dt.datetime(1970, 1, 1, 0, 0, 4)], {}),
        ([pd.Timestamp(4 * SEC, tz="UTC")], {}),
        (np.array([4 * SEC], "datetime64[ns]"), {}),
    ]
    for b, kw in forms:
        r = lobfast.leakage_report(None, labels, b, **kw)
        # ts < 4 s <= known_at: rows 2 (known 4 s) and 3 (5 s)
        assert r.crossings["y"].rows == 2 and r.crossings["y"].first_row == 2
        assert r.crossings["y"].boundary == 4 * SEC
        assert r.unchecked == ["z"] and "z" in str(r)
        assert r.purge.tolist() == [False, False, True, True] + [False] * 6
    r = lobfast.leakage_report(None, labels, [9 * SEC, 0], unit="ns")  # unsorted, one before all rows
    assert r.crossings["y"].rows == 1 and r.crossings["y"].first_row == 7  # only row 7 reaches 9 s
    assert r.boundaries.tolist() == [0, 9 * SEC]


def test_integer_splits_need_a_unit():
    """Integers could be ns since the epoch or row indices: read as 1970 times, row numbers
    would check nothing and report ok."""
    ts = np.datetime64("2024-08-08T12:00", "ns").astype(np.int64) + np.arange(3000) * SEC
    labels = L.forward_return((np.linspace(100, 101, 3000), ts), "5s")
    for splits in ([1000, 2000], np.array([1000, 2000]), [np.int64(1000)], ["2024-08-08T12:30", 2000]):
        with pytest.raises(ValueError, match=r"integer \((1000|2000)\), which could be a time or a row.*unit="):
            lobfast.leakage_report(None, labels, splits)
    r = lobfast.leakage_report(None, labels, [1000, 2000], unit="rows")
    assert not r.ok and r.crossings["ret_5s"].rows == 10 and r.boundaries.tolist() == ts[[1000, 2000]].tolist()
    assert r.purge.sum() == 10 and r.purge[995:1000].all() and r.purge[1995:2000].all()
    assert lobfast.leakage_report(None, labels, ts[[1000, 2000]], unit="ns").purge.tolist() == r.purge.tolist()
    with pytest.raises(ValueError, match="split row 3000 is outside the labels' rows 0..2999"):
        lobfast.leakage_report(None, labels, [3000], unit="rows")
    with pytest.raises(ValueError, match="split row -1 is outside"):
        lobfast.leakage_report(None, labels, [-1], unit="rows")
    with pytest.raises(ValueError, match="unit must be one of 'ns', 'us', 'ms', 's', 'rows'"):
        lobfast.leakage_report(None, labels, [1000], unit="days")
    with pytest.raises(TypeError, match="unit='ns' takes integer splits, got '2024"):
        lobfast.leakage_report(None, labels, ["2024-08-08T12:30"], unit="ns")


def test_bad_input():
    ts = np.arange(5) * SEC
    labels = L.forward_return((np.arange(1.0, 6.0), ts), 1)
    with pytest.raises(ValueError, match="features have 4 rows, labels 5"):
        lobfast.leakage_report(lobfast.FeatureFrame(ts[:4], a=np.ones(4)), labels, [])
    with pytest.raises(ValueError, match="ts differs first at row 3"):
        lobfast.leakage_report(lobfast.FeatureFrame(ts + (ts >= 3 * SEC), a=np.ones(5)), labels, [])
    with pytest.raises(TypeError, match="features must be a FeatureFrame"):
        lobfast.leakage_report(labels, labels, [])
    with pytest.raises(TypeError, match="labels must be a LabelFrame"):
        lobfast.leakage_report(None, lobfast.Frame(ts, a=np.ones(5)), [])
    with pytest.raises(TypeError, match="list of boundary times"):
        lobfast.leakage_report(None, labels, {"train": (0, 1)})
    with pytest.raises(ValueError, match="cannot read"):
        lobfast.leakage_report(None, labels, ["yesterday"])
    with pytest.raises(ValueError, match="method must be"):
        lobfast.leakage_report(None, labels, [], method="kendall")
    with pytest.raises(ValueError, match="threshold must be"):
        lobfast.leakage_report(None, labels, [], threshold=1.5)


# ------------------------------------------------------------------------------ truncation test
from conftest import SPOT_BTC_0808  # noqa: E402

from lobfast.leakage import truncation_test  # noqa: E402

# every family of feature names, with parameters besides the defaults
EXTRA_FEATURES = ["wmid_1", "wmid_10", "imbalance_3", "bid_depth_2", "ofi_w3", "ofi_250ms", "vol_5", "vol_2s"]
EXTRA_FEATURES += ["intensity_500ms"]


@pytest.mark.parametrize("path", [USDM_BTC_0808, SPOT_BTC_0808], ids=["usdm", "spot"])
def test_every_built_in_feature_passes_the_truncation_test(path):
    """No built-in feature changes at a row when the data after it is removed: on the real
    recordings, from the book grid and the trades, and from quotes."""
    md = lobfast.read_binance(str(path))
    book = lobfast.reconstruct(md.depth, levels=10, every="100ms")
    spec = lobfast.microstructure.default_spec(10) + EXTRA_FEATURES
    rep = truncation_test(lambda b, t: lobfast.features(b, t, spec=spec), (book, md.trades), n=40, seed=1)
    assert rep.ok, str(rep)
    assert len(rep.columns) == len(spec) and len(rep.rows) == 40
    # the rows drawn include ones inside every rolling window's reach (rows >= 600 = 60 s)
    assert rep.rows.min() < 100 and rep.rows.max() > 1000
    q = truncation_test(lambda x: lobfast.features(x, spec=["mid", "spread", "ofi", "vol_10s"]), md.quotes, n=20)
    assert q.ok, str(q)


def test_truncation_test_catches_an_off_by_one_feature_the_correlation_screen_misses(book):
    """A feature holding the next row's mid change: a weak correlate of the label, so no
    threshold on the correlation separates it from honest features, but the truncation
    test flags it at every checked row where a next row exists."""
    mid = (book.bid_px[:, 0] + book.ask_px[:, 0]) / 2

    def leaky(b):
        m = (b.bid_px[:, 0] + b.ask_px[:, 0]) / 2
        honest = lobfast.features(b, spec=["imbalance_5"])
        return lobfast.Frame(b.ts, imbalance_5=honest["imbalance_5"], next_change=np.r_[np.diff(m), np.nan])

    rows = [5, 50, 500, len(mid) - 2]
    rep = truncation_test(leaky, book, rows=rows)
    assert not rep.ok and list(rep.leaks) == ["next_change"]
    leak = rep.leaks["next_change"]
    assert (leak.rows, leak.first_row) == (4, 5)
    assert leak.full == mid[6] - mid[5] and np.isnan(leak.truncated)
    assert "next_change: differs at 4 of 4 rows, first row 5" in str(rep)
    # labels look ahead by design: the test says so
    lab = truncation_test(lambda b: L.forward_return(b, 10), book, rows=rows[:3])
    assert set(lab.leaks) == set(L.forward_return(book, 10).keys())


def test_truncation_test_cuts_companion_tables_at_the_row_time(book):
    """Trades are cut at the time of the last row kept: a count of the trades in the next
    second is caught, one of the trades up to the row is not."""
    md = lobfast.read_binance(str(USDM_BTC_0808))

    def counts(b, t):
        past = np.searchsorted(t.ts, b.ts, side="right")
        ahead = np.searchsorted(t.ts, b.ts + SEC, side="right")
        return {"trades_so_far": past.astype(float), "trades_next_1s": (ahead - past).astype(float)}

    rep = truncation_test(counts, (book, md.trades), n=30)
    assert list(rep.leaks) == ["trades_next_1s"]


def test_truncation_test_bad_input(book):
    f = lambda b: lobfast.features(b, spec=["mid"])  # noqa: E731
    with pytest.raises(ValueError, match=r"rows must lie in 0\.\."):
        truncation_test(f, book, rows=[len(book)])
    with pytest.raises(ValueError, match="one row per data row"):
        truncation_test(lambda b: {"x": np.zeros(3)}, book, n=2)
    with pytest.raises(TypeError, match="must return a Frame"):
        truncation_test(lambda b: [1, 2], book, n=2)
    with pytest.raises(ValueError, match="n must be >= 1"):
        truncation_test(f, book, n=0)
