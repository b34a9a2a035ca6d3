"""lobfast.evaluate: metrics against scipy / scikit-learn, the raw-return comparison, tables, figures."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.stats as ss
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

import lobfast
from lobfast import LobWarning
from lobfast import evaluate as E

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def quietly(fn, *args, **kw):
    """scikit-learn warns on classes missing from one side; the values are what matter here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


# ------------------------------------------------------------------------------ regression
@st.composite
def paired(draw):
    n = draw(st.integers(2, 60))
    span = draw(st.sampled_from([3, 20, 10**6]))  # a small span makes many ties
    vals = st.integers(-span, span)
    p = np.array(draw(st.lists(vals, min_size=n, max_size=n)), dtype=np.float64) / 7
    t = np.array(draw(st.lists(vals, min_size=n, max_size=n)), dtype=np.float64) / 3
    holes = draw(st.lists(st.integers(0, n - 1), max_size=n // 3))
    p_nan = p.copy()
    t_nan = t.copy()
    for k, i in enumerate(holes):
        (p_nan if k % 2 else t_nan)[i] = np.nan
    return p_nan, t_nan


@FAST
@given(paired())
def test_regression_matches_scipy_and_sklearn(data):
    p, t = data
    m = E.regression_metrics(p, t)
    ok = ~np.isnan(p) & ~np.isnan(t)
    pk, tk = p[ok], t[ok]
    assert m["n"] == ok.sum()
    if m["n"] < 2:
        assert all(np.isnan(m[k]) for k in ("pearson", "spearman", "mae", "rmse", "r2"))
        return
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(tk, pk), rel=1e-12, abs=1e-12)
    assert m["rmse"] == pytest.approx(skm.root_mean_squared_error(tk, pk), rel=1e-12, abs=1e-12)
    if np.ptp(tk) > 0:
        assert m["r2"] == pytest.approx(skm.r2_score(tk, pk), rel=1e-9, abs=1e-9)
    else:
        assert np.isnan(m["r2"])
    if np.ptp(pk) > 0 and np.ptp(tk) > 0:
        assert m["pearson"] == pytest.approx(ss.pearsonr(pk, tk).statistic, abs=1e-9)
        assert m["spearman"] == pytest.approx(ss.spearmanr(pk, tk).statistic, abs=1e-9)
    else:
        assert np.isnan(m["pearson"]) and np.isnan(m["spearman"])


def test_regression_ties_and_nan_rows_by_hand():
    p = np.array([1.0, 2.0, 2.0, np.nan, 3.0, 5.0])
    t = np.array([1.0, 1.0, 2.0, 9.0, np.nan, 4.0])
    m = E.regression_metrics(p, t)
    assert m["n"] == 4
    # rows 0, 1, 2, 5: pred ranks 1, 2.5, 2.5, 4; target ranks 1.5, 1.5, 3, 4
    assert m["spearman"] == pytest.approx(ss.spearmanr([1, 2, 2, 5], [1, 1, 2, 4]).statistic)
    assert m["mae"] == pytest.approx((0 + 1 + 0 + 1) / 4)
    assert m["rmse"] == pytest.approx(np.sqrt(2 / 4))
    assert m["r2"] == pytest.approx(1 - 2 / np.sum((np.array([1, 1, 2, 4]) - 2) ** 2))


def test_regression_too_few_rows_is_nan_not_an_error():
    m = E.regression_metrics([1.0, np.nan], [np.nan, 2.0])
    assert m["n"] == 0 and np.isnan(m["pearson"]) and np.isnan(m["rmse"])
    assert E.regression_metrics([1.0], [2.0])["n"] == 1
    assert np.isnan(E.regression_metrics([], [])["mae"])


@pytest.mark.parametrize(
    ("pred", "target"),
    [(np.zeros(3), np.zeros(4)), (np.zeros((3, 1)), np.zeros(3)), (np.zeros(3), np.zeros((3, 2)))],
)
def test_regression_shape_errors_name_both_shapes(pred, target):
    with pytest.raises(ValueError, match=rf"{pred.shape}.*{target.shape}".replace("(", r"\(").replace(")", r"\)")):
        E.regression_metrics(pred, target)


# ------------------------------------------------------------------------------ classification
@st.composite
def classes(draw):
    n = draw(st.integers(1, 80))
    c = draw(st.integers(2, 4))
    cls = st.integers(0, c - 1)
    return (
        np.array(draw(st.lists(cls, min_size=n, max_size=n))),
        np.array(draw(st.lists(cls, min_size=n, max_size=n))),
        c,
    )


@FAST
@given(classes())
def test_classification_matches_sklearn(data):
    p, t, c = data
    m = E.classification_metrics(p, t, n_classes=c)
    assert m["n"] == len(t)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(t, p))
    assert m["balanced_accuracy"] == pytest.approx(quietly(skm.balanced_accuracy_score, t, p))
    assert m["macro_f1"] == pytest.approx(quietly(skm.f1_score, t, p, average="macro"))
    assert m["mcc"] == pytest.approx(quietly(skm.matthews_corrcoef, t, p), abs=1e-12)
    np.testing.assert_array_equal(m["confusion"], skm.confusion_matrix(t, p, labels=np.arange(c)))
    assert m["confusion"].dtype == np.int64 and m["confusion"].shape == (c, c)


