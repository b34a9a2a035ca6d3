"""Training loops: :func:`fit` (early stopping, LR schedule, checkpoints, resume),
:func:`fit_per_symbol` and :func:`predict`.

A model is any ``torch.nn.Module`` mapping ``(B, T, F)`` windows to ``(B, outputs)``; the
ones in :mod:`lobfast.models` also say their ``task`` ("regression" or "classification"),
which is checked against the loss and the labels before anything trains: a class head
with float targets is an error, not a silently wrong model.

Examples
--------
>>> import numpy as np, torch, lobfast
>>> from lobfast.torch import WindowDataset
>>> from lobfast.train import fit
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(600, 8)).astype(np.float32)
>>> y = X[:, 0].astype(np.float64)                     # learnable: the last row's first feature
>>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(5 * 8, 1), torch.nn.Flatten(0))
>>> h = fit(model, WindowDataset(X, y, 5, slice(0, 400)), WindowDataset(X, y, 5, slice(400, None)),
...         loss="mse", epochs=30, lr=0.05, progress=False)
>>> h.val_loss[-1] < 0.1 * h.val_loss[0]
True
"""

from __future__ import annotations

import math
import os
import pickle
import re
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

try:
    import torch
except ImportError as e:  # pragma: no cover - exercised only without torch
    raise ImportError("lobfast.train needs PyTorch: pip install 'lobfast[torch]'") from e

from .torch import BatchLoader, WindowDataset, loader

__all__ = ["History", "fit", "fit_per_symbol", "predict", "resolve_device"]

LOSSES = ("huber", "mse", "ce")
_CHECKPOINT = "checkpoint.pt"


@dataclass
class History:
    """Per-epoch ``train_loss``, ``val_loss`` (NaN without validation data), ``lr`` and
    ``seconds``; ``best_epoch`` (0-based, by validation loss), ``stopped_early``, ``finished``."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False
    finished: bool = False

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_device(device: Any = "auto") -> torch.device:
    """``"auto"``: the first CUDA GPU when there is one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _as_loader(data: Any, batch_size: int, shuffle: bool, seed: int, device: torch.device) -> BatchLoader:
    if isinstance(data, BatchLoader):
        return data
    if isinstance(data, WindowDataset):
        return loader(data, batch_size, shuffle=shuffle, seed=seed, device=device)
    raise TypeError(f"training data must be a WindowDataset or lobfast.torch loader, not {type(data).__name__}")


