"""lobfast.models: shapes, parameter counts against hand arithmetic, causality and receptive
fields, learning on synthetic signals, input checks, scikit-learn baselines."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from torch import nn  # noqa: E402

import lobfast  # noqa: E402
import lobfast.models as models  # noqa: E402
from lobfast.models import Baseline, DeepLOB, DeepLOBTCN, HierarchicalTCN, count_parameters  # noqa: E402


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    # These models are small: a second intra-op thread only adds synchronisation, and when the
    # machine is busy, thread contention made the training tests ~20x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def _x(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------ shapes
@pytest.mark.parametrize("head, width", [("classification", 3), ("regression", 1)])
@pytest.mark.parametrize("T", [100, 50])
def test_deeplob_shapes(head, width, T):
    model = DeepLOB(window=T, head=head)
    assert (model.task, model.n_outputs, model.window, model.receptive_field) == (head, width, T, T)
    assert model(_x(3, T, 40)).shape == (3, width)  # training mode
    with torch.no_grad():
        assert model.eval()(_x(3, T, 40)).shape == (3, width)


def test_deeplob_output_widths_and_relu():
    model = DeepLOB(features=12, window=19, head="regression", n_outputs=2, activation="relu", dropout=0.3)
    assert model(_x(3, 19, 12)).shape == (3, 2)
    assert any(isinstance(m, nn.ReLU) for m in model.modules())
    assert not any(isinstance(m, nn.LeakyReLU) for m in model.modules())
    assert DeepLOB(n_classes=5)(_x(3, 100, 40)).shape == (3, 5)


@pytest.mark.parametrize("head, width", [("classification", 3), ("regression", 1)])
@pytest.mark.parametrize("T", [1, 7, 100])
def test_deeplob_tcn_shapes(head, width, T):
    model = DeepLOBTCN(head=head)
    assert (model.task, model.n_outputs, model.window) == (head, width, None)
    x = _x(3, T, 40)
    assert model(x).shape == (3, width)
    model.eval()
    with torch.no_grad():
        seq = model.forward_sequence(x)
        assert seq.shape == (3, T, width)
        torch.testing.assert_close(model(x), seq[:, -1])


def test_hierarchical_shapes_default_window():
    model = HierarchicalTCN(8)
    assert (model.task, model.n_outputs, model.window) == ("regression", 2, 600)
    assert model(_x(3, 600, 8)).shape == (3, 2)
    assert model.short_to_long.item() == 1.0


def test_hierarchical_shapes_small():
    model = HierarchicalTCN(5, short_steps=30, long_pool=3, long_steps=10, channels=8, heads=2, dropout=0.1)
    assert model.window == 30
    assert model(_x(3, 30, 5)).shape == (3, 2)
    with torch.no_grad():
        assert model.eval()(_x(3, 30, 5)).shape == (3, 2)


# ------------------------------------------------------------------------------ parameter counts
def conv(c_in, c_out, *kernel):
    return c_in * c_out * int(np.prod(kernel)) + c_out  # weights + bias


def bn(c):
    return 2 * c  # weight and bias (running statistics are buffers)


def lstm(n_in, h):
    return 4 * (n_in * h + h * h + 2 * h)  # 4 gates: input weights, hidden weights, two biases


def linear(n_in, n_out):
    return n_in * n_out + n_out


def deeplob_front(levels, C, incep):
    total = 0
    for c_in, width in [(1, 2), (C, 2), (C, levels)]:  # the three blocks
        total += conv(c_in, C, 1, width) + bn(C) + 2 * (conv(C, C, 4, 1) + bn(C))
    branch_3 = conv(C, incep, 1, 1) + bn(incep) + conv(incep, incep, 3, 1) + bn(incep)
    branch_5 = conv(C, incep, 1, 1) + bn(incep) + conv(incep, incep, 5, 1) + bn(incep)
    branch_pool = conv(C, incep, 1, 1) + bn(incep)
    return total + branch_3 + branch_5 + branch_pool


def tcn(c_in, c, n_layers, k):
    first = conv(c_in, c, k) + bn(c) + (conv(c_in, c, 1) if c_in != c else 0)
    return first + (n_layers - 1) * (conv(c, c, k) + bn(c))


def test_deeplob_parameter_count():
    expected = deeplob_front(10, 32, 64) + lstm(192, 64) + linear(64, 3)
    assert expected == 143_907
    assert count_parameters(DeepLOB()) == expected
    small = DeepLOB(features=20, window=30, head="regression", n_outputs=2, channels=8, inception=12, lstm=10)
    assert count_parameters(small) == deeplob_front(5, 8, 12) + lstm(36, 10) + linear(10, 2)


def test_deeplob_tcn_parameter_count():
    expected = deeplob_front(10, 32, 64) + tcn(192, 64, 4, 3) + linear(64, 3)
    assert expected == 164_707
    assert count_parameters(DeepLOBTCN()) == expected
    small = DeepLOBTCN(features=8, head="regression", channels=4, inception=8, tcn_channels=24, dilations=(1, 3))
    assert count_parameters(small) == deeplob_front(2, 4, 8) + tcn(24, 24, 2, 3) + linear(24, 1)


def test_count_parameters_trainable_only():
    model = nn.Linear(4, 2)
    model.bias.requires_grad_(False)
    assert count_parameters(model) == 8


# ------------------------------------------------------------------------------ causality
def _calibrated(model, x):
    """``model`` in eval mode with BatchNorm statistics taken from ``x``.

    Fresh BatchNorm layers normalise nothing in eval mode, and with PyTorch's default
    initialisation the input's influence then fades to ~1e-4 of the output; calibrated, it
    stays of order one, so "changes" and "does not change" are far apart.
    Outputs then reach ~3: "does not change" allows 1e-5 for float32 rounding, which the
    kernels of another CPU may order differently; "changes" asks for 1e-4 (real changes are
    4e-3 and more).
    """
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average: one pass gives the batch statistics
    model.train()
    with torch.no_grad():
        model(x)
    return model.eval()


@pytest.mark.parametrize(
    "kwargs, rf",
    [
        ({}, 1 + 18 + 4 + 30),
        ({"features": 8, "channels": 6, "inception": 6, "tcn_channels": 8, "dilations": (1, 3), "kernel_size": 2}, 27),
        ({"block": "residual"}, 1 + 18 + 4 + 60),  # the reference's 4 blocks reach 61 steps on their own
        (
            {"features": 8, "channels": 4, "inception": 4, "tcn_channels": 8, "dilations": (1, 2), "block": "residual"},
            35,
        ),
    ],
)
def test_deeplob_tcn_causal_and_exact_receptive_field(kwargs, rf):
    model = DeepLOBTCN(**kwargs)
    assert model.receptive_field == rf
    F_, T = model.features, rf + 20
    x = _x(2, T, F_)
    _calibrated(model, _x(8, T, F_, seed=4))
    with torch.no_grad():
        base = model.forward_sequence(x)
        for t in (0, 9, T - 2):  # the future never leaks into the past
            future = x.clone()
            future[:, t + 1 :] += 5 * _x(2, T - t - 1, F_, seed=2)
            out = model.forward_sequence(future)
            torch.testing.assert_close(out[:, : t + 1], base[:, : t + 1], rtol=0, atol=1e-5)
            assert (out[:, t + 1] - base[:, t + 1]).abs().max() > 1e-4
        t = T - 1
        outside, inside = x.clone(), x.clone()
        outside[:, t - rf] += 5.0  # one step beyond the receptive field
        inside[:, t - rf + 1] += 5.0  # its oldest step
        torch.testing.assert_close(model.forward_sequence(outside)[:, t], base[:, t], rtol=0, atol=1e-5)
        assert (model.forward_sequence(inside)[:, t] - base[:, t]).abs().max() > 1e-4


def _changes(model, x, rows) -> torch.Tensor:
    """Absolute change of (short, long) predictions when rows are perturbed, per column."""
    moved = x.clone()
    moved[:, rows] += 5.0
    with torch.no_grad():
        return (model(moved) - model(x)).abs().amax(dim=0)


def test_hierarchical_long_branch_reaches_window_start_short_does_not():
    model = HierarchicalTCN(4, short_steps=16, long_pool=4, long_steps=12, channels=16, dilations=(1, 2, 4))
    _calibrated(model, _x(8, 48, 4, seed=4))
    assert model.receptive_field == 48  # r = 15 pooled steps >= 12: the whole window
    assert model.short_receptive_field == 15
    x = _x(2, 48, 4)
    short, long = _changes(model, x, slice(0, 4))  # the first long_pool rows
    assert short <= 1e-5 and long > 1e-4
    short, long = _changes(model, x, slice(47, 48))  # the newest row reaches both
    assert short > 1e-4 and long > 1e-4


def test_hierarchical_receptive_fields_default():
    model = _calibrated(HierarchicalTCN(3), _x(8, 600, 3, seed=4))
    T, rf, short_rf = 600, model.receptive_field, model.short_receptive_field
    assert (rf, short_rf) == (T, 63)  # the long branch covers the whole window
    x = _x(2, T, 3)
    short, long = _changes(model, x, slice(0, 1))  # the oldest row reaches the long prediction only
    assert short <= 1e-5 and long > 1e-4
    short, _ = _changes(model, x, slice(T - short_rf - 1, T - short_rf))
    assert short <= 1e-5
    short, _ = _changes(model, x, slice(T - short_rf, T - short_rf + 1))
    assert short > 1e-4


def test_hierarchical_shared_front_and_branch_depths_exact_receptive_fields():
    """The reference design: a shared causal DeepLOB front (22 steps of reach) feeding both
    branches, each with its own dilations and residual blocks."""
    model = HierarchicalTCN(
        8, short_steps=8, long_pool=2, long_steps=40, channels=8, heads=2, front="deeplob", front_channels=4,
        front_inception=4, short_dilations=(1,), long_dilations=(1, 2), block="residual",
    )  # fmt: skip
    T = model.window
    # short: min(8, 1 + 2*2*1) + 22; long: max(2 * min(40, 1 + 2*2*3), 8) + 22
    assert (model.short_receptive_field, model.receptive_field, T) == (5 + 22, 26 + 22, 80)
    _calibrated(model, _x(8, T, 8, seed=4))
    rf, srf = model.receptive_field, model.short_receptive_field
    for col, reach in ((0, srf), (1, rf)):  # which input rows each prediction depends on at all
        x = _x(2, T, 8).requires_grad_(True)
        model(x)[:, col].sum().backward()
        touched = x.grad.abs().amax(dim=(0, 2)) > 0  # no path from a row: exactly zero
        assert touched[T - reach :].all() and not touched[: T - reach].any(), (col, reach)


def test_architecture_options_parameter_counts():
    front = deeplob_front(10, 32, 64)
    tanh = DeepLOB(block2_activation="tanh")
    assert count_parameters(tanh) == 143_907  # an activation has no parameters
    acts = [type(m).__name__ for m in tanh.front.blocks[1] if not isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    assert acts == ["Tanh"] * 3
    assert {type(m).__name__ for m in tanh.front.blocks[0]} >= {"LeakyReLU"}
    deep = DeepLOB(lstm_layers=2, bidirectional=True, lstm_input_dropout=0.2)
    assert count_parameters(deep) == front + 2 * lstm(192, 64) + 2 * lstm(128, 64) + linear(128, 3)

    def residual(c_in, c, n_blocks, k):
        first = conv(c_in, c, k) + bn(c) + conv(c, c, k) + bn(c) + (conv(c_in, c, 1) if c_in != c else 0)
        return first + (n_blocks - 1) * (2 * conv(c, c, k) + 2 * bn(c))

    assert count_parameters(DeepLOBTCN(block="residual")) == front + residual(192, 64, 4, 3) + linear(64, 3)
    with pytest.raises(ValueError, match="block must be one of"):
        DeepLOBTCN(block="dense")
    with pytest.raises(ValueError, match="activation must be one of"):
        DeepLOB(block2_activation="gelu")


def test_predict_proba_and_huber_delta():
    model = DeepLOB(window=30, channels=4, inception=4, lstm=8, seed=0).train()
    x = _x(3, 30, 40)
    p = model.predict_proba(x)
    assert model.training  # left as it was
    with torch.no_grad():
        torch.testing.assert_close(p, torch.softmax(model.eval()(x), dim=1))
    torch.testing.assert_close(p.sum(1), torch.ones(3))
    with pytest.raises(ValueError, match="classification head"):
        DeepLOBTCN(head="regression").predict_proba(x)
    reg = DeepLOBTCN(head="regression", channels=4, inception=4, tcn_channels=8)
    pred, y = torch.tensor([[0.0], [5.0]]), torch.tensor([[1.0], [0.0]])
    torch.testing.assert_close(reg.loss(pred, y, delta=2.0), nn.functional.huber_loss(pred, y, delta=2.0))
    h = HierarchicalTCN(4, short_steps=4, long_pool=2, long_steps=4, channels=4, heads=2)
    p2, y2 = torch.tensor([[0.0, 3.0]]), torch.tensor([[4.0, 0.0]])
    want = 0.5 * nn.functional.huber_loss(p2[:, 0], y2[:, 0], delta=3.0) + 0.5 * nn.functional.huber_loss(
        p2[:, 1], y2[:, 1], delta=3.0
    )
    torch.testing.assert_close(h.loss(p2, y2, delta=3.0), want)


# ------------------------------------------------------------------------------ training
def _train(model, x, y, steps=40, lr=1e-2) -> list[float]:
    """A generic loop: the model's own loss."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        loss = model.loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_deeplob_tcn_learns_classification():
    x = _x(128, 12, 8)
    y = (x[:, -1] @ _x(8, seed=3) > 0).long()  # sign of a linear combination of the last row
    model = DeepLOBTCN(features=8, head="classification", n_classes=2, channels=8, inception=8, tcn_channels=16)
    losses = _train(model, x, y)
    assert losses[-1] < 0.6 * losses[0]


