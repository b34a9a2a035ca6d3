"""Windows, the window index, Normalizer and the C batch gather against NumPy references."""

from __future__ import annotations

import doctest
import gc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import lobfast
from lobfast import _core, windowing
from lobfast.windowing import Normalizer, window_index, windows


def reference_windows(X, ends, T, shift=None, scale=None, group=None):
    """The plain way: one slice per window, normalised in float64."""
    out = []
    for e in ends:
        w = X[e - T + 1 : e + 1].astype(np.float64)
        if shift is not None:
            g = np.zeros(T, int) if group is None else group[e - T + 1 : e + 1]
            w = (w - shift[g]) * scale[g]
        out.append(w)
    return np.array(out).reshape(len(ends), T, X.shape[1])


def reference_index(valid, T, step=1, target=None):
    ends = []
    for e in range(T - 1, len(valid), step):
        if valid[e - T + 1 : e + 1].all() and (target is None or np.isfinite(target[e])):
            ends.append(e)
    return np.array(ends, np.int64)


# ----------------------------------------------------------------------------- windows
def test_windows_are_a_read_only_view_of_every_window():
    X = np.arange(60.0).reshape(20, 3)
    w = windows(X, 5)
    assert w.shape == (16, 5, 3)
    assert np.shares_memory(w, X)
    assert not w.flags.writeable
    np.testing.assert_array_equal(w, reference_windows(X, range(4, 20), 5))
    w2 = windows(X, 5, step=4)
    np.testing.assert_array_equal(w2, reference_windows(X, range(4, 20, 4), 5))
    assert np.shares_memory(w2, X)
    assert windows(np.arange(6.0), 3).shape == (4, 3)


def test_windows_of_book_features_share_memory_with_to_deeplob(spot_book):
    X = spot_book.to_deeplob(np.float64)
    w = windows(X, 100)
    assert w.shape == (len(X) - 99, 100, 40) and np.shares_memory(w, X)
    np.testing.assert_array_equal(w[-1], X[-100:])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: windows(np.zeros((5, 2)), 6), "longer than the data"),
        (lambda: windows(np.zeros((5, 2)), 0), "T must be a positive int"),
        (lambda: windows(np.zeros((5, 2)), 2, step=0), "step must be a positive int"),
        (lambda: windows(np.zeros((5, 2, 2)), 2), "1-D or 2-D"),
        (lambda: window_index(np.ones(5, bool), 6), "longer than the data"),
        (lambda: window_index(np.ones(5), 2), "1-D bool"),
        (lambda: window_index(np.ones(5, bool), 2, target=np.zeros(4)), "aligned"),
        (lambda: window_index(np.ones(5, bool), 2, rows=np.array([7])), "0..4"),
        (lambda: window_index(np.ones(5, bool), 2, rows=np.ones(4, bool)), "5 entries"),
    ],
)
def test_bad_window_arguments(call, message):
    with pytest.raises((ValueError, TypeError, IndexError), match=message):
        call()


@settings(max_examples=80, deadline=None)
@given(
    valid=hnp.arrays(bool, st.integers(1, 60), elements=st.booleans()),
    T=st.integers(1, 8),
    step=st.integers(1, 4),
    nan_every=st.integers(2, 9),
)
def test_window_index_equals_a_loop(valid, T, step, nan_every):
    if T > len(valid):
        return
    target = np.arange(len(valid), dtype=float)
    target[::nan_every] = np.nan
    np.testing.assert_array_equal(window_index(valid, T, step=step), reference_index(valid, T, step))
    np.testing.assert_array_equal(
        window_index(valid, T, step=step, target=target), reference_index(valid, T, step, target)
    )
    rows = np.arange(0, len(valid), 2)
    expected = [e for e in reference_index(valid, T, step, target) if e in set(rows)]
    np.testing.assert_array_equal(window_index(valid, T, step=step, target=target, rows=rows), expected)


