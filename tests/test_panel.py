"""PanelDataset: many symbols' windows as one dataset, each from its own WindowDataset."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lobfast.torch import PanelDataset, WindowDataset, loader  # noqa: E402
from lobfast.train import fit, predict  # noqa: E402

T, F = 5, 3


def part(seed: int, n: int, invalid: tuple[int, ...] = ()):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, F)) + seed
    y = X[:, 0] - 0.5 * X[:, 1] + rng.normal(scale=0.05, size=n)
    valid = np.ones(n, bool)
    valid[list(invalid)] = False
    return X, y, valid


@pytest.fixture(scope="module")
def parts():
    out = {}
    for k, (sym, n, bad) in enumerate((("AAA", 300, (40, 41)), ("BBB", 200, ()), ("CCC", 120, (7,)))):
        X, y, valid = part(k, n, bad)
        out[sym] = WindowDataset(X, y, T, valid=valid)
    return out


def test_positions_run_through_the_symbols_and_batches_equal_each_symbols_own(parts):
    panel = PanelDataset(parts)
    assert len(panel) == sum(len(p) for p in parts.values()) and panel.symbols == ["AAA", "BBB", "CCC"]
    rng = np.random.default_rng(0)
    pos = rng.permutation(len(panel))[:97]
    x, y, sym = panel.batch(pos)
    for i, p in enumerate(pos):
        k = int(np.searchsorted(panel.offsets, p, side="right") - 1)
        want_x, want_y = parts[panel.symbols[k]].batch([p - panel.offsets[k]])
        assert sym[i] == k and torch.equal(x[i], want_x[0]) and torch.equal(y[i], want_y[0])
    # no window crosses a symbol or an invalid row: each is one of its symbol's own windows
    assert np.array_equal(panel.targets, np.concatenate([p.targets for p in parts.values()]))
    assert "AAA" in repr(panel) and len(panel[len(panel) - 1]) == 3


def test_a_shuffled_epoch_sees_every_window_once(parts):
    panel = PanelDataset(parts)
    seen = []
    for _x, y, sym in loader(panel, 64, shuffle=True, seed=3):
        seen += list(zip(sym.tolist(), y.tolist()))
    assert len(seen) == len(panel)
    want = sorted(zip(panel.symbol.tolist(), panel.targets.tolist()))
    assert sorted(seen) == want


def test_one_pooled_model_trains_and_predicts_in_panel_order(parts):
    panel = PanelDataset(parts)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(T * F, 1), torch.nn.Flatten(0))
    hist = fit(model, panel, loss="mse", epochs=15, lr=0.05, batch_size=64, progress=False)
    assert hist.train_loss[-1] < 0.2 * hist.train_loss[0]
    pred = predict(model, panel)
    want = np.concatenate([predict(model, p) for p in parts.values()])
    np.testing.assert_allclose(pred, want, rtol=1e-6, atol=1e-6)  # float32 batches of other sizes
    free = PanelDataset({s: WindowDataset(p.X, None, T) for s, p in parts.items()})
    assert len(free[0]) == 2 and len(predict(model, free)) == len(free)


def test_parts_must_agree(parts):
    X, y, _ = part(9, 50)
    with pytest.raises(ValueError, match="windows of 6x3"):
        PanelDataset({"A": parts["AAA"], "B": WindowDataset(X, y, 6)})
    with pytest.raises(ValueError, match="labelled=False"):
        PanelDataset({"A": parts["AAA"], "B": WindowDataset(X, None, T)})
    with pytest.raises(TypeError, match="must be a WindowDataset"):
        PanelDataset({"A": X})
    with pytest.raises(ValueError, match="at least one symbol"):
        PanelDataset({})
