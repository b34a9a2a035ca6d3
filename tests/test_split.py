"""lobfast.split: chronological splits and walk-forward folds, purged and embargoed."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lobfast
from lobfast import labels as L
from lobfast import split as S

SEC = 10**9
TS10 = np.arange(10, dtype=np.int64) * SEC  # one row a second


def parts(s):
    return s.train.tolist(), s.val.tolist(), s.test.tolist()


# ------------------------------------------------------------------------------ reference
def reference(ts, usable, bounds, known, emb_rows=0, emb_ns=0):
    """Row by row: which part each usable row lands in, or why it is dropped."""
    out = [[] for _ in range(len(bounds) + 1)]
    counts = {"unlabelled": 0, "purged": 0, "embargoed": 0}
    for i in usable:
        p = sum(b <= ts[i] for b in bounds)
        if known is not None and known[i] < 0:
            counts["unlabelled"] += 1
            continue
        if known is not None and p < len(bounds) and known[i] >= bounds[p]:
            counts["purged"] += 1
            continue
        if p > 0:
            b = bounds[p - 1]
            first = next(j for j in range(len(ts)) if ts[j] >= b)
            if (emb_ns and ts[i] < b + emb_ns) or (emb_rows and i < first + emb_rows):
                counts["embargoed"] += 1
                continue
        out[p].append(int(i))
    return out, counts


def assert_honest(s, ts, known):
    """No kept row's label reaches into a later part; leakage_report agrees."""
    b = s.boundaries
    assert np.all(np.diff(b) >= 0)
    for name, idx in (("train", s.train), ("val", s.val), ("test", s.test)):
        assert idx.dtype == np.int64 and np.all(np.diff(idx) > 0), name
    assert np.all(ts[s.train] < b[0])
    assert np.all(ts[s.test] >= b[-1])
    if len(b) == 2:
        assert np.all((ts[s.val] >= b[0]) & (ts[s.val] < b[1]))
    else:
        assert len(s.val) == 0
    assert not set(s.train.tolist()) & set(s.val.tolist()) | set(s.train.tolist()) & set(s.test.tolist())
    if known is None:
        return
    assert np.all(known[s.train] >= 0) and np.all(known[s.train] < b[0])
    if len(b) == 2:
        assert np.all(known[s.val] >= 0) and np.all(known[s.val] < b[1])
    kept = s.rows
    kept.sort()
    lf = lobfast.LabelFrame(ts[kept], {"y": np.zeros(len(kept))}, {"y": known[kept]})
    assert lobfast.leakage_report(None, lf, s).ok
    assert lobfast.leakage_report(None, lf, s.boundaries, unit="ns").ok


# ------------------------------------------------------------------------------ chronological by hand
def test_horizon_of_two_rows_purges_exactly_these_rows():
    s = S.chronological(TS10, (0.4, 0.3, 0.3), known_at=2)
    assert s.boundaries.tolist() == [4 * SEC, 7 * SEC]
    # train 0-3: rows 2, 3 see row 4+; val 4-6: rows 5, 6 see row 7+; test 7-9: 8, 9 have no label
    assert parts(s) == ([0, 1], [4], [7])
    assert (s.purged, s.embargoed, s.unlabelled) == (4, 0, 2)
    same = S.chronological(TS10, (0.4, 0.3, 0.3), known_at="2s")
    assert parts(same) == parts(s) and same.purged == 4
    assert_honest(s, TS10, np.r_[TS10[2:], -1, -1])


def test_no_known_at_means_no_purge():
    s = S.chronological(TS10)
    assert parts(s) == ([0, 1, 2, 3, 4, 5], [6, 7], [8, 9])
    assert (s.purged, s.embargoed, s.unlabelled) == (0, 0, 0)
    assert "train 6, val 2, test 2 rows" in repr(s) and "1970-01-01T00:00:06" in repr(s)


@pytest.mark.parametrize("embargo", [1, "1s", dt.timedelta(seconds=1), np.timedelta64(1, "s")])
def test_embargo_one_row_or_one_second(embargo):
    s = S.chronological(TS10, known_at=None, embargo=embargo)
    assert parts(s) == ([0, 1, 2, 3, 4, 5], [7], [9])
    assert s.embargoed == 2