def test_deeplob_learns_regression():
    x = _x(128, 20, 8)
    y = x[:, -4:].mean(1) @ _x(8, seed=3)
    model = DeepLOB(features=8, window=20, head="regression", channels=8, inception=8, lstm=16)
    losses = _train(model, x, y)
    assert losses[-1] < 0.6 * losses[0]


def test_hierarchical_learns_two_horizons():
    x = _x(128, 40, 4)
    w = _x(4, seed=3)
    y = torch.stack([x[:, -1] @ w, x.mean(1) @ w * 3], dim=1)  # newest row; whole-window mean
    model = HierarchicalTCN(4, short_steps=10, long_pool=4, long_steps=10, channels=16, dilations=(1, 2, 4))
    losses = _train(model, x, y, steps=50)
    assert losses[-1] < 0.6 * losses[0]


def test_losses():
    model = HierarchicalTCN(2, short_steps=4, long_pool=2, long_steps=4, channels=4, heads=1, short_weight=0.25)
    pred, y = torch.tensor([[0.0, 1.0], [2.0, 0.0]]), torch.tensor([[0.0, 0.0], [0.0, 3.0]])
    expected = 0.25 * nn.functional.mse_loss(pred[:, 0], y[:, 0]) + 0.75 * nn.functional.mse_loss(pred[:, 1], y[:, 1])
    torch.testing.assert_close(model.loss(pred, y, base="mse"), expected)
    assert model.loss(pred, y, base="huber") < model.loss(pred, y, base="mse")
    with pytest.raises(ValueError, match="NaN target at row 1"):
        model.loss(pred, torch.tensor([[0.0, 0.0], [float("nan"), 0.0]]))
    with pytest.raises(ValueError, match="base must be"):
        model.loss(pred, y, base="l1")

    clf = DeepLOBTCN(features=4, channels=2, inception=2, tcn_channels=2, dilations=(1,))
    logits = torch.zeros(2, 3)
    torch.testing.assert_close(clf.loss(logits, torch.tensor([0, 2])), torch.tensor(np.log(3), dtype=torch.float32))
    torch.testing.assert_close(clf.loss(logits, torch.tensor([0.0, 2.0])), clf.loss(logits, torch.tensor([0, 2])))
    with pytest.raises(ValueError, match="NaN target at row 0"):
        clf.loss(logits, torch.tensor([float("nan"), 1.0]))
    with pytest.raises(ValueError, match="fractional"):
        clf.loss(logits, torch.tensor([0.5, 1.0]))
    with pytest.raises(ValueError, match=r"0\.\.2"):
        clf.loss(logits, torch.tensor([0, 3]))
    reg = DeepLOBTCN(features=4, head="regression", channels=2, inception=2, tcn_channels=2, dilations=(1,))
    torch.testing.assert_close(reg.loss(torch.zeros(3, 1), torch.zeros(3)), torch.tensor(0.0))
    with pytest.raises(ValueError, match="do not match"):
        reg.loss(torch.zeros(3, 1), torch.zeros(4))