# ----------------------------------------------------------------------------- C gather
@settings(max_examples=120, deadline=None)
@given(
    n=st.integers(1, 40),
    f=st.integers(1, 7),
    T=st.integers(1, 10),
    x32=st.booleans(),
    o32=st.booleans(),
    norm=st.sampled_from(["none", "one", "groups"]),
    threads=st.integers(1, 5),
    seed=st.integers(0, 2**32 - 1),
)
def test_gather_equals_the_numpy_reference(n, f, T, x32, o32, norm, threads, seed):
    if T > n:
        return
    rng = np.random.default_rng(seed)
    X = rng.normal(100, 50, size=(n, f)).astype(np.float32 if x32 else np.float64)
    ends = rng.integers(T - 1, n, size=rng.integers(0, 12))
    shift = scale = group = None
    if norm != "none":
        g = 1 if norm == "one" else 3
        shift, scale = rng.normal(size=(g, f)) * 100, rng.uniform(0.01, 2, size=(g, f))
        group = None if g == 1 else rng.integers(0, g, size=n).astype(np.int32)
    out = np.full((len(ends), T, f), np.nan, np.float32 if o32 else np.float64)
    _core.window_gather(X, ends, T, out, shift, scale, group, threads)
    ref = reference_windows(X, ends, T, shift, scale, group)
    if o32:
        np.testing.assert_array_equal(out, ref.astype(np.float32))  # computed in double, rounded once
    else:
        np.testing.assert_allclose(out, ref, rtol=1e-15, atol=1e-12)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_gather_on_the_real_book(spot_book, threads):
    X = spot_book.to_deeplob(np.float64)
    norm = Normalizer().fit(X, rows=slice(0, 4000))
    ends = np.random.default_rng(threads).integers(99, len(X), 300)
    ends[:3] = [99, 4000, len(X) - 1]
    out = np.empty((300, 100, 40), np.float32)
    _core.window_gather(X, ends, 100, out, *norm.params(len(X)), threads=threads)
    ref = reference_windows(X, ends, 100, norm.shift, norm.scale)
    np.testing.assert_array_equal(out, ref.astype(np.float32))
    np.testing.assert_array_equal(out, norm.transform(X)[ends[:, None] + np.arange(-99, 1)].astype(np.float32))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"ends": [1]}, IndexError, "window 0 ends at row 1: it must be in 2..9"),
        ({"ends": [10]}, IndexError, "ends at row 10"),
        ({"ends": [-5]}, IndexError, "ends at row -5"),
        ({"out": np.empty((1, 3, 4), np.float32)}, ValueError, "expected \\(1, 3, 5\\)"),
        ({"out": np.empty((1, 3, 5), np.int32)}, TypeError, "float32 or float64"),
        ({"out": np.empty((1, 3, 5), np.float32)[:, ::-1]}, TypeError, "C-contiguous"),
        ({"x": np.zeros((10, 5), np.int64)}, TypeError, "x must be"),
        ({"x": np.zeros((5, 10)).T}, TypeError, "C-contiguous"),
        ({"x": [[1.0] * 5] * 10}, TypeError, "ndarray"),
        ({"shift": np.zeros((1, 5))}, ValueError, "go together"),
        ({"shift": np.zeros((1, 4)), "scale": np.ones((1, 4))}, ValueError, "\\(g, 5\\)"),
        ({"shift": np.zeros((2, 5)), "scale": np.ones((2, 5))}, ValueError, "need a group per row"),
        (
            {"shift": np.zeros((2, 5)), "scale": np.ones((2, 5)), "group": np.full(10, 2, np.int32)},
            IndexError,
            "statistics set 2",
        ),
        ({"shift": np.zeros((1, 5)), "scale": np.ones((1, 5)), "group": np.zeros(9, np.int32)}, ValueError, "rows"),
        ({"t": 0}, ValueError, "window length t=0 must be in 1..10"),
        ({"t": 11, "out": np.zeros((1, 11, 5))}, ValueError, "window length t=11"),
        ({"group": np.zeros(10, np.int32)}, ValueError, "group needs them"),
        ({"threads": 0}, ValueError, "threads must be in 1..16"),
        ({"threads": 17}, ValueError, "threads must be in 1..16"),
        ({"ends": [9] * 7 + [10], "out": np.zeros((8, 3, 5))}, IndexError, "window 7 ends at row 10"),
    ],
)
def test_gather_bad_arguments_write_nothing(kwargs, error, message):
    args = {"x": np.ones((10, 5)), "ends": [9], "t": 3, "out": np.full((1, 3, 5), -7.0, np.float32)}
    args.update(kwargs)
    out = args["out"]
    before = out.copy()
    with pytest.raises(error, match=message):
        _core.window_gather(**args)
    np.testing.assert_array_equal(out, before)


