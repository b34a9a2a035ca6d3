"""lobfast.labels: each C kernel against a plain NumPy / pandas reference written here."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import USDM_BTC_0808, interrupted, timed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lobfast
from lobfast import labels as L

SEC = 10**9
TS_MAX = 9_214_646_400 * SEC  # 2262-01-01: the last time the kernels accept


# ------------------------------------------------------------------------------ references
def usable(mid, valid):
    fin = np.isfinite(mid)
    return fin if valid is None else np.asarray(valid, bool) & fin


def end_row(ts, i, rows, ns):
    """(j, known_at) of row i's horizon end, or None when it runs past the data."""
    if rows:
        return (i + rows, ts[i + rows]) if i + rows < len(ts) else None
    t = int(ts[i]) + ns
    if t > ts[-1]:
        return None
    return int(np.searchsorted(ts, t, "right")) - 1, t


def ref_return(mid, ts, valid, rows=0, ns=0):
    ok = usable(mid, valid)
    out, known = np.full(len(mid), np.nan), np.full(len(mid), -1, np.int64)
    for i in range(len(mid)):
        end = end_row(ts, i, rows, ns)
        if end and ok[i : end[0] + 1].all():
            out[i], known[i] = np.log(mid[end[0]] / mid[i]), end[1]
    return out, known


def ref_smooth(mid, ts, valid, k, against_mean=False):
    ok = usable(mid, valid)
    n = len(mid)
    out, known = np.full(n, np.nan), np.full(n, -1, np.int64)
    for t in range(n):
        lo = t - k + 1 if against_mean else t
        if t + k >= n or lo < 0 or not ok[lo : t + k + 1].all():
            continue
        plus = math.fsum(mid[t + 1 : t + k + 1]) / k
        base = math.fsum(mid[t - k + 1 : t + 1]) / k if against_mean else mid[t]
        out[t], known[t] = (plus - base) / base, ts[t + k]
    return out, known


def ref_ema(f, alpha):
    y, prev = np.full(len(f), np.nan), np.nan
    for i, x in enumerate(f):
        if np.isnan(x):
            prev = np.nan
            continue
        prev = x if np.isnan(prev) else alpha * x + (1 - alpha) * prev
        y[i] = prev
    return y


def ref_barrier(mid, ts, valid, up, dn, rows=0, ns=0):
    ok = usable(mid, valid)
    n = len(mid)
    up, dn = np.broadcast_to(up, n), np.broadcast_to(dn, n)
    lab, ret, hit = np.full(n, np.nan), np.full(n, np.nan), np.full(n, -1, np.int64)
    for i in range(n):
        if not ok[i] or np.isnan(up[i]) or np.isnan(dn[i]):
            continue
        end = end_row(ts, i, rows, ns)
        last = end[0] if end else n - 1
        for j in range(i + 1, last + 1):
            if not ok[j]:
                break
            r = np.log(mid[j] / mid[i])
            if r >= up[i] or r <= -dn[i]:
                lab[i], ret[i], hit[i] = (1.0 if r >= up[i] else -1.0), r, ts[j]
                break
        else:
            if end:
                lab[i], ret[i], hit[i] = 0.0, np.log(mid[end[0]] / mid[i]), end[1]
    return lab, ret, hit


def close(a, b, rtol=1e-12, atol=1e-15):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))


# ------------------------------------------------------------------------------ real data
@pytest.fixture(scope="module")
def books():
    md = lobfast.read_binance(str(USDM_BTC_0808))
    return {
        "messages": lobfast.reconstruct(md.depth, levels=10),
        "100ms": lobfast.reconstruct(md.depth, levels=10, every="100ms"),
    }


def mid_of(book):
    return (book.bid_px[:, 0] + book.ask_px[:, 0]) / 2


