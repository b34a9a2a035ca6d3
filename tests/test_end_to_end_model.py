"""From raw recordings to metrics and a backtest: read, rebuild, label, split with purge,
normalise on training rows, window, train a small DeepLOB-TCN for one epoch, evaluate against
the raw forward return, trade the signal net of fees."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import SPOT_BTC_0808, SPOT_BTC_0809  # noqa: E402

import lobfast  # noqa: E402
from lobfast import backtest, evaluate, split  # noqa: E402
from lobfast.models import DeepLOBTCN  # noqa: E402
from lobfast.torch import WindowDataset  # noqa: E402
from lobfast.train import fit, predict  # noqa: E402

T, H = 50, 20  # 5 s windows of 100 ms rows; labels 2 s ahead


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_raw_files_to_metrics_and_backtest(tmp_path):
    md = lobfast.read_binance([SPOT_BTC_0808, SPOT_BTC_0809])
    book = lobfast.reconstruct(md.depth, levels=10, every="100ms")
    raw = lobfast.labels.forward_return(book, H)
    smooth = lobfast.labels.smoothed(book, H)
    target_name, raw_name = f"smooth_{H}", f"ret_{H}"
    assert target_name in smooth and raw_name in raw

    # chronological 60/20/20, purging rows whose label horizon crosses into the next part
    sp = split.chronological(book.ts, known_at=lobfast.labels.combine(raw, smooth), embargo=H, rows=book.valid)
    assert sp.purged > 0 and len(sp.train) and len(sp.val) and len(sp.test)
    assert raw.known_at[raw_name][sp.train].max() < sp.boundaries[0]
    assert book.ts[sp.val].min() >= sp.boundaries[0]

    norm = lobfast.Normalizer("zscore").fit(book, rows=sp.train)
    y = smooth[target_name] * 1e4  # in basis points: a well-scaled regression target
    parts = {"train": sp.train, "val": sp.val, "test": sp.test}
    sets = {name: WindowDataset(book, y, T, rows, norm) for name, rows in parts.items()}
    assert all(len(ds) > 300 for ds in sets.values())
    assert set(sets["train"].ends) <= set(sp.train)

    torch.manual_seed(0)
    model = DeepLOBTCN(features=40, head="regression", channels=8, inception=8, tcn_channels=16)
    hist = fit(model, sets["train"], sets["val"], epochs=1, batch_size=128, lr=1e-3, progress=False,
               checkpoint_dir=tmp_path)  # fmt: skip
    assert hist.epochs == 1 and np.isfinite(hist.train_loss[0]) and np.isfinite(hist.val_loss[0])

    test = sets["test"]
    pred = predict(model, test)
    assert pred.shape == (len(test),) and np.isfinite(pred).all()
    # (whether the smoothed target inflates the IC of a one-epoch model is not what this checks)
    m = evaluate.evaluate_predictions(pred, test.targets, raw[raw_name][test.ends] * 1e4, inflation_margin=np.inf)
    for part in ("target", "raw"):
        assert m[part]["n"] == len(test)
        assert all(np.isfinite(m[part][k]) for k in ("pearson", "spearman", "mae", "rmse", "r2"))

    signal = np.full(len(book), np.nan)
    signal[test.ends] = pred
    res = backtest.hold_to_horizon(signal, book, H, threshold=float(np.quantile(np.abs(pred), 0.8)))
    s = res.summary()
    assert s["trades"] > 0 and s["trades"] <= len(test) // H + 1  # non-overlapping holds
    assert s["net_pnl"] < s["gross_pnl"]  # fees are paid