def test_out_overlapping_x_is_refused():
    big = np.arange(100.0).reshape(50, 2)
    with pytest.raises(ValueError, match="out overlaps x"):
        _core.window_gather(big, [2], 3, big[1:4].reshape(1, 3, 2))


def test_read_only_out_is_refused():
    out = np.zeros((1, 3, 5), np.float32)
    out.flags.writeable = False
    with pytest.raises(TypeError, match="writable"):
        _core.window_gather(np.ones((10, 5)), [9], 3, out)


# ----------------------------------------------------------------------------- Normalizer
def test_zscore_uses_training_rows_only():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 3))
    X[60:] += 1000  # test rows from another regime must not move the statistics
    z = Normalizer("zscore").fit(X, rows=slice(0, 60))
    np.testing.assert_allclose(z.shift[0], X[:60].mean(0))
    np.testing.assert_allclose(z.scale[0], 1 / X[:60].std(0))
    np.testing.assert_allclose(z.transform(X)[:60].mean(0), 0, atol=1e-12)
    mask = np.zeros(100, bool)
    mask[:60] = True
    np.testing.assert_array_equal(Normalizer().fit(X, rows=mask).shift, z.shift)


def test_constant_feature_is_only_shifted():
    X = np.c_[np.arange(10.0), np.zeros(10)]
    z = Normalizer().fit(X)
    assert z.scale[0, 1] == 1.0 and np.all(z.transform(X)[:, 1] == 0)


def test_decimal_precision():
    X = np.array([[65000.5, 0.25, -3.0], [64000.0, 12.0, 0.0], [1e9, 1e9, 1e9]])
    d = Normalizer("decimal_precision").fit(X, rows=[0, 1])
    np.testing.assert_array_equal(d.scale[0], [1e-5, 1e-2, 1e-1])
    np.testing.assert_array_equal(d.shift[0], 0)
    assert np.abs(d.transform(X)[:2]).max() < 1


def test_rolling_zscore_uses_only_earlier_days():
    day = 86_400 * 10**9
    ts = np.r_[np.arange(10) * 1000, day + np.arange(20) * 1000, 2 * day + np.arange(5), 5 * day + np.arange(8)]
    rng = np.random.default_rng(3)
    X = rng.normal(size=(len(ts), 2)) * np.repeat([1.0, 2.0, 3.0, 4.0], [10, 20, 5, 8])[:, None]
    r = Normalizer("rolling_zscore", lookback=2).fit(X, ts=ts)
    np.testing.assert_array_equal(r.usable, np.arange(len(ts)) >= 10)
    np.testing.assert_array_equal(r.group, np.repeat([0, 1, 2, 3], [10, 20, 5, 8]))
    # day 1 <- day 0; day 2 <- days 0..1; day 5 <- days 1..2 (two days that hold data)
    for g, rows in ((1, slice(0, 10)), (2, slice(0, 30)), (3, slice(10, 35))):
        np.testing.assert_allclose(r.shift[g], X[rows].mean(0), rtol=1e-12)
        np.testing.assert_allclose(r.scale[g], 1 / X[rows].std(0), rtol=1e-12)
    Xt = r.transform(X)
    np.testing.assert_allclose(Xt[35:], (X[35:] - X[10:35].mean(0)) / X[10:35].std(0), rtol=1e-12)