def _criterion(model: torch.nn.Module, loss: str | None, targets: np.ndarray) -> tuple[str, Callable]:
    """The loss, checked against the model's head and the labels' kind."""
    task = getattr(model, "task", None)
    if loss is None:
        loss = "ce" if task == "classification" else "huber"
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, not {loss!r}")
    if loss == "ce":
        if task == "regression":
            raise ValueError("loss='ce' needs a classification head; this model has a regression head")
        if targets.dtype.kind == "f":
            raise ValueError(
                "a class head needs integer class targets, got float labels: build the dataset with "
                "classes=True (from labels.classify) or train a regression head with loss='huber'/'mse'"
            )
        return loss, torch.nn.functional.cross_entropy
    if task == "classification":
        raise ValueError(f"loss={loss!r} is a regression loss; this model has a classification head (use 'ce')")
    if targets.dtype.kind != "f":
        raise ValueError(f"loss={loss!r} needs float targets, got {targets.dtype} class labels")
    own = getattr(model, "loss", None)
    if callable(own):
        return loss, lambda pred, y: own(pred, y, base=loss)
    f = torch.nn.functional.huber_loss if loss == "huber" else torch.nn.functional.mse_loss

    def regression(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if pred.numel() != y.numel():
            raise ValueError(
                f"the model gives {tuple(pred.shape)} for a batch whose labels are {tuple(y.shape)}: "
                "its outputs must match the label columns"
            )
        return f(pred.reshape(y.shape), y)

    return loss, regression


def _targets(data: Any) -> np.ndarray:
    ds = data.dataset if isinstance(data, BatchLoader) else data
    return ds.y


def _bar(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    try:
        with warnings.catch_warnings():
            # in Jupyter without ipywidgets tqdm.auto warns and draws a text bar, which is wanted
            warnings.filterwarnings("ignore", message="IProgress not found")
            from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, leave=False, unit="batch")


def _evaluate_loss(model, data: BatchLoader, crit, device, dtype) -> float:
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for x, y in data:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            y = y.to(dtype) if y.is_floating_point() else y
            total += float(crit(model(x), y)) * len(x)
            count += len(x)
    return total / count if count else math.nan


def fit(
    model: torch.nn.Module,
    train: Any,
    val: Any = None,
    *,
    loss: str | None = None,
    epochs: int = 10,
    batch_size: int = 256,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    patience: int = 5,
    lr_patience: int = 2,
    lr_factor: float = 0.5,
    clip: float | None = 1.0,
    device: Any = "auto",
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = True,
    seed: int = 0,
    progress: bool = True,
) -> History:
    """Train ``model`` on ``train`` with Adam; keep the weights of the best validation epoch.

    Parameters
    ----------
    model : ``nn.Module``; its ``task`` (if any) is checked against ``loss`` and the labels.
    train, val : :class:`lobfast.torch.WindowDataset` (shuffled each epoch, reproducibly from
        ``seed``) or :func:`lobfast.torch.loader` objects. Without ``val`` the training loss
        drives early stopping and the schedule.
    loss : ``"huber"`` / ``"mse"`` (regression) or ``"ce"`` (classes); default from the model's
        head. A model with its own ``loss(pred, y, base=...)`` method (multi-task) uses it.
    epochs, patience : at most ``epochs``; stop after ``patience`` epochs without a better
        validation loss.
    lr, weight_decay, lr_patience, lr_factor : Adam and ``ReduceLROnPlateau`` settings.
    clip : gradient norm clipping (None: off).
    device : ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda:0"``...
    checkpoint_dir : after every epoch, model, optimiser, scheduler, history and the best
        weights go to ``checkpoint_dir/checkpoint.pt`` (written atomically).
    resume : continue from that checkpoint when it exists: a run that stopped early returns at
        once, one that ran all its epochs trains on when asked for more. It is read as
        tensors, dicts, lists, numbers and strings only: a file holding other objects (whose
        unpickling could run code) is refused with ``ValueError``, never unpickled.
    progress : a progress bar per epoch (tqdm, when installed).

    Returns
    -------
    History; the model ends on ``device`` with the best epoch's weights.
    """
    if epochs < 1 or patience < 1:
        raise ValueError(f"epochs and patience must be >= 1, got {epochs} and {patience}")
    dev = resolve_device(device)
    torch.manual_seed(seed)
    model.to(dev)
    tr = _as_loader(train, batch_size, True, seed, dev)
    va = None if val is None else _as_loader(val, batch_size, False, seed, dev)
    if len(tr.dataset) == 0:
        raise ValueError("the training set has no usable windows")
    if va is not None and len(va.dataset) == 0:
        raise ValueError("the validation set has no usable windows: pass val=None to monitor the training loss")
    for name, ld in (("training", tr), ("validation", va)):
        if ld is not None and not ld.dataset.labelled:
            raise ValueError(f"the {name} set has no labels (built with y=None, which is for predict)")
    _, crit = _criterion(model, loss, _targets(tr))
    dtype = tr.dataset.dtype
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=lr_factor, patience=lr_patience)
    hist = History()
    best_state, best, bad = None, math.inf, 0
    path = None if checkpoint_dir is None else Path(checkpoint_dir) / _CHECKPOINT
    if path is not None and resume and path.exists():
        ck = _load(path, dev)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        hist = History(**ck["history"])
        best_state, best, bad = ck["best_state"], ck["best"], ck["bad"]
    for epoch in range(hist.epochs, epochs):  # a resumed run goes on where it stopped
        if hist.stopped_early:
            break
        t0 = time.perf_counter()
        tr.set_epoch(epoch)
        model.train()
        total, count = 0.0, 0
        bar = _bar(len(tr), f"epoch {epoch + 1}/{epochs}", progress)
        for x, y in tr:
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            y = y.to(dtype) if y.is_floating_point() else y
            opt.zero_grad(set_to_none=True)
            batch_loss = crit(model(x), y)
            batch_loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            # summed on the device: reading the loss every batch would stall a GPU
            total = total + batch_loss.detach() * len(x)
            count += len(x)
            if bar is not None:
                bar.update(1)
                if bar.n % 20 == 1:
                    bar.set_postfix(loss=f"{float(total) / count:.4g}")
        if bar is not None:
            bar.close()
        total = float(total)
        if not math.isfinite(total):
            raise FloatingPointError(f"the training loss became {total} in epoch {epoch + 1}: lower lr, check the data")
        val_loss = _evaluate_loss(model, va, crit, dev, dtype) if va is not None else math.nan
        if va is not None and not math.isfinite(val_loss):
            raise FloatingPointError(f"the validation loss became {val_loss} in epoch {epoch + 1}")
        monitored = val_loss if va is not None else total / count
        sched.step(monitored)
        hist.train_loss.append(total / count)
        hist.val_loss.append(val_loss)
        hist.lr.append(opt.param_groups[0]["lr"])
        hist.seconds.append(time.perf_counter() - t0)
        if monitored < best:
            best, bad, hist.best_epoch = monitored, 0, epoch
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        else:
            bad += 1
        if bad >= patience:
            hist.stopped_early = True
        hist.finished = hist.stopped_early or epoch + 1 == epochs
        if path is not None:
            _save(path, model, opt, sched, hist, best_state, best, bad)
    if best_state is not None:
        model.load_state_dict(best_state)
    return hist