@pytest.mark.parametrize("grid", ["messages", "100ms"])
def test_forward_return_real_vs_pandas(books, grid):
    book = books[grid]
    s = pd.Series(mid_of(book))
    lf = L.forward_return(book, [10, "10s", "60s"])
    assert list(lf) == ["ret_10", "ret_10s", "ret_60s"]
    close(lf["ret_10"], np.log(s.shift(-10) / s).to_numpy())
    np.testing.assert_array_equal(lf.known_at["ret_10"][:-10], book.ts[10:])
    for h in (10, 60):
        # the researcher's version: the row in effect at t + h by searchsorted, NaN past the end
        target = book.ts + h * SEC
        j = np.searchsorted(book.ts, target, "right") - 1
        expected = np.where(target <= book.ts[-1], np.log(s.to_numpy()[j] / s.to_numpy()), np.nan)
        close(lf[f"ret_{h}s"], expected)
        known = lf.known_at[f"ret_{h}s"]
        np.testing.assert_array_equal(known, np.where(np.isnan(expected), -1, target))


@pytest.mark.parametrize("grid", ["messages", "100ms"])
def test_smoothed_real_vs_pandas(books, grid):
    book = books[grid]
    s = pd.Series(mid_of(book))
    k = 20
    plus = s.rolling(k).mean().shift(-k)  # mean of mid[t+1 .. t+k]
    minus = s.rolling(k).mean()  # mean of mid[t-k+1 .. t]
    lf = L.combine(L.smoothed(book, k), L.smoothed(book, k, against="mean"))
    close(lf["smooth_20"], ((plus - s) / s).to_numpy(), rtol=1e-9, atol=1e-14)
    close(lf["smooth_mean_20"], ((plus - minus) / minus).to_numpy(), rtol=1e-9, atol=1e-14)
    np.testing.assert_array_equal(lf.known_at["smooth_mean_20"][k - 1 : -k], book.ts[2 * k - 1 :])


@pytest.mark.parametrize("grid", ["messages", "100ms"])
def test_ema_real_vs_pandas(books, grid):
    book = books[grid]
    f = L.forward_return(book, 10)["ret_10"]
    expected = pd.Series(f).ewm(alpha=0.2, adjust=False).mean().where(~np.isnan(f)).to_numpy()
    lf = L.ema_return(book, 10)
    close(lf["ema_10"], expected)
    np.testing.assert_array_equal(lf.known_at["ema_10"], L.forward_return(book, 10).known_at["ret_10"])


def test_triple_barrier_real_vs_loop(books):
    book = books["messages"]
    mid = mid_of(book)
    vol = pd.Series(np.log(mid)).diff().rolling(100).std().to_numpy()  # known at t
    vol = np.maximum(vol, 2e-6)  # quiet stretches have a zero std
    for limit, kw in ((50, {"rows": 50}), ("10s", {"ns": 10 * SEC})):
        lf = L.triple_barrier(book, limit, upper=2.0, lower=3.0, vol=vol)
        sfx = "50" if limit == 50 else "10s"
        lab, ret, hit = ref_barrier(mid, book.ts, book.valid, 2.0 * vol, 3.0 * vol, **kw)
        close(lf[f"tb_label_{sfx}"], lab)
        close(lf[f"tb_ret_{sfx}"], ret)
        np.testing.assert_array_equal(lf[f"tb_time_{sfx}"], hit)
        assert set(np.unique(lab[~np.isnan(lab)])) == {-1.0, 0.0, 1.0}
        for name in lf:
            np.testing.assert_array_equal(lf.known_at[name], hit)


def test_inputs_forms_agree(books):
    book = books["100ms"]
    mid = mid_of(book)
    a = L.forward_return(book, "1s")["ret_1s"]
    frame = lobfast.Frame(book.ts, mid=mid)
    np.testing.assert_array_equal(L.forward_return(frame, "1s")["ret_1s"], a)
    np.testing.assert_array_equal(L.forward_return((mid, book.ts), "1s")["ret_1s"], a)
    np.testing.assert_array_equal(L.forward_return(mid, "1s", ts=book.ts.view("M8[ns]"))["ret_1s"], a)
    with pytest.raises(TypeError, match="not from a LabelFrame"):
        L.forward_return(L.forward_return(frame, 1), 1)
    with pytest.raises(TypeError, match="needs its timestamps"):
        L.forward_return(mid, 1)