def test_invalid_rows_never_enter_the_statistics():
    day = 86_400 * 10**9
    ts = np.r_[np.arange(10), day + np.arange(10), 2 * day + np.arange(10), 3 * day + np.arange(10)]
    rng = np.random.default_rng(5)
    X = rng.normal(size=(40, 2))
    valid = np.ones(40, bool)
    valid[[3, 4, 15]] = False
    valid[20:30] = False  # a whole day without a valid row
    garbage = X.copy()
    garbage[~valid] = np.nan
    r = Normalizer("rolling_zscore", lookback=2).fit(garbage, ts=ts, valid=valid)
    ok = np.flatnonzero(valid)
    day1 = ok[ok < 10]
    np.testing.assert_allclose(r.shift[1], X[day1].mean(0), rtol=1e-12)
    # day 3 pools the last two days that hold valid rows: days 0 and 1 (day 2 has none)
    both = ok[ok < 20]
    np.testing.assert_allclose(r.shift[3], X[both].mean(0), rtol=1e-12)
    np.testing.assert_allclose(r.scale[3], 1 / X[both].std(0), rtol=1e-12)
    np.testing.assert_array_equal(r.usable, np.arange(40) >= 10)
    z = Normalizer().fit(garbage, rows=slice(0, 20), valid=valid)
    np.testing.assert_allclose(z.shift[0], X[ok[ok < 20]].mean(0), rtol=1e-12)


