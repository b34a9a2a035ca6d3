"""PanelDataset straight from the store: windows break at symbols, invalid rows and missing
days; every symbol is split at the same times, purged and embargoed; one pooled model or one
model per symbol trains on it."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pq = pytest.importorskip("pyarrow.parquet")

import lobfast  # noqa: E402
from lobfast import datasets, sim, split, store  # noqa: E402
from lobfast.torch import PanelDataset, PanelSplit, WindowDataset  # noqa: E402
from lobfast.train import evaluate_per_symbol, fit, fit_per_symbol  # noqa: E402

SYMBOLS = ["AAAUSDT", "BBBUSDT", "CCCUSDT"]
FEATURES = ["mid", "spread", "imbalance_1", "ofi", "ofi_w10", "ret", "vol_20", "bid_sz_1"]
LABEL = "ret_60s"  # six 10 s rows ahead: the rows just before a boundary are purged
T = 8
EVERY = 10 * 10**9
HOLE = ("BBBUSDT", "2024-01-02")  # a day whose partitions are missing
INVALID = ("CCCUSDT", "2024-01-02", slice(500, 530))  # rows whose book is invalid


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """3 symbols x 30 h from 2024-01-01 20:00 (3 UTC days) at 10 s; BBB lacks its middle day,
    CCC has 30 rows with an invalid book."""
    base = tmp_path_factory.mktemp("panel")
    flow = sim.calibrate(lobfast.read_binance(datasets.path("spot_btcusdt_20240808")))
    rates = ["limit_rate", "limit_count", "cancel_rate", "cancel_count", "market_rate", "trade_rate"]
    rates += ["birth_rate", "join_rate", "death_rate", "mid_move_rate"]
    flow = dataclasses.replace(flow, **{r: getattr(flow, r) * 0.003 for r in rates})
    for i, sym in enumerate(SYMBOLS):
        m = sim.simulate("30h", flow=flow, seed=i, update_every="10s", levels=8, symbol=sym, start="2024-01-01T20:00")
        m.write_tree(base / "tree", rotate="6h", snapshot_every="1h")
    out = base / "store"
    summary = store.process(base / "tree", out, workers=1, levels=5, every="10s", labels="ret_3,ret_60s", quiet=True)
    assert summary.ok and summary.written == 9, str(summary)
    sym, date = HOLE
    for table in store.TABLES:
        shutil.rmtree(out / table / "venue=spot" / f"symbol={sym}" / f"date={date}", ignore_errors=True)
    sym, date, rows = INVALID
    path = out / "book" / "venue=spot" / f"symbol={sym}" / f"date={date}" / "part-0.parquet"
    t = pq.read_table(path)
    valid = t["valid"].to_numpy(zero_copy_only=False).copy()
    valid[rows] = False
    pa = pytest.importorskip("pyarrow")
    t = t.set_column(t.column_names.index("valid"), "valid", pa.array(valid))
    pq.write_table(t, path)
    return out


@pytest.fixture(scope="module")
def panel(root) -> PanelDataset:
    return PanelDataset.from_store(root, SYMBOLS, T=T, features=FEATURES, label=LABEL, normalizer="zscore")


def _rows(root: Path, sym: str):
    """One symbol's rows as the store gives them: ts, features (in FEATURES order), book valid, label."""
    st = lobfast.open_store(root)
    f = st.load("features", sym)
    b = st.load("book", sym)
    lab = st.load("labels", sym)
    X = np.column_stack([f[n] if n in f else b[n] for n in FEATURES])
    return f.ts, X, b["valid"] != 0, lab[LABEL], lab[f"{LABEL}_known_at"]


def _plain_ends(ts, X, valid, y) -> list[int]:
    """Window ends enumerated one by one: T rows, all valid and finite, each 10 s after the
    one before (no missing row or day inside), and a known label."""
    out = []
    for end in range(T - 1, len(ts)):
        rows = range(end - T + 1, end + 1)
        ok = all(valid[r] and np.isfinite(X[r]).all() for r in rows)
        ok = ok and all(ts[r] - ts[r - 1] == EVERY for r in rows[1:])
        if ok and np.isfinite(y[end]):
            out.append(end)
    return out