def test_embargo_rows_and_time_differ_on_irregular_rows():
    ts = (np.array([0, 1, 2, 3, 4, 5, 6, 6.5, 7, 9]) * SEC).astype(np.int64)
    assert S.chronological(ts, (0.6, 0.4), embargo=1).test.tolist() == [7, 8, 9]
    assert S.chronological(ts, (0.6, 0.4), embargo=2).test.tolist() == [8, 9]
    assert S.chronological(ts, (0.6, 0.4), embargo="1s").test.tolist() == [8, 9]  # 6.0 and 6.5 < 7
    assert S.chronological(ts, (0.6, 0.4), embargo="1.5s").test.tolist() == [9]


def test_unknown_labels_are_counted_apart_from_purged():
    known = TS10 + SEC // 2  # known half a second later: crosses nothing
    known[[1, 6, 9]] = -1
    known[5] = 6 * SEC  # exactly at the val boundary: crosses
    s = S.chronological(TS10, known_at=known)
    assert parts(s) == ([0, 2, 3, 4], [7], [8])
    assert (s.purged, s.unlabelled) == (1, 3)
    assert_honest(s, TS10, known)


def test_labelframe_with_two_columns_purges_the_union():
    mid = 100 + np.cumsum(np.random.default_rng(3).normal(0, 0.1, 10))
    lf = L.combine(L.forward_return((mid, TS10), 1), L.smoothed((mid, TS10), 3))
    s = S.chronological(TS10, known_at=lf)
    # smooth_3 is known 3 rows ahead: as a horizon of 3 rows
    h3 = S.chronological(TS10, known_at=3)
    assert parts(s) == parts(h3) == ([0, 1, 2], [], [])
    assert (s.purged, s.unlabelled) == (h3.purged, h3.unlabelled) == (4, 3)
    only_ret = S.chronological(TS10, known_at=lf[["ret_1"]])
    assert parts(only_ret) == ([0, 1, 2, 3, 4], [6], [8])
    # an invalid row makes its labels unknown: it is unlabelled, not purged
    valid = np.ones(10, bool)
    valid[2] = False
    lf2 = L.forward_return((mid, TS10), 1, valid=valid)
    s2 = S.chronological(TS10, known_at=lf2)
    assert parts(s2) == ([0, 3, 4], [6], [8]) and s2.unlabelled == 3  # rows 1, 2 (touch row 2) and 9
    assert_honest(s2, TS10, lf2.known_at["ret_1"])


def test_rows_mask_and_index_array():
    mask = np.ones(10, bool)
    mask[:2] = False  # e.g. the first rows without a full feature window
    s = S.chronological(TS10, (0.5, 0.5), rows=mask)
    assert parts(s) == ([2, 3, 4, 5], [], [6, 7, 8, 9])  # cut at half of the 8 usable rows
    s2 = S.chronological(TS10, (0.5, 0.5), rows=np.arange(2, 10))
    assert parts(s2) == parts(s)
    with pytest.raises(ValueError, match="outside"):
        S.chronological(TS10, rows=[0, 10])
    with pytest.raises(ValueError, match="one entry per row"):
        S.chronological(TS10, rows=mask[:5])
    with pytest.raises(ValueError, match="no usable rows"):
        S.chronological(TS10, rows=np.zeros(10, bool))


def test_tied_times_stay_in_one_part_and_datetime64():
    ts = np.array([0, 1, 2, 3, 3, 3, 4, 5, 6, 7], dtype=np.int64) * SEC
    s = S.chronological(ts.view("datetime64[ns]"), (0.4, 0.6))
    assert s.boundaries.tolist() == [3 * SEC]
    assert parts(s) == ([0, 1, 2], [], [3, 4, 5, 6, 7, 8, 9])


@pytest.mark.parametrize(
    ("fractions", "match"),
    [
        ((0.6, 0.2, 0.3), "sum to 1"),
        ((0.7, 0.4, -0.1), "positive"),
        ((1.0,), "3 \\(train, val, test\\) or 2"),
        ((0.25, 0.25, 0.25, 0.25), "or 2"),
        ((0.5, float("nan"), 0.5), "positive"),
    ],
)
def test_fraction_errors(fractions, match):
    with pytest.raises(ValueError, match=match):
        S.chronological(TS10, fractions)