def test_classification_float_targets_nan_rows_and_scores():
    t = np.array([0.0, 1.0, 2.0, np.nan, 2.0])  # e.g. classify(...) + 1, NaN where unknown
    scores = np.array([[0.9, 0.05, 0.05], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4], [0.6, 0.2, 0.2]])
    m = E.classification_metrics(scores, t)
    assert m["n"] == 4
    np.testing.assert_array_equal(m["confusion"], [[1, 0, 0], [0, 1, 0], [1, 0, 1]])
    assert m["accuracy"] == 0.75
    scores[1, 0] = np.nan  # a row without a prediction is dropped too
    assert E.classification_metrics(scores, t)["n"] == 3


def test_classification_labels_from_classify_plus_one():
    y = lobfast.labels.classify(np.array([0.2, -0.3, 0.0, 0.05, np.nan]), 0.1)
    with pytest.raises(ValueError, match="add 1 to get 0 = down, 1 = flat, 2 = up"):
        E.classification_metrics(np.zeros(5), y)
    m = E.classification_metrics(np.array([2, 0, 1, 2, 1]), y + 1)
    assert m["n"] == 4 and m["accuracy"] == 0.75


def test_classification_bad_inputs():
    with pytest.raises(ValueError, match="a class head needs class targets"):
        E.classification_metrics([0, 1], [0.0, 0.37])
    with pytest.raises(ValueError, match="a class head needs class targets"):
        E.classification_metrics([0, 1], [0.0, np.inf])
    with pytest.raises(ValueError, match="pred must be class indices"):
        E.classification_metrics([0.5, 1], [0, 1])
    with pytest.raises(ValueError, match="shapes"):
        E.classification_metrics([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="class 2 occurs"):
        E.classification_metrics([0, 2], [0, 1], n_classes=2)
    with pytest.raises(ValueError, match="positive int"):
        E.classification_metrics([0, 1], [0, 1], n_classes=0)
    with pytest.raises(ValueError, match="scores for 2 classes"):
        E.classification_metrics(np.eye(2), [0, 1], n_classes=3)
    empty = E.classification_metrics([np.nan], [1], n_classes=3)
    assert empty["n"] == 0 and np.isnan(empty["accuracy"]) and empty["confusion"].sum() == 0


# ------------------------------------------------------------------------------ evaluate_predictions
def test_raw_return_classification_by_hand():
    pred = np.array([2, 2, 0, 1, 0, 2, 1])  # up up down flat down up flat
    target = np.array([2, 1, 0, 1, 0, 2, 2])  # smoothed-label classes
    raw = np.array([0.004, -0.002, -0.001, 0.003, 0.0, np.nan, -0.001])
    with pytest.raises(ValueError, match="pass n_classes"):
        E.evaluate_predictions(pred, target, raw, task="classification")
    r = E.evaluate_predictions(pred, target, raw, task="classification", n_classes=3)
    assert set(r) == {"target", "raw"}
    assert r["target"]["accuracy"] == pytest.approx(5 / 7)
    raw_m = r["raw"]
    assert raw_m["n"] == 6  # row 5 has no raw return
    # calls with a nonzero return: rows 0 (up, +), 1 (up, -), 2 (down, -); row 4 has return 0
    assert raw_m["n_directional"] == 3
    assert raw_m["directional_accuracy"] == pytest.approx(2 / 3)
    assert raw_m["coverage"] == pytest.approx(4 / 6)
    assert raw_m["mean_return_up"] == pytest.approx((0.004 - 0.002) / 2)
    assert raw_m["mean_return_down"] == pytest.approx(-0.001 / 2)
    assert raw_m["mean_return_flat"] == pytest.approx((0.003 - 0.001) / 2)
    assert raw_m["up_minus_down"] == pytest.approx(0.001 + 0.0005)
    d = np.array([1, 1, -1, 0, -1, 0])
    rr = np.array([0.004, -0.002, -0.001, 0.003, 0.0, -0.001])
    assert raw_m["pearson"] == pytest.approx(ss.pearsonr(d, rr).statistic)
    assert raw_m["spearman"] == pytest.approx(ss.spearmanr(d, rr).statistic)


def test_raw_return_two_classes_and_regression():
    r = E.evaluate_predictions([1, 0, 1], [1, 0, 0], [0.01, 0.02, -0.01], task="classification", n_classes=2)
    assert r["raw"]["directional_accuracy"] == pytest.approx(1 / 3)
    assert np.isnan(r["raw"]["mean_return_flat"]) and r["raw"]["coverage"] == 1.0
    with pytest.raises(ValueError, match="needs 2 classes"):
        E.evaluate_predictions([3, 0], [1, 0], [0.1, 0.2], task="classification", n_classes=4)

    # a smoothed target the model fits well, the raw return it barely predicts
    pred = np.array([0.1, 0.2, -0.1, -0.2, 0.0])
    smooth = pred * 2
    raw = np.array([-0.3, 0.1, 0.2, -0.1, 0.5])
    with pytest.warns(LobWarning, match=r"exceeds the rank IC against the raw return \(-0\.100\) by 1\.100"):
        r = E.evaluate_predictions(pred, smooth, raw)
    assert r["target"]["pearson"] == pytest.approx(1.0)
    gap = 1.0 - E.regression_metrics(pred, raw)["spearman"]
    want = {**E.regression_metrics(pred, raw), "directional_accuracy": 0.5, "n_directional": 4}
    assert r["raw"] == {**want, "target_minus_raw_ic": pytest.approx(gap)}
    assert "raw" not in E.evaluate_predictions(pred, smooth)
    with pytest.raises(ValueError, match="task"):
        E.evaluate_predictions(pred, smooth, task="ranking")
    with pytest.raises(ValueError, match="raw_return"):
        E.evaluate_predictions(pred, smooth, raw[:3])


def test_an_inflated_target_metric_warns():
    """A target the model fits (a smoothed one) while the raw return is noise: a LobWarning
    naming both ICs; none within the margin plus the noise of n rows, or on the raw return."""
    rng = np.random.default_rng(7)
    pred = rng.normal(size=500)
    smooth, raw = pred * 2 + rng.normal(scale=0.5, size=500), rng.normal(size=500)
    with pytest.warns(LobWarning, match=r"rank IC against the target \(0\.9\d\d\) exceeds the rank IC against the raw"):
        r = E.evaluate_predictions(pred, smooth, raw)
    gap = r["raw"]["target_minus_raw_ic"]
    assert gap == pytest.approx(r["target"]["spearman"] - r["raw"]["spearman"]) and gap > 0.8
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        E.evaluate_predictions(pred, smooth, raw, inflation_margin=gap - 2 / np.sqrt(500) + 0.01)
        E.evaluate_predictions(pred, raw, raw)
        E.evaluate_predictions(pred[:40], smooth[:40] * 0 + rng.normal(size=40), raw[:40])


# ------------------------------------------------------------------------------ table, figures
def test_summary_table_sorted_with_mean_row():
    rng = np.random.default_rng(1)
    res = {}
    for sym in ("SOLUSDT", "BTCUSDT", "ETHUSDT"):
        p, y = rng.normal(size=50), rng.normal(size=50)
        res[sym] = E.evaluate_predictions(p, y * 0.5 + p, y, inflation_margin=np.inf)  # (inflated on purpose)
    table = E.summary_table(res)
    assert table.index.tolist() == ["BTCUSDT", "ETHUSDT", "SOLUSDT", "ALL"]
    assert table.index.name == "symbol"
    assert {"target_pearson", "raw_pearson", "target_mae", "raw_directional_accuracy"} <= set(table.columns)
    body = table.drop(index="ALL")
    assert table.loc["ALL", "raw_spearman"] == pytest.approx(body["raw_spearman"].mean())
    assert table.loc["ALL", "raw_n"] == 150  # counts are summed
    cls = E.evaluate_predictions([0, 1, 2], [0, 1, 1], [0.1, 0.0, 0.2], task="classification", n_classes=3)
    t2 = E.summary_table({"X": cls})
    assert "target_confusion" not in t2.columns and "raw_mean_return_up" in t2.columns
    with pytest.raises(ValueError, match="ALL"):
        E.summary_table({"ALL": cls})
    with pytest.raises(ValueError, match="non-empty"):
        E.summary_table({})


def test_figures_render_to_png(tmp_path):
    from matplotlib.figure import Figure

    rng = np.random.default_rng(0)
    hist = {"train_loss": [1.0, 0.8, 0.7, 0.65], "val_loss": [1.1, 0.9, 0.95, np.nan], "lr": [1e-3, 1e-3, 5e-4, 2.5e-4]}
    f1 = E.plot_history(hist, tmp_path / "history.png")
    x = rng.normal(size=300)
    f2 = E.plot_predictions(x, 0.3 * x + rng.normal(size=300), tmp_path / "scatter.png", title="BTCUSDT")
    big = rng.normal(size=6000)
    f3 = E.plot_predictions(big, big + rng.normal(size=6000), tmp_path / "hexbin.png")
    res = {s: E.evaluate_predictions(rng.normal(size=40), rng.normal(size=40), rng.normal(size=40)) for s in "ABC"}
    f4 = E.plot_per_symbol(E.summary_table(res), "raw_spearman", tmp_path / "bars.png")
    f5 = E.plot_per_symbol({"A": 0.1, "B": -0.05}, "IC")
    for f in (f1, f2, f3, f4, f5):
        assert isinstance(f, Figure)
    for name in ("history", "scatter", "hexbin", "bars"):
        data = (tmp_path / f"{name}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert f2.axes[0].get_title().startswith("BTCUSDT: IC ")
    with pytest.raises(KeyError, match="no column"):
        E.plot_per_symbol(E.summary_table(res), "nope")
    with pytest.raises(ValueError, match="train_loss"):
        E.plot_history({"loss": [1.0]})