def test_windows_never_cross_a_symbol_an_invalid_row_or_a_missing_day(root, panel):
    assert panel.symbols == SYMBOLS and panel.T == T and panel.names == FEATURES
    for sym in SYMBOLS:
        ts, X, valid, y, _ = _rows(root, sym)
        ends = panel.part(sym).ends
        assert ends.tolist() == _plain_ends(ts, X, valid, y), sym
        assert panel.stats[sym]["windows"] == len(ends) and panel.stats[sym]["rows"] == len(ts)
    # the hole: BBB's rows jump a day, and windows end on both sides of it but none spans it
    ts, *_ = _rows(root, "BBBUSDT")
    after = int(np.flatnonzero(np.diff(ts) > EVERY)[0]) + 1
    assert ts[after] - ts[after - 1] > 86_400 * 10**9 and panel.stats["BBBUSDT"]["holes"] == 1
    ends = panel.part("BBBUSDT").ends
    assert (ends < after).any() and (ends >= after + T - 1).any()
    assert not ((ends >= after) & (ends < after + T - 1)).any()
    assert panel.stats["CCCUSDT"]["invalid"] == 30 and panel.stats["AAAUSDT"]["holes"] == 0
    assert panel.stats["AAAUSDT"]["nonfinite"] > 0  # the first rows, before the rolling features have their look-back
    # each window carries its symbol's id
    pos = np.array([0, panel.offsets[1], len(panel) - 1])
    assert panel.batch(pos)[2].tolist() == [0, 1, 2]


def test_batches_equal_the_dict_form_built_by_hand(root, panel):
    parts = {}
    for sym in SYMBOLS:
        ts, X, valid, y, _ = _rows(root, sym)
        ok = valid & np.isfinite(X).all(axis=1)
        norm = lobfast.Normalizer("zscore").fit(X, valid=ok)
        parts[sym] = WindowDataset(X, y, T, indices=_plain_ends(ts, X, valid, y), normalizer=norm, valid=ok)
    hand = PanelDataset(parts)
    assert len(hand) == len(panel)
    pos = np.random.default_rng(0).permutation(len(panel))[:300]
    for a, b in zip(panel.batch(pos), hand.batch(pos)):
        assert torch.equal(a, b)


def test_the_store_form_of_the_constructor(root, panel):
    again = PanelDataset(lobfast.open_store(root), SYMBOLS, None, None, T, features=FEATURES, label=LABEL)
    assert [p.ends.tolist() for p in again.parts] == [p.ends.tolist() for p in panel.parts]
    one = PanelDataset(str(root), "AAAUSDT", "2024-01-02", "2024-01-03", T, features=FEATURES, label=LABEL)
    assert one.symbols == ["AAAUSDT"] and len(one) > 0
    assert one.ts.min() >= lobfast.to_ns("2024-01-02") + (T - 1) * EVERY and one.ts.max() < lobfast.to_ns("2024-01-03")
    every = PanelDataset.from_store(root, T=T, features="mid,spread")  # all symbols, no labels
    assert every.symbols == SYMBOLS and not every.labelled and len(every[0]) == 2
    with pytest.raises(TypeError, match="takes no other arguments"):
        PanelDataset({"A": panel.parts[0]}, SYMBOLS)


def test_bad_requests_are_named(root, panel):
    with pytest.raises(ValueError, match="no column 'nope'"):
        PanelDataset.from_store(root, T=T, features=["mid", "nope"])
    with pytest.raises(ValueError, match="no label 'ret_9'"):
        PanelDataset.from_store(root, T=T, features=["mid"], label="ret_9")
    with pytest.raises(ValueError, match="no rows of ZZZUSDT"):
        PanelDataset.from_store(root, ["AAAUSDT", "ZZZUSDT"], T=T, features=["mid"])
    with pytest.raises(ValueError, match="'vol_10s' of AAAUSDT is never finite"):
        PanelDataset.from_store(root, T=T, features=["mid", "vol_10s"])
    with pytest.raises(ValueError, match="fewer than a window"):
        PanelDataset.from_store(root, "AAAUSDT", "2024-01-02", "2024-01-02T00:00:30", T=T, features=["mid"])
    with pytest.raises(ValueError, match="made from a store"):
        PanelDataset({s: panel.part(s) for s in SYMBOLS}).split()