def test_input_errors():
    bad = TS10.copy()
    bad[[4, 5]] = bad[[5, 4]]
    with pytest.raises(ValueError, match="row 5 .* earlier than row 4"):
        S.chronological(bad)
    with pytest.raises(ValueError, match="known_at has 3 rows"):
        S.chronological(TS10, known_at=TS10[:3])
    with pytest.raises(ValueError, match="same ts"):
        S.chronological(TS10 + 1, known_at=L.forward_return((np.ones(10), TS10), 1))
    with pytest.raises(ValueError, match="known_at"):
        S.chronological(TS10, known_at=True)
    with pytest.raises(ValueError, match="positive"):
        S.chronological(TS10, known_at=0)
    with pytest.raises(ValueError, match="embargo"):
        S.chronological(TS10, embargo=-1)
    with pytest.raises(ValueError, match="embargo"):
        S.chronological(TS10, embargo="soon")
    with pytest.raises(TypeError, match="ts must be"):
        S.chronological(TS10.astype(float))


# ------------------------------------------------------------------------------ walk-forward by hand
def test_walk_forward_expanding_default_sizes():
    ts = np.arange(100, dtype=np.int64) * SEC
    folds = S.walk_forward(ts, 4, known_at=3)
    assert len(folds) == 4
    tests = [f.test for f in folds]
    # (100 // 5) = 20 rows per block, ending at the last row; 3 rows purged before each block
    assert [t[0] for t in tests] == [20, 40, 60, 80]
    assert [len(t) for t in tests] == [20, 20, 20, 17]  # rows 97-99 have no label 3 rows ahead
    for k, f in enumerate(folds):
        assert f.train.tolist() == list(range(0, 20 * (k + 1) - 3))
        assert f.purged == 3 and len(f.val) == 0
        assert f.boundaries.tolist() == [20 * (k + 1) * SEC]
        assert_honest(f, ts, np.r_[ts[3:], -1, -1, -1])
    for a, b in zip(tests, tests[1:]):
        assert a[-1] < b[0]  # blocks move forward without overlap


def test_walk_forward_rolling_with_val_and_embargo():
    ts = np.arange(60, dtype=np.int64) * SEC
    folds = S.walk_forward(ts, 3, train=20, test=10, val=5, known_at="2s", embargo=1, expanding=False)
    for k, f in enumerate(folds):
        s = 25 + 10 * k  # first test row
        assert f.boundaries.tolist() == [(s - 5) * SEC, s * SEC]
        assert f.train.tolist() == list(range(s - 25, s - 7))  # 20 rows, the last 2 purged
        assert f.val.tolist() == list(range(s - 4, s - 2))  # first embargoed, last 2 purged
        assert f.test.tolist() == list(range(s + 1, s + 10))  # first embargoed
        assert (f.purged, f.embargoed) == (4, 2)
    assert folds[-1].test[-1] == 54  # rows after the last block are unused


def test_walk_forward_train_given_test_derived_and_fractions():
    ts = np.arange(50, dtype=np.int64)
    folds = S.walk_forward(ts, 4, train=10, val=0.1)
    # val 5 rows; (50 - 10 - 5) // 4 = 8 rows per block, at the end: first block at row 18
    assert [f.test.tolist()[:1] for f in folds] == [[18], [26], [34], [42]]
    assert all(len(f.test) == 8 and len(f.val) == 5 for f in folds)
    assert folds[0].train.tolist() == list(range(13))  # the 3 rows left over join the first window
    rolling = S.walk_forward(ts, 4, train=10, val=0.1, expanding=False)
    assert all(len(f.train) == 10 for f in rolling)
    assert rolling[2].train.tolist() == list(range(19, 29))
    frac = S.walk_forward(ts, 2, test=0.2)
    assert [len(f.test) for f in frac] == [10, 10] and frac[0].train.tolist() == list(range(30))


def test_walk_forward_errors():
    ts = np.arange(10, dtype=np.int64)
    with pytest.raises(ValueError, match="n_splits"):
        S.walk_forward(ts, 0)
    with pytest.raises(ValueError, match="too few"):
        S.walk_forward(ts, 10)
    with pytest.raises(ValueError, match="need 16 usable rows"):
        S.walk_forward(ts, 3, train=4, test=4)
    with pytest.raises(ValueError, match="no rows left to train on"):
        S.walk_forward(ts, 2, test=5)
    with pytest.raises(ValueError, match="fraction"):
        S.walk_forward(ts, 2, test=1.5)
    with pytest.raises(ValueError, match="at least 1"):
        S.walk_forward(ts, 2, train=0)