def _load(path: Path, device: torch.device) -> dict[str, Any]:
    """A checkpoint written by :func:`_save`, read as tensors, dicts, lists, numbers and strings
    only: unpickling anything else could run code, so such a file is refused unread."""
    try:
        ck = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        raise ValueError(
            f"{path} is not a checkpoint fit() wrote: it holds objects other than tensors, dicts, lists, "
            f"numbers and strings{f' ({found[1]})' if found else ''}, and is not loaded (unpickling them "
            "could run code); delete it or pass resume=False to start afresh"
        ) from None
    keys = {"model", "optimizer", "scheduler", "history", "best_state", "best", "bad"}
    if not isinstance(ck, dict) or not keys <= set(ck):
        raise ValueError(f"{path} is not a checkpoint fit() wrote: it does not hold {', '.join(sorted(keys))}")
    return ck


def _save(path: Path, model, opt, sched, hist: History, best_state, best: float, bad: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "history": hist.as_dict(),
        "best_state": best_state,
        "best": best,
        "bad": bad,
    }
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # a crash mid-write leaves the previous checkpoint whole


def fit_per_symbol(
    make_model: Callable[[str], torch.nn.Module],
    data: Mapping[str, tuple[Any, Any]],
    checkpoint_dir: str | os.PathLike,
    **fit_kwargs: Any,
) -> dict[str, tuple[torch.nn.Module, History]]:
    """One model per symbol: ``data[symbol] = (train, val)``; ``make_model(symbol)`` builds it.

    Each symbol trains in ``checkpoint_dir/<symbol>/`` with :func:`fit` (``resume=True``), so
    a rerun after an interruption skips the symbols already finished (their best weights
    are loaded) and continues the one that was cut off. Returns ``{symbol: (model, history)}``.
    """
    out = {}
    for symbol, (train, val) in data.items():
        if not symbol or os.sep in symbol or symbol in (".", ".."):
            raise ValueError(f"symbol {symbol!r} cannot name a checkpoint folder")
        model = make_model(symbol)
        hist = fit(model, train, val, checkpoint_dir=Path(checkpoint_dir) / symbol, resume=True, **fit_kwargs)
        out[symbol] = (model, hist)
    return out


def predict(model: torch.nn.Module, data: Any, *, batch_size: int = 1024, device: Any = None) -> np.ndarray:
    """The model's outputs for every window of ``data`` in order, as a float64 NumPy array
    (``(N,)`` for one output, else ``(N, outputs)``; logits for a class head)."""
    dev = next(model.parameters()).device if device is None else resolve_device(device)
    model.to(dev)
    ld = _as_loader(data, batch_size, False, 0, dev)
    if isinstance(data, BatchLoader) and (data.shuffle or data.drop_last):
        raise ValueError(
            "predict() needs every window in order: pass the dataset, or a loader without shuffle/drop_last"
        )
    was = model.training
    model.eval()
    parts = []
    with torch.no_grad():
        for x, *_ in ld:  # labelled or not
            parts.append(model(x.to(dev, non_blocking=True)).detach().to("cpu", torch.float64))
    model.train(was)
    if not parts:
        return np.empty(0)
    pred = torch.cat(parts).numpy()
    return pred[:, 0] if pred.ndim == 2 and pred.shape[1] == 1 else pred