def _check_cut(panel: PanelDataset, sp: PanelSplit, root: Path, start=None, end=None, embargo_rows=0) -> None:
    """Every symbol cut at the panel's boundaries: no label known at or after the next part's
    start, each part inside its span, the embargo kept, nothing lost but what was dropped."""
    bounds = sp.boundaries.tolist()
    assert len(sp.splits) == len(SYMBOLS)
    for k, sym in enumerate(SYMBOLS):
        s = sp.splits[sym]
        assert s.boundaries.tolist() == bounds
        ts, *_, known = _rows(root, sym)
        parts = [sp.train, sp.val, sp.test] if sp.val is not None else [sp.train, sp.test]
        rows = [s.train, s.val, s.test] if sp.val is not None else [s.train, s.test]
        edges = [start, *bounds, end]
        for i, p in enumerate(parts):
            e = p.parts[k].ends
            gone = i > 0 and sym in sp.left_out  # no training window: its later ones cannot be normalised
            assert e.tolist() == ([] if gone else rows[i].tolist())
            lo, hi = edges[i], edges[i + 1]
            assert lo is None or (ts[e] >= lo).all()
            assert hi is None or (ts[e] < hi).all()
            if hi is not None and i < len(bounds):  # purge: no label reaches into the next part
                assert (known[e] >= 0).all() and (known[e] < hi).all(), (sym, i)
            if i > 0 and embargo_rows:
                first = np.searchsorted(ts, lo)
                assert (e >= first + embargo_rows).all()
        # windows the panel had in the span are in a part, or counted as dropped
        had = panel.parts[k].ends
        inside = np.ones(len(had), bool)
        if start is not None:
            inside &= ts[had] >= start
        if end is not None:
            inside &= ts[had] < end
        kept = sum(len(p.parts[k]) for p in parts)
        assert kept + s.purged + s.embargoed + s.unlabelled + sp.left_out.get(sym, 0) == inside.sum()
        assert (sym in sp.left_out) == (not len(s.train) and len(s.val) + len(s.test) > 0)
    assert sum(s.purged for s in sp.splits.values()) > 0


def test_split_cuts_every_symbol_at_the_same_times_purged_and_embargoed(root, panel):
    sp = panel.split((0.6, 0.2, 0.2), embargo=3)
    train, val, test = sp
    pooled = np.sort(panel.ts)
    assert sp.boundaries.tolist() == split.chronological(pooled, (0.6, 0.2, 0.2)).boundaries.tolist()
    assert (val.ts >= sp.boundaries[0]).all() and (train.ts < sp.boundaries[0]).all()
    _check_cut(panel, sp, root, embargo_rows=3)
    assert "purged" in repr(sp) and len(train) > len(test) > 0
    # the normaliser is each symbol's own, fitted on its training rows only
    for k, sym in enumerate(SYMBOLS):
        _, X, *_ = _rows(root, sym)
        rows = sp.splits[sym].train
        rows = rows[panel._source[sym].valid[rows]]
        for p in sp:
            np.testing.assert_allclose(p.parts[k].normalizer.shift[0], X[rows].mean(axis=0), rtol=1e-12)
    # a two-part split, purged on a horizon in time instead of the labels' known_at
    two = panel.split((0.7, 0.3), known_at="2min")
    assert two.val is None and len(two.boundaries) == 1
    for sym in SYMBOLS:
        ts = panel._source[sym].ts
        assert (ts[two.splits[sym].train] + 120 * 10**9 < two.boundaries[0]).all()


def test_walk_forward_folds_are_the_same_times_for_every_symbol(root, panel):
    # a rolling training window: in one fold it falls in BBB's missing day
    with pytest.warns(lobfast.LobWarning, match="BBBUSDT have no training windows before .* left out of this cut"):
        folds = panel.walk_forward(3, val=0.1, expanding=False)
    assert [list(f.left_out) for f in folds].count(["BBBUSDT"]) == 1
    pooled = np.sort(panel.ts)
    want = split.walk_forward(pooled, 3, val=0.1, expanding=False)
    assert len(folds) == 3
    for f, w in zip(folds, want):
        assert f.boundaries.tolist() == w.boundaries.tolist()
        start = pooled[w.rows[0]]
        end = pooled[w.rows[-1] + 1] if w.rows[-1] + 1 < len(pooled) else None
        _check_cut(panel, f, root, start=start, end=end)
    assert folds[0].test.ts.max() < folds[1].test.ts.min()


