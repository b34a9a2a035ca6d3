"""ONNX export: the exported graph, run by onnxruntime, computes what the eager model does."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
ort = pytest.importorskip("onnxruntime")

import lobfast  # noqa: E402
from lobfast import models  # noqa: E402

SMALL = {
    "DeepLOB": lambda: models.DeepLOB(window=30, head="regression", channels=4, inception=4, lstm=8, seed=3),
    "DeepLOBTCN": lambda: models.DeepLOBTCN(head="regression", channels=4, inception=4, tcn_channels=8, seed=3),
    "HierarchicalTCN": lambda: models.HierarchicalTCN(
        40, short_steps=10, long_pool=3, long_steps=10, channels=8, heads=2, dilations=(1, 2), seed=3
    ),
}


@pytest.mark.parametrize("name", list(SMALL))
def test_onnx_model_equals_the_eager_model(name, tmp_path):
    m = SMALL[name]().train()
    T = m.window or 40
    models.export(m, tmp_path / "m.onnx", window=T, format="onnx")
    assert m.training  # the caller's mode is kept
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # one file, weights inside, no temporary left
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["x"] and [o.name for o in sess.get_outputs()] == ["y"]
    x = torch.randn(5, T, 40, generator=torch.Generator().manual_seed(0))
    m.eval()
    with torch.no_grad():
        for batch in (x, x[:1]):  # any batch size
            (got,) = sess.run(None, {"x": batch.numpy()})
            np.testing.assert_allclose(got, m(batch).numpy(), rtol=1e-4, atol=1e-5)


class Cummax(torch.nn.Module):
    """A running maximum, an operation without an ONNX translation."""

    features, window = 40, 10

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(40, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cummax(self.lin(x).squeeze(2), dim=1)[0][:, -1]


def test_onnx_export_names_the_operation_it_cannot_translate(tmp_path):
    with pytest.raises(lobfast.LobError, match=r"cannot export Cummax to ONNX: the operation aten\.cummax has no ONNX"):
        models.export(Cummax(), tmp_path / "c.onnx", format="onnx")
    assert not list(tmp_path.iterdir())