# ------------------------------------------------------------------------------ bad input
def test_features_not_divisible_by_four():
    with pytest.raises(ValueError, match=r"divisible by 4.*F=42"):
        DeepLOB(features=42)
    with pytest.raises(ValueError, match=r"divisible by 4.*F=10"):
        DeepLOBTCN(features=10)


def test_bad_forward_input():
    model = DeepLOB()
    with pytest.raises(ValueError, match=r"F=36.*\(3, 100, 36\).*40"):
        model(torch.zeros(3, 100, 36))
    with pytest.raises(ValueError, match=r"3-D.*\(100, 40\)"):
        model(torch.zeros(100, 40))
    with pytest.raises(ValueError, match="T=50"):
        model(torch.zeros(3, 50, 40))
    with pytest.raises(TypeError, match="torch.Tensor"):
        model(np.zeros((3, 100, 40), dtype=np.float32))
    tcn_model = DeepLOBTCN()
    with pytest.raises(ValueError, match="F=8"):
        tcn_model(torch.zeros(3, 10, 8))
    with pytest.raises(ValueError, match="no time steps"):
        tcn_model(torch.zeros(3, 0, 40))


def test_deeplob_window_too_short():
    with pytest.raises(ValueError, match="window >= 19"):
        DeepLOB(window=18)
    DeepLOB(window=19)
    with pytest.raises(ValueError, match="T=18"):
        DeepLOB(window=100)(torch.zeros(3, 18, 40))