# ------------------------------------------------------------------------------ properties
@st.composite
def problems(draw):
    n = draw(st.integers(3, 60))
    steps = draw(st.lists(st.sampled_from([0, 1, 1, 2, 5]), min_size=n, max_size=n))  # ties and gaps
    ts = np.cumsum(np.array(steps, dtype=np.int64)) * SEC
    horizon = np.array(draw(st.lists(st.integers(0, 6), min_size=n, max_size=n)), dtype=np.int64) * SEC
    known = ts + horizon
    for i in draw(st.lists(st.integers(0, n - 1), max_size=n // 4)):
        known[i] = -1
    usable = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    usable[draw(st.integers(0, n - 1))] = True
    emb = draw(st.sampled_from([0, 1, 3, "1s", "2500ms"]))
    return ts, known, usable, emb


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(), st.sampled_from([(0.6, 0.2, 0.2), (0.5, 0.5), (0.34, 0.33, 0.33), (0.8, 0.2), (0.1, 0.8, 0.1)]))
def test_chronological_property(problem, fractions):
    ts, known, usable, emb = problem
    s = S.chronological(ts, fractions, known_at=known, embargo=emb, rows=usable)
    assert_honest(s, ts, known)
    idx = np.flatnonzero(usable)
    m = len(idx)
    cuts = [round(c * m) for c in np.cumsum(fractions)[:-1]]
    assert s.boundaries.tolist() == [int(ts[idx[c]]) if c < m else int(ts[-1]) + 1 for c in cuts]
    emb_rows, emb_ns = (emb, 0) if isinstance(emb, int) else (0, lobfast.parse_duration(emb))
    expect, counts = reference(ts, idx, s.boundaries.tolist(), known, emb_rows, emb_ns)
    got = [s.train.tolist(), s.val.tolist(), s.test.tolist()] if len(fractions) == 3 else [s.train, s.test]
    assert [list(g) for g in got] == expect
    assert (s.unlabelled, s.purged, s.embargoed) == (counts["unlabelled"], counts["purged"], counts["embargoed"])
    assert len(s.train) + len(s.val) + len(s.test) + s.purged + s.embargoed + s.unlabelled == m


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(), st.integers(1, 4), st.sampled_from([0, 2, 0.1]), st.booleans())
def test_walk_forward_property(problem, n_splits, val, expanding):
    ts, known, usable, emb = problem
    try:
        folds = S.walk_forward(ts, n_splits, val=val, known_at=known, embargo=emb, expanding=expanding, rows=usable)
    except ValueError as e:
        assert "too few" in str(e) or "no rows left" in str(e)
        return
    assert len(folds) == n_splits
    last_end = -1
    for f in folds:
        assert_honest(f, ts, known)
        assert np.all(usable[f.rows])
        if len(f.test):
            assert f.test[0] > last_end  # test blocks never overlap and move forward
            last_end = f.test[-1]
        assert len(f.boundaries) == (2 if (val if isinstance(val, int) else round(val * usable.sum())) else 1)
    starts = [f.boundaries[-1] for f in folds]
    assert starts == sorted(starts)


# ------------------------------------------------------------------------------ cut
def test_cut_at_a_splits_boundaries_is_that_split():
    rng = np.random.default_rng(4)
    ts = np.cumsum(rng.integers(0, 3, 200)).astype(np.int64) * SEC  # ties included
    rows = np.flatnonzero(rng.random(200) < 0.8)
    for known_at, embargo in ((3, 0), ("4s", 2), (None, "3s")):
        s = S.chronological(ts, (0.5, 0.3, 0.2), known_at=known_at, embargo=embargo, rows=rows)
        c = S.cut(ts, s.boundaries, known_at=known_at, embargo=embargo, rows=rows)
        assert parts(c) == parts(s) and (c.purged, c.embargoed, c.unlabelled) == (s.purged, s.embargoed, s.unlabelled)
    two = S.cut(ts, [np.datetime64(int(ts[100]), "ns")], known_at=2)
    assert two.val.tolist() == [] and two.boundaries.tolist() == [ts[100]]


def test_cut_keeps_the_rows_of_its_span_only():
    s = S.cut(TS10, [5 * SEC], start=2 * SEC, end=8 * SEC, known_at=1)
    assert parts(s) == ([2, 3], [], [5, 6, 7]) and s.purged == 1  # row 4 is known at 5 s
    with pytest.raises(ValueError, match="1 or 2 ascending times"):
        S.cut(TS10, [5 * SEC, 2 * SEC])
    with pytest.raises(ValueError, match="1 or 2 ascending times"):
        S.cut(TS10, [])
