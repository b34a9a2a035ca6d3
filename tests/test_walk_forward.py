"""Walk-forward studies and run folders: per-fold retraining on past rows only, the
out-of-sample predictions pooled in time order, and what a run folder records."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

import lobfast
from lobfast import models, split
from lobfast.torch import WindowDataset
from lobfast.train import fit, predict, walk_forward, walk_forward_per_symbol

T, F, N = 6, 4, 900


def market(seed: int = 0):
    """Features with a learnable target (a noisy function of the last row) and its raw return."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, F)).astype(np.float32) * np.array([1.0, 3.0, 0.5, 2.0], np.float32) + 5
    raw = 0.5 * X[:, 0] - 0.2 * X[:, 1] + rng.normal(scale=0.5, size=N)
    ts = np.arange(N, dtype=np.int64) * 100_000_000
    return X, raw, ts


def tiny(k: int = 0) -> torch.nn.Module:
    torch.manual_seed(100 + k)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(T * F, 1), torch.nn.Flatten(0))


FIT = dict(loss="mse", epochs=3, batch_size=64, lr=0.01, progress=False, device="cpu")


def folds_of(ts, n=3, **kw):
    return split.walk_forward(ts, n, known_at=ts + 250_000_000, **kw)  # labels known 2.5 rows later


def test_each_fold_trains_on_its_past_and_predicts_its_test_block():
    X, raw, ts = market()
    folds = folds_of(ts, val=0.05)
    res = walk_forward(tiny, X, raw, folds, window=T, raw=raw, **FIT)
    assert len(res.folds) == 3 and len(res.models) == 3
    seen = []
    for k, (f, model) in enumerate(zip(res.folds, res.models)):
        sp = f["split"]
        assert sp.train.max() < sp.test.min() and (not len(sp.val) or sp.val.max() < sp.test.min())
        norm = lobfast.Normalizer("zscore").fit(X, rows=sp.train)  # train rows only
        ds = WindowDataset(X, None, T, indices=sp.test, normalizer=norm)
        want = predict(model, ds)
        assert np.array_equal(f["rows"], ds.ends) and np.array_equal(res.pred[ds.ends], want)
        assert (res.fold[np.isin(res.rows, ds.ends)] == k).all()
        seen.append(ds.ends)
    assert np.array_equal(res.rows, np.concatenate(seen))  # in time order, each row once
    assert np.isnan(np.delete(res.pred, res.rows)).all()
    pooled = lobfast.evaluate.evaluate_predictions(res.pred[res.rows], raw[res.rows], raw[res.rows])
    assert res.metrics == pooled and res.metrics["raw"]["spearman"] > 0.2  # learnable: it learnt
    tab = res.table()
    assert tab.index.tolist() == ["fold 0", "fold 1", "fold 2", "pooled"]
    assert tab.loc["pooled", "raw_n"] == len(res.rows)
    assert "3 folds" in repr(res)


def test_warm_start_starts_each_fold_from_the_previous_weights():
    X, raw, ts = market(1)
    folds = folds_of(ts)
    frozen = {**FIT, "lr": 0.0, "epochs": 1}  # weights do not move: what each fold started from
    cold = walk_forward(tiny, X, raw, folds, window=T, **frozen)
    warm = walk_forward(tiny, X, raw, folds, window=T, warm_start=True, **frozen)
    w = lambda m: torch.cat([p.detach().ravel() for p in m.parameters()])  # noqa: E731
    assert all(torch.equal(w(cold.models[k]), w(tiny(k))) for k in range(3))
    assert all(torch.equal(w(warm.models[k]), w(tiny(0))) for k in range(3))