# ------------------------------------------------------------------------------ random inputs
@st.composite
def series(draw):
    n = draw(st.integers(1, 60))
    steps = draw(st.lists(st.sampled_from([0, 0, 1, 2, 5, 13]), min_size=n, max_size=n))
    # from the epoch to the last accepted time (2262-01-01): t + h may pass it
    base = draw(st.sampled_from([0, 1_700_000_000 * SEC, TS_MAX - 78 * SEC, TS_MAX - n * 13 * 10**8]))
    ts = base + np.cumsum(np.array(steps, np.int64)) * 10**8  # ties included
    rets = np.array(draw(st.lists(st.floats(-0.02, 0.02), min_size=n, max_size=n)))
    mid = draw(st.sampled_from([1.0, 60_000.0, 0.0123])) * np.exp(np.cumsum(rets))
    mode = draw(st.sampled_from(["all", "mask", "nan"]))
    valid = None
    if mode != "all":
        bad = np.zeros(n, bool)
        for _ in range(draw(st.integers(0, 3))):
            a = draw(st.integers(0, n - 1))
            bad[a : a + draw(st.integers(1, 5))] = True
        if mode == "mask":
            valid = ~bad
            mid[bad] = draw(st.sampled_from([np.nan, 1.0]))  # anything: the book is invalid there
        else:
            mid[bad] = np.nan
    return mid, ts, valid


horizon = st.one_of(
    st.integers(1, 70),
    st.integers(1, 30).map(lambda x: np.timedelta64(x * 10**8, "ns")),
    st.sampled_from([10**18, 2**62]).map(lambda x: np.timedelta64(x, "ns")),  # past the data (most of it)
)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def rows_ns(h):
    return (int(h), 0) if isinstance(h, int) else (0, int(h.astype(np.int64)))


@FAST
@given(series(), horizon)
def test_forward_return_random(s, h):
    mid, ts, valid = s
    lf = L.forward_return(mid, h, ts=ts, valid=valid)
    (name,) = lf
    out, known = ref_return(mid, ts, valid, *rows_ns(h))
    close(lf[name], out)
    np.testing.assert_array_equal(lf.known_at[name], known)


@FAST
@given(series(), st.integers(1, 70), st.booleans())
def test_smoothed_random(s, k, against_mean):
    mid, ts, valid = s
    lf = L.smoothed(mid, k, ts=ts, valid=valid, against="mean" if against_mean else "mid", alpha=0.004)
    out, known = ref_smooth(mid, ts, valid, k, against_mean)
    name = ("smooth_mean_" if against_mean else "smooth_") + str(k)
    close(lf[name], out, rtol=1e-9, atol=1e-14)
    np.testing.assert_array_equal(lf.known_at[name], known)
    cls = lf[name.replace(str(k), f"class_{k}")]
    np.testing.assert_array_equal(cls, np.where(np.isnan(out), np.nan, np.sign(out) * (np.abs(out) > 0.004)))


@FAST
@given(series(), horizon, st.floats(0.01, 1.0))
def test_ema_random(s, h, alpha):
    mid, ts, valid = s
    lf = L.ema_return(mid, h, ts=ts, valid=valid, alpha=alpha)
    (name,) = lf
    f, _ = ref_return(mid, ts, valid, *rows_ns(h))
    close(lf[name], ref_ema(f, alpha))


@FAST
@given(series(), horizon, st.floats(0.001, 0.05), st.floats(0.001, 0.05), st.booleans())
def test_triple_barrier_random(s, h, up, dn, with_vol):
    mid, ts, valid = s
    vol = None
    if with_vol:
        vol = np.abs(np.sin(np.arange(len(mid)))) + 0.1
        vol[::7] = np.nan
    lf = L.triple_barrier(mid, h, upper=up, lower=dn, vol=vol, ts=ts, valid=valid)
    scale = 1.0 if vol is None else vol
    lab, ret, hit = ref_barrier(mid, ts, valid, up * scale, dn * scale, *rows_ns(h))
    names = list(lf)
    close(lf[names[0]], lab)
    close(lf[names[1]], ret)
    np.testing.assert_array_equal(lf[names[2]], hit)


