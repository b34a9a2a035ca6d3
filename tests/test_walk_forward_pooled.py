"""Pooled walk-forward: one model per fold over many symbols, cut at the same split times."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

import lobfast  # noqa: E402
from lobfast import split  # noqa: E402
from lobfast.evaluate import evaluate_predictions  # noqa: E402
from lobfast.torch import PanelDataset, WindowDataset  # noqa: E402
from lobfast.train import PooledWalkForward, predict, walk_forward  # noqa: E402

T, F = 6, 4
H = 250_000_000  # labels known 250 ms after their row
FIT = dict(loss="mse", epochs=2, batch_size=64, lr=0.01, progress=False, device="cpu")


def market(seed: int, n: int, start: int, step: int):
    """Features with a learnable target, its raw return and row times on the symbol's own grid."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, F)).astype(np.float32) * np.array([1.0, 3.0, 0.5, 2.0], np.float32) + 5 + seed
    raw = 0.5 * X[:, 0] - 0.2 * X[:, 1] + rng.normal(scale=0.5, size=n)
    ts = start + np.arange(n, dtype=np.int64) * step
    return X, raw, ts


SYMBOLS = {
    "BTCUSDT": (0, 500, 0, 100_000_000),
    "ETHUSDT": (1, 420, 37_000_000, 120_000_000),
    "SOL": (2, 300, 0, 170_000_000),
}


def tiny(k: int = 0) -> torch.nn.Module:
    torch.manual_seed(100 + k)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(T * F, 1), torch.nn.Flatten(0))


def panel_data(n_splits: int = 3, val: float = 0.1, **kw):
    """``{symbol: {X, y, raw, folds}}`` cut at the same times; also the known_at of each row."""
    data, known = {}, {}
    for s, (seed, n, start, step) in SYMBOLS.items():
        X, raw, ts = market(seed, n, start, step)
        data[s] = {"X": X, "y": raw, "raw": raw}
        known[s] = ts + H
    ts = {s: market(*SYMBOLS[s])[2] for s in SYMBOLS}
    folds = split.panel_walk_forward(ts, n_splits, val=val, known_at="250ms", **kw)
    for s in data:
        data[s]["folds"] = folds[s]
    return data, known, ts


@pytest.fixture(scope="module")
def study():
    data, known, ts = panel_data()
    return data, known, ts, walk_forward(tiny, data, window=T, seed=3, **FIT)


def test_panel_folds_share_their_times_and_purge_every_symbol():
    _, _, ts = panel_data()
    folds = split.panel_walk_forward(ts, 3, val=0.1, known_at="250ms", embargo="300ms")
    assert set(folds) == set(SYMBOLS)
    merged = np.sort(np.concatenate(list(ts.values())))
    want = split.walk_forward(merged, 3, val=0.1)  # the cut of all the symbols' rows together
    ends = [f.boundaries[-1] for f in want[1:]] + [merged[-1] + 1]  # a test block ends where the next starts
    emb = 300_000_000
    for k in range(3):
        b = want[k].boundaries
        for s, t in ts.items():
            f = folds[s][k]
            assert np.array_equal(f.boundaries, b)
            known = np.where(t + H <= t[-1], t + H, -1)  # a label past the symbol's last row is unknown
            ok = known >= 0
            train = ok & (t < b[0]) & (known < b[0])
            val = ok & (t >= b[0] + emb) & (t < b[1]) & (known < b[1])
            test = ok & (t >= b[1] + emb) & (t < ends[k])
            for part, rows in ((train, f.train), (val, f.val), (test, f.test)):
                assert np.array_equal(np.flatnonzero(part), rows)
            assert len(f.train) and len(f.test)
    # one symbol: exactly split.walk_forward
    one = split.panel_walk_forward({"A": ts["SOL"]}, 3, val=0.1, known_at="250ms")["A"]
    ref = split.walk_forward(ts["SOL"], 3, val=0.1, known_at="250ms")
    for a, b in zip(one, ref):
        assert all(np.array_equal(getattr(a, p), getattr(b, p)) for p in ("train", "val", "test", "boundaries"))
        assert (a.purged, a.embargoed, a.unlabelled) == (b.purged, b.embargoed, b.unlabelled)


def test_panel_folds_bad_input():
    _, _, ts = panel_data()
    with pytest.raises(ValueError, match="at least one symbol"):
        split.panel_walk_forward({}, 2)
    with pytest.raises(ValueError, match="rows names symbols that ts has not: 'X'"):
        split.panel_walk_forward(ts, 2, rows={"X": None})
    with pytest.raises(ValueError, match="symbol 'SOL': ts must be sorted"):
        split.panel_walk_forward({**ts, "SOL": ts["SOL"][::-1]}, 2)


