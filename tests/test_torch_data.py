"""lobfast.torch: WindowDataset and its loader against plain per-window PyTorch code."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import lobfast  # noqa: E402
import lobfast.torch as lt  # noqa: E402
from lobfast.torch import WindowDataset, collate_batch, loader  # noqa: E402


class PlainDataset(torch.utils.data.Dataset):
    """What users write without lobfast: one normalised slice per item."""

    def __init__(self, X, y, T, ends, shift, scale):
        self.X, self.y, self.T, self.ends, self.shift, self.scale = X, y, T, ends, shift, scale

    def __len__(self):
        return len(self.ends)

    def __getitem__(self, i):
        e = self.ends[i]
        w = (self.X[e - self.T + 1 : e + 1].astype(np.float64) - self.shift) * self.scale
        return torch.from_numpy(w.astype(np.float32)), torch.tensor(self.y[e])


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    X = rng.normal(50, 10, size=(500, 12)).astype(np.float32)
    y = rng.normal(size=500)
    return X, y


def test_dataset_keeps_the_matrix_without_copying(data):
    X, y = data
    ds = WindowDataset(X, y, 20)
    assert np.shares_memory(ds.X, X)
    assert len(ds) == 481 and ds.ends[0] == 19 and ds.ends[-1] == 499
    x0, y0 = ds[0]
    np.testing.assert_array_equal(x0.numpy(), X[:20])
    assert y0.dtype == torch.float64 and float(y0) == y[19]
    np.testing.assert_array_equal(ds[-1][0].numpy(), X[-20:])


def test_batches_equal_a_default_dataloader(data):
    X, y = data
    norm = lobfast.Normalizer().fit(X, rows=slice(0, 300))
    ds = WindowDataset(X, y, 20, normalizer=norm)
    plain = PlainDataset(X, y, 20, ds.ends, norm.shift[0], norm.scale[0])
    ref = list(torch.utils.data.DataLoader(plain, batch_size=64))
    mine = list(loader(ds, 64))
    assert len(mine) == len(ref) == 8
    for (xa, ya), (xb, yb) in zip(mine, ref):
        torch.testing.assert_close(xa, xb, rtol=0, atol=0)
        torch.testing.assert_close(ya, yb)
    # the same batches through torch's DataLoader calling __getitems__ once per batch
    via = list(torch.utils.data.DataLoader(ds, batch_size=64, collate_fn=collate_batch))
    for (xa, ya), (xb, yb) in zip(via, ref):
        torch.testing.assert_close(xa, xb, rtol=0, atol=0)
        torch.testing.assert_close(ya, yb)


def test_shuffle_is_a_reproducible_permutation_of_every_window(data):
    X, y = data
    ds = WindowDataset(X, np.arange(500.0), 20)
    a = loader(ds, 50, shuffle=True, seed=3)
    e0 = torch.cat([yb for _, yb in a]).numpy()
    e1 = torch.cat([yb for _, yb in a]).numpy()
    assert sorted(e0) == sorted(e1) == list(range(19, 500))
    assert not np.array_equal(e0, e1)  # a new order each epoch
    b = loader(ds, 50, shuffle=True, seed=3)
    np.testing.assert_array_equal(torch.cat([yb for _, yb in b]).numpy(), e0)
    b.set_epoch(1)
    np.testing.assert_array_equal(torch.cat([yb for _, yb in b]).numpy(), e1)
    for xb, yb in loader(ds, 50, shuffle=True, seed=9):
        ends = yb.numpy().astype(int)
        np.testing.assert_array_equal(xb.numpy(), X[ends[:, None] + np.arange(-19, 1)])
    assert len(loader(ds, 50, drop_last=True)) == 9
    assert [len(xb) for xb, _ in loader(ds, 50, drop_last=True)] == [50] * 9


def test_indices_and_dropped_windows(data):
    X, y = data
    y = y.copy()
    y[100] = np.nan
    valid = np.ones(500, bool)
    valid[200] = False
    ds = WindowDataset(X, y, 20, indices=np.arange(0, 300), valid=valid)
    expected = [e for e in range(19, 300) if e != 100 and not (200 <= e < 220)]
    np.testing.assert_array_equal(ds.ends, expected)
    assert ds.dropped == 300 - len(expected)
    ds2 = WindowDataset(X, y, 20, indices=slice(150, 250), valid=valid)
    np.testing.assert_array_equal(ds2.ends, [e for e in range(150, 250) if not 200 <= e < 220])


def test_book_input_uses_its_valid_mask_and_nan_rows_are_excluded(spot_book):
    book = spot_book
    n = len(book)
    valid = book.valid.copy()
    bid = book.bid_px.copy()
    bid[3000, 2] = np.nan  # a broken row...
    valid[3000] = False  # ...that the book marks invalid
    broken = lobfast.BookSnapshots(**{**book.columns, "bid_px": bid, "valid": valid})
    lf = lobfast.labels.forward_return(broken, 10)
    ds = WindowDataset(broken, lf, 100)
    assert not np.any((ds.ends >= 3000) & (ds.ends < 3100))
    assert ds.ends[-1] == n - 11  # the last 10 rows have no label
    assert ds.names[:4] == ["ask_px1", "ask_sz1", "bid_px1", "bid_sz1"]
    with pytest.raises(ValueError, match=r"feature 'bid_px3' is nan at row 3000, a row marked valid"):
        WindowDataset(broken, lf, 100, valid=np.ones(n, bool))


def test_classes_from_classify(data):
    X, _ = data
    r = np.random.default_rng(0).normal(size=500)
    c = lobfast.labels.classify(np.where(np.arange(500) % 7 == 0, np.nan, r), 0.4)
    ds = WindowDataset(X, c, 10, classes=True)
    assert ds.targets.dtype == np.int64 and set(ds.targets) == {0, 1, 2}
    np.testing.assert_array_equal(ds.targets, c[ds.ends] + 1)
    assert not np.any(ds.ends % 7 == 0)
    assert ds[0][1].dtype == torch.int64
    with pytest.raises(ValueError, match="takes -1/0/\\+1 labels"):
        WindowDataset(X, r, 10, classes=True)
    # the encoding is fixed: a stretch with no 'down' still maps stationary/up to 1/2
    only_up = np.where(np.arange(500) % 2 == 0, 0.0, 1.0)
    np.testing.assert_array_equal(WindowDataset(X, only_up, 10, classes=True).targets[:4], [2, 1, 2, 1])


def test_float64_windows_and_frames():
    ts = np.arange(50) * 10**8
    f = lobfast.FeatureFrame(ts, a=np.arange(50.0), b=np.arange(50.0) * 2)
    lab = lobfast.LabelFrame(ts, r=np.arange(50.0))
    ds = WindowDataset(f, lab, 5, dtype=torch.float64)
    x, y = ds[0]
    assert x.dtype == torch.float64 and x.shape == (5, 2) and float(y) == 4.0
    np.testing.assert_array_equal(ds.ts, ts[4:])
    assert ds.features(flat=True).shape == (46, 10)
    shifted = lobfast.LabelFrame(ts + 1, r=np.arange(50.0))
    with pytest.raises(ValueError, match="misaligned with the features: ts differs first at row 0"):
        WindowDataset(f, shifted, 5)


def test_a_dataset_without_labels_gives_windows_only(data):
    X, y = data
    X = np.nan_to_num(X)
    norm = lobfast.Normalizer().fit(X, rows=slice(0, 300))
    ds = WindowDataset(X, None, 20, slice(100, None), normalizer=norm)
    full = WindowDataset(X, np.zeros(len(X)), 20, slice(100, None), normalizer=norm)
    assert not ds.labelled and full.labelled and "no labels" in repr(ds)
    np.testing.assert_array_equal(ds.ends, full.ends)
    some_nan = np.where(np.arange(len(X)) < 150, np.nan, 0.0)  # NaN labels drop windows; no labels none
    assert len(WindowDataset(X, some_nan, 20, slice(100, None), normalizer=norm)) == len(ds) - 50
    (x0,) = ds[0]
    torch.testing.assert_close(x0, full[0][0], rtol=0, atol=0)
    batches = list(loader(ds, 64))
    assert len(batches) == len(loader(full, 64)) and all(len(b) == 1 for b in batches)
    torch.testing.assert_close(torch.cat([b[0] for b in batches]), full.batch(np.arange(len(full)))[0], rtol=0, atol=0)
    via = list(torch.utils.data.DataLoader(ds, batch_size=64, collate_fn=collate_batch))
    assert all(len(b) == 1 for b in via) and sum(len(b[0]) for b in via) == len(ds)
    with pytest.raises(ValueError, match="no labels"):
        _ = ds.targets
    with pytest.raises(ValueError, match="classes=True needs labels"):
        WindowDataset(X, None, 20, classes=True)


def test_labels_are_never_windowed_as_features():
    ts = np.arange(50) * 10**8
    lab = lobfast.LabelFrame(ts, r=np.arange(50.0), s=np.arange(50.0) * 2)
    wrapped = [lab, lobfast.Frame(ts, a=np.arange(50.0), r=lab["r"]), lab["r"][:, None], lab.to_numpy()]
    wrapped.append(np.asarray(lab["s"]).reshape(50, 1))
    for X in wrapped:
        with pytest.raises(TypeError, match="label.*never features"):
            WindowDataset(X, lab, 5)
    assert len(WindowDataset(lobfast.FeatureFrame(ts, a=np.arange(50.0)), lab, 5)) == 46


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda X, y: WindowDataset(X, y, 501), ValueError, "window of 501 rows is longer than the data"),
        (lambda X, y: WindowDataset(X, y[:-1], 20), ValueError, "labels have 499 rows, the features 500"),
        (lambda X, y: WindowDataset(X, y, 0), ValueError, "T must be a positive int"),
        (lambda X, y: WindowDataset(X, y, 5, dtype=torch.int32), TypeError, "float32 or torch.float64"),
        (lambda X, y: WindowDataset(X, y, 5, valid=np.ones(3, bool)), ValueError, "500 bools"),
        (lambda X, y: WindowDataset(X, y.astype(str), 5), TypeError, "numeric"),
        (lambda X, y: WindowDataset(X, y, 5, normalizer=lobfast.Normalizer()), ValueError, "not fitted"),
        (
            lambda X, y: WindowDataset(X, y, 5, normalizer=lobfast.Normalizer().fit(X[:, :3])),
            ValueError,
            "fitted on 3 features",
        ),
        (lambda X, y: WindowDataset(X[:, 0], y, 5), ValueError, "2-D"),
        (lambda X, y: WindowDataset(X, lobfast.FeatureFrame([0], a=[1.0]), 5), TypeError, "not a feature frame"),
        (lambda X, y: loader([1, 2], 4), TypeError, "takes a WindowDataset"),
        (lambda X, y: WindowDataset(X, y, 5)[10_000], IndexError, "out of range"),
    ],
)
def test_bad_input(data, call, error, message):
    X, y = data
    with pytest.raises(error, match=message):
        call(X, y)


def test_nan_without_a_mask_names_column_and_first_row(data):
    X, y = data
    X = X.copy()
    X[[40, 300], 5] = np.nan
    with pytest.raises(ValueError, match="feature 'column 5' is nan at row 40"):
        WindowDataset(X, y, 20)


def test_gather_releases_the_gil_and_threads_agree(data):
    from concurrent.futures import ThreadPoolExecutor

    X, y = data
    ds = WindowDataset(X, y, 50)
    batches = [np.random.default_rng(i).integers(0, len(ds), 64) for i in range(16)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda b: ds.batch(b)[0], batches))
    for b, x in zip(batches, got):
        torch.testing.assert_close(x, ds.batch(b)[0], rtol=0, atol=0)


def test_docstring_examples_run():
    failed, _ = doctest.testmod(lt, optionflags=doctest.ELLIPSIS)
    assert failed == 0