def test_horizon_longer_than_data():
    mid, ts = np.array([1.0, 2.0, 3.0]), np.array([0, 1, 2]) * SEC
    for lf in (
        L.forward_return((mid, ts), [3, 100, "3s"]),
        L.smoothed((mid, ts), [3, 50]),
        L.smoothed((mid, ts), 2, against="mean"),
        L.ema_return((mid, ts), 5),
        L.triple_barrier((mid, ts), 3, upper=10.0),
    ):
        for name in lf:
            assert lf[name].dtype == np.int64 or np.isnan(lf[name]).all(), name
            assert (lf.known_at[name] == -1).all(), name


def test_smoothed_running_sum_stays_exact():
    """Long series at BTC prices: the running window sums must not drift."""
    rng = np.random.default_rng(7)
    n, k = 400_000, 100
    mid = 60_000 * np.exp(np.cumsum(rng.normal(0, 1e-4, n)))
    ts = np.arange(n, dtype=np.int64)
    got = L.smoothed((mid, ts), k)["smooth_100"]
    idx = np.arange(0, n - k, 997)
    plus = np.array([math.fsum(mid[t + 1 : t + k + 1]) / k for t in idx])
    np.testing.assert_allclose(got[idx], (plus - mid[idx]) / mid[idx], rtol=1e-10, atol=1e-15)


# ------------------------------------------------------------------------------ hand-made cases
def test_triple_barrier_cases():
    ts = np.arange(8) * SEC
    #                 0      1      2      3      4      5      6      7
    mid = np.array([100.0, 100.5, 101.2, 99.0, 100.0, 100.1, 100.2, 100.1])
    valid = np.array([1, 1, 1, 1, 1, 0, 1, 1], bool)
    lf = L.triple_barrier((mid, ts), 3, upper=0.01, lower=0.01, valid=valid)
    lab, ret, hit = lf["tb_label_3"], lf["tb_ret_3"], lf["tb_time_3"]
    assert lab[0] == 1 and hit[0] == 2 * SEC and ret[0] == pytest.approx(np.log(1.012))  # upper first
    assert lab[1] == -1 and hit[1] == 3 * SEC  # lower first
    assert lab[2] == -1 and hit[2] == 3 * SEC
    assert lab[3] == 1 and hit[3] == 4 * SEC  # hit at 4, before the invalid row 5: a label
    assert np.isnan(lab[4]) and hit[4] == -1  # reaches invalid row 5 unresolved
    assert np.isnan(lab[5])  # invalid itself
    assert np.isnan(lab[6]) and np.isnan(lab[7])  # end of data before the limit
    # time limit reached: label 0, the return of the mid in effect at the limit
    lf = L.triple_barrier((mid[4:], ts[4:]), "1500ms", upper=0.05)
    assert lf["tb_label_1500ms"][0] == 0 and lf["tb_time_1500ms"][0] == 5 * SEC + SEC // 2
    assert lf["tb_ret_1500ms"][0] == pytest.approx(np.log(100.1 / 100.0))
    # no row within the limit: 0 with a zero return; past the end: NaN
    lf = L.triple_barrier((mid, ts), "500ms", upper=0.05)
    assert lf["tb_label_500ms"][:7].tolist() == [0.0] * 7 and lf["tb_ret_500ms"][0] == 0.0
    assert np.isnan(lf["tb_label_500ms"][7])
    # one barrier off, vol warming up
    lf = L.triple_barrier((mid, ts), 3, upper=np.inf, lower=0.01)
    assert lf["tb_label_3"][0] == -1 and hit[0] == 2 * SEC
    vol = np.array([np.nan, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001])
    lf = L.triple_barrier((mid, ts), 3, upper=5, vol=vol)
    assert np.isnan(lf["tb_label_3"][0]) and lf["tb_label_3"][1] == 1


def test_time_horizon_with_ties():
    ts = np.array([0, 0, 1, 1, 1, 3]) * SEC
    mid = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    lf = L.forward_return((mid, ts), "1s")
    # the mid in effect at t + 1s is the last of the tied rows at 1s
    np.testing.assert_allclose(lf["ret_1s"][:2], np.log([5.0, 2.5]))
    np.testing.assert_allclose(lf["ret_1s"][2:5], np.log([5 / 3, 5 / 4, 1.0]))
    np.testing.assert_array_equal(lf.known_at["ret_1s"], [SEC, SEC, 2 * SEC, 2 * SEC, 2 * SEC, -1])