def test_pooled_metrics_equal_evaluate_predictions_on_the_concatenation(study):
    data, _, _, res = study
    assert isinstance(res, PooledWalkForward) and res.symbols == list(SYMBOLS) and len(res.models) == 3
    cat = lambda parts: np.concatenate(parts)  # noqa: E731
    for k, f in enumerate(res.folds):
        rows = f["rows"]
        p = cat([res.pred[s][rows[s]] for s in SYMBOLS])
        y = cat([data[s]["y"][rows[s]] for s in SYMBOLS])
        assert f["metrics"] == evaluate_predictions(p, y, y, inflation_margin=np.inf)
        for s in SYMBOLS:
            want = evaluate_predictions(res.pred[s][rows[s]], data[s]["y"][rows[s]], data[s]["raw"][rows[s]])
            assert f["symbols"][s] == want and res.studies[s].folds[k]["metrics"] == want
            assert len(rows[s]) and (res.studies[s].fold[np.isin(res.studies[s].rows, rows[s])] == k).all()
    for s in SYMBOLS:
        r = res.studies[s]
        assert np.array_equal(r.rows, cat([f["rows"][s] for f in res.folds]))  # time order, each row once
        assert np.isnan(np.delete(r.pred, r.rows)).all() and r.metrics == evaluate_predictions(
            r.pred[r.rows], data[s]["y"][r.rows], data[s]["raw"][r.rows]
        )
    p = cat([res.pred[s][res.studies[s].rows] for s in SYMBOLS])
    y = cat([data[s]["y"][res.studies[s].rows] for s in SYMBOLS])
    assert res.metrics == evaluate_predictions(p, y, y)
    assert res.metrics["raw"]["spearman"] > 0.2  # one model learnt across the symbols
    assert res.table().index.tolist() == ["fold 0", "fold 1", "fold 2", "pooled"]
    summary = res.summary()
    assert summary.index.tolist() == ["BTCUSDT", "ETHUSDT", "SOL", "mean", "median", "std"]
    assert summary.loc["mean", "raw_spearman"] == pytest.approx(summary.loc[list(SYMBOLS), "raw_spearman"].mean())
    assert "3 symbols, 3 folds" in repr(res)


def test_no_training_label_reaches_into_its_folds_test_span(study):
    _, known, ts, res = study
    for f in res.folds:
        for s in SYMBOLS:
            val_start, test_start = f["split"][s].boundaries
            trained, tested = f["train_rows"][s], f["rows"][s]
            assert len(trained) and (known[s][trained] < val_start).all()
            assert (ts[s][tested] >= test_start).all()
            assert (known[s][f["split"][s].val] < test_start).all()


def test_each_fold_normalises_each_symbol_on_its_own_training_rows(study):
    data, _, _, res = study
    for f, model in zip(res.folds, res.models):
        for s in SYMBOLS:
            norm = lobfast.Normalizer("zscore").fit(data[s]["X"], rows=f["split"][s].train)
            ds = WindowDataset(data[s]["X"], None, T, indices=f["split"][s].test, normalizer=norm)
            assert np.array_equal(ds.ends, f["rows"][s])
            assert np.array_equal(res.pred[s][ds.ends], predict(model, ds))
            np.testing.assert_array_equal(f["normalizer"][s].params(len(ds.X))[0], norm.params(len(ds.X))[0])


def test_one_symbol_pooled_equals_plain_walk_forward_and_runs_are_deterministic(study):
    data, _, _, res = study
    d = data["ETHUSDT"]
    plain = walk_forward(tiny, d["X"], d["y"], d["folds"], window=T, raw=d["raw"], seed=3, **FIT)
    pooled = walk_forward(tiny, {"ETHUSDT": d}, window=T, seed=3, **FIT)
    assert np.array_equal(plain.pred, pooled.pred["ETHUSDT"], equal_nan=True)
    assert plain.metrics == pooled.metrics == pooled.studies["ETHUSDT"].metrics
    for a, b in zip(plain.models, pooled.models):
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    again = walk_forward(tiny, data, window=T, seed=3, **FIT)
    for s in SYMBOLS:
        assert np.array_equal(again.pred[s], res.pred[s], equal_nan=True)
    other = walk_forward(tiny, data, window=T, seed=4, **FIT)
    assert not np.array_equal(other.pred["SOL"], res.pred["SOL"], equal_nan=True)


