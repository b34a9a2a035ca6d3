"""Saved models that predict new data, seeded weights and reproducible runs, exported programs."""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest
import torch
from conftest import USDM_BTC_0808

import lobfast
from lobfast import models
from lobfast.torch import WindowDataset
from lobfast.train import fit, predict

SMALL = {
    "DeepLOB": lambda seed=None: models.DeepLOB(
        window=30, head="regression", channels=4, inception=4, lstm=8, seed=seed
    ),
    "DeepLOBTCN": lambda seed=None: models.DeepLOBTCN(
        head="regression", channels=4, inception=4, tcn_channels=8, seed=seed
    ),
    "HierarchicalTCN": lambda seed=None: models.HierarchicalTCN(
        40, short_steps=10, long_pool=3, long_steps=10, channels=8, heads=2, dilations=(1, 2), seed=seed
    ),
}


def weights(m: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def data():
    md = lobfast.read_binance(str(USDM_BTC_0808))
    book = lobfast.reconstruct(md.depth, levels=10, every="100ms")
    y = lobfast.labels.forward_return(book, 20)["ret_20"] * 1e4
    norm = lobfast.Normalizer("zscore").fit(book, rows=slice(0, 2000))
    return md, book, y, norm


@pytest.mark.parametrize("name", list(SMALL))
def test_seed_gives_the_same_weights_and_leaves_the_global_generator_alone(name):
    torch.manual_seed(123)
    expect_next = torch.rand(3)
    torch.manual_seed(123)
    a = weights(SMALL[name](seed=5))
    assert torch.equal(torch.rand(3), expect_next)  # the caller's random state is untouched
    b = weights(SMALL[name](seed=5))
    c = weights(SMALL[name](seed=6))
    assert same(a, b) and not same(a, c)
    d, e = weights(SMALL[name]()), weights(SMALL[name]())  # unseeded: torch's generator, as before
    assert not same(d, e)
    with pytest.raises(ValueError, match="seed must be an int >= 0"):
        SMALL[name](seed=-1)


def test_two_seeded_cpu_runs_give_identical_weights(data):
    """Model seed (weights) + fit seed (order and dropout): the same trained weights, bit for bit."""
    _, book, y, norm = data
    ds = WindowDataset(book, y, 30, indices=slice(0, 400), normalizer=norm)
    runs = []
    for _ in range(2):
        m = models.DeepLOBTCN(head="regression", channels=4, inception=4, tcn_channels=8, dropout=0.2, seed=11)
        fit(m, ds, epochs=1, batch_size=64, progress=False, seed=4, device="cpu")
        runs.append(weights(m))
    assert same(*runs)
    m = models.DeepLOBTCN(head="regression", channels=4, inception=4, tcn_channels=8, dropout=0.2, seed=11)
    fit(m, ds, epochs=1, batch_size=64, progress=False, seed=5, device="cpu")
    assert not same(runs[0], weights(m))  # another data order


@pytest.mark.parametrize("name", list(SMALL))
def test_saved_model_predicts_new_data_like_the_training_code_path(name, data, tmp_path):
    _, book, y, norm = data
    m = SMALL[name](seed=2)
    T = m.window or 40
    target = np.column_stack([y, y]) if m.n_outputs == 2 else y
    fit(
        m,
        WindowDataset(book, target, T, indices=slice(0, 600), normalizer=norm),
        epochs=1,
        batch_size=256,
        progress=False,
    )
    path = tmp_path / "model.pt"
    models.save(path, m, normalizer=norm, window=T, labels={"label": "ret_20", "scale": 1e4}, meta={"note": "x"})
    p = models.load(path)
    assert isinstance(p, models.Predictor) and p.window == T and p.levels == 10 and p.features is None
    assert p.labels == {"label": "ret_20", "scale": 1e4} and p.meta["note"] == "x" and p.meta["lobfast"]
    assert same(weights(p.model), weights(m)) and type(p.model) is type(m) and not p.model.training
    new = book[1500:]  # rows the model never saw
    got = p.predict(new)
    ds = WindowDataset(new, None, T, normalizer=norm)
    want = predict(m.eval(), ds)
    assert got.shape[0] == len(new) and np.array_equal(got[ds.ends], want)
    others = np.setdiff1d(np.arange(len(new)), ds.ends)
    assert len(others) >= T - 1 and np.isnan(got[others]).all()


def test_saved_feature_model_computes_its_features_and_refuses_other_data(data, tmp_path):
    md, book, _, _ = data
    spec = ["mid", "spread", "imbalance_5", "ofi", "vol_20", "signed_volume", "ofi_1s", "microprice"]
    f = lobfast.features(book, md.trades, spec=spec)
    ok = np.isfinite(f.to_numpy()).all(axis=1)
    norm = lobfast.Normalizer("zscore").fit(f, rows=np.flatnonzero(ok[:2000]))
    m = models.HierarchicalTCN(len(spec), short_steps=10, long_pool=3, long_steps=10, channels=8, heads=2, seed=0)
    path = tmp_path / "f.pt"
    models.save(path, m, normalizer=norm, features=spec)
    p = models.load(path)
    got = p.predict(book, md.trades)
    ds = WindowDataset(f, None, 30, normalizer=norm, valid=ok)
    assert np.array_equal(got[ds.ends], predict(m.eval(), ds)) and np.isnan(got[: 30 - 1]).all()
    assert np.array_equal(p.predict(f), got, equal_nan=True)  # features given directly
    with pytest.raises(ValueError, match="trained on the columns"):
        p.predict(f[["mid", "spread"]])
    with pytest.raises(ValueError, match="features names 3"):
        models.save(path, m, features=spec[:3])
    book5 = lobfast.reconstruct(md.depth, levels=5, every="100ms")
    tcn = models.DeepLOBTCN(head="regression", channels=4, inception=4, tcn_channels=8)
    models.save(tmp_path / "b.pt", tcn, window=40)
    with pytest.raises(ValueError, match="trained on 10 book levels; the book has 5"):
        models.load(tmp_path / "b.pt").predict(book5)
    with pytest.raises(TypeError, match="reads the book"):
        models.load(tmp_path / "b.pt").predict(f)


def test_rolling_normaliser_is_fitted_again_on_the_new_data_from_earlier_periods(data, tmp_path):
    _, book, _, _ = data
    norm = lobfast.Normalizer("rolling_zscore", period="1min", lookback=2).fit(book)
    m = models.DeepLOBTCN(head="regression", channels=4, inception=4, tcn_channels=8, seed=1)
    models.save(tmp_path / "r.pt", m, normalizer=norm, window=40)
    p = models.load(tmp_path / "r.pt")
    new = book[600:]
    got = p.predict(new)
    again = lobfast.Normalizer("rolling_zscore", period="1min", lookback=2).fit(new)
    ds = WindowDataset(new, None, 40, normalizer=again)
    assert np.array_equal(got[ds.ends], predict(m.eval(), ds))
    assert np.isnan(got[: int(np.argmax(again.usable))]).all()  # the first minute has no earlier data


def test_save_and_load_refuse_what_they_cannot_keep(tmp_path):
    tcn = models.DeepLOBTCN(head="regression", channels=4, inception=4, tcn_channels=8)
    with pytest.raises(ValueError, match="pass the window="):
        models.save(tmp_path / "a.pt", tcn)
    with pytest.raises(TypeError, match="takes a DeepLOB"):
        models.save(tmp_path / "a.pt", torch.nn.Linear(3, 2))
    with pytest.raises(ValueError, match="not fitted"):
        models.save(tmp_path / "a.pt", tcn, window=40, normalizer=lobfast.Normalizer("zscore"))
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a saved lobfast model"):
        models.load(tmp_path / "junk.pt")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a saved lobfast model"):
        models.load(tmp_path / "other.pt")
    models.save(tmp_path / "ok.pt", tcn, window=40)
    bundle = torch.load(tmp_path / "ok.pt", weights_only=True)
    torch.save({**bundle, "version": 99}, tmp_path / "new.pt")
    with pytest.raises(ValueError, match="format version 99"):
        models.load(tmp_path / "new.pt")

    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    with open(tmp_path / "evil.pt", "wb") as fh:
        pickle.dump({"format": "lobfast.predictor", "x": Evil()}, fh)
    with pytest.raises(ValueError, match="holds objects other than tensors"):
        models.load(tmp_path / "evil.pt")


@pytest.mark.parametrize("name", list(SMALL))
def test_exported_program_equals_the_eager_model(name, tmp_path):
    m = SMALL[name](seed=3).eval()
    T = m.window or 40
    models.export(m, tmp_path / "m.pt2", window=T)
    prog = torch.export.load(str(tmp_path / "m.pt2")).module()
    x = torch.randn(5, T, 40, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for batch in (x, x[:1]):
            torch.testing.assert_close(prog(batch), m(batch), rtol=1e-5, atol=1e-6)


class Branchy(torch.nn.Module):
    """A model whose path depends on the data: no single graph computes it."""

    features, window = 40, 10

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(40, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lin(x[:, -1]).squeeze(1)
        return out if out.sum() > 0 else -out


def test_export_says_when_torch_cannot_export_a_model(tmp_path):
    with pytest.raises(lobfast.LobError, match=r"torch \S+ cannot export Branchy: .*data-dependent"):
        models.export(Branchy(), tmp_path / "b.pt2")
    assert not list(tmp_path.iterdir())  # nothing written, not even a temporary file
    with pytest.raises(ValueError, match="format must be one of 'pt2', 'onnx', not 'tflite'"):
        models.export(SMALL["DeepLOB"](seed=0), tmp_path / "d.x", format="tflite")


def test_onnx_export_says_which_extra_it_needs(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as where it is not installed
    with pytest.raises(ImportError, match=r"onnxscript is needed .* pip install 'lobfast\[onnx\]'"):
        models.export(SMALL["DeepLOBTCN"](seed=0), tmp_path / "m.onnx", format="onnx")
    assert not list(tmp_path.iterdir())


def test_target_scaler_fits_training_rows_and_travels_with_the_model(data, tmp_path):
    _, book, y, norm = data
    s = lobfast.TargetScaler().fit(y, rows=slice(0, 1500))
    train = y[:1500][np.isfinite(y[:1500])]
    assert s.mean == pytest.approx(train.mean()) and s.std == pytest.approx(train.std())
    z = s.transform(y)
    np.testing.assert_allclose(s.inverse(z), y, rtol=1e-12, equal_nan=True)
    two = lobfast.TargetScaler().fit(np.c_[y, 2 * y], rows=slice(0, 1500))
    np.testing.assert_allclose(two.std, [s.std, 2 * s.std])
    with pytest.raises(ValueError, match="constant"):
        lobfast.TargetScaler().fit(np.ones(10))
    with pytest.raises(ValueError, match="not fitted"):
        lobfast.TargetScaler().transform(y)
    with pytest.raises(ValueError, match="fitted on targets of shape"):
        s.inverse(np.c_[y, y])
    m = models.DeepLOBTCN(head="regression", channels=4, inception=4, tcn_channels=8, seed=0)
    fit(m, WindowDataset(book, z, 40, indices=slice(0, 600), normalizer=norm), epochs=1, progress=False)
    models.save(tmp_path / "s.pt", m, normalizer=norm, window=40, target_scaler=s)
    got = models.load(tmp_path / "s.pt").predict(book)
    ds = WindowDataset(book, None, 40, normalizer=norm)
    assert np.array_equal(got[ds.ends], s.inverse(predict(m.eval(), ds)))  # in the target's units