def test_names_and_suffixes():
    mid, ts = np.exp(np.linspace(0, 1, 50)), np.arange(50) * 10**8
    lf = L.forward_return((mid, ts), [1, "1min", "1500ms", np.timedelta64(250, "us"), 7])
    assert list(lf) == ["ret_1", "ret_60s", "ret_1500ms", "ret_250us", "ret_7"]
    assert list(L.smoothed((mid, ts), [5, 10], alpha={5: 0.1})) == ["smooth_5", "smooth_class_5", "smooth_10"]
    assert list(L.triple_barrier((mid, ts), "2s", upper=0.1)) == ["tb_label_2s", "tb_ret_2s", "tb_time_2s"]


def test_classify_and_balanced_alpha():
    rng = np.random.default_rng(3)
    v = rng.normal(size=3000)
    v[::10] = np.nan
    train = slice(0, 2000)
    a = L.balanced_alpha(v, train=train)
    assert a == pytest.approx(np.nanquantile(np.abs(v[:2000]), 1 / 3))
    mask = np.zeros(3000, bool)
    mask[:2000] = True
    assert L.balanced_alpha(v, train=mask) == a
    v2 = v.copy()
    v2[2000:] *= 100  # test rows never change the threshold
    assert L.balanced_alpha(v2, train=train) == a
    c = L.classify(v[:2000], a)
    counts = [np.sum(c == x) for x in (-1, 0, 1)]
    assert max(counts) - min(counts) < 0.06 * 1800
    assert np.isnan(c[::10]).all()
    with pytest.raises(ValueError, match="no finite values"):
        L.balanced_alpha(np.full(5, np.nan))
    with pytest.raises(ValueError, match="alpha must be a finite threshold"):
        L.classify(v, -0.1)


# ------------------------------------------------------------------------------ bad input
MID, TS = np.array([100.0, 101.0, 102.0, 101.0]), np.arange(4) * SEC


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: L.forward_return(MID, 1, ts=TS[:3]), ValueError, "ts has 3 rows, expected 4"),
        (lambda: L.forward_return((MID, TS), 1, valid=np.ones(3, bool)), ValueError, "valid has 3 rows"),
        (lambda: L.triple_barrier((MID, TS), 1, upper=0.1, vol=np.ones(3)), ValueError, "broadcast"),
        (
            lambda: L.forward_return((MID, TS[[0, 2, 1, 3]]), 1),
            ValueError,
            r"sorted ascending: row 1 \(\d+\) comes before row 2 \(1000000000\)",
        ),
        (
            lambda: L.forward_return((np.array([1.0, np.nan]), TS[:2]), 1, valid=np.ones(2, bool)),
            ValueError,
            "mid is nan at row 1, where the book is marked valid",
        ),
        (lambda: L.forward_return((np.array([1.0, -1.0]), TS[:2]), 1), ValueError, "mid must be > 0"),
        (lambda: L.forward_return((np.array([]), np.array([], np.int64)), 1), ValueError, "no rows"),
        (lambda: L.smoothed((np.array([]), np.array([], np.int64)), 1), ValueError, "no rows"),
        (lambda: L.forward_return((MID, TS), 0), ValueError, "positive number of rows"),
        (lambda: L.forward_return((MID, TS), -3), ValueError, "positive number of rows"),
        (lambda: L.forward_return((MID, TS), "0s"), ValueError, "positive duration"),
        (lambda: L.forward_return((MID, TS), True), ValueError, "number of rows or a duration"),
        (lambda: L.forward_return((MID, TS), []), ValueError, "no horizon"),
        (lambda: L.smoothed((MID, TS), 0), ValueError, "k must be a positive"),
        (lambda: L.smoothed((MID, TS), "1s"), ValueError, "k must be a positive"),
        (lambda: L.smoothed((MID, TS), 2, against="median"), ValueError, "against must be"),
        (lambda: L.triple_barrier((MID, TS), 0, upper=0.1), ValueError, "limit must be"),
        (lambda: L.triple_barrier((MID, TS), 2, upper=-0.1), ValueError, "upper barrier must be > 0"),
        (lambda: L.triple_barrier((MID, TS), 2, upper=0.1, lower=0), ValueError, "lower barrier must be > 0"),
        (lambda: L.ema_return((MID, TS), 1, alpha=0), ValueError, r"alpha must be in \(0, 1\]"),
        (lambda: L.ema_return((MID, TS), 1, alpha=1.5), ValueError, r"alpha must be in \(0, 1\]"),
        (lambda: L.ema_return((MID, TS), 1, alpha=-0.2), ValueError, r"alpha must be in \(0, 1\]"),
        (lambda: L.ema_return((MID, TS), 1, alpha=float("nan")), ValueError, r"alpha must be in \(0, 1\]"),
        (lambda: L.forward_return((MID, TS.astype(float)), 1), TypeError, "int64 ns or datetime64"),
        (lambda: L.forward_return((MID.astype(str), TS), 1), TypeError, "mid must be an array of float64"),
        (lambda: L.forward_return((MID, TS), 1, valid=np.ones(4)), TypeError, "valid must be an array of bool"),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_ema_alpha_one_is_the_return():
    lf = L.combine(L.ema_return((MID, TS), 1, alpha=1.0), L.forward_return((MID, TS), 1))
    np.testing.assert_array_equal(lf["ema_1"], lf["ret_1"])


