"""lobfast.train: fit, checkpoints and resume, fit_per_symbol, predict, and the checks that
refuse a model whose head does not match its labels."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import lobfast.train as lt  # noqa: E402
from lobfast.torch import WindowDataset, loader  # noqa: E402
from lobfast.train import History, fit, fit_per_symbol, predict  # noqa: E402

T, F = 6, 4


class Linear(torch.nn.Module):
    """A linear model over the flattened window, with a declared head."""

    def __init__(self, outputs: int = 1, task: str = "regression", fail_after: int | None = None):
        super().__init__()
        self.task = task
        self.lin = torch.nn.Linear(T * F, outputs)
        self.calls, self.fail_after = 0, fail_after

    def forward(self, x):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt  # the kernel is interrupted mid-epoch
        out = self.lin(x.flatten(1))
        return out[:, 0] if out.shape[1] == 1 else out


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(800, F)).astype(np.float32)
    y = (X[:, 0] - 0.5 * X[:, 1]).astype(np.float64) + rng.normal(0, 0.05, 800)
    train = WindowDataset(X, y, T, slice(0, 600))
    val = WindowDataset(X, y, T, slice(600, None))
    return X, y, train, val


def test_fit_lowers_the_loss_and_keeps_the_best_epoch(data):
    *_, train, val = data
    torch.manual_seed(0)
    model = Linear()
    h = fit(model, train, val, loss="mse", epochs=15, lr=0.02, batch_size=64, progress=False)
    assert isinstance(h, History) and h.epochs == 15 and h.finished
    assert h.val_loss[-1] < 0.05 * h.val_loss[0]
    assert h.best_epoch == int(np.argmin(h.val_loss))
    # the model carries the best epoch's weights: its validation loss is the best one
    pred = predict(model, val)
    assert np.mean((pred - val.targets) ** 2) == pytest.approx(min(h.val_loss), rel=1e-4)


def test_early_stopping_and_the_plateau_schedule(data):
    *_, train, val = data
    h = fit(Linear(), train, val, loss="mse", epochs=20, lr=0.0, patience=3, lr_patience=0, progress=False)
    assert h.stopped_early and h.epochs == 4 and h.best_epoch == 0  # lr 0: no epoch improves on the first
    assert h.lr == [0.0] * 4


def test_the_plateau_schedule_lowers_the_learning_rate(data):
    *_, train, val = data
    h = fit(Linear(), train, val, loss="mse", epochs=6, lr=1e-7, patience=10, lr_patience=0, lr_factor=0.5,
            progress=False)  # fmt: skip
    assert h.lr[-1] < 1e-7 and all(b <= a for a, b in zip(h.lr, h.lr[1:]))


def test_an_interrupted_fit_resumes_to_the_same_weights(data, tmp_path):
    *_, train, val = data
    kw = dict(loss="huber", epochs=6, lr=0.01, batch_size=128, progress=False, seed=4)
    torch.manual_seed(1)
    straight = Linear()
    h0 = fit(straight, train, val, **kw)

    torch.manual_seed(1)
    model = Linear(fail_after=2 * len(loader(train, 128)) + 3)  # dies in the 3rd epoch
    with pytest.raises(KeyboardInterrupt):
        fit(model, train, val, checkpoint_dir=tmp_path, **kw)
    assert (tmp_path / "checkpoint.pt").exists() and not (tmp_path / "checkpoint.tmp").exists()
    model.fail_after = None
    h1 = fit(model, train, val, checkpoint_dir=tmp_path, **kw)
    assert h1.epochs == 6
    np.testing.assert_allclose(h1.train_loss, h0.train_loss, rtol=1e-5)
    np.testing.assert_allclose(h1.val_loss, h0.val_loss, rtol=1e-5)
    for a, b in zip(model.state_dict().values(), straight.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # a finished run returns at once; asking for more epochs trains on
    calls = model.calls
    assert fit(model, train, val, checkpoint_dir=tmp_path, **kw).epochs == 6 and model.calls == calls
    assert fit(model, train, val, checkpoint_dir=tmp_path, **{**kw, "epochs": 8}).epochs == 8


class Payload:
    """An object whose unpickling creates a file: what a crafted checkpoint could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def test_a_checkpoint_that_would_run_code_is_refused_unread(data, tmp_path):
    *_, train, val = data
    marker = tmp_path / "ran"
    torch.save({"model": Payload(marker), "history": {}}, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match=r"not a checkpoint fit\(\) wrote.*\(io\.open\).*could run code"):
        fit(Linear(), train, val, checkpoint_dir=tmp_path, epochs=1, progress=False)
    assert not marker.exists()
    torch.load(tmp_path / "checkpoint.pt", weights_only=False)["model"].close()  # unpickled, the payload runs
    assert marker.exists()
    torch.save({"model": {}}, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match="not a checkpoint fit\\(\\) wrote: it does not hold bad, best"):
        fit(Linear(), train, val, checkpoint_dir=tmp_path, epochs=1, progress=False)
    h = fit(Linear(), train, val, checkpoint_dir=tmp_path, resume=False, epochs=1, progress=False)
    assert h.epochs == 1  # starting afresh replaces it