def test_one_pooled_model_and_one_model_per_symbol_train_on_the_split(root, panel, tmp_path):
    sp = panel.split((0.6, 0.2, 0.2))
    F = len(FEATURES)

    def make(_symbol=None):
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(T * F, 1), torch.nn.Flatten(0))

    torch.manual_seed(0)
    pooled = make()
    hist = fit(pooled, sp.train, sp.val, loss="mse", epochs=2, batch_size=512, progress=False)
    assert len(hist.train_loss) == 2 and np.isfinite(hist.val_loss).all()
    results, table = evaluate_per_symbol(pooled, sp.test)
    assert sorted(results) == SYMBOLS and table.index.tolist() == [*SYMBOLS, "ALL"]
    assert table.loc["ALL", "target_n"] == len(sp.test)
    each = fit_per_symbol(make, sp, tmp_path, loss="mse", epochs=1, batch_size=512, progress=False)
    assert sorted(each) == SYMBOLS and all((tmp_path / s / "checkpoint.pt").exists() for s in SYMBOLS)
    results, table = evaluate_per_symbol(each, sp.test)
    assert [int(results[s]["target"]["n"]) for s in SYMBOLS] == [len(p) for p in sp.test.parts]
    alone = fit_per_symbol(make, sp.train, tmp_path / "noval", loss="mse", epochs=1, progress=False)
    assert all(np.isnan(h.val_loss).all() for _, h in alone.values())
    with pytest.raises(ValueError, match="no model for BBBUSDT"):
        evaluate_per_symbol({"AAAUSDT": pooled, "CCCUSDT": pooled}, sp.test)


def test_scale_target_standardises_each_symbol_on_its_training_rows(root, panel):
    scaled = PanelDataset.from_store(root, SYMBOLS, T=T, features=FEATURES, label=LABEL, scale_target=True)
    sp = scaled.split((0.6, 0.2, 0.2))
    for k, sym in enumerate(SYMBOLS):
        y = panel._source[sym].y
        train = sp.splits[sym].train
        mean, std = y[train].mean(), y[train].std()
        for p in sp:
            assert p.scalers[sym].mean == mean and p.scalers[sym].std == std
            np.testing.assert_allclose(p.parts[k].targets, (y[p.parts[k].ends] - mean) / std, rtol=1e-12)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(T * len(FEATURES), 1), torch.nn.Flatten(0))
    results, _ = evaluate_per_symbol(model, sp.test)
    pred = lobfast.train.predict(model, sp.test.part("AAAUSDT"))
    want = lobfast.evaluate.regression_metrics(
        sp.test.scalers["AAAUSDT"].inverse(pred), panel._source["AAAUSDT"].y[sp.test.part("AAAUSDT").ends]
    )
    assert results["AAAUSDT"]["target"]["mae"] == pytest.approx(want["mae"], rel=1e-12)
    with pytest.raises(ValueError, match="scale_target=True needs regression labels"):
        PanelDataset.from_store(root, T=T, features=FEATURES, scale_target=True)


def test_tables_that_disagree_are_refused(root, tmp_path):
    other = tmp_path / "store"
    shutil.copytree(root, other)
    shutil.rmtree(other / "labels" / "venue=spot" / "symbol=AAAUSDT" / "date=2024-01-03")
    with pytest.raises(ValueError, match=r"AAAUSDT: the labels table's rows are not the book's \(\d+ rows, the book"):
        PanelDataset.from_store(other, T=T, features=FEATURES, label=LABEL)
    assert len(PanelDataset.from_store(other, T=T, features=FEATURES)) > 0  # without labels it is whole
    with pytest.raises(TypeError, match="PanelDataset takes"):
        PanelDataset([root])