def test_inputs_not_modified():
    rng = np.random.default_rng(1)
    n = 500
    mid = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    mid[50:60] = np.nan
    valid = np.isfinite(mid)
    ts = np.sort(rng.integers(0, 10**12, n))
    vol = np.full(n, 1e-3)
    args = [mid, valid, ts, vol]
    before = [a.copy() for a in args]
    L.forward_return(mid, [5, "1s"], ts=ts, valid=valid)
    L.smoothed(mid, 5, ts=ts, valid=valid, alpha=1e-3)
    L.smoothed(mid, 5, ts=ts, valid=valid, against="mean")
    L.ema_return(mid, 5, ts=ts, valid=valid)
    L.triple_barrier(mid, "1s", upper=2, vol=vol, ts=ts, valid=valid)
    f = L.forward_return(mid, 5, ts=ts)["ret_5"]
    f0 = f.copy()
    L.classify(f, 1e-3)
    L.balanced_alpha(f, train=slice(0, 100))
    for a, b in zip(args + [f], before + [f0]):
        np.testing.assert_array_equal(a, b)


def test_core_stubs_match():
    from lobfast import _core

    for name in ("label_return", "label_smooth", "label_ema", "label_classify", "label_barrier"):
        assert callable(getattr(_core, name))


def test_triple_barrier_floor_on_real_volatility():
    md = lobfast.read_binance(USDM_BTC_0808)
    book = lobfast.reconstruct(md.depth, levels=10, every="100ms")
    vol = lobfast.features(book, spec=["vol_100"])["vol_100"]
    assert (vol == 0).any()  # quiet stretches: a barrier of 0 is refused without a floor
    with pytest.raises(ValueError, match="needs a floor"):
        lobfast.labels.triple_barrier(book, "60s", upper=2.0, vol=vol)
    tb = lobfast.labels.triple_barrier(book, "60s", upper=2.0, vol=vol, floor=2e-5)
    bar = np.maximum(2.0 * vol, 2e-5)
    want = lobfast.labels.triple_barrier(book, "60s", upper=bar, lower=bar)
    np.testing.assert_array_equal(tb["tb_label_60s"], want["tb_label_60s"])
    assert np.isfinite(tb["tb_label_60s"]).sum() > 1000
    with pytest.raises(ValueError, match="floor"):
        lobfast.labels.triple_barrier(book, "60s", upper=2.0, vol=vol, floor=-1.0)


def test_ctrl_c_stops_a_triple_barrier():
    # barriers that are never hit and a limit past the data: every row walks to the end (n^2)
    def call(n):
        mid, ts = np.full(n, 100.0), np.arange(n, dtype=np.int64)
        return lambda: L.triple_barrier((mid, ts), n, upper=np.inf)

    quarter = timed(call(40_000))  # a quarter of the work of 80k rows
    assert interrupted(call(80_000), 0.3) < quarter