def test_fit_per_symbol_skips_the_symbols_already_done(data, tmp_path):
    X, y, train, val = data
    sets = {"BTCUSDT": (train, val), "ETHUSDT": (train, val)}
    built = []

    def make(symbol, fail=None):
        built.append(symbol)
        torch.manual_seed(len(symbol))
        return Linear(fail_after=fail if symbol == "ETHUSDT" else None)

    with pytest.raises(KeyboardInterrupt):
        fit_per_symbol(lambda s: make(s, fail=5), sets, tmp_path, loss="mse", epochs=3, progress=False)
    assert (tmp_path / "BTCUSDT" / "checkpoint.pt").exists()
    done = torch.load(tmp_path / "BTCUSDT" / "checkpoint.pt", weights_only=True)["history"]
    res = fit_per_symbol(make, sets, tmp_path, loss="mse", epochs=3, progress=False)
    assert list(res) == ["BTCUSDT", "ETHUSDT"]
    btc_model, btc_hist = res["BTCUSDT"]
    assert btc_hist.train_loss == done["train_loss"] and btc_model.calls == 0  # not trained again
    assert res["ETHUSDT"][1].epochs == 3
    with pytest.raises(ValueError, match="cannot name a checkpoint folder"):
        fit_per_symbol(make, {"a/b": (train, val)}, tmp_path)


def test_predict_keeps_the_order_of_the_windows(data):
    *_, val = data
    model = Linear(outputs=3, task=None)
    pred = predict(model, val, batch_size=7)
    x, _ = val.batch(np.arange(len(val)))
    with torch.no_grad():
        whole = model(x).double().numpy()
    # float32 outputs of batches of 7 and of one batch of 200 may differ in the last bits (the
    # CPU's kernels depend on the batch size); windows next to each other differ far more
    assert np.abs(np.diff(whole, axis=0)).max(axis=1).min() > 1e-3
    np.testing.assert_allclose(pred, whole, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="in order"):
        predict(model, loader(val, 8, shuffle=True))
    with pytest.raises(ValueError, match="in order"):
        predict(model, loader(val, 8, drop_last=True))


def test_predict_without_labels(data):
    X, y, _, val = data
    model = Linear(outputs=2, task=None)
    unlabelled = WindowDataset(X, None, T, slice(600, None))
    np.testing.assert_array_equal(predict(model, unlabelled, batch_size=7), predict(model, val, batch_size=7))
    np.testing.assert_array_equal(predict(model, loader(unlabelled, 7)), predict(model, val, batch_size=7))
    with pytest.raises(ValueError, match="the training set has no labels"):
        fit(model, unlabelled, progress=False)
    with pytest.raises(ValueError, match="the validation set has no labels"):
        fit(model, val, unlabelled, progress=False)


def test_classification_trains_with_cross_entropy():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(900, F)).astype(np.float32)
    c = np.digitize(X[:, 2], [-0.4, 0.4]).astype(np.int64)  # 0/1/2 from the last row
    ds = WindowDataset(X, c, T)
    torch.manual_seed(0)
    h = fit(Linear(3, "classification"), ds, epochs=25, lr=0.05, batch_size=128, progress=False)
    assert np.isnan(h.val_loss).all() and h.train_loss[-1] < 0.6 * h.train_loss[0]