def test_hierarchical_bad_input():
    model = HierarchicalTCN(4, short_steps=8, long_pool=2, long_steps=8, channels=8)
    with pytest.raises(ValueError, match=r"T=15.*window=16"):
        model(torch.zeros(2, 15, 4))
    with pytest.raises(ValueError, match="F=5"):
        model(torch.zeros(2, 16, 5))
    with pytest.raises(ValueError, match="short_steps=20 exceeds"):
        HierarchicalTCN(4, short_steps=20, long_pool=2, long_steps=8)
    with pytest.raises(ValueError, match="divisible by heads"):
        HierarchicalTCN(4, channels=10, heads=4)
    with pytest.raises(ValueError, match="short_weight"):
        HierarchicalTCN(4, short_weight=1.5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"head": "ranking"}, "head must be"),
        ({"activation": "gelu"}, "activation must be"),
        ({"dropout": 1.0}, "dropout"),
        ({"n_classes": 1}, "n_classes"),
        ({"channels": 0}, "channels"),
        ({"dilations": ()}, "dilations"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DeepLOBTCN(**kwargs)


def test_missing_optional_dependencies(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    spec = importlib.util.spec_from_file_location("_models_without_torch", models.__file__)
    with pytest.raises(ImportError, match=r"needs PyTorch: pip install 'lobfast\[torch\]'"):
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    monkeypatch.setitem(sys.modules, "sklearn.linear_model", None)
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        Baseline()


# ------------------------------------------------------------------------------ baselines
def _windows(n, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 5, 4))


def test_ridge_recovers_linear_signal():
    X = _windows(400)
    w = np.random.default_rng(1).normal(size=20)
    y = X.reshape(400, -1) @ w + 0.1 * np.random.default_rng(2).normal(size=400)
    model = Baseline("ridge", alpha=1.0).fit(X[:300], y[:300])
    pred = model.predict(X[300:])
    r2 = 1 - np.sum((pred - y[300:]) ** 2) / np.sum((y[300:] - y[300:].mean()) ** 2)
    assert r2 > 0.9
    assert model.task == "regression"
    rows = Baseline("ridge", features="last").fit(X[:300, -1], y[:300])  # (N, F) rows work too
    assert rows.predict(X[300:]).shape == (100,)  # and windows use their last row


def test_logistic_beats_chance():
    X = _windows(600)
    y = (X[:, -1] @ np.array([1.0, -2.0, 0.5, 0.0]) > 0).astype(np.int64)
    model = Baseline("logistic", features="last").fit(X[:400], y[:400])
    accuracy = np.mean(model.predict(X[400:]) == y[400:])
    assert accuracy > 0.9
    proba = model.predict_proba(X[400:])
    assert proba.shape == (200, 2)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    assert model.classes_.tolist() == [0, 1]
    assert model.task == "classification"
    floats = Baseline("logistic", features="last").fit(X[:400], y[:400].astype(float))  # whole-valued floats are fine
    np.testing.assert_array_equal(floats.predict(X[400:]), model.predict(X[400:]))


def test_baseline_refuses_labels_as_features():
    lab = lobfast.LabelFrame(np.arange(60), r=np.random.default_rng(0).normal(size=60))
    with pytest.raises(TypeError, match="labels are never features"):
        Baseline().fit(lab["r"][:, None], lab["r"])
    with pytest.raises(TypeError, match="labels are never features"):
        Baseline().fit(lab.to_numpy(), lab["r"])
    assert Baseline().fit(_windows(60), lab["r"]).task == "regression"  # labels as targets are fine


def test_baseline_bad_input():
    X = _windows(50)
    y = np.arange(50) % 2
    with pytest.raises(ValueError, match="non-integer"):
        Baseline("logistic").fit(X, y + 0.5)
    bad = X.copy()
    bad[7, 2, 1] = np.nan
    with pytest.raises(ValueError, match="row 7"):
        Baseline().fit(bad, y)
    with pytest.raises(ValueError, match="y has NaN.*row 3"):
        Baseline().fit(X, np.where(np.arange(50) == 3, np.nan, 1.0))
    with pytest.raises(ValueError, match="rows"):
        Baseline().fit(X, y[:10])
    with pytest.raises(RuntimeError, match="fit"):
        Baseline().predict(X)
    fitted = Baseline().fit(X, y)
    with pytest.raises(ValueError, match="fitted on 20"):
        fitted.predict(X[:, :3])
    with pytest.raises(ValueError, match="row 7"):
        fitted.predict(bad)
    with pytest.raises(AttributeError, match="logistic"):
        fitted.predict_proba(X)
    with pytest.raises(ValueError, match="kind"):
        Baseline("lasso")
    with pytest.raises(ValueError, match="features"):
        Baseline(features="mean")
    with pytest.raises(ValueError, match="alpha"):
        Baseline(alpha=0)