# ------------------------------------------------------------------------------ out=
def as_out(lf):
    """A dict out= for the columns of lf: new arrays full of junk (NaN / -7 would hide misses)."""
    out = {name: np.full(len(lf), 7.5) for name in lf}
    out["known_at"] = {name: np.full(len(lf), 7, np.int64) for name in lf}
    return out


def assert_same_labels(got, want):
    assert list(got) == list(want)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])  # bit for bit, NaN where NaN
        np.testing.assert_array_equal(got.known_at[name], want.known_at[name])


@FAST
@given(series(), st.lists(horizon, min_size=1, max_size=3))
def test_forward_return_out_writes_in_place(s, hs):
    mid, ts, valid = s
    fresh = L.forward_return(mid, hs, ts=ts, valid=valid)
    out = as_out(fresh)
    got = L.forward_return(mid, hs, ts=ts, valid=valid, out=out)
    assert_same_labels(got, fresh)
    for name in fresh:
        assert got[name] is out[name] and got.known_at[name] is out["known_at"][name]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 3000), st.sampled_from([1, 7, 100, 257, 5000]), st.booleans())
def test_forward_return_long_clean_series(seed, n, k, masked):
    # long enough for the vectorised blocks; every row usable (the one-pass path)
    rng = np.random.default_rng(seed)
    mid = 60_000 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    ts = np.cumsum(rng.integers(0, 3, n)).astype(np.int64)
    valid = np.ones(n, bool) if masked else None
    lf = L.forward_return(mid, k, ts=ts, valid=valid)
    out, known = ref_return(mid, ts, valid, rows=k)
    close(lf[f"ret_{k}"], out)
    np.testing.assert_array_equal(lf.known_at[f"ret_{k}"], known)
    if n > k + 1:  # one unusable row sends the same series down the general path
        mid2 = mid.copy()
        mid2[-1] = np.nan
        lf2 = L.forward_return(mid2, k, ts=ts)
        np.testing.assert_array_equal(lf2[f"ret_{k}"][: n - 1 - k], lf[f"ret_{k}"][: n - 1 - k])


def test_forward_return_ratios_beyond_normal_doubles():
    # ratios that overflow or fall below the normal range take libm's log: inf, subnormal logs
    mid = np.array([1e-300, 1e300, 1.0, 1e-310 * 1e10, 3.0] * 60)
    ts = np.arange(len(mid), dtype=np.int64)
    lf = L.forward_return((mid, ts), [1, 2])
    with np.errstate(all="ignore"):  # 1e300 / 1e-300 is inf, its inverse 0: logs inf, -inf
        for k in (1, 2):
            want = np.full(len(mid), np.nan)
            want[:-k] = np.log(mid[k:] / mid[:-k])
            close(lf[f"ret_{k}"], want)


def test_forward_return_out_real_data_reuses_the_frame(books):
    book = books["100ms"]
    first = L.forward_return(book, [10, "10s"])
    again = L.forward_return(book, [10, "10s"], out=first)
    assert_same_labels(again, L.forward_return(book, [10, "10s"]))
    assert all(again[m] is first[m] and again.known_at[m] is first.known_at[m] for m in first)
    # a dict without known_at arrays: those are new
    out = {"ret_10": np.empty(len(book))}
    got = L.forward_return(book, 10, out=out)
    assert got["ret_10"] is out["ret_10"]
    np.testing.assert_array_equal(got["ret_10"], first["ret_10"])


def test_forward_return_fresh_columns_are_separate_arrays():
    lf = L.forward_return((MID, TS), [1, 2])
    arrays = [*lf.columns.values(), *lf.known_at.values()]
    assert not any(np.may_share_memory(a, b) for i, a in enumerate(arrays) for b in arrays[i + 1 :])