def test_rolling_zscore_windows_skip_the_first_day(spot_book):
    X = spot_book.to_deeplob(np.float64)
    r = Normalizer("rolling_zscore", period="1min").fit(spot_book)
    from lobfast.torch import WindowDataset

    ds = WindowDataset(spot_book, np.zeros(len(X)), 50, normalizer=r)
    first_usable = int(np.argmax(r.usable))
    assert ds.ends[0] == first_usable + 49
    x, _ = ds.batch([0, len(ds) - 1])
    e = ds.ends[[0, -1]]
    ref = r.transform(X)[e[:, None] + np.arange(-49, 1)]
    np.testing.assert_allclose(x.numpy(), ref.astype(np.float32), rtol=1e-6)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: Normalizer("minmax"), "one of"),
        (lambda: Normalizer(lookback=0), "lookback"),
        (lambda: Normalizer(period="yesterday"), "duration"),
        (lambda: Normalizer().fit(np.array([[1.0, 2.0], [np.nan, 3.0]])), "'column 0' is nan at row 1"),
        (lambda: Normalizer().fit(np.ones((3, 2)), rows=[]), "no valid training rows"),
        (lambda: Normalizer().fit(np.ones((3, 2)), valid=np.ones(2, bool)), "3 bools"),
        (lambda: Normalizer("rolling_zscore").fit(np.ones((3, 2))), "needs ts"),
        (lambda: Normalizer("rolling_zscore").fit(np.ones((3, 2)), ts=[3, 2, 1]), "sorted"),
        (lambda: Normalizer("rolling_zscore").fit(np.ones((3, 2)), [0], ts=[1, 2, 3]), "no rows="),
        (lambda: Normalizer().transform(np.ones((3, 2))), "not fitted"),
        (lambda: Normalizer().fit(np.ones((3, 2))).transform(np.ones((3, 3))), "fitted on 2 features"),
        (lambda: Normalizer().fit(np.ones((3, 2), "U1")), "float32 or float64"),
        (lambda: Normalizer().fit(lobfast.LabelFrame([0, 1], r=[1.0, 2.0])), "labels look ahead"),
    ],
)
def test_bad_normalizer_input(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_nan_names_the_frame_column():
    f = lobfast.FeatureFrame([0, 1, 2], mid=[1.0, 2.0, 3.0], ofi=[0.0, np.inf, 1.0])
    with pytest.raises(ValueError, match="'ofi' is inf at row 1"):
        Normalizer().fit(f)


def test_labels_are_refused_as_features_however_wrapped(spot_book):
    ts = spot_book.ts
    lab = lobfast.labels.combine(
        lobfast.labels.forward_return(spot_book, [10, "5s"]),
        lobfast.labels.triple_barrier(spot_book, "5s", upper=0.001),
    )
    r = lab["ret_10"]
    wrapped = {
        "the column": lambda: lobfast.FeatureFrame(ts, x=r),
        "a dict of label columns": lambda: lobfast.FeatureFrame(ts, dict(lab.columns)),
        "np.asarray of it": lambda: lobfast.FeatureFrame(ts, {"x": np.asarray(r)}),
        "a slice": lambda: lobfast.FeatureFrame(ts[::2], x=r[::2]),
        "rows of the frame": lambda: lobfast.FeatureFrame(ts[5:], x=lab.rows[5:]["ret_5s"]),
        "an integer column": lambda: lobfast.FeatureFrame(ts, x=lab["tb_time_5s"]),
        "a 2-D view": lambda: Normalizer().fit(r[:, None]),
        "to_numpy": lambda: Normalizer().fit(lab.to_numpy()),
        "a plain Frame": lambda: Normalizer().fit(lobfast.Frame(ts, x=r)),
        "as_features": lambda: windowing.as_features(np.asarray(r).reshape(-1, 1)),
    }
    for what, call in wrapped.items():
        with pytest.raises(TypeError, match="label.*never features"):
            call()
            pytest.fail(f"{what} was taken as a feature")
    # the memory stays known as labels while any view of it lives
    tail = lobfast.labels.forward_return(spot_book, 10)["ret_10"][100:]  # the frame is gone
    gc.collect()
    with pytest.raises(TypeError, match="'x' is a label"):
        lobfast.FeatureFrame(ts[100:], x=tail)
    # honest features, and the prices the labels were computed from, are features
    feats = lobfast.features(spot_book)
    assert lobfast.FeatureFrame(feats.ts, dict(feats.columns)).keys() == feats.keys()
    assert windowing.as_features(feats)[1] == list(feats.keys())
    mid = (spot_book.bid_px[:, 0] + spot_book.ask_px[:, 0]) / 2
    from_mid = lobfast.labels.forward_return((mid, ts), 10)
    assert windowing.as_features(lobfast.FeatureFrame(ts, mid=mid))[0].shape == (len(from_mid), 1)
    assert windowing.as_features(mid[:, None])[0].shape == (len(ts), 1)


def test_docstring_examples_run():
    for mod in (windowing,):
        failed, _ = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert failed == 0


def test_the_core_imports_without_torch():
    """torch is an optional extra: lobfast and its windows work without it, and the torch
    modules say which extra to install."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np, lobfast\n"
        "assert lobfast.windows(np.zeros((5, 2)), 2).shape == (4, 2, 2)\n"
        "for mod in ('lobfast.torch', 'lobfast.train', 'lobfast.models'):\n"
        "    try:\n"
        "        __import__(mod)\n"
        "    except ImportError as e:\n"
        '        assert "lobfast[torch]" in str(e), e\n'
        "    else:\n"
        "        raise SystemExit(mod + ' imported without torch')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_empty_levels_of_a_thin_book_take_the_price_above(spot_book):
    from lobfast.windowing import as_features

    c = spot_book.columns
    ask_px, ask_sz = c["ask_px"].copy(), c["ask_sz"].copy()
    ask_px[5, 3:], ask_sz[5, 3:] = np.nan, 0.0  # only 3 ask levels at row 5
    thin = lobfast.BookSnapshots(**{**c, "ask_px": ask_px, "ask_sz": ask_sz})
    X, names, _, valid = as_features(thin)
    row = X[5].reshape(10, 4)
    np.testing.assert_array_equal(row[3:, 0], ask_px[5, 2])
    np.testing.assert_array_equal(row[3:, 1], 0)
    np.testing.assert_array_equal(X[6], spot_book.to_deeplob(np.float64)[6])
    assert np.isfinite(X).all() and valid.all()