def test_run_folder_records_the_study(tmp_path):
    X, raw, ts = market(2)
    folds = folds_of(ts)
    bid = 100 + np.cumsum(np.random.default_rng(0).normal(size=N)) * 0.01
    book = (ts, bid, bid + 0.01)
    res = walk_forward(
        tiny, X, raw, folds, window=T, raw=raw, book=book, backtest={"horizon": 5, "fee_bps_taker": 1.0},
        run_dir=tmp_path / "run", seed=7, **FIT,
    )  # fmt: skip
    run = tmp_path / "run"
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["window"] == T and cfg["folds"] == 3 and cfg["seed"] == 7 and len(cfg["splits"]) == 3
    assert json.loads((run / "versions.json").read_text())["lobfast"] == lobfast.__version__
    npz = np.load(run / "predictions.npz")
    assert np.array_equal(npz["rows"], res.rows) and np.array_equal(npz["pred"], res.pred[res.rows])
    assert np.array_equal(npz["ts"], ts[res.rows]) and np.array_equal(npz["fold"], res.fold)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["pooled"]["raw"]["n"] == len(res.rows) and len(metrics["folds"]) == 3
    assert pd.read_csv(run / "metrics.csv", index_col=0).index.tolist()[-1] == "pooled"
    assert json.loads((run / "backtest.json").read_text())["trades"] == res.backtest.trades > 0
    for k in range(3):
        fold = run / f"fold_{k}"
        assert json.loads((fold / "config.json").read_text())["fit"]["seed"] == 7 + k
        assert json.loads((fold / "history.json").read_text())["train_loss"] == res.folds[k]["history"].train_loss
        assert (fold / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for fig in ("predictions.png", "pnl.png"):
        assert (run / fig).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(run.rglob(".*.tmp*"))  # every file written whole


def test_fit_run_dir_records_settings_model_and_history(tmp_path):
    X, raw, _ = market(3)
    model = models.DeepLOBTCN(features=4, head="regression", channels=2, inception=2, tcn_channels=4, seed=1)
    ds = WindowDataset(X, raw, T, indices=slice(0, 600))
    hist = fit(model, ds, epochs=2, batch_size=128, progress=False, run_dir=tmp_path / "r", seed=3)
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["fit"]["seed"] == 3 and cfg["fit"]["loss"] == "huber" and cfg["model"]["class"] == "DeepLOBTCN"
    assert cfg["model"]["config"]["features"] == 4 and cfg["model"]["parameters"] > 0
    assert cfg["data"]["train_windows"] == len(ds) and cfg["data"]["window"] == T
    assert json.loads((tmp_path / "r" / "history.json").read_text())["train_loss"] == hist.train_loss


def test_per_symbol_studies_and_their_summary(tmp_path):
    data = {}
    for s, seed in (("ETHUSDT", 4), ("BTCUSDT", 5)):
        X, raw, ts = market(seed)
        data[s] = {"X": X, "y": raw, "raw": raw, "folds": folds_of(ts, n=2)}
    res, table = walk_forward_per_symbol(lambda s, k: tiny(k), data, window=T, run_dir=tmp_path / "study", **FIT)
    assert set(res) == {"ETHUSDT", "BTCUSDT"}
    assert table.index.tolist() == ["BTCUSDT", "ETHUSDT", "mean", "median", "std"]
    body = table.loc[["BTCUSDT", "ETHUSDT"], "raw_spearman"]
    assert table.loc["mean", "raw_spearman"] == pytest.approx(body.mean())
    assert table.loc["BTCUSDT", "raw_spearman"] == res["BTCUSDT"].metrics["raw"]["spearman"]
    assert (tmp_path / "study" / "BTCUSDT" / "predictions.npz").exists()
    top = pd.read_csv(tmp_path / "study" / "top.csv", index_col=0)
    assert top.index[0] == body.idxmax()
    with pytest.raises(ValueError, match="lacks folds"):
        walk_forward_per_symbol(lambda s, k: tiny(k), {"X1": {"X": 1, "y": 2}}, window=T)


def test_walk_forward_bad_input():
    X, raw, ts = market()
    folds = folds_of(ts)
    with pytest.raises(ValueError, match="folds is empty"):
        walk_forward(tiny, X, raw, [], window=T, **FIT)
    with pytest.raises(ValueError, match="must be in time order"):
        walk_forward(tiny, X, raw, folds[::-1], window=T, **FIT)
    with pytest.raises(TypeError, match="checkpoint_dir is set by walk_forward"):
        walk_forward(tiny, X, raw, folds, window=T, checkpoint_dir="x", **FIT)
    with pytest.raises(ValueError, match="needs both book= and backtest="):
        walk_forward(tiny, X, raw, folds, window=T, book=(ts, raw, raw), **FIT)
    with pytest.raises(ValueError, match="1-D"):
        walk_forward(tiny, X, np.c_[raw, raw], folds, window=T, **FIT)


def test_scaled_targets_are_fitted_per_fold_and_predictions_come_back_in_target_units():
    X, raw, ts = market(6)
    y = raw * 1e4  # targets far from unit scale
    folds = folds_of(ts)
    res = walk_forward(tiny, X, y, folds, window=T, scale_target=True, **FIT)
    for f, model in zip(res.folds, res.models):
        sp = f["split"]
        norm = lobfast.Normalizer("zscore").fit(X, rows=sp.train)
        scaler = lobfast.TargetScaler().fit(y, rows=sp.train)
        ds = WindowDataset(X, None, T, indices=sp.test, normalizer=norm)
        np.testing.assert_array_equal(res.pred[ds.ends], scaler.inverse(predict(model, ds)))
    assert np.nanstd(res.pred) > 100  # target units, not standardised ones


def test_rows_marked_invalid_stay_out_of_the_normaliser_and_the_windows():
    X, raw, ts = market(7)
    X[400:403, 1] = np.nan  # a hole in the recording, marked invalid
    valid = np.isfinite(X).all(axis=1)
    folds = folds_of(ts)  # cut without the mask: the invalid rows fall in a training part
    res = walk_forward(tiny, X, raw, folds, window=T, valid=valid, **FIT)
    for f in res.folds:
        norm = lobfast.Normalizer("zscore").fit(X, rows=f["split"].train, valid=valid)
        np.testing.assert_array_equal(f["normalizer"].params(N)[0], norm.params(N)[0])
    assert len(res.rows) and not np.isin(res.rows, np.arange(400, 403 + T - 1)).any()