def bad_outs(n, mid):
    ro = np.zeros(n)
    ro.flags.writeable = False
    return [
        ({"ret_1": np.zeros(n, np.float32)}, r"out\['ret_1'\].*float64.*float32"),
        ({"ret_1": np.zeros(n + 1)}, r"out\['ret_1'\] has 5 rows"),
        ({"ret_1": ro}, r"out\['ret_1'\].*read-only"),
        ({"ret_1": np.zeros(2 * n)[::2]}, r"out\['ret_1'\].*not contiguous"),
        ({"ret_1": [0.0] * n}, r"out\['ret_1'\] must be a NumPy array"),
        ({"ret_1": mid}, r"out\['ret_1'\] shares memory with mid"),
        ({"ret_1": np.zeros(n), "known_at": {"ret_1": np.zeros(n)}}, r"known_at\['ret_1'\].*int64"),
        ({"ret_2": np.zeros(n)}, r"out has no column 'ret_1'"),
        (np.zeros(n), r"out= takes a dict"),
        ({"ret_1": np.zeros(n), "known_at": np.zeros(n, np.int64)}, r"out\['known_at'\] is a dict"),
    ]


@pytest.mark.parametrize("case", range(10))
def test_forward_return_bad_out(case):
    mid, ts = MID.copy(), TS
    out, match = bad_outs(len(mid), mid)[case]
    before = mid.copy()
    with pytest.raises(ValueError, match=match):
        L.forward_return((mid, ts), 1, out=out)
    np.testing.assert_array_equal(mid, before)


def test_forward_return_out_columns_must_not_overlap():
    shared = np.zeros(len(MID))
    with pytest.raises(ValueError, match=r"out\['ret_1'\] and out\['ret_2'\] share memory"):
        L.forward_return((MID, TS), [1, 2], out={"ret_1": shared, "ret_2": shared})
    block = np.zeros(2 * len(MID))
    with pytest.raises(ValueError, match="share memory"):  # known_at over the label's bytes
        L.forward_return((MID, TS), 1, out={"ret_1": block[:4], "known_at": {"ret_1": block[:4].view(np.int64)}})


@FAST
@given(series(), st.integers(1, 20), st.booleans())
def test_other_labels_out_write_in_place(s, k, against_mean):
    mid, ts, valid = s
    calls = [
        lambda out: L.smoothed(mid, [k, k + 1], ts=ts, valid=valid, alpha=0.001, out=out),
        lambda out: L.smoothed(mid, k, ts=ts, valid=valid, against="mean" if against_mean else "mid", out=out),
        lambda out: L.ema_return(mid, [k, "1s"], ts=ts, valid=valid, alpha=0.3, out=out),
        lambda out: L.triple_barrier(mid, k, upper=0.003, ts=ts, valid=valid, out=out),
    ]
    for call in calls:
        fresh = call(None)
        first = call(None)
        again = call(first)  # a LabelFrame it returned
        assert_same_labels(again, fresh)
        assert all(again[m] is first[m] for m in fresh)
        assert all(again.known_at[m] is first.known_at[m] for m in fresh if not m.startswith("tb_"))


def test_other_labels_bad_out():
    mid, ts = MID.copy(), TS
    with pytest.raises(ValueError, match=r"out\['smooth_1'\].*float32"):
        L.smoothed((mid, ts), 1, out={"smooth_1": np.zeros(4, np.float32)})
    with pytest.raises(ValueError, match="out has no column 'smooth_class_1'"):
        L.smoothed((mid, ts), 1, alpha=0.1, out={"smooth_1": np.zeros(4)})
    with pytest.raises(ValueError, match=r"out\['ema_1'\] shares memory with mid"):
        L.ema_return((mid, ts), 1, out={"ema_1": mid})
    with pytest.raises(ValueError, match=r"out\['tb_time_1'\].*int64"):
        L.triple_barrier((mid, ts), 1, upper=0.1, out={n: np.zeros(4) for n in ("tb_label_1", "tb_ret_1", "tb_time_1")})
    with pytest.raises(ValueError, match=r"out\['tb_label_1'\] and out\['tb_ret_1'\] share memory"):
        shared = np.zeros(4)
        L.triple_barrier(
            (mid, ts), 1, upper=0.1, out={"tb_label_1": shared, "tb_ret_1": shared, "tb_time_1": np.zeros(4, np.int64)}
        )
    f = L.forward_return((mid, ts), 1)["ret_1"]
    out = np.empty(4)
    assert L.classify(f, 0.001, out=out) is out
    np.testing.assert_array_equal(out, L.classify(f, 0.001))
    with pytest.raises(ValueError, match="out shares memory with x"):
        L.classify(out, 0.001, out=out)
    np.testing.assert_array_equal(mid, MID)