@pytest.mark.parametrize(
    ("model", "labels", "kw", "error", "message"),
    [
        (lambda: Linear(3, "classification"), "float", {}, ValueError, "class head needs integer class targets"),
        (lambda: Linear(1, "regression"), "float", {"loss": "ce"}, ValueError, "needs a classification head"),
        (lambda: Linear(3, "classification"), "int", {"loss": "mse"}, ValueError, "classification head"),
        (lambda: Linear(1, None), "int", {"loss": "huber"}, ValueError, "needs float targets"),
        (lambda: Linear(3, None), "float", {"loss": "mse"}, ValueError, r"gives \(64, 3\).*labels are \(64,\)"),
        (lambda: Linear(1), "float", {"loss": "l1"}, ValueError, "loss must be one of"),
        (lambda: Linear(1), "float", {"epochs": 0}, ValueError, "epochs and patience"),
    ],
)
def test_model_and_label_mismatches_are_refused(model, labels, kw, error, message):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, F)).astype(np.float32) * 1e3
    y = rng.normal(size=200) if labels == "float" else rng.integers(0, 3, 200)
    with pytest.raises(error, match=message):
        fit(model(), WindowDataset(X, y, T), epochs=kw.pop("epochs", 2), batch_size=64, progress=False, **kw)


def test_a_loss_that_overflows_stops_training():
    X = np.full((100, F), 1e25, np.float32)  # outputs ~1e25: their square overflows float32
    with pytest.raises(FloatingPointError, match="loss became inf in epoch 1"):
        fit(Linear(), WindowDataset(X, np.ones(100), T), loss="mse", epochs=2, progress=False)


def test_an_empty_or_broken_validation_set_is_an_error(data):
    X, y, train, _ = data
    with pytest.raises(ValueError, match="validation set has no usable windows"):
        fit(Linear(), train, WindowDataset(X, y, T, indices=[]), progress=False)
    bad = y.copy()
    bad[700:] = 1e300  # a finite label whose squared error overflows
    with pytest.raises(FloatingPointError, match="validation loss became inf in epoch 1"):
        fit(Linear(), train, WindowDataset(X, bad, T, slice(600, None)), loss="mse", epochs=2, progress=False)


def test_training_data_must_be_windows(data):
    X, y, train, _ = data
    with pytest.raises(TypeError, match="WindowDataset"):
        fit(Linear(), [(X, y)], progress=False)
    empty = WindowDataset(X, y, T, indices=[])
    with pytest.raises(ValueError, match="no usable windows"):
        fit(Linear(), empty, progress=False)


def test_progress_bar_runs(data, capsys):
    *_, train, val = data
    fit(Linear(), train, val, loss="mse", epochs=1, progress=True)


def test_device_auto_is_the_cpu_without_a_gpu():
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert lt.resolve_device("auto").type == want


def test_docstring_examples_run():
    failed, _ = doctest.testmod(lt, optionflags=doctest.ELLIPSIS)
    assert failed == 0


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_trains_and_the_loss_is_taken_in_float32(data, amp):
    _, _, train, val = data
    torch.manual_seed(0)
    model = Linear()
    seen = []
    model.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    hist = fit(model, train, val, epochs=6, lr=0.05, progress=False, amp=amp, device="cpu")
    assert set(seen) == {lt._AMP[amp]}  # the forward ran in low precision
    assert all(np.isfinite(hist.train_loss)) and all(np.isfinite(hist.val_loss))
    assert hist.val_loss[-1] < 0.5 * hist.val_loss[0]  # and still learnt
    assert next(model.parameters()).dtype == torch.float32  # the weights stay float32
    with pytest.raises(ValueError, match="amp must be one of"):
        fit(Linear(), train, epochs=1, progress=False, amp="int8")


def test_compile_trains_through_the_compiled_module(data, monkeypatch):
    """compile=True sends every training and validation batch through torch.compile(model)
    (stood in for here: compiling takes a minute on a CPU) and returns the eager model with
    the trained weights, the same as without compiling."""
    _, _, train, val = data
    compiled = []

    class Stand(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner, self.batches = inner, 0

        def forward(self, x):
            self.batches += 1
            return self.inner(x)

    def fake_compile(model):
        compiled.append(Stand(model))
        return compiled[-1]

    monkeypatch.setattr(torch, "compile", fake_compile)
    runs = []
    for flag in (True, False):
        torch.manual_seed(3)
        model = Linear()
        fit(model, train, val, epochs=2, progress=False, compile=flag, device="cpu")
        runs.append({k: v.clone() for k, v in model.state_dict().items()})
    assert len(compiled) == 1 and compiled[0].batches == 2 * (len(loader(train, 256)) + len(loader(val, 256)))
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_batches_prefetched_on_a_side_stream_equal_the_cpu_batches(data):
    _, _, train, _ = data
    cpu = list(loader(train, 64, shuffle=True, seed=1))
    gpu = list(loader(train, 64, shuffle=True, seed=1, device="cuda"))
    assert len(cpu) == len(gpu)
    for a, b in zip(cpu, gpu):
        assert all(torch.equal(s, t.cpu()) for s, t in zip(a, b))