def test_datasets_and_panels_are_studied_as_their_usable_windows(study):
    data, _, _, res = study
    parts, folds = {}, {}
    for s, d in data.items():
        X = d["X"].copy()
        valid = np.ones(len(X), bool)
        parts[s] = WindowDataset(X, d["y"], T, valid=valid)
        folds[s] = d["folds"]
    raw = {s: d["raw"] for s, d in data.items()}
    got = walk_forward(tiny, PanelDataset(parts), folds=folds, raw=raw, seed=3, **FIT)
    for s in SYMBOLS:
        assert np.array_equal(got.pred[s], res.pred[s], equal_nan=True)
    # rows a dataset leaves out (invalid, NaN features) are never in a window
    X = data["SOL"]["X"].copy()
    X[150:153] = np.nan
    valid = np.ones(len(X), bool)
    valid[150:153] = False
    got = walk_forward(
        tiny, {**parts, "SOL": WindowDataset(X, data["SOL"]["y"], T, valid=valid)}, folds=folds, seed=3, **FIT
    )
    rows = got.studies["SOL"].rows
    assert len(rows) and not np.isin(rows, np.arange(150, 153 + T - 1)).any()


def test_run_folder_records_the_pooled_study(tmp_path):
    data, _, ts = panel_data(n_splits=2, val=0.0)
    for s, d in data.items():
        bid = 100 + np.cumsum(np.random.default_rng(len(s)).normal(size=len(d["y"]))) * 0.01
        d["book"] = (ts[s], bid, bid + 0.01)
    run = tmp_path / "run"
    res = walk_forward(
        tiny, data, window=T, backtest={"horizon": 5, "fee_bps_taker": 1.0}, run_dir=run, top=2, seed=1, **FIT
    )
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["symbols"] == list(SYMBOLS) and cfg["folds"] == 2 and len(cfg["splits"]) == 2
    npz = np.load(run / "predictions.npz")
    assert npz["symbols"].tolist() == list(SYMBOLS)
    for i, s in enumerate(SYMBOLS):
        at = npz["symbol"] == i
        r = res.studies[s]
        assert np.array_equal(npz["rows"][at], r.rows) and np.array_equal(npz["pred"][at], r.pred[r.rows])
        assert np.array_equal(npz["ts"][at], ts[s][r.rows]) and np.array_equal(npz["fold"][at], r.fold)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["pooled"]["raw"]["n"] == sum(len(r.rows) for r in res.studies.values())
    assert set(metrics["symbols"]) == set(SYMBOLS) and len(metrics["fold_symbols"]) == 2
    summary = pd.read_csv(run / "summary.csv", index_col=0)
    assert summary.index.tolist()[-3:] == ["mean", "median", "std"]
    top = pd.read_csv(run / "top.csv", index_col=0)
    body = summary.loc[list(SYMBOLS), "raw_spearman"]
    assert top.index.tolist() == body.sort_values(ascending=False).index[:2].tolist()
    bt = json.loads((run / "backtest.json").read_text())
    each = [res.studies[s].backtest for s in SYMBOLS]
    assert bt["summed"]["trades"] == sum(b.trades for b in each) > 0
    assert bt["summed"]["net_pnl"] == pytest.approx(sum(b.net_pnl for b in each), abs=1e-12)
    assert set(bt["symbols"]) == set(SYMBOLS)
    assert (run / "fold_1" / "history.json").exists()
    assert (run / "predictions.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(run.rglob(".*.tmp*"))


def test_pooled_bad_input():
    data, _, ts = panel_data(n_splits=2)
    other = split.walk_forward(ts["SOL"], 2, val=0.1, known_at="250ms")  # its own times, not the panel's
    with pytest.raises(ValueError, match="fold 0 of symbol 'SOL' starts its parts at .* same split times"):
        walk_forward(tiny, {**data, "SOL": {**data["SOL"], "folds": other}}, window=T, **FIT)
    with pytest.raises(ValueError, match="'SOL' has 1 folds, 'BTCUSDT' 2"):
        walk_forward(tiny, {**data, "SOL": {**data["SOL"], "folds": data["SOL"]["folds"][:1]}}, window=T, **FIT)
    no_raw = {s: {k: v for k, v in d.items() if k != "raw"} for s, d in data.items()}
    with pytest.raises(ValueError, match="raw is given for some symbols"):
        walk_forward(tiny, {**no_raw, "SOL": data["SOL"]}, window=T, **FIT)
    with pytest.raises(ValueError, match="raw of symbol 'SOL' is given twice"):
        walk_forward(tiny, data, window=T, raw={"SOL": data["SOL"]["raw"]}, **FIT)
    with pytest.raises(ValueError, match="not in the data: 'XRP'"):
        walk_forward(tiny, no_raw, window=T, raw={"XRP": data["SOL"]["raw"]}, **FIT)
    with pytest.raises(ValueError, match="every symbol's book: 'BTCUSDT'"):
        walk_forward(tiny, data, window=T, backtest={"horizon": 5}, **FIT)
    with pytest.raises(TypeError, match="pass y=None"):
        walk_forward(tiny, data, data["SOL"]["y"], window=T, **FIT)
    with pytest.raises(ValueError, match="'SOL' has no folds"):
        walk_forward(tiny, {**data, "SOL": (data["SOL"]["X"], data["SOL"]["y"])}, window=T, **FIT)
    X = data["SOL"]["X"].copy()
    X[7, 2] = np.inf  # in a row marked valid
    with pytest.raises(ValueError, match="symbol 'SOL', fold 0: feature 'column 2' is inf at row 7"):
        walk_forward(tiny, {**data, "SOL": {**data["SOL"], "X": X}}, window=T, **FIT)
    with pytest.raises(ValueError, match="lacks y"):
        walk_forward(tiny, {"A": {"X": 1}}, window=T, **FIT)
    with pytest.raises(TypeError, match="needs window="):
        walk_forward(tiny, data, **FIT)
    with pytest.raises(ValueError, match="cannot name a run folder"):
        walk_forward(tiny, {"a/b": data["SOL"]}, window=T, **FIT)
    with pytest.raises(TypeError, match="checkpoint_dir is set by walk_forward"):
        walk_forward(tiny, data, window=T, checkpoint_dir="x", **FIT)


def test_a_symbol_listed_later_joins_the_folds_it_has_training_rows_in():
    data, ts = {}, {}
    listed = {"OLD": (0, 400, 0, 100_000_000), "NEW": (1, 150, 26_000_000_000, 100_000_000)}
    for s, (seed, n, start, step) in listed.items():
        X, raw, t = market(seed, n, start, step)
        data[s], ts[s] = {"X": X, "y": raw, "raw": raw}, t
    folds = split.panel_walk_forward(ts, 3, known_at={s: t + H for s, t in ts.items()})
    for s in data:
        data[s]["folds"] = folds[s]
    assert not len(folds["NEW"][0].train) and len(folds["NEW"][0].test)  # listed during fold 0's test block
    res = walk_forward(tiny, data, window=T, **FIT)
    new = res.studies["NEW"]
    assert res.folds[0]["normalizer"].keys() == {"OLD"} and not len(res.folds[0]["rows"]["NEW"])
    assert np.isnan(new.pred[folds["NEW"][0].test]).all() and new.folds[0]["metrics"]["target"]["n"] == 0
    assert set(new.fold.tolist()) == {1, 2} and len(res.folds[1]["train_rows"]["NEW"])


def test_pooled_scaled_targets_and_warm_start():
    data, _, _ = panel_data(n_splits=2)
    for d in data.values():
        d["y"] = d["raw"] * 1e4  # far from unit scale
    res = walk_forward(tiny, data, window=T, scale_target=True, **FIT)
    for f, model in zip(res.folds, res.models):
        for s, d in data.items():
            sp = f["split"][s]
            norm = lobfast.Normalizer("zscore").fit(d["X"], rows=sp.train)
            scaler = lobfast.TargetScaler().fit(d["y"], rows=sp.train)  # each symbol's own training rows
            ds = WindowDataset(d["X"], None, T, indices=sp.test, normalizer=norm)
            np.testing.assert_array_equal(res.pred[s][ds.ends], scaler.inverse(predict(model, ds)))
    frozen = {**FIT, "lr": 0.0, "epochs": 1}  # weights do not move: what each fold started from
    warm = walk_forward(tiny, data, window=T, warm_start=True, **frozen)
    w = lambda m: torch.cat([p.detach().ravel() for p in m.parameters()])  # noqa: E731
    assert all(torch.equal(w(m), w(tiny(0))) for m in warm.models)


def test_panel_folds_count_only_the_usable_rows():
    _, _, ts = panel_data()
    usable = np.ones(len(ts["SOL"]), bool)
    usable[100:160] = False  # a hole in one symbol's recording
    folds = split.panel_walk_forward(ts, 2, rows={"SOL": usable}, known_at={"SOL": ts["SOL"] + H})
    merged = np.sort(np.concatenate([ts["BTCUSDT"], ts["ETHUSDT"], ts["SOL"][usable]]))
    want = split.walk_forward(merged, 2)
    for k in range(2):
        assert all(np.array_equal(folds[s][k].boundaries, want[k].boundaries) for s in ts)
        f = folds["SOL"][k]
        assert not np.isin(np.concatenate([f.train, f.test]), np.arange(100, 160)).any()
        assert not folds["BTCUSDT"][k].purged and f.purged  # only SOL's labels were given
